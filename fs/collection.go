package fs

import (
	"encoding/binary"
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits of a collection, checked when one is decoded or encoded.
const (
	// MaxCollectionEntries is the most files a collection lists.
	MaxCollectionEntries = 1 << 20
	// MaxPathLength is the longest path in a collection, in bytes.
	MaxPathLength = 4096
	// MaxCollectionSize is the largest collection blob, in bytes.
	MaxCollectionSize = 256 << 20

	maxElementLength = 255
	entryFixed       = 2 + 32 + 8 + 4
)

// collectionMagic starts every collection blob.
var collectionMagic = [8]byte{'A', 'L', 'K', 'F', 'S', 'C', '0', '1'}

// Entry is one file of a collection.
type Entry struct {
	// Path is relative, "/"-separated, with no empty, "." or ".."
	// element.
	Path string `json:"path"`
	Hash Hash   `json:"hash"`
	Size int64  `json:"size"`
	// Mode holds the permission bits (0 to 0777).
	Mode iofs.FileMode `json:"mode"`
}

// Collection is a directory tree stored as one blob listing its files: the
// hash of that blob names the whole tree. Directories are implied by the
// paths; empty directories, symlinks and special files are not kept.
type Collection struct {
	Entries []Entry `json:"entries"`
}

// ValidatePath checks a collection path: relative, "/"-separated, valid
// UTF-8, no empty, "." or ".." element, no backslash, NUL or other control
// character, at most MaxPathLength bytes and 255 per element.
func ValidatePath(p string) error {
	if p == "" || len(p) > MaxPathLength {
		return fmt.Errorf("%w: path of %d bytes", ErrBadCollection, len(p))
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("%w: path %q is not UTF-8", ErrBadCollection, p)
	}
	if p[0] == '/' {
		return fmt.Errorf("%w: absolute path %q", ErrBadCollection, p)
	}
	for _, c := range []byte(p) {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return fmt.Errorf("%w: path %q holds a control character or backslash", ErrBadCollection, p)
		}
	}
	for el := range strings.SplitSeq(p, "/") {
		switch {
		case el == "":
			return fmt.Errorf("%w: empty element in %q", ErrBadCollection, p)
		case el == "." || el == "..":
			return fmt.Errorf("%w: %q element in %q", ErrBadCollection, el, p)
		case len(el) > maxElementLength:
			return fmt.Errorf("%w: element of %d bytes in %q", ErrBadCollection, len(el), p)
		}
	}
	return nil
}

// validate sorts nothing: it checks that entries are in strictly
// increasing path order (so no duplicates), that every path is valid and
// that no file is also a directory of another.
func (c *Collection) validate() error {
	if len(c.Entries) > MaxCollectionEntries {
		return fmt.Errorf("%w: %d entries (limit %d)", ErrBadCollection, len(c.Entries), MaxCollectionEntries)
	}
	files := make(map[string]bool, len(c.Entries))
	dirs := map[string]bool{}
	for i, e := range c.Entries {
		if err := ValidatePath(e.Path); err != nil {
			return err
		}
		if i > 0 && e.Path <= c.Entries[i-1].Path {
			if e.Path == c.Entries[i-1].Path {
				return fmt.Errorf("%w: duplicate path %q", ErrBadCollection, e.Path)
			}
			return fmt.Errorf("%w: paths out of order at %q", ErrBadCollection, e.Path)
		}
		if e.Size < 0 {
			return fmt.Errorf("%w: negative size for %q", ErrBadCollection, e.Path)
		}
		if e.Mode&^0o777 != 0 {
			return fmt.Errorf("%w: mode %o of %q has bits beyond 0777", ErrBadCollection, uint32(e.Mode), e.Path)
		}
		if dirs[e.Path] {
			return fmt.Errorf("%w: %q is both a file and a directory", ErrBadCollection, e.Path)
		}
		files[e.Path] = true
		for d := path.Dir(e.Path); d != "."; d = path.Dir(d) {
			if files[d] {
				return fmt.Errorf("%w: %q is both a file and a directory", ErrBadCollection, d)
			}
			if dirs[d] {
				break
			}
			dirs[d] = true
		}
	}
	return nil
}

// Encode sorts the entries by path, validates them and returns the
// collection blob.
func (c *Collection) Encode() ([]byte, error) {
	slices.SortFunc(c.Entries, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	if err := c.validate(); err != nil {
		return nil, err
	}
	n := len(collectionMagic) + 4
	for _, e := range c.Entries {
		n += entryFixed + len(e.Path)
	}
	if n > MaxCollectionSize {
		return nil, fmt.Errorf("%w: collection of %d bytes (limit %d)", ErrBadCollection, n, MaxCollectionSize)
	}
	b := make([]byte, 0, n)
	b = append(b, collectionMagic[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Entries)))
	for _, e := range c.Entries {
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.Path)))
		b = append(b, e.Path...)
		b = append(b, e.Hash[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(e.Size))
		b = binary.BigEndian.AppendUint32(b, uint32(e.Mode))
	}
	return b, nil
}

// DecodeCollection parses and validates a collection blob. Hostile input
// (absolute or ".." paths, duplicates, a path that is both a file and a
// directory, special mode bits, trailing bytes) is an ErrBadCollection.
func DecodeCollection(b []byte) (*Collection, error) {
	if len(b) > MaxCollectionSize {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrBadCollection, len(b), MaxCollectionSize)
	}
	if len(b) < len(collectionMagic)+4 || [8]byte(b[:8]) != collectionMagic {
		return nil, fmt.Errorf("%w: not a collection", ErrBadCollection)
	}
	count := binary.BigEndian.Uint32(b[8:])
	b = b[12:]
	if count > MaxCollectionEntries || uint64(count)*entryFixed > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", ErrBadCollection, count, len(b))
	}
	c := &Collection{Entries: make([]Entry, 0, count)}
	for range count {
		if len(b) < entryFixed {
			return nil, fmt.Errorf("%w: truncated entry", ErrBadCollection)
		}
		pl := int(binary.BigEndian.Uint16(b))
		if len(b) < entryFixed+pl {
			return nil, fmt.Errorf("%w: truncated entry", ErrBadCollection)
		}
		e := Entry{Path: string(b[2 : 2+pl])}
		b = b[2+pl:]
		copy(e.Hash[:], b[:32])
		size := binary.BigEndian.Uint64(b[32:])
		if size > 1<<62 {
			return nil, fmt.Errorf("%w: size %d of %q", ErrBadCollection, size, e.Path)
		}
		e.Size = int64(size)
		e.Mode = iofs.FileMode(binary.BigEndian.Uint32(b[40:]))
		b = b[44:]
		c.Entries = append(c.Entries, e)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadCollection, len(b))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// readCollection decodes the collection blob of size bytes in r.
func readCollection(r io.ReaderAt, size int64) (*Collection, error) {
	if size > MaxCollectionSize {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrBadCollection, size, MaxCollectionSize)
	}
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil && !(err == io.EOF && size == 0) {
		return nil, err
	}
	return DecodeCollection(b)
}

// Size returns the total size of the files.
func (c *Collection) Size() int64 {
	var n int64
	for _, e := range c.Entries {
		n += e.Size
	}
	return n
}

// hashes returns the distinct member hashes.
func (c *Collection) hashes() []Hash {
	seen := make(map[Hash]bool, len(c.Entries))
	out := make([]Hash, 0, len(c.Entries))
	for _, e := range c.Entries {
		if !seen[e.Hash] {
			seen[e.Hash] = true
			out = append(out, e.Hash)
		}
	}
	return out
}
