//go:build unix

package main

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// flock takes an exclusive, non-blocking advisory lock on f; the kernel
// releases it when the process ends, however it ends.
func flock(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}

// fileOwner returns the uid that owns a file.
func fileOwner(st fs.FileInfo) (int, bool) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(s.Uid), true
	}
	return 0, false
}
