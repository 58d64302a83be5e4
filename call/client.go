package call

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"
)

// Peer is one alknet/call connection, seen from either end: it serves its
// registry on the streams the remote opens (Serve) and calls the remote's
// operations on streams it opens (Call, Subscribe). A Server makes one per
// accepted connection; Dial makes one for a dialed connection.
type Peer struct {
	conn  core.Conn
	cfg   Config
	reg   *Registry
	log   *slog.Logger
	known map[string]bool
	seq   atomic.Uint64

	closeOnce sync.Once
	mu        sync.Mutex
	closing   bool
	drains    sync.WaitGroup // background reads of answered streams' ends
	serveDone chan struct{}  // closed when the background Serve of Dial returns; nil otherwise

	// the calls this side serves
	budget  *budget
	fresh   bool // resolve the remote's identity for every call (dialed connections)
	fpOnce  sync.Once
	fp      string
	srvMu   sync.Mutex
	calls   map[string]*srvCall // in flight, by id (ids are scoped to the connection)
	authGen uint64              // counts Reauthorize runs

	shared sharedStream // the stream of Config.Multiplex
}

// fingerprint is the remote's fingerprint, computed once.
func (p *Peer) fingerprint() string {
	p.fpOnce.Do(func() { p.fp = p.conn.RemoteID().Fingerprint() })
	return p.fp
}

func newPeer(conn core.Conn, cfg Config) *Peer {
	p := &Peer{conn: conn, cfg: cfg, reg: cfg.Registry, log: cfg.Logger, known: map[string]bool{},
		budget: newBudget(cfg.MaxBufferedBytes), calls: map[string]*srvCall{}}
	for c := range standardCodes {
		p.known[c] = true
	}
	for _, c := range cfg.KnownCodes {
		p.known[c] = true
	}
	return p
}

// NewPeer wraps a connection that negotiated alknet/call. Call Serve to
// answer the remote's calls; Call and Subscribe work right away. Serve
// checks cfg.Access as the gate; on a connection this side dialed, where no
// endpoint gate ran, set it (or use Dial, which does). A
// connection that reports a single stream (a SingleStream() bool method
// returning true, as a TCP connection would) always multiplexes its calls.
func NewPeer(conn core.Conn, cfg Config) *Peer {
	if ss, ok := conn.(interface{ SingleStream() bool }); ok && ss.SingleStream() {
		cfg.Multiplex = true
	}
	return newPeer(conn, cfg.withDefaults())
}

// Dial connects ep to addr on alknet/call and returns a Peer that already
// serves cfg.Registry to the remote in the background (both sides of a
// connection may serve). No endpoint gate checks a dialed connection, so
// Dial applies cfg.Access to every call the remote makes, and when it is
// the zero value the gate a node puts on alknet/call: {RequiredScopes:
// ["call"]}. The remote's identity is resolved through cfg.Identities for
// every call (set it to the live peer table, so that revoking the remote
// takes effect at once; Reauthorize ends its calls in flight), else it is
// the one ep resolved when dialing. Close ends the connection and that
// serving.
func Dial(ctx context.Context, ep *core.Endpoint, addr core.Addr, cfg Config) (*Peer, error) {
	conn, err := ep.Dial(ctx, addr, ALPN)
	if err != nil {
		return nil, err
	}
	return dialed(conn, cfg), nil
}

// DialTCP is Dial over the node's TCP+TLS listener (same pinning, same
// gate), for networks that block UDP. The connection has one stream, so
// every call is multiplexed on it; the remote cannot call back on it.
func DialTCP(ctx context.Context, ep *core.Endpoint, addr core.Addr, cfg Config) (*Peer, error) {
	conn, err := ep.DialTCP(ctx, addr, ALPN)
	if err != nil {
		return nil, err
	}
	return dialed(conn, cfg), nil
}

// dialed wraps a connection this side dialed and serves cfg.Registry on it.
func dialed(conn core.Conn, cfg Config) *Peer {
	if cfg.Access.IsOpen() {
		cfg.Access = core.AccessControl{RequiredScopes: []string{"call"}}
	}
	p := NewPeer(conn, cfg)
	p.fresh = true
	p.serveDone = make(chan struct{})
	go func() {
		defer close(p.serveDone)
		_ = p.Serve(conn.Context())
	}()
	return p
}

// Conn returns the underlying connection.
func (p *Peer) Conn() core.Conn { return p.conn }

// Registry returns the registry this side serves.
func (p *Peer) Registry() *Registry { return p.reg }

// Done is closed when the connection is gone.
func (p *Peer) Done() <-chan struct{} { return p.conn.Context().Done() }

// Close closes the connection and waits for the background serving that
// Dial started.
func (p *Peer) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closing = true
		p.mu.Unlock()
		err = p.conn.Close(core.CodeOK, "")
		p.drains.Wait()
		if p.serveDone != nil {
			<-p.serveDone
		}
	})
	return err
}

// Call runs the remote operation op ("ns/op"; a leading slash is allowed)
// with input in and decodes its output into out (nil discards it). It
// returns at the first call.responded; called on a subscription, it returns
// the first item and cancels the rest. Cancelling ctx sends call.aborted and returns ctx's error. A call.error
// is returned as *Error.
func (p *Peer) Call(ctx context.Context, op string, in, out any) error {
	var got json.RawMessage
	err := p.run(ctx, op, in, nil, func(raw json.RawMessage) error {
		got = raw
		return errDone
	})
	if err != nil {
		return err
	}
	if got == nil {
		return ErrNoResponse
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(got, out); err != nil {
		return fmt.Errorf("decode output of %s: %w", op, err)
	}
	return nil
}

// Subscribe runs the remote subscription op and yields each item's raw
// JSON output until call.completed. A failure is yielded once as the error
// (an *Error for call.error). Breaking out of the loop or cancelling ctx
// sends call.aborted. Subscribing to a query yields its one output.
func (p *Peer) Subscribe(ctx context.Context, op string, in any) iter.Seq2[json.RawMessage, error] {
	return func(yield func(json.RawMessage, error) bool) {
		err := p.run(ctx, op, in, nil, func(raw json.RawMessage) error {
			if !yield(raw, nil) {
				return errStop
			}
			return nil
		})
		if err != nil {
			yield(nil, err)
		}
	}
}

// SubscribeAs is Subscribe with each item decoded into Out.
func SubscribeAs[Out any](ctx context.Context, p *Peer, op string, in any) iter.Seq2[Out, error] {
	return func(yield func(Out, error) bool) {
		for raw, err := range p.Subscribe(ctx, op, in) {
			var o Out
			if err == nil {
				if derr := json.Unmarshal(raw, &o); derr != nil {
					err = fmt.Errorf("decode output of %s: %w", op, derr)
				}
			}
			if !yield(o, err) || err != nil {
				return
			}
		}
	}
}

// Services calls services/list: the operations the remote lets this side use.
func (p *Peer) Services(ctx context.Context) ([]Summary, error) {
	var out ListOutput
	if err := p.Call(ctx, "services/list", ListInput{}, &out); err != nil {
		return nil, err
	}
	return out.Operations, nil
}

// Schema calls services/schema for one operation.
func (p *Peer) Schema(ctx context.Context, op string) (Spec, error) {
	var out Spec
	err := p.Call(ctx, "services/schema", SchemaInput{Name: strings.TrimPrefix(op, "/")}, &out)
	return out, err
}

// goDrain runs f in a goroutine that Close waits for; false once closing.
func (p *Peer) goDrain(f func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return false
	}
	p.drains.Go(f)
	return true
}

// errStop ends a run early without an error.
var errStop = errors.New("stop")

// errDone ends a run after its answer without aborting.
var errDone = errors.New("done")

// run performs one call on a new stream and hands every output to each;
// each returning errStop ends the call (aborting it unless it is over).
func (p *Peer) run(ctx context.Context, op string, in any, fwd *ForwardedFor, each func(json.RawMessage) error) error {
	input, err := marshalJSON(in)
	if err != nil {
		return fmt.Errorf("encode input of %s: %w", op, err)
	}
	name := strings.TrimPrefix(op, "/")
	id := strconv.FormatUint(p.seq.Add(1), 10)
	frame, err := encodeFrame(TypeRequested, id, Request{
		OperationID: "/" + name, Input: input, AuthToken: authTokenFrom(ctx), ForwardedFor: fwd,
	}, p.cfg.MaxFrameSize)
	if err != nil {
		return fmt.Errorf("call %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.cfg.Multiplex {
		return p.runShared(ctx, id, frame, each)
	}
	s, err := p.conn.OpenStream(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	br := bufio.NewReaderSize(s, 4096)
	cc := &clientCall{s: s, br: br, id: id, limit: p.cfg.MaxFrameSize, peer: p}
	if _, err := s.Write(frame); err != nil {
		_ = s.Close()
		return err
	}
	// The request is this stream's only frame from us: FIN says so, and the
	// callee ends its side after the answer. An abort goes by id on a
	// stream of its own.
	_ = s.CloseWrite()
	stop := context.AfterFunc(ctx, cc.abort)
	defer func() {
		stop()
		cc.close()
	}()
	for {
		body, err := ReadFrame(br, p.cfg.MaxFrameSize)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				if cc.responded {
					cc.over = true
					return nil // a query's stream ends after its one output
				}
				return ErrNoResponse
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
		env, err := decodeWire(body)
		if err != nil {
			return err
		}
		if env.ID != id {
			continue // not ours: correlation is by id
		}
		if over, err := p.deliver(env, &cc.callState, each); over {
			return err
		}
	}
}

// callState is what the caller knows of a call's progress.
type callState struct {
	responded bool // an output arrived
	over      bool // the callee ended the call (completed, error, end of stream)
}

// deliver acts on one frame of a call: it hands an output to each and
// reports whether the call is done for the caller, with its result.
func (p *Peer) deliver(env wireEnvelope, st *callState, each func(json.RawMessage) error) (bool, error) {
	switch env.Type {
	case TypeResponded:
		out := env.Payload.Output
		if len(out) == 0 {
			out = json.RawMessage("null")
		}
		st.responded = true
		if err := each(out); err != nil {
			switch err {
			case errStop:
				return true, nil
			case errDone:
				st.over = true
				return true, nil
			}
			return true, err
		}
		return false, nil
	case TypeCompleted:
		st.over = true
		return true, nil
	case TypeError:
		st.over = true
		return true, p.decodeError(env.Payload)
	case TypeAborted:
		st.over = true
		return true, NewError(CodeInternal, "the callee aborted the call")
	}
	return false, nil
}

// decodeError turns a call.error payload into *Error, mapping codes this
// side does not know to INTERNAL.
func (p *Peer) decodeError(w wirePayload) *Error {
	if w.Code == "" {
		return NewError(CodeInternal, "malformed call.error")
	}
	e := Error{Code: w.Code, Message: w.Message, Retryable: w.Retryable, Details: w.Details, RemoteCode: w.Code}
	if !p.known[e.Code] {
		e.Code = CodeInternal
	}
	return &e
}

// clientCall is the caller's side of one stream.
type clientCall struct {
	callState
	mu      sync.Mutex
	s       core.Stream
	br      *bufio.Reader // the reader of s, owned by run until close
	id      string
	limit   int64
	closed  bool
	aborted bool // the call's context ended
	peer    *Peer
}

// abort unblocks the reader; close then sends call.aborted.
func (c *clientCall) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.aborted = true
	_ = c.s.SetReadDeadline(time.Now())
}

// close ends the stream. A call the callee has not ended is aborted by id
// (on a stream of its own), and its stream is read to the callee's end in
// the background, so that the callee sees the abort rather than a cut
// stream.
func (c *clientCall) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if !c.over {
		if !c.peer.goDrain(func() { c.peer.sendAbort(c.id) }) {
			_ = c.s.Close()
			return
		}
	} else if c.sawEnd() {
		_ = c.s.Close()
		return
	}
	_ = c.s.SetReadDeadline(time.Now().Add(lingerTimeout))
	if !c.peer.goDrain(func() {
		_, _ = io.Copy(io.Discard, c.s)
		_ = c.s.Close()
	}) {
		_ = c.s.Close()
	}
}

// sendAbort sends call.aborted for id on a new stream and waits briefly
// for the callee to end that stream.
func (p *Peer) sendAbort(id string) {
	frame, err := encodeFrame(TypeAborted, id, nil, p.cfg.MaxFrameSize)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(p.conn.Context(), time.Second)
	defer cancel()
	s, err := p.conn.OpenStream(ctx)
	if err != nil {
		return
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(lingerTimeout))
	if _, err := s.Write(frame); err != nil {
		return
	}
	_ = s.CloseWrite()
	_, _ = io.Copy(io.Discard, s)
}

// sawEnd reports whether the callee's end of stream is already here, which
// is the common case (its FIN travels with or right after its answer); the
// stream is then complete without a background read. It never blocks: a
// read deadline in the past makes the stream report only what it holds
// (a second read sees a FIN the first one dequeued).
func (c *clientCall) sawEnd() bool {
	if c.br == nil || c.br.Buffered() > 0 {
		return false
	}
	_ = c.s.SetReadDeadline(time.Now())
	for range 2 {
		if _, err := c.br.Peek(1); err == io.EOF {
			return true
		} else if err == nil {
			return false
		}
	}
	return false
}

// lingerTimeout is how long a caller whose call is over waits for the
// callee to end its side of the stream before it cuts the stream.
const lingerTimeout = 5 * time.Second
