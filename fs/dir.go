package fs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
)

// DirOptions are the options of ImportDir and Client.PutDir.
type DirOptions struct {
	// Tag names the collection.
	Tag string
	// Skipped, when set, is told about every entry left out: symlinks,
	// devices, sockets and pipes (a collection holds regular files only).
	Skipped func(rel string, mode iofs.FileMode)
	// Progress, when set, is called with the bytes of file data added so
	// far and the total.
	Progress func(done, total int64)
}

// dirFile is a regular file found under a directory.
type dirFile struct {
	rel  string // slash-separated, relative
	abs  string
	size int64
	mode iofs.FileMode
}

// scanDir lists the regular files under dir in path order; every path is
// checked with ValidatePath, so a name that could not travel in a
// collection fails the scan.
func scanDir(dir string, skipped func(string, iofs.FileMode)) ([]dirFile, int64, error) {
	var files []dirFile
	var total int64
	err := filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			if skipped != nil {
				skipped(rel, d.Type())
			}
			return nil
		}
		if err := ValidatePath(rel); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, dirFile{rel: rel, abs: p, size: info.Size(), mode: info.Mode().Perm()})
		total += info.Size()
		return nil
	})
	return files, total, err
}

// ImportDir adds every regular file under dir to the store, then the
// collection listing them (paths relative to dir, permission bits), and
// returns the collection's description and the collection.
func (s *Store) ImportDir(ctx context.Context, dir string, o DirOptions) (BlobInfo, *Collection, error) {
	files, total, err := scanDir(dir, o.Skipped)
	if err != nil {
		return BlobInfo{}, nil, err
	}
	var done int64
	c := &Collection{Entries: make([]Entry, 0, len(files))}
	b := s.newBatch()
	defer b.discard()
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return BlobInfo{}, nil, err
		}
		var h Hash
		var size int64
		if f.size <= smallBlob {
			h, size, err = b.addFile(f.abs)
			if err == nil && b.full() {
				err = b.commit(ctx)
			}
		} else {
			var po PutOptions
			if o.Progress != nil {
				base := done
				po.Progress = func(n int64) { o.Progress(base+n, total) }
			}
			var info BlobInfo
			info, err = s.ImportFile(ctx, f.abs, po)
			h, size = info.Hash, info.Size
		}
		if err != nil {
			return BlobInfo{}, nil, err
		}
		done += size
		if o.Progress != nil {
			o.Progress(done, total)
		}
		c.Entries = append(c.Entries, Entry{Path: f.rel, Hash: h, Size: size, Mode: f.mode})
	}
	if err := b.commit(ctx); err != nil {
		return BlobInfo{}, nil, err
	}
	info, err := s.PutCollection(ctx, c, o.Tag)
	return info, c, err
}

// PutCollection encodes c and adds it as a collection blob.
func (s *Store) PutCollection(ctx context.Context, c *Collection, tag string) (BlobInfo, error) {
	b, err := c.Encode()
	if err != nil {
		return BlobInfo{}, err
	}
	return s.Put(ctx, bytesReader(b), int64(len(b)), PutOptions{Tag: tag, Collection: true})
}

// Collection returns the stored collection hash.
func (s *Store) Collection(hash Hash) (*Collection, error) {
	b, err := s.ReadBlob(hash, MaxCollectionSize)
	if err != nil {
		return nil, err
	}
	return DecodeCollection(b)
}

// ExportOptions are the options of Store.Export and Store.ExportCollection.
type ExportOptions struct {
	// Move takes the blob out of the store instead of copying it, when
	// the destination is on the same file system: the store no longer
	// holds it afterwards. Blobs a tag or another collection keeps are
	// always copied.
	Move bool
	// Mode is the permission of the file written by Export. Zero means
	// 0644.
	Mode iofs.FileMode
}

// Export writes the complete blob hash to the file dst: to a temporary
// file beside it that is synced and renamed over dst.
func (s *Store) Export(ctx context.Context, hash Hash, dst string, o ExportOptions) error {
	mode := o.Mode
	if mode == 0 {
		mode = 0o644
	}
	dir, base := filepath.Split(dst)
	if dir == "" {
		dir = "."
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return s.exportInto(ctx, root, base, hash, mode, o.Move)
}

// exportInto writes blob hash to name inside root, atomically.
func (s *Store) exportInto(ctx context.Context, root *os.Root, name string, hash Hash, mode iofs.FileMode, move bool) error {
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	tmp := name + ".alknet-part-" + hex.EncodeToString(rb[:])
	if move && s.movable(ctx, hash) {
		if err := s.moveOut(ctx, root, tmp, hash); err == nil {
			if err := root.Chmod(tmp, mode); err != nil {
				_ = root.Remove(tmp)
				return err
			}
			return root.Rename(tmp, name)
		}
		// Another file system, or the blob is in use: copy instead.
	}
	src, _, err := s.Open(hash)
	if err != nil {
		return err
	}
	defer src.Close()
	out, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, src)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Chmod(tmp, mode)
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		_ = root.Remove(tmp)
	}
	return err
}

// movable reports whether a blob may leave the store: no tag names it and
// no collection lists it.
func (s *Store) movable(ctx context.Context, hash Hash) bool {
	n, err := s.refs(ctx, hash)
	return err == nil && n == 0
}

// ExportCollection writes the files of c under dir (created when
// missing), each to a temporary file renamed into place, with its
// permission bits. Paths are checked again here and resolved inside dir
// without following symlinks out of it.
func (s *Store) ExportCollection(ctx context.Context, c *Collection, dir string, o ExportOptions) error {
	if err := c.validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	dirs := map[string]bool{}
	for start := 0; start < len(c.Entries); start += batchMaxItems {
		if err := s.exportBatch(ctx, root, dirs, c.Entries[start:min(start+batchMaxItems, len(c.Entries))]); err != nil {
			return err
		}
	}
	return nil
}

// exportBatch writes entries to temporary files, syncs them with one
// file-system flush and renames them into place.
func (s *Store) exportBatch(ctx context.Context, root *os.Root, dirs map[string]bool, entries []Entry) error {
	type pending struct {
		f         *os.File
		tmp, name string
	}
	var done []pending
	defer func() {
		for _, p := range done {
			_ = p.f.Close()
			_ = root.Remove(p.tmp)
		}
	}()
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := ValidatePath(e.Path); err != nil {
			return err
		}
		if d := path.Dir(e.Path); d != "." && !dirs[d] {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", d, err)
			}
			dirs[d] = true
		}
		var rb [6]byte
		_, _ = rand.Read(rb[:])
		tmp := e.Path + ".alknet-part-" + hex.EncodeToString(rb[:])
		src, _, err := s.Open(e.Hash)
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		out, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			_ = src.Close()
			return fmt.Errorf("write %s: %w", e.Path, err)
		}
		done = append(done, pending{f: out, tmp: tmp, name: e.Path})
		_, err = io.Copy(out, src)
		_ = src.Close()
		if err == nil {
			err = out.Chmod(e.Mode)
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", e.Path, err)
		}
	}
	files := make([]*os.File, len(done))
	for i, p := range done {
		files[i] = p.f
	}
	if err := syncAll(files); err != nil {
		return err
	}
	for len(done) > 0 {
		p := done[0]
		_ = p.f.Close()
		if err := root.Rename(p.tmp, p.name); err != nil {
			return fmt.Errorf("write %s: %w", p.name, err)
		}
		done = done[1:]
	}
	return nil
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b: b} }

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// CollectionOptions are the options of Client.FetchCollection.
type CollectionOptions struct {
	// Tag names the collection in the local store.
	Tag string
	// Parallel is how many files are fetched at once. Zero means 8.
	Parallel int
	// MaxSize bounds the size of each file (FetchOptions.MaxSize).
	MaxSize int64
	// Progress, when set, is called with the verified bytes of the
	// collection's files held so far and their total.
	Progress func(done, total int64)
}

// FetchCollection fetches the collection hash and every file it lists
// into st, verified, resuming what an interrupted fetch left. The listing
// is validated (ErrBadCollection for hostile paths) before any file is
// fetched. Small files are fetched whole and committed in batches; large
// ones as resumable downloads. Progress calls are serialized.
func (c *Client) FetchCollection(ctx context.Context, st *Store, hash Hash, o CollectionOptions) (*Collection, FetchResult, error) {
	res, err := c.Fetch(ctx, st, hash, FetchOptions{Tag: o.Tag, Collection: true, MaxSize: MaxCollectionSize})
	if err != nil {
		return nil, res, err
	}
	coll, err := st.Collection(hash)
	if err != nil {
		return nil, res, err
	}
	par := o.Parallel
	if par <= 0 {
		par = 8
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var mu sync.Mutex // guards res, firstErr, done and Progress calls
	var firstErr error
	var done int64
	total := coll.Size()
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	advance := func(n int64) {
		done += n
		if o.Progress != nil {
			o.Progress(done, total)
		}
	}

	// Small files go to one committer that batches them.
	small := make(chan []byte, par)
	committed := make(chan error, 1)
	go func() {
		b := st.newBatch()
		defer b.discard()
		var err error
		for data := range small {
			if err != nil {
				continue
			}
			if _, err = b.add(bytesReader(data), int64(len(data))); err == nil && b.full() {
				err = b.commit(ctx)
			}
		}
		if err == nil {
			err = b.commit(ctx)
		}
		committed <- err
	}()

	jobs := make(chan Entry)
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range jobs {
				if e.Size <= smallBlob {
					data, wire, err := c.fetchSmall(ctx, e.Hash, smallBlob)
					if err == nil && int64(len(data)) != e.Size {
						err = fmt.Errorf("%w: %s is %d bytes, the collection says %d", ErrBadCollection, e.Path, len(data), e.Size)
					}
					mu.Lock()
					res.Wire += wire
					if err != nil {
						fail(fmt.Errorf("%s: %w", e.Path, err))
						mu.Unlock()
						continue
					}
					res.Received += e.Size
					advance(e.Size)
					mu.Unlock()
					select {
					case small <- data:
					case <-ctx.Done():
					}
					continue
				}
				var last int64
				fo := FetchOptions{MaxSize: o.MaxSize, Progress: func(d, _ int64) {
					mu.Lock()
					advance(d - last)
					mu.Unlock()
					last = d
				}}
				r, err := c.Fetch(ctx, st, e.Hash, fo)
				if err == nil && r.Size != e.Size {
					err = fmt.Errorf("%w: %s is %d bytes, the collection says %d", ErrBadCollection, e.Path, r.Size, e.Size)
				}
				mu.Lock()
				res.Wire += r.Wire
				res.Received += r.Received
				res.Resumed += r.Resumed
				if r.Cached {
					advance(e.Size)
				}
				if err != nil {
					fail(fmt.Errorf("%s: %w", e.Path, err))
				}
				mu.Unlock()
			}
		}()
	}
	seen := map[Hash]bool{}
feed:
	for _, e := range coll.Entries {
		if seen[e.Hash] {
			continue
		}
		seen[e.Hash] = true
		if st.Has(e.Hash) {
			mu.Lock()
			advance(e.Size)
			mu.Unlock()
			continue
		}
		select {
		case jobs <- e:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(small)
	cerr := <-committed
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return coll, res, firstErr
	}
	if cerr != nil {
		return coll, res, cerr
	}
	if err := ctx.Err(); err != nil {
		return coll, res, err
	}
	for h := range seen {
		if !st.Has(h) {
			return coll, res, fmt.Errorf("%w: blob %s of the collection", ErrIncomplete, h)
		}
	}
	return coll, res, nil
}

// PutDir uploads every regular file under dir (eight at a time) and then
// the collection listing them, and returns the collection's hash. It needs
// fs:write. Progress calls are serialized.
func (c *Client) PutDir(ctx context.Context, dir string, o DirOptions) (Hash, *Collection, error) {
	files, total, err := scanDir(dir, o.Skipped)
	if err != nil {
		return Hash{}, nil, err
	}
	coll := &Collection{Entries: make([]Entry, len(files))}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex // guards done, firstErr and Progress calls
	var done int64
	var firstErr error
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(8, max(1, len(files))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				f := files[i]
				var po PutOptions
				var last int64
				if o.Progress != nil {
					po.Progress = func(n int64) {
						mu.Lock()
						done += n - last
						last = n
						o.Progress(done, total)
						mu.Unlock()
					}
				}
				h, err := c.PutFile(ctx, f.abs, po)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("%s: %w", f.rel, err)
						cancel()
					}
					mu.Unlock()
					continue
				}
				coll.Entries[i] = Entry{Path: f.rel, Hash: h, Size: f.size, Mode: f.mode}
			}
		}()
	}
feed:
	for i := range files {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return Hash{}, nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return Hash{}, nil, err
	}
	b, err := coll.Encode()
	if err != nil {
		return Hash{}, nil, err
	}
	h, err := c.Put(ctx, bytesReader(b), int64(len(b)), PutOptions{Tag: o.Tag, Collection: true})
	return h, coll, err
}

// PutFile uploads the file at path and returns its hash.
func (c *Client) PutFile(ctx context.Context, p string, o PutOptions) (Hash, error) {
	f, err := os.Open(p)
	if err != nil {
		return Hash{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Hash{}, err
	}
	if !st.Mode().IsRegular() {
		return Hash{}, fmt.Errorf("alknet/fs: %s is not a regular file", p)
	}
	return c.Put(ctx, f, st.Size(), o)
}
