package alkhttp

import (
	"log/slog"
	"time"

	"github.com/alkdev/alknet/core"
)

// Options configure a Server. A nil *Options, and the zero value of every
// field, is usable.
type Options struct {
	// Identities resolves bearer tokens (Authorization: Bearer alk_...) to
	// identities for Caller. Nil refuses every token: Caller reports it as
	// invalid and the request as anonymous.
	Identities core.IdentityProvider
	// Logger receives connection-level errors of the HTTP servers. Nil is
	// silent.
	Logger *slog.Logger
	// Metrics receives StreamOpened/StreamClosed for each HTTP/3 request
	// (core cannot see the streams HTTP/3 takes from the raw connection).
	// Nil records nothing.
	Metrics core.Metrics

	// AltSvcPort is the UDP port announced in the Alt-Svc header of every
	// response over TCP (h3=":<port>"). Zero means the local port of the
	// TCP connection, which the endpoint shares with its UDP socket;
	// negative sends no Alt-Svc.
	AltSvcPort int
	// Datagrams advertises HTTP/3 datagrams (RFC 9297, SETTINGS_H3_DATAGRAM)
	// on connections whose QUIC handshake enabled QUIC datagrams on this
	// side. Where the endpoint's QUIC config leaves datagrams off they are
	// never advertised, whatever this says: a client that enables them
	// would otherwise fail the connection with H3_SETTINGS_ERROR.
	Datagrams bool

	// MaxHeaderBytes bounds a request's header section, in bytes, on every
	// protocol. Zero means 64 KiB.
	MaxHeaderBytes int
	// MaxBodyBytes bounds the request body a handler can read, in bytes;
	// reading past it fails and the server answers 413 when it can. Zero
	// means 16 MiB; negative means no limit.
	MaxBodyBytes int64
	// ReadHeaderTimeout bounds the time to read a request's headers on
	// HTTP/1.1 (from the connection's first byte or the end of the
	// previous request) and the connection preface on h2. Zero means 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included, over TCP.
	// Zero means none: handlers set their own read deadlines
	// (http.ResponseController), as the call gateway does.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response over TCP. Zero means none, so
	// that event streams and WebSockets live on.
	WriteTimeout time.Duration
	// IdleTimeout closes a TCP connection (h2 or HTTP/1.1 keep-alive) and
	// an HTTP/3 connection with no request for this long. Zero means 120s.
	IdleTimeout time.Duration
	// MaxConcurrentStreams bounds the requests in progress on one
	// connection: advertised in h2's SETTINGS, enforced by the handler
	// wrapper on HTTP/3 (where QUIC's stream limit is the endpoint's
	// MaxIncomingStreams). A request over it on HTTP/3 waits for a slot up
	// to ReadHeaderTimeout, then gets 503. Zero means 128.
	MaxConcurrentStreams int
	// MaxAnonStreams is MaxConcurrentStreams for a connection without an
	// identity (an anonymous client, a browser). Zero means 16.
	MaxAnonStreams int
}

// Defaults.
const (
	defaultMaxHeaderBytes    = 64 << 10
	defaultMaxBodyBytes      = 16 << 20
	defaultReadHeaderTimeout = 10 * time.Second
	defaultIdleTimeout       = 120 * time.Second
	defaultMaxStreams        = 128
	defaultMaxAnonStreams    = 16
)

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = defaultMaxBodyBytes
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = defaultReadHeaderTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.MaxConcurrentStreams <= 0 {
		c.MaxConcurrentStreams = defaultMaxStreams
	}
	if c.MaxAnonStreams <= 0 {
		c.MaxAnonStreams = defaultMaxAnonStreams
	}
	if c.ReadTimeout < 0 {
		c.ReadTimeout = 0
	}
	if c.WriteTimeout < 0 {
		c.WriteTimeout = 0
	}
	return c
}
