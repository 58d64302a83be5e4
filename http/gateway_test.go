package alkhttp

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func decodeError(t *testing.T, body string) errorBody {
	t.Helper()
	var e errorBody
	require.NoError(t, json.Unmarshal([]byte(body), &e), "body %q", body)
	return e
}

// The status and body of every refusal and failure, over h3 and h2.
func TestGatewayStatuses(t *testing.T) {
	n := startNode(t, nil)
	for _, h3 := range []bool{true, false} {
		name := map[bool]string{true: "h3", false: "h2"}[h3]
		t.Run(name, func(t *testing.T) {
			anon := n.client(t, core.SecretKey{}, h3)
			pinned := n.client(t, n.clientKey, h3)
			stray := n.client(t, n.strayKey, h3)
			for _, tc := range []struct {
				name      string
				c         *http.Client
				token     string
				path      string
				body      string
				status    int
				code      string
				msg       string
				challenge string
			}{
				{"no credential", anon, "", "/v1/call/test/echo", `{"msg":"x"}`, 401, "FORBIDDEN", "authentication required", `Bearer realm="alknet"`},
				{"unknown key", stray, "", "/v1/call/test/echo", `{"msg":"x"}`, 401, "FORBIDDEN", "authentication required", `Bearer realm="alknet"`},
				{"bad token", pinned, "alk_nope", "/v1/call/test/echo", `{"msg":"x"}`, 401, "FORBIDDEN", "invalid bearer token", `Bearer realm="alknet", error="invalid_token"`},
				{"gate refuses", anon, tokenNone, "/v1/call/test/echo", `{"msg":"x"}`, 403, "FORBIDDEN", "missing scope call", ""},
				{"op refuses", anon, tokenUser, "/v1/call/test/secret", ``, 403, "FORBIDDEN", "missing scope admin", ""},
				{"unknown op", anon, tokenUser, "/v1/call/test/nope", ``, 404, "NOT_FOUND", "no operation /test/nope", ""},
				{"internal op", anon, tokenUser, "/v1/call/test/internal", ``, 404, "NOT_FOUND", "no operation /test/internal", ""},
				{"bad input", anon, tokenUser, "/v1/call/test/echo", `{"msg":5}`, 422, "INVALID_INPUT", "input does not match the schema of test/echo", ""},
				{"not json", anon, tokenUser, "/v1/call/test/echo", `{"msg":`, 400, "INVALID_INPUT", "input is not JSON", ""},
				{"timeout", anon, tokenUser, "/v1/call/test/slow", ``, 504, "TIMEOUT", "test/slow timed out", ""},
				{"internal", anon, tokenUser, "/v1/call/test/fail", ``, 500, "INTERNAL", "internal error", ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					resp, body := do(t, tc.c, "POST", n.base+tc.path, tc.token, tc.body)
					require.Equal(t, tc.status, resp.StatusCode, body)
					assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
					e := decodeError(t, body)
					assert.Equal(t, tc.code, e.Code)
					assert.Contains(t, e.Message, tc.msg)
					assert.NotContains(t, body, "disk on fire")
					assert.Equal(t, tc.challenge, resp.Header.Get("WWW-Authenticate"))
				})
			}
			t.Run("ok by token", func(t *testing.T) {
				resp, body := do(t, pinned, "POST", n.base+"/v1/call/test/echo", tokenUser, `{"msg":"hi"}`)
				require.Equal(t, 200, resp.StatusCode, body)
				assert.JSONEq(t, `{"msg":"hi","caller":"user"}`, body)
			})
			t.Run("ok by pinned key", func(t *testing.T) {
				resp, body := do(t, pinned, "POST", n.base+"/v1/call/test/echo", "", `{"msg":"hi"}`)
				require.Equal(t, 200, resp.StatusCode, body)
				assert.JSONEq(t, `{"msg":"hi","caller":"laptop"}`, body)
			})
			t.Run("non-object input", func(t *testing.T) {
				resp, body := do(t, anon, "POST", n.base+"/v1/call/test/double", tokenUser, `21`)
				require.Equal(t, 200, resp.StatusCode, body)
				assert.Equal(t, "42\n", body)
			})
		})
	}
}

func TestGatewayRequestLimits(t *testing.T) {
	n := startNode(t, nil)
	c := n.client(t, core.SecretKey{}, false)
	t.Run("content type", func(t *testing.T) {
		resp, body := do(t, c, "POST", n.base+"/v1/call/test/echo", tokenUser, `{"msg":"x"}`, "Content-Type", "text/plain")
		require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode, body)
		assert.Equal(t, "INVALID_INPUT", decodeError(t, body).Code)
	})
	t.Run("too large", func(t *testing.T) {
		big := `{"msg":"` + strings.Repeat("a", call.DefaultMaxFrameSize) + `"}`
		resp, body := do(t, c, "POST", n.base+"/v1/call/test/echo", tokenUser, big)
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
		assert.Contains(t, decodeError(t, body).Message, "larger than 1048576 bytes")
	})
	t.Run("cross-origin post", func(t *testing.T) {
		resp, body := do(t, c, "POST", n.base+"/v1/call/test/echo", tokenUser, `{"msg":"x"}`,
			"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
		require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
		assert.Equal(t, "cross-origin request refused", decodeError(t, body).Message)
	})
}

func TestGatewayServicesAndOpenAPI(t *testing.T) {
	n := startNode(t, nil)
	c := n.client(t, core.SecretKey{}, true)
	names := func(token string) []string {
		resp, body := do(t, c, "GET", n.base+"/v1/services", token, "")
		require.Equal(t, 200, resp.StatusCode, body)
		var out call.ListOutput
		require.NoError(t, json.Unmarshal([]byte(body), &out))
		var ns []string
		for _, o := range out.Operations {
			ns = append(ns, o.Name)
		}
		return ns
	}
	user := names(tokenUser)
	assert.Contains(t, user, "test/echo")
	assert.NotContains(t, user, "test/secret")
	assert.NotContains(t, user, "test/internal")
	assert.Contains(t, names(tokenAdmin), "test/secret")

	resp, body := do(t, c, "GET", n.base+"/v1/services/test/ticks", tokenUser, "")
	require.Equal(t, 200, resp.StatusCode, body)
	var spec call.Spec
	require.NoError(t, json.Unmarshal([]byte(body), &spec))
	assert.Equal(t, call.KindSubscription, spec.Kind)
	assert.Contains(t, spec.Input.Properties, "last_event_id")
	resp, body = do(t, c, "GET", n.base+"/v1/services/test/secret", tokenUser, "")
	assert.Equal(t, 404, resp.StatusCode, body)

	openapi := func(token string) map[string]any {
		resp, body := do(t, c, "GET", n.base+"/openapi.json", token, "")
		require.Equal(t, 200, resp.StatusCode, body)
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &doc))
		return doc
	}
	doc := openapi(tokenUser)
	assert.Equal(t, "3.1.0", doc["openapi"])
	paths := doc["paths"].(map[string]any)
	require.Contains(t, paths, "/v1/call/test/echo")
	assert.NotContains(t, paths, "/v1/call/test/secret")
	assert.NotContains(t, paths, "/v1/call/test/ticks", "subscriptions are not POST calls")
	assert.Contains(t, paths, "/v1/subscribe/test/ticks")
	assert.NotContains(t, paths, "/v1/subscribe/test/set", "mutations are not GET streams")
	post := paths["/v1/call/test/echo"].(map[string]any)["post"].(map[string]any)
	schema := post["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	assert.Equal(t, "object", schema["type"])
	assert.Contains(t, schema["properties"], "msg")
	assert.Contains(t, openapi(tokenAdmin)["paths"], "/v1/call/test/secret")
	resp, _ = do(t, c, "GET", n.base+"/openapi.json", "", "")
	assert.Equal(t, 401, resp.StatusCode)
}

func TestGatewayBatch(t *testing.T) {
	n := startNode(t, nil)
	c := n.client(t, core.SecretKey{}, false)
	resp, body := do(t, c, "POST", n.base+"/v1/batch", tokenUser, `[
		{"id":"a","operationId":"/test/echo","input":{"msg":"one"}},
		{"id":"b","operationId":"test/double","input":4},
		{"id":"c","operationId":"test/secret"},
		{"id":"d","operationId":"test/ticks","input":{"n":1}},
		{"id":"e","operationId":"test/echo","input":{"msg":1}}]`)
	require.Equal(t, 200, resp.StatusCode, body)
	var out []struct {
		ID     string          `json:"id"`
		Output json.RawMessage `json:"output"`
		Error  *errorBody      `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	require.Len(t, out, 5)
	assert.JSONEq(t, `{"msg":"one","caller":"user"}`, string(out[0].Output))
	assert.JSONEq(t, `8`, string(out[1].Output))
	assert.Equal(t, "FORBIDDEN", out[2].Error.Code)
	assert.Equal(t, "INVALID_OPERATION_TYPE", out[3].Error.Code)
	assert.Equal(t, "INVALID_INPUT", out[4].Error.Code)
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		assert.Equal(t, id, out[i].ID)
	}
	resp, body = do(t, c, "POST", n.base+"/v1/batch", tokenUser, `{"id":"a"}`)
	assert.Equal(t, 422, resp.StatusCode, body)
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ id, event, data string }

// readSSE reads events until call.completed or call.error.
func readSSE(t *testing.T, resp *http.Response) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.data != "" || cur.event != "" {
				out = append(out, cur)
				if cur.event == call.TypeCompleted || cur.event == call.TypeError {
					return out
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			cur.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		}
	}
	t.Fatalf("event stream ended without call.completed: %v (%v)", out, sc.Err())
	return nil
}

func TestGatewaySSE(t *testing.T) {
	n := startNode(t, nil)
	for _, h3 := range []bool{true, false} {
		t.Run(map[bool]string{true: "h3", false: "h2"}[h3], func(t *testing.T) {
			c := n.client(t, core.SecretKey{}, h3)
			get := func(path, last string) *http.Response {
				req, err := http.NewRequest("GET", n.base+path, nil)
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer "+tokenUser)
				if last != "" {
					req.Header.Set("Last-Event-ID", last)
				}
				resp, err := c.Do(req)
				require.NoError(t, err)
				t.Cleanup(func() { _ = resp.Body.Close() })
				return resp
			}
			in := url.QueryEscape(`{"n":3}`)
			resp := get("/v1/subscribe/test/ticks?input="+in, "")
			require.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
			assert.Equal(t, []sseEvent{
				{id: "1", data: `{"id":1}`}, {id: "2", data: `{"id":2}`}, {id: "3", data: `{"id":3}`},
				{event: "call.completed", data: "{}"},
			}, readSSE(t, resp))

			resp = get("/v1/subscribe/test/ticks?input="+in, "1")
			assert.Equal(t, []sseEvent{
				{id: "2", data: `{"id":2}`}, {id: "3", data: `{"id":3}`}, {event: "call.completed", data: "{}"},
			}, readSSE(t, resp), "Last-Event-ID resumes after event 1")

			resp = get("/v1/subscribe/test/ticks?input="+url.QueryEscape(`{"n":1,"bogus":true}`), "")
			assert.Equal(t, 422, resp.StatusCode, "a refusal before the stream is a status")

			resp = get("/v1/subscribe/test/set", "")
			assert.Equal(t, 400, resp.StatusCode, "mutations are not streamed over GET")

			// A query streams as one event; an error after the start is an event.
			resp = get("/v1/subscribe/test/slow", "")
			require.Equal(t, 200, resp.StatusCode)
			ev := readSSE(t, resp)
			require.Len(t, ev, 1)
			assert.Equal(t, "call.error", ev[0].event)
			assert.Contains(t, ev[0].data, `"code":"TIMEOUT"`)
		})
	}
}

// A WebSocket carries many calls at once, each answered by id.
func TestGatewayWebSocket(t *testing.T) {
	n := startNode(t, nil)
	c := n.client(t, core.SecretKey{}, false)
	tr := c.Transport.(*http.Transport)
	tr.ForceAttemptHTTP2 = false
	tr.TLSClientConfig.NextProtos = []string{ALPNHTTP1}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	wsURL := strings.Replace(n.base, "https://", "wss://", 1) + "/v1/ws"
	ws, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c})
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	defer ws.CloseNow()

	send := func(typ, id, op, input, token string) {
		p := map[string]any{"operationId": op, "input": json.RawMessage(input)}
		if token != "" {
			p["auth_token"] = token
		}
		pb, _ := json.Marshal(p)
		b, _ := json.Marshal(call.Envelope{Type: typ, ID: id, Payload: pb})
		require.NoError(t, ws.Write(ctx, websocket.MessageText, b))
	}
	read := func() call.Envelope {
		_, b, err := ws.Read(ctx)
		require.NoError(t, err)
		var env call.Envelope
		require.NoError(t, json.Unmarshal(b, &env), string(b))
		return env
	}

	// A subscription runs while other calls come and go.
	send(call.TypeRequested, "sub", "test/forever", `{}`, tokenUser)
	for i := range 5 {
		send(call.TypeRequested, "e"+string(rune('0'+i)), "test/echo", `{"msg":"m`+string(rune('0'+i))+`"}`, tokenUser)
	}
	send(call.TypeRequested, "anon", "test/echo", `{"msg":"x"}`, "")
	send(call.TypeRequested, "bad", "test/echo", `{"msg":"x"}`, "alk_bad")
	got := map[string]string{}
	subItems := 0
	for len(got) < 7 || subItems < 3 {
		env := read()
		if env.ID == "sub" {
			require.Equal(t, call.TypeResponded, env.Type)
			subItems++
			continue
		}
		if _, dup := got[env.ID]; dup {
			t.Fatalf("second answer for %s", env.ID)
		}
		got[env.ID] = env.Type + " " + string(env.Payload)
	}
	for i := range 5 {
		id := "e" + string(rune('0'+i))
		assert.Equal(t, `call.responded {"output":{"msg":"m`+string(rune('0'+i))+`","caller":"user"}}`, got[id])
	}
	assert.Contains(t, got["anon"], `call.error {"code":"FORBIDDEN","message":"authentication required"`)
	assert.Contains(t, got["bad"], `call.error {"code":"FORBIDDEN","message":"invalid auth token"`)

	// Abort the subscription; a call after it is still answered.
	send(call.TypeAborted, "sub", "", `null`, "")
	send(call.TypeRequested, "last", "test/double", `5`, tokenUser)
	for {
		env := read()
		if env.ID == "sub" {
			require.Equal(t, call.TypeResponded, env.Type, "an aborted call sends nothing but items already on their way")
			continue
		}
		assert.Equal(t, "last", env.ID)
		assert.JSONEq(t, `{"output":10}`, string(env.Payload))
		break
	}
	// A malformed message is answered and the socket goes on.
	require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(`{"type":`)))
	for {
		env := read()
		if env.ID == "sub" {
			continue
		}
		assert.Equal(t, call.TypeError, env.Type)
		assert.Contains(t, string(env.Payload), "malformed envelope")
		break
	}
	require.NoError(t, ws.Close(websocket.StatusNormalClosure, ""))
}
