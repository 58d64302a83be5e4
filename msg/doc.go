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
// Mailboxes. Server is the alknet/msg handler: deliver is open to anyone
// (rate limited per key and per source address, size capped, optionally
// requiring scope msg:send); fetch, ack and subscribe are for the mailbox
// owner (the node's own key, or a peer with msg:fetch whose mailbox the
// node hosts). Mailboxes are SQLite tables in the node database
// (core/store) holding envelopes as received; each delivery commits with a
// notification, so subscribers in any process sharing the file see it
// within milliseconds. Duplicate envelopes and message ids are dropped.
// Outbox is the store-and-forward sender: a message is written to the
// outbox first and delivered with exponential backoff until the mailbox
// acknowledges it, across restarts. Deliver hands an already sealed
// envelope to a mailbox (the mixnet's last hop uses it).
//
// Limits and security: bodies above MaxBody are refused. Delivery is open
// to anyone by default and is rate limited per key and per source address;
// a mailbox database holds ciphertext only. The TLS handshake of a direct
// delivery shows the dialing key to the mailbox node: senders who must stay
// unknown to it dial with a throwaway key or through the mixnet. Core
// lets an anonymous connection (a key the node does not know) have 8
// streams open at once, so concurrent deliveries over one such connection
// must stay below that.
package msg
