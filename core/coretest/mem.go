package coretest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
)

// memBufLimit is how many bytes a memory stream buffers before Write blocks,
// so that flow control behaves like a real stream.
const memBufLimit = 1 << 20

// buffer is one direction of a memory stream.
type buffer struct {
	mu      sync.Mutex
	data    []byte
	eof     bool  // writer closed its side
	err     error // stream or connection failed
	rdl     time.Time
	wdl     time.Time
	changed chan struct{}
}

func newBuffer() *buffer { return &buffer{changed: make(chan struct{})} }

// notify wakes waiters; called with mu held.
func (b *buffer) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func wait(ch <-chan struct{}, dl time.Time) {
	if dl.IsZero() {
		<-ch
		return
	}
	t := time.NewTimer(time.Until(dl))
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

func (b *buffer) read(p []byte) (int, error) {
	b.mu.Lock()
	for {
		if len(b.data) > 0 {
			n := copy(p, b.data)
			b.data = b.data[n:]
			b.notify()
			b.mu.Unlock()
			return n, nil
		}
		if b.err != nil {
			err := b.err
			b.mu.Unlock()
			return 0, err
		}
		if b.eof {
			b.mu.Unlock()
			return 0, io.EOF
		}
		if !b.rdl.IsZero() && !time.Now().Before(b.rdl) {
			b.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		ch, dl := b.changed, b.rdl
		b.mu.Unlock()
		wait(ch, dl)
		b.mu.Lock()
	}
}

func (b *buffer) write(p []byte) (int, error) {
	total := 0
	b.mu.Lock()
	for len(p) > 0 {
		if b.err != nil {
			err := b.err
			b.mu.Unlock()
			return total, err
		}
		if b.eof {
			b.mu.Unlock()
			return total, errors.New("coretest: write after CloseWrite")
		}
		if !b.wdl.IsZero() && !time.Now().Before(b.wdl) {
			b.mu.Unlock()
			return total, os.ErrDeadlineExceeded
		}
		if room := memBufLimit - len(b.data); room > 0 {
			n := min(room, len(p))
			b.data = append(b.data, p[:n]...)
			p = p[n:]
			total += n
			b.notify()
			continue
		}
		ch, dl := b.changed, b.wdl
		b.mu.Unlock()
		wait(ch, dl)
		b.mu.Lock()
	}
	b.mu.Unlock()
	return total, nil
}

func (b *buffer) set(f func(*buffer)) {
	b.mu.Lock()
	f(b)
	b.notify()
	b.mu.Unlock()
}

// memStream is one end of an in-memory stream: it reads from in and writes
// to out.
type memStream struct {
	in, out       *buffer
	local, remote net.Addr
	once          sync.Once
}

func (s *memStream) Read(p []byte) (int, error)  { return s.in.read(p) }
func (s *memStream) Write(p []byte) (int, error) { return s.out.write(p) }
func (s *memStream) CloseWrite() error {
	s.out.set(func(b *buffer) { b.eof = true })
	return nil
}
func (s *memStream) Close() error {
	s.once.Do(func() {
		_ = s.CloseWrite()
		s.in.set(func(b *buffer) {
			if b.err == nil && !b.eof {
				b.err = net.ErrClosed
			}
			b.data = nil
		})
	})
	return nil
}
func (s *memStream) LocalAddr() net.Addr  { return s.local }
func (s *memStream) RemoteAddr() net.Addr { return s.remote }
func (s *memStream) SetDeadline(t time.Time) error {
	_ = s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}
func (s *memStream) SetReadDeadline(t time.Time) error {
	s.in.set(func(b *buffer) { b.rdl = t })
	return nil
}
func (s *memStream) SetWriteDeadline(t time.Time) error {
	s.out.set(func(b *buffer) { b.wdl = t })
	return nil
}

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

// memConn is one end of an in-memory connection.
type memConn struct {
	alpn     string
	remoteID core.NodeID
	ident    *core.Identity
	local    net.Addr
	remote   net.Addr
	incoming chan *memStream
	peer     *memConn
	shared   *connState
}

type connState struct {
	mu      sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	closed  bool
	buffers []*buffer
	errFor  map[*memConn]error // what each side sees after close
}

// Side describes one end of a Pipe.
type Side struct {
	ID       core.NodeID    // this side's node id (the other side's RemoteID)
	Identity *core.Identity // what the other side resolves this side to; nil = anonymous
}

// Pipe returns an in-memory connected pair of Conns negotiating alpn: a is
// the dialer and b the acceptor. Streams have flow control (1 MiB buffered
// per direction), half-close and deadlines; Close on either end fails every
// stream on both ends and reports the code and reason to the other end, like
// a QUIC application close.
func Pipe(alpn string, a, b Side) (core.Conn, core.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	st := &connState{ctx: ctx, cancel: cancel, errFor: map[*memConn]error{}}
	ca := &memConn{alpn: alpn, remoteID: b.ID, ident: b.Identity, local: memAddr("a"), remote: memAddr("b"), incoming: make(chan *memStream, 64), shared: st}
	cb := &memConn{alpn: alpn, remoteID: a.ID, ident: a.Identity, local: memAddr("b"), remote: memAddr("a"), incoming: make(chan *memStream, 64), shared: st}
	ca.peer, cb.peer = cb, ca
	return ca, cb
}

func (c *memConn) ALPN() string             { return c.alpn }
func (c *memConn) RemoteID() core.NodeID    { return c.remoteID }
func (c *memConn) RemoteAddr() net.Addr     { return c.remote }
func (c *memConn) Identity() *core.Identity { return c.ident }
func (c *memConn) Context() context.Context { return c.shared.ctx }
func (c *memConn) closedErr() error {
	c.shared.mu.Lock()
	defer c.shared.mu.Unlock()
	return c.shared.errFor[c]
}

func (c *memConn) AcceptStream(ctx context.Context) (core.Stream, error) {
	select {
	case s := <-c.incoming:
		return s, nil
	case <-c.shared.ctx.Done():
		return nil, c.closedErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *memConn) OpenStream(ctx context.Context) (core.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ab, ba := newBuffer(), newBuffer()
	c.shared.mu.Lock()
	if c.shared.closed {
		c.shared.mu.Unlock()
		return nil, c.shared.errFor[c]
	}
	c.shared.buffers = append(c.shared.buffers, ab, ba)
	c.shared.mu.Unlock()
	mine := &memStream{in: ba, out: ab, local: c.local, remote: c.remote}
	theirs := &memStream{in: ab, out: ba, local: c.remote, remote: c.local}
	select {
	case c.peer.incoming <- theirs:
		return mine, nil
	case <-c.shared.ctx.Done():
		return nil, c.closedErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *memConn) Close(code uint64, reason string) error {
	st := c.shared
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	st.errFor[c] = &core.CloseError{Code: code, Reason: reason, Remote: false}
	st.errFor[c.peer] = &core.CloseError{Code: code, Reason: reason, Remote: true}
	bufs := st.buffers
	st.mu.Unlock()
	for _, b := range bufs {
		b.set(func(b *buffer) {
			if b.err == nil {
				b.err = net.ErrClosed
			}
		})
	}
	st.cancel()
	return nil
}

var (
	_ core.Conn   = (*memConn)(nil)
	_ core.Stream = (*memStream)(nil)
)
