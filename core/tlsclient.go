package core

import "crypto/tls"

// ClientTLSConfig returns a TLS client config for stock protocol clients
// (net/http, quic-go's http3) that talk to the node server as an alknet
// client does: the server's certificate must be the self-signed ed25519
// certificate of server (its key is pinned, CA chains are ignored), and
// key, when not zero, is presented as a self-signed client certificate so
// that the node resolves this client's identity. A zero key makes an
// anonymous client. alpns are offered in order.
func ClientTLSConfig(key SecretKey, server NodeID, alpns ...string) (*tls.Config, error) {
	var cert tls.Certificate
	if !key.IsZero() {
		var err error
		if cert, err = selfSignedCert(key); err != nil {
			return nil, err
		}
	}
	c := clientTLS(cert, server, "")
	if key.IsZero() {
		c.Certificates = nil
	}
	c.NextProtos = append([]string(nil), alpns...)
	return c, nil
}
