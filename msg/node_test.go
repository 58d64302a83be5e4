package msg

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
	"github.com/stretchr/testify/require"
)

// msgNode is a running node: endpoint, database, msg server, and
// optionally its outbox loop.
type msgNode struct {
	testNode
	dir    string
	db     *store.DB
	srv    *Server
	ep     *core.Endpoint
	outbox *Outbox
	stopFn func()
}

type nodeOpts struct {
	cfg      Config                // DB, Key, Identities filled in when zero
	peers    core.IdentityProvider // the endpoint's peer table
	outbox   bool                  // run the outbox loop
	outCfg   OutboxConfig          // backoffs for the outbox
	listen   string                // "" = 127.0.0.1:0
	endpoint func(*core.Config)    // tweaks of the endpoint config
}

// startMsgNode runs a node for n with its database in dir (reused across
// restarts). stop (also run at cleanup) shuts it down.
func startMsgNode(t *testing.T, n testNode, dir string, o nodeOpts) *msgNode {
	t.Helper()
	db, err := store.New(store.Config{Path: filepath.Join(dir, "alknet.db")})
	require.NoError(t, err)
	cfg := o.cfg
	cfg.DB, cfg.Key = db, n.msg
	if cfg.Identities == nil {
		cfg.Identities = o.peers
	}
	srv, err := NewServer(t.Context(), cfg)
	require.NoError(t, err)
	listen := o.listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ecfg := core.Config{ListenAddr: listen, SecretKey: n.key, Identities: o.peers}
	if o.endpoint != nil {
		o.endpoint(&ecfg)
	}
	ep, err := core.NewEndpoint(ecfg)
	require.NoError(t, err)
	ep.Register(srv, core.AccessControl{})
	errc := make(chan error, 1)
	go func() { errc <- ep.Serve(context.Background()) }()
	select {
	case <-ep.Ready():
	case err := <-errc:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("endpoint not ready within 10s")
	}
	m := &msgNode{testNode: n, dir: dir, db: db, srv: srv, ep: ep}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if o.outbox {
		oc := o.outCfg
		oc.Store, oc.Key = srv.Store(), n.msg
		oc.Dial = func(ctx context.Context, a core.Addr) (core.Conn, error) { return ep.Dial(ctx, a, ALPN) }
		m.outbox, err = NewOutbox(oc)
		require.NoError(t, err)
		wg.Go(func() {
			if err := m.outbox.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("outbox: %v", err)
			}
		})
	}
	var once sync.Once
	m.stopFn = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			_ = ep.Shutdown(sctx)
			<-errc
			_ = db.Close()
		})
	}
	t.Cleanup(m.stopFn)
	return m
}

func (m *msgNode) stop() { m.stopFn() }

func (m *msgNode) addr() core.Addr { return m.ep.Addr() }

// dial connects from ep to m on ALPN.
func dialMsg(t *testing.T, ep *core.Endpoint, m *msgNode) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := ep.Dial(ctx, m.addr(), ALPN)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(core.CodeOK, "") })
	return NewClient(c)
}

// clientEP is a dial-only endpoint with key k.
func clientEP(t *testing.T, k core.SecretKey) *core.Endpoint {
	t.Helper()
	ep, err := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: k})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ep.Close() })
	return ep
}

// ownerPeers is a peer table where n's own key holds every msg scope, as
// the alknet binary's implicit owner does.
func ownerPeers(n testNode, extra ...core.PeerEntry) []core.PeerEntry {
	return append([]core.PeerEntry{{PeerID: "owner", Fingerprints: []string{n.id().Fingerprint()}, Scopes: []string{ScopeFetch, ScopeSend}, Enabled: true}}, extra...)
}
