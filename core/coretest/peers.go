package coretest

import (
	"sync/atomic"

	"github.com/alkdev/alknet/core"
)

// Peers is an IdentityProvider whose peer list a test can replace, the way a
// peer store swaps its index on reload.
type Peers struct {
	ix atomic.Pointer[core.PeerIndex]
}

// NewPeers returns a provider serving entries.
func NewPeers(entries ...core.PeerEntry) *Peers {
	p := &Peers{}
	p.Set(entries...)
	return p
}

// Set replaces the peer list.
func (p *Peers) Set(entries ...core.PeerEntry) { p.ix.Store(core.NewPeerIndex(entries)) }

// IdentityByFingerprint implements core.IdentityProvider.
func (p *Peers) IdentityByFingerprint(fp string) (*core.Identity, bool) {
	return p.ix.Load().IdentityByFingerprint(fp)
}

// IdentityByToken implements core.IdentityProvider.
func (p *Peers) IdentityByToken(token []byte) (*core.Identity, bool) {
	return p.ix.Load().IdentityByToken(token)
}

// IsDisabled implements core.DisabledChecker.
func (p *Peers) IsDisabled(fp string) bool { return p.ix.Load().IsDisabled(fp) }

var (
	_ core.IdentityProvider = (*Peers)(nil)
	_ core.DisabledChecker  = (*Peers)(nil)
)
