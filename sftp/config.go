package sftp

import (
	"log/slog"
	"time"
)

// Defaults for the zero values of Config.
const (
	// DefaultMaxHandles is the open-handle limit of one session.
	DefaultMaxHandles = 64
	// DefaultMaxPeerHandles is the open-handle limit of one peer across
	// all its sessions.
	DefaultMaxPeerHandles = 256
	// DefaultMaxPeerSessions is the limit of concurrent sessions of one
	// peer across all its connections.
	DefaultMaxPeerSessions = 64
	// DefaultMaxPacket is the largest SFTP packet accepted or sent, in
	// bytes, counting the 4-byte length prefix. It is also the ceiling:
	// pkg/sftp refuses anything larger.
	DefaultMaxPacket = 256 << 10
	// DefaultIdleTimeout closes a session with no traffic for this long.
	DefaultIdleTimeout = 15 * time.Minute
	// DefaultMaxChecksumLength bounds one check-file request, in bytes.
	DefaultMaxChecksumLength = 64 << 30
)

// minPacket is the smallest MaxPacket accepted: OpenSSH's client needs room
// for a 32 KiB read or write plus the header.
const minPacket = 34 << 10

// Config configures a Server. The zero value of every field but Root is
// usable.
type Config struct {
	// Root is the directory every session is jailed in. Required; it is
	// created (mode 0700) when missing.
	Root string
	// PerPeerHome jails each peer in <Root>/<peer id> instead of Root,
	// created on first use. A peer id that is not a single safe path
	// component is refused. False means every peer shares Root.
	PerPeerHome bool
	// Logger receives refused connections and writes, sessions that end
	// with an error (info) and normal session ends (debug). Nil is silent.
	// File contents and paths are never logged.
	Logger *slog.Logger

	// MaxHandles caps open file and directory handles per session. Zero
	// means DefaultMaxHandles (64); negative means no limit.
	MaxHandles int
	// MaxPeerHandles caps open file and directory handles of one peer (by
	// peer id) across all its sessions and connections, so a peer cannot
	// exhaust the node's file descriptors. Zero means DefaultMaxPeerHandles
	// (256); negative means no limit.
	MaxPeerHandles int
	// MaxPeerSessions caps concurrent sessions of one peer across all its
	// connections; each session holds a descriptor for its root and up to
	// 4 more while extension requests run. Zero means
	// DefaultMaxPeerSessions (64); negative means no limit.
	MaxPeerSessions int
	// MaxPacket is the largest SFTP packet a session accepts and the size
	// its reads and writes are advertised at (limits@openssh.com), in bytes
	// including the length prefix. Zero means DefaultMaxPacket (256 KiB);
	// values below 34 KiB are raised to 34 KiB and values above 256 KiB
	// lowered to 256 KiB.
	MaxPacket int64
	// IdleTimeout closes a session that has neither received a request
	// nor sent a response for this long. Zero means DefaultIdleTimeout
	// (15 minutes); negative disables it.
	IdleTimeout time.Duration
	// MaxChecksumLength bounds the bytes one check-file request may hash.
	// Zero means DefaultMaxChecksumLength (64 GiB); negative disables the
	// check-file extensions.
	MaxChecksumLength int64
	// ReadOnly refuses every write whatever the peer's scopes.
	ReadOnly bool
}

func (c Config) withDefaults() Config {
	if c.MaxHandles == 0 {
		c.MaxHandles = DefaultMaxHandles
	}
	if c.MaxPeerHandles == 0 {
		c.MaxPeerHandles = DefaultMaxPeerHandles
	}
	if c.MaxPeerSessions == 0 {
		c.MaxPeerSessions = DefaultMaxPeerSessions
	}
	if c.MaxPacket == 0 {
		c.MaxPacket = DefaultMaxPacket
	}
	c.MaxPacket = max(min(c.MaxPacket, DefaultMaxPacket), minPacket)
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxChecksumLength == 0 {
		c.MaxChecksumLength = DefaultMaxChecksumLength
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
