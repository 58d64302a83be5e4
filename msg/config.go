package msg

import (
	"errors"
	"log/slog"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
)

// Scopes the server checks.
const (
	// ScopeSend is required to deliver when Config.RequireSendScope is set.
	ScopeSend = "msg:send"
	// ScopeFetch is required to fetch, ack or subscribe to a mailbox.
	ScopeFetch = "msg:fetch"
)

// Config configures a Server. DB and Key are required; the zero value of
// every other field is usable.
type Config struct {
	// DB is the node database; the server creates its tables there.
	DB *store.DB
	// Key is the node's message key. The server opens envelopes addressed
	// to the node on delivery (refusing invalid ones, dropping replayed
	// message ids), and serves Key.Record() to anyone who asks.
	Key *PrivateKey
	// Identities resolves the node ids of hosted peers (see Host). Nil
	// means the node hosts no mailbox but its own.
	Identities core.IdentityProvider
	// Host lists the peer ids (Identity.ID) whose mailboxes this node
	// keeps: envelopes addressed to such a peer's key are accepted and
	// held (unopened, the node cannot read them) until the peer fetches
	// them. The peer needs scope msg:fetch.
	Host []string
	// RequireSendScope makes delivery require scope msg:send; anonymous
	// callers are then refused. False means anyone may deliver within the
	// rate limits.
	RequireSendScope bool
	// MaxEnvelope is the largest envelope accepted, in bytes. Zero means
	// MaxEnvelopeSize (the 256 KiB bucket); a smaller value refuses the
	// buckets above it. Negative is invalid.
	MaxEnvelope int64
	// RatePerKey is the deliveries per second one caller key may make
	// (the node's own key excepted). Zero means 20; negative means no
	// limit. BurstPerKey is its bucket size; zero means 100.
	RatePerKey  float64
	BurstPerKey int
	// RatePerAddr is the deliveries per second from one source IPv4
	// address or IPv6 /64, whatever the key. Zero means 50; negative means
	// no limit. BurstPerAddr is its bucket size; zero means 200.
	RatePerAddr  float64
	BurstPerAddr int
	// MaxMailboxMessages and MaxMailboxBytes bound each mailbox; a delivery
	// beyond them is refused with StatusFull until the owner acks. Zero
	// means 10000 messages and 256 MiB.
	MaxMailboxMessages int64
	MaxMailboxBytes    int64
	// MaxAge is how old a message addressed to the node may be (by the
	// time the sender put in it); older ones, and ones dated more than
	// MaxSkew ahead, are refused. Delivered envelopes and message ids are
	// remembered for MaxAge plus a day, so a replay is always dropped.
	// Zero means 14 days.
	MaxAge time.Duration
	// MaxSkew is how far in the future a message's time may be. Zero means
	// one hour.
	MaxSkew time.Duration
	// Logger receives one line per refused delivery and per error. Nil is
	// silent. Message contents are never logged.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.DB == nil {
		return c, errors.New("alknet/msg: Config.DB is required")
	}
	if c.Key == nil {
		return c, errors.New("alknet/msg: Config.Key is required")
	}
	if c.MaxEnvelope < 0 {
		return c, errors.New("alknet/msg: Config.MaxEnvelope is negative")
	}
	if c.MaxEnvelope == 0 || c.MaxEnvelope > MaxEnvelopeSize {
		c.MaxEnvelope = MaxEnvelopeSize
	}
	if c.MaxEnvelope < int64(Buckets[0]+Overhead) {
		return c, errors.New("alknet/msg: Config.MaxEnvelope is below the smallest envelope")
	}
	if c.RatePerKey == 0 {
		c.RatePerKey = 20
	}
	if c.BurstPerKey == 0 {
		c.BurstPerKey = 100
	}
	if c.RatePerAddr == 0 {
		c.RatePerAddr = 50
	}
	if c.BurstPerAddr == 0 {
		c.BurstPerAddr = 200
	}
	if c.MaxMailboxMessages <= 0 {
		c.MaxMailboxMessages = 10000
	}
	if c.MaxMailboxBytes <= 0 {
		c.MaxMailboxBytes = 256 << 20
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 14 * 24 * time.Hour
	}
	if c.MaxSkew <= 0 {
		c.MaxSkew = time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// seenFor is how long delivered envelopes and ids are remembered.
func (c Config) seenFor() time.Duration { return c.MaxAge + 24*time.Hour }
