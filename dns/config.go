package dns

import (
	"errors"
	"log/slog"
	"time"
)

// ALPN is the protocol string of DNS over QUIC (RFC 9250 section 4.1.1).
const ALPN = "doq"

// Config configures a Server. Only Handler is required; every other zero
// value is a safe default.
type Config struct {
	// Handler answers the queries of every transport. Required.
	Handler Handler
	// Logger receives protocol errors of peers and listener events (one
	// line each, never a query name). Nil is silent.
	Logger *slog.Logger

	// MaxStreams is how many queries one DoQ connection may have in
	// progress; the server accepts no further stream of that connection
	// until one finishes, so a client that opens more waits on QUIC flow
	// control (RFC 9250 section 5.8). Zero means 32. The endpoint's own
	// per-connection stream caps (core.Config.MaxIncomingStreams,
	// MaxAnonStreams) apply before this one.
	MaxStreams int
	// QueryTimeout is how long a DoQ stream may take to deliver its query
	// and FIN after it is accepted, and how long writing the answer may
	// take. A stream that does not finish in time is a protocol error (RFC
	// 9250 section 4.3.3: no FIN) and closes the connection. Zero means 5s.
	QueryTimeout time.Duration
	// MaxQuerySize is the largest query message accepted on DoQ and TCP,
	// in bytes. A longer length prefix is a protocol error on DoQ and
	// closes a TCP connection. Zero means 4096; at most 65535.
	MaxQuerySize int
	// MaxInflight caps the queries being answered at once across every
	// connection and transport of the server. A UDP query over the cap is
	// dropped (the client retries); DoQ and TCP queries wait. Zero means
	// 1024.
	MaxInflight int
	// HandlerTimeout bounds one call of Handler; past it the client gets
	// SERVFAIL. Zero means 4s.
	HandlerTimeout time.Duration

	// UDPSize is the largest UDP response in bytes for clients that
	// announce a larger EDNS(0) buffer; longer answers are truncated (TC)
	// so that the client retries over TCP (RFC 7766). Clients without
	// EDNS(0) get 512. Zero means 1232, which avoids IP fragmentation.
	UDPSize int
	// MaxTCPConns caps concurrent classic TCP connections; further ones
	// are closed at once. Zero means 256.
	MaxTCPConns int
	// TCPIdleTimeout closes a classic TCP connection idle this long
	// between queries (RFC 7766 section 6.2.3). Zero means 10s.
	TCPIdleTimeout time.Duration
	// MaxTCPQueries is how many queries one classic TCP connection may
	// send before the server closes it. Zero means 256; negative means no
	// limit.
	MaxTCPQueries int
}

func (c Config) withDefaults() (Config, error) {
	if c.Handler == nil {
		return c, errors.New("alknet/dns: Config.Handler is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.MaxStreams, 32)
	def(&c.MaxQuerySize, 4096)
	c.MaxQuerySize = min(c.MaxQuerySize, MaxMessageSize)
	def(&c.MaxInflight, 1024)
	def(&c.UDPSize, 1232)
	c.UDPSize = min(max(c.UDPSize, 512), MaxMessageSize)
	def(&c.MaxTCPConns, 256)
	if c.MaxTCPQueries == 0 {
		c.MaxTCPQueries = 256
	}
	defd(&c.QueryTimeout, 5*time.Second)
	defd(&c.HandlerTimeout, 4*time.Second)
	defd(&c.TCPIdleTimeout, 10*time.Second)
	return c, nil
}
