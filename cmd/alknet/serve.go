package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

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
	// peers is the live peer table (database + config peers) that the
	// endpoint authorizes with; handlers that authenticate on their own
	// layer (SSH keys, bearer tokens) must use it too, so that a peer added
	// or revoked reaches them.
	peers   *store.PeerStore
	closers []func() error
	git     *git.Server // shared by alknet/git and the ssh exec hook
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
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a node: serve every protocol on one UDP port",
		Long: `Run a node. On a fresh data directory it creates the identity first. It
listens on UDP (default 0.0.0.0:4433, or "listen" in config.toml), prints the
node address <nodeid>@<host>:<port> on stdout, and serves until SIGINT or
SIGTERM, then drains open connections (up to --drain) and exits.

config.toml (in the data directory, or --config) holds "listen" and the
peers allowed in:

  listen = "0.0.0.0:4433"
  [[peers]]
  id = "laptop"
  fingerprints = ["ed25519:<64 hex>"]
  scopes = ["ssh", "sftp"]`,
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
	return cmd
}

func (g *globals) serve(ctx context.Context, cfg fileConfig, listen string, drain time.Duration) error {
	log := g.logger()
	key, err := g.loadNodeKey(true)
	if err != nil {
		return err
	}
	peers, err := cfg.peerEntries()
	if err != nil {
		return err
	}
	env := &serveEnv{g: g, cfg: cfg, key: key, log: log}
	defer func() {
		for i := len(env.closers) - 1; i >= 0; i-- {
			_ = env.closers[i]()
		}
	}()
	peerStore, err := env.openPeerStore(peers)
	if err != nil {
		return err
	}
	env.peers = peerStore
	ep, err := core.NewEndpoint(core.Config{
		ListenAddr: listen,
		SecretKey:  key,
		Identities: peerStore,
		Logger:     log,
	})
	if err != nil {
		return err
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
	errc := make(chan error, 1)
	go func() { errc <- ep.Serve(context.Background()) }()
	select {
	case <-ep.Ready():
	case err := <-errc:
		return err
	}
	fmt.Fprintln(g.stdout, ep.Addr())
	log.Info("serving", "listen", ep.LocalAddr().String(), "node", key.NodeID().String(), "alpns", ep.ALPNs(), "peers", len(peers))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "drain", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := ep.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, core.ErrClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
