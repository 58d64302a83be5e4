package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
	alkssh "github.com/alkdev/alknet/ssh"
	"github.com/spf13/cobra"
	gossh "golang.org/x/crypto/ssh"
)

// Reconnect backoff of the SSH link.
const (
	linkMinBackoff = 500 * time.Millisecond
	linkMaxBackoff = 30 * time.Second
)

// sshLink is one SSH connection over QUIC to a node, re-established with
// backoff when it drops. The client key is the dialer's key on both layers.
type sshLink struct {
	d    *dialer
	key  core.SecretKey
	addr string
	log  *slog.Logger

	mu      sync.Mutex
	conn    core.Conn
	client  *gossh.Client
	backoff time.Duration
	next    time.Time // no new attempt before this
}

func (g *globals) newSSHLink(keyFile, addr string) (*sshLink, error) {
	if _, err := parseTarget(addr); err != nil {
		return nil, err
	}
	key, err := g.clientKey(keyFile)
	if err != nil {
		return nil, err
	}
	d, err := g.newDialer(keyFile)
	if err != nil {
		return nil, err
	}
	return &sshLink{d: d, key: key, addr: addr, log: g.logger()}, nil
}

// get returns the live client, connecting (after the backoff, if the last
// attempt failed) when there is none.
func (l *sshLink) get(ctx context.Context) (*gossh.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client != nil {
		return l.client, nil
	}
	if wait := time.Until(l.next); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	c, conn, err := l.connect(ctx)
	if err != nil {
		l.backoff = min(max(2*l.backoff, linkMinBackoff), linkMaxBackoff)
		l.next = time.Now().Add(l.backoff)
		return nil, err
	}
	l.backoff, l.next = 0, time.Time{}
	l.client, l.conn = c, conn
	go func() {
		_ = c.Wait()
		l.drop(c)
	}()
	return c, nil
}

func (l *sshLink) connect(ctx context.Context) (*gossh.Client, core.Conn, error) {
	conn, err := l.d.dial(ctx, l.addr, alkssh.ALPN)
	if err != nil {
		return nil, nil, describe(err)
	}
	hctx, cancel := context.WithTimeout(ctx, l.d.timeout)
	defer cancel()
	c, err := alkssh.NewClient(hctx, conn, l.key, "")
	if err != nil {
		_ = conn.Close(core.CodeOK, "")
		return nil, nil, describe(err)
	}
	return c, conn, nil
}

// drop forgets c if it is the current client, so the next get reconnects.
func (l *sshLink) drop(c *gossh.Client) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client != c {
		return
	}
	l.log.Warn("ssh connection lost; reconnecting on next use")
	_ = c.Close()
	_ = l.conn.Close(core.CodeOK, "")
	l.client, l.conn = nil, nil
}

// dialTCP opens a direct-tcpip channel, reconnecting once when the link
// turns out to be dead.
func (l *sshLink) dialTCP(ctx context.Context, host string, port uint16) (alkssh.HalfCloser, error) {
	for attempt := 0; ; attempt++ {
		c, err := l.get(ctx)
		if err != nil {
			return nil, err
		}
		ch, err := alkssh.DialTCP(ctx, c, host, port)
		var oe *gossh.OpenChannelError
		if err == nil || errors.As(err, &oe) || ctx.Err() != nil || attempt > 0 {
			return ch, err
		}
		l.drop(c)
	}
}

func (l *sshLink) Close() error {
	l.mu.Lock()
	c, conn := l.client, l.conn
	l.client, l.conn = nil, nil
	l.mu.Unlock()
	if c != nil {
		_ = c.Close()
		_ = conn.Close(core.CodeOK, "")
	}
	return l.d.Close()
}

// forwardSpec is [bind:]port:host:hostport.
type forwardSpec struct {
	bind     string
	port     int
	host     string
	hostPort int
}

// parseForwardSpec parses [bind:]port:host:hostport; IPv6 addresses go in
// brackets.
func parseForwardSpec(s string) (forwardSpec, error) {
	var parts []string
	rest := s
	for rest != "" {
		if strings.HasPrefix(rest, "[") {
			end := strings.Index(rest, "]")
			if end < 0 {
				return forwardSpec{}, fmt.Errorf("forward %q: missing ]", s)
			}
			parts = append(parts, rest[1:end])
			rest = rest[end+1:]
			if rest != "" && !strings.HasPrefix(rest, ":") {
				return forwardSpec{}, fmt.Errorf("forward %q: expected : after ]", s)
			}
			rest = strings.TrimPrefix(rest, ":")
			continue
		}
		p, r, _ := strings.Cut(rest, ":")
		parts = append(parts, p)
		rest = r
	}
	var f forwardSpec
	switch len(parts) {
	case 3:
		f.bind = "127.0.0.1"
	case 4:
		f.bind, parts = parts[0], parts[1:]
	default:
		return forwardSpec{}, fmt.Errorf("forward %q: want [bind:]port:host:hostport", s)
	}
	var err error
	if f.port, err = strconv.Atoi(parts[0]); err != nil || f.port < 0 || f.port > 65535 {
		return forwardSpec{}, fmt.Errorf("forward %q: bad port %q", s, parts[0])
	}
	f.host = parts[1]
	if f.hostPort, err = strconv.Atoi(parts[2]); err != nil || f.hostPort <= 0 || f.hostPort > 65535 {
		return forwardSpec{}, fmt.Errorf("forward %q: bad port %q", s, parts[2])
	}
	if f.host == "" {
		return forwardSpec{}, fmt.Errorf("forward %q: empty host", s)
	}
	if f.bind == "" || f.bind == "*" {
		f.bind = "0.0.0.0"
	}
	return f, nil
}

func newForwardCmd(g *globals) *cobra.Command {
	var keyFile string
	var locals, remotes []string
	cmd := &cobra.Command{
		Use:   "forward (-L|-R) [bind:]port:host:hostport ... ADDR",
		Short: "Forward TCP ports through a node, like ssh -L and ssh -R",
		Long: `Forward TCP ports through ADDR's alknet/ssh service without OpenSSH.

  -L [bind:]port:host:hostport   listen on bind:port here (default bind
                                 127.0.0.1); each connection goes to
                                 host:hostport as seen from the node
                                 (needs scope ssh:forward)
  -R [bind:]port:host:hostport   the node listens on bind:port (loopback
                                 unless the node allows otherwise); each
                                 connection comes to host:hostport here
                                 (needs scope ssh:listen)

Port 0 picks a free port. Each forward prints its listening address on
stdout once it is up ("L 127.0.0.1:8080" or "R 127.0.0.1:9000"). The SSH
connection is re-established with backoff when it drops. Runs until
interrupted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(locals) == 0 && len(remotes) == 0 {
				return errors.New("give at least one -L or -R")
			}
			var ls, rs []forwardSpec
			for _, s := range locals {
				f, err := parseForwardSpec(s)
				if err != nil {
					return err
				}
				ls = append(ls, f)
			}
			for _, s := range remotes {
				f, err := parseForwardSpec(s)
				if err != nil {
					return err
				}
				rs = append(rs, f)
			}
			link, err := g.newSSHLink(keyFile, args[0])
			if err != nil {
				return err
			}
			defer link.Close()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			// Connect once up front so that a refusal is an error, not a retry.
			if _, err := link.get(ctx); err != nil {
				return err
			}
			var out sync.Mutex
			printAddr := func(kind, addr string) {
				out.Lock()
				defer out.Unlock()
				fmt.Fprintln(g.stdout, kind, addr)
			}
			var wg sync.WaitGroup
			errc := make(chan error, len(ls)+len(rs))
			for _, f := range ls {
				ln, err := net.Listen("tcp", net.JoinHostPort(f.bind, strconv.Itoa(f.port)))
				if err != nil {
					return err
				}
				stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
				defer stop()
				printAddr("L", ln.Addr().String())
				wg.Add(1)
				go func() {
					defer wg.Done()
					errc <- serveLocalForward(ctx, link, ln, f)
				}()
			}
			for _, f := range rs {
				ready := make(chan string, 1)
				wg.Add(1)
				go func() {
					defer wg.Done()
					errc <- serveRemoteForward(ctx, link, f, ready)
				}()
				select {
				case addr := <-ready:
					printAddr("R", addr)
				case err := <-errc:
					cancel()
					wg.Wait()
					return err
				}
			}
			var first error
			select {
			case <-ctx.Done():
			case first = <-errc:
			}
			cancel()
			wg.Wait()
			return first
		},
	}
	cmd.Flags().StringArrayVarP(&locals, "local", "L", nil, "local forward [bind:]port:host:hostport (repeatable)")
	cmd.Flags().StringArrayVarP(&remotes, "remote", "R", nil, "remote forward [bind:]port:host:hostport (repeatable)")
	cmd.Flags().StringVar(&keyFile, "key", "", "ed25519 private key for both layers (default: the data directory's identity)")
	return cmd
}

// serveLocalForward carries each connection to ln to f's destination as a
// direct-tcpip channel.
func serveLocalForward(ctx context.Context, link *sshLink, ln net.Listener, f forwardSpec) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop := context.AfterFunc(ctx, func() { _ = c.Close() })
			defer stop()
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			ch, err := link.dialTCP(dctx, f.host, uint16(f.hostPort))
			cancel()
			if err != nil {
				link.log.Warn("forward failed", "err", err)
				_ = c.Close()
				return
			}
			alkssh.Join(alkssh.AsHalfCloser(c), ch)
		}()
	}
}

// serveRemoteForward asks the node to listen for f and carries each
// connection it forwards to f's local destination. When the link drops it
// reconnects and listens again; ready gets the node-side address once.
func serveRemoteForward(ctx context.Context, link *sshLink, f forwardSpec, ready chan<- string) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	first := true
	for ctx.Err() == nil {
		c, err := link.get(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			link.log.Warn("reconnect failed", "err", err)
			continue
		}
		ln, err := c.Listen("tcp", net.JoinHostPort(f.bind, strconv.Itoa(f.port)))
		if err != nil {
			if first {
				return fmt.Errorf("node refused to listen on %s: %w", net.JoinHostPort(f.bind, strconv.Itoa(f.port)), err)
			}
			link.drop(c)
			continue
		}
		if first {
			ready <- ln.Addr().String()
			first = false
			if f.port == 0 { // keep the same port across reconnects
				f.port = ln.Addr().(*net.TCPAddr).Port
			}
		}
		stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
		for {
			rc, err := ln.Accept()
			if err != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var d net.Dialer
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				lc, err := d.DialContext(dctx, "tcp", net.JoinHostPort(f.host, strconv.Itoa(f.hostPort)))
				cancel()
				if err != nil {
					link.log.Warn("forward failed", "err", "connect failed")
					_ = rc.Close()
					return
				}
				alkssh.Join(alkssh.AsHalfCloser(rc), alkssh.AsHalfCloser(lc))
			}()
		}
		stop()
		_ = ln.Close()
		if ctx.Err() == nil {
			link.drop(c)
		}
	}
	return nil
}
