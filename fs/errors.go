package fs

import (
	"errors"
	"fmt"
)

// Errors returned by the package. Messages are safe to show to a peer: they
// name no host path.
var (
	// ErrBadHash is a string that is not 64 hex characters.
	ErrBadHash = errors.New("alknet/fs: bad hash")
	// ErrNotFound is a blob, tag or collection the store does not hold.
	ErrNotFound = errors.New("alknet/fs: not found")
	// ErrIncomplete is a request for groups of a partial blob that the
	// store does not hold yet.
	ErrIncomplete = errors.New("alknet/fs: blob incomplete")
	// ErrMismatch is data that does not match its hash; a *MismatchError
	// carries the hash and offset.
	ErrMismatch = errors.New("alknet/fs: data does not match its hash")
	// ErrTooLarge is a blob, request or list over a limit.
	ErrTooLarge = errors.New("alknet/fs: too large")
	// ErrSizeMismatch is a put whose data was shorter or longer than
	// declared.
	ErrSizeMismatch = errors.New("alknet/fs: size mismatch")
	// ErrBadRequest is a malformed request.
	ErrBadRequest = errors.New("alknet/fs: bad request")
	// ErrBadResponse is a malformed response from a node.
	ErrBadResponse = errors.New("alknet/fs: bad response")
	// ErrForbidden is a peer without the scope an operation needs.
	ErrForbidden = errors.New("alknet/fs: forbidden")
	// ErrBadTag is a tag name outside [A-Za-z0-9._/-]{1,255} or one that
	// starts with "/" or contains "..".
	ErrBadTag = errors.New("alknet/fs: bad tag name")
	// ErrBadCollection is a collection blob that does not decode, or whose
	// entries are unsafe (absolute or ".." paths, duplicates, a file that
	// is also a directory, special mode bits).
	ErrBadCollection = errors.New("alknet/fs: bad collection")
	// ErrBadTicket is a string that is not an alknet:blob: ticket.
	ErrBadTicket = errors.New("alknet/fs: bad ticket")
	// ErrCorrupt is stored state that does not decode (index rows, files).
	ErrCorrupt = errors.New("alknet/fs: corrupt store")
	// ErrReadOnly is a write to a read-only server or store.
	ErrReadOnly = errors.New("alknet/fs: read-only")
	// ErrClosed is an operation on a closed store or server.
	ErrClosed = errors.New("alknet/fs: closed")
	// ErrBusy is a server over its concurrency limits.
	ErrBusy = errors.New("alknet/fs: busy")
	// ErrInternal is a node failure whose cause stays in the node's log.
	ErrInternal = errors.New("alknet/fs: internal error")
)

// MismatchError reports a parent node or chunk group that does not match
// the hash it must chain to. Nothing of the failing node was written.
type MismatchError struct {
	Hash   Hash  // the blob
	Offset int64 // first byte of the group (or of the subtree, for a parent)
	Length int64 // bytes the group or subtree covers
	Parent bool  // a parent node failed, not the data of a group
}

func (e *MismatchError) Error() string {
	what := "chunk group"
	if e.Parent {
		what = "tree node"
	}
	return fmt.Sprintf("alknet/fs: blob %s: %s at offset %d (%d bytes) does not match the hash", e.Hash, what, e.Offset, e.Length)
}

// Is makes errors.Is(err, ErrMismatch) true.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }
