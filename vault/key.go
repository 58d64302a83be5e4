package vault

import (
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
)

// redacted is what every secret-holding type prints instead of its bytes.
const redacted = "[REDACTED]"

// PrivateKey is an ed25519 private key in the crypto/ed25519 layout (the
// 32-byte seed followed by the 32-byte public key) that never prints its
// bytes: String, GoString, every fmt verb, slog, JSON and text marshaling
// all give "[REDACTED]". It is a crypto.Signer. Convert with Ed25519 (or
// ed25519.PrivateKey(k)) where a library wants the standard type.
type PrivateKey ed25519.PrivateKey

// Public returns the ed25519.PublicKey, as crypto.Signer requires.
func (k PrivateKey) Public() crypto.PublicKey { return k.PublicKey() }

// PublicKey returns the 32-byte ed25519 public key.
func (k PrivateKey) PublicKey() ed25519.PublicKey {
	return ed25519.PrivateKey(k).Public().(ed25519.PublicKey)
}

// Sign signs like ed25519.PrivateKey.Sign.
func (k PrivateKey) Sign(rand io.Reader, message []byte, opts crypto.SignerOpts) ([]byte, error) {
	return ed25519.PrivateKey(k).Sign(rand, message, opts)
}

// Ed25519 returns the key as the standard type. It shares k's memory.
func (k PrivateKey) Ed25519() ed25519.PrivateKey { return ed25519.PrivateKey(k) }

// Seed returns a copy of the raw 32-byte private key (the SLIP-0010 key
// and the RFC 8032 private key).
func (k PrivateKey) Seed() []byte { return ed25519.PrivateKey(k).Seed() }

// Equal reports whether x is the same key (a PrivateKey or an ed25519.PrivateKey).
func (k PrivateKey) Equal(x crypto.PrivateKey) bool {
	switch x := x.(type) {
	case PrivateKey:
		return ed25519.PrivateKey(k).Equal(ed25519.PrivateKey(x))
	case ed25519.PrivateKey:
		return ed25519.PrivateKey(k).Equal(x)
	}
	return false
}

// Wipe overwrites the key with zeros (best effort: copies made elsewhere,
// for example by Ed25519 users, are not reached).
func (k PrivateKey) Wipe() { clear(k) }

// String returns "[REDACTED]".
func (k PrivateKey) String() string { return redacted }

// GoString returns "[REDACTED]".
func (k PrivateKey) GoString() string { return redacted }

// Format prints "[REDACTED]" for every verb.
func (k PrivateKey) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue makes slog print "[REDACTED]".
func (k PrivateKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns the JSON string "[REDACTED]".
func (k PrivateKey) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[REDACTED]".
func (k PrivateKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// ExtendedKey is a SLIP-0010 ed25519 extended private key: the 32-byte
// private key and the 32-byte chain code. It prints as "[REDACTED]" like
// PrivateKey. The zero value is not a useful key; make one with
// NewMasterKey or DeriveExtendedKey.
type ExtendedKey struct {
	key       [32]byte
	chainCode [32]byte
}

// masterHMACKey is the SLIP-0010 curve string for ed25519.
var masterHMACKey = []byte("ed25519 seed")

// NewMasterKey returns the SLIP-0010 ed25519 master key of a 16 to 64
// byte seed: HMAC-SHA512(key "ed25519 seed", seed), the left half being
// the private key and the right half the chain code.
func NewMasterKey(seed []byte) (*ExtendedKey, error) {
	if len(seed) < 16 || len(seed) > 64 {
		return nil, fmt.Errorf("%w: got %d", ErrSeedLength, len(seed))
	}
	mac := hmac.New(sha512.New, masterHMACKey)
	mac.Write(seed)
	return splitI(mac.Sum(nil)), nil
}

func splitI(i []byte) *ExtendedKey {
	k := new(ExtendedKey)
	copy(k.key[:], i[:32])
	copy(k.chainCode[:], i[32:])
	clear(i)
	return k
}

// Child derives the child at index, which must be hardened (index ≥
// HardenedOffset): HMAC-SHA512(key chain code, 0x00 || key || ser32(index)).
func (k *ExtendedKey) Child(index uint32) (*ExtendedKey, error) {
	if index < HardenedOffset {
		return nil, fmt.Errorf("%w: index %d", ErrNotHardened, index)
	}
	var data [1 + 32 + 4]byte
	copy(data[1:33], k.key[:])
	binary.BigEndian.PutUint32(data[33:], index)
	mac := hmac.New(sha512.New, k.chainCode[:])
	mac.Write(data[:])
	clear(data[:])
	return splitI(mac.Sum(nil)), nil
}

// Derive follows p from k. An empty path returns a copy of k.
func (k *ExtendedKey) Derive(p Path) (*ExtendedKey, error) {
	if len(p) > MaxPathDepth {
		return nil, fmt.Errorf("%w: more than %d components", ErrInvalidPath, MaxPathDepth)
	}
	cur := new(ExtendedKey)
	*cur = *k
	for _, index := range p {
		next, err := cur.Child(index)
		cur.Wipe()
		if err != nil {
			return nil, fmt.Errorf("derive %s: %w", p, err)
		}
		cur = next
	}
	return cur, nil
}

// Key returns a copy of the raw 32-byte private key.
func (k *ExtendedKey) Key() []byte { return append([]byte(nil), k.key[:]...) }

// ChainCode returns a copy of the 32-byte chain code.
func (k *ExtendedKey) ChainCode() []byte { return append([]byte(nil), k.chainCode[:]...) }

// PrivateKey returns the ed25519 private key (a new copy).
func (k *ExtendedKey) PrivateKey() PrivateKey {
	return PrivateKey(ed25519.NewKeyFromSeed(k.key[:]))
}

// PublicKey returns the 32-byte ed25519 public key. (SLIP-0010 test
// vectors print it with a leading 0x00 byte.)
func (k *ExtendedKey) PublicKey() ed25519.PublicKey {
	priv := ed25519.NewKeyFromSeed(k.key[:])
	defer clear(priv)
	return append(ed25519.PublicKey(nil), priv[32:]...)
}

// Wipe overwrites the key and chain code with zeros.
func (k *ExtendedKey) Wipe() {
	clear(k.key[:])
	clear(k.chainCode[:])
}

// String returns "[REDACTED]". The printing methods have value receivers
// so that an ExtendedKey value redacts as well as a pointer.
func (k ExtendedKey) String() string { return redacted }

// GoString returns "[REDACTED]".
func (k ExtendedKey) GoString() string { return redacted }

// Format prints "[REDACTED]" for every verb.
func (k ExtendedKey) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue makes slog print "[REDACTED]".
func (k ExtendedKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns the JSON string "[REDACTED]".
func (k ExtendedKey) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[REDACTED]".
func (k ExtendedKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// DeriveExtendedKey derives the extended key at p from a BIP39 seed.
func DeriveExtendedKey(seed []byte, p Path) (*ExtendedKey, error) {
	m, err := NewMasterKey(seed)
	if err != nil {
		return nil, err
	}
	defer m.Wipe()
	return m.Derive(p)
}

// DeriveKey derives the ed25519 private key at p from a BIP39 seed
// (see Seed). Every index of p must be hardened.
func DeriveKey(seed []byte, p Path) (PrivateKey, error) {
	k, err := DeriveExtendedKey(seed, p)
	if err != nil {
		return nil, err
	}
	defer k.Wipe()
	return k.PrivateKey(), nil
}

// Interface guards.
var (
	_ crypto.Signer  = PrivateKey(nil)
	_ fmt.Formatter  = PrivateKey(nil)
	_ slog.LogValuer = PrivateKey(nil)
	_ fmt.Formatter  = ExtendedKey{}
	_ slog.LogValuer = ExtendedKey{}
)
