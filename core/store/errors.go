package store

import "errors"

var (
	// ErrClosed is returned by operations on a closed DB or PeerStore.
	ErrClosed = errors.New("alknet/store: closed")
	// ErrSchemaTooNew reports a database written by a newer alknet.
	ErrSchemaTooNew = errors.New("alknet/store: database schema is newer than this program")
	// ErrPeerNotFound reports an unknown peer id.
	ErrPeerNotFound = errors.New("alknet/store: no such peer")
	// ErrPeerExists reports a peer id that is already taken.
	ErrPeerExists = errors.New("alknet/store: peer already exists")
	// ErrFingerprintInUse reports a fingerprint that already belongs to
	// another peer: a key identifies one peer only.
	ErrFingerprintInUse = errors.New("alknet/store: key already in use")
	// ErrInvalidPeerID reports a peer id outside [a-z0-9][a-z0-9._-]{0,63}.
	ErrInvalidPeerID = errors.New("alknet/store: invalid peer id")
	// ErrInvalidScope reports a scope that is not name or name:qualifier.
	ErrInvalidScope = errors.New("alknet/store: unknown scope syntax")
	// ErrInvalidResource reports a malformed resource type or action.
	ErrInvalidResource = errors.New("alknet/store: invalid resource")
	// ErrInvalidPeer reports a peer entry that cannot be stored (no
	// fingerprint, bad display name, bad fingerprint).
	ErrInvalidPeer = errors.New("alknet/store: invalid peer")
	// ErrCredentialNotFound reports an unknown credential provider.
	ErrCredentialNotFound = errors.New("alknet/store: no such credential")
	// ErrConflict reports a database peer that clashes with a static
	// (configuration) peer by id or fingerprint.
	ErrConflict = errors.New("alknet/store: peer conflicts with the configuration")
)
