package alkhttp

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/quic-go/quic-go/http3"
)

// benchWorkers is the number of concurrent requests of every benchmark:
// one connection, many streams.
const benchWorkers = 32

// benchFile is the small static file of the benchmarks (bench/http.sh
// serves the same bytes from Caddy).
var benchFile = bytes.Repeat([]byte("alknet static file\n"), 54) // 1026 bytes

// load runs b.N requests from benchWorkers goroutines through do and
// reports requests/s and latency percentiles.
func load(b *testing.B, do func() error) {
	lat := make([][]time.Duration, benchWorkers)
	var next atomic.Int64
	var failed atomic.Value
	// One request first: the connection exists before the workers start
	// (otherwise net/http dials one per worker, and 32 handshakes at once
	// from one address meet the node's per-address handshake cap).
	if err := do(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range benchWorkers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := do(); err != nil {
					failed.Store(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(float64(len(all))*p))].Microseconds())
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(0, "ns/op")
}

// get returns a request function for a GET that must answer 200 with want.
func get(c *http.Client, url string, want []byte) func() error {
	return func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || (want != nil && !bytes.Equal(body, want)) {
			return &benchError{resp.Status}
		}
		return nil
	}
}

type benchError struct{ s string }

func (e *benchError) Error() string { return "unexpected answer: " + e.s }

// benchNode serves benchFile, the gateway and alknet/call (over the same
// registry) to a pinned client.
func benchNode(b *testing.B) (*core.Endpoint, core.SecretKey, string) {
	key := coretest.Key(b)
	peers := core.StaticPeers([]core.PeerEntry{{PeerID: "bench", Fingerprints: []string{key.NodeID().Fingerprint()}, Scopes: []string{"call"}, Enabled: true}})
	root := b.TempDir()
	if err := os.WriteFile(filepath.Join(root, "file.txt"), benchFile, 0o644); err != nil {
		b.Fatal(err)
	}
	reg := testRegistry()
	site, err := NewSite(SiteConfig{Registry: reg, Gateway: true, CallAccess: core.AccessControl{RequiredScopes: []string{"call"}}, Root: root})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = site.Close() })
	ep := coretest.StartEndpoint(b, core.Config{Identities: peers, ListenTCP: true, MaxIncomingStreams: 1024},
		coretest.Route{Handler: New(site, &Options{Identities: peers})},
		coretest.Route{Handler: callServer(b, reg, peers), ACL: core.AccessControl{RequiredScopes: []string{"call"}}})
	return ep, key, "https://" + ep.Addr().Host
}

// callServer serves reg on alknet/call, next to the gateway over it.
func callServer(b *testing.B, reg *call.Registry, ids core.IdentityProvider) *call.Server {
	srv, err := call.NewServer(call.Config{Registry: reg, Identities: ids})
	if err != nil {
		b.Fatal(err)
	}
	return srv
}

// benchTarget returns the node the benchmarks talk to: the running
// `alknet serve` that ALKNET_BENCH_NODE names (<nodeid>@host:port, serving
// benchFile as /file.txt and knowing the key in the file
// ALKNET_BENCH_KEY as a peer with scope call), as bench/http.sh starts
// it; else a node in this process.
func benchTarget(b *testing.B) (core.Addr, core.SecretKey) {
	if node := os.Getenv("ALKNET_BENCH_NODE"); node != "" {
		addr, err := core.ParseAddr(node)
		if err != nil {
			b.Fatal(err)
		}
		key, err := core.LoadKey(os.Getenv("ALKNET_BENCH_KEY"))
		if err != nil {
			b.Fatal(err)
		}
		return addr, key
	}
	ep, key, _ := benchNode(b)
	return ep.Addr(), key
}

// BenchmarkHTTP: a small static file over h2 and h3 from alknet and (when
// ALKNET_BENCH_CADDY names its https://host:port) from Caddy serving the
// same file, with the same Go clients.
func BenchmarkHTTP(b *testing.B) {
	addr, key := benchTarget(b)
	base := "https://" + addr.Host
	for _, proto := range []string{"h2", "h3"} {
		b.Run("target=alknet/proto="+proto, func(b *testing.B) {
			c, err := NewClient(key, addr.ID, proto == "h3")
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseIdleConnections()
			load(b, get(c, base+"/file.txt", benchFile))
		})
	}
	caddy := os.Getenv("ALKNET_BENCH_CADDY")
	for _, proto := range []string{"h2", "h3"} {
		b.Run("target=caddy/proto="+proto, func(b *testing.B) {
			if caddy == "" {
				b.Skip("ALKNET_BENCH_CADDY not set (bench/http.sh starts Caddy)")
			}
			conf := &tls.Config{InsecureSkipVerify: true} // Caddy's internal CA; the bytes are checked
			var c *http.Client
			if proto == "h3" {
				c = &http.Client{Transport: &http3.Transport{TLSClientConfig: conf}}
			} else {
				c = &http.Client{Transport: &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true}}
			}
			defer c.CloseIdleConnections()
			load(b, get(c, caddy+"/file.txt", benchFile))
		})
	}
}

// benchOp is the query the gateway benchmark runs: test/echo in process,
// node/info on an alknet serve (ALKNET_BENCH_NODE).
func benchOp() (op string, input []byte, ok func([]byte) bool) {
	if os.Getenv("ALKNET_BENCH_NODE") != "" {
		return "node/info", nil, func(b []byte) bool { return bytes.Contains(b, []byte(`"alpns":`)) }
	}
	want := []byte("{\"msg\":\"bench\",\"caller\":\"bench\"}")
	return "test/echo", []byte(`{"msg":"bench"}`), func(b []byte) bool { return bytes.Equal(bytes.TrimSpace(b), want) }
}

// BenchmarkGateway: a query through the HTTP gateway over h2 and h3 against
// the same query on alknet/call (a QUIC stream per call) from the same
// client key.
func BenchmarkGateway(b *testing.B) {
	addr, key := benchTarget(b)
	base := "https://" + addr.Host
	op, input, ok := benchOp()
	for _, proto := range []string{"h2", "h3"} {
		b.Run("impl=gateway-"+proto, func(b *testing.B) {
			c, err := NewClient(key, addr.ID, proto == "h3")
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseIdleConnections()
			load(b, func() error {
				resp, err := c.Post(base+"/v1/call/"+op, "application/json", bytes.NewReader(input))
				if err != nil {
					return err
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					return err
				}
				if resp.StatusCode != 200 || !ok(got) {
					return &benchError{resp.Status + " " + string(got)}
				}
				return nil
			})
		})
	}
	b.Run("impl=call", func(b *testing.B) {
		cep := coretest.ClientEndpoint(b, key)
		ctx := context.Background()
		p, err := call.Dial(ctx, cep, addr, call.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		in := json.RawMessage(input)
		if len(in) == 0 {
			in = json.RawMessage("null")
		}
		load(b, func() error {
			var out json.RawMessage
			if err := p.Call(ctx, op, in, &out); err != nil {
				return err
			}
			if !ok(out) {
				return &benchError{string(out)}
			}
			return nil
		})
	})
}
