package fs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var rw = []string{ScopeRead, ScopeWrite}

func TestPutFetchRoundTrip(t *testing.T) {
	srv := newStore(t)
	c := serve(t, srv, rw, Config{})
	local := newStore(t)
	for _, n := range []int{0, 1, 1023, 1024, 1025, GroupSize - 1, GroupSize, GroupSize + 1, 37*GroupSize + 5} {
		data := testData(n, uint64(n)+100)
		h, err := c.Put(t.Context(), bytes.NewReader(data), int64(n), PutOptions{Tag: "f"})
		require.NoError(t, err, "size %d", n)
		assert.Equal(t, HashBytes(data), h)
		assert.True(t, srv.Has(h))

		st, err := c.Has(t.Context(), h)
		require.NoError(t, err)
		assert.Equal(t, BlobStatus{Size: int64(n), Complete: true, SizeVerified: true, Present: Ranges{{0, numGroups(int64(n))}}}, st)

		res, err := c.Fetch(t.Context(), local, h, FetchOptions{})
		require.NoError(t, err, "size %d", n)
		assert.Equal(t, int64(n), res.Size)
		assert.Equal(t, int64(n), res.Received)
		assert.Equal(t, EncodedSize(int64(n), Ranges{{0, numGroups(int64(n))}})+1, res.Wire, "status byte + encoding")
		eqBytes(t, data, readFile(t, local.blobPath(h)), "size %d", n)
		if n > GroupSize {
			assert.Equal(t, readFile(t, srv.outboardPath(h)), readFile(t, local.outboardPath(h)), "outboard built from the stream")
		}
		res, err = c.Fetch(t.Context(), local, h, FetchOptions{})
		require.NoError(t, err)
		assert.True(t, res.Cached)
		assert.Zero(t, res.Wire)
	}
	parts, err := local.Partials(t.Context())
	require.NoError(t, err)
	assert.Empty(t, parts)
}

func TestFetchNotFound(t *testing.T) {
	c := serve(t, newStore(t), rw, Config{})
	local := newStore(t)
	h := HashBytes([]byte("absent"))
	_, err := c.Fetch(t.Context(), local, h, FetchOptions{})
	require.ErrorIs(t, err, ErrNotFound)
	_, err = c.Has(t.Context(), h)
	require.ErrorIs(t, err, ErrNotFound)
	assert.False(t, local.Has(h))
}

// A byte flipped in a blob on the node's disk stops the fetch at the
// chunk group that holds it: the error names the hash and the offset, and
// nothing of that group (or after it) reaches the client's disk.
func TestFlippedByteAbortsFetch(t *testing.T) {
	srv := newStore(t)
	c := serve(t, srv, rw, Config{})
	local := newStore(t)
	data := testData(20*GroupSize, 21)
	info := putBytes(t, srv, data, PutOptions{})
	const flip = 7*GroupSize + 1234
	p := srv.blobPath(info.Hash)
	require.NoError(t, os.Chmod(p, 0o600))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{data[flip] ^ 0x01}, flip)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	_, err = c.Fetch(t.Context(), local, info.Hash, FetchOptions{})
	var me *MismatchError
	require.True(t, errors.As(err, &me), "got %v", err)
	assert.Equal(t, info.Hash, me.Hash)
	assert.Equal(t, int64(7*GroupSize), me.Offset)
	assert.False(t, me.Parent)
	assert.Contains(t, err.Error(), info.Hash.String())
	assert.Contains(t, err.Error(), "offset 114688")
	assert.False(t, local.Has(info.Hash))

	// The partial holds the seven good groups and not one byte beyond.
	stat, err := local.Stat(t.Context(), info.Hash)
	require.NoError(t, err)
	assert.Equal(t, Ranges{{0, 7}}, stat.Present)
	got := readFile(t, local.partialPath(info.Hash)+".data")
	eqBytes(t, data[:7*GroupSize], got[:7*GroupSize])
	assert.Equal(t, make([]byte, len(data)-7*GroupSize), got[7*GroupSize:], "nothing written from the bad group on")
}

// A fetch interrupted halfway resumes and transfers only the missing
// groups: the bytes read the second time are exactly the encoding of the
// missing ranges.
func TestFetchResume(t *testing.T) {
	srv := newStore(t)
	c := serve(t, srv, rw, Config{})
	dir := t.TempDir()
	local := openStoreAt(t, dir)
	const n = 64*GroupSize + 77
	data := testData(n, 22)
	info := putBytes(t, srv, data, PutOptions{})

	ctx, cancel := context.WithCancel(t.Context())
	_, err := c.Fetch(ctx, local, info.Hash, FetchOptions{Progress: func(done, _ int64) {
		if done >= n/2 {
			cancel()
		}
	}})
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, local.Has(info.Hash))

	// A new process: the store is opened again from disk.
	require.NoError(t, local.Close())
	local = openStoreAt(t, dir)
	stat, err := local.Stat(t.Context(), info.Hash)
	require.NoError(t, err)
	have := stat.Present.Count()
	require.GreaterOrEqual(t, have, uint64(32), "at least half was recorded")
	require.Less(t, have, numGroups(n))
	missing := stat.Present.Complement(numGroups(n))

	res, err := c.Fetch(t.Context(), local, info.Hash, FetchOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(have)*GroupSize, res.Resumed)
	assert.Equal(t, n-int64(have)*GroupSize, res.Received, "only the missing bytes")
	assert.Equal(t, EncodedSize(n, missing)+1, res.Wire, "wire bytes = encoding of the missing ranges")
	assert.Less(t, res.Wire, int64(n/2)+int64(GroupSize)+4096)
	eqBytes(t, data, readFile(t, local.blobPath(info.Hash)))
	assert.Equal(t, readFile(t, srv.outboardPath(info.Hash)), readFile(t, local.outboardPath(info.Hash)))
}

// Recorded groups whose bytes were lost (a crash before the page cache
// reached the disk) are verified again on resume and fetched again.
func TestResumeReverifies(t *testing.T) {
	srv := newStore(t)
	c := serve(t, srv, rw, Config{})
	dir := t.TempDir()
	local := openStoreAt(t, dir)
	const n = 16 * GroupSize
	data := testData(n, 23)
	info := putBytes(t, srv, data, PutOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	_, err := c.Fetch(ctx, local, info.Hash, FetchOptions{Progress: func(done, _ int64) {
		if done >= n/2 {
			cancel()
		}
	}})
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, local.Close())
	// Zero group 2 of the partial, as a lost write would.
	f, err := os.OpenFile(filepath.Join(dir, "blobs", "partial", info.Hash.String()+".data"), os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(make([]byte, GroupSize), 2*GroupSize)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	local = openStoreAt(t, dir)
	res, err := c.Fetch(t.Context(), local, info.Hash, FetchOptions{})
	require.NoError(t, err)
	assert.Positive(t, res.Resumed)
	eqBytes(t, data, readFile(t, local.blobPath(info.Hash)))
}

// Range reads at chunk-group boundaries and inside groups return exactly
// the requested bytes, verified.
func TestReadRanges(t *testing.T) {
	srv := newStore(t)
	c := serve(t, srv, rw, Config{})
	const n = 10*GroupSize + 300
	data := testData(n, 24)
	info := putBytes(t, srv, data, PutOptions{})
	for _, tc := range []struct{ off, len int64 }{
		{0, 1}, {0, GroupSize}, {GroupSize - 1, 2}, {GroupSize, GroupSize}, {GroupSize, 1},
		{5, 100}, {3*GroupSize + 7, 5 * GroupSize}, {n - 1, 1}, {n - 300, 300}, {0, n}, {4 * GroupSize, -1},
		{n - 10, 100}, // cut at the end
	} {
		var out bytes.Buffer
		size, err := c.Read(t.Context(), info.Hash, tc.off, tc.len, &out)
		require.NoError(t, err, "%+v", tc)
		assert.Equal(t, int64(n), size)
		end := int64(n)
		if tc.len >= 0 {
			end = min(tc.off+tc.len, n)
		}
		eqBytes(t, data[tc.off:end], out.Bytes(), "%+v", tc)
	}
	var out bytes.Buffer
	_, err := c.Read(t.Context(), info.Hash, n+5, 10, &out)
	require.NoError(t, err)
	assert.Zero(t, out.Len(), "past the end")
}

// A node holding part of a blob serves the groups it has, and says which.
func TestServePartial(t *testing.T) {
	origin := newStore(t)
	c1 := serve(t, origin, rw, Config{})
	mid := newStore(t)
	const n = 12 * GroupSize
	data := testData(n, 25)
	info := putBytes(t, origin, data, PutOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	_, err := c1.Fetch(ctx, mid, info.Hash, FetchOptions{Progress: func(done, _ int64) {
		if done >= n/2 {
			cancel()
		}
	}})
	require.ErrorIs(t, err, context.Canceled)

	c2 := serve(t, mid, rw, Config{})
	st, err := c2.Has(t.Context(), info.Hash)
	require.NoError(t, err)
	assert.False(t, st.Complete)
	assert.False(t, st.SizeVerified)
	require.NotEmpty(t, st.Present)
	got := st.Present[0]
	var out bytes.Buffer
	_, err = c2.Read(t.Context(), info.Hash, 0, GroupSize, &out)
	require.ErrorIs(t, err, ErrIncomplete, "the last group (which proves the size) is missing")
	// Without the size proof, a raw GET of present groups works.
	var col collect
	_, _, err = c2.get(t.Context(), info.Hash, Ranges{got}, 1<<40, &col)
	require.NoError(t, err)
	assert.Len(t, col.data, int(got.End-got.Start))
}

func TestScopes(t *testing.T) {
	srv := newStore(t)
	info := putBytes(t, srv, []byte("hello"), PutOptions{})
	ro := serve(t, srv, []string{ScopeRead}, Config{})
	_, err := ro.Put(t.Context(), bytes.NewReader([]byte("x")), 1, PutOptions{})
	require.ErrorIs(t, err, ErrForbidden)
	assert.Contains(t, err.Error(), "fs:write")
	require.ErrorIs(t, ro.Tag(t.Context(), "t", info.Hash), ErrForbidden)
	var out bytes.Buffer
	_, err = ro.Read(t.Context(), info.Hash, 0, -1, &out)
	require.NoError(t, err)
	assert.Equal(t, "hello", out.String())

	// A big put refused up front: the client learns why, not a reset.
	_, err = ro.Put(t.Context(), bytes.NewReader(make([]byte, 8<<20)), 8<<20, PutOptions{})
	require.ErrorIs(t, err, ErrForbidden)

	readOnly := serve(t, srv, rw, Config{ReadOnly: true})
	_, err = readOnly.Put(t.Context(), bytes.NewReader([]byte("x")), 1, PutOptions{})
	require.ErrorIs(t, err, ErrReadOnly)

	small := serve(t, srv, rw, Config{MaxPutSize: 10})
	_, err = small.Put(t.Context(), bytes.NewReader(make([]byte, 11)), 11, PutOptions{})
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestTagListUntag(t *testing.T) {
	srv := newStore(t)
	c := serve(t, srv, rw, Config{})
	h, err := c.Put(t.Context(), bytes.NewReader([]byte("abc")), 3, PutOptions{Tag: "one"})
	require.NoError(t, err)
	require.NoError(t, c.Tag(t.Context(), "two", h))
	require.ErrorIs(t, c.Tag(t.Context(), "three", HashBytes([]byte("absent"))), ErrNotFound)
	tags, err := c.List(t.Context())
	require.NoError(t, err)
	require.Len(t, tags, 2)
	assert.Equal(t, "one", tags[0].Name)
	assert.Equal(t, h, tags[1].Hash)
	assert.Equal(t, int64(3), tags[1].Size)
	require.NoError(t, c.Untag(t.Context(), "one"))
	require.ErrorIs(t, c.Untag(t.Context(), "one"), ErrNotFound)
	tags, err = c.List(t.Context())
	require.NoError(t, err)
	assert.Len(t, tags, 1)
}

// A hostile collection is refused by the node at PUT, and by the client
// before it fetches any member.
func TestHostileCollections(t *testing.T) {
	srv := newStore(t)
	c := serve(t, srv, rw, Config{})
	h := HashBytes(nil)
	for _, bad := range [][]Entry{
		{{Path: "../etc/passwd", Hash: h}},
		{{Path: "/abs", Hash: h}},
		{{Path: "a/../../b", Hash: h}},
		{{Path: "a", Hash: h}, {Path: "a", Hash: h}},
		{{Path: "a", Hash: h}, {Path: "a/b", Hash: h}},
		{{Path: "a\\..\\b", Hash: h}},
		{{Path: "x", Hash: h, Mode: 0o4755}},
		{{Path: "", Hash: h}},
		{{Path: "a//b", Hash: h}},
		{{Path: "./a", Hash: h}},
	} {
		raw := rawCollection(bad)
		_, err := DecodeCollection(raw)
		require.ErrorIs(t, err, ErrBadCollection, "%+v", bad)
		_, err = c.Put(t.Context(), bytes.NewReader(raw), int64(len(raw)), PutOptions{Collection: true})
		require.ErrorIs(t, err, ErrBadCollection, "%+v", bad)

		// The same bytes as a plain blob: the client refuses to use it as
		// a collection.
		bh, err := c.Put(t.Context(), bytes.NewReader(raw), int64(len(raw)), PutOptions{})
		require.NoError(t, err)
		local := newStore(t)
		_, _, err = c.FetchCollection(t.Context(), local, bh, CollectionOptions{})
		require.ErrorIs(t, err, ErrBadCollection, "%+v", bad)
		assert.False(t, local.Has(bh))
	}
}

// rawCollection encodes entries as given, without sorting or checks.
func rawCollection(entries []Entry) []byte {
	b := append([]byte{}, collectionMagic[:]...)
	b = append(b, 0, 0, 0, byte(len(entries)))
	for _, e := range entries {
		b = append(b, byte(len(e.Path)>>8), byte(len(e.Path)))
		b = append(b, e.Path...)
		b = append(b, e.Hash[:]...)
		b = append(b, 0, 0, 0, 0, 0, 0, 0, byte(e.Size))
		b = append(b, byte(uint32(e.Mode)>>24), byte(uint32(e.Mode)>>16), byte(uint32(e.Mode)>>8), byte(e.Mode))
	}
	return b
}

// Requests reuse an idle stream; a failed request drops its stream; a
// reused stream found dead is replaced and the request goes again.
func TestStreamReuse(t *testing.T) {
	srv := newStore(t)
	info := putBytes(t, srv, []byte("reuse"), PutOptions{})
	c := serve(t, srv, rw, Config{})
	_, err := c.Has(t.Context(), info.Hash)
	require.NoError(t, err)
	require.Len(t, c.idle, 1)
	first := c.idle[0]
	for range 3 {
		_, err := c.Has(t.Context(), info.Hash)
		require.NoError(t, err)
		require.Len(t, c.idle, 1)
		assert.Same(t, first, c.idle[0], "the same stream serves every request")
	}
	var out bytes.Buffer
	_, err = c.Read(t.Context(), info.Hash, 0, -1, &out)
	require.NoError(t, err)
	assert.Equal(t, "reuse", out.String())
	assert.Same(t, first, c.idle[0])

	_, err = c.Has(t.Context(), HashBytes([]byte("absent")))
	require.ErrorIs(t, err, ErrNotFound)
	assert.Empty(t, c.idle, "a stream that carried a failure is not reused")

	_, err = c.Has(t.Context(), info.Hash)
	require.NoError(t, err)
	require.Len(t, c.idle, 1)
	dead := c.idle[0]
	require.NoError(t, dead.st.Close())
	st, err := c.Has(t.Context(), info.Hash)
	require.NoError(t, err, "the request went again on a fresh stream")
	assert.Equal(t, int64(5), st.Size)
	require.Len(t, c.idle, 1)
	assert.NotSame(t, dead, c.idle[0])
}

// Over the TCP+TLS listener a connection carries one stream: sequential
// requests share it.
func TestOverTCP(t *testing.T) {
	srvStore := newStore(t)
	srv, err := New(Config{Store: srvStore})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	ck := coretest.Key(t)
	peers := core.StaticPeers([]core.PeerEntry{{PeerID: "c", Fingerprints: []string{ck.NodeID().Fingerprint()}, Scopes: rw, Enabled: true}})
	ep := coretest.StartEndpoint(t, core.Config{ListenTCP: true, Identities: peers}, coretest.Route{Handler: srv, ACL: core.AccessControl{RequiredScopes: []string{ScopeRead}}})
	conn, err := coretest.ClientEndpoint(t, ck).DialTCP(t.Context(), ep.Addr(), ALPN)
	require.NoError(t, err)
	c := NewClient(conn)
	t.Cleanup(func() { _ = c.Close() })
	data := testData(5*GroupSize+9, 61)
	h, err := c.Put(t.Context(), bytes.NewReader(data), int64(len(data)), PutOptions{Tag: "x"})
	require.NoError(t, err)
	_, err = c.Has(t.Context(), h)
	require.NoError(t, err)
	local := newStore(t)
	_, err = c.Fetch(t.Context(), local, h, FetchOptions{})
	require.NoError(t, err)
	eqBytes(t, data, readFile(t, local.blobPath(h)))
	tags, err := c.List(t.Context())
	require.NoError(t, err)
	assert.Len(t, tags, 1)
}

// A fetch stops at the first group after its context is cancelled, even
// when the rest of the answer is already buffered (nothing more is
// written).
func TestFetchStopsOnCancel(t *testing.T) {
	data := testData(12*GroupSize, 62)
	enc := slice(t, data, Ranges{{0, 12}})
	st := newStore(t)
	h := HashBytes(data)
	p, err := st.beginDownload(t.Context(), h)
	require.NoError(t, err)
	defer p.Close()
	ctx, cancel := context.WithCancel(t.Context())
	sink := &fetchSink{p: p, ctx: ctx, progress: func(done, _ int64) {
		if done >= 3*GroupSize {
			cancel()
		}
	}}
	_, err = readSlice(bytes.NewReader(enc), h, Ranges{{0, 12}}, 1<<40, sink)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, int64(3*GroupSize), p.received, "no group taken after the cancel")
}
