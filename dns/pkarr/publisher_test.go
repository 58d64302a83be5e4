package pkarr

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSink records what a Publisher publishes, failing while fail is set.
type fakeSink struct {
	mu   sync.Mutex
	got  []*SignedPacket
	at   []time.Time
	fail bool
}

func (s *fakeSink) Publish(_ context.Context, p *SignedPacket) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := p.Verify(); err != nil {
		return 0, err
	}
	if s.fail {
		return 0, errors.New("sink down")
	}
	s.got = append(s.got, p)
	s.at = append(s.at, time.Now())
	return 3, nil
}

func (s *fakeSink) snapshot() ([]*SignedPacket, []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*SignedPacket(nil), s.got...), append([]time.Time(nil), s.at...)
}

func TestPublisherSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &fakeSink{}
		var mu sync.Mutex
		addrs := aps("192.0.2.1:4433")
		var published []int
		p, err := NewPublisher(PublisherConfig{
			Key:   testKey(t),
			Sink:  sink,
			ALPNs: []string{"alknet/ping"},
			Addrs: func() []netip.AddrPort {
				mu.Lock()
				defer mu.Unlock()
				return addrs
			},
			OnPublish: func(_ *SignedPacket, n int) { published = append(published, n) },
		})
		require.NoError(t, err)
		start := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()

		synctest.Wait()
		got, _ := sink.snapshot()
		require.Len(t, got, 1, "published at start")
		assert.Equal(t, got[0], p.Current())

		// Unchanged addresses: nothing new.
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		got, _ = sink.snapshot()
		require.Len(t, got, 1)

		// A change is seen at the next poll (every minute).
		mu.Lock()
		addrs = aps("192.0.2.2:4433")
		mu.Unlock()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		got, _ = sink.snapshot()
		require.Len(t, got, 1, "not before the poll")
		time.Sleep(30 * time.Second)
		synctest.Wait()
		got, at := sink.snapshot()
		require.Len(t, got, 2, "republished on address change")
		assert.Equal(t, 31*time.Minute, at[1].Sub(start))
		r, err := got[1].Record()
		require.NoError(t, err)
		assert.Equal(t, aps("192.0.2.2:4433"), r.Addrs)
		assert.Greater(t, got[1].Seq, got[0].Seq)

		// Then every hour.
		time.Sleep(time.Hour)
		synctest.Wait()
		got, at = sink.snapshot()
		require.Len(t, got, 3, "republished after an hour")
		assert.Equal(t, time.Hour, at[2].Sub(at[1]))
		assert.Greater(t, got[2].Seq, got[1].Seq)

		// Failures retry after 10s, 20s, 40s...
		sink.mu.Lock()
		sink.fail = true
		sink.mu.Unlock()
		p.Trigger()
		time.Sleep(60 * time.Second)
		sink.mu.Lock()
		sink.fail = false
		sink.mu.Unlock()
		time.Sleep(20 * time.Second)
		synctest.Wait()
		got, at = sink.snapshot()
		require.Len(t, got, 4)
		// Tries at +0 (trigger), +10s, +30s fail; +70s succeeds.
		assert.Equal(t, 70*time.Second, at[3].Sub(at[2]))
		assert.Equal(t, []int{3, 3, 3, 3}, published)

		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled)
		default:
			t.Fatal("Run did not return after cancel")
		}
	})
}

func TestPublisherNeedsAddrs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &fakeSink{}
		p, err := NewPublisher(PublisherConfig{Key: testKey(t), Sink: sink, Addrs: func() []netip.AddrPort { return nil }})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		go func() { _ = p.Run(ctx) }()
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		got, _ := sink.snapshot()
		assert.Empty(t, got)
		cancel()
	})
	_, err := NewPublisher(PublisherConfig{Key: testKey(t)})
	assert.ErrorContains(t, err, "alknet/pkarr: publisher needs")
	_, err = NewPublisher(PublisherConfig{Key: testKey(t), Sink: &fakeSink{}, Addrs: func() []netip.AddrPort { return nil }, ALPNs: []string{""}})
	assert.ErrorIs(t, err, ErrInvalidRecord)
}
