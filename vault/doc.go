// Package vault holds an alknet node's root secret and the keys derived
// from it.
//
// The root secret is a BIP39 mnemonic (English word list, 12 to 24 words)
// with an optional BIP39 passphrase. Its 64-byte BIP39 seed feeds
// SLIP-0010 ed25519 derivation, hardened only, along well-known paths
// under m/74': the node identity key (NodeIdentityPath), device keys
// (DevicePath), the SSH host key (SSHHostKeyPath), the messaging key
// (MessageKeyPath) and the secrets-at-rest keys (EncryptionKeyPath). The
// same mnemonic on another machine gives the same keys: it is the backup.
//
// A Vault is the mnemonic stored in a vault file (vault.json), encrypted
// with AES-256-GCM under a key that Argon2id derives from a passphrase.
// Open reads the file; Unlock decrypts it and keeps the seed in memory
// until Lock. An unlocked vault derives keys and encrypts secrets at rest
// as EncryptedData (AES-256-GCM under an HKDF-SHA256 key per message).
// SPEC.md in this module gives the file format and every derivation byte
// by byte.
//
// The package imports nothing of alknet; the assembly layer turns a
// PrivateKey into the node's key type.
//
// # Security posture
//
//   - Keys (PrivateKey, ExtendedKey) print as "[REDACTED]" through fmt,
//     slog, JSON and text marshaling. A Vault prints its path and state
//     only. Secrets stored in unexported fields of your own structs are
//     not covered: fmt prints those without calling methods.
//   - Lock and Wipe overwrite secrets with zeros, best effort: the Go
//     runtime may copy memory, strings cannot be wiped, and the standard
//     library's crypto keeps its own copies of keys.
//   - The vault file is written atomically with mode 0600 (temporary
//     file, fsync, link or rename, fsync of the directory); Create never
//     replaces an existing file. Open reads at most MaxFileSize bytes and
//     rejects a malformed file with ErrCorrupt, never a panic.
//   - A wrong passphrase and a tampered ciphertext, nonce, salt or KDF
//     parameters all give ErrWrongPassphrase, whose message says "wrong
//     passphrase or damaged vault file": the tag check cannot tell them
//     apart. Damage the structure shows is ErrCorrupt.
//   - Error messages never contain key material. Mnemonic validation
//     errors quote the one word that is not in the list, for the person
//     who typed it: do not log them.
//
// # Limits
//
// English word list only; ed25519 only, hardened derivation only (no
// public derivation); no SLIP-0039 shares; no hardware-backed storage.
package vault
