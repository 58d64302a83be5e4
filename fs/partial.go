package fs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"sync"
	"time"
)

// partial is a blob being downloaded into the store: a sparse data file
// and an outboard under partial/, with the chunk groups verified so far.
// Only verified groups and parents are ever written to its files. The
// verified ranges are recorded in fs_partial at checkpoints; a later
// download re-verifies them against the hash before trusting them, so a
// crash that loses written pages (the files are not synced at checkpoints)
// costs a re-transfer, never a wrong blob.
type partial struct {
	s    *Store
	hash Hash
	lock *os.File // flock held while this process downloads the blob

	mu           sync.Mutex // guards the fields below for concurrent readers
	size         int64      // -1 until the first response
	sizeVerified bool       // the last group is present
	data, ob     *os.File
	have         bitmap
	count        uint64 // groups in have
	closed       bool

	// Owned by the downloading goroutine.
	dbuf     []byte // verified group data not yet written, at dstart
	dstart   int64
	obuf     []byte // verified parents not yet written, at ostart
	ostart   int64
	pending  []uint64 // groups in dbuf
	lastSave time.Time
	dirty    bool // have changed since the last checkpoint
	received int64
}

const partialFlush = 1 << 20

// beginDownload opens the partial download of hash for writing, loading
// and re-verifying what an earlier run left. Only one download of a blob
// runs at a time, across processes: a second gets ErrBusy.
func (s *Store) beginDownload(ctx context.Context, hash Hash) (*partial, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := s.partials[hash]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: blob %s is already being downloaded", ErrBusy, hash)
	}
	p := &partial{s: s, hash: hash, size: -1}
	s.partials[hash] = p
	s.mu.Unlock()
	if err := p.load(ctx); err != nil {
		p.release()
		return nil, err
	}
	return p, nil
}

func (p *partial) load(ctx context.Context) error {
	base := p.s.partialPath(p.hash)
	lock, err := os.OpenFile(base+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("alknet/fs: partial lock: %w", err)
	}
	if err := tryLock(lock); err != nil {
		_ = lock.Close()
		return fmt.Errorf("%w: blob %s is being downloaded by another process", ErrBusy, p.hash)
	}
	p.lock = lock
	size, have, err := p.s.partialRow(ctx, p.hash)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	data, err1 := os.OpenFile(base+".data", os.O_RDWR, 0)
	ob, err2 := os.OpenFile(base+".obao", os.O_RDWR, 0)
	if err1 != nil || err2 != nil {
		if data != nil {
			_ = data.Close()
		}
		if ob != nil {
			_ = ob.Close()
		}
		p.s.log.Warn("partial blob files missing; starting over", "hash", p.hash.String())
		return nil
	}
	good := verifyLocal(p.hash, size, data, ob, have)
	if good.Count() != have.Count() {
		p.s.log.Warn("partial blob: recorded groups failed verification; fetching them again",
			"hash", p.hash.String(), "recorded", have.Count(), "verified", good.Count())
	}
	p.size, p.data, p.ob = size, data, ob
	p.have = newBitmap(numGroups(size))
	p.have.setRanges(good)
	p.count = good.Count()
	p.sizeVerified = good.Contains(numGroups(size) - 1)
	p.dirty = good.Count() != have.Count()
	return nil
}

func (s *Store) partialRow(ctx context.Context, hash Hash) (int64, Ranges, error) {
	var size int64
	var raw []byte
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT size, have FROM fs_partial WHERE hash = ?`, hash.String()).Scan(&size, &raw)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, fmt.Errorf("%w: blob %s", ErrNotFound, hash)
	}
	if err != nil {
		return 0, nil, err
	}
	have, err := parseRanges(raw)
	if err != nil {
		return 0, nil, err
	}
	return size, have.Clamp(numGroups(size)), nil
}

// init creates the files for a blob of size bytes, dropping whatever an
// earlier run with another (unverified) size left.
func (p *partial) init(size int64) error {
	base := p.s.partialPath(p.hash)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.data != nil {
		_ = p.data.Close()
		_ = p.ob.Close()
	}
	p.data, p.ob = nil, nil
	data, err := os.OpenFile(base+".data", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("alknet/fs: partial blob: %w", err)
	}
	ob, err := os.OpenFile(base+".obao", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		_ = data.Close()
		return fmt.Errorf("alknet/fs: partial blob: %w", err)
	}
	var hdr [headerSize]byte
	putUint64LE(hdr[:], uint64(size))
	if err := errors.Join(data.Truncate(size), ob.Truncate(OutboardSize(size))); err != nil {
		_ = data.Close()
		_ = ob.Close()
		return fmt.Errorf("alknet/fs: partial blob: %w", err)
	}
	if _, err := ob.WriteAt(hdr[:], 0); err != nil {
		_ = data.Close()
		_ = ob.Close()
		return fmt.Errorf("alknet/fs: partial blob: %w", err)
	}
	p.size, p.data, p.ob = size, data, ob
	p.have = newBitmap(numGroups(size))
	p.count, p.sizeVerified = 0, false
	p.dbuf, p.obuf, p.pending = p.dbuf[:0], p.obuf[:0], p.pending[:0]
	p.dirty = true
	return nil
}

func putUint64LE(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

// missing returns the groups still to fetch; all of them (and the end,
// which proves the size) while the size is unknown.
func (p *partial) missing() Ranges {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.size < 0 {
		return Ranges{{0, 1 << 62}}
	}
	n := numGroups(p.size)
	return p.have.ranges(n).Complement(n)
}

func (p *partial) complete() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size >= 0 && p.count == numGroups(p.size)
}

// sliceSink, as the download's destination.

func (p *partial) setSize(n int64) error {
	p.mu.Lock()
	cur, verified := p.size, p.sizeVerified
	p.mu.Unlock()
	switch {
	case cur == n:
		return nil
	case cur >= 0 && verified:
		return fmt.Errorf("%w: node claims blob %s has %d bytes; its verified size is %d", ErrBadResponse, p.hash, n, cur)
	case cur >= 0:
		p.s.log.Warn("partial blob: size changed before it was verified; starting over", "hash", p.hash.String(), "was", cur, "now", n)
	}
	return p.init(n)
}

func (p *partial) parent(off int64, node []byte) error {
	if len(p.obuf) > 0 && (off != p.ostart+int64(len(p.obuf)) || len(p.obuf)+len(node) > partialFlush/4) {
		if err := p.flushOutboard(); err != nil {
			return err
		}
	}
	if len(p.obuf) == 0 {
		p.ostart = off
	}
	p.obuf = append(p.obuf, node...)
	return nil
}

// groupBuf implements groupBuffer: the group at pos is read right after
// the buffered ones when it follows them, so it reaches the file in the
// same write without a copy.
func (p *partial) groupBuf(pos int64) ([]byte, error) {
	if p.dbuf == nil {
		p.dbuf = make([]byte, 0, partialFlush+GroupSize)
	}
	if len(p.dbuf) > 0 && (pos != p.dstart+int64(len(p.dbuf)) || len(p.dbuf) >= partialFlush) {
		if err := p.flush(); err != nil {
			return nil, err
		}
	}
	if len(p.dbuf) == 0 {
		p.dstart = pos
	}
	return p.dbuf[len(p.dbuf) : len(p.dbuf)+GroupSize], nil
}

func (p *partial) group(pos int64, data []byte) error {
	if len(p.dbuf) == 0 || pos != p.dstart+int64(len(p.dbuf)) || len(data) > cap(p.dbuf)-len(p.dbuf) ||
		&data[:1][0] != &p.dbuf[:len(p.dbuf)+1][len(p.dbuf)] {
		// Not the buffer groupBuf handed out: copy.
		b, err := p.groupBuf(pos)
		if err != nil {
			return err
		}
		copy(b, data)
	}
	p.dbuf = p.dbuf[:len(p.dbuf)+len(data)]
	p.pending = append(p.pending, uint64(pos)/GroupSize)
	p.received += int64(len(data))
	return nil
}

func (p *partial) flushOutboard() error {
	if len(p.obuf) == 0 {
		return nil
	}
	if _, err := p.ob.WriteAt(p.obuf, p.ostart); err != nil {
		return fmt.Errorf("alknet/fs: write partial outboard: %w", err)
	}
	p.obuf = p.obuf[:0]
	return nil
}

// flush writes the buffered parents, then the buffered groups, and only
// then marks the groups present.
func (p *partial) flush() error {
	if err := p.flushOutboard(); err != nil {
		return err
	}
	if len(p.dbuf) > 0 {
		if _, err := p.data.WriteAt(p.dbuf, p.dstart); err != nil {
			return fmt.Errorf("alknet/fs: write partial blob: %w", err)
		}
		startWriteback(p.data, p.dstart, int64(len(p.dbuf)))
		p.dbuf = p.dbuf[:0]
	}
	if len(p.pending) == 0 {
		return nil
	}
	p.mu.Lock()
	last := numGroups(p.size) - 1
	for _, g := range p.pending {
		if !p.have.has(g) {
			p.have.set(g)
			p.count++
		}
		if g == last {
			p.sizeVerified = true
		}
	}
	p.mu.Unlock()
	p.pending = p.pending[:0]
	p.dirty = true
	return nil
}

// maybeCheckpoint records progress when the checkpoint interval has passed.
func (p *partial) maybeCheckpoint(ctx context.Context) error {
	iv := p.s.cfg.CheckpointInterval
	if iv < 0 || time.Since(p.lastSave) < iv {
		return nil
	}
	return p.checkpoint(ctx)
}

// checkpoint writes what is buffered and records the verified ranges.
func (p *partial) checkpoint(ctx context.Context) error {
	if err := p.flush(); err != nil {
		return err
	}
	p.lastSave = time.Now()
	if !p.dirty || p.size < 0 {
		return nil
	}
	p.mu.Lock()
	have := p.have.ranges(numGroups(p.size))
	size := p.size
	p.mu.Unlock()
	err := p.s.db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO fs_partial (hash, size, have, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (hash) DO UPDATE SET size = excluded.size, have = excluded.have, updated_at = excluded.updated_at`,
			p.hash.String(), size, appendRanges(nil, have), nowMillis())
		return err
	})
	if err != nil {
		return fmt.Errorf("alknet/fs: record partial blob: %w", err)
	}
	p.dirty = false
	return nil
}

// finish moves a complete download into the store.
func (p *partial) finish(ctx context.Context, tag string, collection bool, members []Hash) (BlobInfo, error) {
	if err := p.flush(); err != nil {
		return BlobInfo{}, err
	}
	if !p.complete() {
		return BlobInfo{}, fmt.Errorf("%w: blob %s", ErrIncomplete, p.hash)
	}
	if err := p.data.Sync(); err != nil {
		return BlobInfo{}, fmt.Errorf("alknet/fs: sync: %w", err)
	}
	if p.size > GroupSize {
		if err := p.ob.Sync(); err != nil {
			return BlobInfo{}, fmt.Errorf("alknet/fs: sync: %w", err)
		}
	}
	tmp := &tempBlob{data: p.data, ob: p.ob, size: p.size}
	info, err := p.s.commit(ctx, p.hash, p.size, tmp, tag, collection, members)
	if err != nil {
		return BlobInfo{}, err
	}
	// The rows of the partial go after the blob's: a crash in between
	// leaves a complete blob and a stale partial row that GC clears.
	_ = p.s.db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM fs_partial WHERE hash = ?`, p.hash.String())
		return err
	})
	p.mu.Lock()
	_ = p.data.Close()
	_ = p.ob.Close()
	p.data, p.ob = nil, nil
	p.closed = true
	p.mu.Unlock()
	base := p.s.partialPath(p.hash)
	_ = os.Remove(base + ".data")
	_ = os.Remove(base + ".obao")
	_ = os.Remove(base + ".lock")
	p.release()
	return info, nil
}

// Close records progress and releases the download.
func (p *partial) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if p.data != nil {
		err = p.checkpoint(ctx)
	}
	p.mu.Lock()
	p.closed = true
	if p.data != nil {
		err = errors.Join(err, p.data.Close(), p.ob.Close())
		p.data, p.ob = nil, nil
	}
	p.mu.Unlock()
	p.release()
	return err
}

func (p *partial) release() {
	if p.lock != nil {
		_ = p.lock.Close()
		p.lock = nil
	}
	p.s.mu.Lock()
	if p.s.partials[p.hash] == p {
		delete(p.s.partials, p.hash)
	}
	p.s.mu.Unlock()
}

// openPartialRead opens a partial blob for reading with the groups
// verified so far: from the download running in this process, or from the
// last checkpoint of one elsewhere.
func (s *Store) openPartialRead(ctx context.Context, hash Hash) (*blobReader, error) {
	s.mu.Lock()
	p := s.partials[hash]
	s.mu.Unlock()
	var size int64
	var have Ranges
	if p != nil {
		p.mu.Lock()
		size = p.size
		if size >= 0 {
			have = p.have.ranges(numGroups(size))
		}
		p.mu.Unlock()
		if size < 0 {
			return nil, fmt.Errorf("%w: blob %s", ErrNotFound, hash)
		}
	} else {
		var err error
		if size, have, err = s.partialRow(ctx, hash); err != nil {
			return nil, err
		}
	}
	base := s.partialPath(hash)
	data, err := os.Open(base + ".data")
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, fmt.Errorf("%w: blob %s", ErrNotFound, hash)
		}
		return nil, err
	}
	ob, err := os.Open(base + ".obao")
	if err != nil {
		_ = data.Close()
		return nil, fmt.Errorf("%w: blob %s", ErrNotFound, hash)
	}
	return &blobReader{size: size, present: have, data: data, ob: ob}, nil
}

// Partials lists the partial downloads recorded in the index.
func (s *Store) Partials(ctx context.Context) ([]PartialInfo, error) {
	var out []PartialInfo
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT hash, size, have, updated_at FROM fs_partial ORDER BY hash`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var hs string
			var raw []byte
			var pi PartialInfo
			var upd int64
			if err := rows.Scan(&hs, &pi.Size, &raw, &upd); err != nil {
				return err
			}
			h, err := ParseHash(hs)
			if err != nil {
				continue
			}
			have, err := parseRanges(raw)
			if err != nil {
				continue
			}
			pi.Hash, pi.Updated = h, time.UnixMilli(upd)
			pi.Present = min(int64(have.Count())*GroupSize, pi.Size)
			out = append(out, pi)
		}
		return rows.Err()
	})
	return out, err
}

// PartialInfo describes an interrupted download.
type PartialInfo struct {
	Hash    Hash      `json:"hash"`
	Size    int64     `json:"size"`
	Present int64     `json:"present"` // verified bytes (approximate for the last group)
	Updated time.Time `json:"updated"`
}
