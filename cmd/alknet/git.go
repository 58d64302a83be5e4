package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/git"
	alkssh "github.com/alkdev/alknet/ssh"
	"github.com/spf13/cobra"
)

// gitConfig is the [git] section of config.toml.
type gitConfig struct {
	// Root is the directory of bare repositories; default <data>/repos.
	Root string `toml:"root"`
	// Protected lists ref globs that may not be deleted or rewound.
	Protected []string `toml:"protected"`
	// Disabled turns the service (and git over ssh) off.
	Disabled bool `toml:"disabled"`
	// Backend serves fetches: "go-git" (default, embedded) or "system"
	// (git upload-pack from PATH; pushes stay on go-git).
	Backend string `toml:"backend"`
}

// newGitServer builds the git backend from the [git] section, once per
// serve: the alknet/git handler and the ssh exec hook share it.
func newGitServer(env *serveEnv) (*git.Server, error) {
	if env.git != nil {
		return env.git, nil
	}
	c := env.cfg.Git
	root := c.Root
	if root == "" {
		root = env.g.path("repos")
	}
	gcfg := git.Config{Root: root, Logger: env.log, Protected: c.Protected}
	switch c.Backend {
	case "", "go-git":
	case "system":
		p, err := exec.LookPath("git")
		if err != nil {
			return nil, fmt.Errorf("config [git] backend = \"system\": %w", err)
		}
		gcfg.SystemGit = p
	default:
		return nil, fmt.Errorf("config [git] backend: %q is neither \"go-git\" nor \"system\"", c.Backend)
	}
	srv, err := git.New(gcfg)
	if err != nil {
		return nil, fmt.Errorf("config [git]: %w", err)
	}
	env.closers = append(env.closers, srv.Close)
	env.git = srv
	return srv, nil
}

// gitService is the serviceBuilders entry for alknet/git, gated on scope
// git; each request then checks the git:repo/<name> resource.
func gitService(env *serveEnv) (*service, error) {
	if env.cfg.Git.Disabled {
		return nil, nil
	}
	srv, err := newGitServer(env)
	if err != nil {
		return nil, err
	}
	return &service{handler: srv, acl: core.AccessControl{RequiredScopes: []string{git.Scope}}}, nil
}

// gitExecHook serves git-upload-pack and git-receive-pack exec requests
// over ssh with the same backend and rules as alknet/git. Other commands
// are left to the system. Nil when git is disabled.
func gitExecHook(env *serveEnv) (alkssh.ExecHook, error) {
	if env.cfg.Git.Disabled {
		return nil, nil
	}
	srv, err := newGitServer(env)
	if err != nil {
		return nil, err
	}
	return func(_ context.Context, cmd string, id *alkssh.Identity) (alkssh.ExecHandler, bool) {
		service, repoPath, ok := git.ParseCommand(cmd)
		if !ok {
			return nil, false
		}
		return func(ctx context.Context, stdio alkssh.ExecIO) (int, error) {
			if !id.HasScope(git.Scope) {
				fmt.Fprintf(stdio.Stderr, "alknet: peer not authorized for %s: missing scope %s\n", git.ALPN, git.Scope)
				return alkssh.ExitRefused, nil
			}
			protocol := ""
			for _, kv := range stdio.Env {
				if v, ok := cutPrefix(kv, "GIT_PROTOCOL="); ok {
					protocol = v
				}
			}
			if err := srv.ServeRequest(ctx, service, repoPath, protocol, id, stdio.Stdin, stdio.Stdout); err != nil {
				return 1, err
			}
			return 0, nil
		}, true
	}, nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

func newGitCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "git",
		Short: "Serve git repositories: the git-remote-alknet helper",
		Long: `A node serves bare repositories under <data>/repos on ALPN alknet/git and
over its ssh. Stock git reaches it through the remote helper
git-remote-alknet, which is this binary under that name:

  alknet git install-helper            # link next to the alknet binary
  git clone alknet://<nodeid>@host:4433/name.git

The helper dials with the identity of the data directory (ALKNET_DATA, else
the default). Access is per repository: resources git:repo/<name> (or a
namespace git:repo/team/*) with actions read, write and create.`,
	}
	cmd.AddCommand(newGitInstallHelperCmd(g))
	return cmd
}

func newGitInstallHelperCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "install-helper [DIR]",
		Short: "Link git-remote-alknet to this binary (default: next to it)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("install-helper: %w", err)
			}
			if r, err := filepath.EvalSymlinks(self); err == nil {
				self = r
			}
			dir := filepath.Dir(self)
			if len(args) == 1 {
				dir = args[0]
			}
			link := filepath.Join(dir, git.HelperName)
			if cur, err := os.Readlink(link); err == nil && cur == self {
				fmt.Fprintln(g.stdout, link)
				return nil
			}
			if _, err := os.Lstat(link); err == nil {
				return fmt.Errorf("install-helper: %s exists and is not a link to %s", link, self)
			}
			if err := os.Symlink(self, link); err != nil {
				return fmt.Errorf("install-helper: %w", err)
			}
			fmt.Fprintln(g.stdout, link)
			return nil
		},
	}
}

// runGitHelper is main when the binary runs as git-remote-alknet: git
// passes the remote name and the URL, and talks the helper protocol on
// stdin and stdout.
func runGitHelper(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprintln(stderr, "alknet: git-remote-alknet is run by git: git clone alknet://<nodeid>@<host>:<port>/<name>.git")
		return 2
	}
	ctx := context.Background()
	g := &globals{dataDir: defaultDataDir(), logLevel: "warn", connectTimeout: defaultDialTimeout, stdin: stdin, stdout: stdout, stderr: stderr}
	var d *dialer
	defer func() {
		if d != nil {
			_ = d.Close()
		}
	}()
	dial := func(ctx context.Context, addr string) (core.Conn, error) {
		var err error
		if d, err = g.newDialer(""); err != nil {
			return nil, err
		}
		return d.dial(ctx, addr, git.ALPN)
	}
	if err := git.Helper(ctx, args[1], os.Getenv("GIT_PROTOCOL"), stdin, stdout, dial); err != nil {
		fmt.Fprintln(stderr, "alknet: "+oneLine(err.Error()))
		return 128
	}
	return 0
}
