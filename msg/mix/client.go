package mix

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
)

// Transport sends packets to mix nodes over ALPN, one stream per packet,
// keeping one connection per node.
type Transport struct {
	ep      *core.Endpoint
	timeout time.Duration

	mu    sync.Mutex
	conns map[core.NodeID]*transportConn
}

type transportConn struct {
	mu   sync.Mutex // held while dialing
	conn core.Conn
}

// NewTransport returns a Transport dialing from ep. timeout bounds a dial
// plus one packet's exchange when the caller's context has no earlier
// deadline; zero means 20 seconds.
func NewTransport(ep *core.Endpoint, timeout time.Duration) *Transport {
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	return &Transport{ep: ep, timeout: timeout, conns: make(map[core.NodeID]*transportConn)}
}

func (t *Transport) conn(ctx context.Context, to core.Addr, fresh bool) (core.Conn, error) {
	t.mu.Lock()
	tc := t.conns[to.ID]
	if tc == nil {
		tc = &transportConn{}
		t.conns[to.ID] = tc
	}
	t.mu.Unlock()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.conn != nil && !fresh {
		select {
		case <-tc.conn.Context().Done():
		default:
			return tc.conn, nil
		}
	}
	if tc.conn != nil {
		_ = tc.conn.Close(0, "")
		tc.conn = nil
	}
	c, err := t.ep.Dial(ctx, to, ALPN)
	if err != nil {
		return nil, err
	}
	tc.conn = c
	return c, nil
}

// Send implements Forwarder: it writes packet on a new stream to the node
// and waits for its status byte. A packet refused by the node returns an
// error wrapping ErrRejected.
func (t *Transport) Send(ctx context.Context, to core.Addr, packet []byte) error {
	if len(packet) != PacketSize {
		return fmt.Errorf("%w: %d bytes", ErrPacketSize, len(packet))
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		c, err := t.conn(ctx, to, attempt > 0)
		if err != nil {
			return err
		}
		st, err := exchange(ctx, c, packet)
		if err == nil {
			if st != StatusQueued {
				return fmt.Errorf("%w: %s", ErrRejected, StatusText(st))
			}
			return nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("alknet/mix: send to %s: %w", to.ID, lastErr)
}

func exchange(ctx context.Context, c core.Conn, packet []byte) (byte, error) {
	s, err := c.OpenStream(ctx)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if _, err := s.Write(packet); err != nil {
		return 0, err
	}
	if err := s.CloseWrite(); err != nil {
		return 0, err
	}
	var st [1]byte
	if _, err := io.ReadFull(s, st[:]); err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	return st[0], nil
}

// Close closes the transport's connections.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, tc := range t.conns {
		if tc.conn != nil {
			_ = tc.conn.Close(0, "")
		}
		delete(t.conns, id)
	}
	return nil
}

// StatusText names a status code.
func StatusText(st byte) string {
	switch st {
	case StatusQueued:
		return "queued"
	case StatusSize:
		return "bad packet size or version"
	case StatusEpoch:
		return "epoch out of range"
	case StatusInvalid:
		return "invalid packet"
	case StatusReplay:
		return "replayed packet"
	case StatusBusy:
		return "queue full"
	case StatusInternal:
		return "internal error"
	}
	return fmt.Sprintf("status %d", st)
}

// WrapOptions tune how a sender builds a packet.
type WrapOptions struct {
	// MeanDelay is the mean per-hop delay. Zero means the directory's;
	// negative means no delay.
	MeanDelay time.Duration
	// Rand supplies keys, padding, route choice and delays. Nil means
	// crypto/rand.
	Rand io.Reader
	// Now picks the epoch. Zero means time.Now().
	Now time.Time
	// Extra hops appended after the layers (a loop packet's return to its
	// sender).
	Extra []DirNode
}

// Route is the path a wrapped packet takes.
type Route struct {
	Epoch  uint32
	Nodes  []DirNode
	Delays []time.Duration
}

// Wrap builds a packet carrying m to recipient through one random node of
// each layer of dir, for the current epoch. It returns the packet and the
// route; the packet goes to Route.Nodes[0].
func Wrap(dir *Directory, recipient core.NodeID, m Message, opts WrapOptions) ([]byte, Route, error) {
	return wrapRoute(dir, opts, Routing{Command: Deliver, Node: recipient}, m)
}

func wrap(dir *Directory, opts WrapOptions, final Routing, m Message) ([]byte, DirNode, error) {
	pkt, r, err := wrapRoute(dir, opts, final, m)
	if err != nil {
		return nil, DirNode{}, err
	}
	return pkt, r.Nodes[0], nil
}

func wrapRoute(dir *Directory, opts WrapOptions, final Routing, m Message) ([]byte, Route, error) {
	if dir == nil {
		return nil, Route{}, fmt.Errorf("%w: no directory", ErrRoute)
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	mean := opts.MeanDelay
	if mean == 0 {
		mean = dir.MeanDelay
	}
	e := Epoch(opts.Now, dir.Period)
	if !dir.Covers(e) {
		return nil, Route{}, fmt.Errorf("%w: the directory has no keys for epoch %d (it expired %s)", ErrRoute, e, dir.Expires().UTC().Format(time.RFC3339))
	}
	nodes, err := dir.Route(opts.Rand)
	if err != nil {
		return nil, Route{}, err
	}
	nodes = append(nodes, opts.Extra...)
	r := Route{Epoch: e, Nodes: nodes}
	hops := make([]Hop, len(nodes))
	for i, n := range nodes {
		k, _ := n.Key(dir, e)
		d, err := ExpDelay(opts.Rand, mean)
		if err != nil {
			return nil, Route{}, err
		}
		if i >= dir.Layers {
			d = 0 // a loop's return hop: the sender itself
		}
		hops[i] = Hop{Node: n.ID, Key: k, Delay: d}
		r.Delays = append(r.Delays, d.Truncate(time.Microsecond))
	}
	pkt, err := NewPacket(opts.Rand, e, hops, final, m)
	if err != nil {
		return nil, Route{}, err
	}
	return pkt, r, nil
}

// Client sends messages into the mix network.
type Client struct {
	// Directory returns the current verified directory.
	Directory func() *Directory
	// Forwarder sends the packet to the first hop.
	Forwarder Forwarder
	// Options tune packet building.
	Options WrapOptions
}

// Send wraps m for recipient and hands the packet to the first hop of a
// random route. It returns the route taken.
func (c *Client) Send(ctx context.Context, recipient core.NodeID, m Message) (Route, error) {
	if c.Directory == nil || c.Forwarder == nil {
		return Route{}, errors.New("alknet/mix: Client needs Directory and Forwarder")
	}
	pkt, r, err := Wrap(c.Directory(), recipient, m, c.Options)
	if err != nil {
		return Route{}, err
	}
	if err := c.Forwarder.Send(ctx, r.Nodes[0].NodeAddr(), pkt); err != nil {
		return r, err
	}
	return r, nil
}

var _ Forwarder = (*Transport)(nil)
