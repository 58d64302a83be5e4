package core_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
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
