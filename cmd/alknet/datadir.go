package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// lockFile is held (flock) by the `serve` that uses the data directory; it
// holds that process's pid.
const lockFile = "serve.lock"

// prepareDataDir creates the data directory (mode 0700) or checks an
// existing one: a directory that others may write is refused (they could
// replace the identity or the peer table), one that others may read is
// tightened to 0700 with a notice, and one this user cannot write is
// refused with the reason.
func (g *globals) prepareDataDir() error {
	dir := g.dataDir
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("data directory: %w", err)
	case !st.IsDir():
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	if runtime.GOOS == "windows" {
		return nil // no Unix modes there
	}
	if uid, ok := fileOwner(st); ok && uid != os.Getuid() && os.Getuid() != 0 {
		return fmt.Errorf("data directory %s belongs to another user (uid %d); use your own --data, or run as that user", dir, uid)
	}
	perm := st.Mode().Perm()
	if perm&0o022 != 0 {
		return fmt.Errorf("data directory %s has mode %04o: others can write to it and replace the node's identity or peers; check its contents, then chmod 700 %s", dir, perm, dir)
	}
	if perm&0o077 != 0 {
		if err := os.Chmod(dir, perm&^0o077); err != nil {
			return fmt.Errorf("data directory %s has mode %04o and cannot be tightened: %w", dir, perm, err)
		}
		fmt.Fprintf(g.stderr, "alknet: data directory %s had mode %04o; others could read it, so it is now %04o\n", dir, perm, perm&^0o077)
	}
	return checkWritable(dir, perm)
}

// checkWritable creates and removes a file in dir, so that a read-only
// directory is reported as such instead of as whatever the first write
// happens to fail with.
func checkWritable(dir string, perm fs.FileMode) error {
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("data directory %s is not writable (mode %04o): %v", dir, perm, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

// checkDatabase warns when the node database exists but is empty: a 0-byte
// alknet.db would otherwise be taken for a new one, silently dropping every
// peer.
func (g *globals) checkDatabase() {
	path := g.path(databaseFile)
	st, err := os.Stat(path)
	if err != nil || st.Size() != 0 {
		return
	}
	if wal, err := os.Stat(path + "-wal"); err == nil && wal.Size() > 0 {
		return // the content is still in the write-ahead log
	}
	fmt.Fprintf(g.stderr, "alknet: warning: %s is empty (0 bytes); the peers it held are gone and it starts as a new database (restore it from a backup to get them back)\n", path)
}

// dirLock is the held lock of a data directory.
type dirLock struct{ f *os.File }

// Release unlocks and closes the lock file.
func (l *dirLock) Release() error { return l.f.Close() }

// lockDataDir takes the data directory's serve lock and writes this process's
// pid into it. When another process holds it, the error names its pid.
func (g *globals) lockDataDir() (*dirLock, error) {
	path := g.path(lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := flock(f); err != nil {
		holder := "another process"
		if b, rerr := io.ReadAll(io.LimitReader(f, 32)); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = fmt.Sprintf("another alknet serve (pid %d)", pid)
			}
		}
		_ = f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("data directory %s is in use by %s; stop it first, or use another --data", g.dataDir, holder)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// errLocked means the lock is held by another process.
var errLocked = errors.New("locked by another process")
