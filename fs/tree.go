package fs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"github.com/alkdev/alknet/core"
	"lukechampine.com/blake3/guts"
)

// The BLAKE3 tree as this package stores and sends it: Bao with chunk
// groups of 16 chunks (lukechampine.com/blake3/bao group 4, the grouping
// iroh-blobs uses). A blob of n bytes has max(1, ceil(n/GroupSize)) groups;
// the outboard is the 8-byte little-endian size followed by the 64-byte
// parent nodes (left and right chaining values) in pre-order, exactly as
// bao.Encode writes it with outboard=true.
const (
	// GroupSize is the size of a chunk group in bytes: the unit a
	// receiver verifies before it writes anything.
	GroupSize = 16 << 10
	// BaoGroup is the group parameter of lukechampine.com/blake3/bao that
	// matches GroupSize.
	BaoGroup = 4

	parentSize = 64
	headerSize = 8
)

// A group is exactly the buffer guts.CompressBuffer hashes in one call.
var (
	_ [GroupSize - guts.MaxSIMD*guts.ChunkSize]struct{}
	_ [guts.MaxSIMD*guts.ChunkSize - GroupSize]struct{}
	_ [GroupSize - guts.ChunkSize<<BaoGroup]struct{}
)

type chainingValue = [8]uint32

type groupBuf = [GroupSize]byte

var groupPool = sync.Pool{New: func() any { return new(groupBuf) }}

// numGroups returns the number of chunk groups of a blob of size bytes.
func numGroups(size int64) uint64 {
	if size <= 0 {
		return 1
	}
	return (uint64(size) + GroupSize - 1) / GroupSize
}

// OutboardSize returns the size of the outboard of a blob of size bytes.
func OutboardSize(size int64) int64 { return headerSize + parentSize*int64(numGroups(size)-1) }

// EncodedSize returns the bytes a GET of groups want sends for a blob of
// size bytes: the 8-byte size, the parents on the paths to the selected
// groups and the groups themselves.
func EncodedSize(size int64, want Ranges) int64 {
	total := int64(headerSize)
	var rec func(pos, n int64)
	rec = func(pos, n int64) {
		if !selects(want, pos, n) {
			return
		}
		if n <= GroupSize {
			total += n
			return
		}
		total += parentSize
		mid := split(n)
		rec(pos, mid)
		rec(pos+mid, n-mid)
	}
	rec(0, size)
	return total
}

// split returns the size of the left subtree of a node over n > GroupSize
// bytes: the largest power of two below n.
func split(n int64) int64 { return 1 << (bits.Len64(uint64(n-1)) - 1) }

// selects reports whether want selects any group of the node [pos, pos+n).
// The empty blob's single group is group 0.
func selects(want Ranges, pos, n int64) bool {
	if n == 0 {
		return want.Contains(0)
	}
	return want.Intersects(uint64(pos)/GroupSize, (uint64(pos+n)+GroupSize-1)/GroupSize)
}

// rightOffset returns the outboard offset of the right child of the parent
// at off whose left subtree covers mid bytes.
func rightOffset(off, mid int64) int64 { return off + parentSize*int64(numGroups(mid)) }

func groupCV(b *groupBuf, n int, pos int64, root bool) chainingValue {
	node := guts.CompressBuffer(b, n, &guts.IV, uint64(pos)/guts.ChunkSize, 0)
	if root {
		node.Flags |= guts.FlagRoot
	}
	return guts.ChainingValue(node)
}

func parentCV(l, r chainingValue, root bool) chainingValue {
	var flags uint32
	if root {
		flags = guts.FlagRoot
	}
	return guts.ChainingValue(guts.ParentNode(l, r, &guts.IV, flags))
}

func putCV(b []byte, cv chainingValue) {
	for i, w := range cv {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
}

func getCV(b []byte) chainingValue {
	var cv chainingValue
	for i := range cv {
		cv[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return cv
}

func (h Hash) cv() chainingValue { return getCV(h[:]) }

func cvHash(cv chainingValue) Hash {
	var h Hash
	putCV(h[:], cv)
	return h
}

// encodeOutboard reads size bytes from r, copies them to w and writes the
// outboard to ob. It returns the root hash. r yielding fewer bytes is an
// io.ErrUnexpectedEOF.
func encodeOutboard(r io.Reader, size int64, w io.Writer, ob io.WriterAt) (Hash, error) {
	buf := new(groupBuf)
	var hdr [headerSize]byte
	binary.LittleEndian.PutUint64(hdr[:], uint64(size))
	if _, err := ob.WriteAt(hdr[:], 0); err != nil {
		return Hash{}, err
	}
	var node [parentSize]byte
	// With a buffered writer, each group is read straight into its buffer.
	bw, _ := w.(*bufio.Writer)
	if bw != nil && bw.Size() < GroupSize {
		bw = nil
	}
	var rec func(pos, n, off int64, root bool) (chainingValue, error)
	rec = func(pos, n, off int64, root bool) (chainingValue, error) {
		if n <= GroupSize {
			g := buf[:n]
			hb := buf
			if bw != nil {
				// Room for a whole group: the hash reads GroupSize bytes.
				if bw.Available() < GroupSize {
					if err := bw.Flush(); err != nil {
						return chainingValue{}, err
					}
				}
				hb = (*groupBuf)(bw.AvailableBuffer()[:GroupSize])
				g = hb[:n]
			}
			if _, err := io.ReadFull(r, g); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return chainingValue{}, err
			}
			cv := groupCV(hb, int(n), pos, root)
			_, err := w.Write(g)
			return cv, err
		}
		mid := split(n)
		l, err := rec(pos, mid, off+parentSize, false)
		if err != nil {
			return l, err
		}
		rt, err := rec(pos+mid, n-mid, rightOffset(off, mid), false)
		if err != nil {
			return rt, err
		}
		putCV(node[:32], l)
		putCV(node[32:], rt)
		if _, err := ob.WriteAt(node[:], off); err != nil {
			return rt, err
		}
		return parentCV(l, rt, root), nil
	}
	cv, err := rec(0, size, headerSize, true)
	if err != nil {
		return Hash{}, err
	}
	return cvHash(cv), nil
}

// memWriterAt is an io.WriterAt over a fixed byte slice.
type memWriterAt []byte

func (m memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, fmt.Errorf("alknet/fs: outboard write at %d+%d outside %d bytes", off, len(p), len(m))
	}
	return copy(m[off:], p), nil
}

// windowReader serves small reads at increasing offsets from a large
// buffered window over an io.ReaderAt, so that walking a tree costs one
// read system call per window rather than one per node.
type windowReader struct {
	r      io.ReaderAt
	buf    []byte
	pooled *[]byte
	off    int64 // file offset of buf[0]
	n      int   // valid bytes in buf
}

// windowPool recycles 1 MiB windows; smaller ones are allocated.
var windowPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

func newWindowReader(r io.ReaderAt, size int) *windowReader {
	w := &windowReader{r: r, off: -1}
	if size == 1<<20 {
		w.pooled = windowPool.Get().(*[]byte)
		w.buf = *w.pooled
	} else {
		w.buf = make([]byte, size)
	}
	return w
}

func (w *windowReader) release() {
	if w.pooled != nil {
		windowPool.Put(w.pooled)
		w.pooled, w.buf = nil, nil
	}
}

// slice returns the n bytes at off; they are valid until the next call.
func (w *windowReader) slice(off int64, n int) ([]byte, error) {
	if n > len(w.buf) {
		return nil, fmt.Errorf("alknet/fs: read of %d bytes over a %d-byte window", n, len(w.buf))
	}
	if w.off < 0 || off < w.off || off+int64(n) > w.off+int64(w.n) {
		k, err := w.r.ReadAt(w.buf, off)
		if k < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			w.off = -1
			return nil, err
		}
		w.off, w.n = off, k
	}
	s := off - w.off
	return w.buf[s : s+int64(n)], nil
}

// writeSlice writes the encoding of the groups want of a blob of size
// bytes (data and its outboard ob) to w: the 8-byte size, then in pre-order
// every parent on a path to a selected group and every selected group. For
// a single contiguous range this is the Bao slice format (bao.ExtractSlice
// with group 4). want must be clamped to the blob. The data is not verified
// here: the receiver verifies it.
func writeSlice(w *bufio.Writer, size int64, data, ob io.ReaderAt, want Ranges) error {
	var hdr [headerSize]byte
	binary.LittleEndian.PutUint64(hdr[:], uint64(size))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	var ow *windowReader
	if size > GroupSize {
		ow = newWindowReader(ob, int(min(OutboardSize(size), 64<<10)))
		defer ow.release()
	}
	var rec func(pos, n, off int64) error
	rec = func(pos, n, off int64) error {
		if !selects(want, pos, n) {
			return nil
		}
		if n <= GroupSize {
			if n == 0 {
				return nil
			}
			// Read the group straight into the writer's buffer (when it
			// can hold one).
			var b []byte
			if w.Size() < int(n) {
				pb := groupPool.Get().(*groupBuf)
				defer groupPool.Put(pb)
				b = pb[:n]
			} else {
				if w.Available() < int(n) {
					if err := w.Flush(); err != nil {
						return err
					}
				}
				b = w.AvailableBuffer()[:n]
			}
			if k, err := data.ReadAt(b, pos); int64(k) != n {
				if err == nil || errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("read data at %d: %w", pos, err)
			}
			_, err := w.Write(b)
			return err
		}
		b, err := ow.slice(off, parentSize)
		if err != nil {
			return fmt.Errorf("read outboard at %d: %w", off, err)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		mid := split(n)
		if err := rec(pos, mid, off+parentSize); err != nil {
			return err
		}
		return rec(pos+mid, n-mid, rightOffset(off, mid))
	}
	return rec(0, size, headerSize)
}

// sliceSink receives what readSlice has verified.
type sliceSink interface {
	// size is called once with the blob size read from the stream, before
	// anything else; an error stops the read.
	size(n int64) error
	// parent receives a verified parent node and its outboard offset.
	parent(off int64, node []byte) error
	// group receives a verified chunk group at byte offset pos.
	group(pos int64, data []byte) error
}

// groupBuffer is a sliceSink that provides the memory a group is read
// into, so that verified data needs no copy on its way to the sink. The
// buffer must have a capacity of at least GroupSize; what readSlice reads
// into it belongs to the sink only once group is called with it.
type groupBuffer interface {
	groupBuf(pos int64) ([]byte, error)
}

// readSlice reads an encoding written by writeSlice for the groups want
// (clamped to the size the stream declares) and verifies every parent and
// group against root before handing it to sink. The first mismatch stops
// the read with a *MismatchError naming the hash and the byte offset of
// the node that failed; nothing of that node reaches the sink. maxSize
// bounds the size the stream may declare.
func readSlice(r io.Reader, root Hash, want Ranges, maxSize int64, sink sliceSink) (int64, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, fmt.Errorf("read size: %w", unexpected(err))
	}
	u := binary.LittleEndian.Uint64(hdr[:])
	if u > uint64(maxSize) || u > 1<<62 {
		return 0, fmt.Errorf("%w: blob of %d bytes (limit %d)", ErrTooLarge, u, maxSize)
	}
	size := int64(u)
	if err := sink.size(size); err != nil {
		return size, err
	}
	want = want.Clamp(numGroups(size))
	pooled := groupPool.Get().(*groupBuf)
	defer groupPool.Put(pooled)
	gb, _ := sink.(groupBuffer)
	var node [parentSize]byte
	var rec func(expect chainingValue, pos, n, off int64, root bool) error
	rec = func(expect chainingValue, pos, n, off int64, isRoot bool) error {
		if !selects(want, pos, n) {
			return nil
		}
		if n <= GroupSize {
			buf := pooled[:]
			if gb != nil {
				b, err := gb.groupBuf(pos)
				if err != nil {
					return err
				}
				buf = b[:GroupSize]
			}
			if _, err := io.ReadFull(r, buf[:n]); err != nil {
				return fmt.Errorf("read group at %d: %w", pos, unexpected(err))
			}
			if groupCV((*groupBuf)(buf), int(n), pos, isRoot) != expect {
				return &MismatchError{Hash: root, Offset: pos, Length: n}
			}
			return sink.group(pos, buf[:n])
		}
		if _, err := io.ReadFull(r, node[:]); err != nil {
			return fmt.Errorf("read parent at %d: %w", pos, unexpected(err))
		}
		l, rt := getCV(node[:32]), getCV(node[32:])
		if parentCV(l, rt, isRoot) != expect {
			return &MismatchError{Hash: root, Offset: pos, Length: n, Parent: true}
		}
		if err := sink.parent(off, node[:]); err != nil {
			return err
		}
		mid := split(n)
		if err := rec(l, pos, mid, off+parentSize, false); err != nil {
			return err
		}
		return rec(rt, pos+mid, n-mid, rightOffset(off, mid), false)
	}
	return size, rec(root.cv(), 0, size, headerSize, true)
}

// readErr is the error of a failed read of the node's answer: the node's
// own refusal (a connection closed with a code and reason) as it is,
// anything else as a bad response.
func readErr(err error) error {
	if _, ok := core.AsCloseError(err); ok {
		return err
	}
	return fmt.Errorf("%w: %v", ErrBadResponse, unexpected(err))
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// verifyLocal checks the groups have of a blob stored as data and outboard
// ob against root, and returns the groups that verified (with every parent
// on their paths). A group whose path holds a bad parent is dropped with
// the whole subtree.
func verifyLocal(root Hash, size int64, data, ob io.ReaderAt, have Ranges) Ranges {
	buf := new(groupBuf)
	var good []Range
	var node [parentSize]byte
	var rec func(expect chainingValue, pos, n, off int64, isRoot bool)
	rec = func(expect chainingValue, pos, n, off int64, isRoot bool) {
		if !selects(have, pos, n) {
			return
		}
		if n <= GroupSize {
			if n > 0 {
				if k, _ := data.ReadAt(buf[:n], pos); int64(k) != n {
					return
				}
			}
			if groupCV(buf, int(n), pos, isRoot) == expect {
				g := uint64(pos) / GroupSize
				good = append(good, Range{g, g + 1})
			}
			return
		}
		if k, _ := ob.ReadAt(node[:], off); k != parentSize {
			return
		}
		l, rt := getCV(node[:32]), getCV(node[32:])
		if parentCV(l, rt, isRoot) != expect {
			return
		}
		mid := split(n)
		rec(l, pos, mid, off+parentSize, false)
		rec(rt, pos+mid, n-mid, rightOffset(off, mid), false)
	}
	rec(root.cv(), 0, size, headerSize, true)
	return NormalizeRanges(good)
}
