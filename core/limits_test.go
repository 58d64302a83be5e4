package core_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recv waits for one value on ch or fails the test with msg.
func recv[T any](t *testing.T, ch <-chan T, msg string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out: %s", msg)
		panic("unreachable")
	}
}

// peerEntry is a known peer with scopes.
func peerEntry(id string, k core.SecretKey, scopes ...string) core.PeerEntry {
	return core.PeerEntry{PeerID: id, Fingerprints: []string{k.NodeID().Fingerprint()}, Scopes: scopes, Enabled: true}
}

// startServing starts ep (after setup, which may install test hooks) and
// shuts it down when the test ends.
func startServing(t *testing.T, cfg core.Config, setup func(*core.Endpoint), routes ...coretest.Route) *core.Endpoint {
	t.Helper()
	if cfg.SecretKey.IsZero() {
		cfg.SecretKey = coretest.Key(t)
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	ep, err := core.NewEndpoint(cfg)
	require.NoError(t, err)
	for _, r := range routes {
		ep.Register(r.Handler, r.ACL)
	}
	if setup != nil {
		setup(ep)
	}
	errc := make(chan error, 1)
	go func() { errc <- ep.Serve(context.Background()) }()
	select {
	case <-ep.Ready():
	case err := <-errc:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ep.Shutdown(ctx)
		<-errc
	})
	return ep
}

// pingOK dials with cli and checks an echo.
func pingOK(t *testing.T, cli *core.Endpoint, srv *core.Endpoint, msg string) core.Conn {
	t.Helper()
	c, err := cli.Dial(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	got, err := roundTrip(t, c, []byte(msg))
	require.NoError(t, err)
	require.Equal(t, msg, string(got))
	return c
}

// refused dials with cli and returns the close the server sent.
func refused(t *testing.T, cli *core.Endpoint, srv *core.Endpoint) *core.CloseError {
	t.Helper()
	c, err := cli.Dial(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	_, err = roundTrip(t, c, []byte("x"))
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "want an application close, got %v", err)
	assert.True(t, ce.Remote)
	return ce
}

func TestAnonymousCannotLockOutPeers(t *testing.T) {
	pk := coretest.Key(t)
	srv := coretest.StartEndpoint(t, core.Config{
		Identities: coretest.NewPeers(peerEntry("p", pk)),
		MaxConns:   3, MaxAnonConns: 3, MaxAnonConnsPerIP: -1,
	}, coretest.Route{Handler: core.Ping{}})
	for i := range 3 {
		pingOK(t, coretest.ClientEndpoint(t, core.SecretKey{}), srv, "anon"+string(rune('0'+i)))
	}
	ce := refused(t, coretest.ClientEndpoint(t, core.SecretKey{}), srv)
	assert.Equal(t, core.CodeLimit, ce.Code)
	assert.Equal(t, "too many anonymous connections (limit 3)", ce.Reason)

	// The anonymous pool is full; an authorized peer still gets in, up to
	// MaxConns of its own.
	peer := coretest.ClientEndpoint(t, pk)
	for range 3 {
		pingOK(t, peer, srv, "peer")
	}
	assert.Equal(t, 6, srv.ConnCount())
	ce = refused(t, peer, srv)
	assert.Equal(t, core.CodeLimit, ce.Code)
	assert.Equal(t, "too many connections (limit 3)", ce.Reason)
}

func TestAnonymousPerAddressCap(t *testing.T) {
	pk := coretest.Key(t)
	srv := coretest.StartEndpoint(t, core.Config{
		Identities:        coretest.NewPeers(peerEntry("p", pk)),
		MaxAnonConnsPerIP: 2,
	}, coretest.Route{Handler: core.Ping{}})
	first := pingOK(t, coretest.ClientEndpoint(t, core.SecretKey{}), srv, "a")
	pingOK(t, coretest.ClientEndpoint(t, core.SecretKey{}), srv, "b")
	ce := refused(t, coretest.ClientEndpoint(t, core.SecretKey{}), srv)
	assert.Equal(t, core.CodeLimit, ce.Code)
	assert.Equal(t, "too many anonymous connections from this address (limit 2)", ce.Reason)
	// A known peer from the same address is not affected.
	pingOK(t, coretest.ClientEndpoint(t, pk), srv, "peer")
	// Closing one frees the address's slot.
	require.NoError(t, first.Close(core.CodeOK, ""))
	require.Eventually(t, func() bool { return srv.ConnCount() == 2 }, 10*time.Second, 5*time.Millisecond)
	pingOK(t, coretest.ClientEndpoint(t, core.SecretKey{}), srv, "again")
}

func TestAnonymousRefusedWhenDisabled(t *testing.T) {
	srv := coretest.StartEndpoint(t, core.Config{MaxAnonConns: -1}, coretest.Route{Handler: core.Ping{}})
	ce := refused(t, coretest.ClientEndpoint(t, core.SecretKey{}), srv)
	assert.Equal(t, core.CodeLimit, ce.Code)
	assert.Equal(t, "anonymous connections are not accepted", ce.Reason)
}

func TestAnonymousLifetime(t *testing.T) {
	pk := coretest.Key(t)
	srv := coretest.StartEndpoint(t, core.Config{
		Identities:   coretest.NewPeers(peerEntry("p", pk)),
		AnonLifetime: 200 * time.Millisecond,
	}, coretest.Route{Handler: core.Ping{}})
	anon := pingOK(t, coretest.ClientEndpoint(t, core.SecretKey{}), srv, "a")
	peer := pingOK(t, coretest.ClientEndpoint(t, pk), srv, "p")
	select {
	case <-anon.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("anonymous connection outlived its lifetime")
	}
	_, err := roundTrip(t, anon, []byte("x"))
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "got %v", err)
	assert.Equal(t, core.CodeLimit, ce.Code)
	assert.Equal(t, "anonymous connection lifetime reached (limit 200ms)", ce.Reason)
	// The known peer's connection has no lifetime.
	got, err := roundTrip(t, peer, []byte("still"))
	require.NoError(t, err)
	assert.Equal(t, "still", string(got))
}

func TestAnonymousStreamCap(t *testing.T) {
	pk := coretest.Key(t)
	srv := coretest.StartEndpoint(t, core.Config{
		Identities:     coretest.NewPeers(peerEntry("p", pk)),
		MaxAnonStreams: 2,
	}, coretest.Route{Handler: core.Ping{}})

	// openEcho opens a stream and waits for one echo, so the handler holds it.
	openEcho := func(c core.Conn) core.Stream {
		s, err := c.OpenStream(ctxT(t))
		require.NoError(t, err)
		_, err = s.Write([]byte("k"))
		require.NoError(t, err)
		b := make([]byte, 1)
		_, err = io.ReadFull(s, b)
		require.NoError(t, err)
		return s
	}
	anon := pingOK(t, coretest.ClientEndpoint(t, core.SecretKey{}), srv, "a")
	s1, s2 := openEcho(anon), openEcho(anon)
	third, err := anon.OpenStream(ctxT(t))
	require.NoError(t, err)
	_, _ = third.Write([]byte("third")) // may already see the reset
	_, err = io.ReadAll(third)
	var se *quic.StreamError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, quic.StreamErrorCode(core.CodeLimit), se.ErrorCode)
	assert.True(t, se.Remote)

	// Ending a stream frees its slot.
	require.NoError(t, s1.CloseWrite())
	_, err = io.ReadAll(s1)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := roundTrip(t, anon, []byte("fourth"))
		return err == nil && string(got) == "fourth"
	}, 10*time.Second, 10*time.Millisecond)
	_ = s2

	// A known peer is not capped.
	peer := pingOK(t, coretest.ClientEndpoint(t, pk), srv, "p")
	for range 4 {
		openEcho(peer)
	}
	got, err := roundTrip(t, peer, []byte("fifth"))
	require.NoError(t, err)
	assert.Equal(t, "fifth", string(got))
}

// TestAnonymousStreamFloodCloses: an anonymous connection that keeps
// opening streams over its cap is closed, so it cannot churn the node.
func TestAnonymousStreamFloodCloses(t *testing.T) {
	srv := coretest.StartEndpoint(t, core.Config{MaxAnonStreams: 1}, coretest.Route{Handler: core.Ping{}})
	anon := pingOK(t, coretest.ClientEndpoint(t, core.SecretKey{}), srv, "a")
	held, err := anon.OpenStream(ctxT(t))
	require.NoError(t, err)
	_, err = held.Write([]byte("k"))
	require.NoError(t, err)
	_, err = io.ReadFull(held, make([]byte, 1))
	require.NoError(t, err)
	deadline := time.Now().Add(20 * time.Second)
	for anon.Context().Err() == nil && time.Now().Before(deadline) {
		s, err := anon.OpenStream(ctxT(t))
		if err != nil {
			break
		}
		_, _ = s.Write([]byte("x"))
		_ = s.CloseWrite()
		_, _ = io.ReadAll(s)
	}
	select {
	case <-anon.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a connection flooding streams over its cap is still open")
	}
	_, err = anon.AcceptStream(ctxT(t))
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "got %v", err)
	assert.Equal(t, core.CodeLimit, ce.Code)
	assert.Equal(t, "too many streams over the anonymous cap (limit 1)", ce.Reason)
}

// stalledDial starts a handshake with srv that never completes: the client
// stops at the server's certificate until release is closed.
func stalledDial(t *testing.T, srv *core.Endpoint, release <-chan struct{}) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { _ = tr.Close(); _ = udp.Close() })
	cert := core.BenchCert(t, coretest.Key(t))
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		NextProtos:         []string{core.PingALPN},
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error {
			<-release
			return errors.New("test: stalled handshake ends")
		},
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = tr.Dial(ctx, srv.LocalAddr(), conf, &quic.Config{HandshakeIdleTimeout: 30 * time.Second})
	}()
}

func TestRetryWhenHandshakesPileUp(t *testing.T) {
	var plain, verified atomic.Int32
	srv := startServing(t, core.Config{RetryAbove: 2}, func(ep *core.Endpoint) {
		core.SetConnInfoHook(ep, func(v bool) {
			if v {
				verified.Add(1)
			} else {
				plain.Add(1)
			}
		})
	}, coretest.Route{Handler: core.Ping{}})
	cli := coretest.ClientEndpoint(t, core.SecretKey{})

	// Quiet: no Retry round trip.
	pingOK(t, cli, srv, "quiet")
	assert.Equal(t, int32(1), plain.Load())
	assert.Equal(t, int32(0), verified.Load())
	require.Eventually(t, func() bool { return core.HandshakesInProgress(srv) == 0 }, 10*time.Second, 5*time.Millisecond)

	release := make(chan struct{})
	defer close(release)
	for range 3 {
		stalledDial(t, srv, release)
	}
	require.Eventually(t, func() bool { return core.HandshakesInProgress(srv) == 3 }, 10*time.Second, 5*time.Millisecond)
	// Now a connection attempt must prove its address first; a real
	// client does so and gets in.
	pingOK(t, cli, srv, "busy")
	assert.Equal(t, int32(1), verified.Load(), "the attempt went through a Retry")
	assert.Equal(t, int32(4), plain.Load())
}

func TestHandshakeTimeoutServerSide(t *testing.T) {
	srv := coretest.StartEndpoint(t, core.Config{HandshakeTimeout: 200 * time.Millisecond}, coretest.Route{Handler: core.Ping{}})
	release := make(chan struct{})
	defer close(release)
	stalledDial(t, srv, release)
	require.Eventually(t, func() bool { return core.HandshakesInProgress(srv) == 1 }, 10*time.Second, time.Millisecond)
	// The server gives up on the stalled handshake by itself.
	require.Eventually(t, func() bool { return core.HandshakesInProgress(srv) == 0 }, 10*time.Second, 5*time.Millisecond)
	pingOK(t, coretest.ClientEndpoint(t, core.SecretKey{}), srv, "after")
}

func TestHandshakeTimeoutClientSide(t *testing.T) {
	// A UDP socket that never answers.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	ep, err := core.NewEndpoint(core.Config{SecretKey: coretest.Key(t), ListenAddr: "127.0.0.1:0", HandshakeTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	defer ep.Close()
	addr := core.Addr{ID: coretest.Key(t).NodeID(), Host: silent.LocalAddr().String()}
	_, err = ep.Dial(ctxT(t), addr, core.PingALPN)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no answer within 200ms (node unreachable?)")
}

func TestReloadDuringAcceptIsSeen(t *testing.T) {
	ck := coretest.Key(t)
	entry := peerEntry("c", ck, "echo")
	prov := coretest.NewPeers(entry)
	var revoked atomic.Int32
	var once atomic.Bool
	var srv *core.Endpoint
	srv = startServing(t, core.Config{Identities: prov}, func(ep *core.Endpoint) {
		core.SetAfterResolveHook(ep, func() {
			if once.Swap(true) {
				return
			}
			// A reload lands after the peer was resolved and checked but
			// before its connection is tracked.
			disabled := entry
			disabled.Enabled = false
			prov.Set(disabled)
			revoked.Store(int32(ep.Reauthorize()))
		})
	}, coretest.Route{Handler: core.Ping{}, ACL: core.AccessControl{RequiredScopes: []string{"echo"}}})
	_ = srv
	c, err := coretest.ClientEndpoint(t, ck).Dial(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	_, err = roundTrip(t, c, []byte("x"))
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "the connection survived the revocation: %v", err)
	assert.Equal(t, core.CodeForbidden, ce.Code)
	assert.Equal(t, "peer not authorized for alknet/ping: authentication required", ce.Reason)
	assert.Equal(t, int32(0), revoked.Load(), "the reload ran before the connection was tracked")
	assert.Equal(t, 0, srv.ConnCount())
}

func TestReloadDuringAcceptKeepsAllowedPeer(t *testing.T) {
	ck := coretest.Key(t)
	entry := peerEntry("c", ck, "echo")
	prov := coretest.NewPeers(entry)
	var once atomic.Bool
	srv := startServing(t, core.Config{Identities: prov}, func(ep *core.Endpoint) {
		core.SetAfterResolveHook(ep, func() {
			if once.Swap(true) {
				return
			}
			more := entry
			more.Scopes = []string{"echo", "extra"}
			prov.Set(more)
			ep.Reauthorize()
		})
	}, coretest.Route{Handler: funcHandler{core.PingALPN, func(ctx context.Context, c core.Conn) error {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return err
		}
		_, _ = io.WriteString(s, c.Identity().Scopes[len(c.Identity().Scopes)-1])
		_ = s.CloseWrite()
		_, err = c.AcceptStream(ctx) // until the client is done
		return err
	}}, ACL: core.AccessControl{RequiredScopes: []string{"echo"}}})
	c, err := coretest.ClientEndpoint(t, ck).Dial(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	got, err := roundTrip(t, c, nil)
	require.NoError(t, err)
	assert.Equal(t, "extra", string(got), "the handler sees the identity of the reload")
}

func TestAnonymousSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:4433":                       "192.0.2.7",
		"[::ffff:192.0.2.7]:4433":              "192.0.2.7",
		"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:1": "2001:db8:1:2::",
		"[2001:db8:1:2::9]:2":                  "2001:db8:1:2::",
		"[2001:db8:1:3::9]:2":                  "2001:db8:1:3::",
		"[fe80::1%lo]:2":                       "fe80::",
	} {
		ap := netip.MustParseAddrPort(in)
		got := core.SourceKey(net.UDPAddrFromAddrPort(ap))
		assert.Equal(t, want, got.String(), in)
	}
}

// queuePing is ping with streams over the anonymous cap queued.
type queuePing struct{ core.Ping }

func (queuePing) QueueStreams() bool { return true }

// TestAnonymousStreamsQueued: for a StreamQueuer handler, a stream over the
// anonymous cap waits for a slot instead of being reset.
func TestAnonymousStreamsQueued(t *testing.T) {
	srv := coretest.StartEndpoint(t, core.Config{MaxAnonStreams: 2}, coretest.Route{Handler: queuePing{}})
	anon := pingOK(t, coretest.ClientEndpoint(t, core.SecretKey{}), srv, "a")
	held := make([]core.Stream, 2)
	for i := range held {
		s, err := anon.OpenStream(ctxT(t))
		require.NoError(t, err)
		_, err = s.Write([]byte("k"))
		require.NoError(t, err)
		_, err = io.ReadFull(s, make([]byte, 1))
		require.NoError(t, err)
		held[i] = s
	}
	type answer struct {
		b   []byte
		err error
	}
	got := make(chan answer, 1)
	for i := range 5 {
		third, err := anon.OpenStream(ctxT(t))
		require.NoError(t, err)
		msg := fmt.Sprintf("queued %d", i)
		_, err = third.Write([]byte(msg))
		require.NoError(t, err)
		require.NoError(t, third.CloseWrite())
		go func() {
			b, err := io.ReadAll(third)
			got <- answer{b, err}
		}()
		if i == 0 {
			select {
			case a := <-got:
				t.Fatalf("a stream over the cap was served or reset at once: %q, %v", a.b, a.err)
			case <-time.After(200 * time.Millisecond):
			}
			// Ending a held stream lets the queued one through.
			require.NoError(t, held[0].CloseWrite())
			_, err = io.ReadAll(held[0])
			require.NoError(t, err)
		}
		a := recv(t, got, "the queued stream's answer")
		require.NoError(t, a.err, "no reset for a queued stream")
		assert.Equal(t, msg, string(a.b))
	}
	assert.NoError(t, anon.Context().Err(), "the connection stays open")
}
