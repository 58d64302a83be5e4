package mix

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/alkdev/alknet/core/store"
)

// ReplayCache remembers the replay tags a node has seen, per epoch.
type ReplayCache interface {
	// Seen records tag for epoch and reports whether it was recorded
	// before. The record must be durable when Seen returns false, so that
	// a restart does not accept the packet again.
	Seen(ctx context.Context, epoch uint32, tag [TagSize]byte) (bool, error)
	// Forget drops the tags of every epoch before epoch.
	Forget(ctx context.Context, before uint32) error
}

// MemoryReplay is a ReplayCache in memory: it does not survive a restart.
type MemoryReplay struct {
	mu   sync.Mutex
	tags map[uint32]map[[TagSize]byte]struct{}
}

// NewMemoryReplay returns an empty in-memory cache.
func NewMemoryReplay() *MemoryReplay {
	return &MemoryReplay{tags: make(map[uint32]map[[TagSize]byte]struct{})}
}

// Seen implements ReplayCache.
func (m *MemoryReplay) Seen(_ context.Context, epoch uint32, tag [TagSize]byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.tags[epoch]
	if set == nil {
		set = make(map[[TagSize]byte]struct{})
		m.tags[epoch] = set
	}
	if _, ok := set[tag]; ok {
		return true, nil
	}
	set[tag] = struct{}{}
	return false, nil
}

// Forget implements ReplayCache.
func (m *MemoryReplay) Forget(_ context.Context, before uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for e := range m.tags {
		if e < before {
			delete(m.tags, e)
		}
	}
	return nil
}

// ReplayStore is a ReplayCache in the node database (table mix_replay), so
// that tags survive restarts. It keeps the tags of the current epochs in
// memory as well, so a replay is refused without a query.
type ReplayStore struct {
	db  *store.DB
	mem *MemoryReplay
}

const replaySchema = `
CREATE TABLE IF NOT EXISTS mix_replay (
	epoch INTEGER NOT NULL,
	tag   BLOB NOT NULL CHECK (length(tag) = 32),
	PRIMARY KEY (epoch, tag)
) WITHOUT ROWID;
`

// NewReplayStore creates the table if needed and returns the cache.
func NewReplayStore(ctx context.Context, db *store.DB) (*ReplayStore, error) {
	err := db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, replaySchema)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("alknet/mix: replay table: %w", err)
	}
	return &ReplayStore{db: db, mem: NewMemoryReplay()}, nil
}

// Seen implements ReplayCache: the tag is committed before Seen returns
// false.
func (s *ReplayStore) Seen(ctx context.Context, epoch uint32, tag [TagSize]byte) (bool, error) {
	if s.mem.has(epoch, tag) {
		return true, nil
	}
	var fresh bool
	err := s.db.Update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO mix_replay (epoch, tag) VALUES (?, ?)`, int64(epoch), tag[:])
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		fresh = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("alknet/mix: record replay tag: %w", err)
	}
	s.mem.addCapped(epoch, tag, replayMemoryCap)
	return !fresh, nil
}

// Forget implements ReplayCache.
func (s *ReplayStore) Forget(ctx context.Context, before uint32) error {
	_ = s.mem.Forget(ctx, before)
	return s.db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM mix_replay WHERE epoch < ?`, int64(before))
		return err
	})
}

// Count returns how many tags the database holds for epoch.
func (s *ReplayStore) Count(ctx context.Context, epoch uint32) (int, error) {
	var n int
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM mix_replay WHERE epoch = ?`, int64(epoch)).Scan(&n)
	})
	return n, err
}

// replayMemoryCap bounds the tags per epoch that ReplayStore also keeps in
// memory; beyond it the database alone answers.
const replayMemoryCap = 1 << 18

func (m *MemoryReplay) has(epoch uint32, tag [TagSize]byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.tags[epoch][tag]
	return ok
}

func (m *MemoryReplay) addCapped(epoch uint32, tag [TagSize]byte, limit int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.tags[epoch]
	if set == nil {
		set = make(map[[TagSize]byte]struct{})
		m.tags[epoch] = set
	}
	if len(set) < limit {
		set[tag] = struct{}{}
	}
}

var (
	_ ReplayCache = (*MemoryReplay)(nil)
	_ ReplayCache = (*ReplayStore)(nil)
)
