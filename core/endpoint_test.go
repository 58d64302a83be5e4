package core_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tagHandler answers each stream with its tag and closes it.
type tagHandler struct {
	alpn string
	tag  string
}

func (h tagHandler) ALPN() []string { return []string{h.alpn} }
func (h tagHandler) ServeConn(ctx context.Context, c core.Conn) error {
	for {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return err
		}
		_, _ = io.WriteString(s, h.tag+":"+c.ALPN())
		_ = s.CloseWrite()
	}
}

// funcHandler runs f for each connection.
type funcHandler struct {
	alpn string
	f    func(ctx context.Context, c core.Conn) error
}

func (h funcHandler) ALPN() []string                                   { return []string{h.alpn} }
func (h funcHandler) ServeConn(ctx context.Context, c core.Conn) error { return h.f(ctx, c) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// roundTrip opens a stream, sends msg, half-closes and reads everything.
func roundTrip(t *testing.T, c core.Conn, msg []byte) ([]byte, error) {
	t.Helper()
	s, err := c.OpenStream(ctxT(t))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if _, err := s.Write(msg); err != nil {
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		return nil, err
	}
	return io.ReadAll(s)
}

func TestDispatchByALPN(t *testing.T) {
	p := coretest.NewPair(t, []string{"a", "b"},
		coretest.Route{Handler: tagHandler{"alknet/a", "A"}, ACL: core.AccessControl{RequiredScopes: []string{"a"}}},
		coretest.Route{Handler: tagHandler{"alknet/b", "B"}},
	)
	for alpn, want := range map[string]string{"alknet/a": "A:alknet/a", "alknet/b": "B:alknet/b"} {
		c := p.Dial(t, alpn)
		assert.Equal(t, alpn, c.ALPN())
		assert.Equal(t, p.Server.NodeID(), c.RemoteID())
		got, err := roundTrip(t, c, nil)
		require.NoError(t, err)
		assert.Equal(t, want, string(got))
	}
}

func TestUnknownALPNFailsHandshake(t *testing.T) {
	var ran atomic.Bool
	p := coretest.NewPair(t, nil, coretest.Route{Handler: funcHandler{"alknet/a", func(context.Context, core.Conn) error { ran.Store(true); return nil }}})
	_, err := p.Client.Dial(ctxT(t), p.Server.Addr(), "alknet/nope")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not serve alknet/nope")
	assert.False(t, ran.Load())
}

func TestPinnedNodeIDMismatch(t *testing.T) {
	p := coretest.NewPair(t, nil, coretest.Route{Handler: core.Ping{}})
	other := coretest.Key(t).NodeID()
	addr := p.Server.Addr()
	addr.ID = other
	_, err := p.Client.Dial(ctxT(t), addr, core.PingALPN)
	require.Error(t, err)
	assert.ErrorIs(t, err, core.ErrNodeIDMismatch)
}

func TestRefusedPeers(t *testing.T) {
	var ran atomic.Int32
	h := funcHandler{"alknet/sftp", func(context.Context, core.Conn) error { ran.Add(1); return nil }}
	p := coretest.NewPair(t, []string{"ssh"}, coretest.Route{Handler: h, ACL: core.AccessControl{RequiredScopes: []string{"sftp"}}})

	// Known peer without the scope.
	c := p.Dial(t, "alknet/sftp")
	_, err := roundTrip(t, c, []byte("x"))
	require.Error(t, err)
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "want an application close, got %v", err)
	assert.Equal(t, core.CodeForbidden, ce.Code)
	assert.Equal(t, "peer not authorized for alknet/sftp: missing scope sftp", ce.Reason)
	assert.True(t, ce.Remote)

	// Unknown peer.
	stranger := coretest.ClientEndpoint(t, core.SecretKey{})
	c2, err := stranger.Dial(ctxT(t), p.Server.Addr(), "alknet/sftp")
	require.NoError(t, err)
	_, err = roundTrip(t, c2, []byte("x"))
	ce, ok = core.AsCloseError(err)
	require.True(t, ok, "want an application close, got %v", err)
	assert.Equal(t, "peer not authorized for alknet/sftp: authentication required", ce.Reason)
	assert.Equal(t, int32(0), ran.Load(), "the handler never runs for a refused peer")
}

func TestIdentityReachesHandler(t *testing.T) {
	got := make(chan *core.Identity, 1)
	h := funcHandler{"alknet/who", func(_ context.Context, c core.Conn) error { got <- c.Identity(); return nil }}
	p := coretest.NewPair(t, []string{"who"}, coretest.Route{Handler: h, ACL: core.AccessControl{RequiredScopes: []string{"who"}}})
	p.Dial(t, "alknet/who")
	id := recv(t, got, "the handler runs")
	require.NotNil(t, id)
	assert.Equal(t, "client", id.ID)
	assert.Equal(t, []string{"who"}, id.Scopes)
}

func TestPanicClosesOnlyItsConnection(t *testing.T) {
	h := funcHandler{"alknet/boom", func(ctx context.Context, c core.Conn) error {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return err
		}
		_ = s
		panic("boom")
	}}
	p := coretest.NewPair(t, nil, coretest.Route{Handler: h}, coretest.Route{Handler: core.Ping{}})
	ping := p.Dial(t, core.PingALPN)
	boom := p.Dial(t, "alknet/boom")
	_, err := roundTrip(t, boom, []byte("x"))
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "got %v", err)
	assert.Equal(t, core.CodeInternal, ce.Code)

	got, err := roundTrip(t, ping, []byte("still here"))
	require.NoError(t, err)
	assert.Equal(t, "still here", string(got))
	// And the endpoint accepts new connections.
	got, err = roundTrip(t, p.Dial(t, core.PingALPN), []byte("new"))
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
}

func TestShutdownDrainsRunningHandler(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	h := funcHandler{"alknet/slow", func(ctx context.Context, c core.Conn) error {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return err
		}
		close(started)
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		_, _ = io.WriteString(s, "done")
		_ = s.CloseWrite()
		finished.Store(true)
		// The handler keeps accepting until the endpoint drains.
		_, err = c.AcceptStream(ctx)
		if !errors.Is(err, core.ErrShuttingDown) {
			return err
		}
		// Let the client read the reply before the endpoint closes.
		_, _ = io.Copy(io.Discard, s)
		return nil
	}}
	srv := coretest.StartEndpoint(t, core.Config{}, coretest.Route{Handler: h})
	cli := coretest.ClientEndpoint(t, core.SecretKey{})
	c, err := cli.Dial(ctxT(t), srv.Addr(), "alknet/slow")
	require.NoError(t, err)
	s, err := c.OpenStream(ctxT(t))
	require.NoError(t, err)
	_, err = s.Write([]byte("go"))
	require.NoError(t, err)
	recv(t, started, "the handler got the stream")

	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- srv.Shutdown(ctxT(t)) }()
	select {
	case <-shutdownDone:
		t.Fatal("Shutdown returned while a handler was still running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	reply, err := io.ReadAll(io.LimitReader(s, 4))
	require.NoError(t, err)
	assert.Equal(t, "done", string(reply))
	_ = s.CloseWrite()
	require.NoError(t, recv(t, shutdownDone, "Shutdown returns once the handler is done"))
	assert.True(t, finished.Load())
	short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = cli.Dial(short, srv.Addr(), "alknet/slow")
	assert.Error(t, err, "a shut down endpoint accepts nothing")
}

func TestPerPeerConnectionLimit(t *testing.T) {
	ck, ok2 := coretest.Key(t), coretest.Key(t)
	prov := coretest.NewPeers(
		core.PeerEntry{PeerID: "c", Fingerprints: []string{ck.NodeID().Fingerprint()}, Enabled: true},
		core.PeerEntry{PeerID: "o", Fingerprints: []string{ok2.NodeID().Fingerprint()}, Enabled: true},
	)
	srv := coretest.StartEndpoint(t, core.Config{MaxConnsPerPeer: 2, Identities: prov}, coretest.Route{Handler: core.Ping{}})
	cli := coretest.ClientEndpoint(t, ck)
	var conns []core.Conn
	for range 2 {
		c, err := cli.Dial(ctxT(t), srv.Addr(), core.PingALPN)
		require.NoError(t, err)
		got, err := roundTrip(t, c, []byte("ok"))
		require.NoError(t, err)
		require.Equal(t, "ok", string(got))
		conns = append(conns, c)
	}
	c, err := cli.Dial(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	_, err = roundTrip(t, c, []byte("x"))
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "got %v", err)
	assert.Equal(t, core.CodeLimit, ce.Code)
	assert.Contains(t, ce.Reason, "too many connections from this peer")

	// Another key is not affected.
	other := coretest.ClientEndpoint(t, ok2)
	c2, err := other.Dial(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	got, err := roundTrip(t, c2, []byte("fine"))
	require.NoError(t, err)
	assert.Equal(t, "fine", string(got))

	// Closing one frees a slot.
	require.NoError(t, conns[0].Close(core.CodeOK, ""))
	require.Eventually(t, func() bool { return srv.ConnCount() == 2 }, 5*time.Second, 5*time.Millisecond)
	c3, err := cli.Dial(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	got, err = roundTrip(t, c3, []byte("again"))
	require.NoError(t, err)
	assert.Equal(t, "again", string(got))
}

func TestReauthorizeClosesRevokedPeer(t *testing.T) {
	ck := coretest.Key(t)
	entry := core.PeerEntry{PeerID: "c", Fingerprints: []string{ck.NodeID().Fingerprint()}, Scopes: []string{"echo"}, Enabled: true}
	prov := coretest.NewPeers(entry)
	srv := coretest.StartEndpoint(t, core.Config{Identities: prov},
		coretest.Route{Handler: core.Ping{}, ACL: core.AccessControl{RequiredScopes: []string{"echo"}}})
	cli := coretest.ClientEndpoint(t, ck)
	c, err := cli.Dial(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	got, err := roundTrip(t, c, []byte("hi"))
	require.NoError(t, err)
	require.Equal(t, "hi", string(got))

	assert.Equal(t, 0, srv.Reauthorize(), "nothing changed")
	entry.Enabled = false
	prov.Set(entry)
	assert.Equal(t, 1, srv.Reauthorize())
	select {
	case <-c.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("revoked connection still open")
	}
	_, err = roundTrip(t, c, []byte("x"))
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "got %v", err)
	assert.Equal(t, core.CodeRevoked, ce.Code)
	assert.Equal(t, "peer not authorized for alknet/ping: authentication required", ce.Reason)
}

// TestDisabledPeerHearsAccessRevoked: a new connection from a disabled
// peer's key is refused with CodeRevoked and says so; a key the node never
// knew still hears "authentication required".
func TestDisabledPeerHearsAccessRevoked(t *testing.T) {
	ck, stranger := coretest.Key(t), coretest.Key(t)
	prov := coretest.NewPeers(core.PeerEntry{PeerID: "c", Fingerprints: []string{ck.NodeID().Fingerprint()}, Scopes: []string{"echo"}, Enabled: false})
	srv := coretest.StartEndpoint(t, core.Config{Identities: prov},
		coretest.Route{Handler: core.Ping{}, ACL: core.AccessControl{RequiredScopes: []string{"echo"}}})
	for _, c := range []struct {
		key    core.SecretKey
		code   uint64
		reason string
	}{
		{ck, core.CodeRevoked, "access revoked: this key's peer entry is disabled on the node"},
		{stranger, core.CodeForbidden, "peer not authorized for alknet/ping: authentication required"},
	} {
		conn, err := coretest.ClientEndpoint(t, c.key).Dial(ctxT(t), srv.Addr(), core.PingALPN)
		if err == nil {
			_, err = roundTrip(t, conn, []byte("x"))
		}
		ce, ok := core.AsCloseError(err)
		require.True(t, ok, "got %v", err)
		assert.Equal(t, c.code, ce.Code)
		assert.Equal(t, c.reason, ce.Reason)
	}
}

func TestReauthorizeClosesChangedIdentityOnOpenALPN(t *testing.T) {
	ck := coretest.Key(t)
	prov := coretest.NewPeers(core.PeerEntry{PeerID: "c", Fingerprints: []string{ck.NodeID().Fingerprint()}, Scopes: []string{"msg:fetch"}, Enabled: true})
	srv := coretest.StartEndpoint(t, core.Config{Identities: prov}, coretest.Route{Handler: core.Ping{}})
	cli := coretest.ClientEndpoint(t, ck)
	c, err := cli.Dial(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	_, err = roundTrip(t, c, []byte("hi"))
	require.NoError(t, err)
	// An anonymous caller on the same open ALPN is not affected.
	anon, err := coretest.ClientEndpoint(t, core.SecretKey{}).Dial(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	_, err = roundTrip(t, anon, []byte("hi"))
	require.NoError(t, err)

	prov.Set() // the peer is removed
	assert.Equal(t, 1, srv.Reauthorize())
	_, err = roundTrip(t, c, []byte("x"))
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "got %v", err)
	assert.Equal(t, core.CodeRevoked, ce.Code)
	got, err := roundTrip(t, anon, []byte("still"))
	require.NoError(t, err)
	assert.Equal(t, "still", string(got))
}

func TestPingLargeTransfer(t *testing.T) {
	p := coretest.NewPair(t, nil, coretest.Route{Handler: core.Ping{}})
	c := p.Dial(t, core.PingALPN)
	data := make([]byte, 8<<20)
	_, _ = rand.Read(data)
	s, err := c.OpenStream(ctxT(t))
	require.NoError(t, err)
	go func() {
		_, _ = s.Write(data)
		_ = s.CloseWrite()
	}()
	back, err := io.ReadAll(s)
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(data), sha256.Sum256(back))
}

func TestRegisterPanics(t *testing.T) {
	ep, err := core.NewEndpoint(core.Config{SecretKey: coretest.Key(t), ListenAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	defer ep.Close()
	ep.Register(core.Ping{}, core.AccessControl{})
	assert.Panics(t, func() { ep.Register(core.Ping{}, core.AccessControl{}) })
	assert.Panics(t, func() { ep.Register(funcHandler{alpn: ""}, core.AccessControl{}) })
	assert.Equal(t, []string{core.PingALPN}, ep.ALPNs())
}

func TestPipeInMemory(t *testing.T) {
	a, b := coretest.Pipe("alknet/x", coretest.Side{ID: core.NodeID{1}}, coretest.Side{ID: core.NodeID{2}, Identity: &core.Identity{ID: "srv"}})
	assert.Equal(t, core.NodeID{2}, a.RemoteID())
	assert.Equal(t, "srv", a.Identity().ID)
	go func() { _ = core.Ping{}.ServeConn(context.Background(), b) }()
	data := bytes.Repeat([]byte("0123456789"), 300_000) // 3 MB, beyond the buffer
	s, err := a.OpenStream(ctxT(t))
	require.NoError(t, err)
	go func() {
		_, _ = s.Write(data)
		_ = s.CloseWrite()
	}()
	got, err := io.ReadAll(s)
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
	require.NoError(t, b.Close(core.CodeForbidden, "go away"))
	_, err = a.AcceptStream(ctxT(t))
	ce, ok := core.AsCloseError(err)
	require.True(t, ok)
	assert.Equal(t, "go away", ce.Reason)
	assert.True(t, ce.Remote)
}

// TestReauthorizeClosesOnOneRevokedAction revokes one resource action of a
// peer whose connection's ALPN gate does not look at resources: the
// handler holds the identity of the accept, so the connection must go.
func TestReauthorizeClosesOnOneRevokedAction(t *testing.T) {
	ck := coretest.Key(t)
	entry := core.PeerEntry{PeerID: "c", Fingerprints: []string{ck.NodeID().Fingerprint()}, Scopes: []string{"git"},
		Resources: map[string][]string{"git:repo/alpha": {"read", "write"}}, Enabled: true}
	prov := coretest.NewPeers(entry)
	srv := coretest.StartEndpoint(t, core.Config{Identities: prov},
		coretest.Route{Handler: core.Ping{}, ACL: core.AccessControl{RequiredScopes: []string{"git"}}})
	c, err := coretest.ClientEndpoint(t, ck).Dial(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	_, err = roundTrip(t, c, []byte("hi"))
	require.NoError(t, err)

	entry.Resources = map[string][]string{"git:repo/alpha": {"read"}}
	prov.Set(entry)
	assert.Equal(t, 1, srv.Reauthorize())
	_, err = roundTrip(t, c, []byte("x"))
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "got %v", err)
	assert.Equal(t, core.CodeRevoked, ce.Code)
	assert.Equal(t, "peer access changed; reconnect", ce.Reason)
}
