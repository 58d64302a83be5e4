package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/alkdev/alknet/core/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func psCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// psOpen opens the database at path and a PeerStore over it, both closed
// when the test ends.
func psOpen(t testing.TB, path string, static ...core.PeerEntry) (*store.DB, *store.PeerStore) {
	t.Helper()
	db, err := store.Open(path)
	require.NoError(t, err)
	ps, err := store.NewPeerStore(db, store.PeerStoreConfig{Static: static})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = ps.Close()
		_ = db.Close()
	})
	return db, ps
}

func psTemp(t testing.TB, static ...core.PeerEntry) (*store.DB, *store.PeerStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "alknet.db")
	db, ps := psOpen(t, path, static...)
	return db, ps, path
}

func psFP(t testing.TB) string { return coretest.Key(t).NodeID().Fingerprint() }

func psEntry(t testing.TB, id string, scopes ...string) core.PeerEntry {
	return core.PeerEntry{PeerID: id, Fingerprints: []string{psFP(t)}, Scopes: scopes, Enabled: true}
}

// psState is everything a failed write must leave untouched.
func psState(t testing.TB, db *store.DB, ps *store.PeerStore) string {
	t.Helper()
	ctx := psCtx(t)
	peers, err := ps.ListPeers(ctx)
	require.NoError(t, err)
	var n int64
	require.NoError(t, db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM notifications`).Scan(&n)
	}))
	return fmt.Sprintf("%+v notifications=%d", peers, n)
}

func TestPeerStoreLifecycle(t *testing.T) {
	_, ps, _ := psTemp(t)
	ctx := psCtx(t)
	fp := psFP(t)
	upper := "ed25519:" + strings.ToUpper(strings.TrimPrefix(fp, "ed25519:"))
	require.NoError(t, ps.PutPeer(ctx, core.PeerEntry{
		PeerID: "laptop", Fingerprints: []string{upper, fp}, Scopes: []string{"ssh", "sftp:write", "ssh"},
		Resources: map[string][]string{"git:repo/alpha": {"read", "write", "read"}}, DisplayName: "My laptop", Enabled: true,
	}))

	// The write is visible to lookups as soon as PutPeer returns.
	id, ok := ps.IdentityByFingerprint(fp)
	require.True(t, ok)
	assert.Equal(t, "laptop", id.ID)
	assert.Equal(t, []string{"ssh", "sftp:write"}, id.Scopes)
	assert.True(t, id.Allows("git:repo/alpha", "write"))

	p, err := ps.GetPeer(ctx, "laptop")
	require.NoError(t, err)
	assert.Equal(t, []string{fp}, p.Fingerprints, "fingerprints are canonical and unique")
	assert.Equal(t, []string{"read", "write"}, p.Resources["git:repo/alpha"])
	assert.Equal(t, "My laptop", p.DisplayName)
	assert.False(t, p.Static)
	assert.False(t, p.CreatedAt.IsZero())
	assert.Equal(t, p.CreatedAt, p.UpdatedAt)

	require.NoError(t, ps.UpdatePeer(ctx, "laptop", func(e *core.PeerEntry) error {
		e.Scopes = append(e.Scopes, "git")
		return nil
	}))
	id, _ = ps.IdentityByFingerprint(fp)
	assert.True(t, id.HasScope("git"))
	p2, err := ps.GetPeer(ctx, "laptop")
	require.NoError(t, err)
	assert.Equal(t, p.CreatedAt, p2.CreatedAt, "created_at survives an update")
	assert.False(t, p2.UpdatedAt.Before(p.UpdatedAt))

	require.NoError(t, ps.SetEnabled(ctx, "laptop", false))
	_, ok = ps.IdentityByFingerprint(fp)
	assert.False(t, ok, "a disabled peer resolves to nothing")
	p, err = ps.GetPeer(ctx, "laptop")
	require.NoError(t, err)
	assert.False(t, p.Enabled)
	require.NoError(t, ps.SetEnabled(ctx, "laptop", true))
	_, ok = ps.IdentityByFingerprint(fp)
	assert.True(t, ok)

	require.NoError(t, ps.PutPeer(ctx, psEntry(t, "another")))
	list, err := ps.ListPeers(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "another", list[0].PeerID)
	assert.Equal(t, "laptop", list[1].PeerID)

	require.NoError(t, ps.RemovePeer(ctx, "laptop"))
	_, ok = ps.IdentityByFingerprint(fp)
	assert.False(t, ok)
	_, err = ps.GetPeer(ctx, "laptop")
	require.ErrorIs(t, err, store.ErrPeerNotFound)
	require.ErrorIs(t, ps.RemovePeer(ctx, "laptop"), store.ErrPeerNotFound)

	// The key is free again once its peer is gone.
	require.NoError(t, ps.PutPeer(ctx, core.PeerEntry{PeerID: "laptop2", Fingerprints: []string{fp}, Enabled: true}))
}

func TestPeerStoreRejectsBadInput(t *testing.T) {
	db, ps, _ := psTemp(t)
	ctx := psCtx(t)
	taken := psEntry(t, "taken", "ssh")
	require.NoError(t, ps.PutPeer(ctx, taken))
	before := psState(t, db, ps)

	fp := psFP(t)
	for _, tc := range []struct {
		name  string
		entry core.PeerEntry
		want  error
		msg   string
	}{
		{"duplicate id", core.PeerEntry{PeerID: "taken", Fingerprints: []string{fp}}, store.ErrPeerExists, `"taken"`},
		{"key of another peer", core.PeerEntry{PeerID: "new", Fingerprints: []string{taken.Fingerprints[0]}}, store.ErrFingerprintInUse, `belongs to peer "taken"`},
		{"no key", core.PeerEntry{PeerID: "new"}, store.ErrInvalidPeer, "at least one key"},
		{"malformed fingerprint", core.PeerEntry{PeerID: "new", Fingerprints: []string{"ed25519:zz"}}, core.ErrInvalidFingerprint, "ed25519:zz"},
		{"rsa fingerprint", core.PeerEntry{PeerID: "new", Fingerprints: []string{"SHA256:abc"}}, core.ErrInvalidFingerprint, "SHA256:abc"},
		{"uppercase id", core.PeerEntry{PeerID: "New", Fingerprints: []string{fp}}, store.ErrInvalidPeerID, `"New"`},
		{"empty id", core.PeerEntry{PeerID: "", Fingerprints: []string{fp}}, store.ErrInvalidPeerID, `""`},
		{"id with slash", core.PeerEntry{PeerID: "a/b", Fingerprints: []string{fp}}, store.ErrInvalidPeerID, `"a/b"`},
		{"id too long", core.PeerEntry{PeerID: strings.Repeat("a", 65), Fingerprints: []string{fp}}, store.ErrInvalidPeerID, "1-64"},
		{"uppercase scope", core.PeerEntry{PeerID: "new", Fingerprints: []string{fp}, Scopes: []string{"SSH"}}, store.ErrInvalidScope, `unknown scope syntax "SSH"`},
		{"scope with space", core.PeerEntry{PeerID: "new", Fingerprints: []string{fp}, Scopes: []string{"ssh shell"}}, store.ErrInvalidScope, "unknown scope syntax"},
		{"scope empty qualifier", core.PeerEntry{PeerID: "new", Fingerprints: []string{fp}, Scopes: []string{"ssh:"}}, store.ErrInvalidScope, "unknown scope syntax"},
		{"resource without kind", core.PeerEntry{PeerID: "new", Fingerprints: []string{fp}, Resources: map[string][]string{"alpha": {"read"}}}, store.ErrInvalidResource, `"alpha"`},
		{"resource without action", core.PeerEntry{PeerID: "new", Fingerprints: []string{fp}, Resources: map[string][]string{"git:alpha": nil}}, store.ErrInvalidResource, "no actions"},
		{"resource bad action", core.PeerEntry{PeerID: "new", Fingerprints: []string{fp}, Resources: map[string][]string{"git:alpha": {"Read"}}}, store.ErrInvalidResource, `"Read"`},
		{"display name control", core.PeerEntry{PeerID: "new", Fingerprints: []string{fp}, DisplayName: "a\nb"}, store.ErrInvalidPeer, "control"},
		{"bad token hash", core.PeerEntry{PeerID: "new", Fingerprints: []string{fp}, TokenHash: "abc"}, store.ErrInvalidPeer, "token hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ps.PutPeer(ctx, tc.entry)
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.msg)
			assert.NotContains(t, err.Error(), "\n", "one-line error")
			assert.Equal(t, before, psState(t, db, ps), "nothing changed")
		})
	}

	// A batch is all or nothing: the second entry's error keeps the first out.
	err := ps.PutPeers(ctx, []core.PeerEntry{psEntry(t, "ok1"), {PeerID: "ok2", Fingerprints: []string{taken.Fingerprints[0]}}})
	require.ErrorIs(t, err, store.ErrFingerprintInUse)
	assert.Equal(t, before, psState(t, db, ps))

	// Updates are validated the same way, and the id cannot change.
	other := psEntry(t, "other")
	require.NoError(t, ps.PutPeer(ctx, other))
	before = psState(t, db, ps)
	err = ps.UpdatePeer(ctx, "other", func(e *core.PeerEntry) error {
		e.Fingerprints = append(e.Fingerprints, taken.Fingerprints[0])
		return nil
	})
	require.ErrorIs(t, err, store.ErrFingerprintInUse)
	err = ps.UpdatePeer(ctx, "other", func(e *core.PeerEntry) error { e.PeerID = "x"; return nil })
	require.ErrorIs(t, err, store.ErrInvalidPeer)
	err = ps.UpdatePeer(ctx, "other", func(e *core.PeerEntry) error { e.Scopes = []string{"Bad"}; return nil })
	require.ErrorIs(t, err, store.ErrInvalidScope)
	require.ErrorIs(t, ps.UpdatePeer(ctx, "nobody", func(*core.PeerEntry) error { return nil }), store.ErrPeerNotFound)
	require.ErrorIs(t, ps.SetEnabled(ctx, "nobody", false), store.ErrPeerNotFound)
	_, err = ps.MintToken(ctx, "nobody")
	require.ErrorIs(t, err, store.ErrPeerNotFound)
	assert.Equal(t, before, psState(t, db, ps))
}

func TestPeerStoreTokens(t *testing.T) {
	_, ps, _ := psTemp(t)
	ctx := psCtx(t)
	require.NoError(t, ps.PutPeer(ctx, psEntry(t, "ci", "git")))
	require.NoError(t, ps.PutPeer(ctx, psEntry(t, "other")))

	tok, err := ps.MintToken(ctx, "ci")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(tok, store.TokenPrefix), tok)
	assert.True(t, store.LooksLikeToken(tok))
	assert.GreaterOrEqual(t, len(tok)-len(store.TokenPrefix), 22, "at least 128 bits")

	id, ok := ps.IdentityByToken([]byte(tok))
	require.True(t, ok)
	assert.Equal(t, "ci", id.ID)

	p, err := ps.GetPeer(ctx, "ci")
	require.NoError(t, err)
	assert.Equal(t, core.HashToken([]byte(tok)), p.TokenHash, "only the hash is stored")
	assert.NotContains(t, p.TokenHash, strings.TrimPrefix(tok, store.TokenPrefix))

	// Wrong tokens with the same prefix do not resolve.
	last := tok[len(tok)-1]
	flip := byte('A')
	if last == 'A' {
		flip = 'B'
	}
	for _, wrong := range []string{
		tok[:len(tok)-1] + string(flip),
		tok[:len(tok)-1],
		tok + "x",
		store.TokenPrefix,
		"",
	} {
		_, ok := ps.IdentityByToken([]byte(wrong))
		assert.False(t, ok, "token %q", wrong)
	}

	// A new token replaces the old one.
	tok2, err := ps.MintToken(ctx, "ci")
	require.NoError(t, err)
	assert.NotEqual(t, tok, tok2)
	_, ok = ps.IdentityByToken([]byte(tok))
	assert.False(t, ok, "the old token stops working")
	_, ok = ps.IdentityByToken([]byte(tok2))
	assert.True(t, ok)

	// Disabled peers' tokens do not resolve; revoked tokens neither.
	require.NoError(t, ps.SetEnabled(ctx, "ci", false))
	_, ok = ps.IdentityByToken([]byte(tok2))
	assert.False(t, ok)
	require.NoError(t, ps.SetEnabled(ctx, "ci", true))
	require.NoError(t, ps.RevokeToken(ctx, "ci"))
	_, ok = ps.IdentityByToken([]byte(tok2))
	assert.False(t, ok)

	seen := map[string]bool{}
	for range 1000 {
		tk, err := store.NewToken()
		require.NoError(t, err)
		require.False(t, seen[tk], "duplicate token")
		seen[tk] = true
	}
	assert.False(t, store.LooksLikeToken("alk_short"))
	assert.False(t, store.LooksLikeToken("xyz_"+strings.Repeat("a", 32)))
}

func TestPeerStoreStaticPeers(t *testing.T) {
	cfgKey := psFP(t)
	static := core.PeerEntry{PeerID: "Config-Peer", Fingerprints: []string{cfgKey}, Scopes: []string{"ssh"}}
	db, ps, path := psTemp(t, static)
	ctx := psCtx(t)

	id, ok := ps.IdentityByFingerprint(cfgKey)
	require.True(t, ok, "static peers resolve")
	assert.Equal(t, "Config-Peer", id.ID)
	list, err := ps.ListPeers(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.True(t, list[0].Static)

	require.ErrorIs(t, ps.PutPeer(ctx, core.PeerEntry{PeerID: "config-peer2", Fingerprints: []string{cfgKey}}), store.ErrConflict)
	require.ErrorIs(t, ps.RemovePeer(ctx, "Config-Peer"), store.ErrConflict)
	require.NoError(t, ps.Conflicts())

	// A process that does not know the configuration adds a peer with the
	// configuration peer's key: the server keeps the configuration's
	// meaning and reports the conflict.
	_, plain := psOpen(t, path)
	require.NoError(t, plain.PutPeer(ctx, core.PeerEntry{PeerID: "intruder", Fingerprints: []string{cfgKey}, Scopes: []string{"admin"}, Enabled: true}))
	require.NoError(t, ps.Reload(ctx))
	err = ps.Conflicts()
	require.ErrorIs(t, err, store.ErrConflict)
	assert.Contains(t, err.Error(), `"intruder"`)
	id, ok = ps.IdentityByFingerprint(cfgKey)
	require.True(t, ok)
	assert.Equal(t, "Config-Peer", id.ID)

	// Starting a store with that configuration sees the conflict at once.
	ps2, err := store.NewPeerStore(db, store.PeerStoreConfig{Static: []core.PeerEntry{static}})
	require.NoError(t, err)
	defer ps2.Close()
	require.ErrorIs(t, ps2.Conflicts(), store.ErrConflict)

	// Static lists are checked too.
	_, err = store.NewPeerStore(db, store.PeerStoreConfig{Static: []core.PeerEntry{static, static}})
	require.Error(t, err)
	_, err = store.NewPeerStore(db, store.PeerStoreConfig{Static: []core.PeerEntry{{PeerID: "x", Fingerprints: []string{"nope"}}}})
	require.ErrorIs(t, err, core.ErrInvalidFingerprint)
}

// TestPeerStoreFollowsOtherConnection: a write through another DB handle
// (as another process would make) reaches this store's index without any
// call on it, and fires OnReload.
func TestPeerStoreFollowsOtherConnection(t *testing.T) {
	_, ps, path := psTemp(t)
	_, writer := psOpen(t, path)
	ctx := psCtx(t)
	reloaded := make(chan struct{}, 16)
	remove := ps.OnReload(func() { reloaded <- struct{}{} })
	defer remove()

	e := psEntry(t, "remote", "ssh")
	require.NoError(t, writer.PutPeer(ctx, e))
	psWaitFor(t, reloaded, func() bool { _, ok := ps.IdentityByFingerprint(e.Fingerprints[0]); return ok })

	require.NoError(t, writer.RemovePeer(ctx, "remote"))
	psWaitFor(t, reloaded, func() bool { _, ok := ps.IdentityByFingerprint(e.Fingerprints[0]); return !ok })

}

func TestPeerStoreOnReloadRemove(t *testing.T) {
	_, ps, _ := psTemp(t)
	ctx := psCtx(t)
	var kept, removed atomic.Int32
	ps.OnReload(func() { kept.Add(1) })
	remove := ps.OnReload(func() { removed.Add(1) })
	remove()
	require.NoError(t, ps.PutPeer(ctx, psEntry(t, "a")))
	assert.Positive(t, kept.Load(), "a write reloads and runs the hooks")
	assert.Zero(t, removed.Load(), "a removed hook never runs")
	n := kept.Load()
	require.NoError(t, ps.Reload(ctx))
	assert.Equal(t, n, kept.Load(), "a reload that changes nothing runs no hook")
}

// psWaitFor waits, one reload at a time, until cond holds.
func psWaitFor(t testing.TB, reloaded <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-reloaded:
		case <-deadline:
			t.Fatal("index did not change")
		}
	}
}

// TestPeerStoreConcurrency: many goroutines resolve while another writes.
// Every identity a reader gets must be the one its fingerprint was stored
// with, never a torn or foreign one.
func TestPeerStoreConcurrency(t *testing.T) {
	_, ps, path := psTemp(t)
	_, other := psOpen(t, path)
	ctx := psCtx(t)
	const n = 64
	entries := make([]core.PeerEntry, n)
	for i := range entries {
		entries[i] = psEntry(t, fmt.Sprintf("p%02d", i), "ssh")
	}
	require.NoError(t, ps.PutPeers(ctx, entries[:n/2]))

	var stop atomic.Bool
	var wg sync.WaitGroup
	var hits, bad atomic.Int64
	for r := range 4 {
		wg.Go(func() {
			for i := r; !stop.Load(); i++ {
				e := entries[i%n]
				id, ok := ps.IdentityByFingerprint(e.Fingerprints[0])
				if ok {
					hits.Add(1)
					if id.ID != e.PeerID || !id.HasScope("ssh") {
						bad.Add(1)
					}
				}
			}
		})
	}
	// Writes from this store and from another connection interleave.
	for round := range 2 {
		for i := n / 2; i < n; i++ {
			w := ps
			if i%2 == 0 {
				w = other
			}
			require.NoError(t, w.PutPeer(ctx, entries[i]))
		}
		for i := n / 2; i < n; i++ {
			require.NoError(t, ps.SetEnabled(ctx, entries[i].PeerID, round%2 == 0))
			require.NoError(t, other.RemovePeer(ctx, entries[i].PeerID))
		}
	}
	stop.Store(true)
	wg.Wait()
	assert.Zero(t, bad.Load(), "wrong identities resolved")
	assert.Positive(t, hits.Load())
	require.NoError(t, ps.Reload(ctx))
	list, err := ps.ListPeers(ctx)
	require.NoError(t, err)
	assert.Len(t, list, n/2)
}

func TestPeerStoreCloseStops(t *testing.T) {
	db, ps, _ := psTemp(t)
	ctx := psCtx(t)
	e := psEntry(t, "a")
	require.NoError(t, ps.PutPeer(ctx, e))
	require.NoError(t, ps.Close())
	require.NoError(t, ps.Close(), "second Close")
	_, ok := ps.IdentityByFingerprint(e.Fingerprints[0])
	assert.True(t, ok, "lookups keep answering from the last index")
	require.ErrorIs(t, ps.PutPeer(ctx, psEntry(t, "b")), store.ErrClosed)
	require.NoError(t, db.Close())
	_, err := store.NewPeerStore(db, store.PeerStoreConfig{})
	require.ErrorIs(t, err, store.ErrClosed)
}

// TestPeerStoreReloadAfterPruning: a store that fell behind by more
// notifications than are kept reads the whole table; one that did not reads
// only the changed peers. Both must end with the database's content.
func TestPeerStoreReloadAfterPruning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alknet.db")
	wdb, err := store.New(store.Config{Path: path, KeepNotifications: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = wdb.Close() })
	writer, err := store.NewPeerStore(wdb, store.PeerStoreConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = writer.Close() })
	_, reader := psOpen(t, path)
	require.NoError(t, reader.Close()) // stop following: only Reload updates it now
	ctx := psCtx(t)

	check := func() {
		t.Helper()
		require.NoError(t, reader.Reload(ctx))
		want, err := writer.ListPeers(ctx)
		require.NoError(t, err)
		for _, p := range want {
			id, ok := reader.IdentityByFingerprint(p.Fingerprints[0])
			if assert.Equal(t, p.Enabled, ok, p.PeerID) && ok {
				assert.Equal(t, p.PeerID, id.ID)
				assert.Equal(t, p.Scopes, id.Scopes)
			}
		}
		assert.Equal(t, countEnabled(want), reader.Index().Len())
	}
	// Few changes: incremental.
	a, b := psEntry(t, "a", "ssh"), psEntry(t, "b")
	require.NoError(t, writer.PutPeers(ctx, []core.PeerEntry{a, b}))
	check()
	require.NoError(t, writer.UpdatePeer(ctx, "a", func(e *core.PeerEntry) error { e.Scopes = []string{"git"}; return nil }))
	require.NoError(t, writer.RemovePeer(ctx, "b"))
	check()
	_, ok := reader.IdentityByFingerprint(b.Fingerprints[0])
	assert.False(t, ok)

	// More changes than notifications kept: full reload.
	for i := range 10 {
		require.NoError(t, writer.PutPeer(ctx, psEntry(t, fmt.Sprintf("n%d", i), "sftp")))
	}
	require.NoError(t, writer.SetEnabled(ctx, "n3", false))
	require.NoError(t, writer.RemovePeer(ctx, "a"))
	check()
	_, ok = reader.IdentityByFingerprint(a.Fingerprints[0])
	assert.False(t, ok)
}

func countEnabled(ps []store.Peer) int {
	n := 0
	for _, p := range ps {
		if p.Enabled {
			n++
		}
	}
	return n
}

func TestDatabaseFilesArePrivate(t *testing.T) {
	_, ps, path := psTemp(t)
	require.NoError(t, ps.PutPeer(psCtx(t), psEntry(t, "a")))
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(f)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), f)
	}
}
