package callbench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// jsonCodec makes gRPC carry the same JSON bodies as alknet/call, so the
// comparison is of transports and framing, not of serializers.
type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
func (jsonCodec) Name() string                       { return "json" }

// echoService is the hand-written gRPC service: Echo (unary) and Count
// (server streaming).
type echoService interface{}

type echoImpl struct{}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: "bench.Echo",
	HandlerType: (*echoService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in msg
			if err := dec(&in); err != nil {
				return nil, err
			}
			return &in, nil
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Count",
		ServerStreams: true,
		Handler: func(_ any, stream grpc.ServerStream) error {
			var in msg
			if err := stream.RecvMsg(&in); err != nil {
				return err
			}
			for i := range in.N {
				v := i
				if err := stream.SendMsg(&v); err != nil {
					return err
				}
			}
			return nil
		},
	}},
}

// selfSigned returns an ed25519 certificate for localhost and a pool
// trusting it.
func selfSigned(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: cert}, pool
}

// grpcClient starts a gRPC server over TLS on loopback and returns one
// client connection to it.
func grpcClient(tb testing.TB) *grpc.ClientConn {
	cert, pool := selfSigned(tb)
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})),
		grpc.ForceServerCodec(jsonCodec{}),
	)
	srv.RegisterService(&serviceDesc, echoImpl{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS13})),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(jsonCodec{})),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

func grpcUnary(cc *grpc.ClientConn) func(ctx context.Context, in msg, out *msg) error {
	return func(ctx context.Context, in msg, out *msg) error {
		return cc.Invoke(ctx, "/bench.Echo/Echo", &in, out)
	}
}

func grpcCount(cc *grpc.ClientConn) func(ctx context.Context, n int) (int, error) {
	return func(ctx context.Context, n int) (int, error) {
		st, err := cc.NewStream(ctx, &serviceDesc.Streams[0], "/bench.Echo/Count")
		if err != nil {
			return 0, err
		}
		if err := st.SendMsg(&msg{N: n}); err != nil {
			return 0, err
		}
		if err := st.CloseSend(); err != nil {
			return 0, err
		}
		got := 0
		for {
			var v int
			if err := st.RecvMsg(&v); err != nil {
				if got == n {
					return got, nil
				}
				return got, err
			}
			got++
		}
	}
}
