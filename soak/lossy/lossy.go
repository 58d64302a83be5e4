package lossy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxDatagram is the largest datagram forwarded; QUIC never sends more than
// 1500 bytes on loopback paths, so 64 KiB covers any UDP payload.
const maxDatagram = 64 << 10

// Config configures a Proxy. Rates are per datagram and per direction.
type Config struct {
	// Listen is the UDP address clients send to, e.g. "127.0.0.1:0".
	Listen string
	// Upstream is the UDP address of the node.
	Upstream string
	// Drop is the probability that a datagram is discarded.
	Drop float64
	// Duplicate is the probability that a datagram is sent twice.
	Duplicate float64
	// Reorder is the probability that a datagram is held back for
	// ReorderDelay, so that later datagrams overtake it.
	Reorder float64
	// ReorderDelay is how long a reordered datagram is held. Zero means 5ms.
	ReorderDelay time.Duration
	// Seed makes the impairment decisions repeatable for one order of
	// arrival. Zero means a random seed.
	Seed uint64
	// MaxClients bounds the client addresses tracked at once. Zero means
	// 4096; a new client beyond it is ignored until an old one idles out.
	MaxClients int
	// ClientIdle forgets a client after this long without traffic. Zero
	// means 2 minutes.
	ClientIdle time.Duration
	// Logger; nil is silent.
	Logger *slog.Logger
}

func (c Config) validate() error {
	for _, r := range []float64{c.Drop, c.Duplicate, c.Reorder} {
		if !(r >= 0 && r <= 1) {
			return fmt.Errorf("%w: %v", ErrBadRate, r)
		}
	}
	return nil
}

// Stats counts what the proxy did, over both directions.
type Stats struct {
	Received   int64 // datagrams read
	Forwarded  int64 // datagrams written (a duplicate counts twice)
	Dropped    int64
	Duplicated int64
	Reordered  int64
}

// Proxy forwards datagrams between clients and one upstream address.
type Proxy struct {
	cfg  Config
	conn *net.UDPConn
	up   *net.UDPAddr
	log  *slog.Logger

	rngMu sync.Mutex
	rng   *rand.Rand

	mu      sync.Mutex
	clients map[string]*client
	wg      sync.WaitGroup

	received, forwarded, dropped, duplicated, reordered atomic.Int64
}

type client struct {
	addr *net.UDPAddr
	up   *net.UDPConn
	last atomic.Int64 // unix nanoseconds of the last datagram either way
}

// New binds the listening socket.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.ReorderDelay <= 0 {
		cfg.ReorderDelay = 5 * time.Millisecond
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 4096
	}
	if cfg.ClientIdle <= 0 {
		cfg.ClientIdle = 2 * time.Minute
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	up, err := net.ResolveUDPAddr("udp", cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("alknet/lossy: upstream %q: %w", cfg.Upstream, err)
	}
	la, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("alknet/lossy: listen %q: %w", cfg.Listen, err)
	}
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, fmt.Errorf("alknet/lossy: listen %s: %w", cfg.Listen, err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)
	return &Proxy{
		cfg: cfg, conn: conn, up: up, log: log,
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		clients: make(map[string]*client),
	}, nil
}

// Addr is the address clients send to.
func (p *Proxy) Addr() *net.UDPAddr { return p.conn.LocalAddr().(*net.UDPAddr) }

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	return Stats{
		Received: p.received.Load(), Forwarded: p.forwarded.Load(), Dropped: p.dropped.Load(),
		Duplicated: p.duplicated.Load(), Reordered: p.reordered.Load(),
	}
}

// Serve forwards until ctx is done, then closes every socket and returns
// nil; it returns an error if the listening socket fails.
func (p *Proxy) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = p.conn.Close() })
	defer stop()
	p.wg.Go(func() { p.reap(ctx) })
	defer func() {
		_ = p.conn.Close()
		p.mu.Lock()
		for _, c := range p.clients {
			_ = c.up.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	}()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("alknet/lossy: read: %w", err)
		}
		p.received.Add(1)
		c, err := p.client(ctx, from)
		if err != nil {
			p.log.Warn("client refused", "remote", from.String(), "err", err)
			continue
		}
		c.last.Store(time.Now().UnixNano())
		pkt := append([]byte(nil), buf[:n]...)
		p.impair(pkt, func(b []byte) { _, _ = c.up.Write(b) })
	}
}

// client returns the mapping of from, creating its upstream socket and the
// goroutine that carries the node's answers back.
func (p *Proxy) client(ctx context.Context, from *net.UDPAddr) (*client, error) {
	key := from.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[key]; ok {
		return c, nil
	}
	if len(p.clients) >= p.cfg.MaxClients {
		return nil, fmt.Errorf("client limit %d reached", p.cfg.MaxClients)
	}
	up, err := net.DialUDP("udp", nil, p.up)
	if err != nil {
		return nil, err
	}
	_ = up.SetReadBuffer(4 << 20)
	_ = up.SetWriteBuffer(4 << 20)
	c := &client{addr: from, up: up}
	c.last.Store(time.Now().UnixNano())
	p.clients[key] = c
	p.wg.Go(func() {
		buf := make([]byte, maxDatagram)
		for {
			n, err := up.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
					return
				}
				continue // ICMP port unreachable while the node restarts
			}
			p.received.Add(1)
			c.last.Store(time.Now().UnixNano())
			pkt := append([]byte(nil), buf[:n]...)
			p.impair(pkt, func(b []byte) { _, _ = p.conn.WriteToUDP(b, c.addr) })
		}
	})
	return c, nil
}

// reap forgets clients idle for longer than ClientIdle.
func (p *Proxy) reap(ctx context.Context) {
	t := time.NewTicker(max(p.cfg.ClientIdle/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cut := time.Now().Add(-p.cfg.ClientIdle).UnixNano()
		p.mu.Lock()
		for k, c := range p.clients {
			if c.last.Load() < cut {
				_ = c.up.Close()
				delete(p.clients, k)
			}
		}
		p.mu.Unlock()
	}
}

// action is what happens to one datagram.
type action struct {
	drop, dup, delay bool
}

func (p *Proxy) decide() action {
	p.rngMu.Lock()
	defer p.rngMu.Unlock()
	var a action
	a.drop = p.rng.Float64() < p.cfg.Drop
	a.dup = p.rng.Float64() < p.cfg.Duplicate
	a.delay = p.rng.Float64() < p.cfg.Reorder
	return a
}

// impair sends pkt through send according to one decision.
func (p *Proxy) impair(pkt []byte, send func([]byte)) {
	a := p.decide()
	if a.drop {
		p.dropped.Add(1)
		return
	}
	copies := 1
	if a.dup {
		copies = 2
		p.duplicated.Add(1)
	}
	p.forwarded.Add(int64(copies))
	if a.delay {
		p.reordered.Add(1)
		time.AfterFunc(p.cfg.ReorderDelay, func() {
			for range copies {
				send(pkt)
			}
		})
		return
	}
	for range copies {
		send(pkt)
	}
}
