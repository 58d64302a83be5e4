package alkhttp

import (
	"errors"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
)

// StaticConfig configures a static site.
type StaticConfig struct {
	// Listing shows an HTML listing of a directory without index.html.
	// False answers such a directory with 404.
	Listing bool
	// Dotfiles serves names that start with "." (other than .well-known).
	// False answers them with 404, so that .git or .env in the root stay
	// private.
	Dotfiles bool
}

// Static serves the files below a root directory: index.html for a
// directory, Range requests, ETag and If-None-Match (and Last-Modified),
// directory listings only when enabled. Paths are resolved inside the root
// through os.Root: "..", absolute paths and symbolic links never reach
// outside it.
type Static struct {
	root *os.Root
	fsys fs.FS
	cfg  StaticConfig
}

// NewStatic opens dir as the root of a static site. Close it when done.
func NewStatic(dir string, cfg StaticConfig) (*Static, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: static root: %v", ErrConfig, err)
	}
	st, err := root.Stat(".")
	if err != nil || !st.IsDir() {
		_ = root.Close()
		return nil, fmt.Errorf("%w: static root %s is not a directory", ErrConfig, dir)
	}
	return &Static{root: root, fsys: root.FS(), cfg: cfg}, nil
}

// Close releases the root directory.
func (s *Static) Close() error { return s.root.Close() }

// ServeHTTP implements http.Handler for GET and HEAD.
func (s *Static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, http.StatusMethodNotAllowed, "INVALID_INPUT", "method not allowed")
		return
	}
	name, ok := s.clean(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, err := s.fsys.Open(name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if st.IsDir() {
		if !strings.HasSuffix(r.URL.Path, "/") {
			redirect(w, r, path.Base(r.URL.Path)+"/")
			return
		}
		index := path.Join(name, "index.html")
		if fi, err := s.fsys.Open(index); err == nil {
			defer fi.Close()
			if ist, err := fi.Stat(); err == nil && ist.Mode().IsRegular() {
				s.serveFile(w, r, fi, ist)
				return
			}
		}
		if !s.cfg.Listing {
			http.NotFound(w, r)
			return
		}
		s.list(w, r, name)
		return
	}
	if !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/index.html") {
		redirect(w, r, "./")
		return
	}
	s.serveFile(w, r, f, st)
}

// clean turns a URL path into a name inside the root, refusing dot names
// unless allowed.
func (s *Static) clean(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	name := strings.TrimPrefix(path.Clean(p), "/")
	if name == "" {
		return ".", true
	}
	if strings.ContainsRune(name, 0) || strings.Contains(name, "\\") {
		return "", false
	}
	for _, seg := range strings.Split(name, "/") {
		if strings.HasPrefix(seg, ".") && seg != ".well-known" && !s.cfg.Dotfiles {
			return "", false
		}
	}
	return name, fs.ValidPath(name)
}

func (s *Static) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		http.NotFound(w, r)
	case errors.Is(err, fs.ErrPermission):
		writeError(w, r, http.StatusForbidden, "FORBIDDEN", "permission denied")
	default:
		// os.Root refuses a path that escapes the root ("path escapes
		// from parent"): as good as absent.
		http.NotFound(w, r)
	}
}

// serveFile answers with the file, with a validator for If-None-Match.
func (s *Static) serveFile(w http.ResponseWriter, r *http.Request, f fs.File, st fs.FileInfo) {
	rs, ok := f.(interface {
		Read([]byte) (int, error)
		Seek(int64, int) (int64, error)
	})
	if !ok {
		writeError(w, r, http.StatusInternalServerError, "INTERNAL", "file not seekable")
		return
	}
	w.Header().Set("ETag", etag(st))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, st.Name(), st.ModTime(), rs)
}

// etag is a strong validator from the file's size and modification time
// (a rewrite by rename changes it).
func etag(st fs.FileInfo) string {
	return `"` + strconv.FormatInt(st.Size(), 36) + "-" + strconv.FormatInt(st.ModTime().UnixNano(), 36) + `"`
}

// maxListing bounds the entries a listing shows.
const maxListing = 10000

func (s *Static) list(w http.ResponseWriter, r *http.Request, name string) {
	entries, err := fs.ReadDir(s.fsys, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var b strings.Builder
	title := html.EscapeString(r.URL.Path)
	b.WriteString("<!doctype html>\n<meta charset=\"utf-8\">\n<title>" + title + "</title>\n<h1>" + title + "</h1>\n<ul>\n")
	n := 0
	for _, e := range entries {
		en := e.Name()
		if strings.HasPrefix(en, ".") && !s.cfg.Dotfiles {
			continue
		}
		if n++; n > maxListing {
			break
		}
		if e.IsDir() {
			en += "/"
		}
		u := url.URL{Path: en}
		b.WriteString(`<li><a href="` + html.EscapeString(u.String()) + `">` + html.EscapeString(en) + "</a></li>\n")
	}
	b.WriteString("</ul>\n")
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(b.String()))
}

// redirect answers 301 to a path relative to the request's, keeping the
// query.
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	if q := r.URL.RawQuery; q != "" {
		to += "?" + q
	}
	w.Header().Set("Location", to)
	w.WriteHeader(http.StatusMovedPermanently)
}
