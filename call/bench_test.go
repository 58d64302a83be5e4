package call

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
)

type benchMsg struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

func benchPeer(b *testing.B, multiplex bool) *Peer {
	reg := NewRegistry(nil)
	Query(reg, "bench/echo", func(_ context.Context, in benchMsg) (benchMsg, error) { return in, nil }, Options{})
	Subscription(reg, "bench/count", func(ctx context.Context, in benchMsg, emit func(int) error) error {
		for i := range in.N {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}, Options{})
	srv, err := NewServer(Config{Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	pair := coretest.NewPair(b, []string{"call"}, coretest.Route{Handler: srv, ACL: core.AccessControl{RequiredScopes: []string{"call"}}})
	p, err := Dial(context.Background(), pair.Client, pair.Server.Addr(), Config{Multiplex: multiplex})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

// BenchmarkUnary measures round trips of a small query over one QUIC
// connection with 1 and 64 concurrent callers, with a stream per call and
// with every call on one stream; it reports p50 and p99 latency and calls
// per second.
func BenchmarkUnary(b *testing.B) {
	for _, run := range []struct {
		name      string
		callers   int
		multiplex bool
	}{{"callers=1", 1, false}, {"callers=64", 64, false}, {"callers=1/mux", 1, true}, {"callers=64/mux", 64, true}} {
		callers := run.callers
		b.Run(run.name, func(b *testing.B) {
			p := benchPeer(b, run.multiplex)
			ctx := context.Background()
			in := benchMsg{Name: "alknet", N: 7}
			var out benchMsg
			if err := p.Call(ctx, "bench/echo", in, &out); err != nil || out != in {
				b.Fatalf("warm-up: %v %+v", err, out)
			}
			lat := make([][]time.Duration, callers)
			var next atomic.Int64
			var failed atomic.Value
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for c := range callers {
				wg.Go(func() {
					var o benchMsg
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						if err := p.Call(ctx, "bench/echo", in, &o); err != nil {
							failed.Store(err)
							return
						}
						lat[c] = append(lat[c], time.Since(t0))
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			reportLatency(b, slices.Concat(lat...), elapsed)
		})
	}
}

func reportLatency(b *testing.B, all []time.Duration, elapsed time.Duration) {
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
}

// BenchmarkSubscription measures items per second of one subscription.
func BenchmarkSubscription(b *testing.B) {
	p := benchPeer(b, false)
	b.ResetTimer()
	start := time.Now()
	n := 0
	for _, err := range p.Subscribe(context.Background(), "bench/count", benchMsg{N: b.N}) {
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	elapsed := time.Since(start)
	if n != b.N {
		b.Fatalf("got %d items, want %d", n, b.N)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "items/s")
}
