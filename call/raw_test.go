package call_test

// A client written from SPEC.md alone, with encoding/binary and
// encoding/json, against the package's server.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

// rawRead returns the next envelope, or nil at a clean end of stream.
func rawRead(t *testing.T, r io.Reader) *rawEnv {
	t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		require.ErrorIs(t, err, io.EOF)
		return nil
	}
	n := binary.BigEndian.Uint32(hdr[:])
	require.NotZero(t, n)
	require.LessOrEqual(t, n, uint32(64<<20))
	body := make([]byte, n)
	_, err := io.ReadFull(r, body)
	require.NoError(t, err)
	var env rawEnv
	require.NoError(t, json.Unmarshal(body, &env))
	return &env
}

type rawFixture struct {
	conn    core.Conn
	started chan struct{}
	stopped chan error
	release chan struct{}
}

func newRawFixture(t *testing.T) *rawFixture {
	f := &rawFixture{started: make(chan struct{}, 1), stopped: make(chan error, 1), release: make(chan struct{})}
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
	call.Query(reg, "demo/wait", func(ctx context.Context, _ struct{}) (string, error) {
		f.started <- struct{}{}
		select {
		case <-ctx.Done():
			f.stopped <- ctx.Err()
			return "", ctx.Err()
		case <-f.release:
			return "released", nil
		}
	}, call.Options{Timeout: -1})
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

func TestRawUnary(t *testing.T) {
	f := newRawFixture(t)
	s := f.stream(t)
	rawWrite(t, s, req("r1", "/math/add", map[string]int{"a": 2, "b": 40}, nil))
	env := rawRead(t, s)
	require.NotNil(t, env)
	assert.Equal(t, "call.responded", env.Type)
	assert.Equal(t, "r1", env.ID)
	assert.JSONEq(t, `{"output":42}`, string(env.Payload))
	assert.Nil(t, rawRead(t, s), "a query's stream ends after its answer")
}

func TestRawSubscription(t *testing.T) {
	f := newRawFixture(t)
	s := f.stream(t)
	rawWrite(t, s, req("s1", "/math/range", map[string]int{"n": 3}, nil))
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
		{"wrong first type", map[string]any{"type": "call.responded", "id": "e4", "payload": map[string]any{"output": 1}}, `{"code":"INVALID_OPERATION_TYPE","message":"expected call.requested, got \"call.responded\"","retryable":false}`},
		{"missing scope", req("e5", "/admin/op", nil, nil), `{"code":"FORBIDDEN","message":"missing scope admin","retryable":false}`},
		{"forwarded_for does not authorize", req("e6", "/admin/op", nil, map[string]any{
			"forwarded_for": map[string]any{"id": "root", "scopes": []string{"admin"}, "resources": map[string]any{}},
		}), `{"code":"FORBIDDEN","message":"missing scope admin","retryable":false}`},
		{"bad token", req("e7", "/admin/op", nil, map[string]any{"auth_token": "nope"}), `{"code":"FORBIDDEN","message":"invalid auth token","retryable":false}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := f.stream(t)
			rawWrite(t, s, tc.frame)
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
	for _, n := range []uint32{0, 64<<20 + 1} {
		s := f.stream(t)
		_, err := s.Write(binary.BigEndian.AppendUint32(nil, n))
		require.NoError(t, err)
		env := rawRead(t, s)
		require.NotNil(t, env)
		assert.Equal(t, "call.error", env.Type)
		assert.Contains(t, string(env.Payload), `"INVALID_INPUT"`)
		assert.Nil(t, rawRead(t, s))
	}
}

func TestRawAbort(t *testing.T) {
	f := newRawFixture(t)

	// An abort with another id is ignored: the call goes on.
	s := f.stream(t)
	rawWrite(t, s, req("a1", "/demo/wait", nil, nil))
	<-f.started
	rawWrite(t, s, map[string]any{"type": "call.aborted", "id": "other", "payload": map[string]any{}})
	f.release <- struct{}{}
	env := rawRead(t, s)
	require.NotNil(t, env)
	assert.JSONEq(t, `{"output":"released"}`, string(env.Payload))

	// The matching abort stops the handler.
	s = f.stream(t)
	rawWrite(t, s, req("a2", "/demo/wait", nil, nil))
	<-f.started
	rawWrite(t, s, map[string]any{"type": "call.aborted", "id": "a2", "payload": map[string]any{}})
	assert.ErrorIs(t, <-f.stopped, context.Canceled)
	assert.Nil(t, rawRead(t, s), "nothing follows an abort")

	// Closing the stream (end of the caller's side) stops it too.
	s = f.stream(t)
	rawWrite(t, s, req("a3", "/demo/wait", nil, nil))
	<-f.started
	require.NoError(t, s.CloseWrite())
	assert.True(t, errors.Is(<-f.stopped, context.Canceled))
}
