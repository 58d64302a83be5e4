package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	alkhttp "github.com/alkdev/alknet/http"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// curlOut runs curl -sk with args and returns its stdout (body and, with
// -w, the write-out), failing the test when curl itself fails.
func curlOut(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", append([]string{"-sk", "--max-time", "20"}, args...)...).Output()
	require.NoError(t, err, "curl %v", args)
	return string(out)
}

// alknet serve answers curl (h2 and HTTP/1.1), an HTTP/3 client and
// Prometheus on its one port: static files, the gateway with a peer token
// minted while it runs, and /metrics.
func TestHTTPServe(t *testing.T) {
	t.Parallel()
	needClient(t, "curl", "curl")
	dir := t.TempDir()
	data := filepath.Join(dir, "node")
	site := filepath.Join(dir, "site")
	require.NoError(t, os.MkdirAll(site, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>alknet</h1>\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(site, "data.txt"), []byte("0123456789"), 0o644))
	n := startNode(t, data, "[http]\nroot = \""+site+"\"\n")
	_, hostport, ok := strings.Cut(n.Addr, "@")
	require.True(t, ok, n.Addr)
	base := "https://" + hostport

	// Peers with tokens, added while the node runs.
	token := func(name string, scopes ...string) string {
		args := []string{"--data", data, "peer", "add", name, "--node", coretest.Key(t).NodeID().String()}
		for _, s := range scopes {
			args = append(args, "--scope", s)
		}
		r := runCLI(t, nil, args...)
		require.Equal(t, 0, r.code, r.stderr)
		r = runCLI(t, nil, "--data", data, "peer", "token", name)
		require.Equal(t, 0, r.code, r.stderr)
		return strings.TrimSpace(r.stdout)
	}
	user, ops := token("user", "call"), token("ops", "call", "metrics")

	assert.Equal(t, "<h1>alknet</h1>\n", curlOut(t, "--http2", base+"/"))
	assert.Equal(t, "34567 206 HTTP/2", curlOut(t, "--http2", "-r", "3-7", "-w", " %{http_code} HTTP/%{http_version}", base+"/data.txt"))
	assert.Equal(t, "01 206 HTTP/1.1", curlOut(t, "--http1.1", "-r", "0-1", "-w", " %{http_code} HTTP/%{http_version}", base+"/data.txt"))

	// The gateway: a token reaches node/info within a moment of being
	// minted (the node reloads its peer table).
	deadline := time.Now().Add(10 * time.Second)
	var info string
	for {
		info = curlOut(t, "--http2", "-X", "POST", "-H", "Authorization: Bearer "+user, "-w", "\n%{http_code}", base+"/v1/call/node/info")
		if strings.HasSuffix(info, "\n200") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.True(t, strings.HasSuffix(info, "\n200"), info)
	var ni struct {
		ALPNs []string `json:"alpns"`
	}
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSuffix(info, "\n200")), &ni))
	assert.Subset(t, ni.ALPNs, []string{"h3", "h2", "http/1.1", "alknet/call"})
	out := curlOut(t, "--http1.1", "-D", "-", base+"/v1/services")
	assert.Contains(t, out, "HTTP/1.1 401")
	assert.Contains(t, strings.ToLower(out), `www-authenticate: bearer realm="alknet"`)
	assert.Contains(t, out, `{"code":"FORBIDDEN","message":"authentication required","retryable":false}`)
	out = curlOut(t, "--http2", "-X", "POST", "-H", "Authorization: Bearer "+user, "-w", "\n%{http_code}", base+"/v1/call/node/peers")
	assert.Contains(t, out, `"code":"FORBIDDEN","message":"missing scope admin"`)
	assert.True(t, strings.HasSuffix(out, "\n403"), out)

	// HTTP/3 on the UDP port.
	nid, err := core.ParseNodeID(strings.SplitN(n.Addr, "@", 2)[0])
	require.NoError(t, err)
	c, err := alkhttp.NewClient(core.SecretKey{}, nid, true)
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	resp, err := c.Get(base + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "HTTP/3.0 ok\n", resp.Proto+" "+string(body))

	// Prometheus scrapes with the metrics scope.
	assert.Contains(t, curlOut(t, "--http2", "-H", "Authorization: Bearer "+user, base+"/metrics"), "missing scope metrics")
	text := curlOut(t, "--http2", "-H", "Authorization: Bearer "+ops, base+"/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err)
	require.Contains(t, fams, "alknet_peer_reloads_total")
	assert.GreaterOrEqual(t, fams["alknet_peer_reloads_total"].Metric[0].Counter.GetValue(), 2.0, "two peers added while serving")
	calls := map[string]float64{}
	for _, m := range fams["alknet_calls_total"].Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		calls[labels["op"]+" "+labels["code"]] += m.Counter.GetValue()
	}
	assert.GreaterOrEqual(t, calls["node/info OK"], 1.0)
	require.Contains(t, fams, "alknet_connections_accepted_total")
}

// A bad [http] section stops serve with a one-line error.
func TestHTTPConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ config, want string }{
		{"[http]\n[[http.routes]]\npath = \"/app/\"\n", "http route 1 needs path and proxy"},
		{"[http]\n[[http.routes]]\npath = \"/v1/\"\nproxy = \"http://127.0.0.1:1\"\n", "route /v1/ overlaps the built-in paths"},
		{"[http]\nroot = \"/nonexistent/site\"\n", "static root"},
		{"[http]\nbogus = 1\n", "unknown keys: http.bogus"},
	} {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "config.toml"), []byte(tc.config), 0o600))
		r := runCLI(t, nil, "--data", dir, "serve", "--listen", "127.0.0.1:0")
		assert.NotEqual(t, 0, r.code)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		assert.Contains(t, lines[len(lines)-1], tc.want, "the last line says why: %q", r.stderr)
	}
}
