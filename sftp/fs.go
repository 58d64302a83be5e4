package sftp

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/pkg/sftp"
)

// fsHandler implements pkg/sftp's request handlers over the session's
// os.Root. os.Root resolves every name component by component with
// openat and O_NOFOLLOW-style checks, so neither "..", nor an absolute
// symlink, nor a symlink swapped in during an operation reaches outside.
type fsHandler session

// name resolves the request path or refuses it.
func (h *fsHandler) name(p string) (string, error) { return resolve(p) }

// write checks the session may write.
func (h *fsHandler) write(op string) error {
	if h.canWrite {
		return nil
	}
	h.log.Info("sftp write refused", "op", op, "err", "missing scope "+ScopeWrite)
	return errReadOnly
}

// acquire takes one handle slot of the session and of the peer, or fails
// with errTooMany (the session's limit) or errPeerTooMany (the peer's,
// across all its sessions).
func (h *fsHandler) acquire() (release func(), err error) {
	limit := int64(h.srv.cfg.MaxHandles)
	if n := h.open.Add(1); limit > 0 && n > limit {
		h.open.Add(-1)
		return nil, errTooMany
	}
	plimit := int64(h.srv.cfg.MaxPeerHandles)
	if n := h.peer.handles.Add(1); plimit > 0 && n > plimit {
		h.peer.handles.Add(-1)
		h.open.Add(-1)
		h.log.Warn("sftp open refused", "err", "too many open handles for this peer")
		return nil, errPeerTooMany
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			h.open.Add(-1)
			h.peer.handles.Add(-1)
		})
	}, nil
}

// openRegular opens name with flags and makes sure it is a regular file.
// O_NONBLOCK keeps a FIFO from blocking the open.
func (h *fsHandler) openRegular(name string, flags int, perm fs.FileMode) (*os.File, error) {
	f, err := h.root.OpenFile(name, flags|openFlags, perm)
	if err != nil {
		return nil, fsError(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fsError(err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, errIsDir
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, errNotRegular
	}
	return f, nil
}

// Fileread implements sftp.FileReader.
func (h *fsHandler) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	name, err := h.name(r.Filepath)
	if err != nil {
		return nil, err
	}
	release, err := h.acquire()
	if err != nil {
		return nil, err
	}
	f, err := h.openRegular(name, os.O_RDONLY, 0)
	if err != nil {
		release()
		return nil, err
	}
	return &file{f: f, release: release}, nil
}

// Filewrite implements sftp.FileWriter.
func (h *fsHandler) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	return h.openForWrite(r, os.O_WRONLY)
}

// OpenFile implements sftp.OpenFileWriter (read and write on one handle).
func (h *fsHandler) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) {
	return h.openForWrite(r, os.O_RDWR)
}

func (h *fsHandler) openForWrite(r *sftp.Request, mode int) (*file, error) {
	// pkg/sftp hands an OPEN's open flags over where attribute flags
	// belong, so r.AttrFlags and r.Attributes mean nothing here (and
	// trusting them dereferences nil): the session read the mode.
	perm := (*session)(h).takeOpenPerm(r.Filepath)
	if err := h.write("open"); err != nil {
		return nil, err
	}
	name, err := h.name(r.Filepath)
	if err != nil {
		return nil, err
	}
	if name == "." {
		return nil, errIsDir
	}
	pf := r.Pflags()
	flags := mode
	if pf.Creat {
		flags |= os.O_CREATE
	}
	if pf.Trunc {
		flags |= os.O_TRUNC
	}
	if pf.Excl {
		flags |= os.O_EXCL
	}
	release, err := h.acquire()
	if err != nil {
		return nil, err
	}
	f, err := h.openRegular(name, flags, perm)
	if err != nil {
		release()
		return nil, err
	}
	return &file{f: f, release: release, append: pf.Append}, nil
}

// Filecmd implements sftp.FileCmder.
func (h *fsHandler) Filecmd(r *sftp.Request) error {
	if err := h.write(r.Method); err != nil {
		return err
	}
	switch r.Method {
	case "Setstat":
		return h.setstat(r)
	case "Rename":
		return h.rename(r, false)
	case "Rmdir":
		name, err := h.name(r.Filepath)
		if err != nil {
			return err
		}
		if name == "." {
			return errDenied
		}
		fi, err := h.root.Lstat(name)
		if err != nil {
			return fsError(err)
		}
		if !fi.IsDir() {
			return errNotDir
		}
		return fsError(h.root.Remove(name))
	case "Remove":
		name, err := h.name(r.Filepath)
		if err != nil {
			return err
		}
		fi, err := h.root.Lstat(name)
		if err != nil {
			return fsError(err)
		}
		if fi.IsDir() {
			return errIsDir
		}
		return fsError(h.root.Remove(name))
	case "Mkdir":
		name, err := h.name(r.Filepath)
		if err != nil {
			return err
		}
		// pkg/sftp passes no attributes with MKDIR.
		return fsError(h.root.Mkdir(name, 0o755))
	case "Link":
		oldName, err := h.name(r.Filepath)
		if err != nil {
			return err
		}
		newName, err := h.name(r.Target)
		if err != nil {
			return err
		}
		return fsError(h.root.Link(oldName, newName))
	case "Symlink":
		// pkg/sftp: Filepath is the link target (raw), Target the new link.
		link, err := h.name(r.Target)
		if err != nil {
			return err
		}
		target, err := linkTarget(r.Filepath, r.Target)
		if err != nil {
			return err
		}
		return fsError(h.root.Symlink(target, link))
	}
	return errUnsupported
}

// PosixRename implements sftp.PosixRenameFileCmder: rename replacing the
// target.
func (h *fsHandler) PosixRename(r *sftp.Request) error {
	if err := h.write("posix-rename"); err != nil {
		return err
	}
	return h.rename(r, true)
}

func (h *fsHandler) rename(r *sftp.Request, replace bool) error {
	from, err := h.name(r.Filepath)
	if err != nil {
		return err
	}
	to, err := h.name(r.Target)
	if err != nil {
		return err
	}
	if from == "." || to == "." {
		return errDenied
	}
	if !replace {
		// SFTP v3 rename fails when the target exists.
		if _, err := h.root.Lstat(to); err == nil {
			return errExists
		}
	}
	return fsError(h.root.Rename(from, to))
}

func (h *fsHandler) setstat(r *sftp.Request) error {
	name, err := h.name(r.Filepath)
	if err != nil {
		return err
	}
	flags := r.AttrFlags()
	attrs := r.Attributes()
	if attrs == nil { // shorter than its flags say
		return errBadAttrs
	}
	if flags.UidGid {
		return status(sftp.ErrSSHFxPermissionDenied, "permission denied: changing owner is not allowed")
	}
	if flags.Size {
		f, err := h.openRegular(name, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		err = f.Truncate(int64(attrs.Size))
		f.Close()
		if err != nil {
			return fsError(err)
		}
	}
	if flags.Permissions {
		if err := h.root.Chmod(name, fs.FileMode(attrs.Mode)&fs.ModePerm); err != nil {
			return fsError(err)
		}
	}
	if flags.Acmodtime {
		at := time.Unix(int64(attrs.Atime), 0)
		mt := time.Unix(int64(attrs.Mtime), 0)
		if err := h.root.Chtimes(name, at, mt); err != nil {
			return fsError(err)
		}
	}
	return nil
}

// Filelist implements sftp.FileLister for List and Stat.
func (h *fsHandler) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	name, err := h.name(r.Filepath)
	if err != nil {
		return nil, err
	}
	switch r.Method {
	case "List":
		release, err := h.acquire()
		if err != nil {
			return nil, err
		}
		f, err := h.root.OpenFile(name, os.O_RDONLY|openDirFlags, 0)
		if err != nil {
			release()
			return nil, fsError(err)
		}
		return &dirLister{f: f, release: release}, nil
	case "Stat":
		fi, err := h.root.Stat(name)
		if err != nil {
			return nil, fsError(err)
		}
		return statLister{fi}, nil
	}
	return nil, errUnsupported
}

// Lstat implements sftp.LstatFileLister.
func (h *fsHandler) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	name, err := h.name(r.Filepath)
	if err != nil {
		return nil, err
	}
	fi, err := h.root.Lstat(name)
	if err != nil {
		return nil, fsError(err)
	}
	return statLister{fi}, nil
}

// Readlink implements sftp.ReadlinkFileLister.
func (h *fsHandler) Readlink(p string) (string, error) {
	name, err := h.name(p)
	if err != nil {
		return "", err
	}
	t, err := h.root.Readlink(name)
	if err != nil {
		return "", fsError(err)
	}
	return t, nil
}

// RealPath implements sftp.RealPathFileLister: the clean absolute path in
// the session's view. Symlinks are not resolved.
func (h *fsHandler) RealPath(p string) (string, error) {
	if _, err := resolve(p); err != nil {
		return "", err
	}
	return clientPath(p), nil
}

// StatVFS implements sftp.StatVFSFileCmder.
func (h *fsHandler) StatVFS(r *sftp.Request) (*sftp.StatVFS, error) {
	name, err := h.name(r.Filepath)
	if err != nil {
		return nil, err
	}
	f, err := h.root.OpenFile(name, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, fsError(err)
	}
	defer f.Close()
	return statVFS(f)
}

// file is an open file handle.
type file struct {
	f       *os.File
	release func()
	append  bool
	mu      sync.Mutex // serializes appends
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errBadOffset
	}
	n, err := f.f.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fsError(err)
	}
	return n, err
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errBadOffset
	}
	if f.append {
		f.mu.Lock()
		defer f.mu.Unlock()
		end, err := f.f.Seek(0, io.SeekEnd)
		if err != nil {
			return 0, fsError(err)
		}
		off = end
	}
	n, err := f.f.WriteAt(p, off)
	return n, fsError(err)
}

func (f *file) Close() error {
	defer f.release()
	return fsError(f.f.Close())
}

// statLister lists one file.
type statLister struct{ fi fs.FileInfo }

func (l statLister) ListAt(ls []fs.FileInfo, off int64) (int, error) {
	if off > 0 || len(ls) == 0 {
		return 0, io.EOF
	}
	ls[0] = l.fi
	return 1, io.EOF
}

// dirLister streams a directory. pkg/sftp asks for consecutive offsets.
type dirLister struct {
	f       *os.File
	release func()
	mu      sync.Mutex
	next    int64
	done    bool
}

func (l *dirLister) ListAt(ls []fs.FileInfo, off int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if off != l.next {
		return 0, errBadOffset
	}
	if l.done || len(ls) == 0 {
		return 0, io.EOF
	}
	entries, err := l.f.Readdir(len(ls))
	n := copy(ls, entries)
	l.next += int64(n)
	if err != nil {
		l.done = true
		if errors.Is(err, io.EOF) {
			return n, io.EOF
		}
		return n, fsError(err)
	}
	return n, nil
}

func (l *dirLister) Close() error {
	defer l.release()
	return l.f.Close()
}

var (
	_ sftp.FileReader           = (*fsHandler)(nil)
	_ sftp.OpenFileWriter       = (*fsHandler)(nil)
	_ sftp.PosixRenameFileCmder = (*fsHandler)(nil)
	_ sftp.StatVFSFileCmder     = (*fsHandler)(nil)
	_ sftp.LstatFileLister      = (*fsHandler)(nil)
	_ sftp.ReadlinkFileLister   = (*fsHandler)(nil)
	_ sftp.RealPathFileLister   = (*fsHandler)(nil)
)
