package alkhttp

import (
	"context"
	"crypto/tls"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/alkdev/alknet/core"
	"golang.org/x/net/http2"
)

// serveTCP serves h2 or HTTP/1.1 on the one stream of a TCP+TLS
// connection.
func (s *Server) serveTCP(ctx context.Context, conn core.Conn) error {
	st, err := conn.AcceptStream(ctx)
	if err != nil {
		return err
	}
	c := s.newConnInfo(conn)
	c.altSvc = s.altSvcFor(st.LocalAddr())
	nc := &streamConn{Stream: st, tls: c.tls, closed: make(chan struct{})}
	if conn.ALPN() == ALPNH2 {
		return s.serveH2(ctx, c, nc)
	}
	return s.serveH1(ctx, c, nc)
}

// errorLog is the *log.Logger net/http and x/net/http2 write connection
// errors to (bad requests, bad frames): debug lines of the slog logger.
func (s *Server) errorLog() *log.Logger {
	return slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelDebug)
}

// serveH1 serves HTTP/1.1 on nc with a net/http server of its own.
func (s *Server) serveH1(ctx context.Context, c *connInfo, nc *streamConn) error {
	srv := &http.Server{
		Handler:           c.handler(),
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		ErrorLog:          s.errorLog(),
		ConnContext:       func(ctx context.Context, _ net.Conn) context.Context { return withConnInfo(ctx, c) },
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	c.shutdown = func(sctx context.Context) { _ = srv.Shutdown(sctx) }
	untrack := s.track(ctx, c)
	defer untrack()
	ln := &oneConnListener{conn: nc, done: make(chan struct{})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	select {
	case <-nc.closed:
	case <-ctx.Done():
		_ = srv.Close()
	}
	ln.Close()
	<-served
	return nil
}

// serveH2 serves HTTP/2 on nc with an x/net/http2 server of its own.
func (s *Server) serveH2(ctx context.Context, c *connInfo, nc *streamConn) error {
	base := &http.Server{
		ReadTimeout:    s.opts.ReadTimeout,
		WriteTimeout:   s.opts.WriteTimeout,
		IdleTimeout:    s.opts.IdleTimeout,
		MaxHeaderBytes: s.opts.MaxHeaderBytes,
		ErrorLog:       s.errorLog(),
	}
	streams := s.opts.MaxConcurrentStreams
	if c.anon {
		streams = s.opts.MaxAnonStreams
	}
	h2 := &http2.Server{
		MaxConcurrentStreams: uint32(streams),
		IdleTimeout:          s.opts.IdleTimeout,
	}
	if err := http2.ConfigureServer(base, h2); err != nil {
		return err
	}
	// base.Shutdown runs http2's graceful shutdown (GOAWAY) on this
	// connection; base tracks no listener or connection of its own.
	c.shutdown = func(sctx context.Context) { _ = base.Shutdown(sctx) }
	untrack := s.track(ctx, c)
	defer untrack()
	h2.ServeConn(nc, &http2.ServeConnOpts{
		Context:    withConnInfo(ctx, c),
		BaseConfig: base,
		Handler:    c.handler(),
	})
	return nil
}

// streamConn is a TCP connection's stream as the net.Conn the HTTP servers
// take: its Close is seen (closed), and it reports the TLS state for
// Request.TLS.
type streamConn struct {
	core.Stream
	tls    *tls.ConnectionState
	once   sync.Once
	closed chan struct{}
}

func (c *streamConn) Close() error {
	err := c.Stream.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

// ConnectionState lets x/net/http2 fill Request.TLS.
func (c *streamConn) ConnectionState() tls.ConnectionState {
	if c.tls == nil {
		return tls.ConnectionState{}
	}
	return *c.tls
}

// oneConnListener hands one connection to http.Server.Serve, then blocks
// until closed.
type oneConnListener struct {
	mu    sync.Mutex
	conn  net.Conn
	done  chan struct{}
	close sync.Once
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.close.Do(func() { close(l.done) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return dummyAddr{} }

type dummyAddr struct{}

func (dummyAddr) Network() string { return "alknet" }
func (dummyAddr) String() string  { return "alknet" }

var _ net.Listener = (*oneConnListener)(nil)
