package fs

import (
	"log/slog"
	"time"
)

// ALPN is the protocol string of the blob service.
const ALPN = "alknet/fs"

// Scopes the server checks. ScopeRead is also the gate the alknet binary
// puts in front of ALPN; knowing a hash is then the capability to read it.
const (
	ScopeRead  = "fs"
	ScopeWrite = "fs:write"
)

// Defaults for the zero values of Config.
const (
	// DefaultMaxPutSize is the largest blob a PUT may carry.
	DefaultMaxPutSize = 64 << 30
	// DefaultIdleTimeout ends a stream with no request for this long.
	DefaultIdleTimeout = 5 * time.Minute
	// MinIdleTimeout is the shortest IdleTimeout: a Client reuses a stream
	// idle for up to 10 s.
	MinIdleTimeout = 30 * time.Second
)

// Config configures a Server. Only Store is required.
type Config struct {
	// Store holds the blobs served. Required. The server does not close it.
	Store *Store
	// ReadOnly refuses PUT, TAG and UNTAG whatever the peer's scopes.
	ReadOnly bool
	// Public serves GET, HAS and LIST to every caller the gate in front
	// of the server lets through, anonymous ones included. False requires
	// scope fs.
	Public bool
	// MaxPutSize bounds the size a PUT declares, in bytes. Zero means
	// DefaultMaxPutSize (64 GiB); negative means no limit.
	MaxPutSize int64
	// IdleTimeout ends a stream on which no request starts for this long.
	// Zero means DefaultIdleTimeout (5 minutes); values below
	// MinIdleTimeout (30 s) are raised to it, since clients keep idle
	// streams for reuse; negative disables it.
	IdleTimeout time.Duration
	// Logger receives refused requests and failures (info) and request
	// summaries (debug). Nil is silent. Blob contents are never logged.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxPutSize == 0 {
		c.MaxPutSize = DefaultMaxPutSize
	}
	if c.MaxPutSize < 0 {
		c.MaxPutSize = 1 << 62
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.IdleTimeout > 0 {
		c.IdleTimeout = max(c.IdleTimeout, MinIdleTimeout)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
