package fs

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
)

// Server serves a Store on ALPN alknet/fs. Each stream carries requests
// one after another (SPEC.md); a connection may run many streams at once.
type Server struct {
	cfg   Config
	store *Store
	log   *slog.Logger

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	done   chan struct{}
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("alknet/fs: Config.Store is required")
	}
	cfg = cfg.withDefaults()
	return &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger, done: make(chan struct{})}, nil
}

// ALPN implements core.ProtocolHandler.
func (s *Server) ALPN() []string { return []string{ALPN} }

// SingleStream implements core.SingleStreamer: streams are independent,
// so the server works over a TCP+TLS connection too.
func (s *Server) SingleStream() bool { return true }

// Close stops accepting streams and waits for running requests.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func peerName(id *core.Identity) string {
	if id == nil {
		return "anonymous"
	}
	return id.ID
}

// ServeConn implements core.ProtocolHandler.
func (s *Server) ServeConn(ctx context.Context, conn core.Conn) error {
	id := conn.Identity()
	log := s.log.With("alpn", ALPN, "remote", conn.RemoteAddr().String(), "peer", peerName(id))
	if !s.cfg.Public && !id.HasScope(ScopeRead) {
		log.Warn("fs refused", "fingerprint", conn.RemoteID().Fingerprint(), "err", "missing scope fs")
		_ = conn.Close(core.CodeForbidden, "peer not authorized for "+ALPN+": missing scope fs")
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := 0; ; n++ {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = st.Close()
			return ErrClosed
		}
		s.wg.Add(1)
		s.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.wg.Done()
			defer st.Close()
			s.ServeStream(ctx, st, id, log.With("stream", n))
		}()
	}
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 256<<10) }}
)

// deadliner is the part of net.Conn the idle timeout needs.
type deadliner interface{ SetReadDeadline(time.Time) error }

// ServeStream serves the requests on one stream with the permissions of
// id until the peer ends its side, an error ends the stream or ctx is
// done. It closes rw only when ctx is done (to stop a blocked read or
// write); otherwise closing it is the caller's.
func (s *Server) ServeStream(ctx context.Context, rw io.ReadWriter, id *core.Identity, log *slog.Logger) {
	if log == nil {
		log = s.log
	}
	stop := context.AfterFunc(ctx, func() {
		if c, ok := rw.(io.Closer); ok {
			_ = c.Close()
		}
	})
	defer stop()
	r := readerPool.Get().(*bufio.Reader)
	r.Reset(rw)
	w := writerPool.Get().(*bufio.Writer)
	w.Reset(rw)
	defer func() {
		r.Reset(nil)
		w.Reset(nil)
		readerPool.Put(r)
		writerPool.Put(w)
	}()
	dl, _ := rw.(deadliner)
	for {
		if dl != nil && s.cfg.IdleTimeout > 0 {
			_ = dl.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		}
		req, err := readRequest(r)
		if errors.Is(err, io.EOF) {
			return
		}
		if errors.Is(err, errNoRequest) {
			log.Debug("fs stream ended", "err", err)
			return
		}
		if dl != nil {
			_ = dl.SetReadDeadline(time.Time{})
		}
		if err != nil {
			log.Info("fs bad request", "err", err)
			_ = writeError(w, statusOf(err), err.Error())
			return
		}
		start := time.Now()
		keep, err := s.serve(ctx, req, id, r, rw, w)
		if err != nil {
			code := statusOf(err)
			msg := err.Error()
			if code == statusInternal {
				log.Info("fs request failed", "op", opName(req.op), "err", err)
				msg = ErrInternal.Error()
			} else {
				log.Debug("fs request refused", "op", opName(req.op), "code", code, "err", err)
			}
			if !keep {
				// The response may be half written; the stream cannot be
				// resynchronized.
				return
			}
			if werr := writeError(w, code, msg); werr != nil {
				return
			}
			if req.op == opPut {
				return // the PUT body was not read
			}
			continue
		}
		log.Debug("fs request", "op", opName(req.op), "dur", time.Since(start))
	}
}

func opName(op byte) string {
	switch op {
	case opGet:
		return "get"
	case opHas:
		return "has"
	case opPut:
		return "put"
	case opTag:
		return "tag"
	case opUntag:
		return "untag"
	case opList:
		return "list"
	}
	return fmt.Sprintf("op%d", op)
}

func (s *Server) canRead(id *core.Identity) error {
	if s.cfg.Public || id.HasScope(ScopeRead) {
		return nil
	}
	return fmt.Errorf("%w: reading needs scope %s", ErrForbidden, ScopeRead)
}

func (s *Server) canWrite(id *core.Identity) error {
	if s.cfg.ReadOnly {
		return fmt.Errorf("%w: this node serves blobs read-only", ErrReadOnly)
	}
	if !id.HasScope(ScopeWrite) {
		return fmt.Errorf("%w: writing needs scope %s", ErrForbidden, ScopeWrite)
	}
	return nil
}

// serve runs one request. An error with keep=true has not written any of
// the response, so an error response may follow.
func (s *Server) serve(ctx context.Context, req *request, id *core.Identity, r *bufio.Reader, rw io.Reader, w *bufio.Writer) (keep bool, err error) {
	switch req.op {
	case opGet:
		if err := s.canRead(id); err != nil {
			return true, err
		}
		return s.get(ctx, req, w)
	case opHas:
		if err := s.canRead(id); err != nil {
			return true, err
		}
		st, err := s.store.Stat(ctx, req.hash)
		if err != nil {
			return true, err
		}
		present := st.Present
		if len(present) > MaxRanges {
			present = present[:MaxRanges]
		}
		_ = w.WriteByte(statusOK)
		b := binary.BigEndian.AppendUint64(nil, uint64(st.Size))
		var flags byte
		if st.Complete {
			flags |= 1
		}
		if st.SizeVerified {
			flags |= 2
		}
		b = append(b, flags)
		b = binary.BigEndian.AppendUint16(b, uint16(len(present)))
		for _, rg := range present {
			b = binary.BigEndian.AppendUint64(b, rg.Start)
			b = binary.BigEndian.AppendUint64(b, rg.End)
		}
		_, _ = w.Write(b)
		return false, w.Flush()
	case opPut:
		if err := s.canWrite(id); err != nil {
			return true, err
		}
		if req.size > s.cfg.MaxPutSize {
			return true, fmt.Errorf("%w: blob of %d bytes (limit %d)", ErrTooLarge, req.size, s.cfg.MaxPutSize)
		}
		info, err := s.store.Put(ctx, bodyReader(r, rw, req.size), req.size, PutOptions{Tag: req.tag, Collection: req.collection})
		if err != nil {
			return true, err
		}
		_ = w.WriteByte(statusOK)
		_, _ = w.Write(info.Hash[:])
		return false, w.Flush()
	case opTag, opUntag:
		if err := s.canWrite(id); err != nil {
			return true, err
		}
		if req.op == opTag {
			err = s.store.Tag(ctx, req.tag, req.hash)
		} else {
			err = s.store.Untag(ctx, req.tag)
		}
		if err != nil {
			return true, err
		}
		_ = w.WriteByte(statusOK)
		return false, w.Flush()
	case opList:
		if err := s.canRead(id); err != nil {
			return true, err
		}
		tags, err := s.store.Tags(ctx)
		if err != nil {
			return true, err
		}
		if len(tags) > MaxListEntries {
			tags = tags[:MaxListEntries]
		}
		_ = w.WriteByte(statusOK)
		b := binary.BigEndian.AppendUint32(nil, uint32(len(tags)))
		for _, t := range tags {
			b = append(b, byte(len(t.Name)))
			b = append(b, t.Name...)
			b = append(b, t.Hash[:]...)
			b = binary.BigEndian.AppendUint64(b, uint64(t.Size))
			var flags byte
			if t.Collection {
				flags = 1
			}
			b = append(b, flags)
			if len(b) > 64<<10 {
				if _, err := w.Write(b); err != nil {
					return false, err
				}
				b = b[:0]
			}
		}
		_, _ = w.Write(b)
		return false, w.Flush()
	}
	return true, fmt.Errorf("%w: unknown op %d", ErrBadRequest, req.op)
}

// bodyReader returns a reader of the next n bytes of the stream: what r
// has buffered, then straight from the stream (no copy through r's
// buffer), never past the body.
func bodyReader(r *bufio.Reader, stream io.Reader, n int64) io.Reader {
	b := int64(r.Buffered())
	if b >= n || stream == nil {
		return io.LimitReader(r, n)
	}
	return io.MultiReader(io.LimitReader(r, b), io.LimitReader(stream, n-b))
}

func (s *Server) get(ctx context.Context, req *request, w *bufio.Writer) (bool, error) {
	b, err := s.store.openBlob(ctx, req.hash)
	if err != nil {
		return true, err
	}
	defer b.Close()
	n := numGroups(b.size)
	want := req.ranges
	if want == nil {
		want = Ranges{{0, n}}
	}
	want = want.Clamp(n)
	if !b.complete {
		for _, rg := range want {
			if !b.present.Covers(rg.Start, rg.End) {
				return true, fmt.Errorf("%w: blob %s lacks some of groups %s", ErrIncomplete, req.hash, want)
			}
		}
	}
	if err := w.WriteByte(statusOK); err != nil {
		return false, err
	}
	if err := writeSlice(w, b.size, b.data, b.ob, want); err != nil {
		return false, err
	}
	return false, w.Flush()
}

var (
	_ core.ProtocolHandler = (*Server)(nil)
	_ core.SingleStreamer  = (*Server)(nil)
)
