package ssh

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"
	gossh "golang.org/x/crypto/ssh"
)

// serverConn is one authenticated SSH connection (one QUIC stream).
type serverConn struct {
	srv    *Server
	sc     *gossh.ServerConn
	chans  <-chan gossh.NewChannel
	reqs   <-chan *gossh.Request
	id     *Identity
	fp     string
	remote string
	idle   *idleConn
	log    *slog.Logger
	wg     sync.WaitGroup // channel and listener goroutines

	mu        sync.Mutex
	draining  bool
	sessions  int
	forwards  int
	shells    map[*session]struct{}
	listeners map[string]net.Listener // "addr\x00port" -> listener
}

// serve dispatches channels until the connection ends, then waits for
// everything it started.
func (c *serverConn) serve(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { _ = c.sc.Close() })
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.globalRequests(ctx)
	}()
	for nc := range c.chans {
		switch nc.ChannelType() {
		case "session":
			c.openSession(ctx, nc)
		case "direct-tcpip":
			c.openDirect(ctx, nc)
		default:
			_ = nc.Reject(gossh.UnknownChannelType, "unknown channel type")
		}
	}
	cancel()
	c.closeListeners()
	c.wg.Wait()
	_ = c.idle.Close()
	c.log.Debug("ssh connection closed")
}

// acquire reserves a channel slot of kind ("session" or "forward"); it
// returns a refusal message, or "" and the release function.
func (c *serverConn) acquire(kind string) (string, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining {
		return "server shutting down", nil
	}
	n, limit := &c.sessions, c.srv.cfg.MaxSessions
	if kind == "forward" {
		n, limit = &c.forwards, c.srv.cfg.MaxForwards
	}
	if limit > 0 && *n >= limit {
		return "too many open " + kind + " channels", nil
	}
	*n++
	var once sync.Once
	return "", func() {
		once.Do(func() {
			c.mu.Lock()
			*n--
			idle := c.draining && c.sessions == 0 && c.forwards == 0
			c.mu.Unlock()
			if idle {
				_ = c.sc.Close()
			}
		})
	}
}

// drain refuses new channels and listeners, hangs up interactive shells
// (which would never end on their own) and closes the connection once the
// remaining channels are done.
func (c *serverConn) drain() {
	c.mu.Lock()
	c.draining = true
	shells := make([]*session, 0, len(c.shells))
	for s := range c.shells {
		shells = append(shells, s)
	}
	idle := c.sessions == 0 && c.forwards == 0
	c.mu.Unlock()
	c.closeListeners()
	for _, s := range shells {
		s.hangup()
	}
	if idle {
		_ = c.sc.Close()
	}
}

func (c *serverConn) isDraining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// idleConn is a stream that closes itself after a period without traffic.
type idleConn struct {
	core.Stream
	timeout time.Duration
	last    atomic.Int64 // unix nanos of the last read or write
	timer   *time.Timer
	once    sync.Once
	closed  atomic.Bool
}

func newIdleConn(s core.Stream, timeout time.Duration) *idleConn {
	c := &idleConn{Stream: s, timeout: timeout}
	c.last.Store(time.Now().UnixNano())
	if timeout > 0 {
		c.timer = time.AfterFunc(timeout, c.check)
	}
	return c
}

func (c *idleConn) check() {
	if c.closed.Load() {
		return
	}
	since := time.Since(time.Unix(0, c.last.Load()))
	if since >= c.timeout {
		_ = c.Close()
		return
	}
	c.timer.Reset(c.timeout - since)
}

func (c *idleConn) Read(p []byte) (int, error) {
	n, err := c.Stream.Read(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	n, err := c.Stream.Write(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *idleConn) Close() error {
	var err error
	c.once.Do(func() {
		c.closed.Store(true)
		if c.timer != nil {
			c.timer.Stop()
		}
		err = c.Stream.Close()
	})
	return err
}
