package alkhttp

import (
	"context"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/quicconn"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// serveH3 serves HTTP/3 on a QUIC connection with a quic-go http3 server
// of its own.
func (s *Server) serveH3(ctx context.Context, conn core.Conn) error {
	raw, ok := quicconn.Raw(conn)
	if !ok {
		// A TCP client that picked h3 (offered with h2 and http/1.1).
		return conn.Close(core.CodeForbidden, "h3 is served over QUIC only")
	}
	c := s.newConnInfo(conn)
	c.tls = nil // http3 fills Request.TLS itself
	streams := s.opts.MaxConcurrentStreams
	if c.anon {
		streams = s.opts.MaxAnonStreams
	}
	c.slots = make(chan struct{}, streams)
	srv := &http3.Server{
		Handler: c.handler(),
		// Datagrams need QUIC datagram support negotiated on this side;
		// advertising them without it makes clients fail the connection.
		EnableDatagrams: s.opts.Datagrams && raw.ConnectionState().SupportsDatagrams.Local,
		MaxHeaderBytes:  s.opts.MaxHeaderBytes,
		IdleTimeout:     s.opts.IdleTimeout,
		ConnContext:     func(ctx context.Context, _ *quic.Conn) context.Context { return withConnInfo(ctx, c) },
	}
	c.shutdown = func(sctx context.Context) { _ = srv.Shutdown(sctx) }
	untrack := s.track(ctx, c)
	defer untrack()
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	err := srv.ServeQUICConn(raw)
	if isClosedErr(err) || raw.Context().Err() != nil {
		return nil
	}
	return err
}
