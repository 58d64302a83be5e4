package lossy

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoServer answers every datagram with the same bytes.
func echoServer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDP(buf[:n], from)
		}
	}()
	return c
}

// startProxy runs a proxy in front of upstream until the test ends.
func startProxy(t *testing.T, cfg Config) *Proxy {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	p, err := New(cfg)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- p.Serve(t.Context()) }()
	t.Cleanup(func() {
		_ = p.conn.Close()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("proxy did not stop within 10s")
		}
	})
	return p
}

// exchange sends n numbered datagrams through the proxy and collects the
// sequence numbers that come back until nothing arrives for quiet.
func exchange(t *testing.T, p *Proxy, n int, quiet time.Duration) []uint32 {
	t.Helper()
	c, err := net.DialUDP("udp", nil, p.Addr())
	require.NoError(t, err)
	defer c.Close()
	for i := range n {
		var b [64]byte
		binary.BigEndian.PutUint32(b[:], uint32(i))
		_, err := c.Write(b[:])
		require.NoError(t, err)
	}
	var got []uint32
	buf := make([]byte, 2048)
	for {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(quiet)))
		k, err := c.Read(buf)
		if err != nil {
			var ne net.Error
			require.ErrorAs(t, err, &ne)
			require.True(t, ne.Timeout(), "read: %v", err)
			return got
		}
		require.Equal(t, 64, k)
		require.True(t, bytes.Equal(buf[4:64], make([]byte, 60)), "payload changed")
		got = append(got, binary.BigEndian.Uint32(buf[:4]))
	}
}

func TestProxyClean(t *testing.T) {
	up := echoServer(t)
	p := startProxy(t, Config{Upstream: up.LocalAddr().String(), Seed: 1})
	got := exchange(t, p, 100, 300*time.Millisecond)
	want := make([]uint32, 100)
	for i := range want {
		want[i] = uint32(i)
	}
	assert.Equal(t, want, got)
	st := p.Stats()
	assert.Equal(t, int64(200), st.Received)
	assert.Equal(t, int64(200), st.Forwarded)
}

func TestProxyDropAll(t *testing.T) {
	up := echoServer(t)
	p := startProxy(t, Config{Upstream: up.LocalAddr().String(), Drop: 1, Seed: 1})
	assert.Empty(t, exchange(t, p, 20, 200*time.Millisecond))
	assert.Equal(t, int64(20), p.Stats().Dropped)
}

func TestProxyDuplicateAll(t *testing.T) {
	up := echoServer(t)
	p := startProxy(t, Config{Upstream: up.LocalAddr().String(), Duplicate: 1, Seed: 1})
	got := exchange(t, p, 10, 300*time.Millisecond)
	// Each datagram is doubled on the way out and each echo again on the
	// way back.
	count := map[uint32]int{}
	for _, g := range got {
		count[g]++
	}
	require.Len(t, count, 10)
	for i, c := range count {
		assert.Equal(t, 4, c, "copies of datagram %d", i)
	}
}

func TestProxyReorder(t *testing.T) {
	up := echoServer(t)
	p := startProxy(t, Config{Upstream: up.LocalAddr().String(), Reorder: 0.5, ReorderDelay: 50 * time.Millisecond, Seed: 7})
	got := exchange(t, p, 200, 500*time.Millisecond)
	require.Len(t, got, 200, "reordering must not lose datagrams")
	seen := map[uint32]bool{}
	inversions := 0
	for i, g := range got {
		seen[g] = true
		if i > 0 && g < got[i-1] {
			inversions++
		}
	}
	assert.Len(t, seen, 200)
	assert.Positive(t, inversions, "some datagrams must arrive out of order")
	assert.Positive(t, p.Stats().Reordered)
}

func TestConfigRejectsBadRates(t *testing.T) {
	for _, cfg := range []Config{{Drop: -0.1}, {Duplicate: 1.5}, {Reorder: 2}} {
		cfg.Listen, cfg.Upstream = "127.0.0.1:0", "127.0.0.1:9"
		_, err := New(cfg)
		assert.ErrorIs(t, err, ErrBadRate)
	}
}
