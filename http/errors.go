package alkhttp

import "errors"

var (
	// ErrALPN reports a connection whose ALPN the Server does not serve.
	ErrALPN = errors.New("alknet/http: unsupported alpn")
	// ErrConfig reports an unusable configuration (a bad route, a missing
	// directory).
	ErrConfig = errors.New("alknet/http: invalid configuration")
)
