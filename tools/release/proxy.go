package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// writeProxy writes every workspace module at version into dir in the layout
// of a GOPROXY (<escaped path>/@v/list, .info, .mod, .zip), with sibling
// requirements set to version. The files are those git would commit from
// the working tree: tracked and untracked ones, without ignored ones.
func (ws *workspace) writeProxy(dir, version string) error {
	if !validVersion(version) {
		return fmt.Errorf("%w: %q", errBadVersion, version)
	}
	if err := ws.checkNoReplace(); err != nil {
		return err
	}
	for _, m := range ws.modules {
		if err := ws.writeModule(dir, m, version); err != nil {
			return fmt.Errorf("alknet/release: module %s: %w", m.path, err)
		}
	}
	return nil
}

func (ws *workspace) writeModule(dir string, m *wsModule, version string) error {
	esc, err := module.EscapePath(m.path)
	if err != nil {
		return err
	}
	vdir := filepath.Join(dir, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	gomod, err := ws.modWithVersion(m, version)
	if err != nil {
		return err
	}
	names, err := gitFiles(m.dir)
	if err != nil {
		return err
	}
	var files []modzip.File
	for _, n := range names {
		fi, err := os.Lstat(filepath.Join(m.dir, filepath.FromSlash(n)))
		if err != nil {
			continue // tracked but deleted in the working tree
		}
		f := zipFile{path: n, full: filepath.Join(m.dir, filepath.FromSlash(n)), info: fi}
		if n == "go.mod" {
			f.data = gomod
		}
		files = append(files, f)
	}
	var zbuf bytes.Buffer
	mv := module.Version{Path: m.path, Version: version}
	if err := modzip.Create(&zbuf, mv, files); err != nil {
		return err
	}
	base := filepath.Join(vdir, version)
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	for name, data := range map[string][]byte{".zip": zbuf.Bytes(), ".mod": gomod, ".info": info} {
		if err := os.WriteFile(base+name, data, 0o644); err != nil {
			return err
		}
	}
	list := filepath.Join(vdir, "list")
	old, _ := os.ReadFile(list)
	for _, l := range strings.Fields(string(old)) {
		if l == version {
			return nil
		}
	}
	return os.WriteFile(list, append(old, []byte(version+"\n")...), 0o644)
}

// gitFiles lists the files under dir that git would commit (slash paths
// relative to dir).
func gitFiles(dir string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files in %s: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	var names []string
	seen := map[string]bool{}
	for _, n := range strings.Split(string(out), "\x00") {
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names, nil
}

// zipFile is one file of a module zip, read from the working tree unless
// data replaces its content.
type zipFile struct {
	path string
	full string
	info fs.FileInfo
	data []byte
}

func (f zipFile) Path() string { return f.path }

func (f zipFile) Lstat() (fs.FileInfo, error) {
	if f.data != nil {
		return sizedInfo{f.info, int64(len(f.data))}, nil
	}
	return f.info, nil
}

func (f zipFile) Open() (io.ReadCloser, error) {
	if f.data != nil {
		return io.NopCloser(bytes.NewReader(f.data)), nil
	}
	return os.Open(f.full)
}

// sizedInfo reports the size of replaced content.
type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (s sizedInfo) Size() int64 { return s.size }
