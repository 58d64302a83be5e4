//go:build unix

package sftp

import "syscall"

// openFlags are added to every open: O_NONBLOCK so a FIFO cannot block
// the open, O_CLOEXEC so no descriptor leaks into child processes.
const (
	openFlags    = syscall.O_NONBLOCK | syscall.O_CLOEXEC
	openDirFlags = syscall.O_DIRECTORY | syscall.O_CLOEXEC
)
