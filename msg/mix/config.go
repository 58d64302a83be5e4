package mix

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/alkdev/alknet/core"
)

// ALPN is the protocol of mix packets between nodes.
const ALPN = "alknet/mix"

// Scope is the scope a peer needs to send packets to a node that is not
// open.
const Scope = "mix"

// Delivery is what the last hop of a route hands to the recipient's msg
// delivery.
type Delivery struct {
	// Recipient is the node whose alknet/msg delivery takes the envelope:
	// the recipient, or the node hosting its mailbox.
	Recipient core.NodeID
	// Addr is that node's host:port as the sender wrote it, or empty.
	Addr string
	// Envelope is the sealed message.
	Envelope []byte
}

// DeliverFunc hands a delivery to the recipient (its alknet/msg mailbox, or
// its mailbox host). An error counts as a failed delivery; the mix network
// does not retry, the msg layer's store-and-forward does.
type DeliverFunc func(ctx context.Context, d Delivery) error

// Forwarder sends a packet to a mix node.
type Forwarder interface {
	Send(ctx context.Context, to core.Addr, packet []byte) error
}

// Config configures a Node. Key and Directory are required; so is
// Endpoint unless Forwarder is set.
type Config struct {
	// Key is the node key; mix keys are derived from it.
	Key core.SecretKey
	// Directory returns the current verified directory (nil when none is
	// known yet). It is called for every packet forwarded and must not
	// block.
	Directory func() *Directory
	// Endpoint dials next hops on ALPN when Forwarder is nil.
	Endpoint *core.Endpoint
	// Forwarder sends packets to next hops. Nil means a Transport on
	// Endpoint.
	Forwarder Forwarder
	// Replay remembers replay tags. Nil means in memory only: a restart
	// then accepts replays of the current epoch again.
	Replay ReplayCache
	// Deliver hands envelopes to recipients at the last hop. Nil means
	// this node refuses Deliver packets (counted as DroppedDeliver).
	Deliver DeliverFunc
	// EpochPeriod is the life of a mix key; it must equal the directory's.
	// Zero means DefaultEpochPeriod (one hour). Whole seconds.
	EpochPeriod time.Duration
	// Grace is how long after an epoch ends its packets are still
	// accepted, and how long before one begins its packets are. Zero means
	// a quarter of EpochPeriod; negative means none.
	Grace time.Duration
	// MaxDelay caps the delay a packet asks for. Zero means 10 minutes.
	MaxDelay time.Duration
	// MaxQueue bounds the packets held in the delay queue; more are
	// dropped and counted. Zero means 10000.
	MaxQueue int
	// SendQueue bounds the released packets waiting for a sender
	// goroutine; more are dropped and counted. Zero means 1024.
	SendQueue int
	// Workers is the number of goroutines sending released packets. Zero
	// means 16.
	Workers int
	// SendTimeout bounds one forward or delivery. Zero means 20 seconds.
	SendTimeout time.Duration
	// ReadTimeout bounds reading one packet from a stream. Zero means 30
	// seconds.
	ReadTimeout time.Duration
	// Open accepts packets from callers without scope "mix" (an entry
	// node that senders reach directly). The endpoint's gate must then
	// admit them too.
	Open bool
	// LoopRate and DropRate are the rates of loop and drop cover packets
	// this node sends, per second (Poisson). Zero means none.
	LoopRate float64
	DropRate float64
	// Rand is the source of randomness for cover traffic. Nil means
	// crypto/rand.
	Rand io.Reader
	// Now returns the time epochs are computed from. Nil means time.Now.
	Now func() time.Time
	// Logger receives drop reasons and failures. Nil is silent.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Key.IsZero() {
		return c, errors.New("alknet/mix: Config.Key is required")
	}
	if c.Directory == nil {
		return c, errors.New("alknet/mix: Config.Directory is required")
	}
	if c.Forwarder == nil {
		if c.Endpoint == nil {
			return c, errors.New("alknet/mix: Config.Endpoint or Config.Forwarder is required")
		}
		c.Forwarder = NewTransport(c.Endpoint, 0)
	}
	if c.Replay == nil {
		c.Replay = NewMemoryReplay()
	}
	if c.EpochPeriod <= 0 {
		c.EpochPeriod = DefaultEpochPeriod
	}
	c.EpochPeriod = time.Duration(periodSeconds(c.EpochPeriod)) * time.Second
	if c.Grace == 0 {
		c.Grace = c.EpochPeriod / 4
	}
	c.Grace = max(c.Grace, 0)
	if c.MaxDelay <= 0 {
		c.MaxDelay = 10 * time.Minute
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 10000
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 1024
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 20 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
