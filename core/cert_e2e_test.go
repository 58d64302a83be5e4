package core_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ecdsaCert(t *testing.T) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// rawDial dials srv with quic-go directly, presenting certs.
func rawDial(t *testing.T, srv *core.Endpoint, certs []tls.Certificate) (*quic.Conn, error) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { _ = tr.Close(); _ = udp.Close() })
	conf := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: certs, NextProtos: []string{core.PingALPN}, InsecureSkipVerify: true}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return tr.Dial(ctx, srv.LocalAddr(), conf, &quic.Config{})
}

func TestServerRefusesNonEd25519ClientCertificate(t *testing.T) {
	var ran atomic.Int32
	srv := coretest.StartEndpoint(t, core.Config{}, coretest.Route{Handler: funcHandler{core.PingALPN, func(context.Context, core.Conn) error { ran.Add(1); return nil }}})
	qc, err := rawDial(t, srv, []tls.Certificate{ecdsaCert(t)})
	if err == nil {
		// TLS 1.3: the client may finish before the server's verdict arrives.
		<-qc.Context().Done()
		err = context.Cause(qc.Context())
	}
	var te *quic.TransportError
	require.ErrorAs(t, err, &te)
	assert.True(t, te.Remote)
	assert.Equal(t, quic.TransportErrorCode(0x100+42), te.ErrorCode, "TLS alert bad_certificate")
	assert.Equal(t, int32(0), ran.Load())
}

func TestDialRefusesNonEd25519ServerCertificate(t *testing.T) {
	// A plain quic-go server with an ECDSA certificate.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { _ = tr.Close(); _ = udp.Close() })
	ln, err := tr.Listen(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{ecdsaCert(t)}, NextProtos: []string{core.PingALPN}}, &quic.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	cli := coretest.ClientEndpoint(t, core.SecretKey{})
	_, err = cli.Dial(ctxT(t), core.Addr{ID: coretest.Key(t).NodeID(), Host: udp.LocalAddr().String()}, core.PingALPN)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate key is not ed25519")
}

// rawRoundTrip dials srv on alpn with quic-go, presenting certs (none for
// an anonymous caller), and echoes msg on one stream.
func rawRoundTrip(t *testing.T, srv *core.Endpoint, certs []tls.Certificate, alpn string, msg []byte) ([]byte, error) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { _ = tr.Close(); _ = udp.Close() })
	conf := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: certs, NextProtos: []string{alpn}, InsecureSkipVerify: true}
	qc, err := tr.Dial(ctxT(t), srv.LocalAddr(), conf, &quic.Config{})
	if err != nil {
		return nil, err
	}
	defer qc.CloseWithError(0, "")
	s, err := qc.OpenStreamSync(ctxT(t))
	if err != nil {
		return nil, err
	}
	if _, err := s.Write(msg); err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	return io.ReadAll(s)
}

// TestRefusalMatrix: no certificate, an unknown certificate and a known
// one, each on an open and on a gated ALPN.
func TestRefusalMatrix(t *testing.T) {
	known, unknown := coretest.Key(t), coretest.Key(t)
	type seen struct {
		id    core.NodeID
		ident *core.Identity
	}
	who := make(chan seen, 8)
	echoWho := func(alpn string) funcHandler {
		return funcHandler{alpn, func(ctx context.Context, c core.Conn) error {
			who <- seen{c.RemoteID(), c.Identity()}
			return core.Ping{}.ServeConn(ctx, c)
		}}
	}
	srv := coretest.StartEndpoint(t, core.Config{Identities: coretest.NewPeers(peerEntry("k", known, "gate"))},
		coretest.Route{Handler: echoWho("alknet/open")},
		coretest.Route{Handler: echoWho("alknet/gated"), ACL: core.AccessControl{RequiredScopes: []string{"gate"}}})
	for _, tc := range []struct {
		name   string
		certs  []tls.Certificate
		alpn   string
		refuse string // "" = served
		id     core.NodeID
		peer   string // identity id, "" = nil
	}{
		{"no cert, open", nil, "alknet/open", "", core.NodeID{}, ""},
		{"no cert, gated", nil, "alknet/gated", "peer not authorized for alknet/gated: authentication required", core.NodeID{}, ""},
		{"unknown cert, open", []tls.Certificate{core.BenchCert(t, unknown)}, "alknet/open", "", unknown.NodeID(), ""},
		{"unknown cert, gated", []tls.Certificate{core.BenchCert(t, unknown)}, "alknet/gated", "peer not authorized for alknet/gated: authentication required", unknown.NodeID(), ""},
		{"known cert, open", []tls.Certificate{core.BenchCert(t, known)}, "alknet/open", "", known.NodeID(), "k"},
		{"known cert, gated", []tls.Certificate{core.BenchCert(t, known)}, "alknet/gated", "", known.NodeID(), "k"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rawRoundTrip(t, srv, tc.certs, tc.alpn, []byte(tc.name))
			if tc.refuse != "" {
				var ae *quic.ApplicationError
				require.True(t, errors.As(err, &ae), "want an application close, got %v", err)
				assert.Equal(t, quic.ApplicationErrorCode(core.CodeForbidden), ae.ErrorCode)
				assert.Equal(t, tc.refuse, ae.ErrorMessage)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.name, string(got))
			s := recv(t, who, "the handler runs")
			assert.Equal(t, tc.id, s.id)
			if tc.peer == "" {
				assert.Nil(t, s.ident)
			} else {
				require.NotNil(t, s.ident)
				assert.Equal(t, tc.peer, s.ident.ID)
			}
		})
	}
	assert.Empty(t, who, "no handler ran for a refused caller")
}

// TestZeroKeyNeverResolves: a peer entry naming the all-zero key (which
// certificate-less callers map to) grants nothing.
func TestZeroKeyNeverResolves(t *testing.T) {
	srv := coretest.StartEndpoint(t, core.Config{Identities: coretest.NewPeers(core.PeerEntry{PeerID: "zero", Fingerprints: []string{core.NodeID{}.Fingerprint()}, Scopes: []string{"gate"}, Enabled: true})},
		coretest.Route{Handler: core.Ping{}, ACL: core.AccessControl{RequiredScopes: []string{"gate"}}})
	_, err := rawRoundTrip(t, srv, nil, core.PingALPN, []byte("x"))
	var ae *quic.ApplicationError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "peer not authorized for alknet/ping: authentication required", ae.ErrorMessage)
}
