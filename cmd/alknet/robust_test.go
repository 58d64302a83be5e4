package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// watchBuffer is a syncBuffer that wakes waiters on every write.
type watchBuffer struct {
	syncBuffer
	wrote chan struct{}
}

func newWatchBuffer() *watchBuffer { return &watchBuffer{wrote: make(chan struct{}, 1)} }

func (w *watchBuffer) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return n, err
}

// waitFor waits until the buffer holds want, failing after d.
func (w *watchBuffer) waitFor(t *testing.T, want string, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for !strings.Contains(w.String(), want) {
		select {
		case <-w.wrote:
		case <-deadline.C:
			t.Fatalf("no %q within %s; got: %s", want, d, w.String())
		}
	}
}

// proc is a started alknet process.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *watchBuffer
	done           chan struct{}
	err            error
}

// startProc starts the binary with args; it is killed when the test ends.
func startProc(t *testing.T, stdin io.Reader, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(alknetBin, args...), stdout: newWatchBuffer(), stderr: newWatchBuffer(), done: make(chan struct{})}
	p.cmd.Stdin = stdin
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	require.NoError(t, p.cmd.Start())
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("still running after %s; stderr: %s", d, p.stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, p.err)
	return 0
}

// The node's own key is its owner: call (admin operations included) and cp
// work from the node's own data directory, and [owner] enabled = false
// turns that off.
func TestOwnerPeer(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "node")
	n := startNode(t, data, "")
	nodeID := strings.SplitN(n.Addr, "@", 2)[0]

	r := runCLI(t, nil, "--data", data, "call", "--json", n.Addr, "node/info")
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, strings.HasPrefix(r.stdout, `{"id":"`+nodeID+`"`), r.stdout)

	r = runCLI(t, nil, "--data", data, "call", "--json", n.Addr, "node/peers")
	require.Equal(t, 0, r.code, "the owner holds admin: %s", r.stderr)
	assert.Equal(t, `{"peers":[]}`+"\n", r.stdout, "the owner is not a stored peer")

	src := filepath.Join(t.TempDir(), "up.txt")
	require.NoError(t, os.WriteFile(src, []byte("owner upload\n"), 0o600))
	r = runCLI(t, nil, "--data", data, "cp", "-q", src, n.Addr+":/up.txt")
	require.Equal(t, 0, r.code, "the owner holds sftp:write: %s", r.stderr)
	got, err := os.ReadFile(filepath.Join(data, "files", "up.txt"))
	require.NoError(t, err)
	assert.Equal(t, "owner upload\n", string(got))
	n.stop(t)

	off := filepath.Join(t.TempDir(), "off")
	n = startNode(t, off, "[owner]\nenabled = false\n")
	waitLog(t, n, "msg=serving")
	assert.Contains(t, n.Log(), "owner=false")
	r = runCLI(t, nil, "--data", off, "call", n.Addr, "node/info")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "peer not authorized for alknet/call: authentication required")

	// The name is reserved.
	r = runCLI(t, nil, "--data", off, "peer", "add", "owner", "--node", nodeID, "--scope", "call")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, `peer id "owner" is reserved`)
}

func TestHostAddrs(t *testing.T) {
	t.Parallel()
	nets := func(cidrs ...string) []net.Addr {
		var out []net.Addr
		for _, c := range cidrs {
			ip, n, err := net.ParseCIDR(c)
			require.NoError(t, err)
			n.IP = ip
			out = append(out, n)
		}
		return out
	}
	str := func(as []netip.Addr) []string {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = a.String()
		}
		return out
	}
	ifs := nets("127.0.0.1/8", "::1/128", "192.168.1.20/24", "fe80::1/64", "2001:db8::7/64", "10.0.0.5/8", "169.254.3.4/16")
	assert.Equal(t, []string{"192.168.1.20", "10.0.0.5", "2001:db8::7", "127.0.0.1", "::1"}, str(hostAddrs(ifs, false)))
	assert.Equal(t, []string{"192.168.1.20", "10.0.0.5", "127.0.0.1"}, str(hostAddrs(ifs, true)))
	assert.Equal(t, []string{"127.0.0.1"}, str(hostAddrs(nil, true)), "loopback always last")
}

// serve bound to 0.0.0.0 prints an address for every interface address,
// loopback last, instead of only [::1].
func TestServeListsEveryAddress(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "node")
	p := startProc(t, nil, "--data", data, "serve", "--listen", "0.0.0.0:0")
	p.stdout.waitFor(t, "@127.0.0.1:", 60*time.Second)
	p.stderr.waitFor(t, "msg=serving", 10*time.Second)
	lines := strings.Split(strings.TrimSpace(p.stdout.String()), "\n")
	var hosts []string
	for _, l := range lines {
		a, err := core.ParseAddr(l)
		require.NoError(t, err, l)
		h, _, err := net.SplitHostPort(a.Host)
		require.NoError(t, err)
		hosts = append(hosts, h)
	}
	assert.Equal(t, "127.0.0.1", hosts[len(hosts)-1], "loopback last: %v", lines)
	assert.NotContains(t, hosts, "::1", "0.0.0.0 is IPv4")
	ifaddrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, ia := range ifaddrs {
		ipn, ok := ia.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		assert.Contains(t, hosts, ipn.IP.String(), "every interface address is listed")
	}
	// Each printed address reaches the node.
	for _, l := range lines {
		r := runCLI(t, nil, "--data", filepath.Join(t.TempDir(), "c"), "ping", "-c", "1", l)
		assert.Equal(t, 0, r.code, "%s: %s", l, r.stderr)
	}
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	assert.Equal(t, 0, p.wait(t, 30*time.Second))
}

func TestDataDirPermissions(t *testing.T) {
	t.Parallel()
	t.Run("readable by others is tightened", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "d")
		require.NoError(t, os.Mkdir(dir, 0o755))
		require.NoError(t, os.Chmod(dir, 0o755))
		r := runCLI(t, nil, "--data", dir, "init")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stderr, "had mode 0755; others could read it, so it is now 0700")
		st, err := os.Stat(dir)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	})
	t.Run("writable by others is refused", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "d")
		require.NoError(t, os.Mkdir(dir, 0o777))
		require.NoError(t, os.Chmod(dir, 0o777))
		for _, args := range [][]string{{"init"}, {"serve", "--listen", "127.0.0.1:0"}, {"peer", "list"}} {
			r := runCLI(t, nil, append([]string{"--data", dir}, args...)...)
			assert.NotEqual(t, 0, r.code, args)
			assert.Contains(t, r.stderr, "has mode 0777: others can write to it", args)
			assert.Contains(t, r.stderr, "chmod 700 "+dir, args)
			assert.NoFileExists(t, filepath.Join(dir, "identity.key"), args)
		}
	})
	t.Run("config writable by others is refused", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "d")
		require.NoError(t, os.MkdirAll(dir, 0o700))
		cfg := filepath.Join(dir, "config.toml")
		require.NoError(t, os.WriteFile(cfg, []byte("listen = \"127.0.0.1:0\"\n"), 0o666))
		require.NoError(t, os.Chmod(cfg, 0o666))
		r := runCLI(t, nil, "--data", dir, "serve")
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "config "+cfg+" has mode 0666: others can write it")
		assert.Contains(t, r.stderr, "chmod 600 "+cfg)
	})
	t.Run("unwritable directory says so", func(t *testing.T) {
		base := t.TempDir()
		dir := filepath.Join(base, "d")
		r := runCLI(t, nil, "--data", dir, "init")
		require.Equal(t, 0, r.code, r.stderr)
		args := []string{"--data", dir, "serve", "--listen", "127.0.0.1:0"}
		name := alknetBin
		if os.Getuid() == 0 {
			// root writes anywhere: run as nobody, on a directory nobody owns.
			setpriv, err := exec.LookPath("setpriv")
			if err != nil {
				t.Skip("running as root without setpriv (util-linux); run as a normal user to check a read-only data directory")
			}
			for _, d := range []string{filepath.Dir(base), base} {
				require.NoError(t, os.Chmod(d, 0o755))
			}
			require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
				if err != nil {
					return err
				}
				return os.Chown(p, 65534, 65534)
			}))
			args = append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", alknetBin}, args...)
			name = setpriv
		}
		require.NoError(t, os.Chmod(dir, 0o500))
		t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		require.Error(t, err, "%s", out)
		assert.Equal(t, "alknet: data directory "+dir+" is not writable (mode 0500): permission denied\n", string(out))
	})
}

// Two serve on one data directory: the second refuses and names the first.
func TestServeLock(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "node")
	n := startNode(t, data, "")
	r := runCLI(t, nil, "--data", data, "serve", "--listen", "127.0.0.1:0")
	assert.NotEqual(t, 0, r.code)
	assert.Equal(t, "alknet: data directory "+data+" is in use by another alknet serve (pid "+
		strconv.Itoa(n.cmd.Process.Pid)+"); stop it first, or use another --data\n", r.stderr)
	assert.Empty(t, r.stdout)

	// kill -9 releases the lock: a new serve starts.
	require.NoError(t, n.cmd.Process.Kill())
	<-n.done
	startNode(t, data, "")
}

func TestPingLargePayload(t *testing.T) {
	t.Parallel()
	n := startNode(t, filepath.Join(t.TempDir(), "node"), "")
	client := filepath.Join(t.TempDir(), "client")

	// Larger than the flow-control windows: the echo must be read while
	// it is written.
	p := startProc(t, nil, "--data", client, "ping", "-c", "2", "-i", "0", "-s", "5000000", n.Addr)
	assert.Equal(t, 0, p.wait(t, 90*time.Second), p.stderr.String())
	assert.Equal(t, 2, strings.Count(p.stdout.String(), "5000000 bytes from 127.0.0.1:"), p.stdout.String())

	// SIGINT ends a ping in the middle of large echoes at once.
	p = startProc(t, nil, "--data", client, "ping", "-c", "0", "-i", "0", "-s", "16000000", n.Addr)
	p.stdout.waitFor(t, "16000000 bytes from", 90*time.Second)
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	assert.Equal(t, 0, p.wait(t, 10*time.Second), "interrupted after an echo: success like ping(8)")

	// SIGTERM while the first echo is still in flight exits 130.
	p = startProc(t, nil, "--data", client, "ping", "-c", "1", "-s", "16000000", n.Addr)
	p.stdout.waitFor(t, "connected to", 60*time.Second)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	code := p.wait(t, 10*time.Second)
	if !strings.Contains(p.stdout.String(), "bytes from") {
		assert.Equal(t, 130, code, p.stderr.String())
	}
}

func TestPingBadFlags(t *testing.T) {
	t.Parallel()
	addr := core.NodeID{1}.String() + "@127.0.0.1:9"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ping", "-s", "-1", addr}, "-s -1: want 0 to 16777216 bytes"},
		{[]string{"ping", "-s", "16777217", addr}, "-s 16777217: want 0 to 16777216 bytes"},
		{[]string{"ping", "-c", "-5", addr}, "-c -5: want 0 (until interrupted) or a positive count"},
		{[]string{"ping", "-i", "-1s", addr}, "-i -1s: must not be negative"},
		{[]string{"--connect-timeout", "-1s", "ping", addr}, "--connect-timeout -1s: must be positive"},
		{[]string{"--connect-timeout", "0s", "ping", addr}, "--connect-timeout 0s: must be positive"},
		{[]string{"--log-level", "bogus", "id"}, `--log-level "bogus": want debug, info, warn or error`},
		{[]string{"ping", core.NodeID{1}.String() + "@::1:4433"}, "an IPv6 address goes in brackets"},
		{[]string{"serve", "--listen", "::1:0"}, "an IPv6 address goes in brackets"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "d")
			fingerprintOf(t, data)
			r := runCLI(t, nil, append([]string{"--data", data}, tc.args...)...)
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, tc.want)
			assert.NotContains(t, r.stderr, "panic")
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
		})
	}
}

// A second SIGINT during the drain closes the open connections at once.
func TestServeSecondSignal(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "node")
	n := startNode(t, data, "", "--drain", "5m")
	in, w := osPipe(t)
	p := startProc(t, in, "--data", filepath.Join(t.TempDir(), "c"), "pipe", "--alpn", core.PingALPN, n.Addr)
	_, err := w.Write([]byte("hello\n"))
	require.NoError(t, err)
	p.stdout.waitFor(t, "hello\n", 60*time.Second) // the stream is open: drain will wait for it

	require.NoError(t, n.cmd.Process.Signal(os.Interrupt))
	waitLog(t, n, "shutting down")
	select {
	case <-n.done:
		t.Fatalf("serve exited on the first signal although a stream was open: %s", n.Log())
	default:
	}
	require.NoError(t, n.cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-n.done:
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 130, ee.ExitCode())
	case <-time.After(15 * time.Second):
		t.Fatalf("serve kept draining after a second SIGINT: %s", n.Log())
	}
	assert.Contains(t, n.Log(), "second signal: closing open connections now")
	_ = w.Close()
	p.wait(t, 30*time.Second)
}

// osPipe is an OS pipe for a child's stdin (exec then hands the child the
// descriptor, with no copying goroutine that Wait would wait for); the
// test writes to w and closes it.
func osPipe(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(); _ = w.Close() })
	return r, w
}

// waitLog waits for a node's log to contain want.
func waitLog(t *testing.T, n *node, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(n.Log(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log: %s", want, n.Log())
		}
		select {
		case <-n.done:
			if !strings.Contains(n.Log(), want) {
				t.Fatalf("serve exited before logging %q: %s", want, n.Log())
			}
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestMessages(t *testing.T) {
	t.Parallel()
	t.Run("no doubled prefix", func(t *testing.T) {
		assert.Equal(t, "alknet: endpoint shutting down", errorLine(errors.New("alknet: endpoint shutting down")))
		assert.Equal(t, "alknet: x", errorLine(errors.New("alknet: alknet: x")))
		assert.Equal(t, "alknet: listen: x", errorLine(errors.New("alknet: listen: x")))
		assert.Equal(t, "alknet: alknet/vault: wrong passphrase or damaged vault file", errorLine(errors.New("alknet/vault: wrong passphrase or damaged vault file")))
	})

	t.Run("empty database warns", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "d")
		require.NoError(t, os.MkdirAll(dir, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "alknet.db"), nil, 0o600))
		r := runCLI(t, nil, "--data", dir, "peer", "list")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stderr, "alknet.db is empty (0 bytes); the peers it held are gone")
		// Now a real database: no warning.
		r = runCLI(t, nil, "--data", dir, "peer", "list")
		assert.NotContains(t, r.stderr, "is empty")
	})

	t.Run("serve counts database and config peers", func(t *testing.T) {
		dir := t.TempDir()
		data := filepath.Join(dir, "node")
		a, b := fingerprintOf(t, filepath.Join(dir, "a")), fingerprintOf(t, filepath.Join(dir, "b"))
		c := fingerprintOf(t, filepath.Join(dir, "c"))
		for i, fp := range []string{a, b} {
			r := runCLI(t, nil, "--data", data, "peer", "add", "p"+strconv.Itoa(i), "--fingerprint", fp, "--scope", "call")
			require.Equal(t, 0, r.code, r.stderr)
		}
		n := startNode(t, data, "[[peers]]\nid = \"cfg\"\nfingerprints = [\""+c+"\"]\nscopes = [\"call\"]\n")
		waitLog(t, n, "msg=serving")
		assert.Regexp(t, `peers=3 db_peers=2 config_peers=1 owner=true`, n.Log())
	})

	t.Run("revoked peer sees access revoked", func(t *testing.T) {
		dir := t.TempDir()
		data, client := filepath.Join(dir, "node"), filepath.Join(dir, "client")
		r := runCLI(t, nil, "--data", data, "peer", "add", "laptop", "--fingerprint", fingerprintOf(t, client), "--scope", "call")
		require.Equal(t, 0, r.code, r.stderr)
		n := startNode(t, data, "")
		in, w := osPipe(t)
		_ = w
		p := startProc(t, in, "--data", client, "pipe", "--alpn", "alknet/call", n.Addr)
		// services/list answers once the call connection is up.
		waitConns(t, n, client)
		r = runCLI(t, nil, "--data", data, "peer", "disable", "laptop")
		require.Equal(t, 0, r.code, r.stderr)
		assert.NotEqual(t, 0, p.wait(t, 30*time.Second))
		assert.Equal(t, "alknet: access revoked by the node: peer not authorized for alknet/call: authentication required\n", p.stderr.String())

		// A new connection of the disabled peer hears the same.
		r = runCLI(t, nil, "--data", client, "call", n.Addr, "node/info")
		assert.NotEqual(t, 0, r.code)
		assert.Equal(t, "alknet: access revoked: this key's peer entry is disabled on the node\n", r.stderr)

		// Once removed, the key is unknown: refused with a hint.
		r = runCLI(t, nil, "--data", data, "peer", "rm", "laptop")
		require.Equal(t, 0, r.code, r.stderr)
		require.Eventually(t, func() bool {
			r = runCLI(t, nil, "--data", client, "call", n.Addr, "node/info")
			return strings.Contains(r.stderr, "authentication required")
		}, 10*time.Second, 50*time.Millisecond, "removal reaches the node")
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "authentication required (the node does not accept this client's key: it was never added, or it was removed or disabled")
	})

	t.Run("tampered vault", func(t *testing.T) {
		dir := t.TempDir()
		data := filepath.Join(dir, "node")
		pf := writeSecret(t, dir, "pass", "correct horse battery staple", 0o600)
		r := runCLI(t, nil, "--data", data, "vault", "init", "--words", "12", "--passphrase-file", pf)
		require.Equal(t, 0, r.code, r.stderr)
		path := filepath.Join(data, "vault.json")
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		var j map[string]any
		require.NoError(t, json.Unmarshal(raw, &j))
		ct := []byte(j["ciphertext"].(string))
		// Another base64 letter: the file still parses, the bytes differ.
		if ct[10] == 'A' {
			ct[10] = 'B'
		} else {
			ct[10] = 'A'
		}
		j["ciphertext"] = string(ct)
		raw, err = json.Marshal(j)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, raw, 0o600))
		r = runCLI(t, nil, "--data", data, "vault", "id", "--passphrase-file", pf)
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "wrong passphrase or damaged vault file")
	})
}

// waitConns waits until the node has logged an accepted connection from the
// client's key.
func waitConns(t *testing.T, n *node, clientDir string) {
	t.Helper()
	r := runCLI(t, nil, "--data", clientDir, "id", "--fingerprint")
	require.Equal(t, 0, r.code, r.stderr)
	fp := strings.TrimSpace(r.stdout)
	deadline := time.Now().Add(30 * time.Second)
	re := regexp.MustCompile(`msg="?connection accepted"?.*peer=` + regexp.QuoteMeta(fp))
	for !re.MatchString(n.Log()) {
		if time.Now().After(deadline) {
			t.Fatalf("no accepted connection from %s: %s", fp, n.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "node")
	fp := fingerprintOf(t, filepath.Join(dir, "a"))

	r := runCLI(t, nil, "--data", data, "peer", "add", "a", "--fingerprint", fp, "--scope", "sfpt")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, `unknown scope "sfpt" (did you mean "sftp"?)`)
	assert.Contains(t, r.stderr, "pass --allow-unknown-scope to grant it anyway")
	r = runCLI(t, nil, "--data", data, "peer", "list", "--json")
	assert.Equal(t, "[]\n", r.stdout, "nothing added")

	r = runCLI(t, nil, "--data", data, "peer", "add", "a", "--fingerprint", fp, "--scope", "myapp:op", "--allow-unknown-scope")
	require.Equal(t, 0, r.code, r.stderr)

	for _, tc := range []struct{ name, config, want string }{
		{"unknown scope", "[[peers]]\nid = \"b\"\nfingerprints = [\"" + fp + "\"]\nscopes = [\"shh\"]\n", `unknown scope "shh" (did you mean "ssh"?)`},
		{"bad id", "[[peers]]\nid = \"Bad Id\"\nfingerprints = [\"" + fp + "\"]\n", `invalid peer id "Bad Id": use 1-64 characters`},
		{"reserved id", "[[peers]]\nid = \"owner\"\nfingerprints = [\"" + fp + "\"]\n", `peer id "owner" is reserved`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "d")
			require.NoError(t, os.MkdirAll(d, 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(d, "config.toml"), []byte(tc.config), 0o600))
			r := runCLI(t, nil, "--data", d, "serve", "--listen", "127.0.0.1:0")
			assert.NotEqual(t, 0, r.code)
			assert.Contains(t, r.stderr, tc.want)
		})
	}
	d := filepath.Join(t.TempDir(), "d")
	require.NoError(t, os.MkdirAll(d, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(d, "config.toml"), []byte("[[peers]]\nid = \"b\"\nfingerprints = [\""+fp+"\"]\nscopes = [\"myapp:op\"]\nallow_unknown_scopes = true\n"), 0o600))
	r = runCLI(t, nil, "--data", d, "peer", "list", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"myapp:op"`)

	short := writeSecret(t, dir, "short", "x", 0o600)
	r = runCLI(t, nil, "--data", filepath.Join(dir, "v"), "vault", "init", "--passphrase-file", short)
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "passphrase too short (1 characters); use at least 8")
	assert.NoFileExists(t, filepath.Join(dir, "v", "vault.json"))
}
