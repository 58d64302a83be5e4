package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // database/sql driver "sqlite3"
)

// SchemaVersion is the schema this package creates and understands.
const SchemaVersion = 1

// Config configures a DB. Only Path is required.
type Config struct {
	// Path is the database file, usually <data>/alknet.db. Its directory
	// must exist; the file is created when missing.
	Path string
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection or process. Zero means 5s.
	BusyTimeout time.Duration
	// PollInterval is how often the watcher checks PRAGMA data_version for
	// commits while the database is busy (for a second after the last
	// change it saw). Zero means 1ms.
	PollInterval time.Duration
	// IdlePollInterval is how often it checks while nothing has changed for
	// a second: a timer firing every millisecond costs several percent of a
	// core on a virtual machine, for nothing. It bounds how long the first
	// write after a quiet period takes to be seen. Zero means 10ms; it is
	// never shorter than PollInterval.
	IdlePollInterval time.Duration
	// KeepNotifications is how many of the newest notification rows are
	// kept; older rows are deleted by each Notify. Zero means 1024.
	KeepNotifications int64
	// Logger receives watcher errors. Nil is silent.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.BusyTimeout <= 0 {
		c.BusyTimeout = 5 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Millisecond
	}
	if c.IdlePollInterval <= 0 {
		c.IdlePollInterval = 10 * time.Millisecond
	}
	c.IdlePollInterval = max(c.IdlePollInterval, c.PollInterval)
	if c.KeepNotifications <= 0 {
		c.KeepNotifications = 1024
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// DB is an open node database. It is safe for concurrent use by many
// goroutines; several processes may open the same file.
type DB struct {
	cfg Config
	log *slog.Logger
	w   *sql.DB // one connection, BEGIN IMMEDIATE: writers queue here
	r   *sql.DB // query-only connections, deferred transactions

	mu       sync.Mutex
	closed   bool
	subs     map[*Subscription]struct{}
	watching bool
	stop     context.CancelFunc
	done     chan struct{}
	kick     chan struct{} // asks the watcher to poll now
	cursor   int64         // last notification id dispatched; watcher goroutine only
}

// Open opens (creating if needed) the database at path with the default
// Config.
func Open(path string) (*DB, error) { return New(Config{Path: path}) }

// New opens the database described by cfg, creating the file and the
// schema when missing.
func New(cfg Config) (*DB, error) {
	if cfg.Path == "" {
		return nil, errors.New("alknet/store: Config.Path is required")
	}
	cfg = cfg.withDefaults()
	abs, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("database path %q: %w", cfg.Path, err)
	}
	cfg.Path = abs
	// Create a new database file private to its owner (it holds the peer
	// table); SQLite gives its -wal and -shm files the same mode.
	if f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		_ = f.Close()
	}
	busy := fmt.Sprint(cfg.BusyTimeout.Milliseconds())
	w, err := sql.Open("sqlite3", dsn(abs, url.Values{
		"_busy_timeout": {busy},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"NORMAL"},
		"_foreign_keys": {"on"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", abs, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	db := &DB{cfg: cfg, log: cfg.Logger, w: w, subs: make(map[*Subscription]struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.BusyTimeout+5*time.Second)
	defer cancel()
	if err := db.migrate(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open database %s: %w", abs, err)
	}
	r, err := sql.Open("sqlite3", dsn(abs, url.Values{
		"_busy_timeout": {busy},
		"_foreign_keys": {"on"},
		"_query_only":   {"on"},
	}))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open database %s: %w", abs, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(4)
	if err := r.PingContext(ctx); err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, fmt.Errorf("open database %s: %w", abs, err)
	}
	db.r = r
	return db, nil
}

// dsn builds a file: URI so that no character of the path is taken for a
// parameter.
func dsn(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: params.Encode()}
	return u.String()
}

const schema = `
CREATE TABLE IF NOT EXISTS schema_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS peers (
	peer_id      TEXT PRIMARY KEY NOT NULL,
	fingerprints TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(fingerprints) AND json_type(fingerprints) = 'array'),
	token_hash   TEXT NOT NULL DEFAULT '',
	scopes       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
	resources    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(resources) AND json_type(resources) = 'object'),
	display_name TEXT NOT NULL DEFAULT '',
	enabled      INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS peer_fingerprints (
	fingerprint TEXT PRIMARY KEY NOT NULL,
	peer_id     TEXT NOT NULL REFERENCES peers (peer_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS peer_fingerprints_peer ON peer_fingerprints (peer_id);
CREATE TABLE IF NOT EXISTS credentials (
	provider    TEXT PRIMARY KEY NOT NULL,
	key_version INTEGER NOT NULL,
	salt        BLOB NOT NULL,
	iv          BLOB NOT NULL,
	data        BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	channel    TEXT NOT NULL,
	payload    TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL
);
INSERT OR IGNORE INTO schema_version (id, version) VALUES (1, 1);
`

// migrate creates the schema, or checks that an existing one is not newer
// than SchemaVersion. Later versions add their steps here.
func (db *DB) migrate(ctx context.Context) error {
	return db.Update(ctx, func(tx *sql.Tx) error {
		var n int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`).Scan(&n)
		if err != nil {
			return err
		}
		if n == 1 {
			var v int
			if err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version WHERE id = 1`).Scan(&v); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if v > SchemaVersion {
				return fmt.Errorf("%w (version %d, this program knows %d)", ErrSchemaTooNew, v, SchemaVersion)
			}
		}
		_, err = tx.ExecContext(ctx, schema)
		return err
	})
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.cfg.Path }

// Update runs fn in a write transaction (BEGIN IMMEDIATE, so concurrent
// writers queue on the busy timeout instead of failing on upgrade) and
// commits it when fn returns nil. fn should call Notify for what it changed.
// Writes of this process are serialized.
func (db *DB) Update(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if db.isClosed() {
		return ErrClosed
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	db.wake()
	return nil
}

// Read runs fn in a read transaction: everything fn reads comes from one
// consistent snapshot. fn must not write.
func (db *DB) Read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if db.isClosed() {
		return ErrClosed
	}
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

// IntegrityCheck runs PRAGMA integrity_check and returns an error unless
// SQLite answers "ok".
func (db *DB) IntegrityCheck(ctx context.Context) error {
	if db.isClosed() {
		return ErrClosed
	}
	rows, err := db.r.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		msgs = append(msgs, s)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(msgs) == 1 && msgs[0] == "ok" {
		return nil
	}
	return fmt.Errorf("alknet/store: integrity check failed: %v", msgs)
}

func (db *DB) isClosed() bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.closed
}

// Close stops the watcher, closes every subscription and the database. It
// waits for the watcher goroutine to return.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	stop, done := db.stop, db.done
	for s := range db.subs {
		delete(db.subs, s)
		close(s.c)
	}
	db.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	return errors.Join(db.r.Close(), db.w.Close())
}

func nowMillis() int64 { return time.Now().UnixMilli() }
