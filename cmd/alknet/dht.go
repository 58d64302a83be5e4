package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/dns/pkarr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// dhtConfig is the [dht] section of config.toml: the node's Mainline DHT
// node and its signed record (pkarr format).
type dhtConfig struct {
	// Listen is the UDP host:port of serve's DHT node. Empty: every
	// interface, an ephemeral port. Client commands always use an
	// ephemeral port.
	Listen string `toml:"listen"`
	// Bootstrap lists the host:port of the DHT nodes to start from; it
	// replaces the public Mainline DHT routers (private networks, tests).
	// Absent: the public routers. Empty: none.
	Bootstrap *[]string `toml:"bootstrap"`
	// Publish makes serve publish the node's record on the DHT, on
	// address change and every hour (serve --publish).
	Publish bool `toml:"publish"`
	// Advertise lists the ip:port addresses to publish instead of the
	// interface addresses (a node behind NAT with a forwarded port).
	Advertise []string `toml:"advertise"`
	// Known lists node addresses (<nodeid>@<host>:<port>) that resolving
	// a node id tries before the DHT: the id's own entries are used as
	// they are, the other nodes are asked for the record over call
	// (dht/resolve).
	Known []string `toml:"known"`
}

// bootstrap returns the bootstrap list for pkarr.DHTConfig: nil for the
// public routers.
func (c dhtConfig) bootstrap() []string {
	if c.Bootstrap == nil {
		return nil
	}
	return append([]string{}, (*c.Bootstrap)...)
}

// check validates the section so that serve refuses a bad one at start.
func (c dhtConfig) check() error {
	for _, a := range c.Advertise {
		if _, err := netip.ParseAddrPort(a); err != nil {
			return fmt.Errorf("[dht] advertise %q: want ip:port (%v)", a, err)
		}
	}
	for _, k := range c.Known {
		if _, err := core.ParseAddr(k); err != nil {
			return fmt.Errorf("[dht] known %q: %w", k, ipv6Hint(err))
		}
	}
	return nil
}

// servePublish is serve's --publish flag.
var servePublish bool

// dhtState is what serve keeps of its DHT node, in env.ext["dht"].
type dhtState struct {
	dht   *pkarr.DHT
	pub   atomic.Pointer[pkarr.Publisher] // nil unless publishing
	cache *pkarr.Cache                    // newest record seen per key (dht/resolve)

	mu        sync.Mutex
	onPublish []func(*pkarr.SignedPacket)
}

// OnPublish adds f to what runs after each publication of the node's
// record (for example serving it from the node's DNS zone with
// Record.RRs). Call it from a services hook, before the node starts.
func (st *dhtState) OnPublish(f func(*pkarr.SignedPacket)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.onPublish = append(st.onPublish, f)
}

func (st *dhtState) published(p *pkarr.SignedPacket, _ int) {
	st.mu.Lock()
	fs := slices.Clone(st.onPublish)
	st.mu.Unlock()
	for _, f := range fs {
		f(p)
	}
}

func init() {
	addExtension(extension{
		name:     "dht",
		commands: func(g *globals) []*cobra.Command { return []*cobra.Command{newResolveCmd(g)} },
		serveFlags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&servePublish, "publish", false, "publish the node's signed record (addresses, ALPNs) on the Mainline DHT, so that clients find it by node id ([dht] publish)")
		},
		apply: func(cfg *fileConfig) error {
			if servePublish {
				cfg.DHT.Publish = true
			}
			return cfg.DHT.check()
		},
		services: dhtServices,
		started:  startDHT,
	})
}

// resolveOpInput and resolveOpOutput are the dht/resolve operation's.
type resolveOpInput struct {
	Node string `json:"node" jsonschema:"node id (z-base-32 or hex)"`
}

type resolveOpOutput struct {
	// Packet is the node's signed record in pkarr's binary form (base64).
	Packet []byte `json:"packet"`
}

// dhtServices starts serve's DHT node when [dht] publish (or --publish)
// or [dht] listen asks for one, and registers dht/resolve: a peer with
// scope call gets any node's signed record (this node's own, else looked
// up on the DHT), which it verifies itself.
func dhtServices(env *serveEnv) ([]*service, error) {
	c := env.cfg.DHT
	if !c.Publish && c.Listen == "" {
		return nil, nil
	}
	log := env.log.With("svc", "dht")
	d, err := pkarr.NewDHT(pkarr.DHTConfig{Listen: c.Listen, Bootstrap: c.bootstrap(), Logger: log})
	if err != nil {
		return nil, err
	}
	st := &dhtState{dht: d, cache: pkarr.NewCache(0)}
	env.ext["dht"] = st
	env.closers = append(env.closers, d.Close)
	if env.calls != nil {
		call.Query(env.calls, "dht/resolve", func(ctx context.Context, in resolveOpInput) (resolveOpOutput, error) {
			id, err := core.ParseNodeID(in.Node)
			if err != nil {
				return resolveOpOutput{}, call.NewError(call.CodeInvalidInput, "%s", err.Error())
			}
			p, err := st.lookup(ctx, env.key.NodeID(), id)
			if err != nil {
				return resolveOpOutput{}, call.NewError(call.CodeNotFound, "no record of node %s", id)
			}
			b, _ := p.MarshalBinary()
			return resolveOpOutput{Packet: b}, nil
		}, call.Options{Description: "A node's signed record (pkarr format): this node's own, else from the Mainline DHT.", Timeout: resolveTimeout})
	}
	return nil, nil
}

// lookup returns the newest record of id this node knows: its own
// published record, else one from the DHT (kept in the replay cache).
func (st *dhtState) lookup(ctx context.Context, self, id core.NodeID) (*pkarr.SignedPacket, error) {
	if id == self {
		pub := st.pub.Load()
		if pub == nil || pub.Current() == nil {
			return nil, pkarr.ErrNotFound
		}
		return pub.Current(), nil
	}
	var minSeq int64
	cached := st.cache.Get(id)
	if cached != nil {
		minSeq = cached.Seq
	}
	p, err := st.dht.Resolve(ctx, id, minSeq)
	if err != nil {
		if cached != nil {
			return cached, nil
		}
		return nil, err
	}
	if err := st.cache.Put(p); err != nil {
		if cached != nil {
			return cached, nil
		}
		return nil, err
	}
	return p, nil
}

// startDHT bootstraps serve's DHT node, keeps its routing table fresh and,
// when publishing, runs the publisher.
func startDHT(ctx context.Context, env *serveEnv) error {
	st, ok := env.ext["dht"].(*dhtState)
	if !ok {
		return nil
	}
	c := env.cfg.DHT
	d := st.dht
	log := env.log.With("svc", "dht")
	var pub *pkarr.Publisher
	if c.Publish {
		var err error
		pub, err = pkarr.NewPublisher(pkarr.PublisherConfig{
			Key:       env.key,
			Sink:      d,
			Addrs:     func() []netip.AddrPort { return publishAddrs(env, c.Advertise) },
			ALPNs:     env.ep.ALPNs(),
			OnPublish: st.published,
			Logger:    log,
		})
		if err != nil {
			return err
		}
		st.pub.Store(pub)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		d.Maintain(ctx)
	}()
	go func() {
		defer wg.Done()
		bctx, cancel := context.WithTimeout(ctx, time.Minute)
		if err := d.Bootstrap(bctx); err != nil && ctx.Err() == nil {
			log.Warn("dht bootstrap", "err", err)
		}
		cancel()
		if pub != nil {
			_ = pub.Run(ctx)
		}
	}()
	env.closers = append(env.closers, func() error {
		_ = d.Close()
		wg.Wait()
		return nil
	})
	log.Info("dht node", "listen", d.Addr().String(), "publish", c.Publish)
	return nil
}

// publishAddrs lists the addresses the node's record names: [dht]
// advertise when set, else the node's interface addresses without
// loopback (unless it has nothing else).
func publishAddrs(env *serveEnv, advertise []string) []netip.AddrPort {
	var out []netip.AddrPort
	if len(advertise) > 0 {
		for _, a := range advertise {
			if ap, err := netip.ParseAddrPort(a); err == nil {
				out = append(out, ap)
			}
		}
		return out
	}
	addrs, _ := nodeAddrs(env.ep.Addr(), env.ep.LocalAddr().String())
	var loop []netip.AddrPort
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a.Host)
		if err != nil {
			continue
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if ap.Addr().IsLoopback() {
			loop = append(loop, ap)
		} else {
			out = append(out, ap)
		}
	}
	if len(out) == 0 {
		out = loop
	}
	return out
}

// resolveTimeout bounds a DHT lookup of the CLI.
const resolveTimeout = 30 * time.Second

// resolved is a node id's addresses and where they came from.
type resolved struct {
	ID     core.NodeID
	Addrs  []core.Addr
	Source string        // "config", "peer <nodeid>" or "dht"
	Record *pkarr.Record // the verified record, from the DHT
	Packet *pkarr.SignedPacket
}

// askTimeout bounds asking one known node for a record over call.
const askTimeout = 5 * time.Second

// resolveNode finds the addresses of node id. The [dht] known entries of
// config.toml come first: the id's own are used as they are; every other
// known node is asked over call (dht/resolve) for the id's record. Then
// the Mainline DHT. Every record is verified against id and the highest
// seq wins; the id stays the pin of every address returned. d dials the
// known nodes (nil: they are not asked).
func (g *globals) resolveNode(ctx context.Context, id core.NodeID, skipKnown bool, d *dialer) (*resolved, error) {
	cfg, err := loadConfig(g.path(configFile), false)
	if err != nil {
		return nil, err
	}
	if err := cfg.DHT.check(); err != nil {
		return nil, err
	}
	log := g.logger()
	if !skipKnown {
		var own, others []core.Addr
		for _, k := range cfg.DHT.Known {
			a, err := core.ParseAddr(k)
			switch {
			case err != nil:
			case a.ID == id:
				own = append(own, a)
			default:
				others = append(others, a)
			}
		}
		if len(own) > 0 {
			return &resolved{ID: id, Addrs: own, Source: "config"}, nil
		}
		var best *pkarr.SignedPacket
		var from core.NodeID
		for _, a := range others {
			if d == nil {
				break
			}
			p, err := askKnown(ctx, d, a, id)
			if err != nil {
				log.Debug("known node has no record", "peer", a.ID.String(), "node", id.String(), "err", err)
				continue
			}
			if best == nil || p.Seq > best.Seq {
				best, from = p, a.ID
			}
		}
		if best != nil {
			return resolvedFrom(best, "peer "+from.String())
		}
	}
	dn, err := pkarr.NewDHT(pkarr.DHTConfig{Bootstrap: cfg.DHT.bootstrap(), Logger: log.With("svc", "dht")})
	if err != nil {
		return nil, err
	}
	defer dn.Close()
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	start := time.Now()
	p, err := dn.Resolve(ctx, id, 0)
	if err != nil {
		return nil, fmt.Errorf("resolve %s on the dht: %w", id, err)
	}
	log.Debug("resolved node on the dht", "node", id.String(), "seq", p.Seq, "dur", time.Since(start))
	return resolvedFrom(p, "dht")
}

// askKnown asks the known node at a for id's record over call and
// verifies it.
func askKnown(ctx context.Context, d *dialer, a core.Addr, id core.NodeID) (*pkarr.SignedPacket, error) {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	conn, err := d.dialAddr(ctx, a, call.ALPN)
	if err != nil {
		return nil, err
	}
	p := call.NewPeer(conn, call.Config{})
	defer p.Close()
	var out resolveOpOutput
	if err := p.Call(ctx, "dht/resolve", resolveOpInput{Node: id.String()}, &out); err != nil {
		return nil, err
	}
	pkt, err := pkarr.ParseSignedPacket(out.Packet)
	if err != nil {
		return nil, err
	}
	if pkt.ID != id {
		return nil, fmt.Errorf("record of %s, asked for %s", pkt.ID, id)
	}
	return pkt, nil
}

// resolvedFrom turns a verified record into addresses.
func resolvedFrom(p *pkarr.SignedPacket, source string) (*resolved, error) {
	rec, err := p.Record()
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", p.ID, err)
	}
	if len(rec.Addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: %w", p.ID, pkarr.ErrNoAddrs)
	}
	return &resolved{ID: p.ID, Addrs: rec.NodeAddrs(), Source: source, Record: &rec, Packet: p}, nil
}

// parseTarget reads an ADDR argument: a node address
// (<nodeid>@<host>:<port>, or alknet://<nodeid>@<host>:<port>[/path]), or
// a bare node id (also as alknet://<nodeid>[/path]) to be resolved, which
// comes back with an empty Host.
func parseTarget(s string) (core.Addr, error) {
	a, err := core.ParseAddr(s)
	if err == nil {
		return a, nil
	}
	rest := strings.TrimPrefix(s, "alknet://")
	if i := strings.IndexByte(rest, '/'); i >= 0 && rest != s {
		rest = rest[:i]
	}
	if !strings.Contains(rest, "@") {
		if id, idErr := core.ParseNodeID(rest); idErr == nil {
			return core.Addr{ID: id}, nil
		}
	}
	return core.Addr{}, fmt.Errorf("%w (or a bare node id, found through the dht)", ipv6Hint(err))
}

// targetString is the ADDR form of a parsed target: the node address, or
// the bare node id when it is to be resolved.
func targetString(a core.Addr) string {
	if a.Host == "" {
		return a.ID.String()
	}
	return a.String()
}

// dialResolved dials each address of a resolved node in turn, until one
// answers; every attempt pins the same node id.
func dialResolved(ctx context.Context, r *resolved, dial func(context.Context, core.Addr) (core.Conn, error)) (core.Conn, error) {
	var errs []error
	for _, a := range r.Addrs {
		if a.ID != r.ID {
			continue // never dial another key than the one asked for
		}
		c, err := dial(ctx, a)
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", a.Host, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("node %s: %w", r.ID, pkarr.ErrNoAddrs)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return nil, fmt.Errorf("node %s (%s): no address answered: %s", r.ID, r.Source, strings.Join(msgs, "; "))
}

func newResolveCmd(g *globals) *cobra.Command {
	var asJSON, dhtOnly bool
	var keyFile string
	cmd := &cobra.Command{
		Use:   "resolve NODEID",
		Short: "Find a node's addresses by its node id (config, then the Mainline DHT)",
		Long: `Find the addresses of the node whose key is NODEID (z-base-32 or hex, or
alknet://NODEID). The [dht] known addresses of config.toml come first; else
the node's signed record is looked up on the Mainline DHT, its signature
checked against NODEID, and the newest record (highest seq) kept. Prints one
node address <nodeid>@<host>:<port> per line; --json prints the record.

[dht] bootstrap = ["host:port", ...] in config.toml replaces the public
DHT routers. A node publishes its record with alknet serve --publish.
Every command that takes ADDR also takes a bare node id and resolves it
this way; the dial stays pinned to that key.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := parseTarget(args[0])
			if err != nil {
				return err
			}
			if a.Host != "" {
				return fmt.Errorf("%q is already an address; give the node id alone", clipArg(args[0]))
			}
			d, err := g.newDialer(keyFile)
			if err != nil {
				return err
			}
			defer d.Close()
			r, err := g.resolveNode(cmd.Context(), a.ID, dhtOnly, d)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(resolveJSON(r))
			}
			for _, x := range r.Addrs {
				fmt.Fprintln(g.stdout, x)
			}
			if r.Record != nil {
				fmt.Fprintf(g.stderr, "from the %s: seq %d, signed %s, alpns %s\n", r.Source, r.Record.Seq, r.Record.Time().Format(time.RFC3339), strings.Join(r.Record.ALPNs, ","))
			} else {
				fmt.Fprintf(g.stderr, "from [dht] known in %s\n", g.path(configFile))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the record as JSON")
	cmd.Flags().BoolVar(&dhtOnly, "dht", false, "skip [dht] known and ask the DHT")
	cmd.Flags().StringVar(&keyFile, "key", "", "ed25519 private key to present to known nodes (default: the data directory's identity)")
	return cmd
}

// resolveOut is the --json form of alknet resolve.
type resolveOut struct {
	Node        string   `json:"node"`
	Fingerprint string   `json:"fingerprint"`
	Source      string   `json:"source"`
	Addrs       []string `json:"addrs"`
	ALPNs       []string `json:"alpns,omitempty"`
	Seq         int64    `json:"seq,omitempty"`
	Signed      string   `json:"signed,omitempty"`
	TTL         int64    `json:"ttl,omitempty"`
	Packet      []byte   `json:"packet,omitempty"` // pkarr's binary form, base64
}

func resolveJSON(r *resolved) resolveOut {
	out := resolveOut{Node: r.ID.String(), Fingerprint: r.ID.Fingerprint(), Source: r.Source, Addrs: []string{}}
	for _, a := range r.Addrs {
		out.Addrs = append(out.Addrs, a.String())
	}
	if r.Record != nil {
		out.ALPNs = slices.Clone(r.Record.ALPNs)
		out.Seq = r.Record.Seq
		out.Signed = r.Record.Time().Format(time.RFC3339Nano)
		out.TTL = int64(r.Record.TTL / time.Second)
	}
	if r.Packet != nil {
		out.Packet, _ = r.Packet.MarshalBinary()
	}
	return out
}
