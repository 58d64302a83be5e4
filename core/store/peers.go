package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"
)

// PeersChannel is the notification channel of the peers table; the payload
// is the peer id.
const PeersChannel = "peers"

// Peer is a stored peer with its timestamps.
type Peer struct {
	core.PeerEntry
	CreatedAt time.Time
	UpdatedAt time.Time
	// Static is set for peers that come from PeerStoreConfig.Static (the
	// configuration file) rather than from the database.
	Static bool
}

// PeerStoreConfig configures a PeerStore.
type PeerStoreConfig struct {
	// Static peers (the [[peers]] of a configuration file) are part of the
	// index but never stored. Their ids and fingerprints are reserved:
	// PutPeer refuses a database peer that reuses one, and a database peer
	// that does anyway (added by a process that did not know the
	// configuration) is left out of the index and reported by Conflicts.
	Static []core.PeerEntry
	// Logger receives reload errors and conflicts. Nil is silent.
	Logger *slog.Logger
}

// PeerStore is the peer table of a DB and a core.IdentityProvider served
// from an in-memory index. The index is rebuilt after every change to the
// table, in this process or another, and swapped atomically: lookups never
// touch SQLite and never block.
type PeerStore struct {
	db       *DB
	log      *slog.Logger
	static   []core.PeerEntry
	staticID map[string]bool
	staticFP map[string]string // fingerprint -> static peer id

	ix atomic.Pointer[core.PeerIndex]

	reloadMu  sync.Mutex                // serializes reloads so a newer index is never replaced by an older one
	gen       int64                     // newest notification id reflected by ix; -1 before the first load
	rows      map[string]core.PeerEntry // the database peers as last loaded
	conflicts error

	hookMu sync.Mutex
	hooks  map[int]func()
	nextID int

	follow *Follower
	closed atomic.Bool

	metrics atomic.Pointer[metricsBox] // see SetMetrics
}

// NewPeerStore loads the peers of db, subscribes to their changes and keeps
// its index current until Close. It does not close db.
func NewPeerStore(db *DB, cfg PeerStoreConfig) (*PeerStore, error) {
	s := &PeerStore{
		db:       db,
		log:      cfg.Logger,
		staticID: map[string]bool{},
		staticFP: map[string]string{},
		gen:      -1,
		hooks:    map[int]func(){},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, e := range cfg.Static {
		if e.PeerID == "" {
			return nil, fmt.Errorf("%w: static peer without id", ErrInvalidPeer)
		}
		n, err := normalizeBody(e)
		if err != nil {
			return nil, err
		}
		if s.staticID[n.PeerID] {
			return nil, fmt.Errorf("%w: static peer %q is listed twice", ErrPeerExists, n.PeerID)
		}
		for _, fp := range n.Fingerprints {
			if other, ok := s.staticFP[fp]; ok {
				return nil, fmt.Errorf("%w: %s is listed for %q and %q", ErrFingerprintInUse, fp, other, n.PeerID)
			}
			s.staticFP[fp] = n.PeerID
		}
		n.Enabled = true
		s.staticID[n.PeerID] = true
		s.static = append(s.static, n)
	}
	f, err := db.Follow(context.Background(), PeersChannel, "peer", s.log, s.Reload)
	if err != nil {
		return nil, err
	}
	s.follow = f
	return s, nil
}

// Close stops following changes. Lookups keep answering from the last
// index. It does not close the DB.
func (s *PeerStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.follow.Close()
	return nil
}

// Index returns the current index.
func (s *PeerStore) Index() *core.PeerIndex { return s.ix.Load() }

// IdentityByFingerprint implements core.IdentityProvider from memory.
func (s *PeerStore) IdentityByFingerprint(fp string) (*core.Identity, bool) {
	return s.ix.Load().IdentityByFingerprint(fp)
}

// IsDisabled implements core.DisabledChecker from memory.
func (s *PeerStore) IsDisabled(fp string) bool { return s.ix.Load().IsDisabled(fp) }

// IdentityByToken implements core.IdentityProvider from memory; the token's
// SHA-256 is compared in constant time.
func (s *PeerStore) IdentityByToken(token []byte) (*core.Identity, bool) {
	return s.ix.Load().IdentityByToken(token)
}

// OnReload registers f to run after each reload that changed the index
// (from a write of this process or another), on the goroutine that
// reloaded. Servers pass core.Endpoint.Reauthorize here so that removing or
// disabling a peer closes its open connections. f must not block for long
// and must not write to the store. The returned function unregisters f.
func (s *PeerStore) OnReload(f func()) (remove func()) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	id := s.nextID
	s.nextID++
	s.hooks[id] = f
	return func() {
		s.hookMu.Lock()
		defer s.hookMu.Unlock()
		delete(s.hooks, id)
	}
}

// Conflicts reports database peers left out of the index because their id
// or a fingerprint belongs to a static peer; nil when there is none. A
// server should refuse to start on a conflict.
func (s *PeerStore) Conflicts() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	return s.conflicts
}

// Reload rebuilds the index from the database now. It is called
// automatically; call it to be sure an index reflects a write made
// elsewhere. Only the peers named by the notifications since the last load
// are read again, unless some of those notifications were already pruned;
// then every row is.
func (s *PeerStore) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	start := time.Now()
	changed, err := s.load(ctx)
	if err != nil {
		s.reloadMu.Unlock()
		return fmt.Errorf("reload peers: %w", err)
	}
	if !changed {
		s.reloadMu.Unlock()
		return nil
	}
	entries := slices.Clone(s.static)
	var conflicts []string
	for _, id := range slices.Sorted(maps.Keys(s.rows)) {
		e := s.rows[id]
		if reason := s.staticConflict(e); reason != "" {
			conflicts = append(conflicts, reason)
			continue
		}
		entries = append(entries, e)
	}
	first := s.ix.Swap(core.NewPeerIndex(entries)) == nil
	old := s.conflicts
	s.conflicts = nil
	if len(conflicts) > 0 {
		s.conflicts = fmt.Errorf("%w: %s", ErrConflict, strings.Join(conflicts, "; "))
	}
	// The first load's conflicts are the caller's to report (Conflicts);
	// later ones appear while serving and are logged once.
	if !first && s.conflicts != nil && (old == nil || old.Error() != s.conflicts.Error()) {
		s.log.Warn("database peers ignored", "err", s.conflicts)
	}
	s.reloaded(time.Since(start)) // under the lock: a write's own Reload returns after the report
	s.reloadMu.Unlock()

	s.hookMu.Lock()
	hooks := make([]func(), 0, len(s.hooks))
	for _, f := range s.hooks {
		hooks = append(hooks, f)
	}
	s.hookMu.Unlock()
	for _, f := range hooks {
		f()
	}
	return nil
}

// maxIncremental is the most changed peers a reload reads one by one;
// beyond it, it reads the whole table.
const maxIncremental = 512

// load brings s.rows up to date with the database and reports whether any
// peer changed. s.reloadMu is held.
func (s *PeerStore) load(ctx context.Context) (changed bool, err error) {
	var gen int64
	err = s.db.Read(ctx, func(tx *sql.Tx) error {
		var lo, hi sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT min(id), max(id) FROM notifications`).Scan(&lo, &hi); err != nil {
			return err
		}
		gen = hi.Int64
		if gen == s.gen {
			return nil // nothing committed since the last load
		}
		// Incremental when every notification after the last load is
		// still there (pruning deletes the oldest first).
		ids, ok := []string(nil), s.rows != nil && s.gen >= 0 && lo.Valid && lo.Int64 <= s.gen+1
		if ok {
			var err error
			if ids, ok, err = changedPeers(ctx, tx, s.gen); err != nil {
				return err
			}
		}
		if ok {
			for _, id := range ids {
				p, err := queryPeers(ctx, tx, id, true, s.log)
				if err != nil {
					return err
				}
				if len(p) == 1 {
					s.rows[id] = p[0].PeerEntry
				} else {
					delete(s.rows, id)
				}
			}
			changed = len(ids) > 0
			return nil
		}
		all, err := queryPeers(ctx, tx, "", true, s.log)
		if err != nil {
			return err
		}
		s.rows = make(map[string]core.PeerEntry, len(all))
		for _, p := range all {
			s.rows[p.PeerID] = p.PeerEntry
		}
		changed = true
		return nil
	})
	if err != nil {
		s.gen = -1 // s.rows may be half updated: read everything next time
		return false, err
	}
	s.gen = gen
	return changed, nil
}

// changedPeers returns the peer ids named by peers notifications after id
// after; ok is false when they cannot be trusted to be complete (an empty
// payload, or too many to read one by one).
func changedPeers(ctx context.Context, tx *sql.Tx, after int64) (ids []string, ok bool, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT payload FROM notifications WHERE channel = ? AND id > ? ORDER BY id LIMIT ?`,
		PeersChannel, after, maxIncremental+1)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	seen := map[string]bool{}
	ok = true
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, false, err
		}
		if id == "" || len(seen) >= maxIncremental {
			ok = false
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, ok, rows.Err()
}

// staticConflict says why a database entry clashes with a static peer, or
// returns "".
func (s *PeerStore) staticConflict(e core.PeerEntry) string {
	if s.staticID[e.PeerID] {
		return fmt.Sprintf("peer %q is defined both in the configuration and in the database", e.PeerID)
	}
	for _, fp := range e.Fingerprints {
		if other, ok := s.staticFP[fp]; ok {
			return fmt.Sprintf("database peer %q has the key %s of configuration peer %q", e.PeerID, fp, other)
		}
	}
	return ""
}

// ListPeers returns every peer, the static ones included, sorted by id.
func (s *PeerStore) ListPeers(ctx context.Context) ([]Peer, error) {
	var out []Peer
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryPeers(ctx, tx, "", false, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, e := range s.static {
		out = append(out, Peer{PeerEntry: e, Static: true})
	}
	slices.SortStableFunc(out, func(a, b Peer) int { return strings.Compare(a.PeerID, b.PeerID) })
	return out, nil
}

// GetPeer returns one peer, or ErrPeerNotFound.
func (s *PeerStore) GetPeer(ctx context.Context, id string) (Peer, error) {
	var out []Peer
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryPeers(ctx, tx, id, false, nil)
		return err
	})
	if err != nil {
		return Peer{}, err
	}
	if len(out) == 1 {
		return out[0], nil
	}
	for _, e := range s.static {
		if e.PeerID == id {
			return Peer{PeerEntry: e, Static: true}, nil
		}
	}
	return Peer{}, fmt.Errorf("%w: %q", ErrPeerNotFound, id)
}

// PutPeer adds a new peer. It fails with ErrPeerExists when the id is
// taken, ErrFingerprintInUse when one of its keys belongs to another peer,
// and with a validation error (ErrInvalidPeerID, ErrInvalidScope, ...) on
// malformed input; nothing is written then. The index reflects the new peer
// when PutPeer returns.
func (s *PeerStore) PutPeer(ctx context.Context, e core.PeerEntry) error {
	return s.PutPeers(ctx, []core.PeerEntry{e})
}

// PutPeers adds several new peers in one transaction: all or none.
func (s *PeerStore) PutPeers(ctx context.Context, entries []core.PeerEntry) error {
	norm := make([]core.PeerEntry, len(entries))
	for i, e := range entries {
		n, err := normalize(e)
		if err != nil {
			return err
		}
		if reason := s.staticConflict(n); reason != "" {
			return fmt.Errorf("%w: %s", ErrConflict, reason)
		}
		norm[i] = n
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		now := nowMillis()
		for _, n := range norm {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM peers WHERE peer_id = ?`, n.PeerID).Scan(&one)
			if err == nil {
				return fmt.Errorf("%w: %q", ErrPeerExists, n.PeerID)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if err := insertPeer(ctx, tx, n, now, now); err != nil {
				return err
			}
			if err := s.db.Notify(ctx, tx, PeersChannel, n.PeerID); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// UpdatePeer changes peer id in one transaction: fn gets the stored entry
// and edits it in place. The id cannot change. ErrPeerNotFound when there is
// no such database peer (static peers cannot be changed); an error from fn
// or from validation aborts the change.
func (s *PeerStore) UpdatePeer(ctx context.Context, id string, fn func(e *core.PeerEntry) error) error {
	if s.staticID[id] {
		return fmt.Errorf("%w: peer %q is defined in the configuration; change it there", ErrConflict, id)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		cur, err := queryPeers(ctx, tx, id, false, nil)
		if err != nil {
			return err
		}
		if len(cur) != 1 {
			return fmt.Errorf("%w: %q", ErrPeerNotFound, id)
		}
		e := cur[0].PeerEntry
		e.Fingerprints = slices.Clone(e.Fingerprints)
		e.Scopes = slices.Clone(e.Scopes)
		if err := fn(&e); err != nil {
			return err
		}
		if e.PeerID != id {
			return fmt.Errorf("%w: the id of peer %q cannot change", ErrInvalidPeer, id)
		}
		n, err := normalize(e)
		if err != nil {
			return err
		}
		if reason := s.staticConflict(n); reason != "" {
			return fmt.Errorf("%w: %s", ErrConflict, reason)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM peer_fingerprints WHERE peer_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM peers WHERE peer_id = ?`, id); err != nil {
			return err
		}
		if err := insertPeer(ctx, tx, n, cur[0].CreatedAt.UnixMilli(), nowMillis()); err != nil {
			return err
		}
		return s.db.Notify(ctx, tx, PeersChannel, id)
	})
}

// SetEnabled enables or disables a peer. A disabled peer resolves to
// nothing; its open connections are closed by the OnReload hook.
func (s *PeerStore) SetEnabled(ctx context.Context, id string, enabled bool) error {
	return s.UpdatePeer(ctx, id, func(e *core.PeerEntry) error {
		e.Enabled = enabled
		return nil
	})
}

// RemovePeer deletes a peer. ErrPeerNotFound when there is none.
func (s *PeerStore) RemovePeer(ctx context.Context, id string) error {
	if s.staticID[id] {
		return fmt.Errorf("%w: peer %q is defined in the configuration; remove it there", ErrConflict, id)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM peers WHERE peer_id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: %q", ErrPeerNotFound, id)
		}
		return s.db.Notify(ctx, tx, PeersChannel, id)
	})
}

// MintToken creates a new bearer token for peer id, stores its SHA-256
// (replacing any previous token, which stops working) and returns the token.
// The token is not stored and cannot be shown again.
func (s *PeerStore) MintToken(ctx context.Context, id string) (string, error) {
	tok, err := NewToken()
	if err != nil {
		return "", err
	}
	err = s.UpdatePeer(ctx, id, func(e *core.PeerEntry) error {
		e.TokenHash = core.HashToken([]byte(tok))
		return nil
	})
	if err != nil {
		return "", err
	}
	return tok, nil
}

// RevokeToken removes peer id's bearer token.
func (s *PeerStore) RevokeToken(ctx context.Context, id string) error {
	return s.UpdatePeer(ctx, id, func(e *core.PeerEntry) error {
		e.TokenHash = ""
		return nil
	})
}

// write runs fn in a write transaction and reloads the index, so that the
// caller sees its own write in lookups as soon as write returns.
func (s *PeerStore) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.db.Update(ctx, fn); err != nil {
		return err
	}
	return s.Reload(ctx)
}

func insertPeer(ctx context.Context, tx *sql.Tx, e core.PeerEntry, created, updated int64) error {
	for _, fp := range e.Fingerprints {
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT peer_id FROM peer_fingerprints WHERE fingerprint = ?`, fp).Scan(&owner)
		if err == nil {
			return fmt.Errorf("%w: %s belongs to peer %q", ErrFingerprintInUse, fp, owner)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	fps, _ := json.Marshal(e.Fingerprints)
	scopes, _ := json.Marshal(e.Scopes)
	res, _ := json.Marshal(e.Resources)
	_, err := tx.ExecContext(ctx, `INSERT INTO peers
		(peer_id, fingerprints, token_hash, scopes, resources, display_name, enabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.PeerID, string(fps), e.TokenHash, string(scopes), string(res), e.DisplayName, e.Enabled, created, updated)
	if err != nil {
		return fmt.Errorf("insert peer %q: %w", e.PeerID, err)
	}
	for _, fp := range e.Fingerprints {
		if _, err := tx.ExecContext(ctx, `INSERT INTO peer_fingerprints (fingerprint, peer_id) VALUES (?, ?)`, fp, e.PeerID); err != nil {
			return fmt.Errorf("insert peer %q: %w", e.PeerID, err)
		}
	}
	return nil
}

// queryPeers reads one peer (id != "") or all of them. With skipBad, a row
// that does not decode is logged and skipped instead of failing the read,
// so that one hand-edited row cannot take every peer offline.
func queryPeers(ctx context.Context, tx *sql.Tx, id string, skipBad bool, log *slog.Logger) ([]Peer, error) {
	q := `SELECT peer_id, fingerprints, token_hash, scopes, resources, display_name, enabled, created_at, updated_at FROM peers`
	var args []any
	if id != "" {
		q += ` WHERE peer_id = ?`
		args = append(args, id)
	}
	rows, err := tx.QueryContext(ctx, q+` ORDER BY peer_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Peer
	for rows.Next() {
		var p Peer
		var fps, scopes, res string
		var created, updated int64
		if err := rows.Scan(&p.PeerID, &fps, &p.TokenHash, &scopes, &res, &p.DisplayName, &p.Enabled, &created, &updated); err != nil {
			return nil, err
		}
		err := errors.Join(
			json.Unmarshal([]byte(fps), &p.Fingerprints),
			json.Unmarshal([]byte(scopes), &p.Scopes),
			json.Unmarshal([]byte(res), &p.Resources),
		)
		if err != nil {
			if skipBad {
				log.Warn("skipping unreadable peer row", "peer", p.PeerID, "err", err)
				continue
			}
			return nil, fmt.Errorf("peer %q: unreadable row: %w", p.PeerID, err)
		}
		p.CreatedAt, p.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
		out = append(out, p)
	}
	return out, rows.Err()
}

var _ core.IdentityProvider = (*PeerStore)(nil)
