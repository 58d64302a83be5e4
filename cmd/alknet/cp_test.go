package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	alksftp "github.com/alkdev/alknet/sftp"
	"github.com/pkg/sftp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileNode is an alknet/sftp node under an attacker's control: every
// directory it lists holds an entry whose name climbs out ("x/..", which
// pkg/sftp's client turns into ".."), for the first few listings, and a
// file called "pwned". It answers every stream and admits anyone.
type hostileNode struct {
	addr     string
	listings atomic.Int32
	evil     string // the climbing name it sends
}

func startHostileNode(t *testing.T, evil string) *hostileNode {
	t.Helper()
	key, err := core.GenerateSecretKey()
	require.NoError(t, err)
	ep, err := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: key})
	require.NoError(t, err)
	h := &hostileNode{addr: ep.Addr().String(), evil: evil}
	ep.Register(hostileHandler{h}, core.AccessControl{})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = ep.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(30 * time.Second):
			t.Error("hostile node did not stop")
		}
		_ = ep.Close()
	})
	return h
}

type hostileHandler struct{ n *hostileNode }

func (hostileHandler) ALPN() []string { return []string{alksftp.ALPN} }

func (h hostileHandler) ServeConn(ctx context.Context, conn core.Conn) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs := sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h}
			_ = sftp.NewRequestServer(st, hs).Serve()
			_ = st.Close()
		}()
	}
}

// hostileFile is what every listing and stat of the hostile node returns.
type hostileFile struct {
	name string
	dir  bool
}

func (f hostileFile) Name() string { return f.name }
func (f hostileFile) Size() int64 {
	if f.dir {
		return 0
	}
	return int64(len("PWNED\n"))
}
func (f hostileFile) Mode() fs.FileMode {
	if f.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (hostileFile) ModTime() time.Time { return time.Unix(1_600_000_000, 0) }
func (f hostileFile) IsDir() bool      { return f.dir }
func (hostileFile) Sys() any           { return nil }

type fileList []fs.FileInfo

func (l fileList) ListAt(ls []fs.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(ls, l[off:])
	if off+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}

func (h hostileHandler) Fileread(*sftp.Request) (io.ReaderAt, error) {
	return strings.NewReader("PWNED\n"), nil
}
func (hostileHandler) Filewrite(*sftp.Request) (io.WriterAt, error) {
	return nil, sftp.ErrSSHFxPermissionDenied
}
func (hostileHandler) Filecmd(*sftp.Request) error { return sftp.ErrSSHFxPermissionDenied }

func (h hostileHandler) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	base := path.Base(r.Filepath)
	switch r.Method {
	case "List":
		l := fileList{hostileFile{name: "pwned"}}
		if h.n.listings.Add(1) <= 3 {
			l = append(fileList{hostileFile{name: h.n.evil, dir: true}}, l...)
		}
		return l, nil
	case "Stat", "Lstat":
		return fileList{hostileFile{name: base, dir: base != "pwned"}}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// TestCpRefusesHostileNames downloads a tree from a node that sends names
// climbing out of the destination: the copy must fail with a clear error
// and write nothing outside the destination.
func TestCpRefusesHostileNames(t *testing.T) {
	t.Parallel()
	for _, evil := range []string{"x/..", "a/b/../..", "x/."} {
		t.Run(evil, func(t *testing.T) {
			n := startHostileNode(t, evil)
			base := t.TempDir()
			dst := filepath.Join(base, "a", "b", "c", "dl")
			require.NoError(t, os.MkdirAll(dst, 0o755))
			r := runCLI(t, nil, "--data", filepath.Join(base, "client"), "cp", "-r", n.addr+":tree", dst)
			assert.NotEqual(t, 0, r.code, "the copy must fail: %s", r.stderr)
			assert.Contains(t, r.stderr, "refusing a file name the node sent")
			var outside []string
			_ = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Name() == "pwned" && !strings.HasPrefix(p, dst+string(filepath.Separator)) {
					outside = append(outside, p)
				}
				return nil
			})
			assert.Empty(t, outside, "files written outside the destination")
		})
	}
}

// bgCLI is an alknet command running in the background.
type bgCLI struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	code   int
}

// startCp starts the built binary with args in the background; the test
// kills it if it is still running at the end.
func startCp(t *testing.T, args ...string) *bgCLI {
	t.Helper()
	b := &bgCLI{cmd: exec.Command(alknetBin, args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	b.cmd.Stderr = b.stderr
	require.NoError(t, b.cmd.Start())
	go func() {
		defer close(b.done)
		err := b.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			b.code = ee.ExitCode()
		} else if err != nil {
			b.code = -1
		}
	}()
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		<-b.done
	})
	return b
}

func (b *bgCLI) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	require.NoError(t, b.cmd.Process.Signal(sig))
}

// wait waits for the command to exit and returns its exit code (-1 when a
// signal killed it).
func (b *bgCLI) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-b.done:
		return b.code
	case <-time.After(2 * time.Minute):
		t.Fatalf("alknet did not exit: %s", b.stderr.String())
		return 0
	}
}

// waitPart waits until the copy's part file holds at least n bytes.
func (b *bgCLI) waitPart(t *testing.T, part string, n int64) {
	t.Helper()
	deadline := time.After(time.Minute)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for fileSize(part) < n {
		select {
		case <-b.done:
			t.Fatalf("the copy exited (%d) before %s held %d bytes: %s", b.code, part, n, b.stderr.String())
		case <-deadline:
			t.Fatalf("%s never held %d bytes: %s", part, n, b.stderr.String())
		case <-tick.C:
		}
	}
}

// stoppedMidCopy starts a download of a 64 MiB file and stops the process
// (SIGSTOP) once part of it has arrived, so the test can act while the
// copy is certainly in flight.
func stoppedMidCopy(t *testing.T, e *sftpEnv) (bg *bgCLI, remote, dst string) {
	t.Helper()
	remote = filepath.Join(e.root, "big.bin")
	randomFile(t, remote, 64<<20)
	dst = filepath.Join(t.TempDir(), "big.bin")
	bg = startCp(t, "--data", e.rw, "cp", e.node.Addr+":/big.bin", dst)
	bg.waitPart(t, dst+partSuffix, 1<<20)
	bg.signal(t, syscall.SIGSTOP)
	t.Cleanup(func() { _ = bg.cmd.Process.Signal(syscall.SIGCONT) })
	require.Less(t, fileSize(dst+partSuffix), int64(64<<20), "the copy was stopped mid-transfer")
	return bg, remote, dst
}

// TestCpSurvivesDrain: a node that starts to shut down lets a copy that is
// already running finish, verification included (it needs no new stream).
func TestCpSurvivesDrain(t *testing.T) {
	t.Parallel()
	e := newSFTPEnv(t)
	bg, remote, dst := stoppedMidCopy(t, e)
	require.NoError(t, e.node.cmd.Process.Signal(syscall.SIGTERM))
	deadline := time.After(30 * time.Second)
	for !strings.Contains(e.node.Log(), "shutting down") {
		select {
		case <-deadline:
			t.Fatalf("node did not start to drain: %s", e.node.Log())
		case <-time.After(5 * time.Millisecond):
		}
	}
	bg.signal(t, syscall.SIGCONT)
	require.Equal(t, 0, bg.wait(t), bg.stderr.String())
	assert.Equal(t, sha(t, remote), sha(t, dst), "the copy completed byte-exact during the drain")
	_, err := os.Stat(dst + partSuffix)
	assert.True(t, os.IsNotExist(err), "no part file left behind")
	select {
	case err := <-e.node.done:
		assert.NoError(t, err, e.node.Log())
	case <-time.After(30 * time.Second):
		t.Fatalf("node did not stop after the copy: %s", e.node.Log())
	}
}

// TestCpInterruptExit130: SIGINT during a copy exits 130 with a hint,
// leaving the part file for --resume and no DST.
func TestCpInterruptExit130(t *testing.T) {
	t.Parallel()
	e := newSFTPEnv(t)
	bg, _, dst := stoppedMidCopy(t, e)
	bg.signal(t, syscall.SIGINT) // delivered when it continues
	bg.signal(t, syscall.SIGCONT)
	assert.Equal(t, 130, bg.wait(t), bg.stderr.String())
	assert.Contains(t, bg.stderr.String(), "alknet: interrupted; run again with --resume to continue")
	_, err := os.Stat(dst)
	assert.True(t, os.IsNotExist(err), "no DST after an interrupted copy")
	assert.Greater(t, fileSize(dst+partSuffix), int64(0), "the part file stays for --resume")
}

// TestCpResumeOverHole: the node's server writes an upload with parallel
// workers, so a crash can leave a partial file whose size runs past a
// range of zeros. --resume must continue from the verified prefix.
func TestCpResumeOverHole(t *testing.T) {
	t.Parallel()
	e := newSFTPEnv(t)
	src := filepath.Join(t.TempDir(), "up.bin")
	randomFile(t, src, 8<<20)
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	partial := append([]byte(nil), b[:5<<20]...)
	clear(partial[3<<20+10 : 3<<20+5000]) // the hole a crashed node left
	require.NoError(t, os.MkdirAll(e.root, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(e.root, "up.bin"+partSuffix), partial, 0o644))

	r := runCLI(t, nil, "--data", e.rw, "cp", "--resume", "--no-verify", src, e.node.Addr+":/up.bin")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "only the first 3145728 of 5242880 bytes already copied match; resuming from there")
	assert.Equal(t, sha(t, src), sha(t, filepath.Join(e.root, "up.bin")), "no hole in the result, even with --no-verify")
}

// TestCpResumeNeverIntoDst: --resume with an existing, different DST and
// no part file replaces DST whole; it never writes into it.
func TestCpResumeNeverIntoDst(t *testing.T) {
	t.Parallel()
	e := newSFTPEnv(t)
	remote := filepath.Join(e.root, "f.bin")
	randomFile(t, remote, 3<<20)
	for _, args := range [][]string{{"--resume"}, {"--resume", "--no-verify"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "f.bin")
			old := []byte("an older, different and shorter file\n")
			require.NoError(t, os.WriteFile(dst, old, 0o644))
			before, err := os.Stat(dst)
			require.NoError(t, err)
			r := runCLI(t, nil, append(append([]string{"--data", e.rw, "cp"}, args...), e.node.Addr+":/f.bin", dst)...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, sha(t, remote), sha(t, dst))
			after, err := os.Stat(dst)
			require.NoError(t, err)
			assert.False(t, os.SameFile(before, after), "DST was replaced by rename, not written in place")
		})
	}
}

// TestCpSkipsSymlinksLoudly: cp -r says which symbolic links it leaves
// out, in both directions.
func TestCpSkipsSymlinksLoudly(t *testing.T) {
	t.Parallel()
	e := newSFTPEnv(t)
	src := filepath.Join(t.TempDir(), "tree")
	randomFile(t, filepath.Join(src, "a"), 10)
	require.NoError(t, os.Symlink("a", filepath.Join(src, "link")))
	r := runCLI(t, nil, "--data", e.rw, "cp", "-r", src, e.node.Addr+":/")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "alknet: skipping "+filepath.Join(src, "link")+": symbolic link")
	_, err := os.Lstat(filepath.Join(e.root, "tree", "link"))
	assert.True(t, os.IsNotExist(err))

	require.NoError(t, os.Symlink("a", filepath.Join(e.root, "tree", "rlink")))
	back := t.TempDir()
	r = runCLI(t, nil, "--data", e.rw, "cp", "-r", e.node.Addr+":/tree", back)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "alknet: skipping /tree/rlink: symbolic link")
	assert.Equal(t, sha(t, filepath.Join(src, "a")), sha(t, filepath.Join(back, "tree", "a")))
}

// TestCpResumeAfterNodeKill kills the node (kill -9) in the middle of an
// upload, restarts it and resumes: the result is byte-exact whatever
// holes the node's parallel writers left in the partial file.
func TestCpResumeAfterNodeKill(t *testing.T) {
	t.Parallel()
	e := newSFTPEnv(t)
	src := filepath.Join(t.TempDir(), "up.bin")
	randomFile(t, src, 64<<20)
	part := filepath.Join(e.root, "up.bin"+partSuffix)
	bg := startCp(t, "--data", e.rw, "cp", src, e.node.Addr+":/up.bin")
	bg.waitPart(t, part, 4<<20)
	bg.signal(t, syscall.SIGSTOP)
	require.NoError(t, e.node.cmd.Process.Kill())
	select {
	case <-e.node.done:
	case <-time.After(30 * time.Second):
		t.Fatal("node did not die")
	}
	bg.signal(t, syscall.SIGKILL)
	bg.wait(t)
	require.Less(t, fileSize(part), int64(64<<20)+1)

	n2 := startNode(t, e.node.DataDir, "")
	r := runCLI(t, nil, "--data", e.rw, "cp", "--resume", src, n2.Addr+":/up.bin")
	require.Equal(t, 0, r.code, r.stderr)
	t.Log(strings.TrimSpace(r.stderr))
	assert.Equal(t, sha(t, src), sha(t, filepath.Join(e.root, "up.bin")))
	_, err := os.Stat(part)
	assert.True(t, os.IsNotExist(err))
}
