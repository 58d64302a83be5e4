package alkhttp

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/alkdev/alknet/core"
)

// Route mounts a reverse proxy at a path prefix, as `tailscale serve` does:
// a local service exposed over h3/h2 behind alknet's access control.
type Route struct {
	// Path is the prefix served, starting and ending with "/" ("/app/").
	// The prefix is stripped: "/app/x" reaches the upstream as "/x".
	Path string
	// Proxy is the upstream base URL, http:// or https:// ("http://127.0.0.1:3000").
	Proxy string
	// Scopes are required of the caller (all of them); empty lets anyone
	// through, anonymous callers included.
	Scopes []string
}

// Headers the proxy sets on the upstream request. Values a client sends
// under these names are removed first, so the upstream can trust them.
const (
	// HeaderPeerID carries the caller's peer id; absent for anonymous
	// callers.
	HeaderPeerID = "Alknet-Peer-Id"
	// HeaderPeerScopes carries the caller's scopes, space separated.
	HeaderPeerScopes = "Alknet-Peer-Scopes"
	// HeaderNodeID carries the caller's TLS key as a fingerprint when it
	// showed one.
	HeaderNodeID = "Alknet-Node-Fingerprint"
)

// NewProxy returns the handler of route: a reverse proxy that streams
// (responses are flushed as they arrive; WebSocket upgrades pass through
// on HTTP/1.1), removes hop-by-hop headers both ways (net/http/httputil),
// never forwards the caller's credentials (Authorization,
// Proxy-Authorization) upstream, sets X-Forwarded-For/-Host/-Proto, and
// tells the upstream who the caller is in the Alknet-Peer-* headers. It
// is wrapped in Require for the route's scopes.
func NewProxy(route Route, logger *slog.Logger) (http.Handler, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if !strings.HasPrefix(route.Path, "/") || !strings.HasSuffix(route.Path, "/") {
		return nil, fmt.Errorf("%w: route path %q must start and end with /", ErrConfig, route.Path)
	}
	target, err := url.Parse(route.Proxy)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, fmt.Errorf("%w: route %s: proxy %q must be an http:// or https:// URL", ErrConfig, route.Path, route.Proxy)
	}
	prefix := strings.TrimSuffix(route.Path, "/")
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			c := Caller(pr.In)
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, prefix)
			pr.Out.URL.RawPath = ""
			if raw := pr.In.URL.RawPath; raw != "" {
				pr.Out.URL.RawPath = strings.TrimPrefix(raw, prefix)
			}
			pr.SetURL(target)
			pr.SetXForwarded()
			h := pr.Out.Header
			h.Del("Authorization")
			h.Del("Proxy-Authorization")
			for k := range h {
				if strings.HasPrefix(http.CanonicalHeaderKey(k), "Alknet-") {
					delete(h, k)
				}
			}
			if c.Identity != nil {
				h.Set(HeaderPeerID, c.Identity.ID)
				h.Set(HeaderPeerScopes, strings.Join(c.Identity.Scopes, " "))
			}
			if !c.Node.IsZero() {
				h.Set(HeaderNodeID, c.Node.Fingerprint())
			}
		},
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logger.Warn("proxy upstream failed", "route", route.Path, "err", err)
			writeError(w, r, http.StatusBadGateway, "UNAVAILABLE", "upstream unavailable")
		},
	}
	return Require(core.AccessControl{RequiredScopes: route.Scopes}, rp), nil
}
