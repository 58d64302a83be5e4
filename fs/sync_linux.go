package fs

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncAll makes the data of files durable: one syncfs(2) for the file
// system that holds them (a batch of small blobs costs one flush instead
// of one per file).
func syncAll(files []*os.File) error {
	if len(files) == 0 {
		return nil
	}
	if err := unix.Syncfs(int(files[0].Fd())); err != nil {
		return syncEach(files)
	}
	return nil
}

// startWriteback asks the kernel to start writing [off, off+n) of f to
// disk now, without waiting, so that the fsync at the end of a large
// write finds little left to do. Errors are ignored: it is only a hint.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
