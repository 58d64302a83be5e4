package pkarr

import (
	"crypto/ed25519"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/alkdev/alknet/core"
)

// headerSize is the fixed part of a signed packet's binary form: the
// public key, the signature and the sequence number.
const headerSize = 32 + 64 + 8

// MaxSignedPacketSize is the largest binary form of a signed packet.
const MaxSignedPacketSize = headerSize + MaxPacketSize

// SignedPacket is a node record as it travels: the BEP44 mutable item of
// the node's key, with no salt. V is the DNS packet; Sig signs the BEP44
// string "3:seqi<Seq>e1:v<len(V)>:<V>" with the key.
//
// A SignedPacket from NewSignedPacket, ParseSignedPacket or Sign has been
// verified; one built by hand must be checked with Verify.
type SignedPacket struct {
	ID  core.NodeID
	Seq int64
	Sig [64]byte
	V   []byte
}

// SignableBytes returns what a BEP44 signature of a mutable item without
// salt covers: "3:seqi<seq>e1:v" followed by v bencoded as a string.
func SignableBytes(seq int64, v []byte) []byte {
	b := make([]byte, 0, 24+len(v))
	b = append(b, "3:seqi"...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, "e1:v"...)
	return append(b, bencodedString(v)...)
}

// bencodedString is v as a bencode string: "<len>:<v>".
func bencodedString(v []byte) []byte {
	b := strconv.AppendInt(nil, int64(len(v)), 10)
	b = append(b, ':')
	return append(b, v...)
}

// Sign encodes r as a DNS packet and signs it with key. r.ID is set to
// the key's node id; r.Seq must be positive (NextSeq gives one).
func Sign(key core.SecretKey, r Record) (*SignedPacket, error) {
	if key.IsZero() {
		return nil, fmt.Errorf("%w: no key", ErrInvalidRecord)
	}
	if r.Seq <= 0 {
		return nil, fmt.Errorf("%w: sequence number %d, want > 0", ErrInvalidRecord, r.Seq)
	}
	r.ID = key.NodeID()
	v, err := EncodePacket(r)
	if err != nil {
		return nil, err
	}
	p := &SignedPacket{ID: r.ID, Seq: r.Seq, V: v}
	copy(p.Sig[:], key.Sign(SignableBytes(r.Seq, v)))
	return p, nil
}

// NextSeq returns the sequence number for a record signed now: the time
// in microseconds, or last+1 when the clock has not moved past last.
func NextSeq(now time.Time, last int64) int64 {
	return max(now.UnixMicro(), last+1)
}

// NewSignedPacket checks a received item (key, seq, signature and DNS
// packet) and returns it as a SignedPacket. It fails with ErrTooLarge,
// ErrMalformed (negative seq) or ErrBadSignature.
func NewSignedPacket(id core.NodeID, seq int64, sig []byte, v []byte) (*SignedPacket, error) {
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature of %d bytes", ErrMalformed, len(sig))
	}
	p := &SignedPacket{ID: id, Seq: seq, V: append([]byte(nil), v...)}
	copy(p.Sig[:], sig)
	if err := p.Verify(); err != nil {
		return nil, err
	}
	return p, nil
}

// Verify checks the size limit, the sequence number and the signature.
func (p *SignedPacket) Verify() error {
	if len(p.V) > MaxPacketSize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(p.V), MaxPacketSize)
	}
	if p.Seq < 0 {
		return fmt.Errorf("%w: negative sequence number", ErrMalformed)
	}
	if !ed25519.Verify(p.ID.PublicKey(), SignableBytes(p.Seq, p.V), p.Sig[:]) {
		return fmt.Errorf("%w: node %s seq %d", ErrBadSignature, p.ID, p.Seq)
	}
	return nil
}

// Record decodes the DNS packet into the node's record (Seq included).
func (p *SignedPacket) Record() (Record, error) {
	r, err := DecodePacket(p.ID, p.V)
	if err != nil {
		return Record{}, err
	}
	r.Seq = p.Seq
	return r, nil
}

// Target is the DHT key of the node's record: SHA-1 of the public key
// (BEP44, no salt).
func Target(id core.NodeID) [20]byte { return sha1.Sum(id[:]) }

// MarshalBinary returns pkarr's binary form: the 32-byte public key, the
// 64-byte signature, the sequence number as 8 bytes big-endian, then the
// DNS packet.
func (p *SignedPacket) MarshalBinary() ([]byte, error) {
	b := make([]byte, headerSize, headerSize+len(p.V))
	copy(b, p.ID[:])
	copy(b[32:], p.Sig[:])
	binary.BigEndian.PutUint64(b[96:], uint64(p.Seq))
	return append(b, p.V...), nil
}

// ParseSignedPacket reads the binary form of MarshalBinary (at most
// MaxSignedPacketSize bytes) and verifies it.
func ParseSignedPacket(b []byte) (*SignedPacket, error) {
	if len(b) > MaxSignedPacketSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(b), MaxSignedPacketSize)
	}
	if len(b) < headerSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrMalformed, len(b), headerSize)
	}
	var id core.NodeID
	copy(id[:], b[:32])
	seq := binary.BigEndian.Uint64(b[96:headerSize])
	if seq > 1<<63-1 {
		return nil, fmt.Errorf("%w: sequence number out of range", ErrMalformed)
	}
	return NewSignedPacket(id, int64(seq), b[32:96], b[headerSize:])
}
