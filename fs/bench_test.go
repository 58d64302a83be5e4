package fs

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
)

// BenchmarkTransfer moves one file (FS_BENCH_MIB, default 256 MiB) over a
// real QUIC loopback connection, file to file, two ways in each iteration:
//   - bare: a plain alknet stream (core.Stream) that carries the file's
//     bytes, read from disk, written to disk and synced, with no hashing
//     (the ceiling fs is measured against);
//   - fs: Client.Fetch into a Store (every group verified, outboard kept,
//     synced, committed) and Client.Put (hashed, outboard built, synced
//     and committed on the node).
// It reports both rates and fs/bare (1.0 = as fast as the bare stream).
// bench/fs.sh runs it.

// bareFile is a handler that sends the file it is given on every stream
// the peer opens, or, when the stream starts with a byte, receives a file
// into dir and syncs it.
type bareFile struct {
	src string
	dir string
}

const bareALPN = "alknet/bench-bare"

func (bareFile) ALPN() []string { return []string{bareALPN} }
func (h bareFile) ServeConn(ctx context.Context, c core.Conn) error {
	for {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return err
		}
		go func() {
			defer s.Close()
			var op [1]byte
			if _, err := io.ReadFull(s, op[:]); err != nil {
				return
			}
			if op[0] == 'g' {
				f, err := os.Open(h.src)
				if err != nil {
					return
				}
				defer f.Close()
				_, _ = io.CopyBuffer(writerOnly{s}, readerOnly{f}, make([]byte, 256<<10))
				_ = s.CloseWrite()
				return
			}
			f, err := os.CreateTemp(h.dir, "put")
			if err != nil {
				return
			}
			defer os.Remove(f.Name())
			_, err = io.CopyBuffer(writerOnly{f}, readerOnly{s}, make([]byte, 256<<10))
			if err == nil {
				err = f.Sync()
			}
			_ = f.Close()
			if err == nil {
				_, _ = s.Write([]byte{1})
			}
			_ = s.CloseWrite()
		}()
	}
}

type readerOnly struct{ io.Reader }
type writerOnly struct{ io.Writer }

func benchSize() int64 {
	if v, err := strconv.Atoi(os.Getenv("FS_BENCH_MIB")); err == nil && v > 0 {
		return int64(v) << 20
	}
	return 256 << 20
}

func BenchmarkTransfer(b *testing.B) {
	size := benchSize()
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 4<<20)
	if _, err := io.CopyN(w, rand.NewChaCha8([32]byte{'f', 's'}), size); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	_ = f.Close()
	srvStore := newStore(b)
	info, err := srvStore.ImportFile(b.Context(), src, PutOptions{Tag: "src"})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Config{Store: srvStore})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	p := coretest.NewPair(b, []string{ScopeRead, ScopeWrite},
		coretest.Route{Handler: srv},
		coretest.Route{Handler: bareFile{src: src, dir: b.TempDir()}})
	fsConn := p.Dial(b, ALPN)
	bareConn := p.Dial(b, bareALPN)
	c := NewClient(fsConn)

	// Each iteration runs the bare stream and fs back to back, so that
	// both see the same machine load; the ratio is of their total times.
	bareGet := func(b *testing.B, out string) {
		s, err := bareConn.OpenStream(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Write([]byte{'g'}); err != nil {
			b.Fatal(err)
		}
		_ = s.CloseWrite()
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		n, err := io.CopyBuffer(writerOnly{f}, readerOnly{s}, make([]byte, 256<<10))
		if err != nil || n != size {
			b.Fatal(n, err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	barePut := func(b *testing.B) {
		s, err := bareConn.OpenStream(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Write([]byte{'p'}); err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, err := io.CopyBuffer(writerOnly{s}, readerOnly{f}, make([]byte, 256<<10)); err != nil {
			b.Fatal(err)
		}
		_ = s.CloseWrite()
		var ack [1]byte
		if _, err := io.ReadFull(s, ack[:]); err != nil {
			b.Fatal(err)
		}
	}
	report := func(b *testing.B, bare, fs time.Duration, n int) {
		mb := float64(size) * float64(n) / 1e6
		b.ReportMetric(mb/bare.Seconds(), "bare-MB/s")
		b.ReportMetric(mb/fs.Seconds(), "fs-MB/s")
		b.ReportMetric(bare.Seconds()/fs.Seconds(), "fs/bare")
	}
	b.Run("op=get", func(b *testing.B) {
		out := filepath.Join(b.TempDir(), "out")
		var bare, fsd time.Duration
		n := 0
		for b.Loop() {
			t0 := time.Now()
			bareGet(b, out)
			t1 := time.Now()
			b.StopTimer()
			_ = os.Remove(out)
			local := newStore(b)
			b.StartTimer()
			t2 := time.Now()
			res, err := c.Fetch(b.Context(), local, info.Hash, FetchOptions{})
			if err != nil || res.Received != size {
				b.Fatal(res, err)
			}
			bare, fsd, n = bare+t1.Sub(t0), fsd+time.Since(t2), n+1
		}
		report(b, bare, fsd, n)
	})
	b.Run("op=put", func(b *testing.B) {
		var bare, fsd time.Duration
		n := 0
		for b.Loop() {
			t0 := time.Now()
			barePut(b)
			t1 := time.Now()
			b.StopTimer()
			_ = srvStore.Untag(b.Context(), "src")
			if _, err := srvStore.GC(b.Context(), GCOptions{Grace: -1}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			t2 := time.Now()
			h, err := c.PutFile(b.Context(), src, PutOptions{Tag: "src"})
			if err != nil || h != info.Hash {
				b.Fatal(h, err)
			}
			bare, fsd, n = bare+t1.Sub(t0), fsd+time.Since(t2), n+1
		}
		report(b, bare, fsd, n)
	})
}

// BenchmarkHash is the store's hashing alone (outboard included), to set
// against b3sum.
func BenchmarkHash(b *testing.B) {
	data := testData(64<<20, 5)
	ob := make(memWriterAt, OutboardSize(int64(len(data))))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := encodeOutboard(bytesReader(data), int64(len(data)), io.Discard, ob); err != nil {
			b.Fatal(err)
		}
	}
}
