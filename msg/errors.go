package msg

import "errors"

var (
	// ErrEnvelope reports an envelope that is malformed, fails
	// authentication, is addressed to another node, or carries a bad
	// signature. The message says which; nothing of the content is in it.
	ErrEnvelope = errors.New("alknet/msg: invalid envelope")
	// ErrTooLarge reports a body that does not fit the largest bucket, or a
	// request beyond the server's size cap.
	ErrTooLarge = errors.New("alknet/msg: too large")
	// ErrKeyRecord reports a message key record that is malformed or whose
	// signature does not verify under the node id it names.
	ErrKeyRecord = errors.New("alknet/msg: invalid key record")
	// ErrExpired reports a message older than the accepted age, or one
	// dated too far in the future.
	ErrExpired = errors.New("alknet/msg: message expired")
	// ErrDuplicate reports a message id or envelope already delivered.
	ErrDuplicate = errors.New("alknet/msg: duplicate message")
	// ErrNotFound reports an unknown message or mailbox.
	ErrNotFound = errors.New("alknet/msg: not found")
	// ErrClosed reports a use of a closed server, client or outbox.
	ErrClosed = errors.New("alknet/msg: closed")
	// ErrLeased reports an outbox message that another attempt (in this
	// process or another) is delivering right now.
	ErrLeased = errors.New("alknet/msg: message is being delivered by another attempt")
	// ErrProtocol reports a peer that broke the wire protocol.
	ErrProtocol = errors.New("alknet/msg: protocol error")
)

// RemoteError is an error answer from a mailbox node: a status code and
// the message the node chose to show. It wraps the sentinel that matches
// its code (ErrEnvelope, ErrTooLarge, ErrDuplicate, ErrNotFound, ...) when
// there is one, so errors.Is works across the wire.
type RemoteError struct {
	Code    Status
	Message string
}

func (e *RemoteError) Error() string {
	return "alknet/msg: remote: " + e.Code.String() + ": " + e.Message
}

// Unwrap returns the sentinel of the code, if any.
func (e *RemoteError) Unwrap() error {
	switch e.Code {
	case StatusInvalid:
		return ErrEnvelope
	case StatusTooLarge:
		return ErrTooLarge
	case StatusNotFound:
		return ErrNotFound
	case StatusExpired:
		return ErrExpired
	}
	return nil
}
