package msg

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
)

// Notification channels of the msg tables (core/store's notifications):
// a commit that adds to a mailbox notifies MailboxChannel with the mailbox
// id in hex, one that changes the outbox notifies OutboxChannel.
const (
	MailboxChannel = "msg_mailbox"
	OutboxChannel  = "msg_outbox"
)

const msgSchema = `
CREATE TABLE IF NOT EXISTS msg_mailbox (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	mailbox     BLOB NOT NULL CHECK (length(mailbox) = 32),
	digest      BLOB NOT NULL CHECK (length(digest) = 32),
	message_id  BLOB CHECK (message_id IS NULL OR length(message_id) = 16),
	envelope    BLOB NOT NULL,
	received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS msg_mailbox_box ON msg_mailbox (mailbox, seq);
CREATE INDEX IF NOT EXISTS msg_mailbox_id ON msg_mailbox (message_id) WHERE message_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS msg_boxes (
	mailbox  BLOB PRIMARY KEY NOT NULL,
	messages INTEGER NOT NULL,
	bytes    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS msg_seen (
	mailbox BLOB NOT NULL,
	key     BLOB NOT NULL,
	at      INTEGER NOT NULL,
	PRIMARY KEY (mailbox, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS msg_seen_at ON msg_seen (at);
CREATE TABLE IF NOT EXISTS msg_outbox (
	message_id  BLOB PRIMARY KEY NOT NULL CHECK (length(message_id) = 16),
	recipient   BLOB NOT NULL CHECK (length(recipient) = 32),
	addr        TEXT NOT NULL,
	envelope    BLOB NOT NULL,
	sealed      INTEGER NOT NULL CHECK (sealed IN (0, 1)),
	state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'failed')),
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_try    INTEGER NOT NULL,
	lease_until INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	last_error  TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS msg_outbox_due ON msg_outbox (state, next_try);
CREATE TABLE IF NOT EXISTS msg_keys (
	node       BLOB PRIMARY KEY NOT NULL CHECK (length(node) = 32),
	record     BLOB NOT NULL,
	addr       TEXT NOT NULL DEFAULT '',
	updated_at INTEGER NOT NULL
) WITHOUT ROWID;
`

// Store is the msg tables of a node database (core/store): mailboxes
// (ciphertext only), the record of delivered envelopes and message ids
// that drops duplicates, the outbox and a cache of verified key records.
// Several processes may use the same file.
type Store struct {
	db   *store.DB
	puts atomic.Int64
}

// OpenStore creates the msg tables in db when missing.
func OpenStore(ctx context.Context, db *store.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("alknet/msg: no database")
	}
	err := db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, msgSchema)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("alknet/msg: create tables: %w", err)
	}
	return &Store{db: db}, nil
}

// DB returns the database.
func (s *Store) DB() *store.DB { return s.db }

// quota bounds a mailbox.
type quota struct {
	messages int64
	bytes    int64
}

// errFull reports a mailbox over its quota.
var errFull = errors.New("alknet/msg: mailbox full")

// put stores env in mailbox unless its digest (or id, when the node
// opened it) was seen within seenFor. It returns the new sequence number,
// or dup set. The mailbox notification commits with the row.
func (s *Store) put(ctx context.Context, mailbox core.NodeID, env []byte, id *MessageID, q quota, seenFor time.Duration) (seq int64, dup bool, err error) {
	digest := sha256.Sum256(env)
	now := time.Now().UnixMilli()
	prune := s.puts.Add(1)%256 == 1
	err = s.db.Update(ctx, func(tx *sql.Tx) error {
		if prune {
			if _, err := tx.ExecContext(ctx, `DELETE FROM msg_seen WHERE at < ?`, now-seenFor.Milliseconds()); err != nil {
				return err
			}
		}
		keys := [][]byte{digest[:]}
		if id != nil {
			keys = append(keys, id[:])
		}
		for _, k := range keys {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM msg_seen WHERE mailbox = ? AND key = ? AND at >= ?`,
				mailbox[:], k, now-seenFor.Milliseconds()).Scan(&one)
			if err == nil {
				dup = true
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		var n, size int64
		err := tx.QueryRowContext(ctx, `SELECT messages, bytes FROM msg_boxes WHERE mailbox = ?`, mailbox[:]).Scan(&n, &size)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if n+1 > q.messages || size+int64(len(env)) > q.bytes {
			return fmt.Errorf("%w: %d messages, %d bytes", errFull, n, size)
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO msg_seen (mailbox, key, at) VALUES (?, ?, ?)`, mailbox[:], k, now); err != nil {
				return err
			}
		}
		var idCol any
		if id != nil {
			idCol = id[:]
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO msg_mailbox (mailbox, digest, message_id, envelope, received_at) VALUES (?, ?, ?, ?, ?)`,
			mailbox[:], digest[:], idCol, env, now)
		if err != nil {
			return err
		}
		if seq, err = res.LastInsertId(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO msg_boxes (mailbox, messages, bytes) VALUES (?, 1, ?)
			ON CONFLICT (mailbox) DO UPDATE SET messages = messages + 1, bytes = bytes + excluded.bytes`, mailbox[:], len(env)); err != nil {
			return err
		}
		return s.db.Notify(ctx, tx, MailboxChannel, fmt.Sprintf("%x", mailbox[:]))
	})
	return seq, dup, err
}

// Fetch returns up to limit items of mailbox after the sequence number
// after, oldest first, and at most about maxBytes of envelopes (always at
// least one item when there is one).
func (s *Store) Fetch(ctx context.Context, mailbox core.NodeID, after int64, limit int, maxBytes int64) ([]Item, error) {
	var out []Item
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq, received_at, envelope FROM msg_mailbox WHERE mailbox = ? AND seq > ? ORDER BY seq LIMIT ?`,
			mailbox[:], after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		var total int64
		for rows.Next() {
			var it Item
			if err := rows.Scan(&it.Seq, &it.Received, &it.Envelope); err != nil {
				return err
			}
			total += int64(len(it.Envelope)) + itemHeader
			if len(out) > 0 && total > maxBytes {
				break
			}
			out = append(out, it)
		}
		return rows.Err()
	})
	return out, err
}

// Get returns the item of mailbox that holds message id (known for
// envelopes the node opened on delivery: its own mailbox).
func (s *Store) Get(ctx context.Context, mailbox core.NodeID, id MessageID) (Item, error) {
	var it Item
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT seq, received_at, envelope FROM msg_mailbox WHERE mailbox = ? AND message_id = ?`,
			mailbox[:], id[:]).Scan(&it.Seq, &it.Received, &it.Envelope)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return it, fmt.Errorf("%w: message %s", ErrNotFound, id)
	}
	return it, err
}

// Ack deletes the items seqs of mailbox and returns how many it deleted.
// Their digests and ids stay in the record of delivered envelopes.
func (s *Store) Ack(ctx context.Context, mailbox core.NodeID, seqs []int64) (int, error) {
	if len(seqs) == 0 {
		return 0, nil
	}
	deleted := 0
	err := s.db.Update(ctx, func(tx *sql.Tx) error {
		deleted = 0
		var size int64
		for _, q := range seqs {
			var n int64
			err := tx.QueryRowContext(ctx, `DELETE FROM msg_mailbox WHERE mailbox = ? AND seq = ? RETURNING length(envelope)`, mailbox[:], q).Scan(&n)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			deleted++
			size += n
		}
		if deleted == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE msg_boxes SET messages = max(messages - ?, 0), bytes = max(bytes - ?, 0) WHERE mailbox = ?`,
			deleted, size, mailbox[:])
		if err != nil {
			return err
		}
		return s.db.Notify(ctx, tx, MailboxChannel, fmt.Sprintf("%x", mailbox[:]))
	})
	return deleted, err
}

// Subscribe returns a subscription woken after every commit that changes
// any mailbox, in this process or another; read with Fetch after it.
func (s *Store) Subscribe() (*store.Subscription, error) { return s.db.Subscribe(MailboxChannel) }

// CacheKey stores a verified key record (and the address it came from,
// when known) so that later sends need no lookup.
func (s *Store) CacheKey(ctx context.Context, r KeyRecord, addr string) error {
	if err := r.Verify(); err != nil {
		return err
	}
	return s.db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO msg_keys (node, record, addr, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (node) DO UPDATE SET record = excluded.record,
				addr = CASE WHEN excluded.addr = '' THEN addr ELSE excluded.addr END, updated_at = excluded.updated_at`,
			r.Node[:], r.Marshal(), addr, time.Now().UnixMilli())
		return err
	})
}

// CachedKey returns the cached record of node (verified again) and the
// last address it was reached at ("" when unknown). ErrNotFound when there
// is none.
func (s *Store) CachedKey(ctx context.Context, node core.NodeID) (KeyRecord, string, error) {
	var rec []byte
	var addr string
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT record, addr FROM msg_keys WHERE node = ?`, node[:]).Scan(&rec, &addr)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return KeyRecord{}, "", fmt.Errorf("%w: no key of %s", ErrNotFound, node)
	}
	if err != nil {
		return KeyRecord{}, "", err
	}
	r, err := ParseKeyRecord(rec, node)
	return r, strings.TrimSpace(addr), err
}
