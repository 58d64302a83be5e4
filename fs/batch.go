package fs

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
)

// Small blobs are added in batches: each is hashed into a temporary file,
// then the batch is made durable with one file-system sync and committed
// in one transaction. A directory of many small files then costs a few
// flushes, not two per file.
const (
	batchMaxItems = 256
	batchMaxBytes = 16 << 20
	// smallBlob is the largest blob taken through a batch (and fetched in
	// one piece, without a partial download).
	smallBlob = 256 << 10
)

type batchItem struct {
	tmp     *tempBlob
	hash    Hash
	size    int64
	members []Hash
	coll    bool
}

// batch is a set of encoded, unsynced blobs waiting for commit.
type batch struct {
	s     *Store
	items []batchItem
	bytes int64
}

func (s *Store) newBatch() *batch { return &batch{s: s} }

// add encodes size bytes of r into a temporary file of the batch.
func (b *batch) add(r io.Reader, size int64) (Hash, error) {
	tmp, err := b.s.newTemp()
	if err != nil {
		return Hash{}, err
	}
	h, err := tmp.encode(r, size, tmp.data)
	if err != nil {
		tmp.remove()
		return Hash{}, err
	}
	b.items = append(b.items, batchItem{tmp: tmp, hash: h, size: size})
	b.bytes += size
	return h, nil
}

func (b *batch) full() bool { return len(b.items) >= batchMaxItems || b.bytes >= batchMaxBytes }

// discard removes the batch's temporary files.
func (b *batch) discard() {
	for _, it := range b.items {
		it.tmp.remove()
	}
	b.items, b.bytes = nil, 0
}

// commit syncs the batch and adds every blob in one transaction.
func (b *batch) commit(ctx context.Context) error {
	if len(b.items) == 0 {
		return nil
	}
	defer b.discard()
	files := make([]*os.File, 0, 2*len(b.items))
	for _, it := range b.items {
		files = append(files, it.tmp.data)
		if it.size > GroupSize {
			files = append(files, it.tmp.ob)
		}
	}
	if err := syncAll(files); err != nil {
		return fmt.Errorf("alknet/fs: sync: %w", err)
	}
	now := nowMillis()
	err := b.s.db.Update(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO fs_blobs (hash, size, collection, created_at, touched_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (hash) DO UPDATE SET touched_at = excluded.touched_at, collection = max(collection, excluded.collection)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, it := range b.items {
			if !b.s.Has(it.hash) {
				if err := it.tmp.install(b.s, it.hash); err != nil {
					return err
				}
			}
			if _, err := st.ExecContext(ctx, it.hash.String(), it.size, it.coll, now, now); err != nil {
				return fmt.Errorf("index blob: %w", err)
			}
			if err := insertMembers(ctx, tx, it.hash, it.members); err != nil {
				return err
			}
		}
		return b.s.db.Notify(ctx, tx, Channel, fmt.Sprintf("put %d blobs", len(b.items)))
	})
	if err != nil {
		return fmt.Errorf("alknet/fs: add blobs: %w", err)
	}
	return nil
}

func syncEach(files []*os.File) error {
	for _, f := range files {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// addFile adds the file at p to the batch; it must not change while read.
func (b *batch) addFile(p string) (Hash, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return Hash{}, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Hash{}, 0, err
	}
	r := bufio.NewReaderSize(f, int(min(max(st.Size(), 16), smallBlob+1)))
	h, err := b.add(r, st.Size())
	if err != nil {
		return Hash{}, 0, fmt.Errorf("%s: %w", p, err)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		b.items[len(b.items)-1].tmp.remove()
		b.items = b.items[:len(b.items)-1]
		return Hash{}, 0, fmt.Errorf("%w: %s grew while it was read", ErrSizeMismatch, p)
	}
	return h, st.Size(), nil
}
