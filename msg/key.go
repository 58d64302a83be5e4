package msg

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"fmt"

	"github.com/alkdev/alknet/core"
)

// PublicKeySize is the size of an X-Wing (MLKEM768-X25519) public key.
const PublicKeySize = 1216

// encSize is the size of an X-Wing encapsulation (ML-KEM-768 ciphertext
// plus an X25519 share).
const encSize = 1120

// KEMID is the HPKE KEM identifier of X-Wing (MLKEM768-X25519).
const KEMID = 0x647a

// NodeKeyLabel is the HKDF-SHA256 info string that turns a node's ed25519
// seed into the input keying material of its message key when the node has
// no vault. See KeyFromNodeKey.
const NodeKeyLabel = "alknet/msg x-wing key v1"

// keyRecordLabel prefixes what a key record's signature covers.
const keyRecordLabel = "alknet/msg key record v1\x00"

// KeyRecordSize is the size of an encoded KeyRecord: node id, public key,
// signature.
const KeyRecordSize = core.NodeIDSize + PublicKeySize + ed25519.SignatureSize

func kem() hpke.KEM   { return hpke.MLKEM768X25519() }
func kdf() hpke.KDF   { return hpke.HKDFSHA256() }
func aead() hpke.AEAD { return hpke.ChaCha20Poly1305() }

// PrivateKey is a node's message key: the X-Wing decapsulation key and the
// node key it belongs to (which signs outgoing messages and the key
// record). It never prints its contents.
type PrivateKey struct {
	node core.SecretKey
	kem  hpke.PrivateKey
	pub  []byte
}

// NewPrivateKey derives the message key of node deterministically from
// ikm (at least 32 bytes of secret input keying material) with X-Wing's
// DeriveKeyPair. A node with a vault uses the 32-byte key at the vault's
// message path (m/74'/3'/0'/0'); KeyFromNodeKey covers nodes without one.
func NewPrivateKey(node core.SecretKey, ikm []byte) (*PrivateKey, error) {
	if node.IsZero() {
		return nil, fmt.Errorf("alknet/msg: message key: no node key")
	}
	if len(ikm) < 32 {
		return nil, fmt.Errorf("alknet/msg: message key: %d bytes of input keying material, want at least 32", len(ikm))
	}
	k, err := kem().DeriveKeyPair(ikm)
	if err != nil {
		return nil, fmt.Errorf("alknet/msg: message key: %w", err)
	}
	return &PrivateKey{node: node, kem: k, pub: k.PublicKey().Bytes()}, nil
}

// KeyFromNodeKey derives the message key of a node without a vault: the
// input keying material is HKDF-SHA256 of the node's 32-byte ed25519 seed,
// with no salt and the info NodeKeyLabel, 32 bytes long.
func KeyFromNodeKey(node core.SecretKey) (*PrivateKey, error) {
	if node.IsZero() {
		return nil, fmt.Errorf("alknet/msg: message key: no node key")
	}
	seed := node.PrivateKey().Seed()
	defer clear(seed)
	ikm, err := hkdf.Key(sha256.New, seed, nil, NodeKeyLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("alknet/msg: message key: %w", err)
	}
	defer clear(ikm)
	return NewPrivateKey(node, ikm)
}

// NodeID is the id of the node the key belongs to.
func (k *PrivateKey) NodeID() core.NodeID { return k.node.NodeID() }

// PublicKey returns the X-Wing public key (PublicKeySize bytes).
func (k *PrivateKey) PublicKey() []byte { return append([]byte(nil), k.pub...) }

// Record returns the key record: the public key signed by the node key.
func (k *PrivateKey) Record() KeyRecord {
	r := KeyRecord{Node: k.node.NodeID(), Key: k.PublicKey()}
	r.Sig = k.node.Sign(r.signed())
	return r
}

// String hides the key.
func (k *PrivateKey) String() string { return "msg.PrivateKey(" + k.node.NodeID().String() + ")" }

// GoString hides the key.
func (k *PrivateKey) GoString() string { return k.String() }

// KeyRecord binds a message public key to a node id: Sig is the node's
// ed25519 signature over keyRecordLabel || Node || Key. Anyone may hand a
// record on (a mailbox host, a DNS record, a cache); Verify decides.
type KeyRecord struct {
	Node core.NodeID
	Key  []byte // X-Wing public key, PublicKeySize bytes
	Sig  []byte // ed25519 signature, 64 bytes
}

func (r KeyRecord) signed() []byte {
	b := make([]byte, 0, len(keyRecordLabel)+core.NodeIDSize+len(r.Key))
	b = append(b, keyRecordLabel...)
	b = append(b, r.Node[:]...)
	return append(b, r.Key...)
}

// Verify checks the sizes, the signature under Node, and that Key is a
// valid X-Wing public key.
func (r KeyRecord) Verify() error {
	_, err := r.publicKey()
	return err
}

// publicKey verifies the record and returns its parsed key.
func (r KeyRecord) publicKey() (hpke.PublicKey, error) {
	if len(r.Key) != PublicKeySize || len(r.Sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: key of %d bytes, signature of %d", ErrKeyRecord, len(r.Key), len(r.Sig))
	}
	if !ed25519.Verify(r.Node.PublicKey(), r.signed(), r.Sig) {
		return nil, fmt.Errorf("%w: signature does not verify under %s", ErrKeyRecord, r.Node)
	}
	pk, err := kem().NewPublicKey(r.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyRecord, err)
	}
	return pk, nil
}

// Marshal encodes the record: node id (32) || key (1216) || signature (64).
func (r KeyRecord) Marshal() []byte {
	b := make([]byte, 0, KeyRecordSize)
	b = append(b, r.Node[:]...)
	b = append(b, r.Key...)
	return append(b, r.Sig...)
}

// ParseKeyRecord decodes and verifies a record. When want is not zero the
// record must name that node.
func ParseKeyRecord(b []byte, want core.NodeID) (KeyRecord, error) {
	if len(b) != KeyRecordSize {
		return KeyRecord{}, fmt.Errorf("%w: %d bytes, want %d", ErrKeyRecord, len(b), KeyRecordSize)
	}
	var r KeyRecord
	copy(r.Node[:], b)
	r.Key = append([]byte(nil), b[core.NodeIDSize:core.NodeIDSize+PublicKeySize]...)
	r.Sig = append([]byte(nil), b[core.NodeIDSize+PublicKeySize:]...)
	if !want.IsZero() && r.Node != want {
		return KeyRecord{}, fmt.Errorf("%w: record of %s, want %s", ErrKeyRecord, r.Node, want)
	}
	if err := r.Verify(); err != nil {
		return KeyRecord{}, err
	}
	return r, nil
}
