package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	require.NoError(t, os.WriteFile(path, []byte(`
[limits]
max_conns = 20000
max_conns_per_peer = 12000
max_anon_conns = -1
anon_lifetime = "90s"
idle_timeout = "2m"
`), 0o600))
	cfg, err := loadConfig(path, true)
	require.NoError(t, err)
	var ep core.Config
	cfg.Limits.apply(&ep)
	assert.Equal(t, 20000, ep.MaxConns)
	assert.Equal(t, 12000, ep.MaxConnsPerPeer)
	assert.Equal(t, -1, ep.MaxAnonConns)
	assert.Equal(t, 90*time.Second, ep.AnonLifetime)
	assert.Equal(t, 2*time.Minute, ep.IdleTimeout)
	assert.Zero(t, ep.MaxAnonConnsPerIP, "unset limits keep core's default")

	require.NoError(t, os.WriteFile(path, []byte("[limits]\nmax_con = 5\n"), 0o600))
	_, err = loadConfig(path, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "max_con", "a misspelt limit is refused, not ignored")
}
