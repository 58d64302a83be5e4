package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type reloadMetrics struct {
	core.NopMetrics
	mu   sync.Mutex
	durs []time.Duration
}

func (m *reloadMetrics) PeersReloaded(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.durs = append(m.durs, d)
}

// Each reload that changes the peer table is reported with its duration.
func TestPeerStoreMetrics(t *testing.T) {
	_, ps, _ := psTemp(t)
	m := &reloadMetrics{}
	ps.SetMetrics(m)
	require.NoError(t, ps.PutPeer(psCtx(t), psEntry(t, "a", "ssh")))
	require.NoError(t, ps.PutPeer(psCtx(t), psEntry(t, "b", "ssh")))
	require.NoError(t, ps.Reload(psCtx(t))) // nothing changed: not a reload
	m.mu.Lock()
	defer m.mu.Unlock()
	require.Len(t, m.durs, 2)
	for _, d := range m.durs {
		assert.Greater(t, d, time.Duration(0))
	}
}
