package alkhttp

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bearer adds a bearer token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func mcpSession(t *testing.T, n *testNode, token string, h3 bool) (*mcp.ClientSession, error) {
	t.Helper()
	hc := n.client(t, core.SecretKey{}, h3)
	hc.Transport = bearer{token: token, next: hc.Transport}
	cl := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, err := cl.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: n.base + "/mcp", HTTPClient: hc, DisableStandaloneSSE: true}, nil)
	if err == nil {
		t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}

func TestMCP(t *testing.T) {
	n := startNode(t, nil)
	for _, h3 := range []bool{true, false} {
		t.Run(map[bool]string{true: "h3", false: "h2"}[h3], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			s, err := mcpSession(t, n, tokenUser, h3)
			require.NoError(t, err)
			tools, err := s.ListTools(ctx, nil)
			require.NoError(t, err)
			byName := map[string]*mcp.Tool{}
			var names []string
			for _, tl := range tools.Tools {
				byName[tl.Name] = tl
				names = append(names, tl.Name)
			}
			sort.Strings(names)
			assert.Contains(t, names, "test__echo")
			assert.Contains(t, names, "test__double")
			assert.Contains(t, names, "services__list")
			assert.NotContains(t, names, "test__secret", "only what the caller may use")
			assert.NotContains(t, names, "test__internal")
			double, err := json.Marshal(byName["test__double"].InputSchema)
			require.NoError(t, err)
			assert.JSONEq(t, `{"type":"object","description":"The operation's input, wrapped: its schema is not an object.","properties":{"input":{"type":"integer"}}}`, string(double))

			res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "test__echo", Arguments: map[string]any{"msg": "hi"}})
			require.NoError(t, err)
			require.False(t, res.IsError)
			assert.JSONEq(t, `{"msg":"hi","caller":"user"}`, res.Content[0].(*mcp.TextContent).Text)

			res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "test__double", Arguments: map[string]any{"input": 21}})
			require.NoError(t, err)
			assert.Equal(t, "42", res.Content[0].(*mcp.TextContent).Text)

			res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "test__echo", Arguments: map[string]any{"msg": 5}})
			require.NoError(t, err)
			assert.True(t, res.IsError)
			assert.Contains(t, res.Content[0].(*mcp.TextContent).Text, "INVALID_INPUT: input does not match the schema of test/echo")

			res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "test__ticks", Arguments: map[string]any{"n": 3}})
			require.NoError(t, err)
			assert.JSONEq(t, `[{"id":1},{"id":2},{"id":3}]`, res.Content[0].(*mcp.TextContent).Text)
		})
	}
	t.Run("admin sees more", func(t *testing.T) {
		s, err := mcpSession(t, n, tokenAdmin, false)
		require.NoError(t, err)
		res, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: "test__secret", Arguments: map[string]any{}})
		require.NoError(t, err)
		assert.Equal(t, `"s3cret"`, res.Content[0].(*mcp.TextContent).Text)
	})
	t.Run("refused", func(t *testing.T) {
		c := n.client(t, core.SecretKey{}, false)
		resp, body := do(t, c, "POST", n.base+"/mcp", "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
		assert.Equal(t, 401, resp.StatusCode, body)
		resp, body = do(t, c, "POST", n.base+"/mcp", tokenNone, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
		assert.Equal(t, 403, resp.StatusCode, body)
		_, err := mcpSession(t, n, "alk_bad", false)
		assert.Error(t, err)
		resp, body = do(t, c, "POST", n.base+"/mcp", tokenUser, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
		assert.Equal(t, 403, resp.StatusCode, body)
		assert.Contains(t, body, "cross-origin request refused")
	})
}
