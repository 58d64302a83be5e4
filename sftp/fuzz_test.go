package sftp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"

	"github.com/stretchr/testify/require"
)

// FuzzResolve checks that no client path resolves to a name outside the
// root, lexically or through the jailed file system: the fixture root
// holds symlinks to a secret next to it, and reading any resolved name
// must never return the secret.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"", "/", ".", "..", "../../etc/passwd", "/../../../x", "a/../../b", "a/./b//c/", "\x00", "evil", "dir/secret", "evildir/secret", "rel/../evildir/secret", "sub/../../outside/secret", "/outside/secret"} {
		f.Add(s)
	}
	base := f.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	secret := []byte("fuzz secret outside the root")
	require.NoError(f, os.MkdirAll(filepath.Join(root, "sub"), 0o755))
	require.NoError(f, os.MkdirAll(outside, 0o755))
	require.NoError(f, os.WriteFile(filepath.Join(outside, "secret"), secret, 0o644))
	require.NoError(f, os.WriteFile(filepath.Join(root, "sub", "inside"), []byte("inside"), 0o644))
	require.NoError(f, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "evil")))
	require.NoError(f, os.Symlink("../outside/secret", filepath.Join(root, "rel")))
	require.NoError(f, os.Symlink(outside, filepath.Join(root, "evildir")))
	require.NoError(f, os.Symlink("../../outside", filepath.Join(root, "sub", "up")))
	require.NoError(f, os.Symlink("inside", filepath.Join(root, "sub", "ok")))
	jail, err := os.OpenRoot(root)
	require.NoError(f, err)
	f.Cleanup(func() { jail.Close() })

	f.Fuzz(func(t *testing.T, p string) {
		name, err := resolve(p)
		if err != nil {
			if !strings.Contains(p, "\x00") {
				t.Fatalf("resolve(%q) refused a path without NUL: %v", p, err)
			}
			return
		}
		if name != "." {
			if !filepath.IsLocal(name) || path.IsAbs(name) || name != path.Clean(name) {
				t.Fatalf("resolve(%q) = %q: not a clean local name", p, name)
			}
			for _, el := range strings.Split(name, "/") {
				if el == ".." || el == "." || el == "" {
					t.Fatalf("resolve(%q) = %q has element %q", p, name, el)
				}
			}
		}
		joined := filepath.Join(root, name)
		if joined != root && !strings.HasPrefix(joined, root+string(filepath.Separator)) {
			t.Fatalf("resolve(%q) = %q leaves the root", p, name)
		}
		if b, err := jail.ReadFile(name); err == nil && bytes.Equal(b, secret) {
			t.Fatalf("resolve(%q) = %q reads the secret", p, name)
		}
		// clientPath agrees with resolve.
		if cp := clientPath(p); !strings.HasPrefix(cp, "/") || (name == "." && cp != "/") || (name != "." && cp != "/"+name) {
			t.Fatalf("clientPath(%q) = %q, resolve = %q", p, cp, name)
		}
	})
}

// FuzzLinkTarget checks that a stored symlink target never climbs: it is
// relative, has no ".." element (so it names the link's directory or
// something below it, however directories are renamed later), and an
// absolute target that is accepted still means the same place.
func FuzzLinkTarget(f *testing.F) {
	for _, s := range [][2]string{{"a", "/l"}, {"../x", "/d/l"}, {"../../x", "/d/l"}, {"/etc/passwd", "/d/e/l"}, {"/", "/l"}, {"..", "/l"}, {"a/../../b", "/x/y/l"}, {"a/s/../outside/secret", "/t"}, {"/d/e/f", "/d/l"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, target, link string) {
		got, err := linkTarget(target, link)
		if err != nil {
			if !errors.Is(err, errLinkClimb) && !errors.Is(err, errBadPath) {
				t.Fatalf("linkTarget(%q, %q): unexpected error %v", target, link, err)
			}
			return
		}
		if got == "" || path.IsAbs(got) || strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("linkTarget(%q, %q) = %q", target, link, got)
		}
		for _, el := range strings.Split(got, "/") {
			if el == ".." {
				t.Fatalf("linkTarget(%q, %q) = %q climbs", target, link, got)
			}
		}
		dir := path.Dir(clientPath(link))
		if path.IsAbs(target) && path.Clean(path.Join(dir, got)) != path.Clean(target) {
			t.Fatalf("linkTarget(%q, %q) = %q does not point at the same place", target, link, got)
		}
		if !path.IsAbs(target) && got != target {
			t.Fatalf("linkTarget(%q, %q) = %q changed a relative target", target, link, got)
		}
	})
}

// FuzzReadPacket checks the framing: a packet is returned only when its
// declared length fits the limit, and then it is exactly the declared
// length plus the prefix, consuming nothing more.
func FuzzReadPacket(f *testing.F) {
	for _, s := range [][]byte{{0, 0, 0, 5, 1, 0, 0, 0, 3}, {0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 2, 1}, {0, 0, 0x90, 0, 1}} {
		f.Add(s, int64(64<<10))
	}
	f.Fuzz(func(t *testing.T, in []byte, limit int64) {
		limit = limit%(1<<20) + 8
		if limit < 8 {
			limit = -limit + 8
		}
		r := bytes.NewReader(in)
		p, err := readPacket(r, nil, limit)
		if err != nil {
			if len(in) >= 4 {
				n := int64(binary.BigEndian.Uint32(in))
				if n > 0 && n <= limit-4 && int64(len(in)) >= 4+n {
					t.Fatalf("refused a well-formed packet: %v", err)
				}
			}
			return
		}
		n := int64(binary.BigEndian.Uint32(in))
		if n == 0 || n > limit-4 || int64(len(p)) != n+4 || !bytes.Equal(p, in[:n+4]) {
			t.Fatalf("returned %d bytes for declared %d (limit %d)", len(p), n, limit)
		}
		if int64(r.Len()) != int64(len(in))-(n+4) {
			t.Fatal("consumed more than one packet")
		}
	})
}

// FuzzClientReplies checks the client-side decoders never panic and never
// accept a digest of the wrong size.
func FuzzClientReplies(f *testing.F) {
	good := newPacket(fxpExtendedReply, 1)
	good.str(extCheckFile)
	good.str("sha256")
	good.raw(make([]byte, 32))
	f.Add(good.bytes())
	v := &encoder{b: make([]byte, 4)}
	v.u8(fxpVersion)
	v.u32(3)
	v.str("check-file")
	v.str("sha256")
	f.Add(v.bytes())
	f.Add(statusPacket(1, fxNoSuchFile, "no such file"))
	f.Fuzz(func(t *testing.T, p []byte) {
		if alg, sum, err := parseCheckFileReply(p, 1); err == nil {
			h := newHash(alg)
			if h == nil || len(sum) != h.Size() {
				t.Fatalf("accepted digest %x for %q", sum, alg)
			}
		}
		if alg, sums, err := parseCheckFileBlocks(p, 1); err == nil {
			h := newHash(alg)
			if h == nil || len(sums) == 0 {
				t.Fatalf("accepted %d digests for %q", len(sums), alg)
			}
			total := 0
			for _, s := range sums {
				if len(s) != h.Size() {
					t.Fatalf("accepted digest %x for %q", s, alg)
				}
				total += len(s)
			}
			if total > len(p) {
				t.Fatal("more digest bytes than the packet holds")
			}
		}
		_, _ = parseVersion(p)
		_, _ = parseLimitsReply(p, 1)
	})
}

// TestReadPacketLimits covers the edges FuzzReadPacket checks.
func TestReadPacketLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"zero length", []byte{0, 0, 0, 0}, ErrBadPacket},
		{"too large", []byte{0, 0, 0x10, 0}, ErrPacketTooLarge},
		{"truncated", []byte{0, 0, 0, 5, 1}, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readPacket(bytes.NewReader(tc.in), nil, 4096)
			require.True(t, errors.Is(err, tc.want), "got %v", err)
		})
	}
	p, err := readPacket(bytes.NewReader([]byte{0, 0, 0, 2, 9, 9, 7}), nil, 4096)
	require.NoError(t, err)
	require.Equal(t, []byte{0, 0, 0, 2, 9, 9}, p)
}

// FuzzParseHead checks the session's own decoding of OPEN, CLOSE and
// EXTENDED before pkg/sftp: a head is accepted exactly when the body
// holds the id and the whole declared string, and then re-encoding it
// gives back the packet byte for byte.
func FuzzParseHead(f *testing.F) {
	open := newPacket(fxpOpen, 7)
	open.str("/a/file")
	open.u32(1)
	open.u32(0)
	f.Add(open.bytes())
	cl := newPacket(fxpClose, 8)
	cl.str("handle-1")
	f.Add(cl.bytes())
	f.Add(checkFileReq(9, extCheckFileName, "/f", "sha256", 0, 0, 256))
	f.Add([]byte{0, 0, 0, 9, fxpExtended, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 1, fxpClose})
	f.Add([]byte{0, 0, 0, 5, fxpInit, 0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, p []byte) {
		h, err := parseHead(p)
		if len(p) < 5 {
			if err == nil {
				t.Fatal("accepted a packet without a type")
			}
			return
		}
		if h.typ != p[4] {
			t.Fatalf("type %d, packet says %d", h.typ, p[4])
		}
		switch p[4] {
		case fxpOpen, fxpClose, fxpExtended:
		default:
			if err != nil || h.name != "" || h.args != nil {
				t.Fatalf("looked into a packet of type %d: %+v %v", p[4], h, err)
			}
			return
		}
		body := p[5:]
		fits := len(body) >= 8 && uint64(binary.BigEndian.Uint32(body[4:])) <= uint64(len(body)-8)
		if (err == nil) != fits {
			t.Fatalf("accepted=%v but the body holds id and string=%v", err == nil, fits)
		}
		if err != nil {
			return
		}
		e := &encoder{b: append([]byte(nil), p[:4]...)}
		e.u8(h.typ)
		e.u32(h.id)
		e.str(h.name)
		e.raw(h.args)
		if !bytes.Equal(e.b, p) {
			t.Fatalf("re-encoded %x, packet %x", e.b, p)
		}
	})
}

// FuzzSession feeds arbitrary bytes after INIT to a session of a
// read-only peer: the session must end when the input does, every reply
// must be a whole packet within MaxPacket, and nothing in the root may
// change.
func FuzzSession(f *testing.F) {
	for _, seed := range [][]byte{
		checkFileReq(1, extCheckFileName, "/f", "sha256", 0, 0, 0),
		checkFileReq(1, extCheckFileHandle, "x", "md5", 0, 0, 256),
		append(append([]byte(nil), seedOpen()...), seedClose()...),
		{0, 0, 0, 5, fxpExtended, 0, 0, 0, 1},
		{0, 0, 0, 0},
		{0, 1, 0, 0, fxpOpen},
	} {
		f.Add(seed)
	}
	base := f.TempDir()
	root := filepath.Join(base, "root")
	require.NoError(f, os.MkdirAll(filepath.Join(root, "d"), 0o755))
	require.NoError(f, os.WriteFile(filepath.Join(root, "f"), []byte("file"), 0o644))
	srv, err := New(Config{Root: root, MaxPacket: 40 << 10})
	require.NoError(f, err)
	f.Cleanup(func() { _ = srv.Close() })
	snapshot := func() string {
		var b strings.Builder
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			fi, _ := os.Lstat(p)
			if fi != nil {
				b.WriteString(p + fi.Mode().String() + string(rune(fi.Size())) + "\n")
			}
			return nil
		})
		return b.String()
	}
	before := snapshot()
	reader := &core.Identity{ID: "fuzz", Scopes: []string{ScopeRead}}

	f.Fuzz(func(t *testing.T, in []byte) {
		cli, srvSide := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- srv.ServeSession(context.Background(), srvSide, reader) }()
		init := &encoder{b: make([]byte, 4)}
		init.u8(fxpInit)
		init.u32(protocolVersion)
		replies := make(chan error, 1)
		go func() {
			var err error
			for {
				var p []byte
				if p, err = readPacket(cli, nil, 40<<10); err != nil {
					break
				}
				if len(p) < 5 {
					err = errors.New("short reply")
					break
				}
			}
			// A session ended for a protocol violation may cut the reply
			// it was writing; every complete reply must be well-formed.
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrClosedPipe) {
				err = nil
			}
			replies <- err
		}()
		_ = cli.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, _ = cli.Write(append(init.bytes(), in...))
		// End the input: the session must finish by itself.
		_ = cli.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end")
		}
		select {
		case err := <-replies:
			if err != nil {
				t.Fatalf("bad reply stream: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("reply reader stuck")
		}
		if after := snapshot(); after != before {
			t.Fatalf("a read-only session changed the root:\n%s\n%s", before, after)
		}
	})
}

// seedOpen and seedClose are seed packets: open /f for reading,
// close the first handle.
func seedOpen() []byte {
	e := newPacket(fxpOpen, 2)
	e.str("/f")
	e.u32(1)
	e.u32(0)
	return e.bytes()
}

func seedClose() []byte {
	e := newPacket(fxpClose, 3)
	e.str("0")
	return e.bytes()
}
