package pkarr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
)

// Sink is where a Publisher puts records; *DHT is one. Publish returns
// how many places stored the record.
type Sink interface {
	Publish(ctx context.Context, p *SignedPacket) (int, error)
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Key signs the records. Required.
	Key core.SecretKey
	// Sink receives every signed record. Required.
	Sink Sink
	// Addrs returns the node's current addresses, most preferred first.
	// It is called every Poll. Required.
	Addrs func() []netip.AddrPort
	// ALPNs the node serves, written into every record.
	ALPNs []string
	// TTL of the DNS records. Zero means DefaultTTL.
	TTL time.Duration
	// Interval between republications of an unchanged record. Zero means
	// one hour (DHT nodes drop items after about two).
	Interval time.Duration
	// Poll is how often Addrs is checked for a change. Zero means one
	// minute.
	Poll time.Duration
	// Retry is the wait after a failed publication, doubled after each
	// further failure up to Interval. Zero means 10s.
	Retry time.Duration
	// Timeout bounds one publication. Zero means two minutes.
	Timeout time.Duration
	// OnPublish, when set, is called after each successful publication
	// with the record and the number of places that stored it (for
	// example to serve the same record from the node's own DNS zone).
	OnPublish func(p *SignedPacket, stored int)
	// Logger receives one line per publication. Nil is silent.
	Logger *slog.Logger
}

// Publisher keeps a node's record published: at start, whenever the
// addresses change, and every Interval. Each publication is signed anew
// with a larger seq.
type Publisher struct {
	cfg     PublisherConfig
	log     *slog.Logger
	trigger chan struct{}

	mu      sync.Mutex
	current *SignedPacket
}

// NewPublisher checks cfg and fills its defaults.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.Key.IsZero() || cfg.Sink == nil || cfg.Addrs == nil {
		return nil, errors.New("alknet/pkarr: publisher needs a key, a sink and an address source")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Hour
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Minute
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 10 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	cfg.ALPNs = slices.Clone(cfg.ALPNs)
	if err := (Record{Addrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}, ALPNs: cfg.ALPNs}).validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{cfg: cfg, log: log, trigger: make(chan struct{}, 1)}, nil
}

// Current returns the last record published, or nil.
func (p *Publisher) Current() *SignedPacket {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.current
}

// Trigger asks for a publication now (for example after a known change
// of address); it does not wait for it.
func (p *Publisher) Trigger() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends, then returns ctx's error.
func (p *Publisher) Run(ctx context.Context) error {
	var last []netip.AddrPort
	var lastSeq int64
	var due time.Time // zero: publish now
	retry := p.cfg.Retry
	forced := true
	for {
		addrs := p.cfg.Addrs()
		changed := !slices.Equal(addrs, last)
		now := time.Now()
		if len(addrs) > 0 && (forced || changed || !now.Before(due)) {
			seq := NextSeq(now, lastSeq)
			err := p.publish(ctx, addrs, seq)
			lastSeq = seq
			last = slices.Clone(addrs)
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				p.log.Warn("dht record not published", "seq", seq, "retry", retry, "err", err)
				due = time.Now().Add(retry)
				retry = min(retry*2, p.cfg.Interval)
			default:
				due = time.Now().Add(p.cfg.Interval)
				retry = p.cfg.Retry
			}
		} else if len(addrs) == 0 && changed {
			p.log.Warn("dht record not published: the node has no address to publish")
			last = nil
		}
		forced = false
		wait := p.cfg.Poll
		if !due.IsZero() {
			wait = min(wait, max(0, time.Until(due)))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-p.trigger:
			t.Stop()
			forced = true
		case <-t.C:
		}
	}
}

func (p *Publisher) publish(ctx context.Context, addrs []netip.AddrPort, seq int64) error {
	pkt, err := Sign(p.cfg.Key, Record{Seq: seq, Addrs: addrs, ALPNs: p.cfg.ALPNs, TTL: p.cfg.TTL})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	start := time.Now()
	n, err := p.cfg.Sink.Publish(ctx, pkt)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	p.mu.Lock()
	p.current = pkt
	p.mu.Unlock()
	p.log.Info("dht record published", "node", pkt.ID.String(), "seq", seq, "addrs", len(addrs), "stored", n, "dur", time.Since(start))
	if p.cfg.OnPublish != nil {
		p.cfg.OnPublish(pkt, n)
	}
	return nil
}
