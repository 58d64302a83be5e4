package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPipeTCP: pipe --tcp carries 64 MiB through alknet/ping byte-exact
// over the TCP+TLS listener that serve opens by default.
func TestPipeTCP(t *testing.T) {
	n := startNode(t, filepath.Join(t.TempDir(), "server"), "")
	client := filepath.Join(t.TempDir(), "client")
	data := make([]byte, 64<<20)
	_, _ = rand.Read(data)
	cmd := exec.Command(alknetBin, "--data", client, "pipe", "--tcp", "--alpn", core.PingALPN, n.Addr)
	cmd.Stdin = bytes.NewReader(data)
	h := sha256.New()
	cmd.Stdout = h
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	assert.Equal(t, sha256.Sum256(data), [32]byte(h.Sum(nil)), "pipe --tcp is byte-exact")
}

func TestPipeTCPRefusals(t *testing.T) {
	n := startNode(t, filepath.Join(t.TempDir(), "server"), "")
	quicOnly := startNode(t, filepath.Join(t.TempDir(), "quic-only"), "", "--no-tcp")
	client := filepath.Join(t.TempDir(), "client")
	fingerprintOf(t, client)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"gated ALPN, unknown peer", []string{"pipe", "--tcp", "--alpn", "alknet/ssh", n.Addr}, "peer not authorized for alknet/ssh: authentication required"},
		{"unserved ALPN", []string{"pipe", "--tcp", "--alpn", "alknet/nope", n.Addr}, "node does not serve this alpn over tcp: alknet/nope"},
		{"no tcp listener", []string{"pipe", "--tcp", "--alpn", core.PingALPN, quicOnly.Addr}, "connection refused"},
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

// TestSSHOverTCP: OpenSSH's ssh with ProxyCommand alknet pipe --tcp runs a
// command and carries bulk data byte-exact.
func TestSSHOverTCP(t *testing.T) {
	e := newSSHEnv(t, map[string][]string{"alice": allSSH}, "")
	opts := e.opts("alice", "alice")
	for i, o := range opts {
		if strings.HasPrefix(o, "ProxyCommand=") {
			opts[i] = strings.Replace(o, " pipe ", " pipe --tcp ", 1)
		}
	}
	run := func(stdin *bytes.Reader, out *bytes.Buffer, args ...string) (string, int) {
		if stdin == nil {
			return e.sshRun(append(append(opts, "node"), args...), nil, out)
		}
		return e.sshRun(append(append(opts, "node"), args...), stdin, out)
	}
	var out bytes.Buffer
	stderr, code := run(nil, &out, "echo over-tcp; exit 4")
	assert.Equal(t, 4, code, stderr)
	assert.Equal(t, "over-tcp\n", out.String())

	data := make([]byte, 16<<20)
	_, _ = rand.Read(data)
	out.Reset()
	stderr, code = run(bytes.NewReader(data), &out, "cat")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, sha256.Sum256(data), sha256.Sum256(out.Bytes()))
	assert.Regexp(t, `alpn=alknet/ssh .*remote=127\.0\.0\.1:\d+`, e.node.Log())
}
