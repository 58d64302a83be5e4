package store

import (
	"time"

	"github.com/alkdev/alknet/core"
)

type metricsBox struct{ m core.Metrics }

// SetMetrics makes the store report each reload that changed the peer
// table, with how long reading and rebuilding it took, to m
// (Metrics.PeersReloaded); nil stops reporting.
func (s *PeerStore) SetMetrics(m core.Metrics) {
	if m == nil {
		s.metrics.Store(nil)
		return
	}
	s.metrics.Store(&metricsBox{m: m})
}

func (s *PeerStore) reloaded(d time.Duration) {
	if b := s.metrics.Load(); b != nil {
		b.m.PeersReloaded(d)
	}
}
