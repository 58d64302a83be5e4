package sftp

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"github.com/pkg/sftp"
)

var (
	// ErrNoRoot is returned by New when Config.Root is empty.
	ErrNoRoot = errors.New("alknet/sftp: no root directory configured")
	// ErrUnauthenticated is returned by ServeSession for a nil identity.
	ErrUnauthenticated = errors.New("alknet/sftp: authentication required")
	// ErrForbidden is returned by ServeSession when the identity lacks the
	// scope sftp.
	ErrForbidden = errors.New("alknet/sftp: missing scope sftp")
	// ErrBadPeerID is returned when per-peer homes are on and the peer id
	// is not a single safe path component.
	ErrBadPeerID = errors.New("alknet/sftp: peer id is not usable as a home directory name")
	// ErrPacketTooLarge ends a session whose peer sent a packet larger than
	// Config.MaxPacket.
	ErrPacketTooLarge = errors.New("alknet/sftp: packet too large")
	// ErrBadPacket ends a session whose peer sent a malformed packet.
	ErrBadPacket = errors.New("alknet/sftp: malformed packet")
	// ErrTooManySessions refuses a session of a peer that already has
	// Config.MaxPeerSessions sessions open.
	ErrTooManySessions = errors.New("alknet/sftp: too many sessions for this peer")
	// ErrBadEntryName fails a Download whose node sent a directory entry
	// name that is not a single path element ("x/.." arrives from
	// pkg/sftp's client as ".."), or that would land outside the
	// destination.
	ErrBadEntryName = errors.New("alknet/sftp: refusing a file name the node sent")
	// ErrIsDirectory fails a copy of a directory without
	// CopyOptions.Recursive.
	ErrIsDirectory = errors.New("alknet/sftp: is a directory")
	// ErrChecksumMismatch fails a copy whose SHA-256 differs between the
	// two sides at the end.
	ErrChecksumMismatch = errors.New("alknet/sftp: checksum mismatch")
	// ErrIdle ends a session that was idle longer than Config.IdleTimeout.
	ErrIdle = errors.New("alknet/sftp: session idle timeout")
)

// statusError is what handlers return: an SFTP status code (one of
// pkg/sftp's ErrSSHFx values, which it maps to the code) and a message safe
// to show the client. It never holds a host path or an OS error text.
type statusError struct {
	code error
	msg  string
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.code }

func status(code error, msg string) error { return &statusError{code: code, msg: msg} }

var (
	errReadOnly     = status(sftp.ErrSSHFxPermissionDenied, "permission denied: writing needs scope sftp:write")
	errDenied       = status(sftp.ErrSSHFxPermissionDenied, "permission denied")
	errNoSuchFile   = status(sftp.ErrSSHFxNoSuchFile, "no such file")
	errEscape       = status(sftp.ErrSSHFxPermissionDenied, "permission denied: path leaves the root")
	errBadPath      = status(sftp.ErrSSHFxBadMessage, "invalid path")
	errBadAttrs     = status(sftp.ErrSSHFxBadMessage, "malformed attributes")
	errLinkClimb    = status(sftp.ErrSSHFxPermissionDenied, "permission denied: symlink target may not leave the link's directory")
	errTooMany      = status(sftp.ErrSSHFxFailure, "too many open handles")
	errPeerTooMany  = status(sftp.ErrSSHFxFailure, "too many open handles for this peer")
	errUnsupported  = status(sftp.ErrSSHFxOpUnsupported, "operation unsupported")
	errNotRegular   = status(sftp.ErrSSHFxFailure, "not a regular file")
	errExists       = status(sftp.ErrSSHFxFailure, "file exists")
	errNotEmpty     = status(sftp.ErrSSHFxFailure, "directory not empty")
	errIsDir        = status(sftp.ErrSSHFxFailure, "is a directory")
	errNotDir       = status(sftp.ErrSSHFxFailure, "not a directory")
	errNoSpace      = status(sftp.ErrSSHFxFailure, "no space left on device")
	errFailure      = status(sftp.ErrSSHFxFailure, "failure")
	errBadOffset    = status(sftp.ErrSSHFxFailure, "invalid offset")
	errLoop         = status(sftp.ErrSSHFxFailure, "too many levels of symbolic links")
	errCrossDevice  = status(sftp.ErrSSHFxFailure, "cross-device link")
	errNameTooLong  = status(sftp.ErrSSHFxFailure, "file name too long")
	errInvalidInput = status(sftp.ErrSSHFxFailure, "invalid argument")
	errSessionEnded = status(sftp.ErrSSHFxFailure, "session ended")
)

// fsError maps an OS error to a status error without leaking its text.
func fsError(err error) error {
	if err == nil {
		return nil
	}
	var se *statusError
	if errors.As(err, &se) {
		return se
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT:
			return errNoSuchFile
		case syscall.EACCES, syscall.EPERM, syscall.EROFS:
			return errDenied
		case syscall.EEXIST:
			return errExists
		case syscall.ENOTEMPTY:
			return errNotEmpty
		case syscall.EISDIR:
			return errIsDir
		case syscall.ENOTDIR:
			return errNotDir
		case syscall.ENOSPC, syscall.EDQUOT:
			return errNoSpace
		case syscall.ELOOP:
			return errLoop
		case syscall.EXDEV:
			return errCrossDevice
		case syscall.ENAMETOOLONG:
			return errNameTooLong
		case syscall.EINVAL:
			return errInvalidInput
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errNoSuchFile
	case errors.Is(err, fs.ErrPermission):
		return errDenied
	case errors.Is(err, fs.ErrExist):
		return errExists
	case isEscape(err):
		return errEscape
	}
	return errFailure
}

// isEscape reports the error os.Root returns for a path that leaves it.
func isEscape(err error) bool {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err != nil && pe.Err.Error() == "path escapes from parent"
	}
	var le *os.LinkError // Rename and Link
	if errors.As(err, &le) {
		return le.Err != nil && le.Err.Error() == "path escapes from parent"
	}
	return false
}

// The pkg/sftp codes statusError wraps, for errorPacket.
var (
	errNoSuchFileCode  = sftp.ErrSSHFxNoSuchFile
	errPermissionCode  = sftp.ErrSSHFxPermissionDenied
	errBadMessageCode  = sftp.ErrSSHFxBadMessage
	errUnsupportedCode = sftp.ErrSSHFxOpUnsupported
)
