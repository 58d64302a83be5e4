package fs

import (
	"bytes"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzRequest: any frame body either fails to decode or decodes to a
// request that encodes back to the same bytes (one encoding per request).
func FuzzRequest(f *testing.F) {
	h := HashBytes([]byte("seed"))
	for _, r := range []*request{
		{op: opGet, hash: h},
		{op: opGet, hash: h, ranges: Ranges{{0, 3}, {5, 9}}},
		{op: opHas, hash: h},
		{op: opPut, size: 1 << 30, collection: true, tag: "dir"},
		{op: opPut, size: 5},
		{op: opTag, hash: h, tag: "a/b"},
		{op: opUntag, tag: "x"},
		{op: opList},
	} {
		b, err := r.encode()
		require.NoError(f, err)
		f.Add(b[4:])
	}
	f.Add([]byte{opGet})
	f.Add([]byte{99})
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeRequest(body)
		if err != nil {
			return
		}
		b, err := req.encode()
		require.NoError(t, err)
		assert.Equal(t, body, b[4:])
		assert.LessOrEqual(t, len(req.ranges), MaxRanges)
		// Framed, it reads back through readRequest.
		back, err := readRequest(bytes.NewReader(b))
		require.NoError(t, err)
		assert.Equal(t, req, back)
	})
}

// FuzzTicket: a string that parses prints back to the canonical form,
// which parses to the same ticket.
func FuzzTicket(f *testing.F) {
	var id core.NodeID
	id[0] = 1
	f.Add(Ticket{Node: id, Hash: HashBytes([]byte("x")), Addrs: []string{"127.0.0.1:4433", "[::1]:1"}}.String())
	f.Add(Ticket{Node: id, Hash: HashBytes(nil), Collection: true}.String())
	f.Add("alknet:blob:")
	f.Add("alknet:blob:aaaa")
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := ParseTicket(s)
		if err != nil {
			return
		}
		canon := tk.String()
		back, err := ParseTicket(canon)
		require.NoError(t, err)
		assert.Equal(t, tk, back)
		assert.LessOrEqual(t, len(tk.Addrs), MaxTicketAddrs)
		assert.Equal(t, canon, back.String())
	})
}

// FuzzCollection: a blob that decodes is a valid collection whose encoding
// is the same bytes; its paths are safe to join under a directory.
func FuzzCollection(f *testing.F) {
	good := &Collection{Entries: []Entry{
		{Path: "a/b.txt", Hash: HashBytes([]byte("1")), Size: 1, Mode: 0o644},
		{Path: "c", Hash: HashBytes([]byte("2")), Size: 2, Mode: 0o755},
	}}
	b, err := good.Encode()
	require.NoError(f, err)
	f.Add(b)
	f.Add(rawCollection([]Entry{{Path: "../x"}}))
	f.Add(rawCollection([]Entry{{Path: "a"}, {Path: "a/b"}}))
	f.Add(collectionMagic[:])
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := DecodeCollection(raw)
		if err != nil {
			return
		}
		again, err := c.Encode()
		require.NoError(t, err)
		assert.Equal(t, raw, again)
		for _, e := range c.Entries {
			assert.NoError(t, ValidatePath(e.Path))
			assert.NotContains(t, "/"+e.Path+"/", "/../")
			assert.NotEqual(t, byte('/'), e.Path[0])
			assert.Zero(t, e.Mode&^0o777)
		}
	})
}

// FuzzReadSlice: whatever a node sends, readSlice delivers only groups
// that are in the blob (checked against the real data), within the
// requested ranges.
func FuzzReadSlice(f *testing.F) {
	data := testData(5*GroupSize+17, 31)
	ob, h := encode(f, data)
	var enc bytes.Buffer
	w := newTestWriter(&enc)
	require.NoError(f, writeSlice(w, int64(len(data)), bytes.NewReader(data), bytes.NewReader(ob), Ranges{{0, 6}}))
	require.NoError(f, w.Flush())
	f.Add(enc.Bytes())
	f.Add(enc.Bytes()[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		var c collect
		_, _ = readSlice(bytes.NewReader(b), h, Ranges{{0, 6}}, 1<<20, &c)
		for pos, g := range c.data {
			require.LessOrEqual(t, pos+int64(len(g)), int64(len(data)))
			require.Equal(t, data[pos:pos+int64(len(g))], g, "group at %d", pos)
		}
	})
}
