package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
	"github.com/alkdev/alknet/git"
	"github.com/spf13/cobra"
)

// serveEnv is what a service builder gets to construct its handler.
type serveEnv struct {
	g     *globals
	cfg   fileConfig
	key   core.SecretKey
	log   *slog.Logger
	ep    *core.Endpoint
	store *store.DB // the node database, <data>/alknet.db
	// peers is the live peer table (database + config peers, and the
	// node's own key as the owner unless config.toml turns that off) that
	// the endpoint authorizes with; handlers that authenticate on their own
	// layer (SSH keys, bearer tokens) must use it too, so that a peer added
	// or revoked reaches them.
	peers   *nodePeers
	closers []func() error
	git     *git.Server // shared by alknet/git and the ssh exec hook
	// calls is the node's call registry, served on alknet/call; services
	// register their operations on it while they are built.
	calls *call.Registry
	// ext holds state an extension keeps between its services and started
	// hooks, under the extension's name.
	ext map[string]any
}

// service is one handler the binary serves and the gate in front of it.
type service struct {
	handler core.ProtocolHandler
	acl     core.AccessControl
}

// serviceBuilders lists every protocol the binary serves, in order. A builder
// returns nil when its service is disabled by configuration.
func serviceBuilders() []func(env *serveEnv) (*service, error) {
	return []func(env *serveEnv) (*service, error){
		func(*serveEnv) (*service, error) { return &service{handler: core.Ping{}}, nil },
		sftpService,
		sshService,
		callService,
		gitService,
	}
}

func newServeCmd(g *globals) *cobra.Command {
	var listen, configPath string
	var drain time.Duration
	var pub publicFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a node: serve every protocol on one UDP port",
		Long: `Run a node. On a fresh data directory it creates the identity first. It
listens on UDP (default 0.0.0.0:4433, or "listen" in config.toml), prints the
node address <nodeid>@<host>:<port> on stdout (one line per address: bound to
0.0.0.0 or ::, every interface address, loopback last), and serves until
SIGINT or SIGTERM, then drains open connections (up to --drain) and exits; a
second signal closes them at once. The data directory is locked while it
runs.

The node's own key is its owner: an implicit peer "owner" with every scope,
so alknet call, cp and sftp work from the node's own data directory.
"[owner] enabled = false" in config.toml turns that off.

config.toml (in the data directory, or --config) holds "listen" and the
peers allowed in:

  listen = "0.0.0.0:4433"
  [[peers]]
  id = "laptop"
  fingerprints = ["ed25519:<64 hex>"]
  scopes = ["ssh", "sftp"]

It also listens on TCP+TLS on the same port number (--no-tcp turns that
off) for networks that block UDP. --tls-cert/--tls-key (or [[tls]] tables
with cert and key in config.toml) add ordinary X.509 certificates that
clients asking for one of their DNS names (SNI) get; everyone else gets the
node's ed25519 certificate. --acme-domain (or [acme] domains = [...])
gets certificates from Let's Encrypt through TLS-ALPN-01, which needs the
node on port 443; they are kept in <data>/acme.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			explicit := configPath != ""
			if !explicit {
				configPath = g.path(configFile)
			}
			cfg, err := loadConfig(configPath, explicit)
			if err != nil {
				return err
			}
			if err := pub.apply(&cfg, configPath, g.path("acme")); err != nil {
				return err
			}
			for _, x := range extensions {
				if x.apply != nil {
					if err := x.apply(&cfg); err != nil {
						return err
					}
				}
			}
			if listen == "" {
				listen = cfg.Listen
			}
			if listen == "" {
				listen = "0.0.0.0:4433"
			}
			return g.serve(cmd.Context(), cfg, listen, drain)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "UDP address to listen on (default 0.0.0.0:4433)")
	cmd.Flags().StringVar(&configPath, "config", "", "config file (default <data>/config.toml)")
	cmd.Flags().DurationVar(&drain, "drain", 10*time.Second, "how long to wait for open connections on shutdown")
	pub.register(cmd)
	for _, x := range extensions {
		if x.serveFlags != nil {
			x.serveFlags(cmd.Flags())
		}
	}
	return cmd
}

func (g *globals) serve(ctx context.Context, cfg fileConfig, listen string, drain time.Duration) error {
	log := g.logger()
	if err := g.prepareDataDir(); err != nil {
		return err
	}
	lock, err := g.lockDataDir()
	if err != nil {
		return err
	}
	defer lock.Release()
	key, err := g.loadNodeKey(true)
	if err != nil {
		return err
	}
	static, err := cfg.peerEntries()
	if err != nil {
		return err
	}
	env := &serveEnv{g: g, cfg: cfg, key: key, log: log, calls: call.NewRegistry(log), ext: map[string]any{}}
	defer func() {
		for i := len(env.closers) - 1; i >= 0; i-- {
			_ = env.closers[i]()
		}
	}()
	g.checkDatabase()
	peerStore, err := env.openPeerStore(static)
	if err != nil {
		return err
	}
	env.peers = newNodePeers(peerStore, key, cfg.Owner.enabled())
	epCfg := core.Config{
		ListenAddr: listen,
		SecretKey:  key,
		Identities: env.peers,
		Logger:     log,
		ListenTCP:  !cfg.noTCP,
		TLSCerts:   cfg.tlsCerts,
		ACME:       cfg.acme,
	}
	cfg.Limits.apply(&epCfg)
	ep, err := core.NewEndpoint(epCfg)
	if err != nil {
		return listenError(listen, err)
	}
	env.ep = ep
	peerStore.OnReload(func() { ep.Reauthorize() })
	for _, build := range serviceBuilders() {
		svc, err := build(env)
		if err != nil {
			_ = ep.Close()
			return err
		}
		if svc != nil {
			ep.Register(svc.handler, svc.acl)
		}
	}
	for _, x := range extensions {
		if x.services == nil {
			continue
		}
		svcs, err := x.services(env)
		if err != nil {
			_ = ep.Close()
			return fmt.Errorf("%s: %w", x.name, err)
		}
		for _, svc := range svcs {
			if svc != nil {
				ep.Register(svc.handler, svc.acl)
			}
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- ep.Serve(context.Background()) }()
	select {
	case <-ep.Ready():
	case err := <-errc:
		return err
	}
	addrs, err := nodeAddrs(ep.Addr(), listen)
	if err != nil {
		log.Warn("list interface addresses", "err", err)
	}
	for _, a := range addrs {
		fmt.Fprintln(g.stdout, a)
	}
	extCtx, stopExt := context.WithCancel(context.Background())
	defer stopExt()
	for _, x := range extensions {
		if x.started == nil {
			continue
		}
		if err := x.started(extCtx, env); err != nil {
			stopExt()
			_ = ep.Close()
			<-errc
			return fmt.Errorf("%s: %w", x.name, err)
		}
	}
	dbPeers, cfgPeers := countPeers(ctx, peerStore)
	log.Info("serving", "listen", ep.LocalAddr().String(), "node", key.NodeID().String(), "alpns", ep.ALPNs(),
		"peers", dbPeers+cfgPeers, "db_peers", dbPeers, "config_peers", cfgPeers, "owner", env.peers.Owner())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stopExt()
	return g.drain(ep, errc, drain, log)
}

// drain shuts the endpoint down, waiting up to d for open connections; a
// second SIGINT or SIGTERM closes them at once.
func (g *globals) drain(ep *core.Endpoint, errc <-chan error, d time.Duration, log *slog.Logger) error {
	log.Info("shutting down", "drain", d)
	sctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var again os.Signal
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case again = <-g.again:
			log.Warn("second signal: closing open connections now", "signal", again.String())
			cancel()
		case <-stopWatch:
		}
	}()
	err := ep.Shutdown(sctx)
	close(stopWatch)
	<-watched
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, core.ErrClosed) {
		return err
	}
	if again != nil {
		log.Info("stopped without draining")
		return exitCode(128 + signalNumber(again))
	}
	log.Info("stopped")
	return nil
}

// countPeers counts the enabled peers of the database and of the config.
func countPeers(ctx context.Context, ps *store.PeerStore) (db, cfg int) {
	peers, err := ps.ListPeers(ctx)
	if err != nil {
		return 0, 0
	}
	for _, p := range peers {
		switch {
		case !p.Enabled:
		case p.Static:
			cfg++
		default:
			db++
		}
	}
	return db, cfg
}
