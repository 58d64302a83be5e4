package mix

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/require"
)

// seeded returns a deterministic random source for a test.
func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

type testNet struct {
	authority core.SecretKey
	keys      []core.SecretKey
	dir       *Directory
}

// newTestNet makes nodes (one per layer in order, wrapping round) and a
// directory signed by a fresh authority, covering now.
func newTestNet(t testing.TB, n, layers int, addrs []string, now time.Time, period, mean time.Duration) *testNet {
	t.Helper()
	keys := make([]core.SecretKey, n)
	for i := range keys {
		keys[i] = newKey(t)
	}
	return newTestNetWithKeys(t, keys, layers, addrs, now, period, mean)
}

func newTestNetWithKeys(t testing.TB, keys []core.SecretKey, layers int, addrs []string, now time.Time, period, mean time.Duration) *testNet {
	t.Helper()
	tn := &testNet{authority: newKey(t), keys: keys}
	first := Epoch(now, period) - 2
	d := &Directory{Issued: now, Period: period, FirstEpoch: first, Epochs: 5, MeanDelay: mean, Layers: layers}
	for i, k := range keys {
		addr := "127.0.0.1:1"
		if addrs != nil {
			addr = addrs[i]
		}
		dn := DirNode{ID: k.NodeID(), Layer: i % layers, Addr: addr}
		for e := first; e < first+5; e++ {
			dn.Keys = append(dn.Keys, SignKeyRecord(k, period, e))
		}
		d.Nodes = append(d.Nodes, dn)
	}
	raw, err := SignDirectory(tn.authority, d)
	require.NoError(t, err)
	tn.dir, err = ParseDirectory(raw, tn.authority.NodeID())
	require.NoError(t, err)
	return tn
}

func newKey(t testing.TB) core.SecretKey {
	t.Helper()
	k, err := core.GenerateSecretKey()
	require.NoError(t, err)
	return k
}

// commonSubstring reports whether a and b share any n-byte substring.
func commonSubstring(a, b []byte, n int) bool {
	seen := make(map[string]struct{}, len(a))
	for i := 0; i+n <= len(a); i++ {
		seen[string(a[i:i+n])] = struct{}{}
	}
	for i := 0; i+n <= len(b); i++ {
		if _, ok := seen[string(b[i:i+n])]; ok {
			return true
		}
	}
	return false
}

func flipped(b []byte, bit int) []byte {
	c := bytes.Clone(b)
	c[bit/8] ^= 1 << (bit % 8)
	return c
}
