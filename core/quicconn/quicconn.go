// Package quicconn is the one escape hatch from core's connection types to
// quic-go: HTTP/3 needs the raw *quic.Conn. Handlers should use core.Conn
// and core.Stream; only reach for this when a library demands quic-go types.
package quicconn

import (
	"github.com/alkdev/alknet/core"
	"github.com/quic-go/quic-go"
)

// Raw returns the quic-go connection behind c, or false when c is not backed
// by quic-go (for example an in-memory coretest connection). Streams accepted
// from the raw connection bypass core's cap on concurrent streams of an
// anonymous caller (core.Config.MaxAnonStreams): a handler that accepts them
// itself must bound them itself.
func Raw(c core.Conn) (*quic.Conn, bool) {
	r, ok := c.(interface{ QUICConn() *quic.Conn })
	if !ok {
		return nil, false
	}
	return r.QUICConn(), true
}

// RawStream returns the quic-go stream behind s, or false.
func RawStream(s core.Stream) (*quic.Stream, bool) {
	r, ok := s.(interface{ QUICStream() *quic.Stream })
	if !ok {
		return nil, false
	}
	return r.QUICStream(), true
}
