// Package msg is alknet's end-to-end encrypted messaging between nodes:
// sealed envelopes, mailboxes on ALPN alknet/msg, and a store-and-forward
// outbox. See SPEC.md for the wire format byte by byte.
//
// Envelopes. Seal encrypts a Message with single-shot HPKE (RFC 9180) using
// X-Wing (MLKEM768-X25519, a post-quantum hybrid KEM), HKDF-SHA256 and
// ChaCha20-Poly1305. The plaintext holds the sender id, the recipient id, a
// random 128-bit message id, the time, a content type, the body and the
// sender's ed25519 signature over all of them, padded to one of Buckets
// (1, 4, 16, 64 or 256 KiB): an envelope is exactly its bucket plus
// Overhead bytes, so its size reveals only the bucket. Only the recipient
// id is in the clear (it names the mailbox); the sender is known to the
// recipient alone. Open rejects any modified byte, a signature by another
// key than the named sender, and an envelope sealed for one node and
// re-addressed to another.
//
// Keys. A node's message key (PrivateKey) is derived deterministically:
// from the vault's message path when the node has a vault (NewPrivateKey),
// else from the node key through HKDF with NodeKeyLabel (KeyFromNodeKey).
// Its public key travels as a KeyRecord signed by the node key, so it is
// bound to the node id.
//
// Limits and security: bodies above MaxBody are refused. Delivery is open
// to anyone by default and is rate limited per key and per source address;
// a mailbox database holds ciphertext only. The TLS handshake of a direct
// delivery shows the dialing key to the mailbox node: senders who must stay
// unknown to it dial with a throwaway key or through the mixnet.
package msg
