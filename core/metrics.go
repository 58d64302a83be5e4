package core

import (
	"context"
	"sync/atomic"
	"time"
)

// Metrics receives the counters of an endpoint and of the handlers built
// on it, for whatever monitoring system the assembly layer picks (the http
// module exports them to Prometheus). Core and the handler modules call
// it; none of them imports a metrics library. Implementations must be safe
// for concurrent use and must return quickly: they run on connection and
// call paths. Embed NopMetrics to implement a subset.
type Metrics interface {
	// ConnAccepted reports a connection that passed admission (the ALPN's
	// access control and the caps); handshake is how long its TLS
	// handshake took.
	ConnAccepted(alpn string, handshake time.Duration)
	// ConnRefused reports a connection refused before its handler ran;
	// reason is one of the Refused constants. The ALPN is empty when the
	// handshake did not get as far as choosing one.
	ConnRefused(alpn, reason string)
	// ConnClosed reports an accepted connection that ended, with the bytes
	// it sent and received: QUIC payload bytes (retransmissions included)
	// on QUIC, TLS application bytes on TCP. Bytes are counted when the
	// connection ends.
	ConnClosed(alpn string, sent, received uint64)
	// StreamOpened and StreamClosed bracket each stream of an accepted
	// connection (on TCP, its one stream). Handlers that accept streams
	// from the raw quic-go connection (HTTP/3) report their own.
	StreamOpened(alpn string)
	StreamClosed(alpn string)
	// Operation reports one run of a named operation of a handler (a call
	// operation, say) with its outcome code ("OK" or an error code) and
	// how long it took.
	Operation(op, code string, dur time.Duration)
	// PeersReloaded reports one rebuild of the peer table and how long it
	// took.
	PeersReloaded(dur time.Duration)
}

// Reasons ConnRefused reports. They are few and fixed, so that they make
// good metric labels; the log line of the refusal has the full reason.
const (
	// RefusedHandshake: the TLS handshake failed or timed out (no usable
	// certificate, an ALPN the node does not serve, a peer that went away).
	RefusedHandshake = "handshake"
	// RefusedNoHandler: the ALPN has no handler (unregistered meanwhile).
	RefusedNoHandler = "no_handler"
	// RefusedForbidden: the ALPN's access control refused the peer.
	RefusedForbidden = "forbidden"
	// RefusedRevoked: the peer's entry is disabled.
	RefusedRevoked = "revoked"
	// RefusedLimit: a connection or handshake cap was reached.
	RefusedLimit = "limit"
	// RefusedShutdown: the endpoint is shutting down.
	RefusedShutdown = "shutdown"
)

// NopMetrics is a Metrics that records nothing.
type NopMetrics struct{}

func (NopMetrics) ConnAccepted(string, time.Duration)      {}
func (NopMetrics) ConnRefused(string, string)              {}
func (NopMetrics) ConnClosed(string, uint64, uint64)       {}
func (NopMetrics) StreamOpened(string)                     {}
func (NopMetrics) StreamClosed(string)                     {}
func (NopMetrics) Operation(string, string, time.Duration) {}
func (NopMetrics) PeersReloaded(time.Duration)             {}

// metricsBox holds an endpoint's Metrics behind an atomic pointer.
type metricsBox struct{ m Metrics }

// SetMetrics makes the endpoint report its counters to m; nil stops
// reporting. Connections accepted before the call report to the Metrics
// set when they were accepted.
func (e *Endpoint) SetMetrics(m Metrics) {
	if m == nil {
		e.metricsP.Store(nil)
		return
	}
	e.metricsP.Store(&metricsBox{m: m})
}

// metrics returns the endpoint's Metrics, or nil when none is set.
func (e *Endpoint) metrics() Metrics {
	if b := e.metricsP.Load(); b != nil {
		return b.m
	}
	return nil
}

// countRefused reports a refusal with close code code.
func (e *Endpoint) countRefused(alpn string, code uint64) {
	m := e.metrics()
	if m == nil {
		return
	}
	reason := RefusedForbidden
	switch code {
	case CodeLimit:
		reason = RefusedLimit
	case CodeRevoked:
		reason = RefusedRevoked
	case CodeShutdown:
		reason = RefusedShutdown
	}
	m.ConnRefused(alpn, reason)
}

// countRefusedReason reports a refusal with an explicit reason.
func (e *Endpoint) countRefusedReason(alpn, reason string) {
	if m := e.metrics(); m != nil {
		m.ConnRefused(alpn, reason)
	}
}

// countAccepted reports an admitted connection and remembers the Metrics
// that its streams and its end report to.
func (e *Endpoint) countAccepted(c *connMeta) {
	m := e.metrics()
	if m == nil {
		return
	}
	c.metrics = m
	m.ConnAccepted(c.alpn, c.handshake)
}

// countClosed reports the end of an accepted connection with its bytes.
func countClosed(c endpointConn) {
	m := c.meta().metrics
	if m == nil {
		return
	}
	var sent, recv uint64
	switch c := c.(type) {
	case *quicConn:
		st := c.qc.ConnectionStats()
		sent, recv = st.BytesSent, st.BytesReceived
	case *tcpConn:
		sent, recv = c.sent.Load(), c.recv.Load()
		if c.streamOpen.Swap(false) {
			m.StreamClosed(c.alpn)
		}
	}
	m.ConnClosed(c.meta().alpn, sent, recv)
}

// trackStream counts s as open until both its directions are done, it is
// closed, or its connection ends, whichever comes first.
func (c *quicConn) trackStream(s *quicStream) *quicStream {
	m := c.metrics
	if m == nil {
		return s
	}
	m.StreamOpened(c.alpn)
	prev := s.release
	var stop atomic.Pointer[func() bool]
	s.release = func() {
		if prev != nil {
			prev()
		}
		if f := stop.Load(); f != nil {
			(*f)()
		}
		m.StreamClosed(c.alpn)
	}
	f := context.AfterFunc(c.qc.Context(), func() { s.releaseOnce.Do(s.release) })
	stop.Store(&f)
	return s
}

// tcpStreamOpened counts the one stream of an accepted TCP connection; its
// close is counted with the connection's (countClosed).
func (c *tcpConn) tcpStreamOpened() {
	if m := c.metrics; m != nil && !c.streamOpen.Swap(true) {
		m.StreamOpened(c.alpn)
	}
}

// tcpRefusal is the Metrics reason of a refusal by startTCPHandshake.
func tcpRefusal(reason string) string {
	if reason == "endpoint shutting down" {
		return RefusedShutdown
	}
	return RefusedLimit
}
