package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/alkdev/alknet/call"
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
  git clone alknet+tcp://<nodeid>@host:4433/name.git   # TCP+TLS, where UDP is blocked

The helper dials with the identity of the data directory (ALKNET_DATA, else
the default). Access is per repository: resources git:repo/<name> (or a
namespace git:repo/team/*) with actions read, write and create.`,
	}
	cmd.AddCommand(
		newGitInstallHelperCmd(g),
		gitManageCmd(g, "ls ADDR", "List the repositories you may read (call git/list)", "git/list", 1),
		gitManageCmd(g, "create ADDR NAME", "Create an empty repository (call git/create)", "git/create", 2),
		gitManageCmd(g, "rm ADDR NAME", "Delete a repository (call git/rm)", "git/rm", 2),
	)
	return cmd
}

func newGitInstallHelperCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "install-helper [DIR]",
		Short: "Link git-remote-alknet and git-remote-alknet+tcp to this binary (default: next to it)",
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
			for _, name := range []string{git.HelperName, git.HelperNameTCP} {
				link := filepath.Join(dir, name)
				if cur, err := os.Readlink(link); err == nil && cur == self {
					fmt.Fprintln(g.stdout, link)
					continue
				}
				if _, err := os.Lstat(link); err == nil {
					return fmt.Errorf("install-helper: %s exists and is not a link to %s", link, self)
				}
				if err := os.Symlink(self, link); err != nil {
					return fmt.Errorf("install-helper: %w", err)
				}
				fmt.Fprintln(g.stdout, link)
			}
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
	dial := func(ctx context.Context, addr string, tcp bool) (core.Conn, error) {
		var err error
		if d, err = g.newDialer(""); err != nil {
			return nil, err
		}
		d.tcp = tcp
		return d.dial(ctx, addr, git.ALPN)
	}
	if err := git.Helper(ctx, args[1], helperProtocol(ctx), stdin, stdout, dial); err != nil {
		fmt.Fprintln(stderr, "alknet: "+oneLine(err.Error()))
		return 128
	}
	return 0
}

// gitRepoInput names a repository in git/create and git/rm.
type gitRepoInput struct {
	Name string `json:"name" jsonschema:"repository name, e.g. team/app.git"`
}

// gitRepoOutput is the clean name of the repository acted on.
type gitRepoOutput struct {
	Name string `json:"name"`
}

// gitListOutput lists the repositories the caller may read.
type gitListOutput struct {
	Repos []string `json:"repos"`
}

// registerGitOps adds git/list, git/create and git/rm to the call registry;
// each needs scope git and checks the repository resources of the caller.
func registerGitOps(env *serveEnv, reg *call.Registry) error {
	if env.cfg.Git.Disabled {
		return nil
	}
	srv, err := newGitServer(env)
	if err != nil {
		return err
	}
	acl := core.AccessControl{RequiredScopes: []string{git.Scope}}
	caller := func(ctx context.Context) *core.Identity {
		if c := call.CallerFromContext(ctx); c != nil {
			return c.Identity
		}
		return nil
	}
	call.Query(reg, "git/list", func(ctx context.Context, _ struct{}) (gitListOutput, error) {
		repos, err := srv.List(caller(ctx))
		if err != nil {
			return gitListOutput{}, gitCallError(err)
		}
		return gitListOutput{Repos: repos}, nil
	}, call.Options{Description: "The git repositories the caller may read.", Access: acl})
	call.Mutation(reg, "git/create", func(ctx context.Context, in gitRepoInput) (gitRepoOutput, error) {
		name, err := srv.Create(caller(ctx), in.Name)
		if err != nil {
			return gitRepoOutput{}, gitCallError(err)
		}
		return gitRepoOutput{Name: name}, nil
	}, call.Options{Description: "Create an empty bare repository (needs the create action on git:repo/<name>).", Access: acl})
	call.Mutation(reg, "git/rm", func(ctx context.Context, in gitRepoInput) (gitRepoOutput, error) {
		name, err := srv.Remove(caller(ctx), in.Name)
		if err != nil {
			return gitRepoOutput{}, gitCallError(err)
		}
		return gitRepoOutput{Name: name}, nil
	}, call.Options{Description: "Delete a repository (needs the create and write actions on git:repo/<name>).", Access: acl})
	return nil
}

// gitCallError maps git errors to call error codes.
func gitCallError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "alknet/git: ")
	switch {
	case errors.Is(err, git.ErrForbidden):
		return call.NewError(call.CodeForbidden, "%s", msg)
	case errors.Is(err, git.ErrNotFound):
		return call.NewError(call.CodeNotFound, "%s", msg)
	case errors.Is(err, git.ErrBadName), errors.Is(err, git.ErrExists):
		return call.NewError(call.CodeInvalidInput, "%s", msg)
	}
	return err
}

// gitManageCmd runs one git/* operation on ADDR and prints the result.
func gitManageCmd(g *globals, use, short, op string, nargs int) *cobra.Command {
	var keyFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(nargs, "git "+use),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			d, err := g.newDialer(keyFile)
			if err != nil {
				return err
			}
			defer d.Close()
			conn, err := d.dial(ctx, args[0], call.ALPN)
			if err != nil {
				return describe(err)
			}
			p := call.NewPeer(conn, call.Config{})
			defer p.Close()
			var in any = struct{}{}
			if nargs == 2 {
				in = gitRepoInput{Name: args[1]}
			}
			var out struct {
				Name  string   `json:"name"`
				Repos []string `json:"repos"`
			}
			if err := p.Call(ctx, op, in, &out); err != nil {
				return describeCall(err)
			}
			if asJSON {
				return writeJSON(g.stdout, out)
			}
			if nargs == 2 {
				fmt.Fprintln(g.stdout, out.Name)
				return nil
			}
			for _, r := range out.Repos {
				fmt.Fprintln(g.stdout, r)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "ed25519 private key to present (default: the data directory's identity)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// helperProtocol is the protocol the helper asks for: GIT_PROTOCOL when git
// set it, else version 2 unless the repository's or the user's git config
// sets protocol.version to 0 or 1.
func helperProtocol(ctx context.Context) string {
	if p := os.Getenv("GIT_PROTOCOL"); p != "" {
		return p
	}
	out, _ := exec.CommandContext(ctx, "git", "config", "--get", "protocol.version").Output()
	switch strings.TrimSpace(string(out)) {
	case "0", "1":
		return ""
	}
	return git.DefaultHelperProtocol
}
