package callbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
)

type msg struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

// alknetPeer starts an alknet/call server on a loopback endpoint and
// returns a Peer on one connection to it: a stream per call, or every call
// on one stream when multiplex is set.
func alknetPeer(b *testing.B, multiplex bool) *call.Peer {
	reg := call.NewRegistry(nil)
	call.Query(reg, "bench/echo", func(_ context.Context, in msg) (msg, error) { return in, nil }, call.Options{})
	call.Subscription(reg, "bench/count", func(_ context.Context, in msg, emit func(int) error) error {
		for i := range in.N {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}, call.Options{})
	srv, err := call.NewServer(call.Config{Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	pair := coretest.NewPair(b, []string{"call"}, coretest.Route{Handler: srv, ACL: core.AccessControl{RequiredScopes: []string{"call"}}})
	p, err := call.Dial(context.Background(), pair.Client, pair.Server.Addr(), call.Config{Multiplex: multiplex})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

// quicStreamUnary is the transport floor: the same JSON body echoed on a
// fresh core.Stream per call (alknet/ping), no call protocol at all.
func quicStreamUnary(b *testing.B) unaryFunc {
	pair := coretest.NewPair(b, nil, coretest.Route{Handler: core.Ping{}})
	conn := pair.Dial(b, core.PingALPN)
	return func(ctx context.Context, in msg, out *msg) error {
		body, err := json.Marshal(in)
		if err != nil {
			return err
		}
		s, err := conn.OpenStream(ctx)
		if err != nil {
			return err
		}
		defer s.Close()
		if _, err := s.Write(body); err != nil {
			return err
		}
		if err := s.CloseWrite(); err != nil {
			return err
		}
		back, err := io.ReadAll(s)
		if err != nil {
			return err
		}
		return json.Unmarshal(back, out)
	}
}

type unaryFunc func(ctx context.Context, in msg, out *msg) error

// BenchmarkUnary runs the same echo call through alknet/call and gRPC with
// 1 and 64 concurrent callers on one connection.
func BenchmarkUnary(b *testing.B) {
	impls := []struct {
		name string
		mk   func(b *testing.B) unaryFunc
	}{
		{"alknet", func(b *testing.B) unaryFunc {
			p := alknetPeer(b, false)
			return func(ctx context.Context, in msg, out *msg) error { return p.Call(ctx, "bench/echo", in, out) }
		}},
		{"alknet-mux", func(b *testing.B) unaryFunc {
			p := alknetPeer(b, true)
			return func(ctx context.Context, in msg, out *msg) error { return p.Call(ctx, "bench/echo", in, out) }
		}},
		{"grpc", func(b *testing.B) unaryFunc { return grpcUnary(grpcClient(b)) }},
		{"quic-stream", quicStreamUnary},
	}
	for _, callers := range []int{1, 64} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("callers=%d/impl=%s", callers, impl.name), func(b *testing.B) {
				runUnary(b, impl.mk(b), callers)
			})
		}
	}
}

func runUnary(b *testing.B, fn unaryFunc, callers int) {
	ctx := context.Background()
	in := msg{Name: "alknet", N: 7}
	var out msg
	if err := fn(ctx, in, &out); err != nil || out != in {
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
			var o msg
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := fn(ctx, in, &o); err != nil {
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
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
}

// BenchmarkStream counts items per second of one server-streaming call.
func BenchmarkStream(b *testing.B) {
	b.Run("impl=alknet", func(b *testing.B) {
		p := alknetPeer(b, false)
		runStream(b, func(ctx context.Context, n int) (int, error) {
			got := 0
			for _, err := range p.Subscribe(ctx, "bench/count", msg{N: n}) {
				if err != nil {
					return got, err
				}
				got++
			}
			return got, nil
		})
	})
	b.Run("impl=grpc", func(b *testing.B) { runStream(b, grpcCount(grpcClient(b))) })
}

func runStream(b *testing.B, fn func(ctx context.Context, n int) (int, error)) {
	b.ResetTimer()
	start := time.Now()
	got, err := fn(context.Background(), b.N)
	elapsed := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if got != b.N {
		b.Fatalf("got %d items, want %d", got, b.N)
	}
	b.ReportMetric(float64(got)/elapsed.Seconds(), "items/s")
}
