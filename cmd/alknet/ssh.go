package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alkdev/alknet/core"
	alkssh "github.com/alkdev/alknet/ssh"
	"github.com/spf13/cobra"
	gossh "golang.org/x/crypto/ssh"
)

// sshConfig is the [ssh] section of config.toml.
type sshConfig struct {
	// Disabled turns the service off.
	Disabled bool `toml:"disabled"`
	// ForwardAllow restricts ssh -L / -D destinations: rules like
	// "10.0.0.0/8:22", "*.internal:443", "!10.0.0.1", first match decides,
	// default deny when set; empty allows any destination.
	ForwardAllow []string `toml:"forward_allow"`
	// AllowRemoteBind lets ssh -R listen on non-loopback addresses.
	AllowRemoteBind bool `toml:"allow_remote_bind"`
	// Shell overrides the login shell of the server user.
	Shell string `toml:"shell"`
	// IdleTimeout closes SSH connections without traffic, e.g. "30m";
	// empty = 1h, "0" = default, a negative value disables.
	IdleTimeout string `toml:"idle_timeout"`
	// MaxSessions caps session channels per SSH connection; 0 = 10.
	MaxSessions int `toml:"max_sessions"`
	// DisableSFTP turns the sftp subsystem (and so scp and sftp) off.
	DisableSFTP bool `toml:"disable_sftp"`
}

// sshService is the serviceBuilders entry for alknet/ssh, gated on scope
// ssh. The SSH layer resolves the client's SSH key through the same peers as
// the endpoint.
func sshService(env *serveEnv) (*service, error) {
	c := env.cfg.SSH
	if c.Disabled {
		return nil, nil
	}
	rules, err := alkssh.ParseRules(c.ForwardAllow)
	if err != nil {
		return nil, fmt.Errorf("config [ssh] forward_allow: %w", err)
	}
	var idle time.Duration
	if c.IdleTimeout != "" {
		if idle, err = time.ParseDuration(c.IdleTimeout); err != nil {
			return nil, fmt.Errorf("config [ssh] idle_timeout: %w", err)
		}
	}
	var ids core.IdentityProvider = env.peers
	if env.peers == nil {
		peers, err := env.cfg.peerEntries()
		if err != nil {
			return nil, err
		}
		ids = core.StaticPeers(peers)
	}
	cfg := alkssh.Config{
		HostKey:         env.key,
		Identities:      ids,
		Logger:          env.log,
		ForwardAllow:    rules,
		AllowRemoteBind: c.AllowRemoteBind,
		Shell:           c.Shell,
		IdleTimeout:     idle,
		MaxSessions:     c.MaxSessions,
	}
	if !c.DisableSFTP && !env.cfg.SFTP.Disabled {
		files, err := newSFTPServer(env)
		if err != nil {
			return nil, err
		}
		cfg.Subsystems = map[string]alkssh.Subsystem{
			"sftp": {Scope: alkssh.ScopeSFTP, Serve: files.ServeSession},
		}
	}
	// git-upload-pack and git-receive-pack run in-process on the git
	// backend, with its access rules.
	if cfg.Exec, err = gitExecHook(env); err != nil {
		return nil, err
	}
	srv, err := alkssh.New(cfg)
	if err != nil {
		return nil, err
	}
	if env.peers != nil {
		// The SSH key may differ from the QUIC key the endpoint re-checks:
		// a removed or changed peer's SSH sessions are closed too.
		remove := env.peers.OnReload(func() { srv.Reauthorize() })
		env.closers = append(env.closers, func() error { remove(); return nil })
	}
	return &service{handler: srv, acl: core.AccessControl{RequiredScopes: []string{alkssh.ScopeSSH}}}, nil
}

func newSSHConfigCmd(g *globals) *cobra.Command {
	var name, keyFile string
	var knownHostsOnly bool
	cmd := &cobra.Command{
		Use:   "ssh-config ADDR",
		Short: "Print an OpenSSH Host block and known_hosts line for a node",
		Long: `Print what OpenSSH needs to reach ADDR's alknet/ssh service: a Host block
for ~/.ssh/config (ProxyCommand runs this binary's pipe; HostKeyAlias
names the node) and the known_hosts line of the node's host key, which is its
node id. After adding both, "ssh NAME" works with StrictHostKeyChecking yes.

--key (default ~/.ssh/id_ed25519) must be an unencrypted OpenSSH ed25519 key:
it is both the QUIC identity of the pipe and the SSH key, so one peer entry
with its fingerprint (ed25519:<hex of the public key>) admits both layers.
The peer needs scope ssh, plus ssh:shell, ssh:exec, ssh:sftp, ssh:forward
or ssh:listen for what it may do.

  alknet ssh-config --name box ADDR | sed -n '/^Host/,/^$/p' >> ~/.ssh/config
  alknet ssh-config --known-hosts ADDR >> ~/.ssh/known_hosts`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := core.ParseAddr(args[0])
			if err != nil {
				return err
			}
			line, err := knownHostsLine(addr.ID)
			if err != nil {
				return err
			}
			if knownHostsOnly {
				fmt.Fprintln(g.stdout, line)
				return nil
			}
			if name == "" {
				name = "alknet-" + addr.ID.String()[:8]
			}
			if strings.ContainsAny(name, " \t\n*?!,") {
				return fmt.Errorf("--name %q: a host name cannot contain spaces, commas or patterns", name)
			}
			if keyFile == "" {
				home, err := os.UserHomeDir()
				if err != nil {
					return fmt.Errorf("find home directory: %w (pass --key)", err)
				}
				keyFile = filepath.Join(home, ".ssh", "id_ed25519")
			}
			key, err := filepath.Abs(keyFile)
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find own binary: %w", err)
			}
			proxy := strings.Join([]string{
				sshConfigWord(self), "--log-level", "error", "pipe", "--alpn", alkssh.ALPN,
				"--key", sshConfigWord(key), addr.String(),
			}, " ")
			fmt.Fprintf(g.stdout, "# ~/.ssh/config\nHost %s\n", name)
			fmt.Fprintf(g.stdout, "    ProxyCommand %s\n", proxy)
			fmt.Fprintf(g.stdout, "    HostKeyAlias %s\n", addr.ID)
			fmt.Fprintf(g.stdout, "    IdentityFile %s\n", sshConfigWord(key))
			fmt.Fprintf(g.stdout, "    IdentitiesOnly yes\n")
			// AES-GCM first: the QUIC layer already authenticates every
			// packet, and AES-GCM is the cheapest SSH cipher on both ends
			// (the default aes-ctr + hmac-sha2 costs a separate MAC pass).
			fmt.Fprintf(g.stdout, "    Ciphers ^aes128-gcm@openssh.com,aes256-gcm@openssh.com\n\n")
			fmt.Fprintf(g.stdout, "# ~/.ssh/known_hosts\n%s\n", line)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "Host name to use with ssh (default alknet-<first 8 characters of the node id>)")
	cmd.Flags().StringVar(&keyFile, "key", "", "OpenSSH ed25519 private key for both layers (default ~/.ssh/id_ed25519)")
	cmd.Flags().BoolVar(&knownHostsOnly, "known-hosts", false, "print only the known_hosts line")
	return cmd
}

// knownHostsLine is "<node id> ssh-ed25519 AAAA...": the node id is the
// HostKeyAlias and the key is the node id's key.
func knownHostsLine(id core.NodeID) (string, error) {
	pk, err := gossh.NewPublicKey(id.PublicKey())
	if err != nil {
		return "", err
	}
	return id.String() + " " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pk))), nil
}

// sshConfigWord quotes s for ssh_config: '%' is doubled (ssh expands %
// tokens) and a word with shell-special characters is single-quoted, as
// ProxyCommand runs through the shell.
func sshConfigWord(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if strings.ContainsAny(s, " \t'\"\\$`;&|<>()*?[]#~!{}") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
