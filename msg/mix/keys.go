package mix

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/alkdev/alknet/core"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/curve25519"
)

// DefaultEpochPeriod is the default length of an epoch, the life of one
// mix key and of its replay tags.
const DefaultEpochPeriod = time.Hour

// KeyRecordSize is the size of an encoded KeyRecord.
const KeyRecordSize = 32 + 4 + 4 + 32 + ed25519.SignatureSize

const keySigContext = "alknet/mix/v1 mix key\x00"

// Epoch returns the number of the epoch that t falls in: whole periods
// since the Unix epoch. period is rounded down to whole seconds (at least
// one).
func Epoch(t time.Time, period time.Duration) uint32 {
	p := periodSeconds(period)
	return uint32(t.Unix() / int64(p))
}

// EpochStart returns when epoch e begins.
func EpochStart(e uint32, period time.Duration) time.Time {
	return time.Unix(int64(e)*int64(periodSeconds(period)), 0)
}

func periodSeconds(period time.Duration) uint32 {
	return uint32(max(period/time.Second, 1))
}

// MixKey is a node's X25519 key pair for one epoch.
type MixKey struct {
	Epoch   uint32
	Public  [32]byte
	private [32]byte
}

// DeriveMixKey derives the node's mix key for epoch e: the private scalar is
// BLAKE2b-256 keyed with the node's ed25519 seed over a fixed label, the
// period in seconds and the epoch number (SPEC.md, "Mix keys").
func DeriveMixKey(node core.SecretKey, period time.Duration, e uint32) *MixKey {
	h, err := blake2b.New256(node.PrivateKey().Seed())
	if err != nil {
		panic(err)
	}
	_, _ = io.WriteString(h, kdfPrefix+"epoch key")
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], periodSeconds(period))
	binary.BigEndian.PutUint32(b[4:], e)
	h.Write(b[:])
	k := &MixKey{Epoch: e}
	h.Sum(k.private[:0])
	pub, err := curve25519.X25519(k.private[:], curve25519.Basepoint)
	if err != nil {
		panic(err) // clamped scalar times the base point is never zero
	}
	copy(k.Public[:], pub)
	return k
}

// KeyRecord is a node's mix public key for one epoch, signed by the node
// key.
type KeyRecord struct {
	Node      core.NodeID
	Period    uint32 // epoch period in seconds
	Epoch     uint32
	Public    [32]byte
	Signature [ed25519.SignatureSize]byte
}

func (r *KeyRecord) signed() []byte {
	b := make([]byte, 0, len(keySigContext)+32+4+4+32)
	b = append(b, keySigContext...)
	b = append(b, r.Node[:]...)
	b = binary.BigEndian.AppendUint32(b, r.Period)
	b = binary.BigEndian.AppendUint32(b, r.Epoch)
	return append(b, r.Public[:]...)
}

// SignKeyRecord returns the signed record of the node's mix key for epoch e.
func SignKeyRecord(node core.SecretKey, period time.Duration, e uint32) KeyRecord {
	k := DeriveMixKey(node, period, e)
	r := KeyRecord{Node: node.NodeID(), Period: periodSeconds(period), Epoch: e, Public: k.Public}
	copy(r.Signature[:], node.Sign(r.signed()))
	return r
}

// Verify checks the record's signature by its node.
func (r *KeyRecord) Verify() error {
	if !ed25519.Verify(r.Node.PublicKey(), r.signed(), r.Signature[:]) {
		return fmt.Errorf("%w: bad signature by %s", ErrKeyRecord, r.Node)
	}
	if r.Period == 0 {
		return fmt.Errorf("%w: zero period", ErrKeyRecord)
	}
	return nil
}

// MarshalBinary encodes the record (KeyRecordSize bytes).
func (r *KeyRecord) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, KeyRecordSize)
	b = append(b, r.Node[:]...)
	b = binary.BigEndian.AppendUint32(b, r.Period)
	b = binary.BigEndian.AppendUint32(b, r.Epoch)
	b = append(b, r.Public[:]...)
	return append(b, r.Signature[:]...), nil
}

// ParseKeyRecord decodes and verifies a record.
func ParseKeyRecord(b []byte) (KeyRecord, error) {
	if len(b) != KeyRecordSize {
		return KeyRecord{}, fmt.Errorf("%w: %d bytes (want %d)", ErrKeyRecord, len(b), KeyRecordSize)
	}
	var r KeyRecord
	copy(r.Node[:], b[0:32])
	r.Period = binary.BigEndian.Uint32(b[32:36])
	r.Epoch = binary.BigEndian.Uint32(b[36:40])
	copy(r.Public[:], b[40:72])
	copy(r.Signature[:], b[72:])
	if err := r.Verify(); err != nil {
		return KeyRecord{}, err
	}
	return r, nil
}

// Unwrap peels one layer off pkt with this key; see the function Unwrap.
func (k *MixKey) Unwrap(pkt []byte, seen func(epoch uint32, tag [TagSize]byte) error) (*Unwrapped, error) {
	if e, err := PacketEpoch(pkt); err == nil && e != k.Epoch {
		return nil, fmt.Errorf("%w: packet for epoch %d, key for %d", ErrEpoch, e, k.Epoch)
	}
	return Unwrap(&k.private, pkt, seen)
}
