package main

import (
	"io"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	alkhttp "github.com/alkdev/alknet/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWebAppOverH3AndTCP(t *testing.T) {
	key := coretest.Key(t)
	peers := core.StaticPeers([]core.PeerEntry{{PeerID: "laptop", Fingerprints: []string{key.NodeID().Fingerprint()}, Scopes: []string{"app"}, Enabled: true}})
	ep := coretest.StartEndpoint(t, core.Config{Identities: peers, ListenTCP: true},
		coretest.Route{Handler: alkhttp.New(Mux(), nil)})
	get := func(key core.SecretKey, h3 bool, path string) (int, string) {
		c, err := alkhttp.NewClient(key, ep.NodeID(), h3)
		require.NoError(t, err)
		defer c.CloseIdleConnections()
		resp, err := c.Get("https://" + ep.Addr().Host + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	_, body := get(key, true, "/hello")
	assert.Equal(t, "hello, laptop (HTTP/3.0)\n", body)
	_, body = get(core.SecretKey{}, false, "/hello")
	assert.Equal(t, "hello, stranger (HTTP/2.0)\n", body)
	code, body := get(key, false, "/private")
	assert.Equal(t, 200, code)
	assert.Equal(t, "secret plans\n", body)
	code, _ = get(core.SecretKey{}, true, "/private")
	assert.Equal(t, 401, code)
}
