//go:build !unix

package fs

import "os"

// renameInto renames src to base inside dir. Without renameat the name
// is resolved again by path.
func renameInto(src string, dir *os.File, base string) error {
	return os.Rename(src, dir.Name()+string(os.PathSeparator)+base)
}

// tryLock is a no-op where flock is missing: one process per store.
func tryLock(*os.File) error { return nil }
