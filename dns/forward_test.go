package dns

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const upstreamZone = `$ORIGIN elsewhere.test.
@    60 IN SOA ns.elsewhere.test. h.elsewhere.test. 1 3600 600 604800 30
@    60 IN NS  ns
www  20 IN A   198.51.100.7
`

// countingHandler counts the queries it answers.
type countingHandler struct {
	h Handler
	n atomic.Int32
}

func (c *countingHandler) ServeDNS(ctx context.Context, req *Request) (*mdns.Msg, error) {
	c.n.Add(1)
	return c.h.ServeDNS(ctx, req)
}

// upstreamServer answers elsewhere.test over UDP/TCP and DoQ.
func upstreamServer(t *testing.T) (*countingHandler, string, *core.Endpoint, testCA) {
	t.Helper()
	ch := &countingHandler{h: NewResolver(mustZones(t, upstreamZone, "elsewhere.test."), nil)}
	srv, err := NewServer(Config{Handler: ch})
	require.NoError(t, err)
	addr := startClassic(t, srv)
	ep, ca := startDoQ(t, srv, core.Config{})
	return ch, addr, ep, ca
}

func TestForwarder(t *testing.T) {
	up, udpAddr, ep, ca := upstreamServer(t)
	for _, u := range []string{"udp://" + udpAddr, "tcp://" + udpAddr, "doq://" + ep.LocalAddr().String() + "#" + testServerName} {
		t.Run(u[:3], func(t *testing.T) {
			fwd, err := NewForwarder(ForwardConfig{Upstreams: []string{u}, RootCAs: ca.pool})
			require.NoError(t, err)
			t.Cleanup(func() { _ = fwd.Close() })
			// The node: its own zone, and everything else forwarded.
			node := newServer(t, mustZones(t, exampleZone, "example.test."), fwd, Config{})
			addr := startClassic(t, node)
			before := up.n.Load()
			q := query("www.elsewhere.test", mdns.TypeA, true)
			r := exchangeClassic(t, "udp", addr, q)
			assert.Equal(t, q.Id, r.Id)
			assert.True(t, r.RecursionAvailable)
			assert.False(t, r.Authoritative)
			require.Len(t, r.Answer, 1)
			assert.Equal(t, "198.51.100.7", r.Answer[0].(*mdns.A).A.String())
			// The second time comes from the cache.
			r = exchangeClassic(t, "udp", addr, query("www.elsewhere.test", mdns.TypeA, true))
			require.Len(t, r.Answer, 1)
			assert.LessOrEqual(t, r.Answer[0].Header().Ttl, uint32(20))
			assert.Equal(t, before+1, up.n.Load(), "one upstream query for two client queries")
			// Local names are never forwarded.
			r = exchangeClassic(t, "udp", addr, query("nope.example.test", mdns.TypeA, true))
			assert.Equal(t, mdns.RcodeNameError, r.Rcode)
			assert.True(t, r.Authoritative)
			// A CNAME out of the local zones is finished upstream.
			r = exchangeClassic(t, "udp", addr, query("far.example.test", mdns.TypeA, true))
			assert.Equal(t, []string{"far.example.test.\t3600\tIN\tCNAME\twww.elsewhere.test."}, rrStrings(r.Answer[:1]))
			require.Len(t, r.Answer, 2)
			// NXDOMAIN upstream is passed on, with the upstream SOA.
			r = exchangeClassic(t, "udp", addr, query("nope.elsewhere.test", mdns.TypeA, true))
			assert.Equal(t, mdns.RcodeNameError, r.Rcode)
			require.Len(t, r.Ns, 1)
			assert.Equal(t, "elsewhere.test.", r.Ns[0].Header().Name)
			// Without RD nothing is forwarded.
			q = query("www.elsewhere.test", mdns.TypeA, true)
			q.RecursionDesired = false
			r = exchangeClassic(t, "udp", addr, q)
			assert.Equal(t, mdns.RcodeRefused, r.Rcode)
		})
	}
}

func TestForwarderFallsBackAndFails(t *testing.T) {
	_, udpAddr, _, _ := upstreamServer(t)
	dead := freeAddr(t)
	fwd, err := NewForwarder(ForwardConfig{Upstreams: []string{"udp://" + dead, "udp://" + udpAddr}, Timeout: 300 * time.Millisecond, CacheSize: -1})
	require.NoError(t, err)
	r, err := fwd.Exchange(t.Context(), query("www.elsewhere.test", mdns.TypeA, true))
	require.NoError(t, err)
	assert.Len(t, r.Answer, 1)

	only, err := NewForwarder(ForwardConfig{Upstreams: []string{"udp://" + dead}, Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	_, err = only.Exchange(t.Context(), query("www.elsewhere.test", mdns.TypeA, true))
	assert.ErrorIs(t, err, ErrNoUpstream)
	// The server turns that into SERVFAIL.
	node := newServer(t, nil, only, Config{})
	r = exchangeClassic(t, "udp", startClassic(t, node), query("www.elsewhere.test", mdns.TypeA, true))
	assert.Equal(t, mdns.RcodeServerFailure, r.Rcode)
}

func TestParseUpstream(t *testing.T) {
	for _, bad := range []string{"8.8.8.8", "http://x", "udp://", "doq://x/path", "udp://x#name", "udp://u@x"} {
		_, err := NewForwarder(ForwardConfig{Upstreams: []string{bad}})
		assert.ErrorIs(t, err, ErrBadUpstream, bad)
	}
	f, err := NewForwarder(ForwardConfig{Upstreams: []string{"udp://192.0.2.1", "doq://dns.example", "tcp://[2001:db8::1]"}})
	require.NoError(t, err)
	assert.Equal(t, "192.0.2.1:53", f.ups[0].addr)
	assert.Equal(t, "dns.example:853", f.ups[1].doq.Addr)
	assert.Equal(t, "dns.example", f.ups[1].doq.TLSConfig.ServerName)
	assert.Equal(t, "[2001:db8::1]:53", f.ups[2].addr)
}

func TestCacheHonoursTTL(t *testing.T) {
	c := newCache(2, time.Hour)
	now := time.Unix(1000, 0)
	m := new(mdns.Msg)
	m.SetQuestion("a.test.", mdns.TypeA)
	m.Answer = []mdns.RR{mustRR(t, "a.test", "A", "192.0.2.1", 10), mustRR(t, "a.test", "A", "192.0.2.2", 5)}
	k := cacheKey{name: "a.test.", qtype: mdns.TypeA, qclass: mdns.ClassINET}
	c.put(k, m, now)
	got, ok := c.get(k, now.Add(3*time.Second))
	require.True(t, ok)
	assert.Equal(t, uint32(7), got.Answer[0].Header().Ttl)
	assert.Equal(t, uint32(2), got.Answer[1].Header().Ttl)
	assert.Equal(t, uint32(10), m.Answer[0].Header().Ttl, "the stored answer is not changed")
	_, ok = c.get(k, now.Add(5*time.Second))
	assert.False(t, ok, "gone when the smallest TTL runs out")

	// A negative answer lives for the SOA's min(TTL, MINIMUM) (RFC 2308).
	neg := new(mdns.Msg)
	neg.SetQuestion("b.test.", mdns.TypeA)
	neg.Rcode = mdns.RcodeNameError
	neg.Ns = []mdns.RR{mustRR(t, "test", "SOA", "ns.test. h.test. 1 1 1 1 30", 600)}
	kn := cacheKey{name: "b.test.", qtype: mdns.TypeA, qclass: mdns.ClassINET}
	c.put(kn, neg, now)
	_, ok = c.get(kn, now.Add(29*time.Second))
	assert.True(t, ok)
	_, ok = c.get(kn, now.Add(30*time.Second))
	assert.False(t, ok)

	// Full: the oldest expired or an arbitrary entry goes.
	for i := range 5 {
		c.put(cacheKey{name: string(rune('c'+i)) + ".test."}, m, now)
	}
	assert.LessOrEqual(t, c.len(), 2)

	// The cap on TTLs.
	capped := newCache(10, 2*time.Second)
	capped.put(k, m, now)
	_, ok = capped.get(k, now.Add(2*time.Second))
	assert.False(t, ok)
}
