package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/alkdev/alknet/core/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"
)

// peerList returns `peer list --json` of dir, parsed.
func peerList(t *testing.T, dir string) []peerJSON {
	t.Helper()
	r := runCLI(t, nil, "--data", dir, "peer", "list", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var out []peerJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	return out
}

// sshPublicKey writes an OpenSSH ed25519 key pair under dir and returns
// the public and private key paths and the fingerprint.
func sshPublicKey(t *testing.T, dir string) (pub, priv, fp string) {
	t.Helper()
	k := coretest.Key(t)
	pemBytes, err := k.MarshalPEM()
	require.NoError(t, err)
	priv = filepath.Join(dir, "id_ed25519")
	require.NoError(t, os.WriteFile(priv, pemBytes, 0o600))
	line := sshAuthorizedLine(t, k)
	pub = priv + ".pub"
	require.NoError(t, os.WriteFile(pub, []byte("# a comment\n\n"+line+" me@host\n"), 0o644))
	return pub, priv, k.NodeID().Fingerprint()
}

func TestPeerCLI(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "node")
	tmp := t.TempDir()
	node := coretest.Key(t).NodeID()
	other := coretest.Key(t).NodeID()
	pub, priv, sshFP := sshPublicKey(t, tmp)

	r := runCLI(t, nil, "--data", dir, "peer", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "no peers")
	assert.Empty(t, peerList(t, dir), "--json of no peers is []")

	// Several keys of three kinds, scopes, resources.
	r = runCLI(t, nil, "--data", dir, "peer", "add", "laptop",
		"--node", node.String(), "--fingerprint", strings.ToUpper(strings.TrimPrefix(other.Fingerprint(), "ed25519:")), "--ssh-key", pub,
		"--scope", "ssh", "--scope", "sftp:write", "--resource", "git:repo/alpha=read,write", "--resource", "git:repo/alpha=create",
		"--display-name", "My laptop")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stdout)
	assert.Equal(t, "added peer laptop (3 keys; scopes: ssh, sftp:write)\n", r.stderr)
	r = runCLI(t, nil, "--data", dir, "peer", "add", "ci", "--node", coretest.Key(t).NodeID().String(), "--scope", "git")
	require.Equal(t, 0, r.code, r.stderr)

	peers := peerList(t, dir)
	require.Len(t, peers, 2)
	assert.Equal(t, "ci", peers[0].ID)
	lp := peers[1]
	assert.Equal(t, "laptop", lp.ID)
	assert.Equal(t, "My laptop", lp.DisplayName)
	assert.True(t, lp.Enabled)
	assert.Equal(t, "database", lp.Source)
	assert.Equal(t, []string{node.Fingerprint(), other.Fingerprint(), sshFP}, lp.Fingerprints)
	assert.Equal(t, []string{"ssh", "sftp:write"}, lp.Scopes)
	assert.Equal(t, map[string][]string{"git:repo/alpha": {"read", "write", "create"}}, lp.Resources)
	assert.False(t, lp.Token)
	require.NotNil(t, lp.CreatedAt)

	r = runCLI(t, nil, "--data", dir, "peer", "list")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Len(t, lines, 3, r.stdout)
	assert.Regexp(t, `^PEER\s+STATE\s+KEYS\s+TOKEN\s+SCOPES\s+NAME$`, lines[0])
	assert.Regexp(t, `^ci\s+enabled\s+1\s+-\s+git\s*$`, lines[1])
	assert.Regexp(t, `^laptop\s+enabled\s+3\s+-\s+ssh,sftp:write\s+My laptop$`, lines[2])

	r = runCLI(t, nil, "--data", dir, "peer", "show", "laptop")
	require.Equal(t, 0, r.code, r.stderr)
	for _, want := range []string{
		`(?m)^peer:\s+laptop$`, `(?m)^display name:\s+My laptop$`, `(?m)^state:\s+enabled$`, `(?m)^source:\s+database$`,
		`(?m)^keys:\s+` + node.Fingerprint() + `$`, `(?m)^\s+` + sshFP + `$`,
		`(?m)^scopes:\s+ssh, sftp:write$`, `(?m)^resources:\s+git:repo/alpha=read,write,create$`, `(?m)^token:\s+-$`,
		`(?m)^created:\s+\d{4}-\d\d-\d\dT`,
	} {
		assert.Regexp(t, want, r.stdout)
	}
	r = runCLI(t, nil, "--data", dir, "peer", "show", "laptop", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var shown peerJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &shown))
	assert.Equal(t, lp, shown)

	// Token: printed alone, once; the database keeps only its hash, and it
	// resolves to the peer.
	r = runCLI(t, nil, "--data", dir, "peer", "token", "ci")
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `^alk_[A-Za-z0-9_-]{32}\n$`, r.stdout)
	tok := strings.TrimSpace(r.stdout)
	assert.Contains(t, r.stderr, "shown only this once")
	assert.NotContains(t, r.stderr, tok)
	raw, err := os.ReadFile(filepath.Join(dir, "alknet.db"))
	require.NoError(t, err)
	assert.NotContains(t, string(raw), tok, "the token is not stored")
	withStore(t, dir, func(ps *store.PeerStore) {
		id, ok := ps.IdentityByToken([]byte(tok))
		require.True(t, ok)
		assert.Equal(t, "ci", id.ID)
		_, ok = ps.IdentityByToken([]byte(tok[:len(tok)-1] + flipLast(tok)))
		assert.False(t, ok, "a wrong token of the same prefix")
	})
	assert.True(t, peerList(t, dir)[0].Token)

	// Disable and enable.
	r = runCLI(t, nil, "--data", dir, "peer", "disable", "laptop")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "peer laptop disabled\n", r.stderr)
	assert.False(t, peerList(t, dir)[1].Enabled)
	withStore(t, dir, func(ps *store.PeerStore) {
		_, ok := ps.IdentityByFingerprint(node.Fingerprint())
		assert.False(t, ok, "a disabled peer resolves to nothing")
	})
	r = runCLI(t, nil, "--data", dir, "peer", "show", "laptop")
	assert.Regexp(t, `(?m)^state:\s+disabled$`, r.stdout)
	r = runCLI(t, nil, "--data", dir, "peer", "enable", "laptop")
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, peerList(t, dir)[1].Enabled)

	// Bad input: a one-line error, a non-zero exit, nothing changed.
	before := dbState(t, dir)
	garbage := filepath.Join(tmp, "garbage.pub")
	require.NoError(t, os.WriteFile(garbage, []byte("ssh-ed25519 AAAAnotbase64!!\n"), 0o644))
	rsa := filepath.Join(tmp, "rsa.pub")
	require.NoError(t, os.WriteFile(rsa, []byte("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDDHr/jh2Jy4yALcK4JyWbVkPRaWmhck3IgCoeOO3z1e2dBowLh64QAM+Qb72pxekALga2oi4GvT+TlWNhzPH4V4iO8Oc0FEcHVaa2jnkWDVDBVPAgbP/Lj4Sj6oo6z+Zn5Ul4qkw1qFXJqMRPhFn0XUUudCM1FkAg2ZF0QkxWhxQ== x\n"), 0o644))
	empty := filepath.Join(tmp, "empty.pub")
	require.NoError(t, os.WriteFile(empty, []byte("# nothing\n"), 0o644))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"duplicate name", []string{"add", "laptop", "--node", coretest.Key(t).NodeID().String()}, `peer "laptop" already exists`},
		{"key of another peer", []string{"add", "new", "--node", node.String()}, `belongs to peer "laptop"`},
		{"no key", []string{"add", "new", "--scope", "ssh"}, "needs at least one key"},
		{"malformed node id", []string{"add", "new", "--node", "abc"}, `--node "abc"`},
		{"malformed fingerprint", []string{"add", "new", "--fingerprint", "ed25519:1234"}, "invalid fingerprint"},
		{"missing key file", []string{"add", "new", "--ssh-key", filepath.Join(tmp, "nope.pub")}, "no such file"},
		{"private key file", []string{"add", "new", "--ssh-key", priv}, "private key; give the .pub file"},
		{"garbage key file", []string{"add", "new", "--ssh-key", garbage}, "not an OpenSSH public key"},
		{"rsa key file", []string{"add", "new", "--ssh-key", rsa}, "not ssh-ed25519"},
		{"empty key file", []string{"add", "new", "--ssh-key", empty}, "no public key in the file"},
		{"bad scope syntax", []string{"add", "new", "--node", coretest.Key(t).NodeID().String(), "--scope", "Shell Access"}, `unknown scope syntax "Shell Access"`},
		{"bad resource", []string{"add", "new", "--node", coretest.Key(t).NodeID().String(), "--resource", "git:repo/a"}, "want TYPE=ACTION"},
		{"bad resource type", []string{"add", "new", "--node", coretest.Key(t).NodeID().String(), "--resource", "repo=read"}, `invalid resource type "repo"`},
		{"bad peer id", []string{"add", "New Peer", "--node", coretest.Key(t).NodeID().String()}, `invalid peer id "New Peer"`},
		{"add without name", []string{"add", "--node", coretest.Key(t).NodeID().String()}, "usage: alknet peer add NAME"},
		{"rm unknown", []string{"rm", "ghost"}, `no peer "ghost"`},
		{"show unknown", []string{"show", "ghost"}, `no peer "ghost"`},
		{"disable unknown", []string{"disable", "ghost"}, `no peer "ghost"`},
		{"enable unknown", []string{"enable", "ghost"}, `no peer "ghost"`},
		{"token unknown", []string{"token", "ghost"}, `no peer "ghost"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, nil, append([]string{"--data", dir, "peer"}, tc.args...)...)
			assert.NotEqual(t, 0, r.code)
			assert.Contains(t, r.stderr, tc.want)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one-line error: %q", r.stderr)
			assert.Empty(t, r.stdout)
			assert.Equal(t, before, dbState(t, dir), "nothing changed")
		})
	}

	r = runCLI(t, nil, "--data", dir, "peer", "rm", "laptop")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "removed peer laptop\n", r.stderr)
	peers = peerList(t, dir)
	require.Len(t, peers, 1)
	assert.Equal(t, "ci", peers[0].ID)
	// Its keys are free again.
	r = runCLI(t, nil, "--data", dir, "peer", "add", "laptop2", "--ssh-key", pub)
	require.Equal(t, 0, r.code, r.stderr)
}

func flipLast(s string) string {
	if s[len(s)-1] == 'A' {
		return "B"
	}
	return "A"
}

// dbState is every stored peer of dir and the number of notifications:
// what a refused command must leave untouched.
func dbState(t *testing.T, dir string) string {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "alknet.db"))
	require.NoError(t, err)
	defer db.Close()
	ps, err := store.NewPeerStore(db, store.PeerStoreConfig{})
	require.NoError(t, err)
	defer ps.Close()
	peers, err := ps.ListPeers(t.Context())
	require.NoError(t, err)
	var n int
	require.NoError(t, db.Read(t.Context(), func(tx *sql.Tx) error {
		return tx.QueryRowContext(t.Context(), `SELECT count(*) FROM notifications`).Scan(&n)
	}))
	return fmt.Sprintf("%+v notifications=%d", peers, n)
}

// withStore opens dir's database in this process.
func withStore(t *testing.T, dir string, fn func(ps *store.PeerStore)) {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "alknet.db"))
	require.NoError(t, err)
	defer db.Close()
	ps, err := store.NewPeerStore(db, store.PeerStoreConfig{})
	require.NoError(t, err)
	defer ps.Close()
	fn(ps)
}

// TestPeerCLIConfigPeers: [[peers]] of config.toml are listed, cannot be
// changed with the CLI, and a database peer with a config peer's id is
// refused by `peer add` and makes `serve` fail with a clear error.
func TestPeerCLIConfigPeers(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "node")
	cfgKey := coretest.Key(t).NodeID()
	require.NoError(t, os.MkdirAll(dir, 0o700))
	config := "[[peers]]\nid = \"desk\"\nfingerprints = [\"" + cfgKey.Fingerprint() + "\"]\nscopes = [\"ssh\"]\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600))

	peers := peerList(t, dir)
	require.Len(t, peers, 1)
	assert.Equal(t, "desk", peers[0].ID)
	assert.Equal(t, "config", peers[0].Source)
	assert.Nil(t, peers[0].CreatedAt)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "desk", "--node", coretest.Key(t).NodeID().String()}, `peer "desk" is defined both in the configuration and in the database`},
		{[]string{"add", "other", "--node", cfgKey.String()}, `configuration peer "desk"`},
		{[]string{"rm", "desk"}, "defined in the configuration"},
		{[]string{"disable", "desk"}, "defined in the configuration"},
	} {
		r := runCLI(t, nil, append([]string{"--data", dir, "peer"}, tc.args...)...)
		assert.NotEqual(t, 0, r.code, tc.args)
		assert.Contains(t, r.stderr, tc.want)
		assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one-line error: %q", r.stderr)
	}
	assert.Len(t, peerList(t, dir), 1, "nothing changed")

	// A peer added while config.toml did not list it, then listed there:
	// serve refuses to guess.
	r := runCLI(t, nil, "--data", dir, "peer", "--config", filepath.Join(dir, "missing.toml"), "add", "desk", "--node", coretest.Key(t).NodeID().String())
	assert.NotEqual(t, 0, r.code, "an explicit --config must exist")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty.toml"), nil, 0o600))
	r = runCLI(t, nil, "--data", dir, "peer", "--config", filepath.Join(dir, "empty.toml"), "add", "desk", "--node", coretest.Key(t).NodeID().String())
	require.Equal(t, 0, r.code, r.stderr)
	r = runCLI(t, nil, "--data", dir, "serve", "--listen", "127.0.0.1:0")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, `peer "desk" is defined both in the configuration and in the database`)
	assert.Equal(t, 1, strings.Count(r.stderr, "\n")-strings.Count(r.stderr, "created node identity"), "one-line error: %q", r.stderr)
}

// TestPeerCLIReachesRunningServer: `alknet serve` reads its peers from the
// database and follows changes made by `alknet peer` in another process:
// the refusal reason of a gated ALPN changes from "authentication required"
// (unknown key) to "missing scope sftp" (known peer without the scope)
// without restart.
func TestPeerCLIReachesRunningServer(t *testing.T) {
	t.Parallel()
	n := startNode(t, filepath.Join(t.TempDir(), "server"), "")
	client := filepath.Join(t.TempDir(), "client")
	cfp := fingerprintOf(t, client)
	pipe := func() result {
		return runCLI(t, strings.NewReader(""), "--data", client, "pipe", "--alpn", "alknet/sftp", n.Addr)
	}
	r := pipe()
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "authentication required")

	r = runCLI(t, nil, "--data", n.DataDir, "peer", "add", "client", "--fingerprint", cfp, "--scope", "ssh")
	require.Equal(t, 0, r.code, r.stderr)
	// The server picks the change up within milliseconds; the CLI run
	// above already took longer than that, but poll with a bound rather
	// than assume.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = pipe()
		if strings.Contains(r.stderr, "missing scope sftp") || time.Now().After(deadline) {
			break
		}
	}
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "missing scope sftp", "the running server knows the new peer")
}

// TestPeerCLILiveRevocation runs a gated endpoint over a data directory's
// database in this process while `alknet peer add` and `alknet peer rm` run
// as separate processes: the new peer connects within 1 s without restart,
// and rm closes its live connection with CodeRevoked and refuses new ones.
func TestPeerCLILiveRevocation(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "node")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	db, err := store.Open(filepath.Join(dir, "alknet.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	ps, err := store.NewPeerStore(db, store.PeerStoreConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ps.Close() })
	srv := coretest.StartEndpoint(t, core.Config{Identities: ps},
		coretest.Route{Handler: core.Ping{}, ACL: core.AccessControl{RequiredScopes: []string{"echo"}}})
	reloaded := make(chan struct{}, 1)
	ps.OnReload(func() {
		srv.Reauthorize()
		select {
		case reloaded <- struct{}{}:
		default:
		}
	})
	ck := coretest.Key(t)
	cli := coretest.ClientEndpoint(t, ck)
	dial := func() (core.Conn, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		c, err := cli.Dial(ctx, srv.Addr(), core.PingALPN)
		if err != nil {
			return nil, err
		}
		_, err = peerEcho(ctx, c, "ping")
		return c, err
	}
	_, err = dial()
	requireClose(t, err, core.CodeForbidden, "authentication required")

	r := runCLI(t, nil, "--data", dir, "peer", "add", "phone", "--node", ck.NodeID().String(), "--scope", "echo", "--allow-unknown-scope")
	require.Equal(t, 0, r.code, r.stderr)
	committed := time.Now() // the CLI process has exited: its write is committed
	deadline := time.After(time.Second)
	for {
		if _, ok := ps.IdentityByFingerprint(ck.NodeID().Fingerprint()); ok {
			break
		}
		select {
		case <-reloaded:
		case <-deadline:
			t.Fatal("peer add did not reach the running endpoint within 1s")
		}
	}
	t.Logf("peer add visible %v after the CLI exited", time.Since(committed))
	conn, err := dial()
	require.NoError(t, err)

	r = runCLI(t, nil, "--data", dir, "peer", "rm", "phone")
	require.Equal(t, 0, r.code, r.stderr)
	select {
	case <-conn.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the removed peer's connection is still open")
	}
	_, err = conn.AcceptStream(t.Context())
	requireClose(t, err, core.CodeRevoked, "authentication required")
	_, err = dial()
	requireClose(t, err, core.CodeForbidden, "authentication required")
}

func requireClose(t *testing.T, err error, code uint64, reason string) {
	t.Helper()
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "want an application close, got %v", err)
	assert.Equal(t, code, ce.Code)
	assert.Contains(t, ce.Reason, reason)
}

// peerEcho sends msg on a new stream of an alknet/ping connection and returns
// the answer.
func peerEcho(ctx context.Context, c core.Conn, msg string) (string, error) {
	s, err := c.OpenStream(ctx)
	if err != nil {
		return "", err
	}
	defer s.Close()
	if _, err := io.WriteString(s, msg); err != nil {
		return "", err
	}
	if err := s.CloseWrite(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(s)
	if err == nil && string(b) != msg {
		return string(b), io.ErrUnexpectedEOF
	}
	return string(b), err
}

// sshAuthorizedLine is k's public key as an OpenSSH authorized_keys line.
func sshAuthorizedLine(t *testing.T, k core.SecretKey) string {
	t.Helper()
	pk, err := gossh.NewPublicKey(k.NodeID().PublicKey())
	require.NoError(t, err)
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pk)))
}
