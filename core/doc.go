// Package core is the foundation of alknet: one QUIC+TLS endpoint on one UDP
// port that routes each connection to a ProtocolHandler by the ALPN chosen in
// the TLS handshake, before any application byte is read.
//
// Every node has one ed25519 key (SecretKey). Its public half (NodeID) is the
// node's identity: it is the key of the self-signed certificate each side
// presents, and it is what peers pin when they dial. There is no certificate
// authority and no way to skip verification: a client always pins the node id
// it dials, and a server resolves the client's key through an
// IdentityProvider.
//
// Authorization is per node and per ALPN: Register takes an AccessControl that
// is checked against the caller's Identity before the handler runs. A refused
// peer's connection is closed with CodeForbidden and a reason it can print;
// the handler never sees it. Finer checks (this repository, this path) are the
// handler's own logic.
//
// Limits (handshake and idle timeouts, streams per connection, connections
// per peer and in total, receive windows) live in Config and have safe
// defaults. Anonymous callers have a pool of their own (in number, per
// source address, in streams and in lifetime), so they can never crowd out
// an authorized peer; QUIC Retry guards against floods of spoofed
// handshakes. Handlers are isolated: a panic closes only that connection.
//
// The public face: a client without a certificate is anonymous and reaches
// only open ALPNs; a ClientHello naming one of the DNS names of a configured
// X.509 certificate (Config.TLSCerts) gets that certificate instead of the
// ed25519 one; and with Config.ListenTCP the same router serves TCP+TLS on
// the same port number, one stream per connection, for the handlers that
// implement SingleStreamer.
//
// The package knows no protocol besides its own diagnostic alknet/ping.
package core
