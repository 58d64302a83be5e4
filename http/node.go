package alkhttp

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
)

// SiteConfig describes what a node serves over HTTP: the parts the alknet
// binary mounts from its [http] section. Each part is off when its field
// is empty (or false).
type SiteConfig struct {
	// Registry is the node's call registry, for the gateway and MCP.
	Registry *call.Registry
	// Gateway mounts the call gateway (/v1/..., /openapi.json).
	Gateway bool
	// MCP mounts the MCP endpoint at /mcp.
	MCP bool
	// CallAccess gates the gateway and MCP (see GatewayConfig.Access).
	CallAccess core.AccessControl
	// CallTimeout is GatewayConfig.CallTimeout and MCPConfig.CallTimeout.
	CallTimeout time.Duration
	// OriginPatterns is GatewayConfig.OriginPatterns.
	OriginPatterns []string
	// Root serves a static site from this directory at "/".
	Root string
	// Static configures the static site.
	Static StaticConfig
	// Routes mount reverse proxies.
	Routes []Route
	// Metrics serves /metrics behind MetricsAccess.
	Metrics *Metrics
	// MetricsAccess gates /metrics. The zero value means
	// {RequiredScopes: ["metrics"]}.
	MetricsAccess core.AccessControl
	// Health serves /healthz (200 "ok") to anyone.
	Health bool
	// Logger receives failures. Nil is silent.
	Logger *slog.Logger
}

// Site is the handler a node serves: a mux of the configured parts.
type Site struct {
	mux     *http.ServeMux
	closers []io.Closer
}

// NewSite builds the handler for cfg. Close releases the static root.
func NewSite(cfg SiteConfig) (*Site, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Site{mux: http.NewServeMux()}
	taken := map[string]string{}
	mount := func(pattern, what string, h http.Handler) error {
		if prev, ok := taken[pattern]; ok {
			return fmt.Errorf("%w: %s and %s both use %s", ErrConfig, prev, what, pattern)
		}
		taken[pattern] = what
		s.mux.Handle(pattern, h)
		return nil
	}
	fail := func(err error) (*Site, error) {
		_ = s.Close()
		return nil, err
	}
	if (cfg.Gateway || cfg.MCP) && cfg.Registry == nil {
		return nil, fmt.Errorf("%w: the gateway and mcp need a call registry", ErrConfig)
	}
	if cfg.Gateway {
		g, err := NewGateway(GatewayConfig{Registry: cfg.Registry, Access: cfg.CallAccess, CallTimeout: cfg.CallTimeout,
			OriginPatterns: cfg.OriginPatterns, Logger: cfg.Logger})
		if err != nil {
			return fail(err)
		}
		for _, p := range g.Paths() {
			if err := mount(p, "the gateway", g); err != nil {
				return fail(err)
			}
		}
	}
	if cfg.MCP {
		m, err := NewMCP(MCPConfig{Registry: cfg.Registry, Access: cfg.CallAccess, CallTimeout: cfg.CallTimeout, Logger: cfg.Logger})
		if err != nil {
			return fail(err)
		}
		if err := mount("/mcp", "mcp", m); err != nil {
			return fail(err)
		}
	}
	if cfg.Metrics != nil {
		acl := cfg.MetricsAccess
		if acl.IsOpen() {
			acl = core.AccessControl{RequiredScopes: []string{"metrics"}}
		}
		if err := mount("GET /metrics", "metrics", Require(acl, cfg.Metrics.Handler())); err != nil {
			return fail(err)
		}
	}
	if cfg.Health {
		if err := mount("GET /healthz", "healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = io.WriteString(w, "ok\n")
		})); err != nil {
			return fail(err)
		}
	}
	for _, rt := range cfg.Routes {
		h, err := NewProxy(rt, cfg.Logger)
		if err != nil {
			return fail(err)
		}
		if reserved(rt.Path) {
			return fail(fmt.Errorf("%w: route %s overlaps the built-in paths (/v1/, /openapi.json, /mcp, /metrics, /healthz)", ErrConfig, rt.Path))
		}
		if err := mount(rt.Path, "route "+rt.Path, h); err != nil {
			return fail(err)
		}
	}
	if cfg.Root != "" {
		st, err := NewStatic(cfg.Root, cfg.Static)
		if err != nil {
			return fail(err)
		}
		s.closers = append(s.closers, st)
		if err := mount("/", "the static root", st); err != nil {
			return fail(err)
		}
	} else {
		s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, r, http.StatusNotFound, call.CodeNotFound, "not found")
		})
	}
	return s, nil
}

// reserved reports whether a route prefix would shadow or be shadowed by a
// built-in path.
func reserved(p string) bool {
	if p == "/" {
		return false // the built-in paths are more specific and win
	}
	for _, b := range []string{"/v1/", "/openapi.json", "/mcp", "/metrics", "/healthz"} {
		if strings.HasPrefix(b, p) || strings.HasPrefix(p, b) {
			return true
		}
	}
	return false
}

// ServeHTTP implements http.Handler.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close releases what the site holds open.
func (s *Site) Close() error {
	for _, c := range s.closers {
		_ = c.Close()
	}
	return nil
}
