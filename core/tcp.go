package core

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SingleStreamer is implemented by handlers that work over a connection
// carrying a single stream, as a TCP+TLS connection does: the handler
// accepts one stream and serves it to its end. Only the ALPNs of handlers
// whose SingleStream returns true are offered on the TCP listener.
type SingleStreamer interface {
	SingleStream() bool
}

// statusWriteTimeout bounds the write of a status record, so that a peer
// that reads nothing cannot hold a refusal open.
const statusWriteTimeout = time.Second

// maxStatusReason is the longest reason a status record carries, in bytes.
const maxStatusReason = 255

// statusALPN reports whether alpn carries a status record before its stream
// on TCP: the alknet/ namespace does, stock protocols (h2, http/1.1) do not.
func statusALPN(alpn string) bool { return strings.HasPrefix(alpn, "alknet/") }

// encodeStatus returns the status record for code and reason: one zero
// byte when code is CodeOK, else the code byte, the reason length byte and
// the reason (cut to maxStatusReason bytes).
func encodeStatus(code uint64, reason string) []byte {
	if code == CodeOK {
		return []byte{0}
	}
	if code > 0xff {
		code = CodeInternal
	}
	if len(reason) > maxStatusReason {
		reason = reason[:maxStatusReason]
	}
	return append([]byte{byte(code), byte(len(reason))}, reason...)
}

// parseStatus decodes the status record at the start of b. It returns how
// many bytes the record needs in all; when b holds fewer, done is false and
// the caller reads more. A record is at most 2+maxStatusReason bytes.
func parseStatus(b []byte) (need int, code uint64, reason string, done bool) {
	if len(b) == 0 {
		return 1, 0, "", false
	}
	if b[0] == 0 {
		return 1, CodeOK, "", true
	}
	if len(b) < 2 {
		return 2, 0, "", false
	}
	need = 2 + int(b[1])
	if len(b) < need {
		return need, 0, "", false
	}
	return need, uint64(b[0]), string(b[2:need]), true
}

// tcpConn is a TCP+TLS connection as a Conn: it carries one stream, which
// the server side gets from AcceptStream and the client side from
// OpenStream.
type tcpConn struct {
	connMeta
	tc     *tls.Conn
	raw    net.Conn
	client bool
	status bool // a status record precedes the stream (statusALPN)
	ctx    context.Context
	cancel context.CancelFunc
	taken  atomic.Bool
	st     *tcpStream

	mu        sync.Mutex
	closed    *CloseError // why the connection ended, once it has
	statusOK  bool        // server: written; client: read and accepted
	closeOnce sync.Once

	statusMu  sync.Mutex // client: held while reading the status record
	statusBuf []byte     // client: the status record read so far

	sent, recv atomic.Uint64 // application bytes, for Metrics
	streamOpen atomic.Bool   // the stream is counted open in Metrics
}

func newTCPConn(tc *tls.Conn, raw net.Conn, alpn string, client bool, drain context.Context) *tcpConn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &tcpConn{connMeta: connMeta{alpn: alpn, drain: drain}, tc: tc, raw: raw, client: client, status: statusALPN(alpn), ctx: ctx, cancel: cancel}
	c.st = &tcpStream{c: c}
	return c
}

func (c *tcpConn) ALPN() string             { return c.alpn }
func (c *tcpConn) RemoteID() NodeID         { return c.remoteID }
func (c *tcpConn) RemoteAddr() net.Addr     { return c.raw.RemoteAddr() }
func (c *tcpConn) Identity() *Identity      { return c.ident }
func (c *tcpConn) Context() context.Context { return c.ctx }

// SingleStream reports that the connection carries one stream, so that a
// protocol client (call's Peer) multiplexes over it.
func (c *tcpConn) SingleStream() bool { return true }

// AcceptStream returns the connection's stream once on the server side;
// later calls, and every call on the client side, wait until the
// connection closes, ctx ends or the endpoint drains.
func (c *tcpConn) AcceptStream(ctx context.Context) (Stream, error) {
	if !c.client && c.taken.CompareAndSwap(false, true) {
		c.tcpStreamOpened()
		return c.st, nil
	}
	var drain <-chan struct{}
	if c.drain != nil {
		drain = c.drain.Done()
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.ctx.Done():
		return nil, c.closedErr()
	case <-drain:
		return nil, ErrShuttingDown
	}
}

// OpenStream returns the connection's stream once on the client side; it
// fails with ErrSingleStream on the server side and on a second call.
func (c *tcpConn) OpenStream(context.Context) (Stream, error) {
	if c.client && c.taken.CompareAndSwap(false, true) {
		return c.st, nil
	}
	return nil, ErrSingleStream
}

// closedErr is what AcceptStream reports once the connection is closed.
func (c *tcpConn) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed != nil {
		return &closeErr{CloseError: *c.closed, cause: net.ErrClosed}
	}
	return fmt.Errorf("alknet: tcp connection closed: %w", net.ErrClosed)
}

// writeStatus sends the status record once, before the stream's first
// byte; it does nothing on the client side or for ALPNs without one. It
// reports whether it wrote a record.
func (c *tcpConn) writeStatus(code uint64, reason string) (bool, error) {
	if c.client || !c.status {
		return false, nil
	}
	c.mu.Lock()
	if c.statusOK || c.closed != nil {
		c.mu.Unlock()
		return false, nil
	}
	c.statusOK = true
	c.mu.Unlock()
	_ = c.raw.SetWriteDeadline(time.Now().Add(statusWriteTimeout))
	_, err := c.tc.Write(encodeStatus(code, reason))
	_ = c.raw.SetWriteDeadline(time.Time{})
	return true, err
}

// Close closes the connection. Before the stream was accepted (a refusal)
// the code and reason go to the peer in the status record; afterwards TCP
// has no way to carry them and the peer sees the connection end. A normal
// close (CodeOK) says close_notify first.
func (c *tcpConn) Close(code uint64, reason string) error {
	refused := false
	if code != CodeOK {
		wrote, err := c.writeStatus(code, reason)
		refused = wrote && err == nil
	}
	var err error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		if c.closed == nil {
			c.closed = &CloseError{Code: code, Reason: reason}
		}
		c.mu.Unlock()
		c.cancel()
		switch {
		case code == CodeOK:
			_ = c.raw.SetWriteDeadline(time.Now().Add(statusWriteTimeout))
			err = c.tc.Close() // close_notify, then the socket
		case refused:
			// Closing with the client's first bytes unread would send a
			// reset, which may overtake the refusal: end our side, then
			// read briefly what the client already sent.
			_ = c.tc.CloseWrite()
			if tcp, ok := c.raw.(interface{ CloseWrite() error }); ok {
				_ = tcp.CloseWrite()
			}
			_ = c.raw.SetReadDeadline(time.Now().Add(statusWriteTimeout))
			_, _ = io.Copy(io.Discard, io.LimitReader(c.raw, 64<<10))
			err = c.raw.Close()
		default:
			err = c.raw.Close()
		}
	})
	return err
}

// readStatus reads the server's status record on the client side before
// the stream's first byte; a refusal becomes a *CloseError with the
// server's code and reason, and the connection closes.
func (c *tcpConn) readStatus() error {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	c.mu.Lock()
	ok, closed := c.statusOK, c.closed
	c.mu.Unlock()
	if ok {
		return nil
	}
	if closed != nil && closed.Remote {
		return &closeErr{CloseError: *closed, cause: net.ErrClosed}
	}
	for {
		need, code, reason, done := parseStatus(c.statusBuf)
		if done {
			c.statusBuf = nil
			if code == CodeOK {
				c.mu.Lock()
				c.statusOK = true
				c.mu.Unlock()
				return nil
			}
			ce := CloseError{Code: code, Reason: reason, Remote: true}
			c.mu.Lock()
			c.closed = &ce
			c.mu.Unlock()
			c.cancel()
			_ = c.raw.Close()
			return &closeErr{CloseError: ce, cause: net.ErrClosed}
		}
		buf := make([]byte, need-len(c.statusBuf))
		n, err := c.tc.Read(buf)
		c.statusBuf = append(c.statusBuf, buf[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("alknet: tcp connection closed before the node answered: %w", io.ErrUnexpectedEOF)
			}
			return err
		}
	}
}

// tcpStream is the one stream of a tcpConn.
type tcpStream struct {
	c *tcpConn
}

func (s *tcpStream) Read(p []byte) (int, error) {
	if s.c.client && s.c.status {
		if err := s.c.readStatus(); err != nil {
			return 0, err
		}
	}
	n, err := s.c.tc.Read(p)
	s.c.recv.Add(uint64(n))
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) {
		s.c.cancel()
	}
	return n, err
}

func (s *tcpStream) Write(p []byte) (int, error) {
	n, err := s.c.tc.Write(p)
	s.c.sent.Add(uint64(n))
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		s.c.cancel()
	}
	return n, err
}

// CloseWrite sends close_notify: the peer reads end-of-stream, and reading
// goes on.
func (s *tcpStream) CloseWrite() error { return s.c.tc.CloseWrite() }

// Close closes the stream and with it the connection.
func (s *tcpStream) Close() error { return s.c.Close(CodeOK, "") }

func (s *tcpStream) LocalAddr() net.Addr                { return s.c.raw.LocalAddr() }
func (s *tcpStream) RemoteAddr() net.Addr               { return s.c.raw.RemoteAddr() }
func (s *tcpStream) SetDeadline(t time.Time) error      { return s.c.tc.SetDeadline(t) }
func (s *tcpStream) SetReadDeadline(t time.Time) error  { return s.c.tc.SetReadDeadline(t) }
func (s *tcpStream) SetWriteDeadline(t time.Time) error { return s.c.tc.SetWriteDeadline(t) }

// tcpALPNs returns the registered ALPNs whose handler declares it works
// over a single stream, in registration order.
func (e *Endpoint) tcpALPNs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, a := range e.alpns {
		if ss, ok := e.routes[a].h.(SingleStreamer); ok && ss.SingleStream() {
			out = append(out, a)
		}
	}
	return out
}

// listenTCP binds the TCP listener on the host and port of the bound UDP
// socket.
func listenTCP(cfg Config, udp net.PacketConn) (net.Listener, error) {
	keepAlive := cfg.KeepAlivePeriod
	if keepAlive == 0 {
		keepAlive = -1 // disabled
	}
	lc := net.ListenConfig{KeepAlive: keepAlive}
	return lc.Listen(context.Background(), "tcp", udp.LocalAddr().String())
}

// serveTCP accepts TCP connections until the listener closes.
func (e *Endpoint) serveTCP(ln net.Listener, conf *tls.Config) {
	defer e.tcpWG.Done()
	for {
		raw, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			e.log.Warn("tcp accept", "err", err) // e.g. out of file descriptors
			select {
			case <-time.After(50 * time.Millisecond):
			case <-e.closedCh:
				return
			}
			continue
		}
		if reason := e.startTCPHandshake(raw); reason != "" {
			e.log.Debug("tcp connection refused", "remote", raw.RemoteAddr().String(), "reason", reason)
			e.countRefusedReason("", tcpRefusal(reason))
			_ = raw.Close()
			continue
		}
		e.tcpWG.Add(1)
		go e.handshakeTCP(raw, conf)
	}
}

// startTCPHandshake counts raw as a handshake in progress, or returns why
// not: the endpoint is closed or a cap is reached.
func (e *Endpoint) startTCPHandshake(raw net.Conn) string {
	ip := remoteIP(raw.RemoteAddr())
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.closed:
		return "endpoint shutting down"
	case e.cfg.MaxTCPHandshakes > 0 && len(e.tcpPending) >= e.cfg.MaxTCPHandshakes:
		return "too many handshakes in progress"
	case e.cfg.MaxTCPHandshakesPerIP > 0 && e.tcpPerIP[ip] >= e.cfg.MaxTCPHandshakesPerIP:
		return "too many handshakes in progress from this address"
	}
	e.tcpPending[raw] = ip
	e.tcpPerIP[ip]++
	return ""
}

// endTCPHandshake stops counting raw.
func (e *Endpoint) endTCPHandshake(raw net.Conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ip, ok := e.tcpPending[raw]
	if !ok {
		return
	}
	delete(e.tcpPending, raw)
	if e.tcpPerIP[ip]--; e.tcpPerIP[ip] <= 0 {
		delete(e.tcpPerIP, ip)
	}
}

// handshakeTCP runs the TLS handshake of one TCP connection within
// HandshakeTimeout, then admits the connection like a QUIC one.
func (e *Endpoint) handshakeTCP(raw net.Conn, conf *tls.Config) {
	defer e.tcpWG.Done()
	_ = raw.SetDeadline(time.Now().Add(e.cfg.HandshakeTimeout))
	tc := tls.Server(raw, conf)
	start := time.Now()
	err := tc.Handshake()
	took := time.Since(start)
	e.endTCPHandshake(raw)
	if err != nil {
		e.log.Debug("tcp handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
		e.countRefusedReason("", RefusedHandshake)
		_ = raw.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	state := tc.ConnectionState()
	c := newTCPConn(tc, raw, e.tcpALPN(state.NegotiatedProtocol), false, e.drainCtx)
	c.ip = remoteIP(raw.RemoteAddr())
	c.handshake = took
	if len(state.PeerCertificates) > 0 {
		id, err := verifiedNodeID(state)
		if err != nil { // cannot happen: the handshake verified it
			_ = c.Close(CodeForbidden, "bad peer certificate")
			return
		}
		c.remoteID = id
	}
	h, log, ok := e.admit(c)
	if !ok {
		return
	}
	if _, err := c.writeStatus(CodeOK, ""); err != nil {
		log.Debug("tcp status write", "err", err) // the handler sees the broken connection
	}
	go e.run(h, c, log)
}

// TCPAddr returns the bound TCP address, or nil when Config.ListenTCP is
// off.
func (e *Endpoint) TCPAddr() net.Addr {
	if e.tcpLn == nil {
		return nil
	}
	return e.tcpLn.Addr()
}

// DialTCP connects to addr over TCP+TLS, pinning addr.ID exactly as Dial
// does, and negotiates alpn. The connection carries one stream: OpenStream
// returns it once. A refusal by the node (its code and reason) is reported
// by the stream's first Read, as over QUIC.
func (e *Endpoint) DialTCP(ctx context.Context, addr Addr, alpn string) (Conn, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	hctx, cancel := context.WithTimeout(ctx, e.cfg.HandshakeTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: e.cfg.KeepAlivePeriod}
	if d.KeepAlive == 0 {
		d.KeepAlive = -1
	}
	raw, err := d.DialContext(hctx, "tcp", addr.Host)
	if err != nil {
		if hctx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("dial %s over tcp: no answer within %s (node unreachable?)", addr, e.cfg.HandshakeTimeout)
		}
		return nil, fmt.Errorf("dial %s over tcp: %w", addr, err)
	}
	tc := tls.Client(raw, clientTLS(e.cert, addr.ID, alpn))
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = raw.Close()
		switch {
		case errors.Is(err, ErrNodeIDMismatch):
			return nil, fmt.Errorf("dial %s over tcp: %w", addr, ErrNodeIDMismatch)
		case strings.Contains(err.Error(), "no application protocol"):
			return nil, fmt.Errorf("dial %s over tcp: %w: %s", addr, ErrNoTCP, alpn)
		case hctx.Err() != nil && ctx.Err() == nil:
			return nil, fmt.Errorf("dial %s over tcp: no answer within %s (node unreachable?)", addr, e.cfg.HandshakeTimeout)
		}
		return nil, fmt.Errorf("dial %s over tcp: %w", addr, err)
	}
	state := tc.ConnectionState()
	if state.NegotiatedProtocol != alpn {
		_ = raw.Close()
		return nil, fmt.Errorf("dial %s over tcp: %w: %s", addr, ErrNoTCP, alpn)
	}
	id, err := verifiedNodeID(state)
	if err != nil || id != addr.ID {
		_ = raw.Close()
		return nil, fmt.Errorf("dial %s over tcp: %w", addr, ErrNodeIDMismatch)
	}
	c := newTCPConn(tc, raw, alpn, true, nil)
	c.remoteID = id
	c.ident = e.resolve(id)
	if err := e.trackDialed(c); err != nil {
		return nil, err
	}
	return c, nil
}

var (
	_ Conn   = (*tcpConn)(nil)
	_ Stream = (*tcpStream)(nil)
)
