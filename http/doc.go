// Package alkhttp serves HTTP on an alknet endpoint: HTTP/3 on its QUIC
// connections (ALPN h3) and HTTP/2 and HTTP/1.1 on its TCP+TLS listener
// (h2, http/1.1), all on the node's one port number.
//
// New turns any http.Handler into a core.ProtocolHandler:
//
//	ep.Register(alkhttp.New(mux, nil), core.AccessControl{})
//
// Handlers learn who called with Caller: the identity of an
// "Authorization: Bearer alk_..." peer token, else the identity of the TLS
// client certificate (a pinned peer), else nobody; Require gates a route on
// scopes with 401/403 answers. Responses over TCP carry Alt-Svc for h3.
//
// The package also holds the parts the alknet binary mounts: the call
// gateway (Gateway: REST, batch, Server-Sent Events, a WebSocket of call
// envelopes, OpenAPI 3.1) over a call.Registry with the same per-operation
// access control as alknet/call; an MCP endpoint (NewMCP) whose tools are
// the operations the caller may use; a static site (Static) jailed in its
// root with os.Root; reverse-proxy routes (NewProxy); and a Prometheus
// exporter of core.Metrics (Metrics). NewSite composes them.
//
// Limits: request header size, body size, header and idle timeouts and
// concurrent requests per connection (a smaller cap for anonymous
// connections) are Options with safe defaults; the endpoint's own caps
// (connections per source, handshakes in progress, QUIC streams) apply
// first. HTTP/3 datagrams are advertised only where the endpoint's QUIC
// enables them. The wire behaviour is in SPEC.md.
//
// Security: every part of the site checks the caller itself (routes with
// scopes, the gateway with each operation's access control, /metrics with
// the metrics scope); anonymous callers reach only what allows them. A
// bad bearer token is a 401, never a fall back to the connection's
// identity. The proxy never forwards the caller's credentials upstream and
// replaces any Alknet-Peer-* headers the client sent. The gateway refuses
// cross-origin browser POSTs and WebSocket origins other than the page's
// own unless allowed. Tokens are never logged.
package alkhttp
