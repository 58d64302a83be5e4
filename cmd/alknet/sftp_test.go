package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sftpEnv is a node serving alknet/sftp with two known clients: rw holds
// sftp and sftp:write, ro only sftp. outside is a directory next to the
// served root that nothing may reach.
type sftpEnv struct {
	node            *node
	root            string // served files
	rw, ro, unknown string // client data directories
	outside, secret string
}

func newSFTPEnv(t *testing.T) *sftpEnv {
	t.Helper()
	base := t.TempDir()
	e := &sftpEnv{
		rw: filepath.Join(base, "rw"), ro: filepath.Join(base, "ro"), unknown: filepath.Join(base, "unknown"),
		root: filepath.Join(base, "srv", "files"), outside: filepath.Join(base, "outside"),
	}
	require.NoError(t, os.MkdirAll(e.outside, 0o755))
	e.secret = filepath.Join(e.outside, "secret")
	require.NoError(t, os.WriteFile(e.secret, []byte("secret outside the root\n"), 0o644))
	fingerprintOf(t, e.unknown)
	cfg := fmt.Sprintf(`[sftp]
root = %q

[[peers]]
id = "rw"
fingerprints = [%q]
scopes = ["sftp", "sftp:write"]

[[peers]]
id = "ro"
fingerprints = [%q]
scopes = ["sftp"]
`, e.root, fingerprintOf(t, e.rw), fingerprintOf(t, e.ro))
	e.node = startNode(t, filepath.Join(base, "srv"), cfg)
	return e
}

// batch runs `alknet sftp ADDR -b -` as client with the commands on
// stdin (OpenSSH sftp -D through alknet pipe).
func (e *sftpEnv) batch(t *testing.T, client string, cmds ...string) result {
	t.Helper()
	return runCLI(t, strings.NewReader(strings.Join(cmds, "\n")+"\n"), "--data", client, "sftp", e.node.Addr, "-b", "-")
}

func requireSFTP(t *testing.T) {
	t.Helper()
	needClient(t, "sftp", "openssh-client")
}

// needClient skips the test when the real client binary name is missing,
// saying which package to install; with ALKNET_REQUIRE_CLIENTS=1 (set in
// CI) a missing client fails the test instead, so interop tests cannot be
// skipped silently.
func needClient(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		msg := fmt.Sprintf("%s not found; install %s (Debian/Ubuntu: apt-get install %s)", name, pkg, pkg)
		if os.Getenv("ALKNET_REQUIRE_CLIENTS") == "1" {
			t.Fatal(msg + "; ALKNET_REQUIRE_CLIENTS=1 makes a missing client an error")
		}
		t.Skip(msg)
	}
}

func sha(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return [32]byte(h.Sum(nil))
}

func randomFile(t *testing.T, path string, size int64) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = io.CopyN(f, rand.Reader, size)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func TestSFTPOpenSSHBatch(t *testing.T) {
	t.Parallel()
	requireSFTP(t)
	e := newSFTPEnv(t)
	local := t.TempDir()
	big := filepath.Join(local, "big.bin")
	randomFile(t, big, 64<<20)

	r := e.batch(t, e.rw,
		"put "+big+" /big.bin",
		"get /big.bin "+filepath.Join(local, "back.bin"),
		"mkdir /dir",
		"rename /big.bin /dir/moved.bin",
		"symlink moved.bin /dir/link",
		"chmod 600 /dir/moved.bin",
		"put "+big+" /gone.bin",
		"rm /gone.bin",
		"ls -l /dir",
	)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, sha(t, big), sha(t, filepath.Join(local, "back.bin")), "get returns what put sent")
	assert.Equal(t, sha(t, big), sha(t, filepath.Join(e.root, "dir", "moved.bin")), "file on the node")
	assert.Regexp(t, `(?m)^-rw-------.* 67108864 .* moved\.bin$`, r.stdout)
	assert.Regexp(t, `(?m)^l.* link$`, r.stdout)
	tgt, err := os.Readlink(filepath.Join(e.root, "dir", "link"))
	require.NoError(t, err)
	assert.Equal(t, "moved.bin", tgt)
	fi, err := os.Stat(filepath.Join(e.root, "dir", "moved.bin"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, err = os.Stat(filepath.Join(e.root, "big.bin"))
	assert.True(t, os.IsNotExist(err), "renamed away")
	_, err = os.Stat(filepath.Join(e.root, "gone.bin"))
	assert.True(t, os.IsNotExist(err), "removed")
}

func TestSFTPEscapesRefused(t *testing.T) {
	t.Parallel()
	requireSFTP(t)
	e := newSFTPEnv(t)
	local := t.TempDir()
	require.NoError(t, os.MkdirAll(e.root, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(e.root, "mine"), []byte("mine"), 0o644))
	require.NoError(t, os.Symlink(e.secret, filepath.Join(e.root, "evil")))
	require.NoError(t, os.Symlink(e.outside, filepath.Join(e.root, "evildir")))
	payload := filepath.Join(local, "payload")
	require.NoError(t, os.WriteFile(payload, []byte("pwned"), 0o644))
	rel, err := filepath.Rel(e.root, e.secret)
	require.NoError(t, err)

	for _, tc := range []struct{ name, cmd, reason string }{
		{"dotdot", "get ../../etc/passwd " + filepath.Join(local, "passwd"), "not found"},
		{"relative to outside", "get " + rel + " " + filepath.Join(local, "s1"), "not found"},
		{"absolute outside", "get " + e.secret + " " + filepath.Join(local, "s2"), "not found"},
		{"etc passwd", "get /etc/passwd " + filepath.Join(local, "s3"), "not found"},
		{"symlink read", "get /evil " + filepath.Join(local, "s4"), "Permission denied"},
		{"symlinked dir read", "get /evildir/secret " + filepath.Join(local, "s5"), "not found"},
		{"symlink write", "put " + payload + " /evil", "Permission denied"},
		{"symlinked dir write", "put " + payload + " /evildir/new", "Permission denied"},
		{"rename into symlinked dir", "rename /mine /evildir/mine", "Permission denied"},
		{"chmod through symlink", "chmod 777 /evil", "Permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.batch(t, e.rw, tc.cmd)
			assert.NotEqual(t, 0, r.code, "must fail: %s\n%s", tc.cmd, r.stdout)
			assert.Contains(t, r.stderr, tc.reason)
			assert.NotContains(t, r.stderr, e.root, "no host paths of the node")
		})
	}
	// "rename out of the root" stays inside it, like a chroot.
	r := e.batch(t, e.rw, "rename /mine ../../../mine-escaped")
	require.Equal(t, 0, r.code, r.stderr)
	_, err = os.Stat(filepath.Join(e.root, "mine-escaped"))
	assert.NoError(t, err, "the target clamps to the root")

	entries, err := os.ReadDir(local)
	require.NoError(t, err)
	for _, en := range entries {
		assert.Equal(t, "payload", en.Name(), "nothing was downloaded")
	}
	b, err := os.ReadFile(e.secret)
	require.NoError(t, err)
	assert.Equal(t, "secret outside the root\n", string(b))
	fi, err := os.Stat(e.secret)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	outs, _ := os.ReadDir(e.outside)
	assert.Len(t, outs, 1, "nothing created outside")
	for _, p := range []string{filepath.Join(filepath.Dir(e.root), "mine-escaped"), filepath.Join(filepath.Dir(filepath.Dir(e.root)), "mine-escaped")} {
		_, err := os.Stat(p)
		assert.True(t, os.IsNotExist(err), p)
	}
}

func TestSFTPReadOnlyAndUnknownPeers(t *testing.T) {
	t.Parallel()
	requireSFTP(t)
	e := newSFTPEnv(t)
	local := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(e.root, "dir"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(e.root, "keep"), []byte("keep"), 0o644))
	payload := filepath.Join(local, "payload")
	require.NoError(t, os.WriteFile(payload, []byte("new"), 0o644))

	r := e.batch(t, e.ro, "get /keep "+filepath.Join(local, "keep"), "ls /")
	require.Equal(t, 0, r.code, r.stderr)
	b, err := os.ReadFile(filepath.Join(local, "keep"))
	require.NoError(t, err)
	assert.Equal(t, "keep", string(b), "read-only peer reads")

	for _, cmd := range []string{
		"put " + payload + " /new", "put " + payload + " /keep", "mkdir /d2", "rename /keep /kept",
		"rm /keep", "rmdir /dir", "chmod 777 /keep", "symlink keep /l", "ln /keep /hard",
	} {
		t.Run(cmd, func(t *testing.T) {
			r := e.batch(t, e.ro, cmd)
			assert.NotEqual(t, 0, r.code, "read-only peer must not: %s", cmd)
			assert.Contains(t, strings.ToLower(r.stderr), "permission denied")
		})
	}
	entries, err := os.ReadDir(e.root)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	b, _ = os.ReadFile(filepath.Join(e.root, "keep"))
	assert.Equal(t, "keep", string(b))
	fi, _ := os.Stat(filepath.Join(e.root, "keep"))
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	// An unknown peer is refused by the gate before any SFTP byte.
	p := runCLI(t, strings.NewReader(""), "--data", e.unknown, "pipe", "--alpn", "alknet/sftp", e.node.Addr)
	assert.NotEqual(t, 0, p.code)
	assert.Contains(t, p.stderr, "peer not authorized for alknet/sftp: ")
	r = e.batch(t, e.unknown, "ls /")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "peer not authorized for alknet/sftp: ")
}

func TestSFTPNotInstalled(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(alknetBin, "--data", t.TempDir(), "sftp", "yyyoryarywdyqnyjbefoadeqbhebnrounoktcfaadrpbs8y7daxo@127.0.0.1:1")
	cmd.Env = append(os.Environ(), "PATH="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	require.Error(t, err)
	assert.Contains(t, stderr.String(), "apt-get install openssh-client")
}

func TestCpTreeRoundTrip(t *testing.T) {
	t.Parallel()
	e := newSFTPEnv(t)
	src := filepath.Join(t.TempDir(), "tree")
	files := map[string]int64{
		"a.txt": 12, "empty": 0, "sub/b.bin": 3<<20 + 5, "sub/deeper/c.bin": 70000, "sub/deeper/d": 1,
	}
	for name, size := range files {
		randomFile(t, filepath.Join(src, name), size)
	}
	require.NoError(t, os.MkdirAll(filepath.Join(src, "emptydir"), 0o755))

	r := runCLI(t, nil, "--data", e.rw, "cp", "-r", src, e.node.Addr+":/")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stderr, "quiet when stderr is not a terminal")
	for name := range files {
		assert.Equal(t, sha(t, filepath.Join(src, name)), sha(t, filepath.Join(e.root, "tree", name)), name)
	}
	_, err := os.Stat(filepath.Join(e.root, "tree", "emptydir"))
	assert.NoError(t, err)

	back := t.TempDir()
	r = runCLI(t, nil, "--data", e.rw, "cp", "-r", e.node.Addr+":/tree", back)
	require.Equal(t, 0, r.code, r.stderr)
	for name := range files {
		assert.Equal(t, sha(t, filepath.Join(src, name)), sha(t, filepath.Join(back, "tree", name)), name)
	}
	leftovers, _ := filepath.Glob(filepath.Join(back, "tree", "*", "*"+partSuffix))
	assert.Empty(t, leftovers)

	// Without -r a directory is refused; a read-only peer cannot upload.
	r = runCLI(t, nil, "--data", e.rw, "cp", e.node.Addr+":/tree", back)
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "is a directory (use -r)")
	r = runCLI(t, nil, "--data", e.ro, "cp", filepath.Join(src, "a.txt"), e.node.Addr+":/ro.txt")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, strings.ToLower(r.stderr), "permission denied")
	_, err = os.Stat(filepath.Join(e.root, "ro.txt"))
	assert.True(t, os.IsNotExist(err))
}

func TestCpResume(t *testing.T) {
	t.Parallel()
	e := newSFTPEnv(t)
	remote := filepath.Join(e.root, "big.bin")
	randomFile(t, remote, 64<<20)
	want := sha(t, remote)
	dst := filepath.Join(t.TempDir(), "big.bin")
	part := dst + partSuffix

	// Kill a real download once part of it has arrived: stop it first so
	// it cannot finish between the check and the kill.
	bg := startCp(t, "--data", e.rw, "cp", e.node.Addr+":/big.bin", dst)
	bg.waitPart(t, part, 1<<20)
	bg.signal(t, syscall.SIGSTOP)
	partSize := fileSize(part)
	require.Less(t, partSize, int64(64<<20), "the copy was stopped mid-transfer")
	bg.signal(t, syscall.SIGKILL)
	bg.wait(t)
	_, err := os.Stat(dst)
	require.True(t, os.IsNotExist(err), "a killed copy leaves no DST")
	t.Logf("resuming at %d bytes", partSize)

	r := runCLI(t, nil, "--data", e.rw, "cp", "--resume", e.node.Addr+":/big.bin", dst)
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stderr, "already copied match", "the killed copy's prefix is intact")
	assert.Equal(t, want, sha(t, dst), "resumed download is byte-exact")
	_, err = os.Stat(part)
	assert.True(t, os.IsNotExist(err), "part renamed into place")

	// A damaged prefix is not trusted: the resume starts at the last
	// block both sides agree on.
	b, err := os.ReadFile(remote)
	require.NoError(t, err)
	bad := append([]byte(nil), b[:3<<20]...)
	bad[1<<20+100] ^= 0xff
	dst2 := filepath.Join(t.TempDir(), "big.bin")
	require.NoError(t, os.WriteFile(dst2+partSuffix, bad, 0o644))
	r = runCLI(t, nil, "--data", e.rw, "cp", "--resume", e.node.Addr+":/big.bin", dst2)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "only the first 1048576 of 3145728 bytes already copied match; resuming from there")
	assert.Equal(t, want, sha(t, dst2))

	// Upload resume: a partial remote file is continued.
	src := filepath.Join(t.TempDir(), "up.bin")
	require.NoError(t, os.WriteFile(src, b[:5<<20], 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(e.root, "up.bin"+partSuffix), b[:2<<20+7], 0o644))
	r = runCLI(t, nil, "--data", e.rw, "cp", "--resume", src, e.node.Addr+":/up.bin")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stderr, "already copied match")
	assert.Equal(t, sha(t, src), sha(t, filepath.Join(e.root, "up.bin")))
	_, err = os.Stat(filepath.Join(e.root, "up.bin"+partSuffix))
	assert.True(t, os.IsNotExist(err))
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func TestParseCpArg(t *testing.T) {
	t.Parallel()
	id := "yyyoryarywdyqnyjbefoadeqbhebnrounoktcfaadrpbs8y7daxo"
	for _, tc := range []struct {
		in         string
		remote     bool
		addr, path string
		err        string
	}{
		{in: "local/file", path: "local/file"},
		{in: "/abs/fi:le", path: "/abs/fi:le"},
		{in: "user@example.com:file", path: "user@example.com:file"},
		{in: id + "@127.0.0.1:4433:/dir/f", remote: true, addr: id + "@127.0.0.1:4433", path: "/dir/f"},
		{in: id + "@127.0.0.1:4433:rel:with:colons", remote: true, addr: id + "@127.0.0.1:4433", path: "rel:with:colons"},
		{in: id + "@127.0.0.1:4433:", remote: true, addr: id + "@127.0.0.1:4433", path: "/"},
		{in: id + "@[::1]:4433:/p", remote: true, addr: id + "@[::1]:4433", path: "/p"},
		{in: id + "@node.example:4433:/p", remote: true, addr: id + "@node.example:4433", path: "/p"},
		{in: "alknet://" + id + "@[::1]:4433/x/y", remote: true, addr: id + "@[::1]:4433", path: "/x/y"},
		{in: id + "@127.0.0.1:4433", err: "missing :/path"},
		{in: id + "@[::1:4433:/p", err: "unterminated"},
		{in: id + "@127.0.0.1:44a3:/p", err: "bad port"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseCpArg(tc.in)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.remote, got.remote)
			assert.Equal(t, tc.addr, got.addr)
			assert.Equal(t, tc.path, got.path)
		})
	}
}

// TestNeedClient checks that a missing client skips locally and fails
// when ALKNET_REQUIRE_CLIENTS=1.
func TestNeedClient(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct {
		env          string
		failed, skip bool
	}{{"", false, true}, {"1", true, false}} {
		t.Setenv("ALKNET_REQUIRE_CLIENTS", tc.env)
		ft := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() { defer close(done); needClient(ft, "sftp", "openssh-client") }() // Skip and Fatal end the goroutine
		<-done
		assert.Equal(t, tc.failed, ft.failed, "ALKNET_REQUIRE_CLIENTS=%q", tc.env)
		assert.Equal(t, tc.skip, ft.skipped, "ALKNET_REQUIRE_CLIENTS=%q", tc.env)
		assert.Contains(t, ft.msg, "sftp not found; install openssh-client")
	}
}

// fakeTB records Skip and Fatal instead of acting on them.
type fakeTB struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatal(args ...any) {
	f.failed, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Skip(args ...any) {
	f.skipped, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
