package core

import (
	"context"
	"errors"
	"io"
	"sync"
)

// PingALPN is the ALPN of the diagnostic echo protocol.
const PingALPN = "alknet/ping"

// Ping is the alknet/ping handler: every stream the peer opens is echoed back
// byte for byte until the peer ends its side, then the stream is closed.
type Ping struct{}

// ALPN implements ProtocolHandler.
func (Ping) ALPN() []string { return []string{PingALPN} }

// SingleStream implements SingleStreamer: ping serves each stream on its
// own, so it works over TCP+TLS.
func (Ping) SingleStream() bool { return true }

// ServeConn implements ProtocolHandler.
func (Ping) ServeConn(ctx context.Context, conn Conn) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			if errors.Is(err, ErrShuttingDown) {
				return nil
			}
			return err
		}
		wg.Go(func() {
			defer s.Close()
			if _, err := io.Copy(s, s); err != nil {
				return
			}
			_ = s.CloseWrite()
		})
	}
}

var (
	_ ProtocolHandler = Ping{}
	_ SingleStreamer  = Ping{}
)
