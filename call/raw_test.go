package call_test

// A client written from SPEC.md alone, with encoding/binary and
// encoding/json, against the package's server.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitLimit bounds every wait in these tests: a regression fails, it does
// not hang.
const waitLimit = 10 * time.Second

// within receives from ch or fails the test after waitLimit.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
		panic("unreachable")
	}
}

// sendWithin sends v on ch or fails the test after waitLimit.
func sendWithin[T any](t *testing.T, ch chan<- T, v T, what string) {
	t.Helper()
	select {
	case ch <- v:
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %s: %s", waitLimit, what)
	}
}

type rawEnv struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

func rawWrite(t *testing.T, w io.Writer, v any) {
	t.Helper()
	body, err := json.Marshal(v)
	require.NoError(t, err)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	_, err = w.Write(append(frame, body...))
	require.NoError(t, err)
}

// rawRead returns the next envelope, or nil at a clean end of stream. It
// fails the test when nothing arrives within waitLimit.
func rawRead(t *testing.T, s core.Stream) *rawEnv {
	t.Helper()
	require.NoError(t, s.SetReadDeadline(time.Now().Add(waitLimit)))
	var hdr [4]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "no frame within %s", waitLimit)
		require.ErrorIs(t, err, io.EOF)
		return nil
	}
	n := binary.BigEndian.Uint32(hdr[:])
	require.NotZero(t, n)
	require.LessOrEqual(t, n, uint32(64<<20))
	body := make([]byte, n)
	_, err := io.ReadFull(s, body)
	require.NoError(t, err)
	var env rawEnv
	require.NoError(t, json.Unmarshal(body, &env))
	return &env
}

type rawFixture struct {
	conn    core.Conn
	started chan string
	stopped chan error
	release chan struct{}
}

func newRawFixture(t *testing.T) *rawFixture {
	f := &rawFixture{started: make(chan string, 4), stopped: make(chan error, 4), release: make(chan struct{})}
	reg := call.NewRegistry(nil)
	call.Query(reg, "math/add", func(_ context.Context, in struct {
		A int `json:"a"`
		B int `json:"b"`
	}) (int, error) {
		return in.A + in.B, nil
	}, call.Options{})
	call.Subscription(reg, "math/range", func(_ context.Context, in struct {
		N int `json:"n"`
	}, emit func(int) error) error {
		for i := range in.N {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}, call.Options{})
	call.Query(reg, "demo/secret", func(context.Context, struct{}) (string, error) { return "secret", nil },
		call.Options{Visibility: call.Internal})
	call.Query(reg, "admin/op", func(context.Context, struct{}) (string, error) { return "ok", nil },
		call.Options{Access: core.AccessControl{RequiredScopes: []string{"admin"}}})
	call.Query(reg, "demo/wait", func(ctx context.Context, in struct {
		Tag string `json:"tag"`
	}) (string, error) {
		f.started <- in.Tag
		select {
		case <-ctx.Done():
			f.stopped <- context.Cause(ctx)
			return "", ctx.Err()
		case <-f.release:
			return "released " + in.Tag, nil
		}
	}, call.Options{Timeout: -1})
	call.Subscription(reg, "demo/ticks", func(ctx context.Context, _ struct{}, emit func(int) error) error {
		f.started <- "ticks"
		<-ctx.Done()
		f.stopped <- context.Cause(ctx)
		return ctx.Err()
	}, call.Options{})
	srv, err := call.NewServer(call.Config{Registry: reg})
	require.NoError(t, err)
	pair := coretest.NewPair(t, []string{"call"}, coretest.Route{Handler: srv, ACL: core.AccessControl{RequiredScopes: []string{"call"}}})
	f.conn = pair.Dial(t, call.ALPN)
	return f
}

func (f *rawFixture) stream(t *testing.T) core.Stream {
	s, err := f.conn.OpenStream(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func req(id, op string, input any, extra map[string]any) map[string]any {
	p := map[string]any{"operationId": op, "input": input}
	for k, v := range extra {
		p[k] = v
	}
	return map[string]any{"type": "call.requested", "id": id, "payload": p}
}

func abortFrame(id string) map[string]any {
	return map[string]any{"type": "call.aborted", "id": id, "payload": map[string]any{}}
}

func TestRawUnary(t *testing.T) {
	f := newRawFixture(t)
	s := f.stream(t)
	rawWrite(t, s, req("r1", "/math/add", map[string]int{"a": 2, "b": 40}, nil))
	require.NoError(t, s.CloseWrite())
	env := rawRead(t, s)
	require.NotNil(t, env)
	assert.Equal(t, "call.responded", env.Type)
	assert.Equal(t, "r1", env.ID)
	assert.JSONEq(t, `{"output":42}`, string(env.Payload))
	assert.Nil(t, rawRead(t, s), "the callee ends its side after the last answer once the caller has ended its own")
}

func TestRawSubscription(t *testing.T) {
	f := newRawFixture(t)
	s := f.stream(t)
	rawWrite(t, s, req("s1", "/math/range", map[string]int{"n": 3}, nil))
	require.NoError(t, s.CloseWrite())
	for i := range 3 {
		env := rawRead(t, s)
		require.NotNil(t, env)
		assert.Equal(t, "call.responded", env.Type)
		assert.Equal(t, "s1", env.ID)
		assert.JSONEq(t, `{"output":`+string(rune('0'+i))+`}`, string(env.Payload))
	}
	env := rawRead(t, s)
	require.NotNil(t, env)
	assert.Equal(t, rawEnv{Type: "call.completed", ID: "s1", Payload: json.RawMessage(`{}`)}, *env)
	assert.Nil(t, rawRead(t, s))
}

func TestRawErrors(t *testing.T) {
	f := newRawFixture(t)
	for _, tc := range []struct {
		name  string
		frame any
		want  string
	}{
		{"unknown op", req("e1", "/no/such", nil, nil), `{"code":"NOT_FOUND","message":"no operation /no/such","retryable":false}`},
		{"internal op from the wire", req("e2", "/demo/secret", nil, nil), `{"code":"NOT_FOUND","message":"no operation /demo/secret","retryable":false}`},
		{"invalid input", req("e3", "/math/add", map[string]any{"a": "x", "b": 1}, nil), ""},
		{"not a request", map[string]any{"type": "call.responded", "id": "e4", "payload": map[string]any{"output": 1}}, `{"code":"INVALID_OPERATION_TYPE","message":"expected call.requested, got \"call.responded\"","retryable":false}`},
		{"missing scope", req("e5", "/admin/op", nil, nil), `{"code":"FORBIDDEN","message":"missing scope admin","retryable":false}`},
		{"forwarded_for does not authorize", req("e6", "/admin/op", nil, map[string]any{
			"forwarded_for": map[string]any{"id": "root", "scopes": []string{"admin"}, "resources": map[string]any{}},
		}), `{"code":"FORBIDDEN","message":"missing scope admin","retryable":false}`},
		{"bad token", req("e7", "/admin/op", nil, map[string]any{"auth_token": "nope"}), `{"code":"FORBIDDEN","message":"invalid auth token","retryable":false}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := f.stream(t)
			rawWrite(t, s, tc.frame)
			require.NoError(t, s.CloseWrite())
			env := rawRead(t, s)
			require.NotNil(t, env)
			assert.Equal(t, "call.error", env.Type)
			if tc.want == "" {
				var e struct {
					Code    string         `json:"code"`
					Details map[string]any `json:"details"`
				}
				require.NoError(t, json.Unmarshal(env.Payload, &e))
				assert.Equal(t, "INVALID_INPUT", e.Code)
				assert.Contains(t, e.Details["reason"], "string")
			} else {
				assert.JSONEq(t, tc.want, string(env.Payload))
			}
			assert.Nil(t, rawRead(t, s))
		})
	}
}

func TestRawBadLength(t *testing.T) {
	f := newRawFixture(t)
	for _, n := range []uint32{0, 1<<20 + 1, 64<<20 + 1} {
		s := f.stream(t)
		_, err := s.Write(binary.BigEndian.AppendUint32(nil, n))
		require.NoError(t, err)
		env := rawRead(t, s)
		require.NotNil(t, env)
		assert.Equal(t, "call.error", env.Type)
		assert.Contains(t, string(env.Payload), `"INVALID_INPUT"`)
		assert.Contains(t, string(env.Payload), "invalid frame length")
		assert.Nil(t, rawRead(t, s), "the stream ends after a bad length")
	}
}

// TestRawHalfCloseIsNotCancel: a caller that sends its request and then
// FIN still gets the whole answer, for a slow operation and for an invalid
// input alike.
func TestRawHalfCloseIsNotCancel(t *testing.T) {
	f := newRawFixture(t)

	s := f.stream(t)
	rawWrite(t, s, req("h1", "/demo/wait", map[string]string{"tag": "h1"}, nil))
	require.NoError(t, s.CloseWrite())
	assert.Equal(t, "h1", within(t, f.started, "the slow operation to start"))
	// The handler runs on after the FIN (it would report a cancellation
	// on stopped); it answers once released.
	sendWithin(t, f.release, struct{}{}, "the handler was cancelled by the caller's FIN")
	env := rawRead(t, s)
	require.NotNil(t, env)
	assert.Equal(t, rawEnv{Type: "call.responded", ID: "h1", Payload: json.RawMessage(`{"output":"released h1"}`)}, *env)
	assert.Nil(t, rawRead(t, s))
	assert.Empty(t, f.stopped)

	s = f.stream(t)
	rawWrite(t, s, req("h2", "/math/add", map[string]any{"a": "x"}, nil))
	require.NoError(t, s.CloseWrite())
	env = rawRead(t, s)
	require.NotNil(t, env)
	assert.Equal(t, "call.error", env.Type)
	assert.Equal(t, "h2", env.ID)
	var e struct {
		Code, Message string
		Retryable     bool
		Details       struct{ Reason string }
	}
	require.NoError(t, json.Unmarshal(env.Payload, &e))
	assert.Equal(t, "INVALID_INPUT", e.Code)
	assert.Equal(t, "input does not match the schema of math/add", e.Message)
	assert.False(t, e.Retryable)
	assert.Contains(t, e.Details.Reason, "string")
	assert.Nil(t, rawRead(t, s))
}

// TestRawAbort: call.aborted cancels exactly the call it names.
func TestRawAbort(t *testing.T) {
	f := newRawFixture(t)

	// An abort with another id is ignored: the call goes on. The request
	// that follows on the same stream is a barrier: frames of one stream
	// are handled in order, so once it is answered the abort was seen.
	s := f.stream(t)
	rawWrite(t, s, req("a1", "/demo/wait", map[string]string{"tag": "a1"}, nil))
	assert.Equal(t, "a1", within(t, f.started, "a1 to start"))
	rawWrite(t, s, abortFrame("other"))
	rawWrite(t, s, req("b1", "/math/add", map[string]int{"a": 1, "b": 1}, nil))
	env := rawRead(t, s)
	require.NotNil(t, env)
	assert.Equal(t, rawEnv{Type: "call.responded", ID: "b1", Payload: json.RawMessage(`{"output":2}`)}, *env)
	select {
	case cause := <-f.stopped:
		t.Fatalf("an abort for another id stopped a1: %v", cause)
	case f.release <- struct{}{}:
	case <-time.After(waitLimit):
		t.Fatal("a1 neither stopped nor took its release")
	}
	env = rawRead(t, s)
	require.NotNil(t, env)
	assert.Equal(t, rawEnv{Type: "call.responded", ID: "a1", Payload: json.RawMessage(`{"output":"released a1"}`)}, *env)
	require.NoError(t, s.CloseWrite())
	assert.Nil(t, rawRead(t, s))

	// The matching abort stops the handler, and nothing is sent for it.
	s = f.stream(t)
	rawWrite(t, s, req("a2", "/demo/wait", map[string]string{"tag": "a2"}, nil))
	assert.Equal(t, "a2", within(t, f.started, "a2 to start"))
	rawWrite(t, s, abortFrame("a2"))
	assert.ErrorContains(t, within(t, f.stopped, "a2 to stop"), "aborted by the caller")
	require.NoError(t, s.CloseWrite())
	assert.Nil(t, rawRead(t, s), "nothing follows an abort")

	// A reset of the caller's side (Close sends STOP_SENDING and, before
	// the FIN is read, ends the stream) stops it too.
	s = f.stream(t)
	rawWrite(t, s, req("a3", "/demo/wait", map[string]string{"tag": "a3"}, nil))
	assert.Equal(t, "a3", within(t, f.started, "a3 to start"))
	require.NoError(t, s.Close())
	assert.ErrorContains(t, within(t, f.stopped, "a3 to stop"), "caller reset the stream")
}

// TestRawAbortFromAnotherStream: ids are scoped to the connection, so an
// abort on a fresh stream cancels a subscription running on another.
func TestRawAbortFromAnotherStream(t *testing.T) {
	f := newRawFixture(t)
	s := f.stream(t)
	rawWrite(t, s, req("t1", "/demo/ticks", nil, nil))
	require.NoError(t, s.CloseWrite())
	assert.Equal(t, "ticks", within(t, f.started, "the subscription to start"))

	s2 := f.stream(t)
	rawWrite(t, s2, abortFrame("t1"))
	require.NoError(t, s2.CloseWrite())
	assert.Nil(t, rawRead(t, s2), "an abort has no answer")
	assert.ErrorContains(t, within(t, f.stopped, "the subscription to stop"), "aborted by the caller")
	assert.Nil(t, rawRead(t, s), "nothing follows an abort; the stream ends")
}

// TestRawManyCallsOneStream: calls on one stream run concurrently, a fast
// one is answered before a slow one, and a FIN after three requests still
// gets all three answers.
func TestRawManyCallsOneStream(t *testing.T) {
	f := newRawFixture(t)
	s := f.stream(t)
	rawWrite(t, s, req("slow", "/demo/wait", map[string]string{"tag": "slow"}, nil))
	assert.Equal(t, "slow", within(t, f.started, "the slow call to start"))
	rawWrite(t, s, req("fast", "/math/add", map[string]int{"a": 20, "b": 22}, nil))
	rawWrite(t, s, req("sub", "/math/range", map[string]int{"n": 2}, nil))
	require.NoError(t, s.CloseWrite())

	got := map[string][]string{}
	for len(got["sub"]) < 3 || len(got["fast"]) < 1 {
		env := rawRead(t, s)
		require.NotNil(t, env, "stream ended early: %v", got)
		require.NotEqual(t, "slow", env.ID, "the slow call answered before release")
		got[env.ID] = append(got[env.ID], env.Type+" "+string(env.Payload))
	}
	assert.Equal(t, []string{`call.responded {"output":42}`}, got["fast"])
	assert.Equal(t, []string{`call.responded {"output":0}`, `call.responded {"output":1}`, `call.completed {}`}, got["sub"], "in order within a call")

	sendWithin(t, f.release, struct{}{}, "the slow call stopped")
	env := rawRead(t, s)
	require.NotNil(t, env)
	assert.Equal(t, rawEnv{Type: "call.responded", ID: "slow", Payload: json.RawMessage(`{"output":"released slow"}`)}, *env)
	assert.Nil(t, rawRead(t, s), "the stream ends after the last answer")
}

// TestRawDuplicateID: a second request with the id of a call in flight is
// refused, and the first call goes on.
func TestRawDuplicateID(t *testing.T) {
	f := newRawFixture(t)
	s := f.stream(t)
	rawWrite(t, s, req("d1", "/demo/wait", map[string]string{"tag": "first"}, nil))
	assert.Equal(t, "first", within(t, f.started, "the first call to start"))
	s2 := f.stream(t)
	rawWrite(t, s2, req("d1", "/math/add", map[string]int{"a": 1}, nil))
	require.NoError(t, s2.CloseWrite())
	env := rawRead(t, s2)
	require.NotNil(t, env)
	assert.Equal(t, rawEnv{Type: "call.error", ID: "d1", Payload: json.RawMessage(`{"code":"INVALID_INPUT","message":"call id \"d1\" is already in flight on this connection","retryable":false}`)}, *env)
	assert.Nil(t, rawRead(t, s2))

	sendWithin(t, f.release, struct{}{}, "the first call stopped")
	require.NoError(t, s.CloseWrite())
	env = rawRead(t, s)
	require.NotNil(t, env)
	assert.Equal(t, rawEnv{Type: "call.responded", ID: "d1", Payload: json.RawMessage(`{"output":"released first"}`)}, *env)

	// Once it is over, the id may be used again.
	s3 := f.stream(t)
	rawWrite(t, s3, req("d1", "/math/add", map[string]int{"a": 1, "b": 2}, nil))
	require.NoError(t, s3.CloseWrite())
	env = rawRead(t, s3)
	require.NotNil(t, env)
	assert.JSONEq(t, `{"output":3}`, string(env.Payload))
}

// TestRawMalformedFramesKeepTheStream: a frame that is not an envelope is
// answered and the stream goes on (its frames are still delimited).
func TestRawMalformedFramesKeepTheStream(t *testing.T) {
	f := newRawFixture(t)
	s := f.stream(t)
	body := []byte(`{"type":`)
	_, err := s.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
	require.NoError(t, err)
	rawWrite(t, s, req("ok", "/math/add", map[string]int{"a": 1, "b": 2}, nil))
	require.NoError(t, s.CloseWrite())
	env := rawRead(t, s)
	require.NotNil(t, env)
	assert.Equal(t, rawEnv{Type: "call.error", ID: "", Payload: json.RawMessage(`{"code":"INVALID_INPUT","message":"malformed envelope","retryable":false}`)}, *env)
	env = rawRead(t, s)
	require.NotNil(t, env)
	assert.Equal(t, rawEnv{Type: "call.responded", ID: "ok", Payload: json.RawMessage(`{"output":3}`)}, *env)
	assert.Nil(t, rawRead(t, s))
}

// TestRawClippedEcho: an error that names caller input does not echo all
// of it.
func TestRawClippedEcho(t *testing.T) {
	f := newRawFixture(t)
	s := f.stream(t)
	long := "/x/" + strings.Repeat("y", 100000)
	rawWrite(t, s, req("c1", long, nil, nil))
	require.NoError(t, s.CloseWrite())
	env := rawRead(t, s)
	require.NotNil(t, env)
	var e struct{ Code, Message string }
	require.NoError(t, json.Unmarshal(env.Payload, &e))
	assert.Equal(t, "NOT_FOUND", e.Code)
	assert.Less(t, len(e.Message), 400, "message %d bytes", len(e.Message))
	assert.Contains(t, e.Message, "(100002 bytes)")
}
