package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// globals holds what every command shares: the data directory, standard
// streams and output mode.
type globals struct {
	dataDir  string
	logLevel string
	// passphraseFile unlocks vault.json when the data directory has one.
	passphraseFile string
	// connectTimeout bounds handshakes of commands that dial.
	connectTimeout time.Duration
	stdin          io.Reader
	stdout         io.Writer
	stderr         io.Writer
	// cpuProfile, when set (hidden --cpuprofile), receives a pprof CPU
	// profile of the whole command; stopProfile ends it.
	cpuProfile  string
	stopProfile func()
	// again receives SIGINT and SIGTERM after the first one (which cancels
	// the command's context); a command that drains reads it to stop at once.
	again chan os.Signal
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "alknet",
		Short: "Run and reach alknet nodes: many protocols on one QUIC port under one ed25519 key",
		Long: `alknet serves many protocols on one UDP port. Each protocol is an ALPN
negotiated in the TLS handshake; every node has one ed25519 key that is its
identity on every layer, and authorizes its callers from its own peer table.

A node address is <nodeid>@<host>:<port>; the node id is pinned on every dial.

Everything a node keeps lives in one data directory (--data, default
$XDG_DATA_HOME/alknet or ~/.local/share/alknet).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		CompletionOptions: cobra.CompletionOptions{
			HiddenDefaultCmd: true,
		},
	}
	root.PersistentFlags().StringVar(&g.dataDir, "data", defaultDataDir(), "data directory (identity, database, files)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.passphraseFile, "passphrase-file", "", "0600 file holding the vault passphrase (when the data directory has vault.json; default: prompt)")
	root.PersistentFlags().DurationVar(&g.connectTimeout, "connect-timeout", defaultDialTimeout, "how long a dial waits for the node's handshake")
	root.PersistentFlags().StringVar(&g.cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the command to this file (for performance work)")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if err := g.validate(); err != nil {
			return err
		}
		return g.startProfile()
	}
	root.AddCommand(
		newInitCmd(g),
		newIDCmd(g),
		newServeCmd(g),
		newPingCmd(g),
		newPipeCmd(g),
		newVaultCmd(g),
		newSFTPCmd(g),
		newCpCmd(g),
		newSSHConfigCmd(g),
		newSocksCmd(g),
		newForwardCmd(g),
		newPeerCmd(g),
		newCallCmd(g),
		newVersionCmd(g),
		newGitCmd(g),
	)
	for _, x := range extensions {
		if x.commands != nil {
			root.AddCommand(x.commands(g)...)
		}
	}
	setVersionFlag(root)
	return root
}

// defaultDataDir is $XDG_DATA_HOME/alknet, else ~/.local/share/alknet.
func defaultDataDir() string {
	if d := os.Getenv("ALKNET_DATA"); d != "" {
		return d
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "alknet")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".alknet"
	}
	return filepath.Join(home, ".local", "share", "alknet")
}

// validate checks the global flags before any command runs.
func (g *globals) validate() error {
	if _, err := parseLogLevel(g.logLevel); err != nil {
		return err
	}
	if g.connectTimeout <= 0 {
		return fmt.Errorf("--connect-timeout %s: must be positive, e.g. 10s", g.connectTimeout)
	}
	if g.dataDir == "" {
		return errors.New("--data: empty path")
	}
	return nil
}

// parseLogLevel accepts debug, info, warn and error (any case).
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
}

// logger returns a text logger on stderr at the chosen level.
func (g *globals) logger() *slog.Logger {
	lvl, err := parseLogLevel(g.logLevel)
	if err != nil {
		lvl = slog.LevelInfo // validate has refused it already
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: lvl}))
}

// path joins name to the data directory.
func (g *globals) path(name string) string { return filepath.Join(g.dataDir, name) }

// oneLine folds an error message onto one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
