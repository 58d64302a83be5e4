package ssh_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	alkssh "github.com/alkdev/alknet/ssh"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"
)

var allScopes = []string{"ssh", "ssh:shell", "ssh:exec", "ssh:forward", "ssh:listen", "ssh:echo"}

// fixture is a serving endpoint with the SSH handler and a set of peers.
type fixture struct {
	t     testing.TB
	srv   *core.Endpoint
	peers map[string]core.SecretKey
}

// newFixture serves cfg (HostKey and Identities are filled in) to peers,
// each a name -> scopes; the QUIC gate requires scope ssh like the binary.
func newFixture(t *testing.T, cfg alkssh.Config, peers map[string][]string) *fixture {
	return newFixtureTB(t, cfg, peers)
}

func newFixtureTB(t testing.TB, cfg alkssh.Config, peers map[string][]string) *fixture {
	t.Helper()
	f := &fixture{t: t, peers: map[string]core.SecretKey{}}
	var entries []core.PeerEntry
	for name, scopes := range peers {
		k := coretest.Key(t)
		f.peers[name] = k
		entries = append(entries, core.PeerEntry{PeerID: name, Fingerprints: []string{k.NodeID().Fingerprint()}, Scopes: scopes, Enabled: true})
	}
	idents := core.StaticPeers(entries)
	hostKey := coretest.Key(t)
	cfg.HostKey, cfg.Identities = hostKey, idents
	h, err := alkssh.New(cfg)
	require.NoError(t, err)
	f.srv = coretest.StartEndpoint(t, core.Config{SecretKey: hostKey, Identities: idents},
		coretest.Route{Handler: h, ACL: core.AccessControl{RequiredScopes: []string{"ssh"}}})
	return f
}

// conn dials the server on alknet/ssh with the QUIC key of peer tlsPeer.
func (f *fixture) conn(tlsKey core.SecretKey) core.Conn {
	f.t.Helper()
	ep := coretest.ClientEndpoint(f.t, tlsKey)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ep.Dial(ctx, f.srv.Addr(), alkssh.ALPN)
	require.NoError(f.t, err)
	f.t.Cleanup(func() { _ = c.Close(core.CodeOK, "") })
	return c
}

// client connects as peer name (same key on both layers).
func (f *fixture) client(name string) *gossh.Client {
	f.t.Helper()
	c, err := f.dial(name)
	require.NoError(f.t, err)
	return c
}

func (f *fixture) dial(name string) (*gossh.Client, error) {
	k := f.peers[name]
	conn := f.conn(k)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := alkssh.NewClient(ctx, conn, k, "tester")
	if err == nil {
		f.t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func run(t *testing.T, c *gossh.Client, cmd string, stdin io.Reader) (stdout, stderr string, err error) {
	t.Helper()
	s, err := c.NewSession()
	require.NoError(t, err)
	defer s.Close()
	var o, e bytes.Buffer
	s.Stdout, s.Stderr, s.Stdin = &o, &e, stdin
	within(t, 2*time.Minute, "command "+strconv.Quote(cmd), func() { err = s.Run(cmd) })
	return o.String(), e.String(), err
}

func exitStatus(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *gossh.ExitError
	require.ErrorAs(t, err, &ee)
	return ee.ExitStatus()
}

func TestExec(t *testing.T) {
	f := newFixture(t, alkssh.Config{}, map[string][]string{"alice": allScopes})
	c := f.client("alice")

	out, _, err := run(t, c, "echo ok; exit 3", nil)
	assert.Equal(t, "ok\n", out)
	assert.Equal(t, 3, exitStatus(t, err))

	out, errOut, err := run(t, c, "echo to-out; echo to-err >&2", nil)
	require.NoError(t, err)
	assert.Equal(t, "to-out\n", out)
	assert.Equal(t, "to-err\n", errOut)

	// Killed by a signal: exit-signal, not exit-status.
	_, _, err = run(t, c, "kill -TERM $$", nil)
	var ee *gossh.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "TERM", ee.Signal())

	// The environment: allowlisted client variables only.
	s, err := c.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Setenv("LANG", "C.UTF-8"))
	require.NoError(t, s.Setenv("LC_TIME", "C"))
	require.NoError(t, s.Setenv("GIT_PROTOCOL", "version=2"))
	assert.Error(t, s.Setenv("LD_PRELOAD", "/evil.so"))
	assert.Error(t, s.Setenv("GIT_DIR", "/etc"))
	o, err := s.Output(`echo "$LANG|$LC_TIME|$GIT_PROTOCOL|$LD_PRELOAD|$GIT_DIR"`)
	require.NoError(t, err)
	assert.Equal(t, "C.UTF-8|C|version=2||\n", string(o))
}

func TestCatLargeIsByteExact(t *testing.T) {
	f := newFixture(t, alkssh.Config{}, map[string][]string{"alice": allScopes})
	c := f.client("alice")
	data := make([]byte, 16<<20)
	_, _ = rand.Read(data)
	s, err := c.NewSession()
	require.NoError(t, err)
	s.Stdin = bytes.NewReader(data)
	h := sha256.New()
	s.Stdout = h
	require.NoError(t, s.Run("cat"))
	assert.Equal(t, sha256.Sum256(data), [32]byte(h.Sum(nil)))

	// Tail output is not lost when the program exits right after writing.
	out, _, err := run(t, c, "head -c 5000000 /dev/zero | tr '\\0' x; printf END", nil)
	require.NoError(t, err)
	assert.Len(t, out, 5000003)
	assert.True(t, strings.HasSuffix(out, "xEND"))
}

func TestPty(t *testing.T) {
	f := newFixture(t, alkssh.Config{}, map[string][]string{"alice": allScopes})
	c := f.client("alice")
	s, err := c.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.RequestPty("xterm", 40, 100, gossh.TerminalModes{}))
	in, err := s.StdinPipe()
	require.NoError(t, err)
	out, err := s.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, s.Shell())

	buf := &lineReader{r: out}
	_, err = io.WriteString(in, "tty; echo TERM=$TERM; stty size; echo DONE1\n")
	require.NoError(t, err)
	got := buf.until(t, "DONE1\r\n")
	assert.Regexp(t, `/dev/pts/\d+`, got)
	assert.Contains(t, got, "TERM=xterm")
	assert.Contains(t, got, "40 100")

	// window-change is a channel request, served apart from the data the
	// shell reads: ask until the shell sees the new size.
	require.NoError(t, s.WindowChange(50, 132))
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		marker := fmt.Sprintf("SIZE%d", i)
		_, err = io.WriteString(in, "stty size; echo "+marker+"\n")
		require.NoError(t, err)
		if strings.Contains(buf.until(t, marker+"\r\n"), "50 132") {
			break
		}
		require.True(t, time.Now().Before(deadline), "the new size never reached the pty")
	}

	_, err = io.WriteString(in, "exit 5\n")
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, out) }()
	assert.Equal(t, 5, exitStatus(t, s.Wait()))
}

// lineReader reads a pty stream until a marker appears (after the echo of
// the command line itself).
type lineReader struct {
	r   io.Reader
	acc []byte
}

func (l *lineReader) until(t *testing.T, marker string) string {
	t.Helper()
	buf := make([]byte, 4096)
	for {
		// The marker counts once it appears at the start of a line: the
		// echoed command has it after "echo ".
		if i := bytes.Index(l.acc, []byte("\n"+marker)); i >= 0 {
			out := string(l.acc[:i+1+len(marker)])
			l.acc = l.acc[i+1+len(marker):]
			return out
		}
		n, err := l.r.Read(buf)
		l.acc = append(l.acc, buf[:n]...)
		if err != nil {
			t.Fatalf("read until %q: %v (got %q)", marker, err, l.acc)
		}
	}
}

func TestAuthRefusals(t *testing.T) {
	f := newFixture(t, alkssh.Config{}, map[string][]string{
		"alice":   allScopes,
		"noscope": {"ssh"},
	})
	// A key the server does not know: the QUIC gate lets alice's TLS key in,
	// the SSH layer refuses the unknown SSH key.
	stranger := coretest.Key(t)
	conn := f.conn(f.peers["alice"])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := alkssh.NewClient(ctx, conn, stranger, "x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unable to authenticate")

	// Known with only the gate scope: no shell, no exec, no forwarding.
	c := f.client("noscope")
	s, err := c.NewSession()
	require.NoError(t, err)
	var stderr bytes.Buffer
	s.Stderr = &stderr
	require.NoError(t, s.Shell())
	assert.Equal(t, alkssh.ExitRefused, exitStatus(t, s.Wait()))
	assert.Equal(t, "alknet: missing scope ssh:shell\r\n", stderr.String())

	out, errOut, err := run(t, c, "echo should-not-run", nil)
	assert.Equal(t, alkssh.ExitRefused, exitStatus(t, err))
	assert.Empty(t, out)
	assert.Contains(t, errOut, "missing scope ssh:exec")

	_, err = alkssh.DialTCP(ctx, c, "127.0.0.1", 9)
	assert.True(t, alkssh.IsRefused(err), "%v", err)
	assert.Contains(t, err.Error(), "missing scope ssh:forward")

	_, err = c.Listen("tcp", "127.0.0.1:0")
	assert.Error(t, err)
}

func TestSubsystemAndExecHook(t *testing.T) {
	hookID := make(chan string, 1)
	cfg := alkssh.Config{
		Subsystems: map[string]alkssh.Subsystem{
			"echo": {Scope: "ssh:echo", Serve: func(ctx context.Context, ch io.ReadWriteCloser, id *alkssh.Identity) error {
				_, err := io.Copy(ch, ch)
				return err
			}},
			"locked": {Scope: "ssh:nobody", Serve: func(context.Context, io.ReadWriteCloser, *alkssh.Identity) error { return nil }},
		},
		Exec: func(ctx context.Context, cmd string, id *alkssh.Identity) (alkssh.ExecHandler, bool) {
			if !strings.HasPrefix(cmd, "greet ") {
				return nil, false
			}
			return func(ctx context.Context, stdio alkssh.ExecIO) (int, error) {
				hookID <- id.ID
				in, _ := io.ReadAll(stdio.Stdin)
				fmt.Fprintf(stdio.Stdout, "hello %s, %s%s", strings.TrimPrefix(cmd, "greet "), in, strings.Join(stdio.Env, ","))
				fmt.Fprint(stdio.Stderr, "note")
				return 7, nil
			}, true
		},
	}
	f := newFixture(t, cfg, map[string][]string{"alice": allScopes, "git": {"ssh"}})

	c := f.client("alice")
	s, err := c.NewSession()
	require.NoError(t, err)
	in, err := s.StdinPipe()
	require.NoError(t, err)
	out, err := s.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, s.RequestSubsystem("echo"))
	_, err = io.WriteString(in, "ping through the subsystem")
	require.NoError(t, err)
	require.NoError(t, in.Close())
	got, err := io.ReadAll(out)
	require.NoError(t, err)
	assert.Equal(t, "ping through the subsystem", string(got))

	// A refused subsystem says why on stderr before the failure reply: a
	// missing scope and an unknown name are told apart.
	for name, why := range map[string]string{"locked": "missing scope ssh:nobody", "nope": "unknown subsystem"} {
		s, err = c.NewSession()
		require.NoError(t, err)
		stderr, err := s.StderrPipe()
		require.NoError(t, err)
		assert.Error(t, s.RequestSubsystem(name), name)
		require.NoError(t, s.Close())
		var got []byte
		within(t, 10*time.Second, "the refused session's stderr", func() { got, _ = io.ReadAll(stderr) })
		assert.Equal(t, "alknet: "+why+"\r\n", string(got), name)
	}

	// The hook serves its commands to a caller without ssh:exec, and
	// nothing else.
	g := f.client("git")
	o, e, err := run(t, g, "greet world", strings.NewReader("bye"))
	assert.Equal(t, 7, exitStatus(t, err))
	assert.Equal(t, "hello world, bye", o)
	assert.Equal(t, "note", e)
	assert.Equal(t, "git", recv(t, hookID, 10*time.Second, "the exec hook's caller"))
	// The hook sees the allowlisted environment, GIT_PROTOCOL included.
	s, err = g.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Setenv("GIT_PROTOCOL", "version=2"))
	assert.Error(t, s.Setenv("GIT_EXEC_PATH", "/tmp"))
	var hookOut bytes.Buffer
	s.Stdout = &hookOut
	within(t, time.Minute, "the hook with an environment", func() { err = s.Run("greet env") })
	assert.Equal(t, 7, exitStatus(t, err))
	assert.Equal(t, "hello env, GIT_PROTOCOL=version=2", hookOut.String())
	assert.Equal(t, "git", recv(t, hookID, 10*time.Second, "the exec hook's caller"))
	_, e, err = run(t, g, "id", nil)
	assert.Equal(t, alkssh.ExitRefused, exitStatus(t, err))
	assert.Contains(t, e, "missing scope ssh:exec")
}

func TestForwarding(t *testing.T) {
	echo := echoServer(t)
	_, echoPort, _ := net.SplitHostPort(echo)
	rules, err := alkssh.ParseRules([]string{"!127.0.0.2", "127.0.0.0/8:" + echoPort, "localhost:" + echoPort})
	require.NoError(t, err)
	f := newFixture(t, alkssh.Config{ForwardAllow: rules}, map[string][]string{"alice": allScopes})
	c := f.client("alice")

	ch, err := alkssh.DialTCP(t.Context(), c, "127.0.0.1", port(t, echo))
	require.NoError(t, err)
	roundTrip(t, ch)

	// By name, resolved on the server.
	ch, err = alkssh.DialTCP(t.Context(), c, "localhost", port(t, echo))
	require.NoError(t, err)
	roundTrip(t, ch)

	for _, dest := range []string{"127.0.0.2", "10.1.2.3", "::1"} {
		_, err = alkssh.DialTCP(t.Context(), c, dest, port(t, echo))
		assert.True(t, alkssh.IsRefused(err), "%s: %v", dest, err)
	}
	_, err = alkssh.DialTCP(t.Context(), c, "127.0.0.1", port(t, echo)+1)
	assert.True(t, alkssh.IsRefused(err), "other port: %v", err)

	// Remote forward: loopback only.
	ln, err := c.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(conn, conn); conn.Close() }()
		}
	}()
	tc, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	roundTrip(t, tc.(*net.TCPConn))
	_, err = c.Listen("tcp", "0.0.0.0:0")
	assert.Error(t, err, "non-loopback bind refused")
}

func port(t *testing.T, addr string) uint16 {
	ap, err := net.ResolveTCPAddr("tcp", addr)
	require.NoError(t, err)
	return uint16(ap.Port)
}

// roundTrip writes 1 MiB, half-closes, and expects it echoed back whole.
func roundTrip(t *testing.T, c alkssh.HalfCloser) {
	t.Helper()
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	go func() {
		_, _ = c.Write(data)
		_ = c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got), "echoed %d bytes", len(got))
	_ = c.Close()
}

// echoServer echoes each TCP connection until EOF, then half-closes.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func TestLimitsAndShutdown(t *testing.T) {
	f := newFixture(t, alkssh.Config{MaxSessions: 1}, map[string][]string{"alice": allScopes})
	c := f.client("alice")
	shell, err := c.NewSession()
	require.NoError(t, err)
	in, err := shell.StdinPipe()
	require.NoError(t, err)
	out, err := shell.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, shell.Shell())
	_, err = io.WriteString(in, "echo READY\n")
	require.NoError(t, err)
	(&lineReader{r: io.MultiReader(strings.NewReader("\n"), out)}).until(t, "READY\n")

	_, err = c.NewSession()
	assert.Error(t, err, "MaxSessions 1")

	// Shutdown hangs up the interactive shell: the client sees exit-signal
	// HUP, then the connection ends.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.srv.Shutdown(ctx) }()
	within(t, 20*time.Second, "the shell to be hung up", func() { err = shell.Wait() })
	var ee *gossh.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "HUP", ee.Signal())
	waitc := make(chan error, 1)
	go func() { waitc <- c.Wait() }()
	select {
	case <-waitc:
	case <-time.After(20 * time.Second):
		t.Fatal("connection not closed after the drain")
	}
	require.NoError(t, recv(t, done, 20*time.Second, "Shutdown to return"))
}

func TestIdleTimeout(t *testing.T) {
	f := newFixture(t, alkssh.Config{IdleTimeout: 200 * time.Millisecond}, map[string][]string{"alice": allScopes})
	c := f.client("alice")
	errc := make(chan error, 1)
	go func() { errc <- c.Wait() }()
	select {
	case <-errc:
	case <-time.After(20 * time.Second):
		t.Fatal("idle connection was not closed")
	}
	_, err := c.NewSession()
	assert.Error(t, err)
}

func TestHomeDir(t *testing.T) {
	root := t.TempDir()
	cfg := alkssh.Config{HomeDir: func(id *alkssh.Identity) (string, error) {
		if id.ID == "homeless" {
			return "", fmt.Errorf("peer %q has no home", id.ID)
		}
		dir := filepath.Join(root, id.ID)
		return dir, os.MkdirAll(dir, 0o700)
	}}
	f := newFixture(t, cfg, map[string][]string{"alice": allScopes, "homeless": allScopes})
	out, _, err := run(t, f.client("alice"), "pwd", nil)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(root, "alice")+"\n", out)

	out, errOut, err := run(t, f.client("homeless"), "pwd", nil)
	assert.Equal(t, alkssh.ExitRefused, exitStatus(t, err))
	assert.Empty(t, out)
	assert.Equal(t, "alknet: no home directory\r\n", errOut)
}
