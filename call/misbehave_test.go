package call

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeServer answers every stream the client opens with answer(request),
// raw bytes written as they are, then ends the stream: a callee that can
// misbehave in any way.
func fakeServer(t *testing.T, cfg Config, answer func(req wireEnvelope) []byte) *Peer {
	t.Helper()
	a, b := coretest.Pipe(ALPN, coretest.Side{ID: coretest.Key(t).NodeID()}, coretest.Side{ID: coretest.Key(t).NodeID()})
	t.Cleanup(func() { _ = a.Close(core.CodeOK, "") })
	go func() {
		for {
			s, err := b.AcceptStream(context.Background())
			if err != nil {
				return
			}
			go func() {
				defer s.Close()
				body, err := ReadFrame(bufio.NewReader(s), 0)
				if err != nil {
					return
				}
				env, err := decodeWire(body)
				if err != nil || env.Type != TypeRequested {
					return
				}
				_, _ = s.Write(answer(env))
				_ = s.CloseWrite()
			}()
		}
	}()
	p := NewPeer(a, cfg)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func frameOf(body string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// TestClientAgainstMisbehavingServer: every way a callee can break the
// protocol ends the call with a clear error, within its deadline.
func TestClientAgainstMisbehavingServer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(req wireEnvelope) []byte
		check  func(t *testing.T, err error)
	}{
		{"end of stream before a response", func(wireEnvelope) []byte { return nil }, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrNoResponse)
		}},
		{"end of stream inside a frame", func(wireEnvelope) []byte { return frameOf(`{"type":"call.resp`)[:10] }, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrNoResponse)
		}},
		{"bad envelope", func(wireEnvelope) []byte { return frameOf(`{"type":`) }, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrBadEnvelope)
		}},
		{"envelope without a type", func(wireEnvelope) []byte { return frameOf(`{"id":"1"}`) }, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrBadEnvelope)
			assert.ErrorContains(t, err, "missing type")
		}},
		{"oversized frame", func(wireEnvelope) []byte { return binary.BigEndian.AppendUint32(nil, DefaultMaxFrameSize+1) }, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrFrameSize)
		}},
		{"zero-length frame", func(wireEnvelope) []byte { return binary.BigEndian.AppendUint32(nil, 0) }, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrFrameSize)
		}},
		{"error without a code", func(req wireEnvelope) []byte {
			return frameOf(`{"type":"call.error","id":"` + req.ID + `","payload":{"message":"x"}}`)
		}, func(t *testing.T, err error) {
			assert.Equal(t, CodeInternal, ErrorCode(err))
			assert.ErrorContains(t, err, "malformed call.error")
		}},
		{"answers for other ids only", func(req wireEnvelope) []byte {
			return frameOf(`{"type":"call.responded","id":"not-` + req.ID + `","payload":{"output":1}}`)
		}, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrNoResponse)
		}},
		{"output that is not the declared type", func(req wireEnvelope) []byte {
			return frameOf(`{"type":"call.responded","id":"` + req.ID + `","payload":{"output":"text"}}`)
		}, func(t *testing.T, err error) {
			assert.ErrorContains(t, err, "decode output of demo/op")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fakeServer(t, Config{}, tc.answer)
			ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
			defer cancel()
			var out int
			err := p.Call(ctx, "demo/op", nil, &out)
			require.Error(t, err)
			require.NoError(t, ctx.Err(), "the call waited for its deadline")
			tc.check(t, err)
		})
	}
}

// TestHubAppliesItsOwnGate: a spoke cannot widen what a hub exposes by
// declaring an operation open; the hub's gate applies, and the spoke's
// declared access narrows it.
func TestHubAppliesItsOwnGate(t *testing.T) {
	c := newChain(t)
	// work/slow is open at the spoke; work/whoami needs "work".
	hubOnly := &core.AccessControl{RequiredScopes: []string{"hub-users"}}
	c.hub.Detach("spoke")
	p, err := Dial(t.Context(), c.hubEP, c.spokeEP.Addr(), Config{Registry: c.hubReg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	_, err = c.hub.Attach(t.Context(), "spoke", p, ImportOptions{Access: hubOnly})
	require.NoError(t, err)
	err = c.edge.Call(t.Context(), "work/slow", nil, nil)
	assert.Equal(t, CodeForbidden, ErrorCode(err))
	assert.ErrorContains(t, err, "missing scope hub-users")

	// The hub's caller holds the hub's gate but not the declared scope.
	caller := &Caller{Identity: &core.Identity{ID: "x", Scopes: []string{"hub-users"}}}
	err = c.hubReg.Call(WithCaller(t.Context(), caller), "work/whoami", nil, nil)
	assert.Equal(t, CodeForbidden, ErrorCode(err))
	assert.ErrorContains(t, err, "missing scope work")

	// The default gate is the call scope.
	c.hub.Detach("spoke")
	_, err = c.hub.Attach(t.Context(), "spoke", p, ImportOptions{})
	require.NoError(t, err)
	err = c.hubReg.Call(WithCaller(t.Context(), &Caller{Identity: &core.Identity{ID: "y", Scopes: []string{"work"}}}), "work/whoami", nil, nil)
	assert.ErrorContains(t, err, "missing scope call")
}

// TestHubBoundsSchemas: a hostile peer's oversized or deeply nested
// schemas are not decoded; the operation is imported without them.
func TestHubBoundsSchemas(t *testing.T) {
	deep := strings.Repeat(`{"items":`, MaxSchemaDepth+1) + `{}` + strings.Repeat(`}`, MaxSchemaDepth+1)
	huge := `"` + strings.Repeat("d", MaxSchemaSize) + `"`
	p := fakeServer(t, Config{}, func(req wireEnvelope) []byte {
		switch req.Payload.OperationID {
		case "/services/list":
			return frameOf(`{"type":"call.responded","id":"` + req.ID + `","payload":{"output":{"operations":[` +
				`{"name":"evil/deep","kind":"query"},{"name":"evil/huge","kind":"query"},{"name":"evil/fine","kind":"query"}]}}}`)
		case "/services/schema":
			var in SchemaInput
			_ = json.Unmarshal(req.Payload.Input, &in)
			spec := `{"name":"` + in.Name + `","kind":"query","visibility":"external","input":{"type":"object"}}`
			switch in.Name {
			case "evil/deep":
				spec = `{"name":"evil/deep","kind":"query","visibility":"external","input":` + deep + `}`
			case "evil/huge":
				spec = `{"name":"evil/huge","kind":"query","visibility":"external","description":` + huge + `}`
			}
			return frameOf(`{"type":"call.responded","id":"` + req.ID + `","payload":{"output":` + spec + `}}`)
		}
		return nil
	})
	reg := NewRegistry(nil)
	hub := NewHub(reg, nil)
	t.Cleanup(func() { _ = hub.Close() })
	n, err := hub.Attach(t.Context(), "evil", p, ImportOptions{})
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	deepSpec, _ := reg.Spec("evil/deep")
	assert.Nil(t, deepSpec.Input, "a schema nested too deep is not taken")
	hugeSpec, _ := reg.Spec("evil/huge")
	assert.Empty(t, hugeSpec.Description, "a schema over the size limit is not taken")
	fine, _ := reg.Spec("evil/fine")
	require.NotNil(t, fine.Input)
	assert.Equal(t, "object", fine.Input.Type)

	_, err = fetchSchema(t.Context(), p, "evil/deep")
	assert.ErrorIs(t, err, ErrSchemaTooLarge)
	_, err = fetchSchema(t.Context(), p, "evil/huge")
	assert.ErrorIs(t, err, ErrSchemaTooLarge)
}

func TestJSONDepth(t *testing.T) {
	for in, want := range map[string]int{
		`1`: 0, `{}`: 1, `[[1],[2,[3]]]`: 3, `{"a":"[[[[{"}`: 1, `{"a":"\"[[["}`: 1, `[{"x":[{}]}]`: 4,
	} {
		assert.Equal(t, want, jsonDepth([]byte(in)), in)
	}
}
