package ssh_test

import (
	"context"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	alkssh "github.com/alkdev/alknet/ssh"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"
)

// The SSH key can differ from the QUIC key; revoking the SSH key's peer
// must still close the open SSH connection.
func TestReauthorizeClosesRevokedSSHKey(t *testing.T) {
	gate, user := coretest.Key(t), coretest.Key(t)
	gateEntry := core.PeerEntry{PeerID: "gate", Fingerprints: []string{gate.NodeID().Fingerprint()}, Scopes: []string{"ssh"}, Enabled: true}
	userEntry := core.PeerEntry{PeerID: "user", Fingerprints: []string{user.NodeID().Fingerprint()}, Scopes: []string{"ssh", "ssh:exec"}, Enabled: true}
	peers := coretest.NewPeers(gateEntry, userEntry)
	hostKey := coretest.Key(t)
	h, err := alkssh.New(alkssh.Config{HostKey: hostKey, Identities: peers})
	require.NoError(t, err)
	srv := coretest.StartEndpoint(t, core.Config{SecretKey: hostKey, Identities: peers},
		coretest.Route{Handler: h, ACL: core.AccessControl{RequiredScopes: []string{"ssh"}}})

	login := func() (*gossh.Client, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		conn, err := coretest.ClientEndpoint(t, gate).Dial(ctx, srv.Addr(), alkssh.ALPN)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(core.CodeOK, "") })
		return alkssh.NewClient(ctx, conn, user, "tester")
	}
	c, err := login()
	require.NoError(t, err)
	out, _, err := run(t, c, "echo hi", nil)
	require.NoError(t, err)
	assert.Equal(t, "hi\n", out)

	assert.Equal(t, 0, h.Reauthorize(), "nothing changed")
	peers.Set(gateEntry) // the SSH key's peer is removed
	assert.Equal(t, 0, srv.Reauthorize(), "the QUIC key still passes its gate")
	assert.Equal(t, 1, h.Reauthorize())
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("revoked SSH connection still open")
	}
	_, err = login()
	assert.Error(t, err, "the removed key cannot log in again")
}

// A revocation that lands after the SSH key has been resolved at login but
// before the connection is tracked must still close it: Reauthorize cannot
// see the connection yet, so the login has to notice by itself.
func TestRevocationDuringLogin(t *testing.T) {
	key := coretest.Key(t)
	entry := core.PeerEntry{PeerID: "user", Fingerprints: []string{key.NodeID().Fingerprint()}, Scopes: []string{"ssh", "ssh:exec"}, Enabled: true}
	other := core.PeerEntry{PeerID: "other", Fingerprints: []string{coretest.Key(t).NodeID().Fingerprint()}, Scopes: []string{"ssh"}, Enabled: true}
	peers := coretest.NewPeers(entry, other)
	hostKey := coretest.Key(t)
	h, err := alkssh.New(alkssh.Config{HostKey: hostKey, Identities: peers})
	require.NoError(t, err)
	revoked := make(chan int, 1)
	alkssh.SetBeforeTrack(h, func() {
		peers.Set(other) // the key's peer is removed
		revoked <- h.Reauthorize()
	})
	// The QUIC layer authenticates with a key that stays admitted, so only
	// the SSH layer can close this connection.
	gate := coretest.Key(t)
	gateEntry := core.PeerEntry{PeerID: "gate", Fingerprints: []string{gate.NodeID().Fingerprint()}, Scopes: []string{"ssh"}, Enabled: true}
	quicPeers := core.StaticPeers([]core.PeerEntry{gateEntry})
	srv := coretest.StartEndpoint(t, core.Config{SecretKey: hostKey, Identities: quicPeers},
		coretest.Route{Handler: h, ACL: core.AccessControl{RequiredScopes: []string{"ssh"}}})

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := coretest.ClientEndpoint(t, gate).Dial(ctx, srv.Addr(), alkssh.ALPN)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(core.CodeOK, "") })
	c, err := alkssh.NewClient(ctx, conn, key, "tester")
	require.NoError(t, err, "authentication itself succeeds: the revocation comes after")
	defer c.Close()
	select {
	case n := <-revoked:
		assert.Equal(t, 0, n, "Reauthorize cannot see the connection yet")
	case <-time.After(10 * time.Second):
		t.Fatal("login never reached the tracking step")
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection authenticated during the revocation is still open")
	}
	_, err = c.NewSession()
	assert.Error(t, err, "no session on the closed connection")
}

// Every change of the SSH key's access closes its connections, a single
// resource action included; an unrelated reload closes nothing.
func TestReauthorizeChanges(t *testing.T) {
	key := coretest.Key(t)
	fp := key.NodeID().Fingerprint()
	base := func() core.PeerEntry {
		return core.PeerEntry{PeerID: "user", Fingerprints: []string{fp}, Scopes: []string{"ssh", "ssh:exec"},
			Resources: map[string][]string{"git:repo/a": {"read", "write"}, "git:repo/b": {"read"}}, Enabled: true}
	}
	for _, tc := range []struct {
		name   string
		change func(e *core.PeerEntry)
		closed int
	}{
		{"nothing", func(*core.PeerEntry) {}, 0},
		{"one resource action revoked", func(e *core.PeerEntry) { e.Resources["git:repo/a"] = []string{"read"} }, 1},
		{"one resource removed", func(e *core.PeerEntry) { delete(e.Resources, "git:repo/b") }, 1},
		{"a scope removed", func(e *core.PeerEntry) { e.Scopes = []string{"ssh"} }, 1},
		{"disabled", func(e *core.PeerEntry) { e.Enabled = false }, 1},
		{"renamed", func(e *core.PeerEntry) { e.PeerID = "someone-else" }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peers := coretest.NewPeers(base())
			hostKey := coretest.Key(t)
			h, err := alkssh.New(alkssh.Config{HostKey: hostKey, Identities: peers})
			require.NoError(t, err)
			srv := coretest.StartEndpoint(t, core.Config{SecretKey: hostKey, Identities: peers},
				coretest.Route{Handler: h, ACL: core.AccessControl{RequiredScopes: []string{"ssh"}}})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			conn, err := coretest.ClientEndpoint(t, key).Dial(ctx, srv.Addr(), alkssh.ALPN)
			require.NoError(t, err)
			t.Cleanup(func() { _ = conn.Close(core.CodeOK, "") })
			c, err := alkssh.NewClient(ctx, conn, key, "tester")
			require.NoError(t, err)
			defer c.Close()
			out, _, err := run(t, c, "echo hi", nil)
			require.NoError(t, err)
			require.Equal(t, "hi\n", out, "logged in and tracked")

			e := base()
			tc.change(&e)
			peers.Set(e)
			assert.Equal(t, tc.closed, h.Reauthorize())
		})
	}
}
