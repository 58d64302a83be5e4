package core

import (
	"crypto/ed25519"
	"crypto/x509"
	"testing"

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
