package core_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cacheEntry writes what autocert's directory cache holds under key: the
// private key, then a certificate for domain with common name cn.
func cacheEntry(t *testing.T, dir, key, domain, cn string) {
	t.Helper()
	k := p256(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(5), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, k.Public(), k)
	require.NoError(t, err)
	kd, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	data := append(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	require.NoError(t, os.WriteFile(filepath.Join(dir, key), data, 0o600))
}

// TestACMEChooseCertificate: with ACME configured, a TLS-ALPN-01
// validation (ALPN acme-tls/1) gets the challenge's token certificate, a
// client naming the domain gets the certificate the manager holds, and
// everyone else the ed25519 one. No CA is contacted: both certificates come
// from the manager's cache, and the directory URL points nowhere.
func TestACMEChooseCertificate(t *testing.T) {
	cache := t.TempDir()
	cacheEntry(t, cache, "acme.example.test+token", "acme.example.test", "token")
	cacheEntry(t, cache, "acme.example.test", "acme.example.test", "issued")
	srv := tcpServer(t, core.Config{ACME: &core.ACMEConfig{Domains: []string{"acme.example.test"}, CacheDir: cache, DirectoryURL: "http://127.0.0.1:9/directory"}},
		coretest.Route{Handler: core.Ping{}})
	hello := func(sni string, alpn string) (*x509.Certificate, error) {
		d := &net.Dialer{Timeout: 10 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", srv.TCPAddr().String(), &tls.Config{ServerName: sni, NextProtos: []string{alpn}, InsecureSkipVerify: true})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		assert.Equal(t, alpn, c.ConnectionState().NegotiatedProtocol)
		return c.ConnectionState().PeerCertificates[0], nil
	}
	leaf, err := hello("acme.example.test", "acme-tls/1")
	require.NoError(t, err)
	assert.Equal(t, "token", leaf.Subject.CommonName)
	leaf, err = hello("acme.example.test", core.PingALPN)
	require.NoError(t, err)
	assert.Equal(t, "issued", leaf.Subject.CommonName)
	leaf, err = hello("other.example.test", core.PingALPN)
	require.NoError(t, err)
	assert.Equal(t, srv.NodeID().String(), leaf.Subject.CommonName)
}

func TestACMEConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  core.ACMEConfig
		want string
	}{
		{"no domains", core.ACMEConfig{CacheDir: t.TempDir()}, "acme needs at least one domain"},
		{"no cache", core.ACMEConfig{Domains: []string{"a.example.test"}}, "acme needs a cache directory"},
		{"wildcard", core.ACMEConfig{Domains: []string{"*.example.test"}, CacheDir: t.TempDir()}, `acme domain "*.example.test" is not a full dns name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := core.NewEndpoint(core.Config{SecretKey: coretest.Key(t), ListenAddr: "127.0.0.1:0", ACME: &tc.cfg})
			require.ErrorIs(t, err, core.ErrTLSCert)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
