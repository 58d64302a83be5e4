package ssh

import "errors"

var (
	// ErrNoHostKey is returned by New when Config.HostKey is zero.
	ErrNoHostKey = errors.New("alknet/ssh: host key required")
	// ErrInvalidConfig reports a Config field out of range.
	ErrInvalidConfig = errors.New("alknet/ssh: invalid config")
	// ErrInvalidRule reports a forwarding rule that does not parse.
	ErrInvalidRule = errors.New("alknet/ssh: invalid forwarding rule")
	// ErrDestinationDenied is returned when a forwarding destination is
	// outside Config.ForwardAllow.
	ErrDestinationDenied = errors.New("alknet/ssh: destination not allowed")
	// ErrBadRequest reports a malformed forwarding request or channel open
	// (direct-tcpip, tcpip-forward).
	ErrBadRequest = errors.New("alknet/ssh: malformed forwarding request")
	// ErrSOCKS reports a malformed or unsupported SOCKS5 message.
	ErrSOCKS = errors.New("alknet/ssh: bad socks5 request")
	// ErrSOCKSUnsupported reports a SOCKS5 command or method this server
	// does not implement (only no-auth CONNECT is).
	ErrSOCKSUnsupported = errors.New("alknet/ssh: unsupported socks5 request")
)
