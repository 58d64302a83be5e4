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
	// survive NAT and the idle timeout. Zero means 15s; negative disables.
	KeepAlivePeriod time.Duration
	// MaxIncomingStreams is the number of concurrent streams a peer may open
	// on one connection. Zero means 256; negative means none.
	MaxIncomingStreams int64
	// MaxConnsPerPeer caps concurrent connections from one key. Zero means
	// 64; negative means no limit.
	MaxConnsPerPeer int
	// MaxConns caps concurrent accepted connections. Zero means 4096;
	// negative means no limit.
	MaxConns int
	// StreamReceiveWindow is the largest flow-control window of one stream,
	// in bytes. Zero means 16 MiB.
	StreamReceiveWindow int64
	// ConnReceiveWindow is the largest flow-control window of one
	// connection, in bytes. Zero means 32 MiB.
	ConnReceiveWindow int64
	// DrainTimeout is how long Serve waits for handlers when its context is
	// cancelled before closing connections. Zero means 5s.
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
