package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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

func TestCheckEntryName(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "a\\b", "a\x00b", "/abs"} {
		err := checkEntryName(bad)
		assert.ErrorIs(t, err, errBadEntryName, "%q", bad)
	}
	for _, good := range []string{"a", "..a", "a..", ".hidden", "with space", "ünï"} {
		assert.NoError(t, checkEntryName(good), "%q", good)
	}
	root := filepath.Join(t.TempDir(), "dst")
	assert.NoError(t, under(root, filepath.Join(root, "x", "y")))
	assert.NoError(t, under(root, root))
	for _, p := range []string{filepath.Dir(root), filepath.Join(root, "..", "x"), filepath.Join(root+"x", "y")} {
		err := under(root, p)
		assert.True(t, errors.Is(err, errBadEntryName), "%s: %v", p, err)
	}
}
