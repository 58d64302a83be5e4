package pkarr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loopbackConn is a UDP socket on 127.0.0.1 that refuses to send anywhere
// but loopback, and remembers any attempt, so that no test can reach the
// public DHT even by mistake.
type loopbackConn struct {
	net.PacketConn
	guard *netGuard
}

type netGuard struct {
	mu  sync.Mutex
	bad []string
}

func (c loopbackConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || !ua.IP.IsLoopback() {
		c.guard.mu.Lock()
		c.guard.bad = append(c.guard.bad, addr.String())
		c.guard.mu.Unlock()
		return 0, fmt.Errorf("test: refusing to send to non-loopback %s", addr)
	}
	return c.PacketConn.WriteTo(b, addr)
}

// newGuard returns a guard whose violations fail the test at cleanup.
func newGuard(t testing.TB) *netGuard {
	g := &netGuard{}
	t.Cleanup(func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		assert.Empty(t, g.bad, "a DHT node tried to reach beyond loopback")
	})
	return g
}

func (g *netGuard) listen(t testing.TB) loopbackConn {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	return loopbackConn{PacketConn: c, guard: g}
}

// testDHT starts n DHT nodes on loopback, each bootstrapping from all the
// others (and extra), and fills their routing tables.
func testDHT(t testing.TB, n int, extra ...net.Addr) []*DHT {
	t.Helper()
	g := newGuard(t)
	conns := make([]loopbackConn, n)
	for i := range conns {
		conns[i] = g.listen(t)
	}
	nodes := make([]*DHT, n)
	for i := range nodes {
		var boot []string
		for j, c := range conns {
			if j != i {
				boot = append(boot, c.LocalAddr().String())
			}
		}
		for _, a := range extra {
			boot = append(boot, a.String())
		}
		d, err := NewDHT(DHTConfig{Conn: conns[i], Bootstrap: boot, SendRate: -1})
		require.NoError(t, err)
		t.Cleanup(func() { _ = d.Close() })
		nodes[i] = d
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i, d := range nodes {
		require.NoError(t, d.Bootstrap(ctx))
		require.GreaterOrEqual(t, d.Nodes(), min(n-1, lookupK), "node %d knows too few nodes", i)
	}
	return nodes
}

func TestDHTPublishResolve(t *testing.T) {
	nodes := testDHT(t, 6)
	key := newKey(t)
	p, err := Sign(key, Record{Seq: NextSeq(time.Now(), 0), Addrs: aps("192.0.2.1:4433", "[2001:db8::1]:4433"), ALPNs: []string{"alknet/ping"}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stored, err := nodes[0].Publish(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, 5, stored, "every other node stores it")

	for _, d := range nodes[1:] {
		got, err := d.Resolve(ctx, key.NodeID(), 0)
		require.NoError(t, err)
		assert.Equal(t, p, got)
		r, err := got.Record()
		require.NoError(t, err)
		assert.Equal(t, aps("192.0.2.1:4433", "[2001:db8::1]:4433"), r.Addrs)
	}

	// An unknown key is not found, and the lookup ends by itself.
	_, err = nodes[3].Resolve(ctx, newKey(t).NodeID(), 0)
	assert.ErrorIs(t, err, ErrNotFound)

	// Asking for records newer than the one stored finds nothing.
	_, err = nodes[2].Resolve(ctx, key.NodeID(), p.Seq)
	assert.ErrorIs(t, err, ErrNotFound)
}

// TestDHTReplayRejected: once a newer record is stored, the older one
// (validly signed, replayed) is refused by every storing node, and a
// lookup still returns the newer one.
func TestDHTReplayRejected(t *testing.T) {
	nodes := testDHT(t, 5)
	key := newKey(t)
	old, err := Sign(key, Record{Seq: 100, Addrs: aps("192.0.2.1:4433")})
	require.NoError(t, err)
	cur, err := Sign(key, Record{Seq: 200, Addrs: aps("192.0.2.2:4433")})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = nodes[0].Publish(ctx, cur)
	require.NoError(t, err)
	_, err = nodes[1].Publish(ctx, old)
	require.ErrorIs(t, err, ErrNotStored)
	assert.ErrorContains(t, err, "less than current", "the storing node's BEP44 error 302")
	got, err := nodes[4].Resolve(ctx, key.NodeID(), 0)
	require.NoError(t, err)
	assert.Equal(t, int64(200), got.Seq)
}

// evilStore keeps what is put into it and serves it changed by mutate.
type evilStore struct {
	mu     sync.Mutex
	item   *bep44.Item
	mutate func(*bep44.Item)
}

func (s *evilStore) Put(i *bep44.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.item = i
	return nil
}

func (s *evilStore) Get(bep44.Target) (*bep44.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.item == nil {
		return nil, bep44.ErrItemNotFound
	}
	i := *s.item
	if s.mutate != nil {
		s.mutate(&i)
	}
	return &i, nil
}

func (s *evilStore) Del(bep44.Target) error { return nil }

// evilNode starts a raw DHT node on loopback that holds seed (a valid
// record, stored through the library's checks) and answers every get with
// it, changed by mutate.
func evilNode(t testing.TB, g *netGuard, seed *SignedPacket, mutate func(*bep44.Item)) *dht.Server {
	t.Helper()
	c := g.listen(t)
	s, err := dht.NewServer(&dht.ServerConfig{
		Conn:          c,
		NoSecurity:    true,
		Store:         &evilStore{mutate: mutate},
		Exp:           time.Hour,
		StartingNodes: func() ([]dht.Addr, error) { return nil, errors.New("no bootstrap") },
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	k := [32]byte(seed.ID)
	// A put with a cancelled context only stores locally.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res := s.Put(ctx, dht.NewAddr(c.LocalAddr()), bep44.Put{V: seed.V, K: &k, Seq: seed.Seq, Sig: seed.Sig}, "", dht.QueryRateLimiting{})
	require.ErrorIs(t, res.Err, context.Canceled, "stored locally, not sent")
	return s
}

// TestDHTForgedAndOlderIgnored: a node that serves a forged record with a
// higher seq, or a replayed older record, cannot make a lookup return it.
func TestDHTForgedAndOlderIgnored(t *testing.T) {
	key := newKey(t)
	old, err := Sign(key, Record{Seq: 100, Addrs: aps("192.0.2.66:4433")})
	require.NoError(t, err)
	cur, err := Sign(key, Record{Seq: 200, Addrs: aps("192.0.2.2:4433")})
	require.NoError(t, err)
	// A forged record: attacker's addresses, a huge seq, the signature of
	// another key.
	attacker := newKey(t)
	fake, err := Sign(attacker, Record{Seq: 900, Addrs: aps("192.0.2.66:4433")})
	require.NoError(t, err)

	g := newGuard(t)
	forge := func(i *bep44.Item) { i.V, i.Seq, i.Sig = fake.V, 900, fake.Sig }
	forger := evilNode(t, g, old, forge)
	replayer := evilNode(t, g, old, nil)
	nodes := testDHT(t, 4, forger.Addr(), replayer.Addr())

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// Before the real record exists, the forgery is still not taken; the
	// replayed old record is valid and is all there is.
	got, err := nodes[2].Resolve(ctx, key.NodeID(), 0)
	require.NoError(t, err)
	assert.Equal(t, int64(100), got.Seq)
	assert.Equal(t, old.V, got.V)

	_, err = nodes[0].Publish(ctx, cur)
	require.NoError(t, err)
	for _, d := range nodes {
		got, err := d.Resolve(ctx, key.NodeID(), 0)
		require.NoError(t, err)
		assert.Equal(t, cur, got, "the newest valid record wins over the forged and the replayed one")
	}
	// With a cache that saw seq 200, the replay is refused outright.
	c := NewCache(0)
	require.NoError(t, c.Put(cur))
	assert.ErrorIs(t, c.Put(old), ErrStale)
}

// TestDHTOnlyForgery: a lookup where only a forger answers finds nothing.
func TestDHTOnlyForgery(t *testing.T) {
	key := newKey(t)
	fake, err := Sign(newKey(t), Record{Seq: 900, Addrs: aps("192.0.2.66:4433")})
	require.NoError(t, err)
	seed, err := Sign(key, Record{Seq: 1, Addrs: aps("192.0.2.1:4433")})
	require.NoError(t, err)
	g := newGuard(t)
	forger := evilNode(t, g, seed, func(i *bep44.Item) { i.V, i.Seq, i.Sig = fake.V, 900, fake.Sig })
	d, err := NewDHT(DHTConfig{Conn: g.listen(t), Bootstrap: []string{forger.Addr().String()}, SendRate: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = d.Resolve(ctx, key.NodeID(), 0)
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestDHTConfigErrors(t *testing.T) {
	_, err := NewDHT(DHTConfig{Bootstrap: []string{"no-port"}})
	assert.ErrorIs(t, err, ErrConfig)
	_, err = NewDHT(DHTConfig{Listen: "127.0.0.1:x", Bootstrap: []string{}})
	assert.ErrorIs(t, err, ErrConfig)

	// An empty bootstrap list: a lone node, which never falls back on the
	// public routers.
	g := newGuard(t)
	d, err := NewDHT(DHTConfig{Conn: g.listen(t), Bootstrap: []string{}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = d.Resolve(ctx, testKey(t).NodeID(), 0)
	assert.ErrorContains(t, err, "no bootstrap nodes configured")
	_, err = d.Publish(ctx, signed(t, 1, "192.0.2.1:1"))
	assert.ErrorContains(t, err, "no bootstrap nodes configured")
	require.NoError(t, d.Close())
	_, err = d.Resolve(ctx, testKey(t).NodeID(), 0)
	assert.ErrorIs(t, err, ErrClosed)
}

// TestDHTResolveHonoursContext: with a bootstrap node that never answers,
// Resolve and Publish return when ctx ends, not after the retries.
func TestDHTResolveHonoursContext(t *testing.T) {
	g := newGuard(t)
	silent := g.listen(t) // bound, never read
	d, err := NewDHT(DHTConfig{Conn: g.listen(t), Bootstrap: []string{silent.LocalAddr().String()}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = d.Resolve(ctx, testKey(t).NodeID(), 0)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "ended by ctx, not by the resends (3 x 2s)")
	ctx2, cancel2 := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel2()
	_, err = d.Publish(ctx2, signed(t, 1, "192.0.2.1:1"))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, d.Bootstrap(ctx2), "dht bootstrap")
}
