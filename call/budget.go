package call

import (
	"context"
	"sync"
)

// budget bounds the bytes a connection holds for the frames it is reading
// and the inputs it is decoding. A reservation is taken before a frame's
// body is read (from its declared length) and returned once the frame is
// handled, so one peer's frames in flight never hold more than the budget,
// however many streams it opens. A reservation larger than the whole
// budget is cut to it: such a frame waits until it is alone.
//
// Waiting never deadlocks: only stream readers wait, each holding no
// reservation while it waits, and every reservation is returned without
// waiting on anything but the peer's own bytes and a bounded decode.
type budget struct {
	mu      sync.Mutex
	size    int64
	used    int64
	peak    int64
	changed chan struct{} // closed and replaced on every release
}

func newBudget(size int64) *budget {
	return &budget{size: size, changed: make(chan struct{})}
}

// acquire reserves n bytes (at most the whole budget), waiting for room
// until ctx is done. It returns what it reserved, to give to release.
func (b *budget) acquire(ctx context.Context, n int64) (int64, error) {
	n = max(min(n, b.size), 0)
	for {
		b.mu.Lock()
		if b.used+n <= b.size {
			b.used += n
			b.peak = max(b.peak, b.used)
			b.mu.Unlock()
			return n, nil
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		}
	}
}

// release returns n reserved bytes.
func (b *budget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// stats returns the bytes reserved now and the most ever reserved at once.
func (b *budget) stats() (used, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak
}

// decodeFactor is what a frame reservation charges per byte: the body
// itself plus the generic decode of its input into Go values (maps, slices,
// interfaces) for the schema check, which takes up to about 35 times the
// JSON's size for small values; the budget is therefore counted in these
// units, so that the memory behind it stays within a small multiple of it.
const decodeFactor = 16
