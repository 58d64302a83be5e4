package mix

import (
	"bytes"
	"crypto/rand"
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
