package alkhttp

import (
	"net/http"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is a core.Metrics that exports the counters of an endpoint, its
// handlers and its peer table to Prometheus. Give it to
// core.Endpoint.SetMetrics, call.Registry.SetMetrics,
// store.PeerStore.SetMetrics and Options.Metrics, and serve Handler
// (behind Require with the metrics scope, as the alknet binary does).
type Metrics struct {
	reg *prometheus.Registry

	accepted   *prometheus.CounterVec
	refused    *prometheus.CounterVec
	active     *prometheus.GaugeVec
	handshake  *prometheus.HistogramVec
	streams    *prometheus.GaugeVec
	sent       *prometheus.CounterVec
	received   *prometheus.CounterVec
	calls      *prometheus.CounterVec
	callTime   *prometheus.HistogramVec
	reloads    prometheus.Counter
	reloadTime prometheus.Histogram
}

// NewMetrics returns a Metrics with its own Prometheus registry, which also
// holds the Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alknet_connections_accepted_total", Help: "Connections that passed admission, by ALPN.",
		}, []string{"alpn"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alknet_connections_refused_total", Help: "Connections refused before their handler ran, by ALPN and reason.",
		}, []string{"alpn", "reason"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "alknet_connections_active", Help: "Accepted connections still open, by ALPN.",
		}, []string{"alpn"}),
		handshake: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "alknet_handshake_seconds", Help: "TLS handshake time of accepted connections, by ALPN.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"alpn"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "alknet_streams_active", Help: "Open streams of accepted connections (HTTP/3: requests in progress), by ALPN.",
		}, []string{"alpn"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alknet_sent_bytes_total", Help: "Bytes sent on accepted connections, by ALPN, counted when a connection ends.",
		}, []string{"alpn"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alknet_received_bytes_total", Help: "Bytes received on accepted connections, by ALPN, counted when a connection ends.",
		}, []string{"alpn"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alknet_calls_total", Help: "Runs of call operations, by operation and outcome code.",
		}, []string{"op", "code"}),
		callTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "alknet_call_seconds", Help: "Run time of call operations, by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "alknet_peer_reloads_total", Help: "Rebuilds of the peer table after a change.",
		}),
		reloadTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "alknet_peer_reload_seconds", Help: "Time to read and rebuild the peer table.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
	}
	m.reg.MustRegister(m.accepted, m.refused, m.active, m.handshake, m.streams, m.sent, m.received,
		m.calls, m.callTime, m.reloads, m.reloadTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the Prometheus registry, for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// alpnLabel names a connection that chose no ALPN.
func alpnLabel(a string) string {
	if a == "" {
		return "none"
	}
	return a
}

func (m *Metrics) ConnAccepted(alpn string, handshake time.Duration) {
	alpn = alpnLabel(alpn)
	m.accepted.WithLabelValues(alpn).Inc()
	m.active.WithLabelValues(alpn).Inc()
	m.handshake.WithLabelValues(alpn).Observe(handshake.Seconds())
}

func (m *Metrics) ConnRefused(alpn, reason string) {
	m.refused.WithLabelValues(alpnLabel(alpn), reason).Inc()
}

func (m *Metrics) ConnClosed(alpn string, sent, received uint64) {
	alpn = alpnLabel(alpn)
	m.active.WithLabelValues(alpn).Dec()
	m.sent.WithLabelValues(alpn).Add(float64(sent))
	m.received.WithLabelValues(alpn).Add(float64(received))
}

func (m *Metrics) StreamOpened(alpn string) { m.streams.WithLabelValues(alpnLabel(alpn)).Inc() }
func (m *Metrics) StreamClosed(alpn string) { m.streams.WithLabelValues(alpnLabel(alpn)).Dec() }

func (m *Metrics) Operation(op, code string, dur time.Duration) {
	m.calls.WithLabelValues(op, code).Inc()
	m.callTime.WithLabelValues(op).Observe(dur.Seconds())
}

func (m *Metrics) PeersReloaded(dur time.Duration) {
	m.reloads.Inc()
	m.reloadTime.Observe(dur.Seconds())
}

var _ core.Metrics = (*Metrics)(nil)
