package alkhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/require"
)

// Test tokens: alk_ and 32 base64url characters, as store.NewToken makes.
const (
	tokenUser  = "alk_dXNlcnVzZXJ1c2VydXNlcnVzZXJ1c2Vy"
	tokenAdmin = "alk_YWRtaW5hZG1pbmFkbWluYWRtaW5hZG1p"
	tokenNone  = "alk_bm9uZW5vbmVub25lbm9uZW5vbmVub25l" // a peer without the call scope
)

// testNode is a serving endpoint with the http handler on QUIC and TCP.
type testNode struct {
	ep        *core.Endpoint
	srv       *Server
	site      *Site
	reg       *call.Registry
	metrics   *Metrics
	root      string
	clientKey core.SecretKey // known as peer "laptop" with scope call
	strayKey  core.SecretKey // a key the node does not know
	base      string         // https://127.0.0.1:port
}

type echoIn struct {
	Msg string `json:"msg"`
}
type echoOut struct {
	Msg    string `json:"msg"`
	Caller string `json:"caller"`
}
type tickIn struct {
	N           int    `json:"n"`
	LastEventID string `json:"last_event_id,omitempty"`
}
type tick struct {
	ID int `json:"id"`
}

// testRegistry holds the operations the tests call.
func testRegistry() *call.Registry {
	reg := call.NewRegistry(nil)
	call.Query(reg, "test/echo", func(ctx context.Context, in echoIn) (echoOut, error) {
		who := "anonymous"
		if c := call.CallerFromContext(ctx); c != nil && c.Identity != nil {
			who = c.Identity.ID
		}
		return echoOut{Msg: in.Msg, Caller: who}, nil
	}, call.Options{Description: "Echo a message with the caller's peer id."})
	call.Query(reg, "test/double", func(_ context.Context, n int) (int, error) { return 2 * n, nil },
		call.Options{Description: "Twice a number (an input that is not an object)."})
	call.Query(reg, "test/secret", func(context.Context, struct{}) (string, error) { return "s3cret", nil },
		call.Options{Access: core.AccessControl{RequiredScopes: []string{"admin"}}})
	call.Query(reg, "test/slow", func(ctx context.Context, _ struct{}) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	}, call.Options{Timeout: 50 * time.Millisecond})
	call.Query(reg, "test/fail", func(context.Context, struct{}) (string, error) {
		return "", errors.New("disk on fire at /var/secret")
	}, call.Options{})
	call.Mutation(reg, "test/set", func(_ context.Context, in echoIn) (echoIn, error) { return in, nil }, call.Options{})
	call.Subscription(reg, "test/ticks", func(ctx context.Context, in tickIn, emit func(tick) error) error {
		start := 1
		if in.LastEventID != "" {
			if _, err := fmt.Sscan(in.LastEventID, &start); err != nil {
				return call.NewError(call.CodeInvalidInput, "bad last_event_id")
			}
			start++
		}
		for i := start; i <= in.N; i++ {
			if err := emit(tick{ID: i}); err != nil {
				return err
			}
		}
		return nil
	}, call.Options{Description: "Count from 1 (or after last_event_id) to n."})
	call.Subscription(reg, "test/forever", func(ctx context.Context, _ struct{}, emit func(tick) error) error {
		for i := 1; ; i++ {
			if err := emit(tick{ID: i}); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}, call.Options{})
	call.Query(reg, "test/internal", func(context.Context, struct{}) (string, error) { return "hidden", nil },
		call.Options{Visibility: call.Internal})
	return reg
}

// startNode starts an endpoint serving the gateway, MCP, a static root,
// metrics and healthz over h3, h2 and http/1.1.
func startNode(t *testing.T, opts *Options, mutate ...func(*SiteConfig)) *testNode {
	t.Helper()
	return startNodeCore(t, opts, nil, mutate...)
}

// startNodeCore is startNode with the endpoint's config adjusted by
// coreCfg.
func startNodeCore(t *testing.T, opts *Options, coreCfg func(*core.Config), mutate ...func(*SiteConfig)) *testNode {
	t.Helper()
	n := &testNode{clientKey: coretest.Key(t), strayKey: coretest.Key(t), reg: testRegistry(), metrics: NewMetrics()}
	peers := core.StaticPeers([]core.PeerEntry{
		{PeerID: "laptop", Fingerprints: []string{n.clientKey.NodeID().Fingerprint()}, Scopes: []string{"call"}, Enabled: true},
		{PeerID: "user", TokenHash: core.HashToken([]byte(tokenUser)), Scopes: []string{"call"}, Enabled: true},
		{PeerID: "admin", TokenHash: core.HashToken([]byte(tokenAdmin)), Scopes: []string{"call", "admin", "metrics"}, Enabled: true},
		{PeerID: "none", TokenHash: core.HashToken([]byte(tokenNone)), Scopes: []string{}, Enabled: true},
	})
	n.root = t.TempDir()
	writeFile(t, filepath.Join(n.root, "index.html"), "<h1>home</h1>\n")
	writeFile(t, filepath.Join(n.root, "hello.txt"), "hello, world\n")
	cfg := SiteConfig{
		Registry: n.reg, Gateway: true, MCP: true, CallAccess: core.AccessControl{RequiredScopes: []string{"call"}},
		Root: n.root, Metrics: n.metrics, Health: true,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	site, err := NewSite(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = site.Close() })
	n.site = site
	o := Options{Logger: testLogger(t)}
	if opts != nil {
		o = *opts
	}
	o.Identities = peers
	o.Metrics = n.metrics
	n.srv = New(site, &o)
	n.reg.SetMetrics(n.metrics)
	ecfg := core.Config{ListenAddr: "127.0.0.1:0", SecretKey: coretest.Key(t), Identities: peers, ListenTCP: true, Logger: testLogger(t)}
	if coreCfg != nil {
		coreCfg(&ecfg)
	}
	ep, err := core.NewEndpoint(ecfg)
	require.NoError(t, err)
	ep.SetMetrics(n.metrics)
	ep.Register(n.srv, core.AccessControl{})
	errc := make(chan error, 1)
	go func() { errc <- ep.Serve(context.Background()) }()
	select {
	case <-ep.Ready():
	case err := <-errc:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("endpoint not ready within 10s")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ep.Shutdown(ctx)
		select {
		case <-errc:
		case <-time.After(10 * time.Second):
			t.Error("serve did not return within 10s of shutdown")
		}
	})
	n.ep = ep
	n.base = "https://" + ep.Addr().Host
	return n
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

// client returns an HTTP client of the node: h3 or TCP, as key (zero:
// anonymous).
func (n *testNode) client(t *testing.T, key core.SecretKey, h3 bool) *http.Client {
	t.Helper()
	c, err := NewClient(key, n.ep.NodeID(), h3)
	require.NoError(t, err)
	c.Timeout = 20 * time.Second
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, c *http.Client, method, url, token, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err, "%s %s", method, url)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp, string(b)
}

// needClient skips (or fails with ALKNET_REQUIRE_CLIENTS=1) when the
// program name is not installed, and returns its path.
func needClient(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("ALKNET_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("%s is required (install %s)", name, pkg)
		}
		t.Skipf("%s not installed (install %s)", name, pkg)
	}
	return p
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("ALKNET_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
