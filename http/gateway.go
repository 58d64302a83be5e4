package alkhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
)

// GatewayConfig configures a Gateway. Registry is required; every other
// field's zero value is usable.
type GatewayConfig struct {
	// Registry holds the operations the gateway serves (its external
	// ones), with their access controls.
	Registry *call.Registry
	// Access gates every call and listing, checked against the caller's
	// identity before the operation's own access, as call.Config.Access
	// gates alknet/call. The alknet binary uses the gate of alknet/call,
	// {RequiredScopes: ["call"]}. The zero value lets anyone reach the
	// operations' own access checks.
	Access core.AccessControl
	// CallTimeout bounds a query or mutation whose operation sets no
	// timeout of its own. Zero means 30s; negative means none.
	CallTimeout time.Duration
	// MaxInputBytes bounds a call's input (the body of /v1/call, the whole
	// body of /v1/batch, the input query parameter, one WebSocket
	// message), in bytes. Zero means 1 MiB.
	MaxInputBytes int64
	// BodyTimeout bounds reading a request body. Zero means 30s.
	BodyTimeout time.Duration
	// MaxBatch bounds the calls of one /v1/batch request. Zero means 64.
	MaxBatch int
	// MaxSocketCalls bounds the calls in flight on one WebSocket; a call
	// over it is answered UNAVAILABLE. Zero means 64.
	MaxSocketCalls int
	// OriginPatterns are the browser origins besides the request's own host
	// allowed to open the WebSocket (coder/websocket AcceptOptions) and to
	// POST cross-origin. Empty allows same-origin pages only.
	OriginPatterns []string
	// Heartbeat is the interval of comment lines on an event stream, which
	// keep proxies from timing it out. Zero means 15s; negative none.
	Heartbeat time.Duration
	// Logger receives failures to answer. Nil is silent.
	Logger *slog.Logger
}

// Gateway serves the call registry over HTTP:
//
//	GET  /v1/services              the operations the caller may use
//	GET  /v1/services/{op...}      one operation's description and schemas
//	POST /v1/call/{op...}          body: input JSON; answer: output JSON
//	POST /v1/batch                 [{"id","operationId","input"}, ...]
//	GET  /v1/subscribe/{op...}     ?input=JSON; Server-Sent Events
//	GET  /v1/ws                    WebSocket; one message is one envelope
//	GET  /openapi.json             OpenAPI 3.1 of what the caller may call
//
// Errors carry the call error object as the body with a status from the
// code (see SPEC.md).
type Gateway struct {
	cfg GatewayConfig
	mux *http.ServeMux
	cop *http.CrossOriginProtection
}

// Gateway defaults.
const (
	defaultCallTimeout    = 30 * time.Second
	defaultMaxInput       = call.DefaultMaxFrameSize
	defaultBodyTimeout    = 30 * time.Second
	defaultMaxBatch       = 64
	defaultMaxSocketCalls = 64
	defaultHeartbeat      = 15 * time.Second
)

// NewGateway returns a gateway over cfg.Registry.
func NewGateway(cfg GatewayConfig) (*Gateway, error) {
	if cfg.Registry == nil {
		return nil, fmt.Errorf("%w: gateway needs a registry", ErrConfig)
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = defaultCallTimeout
	}
	if cfg.CallTimeout < 0 {
		cfg.CallTimeout = 0
	}
	if cfg.MaxInputBytes <= 0 {
		cfg.MaxInputBytes = defaultMaxInput
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = defaultBodyTimeout
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	if cfg.MaxSocketCalls <= 0 {
		cfg.MaxSocketCalls = defaultMaxSocketCalls
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = defaultHeartbeat
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{cfg: cfg, mux: http.NewServeMux(), cop: http.NewCrossOriginProtection()}
	for _, o := range cfg.OriginPatterns {
		if strings.Contains(o, "://") {
			if err := g.cop.AddTrustedOrigin(o); err != nil {
				return nil, fmt.Errorf("%w: origin %q: %v", ErrConfig, o, err)
			}
		}
	}
	g.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusForbidden, call.CodeForbidden, "cross-origin request refused")
	}))
	g.mux.HandleFunc("GET /v1/services", g.list)
	g.mux.HandleFunc("GET /v1/services/{op...}", g.describe)
	g.mux.HandleFunc("POST /v1/call/{op...}", g.call)
	g.mux.HandleFunc("POST /v1/batch", g.batch)
	g.mux.HandleFunc("GET /v1/subscribe/{op...}", g.subscribe)
	g.mux.HandleFunc("GET /v1/ws", g.socket)
	g.mux.HandleFunc("GET /openapi.json", g.openAPI)
	g.mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, call.CodeNotFound, "no such gateway endpoint")
	})
	return g, nil
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.cop.Handler(g.mux).ServeHTTP(w, r)
}

// Paths returns the path patterns the gateway serves, for mounting it on a
// mux: "/v1/" and "/openapi.json".
func (g *Gateway) Paths() []string { return []string{"/v1/", "/openapi.json"} }

// subject checks the gate for caller c and returns the call subject, or
// answers the refusal and returns false.
func (g *Gateway) subject(w http.ResponseWriter, r *http.Request, c CallerInfo) (*call.Caller, bool) {
	if c.BadToken {
		writeDenied(w, r, c, "invalid bearer token")
		return nil, false
	}
	if err := g.cfg.Access.Check(c.Identity); err != nil {
		writeDenied(w, r, c, err.Error())
		return nil, false
	}
	return &call.Caller{Identity: c.Identity, Node: c.Node, ByToken: c.ByToken}, true
}

// statusOf maps a call error code to an HTTP status; anonymous decides
// FORBIDDEN between 401 and 403.
func statusOf(code string, anonymous bool) int {
	switch code {
	case call.CodeNotFound:
		return http.StatusNotFound
	case call.CodeForbidden:
		if anonymous {
			return http.StatusUnauthorized
		}
		return http.StatusForbidden
	case call.CodeInvalidInput:
		return http.StatusUnprocessableEntity
	case call.CodeTimeout:
		return http.StatusGatewayTimeout
	case call.CodeInternal:
		return http.StatusInternalServerError
	case call.CodeUnavailable:
		return http.StatusServiceUnavailable
	case call.CodeInvalidOperationType:
		return http.StatusBadRequest
	}
	return http.StatusBadRequest // an operation's declared code: the request was refused
}

// writeCallError answers a call error with its status and object.
func writeCallError(w http.ResponseWriter, r *http.Request, c *call.Caller, e *call.Error) {
	anon := c == nil || c.Identity == nil
	if e.Code == call.CodeForbidden && anon {
		w.Header().Set("WWW-Authenticate", `Bearer realm="alknet"`)
	}
	writeJSON(w, statusOf(e.Code, anon), errorBody{Code: e.Code, Message: e.Message, Retryable: e.Retryable, Details: e.Details})
}

func (g *Gateway) list(w http.ResponseWriter, r *http.Request) {
	c, ok := g.subject(w, r, Caller(r))
	if !ok {
		return
	}
	out := call.ListOutput{Operations: []call.Summary{}}
	for _, s := range g.cfg.Registry.Allowed(c) {
		out.Operations = append(out.Operations, call.Summary{Name: s.Name, Kind: s.Kind, Description: s.Description, Access: s.Access})
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *Gateway) describe(w http.ResponseWriter, r *http.Request) {
	c, ok := g.subject(w, r, Caller(r))
	if !ok {
		return
	}
	spec, err := g.cfg.Registry.Describe(r.PathValue("op"), c)
	if err != nil {
		writeCallError(w, r, c, err)
		return
	}
	writeJSON(w, http.StatusOK, spec)
}

// readInput reads a request body as call input: empty means null; it must
// be JSON (Content-Type application/json or none) within MaxInputBytes.
func (g *Gateway) readInput(w http.ResponseWriter, r *http.Request) (json.RawMessage, *call.Error, int) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, call.NewError(call.CodeInvalidInput, "the body must be application/json"), http.StatusUnsupportedMediaType
		}
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.cfg.BodyTimeout))
	defer func() { _ = http.NewResponseController(w).SetReadDeadline(time.Time{}) }()
	body, err := io.ReadAll(io.LimitReader(r.Body, g.cfg.MaxInputBytes+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || int64(len(body)) > g.cfg.MaxInputBytes:
		return nil, call.NewError(call.CodeInvalidInput, "input is larger than %d bytes", g.cfg.MaxInputBytes), http.StatusRequestEntityTooLarge
	case err != nil:
		return nil, call.NewError(call.CodeInvalidInput, "read body: incomplete"), http.StatusBadRequest
	}
	body = trimSpace(body)
	if len(body) == 0 {
		return json.RawMessage("null"), nil, 0
	}
	if !json.Valid(body) {
		return nil, call.NewError(call.CodeInvalidInput, "input is not JSON"), http.StatusBadRequest
	}
	return body, nil, 0
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (g *Gateway) call(w http.ResponseWriter, r *http.Request) {
	c, ok := g.subject(w, r, Caller(r))
	if !ok {
		return
	}
	input, e, status := g.readInput(w, r)
	if e != nil {
		writeJSON(w, status, errorBody{Code: e.Code, Message: e.Message})
		return
	}
	inv, e := g.cfg.Registry.Prepare(r.PathValue("op"), c, input)
	if e != nil {
		writeCallError(w, r, c, e)
		return
	}
	if inv.Spec().Kind == call.KindSubscription {
		g.stream(w, r, c, inv)
		return
	}
	var out json.RawMessage
	if e := inv.Run(r.Context(), g.cfg.CallTimeout, func(v json.RawMessage) error { out = v; return nil }); e != nil {
		writeCallError(w, r, c, e)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(out, '\n'))
}

// BatchCall is one call of POST /v1/batch.
type BatchCall struct {
	ID          string          `json:"id"`
	OperationID string          `json:"operationId"`
	Input       json.RawMessage `json:"input,omitempty"`
}

// BatchResult is the answer to one BatchCall: Output, or Error.
type BatchResult struct {
	ID     string          `json:"id"`
	Output json.RawMessage `json:"output,omitempty"`
	Error  *call.Error     `json:"error,omitempty"`
}

// batchParallel bounds the calls of one batch running at once.
const batchParallel = 8

func (g *Gateway) batch(w http.ResponseWriter, r *http.Request) {
	c, ok := g.subject(w, r, Caller(r))
	if !ok {
		return
	}
	body, e, status := g.readInput(w, r)
	if e != nil {
		writeJSON(w, status, errorBody{Code: e.Code, Message: e.Message})
		return
	}
	var calls []BatchCall
	if err := json.Unmarshal(body, &calls); err != nil {
		writeError(w, r, http.StatusUnprocessableEntity, call.CodeInvalidInput, "the body must be an array of {id, operationId, input}")
		return
	}
	if len(calls) > g.cfg.MaxBatch {
		writeError(w, r, http.StatusUnprocessableEntity, call.CodeInvalidInput, fmt.Sprintf("a batch holds at most %d calls", g.cfg.MaxBatch))
		return
	}
	results := make([]BatchResult, len(calls))
	sem := make(chan struct{}, batchParallel)
	var wg sync.WaitGroup
	for i, bc := range calls {
		results[i].ID = bc.ID
		inv, e := g.cfg.Registry.Prepare(bc.OperationID, c, bc.Input)
		if e == nil && inv.Spec().Kind == call.KindSubscription {
			e = call.NewError(call.CodeInvalidOperationType, "%s is a subscription; use /v1/subscribe or /v1/ws", inv.Spec().Name)
		}
		if e != nil {
			results[i].Error = e
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i].Error = inv.Run(r.Context(), g.cfg.CallTimeout, func(v json.RawMessage) error { results[i].Output = v; return nil })
		})
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, results)
}

// readQueryInput returns the input query parameter of a subscription.
func (g *Gateway) readQueryInput(r *http.Request) (json.RawMessage, *call.Error) {
	q := r.URL.Query()["input"]
	if len(q) == 0 || q[0] == "" {
		return json.RawMessage("null"), nil
	}
	if len(q) > 1 {
		return nil, call.NewError(call.CodeInvalidInput, "input given more than once")
	}
	if int64(len(q[0])) > g.cfg.MaxInputBytes {
		return nil, call.NewError(call.CodeInvalidInput, "input is larger than %d bytes", g.cfg.MaxInputBytes)
	}
	if !json.Valid([]byte(q[0])) {
		return nil, call.NewError(call.CodeInvalidInput, "input is not JSON")
	}
	return json.RawMessage(q[0]), nil
}

// lastEventIDField is the input property through which a subscription
// resumes after the id of the last event its caller saw (the SSE
// Last-Event-ID header); see SPEC.md.
const lastEventIDField = "last_event_id"

// maxLastEventID bounds the Last-Event-ID taken from a request.
const maxLastEventID = 256

func (g *Gateway) subscribe(w http.ResponseWriter, r *http.Request) {
	c, ok := g.subject(w, r, Caller(r))
	if !ok {
		return
	}
	input, e := g.readQueryInput(r)
	if e != nil {
		writeCallError(w, r, c, e)
		return
	}
	op := r.PathValue("op")
	if last := r.Header.Get("Last-Event-ID"); last != "" && len(last) <= maxLastEventID {
		if spec, err := g.cfg.Registry.Describe(op, c); err == nil && resumable(spec) {
			input = withLastEventID(input, last)
		}
	}
	if spec, err := g.cfg.Registry.Describe(op, c); err == nil && spec.Kind == call.KindMutation {
		writeCallError(w, r, c, call.NewError(call.CodeInvalidOperationType, "%s is a mutation; use POST /v1/call", spec.Name))
		return
	}
	inv, e := g.cfg.Registry.Prepare(op, c, input)
	if e != nil {
		writeCallError(w, r, c, e)
		return
	}
	g.stream(w, r, c, inv)
}

// resumable reports whether a subscription takes last_event_id.
func resumable(spec call.Spec) bool {
	if spec.Kind != call.KindSubscription || spec.Input == nil {
		return false
	}
	_, ok := spec.Input.Properties[lastEventIDField]
	return ok
}

// withLastEventID sets last_event_id in an object input (null means {}),
// unless the input sets it already.
func withLastEventID(input json.RawMessage, id string) json.RawMessage {
	var m map[string]json.RawMessage
	if string(input) != "null" {
		if err := json.Unmarshal(input, &m); err != nil || m == nil {
			return input
		}
	}
	if m == nil {
		m = map[string]json.RawMessage{}
	}
	if _, set := m[lastEventIDField]; set {
		return input
	}
	b, _ := json.Marshal(id)
	m[lastEventIDField] = b
	out, err := json.Marshal(m)
	if err != nil {
		return input
	}
	return out
}

// eventID returns the SSE id of an item of a resumable subscription: its
// top-level "id" when that is a string or a number.
func eventID(item json.RawMessage) string {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(item, &v) != nil || len(v.ID) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(v.ID, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(v.ID, &n) == nil {
		return n.String()
	}
	return ""
}

// stream answers a prepared call as Server-Sent Events: one event per
// output (data: the output JSON), then "call.completed" or "call.error".
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, c *call.Caller, inv *call.Invocation) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	withIDs := resumable(inv.Spec())

	var mu sync.Mutex // the heartbeat and the events share w
	write := func(s string) error {
		mu.Lock()
		defer mu.Unlock()
		if _, err := io.WriteString(w, s); err != nil {
			return err
		}
		return rc.Flush()
	}
	ctx, cancel := DrainContext(r)
	defer cancel()
	var beat sync.WaitGroup
	if g.cfg.Heartbeat > 0 {
		beat.Go(func() {
			t := time.NewTicker(g.cfg.Heartbeat)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if write(": keep-alive\n\n") != nil {
						cancel()
						return
					}
				}
			}
		})
	}
	e := inv.Run(ctx, g.cfg.CallTimeout, func(item json.RawMessage) error {
		var b strings.Builder
		if withIDs {
			if id := eventID(item); id != "" && !strings.ContainsAny(id, "\r\n") {
				b.WriteString("id: " + id + "\n")
			}
		}
		if bytes.ContainsAny(item, "\r\n") {
			var cb bytes.Buffer
			if json.Compact(&cb, item) == nil {
				item = cb.Bytes()
			}
		}
		b.WriteString("data: ")
		b.Write(item)
		b.WriteString("\n\n")
		return write(b.String())
	})
	cancel()
	beat.Wait()
	if r.Context().Err() != nil {
		return
	}
	if e != nil {
		b, _ := marshal(errorBody{Code: e.Code, Message: e.Message, Retryable: e.Retryable, Details: e.Details})
		_ = write("event: " + call.TypeError + "\ndata: " + string(b) + "\n\n")
		return
	}
	_ = write("event: " + call.TypeCompleted + "\ndata: {}\n\n")
}
