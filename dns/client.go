package dns

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
	mdns "github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// queryPaddingBlock is the block size queries are padded to (RFC 8467
// section 4.1: 128 octets for queries).
const queryPaddingBlock = 128

// Exchanger sends a query and returns the answer; Client and Forwarder are
// Exchangers.
type Exchanger interface {
	Exchange(ctx context.Context, q *mdns.Msg) (*mdns.Msg, error)
}

// Client is a DNS-over-QUIC client (RFC 9250) for any DoQ server: it keeps
// one QUIC connection, opens a stream per query and redials when the
// connection is gone. It is safe for concurrent use.
type Client struct {
	// Addr is the server's host:port.
	Addr string
	// TLSConfig verifies the server (ServerName, RootCAs); NextProtos is
	// set to "doq". Nil means the system roots and the host of Addr.
	TLSConfig *tls.Config
	// QUICConfig tunes the connection; nil means quic-go's defaults with a
	// 30s idle timeout.
	QUICConfig *quic.Config

	mu     sync.Mutex
	conn   *quic.Conn
	closed bool
}

// Exchange sends q over a new stream of the client's connection and returns
// the answer. q is not changed: the query sent has Message ID 0 and EDNS(0)
// padding (RFC 9250 sections 4.2.1 and 5.4); the answer gets q's ID back.
func (c *Client) Exchange(ctx context.Context, q *mdns.Msg) (*mdns.Msg, error) {
	for attempt := 0; ; attempt++ {
		conn, fresh, err := c.connection(ctx)
		if err != nil {
			return nil, err
		}
		st, err := conn.OpenStreamSync(ctx)
		if err != nil {
			c.drop(conn)
			if !fresh && attempt == 0 && ctx.Err() == nil {
				continue // the cached connection was gone: redial once
			}
			return nil, fmt.Errorf("alknet/dns: doq %s: %w", c.Addr, err)
		}
		resp, err := exchangeStream(ctx, quicStreamRW{st}, q)
		if err != nil {
			if conn.Context().Err() != nil {
				c.drop(conn)
			}
			return nil, fmt.Errorf("alknet/dns: doq %s: %w", c.Addr, err)
		}
		return resp, nil
	}
}

func (c *Client) connection(ctx context.Context) (*quic.Conn, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false, ErrClosed
	}
	if c.conn != nil && c.conn.Context().Err() == nil {
		return c.conn, false, nil
	}
	tc := &tls.Config{}
	if c.TLSConfig != nil {
		tc = c.TLSConfig.Clone()
	}
	tc.NextProtos = []string{ALPN}
	tc.MinVersion = tls.VersionTLS13
	qc := c.QUICConfig
	if qc == nil {
		qc = &quic.Config{MaxIdleTimeout: 30 * time.Second}
	}
	conn, err := quic.DialAddr(ctx, c.Addr, tc, qc)
	if err != nil {
		return nil, false, fmt.Errorf("alknet/dns: doq dial %s: %w", c.Addr, err)
	}
	c.conn = conn
	return conn, true, nil
}

func (c *Client) drop(conn *quic.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == conn {
		c.conn = nil
	}
	_ = conn.CloseWithError(quic.ApplicationErrorCode(CodeNoError), "")
}

// Close closes the connection (DOQ_NO_ERROR).
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn != nil {
		_ = c.conn.CloseWithError(quic.ApplicationErrorCode(CodeNoError), "")
		c.conn = nil
	}
	return nil
}

// Exchange sends q over a new stream of an alknet connection that
// negotiated "doq" (a pinned peer, dialed with core.Endpoint.Dial) and
// returns the answer.
func Exchange(ctx context.Context, conn core.Conn, q *mdns.Msg) (*mdns.Msg, error) {
	st, err := conn.OpenStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("alknet/dns: doq open stream: %w", err)
	}
	defer st.Close()
	return exchangeStream(ctx, coreStreamRW{st}, q)
}

// streamRW is one bidirectional stream, quic-go's or core's.
type streamRW interface {
	io.ReadWriter
	closeWrite() error
	abort()
	SetDeadline(t time.Time) error
}

type quicStreamRW struct{ *quic.Stream }

func (s quicStreamRW) closeWrite() error { return s.Stream.Close() }
func (s quicStreamRW) abort() {
	s.CancelRead(quic.StreamErrorCode(CodeRequestCancelled))
	s.CancelWrite(quic.StreamErrorCode(CodeRequestCancelled))
}

type coreStreamRW struct{ core.Stream }

func (s coreStreamRW) closeWrite() error { return s.CloseWrite() }
func (s coreStreamRW) abort()            { resetStream(s.Stream, CodeRequestCancelled) }

// exchangeStream runs one DoQ transaction on st.
func exchangeStream(ctx context.Context, st streamRW, q *mdns.Msg) (*mdns.Msg, error) {
	wire, err := packDoQQuery(q)
	if err != nil {
		st.abort()
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, st.abort)
	defer stop()
	if _, err := st.Write(AppendMessage(make([]byte, 0, len(wire)+2), wire)); err != nil {
		return nil, ctxErr(ctx, err)
	}
	if err := st.closeWrite(); err != nil {
		return nil, ctxErr(ctx, err)
	}
	out, err := ReadQuery(st, MaxMessageSize)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	resp := new(mdns.Msg)
	if err := resp.Unpack(out); err != nil {
		return nil, fmt.Errorf("%w: malformed response: %v", ErrProtocol, err)
	}
	if resp.Id != 0 {
		return nil, fmt.Errorf("%w: response id %d", ErrNonZeroID, resp.Id)
	}
	resp.Id = q.Id
	return resp, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// packDoQQuery packs a copy of q with ID 0, without edns-tcp-keepalive,
// with EDNS(0) and padded to a multiple of 128 bytes.
func packDoQQuery(q *mdns.Msg) ([]byte, error) {
	m := q.Copy()
	m.Id = 0
	opt := m.IsEdns0()
	if opt == nil {
		m.SetEdns0(1232, false)
		opt = m.IsEdns0()
	}
	kept := opt.Option[:0:0]
	for _, o := range opt.Option {
		if o.Option() != mdns.EDNS0TCPKEEPALIVE && o.Option() != mdns.EDNS0PADDING {
			kept = append(kept, o)
		}
	}
	opt.Option = kept
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("alknet/dns: pack query: %w", err)
	}
	l := len(wire) + 4
	n := (queryPaddingBlock - l%queryPaddingBlock) % queryPaddingBlock
	if l+n > MaxMessageSize {
		return wire, nil
	}
	opt.Option = append(opt.Option, &mdns.EDNS0_PADDING{Padding: make([]byte, n)})
	return m.Pack()
}
