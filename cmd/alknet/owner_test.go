package main

import (
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/alkdev/alknet/core/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The owner resolves to every known scope on the node's key only, takes
// precedence over a peer entry naming the same key, passes every gate the
// binary registers, and is gone when switched off.
func TestNodePeersOwner(t *testing.T) {
	t.Parallel()
	key, other := coretest.Key(t), coretest.Key(t)
	dir := t.TempDir()
	withStore(t, dir, func(ps *store.PeerStore) {
		require.NoError(t, ps.PutPeer(t.Context(), core.PeerEntry{
			PeerID: "laptop", Fingerprints: []string{other.NodeID().Fingerprint()}, Scopes: []string{"call"}, Enabled: true,
		}))
		tok, err := ps.MintToken(t.Context(), "laptop")
		require.NoError(t, err)

		np := newNodePeers(ps, key, true)
		assert.True(t, np.Owner())
		id, ok := np.IdentityByFingerprint(key.NodeID().Fingerprint())
		require.True(t, ok)
		assert.Equal(t, ownerPeerID, id.ID)
		assert.Equal(t, knownScopes, id.Scopes)
		assert.Equal(t, map[string][]string{"*": {"*"}}, id.Resources)
		for _, acl := range []core.AccessControl{
			{RequiredScopes: []string{"call"}}, {RequiredScopes: []string{"admin"}},
			{RequiredScopes: []string{"sftp", "sftp:write"}}, {RequiredScopes: []string{"ssh", "ssh:shell", "ssh:exec", "ssh:forward", "ssh:listen", "ssh:sftp"}},
		} {
			assert.NoError(t, acl.Check(id), "%+v", acl)
		}
		// Each call gets its own copy: a handler cannot widen the next one.
		id.Scopes[0] = "x"
		again, _ := np.IdentityByFingerprint(key.NodeID().Fingerprint())
		assert.Equal(t, knownScopes, again.Scopes)

		// Other keys and tokens still come from the peer table.
		l, ok := np.IdentityByFingerprint(other.NodeID().Fingerprint())
		require.True(t, ok)
		assert.Equal(t, "laptop", l.ID)
		l, ok = np.IdentityByToken([]byte(tok))
		require.True(t, ok)
		assert.Equal(t, "laptop", l.ID)

		off := newNodePeers(ps, key, false)
		assert.False(t, off.Owner())
		_, ok = off.IdentityByFingerprint(key.NodeID().Fingerprint())
		assert.False(t, ok, "switched off, the node's key is unknown like any other")
	})
}

func TestOwnerConfig(t *testing.T) {
	t.Parallel()
	no, yes := false, true
	assert.True(t, ownerConfig{}.enabled(), "on by default")
	assert.True(t, ownerConfig{Enabled: &yes}.enabled())
	assert.False(t, ownerConfig{Enabled: &no}.enabled())
}
