package dns

import (
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

type cacheKey struct {
	name          string
	qtype, qclass uint16
	do, cd        bool
}

type cacheEntry struct {
	msg     *mdns.Msg
	stored  time.Time
	expires time.Time
}

// cache keeps upstream answers until the smallest TTL among their records
// runs out.
type cache struct {
	mu     sync.Mutex
	size   int
	maxTTL time.Duration
	m      map[cacheKey]cacheEntry
}

func newCache(size int, maxTTL time.Duration) *cache {
	return &cache{size: size, maxTTL: maxTTL, m: make(map[cacheKey]cacheEntry)}
}

// get returns a copy of a live entry with its TTLs lowered by its age.
func (c *cache) get(k cacheKey, now time.Time) (*mdns.Msg, bool) {
	c.mu.Lock()
	e, ok := c.m[k]
	if ok && !now.Before(e.expires) {
		delete(c.m, k)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	m := e.msg.Copy()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, sec := range [][]mdns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype == mdns.TypeOPT {
				continue
			}
			h := rr.Header()
			if h.Ttl > age {
				h.Ttl -= age
			} else {
				h.Ttl = 0
			}
		}
	}
	return m, true
}

// put stores a copy of m for its TTL: the smallest TTL of its answer and
// authority records, and for a negative answer the SOA's (RFC 2308 section
// 5). An answer with no TTL to go by is not kept.
func (c *cache) put(k cacheKey, m *mdns.Msg, now time.Time) {
	ttl, ok := answerTTL(m)
	if !ok || ttl == 0 {
		return
	}
	d := min(time.Duration(ttl)*time.Second, c.maxTTL)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.size {
		// Drop expired entries; if none, an arbitrary one.
		for key, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, key)
			}
		}
		for key := range c.m {
			if len(c.m) < c.size {
				break
			}
			delete(c.m, key)
		}
	}
	c.m[k] = cacheEntry{msg: m.Copy(), stored: now, expires: now.Add(d)}
}

func answerTTL(m *mdns.Msg) (uint32, bool) {
	var ttl uint32
	found := false
	take := func(t uint32) {
		if !found || t < ttl {
			ttl = t
		}
		found = true
	}
	for _, rr := range m.Answer {
		take(rr.Header().Ttl)
	}
	for _, rr := range m.Ns {
		if soa, ok := rr.(*mdns.SOA); ok && len(m.Answer) == 0 {
			take(min(soa.Hdr.Ttl, soa.Minttl))
			continue
		}
		take(rr.Header().Ttl)
	}
	return ttl, found
}

// len is the number of entries, live or not.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
