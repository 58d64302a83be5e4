package fs

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"lukechampine.com/blake3"
	"lukechampine.com/blake3/bao"
)

// testData returns n deterministic pseudo-random bytes.
func testData(n int, seed uint64) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

var treeSizes = []int{0, 1, 1023, 1024, 1025, GroupSize - 1, GroupSize, GroupSize + 1,
	2 * GroupSize, 3*GroupSize + 5, 8 * GroupSize, 13*GroupSize - 1, 1<<20 + 7}

// encode returns the outboard and root of data through encodeOutboard.
func encode(t testing.TB, data []byte) ([]byte, Hash) {
	t.Helper()
	ob := make(memWriterAt, OutboardSize(int64(len(data))))
	var copied bytes.Buffer
	h, err := encodeOutboard(bytes.NewReader(data), int64(len(data)), &copied, ob)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, copied.Bytes()), "copy of the data")
	return ob, h
}

// The outboard and root equal lukechampine.com/blake3's: blake3.Sum256 for
// the hash and bao.EncodeBuf(group 4, outboard) byte for byte.
func TestEncodeMatchesBao(t *testing.T) {
	for _, n := range treeSizes {
		data := testData(n, uint64(n))
		ob, h := encode(t, data)
		want, root := bao.EncodeBuf(data, BaoGroup, true)
		assert.Equal(t, Hash(blake3.Sum256(data)), h, "size %d: root", n)
		assert.Equal(t, Hash(root), h, "size %d: bao root", n)
		assert.Equal(t, want, []byte(ob), "size %d: outboard", n)
		assert.Equal(t, int64(bao.EncodedSize(n, BaoGroup, true)), OutboardSize(int64(n)), "size %d", n)
	}
}

func TestEncodeShortInput(t *testing.T) {
	data := testData(3*GroupSize, 1)
	ob := make(memWriterAt, OutboardSize(int64(len(data))+1))
	_, err := encodeOutboard(bytes.NewReader(data), int64(len(data))+1, io.Discard, ob)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

// collect is a sliceSink that records what was delivered.
type collect struct {
	n       int64
	data    map[int64][]byte
	parents map[int64][]byte
}

func (c *collect) size(n int64) error { c.n = n; return nil }
func (c *collect) parent(off int64, b []byte) error {
	if c.parents == nil {
		c.parents = map[int64][]byte{}
	}
	c.parents[off] = bytes.Clone(b)
	return nil
}
func (c *collect) group(pos int64, b []byte) error {
	if c.data == nil {
		c.data = map[int64][]byte{}
	}
	c.data[pos] = bytes.Clone(b)
	return nil
}

func slice(t testing.TB, data []byte, want Ranges) []byte {
	t.Helper()
	ob, _ := encode(t, data)
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	require.NoError(t, writeSlice(w, int64(len(data)), bytes.NewReader(data), bytes.NewReader(ob), want.Clamp(numGroups(int64(len(data))))))
	require.NoError(t, w.Flush())
	return out.Bytes()
}

// A single-range slice is bao's slice format: bao.DecodeSlice reads ours,
// and our reader reads bao.ExtractSlice's.
func TestSliceMatchesBao(t *testing.T) {
	for _, n := range treeSizes {
		data := testData(n, uint64(n)+7)
		ob, h := encode(t, data)
		groups := numGroups(int64(n))
		for _, r := range []Range{{0, groups}, {0, 1}, {groups - 1, groups}, {groups / 2, groups/2 + 1}} {
			enc := slice(t, data, Ranges{r})
			off, length := r.Start*GroupSize, (r.End-r.Start)*GroupSize
			length = min(length, uint64(n)-min(off, uint64(n)))
			var theirs bytes.Buffer
			require.NoError(t, bao.ExtractSlice(&theirs, bytes.NewReader(data[min(off, uint64(n)):min(off+(r.End-r.Start)*GroupSize, uint64(n))]), bytes.NewReader(ob), BaoGroup, off, length))
			assert.Equal(t, theirs.Bytes(), enc, "size %d range %v: encoding", n, r)
			got, ok := bao.VerifySlice(enc, BaoGroup, off, length, h)
			assert.True(t, ok, "size %d range %v: bao verifies ours", n, r)
			eqBytes(t, data[off:off+length], got)

			var c collect
			size, err := readSlice(bytes.NewReader(theirs.Bytes()), h, Ranges{r}, 1<<40, &c)
			require.NoError(t, err, "size %d range %v", n, r)
			assert.Equal(t, int64(n), size)
			var joined []byte
			for pos := int64(off); pos < int64(off+length) || (n == 0 && pos == 0 && joined == nil); pos += GroupSize {
				joined = append(joined, c.data[pos]...)
				if n == 0 {
					break
				}
			}
			eqBytes(t, data[off:off+length], joined, "size %d range %v: data", n, r)
			for o, p := range c.parents {
				assert.Equal(t, ob[o:o+parentSize], p, "size %d: parent at %d", n, o)
			}
		}
	}
}

// Several ranges in one request: every selected group arrives verified and
// nothing else does.
func TestSliceMultipleRanges(t *testing.T) {
	data := testData(40*GroupSize+100, 3)
	_, h := encode(t, data)
	want := Ranges{{1, 3}, {7, 8}, {20, 33}, {40, 41}}
	enc := slice(t, data, want)
	assert.Equal(t, EncodedSize(int64(len(data)), want), int64(len(enc)))
	var c collect
	_, err := readSlice(bytes.NewReader(enc), h, want, 1<<40, &c)
	require.NoError(t, err)
	assert.Len(t, c.data, int(want.Count()))
	for pos, b := range c.data {
		g := uint64(pos) / GroupSize
		assert.True(t, want.Contains(g), "group %d not requested", g)
		assert.Equal(t, data[pos:pos+int64(len(b))], b)
	}
}

// A flipped byte anywhere is caught at the group (or parent) it sits in,
// and the error names the hash and the offset; groups after it are never
// delivered.
func TestSliceMismatch(t *testing.T) {
	data := testData(10*GroupSize+3, 4)
	_, h := encode(t, data)
	all := Ranges{{0, 11}}
	enc := slice(t, data, all)
	for _, flip := range []int{0, 8, 8 + 63, 8 + 64, len(enc) / 2, len(enc) - 1} {
		bad := bytes.Clone(enc)
		bad[flip] ^= 0x40
		var c collect
		_, err := readSlice(bytes.NewReader(bad), h, all, 1<<40, &c)
		var me *MismatchError
		if flip < 8 { // the size: the tree shape changes, something fails
			require.Error(t, err)
			continue
		}
		require.True(t, errors.As(err, &me), "flip at %d: %v", flip, err)
		assert.ErrorIs(t, err, ErrMismatch)
		assert.Equal(t, h, me.Hash)
		assert.Contains(t, err.Error(), h.String())
		for pos := range c.data {
			assert.Less(t, pos, me.Offset, "flip at %d: group at %d delivered after the mismatch", flip, pos)
		}
	}
}

func TestVerifyLocal(t *testing.T) {
	data := testData(9*GroupSize+11, 5)
	ob, h := encode(t, data)
	all := Ranges{{0, 10}}
	assert.Equal(t, all, verifyLocal(h, int64(len(data)), bytes.NewReader(data), bytes.NewReader(ob), all))
	bad := bytes.Clone(data)
	bad[3*GroupSize+5] ^= 1
	assert.Equal(t, Ranges{{0, 3}, {4, 10}}, verifyLocal(h, int64(len(data)), bytes.NewReader(bad), bytes.NewReader(ob), all))
}

func TestRanges(t *testing.T) {
	rs := NormalizeRanges([]Range{{5, 7}, {0, 2}, {2, 3}, {6, 9}, {4, 4}})
	assert.Equal(t, Ranges{{0, 3}, {5, 9}}, rs)
	assert.True(t, rs.Intersects(2, 5))
	assert.False(t, rs.Intersects(3, 5))
	assert.True(t, rs.Covers(5, 9))
	assert.False(t, rs.Covers(2, 6))
	assert.Equal(t, Ranges{{3, 5}, {9, 12}}, rs.Complement(12))
	assert.Equal(t, Ranges{{0, 3}, {5, 6}}, rs.Clamp(6))
	assert.Equal(t, Ranges{{1, 2}}, Ranges{{7, 9}}.Clamp(2), "past the end selects the last group")
	b := appendRanges(nil, rs)
	back, err := parseRanges(b)
	require.NoError(t, err)
	assert.Equal(t, rs, back)
	bm := newBitmap(200)
	bm.setRanges(Ranges{{0, 3}, {64, 130}, {199, 200}})
	assert.Equal(t, Ranges{{0, 3}, {64, 130}, {199, 200}}, bm.ranges(200))
}

// eqBytes compares byte slices by content (nil equals empty).
func eqBytes(t testing.TB, want, got []byte, msg ...any) {
	t.Helper()
	if !bytes.Equal(want, got) {
		assert.Fail(t, "bytes differ", "want %d bytes, got %d bytes %v", len(want), len(got), msg)
	}
}
