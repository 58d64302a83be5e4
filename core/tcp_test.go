package core_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ssHandler is a funcHandler that declares it works over a single stream.
type ssHandler struct{ funcHandler }

func (ssHandler) SingleStream() bool { return true }

// tcpServer starts an endpoint with the TCP listener on.
func tcpServer(t *testing.T, cfg core.Config, routes ...coretest.Route) *core.Endpoint {
	t.Helper()
	cfg.ListenTCP = true
	srv := coretest.StartEndpoint(t, cfg, routes...)
	require.NotNil(t, srv.TCPAddr())
	return srv
}

// rawTCP dials srv over TCP+TLS with crypto/tls directly, presenting certs
// (none for an anonymous caller), on alpn.
func rawTCP(t *testing.T, srv *core.Endpoint, certs []tls.Certificate, alpn, serverName string) (*tls.Conn, error) {
	t.Helper()
	d := tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: certs, NextProtos: []string{alpn}, InsecureSkipVerify: true, ServerName: serverName}}
	c, err := d.DialContext(ctxT(t), "tcp", srv.TCPAddr().String())
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*tls.Conn), nil
}

// TestTCPRefusalMatrix: over TCP the server's first bytes on an alknet/
// ALPN are a status record: 0x00, or the QUIC close code, the reason's
// length and the same reason as over QUIC.
func TestTCPRefusalMatrix(t *testing.T) {
	known, unknown := coretest.Key(t), coretest.Key(t)
	who := make(chan *core.Identity, 8)
	echoWho := func(alpn string) ssHandler {
		return ssHandler{funcHandler{alpn, func(ctx context.Context, c core.Conn) error {
			who <- c.Identity()
			return core.Ping{}.ServeConn(ctx, c)
		}}}
	}
	srv := tcpServer(t, core.Config{Identities: coretest.NewPeers(peerEntry("k", known, "gate"))},
		coretest.Route{Handler: echoWho("alknet/open")},
		coretest.Route{Handler: echoWho("alknet/gated"), ACL: core.AccessControl{RequiredScopes: []string{"gate"}}})
	const denied = "peer not authorized for alknet/gated: authentication required"
	for _, tc := range []struct {
		name   string
		certs  []tls.Certificate
		alpn   string
		refuse string
		peer   string
	}{
		{"no cert, open", nil, "alknet/open", "", ""},
		{"no cert, gated", nil, "alknet/gated", denied, ""},
		{"unknown cert, open", []tls.Certificate{core.BenchCert(t, unknown)}, "alknet/open", "", ""},
		{"unknown cert, gated", []tls.Certificate{core.BenchCert(t, unknown)}, "alknet/gated", denied, ""},
		{"known cert, open", []tls.Certificate{core.BenchCert(t, known)}, "alknet/open", "", "k"},
		{"known cert, gated", []tls.Certificate{core.BenchCert(t, known)}, "alknet/gated", "", "k"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := rawTCP(t, srv, tc.certs, tc.alpn, "")
			require.NoError(t, err)
			_, err = c.Write([]byte(tc.name))
			require.NoError(t, err)
			require.NoError(t, c.CloseWrite())
			got, err := io.ReadAll(c)
			if tc.refuse != "" {
				want := append([]byte{byte(core.CodeForbidden), byte(len(tc.refuse))}, tc.refuse...)
				assert.Equal(t, want, got, "status record, then the end (read error %v)", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, append([]byte{0}, tc.name...), got)
			id := recv(t, who, "the handler runs")
			if tc.peer == "" {
				assert.Nil(t, id)
			} else {
				require.NotNil(t, id)
				assert.Equal(t, tc.peer, id.ID)
			}
		})
	}
	assert.Empty(t, who, "no handler ran for a refused caller")
}

// TestDialTCPRefusalIsCloseError: DialTCP reports a refusal on the
// stream's first Read as the same *CloseError as over QUIC.
func TestDialTCPRefusalIsCloseError(t *testing.T) {
	srv := tcpServer(t, core.Config{}, coretest.Route{Handler: core.Ping{}, ACL: core.AccessControl{RequiredScopes: []string{"gate"}}})
	cli := coretest.ClientEndpoint(t, core.SecretKey{})
	c, err := cli.DialTCP(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	_, err = roundTrip(t, c, []byte("x"))
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "want a close error, got %v", err)
	assert.Equal(t, core.CodeForbidden, ce.Code)
	assert.Equal(t, "peer not authorized for alknet/ping: authentication required", ce.Reason)
	assert.True(t, ce.Remote)
	select {
	case <-c.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the refused connection's context did not end")
	}
}

// TestTCPSingleStream: the client gets the one stream from OpenStream,
// the server from AcceptStream; a second OpenStream fails on both sides and
// a second AcceptStream waits until the connection ends. Bytes are exact.
func TestTCPSingleStream(t *testing.T) {
	type sides struct{ open, second error }
	got := make(chan sides, 1)
	h := ssHandler{funcHandler{"alknet/one", func(ctx context.Context, c core.Conn) error {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return err
		}
		_, openErr := c.OpenStream(ctx)
		done := make(chan error, 1)
		go func() { _, err := c.AcceptStream(ctx); done <- err }()
		_, _ = io.Copy(s, s)
		_ = s.CloseWrite()
		_ = s.Close()
		got <- sides{openErr, <-done}
		return nil
	}}}
	srv := tcpServer(t, core.Config{}, coretest.Route{Handler: h})
	cli := coretest.ClientEndpoint(t, core.SecretKey{})
	c, err := cli.DialTCP(ctxT(t), srv.Addr(), "alknet/one")
	require.NoError(t, err)
	assert.Equal(t, srv.NodeID(), c.RemoteID())
	msg := make([]byte, 4<<20)
	_, _ = rand.Read(msg)
	echo, err := roundTrip(t, c, msg)
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(msg), sha256.Sum256(echo))
	_, err = c.OpenStream(ctxT(t))
	assert.ErrorIs(t, err, core.ErrSingleStream)
	s := recv(t, got, "the handler finishes")
	assert.ErrorIs(t, s.open, core.ErrSingleStream)
	assert.ErrorIs(t, s.second, net.ErrClosed, "second AcceptStream ends with the connection")
}

// TestTCPOffersOnlySingleStreamALPNs: a handler that does not declare
// SingleStream is served over QUIC but not offered over TCP.
func TestTCPOffersOnlySingleStreamALPNs(t *testing.T) {
	srv := tcpServer(t, core.Config{}, coretest.Route{Handler: tagHandler{"alknet/multi", "m"}}, coretest.Route{Handler: core.Ping{}})
	cli := coretest.ClientEndpoint(t, core.SecretKey{})
	_, err := cli.DialTCP(ctxT(t), srv.Addr(), "alknet/multi")
	require.ErrorIs(t, err, core.ErrNoTCP)
	qc, err := cli.Dial(ctxT(t), srv.Addr(), "alknet/multi")
	require.NoError(t, err)
	out, err := roundTrip(t, qc, nil)
	require.NoError(t, err)
	assert.Equal(t, "m:alknet/multi", string(out))
	tc, err := cli.DialTCP(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	out, err = roundTrip(t, tc, []byte("ping"))
	require.NoError(t, err)
	assert.Equal(t, "ping", string(out))
}

// TestTCPPinning: DialTCP pins the node id like Dial.
func TestTCPPinning(t *testing.T) {
	srv := tcpServer(t, core.Config{}, coretest.Route{Handler: core.Ping{}})
	cli := coretest.ClientEndpoint(t, core.SecretKey{})
	addr := srv.Addr()
	addr.ID = coretest.Key(t).NodeID()
	_, err := cli.DialTCP(ctxT(t), addr, core.PingALPN)
	require.ErrorIs(t, err, core.ErrNodeIDMismatch)
}

// TestTCPSlowloris: a TCP client that connects and sends nothing is closed
// after the handshake timeout and stops counting; connections beyond
// MaxTCPHandshakes are closed at once.
func TestTCPSlowloris(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		srv := tcpServer(t, core.Config{HandshakeTimeout: 300 * time.Millisecond}, coretest.Route{Handler: core.Ping{}})
		c, err := net.Dial("tcp", srv.TCPAddr().String())
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		start := time.Now()
		n, err := c.Read(make([]byte, 1))
		assert.Equal(t, 0, n)
		assert.ErrorIs(t, err, io.EOF, "the server closed the silent connection")
		assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "not before the handshake timeout")
		waitFor(t, func() bool { return core.TCPHandshakesInProgress(srv) == 0 }, "the handshake stops counting")
	})
	t.Run("cap", func(t *testing.T) {
		srv := tcpServer(t, core.Config{MaxTCPHandshakes: 1, MaxTCPHandshakesPerIP: -1}, coretest.Route{Handler: core.Ping{}})
		first, err := net.Dial("tcp", srv.TCPAddr().String())
		require.NoError(t, err)
		defer first.Close()
		waitFor(t, func() bool { return core.TCPHandshakesInProgress(srv) == 1 }, "the first handshake counts")
		second, err := net.Dial("tcp", srv.TCPAddr().String())
		require.NoError(t, err)
		defer second.Close()
		require.NoError(t, second.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err = second.Read(make([]byte, 1))
		assert.ErrorIs(t, err, io.EOF, "beyond the cap the server closes at once (handshake timeout is 10s)")
		_ = first.Close()
		waitFor(t, func() bool { return core.TCPHandshakesInProgress(srv) == 0 }, "a closed handshake stops counting")
		// A real client gets through again.
		c, err := coretest.ClientEndpoint(t, core.SecretKey{}).DialTCP(ctxT(t), srv.Addr(), core.PingALPN)
		require.NoError(t, err)
		out, err := roundTrip(t, c, []byte("after"))
		require.NoError(t, err)
		assert.Equal(t, "after", string(out))
	})
}

// TestTCPHandshakesPerAddress: one source cannot fill the handshake cap;
// its connections beyond MaxTCPHandshakesPerIP are closed at once.
func TestTCPHandshakesPerAddress(t *testing.T) {
	srv := tcpServer(t, core.Config{MaxTCPHandshakesPerIP: 2}, coretest.Route{Handler: core.Ping{}})
	for range 2 {
		c, err := net.Dial("tcp", srv.TCPAddr().String())
		require.NoError(t, err)
		defer c.Close()
	}
	waitFor(t, func() bool { return core.TCPHandshakesInProgress(srv) == 2 }, "two handshakes count")
	third, err := net.Dial("tcp", srv.TCPAddr().String())
	require.NoError(t, err)
	defer third.Close()
	require.NoError(t, third.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = third.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the third from the same address is closed at once (handshake timeout is 10s)")
	assert.Equal(t, 2, core.TCPHandshakesInProgress(srv))
}

// waitFor polls cond every few milliseconds for up to 10 s.
func waitFor(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTCPAnonymousPerAddressCap: the anonymous caps count TCP connections
// too, and a refusal carries the QUIC code and reason.
func TestTCPAnonymousPerAddressCap(t *testing.T) {
	srv := tcpServer(t, core.Config{MaxAnonConnsPerIP: 1}, coretest.Route{Handler: core.Ping{}})
	first, err := rawTCP(t, srv, nil, core.PingALPN, "")
	require.NoError(t, err)
	var st [1]byte
	_, err = io.ReadFull(first, st[:])
	require.NoError(t, err)
	require.Equal(t, byte(0), st[0], "first connection accepted")
	second, err := rawTCP(t, srv, nil, core.PingALPN, "")
	require.NoError(t, err)
	got, _ := io.ReadAll(second)
	reason := "too many anonymous connections from this address (limit 1)"
	assert.Equal(t, append([]byte{byte(core.CodeLimit), byte(len(reason))}, reason...), got)
}

// TestTCPReauthorize: revoking a peer closes its TCP connections too.
func TestTCPReauthorize(t *testing.T) {
	ck := coretest.Key(t)
	peers := coretest.NewPeers(peerEntry("k", ck, "gate"))
	srv := tcpServer(t, core.Config{Identities: peers}, coretest.Route{Handler: core.Ping{}, ACL: core.AccessControl{RequiredScopes: []string{"gate"}}})
	c, err := coretest.ClientEndpoint(t, ck).DialTCP(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	s, err := c.OpenStream(ctxT(t))
	require.NoError(t, err)
	_, err = s.Write([]byte("hi"))
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)
	assert.Equal(t, "hi", string(buf))
	waitFor(t, func() bool { return srv.ConnCount() == 1 }, "the connection is tracked")
	peers.Set()
	assert.Equal(t, 1, srv.Reauthorize())
	require.NoError(t, s.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = s.Read(buf)
	require.Error(t, err)
	assert.False(t, errors.Is(err, context.DeadlineExceeded), "closed by the server, not by the deadline: %v", err)
	waitFor(t, func() bool { return srv.ConnCount() == 0 }, "the connection is untracked")
}

// TestTCPShutdownDrains: Shutdown tells a TCP handler to drain (its second
// AcceptStream reports ErrShuttingDown) and lets the stream finish.
func TestTCPShutdownDrains(t *testing.T) {
	srv := tcpServer(t, core.Config{}, coretest.Route{Handler: core.Ping{}})
	c, err := coretest.ClientEndpoint(t, core.SecretKey{}).DialTCP(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	s, err := c.OpenStream(ctxT(t))
	require.NoError(t, err)
	_, err = s.Write([]byte("before"))
	require.NoError(t, err)
	buf := make([]byte, 6)
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	// The stream in flight still works while draining.
	_, err = s.Write([]byte("during"))
	require.NoError(t, err)
	require.NoError(t, s.CloseWrite())
	rest, err := io.ReadAll(s)
	require.NoError(t, err)
	assert.Equal(t, "during", string(rest))
	assert.NoError(t, recv(t, done, "shutdown returns once the handler finished"))
	_, err = net.DialTimeout("tcp", srv.TCPAddr().String(), 5*time.Second)
	assert.Error(t, err, "the TCP listener is closed")
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{0, 1, 2})
	f.Add(core.EncodeStatus(core.CodeForbidden, "peer not authorized for alknet/ssh: authentication required"))
	f.Add([]byte{2, 255})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		need, code, reason, done := core.ParseStatus(b)
		if need < 1 || need > 2+255 {
			t.Fatalf("need %d out of bounds", need)
		}
		if !done {
			if len(b) >= need {
				t.Fatalf("not done with %d of %d bytes", len(b), need)
			}
			return
		}
		if need > len(b) {
			t.Fatalf("done but need %d > %d", need, len(b))
		}
		if enc := core.EncodeStatus(code, reason); !bytes.Equal(enc, b[:need]) {
			t.Fatalf("round trip: %x != %x", enc, b[:need])
		}
	})
}
