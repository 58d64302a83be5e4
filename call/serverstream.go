package call

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"
)

// flushBatch is how many queued frames of other calls a call's own write
// flushes before it hands the rest to a worker of its own.
const flushBatch = 16

// srvStream is the callee's side of one stream: the calls started on it
// and their frames waiting to be written. Frames are written whole, one at
// a time, taking one frame from each call with frames waiting in turn.
type srvStream struct {
	p    *Peer
	s    core.Stream
	pool *workerPool

	mu       sync.Mutex
	calls    map[*srvCall]struct{} // started and not finished
	pending  []*srvCall            // calls with queued frames, in turn order
	writing  bool                  // a goroutine is writing (it flushes pending)
	broken   bool                  // a write failed: nothing more can be sent
	draining bool
	active   int           // calls in flight: started and not released
	idle     chan struct{} // a token when the stream may have become idle
}

// srvCall is one call in flight.
type srvCall struct {
	id     string
	st     *srvStream
	cancel context.CancelCauseFunc
	sub    bool // a subscription (drain aborts it)

	// guarded by p.srvMu
	e       *entry
	token   string
	checked bool // authorized; Reauthorize re-checks it

	released atomic.Bool // out of the calls in flight (see release)

	// guarded by st.mu
	queue  [][]byte
	qbytes int64
	done   bool          // the final frame is queued, or nothing more may be sent
	space  chan struct{} // a token when the queue shrank
}

// send queues or writes one frame of call c; final marks the call's last
// frame, after which nothing more is sent. A non-final frame waits while
// c's queue holds MaxQueuedBytes (a single frame is always taken); a final
// frame never waits. It returns ErrCallOver once the call is over or the
// stream broke.
func (st *srvStream) send(ctx context.Context, c *srvCall, frame []byte, final bool) error {
	if final {
		// The call is over for the caller once this frame is on its way:
		// take it out of the calls in flight first, so that the caller may
		// start another (with the same id, too) as soon as it reads it.
		st.mu.Lock()
		if c.done || st.broken {
			st.mu.Unlock()
			return ErrCallOver
		}
		c.done = true
		st.mu.Unlock()
		st.p.release(c)
	}
	st.mu.Lock()
	for {
		if final {
			if st.broken {
				st.mu.Unlock()
				return ErrCallOver
			}
			break
		}
		if c.done || st.broken {
			st.mu.Unlock()
			return ErrCallOver
		}
		if final || len(c.queue) == 0 || c.qbytes+int64(len(frame)) <= st.p.cfg.MaxQueuedBytes {
			break
		}
		ch := c.space
		st.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ErrCallOver
		}
		st.mu.Lock()
	}
	if st.writing || len(st.pending) > 0 {
		c.queue = append(c.queue, frame)
		c.qbytes += int64(len(frame))
		if len(c.queue) == 1 {
			st.pending = append(st.pending, c)
		}
		st.mu.Unlock()
		return nil
	}
	st.writing = true
	st.mu.Unlock()
	_, err := st.s.Write(frame)
	st.mu.Lock()
	if err != nil {
		st.breakLocked()
	}
	st.flushLocked(flushBatch)
	st.mu.Unlock()
	if err != nil {
		return ErrCallOver
	}
	return nil
}

// flushLocked writes queued frames in turn, releasing mu around each
// write, then clears writing. After max frames (negative: no limit) it
// hands the rest to a worker.
func (st *srvStream) flushLocked(max int) {
	for len(st.pending) > 0 && !st.broken {
		if max == 0 {
			st.pool.run(func() {
				st.mu.Lock()
				st.flushLocked(-1)
				st.mu.Unlock()
			})
			return
		}
		max--
		c := st.pending[0]
		st.pending = st.pending[1:]
		f := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.qbytes -= int64(len(f))
		if len(c.queue) > 0 {
			st.pending = append(st.pending, c)
		}
		select {
		case c.space <- struct{}{}:
		default:
		}
		st.mu.Unlock()
		_, err := st.s.Write(f)
		st.mu.Lock()
		if err != nil {
			st.breakLocked()
		}
	}
	st.writing = false
	st.checkIdleLocked()
}

// breakLocked marks the stream unusable after a failed write (the caller
// reset it or sent STOP_SENDING, or the connection is gone; a partial
// frame cannot be followed): every call on it is cancelled and its queued
// frames dropped.
func (st *srvStream) breakLocked() {
	if st.broken {
		return
	}
	st.broken = true
	for _, c := range st.pending {
		c.queue, c.qbytes = nil, 0
	}
	st.pending = nil
	for c := range st.calls {
		c.cancel(errCallerGone)
	}
	_ = st.s.SetReadDeadline(time.Now())
}

// dropLocked discards c's queued frames: the call was aborted.
func (st *srvStream) dropLocked(c *srvCall) {
	c.done = true
	if len(c.queue) == 0 {
		return
	}
	c.queue, c.qbytes = nil, 0
	for i, q := range st.pending {
		if q == c {
			st.pending = append(st.pending[:i], st.pending[i+1:]...)
			break
		}
	}
}

// cancelAll cancels every call on the stream with cause.
func (st *srvStream) cancelAll(cause error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for c := range st.calls {
		c.cancel(cause)
	}
}

// checkIdleLocked wakes the stream's reader when nothing is left to do,
// and stops reading on a draining stream.
func (st *srvStream) checkIdleLocked() {
	if len(st.calls) > 0 || st.writing || len(st.pending) > 0 {
		return
	}
	if st.draining {
		_ = st.s.SetReadDeadline(time.Now())
	}
	select {
	case st.idle <- struct{}{}:
	default:
	}
}

// drain aborts the subscriptions on the stream and stops reading once its
// calls are done.
func (st *srvStream) drain() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.draining = true
	for c := range st.calls {
		if c.sub {
			c.cancel(errShuttingDown)
		}
	}
	st.checkIdleLocked()
}

// sendError sends a call.error that belongs to no started call.
func (st *srvStream) sendError(ctx context.Context, id string, e *Error) {
	frame, err := encodeFrame(TypeError, id, e, st.p.cfg.MaxFrameSize)
	if err != nil {
		return
	}
	_ = st.send(ctx, &srvCall{st: st, space: make(chan struct{}, 1)}, frame, true)
}
