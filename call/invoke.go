package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Invocation is one call of an external operation, authorized and with its
// input checked, ready to run. Gateways that carry calls over another
// protocol (HTTP, WebSocket, MCP) make one with Registry.Prepare, so that a
// refusal or bad input is known before they commit to an answer (an HTTP
// status), then run it.
type Invocation struct {
	r      *Registry
	e      *entry
	caller *Caller
	input  json.RawMessage
}

// Prepare looks up the external operation name (a leading "/" is ignored)
// and checks it for caller exactly as a call arriving on alknet/call is
// checked: the operation's access against caller.Identity (nil caller or
// nil Identity: anonymous), then input against its schema (null or empty
// input means {} for object inputs). As on the wire, an unknown or internal
// operation is NOT_FOUND, a refused caller FORBIDDEN with the reason, and
// input that does not match INVALID_INPUT. The error is an *Error safe to
// show to the caller.
func (r *Registry) Prepare(name string, caller *Caller, input json.RawMessage) (*Invocation, *Error) {
	name = strings.TrimPrefix(name, "/")
	e, ok := r.lookup(name)
	if !ok || e.spec.Visibility != External {
		return nil, NewError(CodeNotFound, "no operation /%s", clip(name))
	}
	if err := e.allowed(caller.subject()); err != nil {
		return nil, NewError(CodeForbidden, "%s", err.Error())
	}
	raw, err := e.check(input)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			return nil, ce
		}
		return nil, NewError(CodeInvalidInput, "input rejected")
	}
	return &Invocation{r: r, e: e, caller: caller, input: raw}, nil
}

// Spec returns the description of the prepared operation.
func (inv *Invocation) Spec() Spec { return inv.e.spec }

// Run runs the prepared call with ctx carrying its caller, and calls emit
// with the JSON of each output: once for a query or mutation (null when the
// handler emitted nothing), once per item for a subscription. emit runs on
// the handler's goroutine; when it returns an error the call is over (the
// handler's emit reports ErrCallOver). timeout bounds a query or mutation
// whose Options.Timeout is zero (zero: none); the operation's own Timeout
// always wins, and subscriptions have none unless they set one. The error
// is nil when the call completed, else an *Error safe to show: TIMEOUT when
// a deadline passed, the handler's declared or standard error, INTERNAL
// for anything else (logged by the registry). When ctx is cancelled by the
// caller the error is the cause wrapped in nothing: callers check ctx.
func (inv *Invocation) Run(ctx context.Context, timeout time.Duration, emit func(json.RawMessage) error) *Error {
	e := inv.e
	unary := e.spec.Kind != KindSubscription
	if e.timeout != 0 {
		timeout = e.timeout
	} else if !unary {
		timeout = 0
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	ctx = WithCaller(ctx, inv.caller)
	emitted := false
	err := inv.r.run(ctx, e, inv.input, func(v any) error {
		if ctx.Err() != nil {
			return ErrCallOver
		}
		if unary && emitted {
			return ErrCallOver
		}
		emitted = true
		out, err := marshalJSON(v)
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		if err := emit(out); err != nil {
			return errors.Join(ErrCallOver, err)
		}
		return nil
	})
	switch {
	case err != nil:
		if errors.Is(err, ErrCallOver) && ctx.Err() == nil {
			return nil // the gateway stopped taking outputs
		}
		if ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			return NewError(CodeUnavailable, "call cancelled")
		}
		return inv.r.publicError(ctx, e, err)
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		return NewError(CodeTimeout, "%s timed out after %s", e.spec.Name, timeout)
	case unary && !emitted:
		if err := emit(json.RawMessage("null")); err != nil {
			return nil
		}
	}
	return nil
}

// Allowed lists the external operations caller may use (as services/list
// does), with their full descriptions, sorted by name.
func (r *Registry) Allowed(caller *Caller) []Spec {
	subject := caller.subject()
	r.mu.RLock()
	out := make([]Spec, 0, len(r.ops))
	for _, e := range r.ops {
		if e.spec.Visibility == External && e.allowed(subject) == nil {
			out = append(out, e.spec)
		}
	}
	r.mu.RUnlock()
	sortSpecs(out)
	return out
}

// Describe returns the description of the external operation name when
// caller may use it; otherwise NOT_FOUND, as services/schema answers.
func (r *Registry) Describe(name string, caller *Caller) (Spec, *Error) {
	name = strings.TrimPrefix(name, "/")
	e, ok := r.lookup(name)
	if !ok || e.spec.Visibility != External || e.allowed(caller.subject()) != nil {
		return Spec{}, NewError(CodeNotFound, "no operation %s", clip(name))
	}
	return e.spec, nil
}

func sortSpecs(s []Spec) {
	sort.Slice(s, func(i, j int) bool { return s[i].Name < s[j].Name })
}
