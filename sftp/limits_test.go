package sftp

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/pkg/sftp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPeerHandleLimit: a peer's handles count across all its sessions, so
// many sessions of a read-only peer cannot exhaust descriptors; another
// peer is not affected.
func TestPeerHandleLimit(t *testing.T) {
	f := newFixture(t, Config{MaxHandles: 3, MaxPeerHandles: 4})
	f.write(t, "a", []byte("a"))
	require.NoError(t, os.Mkdir(filepath.Join(f.root, "d"), 0o755))
	c1, _ := f.session(t, reader)
	c2, _ := f.session(t, reader)
	var open []*sftp.File
	for range 3 {
		h, err := c1.Open("/a")
		require.NoError(t, err)
		open = append(open, h)
	}
	_, err := c1.Open("/a")
	assert.Equal(t, uint32(fxFailure), statusCode(err))
	assert.ErrorContains(t, err, `"too many open handles"`, "the session's own limit")

	h, err := c2.Open("/a")
	require.NoError(t, err, "the peer has one handle left")
	_, err = c2.Open("/a")
	assert.Equal(t, uint32(fxFailure), statusCode(err))
	assert.ErrorContains(t, err, `"too many open handles for this peer"`)
	_, err = c2.ReadDir("/d")
	assert.ErrorContains(t, err, `"too many open handles for this peer"`, "directory handles count too")

	cw, _ := f.session(t, writer)
	hw, err := cw.Open("/a")
	require.NoError(t, err, "another peer is not affected")
	require.NoError(t, hw.Close())

	require.NoError(t, open[0].Close())
	h2, err := c2.Open("/a")
	require.NoError(t, err, "a closed handle frees the peer's slot")
	require.NoError(t, h2.Close())
	require.NoError(t, h.Close())
	for _, h := range open[1:] {
		require.NoError(t, h.Close())
	}
}

// TestPeerSessionLimit: a peer cannot hold more than MaxPeerSessions
// sessions at once.
func TestPeerSessionLimit(t *testing.T) {
	f := newFixture(t, Config{MaxPeerSessions: 2})
	f.write(t, "a", []byte("a"))
	c1, done1 := f.session(t, reader)
	_, _ = f.session(t, reader)
	_, err := c1.Stat("/a")
	require.NoError(t, err)

	// serve starts a session for id and returns nil once it answers INIT,
	// or the error ServeSession refused it with.
	serve := func(id *core.Identity) error {
		a, b := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{Identity: id})
		t.Cleanup(func() { _ = a.Close(0, "") })
		cst, err := a.OpenStream(t.Context())
		require.NoError(t, err)
		st, err := b.AcceptStream(t.Context())
		require.NoError(t, err)
		res := make(chan error, 1)
		go func() { res <- f.srv.ServeSession(t.Context(), st, id) }()
		_ = cst.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := clientInit(cst); err == nil {
			return nil
		}
		select {
		case err := <-res:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("session neither answered nor ended")
			return nil
		}
	}
	assert.ErrorIs(t, serve(reader), ErrTooManySessions)
	assert.NoError(t, serve(writer), "another peer is admitted")

	require.NoError(t, c1.Close())
	select {
	case err := <-done1:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end after the client closed")
	}
	assert.NoError(t, serve(reader), "a slot is free again")
}
