//go:build !linux

package fs

import "os"

// syncAll makes the data of files durable, one fsync each.
func syncAll(files []*os.File) error { return syncEach(files) }
