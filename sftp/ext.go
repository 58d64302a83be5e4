package sftp

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"io"
	"os"
	"strings"
)

// Extension names this package serves itself (pkg/sftp serves
// posix-rename, statvfs and hardlink through the handlers).
const (
	extLimits          = "limits@openssh.com"
	extFsync           = "fsync@openssh.com"
	extCheckFile       = "check-file"
	extCheckFileName   = "check-file-name"
	extCheckFileHandle = "check-file-handle"
)

// checkFileAlgorithms lists the hashes of check-file, preferred first.
var checkFileAlgorithms = []string{"sha256", "sha512", "sha1", "md5"}

func newHash(name string) hash.Hash {
	switch name {
	case "sha256":
		return sha256.New()
	case "sha512":
		return sha512.New()
	case "sha1":
		return sha1.New()
	case "md5":
		return md5.New()
	}
	return nil
}

// extensionList is what SSH_FXP_VERSION advertises.
func (s *session) extensionList() [][2]string {
	l := [][2]string{
		{"posix-rename@openssh.com", "1"},
		{"hardlink@openssh.com", "1"},
		{extFsync, "1"},
		{extLimits, "1"},
	}
	if haveStatVFS {
		l = append(l, [2]string{"statvfs@openssh.com", "2"})
	}
	if s.srv.cfg.MaxChecksumLength > 0 {
		l = append(l, [2]string{extCheckFile, strings.Join(checkFileAlgorithms, ",")})
	}
	return l
}

// extHandler answers one extended request with a whole reply packet.
type extHandler func(s *session, id uint32, args []byte) []byte

// extension returns the handler of an extended request we serve, or nil
// to let pkg/sftp answer it.
func (s *session) extension(name string) extHandler {
	switch name {
	case extLimits:
		return (*session).limits
	case extFsync:
		return (*session).fsync
	case extCheckFileName, extCheckFileHandle:
		if s.srv.cfg.MaxChecksumLength <= 0 {
			return nil
		}
		if name == extCheckFileName {
			return (*session).checkFileName
		}
		return (*session).checkFileHandle
	}
	return nil
}

// limits answers limits@openssh.com: max packet, read and write lengths
// and open handles (0 = no limit).
func (s *session) limits(id uint32, _ []byte) []byte {
	e := newPacket(fxpExtendedReply, id)
	mp := uint64(s.srv.cfg.MaxPacket)
	e.u64(mp)
	e.u64(mp - 1024)
	e.u64(mp - 1024)
	e.u64(uint64(max(s.srv.cfg.MaxHandles, 0)))
	return e.bytes()
}

// handlePath returns the path a file handle was opened with.
func (s *session) handlePath(h string) (string, bool) {
	s.mapMu.Lock()
	defer s.mapMu.Unlock()
	p, ok := s.handles[h]
	return p, ok
}

// fsync answers fsync@openssh.com. On Linux fsync flushes the inode
// whatever descriptor it is called on, so the file is reopened by the path
// its handle was opened with.
func (s *session) fsync(id uint32, args []byte) []byte {
	d := decoder{b: args}
	h := d.str()
	if d.err != nil {
		return statusPacket(id, fxBadMessage, "malformed request")
	}
	p, ok := s.handlePath(h)
	if !ok {
		return statusPacket(id, fxFailure, "invalid handle")
	}
	name, err := resolve(p)
	if err != nil {
		return errorPacket(id, err)
	}
	f, err := s.root.OpenFile(name, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return errorPacket(id, fsError(err))
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return errorPacket(id, fsError(err))
	}
	return statusPacket(id, fxOK, "")
}

func (s *session) checkFileName(id uint32, args []byte) []byte {
	d := decoder{b: args}
	p := d.str()
	return s.checkFile(id, p, &d)
}

func (s *session) checkFileHandle(id uint32, args []byte) []byte {
	d := decoder{b: args}
	h := d.str()
	if d.err != nil {
		return statusPacket(id, fxBadMessage, "malformed request")
	}
	p, ok := s.handlePath(h)
	if !ok {
		return statusPacket(id, fxFailure, "invalid handle")
	}
	return s.checkFile(id, p, &d)
}

// checkFile hashes a range of a file (draft-ietf-secsh-filexfer-09,
// section 9.1.2; see SPEC.md). d is positioned at the algorithm list.
func (s *session) checkFile(id uint32, p string, d *decoder) []byte {
	algs := d.str()
	start := d.u64()
	length := d.u64()
	block := d.u32()
	if d.err != nil {
		return statusPacket(id, fxBadMessage, "malformed request")
	}
	alg := ""
	for _, a := range strings.Split(algs, ",") {
		if newHash(a) != nil {
			alg = a
			break
		}
	}
	if alg == "" {
		return statusPacket(id, fxOpUnsupported, "no supported hash algorithm")
	}
	if block != 0 && block < 256 {
		return statusPacket(id, fxFailure, "block size below 256")
	}
	name, err := resolve(p)
	if err != nil {
		return errorPacket(id, err)
	}
	f, err := (*fsHandler)(s).openRegular(name, os.O_RDONLY, 0)
	if err != nil {
		return errorPacket(id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return errorPacket(id, fsError(err))
	}
	size := uint64(fi.Size())
	if start > size {
		return statusPacket(id, fxFailure, "start offset beyond end of file")
	}
	if length == 0 || length > size-start {
		length = size - start
	}
	if int64(length) > s.srv.cfg.MaxChecksumLength || int64(length) < 0 {
		return statusPacket(id, fxFailure, "range too large to hash")
	}
	e := newPacket(fxpExtendedReply, id)
	e.str(extCheckFile)
	e.str(alg)
	// Hashing stops as soon as the session ends: nobody would read the
	// answer, and a drain must not wait for gigabytes of it.
	r := ctxReader{ctx: s.ctx, r: io.NewSectionReader(f, int64(start), int64(length))}
	buf := make([]byte, 256<<10)
	if block == 0 { // one hash over the whole range
		h := newHash(alg)
		if _, err := io.CopyBuffer(h, r, buf); err != nil {
			return errorPacket(id, fsError(err))
		}
		e.raw(h.Sum(nil))
		return e.bytes()
	}
	// One hash per block; cap the reply at one packet.
	hlen := newHash(alg).Size()
	blocks := (length + uint64(block) - 1) / uint64(block)
	if length == 0 {
		blocks = 1
	}
	if blocks*uint64(hlen) > uint64(s.srv.cfg.MaxPacket-64) {
		return statusPacket(id, fxFailure, "too many blocks for one reply")
	}
	for i := uint64(0); i < blocks; i++ {
		h := newHash(alg)
		if _, err := io.CopyBuffer(h, io.LimitReader(r, int64(block)), buf); err != nil {
			return errorPacket(id, fsError(err))
		}
		e.raw(h.Sum(nil))
	}
	return e.bytes()
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, errSessionEnded
	}
	return c.r.Read(p)
}

// errorPacket turns a handler error into a status reply.
func errorPacket(id uint32, err error) []byte {
	var se *statusError
	if !errors.As(err, &se) {
		se = errFailure.(*statusError)
	}
	code := uint32(fxFailure)
	switch {
	case errors.Is(se.code, errNoSuchFileCode):
		code = fxNoSuchFile
	case errors.Is(se.code, errPermissionCode):
		code = fxPermission
	case errors.Is(se.code, errBadMessageCode):
		code = fxBadMessage
	case errors.Is(se.code, errUnsupportedCode):
		code = fxOpUnsupported
	}
	return statusPacket(id, code, se.msg)
}
