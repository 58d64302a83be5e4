package pkarr_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/dns/pkarr"
)

// A node signs its record; anyone holding the bytes checks them against
// the node id and reads the addresses.
func Example() {
	seed := make([]byte, 32)
	key, _ := core.NewSecretKey(seed)
	p, err := pkarr.Sign(key, pkarr.Record{
		Seq:   pkarr.NextSeq(time.Unix(1700000000, 0), 0),
		Addrs: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.7:4433")},
		ALPNs: []string{"alknet/ping"},
	})
	if err != nil {
		panic(err)
	}
	b, _ := p.MarshalBinary()

	got, err := pkarr.ParseSignedPacket(b) // verifies the signature
	if err != nil {
		panic(err)
	}
	rec, _ := got.Record()
	fmt.Println(rec.NodeAddrs()[0] == core.Addr{ID: key.NodeID(), Host: "203.0.113.7:4433"})
	fmt.Println(rec.ALPNs, rec.Time().Format(time.RFC3339))

	rrs, _ := rec.RRs("nodes.example.org")
	fmt.Println(len(rrs), rrs[1].Header().Name == pkarr.Name(key.NodeID())+".nodes.example.org.")
	// Output:
	// true
	// [alknet/ping] 2023-11-14T22:13:20Z
	// 2 true
}
