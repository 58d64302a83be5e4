package sftp

import (
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
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
