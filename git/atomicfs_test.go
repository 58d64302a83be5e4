package git

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-billy/v6"
	"github.com/go-git/go-billy/v6/osfs"
	"github.com/go-git/go-git/v6/plumbing"
	"github.com/go-git/go-git/v6/plumbing/cache"
	"github.com/go-git/go-git/v6/storage/filesystem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refsFS is the filesystem the server gives go-git; the tests below fail
// with a plain osfs (the ref is empty on disk after the truncate).
func refsFS(dir string) billy.Filesystem { return atomicRefs{osfs.New(dir, osfs.WithBoundOS())} }

const (
	hashA = "1111111111111111111111111111111111111111"
	hashB = "2222222222222222222222222222222222222222"
)

// TestRefUpdateCrashSafe walks go-git's in-place ref update (open, read,
// truncate, write) and looks at the disk before the close, which is what a
// kill -9 at that point would leave.
func TestRefUpdateCrashSafe(t *testing.T) {
	dir := t.TempDir()
	ref := filepath.Join(dir, "refs", "heads", "main")
	require.NoError(t, os.MkdirAll(filepath.Dir(ref), 0o700))
	require.NoError(t, os.WriteFile(ref, []byte(hashA+"\n"), 0o600))
	fsys := refsFS(dir)

	f, err := fsys.OpenFile("refs/heads/main", os.O_RDWR|os.O_CREATE, 0o666)
	require.NoError(t, err)
	got := make([]byte, 41)
	_, err = f.Read(got)
	require.NoError(t, err)
	assert.Equal(t, hashA+"\n", string(got))
	_, err = f.Seek(0, 0)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(0))
	onDisk, err := os.ReadFile(ref)
	require.NoError(t, err)
	assert.Equal(t, hashA+"\n", string(onDisk), "after truncate, before write")
	_, err = f.Write([]byte(hashB + "\n"))
	require.NoError(t, err)
	onDisk, _ = os.ReadFile(ref)
	assert.Equal(t, hashA+"\n", string(onDisk), "after write, before close")
	require.NoError(t, f.Close())
	onDisk, _ = os.ReadFile(ref)
	assert.Equal(t, hashB+"\n", string(onDisk))

	// A new ref does not exist until it is complete.
	f, err = fsys.OpenFile("refs/heads/new", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
	require.NoError(t, err)
	_, err = f.Write([]byte(hashA + "\n"))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "refs", "heads", "new"))
	assert.True(t, os.IsNotExist(err), "new ref visible before close")
	require.NoError(t, f.Close())
	onDisk, _ = os.ReadFile(filepath.Join(dir, "refs", "heads", "new"))
	assert.Equal(t, hashA+"\n", string(onDisk))

	left, err := filepath.Glob(filepath.Join(dir, "refs", "heads", ".tmp-ref-*"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary files left")
}

// TestRefStorageThroughGoGit checks go-git's compare-and-set still holds
// on the wrapped filesystem.
func TestRefStorageThroughGoGit(t *testing.T) {
	dir := t.TempDir()
	s, err := newRepoStore(dir)
	require.NoError(t, err)
	p, err := s.create("a.git")
	require.NoError(t, err)
	st := filesystem.NewStorage(refsFS(p), cache.NewObjectLRUDefault())
	defer st.Close()
	name := plumbing.NewBranchReferenceName("main")
	require.NoError(t, st.SetReference(plumbing.NewHashReference(name, plumbing.NewHash(hashA))))
	old := plumbing.NewHashReference(name, plumbing.NewHash(hashA))
	require.NoError(t, st.CheckAndSetReference(plumbing.NewHashReference(name, plumbing.NewHash(hashB)), old))
	err = st.CheckAndSetReference(plumbing.NewHashReference(name, plumbing.NewHash(hashA)), old)
	require.Error(t, err, "stale old value refused")
	r, err := st.Reference(name)
	require.NoError(t, err)
	assert.Equal(t, hashB, r.Hash().String())
	head, err := os.ReadFile(filepath.Join(p, "HEAD"))
	require.NoError(t, err)
	assert.Equal(t, "ref: refs/heads/main\n", string(head))
}
