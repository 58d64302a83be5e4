package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"

	gossh "golang.org/x/crypto/ssh"
)

// directPayload is the extra data of a direct-tcpip channel open (RFC 4254
// section 7.2).
type directPayload struct {
	Host     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

// forwardPayload is the data of tcpip-forward and cancel-tcpip-forward
// (RFC 4254 section 7.1).
type forwardPayload struct {
	Addr string
	Port uint32
}

// forwardedPayload is the extra data of a forwarded-tcpip channel open.
type forwardedPayload struct {
	Addr     string
	Port     uint32
	OrigAddr string
	OrigPort uint32
}

// maxHostLen bounds the host of a direct-tcpip or tcpip-forward request:
// a DNS name is at most 253 bytes, an IPv6 address with a zone far less.
const maxHostLen = 255

// validHost reports whether h can name a destination or a bind address:
// at most maxHostLen bytes, no NUL, no control characters.
func validHost(h string) bool {
	if len(h) > maxHostLen {
		return false
	}
	for i := 0; i < len(h); i++ {
		if h[i] < 0x20 || h[i] == 0x7f {
			return false
		}
	}
	return true
}

// parseDirect decodes and checks the extra data of a direct-tcpip channel
// open: a non-empty valid host, a port in 1..65535, and nothing after the
// fields.
func parseDirect(b []byte) (directPayload, error) {
	var p directPayload
	if err := gossh.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%w: direct-tcpip: %v", ErrBadRequest, err)
	}
	if p.Host == "" || !validHost(p.Host) || p.Port == 0 || p.Port > 65535 {
		return p, fmt.Errorf("%w: direct-tcpip destination", ErrBadRequest)
	}
	return p, nil
}

// parseForward decodes and checks a tcpip-forward or cancel-tcpip-forward
// payload: a valid (possibly empty) address and a port in 0..65535.
func parseForward(b []byte) (forwardPayload, error) {
	var p forwardPayload
	if err := gossh.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%w: tcpip-forward: %v", ErrBadRequest, err)
	}
	if !validHost(p.Addr) || p.Port > 65535 {
		return p, fmt.Errorf("%w: tcpip-forward address", ErrBadRequest)
	}
	return p, nil
}

// openDirect serves a direct-tcpip channel (ssh -L, ssh -D). Destinations
// are never logged.
func (c *serverConn) openDirect(ctx context.Context, nc gossh.NewChannel) {
	if !c.id.HasScope(ScopeForward) {
		c.log.Warn("ssh forward refused", "reason", "missing scope "+ScopeForward)
		_ = nc.Reject(gossh.Prohibited, "missing scope "+ScopeForward)
		return
	}
	p, err := parseDirect(nc.ExtraData())
	if err != nil {
		c.log.Info("ssh forward refused", "reason", "bad direct-tcpip request")
		_ = nc.Reject(gossh.ConnectionFailed, "bad direct-tcpip request")
		return
	}
	msg, release := c.acquire("forward")
	if release == nil {
		_ = nc.Reject(gossh.ResourceShortage, msg)
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer release()
		dctx, cancel := context.WithTimeout(ctx, c.srv.cfg.DialTimeout)
		d := &net.Dialer{}
		tc, err := dialAllowed(dctx, d, c.srv.cfg.Resolver, c.srv.cfg.ForwardAllow, p.Host, uint16(p.Port))
		cancel()
		if err != nil {
			if errors.Is(err, ErrDestinationDenied) {
				c.log.Warn("ssh forward refused", "reason", "destination not allowed")
				_ = nc.Reject(gossh.Prohibited, "destination not allowed")
				return
			}
			c.log.Info("ssh forward failed", "reason", "connect failed")
			_ = nc.Reject(gossh.ConnectionFailed, "connect failed")
			return
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			_ = tc.Close()
			return
		}
		go gossh.DiscardRequests(reqs)
		join(ch, asHalfCloser(tc))
	}()
}

// globalRequests answers connection-level requests until the connection
// ends.
func (c *serverConn) globalRequests(ctx context.Context) {
	for req := range c.reqs {
		switch req.Type {
		case "tcpip-forward":
			c.listen(ctx, req)
		case "cancel-tcpip-forward":
			p, err := parseForward(req.Payload)
			if err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			key := listenerKey(p.Addr, p.Port)
			c.mu.Lock()
			ln, ok := c.listeners[key]
			delete(c.listeners, key)
			c.mu.Unlock()
			if ok {
				_ = ln.Close()
			}
			_ = req.Reply(ok, nil)
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

func listenerKey(addr string, port uint32) string {
	return addr + "\x00" + strconv.FormatUint(uint64(port), 10)
}

// bindAddr returns where a tcpip-forward for addr may listen, or "" when
// it may not.
func (c *serverConn) bindAddr(addr string) string {
	switch addr {
	case "", "localhost":
		if c.srv.cfg.AllowRemoteBind && addr == "" {
			return ""
		}
		return "127.0.0.1"
	}
	if ip, err := netip.ParseAddr(addr); err == nil {
		// "::ffff:127.0.0.1" and "::1%lo" bind the loopback address they
		// name; "0.0.0.0", "::" and zoned non-loopback addresses are not
		// loopback and need AllowRemoteBind.
		if ip = ip.Unmap(); ip.IsLoopback() {
			return ip.WithZone("").String()
		}
	}
	if c.srv.cfg.AllowRemoteBind {
		if addr == "*" {
			return ""
		}
		return addr
	}
	return "-"
}

// listen serves tcpip-forward (ssh -R).
func (c *serverConn) listen(ctx context.Context, req *gossh.Request) {
	refuse := func(reason string) {
		c.log.Warn("ssh listen refused", "reason", reason)
		_ = req.Reply(false, nil)
	}
	if !c.id.HasScope(ScopeListen) {
		refuse("missing scope " + ScopeListen)
		return
	}
	p, err := parseForward(req.Payload)
	if err != nil {
		refuse("bad tcpip-forward request")
		return
	}
	bind := c.bindAddr(p.Addr)
	if bind == "-" {
		refuse("non-loopback bind not allowed")
		return
	}
	c.mu.Lock()
	full := c.srv.cfg.MaxListeners > 0 && len(c.listeners) >= c.srv.cfg.MaxListeners
	draining := c.draining
	c.mu.Unlock()
	if full || draining {
		refuse("too many listeners")
		return
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(bind, strconv.FormatUint(uint64(p.Port), 10)))
	if err != nil {
		refuse("listen failed")
		return
	}
	port := uint32(ln.Addr().(*net.TCPAddr).Port)
	key := listenerKey(p.Addr, port)
	c.mu.Lock()
	if _, dup := c.listeners[key]; dup || c.draining {
		c.mu.Unlock()
		_ = ln.Close()
		refuse("already listening")
		return
	}
	c.listeners[key] = ln
	c.mu.Unlock()
	var reply []byte
	if p.Port == 0 {
		reply = gossh.Marshal(struct{ Port uint32 }{port})
	}
	if err := req.Reply(true, reply); err != nil {
		_ = ln.Close()
		return
	}
	c.log.Info("ssh listen", "port", port)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.acceptForwarded(ln, p.Addr, port)
	}()
}

// acceptForwarded carries each connection to ln as a forwarded-tcpip
// channel to the client.
func (c *serverConn) acceptForwarded(ln net.Listener, addr string, port uint32) {
	defer ln.Close()
	for {
		tc, err := ln.Accept()
		if err != nil {
			return
		}
		msg, release := c.acquire("forward")
		if release == nil {
			c.log.Warn("ssh forwarded connection refused", "reason", msg)
			_ = tc.Close()
			continue
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer release()
			orig, _ := netip.ParseAddrPort(tc.RemoteAddr().String())
			ch, reqs, err := c.sc.OpenChannel("forwarded-tcpip", gossh.Marshal(forwardedPayload{
				Addr: addr, Port: port, OrigAddr: orig.Addr().Unmap().String(), OrigPort: uint32(orig.Port()),
			}))
			if err != nil {
				_ = tc.Close()
				return
			}
			go gossh.DiscardRequests(reqs)
			join(ch, asHalfCloser(tc))
		}()
	}
}

func (c *serverConn) closeListeners() {
	c.mu.Lock()
	lns := c.listeners
	c.listeners = map[string]net.Listener{}
	c.mu.Unlock()
	for _, ln := range lns {
		_ = ln.Close()
	}
}

// halfCloser is a stream that can end its write side alone.
type halfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// join copies between a and b in both directions, passing each end of
// stream on as a half-close, and closes both when both directions are done
// or either fails.
func join(a, b halfCloser) {
	done := make(chan error, 2)
	cp := func(dst, src halfCloser) {
		buf := make([]byte, 64<<10)
		_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
		if err == nil {
			err = dst.CloseWrite()
		}
		done <- err
	}
	go cp(a, b)
	go cp(b, a)
	if err := <-done; err != nil {
		_ = a.Close()
		_ = b.Close()
	}
	<-done
	_ = a.Close()
	_ = b.Close()
}

// asHalfCloser returns c, or for a connection without CloseWrite a wrapper
// whose CloseWrite closes it.
func asHalfCloser(c net.Conn) halfCloser {
	if h, ok := c.(halfCloser); ok {
		return h
	}
	return fullCloser{c}
}

type fullCloser struct{ net.Conn }

func (f fullCloser) CloseWrite() error { return f.Close() }
