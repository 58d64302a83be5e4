package alkhttp

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrape fetches /metrics as admin over c and parses it with the
// Prometheus text parser.
func scrape(t *testing.T, n *testNode, h3 bool) map[string]*dto.MetricFamily {
	t.Helper()
	c := n.client(t, core.SecretKey{}, h3)
	resp, body := do(t, c, "GET", n.base+"/metrics", tokenAdmin, "")
	require.Equal(t, 200, resp.StatusCode, body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	return fams
}

// value returns the value of the sample of family name whose labels
// include want (name=value pairs), or -1.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestMetrics(t *testing.T) {
	n := startNode(t, nil)
	c := n.client(t, core.SecretKey{}, false)
	resp, body := do(t, c, "GET", n.base+"/metrics", "", "")
	assert.Equal(t, 401, resp.StatusCode, body)
	resp, body = do(t, c, "GET", n.base+"/metrics", tokenUser, "")
	assert.Equal(t, 403, resp.StatusCode, body)
	assert.Contains(t, body, "missing scope metrics")

	resp, body = do(t, c, "POST", n.base+"/v1/call/test/echo", tokenUser, `{"msg":"m"}`)
	require.Equal(t, 200, resp.StatusCode, body)
	resp, _ = do(t, c, "POST", n.base+"/v1/call/test/slow", tokenUser, ``)
	require.Equal(t, 504, resp.StatusCode)
	c.CloseIdleConnections() // its bytes are counted when it ends

	// A TLS handshake that offers no ALPN the node serves is refused.
	conf, err := core.ClientTLSConfig(core.SecretKey{}, n.ep.NodeID(), "bogus")
	require.NoError(t, err)
	if tc, err := tls.Dial("tcp", n.ep.TCPAddr().String(), conf); err == nil {
		_ = tc.Close()
	}
	n.metrics.PeersReloaded(3 * time.Millisecond)

	fams := scrape(t, n, true)
	assert.GreaterOrEqual(t, value(fams, "alknet_connections_accepted_total", "alpn", "h2"), 1.0)
	assert.GreaterOrEqual(t, value(fams, "alknet_connections_accepted_total", "alpn", "h3"), 1.0)
	assert.GreaterOrEqual(t, value(fams, "alknet_handshake_seconds", "alpn", "h3"), 1.0)
	assert.GreaterOrEqual(t, value(fams, "alknet_streams_active", "alpn", "h3"), 1.0, "this scrape is an h3 request in progress")
	assert.Equal(t, 1.0, value(fams, "alknet_calls_total", "op", "test/echo", "code", "OK"))
	assert.Equal(t, 1.0, value(fams, "alknet_calls_total", "op", "test/slow", "code", "TIMEOUT"))
	assert.Equal(t, 2.0, value(fams, "alknet_call_seconds", "op", "test/echo")+value(fams, "alknet_call_seconds", "op", "test/slow"))
	assert.Equal(t, 1.0, value(fams, "alknet_peer_reloads_total"))
	assert.Equal(t, 1.0, value(fams, "alknet_peer_reload_seconds"))
	assert.Contains(t, fams, "go_goroutines")

	// The refused handshake and the closed h2 connection are counted by
	// goroutines of their own: poll until they show.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		fams = scrape(t, n, true)
		refused := value(fams, "alknet_connections_refused_total", "alpn", "none", "reason", "handshake")
		sent := value(fams, "alknet_sent_bytes_total", "alpn", "h2")
		if refused >= 1 && sent > 0 {
			assert.Greater(t, value(fams, "alknet_received_bytes_total", "alpn", "h2"), 0.0)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("refusal (%v) or h2 bytes (%v) never counted", refused, sent)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
