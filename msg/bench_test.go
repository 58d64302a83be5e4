package msg

import (
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/alkdev/alknet/core/store"
)

// BenchmarkSeal and BenchmarkOpen measure one message of the 1 KiB bucket
// with X-Wing; the X25519 variants run the same HPKE single-shot
// operation with DHKEM(X25519) for comparison (no signature, no padding:
// the KEM and AEAD cost alone).
func BenchmarkSeal(b *testing.B) {
	a, r := newTestNode(b), newTestNode(b)
	rec := r.msg.Record()
	body := make([]byte, 800)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(a.key, rec, &Message{Body: body}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	a, r := newTestNode(b), newTestNode(b)
	env, err := Seal(a.key, r.msg.Record(), &Message{Body: make([]byte, 800)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(r.msg, env); err != nil {
			b.Fatal(err)
		}
	}
}

func benchKEM(b *testing.B, k hpke.KEM, open bool) {
	sk, err := k.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	plain := make([]byte, Buckets[0])
	info := []byte(infoLabel)
	ct, err := hpke.Seal(sk.PublicKey(), kdf(), aead(), info, plain)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if open {
			_, err = hpke.Open(sk, kdf(), aead(), info, ct)
		} else {
			_, err = hpke.Seal(sk.PublicKey(), kdf(), aead(), info, plain)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHPKESealXWing(b *testing.B)  { benchKEM(b, kem(), false) }
func BenchmarkHPKEOpenXWing(b *testing.B)  { benchKEM(b, kem(), true) }
func BenchmarkHPKESealX25519(b *testing.B) { benchKEM(b, hpke.DHKEM(ecdh.X25519()), false) }
func BenchmarkHPKEOpenX25519(b *testing.B) { benchKEM(b, hpke.DHKEM(ecdh.X25519()), true) }

// BenchmarkDeliver measures messages per second from one node to
// another over one anonymous connection, 1 KiB bucket: seal, deliver, open on the
// recipient's node, store with its notification, acknowledge. Eight
// senders run at once.
func BenchmarkDeliver(b *testing.B) {
	a, r := newTestNode(b), newTestNode(b)
	nb := startBenchNode(b, r)
	ep := clientEPB(b, a.key)
	conn, err := ep.Dial(b.Context(), nb.ep.Addr(), ALPN)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(core.CodeOK, "")
	c := NewClient(conn)
	rec := r.msg.Record()
	body := make([]byte, 800)
	// Four senders: the connection is anonymous (the sender is a stranger to
	// the recipient), and core lets an anonymous connection have 8 streams
	// open at once.
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			env, err := Seal(a.key, rec, &Message{Body: body})
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := c.Deliver(context.Background(), env); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkArrival measures send-to-arrival latency with a live
// subscriber: from the start of Seal on the sender to the push reaching
// the mailbox owner's subscription, one message at a time.
func BenchmarkArrival(b *testing.B) {
	a, r := newTestNode(b), newTestNode(b)
	nb := startBenchNode(b, r)
	sender, err := clientEPB(b, a.key).Dial(b.Context(), nb.ep.Addr(), ALPN)
	if err != nil {
		b.Fatal(err)
	}
	owner, err := clientEPB(b, r.key).Dial(b.Context(), nb.ep.Addr(), ALPN)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	got := make(chan struct{}, 1)
	go func() {
		_ = NewClient(owner).Subscribe(ctx, r.id(), 0, func(Item) error { got <- struct{}{}; return nil })
	}()
	c := NewClient(sender)
	rec := r.msg.Record()
	body := make([]byte, 800)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		env, err := Seal(a.key, rec, &Message{Body: body})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Deliver(ctx, env); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			b.Fatal("no push within 10s")
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
}

func startBenchNode(b *testing.B, n testNode) *struct{ ep *core.Endpoint } {
	b.Helper()
	db, err := store.New(store.Config{Path: filepath.Join(b.TempDir(), "alknet.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	peers := coretest.NewPeers(ownerPeers(n)...)
	srv, err := NewServer(b.Context(), Config{DB: db, Key: n.msg, Identities: peers, RatePerKey: -1, RatePerAddr: -1,
		MaxMailboxMessages: 1 << 40, MaxMailboxBytes: 1 << 50})
	if err != nil {
		b.Fatal(err)
	}
	ep := coretest.StartEndpoint(b, core.Config{SecretKey: n.key, Identities: peers}, coretest.Route{Handler: srv})
	return &struct{ ep *core.Endpoint }{ep}
}

func clientEPB(b *testing.B, k core.SecretKey) *core.Endpoint { return coretest.ClientEndpoint(b, k) }
