package sftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/pkg/sftp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	reader = &core.Identity{ID: "reader", Scopes: []string{ScopeRead}}
	writer = &core.Identity{ID: "writer", Scopes: []string{ScopeRead, ScopeWrite}}
)

// fixture is a server whose root sits next to an "outside" directory
// holding a secret that no session may ever read or change.
type fixture struct {
	srv     *Server
	root    string
	outside string
	secret  []byte
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	base := t.TempDir()
	f := &fixture{root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside"), secret: []byte("the secret outside the root\n")}
	require.NoError(t, os.MkdirAll(f.outside, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(f.outside, "secret"), f.secret, 0o644))
	cfg.Root = f.root
	srv, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	f.srv = srv
	return f
}

// session starts ServeSession over an in-memory stream and returns a
// pkg/sftp client on the other end and the session's result.
func (f *fixture) session(t *testing.T, id *core.Identity) (*sftp.Client, <-chan error) {
	t.Helper()
	a, b := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{Identity: id})
	done := make(chan error, 1)
	go func() {
		st, err := b.AcceptStream(t.Context())
		if err != nil {
			done <- err
			return
		}
		done <- f.srv.ServeSession(t.Context(), st, id)
	}()
	st, err := a.OpenStream(t.Context())
	require.NoError(t, err)
	c, err := sftp.NewClientPipe(st, st)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(); _ = a.Close(0, "") })
	return c, done
}

func (f *fixture) write(t *testing.T, name string, data []byte) {
	t.Helper()
	p := filepath.Join(f.root, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, data, 0o644))
}

// statusCode is the SFTP status behind a client error; pkg/sftp's client
// turns NO_SUCH_FILE and PERMISSION_DENIED into os errors.
func statusCode(err error) uint32 {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fxNoSuchFile
	case errors.Is(err, os.ErrPermission):
		return fxPermission
	}
	var se *sftp.StatusError
	if errors.As(err, &se) {
		return uint32(se.FxCode())
	}
	return 0xffffffff
}

func TestRoundTrip(t *testing.T) {
	f := newFixture(t, Config{})
	c, _ := f.session(t, writer)

	data := make([]byte, 3<<20+17)
	_, _ = rand.Read(data)
	w, err := c.Create("/big.bin")
	require.NoError(t, err)
	_, err = w.ReadFrom(bytes.NewReader(data))
	require.NoError(t, err)
	require.NoError(t, w.Sync(), "fsync@openssh.com")
	require.NoError(t, w.Close())
	onDisk, err := os.ReadFile(filepath.Join(f.root, "big.bin"))
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(data), sha256.Sum256(onDisk))

	r, err := c.Open("big.bin")
	require.NoError(t, err)
	var got bytes.Buffer
	_, err = r.WriteTo(&got)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	assert.Equal(t, sha256.Sum256(data), sha256.Sum256(got.Bytes()))

	require.NoError(t, c.Mkdir("/d"))
	require.NoError(t, c.Rename("/big.bin", "/d/moved.bin"))
	_, err = os.Stat(filepath.Join(f.root, "d", "moved.bin"))
	require.NoError(t, err)
	f.write(t, "other", []byte("x"))
	err = c.Rename("/other", "/d/moved.bin")
	assert.Equal(t, uint32(fxFailure), statusCode(err), "plain rename must not replace")
	assert.ErrorContains(t, err, `"file exists"`)
	require.NoError(t, c.PosixRename("/other", "/d/moved.bin"))
	b, err := os.ReadFile(filepath.Join(f.root, "d", "moved.bin"))
	require.NoError(t, err)
	assert.Equal(t, "x", string(b))

	require.NoError(t, c.Symlink("moved.bin", "/d/link"))
	tgt, err := c.ReadLink("/d/link")
	require.NoError(t, err)
	assert.Equal(t, "moved.bin", tgt)
	fi, err := c.Lstat("/d/link")
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeSymlink)
	fi, err = c.Stat("/d/link")
	require.NoError(t, err)
	assert.Equal(t, int64(1), fi.Size())

	require.NoError(t, c.Link("/d/moved.bin", "/d/hard"))
	st1, _ := os.Stat(filepath.Join(f.root, "d", "moved.bin"))
	st2, _ := os.Stat(filepath.Join(f.root, "d", "hard"))
	assert.True(t, os.SameFile(st1, st2))

	require.NoError(t, c.Chmod("/d/hard", 0o600))
	fi, err = c.Stat("/d/hard")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	mt := time.Unix(1_600_000_000, 0)
	require.NoError(t, c.Chtimes("/d/hard", mt, mt))
	fi, _ = os.Stat(filepath.Join(f.root, "d", "hard"))
	assert.True(t, fi.ModTime().Equal(mt))
	require.NoError(t, c.Truncate("/d/hard", 0))
	fi, _ = os.Stat(filepath.Join(f.root, "d", "hard"))
	assert.Zero(t, fi.Size())
	assert.Equal(t, uint32(fxPermission), statusCode(c.Chown("/d/hard", 0, 0)), "changing owner is refused")

	for i := range 250 {
		f.write(t, filepath.Join("many", "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), nil)
	}
	ents, err := c.ReadDir("/many")
	require.NoError(t, err)
	assert.Len(t, ents, 250)

	vfs, err := c.StatVFS("/")
	require.NoError(t, err)
	assert.NotZero(t, vfs.Bsize)

	wd, err := c.Getwd()
	require.NoError(t, err)
	assert.Equal(t, "/", wd)
	rp, err := c.RealPath("../../d/./x/..")
	require.NoError(t, err)
	assert.Equal(t, "/d", rp)

	assert.Equal(t, uint32(fxFailure), statusCode(c.Remove("/d")), "remove on a directory")
	require.NoError(t, c.Remove("/d/link"))
	require.NoError(t, c.Remove("/d/hard"))
	require.NoError(t, c.Remove("/d/moved.bin"))
	require.NoError(t, c.RemoveDirectory("/d"))
	_, err = os.Stat(filepath.Join(f.root, "d"))
	assert.True(t, os.IsNotExist(err))
}

func TestEscapesRefused(t *testing.T) {
	f := newFixture(t, Config{})
	c, _ := f.session(t, writer)
	outSecret := filepath.Join(f.outside, "secret")
	rel, err := filepath.Rel(f.root, outSecret)
	require.NoError(t, err)

	// Paths that would leave the root land inside it (chroot semantics)
	// and find nothing.
	for _, p := range []string{"../../etc/passwd", "/../../../etc/passwd", rel, "/" + rel, outSecret, "../outside/secret"} {
		_, err := c.Open(p)
		assert.Equal(t, uint32(fxNoSuchFile), statusCode(err), p)
		assert.NotContains(t, err.Error(), f.root, "no host paths in errors")
	}

	// A symlink planted inside the root pointing outside: neither read
	// nor write goes through it.
	require.NoError(t, os.Symlink(outSecret, filepath.Join(f.root, "abs-link")))
	require.NoError(t, os.Symlink("../outside/secret", filepath.Join(f.root, "rel-link")))
	require.NoError(t, os.Symlink(f.outside, filepath.Join(f.root, "dir-link")))
	for _, p := range []string{"/abs-link", "/rel-link", "/dir-link/secret"} {
		_, err := c.Open(p)
		require.Error(t, err, p)
		assert.Equal(t, uint32(fxPermission), statusCode(err), "%s: path leaves the root", p)
		assert.NotContains(t, err.Error(), f.outside)
		w, err := c.OpenFile(p, os.O_WRONLY|os.O_TRUNC|os.O_CREATE)
		if err == nil {
			_, _ = w.Write([]byte("pwned"))
			_ = w.Close()
		}
		assert.Equal(t, uint32(fxPermission), statusCode(err), p)
		assert.Equal(t, uint32(fxPermission), statusCode(c.Chmod(p, 0o777)), p)
		assert.Equal(t, uint32(fxPermission), statusCode(c.Truncate(p, 0)), p)
		_, err = c.ReadDir("/dir-link")
		assert.Equal(t, uint32(fxPermission), statusCode(err))
	}
	_, err = c.Create("/dir-link/new")
	assert.Equal(t, uint32(fxPermission), statusCode(err))
	_, err = os.Stat(filepath.Join(f.outside, "new"))
	assert.True(t, os.IsNotExist(err))

	require.NoError(t, c.Mkdir("/sub"))

	// Renames and links out of the root stay inside.
	f.write(t, "mine", []byte("mine"))
	require.NoError(t, c.Rename("/mine", "../../escaped"))
	_, err = os.Stat(filepath.Join(f.root, "escaped"))
	assert.NoError(t, err, "rename target clamps to the root")
	assert.Equal(t, uint32(fxPermission), statusCode(c.Rename("/escaped", "/dir-link/escaped")))
	_, err = os.Stat(filepath.Join(f.outside, "escaped"))
	assert.True(t, os.IsNotExist(err))
	assert.Equal(t, uint32(fxPermission), statusCode(c.Link("/dir-link/secret", "/stolen")))

	// A client symlink whose target climbs is refused, even one that stays
	// inside lexically; an absolute target under the link's directory is
	// stored relative to it, one elsewhere is refused.
	raw := f.raw(t, writer)
	for i, tc := range [][2]string{{"../../outside/secret", "/s1"}, {"../escaped", "/sub/s1"}, {"/escaped", "/sub/s2"}, {"a/../b", "/s4"}} {
		code, msg := raw.symlink(uint32(i+1), tc[0], tc[1])
		assert.Equal(t, uint32(fxPermission), code, "%s -> %s", tc[1], tc[0])
		assert.Equal(t, "permission denied: symlink target may not leave the link's directory", msg, "%s -> %s", tc[1], tc[0])
	}
	require.NoError(t, c.Symlink("/escaped", "/s2"))
	tgt, err := os.Readlink(filepath.Join(f.root, "s2"))
	require.NoError(t, err)
	assert.Equal(t, "escaped", tgt)
	r, err := c.Open("/s2")
	require.NoError(t, err)
	b, _ := io.ReadAll(r)
	r.Close()
	assert.Equal(t, "mine", string(b))
	require.NoError(t, c.Mkdir("/sub/deeper"))
	require.NoError(t, c.Symlink("/sub/deeper", "/sub/s5"))
	tgt, err = os.Readlink(filepath.Join(f.root, "sub", "s5"))
	require.NoError(t, err)
	assert.Equal(t, "deeper", tgt)
	// An absolute host path means a path inside the jail.
	require.NoError(t, c.Symlink(outSecret, "/s3"))
	_, err = c.Open("/s3")
	assert.Equal(t, uint32(fxNoSuchFile), statusCode(err))

	after, err := os.ReadFile(outSecret)
	require.NoError(t, err)
	assert.Equal(t, f.secret, after)
	fi, _ := os.Stat(outSecret)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
}

// TestSymlinkSwap flips a directory between a real directory and a
// symlink to the outside while the client reads through it.
func TestSymlinkSwap(t *testing.T) {
	f := newFixture(t, Config{})
	c, _ := f.session(t, reader)
	inside := filepath.Join(f.root, "real")
	require.NoError(t, os.MkdirAll(inside, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(inside, "secret"), []byte("harmless"), 0o644))
	swap := filepath.Join(f.root, "swap")
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tmp := filepath.Join(f.root, "swap.tmp")
		for i := 0; ctx.Err() == nil; i++ {
			_ = os.Remove(tmp)
			target := "real"
			if i%2 == 1 {
				target = f.outside
			}
			_ = os.Symlink(target, tmp)
			_ = os.Rename(tmp, swap)
		}
	}()
	// Read until both states of the swap have been seen: a read through
	// the inside link, and a refusal through the outside one. The secret
	// must never come back.
	var okReads, refused int
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; okReads < 5 || refused < 5; i++ {
		require.True(t, time.Now().Before(deadline), "after %d tries: %d reads, %d refusals", i, okReads, refused)
		r, err := c.Open("/swap/secret")
		if err != nil {
			// Through the outside link (leaves the root) or mid-swap
			// (no such file); nothing else.
			code := statusCode(err)
			require.True(t, code == fxNoSuchFile || code == fxPermission, "unexpected error %v", err)
			refused++
			continue
		}
		b, err := io.ReadAll(r)
		r.Close()
		require.NoError(t, err)
		require.NotEqual(t, f.secret, b, "read the secret through a swapped symlink")
		require.Equal(t, "harmless", string(b))
		okReads++
	}
	cancel()
	wg.Wait()
}

func TestReadOnlyPeer(t *testing.T) {
	f := newFixture(t, Config{})
	f.write(t, "keep", []byte("keep"))
	require.NoError(t, os.Mkdir(filepath.Join(f.root, "dir"), 0o755))
	c, _ := f.session(t, reader)

	r, err := c.Open("/keep")
	require.NoError(t, err)
	b, _ := io.ReadAll(r)
	r.Close()
	assert.Equal(t, "keep", string(b))

	denied := func(name string, err error) {
		t.Helper()
		assert.Equal(t, uint32(fxPermission), statusCode(err), name)
	}
	_, err = c.Create("/new")
	denied("create", err)
	_, err = c.OpenFile("/keep", os.O_WRONLY)
	denied("open for write", err)
	_, err = c.OpenFile("/keep", os.O_RDWR)
	denied("open rw", err)
	denied("mkdir", c.Mkdir("/d2"))
	denied("rename", c.Rename("/keep", "/kept"))
	denied("posix-rename", c.PosixRename("/keep", "/kept"))
	denied("remove", c.Remove("/keep"))
	denied("rmdir", c.RemoveDirectory("/dir"))
	denied("chmod", c.Chmod("/keep", 0o777))
	denied("truncate", c.Truncate("/keep", 0))
	denied("symlink", c.Symlink("keep", "/l"))
	denied("link", c.Link("/keep", "/l"))

	entries, err := os.ReadDir(f.root)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	assert.Equal(t, []string{"dir", "keep"}, names)
	b, _ = os.ReadFile(filepath.Join(f.root, "keep"))
	assert.Equal(t, "keep", string(b))
}

func TestNoIdentity(t *testing.T) {
	f := newFixture(t, Config{})
	a, b := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{})
	defer a.Close(0, "")
	st, err := a.OpenStream(t.Context())
	require.NoError(t, err)
	srvSide, err := b.AcceptStream(t.Context())
	require.NoError(t, err)
	assert.ErrorIs(t, f.srv.ServeSession(t.Context(), srvSide, nil), ErrUnauthenticated)
	_, err = st.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "stream closed without a byte")
}

func TestPerPeerHome(t *testing.T) {
	f := newFixture(t, Config{PerPeerHome: true})
	cw, _ := f.session(t, writer)
	w, err := cw.Create("/hello")
	require.NoError(t, err)
	_, _ = w.Write([]byte("from writer"))
	require.NoError(t, w.Close())
	b, err := os.ReadFile(filepath.Join(f.root, "writer", "hello"))
	require.NoError(t, err)
	assert.Equal(t, "from writer", string(b))

	cr, _ := f.session(t, reader)
	_, err = cr.Open("/hello")
	assert.Equal(t, uint32(fxNoSuchFile), statusCode(err))
	_, err = cr.Open("/../writer/hello")
	assert.Equal(t, uint32(fxNoSuchFile), statusCode(err))

	home, err := f.srv.HomeDir(writer)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(f.srv.Root(), "writer"), home)
	home, err = f.srv.HomeDir(&core.Identity{ID: "newcomer"})
	require.NoError(t, err)
	fi, err := os.Stat(home)
	require.NoError(t, err, "HomeDir creates the home")
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	_, err = f.srv.HomeDir(&core.Identity{ID: "a/b"})
	assert.ErrorIs(t, err, ErrBadPeerID)

	bad := &core.Identity{ID: "..", Scopes: []string{ScopeRead}}
	a, bconn := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{Identity: bad})
	defer a.Close(0, "")
	_, err = a.OpenStream(t.Context())
	require.NoError(t, err)
	st, err := bconn.AcceptStream(t.Context())
	require.NoError(t, err)
	assert.ErrorIs(t, f.srv.ServeSession(t.Context(), st, bad), ErrBadPeerID)
}

func TestHandleLimit(t *testing.T) {
	f := newFixture(t, Config{MaxHandles: 2})
	f.write(t, "a", []byte("a"))
	c, _ := f.session(t, reader)
	h1, err := c.Open("/a")
	require.NoError(t, err)
	h2, err := c.Open("/a")
	require.NoError(t, err)
	_, err = c.Open("/a")
	assert.Equal(t, uint32(fxFailure), statusCode(err))
	assert.ErrorContains(t, err, `"too many open handles"`)
	require.NoError(t, h1.Close())
	h3, err := c.Open("/a")
	require.NoError(t, err)
	h2.Close()
	h3.Close()
}

func TestCheckFile(t *testing.T) {
	f := newFixture(t, Config{})
	data := make([]byte, 1<<20+3)
	_, _ = rand.Read(data)
	f.write(t, "f.bin", data)
	a, b := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{Identity: reader})
	defer a.Close(0, "")
	go func() {
		st, err := b.AcceptStream(t.Context())
		if err == nil {
			_ = f.srv.ServeSession(t.Context(), st, reader)
		}
	}()
	st, err := a.OpenStream(t.Context())
	require.NoError(t, err)
	alg, sum, err := CheckFile(st, "/f.bin")
	require.NoError(t, err)
	want := sha256.Sum256(data)
	assert.Equal(t, "sha256", alg)
	assert.Equal(t, want[:], sum)

	st2, err := a.OpenStream(t.Context())
	require.NoError(t, err)
	go func() {
		st, err := b.AcceptStream(t.Context())
		if err == nil {
			_ = f.srv.ServeSession(t.Context(), st, reader)
		}
	}()
	_, _, err = CheckFile(st2, "/missing")
	assert.ErrorContains(t, err, "no such file")
}

func TestCheckFileDisabled(t *testing.T) {
	f := newFixture(t, Config{MaxChecksumLength: -1})
	a, b := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{Identity: reader})
	defer a.Close(0, "")
	go func() {
		st, err := b.AcceptStream(t.Context())
		if err == nil {
			_ = f.srv.ServeSession(t.Context(), st, reader)
		}
	}()
	st, err := a.OpenStream(t.Context())
	require.NoError(t, err)
	_, _, err = CheckFile(st, "/x")
	assert.ErrorIs(t, err, ErrNoCheckFile)
}

func TestPacketTooLarge(t *testing.T) {
	f := newFixture(t, Config{MaxPacket: 40 << 10})
	a, b := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{Identity: reader})
	defer a.Close(0, "")
	done := make(chan error, 1)
	go func() {
		st, err := b.AcceptStream(t.Context())
		if err != nil {
			done <- err
			return
		}
		done <- f.srv.ServeSession(t.Context(), st, reader)
	}()
	st, err := a.OpenStream(t.Context())
	require.NoError(t, err)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 40<<10)
	_, err = st.Write(hdr[:])
	require.NoError(t, err)
	assert.ErrorIs(t, <-done, ErrPacketTooLarge)
}

func TestIdleTimeout(t *testing.T) {
	f := newFixture(t, Config{IdleTimeout: 50 * time.Millisecond})
	_, done := f.session(t, reader)
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrIdle)
	case <-time.After(10 * time.Second):
		t.Fatal("idle session was not closed")
	}
}

func TestLimitsExtension(t *testing.T) {
	f := newFixture(t, Config{MaxHandles: 7})
	a, b := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{Identity: reader})
	defer a.Close(0, "")
	go func() {
		st, err := b.AcceptStream(t.Context())
		if err == nil {
			_ = f.srv.ServeSession(t.Context(), st, reader)
		}
	}()
	st, err := a.OpenStream(t.Context())
	require.NoError(t, err)
	init := &encoder{b: make([]byte, 4)}
	init.u8(fxpInit)
	init.u32(3)
	_, _ = st.Write(init.bytes())
	p, err := readPacket(st, nil, 1<<16)
	require.NoError(t, err)
	exts, err := parseVersion(p)
	require.NoError(t, err)
	for _, e := range []string{"limits@openssh.com", "fsync@openssh.com", "posix-rename@openssh.com", "hardlink@openssh.com", "statvfs@openssh.com", "check-file"} {
		assert.Contains(t, exts, e)
	}
	req := newPacket(fxpExtended, 9)
	req.str("limits@openssh.com")
	_, _ = st.Write(req.bytes())
	p, err = readPacket(st, nil, 1<<16)
	require.NoError(t, err)
	d := decoder{b: p[5:]}
	assert.Equal(t, uint32(9), d.u32())
	assert.Equal(t, uint64(DefaultMaxPacket), d.u64())
	assert.Equal(t, uint64(DefaultMaxPacket-1024), d.u64())
	assert.Equal(t, uint64(DefaultMaxPacket-1024), d.u64())
	assert.Equal(t, uint64(7), d.u64())
	require.NoError(t, d.err)
}

// TestALPN runs the handler on real loopback endpoints: a peer with the
// scope gets a session, one without is refused by the gate.
func TestALPN(t *testing.T) {
	f := newFixture(t, Config{})
	f.write(t, "hello", []byte("over quic"))
	p := coretest.NewPair(t, []string{ScopeRead}, coretest.Route{Handler: f.srv, ACL: core.AccessControl{RequiredScopes: []string{ScopeRead}}})
	conn := p.Dial(t, ALPN)
	st, err := conn.OpenStream(t.Context())
	require.NoError(t, err)
	c, err := sftp.NewClientPipe(st, st)
	require.NoError(t, err)
	defer c.Close()
	r, err := c.Open("/hello")
	require.NoError(t, err)
	b, _ := io.ReadAll(r)
	assert.Equal(t, "over quic", string(b))
	_, err = c.Create("/nope")
	assert.Equal(t, uint32(fxPermission), statusCode(err))

	// Two sessions on two streams of one connection.
	st2, err := conn.OpenStream(t.Context())
	require.NoError(t, err)
	c2, err := sftp.NewClientPipe(st2, st2)
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.Stat("/hello")
	assert.NoError(t, err)

	q := coretest.NewPair(t, []string{"other"}, coretest.Route{Handler: f.srv, ACL: core.AccessControl{RequiredScopes: []string{ScopeRead}}})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var refused atomic.Bool
	c3, err := q.Client.Dial(ctx, q.Server.Addr(), ALPN)
	if err == nil {
		_, err = c3.AcceptStream(ctx)
	}
	if ce, ok := core.AsCloseError(err); ok && ce.Code == core.CodeForbidden {
		refused.Store(true)
		assert.Contains(t, ce.Reason, "peer not authorized for alknet/sftp")
	}
	assert.True(t, refused.Load(), "peer without scope sftp must be refused: %v", err)
}

// TestServeConnRefusesWithoutScope checks the handler's own check, for a
// gate configured too loosely.
func TestServeConnRefusesWithoutScope(t *testing.T) {
	f := newFixture(t, Config{})
	for _, id := range []*core.Identity{nil, {ID: "x", Scopes: []string{"ssh"}}} {
		a, b := coretest.Pipe(ALPN, coretest.Side{Identity: id}, coretest.Side{})
		require.NoError(t, f.srv.ServeConn(t.Context(), b))
		_, err := a.AcceptStream(t.Context())
		ce, ok := core.AsCloseError(err)
		require.True(t, ok, "%v", err)
		assert.Equal(t, core.CodeForbidden, ce.Code)
		assert.Equal(t, "peer not authorized for alknet/sftp: missing scope sftp", ce.Reason)
	}
}

// TestServerClose ends running sessions.
func TestServerClose(t *testing.T) {
	f := newFixture(t, Config{})
	_, done := f.session(t, reader)
	require.NoError(t, f.srv.Close())
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the session")
	}
	a, b := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{})
	defer a.Close(0, "")
	_, _ = a.OpenStream(t.Context())
	st, err := b.AcceptStream(t.Context())
	require.NoError(t, err)
	assert.ErrorIs(t, f.srv.ServeSession(t.Context(), st, reader), core.ErrClosed)
}

// TestSymlinkChainRefused is the chain a lexical check lets through: a
// link to ".." in a subdirectory, then a link whose target climbs through
// it. Both stay inside the root on paper, but the host file system (the
// shell, backups, per-peer homes) would follow the second one out.
func TestSymlinkChainRefused(t *testing.T) {
	f := newFixture(t, Config{})
	c, _ := f.session(t, writer)
	raw := f.raw(t, writer)
	require.NoError(t, c.Mkdir("/a"))
	const want = "permission denied: symlink target may not leave the link's directory"
	code, msg := raw.symlink(1, "..", "/a/s")
	assert.Equal(t, uint32(fxPermission), code)
	assert.Equal(t, want, msg)
	code, msg = raw.symlink(2, "a/s/../outside/secret", "/t")
	assert.Equal(t, uint32(fxPermission), code)
	assert.Equal(t, want, msg)

	// Even with the first link planted on the host, the second is refused.
	_ = os.Remove(filepath.Join(f.root, "a", "s"))
	require.NoError(t, os.Symlink("..", filepath.Join(f.root, "a", "s")))
	code, msg = raw.symlink(3, "a/s/../outside/secret", "/t")
	assert.Equal(t, uint32(fxPermission), code)
	assert.Equal(t, want, msg)
	_, err := os.Lstat(filepath.Join(f.root, "t"))
	assert.True(t, os.IsNotExist(err), "no link was made: %v", err)
	b, err := os.ReadFile(filepath.Join(f.root, "t"))
	assert.NotEqual(t, f.secret, b, "the host follows /t out of the root")
	assert.True(t, os.IsNotExist(err))
}
