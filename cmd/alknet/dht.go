package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

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
	// a node id tries before the DHT.
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
	dht *pkarr.DHT
	pub *pkarr.Publisher // nil unless publishing
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
		started: startDHT,
	})
}

// startDHT runs serve's DHT node when [dht] publish (or --publish) or
// [dht] listen asks for one, and the publisher when publishing.
func startDHT(ctx context.Context, env *serveEnv) error {
	c := env.cfg.DHT
	if !c.Publish && c.Listen == "" {
		return nil
	}
	log := env.log.With("svc", "dht")
	d, err := pkarr.NewDHT(pkarr.DHTConfig{Listen: c.Listen, Bootstrap: c.bootstrap(), Logger: log})
	if err != nil {
		return err
	}
	st := &dhtState{dht: d}
	if c.Publish {
		st.pub, err = pkarr.NewPublisher(pkarr.PublisherConfig{
			Key:    env.key,
			Sink:   d,
			Addrs:  func() []netip.AddrPort { return publishAddrs(env, c.Advertise) },
			ALPNs:  env.ep.ALPNs(),
			Logger: log,
		})
		if err != nil {
			_ = d.Close()
			return err
		}
	}
	env.ext["dht"] = st
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
		if st.pub != nil {
			_ = st.pub.Run(ctx)
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
	Source string         // "config" or "dht"
	Record *pkarr.Record  // the verified record, from the DHT
	Packet *pkarr.SignedPacket
}

// resolveNode finds the addresses of node id: the [dht] known entries of
// config.toml first, then the Mainline DHT (the record's signature is
// verified and the highest seq wins). The node id stays the pin of every
// address returned.
func (g *globals) resolveNode(ctx context.Context, id core.NodeID, skipKnown bool) (*resolved, error) {
	cfg, err := loadConfig(g.path(configFile), false)
	if err != nil {
		return nil, err
	}
	if err := cfg.DHT.check(); err != nil {
		return nil, err
	}
	if !skipKnown {
		var known []core.Addr
		for _, k := range cfg.DHT.Known {
			if a, err := core.ParseAddr(k); err == nil && a.ID == id {
				known = append(known, a)
			}
		}
		if len(known) > 0 {
			return &resolved{ID: id, Addrs: known, Source: "config"}, nil
		}
	}
	log := g.logger()
	d, err := pkarr.NewDHT(pkarr.DHTConfig{Bootstrap: cfg.DHT.bootstrap(), Logger: log.With("svc", "dht")})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	start := time.Now()
	p, err := d.Resolve(ctx, id, 0)
	if err != nil {
		return nil, fmt.Errorf("resolve %s on the dht: %w", id, err)
	}
	rec, err := p.Record()
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", id, err)
	}
	if len(rec.Addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: %w", id, pkarr.ErrNoAddrs)
	}
	log.Debug("resolved node on the dht", "node", id.String(), "seq", p.Seq, "addrs", len(rec.Addrs), "dur", time.Since(start))
	return &resolved{ID: id, Addrs: rec.NodeAddrs(), Source: "dht", Record: &rec, Packet: p}, nil
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
	return nil, fmt.Errorf("node %s (%s): no address answered: %w", r.ID, r.Source, errors.Join(errs...))
}

func newResolveCmd(g *globals) *cobra.Command {
	var asJSON, dhtOnly bool
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
			r, err := g.resolveNode(cmd.Context(), a.ID, dhtOnly)
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
				fmt.Fprintf(g.stderr, "from the dht: seq %d, signed %s, alpns %s\n", r.Record.Seq, r.Record.Time().Format(time.RFC3339), strings.Join(r.Record.ALPNs, ","))
			} else {
				fmt.Fprintf(g.stderr, "from [dht] known in %s\n", g.path(configFile))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the record as JSON")
	cmd.Flags().BoolVar(&dhtOnly, "dht", false, "skip [dht] known and ask the DHT")
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
