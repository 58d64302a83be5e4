package vault

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Secrets-at-rest constants (see SPEC.md).
const (
	// SecretSaltSize is the size of the random HKDF salt of each message.
	SecretSaltSize = 32
	// SecretIVSize is the size of the random AES-GCM nonce of each message.
	SecretIVSize = 12
	// MaxEncryptedDataSize is the largest JSON text ParseEncryptedData reads: 16 MiB.
	MaxEncryptedDataSize = 16 << 20

	minSecretSalt = 16
	maxSecretSalt = 64
	// secretInfo is the HKDF info string of the secrets-at-rest key.
	secretInfo = "alknet/vault secret aes-256-gcm"
)

// EncryptedData is a secret encrypted at rest under a vault key version.
// Its JSON form is exactly
//
//	{"key_version":2,"salt":"<base64>","iv":"<base64>","data":"<base64>"}
//
// with standard base64 (padded). Salt is the HKDF salt, IV the 12-byte
// AES-GCM nonce and Data the ciphertext followed by the 16-byte tag.
type EncryptedData struct {
	KeyVersion int    `json:"key_version"`
	Salt       string `json:"salt"`
	IV         string `json:"iv"`
	Data       string `json:"data"`
}

// ParseEncryptedData decodes the JSON form of an EncryptedData (at most
// MaxEncryptedDataSize bytes, no unknown fields, nothing after the
// object) and checks it with Validate.
func ParseEncryptedData(b []byte) (EncryptedData, error) {
	if len(b) > MaxEncryptedDataSize {
		return EncryptedData{}, fmt.Errorf("%w: %d bytes, limit %d", ErrEncryptedData, len(b), MaxEncryptedDataSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d EncryptedData
	if err := dec.Decode(&d); err != nil {
		return EncryptedData{}, fmt.Errorf("%w: %v", ErrEncryptedData, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return EncryptedData{}, fmt.Errorf("%w: data after the JSON object", ErrEncryptedData)
	}
	if err := d.Validate(); err != nil {
		return EncryptedData{}, err
	}
	return d, nil
}

// Validate checks the form of d without decrypting it: a key version of
// at least 2, a salt of 16 to 64 bytes, a 12-byte IV, and data at least
// as long as the tag, all in strict standard base64.
func (d EncryptedData) Validate() error {
	_, _, _, err := d.decode()
	return err
}

func (d EncryptedData) decode() (salt, iv, data []byte, err error) {
	if _, err := EncryptionKeyPath(d.KeyVersion); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrEncryptedData, err)
	}
	if salt, err = b64.DecodeString(d.Salt); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: salt: %v", ErrEncryptedData, err)
	}
	if len(salt) < minSecretSalt || len(salt) > maxSecretSalt {
		return nil, nil, nil, fmt.Errorf("%w: salt is %d bytes, want %d to %d", ErrEncryptedData, len(salt), minSecretSalt, maxSecretSalt)
	}
	if iv, err = b64.DecodeString(d.IV); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: iv: %v", ErrEncryptedData, err)
	}
	if len(iv) != SecretIVSize {
		return nil, nil, nil, fmt.Errorf("%w: iv is %d bytes, want %d", ErrEncryptedData, len(iv), SecretIVSize)
	}
	if data, err = b64.DecodeString(d.Data); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: data: %v", ErrEncryptedData, err)
	}
	if len(data) < tagSize {
		return nil, nil, nil, fmt.Errorf("%w: data is %d bytes, shorter than the %d-byte tag", ErrEncryptedData, len(data), tagSize)
	}
	return salt, iv, data, nil
}

// secretAEAD derives the AES-256-GCM key of one message: HKDF-SHA256 over
// the 32-byte SLIP-0010 key at EncryptionKeyPath(keyVersion), with the
// message's salt and the info string secretInfo.
func (v *Vault) secretAEAD(keyVersion int, salt []byte) (cipher.AEAD, error) {
	p, err := EncryptionKeyPath(keyVersion)
	if err != nil {
		return nil, err
	}
	ext, err := v.deriveExtended(p)
	if err != nil {
		return nil, err
	}
	defer ext.Wipe()
	key, err := hkdf.Key(sha256.New, ext.key[:], salt, secretInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("hkdf: %w", err)
	}
	defer clear(key)
	return newGCM(key)
}

// Encrypt encrypts plaintext under key version keyVersion (≥ 2) with a
// fresh random salt and IV. The vault must be unlocked.
func (v *Vault) Encrypt(plaintext []byte, keyVersion int) (EncryptedData, error) {
	salt := make([]byte, SecretSaltSize)
	iv := make([]byte, SecretIVSize)
	if _, err := rand.Read(salt); err != nil {
		return EncryptedData{}, fmt.Errorf("read random salt: %w", err)
	}
	if _, err := rand.Read(iv); err != nil {
		return EncryptedData{}, fmt.Errorf("read random iv: %w", err)
	}
	a, err := v.secretAEAD(keyVersion, salt)
	if err != nil {
		return EncryptedData{}, err
	}
	return EncryptedData{
		KeyVersion: keyVersion,
		Salt:       b64.EncodeToString(salt),
		IV:         b64.EncodeToString(iv),
		Data:       b64.EncodeToString(a.Seal(nil, iv, plaintext, nil)),
	}, nil
}

// Decrypt checks and decrypts d. A malformed d is ErrEncryptedData; a
// failed authentication (wrong vault, altered data) is ErrDecrypt. The
// vault must be unlocked.
func (v *Vault) Decrypt(d EncryptedData) ([]byte, error) {
	salt, iv, data, err := d.decode()
	if err != nil {
		return nil, err
	}
	a, err := v.secretAEAD(d.KeyVersion, salt)
	if err != nil {
		return nil, err
	}
	pt, err := a.Open(nil, iv, data, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: key version %d", ErrDecrypt, d.KeyVersion)
	}
	return pt, nil
}

// Rotate decrypts d and encrypts the plaintext again under key version
// toVersion, with a fresh salt and IV. The plaintext is wiped afterwards.
func (v *Vault) Rotate(d EncryptedData, toVersion int) (EncryptedData, error) {
	if _, err := EncryptionKeyPath(toVersion); err != nil {
		return EncryptedData{}, err
	}
	pt, err := v.Decrypt(d)
	if err != nil {
		return EncryptedData{}, err
	}
	defer clear(pt)
	return v.Encrypt(pt, toVersion)
}
