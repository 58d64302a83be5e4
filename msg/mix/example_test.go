package mix_test

import (
	"fmt"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/msg/mix"
)

// A sender wraps an envelope for three mix nodes; each node peels its
// layer and learns only the next hop; the last one finds the recipient.
func Example() {
	now := time.Now()
	authority, _ := core.GenerateSecretKey()
	var keys []core.SecretKey
	dir := &mix.Directory{Issued: now, Period: time.Hour, FirstEpoch: mix.Epoch(now, time.Hour), Epochs: 1, MeanDelay: 50 * time.Millisecond, Layers: 3}
	for layer := range 3 {
		k, _ := core.GenerateSecretKey()
		keys = append(keys, k)
		dir.Nodes = append(dir.Nodes, mix.DirNode{ID: k.NodeID(), Layer: layer, Addr: fmt.Sprintf("127.0.0.1:%d", 4433+layer),
			Keys: []mix.KeyRecord{mix.SignKeyRecord(k, time.Hour, dir.FirstEpoch)}})
	}
	raw, _ := mix.SignDirectory(authority, dir)
	dir, err := mix.ParseDirectory(raw, authority.NodeID()) // what a sender does with a fetched directory
	if err != nil {
		fmt.Println(err)
		return
	}

	recipient, _ := core.GenerateSecretKey()
	pkt, route, _ := mix.Wrap(dir, recipient.NodeID(), mix.Message{Envelope: []byte("sealed envelope")}, mix.WrapOptions{Now: now})
	fmt.Println("packet bytes:", len(pkt), "hops:", len(route.Nodes))

	for i, k := range keys {
		mk := mix.DeriveMixKey(k, time.Hour, route.Epoch)
		u, err := mk.Unwrap(pkt, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		switch u.Routing.Command {
		case mix.Relay:
			fmt.Printf("hop %d relays to the next hop: %v\n", i, u.Routing.Node == keys[i+1].NodeID())
			pkt = u.Packet
		case mix.Deliver:
			fmt.Printf("hop %d delivers %q to the recipient: %v\n", i, u.Message.Envelope, u.Routing.Node == recipient.NodeID())
		}
	}
	// Output:
	// packet bytes: 18432 hops: 3
	// hop 0 relays to the next hop: true
	// hop 1 relays to the next hop: true
	// hop 2 delivers "sealed envelope" to the recipient: true
}
