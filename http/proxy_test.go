package alkhttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// upstream records what the proxied service receives.
type upstream struct {
	srv     *httptest.Server
	got     chan *http.Request
	release chan struct{}
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{got: make(chan *http.Request, 16), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		select {
		case <-u.release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "second\n")
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if c.Write(r.Context(), typ, append([]byte("echo "), b...)) != nil {
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.got <- r.Clone(context.Background())
		_, _ = io.WriteString(w, "upstream "+r.URL.Path)
	})
	u.srv = httptest.NewServer(mux)
	t.Cleanup(u.srv.Close)
	return u
}

func proxyNode(t *testing.T, u *upstream) *testNode {
	return startNode(t, nil, func(c *SiteConfig) {
		c.Routes = []Route{
			{Path: "/app/", Proxy: u.srv.URL},
			{Path: "/admin/", Proxy: u.srv.URL, Scopes: []string{"admin"}},
		}
	})
}

// rawHTTP1 sends a raw HTTP/1.1 request over TLS (so that hop-by-hop
// headers reach the server as written) and returns the response.
func rawHTTP1(t *testing.T, n *testNode, request string) *http.Response {
	t.Helper()
	conf, err := core.ClientTLSConfig(core.SecretKey{}, n.ep.NodeID(), ALPNHTTP1)
	require.NoError(t, err)
	c, err := tls.Dial("tcp", n.ep.TCPAddr().String(), conf)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = io.WriteString(c, request)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	return resp
}

func TestProxyHeaders(t *testing.T) {
	u := newUpstream(t)
	n := proxyNode(t, u)
	resp := rawHTTP1(t, n, "GET /app/some/path?q=1 HTTP/1.1\r\n"+
		"Host: node.example\r\n"+
		"Authorization: Bearer "+tokenAdmin+"\r\n"+
		"Proxy-Authorization: Basic c2VjcmV0\r\n"+
		"Connection: keep-alive, X-Hop\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"X-Hop: hop value\r\n"+
		"Te: trailers, deflate\r\n"+
		"Alknet-Peer-Id: root\r\n"+
		"Alknet-Peer-Scopes: admin\r\n"+
		"X-Forwarded-For: 6.6.6.6\r\n"+
		"X-Kept: end to end\r\n"+
		"Cookie: app=1\r\n\r\n")
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, 200, resp.StatusCode, string(b))
	assert.Equal(t, "upstream /some/path", string(b))
	var r *http.Request
	select {
	case r = <-u.got:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream saw no request within 10s")
	}
	assert.Equal(t, "/some/path", r.URL.Path)
	assert.Equal(t, "q=1", r.URL.RawQuery)
	for _, h := range []string{"Authorization", "Proxy-Authorization", "X-Hop", "Keep-Alive", "Alknet-Node-Fingerprint"} {
		assert.Empty(t, r.Header.Values(h), "%s leaked upstream", h)
	}
	assert.NotContains(t, r.Header.Get("Connection"), "X-Hop")
	assert.NotContains(t, r.Header.Get("Te"), "deflate")
	assert.Equal(t, []string{"admin"}, r.Header.Values("Alknet-Peer-Id"), "the token's peer, not the client's claim")
	assert.Equal(t, "call admin metrics", r.Header.Get("Alknet-Peer-Scopes"))
	assert.Equal(t, "127.0.0.1", r.Header.Get("X-Forwarded-For"), "a client's X-Forwarded-For is replaced")
	assert.Equal(t, "https", r.Header.Get("X-Forwarded-Proto"))
	assert.Equal(t, "node.example", r.Header.Get("X-Forwarded-Host"))
	assert.Equal(t, "end to end", r.Header.Get("X-Kept"))
	assert.Equal(t, "app=1", r.Header.Get("Cookie"))
	for k, v := range r.Header {
		assert.NotContains(t, strings.Join(v, " "), tokenAdmin, "token in %s", k)
	}
}

func TestProxyScopesStreamingWebSocket(t *testing.T) {
	u := newUpstream(t)
	n := proxyNode(t, u)
	c := n.client(t, core.SecretKey{}, false)

	t.Run("scopes", func(t *testing.T) {
		resp, body := do(t, c, "GET", n.base+"/admin/x", "", "")
		assert.Equal(t, 401, resp.StatusCode, body)
		resp, body = do(t, c, "GET", n.base+"/admin/x", tokenUser, "")
		assert.Equal(t, 403, resp.StatusCode, body)
		assert.Contains(t, body, "missing scope admin")
		resp, body = do(t, c, "GET", n.base+"/admin/x", tokenAdmin, "")
		assert.Equal(t, 200, resp.StatusCode, body)
		assert.Equal(t, "upstream /x", body)
		select {
		case r := <-u.got:
			assert.Equal(t, "admin", r.Header.Get(HeaderPeerID))
		case <-time.After(10 * time.Second):
			t.Fatal("upstream saw no request within 10s")
		}
	})

	t.Run("streaming", func(t *testing.T) {
		for _, h3 := range []bool{false, true} {
			c := n.client(t, core.SecretKey{}, h3)
			resp, err := c.Get(n.base + "/app/stream")
			require.NoError(t, err)
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			require.NoError(t, err)
			assert.Equal(t, "first\n", line, "the first chunk arrives before the upstream is done")
			u.release <- struct{}{}
			rest, err := io.ReadAll(br)
			require.NoError(t, err)
			assert.Equal(t, "second\n", string(rest))
			_ = resp.Body.Close()
		}
	})

	t.Run("websocket", func(t *testing.T) {
		tr := c.Transport.(*http.Transport)
		tr.ForceAttemptHTTP2 = false
		tr.TLSClientConfig.NextProtos = []string{ALPNHTTP1}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, strings.Replace(n.base, "https", "wss", 1)+"/app/ws", &websocket.DialOptions{HTTPClient: c})
		require.NoError(t, err)
		defer ws.CloseNow()
		require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte("ping")))
		_, b, err := ws.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, "echo ping", string(b))
	})

	t.Run("bad upstream", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		h, err := NewProxy(Route{Path: "/x/", Proxy: "http://" + addr}, nil)
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/x/y", nil))
		assert.Equal(t, 502, rec.Code)
		assert.Contains(t, rec.Body.String(), `"message":"upstream unavailable"`)
	})
	t.Run("bad routes", func(t *testing.T) {
		for _, rt := range []Route{{Path: "app/", Proxy: "http://x"}, {Path: "/app", Proxy: "http://x"}, {Path: "/app/", Proxy: "ftp://x"}, {Path: "/app/", Proxy: "http://"}} {
			_, err := NewProxy(rt, nil)
			assert.ErrorIs(t, err, ErrConfig, "%+v", rt)
		}
		_, err := NewSite(SiteConfig{Routes: []Route{{Path: "/v1/", Proxy: "http://x"}}})
		assert.ErrorIs(t, err, ErrConfig)
	})
}
