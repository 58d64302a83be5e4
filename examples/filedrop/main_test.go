package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	alksftp "github.com/alkdev/alknet/sftp"
	"github.com/pkg/sftp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFileDrop(t *testing.T) {
	dir := t.TempDir()
	clientKey := coretest.Key(t)
	ctx, cancel := context.WithCancel(t.Context())
	ep, errc, err := Start(ctx, Options{Dir: dir, Listen: "127.0.0.1:0", Key: coretest.Key(t), Allow: []string{clientKey.NodeID().Fingerprint()}})
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); <-errc })

	cli := coretest.ClientEndpoint(t, clientKey)
	conn, err := cli.Dial(t.Context(), ep.Addr(), alksftp.ALPN)
	require.NoError(t, err)
	defer conn.Close(core.CodeOK, "")
	st, err := conn.OpenStream(t.Context())
	require.NoError(t, err)
	c, err := sftp.NewClientPipe(st, st)
	require.NoError(t, err)
	defer c.Close()
	w, err := c.Create("/report.txt")
	require.NoError(t, err)
	_, err = w.Write([]byte("quarterly numbers"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	got, err := os.ReadFile(filepath.Join(dir, "report.txt"))
	require.NoError(t, err)
	assert.Equal(t, "quarterly numbers", string(got))

	// A key that is not allowed is refused before any SFTP byte.
	stranger, err := coretest.ClientEndpoint(t, core.SecretKey{}).Dial(t.Context(), ep.Addr(), alksftp.ALPN)
	require.NoError(t, err)
	s2, err := stranger.OpenStream(t.Context())
	require.NoError(t, err)
	_, err = sftp.NewClientPipe(s2, s2)
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "got %v", err)
	assert.Equal(t, "peer not authorized for alknet/sftp: authentication required", ce.Reason)
}
