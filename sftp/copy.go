package sftp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/alkdev/alknet/core"
	"github.com/pkg/sftp"
)

// PartSuffix names the file a copy writes before renaming it into place;
// CopyOptions.Resume continues it.
const PartSuffix = ".alknet-part"

// CopyOptions configures Download and Upload. The zero value copies one
// regular file, verified when the node offers check-file.
type CopyOptions struct {
	// Recursive copies directory trees. Symbolic links and special files
	// in them are left out, each reported to Notice.
	Recursive bool
	// Resume continues the DST.alknet-part file an earlier copy left, from
	// the longest prefix whose per-block SHA-256 both sides agree on (by
	// size when the node does not offer check-file). An existing DST is
	// never written into; it is replaced by rename at the end.
	Resume bool
	// NoVerify skips the final SHA-256 comparison.
	NoVerify bool

	// Planned is called once, before any data moves, with the bytes the
	// copy will move. Nil: not called.
	Planned func(total int64)
	// Started is called when a file starts, with its destination path.
	Started func(dst string)
	// Moved is called with the bytes moved as they move.
	Moved func(n int)
	// Notice receives one line, without prefix, for each file left out and
	// each resume that starts earlier than the part file's size. Nil:
	// dropped.
	Notice func(msg string)
}

// Download copies remote src (a file, or with Recursive a directory) from
// the alknet/sftp node on conn to local dst. Like cp, a dst that is an
// existing directory receives src inside it. Each file goes to
// dst.alknet-part first, is fsynced, verified against the node's SHA-256
// (check-file) unless NoVerify, and renamed into place, so dst is never
// half-written. Names the node sends are never trusted: an entry name
// that is not a single path element fails the copy with ErrBadEntryName,
// and nothing is written outside dst. The copy opens two streams on conn
// (a data session and a control session for limits and checksums) and
// needs no other, so a node that starts to drain lets it finish. When ctx
// ends, the streams are closed and the error wraps ctx.Err().
func Download(ctx context.Context, conn core.Conn, src, dst string, o CopyOptions) error {
	return runCopy(ctx, conn, src, dst, o, false)
}

// Upload copies local src (a file, or with Recursive a directory) to
// remote dst on the alknet/sftp node on conn; see Download. The remote
// part file is fsynced (fsync@openssh.com) before it is renamed into place
// (posix-rename@openssh.com).
func Upload(ctx context.Context, conn core.Conn, src, dst string, o CopyOptions) error {
	return runCopy(ctx, conn, src, dst, o, true)
}

// copier runs one copy.
type copier struct {
	opt      CopyOptions
	ctl      *Control // the control session: limits and checksums
	c        *sftp.Client
	hasCheck bool   // the node offers check-file
	check    bool   // ... and the copy is verified (no NoVerify)
	root     string // local destination of a recursive download
}

func runCopy(ctx context.Context, conn core.Conn, src, dst string, o CopyOptions, upload bool) (err error) {
	// The control session stays open for the whole copy: limits, resume
	// checks and the final checksums go over it, so a node that starts to
	// drain (and accepts no new streams) still lets the copy finish.
	cst, err := conn.OpenStream(ctx)
	if err != nil {
		return err
	}
	defer cst.Close()
	st, err := conn.OpenStream(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() {
		_ = cst.Close()
		_ = st.Close()
	})
	defer stop()
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("alknet/sftp: copy interrupted: %w", ctx.Err())
		}
	}()
	ctl, err := NewControl(cst)
	if err != nil {
		return err
	}
	packet := 32 << 10
	if l, err := ctl.Limits(); err == nil && l.MaxRead > 0 && l.MaxWrite > 0 {
		packet = int(min(l.MaxRead, l.MaxWrite, 1<<20))
	}
	c, err := sftp.NewClientPipe(st, st,
		sftp.MaxPacketUnchecked(packet),
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(64),
	)
	if err != nil {
		return err
	}
	defer c.Close()
	_, hasCheck := ctl.Extension(extCheckFile)
	cp := &copier{opt: o, ctl: ctl, c: c, hasCheck: hasCheck, check: hasCheck && !o.NoVerify}
	var jobs []cpJob
	if upload {
		jobs, err = cp.planUpload(src, dst)
	} else {
		jobs, err = cp.planDownload(src, dst)
	}
	if err != nil {
		return err
	}
	if o.Planned != nil {
		var total int64
		for _, j := range jobs {
			total += j.size - j.off
		}
		o.Planned(total)
	}
	for _, j := range jobs {
		if o.Started != nil {
			o.Started(j.dst)
		}
		if upload {
			err = cp.put(j)
		} else {
			err = cp.get(j)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// notice reports one line to CopyOptions.Notice.
func (cp *copier) notice(format string, args ...any) {
	if cp.opt.Notice != nil {
		cp.opt.Notice(fmt.Sprintf(format, args...))
	}
}

// cpJob is one regular file to copy.
type cpJob struct {
	src, dst string // dst is the final name
	size     int64
	part     string // where data is written (dst.alknet-part or dst)
	off      int64  // resume offset
	mode     fs.FileMode
}

// planDownload lists the files to fetch from remote src into local dst.
func (cp *copier) planDownload(src, dst string) ([]cpJob, error) {
	fi, err := cp.c.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", src, err)
	}
	if lfi, err := os.Stat(dst); err == nil && lfi.IsDir() {
		if b := path.Base(src); b != "/" && b != "." {
			dst = filepath.Join(dst, b)
		}
	}
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("remote %s is not a regular file", src)
		}
		j, err := cp.localJob(src, dst, fi)
		if err != nil {
			return nil, err
		}
		return []cpJob{j}, nil
	}
	if !cp.opt.Recursive {
		return nil, fmt.Errorf("remote %s: %w", src, ErrIsDirectory)
	}
	cp.root = filepath.Clean(dst)
	var jobs []cpJob
	if err := cp.walkRemote(src, dst, 0, &jobs); err != nil {
		return nil, err
	}
	return jobs, nil
}

// maxTreeDepth bounds how deep cp -r descends into a remote tree, so a
// node that answers every listing with another directory cannot keep the
// client walking forever.
const maxTreeDepth = 256

// walkRemote plans the download of remote directory dir into local
// directory local. Names come from the node and are never trusted: each
// must be a single path element (see checkEntryName), and every local path
// is checked to stay under the destination before anything is created.
func (cp *copier) walkRemote(dir, local string, depth int, jobs *[]cpJob) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("remote %s: directory tree deeper than %d levels", dir, maxTreeDepth)
	}
	if err := os.MkdirAll(local, 0o755); err != nil {
		return err
	}
	entries, err := cp.c.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("remote %s: %w", dir, err)
	}
	for _, st := range entries {
		name := st.Name()
		if err := checkEntryName(name); err != nil {
			return fmt.Errorf("remote %s: %w", dir, err)
		}
		rp := path.Join(dir, name)
		lp := filepath.Join(local, name)
		if err := under(cp.root, lp); err != nil {
			return fmt.Errorf("remote %s: %w", rp, err)
		}
		switch {
		case st.IsDir():
			if err := cp.walkRemote(rp, lp, depth+1, jobs); err != nil {
				return err
			}
		case st.Mode().IsRegular():
			j, err := cp.localJob(rp, lp, st)
			if err != nil {
				return err
			}
			*jobs = append(*jobs, j)
		case st.Mode()&fs.ModeSymlink != 0:
			cp.notice("skipping %s: symbolic link", rp)
		default:
			cp.notice("skipping %s: not a regular file", rp)
		}
	}
	return nil
}

// checkEntryName accepts only a name that is one element of a local path:
// not empty, ".", "..", and no "/", "\\" or NUL.
func checkEntryName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || !filepath.IsLocal(name) {
		return fmt.Errorf("%w: %q", ErrBadEntryName, name)
	}
	return nil
}

// under checks that p lies inside (or is) the directory root, lexically.
func under(root, p string) error {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return fmt.Errorf("%w: %s would be written outside %s", ErrBadEntryName, p, root)
	}
	return nil
}

// localJob decides where a download goes and where it resumes.
func (cp *copier) localJob(src, dst string, fi fs.FileInfo) (cpJob, error) {
	j := cpJob{src: src, dst: dst, size: fi.Size(), part: dst + PartSuffix, mode: fi.Mode().Perm()}
	if cp.opt.Resume {
		// Only the copy's own part file is continued; an existing DST is
		// replaced by rename at the end like any other copy.
		if pfi, err := os.Stat(j.part); err == nil && pfi.Mode().IsRegular() {
			j.off = min(pfi.Size(), j.size)
		}
	}
	return j, nil
}

// planUpload lists the files to send from local src to remote dst.
func (cp *copier) planUpload(src, dst string) ([]cpJob, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if rfi, err := cp.c.Stat(dst); err == nil && rfi.IsDir() {
		dst = path.Join(dst, filepath.Base(src))
	}
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", src)
		}
		j, err := cp.remoteJob(src, dst, fi)
		if err != nil {
			return nil, err
		}
		return []cpJob{j}, nil
	}
	if !cp.opt.Recursive {
		return nil, fmt.Errorf("%s: %w", src, ErrIsDirectory)
	}
	var jobs []cpJob
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		remote := path.Join(dst, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			if err := cp.c.MkdirAll(remote); err != nil {
				return fmt.Errorf("remote mkdir %s: %w", remote, err)
			}
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			j, err := cp.remoteJob(p, remote, fi)
			if err != nil {
				return err
			}
			jobs = append(jobs, j)
		case d.Type()&fs.ModeSymlink != 0:
			cp.notice("skipping %s: symbolic link", p)
		default:
			cp.notice("skipping %s: not a regular file", p)
		}
		return nil
	})
	return jobs, err
}

// remoteJob decides where an upload goes and where it resumes.
func (cp *copier) remoteJob(src, dst string, fi fs.FileInfo) (cpJob, error) {
	j := cpJob{src: src, dst: dst, size: fi.Size(), part: dst + PartSuffix, mode: fi.Mode().Perm()}
	if cp.opt.Resume {
		if pfi, err := cp.c.Stat(j.part); err == nil && pfi.Mode().IsRegular() {
			j.off = min(pfi.Size(), j.size)
		}
	}
	return j, nil
}

// get downloads one file.
func (cp *copier) get(j cpJob) error {
	flags := os.O_RDWR | os.O_CREATE // read: the resumed prefix is hashed
	if j.off == 0 {
		flags |= os.O_TRUNC
	}
	lf, err := os.OpenFile(j.part, flags, j.mode|0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if j.off > 0 {
		if j.off, err = cp.verifiedPrefix(lf, j.src, j.off); err != nil {
			return err
		}
		if err := lf.Truncate(j.off); err != nil {
			return err
		}
	}
	h, err := cp.prefixHash(lf, j.off)
	if err != nil {
		return err
	}
	if j.off < j.size {
		rf, err := cp.c.Open(j.src)
		if err != nil {
			return fmt.Errorf("remote %s: %w", j.src, err)
		}
		defer rf.Close()
		if _, err := rf.Seek(j.off, io.SeekStart); err != nil {
			return err
		}
		if _, err := rf.WriteTo(cp.counting(io.MultiWriter(lf, h))); err != nil {
			return fmt.Errorf("download %s: %w", j.src, err)
		}
	}
	// Durable before it takes the final name: a crash after the rename
	// must not leave a DST with a hole in it.
	if err := lf.Sync(); err != nil {
		return err
	}
	if err := lf.Close(); err != nil {
		return err
	}
	fi, err := os.Stat(j.part)
	if err != nil {
		return err
	}
	if fi.Size() != j.size {
		return fmt.Errorf("download %s: got %d bytes, want %d (the file changed?)", j.src, fi.Size(), j.size)
	}
	if err := cp.verify(h, j.part, j.src); err != nil {
		return err
	}
	if j.part != j.dst {
		if err := os.Rename(j.part, j.dst); err != nil {
			return err
		}
		syncDir(filepath.Dir(j.dst))
	}
	return nil
}

// syncDir makes a rename in dir durable; best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// put uploads one file.
func (cp *copier) put(j cpJob) error {
	lf, err := os.Open(j.src)
	if err != nil {
		return err
	}
	defer lf.Close()
	flags := os.O_WRONLY | os.O_CREATE
	if j.off == 0 {
		flags |= os.O_TRUNC
	}
	rf, err := cp.c.OpenFile(j.part, flags)
	if err != nil {
		return fmt.Errorf("remote %s: %w", j.part, err)
	}
	defer rf.Close()
	if j.off > 0 {
		if j.off, err = cp.verifiedPrefix(lf, j.part, j.off); err != nil {
			return err
		}
		if err := rf.Truncate(j.off); err != nil {
			return fmt.Errorf("remote %s: %w", j.part, err)
		}
	}
	h, err := cp.prefixHash(lf, j.off)
	if err != nil {
		return err
	}
	if j.off < j.size {
		if _, err := rf.Seek(j.off, io.SeekStart); err != nil {
			return err
		}
		if _, err := rf.ReadFromWithConcurrency(cp.countingReader(io.TeeReader(io.LimitReader(lf, j.size-j.off), h)), 0); err != nil {
			return fmt.Errorf("upload %s: %w", j.src, err)
		}
	}
	// fsync@openssh.com before the rename, when the server offers it, so
	// the final name never points at data still in the server's page cache.
	if err := rf.Sync(); err != nil {
		var se *sftp.StatusError
		if !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxOpUnsupported {
			return fmt.Errorf("upload %s: fsync: %w", j.src, err)
		}
	}
	if err := rf.Close(); err != nil {
		return fmt.Errorf("upload %s: %w", j.src, err)
	}
	_ = cp.c.Chmod(j.part, j.mode)
	if err := cp.verify(h, j.src, j.part); err != nil {
		return err
	}
	if j.part != j.dst {
		if err := cp.c.PosixRename(j.part, j.dst); err != nil {
			return fmt.Errorf("remote rename into %s: %w", j.dst, err)
		}
	}
	return nil
}

// prefixHash starts the SHA-256 of a transfer: it hashes the first off
// bytes of f (what an earlier run already moved) and leaves f positioned
// at off. The transfer feeds the rest through the hash as it goes, so the
// local side is never read twice. With no check to make it hashes nothing.
func (cp *copier) prefixHash(f *os.File, off int64) (hash.Hash, error) {
	if !cp.check {
		_, err := f.Seek(off, io.SeekStart)
		return discardHash{}, err
	}
	h := sha256.New()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if off > 0 {
		if _, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, off), make([]byte, 1<<20)); err != nil {
			return nil, err
		}
	}
	_, err := f.Seek(off, io.SeekStart)
	return h, err
}

// verify compares the SHA-256 of what was transferred (local) with the
// node's hash of the remote file, when the node offers check-file. It asks
// on the control session, which is already open.
func (cp *copier) verify(h hash.Hash, local, remote string) error {
	if !cp.check {
		return nil
	}
	_, rsum, err := cp.ctl.CheckFile(remote, "sha256")
	if err != nil {
		return fmt.Errorf("checksum of remote %s: %w", remote, err)
	}
	if lsum := h.Sum(nil); !bytes.Equal(lsum, rsum) {
		return fmt.Errorf("%w: %s has sha256 %s, remote %s has %s", ErrChecksumMismatch, local, hex.EncodeToString(lsum), remote, hex.EncodeToString(rsum))
	}
	return nil
}

// verifiedPrefix returns how much of the first off bytes of a resumed
// transfer both sides agree on, so a resume never continues over a hole
// or a damaged range: the node's server writes uploads with parallel
// workers, so after a crash the size of a partial file says nothing about
// which of its bytes arrived. local is the local side (the partial file
// of a download, the source of an upload), remote the remote side. It
// compares per-block SHA-256 of the prefix and returns the end of the
// last block before the first difference. Without check-file on the node
// the prefix is taken on trust, by size.
func (cp *copier) verifiedPrefix(local *os.File, remote string, off int64) (int64, error) {
	if !cp.hasCheck || off <= 0 {
		return off, nil
	}
	block := int64(1 << 20)
	if need := (off + MaxCheckBlocks - 1) / MaxCheckBlocks; need > block {
		block = (need + 64<<10 - 1) &^ (64<<10 - 1)
	}
	if block > 1<<31 { // beyond 2 TiB: check what one request covers
		block = 1 << 31
		off = min(off, block*MaxCheckBlocks)
	}
	_, sums, err := cp.ctl.CheckRange(remote, 0, off, uint32(block), "sha256")
	if err != nil {
		return 0, fmt.Errorf("check the resumed part of %s: %w", remote, err)
	}
	buf := make([]byte, 1<<20)
	var good int64
	for i, want := range sums {
		start := int64(i) * block
		n := min(block, off-start)
		if n <= 0 {
			break
		}
		h := sha256.New()
		got, err := io.CopyBuffer(h, io.NewSectionReader(local, start, n), buf)
		if err != nil {
			return 0, err
		}
		if got != n || !bytes.Equal(h.Sum(nil), want) {
			break
		}
		good = start + n
	}
	if good < off {
		cp.notice("%s: only the first %d of %d bytes already copied match; resuming from there", remote, good, off)
	}
	return good, nil
}

// discardHash stands in when nothing is verified.
type discardHash struct{}

func (discardHash) Write(p []byte) (int, error) { return len(p), nil }
func (discardHash) Sum(b []byte) []byte         { return b }
func (discardHash) Reset()                      {}
func (discardHash) Size() int                   { return 0 }
func (discardHash) BlockSize() int              { return 1 }

// counting and countingReader report moved bytes.
func (cp *copier) counting(w io.Writer) io.Writer {
	if cp.opt.Moved == nil {
		return struct{ io.Writer }{w}
	}
	return &countWriter{w: w, moved: cp.opt.Moved}
}

func (cp *copier) countingReader(r io.Reader) io.Reader {
	if cp.opt.Moved == nil {
		return r
	}
	return &countReader{r: r, moved: cp.opt.Moved}
}

type countWriter struct {
	w     io.Writer
	moved func(int)
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.moved(n)
	return n, err
}

type countReader struct {
	r     io.Reader
	moved func(int)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.moved(n)
	return n, err
}
