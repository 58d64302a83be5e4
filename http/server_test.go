package alkhttp

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every protocol serves the same handler; TCP answers announce h3.
func TestServerProtocols(t *testing.T) {
	n := startNode(t, nil)
	for _, tc := range []struct {
		name  string
		h3    bool
		force string // "" h2 or h3; "http/1.1" forces HTTP/1.1
		proto string
	}{
		{"h3", true, "", "HTTP/3.0"},
		{"h2", false, "", "HTTP/2.0"},
		{"http1", false, "http/1.1", "HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := n.client(t, core.SecretKey{}, tc.h3)
			if tc.force != "" {
				tr := c.Transport.(*http.Transport)
				tr.ForceAttemptHTTP2 = false
				tr.TLSClientConfig.NextProtos = []string{ALPNHTTP1}
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			resp, body := do(t, c, "GET", n.base+"/hello.txt", "", "")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, tc.proto, resp.Proto)
			assert.Equal(t, "hello, world\n", body)
			if tc.h3 {
				assert.Empty(t, resp.Header.Get("Alt-Svc"), "no Alt-Svc over h3")
			} else {
				udpPort := n.ep.LocalAddr().String()[strings.LastIndexByte(n.ep.LocalAddr().String(), ':')+1:]
				assert.Equal(t, `h3=":`+udpPort+`"; ma=86400`, resp.Header.Get("Alt-Svc"))
			}
			require.NotNil(t, resp.TLS)
		})
	}
}

// A client that picks h3 over TCP, or h2 over QUIC, is closed with a
// reason instead of being served a protocol on the wrong transport.
func TestWrongTransport(t *testing.T) {
	n := startNode(t, nil)
	conf, err := core.ClientTLSConfig(core.SecretKey{}, n.ep.NodeID(), ALPNH3)
	require.NoError(t, err)
	c, err := tls.Dial("tcp", n.ep.TCPAddr().String(), conf)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, ALPNH3, c.ConnectionState().NegotiatedProtocol)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadAll(c)
	assert.NoError(t, err, "closed by the node (EOF), not left hanging")

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	qconf, err := core.ClientTLSConfig(core.SecretKey{}, n.ep.NodeID(), ALPNH2)
	require.NoError(t, err)
	qc, err := quic.DialAddr(ctx, n.ep.Addr().Host, qconf, nil)
	require.NoError(t, err)
	select {
	case <-qc.Context().Done():
	case <-ctx.Done():
		t.Fatal("h2 over QUIC was not closed within 10s")
	}
	ce, ok := core.AsCloseError(context.Cause(qc.Context()))
	require.True(t, ok, "%v", context.Cause(qc.Context()))
	assert.Equal(t, "h2 is served over TCP only", ce.Reason)
}
