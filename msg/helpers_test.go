package msg

import (
	"crypto/hpke"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/require"
)

// node is a test identity: its node key and its message key.
type testNode struct {
	key core.SecretKey
	msg *PrivateKey
}

func newTestNode(t testing.TB) testNode {
	t.Helper()
	k, err := core.GenerateSecretKey()
	require.NoError(t, err)
	mk, err := KeyFromNodeKey(k)
	require.NoError(t, err)
	return testNode{key: k, msg: mk}
}

func (n testNode) id() core.NodeID { return n.key.NodeID() }

// sealRaw seals an arbitrary plaintext to rcpt with a correct header, the
// way a forger who knows rcpt's public key would.
func sealRaw(t testing.TB, rcpt testNode, plain []byte) []byte {
	t.Helper()
	pk, err := kem().NewPublicKey(rcpt.msg.PublicKey())
	require.NoError(t, err)
	h := envelopeHeader(rcpt.id())
	ct, err := hpke.Seal(pk, kdf(), aead(), sealInfo(h), plain)
	require.NoError(t, err)
	return append(h, ct...)
}

// openRaw decrypts an envelope for n without any check.
func openRaw(t testing.TB, n testNode, env []byte) []byte {
	t.Helper()
	p, err := hpke.Open(n.msg.kem, kdf(), aead(), sealInfo(env[:headerSize]), env[headerSize:])
	require.NoError(t, err)
	return p
}

// plainOf builds a padded plaintext for m signed by signer.
func plainOf(m *Message, signer core.SecretKey, bucket int) []byte {
	p := appendFields(nil, m)
	p = append(p, signer.Sign(signedMessage(p))...)
	return append(p, make([]byte, bucket-len(p))...)
}
