package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
)

// Listener serves classic DNS on one UDP socket and one TCP listener with
// the same address and port (RFC 1035 section 4.2, RFC 7766).
type Listener struct {
	s    *Server
	pc   net.PacketConn
	ln   net.Listener
	udp  *mdns.Server
	tcp  *mdns.Server
	ctx  context.Context
	stop context.CancelFunc

	closeOnce sync.Once
	started   atomic.Bool
}

// ListenClassic binds UDP and TCP on addr ("host:port"; port 0 picks one
// free for both). Serve answers on them.
func (s *Server) ListenClassic(addr string) (*Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("alknet/dns: listen address %q: %w", addr, err)
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	var lastErr error
	for range tries {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("alknet/dns: listen udp %s: %w", addr, err)
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			_ = pc.Close()
			lastErr = err
			if errors.Is(err, syscall.EADDRINUSE) {
				continue // a port free for UDP but not TCP: pick another
			}
			break
		}
		return s.newListener(pc, ln), nil
	}
	return nil, fmt.Errorf("alknet/dns: listen tcp %s: %w", addr, lastErr)
}

// NewListener serves classic DNS on sockets the caller opened (pc may be nil
// for TCP only, ln nil for UDP only).
func (s *Server) NewListener(pc net.PacketConn, ln net.Listener) *Listener {
	return s.newListener(pc, ln)
}

func (s *Server) newListener(pc net.PacketConn, ln net.Listener) *Listener {
	l := &Listener{s: s, pc: pc}
	l.ctx, l.stop = context.WithCancel(context.Background())
	h := mdns.HandlerFunc(l.serveDNS)
	if pc != nil {
		l.udp = &mdns.Server{PacketConn: pc, Handler: h, UDPSize: mdns.DefaultMsgSize}
	}
	if ln != nil {
		l.ln = &limitListener{Listener: ln, slots: make(chan struct{}, s.cfg.MaxTCPConns)}
		idle := s.cfg.TCPIdleTimeout
		l.tcp = &mdns.Server{
			Listener:      l.ln,
			Handler:       h,
			ReadTimeout:   s.cfg.QueryTimeout,
			WriteTimeout:  s.cfg.QueryTimeout,
			IdleTimeout:   func() time.Duration { return idle },
			MaxTCPQueries: s.cfg.MaxTCPQueries,
			DecorateReader: func(r mdns.Reader) mdns.Reader {
				return tcpReader{Reader: r, limit: s.cfg.MaxQuerySize}
			},
		}
	}
	return l
}

// Addr is the UDP address (the TCP listener has the same port), or the TCP
// address when there is no UDP socket.
func (l *Listener) Addr() net.Addr {
	if l.pc != nil {
		return l.pc.LocalAddr()
	}
	return l.ln.Addr()
}

// Serve answers queries until ctx is done or Close is called, then stops
// both sockets. It returns nil after a stop and the first socket error
// otherwise.
func (l *Listener) Serve(ctx context.Context) error {
	if l.started.Swap(true) {
		return errors.New("alknet/dns: Listener.Serve called twice")
	}
	stopCtx := context.AfterFunc(ctx, func() { _ = l.Close() })
	defer stopCtx()
	errc := make(chan error, 2)
	n := 0
	for _, srv := range []*mdns.Server{l.udp, l.tcp} {
		if srv == nil {
			continue
		}
		n++
		go func() { errc <- srv.ActivateAndServe() }()
	}
	var first error
	for range n {
		err := <-errc
		if err != nil && l.ctx.Err() == nil && first == nil {
			first = err
			_ = l.Close()
		}
	}
	return first
}

// Close stops serving and closes both sockets.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.stop()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, srv := range []*mdns.Server{l.udp, l.tcp} {
			if srv != nil {
				if err := srv.ShutdownContext(sctx); err != nil {
					// Not started yet: close the sockets ourselves.
					if srv.PacketConn != nil {
						_ = srv.PacketConn.Close()
					}
					if srv.Listener != nil {
						_ = srv.Listener.Close()
					}
				}
			}
		}
	})
	return nil
}

func (l *Listener) serveDNS(w mdns.ResponseWriter, q *mdns.Msg) {
	tr := TransportTCP
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		tr = TransportUDP
	}
	if tr == TransportUDP {
		select {
		case l.s.inflight <- struct{}{}:
		default:
			return // over capacity: drop, the client retries
		}
	} else {
		select {
		case l.s.inflight <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
	}
	resp := l.s.answer(l.ctx, &Request{Msg: q, Transport: tr, RemoteAddr: w.RemoteAddr()})
	<-l.s.inflight
	if tr == TransportUDP {
		resp.Truncate(l.s.udpLimit(q))
	} else {
		resp.Truncate(MaxMessageSize)
	}
	resp.Compress = true
	_ = w.WriteMsg(resp)
}

// tcpReader reads TCP queries with the size limit checked on the length
// prefix, before the message.
type tcpReader struct {
	mdns.Reader
	limit int
}

func (r tcpReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	return ReadMessage(conn, r.limit)
}

// limitListener closes connections over its cap at once.
type limitListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			_ = c.Close()
		}
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
