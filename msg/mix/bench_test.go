package mix

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"golang.org/x/crypto/curve25519"
)

// BenchmarkUnwrap peels a relay layer (X25519, header, Lioness over the
// payload), without replay cache: the crypto cost per packet on one core.
func BenchmarkUnwrap(b *testing.B) {
	const e = 1
	_, keys, hops := testRoute(b, 3, e)
	pkt, err := NewPacket(rand.Reader, e, hops, Routing{Command: Deliver, Node: core.NodeID{1}}, Message{Envelope: make([]byte, 16384)})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, PacketSize)
	b.SetBytes(PacketSize)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, pkt)
		if _, err := Unwrap(&keys[0].private, buf, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "unwraps/s")
}

// BenchmarkX25519 is one scalar multiplication, the floor of an unwrap.
func BenchmarkX25519(b *testing.B) {
	k := bytes.Repeat([]byte{7}, 32)
	for b.Loop() {
		if _, err := curve25519.X25519(k, curve25519.Basepoint); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrap builds a three-hop packet, as a sender does.
func BenchmarkWrap(b *testing.B) {
	tn := newTestNet(b, 3, 3, nil, time.Now(), testPeriod, 50*time.Millisecond)
	env := make([]byte, 16384)
	b.SetBytes(PacketSize)
	for b.Loop() {
		if _, _, err := Wrap(tn.dir, core.NodeID{1}, Message{Envelope: env}, WrapOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// erlangQuantile returns the q quantile of the sum of k exponentials of
// mean m (the Erlang distribution), by bisection on its CDF.
func erlangQuantile(k int, m time.Duration, q float64) time.Duration {
	cdf := func(x float64) float64 {
		term, sum := 1.0, 1.0
		for i := 1; i < k; i++ {
			term *= x / float64(i)
			sum += term
		}
		return 1 - math.Exp(-x)*sum
	}
	lo, hi := 0.0, 100.0
	for range 100 {
		mid := (lo + hi) / 2
		if cdf(mid) < q {
			lo = mid
		} else {
			hi = mid
		}
	}
	return time.Duration(lo * float64(m))
}

// BenchmarkLatency3Hops sends messages through three mix nodes on
// loopback with a 50 ms mean delay per hop and reports the quantiles of
// send-to-delivery latency next to those of the sum of three exponentials
// (the delays alone). Each iteration is one message; messages are sent
// every 10 ms, so they overlap in the mixes (about 15 in flight).
func BenchmarkLatency3Hops(b *testing.B) {
	b.Run("mean=50ms", func(b *testing.B) { benchLatency(b, 50*time.Millisecond) })
	// No delay: what the transport and three unwraps cost alone.
	b.Run("mean=0", func(b *testing.B) { benchLatency(b, 0) })
}

func benchLatency(b *testing.B, mean time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	sent := map[uint64]time.Time{}
	done := make(chan struct{}, 1024)
	ck := coretest.Key(b)
	ln := startLoopback(b, 3, 3, ck, mean, func(_ context.Context, d Delivery) error {
		id := binary.BigEndian.Uint64(d.Envelope)
		mu.Lock()
		lat = append(lat, time.Since(sent[id]))
		mu.Unlock()
		done <- struct{}{}
		return nil
	}, nil)
	cep := coretest.ClientEndpoint(b, ck)
	tr := NewTransport(cep, 5*time.Second)
	env := make([]byte, 1024)
	n := 0
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for b.Loop() {
		// The packet is built before the clock starts: the figure is the
		// network's latency, not the sender's CPU.
		binary.BigEndian.PutUint64(env, uint64(n))
		pkt, route, err := Wrap(ln.dir, core.NodeID{1}, Message{Envelope: env}, WrapOptions{})
		if err != nil {
			b.Fatal(err)
		}
		<-tick.C
		mu.Lock()
		sent[uint64(n)] = time.Now()
		mu.Unlock()
		if err := tr.Send(context.Background(), route.Nodes[0].NodeAddr(), pkt); err != nil {
			b.Fatal(err)
		}
		n++
	}
	deadline := time.After(30 * time.Second)
	for range n {
		select {
		case <-done:
		case <-deadline:
			b.Fatalf("only %d of %d messages delivered within 30s", len(lat), n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(int(p*float64(len(lat))), len(lat)-1)] }
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	b.ReportMetric(ms(q(0.5)), "p50-ms")
	b.ReportMetric(ms(q(0.9)), "p90-ms")
	b.ReportMetric(ms(q(0.99)), "p99-ms")
	if mean > 0 {
		b.ReportMetric(ms(erlangQuantile(3, mean, 0.5)), "theory-p50-ms")
		b.ReportMetric(ms(erlangQuantile(3, mean, 0.9)), "theory-p90-ms")
		b.ReportMetric(ms(erlangQuantile(3, mean, 0.99)), "theory-p99-ms")
	}
	var sum time.Duration
	for _, l := range lat {
		sum += l
	}
	b.ReportMetric(ms(sum/time.Duration(len(lat))), "mean-ms")
}

// BenchmarkTimerLateness measures how late bare Go timers of exponential
// durations (50 ms mean) fire on this machine, started every 10 ms like
// the latency benchmark's messages: the part of a mix delay's error that
// is the machine's, not the mix's. Each iteration is one timer.
func BenchmarkTimerLateness(b *testing.B) {
	rnd := seeded(1)
	late := make(chan time.Duration, b.N+1)
	n := 0
	for b.Loop() {
		d, _ := ExpDelay(rnd, 50*time.Millisecond)
		start := time.Now()
		time.AfterFunc(d, func() { late <- time.Since(start) - d })
		time.Sleep(10 * time.Millisecond)
		n++
	}
	var all []time.Duration
	for range n {
		all = append(all, <-late)
	}
	slices.Sort(all)
	var sum time.Duration
	for _, l := range all {
		sum += l
	}
	b.ReportMetric(float64(sum)/float64(n)/1e6, "late-mean-ms")
	b.ReportMetric(float64(all[n/2])/1e6, "late-p50-ms")
	b.ReportMetric(float64(all[min(n*99/100, n-1)])/1e6, "late-p99-ms")
}
