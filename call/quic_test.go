package call

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve starts a call server with cfg behind the "call" gate; the client
// holds scopes. It returns a Peer on a dialed connection that serves
// clientCfg's registry back.
func serve(t *testing.T, scopes []string, cfg Config, clientCfg Config) (*Peer, *coretest.Pair) {
	t.Helper()
	srv, err := NewServer(cfg)
	require.NoError(t, err)
	pair := coretest.NewPair(t, scopes, coretest.Route{Handler: srv, ACL: core.AccessControl{RequiredScopes: []string{"call"}}})
	p, err := Dial(t.Context(), pair.Client, pair.Server.Addr(), clientCfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p, pair
}

func TestUnaryOverQUIC(t *testing.T) {
	reg := NewRegistry(nil)
	Query(reg, "demo/greet", greet, Options{})
	Mutation(reg, "demo/echo", func(_ context.Context, in json.RawMessage) (json.RawMessage, error) { return in, nil }, Options{})
	p, _ := serve(t, []string{"call"}, Config{Registry: reg}, Config{})

	var out greetOut
	require.NoError(t, p.Call(t.Context(), "demo/greet", greetIn{Name: "quic"}, &out))
	assert.Equal(t, "hello quic", out.Text)
	require.NoError(t, p.Call(t.Context(), "/demo/greet", map[string]any{"name": "slash"}, &out))
	assert.Equal(t, "hello slash", out.Text)

	big := strings.Repeat("x", 64<<10)
	var echoed string
	require.NoError(t, p.Call(t.Context(), "demo/echo", big, &echoed))
	assert.Equal(t, big, echoed)

	err := p.Call(t.Context(), "demo/greet", map[string]any{"name": 1}, &out)
	assert.Equal(t, CodeInvalidInput, ErrorCode(err))

	ops, err := p.Services(t.Context())
	require.NoError(t, err)
	var names []string
	for _, o := range ops {
		names = append(names, o.Name)
	}
	assert.Equal(t, []string{"demo/echo", "demo/greet", "services/list", "services/schema"}, names)
	spec, err := p.Schema(t.Context(), "demo/greet")
	require.NoError(t, err)
	assert.Equal(t, KindQuery, spec.Kind)
	assert.Equal(t, "string", spec.Input.Properties["name"].Type)
}

func TestSubscriptionTenThousand(t *testing.T) {
	const n = 10000
	reg := NewRegistry(nil)
	Subscription(reg, "demo/count", func(ctx context.Context, in struct {
		N int `json:"n"`
	}, emit func(int) error) error {
		for i := range in.N {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}, Options{})
	p, _ := serve(t, []string{"call"}, Config{Registry: reg}, Config{})
	next, sum := 0, 0
	for v, err := range SubscribeAs[int](t.Context(), p, "demo/count", map[string]int{"n": n}) {
		require.NoError(t, err)
		require.Equal(t, next, v, "items arrive in order")
		next++
		sum += v
	}
	assert.Equal(t, n, next)
	assert.Equal(t, n*(n-1)/2, sum)

	// Call on a subscription takes its first item.
	var first int
	require.NoError(t, p.Call(t.Context(), "demo/count", map[string]int{"n": 5}, &first))
	assert.Equal(t, 0, first)
}

func TestClientAbortStopsHandler(t *testing.T) {
	reg := NewRegistry(nil)
	started := make(chan struct{}, 2)
	stopped := make(chan error, 2)
	Query(reg, "demo/block", func(ctx context.Context, _ struct{}) (int, error) {
		started <- struct{}{}
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return 0, ctx.Err()
	}, Options{Timeout: -1})
	Subscription(reg, "demo/forever", func(ctx context.Context, _ struct{}, emit func(int) error) error {
		started <- struct{}{}
		for i := 0; ; i++ {
			if err := emit(i); err != nil {
				stopped <- context.Cause(ctx)
				return err
			}
		}
	}, Options{})
	p, _ := serve(t, []string{"call"}, Config{Registry: reg}, Config{})

	t.Run("cancel a call", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- p.Call(ctx, "demo/block", nil, nil) }()
		within(t, started, "the handler to start")
		cancel()
		assert.ErrorIs(t, within(t, errc, "Call to return"), context.Canceled)
		assert.ErrorIs(t, within(t, stopped, "the handler to stop"), errAborted, "the server handler saw call.aborted")
	})
	t.Run("break a subscription", func(t *testing.T) {
		got := 0
		for v, err := range p.Subscribe(t.Context(), "demo/forever", nil) {
			require.NoError(t, err)
			require.JSONEq(t, jsonInt(got), string(v))
			if got++; got == 100 {
				break
			}
		}
		within(t, started, "the subscription to start")
		assert.ErrorIs(t, within(t, stopped, "the subscription to stop"), errAborted, "the server handler saw call.aborted")
	})
}

func jsonInt(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestTimeout(t *testing.T) {
	reg := NewRegistry(nil)
	release := make(chan struct{})
	Query(reg, "demo/slow", func(ctx context.Context, _ struct{}) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}, Options{Timeout: 20 * time.Millisecond})
	Query(reg, "demo/stubborn", func(ctx context.Context, _ struct{}) (int, error) {
		<-release // ignores ctx
		return 1, nil
	}, Options{})
	p, _ := serve(t, []string{"call"}, Config{Registry: reg, CallTimeout: 20 * time.Millisecond}, Config{})
	defer close(release)
	for _, op := range []string{"demo/slow", "demo/stubborn"} {
		err := p.Call(t.Context(), op, nil, nil)
		var ce *Error
		require.ErrorAs(t, err, &ce, op)
		assert.Equal(t, CodeTimeout, ce.Code, op)
		assert.True(t, ce.Retryable, op)
	}
}

func TestWireACL(t *testing.T) {
	reg := NewRegistry(nil)
	Query(reg, "admin/op", func(ctx context.Context, _ struct{}) (string, error) {
		c := CallerFromContext(ctx)
		return c.Identity.ID, nil
	}, Options{Access: core.AccessControl{RequiredScopes: []string{"admin"}}})
	Query(reg, "hidden/op", greet, Options{Visibility: Internal})
	tokens := core.StaticPeers([]core.PeerEntry{{PeerID: "ops-bot", TokenHash: core.HashToken([]byte("s3cret")), Scopes: []string{"admin"}, Enabled: true}})
	p, _ := serve(t, []string{"call"}, Config{Registry: reg, Identities: tokens}, Config{})

	var who string
	err := p.Call(t.Context(), "admin/op", nil, &who)
	assert.Equal(t, CodeForbidden, ErrorCode(err))
	assert.ErrorContains(t, err, "missing scope admin")

	require.NoError(t, p.Call(WithAuthToken(t.Context(), "s3cret"), "admin/op", nil, &who))
	assert.Equal(t, "ops-bot", who, "the token's identity is the subject")

	err = p.Call(WithAuthToken(t.Context(), "wrong"), "admin/op", nil, &who)
	assert.Equal(t, CodeForbidden, ErrorCode(err))
	assert.ErrorContains(t, err, "invalid auth token")

	for _, op := range []string{"hidden/op", "no/such"} {
		err = p.Call(t.Context(), op, greetIn{Name: "x"}, nil)
		assert.Equal(t, CodeNotFound, ErrorCode(err), op)
	}
}

func TestAnonymousGateRefused(t *testing.T) {
	srv, err := NewServer(Config{})
	require.NoError(t, err)
	server := coretest.StartEndpoint(t, core.Config{}, coretest.Route{Handler: srv, ACL: core.AccessControl{RequiredScopes: []string{"call"}}})
	client := coretest.ClientEndpoint(t, core.SecretKey{})
	p, err := Dial(t.Context(), client, server.Addr(), Config{})
	if err == nil {
		defer p.Close()
		_, err = p.Services(t.Context())
	}
	require.Error(t, err)
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "closed by the gate: %v", err)
	assert.Contains(t, ce.Reason, "authentication required")
}

func TestUnknownCodeBecomesInternal(t *testing.T) {
	reg := NewRegistry(nil)
	Query(reg, "demo/limited", func(context.Context, struct{}) (int, error) {
		return 0, NewError("RATE_LIMITED", "slow down")
	}, Options{Errors: []string{"RATE_LIMITED"}})
	p, pair := serve(t, []string{"call"}, Config{Registry: reg}, Config{})
	err := p.Call(t.Context(), "demo/limited", nil, nil)
	var ce *Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, CodeInternal, ce.Code)
	assert.Equal(t, "RATE_LIMITED", ce.RemoteCode)
	assert.Equal(t, "slow down", ce.Message)

	p2, err := Dial(t.Context(), pair.Client, pair.Server.Addr(), Config{KnownCodes: []string{"RATE_LIMITED"}})
	require.NoError(t, err)
	defer p2.Close()
	assert.Equal(t, "RATE_LIMITED", ErrorCode(p2.Call(t.Context(), "demo/limited", nil, nil)))
}

// dialBack starts a server that hands over the Peer of each connection it
// accepts, and dials it with clientCfg; it returns the server's Peer (for
// calls back to the dialer) and the dialer's.
func dialBack(t *testing.T, clientCfg func(server core.NodeID) Config) (back *Peer, dialer *Peer) {
	t.Helper()
	peers := make(chan *Peer, 1)
	srv, err := NewServer(Config{OnConnect: func(ctx context.Context, p *Peer) {
		peers <- p
		<-ctx.Done()
	}})
	require.NoError(t, err)
	pair := coretest.NewPair(t, []string{"call"}, coretest.Route{Handler: srv, ACL: core.AccessControl{RequiredScopes: []string{"call"}}})
	dialer, err = Dial(t.Context(), pair.Client, pair.Server.Addr(), clientCfg(pair.Server.NodeID()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = dialer.Close() })
	return within(t, peers, "the server to accept"), dialer
}

// TestBothSidesServe: the server calls back an operation the dialer serves,
// on the dialer's own connection, when the dialer's peer table grants the
// server the call gate.
func TestBothSidesServe(t *testing.T) {
	clientReg := NewRegistry(nil)
	Query(clientReg, "client/name", func(context.Context, struct{}) (string, error) { return "laptop", nil }, Options{})
	back, _ := dialBack(t, func(server core.NodeID) Config {
		return Config{Registry: clientReg, Identities: core.StaticPeers([]core.PeerEntry{
			{PeerID: "server", Fingerprints: []string{server.Fingerprint()}, Scopes: []string{"call"}, Enabled: true},
		})}
	})
	var name string
	require.NoError(t, back.Call(t.Context(), "client/name", nil, &name))
	assert.Equal(t, "laptop", name)
}

// TestDialGate: a dialed connection has no endpoint gate, so Dial applies
// the call gate itself, resolves the remote afresh for every call, and
// Reauthorize ends the remote's calls in flight once it is revoked.
func TestDialGate(t *testing.T) {
	clientReg := NewRegistry(nil)
	Query(clientReg, "client/name", func(context.Context, struct{}) (string, error) { return "laptop", nil }, Options{})
	started := make(chan struct{}, 1)
	Subscription(clientReg, "client/watch", func(ctx context.Context, _ struct{}, emit func(int) error) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}, Options{})

	t.Run("unknown remote", func(t *testing.T) {
		back, _ := dialBack(t, func(core.NodeID) Config { return Config{Registry: clientReg} })
		err := back.Call(t.Context(), "client/name", nil, nil)
		assert.Equal(t, CodeForbidden, ErrorCode(err))
		assert.ErrorContains(t, err, "authentication required")
		_, err = back.Services(t.Context())
		assert.Equal(t, CodeForbidden, ErrorCode(err), "discovery is behind the gate too")
	})
	t.Run("known without the call scope", func(t *testing.T) {
		back, _ := dialBack(t, func(server core.NodeID) Config {
			return Config{Registry: clientReg, Identities: core.StaticPeers([]core.PeerEntry{
				{PeerID: "server", Fingerprints: []string{server.Fingerprint()}, Scopes: []string{"ssh"}, Enabled: true},
			})}
		})
		err := back.Call(t.Context(), "client/name", nil, nil)
		assert.Equal(t, CodeForbidden, ErrorCode(err))
		assert.ErrorContains(t, err, "missing scope call")
	})
	t.Run("revoked while connected", func(t *testing.T) {
		var table *coretest.Peers
		var entry core.PeerEntry
		back, dialer := dialBack(t, func(server core.NodeID) Config {
			entry = core.PeerEntry{PeerID: "server", Fingerprints: []string{server.Fingerprint()}, Scopes: []string{"call"}, Enabled: true}
			table = coretest.NewPeers(entry)
			return Config{Registry: clientReg, Identities: table}
		})
		require.NoError(t, back.Call(t.Context(), "client/name", nil, nil))
		subErr := make(chan error, 1)
		go func() {
			for _, err := range back.Subscribe(t.Context(), "client/watch", nil) {
				subErr <- err
				return
			}
			subErr <- nil
		}()
		within(t, started, "the subscription to start")
		assert.Zero(t, dialer.Reauthorize(), "nothing changed yet")
		table.Set()
		assert.Equal(t, 1, dialer.Reauthorize())
		err := within(t, subErr, "the subscription to end")
		assert.Equal(t, CodeForbidden, ErrorCode(err))
		assert.ErrorContains(t, err, "access revoked")
		err = back.Call(t.Context(), "client/name", nil, nil)
		assert.ErrorContains(t, err, "authentication required", "the next call sees the revocation")
	})
}

// TestTokenRevocationEndsSubscription: a subscription authorized by an
// auth_token ends with FORBIDDEN once the token is revoked and the server
// re-checks its calls.
func TestTokenRevocationEndsSubscription(t *testing.T) {
	reg := NewRegistry(nil)
	started := make(chan struct{}, 1)
	Subscription(reg, "admin/watch", func(ctx context.Context, _ struct{}, emit func(int) error) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}, Options{Access: core.AccessControl{RequiredScopes: []string{"admin"}}})
	bot := core.PeerEntry{PeerID: "ops-bot", TokenHash: core.HashToken([]byte("s3cret")), Scopes: []string{"admin"}, Enabled: true}
	table := coretest.NewPeers(bot)
	srv, err := NewServer(Config{Registry: reg, Identities: table})
	require.NoError(t, err)
	pair := coretest.NewPair(t, []string{"call"}, coretest.Route{Handler: srv, ACL: core.AccessControl{RequiredScopes: []string{"call"}}})
	p, err := Dial(t.Context(), pair.Client, pair.Server.Addr(), Config{})
	require.NoError(t, err)
	defer p.Close()

	subErr := make(chan error, 1)
	go func() {
		for _, err := range p.Subscribe(WithAuthToken(t.Context(), "s3cret"), "admin/watch", nil) {
			subErr <- err
			return
		}
		subErr <- nil
	}()
	within(t, started, "the subscription to start")
	assert.Zero(t, srv.Reauthorize(), "the token is still valid")
	bot.Scopes = []string{"call"}
	table.Set(bot)
	assert.Equal(t, 1, srv.Reauthorize())
	err = within(t, subErr, "the subscription to end")
	assert.Equal(t, CodeForbidden, ErrorCode(err))
	assert.ErrorContains(t, err, "access revoked")
}

// TestShutdownAbortsSubscriptions: draining the endpoint ends a running
// subscription with call.aborted while a query in flight still finishes.
func TestShutdownAbortsSubscriptions(t *testing.T) {
	reg := NewRegistry(nil)
	subStarted, subStopped := make(chan struct{}, 1), make(chan error, 1)
	Subscription(reg, "demo/forever", func(ctx context.Context, _ struct{}, emit func(int) error) error {
		subStarted <- struct{}{}
		<-ctx.Done()
		subStopped <- context.Cause(ctx)
		return ctx.Err()
	}, Options{})
	queryStarted, release := make(chan struct{}, 1), make(chan struct{})
	Query(reg, "demo/slow", func(ctx context.Context, _ struct{}) (string, error) {
		queryStarted <- struct{}{}
		<-release
		return "finished", nil
	}, Options{})
	srv, err := NewServer(Config{Registry: reg})
	require.NoError(t, err)
	pair := coretest.NewPair(t, []string{"call"}, coretest.Route{Handler: srv, ACL: core.AccessControl{RequiredScopes: []string{"call"}}})
	p, err := Dial(t.Context(), pair.Client, pair.Server.Addr(), Config{})
	require.NoError(t, err)
	defer p.Close()

	subErr := make(chan error, 1)
	go func() {
		for _, err := range p.Subscribe(t.Context(), "demo/forever", nil) {
			if err != nil {
				subErr <- err
				return
			}
		}
		subErr <- nil
	}()
	queryOut := make(chan string, 1)
	go func() {
		var out string
		if err := p.Call(t.Context(), "demo/slow", nil, &out); err != nil {
			out = err.Error()
		}
		queryOut <- out
	}()
	within(t, subStarted, "the subscription to start")
	within(t, queryStarted, "the query to start")
	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shutdown <- pair.Server.Shutdown(ctx)
	}()
	assert.ErrorIs(t, within(t, subStopped, "the subscription to stop"), errShuttingDown)
	err = within(t, subErr, "the subscriber to return")
	assert.Equal(t, CodeInternal, ErrorCode(err))
	assert.ErrorContains(t, err, "aborted")
	close(release)
	assert.Equal(t, "finished", within(t, queryOut, "the query's answer"))
	require.NoError(t, within(t, shutdown, "Shutdown to return"))
}
