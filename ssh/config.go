package ssh

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/alkdev/alknet/core"
)

// ALPN is the protocol string of SSH over QUIC: each stream the client opens
// carries one SSH-2 connection.
const ALPN = "alknet/ssh"

// Scopes the server checks on the identity resolved from the SSH key. The
// gate scope (ScopeSSH) is also needed to authenticate at all.
const (
	ScopeSSH     = "ssh"
	ScopeShell   = "ssh:shell"
	ScopeExec    = "ssh:exec"
	ScopeSFTP    = "ssh:sftp" // the scope the assembly layer gives the sftp subsystem
	ScopeForward = "ssh:forward"
	ScopeListen  = "ssh:listen"
)

// ExitRefused is the exit status of a shell or exec request the caller's
// scopes do not allow; the reason is written to the channel's stderr.
const ExitRefused = 126

// Subsystem serves one named subsystem request ("sftp").
type Subsystem struct {
	// Scope the identity must hold; empty means the gate scope is enough.
	Scope string
	// Serve runs the subsystem on ch until it is done. ch reads the client's
	// data (io.EOF when the client sends EOF) and writes to it; Close ends
	// the channel. A nil error is reported to the client as exit status 0, an
	// error as exit status 1 (the error is logged, not sent).
	Serve func(ctx context.Context, ch io.ReadWriteCloser, id *Identity) error
}

// Identity is the identity an SSH key resolved to. It is core.Identity.
type Identity = core.Identity

// ExecIO is the channel an in-process exec handler talks to.
type ExecIO struct {
	Stdin  io.Reader // the client's data; io.EOF once the client sends EOF
	Stdout io.Writer // channel data
	Stderr io.Writer // extended data (stderr)
	Env    []string  // "NAME=value" pairs the client sent that passed the allowlist
}

// ExecHandler serves one exec request in-process and returns the exit
// status to report. A non-nil error is logged and reported as status 1.
type ExecHandler func(ctx context.Context, stdio ExecIO) (status int, err error)

// ExecHook lets the assembly layer serve selected commands in-process. It is
// called for every exec request with the command line and the caller's
// identity; it returns ok=false to leave the command to the operating
// system. A command it takes is not subject to ScopeExec: the hook does its
// own authorization (git checks repository resources).
type ExecHook func(ctx context.Context, cmd string, id *Identity) (h ExecHandler, ok bool)

// Config configures a Server. The zero value of every field but HostKey is
// usable: it authenticates no one (no Identities) and forwards anywhere a
// caller with ScopeForward asks.
type Config struct {
	// HostKey is the node key; its public half is the SSH host key, so the
	// host key is the node id. Required.
	HostKey core.SecretKey
	// Identities resolves the fingerprint of the client's SSH key
	// ("ed25519:<hex>"). Nil means no key authenticates.
	Identities core.IdentityProvider
	// Logger receives auth results and session events. Nil is silent.
	Logger *slog.Logger

	// Subsystems maps a subsystem name ("sftp") to its handler.
	Subsystems map[string]Subsystem
	// Exec, when set, may serve exec requests in-process.
	Exec ExecHook
	// HomeDir returns a peer's home: the working directory of its shell and
	// exec sessions. The assembly layer points it at the directory the
	// peer's SFTP sessions land in, so that "scp f box:" and "ssh box ls"
	// see the same files. $HOME stays the server user's home (its dotfiles
	// configure the shell; files a peer can upload never do). An error
	// refuses the session with ExitRefused and "no home directory" on
	// stderr (the error is logged). Nil means the server user's home.
	HomeDir func(id *Identity) (string, error)
	// Shell is the program for shell sessions and, with -c, exec requests.
	// Empty means the server user's login shell from /etc/passwd, else
	// $SHELL, else /bin/sh.
	Shell string

	// ForwardAllow restricts direct-tcpip destinations (ssh -L, ssh -D). The
	// rules are evaluated in order and the first match decides; when the list
	// is non-empty, a destination no rule matches is denied, and so are
	// zoned addresses and 0.0.0.0/8 but 0.0.0.0 (which, like ::, is checked
	// and dialed as loopback). Empty means any destination. See ParseRule
	// and Allowed.
	ForwardAllow []Rule
	// Resolver resolves the host names of direct-tcpip destinations when
	// ForwardAllow is set; each name is resolved once and the addresses it
	// returns are checked and dialed. Nil means net.DefaultResolver.
	Resolver Resolver
	// AllowRemoteBind lets tcpip-forward (ssh -R) listen on non-loopback
	// addresses. False means loopback only ("localhost", "" and loopback
	// IPs; other addresses are refused).
	AllowRemoteBind bool

	// Ciphers are the SSH ciphers offered, in x/crypto/ssh names. Empty
	// means AES-GCM and AES-CTR only: the client's preference decides, and
	// OpenSSH prefers chacha20-poly1305, whose Go implementation runs at
	// about half the speed of hardware AES; add
	// "chacha20-poly1305@openssh.com" on machines without AES instructions.
	Ciphers []string

	// MaxAuthTries caps authentication attempts per connection. Zero means
	// 6; negative is invalid.
	MaxAuthTries int
	// HandshakeTimeout bounds the SSH handshake and authentication. Zero
	// means 30s; negative means no limit.
	HandshakeTimeout time.Duration
	// IdleTimeout closes an SSH connection with no traffic in either
	// direction for this long (client keep-alives count as traffic). Zero
	// means 1h; negative means no limit.
	IdleTimeout time.Duration
	// MaxSessions caps concurrent session channels per SSH connection. Zero
	// means 10; negative means no limit.
	MaxSessions int
	// MaxForwards caps concurrent forwarding channels (direct-tcpip and
	// forwarded-tcpip) per SSH connection. Zero means 256; negative means no
	// limit.
	MaxForwards int
	// MaxListeners caps concurrent tcpip-forward listeners per SSH
	// connection. Zero means 16; negative means no limit.
	MaxListeners int
	// DialTimeout bounds the TCP connect of a direct-tcpip channel. Zero
	// means 10s.
	DialTimeout time.Duration
	// KillGrace is how long a process gets after SIGHUP, when its channel or
	// connection goes away, before SIGKILL. Zero means 2s.
	KillGrace time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.HostKey.IsZero() {
		return c, ErrNoHostKey
	}
	if c.MaxAuthTries < 0 {
		return c, fmt.Errorf("%w: MaxAuthTries %d", ErrInvalidConfig, c.MaxAuthTries)
	}
	if c.MaxAuthTries == 0 {
		c.MaxAuthTries = 6
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
		if *d < 0 {
			*d = 0
		}
	}
	dur(&c.HandshakeTimeout, 30*time.Second)
	dur(&c.IdleTimeout, time.Hour)
	dur(&c.DialTimeout, 10*time.Second)
	dur(&c.KillGrace, 2*time.Second)
	lim := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	lim(&c.MaxSessions, 10)
	lim(&c.MaxForwards, 256)
	lim(&c.MaxListeners, 16)
	for name, sub := range c.Subsystems {
		if sub.Serve == nil {
			return c, fmt.Errorf("%w: subsystem %q has no Serve", ErrInvalidConfig, name)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
