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
