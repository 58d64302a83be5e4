package fs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"strings"
	"time"
)

// blobReader reads a stored blob: its data and outboard, and the groups
// present (all of them for a complete blob).
type blobReader struct {
	size     int64
	complete bool
	present  Ranges
	data, ob *os.File
	release  func()
}

func (b *blobReader) Close() error {
	if b.release != nil {
		b.release()
	}
	err := b.data.Close()
	if b.ob != nil {
		err = errors.Join(err, b.ob.Close())
	}
	return err
}

// openBlob opens hash for reading: a complete blob, or a partial one with
// the groups verified so far.
func (s *Store) openBlob(ctx context.Context, hash Hash) (*blobReader, error) {
	data, err := os.Open(s.blobPath(hash))
	if err == nil {
		st, err := data.Stat()
		if err != nil {
			_ = data.Close()
			return nil, err
		}
		b := &blobReader{size: st.Size(), complete: true, data: data, present: Ranges{{0, numGroups(st.Size())}}}
		if st.Size() > GroupSize {
			if b.ob, err = os.Open(s.outboardPath(hash)); err != nil {
				_ = data.Close()
				return nil, fmt.Errorf("%w: blob %s has no outboard", ErrCorrupt, hash)
			}
		}
		return b, nil
	}
	if !errors.Is(err, iofs.ErrNotExist) {
		return nil, err
	}
	return s.openPartialRead(ctx, hash)
}

// Stat returns what the store holds of hash, or ErrNotFound.
func (s *Store) Stat(ctx context.Context, hash Hash) (BlobStatus, error) {
	b, err := s.openBlob(ctx, hash)
	if err != nil {
		return BlobStatus{}, err
	}
	defer b.Close()
	last := numGroups(b.size) - 1
	return BlobStatus{Size: b.size, Complete: b.complete, Present: b.present, SizeVerified: b.complete || b.present.Contains(last)}, nil
}

// Open returns a reader of the complete blob hash and its size.
func (s *Store) Open(hash Hash) (*os.File, int64, error) {
	f, err := os.Open(s.blobPath(hash))
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, 0, fmt.Errorf("%w: blob %s", ErrNotFound, hash)
		}
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// ReadBlob returns the bytes of a complete blob of at most limit bytes.
func (s *Store) ReadBlob(hash Hash, limit int64) ([]byte, error) {
	f, size, err := s.Open(hash)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > limit {
		return nil, fmt.Errorf("%w: blob %s is %d bytes (limit %d)", ErrTooLarge, hash, size, limit)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return b, nil
}

// Info returns the index entry of a complete blob with its tags.
func (s *Store) Info(ctx context.Context, hash Hash) (BlobInfo, error) {
	var info BlobInfo
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		var created int64
		err := tx.QueryRowContext(ctx, `SELECT size, collection, created_at FROM fs_blobs WHERE hash = ?`, hash.String()).
			Scan(&info.Size, &info.Collection, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: blob %s", ErrNotFound, hash)
		}
		if err != nil {
			return err
		}
		info.Hash, info.Created = hash, time.UnixMilli(created)
		rows, err := tx.QueryContext(ctx, `SELECT name FROM fs_tags WHERE hash = ? ORDER BY name`, hash.String())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			info.Tags = append(info.Tags, n)
		}
		return rows.Err()
	})
	return info, err
}

// Blobs lists the complete blobs in the index, ordered by hash.
func (s *Store) Blobs(ctx context.Context) ([]BlobInfo, error) {
	var out []BlobInfo
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT b.hash, b.size, b.collection, b.created_at, coalesce(group_concat(t.name, char(10)), '')
			FROM fs_blobs b LEFT JOIN fs_tags t ON t.hash = b.hash GROUP BY b.hash ORDER BY b.hash`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var hs, tags string
			var created int64
			var info BlobInfo
			if err := rows.Scan(&hs, &info.Size, &info.Collection, &created, &tags); err != nil {
				return err
			}
			h, err := ParseHash(hs)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			info.Hash, info.Created = h, time.UnixMilli(created)
			if tags != "" {
				info.Tags = strings.Split(tags, "\n")
			}
			out = append(out, info)
		}
		return rows.Err()
	})
	return out, err
}
