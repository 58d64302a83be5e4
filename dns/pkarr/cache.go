package pkarr

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/alkdev/alknet/core"
)

// DefaultCacheSize is the number of keys a Cache holds when NewCache gets
// zero.
const DefaultCacheSize = 1024

// Cache keeps the newest verified record of each key it has seen, so that
// a record older than one already accepted (a replay) is refused. It is
// safe for concurrent use.
type Cache struct {
	mu  sync.Mutex
	max int
	m   map[core.NodeID]*SignedPacket
}

// NewCache returns a cache of at most size keys (zero: DefaultCacheSize).
// When full, the key with the oldest record makes room.
func NewCache(size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &Cache{max: size, m: map[core.NodeID]*SignedPacket{}}
}

// Get returns the newest record of id, or nil.
func (c *Cache) Get(id core.NodeID) *SignedPacket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

// Put verifies p and keeps it unless a newer record of the same key is
// known. It fails with the verification error, or with ErrStale when p's
// seq is lower than the known one, or equal with a different packet.
func (c *Cache) Put(p *SignedPacket) error {
	if err := p.Verify(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[p.ID]; ok {
		switch {
		case p.Seq < old.Seq:
			return fmt.Errorf("%w: node %s seq %d, have %d", ErrStale, p.ID, p.Seq, old.Seq)
		case p.Seq == old.Seq && !bytes.Equal(p.V, old.V):
			return fmt.Errorf("%w: node %s seq %d signed twice with different packets", ErrStale, p.ID, p.Seq)
		}
	} else if len(c.m) >= c.max {
		var oldest core.NodeID
		first := true
		for id, q := range c.m {
			if first || q.Seq < c.m[oldest].Seq {
				oldest, first = id, false
			}
		}
		delete(c.m, oldest)
	}
	c.m[p.ID] = p
	return nil
}
