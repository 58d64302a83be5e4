package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// workspace is the repository's go.work and the modules it uses.
type workspace struct {
	root    string // directory holding go.work
	work    *modfile.WorkFile
	modules []*wsModule
}

// wsModule is one module of the workspace.
type wsModule struct {
	path string // module path
	dir  string // absolute directory
	rel  string // directory relative to the workspace root, slash-separated
	file *modfile.File
}

// loadWorkspace reads root/go.work and every go.mod it uses.
func loadWorkspace(root string) (*workspace, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	name := filepath.Join(root, "go.work")
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	wf, err := modfile.ParseWork(name, data, nil)
	if err != nil {
		return nil, err
	}
	ws := &workspace{root: root, work: wf}
	seen := map[string]bool{}
	for _, u := range wf.Use {
		dir := filepath.Join(root, filepath.FromSlash(u.Path))
		gomod := filepath.Join(dir, "go.mod")
		data, err := os.ReadFile(gomod)
		if err != nil {
			return nil, err
		}
		f, err := modfile.Parse(gomod, data, nil)
		if err != nil {
			return nil, err
		}
		if f.Module == nil {
			return nil, fmt.Errorf("alknet/release: %s has no module line", gomod)
		}
		p := f.Module.Mod.Path
		if seen[p] {
			return nil, fmt.Errorf("%w: %s", errDuplicateWS, p)
		}
		seen[p] = true
		rel := filepath.ToSlash(filepath.Clean(u.Path))
		ws.modules = append(ws.modules, &wsModule{path: p, dir: dir, rel: rel, file: f})
	}
	sort.Slice(ws.modules, func(i, j int) bool { return ws.modules[i].path < ws.modules[j].path })
	return ws, nil
}

// isSibling reports whether path is a module of the workspace.
func (ws *workspace) isSibling(path string) bool { return ws.module(path) != nil }

func (ws *workspace) module(path string) *wsModule {
	for _, m := range ws.modules {
		if m.path == path {
			return m
		}
	}
	return nil
}

// checkNoReplace fails when any go.mod of the workspace has a replace
// directive: the go command ignores replace in a dependency, and refuses
// `go install pkg@version` of a module that has one.
func (ws *workspace) checkNoReplace() error {
	var bad []string
	for _, m := range ws.modules {
		for _, r := range m.file.Replace {
			bad = append(bad, fmt.Sprintf("%s/go.mod: replace %s", m.rel, r.Old.Path))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w (go.work wires the local tree): %s", errReplace, strings.Join(bad, "; "))
	}
	return nil
}

// siblingVersion is the one version every sibling requirement names.
func (ws *workspace) siblingVersion() (string, error) {
	versions := map[string][]string{}
	for _, m := range ws.modules {
		for _, r := range m.file.Require {
			if ws.isSibling(r.Mod.Path) {
				versions[r.Mod.Version] = append(versions[r.Mod.Version], m.rel+" -> "+r.Mod.Path+"@"+r.Mod.Version)
			}
		}
	}
	switch len(versions) {
	case 0:
		return "", errNoSiblings
	case 1:
		for v := range versions {
			return v, nil
		}
	}
	var all []string
	for _, l := range versions {
		all = append(all, l...)
	}
	sort.Strings(all)
	return "", fmt.Errorf("%w: %s", errMixed, strings.Join(all, ", "))
}

// modWithVersion returns m's go.mod with every sibling requirement set to
// version, formatted.
func (ws *workspace) modWithVersion(m *wsModule, version string) ([]byte, error) {
	f, err := modfile.Parse(filepath.Join(m.dir, "go.mod"), mustFormat(m.file), nil)
	if err != nil {
		return nil, err
	}
	for _, r := range m.file.Require {
		if ws.isSibling(r.Mod.Path) {
			if err := f.AddRequire(r.Mod.Path, version); err != nil {
				return nil, err
			}
		}
	}
	f.Cleanup()
	return f.Format()
}

func mustFormat(f *modfile.File) []byte {
	b, err := f.Format()
	if err != nil {
		panic(err) // a parsed file always formats
	}
	return b
}

// setVersion rewrites every sibling requirement to version and makes go.work
// replace exactly that version of each required sibling with its directory.
func (ws *workspace) setVersion(version string) error {
	if !validVersion(version) {
		return fmt.Errorf("%w: %q", errBadVersion, version)
	}
	required := map[string]bool{}
	for _, m := range ws.modules {
		for _, r := range m.file.Require {
			if ws.isSibling(r.Mod.Path) {
				required[r.Mod.Path] = true
			}
		}
	}
	for _, m := range ws.modules {
		b, err := ws.modWithVersion(m, version)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(m.dir, "go.mod"), b, 0o644); err != nil {
			return err
		}
	}
	if err := ws.setOutsideModules(version); err != nil {
		return err
	}
	for _, r := range ws.work.Replace {
		if ws.isSibling(r.Old.Path) {
			if err := ws.work.DropReplace(r.Old.Path, r.Old.Version); err != nil {
				return err
			}
		}
	}
	for _, m := range ws.modules {
		if required[m.path] {
			if err := ws.work.AddReplace(m.path, version, "./"+m.rel, ""); err != nil {
				return err
			}
		}
	}
	ws.work.Cleanup()
	return os.WriteFile(filepath.Join(ws.root, "go.work"), modfile.Format(ws.work.Syntax), 0o644)
}

// validVersion accepts canonical semantic versions (v0.1.0, v1.2.3-rc.1).
func validVersion(v string) bool {
	return semver.IsValid(v) && semver.Canonical(v) == v && semver.Build(v) == "" &&
		module.CheckPathMajor(v, "") == nil
}

// tagPrefix is the module's directory relative to the repository root, the
// prefix of its tags (core/v0.1.0).
func (m *wsModule) tagPrefix() string { return m.rel }

// dependencyOrder lists the modules so that each comes after the siblings it
// requires: modules with no sibling requirement first, then those needing
// only them, and so on; alphabetical by path within one level.
func (ws *workspace) dependencyOrder() ([]*wsModule, error) {
	level := map[string]int{}
	var order []*wsModule
	for len(order) < len(ws.modules) {
		var next []*wsModule
		for _, m := range ws.modules {
			if _, done := level[m.path]; done {
				continue
			}
			ready := true
			for _, r := range m.file.Require {
				if _, done := level[r.Mod.Path]; ws.isSibling(r.Mod.Path) && !done {
					ready = false
				}
			}
			if ready {
				next = append(next, m)
			}
		}
		if len(next) == 0 {
			return nil, errCycle
		}
		for _, m := range next {
			level[m.path] = len(order)
		}
		order = append(order, next...)
	}
	return order, nil
}

// setOutsideModules sets the sibling requirements of the repository's
// modules that go.work does not use (bench/callbench), which keep replace
// directives to the tree but must still list the versions the siblings
// require of each other.
func (ws *workspace) setOutsideModules(version string) error {
	inWork := map[string]bool{}
	for _, m := range ws.modules {
		inWork[filepath.Join(m.dir, "go.mod")] = true
	}
	return filepath.WalkDir(ws.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != ws.root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() != "go.mod" || inWork[p] {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := modfile.Parse(p, data, nil)
		if err != nil {
			return err
		}
		changed := false
		for _, r := range f.Require {
			if ws.isSibling(r.Mod.Path) && r.Mod.Version != version {
				if err := f.AddRequire(r.Mod.Path, version); err != nil {
					return err
				}
				changed = true
			}
		}
		if !changed {
			return nil
		}
		f.Cleanup()
		b, err := f.Format()
		if err != nil {
			return err
		}
		return os.WriteFile(p, b, 0o644)
	})
}
