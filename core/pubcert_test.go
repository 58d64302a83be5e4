package core_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testCA is a throwaway certificate authority for public-name tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alknet test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &testCA{cert: c, key: k, pool: pool}
}

// issue writes a leaf for names (signed with key pub/priv) and the CA
// certificate after it to dir/name.crt, and the key to dir/name.key.
func (ca *testCA) issue(t *testing.T, dir, name string, serial int64, priv any, names ...string) core.CertFiles {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: names, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	pub := priv.(crypto.Signer).Public()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	f := core.CertFiles{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	require.NoError(t, os.WriteFile(f.Cert, chain, 0o644))
	require.NoError(t, os.WriteFile(f.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return f
}

func p256(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// quicHello dials srv over QUIC as a stock client: no client certificate,
// server name sni; verify is nil for CA verification against roots.
func quicHello(t *testing.T, srv *core.Endpoint, sni string, roots *x509.CertPool) (*x509.Certificate, *quic.Conn, error) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { _ = tr.Close(); _ = udp.Close() })
	conf := &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{core.PingALPN}, ServerName: sni, RootCAs: roots, InsecureSkipVerify: roots == nil}
	qc, err := tr.Dial(ctxT(t), srv.LocalAddr(), conf, &quic.Config{})
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { _ = qc.CloseWithError(0, "") })
	return qc.ConnectionState().TLS.PeerCertificates[0], qc, nil
}

// TestPublicCertBySNIOverQUIC: a ClientHello naming a configured DNS name
// gets the public certificate, which verifies against its CA; any other
// name, or none, gets the node's ed25519 certificate; pinned alknet dials
// are unchanged.
func TestPublicCertBySNIOverQUIC(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	files := ca.issue(t, dir, "pub", 7, p256(t), "pub.example.test", "*.wild.example.test")
	srv := coretest.StartEndpoint(t, core.Config{TLSCerts: []core.CertFiles{files}}, coretest.Route{Handler: core.Ping{}})

	for _, name := range []string{"pub.example.test", "PUB.example.test.", "a.wild.example.test"} {
		leaf, qc, err := quicHello(t, srv, name, ca.pool)
		require.NoError(t, err, name)
		assert.Equal(t, "pub", leaf.Subject.CommonName, name)
		// The stock client is anonymous and reaches the open ALPN.
		s, err := qc.OpenStreamSync(ctxT(t))
		require.NoError(t, err)
		_, err = s.Write([]byte(name))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		got, err := io.ReadAll(s)
		require.NoError(t, err)
		assert.Equal(t, name, string(got))
	}
	for _, name := range []string{"", "other.example.test", "a.b.wild.example.test", "wild.example.test"} {
		leaf, _, err := quicHello(t, srv, name, nil)
		require.NoError(t, err, name)
		pub, ok := leaf.PublicKey.(ed25519.PublicKey)
		require.True(t, ok, "%q gets the ed25519 certificate", name)
		assert.Equal(t, []byte(srv.NodeID().PublicKey()), []byte(pub))
	}
	c := coretest.ClientEndpoint(t, core.SecretKey{})
	conn, err := c.Dial(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	out, err := roundTrip(t, conn, []byte("pinned"))
	require.NoError(t, err)
	assert.Equal(t, "pinned", string(out))
}

// TestPublicCertReload: replacing the files is seen by a later handshake.
func TestPublicCertReload(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	files := ca.issue(t, dir, "pub", 1, p256(t), "pub.example.test")
	srv := coretest.StartEndpoint(t, core.Config{TLSCerts: []core.CertFiles{files}}, coretest.Route{Handler: core.Ping{}})
	leaf, _, err := quicHello(t, srv, "pub.example.test", ca.pool)
	require.NoError(t, err)
	require.Equal(t, int64(1), leaf.SerialNumber.Int64())

	ca.issue(t, dir, "pub", 2, p256(t), "pub.example.test", "new.example.test")
	future := time.Now().Add(time.Hour)
	require.NoError(t, os.Chtimes(files.Cert, future, future))
	require.NoError(t, os.Chtimes(files.Key, future, future))
	waitFor(t, func() bool {
		leaf, _, err := quicHello(t, srv, "new.example.test", ca.pool)
		return err == nil && leaf.SerialNumber.Int64() == 2
	}, "the reloaded certificate and its new name are served")
}

func TestPublicCertRefusesBadFiles(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	good := ca.issue(t, dir, "good", 1, p256(t), "good.example.test")
	other := ca.issue(t, dir, "other", 2, p256(t), "other.example.test")
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		files core.CertFiles
		want  string
	}{
		{"key of another certificate", core.CertFiles{Cert: good.Cert, Key: other.Key}, "private key does not match public key"},
		{"missing file", core.CertFiles{Cert: filepath.Join(dir, "nope.crt"), Key: good.Key}, "no such file"},
		{"ed25519 key", ca.issue(t, dir, "ed", 3, edPriv, "ed.example.test"), "key is neither ecdsa p-256 nor rsa"},
		{"p-384 key", ca.issue(t, dir, "p384", 4, p384, "p384.example.test"), "ecdsa key is not p-256"},
		{"no dns names", ca.issue(t, dir, "nameless", 5, p256(t)), "certificate has no dns names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := core.NewEndpoint(core.Config{SecretKey: coretest.Key(t), ListenAddr: "127.0.0.1:0", TLSCerts: []core.CertFiles{tc.files}})
			require.ErrorIs(t, err, core.ErrTLSCert)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestOpenSSLSeesPublicChain: openssl s_client over TCP with the public
// name sees the CA-issued chain; without a server name, or with another
// one, it sees the node's self-signed ed25519 certificate.
func TestOpenSSLSeesPublicChain(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not found; install openssl")
	}
	ca := newTestCA(t)
	files := ca.issue(t, t.TempDir(), "pub", 9, p256(t), "pub.example.test")
	srv := tcpServer(t, core.Config{TLSCerts: []core.CertFiles{files}}, coretest.Route{Handler: core.Ping{}})
	sClient := func(args ...string) string {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "openssl", append([]string{"s_client", "-connect", srv.TCPAddr().String(), "-alpn", core.PingALPN, "-showcerts"}, args...)...)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	out := sClient("-servername", "pub.example.test")
	assert.Regexp(t, `(?m)^ 0 s:\s*CN\s*=\s*pub`, out)
	assert.Regexp(t, `(?m)^\s+i:\s*CN\s*=\s*alknet test CA`, out)
	assert.Regexp(t, `(?m)^ 1 s:\s*CN\s*=\s*alknet test CA`, out, "the chain holds the CA certificate")
	assert.Regexp(t, `ALPN protocol: alknet/ping`, out)

	node := regexp.QuoteMeta(srv.NodeID().String())
	for _, args := range [][]string{{"-noservername"}, {"-servername", "other.example.test"}} {
		out := sClient(args...)
		assert.Regexp(t, `(?m)^ 0 s:\s*CN\s*=\s*`+node, out, "%v sees the ed25519 certificate", args)
		assert.NotContains(t, out, "alknet test CA")
		assert.Regexp(t, `(?i)ed25519`, out)
	}
}
