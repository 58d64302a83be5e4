package fs

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
)

// Range is a half-open range [Start, End) of chunk-group indexes: group i
// holds bytes [i*GroupSize, (i+1)*GroupSize) of a blob.
type Range struct {
	Start, End uint64
}

// Ranges is a set of chunk groups: sorted, non-empty ranges that neither
// overlap nor touch. NormalizeRanges makes one from any list.
type Ranges []Range

// NormalizeRanges sorts rs, drops empty ranges and merges overlapping or
// adjacent ones. It does not modify rs.
func NormalizeRanges(rs []Range) Ranges {
	out := make(Ranges, 0, len(rs))
	for _, r := range rs {
		if r.End > r.Start {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Range) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && r.Start <= merged[n-1].End {
			merged[n-1].End = max(merged[n-1].End, r.End)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// normalized reports whether rs is already in normal form.
func (rs Ranges) normalized() bool {
	for i, r := range rs {
		if r.End <= r.Start || (i > 0 && r.Start <= rs[i-1].End) {
			return false
		}
	}
	return true
}

// GroupRange returns the chunk groups that hold the bytes [off, off+n).
// n must be positive.
func GroupRange(off, n int64) Range {
	return Range{Start: uint64(off) / GroupSize, End: (uint64(off) + uint64(n) + GroupSize - 1) / GroupSize}
}

// Intersects reports whether any group in [a, b) is in rs.
func (rs Ranges) Intersects(a, b uint64) bool {
	// The first range that ends after a.
	i, _ := slices.BinarySearchFunc(rs, a, func(r Range, a uint64) int {
		if r.End <= a {
			return -1
		}
		return 1
	})
	return i < len(rs) && rs[i].Start < b
}

// Contains reports whether group g is in rs.
func (rs Ranges) Contains(g uint64) bool { return rs.Intersects(g, g+1) }

// Covers reports whether every group of [a, b) is in rs.
func (rs Ranges) Covers(a, b uint64) bool {
	if a >= b {
		return true
	}
	i, _ := slices.BinarySearchFunc(rs, a, func(r Range, a uint64) int {
		if r.End <= a {
			return -1
		}
		return 1
	})
	return i < len(rs) && rs[i].Start <= a && rs[i].End >= b
}

// Count returns the number of groups in rs.
func (rs Ranges) Count() uint64 {
	var n uint64
	for _, r := range rs {
		n += r.End - r.Start
	}
	return n
}

// Clamp limits rs to the groups [0, n) of a blob with n groups. A range that
// starts at or after n selects the last group instead, so a request can ask
// for "the end of the blob" (which proves its size) without knowing the size.
func (rs Ranges) Clamp(n uint64) Ranges {
	out := make([]Range, 0, len(rs))
	for _, r := range rs {
		if r.Start >= n {
			out = append(out, Range{n - 1, n})
			continue
		}
		out = append(out, Range{r.Start, min(r.End, n)})
	}
	return NormalizeRanges(out)
}

// Complement returns the groups of [0, n) that are not in rs.
func (rs Ranges) Complement(n uint64) Ranges {
	var out Ranges
	var at uint64
	for _, r := range rs {
		if r.Start >= n {
			break
		}
		if r.Start > at {
			out = append(out, Range{at, r.Start})
		}
		at = max(at, r.End)
	}
	if at < n {
		out = append(out, Range{at, n})
	}
	return out
}

// Union returns the groups in rs or in o.
func (rs Ranges) Union(o Ranges) Ranges {
	return NormalizeRanges(append(slices.Clone(rs), o...))
}

// String formats rs as "0-3,7-8" (half-open group ranges).
func (rs Ranges) String() string {
	b := make([]byte, 0, 16*len(rs))
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, "%d-%d", r.Start, r.End)
	}
	return string(b)
}

// appendRanges encodes rs compactly for storage: a uvarint count, then each
// range as the uvarint gap from the previous end and the uvarint length.
func appendRanges(b []byte, rs Ranges) []byte {
	b = binary.AppendUvarint(b, uint64(len(rs)))
	var at uint64
	for _, r := range rs {
		b = binary.AppendUvarint(b, r.Start-at)
		b = binary.AppendUvarint(b, r.End-r.Start)
		at = r.End
	}
	return b
}

// parseRanges decodes appendRanges' form; the result is normalized or an
// error is returned.
func parseRanges(b []byte) (Ranges, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: stored ranges", ErrCorrupt)
	}
	b = b[k:]
	rs := make(Ranges, 0, n)
	var at uint64
	for range n {
		gap, k1 := binary.Uvarint(b)
		if k1 <= 0 {
			return nil, fmt.Errorf("%w: stored ranges", ErrCorrupt)
		}
		l, k2 := binary.Uvarint(b[k1:])
		if k2 <= 0 {
			return nil, fmt.Errorf("%w: stored ranges", ErrCorrupt)
		}
		b = b[k1+k2:]
		start := at + gap
		if start < at || start+l < start {
			return nil, fmt.Errorf("%w: stored ranges", ErrCorrupt)
		}
		rs = append(rs, Range{start, start + l})
		at = start + l
	}
	if len(b) != 0 || !rs.normalized() {
		return nil, fmt.Errorf("%w: stored ranges", ErrCorrupt)
	}
	return rs, nil
}

// bitmap tracks present groups of a partial blob.
type bitmap []uint64

func newBitmap(groups uint64) bitmap { return make(bitmap, (groups+63)/64) }

func (b bitmap) set(g uint64)      { b[g/64] |= 1 << (g % 64) }
func (b bitmap) has(g uint64) bool { return b[g/64]&(1<<(g%64)) != 0 }

func (b bitmap) setRanges(rs Ranges) {
	for _, r := range rs {
		for g := r.Start; g < r.End; g++ {
			b.set(g)
		}
	}
}

// ranges returns the set groups among [0, n).
func (b bitmap) ranges(n uint64) Ranges {
	var out Ranges
	var g uint64
	for g < n {
		w := b[g/64] >> (g % 64)
		if w == 0 {
			g = (g/64 + 1) * 64
			continue
		}
		if w&1 == 0 {
			g += uint64(bits.TrailingZeros64(w))
			continue
		}
		start := g
		for g < n && b.has(g) {
			g++
		}
		out = append(out, Range{start, g})
	}
	return out
}
