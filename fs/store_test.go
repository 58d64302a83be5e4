package fs

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"lukechampine.com/blake3/bao"
)

func TestStorePut(t *testing.T) {
	st := newStore(t)
	for _, n := range []int{0, 1, GroupSize, 5*GroupSize + 3} {
		data := testData(n, uint64(n)+11)
		info := putBytes(t, st, data, PutOptions{Tag: "t"})
		assert.Equal(t, HashBytes(data), info.Hash)
		assert.Equal(t, int64(n), info.Size)
		eqBytes(t, data, readFile(t, st.blobPath(info.Hash)))
		if n > GroupSize {
			want, _ := bao.EncodeBuf(data, BaoGroup, true)
			assert.Equal(t, want, readFile(t, st.outboardPath(info.Hash)), "outboard on disk")
		}
		stat, err := st.Stat(t.Context(), info.Hash)
		require.NoError(t, err)
		assert.True(t, stat.Complete)
		assert.Equal(t, Ranges{{0, numGroups(int64(n))}}, stat.Present)
	}
	tags, err := st.Tags(t.Context())
	require.NoError(t, err)
	require.Len(t, tags, 1, "the tag moved with each put")
	assert.Equal(t, int64(5*GroupSize+3), tags[0].Size)
	entries, _ := os.ReadDir(filepath.Join(st.Dir(), "tmp"))
	assert.Empty(t, entries, "no temporary file left")
}

func TestStorePutUnknownSize(t *testing.T) {
	st := newStore(t)
	data := testData(3*GroupSize+9, 2)
	info, err := st.Put(t.Context(), bytes.NewReader(data), -1, PutOptions{})
	require.NoError(t, err)
	assert.Equal(t, HashBytes(data), info.Hash)
	assert.Equal(t, int64(len(data)), info.Size)
}

func TestStorePutShortData(t *testing.T) {
	st := newStore(t)
	data := testData(100, 3)
	_, err := st.Put(t.Context(), bytes.NewReader(data), 200, PutOptions{})
	require.ErrorIs(t, err, ErrSizeMismatch)
	assert.False(t, st.Has(HashBytes(data)))
	blobs, err := st.Blobs(t.Context())
	require.NoError(t, err)
	assert.Empty(t, blobs)
}

func TestStorePutExpect(t *testing.T) {
	st := newStore(t)
	data := testData(100, 3)
	other := HashBytes([]byte("other"))
	_, err := st.Put(t.Context(), bytes.NewReader(data), 100, PutOptions{Expect: other})
	require.ErrorIs(t, err, ErrMismatch)
	assert.False(t, st.Has(HashBytes(data)))
}

func TestImportFileGrows(t *testing.T) {
	st := newStore(t)
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, testData(1000, 1), 0o644))
	info, err := st.ImportFile(t.Context(), p, PutOptions{})
	require.NoError(t, err)
	assert.Equal(t, HashBytes(testData(1000, 1)), info.Hash)
	// A file that is longer, or shorter, than when the import started.
	_, err = st.importFrom(t.Context(), bufio.NewReader(bytes.NewReader(testData(1001, 7))), 1000, "f", PutOptions{})
	require.ErrorIs(t, err, ErrSizeMismatch)
	assert.Contains(t, err.Error(), "grew")
	_, err = st.importFrom(t.Context(), bufio.NewReader(bytes.NewReader(testData(999, 7))), 1000, "f", PutOptions{})
	require.ErrorIs(t, err, ErrSizeMismatch)
	assert.Contains(t, err.Error(), "shrank")
	assert.False(t, st.Has(HashBytes(testData(1000, 7))))
}

func TestTags(t *testing.T) {
	st := newStore(t)
	a := putBytes(t, st, []byte("a"), PutOptions{})
	require.NoError(t, st.Tag(t.Context(), "x/y", a.Hash))
	require.ErrorIs(t, st.Tag(t.Context(), "bad name", a.Hash), ErrBadTag)
	require.ErrorIs(t, st.Tag(t.Context(), "z", HashBytes([]byte("absent"))), ErrNotFound)
	info, err := st.Info(t.Context(), a.Hash)
	require.NoError(t, err)
	assert.Equal(t, []string{"x/y"}, info.Tags)
	require.NoError(t, st.Untag(t.Context(), "x/y"))
	require.ErrorIs(t, st.Untag(t.Context(), "x/y"), ErrNotFound)
	for _, bad := range []string{"", "-x", "/x", "a b", "a\x00", string(make([]byte, 256))} {
		assert.ErrorIs(t, ValidateTag(bad), ErrBadTag, "%q", bad)
	}
}

func TestGC(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	tagged := putBytes(t, st, []byte("tagged"), PutOptions{Tag: "keep"})
	loose := putBytes(t, st, testData(3*GroupSize, 9), PutOptions{})
	member := putBytes(t, st, []byte("member"), PutOptions{})
	orphanMember := putBytes(t, st, []byte("member of an untagged collection"), PutOptions{})
	coll, err := st.PutCollection(ctx, &Collection{Entries: []Entry{{Path: "m", Hash: member.Hash, Size: 6, Mode: 0o644}}}, "dir")
	require.NoError(t, err)
	_, err = st.PutCollection(ctx, &Collection{Entries: []Entry{{Path: "o", Hash: orphanMember.Hash, Size: 32, Mode: 0o600}}}, "")
	require.NoError(t, err)

	// Within the grace period nothing goes.
	res, err := st.GC(ctx, GCOptions{})
	require.NoError(t, err)
	assert.Zero(t, res.Blobs)

	res, err = st.GC(ctx, GCOptions{Grace: -1})
	require.NoError(t, err)
	assert.Equal(t, 3, res.Blobs, "the loose blob, the untagged collection and its member")
	for _, h := range []Hash{tagged.Hash, member.Hash, coll.Hash} {
		assert.True(t, st.Has(h), "kept %s", h)
	}
	assert.False(t, st.Has(loose.Hash))
	assert.NoFileExists(t, st.outboardPath(loose.Hash))
	assert.False(t, st.Has(orphanMember.Hash))

	// Untagging the collection frees it and its member.
	require.NoError(t, st.Untag(ctx, "dir"))
	res, err = st.GC(ctx, GCOptions{Grace: -1})
	require.NoError(t, err)
	assert.Equal(t, 2, res.Blobs)
	assert.False(t, st.Has(member.Hash))
	assert.True(t, st.Has(tagged.Hash))

	// A blob removed by GC can be added again.
	putBytes(t, st, testData(3*GroupSize, 9), PutOptions{})
	assert.True(t, st.Has(loose.Hash))
}

func TestGCOrphans(t *testing.T) {
	st := newStore(t)
	old := time.Now().Add(-time.Hour)
	tmp := filepath.Join(st.Dir(), "tmp", "put-dead.data")
	require.NoError(t, os.WriteFile(tmp, []byte("x"), 0o600))
	require.NoError(t, os.Chtimes(tmp, old, old))
	h := HashBytes([]byte("never committed"))
	p := st.blobPath(h)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
	require.NoError(t, os.WriteFile(p, []byte("never committed"), 0o400))
	require.NoError(t, os.Chtimes(p, old, old))
	res, err := st.GC(t.Context(), GCOptions{Grace: time.Minute})
	require.NoError(t, err)
	assert.Equal(t, 2, res.Orphans)
	assert.NoFileExists(t, tmp)
	assert.NoFileExists(t, p)
}

func TestExport(t *testing.T) {
	st := newStore(t)
	data := testData(2*GroupSize+1, 4)
	info := putBytes(t, st, data, PutOptions{})
	dir := t.TempDir()
	dst := filepath.Join(dir, "out.bin")
	require.NoError(t, st.Export(t.Context(), info.Hash, dst, ExportOptions{Mode: 0o640}))
	eqBytes(t, data, readFile(t, dst))
	fi, err := os.Stat(dst)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	assert.True(t, st.Has(info.Hash), "copied, not moved")

	require.NoError(t, st.Export(t.Context(), info.Hash, filepath.Join(dir, "moved.bin"), ExportOptions{Move: true}))
	eqBytes(t, data, readFile(t, filepath.Join(dir, "moved.bin")))
	assert.False(t, st.Has(info.Hash), "moved out of the store")
	_, err = st.Info(t.Context(), info.Hash)
	assert.ErrorIs(t, err, ErrNotFound)

	// A tagged blob is copied even when asked to move.
	info = putBytes(t, st, data, PutOptions{Tag: "k"})
	require.NoError(t, st.Export(t.Context(), info.Hash, filepath.Join(dir, "c.bin"), ExportOptions{Move: true}))
	assert.True(t, st.Has(info.Hash))
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 3, "no temporary file left")
}

func TestDrop(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	a := putBytes(t, st, []byte("only in the collection"), PutOptions{})
	shared := putBytes(t, st, []byte("also in another"), PutOptions{})
	tagged := putBytes(t, st, []byte("tagged member"), PutOptions{Tag: "keep"})
	coll, err := st.PutCollection(ctx, &Collection{Entries: []Entry{
		{Path: "a", Hash: a.Hash, Size: a.Size}, {Path: "s", Hash: shared.Hash, Size: shared.Size}, {Path: "t", Hash: tagged.Hash, Size: tagged.Size},
	}}, "")
	require.NoError(t, err)
	other, err := st.PutCollection(ctx, &Collection{Entries: []Entry{{Path: "s", Hash: shared.Hash, Size: shared.Size}}}, "other")
	require.NoError(t, err)

	n, err := st.Drop(ctx, other.Hash)
	require.NoError(t, err)
	assert.Zero(t, n, "a tagged collection stays")
	n, err = st.Drop(ctx, coll.Hash)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the collection and its unshared member")
	assert.False(t, st.Has(coll.Hash))
	assert.False(t, st.Has(a.Hash))
	assert.True(t, st.Has(shared.Hash), "listed by another collection")
	assert.True(t, st.Has(tagged.Hash), "tagged")
}
