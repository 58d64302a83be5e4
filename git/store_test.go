package git

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCleanName(t *testing.T) {
	good := map[string]string{
		"/a.git":         "a.git",
		"a.git":          "a.git",
		"/team/a.git":    "team/a.git",
		"/a":             "a.git",
		"team/sub/x.git": "team/sub/x.git",
	}
	for in, want := range good {
		got, err := CleanName(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "/", "//a.git", "/../a.git", "a/../b.git", "./a.git", "/.git", "a/.git",
		"/.hidden.git", "~root/a.git", "-x.git", "a\\b.git", "a\x00.git", "a/./b.git", "/a.git/", "a//b.git"} {
		_, err := CleanName(in)
		assert.ErrorIs(t, err, ErrBadName, "%q", in)
	}
}

func TestAllowed(t *testing.T) {
	id := &core.Identity{ID: "p", Resources: map[string][]string{
		"git:repo/alpha":    {"read", "write"},
		"git:repo/team/*":   {"read"},
		"git:repo/beta.git": {"read"},
		"sftp:x":            {"read"},
	}}
	tests := []struct {
		name, action string
		ok           bool
	}{
		{"alpha.git", ActionRead, true},
		{"alpha.git", ActionWrite, true},
		{"alpha.git", ActionCreate, false},
		{"beta.git", ActionRead, true},
		{"team/x.git", ActionRead, true},
		{"team/sub/x.git", ActionRead, true},
		{"team/x.git", ActionWrite, false},
		{"team.git", ActionRead, false},
		{"teamx/y.git", ActionRead, false},
		{"alphabet.git", ActionRead, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.ok, Allowed(id, tt.name, tt.action), "%s %s", tt.name, tt.action)
	}
	assert.False(t, Allowed(nil, "alpha.git", ActionRead))
	all := &core.Identity{Resources: map[string][]string{"git:repo/*": {"read"}}}
	assert.True(t, Allowed(all, "any/where.git", ActionRead))
	assert.False(t, Allowed(all, "any/where.git", ActionWrite))
	owner := &core.Identity{ID: "owner", Resources: map[string][]string{"*": {"*"}}}
	assert.True(t, Allowed(owner, "new/repo.git", ActionCreate), "the node's owner may do anything")
}

func TestResolveStaysInRoot(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	require.NoError(t, os.MkdirAll(filepath.Join(outside, "evil.git", "objects"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "evil.git", "HEAD"), []byte("ref: refs/heads/main\n"), 0o600))
	s, err := newRepoStore(filepath.Join(base, "root"))
	require.NoError(t, err)
	require.NoError(t, os.Symlink(outside, filepath.Join(s.root, "link")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "evil.git"), filepath.Join(s.root, "evil.git")))
	require.NoError(t, os.Symlink(filepath.Join(base, "nowhere"), filepath.Join(s.root, "dangling.git")))

	for _, name := range []string{"link/evil.git", "evil.git", "link/new.git", "dangling.git"} {
		_, _, err := s.resolve(name)
		assert.ErrorIs(t, err, ErrBadName, name)
		_, err = s.create(name)
		assert.ErrorIs(t, err, ErrBadName, name)
	}
	_, err = os.Stat(filepath.Join(outside, "new.git"))
	assert.True(t, os.IsNotExist(err), "nothing created outside the root")

	p, err := s.create("team/a.git")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(s.root, "team", "a.git"), p)
	head, err := os.ReadFile(filepath.Join(p, "HEAD"))
	require.NoError(t, err)
	assert.Equal(t, "ref: refs/heads/main\n", string(head))
	_, err = s.create("team/a.git")
	assert.ErrorIs(t, err, ErrExists)
	names, err := s.list()
	require.NoError(t, err)
	assert.Equal(t, []string{"team/a.git"}, names)
	require.NoError(t, s.remove("team/a.git"))
	assert.ErrorIs(t, s.remove("team/a.git"), ErrNotFound)
}

func TestManage(t *testing.T) {
	srv, err := New(Config{Root: t.TempDir()})
	require.NoError(t, err)
	admin := &core.Identity{ID: "a", Resources: map[string][]string{"git:repo/*": {"read", "write", "create"}}}
	reader := &core.Identity{ID: "r", Resources: map[string][]string{"git:repo/team/*": {"read"}}}
	for _, n := range []string{"team/a", "team/b.git", "other.git"} {
		_, err := srv.Create(admin, n)
		require.NoError(t, err, n)
	}
	_, err = srv.Create(admin, "team/a.git")
	assert.ErrorIs(t, err, ErrExists)
	_, err = srv.Create(reader, "team/c.git")
	assert.ErrorIs(t, err, ErrForbidden)
	assert.EqualError(t, err, "alknet/git: peer not authorized for git:repo/team/c: create")
	_, err = srv.Create(admin, "../x.git")
	assert.ErrorIs(t, err, ErrBadName)

	all, err := srv.List(admin)
	require.NoError(t, err)
	assert.Equal(t, []string{"other.git", "team/a.git", "team/b.git"}, all)
	mine, err := srv.List(reader)
	require.NoError(t, err)
	assert.Equal(t, []string{"team/a.git", "team/b.git"}, mine)

	_, err = srv.Remove(reader, "team/a.git")
	assert.ErrorIs(t, err, ErrForbidden)
	name, err := srv.Remove(admin, "team/a")
	require.NoError(t, err)
	assert.Equal(t, "team/a.git", name)
	_, err = srv.Remove(admin, "team/a")
	assert.ErrorIs(t, err, ErrNotFound)
	mine, err = srv.List(reader)
	require.NoError(t, err)
	assert.Equal(t, []string{"team/b.git"}, mine)
}
