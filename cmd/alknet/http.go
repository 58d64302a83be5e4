package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/alkdev/alknet/core"
	alkhttp "github.com/alkdev/alknet/http"
)

// httpConfig is the [http] section of config.toml. HTTP is on by default:
// HTTP/3 on the node's UDP port, h2 and HTTP/1.1 on its TCP listener,
// serving the call gateway, MCP, /metrics and /healthz (each able to be
// switched off), a static root and reverse-proxy routes when configured.
type httpConfig struct {
	// Enabled serves HTTP at all; default true.
	Enabled *bool `toml:"enabled"`
	// Root is a directory served as a static site at "/" (relative paths
	// are below the data directory); empty serves none.
	Root string `toml:"root"`
	// Listing shows directory listings under Root; default false.
	Listing bool `toml:"listing"`
	// Gateway serves the call gateway (/v1/..., /openapi.json); default true.
	Gateway *bool `toml:"gateway"`
	// MCP serves the MCP endpoint /mcp; default true.
	MCP *bool `toml:"mcp"`
	// Metrics serves /metrics (scope "metrics") and collects the node's
	// counters; default true.
	Metrics *bool `toml:"metrics"`
	// Healthz serves /healthz; default true.
	Healthz *bool `toml:"healthz"`
	// Origins are browser origins besides the node's own allowed to use the
	// gateway's WebSocket and cross-origin POSTs ("https://app.example").
	Origins []string `toml:"origins"`
	// CallTimeout bounds gateway and MCP calls; default 30s.
	CallTimeout time.Duration `toml:"call_timeout"`
	// Limits of the HTTP servers; zero keeps the module's defaults.
	MaxHeaderBytes       int           `toml:"max_header_bytes"`
	MaxBodyBytes         int64         `toml:"max_body_bytes"`
	ReadHeaderTimeout    time.Duration `toml:"read_header_timeout"`
	IdleTimeout          time.Duration `toml:"idle_timeout"`
	MaxConcurrentStreams int           `toml:"max_concurrent_streams"`
	MaxAnonStreams       int           `toml:"max_anon_streams"`
	// Routes are reverse proxies ([[http.routes]]).
	Routes []httpRoute `toml:"routes"`
}

// httpRoute is one [[http.routes]] table.
type httpRoute struct {
	Path   string   `toml:"path"`
	Proxy  string   `toml:"proxy"`
	Scopes []string `toml:"scopes"`
}

func on(b *bool) bool { return b == nil || *b }

func init() {
	addExtension(extension{
		name:     "http",
		apply:    func(cfg *fileConfig) error { return cfg.HTTP.check() },
		services: httpServices,
	})
}

// check refuses a bad [http] section before the node starts.
func (c httpConfig) check() error {
	for i, r := range c.Routes {
		if r.Path == "" || r.Proxy == "" {
			return fmt.Errorf("config: http route %d needs path and proxy", i+1)
		}
		if err := checkScopes(r.Scopes, true, "http route scopes"); err != nil {
			return fmt.Errorf("config: http route %s: %w", r.Path, err)
		}
	}
	return nil
}

// httpServices serves h3, h2 and http/1.1 with the parts [http] turns on.
func httpServices(env *serveEnv) ([]*service, error) {
	c := env.cfg.HTTP
	if !on(c.Enabled) {
		return nil, nil
	}
	var metrics *alkhttp.Metrics
	if on(c.Metrics) {
		metrics = alkhttp.NewMetrics()
		env.ep.SetMetrics(metrics)
		env.calls.SetMetrics(metrics)
		if env.peers != nil {
			env.peers.SetMetrics(metrics)
		}
	}
	root := c.Root
	if root != "" && !filepath.IsAbs(root) {
		root = env.g.path(root)
	}
	routes := make([]alkhttp.Route, len(c.Routes))
	for i, r := range c.Routes {
		routes[i] = alkhttp.Route{Path: r.Path, Proxy: r.Proxy, Scopes: r.Scopes}
	}
	site, err := alkhttp.NewSite(alkhttp.SiteConfig{
		Registry:       env.calls,
		Gateway:        on(c.Gateway),
		MCP:            on(c.MCP),
		CallAccess:     core.AccessControl{RequiredScopes: []string{"call"}},
		CallTimeout:    c.CallTimeout,
		OriginPatterns: c.Origins,
		Root:           root,
		Static:         alkhttp.StaticConfig{Listing: c.Listing},
		Routes:         routes,
		Metrics:        metrics,
		Health:         on(c.Healthz),
		Logger:         env.log,
	})
	if err != nil {
		return nil, err
	}
	env.closers = append(env.closers, site.Close)
	opts := &alkhttp.Options{
		Logger:               env.log,
		MaxHeaderBytes:       c.MaxHeaderBytes,
		MaxBodyBytes:         c.MaxBodyBytes,
		ReadHeaderTimeout:    c.ReadHeaderTimeout,
		IdleTimeout:          c.IdleTimeout,
		MaxConcurrentStreams: c.MaxConcurrentStreams,
		MaxAnonStreams:       c.MaxAnonStreams,
	}
	if env.peers != nil {
		opts.Identities = env.peers
	}
	if metrics != nil {
		opts.Metrics = metrics
	}
	srv := alkhttp.New(site, opts)
	env.ext["http"] = srv
	return []*service{{handler: srv, acl: core.AccessControl{}}}, nil
}
