package call

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/quicconn"
)

// Server is the core.ProtocolHandler of alknet/call: every accepted
// connection becomes a Peer that serves the registry on the streams the
// remote opens (and can call the remote back).
type Server struct {
	cfg Config

	mu    sync.Mutex
	peers map[*Peer]struct{}
}

// NewServer returns a server; the config is copied and defaults filled.
func NewServer(cfg Config) (*Server, error) {
	return &Server{cfg: cfg.withDefaults(), peers: map[*Peer]struct{}{}}, nil
}

// ALPN implements core.ProtocolHandler.
func (s *Server) ALPN() []string { return []string{ALPN} }

// SingleStream implements core.SingleStreamer: calls are correlated by id,
// so a connection with one stream (the TCP+TLS listener) carries them all.
func (s *Server) SingleStream() bool { return true }

// Registry returns the registry the server serves.
func (s *Server) Registry() *Registry { return s.cfg.Registry }

// ServeConn implements core.ProtocolHandler. It returns when the connection
// is gone, or, once the endpoint drains, when the calls in flight are done.
func (s *Server) ServeConn(ctx context.Context, conn core.Conn) error {
	p := newPeer(conn, s.cfg)
	s.mu.Lock()
	s.peers[p] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.peers, p)
		s.mu.Unlock()
	}()
	var hooks sync.WaitGroup
	defer hooks.Wait()
	if s.cfg.OnConnect != nil {
		hooks.Go(func() { s.cfg.OnConnect(ctx, p) })
	}
	return p.Serve(ctx)
}

// Reauthorize re-checks every call in flight on every connection against
// the identities as Config.Identities resolves them now, and ends those
// that no longer pass with FORBIDDEN "access revoked" (a call authorized by
// an auth_token whose token was revoked, above all). Peer stores call it
// after each reload, next to core.Endpoint.Reauthorize. It returns the
// number of calls ended.
func (s *Server) Reauthorize() int {
	s.mu.Lock()
	peers := make([]*Peer, 0, len(s.peers))
	for p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	n := 0
	for _, p := range peers {
		n += p.Reauthorize()
	}
	return n
}

// Causes of a call's cancellation.
var (
	errCallerGone   = errors.New("alknet/call: caller reset the stream or went away")
	errAborted      = errors.New("alknet/call: call aborted by the caller")
	errShuttingDown = errors.New("alknet/call: node shutting down")
	errRevoked      = errors.New("alknet/call: access revoked")
	// ErrCallOver is returned by a subscription's emit once the call has
	// ended (aborted, timed out, or the caller went away).
	ErrCallOver = errors.New("alknet/call: call is over")
)

// Serve serves the operations of the peer's registry on every stream the
// remote opens, any number of calls per stream, until the connection
// closes or ctx is cancelled. When the endpoint drains it stops accepting,
// aborts the subscriptions in flight (call.aborted), answers new requests
// with UNAVAILABLE and waits for the queries and mutations, which have
// deadlines.
func (p *Peer) Serve(ctx context.Context) error {
	draining, drain := context.WithCancel(context.Background())
	pool := &workerPool{work: make(chan func()), stop: make(chan struct{})}
	finish := sync.OnceFunc(func() {
		drain()
		pool.close()
	})
	defer finish()
	for {
		s, err := p.conn.AcceptStream(ctx)
		if err != nil {
			if errors.Is(err, core.ErrShuttingDown) {
				finish()
				p.linger()
				return nil
			}
			return err
		}
		pool.run(func() { p.serveStream(ctx, draining, pool, s) })
	}
}

// linger gives the last frames written time to reach the remote before
// the endpoint closes the drained connection (a QUIC close discards stream
// data not yet delivered): a few round trips, at most a second, or until
// the remote closes the connection itself.
func (p *Peer) linger() {
	d := 25 * time.Millisecond
	if qc, ok := quicconn.Raw(p.conn); ok {
		d += 4 * qc.ConnectionStats().SmoothedRTT
	}
	t := time.NewTimer(min(d, time.Second))
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.conn.Context().Done():
	}
}

// workerPool runs the goroutines of one connection's streams and calls. A
// fresh goroutine per call spent much of its time growing its stack (frame
// decoding, JSON and validation run deep); a reused one keeps it. A task
// goes to an idle worker when there is one, else to a new worker, so there
// are never more workers than tasks in flight; a worker idle for
// workerIdle exits.
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

// workerIdle is how long a worker waits for the next task.
const workerIdle = 10 * time.Second

// serveStream reads the frames of one stream and runs the calls they
// start until the caller ends its side (FIN) and every call started on it
// has sent its last frame; then it ends its own side.
func (p *Peer) serveStream(ctx, draining context.Context, pool *workerPool, s core.Stream) {
	st := &srvStream{p: p, s: s, pool: pool, calls: map[*srvCall]struct{}{}, idle: make(chan struct{}, 1)}
	// A stream reset or STOP_SENDING from the caller cancels its calls at
	// once, not only at the next write.
	if rs, ok := quicconn.RawStream(s); ok {
		stop := context.AfterFunc(rs.Context(), func() { st.cancelAll(errCallerGone) })
		defer stop()
	}
	stopDrain := context.AfterFunc(draining, st.drain)
	defer stopDrain()

	br := bufio.NewReaderSize(s, 4096)
	if p.cfg.RequestTimeout > 0 {
		_ = s.SetReadDeadline(time.Now().Add(p.cfg.RequestTimeout))
	}
	first, clean := true, true
	for {
		body, reserved, err := p.readFrame(ctx, br)
		if err != nil {
			switch {
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				// FIN: no more requests; the calls started go on.
			case errors.Is(err, ErrFrameSize):
				st.sendError(ctx, "", NewError(CodeInvalidInput, "%s", strings.TrimPrefix(err.Error(), "alknet/call: ")))
				clean = false
			case errors.Is(err, os.ErrDeadlineExceeded) && !first:
				// draining, or the stream broke: stop reading.
				clean = !st.isBroken()
			case first && errors.Is(err, os.ErrDeadlineExceeded):
				clean = false
			default:
				// reset, STOP_SENDING or the connection closed
				st.cancelAll(errCallerGone)
				clean = false
			}
			break
		}
		if first {
			first = false
			st.mu.Lock()
			if !st.draining && !st.broken {
				_ = s.SetReadDeadline(time.Time{})
			}
			st.mu.Unlock()
		}
		st.handle(ctx, draining, body, reserved)
	}
	// Wait for the calls started on this stream and their last frames.
	for {
		st.mu.Lock()
		idle := len(st.calls) == 0 && !st.writing && len(st.pending) == 0
		broken := st.broken
		st.mu.Unlock()
		if idle {
			if clean && !broken {
				_ = s.CloseWrite()
			}
			_ = s.Close()
			return
		}
		<-st.idle
	}
}

func (st *srvStream) isBroken() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.broken
}

// readFrame reads one frame within the connection's budget; the caller
// releases the reservation returned.
func (p *Peer) readFrame(ctx context.Context, r io.Reader) ([]byte, int64, error) {
	n, err := readLength(r, p.cfg.MaxFrameSize)
	if err != nil {
		return nil, 0, err
	}
	reserved, err := p.budget.acquire(ctx, n*decodeFactor)
	if err != nil {
		return nil, 0, err
	}
	body, err := readBody(r, n)
	if err != nil {
		p.budget.release(reserved)
		return nil, 0, err
	}
	return body, reserved, nil
}

// handle acts on one frame from the caller: it starts a call, aborts one,
// or answers a frame that has no place here.
func (st *srvStream) handle(ctx, draining context.Context, body []byte, reserved int64) {
	p := st.p
	env, err := decodeWire(body)
	if err != nil {
		p.budget.release(reserved)
		st.sendError(ctx, "", NewError(CodeInvalidInput, "malformed envelope"))
		return
	}
	switch env.Type {
	case TypeRequested:
	case TypeAborted:
		p.budget.release(reserved)
		p.abort(env.ID)
		return
	default:
		p.budget.release(reserved)
		st.sendError(ctx, env.ID, NewError(CodeInvalidOperationType, "expected %s, got %q", TypeRequested, clip(env.Type)))
		return
	}
	cctx, cancel := context.WithCancelCause(ctx)
	c := &srvCall{id: env.ID, st: st, cancel: cancel, space: make(chan struct{}, 1)}
	if e := p.register(c); e != nil {
		cancel(nil)
		p.budget.release(reserved)
		st.sendError(ctx, env.ID, e)
		return
	}
	st.pool.run(func() {
		defer st.endCall(c)
		st.runCall(cctx, c, env.Payload, reserved)
	})
}

// register enters c in the connection's table of calls and its stream's,
// or returns the error that refuses it.
func (p *Peer) register(c *srvCall) *Error {
	st := c.st
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	if _, dup := p.calls[c.id]; dup {
		return NewError(CodeInvalidInput, "call id %q is already in flight on this connection", clip(c.id))
	}
	if p.cfg.MaxCalls > 0 && len(p.calls) >= p.cfg.MaxCalls {
		return NewError(CodeUnavailable, "too many calls in flight on this connection (limit %d)", p.cfg.MaxCalls)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.draining {
		return NewError(CodeUnavailable, "node shutting down")
	}
	if p.cfg.MaxCallsPerStream > 0 && st.active >= p.cfg.MaxCallsPerStream {
		return NewError(CodeUnavailable, "too many calls in flight on this stream (limit %d)", p.cfg.MaxCallsPerStream)
	}
	p.calls[c.id] = c
	st.calls[c] = struct{}{}
	st.active++
	return nil
}

// release takes c out of the calls in flight once its last frame is on its
// way or it was aborted: its id may be used again, and it no longer counts
// against the limits (its goroutine may run a little longer).
func (p *Peer) release(c *srvCall) {
	if !c.released.CompareAndSwap(false, true) || c.cancel == nil {
		return
	}
	p.srvMu.Lock()
	if p.calls[c.id] == c {
		delete(p.calls, c.id)
	}
	p.srvMu.Unlock()
	c.st.mu.Lock()
	c.st.active--
	c.st.mu.Unlock()
}

// endCall removes a finished call from both tables.
func (st *srvStream) endCall(c *srvCall) {
	st.p.release(c)
	c.cancel(nil)
	st.mu.Lock()
	delete(st.calls, c)
	c.done = true
	st.checkIdleLocked()
	st.mu.Unlock()
}

// abort cancels the call in flight with id, on whichever stream it runs;
// an unknown id is ignored.
func (p *Peer) abort(id string) {
	p.srvMu.Lock()
	c := p.calls[id]
	p.srvMu.Unlock()
	if c != nil {
		c.cancel(errAborted)
	}
}

// remoteIdentity is the remote's identity for the checks of a new call: on
// a dialed connection resolved afresh through Config.Identities (no
// endpoint re-checks it), else the one the endpoint resolved at accept.
func (p *Peer) remoteIdentity() *core.Identity {
	if p.fresh && p.cfg.Identities != nil {
		id, _ := p.cfg.Identities.IdentityByFingerprint(p.fingerprint())
		return id
	}
	return p.conn.Identity()
}

// authorize resolves the subject of a call (the remote, or the identity of
// its auth_token) and checks the gate and the operation's access. It
// returns the subject and the error to answer, if any.
func (p *Peer) authorize(e *entry, token string) (*core.Identity, bool, *Error) {
	remote := p.remoteIdentity()
	if !p.cfg.Access.IsOpen() {
		if err := p.cfg.Access.Check(remote); err != nil {
			return nil, false, NewError(CodeForbidden, "%s", err.Error())
		}
	}
	subject, byToken := remote, false
	if token != "" {
		var ok bool
		if p.cfg.Identities != nil {
			subject, ok = p.cfg.Identities.IdentityByToken([]byte(token))
		}
		if !ok {
			return nil, false, NewError(CodeForbidden, "invalid auth token")
		}
		byToken = true
	}
	if err := e.allowed(subject); err != nil {
		return nil, false, NewError(CodeForbidden, "%s", err.Error())
	}
	return subject, byToken, nil
}

// Reauthorize re-checks the calls this side serves on the connection
// against the identities as they resolve now (the auth_token of each call,
// and on a dialed connection the remote itself) and ends those that no
// longer pass with FORBIDDEN "access revoked". It returns how many it
// ended.
func (p *Peer) Reauthorize() int {
	p.srvMu.Lock()
	p.authGen++
	var check []*srvCall
	for _, c := range p.calls {
		if c.checked {
			check = append(check, c)
		}
	}
	p.srvMu.Unlock()
	n := 0
	for _, c := range check {
		if _, _, err := p.authorize(c.e, c.token); err != nil {
			c.cancel(errRevoked)
			n++
		}
	}
	return n
}

// runCall runs one call whose call.requested was read; reserved is the
// budget its frame holds until its input is checked.
func (st *srvStream) runCall(cctx context.Context, c *srvCall, req wirePayload, reserved int64) {
	p := st.p
	release := func() {
		p.budget.release(reserved)
		reserved = 0
	}
	defer func() { release() }()
	fail := func(e *Error) {
		frame, err := encodeFrame(TypeError, c.id, e, p.cfg.MaxFrameSize)
		if err == nil {
			_ = st.send(cctx, c, frame, true)
		}
	}
	name := strings.TrimPrefix(req.OperationID, "/")
	e, ok := p.reg.lookup(name)
	if !ok || e.spec.Visibility != External {
		release()
		fail(NewError(CodeNotFound, "no operation /%s", clip(name)))
		return
	}
	// The call's logger is built only when a line is written: the peer's
	// fingerprint and address cost more than a successful call's work.
	log := func() *slog.Logger {
		return p.log.With("op", name, "peer", p.fingerprint(), "remote", p.conn.RemoteAddr().String())
	}
	p.srvMu.Lock()
	gen := p.authGen
	p.srvMu.Unlock()
	subject, byToken, aerr := p.authorize(e, req.AuthToken)
	if aerr != nil {
		release()
		log().Warn("call refused", "code", CodeForbidden, "reason", aerr.Message)
		fail(aerr)
		return
	}
	p.srvMu.Lock()
	c.e, c.token, c.checked = e, req.AuthToken, true
	recheck := p.authGen != gen // a reload ran while we resolved
	p.srvMu.Unlock()
	if recheck {
		if _, _, aerr := p.authorize(e, req.AuthToken); aerr != nil {
			release()
			fail(NewError(CodeForbidden, "access revoked"))
			return
		}
	}
	caller := &Caller{Identity: subject, Node: p.conn.RemoteID(), ByToken: byToken, ForwardedFor: req.ForwardedFor}
	cctx = WithCaller(cctx, caller)
	input, err := e.check(req.Input)
	release()
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			fail(ce)
		}
		return
	}

	unary := e.spec.Kind != KindSubscription
	if !unary {
		st.mu.Lock()
		c.sub = true
		drained := st.draining
		st.mu.Unlock()
		if drained {
			c.cancel(errShuttingDown)
		}
	}
	timeout := e.timeout
	if timeout == 0 && unary {
		timeout = p.cfg.CallTimeout
	}
	if timeout > 0 {
		var cancelT context.CancelFunc
		cctx, cancelT = context.WithTimeout(cctx, timeout)
		defer cancelT()
	}
	// When the call ends early, answer at once, even if the handler has
	// not noticed yet (endEarly runs again when it returns, in case this
	// did not get to run).
	endEarly := func() {
		switch cause := context.Cause(cctx); {
		case errors.Is(cause, context.DeadlineExceeded):
			fail(NewError(CodeTimeout, "%s timed out after %s", name, timeout))
		case errors.Is(cause, errRevoked):
			fail(NewError(CodeForbidden, "access revoked"))
		case errors.Is(cause, errShuttingDown):
			if frame, err := encodeFrame(TypeAborted, c.id, nil, p.cfg.MaxFrameSize); err == nil {
				_ = st.send(cctx, c, frame, true)
			}
		default: // aborted by the caller: drop what is queued
			st.mu.Lock()
			st.dropLocked(c)
			st.mu.Unlock()
			p.release(c)
		}
	}
	stop := context.AfterFunc(cctx, endEarly)
	defer stop()

	start := time.Now()
	emitted := false
	err = p.reg.run(cctx, e, input, func(v any) error {
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
		frame, err := encodeFrame(TypeResponded, c.id, Response{Output: out}, p.cfg.MaxFrameSize)
		if err != nil {
			return err
		}
		return st.send(cctx, c, frame, unary)
	})
	cause := context.Cause(cctx)
	switch {
	case errors.Is(cause, errAborted) || errors.Is(cause, errCallerGone):
		log().Debug("call aborted", "dur", time.Since(start))
		endEarly()
	case errors.Is(cause, errRevoked):
		log().Warn("call ended", "code", CodeForbidden, "reason", "access revoked", "dur", time.Since(start))
		endEarly()
	case cctx.Err() != nil && !errors.Is(cause, context.DeadlineExceeded):
		endEarly() // shutting down: call.aborted
	case err != nil:
		pe := p.reg.publicError(cctx, e, err)
		if pe.Code != CodeTimeout {
			log().Info("call failed", "code", pe.Code, "dur", time.Since(start))
		}
		fail(pe)
	case cctx.Err() != nil:
		endEarly() // deadline: TIMEOUT
	case !unary:
		if frame, err := encodeFrame(TypeCompleted, c.id, nil, p.cfg.MaxFrameSize); err == nil {
			_ = st.send(cctx, c, frame, true)
		}
	case !emitted:
		if frame, err := encodeFrame(TypeResponded, c.id, Response{Output: json.RawMessage("null")}, p.cfg.MaxFrameSize); err == nil {
			_ = st.send(cctx, c, frame, true)
		}
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

var (
	_ core.ProtocolHandler = (*Server)(nil)
	_ core.SingleStreamer  = (*Server)(nil)
)
