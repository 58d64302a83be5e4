package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/sftp"
	"github.com/spf13/cobra"
)

// sftpConfig is the [sftp] section of config.toml.
type sftpConfig struct {
	// Root is the directory served; default <data>/files.
	Root string `toml:"root"`
	// PerPeerHome jails each peer in <root>/<peer id>.
	PerPeerHome bool `toml:"per_peer_home"`
	// Disabled turns the service off.
	Disabled bool `toml:"disabled"`
	// MaxHandles caps open handles per session; 0 = default (64).
	MaxHandles int `toml:"max_handles"`
	// MaxPeerHandles caps open handles per peer across its sessions;
	// 0 = default (256).
	MaxPeerHandles int `toml:"max_peer_handles"`
	// MaxPeerSessions caps concurrent sessions per peer; 0 = default (64).
	MaxPeerSessions int `toml:"max_peer_sessions"`
	// IdleTimeout closes idle sessions, e.g. "15m"; empty = default.
	IdleTimeout string `toml:"idle_timeout"`
}

// newSFTPServer builds the SFTP backend from the [sftp] section. Other
// services that serve SFTP (the SSH sftp subsystem) call it too, so every
// way in sees the same jail and rules.
func newSFTPServer(env *serveEnv) (*sftp.Server, error) {
	c := env.cfg.SFTP
	root := c.Root
	if root == "" {
		root = env.g.path("files")
	}
	var idle time.Duration
	if c.IdleTimeout != "" {
		d, err := time.ParseDuration(c.IdleTimeout)
		if err != nil {
			return nil, fmt.Errorf("config [sftp] idle_timeout: %w", err)
		}
		idle = d
	}
	srv, err := sftp.New(sftp.Config{
		Root:            root,
		PerPeerHome:     c.PerPeerHome,
		Logger:          env.log,
		MaxHandles:      c.MaxHandles,
		MaxPeerHandles:  c.MaxPeerHandles,
		MaxPeerSessions: c.MaxPeerSessions,
		IdleTimeout:     idle,
	})
	if err != nil {
		return nil, err
	}
	env.closers = append(env.closers, srv.Close)
	return srv, nil
}

// sftpService is the serviceBuilders entry for alknet/sftp, gated on scope
// sftp.
func sftpService(env *serveEnv) (*service, error) {
	if env.cfg.SFTP.Disabled {
		return nil, nil
	}
	srv, err := newSFTPServer(env)
	if err != nil {
		return nil, err
	}
	return &service{handler: srv, acl: core.AccessControl{RequiredScopes: []string{sftp.ScopeRead}}}, nil
}

func newSFTPCmd(g *globals) *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "sftp ADDR [sftp options]",
		Short: "Open OpenSSH's sftp on a node's files (alknet/sftp)",
		Long: `Run OpenSSH's sftp client against ADDR's alknet/sftp service:

  sftp -D "alknet pipe --alpn alknet/sftp ADDR" [sftp options]

Options after ADDR go to sftp (for example -b batchfile). Needs OpenSSH's
sftp client (Debian/Ubuntu: apt-get install openssh-client). sftp splits
the -D command at spaces, so the binary path, --data and --key must not
contain spaces.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bin, err := exec.LookPath("sftp")
			if err != nil {
				return errors.New("OpenSSH's sftp client is not installed (Debian/Ubuntu: apt-get install openssh-client; Fedora: dnf install openssh-clients; macOS ships it)")
			}
			if _, err := parseTarget(args[0]); err != nil {
				return err
			}
			proxy, err := g.pipeCommand(sftp.ALPN, keyFile, args[0])
			if err != nil {
				return err
			}
			c := exec.CommandContext(cmd.Context(), bin, append([]string{"-D", proxy}, args[1:]...)...)
			c.Stdin, c.Stdout, c.Stderr = g.stdin, g.stdout, g.stderr
			if err := c.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return exitCode(ee.ExitCode())
				}
				return err
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&keyFile, "key", "", "ed25519 private key to present (default: the data directory's identity)")
	return cmd
}

// pipeCommand is the `alknet pipe` command line (for sftp -D or
// ProxyCommand) that reaches alpn at addr with this binary, data
// directory and key.
func (g *globals) pipeCommand(alpn, keyFile, addr string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own binary: %w", err)
	}
	data, err := filepath.Abs(g.dataDir)
	if err != nil {
		return "", err
	}
	parts := []string{self, "--data", data, "--log-level", "error", "pipe", "--alpn", alpn}
	if keyFile != "" {
		k, err := filepath.Abs(keyFile)
		if err != nil {
			return "", err
		}
		parts = append(parts, "--key", k)
	}
	parts = append(parts, addr)
	for _, p := range parts {
		if strings.ContainsAny(p, " \t\n\"'") {
			return "", fmt.Errorf("cannot pass %q to sftp -D: it contains spaces or quotes", p)
		}
	}
	return strings.Join(parts, " "), nil
}
