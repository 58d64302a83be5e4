package alkhttp

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newStaticRoot(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "site")
	writeFile(t, filepath.Join(root, "index.html"), "<h1>home</h1>\n")
	writeFile(t, filepath.Join(root, "hello.txt"), "hello, world\n")
	writeFile(t, filepath.Join(root, "docs", "<b>&.txt"), "x")
	writeFile(t, filepath.Join(root, "docs", "a.txt"), "a")
	writeFile(t, filepath.Join(root, "app", "index.html"), "app")
	writeFile(t, filepath.Join(root, ".env"), "SECRET=1")
	writeFile(t, filepath.Join(root, ".well-known", "security.txt"), "contact")
	writeFile(t, filepath.Join(dir, "outside.txt"), "outside secret")
	require.NoError(t, os.Symlink(filepath.Join(dir, "outside.txt"), filepath.Join(root, "escape.txt")))
	require.NoError(t, os.Symlink(dir, filepath.Join(root, "updir")))
	require.NoError(t, os.Symlink("hello.txt", filepath.Join(root, "inside.txt")))
	return root, dir
}

func staticGet(t *testing.T, h http.Handler, method, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, "https://node"+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestStatic(t *testing.T) {
	root, _ := newStaticRoot(t)
	st, err := NewStatic(root, StaticConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })

	for _, tc := range []struct {
		name, path string
		status     int
		body       string
		location   string
	}{
		{"index", "/", 200, "<h1>home</h1>\n", ""},
		{"file", "/hello.txt", 200, "hello, world\n", ""},
		{"dir index", "/app/", 200, "app", ""},
		{"dir redirect", "/app", 301, "", "app/"},
		{"index.html redirect", "/app/index.html", 301, "", "./"},
		{"no listing", "/docs/", 404, "", ""},
		{"dotfile", "/.env", 404, "", ""},
		{"well-known", "/.well-known/security.txt", 200, "contact", ""},
		{"dot-dot", "/../outside.txt", 404, "", ""},
		{"encoded dot-dot", "/docs/%2e%2e/%2e%2e/outside.txt", 404, "", ""},
		{"symlink out", "/escape.txt", 404, "", ""},
		{"symlink dir out", "/updir/outside.txt", 404, "", ""},
		{"symlink inside", "/inside.txt", 200, "hello, world\n", ""},
		{"missing", "/nope", 404, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := staticGet(t, st, "GET", tc.path)
			assert.Equal(t, tc.status, rec.Code, rec.Body.String())
			if tc.body != "" {
				assert.Equal(t, tc.body, rec.Body.String())
			}
			assert.NotContains(t, rec.Body.String(), "secret")
			assert.Equal(t, tc.location, rec.Header().Get("Location"))
		})
	}

	t.Run("range", func(t *testing.T) {
		rec := staticGet(t, st, "GET", "/hello.txt", "Range", "bytes=7-11")
		assert.Equal(t, http.StatusPartialContent, rec.Code)
		assert.Equal(t, "world", rec.Body.String())
		assert.Equal(t, "bytes 7-11/13", rec.Header().Get("Content-Range"))
	})
	t.Run("etag", func(t *testing.T) {
		rec := staticGet(t, st, "GET", "/hello.txt")
		tag := rec.Header().Get("ETag")
		require.Regexp(t, `^"[0-9a-z]+-[0-9a-z]+"$`, tag)
		rec = staticGet(t, st, "GET", "/hello.txt", "If-None-Match", tag)
		assert.Equal(t, http.StatusNotModified, rec.Code)
		assert.Empty(t, rec.Body.String())
		rec = staticGet(t, st, "GET", "/hello.txt", "If-None-Match", `"other"`)
		assert.Equal(t, http.StatusOK, rec.Code)
		rec = staticGet(t, st, "GET", "/hello.txt", "Range", "bytes=0-4", "If-Range", tag)
		assert.Equal(t, http.StatusPartialContent, rec.Code)
		assert.Equal(t, "hello", rec.Body.String())
	})
	t.Run("method", func(t *testing.T) {
		rec := staticGet(t, st, "POST", "/hello.txt")
		assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
		assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	})

	t.Run("listing", func(t *testing.T) {
		st, err := NewStatic(root, StaticConfig{Listing: true})
		require.NoError(t, err)
		defer st.Close()
		rec := staticGet(t, st, "GET", "/docs/")
		require.Equal(t, 200, rec.Code)
		body := rec.Body.String()
		assert.Contains(t, body, `<a href="%3Cb%3E&amp;.txt">&lt;b&gt;&amp;.txt</a>`)
		assert.Contains(t, body, `<a href="a.txt">a.txt</a>`)
		assert.NotContains(t, staticGet(t, st, "GET", "/").Body.String(), ".env", "the root has index.html")
	})
	t.Run("not a directory", func(t *testing.T) {
		_, err := NewStatic(filepath.Join(root, "hello.txt"), StaticConfig{})
		assert.ErrorIs(t, err, ErrConfig)
	})
}
