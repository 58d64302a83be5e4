package core

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"strings"
)

// Identity is what a node knows about an authenticated peer.
type Identity struct {
	ID        string              // stable peer id chosen by the operator; never the fingerprint
	Scopes    []string            // e.g. "ssh", "sftp:write", "git:push"
	Resources map[string][]string // resource type -> allowed actions, e.g. {"git:repo/alpha": {"read","write"}}
}

// HasScope reports whether the identity holds scope s.
func (id *Identity) HasScope(s string) bool {
	return id != nil && slices.Contains(id.Scopes, s)
}

// Allows reports whether the identity may perform action on resource type
// typ. An empty action asks only that the resource type be covered.
//
// A resource name ending in "/*" covers every name below that prefix
// ("git:repo/team/*" covers "git:repo/team/a.git" and "git:repo/team/x/b.git",
// not "git:repo/team" itself); the name "*" covers every resource, and the
// action "*" every action. The node's owner holds {"*": ["*"]}.
func (id *Identity) Allows(typ, action string) bool {
	if id == nil {
		return false
	}
	if actions, ok := id.Resources[typ]; ok && actionAllowed(actions, action) {
		return true
	}
	for name, actions := range id.Resources {
		if coversResource(name, typ) && actionAllowed(actions, action) {
			return true
		}
	}
	return false
}

// coversResource reports whether the wildcard resource name covers typ.
func coversResource(name, typ string) bool {
	if name == "*" {
		return true
	}
	prefix, ok := strings.CutSuffix(name, "*")
	return ok && strings.HasSuffix(prefix, "/") && len(typ) > len(prefix) && strings.HasPrefix(typ, prefix)
}

func actionAllowed(actions []string, action string) bool {
	return action == "" || slices.Contains(actions, action) || slices.Contains(actions, "*")
}

// Equal reports whether two identities are the same peer with the same
// access (nil equals only nil).
func (id *Identity) Equal(o *Identity) bool {
	if id == nil || o == nil {
		return id == o
	}
	if id.ID != o.ID || !slices.Equal(id.Scopes, o.Scopes) || len(id.Resources) != len(o.Resources) {
		return false
	}
	for k, v := range id.Resources {
		w, ok := o.Resources[k]
		if !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

// IdentityProvider resolves peers. Implementations must not block: they
// serve from memory.
type IdentityProvider interface {
	IdentityByFingerprint(fp string) (*Identity, bool)
	IdentityByToken(token []byte) (*Identity, bool) // bearer tokens, stored as SHA-256 only
}

// DisabledChecker is an optional capability of an IdentityProvider: it
// tells the key of a disabled peer from a key the node never knew, so that
// a refused connection hears "access revoked" rather than "authentication
// required". PeerIndex and the store implement it.
type DisabledChecker interface {
	IsDisabled(fp string) bool
}

// PeerEntry is the stored form of a peer.
type PeerEntry struct {
	PeerID       string              `json:"peer_id"`
	Fingerprints []string            `json:"fingerprints"`         // "ed25519:<hex>"
	TokenHash    string              `json:"token_hash,omitempty"` // hex SHA-256 of the bearer token; empty = none
	Scopes       []string            `json:"scopes"`
	Resources    map[string][]string `json:"resources,omitempty"`
	DisplayName  string              `json:"display_name,omitempty"`
	Enabled      bool                `json:"enabled"`
}

// Identity returns the identity the entry grants.
func (p PeerEntry) Identity() *Identity {
	res := make(map[string][]string, len(p.Resources))
	for k, v := range p.Resources {
		res[k] = slices.Clone(v)
	}
	return &Identity{ID: p.PeerID, Scopes: slices.Clone(p.Scopes), Resources: res}
}

// HashToken returns the hex SHA-256 of a bearer token, the only form in
// which tokens are stored.
func HashToken(token []byte) string {
	sum := sha256.Sum256(token)
	return hex.EncodeToString(sum[:])
}

// PeerIndex is an immutable in-memory index of peers: fingerprint ->
// identity and token hash -> identity. Disabled entries are left out. It is
// the building block of every IdentityProvider; build a new one and swap it
// atomically to reload.
type PeerIndex struct {
	byFP     map[string]*Identity
	byToken  map[string]tokenEntry
	disabled map[string]struct{} // fingerprints of disabled entries
}

type tokenEntry struct {
	hash []byte
	id   *Identity
}

// NewPeerIndex builds an index from entries. Fingerprints are normalized to
// lowercase; an unparsable fingerprint is skipped.
func NewPeerIndex(entries []PeerEntry) *PeerIndex {
	ix := &PeerIndex{byFP: make(map[string]*Identity), byToken: make(map[string]tokenEntry), disabled: make(map[string]struct{})}
	for _, e := range entries {
		if !e.Enabled {
			for _, fp := range e.Fingerprints {
				if n, err := ParseFingerprint(strings.ToLower(fp)); err == nil {
					ix.disabled[n.Fingerprint()] = struct{}{}
				}
			}
			continue
		}
		id := e.Identity()
		for _, fp := range e.Fingerprints {
			n, err := ParseFingerprint(strings.ToLower(fp))
			if err != nil {
				continue
			}
			ix.byFP[n.Fingerprint()] = id
		}
		if e.TokenHash != "" {
			h, err := hex.DecodeString(e.TokenHash)
			if err == nil && len(h) == sha256.Size {
				ix.byToken[strings.ToLower(e.TokenHash)] = tokenEntry{hash: h, id: id}
			}
		}
	}
	return ix
}

// Len returns the number of fingerprints indexed.
func (ix *PeerIndex) Len() int { return len(ix.byFP) }

// IdentityByFingerprint implements IdentityProvider.
func (ix *PeerIndex) IdentityByFingerprint(fp string) (*Identity, bool) {
	if ix == nil {
		return nil, false
	}
	id, ok := ix.byFP[fp]
	return id, ok
}

// IsDisabled implements DisabledChecker: fp belongs to a disabled entry
// (and to no enabled one).
func (ix *PeerIndex) IsDisabled(fp string) bool {
	if ix == nil {
		return false
	}
	_, off := ix.disabled[fp]
	_, on := ix.byFP[fp]
	return off && !on
}

// IdentityByToken implements IdentityProvider. The stored hash is compared
// in constant time.
func (ix *PeerIndex) IdentityByToken(token []byte) (*Identity, bool) {
	if ix == nil || len(token) == 0 {
		return nil, false
	}
	sum := sha256.Sum256(token)
	e, ok := ix.byToken[hex.EncodeToString(sum[:])]
	if !ok || subtle.ConstantTimeCompare(e.hash, sum[:]) != 1 {
		return nil, false
	}
	return e.id, true
}

// StaticPeers returns an IdentityProvider over a fixed list of peers.
func StaticPeers(entries []PeerEntry) IdentityProvider { return NewPeerIndex(entries) }

// AccessControl is the coarse gate of an ALPN or an operation.
type AccessControl struct {
	RequiredScopes []string // all of them
	AnyScopes      []string // at least one, when set
	ResourceType   string   // must appear in Identity.Resources, when set
	ResourceAction string   // and list this action, when set
}

// IsOpen reports whether the control allows anyone, anonymous included.
func (a AccessControl) IsOpen() bool {
	return len(a.RequiredScopes) == 0 && len(a.AnyScopes) == 0 && a.ResourceType == "" && a.ResourceAction == ""
}

// Check returns nil when id is allowed. Errors are *AccessError (which
// errors.Is ErrForbidden) and say what was missing. An empty control allows
// anyone; any restriction with a nil identity fails with
// "authentication required".
func (a AccessControl) Check(id *Identity) error {
	if a.IsOpen() {
		return nil
	}
	if id == nil {
		return forbidden("authentication required")
	}
	var missing []string
	for _, s := range a.RequiredScopes {
		if !id.HasScope(s) {
			missing = append(missing, s)
		}
	}
	if len(missing) == 1 {
		return forbidden("missing scope %s", missing[0])
	}
	if len(missing) > 1 {
		return forbidden("missing scopes %s", strings.Join(missing, ", "))
	}
	if len(a.AnyScopes) > 0 && !slices.ContainsFunc(a.AnyScopes, id.HasScope) {
		return forbidden("needs one of the scopes %s", strings.Join(a.AnyScopes, ", "))
	}
	if a.ResourceType != "" {
		if !id.Allows(a.ResourceType, "") {
			return forbidden("no access to %s", a.ResourceType)
		}
		if a.ResourceAction != "" && !id.Allows(a.ResourceType, a.ResourceAction) {
			return forbidden("missing action %s on %s", a.ResourceAction, a.ResourceType)
		}
	}
	return nil
}
