package store_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
	"github.com/stretchr/testify/require"
)

// psFill stores n peers, each with one key and a token hash, in one
// transaction and returns their fingerprints and tokens.
func psFill(b *testing.B, ps *store.PeerStore, n int) (fps, toks []string) {
	b.Helper()
	entries := make([]core.PeerEntry, n)
	for i := range entries {
		k, err := core.GenerateSecretKey()
		require.NoError(b, err)
		tok, err := store.NewToken()
		require.NoError(b, err)
		fps = append(fps, k.NodeID().Fingerprint())
		toks = append(toks, tok)
		entries[i] = core.PeerEntry{
			PeerID: fmt.Sprintf("peer-%05d", i), Fingerprints: []string{fps[i]}, TokenHash: core.HashToken([]byte(tok)),
			Scopes: []string{"ssh", "sftp"}, Enabled: true,
		}
	}
	require.NoError(b, ps.PutPeers(b.Context(), entries))
	return fps, toks
}

// BenchmarkIdentityByFingerprint resolves fingerprints against 10,000
// stored peers: the hot path of every accepted connection.
func BenchmarkIdentityByFingerprint(b *testing.B) {
	_, ps, _ := psTemp(b)
	fps, _ := psFill(b, ps, 10_000)
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok := ps.IdentityByFingerprint(fps[i%len(fps)]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, ok := ps.IdentityByFingerprint(fps[i%len(fps)]); !ok {
					b.Fatal("miss")
				}
				i++
			}
		})
	})
}

// BenchmarkIdentityByToken resolves bearer tokens (SHA-256, map lookup,
// constant-time compare) against 10,000 stored peers.
func BenchmarkIdentityByToken(b *testing.B) {
	_, ps, _ := psTemp(b)
	_, toks := psFill(b, ps, 10_000)
	raw := make([][]byte, len(toks))
	for i, t := range toks {
		raw[i] = []byte(t)
	}
	i := 0
	for b.Loop() {
		if _, ok := ps.IdentityByToken(raw[i%len(raw)]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

// BenchmarkReloadLatency measures, for each write of a new peer in another
// process (or on another connection of this process), the time from the
// start of the write (PutPeer: validation, transaction, commit) to the peer
// being visible in this process's index, over a table of `peers` existing
// peers. This bounds commit-to-visible from above. It reports the median
// and p99 in milliseconds; ns/op is the whole round, including the writer's
// own reload.
func BenchmarkReloadLatency(b *testing.B) {
	for _, size := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("process/peers=%d", size), func(b *testing.B) { benchReload(b, size, true) })
		b.Run(fmt.Sprintf("connection/peers=%d", size), func(b *testing.B) { benchReload(b, size, false) })
	}
}

func benchReload(b *testing.B, size int, process bool) {
	path := filepath.Join(b.TempDir(), "alknet.db")
	_, ps := psOpen(b, path)
	psFill(b, ps, size)
	var want atomic.Pointer[string]
	visible := make(chan time.Time, 1)
	ps.OnReload(func() {
		if fp := want.Load(); fp != nil {
			if _, ok := ps.IdentityByFingerprint(*fp); ok && want.CompareAndSwap(fp, nil) {
				visible <- time.Now()
			}
		}
	})

	// add commits one peer elsewhere and returns when the write started.
	var add func(id, fp string) time.Time
	if process {
		_, stdin, out := psChild(b, "serve", path)
		add = func(id, fp string) time.Time { return psCommand(b, stdin, out, "add "+id+" "+fp+" ssh") }
	} else {
		_, other := psOpen(b, path)
		add = func(id, fp string) time.Time {
			start := time.Now()
			require.NoError(b, other.PutPeer(b.Context(), core.PeerEntry{PeerID: id, Fingerprints: []string{fp}, Scopes: []string{"ssh"}, Enabled: true}))
			return start
		}
	}
	var lat []time.Duration
	i := 0
	for b.Loop() {
		k, err := core.GenerateSecretKey()
		require.NoError(b, err)
		fp := k.NodeID().Fingerprint()
		want.Store(&fp)
		started := add(fmt.Sprintf("new-%d", i), fp)
		select {
		case seen := <-visible:
			lat = append(lat, seen.Sub(started))
		case <-time.After(30 * time.Second):
			b.Fatal("write never became visible")
		}
		i++
	}
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
