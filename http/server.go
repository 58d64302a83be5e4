package alkhttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/quicconn"
)

// ALPNs the Server serves.
const (
	// ALPNH3 is HTTP/3, on QUIC.
	ALPNH3 = "h3"
	// ALPNH2 is HTTP/2 over the endpoint's TCP+TLS listener.
	ALPNH2 = "h2"
	// ALPNHTTP1 is HTTP/1.1 over the endpoint's TCP+TLS listener.
	ALPNHTTP1 = "http/1.1"
)

// Server is a core.ProtocolHandler that serves an http.Handler: HTTP/3 on
// the endpoint's QUIC connections (ALPN h3) and HTTP/2 and HTTP/1.1 on its
// TCP+TLS listener (ALPN h2, http/1.1). Each connection gets its own
// quic-go http3, x/net/http2 or net/http server, built from the Options.
// Handlers learn who is calling from Caller.
type Server struct {
	h    http.Handler
	opts Options

	mu     sync.Mutex
	conns  map[*connInfo]struct{}
	closed bool
}

// New returns a Server for h; opts may be nil. Register it on an endpoint
// with the access control its ALPNs need (usually none: routes decide, see
// Require):
//
//	ep.Register(alkhttp.New(mux, nil), core.AccessControl{})
func New(h http.Handler, opts *Options) *Server {
	if h == nil {
		h = http.NotFoundHandler()
	}
	return &Server{h: h, opts: opts.withDefaults(), conns: map[*connInfo]struct{}{}}
}

// ALPN implements core.ProtocolHandler.
func (s *Server) ALPN() []string { return []string{ALPNH3, ALPNH2, ALPNHTTP1} }

// SingleStream implements core.SingleStreamer: h2 and http/1.1 live on a
// TCP connection's one stream. (The TCP listener offers h3 too, since it
// offers a handler's ALPNs together; a TCP client that picks it is closed
// with a reason.)
func (s *Server) SingleStream() bool { return true }

// ServeConn implements core.ProtocolHandler.
func (s *Server) ServeConn(ctx context.Context, conn core.Conn) error {
	var err error
	switch conn.ALPN() {
	case ALPNH3:
		err = s.serveH3(ctx, conn)
	case ALPNH2, ALPNHTTP1:
		if _, quic := quicconn.Raw(conn); quic {
			// QUIC offers every registered ALPN; these two belong on TCP.
			return conn.Close(core.CodeForbidden, conn.ALPN()+" is served over TCP only")
		}
		err = s.serveTCP(ctx, conn)
	default:
		return fmt.Errorf("%w: %q", ErrALPN, conn.ALPN())
	}
	if err != nil && (conn.Context().Err() != nil || ctx.Err() != nil) {
		return nil // the connection ended; how is not the handler's failure
	}
	return err
}

// Shutdown ends every connection gracefully: HTTP/3 and h2 connections
// get GOAWAY, HTTP/1.1 connections close once their request is answered.
// It returns when they are all gone or ctx is done. Connections arriving
// later are served and shut down at once. The endpoint's own drain
// (core.Endpoint.Shutdown) does the same for the connections it drains.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	infos := make([]*connInfo, 0, len(s.conns))
	for c := range s.conns {
		infos = append(infos, c)
	}
	s.mu.Unlock()
	for _, c := range infos {
		c.startShutdown(ctx)
	}
	for _, c := range infos {
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// connInfo is what the request wrapper and Caller know of a connection.
type connInfo struct {
	s      *Server
	conn   core.Conn
	tls    *tls.ConnectionState // TCP: filled into Request.TLS
	altSvc string               // TCP: the Alt-Svc value; "" none
	slots  chan struct{}        // HTTP/3: one token per request in progress
	anon   bool

	done         chan struct{} // closed when the connection is served
	shutdownOnce sync.Once
	shutdown     func(ctx context.Context) // graceful end; set before tracking
}

func (c *connInfo) startShutdown(ctx context.Context) {
	c.shutdownOnce.Do(func() { go c.shutdown(ctx) })
}

func (s *Server) newConnInfo(conn core.Conn) *connInfo {
	c := &connInfo{s: s, conn: conn, anon: conn.Identity() == nil, done: make(chan struct{})}
	if ts, ok := conn.(core.TLSStater); ok {
		st := ts.TLSConnectionState()
		c.tls = &st
	}
	return c
}

// track registers c for Shutdown and starts watching the endpoint's
// drain; the returned function stops both. A connection that arrives after
// Shutdown is shut down at once.
func (s *Server) track(ctx context.Context, c *connInfo) func() {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	closed := s.closed
	s.mu.Unlock()
	if closed {
		c.startShutdown(ctx)
	}
	var drain <-chan struct{}
	if d, ok := c.conn.(core.Drainer); ok {
		drain = d.Draining()
	}
	stopWatch := make(chan struct{})
	var wg sync.WaitGroup
	if drain != nil {
		wg.Go(func() {
			select {
			case <-drain:
				c.startShutdown(ctx)
			case <-stopWatch:
			}
		})
	}
	return func() {
		close(stopWatch)
		wg.Wait()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		close(c.done)
	}
}

// handler wraps the Server's handler for the requests of one connection.
func (c *connInfo) handler() http.Handler {
	return http.HandlerFunc(c.serve)
}

// serve runs one request: limits, Alt-Svc, Request.TLS, then the handler.
func (c *connInfo) serve(w http.ResponseWriter, r *http.Request) {
	s := c.s
	if c.slots != nil {
		if !c.acquire(r.Context()) {
			writeError(w, r, http.StatusServiceUnavailable, "UNAVAILABLE", "too many requests in progress on this connection")
			return
		}
		defer func() { <-c.slots }()
		if m := s.opts.Metrics; m != nil {
			m.StreamOpened(ALPNH3)
			defer m.StreamClosed(ALPNH3)
		}
	}
	if r.TLS == nil && c.tls != nil {
		r.TLS = c.tls
	}
	if c.altSvc != "" {
		w.Header()["Alt-Svc"] = []string{c.altSvc}
	}
	if s.opts.MaxBodyBytes > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > s.opts.MaxBodyBytes {
			writeError(w, r, http.StatusRequestEntityTooLarge, "INVALID_INPUT",
				fmt.Sprintf("request body is larger than %d bytes", s.opts.MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	}
	s.h.ServeHTTP(w, r)
}

// acquire takes a request slot, waiting up to ReadHeaderTimeout.
func (c *connInfo) acquire(ctx context.Context) bool {
	select {
	case c.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(c.s.opts.ReadHeaderTimeout)
	defer t.Stop()
	select {
	case c.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// altSvcFor returns the Alt-Svc value for a TCP connection on local.
func (s *Server) altSvcFor(local net.Addr) string {
	port := s.opts.AltSvcPort
	if port < 0 {
		return ""
	}
	if port == 0 {
		ta, ok := local.(*net.TCPAddr)
		if !ok {
			return ""
		}
		port = ta.Port
	}
	return `h3=":` + strconv.Itoa(port) + `"; ma=86400`
}

// DrainContext returns a context derived from r's that is also cancelled
// when the endpoint starts to drain (r came through a Server on an
// accepted connection): long-lived answers (event streams, WebSockets)
// end then instead of holding the drain until its deadline.
func DrainContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	ci := connInfoFrom(r.Context())
	if ci == nil {
		return ctx, cancel
	}
	d, ok := ci.conn.(core.Drainer)
	if !ok || d.Draining() == nil {
		return ctx, cancel
	}
	drain := d.Draining()
	go func() {
		select {
		case <-drain:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

type connKey struct{}

func withConnInfo(ctx context.Context, c *connInfo) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

func connInfoFrom(ctx context.Context) *connInfo {
	c, _ := ctx.Value(connKey{}).(*connInfo)
	return c
}

// isClosedErr reports errors that only mean the connection is gone.
func isClosedErr(err error) bool {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) || errors.Is(err, context.Canceled) {
		return true
	}
	_, ok := core.AsCloseError(err)
	return ok
}

var (
	_ core.ProtocolHandler = (*Server)(nil)
	_ core.SingleStreamer  = (*Server)(nil)
)
