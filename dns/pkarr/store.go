package pkarr

import (
	"sync"

	"github.com/anacrolix/dht/v2/bep44"
)

// DefaultMaxItems is how many BEP44 items a DHT node keeps for others
// when DHTConfig.MaxItems is zero (about 5 MB at the 1000-byte limit).
const DefaultMaxItems = 4096

// boundedStore is the BEP44 store of a DHT node: at most max items, the
// oldest stored making room, so that puts from the network cannot grow
// it without bound. Validation and expiry are the library's (its Wrapper
// checks signatures and sequence numbers before Put, and drops expired
// items on Get).
type boundedStore struct {
	mu    sync.Mutex
	max   int
	m     map[bep44.Target]*bep44.Item
	order []bep44.Target // insertion order; may hold deleted targets
}

var _ bep44.Store = (*boundedStore)(nil)

func newBoundedStore(max int) *boundedStore {
	return &boundedStore{max: max, m: map[bep44.Target]*bep44.Item{}}
}

func (s *boundedStore) Put(i *bep44.Item) error {
	t := i.Target()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[t]; !ok {
		for len(s.m) >= s.max && len(s.order) > 0 {
			delete(s.m, s.order[0])
			s.order = s.order[1:]
		}
		s.order = append(s.order, t)
		// Deleted targets linger in order until they reach its front;
		// compact when they outnumber the live ones.
		if len(s.order) > 2*s.max {
			live := s.order[:0]
			for _, x := range s.order {
				if _, ok := s.m[x]; ok || x == t {
					live = append(live, x)
				}
			}
			s.order = live
		}
	}
	s.m[t] = i
	return nil
}

func (s *boundedStore) Get(t bep44.Target) (*bep44.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.m[t]
	if !ok {
		return nil, bep44.ErrItemNotFound
	}
	return i, nil
}

func (s *boundedStore) Del(t bep44.Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, t)
	return nil
}

func (s *boundedStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
