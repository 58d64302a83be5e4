package fs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MaxTagLength is the longest tag name, in bytes.
const MaxTagLength = 255

// ValidateTag checks a tag name: 1 to 255 bytes of letters, digits and
// "._-/:@+", not starting with "-" or "/".
func ValidateTag(name string) error {
	if name == "" || len(name) > MaxTagLength {
		return fmt.Errorf("%w: %d bytes (1 to %d)", ErrBadTag, len(name), MaxTagLength)
	}
	if name[0] == '-' || name[0] == '/' {
		return fmt.Errorf("%w: %q starts with %q", ErrBadTag, name, name[:1])
	}
	for _, c := range []byte(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("._-/:@+", c) >= 0:
		default:
			return fmt.Errorf("%w: %q holds %q", ErrBadTag, name, c)
		}
	}
	return nil
}

// Tag is a name for a blob; tagged blobs (and the members of tagged
// collections) survive GC.
type Tag struct {
	Name       string    `json:"name"`
	Hash       Hash      `json:"hash"`
	Size       int64     `json:"size"`
	Collection bool      `json:"collection"`
	Created    time.Time `json:"created"`
}

func putTag(ctx context.Context, tx *sql.Tx, name string, hash Hash, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO fs_tags (name, hash, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at`, name, hash.String(), now)
	if err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	return nil
}

// Tag points name at hash, replacing what it named before. The store must
// hold the blob, completely or partially.
func (s *Store) Tag(ctx context.Context, name string, hash Hash) error {
	if err := ValidateTag(name); err != nil {
		return err
	}
	return s.db.Update(ctx, func(tx *sql.Tx) error {
		var n int
		err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM fs_blobs WHERE hash = ?1) + (SELECT count(*) FROM fs_partial WHERE hash = ?1)`,
			hash.String()).Scan(&n)
		if err != nil {
			return err
		}
		if n == 0 && !s.Has(hash) {
			return fmt.Errorf("%w: blob %s", ErrNotFound, hash)
		}
		if err := putTag(ctx, tx, name, hash, nowMillis()); err != nil {
			return err
		}
		return s.db.Notify(ctx, tx, Channel, "tag "+name)
	})
}

// Untag removes the tag name; ErrNotFound when there is none.
func (s *Store) Untag(ctx context.Context, name string) error {
	if err := ValidateTag(name); err != nil {
		return err
	}
	return s.db.Update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM fs_tags WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: tag %q", ErrNotFound, name)
		}
		return s.db.Notify(ctx, tx, Channel, "untag "+name)
	})
}

// Tags lists the tags ordered by name, with the size and kind of the blob
// each names (size -1 when the store does not hold it completely).
func (s *Store) Tags(ctx context.Context) ([]Tag, error) {
	var out []Tag
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT t.name, t.hash, coalesce(b.size, -1), coalesce(b.collection, 0), t.created_at
			FROM fs_tags t LEFT JOIN fs_blobs b ON b.hash = t.hash ORDER BY t.name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t Tag
			var hs string
			var created int64
			if err := rows.Scan(&t.Name, &hs, &t.Size, &t.Collection, &created); err != nil {
				return err
			}
			h, err := ParseHash(hs)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			t.Hash, t.Created = h, time.UnixMilli(created)
			out = append(out, t)
		}
		return rows.Err()
	})
	return out, err
}

// GCOptions are the options of Store.GC.
type GCOptions struct {
	// Grace keeps blobs added (or added again) within this long. Zero
	// means DefaultGrace; negative keeps none.
	Grace time.Duration
	// Partial also removes partial downloads not touched within Grace.
	Partial bool
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
}

// GCResult says what GC removed.
type GCResult struct {
	Blobs    int   `json:"blobs"`
	Bytes    int64 `json:"bytes"`
	Partials int   `json:"partials"`
	Orphans  int   `json:"orphans"` // files without an index entry
}

// GC removes the blobs that no tag names and no tagged collection lists,
// except those added within the grace period, and the files of puts that
// never finished. Removal runs inside the write transaction, so a put of
// the same blob waits for it and then adds the blob anew.
func (s *Store) GC(ctx context.Context, o GCOptions) (GCResult, error) {
	grace := o.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	// Everything last touched at or before cutoff may go.
	cutoff := time.Now().Add(-max(grace, 0))
	var res GCResult
	err := s.db.Update(ctx, func(tx *sql.Tx) error {
		res = GCResult{}
		rows, err := tx.QueryContext(ctx, `
			WITH live(hash) AS (
				SELECT hash FROM fs_tags
				UNION SELECT m.member FROM fs_members m JOIN fs_tags t ON t.hash = m.collection
			)
			SELECT hash, size FROM fs_blobs WHERE touched_at <= ? AND hash NOT IN (SELECT hash FROM live)`, cutoff.UnixMilli())
		if err != nil {
			return err
		}
		type dead struct {
			hash Hash
			size int64
		}
		var victims []dead
		for rows.Next() {
			var hs string
			var d dead
			if err := rows.Scan(&hs, &d.size); err != nil {
				rows.Close()
				return err
			}
			if d.hash, err = ParseHash(hs); err != nil {
				rows.Close()
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			victims = append(victims, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range victims {
			res.Blobs++
			res.Bytes += d.size
			if o.DryRun {
				continue
			}
			if err := s.removeBlobFiles(d.hash); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM fs_blobs WHERE hash = ?`, d.hash.String()); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM fs_members WHERE collection = ?`, d.hash.String()); err != nil {
				return err
			}
		}
		if o.Partial {
			n, err := s.gcPartials(ctx, tx, cutoff, o.DryRun)
			if err != nil {
				return err
			}
			res.Partials = n
		}
		if res.Orphans, err = s.gcOrphans(ctx, tx, cutoff, o.DryRun); err != nil {
			return err
		}
		if o.DryRun || res.Blobs+res.Partials+res.Orphans == 0 {
			return nil
		}
		return s.db.Notify(ctx, tx, Channel, "gc")
	})
	if err != nil {
		return GCResult{}, fmt.Errorf("alknet/fs: gc: %w", err)
	}
	if res.Blobs+res.Partials+res.Orphans > 0 {
		s.log.Info("fs gc", "blobs", res.Blobs, "bytes", res.Bytes, "partials", res.Partials, "orphans", res.Orphans, "dry_run", o.DryRun)
	}
	return res, nil
}

func (s *Store) removeBlobFiles(h Hash) error {
	for _, p := range []string{s.blobPath(h), s.outboardPath(h)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// gcPartials removes partial downloads not updated since cutoff and not
// open in this process.
func (s *Store) gcPartials(ctx context.Context, tx *sql.Tx, cutoff time.Time, dry bool) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT hash FROM fs_partial WHERE updated_at <= ?`, cutoff.UnixMilli())
	if err != nil {
		return 0, err
	}
	var hs []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return 0, err
		}
		hs = append(hs, h)
	}
	rows.Close()
	n := 0
	for _, x := range hs {
		h, err := ParseHash(x)
		if err != nil {
			continue
		}
		s.mu.Lock()
		_, open := s.partials[h]
		s.mu.Unlock()
		if open {
			continue
		}
		n++
		if dry {
			continue
		}
		base := s.partialPath(h)
		_ = os.Remove(base + ".data")
		_ = os.Remove(base + ".obao")
		if _, err := tx.ExecContext(ctx, `DELETE FROM fs_partial WHERE hash = ?`, x); err != nil {
			return n, err
		}
	}
	return n, nil
}

// gcOrphans removes files older than cutoff that no index row accounts
// for: temporary files of puts killed before they finished, and blob files
// whose index row never committed.
func (s *Store) gcOrphans(ctx context.Context, tx *sql.Tx, cutoff time.Time, dry bool) (int, error) {
	n := 0
	old := func(e iofs.DirEntry) bool {
		info, err := e.Info()
		return err == nil && !info.ModTime().After(cutoff)
	}
	tmps, _ := os.ReadDir(filepath.Join(s.dir, "tmp"))
	for _, e := range tmps {
		if old(e) {
			n++
			if !dry {
				_ = os.Remove(filepath.Join(s.dir, "tmp", e.Name()))
			}
		}
	}
	known := func(table, h string) (bool, error) {
		var c int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE hash = ?`, h).Scan(&c)
		return c > 0, err
	}
	parts, _ := os.ReadDir(filepath.Join(s.dir, "partial"))
	for _, e := range parts {
		h := strings.TrimSuffix(strings.TrimSuffix(e.Name(), ".data"), ".obao")
		if _, err := ParseHash(h); err != nil || !old(e) {
			continue
		}
		ok, err := known("fs_partial", h)
		if err != nil {
			return n, err
		}
		if !ok {
			n++
			if !dry {
				_ = os.Remove(filepath.Join(s.dir, "partial", e.Name()))
			}
		}
	}
	dirs, _ := os.ReadDir(s.dir)
	for _, d := range dirs {
		if !d.IsDir() || len(d.Name()) != 2 {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(s.dir, d.Name()))
		for _, e := range files {
			h := strings.TrimSuffix(e.Name(), ".obao")
			if _, err := ParseHash(h); err != nil || !old(e) {
				continue
			}
			ok, err := known("fs_blobs", h)
			if err != nil {
				return n, err
			}
			if !ok {
				n++
				if !dry {
					_ = os.Remove(filepath.Join(s.dir, d.Name(), e.Name()))
				}
			}
		}
	}
	return n, nil
}

// Drop removes the blob hash from the store unless a tag names it or a
// collection lists it; when it is a collection, its member list goes
// with it, and so does every member no tag or other collection keeps. It
// returns the number of blobs removed. Drop is for blobs fetched only to be
// written out (alknet fs get); GC is the general sweep.
func (s *Store) Drop(ctx context.Context, hash Hash) (int, error) {
	n := 0
	err := s.db.Update(ctx, func(tx *sql.Tx) error {
		n = 0
		keep := func(h string) (bool, error) {
			var c int
			err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM fs_tags WHERE hash = ?1) + (SELECT count(*) FROM fs_members WHERE member = ?1)`, h).Scan(&c)
			return c > 0, err
		}
		remove := func(h string) error {
			hh, err := ParseHash(h)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			if err := s.removeBlobFiles(hh); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM fs_blobs WHERE hash = ?`, h)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k > 0 {
				n++
			}
			return nil
		}
		root := hash.String()
		if k, err := keep(root); err != nil || k {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT member FROM fs_members WHERE collection = ?`, root)
		if err != nil {
			return err
		}
		var members []string
		for rows.Next() {
			var m string
			if err := rows.Scan(&m); err != nil {
				rows.Close()
				return err
			}
			members = append(members, m)
		}
		rows.Close()
		if _, err := tx.ExecContext(ctx, `DELETE FROM fs_members WHERE collection = ?`, root); err != nil {
			return err
		}
		if err := remove(root); err != nil {
			return err
		}
		for _, m := range members {
			if k, err := keep(m); err != nil {
				return err
			} else if !k {
				if err := remove(m); err != nil {
					return err
				}
			}
		}
		if n == 0 {
			return nil
		}
		return s.db.Notify(ctx, tx, Channel, "drop "+root)
	})
	if err != nil {
		return 0, fmt.Errorf("alknet/fs: drop %s: %w", hash, err)
	}
	return n, nil
}
