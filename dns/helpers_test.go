package dns

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	mdns "github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// exampleZone holds one RRset of every supported type, a wildcard, empty
// non-terminals, a delegation with glue and CNAMEs inside and out of the
// zone.
const exampleZone = `$ORIGIN example.test.
$TTL 3600
@        IN SOA   ns1 hostmaster 7 3600 600 604800 300
@        IN NS    ns1
@        IN MX    10 mail
@        IN CAA   0 issue "letsencrypt.org"
ns1      IN A     192.0.2.53
mail     IN A     192.0.2.25
www  300 IN A     192.0.2.1
www  300 IN A     192.0.2.2
www  300 IN AAAA  2001:db8::1
alias    IN CNAME www
far      IN CNAME www.elsewhere.test.
loop1    IN CNAME loop2
loop2    IN CNAME loop1
txt      IN TXT   "hello world" "second string"
_sip._tcp IN SRV  10 60 5060 sip
sip      IN A     192.0.2.60
svc      IN HTTPS 1 . alpn="h3,h2" port=443
_dns     IN SVCB  1 dns.example.test. alpn="doq" port=853
*.wild   IN A     192.0.2.99
*.wild   IN TXT   "wild"
sub.wild IN AAAA  2001:db8::99
a.b.c    IN A     192.0.2.7
child    IN NS    ns.child
ns.child IN A     192.0.2.77
`

func mustZones(t testing.TB, text, origin string) *Zones {
	t.Helper()
	rrs, err := ParseMasterFile(strings.NewReader(text), origin)
	require.NoError(t, err)
	zs, err := NewZones(rrs)
	require.NoError(t, err)
	return zs
}

// testCA is a certificate authority and a leaf for names, as PEM files.
type testCA struct {
	pool  *x509.CertPool
	files core.CertFiles
	dir   string
}

func newTestCA(t testing.TB, names ...string) testCA {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alknet test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, leafKey.Public(), caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	require.NoError(t, err)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	write("ca.pem", "CERTIFICATE", caDER)
	ca := testCA{pool: x509.NewCertPool(), dir: dir}
	ca.pool.AddCert(caCert)
	ca.files = core.CertFiles{Cert: write("cert.pem", "CERTIFICATE", leafDER), Key: write("key.pem", "PRIVATE KEY", keyDER)}
	return ca
}

// testServerName is the public name the test endpoints present a CA
// certificate for.
const testServerName = "dns.test"

// startDoQ serves srv on a loopback endpoint, open to anonymous callers,
// with a public certificate for dns.test.
func startDoQ(t testing.TB, srv *Server, cfg core.Config) (*core.Endpoint, testCA) {
	t.Helper()
	ca := newTestCA(t, testServerName)
	cfg.TLSCerts = append(cfg.TLSCerts, ca.files)
	ep := coretest.StartEndpoint(t, cfg, coretest.Route{Handler: srv})
	return ep, ca
}

// dialDoQ connects to ep as a stock DoQ client: no client certificate,
// the public name, the test CA.
func dialDoQ(t testing.TB, ep *core.Endpoint, ca testCA) *quic.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, ep.LocalAddr().String(), &tls.Config{
		ServerName: testServerName, RootCAs: ca.pool, NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13,
	}, &quic.Config{MaxIdleTimeout: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.CloseWithError(0, "") })
	return conn
}

// newServer is a Server over zs with cfg's limits.
func newServer(t testing.TB, zs ZoneSource, fwd Exchanger, cfg Config) *Server {
	t.Helper()
	cfg.Handler = NewResolver(zs, fwd)
	s, err := NewServer(cfg)
	require.NoError(t, err)
	return s
}

// startClassic serves srv's classic listener on a free loopback port.
func startClassic(t testing.TB, srv *Server) string {
	t.Helper()
	l, err := srv.ListenClassic("127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- l.Serve(t.Context()) }()
	t.Cleanup(func() {
		_ = l.Close()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("classic listener did not stop within 10s")
		}
	})
	return l.Addr().String()
}

// query builds a query for name/type with EDNS(0) unless noEDNS.
func query(name string, qtype uint16, edns bool) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	return m
}

// needClient skips (or, with ALKNET_REQUIRE_CLIENTS=1, fails) a test
// whose client program is missing.
func needClient(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s not found; install %s", name, pkg)
		if os.Getenv("ALKNET_REQUIRE_CLIENTS") == "1" {
			t.Fatal(msg + "; ALKNET_REQUIRE_CLIENTS=1 makes a missing client an error")
		}
		t.Skip(msg)
	}
	return p
}

// rrStrings renders records for comparison.
func rrStrings(rrs []mdns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	return out
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.LocalAddr().String()
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func tlsFor(ca testCA) *tls.Config {
	return &tls.Config{ServerName: testServerName, RootCAs: ca.pool}
}

// memStream is a streamRW whose peer answers each query with reply.
type memStream struct {
	in     bytes.Buffer
	out    *bytes.Reader
	reply  func([]byte) []byte
	closed bool
}

func fakeStream(t testing.TB, reply func(q []byte) []byte) *memStream {
	return &memStream{reply: reply}
}

func (m *memStream) Write(p []byte) (int, error) { return m.in.Write(p) }
func (m *memStream) Read(p []byte) (int, error) {
	if m.out == nil {
		return 0, io.ErrNoProgress
	}
	return m.out.Read(p)
}
func (m *memStream) closeWrite() error {
	q, err := ReadMessage(&m.in, MaxMessageSize)
	if err != nil {
		return err
	}
	m.out = bytes.NewReader(m.reply(q))
	return nil
}
func (m *memStream) abort()                      {}
func (m *memStream) SetDeadline(time.Time) error { return nil }
