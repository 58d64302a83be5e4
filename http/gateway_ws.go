package alkhttp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/alkdev/alknet/call"
	"github.com/coder/websocket"
)

// maxCallID bounds a call id taken from a WebSocket message.
const maxCallID = 256

// socket serves GET /v1/ws: each text message is one call envelope of the
// call protocol (call.requested, call.aborted), answered with envelopes
// (call.responded, call.completed, call.error) by id; any number of calls
// run at once. The subject of a call is the identity of its auth_token
// when it carries one, else the caller of the upgrade request.
func (g *Gateway) socket(w http.ResponseWriter, r *http.Request) {
	hc := Caller(r)
	if hc.BadToken {
		writeDenied(w, r, hc, "invalid bearer token")
		return
	}
	var patterns []string
	for _, o := range g.cfg.OriginPatterns {
		if _, host, ok := strings.Cut(o, "://"); ok {
			patterns = append(patterns, host)
		} else {
			patterns = append(patterns, o)
		}
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: patterns})
	if err != nil {
		return // Accept answered the request
	}
	ws.SetReadLimit(g.cfg.MaxInputBytes)
	ctx, cancel := context.WithCancel(r.Context())
	s := &socketSession{g: g, r: r, ws: ws, ctx: ctx, caller: hc, calls: map[string]context.CancelCauseFunc{}}
	// When the endpoint drains, the socket closes with 1001 (going away):
	// the read loop then ends. (Cancelling a read would drop the
	// connection without a close frame.)
	dctx, dcancel := DrainContext(r)
	stop := context.AfterFunc(dctx, func() {
		if r.Context().Err() == nil {
			s.cancelAll()
			_ = ws.Close(websocket.StatusGoingAway, "node shutting down")
		}
	})
	s.readLoop()
	stop()
	dcancel()
	cancel()
	s.cancelAll()
	s.wg.Wait()
	_ = ws.Close(websocket.StatusNormalClosure, "")
}

type socketSession struct {
	g      *Gateway
	r      *http.Request
	ws     *websocket.Conn
	ctx    context.Context
	caller CallerInfo

	mu    sync.Mutex
	calls map[string]context.CancelCauseFunc
	wg    sync.WaitGroup
}

var errAborted = errors.New("alknet/http: call aborted by the caller")

func (s *socketSession) readLoop() {
	for {
		typ, data, err := s.ws.Read(s.ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			s.send("", call.TypeError, call.NewError(call.CodeInvalidInput, "messages must be text (JSON envelopes)"))
			continue
		}
		env, req, e := decodeSocketMessage(data)
		if e != nil {
			s.send(env.ID, call.TypeError, e)
			continue
		}
		switch env.Type {
		case call.TypeRequested:
			s.start(env.ID, req)
		case call.TypeAborted:
			s.mu.Lock()
			cancel := s.calls[env.ID]
			s.mu.Unlock()
			if cancel != nil {
				cancel(errAborted)
			}
		}
	}
}

// decodeSocketMessage decodes one WebSocket message: a call envelope of
// type call.requested (with its payload) or call.aborted, whose id is at
// most maxCallID bytes. The error is what to answer, under the returned
// envelope's id ("" when the message has none that can be trusted).
func decodeSocketMessage(data []byte) (call.Envelope, call.Request, *call.Error) {
	var env call.Envelope
	if err := json.Unmarshal(data, &env); err != nil || len(env.ID) > maxCallID {
		return call.Envelope{}, call.Request{}, call.NewError(call.CodeInvalidInput, "malformed envelope")
	}
	var req call.Request
	switch env.Type {
	case call.TypeRequested:
		if len(env.Payload) == 0 || json.Unmarshal(env.Payload, &req) != nil {
			return env, call.Request{}, call.NewError(call.CodeInvalidInput, "malformed call.requested payload")
		}
	case call.TypeAborted:
	default:
		return env, call.Request{}, call.NewError(call.CodeInvalidOperationType, "expected %s, got %q", call.TypeRequested, clipString(env.Type))
	}
	return env, req, nil
}

// start checks and starts one call.
func (s *socketSession) start(id string, req call.Request) {
	s.mu.Lock()
	if _, dup := s.calls[id]; dup {
		s.mu.Unlock()
		s.send(id, call.TypeError, call.NewError(call.CodeInvalidInput, "call id %q is already in flight on this socket", clipString(id)))
		return
	}
	if len(s.calls) >= s.g.cfg.MaxSocketCalls {
		s.mu.Unlock()
		s.send(id, call.TypeError, call.NewError(call.CodeUnavailable, "too many calls in flight on this socket (limit %d)", s.g.cfg.MaxSocketCalls))
		return
	}
	cctx, cancel := context.WithCancelCause(s.ctx)
	s.calls[id] = cancel
	s.mu.Unlock()
	s.wg.Go(func() {
		defer func() {
			s.mu.Lock()
			delete(s.calls, id)
			s.mu.Unlock()
			cancel(nil)
		}()
		s.run(cctx, id, req)
	})
}

// run runs one call and sends its answer.
func (s *socketSession) run(ctx context.Context, id string, req call.Request) {
	subject := s.caller
	if req.AuthToken != "" {
		subject = CallerInfo{Node: s.caller.Node, BadToken: true}
		if ids := identitiesOf(s.r); ids != nil && len(req.AuthToken) <= maxTokenLen {
			if ident, ok := ids.IdentityByToken([]byte(req.AuthToken)); ok {
				subject = CallerInfo{Identity: ident, Node: s.caller.Node, ByToken: true}
			}
		}
		if subject.BadToken {
			s.send(id, call.TypeError, call.NewError(call.CodeForbidden, "invalid auth token"))
			return
		}
	}
	if err := s.g.cfg.Access.Check(subject.Identity); err != nil {
		s.send(id, call.TypeError, call.NewError(call.CodeForbidden, "%s", err.Error()))
		return
	}
	c := &call.Caller{Identity: subject.Identity, Node: subject.Node, ByToken: subject.ByToken}
	inv, e := s.g.cfg.Registry.Prepare(req.OperationID, c, req.Input)
	if e != nil {
		s.send(id, call.TypeError, e)
		return
	}
	e = inv.Run(ctx, s.g.cfg.CallTimeout, func(out json.RawMessage) error {
		return s.send(id, call.TypeResponded, call.Response{Output: out})
	})
	if errors.Is(context.Cause(ctx), errAborted) || s.ctx.Err() != nil {
		return // an aborted call sends nothing more
	}
	switch {
	case e != nil:
		s.send(id, call.TypeError, e)
	case inv.Spec().Kind == call.KindSubscription:
		s.send(id, call.TypeCompleted, nil)
	}
}

// send writes one envelope.
func (s *socketSession) send(id, typ string, payload any) error {
	var raw json.RawMessage
	if payload != nil {
		b, err := marshal(payload)
		if err != nil {
			return err
		}
		raw = b
	}
	b, err := marshal(call.Envelope{Type: typ, ID: id, Payload: raw})
	if err != nil {
		return err
	}
	return s.ws.Write(s.ctx, websocket.MessageText, b)
}

func (s *socketSession) cancelAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cancel := range s.calls {
		cancel(context.Canceled)
	}
}

// clipString bounds a string echoed in an error.
func clipString(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "..."
}
