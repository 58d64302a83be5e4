package git

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	u, err := ParseURL("alknet://abc@example.com:4433/team/app.git")
	require.NoError(t, err)
	assert.Equal(t, URL{Addr: "abc@example.com:4433", Path: "/team/app.git"}, u)
	u, err = ParseURL("alknet+tcp://abc@[::1]:4433/app.git")
	require.NoError(t, err)
	assert.Equal(t, URL{Addr: "abc@[::1]:4433", Path: "/app.git", TCP: true}, u)
	id := strings.Repeat("y", 52)
	u, err = ParseURL("alknet://" + id + "/app.git")
	require.NoError(t, err)
	assert.Equal(t, URL{Addr: id, Path: "/app.git"}, u, "a bare node id")
	for _, bad := range []string{
		"alknet://" + id + ":1/x.git",
		"alknet://nodeid/x.git",
		"git://abc@h:1/x.git",
		"alknet+udp://abc@h:1/x.git",
		"alknet://h:1/x.git",
		"alknet://abc@h:1",
		"alknet://abc@h:1/",
		"alknet://%zz",
	} {
		_, err := ParseURL(bad)
		assert.ErrorContains(t, err, "alknet/git: url", bad)
	}
}

func TestIsHelperName(t *testing.T) {
	assert.True(t, IsHelperName("git-remote-alknet"))
	assert.True(t, IsHelperName("git-remote-alknet+tcp"))
	assert.False(t, IsHelperName("alknet"))
	assert.False(t, IsHelperName("git-remote-alknet+udp"))
}

// TestHelperTransport checks that the scheme picks the transport and that a
// failed dial reaches git as one ERR pkt-line.
func TestHelperTransport(t *testing.T) {
	for scheme, wantTCP := range map[string]bool{"alknet": false, "alknet+tcp": true} {
		var gotAddr string
		var gotTCP bool
		dial := func(_ context.Context, addr string, tcp bool) (core.Conn, error) {
			gotAddr, gotTCP = addr, tcp
			return nil, errors.New("no route")
		}
		var out bytes.Buffer
		in := strings.NewReader("capabilities\nconnect git-upload-pack\n")
		err := Helper(t.Context(), scheme+"://id@h:7/r.git", "", in, &out, dial)
		require.NoError(t, err, scheme)
		assert.Equal(t, "id@h:7", gotAddr, scheme)
		assert.Equal(t, wantTCP, gotTCP, scheme)
		assert.Equal(t, "connect\n\n\n"+string(errLine("alknet: no route")), out.String(), scheme)
	}
}
