package call

import (
	"context"
	"log/slog"
	"time"

	"github.com/alkdev/alknet/core"
)

// Config configures a Server or a Peer. The zero value works: an empty
// registry (discovery operations only), no tokens, 30 s call deadline.
type Config struct {
	// Registry holds the operations this side serves. Nil means a new
	// registry with only services/list and services/schema.
	Registry *Registry
	// Identities resolves auth_token values (IdentityByToken). Nil refuses
	// every token with FORBIDDEN.
	Identities core.IdentityProvider
	// Logger receives one line per failed call and per refused stream. Nil
	// is silent.
	Logger *slog.Logger
	// CallTimeout is the deadline of a query or mutation that does not set
	// its own. Zero means 30s; negative means none. Subscriptions have no
	// deadline unless their Options.Timeout sets one.
	CallTimeout time.Duration
	// RequestTimeout bounds how long a new stream may take to deliver its
	// call.requested frame. Zero means 10s; negative means none.
	RequestTimeout time.Duration
	// MaxFrameSize is the largest frame body read or written, in bytes. Zero
	// or more than 64 MiB means 64 MiB.
	MaxFrameSize int64
	// KnownCodes are error codes beyond the standard ones that this side's
	// calls report as they are; other unknown codes become INTERNAL (the
	// original stays in Error.RemoteCode).
	KnownCodes []string
	// OnConnect, when set, runs for every connection a Server accepts, in
	// its own goroutine, while the connection is served (a hub attaches
	// spokes here). The connection's serving waits for it on return.
	OnConnect func(ctx context.Context, p *Peer)
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registry == nil {
		c.Registry = NewRegistry(c.Logger)
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.MaxFrameSize <= 0 || c.MaxFrameSize > MaxFrameSize {
		c.MaxFrameSize = MaxFrameSize
	}
	return c
}
