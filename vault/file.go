package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// File format constants (see SPEC.md).
const (
	// FileVersion is the version of the vault file format this package writes.
	FileVersion = 1
	// MaxFileSize is the largest vault file Open reads: 1 MiB.
	MaxFileSize = 1 << 20

	kdfName     = "argon2id"
	cipherName  = "aes-256-gcm"
	saltSize    = 16
	minSaltSize = 16
	maxSaltSize = 64
	nonceSize   = 12
	tagSize     = 16

	// plaintextVersion is the first byte of the decrypted payload.
	plaintextVersion = 1
	// maxMnemonicLen and maxBIP39PassphraseLen bound the payload fields.
	maxMnemonicLen        = 1024
	maxBIP39PassphraseLen = 1024
	// minCiphertext is the smallest possible payload (version byte and two
	// empty length-prefixed fields) plus the GCM tag.
	minCiphertext = 1 + 2 + 2 + tagSize
	// aadMagic starts the additional authenticated data of the file.
	aadMagic = "alknet/vault v1"
)

// b64 is standard base64 with padding, strict: non-canonical encodings
// (stray bits in the last group, newlines) are rejected, so decoding and
// encoding again gives the same text.
var b64 = base64.StdEncoding.Strict()

// fileJSON is the on-disk JSON form of a vault file.
type fileJSON struct {
	Version    int        `json:"version"`
	KDF        kdfJSON    `json:"kdf"`
	Cipher     cipherJSON `json:"cipher"`
	Ciphertext string     `json:"ciphertext"`
}

type kdfJSON struct {
	Name      string `json:"name"`
	MemoryKiB uint32 `json:"memory_kib"`
	Time      uint32 `json:"time"`
	Threads   uint8  `json:"threads"`
	Salt      string `json:"salt"`
}

type cipherJSON struct {
	Name  string `json:"name"`
	Nonce string `json:"nonce"`
}

// vaultFile is a decoded, checked vault file. It holds nothing secret.
type vaultFile struct {
	params     Argon2Params
	salt       []byte
	nonce      []byte
	ciphertext []byte
}

// corrupt wraps a decoding problem in ErrCorrupt.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// decodeFile parses and checks a vault file. It never panics; every
// problem is an ErrCorrupt (or ErrFileTooLarge) with a short reason.
func decodeFile(data []byte) (*vaultFile, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFileTooLarge, len(data), MaxFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j fileJSON
	if err := dec.Decode(&j); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, corrupt("truncated")
		}
		return nil, corrupt("%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, corrupt("data after the JSON object")
	}
	if j.Version != FileVersion {
		return nil, corrupt("unsupported version %d (want %d)", j.Version, FileVersion)
	}
	if j.KDF.Name != kdfName {
		return nil, corrupt("unsupported kdf %q (want %q)", j.KDF.Name, kdfName)
	}
	if j.Cipher.Name != cipherName {
		return nil, corrupt("unsupported cipher %q (want %q)", j.Cipher.Name, cipherName)
	}
	f := &vaultFile{params: Argon2Params{MemoryKiB: j.KDF.MemoryKiB, Time: j.KDF.Time, Threads: j.KDF.Threads}}
	if err := f.params.validate(); err != nil {
		return nil, corrupt("kdf: %v", err)
	}
	var err error
	if f.salt, err = b64.DecodeString(j.KDF.Salt); err != nil {
		return nil, corrupt("kdf.salt: %v", err)
	}
	if len(f.salt) < minSaltSize || len(f.salt) > maxSaltSize {
		return nil, corrupt("kdf.salt: %d bytes, want %d to %d", len(f.salt), minSaltSize, maxSaltSize)
	}
	if f.nonce, err = b64.DecodeString(j.Cipher.Nonce); err != nil {
		return nil, corrupt("cipher.nonce: %v", err)
	}
	if len(f.nonce) != nonceSize {
		return nil, corrupt("cipher.nonce: %d bytes, want %d", len(f.nonce), nonceSize)
	}
	if f.ciphertext, err = b64.DecodeString(j.Ciphertext); err != nil {
		return nil, corrupt("ciphertext: %v", err)
	}
	if len(f.ciphertext) < minCiphertext {
		return nil, corrupt("ciphertext: %d bytes, want at least %d", len(f.ciphertext), minCiphertext)
	}
	return f, nil
}

// encode returns the file as written to disk: indented JSON and a newline.
func (f *vaultFile) encode() []byte {
	j := fileJSON{
		Version: FileVersion,
		KDF: kdfJSON{
			Name:      kdfName,
			MemoryKiB: f.params.MemoryKiB,
			Time:      f.params.Time,
			Threads:   f.params.Threads,
			Salt:      b64.EncodeToString(f.salt),
		},
		Cipher:     cipherJSON{Name: cipherName, Nonce: b64.EncodeToString(f.nonce)},
		Ciphertext: b64.EncodeToString(f.ciphertext),
	}
	out, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		panic(err) // only strings and integers: cannot fail
	}
	return append(out, '\n')
}

// aad is the additional authenticated data that binds the KDF parameters
// to the ciphertext: "alknet/vault v1" 0x00 memory(u32 BE) time(u32 BE)
// threads(u8) len(salt)(u8) salt.
func (f *vaultFile) aad() []byte {
	b := make([]byte, 0, len(aadMagic)+1+4+4+1+1+len(f.salt))
	b = append(b, aadMagic...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, f.params.MemoryKiB)
	b = binary.BigEndian.AppendUint32(b, f.params.Time)
	b = append(b, f.params.Threads, byte(len(f.salt)))
	return append(b, f.salt...)
}

// encodePayload builds the plaintext: version(u8) len(m)(u16 BE) m
// len(p)(u16 BE) p.
func encodePayload(mnemonic, bip39Passphrase []byte) ([]byte, error) {
	if len(mnemonic) > maxMnemonicLen {
		return nil, fmt.Errorf("%w: mnemonic is %d bytes, limit %d", ErrSecretTooLong, len(mnemonic), maxMnemonicLen)
	}
	if len(bip39Passphrase) > maxBIP39PassphraseLen {
		return nil, fmt.Errorf("%w: BIP39 passphrase is %d bytes, limit %d", ErrSecretTooLong, len(bip39Passphrase), maxBIP39PassphraseLen)
	}
	b := make([]byte, 0, 1+2+len(mnemonic)+2+len(bip39Passphrase))
	b = append(b, plaintextVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(mnemonic)))
	b = append(b, mnemonic...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(bip39Passphrase)))
	return append(b, bip39Passphrase...), nil
}

// decodePayload splits a decrypted payload. The returned slices alias p.
func decodePayload(p []byte) (mnemonic, bip39Passphrase []byte, err error) {
	if len(p) < 1 || p[0] != plaintextVersion {
		return nil, nil, corrupt("unsupported payload version")
	}
	rest := p[1:]
	field := func() ([]byte, bool) {
		if len(rest) < 2 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(rest))
		if len(rest) < 2+n {
			return nil, false
		}
		v := rest[2 : 2+n]
		rest = rest[2+n:]
		return v, true
	}
	m, ok1 := field()
	pp, ok2 := field()
	if !ok1 || !ok2 || len(rest) != 0 || len(m) > maxMnemonicLen || len(pp) > maxBIP39PassphraseLen {
		return nil, nil, corrupt("malformed payload")
	}
	return m, pp, nil
}

// readFile reads at most MaxFileSize bytes of a regular file.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open vault: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open vault: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("open vault %s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read vault: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrFileTooLarge, MaxFileSize)
	}
	return data, nil
}

// writeFileAtomic writes data to path with mode 0600 so that a crash at
// any moment leaves either no file (or the old one) or the complete new
// one: a temporary file in the same directory is written and fsynced, then
// put in place, then the directory is fsynced.
//
// With noClobber the temporary file is hard-linked to path, which fails
// atomically if path exists (ErrExists); on file systems without hard
// links it falls back to checking and renaming. Without noClobber it is
// renamed over path.
func writeFileAtomic(path string, data []byte, noClobber bool) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write vault: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmpName != "" {
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("write vault: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write vault: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write vault: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write vault: %w", err)
	}
	if noClobber {
		err := os.Link(tmpName, path)
		switch {
		case errors.Is(err, fs.ErrExist):
			return fmt.Errorf("%w: %s", ErrExists, path)
		case err != nil:
			// No hard links here: check, then rename.
			if _, statErr := os.Lstat(path); statErr == nil {
				return fmt.Errorf("%w: %s", ErrExists, path)
			}
			if err := os.Rename(tmpName, path); err != nil {
				return fmt.Errorf("write vault: %w", err)
			}
			tmpName = ""
		default:
			// The vault is in place; dropping the temporary name is best effort.
			os.Remove(tmpName)
			tmpName = ""
		}
	} else {
		if err := os.Rename(tmpName, path); err != nil {
			return fmt.Errorf("write vault: %w", err)
		}
		tmpName = ""
	}
	return syncDir(dir)
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be fsynced there
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync vault directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync vault directory: %w", err)
	}
	return nil
}
