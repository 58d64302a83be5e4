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
	// means DefaultMaxFrameSize (1 MiB); more than MaxFrameSize (64 MiB)
	// means 64 MiB.
	MaxFrameSize int64
	// MaxBufferedBytes bounds, per connection, the frames being read and
	// the inputs being decoded for the schema check. Each frame reserves 16
	// bytes per byte of its declared length before its body is read (a
	// reservation, not an allocation), cut to the whole budget; readers wait
	// for room. Zero means 16 MiB; a value below MaxFrameSize is raised to it.
	MaxBufferedBytes int64
	// MaxCalls bounds the calls in flight on one connection (served by this
	// side). A request beyond it is answered with UNAVAILABLE. Zero means
	// 256; negative means no limit.
	MaxCalls int
	// MaxCallsPerStream bounds the calls in flight on one stream. A request
	// beyond it is answered with UNAVAILABLE. Zero means 64; negative means
	// no limit.
	MaxCallsPerStream int
	// MaxQueuedBytes bounds the frames one call may have waiting for a
	// shared stream, in bytes; a call's output beyond it blocks its handler
	// (emit) until the stream takes a frame. A single frame is always
	// accepted. Zero means 64 KiB.
	MaxQueuedBytes int64
	// Access, when it restricts anything, gates every call this side serves,
	// checked against the remote's identity before the operation's own
	// Access. A Server has the endpoint's gate for its ALPN; Dial, whose
	// connection no gate checks, uses {RequiredScopes: ["call"]} when Access
	// is the zero value (see Dial).
	Access core.AccessControl
	// KnownCodes are error codes beyond the standard ones that this side's
	// calls report as they are; other unknown codes become INTERNAL (the
	// original stays in Error.RemoteCode).
	KnownCodes []string
	// Multiplex makes this side's calls (Call, Subscribe, hub forwarding)
	// share one stream, opened on the first call and again after it
	// breaks, instead of one stream per call; an abort then goes on that
	// stream. It is the form for a connection that has a single stream
	// (TCP), and saves a stream open per call over QUIC; a caller that
	// stops reading one subscription stalls the others on the stream (see
	// SPEC.md). False opens a stream per call.
	Multiplex bool
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
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.MaxFrameSize > MaxFrameSize {
		c.MaxFrameSize = MaxFrameSize
	}
	if c.MaxBufferedBytes <= 0 {
		c.MaxBufferedBytes = 16 << 20
	}
	c.MaxBufferedBytes = max(c.MaxBufferedBytes, c.MaxFrameSize)
	if c.MaxCalls == 0 {
		c.MaxCalls = 256
	}
	if c.MaxCallsPerStream == 0 {
		c.MaxCallsPerStream = 64
	}
	if c.MaxQueuedBytes <= 0 {
		c.MaxQueuedBytes = 64 << 10
	}
	return c
}
