package core

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// NodeIDSize is the length of a NodeID in bytes.
const NodeIDSize = ed25519.PublicKeySize

// NodeID is a node's ed25519 public key: its identity on every layer.
type NodeID [NodeIDSize]byte

// zbase32 is the alphabet used by pkarr and the Mainline DHT.
const zbase32 = "ybndrfg8ejkmcpqxot1uwisza345h769"

// nodeIDTextLen is the z-base-32 length of 32 bytes (256 bits -> 52 chars).
const nodeIDTextLen = (NodeIDSize*8 + 4) / 5

var zbase32Rev = func() [256]int8 {
	var r [256]int8
	for i := range r {
		r[i] = -1
	}
	for i := 0; i < len(zbase32); i++ {
		r[zbase32[i]] = int8(i)
	}
	return r
}()

// String returns the z-base-32 form: 52 lowercase characters, most
// significant bits first, the last group padded with zero bits.
func (id NodeID) String() string {
	var b strings.Builder
	b.Grow(nodeIDTextLen)
	var acc uint32
	bits := 0
	for _, c := range id {
		acc = acc<<8 | uint32(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			b.WriteByte(zbase32[(acc>>uint(bits))&31])
		}
	}
	if bits > 0 {
		b.WriteByte(zbase32[(acc<<uint(5-bits))&31])
	}
	return b.String()
}

// Fingerprint returns "ed25519:<64 lowercase hex>", the form that names an
// identity in peer tables, ACLs and logs.
func (id NodeID) Fingerprint() string { return "ed25519:" + hex.EncodeToString(id[:]) }

// PublicKey returns the key as an ed25519.PublicKey.
func (id NodeID) PublicKey() ed25519.PublicKey { return ed25519.PublicKey(id[:]) }

// IsZero reports whether id is the all-zero value.
func (id NodeID) IsZero() bool { return id == NodeID{} }

// MarshalText implements encoding.TextMarshaler (z-base-32).
func (id NodeID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (z-base-32 or hex).
func (id *NodeID) UnmarshalText(b []byte) error {
	v, err := ParseNodeID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseNodeID parses a node id in z-base-32 (52 characters, case-insensitive)
// or hex (64 characters).
func ParseNodeID(s string) (NodeID, error) {
	var id NodeID
	switch len(s) {
	case 2 * NodeIDSize:
		if _, err := hex.Decode(id[:], []byte(s)); err != nil {
			return NodeID{}, fmt.Errorf("%w: bad hex", ErrInvalidNodeID)
		}
		return id, nil
	case nodeIDTextLen:
		var acc uint32
		bits, n := 0, 0
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			v := zbase32Rev[c]
			if v < 0 {
				return NodeID{}, fmt.Errorf("%w: bad character %q", ErrInvalidNodeID, s[i])
			}
			acc = acc<<5 | uint32(v)
			bits += 5
			if bits >= 8 {
				bits -= 8
				id[n] = byte(acc >> uint(bits))
				n++
			}
		}
		if acc&(1<<uint(bits)-1) != 0 {
			return NodeID{}, fmt.Errorf("%w: non-zero padding bits", ErrInvalidNodeID)
		}
		return id, nil
	default:
		return NodeID{}, fmt.Errorf("%w: want 52 z-base-32 or 64 hex characters, got %d characters", ErrInvalidNodeID, len(s))
	}
}

// NodeIDFromPublicKey converts an ed25519 public key.
func NodeIDFromPublicKey(pub ed25519.PublicKey) (NodeID, error) {
	var id NodeID
	if len(pub) != NodeIDSize {
		return id, fmt.Errorf("%w: public key is %d bytes", ErrInvalidNodeID, len(pub))
	}
	copy(id[:], pub)
	return id, nil
}

// ParseFingerprint parses "ed25519:<64 hex>" (case-insensitive hex) into a
// NodeID. A bare node id (z-base-32 or hex) is accepted too.
func ParseFingerprint(fp string) (NodeID, error) {
	rest, ok := strings.CutPrefix(fp, "ed25519:")
	if !ok {
		id, err := ParseNodeID(fp)
		if err != nil {
			return NodeID{}, fmt.Errorf("%w: %q (want ed25519:<64 hex>)", ErrInvalidFingerprint, fp)
		}
		return id, nil
	}
	if len(rest) != 2*NodeIDSize {
		return NodeID{}, fmt.Errorf("%w: %q (want ed25519:<64 hex>)", ErrInvalidFingerprint, fp)
	}
	var id NodeID
	if _, err := hex.Decode(id[:], []byte(rest)); err != nil {
		return NodeID{}, fmt.Errorf("%w: %q (bad hex)", ErrInvalidFingerprint, fp)
	}
	return id, nil
}

// FingerprintFromSSHKey returns the fingerprint of an OpenSSH ed25519 public
// key line ("ssh-ed25519 AAAA... comment"). It is the same fingerprint as the
// node id of the same key.
func FingerprintFromSSHKey(line []byte) (string, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		return "", fmt.Errorf("%w: not an OpenSSH public key: %v", ErrInvalidKey, err)
	}
	return SSHKeyFingerprint(pub)
}

// SSHKeyFingerprint returns the fingerprint of an SSH public key, which
// must be ssh-ed25519: the same "ed25519:<hex>" as the node id of the key.
func SSHKeyFingerprint(pub ssh.PublicKey) (string, error) {
	cpk, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return "", fmt.Errorf("%w: unsupported key type %s", ErrInvalidKey, pub.Type())
	}
	edpk, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		return "", fmt.Errorf("%w: key type %s is not ssh-ed25519", ErrInvalidKey, pub.Type())
	}
	id, err := NodeIDFromPublicKey(edpk)
	if err != nil {
		return "", err
	}
	return id.Fingerprint(), nil
}

// SecretKey is a node's ed25519 private key. It never prints its contents.
type SecretKey struct {
	priv ed25519.PrivateKey
}

// GenerateSecretKey makes a new key from the OS random source.
func GenerateSecretKey() (SecretKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SecretKey{}, fmt.Errorf("generate key: %w", err)
	}
	return SecretKey{priv: priv}, nil
}

// NewSecretKey wraps an ed25519 private key (64 bytes) or seed (32 bytes).
func NewSecretKey(b []byte) (SecretKey, error) {
	switch len(b) {
	case ed25519.SeedSize:
		return SecretKey{priv: ed25519.NewKeyFromSeed(b)}, nil
	case ed25519.PrivateKeySize:
		k := make(ed25519.PrivateKey, ed25519.PrivateKeySize)
		copy(k, b)
		// Recompute from the seed so a mismatched public half is impossible.
		return SecretKey{priv: ed25519.NewKeyFromSeed(k.Seed())}, nil
	default:
		return SecretKey{}, fmt.Errorf("%w: %d bytes", ErrInvalidKey, len(b))
	}
}

// IsZero reports whether the key is unset.
func (k SecretKey) IsZero() bool { return len(k.priv) == 0 }

// NodeID returns the public key of k.
func (k SecretKey) NodeID() NodeID {
	var id NodeID
	if len(k.priv) == ed25519.PrivateKeySize {
		copy(id[:], k.priv.Public().(ed25519.PublicKey))
	}
	return id
}

// PrivateKey returns the underlying ed25519 key. Treat it as a secret.
func (k SecretKey) PrivateKey() ed25519.PrivateKey { return k.priv }

// Sign signs msg with the key.
func (k SecretKey) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// String hides the key.
func (k SecretKey) String() string { return "SecretKey(" + k.NodeID().String() + ")" }

// GoString hides the key.
func (k SecretKey) GoString() string { return k.String() }

// MarshalPEM encodes the key as a PKCS#8 "PRIVATE KEY" PEM block.
func (k SecretKey) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseSecretKey decodes a PEM ed25519 private key: PKCS#8 ("PRIVATE KEY")
// or OpenSSH ("OPENSSH PRIVATE KEY", unencrypted). One key file can thus be
// both the TLS identity and the key `ssh -i` uses.
func ParseSecretKey(data []byte) (SecretKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return SecretKey{}, fmt.Errorf("%w: no PEM block", ErrInvalidKey)
	}
	var raw any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		raw, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "OPENSSH PRIVATE KEY":
		raw, err = ssh.ParseRawPrivateKey(data)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return SecretKey{}, fmt.Errorf("%w: the OpenSSH key is encrypted; use an unencrypted key or an agent-free copy", ErrInvalidKey)
		}
	default:
		return SecretKey{}, fmt.Errorf("%w: unsupported PEM type %q", ErrInvalidKey, block.Type)
	}
	if err != nil {
		return SecretKey{}, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		return NewSecretKey(k)
	case *ed25519.PrivateKey:
		return NewSecretKey(*k)
	default:
		return SecretKey{}, fmt.Errorf("%w: not an ed25519 key (%T)", ErrInvalidKey, raw)
	}
}

// LoadKey reads a key file. It refuses a file that group or others can read.
func LoadKey(path string) (SecretKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return SecretKey{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return SecretKey{}, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return SecretKey{}, fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s", ErrKeyPermissions, path, st.Mode().Perm(), path)
	}
	buf := make([]byte, 64<<10)
	n, err := f.Read(buf)
	if err != nil {
		return SecretKey{}, fmt.Errorf("read %s: %w", path, err)
	}
	k, err := ParseSecretKey(buf[:n])
	if err != nil {
		return SecretKey{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateKey loads the key at path, or creates a new one (mode 0600, its
// directory 0700) when none exists. An existing key is never overwritten,
// even when two processes race to create it.
func LoadOrCreateKey(path string) (SecretKey, bool, error) {
	k, err := LoadKey(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return SecretKey{}, false, err
	}
	k, err = GenerateSecretKey()
	if err != nil {
		return SecretKey{}, false, err
	}
	data, err := k.MarshalPEM()
	if err != nil {
		return SecretKey{}, false, err
	}
	if err := WriteFileExclusive(path, data, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			k, err := LoadKey(path)
			return k, false, err
		}
		return SecretKey{}, false, err
	}
	return k, true, nil
}

// WriteFileExclusive writes data to path atomically (temporary file, fsync,
// hard link into place, fsync of the directory). It fails with fs.ErrExist
// when path exists; a crash leaves either no file or the whole file.
func WriteFileExclusive(path string, data []byte, perm os.FileMode) error {
	return writeFile(path, data, perm, false)
}

// WriteFileAtomic replaces path atomically (temporary file, fsync, rename,
// fsync of the directory).
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeFile(path, data, perm, true)
}

func writeFile(path string, data []byte, perm os.FileMode, replace bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if replace {
		err = os.Rename(tmpName, path)
	} else {
		err = os.Link(tmpName, path)
	}
	if err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
