package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPipeTCP: pipe --tcp carries 64 MiB through alknet/ping byte-exact
// over the TCP+TLS listener that serve opens by default.
func TestPipeTCP(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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

// writeCert writes a self-signed ECDSA P-256 certificate for names to
// dir/name.crt and its key to dir/name.key.
func writeCert(t *testing.T, dir, name string, names ...string) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: names}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	require.NoError(t, err)
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600))
	return crt, key
}

// TestServePublicCerts: a certificate from --tls-cert/--tls-key and one
// from [[tls]] in config.toml (a path relative to the config file) are
// each served to clients asking for their names, over TCP.
func TestServePublicCerts(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "node")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	flagCrt, flagKey := writeCert(t, t.TempDir(), "flag", "flag.example.test")
	writeCert(t, dir, "conf", "conf.example.test")
	n := startNode(t, dir, "[[tls]]\ncert = \"conf.crt\"\nkey = \"conf.key\"\n", "--tls-cert", flagCrt, "--tls-key", flagKey)
	a, err := core.ParseAddr(n.Addr)
	require.NoError(t, err)
	for _, name := range []string{"flag", "conf"} {
		c, err := tls.Dial("tcp", a.Host, &tls.Config{ServerName: name + ".example.test", NextProtos: []string{core.PingALPN}, InsecureSkipVerify: true})
		require.NoError(t, err)
		assert.Equal(t, name, c.ConnectionState().PeerCertificates[0].Subject.CommonName)
		_ = c.Close()
	}
}

func TestServeRejectsBadTLSFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	crt, _ := writeCert(t, dir, "x", "x.example.test")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unpaired", []string{"--tls-cert", crt}, "--tls-cert and --tls-key come in pairs: got 1 certificates and 0 keys"},
		{"acme without tcp", []string{"--acme-domain", "node.example.test", "--no-tcp"}, "acme needs the TCP listener: drop --no-tcp"},
		{"acme wildcard", []string{"--acme-domain", "*.example.test"}, `acme domain "*.example.test" is not a full dns name`},
		{"key of nothing", []string{"--tls-cert", crt, "--tls-key", filepath.Join(dir, "missing.key")}, "alknet: unusable tls certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fingerprintOf(t, filepath.Join(dir, tc.name)) // creates the identity first
			r := runCLI(t, nil, append([]string{"--data", filepath.Join(dir, tc.name), "serve", "--listen", "127.0.0.1:0"}, tc.args...)...)
			assert.NotEqual(t, 0, r.code)
			assert.Contains(t, r.stderr, tc.want)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one-line error: %q", r.stderr)
		})
	}
}

// TestCallTCP: alknet call --tcp reaches the node's call service over the
// TCP+TLS listener (the owner's key, from the node's own data directory).
func TestCallTCP(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "server")
	n := startNode(t, data, "")
	id, _, _ := strings.Cut(n.Addr, "@")
	r := runCLI(t, nil, "--data", data, "call", "--tcp", "--json", n.Addr, "node/info")
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, strings.HasPrefix(r.stdout, `{"id":"`+id+`"`), r.stdout)

	quicOnly := startNode(t, filepath.Join(t.TempDir(), "quic-only"), "", "--no-tcp")
	r = runCLI(t, nil, "--data", data, "call", "--tcp", quicOnly.Addr, "node/info")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "connection refused")
}

// TestSSHConfigTCPAndMissingKey: ssh-config --tcp puts pipe --tcp in the
// ProxyCommand, and a --key that does not exist is an error, not a config.
func TestSSHConfigTCPAndMissingKey(t *testing.T) {
	t.Parallel()
	addr, err := core.ParseAddr(strings.Repeat("y", 52) + "@127.0.0.1:4433")
	require.NoError(t, err)
	for _, tcp := range []bool{false, true} {
		block, err := sshHostBlock("box", "/bin/alknet", "/k/id", "/d/known_hosts", addr, tcp)
		require.NoError(t, err)
		assert.Equal(t, tcp, strings.Contains(block, " pipe --alpn alknet/ssh --tcp --key /k/id "), block)
	}
	dir := t.TempDir()
	r := runCLI(t, nil, "--data", filepath.Join(dir, "d"), "ssh-config", "--key", filepath.Join(dir, "nope"), addr.String())
	assert.NotEqual(t, 0, r.code)
	assert.Empty(t, r.stdout, "no config is printed")
	assert.Contains(t, r.stderr, "nope: no such file or directory (make one with ssh-keygen -t ed25519)")
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
}

// TestCpTCP: alknet cp --tcp uploads and downloads byte-exact with the
// checksum verified, each stream on a TCP connection of its own.
func TestCpTCP(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "server")
	n := startNode(t, data, "")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.bin")
	payload := make([]byte, 8<<20)
	_, _ = rand.Read(payload)
	require.NoError(t, os.WriteFile(src, payload, 0o600))

	r := runCLI(t, nil, "--data", data, "cp", "-q", "--tcp", src, n.Addr+":/up.bin")
	require.Equal(t, 0, r.code, r.stderr)
	got, err := os.ReadFile(filepath.Join(data, "files", "up.bin"))
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(payload), sha256.Sum256(got), "upload over tcp is byte-exact")

	back := filepath.Join(dir, "back.bin")
	r = runCLI(t, nil, "--data", data, "cp", "-q", "--tcp", n.Addr+":/up.bin", back)
	require.Equal(t, 0, r.code, r.stderr)
	got, err = os.ReadFile(back)
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(payload), sha256.Sum256(got), "download over tcp is byte-exact")
	assert.Regexp(t, `alpn=alknet/sftp .*remote=127\.0\.0\.1:\d+`, n.Log())
}
