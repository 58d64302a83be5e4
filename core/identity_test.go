package core

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAccessControlCheck(t *testing.T) {
	alice := &Identity{
		ID:        "alice",
		Scopes:    []string{"ssh", "sftp", "git"},
		Resources: map[string][]string{"git:repo/alpha": {"read", "write"}, "git:repo/beta": {"read"}},
	}
	for _, tc := range []struct {
		name string
		acl  AccessControl
		id   *Identity
		want string // "" = allowed, else the reason
	}{
		{"empty allows anonymous", AccessControl{}, nil, ""},
		{"empty allows known", AccessControl{}, alice, ""},
		{"scope needs authentication", AccessControl{RequiredScopes: []string{"ssh"}}, nil, "authentication required"},
		{"any-scope needs authentication", AccessControl{AnyScopes: []string{"ssh"}}, nil, "authentication required"},
		{"resource needs authentication", AccessControl{ResourceType: "git:repo/alpha"}, nil, "authentication required"},
		{"required scope held", AccessControl{RequiredScopes: []string{"ssh"}}, alice, ""},
		{"all required scopes held", AccessControl{RequiredScopes: []string{"ssh", "sftp"}}, alice, ""},
		{"one required scope missing", AccessControl{RequiredScopes: []string{"ssh", "admin"}}, alice, "missing scope admin"},
		{"two required scopes missing", AccessControl{RequiredScopes: []string{"admin", "mix"}}, alice, "missing scopes admin, mix"},
		{"any scope: one held", AccessControl{AnyScopes: []string{"admin", "git"}}, alice, ""},
		{"any scope: none held", AccessControl{AnyScopes: []string{"admin", "mix"}}, alice, "needs one of the scopes admin, mix"},
		{"required and any", AccessControl{RequiredScopes: []string{"ssh"}, AnyScopes: []string{"admin"}}, alice, "needs one of the scopes admin"},
		{"resource type present", AccessControl{ResourceType: "git:repo/beta"}, alice, ""},
		{"resource type absent", AccessControl{ResourceType: "git:repo/gamma"}, alice, "no access to git:repo/gamma"},
		{"resource action held", AccessControl{ResourceType: "git:repo/alpha", ResourceAction: "write"}, alice, ""},
		{"resource action missing", AccessControl{ResourceType: "git:repo/beta", ResourceAction: "write"}, alice, "missing action write on git:repo/beta"},
		{"scope checked before resource", AccessControl{RequiredScopes: []string{"admin"}, ResourceType: "git:repo/alpha"}, alice, "missing scope admin"},
		{"identity with no scopes", AccessControl{RequiredScopes: []string{"ssh"}}, &Identity{ID: "bob"}, "missing scope ssh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.acl.Check(tc.id)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrForbidden))
			assert.Equal(t, tc.want, err.Error())
		})
	}
}

func TestPeerIndex(t *testing.T) {
	a, b := seqID(), NodeID{0xff}
	token := []byte("alk_secret-token-value")
	ix := NewPeerIndex([]PeerEntry{
		{PeerID: "alice", Fingerprints: []string{strings.ToUpper(a.Fingerprint()[:8]) + a.Fingerprint()[8:]}, Scopes: []string{"ssh"}, TokenHash: HashToken(token), Enabled: true},
		{PeerID: "bob", Fingerprints: []string{b.Fingerprint()}, Scopes: []string{"ssh"}, Enabled: false},
	})
	id, ok := ix.IdentityByFingerprint(a.Fingerprint())
	require.True(t, ok)
	assert.Equal(t, "alice", id.ID)
	_, ok = ix.IdentityByFingerprint(b.Fingerprint())
	assert.False(t, ok, "disabled entry resolves to nothing")
	id, ok = ix.IdentityByToken(token)
	require.True(t, ok)
	assert.Equal(t, "alice", id.ID)
	_, ok = ix.IdentityByToken([]byte("alk_secret-token-valuX"))
	assert.False(t, ok)
	_, ok = ix.IdentityByToken(nil)
	assert.False(t, ok)
}

func TestIdentityEqual(t *testing.T) {
	base := func() *Identity {
		return &Identity{ID: "a", Scopes: []string{"git"}, Resources: map[string][]string{
			"git:repo/alpha": {"read", "write"}, "git:repo/beta": {"read"},
		}}
	}
	assert.True(t, base().Equal(base()))
	assert.True(t, (*Identity)(nil).Equal(nil))
	assert.False(t, base().Equal(nil))
	assert.False(t, (*Identity)(nil).Equal(base()))
	for name, change := range map[string]func(*Identity){
		"id":                 func(i *Identity) { i.ID = "b" },
		"scope removed":      func(i *Identity) { i.Scopes = nil },
		"one action revoked": func(i *Identity) { i.Resources["git:repo/alpha"] = []string{"read"} },
		"action swapped":     func(i *Identity) { i.Resources["git:repo/beta"] = []string{"write"} },
		"resource renamed": func(i *Identity) {
			delete(i.Resources, "git:repo/beta")
			i.Resources["git:repo/gamma"] = []string{"read"}
		},
		"resource removed": func(i *Identity) { delete(i.Resources, "git:repo/beta") },
		"resource added":   func(i *Identity) { i.Resources["git:repo/delta"] = nil },
	} {
		t.Run(name, func(t *testing.T) {
			o := base()
			change(o)
			assert.False(t, base().Equal(o))
			assert.False(t, o.Equal(base()))
		})
	}
}

func TestIdentityAllowsWildcards(t *testing.T) {
	team := &Identity{ID: "team", Resources: map[string][]string{
		"git:repo/team/*":   {"read"},
		"git:repo/alpha":    {"read", "write"},
		"fs:bucket/x":       {"*"},
		"git:repo/bad*":     {"read"}, // not a namespace: "*" must follow "/"
		"git:repo/exact/*x": {"read"},
	}}
	owner := &Identity{ID: "owner", Resources: map[string][]string{"*": {"*"}}}
	for _, c := range []struct {
		id     *Identity
		typ    string
		action string
		want   bool
	}{
		{team, "git:repo/team/a.git", "read", true},
		{team, "git:repo/team/x/b.git", "read", true},
		{team, "git:repo/team/a.git", "write", false},
		{team, "git:repo/team", "read", false},
		{team, "git:repo/team/", "read", false},
		{team, "git:repo/teamx/a.git", "read", false},
		{team, "git:repo/alpha", "write", true},
		{team, "git:repo/alpha", "create", false},
		{team, "git:repo/alpha/sub", "read", false},
		{team, "fs:bucket/x", "delete", true},
		{team, "git:repo/badge", "read", false},
		{team, "git:repo/exact/ax", "read", false},
		{team, "git:repo/team/a.git", "", true},
		{team, "git:repo/other", "", false},
		{owner, "git:repo/anything.git", "create", true},
		{owner, "whatever", "", true},
		{nil, "git:repo/alpha", "read", false},
	} {
		assert.Equal(t, c.want, c.id.Allows(c.typ, c.action), "%v %s %s", c.id, c.typ, c.action)
	}
	acl := AccessControl{ResourceType: "git:repo/team/a.git", ResourceAction: "read"}
	assert.NoError(t, acl.Check(team))
	assert.NoError(t, acl.Check(owner))
	err := AccessControl{ResourceType: "git:repo/zeta", ResourceAction: "read"}.Check(team)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no access to git:repo/zeta")
}
