package alkhttp

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
)

var fuzzUser = &core.Identity{ID: "user", Scopes: []string{"call"}}

func fuzzGateway(t testing.TB) *Gateway {
	g, err := NewGateway(GatewayConfig{Registry: testRegistry(), Access: core.AccessControl{RequiredScopes: []string{"call"}}, MaxInputBytes: 4096, MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// checkAnswer checks the property every gateway answer has: a JSON body;
// an error object whose code fits the status otherwise.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	body := rec.Body.Bytes()
	if rec.Code/100 == 3 {
		if rec.Header().Get("Location") == "" {
			t.Fatalf("redirect without Location")
		}
		return // the mux cleans paths ("//", "/./") by redirecting
	}
	if rec.Header().Get("Content-Type") == "text/event-stream" {
		if !bytes.HasSuffix(body, []byte("\n\n")) {
			t.Fatalf("event stream not ended by a blank line: %q", body)
		}
		return
	}
	if !json.Valid(body) {
		t.Fatalf("status %d: body is not JSON: %q", rec.Code, body)
	}
	if rec.Code == http.StatusOK {
		return
	}
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Code == "" || e.Message == "" {
		t.Fatalf("status %d: not an error object: %q", rec.Code, body)
	}
	switch rec.Code {
	case http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusBadRequest:
		return // body read errors, declared codes, INVALID_OPERATION_TYPE
	}
	if want := statusOf(e.Code, false); want != rec.Code {
		t.Fatalf("code %s answered with status %d, want %d", e.Code, rec.Code, want)
	}
}

// FuzzGatewayCall feeds POST /v1/call/{op} any operation path and body.
func FuzzGatewayCall(f *testing.F) {
	for _, s := range []struct{ op, body string }{
		{"test/echo", `{"msg":"hi"}`}, {"test/echo", `{"msg":5}`}, {"test/double", `21`}, {"test/double", `"x"`},
		{"test/secret", ``}, {"test/nope", `{}`}, {"test/internal", `null`}, {"test/ticks", `{"n":2}`},
		{"/test/echo", " \n{\"msg\":\"\\u0000\"}\t"}, {"test/echo", `{"msg":`}, {"..%2f..", `[]`},
	} {
		f.Add(s.op, []byte(s.body))
	}
	g := fuzzGateway(f)
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		u := &url.URL{Scheme: "https", Host: "node", Path: "/v1/call/" + op}
		req := httptest.NewRequest("POST", u.String(), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req = WithCaller(req, CallerInfo{Identity: fuzzUser, ByToken: true})
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		checkAnswer(t, rec)
		if int64(len(bytes.TrimSpace(body))) > 4096 && rec.Code == http.StatusOK {
			t.Fatalf("input over the limit accepted")
		}
		if rec.Code == http.StatusOK && strings.TrimPrefix(op, "/") == "test/echo" {
			var out echoOut
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Caller != "user" {
				t.Fatalf("echo answered %q", rec.Body.String())
			}
		}
	})
}

// FuzzGatewayBatch feeds POST /v1/batch any body.
func FuzzGatewayBatch(f *testing.F) {
	f.Add([]byte(`[{"id":"a","operationId":"test/echo","input":{"msg":"x"}},{"id":"b","operationId":"test/double","input":2}]`))
	f.Add([]byte(`[{"id":"a","operationId":"test/ticks"}]`))
	f.Add([]byte(`[{},{},{},{},{}]`))
	f.Add([]byte(`{"id":"a"}`))
	f.Add([]byte(`[null]`))
	g := fuzzGateway(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "https://node/v1/batch", bytes.NewReader(body))
		req = WithCaller(req, CallerInfo{Identity: fuzzUser, ByToken: true})
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		checkAnswer(t, rec)
		if rec.Code != http.StatusOK {
			return
		}
		var in []BatchCall
		if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 {
			in = nil // no body: an empty batch
		} else if err := json.Unmarshal(trimmed, &in); err != nil {
			t.Fatalf("a body that is not a batch was answered 200: %q", body)
		}
		var out []BatchResult
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("batch answer: %v", err)
		}
		if len(out) != len(in) || len(out) > 4 {
			t.Fatalf("%d calls, %d results (limit 4)", len(in), len(out))
		}
		for i := range out {
			if out[i].ID != in[i].ID {
				t.Fatalf("result %d has id %q, call has %q", i, out[i].ID, in[i].ID)
			}
			if (out[i].Error == nil) == (len(out[i].Output) == 0) {
				t.Fatalf("result %d has neither or both of output and error: %+v", i, out[i])
			}
		}
	})
}

// FuzzGatewaySubscribe feeds GET /v1/subscribe/{op} any input parameter and
// Last-Event-ID.
func FuzzGatewaySubscribe(f *testing.F) {
	f.Add("test/ticks", `{"n":3}`, "")
	f.Add("test/ticks", `{"n":3}`, "1")
	f.Add("test/ticks", `null`, "x\ny")
	f.Add("test/ticks", `{"n":2,"last_event_id":"1"}`, "0")
	f.Add("test/echo", `{"msg":"a"}`, "")
	f.Add("test/set", `{"msg":"a"}`, "")
	g := fuzzGateway(f)
	f.Fuzz(func(t *testing.T, op, input, last string) {
		if strings.Contains(input, "\"n\":") && len(input) > 64 {
			return // keep the counts the subscription runs small
		}
		u := &url.URL{Scheme: "https", Host: "node", Path: "/v1/subscribe/" + op, RawQuery: url.Values{"input": {input}}.Encode()}
		req := httptest.NewRequest("GET", u.String(), nil)
		if strings.ContainsAny(last, "\r\n\x00") {
			last = ""
		}
		req.Header.Set("Last-Event-ID", last)
		req = WithCaller(req, CallerInfo{Identity: fuzzUser, ByToken: true})
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		checkAnswer(t, rec)
	})
}

// FuzzSocketMessage checks the WebSocket message decoder: an accepted
// message is a request or an abort with a bounded id.
func FuzzSocketMessage(f *testing.F) {
	f.Add([]byte(`{"type":"call.requested","id":"1","payload":{"operationId":"/test/echo","input":{"msg":"x"}}}`))
	f.Add([]byte(`{"type":"call.aborted","id":"1"}`))
	f.Add([]byte(`{"type":"call.responded","id":"1","payload":{}}`))
	f.Add([]byte(`{"type":"call.requested","id":"1"}`))
	f.Add([]byte(`{"type":`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, req, e := decodeSocketMessage(data)
		if e != nil {
			if e.Code != call.CodeInvalidInput && e.Code != call.CodeInvalidOperationType {
				t.Fatalf("code %s", e.Code)
			}
			return
		}
		if len(env.ID) > maxCallID {
			t.Fatalf("id of %d bytes accepted", len(env.ID))
		}
		switch env.Type {
		case call.TypeRequested:
			if !json.Valid(env.Payload) {
				t.Fatalf("payload not JSON")
			}
			_ = req
		case call.TypeAborted:
		default:
			t.Fatalf("type %q accepted", env.Type)
		}
	})
}

// FuzzStaticPath checks that a URL path always maps to a name inside the
// root: valid, without "..", and without dot segments unless allowed.
func FuzzStaticPath(f *testing.F) {
	for _, p := range []string{"/", "/a/b", "/../x", "/a/../../b", "/.env", "/.well-known/x", "//a//b/", "/a\\..\\b", "/\x00", "/a/./b"} {
		f.Add(p)
	}
	s := &Static{}
	f.Fuzz(func(t *testing.T, p string) {
		name, ok := s.clean(p)
		if !ok {
			return
		}
		if !fs.ValidPath(name) {
			t.Fatalf("%q -> invalid name %q", p, name)
		}
		for _, seg := range strings.Split(name, "/") {
			if seg == ".." || (strings.HasPrefix(seg, ".") && seg != "." && seg != ".well-known") {
				t.Fatalf("%q -> %q has segment %q", p, name, seg)
			}
		}
	})
}

// FuzzLastEventID checks that the resume id reaches an object input as
// last_event_id, unless the input sets one, and that the input stays JSON.
func FuzzLastEventID(f *testing.F) {
	f.Add(`{"n":3}`, "7")
	f.Add(`null`, "a\"b")
	f.Add(`{"last_event_id":"1"}`, "2")
	f.Add(`[1,2]`, "x")
	f.Fuzz(func(t *testing.T, input, id string) {
		if !json.Valid([]byte(input)) || !utf8.ValidString(id) {
			return
		}
		out := withLastEventID(json.RawMessage(input), id)
		if !json.Valid(out) {
			t.Fatalf("not JSON: %q", out)
		}
		var before, after map[string]json.RawMessage
		isObj := input == "null" || (json.Unmarshal([]byte(input), &before) == nil && before != nil)
		if !isObj {
			if string(out) != input {
				t.Fatalf("a non-object input changed: %q -> %q", input, out)
			}
			return
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("object input became %q", out)
		}
		if _, had := before[lastEventIDField]; had {
			return
		}
		var got string
		if json.Unmarshal(after[lastEventIDField], &got) != nil || got != id {
			t.Fatalf("last_event_id %q, want %q", after[lastEventIDField], id)
		}
	})
}

// FuzzBearer checks the Authorization parser.
func FuzzBearer(f *testing.F) {
	f.Add("Bearer " + tokenUser)
	f.Add("bearer   x ")
	f.Add("Basic dXNlcjpwYXNz")
	f.Add("Bearer")
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := bearerToken([]string{h})
		if !ok {
			return
		}
		if tok == "" || len(tok) > maxTokenLen || strings.TrimSpace(tok) != tok {
			t.Fatalf("%q -> token %q", h, tok)
		}
		if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(h)), "bearer ") {
			t.Fatalf("%q is not a bearer header", h)
		}
	})
}
