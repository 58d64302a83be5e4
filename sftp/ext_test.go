package sftp

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawSession is a client that speaks SFTP packets by hand, for requests
// and replies pkg/sftp's client does not expose (status messages of
// PERMISSION_DENIED, extensions, malformed packets).
type rawSession struct {
	t    *testing.T
	st   core.Stream
	done <-chan error
	exts map[string]string
}

func (f *fixture) raw(t *testing.T, id *core.Identity) *rawSession {
	t.Helper()
	a, b := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{Identity: id})
	t.Cleanup(func() { _ = a.Close(0, "") })
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
	r := &rawSession{t: t, st: st, done: done}
	init := &encoder{b: make([]byte, 4)}
	init.u8(fxpInit)
	init.u32(protocolVersion)
	r.send(init.bytes())
	r.exts, err = parseVersion(r.recv())
	require.NoError(t, err)
	return r
}

func (r *rawSession) send(p []byte) {
	r.t.Helper()
	_, err := r.st.Write(p)
	require.NoError(r.t, err)
}

// recv reads one reply packet, failing the test after ten seconds.
func (r *rawSession) recv() []byte {
	r.t.Helper()
	_ = r.st.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := readPacket(r.st, nil, 1<<20)
	require.NoError(r.t, err, "no reply")
	return p
}

// status reads a reply that must be SSH_FXP_STATUS for id and returns its
// code and message.
func (r *rawSession) status(id uint32) (uint32, string) {
	r.t.Helper()
	p := r.recv()
	require.Equal(r.t, byte(fxpStatus), p[4], "want a status reply, got type %d", p[4])
	d := decoder{b: p[5:]}
	require.Equal(r.t, id, d.u32())
	code, msg := d.u32(), d.str()
	require.NoError(r.t, d.err)
	return code, msg
}

// symlink sends SSH_FXP_SYMLINK in OpenSSH's argument order (target
// first) and returns the status.
func (r *rawSession) symlink(id uint32, target, link string) (uint32, string) {
	r.t.Helper()
	e := newPacket(20, id)
	e.str(target)
	e.str(link)
	r.send(e.bytes())
	return r.status(id)
}

// checkFileReq is a check-file-name or check-file-handle request.
func checkFileReq(id uint32, ext, arg, algs string, start, length uint64, block uint32) []byte {
	e := newPacket(fxpExtended, id)
	e.str(ext)
	e.str(arg)
	e.str(algs)
	e.u64(start)
	e.u64(length)
	e.u32(block)
	return e.bytes()
}

// hugeSparse makes a sparse file of the largest size check-file hashes by
// default, which takes minutes to hash.
func (f *fixture) hugeSparse(t *testing.T, name string) {
	t.Helper()
	h, err := os.Create(filepath.Join(f.root, name))
	require.NoError(t, err)
	require.NoError(t, h.Truncate(DefaultMaxChecksumLength-1))
	require.NoError(t, h.Close())
}

// startHash sends a check-file request for a huge file and waits until
// the session has taken it (a later limits request is answered).
func startHash(t *testing.T, st core.Stream) {
	t.Helper()
	_, err := st.Write(checkFileReq(1, extCheckFileName, "/huge", "sha256", 0, 0, 0))
	require.NoError(t, err)
	lim := newPacket(fxpExtended, 2)
	lim.str(extLimits)
	_, err = st.Write(lim.bytes())
	require.NoError(t, err)
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := readPacket(st, nil, 1<<16)
	require.NoError(t, err)
	_, err = parseLimitsReply(p, 2)
	require.NoError(t, err, "the limits reply comes first: hashing is still running")
}

// TestCheckFileStopsWhenClientGone: hashing stops when the connection
// closes, instead of reading up to 64 GiB for nobody.
func TestCheckFileStopsWhenClientGone(t *testing.T) {
	f := newFixture(t, Config{})
	f.hugeSparse(t, "huge")
	a, b := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{Identity: reader})
	done := make(chan error, 1)
	go func() {
		st, err := b.AcceptStream(t.Context())
		if err != nil {
			done <- err
			return
		}
		done <- f.srv.ServeSession(b.Context(), st, reader)
	}()
	st, err := a.OpenStream(t.Context())
	require.NoError(t, err)
	_, err = clientInit(st)
	require.NoError(t, err)
	startHash(t, st)
	require.NoError(t, a.Close(0, "gone"))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("session still hashing after the client went away")
	}
}

// TestCheckFileStopsOnClose: closing the server (a node draining) is not
// held up by a running hash.
func TestCheckFileStopsOnClose(t *testing.T) {
	f := newFixture(t, Config{})
	f.hugeSparse(t, "huge")
	r := f.raw(t, reader)
	startHash(t, r.st)
	closed := make(chan error, 1)
	go func() { closed <- f.srv.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a running hash")
	}
	select {
	case err := <-r.done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end")
	}
}

// TestCheckFileAfterHalfClose: a client that sends its request and closes
// its side still gets the answer.
func TestCheckFileAfterHalfClose(t *testing.T) {
	f := newFixture(t, Config{})
	f.write(t, "small", []byte("hello"))
	r := f.raw(t, reader)
	r.send(checkFileReq(5, extCheckFileName, "/small", "sha256", 0, 0, 0))
	require.NoError(t, r.st.CloseWrite())
	alg, sum, err := parseCheckFileReply(r.recv(), 5)
	require.NoError(t, err)
	want := sha256.Sum256([]byte("hello"))
	assert.Equal(t, "sha256", alg)
	assert.Equal(t, want[:], sum)
}

// open sends SSH_FXP_OPEN for reading and returns the handle.
func (r *rawSession) open(id uint32, p string) string {
	r.t.Helper()
	e := newPacket(fxpOpen, id)
	e.str(p)
	e.u32(1) // SSH_FXF_READ
	e.u32(0) // no attributes
	r.send(e.bytes())
	reply := r.recv()
	require.Equal(r.t, byte(fxpHandle), reply[4], "open %s", p)
	d := decoder{b: reply[5:]}
	require.Equal(r.t, id, d.u32())
	h := d.str()
	require.NoError(r.t, d.err)
	return h
}

func sha256Blocks(data []byte, block int) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := min(block, len(data))
		s := sha256.Sum256(data[:n])
		out = append(out, s[:])
		data = data[n:]
	}
	return out
}

// TestCheckFileHandle hashes through an open handle, whole and per block,
// and over a sub-range.
func TestCheckFileHandle(t *testing.T) {
	f := newFixture(t, Config{})
	data := make([]byte, 300_000)
	_, _ = rand.Read(data)
	f.write(t, "f.bin", data)
	r := f.raw(t, reader)
	h := r.open(1, "/f.bin")

	r.send(checkFileReq(2, extCheckFileHandle, h, "md5,sha256", 0, 0, 0))
	alg, sums, err := parseCheckFileBlocks(r.recv(), 2)
	require.NoError(t, err)
	want := md5.Sum(data)
	assert.Equal(t, "md5", alg, "the client's first supported choice")
	assert.Equal(t, [][]byte{want[:]}, sums)

	r.send(checkFileReq(3, extCheckFileHandle, h, "sha256", 1000, 200_000, 65536))
	alg, sums, err = parseCheckFileBlocks(r.recv(), 3)
	require.NoError(t, err)
	assert.Equal(t, "sha256", alg)
	assert.Equal(t, sha256Blocks(data[1000:201_000], 65536), sums, "four blocks, the last one short")

	// Through the exported client, on one session.
	a, b := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{Identity: reader})
	defer a.Close(0, "")
	go func() {
		if st, err := b.AcceptStream(t.Context()); err == nil {
			_ = f.srv.ServeSession(t.Context(), st, reader)
		}
	}()
	st, err := a.OpenStream(t.Context())
	require.NoError(t, err)
	ctl, err := NewControl(st)
	require.NoError(t, err)
	_, sums, err = ctl.CheckRange("/f.bin", 0, int64(len(data)), 1<<16, "sha256")
	require.NoError(t, err)
	assert.Equal(t, sha256Blocks(data, 1<<16), sums)
	_, sum, err := ctl.CheckFile("/f.bin")
	require.NoError(t, err)
	whole := sha256.Sum256(data)
	assert.Equal(t, whole[:], sum)
	_, _, err = ctl.CheckRange("/f.bin", 0, 0, 1<<16)
	assert.ErrorIs(t, err, ErrCheckRange, "block hashes need a length")
	_, _, err = ctl.CheckRange("/f.bin", 0, 1<<30, 256)
	assert.ErrorIs(t, err, ErrCheckRange, "more than MaxCheckBlocks blocks")
}

// TestExtensionErrors covers every refusal of the extensions this package
// serves itself, each with its code and message.
func TestExtensionErrors(t *testing.T) {
	f := newFixture(t, Config{MaxPacket: 34 << 10, MaxChecksumLength: 400_000})
	f.write(t, "f.bin", make([]byte, 300_000))
	f.write(t, "big.bin", make([]byte, 500_000))
	require.NoError(t, os.Mkdir(filepath.Join(f.root, "dir"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(f.outside, "secret"), filepath.Join(f.root, "out")))
	r := f.raw(t, reader)
	h := r.open(1, "/f.bin")

	short := newPacket(fxpExtended, 0)
	short.str(extCheckFileName)
	short.str("/f.bin")
	short.str("sha256")
	short.u32(0) // start cut short
	shortBody := short.bytes()

	fsyncReq := func(id uint32, handle string) []byte {
		e := newPacket(fxpExtended, id)
		e.str(extFsync)
		e.str(handle)
		return e.bytes()
	}
	bareExt := func(id uint32, name string) []byte {
		e := newPacket(fxpExtended, id)
		e.str(name)
		return e.bytes()
	}
	for _, tc := range []struct {
		name string
		req  func(id uint32) []byte
		code uint32
		msg  string
	}{
		{"malformed name request", func(id uint32) []byte {
			p := append([]byte(nil), shortBody...)
			binary.BigEndian.PutUint32(p[5:], id)
			return p
		}, fxBadMessage, "malformed request"},
		{"malformed handle request", func(id uint32) []byte { return bareExt(id, extCheckFileHandle) }, fxBadMessage, "malformed request"},
		{"no algorithm", func(id uint32) []byte { return checkFileReq(id, extCheckFileName, "/f.bin", "crc32,sha3", 0, 0, 0) }, fxOpUnsupported, "no supported hash algorithm"},
		{"small block", func(id uint32) []byte { return checkFileReq(id, extCheckFileName, "/f.bin", "sha256", 0, 0, 255) }, fxFailure, "block size below 256"},
		{"start beyond end", func(id uint32) []byte { return checkFileReq(id, extCheckFileName, "/f.bin", "sha256", 300_001, 0, 0) }, fxFailure, "start offset beyond end of file"},
		{"range too large", func(id uint32) []byte { return checkFileReq(id, extCheckFileName, "/big.bin", "sha256", 0, 0, 0) }, fxFailure, "range too large to hash"},
		{"too many blocks", func(id uint32) []byte { return checkFileReq(id, extCheckFileName, "/f.bin", "sha256", 0, 0, 256) }, fxFailure, "too many blocks for one reply"},
		{"missing file", func(id uint32) []byte { return checkFileReq(id, extCheckFileName, "/nope", "sha256", 0, 0, 0) }, fxNoSuchFile, "no such file"},
		{"directory", func(id uint32) []byte { return checkFileReq(id, extCheckFileName, "/dir", "sha256", 0, 0, 0) }, fxFailure, "is a directory"},
		{"link out of the root", func(id uint32) []byte { return checkFileReq(id, extCheckFileName, "/out", "sha256", 0, 0, 0) }, fxPermission, "permission denied: path leaves the root"},
		{"NUL in path", func(id uint32) []byte { return checkFileReq(id, extCheckFileName, "/f\x00", "sha256", 0, 0, 0) }, fxBadMessage, "invalid path"},
		{"unknown handle", func(id uint32) []byte { return checkFileReq(id, extCheckFileHandle, "nohandle", "sha256", 0, 0, 0) }, fxFailure, "invalid handle"},
		{"fsync malformed", func(id uint32) []byte { return bareExt(id, extFsync) }, fxBadMessage, "malformed request"},
		{"fsync unknown handle", func(id uint32) []byte { return fsyncReq(id, "nohandle") }, fxFailure, "invalid handle"},
		{"fsync", func(id uint32) []byte { return fsyncReq(id, h) }, fxOK, ""},
		{"unknown extension", func(id uint32) []byte { return bareExt(id, "nonesuch@example.com") }, fxOpUnsupported, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const id = 77
			r.t = t
			r.send(tc.req(id))
			code, msg := r.status(id)
			assert.Equal(t, tc.code, code)
			if tc.msg != "" || tc.code == fxOK {
				assert.Equal(t, tc.msg, msg)
			}
		})
	}

	// Closing the handle forgets it.
	e := newPacket(fxpClose, 5)
	e.str(h)
	r.t = t
	r.send(e.bytes())
	code, _ := r.status(5)
	require.Equal(t, uint32(fxOK), code)
	r.send(checkFileReq(6, extCheckFileHandle, h, "sha256", 0, 0, 0))
	code, msg := r.status(6)
	assert.Equal(t, uint32(fxFailure), code)
	assert.Equal(t, "invalid handle", msg)
}

// TestCheckFileDisabledRefused: with check-file off, the requests reach
// pkg/sftp, which does not know them.
func TestCheckFileDisabledRefused(t *testing.T) {
	f := newFixture(t, Config{MaxChecksumLength: -1})
	f.write(t, "f", []byte("x"))
	r := f.raw(t, reader)
	assert.NotContains(t, r.exts, extCheckFile)
	r.send(checkFileReq(3, extCheckFileName, "/f", "sha256", 0, 0, 0))
	code, _ := r.status(3)
	assert.Equal(t, uint32(fxOpUnsupported), code)
}
