package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Notify records a change on channel inside tx, the transaction of
// DB.Update that made the change, so the notification commits (or rolls
// back) with it. Rows older than the newest Config.KeepNotifications are
// deleted in the same transaction. payload is free text for diagnostics;
// subscribers re-read their tables rather than trust it.
func (db *DB) Notify(ctx context.Context, tx *sql.Tx, channel, payload string) error {
	if channel == "" {
		return errors.New("alknet/store: empty notification channel")
	}
	res, err := tx.ExecContext(ctx,
		`INSERT INTO notifications (channel, payload, created_at) VALUES (?, ?, ?)`,
		channel, payload, nowMillis())
	if err != nil {
		return fmt.Errorf("notify %s: %w", channel, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("notify %s: %w", channel, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM notifications WHERE id <= ?`, id-db.cfg.KeepNotifications); err != nil {
		return fmt.Errorf("prune notifications: %w", err)
	}
	return nil
}

// Subscription receives a wake-up after commits that notified its channel.
// Bursts coalesce: C holds at most one pending wake-up, so a slow consumer
// sees one wake-up for many commits and must re-read its table each time.
type Subscription struct {
	// C receives after each commit (in this process or another) that
	// called Notify on the channel. It is closed by Subscription.Close and
	// DB.Close.
	C <-chan struct{}

	db      *DB
	channel string
	c       chan struct{}
}

// Channel returns the channel the subscription listens on.
func (s *Subscription) Channel() string { return s.channel }

// Close stops the subscription and closes C. It is safe to call twice.
func (s *Subscription) Close() {
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	if _, ok := s.db.subs[s]; ok {
		delete(s.db.subs, s)
		close(s.c)
	}
}

// Subscribe returns a subscription to channel. The first subscription
// starts the watcher: a goroutine polling PRAGMA data_version on a dedicated
// connection every Config.PollInterval; it stops on DB.Close. Changes
// committed before Subscribe returns do not wake the subscription: read the
// current state after subscribing, then on every wake-up.
func (db *DB) Subscribe(channel string) (*Subscription, error) {
	if channel == "" {
		return nil, errors.New("alknet/store: empty notification channel")
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil, ErrClosed
	}
	if !db.watching {
		if err := db.startWatcher(); err != nil {
			return nil, err
		}
		db.watching = true
	}
	c := make(chan struct{}, 1)
	s := &Subscription{C: c, db: db, channel: channel, c: c}
	db.subs[s] = struct{}{}
	return s, nil
}

// startWatcher pins a connection, reads the starting point and starts the
// watcher goroutine. Called with db.mu held.
func (db *DB) startWatcher() error {
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := db.r.Conn(ctx)
	if err != nil {
		cancel()
		return fmt.Errorf("watcher connection: %w", err)
	}
	version, err := dataVersion(ctx, conn)
	if err == nil {
		// The cursor is the last id ever handed out, so rows pruned before
		// we started are not mistaken for missed ones.
		err = conn.QueryRowContext(ctx,
			`SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'notifications'), 0)`).Scan(&db.cursor)
	}
	if err != nil {
		_ = conn.Close()
		cancel()
		return fmt.Errorf("watcher start: %w", err)
	}
	db.stop = cancel
	db.done = make(chan struct{})
	db.kick = make(chan struct{}, 1)
	go db.watch(ctx, conn, version)
	return nil
}

// wake tells the watcher to poll now; Update calls it after a local commit
// so writes of this process do not wait for the next tick.
func (db *DB) wake() {
	db.mu.Lock()
	k := db.kick
	db.mu.Unlock()
	if k != nil {
		select {
		case k <- struct{}{}:
		default:
		}
	}
}

func (db *DB) watch(ctx context.Context, conn *sql.Conn, version int64) {
	defer close(db.done)
	defer func() { _ = conn.Close() }()
	// The poll runs a thousand times a second, so it must cost next to
	// nothing: one prepared statement, and a context that cannot be
	// cancelled (the driver starts an interrupt goroutine per query for a
	// cancellable one). PRAGMA data_version never blocks.
	poll, err := conn.PrepareContext(context.Background(), `PRAGMA data_version`)
	if err != nil {
		db.log.Warn("store watcher", "err", err)
		return
	}
	defer poll.Close()
	// Poll fast for a second after each change, slowly when idle.
	const busyFor = time.Second
	lastChange := time.Now()
	t := time.NewTimer(db.cfg.PollInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-db.kick:
			lastChange = time.Now()
		}
		var v int64
		err := poll.QueryRowContext(context.Background()).Scan(&v)
		if err == nil && v != version {
			lastChange = time.Now()
			err = db.dispatch(ctx, conn)
			if err == nil {
				version = v
			}
		}
		next := db.cfg.PollInterval
		if time.Since(lastChange) > busyFor {
			next = db.cfg.IdlePollInterval
		}
		t.Reset(next)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing { // log once per failure streak, not every millisecond
				db.log.Warn("store watcher", "err", err)
			}
			failing = true
			continue
		}
		if failing {
			db.log.Info("store watcher recovered")
			failing = false
		}
	}
}

// dispatch reads the notifications after the cursor and wakes the
// subscribers of their channels. If rows after the cursor were pruned
// before we read them, everyone is woken.
func (db *DB) dispatch(ctx context.Context, conn *sql.Conn) error {
	var lo, hi sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT min(id), max(id) FROM notifications`).Scan(&lo, &hi); err != nil {
		return err
	}
	if !hi.Valid || hi.Int64 <= db.cursor {
		return nil // a commit without notifications
	}
	all := lo.Int64 > db.cursor+1
	channels := map[string]bool{}
	if !all {
		rows, err := conn.QueryContext(ctx,
			`SELECT DISTINCT channel FROM notifications WHERE id > ? AND id <= ?`, db.cursor, hi.Int64)
		if err != nil {
			return err
		}
		for rows.Next() {
			var ch string
			if err := rows.Scan(&ch); err != nil {
				rows.Close()
				return err
			}
			channels[ch] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	db.cursor = hi.Int64
	db.mu.Lock()
	defer db.mu.Unlock()
	for s := range db.subs {
		if all || channels[s.channel] {
			select {
			case s.c <- struct{}{}:
			default: // a wake-up is already pending: coalesce
			}
		}
	}
	return nil
}

func dataVersion(ctx context.Context, conn *sql.Conn) (int64, error) {
	var v int64
	err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v)
	return v, err
}
