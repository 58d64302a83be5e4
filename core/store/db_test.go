package store_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openDB(t testing.TB, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// waitWake waits for one wake-up of sub or fails the test.
func waitWake(t testing.TB, sub *store.Subscription) {
	t.Helper()
	select {
	case _, ok := <-sub.C:
		require.True(t, ok, "subscription closed")
	case <-time.After(5 * time.Second):
		t.Fatalf("no wake-up on %s", sub.Channel())
	}
}

func pending(sub *store.Subscription) bool {
	select {
	case <-sub.C:
		return true
	default:
		return false
	}
}

func notify(t testing.TB, db *store.DB, channel string) {
	t.Helper()
	require.NoError(t, db.Update(t.Context(), func(tx *sql.Tx) error {
		return db.Notify(t.Context(), tx, channel, "p")
	}))
}

func TestOpenPragmasAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alknet.db")
	db := openDB(t, path)
	ctx := t.Context()
	assert.Equal(t, path, db.Path())
	var mode string
	var sync, fk, busy, version int
	require.NoError(t, db.Update(ctx, func(tx *sql.Tx) error {
		return errors.Join(
			tx.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode),
			tx.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync),
			tx.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk),
			tx.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy),
			tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version),
		)
	}))
	assert.Equal(t, "wal", mode)
	assert.Equal(t, 1, sync, "synchronous=NORMAL")
	assert.Equal(t, 1, fk, "foreign keys on")
	assert.Equal(t, 5000, busy)
	assert.Equal(t, store.SchemaVersion, version)

	var tables []string
	require.NoError(t, db.Read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			tables = append(tables, n)
		}
		return rows.Err()
	}))
	assert.Equal(t, []string{"credentials", "notifications", "peer_fingerprints", "peers", "schema_version"}, tables)

	// Read transactions cannot write.
	err := db.Read(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM peers`)
		return err
	})
	assert.Error(t, err)
	require.NoError(t, db.IntegrityCheck(ctx))

	// Opening again keeps the schema; a newer schema is refused.
	require.NoError(t, db.Close())
	db2 := openDB(t, path)
	require.NoError(t, db2.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, store.SchemaVersion+1)
		return err
	}))
	require.NoError(t, db2.Close())
	_, err = store.Open(path)
	assert.ErrorIs(t, err, store.ErrSchemaTooNew)

	_, err = store.Open(filepath.Join(t.TempDir(), "missing-dir", "alknet.db"))
	assert.Error(t, err)
}

func TestNotifyWakesOtherConnectionByChannel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alknet.db")
	a := openDB(t, path)
	b := openDB(t, path) // another handle: its writes reach a only through data_version
	x, err := a.Subscribe("x")
	require.NoError(t, err)
	y, err := a.Subscribe("y")
	require.NoError(t, err)
	assert.Equal(t, "x", x.Channel())

	notify(t, b, "x")
	waitWake(t, x)
	assert.False(t, pending(y), "a commit on x does not wake y")

	// A rolled-back transaction notifies nobody; the next commit on y
	// wakes y alone.
	boom := errors.New("boom")
	err = b.Update(t.Context(), func(tx *sql.Tx) error {
		require.NoError(t, b.Notify(t.Context(), tx, "x", "rolled back"))
		return boom
	})
	require.ErrorIs(t, err, boom)
	notify(t, b, "y")
	waitWake(t, y)
	assert.False(t, pending(x), "rolled back notification on x")

	// Writes of this process wake its own subscribers too.
	notify(t, a, "x")
	waitWake(t, x)
}

func TestNotifyCoalesces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alknet.db")
	a := openDB(t, path)
	b := openDB(t, path)
	x, err := a.Subscribe("x") // never read while the commits arrive
	require.NoError(t, err)
	done, err := a.Subscribe("done")
	require.NoError(t, err)
	for range 50 {
		notify(t, b, "x")
	}
	notify(t, b, "done")
	// The watcher got past all 50 wake-ups of x, which nobody read, to the
	// last commit: a full subscriber never blocks it.
	waitWake(t, done)
	// However many commits came in, exactly one wake-up is pending on x.
	assert.True(t, pending(x), "x was woken")
	assert.False(t, pending(x), "the 50 wake-ups were coalesced into one")
	assert.Equal(t, 1, cap(x.C))
}

func TestNotificationsPrunedAndLaggardWoken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alknet.db")
	// a polls only when its own writes kick it, so b's commits pile up
	// and get pruned before a looks.
	a, err := store.New(store.Config{Path: path, PollInterval: time.Hour, KeepNotifications: 10})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	b, err := store.New(store.Config{Path: path, KeepNotifications: 10})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })

	x, err := a.Subscribe("x")
	require.NoError(t, err)
	for range 100 {
		notify(t, b, "x")
	}
	var n int
	require.NoError(t, b.Read(t.Context(), func(tx *sql.Tx) error {
		return tx.QueryRowContext(t.Context(), `SELECT count(*) FROM notifications`).Scan(&n)
	}))
	assert.Equal(t, 10, n, "the table keeps only the newest rows")
	assert.False(t, pending(x))

	// a's own write on z makes it look: x's rows after its cursor were
	// pruned, so x is woken even though no remaining row names it... it
	// does here, but the wake-up must come either way.
	notify(t, a, "z")
	waitWake(t, x)
}

func TestLaggardWokenWhenItsRowsWerePruned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alknet.db")
	a, err := store.New(store.Config{Path: path, PollInterval: time.Hour, KeepNotifications: 5})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	b, err := store.New(store.Config{Path: path, KeepNotifications: 5})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	x, err := a.Subscribe("x")
	require.NoError(t, err)
	notify(t, b, "x") // this row is pruned by the next five
	for range 5 {
		notify(t, b, "other")
	}
	notify(t, a, "z") // kick a
	waitWake(t, x)
}

func TestCloseStopsWatcherAndSubscriptions(t *testing.T) {
	base := runtime.NumGoroutine()
	path := filepath.Join(t.TempDir(), "alknet.db")
	db, err := store.Open(path)
	require.NoError(t, err)
	sub, err := db.Subscribe("x")
	require.NoError(t, err)
	sub2, err := db.Subscribe("x")
	require.NoError(t, err)
	sub2.Close()
	sub2.Close() // twice is fine
	_, ok := <-sub2.C
	assert.False(t, ok, "closed subscription's channel is closed")
	require.NoError(t, db.Close())
	require.NoError(t, db.Close())
	_, ok = <-sub.C
	assert.False(t, ok, "DB.Close closes subscriptions")
	_, err = db.Subscribe("x")
	assert.ErrorIs(t, err, store.ErrClosed)
	assert.ErrorIs(t, db.Update(t.Context(), func(*sql.Tx) error { return nil }), store.ErrClosed)

	// The watcher and database/sql's goroutines are gone.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), base, "goroutines leaked")
}

func TestCredentials(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "alknet.db"))
	ctx := t.Context()
	sub, err := db.Subscribe(store.CredentialsChannel)
	require.NoError(t, err)
	_, err = db.GetCredential(ctx, "dns/x")
	assert.ErrorIs(t, err, store.ErrCredentialNotFound)
	c := store.Credential{Provider: "dns/x", KeyVersion: 1, Salt: []byte("salt"), IV: []byte("iv"), Data: []byte{0, 1, 2}}
	require.NoError(t, db.PutCredential(ctx, c))
	waitWake(t, sub)
	got, err := db.GetCredential(ctx, "dns/x")
	require.NoError(t, err)
	assert.Equal(t, c, got)
	c.KeyVersion, c.Data = 2, []byte("new")
	require.NoError(t, db.PutCredential(ctx, c))
	got, err = db.GetCredential(ctx, "dns/x")
	require.NoError(t, err)
	assert.Equal(t, c, got)
	require.NoError(t, db.DeleteCredential(ctx, "dns/x"))
	assert.ErrorIs(t, db.DeleteCredential(ctx, "dns/x"), store.ErrCredentialNotFound)
	assert.Error(t, db.PutCredential(ctx, store.Credential{}))
}

func TestUpdateHonoursContext(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "alknet.db"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := db.Update(ctx, func(*sql.Tx) error { return nil })
	assert.ErrorIs(t, err, context.Canceled)
}
