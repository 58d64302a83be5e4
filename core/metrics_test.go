package core_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recMetrics records what an endpoint reports.
type recMetrics struct {
	core.NopMetrics
	mu       sync.Mutex
	events   []string
	streams  map[string]int
	sent     map[string]uint64
	received map[string]uint64
	changed  chan struct{}
}

func newRecMetrics() *recMetrics {
	return &recMetrics{streams: map[string]int{}, sent: map[string]uint64{}, received: map[string]uint64{}, changed: make(chan struct{}, 1)}
}

func (m *recMetrics) add(e string) {
	m.events = append(m.events, e)
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

func (m *recMetrics) ConnAccepted(alpn string, hs time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.add(fmt.Sprintf("accepted %s handshake>0=%v", alpn, hs > 0))
}
func (m *recMetrics) ConnRefused(alpn, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.add("refused " + alpn + " " + reason)
}
func (m *recMetrics) ConnClosed(alpn string, sent, recv uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent[alpn] += sent
	m.received[alpn] += recv
	m.add("closed " + alpn)
}
func (m *recMetrics) StreamOpened(alpn string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.streams[alpn]++
	m.add("stream+ " + alpn)
}
func (m *recMetrics) StreamClosed(alpn string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.streams[alpn]--
	m.add("stream- " + alpn)
}

// waitFor waits until cond holds (under the lock) or fails after 10s.
func (m *recMetrics) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		m.mu.Lock()
		ok := cond()
		m.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-m.changed:
		case <-deadline:
			m.mu.Lock()
			defer m.mu.Unlock()
			t.Fatalf("%s: not reported within 10s; events %v", what, m.events)
		}
	}
}

func (m *recMetrics) has(e string) bool {
	for _, x := range m.events {
		if x == e {
			return true
		}
	}
	return false
}

func TestMetricsReported(t *testing.T) {
	m := newRecMetrics()
	gated := tagHandler{alpn: "alknet/gated", tag: "x"}
	ep, err := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: coretest.Key(t), ListenTCP: true})
	require.NoError(t, err)
	ep.SetMetrics(m)
	ep.Register(core.Ping{}, core.AccessControl{})
	ep.Register(gated, core.AccessControl{RequiredScopes: []string{"x"}})
	errc := make(chan error, 1)
	go func() { errc <- ep.Serve(context.Background()) }()
	<-ep.Ready()
	t.Cleanup(func() { _ = ep.Close(); <-errc })
	client := coretest.ClientEndpoint(t, core.SecretKey{})

	for _, tcp := range []bool{false, true} {
		dial := client.Dial
		if tcp {
			dial = client.DialTCP
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		conn, err := dial(ctx, ep.Addr(), core.PingALPN)
		require.NoError(t, err)
		s, err := conn.OpenStream(ctx)
		require.NoError(t, err)
		_, err = io.WriteString(s, "ping")
		require.NoError(t, err)
		require.NoError(t, s.CloseWrite())
		b, err := io.ReadAll(s)
		require.NoError(t, err)
		assert.Equal(t, "ping", string(b))
		m.waitFor(t, "stream closed", func() bool { return m.has("stream- alknet/ping") })
		require.NoError(t, conn.Close(core.CodeOK, ""))
		cancel()
		m.waitFor(t, "connection closed", func() bool { return m.has("closed alknet/ping") })
		m.mu.Lock()
		assert.True(t, m.has("accepted alknet/ping handshake>0=true"), "%v", m.events)
		assert.Equal(t, 0, m.streams["alknet/ping"], "every opened stream closed")
		assert.Greater(t, m.sent["alknet/ping"], uint64(4), "tcp=%v", tcp)
		assert.Greater(t, m.received["alknet/ping"], uint64(4), "tcp=%v", tcp)
		m.events = nil
		m.mu.Unlock()
	}

	// An anonymous caller on a gated ALPN is refused as forbidden.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if conn, err := client.Dial(ctx, ep.Addr(), "alknet/gated"); err == nil {
		if s, err := conn.OpenStream(ctx); err == nil {
			_, _ = io.ReadAll(s)
		}
	}
	m.waitFor(t, "refusal", func() bool { return m.has("refused alknet/gated forbidden") })

	// A stream still open when its connection ends is counted closed.
	conn, err := client.Dial(ctx, ep.Addr(), core.PingALPN)
	require.NoError(t, err)
	s, err := conn.OpenStream(ctx)
	require.NoError(t, err)
	_, err = io.WriteString(s, "x")
	require.NoError(t, err)
	m.waitFor(t, "stream opened", func() bool { return m.streams["alknet/ping"] == 1 })
	require.NoError(t, conn.Close(core.CodeOK, ""))
	m.waitFor(t, "stream of a closed connection", func() bool { return m.streams["alknet/ping"] == 0 && m.has("closed alknet/ping") })
}
