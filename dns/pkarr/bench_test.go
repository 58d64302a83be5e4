package pkarr

import (
	"context"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/exts/getput"
	"github.com/stretchr/testify/require"
)

// BenchmarkDHTResolve measures a record lookup on a loopback DHT of 20
// nodes: impl=alknet is Resolve from a node whose routing table is full,
// impl=getput is anacrolix's own BEP44 get (exts/getput) from the same
// node, and impl=alknet-cold is what a CLI command does: a new node that
// knows one bootstrap node, then Resolve.
func BenchmarkDHTResolve(b *testing.B) {
	nodes := testDHT(b, 20)
	key := newKey(b)
	p, err := Sign(key, Record{Seq: NextSeq(time.Now(), 0), Addrs: aps("192.0.2.1:4433"), ALPNs: []string{"alknet/ping"}})
	require.NoError(b, err)
	ctx := context.Background()
	_, err = nodes[0].Publish(ctx, p)
	require.NoError(b, err)
	from := nodes[len(nodes)-1]
	b.Run("impl=alknet", func(b *testing.B) {
		for b.Loop() {
			got, err := from.Resolve(ctx, key.NodeID(), 0)
			if err != nil || got.Seq != p.Seq {
				b.Fatalf("resolve: %v", err)
			}
		}
	})
	b.Run("impl=getput", func(b *testing.B) {
		for b.Loop() {
			res, _, err := getput.Get(ctx, Target(key.NodeID()), from.s, nil, nil)
			if err != nil || res.Seq != p.Seq {
				b.Fatalf("getput: %v", err)
			}
		}
	})
	g := newGuard(b)
	b.Run("impl=alknet-cold", func(b *testing.B) {
		for b.Loop() {
			d, err := NewDHT(DHTConfig{Conn: g.listen(b), Bootstrap: []string{nodes[0].Addr().String()}})
			if err != nil {
				b.Fatal(err)
			}
			got, err := d.Resolve(ctx, key.NodeID(), 0)
			_ = d.Close()
			if err != nil || got.Seq != p.Seq {
				b.Fatalf("cold resolve: %v", err)
			}
		}
	})
}
