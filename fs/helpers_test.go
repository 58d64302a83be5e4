package fs

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/alkdev/alknet/core/store"
	"github.com/stretchr/testify/require"
)

// newStore opens a store and its database in a fresh directory.
func newStore(t testing.TB) *Store {
	t.Helper()
	return openStoreAt(t, t.TempDir())
}

// openStoreAt opens the store of the data directory dir (again).
func openStoreAt(t testing.TB, dir string) *Store {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "alknet.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	st, err := OpenStore(context.Background(), StoreConfig{Dir: filepath.Join(dir, "blobs"), DB: db})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// serve starts a loopback node serving st whose client peer holds
// scopes, and returns a client connected to it.
func serve(t testing.TB, st *Store, scopes []string, cfg Config) *Client {
	t.Helper()
	cfg.Store = st
	srv, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	acl := core.AccessControl{RequiredScopes: []string{ScopeRead}}
	if cfg.Public {
		acl = core.AccessControl{}
	}
	p := coretest.NewPair(t, scopes, coretest.Route{Handler: srv, ACL: acl})
	return NewClient(p.Dial(t, ALPN))
}

func putBytes(t testing.TB, st *Store, data []byte, o PutOptions) BlobInfo {
	t.Helper()
	info, err := st.Put(t.Context(), bytesReader(data), int64(len(data)), o)
	require.NoError(t, err)
	return info
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

func newTestWriter(w io.Writer) *bufio.Writer { return bufio.NewWriter(w) }
