//go:build unix

package fs

import (
	"os"
	"syscall"
)

// renameInto renames the file src to base inside the open directory dir
// (renameat), so the destination cannot be redirected by a symlink in the
// path that led to dir.
func renameInto(src string, dir *os.File, base string) error {
	if err := syscall.Renameat(-100 /* AT_FDCWD */, src, int(dir.Fd()), base); err != nil {
		return &os.LinkError{Op: "renameat", Old: src, New: base, Err: err}
	}
	return nil
}

// tryLock takes an exclusive advisory lock on f without waiting.
func tryLock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
