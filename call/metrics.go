package call

import (
	"context"
	"errors"

	"github.com/alkdev/alknet/core"
)

type metricsBox struct{ m core.Metrics }

// SetMetrics makes the registry report every run of an operation (from
// the wire, a gateway or Registry.Call) to m as Metrics.Operation with the
// operation's name, its outcome code and its duration; nil stops
// reporting. The outcome is "OK", the code of the *Error the handler
// returned, TIMEOUT past a deadline, ABORTED when the caller cancelled,
// or INTERNAL.
func (r *Registry) SetMetrics(m core.Metrics) {
	if m == nil {
		r.metrics.Store(nil)
		return
	}
	r.metrics.Store(&metricsBox{m: m})
}

func (r *Registry) metricsOf() core.Metrics {
	if b := r.metrics.Load(); b != nil {
		return b.m
	}
	return nil
}

// outcome is the code Metrics.Operation reports for a run that returned
// err.
func outcome(ctx context.Context, err error) string {
	var ce *Error
	switch {
	case err == nil && ctx.Err() == nil:
		return "OK"
	case errors.As(err, &ce):
		return ce.Code
	case errors.Is(context.Cause(ctx), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case ctx.Err() != nil || errors.Is(err, ErrCallOver):
		return "ABORTED"
	}
	return CodeInternal
}
