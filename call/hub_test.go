package call

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type whoami struct {
	Caller    string   `json:"caller"`
	Forwarded string   `json:"forwarded"`
	FwdScopes []string `json:"fwd_scopes"`
}

type chain struct {
	spokeEP, hubEP *core.Endpoint
	hub            *Hub
	hubReg         *Registry
	edge           *Peer
	spokePeer      *Peer // the hub's connection to the spoke
	started        chan struct{}
	stopped        chan error
}

// newChain builds edge -> hub -> spoke. The spoke knows only the hub
// (scopes call, work); the hub knows the edge (call, work, admin).
func newChain(t *testing.T) *chain {
	t.Helper()
	c := &chain{started: make(chan struct{}, 1), stopped: make(chan error, 1)}
	hubKey, edgeKey := coretest.Key(t), coretest.Key(t)

	spokeReg := NewRegistry(nil)
	Query(spokeReg, "work/whoami", func(ctx context.Context, _ struct{}) (whoami, error) {
		cl := CallerFromContext(ctx)
		w := whoami{Caller: cl.Identity.ID}
		if cl.ForwardedFor != nil {
			w.Forwarded, w.FwdScopes = cl.ForwardedFor.ID, cl.ForwardedFor.Scopes
		}
		return w, nil
	}, Options{Access: core.AccessControl{RequiredScopes: []string{"work"}}})
	Query(spokeReg, "work/admin", func(context.Context, struct{}) (string, error) { return "secret", nil },
		Options{Access: core.AccessControl{RequiredScopes: []string{"admin"}}})
	Query(spokeReg, "work/slow", func(ctx context.Context, _ struct{}) (int, error) {
		c.started <- struct{}{}
		<-ctx.Done()
		c.stopped <- context.Cause(ctx)
		return 0, ctx.Err()
	}, Options{Timeout: -1})
	Subscription(spokeReg, "work/count", func(ctx context.Context, in struct {
		N int `json:"n"`
	}, emit func(int) error) error {
		for i := range in.N {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}, Options{})
	Query(spokeReg, "work/limited", func(context.Context, struct{}) (int, error) {
		return 0, NewError("RATE_LIMITED", "later")
	}, Options{Errors: []string{"RATE_LIMITED"}})
	spokeSrv, err := NewServer(Config{Registry: spokeReg})
	require.NoError(t, err)
	c.spokeEP = coretest.StartEndpoint(t, core.Config{Identities: core.StaticPeers([]core.PeerEntry{
		{PeerID: "hub", Fingerprints: []string{hubKey.NodeID().Fingerprint()}, Scopes: []string{"call", "work"}, Enabled: true},
	})}, coretest.Route{Handler: spokeSrv, ACL: core.AccessControl{RequiredScopes: []string{"call"}}})

	c.hubReg = NewRegistry(nil)
	c.hub = NewHub(c.hubReg, nil)
	t.Cleanup(func() { _ = c.hub.Close() })
	hubSrv, err := NewServer(Config{Registry: c.hubReg})
	require.NoError(t, err)
	c.hubEP = coretest.StartEndpoint(t, core.Config{SecretKey: hubKey, Identities: core.StaticPeers([]core.PeerEntry{
		{PeerID: "edge", Fingerprints: []string{edgeKey.NodeID().Fingerprint()}, Scopes: []string{"call", "work", "admin"}, Enabled: true},
	})}, coretest.Route{Handler: hubSrv, ACL: core.AccessControl{RequiredScopes: []string{"call"}}})
	c.attach(t)

	edgeEP := coretest.ClientEndpoint(t, edgeKey)
	c.edge, err = Dial(t.Context(), edgeEP, c.hubEP.Addr(), Config{KnownCodes: []string{"RATE_LIMITED"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.edge.Close() })
	return c
}

func (c *chain) attach(t *testing.T) {
	t.Helper()
	p, err := Dial(t.Context(), c.hubEP, c.spokeEP.Addr(), Config{Registry: c.hubReg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	n, err := c.hub.Attach(t.Context(), "spoke", p, ImportOptions{})
	require.NoError(t, err)
	assert.Equal(t, 4, n, "work/admin is not granted to the hub, so not imported")
	c.spokePeer = p
}

func TestHubForwarding(t *testing.T) {
	c := newChain(t)
	ctx := t.Context()

	var w whoami
	require.NoError(t, c.edge.Call(ctx, "work/whoami", nil, &w))
	assert.Equal(t, whoami{Caller: "hub", Forwarded: "edge", FwdScopes: []string{"call", "work", "admin"}}, w)

	// The edge holds admin at the hub, but the spoke grants the hub no
	// admin: the hub cannot even see work/admin, so the edge cannot reach
	// it. (TestRawForwardedForDoesNotAuthorize sends forwarded_for with
	// admin straight to a node.)
	err := c.edge.Call(ctx, "work/admin", nil, nil)
	assert.Equal(t, CodeNotFound, ErrorCode(err))
	// Forwarding it anyway, with the edge's admin in forwarded_for, is
	// refused by the spoke: it authorizes the hub only.
	err = c.spokePeer.run(ctx, "work/admin", nil, &ForwardedFor{ID: "edge", Scopes: []string{"admin"}, Resources: map[string][]string{}}, func(json.RawMessage) error { return nil })
	assert.Equal(t, CodeForbidden, ErrorCode(err))
	assert.ErrorContains(t, err, "missing scope admin")

	// Declared codes pass through the hub.
	assert.Equal(t, "RATE_LIMITED", ErrorCode(c.edge.Call(ctx, "work/limited", nil, nil)))

	next := 0
	for v, err := range SubscribeAs[int](ctx, c.edge, "work/count", map[string]int{"n": 1000}) {
		require.NoError(t, err)
		require.Equal(t, next, v)
		next++
	}
	assert.Equal(t, 1000, next)

	ops, err := c.edge.Services(ctx)
	require.NoError(t, err)
	var names []string
	for _, o := range ops {
		names = append(names, o.Name)
	}
	assert.Equal(t, []string{"services/list", "services/schema", "work/count", "work/limited", "work/slow", "work/whoami"}, names)

	// Routing from in-process callers.
	require.NoError(t, c.hubReg.Call(WithRoute(ctx, Specific("spoke")), "work/whoami", nil, &w))
	assert.Equal(t, "hub", w.Caller)
	assert.Empty(t, w.Forwarded, "no caller in-process: nothing to forward")
	assert.Equal(t, CodeNotFound, ErrorCode(c.hubReg.Call(WithRoute(ctx, Specific("other")), "work/whoami", nil, &w)))
}

func TestHubAbortCascades(t *testing.T) {
	c := newChain(t)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- c.edge.Call(ctx, "work/slow", nil, nil) }()
	within(t, c.started, "the spoke's handler to start")
	cancel()
	assert.ErrorIs(t, within(t, errc, "the edge's call to return"), context.Canceled)
	assert.ErrorIs(t, within(t, c.stopped, "the spoke's handler to stop"), errAborted, "the spoke's handler was aborted by the hub")
}

func TestHubReimportOnReconnect(t *testing.T) {
	c := newChain(t)
	ctx := t.Context()
	require.NoError(t, c.edge.Call(ctx, "work/whoami", nil, nil))

	require.NoError(t, c.spokePeer.Close())
	// Detaching follows the connection's end; wait for it, not for time.
	for _, ok := c.hubReg.Spec("work/whoami"); ok; _, ok = c.hubReg.Spec("work/whoami") {
		within(t, c.hub.changed(), "the hub to detach the spoke")
	}
	assert.Equal(t, CodeNotFound, ErrorCode(c.edge.Call(ctx, "work/whoami", nil, nil)))
	assert.Empty(t, c.hub.Peers())

	c.attach(t)
	var w whoami
	require.NoError(t, c.edge.Call(ctx, "work/whoami", nil, &w))
	assert.Equal(t, "edge", w.Forwarded)
	assert.Equal(t, []string{"spoke"}, c.hub.Peers())
}
