//go:build !unix

package sftp

const (
	openFlags    = 0
	openDirFlags = 0
)
