package git

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-billy/v6"
)

// atomicRefs wraps a repository's filesystem so that a ref file opened for
// writing is replaced in one rename when it is closed. go-git updates a
// loose ref in place (open, truncate, write); a crash between the truncate
// and the write would leave an empty ref and a corrupt repository. With the
// wrapper, a crash at any point leaves the old content or the new one.
// Locking is the server's: pushes to one repository are serialized.
type atomicRefs struct {
	billy.Filesystem
}

// isRefPath reports whether name is a loose ref or HEAD-like file at the
// top of the repository.
func isRefPath(name string) bool {
	name = path.Clean(strings.ReplaceAll(name, "\\", "/"))
	return strings.HasPrefix(name, "refs/") || name == "HEAD"
}

// OpenFile implements billy.Basic.
func (a atomicRefs) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR) == 0 || !isRefPath(name) {
		return a.Filesystem.OpenFile(name, flag, perm)
	}
	f := &atomicFile{fsys: a.Filesystem, name: name, perm: perm}
	if flag&os.O_TRUNC == 0 {
		old, err := a.Filesystem.Open(name)
		switch {
		case err == nil:
			b, rerr := io.ReadAll(old)
			_ = old.Close()
			if rerr != nil {
				return nil, rerr
			}
			f.buf = b
		case errors.Is(err, fs.ErrNotExist):
			if flag&os.O_CREATE == 0 {
				return nil, err
			}
		default:
			return nil, err
		}
	} else {
		f.dirty = true
	}
	if flag&os.O_APPEND != 0 {
		f.off = int64(len(f.buf))
	}
	return f, nil
}

// Create implements billy.Basic.
func (a atomicRefs) Create(name string) (billy.File, error) {
	return a.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// atomicFile holds a ref's content in memory and writes it on Close.
type atomicFile struct {
	fsys   billy.Filesystem
	name   string
	perm   os.FileMode
	buf    []byte
	off    int64
	dirty  bool
	closed bool
}

func (f *atomicFile) Name() string { return f.name }

func (f *atomicFile) Read(p []byte) (int, error) {
	if f.off >= int64(len(f.buf)) {
		return 0, io.EOF
	}
	n := copy(p, f.buf[f.off:])
	f.off += int64(n)
	return n, nil
}

func (f *atomicFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(f.buf)) {
		return 0, io.EOF
	}
	n := copy(p, f.buf[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *atomicFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += f.off
	case io.SeekEnd:
		off += int64(len(f.buf))
	}
	if off < 0 {
		return 0, errors.New("alknet/git: negative seek")
	}
	f.off = off
	return off, nil
}

func (f *atomicFile) Write(p []byte) (int, error) {
	n, err := f.WriteAt(p, f.off)
	f.off += int64(n)
	return n, err
}

func (f *atomicFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(f.buf)) {
		f.buf = append(f.buf, make([]byte, end-int64(len(f.buf)))...)
	}
	copy(f.buf[off:], p)
	f.dirty = true
	return len(p), nil
}

func (f *atomicFile) Truncate(size int64) error {
	if size < int64(len(f.buf)) {
		f.buf = f.buf[:size]
	} else {
		f.buf = append(f.buf, make([]byte, size-int64(len(f.buf)))...)
	}
	f.dirty = true
	return nil
}

func (f *atomicFile) Lock() error   { return nil }
func (f *atomicFile) Unlock() error { return nil }

func (f *atomicFile) Stat() (fs.FileInfo, error) {
	return memInfo{name: path.Base(f.name), size: int64(len(f.buf)), mode: f.perm}, nil
}

// Close writes the content to a temporary file beside the ref, syncs it
// and renames it over the ref.
func (f *atomicFile) Close() error {
	if f.closed {
		return os.ErrClosed
	}
	f.closed = true
	if !f.dirty {
		return nil
	}
	dir := path.Dir(f.name)
	if err := f.fsys.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	tmp, err := f.fsys.TempFile(dir, ".tmp-ref-")
	if err != nil {
		return err
	}
	_, werr := io.Copy(tmp, bytes.NewReader(f.buf))
	if s, ok := tmp.(billy.Syncer); ok && werr == nil {
		werr = s.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = f.fsys.Rename(tmp.Name(), f.name)
	}
	if werr != nil {
		_ = f.fsys.Remove(tmp.Name())
	}
	return werr
}

type memInfo struct {
	name string
	size int64
	mode os.FileMode
}

func (m memInfo) Name() string       { return m.name }
func (m memInfo) Size() int64        { return m.size }
func (m memInfo) Mode() os.FileMode  { return m.mode }
func (m memInfo) ModTime() time.Time { return time.Time{} }
func (m memInfo) IsDir() bool        { return false }
func (m memInfo) Sys() any           { return nil }

var (
	_ billy.File   = (*atomicFile)(nil)
	_ billy.Locker = (*atomicFile)(nil)
)
