package call

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
)

// Server is the core.ProtocolHandler of alknet/call: every accepted
// connection becomes a Peer that serves the registry on the streams the
// remote opens (and can call the remote back).
type Server struct {
	cfg Config
}

// NewServer returns a server; the config is copied and defaults filled.
func NewServer(cfg Config) (*Server, error) {
	return &Server{cfg: cfg.withDefaults()}, nil
}

// ALPN implements core.ProtocolHandler.
func (s *Server) ALPN() []string { return []string{ALPN} }

// Registry returns the registry the server serves.
func (s *Server) Registry() *Registry { return s.cfg.Registry }

// ServeConn implements core.ProtocolHandler. It returns when the connection
// is gone, or, once the endpoint drains, when the calls in flight are done.
func (s *Server) ServeConn(ctx context.Context, conn core.Conn) error {
	p := newPeer(conn, s.cfg)
	var hooks sync.WaitGroup
	defer hooks.Wait()
	if s.cfg.OnConnect != nil {
		hooks.Go(func() { s.cfg.OnConnect(ctx, p) })
	}
	return p.Serve(ctx)
}

// lingerTimeout is how long a stream whose call is answered waits for the
// caller to end its side before it is cut.
const lingerTimeout = 5 * time.Second

// errCallerGone and errAborted are the causes of a call's cancellation.
var (
	errCallerGone   = errors.New("alknet/call: caller closed the stream")
	errAborted      = errors.New("alknet/call: call aborted by the caller")
	errShuttingDown = errors.New("alknet/call: node shutting down")
	// ErrCallOver is returned by a subscription's emit once the call has
	// ended (aborted, timed out, or the caller went away).
	ErrCallOver = errors.New("alknet/call: call is over")
)

// Serve serves the operations of the peer's registry on every stream the
// remote opens, one call per stream, until the connection closes or ctx is
// cancelled. When the endpoint drains it stops accepting, aborts the
// subscriptions in flight (call.aborted) and waits for the queries and
// mutations, which have deadlines.
func (p *Peer) Serve(ctx context.Context) error {
	draining, drain := context.WithCancel(context.Background())
	pool := &workerPool{work: make(chan func()), stop: make(chan struct{})}
	defer func() {
		drain()
		pool.close()
	}()
	for {
		s, err := p.conn.AcceptStream(ctx)
		if err != nil {
			if errors.Is(err, core.ErrShuttingDown) {
				return nil
			}
			return err
		}
		pool.run(func() { p.serveStream(ctx, draining, pool, s) })
	}
}

// workerPool runs the goroutines of one connection's calls (each stream's
// call and the reader of its caller's side). A fresh goroutine per call
// spent much of its time growing its stack (frame decoding, JSON and
// validation run deep); a reused one keeps it. A task goes to an idle
// worker when there is one, else to a new worker, so there are never more
// workers than tasks in flight; a worker idle for workerIdle exits.
type workerPool struct {
	work chan func() // unbuffered: a send succeeds only to an idle worker
	stop chan struct{}
	wg   sync.WaitGroup
}

func (w *workerPool) run(f func()) {
	select {
	case w.work <- f:
	default:
		w.wg.Go(func() { w.worker(f) })
	}
}

func (w *workerPool) worker(f func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(workerIdle)
		select {
		case f = <-w.work:
		case <-idle.C:
			return
		case <-w.stop:
			return
		}
	}
}

// close makes idle workers exit and waits for all of them (their tasks
// included).
func (w *workerPool) close() {
	close(w.stop)
	w.wg.Wait()
}

// workerIdle is how long a stream worker waits for the next stream.
const workerIdle = 10 * time.Second

// responder writes the callee's side of one call. Every write and the
// final close are serialized by mu; once done is set nothing more is sent.
type responder struct {
	mu     sync.Mutex
	s      core.Stream
	id     string
	limit  int64
	done   bool
	broken bool // a write failed
}

// send writes one frame unless the call is already over.
func (r *responder) send(typ string, payload any, final bool) error {
	frame, err := encodeFrame(typ, r.id, payload, r.limit)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return ErrCallOver
	}
	if final {
		r.done = true
	}
	if _, err = r.s.Write(frame); err != nil {
		r.done, r.broken = true, true // a partial frame cannot be followed
	}
	return err
}

func (r *responder) fail(e *Error) { _ = r.send(TypeError, e, true) }

// emitOutput sends one call.responded with v as output.
func (r *responder) emitOutput(v any, final bool) error {
	out, err := marshalJSON(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	return r.send(TypeResponded, Response{Output: out}, final)
}

// finish sends FIN after a call that ended with its final frame; it
// reports whether it did.
func (r *responder) finish() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done || r.broken {
		return false
	}
	return r.s.CloseWrite() == nil
}

// close ends the stream once no write is pending.
func (r *responder) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	_ = r.s.Close()
}

// serveStream runs one call.
func (p *Peer) serveStream(ctx, draining context.Context, pool *workerPool, s core.Stream) {
	resp := &responder{s: s, limit: p.cfg.MaxFrameSize}
	defer resp.close()
	br := bufio.NewReaderSize(s, 4096)
	if p.cfg.RequestTimeout > 0 {
		_ = s.SetReadDeadline(time.Now().Add(p.cfg.RequestTimeout))
	}
	body, err := ReadFrame(br, p.cfg.MaxFrameSize)
	if err != nil {
		if errors.Is(err, ErrFrameSize) {
			resp.fail(NewError(CodeInvalidInput, "%s", strings.TrimPrefix(err.Error(), "alknet/call: ")))
		}
		return
	}
	_ = s.SetReadDeadline(time.Time{})
	env, err := decodeWire(body)
	if err != nil {
		resp.fail(NewError(CodeInvalidInput, "malformed envelope"))
		return
	}
	resp.id = env.ID
	switch env.Type {
	case TypeRequested:
	case TypeAborted:
		return // abort of a call this stream never started: ignored
	default:
		resp.fail(NewError(CodeInvalidOperationType, "expected %s, got %q", TypeRequested, clip(env.Type)))
		return
	}
	req := env.Payload
	name := strings.TrimPrefix(req.OperationID, "/")
	e, ok := p.reg.lookup(name)
	if !ok || e.spec.Visibility != External {
		resp.fail(NewError(CodeNotFound, "no operation /%s", clip(name)))
		return
	}
	// The call's logger is built only when a line is written: the peer's
	// fingerprint and address cost more than a successful call's work.
	log := func() *slog.Logger {
		return p.log.With("op", name, "peer", p.conn.RemoteID().Fingerprint(), "remote", p.conn.RemoteAddr().String())
	}
	caller := &Caller{Identity: p.conn.Identity(), Node: p.conn.RemoteID(), ForwardedFor: req.ForwardedFor}
	if req.AuthToken != "" {
		var id *core.Identity
		ok := false
		if p.cfg.Identities != nil {
			id, ok = p.cfg.Identities.IdentityByToken([]byte(req.AuthToken))
		}
		if !ok {
			log().Warn("call refused", "code", CodeForbidden, "reason", "invalid auth token")
			resp.fail(NewError(CodeForbidden, "invalid auth token"))
			return
		}
		caller.Identity, caller.ByToken = id, true
	}
	if err := e.acl.Check(caller.Identity); err != nil {
		log().Warn("call refused", "code", CodeForbidden, "reason", err.Error())
		resp.fail(NewError(CodeForbidden, "%s", err.Error()))
		return
	}

	cctx, cancel := context.WithCancelCause(WithCaller(ctx, caller))
	defer cancel(nil)
	if e.spec.Kind == KindSubscription {
		stopDrain := context.AfterFunc(draining, func() { cancel(errShuttingDown) })
		defer stopDrain()
	}
	timeout := e.timeout
	if timeout == 0 && e.spec.Kind != KindSubscription {
		timeout = p.cfg.CallTimeout
	}
	if timeout > 0 {
		var cancelT context.CancelFunc
		cctx, cancelT = context.WithTimeout(cctx, timeout)
		defer cancelT()
	}
	// The caller's side of the stream: call.aborted or its end cancels.
	readerDone := make(chan struct{})
	pool.run(func() {
		defer close(readerDone)
		for {
			body, err := ReadFrame(br, p.cfg.MaxFrameSize)
			if err != nil {
				cancel(errCallerGone)
				return
			}
			if env2, err := decodeWire(body); err == nil && env2.Type == TypeAborted && env2.ID == env.ID {
				cancel(errAborted)
				return
			}
		}
	})
	// When the call ends early, answer a deadline at once and unblock a
	// write stuck on a caller that stopped reading.
	afterDone := make(chan struct{})
	stop := context.AfterFunc(cctx, func() {
		defer close(afterDone)
		if errors.Is(context.Cause(cctx), context.DeadlineExceeded) && resp.mu.TryLock() {
			// No write in progress: answer TIMEOUT now, even if the
			// handler has not noticed yet.
			if !resp.done {
				resp.done = true
				if frame, err := encodeFrame(TypeError, resp.id, NewError(CodeTimeout, "%s timed out after %s", name, timeout), resp.limit); err == nil {
					_ = s.SetWriteDeadline(time.Now().Add(time.Second))
					_, _ = s.Write(frame)
				}
			}
			resp.mu.Unlock()
		}
		// A write blocked on a caller that stopped reading gives up; the
		// stream is then abandoned (a partial frame cannot be followed).
		_ = s.SetWriteDeadline(time.Now())
	})
	defer func() {
		stop()
		if resp.finish() {
			// Answered: end our side and wait briefly for the caller to end
			// its own, so the stream closes without a STOP_SENDING.
			_ = s.SetReadDeadline(time.Now().Add(lingerTimeout))
		} else {
			_ = s.SetReadDeadline(time.Now())
		}
		<-readerDone
	}()

	start := time.Now()
	unary := e.spec.Kind != KindSubscription
	emitted := false
	err = p.reg.invoke(cctx, e, req.Input, func(v any) error {
		if cctx.Err() != nil {
			return ErrCallOver
		}
		if unary {
			if emitted {
				return ErrCallOver
			}
			emitted = true
		}
		out, err := marshalJSON(v)
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		if err := resp.send(TypeResponded, Response{Output: out}, unary); err != nil {
			if !errors.Is(err, ErrFrameSize) {
				cancel(errCallerGone) // the stream is unusable: the call is over
				return ErrCallOver
			}
			return err
		}
		return nil
	})
	cause := context.Cause(cctx)
	switch {
	case errors.Is(cause, errAborted) || errors.Is(cause, errCallerGone):
		log().Debug("call aborted", "dur", time.Since(start))
	case cctx.Err() != nil && !errors.Is(cause, context.DeadlineExceeded):
		// This side is shutting down: tell the caller the call is off,
		// once the cancellation above has run (it cut pending writes).
		<-afterDone
		_ = s.SetWriteDeadline(time.Now().Add(time.Second))
		_ = resp.send(TypeAborted, nil, true)
	case err != nil:
		pe := p.reg.publicError(cctx, e, err)
		if pe.Code != CodeTimeout {
			log().Info("call failed", "code", pe.Code, "dur", time.Since(start))
		}
		resp.fail(pe)
	case cctx.Err() != nil:
		// deadline: TIMEOUT is already sent
	case !unary:
		_ = resp.send(TypeCompleted, nil, true)
	case !emitted:
		_ = resp.emitOutput(nil, true)
	}
}

// marshalJSON marshals v without HTML escaping; a json.RawMessage passes
// through.
func marshalJSON(v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok {
		if len(raw) == 0 {
			return json.RawMessage("null"), nil
		}
		if !json.Valid(raw) {
			return nil, errors.New("json.RawMessage holds invalid JSON")
		}
		return raw, nil
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	s := b.String()
	return json.RawMessage(s[:len(s)-1]), nil
}

var _ core.ProtocolHandler = (*Server)(nil)
