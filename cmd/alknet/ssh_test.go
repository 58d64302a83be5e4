package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"
)

// sshKey is a test key in OpenSSH format (0600): --key for pipe and -i for
// ssh.
type sshKey struct {
	path string
	fp   string
}

func newSSHKey(t *testing.T, dir, name string) sshKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := gossh.MarshalPrivateKey(priv, name)
	require.NoError(t, err)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	id, err := core.NodeIDFromPublicKey(priv.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	return sshKey{path: path, fp: id.Fingerprint()}
}

// sshEnv is a running node with SSH peers and what OpenSSH needs to reach it.
type sshEnv struct {
	t          *testing.T
	node       *node
	dir        string
	keys       map[string]sshKey
	knownHosts string
	alias      string
}

// newSSHEnv starts a node whose peers are name -> scopes, each with its own
// OpenSSH key; extra is appended to config.toml.
func newSSHEnv(t *testing.T, peers map[string][]string, extra string) *sshEnv {
	t.Helper()
	needClient(t, "ssh", "openssh-client")
	dir := t.TempDir()
	e := &sshEnv{t: t, dir: dir, keys: map[string]sshKey{}}
	var cfg strings.Builder
	for name, scopes := range peers {
		k := newSSHKey(t, dir, name)
		e.keys[name] = k
		fmt.Fprintf(&cfg, "[[peers]]\nid = %q\nfingerprints = [%q]\nscopes = [%s]\n\n", name, k.fp, quoteList(scopes))
	}
	cfg.WriteString(extra)
	e.node = startNode(t, filepath.Join(dir, "node"), cfg.String())
	r := runCLI(t, nil, "ssh-config", "--known-hosts", e.node.Addr)
	require.Equal(t, 0, r.code, r.stderr)
	e.alias = strings.Fields(r.stdout)[0]
	e.knownHosts = filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(e.knownHosts, []byte(r.stdout), 0o600))
	return e
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// opts are the OpenSSH options that reach the node as peer with key (pipe
// key and SSH key may differ to test the SSH layer alone).
func (e *sshEnv) opts(pipeKey, sshKey string) []string {
	return []string{
		"-F", "/dev/null",
		"-o", "ProxyCommand=" + alknetBin + " --log-level error pipe --alpn alknet/ssh --key " + e.keys[pipeKey].path + " " + e.node.Addr,
		"-o", "HostKeyAlias=" + e.alias,
		"-o", "UserKnownHostsFile=" + e.knownHosts,
		"-o", "StrictHostKeyChecking=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "BatchMode=yes",
		"-i", e.keys[sshKey].path,
	}
}

// ssh runs OpenSSH's ssh as peer with args after the host.
func (e *sshEnv) ssh(peer string, stdin io.Reader, stdout io.Writer, args ...string) (stderr string, code int) {
	return e.sshWith(peer, peer, stdin, stdout, args...)
}

func (e *sshEnv) sshWith(pipeKey, sshKey string, stdin io.Reader, stdout io.Writer, args ...string) (string, int) {
	e.t.Helper()
	return e.sshRun(append(append(e.opts(pipeKey, sshKey), "node"), args...), stdin, stdout)
}

// sshW runs ssh -W dest (stdio forwarding over a direct-tcpip channel).
func (e *sshEnv) sshW(peer, dest string, stdin io.Reader, stdout io.Writer) (string, int) {
	e.t.Helper()
	return e.sshRun(append(e.opts(peer, peer), "-W", dest, "node"), stdin, stdout)
}

func (e *sshEnv) sshRun(args []string, stdin io.Reader, stdout io.Writer) (string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Stdin, cmd.Stdout = stdin, stdout
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return errb.String(), ee.ExitCode()
	}
	require.NoError(e.t, err, errb.String())
	return errb.String(), 0
}

var allSSH = []string{"ssh", "ssh:shell", "ssh:exec", "ssh:sftp", "sftp:write", "ssh:forward", "ssh:listen"}

func TestSSHExecAndBulk(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, map[string][]string{"alice": allSSH}, "")
	var out bytes.Buffer
	stderr, code := e.ssh("alice", nil, &out, "echo ok; exit 3")
	assert.Equal(t, 3, code, stderr)
	assert.Equal(t, "ok\n", out.String())

	// 64 MiB through cat come back byte-exact.
	data := make([]byte, 64<<20)
	_, _ = rand.Read(data)
	h := sha256.New()
	stderr, code = e.ssh("alice", bytes.NewReader(data), h, "cat")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, sha256.Sum256(data), [32]byte(h.Sum(nil)))
	assert.Contains(t, e.node.Log(), `msg="ssh auth accepted"`)
	assert.Contains(t, e.node.Log(), e.keys["alice"].fp)
}

func TestSSHConfigCommand(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, map[string][]string{"alice": allSSH}, "")
	data := filepath.Join(e.dir, "client")
	r := runCLI(t, nil, "--data", data, "ssh-config", "--name", "box", "--key", e.keys["alice"].path, e.node.Addr)
	require.Equal(t, 0, r.code, r.stderr)
	kh := filepath.Join(data, "known_hosts")
	assert.Contains(t, r.stdout, "Host box\n")
	assert.Contains(t, r.stdout, "ProxyCommand "+alknetBin+" --log-level error pipe --alpn alknet/ssh --key "+e.keys["alice"].path+" "+e.node.Addr+"\n")
	assert.Contains(t, r.stdout, "    UserKnownHostsFile "+kh+"\n")
	assert.Contains(t, r.stdout, "    StrictHostKeyChecking yes\n")
	assert.NotContains(t, r.stdout, " ssh-ed25519 AAAA", "stdout is only ssh_config")
	want, err := knownHostsLine(mustParseAddr(t, e.node.Addr).ID)
	require.NoError(t, err)
	got, err := os.ReadFile(kh)
	require.NoError(t, err)
	assert.Equal(t, want+"\n", string(got))
	fi, err := os.Stat(kh)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	cfg := filepath.Join(e.dir, "ssh_config")
	require.NoError(t, os.WriteFile(cfg, []byte(r.stdout), 0o600))
	out, err := exec.Command("ssh", "-F", cfg, "-o", "BatchMode=yes", "box", "echo via-config").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "via-config\n", string(out))

	// A wrong key in the known_hosts file is refused: the block is strict.
	other := core.NodeID{7}
	wrong, err := knownHostsLine(other)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(kh, []byte(strings.Replace(wrong, other.String(), e.alias, 1)+"\n"), 0o600))
	out, err = exec.Command("ssh", "-F", cfg, "-o", "BatchMode=yes", "box", "echo no").CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(out), "REMOTE HOST IDENTIFICATION HAS CHANGED")

	// --known-hosts prints the line alone.
	r = runCLI(t, nil, "--data", data, "ssh-config", "--known-hosts", e.node.Addr)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, want+"\n", r.stdout)
	// Bad names change nothing.
	r = runCLI(t, nil, "--data", data, "ssh-config", "--name", "a b", e.node.Addr)
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "cannot contain spaces")
}

func mustParseAddr(t *testing.T, s string) core.Addr {
	t.Helper()
	a, err := core.ParseAddr(s)
	require.NoError(t, err)
	return a
}

// readmeEnv is a HOME of its own with the test peer's key as
// ~/.ssh/id_ed25519 and a PATH whose alknet is the built binary, so that
// the README's commands run verbatim.
func readmeEnv(t *testing.T, e *sshEnv, peer string) (home string, env []string) {
	t.Helper()
	home = t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(home, ".ssh"), 0o700))
	key, err := os.ReadFile(e.keys[peer].path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), key, 0o600))
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "HOME", "XDG_DATA_HOME", "ALKNET_DATA", "PATH":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home, "PATH="+filepath.Dir(alknetBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	return home, env
}

func shell(t *testing.T, env []string, script string) string {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s: %s", script, out)
	return string(out)
}

// TestSSHConfigREADME runs the README's command verbatim, twice, and then
// OpenSSH with nothing but the resulting ~/.ssh/config. (OpenSSH reads the
// home directory from the password database, not $HOME, hence -F.)
func TestSSHConfigREADME(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, map[string][]string{"alice": allSSH}, "")
	home, env := readmeEnv(t, e, "alice")
	readme := "alknet ssh-config --name box --key ~/.ssh/id_ed25519 " + e.node.Addr + " >> ~/.ssh/config"
	shell(t, env, readme)
	sshCmd := "ssh -F ~/.ssh/config -o BatchMode=yes box 'echo from-the-node; echo $((6*7))'"
	assert.Equal(t, "from-the-node\n42\n", shell(t, env, sshCmd))

	// Running it again appends a second, identical block (ssh uses the
	// first) and leaves one known_hosts line.
	shell(t, env, readme)
	assert.Equal(t, "from-the-node\n42\n", shell(t, env, sshCmd))
	kh, err := os.ReadFile(filepath.Join(home, ".local", "share", "alknet", "known_hosts"))
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(kh), "\n"), string(kh))

	// --install writes the same block in place, and again replaces it.
	require.NoError(t, os.Remove(filepath.Join(home, ".ssh", "config")))
	shell(t, env, "printf 'Host other\\n    User someone\\n' > ~/.ssh/config")
	shell(t, env, "alknet ssh-config --install --name box --key ~/.ssh/id_ed25519 "+e.node.Addr)
	first, err := os.ReadFile(filepath.Join(home, ".ssh", "config"))
	require.NoError(t, err)
	shell(t, env, "alknet ssh-config --install --name box --key ~/.ssh/id_ed25519 "+e.node.Addr)
	second, err := os.ReadFile(filepath.Join(home, ".ssh", "config"))
	require.NoError(t, err)
	assert.Equal(t, string(first), string(second), "--install is idempotent")
	assert.True(t, strings.HasPrefix(string(second), "Host other\n    User someone\n\n# >>> alknet ssh-config box >>>\n"), string(second))
	assert.Equal(t, 1, strings.Count(string(second), "Host box\n"))
	assert.Equal(t, "from-the-node\n42\n", shell(t, env, sshCmd))
}

func TestSSHPty(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, map[string][]string{"alice": allSSH}, "")
	cmd := exec.Command("ssh", append(e.opts("alice", "alice"), "-tt", "node")...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	require.NoError(t, err)
	defer ptmx.Close()
	r := &ptyReader{r: ptmx}
	send := func(s string) {
		_, err := io.WriteString(ptmx, s)
		require.NoError(t, err)
	}
	send("tty; stty size; echo MARK1\n")
	got := r.until(t, "MARK1")
	assert.Regexp(t, `/dev/pts/\d+`, got)
	assert.Contains(t, got, "30 100")

	require.NoError(t, pty.Setsize(ptmx, &pty.Winsize{Rows: 45, Cols: 132}))
	// The client forwards SIGWINCH as window-change; ask until the shell
	// sees it.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		marker := fmt.Sprintf("SIZE%d", i)
		send("stty size; echo " + marker + "\n")
		if strings.Contains(r.until(t, marker), "45 132") {
			break
		}
		require.True(t, time.Now().Before(deadline), "resize never reached the pty")
	}
	send("exit 4\n")
	go func() { _, _ = io.Copy(io.Discard, ptmx) }()
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 4, ee.ExitCode())
}

// ptyReader accumulates terminal output until a marker appears at the start
// of a line (the command echo has it after "echo ").
type ptyReader struct {
	r   io.Reader
	acc []byte
}

func (p *ptyReader) until(t *testing.T, marker string) string {
	t.Helper()
	buf := make([]byte, 4096)
	for {
		if i := bytes.Index(p.acc, []byte("\n"+marker+"\r")); i >= 0 {
			out := string(p.acc[:i+len(marker)+2])
			p.acc = p.acc[i+len(marker)+2:]
			return out
		}
		n, err := p.r.Read(buf)
		p.acc = append(p.acc, buf[:n]...)
		if err != nil {
			t.Fatalf("read until %q: %v (got %q)", marker, err, p.acc)
		}
	}
}

func TestSSHScpAndSftp(t *testing.T) {
	t.Parallel()
	needClient(t, "scp", "openssh-client")
	needClient(t, "sftp", "openssh-client")
	e := newSSHEnv(t, map[string][]string{"alice": allSSH}, "")
	files := filepath.Join(e.node.DataDir, "files")
	data := make([]byte, 64<<20)
	_, _ = rand.Read(data)
	up := filepath.Join(e.dir, "up.bin")
	require.NoError(t, os.WriteFile(up, data, 0o600))

	scp := func(args ...string) {
		t.Helper()
		out, err := exec.Command("scp", append(e.opts("alice", "alice"), args...)...).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	scp(up, "node:up.bin")
	got, err := os.ReadFile(filepath.Join(files, "up.bin"))
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(data), sha256.Sum256(got), "scp upload")
	down := filepath.Join(e.dir, "down.bin")
	scp("node:up.bin", down)
	got, err = os.ReadFile(down)
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(data), sha256.Sum256(got), "scp download")

	small := filepath.Join(e.dir, "small.txt")
	require.NoError(t, os.WriteFile(small, []byte("batch content\n"), 0o600))
	batch := filepath.Join(e.dir, "batch")
	require.NoError(t, os.WriteFile(batch, []byte(strings.Join([]string{
		"mkdir dir", "put " + small + " dir/a.txt", "rename dir/a.txt dir/b.txt", "ls dir",
		"get dir/b.txt " + filepath.Join(e.dir, "back.txt"), "rm up.bin", "ls",
	}, "\n")+"\n"), 0o600))
	out, err := exec.Command("sftp", append(e.opts("alice", "alice"), "-b", batch, "node")...).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "dir/b.txt")
	back, err := os.ReadFile(filepath.Join(e.dir, "back.txt"))
	require.NoError(t, err)
	assert.Equal(t, "batch content\n", string(back))
	_, err = os.Stat(filepath.Join(files, "up.bin"))
	assert.True(t, os.IsNotExist(err), "rm removed the file")
	b, err := os.ReadFile(filepath.Join(files, "dir", "b.txt"))
	require.NoError(t, err)
	assert.Equal(t, "batch content\n", string(b))
}

// echoTCP serves a TCP echo on loopback that half-closes after EOF.
func echoTCP(t *testing.T) (addr string, port int) {
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
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

// echoThrough dials addr (retrying while the forwarder comes up, and
// calling each alive check between tries), sends 4 MiB, half-closes and
// checks the echo.
func echoThrough(t *testing.T, addr string, alive ...func()) {
	t.Helper()
	var c net.Conn
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err = net.Dial("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		for _, check := range alive {
			check()
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, check := range alive {
		check()
	}
	require.NoError(t, err)
	defer c.Close()
	data := make([]byte, 4<<20)
	_, _ = rand.Read(data)
	go func() {
		_, _ = c.Write(data)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(data), sha256.Sum256(got), "echo through %s (%d bytes)", addr, len(got))
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// bgSSH is a background ssh -N (for -L, -R, -D) that runs until its test
// ends.
type bgSSH struct {
	t        *testing.T
	args     []string
	stderr   *syncBuffer
	exited   chan error // holds the exit once ssh is gone
	reported bool       // the exit is accounted for (reported or expected)
}

// startSSH runs a background ssh with args until t ends. Its alive check
// fails t with ssh's stderr once ssh has exited (a refused forward, a
// failed login); t's end checks it too.
func (e *sshEnv) startSSH(t *testing.T, peer string, args ...string) *bgSSH {
	t.Helper()
	cmd := exec.Command("ssh", append(append(e.opts(peer, peer), "-N", "-o", "ExitOnForwardFailure=yes"), append(args, "node")...)...)
	b := &bgSSH{t: t, args: args, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = b.stderr
	require.NoError(t, cmd.Start())
	go func() { b.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if err, gone := b.exit(); gone {
			if !b.reported {
				t.Errorf("ssh %v exited before the test ended (%v): %s", args, err, b.stderr.String())
			}
			return
		}
		_ = cmd.Process.Kill()
		<-b.exited
	})
	return b
}

// exit reports whether ssh has exited, and how.
func (b *bgSSH) exit() (error, bool) {
	select {
	case err := <-b.exited:
		b.exited <- err
		return err, true
	default:
		return nil, false
	}
}

// alive fails the test with ssh's stderr if ssh has exited.
func (b *bgSSH) alive() {
	b.t.Helper()
	if err, gone := b.exit(); gone {
		b.reported = true
		b.t.Fatalf("ssh %v exited (%v): %s", b.args, err, b.stderr.String())
	}
}

// startSSHLocal runs a background ssh whose local forward (flag -L or -D,
// spec a format whose first verb is the local port) listens on a free
// port, and returns the port once ssh has set its forwards up. A port
// taken by someone else between picking and binding makes ssh exit, and
// another port is tried.
func (e *sshEnv) startSSHLocal(t *testing.T, peer, flag, spec string, a ...any) (int, *bgSSH) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		b := e.startSSH(t, peer, "-v", flag, fmt.Sprintf(spec, append([]any{port}, a...)...))
		// ssh binds its local forwards (and with ExitOnForwardFailure
		// exits when one fails) before it enters the session.
		const ready = "debug1: Entering interactive session."
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(b.stderr.String(), ready); time.Sleep(20 * time.Millisecond) {
			if _, gone := b.exit(); gone && strings.Contains(b.stderr.String(), "Address already in use") && attempt < 4 {
				b.reported = true
				break
			}
			b.alive()
			require.True(t, time.Now().Before(deadline), "ssh %s never listened: %s", flag, b.stderr.String())
		}
		if !b.reported {
			return port, b
		}
	}
}

func webServer(t *testing.T) *httptest.Server {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the web server")
	}))
	t.Cleanup(web.Close)
	return web
}

// curlSocks fetches url through a SOCKS5 proxy, names resolved by the proxy,
// retrying while the proxy comes up (calling each alive check between
// tries).
func curlSocks(t *testing.T, proxy, url string, alive ...func()) string {
	t.Helper()
	needClient(t, "curl", "curl")
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command("curl", "-sS", "--max-time", "20", "--proxy", "socks5h://"+proxy, url).CombinedOutput()
		if err == nil || time.Now().After(deadline) {
			for _, check := range alive {
				check()
			}
			require.NoError(t, err, string(out))
			return string(out)
		}
		for _, check := range alive {
			check()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSSHForwarding drives ssh -D, -L and -R; each is a subtest of its
// own, so a failure of one does not hide the others.
func TestSSHForwarding(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, map[string][]string{"alice": allSSH}, "")
	web := webServer(t)
	_, echoPort := echoTCP(t)

	t.Run("D", func(t *testing.T) {
		needClient(t, "curl", "curl")
		socks, b := e.startSSHLocal(t, "alice", "-D", "127.0.0.1:%d")
		webURL := strings.Replace(web.URL, "127.0.0.1", "localhost", 1) // resolved on the node
		assert.Equal(t, "hello from the web server", curlSocks(t, fmt.Sprintf("127.0.0.1:%d", socks), webURL, b.alive))
	})
	t.Run("L", func(t *testing.T) {
		lport, b := e.startSSHLocal(t, "alice", "-L", "127.0.0.1:%d:127.0.0.1:%d", echoPort)
		echoThrough(t, fmt.Sprintf("127.0.0.1:%d", lport), b.alive)
	})
	t.Run("R", func(t *testing.T) {
		// Port 0: the node picks the port and ssh reports it.
		b := e.startSSH(t, "alice", "-R", fmt.Sprintf("127.0.0.1:0:127.0.0.1:%d", echoPort))
		re := regexp.MustCompile(`Allocated port (\d+) for remote forward`)
		var m []string
		for deadline := time.Now().Add(30 * time.Second); m == nil; time.Sleep(20 * time.Millisecond) {
			b.alive()
			require.True(t, time.Now().Before(deadline), "ssh never reported the allocated port: %s", b.stderr.String())
			m = re.FindStringSubmatch(b.stderr.String())
		}
		echoThrough(t, "127.0.0.1:"+m[1], b.alive)
	})
	assert.NotContains(t, e.node.Log(), strconv.Itoa(echoPort), "destinations are never logged")
}

// startCLI runs a long-lived alknet command and returns its first stdout
// lines (n of them) once printed.
func startCLI(t *testing.T, n int, args ...string) []string {
	t.Helper()
	cmd := exec.Command(alknetBin, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var errb syncBuffer
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	lines := make(chan string, n)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out []string
	for len(out) < n {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("alknet %v exited: %s", args, errb.String())
			}
			out = append(out, l)
		case <-time.After(60 * time.Second):
			t.Fatalf("alknet %v printed nothing: %s", args, errb.String())
		}
	}
	return out
}

func TestAlknetSocksAndForward(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, map[string][]string{"alice": allSSH, "nofwd": {"ssh", "ssh:shell"}}, "")
	web := webServer(t)
	_, echoPort := echoTCP(t)

	addr := startCLI(t, 1, "socks", "--listen", "127.0.0.1:0", "--key", e.keys["alice"].path, e.node.Addr)[0]
	webURL := strings.Replace(web.URL, "127.0.0.1", "localhost", 1)
	assert.Equal(t, "hello from the web server", curlSocks(t, addr, webURL))

	lines := startCLI(t, 2, "forward", "--key", e.keys["alice"].path,
		"-L", fmt.Sprintf("127.0.0.1:0:127.0.0.1:%d", echoPort),
		"-R", fmt.Sprintf("127.0.0.1:0:127.0.0.1:%d", echoPort), e.node.Addr)
	require.True(t, strings.HasPrefix(lines[0], "L "), lines)
	require.True(t, strings.HasPrefix(lines[1], "R "), lines)
	echoThrough(t, strings.TrimPrefix(lines[0], "L "))
	echoThrough(t, strings.TrimPrefix(lines[1], "R "))

	// Without ssh:forward the SOCKS client gets "not allowed" (0x02) and
	// -R without ssh:listen is an error.
	addr = startCLI(t, 1, "socks", "--listen", "127.0.0.1:0", "--key", e.keys["nofwd"].path, e.node.Addr)[0]
	out, err := exec.Command("curl", "-sS", "--max-time", "20", "--proxy", "socks5h://"+addr, web.URL).CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(out), "SOCKS5 connection to 127.0.0.1. (2)", "reply 0x02: not allowed by ruleset")
	r := runCLI(t, nil, "forward", "--key", e.keys["nofwd"].path, "-R", fmt.Sprintf("127.0.0.1:0:127.0.0.1:%d", echoPort), e.node.Addr)
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "node refused to listen")
}

func TestSSHRefusals(t *testing.T) {
	t.Parallel()
	_, echoPort := echoTCP(t)
	e := newSSHEnv(t, map[string][]string{
		"alice":    allSSH,
		"execonly": {"ssh", "ssh:exec"},
		"gateonly": {"ssh"},
	}, fmt.Sprintf("[ssh]\nforward_allow = [\"127.0.0.1:%d\"]\n", echoPort))
	e.keys["stranger"] = newSSHKey(t, e.dir, "stranger")

	// An unregistered SSH key over an admitted QUIC connection.
	stderr, code := e.sshWith("alice", "stranger", nil, io.Discard, "true")
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "Permission denied (publickey)")
	assert.Contains(t, e.node.Log(), e.keys["stranger"].fp, "refusal logged with the fingerprint")
	// An unregistered key on both layers never gets past QUIC.
	stderr, code = e.ssh("stranger", nil, io.Discard, "true")
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "not authorized for alknet/ssh")

	// A shell without ssh:shell.
	stderr, code = e.ssh("execonly", strings.NewReader(""), io.Discard)
	assert.Equal(t, 126, code)
	assert.Contains(t, stderr, "missing scope ssh:shell")
	// But exec works.
	var out bytes.Buffer
	stderr, code = e.ssh("execonly", nil, &out, "echo fine")
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, "fine\n", out.String())
	// And exec without ssh:exec does not.
	out.Reset()
	stderr, code = e.ssh("gateonly", nil, &out, "echo no")
	assert.Equal(t, 126, code)
	assert.Empty(t, out.String())
	assert.Contains(t, stderr, "missing scope ssh:exec")

	// Forwarding without ssh:forward (ssh -W opens a direct-tcpip channel).
	stderr, code = e.sshW("execonly", fmt.Sprintf("127.0.0.1:%d", echoPort), strings.NewReader(""), io.Discard)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "administratively prohibited")

	// A destination outside the allowlist, and one inside.
	stderr, code = e.sshW("alice", fmt.Sprintf("127.0.0.2:%d", echoPort), strings.NewReader(""), io.Discard)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "destination not allowed")
	out.Reset()
	stderr, code = e.sshW("alice", fmt.Sprintf("127.0.0.1:%d", echoPort), strings.NewReader("through the allowlist"), &out)
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, "through the allowlist", out.String())
	assert.NotContains(t, e.node.Log(), "127.0.0.2", "destinations are never logged")
}

// TestSSHOneHome: a peer's shell and commands start in the directory its
// scp, sftp (subsystem and alknet/sftp) and alknet cp land in, with shared
// and with per-peer homes.
func TestSSHOneHome(t *testing.T) {
	t.Parallel()
	needClient(t, "scp", "openssh-client")
	needClient(t, "sftp", "openssh-client")
	scopes := append([]string{"sftp"}, allSSH...)
	for _, tc := range []struct {
		name, config string
		home         func(files string) string
	}{
		{"shared", "", func(files string) string { return files }},
		{"per-peer", "[sftp]\nper_peer_home = true\n", func(files string) string { return filepath.Join(files, "alice") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newSSHEnv(t, map[string][]string{"alice": scopes}, tc.config)
			files, err := filepath.EvalSymlinks(e.node.DataDir)
			require.NoError(t, err)
			home := tc.home(filepath.Join(files, "files"))

			var out bytes.Buffer
			stderr, code := e.ssh("alice", nil, &out, "pwd")
			require.Equal(t, 0, code, stderr)
			assert.Equal(t, home+"\n", out.String(), "ssh box pwd")

			// What OpenSSH's sftp calls its working directory is the same
			// place: "/" of the jail.
			batch := filepath.Join(e.dir, "batch")
			require.NoError(t, os.WriteFile(batch, []byte("pwd\nmkdir from-sftp\n"), 0o600))
			o, err := exec.Command("sftp", append(e.opts("alice", "alice"), "-b", batch, "node")...).CombinedOutput()
			require.NoError(t, err, string(o))
			assert.Contains(t, string(o), "Remote working directory: /\n")

			src := filepath.Join(e.dir, "f.txt")
			require.NoError(t, os.WriteFile(src, []byte("scp'd\n"), 0o600))
			o, err = exec.Command("scp", append(e.opts("alice", "alice"), src, "node:")...).CombinedOutput()
			require.NoError(t, err, string(o))
			r := runCLI(t, nil, "cp", "-q", "--key", e.keys["alice"].path, src, e.node.Addr+":/from-cp.txt")
			require.Equal(t, 0, r.code, r.stderr)

			out.Reset()
			stderr, code = e.ssh("alice", nil, &out, "LC_ALL=C ls; cat f.txt")
			require.Equal(t, 0, code, stderr)
			assert.Equal(t, "f.txt\nfrom-cp.txt\nfrom-sftp\nscp'd\n", out.String())
		})
	}
}

func TestSSHConfigPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/home/a/.ssh/id_ed25519": "/home/a/.ssh/id_ed25519",
		"/home/a b/key":           `"/home/a b/key"`,
		"/data/100%/known_hosts":  "/data/100%%/known_hosts",
		"/x/it's":                 `"/x/it's"`,
	} {
		got, err := sshConfigPath(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{`/a"b`, "/a\nb"} {
		_, err := sshConfigPath(bad)
		assert.ErrorContains(t, err, "ssh_config cannot express", "%q", bad)
	}

	// A block whose end marker was deleted by hand is not guessed at.
	cfg := filepath.Join(t.TempDir(), "config")
	require.NoError(t, os.WriteFile(cfg, []byte("# >>> alknet ssh-config box >>>\nHost box\n"), 0o600))
	err := installHostBlock(cfg, "box", "Host box\n")
	assert.ErrorContains(t, err, "remove the partial block")
	got, err := os.ReadFile(cfg)
	require.NoError(t, err)
	assert.Equal(t, "# >>> alknet ssh-config box >>>\nHost box\n", string(got), "unchanged")
}
