package core

import (
	"crypto/tls"
	"net"
	"net/netip"
	"testing"
)

// BenchCert exposes the endpoint certificate to the external benchmarks.
func BenchCert(tb testing.TB, k SecretKey) tls.Certificate {
	c, err := selfSignedCert(k)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// SetAfterResolveHook runs f in accept between resolving and checking a
// peer and tracking its connection. Call it before Serve.
func SetAfterResolveHook(e *Endpoint, f func()) { e.hookAfterResolve = f }

// SetConnInfoHook runs f for every incoming connection attempt with whether
// its source address was validated. Call it before Serve.
func SetConnInfoHook(e *Endpoint, f func(addrVerified bool)) { e.hookConnInfo = f }

// HandshakesInProgress returns the number of server handshakes in progress.
func HandshakesInProgress(e *Endpoint) int64 { return e.handshaking.Load() }

// Crash closes the endpoint's UDP socket without telling any peer, as a
// killed process would.
func Crash(e *Endpoint) { _ = e.udp.Close() }

// StatelessResetKeyOf returns the stateless reset key derived from k.
func StatelessResetKeyOf(k SecretKey) [32]byte { return statelessResetKey(k) }

// SourceKey returns what the per-address cap counts for addr.
func SourceKey(addr net.Addr) netip.Addr { return remoteIP(addr) }

// TCPHandshakesInProgress returns the number of TCP connections still in
// their TLS handshake.
func TCPHandshakesInProgress(e *Endpoint) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.tcpPending)
}

// EncodeStatus and ParseStatus expose the TCP status record.
func EncodeStatus(code uint64, reason string) []byte   { return encodeStatus(code, reason) }
func ParseStatus(b []byte) (int, uint64, string, bool) { return parseStatus(b) }
