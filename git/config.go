package git

import (
	"log/slog"
	"path"
)

// ALPN is the protocol string of git over QUIC: each stream carries one
// git-daemon request and then the pack protocol.
const ALPN = "alknet/git"

// Config configures a Server.
type Config struct {
	// Root is the directory that holds the bare repositories; created (0700)
	// when missing. Required.
	Root string
	// Logger receives request results. Nil is silent.
	Logger *slog.Logger
	// MaxRequestLine bounds the request pkt-line in bytes, its four length
	// digits included. Zero means DefaultMaxRequestLine (4096); negative is
	// an error.
	MaxRequestLine int
	// Protected lists ref patterns (path.Match globs, "refs/heads/main",
	// "refs/tags/*") that a push may create or fast-forward but never
	// delete or rewind. Empty protects nothing.
	Protected []string
	// SkipDeltaCompression sends packs without computing new deltas: faster
	// for the server, larger on the wire. False computes deltas.
	SkipDeltaCompression bool
	// SystemGit, when set, is the path of a git binary that serves fetches
	// and clones ("git upload-pack --strict <repo>") instead of go-git: it
	// reuses the repository's packs and deltas and is several times faster
	// on large histories. Pushes always go through go-git, which enforces
	// Protected. Empty means go-git for everything.
	SystemGit string
}

// validate checks the fields that can be wrong.
func (c Config) validate() error {
	if c.Root == "" {
		return errorf("config: Root is required")
	}
	if c.MaxRequestLine < 0 {
		return errorf("config: MaxRequestLine is negative")
	}
	for _, p := range c.Protected {
		if _, err := path.Match(p, "refs/heads/x"); err != nil {
			return errorf("config: protected pattern %q: %v", p, err)
		}
	}
	return nil
}
