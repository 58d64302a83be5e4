package git

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exchange sends raw bytes on a new stream of a server connection for id
// and returns everything the server answered.
func exchange(t *testing.T, srv *Server, id *core.Identity, raw string) string {
	t.Helper()
	client, server := coretest.Pipe(ALPN, coretest.Side{Identity: id}, coretest.Side{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeConn(ctx, server)
	}()
	t.Cleanup(func() {
		cancel()
		_ = client.Close(0, "")
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("ServeConn did not return")
		}
	})
	st, err := client.OpenStream(t.Context())
	require.NoError(t, err)
	_ = st.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = io.WriteString(st, raw)
	require.NoError(t, err)
	require.NoError(t, st.CloseWrite())
	out, err := io.ReadAll(st)
	require.NoError(t, err)
	return string(out)
}

func TestServerRefusals(t *testing.T) {
	srv, err := New(Config{Root: t.TempDir(), MaxRequestLine: 128})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	admin := &core.Identity{ID: "a", Resources: map[string][]string{"git:repo/*": {"read", "write", "create"}}}
	reader := &core.Identity{ID: "r", Resources: map[string][]string{"git:repo/pub": {"read"}}}
	_, err = srv.Create(admin, "pub.git")
	require.NoError(t, err)
	req := func(svc, p string) string { return string(Request{Service: svc, Path: p, Host: "h"}.Encode()) }
	tests := []struct {
		name string
		id   *core.Identity
		raw  string
		want string
	}{
		{"garbage", admin, "hello", "ERR alknet: bad request line: bad pkt-line length \"hell\"\n"},
		{"too long", admin, req(UploadPack, "/"+strings.Repeat("a", 200)+".git"), "ERR alknet: request line too long: 233 bytes, limit 128\n"},
		{"service", admin, string(pktLine([]byte("git-upload-archive /pub.git\x00"))), "ERR alknet: unsupported service: \"git-upload-archive\"\n"},
		{"dotdot", admin, req(UploadPack, "/../pub.git"), "ERR alknet: bad repository name \"/../pub.git\"\n"},
		{"anonymous", nil, req(UploadPack, "/pub.git"), "ERR alknet: authentication required for git:repo/pub\n"},
		{"no read", reader, req(UploadPack, "/other.git"), "ERR alknet: peer not authorized for git:repo/other: read\n"},
		{"no write", reader, req(ReceivePack, "/pub.git"), "ERR alknet: peer not authorized for git:repo/pub: write\n"},
		{"missing", admin, req(UploadPack, "/nope.git"), "ERR alknet: repository not found: nope.git\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := exchange(t, srv, tt.id, tt.raw)
			assert.Equal(t, string(pktLine([]byte(tt.want))), out)
		})
	}
	names, err := srv.List(admin)
	require.NoError(t, err)
	assert.Equal(t, []string{"pub.git"}, names, "refusals changed nothing")
}

func TestServerAdvertises(t *testing.T) {
	srv, err := New(Config{Root: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	admin := &core.Identity{ID: "a", Resources: map[string][]string{"git:repo/*": {"read", "write", "create"}}}
	// A push request to a missing repository creates it and advertises
	// the push capabilities; the client's flush ends the exchange.
	out := exchange(t, srv, admin, string(Request{Service: ReceivePack, Path: "/new.git"}.Encode())+"0000")
	assert.Contains(t, out, "capabilities^{}")
	assert.Contains(t, out, "report-status")
	assert.Contains(t, out, "delete-refs")
	assert.True(t, strings.HasSuffix(out, "0000"), out)
	names, err := srv.List(admin)
	require.NoError(t, err)
	assert.Equal(t, []string{"new.git"}, names)
	// Protocol v2 on upload-pack answers with the v2 capability list.
	out = exchange(t, srv, admin, string(Request{Service: UploadPack, Path: "/new.git", Extra: []string{"version=2"}}.Encode())+"0000")
	assert.True(t, strings.HasPrefix(out, "000eversion 2\n"), out)
	assert.Contains(t, out, "ls-refs")
}
