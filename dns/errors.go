package dns

import "errors"

// DoQ application error codes (RFC 9250 section 4.3). They are used as the
// code of a QUIC connection close and of stream resets (RESET_STREAM,
// STOP_SENDING).
const (
	// CodeNoError: the connection or stream is closed with no error.
	CodeNoError uint64 = 0x0
	// CodeInternalError: the server could not produce a response.
	CodeInternalError uint64 = 0x1
	// CodeProtocolError: the peer broke RFC 9250; the connection is closed.
	CodeProtocolError uint64 = 0x2
	// CodeRequestCancelled: a client cancels an outstanding query.
	CodeRequestCancelled uint64 = 0x3
	// CodeExcessiveLoad: a connection is closed because of load.
	CodeExcessiveLoad uint64 = 0x4
	// CodeUnspecifiedError: no more specific code applies.
	CodeUnspecifiedError uint64 = 0x5
)

var (
	// ErrFrameTooLarge reports a DoQ or TCP message whose 2-byte length
	// prefix is above the configured limit.
	ErrFrameTooLarge = errors.New("alknet/dns: message length over the limit")
	// ErrShortFrame reports a stream that ended (FIN) before the bytes its
	// length prefix announced.
	ErrShortFrame = errors.New("alknet/dns: stream ended inside a message")
	// ErrTrailingData reports bytes after the one message a DoQ stream may
	// carry (RFC 9250 section 4.2: one query per stream, then FIN).
	ErrTrailingData = errors.New("alknet/dns: data after the message on a stream")
	// ErrEmptyFrame reports a message of length zero.
	ErrEmptyFrame = errors.New("alknet/dns: empty message")
	// ErrNonZeroID reports a DoQ message whose Message ID is not 0
	// (RFC 9250 section 4.2.1).
	ErrNonZeroID = errors.New("alknet/dns: DoQ message id is not 0")
	// ErrProtocol reports any other violation of RFC 9250 by the peer.
	ErrProtocol = errors.New("alknet/dns: DoQ protocol error")

	// ErrBadName reports a name that is not a valid domain name.
	ErrBadName = errors.New("alknet/dns: invalid domain name")
	// ErrBadType reports a record type that is not supported.
	ErrBadType = errors.New("alknet/dns: unsupported record type")
	// ErrBadValue reports record data that does not parse for its type.
	ErrBadValue = errors.New("alknet/dns: invalid record value")
	// ErrBadTTL reports a TTL out of range.
	ErrBadTTL = errors.New("alknet/dns: invalid ttl")
	// ErrNoZone reports a name that no local zone holds.
	ErrNoZone = errors.New("alknet/dns: no zone holds the name")
	// ErrZoneExists reports a zone that is already there.
	ErrZoneExists = errors.New("alknet/dns: zone already exists")
	// ErrNotFound reports records or a zone that do not exist.
	ErrNotFound = errors.New("alknet/dns: not found")
	// ErrConflict reports a record that cannot coexist with what is at its
	// name (a CNAME and other data, a second SOA, a record outside its
	// zone's rules).
	ErrConflict = errors.New("alknet/dns: conflicting records")
	// ErrTooMany reports an import or record set over its size limit.
	ErrTooMany = errors.New("alknet/dns: too many records")
	// ErrBadUpstream reports a forwarding upstream that does not parse.
	ErrBadUpstream = errors.New("alknet/dns: invalid upstream")
	// ErrNoUpstream reports that no upstream answered.
	ErrNoUpstream = errors.New("alknet/dns: no upstream answered")
	// ErrClosed reports use of a closed Store, Listener or Client.
	ErrClosed = errors.New("alknet/dns: closed")
)
