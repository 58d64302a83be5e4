package sftp

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOpenFlags: TRUNC, EXCL and APPEND each do what they say.
func TestOpenFlags(t *testing.T) {
	f := newFixture(t, Config{})
	c, _ := f.session(t, writer)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(f.root, name))
		require.NoError(t, err)
		return string(b)
	}

	f.write(t, "t", []byte("abcdef"))
	w, err := c.OpenFile("/t", os.O_WRONLY|os.O_TRUNC)
	require.NoError(t, err)
	_, err = w.Write([]byte("x"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	assert.Equal(t, "x", read("t"), "O_TRUNC")

	f.write(t, "n", []byte("abcdef"))
	w, err = c.OpenFile("/n", os.O_WRONLY)
	require.NoError(t, err)
	_, err = w.Write([]byte("x"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	assert.Equal(t, "xbcdef", read("n"), "without O_TRUNC the rest stays")

	_, err = c.OpenFile("/t", os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	assert.Equal(t, uint32(fxFailure), statusCode(err), "O_EXCL on an existing file")
	assert.ErrorContains(t, err, `"file exists"`)

	f.write(t, "a", []byte("abc"))
	w, err = c.OpenFile("/a", os.O_WRONLY|os.O_APPEND)
	require.NoError(t, err)
	_, err = w.Write([]byte("de"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	assert.Equal(t, "abcde", read("a"), "O_APPEND writes at the end")
}

// TestRootProtected: the root itself cannot be removed or renamed.
func TestRootProtected(t *testing.T) {
	f := newFixture(t, Config{})
	c, _ := f.session(t, writer)
	assert.Equal(t, uint32(fxPermission), statusCode(c.RemoveDirectory("/")))
	assert.Equal(t, uint32(fxPermission), statusCode(c.Rename("/", "/x")))
	assert.Equal(t, uint32(fxPermission), statusCode(c.PosixRename("/", "/x")))
	assert.Equal(t, uint32(fxPermission), statusCode(c.Rename("/../..", "/x")))
	fi, err := os.Stat(f.root)
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
}

// TestReadOnlyConfig: Config.ReadOnly refuses writes even to a peer with
// sftp:write.
func TestReadOnlyConfig(t *testing.T) {
	f := newFixture(t, Config{ReadOnly: true})
	f.write(t, "keep", []byte("keep"))
	c, _ := f.session(t, writer)
	_, err := c.Create("/new")
	assert.Equal(t, uint32(fxPermission), statusCode(err))
	assert.Equal(t, uint32(fxPermission), statusCode(c.Remove("/keep")))
	r, err := c.Open("/keep")
	require.NoError(t, err, "reading still works")
	b, _ := io.ReadAll(r)
	r.Close()
	assert.Equal(t, "keep", string(b))
	_, err = os.Stat(filepath.Join(f.root, "new"))
	assert.True(t, os.IsNotExist(err))
}

// TestMaxPacketClamped: MaxPacket above what pkg/sftp accepts is lowered
// to DefaultMaxPacket, below the minimum raised, and limits says so.
func TestMaxPacketClamped(t *testing.T) {
	for _, tc := range []struct{ set, want int64 }{{1 << 20, DefaultMaxPacket}, {1000, minPacket}, {0, DefaultMaxPacket}, {100 << 10, 100 << 10}} {
		f := newFixture(t, Config{MaxPacket: tc.set})
		r := f.raw(t, reader)
		e := newPacket(fxpExtended, 1)
		e.str(extLimits)
		r.send(e.bytes())
		l, err := parseLimitsReply(r.recv(), 1)
		require.NoError(t, err)
		assert.Equal(t, uint64(tc.want), l.MaxPacket, "MaxPacket %d", tc.set)
		assert.Equal(t, uint64(tc.want-1024), l.MaxRead, "MaxPacket %d", tc.set)
	}
}

// TestSpecialFilesRefused: a FIFO cannot be opened (and does not block
// the session), nor hashed.
func TestSpecialFilesRefused(t *testing.T) {
	f := newFixture(t, Config{})
	require.NoError(t, syscall.Mkfifo(filepath.Join(f.root, "fifo"), 0o644))
	c, _ := f.session(t, writer)
	_, err := c.Open("/fifo")
	assert.Equal(t, uint32(fxFailure), statusCode(err))
	assert.ErrorContains(t, err, `"not a regular file"`)
	// Opening a FIFO with no reader for writing fails already in the
	// kernel (ENXIO, O_NONBLOCK): still a FAILURE, and no block.
	_, err = c.OpenFile("/fifo", os.O_WRONLY)
	assert.Equal(t, uint32(fxFailure), statusCode(err))
	r := f.raw(t, reader)
	r.send(checkFileReq(4, extCheckFileName, "/fifo", "sha256", 0, 0, 0))
	code, msg := r.status(4)
	assert.Equal(t, uint32(fxFailure), code)
	assert.Equal(t, "not a regular file", msg)
}

// TestOpenAttributes: an OPEN's permissions apply to the file it creates,
// and open or attribute flags that pkg/sftp confuses never crash the
// server (any open with APPEND once dereferenced nil and took the whole
// process down), nor do attributes shorter than their flags.
func TestOpenAttributes(t *testing.T) {
	f := newFixture(t, Config{})
	r := f.raw(t, writer)
	open := func(id uint32, p string, pflags, aflags uint32, attrs ...uint32) byte {
		e := newPacket(fxpOpen, id)
		e.str(p)
		e.u32(pflags)
		e.u32(aflags)
		for _, a := range attrs {
			e.u32(a)
		}
		r.send(e.bytes())
		reply := r.recv()
		return reply[4]
	}
	const read, write, appnd, creat = 0x01, 0x02, 0x04, 0x08
	assert.Equal(t, byte(fxpHandle), open(1, "/p640", write|creat, attrPermission, 0o640))
	fi, err := os.Stat(filepath.Join(f.root, "p640"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	assert.Equal(t, byte(fxpHandle), open(2, "/plain", write|creat, 0))
	fi, err = os.Stat(filepath.Join(f.root, "plain"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	for i, pf := range []uint32{write | appnd | creat, write | appnd, read | write | appnd | creat, write | creat | 0x10} {
		assert.Equal(t, byte(fxpHandle), open(uint32(10+i), "/x", pf, 0), "pflags %#x", pf)
	}

	// SETSTAT whose attributes are shorter than its flags.
	e := newPacket(9, 20)
	e.str("/x")
	e.u32(attrPermission | attrSize)
	e.u32(1)
	r.send(e.bytes())
	code, msg := r.status(20)
	assert.Equal(t, uint32(fxBadMessage), code)
	assert.Equal(t, "malformed attributes", msg)
}
