package git

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/go-git/go-billy/v6/osfs"
	"github.com/go-git/go-git/v6/plumbing"
	"github.com/go-git/go-git/v6/plumbing/cache"
	"github.com/go-git/go-git/v6/plumbing/object"
	"github.com/go-git/go-git/v6/plumbing/protocol"
	"github.com/go-git/go-git/v6/plumbing/protocol/packp"
	"github.com/go-git/go-git/v6/plumbing/transport"
	"github.com/go-git/go-git/v6/storage"
	"github.com/go-git/go-git/v6/storage/filesystem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testRepo is a bare repository made by the server's store, opened as the
// server opens it.
func testRepo(t *testing.T, srv *Server, name string) storage.Storer {
	t.Helper()
	dir, err := srv.repos.create(name)
	require.NoError(t, err)
	st := filesystem.NewStorage(atomicRefs{osfs.New(dir, osfs.WithBoundOS())}, cache.NewObjectLRUDefault())
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// commit stores a commit with an empty tree on top of parents.
func commit(t *testing.T, st storage.Storer, msg string, parents ...plumbing.Hash) plumbing.Hash {
	t.Helper()
	tree := st.NewEncodedObject()
	require.NoError(t, (&object.Tree{}).Encode(tree))
	th, err := st.SetEncodedObject(tree)
	require.NoError(t, err)
	sig := object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1700000000, 0).UTC()}
	c := &object.Commit{Author: sig, Committer: sig, Message: msg, TreeHash: th, ParentHashes: parents}
	obj := st.NewEncodedObject()
	require.NoError(t, c.Encode(obj))
	h, err := st.SetEncodedObject(obj)
	require.NoError(t, err)
	return h
}

func setRef(t *testing.T, st storage.Storer, name string, h plumbing.Hash) {
	t.Helper()
	require.NoError(t, st.SetReference(plumbing.NewHashReference(plumbing.ReferenceName(name), h)))
}

// refs returns the hash refs of st by name.
func refs(t *testing.T, st storage.Storer) map[string]string {
	t.Helper()
	it, err := st.IterReferences()
	require.NoError(t, err)
	out := map[string]string{}
	require.NoError(t, it.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference {
			out[r.Name().String()] = r.Hash().String()
		}
		return nil
	}))
	return out
}

func cmd(name string, old, new plumbing.Hash) *packp.Command {
	return &packp.Command{Name: plumbing.ReferenceName(name), Old: old, New: new}
}

var zero = plumbing.ZeroHash

func TestUpdateRefsAtomic(t *testing.T) {
	srv, err := New(Config{Root: t.TempDir(), Protected: []string{"refs/heads/main"}})
	require.NoError(t, err)
	st := testRepo(t, srv, "a.git")
	c1 := commit(t, st, "one")
	c2 := commit(t, st, "two", c1)
	c3 := commit(t, st, "three", c2)
	other := commit(t, st, "other")
	setRef(t, st, "refs/heads/main", c2)
	setRef(t, st, "refs/heads/topic", c1)
	before := refs(t, st)

	tests := []struct {
		name    string
		atomic  bool
		cmds    []*packp.Command
		refused map[string]string
		after   map[string]string // changed refs; "" deletes
	}{
		{
			name:   "atomic: a protected rewind refuses the whole push",
			atomic: true,
			cmds:   []*packp.Command{cmd("refs/heads/new", zero, c2), cmd("refs/heads/main", c2, c1), cmd("refs/heads/topic", c1, c2)},
			refused: map[string]string{
				"refs/heads/new":   reasonAtomic,
				"refs/heads/main":  "protected ref refs/heads/main: non-fast-forward refused",
				"refs/heads/topic": reasonAtomic,
			},
		},
		{
			name:   "atomic: a stale old value refuses the whole push",
			atomic: true,
			cmds:   []*packp.Command{cmd("refs/heads/topic", c2, other), cmd("refs/tags/v1", zero, c1)},
			refused: map[string]string{
				"refs/heads/topic": reasonStale,
				"refs/tags/v1":     reasonAtomic,
			},
		},
		{
			name:   "atomic: a missing object refuses the whole push",
			atomic: true,
			cmds:   []*packp.Command{cmd("refs/heads/x", zero, plumbing.NewHash("1234567890123456789012345678901234567890")), cmd("refs/tags/v1", zero, c1)},
			refused: map[string]string{
				"refs/heads/x": reasonMissingObj,
				"refs/tags/v1": reasonAtomic,
			},
		},
		{
			name:    "not atomic: the protected ref alone is refused",
			cmds:    []*packp.Command{cmd("refs/heads/main", c2, zero), cmd("refs/heads/topic", c1, other)},
			refused: map[string]string{"refs/heads/main": "protected ref refs/heads/main: delete refused"},
			after:   map[string]string{"refs/heads/topic": other.String()},
		},
		{
			name:    "a ref named twice refuses the push",
			cmds:    []*packp.Command{cmd("refs/heads/d", zero, c1), cmd("refs/heads/d", zero, c2)},
			refused: map[string]string{"refs/heads/d": reasonDuplicate},
		},
		{
			name:   "atomic: a protected ref set to an unrelated commit",
			atomic: true,
			cmds:   []*packp.Command{cmd("refs/heads/main", c2, other), cmd("refs/heads/topic", c1, zero), cmd("refs/tags/v1", zero, c1)},
			refused: map[string]string{
				"refs/heads/main":  "protected ref refs/heads/main: non-fast-forward refused",
				"refs/heads/topic": reasonAtomic,
				"refs/tags/v1":     reasonAtomic,
			},
		},
		{
			name:   "atomic: a fast-forward, a delete and a create succeed together",
			atomic: true,
			cmds:   []*packp.Command{cmd("refs/heads/main", c2, c3), cmd("refs/heads/topic", c1, zero), cmd("refs/tags/v1", zero, c1)},
			after:  map[string]string{"refs/heads/main": c3.String(), "refs/heads/topic": "", "refs/tags/v1": c1.String()},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case starts from the same refs.
			for n := range refs(t, st) {
				require.NoError(t, st.RemoveReference(plumbing.ReferenceName(n)))
			}
			for n, h := range before {
				setRef(t, st, n, plumbing.NewHash(h))
			}
			res := &pushResult{Atomic: tt.atomic, Refused: map[plumbing.ReferenceName]string{}}
			srv.updateRefs(st, tt.cmds, res)
			got := map[string]string{}
			for n, why := range res.Refused {
				got[n.String()] = why
			}
			if tt.refused == nil {
				tt.refused = map[string]string{}
			}
			assert.Equal(t, tt.refused, got)
			want := map[string]string{}
			for n, h := range before {
				want[n] = h
			}
			for n, h := range tt.after {
				if h == "" {
					delete(want, n)
				} else {
					want[n] = h
				}
			}
			assert.Equal(t, want, refs(t, st))
			applied := 0
			for _, c := range tt.cmds {
				if _, ok := tt.refused[c.Name.String()]; !ok {
					applied++
				}
			}
			assert.Len(t, res.Applied, applied)
		})
	}
}

// failingRefs fails writes of one ref, as a full disk or a failed rename
// would.
type failingRefs struct {
	storage.Storer
	fail plumbing.ReferenceName
}

var errDisk = errors.New("disk full")

func (f failingRefs) SetReference(r *plumbing.Reference) error {
	if r.Name() == f.fail {
		return errDisk
	}
	return f.Storer.SetReference(r)
}

func (f failingRefs) CheckAndSetReference(r, old *plumbing.Reference) error {
	if r.Name() == f.fail {
		return errDisk
	}
	return f.Storer.CheckAndSetReference(r, old)
}

// TestUpdateRefsAtomicRollback checks that an atomic push whose third ref
// update fails while applying leaves every ref as it was.
func TestUpdateRefsAtomicRollback(t *testing.T) {
	srv, err := New(Config{Root: t.TempDir()})
	require.NoError(t, err)
	st := testRepo(t, srv, "a.git")
	c1 := commit(t, st, "one")
	c2 := commit(t, st, "two", c1)
	setRef(t, st, "refs/heads/main", c1)
	setRef(t, st, "refs/heads/gone", c1)
	before := refs(t, st)
	cmds := []*packp.Command{cmd("refs/heads/main", c1, c2), cmd("refs/heads/gone", c1, zero), cmd("refs/heads/new", zero, c2), cmd("refs/tags/v", zero, c1)}

	res := &pushResult{Atomic: true, Refused: map[plumbing.ReferenceName]string{}}
	srv.updateRefs(failingRefs{Storer: st, fail: "refs/heads/new"}, cmds, res)
	assert.Equal(t, map[plumbing.ReferenceName]string{
		"refs/heads/main": reasonAtomic,
		"refs/heads/gone": reasonAtomic,
		"refs/heads/new":  "failed to update ref",
		"refs/tags/v":     reasonAtomic,
	}, res.Refused)
	assert.Empty(t, res.Applied)
	assert.Equal(t, before, refs(t, st), "the updates made before the failure are undone")

	// Without --atomic the others go through.
	res = &pushResult{Refused: map[plumbing.ReferenceName]string{}}
	srv.updateRefs(failingRefs{Storer: st, fail: "refs/heads/new"}, cmds, res)
	assert.Equal(t, map[plumbing.ReferenceName]string{"refs/heads/new": "failed to update ref"}, res.Refused)
	assert.Equal(t, map[string]string{"refs/heads/main": c2.String(), "refs/tags/v": c1.String()}, refs(t, st))
}

func TestValidRefName(t *testing.T) {
	for _, good := range []string{"refs/heads/main", "refs/tags/v1.0", "refs/heads/team/x-y_z", "refs/heads/caf\u00e9"} {
		assert.True(t, validRefName(plumbing.ReferenceName(good)), good)
	}
	for _, bad := range []string{"HEAD", "config", "refs/heads/a..b", "refs/heads/x.lock", "refs/heads/\u200c./x",
		"refs/heads/a\x01b", "refs/heads/a b", "refs/heads/a\ufe0fb", "refs/../config", "refs/heads/\xff", "refs/heads/x/"} {
		assert.False(t, validRefName(plumbing.ReferenceName(bad)), "%q", bad)
	}
}

// TestAdvertiseReceive checks that the advertisement is go-git's with the
// atomic capability added, for each protocol version a client may ask.
func TestAdvertiseReceive(t *testing.T) {
	srv, err := New(Config{Root: t.TempDir()})
	require.NoError(t, err)
	st := testRepo(t, srv, "a.git")
	setRef(t, st, "refs/heads/main", commit(t, st, "one"))
	for _, p := range []string{"", "version=1", "version=2"} {
		var want, got bytes.Buffer
		require.NoError(t, transport.AdvertiseRefs(t.Context(), st, &want, transport.ReceivePackService, false, transport.ProtocolVersion(p)))
		require.NoError(t, advertiseReceive(t.Context(), st, &got, p))
		ar, wantAR := &packp.AdvRefs{}, &packp.AdvRefs{}
		require.NoError(t, ar.Decode(bytes.NewReader(got.Bytes())))
		require.NoError(t, wantAR.Decode(bytes.NewReader(want.Bytes())))
		assert.True(t, ar.Capabilities.Supports("atomic"), p)
		assert.Equal(t, p == "version=1", ar.Version == protocol.V1, p)
		// Without "atomic" the advertisement is go-git's.
		ar.Capabilities.Delete("atomic")
		assert.Equal(t, wantAR, ar, p)
		assert.Equal(t, want.Len()+len(" atomic"), got.Len(), p)
	}
}

// demux returns the band-1 payload of a side-band stream and checks that it
// ends with a flush.
func demux(t *testing.T, s string) string {
	t.Helper()
	var out strings.Builder
	for {
		require.GreaterOrEqual(t, len(s), 4, "truncated side band")
		var n int
		_, err := fmt.Sscanf(s[:4], "%04x", &n)
		require.NoError(t, err)
		if n == 0 {
			assert.Equal(t, "0000", s, "the side band ends with a flush")
			return out.String()
		}
		require.Equal(t, byte(1), s[4], "band 1")
		out.WriteString(s[5:n])
		s = s[n:]
	}
}

// TestReceivePackWire drives a push over a stream: a delete-only atomic
// push where one delete hits a protected ref is refused whole, with git's
// report-status lines.
func TestReceivePackWire(t *testing.T) {
	var logs bytes.Buffer
	srv, err := New(Config{Root: t.TempDir(), Protected: []string{"refs/heads/main"}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	st := testRepo(t, srv, "a.git")
	c1 := commit(t, st, "one")
	setRef(t, st, "refs/heads/main", c1)
	setRef(t, st, "refs/heads/topic", c1)
	admin := &core.Identity{ID: "a", Resources: map[string][]string{"git:repo/*": {"read", "write"}}}

	push := func(caps string) string {
		var b bytes.Buffer
		b.Write(pktLine(fmt.Appendf(nil, "%s %s refs/heads/topic\x00%s\n", c1, zero, caps)))
		b.Write(pktLine(fmt.Appendf(nil, "%s %s refs/heads/main\n", c1, zero)))
		b.WriteString("0000")
		if strings.Contains(caps, "push-options") {
			b.Write(pktLine([]byte("ci.skip")))
			b.Write(pktLine([]byte("reviewer=x")))
			b.WriteString("0000")
		}
		out := exchange(t, srv, admin, string(Request{Service: ReceivePack, Path: "/a.git"}.Encode())+b.String())
		_, report, ok := strings.Cut(out, "0000") // after the advertisement
		require.True(t, ok, out)
		return report
	}
	report := push("report-status atomic")
	assert.Equal(t, string(pktLine([]byte("unpack ok\n")))+
		string(pktLine([]byte("ng refs/heads/topic atomic push failure\n")))+
		string(pktLine([]byte("ng refs/heads/main protected ref refs/heads/main: delete refused\n")))+"0000", report)
	assert.Equal(t, map[string]string{"refs/heads/main": c1.String(), "refs/heads/topic": c1.String()}, refs(t, st))

	// Without atomic, through side-band-64k: topic goes, main stays.
	report = push("report-status side-band-64k push-options")
	inner := string(pktLine([]byte("unpack ok\n"))) +
		string(pktLine([]byte("ok refs/heads/topic\n"))) +
		string(pktLine([]byte("ng refs/heads/main protected ref refs/heads/main: delete refused\n"))) + "0000"
	assert.Equal(t, inner, demux(t, report))
	assert.Equal(t, map[string]string{"refs/heads/main": c1.String()}, refs(t, st))
	assert.Contains(t, logs.String(), "msg=\"git push\" repo=a.git peer=a atomic=false updated=1 refused=1 options=2")
}
