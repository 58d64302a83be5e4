package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInitAndID(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "node")
	r := runCLI(t, nil, "--data", dir, "init")
	require.Equal(t, 0, r.code, r.stderr)
	id := strings.TrimSpace(r.stdout)
	parsed, err := core.ParseNodeID(id)
	require.NoError(t, err)
	assert.Equal(t, id, parsed.String())
	st, err := os.Stat(filepath.Join(dir, "identity.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// init again keeps the key.
	r = runCLI(t, nil, "--data", dir, "init")
	require.Equal(t, 0, r.code)
	assert.Equal(t, id, strings.TrimSpace(r.stdout))

	r = runCLI(t, nil, "--data", dir, "id")
	assert.Equal(t, id+"\n", r.stdout, "id prints the value alone")
	r = runCLI(t, nil, "--data", dir, "id", "--fingerprint")
	assert.Equal(t, parsed.Fingerprint()+"\n", r.stdout)

	r = runCLI(t, nil, "--data", filepath.Join(t.TempDir(), "empty"), "id")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "run alknet init")
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one-line error")

	require.NoError(t, os.Chmod(filepath.Join(dir, "identity.key"), 0o644))
	r = runCLI(t, nil, "--data", dir, "id")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "chmod 600")
}

func TestServePingPipe(t *testing.T) {
	t.Parallel()
	n := startNode(t, filepath.Join(t.TempDir(), "server"), "")
	assert.Regexp(t, `^[ybndrfg8ejkmcpqxot1uwisza345h769]{52}@127\.0\.0\.1:\d+$`, n.Addr)
	client := filepath.Join(t.TempDir(), "client")

	r := runCLI(t, nil, "--data", client, "ping", "-c", "3", "-i", "10ms", n.Addr)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, regexp.MustCompile(`(?m)^32 bytes from 127\.0\.0\.1:\d+: seq=\d time=[\d.]+ ms$`).FindAllString(r.stdout, -1), 3, r.stdout)

	// 64 MiB of random bytes through pipe --alpn alknet/ping come back intact.
	data := make([]byte, 64<<20)
	_, _ = rand.Read(data)
	cmd := exec.Command(alknetBin, "--data", client, "pipe", "--alpn", core.PingALPN, n.Addr)
	cmd.Stdin = bytes.NewReader(data)
	h := sha256.New()
	cmd.Stdout = h
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	assert.Equal(t, sha256.Sum256(data), [32]byte(h.Sum(nil)), "pipe is byte-exact")
}

func TestPipeRefusals(t *testing.T) {
	t.Parallel()
	n := startNode(t, filepath.Join(t.TempDir(), "server"), "")
	client := filepath.Join(t.TempDir(), "client")
	fingerprintOf(t, client)
	a, err := core.ParseAddr(n.Addr)
	require.NoError(t, err)

	other := core.NodeID{1, 2, 3}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unserved ALPN", []string{"pipe", "--alpn", "alknet/nope", n.Addr}, "node does not serve alknet/nope"},
		{"wrong node id", []string{"pipe", "--alpn", core.PingALPN, other.String() + "@" + a.Host}, "remote key does not match the dialed node id"},
		{"unreachable", []string{"--connect-timeout", "500ms", "pipe", "--alpn", core.PingALPN, a.ID.String() + "@127.0.0.1:9"}, "no answer within 500ms"},
		{"bad address", []string{"pipe", "--alpn", core.PingALPN, "nonsense"}, "invalid node address"},
		{"missing alpn", []string{"pipe", n.Addr}, "--alpn is required"},
		{"ping wrong id", []string{"ping", "-c", "1", other.String() + "@" + a.Host}, "remote key does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, strings.NewReader(""), append([]string{"--data", client}, tc.args...)...)
			assert.NotEqual(t, 0, r.code)
			assert.Contains(t, r.stderr, tc.want)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one-line error: %q", r.stderr)
			assert.Empty(t, r.stdout)
		})
	}
}

func TestServeRejectsBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.toml"), []byte("listen = \"127.0.0.1:0\"\nlisten_typo = 1\n"), 0o600))
	r := runCLI(t, nil, "--data", dir, "serve")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "unknown keys: listen_typo")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.toml"), []byte("[[peers]]\nid = \"x\"\nfingerprints = [\"ed25519:zz\"]\n"), 0o600))
	r = runCLI(t, nil, "--data", dir, "serve")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, `peer "x"`)
}
