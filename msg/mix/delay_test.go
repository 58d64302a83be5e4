package mix

import (
	"context"
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ksExp returns the Kolmogorov-Smirnov statistic of sample against the
// exponential distribution with mean.
func ksExp(sample []time.Duration, mean time.Duration) float64 {
	xs := slices.Clone(sample)
	slices.Sort(xs)
	n := float64(len(xs))
	d := 0.0
	for i, x := range xs {
		f := 1 - math.Exp(-float64(x)/float64(mean))
		d = max(d, float64(i+1)/n-f, f-float64(i)/n)
	}
	return d
}

// The delays a node holds packets for, as chosen by senders drawing from
// the directory's mean, fit the exponential distribution (a
// Kolmogorov-Smirnov test at a fixed seed; the threshold is the critical
// value for alpha = 0.001). The clock is synctest's, so the observed
// delays are the queue's own.
func TestDelaysExponential(t *testing.T) {
	const n = 600
	const mean = 50 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 1, 1, nil, time.Now(), testPeriod, mean)
		var mu sync.Mutex
		sent := make([]time.Time, n)
		observed := make([]time.Duration, 0, n)
		asked := make([]time.Duration, n)
		node, err := New(Config{Key: tn.keys[0], Directory: func() *Directory { return tn.dir }, Forwarder: &fakeForwarder{},
			Deliver: func(_ context.Context, d Delivery) error {
				i := binary.BigEndian.Uint32(d.Envelope)
				mu.Lock()
				defer mu.Unlock()
				observed = append(observed, time.Since(sent[i]))
				return nil
			}})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = node.Run(ctx); close(done) }()
		rnd := seeded(2026)
		for i := range n {
			var env [4]byte
			binary.BigEndian.PutUint32(env[:], uint32(i))
			pkt, route, err := Wrap(tn.dir, core.NodeID{1}, Message{Envelope: env[:]}, WrapOptions{Rand: rnd})
			require.NoError(t, err)
			asked[i] = route.Delays[0]
			sent[i] = time.Now()
			require.NoError(t, node.HandlePacket(ctx, pkt))
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // spread arrivals a little
			}
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, observed, n)
		crit := 1.95 / math.Sqrt(n)
		d := ksExp(observed, mean)
		t.Logf("KS D = %.4f (critical %.4f at alpha 0.001), n = %d", d, crit, n)
		assert.Less(t, d, crit, "observed delays do not fit Exp(mean %s)", mean)
		assert.Equal(t, uint64(n), node.Stats().Delivered)
		// The observed delays are exactly the ones the senders asked for.
		slices.Sort(observed)
		slices.Sort(asked)
		assert.Equal(t, asked, observed)
		// The test has power: a uniform sample with the same mean fails.
		uni := make([]time.Duration, n)
		for i := range uni {
			uni[i] = time.Duration(rnd.Uint64() % uint64(2*mean))
		}
		assert.Greater(t, ksExp(uni, mean), crit)
	})
}
