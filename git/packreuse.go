package git

import (
	"bufio"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/go-git/go-git/v6/plumbing"
	"github.com/go-git/go-git/v6/plumbing/format/idxfile"
	"github.com/go-git/go-git/v6/storage"
)

// Pack entry types (gitformat-pack).
const (
	objCommit   = 1
	objTree     = 2
	objBlob     = 3
	objTag      = 4
	objOfsDelta = 6
	objRefDelta = 7
)

// maxBufferedEntry is the largest pack entry checked against its CRC-32
// before it is sent; a larger one is streamed and checked after.
const maxBufferedEntry = 16 << 20

// oid is an object id as a map key. plumbing.Hash carries its object
// format, which go-git leaves unset in some places and sets in others, so
// equal ids may differ as Go values.
type oid [sha1.Size]byte

func key(h plumbing.Hash) oid {
	var k oid
	copy(k[:], h.Bytes())
	return k
}

// packEntry is one object of a pack on disk: where its entry starts and
// ends, and the CRC-32 of the entry's bytes from the index.
type packEntry struct {
	hash plumbing.Hash
	off  int64
	end  int64
	crc  uint32
}

// packIndex is a pack on disk, open, with its entries in offset order.
type packIndex struct {
	name    string
	f       *os.File
	entries []packEntry
}

// entryAt returns the entry that starts at off.
func (p *packIndex) entryAt(off int64) (*packEntry, bool) {
	i := sort.Search(len(p.entries), func(i int) bool { return p.entries[i].off >= off })
	if i < len(p.entries) && p.entries[i].off == off {
		return &p.entries[i], true
	}
	return nil, false
}

// packSet is the packs of a repository and where each object is.
type packSet struct {
	packs []*packIndex
	where map[oid]entryRef
}

type entryRef struct {
	pack  int
	entry int
}

func (s *packSet) Close() {
	for _, p := range s.packs {
		_ = p.f.Close()
	}
}

// openPacks opens the packs of a repository and reads their indexes. A
// pack whose index cannot be read is left out: its objects are then sent
// decoded, through the storer. An object in two packs is taken from the
// first in name order.
func openPacks(objectsDir string) (*packSet, error) {
	names, err := filepath.Glob(filepath.Join(objectsDir, "pack", "pack-*.pack"))
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	set := &packSet{where: map[oid]entryRef{}}
	for _, name := range names {
		p, err := openPack(name)
		if err != nil {
			continue
		}
		n := len(set.packs)
		set.packs = append(set.packs, p)
		for i, e := range p.entries {
			if _, dup := set.where[key(e.hash)]; !dup {
				set.where[key(e.hash)] = entryRef{pack: n, entry: i}
			}
		}
	}
	return set, nil
}

func openPack(name string) (*packIndex, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	p, err := readPackIndex(f, strings.TrimSuffix(name, ".pack")+".idx")
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return p, nil
}

func readPackIndex(f *os.File, idxPath string) (*packIndex, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var hdr [12]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return nil, err
	}
	if v := binary.BigEndian.Uint32(hdr[4:8]); string(hdr[:4]) != "PACK" || (v != 2 && v != 3) {
		return nil, errors.New("not a pack")
	}
	xf, err := os.Open(idxPath)
	if err != nil {
		return nil, err
	}
	defer xf.Close()
	idx := idxfile.NewMemoryIndex(sha1.Size)
	if err := idxfile.NewDecoder(xf, sha1.New()).Decode(idx); err != nil {
		return nil, err
	}
	count, err := idx.Count()
	if err != nil || count != int64(binary.BigEndian.Uint32(hdr[8:12])) {
		return nil, errors.New("index and pack disagree")
	}
	it, err := idx.EntriesByOffset()
	if err != nil {
		return nil, err
	}
	defer it.Close()
	p := &packIndex{name: filepath.Base(f.Name()), f: f, entries: make([]packEntry, 0, count)}
	for {
		e, err := it.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		p.entries = append(p.entries, packEntry{hash: e.Hash, off: int64(e.Offset), crc: e.CRC32})
	}
	end := fi.Size() - sha1.Size
	for i := len(p.entries) - 1; i >= 0; i-- {
		p.entries[i].end = end
		end = p.entries[i].off
		if p.entries[i].off < 12 || p.entries[i].off >= p.entries[i].end {
			return nil, errors.New("bad entry offsets")
		}
	}
	return p, nil
}

// packStats counts how writePack wrote the entries of a pack.
type packStats struct {
	Reused    int // copied as stored (REF_DELTA conversions included)
	Converted int // OFS_DELTA written as REF_DELTA
	Whole     int // decoded and deflated from the storer
}

// packWriter writes a pack: the header, entries, the SHA-1 trailer.
type packWriter struct {
	w   *bufio.Writer
	sum hash.Hash
	pos int64
}

func (pw *packWriter) Write(p []byte) (int, error) {
	n, err := pw.w.Write(p)
	pw.sum.Write(p[:n])
	pw.pos += int64(n)
	return n, err
}

// writePack writes a pack of objs to w. Entries are copied from the
// repository's packs as they are stored, so that nothing is inflated,
// re-deltified or deflated: a whole object as it is; a delta whose base
// is sent too, as it is (an OFS_DELTA with its distance recomputed, or
// turned into a REF_DELTA when the client did not ask for ofs-delta or
// the base comes later). An object that is loose, in no readable pack,
// whose entry fails its CRC-32, or a delta whose base is not sent, is
// written whole from the storer. Objects are written pack by pack in
// offset order, so a base precedes its OFS_DELTA entries.
func writePack(w io.Writer, st storage.Storer, set *packSet, objs []plumbing.Hash, ofsDelta bool) (packStats, error) {
	var stats packStats
	pw := &packWriter{w: bufio.NewWriterSize(w, 64<<10), sum: sha1.New()}
	send := make(map[oid]bool, len(objs))
	var packed []entryRef
	var whole []plumbing.Hash
	for _, h := range objs {
		if send[key(h)] {
			continue
		}
		send[key(h)] = true
		if ref, ok := set.where[key(h)]; ok {
			packed = append(packed, ref)
		} else {
			whole = append(whole, h)
		}
	}
	slices.SortFunc(packed, func(a, b entryRef) int {
		if a.pack != b.pack {
			return a.pack - b.pack
		}
		return a.entry - b.entry
	})
	hdr := []byte{'P', 'A', 'C', 'K', 0, 0, 0, 2, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(send)))
	if _, err := pw.Write(hdr); err != nil {
		return stats, err
	}
	written := make(map[oid]int64, len(send))
	var buf []byte
	for _, ref := range packed {
		p := set.packs[ref.pack]
		e := &p.entries[ref.entry]
		start := pw.pos
		how, err := copyEntry(pw, p, e, send, written, ofsDelta, &buf)
		if err != nil {
			return stats, fmt.Errorf("%s: %w", p.name, err)
		}
		switch how {
		case copied:
			stats.Reused++
		case converted:
			stats.Reused++
			stats.Converted++
		default:
			stats.Whole++
			if err := writeWhole(pw, st, e.hash); err != nil {
				return stats, err
			}
		}
		written[key(e.hash)] = start
	}
	for _, h := range whole {
		written[key(h)] = pw.pos
		stats.Whole++
		if err := writeWhole(pw, st, h); err != nil {
			return stats, err
		}
	}
	if _, err := pw.w.Write(pw.sum.Sum(nil)); err != nil {
		return stats, err
	}
	return stats, pw.w.Flush()
}

// reuse says how copyEntry wrote an entry.
type reuse int

const (
	notReused reuse = iota // nothing written: decode the object
	copied                 // the stored entry, its OFS_DELTA distance recomputed
	converted              // an OFS_DELTA written as a REF_DELTA
)

// copyEntry writes the stored entry e of pack p when it can be reused,
// and says how. After an error the pack is broken.
func copyEntry(pw *packWriter, p *packIndex, e *packEntry, send map[oid]bool, written map[oid]int64,
	ofsDelta bool, buf *[]byte) (reuse, error) {
	size := e.end - e.off
	if size > maxBufferedEntry {
		return copyLargeEntry(pw, p, e)
	}
	if int64(cap(*buf)) < size {
		*buf = make([]byte, size)
	}
	raw := (*buf)[:size]
	if _, err := p.f.ReadAt(raw, e.off); err != nil {
		return notReused, err
	}
	if crc32.ChecksumIEEE(raw) != e.crc {
		return notReused, nil // corrupt on disk: decode it (and fail there) rather than pass it on
	}
	typ, objSize, n, ok := parseEntryHeader(raw)
	if !ok {
		return notReused, nil
	}
	switch typ {
	case objCommit, objTree, objBlob, objTag:
		_, err := pw.Write(raw)
		return copied, err
	case objOfsDelta:
		dist, m, ok := parseOfs(raw[n:])
		if !ok || dist <= 0 || dist > e.off {
			return notReused, nil
		}
		base, ok := p.entryAt(e.off - dist)
		if !ok || !send[key(base.hash)] {
			return notReused, nil
		}
		data := raw[n+m:]
		if at, done := written[key(base.hash)]; done && ofsDelta {
			h := appendEntryHeader(nil, objOfsDelta, objSize)
			h = appendOfs(h, pw.pos-at)
			if _, err := pw.Write(h); err != nil {
				return copied, err
			}
			_, err := pw.Write(data)
			return copied, err
		}
		h := appendEntryHeader(nil, objRefDelta, objSize)
		h = append(h, base.hash.Bytes()...)
		if _, err := pw.Write(h); err != nil {
			return converted, err
		}
		_, err := pw.Write(data)
		return converted, err
	case objRefDelta:
		if len(raw) < n+sha1.Size {
			return notReused, nil
		}
		base, _ := plumbing.FromBytes(raw[n : n+sha1.Size])
		if !send[key(base)] {
			return notReused, nil
		}
		_, err := pw.Write(raw)
		return copied, err
	}
	return notReused, nil
}

// copyLargeEntry streams a whole object's entry too large to buffer,
// checking its CRC-32 on the way; a mismatch fails the pack (the client
// gets a truncated pack and refuses it). Large deltas are decoded.
func copyLargeEntry(pw *packWriter, p *packIndex, e *packEntry) (reuse, error) {
	var head [32]byte
	n, err := p.f.ReadAt(head[:], e.off)
	if err != nil && !errors.Is(err, io.EOF) {
		return notReused, err
	}
	typ, _, _, ok := parseEntryHeader(head[:n])
	if !ok || typ < objCommit || typ > objTag {
		return notReused, nil
	}
	crc := crc32.NewIEEE()
	if _, err := io.Copy(io.MultiWriter(pw, crc), io.NewSectionReader(p.f, e.off, e.end-e.off)); err != nil {
		return copied, err
	}
	if crc.Sum32() != e.crc {
		return copied, fmt.Errorf("entry %s: crc mismatch", e.hash)
	}
	return copied, nil
}

// writeWhole writes an object from the storer as a whole, deflated entry.
func writeWhole(pw *packWriter, st storage.Storer, h plumbing.Hash) error {
	obj, err := st.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return fmt.Errorf("object %s: %w", h, err)
	}
	var typ byte
	switch obj.Type() {
	case plumbing.CommitObject:
		typ = objCommit
	case plumbing.TreeObject:
		typ = objTree
	case plumbing.BlobObject:
		typ = objBlob
	case plumbing.TagObject:
		typ = objTag
	default:
		return fmt.Errorf("object %s: type %s", h, obj.Type())
	}
	if _, err := pw.Write(appendEntryHeader(nil, typ, uint64(obj.Size()))); err != nil {
		return err
	}
	r, err := obj.Reader()
	if err != nil {
		return fmt.Errorf("object %s: %w", h, err)
	}
	defer r.Close()
	zw := zlib.NewWriter(pw)
	if _, err := io.Copy(zw, r); err != nil {
		return fmt.Errorf("object %s: %w", h, err)
	}
	return zw.Close()
}

// parseEntryHeader decodes the type and size at the start of an entry and
// returns the header's length.
func parseEntryHeader(b []byte) (typ byte, size uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, 0, false
	}
	c := b[0]
	typ = (c >> 4) & 7
	size = uint64(c & 15)
	shift := uint(4)
	n = 1
	for c&0x80 != 0 {
		if n >= len(b) || shift > 57 {
			return 0, 0, 0, false
		}
		c = b[n]
		n++
		size |= uint64(c&0x7f) << shift
		shift += 7
	}
	return typ, size, n, true
}

// appendEntryHeader encodes an entry's type and size.
func appendEntryHeader(b []byte, typ byte, size uint64) []byte {
	c := typ<<4 | byte(size&15)
	size >>= 4
	for size != 0 {
		b = append(b, c|0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	return append(b, c)
}

// parseOfs decodes the base distance of an OFS_DELTA entry: big-endian
// 7-bit groups, each continuation adding one before the shift.
func parseOfs(b []byte) (dist int64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	c := b[0]
	dist = int64(c & 0x7f)
	n = 1
	for c&0x80 != 0 {
		if n >= len(b) || dist > (1<<55) {
			return 0, 0, false
		}
		c = b[n]
		n++
		dist = ((dist + 1) << 7) | int64(c&0x7f)
	}
	return dist, n, true
}

// appendOfs encodes a base distance as parseOfs reads it.
func appendOfs(b []byte, dist int64) []byte {
	var tmp [10]byte
	i := len(tmp) - 1
	tmp[i] = byte(dist & 0x7f)
	for dist >>= 7; dist != 0; dist >>= 7 {
		dist--
		i--
		tmp[i] = 0x80 | byte(dist&0x7f)
	}
	return append(b, tmp[i:]...)
}
