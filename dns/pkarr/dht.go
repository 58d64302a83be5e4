package pkarr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/krpc"
	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent/bencode"
	"golang.org/x/time/rate"
)

// DefaultBootstrap lists the public Mainline DHT routers a node starts
// from when DHTConfig.Bootstrap is nil.
var DefaultBootstrap = []string{
	"router.bittorrent.com:6881",
	"router.utorrent.com:6881",
	"dht.transmissionbt.com:6881",
	"dht.libtorrent.org:25401",
	"dht.anacrolix.link:42069",
}

// DHTConfig configures a DHT node. The zero value joins the public
// Mainline DHT on an ephemeral UDP port.
type DHTConfig struct {
	// Listen is the UDP host:port of the DHT node. Empty means ":0" (every
	// interface, an ephemeral port). Ignored when Conn is set.
	Listen string
	// Conn, when set, is the socket the node uses instead of listening on
	// Listen. Close closes it.
	Conn net.PacketConn
	// Bootstrap lists host:port of the nodes to start from. Nil means
	// DefaultBootstrap (the public Mainline DHT); an empty non-nil list
	// means none: the node only learns of nodes that contact it, which is
	// how the first node of a private DHT starts.
	Bootstrap []string
	// SendRate limits the queries the node sends, in packets per second.
	// Zero means 100; negative means unlimited.
	SendRate float64
	// ResendDelay is how long a query waits for an answer before it is
	// sent again (three sends in all). Zero means 2s.
	ResendDelay time.Duration
	// MaxItems bounds the BEP44 items the node stores for others (the
	// oldest make room). Zero means DefaultMaxItems.
	MaxItems int
	// Logger receives the DHT library's warnings and errors. Nil is silent.
	Logger *slog.Logger
}

// DHT is a Mainline DHT node (BEP5) that stores and serves BEP44 items
// and publishes and resolves signed node records.
type DHT struct {
	s         *dht.Server
	log       *slog.Logger
	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{}

	boot         []string // bootstrap host:port list
	bootMu       sync.Mutex
	bootResolved []dht.Addr
}

// NewDHT starts a DHT node. It does not contact the bootstrap nodes until
// Bootstrap, Publish or Resolve needs them.
func NewDHT(cfg DHTConfig) (*DHT, error) {
	boot := cfg.Bootstrap
	if boot == nil {
		boot = DefaultBootstrap
	}
	for _, hp := range boot {
		if err := checkHostPort(hp); err != nil {
			return nil, fmt.Errorf("%w: bootstrap %q: %v", ErrConfig, hp, err)
		}
	}
	boot = append([]string(nil), boot...)
	conn := cfg.Conn
	if conn == nil {
		listen := cfg.Listen
		if listen == "" {
			listen = ":0"
		}
		if err := checkHostPort(listen); err != nil {
			return nil, fmt.Errorf("%w: listen %q: %v", ErrConfig, listen, err)
		}
		var err error
		if conn, err = net.ListenPacket("udp", listen); err != nil {
			return nil, fmt.Errorf("dht listen %s: %w", listen, err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limit := rate.Limit(100)
	switch {
	case cfg.SendRate > 0:
		limit = rate.Limit(cfg.SendRate)
	case cfg.SendRate < 0:
		limit = rate.Inf
	}
	resend := cfg.ResendDelay
	if resend <= 0 {
		resend = 2 * time.Second
	}
	maxItems := cfg.MaxItems
	if maxItems <= 0 {
		maxItems = DefaultMaxItems
	}
	var l alog.Logger
	l.SetHandlers(slogHandler{log})
	l = l.WithFilterLevel(alog.Warning)
	d := &DHT{log: log, done: make(chan struct{}), boot: boot}
	sc := &dht.ServerConfig{
		Conn:             conn,
		NoSecurity:       true,
		StartingNodes:    d.bootstrapAddrs,
		QueryResendDelay: func() time.Duration { return resend },
		Store:            newBoundedStore(maxItems),
		Exp:              2 * time.Hour,
		Logger:           l,
		DefaultWant:      []krpc.Want{krpc.WantNodes, krpc.WantNodes6},
		SendLimiter:      rate.NewLimiter(limit, max(1, int(min(float64(limit), 1000)))),
	}
	s, err := dht.NewServer(sc)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("dht start: %w", err)
	}
	d.s = s
	return d, nil
}

// Addr returns the node's UDP address.
func (d *DHT) Addr() net.Addr { return d.s.Addr() }

// Nodes returns how many nodes are in the routing table.
func (d *DHT) Nodes() int { return d.s.NumNodes() }

// Bootstrap fills the routing table from the bootstrap nodes (or from the
// nodes already known), and returns once the lookup of the node's own id
// has settled or ctx ends. It fails when no node answered.
func (d *DHT) Bootstrap(ctx context.Context) error {
	if d.closed.Load() {
		return ErrClosed
	}
	// Ping every bootstrap node first: those that answer join the
	// routing table, which the library only fills from the bootstrap list
	// while it is empty.
	addrs, _ := d.bootstrapAddrs()
	var wg sync.WaitGroup
	var answered atomic.Int64
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := d.s.Query(ctx, a, "ping", dht.QueryInput{}); res.ToError() == nil {
				answered.Add(1)
			}
		}()
	}
	wg.Wait()
	st, err := d.s.BootstrapContext(ctx)
	if err != nil {
		return fmt.Errorf("dht bootstrap: %w", err)
	}
	if st.NumResponses == 0 && answered.Load() == 0 {
		return fmt.Errorf("dht bootstrap: no node answered")
	}
	return nil
}

// bootstrapAddrs resolves the bootstrap list once and keeps the result.
func (d *DHT) bootstrapAddrs() ([]dht.Addr, error) {
	d.bootMu.Lock()
	defer d.bootMu.Unlock()
	if d.bootResolved != nil {
		return d.bootResolved, nil
	}
	addrs, err := resolveBootstrap(d.done, d.boot)
	if err != nil {
		return nil, err
	}
	d.bootResolved = addrs
	return addrs, nil
}

// Maintain keeps the routing table fresh (pings questionable nodes,
// refreshes buckets, bootstraps again when it empties) until ctx ends or
// the node is closed. A long-running node runs it in a goroutine.
func (d *DHT) Maintain(ctx context.Context) {
	go func() {
		select {
		case <-ctx.Done():
			d.Close()
		case <-d.done:
		}
	}()
	d.s.TableMaintainer()
}

// Close stops the node and closes its socket.
func (d *DHT) Close() error {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		close(d.done)
		d.s.Close()
	})
	return nil
}

// Publish stores p on the DHT nodes closest to the node's key (BEP44 put,
// after a get lookup that collects their write tokens). It returns how
// many nodes stored it; none is ErrNotStored, with the first refusal.
func (d *DHT) Publish(ctx context.Context, p *SignedPacket) (int, error) {
	if d.closed.Load() {
		return 0, ErrClosed
	}
	if err := p.Verify(); err != nil {
		return 0, err
	}
	if len(bencodedString(p.V)) > maxBencodedV {
		return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(p.V))
	}
	closest, err := d.lookup(ctx, Target(p.ID), nil, nil)
	if err != nil {
		return 0, fmt.Errorf("dht lookup: %w", err)
	}
	k := [32]byte(p.ID)
	put := bep44.Put{V: p.V, K: &k, Seq: p.Seq, Sig: p.Sig}
	var stored atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for _, c := range closest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := d.s.Put(ctx, dht.NewAddr(net.UDPAddrFromAddrPort(c.addr)), put, c.token, dht.QueryRateLimiting{})
			if err := res.ToError(); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("put to %s: %w", c.addr, err)
				}
				mu.Unlock()
				return
			}
			stored.Add(1)
		}()
	}
	wg.Wait()
	n := int(stored.Load())
	if n == 0 {
		if firstErr == nil {
			firstErr = errors.New("no dht node answered")
		}
		return 0, fmt.Errorf("%w: %w", ErrNotStored, firstErr)
	}
	return n, nil
}

// Resolve looks the node's record up on the DHT (BEP44 get lookup) and
// returns the valid packet with the highest sequence number. Answers
// whose key, size or signature do not check out are dropped, so a node
// that forges or garbles a record cannot make it win; minSeq > 0 asks for
// records newer than minSeq only. It returns when the lookup has settled,
// or when ctx ends (with the best record so far, if any).
func (d *DHT) Resolve(ctx context.Context, id core.NodeID, minSeq int64) (*SignedPacket, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	var best *SignedPacket
	var seqArg *int64
	if minSeq > 0 {
		seqArg = &minSeq
	}
	target := Target(id)
	_, err := d.lookup(ctx, target, seqArg, func(r *krpc.Return) {
		p := itemFromReply(target, r)
		if p == nil || p.ID != id || (minSeq > 0 && p.Seq <= minSeq) {
			return
		}
		if best == nil || p.Seq > best.Seq {
			best = p
		}
	})
	if best != nil {
		return best, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: node %s: %w", ErrNotFound, id, err)
	}
	return nil, fmt.Errorf("%w: node %s", ErrNotFound, id)
}

// itemFromReply returns the verified signed packet in a get reply, or nil.
func itemFromReply(target [20]byte, r *krpc.Return) *SignedPacket {
	if r.V == nil || r.Seq == nil || len(r.V) > maxBencodedV+8 {
		return nil
	}
	id := core.NodeID(r.K)
	if Target(id) != target {
		return nil
	}
	var v []byte
	if err := bencode.Unmarshal(r.V, &v); err != nil {
		return nil
	}
	p, err := NewSignedPacket(id, *r.Seq, r.Sig[:], v)
	if err != nil {
		return nil
	}
	return p
}

// resolveBootstrap turns host:port strings into addresses, skipping names
// that do not resolve. It fails when none does.
func resolveBootstrap(done <-chan struct{}, hostPorts []string) ([]dht.Addr, error) {
	if len(hostPorts) == 0 {
		return nil, errors.New("no bootstrap nodes configured")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var out []dht.Addr
	for _, hp := range hostPorts {
		host, port, _ := net.SplitHostPort(hp)
		p, _ := strconv.ParseUint(port, 10, 16)
		if ip, err := netip.ParseAddr(host); err == nil {
			out = append(out, dht.NewAddr(net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(p)))))
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			continue
		}
		for _, ip := range ips {
			out = append(out, dht.NewAddr(net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(p)))))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no bootstrap node resolved (%d configured)", len(hostPorts))
	}
	return out, nil
}

func checkHostPort(hp string) error {
	_, port, err := net.SplitHostPort(hp)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// slogHandler passes the DHT library's log records to a slog.Logger.
type slogHandler struct{ log *slog.Logger }

func (h slogHandler) Handle(r alog.Record) {
	lvl := slog.LevelDebug
	switch {
	case !r.Level.LessThan(alog.Error):
		lvl = slog.LevelError
	case !r.Level.LessThan(alog.Warning):
		lvl = slog.LevelWarn
	case !r.Level.LessThan(alog.Info):
		lvl = slog.LevelInfo
	}
	h.log.Log(context.Background(), lvl, "dht: "+r.Msg.String())
}
