package sftp

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/pkg/sftp"
)

// BenchmarkTransfer moves 64 MiB per op with pkg/sftp's client (concurrent
// requests, 255 KiB packets, as alknet cp does) over a real QUIC loopback
// connection. bench/sftp.sh compares the whole CLI with OpenSSH.
func BenchmarkTransfer(b *testing.B) {
	const size = 64 << 20
	dir := b.TempDir()
	srv, err := New(Config{Root: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "src"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	p := coretest.NewPair(b, []string{ScopeRead, ScopeWrite}, coretest.Route{Handler: srv, ACL: core.AccessControl{RequiredScopes: []string{ScopeRead}}})
	conn := p.Dial(b, ALPN)
	st, err := conn.OpenStream(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	c, err := sftp.NewClientPipe(st, st, sftp.MaxPacketUnchecked(DefaultMaxPacket-1024), sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	b.Run("get", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			f, err := c.Open("/src")
			if err != nil {
				b.Fatal(err)
			}
			if n, err := f.WriteTo(io.Discard); err != nil || n != size {
				b.Fatal(n, err)
			}
			f.Close()
		}
	})
	b.Run("put", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			f, err := c.Create("/dst")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.ReadFromWithConcurrency(bytes.NewReader(data), 0); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
}
