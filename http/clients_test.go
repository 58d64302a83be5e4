package alkhttp

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// run runs a client program and returns its stdout.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s %v: %s", name, args, stderr.String())
	if os.Getenv("ALKNET_TEST_LOG") != "" {
		t.Log(stderr.String())
	}
	return string(out)
}

// curl runs curl quietly, trusting any certificate (the node shows its
// ed25519 key, which no CA signs; alknet clients pin it instead).
func curl(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, nil, "curl", append([]string{"-sk", "--max-time", "30"}, args...)...)
}

// curl over h2 and HTTP/1.1: static files with Range, gateway calls with a
// bearer token, an event stream, and the error bodies.
func TestCurl(t *testing.T) {
	needClient(t, "curl", "curl")
	n := startNode(t, nil)
	auth := func(tok string) []string { return []string{"-H", "Authorization: Bearer " + tok} }
	for _, proto := range []string{"--http2", "--http1.1"} {
		t.Run(proto, func(t *testing.T) {
			want := map[string]string{"--http2": "2", "--http1.1": "1.1"}[proto]
			out := curl(t, proto, "-r", "7-11", "-w", " %{http_code} %{http_version}", n.base+"/hello.txt")
			assert.Equal(t, "world 206 "+want, out)
			out = curl(t, proto, "-D", "-", "-o", "/dev/null", n.base+"/hello.txt")
			assert.Regexp(t, `(?i)etag: "[0-9a-z]+-[0-9a-z]+"`, out)
			assert.Regexp(t, `(?i)alt-svc: h3=":\d+"; ma=86400`, out)

			out = curl(t, append(auth(tokenUser), proto, "-X", "POST", "-H", "Content-Type: application/json",
				"-d", `{"msg":"from curl"}`, "-w", "\n%{http_code}", n.base+"/v1/call/test/echo")...)
			assert.Equal(t, "{\"msg\":\"from curl\",\"caller\":\"user\"}\n\n200", out)

			for _, tc := range []struct {
				name, token, path, body, status, code string
			}{
				{"401", "", "/v1/call/test/echo", `{"msg":"x"}`, "401", `{"code":"FORBIDDEN","message":"authentication required","retryable":false}`},
				{"403", tokenUser, "/v1/call/test/secret", ``, "403", `{"code":"FORBIDDEN","message":"missing scope admin","retryable":false}`},
				{"404", tokenUser, "/v1/call/test/nope", ``, "404", `{"code":"NOT_FOUND","message":"no operation /test/nope","retryable":false}`},
				{"422", tokenUser, "/v1/call/test/echo", `{"msg":1}`, "422", `"code":"INVALID_INPUT","message":"input does not match the schema of test/echo"`},
			} {
				args := []string{proto, "-X", "POST", "-w", "\n%{http_code}"}
				if tc.token != "" {
					args = append(args, auth(tc.token)...)
				}
				if tc.body != "" {
					args = append(args, "-H", "Content-Type: application/json", "-d", tc.body)
				}
				out := curl(t, append(args, n.base+tc.path)...)
				assert.True(t, strings.HasSuffix(out, "\n"+tc.status), "%s: %q", tc.name, out)
				assert.Contains(t, out, tc.code, tc.name)
			}

			in := url.QueryEscape(`{"n":3}`)
			out = curl(t, append(auth(tokenUser), proto, "-N", "-H", "Last-Event-ID: 1", n.base+"/v1/subscribe/test/ticks?input="+in)...)
			assert.Equal(t, "id: 2\ndata: {\"id\":2}\n\nid: 3\ndata: {\"id\":3}\n\nevent: call.completed\ndata: {}\n\n", out)
		})
	}
}

// Debian's ngtcp2 client (gtlsclient) fetches a file over HTTP/3.
func TestNgtcp2Client(t *testing.T) {
	bin := needClient(t, "gtlsclient", "ngtcp2-client")
	n := startNode(t, nil)
	host, port, _ := strings.Cut(n.ep.Addr().Host, ":")
	dir := t.TempDir()
	run(t, nil, bin, "--quiet", "--exit-on-all-streams-close", "--download="+dir, host, port, n.base+"/hello.txt")
	b, err := os.ReadFile(filepath.Join(dir, "hello.txt"))
	require.NoError(t, err)
	assert.Equal(t, "hello, world\n", string(b))
}

// nodeClientsDir holds the Node.js clients of the tests; its node_modules
// (npm install --prefix http/testdata/node) is installed by CI.
const nodeClientsDir = "testdata/node"

// needNodeModule returns the node binary when the npm package pkg is
// installed in nodeClientsDir.
func needNodeModule(t *testing.T, pkg string) string {
	t.Helper()
	node := needClient(t, "node", "nodejs")
	if _, err := os.Stat(filepath.Join(nodeClientsDir, "node_modules", pkg)); err != nil {
		msg := pkg + " is not installed: npm install --prefix http/" + nodeClientsDir
		if os.Getenv("ALKNET_REQUIRE_CLIENTS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node
}

// The MCP TypeScript SDK's client lists the tools and calls one.
func TestMCPTypeScriptClient(t *testing.T) {
	node := needNodeModule(t, "@modelcontextprotocol/sdk")
	n := startNode(t, nil)
	// Node's fetch checks certificates against CAs; the node shows its
	// ed25519 key, which the test trusts by turning the check off.
	out := run(t, []string{"NODE_TLS_REJECT_UNAUTHORIZED=0", "NODE_NO_WARNINGS=1"}, node, filepath.Join(nodeClientsDir, "mcp-client.mjs"), n.base+"/mcp", tokenUser)
	var res struct {
		Tools  []string `json:"tools"`
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
			IsError bool `json:"isError"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Contains(t, res.Tools, "test__echo")
	assert.NotContains(t, res.Tools, "test__secret")
	require.Len(t, res.Result.Content, 1)
	assert.False(t, res.Result.IsError)
	assert.JSONEq(t, `{"msg":"from typescript","caller":"user"}`, res.Result.Content[0].Text)
}

// /openapi.json is a valid OpenAPI 3.1 document by swagger-parser's
// validator, for a caller who sees every kind of operation.
func TestOpenAPIValidates(t *testing.T) {
	node := needNodeModule(t, "@apidevtools/swagger-parser")
	n := startNode(t, nil)
	c := n.client(t, core.SecretKey{}, false)
	resp, body := do(t, c, "GET", n.base+"/openapi.json", tokenAdmin, "")
	require.Equal(t, 200, resp.StatusCode, body)
	file := filepath.Join(t.TempDir(), "openapi.json")
	require.NoError(t, os.WriteFile(file, []byte(body), 0o644))
	out := run(t, nil, node, filepath.Join(nodeClientsDir, "openapi-validate.mjs"), file)
	assert.Regexp(t, `^valid 3\.1\.0 \d+ paths\n$`, out)
}
