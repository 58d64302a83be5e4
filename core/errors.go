package core

import (
	"errors"
	"fmt"
)

var (
	// ErrForbidden is wrapped by every authorization failure.
	ErrForbidden = errors.New("alknet: forbidden")
	// ErrInvalidNodeID reports a node id that is neither 52 z-base-32
	// characters nor 64 hex characters.
	ErrInvalidNodeID = errors.New("alknet: invalid node id")
	// ErrInvalidAddr reports a malformed node address.
	ErrInvalidAddr = errors.New("alknet: invalid node address")
	// ErrInvalidFingerprint reports a fingerprint not of the form ed25519:<64 hex>.
	ErrInvalidFingerprint = errors.New("alknet: invalid fingerprint")
	// ErrInvalidKey reports a key file that holds no ed25519 private key.
	ErrInvalidKey = errors.New("alknet: invalid key")
	// ErrKeyPermissions reports a key file that others can read.
	ErrKeyPermissions = errors.New("alknet: key file permissions too open")
	// ErrClosed is returned by Serve after Shutdown or Close.
	ErrClosed = errors.New("alknet: endpoint closed")
	// ErrShuttingDown is returned by Conn.AcceptStream once the endpoint
	// drains: the handler should finish its open streams and return.
	ErrShuttingDown = errors.New("alknet: endpoint shutting down")
	// ErrNodeIDMismatch is returned by Dial when the remote key is not the
	// pinned node id.
	ErrNodeIDMismatch = errors.New("alknet: remote key does not match the dialed node id")
	// ErrSingleStream is returned by OpenStream on the server side of a
	// TCP+TLS connection, and by a second OpenStream on its client side:
	// such a connection carries exactly one stream.
	ErrSingleStream = errors.New("alknet: tcp connection carries a single stream")
	// ErrNoTCP is returned by DialTCP when the remote has no TCP listener
	// or does not serve the ALPN over TCP.
	ErrNoTCP = errors.New("alknet: node does not serve this alpn over tcp")
	// ErrTLSCert reports a public certificate or key file that cannot be
	// used.
	ErrTLSCert = errors.New("alknet: unusable tls certificate")
)

// Connection close codes sent in a QUIC application close.
const (
	// CodeOK is a normal close.
	CodeOK uint64 = 0x0
	// CodeForbidden: the peer is not authorized for the ALPN.
	CodeForbidden uint64 = 0x1
	// CodeLimit: a connection limit was reached.
	CodeLimit uint64 = 0x2
	// CodeInternal: the handler failed or panicked.
	CodeInternal uint64 = 0x3
	// CodeShutdown: the endpoint is shutting down.
	CodeShutdown uint64 = 0x4
	// CodeRevoked: the peer's access was removed while connected.
	CodeRevoked uint64 = 0x5
)

// AccessError is an authorization failure. Its message is safe to show to
// the refused peer. errors.Is(err, ErrForbidden) reports true.
type AccessError struct {
	Reason string // e.g. "missing scope sftp", "authentication required"
}

func (e *AccessError) Error() string        { return e.Reason }
func (e *AccessError) Is(target error) bool { return target == ErrForbidden }

func forbidden(format string, args ...any) error {
	return &AccessError{Reason: fmt.Sprintf(format, args...)}
}

// CloseError describes why the remote side (or this side) closed a
// connection or a stream: the application close code and its reason.
type CloseError struct {
	Code   uint64
	Reason string
	Remote bool
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("connection closed (code %#x)", e.Code)
	}
	return e.Reason
}
