package alkhttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/coder/websocket"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// HTTP/3 datagrams are not advertised where the endpoint's QUIC has them
// off, even when Options ask for them: a client that enables datagrams
// would otherwise close the connection (H3_SETTINGS_ERROR).
func TestH3DatagramsNotAdvertisedWithoutQUICSupport(t *testing.T) {
	n := startNode(t, &Options{Datagrams: true})
	conf, err := core.ClientTLSConfig(core.SecretKey{}, n.ep.NodeID(), ALPNH3)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, n.ep.Addr().Host, conf, &quic.Config{EnableDatagrams: true})
	require.NoError(t, err)
	defer qc.CloseWithError(0, "")
	tr := &http3.Transport{EnableDatagrams: true}
	cc := tr.NewClientConn(qc)
	select {
	case <-cc.ReceivedSettings():
	case <-ctx.Done():
		t.Fatal("no SETTINGS within 10s")
	}
	assert.False(t, cc.Settings().EnableDatagrams, "datagrams advertised without QUIC datagram support")
	req, err := http.NewRequestWithContext(ctx, "GET", n.base+"/hello.txt", nil)
	require.NoError(t, err)
	resp, err := cc.RoundTrip(req)
	require.NoError(t, err, "the connection survives the SETTINGS exchange")
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "hello, world\n", string(b))
	assert.NoError(t, qc.Context().Err())
}

// A client that sends headers slowly (slowloris) is cut off after
// ReadHeaderTimeout; one that sends a body over MaxBodyBytes gets 413.
func TestTCPLimits(t *testing.T) {
	n := startNode(t, &Options{ReadHeaderTimeout: 200 * time.Millisecond, MaxBodyBytes: 1000, MaxHeaderBytes: 4096})
	t.Run("slowloris", func(t *testing.T) {
		conf, err := core.ClientTLSConfig(core.SecretKey{}, n.ep.NodeID(), ALPNHTTP1)
		require.NoError(t, err)
		c, err := tls.Dial("tcp", n.ep.TCPAddr().String(), conf)
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n")
		require.NoError(t, err)
		start := time.Now()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err = io.ReadAll(c) // the server closes without an answer
		require.False(t, errors.Is(err, errDeadline(err)), "server kept the slow connection open: %v", err)
		assert.Less(t, time.Since(start), 5*time.Second)
	})
	t.Run("header size", func(t *testing.T) {
		c := n.client(t, core.SecretKey{}, false)
		tr := c.Transport.(*http.Transport)
		tr.ForceAttemptHTTP2 = false
		tr.TLSClientConfig.NextProtos = []string{ALPNHTTP1}
		resp, _ := do(t, c, "GET", n.base+"/hello.txt", "", "", "X-Big", strings.Repeat("a", 20000))
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	})
	for _, h3 := range []bool{false, true} {
		t.Run("body size "+map[bool]string{true: "h3", false: "h2"}[h3], func(t *testing.T) {
			c := n.client(t, core.SecretKey{}, h3)
			resp, body := do(t, c, "POST", n.base+"/v1/call/test/echo", tokenUser, `{"msg":"`+strings.Repeat("a", 2000)+`"}`)
			assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
			// Without a Content-Length the limit cuts the read.
			req, err := http.NewRequest("POST", n.base+"/v1/call/test/echo", io.MultiReader(strings.NewReader(`{"msg":"`), strings.NewReader(strings.Repeat("a", 2000)+`"}`)))
			require.NoError(t, err)
			req.ContentLength = -1
			req.Header.Set("Authorization", "Bearer "+tokenUser)
			resp, err = c.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
		})
	}
}

// errDeadline returns err when it is a deadline error, else a sentinel
// that nothing wraps.
func errDeadline(err error) error {
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	return errors.New("not a deadline")
}

// An anonymous HTTP/3 connection has at most MaxAnonStreams requests in
// progress; a request over it waits for a slot, then gets 503.
func TestH3AnonStreamCap(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 8)
	mux := http.NewServeMux()
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "done")
	})
	mux.HandleFunc("/quick", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "quick") })
	srv := New(mux, &Options{MaxAnonStreams: 2, ReadHeaderTimeout: 300 * time.Millisecond})
	ep := coretest.StartEndpoint(t, core.Config{}, coretest.Route{Handler: srv})
	c, err := NewClient(core.SecretKey{}, ep.NodeID(), true)
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	base := "https://" + ep.Addr().Host
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			resp, err := c.Get(base + "/block")
			if assert.NoError(t, err) {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.Equal(t, "done", string(b))
			}
		})
	}
	for range 2 {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("blocking requests did not start within 10s")
		}
	}
	resp, err := c.Get(base + "/quick")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(b))
	assert.Contains(t, string(b), "too many requests in progress on this connection")
	close(release)
	wg.Wait()
	resp, err = c.Get(base + "/quick")
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "quick", string(b), "slots free again")
}

// Embedding: a mux mounted in one line sees the caller of each request.
func TestCallerInHandler(t *testing.T) {
	key := coretest.Key(t)
	peers := core.StaticPeers([]core.PeerEntry{
		{PeerID: "laptop", Fingerprints: []string{key.NodeID().Fingerprint()}, Scopes: []string{"files"}, Enabled: true},
		{PeerID: "ci", TokenHash: core.HashToken([]byte(tokenUser)), Scopes: []string{"files"}, Enabled: true},
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		c := Caller(r)
		id := "anonymous"
		if c.Identity != nil {
			id = c.Identity.ID
		}
		_, _ = io.WriteString(w, id+" "+map[bool]string{true: "token", false: "tls"}[c.ByToken])
	})
	mux.Handle("/files/", Require(core.AccessControl{RequiredScopes: []string{"files"}}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "files")
	})))
	ep := coretest.StartEndpoint(t, core.Config{Identities: peers, ListenTCP: true},
		coretest.Route{Handler: New(mux, &Options{Identities: peers})})
	base := "https://" + ep.Addr().Host
	for _, h3 := range []bool{true, false} {
		pinned, err := NewClient(key, ep.NodeID(), h3)
		require.NoError(t, err)
		anon, err := NewClient(core.SecretKey{}, ep.NodeID(), h3)
		require.NoError(t, err)
		_, body := do(t, pinned, "GET", base+"/whoami", "", "")
		assert.Equal(t, "laptop tls", body)
		_, body = do(t, anon, "GET", base+"/whoami", tokenUser, "")
		assert.Equal(t, "ci token", body)
		_, body = do(t, anon, "GET", base+"/whoami", "", "")
		assert.Equal(t, "anonymous tls", body)
		resp, _ := do(t, anon, "GET", base+"/files/a", "", "")
		assert.Equal(t, 401, resp.StatusCode)
		resp, body = do(t, pinned, "GET", base+"/files/a", "", "")
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "files", body)
		pinned.CloseIdleConnections()
		anon.CloseIdleConnections()
	}
}

// The endpoint's drain ends idle HTTP connections at once (GOAWAY on h3
// and h2, close on HTTP/1.1) instead of waiting out DrainTimeout.
func TestDrainEndsIdleConnections(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	ep, err := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: coretest.Key(t), ListenTCP: true, DrainTimeout: time.Minute})
	require.NoError(t, err)
	ep.Register(New(mux, nil), core.AccessControl{})
	errc := make(chan error, 1)
	go func() { errc <- ep.Serve(context.Background()) }()
	<-ep.Ready()
	base := "https://" + ep.Addr().Host
	var clients []*http.Client
	for _, alpn := range []string{"h3", "h2", "http/1.1"} {
		c, err := NewClient(core.SecretKey{}, ep.NodeID(), alpn == "h3")
		require.NoError(t, err)
		if alpn == "http/1.1" {
			tr := c.Transport.(*http.Transport)
			tr.ForceAttemptHTTP2 = false
			tr.TLSClientConfig.NextProtos = []string{ALPNHTTP1}
		}
		resp, body := do(t, c, "GET", base+"/", "", "")
		require.Equal(t, "ok", body, alpn)
		require.Equal(t, 200, resp.StatusCode)
		clients = append(clients, c)
	}
	require.Equal(t, 3, ep.ConnCount())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, ep.Shutdown(ctx), "idle connections drained before the deadline")
	assert.Less(t, time.Since(start), 15*time.Second)
	<-errc
	for _, c := range clients {
		c.CloseIdleConnections()
	}
}

// An event stream and a WebSocket end when the endpoint drains, so that
// they do not hold the drain until its deadline.
func TestDrainEndsStreams(t *testing.T) {
	reg := testRegistry()
	g, err := NewGateway(GatewayConfig{Registry: reg})
	require.NoError(t, err)
	ep, err := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: coretest.Key(t), ListenTCP: true, DrainTimeout: time.Minute})
	require.NoError(t, err)
	ep.Register(New(g, nil), core.AccessControl{})
	errc := make(chan error, 1)
	go func() { errc <- ep.Serve(context.Background()) }()
	<-ep.Ready()
	base := "https://" + ep.Addr().Host

	c, err := NewClient(core.SecretKey{}, ep.NodeID(), true)
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	resp, err := c.Get(base + "/v1/subscribe/test/forever")
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "data: {\"id\":1}\n", line)

	wc, err := NewClient(core.SecretKey{}, ep.NodeID(), false)
	require.NoError(t, err)
	tr := wc.Transport.(*http.Transport)
	tr.ForceAttemptHTTP2 = false
	tr.TLSClientConfig.NextProtos = []string{ALPNHTTP1}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "https", "wss", 1)+"/v1/ws", &websocket.DialOptions{HTTPClient: wc})
	require.NoError(t, err)
	defer ws.CloseNow()

	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- ep.Shutdown(ctx) }()
	rest, _ := io.ReadAll(br)
	assert.Contains(t, string(rest), "event: call.error\ndata: {\"code\":\"UNAVAILABLE\"")
	_, _, err = ws.Read(ctx)
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "%v", err)
	require.NoError(t, <-shut)
	assert.Less(t, time.Since(start), 15*time.Second, "drained well before the one-minute deadline")
	<-errc
}
