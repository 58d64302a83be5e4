package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A node whose identity lives in a vault: serve unlocks it, a client reaches
// it by the derived node id, and a restore elsewhere derives the same id.
func TestServeWithVault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "node")
	pf := writeSecret(t, dir, "pass", "correct horse battery staple", 0o600)
	mf := writeSecret(t, dir, "mnemonic", vaultTestMnemonic, 0o600)

	r := runCLI(t, nil, "--data", data, "vault", "restore", "--mnemonic-file", mf, "--passphrase-file", pf)
	require.Equal(t, 0, r.code, r.stderr)
	r = runCLI(t, nil, "--data", data, "vault", "id", "--passphrase-file", pf)
	require.Equal(t, 0, r.code, r.stderr)
	vaultID := strings.TrimSpace(r.stdout)

	// The same id straight from the mnemonic, without any vault.
	r = runCLI(t, nil, "--data", filepath.Join(dir, "x"), "vault", "derive", "m/74'/0'/0'/0'", "--mnemonic-file", mf, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"node_id":"`+vaultID+`"`)

	// serve refuses a wrong passphrase and changes nothing.
	wrong := writeSecret(t, dir, "wrong", "not it", 0o600)
	r = runCLI(t, nil, "--data", data, "--passphrase-file", wrong, "serve", "--listen", "127.0.0.1:0")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "wrong passphrase")
	assert.NoFileExists(t, filepath.Join(data, "identity.key"))

	n := startNode(t, data, "", "--passphrase-file", pf)
	a, err := core.ParseAddr(n.Addr)
	require.NoError(t, err)
	assert.Equal(t, vaultID, a.ID.String(), "serve uses the vault's node key")
	assert.NoFileExists(t, filepath.Join(data, "identity.key"), "no second identity next to the vault")

	r = runCLI(t, nil, "--data", filepath.Join(dir, "client"), "ping", "-c", "1", n.Addr)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "connected to "+vaultID)

	// Restore elsewhere: same id.
	other := filepath.Join(dir, "other")
	r = runCLI(t, nil, "--data", other, "vault", "restore", "--mnemonic-file", mf, "--passphrase-file", pf)
	require.Equal(t, 0, r.code, r.stderr)
	r = runCLI(t, nil, "--data", other, "--passphrase-file", pf, "id")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, vaultID+"\n", r.stdout)
}
