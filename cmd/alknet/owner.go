package main

import (
	"slices"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
)

// ownerPeerID is the peer id the node's own key resolves to. `peer add` and
// config.toml refuse it as a peer name.
const ownerPeerID = "owner"

// ownerResources is the resource grant of the owner: every action on every
// resource type, written as the wildcard "*".
var ownerResources = map[string][]string{"*": {"*"}}

// ownerConfig is the [owner] section of config.toml.
type ownerConfig struct {
	// Enabled makes the node's own key an implicit peer with every scope.
	// Unset means true.
	Enabled *bool `toml:"enabled"`
}

// enabled reports whether the owner peer is on (the default).
func (c ownerConfig) enabled() bool { return c.Enabled == nil || *c.Enabled }

// ownerIdentity is the identity of the node's own key.
func ownerIdentity() *core.Identity {
	res := make(map[string][]string, len(ownerResources))
	for k, v := range ownerResources {
		res[k] = slices.Clone(v)
	}
	return &core.Identity{ID: ownerPeerID, Scopes: slices.Clone(knownScopes), Resources: res}
}

// nodePeers is the live peer table that `serve` authorizes with on every
// layer (QUIC, SSH keys, bearer tokens): the database and config peers of
// the embedded PeerStore, plus, unless switched off, the node's own key as
// the implicit peer "owner" with every scope. The owner takes precedence
// over a peer entry that names the same key.
type nodePeers struct {
	*store.PeerStore
	ownerFP string // empty when the owner peer is off
}

// newNodePeers wraps ps; with owner set, key's fingerprint resolves to the
// owner identity.
func newNodePeers(ps *store.PeerStore, key core.SecretKey, owner bool) *nodePeers {
	np := &nodePeers{PeerStore: ps}
	if owner {
		np.ownerFP = key.NodeID().Fingerprint()
	}
	return np
}

// IdentityByFingerprint resolves the owner's key, then the peer table.
func (p *nodePeers) IdentityByFingerprint(fp string) (*core.Identity, bool) {
	if p.ownerFP != "" && fp == p.ownerFP {
		return ownerIdentity(), true
	}
	return p.PeerStore.IdentityByFingerprint(fp)
}

// Owner reports whether the owner peer is on.
func (p *nodePeers) Owner() bool { return p.ownerFP != "" }

var _ core.IdentityProvider = (*nodePeers)(nil)
