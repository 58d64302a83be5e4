package call

import (
	"encoding/json"
	"errors"
	"fmt"
)

var (
	// ErrFrameSize reports a frame whose declared length is 0 or above the
	// limit (64 MiB at most).
	ErrFrameSize = errors.New("alknet/call: invalid frame length")
	// ErrBadEnvelope reports a frame body that is not a JSON envelope.
	ErrBadEnvelope = errors.New("alknet/call: malformed envelope")
	// ErrNoResponse reports a stream the callee closed before answering.
	ErrNoResponse = errors.New("alknet/call: stream closed without a response")
	// ErrClosed is returned by calls on a Peer after Close.
	ErrClosed = errors.New("alknet/call: peer closed")
	// ErrInvalidName reports an operation name that is not ns/op.
	ErrInvalidName = errors.New("alknet/call: invalid operation name")
	// ErrSchemaTooLarge reports a peer's operation description over
	// MaxSchemaSize or MaxSchemaDepth; Hub.Attach imports the operation
	// without it.
	ErrSchemaTooLarge = errors.New("alknet/call: schema too large")
	// ErrDuplicate reports an operation registered twice.
	ErrDuplicate = errors.New("alknet/call: operation already registered")
)

// Error codes of call.error. Operations may declare their own codes in
// addition (Options.Errors); clients map codes they do not know to
// CodeInternal.
const (
	CodeNotFound             = "NOT_FOUND"
	CodeForbidden            = "FORBIDDEN"
	CodeInvalidInput         = "INVALID_INPUT"
	CodeInternal             = "INTERNAL"
	CodeTimeout              = "TIMEOUT"
	CodeInvalidOperationType = "INVALID_OPERATION_TYPE"
	// CodeUnavailable: the callee cannot take the call now (too many calls
	// in flight, shutting down); retryable.
	CodeUnavailable = "UNAVAILABLE"
)

// standardCodes are the codes every node knows.
var standardCodes = map[string]bool{
	CodeNotFound: true, CodeForbidden: true, CodeInvalidInput: true,
	CodeInternal: true, CodeTimeout: true, CodeInvalidOperationType: true,
	CodeUnavailable: true,
}

// Error is a call.error: a code, a message safe to show to the caller, and
// optional details. Handlers return it (NewError) to choose the code; clients
// receive it from Call and Subscribe. Retryable is true only for TIMEOUT and
// UNAVAILABLE unless an operation says otherwise.
type Error struct {
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	Retryable bool            `json:"retryable"`
	Details   json.RawMessage `json:"details,omitempty"`
	// RemoteCode is the code as received, when Code was mapped to INTERNAL
	// because this side does not know it. Empty on errors made locally.
	RemoteCode string `json:"-"`
}

// NewError returns an *Error with code and a message; TIMEOUT is retryable.
func NewError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Retryable: code == CodeTimeout || code == CodeUnavailable}
}

// WithDetails returns a copy of e carrying details (marshaled to JSON).
func (e *Error) WithDetails(details any) *Error {
	c := *e
	if b, err := json.Marshal(details); err == nil {
		c.Details = b
	}
	return &c
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, &call.Error{Code: call.CodeNotFound}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// ErrorCode returns the call.error code behind err, or "" when err is not
// an *Error.
func ErrorCode(err error) string {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	return ""
}

// IsCode reports whether err is an *Error with code.
func IsCode(err error, code string) bool { return ErrorCode(err) == code }
