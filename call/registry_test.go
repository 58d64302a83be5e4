package call

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type greetIn struct {
	Name  string `json:"name"`
	Times int    `json:"times,omitempty"`
}

type greetOut struct {
	Text string `json:"text"`
}

func greet(_ context.Context, in greetIn) (greetOut, error) {
	return greetOut{Text: "hello " + in.Name}, nil
}

func TestRegistryValidation(t *testing.T) {
	r := NewRegistry(nil)
	Query(r, "demo/greet", greet, Options{})
	for _, tc := range []struct {
		name, input, reason string
	}{
		{"missing required", `{}`, "name"},
		{"wrong type", `{"name":5}`, "type"},
		{"unknown field", `{"name":"a","extra":1}`, "extra"},
		{"not an object", `[1]`, "type"},
		{"integer expected", `{"name":"a","times":1.5}`, "integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out greetOut
			err := r.Call(t.Context(), "demo/greet", json.RawMessage(tc.input), &out)
			var ce *Error
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, CodeInvalidInput, ce.Code)
			assert.False(t, ce.Retryable)
			var details map[string]string
			require.NoError(t, json.Unmarshal(ce.Details, &details))
			assert.Contains(t, details["reason"], tc.reason)
			assert.Empty(t, out.Text, "handler did not run")
		})
	}
	var out greetOut
	require.NoError(t, r.Call(t.Context(), "demo/greet", greetIn{Name: "bob"}, &out))
	assert.Equal(t, "hello bob", out.Text)
}

func TestRegistrySchemas(t *testing.T) {
	r := NewRegistry(nil)
	Query(r, "demo/greet", greet, Options{Description: "Greets.", Errors: []string{"RATE_LIMITED"}})
	spec, ok := r.Spec("demo/greet")
	require.True(t, ok)
	assert.Equal(t, KindQuery, spec.Kind)
	assert.Equal(t, External, spec.Visibility)
	assert.Equal(t, []string{"RATE_LIMITED"}, spec.Errors)
	b, err := json.Marshal(spec.Input)
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"object","properties":{"name":{"type":"string"},"times":{"type":"integer"}},"required":["name"],"additionalProperties":false}`, string(b))
	b, err = json.Marshal(spec.Output)
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}`, string(b))
}

func TestRegistryRegistrationPanics(t *testing.T) {
	r := NewRegistry(nil)
	Query(r, "demo/greet", greet, Options{})
	assert.PanicsWithValue(t, "alknet/call: operation already registered: demo/greet", func() { Query(r, "demo/greet", greet, Options{}) })
	for _, bad := range []string{"greet", "/demo/greet", "demo/", "demo//x", "de mo/x", ""} {
		assert.Panics(t, func() { Query(r, bad, greet, Options{}) }, bad)
	}
	assert.Panics(t, func() {
		Query(r, "demo/chan", func(context.Context, chan int) (int, error) { return 0, nil }, Options{})
	})
}

func TestRegistryCallKindsAndErrors(t *testing.T) {
	r := NewRegistry(nil)
	Subscription(r, "demo/ticks", func(ctx context.Context, _ struct{}, emit func(int) error) error { return emit(1) }, Options{})
	Query(r, "demo/declared", func(context.Context, struct{}) (int, error) {
		return 0, NewError("RATE_LIMITED", "slow down")
	}, Options{Errors: []string{"RATE_LIMITED"}})
	Query(r, "demo/undeclared", func(context.Context, struct{}) (int, error) {
		return 0, NewError("SECRET_CODE", "detail")
	}, Options{})
	Query(r, "demo/plain", func(context.Context, struct{}) (int, error) {
		return 0, assert.AnError
	}, Options{})
	Query(r, "demo/panics", func(context.Context, struct{}) (int, error) { panic("boom") }, Options{})

	for _, tc := range []struct{ op, code, msg string }{
		{"demo/ticks", CodeInvalidOperationType, "demo/ticks is a subscription"},
		{"demo/declared", "RATE_LIMITED", "slow down"},
		{"demo/undeclared", CodeInternal, "internal error"},
		{"demo/plain", CodeInternal, "internal error"},
		{"demo/panics", CodeInternal, "internal error"},
		{"demo/missing", CodeNotFound, "no operation demo/missing"},
	} {
		err := r.Call(t.Context(), tc.op, nil, nil)
		var ce *Error
		require.ErrorAs(t, err, &ce, tc.op)
		assert.Equal(t, tc.code, ce.Code, tc.op)
		assert.Equal(t, tc.msg, ce.Message, tc.op)
	}
}

// TestACLMatrix checks an operation's Access against the caller's identity
// in-process; the wire path is checked by TestWireACL.
func TestACLMatrix(t *testing.T) {
	r := NewRegistry(nil)
	Query(r, "admin/op", func(context.Context, struct{}) (string, error) { return "ok", nil },
		Options{Access: core.AccessControl{RequiredScopes: []string{"admin"}}})
	for _, tc := range []struct {
		name   string
		caller *Caller
		code   string
		msg    string
	}{
		{"anonymous", &Caller{}, CodeForbidden, "authentication required"},
		{"missing scope", &Caller{Identity: &core.Identity{ID: "u", Scopes: []string{"call"}}}, CodeForbidden, "missing scope admin"},
		{"forwarded admin does not count", &Caller{Identity: &core.Identity{ID: "hub", Scopes: []string{"call"}}, ForwardedFor: &ForwardedFor{ID: "root", Scopes: []string{"admin"}}}, CodeForbidden, "missing scope admin"},
		{"allowed", &Caller{Identity: &core.Identity{ID: "a", Scopes: []string{"admin"}}}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out string
			err := r.Call(WithCaller(t.Context(), tc.caller), "admin/op", nil, &out)
			if tc.code == "" {
				require.NoError(t, err)
				assert.Equal(t, "ok", out)
				return
			}
			var ce *Error
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.code, ce.Code)
			assert.Equal(t, tc.msg, ce.Message)
		})
	}
}

func TestServicesListFiltersByACL(t *testing.T) {
	r := NewRegistry(nil)
	Query(r, "open/op", greet, Options{})
	Query(r, "admin/op", greet, Options{Access: core.AccessControl{RequiredScopes: []string{"admin"}}})
	Query(r, "hidden/op", greet, Options{Visibility: Internal})
	names := func(c *Caller) []string {
		var out ListOutput
		require.NoError(t, r.Call(WithCaller(t.Context(), c), "services/list", nil, &out))
		var n []string
		for _, s := range out.Operations {
			n = append(n, s.Name)
		}
		return n
	}
	assert.Equal(t, []string{"open/op", "services/list", "services/schema"}, names(&Caller{}))
	assert.Equal(t, []string{"admin/op", "open/op", "services/list", "services/schema"}, names(&Caller{Identity: &core.Identity{Scopes: []string{"admin"}}}))

	var spec Spec
	err := r.Call(WithCaller(t.Context(), &Caller{}), "services/schema", SchemaInput{Name: "admin/op"}, &spec)
	assert.Equal(t, CodeNotFound, ErrorCode(err))
	err = r.Call(WithCaller(t.Context(), &Caller{}), "services/schema", SchemaInput{Name: "hidden/op"}, &spec)
	assert.Equal(t, CodeNotFound, ErrorCode(err))
	require.NoError(t, r.Call(WithCaller(t.Context(), &Caller{}), "services/schema", SchemaInput{Name: "/open/op"}, &spec))
	assert.Equal(t, "open/op", spec.Name)
	assert.Equal(t, []string{"name"}, spec.Input.Required)

	// Internal operations stay callable in-process.
	var out greetOut
	require.NoError(t, r.Call(t.Context(), "hidden/op", greetIn{Name: "x"}, &out))
	assert.Equal(t, "hello x", out.Text)
}

func TestParentAbortCascadesLocally(t *testing.T) {
	r := NewRegistry(nil)
	childDone := make(chan error, 1)
	started := make(chan struct{})
	Query(r, "demo/child", func(ctx context.Context, _ struct{}) (int, error) {
		close(started)
		<-ctx.Done()
		childDone <- ctx.Err()
		return 0, ctx.Err()
	}, Options{Visibility: Internal})
	Query(r, "demo/parent", func(ctx context.Context, _ struct{}) (int, error) {
		return 0, r.Call(ctx, "demo/child", nil, nil)
	}, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- r.Call(ctx, "demo/parent", nil, nil) }()
	<-started
	cancel()
	assert.ErrorIs(t, <-childDone, context.Canceled)
	assert.Error(t, <-errc)
}
