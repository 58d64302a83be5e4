package call

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type opMetrics struct {
	core.NopMetrics
	mu  sync.Mutex
	ops []string
}

func (m *opMetrics) Operation(op, code string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops = append(m.ops, op+" "+code)
}

func TestPrepareAndRun(t *testing.T) {
	r := NewRegistry(nil)
	m := &opMetrics{}
	r.SetMetrics(m)
	Query(r, "demo/greet", func(ctx context.Context, in greetIn) (greetOut, error) {
		who := "nobody"
		if c := CallerFromContext(ctx); c != nil && c.Identity != nil {
			who = c.Identity.ID
		}
		return greetOut{Text: "hello " + in.Name + " from " + who}, nil
	}, Options{})
	Query(r, "demo/admin", greet, Options{Access: core.AccessControl{RequiredScopes: []string{"admin"}}})
	Query(r, "demo/hidden", greet, Options{Visibility: Internal})
	Query(r, "demo/slow", func(ctx context.Context, _ struct{}) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	}, Options{})
	Query(r, "demo/broken", func(context.Context, struct{}) (string, error) {
		return "", errors.New("secret path /etc/x")
	}, Options{})
	Subscription(r, "demo/count", func(ctx context.Context, n int, emit func(int) error) error {
		for i := 1; i <= n; i++ {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}, Options{})
	alice := &Caller{Identity: &core.Identity{ID: "alice", Scopes: []string{"call"}}}

	inv, e := r.Prepare("/demo/greet", alice, json.RawMessage(`{"name":"bob"}`))
	require.Nil(t, e)
	assert.Equal(t, KindQuery, inv.Spec().Kind)
	var outs []string
	require.Nil(t, inv.Run(t.Context(), time.Second, func(b json.RawMessage) error { outs = append(outs, string(b)); return nil }))
	assert.Equal(t, []string{`{"text":"hello bob from alice"}`}, outs)

	for _, tc := range []struct {
		op, input, code, msg string
		caller               *Caller
	}{
		{"demo/nope", `{}`, CodeNotFound, "no operation /demo/nope", alice},
		{"demo/hidden", `{"name":"x"}`, CodeNotFound, "no operation /demo/hidden", alice},
		{"demo/admin", `{"name":"x"}`, CodeForbidden, "missing scope admin", alice},
		{"demo/admin", `{"name":"x"}`, CodeForbidden, "authentication required", nil},
		{"demo/greet", `{"name":5}`, CodeInvalidInput, "input does not match the schema of demo/greet", alice},
	} {
		_, e := r.Prepare(tc.op, tc.caller, json.RawMessage(tc.input))
		require.NotNil(t, e, tc.op)
		assert.Equal(t, tc.code, e.Code, tc.op)
		assert.Equal(t, tc.msg, e.Message, tc.op)
	}

	inv, e = r.Prepare("demo/slow", alice, nil)
	require.Nil(t, e)
	e = inv.Run(t.Context(), 20*time.Millisecond, func(json.RawMessage) error { return nil })
	require.NotNil(t, e)
	assert.Equal(t, CodeTimeout, e.Code)

	inv, e = r.Prepare("demo/broken", alice, nil)
	require.Nil(t, e)
	e = inv.Run(t.Context(), time.Second, func(json.RawMessage) error { return nil })
	require.NotNil(t, e)
	assert.Equal(t, "INTERNAL: internal error", e.Error())

	// A subscription streams until done; a gateway that stops taking
	// items ends it without an error.
	inv, e = r.Prepare("demo/count", alice, json.RawMessage(`5`))
	require.Nil(t, e)
	var items []string
	require.Nil(t, inv.Run(t.Context(), 0, func(b json.RawMessage) error {
		items = append(items, string(b))
		if len(items) == 3 {
			return errors.New("enough")
		}
		return nil
	}))
	assert.Equal(t, []string{"1", "2", "3"}, items)

	names := func(c *Caller) []string {
		var out []string
		for _, s := range r.Allowed(c) {
			out = append(out, s.Name)
		}
		return out
	}
	assert.Equal(t, []string{"demo/broken", "demo/count", "demo/greet", "demo/slow", "services/list", "services/schema"}, names(alice))
	assert.Contains(t, names(&Caller{Identity: &core.Identity{ID: "root", Scopes: []string{"admin"}}}), "demo/admin")
	_, e = r.Describe("demo/admin", alice)
	require.NotNil(t, e)
	assert.Equal(t, CodeNotFound, e.Code)

	m.mu.Lock()
	defer m.mu.Unlock()
	assert.Equal(t, []string{"demo/greet OK", "demo/slow TIMEOUT", "demo/broken INTERNAL", "demo/count ABORTED"}, m.ops)
}
