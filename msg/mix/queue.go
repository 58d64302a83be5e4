package mix

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// job is a peeled packet waiting for its release time.
type job struct {
	at       time.Time // release time
	queued   time.Time // when it entered the queue
	epoch    uint32
	routing  Routing
	packet   []byte  // next packet (Relay)
	message  Message // final payload (Deliver)
	sequence uint64  // ties broken in arrival order
}

type jobHeap []*job

func (h jobHeap) Len() int { return len(h) }
func (h jobHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].sequence < h[j].sequence
	}
	return h[i].at.Before(h[j].at)
}
func (h jobHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)   { *h = append(*h, x.(*job)) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return j
}

// delayQueue holds jobs until their release time: the Poisson mix's
// memoryless delays, kept in a min-heap by release time, bounded.
type delayQueue struct {
	mu    sync.Mutex
	h     jobHeap
	limit int
	seq   uint64
	wake  chan struct{}
}

func newDelayQueue(limit int) *delayQueue {
	return &delayQueue{limit: limit, wake: make(chan struct{}, 1)}
}

// push adds j, or reports false when the queue is full.
func (q *delayQueue) push(j *job) bool {
	q.mu.Lock()
	if len(q.h) >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.seq++
	j.sequence = q.seq
	heap.Push(&q.h, j)
	first := q.h[0] == j
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return true
}

func (q *delayQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.h)
}

// due pops every job released by now and returns how long until the next.
func (q *delayQueue) due(now time.Time) ([]*job, time.Duration, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*job
	for len(q.h) > 0 && !q.h[0].at.After(now) {
		out = append(out, heap.Pop(&q.h).(*job))
	}
	if len(q.h) == 0 {
		return out, 0, false
	}
	return out, q.h[0].at.Sub(now), true
}

// run releases jobs to release at their time until ctx is done.
func (q *delayQueue) run(ctx context.Context, release func(*job)) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		jobs, wait, more := q.due(time.Now())
		for _, j := range jobs {
			release(j)
		}
		if !more {
			wait = time.Hour
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-timer.C:
		}
	}
}
