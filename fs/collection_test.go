package fs

import (
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A directory of 10,000 small files travels as one collection and arrives
// with the same bytes and permission bits.
func TestCollection10k(t *testing.T) {
	src := t.TempDir()
	const n = 10000
	modes := []iofs.FileMode{0o644, 0o600, 0o755, 0o640}
	for i := range n {
		p := filepath.Join(src, fmt.Sprintf("d%02d", i%50), fmt.Sprintf("f%05d.txt", i))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, fmt.Appendf(nil, "file %d %s", i, testData(i%200, uint64(i))), 0o600))
		require.NoError(t, os.Chmod(p, modes[i%len(modes)]))
	}
	srv := newStore(t)
	info, coll, err := srv.ImportDir(t.Context(), src, DirOptions{Tag: "tree"})
	require.NoError(t, err)
	require.Len(t, coll.Entries, n)
	assert.True(t, info.Collection)

	c := serve(t, srv, rw, Config{})
	local := newStore(t)
	var last int64
	got, res, err := c.FetchCollection(t.Context(), local, info.Hash, CollectionOptions{Tag: "tree", Parallel: 16,
		Progress: func(done, total int64) { last = done; assert.LessOrEqual(t, done, total) }})
	require.NoError(t, err)
	assert.Equal(t, coll, got)
	assert.Equal(t, coll.Size(), last)
	assert.Equal(t, coll.Size()+info.Size, res.Received, "the files and the listing")

	dst := filepath.Join(t.TempDir(), "out")
	require.NoError(t, local.ExportCollection(t.Context(), got, dst, ExportOptions{}))
	for i := range n {
		rel := filepath.Join(fmt.Sprintf("d%02d", i%50), fmt.Sprintf("f%05d.txt", i))
		want := readFile(t, filepath.Join(src, rel))
		have := readFile(t, filepath.Join(dst, rel))
		require.Equal(t, want, have, rel)
		fi, err := os.Stat(filepath.Join(dst, rel))
		require.NoError(t, err)
		require.Equal(t, modes[i%len(modes)], fi.Mode().Perm(), rel)
	}
	// GC keeps the members of the tagged collection on both sides.
	res2, err := local.GC(t.Context(), GCOptions{Grace: -1})
	require.NoError(t, err)
	assert.Zero(t, res2.Blobs)
}

// Export refuses to follow a symlink planted in the destination out of it.
func TestExportCollectionSymlink(t *testing.T) {
	st := newStore(t)
	a := putBytes(t, st, []byte("payload"), PutOptions{})
	c := &Collection{Entries: []Entry{{Path: "link/x", Hash: a.Hash, Size: 7, Mode: 0o644}}}
	dst := t.TempDir()
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(dst, "link")))
	err := st.ExportCollection(t.Context(), c, dst, ExportOptions{})
	require.Error(t, err)
	assert.NoFileExists(t, filepath.Join(outside, "x"))
}

func TestCollectionEncode(t *testing.T) {
	h := HashBytes(nil)
	c := &Collection{Entries: []Entry{{Path: "b", Hash: h}, {Path: "a/c", Hash: h, Size: 3, Mode: 0o700}}}
	b, err := c.Encode()
	require.NoError(t, err)
	back, err := DecodeCollection(b)
	require.NoError(t, err)
	assert.Equal(t, "a/c", back.Entries[0].Path, "sorted")
	assert.Equal(t, c.Entries, back.Entries)
	_, err = DecodeCollection(append(b, 0))
	assert.ErrorIs(t, err, ErrBadCollection)
	_, err = DecodeCollection(b[:len(b)-1])
	assert.ErrorIs(t, err, ErrBadCollection)
}

// PutDir uploads a tree as a collection that another node can fetch back;
// symlinks are reported and left out.
func TestPutDirFetchBack(t *testing.T) {
	src := t.TempDir()
	files := map[string]string{"a.txt": "alpha", "sub/b.bin": string(testData(3*GroupSize+1, 8)), "sub/deeper/c": ""}
	for rel, body := range files {
		p := filepath.Join(src, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o640))
	}
	require.NoError(t, os.Symlink("a.txt", filepath.Join(src, "link")))
	srv := newStore(t)
	c := serve(t, srv, rw, Config{})
	var skipped []string
	var last, total int64
	h, coll, err := c.PutDir(t.Context(), src, DirOptions{Tag: "tree",
		Skipped:  func(rel string, _ iofs.FileMode) { skipped = append(skipped, rel) },
		Progress: func(d, tot int64) { last, total = d, tot }})
	require.NoError(t, err)
	assert.Equal(t, []string{"link"}, skipped)
	assert.Len(t, coll.Entries, 3)
	assert.Equal(t, total, last)
	info, err := srv.Info(t.Context(), h)
	require.NoError(t, err)
	assert.True(t, info.Collection)
	assert.Equal(t, []string{"tree"}, info.Tags)

	local := newStore(t)
	got, _, err := c.FetchCollection(t.Context(), local, h, CollectionOptions{})
	require.NoError(t, err)
	assert.Equal(t, coll, got)
	out := filepath.Join(t.TempDir(), "out")
	require.NoError(t, local.ExportCollection(t.Context(), got, out, ExportOptions{}))
	for rel, body := range files {
		b, err := os.ReadFile(filepath.Join(out, rel))
		require.NoError(t, err)
		assert.Equal(t, body, string(b), rel)
		fi, err := os.Stat(filepath.Join(out, rel))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	}
}
