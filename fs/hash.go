package fs

import (
	"encoding/hex"
	"fmt"
	"io"

	"lukechampine.com/blake3"
)

// Hash is a BLAKE3 hash (32 bytes): the name of a blob, equal to what
// b3sum prints for the same bytes.
type Hash [32]byte

// String returns the hash as 64 lowercase hex characters.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zero bytes.
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText implements encoding.TextMarshaler (64 lowercase hex).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash parses 64 hex characters (either case).
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("%w: want 64 hex characters, got %d", ErrBadHash, len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: not hex", ErrBadHash)
	}
	return h, nil
}

// HashBytes returns the BLAKE3 hash of b.
func HashBytes(b []byte) Hash { return blake3.Sum256(b) }

// HashReader returns the BLAKE3 hash of everything r yields and its length.
func HashReader(r io.Reader) (Hash, int64, error) {
	h := blake3.New(32, nil)
	n, err := io.CopyBuffer(h, r, make([]byte, 256<<10))
	if err != nil {
		return Hash{}, n, err
	}
	var out Hash
	h.Sum(out[:0])
	return out, n, nil
}
