package sftp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckEntryName(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "a\\b", "a\x00b", "/abs"} {
		err := checkEntryName(bad)
		assert.ErrorIs(t, err, ErrBadEntryName, "%q", bad)
	}
	for _, good := range []string{"a", "..a", "a..", ".hidden", "with space", "ünï"} {
		assert.NoError(t, checkEntryName(good), "%q", good)
	}
	root := filepath.Join(t.TempDir(), "dst")
	assert.NoError(t, under(root, filepath.Join(root, "x", "y")))
	assert.NoError(t, under(root, root))
	for _, p := range []string{filepath.Dir(root), filepath.Join(root, "..", "x"), filepath.Join(root+"x", "y")} {
		err := under(root, p)
		assert.True(t, errors.Is(err, ErrBadEntryName), "%s: %v", p, err)
	}
}

// TestCopyRoundTrip uploads a tree and downloads it back with the
// library's Upload and Download, checking content and the callbacks.
func TestCopyRoundTrip(t *testing.T) {
	f := newFixture(t, Config{})
	a, b := coretest.Pipe(ALPN, coretest.Side{Identity: writer}, coretest.Side{})
	t.Cleanup(func() { _ = a.Close(0, "") })
	go func() { _ = f.srv.ServeConn(t.Context(), b) }()

	src := filepath.Join(t.TempDir(), "tree")
	want := map[string][]byte{"a": []byte("alpha"), "sub/b": make([]byte, 300_000), "sub/deep/c": {}}
	for name, data := range want {
		_, _ = rand.Read(data)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(src, name), data, 0o644))
	}
	require.NoError(t, os.Symlink("a", filepath.Join(src, "link")))

	var planned, moved int64
	var notices, started []string
	o := CopyOptions{
		Recursive: true,
		Planned:   func(n int64) { planned = n },
		Started:   func(dst string) { started = append(started, dst) },
		Moved:     func(n int) { moved += int64(n) },
		Notice:    func(msg string) { notices = append(notices, msg) },
	}
	require.NoError(t, Upload(t.Context(), a, src, "/", o))
	assert.Equal(t, int64(300_005), planned)
	assert.Equal(t, planned, moved)
	assert.Len(t, started, 3)
	assert.Equal(t, []string{"skipping " + filepath.Join(src, "link") + ": symbolic link"}, notices)
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(f.root, "tree", name))
		require.NoError(t, err)
		assert.Equal(t, data, got, name)
	}

	back := t.TempDir()
	notices, moved = nil, 0
	require.NoError(t, Download(t.Context(), a, "/tree", back, o))
	assert.Equal(t, int64(300_005), moved)
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(back, "tree", name))
		require.NoError(t, err)
		assert.Equal(t, data, got, name)
	}
	parts, _ := filepath.Glob(filepath.Join(back, "tree", "*"+PartSuffix))
	assert.Empty(t, parts)

	err := Download(t.Context(), a, "/tree", t.TempDir(), CopyOptions{})
	assert.ErrorIs(t, err, ErrIsDirectory)

	// A cancelled context ends the copy with its error.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = Download(ctx, a, "/tree/a", t.TempDir(), CopyOptions{})
	assert.ErrorIs(t, err, context.Canceled)
}

// TestVerifyMismatch: the final comparison fails a copy whose bytes
// differ from the node's, and verifiedPrefix stops at the first block
// that differs.
func TestVerifyMismatch(t *testing.T) {
	f := newFixture(t, Config{})
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	f.write(t, "f", data)
	r := f.raw(t, reader)
	ctl := &Control{rw: r.st, exts: r.exts}
	cp := &copier{ctl: ctl, hasCheck: true, check: true}

	h := sha256.New()
	h.Write(data)
	require.NoError(t, cp.verify(h, "local", "/f"))
	h.Write([]byte("x"))
	err := cp.verify(h, "local", "/f")
	assert.ErrorIs(t, err, ErrChecksumMismatch)

	local := filepath.Join(t.TempDir(), "l")
	bad := append([]byte(nil), data...)
	bad[2<<20+5] ^= 1
	require.NoError(t, os.WriteFile(local, bad, 0o644))
	lf, err := os.Open(local)
	require.NoError(t, err)
	defer lf.Close()
	var notes []string
	cp.opt.Notice = func(m string) { notes = append(notes, m) }
	good, err := cp.verifiedPrefix(lf, "/f", int64(len(bad)))
	require.NoError(t, err)
	assert.Equal(t, int64(2<<20), good)
	assert.Equal(t, []string{"/f: only the first 2097152 of 3145728 bytes already copied match; resuming from there"}, notes)
	good, err = cp.verifiedPrefix(lf, "/f", 2<<20+5)
	require.NoError(t, err)
	assert.Equal(t, int64(2<<20+5), good, "a prefix that ends before the damage is whole")
}
