package core_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/quic-go/quic-go"
)

// The benchmarks compare core.Stream against a bare quic-go stream with the
// same TLS (self-signed ed25519, TLS 1.3) and the same flow-control windows,
// in the same run. bench/run.sh prints the ratios.

const benchChunk = 1 << 20

// sink reads a stream to its end, then answers one byte.
type sink struct{}

func (sink) ALPN() []string     { return []string{"alknet/sink"} }
func (sink) SingleStream() bool { return true }
func (sink) ServeConn(ctx context.Context, c core.Conn) error {
	for {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return err
		}
		go func() {
			_, _ = io.Copy(io.Discard, s)
			_, _ = s.Write([]byte{1})
			_ = s.CloseWrite()
		}()
	}
}

// pushAll writes n chunks to w, half-closes, and waits for the one-byte
// answer that says the receiver has read everything.
func pushAll(b *testing.B, w io.ReadWriter, closeWrite func() error) {
	buf := make([]byte, benchChunk)
	b.SetBytes(benchChunk)
	b.ResetTimer()
	for b.Loop() {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := closeWrite(); err != nil {
		b.Fatal(err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(w, ack[:]); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}

func BenchmarkStream(b *testing.B) {
	b.Run("impl=alknet", func(b *testing.B) {
		p := coretest.NewPair(b, nil, coretest.Route{Handler: sink{}})
		c := p.Dial(b, "alknet/sink")
		s, err := c.OpenStream(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		pushAll(b, s, s.CloseWrite)
	})
	// The same single stream over the TCP+TLS listener: kernel TCP with
	// TLS 1.3 records against user-space QUIC.
	b.Run("impl=alknet-tcp", func(b *testing.B) {
		srv := coretest.StartEndpoint(b, core.Config{ListenTCP: true}, coretest.Route{Handler: sink{}})
		c, err := coretest.ClientEndpoint(b, core.SecretKey{}).DialTCP(context.Background(), srv.Addr(), "alknet/sink")
		if err != nil {
			b.Fatal(err)
		}
		s, err := c.OpenStream(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		pushAll(b, s, s.CloseWrite)
	})
	b.Run("impl=quic-go", func(b *testing.B) {
		srv, cli := bareQUIC(b, "bench/sink")
		go func() {
			for {
				qc, err := srv.Accept(context.Background())
				if err != nil {
					return
				}
				go func() {
					for {
						s, err := qc.AcceptStream(context.Background())
						if err != nil {
							return
						}
						go func() {
							_, _ = io.Copy(io.Discard, s)
							_, _ = s.Write([]byte{1})
							_ = s.Close()
						}()
					}
				}()
			}
		}()
		qc := cli()
		s, err := qc.OpenStreamSync(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		pushAll(b, s, s.Close)
	})
}

// BenchmarkConnect measures new connections per second: dial, one echo
// round trip, close. alknet routes among ten registered ALPNs and runs the
// access check; the bare side is a plain quic-go accept loop.
func BenchmarkConnect(b *testing.B) {
	b.Run("impl=alknet", func(b *testing.B) {
		routes := []coretest.Route{{Handler: core.Ping{}}}
		for i := range 9 {
			routes = append(routes, coretest.Route{Handler: tagALPN(fmt.Sprintf("alknet/bench%d", i))})
		}
		srv := coretest.StartEndpoint(b, core.Config{MaxConnsPerPeer: -1}, routes...)
		cli := coretest.ClientEndpoint(b, core.SecretKey{})
		addr := srv.Addr()
		buf := []byte{42}
		b.ResetTimer()
		for b.Loop() {
			c, err := cli.Dial(context.Background(), addr, core.PingALPN)
			if err != nil {
				b.Fatal(err)
			}
			s, err := c.OpenStream(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			echoOnce(b, s, s.CloseWrite, buf)
			_ = c.Close(core.CodeOK, "")
		}
	})
	b.Run("impl=quic-go", func(b *testing.B) {
		srv, cli := bareQUIC(b, "bench/echo")
		go func() {
			for {
				qc, err := srv.Accept(context.Background())
				if err != nil {
					return
				}
				go func() {
					s, err := qc.AcceptStream(context.Background())
					if err != nil {
						return
					}
					_, _ = io.Copy(s, s)
					_ = s.Close()
					<-qc.Context().Done()
				}()
			}
		}()
		buf := []byte{42}
		b.ResetTimer()
		for b.Loop() {
			qc := cli()
			s, err := qc.OpenStreamSync(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			echoOnce(b, s, s.Close, buf)
			_ = qc.CloseWithError(0, "")
		}
	})
}

func echoOnce(b *testing.B, s io.ReadWriter, closeWrite func() error, buf []byte) {
	if _, err := s.Write(buf); err != nil {
		b.Fatal(err)
	}
	_ = closeWrite()
	got, err := io.ReadAll(s)
	if err != nil || len(got) != len(buf) {
		b.Fatalf("echo: %v %d", err, len(got))
	}
}

// tagALPN is a handler that only occupies an ALPN.
type tagALPN string

func (t tagALPN) ALPN() []string                                   { return []string{string(t)} }
func (t tagALPN) ServeConn(ctx context.Context, c core.Conn) error { <-ctx.Done(); return nil }

// bareQUIC starts a plain quic-go listener on loopback with the same TLS
// and windows as core, and returns it with a dial function.
func bareQUIC(b *testing.B, alpn string) (*quic.Listener, func() *quic.Conn) {
	sk, ck := coretest.Key(b), coretest.Key(b)
	conf := &quic.Config{
		MaxIncomingStreams:             256,
		InitialStreamReceiveWindow:     2 << 20,
		MaxStreamReceiveWindow:         16 << 20,
		InitialConnectionReceiveWindow: 4 << 20,
		MaxConnectionReceiveWindow:     32 << 20,
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{core.BenchCert(b, sk)},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{alpn},
	}, conf)
	if err != nil {
		b.Fatal(err)
	}
	cudp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	ctr := &quic.Transport{Conn: cudp}
	b.Cleanup(func() { ln.Close(); tr.Close(); ctr.Close(); udp.Close(); cudp.Close() })
	ctls := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{core.BenchCert(b, ck)},
		InsecureSkipVerify: true,
		NextProtos:         []string{alpn},
	}
	return ln, func() *quic.Conn {
		qc, err := ctr.Dial(context.Background(), udp.LocalAddr(), ctls, conf)
		if err != nil {
			b.Fatal(err)
		}
		return qc
	}
}
