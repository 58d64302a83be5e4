package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Vault is an encrypted vault file holding a BIP39 mnemonic and an
// optional BIP39 passphrase, and, once unlocked, the keys derived from
// them. A Vault is safe for concurrent use. Printing a Vault shows its path
// and whether it is unlocked, never a secret.
type Vault struct {
	path string

	mu   sync.Mutex
	file *vaultFile // what is on disk; nothing secret
	// Secrets, set only while unlocked. payload holds the decrypted file
	// payload; mnemonic and bip39 alias it. seed is the BIP39 seed.
	payload  []byte
	mnemonic []byte
	bip39    []byte
	seed     []byte
}

// Create makes a new vault file at path holding mnemonic, encrypted under
// passphrase, and returns the vault unlocked. The mnemonic is normalized
// (NFKD, lower case, single spaces) and must be a valid BIP39 English
// mnemonic. The file is written atomically with mode 0600; Create never
// replaces an existing file (ErrExists). The caller may wipe mnemonic and
// passphrase afterwards: the Vault keeps its own copies.
func Create(path string, mnemonic, passphrase []byte, cfg Config) (*Vault, error) {
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	params := cfg.Argon2.withDefaults()
	if err := params.validate(); err != nil {
		return nil, err
	}
	m := normalizeMnemonic(mnemonic)
	defer clear(m)
	words := bytes.Fields(m)
	e, err := entropyFromWords(words)
	clear(e)
	if err != nil {
		return nil, err
	}
	p := norm.NFKD.Bytes(cfg.BIP39Passphrase)
	defer clear(p)
	payload, err := encodePayload(m, p)
	if err != nil {
		return nil, err
	}
	defer clear(payload)

	f, err := seal(payload, passphrase, params)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, f.encode(), true); err != nil {
		return nil, err
	}
	v := &Vault{path: path, file: f}
	if err := v.setSecrets(payload); err != nil {
		return nil, err
	}
	return v, nil
}

// seal encrypts a payload under a fresh salt and nonce.
func seal(payload, passphrase []byte, params Argon2Params) (*vaultFile, error) {
	f := &vaultFile{params: params, salt: make([]byte, saltSize), nonce: make([]byte, nonceSize)}
	if _, err := rand.Read(f.salt); err != nil {
		return nil, fmt.Errorf("read random salt: %w", err)
	}
	if _, err := rand.Read(f.nonce); err != nil {
		return nil, fmt.Errorf("read random nonce: %w", err)
	}
	aead, err := f.aead(passphrase)
	if err != nil {
		return nil, err
	}
	f.ciphertext = aead.Seal(nil, f.nonce, payload, f.aad())
	return f, nil
}

// aead derives the file key from the passphrase with Argon2id.
func (f *vaultFile) aead(passphrase []byte) (cipher.AEAD, error) {
	key := argon2.IDKey(passphrase, f.salt, f.params.Time, f.params.MemoryKiB, f.params.Threads, 32)
	defer clear(key)
	return newGCM(key)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}

// Open reads and checks the vault file at path (at most MaxFileSize
// bytes) and returns the vault locked. A malformed file is ErrCorrupt.
func Open(path string) (*Vault, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	f, err := decodeFile(data)
	if err != nil {
		return nil, err
	}
	return &Vault{path: path, file: f}, nil
}

// Path returns the path of the vault file.
func (v *Vault) Path() string { return v.path }

// Params returns the Argon2id parameters of the vault file.
func (v *Vault) Params() Argon2Params {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.file.params
}

// Unlock decrypts the vault with passphrase and keeps the secrets in
// memory until Lock. A wrong passphrase is ErrWrongPassphrase and leaves
// the vault as it was. Unlock writes nothing.
func (v *Vault) Unlock(passphrase []byte) error {
	v.mu.Lock()
	f := v.file
	v.mu.Unlock()

	aead, err := f.aead(passphrase)
	if err != nil {
		return err
	}
	payload, err := aead.Open(nil, f.nonce, f.ciphertext, f.aad())
	if err != nil {
		return ErrWrongPassphrase
	}
	defer clear(payload)

	v.mu.Lock()
	defer v.mu.Unlock()
	return v.setSecretsLocked(payload)
}

func (v *Vault) setSecrets(payload []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.setSecretsLocked(payload)
}

// setSecretsLocked checks a decrypted payload and keeps a copy of it and
// the seed. v.mu must be held.
func (v *Vault) setSecretsLocked(payload []byte) error {
	own := append([]byte(nil), payload...)
	m, p, err := decodePayload(own)
	if err != nil {
		clear(own)
		return err
	}
	e, err := entropyFromWords(bytes.Fields(m))
	clear(e)
	if err != nil {
		clear(own)
		return fmt.Errorf("%w: stored mnemonic: %v", ErrCorrupt, err)
	}
	v.wipeLocked()
	v.payload, v.mnemonic, v.bip39 = own, m, p
	v.seed = seedFromNFKD(m, p)
	return nil
}

// Lock forgets the secrets, overwriting them with zeros first (best
// effort: the Go runtime may have made copies, and keys already handed
// out are the caller's to wipe).
func (v *Vault) Lock() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.wipeLocked()
}

func (v *Vault) wipeLocked() {
	clear(v.payload)
	clear(v.seed)
	v.payload, v.mnemonic, v.bip39, v.seed = nil, nil, nil, nil
}

// Unlocked reports whether the vault holds its secrets.
func (v *Vault) Unlocked() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seed != nil
}

// DeriveKey derives the ed25519 key at p (every index hardened). The
// vault must be unlocked (ErrLocked).
func (v *Vault) DeriveKey(p Path) (PrivateKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seed == nil {
		return nil, ErrLocked
	}
	return DeriveKey(v.seed, p)
}

// deriveExtended is DeriveExtendedKey on the vault seed.
func (v *Vault) deriveExtended(p Path) (*ExtendedKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seed == nil {
		return nil, ErrLocked
	}
	return DeriveExtendedKey(v.seed, p)
}

// NodeKey derives the node identity key (NodeIdentityPath). Its public
// key is the node id.
func (v *Vault) NodeKey() (PrivateKey, error) { return v.DeriveKey(NodeIdentityPath()) }

// ChangePassphrase re-encrypts the unlocked vault under a new passphrase
// and Argon2id parameters (zero fields take the defaults), with a fresh
// salt and nonce, and atomically replaces the file.
func (v *Vault) ChangePassphrase(newPassphrase []byte, params Argon2Params) error {
	if len(newPassphrase) == 0 {
		return ErrEmptyPassphrase
	}
	params = params.withDefaults()
	if err := params.validate(); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seed == nil {
		return ErrLocked
	}
	f, err := seal(v.payload, newPassphrase, params)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(v.path, f.encode(), false); err != nil {
		return err
	}
	v.file = f
	return nil
}

// String describes the vault without secrets: vault(path, locked|unlocked).
func (v *Vault) String() string {
	state := "locked"
	if v.Unlocked() {
		state = "unlocked"
	}
	return "vault(" + strconv.Quote(v.path) + ", " + state + ")"
}

// GoString is String.
func (v *Vault) GoString() string { return v.String() }

// Format prints String for every verb, so no verb reaches the secrets.
func (v *Vault) Format(f fmt.State, _ rune) { io.WriteString(f, v.String()) }

// LogValue makes slog print String.
func (v *Vault) LogValue() slog.Value { return slog.StringValue(v.String()) }

// MarshalJSON returns String as a JSON string.
func (v *Vault) MarshalJSON() ([]byte, error) { return json.Marshal(v.String()) }

// Interface guards.
var (
	_ fmt.Formatter  = (*Vault)(nil)
	_ fmt.Stringer   = (*Vault)(nil)
	_ slog.LogValuer = (*Vault)(nil)
)
