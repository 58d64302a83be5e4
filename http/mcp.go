package alkhttp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// MCPConfig configures an MCP endpoint. Registry is required.
type MCPConfig struct {
	// Registry holds the operations offered as tools.
	Registry *call.Registry
	// Access gates the endpoint, as GatewayConfig.Access gates the
	// gateway.
	Access core.AccessControl
	// CallTimeout bounds a tool call whose operation sets no timeout of its
	// own; for a subscription, how long its items are collected. Zero
	// means 30s.
	CallTimeout time.Duration
	// MaxItems bounds the items a subscription tool collects before it
	// stops it and answers. Zero means 100.
	MaxItems int
	// Name and Version describe the server to clients. Empty means
	// "alknet" and "1".
	Name, Version string
	// Logger receives the SDK's log lines. Nil is silent.
	Logger *slog.Logger
}

// NewMCP returns an MCP server (streamable HTTP transport, stateless: every
// request is authorized on its own) whose tools are the call operations
// the caller may use: one tool per operation, named by the operation's
// name with "/" spelled "__" (services/list is services__list), with the
// operation's input schema. An input that is not a JSON object is wrapped:
// the tool takes {"input": <the operation's input>}. A tool call runs the
// operation with the caller's identity; its output is the result's text
// (and structured content when the output is an object); a call error is a
// result with isError set and "CODE: message" as its text.
func NewMCP(cfg MCPConfig) (http.Handler, error) {
	if cfg.Registry == nil {
		return nil, fmt.Errorf("%w: mcp needs a registry", ErrConfig)
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = defaultCallTimeout
	}
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = 100
	}
	if cfg.Name == "" {
		cfg.Name = "alknet"
	}
	if cfg.Version == "" {
		cfg.Version = "1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &mcpHandler{cfg: cfg}
	stream := mcp.NewStreamableHTTPHandler(m.server, &mcp.StreamableHTTPOptions{
		Stateless:    true,
		JSONResponse: true,
		Logger:       cfg.Logger,
	})
	// Browsers may hold a credential (a TLS client certificate): refuse
	// cross-origin POSTs, as the gateway does.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusForbidden, call.CodeForbidden, "cross-origin request refused")
	}))
	m.stream = cop.Handler(stream)
	return m, nil
}

type mcpHandler struct {
	cfg    MCPConfig
	stream http.Handler
}

type mcpCallerKey struct{}

func (m *mcpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ci := Caller(r)
	if ci.BadToken {
		writeDenied(w, r, ci, "invalid bearer token")
		return
	}
	if err := m.cfg.Access.Check(ci.Identity); err != nil {
		writeDenied(w, r, ci, err.Error())
		return
	}
	c := &call.Caller{Identity: ci.Identity, Node: ci.Node, ByToken: ci.ByToken}
	m.stream.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), mcpCallerKey{}, c)))
}

// ToolName is the MCP tool name of a call operation: its name with "/"
// spelled "__".
func ToolName(op string) string { return strings.ReplaceAll(op, "/", "__") }

// server builds the MCP server of one request, with the caller's tools.
func (m *mcpHandler) server(r *http.Request) *mcp.Server {
	c, _ := r.Context().Value(mcpCallerKey{}).(*call.Caller)
	srv := mcp.NewServer(&mcp.Implementation{Name: m.cfg.Name, Version: m.cfg.Version}, &mcp.ServerOptions{Logger: m.cfg.Logger})
	specs := m.cfg.Registry.Allowed(c)
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	seen := map[string]bool{}
	for _, s := range specs {
		name := ToolName(s.Name)
		if seen[name] || len(name) > 128 {
			m.cfg.Logger.Warn("operation not offered as an mcp tool", "op", s.Name, "reason", "tool name taken or too long")
			continue
		}
		seen[name] = true
		input, wrapped := toolInputSchema(s.Input)
		tool := &mcp.Tool{Name: name, Description: toolDescription(s), InputSchema: input}
		if s.Output != nil && s.Output.Type == "object" && s.Kind != call.KindSubscription {
			tool.OutputSchema = s.Output
		}
		srv.AddTool(tool, m.toolHandler(c, s, wrapped))
	}
	return srv
}

func toolDescription(s call.Spec) string {
	d := s.Description
	if s.Kind == call.KindSubscription {
		d = strings.TrimSpace(d + " (A subscription: the result is a JSON array of the items collected.)")
	}
	if d == "" {
		d = "alknet operation " + s.Name
	}
	return d
}

// toolInputSchema returns the tool input schema for an operation input
// and whether it wraps the input as {"input": ...}: the SDK takes only
// schemas of type "object".
func toolInputSchema(in *jsonschema.Schema) (*jsonschema.Schema, bool) {
	if in != nil && in.Type == "object" {
		return in, false
	}
	prop := in
	if prop == nil {
		prop = &jsonschema.Schema{}
	}
	return &jsonschema.Schema{
		Type:        "object",
		Properties:  map[string]*jsonschema.Schema{"input": prop},
		Description: "The operation's input, wrapped: its schema is not an object.",
	}, true
}

func (m *mcpHandler) toolHandler(c *call.Caller, s call.Spec, wrapped bool) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args json.RawMessage
		if req.Params != nil {
			args = req.Params.Arguments
		}
		input := args
		if wrapped {
			var w struct {
				Input json.RawMessage `json:"input"`
			}
			if len(args) > 0 && string(args) != "null" {
				if err := json.Unmarshal(args, &w); err != nil {
					return toolError(call.NewError(call.CodeInvalidInput, "arguments must be an object {\"input\": ...}")), nil
				}
			}
			input = w.Input
		}
		inv, e := m.cfg.Registry.Prepare(s.Name, c, input)
		if e != nil {
			return toolError(e), nil
		}
		if s.Kind == call.KindSubscription {
			return m.collect(ctx, inv), nil
		}
		var out json.RawMessage
		if e := inv.Run(ctx, m.cfg.CallTimeout, func(v json.RawMessage) error { out = v; return nil }); e != nil {
			return toolError(e), nil
		}
		res := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(out)}}}
		if s.Output != nil && s.Output.Type == "object" {
			res.StructuredContent = out
		}
		return res, nil
	}
}

// errEnough stops a subscription tool that has its items.
var errEnough = fmt.Errorf("alknet/http: enough items")

// collect runs a subscription for up to CallTimeout and MaxItems items
// and answers with the items as a JSON array.
func (m *mcpHandler) collect(ctx context.Context, inv *call.Invocation) *mcp.CallToolResult {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.CallTimeout)
	defer cancel()
	items := []json.RawMessage{}
	e := inv.Run(ctx, 0, func(v json.RawMessage) error {
		items = append(items, v)
		if len(items) >= m.cfg.MaxItems {
			return errEnough
		}
		return nil
	})
	if e != nil && ctx.Err() == nil {
		return toolError(e)
	}
	b, _ := json.Marshal(items)
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}
}

func toolError(e *call.Error) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: e.Code + ": " + e.Message}}}
}
