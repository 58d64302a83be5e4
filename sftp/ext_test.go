package sftp

import (
	"crypto/sha256"
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
