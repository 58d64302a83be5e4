package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gitEnv is a sandbox for running stock git against a node: its own HOME,
// a PATH with git-remote-alknet linked to the test binary, and the client
// data directory in ALKNET_DATA.
type gitEnv struct {
	t    *testing.T
	home string
	env  []string
}

// requireGit skips (or fails with ALKNET_REQUIRE_CLIENTS=1) when git is
// missing.
func requireGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("ALKNET_REQUIRE_CLIENTS") == "1" {
			t.Fatal("git not installed (ALKNET_REQUIRE_CLIENTS=1)")
		}
		t.Skip("git not installed: apt-get install git")
	}
}

func newGitEnv(t *testing.T, clientData string) *gitEnv {
	t.Helper()
	requireGit(t)
	bin := t.TempDir()
	r := runCLI(t, nil, "git", "install-helper", bin)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, filepath.Join(bin, "git-remote-alknet")+"\n"+filepath.Join(bin, "git-remote-alknet+tcp")+"\n", r.stdout)
	home := t.TempDir()
	env := append(os.Environ(),
		"HOME="+home,
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"ALKNET_DATA="+clientData,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_TERMINAL_PROMPT=0",
	)
	return &gitEnv{t: t, home: home, env: env}
}

// run runs git in dir and returns combined output and whether it succeeded.
func (g *gitEnv) run(dir string, args ...string) (string, bool) {
	g.t.Helper()
	cmd := exec.CommandContext(g.t.Context(), "git", args...)
	cmd.Dir = dir
	cmd.Env = g.env
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// must runs git and fails the test when it fails.
func (g *gitEnv) must(dir string, args ...string) string {
	g.t.Helper()
	out, ok := g.run(dir, args...)
	require.True(g.t, ok, "git %v:\n%s", args, out)
	return out
}

func (g *gitEnv) rev(dir, ref string) string {
	g.t.Helper()
	return strings.TrimSpace(g.must(dir, "rev-parse", ref))
}

func (g *gitEnv) commits(dir string, n int, file string) {
	g.t.Helper()
	for i := range n {
		f, err := os.OpenFile(filepath.Join(dir, file), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		require.NoError(g.t, err)
		_, _ = f.WriteString(strings.Repeat("x", i) + "\n")
		require.NoError(g.t, f.Close())
		g.must(dir, "add", file)
		g.must(dir, "commit", "-q", "-m", file+" "+string(rune('a'+i%26)))
	}
}

// gitNode starts a node whose peers are given as config.toml [[peers]]
// blocks (fingerprints of client data dirs) plus an optional [git] section.
func gitNode(t *testing.T, peers map[string]string, gitSection string) *node {
	t.Helper()
	var b strings.Builder
	b.WriteString(gitSection + "\n")
	for dir, rest := range peers {
		fp := fingerprintOf(t, dir)
		b.WriteString("[[peers]]\nid = \"" + filepath.Base(dir) + "\"\nfingerprints = [\"" + fp + "\"]\n" + rest + "\n")
	}
	return startNode(t, filepath.Join(t.TempDir(), "srv"), b.String())
}

func TestGitCloneEmptyThenPush(t *testing.T) {
	t.Parallel()
	requireGit(t)
	cli := filepath.Join(t.TempDir(), "cli")
	n := gitNode(t, map[string]string{cli: `scopes = ["git"]
resources = { "git:repo/empty" = ["read", "write"] }`}, "")
	g := newGitEnv(t, cli)
	g.must(t.TempDir(), "init", "-q", "--bare", "-b", "main", filepath.Join(n.DataDir, "repos", "empty.git"))
	work := t.TempDir()
	url := "alknet://" + n.Addr + "/empty.git"
	out := g.must(work, "clone", url, "c")
	assert.Contains(t, out, "cloned an empty repository")
	c := filepath.Join(work, "c")
	g.must(c, "checkout", "-q", "-b", "main")
	g.commits(c, 3, "a.txt")
	g.must(c, "push", "-q", "origin", "main")
	ls := g.must(c, "ls-remote", "origin")
	assert.Contains(t, ls, g.rev(c, "HEAD")+"\trefs/heads/main")
	// A fresh clone sees the pushed history.
	g.must(work, "clone", "-q", url, "d")
	assert.Equal(t, g.rev(c, "HEAD"), g.rev(filepath.Join(work, "d"), "HEAD"))
	g.must(filepath.Join(work, "d"), "fsck", "--strict")

	// The same over TCP+TLS (alknet+tcp://): clone, push, fetch.
	tcpURL := "alknet+tcp://" + n.Addr + "/empty.git"
	tg := &gitEnv{t: t, home: g.home, env: append(slices.Clone(g.env), "GIT_TRACE_PACKET=1")}
	out = tg.must(work, "clone", tcpURL, "e")
	assert.Contains(t, out, "< version 2", "fetches over TCP ask for protocol v2 too")
	e := filepath.Join(work, "e")
	assert.Equal(t, g.rev(c, "HEAD"), g.rev(e, "HEAD"))
	g.commits(e, 2, "e.txt")
	g.must(e, "push", "-q", "origin", "main")
	g.must(c, "pull", "-q", tcpURL, "main")
	assert.Equal(t, g.rev(e, "HEAD"), g.rev(c, "HEAD"))
	g.must(e, "fsck", "--strict")
	g.must(work, "clone", "-q", "--depth", "1", tcpURL, "s")
	assert.Equal(t, "1", strings.TrimSpace(g.must(filepath.Join(work, "s"), "rev-list", "--count", "HEAD")))
	g.must(e, "push", "-q", "-o", "a", "-o", "b", "-o", "c", "origin", "HEAD:refs/heads/opt")
	assert.Contains(t, n.Log(), "options=3")
}

func TestGitFetchPushDelete(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"go-git", "system"} {
		t.Run(backend, func(t *testing.T) { testGitFetchPushDelete(t, backend) })
	}
}

func testGitFetchPushDelete(t *testing.T, backend string) {
	requireGit(t)
	cli := filepath.Join(t.TempDir(), "cli")
	n := gitNode(t, map[string]string{cli: `scopes = ["git"]
resources = { "git:repo/team/*" = ["read", "write", "create"] }`}, `[git]
protected = ["refs/heads/main"]
backend = "`+backend+`"`)
	g := newGitEnv(t, cli)
	url := "alknet://" + n.Addr + "/team/proj.git"

	a := t.TempDir()
	g.must(a, "init", "-q", "-b", "main")
	g.commits(a, 5, "a.txt")
	g.must(a, "push", "-q", url, "main") // creates the repository
	_, err := os.Stat(filepath.Join(n.DataDir, "repos", "team", "proj.git", "objects"))
	require.NoError(t, err, "push created the repository under the root")
	g.must(a, "remote", "add", "origin", url)
	g.must(a, "fetch", "-q", "origin")

	work := t.TempDir()
	g.must(work, "clone", "-q", url, "b")
	b := filepath.Join(work, "b")
	assert.Equal(t, g.rev(a, "main"), g.rev(b, "HEAD"))

	// 50 new commits on each side, then an incremental fetch.
	g.commits(a, 50, "a.txt")
	g.must(a, "push", "-q", "origin", "main")
	g.commits(b, 50, "b.txt")
	g.must(b, "fetch", "-q", "origin")
	assert.Equal(t, g.rev(a, "main"), g.rev(b, "origin/main"))

	// The diverged push is refused by git, then a merge goes through.
	out, ok := g.run(b, "push", "origin", "HEAD:main")
	assert.False(t, ok)
	assert.Contains(t, out, "[rejected]")
	g.must(b, "merge", "-q", "--no-edit", "origin/main")
	g.must(b, "push", "-q", "origin", "HEAD:main")

	// A branch and tags, then delete the branch.
	g.must(b, "tag", "v1")
	g.must(b, "tag", "-a", "-m", "annotated", "v2")
	g.must(b, "push", "-q", "origin", "HEAD:refs/heads/feature", "v1", "v2")
	ls := g.must(b, "ls-remote", "origin")
	head := g.rev(b, "HEAD")
	assert.Contains(t, ls, head+"\trefs/heads/feature")
	assert.Contains(t, ls, head+"\trefs/tags/v1")
	assert.Contains(t, ls, g.rev(b, "v2")+"\trefs/tags/v2")
	g.must(b, "push", "-q", "origin", ":feature")
	ls = g.must(b, "ls-remote", "origin")
	assert.NotContains(t, ls, "refs/heads/feature")
	g.must(a, "fetch", "-q", "--tags", "origin")
	assert.Equal(t, g.rev(b, "v2"), g.rev(a, "v2"))

	// main is protected: no force-push, no delete.
	g.must(a, "reset", "-q", "--hard", "HEAD~3")
	out, ok = g.run(a, "push", "--force", "origin", "HEAD:main")
	assert.False(t, ok)
	assert.Contains(t, out, "protected ref refs/heads/main: non-fast-forward refused")
	out, ok = g.run(a, "push", "origin", ":main")
	assert.False(t, ok)
	assert.Contains(t, out, "protected ref refs/heads/main: delete refused")
	// A branch that is not protected may be force-pushed.
	g.must(b, "push", "-q", "origin", "HEAD:refs/heads/topic")
	g.must(a, "push", "-q", "--force", "origin", "HEAD:topic")
	ls = g.must(a, "ls-remote", "origin")
	assert.Contains(t, ls, head+"\trefs/heads/main", "main untouched")
	assert.Contains(t, ls, g.rev(a, "HEAD")+"\trefs/heads/topic")

	// --depth 1 works.
	g.must(work, "clone", "-q", "--depth", "1", url, "shallow")
	cnt := strings.TrimSpace(g.must(filepath.Join(work, "shallow"), "rev-list", "--count", "HEAD"))
	assert.Equal(t, "1", cnt)

	// --atomic: the server refuses the rewind of main, so the new branch
	// pushed with it is not created either; then all refs go together.
	before := g.must(a, "ls-remote", "origin")
	out, ok = g.run(a, "push", "--atomic", "--force", "origin", "HEAD:main", "HEAD:refs/heads/at1")
	assert.False(t, ok)
	assert.Contains(t, out, "! [remote rejected] HEAD -> main (protected ref refs/heads/main: non-fast-forward refused)")
	assert.Contains(t, out, "! [remote rejected] HEAD -> at1 (atomic push failure)")
	assert.Equal(t, before, g.must(a, "ls-remote", "origin"), "a refused atomic push changes no ref")
	g.must(b, "push", "-q", "--atomic", "origin", "HEAD:refs/heads/at1", "HEAD~1:refs/heads/at2", "v1:refs/tags/at", ":topic")
	ls = g.must(b, "ls-remote", "origin")
	assert.Contains(t, ls, head+"\trefs/heads/at1")
	assert.Contains(t, ls, g.rev(b, "HEAD~1")+"\trefs/heads/at2")
	assert.Contains(t, ls, head+"\trefs/tags/at")
	assert.NotContains(t, ls, "refs/heads/topic")
	// push -o: the options reach the server (its log counts them).
	g.must(b, "push", "-q", "-o", "ci.skip", "-o", "reviewer=x", "origin", "HEAD:refs/heads/opt")
	assert.Contains(t, n.Log(), "options=2")
	g.must(b, "fsck", "--strict")
	bare := filepath.Join(n.DataDir, "repos", "team", "proj.git")
	g.must(bare, "fsck", "--strict")
}

func TestGitAccess(t *testing.T) {
	t.Parallel()
	requireGit(t)
	base := t.TempDir()
	owner := filepath.Join(base, "alpha-owner")
	reader := filepath.Join(base, "reader")
	none := filepath.Join(base, "none")
	stranger := filepath.Join(base, "stranger")
	fingerprintOf(t, stranger)
	n := gitNode(t, map[string]string{
		owner:  `scopes = ["git"]` + "\n" + `resources = { "git:repo/alpha" = ["read", "write", "create"] }`,
		reader: `scopes = ["git"]` + "\n" + `resources = { "git:repo/alpha" = ["read"], "git:repo/beta" = ["write"] }`,
		none:   `scopes = ["git"]`,
	}, "")
	url := "alknet://" + n.Addr + "/alpha.git"
	og := newGitEnv(t, owner)
	a := t.TempDir()
	og.must(a, "init", "-q", "-b", "main")
	og.commits(a, 2, "f")
	og.must(a, "push", "-q", url, "main")

	rg := newGitEnv(t, reader)
	w := t.TempDir()
	rg.must(w, "clone", "-q", url, "r")
	r := filepath.Join(w, "r")
	rg.commits(r, 1, "g")
	out, ok := rg.run(r, "push", "origin", "HEAD:main")
	assert.False(t, ok)
	assert.Contains(t, out, "fatal: remote error: alknet: peer not authorized for git:repo/alpha: write")
	// write without create on a missing repository
	out, ok = rg.run(r, "push", "alknet://"+n.Addr+"/beta.git", "HEAD:main")
	assert.False(t, ok)
	assert.Contains(t, out, "fatal: remote error: alknet: repository not found: beta.git")

	ng := newGitEnv(t, none)
	out, ok = ng.run(w, "clone", url, "n")
	assert.False(t, ok)
	assert.Contains(t, out, "fatal: remote error: alknet: peer not authorized for git:repo/alpha: read")
	_, err := os.Stat(filepath.Join(w, "n"))
	assert.True(t, os.IsNotExist(err), "a refused clone leaves no directory")

	sg := newGitEnv(t, stranger)
	out, ok = sg.run(w, "clone", url, "s")
	assert.False(t, ok)
	assert.Contains(t, out, "fatal: remote error: alknet: peer not authorized for alknet/git: authentication required")
	// The same refusals over TCP+TLS.
	tcpURL := "alknet+tcp://" + n.Addr + "/alpha.git"
	out, ok = sg.run(w, "clone", tcpURL, "s")
	assert.False(t, ok)
	assert.Contains(t, out, "fatal: remote error: alknet: peer not authorized for alknet/git: authentication required")
	out, ok = ng.run(w, "clone", tcpURL, "n")
	assert.False(t, ok)
	assert.Contains(t, out, "fatal: remote error: alknet: peer not authorized for git:repo/alpha: read")
	out, ok = rg.run(r, "push", tcpURL, "HEAD:main")
	assert.False(t, ok)
	assert.Contains(t, out, "fatal: remote error: alknet: peer not authorized for git:repo/alpha: write")

	out, ok = og.run(w, "clone", "alknet://"+n.Addr+"/../alpha.git", "x")
	assert.False(t, ok)
	assert.Contains(t, out, "fatal: remote error: alknet: bad repository name")
	out, ok = og.run(w, "clone", "alknet://"+n.Addr+"/nope.git", "x")
	assert.False(t, ok)
	assert.Contains(t, out, "fatal: remote error: alknet: peer not authorized for git:repo/nope: read")
}

// TestGitCloneBundle clones a real repository with history (miekg/dns,
// from a bundle) through alknet, with each backend, and compares it with
// the bundle.
func TestGitCloneBundle(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"go-git", "system"} {
		t.Run(backend, func(t *testing.T) { testGitCloneBundle(t, backend) })
	}
}

func testGitCloneBundle(t *testing.T, backend string) {
	requireGit(t)
	bundle, err := filepath.Abs("../../../shared/testdata/git/miekg-dns.bundle")
	require.NoError(t, err)
	if _, err := os.Stat(bundle); err != nil {
		if os.Getenv("ALKNET_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("test data missing: %s", bundle)
		}
		t.Skipf("test data missing: %s (the shared folder beside the checkout)", bundle)
	}
	cli := filepath.Join(t.TempDir(), "cli")
	n := gitNode(t, map[string]string{cli: `scopes = ["git"]
resources = { "git:repo/dns" = ["read"] }`}, `[git]
backend = "`+backend+`"`)
	g := newGitEnv(t, cli)
	g.must(t.TempDir(), "clone", "-q", "--mirror", bundle, filepath.Join(n.DataDir, "repos", "dns.git"))
	work := t.TempDir()
	g.must(work, "clone", "-q", "--mirror", "alknet://"+n.Addr+"/dns.git", "got.git")
	got := filepath.Join(work, "got.git")
	heads := strings.TrimSpace(g.must(work, "bundle", "list-heads", bundle))
	var want []string
	for _, l := range strings.Split(heads, "\n") {
		if !strings.HasSuffix(l, " HEAD") {
			want = append(want, l)
		}
	}
	refs := strings.TrimSpace(g.must(got, "for-each-ref", "--format=%(objectname) %(refname)"))
	assert.ElementsMatch(t, want, strings.Split(refs, "\n"))
	g.must(got, "fsck", "--strict", "--no-progress")
	cnt := strings.TrimSpace(g.must(got, "rev-list", "--all", "--count"))
	assert.NotEqual(t, "0", cnt)
	t.Logf("cloned %s commits", cnt)
}

// TestGitOverSSH clones, pushes and is refused over alknet's ssh with the
// Host block of alknet ssh-config, through the same backend and rules.
func TestGitOverSSH(t *testing.T) {
	t.Parallel()
	requireGit(t)
	needClient(t, "ssh", "openssh-client")
	dir := t.TempDir()
	alice := newSSHKey(t, dir, "alice")
	bob := newSSHKey(t, dir, "bob")
	cfg := fmt.Sprintf(`[[peers]]
id = "alice"
fingerprints = [%q]
scopes = ["ssh", "git"]
resources = { "git:repo/*" = ["read", "write", "create"] }

[[peers]]
id = "bob"
fingerprints = [%q]
scopes = ["ssh"]
resources = { "git:repo/site" = ["read"] }
`, alice.fp, bob.fp)
	n := startNode(t, filepath.Join(dir, "node"), cfg)
	sshCmd := func(key sshKey) string {
		// The Host block as ssh-config prints it, with the host key kept
		// in a client data directory of the test's own.
		data := filepath.Join(dir, filepath.Base(key.path)+".data")
		r := runCLI(t, nil, "--data", data, "ssh-config", "--name", "box", "--key", key.path, n.Addr)
		require.Equal(t, 0, r.code, r.stderr)
		cfgPath := filepath.Join(dir, filepath.Base(key.path)+".ssh_config")
		require.NoError(t, os.WriteFile(cfgPath, []byte(r.stdout), 0o600))
		return "ssh -F " + cfgPath + " -o BatchMode=yes"
	}
	g := newGitEnv(t, filepath.Join(dir, "unused"))
	g.env = append(g.env, "GIT_SSH_COMMAND="+sshCmd(alice))

	a := t.TempDir()
	g.must(a, "init", "-q", "-b", "main")
	g.commits(a, 3, "a.txt")
	g.must(a, "push", "-q", "box:site.git", "main")
	work := t.TempDir()
	g.must(work, "clone", "-q", "box:site.git", "c")
	c := filepath.Join(work, "c")
	assert.Equal(t, g.rev(a, "main"), g.rev(c, "HEAD"))
	g.commits(c, 20, "c.txt")
	g.must(c, "push", "-q", "origin", "HEAD:main")
	g.must(a, "pull", "-q", "box:/site.git", "main")
	assert.Equal(t, g.rev(c, "HEAD"), g.rev(a, "HEAD"))

	// Protocol v2: git sends GIT_PROTOCOL (SendEnv), the server lets it
	// through and the exec hook serves version 2.
	tg := &gitEnv{t: t, home: g.home, env: append(slices.Clone(g.env), "GIT_TRACE_PACKET=1")}
	v2out := tg.must(work, "-c", "protocol.version=2", "clone", "box:site.git", "v2")
	assert.Contains(t, v2out, "< version 2")
	assert.Contains(t, v2out, "> command=ls-refs")
	assert.Equal(t, g.rev(c, "HEAD"), g.rev(filepath.Join(work, "v2"), "HEAD"))
	v2out = tg.must(filepath.Join(work, "v2"), "-c", "protocol.version=2", "fetch", "origin")
	assert.Contains(t, v2out, "< version 2")
	// --depth 1 and push -o over ssh too.
	g.must(work, "clone", "-q", "--depth", "1", "box:site.git", "shallow")
	assert.Equal(t, "1", strings.TrimSpace(g.must(filepath.Join(work, "shallow"), "rev-list", "--count", "HEAD")))
	g.must(c, "push", "-q", "-o", "ci.skip", "origin", "HEAD:refs/heads/opt")
	assert.Contains(t, n.Log(), "options=1")

	// bob has read on site but not the git scope: refused with a message.
	bg := newGitEnv(t, filepath.Join(dir, "unused"))
	bg.env = append(bg.env, "GIT_SSH_COMMAND="+sshCmd(bob))
	out, ok := bg.run(work, "clone", "box:site.git", "b")
	assert.False(t, ok)
	assert.Contains(t, out, "alknet: peer not authorized for alknet/git: missing scope git")
}

func TestGitManage(t *testing.T) {
	t.Parallel()
	requireGit(t)
	base := t.TempDir()
	admin := filepath.Join(base, "admin")
	reader := filepath.Join(base, "reader")
	n := gitNode(t, map[string]string{
		admin:  `scopes = ["call", "git"]` + "\n" + `resources = { "git:repo/*" = ["read", "write", "create"] }`,
		reader: `scopes = ["call", "git"]` + "\n" + `resources = { "git:repo/team/*" = ["read"] }`,
	}, "")
	cli := func(data string, args ...string) result {
		return runCLI(t, nil, append([]string{"--data", data, "git"}, args...)...)
	}
	r := cli(admin, "create", n.Addr, "team/app")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "team/app.git\n", r.stdout)
	require.Equal(t, 0, cli(admin, "create", n.Addr, "solo.git").code)
	r = cli(admin, "create", n.Addr, "solo.git")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "alknet: INVALID_INPUT: repository exists\n", r.stderr)
	r = cli(reader, "create", n.Addr, "team/x")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "alknet: FORBIDDEN: peer not authorized for git:repo/team/x: create\n", r.stderr)

	r = cli(admin, "ls", n.Addr)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "solo.git\nteam/app.git\n", r.stdout)
	r = cli(reader, "ls", n.Addr)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "team/app.git\n", r.stdout)

	// The created repository is empty and takes a push.
	g := newGitEnv(t, admin)
	w := t.TempDir()
	g.must(w, "init", "-q", "-b", "main")
	g.commits(w, 1, "f")
	g.must(w, "push", "-q", "alknet://"+n.Addr+"/team/app.git", "main")

	r = cli(reader, "rm", n.Addr, "team/app.git")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "FORBIDDEN")
	r = cli(admin, "rm", n.Addr, "team/app.git")
	require.Equal(t, 0, r.code, r.stderr)
	r = cli(admin, "rm", n.Addr, "team/app.git")
	assert.Equal(t, "alknet: NOT_FOUND: repository not found\n", r.stderr)
	r = cli(reader, "ls", n.Addr)
	assert.Equal(t, "", r.stdout)
}

// TestGitKillDuringPush kills the node (SIGKILL) while it receives a large
// push, then checks the repository: git fsck is clean and main is where it
// was; after a restart the push goes through.
func TestGitKillDuringPush(t *testing.T) {
	t.Parallel()
	requireGit(t)
	bundle, err := filepath.Abs("../../../shared/testdata/git/miekg-dns.bundle")
	require.NoError(t, err)
	if _, err := os.Stat(bundle); err != nil {
		if os.Getenv("ALKNET_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("test data missing: %s", bundle)
		}
		t.Skipf("test data missing: %s", bundle)
	}
	cli := filepath.Join(t.TempDir(), "cli")
	srvDir := filepath.Join(t.TempDir(), "srv")
	peer := `[[peers]]
id = "cli"
fingerprints = ["` + fingerprintOf(t, cli) + `"]
scopes = ["git"]
resources = { "git:repo/*" = ["read", "write", "create"] }
`
	n := startNode(t, srvDir, peer)
	g := newGitEnv(t, cli)
	url := "alknet://" + n.Addr + "/k.git"
	a := t.TempDir()
	g.must(a, "init", "-q", "-b", "main")
	g.commits(a, 2, "f")
	g.must(a, "push", "-q", url, "main")
	mainRev := g.rev(a, "main")
	src := filepath.Join(t.TempDir(), "dns")
	g.must(t.TempDir(), "clone", "-q", "--bare", bundle, src)

	bare := filepath.Join(srvDir, "repos", "k.git")
	push := exec.Command("git", "push", "-q", url, "refs/heads/*:refs/heads/dns/*")
	push.Dir = src
	push.Env = g.env
	push.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // git and its helper
	require.NoError(t, push.Start())
	pushDone := make(chan error, 1)
	go func() { pushDone <- push.Wait() }()
	// Kill once the server is writing the pack.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		m, _ := filepath.Glob(filepath.Join(bare, "objects", "pack", "tmp_pack_*"))
		if len(m) > 0 {
			if fi, err := os.Stat(m[0]); err == nil && fi.Size() > 1<<20 {
				break
			}
		}
		select {
		case err := <-pushDone:
			t.Fatalf("push ended (%v) before the pack was being written", err)
		default:
		}
		require.True(t, time.Now().Before(deadline), "the server never started writing the pack")
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, n.cmd.Process.Kill())
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		t.Fatal("killed node did not exit")
	}
	// The client notices only at the QUIC idle timeout; the repository is
	// what matters here, so end the client too.
	_ = syscall.Kill(-push.Process.Pid, syscall.SIGKILL)
	select {
	case err := <-pushDone:
		assert.Error(t, err, "the push did not complete")
	case <-time.After(30 * time.Second):
		t.Fatal("killed push did not exit")
	}
	out := g.must(bare, "fsck", "--strict", "--no-progress")
	assert.NotContains(t, out, "error")
	assert.Equal(t, mainRev, g.rev(bare, "refs/heads/main"))
	refs := g.must(bare, "for-each-ref", "--format=%(refname)")
	assert.Equal(t, "refs/heads/main\n", refs, "no ref of the killed push")

	n2 := startNode(t, srvDir, "")
	g.must(src, "push", "-q", "alknet://"+n2.Addr+"/k.git", "refs/heads/*:refs/heads/dns/*")
	g.must(bare, "fsck", "--strict", "--no-progress")
}
