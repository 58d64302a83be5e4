package msg

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// rateLimiter is a set of token buckets by key, each refilled at rate per
// second up to burst. It tracks at most maxTracked keys: when full, it
// forgets the buckets that have refilled (they hold no state worth
// keeping), and if none has, it refuses new keys until some do, so a flood
// of fresh keys cannot grow it without bound.
type rateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

const maxTracked = 1 << 16

// newRateLimiter returns nil (no limit) for a negative rate.
func newRateLimiter(rate float64, burst int) *rateLimiter {
	if rate < 0 {
		return nil
	}
	return &rateLimiter{rate: rate, burst: float64(max(burst, 1)), now: time.Now, buckets: map[string]*bucket{}}
}

// allow takes a token for key and reports whether there was one.
func (l *rateLimiter) allow(key string) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxTracked {
			l.sweep(now)
			if len(l.buckets) >= maxTracked {
				return false
			}
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep drops buckets that would be full by now.
func (l *rateLimiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// addrKey is the rate-limit key of a remote address: the IPv4 address, or
// the /64 of an IPv6 address (one host usually holds a whole /64).
func addrKey(a net.Addr) string {
	var ap netip.AddrPort
	switch v := a.(type) {
	case *net.UDPAddr:
		ap = v.AddrPort()
	case *net.TCPAddr:
		ap = v.AddrPort()
	default:
		if a == nil {
			return ""
		}
		p, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return a.String()
		}
		ap = p
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
