package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// ProtocolHandler serves every connection that negotiated one of its ALPNs.
type ProtocolHandler interface {
	// ALPN returns the protocol strings the handler serves, most preferred
	// first. The result must not change.
	ALPN() []string
	// ServeConn serves conn and returns when the connection is done. The
	// endpoint closes conn after ServeConn returns.
	ServeConn(ctx context.Context, conn Conn) error
}

// Conn is one authenticated connection, as a handler sees it.
type Conn interface {
	// ALPN is the protocol negotiated in the handshake.
	ALPN() string
	// RemoteID is the peer's verified node id; zero when the peer showed no
	// certificate (an anonymous caller).
	RemoteID() NodeID
	// RemoteAddr is the peer's UDP address, or its TCP address on a
	// TCP+TLS connection.
	RemoteAddr() net.Addr
	// Identity is the peer's identity, resolved once when the connection was
	// accepted; nil when the peer is unknown or showed no certificate.
	Identity() *Identity
	// AcceptStream waits for the next stream the peer opens. It returns
	// ErrShuttingDown when the endpoint drains.
	AcceptStream(ctx context.Context) (Stream, error)
	// OpenStream opens a stream, waiting for flow-control credit. A TCP+TLS
	// connection carries a single stream: its client side gets it from the
	// first OpenStream, and otherwise OpenStream fails with ErrSingleStream.
	OpenStream(ctx context.Context) (Stream, error)
	// Close closes the connection with an application code and a reason the
	// peer can show.
	Close(code uint64, reason string) error
	// Context is cancelled when the connection is closed.
	Context() context.Context
}

// Stream is a bidirectional QUIC stream. It is a net.Conn, so x/crypto/ssh,
// net/http, pkg/sftp and io.Copy take it directly.
type Stream interface {
	net.Conn
	// CloseWrite sends end-of-stream; reading goes on.
	CloseWrite() error
}

// connMeta is what the endpoint knows and tracks of a connection, over
// QUIC or TCP.
type connMeta struct {
	alpn     string
	remoteID NodeID
	ident    *Identity
	drain    context.Context // cancelled when the endpoint starts to drain

	// Set for accepted connections by Endpoint.track.
	anon    bool          // no identity: counted in the anonymous pool
	ip      netip.Addr    // source address, for the per-address cap
	streams chan struct{} // one token per open stream; nil = no cap
	refused atomic.Int32  // streams reset for being over the cap
	queue   bool          // over the cap, wait for a token (StreamQueuer)

	handshake time.Duration // how long the TLS handshake took (server side)
	metrics   Metrics       // set at admission when the endpoint has one
}

// StreamQueuer is implemented by handlers whose anonymous clients pipeline
// requests on one connection, as DNS over QUIC resolvers do. For them a
// stream over the anonymous cap waits, unread, until an earlier stream
// ends, instead of being reset: the client sees a slower answer, not an
// error. A waiting stream holds no handler resources, and the peer cannot
// open more than MaxIncomingStreams, since quic-go grants new streams only
// as old ones end.
type StreamQueuer interface {
	QueueStreams() bool
}

// maxRefusedStreams is how many streams over its cap an anonymous
// connection may open before it is closed: a peer that keeps opening them
// only churns the node's CPU.
const maxRefusedStreams = 64

func (m *connMeta) meta() *connMeta { return m }

// endpointConn is a connection the endpoint tracks: a Conn with its meta.
type endpointConn interface {
	Conn
	meta() *connMeta
}

// quicConn adapts *quic.Conn to Conn.
type quicConn struct {
	connMeta
	qc *quic.Conn
}

func (c *quicConn) ALPN() string         { return c.alpn }
func (c *quicConn) RemoteID() NodeID     { return c.remoteID }
func (c *quicConn) RemoteAddr() net.Addr { return c.qc.RemoteAddr() }
func (c *quicConn) Identity() *Identity  { return c.ident }
func (c *quicConn) Context() context.Context {
	return c.qc.Context()
}

// QUICConn returns the underlying quic-go connection (see package quicconn).
func (c *quicConn) QUICConn() *quic.Conn { return c.qc }

func (c *quicConn) AcceptStream(ctx context.Context) (Stream, error) {
	if c.drain != nil {
		var stop context.CancelFunc
		ctx, stop = mergeCancel(ctx, c.drain)
		defer stop()
	}
	for {
		s, err := c.qc.AcceptStream(ctx)
		if err != nil {
			if c.drain != nil && c.drain.Err() != nil && errors.Is(err, context.Canceled) {
				return nil, ErrShuttingDown
			}
			return nil, wrapQUICError(err)
		}
		if c.streams == nil {
			return c.trackStream(newStream(s, c.qc)), nil
		}
		if c.queue {
			select {
			case c.streams <- struct{}{}:
			case <-ctx.Done():
				s.CancelRead(quic.StreamErrorCode(CodeLimit))
				s.CancelWrite(quic.StreamErrorCode(CodeLimit))
				if c.drain != nil && c.drain.Err() != nil {
					return nil, ErrShuttingDown
				}
				return nil, ctx.Err()
			case <-c.qc.Context().Done():
				return nil, wrapQUICError(context.Cause(c.qc.Context()))
			}
			qs := newStream(s, c.qc)
			qs.release = func() { <-c.streams }
			return c.trackStream(qs), nil
		}
		select {
		case c.streams <- struct{}{}:
			qs := newStream(s, c.qc)
			qs.release = func() { <-c.streams }
			return c.trackStream(qs), nil
		default:
			// Over the cap: the peer learns why from the reset code, and
			// the handler never sees the stream.
			s.CancelRead(quic.StreamErrorCode(CodeLimit))
			s.CancelWrite(quic.StreamErrorCode(CodeLimit))
			if c.refused.Add(1) == maxRefusedStreams {
				_ = c.Close(CodeLimit, fmt.Sprintf("too many streams over the anonymous cap (limit %d)", cap(c.streams)))
			}
		}
	}
}

func (c *quicConn) OpenStream(ctx context.Context) (Stream, error) {
	s, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, wrapQUICError(err)
	}
	return c.trackStream(newStream(s, c.qc)), nil
}

func (c *quicConn) Close(code uint64, reason string) error {
	return c.qc.CloseWithError(quic.ApplicationErrorCode(code), reason)
}

// mergeCancel returns a context that is cancelled when either parent is.
func mergeCancel(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}

// wrapQUICError turns an application close into a *CloseError (keeping the
// original in the chain) so callers need not import quic-go.
func wrapQUICError(err error) error {
	var ae *quic.ApplicationError
	if errors.As(err, &ae) {
		return &closeErr{CloseError: CloseError{Code: uint64(ae.ErrorCode), Reason: ae.ErrorMessage, Remote: ae.Remote}, cause: err}
	}
	return err
}

type closeErr struct {
	CloseError
	cause error
}

func (e *closeErr) Unwrap() error { return e.cause }
func (e *closeErr) As(target any) bool {
	if t, ok := target.(**CloseError); ok {
		c := e.CloseError
		*t = &c
		return true
	}
	return false
}

// AsCloseError reports the application close behind err, if any: the code
// and reason the remote (or local) side gave when it closed the connection.
func AsCloseError(err error) (*CloseError, bool) {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce, true
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) {
		return &CloseError{Code: uint64(ae.ErrorCode), Reason: ae.ErrorMessage, Remote: ae.Remote}, true
	}
	return nil, false
}

// quicStream adapts *quic.Stream to Stream.
type quicStream struct {
	s         *quic.Stream
	qc        *quic.Conn
	closeOnce sync.Once

	// release frees the stream's slot of a capped connection once both
	// directions are done (or on Close); nil when uncapped.
	release     func()
	releaseOnce sync.Once
	readDone    atomic.Bool
	writeDone   atomic.Bool
}

// finished marks one direction done and frees the slot when both are.
func (s *quicStream) finished(dir *atomic.Bool) {
	if s.release == nil {
		return
	}
	dir.Store(true)
	if s.readDone.Load() && s.writeDone.Load() {
		s.releaseOnce.Do(s.release)
	}
}

func newStream(s *quic.Stream, qc *quic.Conn) *quicStream { return &quicStream{s: s, qc: qc} }

func (s *quicStream) Read(p []byte) (int, error) {
	n, err := s.s.Read(p)
	if err != nil {
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			s.finished(&s.readDone)
		}
		err = wrapQUICError(err)
	}
	return n, err
}

func (s *quicStream) Write(p []byte) (int, error) {
	n, err := s.s.Write(p)
	if err != nil {
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			s.finished(&s.writeDone)
		}
		err = wrapQUICError(err)
	}
	return n, err
}

// CloseWrite sends FIN.
func (s *quicStream) CloseWrite() error {
	err := s.s.Close()
	s.finished(&s.writeDone)
	return err
}

// Close closes both directions: FIN for writing, STOP_SENDING for reading.
func (s *quicStream) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.s.CancelRead(0)
		err = s.s.Close()
		if s.release != nil {
			s.releaseOnce.Do(s.release)
		}
	})
	return err
}

func (s *quicStream) LocalAddr() net.Addr                { return s.qc.LocalAddr() }
func (s *quicStream) RemoteAddr() net.Addr               { return s.qc.RemoteAddr() }
func (s *quicStream) SetDeadline(t time.Time) error      { return s.s.SetDeadline(t) }
func (s *quicStream) SetReadDeadline(t time.Time) error  { return s.s.SetReadDeadline(t) }
func (s *quicStream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }

// QUICStream returns the underlying quic-go stream (see package quicconn).
func (s *quicStream) QUICStream() *quic.Stream { return s.s }

var (
	_ Conn   = (*quicConn)(nil)
	_ Stream = (*quicStream)(nil)
)
