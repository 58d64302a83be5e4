package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/msg"
	"github.com/alkdev/alknet/msg/mix"
	"github.com/spf13/cobra"
)

// mixConfig is the [mix] section of config.toml.
//
//	[mix]
//	enabled = true                      # serve alknet/mix as a mix node
//	open = false                        # accept packets from any caller (an entry node)
//	authority = "<nodeid>@host:port"    # directory authority: fetched from with mix/directory
//	directory = "mix-directory"         # or a signed directory file (in the data directory)
//	publish = "mix-directory"           # serve this signed file on mix/directory (the authority)
type mixConfig struct {
	// Enabled serves alknet/mix: this node peels, delays and forwards
	// packets, and serves its mix keys on call operation mix/keys.
	Enabled bool `toml:"enabled"`
	// Open lets any caller, anonymous included, hand packets to this node
	// (an entry node); otherwise callers need scope "mix".
	Open bool `toml:"open"`
	// Authority is the directory authority: a node id (the key the
	// directory must be signed with), or an address, from which the
	// directory is fetched with call operation mix/directory.
	Authority string `toml:"authority"`
	// Directory is a signed directory file (relative paths are in the data
	// directory), re-read when it changes. It must be signed by Authority
	// (or by this node when Authority is empty).
	Directory string `toml:"directory"`
	// Publish serves this signed directory file on mix/directory; it must
	// be signed by this node's key. Without Directory and Authority the
	// node also routes by it.
	Publish string `toml:"publish"`
	// Refresh is how often the directory is fetched or re-read. Zero means
	// 10 minutes.
	Refresh time.Duration `toml:"refresh"`
	// Epoch is the mix key period; it must match the directory's. Zero
	// means one hour.
	Epoch time.Duration `toml:"epoch"`
	// MaxDelay caps the delay a packet asks for. Zero means 10 minutes.
	MaxDelay time.Duration `toml:"max_delay"`
	// Queue bounds the delay queue (packets). Zero means 10000.
	Queue int `toml:"queue"`
	// MeanDelay overrides the directory's mean per-hop delay for messages
	// this node sends (msg send --via-mix). Zero keeps the directory's.
	MeanDelay time.Duration `toml:"mean_delay"`
	// LoopRate and DropRate are cover packets per second (0: none).
	LoopRate float64 `toml:"loop_rate"`
	DropRate float64 `toml:"drop_rate"`
}

// mixAuthority is a parsed Authority: its id, and its address when known.
type mixAuthority struct {
	id   core.NodeID
	addr *core.Addr
}

func (c mixConfig) authority(self core.NodeID) (mixAuthority, error) {
	if c.Authority == "" {
		return mixAuthority{id: self}, nil
	}
	if strings.Contains(c.Authority, "@") {
		a, err := core.ParseAddr(c.Authority)
		if err != nil {
			return mixAuthority{}, fmt.Errorf("[mix] authority: %w", err)
		}
		return mixAuthority{id: a.ID, addr: &a}, nil
	}
	id, err := core.ParseNodeID(c.Authority)
	if err != nil {
		return mixAuthority{}, fmt.Errorf("[mix] authority %q: %w", c.Authority, err)
	}
	return mixAuthority{id: id}, nil
}

func (c mixConfig) validate() error {
	switch {
	case c.Refresh < 0, c.Epoch < 0, c.MaxDelay < 0, c.MeanDelay < 0:
		return errors.New("[mix] refresh, epoch, max_delay and mean_delay must not be negative")
	case c.Epoch != 0 && (c.Epoch < time.Second || c.Epoch%time.Second != 0):
		return fmt.Errorf("[mix] epoch %s: want whole seconds", c.Epoch)
	case c.Queue < 0:
		return errors.New("[mix] queue must not be negative")
	case c.LoopRate < 0 || c.DropRate < 0:
		return errors.New("[mix] loop_rate and drop_rate must not be negative")
	}
	if _, err := c.authority(core.NodeID{}); err != nil {
		return err
	}
	if c.Enabled && c.Authority == "" && c.Directory == "" && c.Publish == "" {
		return errors.New("[mix] enabled needs a directory: set authority, directory or publish")
	}
	return nil
}

func (c mixConfig) epoch() time.Duration {
	if c.Epoch == 0 {
		return mix.DefaultEpochPeriod
	}
	return c.Epoch
}

// dataPath resolves a path of config.toml against the data directory.
func dataPath(g *globals, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return g.path(p)
}

// mixDirSource keeps the current verified directory: from a file, or
// fetched from the authority.
type mixDirSource struct {
	auth   mixAuthority
	file   string
	period time.Duration
	fetch  func(ctx context.Context, a core.Addr) ([]byte, error)
	log    *slog.Logger

	cur     atomic.Pointer[mix.Directory]
	mu      sync.Mutex // serializes loads
	tried   time.Time  // last load attempt
	modTime time.Time  // of the file last loaded
}

// newMixDirSource builds the directory source of cfg. fetch dials an
// authority address; it may be nil when cfg names a file.
func newMixDirSource(g *globals, cfg mixConfig, self core.NodeID, fetch func(ctx context.Context, a core.Addr) ([]byte, error), log *slog.Logger) (*mixDirSource, error) {
	auth, err := cfg.authority(self)
	if err != nil {
		return nil, err
	}
	s := &mixDirSource{auth: auth, period: cfg.epoch(), fetch: fetch, log: log}
	switch {
	case cfg.Directory != "":
		s.file = dataPath(g, cfg.Directory)
	case auth.addr != nil:
	case cfg.Publish != "":
		s.file = dataPath(g, cfg.Publish)
	default:
		return nil, errors.New("no mix directory: set [mix] authority (an address) or directory")
	}
	return s, nil
}

// load reads or fetches the directory and keeps it when it verifies and
// has not gone back in time.
func (s *mixDirSource) load(ctx context.Context) (*mix.Directory, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tried = time.Now()
	var raw []byte
	if s.file != "" {
		st, err := os.Stat(s.file)
		if err != nil {
			return nil, fmt.Errorf("mix directory: %w", err)
		}
		if cur := s.cur.Load(); cur != nil && st.ModTime().Equal(s.modTime) {
			return cur, nil
		}
		if st.Size() > mix.MaxDirectorySize {
			return nil, fmt.Errorf("mix directory %s: %d bytes (limit %d)", s.file, st.Size(), mix.MaxDirectorySize)
		}
		if raw, err = os.ReadFile(s.file); err != nil {
			return nil, fmt.Errorf("mix directory: %w", err)
		}
		s.modTime = st.ModTime()
	} else {
		var err error
		if raw, err = s.fetch(ctx, *s.auth.addr); err != nil {
			return nil, fmt.Errorf("fetch mix directory from %s: %w", s.auth.addr, err)
		}
	}
	d, err := mix.ParseDirectory(raw, s.auth.id)
	if err != nil {
		return nil, err
	}
	if d.Period != s.period {
		return nil, fmt.Errorf("mix directory epoch period %s differs from [mix] epoch %s", d.Period, s.period)
	}
	if cur := s.cur.Load(); cur != nil && d.Issued.Before(cur.Issued) {
		return cur, nil // an older directory than the one held: keep ours
	}
	s.cur.Store(d)
	return d, nil
}

// get returns the current directory. When there is none, or it has no
// keys for the current epoch, it loads one first: a file at once (a stat
// when unchanged), a fetch at most every 250 ms and one at a time (callers
// that waited for another's attempt take its result), waiting up to 5 s.
func (s *mixDirSource) get() *mix.Directory {
	d := s.cur.Load()
	if d != nil && d.Covers(mix.Epoch(time.Now(), d.Period)) {
		return d
	}
	if s.file == "" {
		start := time.Now()
		s.mu.Lock()
		skip := s.tried.After(start) || time.Since(s.tried) < 250*time.Millisecond
		s.mu.Unlock()
		if skip {
			return s.cur.Load()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.load(ctx); err != nil {
		s.log.Debug("mix directory unavailable", "err", err)
	}
	return s.cur.Load()
}

// run reloads the directory every interval until ctx ends.
func (s *mixDirSource) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := s.load(lctx); err != nil && ctx.Err() == nil {
			s.log.Warn("mix directory not refreshed", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fetchMixDirectory calls mix/directory at a.
func fetchMixDirectory(ctx context.Context, ep *core.Endpoint, a core.Addr) ([]byte, error) {
	conn, err := ep.Dial(ctx, a, call.ALPN)
	if err != nil {
		return nil, err
	}
	p := call.NewPeer(conn, call.Config{})
	defer p.Close()
	var out mixDirectoryOutput
	if err := p.Call(ctx, "mix/directory", nil, &out); err != nil {
		return nil, err
	}
	return decodeBase64Limited(out.Directory, mix.MaxDirectorySize)
}

func decodeBase64Limited(s string, limit int) ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(s)) > limit+3 {
		return nil, fmt.Errorf("%d base64 characters: more than %d bytes", len(s), limit)
	}
	return base64.StdEncoding.DecodeString(s)
}

type mixDirectoryOutput struct {
	Directory string `json:"directory"`
}

type mixKeysInput struct {
	First uint32 `json:"first"`
	Count int    `json:"count"`
}

type mixKeysOutput struct {
	Period  uint32   `json:"period"`
	Records []string `json:"records"`
}

// mixState is what the services hook leaves for the started hook.
type mixState struct {
	node *mix.Node
	dir  *mixDirSource
	cfg  mixConfig
}

func init() {
	addExtension(extension{
		name:     "mix",
		commands: func(g *globals) []*cobra.Command { return []*cobra.Command{newMixCmd(g)} },
		apply:    func(cfg *fileConfig) error { return cfg.Mix.validate() },
		services: mixServices,
		started:  mixStarted,
	})
}

// mixServices registers mix/keys and mix/directory and builds the mix
// node when [mix] enabled is set.
func mixServices(env *serveEnv) ([]*service, error) {
	cfg := env.cfg.Mix
	if cfg.Publish != "" {
		path := dataPath(env.g, cfg.Publish)
		self := env.key.NodeID()
		call.Query(env.calls, "mix/directory", func(ctx context.Context, _ struct{}) (mixDirectoryOutput, error) {
			raw, err := os.ReadFile(path)
			if err != nil {
				env.log.Warn("mix directory not served", "err", err)
				return mixDirectoryOutput{}, call.NewError(call.CodeNotFound, "no mix directory published yet")
			}
			if _, err := mix.ParseDirectory(raw, self); err != nil {
				env.log.Warn("mix directory not served", "err", err)
				return mixDirectoryOutput{}, call.NewError(call.CodeUnavailable, "the published mix directory does not verify")
			}
			return mixDirectoryOutput{Directory: base64.StdEncoding.EncodeToString(raw)}, nil
		}, call.Options{Description: "The signed mix directory this node publishes (base64, SPEC of msg/mix).", Errors: []string{call.CodeUnavailable}})
	}
	if !cfg.Enabled {
		return nil, nil
	}
	period := cfg.epoch()
	call.Query(env.calls, "mix/keys", func(ctx context.Context, in mixKeysInput) (mixKeysOutput, error) {
		if in.Count < 1 || in.Count > mix.MaxDirectoryEpochs {
			return mixKeysOutput{}, call.NewError(call.CodeInvalidInput, "count must be 1 to %d", mix.MaxDirectoryEpochs)
		}
		if uint64(in.First)+uint64(in.Count) > 1<<32-1 {
			return mixKeysOutput{}, call.NewError(call.CodeInvalidInput, "epochs beyond the last")
		}
		out := mixKeysOutput{Period: uint32(period / time.Second)}
		for e := in.First; e < in.First+uint32(in.Count); e++ {
			r := mix.SignKeyRecord(env.key, period, e)
			b, _ := r.MarshalBinary()
			out.Records = append(out.Records, base64.StdEncoding.EncodeToString(b))
		}
		return out, nil
	}, call.Options{Description: "This node's signed mix keys for epochs first .. first+count-1."})

	dir, err := newMixDirSource(env.g, cfg, env.key.NodeID(), func(ctx context.Context, a core.Addr) ([]byte, error) {
		return fetchMixDirectory(ctx, env.ep, a)
	}, env.log)
	if err != nil {
		return nil, err
	}
	replay, err := mix.NewReplayStore(context.Background(), env.store)
	if err != nil {
		return nil, err
	}
	node, err := mix.New(mix.Config{
		Key:         env.key,
		Directory:   dir.get,
		Endpoint:    env.ep,
		Replay:      replay,
		Deliver:     mixDeliver(env),
		EpochPeriod: period,
		MaxDelay:    cfg.MaxDelay,
		MaxQueue:    cfg.Queue,
		Open:        cfg.Open,
		LoopRate:    cfg.LoopRate,
		DropRate:    cfg.DropRate,
		Logger:      env.log,
	})
	if err != nil {
		return nil, err
	}
	env.ext["mix"] = &mixState{node: node, dir: dir, cfg: cfg}
	call.Query(env.calls, "mix/stats", func(context.Context, struct{}) (mix.Stats, error) {
		return node.Stats(), nil
	}, call.Options{Description: "This mix node's packet and drop counters.", Access: core.AccessControl{RequiredScopes: []string{"admin"}}})
	acl := core.AccessControl{RequiredScopes: []string{mix.Scope}}
	if cfg.Open {
		acl = core.AccessControl{}
	}
	return []*service{{handler: node, acl: acl}}, nil
}

// mixStarted runs the mix node and the directory refresh.
func mixStarted(ctx context.Context, env *serveEnv) error {
	st, _ := env.ext["mix"].(*mixState)
	if st == nil {
		return nil
	}
	every := st.cfg.Refresh
	if every <= 0 {
		every = 10 * time.Minute
	}
	go st.dir.run(ctx, every)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := st.node.Run(ctx); err != nil {
			env.log.Error("mix node stopped", "err", err)
		}
	}()
	env.closers = append(env.closers, func() error {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			env.log.Warn("mix node did not stop within 10s")
		}
		return nil
	})
	return nil
}

// mixDeliver is the last hop's delivery: the envelope goes to the
// alknet/msg mailbox of the node the packet names (the recipient, or the
// node hosting its mailbox), at the address the sender put in the packet,
// dialed from this node's endpoint, so the mailbox sees the mix node and
// not the sender.
func mixDeliver(env *serveEnv) mix.DeliverFunc {
	return func(ctx context.Context, d mix.Delivery) error {
		if _, err := msg.EnvelopeRecipient(d.Envelope); err != nil {
			return err
		}
		if d.Addr == "" {
			return fmt.Errorf("no address for %s in the packet", d.Recipient)
		}
		a, err := core.ParseAddr(d.Recipient.String() + "@" + d.Addr)
		if err != nil {
			return err
		}
		_, err = msg.DeliverTo(ctx, env.ep, a, d.Envelope)
		return err
	}
}

func init() {
	msgSendFlags = func(cmd *cobra.Command) {
		cmd.Flags().Bool("via-mix", false, "send through the mix network of [mix] (one node per layer, random delays); no delivery acknowledgement")
	}
	sendViaMix = msgSendViaMix
}

// msgSendViaMix is alknet msg send --via-mix: the message is sealed as
// usual, wrapped in a Sphinx packet and handed to the first mix node. It is
// not queued in the outbox (the outbox retries directly, which would link
// sender and recipient); the mix network does not acknowledge delivery.
func msgSendViaMix(ctx context.Context, s *msgSend) (msg.MessageID, bool, error) {
	if on, _ := s.cmd.Flags().GetBool("via-mix"); !on {
		return msg.MessageID{}, false, nil
	}
	if s.via.Host == "" {
		return msg.MessageID{}, true, fmt.Errorf("no known address of %s; give NODEID@HOST:PORT", s.via.ID)
	}
	timeout := s.g.connectTimeout
	if timeout <= 0 {
		timeout = defaultDialTimeout
	}
	ep, err := core.NewEndpoint(core.Config{SecretKey: s.key, HandshakeTimeout: timeout})
	if err != nil {
		return msg.MessageID{}, true, err
	}
	defer ep.Close()
	rec, _, err := s.store.CachedKey(ctx, s.to)
	if err != nil {
		if !errors.Is(err, msg.ErrNotFound) {
			return msg.MessageID{}, true, err
		}
		// Fetched directly from a throwaway key: the mailbox node sees a
		// connection from this address, not this node's id.
		anon, err := core.GenerateSecretKey()
		if err != nil {
			return msg.MessageID{}, true, err
		}
		aep, err := core.NewEndpoint(core.Config{SecretKey: anon, HandshakeTimeout: timeout})
		if err != nil {
			return msg.MessageID{}, true, err
		}
		rec, err = s.recipientKey(ctx, aep)
		_ = aep.Close()
		if err != nil {
			return msg.MessageID{}, true, err
		}
		fmt.Fprintf(s.g.stderr, "fetched the message key of %s directly (from a throwaway key)\n", s.to)
	}
	envelope, err := msg.Seal(s.key, rec, s.message)
	if err != nil {
		return msg.MessageID{}, true, err
	}
	route, err := sendViaMixEnvelope(ctx, s.g, ep, s.via.ID, s.via.Host, envelope)
	if err != nil {
		return msg.MessageID{}, true, err
	}
	var total time.Duration
	for _, d := range route.Delays {
		total += d
	}
	fmt.Fprintf(s.g.stderr, "handed to mix node %s (%d hops, %s of delays); the mix network does not acknowledge delivery\n",
		route.Nodes[0].ID, len(route.Nodes), total.Round(time.Millisecond))
	return s.message.ID, true, nil
}

// sendViaMixEnvelope wraps envelope for recipient (reachable at addr, which
// may be empty) and sends it into the mix network of this data directory's
// [mix] section, from endpoint ep. It returns the route taken.
func sendViaMixEnvelope(ctx context.Context, g *globals, ep *core.Endpoint, recipient core.NodeID, addr string, envelope []byte) (mix.Route, error) {
	cfg, err := loadConfig(g.path(configFile), false)
	if err != nil {
		return mix.Route{}, err
	}
	if err := cfg.Mix.validate(); err != nil {
		return mix.Route{}, err
	}
	dir, err := newMixDirSource(g, cfg.Mix, ep.NodeID(), func(ctx context.Context, a core.Addr) ([]byte, error) {
		return fetchMixDirectory(ctx, ep, a)
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		return mix.Route{}, fmt.Errorf("%w (see alknet mix --help)", err)
	}
	d, err := dir.load(ctx)
	if err != nil {
		return mix.Route{}, err
	}
	client := &mix.Client{
		Directory: func() *mix.Directory { return d },
		Forwarder: mix.NewTransport(ep, 0),
		Options:   mix.WrapOptions{MeanDelay: cfg.Mix.MeanDelay},
	}
	return client.Send(ctx, recipient, mix.Message{Addr: addr, Envelope: envelope})
}

func newMixCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mix",
		Short: "Mix network: directory and keys (alknet/mix)",
		Long: `A mix network hides who sends messages to whom: alknet msg send --via-mix
wraps a sealed message in a fixed-size Sphinx packet that travels through one
mix node per layer, each holding it for a random delay.

A mix node sets in config.toml:

  [mix]
  enabled = true
  authority = "<nodeid>@<host>:<port>"   # where the directory comes from

and gives the other mix nodes scope "mix" (entry nodes may set open = true).
The authority signs the directory with "alknet mix directory sign" and
serves it with [mix] publish = "mix-directory".`,
	}
	cmd.AddCommand(newMixDirectoryCmd(g), newMixKeysCmd(g))
	return cmd
}

func newMixKeysCmd(g *globals) *cobra.Command {
	var epochs int
	var period time.Duration
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Print this node's signed mix keys, one base64 record per line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if epochs < 1 || epochs > mix.MaxDirectoryEpochs {
				return fmt.Errorf("--epochs must be 1 to %d", mix.MaxDirectoryEpochs)
			}
			if period < time.Second || period%time.Second != 0 {
				return fmt.Errorf("--period %s: want whole seconds", period)
			}
			key, err := g.loadNodeKey(false)
			if err != nil {
				return err
			}
			first := mix.Epoch(time.Now(), period)
			for e := first; e < first+uint32(epochs); e++ {
				r := mix.SignKeyRecord(key, period, e)
				b, _ := r.MarshalBinary()
				fmt.Fprintln(g.stdout, base64.StdEncoding.EncodeToString(b))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&epochs, "epochs", 24, "how many epochs, from the current one")
	cmd.Flags().DurationVar(&period, "period", mix.DefaultEpochPeriod, "epoch period")
	return cmd
}

func newMixDirectoryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "directory",
		Short: "Sign and show mix directories",
	}
	cmd.AddCommand(newMixDirectorySignCmd(g), newMixDirectoryShowCmd(g))
	return cmd
}

// parseMixNodeArg parses LAYER:ADDR.
func parseMixNodeArg(s string) (int, core.Addr, error) {
	l, rest, ok := strings.Cut(s, ":")
	layer, err := strconv.Atoi(l)
	if !ok || err != nil || layer < 0 || layer >= mix.MaxHops {
		return 0, core.Addr{}, fmt.Errorf("node %q: want LAYER:<nodeid>@<host>:<port> with LAYER 0 to %d", clipArg(s), mix.MaxHops-1)
	}
	a, err := core.ParseAddr(rest)
	if err != nil {
		return 0, core.Addr{}, ipv6Hint(err)
	}
	return layer, a, nil
}

func newMixDirectorySignCmd(g *globals) *cobra.Command {
	var out string
	var epochs int
	var period, mean time.Duration
	cmd := &cobra.Command{
		Use:   "sign --out FILE LAYER:ADDR...",
		Short: "Fetch each node's mix keys and sign a directory with this node's key",
		Long: `Fetch the mix keys of each node (call operation mix/keys; this node needs
scope "call" there), and write a directory signed with this data directory's
key to FILE (written atomically). Layers are numbered from 0; each needs a
node. The directory holds keys for --epochs epochs from the current one;
sign a new one before it expires. Serve it with [mix] publish = FILE.

  alknet mix directory sign --out mix-directory 0:ADDR_A 1:ADDR_B 2:ADDR_C`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out FILE is required")
			}
			if epochs < 1 || epochs > mix.MaxDirectoryEpochs {
				return fmt.Errorf("--epochs must be 1 to %d", mix.MaxDirectoryEpochs)
			}
			if mean < 0 || mean > time.Hour {
				return fmt.Errorf("--mean %s: want 0 to 1h", mean)
			}
			type arg struct {
				layer int
				addr  core.Addr
			}
			var nodes []arg
			layers := 0
			for _, s := range args {
				l, a, err := parseMixNodeArg(s)
				if err != nil {
					return err
				}
				nodes = append(nodes, arg{l, a})
				layers = max(layers, l+1)
			}
			key, err := g.loadNodeKey(false)
			if err != nil {
				return err
			}
			d, err := g.newDialer("")
			if err != nil {
				return err
			}
			defer d.Close()
			now := time.Now()
			first := mix.Epoch(now, period)
			dir := &mix.Directory{Issued: now, Period: period, FirstEpoch: first, Epochs: epochs, MeanDelay: mean, Layers: layers}
			for _, n := range nodes {
				recs, err := fetchMixKeys(cmd.Context(), d, n.addr, first, epochs)
				if err != nil {
					return err
				}
				dir.Nodes = append(dir.Nodes, mix.DirNode{ID: n.addr.ID, Layer: n.layer, Addr: n.addr.Host, Keys: recs})
			}
			raw, err := mix.SignDirectory(key, dir)
			if err != nil {
				return err
			}
			if err := core.WriteFileAtomic(out, raw, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "signed a directory of %d nodes in %d layers, epochs %d to %d (until %s)\n",
				len(dir.Nodes), layers, first, first+uint32(epochs)-1, dir.Expires().UTC().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the signed directory to")
	cmd.Flags().IntVar(&epochs, "epochs", 24, "epochs the directory carries keys for, from the current one")
	cmd.Flags().DurationVar(&period, "period", mix.DefaultEpochPeriod, "epoch period (as the nodes' [mix] epoch)")
	cmd.Flags().DurationVar(&mean, "mean", 50*time.Millisecond, "mean delay per hop that senders draw from")
	return cmd
}

// fetchMixKeys calls mix/keys at a and checks every record.
func fetchMixKeys(ctx context.Context, d *dialer, a core.Addr, first uint32, n int) ([]mix.KeyRecord, error) {
	conn, err := d.dial(ctx, a.String(), call.ALPN)
	if err != nil {
		return nil, err
	}
	p := call.NewPeer(conn, call.Config{})
	defer p.Close()
	var out mixKeysOutput
	if err := p.Call(ctx, "mix/keys", mixKeysInput{First: first, Count: n}, &out); err != nil {
		return nil, fmt.Errorf("mix keys of %s: %w", a.ID, describeCall(err))
	}
	if len(out.Records) != n {
		return nil, fmt.Errorf("mix keys of %s: %d records for %d epochs", a.ID, len(out.Records), n)
	}
	recs := make([]mix.KeyRecord, n)
	for i, s := range out.Records {
		b, err := decodeBase64Limited(s, mix.KeyRecordSize)
		if err != nil {
			return nil, fmt.Errorf("mix keys of %s: %w", a.ID, err)
		}
		r, err := mix.ParseKeyRecord(b)
		if err != nil {
			return nil, fmt.Errorf("mix keys of %s: %w", a.ID, err)
		}
		if r.Node != a.ID || r.Epoch != first+uint32(i) {
			return nil, fmt.Errorf("mix keys of %s: record %d is for another node or epoch", a.ID, i)
		}
		recs[i] = r
	}
	return recs, nil
}

func newMixDirectoryShowCmd(g *globals) *cobra.Command {
	var authority string
	cmd := &cobra.Command{
		Use:   "show FILE|ADDR",
		Short: "Verify and print a mix directory, from a file or fetched from its authority",
		Long: `Print a signed mix directory after verifying it: a FILE against --authority
(a node id; default this node), or the directory served by ADDR (call
operation mix/directory) against ADDR's node id.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw []byte
			var auth core.NodeID
			if a, err := core.ParseAddr(args[0]); err == nil && !fileExists(args[0]) {
				d, err := g.newDialer("")
				if err != nil {
					return err
				}
				defer d.Close()
				ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
				defer cancel()
				if raw, err = fetchMixDirectory(ctx, d.ep, a); err != nil {
					return describeCall(err)
				}
				auth = a.ID
			} else {
				st, err := os.Stat(args[0])
				if err != nil {
					return err
				}
				if st.Size() > mix.MaxDirectorySize {
					return fmt.Errorf("%s: %d bytes is more than a directory (%d)", args[0], st.Size(), mix.MaxDirectorySize)
				}
				if raw, err = os.ReadFile(args[0]); err != nil {
					return err
				}
				if authority != "" {
					if auth, err = core.ParseNodeID(authority); err != nil {
						return fmt.Errorf("--authority: %w", err)
					}
				} else {
					key, err := g.loadNodeKey(false)
					if err != nil {
						return fmt.Errorf("%w (or give --authority)", err)
					}
					auth = key.NodeID()
				}
			}
			d, err := mix.ParseDirectory(raw, auth)
			if err != nil {
				return err
			}
			printMixDirectory(g.stdout, d)
			return nil
		},
	}
	cmd.Flags().StringVar(&authority, "authority", "", "node id the directory file must be signed by (default: this node)")
	return cmd
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func printMixDirectory(w io.Writer, d *mix.Directory) {
	fmt.Fprintf(w, "authority  %s\n", d.Authority)
	fmt.Fprintf(w, "issued     %s\n", d.Issued.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "epochs     %d to %d of %s (until %s)\n", d.FirstEpoch, d.FirstEpoch+uint32(d.Epochs)-1, d.Period, d.Expires().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "mean delay %s per hop, %d layers\n", d.MeanDelay, d.Layers)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tNODE\tADDRESS")
	for l := 0; l < d.Layers; l++ {
		for _, n := range d.Nodes {
			if n.Layer == l {
				fmt.Fprintf(tw, "%d\t%s\t%s\n", l, n.ID, n.Addr)
			}
		}
	}
	_ = tw.Flush()
}
