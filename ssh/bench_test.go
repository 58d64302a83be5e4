package ssh_test

import (
	"fmt"
	"io"
	"testing"

	alkssh "github.com/alkdev/alknet/ssh"
)

// BenchmarkExecCat measures bulk output of a command (head -c N /dev/zero)
// through the SSH server over a real loopback QUIC connection, with the Go
// client. bench/ssh.sh compares the same path with OpenSSH's sshd.
func BenchmarkExecCat(b *testing.B) {
	for _, size := range []int{64 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			f := newFixtureTB(b, alkssh.Config{}, map[string][]string{"alice": allScopes})
			c := f.client("alice")
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				s, err := c.NewSession()
				if err != nil {
					b.Fatal(err)
				}
				out, _ := s.StdoutPipe()
				if err := s.Start(fmt.Sprintf("head -c %d /dev/zero", size)); err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, out)
				if err := s.Wait(); err != nil || n != int64(size) {
					b.Fatalf("%d bytes, %v", n, err)
				}
			}
		})
	}
}
