package msg

import (
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/alkdev/alknet/core"
)

// Version is the first byte of every envelope: suite X-Wing (KEM 0x647a),
// HKDF-SHA256 (KDF 0x0001), ChaCha20-Poly1305 (AEAD 0x0003).
const Version byte = 0x01

// Buckets are the sizes a plaintext is padded to before sealing, smallest
// first. An envelope's size reveals only its bucket.
var Buckets = [...]int{1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10}

// headerSize is the clear part of an envelope: version and recipient.
const headerSize = 1 + core.NodeIDSize

// tagSize is the ChaCha20-Poly1305 tag.
const tagSize = 16

// Overhead is what an envelope adds to its bucket: the header, the X-Wing
// encapsulation and the AEAD tag. An envelope of bucket B is exactly
// B + Overhead bytes.
const Overhead = headerSize + encSize + tagSize

// MaxEnvelopeSize is the size of an envelope of the largest bucket.
const MaxEnvelopeSize = 256<<10 + Overhead

// fixedPlain is the plaintext without content type, body and padding:
// sender, recipient, id, time, content type length, body length, signature.
const fixedPlain = 32 + 32 + 16 + 8 + 1 + 4 + ed25519.SignatureSize

// MaxContentType is the longest content type.
const MaxContentType = 255

// MaxBody is the largest body with an empty content type.
const MaxBody = 256<<10 - fixedPlain

// infoLabel is the HPKE info prefix; the envelope header follows it, so the
// clear recipient is bound to the ciphertext.
const infoLabel = "alknet/msg envelope v1\x00"

// sigLabel prefixes what the sender's signature covers.
const sigLabel = "alknet/msg message v1\x00"

// MessageID is a message's random 128-bit id.
type MessageID [16]byte

// NewMessageID returns a random id.
func NewMessageID() MessageID {
	var id MessageID
	_, _ = rand.Read(id[:])
	return id
}

// String is 32 lowercase hex digits.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// ParseMessageID parses 32 hex digits.
func ParseMessageID(s string) (MessageID, error) {
	var id MessageID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("alknet/msg: message id %q: want 32 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// MarshalText encodes the id as hex.
func (id MessageID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes hex.
func (id *MessageID) UnmarshalText(b []byte) error {
	v, err := ParseMessageID(string(b))
	if err == nil {
		*id = v
	}
	return err
}

// Message is what an envelope carries. Sender and the signature are inside
// the encryption: only the recipient learns who sent it.
type Message struct {
	ID          MessageID
	Sender      core.NodeID
	Recipient   core.NodeID
	Time        time.Time // millisecond precision on the wire
	ContentType string    // printable ASCII, at most MaxContentType bytes; may be empty
	Body        []byte
}

// BucketFor returns the bucket a message with a content type of ctLen bytes
// and a body of bodyLen bytes is padded to, or ErrTooLarge.
func BucketFor(ctLen, bodyLen int) (int, error) {
	n := fixedPlain + ctLen + bodyLen
	for _, b := range Buckets {
		if n <= b {
			return b, nil
		}
	}
	return 0, fmt.Errorf("%w: body of %d bytes (at most %d)", ErrTooLarge, bodyLen, Buckets[len(Buckets)-1]-fixedPlain-ctLen)
}

// isBucket reports whether n is one of Buckets.
func isBucket(n int) bool {
	for _, b := range Buckets {
		if n == b {
			return true
		}
	}
	return false
}

func checkContentType(ct string) error {
	if len(ct) > MaxContentType {
		return fmt.Errorf("content type of %d bytes (at most %d)", len(ct), MaxContentType)
	}
	for i := 0; i < len(ct); i++ {
		if ct[i] < 0x20 || ct[i] > 0x7e {
			return fmt.Errorf("content type has a byte 0x%02x outside printable ASCII", ct[i])
		}
	}
	return nil
}

// signedPart encodes the fields the signature covers, as they appear in
// the plaintext: sender, recipient, id, time, content type, body.
func appendFields(b []byte, m *Message) []byte {
	b = append(b, m.Sender[:]...)
	b = append(b, m.Recipient[:]...)
	b = append(b, m.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Time.UnixMilli()))
	b = append(b, byte(len(m.ContentType)))
	b = append(b, m.ContentType...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Body)))
	return append(b, m.Body...)
}

func signedMessage(fields []byte) []byte {
	s := make([]byte, 0, len(sigLabel)+len(fields))
	s = append(s, sigLabel...)
	return append(s, fields...)
}

// Seal encrypts m to the recipient's key record and returns the envelope.
// m.Sender is set to the sender's node id and m.Recipient to the record's
// node; a zero m.ID gets a random id and a zero m.Time the current time.
// The record is verified first.
func Seal(sender core.SecretKey, to KeyRecord, m *Message) ([]byte, error) {
	pk, err := to.publicKey()
	if err != nil {
		return nil, err
	}
	return sealTo(sender, to.Node, pk, m)
}

func sealTo(sender core.SecretKey, recipient core.NodeID, pk hpke.PublicKey, m *Message) ([]byte, error) {
	if sender.IsZero() {
		return nil, fmt.Errorf("alknet/msg: seal: no sender key")
	}
	if err := checkContentType(m.ContentType); err != nil {
		return nil, fmt.Errorf("alknet/msg: seal: %s", err)
	}
	bucket, err := BucketFor(len(m.ContentType), len(m.Body))
	if err != nil {
		return nil, err
	}
	m.Sender = sender.NodeID()
	m.Recipient = recipient
	if m.ID == (MessageID{}) {
		m.ID = NewMessageID()
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	m.Time = time.UnixMilli(m.Time.UnixMilli())
	plain := make([]byte, 0, bucket)
	plain = appendFields(plain, m)
	plain = append(plain, sender.Sign(signedMessage(plain))...)
	plain = plain[:bucket] // zero padding: the capacity is zeroed
	header := envelopeHeader(recipient)
	ct, err := hpke.Seal(pk, kdf(), aead(), sealInfo(header), plain)
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("alknet/msg: seal: %w", err)
	}
	env := make([]byte, 0, len(header)+len(ct))
	env = append(env, header...)
	return append(env, ct...), nil
}

func envelopeHeader(recipient core.NodeID) []byte {
	h := make([]byte, headerSize)
	h[0] = Version
	copy(h[1:], recipient[:])
	return h
}

func sealInfo(header []byte) []byte {
	info := make([]byte, 0, len(infoLabel)+len(header))
	info = append(info, infoLabel...)
	return append(info, header...)
}

// EnvelopeRecipient checks an envelope's shape (version, size of a bucket
// plus Overhead) and returns the recipient named in its clear header: the
// mailbox it goes to. It does not authenticate anything.
func EnvelopeRecipient(env []byte) (core.NodeID, error) {
	var id core.NodeID
	if len(env) < Overhead {
		return id, fmt.Errorf("%w: %d bytes, shorter than the overhead %d", ErrEnvelope, len(env), Overhead)
	}
	if env[0] != Version {
		return id, fmt.Errorf("%w: version 0x%02x, want 0x%02x", ErrEnvelope, env[0], Version)
	}
	if !isBucket(len(env) - Overhead) {
		return id, fmt.Errorf("%w: %d bytes is not a bucket size plus %d", ErrEnvelope, len(env), Overhead)
	}
	copy(id[:], env[1:headerSize])
	return id, nil
}

// Open decrypts an envelope addressed to k's node and checks it: the clear
// recipient and the one inside are k's node, the sender's signature
// verifies under the sender id it names, the fields are well formed and the
// padding is zero. Any failure is ErrEnvelope; its message says which check
// failed and nothing of the content.
func Open(k *PrivateKey, env []byte) (*Message, error) {
	rcpt, err := EnvelopeRecipient(env)
	if err != nil {
		return nil, err
	}
	self := k.NodeID()
	if rcpt != self {
		return nil, fmt.Errorf("%w: addressed to %s, not to this node", ErrEnvelope, rcpt)
	}
	plain, err := hpke.Open(k.kem, kdf(), aead(), sealInfo(env[:headerSize]), env[headerSize:])
	if err != nil {
		return nil, fmt.Errorf("%w: decryption failed", ErrEnvelope)
	}
	m, err := parsePlain(plain)
	clear(plain)
	if err != nil {
		return nil, err
	}
	if m.Recipient != self {
		return nil, fmt.Errorf("%w: sealed for %s, re-addressed to this node", ErrEnvelope, m.Recipient)
	}
	return m, nil
}

// parsePlain decodes and verifies a padded plaintext.
func parsePlain(p []byte) (*Message, error) {
	if len(p) < fixedPlain {
		return nil, fmt.Errorf("%w: plaintext of %d bytes", ErrEnvelope, len(p))
	}
	m := &Message{}
	off := 0
	copy(m.Sender[:], p[off:])
	off += 32
	copy(m.Recipient[:], p[off:])
	off += 32
	copy(m.ID[:], p[off:])
	off += 16
	m.Time = time.UnixMilli(int64(binary.BigEndian.Uint64(p[off:])))
	off += 8
	ctLen := int(p[off])
	off++
	if off+ctLen+4 > len(p) {
		return nil, fmt.Errorf("%w: content type overruns the plaintext", ErrEnvelope)
	}
	m.ContentType = string(p[off : off+ctLen])
	off += ctLen
	if err := checkContentType(m.ContentType); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrEnvelope, err)
	}
	bodyLen := int64(binary.BigEndian.Uint32(p[off:]))
	off += 4
	if int64(off)+bodyLen+ed25519.SignatureSize > int64(len(p)) {
		return nil, fmt.Errorf("%w: body length %d overruns the plaintext", ErrEnvelope, bodyLen)
	}
	m.Body = append([]byte(nil), p[off:off+int(bodyLen)]...)
	off += int(bodyLen)
	fields := p[:off]
	sig := p[off : off+ed25519.SignatureSize]
	off += ed25519.SignatureSize
	for _, c := range p[off:] {
		if c != 0 {
			return nil, fmt.Errorf("%w: non-zero padding", ErrEnvelope)
		}
	}
	if !ed25519.Verify(m.Sender.PublicKey(), signedMessage(fields), sig) {
		return nil, fmt.Errorf("%w: signature does not verify under the sender %s", ErrEnvelope, m.Sender)
	}
	return m, nil
}
