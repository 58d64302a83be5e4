package mix

import (
	"bytes"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDirectoryRoundTrip(t *testing.T) {
	now := time.Now()
	tn := newTestNet(t, 6, 3, nil, now, testPeriod, 50*time.Millisecond)
	d := tn.dir
	assert.Equal(t, tn.authority.NodeID(), d.Authority)
	assert.Equal(t, 3, d.Layers)
	assert.Equal(t, 50*time.Millisecond, d.MeanDelay)
	assert.Equal(t, now.Unix(), d.Issued.Unix())
	require.Len(t, d.Nodes, 6)
	cur := Epoch(now, testPeriod)
	assert.True(t, d.Covers(cur))
	for i, k := range tn.keys {
		n, ok := d.Node(k.NodeID())
		require.True(t, ok)
		assert.Equal(t, i%3, n.Layer)
		pub, ok := n.Key(d, cur)
		require.True(t, ok)
		assert.Equal(t, DeriveMixKey(k, testPeriod, cur).Public, pub)
	}
	again, err := ParseDirectory(d.Raw(), tn.authority.NodeID())
	require.NoError(t, err)
	assert.Equal(t, d.Raw(), again.Raw())
	assert.Equal(t, d.Nodes, again.Nodes)

	// The sender takes one node of each layer, every node of a layer
	// in turn.
	seen := map[core.NodeID]int{}
	rnd := seeded(5)
	for range 200 {
		r, err := d.Route(rnd)
		require.NoError(t, err)
		require.Len(t, r, 3)
		for l, n := range r {
			assert.Equal(t, l, n.Layer)
			seen[n.ID]++
		}
	}
	assert.Len(t, seen, 6)
	for id, c := range seen {
		assert.Greater(t, c, 60, "node %s chosen %d times of 200 in its layer of 2", id, c)
	}
}

func TestDirectoryRejected(t *testing.T) {
	now := time.Now()
	tn := newTestNet(t, 3, 3, nil, now, testPeriod, time.Millisecond)
	raw := tn.dir.Raw()
	auth := tn.authority.NodeID()

	_, err := ParseDirectory(raw, newKey(t).NodeID())
	assert.ErrorContains(t, err, "not the authority")
	for _, i := range []int{0, 4, 40, 60, dirHeaderSize + 5, len(raw) / 2, len(raw) - 1} {
		b := bytes.Clone(raw)
		b[i] ^= 0x10
		_, err := ParseDirectory(b, auth)
		assert.ErrorIs(t, err, ErrDirectory, "byte %d flipped", i)
	}
	_, err = ParseDirectory(raw[:len(raw)-1], auth)
	assert.ErrorIs(t, err, ErrDirectory)
	_, err = ParseDirectory(append(bytes.Clone(raw), 0), auth)
	assert.ErrorIs(t, err, ErrDirectory)
	_, err = ParseDirectory(make([]byte, MaxDirectorySize+1), auth)
	assert.ErrorContains(t, err, "limit")

	// A mix key signed by another node is refused, by the authority and
	// by the sender.
	d := *tn.dir
	d.Nodes = append([]DirNode(nil), tn.dir.Nodes...)
	n0 := d.Nodes[0]
	n0.Keys = append([]KeyRecord(nil), n0.Keys...)
	forged := SignKeyRecord(tn.keys[1], testPeriod, n0.Keys[0].Epoch)
	forged.Node = n0.ID
	n0.Keys[0] = forged
	d.Nodes[0] = n0
	_, err = SignDirectory(tn.authority, &d)
	assert.ErrorContains(t, err, "bad signature")
	body := d.encodeBody()
	signed := append(body, tn.authority.Sign(append([]byte(dirSigContext), body...))...)
	_, err = ParseDirectory(signed, auth)
	assert.ErrorContains(t, err, "bad signature")

	// A layer without a node.
	d2 := *tn.dir
	d2.Layers = 4
	_, err = SignDirectory(tn.authority, &d2)
	assert.ErrorContains(t, err, "layer 3 has no node")
}

func TestKeyRecord(t *testing.T) {
	k := newKey(t)
	r := SignKeyRecord(k, time.Hour, 12)
	b, err := r.MarshalBinary()
	require.NoError(t, err)
	require.Len(t, b, KeyRecordSize)
	back, err := ParseKeyRecord(b)
	require.NoError(t, err)
	assert.Equal(t, r, back)
	assert.Equal(t, DeriveMixKey(k, time.Hour, 12).Public, back.Public)
	assert.NotEqual(t, DeriveMixKey(k, time.Hour, 13).Public, back.Public, "epochs have distinct keys")
	assert.NotEqual(t, DeriveMixKey(k, 2*time.Hour, 12).Public, back.Public, "periods have distinct keys")
	for i := range b {
		_, err := ParseKeyRecord(flipped(b, i*8))
		assert.ErrorIs(t, err, ErrKeyRecord, "byte %d", i)
	}
}

func TestExpDelayMean(t *testing.T) {
	rnd := seeded(11)
	var sum time.Duration
	const n = 20000
	for range n {
		d, err := ExpDelay(rnd, 50*time.Millisecond)
		require.NoError(t, err)
		require.GreaterOrEqual(t, d, time.Duration(0))
		sum += d
	}
	assert.InDelta(t, float64(50*time.Millisecond), float64(sum/n), float64(2*time.Millisecond))
}
