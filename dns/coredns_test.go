package dns

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// corednsBinary finds CoreDNS in PATH or in $GOPATH/bin (go install
// github.com/coredns/coredns@v1.15.0, which .ci/run does). Without it the
// test is skipped, or fails under ALKNET_REQUIRE_CLIENTS=1.
func corednsBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("coredns"); err == nil {
		return p
	}
	if gp, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(string(bytes.TrimSpace(gp)), "bin", "coredns")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("ALKNET_REQUIRE_CLIENTS") == "1" {
		t.Fatal("coredns not installed (ALKNET_REQUIRE_CLIENTS=1): go install github.com/coredns/coredns@v1.15.0")
	}
	t.Skip("coredns not installed (go install github.com/coredns/coredns@v1.15.0)")
	return ""
}

// transportLog records the transport of every query a handler sees.
type transportLog struct {
	h  Handler
	mu sync.Mutex
	tr map[string]int
}

func (l *transportLog) ServeDNS(ctx context.Context, req *Request) (*mdns.Msg, error) {
	l.mu.Lock()
	l.tr[req.Transport]++
	l.mu.Unlock()
	return l.h.ServeDNS(ctx, req)
}

func (l *transportLog) count(tr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tr[tr]
}

// TestCoreDNSForwardsOverDoQ: CoreDNS, a stock DoQ client, forwards to the
// node with "forward . quic://", verifying the node's public-name
// certificate against a test CA.
func TestCoreDNSForwardsOverDoQ(t *testing.T) {
	bin := corednsBinary(t)
	tl := &transportLog{h: NewResolver(mustZones(t, bigZone(), "example.test."), nil), tr: map[string]int{}}
	srv, err := NewServer(Config{Handler: tl})
	require.NoError(t, err)
	ep, ca := startDoQ(t, srv, core.Config{})

	dir := t.TempDir()
	// CoreDNS binds a port picked here; another process may take it in
	// between, so start over on a new port when it cannot bind, and query
	// only once it says it serves (an answer before that could come from
	// whatever holds the port).
	var listen string
	var logs *lockedBuffer
	var done chan struct{}
	for attempt := 1; ; attempt++ {
		listen = freeAddr(t)
		corefile := fmt.Sprintf(`.:%s {
    bind 127.0.0.1
    forward . quic://%s {
        tls %s
        tls_servername %s
    }
}
`, portOf(listen), ep.LocalAddr().String(), filepath.Join(ca.dir, "ca.pem"), testServerName)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "Corefile"), []byte(corefile), 0o600))
		logs = &lockedBuffer{}
		cmd := exec.Command(bin, "-conf", filepath.Join(dir, "Corefile"))
		cmd.Stdout, cmd.Stderr = logs, logs
		require.NoError(t, cmd.Start())
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
			}
		})
		serving := false
		for deadline := time.Now().Add(30 * time.Second); !serving; {
			select {
			case <-exited:
				if attempt < 3 && strings.Contains(logs.String(), "address already in use") {
					break
				}
				t.Fatalf("coredns exited: %s", logs.String())
			case <-time.After(20 * time.Millisecond):
				serving = strings.Contains(logs.String(), "CoreDNS-")
				require.True(t, time.Now().Before(deadline), "coredns did not start within 30s: %s", logs.String())
				continue
			}
			break
		}
		if serving {
			done = exited
			break
		}
	}

	// Ready when it answers.
	c := &mdns.Client{Net: "udp", Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	var r *mdns.Msg
	for {
		r, _, err = c.ExchangeContext(t.Context(), query("www.example.test", mdns.TypeA, true), listen)
		if err == nil && r.Rcode == mdns.RcodeSuccess {
			break
		}
		select {
		case <-done:
			t.Fatalf("coredns exited: %s", logs.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "coredns did not answer within 30s (last error %v): %s", err, logs.String())
	}
	assert.Equal(t, []string{"www.example.test.\t300\tIN\tA\t192.0.2.1", "www.example.test.\t300\tIN\tA\t192.0.2.2"}, rrStrings(r.Answer))
	r, _, err = c.ExchangeContext(t.Context(), query("nope.example.test", mdns.TypeA, true), listen)
	require.NoError(t, err)
	assert.Equal(t, mdns.RcodeNameError, r.Rcode)
	// A 2.5 KB answer crosses DoQ whole; CoreDNS then truncates for UDP
	// and answers in full over TCP.
	tcp := &mdns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err = tcp.ExchangeContext(t.Context(), query("big.example.test", mdns.TypeTXT, true), listen)
	require.NoError(t, err)
	assert.Len(t, r.Answer, 12)
	assert.GreaterOrEqual(t, tl.count(TransportDoQ), 3, "the queries came over DoQ")
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return addr
}
