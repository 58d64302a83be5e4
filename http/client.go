package alkhttp

import (
	"net/http"

	"github.com/alkdev/alknet/core"
	"github.com/quic-go/quic-go/http3"
)

// NewClient returns an HTTP client for the node whose key is server: it
// pins that key (as every alknet client does; no CA is consulted) and
// presents key as its TLS client certificate, so that the node knows it
// as a pinned peer (a zero key makes an anonymous client). With h3 it
// speaks HTTP/3 over QUIC, else h2 (or HTTP/1.1) over TCP+TLS. URLs name
// the node's host:port with https. CloseIdleConnections releases it.
func NewClient(key core.SecretKey, server core.NodeID, h3 bool) (*http.Client, error) {
	if h3 {
		conf, err := core.ClientTLSConfig(key, server, ALPNH3)
		if err != nil {
			return nil, err
		}
		return &http.Client{Transport: &http3.Transport{TLSClientConfig: conf}}, nil
	}
	conf, err := core.ClientTLSConfig(key, server, ALPNH2, ALPNHTTP1)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true}}, nil
}
