package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
)

// A server keeps its peers in the node database and serves identities from
// memory; a write from any process reaches it within milliseconds.
func ExamplePeerStore() {
	dir, _ := os.MkdirTemp("", "alknet-example")
	defer os.RemoveAll(dir)
	db, err := store.Open(filepath.Join(dir, "alknet.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	peers, err := store.NewPeerStore(db, store.PeerStoreConfig{})
	if err != nil {
		panic(err)
	}
	defer peers.Close()
	// A server passes peers as core.Config.Identities and re-checks live
	// connections after each reload:
	//   peers.OnReload(func() { ep.Reauthorize() })

	key, _ := core.GenerateSecretKey()
	ctx := context.Background()
	err = peers.PutPeer(ctx, core.PeerEntry{
		PeerID:       "laptop",
		Fingerprints: []string{key.NodeID().Fingerprint()},
		Scopes:       []string{"ssh", "sftp"},
		Enabled:      true,
	})
	fmt.Println(err)
	id, ok := peers.IdentityByFingerprint(key.NodeID().Fingerprint())
	fmt.Println(ok, id.ID, id.Scopes)

	err = peers.PutPeer(ctx, core.PeerEntry{PeerID: "Laptop 2", Fingerprints: []string{key.NodeID().Fingerprint()}})
	fmt.Println(err)
	// Output:
	// <nil>
	// true laptop [ssh sftp]
	// alknet/store: invalid peer id "Laptop 2": use 1-64 characters a-z 0-9 . _ -, starting with a letter or digit
}

// Another module keeps its own table in the same database and follows its
// changes with the same notification helper.
func ExampleDB_Subscribe() {
	dir, _ := os.MkdirTemp("", "alknet-example")
	defer os.RemoveAll(dir)
	db, err := store.Open(filepath.Join(dir, "alknet.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	ctx := context.Background()
	err = db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS records (name TEXT PRIMARY KEY, value TEXT NOT NULL)`)
		return err
	})
	if err != nil {
		panic(err)
	}
	sub, err := db.Subscribe("records")
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	// A writer (this process or another) changes rows and notifies in the
	// same transaction.
	err = db.Update(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO records VALUES ('www', '192.0.2.1')`); err != nil {
			return err
		}
		return db.Notify(ctx, tx, "records", "www")
	})
	if err != nil {
		panic(err)
	}

	<-sub.C // woken after the commit; now re-read and rebuild the index
	var value string
	_ = db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT value FROM records WHERE name = 'www'`).Scan(&value)
	})
	fmt.Println(value)
	// Output: 192.0.2.1
}
