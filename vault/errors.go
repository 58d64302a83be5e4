package vault

import "errors"

// Sentinel errors. Compare with errors.Is; most are wrapped with detail.
var (
	// ErrWordCount means a mnemonic does not have 12, 15, 18, 21 or 24 words.
	ErrWordCount = errors.New("alknet/vault: invalid number of words")
	// ErrUnknownWord means a mnemonic word is not in the BIP39 English list.
	// The wrapping error names the word and its position.
	ErrUnknownWord = errors.New("alknet/vault: unknown word")
	// ErrChecksumMismatch means every word is valid but the BIP39 checksum
	// is not: a word was mistyped, swapped or left out.
	ErrChecksumMismatch = errors.New("alknet/vault: checksum mismatch")
	// ErrEntropyLength means entropy is not 16, 20, 24, 28 or 32 bytes.
	ErrEntropyLength = errors.New("alknet/vault: invalid entropy length")

	// ErrSeedLength means a SLIP-0010 seed is not 16 to 64 bytes long.
	ErrSeedLength = errors.New("alknet/vault: seed must be 16 to 64 bytes")
	// ErrInvalidPath means a derivation path is malformed.
	ErrInvalidPath = errors.New("alknet/vault: invalid derivation path")
	// ErrNotHardened means a path or index asks for non-hardened
	// derivation, which ed25519 does not support.
	ErrNotHardened = errors.New("alknet/vault: ed25519 supports hardened derivation only")
	// ErrKeyVersion means a key version is below 2 or out of range.
	ErrKeyVersion = errors.New("alknet/vault: invalid key version")

	// ErrExists means Create found a file already at the vault path.
	ErrExists = errors.New("alknet/vault: vault file already exists")
	// ErrWrongPassphrase means the passphrase does not open the vault, or
	// the encrypted part of the file (ciphertext, nonce, salt or KDF
	// parameters) was altered: authenticated decryption cannot tell the two
	// apart, so the message names both.
	ErrWrongPassphrase = errors.New("alknet/vault: wrong passphrase or damaged vault file")
	// ErrEmptyPassphrase means Create or ChangePassphrase got an empty passphrase.
	ErrEmptyPassphrase = errors.New("alknet/vault: empty passphrase")
	// ErrLocked means an operation needs an unlocked vault.
	ErrLocked = errors.New("alknet/vault: vault is locked")
	// ErrCorrupt means the vault file is not a well-formed vault file.
	ErrCorrupt = errors.New("alknet/vault: corrupt vault file")
	// ErrFileTooLarge means the vault file is larger than MaxFileSize.
	ErrFileTooLarge = errors.New("alknet/vault: vault file too large")
	// ErrParams means Argon2id parameters are out of range.
	ErrParams = errors.New("alknet/vault: invalid argon2id parameters")
	// ErrSecretTooLong means a mnemonic or BIP39 passphrase is longer than
	// the vault file can hold.
	ErrSecretTooLong = errors.New("alknet/vault: secret too long")

	// ErrEncryptedData means an EncryptedData value is malformed.
	ErrEncryptedData = errors.New("alknet/vault: malformed encrypted data")
	// ErrDecrypt means authenticated decryption failed: wrong key version,
	// another vault's data, or altered data.
	ErrDecrypt = errors.New("alknet/vault: decryption failed")
)
