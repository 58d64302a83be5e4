package mix

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/alkdev/alknet/core/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeForwarder records what a node sends instead of sending it.
type fakeForwarder struct {
	mu   sync.Mutex
	sent []core.Addr
	pkts [][]byte
	err  error
}

func (f *fakeForwarder) Send(_ context.Context, to core.Addr, pkt []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, to)
	f.pkts = append(f.pkts, bytes.Clone(pkt))
	return f.err
}

// nodeFor returns the index of the test net's node with id.
func (tn *testNet) index(id core.NodeID) int {
	for i, k := range tn.keys {
		if k.NodeID() == id {
			return i
		}
	}
	return -1
}

func TestNodeReplayDroppedAcrossRestart(t *testing.T) {
	now := time.Now()
	tn := newTestNet(t, 3, 3, nil, now, testPeriod, time.Millisecond)
	pkt, route, err := Wrap(tn.dir, core.NodeID{9}, Message{Envelope: []byte("hello")}, WrapOptions{})
	require.NoError(t, err)
	other, _, err := Wrap(tn.dir, core.NodeID{9}, Message{Envelope: []byte("other")}, WrapOptions{})
	require.NoError(t, err)
	key := tn.keys[tn.index(route.Nodes[0].ID)]
	path := filepath.Join(t.TempDir(), "alknet.db")

	start := func() (*Node, *store.DB) {
		db, err := store.Open(path)
		require.NoError(t, err)
		rs, err := NewReplayStore(t.Context(), db)
		require.NoError(t, err)
		n, err := New(Config{Key: key, Directory: func() *Directory { return tn.dir }, Forwarder: &fakeForwarder{}, Replay: rs})
		require.NoError(t, err)
		return n, db
	}
	n, db := start()
	require.NoError(t, n.HandlePacket(t.Context(), bytes.Clone(pkt)))
	err = n.HandlePacket(t.Context(), bytes.Clone(pkt))
	require.ErrorIs(t, err, ErrReplay)
	assert.Equal(t, StatusReplay, statusOf(err))
	assert.Equal(t, uint64(1), n.Stats().DroppedReplay)
	assert.Equal(t, 1, n.Stats().Queued)
	require.NoError(t, db.Close())

	n, db = start()
	defer db.Close()
	require.ErrorIs(t, n.HandlePacket(t.Context(), bytes.Clone(pkt)), ErrReplay, "a restart reopened a replay")
	assert.Equal(t, uint64(1), n.Stats().DroppedReplay)
	assert.Equal(t, 0, n.Stats().Queued)
	require.NoError(t, n.HandlePacket(t.Context(), other), "a fresh packet is still accepted")
	rs, err := NewReplayStore(t.Context(), db)
	require.NoError(t, err)
	c, err := rs.Count(t.Context(), route.Epoch)
	require.NoError(t, err)
	assert.Equal(t, 2, c)
	require.NoError(t, rs.Forget(t.Context(), route.Epoch+1))
	c, err = rs.Count(t.Context(), route.Epoch)
	require.NoError(t, err)
	assert.Equal(t, 0, c)
}

func TestNodeEpochWindow(t *testing.T) {
	period := time.Hour
	base := EpochStart(500000, period)
	tn := newTestNet(t, 1, 1, nil, base.Add(period/2), period, 0)
	var now atomic.Pointer[time.Time]
	n, err := New(Config{Key: tn.keys[0], Directory: func() *Directory { return tn.dir }, Forwarder: &fakeForwarder{},
		Deliver: func(context.Context, Delivery) error { return nil }, EpochPeriod: period, Grace: 10 * time.Minute,
		Now: func() time.Time { return *now.Load() }})
	require.NoError(t, err)
	packet := func(at time.Time) []byte {
		p, _, err := Wrap(tn.dir, core.NodeID{1}, Message{}, WrapOptions{Now: at})
		require.NoError(t, err)
		return p
	}
	for _, c := range []struct {
		name     string
		built    time.Time
		received time.Time
		err      error
	}{
		{"same epoch", base.Add(time.Minute), base.Add(2 * time.Minute), nil},
		{"previous epoch within grace", base.Add(-time.Minute), base.Add(9 * time.Minute), nil},
		{"previous epoch after grace", base.Add(-time.Minute), base.Add(11 * time.Minute), ErrEpoch},
		{"next epoch within grace", base.Add(period + time.Minute), base.Add(period - 9*time.Minute), nil},
		{"next epoch too early", base.Add(period + time.Minute), base.Add(period - 11*time.Minute), ErrEpoch},
		{"two epochs old", base.Add(-period - time.Minute), base.Add(time.Minute), ErrEpoch},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.received
			now.Store(&r)
			err := n.HandlePacket(t.Context(), packet(c.built))
			if c.err == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, c.err)
			}
		})
	}
	assert.Equal(t, uint64(3), n.Stats().DroppedEpoch)
}

func TestNodeDropsAndCounts(t *testing.T) {
	now := time.Now()
	tn := newTestNet(t, 1, 1, nil, now, testPeriod, time.Hour)
	n, err := New(Config{Key: tn.keys[0], Directory: func() *Directory { return tn.dir }, Forwarder: &fakeForwarder{}, MaxQueue: 2,
		Deliver: func(context.Context, Delivery) error { return nil }})
	require.NoError(t, err)
	for i := range 3 {
		p, _, err := Wrap(tn.dir, core.NodeID{1}, Message{}, WrapOptions{})
		require.NoError(t, err)
		err = n.HandlePacket(t.Context(), p)
		if i < 2 {
			require.NoError(t, err)
		} else {
			assert.ErrorIs(t, err, ErrQueueFull)
		}
	}
	assert.ErrorIs(t, n.HandlePacket(t.Context(), make([]byte, 100)), ErrPacketSize)
	bad := make([]byte, PacketSize)
	bad[0] = Version
	assert.Error(t, n.HandlePacket(t.Context(), bad))
	s := n.Stats()
	assert.Equal(t, uint64(5), s.Received)
	assert.Equal(t, uint64(1), s.DroppedQueueFull)
	assert.Equal(t, uint64(2), s.DroppedInvalid+s.DroppedEpoch)
	assert.Equal(t, 2, s.Queued)

	noDeliver, err := New(Config{Key: tn.keys[0], Directory: func() *Directory { return tn.dir }, Forwarder: &fakeForwarder{}})
	require.NoError(t, err)
	p, _, err := Wrap(tn.dir, core.NodeID{1}, Message{}, WrapOptions{})
	require.NoError(t, err)
	assert.ErrorIs(t, noDeliver.HandlePacket(t.Context(), p), ErrNoDeliver)
	assert.Equal(t, uint64(1), noDeliver.Stats().DroppedDeliver)
}

// sizeLog records the sizes of the packets sent.
type sizeLog struct {
	mu    sync.Mutex
	sizes []int
}

func (r *sizeLog) record(n int) {
	r.mu.Lock()
	r.sizes = append(r.sizes, n)
	r.mu.Unlock()
}

type loopbackNet struct {
	*testNet
	nodes []*Node
	eps   []*core.Endpoint
	fwd   *sizeLog
}

// startLoopback runs n mix nodes (layer = index mod layers) on loopback
// endpoints that know each other and client with scope mix; deliveries
// go to deliver.
func startLoopback(t testing.TB, n, layers int, client core.SecretKey, mean time.Duration, deliver DeliverFunc, tune func(i int, c *Config)) *loopbackNet {
	t.Helper()
	keys := make([]core.SecretKey, n)
	var entries []core.PeerEntry
	for i := range keys {
		keys[i] = newKey(t)
		entries = append(entries, core.PeerEntry{PeerID: fmt.Sprintf("mix%d", i), Fingerprints: []string{keys[i].NodeID().Fingerprint()}, Scopes: []string{Scope}, Enabled: true})
	}
	entries = append(entries, core.PeerEntry{PeerID: "client", Fingerprints: []string{client.NodeID().Fingerprint()}, Scopes: []string{Scope}, Enabled: true})
	peers := coretest.NewPeers(entries...)
	var dir atomic.Pointer[Directory]
	ln := &loopbackNet{fwd: &sizeLog{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i, k := range keys {
		ep, err := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: k, Identities: peers})
		require.NoError(t, err)
		tr := NewTransport(ep, 5*time.Second)
		cfg := Config{Key: k, Directory: dir.Load, Forwarder: forwarderFunc(func(ctx context.Context, to core.Addr, pkt []byte) error {
			ln.fwd.record(len(pkt))
			return tr.Send(ctx, to, pkt)
		}), Deliver: deliver, EpochPeriod: testPeriod}
		if tune != nil {
			tune(i, &cfg)
		}
		node, err := New(cfg)
		require.NoError(t, err)
		ep.Register(node, core.AccessControl{RequiredScopes: []string{Scope}})
		errc := make(chan error, 1)
		go func() { errc <- ep.Serve(context.Background()) }()
		select {
		case <-ep.Ready():
		case err := <-errc:
			t.Fatalf("serve: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("endpoint not ready within 10s")
		}
		t.Cleanup(func() { _ = ep.Close(); <-errc })
		wg.Go(func() { _ = node.Run(ctx) })
		ln.nodes = append(ln.nodes, node)
		ln.eps = append(ln.eps, ep)
	}
	var addrs []string
	for _, ep := range ln.eps {
		addrs = append(addrs, ep.Addr().Host)
	}
	ln.testNet = newTestNetWithKeys(t, keys, layers, addrs, time.Now(), testPeriod, mean)
	dir.Store(ln.dir)
	return ln
}

type forwarderFunc func(ctx context.Context, to core.Addr, pkt []byte) error

func (f forwarderFunc) Send(ctx context.Context, to core.Addr, pkt []byte) error {
	return f(ctx, to, pkt)
}

// A message through three mix nodes on loopback reaches the recipient's
// delivery; every packet on the way has the same size.
func TestThreeHopsOnLoopback(t *testing.T) {
	got := make(chan Delivery, 8)
	ck := newKey(t)
	ln := startLoopback(t, 3, 3, ck, 2*time.Millisecond, func(_ context.Context, d Delivery) error {
		got <- d
		return nil
	}, nil)
	cep := coretest.ClientEndpoint(t, ck)
	var sizes []int
	var smu sync.Mutex
	tr := NewTransport(cep, 5*time.Second)
	client := &Client{Directory: func() *Directory { return ln.dir }, Forwarder: forwarderFunc(func(ctx context.Context, to core.Addr, pkt []byte) error {
		smu.Lock()
		sizes = append(sizes, len(pkt))
		smu.Unlock()
		return tr.Send(ctx, to, pkt)
	})}
	recipient := newKey(t).NodeID()
	envs := [][]byte{[]byte("short"), bytes.Repeat([]byte{1}, 16384+1136), nil}
	for i, env := range envs {
		route, err := client.Send(t.Context(), recipient, Message{Addr: "127.0.0.1:9", Envelope: env})
		require.NoError(t, err, "message %d", i)
		require.Len(t, route.Nodes, 3)
		for l, n := range route.Nodes {
			assert.Equal(t, l, n.Layer)
		}
		select {
		case d := <-got:
			assert.Equal(t, recipient, d.Recipient)
			assert.Equal(t, "127.0.0.1:9", d.Addr)
			assert.Equal(t, len(env), len(d.Envelope))
			assert.True(t, bytes.Equal(env, d.Envelope), "message %d arrived changed", i)
		case <-time.After(20 * time.Second):
			t.Fatalf("message %d not delivered within 20s; stats %+v %+v %+v", i, ln.nodes[0].Stats(), ln.nodes[1].Stats(), ln.nodes[2].Stats())
		}
	}
	byLayer := map[int]Stats{}
	// A hop counts a relay once the next hop has answered, and the last hop
	// a delivery once the callback returned: both may come after the
	// message arrived.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		for i, n := range ln.nodes {
			byLayer[ln.dir.Nodes[i].Layer] = n.Stats()
		}
		if byLayer[0].Relayed == 3 && byLayer[1].Relayed == 3 && byLayer[2].Delivered == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("relays not counted within 10s: %+v", byLayer)
		}
	}
	assert.Equal(t, uint64(3), byLayer[0].Relayed)
	assert.Equal(t, uint64(3), byLayer[1].Relayed)
	assert.Equal(t, uint64(3), byLayer[2].Delivered)
	for l, s := range byLayer {
		assert.Equal(t, uint64(3), s.Received, "layer %d", l)
		assert.Zero(t, s.DroppedInvalid+s.DroppedReplay+s.DroppedForward+s.DroppedUnknown, "layer %d", l)
	}
	ln.fwd.mu.Lock()
	all := append(sizes, ln.fwd.sizes...)
	ln.fwd.mu.Unlock()
	require.Len(t, all, 9)
	for _, s := range all {
		assert.Equal(t, PacketSize, s)
	}
}

// exchangeRaw writes b on a new stream of c and returns the status byte.
func exchangeRaw(t *testing.T, c core.Conn, b []byte) byte {
	t.Helper()
	s, err := c.OpenStream(t.Context())
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = s.Write(b)
	require.NoError(t, err)
	require.NoError(t, s.CloseWrite())
	var st [1]byte
	_, err = io.ReadFull(s, st[:])
	require.NoError(t, err)
	return st[0]
}

func TestServeConnStatus(t *testing.T) {
	tn := newTestNet(t, 1, 1, nil, time.Now(), testPeriod, time.Hour)
	n, err := New(Config{Key: tn.keys[0], Directory: func() *Directory { return tn.dir }, Forwarder: &fakeForwarder{},
		Deliver: func(context.Context, Delivery) error { return nil }})
	require.NoError(t, err)
	client, server := coretest.Pipe(ALPN, coretest.Side{Identity: &core.Identity{ID: "mix1", Scopes: []string{Scope}}}, coretest.Side{})
	done := make(chan error, 1)
	go func() { done <- n.ServeConn(t.Context(), server) }()
	pkt, _, err := Wrap(tn.dir, core.NodeID{1}, Message{}, WrapOptions{})
	require.NoError(t, err)
	assert.Equal(t, StatusQueued, exchangeRaw(t, client, pkt))
	assert.Equal(t, StatusReplay, exchangeRaw(t, client, pkt))
	assert.Equal(t, StatusSize, exchangeRaw(t, client, pkt[:100]))
	assert.Equal(t, StatusSize, exchangeRaw(t, client, append(bytes.Clone(pkt), 0)))
	assert.Equal(t, StatusInvalid, exchangeRaw(t, client, flipped(pkt, 8*offGamma)))
	_ = client.Close(0, "")
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ServeConn did not return after the connection closed")
	}
	s := n.Stats()
	assert.Equal(t, uint64(5), s.Received)
	assert.Equal(t, uint64(1), s.DroppedReplay)
	assert.Equal(t, uint64(3), s.DroppedInvalid)

	// A caller without scope mix is refused unless the node is open.
	client, server = coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{})
	err = n.ServeConn(t.Context(), server)
	assert.ErrorIs(t, err, core.ErrForbidden)
	_ = client
}

// Loop cover packets come back to their sender through every layer; drop
// cover packets end at a last-layer node. Both look like any packet.
func TestCoverTraffic(t *testing.T) {
	ck := newKey(t)
	ln := startLoopback(t, 3, 3, ck, time.Millisecond, nil, func(i int, c *Config) {
		if i == 0 {
			c.LoopRate = 40
			c.DropRate = 40
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		s0 := ln.nodes[0].Stats()
		var drops uint64
		for _, n := range ln.nodes {
			drops += n.Stats().DropsReceived
		}
		if s0.LoopsReceived >= 3 && drops >= 3 {
			assert.GreaterOrEqual(t, s0.LoopsSent, s0.LoopsReceived)
			assert.GreaterOrEqual(t, s0.DropsSent, uint64(3))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cover traffic did not come round within 30s: node 0 %+v", s0)
		}
		time.Sleep(20 * time.Millisecond) // polling counters: nothing to wait on
	}
	ln.fwd.mu.Lock()
	defer ln.fwd.mu.Unlock()
	for _, s := range ln.fwd.sizes {
		assert.Equal(t, PacketSize, s)
	}
	for i, n := range ln.nodes {
		s := n.Stats()
		assert.Zero(t, s.DroppedInvalid+s.DroppedReplay+s.DroppedUnknown+s.DroppedDeliver, "node %d: %+v", i, s)
	}
}
