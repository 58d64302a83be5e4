package main

import (
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKVOverAlknet(t *testing.T) {
	p := coretest.NewPair(t, []string{"kv"}, coretest.Route{Handler: &KV{}, ACL: core.AccessControl{RequiredScopes: []string{"kv"}}})
	reply, err := Request(t.Context(), p.Client, p.Server.Addr(), "SET color blue")
	require.NoError(t, err)
	assert.Equal(t, "OK", reply)
	reply, err = Request(t.Context(), p.Client, p.Server.Addr(), "GET color")
	require.NoError(t, err)
	assert.Equal(t, "OK blue", reply)
	reply, err = Request(t.Context(), p.Client, p.Server.Addr(), "GET shape")
	require.NoError(t, err)
	assert.Equal(t, "ERR not found", reply)

	stranger := coretest.ClientEndpoint(t, core.SecretKey{})
	_, err = Request(t.Context(), stranger, p.Server.Addr(), "GET color")
	require.Error(t, err)
	assert.Equal(t, "peer not authorized for alknet/kv: authentication required", err.Error())
}
