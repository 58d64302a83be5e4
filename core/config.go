package core

import (
	"log/slog"
	"time"
)

// Config configures an Endpoint. The zero value of every field but SecretKey
// is usable.
type Config struct {
	// ListenAddr is the UDP host:port to bind. Empty means ":0": an
	// ephemeral port on every address, for endpoints that only dial.
	ListenAddr string
	// SecretKey is the node's key. Required.
	SecretKey SecretKey
	// Identities resolves peers by fingerprint. Nil means no peer is known:
	// every caller is anonymous and only open ALPNs accept it.
	Identities IdentityProvider
	// Logger receives one line per accepted or refused connection. Nil is
	// silent.
	Logger *slog.Logger

	// HandshakeTimeout bounds the QUIC+TLS handshake. Zero means 10s.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection with no traffic for this long. Zero
	// means 60s.
	IdleTimeout time.Duration
	// KeepAlivePeriod sends a keep-alive this often so idle connections
	// survive NAT and the idle timeout, and so that a dead peer is noticed
	// within IdleTimeout. Zero means 15s; negative disables. A period not
	// shorter than IdleTimeout is lowered to half of it.
	KeepAlivePeriod time.Duration
	// MaxIncomingStreams is the number of concurrent streams a peer may open
	// on one connection. Zero means 256; negative means none.
	MaxIncomingStreams int64
	// MaxConnsPerPeer caps concurrent connections from one known key. Zero
	// means 64; negative means no limit.
	MaxConnsPerPeer int
	// MaxConns caps concurrent accepted connections of known peers (those
	// the IdentityProvider resolves). Anonymous connections never count
	// against it: they have their own pool (MaxAnonConns), so they cannot
	// crowd out an authorized peer. Zero means 4096; negative means no
	// limit.
	MaxConns int

	// MaxAnonConns caps concurrent anonymous connections (a key the
	// IdentityProvider does not know, on an open ALPN). Zero means 256;
	// negative refuses every anonymous connection.
	MaxAnonConns int
	// MaxAnonConnsPerIP caps concurrent anonymous connections from one
	// source IPv4 address or IPv6 /64. Zero means 8; negative means no
	// per-address limit.
	MaxAnonConnsPerIP int
	// MaxAnonStreams is the number of streams an anonymous connection may
	// have open at once; the handler never sees more, and further streams
	// are reset with CodeLimit. Zero means 8; negative means no limit
	// beyond MaxIncomingStreams.
	MaxAnonStreams int
	// AnonLifetime closes an anonymous connection this long after it was
	// accepted, whatever its traffic, with CodeLimit. Zero means 10m;
	// negative means no limit.
	AnonLifetime time.Duration
	// RetryAbove turns on QUIC source-address validation (a Retry round
	// trip, RFC 9000 section 8.1.2) for new connection attempts while more
	// than this many handshakes are in progress, so that spoofed Initial
	// packets cannot pile up handshake state. Zero means 64; negative
	// validates every connection attempt.
	RetryAbove int
	// StreamReceiveWindow is the largest flow-control window of one stream,
	// in bytes. Zero means 16 MiB.
	StreamReceiveWindow int64
	// ConnReceiveWindow is the largest flow-control window of one
	// connection, in bytes. Zero means 32 MiB.
	ConnReceiveWindow int64
	// ListenTCP also listens for TCP+TLS on the same host and port number
	// as the UDP socket (ListenAddr), for networks that block UDP. The
	// same TLS rules, ALPN router, access control and caps apply; each TCP
	// connection carries a single stream, so only the ALPNs whose handler
	// declares SingleStream are offered on it. False means QUIC only.
	ListenTCP bool
	// MaxTCPHandshakes caps TCP connections whose TLS handshake is still
	// in progress; a connection beyond it is closed at once. Each one is
	// also closed when its handshake is not done within HandshakeTimeout.
	// Zero means 256; negative means no limit.
	MaxTCPHandshakes int
	// MaxTCPHandshakesPerIP caps TCP connections in their TLS handshake
	// from one source IPv4 address or IPv6 /64, so that one source cannot
	// fill MaxTCPHandshakes. Zero means 16; negative means no
	// per-address limit.
	MaxTCPHandshakesPerIP int
	// TLSCerts are ordinary X.509 certificates (ECDSA P-256 or RSA, PEM
	// files) that the server presents to clients whose TLS server name
	// (SNI) matches one of the DNS names in a certificate's SANs. Files
	// are re-read when their modification time changes. Any other client,
	// alknet clients included, gets the node's ed25519 certificate.
	TLSCerts []CertFiles
	// ACME, when set, gets certificates for its domains from an ACME CA
	// and presents them like TLSCerts (which win for a name in both).
	ACME *ACMEConfig

	// DrainTimeout is how long Serve waits for handlers when its context is
	// cancelled before closing connections. Zero means 5s. While draining,
	// new connections are closed with CodeShutdown at once.
	DrainTimeout time.Duration
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HandshakeTimeout, 10*time.Second)
	def(&c.IdleTimeout, 60*time.Second)
	def(&c.KeepAlivePeriod, 15*time.Second)
	def(&c.DrainTimeout, 5*time.Second)
	if c.KeepAlivePeriod < 0 {
		c.KeepAlivePeriod = 0
	}
	if c.IdleTimeout > 0 && c.KeepAlivePeriod >= c.IdleTimeout {
		c.KeepAlivePeriod = c.IdleTimeout / 2
	}
	def(&c.AnonLifetime, 10*time.Minute)
	if c.MaxTCPHandshakes == 0 {
		c.MaxTCPHandshakes = 256
	}
	if c.MaxTCPHandshakesPerIP == 0 {
		c.MaxTCPHandshakesPerIP = 16
	}
	if c.MaxAnonConns == 0 {
		c.MaxAnonConns = 256
	}
	if c.MaxAnonConnsPerIP == 0 {
		c.MaxAnonConnsPerIP = 8
	}
	if c.MaxAnonStreams == 0 {
		c.MaxAnonStreams = 8
	}
	if c.RetryAbove == 0 {
		c.RetryAbove = 64
	}
	if c.MaxIncomingStreams == 0 {
		c.MaxIncomingStreams = 256
	}
	if c.MaxIncomingStreams < 0 {
		c.MaxIncomingStreams = -1 // quic-go: negative means no streams
	}
	if c.MaxConnsPerPeer == 0 {
		c.MaxConnsPerPeer = 64
	}
	if c.MaxConns == 0 {
		c.MaxConns = 4096
	}
	if c.StreamReceiveWindow <= 0 {
		c.StreamReceiveWindow = 16 << 20
	}
	if c.ConnReceiveWindow <= 0 {
		c.ConnReceiveWindow = 32 << 20
	}
	if c.ListenAddr == "" {
		c.ListenAddr = ":0"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
