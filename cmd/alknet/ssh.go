package main

import (
	"errors"
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
	if !env.cfg.SFTP.Disabled {
		files, err := newSFTPServer(env)
		if err != nil {
			return nil, err
		}
		// One home per peer: shells and commands start where the peer's
		// SFTP sessions (subsystem, alknet/sftp, alknet cp) land.
		cfg.HomeDir = files.HomeDir
		if !c.DisableSFTP {
			cfg.Subsystems = map[string]alkssh.Subsystem{
				"sftp": {Scope: alkssh.ScopeSFTP, Serve: files.ServeSession},
			}
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
	var knownHostsOnly, install, tcp bool
	cmd := &cobra.Command{
		Use:   "ssh-config ADDR",
		Short: "Print an OpenSSH Host block for a node and record its host key",
		Long: `Print an OpenSSH Host block that reaches ADDR's alknet/ssh service:
ProxyCommand runs this binary's pipe, HostKeyAlias names the node, and
UserKnownHostsFile names <data>/known_hosts, which this command keeps: it adds
the node's host key (its node id) there once. Stdout is only the Host block,
so appending it to ~/.ssh/config is all OpenSSH needs; "ssh NAME" then works
with StrictHostKeyChecking yes:

  alknet ssh-config --name box --key ~/.ssh/id_ed25519 ADDR >> ~/.ssh/config

--install writes the block into ~/.ssh/config itself, replacing an earlier
block for the same NAME written by --install, so it can be run again.
--known-hosts prints the known_hosts line alone and writes nothing.

--key (default ~/.ssh/id_ed25519) must be an unencrypted OpenSSH ed25519 key:
it is both the QUIC identity of the pipe and the SSH key, so one peer entry
with its fingerprint (ed25519:<hex of the public key>) admits both layers.
The peer needs scope ssh, plus ssh:shell, ssh:exec, ssh:sftp, ssh:forward
or ssh:listen for what it may do.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := parseTarget(args[0])
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
			if name == "" || strings.ContainsAny(name, " \t\n\"'*?!,#") {
				return fmt.Errorf("--name %q: a host name cannot contain spaces, quotes, commas or patterns", name)
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
			if _, err := os.Stat(key); err != nil {
				return fmt.Errorf("--key %s: %w (make one with ssh-keygen -t ed25519)", keyFile, errors.Unwrap(err))
			}
			data, err := filepath.Abs(g.dataDir)
			if err != nil {
				return err
			}
			knownHosts := filepath.Join(data, "known_hosts")
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find own binary: %w", err)
			}
			block, err := sshHostBlock(name, self, key, knownHosts, addr, tcp)
			if err != nil {
				return err
			}
			var configPath string
			if install {
				home, err := os.UserHomeDir()
				if err != nil {
					return fmt.Errorf("find home directory: %w", err)
				}
				configPath = filepath.Join(home, ".ssh", "config")
			}
			// The known_hosts entry comes first: a Host block that names a
			// file without the key would fail under StrictHostKeyChecking.
			if err := os.MkdirAll(data, 0o700); err != nil {
				return fmt.Errorf("create data directory: %w", err)
			}
			added, err := addKnownHost(knownHosts, line)
			if err != nil {
				return err
			}
			if added {
				fmt.Fprintf(g.stderr, "added the host key of %s to %s\n", addr.ID, knownHosts)
			}
			if install {
				if err := installHostBlock(configPath, name, block); err != nil {
					return err
				}
				fmt.Fprintf(g.stderr, "wrote Host %s to %s\n", name, configPath)
				return nil
			}
			fmt.Fprint(g.stdout, block)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "Host name to use with ssh (default alknet-<first 8 characters of the node id>)")
	cmd.Flags().StringVar(&keyFile, "key", "", "OpenSSH ed25519 private key for both layers (default ~/.ssh/id_ed25519)")
	cmd.Flags().BoolVar(&knownHostsOnly, "known-hosts", false, "print only the known_hosts line, write nothing")
	cmd.Flags().BoolVar(&install, "install", false, "write the Host block into ~/.ssh/config (replacing one an earlier --install wrote) instead of printing it")
	cmd.Flags().BoolVar(&tcp, "tcp", false, "reach the node over its TCP+TLS listener (where UDP is blocked): the ProxyCommand runs pipe --tcp")
	return cmd
}

// sshHostBlock is the ssh_config text for one node: a comment line, the
// Host block and a blank line.
func sshHostBlock(name, self, key, knownHosts string, addr core.Addr, tcp bool) (string, error) {
	keyWord, err := sshConfigPath(key)
	if err != nil {
		return "", fmt.Errorf("--key: %w", err)
	}
	khWord, err := sshConfigPath(knownHosts)
	if err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	words := []string{sshConfigWord(self), "--log-level", "error", "pipe", "--alpn", alkssh.ALPN}
	if tcp {
		words = append(words, "--tcp")
	}
	proxy := strings.Join(append(words, "--key", sshConfigWord(key), targetString(addr)), " ")
	var b strings.Builder
	fmt.Fprintf(&b, "# alknet node %s (written by alknet ssh-config)\n", addr.ID)
	fmt.Fprintf(&b, "Host %s\n", name)
	fmt.Fprintf(&b, "    ProxyCommand %s\n", proxy)
	fmt.Fprintf(&b, "    HostKeyAlias %s\n", addr.ID)
	fmt.Fprintf(&b, "    UserKnownHostsFile %s\n", khWord)
	fmt.Fprintf(&b, "    StrictHostKeyChecking yes\n")
	fmt.Fprintf(&b, "    IdentityFile %s\n", keyWord)
	fmt.Fprintf(&b, "    IdentitiesOnly yes\n")
	// AES-GCM first: the QUIC layer already authenticates every packet, and
	// AES-GCM is the cheapest SSH cipher on both ends (the default aes-ctr +
	// hmac-sha2 costs a separate MAC pass).
	fmt.Fprintf(&b, "    Ciphers ^aes128-gcm@openssh.com,aes256-gcm@openssh.com\n\n")
	return b.String(), nil
}

// addKnownHost appends line to the known_hosts file at path (mode 0600)
// unless the file already has it, and reports whether it did.
func addKnownHost(path, line string) (bool, error) {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("read known_hosts: %w", err)
	}
	for _, l := range strings.Split(string(old), "\n") {
		if strings.TrimSpace(l) == line {
			return false, nil
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("open known_hosts: %w", err)
	}
	text := line + "\n"
	if len(old) > 0 && old[len(old)-1] != '\n' {
		text = "\n" + text
	}
	if _, err := f.WriteString(text); err != nil {
		_ = f.Close()
		return false, fmt.Errorf("write known_hosts: %w", err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("write known_hosts: %w", err)
	}
	return true, nil
}

// installHostBlock writes block into the ssh_config file at path between
// marker lines for name, replacing what an earlier install wrote there, or
// appending it. The file is replaced atomically and keeps its mode (0600
// when new); ~/.ssh is created 0700 when missing.
func installHostBlock(path, name, block string) error {
	begin, end := "# >>> alknet ssh-config "+name+" >>>", "# <<< alknet ssh-config "+name+" <<<"
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read ssh config: %w", err)
	}
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	section := begin + "\n" + block + end + "\n"
	text := string(old)
	if i := strings.Index(text, begin+"\n"); i >= 0 {
		j := strings.Index(text[i:], end+"\n")
		if j < 0 {
			return fmt.Errorf("ssh config %s: %q without %q; remove the partial block", path, begin, end)
		}
		text = text[:i] + section + text[i+j+len(end)+1:]
	} else {
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		if text != "" {
			text += "\n"
		}
		text += section
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config.alknet-*")
	if err != nil {
		return fmt.Errorf("write ssh config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(text); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write ssh config: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write ssh config: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write ssh config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write ssh config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write ssh config: %w", err)
	}
	return nil
}

// sshConfigPath quotes a path for an ssh_config option that expands %
// tokens (IdentityFile, UserKnownHostsFile): '%' is doubled, and a path
// with white space is double-quoted. ssh_config has no escape for '"'.
func sshConfigPath(p string) (string, error) {
	if strings.ContainsAny(p, "\"\n\r") {
		return "", fmt.Errorf("path %q contains a double quote or a line break, which ssh_config cannot express", p)
	}
	p = strings.ReplaceAll(p, "%", "%%")
	if strings.ContainsAny(p, " \t'#") {
		return `"` + p + `"`, nil
	}
	return p, nil
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
