package main

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
	"time"

	"github.com/alkdev/alknet/core"
	alksftp "github.com/alkdev/alknet/sftp"
	"github.com/pkg/sftp"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// partSuffix names the file a transfer writes before renaming it into
// place; --resume continues it.
const partSuffix = ".alknet-part"

// cpEnd is one side of alknet cp.
type cpEnd struct {
	remote bool
	addr   string // node address, when remote
	path   string
}

// parseCpArg splits ADDR:/path (ADDR = <nodeid>@<host>:<port>, the host
// possibly a bracketed IPv6 address) or alknet://ADDR/path from a local
// path. Anything whose part before "@" is not a node id is local.
func parseCpArg(s string) (cpEnd, error) {
	if strings.HasPrefix(s, "alknet://") {
		a, p, err := core.ParseURL(s)
		if err != nil {
			return cpEnd{}, err
		}
		if p == "" {
			p = "/"
		}
		return cpEnd{remote: true, addr: a.String(), path: p}, nil
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 {
		return cpEnd{path: s}, nil
	}
	if _, err := core.ParseNodeID(s[:at]); err != nil {
		return cpEnd{path: s}, nil
	}
	rest := s[at+1:]
	var hostEnd int
	if strings.HasPrefix(rest, "[") {
		i := strings.IndexByte(rest, ']')
		if i < 0 {
			return cpEnd{}, fmt.Errorf("%q: unterminated [ in the address", s)
		}
		hostEnd = i + 1
	} else {
		hostEnd = strings.IndexByte(rest, ':')
		if hostEnd < 0 {
			return cpEnd{}, fmt.Errorf("%q: want <nodeid>@<host>:<port>:/path", s)
		}
	}
	if hostEnd >= len(rest) || rest[hostEnd] != ':' {
		return cpEnd{}, fmt.Errorf("%q: want <nodeid>@<host>:<port>:/path", s)
	}
	portAndPath := rest[hostEnd+1:]
	colon := strings.IndexByte(portAndPath, ':')
	if colon < 0 {
		return cpEnd{}, fmt.Errorf("%q: missing :/path after the port", s)
	}
	port := portAndPath[:colon]
	if port == "" || strings.Trim(port, "0123456789") != "" {
		return cpEnd{}, fmt.Errorf("%q: bad port %q", s, port)
	}
	addr := s[:at+1] + rest[:hostEnd] + ":" + port
	if _, err := core.ParseAddr(addr); err != nil {
		return cpEnd{}, err
	}
	p := portAndPath[colon+1:]
	if p == "" {
		p = "/"
	}
	return cpEnd{remote: true, addr: addr, path: p}, nil
}

type cpOptions struct {
	recursive, resume, quiet, noVerify bool
	keyFile                            string
}

func newCpCmd(g *globals) *cobra.Command {
	var o cpOptions
	cmd := &cobra.Command{
		Use:   "cp [-r] [--resume] SRC DST",
		Short: "Copy files to or from a node over alknet/sftp",
		Long: `Copy files between this machine and a node's alknet/sftp service. One of
SRC and DST is remote, written ADDR:/path (ADDR = <nodeid>@<host>:<port>;
IPv6 hosts in brackets: <nodeid>@[::1]:4433:/path) or alknet://ADDR/path.

Like cp, a DST that is an existing directory receives SRC inside it. Data
goes to DST.alknet-part and is renamed into place when complete, so DST is
never half-written. --resume continues a DST.alknet-part left by an earlier
run, from the longest prefix whose per-block SHA-256 both sides agree on
(when the node offers check-file; by size otherwise); an existing DST is
never resumed into, only replaced. When the node offers check-file, the
SHA-256 of both sides is compared at the end; a mismatch is an error.
An interrupted copy (SIGINT, SIGTERM) exits with status 130.

A progress bar (bytes, rate, ETA) is shown when stderr is a terminal.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.runCp(cmd.Context(), args[0], args[1], o)
		},
	}
	cmd.Flags().BoolVarP(&o.recursive, "recursive", "r", false, "copy directories recursively")
	cmd.Flags().BoolVar(&o.resume, "resume", false, "continue the .alknet-part files of an earlier run")
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "no progress bar")
	cmd.Flags().BoolVar(&o.noVerify, "no-verify", false, "skip the checksum comparison")
	cmd.Flags().StringVar(&o.keyFile, "key", "", "ed25519 private key to present (default: the data directory's identity)")
	return cmd
}

// copier runs one alknet cp.
type copier struct {
	g        *globals
	opt      cpOptions
	ctl      *alksftp.Control // the control session: limits and checksums
	c        *sftp.Client
	hasCheck bool // the node offers check-file
	check    bool // ... and the copy is verified (no --no-verify)
	bar      *progressbar.ProgressBar
	upload   bool
	root     string // local destination of a recursive download
}

// cpJob is one regular file to copy.
type cpJob struct {
	src, dst string // dst is the final name
	size     int64
	part     string // where data is written (dst.alknet-part or dst)
	off      int64  // resume offset
	mode     fs.FileMode
}

func (g *globals) runCp(ctx context.Context, srcArg, dstArg string, o cpOptions) error {
	src, err := parseCpArg(srcArg)
	if err != nil {
		return err
	}
	dst, err := parseCpArg(dstArg)
	if err != nil {
		return err
	}
	if src.remote == dst.remote {
		return errors.New("one of SRC and DST must be remote (ADDR:/path) and the other local")
	}
	remote := src
	if dst.remote {
		remote = dst
	}
	d, err := g.newDialer(o.keyFile)
	if err != nil {
		return err
	}
	defer d.Close()
	conn, err := d.dial(ctx, remote.addr, alksftp.ALPN)
	if err != nil {
		return describe(err)
	}
	defer conn.Close(core.CodeOK, "")
	stop := context.AfterFunc(ctx, func() { _ = conn.Close(core.CodeOK, "interrupted") })
	defer stop()

	// The control session stays open for the whole copy: limits, resume
	// checks and the final checksums go over it, so a node that starts to
	// drain (and accepts no new streams) still lets the copy finish.
	cst, err := conn.OpenStream(ctx)
	if err != nil {
		return describe(err)
	}
	defer cst.Close()
	ctl, err := alksftp.NewControl(cst)
	if err != nil {
		return describe(err)
	}
	packet := 32 << 10
	if l, err := ctl.Limits(); err == nil && l.MaxRead > 0 && l.MaxWrite > 0 {
		packet = int(min(l.MaxRead, l.MaxWrite, 1<<20))
	}
	st, err := conn.OpenStream(ctx)
	if err != nil {
		return describe(err)
	}
	c, err := sftp.NewClientPipe(st, st,
		sftp.MaxPacketUnchecked(packet),
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(64),
	)
	if err != nil {
		return describe(err)
	}
	defer c.Close()
	_, hasCheck := ctl.Extension("check-file")
	cp := &copier{g: g, opt: o, ctl: ctl, c: c, hasCheck: hasCheck, check: hasCheck && !o.noVerify, upload: dst.remote}
	var jobs []cpJob
	if cp.upload {
		jobs, err = cp.planUpload(src.path, dst.path)
	} else {
		jobs, err = cp.planDownload(src.path, dst.path)
	}
	if err != nil {
		return cp.fail(ctx, err)
	}
	var total int64
	for _, j := range jobs {
		total += j.size - j.off
	}
	cp.bar = g.progressBar(total, o.quiet)
	for _, j := range jobs {
		if cp.bar != nil {
			cp.bar.Describe(path.Base(filepath.ToSlash(j.dst)))
		}
		if cp.upload {
			err = cp.put(ctx, j)
		} else {
			err = cp.get(ctx, j)
		}
		if err != nil {
			return cp.fail(ctx, err)
		}
	}
	if cp.bar != nil {
		_ = cp.bar.Finish()
	}
	return nil
}

// fail prefers "interrupted" over the errors a closed connection causes.
func (cp *copier) fail(ctx context.Context, err error) error {
	if cp.bar != nil {
		_ = cp.bar.Exit()
		fmt.Fprintln(cp.g.stderr)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(cp.g.stderr, "alknet: interrupted; run again with --resume to continue")
		return exitCode(130) // 128 + SIGINT, as shells report it
	}
	return describe(err)
}

// progressBar returns a byte progress bar on stderr, or nil when stderr
// is not a terminal or quiet is set.
func (g *globals) progressBar(total int64, quiet bool) *progressbar.ProgressBar {
	f, ok := g.stderr.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(f) }),
	)
}

// skip says on stderr that a file of the tree is left out, so a copy
// is never silently partial. It runs before the progress bar starts.
func (cp *copier) skip(format string, args ...any) {
	fmt.Fprintf(cp.g.stderr, "alknet: "+format+"\n", args...)
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
	if !cp.opt.recursive {
		return nil, fmt.Errorf("remote %s is a directory (use -r)", src)
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
			cp.skip("skipping %s: symbolic link", rp)
		default:
			cp.skip("skipping %s: not a regular file", rp)
		}
	}
	return nil
}

// errBadEntryName refuses a name in a remote listing that is not one path
// element. pkg/sftp drops "." and ".." and keeps only the last element of
// every other name, so "x/.." arrives here as ".." (CVE-2019-6111 style).
var errBadEntryName = errors.New("refusing a file name the node sent")

// checkEntryName accepts only a name that is one element of a local path:
// not empty, ".", "..", and no "/", "\\" or NUL.
func checkEntryName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || !filepath.IsLocal(name) {
		return fmt.Errorf("%w: %q", errBadEntryName, name)
	}
	return nil
}

// under checks that p lies inside (or is) the directory root, lexically.
func under(root, p string) error {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return fmt.Errorf("%w: %s would be written outside %s", errBadEntryName, p, root)
	}
	return nil
}

// localJob decides where a download goes and where it resumes.
func (cp *copier) localJob(src, dst string, fi fs.FileInfo) (cpJob, error) {
	j := cpJob{src: src, dst: dst, size: fi.Size(), part: dst + partSuffix, mode: fi.Mode().Perm()}
	if cp.opt.resume {
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
	if !cp.opt.recursive {
		return nil, fmt.Errorf("%s is a directory (use -r)", src)
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
			cp.skip("skipping %s: symbolic link", p)
		default:
			cp.skip("skipping %s: not a regular file", p)
		}
		return nil
	})
	return jobs, err
}

// remoteJob decides where an upload goes and where it resumes.
func (cp *copier) remoteJob(src, dst string, fi fs.FileInfo) (cpJob, error) {
	j := cpJob{src: src, dst: dst, size: fi.Size(), part: dst + partSuffix, mode: fi.Mode().Perm()}
	if cp.opt.resume {
		if pfi, err := cp.c.Stat(j.part); err == nil && pfi.Mode().IsRegular() {
			j.off = min(pfi.Size(), j.size)
		}
	}
	return j, nil
}

// get downloads one file.
func (cp *copier) get(ctx context.Context, j cpJob) error {
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
func (cp *copier) put(ctx context.Context, j cpJob) error {
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
		return fmt.Errorf("checksum mismatch: %s has sha256 %s, remote %s has %s", local, hex.EncodeToString(lsum), remote, hex.EncodeToString(rsum))
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
	if need := (off + alksftp.MaxCheckBlocks - 1) / alksftp.MaxCheckBlocks; need > block {
		block = (need + 64<<10 - 1) &^ (64<<10 - 1)
	}
	if block > 1<<31 { // beyond 2 TiB: check what one request covers
		block = 1 << 31
		off = min(off, block*alksftp.MaxCheckBlocks)
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
		fmt.Fprintf(cp.g.stderr, "alknet: %s: only the first %d of %d bytes already copied match; resuming from there\n", remote, good, off)
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

// counting and countingReader advance the progress bar.
func (cp *copier) counting(w io.Writer) io.Writer {
	if cp.bar == nil {
		return writerOnly{w}
	}
	return &countWriter{w: w, bar: cp.bar}
}

func (cp *copier) countingReader(r io.Reader) io.Reader {
	if cp.bar == nil {
		return r
	}
	return &countReader{r: r, bar: cp.bar}
}

type countWriter struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	_ = c.bar.Add(n)
	return n, err
}

type countReader struct {
	r   io.Reader
	bar *progressbar.ProgressBar
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	_ = c.bar.Add(n)
	return n, err
}
