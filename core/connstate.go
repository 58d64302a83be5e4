package core

import "crypto/tls"

// TLSStater is implemented by the connections an endpoint accepts and
// dials (QUIC and TCP+TLS): the state of their TLS handshake, with the
// server name the client asked for (SNI), the negotiated ALPN and the
// peer's certificates. Handlers that need it (an HTTP server filling
// Request.TLS) find it by type assertion on a Conn.
type TLSStater interface {
	TLSConnectionState() tls.ConnectionState
}

// TLSConnectionState implements TLSStater.
func (c *quicConn) TLSConnectionState() tls.ConnectionState {
	return c.qc.ConnectionState().TLS
}

// TLSConnectionState implements TLSStater.
func (c *tcpConn) TLSConnectionState() tls.ConnectionState {
	return c.tc.ConnectionState()
}

var (
	_ TLSStater = (*quicConn)(nil)
	_ TLSStater = (*tcpConn)(nil)
)

// Drainer is implemented by the connections an endpoint accepts: Draining
// is closed when the endpoint starts to drain (Shutdown, or Serve's context
// cancelled). Handlers that take streams from the raw quic-go connection,
// where AcceptStream's ErrShuttingDown never reaches them, watch it to end
// their connection gracefully (HTTP/3 GOAWAY). It is nil (never closed) on
// dialed connections.
type Drainer interface {
	Draining() <-chan struct{}
}

// Draining implements Drainer.
func (m *connMeta) Draining() <-chan struct{} {
	if m.drain == nil {
		return nil
	}
	return m.drain.Done()
}

var (
	_ Drainer = (*quicConn)(nil)
	_ Drainer = (*tcpConn)(nil)
)

// maxUniStreams is how many unidirectional streams a peer may have open:
// an HTTP/3 client needs three (control, QPACK encoder and decoder).
const maxUniStreams = 4

// tcpALPN is the ALPN a TCP+TLS connection is routed by: the negotiated
// one, or http/1.1 when the client offered none and http/1.1 is served
// (an HTTPS client without ALPN speaks HTTP/1.1, RFC 7301 section 3.1;
// some libraries send none).
func (e *Endpoint) tcpALPN(negotiated string) string {
	if negotiated != "" {
		return negotiated
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if rt, ok := e.routes["http/1.1"]; ok {
		if ss, ok := rt.h.(SingleStreamer); ok && ss.SingleStream() {
			return "http/1.1"
		}
	}
	return ""
}
