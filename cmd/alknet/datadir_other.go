//go:build !unix

package main

import (
	"io/fs"
	"os"
)

// flock is a no-op where flock(2) does not exist.
func flock(*os.File) error { return nil }

// fileOwner is unknown where there are no Unix owners.
func fileOwner(fs.FileInfo) (int, bool) { return 0, false }
