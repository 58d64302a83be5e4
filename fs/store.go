package fs

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/alkdev/alknet/core/store"
)

// Channel is the notification channel of the store's tables in the node
// database; the payload says what changed.
const Channel = "fs"

// DefaultGrace is how long GC keeps a blob after it was last added, when
// GCOptions.Grace is zero: a put and the tag that follows it are two steps.
const DefaultGrace = 10 * time.Minute

// StoreConfig configures a Store.
type StoreConfig struct {
	// Dir is the blob directory, usually <data>/blobs. Required; it is
	// created (0700) when missing.
	Dir string
	// DB is the node database, usually <data>/alknet.db; the store keeps
	// its index there (tables fs_*). Required. The store does not close it.
	DB *store.DB
	// Logger receives what the store repairs or removes. Nil is silent.
	Logger *slog.Logger
	// CheckpointInterval is how often a download records the ranges it has
	// verified, so an interrupted one resumes from there. Zero means one
	// second; negative records only at the end of each request.
	CheckpointInterval time.Duration
}

// Store is a content-addressed blob store: each blob is a file named by its
// BLAKE3 hash with a Bao outboard beside it, indexed in SQLite with its
// size, tags and collection membership. Writes go to temporary files that
// are renamed into place only when complete and verified, so a crash never
// leaves a visible partial blob. Interrupted downloads are kept as partial
// blobs with their verified ranges. A Store is safe for concurrent use, and
// several processes may share one directory and database.
type Store struct {
	cfg StoreConfig
	dir string
	db  *store.DB
	log *slog.Logger

	mu       sync.Mutex
	partials map[Hash]*partial // downloads open in this process
	closed   bool
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Hash       Hash      `json:"hash"`
	Size       int64     `json:"size"`
	Collection bool      `json:"collection"`
	Created    time.Time `json:"created"`
	Tags       []string  `json:"tags,omitempty"`
}

// BlobStatus is what the store holds of a blob: all of it, some verified
// chunk groups of it (a partial download), or nothing (ErrNotFound).
type BlobStatus struct {
	Size     int64
	Complete bool
	// Present lists the verified chunk groups; all groups when Complete.
	Present Ranges
	// SizeVerified is false for a partial blob whose last group has not
	// arrived yet: its size is what the node that sent it claimed.
	SizeVerified bool
}

const schemaVersion = 1

const schema = `
CREATE TABLE IF NOT EXISTS fs_schema (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fs_blobs (
	hash       TEXT PRIMARY KEY NOT NULL CHECK (length(hash) = 64),
	size       INTEGER NOT NULL CHECK (size >= 0),
	collection INTEGER NOT NULL DEFAULT 0 CHECK (collection IN (0, 1)),
	created_at INTEGER NOT NULL,
	touched_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fs_partial (
	hash       TEXT PRIMARY KEY NOT NULL CHECK (length(hash) = 64),
	size       INTEGER NOT NULL CHECK (size >= 0),
	have       BLOB NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fs_tags (
	name       TEXT PRIMARY KEY NOT NULL,
	hash       TEXT NOT NULL CHECK (length(hash) = 64),
	created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS fs_tags_hash ON fs_tags (hash);
CREATE TABLE IF NOT EXISTS fs_members (
	collection TEXT NOT NULL,
	member     TEXT NOT NULL,
	PRIMARY KEY (collection, member)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fs_members_member ON fs_members (member);
INSERT OR IGNORE INTO fs_schema (id, version) VALUES (1, 1);
`

// OpenStore opens the store described by cfg, creating its directories
// and tables when missing.
func OpenStore(ctx context.Context, cfg StoreConfig) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("alknet/fs: StoreConfig.Dir is required")
	}
	if cfg.DB == nil {
		return nil, errors.New("alknet/fs: StoreConfig.DB is required")
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("alknet/fs: blob directory: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "tmp"), filepath.Join(dir, "partial")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("alknet/fs: create %s: %w", d, err)
		}
	}
	err = cfg.DB.Update(ctx, func(tx *sql.Tx) error {
		var v int
		err := tx.QueryRowContext(ctx, `SELECT version FROM fs_schema WHERE id = 1`).Scan(&v)
		if err == nil && v > schemaVersion {
			return fmt.Errorf("alknet/fs: index schema version %d is newer than this program's %d", v, schemaVersion)
		}
		_, err = tx.ExecContext(ctx, schema)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("alknet/fs: create index: %w", err)
	}
	return &Store{cfg: cfg, dir: dir, db: cfg.DB, log: log, partials: map[Hash]*partial{}}, nil
}

// Dir returns the absolute blob directory.
func (s *Store) Dir() string { return s.dir }

// Close closes the partial downloads still open. It does not close the
// database.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	ps := make([]*partial, 0, len(s.partials))
	for _, p := range s.partials {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

func (s *Store) blobPath(h Hash) string {
	x := h.String()
	return filepath.Join(s.dir, x[:2], x)
}

func (s *Store) outboardPath(h Hash) string { return s.blobPath(h) + ".obao" }

func (s *Store) partialPath(h Hash) string { return filepath.Join(s.dir, "partial", h.String()) }

func nowMillis() int64 { return time.Now().UnixMilli() }

// Has reports whether the store holds all of hash.
func (s *Store) Has(hash Hash) bool {
	_, err := os.Stat(s.blobPath(hash))
	return err == nil
}

// PutOptions are the options of Store.Put.
type PutOptions struct {
	// Tag names the blob (see Store.Tag) in the same transaction that adds
	// it; empty adds it untagged.
	Tag string
	// Collection marks the blob as a collection: it must decode as one
	// (DecodeCollection), and its members are recorded so GC keeps them
	// while the collection is kept.
	Collection bool
	// Expect, when not zero, is the hash the data must have; otherwise
	// the put fails with a *MismatchError and stores nothing.
	Expect Hash
	// Progress, when set, is called with the bytes read so far.
	Progress func(n int64)

	atEnd func() error // checks the source once size bytes are read
}

// Put adds size bytes read from r (size < 0: until EOF) and returns the
// blob's description. The data goes to a temporary file, hashed and given
// its outboard as it is written, and is renamed into place only when
// complete, after an fsync. Adding a blob the store already holds is cheap
// and refreshes its GC grace.
func (s *Store) Put(ctx context.Context, r io.Reader, size int64, o PutOptions) (BlobInfo, error) {
	if o.Tag != "" {
		if err := ValidateTag(o.Tag); err != nil {
			return BlobInfo{}, err
		}
	}
	tmp, err := s.newTemp()
	if err != nil {
		return BlobInfo{}, err
	}
	defer tmp.remove()
	if o.Progress != nil {
		r = &progressReader{r: r, fn: o.Progress}
	}
	if ctx.Done() != nil {
		r = &ctxReader{ctx: ctx, r: r}
	}
	var hash Hash
	if size < 0 {
		// Unknown size: spool the data, then encode it from the spool.
		n, err := io.CopyBuffer(tmp.data, r, make([]byte, 256<<10))
		if err != nil {
			return BlobInfo{}, err
		}
		size = n
		if hash, err = tmp.encode(io.NewSectionReader(tmp.data, 0, n), n, io.Discard); err != nil {
			return BlobInfo{}, err
		}
	} else {
		w := bufio.NewWriterSize(&writebackWriter{f: tmp.data}, 1<<20)
		if hash, err = tmp.encode(r, size, w); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: data ended before %d bytes", ErrSizeMismatch, size)
			}
			return BlobInfo{}, err
		}
		if err := w.Flush(); err != nil {
			return BlobInfo{}, err
		}
	}
	if o.atEnd != nil {
		if err := o.atEnd(); err != nil {
			return BlobInfo{}, err
		}
	}
	if !o.Expect.IsZero() && hash != o.Expect {
		return BlobInfo{}, &MismatchError{Hash: o.Expect, Offset: 0, Length: size}
	}
	var members []Hash
	if o.Collection {
		c, err := readCollection(tmp.data, size)
		if err != nil {
			return BlobInfo{}, err
		}
		members = c.hashes()
	}
	if !s.Has(hash) { // a blob the store holds needs no second copy on disk
		if err := tmp.sync(); err != nil {
			return BlobInfo{}, err
		}
	}
	return s.commit(ctx, hash, size, tmp, o.Tag, o.Collection, members)
}

// commit moves a complete, synced blob into place (unless the store holds
// it already) and records it, its tag and its members in one transaction.
func (s *Store) commit(ctx context.Context, hash Hash, size int64, tmp *tempBlob, tag string, collection bool, members []Hash) (BlobInfo, error) {
	now := nowMillis()
	info := BlobInfo{Hash: hash, Size: size, Collection: collection}
	err := s.db.Update(ctx, func(tx *sql.Tx) error {
		if !s.Has(hash) {
			if tmp == nil {
				return fmt.Errorf("%w: blob %s", ErrNotFound, hash)
			}
			if err := tmp.install(s, hash); err != nil {
				return err
			}
		}
		var created int64
		err := tx.QueryRowContext(ctx, `INSERT INTO fs_blobs (hash, size, collection, created_at, touched_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (hash) DO UPDATE SET touched_at = excluded.touched_at, collection = max(collection, excluded.collection)
			RETURNING created_at, collection`,
			hash.String(), size, collection, now, now).Scan(&created, &info.Collection)
		if err != nil {
			return fmt.Errorf("index blob: %w", err)
		}
		info.Created = time.UnixMilli(created)
		if err := insertMembers(ctx, tx, hash, members); err != nil {
			return err
		}
		if tag != "" {
			if err := putTag(ctx, tx, tag, hash, now); err != nil {
				return err
			}
			info.Tags = []string{tag}
		}
		return s.db.Notify(ctx, tx, Channel, "put "+hash.String())
	})
	if err != nil {
		return BlobInfo{}, fmt.Errorf("alknet/fs: add blob: %w", err)
	}
	return info, nil
}

// adopt records a blob the store already holds completely with a tag
// and, when collection is set, as a collection (it must decode as one).
func (s *Store) adopt(ctx context.Context, hash Hash, tag string, collection bool) (BlobInfo, error) {
	f, size, err := s.Open(hash)
	if err != nil {
		return BlobInfo{}, err
	}
	defer f.Close()
	var members []Hash
	if collection {
		c, err := readCollection(f, size)
		if err != nil {
			return BlobInfo{}, err
		}
		members = c.hashes()
	}
	if tag == "" && !collection {
		if info, err := s.Info(ctx, hash); err == nil {
			return info, nil
		}
	}
	return s.commit(ctx, hash, size, nil, tag, collection, members)
}

func insertMembers(ctx context.Context, tx *sql.Tx, coll Hash, members []Hash) error {
	if len(members) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO fs_members (collection, member) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	c := coll.String()
	for _, m := range members {
		if _, err := st.ExecContext(ctx, c, m.String()); err != nil {
			return fmt.Errorf("index collection member: %w", err)
		}
	}
	return nil
}

// ImportFile adds the file at path. The file must not change while it is
// read: one that ends early or turns out longer fails the import and
// stores nothing.
func (s *Store) ImportFile(ctx context.Context, path string, o PutOptions) (BlobInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return BlobInfo{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return BlobInfo{}, err
	}
	if !st.Mode().IsRegular() {
		return BlobInfo{}, fmt.Errorf("alknet/fs: %s is not a regular file", path)
	}
	return s.importFrom(ctx, bufio.NewReaderSize(f, 1<<20), st.Size(), path, o)
}

// importFrom adds the size bytes of r, which must end right there.
func (s *Store) importFrom(ctx context.Context, r *bufio.Reader, size int64, name string, o PutOptions) (BlobInfo, error) {
	o.atEnd = func() error {
		if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %s grew while it was read", ErrSizeMismatch, name)
		}
		return nil
	}
	info, err := s.Put(ctx, r, size, o)
	if errors.Is(err, ErrSizeMismatch) && !strings.Contains(err.Error(), "grew") {
		err = fmt.Errorf("%w: %s shrank while it was read", ErrSizeMismatch, name)
	}
	return info, err
}

// tempBlob is a put in progress: a data and an outboard file in tmp/.
type tempBlob struct {
	data, ob *os.File
	obMem    memWriterAt // outboards up to maxMemOutboard are built in memory
	size     int64
}

// maxMemOutboard bounds the outboard built in memory (64 MiB covers a
// 16 GiB blob); larger ones are written to their file node by node.
const maxMemOutboard = 64 << 20

func (s *Store) newTemp() (*tempBlob, error) {
	var rb [8]byte
	_, _ = rand.Read(rb[:])
	base := filepath.Join(s.dir, "tmp", "put-"+hex.EncodeToString(rb[:]))
	data, err := os.OpenFile(base+".data", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("alknet/fs: temporary file: %w", err)
	}
	return &tempBlob{data: data}, nil
}

// encode hashes size bytes of r, copying them to w, and writes the
// outboard to a file beside the data when the blob has more than one
// chunk group (a single group's outboard is only its size).
func (t *tempBlob) encode(r io.Reader, size int64, w io.Writer) (Hash, error) {
	t.size = size
	if size > GroupSize && t.ob == nil {
		ob, err := os.OpenFile(strings.TrimSuffix(t.data.Name(), ".data")+".obao", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return Hash{}, fmt.Errorf("alknet/fs: temporary file: %w", err)
		}
		t.ob = ob
	}
	obSize := OutboardSize(size)
	var ob io.WriterAt = t.ob
	if obSize <= maxMemOutboard {
		t.obMem = make(memWriterAt, obSize)
		ob = t.obMem
	}
	h, err := encodeOutboard(r, size, w, ob)
	if err != nil {
		return h, err
	}
	if t.obMem != nil && t.ob != nil {
		if _, err := t.ob.WriteAt(t.obMem, 0); err != nil {
			return h, err
		}
	}
	return h, nil
}

func (t *tempBlob) sync() error {
	if err := t.data.Sync(); err != nil {
		return fmt.Errorf("alknet/fs: sync: %w", err)
	}
	if t.size > GroupSize {
		if err := t.ob.Sync(); err != nil {
			return fmt.Errorf("alknet/fs: sync: %w", err)
		}
	}
	return nil
}

// install renames the files into the store: the outboard first, so that
// a visible blob always has one.
func (t *tempBlob) install(s *Store, h Hash) error {
	dst := s.blobPath(h)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if t.size > GroupSize {
		if err := os.Rename(t.ob.Name(), s.outboardPath(h)); err != nil {
			return err
		}
	}
	if err := os.Chmod(t.data.Name(), 0o400); err != nil {
		return err
	}
	// The directory is not synced: a rename lost in a power failure
	// only makes the blob absent again, never wrong (the index row says
	// it exists, the store checks the file).
	return os.Rename(t.data.Name(), dst)
}

func (t *tempBlob) remove() {
	_ = t.data.Close()
	_ = os.Remove(t.data.Name())
	if t.ob != nil {
		_ = t.ob.Close()
		_ = os.Remove(t.ob.Name())
	}
}

// writebackWriter appends to f and starts the kernel's writeback of each
// 8 MiB written (startWriteback), so the final fsync is short.
type writebackWriter struct {
	f       *os.File
	off     int64
	started int64
}

func (w *writebackWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= 8<<20 {
		startWriteback(w.f, w.started, w.off-w.started)
		w.started = w.off
	}
	return n, err
}

type progressReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	k, err := p.r.Read(b)
	p.n += int64(k)
	if k > 0 {
		p.fn(p.n)
	}
	return k, err
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// refs counts the tags and collections that keep hash.
func (s *Store) refs(ctx context.Context, hash Hash) (int, error) {
	var n int
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM fs_tags WHERE hash = ?1) + (SELECT count(*) FROM fs_members WHERE member = ?1)`,
			hash.String()).Scan(&n)
	})
	return n, err
}

// moveOut renames the blob's data file to name inside root and drops the
// blob from the store, in one write transaction (so GC and puts wait).
func (s *Store) moveOut(ctx context.Context, root *os.Root, name string, hash Hash) error {
	dir, base := filepath.Split(name)
	if dir == "" {
		dir = "."
	}
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return s.db.Update(ctx, func(tx *sql.Tx) error {
		var n int
		err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM fs_tags WHERE hash = ?1) + (SELECT count(*) FROM fs_members WHERE member = ?1)`,
			hash.String()).Scan(&n)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("blob %s is referenced", hash)
		}
		if err := renameInto(s.blobPath(hash), d, base); err != nil {
			return err
		}
		_ = os.Remove(s.outboardPath(hash))
		if _, err := tx.ExecContext(ctx, `DELETE FROM fs_blobs WHERE hash = ?`, hash.String()); err != nil {
			return err
		}
		return s.db.Notify(ctx, tx, Channel, "export "+hash.String())
	})
}
