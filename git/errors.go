package git

import (
	"errors"
	"fmt"
)

// Errors returned by the package. The messages are safe to show to a git
// client: they name no host path.
var (
	// ErrBadRequest is a request line that is not a git-daemon request.
	ErrBadRequest = errors.New("alknet/git: bad request line")
	// ErrRequestTooLong is a request line over Config.MaxRequestLine.
	ErrRequestTooLong = errors.New("alknet/git: request line too long")
	// ErrBadService is a service other than git-upload-pack and
	// git-receive-pack.
	ErrBadService = errors.New("alknet/git: unsupported service")
	// ErrBadName is a repository name that is not a clean relative path
	// ending in .git, or one that resolves outside the root.
	ErrBadName = errors.New("alknet/git: bad repository name")
	// ErrNotFound is a repository that does not exist.
	ErrNotFound = errors.New("alknet/git: repository not found")
	// ErrExists is a create of a repository that already exists.
	ErrExists = errors.New("alknet/git: repository exists")
	// ErrForbidden is a peer without the action it needs on the repository.
	ErrForbidden = errors.New("alknet/git: peer not authorized")
	// ErrProtectedRef is a force-push or delete of a protected ref.
	ErrProtectedRef = errors.New("alknet/git: protected ref")
	// ErrClosed is a request to a closed server.
	ErrClosed = errors.New("alknet/git: server closed")
)

// errorf returns an error with the package prefix.
func errorf(format string, args ...any) error {
	return fmt.Errorf("alknet/git: "+format, args...)
}
