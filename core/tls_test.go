package core

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPeerNodeID(t *testing.T) {
	k, err := GenerateSecretKey()
	require.NoError(t, err)
	cert, err := selfSignedCert(k)
	require.NoError(t, err)
	id, err := peerNodeID(cert.Certificate)
	require.NoError(t, err)
	assert.Equal(t, k.NodeID(), id)

	// A certificate for key A signed by key B is refused.
	other, err := GenerateSecretKey()
	require.NoError(t, err)
	parsed, err := x509.ParseCertificate(cert.Certificate[0])
	require.NoError(t, err)
	signer := *parsed
	signer.PublicKey = other.priv.Public()
	forged, err := x509.CreateCertificate(nil, parsed, &signer, k.priv.Public(), other.priv)
	require.NoError(t, err)
	_, err = peerNodeID([][]byte{forged})
	assert.ErrorContains(t, err, "not self-signed")

	_, err = peerNodeID(nil)
	assert.Error(t, err)
	_, err = peerNodeID([][]byte{cert.Certificate[0], cert.Certificate[0]})
	assert.Error(t, err, "chains are not accepted")
}

// FuzzPeerNodeID feeds arbitrary certificate bytes (what a peer sends in the
// handshake) to the verifier: whatever it accepts must be an ed25519
// certificate whose own key verifies its signature and is the returned id.
func FuzzPeerNodeID(f *testing.F) {
	k, err := GenerateSecretKey()
	if err != nil {
		f.Fatal(err)
	}
	cert, err := selfSignedCert(k)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cert.Certificate[0])
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	for _, der := range foreignCerts(f) { // must be refused; seeds in testdata too
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		if len(der) > 64<<10 { // TLS caps a handshake message well below this
			return
		}
		id, err := peerNodeID([][]byte{der})
		if err != nil {
			return
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("accepted an unparsable certificate: %v", err)
		}
		pub, ok := c.PublicKey.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(pub, c.RawTBSCertificate, c.Signature) {
			t.Fatal("accepted a certificate that is not self-signed ed25519")
		}
		if string(pub) != string(id[:]) {
			t.Fatal("returned id is not the certificate key")
		}
	})
}

// certWith makes a certificate for pub signed by signer (self-signed when
// signer's public key is pub).
func certWith(t testing.TB, pub crypto.PublicKey, signer crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "x"},
		NotBefore:    time.Unix(1700000000, 0),
		NotAfter:     time.Unix(1900000000, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// foreignCerts returns certificates the verifier must refuse: other key
// types, and an ed25519 key signed with another algorithm.
func foreignCerts(t testing.TB) map[string][]byte {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := GenerateSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"ecdsa":                   certWith(t, ec.Public(), ec),
		"rsa":                     certWith(t, rk.Public(), rk),
		"ed25519 signed by ecdsa": certWith(t, ed.priv.Public(), ec),
		"ed25519 signed by rsa":   certWith(t, ed.priv.Public(), rk),
	}
}

func TestPeerNodeIDRefusesForeignCertificates(t *testing.T) {
	want := map[string]string{
		"ecdsa":                   "certificate key is not ed25519",
		"rsa":                     "certificate key is not ed25519",
		"ed25519 signed by ecdsa": "certificate is not signed with ed25519",
		"ed25519 signed by rsa":   "certificate is not signed with ed25519",
	}
	for name, der := range foreignCerts(t) {
		t.Run(name, func(t *testing.T) {
			_, err := peerNodeID([][]byte{der})
			require.Error(t, err)
			assert.Equal(t, want[name], err.Error())
		})
	}
}

// TestWriteForeignCertSeeds keeps the fuzz corpus's foreign certificates:
// run with ALKNET_WRITE_SEEDS=1 to regenerate them.
func TestWriteForeignCertSeeds(t *testing.T) {
	if os.Getenv("ALKNET_WRITE_SEEDS") == "" {
		t.Skip("set ALKNET_WRITE_SEEDS=1 to regenerate testdata/fuzz/FuzzPeerNodeID seeds")
	}
	for name, der := range foreignCerts(t) {
		file := filepath.Join("testdata", "fuzz", "FuzzPeerNodeID", "foreign-"+strings.ReplaceAll(name, " ", "-"))
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", der)
		require.NoError(t, os.WriteFile(file, []byte(body), 0o644))
	}
}
