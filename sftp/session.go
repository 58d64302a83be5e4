package sftp

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/pkg/sftp"
)

// session is one SFTP session. Packets from the client pass through a
// thin layer before pkg/sftp's request server sees them: it enforces the
// packet size limit and the idle timeout, answers INIT with our own
// extension list and serves the extensions pkg/sftp does not have
// (limits, fsync, check-file). Responses from pkg/sftp are written one
// whole packet at a time, so ours interleave safely.
type session struct {
	srv      *Server
	root     *os.Root
	id       *core.Identity
	canWrite bool
	rw       io.ReadWriteCloser
	log      *slog.Logger

	peer    *peerUse     // this peer's sessions and handles on the server
	open    atomic.Int64 // open handles
	last    atomic.Int64 // unix nanos of the last packet in or out
	idle    atomic.Bool
	closeMu sync.Once

	outMu sync.Mutex // serializes writes to rw
	// pending maps the request id of an OPEN to its path until the
	// reply; handles maps a file handle to the path it opened.
	mapMu   sync.Mutex
	pending map[uint32]string
	handles map[string]string
	// perms queues, per client path, the permissions of OPENs with CREAT
	// that carried them, until the open runs (takeOpenPerm).
	perms  map[string][]fs.FileMode
	nperms int

	ext    sync.WaitGroup
	extSem chan struct{} // bounds extension requests in flight

	// ctx ends when the session is stopped (closed, idle, the server
	// closing, the connection or stream gone): extension work such as
	// hashing stops with it. A half-close by the client does not end it,
	// so requests already sent are still answered.
	ctx    context.Context
	cancel context.CancelFunc
}

// maxExtInFlight bounds the extension requests (hashing, fsync) one
// session runs at once; further ones wait, and so does reading.
const maxExtInFlight = 4

func newSession(ctx context.Context, srv *Server, root *os.Root, id *core.Identity, peer *peerUse, rw io.ReadWriteCloser) *session {
	ctx, cancel := context.WithCancel(ctx)
	s := &session{
		ctx: ctx, cancel: cancel, peer: peer,
		srv: srv, root: root, id: id, rw: rw,
		canWrite: id.HasScope(ScopeWrite) && !srv.cfg.ReadOnly,
		log:      srv.log.With("peer", id.ID),
		pending:  map[uint32]string{},
		handles:  map[string]string{},
		perms:    map[string][]fs.FileMode{},
		extSem:   make(chan struct{}, maxExtInFlight),
	}
	s.touch()
	return s
}

func (s *session) touch() { s.last.Store(time.Now().UnixNano()) }

func (s *session) closeRW() {
	s.cancel()
	s.closeMu.Do(func() { _ = s.rw.Close() })
}

// serve runs the session until the client ends it or it is stopped.
func (s *session) serve(ctx context.Context) error {
	defer s.closeRW()
	stop := context.AfterFunc(ctx, s.closeRW)
	defer stop()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-s.srv.done:
			s.closeRW()
		case <-finished:
		}
	}()
	if d := s.srv.cfg.IdleTimeout; d > 0 {
		var t *time.Timer
		t = time.AfterFunc(d, func() {
			left := d - time.Since(time.Unix(0, s.last.Load()))
			if left > 0 {
				t.Reset(left)
				return
			}
			s.idle.Store(true)
			s.closeRW()
		})
		defer t.Stop()
	}

	pr, pw := io.Pipe()
	out := &packetWriter{s: s}
	rs := sftp.NewRequestServer(struct {
		io.Reader
		io.WriteCloser
	}{pr, out}, sftp.Handlers{FileGet: (*fsHandler)(s), FilePut: (*fsHandler)(s), FileCmd: (*fsHandler)(s), FileList: (*fsHandler)(s)},
		sftp.WithRSMaxTxPacket(uint32(s.srv.cfg.MaxPacket-1024)))
	served := make(chan error, 1)
	go func() {
		err := rs.Serve()
		_ = pr.CloseWithError(io.ErrClosedPipe)
		served <- err
	}()

	rerr := s.readLoop(pw)
	if !errors.Is(rerr, io.EOF) {
		s.cancel() // the client is gone: stop work nobody will read
	}
	_ = pw.Close()
	serr := <-served
	s.ext.Wait()
	s.cancel()

	switch {
	case s.idle.Load():
		return ErrIdle
	case errors.Is(rerr, ErrPacketTooLarge), errors.Is(rerr, ErrBadPacket):
		return rerr
	case errors.Is(rerr, io.EOF) || errors.Is(rerr, net.ErrClosed) || errors.Is(rerr, io.ErrClosedPipe):
	case ctx.Err() != nil:
		return nil
	default:
		if _, ok := core.AsCloseError(rerr); !ok {
			return rerr
		}
	}
	if serr != nil && !errors.Is(serr, io.EOF) && !errors.Is(serr, io.ErrClosedPipe) {
		return serr
	}
	return nil
}

// readLoop reads client packets and dispatches them until rw ends.
func (s *session) readLoop(pw *io.PipeWriter) error {
	buf := make([]byte, 0, 64<<10)
	for {
		p, err := readPacket(s.rw, buf, s.srv.cfg.MaxPacket)
		if err != nil {
			if errors.Is(err, ErrPacketTooLarge) || errors.Is(err, ErrBadPacket) {
				s.log.Warn("sftp session refused", "err", err)
			}
			return err
		}
		buf = p[:0]
		s.touch()
		head, herr := parseHead(p)
		switch {
		case herr != nil:
			// Malformed: pkg/sftp answers it (BAD_MESSAGE) or ends the session.
		case head.typ == fxpInit:
			if err := s.writePacket(s.versionPacket()); err != nil {
				return err
			}
			continue
		case head.typ == fxpOpen:
			s.mapMu.Lock()
			s.pending[head.id] = head.name
			if perm, ok := openPerm(head.args); ok && s.nperms < maxQueuedPerms {
				k := clientPath(head.name)
				s.perms[k] = append(s.perms[k], perm)
				s.nperms++
			}
			s.mapMu.Unlock()
		case head.typ == fxpClose:
			s.mapMu.Lock()
			delete(s.handles, head.name)
			s.mapMu.Unlock()
		case head.typ == fxpExtended:
			if h := s.extension(head.name); h != nil {
				id, args := head.id, append([]byte(nil), head.args...)
				s.extSem <- struct{}{}
				s.ext.Add(1)
				go func() {
					defer s.ext.Done()
					defer func() { <-s.extSem }()
					if err := s.writePacket(h(s, id, args)); err != nil {
						s.closeRW()
					}
				}()
				continue
			}
		}
		if _, err := pw.Write(p); err != nil {
			return err
		}
	}
}

// requestHead is what the session reads of a client packet before
// pkg/sftp sees it: the type, and for OPEN, CLOSE and EXTENDED the request
// id and the first string (file name, handle, extension name); args is
// what follows that string.
type requestHead struct {
	typ  byte
	id   uint32
	name string
	args []byte // aliases the packet
}

// parseHead decodes the head of a whole packet p (length prefix
// included, at least 5 bytes, as readPacket returns it). Types other than
// INIT, OPEN, CLOSE and EXTENDED are not looked into. ErrBadPacket means
// the body is too short for the id and the string it declares.
func parseHead(p []byte) (requestHead, error) {
	if len(p) < 5 {
		return requestHead{}, ErrBadPacket
	}
	h := requestHead{typ: p[4]}
	switch h.typ {
	case fxpOpen, fxpClose, fxpExtended:
		d := decoder{b: p[5:]}
		h.id = d.u32()
		h.name = d.str()
		if d.err != nil {
			return requestHead{typ: h.typ}, d.err
		}
		h.args = d.b
	}
	return h, nil
}

// maxQueuedPerms bounds the open permissions a session remembers; past
// it, files are created 0644.
const maxQueuedPerms = 1024

// SFTP v3 open flags and attribute flags openPerm reads.
const (
	fxfCreat       = 0x08
	attrSize       = 0x01
	attrUIDGID     = 0x02
	attrPermission = 0x04
)

// openPerm reads the permissions an OPEN asks a created file to get, from
// what follows its file name: uint32 pflags, uint32 attribute flags, the
// attributes. ok is false unless it has CREAT and permissions.
func openPerm(args []byte) (fs.FileMode, bool) {
	d := decoder{b: args}
	pflags := d.u32()
	aflags := d.u32()
	if d.err != nil || pflags&fxfCreat == 0 || aflags&attrPermission == 0 {
		return 0, false
	}
	if aflags&attrSize != 0 {
		d.u64()
	}
	if aflags&attrUIDGID != 0 {
		d.u32()
		d.u32()
	}
	mode := d.u32()
	if d.err != nil {
		return 0, false
	}
	return fs.FileMode(mode) & fs.ModePerm, true
}

// takeOpenPerm returns the permissions the oldest pending OPEN of p asked
// for, or 0644.
func (s *session) takeOpenPerm(p string) fs.FileMode {
	k := clientPath(p)
	s.mapMu.Lock()
	defer s.mapMu.Unlock()
	q := s.perms[k]
	if len(q) == 0 {
		return 0o644
	}
	perm := q[0]
	if len(q) == 1 {
		delete(s.perms, k)
	} else {
		s.perms[k] = q[1:]
	}
	s.nperms--
	return perm
}

// writePacket writes one whole packet to the client.
func (s *session) writePacket(p []byte) error {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	_, err := s.rw.Write(p)
	s.touch()
	return err
}

// versionPacket is our SSH_FXP_VERSION: v3 and the extensions served.
func (s *session) versionPacket() []byte {
	e := &encoder{b: make([]byte, 4, 256)}
	e.u8(fxpVersion)
	e.u32(protocolVersion)
	for _, x := range s.extensionList() {
		e.str(x[0])
		e.str(x[1])
	}
	return e.bytes()
}

// packetWriter takes pkg/sftp's output (a packet may arrive in several
// writes) and passes it on one whole packet at a time, noting the handles
// of files it opens.
type packetWriter struct {
	s   *session
	buf []byte
}

func (w *packetWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	off := 0
	for len(w.buf)-off >= 4 {
		n := int(binary.BigEndian.Uint32(w.buf[off:])) + 4
		if len(w.buf)-off < n {
			break
		}
		pkt := w.buf[off : off+n]
		w.observe(pkt)
		if err := w.s.writePacket(pkt); err != nil {
			w.buf = w.buf[:0]
			return 0, err
		}
		off += n
	}
	w.buf = w.buf[:copy(w.buf, w.buf[off:])]
	return len(p), nil
}

// observe records the handle returned for an OPEN.
func (w *packetWriter) observe(pkt []byte) {
	if len(pkt) < 9 {
		return
	}
	typ := pkt[4]
	if typ != fxpHandle && typ != fxpStatus {
		return
	}
	d := decoder{b: pkt[5:]}
	id := d.u32()
	s := w.s
	s.mapMu.Lock()
	defer s.mapMu.Unlock()
	name, ok := s.pending[id]
	if !ok {
		return
	}
	delete(s.pending, id)
	if typ == fxpHandle {
		if h := d.str(); d.err == nil {
			s.handles[h] = name
		}
	}
}

// Close is called by pkg/sftp when it gives up on the session.
func (w *packetWriter) Close() error {
	w.s.closeRW()
	return nil
}
