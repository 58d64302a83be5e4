package git

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-billy/v6/osfs"
	"github.com/go-git/go-git/v6/plumbing"
	"github.com/go-git/go-git/v6/plumbing/cache"
	"github.com/go-git/go-git/v6/plumbing/format/packfile"
	"github.com/go-git/go-git/v6/plumbing/object"
	"github.com/go-git/go-git/v6/plumbing/revlist"
	"github.com/go-git/go-git/v6/storage"
	"github.com/go-git/go-git/v6/storage/filesystem"
	"github.com/go-git/go-git/v6/storage/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEntryHeaderRoundTrip(t *testing.T) {
	for _, typ := range []byte{objCommit, objTree, objBlob, objTag, objOfsDelta, objRefDelta} {
		for _, size := range []uint64{0, 1, 15, 16, 127, 128, 2047, 2048, 1 << 20, 1<<32 + 5, 1<<60 - 1} {
			b := appendEntryHeader(nil, typ, size)
			gt, gs, n, ok := parseEntryHeader(append(b, 0xAA))
			require.True(t, ok)
			assert.Equal(t, typ, gt)
			assert.Equal(t, size, gs)
			assert.Equal(t, len(b), n)
		}
	}
	_, _, _, ok := parseEntryHeader([]byte{0x9f})
	assert.False(t, ok, "truncated")
	_, _, _, ok = parseEntryHeader(bytes.Repeat([]byte{0xff}, 12))
	assert.False(t, ok, "over 64 bits")
}

func TestOfsRoundTrip(t *testing.T) {
	vals := []int64{1, 127, 128, 129, 16511, 16512, 1 << 20, 1<<40 + 3}
	for range 1000 {
		vals = append(vals, rand.Int64N(1<<50)+1)
	}
	for _, v := range vals {
		b := appendOfs(nil, v)
		got, n, ok := parseOfs(append(b, 0x11))
		require.True(t, ok, v)
		assert.Equal(t, v, got)
		assert.Equal(t, len(b), n)
	}
	// Known encodings (gitformat-pack: each continuation adds one).
	assert.Equal(t, []byte{0x80, 0x00}, appendOfs(nil, 128))
	assert.Equal(t, []byte{0x7f}, appendOfs(nil, 127))
	_, _, ok := parseOfs([]byte{0x80})
	assert.False(t, ok)
}

// packedRepo makes a repository under the root whose objects are in one
// pack with deltas (go-git's encoder, OFS_DELTA): a history of commits
// that each change one file of a few similar ones. It returns the storer
// and the commits, oldest first.
func packedRepo(t *testing.T, srv *Server, name string, n int) (storage.Storer, string, []plumbing.Hash) {
	t.Helper()
	dir, err := srv.repos.create(name)
	require.NoError(t, err)
	mem := memory.NewStorage()
	files := map[string][]byte{}
	for i := range 4 {
		files[fmt.Sprintf("f%d.txt", i)] = []byte(strings.Repeat(fmt.Sprintf("line %d of a file that changes a little\n", i), 200))
	}
	var commits []plumbing.Hash
	rng := rand.New(rand.NewPCG(1, 2))
	for c := range n {
		f := fmt.Sprintf("f%d.txt", rng.IntN(4))
		body := files[f]
		at := rng.IntN(len(body) - 10)
		files[f] = append(append(slices.Clone(body[:at]), fmt.Sprintf("<change %d>", c)...), body[at:]...)
		tree := &object.Tree{}
		for _, name := range []string{"f0.txt", "f1.txt", "f2.txt", "f3.txt"} {
			blob := mem.NewEncodedObject()
			blob.SetType(plumbing.BlobObject)
			w, _ := blob.Writer()
			_, _ = w.Write(files[name])
			_ = w.Close()
			bh, err := mem.SetEncodedObject(blob)
			require.NoError(t, err)
			tree.Entries = append(tree.Entries, object.TreeEntry{Name: name, Mode: 0o100644, Hash: bh})
		}
		to := mem.NewEncodedObject()
		require.NoError(t, tree.Encode(to))
		th, err := mem.SetEncodedObject(to)
		require.NoError(t, err)
		sig := object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1700000000+int64(c), 0).UTC()}
		cm := &object.Commit{Author: sig, Committer: sig, Message: fmt.Sprintf("c%d", c), TreeHash: th}
		if len(commits) > 0 {
			cm.ParentHashes = []plumbing.Hash{commits[len(commits)-1]}
		}
		co := mem.NewEncodedObject()
		require.NoError(t, cm.Encode(co))
		ch, err := mem.SetEncodedObject(co)
		require.NoError(t, err)
		commits = append(commits, ch)
	}
	all, err := revlist.Objects(mem, []plumbing.Hash{commits[len(commits)-1]}, nil)
	require.NoError(t, err)
	st := filesystem.NewStorage(atomicRefs{osfs.New(dir, osfs.WithBoundOS())}, cache.NewObjectLRUDefault())
	t.Cleanup(func() { _ = st.Close() })
	pw, err := st.PackfileWriter()
	require.NoError(t, err)
	_, err = packfile.NewEncoder(pw, mem, false).Encode(all, 10)
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	setRef(t, st, "refs/heads/main", commits[len(commits)-1])
	return st, dir, commits
}

// parsePack reads a pack as a client would (go-git's parser, which
// resolves deltas and checks the trailer) and returns the ids it holds.
func parsePack(t *testing.T, pack []byte) []string {
	t.Helper()
	mem := memory.NewStorage()
	_, err := packfile.NewParser(bytes.NewReader(pack), packfile.WithStorage(mem)).Parse()
	require.NoError(t, err)
	var ids []string
	it, err := mem.IterEncodedObjects(plumbing.AnyObject)
	require.NoError(t, err)
	require.NoError(t, it.ForEach(func(o plumbing.EncodedObject) error {
		ids = append(ids, o.Hash().String())
		return nil
	}))
	slices.Sort(ids)
	return ids
}

func hexes(hs []plumbing.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	slices.Sort(out)
	return out
}

func TestWritePackReuses(t *testing.T) {
	srv, err := New(Config{Root: t.TempDir()})
	require.NoError(t, err)
	st, dir, commits := packedRepo(t, srv, "p.git", 40)
	set, err := openPacks(filepath.Join(dir, "objects"))
	require.NoError(t, err)
	defer set.Close()
	require.Len(t, set.packs, 1)
	deltas := 0
	for _, e := range set.packs[0].entries {
		var b [32]byte
		n, _ := set.packs[0].f.ReadAt(b[:], e.off)
		if typ, _, _, _ := parseEntryHeader(b[:n]); typ == objOfsDelta {
			deltas++
		}
	}
	require.Greater(t, deltas, 50, "the source pack has OFS_DELTA entries")

	tip := commits[len(commits)-1]
	all, err := revlist.Objects(st, []plumbing.Hash{tip}, nil)
	require.NoError(t, err)
	incr, err := revlist.Objects(st, []plumbing.Hash{tip}, []plumbing.Hash{commits[29]})
	require.NoError(t, err)
	for _, tt := range []struct {
		name  string
		objs  []plumbing.Hash
		ofs   bool
		check func(t *testing.T, s packStats)
	}{
		{"clone, ofs-delta", all, true, func(t *testing.T, s packStats) {
			assert.Equal(t, packStats{Reused: len(all)}, s, "every entry as stored")
		}},
		{"clone, no ofs-delta", all, false, func(t *testing.T, s packStats) {
			assert.Equal(t, packStats{Reused: len(all), Converted: deltas}, s, "deltas by reference")
		}},
		{"incremental", incr, true, func(t *testing.T, s packStats) {
			assert.Equal(t, len(incr), s.Reused+s.Whole)
			assert.Greater(t, s.Whole, 0, "deltas on objects the client has are sent whole")
			assert.Greater(t, s.Reused, s.Whole)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			stats, err := writePack(&out, st, set, tt.objs, tt.ofs)
			require.NoError(t, err)
			tt.check(t, stats)
			assert.Equal(t, hexes(tt.objs), parsePack(t, out.Bytes()))
			sum := sha1.Sum(out.Bytes()[:out.Len()-20])
			assert.Equal(t, sum[:], out.Bytes()[out.Len()-20:])
		})
	}

	// A stored entry that fails its CRC-32 is not passed on: the object
	// is decoded instead (here from go-git's object cache), or, when that
	// fails too, the pack fails.
	p := set.packs[0]
	victim := p.entries[len(p.entries)/2]
	data, err := os.ReadFile(p.f.Name())
	require.NoError(t, err)
	data[victim.end-1] ^= 0xff
	require.NoError(t, os.Chmod(p.f.Name(), 0o600))
	require.NoError(t, os.WriteFile(p.f.Name(), data, 0o600))
	var out bytes.Buffer
	stats, err := writePack(&out, st, set, all, true)
	if err != nil {
		assert.ErrorContains(t, err, victim.hash.String())
	} else {
		assert.Equal(t, 1, stats.Whole, "the corrupt entry was decoded, not copied")
		assert.Equal(t, hexes(all), parsePack(t, out.Bytes()))
	}
}
