package vault

import (
	"fmt"
	"strconv"
	"strings"
)

// HardenedOffset is added to an index to make it hardened (BIP32 i ≥ 2^31).
const HardenedOffset uint32 = 1 << 31

// MaxPathDepth is the most components a Path may have (the BIP32 depth
// is one byte).
const MaxPathDepth = 255

// maxPathString bounds the input of ParsePath: 255 components of at most
// "2147483647'" plus separators.
const maxPathString = 2 + MaxPathDepth*12

// Purpose is the first component of every alknet key path: m/74'.
const Purpose uint32 = 74

// Path is a SLIP-0010 derivation path: one index per level, hardened
// indexes including HardenedOffset. The empty Path is the master key "m".
type Path []uint32

// ParsePath parses a path such as "m/74'/0'/0'/0'". Each component is a
// decimal index below 2^31 without leading zeros, followed by ' or h to
// mark it hardened. A component without the mark is ErrNotHardened;
// anything else (spaces, signs, "M", an empty component, a trailing "/",
// more than MaxPathDepth components) is ErrInvalidPath. "m" alone is the
// master key.
func ParsePath(s string) (Path, error) {
	if len(s) > maxPathString {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidPath, maxPathString)
	}
	rest, ok := strings.CutPrefix(s, "m")
	if !ok {
		return nil, fmt.Errorf("%w %q: must start with \"m\"", ErrInvalidPath, s)
	}
	p := Path{}
	if rest == "" {
		return p, nil
	}
	rest, ok = strings.CutPrefix(rest, "/")
	if !ok {
		return nil, fmt.Errorf("%w %q: \"m\" must be followed by \"/\"", ErrInvalidPath, s)
	}
	for i, c := range strings.Split(rest, "/") {
		if i == MaxPathDepth {
			return nil, fmt.Errorf("%w %q: more than %d components", ErrInvalidPath, s, MaxPathDepth)
		}
		digits, hardened := strings.CutSuffix(c, "'")
		if !hardened {
			digits, hardened = strings.CutSuffix(c, "h")
		}
		n, err := parseIndex(digits)
		if err != nil {
			return nil, fmt.Errorf("%w %q: component %d %q: %s", ErrInvalidPath, s, i+1, c, err)
		}
		if !hardened {
			return nil, fmt.Errorf("%w: %q: component %d %q has no ' or h", ErrNotHardened, s, i+1, c)
		}
		p = append(p, n+HardenedOffset)
	}
	return p, nil
}

// parseIndex parses a canonical decimal index below 2^31.
func parseIndex(s string) (uint32, error) {
	if s == "" {
		return 0, fmt.Errorf("empty index")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("not a decimal index")
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("leading zero")
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n >= uint64(HardenedOffset) {
		return 0, fmt.Errorf("index must be below 2147483648")
	}
	return uint32(n), nil
}

// String formats the path as ParsePath reads it, hardened indexes with a
// trailing ' (so "m/74h" prints as "m/74'").
func (p Path) String() string {
	var b strings.Builder
	b.WriteByte('m')
	for _, i := range p {
		b.WriteByte('/')
		if i >= HardenedOffset {
			b.WriteString(strconv.FormatUint(uint64(i-HardenedOffset), 10))
			b.WriteByte('\'')
		} else {
			b.WriteString(strconv.FormatUint(uint64(i), 10))
		}
	}
	return b.String()
}

// h returns the hardened form of index i.
func h(i uint32) uint32 { return i + HardenedOffset }

// NodeIdentityPath is the path of the node identity key, m/74'/0'/0'/0'
// (the same key as DevicePath(0)). Its public key is the node id.
func NodeIdentityPath() Path { return Path{h(Purpose), h(0), h(0), h(0)} }

// DevicePath is the path of device n's identity key, m/74'/0'/0'/n'.
// n must be below 2^31.
func DevicePath(n uint32) (Path, error) {
	if n >= HardenedOffset {
		return nil, fmt.Errorf("%w: device index %d must be below 2147483648", ErrInvalidPath, n)
	}
	return Path{h(Purpose), h(0), h(0), h(n)}, nil
}

// SSHHostKeyPath is the path of the SSH host key, m/74'/0'/1'/0'.
func SSHHostKeyPath() Path { return Path{h(Purpose), h(0), h(1), h(0)} }

// MessageKeyPath is the path of the messaging key, m/74'/3'/0'/0'.
func MessageKeyPath() Path { return Path{h(Purpose), h(3), h(0), h(0)} }

// MinKeyVersion is the lowest key version of the secrets-at-rest scheme.
const MinKeyVersion = 2

// maxKeyVersion keeps keyVersion-2 a valid hardened index.
const maxKeyVersion = int64(MinKeyVersion) + int64(HardenedOffset) - 1

// EncryptionKeyPath is the path of the secrets-at-rest key for key
// version v, m/74'/2'/0'/(v-2)'. v must be at least MinKeyVersion (2).
func EncryptionKeyPath(v int) (Path, error) {
	if v < MinKeyVersion || int64(v) > maxKeyVersion {
		return nil, fmt.Errorf("%w: %d (want %d to %d)", ErrKeyVersion, v, MinKeyVersion, maxKeyVersion)
	}
	return Path{h(Purpose), h(2), h(0), h(uint32(v - MinKeyVersion))}, nil
}
