package pkarr

import "errors"

var (
	// ErrTooLarge reports a DNS packet over MaxPacketSize, or a record
	// that does not fit in one.
	ErrTooLarge = errors.New("alknet/pkarr: packet too large")
	// ErrBadSignature reports a signed packet whose signature does not
	// verify against its key, sequence number and packet.
	ErrBadSignature = errors.New("alknet/pkarr: bad signature")
	// ErrMalformed reports bytes that are not a signed packet or whose
	// DNS packet does not decode.
	ErrMalformed = errors.New("alknet/pkarr: malformed packet")
	// ErrInvalidRecord reports a record that cannot be published: no
	// address, a bad address, a bad ALPN or a bad sequence number.
	ErrInvalidRecord = errors.New("alknet/pkarr: invalid record")
	// ErrNoAddrs reports a verified packet that holds no node address.
	ErrNoAddrs = errors.New("alknet/pkarr: record holds no address")
	// ErrNotFound reports a node id for which no valid record was found.
	ErrNotFound = errors.New("alknet/pkarr: no record found")
	// ErrStale reports a record whose sequence number is lower than one
	// already seen for the same key (a replay of an older record).
	ErrStale = errors.New("alknet/pkarr: record older than one already seen")
	// ErrNotStored reports a publish that no DHT node accepted.
	ErrNotStored = errors.New("alknet/pkarr: no dht node stored the record")
	// ErrClosed reports use of a closed DHT node.
	ErrClosed = errors.New("alknet/pkarr: dht node closed")
	// ErrConfig reports an unusable DHT configuration.
	ErrConfig = errors.New("alknet/pkarr: invalid dht config")
)
