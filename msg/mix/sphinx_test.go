package mix

import (
	"bytes"
	"crypto/rand"
	"errors"
	"math/bits"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testPeriod = time.Hour

// testRoute makes n nodes with their mix keys for epoch e.
func testRoute(t testing.TB, n int, e uint32) ([]core.SecretKey, []*MixKey, []Hop) {
	t.Helper()
	var nodes []core.SecretKey
	var keys []*MixKey
	var hops []Hop
	for i := range n {
		k, err := core.GenerateSecretKey()
		require.NoError(t, err)
		mk := DeriveMixKey(k, testPeriod, e)
		nodes = append(nodes, k)
		keys = append(keys, mk)
		hops = append(hops, Hop{Node: k.NodeID(), Key: mk.Public, Delay: time.Duration(i+1) * 1500 * time.Microsecond})
	}
	return nodes, keys, hops
}

func TestSphinxRoundTrip(t *testing.T) {
	for nu := 1; nu <= MaxHops; nu++ {
		t.Run("", func(t *testing.T) {
			const e = 4242
			nodes, keys, hops := testRoute(t, nu, e)
			recipient := core.NodeID{7, 7, 7}
			env := bytes.Repeat([]byte("sealed envelope "), 1000)
			pkt, err := NewPacket(rand.Reader, e, hops, Routing{Command: Deliver, Node: recipient}, Message{Addr: "127.0.0.1:4433", Envelope: env})
			require.NoError(t, err)
			for i := range nu {
				require.Len(t, pkt, PacketSize)
				u, err := Unwrap(&keys[i].private, pkt, nil)
				require.NoError(t, err, "hop %d", i)
				assert.Equal(t, hops[i].Delay, u.Routing.Delay)
				if i < nu-1 {
					assert.Equal(t, Relay, u.Routing.Command)
					assert.Equal(t, nodes[i+1].NodeID(), u.Routing.Node)
					pkt = u.Packet
					continue
				}
				assert.Equal(t, Deliver, u.Routing.Command)
				assert.Equal(t, recipient, u.Routing.Node)
				assert.Equal(t, "127.0.0.1:4433", u.Message.Addr)
				assert.Equal(t, env, u.Message.Envelope)
			}
		})
	}
}

// Each hop learns its own routing information and nothing of the hops
// after the next: the next packet does not open with its key, names no
// later node nor the recipient, and shares no 16-byte run with the packet
// it came from.
func TestUnwrapRevealsOnlyNextHop(t *testing.T) {
	const e = 99
	nodes, keys, hops := testRoute(t, 3, e)
	recipient := newKey(t).NodeID()
	env := bytes.Repeat([]byte{0xA5}, 4096)
	pkt, err := NewPacket(rand.Reader, e, hops, Routing{Command: Deliver, Node: recipient}, Message{Envelope: env})
	require.NoError(t, err)
	for i := range 3 {
		in := bytes.Clone(pkt)
		for _, id := range append([]core.NodeID{recipient}, nodesAfter(nodes, i)...) {
			assert.False(t, bytes.Contains(in, id[:]), "hop %d input names a node in clear", i)
		}
		assert.False(t, bytes.Contains(in, env[:64]), "hop %d input carries the envelope in clear", i)
		for j := range 3 {
			if j != i {
				_, err := Unwrap(&keys[j].private, bytes.Clone(pkt), nil)
				assert.ErrorIs(t, err, ErrBadMAC, "hop %d's packet opened with hop %d's key", i, j)
			}
		}
		u, err := Unwrap(&keys[i].private, pkt, nil)
		require.NoError(t, err)
		if i == 2 {
			assert.Equal(t, Deliver, u.Routing.Command)
			assert.Equal(t, recipient, u.Routing.Node)
			break
		}
		assert.Equal(t, Relay, u.Routing.Command)
		assert.Equal(t, nodes[i+1].NodeID(), u.Routing.Node, "hop %d learns the next hop", i)
		assert.False(t, commonSubstring(in[offAlpha:], u.Packet[offAlpha:], 16), "hop %d: input and output are linkable by their bytes", i)
		pkt = u.Packet
	}
}

func nodesAfter(nodes []core.SecretKey, i int) []core.NodeID {
	var out []core.NodeID
	for _, k := range nodes[min(i+2, len(nodes)):] {
		out = append(out, k.NodeID())
	}
	return out
}

// A bit flipped anywhere in the header is refused by the hop that gets it.
func TestUnwrapRejectsFlippedHeaderBit(t *testing.T) {
	const e = 7
	_, keys, hops := testRoute(t, 3, e)
	pkt, err := NewPacket(rand.Reader, e, hops, Routing{Command: Deliver, Node: core.NodeID{1}}, Message{Envelope: []byte("x")})
	require.NoError(t, err)
	u, err := Unwrap(&keys[0].private, pkt, nil)
	require.NoError(t, err)
	atHop1 := u.Packet
	r := seeded(1)
	for byteIdx := 0; byteIdx < HeaderSize; byteIdx++ {
		bit := byteIdx*8 + int(r.Uint64()%8)
		_, err := Unwrap(&keys[1].private, flipped(atHop1, bit), nil)
		require.Error(t, err, "bit %d of the header", bit)
		switch {
		case byteIdx == offVersion:
			assert.ErrorIs(t, err, ErrVersion)
		case byteIdx >= offAlpha && byteIdx < offBeta:
			if !errors.Is(err, ErrBadElement) {
				assert.ErrorIs(t, err, ErrBadMAC, "bit %d", bit)
			}
		default:
			assert.ErrorIs(t, err, ErrBadMAC, "bit %d", bit)
		}
	}
	_, err = Unwrap(&keys[1].private, bytes.Clone(atHop1), nil)
	require.NoError(t, err, "the untouched packet still unwraps")
}

// A bit flipped in the payload goes unnoticed by the hops in between (they
// cannot check it) and turns the final payload into noise, which the last
// hop detects.
func TestUnwrapFlippedPayloadBitDestroysPayload(t *testing.T) {
	const e = 8
	_, keys, hops := testRoute(t, 3, e)
	env := bytes.Repeat([]byte("0123456789abcdef"), 512)
	msg := Message{Addr: "10.0.0.1:4433", Envelope: env}
	for _, bit := range []int{0, 255, 256, 8 * (PayloadSize / 2), 8*PayloadSize - 1} {
		pkt, err := NewPacket(rand.Reader, e, hops, Routing{Command: Deliver, Node: core.NodeID{1}}, msg)
		require.NoError(t, err)
		u, err := Unwrap(&keys[0].private, pkt, nil)
		require.NoError(t, err)
		tampered := u.Packet
		tampered[offPayload+bit/8] ^= 1 << (bit % 8)
		u, err = Unwrap(&keys[1].private, tampered, nil)
		require.NoError(t, err, "a middle hop cannot see the tag")
		final := u.Packet
		_, err = Unwrap(&keys[2].private, final, nil)
		require.ErrorIs(t, err, ErrPayloadCorrupt, "bit %d", bit)
		plain, err := encodePayload(msg)
		require.NoError(t, err)
		got := final[offPayload:]
		assert.False(t, bytes.Contains(got, env[:32]), "bit %d: the envelope survived", bit)
		diff := 0
		for i := range plain {
			diff += bits.OnesCount8(plain[i] ^ got[i])
		}
		frac := float64(diff) / float64(8*len(plain))
		assert.InDelta(t, 0.5, frac, 0.02, "bit %d: a tagged payload decrypts to noise", bit)
	}
}

// Packets are PacketSize bytes whatever they carry and however many hops
// they take.
func TestPacketsSameSize(t *testing.T) {
	for nu := 1; nu <= MaxHops; nu++ {
		_, _, hops := testRoute(t, nu, 1)
		for _, n := range []int{0, 1, 1000, MaxEnvelopeSize} {
			pkt, err := NewPacket(rand.Reader, 1, hops, Routing{Command: Deliver, Node: core.NodeID{1}}, Message{Addr: strings.Repeat("a", MaxAddrSize), Envelope: make([]byte, n)})
			require.NoError(t, err)
			assert.Len(t, pkt, PacketSize)
		}
	}
	_, _, hops := testRoute(t, 3, 1)
	_, err := NewPacket(rand.Reader, 1, hops, Routing{Command: Deliver}, Message{Envelope: make([]byte, PayloadSize-payloadFixed+1)})
	assert.ErrorIs(t, err, ErrTooLarge)
	_, err = NewPacket(rand.Reader, 1, make([]Hop, MaxHops+1), Routing{Command: Deliver}, Message{})
	assert.ErrorIs(t, err, ErrRoute)
}

func TestLionessWideBlock(t *testing.T) {
	var key [lionessKeySize]byte
	copy(key[:], bytes.Repeat([]byte{3}, lionessKeySize))
	plain := make([]byte, 1000)
	for i := range plain {
		plain[i] = byte(i)
	}
	ct := bytes.Clone(plain)
	lionessEncrypt(&key, ct)
	assert.NotEqual(t, plain, ct)
	back := bytes.Clone(ct)
	lionessDecrypt(&key, back)
	assert.Equal(t, plain, back)
	// One bit changed anywhere in the ciphertext changes every part of
	// the plaintext.
	for _, bit := range []int{0, 8 * 500, 8*1000 - 1} {
		p := flipped(ct, bit)
		lionessDecrypt(&key, p)
		assert.NotEqual(t, plain[:32], p[:32], "bit %d: left half unchanged", bit)
		assert.NotEqual(t, plain[500:532], p[500:532], "bit %d: middle unchanged", bit)
		assert.NotEqual(t, plain[968:], p[968:], "bit %d: end unchanged", bit)
	}
}
