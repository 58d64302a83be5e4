package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
)

// defaultDialTimeout bounds the QUIC+TLS handshake of CLI dials.
const defaultDialTimeout = 10 * time.Second

// dialer is a dial-only endpoint with the CLI's identity.
type dialer struct {
	ep      *core.Endpoint
	timeout time.Duration
	tcp     bool // dial over TCP+TLS instead of QUIC
	// resolve finds a bare node id's addresses; resolvedMu guards the
	// answers, kept for the dialer's life (tcpStreams dials again).
	resolve    func(context.Context, core.NodeID) (*resolved, error)
	resolvedMu sync.Mutex
	resolved   map[core.NodeID]*resolved
}

// newDialer makes a client endpoint on an ephemeral port.
func (g *globals) newDialer(keyFile string) (*dialer, error) {
	key, err := g.clientKey(keyFile)
	if err != nil {
		return nil, err
	}
	timeout := g.connectTimeout
	if timeout <= 0 {
		timeout = defaultDialTimeout
	}
	ep, err := core.NewEndpoint(core.Config{SecretKey: key, HandshakeTimeout: timeout})
	if err != nil {
		return nil, err
	}
	d := &dialer{ep: ep, timeout: timeout}
	d.resolve = func(ctx context.Context, id core.NodeID) (*resolved, error) { return g.resolveNode(ctx, id, false, d) }
	return d, nil
}

func (d *dialer) Close() error { return d.ep.Close() }

// dial connects to addr on alpn with a bounded handshake. addr is a node
// address, or a bare node id (alknet://<nodeid>) whose addresses are
// resolved first (see resolveNode) and tried in turn, each pinned to it.
func (d *dialer) dial(ctx context.Context, addr string, alpn string) (core.Conn, error) {
	a, err := parseTarget(addr)
	if err != nil {
		return nil, err
	}
	if a.Host != "" {
		return d.dialAddr(ctx, a, alpn)
	}
	r, err := d.lookup(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	return dialResolved(ctx, r, func(ctx context.Context, a core.Addr) (core.Conn, error) { return d.dialAddr(ctx, a, alpn) })
}

// lookup resolves id once per dialer.
func (d *dialer) lookup(ctx context.Context, id core.NodeID) (*resolved, error) {
	d.resolvedMu.Lock()
	defer d.resolvedMu.Unlock()
	if r, ok := d.resolved[id]; ok {
		return r, nil
	}
	if d.resolve == nil {
		return nil, fmt.Errorf("node %s: no address, and no resolver", id)
	}
	r, err := d.resolve(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.resolved == nil {
		d.resolved = map[core.NodeID]*resolved{}
	}
	d.resolved[id] = r
	return r, nil
}

// dialAddr dials one node address.
func (d *dialer) dialAddr(ctx context.Context, a core.Addr, alpn string) (core.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	dial := d.ep.Dial
	if d.tcp {
		dial = d.ep.DialTCP
	}
	c, err := dial(ctx, a, alpn)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("dial %s: no answer within %s (node unreachable?)", a, d.timeout)
		}
		return nil, err
	}
	return c, nil
}

// dialStreams is dial for protocols that open more than one stream on a
// connection (cp's control and data streams). Over TCP, where a connection
// carries one stream, each further stream gets a TCP connection of its own,
// with the same pinning and the same access check.
func (d *dialer) dialStreams(ctx context.Context, addr string, alpn string) (core.Conn, error) {
	c, err := d.dial(ctx, addr, alpn)
	if err != nil || !d.tcp {
		return c, err
	}
	return &tcpStreams{Conn: c, open: func(ctx context.Context) (core.Conn, error) { return d.dial(ctx, addr, alpn) }}, nil
}

// tcpStreams is a core.Conn whose streams are TCP connections: the first
// one's identity, address and context stand for the whole.
type tcpStreams struct {
	core.Conn
	open func(context.Context) (core.Conn, error)

	mu    sync.Mutex
	used  bool        // the first connection's stream is taken
	extra []core.Conn // connections dialed for further streams
}

func (c *tcpStreams) OpenStream(ctx context.Context) (core.Stream, error) {
	c.mu.Lock()
	first := !c.used
	c.used = true
	c.mu.Unlock()
	if first {
		return c.Conn.OpenStream(ctx)
	}
	nc, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.extra = append(c.extra, nc)
	c.mu.Unlock()
	return nc.OpenStream(ctx)
}

func (c *tcpStreams) Close(code uint64, reason string) error {
	c.mu.Lock()
	extra := c.extra
	c.extra = nil
	c.mu.Unlock()
	for _, x := range extra {
		_ = x.Close(code, reason)
	}
	return c.Conn.Close(code, reason)
}

// describe turns connection errors into the message a user should see: the
// remote's close reason when it refused us, and "access revoked" when the
// node closed the connection because this peer's access was removed,
// disabled or changed while connected.
func describe(err error) error {
	ce, ok := core.AsCloseError(err)
	if !ok || !ce.Remote {
		return err
	}
	switch {
	case ce.Code == core.CodeRevoked:
		if ce.Reason == "" {
			return errors.New("access revoked by the node")
		}
		if strings.HasPrefix(ce.Reason, "access revoked") {
			return errors.New(ce.Reason)
		}
		return fmt.Errorf("access revoked by the node: %s", ce.Reason)
	case ce.Code == core.CodeForbidden && strings.HasSuffix(ce.Reason, "authentication required"):
		return fmt.Errorf("%s (the node does not accept this client's key: it was never added, or it was removed or disabled; alknet id --fingerprint prints the key to give the node's operator)", ce.Reason)
	case ce.Reason != "":
		return errors.New(ce.Reason)
	}
	return err
}
