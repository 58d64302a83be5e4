package pkarr

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/bep44"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func signed(t testing.TB, seq int64, addrs ...string) *SignedPacket {
	t.Helper()
	p, err := Sign(testKey(t), Record{Seq: seq, Addrs: aps(addrs...), ALPNs: []string{"alknet/ping"}})
	require.NoError(t, err)
	return p
}

func TestSignedPacketBinaryRoundTrip(t *testing.T) {
	p := signed(t, 1700000000000001, "192.0.2.1:4433")
	b, err := p.MarshalBinary()
	require.NoError(t, err)
	require.Len(t, b, 104+len(p.V))
	assert.Equal(t, p.ID[:], b[:32])
	assert.Equal(t, p.Sig[:], b[32:96])
	assert.Equal(t, uint64(1700000000000001), binary.BigEndian.Uint64(b[96:104]))
	q, err := ParseSignedPacket(b)
	require.NoError(t, err)
	assert.Equal(t, p, q)
}

// TestForgedPacketRejected flips each part of a valid packet: the
// signature no longer verifies, whatever was changed.
func TestForgedPacketRejected(t *testing.T) {
	p := signed(t, 1700000000000001, "192.0.2.1:4433")
	good, err := p.MarshalBinary()
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		at   int
	}{
		{"key", 5}, {"signature", 40}, {"seq", 103}, {"packet", len(good) - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), good...)
			b[tc.at] ^= 1
			_, err := ParseSignedPacket(b)
			assert.ErrorIs(t, err, ErrBadSignature)
		})
	}
	// A packet re-signed by another key under this key's id.
	other := newKey(t)
	forged := *p
	copy(forged.Sig[:], other.Sign(SignableBytes(p.Seq, p.V)))
	assert.ErrorIs(t, forged.Verify(), ErrBadSignature)
	_, err = NewSignedPacket(p.ID, p.Seq, forged.Sig[:], p.V)
	assert.ErrorIs(t, err, ErrBadSignature)
}

func TestParseSignedPacketLimits(t *testing.T) {
	_, err := ParseSignedPacket(make([]byte, 103))
	assert.ErrorIs(t, err, ErrMalformed)
	_, err = ParseSignedPacket(make([]byte, MaxSignedPacketSize+1))
	assert.ErrorIs(t, err, ErrTooLarge)
	b := make([]byte, 104)
	b[96] = 0x80 // seq >= 2^63
	_, err = ParseSignedPacket(b)
	assert.ErrorIs(t, err, ErrMalformed)
	// A valid signature over an oversized packet is still refused.
	key := testKey(t)
	v := make([]byte, MaxPacketSize+1)
	_, err = NewSignedPacket(key.NodeID(), 1, key.Sign(SignableBytes(1, v)), v)
	assert.ErrorIs(t, err, ErrTooLarge)
}

func TestNextSeq(t *testing.T) {
	now := time.UnixMicro(1700000000000000)
	assert.Equal(t, int64(1700000000000000), NextSeq(now, 0))
	assert.Equal(t, int64(1700000000000001), NextSeq(now, 1700000000000000))
	assert.Equal(t, int64(1800000000000001), NextSeq(now, 1800000000000000))
}

// TestCacheRejectsReplay: once a record is accepted, an older one of the
// same key (a replay) is refused, as is a forged one.
func TestCacheRejectsReplay(t *testing.T) {
	c := NewCache(0)
	old := signed(t, 100, "192.0.2.1:4433")
	cur := signed(t, 200, "192.0.2.2:4433")
	require.NoError(t, c.Put(cur))
	err := c.Put(old)
	assert.ErrorIs(t, err, ErrStale)
	assert.Equal(t, cur, c.Get(cur.ID))
	// Same seq, same packet: accepted again; same seq, another packet: no.
	require.NoError(t, c.Put(cur))
	twin := signed(t, 200, "192.0.2.3:4433")
	assert.ErrorIs(t, c.Put(twin), ErrStale)
	newer := signed(t, 300, "192.0.2.3:4433")
	require.NoError(t, c.Put(newer))
	assert.Equal(t, int64(300), c.Get(cur.ID).Seq)
	forged := *newer
	forged.Seq = 400
	assert.ErrorIs(t, c.Put(&forged), ErrBadSignature)
	assert.Equal(t, int64(300), c.Get(cur.ID).Seq)
}

func TestCacheEvictsOldest(t *testing.T) {
	c := NewCache(2)
	a, err := Sign(newKey(t), Record{Seq: 10, Addrs: aps("192.0.2.1:1")})
	require.NoError(t, err)
	b, err := Sign(newKey(t), Record{Seq: 20, Addrs: aps("192.0.2.1:1")})
	require.NoError(t, err)
	d, err := Sign(newKey(t), Record{Seq: 30, Addrs: aps("192.0.2.1:1")})
	require.NoError(t, err)
	require.NoError(t, c.Put(a))
	require.NoError(t, c.Put(b))
	require.NoError(t, c.Put(d))
	assert.Nil(t, c.Get(a.ID))
	assert.Equal(t, b, c.Get(b.ID))
	assert.Equal(t, d, c.Get(d.ID))
}

// TestStoreBounded: a DHT node keeps at most MaxItems items for others,
// the oldest making room; updating a stored key takes no more room.
func TestStoreBounded(t *testing.T) {
	s := newBoundedStore(3)
	var items []*SignedPacket
	for i := range 5 {
		p, err := Sign(newKey(t), Record{Seq: int64(10 + i), Addrs: aps("192.0.2.1:1")})
		require.NoError(t, err)
		items = append(items, p)
	}
	put := func(p *SignedPacket) {
		k := [32]byte(p.ID)
		require.NoError(t, s.Put(&bep44.Item{V: p.V, K: k, Seq: p.Seq, Sig: p.Sig}))
	}
	for _, p := range items[:3] {
		put(p)
	}
	put(items[0]) // an update, no eviction
	assert.Equal(t, 3, s.len())
	put(items[3])
	assert.Equal(t, 3, s.len())
	_, err := s.Get(Target(items[0].ID))
	assert.ErrorIs(t, err, bep44.ErrItemNotFound, "the oldest made room")
	got, err := s.Get(Target(items[3].ID))
	require.NoError(t, err)
	assert.Equal(t, items[3].Seq, got.Seq)
	require.NoError(t, s.Del(Target(items[1].ID)))
	put(items[4])
	assert.Equal(t, 3, s.len(), "a deleted item's room is reused")
	for i := range 100 {
		p, err := Sign(newKey(t), Record{Seq: int64(100 + i), Addrs: aps("192.0.2.1:1")})
		require.NoError(t, err)
		put(p)
	}
	assert.Equal(t, 3, s.len())
	assert.LessOrEqual(t, len(s.order), 6)
}
