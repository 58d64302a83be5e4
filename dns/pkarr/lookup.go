package pkarr

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"slices"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
)

const (
	// lookupK is how many of the closest answering nodes a lookup keeps:
	// the nodes a publish writes to (BEP5's k).
	lookupK = 8
	// lookupAlpha is how many queries a lookup keeps in flight.
	lookupAlpha = 8
	// maxLookupQueries bounds the queries of one lookup, so that nodes
	// that answer with endless fresh contacts cannot keep it going.
	maxLookupQueries = 256
	// maxCandidates bounds the contacts a lookup remembers.
	maxCandidates = 1024
)

// contact is a node met during a lookup.
type contact struct {
	addr    netip.AddrPort
	id      [20]byte
	idKnown bool
	queried bool
	// set once it answered
	answered bool
	token    string
	hasToken bool
}

// reply is one query's outcome.
type reply struct {
	c     *contact
	r     *krpc.Return
	nodes []krpc.NodeInfo
}

// lookup is an iterative Kademlia BEP44 get towards target: it queries
// the closest known contacts, lookupAlpha at a time, until the lookupK
// closest nodes that answered have all been asked and no unasked contact
// is closer, or ctx ends. Each reply is handed to onReply in the
// lookup's goroutine. It returns the closest answering nodes that gave a
// write token, closest first.
func (d *DHT) lookup(ctx context.Context, target [20]byte, seq *int64, onReply func(*krpc.Return)) ([]*contact, error) {
	start, err := d.s.TraversalStartingNodes()
	if err != nil {
		return nil, err
	}
	self := d.s.ID()
	known := map[netip.AddrPort]*contact{}
	var cands []*contact
	add := func(ap netip.AddrPort, id *[20]byte) {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if !ap.IsValid() || ap.Port() == 0 || ap.Addr().IsUnspecified() || len(cands) >= maxCandidates {
			return
		}
		if _, ok := known[ap]; ok || (id != nil && *id == self) {
			return
		}
		c := &contact{addr: ap}
		if id != nil {
			c.id, c.idKnown = *id, true
		}
		known[ap] = c
		cands = append(cands, c)
	}
	for _, n := range start {
		var id *[20]byte
		if n.Id.Ok {
			b := n.Id.Value.AsByteArray()
			id = &b
		}
		add(n.Addr.AddrPort, id)
	}
	// A small routing table (a private DHT, a node just started) also
	// starts from the bootstrap nodes.
	if len(cands) < lookupK {
		boot, _ := d.bootstrapAddrs()
		for _, a := range boot {
			if ua, ok := a.Raw().(*net.UDPAddr); ok {
				add(ua.AddrPort(), nil)
			}
		}
	}
	// closer orders contacts by XOR distance to target; unknown ids last.
	closer := func(a, b *contact) int {
		switch {
		case a.idKnown != b.idKnown:
			if a.idKnown {
				return -1
			}
			return 1
		case !a.idKnown:
			return 0
		}
		for i := range target {
			da, db := a.id[i]^target[i], b.id[i]^target[i]
			if da != db {
				return int(da) - int(db)
			}
		}
		return 0
	}
	replies := make(chan reply)
	outstanding, sent := 0, 0
	query := func(c *contact) {
		c.queried = true
		outstanding++
		sent++
		go func() {
			res := d.s.Get(ctx, dht.NewAddr(net.UDPAddrFromAddrPort(c.addr)), target, seq, dht.QueryRateLimiting{})
			rp := reply{c: c}
			if res.Err == nil && res.Reply.R != nil {
				rp.r = res.Reply.R
				rp.nodes = append(append(rp.nodes, rp.r.Nodes...), rp.r.Nodes6...)
			}
			replies <- rp
		}()
	}
	// answered returns the closest answering contacts, at most lookupK.
	answered := func() []*contact {
		var out []*contact
		for _, c := range cands {
			if c.answered {
				out = append(out, c)
			}
		}
		slices.SortStableFunc(out, closer)
		return out[:min(len(out), lookupK)]
	}
	for {
		slices.SortStableFunc(cands, closer)
		best := answered()
		for _, c := range cands {
			if outstanding >= lookupAlpha || sent >= maxLookupQueries || ctx.Err() != nil {
				break
			}
			if c.queried {
				continue
			}
			// Once k nodes answered, only contacts closer than the
			// farthest of them are worth asking.
			if len(best) == lookupK && closer(c, best[len(best)-1]) >= 0 {
				break
			}
			query(c)
		}
		if outstanding == 0 {
			break
		}
		rp := <-replies
		outstanding--
		if rp.r == nil {
			continue
		}
		rp.c.answered = true
		if !rp.c.idKnown || rp.c.id != rp.r.ID {
			// Trust the id the node gives for itself.
			rp.c.id, rp.c.idKnown = rp.r.ID, true
		}
		if rp.r.Token != nil {
			rp.c.token, rp.c.hasToken = *rp.r.Token, true
		}
		if onReply != nil {
			onReply(rp.r)
		}
		for _, n := range rp.nodes {
			id := [20]byte(n.ID)
			if bytes.Equal(id[:], make([]byte, 20)) {
				continue
			}
			add(n.Addr.ToNodeAddrPort().AddrPort, &id)
		}
	}
	var out []*contact
	for _, c := range answered() {
		if c.hasToken {
			out = append(out, c)
		}
	}
	return out, ctx.Err()
}
