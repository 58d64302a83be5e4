//go:build !linux

package sftp

import (
	"os"

	"github.com/pkg/sftp"
)

// statVFS is only implemented on Linux.
func statVFS(*os.File) (*sftp.StatVFS, error) { return nil, errUnsupported }

const haveStatVFS = false
