package main

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// writeTree creates files (slash paths relative to dir) with their content.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// repo is a workspace of three modules: lib (no siblings), svc (requires
// lib) and cmd/tool (requires both), plus bench/x outside go.work.
func repo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"go.work": "go 1.26\n\nuse (\n\t./cmd/tool\n\t./lib\n\t./svc\n)\n\n" +
			"replace example.com/r/lib v0.1.0 => ./lib\n\nreplace example.com/r/svc v0.1.0 => ./svc\n",
		"lib/go.mod":       "module example.com/r/lib\n\ngo 1.26\n",
		"lib/lib.go":       "package lib\n",
		"lib/.gitignore":   "*.db\n",
		"lib/state.db":     "ignored",
		"lib/sub/go.mod":   "module example.com/r/lib/sub\n\ngo 1.26\n",
		"lib/sub/sub.go":   "package sub\n",
		"svc/go.mod":       "module example.com/r/svc\n\ngo 1.26\n\nrequire example.com/r/lib v0.1.0\n",
		"svc/svc.go":       "package svc\n",
		"cmd/tool/go.mod":  "module example.com/r/cmd/tool\n\ngo 1.26\n\nrequire (\n\texample.com/r/lib v0.1.0\n\texample.com/r/svc v0.1.0\n\tgolang.org/x/mod v0.42.0\n)\n",
		"cmd/tool/main.go": "package main\n\nfunc main() {}\n",
		"bench/x/go.mod":   "module example.com/r/bench/x\n\ngo 1.26\n\nrequire example.com/r/svc v0.1.0\n\nreplace example.com/r/svc => ../../svc\n",
	})
	return dir
}

func TestLintAndVersions(t *testing.T) {
	dir := repo(t)
	ws, err := loadWorkspace(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.checkNoReplace(); err != nil {
		t.Fatalf("no replace in the workspace go.mod files: %v", err)
	}
	if v, err := ws.siblingVersion(); err != nil || v != "v0.1.0" {
		t.Fatalf("siblingVersion = %q, %v; want v0.1.0", v, err)
	}
	order, err := ws.dependencyOrder()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range order {
		got = append(got, m.tagPrefix())
	}
	if strings.Join(got, " ") != "lib svc cmd/tool" {
		t.Fatalf("dependency order %v, want lib svc cmd/tool", got)
	}

	writeTree(t, dir, map[string]string{"svc/go.mod": "module example.com/r/svc\n\ngo 1.26\n\nrequire example.com/r/lib v0.0.9\n\nreplace example.com/r/lib => ../lib\n"})
	ws, err = loadWorkspace(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = ws.checkNoReplace()
	if err == nil || !strings.Contains(err.Error(), "svc/go.mod: replace example.com/r/lib") {
		t.Fatalf("replace not reported: %v", err)
	}
	_, err = ws.siblingVersion()
	if err == nil || !strings.Contains(err.Error(), "svc -> example.com/r/lib@v0.0.9") {
		t.Fatalf("mixed versions not reported: %v", err)
	}
	if err := ws.writeProxy(t.TempDir(), "v0.2.0"); err == nil {
		t.Fatal("proxy written for a workspace with a replace directive")
	}
}

func TestSetVersion(t *testing.T) {
	dir := repo(t)
	ws, err := loadWorkspace(dir)
	if err != nil {
		t.Fatal(err)
	}
	before := read(t, filepath.Join(dir, "go.work"))
	for _, bad := range []string{"0.2.0", "v0.2", "v2.0.0", "v0.2.0+meta", ""} {
		if err := ws.setVersion(bad); err == nil {
			t.Fatalf("setVersion(%q) accepted", bad)
		}
	}
	if read(t, filepath.Join(dir, "go.work")) != before {
		t.Fatal("a refused version changed go.work")
	}
	if err := ws.setVersion("v0.2.0"); err != nil {
		t.Fatal(err)
	}
	tool := read(t, filepath.Join(dir, "cmd/tool/go.mod"))
	for _, want := range []string{"example.com/r/lib v0.2.0", "example.com/r/svc v0.2.0", "golang.org/x/mod v0.42.0"} {
		if !strings.Contains(tool, want) {
			t.Errorf("cmd/tool/go.mod lacks %q:\n%s", want, tool)
		}
	}
	work := read(t, filepath.Join(dir, "go.work"))
	for _, want := range []string{"replace example.com/r/lib v0.2.0 => ./lib", "replace example.com/r/svc v0.2.0 => ./svc"} {
		if !strings.Contains(work, want) {
			t.Errorf("go.work lacks %q:\n%s", want, work)
		}
	}
	if strings.Contains(work, "v0.1.0") {
		t.Errorf("go.work still replaces v0.1.0:\n%s", work)
	}
	bench := read(t, filepath.Join(dir, "bench/x/go.mod"))
	if !strings.Contains(bench, "require example.com/r/svc v0.2.0") || !strings.Contains(bench, "replace example.com/r/svc => ../../svc") {
		t.Errorf("bench/x/go.mod not updated, or its replace lost:\n%s", bench)
	}
	if read(t, filepath.Join(dir, "lib/go.mod")) != "module example.com/r/lib\n\ngo 1.26\n" {
		t.Errorf("lib/go.mod changed: %s", read(t, filepath.Join(dir, "lib/go.mod")))
	}
}

func TestProxy(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git (apt-get install git)")
	}
	dir := repo(t)
	git := exec.Command("git", "init", "-q")
	git.Dir = dir
	if out, err := git.CombinedOutput(); err != nil {
		t.Fatalf("git init: %v: %s", err, out)
	}
	ws, err := loadWorkspace(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := ws.writeProxy(out, "v0.3.0-rc.1"); err != nil {
		t.Fatal(err)
	}
	if err := ws.writeProxy(out, "v0.3.0-rc.1"); err != nil {
		t.Fatal(err)
	}
	vdir := filepath.Join(out, "example.com/r/cmd/tool/@v")
	if got := read(t, filepath.Join(vdir, "list")); got != "v0.3.0-rc.1\n" {
		t.Errorf("list = %q, want the version once", got)
	}
	if got := read(t, filepath.Join(vdir, "v0.3.0-rc.1.info")); !strings.HasPrefix(got, `{"Version":"v0.3.0-rc.1","Time":"`) {
		t.Errorf("info = %s", got)
	}
	mod := read(t, filepath.Join(vdir, "v0.3.0-rc.1.mod"))
	if !strings.Contains(mod, "example.com/r/svc v0.3.0-rc.1") || !strings.Contains(mod, "example.com/r/lib v0.3.0-rc.1") {
		t.Errorf("served go.mod keeps old sibling versions:\n%s", mod)
	}
	if read(t, filepath.Join(dir, "cmd/tool/go.mod")) == mod {
		t.Error("the tree's go.mod was rewritten")
	}

	zipPath := filepath.Join(out, "example.com/r/lib/@v/v0.3.0-rc.1.zip")
	if _, err := modzip.CheckZip(module.Version{Path: "example.com/r/lib", Version: "v0.3.0-rc.1"}, zipPath); err != nil {
		t.Fatalf("zip does not pass the go command's checks: %v", err)
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	want := "example.com/r/lib@v0.3.0-rc.1/.gitignore example.com/r/lib@v0.3.0-rc.1/go.mod example.com/r/lib@v0.3.0-rc.1/lib.go"
	if strings.Join(names, " ") != want {
		t.Errorf("zip holds %v, want %s (no ignored file, no nested module)", names, want)
	}

	toolZip, err := zip.OpenReader(filepath.Join(vdir, "v0.3.0-rc.1.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer toolZip.Close()
	for _, f := range toolZip.File {
		if strings.HasSuffix(f.Name, "/go.mod") {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(b, []byte(mod)) {
				t.Errorf("go.mod in the zip differs from the .mod file:\n%s", b)
			}
		}
	}
}
