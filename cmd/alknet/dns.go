package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
	"github.com/alkdev/alknet/dns"
	"github.com/alkdev/alknet/dns/pkarr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// dnsConfig is the [dns] section of config.toml.
type dnsConfig struct {
	// Disabled turns the DNS server off: no doq ALPN, no classic listener,
	// no dns/* operations.
	Disabled bool `toml:"disabled"`
	// Listen is the address of the classic DNS listener, UDP and TCP on
	// the same port ("127.0.0.1:5353"). Empty means none; serve
	// --dns-listen overrides it.
	Listen string `toml:"listen"`
	// Forward lists upstream resolvers for names outside the local zones
	// ("udp://host[:port]", "tcp://...", "doq://host[:port][#tls-name]").
	// Empty means no forwarding: such names are refused.
	Forward []string `toml:"forward"`
	// ForwardCA is a PEM file of CA certificates that verify doq://
	// upstreams instead of the system roots.
	ForwardCA string `toml:"forward_ca"`
	// MaxStreams is how many queries one DoQ connection may have in
	// progress; zero means the dns module's default.
	MaxStreams int `toml:"max_streams"`
	// Publish is [dht] publish by another name: publish the node's signed
	// record on the DHT and serve it in every local zone as
	// <z32 nodeid>.<zone>.
	Publish bool `toml:"publish"`
}

// dnsExtension is what the dns extension keeps in env.ext["dns"] for other
// parts of the binary: the zone store that the servers follow (PutRRset and
// PutName serve records a program computes) and the server.
type dnsExtension struct {
	store    *dns.Store
	server   *dns.Server
	listener *dns.Listener
}

func init() {
	var listen string
	addExtension(extension{
		name:     "dns",
		commands: func(g *globals) []*cobra.Command { return []*cobra.Command{newDNSCmd(g)} },
		serveFlags: func(fs *pflag.FlagSet) {
			fs.StringVar(&listen, "dns-listen", "", `classic DNS (UDP and TCP) address, e.g. 127.0.0.1:5353 (overrides [dns] listen)`)
		},
		apply: func(cfg *fileConfig) error {
			if listen != "" {
				cfg.DNS.Listen = listen
			}
			if cfg.DNS.Publish {
				cfg.DHT.Publish = true
			}
			return nil
		},
		services: dnsServices,
		started:  dnsStarted,
	})
}

// dnsServices builds the DoQ handler over the zones of the node database,
// the forwarder, the classic listener (bound now, so that a busy port fails
// the start) and the dns/* call operations.
func dnsServices(env *serveEnv) ([]*service, error) {
	cfg := env.cfg.DNS
	if cfg.Disabled {
		return nil, nil
	}
	ctx := context.Background()
	st, err := dns.NewStore(ctx, env.store, dns.StoreConfig{Follow: true, Logger: env.log})
	if err != nil {
		return nil, err
	}
	env.closers = append(env.closers, st.Close)
	var fwd dns.Exchanger
	if len(cfg.Forward) > 0 {
		var roots *x509.CertPool
		if cfg.ForwardCA != "" {
			pem, err := os.ReadFile(cfg.ForwardCA)
			if err != nil {
				return nil, fmt.Errorf("[dns] forward_ca: %w", err)
			}
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("[dns] forward_ca %s: no PEM certificate", cfg.ForwardCA)
			}
		}
		f, err := dns.NewForwarder(dns.ForwardConfig{Upstreams: cfg.Forward, RootCAs: roots, Logger: env.log})
		if err != nil {
			return nil, fmt.Errorf("[dns] forward: %w", err)
		}
		env.closers = append(env.closers, f.Close)
		fwd = f
	}
	srv, err := dns.NewServer(dns.Config{Handler: dns.NewResolver(st, fwd), Logger: env.log, MaxStreams: cfg.MaxStreams})
	if err != nil {
		return nil, err
	}
	x := &dnsExtension{store: st, server: srv}
	if cfg.Listen != "" {
		l, err := srv.ListenClassic(cfg.Listen)
		if err != nil {
			return nil, err
		}
		x.listener = l
		env.closers = append(env.closers, l.Close)
	}
	env.ext["dns"] = x
	registerDNSOps(env.calls, st)
	// The dht extension's services run first: when it publishes the node's
	// record, serve the same record from every local zone.
	if d, ok := env.ext["dht"].(*dhtState); ok {
		d.OnPublish(func(p *pkarr.SignedPacket) { serveNodeRecord(env.log, st, p) })
	}
	// DoQ is public DNS: open to anonymous callers (core's anonymous caps
	// apply), like a resolver on port 853.
	return []*service{{handler: srv, acl: core.AccessControl{}}}, nil
}

// serveNodeRecord puts the node's published record at <z32 nodeid>.<zone>
// in each zone of st, replacing the previous one.
func serveNodeRecord(log *slog.Logger, st *dns.Store, p *pkarr.SignedPacket) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, err := p.Record()
	if err != nil {
		log.Warn("dns: node record", "err", err)
		return
	}
	zones, err := st.ListZones(ctx)
	if err != nil {
		log.Warn("dns: node record: list zones", "err", err)
		return
	}
	for _, z := range zones {
		rrs, err := rec.RRs(z.Name)
		if err != nil || len(rrs) == 0 {
			log.Warn("dns: node record", "zone", z.Name, "err", err)
			continue
		}
		if err := st.PutName(ctx, rrs[0].Header().Name, rrs); err != nil {
			log.Warn("dns: serve node record", "zone", z.Name, "err", err)
			continue
		}
		log.Info("dns: node record served", "name", rrs[0].Header().Name)
	}
}

// dnsStarted serves the classic listener until shutdown.
func dnsStarted(ctx context.Context, env *serveEnv) error {
	x, ok := env.ext["dns"].(*dnsExtension)
	if !ok || x.listener == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- x.listener.Serve(ctx) }()
	env.closers = append(env.closers, func() error {
		_ = x.listener.Close()
		return <-done
	})
	env.log.Info("dns listening", "udp", x.listener.Addr().String(), "tcp", x.listener.Addr().String())
	return nil
}

// dnsRecordInput is the input of dns/add.
type dnsRecordInput struct {
	Name  string `json:"name" jsonschema:"owner name, e.g. www.example.com"`
	Type  string `json:"type" jsonschema:"record type: A, AAAA, CNAME, TXT, MX, SRV, CAA, HTTPS, SVCB, NS, PTR"`
	Value string `json:"value" jsonschema:"record data in master-file form, e.g. 10 mail.example.com"`
	TTL   uint32 `json:"ttl,omitempty" jsonschema:"seconds; default 300"`
}

type dnsAddOutput struct {
	Record dns.Record `json:"record"`
	Added  bool       `json:"added"`
}

type dnsRmInput struct {
	Name  string `json:"name" jsonschema:"owner name"`
	Type  string `json:"type,omitempty" jsonschema:"only records of this type"`
	Value string `json:"value,omitempty" jsonschema:"only this record (needs type)"`
}

type dnsRmOutput struct {
	Removed int `json:"removed"`
}

type dnsListInput struct {
	Zone string `json:"zone,omitempty" jsonschema:"one zone; all when empty"`
}

type dnsListOutput struct {
	Records []dns.Record `json:"records"`
}

// registerDNSOps adds dns/add, dns/rm and dns/list, gated by dns:update.
func registerDNSOps(reg *call.Registry, st *dns.Store) {
	acl := core.AccessControl{RequiredScopes: []string{"dns:update"}}
	call.Mutation(reg, "dns/add", func(ctx context.Context, in dnsRecordInput) (dnsAddOutput, error) {
		rr, added, err := dnsAdd(ctx, st, in)
		if err != nil {
			return dnsAddOutput{}, dnsCallError(err)
		}
		return dnsAddOutput{Record: rr, Added: added}, nil
	}, call.Options{Description: "Add a record to the zone that holds its name (scope dns:update).", Access: acl})
	call.Mutation(reg, "dns/rm", func(ctx context.Context, in dnsRmInput) (dnsRmOutput, error) {
		n, err := st.Remove(ctx, in.Name, in.Type, in.Value)
		if err != nil {
			return dnsRmOutput{}, dnsCallError(err)
		}
		return dnsRmOutput{Removed: n}, nil
	}, call.Options{Description: "Remove the records at a name, of one type, or one record (scope dns:update).", Access: acl})
	call.Query(reg, "dns/list", func(ctx context.Context, in dnsListInput) (dnsListOutput, error) {
		recs, err := st.Records(ctx, in.Zone)
		if err != nil {
			return dnsListOutput{}, dnsCallError(err)
		}
		if recs == nil {
			recs = []dns.Record{}
		}
		return dnsListOutput{Records: recs}, nil
	}, call.Options{Description: "List the records of a zone, or of all zones (scope dns:update).", Access: acl})
}

func dnsAdd(ctx context.Context, st *dns.Store, in dnsRecordInput) (dns.Record, bool, error) {
	ttl := in.TTL
	if ttl == 0 {
		ttl = dns.DefaultTTL
	}
	rr, err := dns.ParseRecord(in.Name, in.Type, in.Value, ttl)
	if err != nil {
		return dns.Record{}, false, err
	}
	added, err := st.Add(ctx, rr)
	return dns.RecordOf(rr), added, err
}

// dnsCallError maps dns errors to call error codes.
func dnsCallError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "alknet/dns: ")
	switch {
	case errors.Is(err, dns.ErrNotFound):
		return call.NewError(call.CodeNotFound, "%s", msg)
	case errors.Is(err, dns.ErrBadName), errors.Is(err, dns.ErrBadType), errors.Is(err, dns.ErrBadValue),
		errors.Is(err, dns.ErrBadTTL), errors.Is(err, dns.ErrNoZone), errors.Is(err, dns.ErrConflict),
		errors.Is(err, dns.ErrZoneExists), errors.Is(err, dns.ErrTooMany):
		return call.NewError(call.CodeInvalidInput, "%s", msg)
	}
	return err
}

// dnsCmd holds what the dns subcommands share.
type dnsCmd struct{ g *globals }

func newDNSCmd(g *globals) *cobra.Command {
	d := &dnsCmd{g: g}
	cmd := &cobra.Command{
		Use:   "dns",
		Short: "Manage the DNS zones this node serves (in alknet.db)",
		Long: `Manage the zones in <data>/alknet.db that "alknet serve" answers for,
authoritatively, over DNS over QUIC (ALPN doq) and over classic UDP and TCP
(--dns-listen or [dns] listen in config.toml). A change takes effect in a
running node on the same data directory within milliseconds.

  alknet dns zone add example.com
  alknet dns add www.example.com A 192.0.2.1 --ttl 60
  alknet dns add example.com MX 10 mail.example.com
  alknet dns ls example.com
  alknet dns rm www.example.com A

Names are absolute ("www.example.com" is www.example.com.). Record types:
` + strings.Join(dns.SupportedTypes(), ", ") + `. A TXT value that is not in
quotes is one string. Peers with scope dns:update (and call) change records
remotely through the call operations dns/add, dns/rm and dns/list.

[dns] forward = ["udp://192.0.2.53", "doq://dns.example"] in config.toml
sends other names to upstream resolvers, with a cache that honours TTLs.

DoQ is open to anonymous callers (stock resolvers). Queries a resolver
pipelines on one connection beyond [limits] max_anon_streams (default 8)
wait for a slot.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	zone := &cobra.Command{
		Use:   "zone",
		Short: "Create, remove and list zones",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	zone.AddCommand(d.zoneAddCmd(), d.zoneRmCmd(), d.zoneLsCmd())
	cmd.AddCommand(zone, d.addCmd(), d.rmCmd(), d.lsCmd(), d.importCmd(), d.exportCmd())
	return cmd
}

// with opens the node database and the zone store for fn.
func (d *dnsCmd) with(ctx context.Context, fn func(ctx context.Context, st *dns.Store) error) error {
	if err := d.g.prepareDataDir(); err != nil {
		return err
	}
	d.g.checkDatabase()
	db, err := store.New(store.Config{Path: d.g.path(databaseFile)})
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := dns.NewStore(ctx, db, dns.StoreConfig{})
	if err != nil {
		return err
	}
	defer st.Close()
	return dnsError(fn(ctx, st))
}

// dnsError drops the package prefix for the command line.
func dnsError(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(strings.TrimPrefix(err.Error(), "alknet/dns: "))
}

func (d *dnsCmd) zoneAddCmd() *cobra.Command {
	var ns []string
	var mbox string
	var ttl uint32
	cmd := &cobra.Command{
		Use:   "add ZONE",
		Short: "Create a zone with an SOA and NS records",
		Long: `Create ZONE with an SOA and NS records. The name server defaults to the
node's own name in the zone, <nodeid>.ZONE, where the node publishes its
addresses; --ns names others (repeatable). Add address records for a name
server inside the zone with alknet dns add.`,
		Args: exactArgs(1, "dns zone add ZONE [--ns NAME]..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			apex, err := dns.CanonicalName(args[0])
			if err != nil {
				return dnsError(err)
			}
			if len(ns) == 0 {
				// The zone's name server is this node: create its identity
				// on a fresh data directory, as serve would.
				key, err := d.g.loadNodeKey(true)
				if err != nil {
					return err
				}
				ns = []string{key.NodeID().String() + "." + apex}
			}
			return d.with(cmd.Context(), func(ctx context.Context, st *dns.Store) error {
				if err := st.AddZone(ctx, dns.Zone{Name: apex, NS: ns, Mbox: mbox, TTL: ttl}); err != nil {
					return err
				}
				fmt.Fprintln(d.g.stdout, apex)
				fmt.Fprintf(d.g.stderr, "zone %s created; name servers: %s\n", apex, strings.Join(ns, ", "))
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&ns, "ns", nil, "name server of the zone (repeatable; default <nodeid>.ZONE)")
	cmd.Flags().StringVar(&mbox, "mbox", "", "SOA mailbox as a name (default hostmaster.ZONE)")
	cmd.Flags().Uint32Var(&ttl, "ttl", 0, "TTL of the SOA and NS records in seconds (default 3600)")
	return cmd
}

func (d *dnsCmd) zoneRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm ZONE",
		Short: "Delete a zone and its records",
		Args:  exactArgs(1, "dns zone rm ZONE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return d.with(cmd.Context(), func(ctx context.Context, st *dns.Store) error {
				n, err := st.RemoveZone(ctx, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(d.g.stderr, "zone removed with %s\n", plural(n, "record"))
				return nil
			})
		},
	}
}

func (d *dnsCmd) zoneLsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the zones",
		Args:  exactArgs(0, "dns zone ls [--json]"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return d.with(cmd.Context(), func(ctx context.Context, st *dns.Store) error {
				zones, err := st.ListZones(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					if zones == nil {
						zones = []dns.ZoneInfo{}
					}
					return writeJSON(d.g.stdout, struct {
						Zones []dns.ZoneInfo `json:"zones"`
					}{zones})
				}
				tw := tabwriter.NewWriter(d.g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ZONE\tSERIAL\tRECORDS")
				for _, z := range zones {
					fmt.Fprintf(tw, "%s\t%d\t%d\n", z.Name, z.Serial, z.Records)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (d *dnsCmd) addCmd() *cobra.Command {
	var ttl uint32
	cmd := &cobra.Command{
		Use:   "add NAME TYPE VALUE...",
		Short: "Add a record to the zone that holds NAME",
		Long: `Add a record to the zone that holds NAME; the words after TYPE are the
value ("alknet dns add example.com MX 10 mail.example.com"). All records of
the name and type take the new TTL. The record is printed on stdout.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 3 {
				return errors.New("usage: alknet dns add NAME TYPE VALUE... [--ttl S]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			in := dnsRecordInput{Name: args[0], Type: args[1], Value: strings.Join(args[2:], " "), TTL: ttl}
			return d.with(cmd.Context(), func(ctx context.Context, st *dns.Store) error {
				rec, added, err := dnsAdd(ctx, st, in)
				if err != nil {
					return err
				}
				fmt.Fprintln(d.g.stdout, rec.String())
				if !added {
					fmt.Fprintln(d.g.stderr, "the record was there already; its TTL is set")
				}
				return nil
			})
		},
	}
	cmd.Flags().Uint32Var(&ttl, "ttl", dns.DefaultTTL, "TTL in seconds")
	return cmd
}

func (d *dnsCmd) rmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME [TYPE [VALUE...]]",
		Short: "Remove the records at NAME, of one TYPE, or one record",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 {
				return errors.New("usage: alknet dns rm NAME [TYPE [VALUE...]]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var typ, value string
			if len(args) > 1 {
				typ = args[1]
			}
			if len(args) > 2 {
				value = strings.Join(args[2:], " ")
			}
			return d.with(cmd.Context(), func(ctx context.Context, st *dns.Store) error {
				n, err := st.Remove(ctx, args[0], typ, value)
				if err != nil {
					return err
				}
				fmt.Fprintf(d.g.stderr, "removed %s\n", plural(n, "record"))
				return nil
			})
		},
	}
}

func (d *dnsCmd) lsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls [ZONE]",
		Short: "List the records of a zone, or of every zone",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return errors.New("usage: alknet dns ls [ZONE] [--json]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			zone := ""
			if len(args) == 1 {
				zone = args[0]
			}
			return d.with(cmd.Context(), func(ctx context.Context, st *dns.Store) error {
				recs, err := st.Records(ctx, zone)
				if err != nil {
					return err
				}
				if asJSON {
					if recs == nil {
						recs = []dns.Record{}
					}
					return writeJSON(d.g.stdout, dnsListOutput{Records: recs})
				}
				tw := tabwriter.NewWriter(d.g.stdout, 0, 4, 2, ' ', 0)
				for _, r := range recs {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.Name, r.TTL, r.Type, r.Value)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: {\"records\": [{zone, name, type, ttl, value}]}")
	return cmd
}

func (d *dnsCmd) importCmd() *cobra.Command {
	var merge bool
	cmd := &cobra.Command{
		Use:   "import ZONE [FILE]",
		Short: "Load an RFC 1035 master file into ZONE (stdin without FILE)",
		Long: `Load an RFC 1035 master file into ZONE, in one transaction. The file's
records replace the zone's (--merge adds them instead); without an SOA (and
apex NS records) in the file the zone keeps its own. A zone that does not
exist is created from the file's SOA. $INCLUDE is refused.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return errors.New("usage: alknet dns import ZONE [FILE] [--merge]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = d.g.stdin
			if len(args) == 2 && args[1] != "-" {
				f, err := os.Open(args[1])
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			return d.with(cmd.Context(), func(ctx context.Context, st *dns.Store) error {
				n, err := st.Import(ctx, args[0], r, dns.ImportOptions{Merge: merge})
				if err != nil {
					return err
				}
				fmt.Fprintf(d.g.stderr, "imported %s\n", plural(n, "record"))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&merge, "merge", false, "add to the zone's records instead of replacing them")
	return cmd
}

func (d *dnsCmd) exportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export ZONE",
		Short: "Print ZONE as an RFC 1035 master file",
		Args:  exactArgs(1, "dns export ZONE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return d.with(cmd.Context(), func(ctx context.Context, st *dns.Store) error {
				return st.Export(ctx, args[0], d.g.stdout)
			})
		},
	}
}
