package git

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	gogit "github.com/go-git/go-git/v6"
	"github.com/go-git/go-git/v6/plumbing"
)

// CleanName turns the path of a request into a repository name: a clean
// relative slash-separated path ending in ".git" ("team/alpha.git"). One
// leading '/' is dropped, as git sends "/alpha.git" for alknet://.../alpha.git
// and "alpha.git" for host:alpha.git over ssh; ".git" is appended when
// missing. Empty elements, ".", "..", elements starting with '.', '~' or
// '-', backslashes and control characters are refused.
func CleanName(p string) (string, error) {
	p = strings.TrimPrefix(p, "/")
	if p == "" || len(p) > 1024 {
		return "", ErrBadName
	}
	if !strings.HasSuffix(p, ".git") {
		p += ".git"
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return "", ErrBadName
		}
	}
	if path.Clean(p) != p {
		return "", ErrBadName
	}
	for el := range strings.SplitSeq(p, "/") {
		if el == "" || el == ".git" || strings.HasPrefix(el, ".") || strings.HasPrefix(el, "~") || strings.HasPrefix(el, "-") {
			return "", ErrBadName
		}
	}
	return p, nil
}

// Resource returns the access-control resource of a repository name:
// "git:repo/team/alpha" for "team/alpha.git".
func Resource(name string) string {
	return "git:repo/" + strings.TrimSuffix(name, ".git")
}

// repoStore holds the bare repositories under a root.
type repoStore struct {
	root string // absolute, symlinks resolved

	mu    sync.Mutex
	locks map[string]*sync.Mutex // per repository, serializes pushes
}

func newRepoStore(root string) (*repoStore, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("alknet/git: repository root: %w", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("alknet/git: repository root: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("alknet/git: repository root: %w", err)
	}
	return &repoStore{root: real, locks: make(map[string]*sync.Mutex)}, nil
}

// lock returns the push lock of a repository.
func (s *repoStore) lock(name string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.locks[name]
	if !ok {
		m = new(sync.Mutex)
		s.locks[name] = m
	}
	return m
}

// inside reports whether p is the root or below it.
func (s *repoStore) inside(p string) bool {
	return p == s.root || strings.HasPrefix(p, s.root+string(filepath.Separator))
}

// resolve returns the host path of a clean name and whether it exists as a
// directory. A path that leaves the root through a symlink is ErrBadName.
func (s *repoStore) resolve(name string) (string, bool, error) {
	p := filepath.Join(s.root, filepath.FromSlash(name))
	// Resolve the deepest existing ancestor and check it stays inside.
	probe := p
	for {
		real, err := filepath.EvalSymlinks(probe)
		if err == nil {
			if !s.inside(real) {
				return "", false, ErrBadName
			}
			if probe == p {
				fi, err := os.Stat(real)
				if err != nil || !fi.IsDir() {
					return "", false, ErrBadName
				}
				return real, true, nil
			}
			return p, false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", false, ErrBadName
		}
		// A dangling symlink is refused rather than followed on create.
		if _, lerr := os.Lstat(probe); lerr == nil {
			return "", false, ErrBadName
		}
		parent := filepath.Dir(probe)
		if parent == probe || !s.inside(parent) {
			return "", false, ErrBadName
		}
		probe = parent
	}
}

// create makes an empty bare repository whose HEAD names refs/heads/main.
func (s *repoStore) create(name string) (string, error) {
	p, exists, err := s.resolve(name)
	if err != nil {
		return "", err
	}
	if exists {
		return "", ErrExists
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("alknet/git: create %s: %w", name, err)
	}
	// Build in a sibling temporary directory and rename, so that a crash
	// never leaves a half-made repository under the name.
	tmp, err := os.MkdirTemp(filepath.Dir(p), ".tmp-")
	if err != nil {
		return "", fmt.Errorf("alknet/git: create %s: %w", name, err)
	}
	if _, err := gogit.PlainInit(tmp, true, gogit.WithDefaultBranch(plumbing.NewBranchReferenceName("main"))); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("alknet/git: create %s: %w", name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) || isNotEmpty(err) {
			return "", ErrExists
		}
		return "", fmt.Errorf("alknet/git: create %s: %w", name, err)
	}
	return p, nil
}

func isNotEmpty(err error) bool {
	var le *os.LinkError
	return errors.As(err, &le) && strings.Contains(le.Err.Error(), "not empty")
}

// remove deletes a repository.
func (s *repoStore) remove(name string) error {
	p, exists, err := s.resolve(name)
	if err != nil {
		return err
	}
	if !exists {
		return ErrNotFound
	}
	if !isRepo(p) {
		return ErrNotFound
	}
	// Rename first so the name disappears at once, then delete.
	tmp := filepath.Join(filepath.Dir(p), ".rm-"+filepath.Base(p))
	if err := os.Rename(p, tmp); err != nil {
		return fmt.Errorf("alknet/git: remove %s: %w", name, err)
	}
	return os.RemoveAll(tmp)
}

// isRepo reports whether dir looks like a bare repository.
func isRepo(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "objects"))
	if err != nil || !fi.IsDir() {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, "HEAD"))
	return err == nil
}

// list returns the names of every repository under the root, sorted.
func (s *repoStore) list() ([]string, error) {
	var names []string
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !d.IsDir() || p == s.root {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(d.Name(), ".git") {
			if isRepo(p) {
				rel, err := filepath.Rel(s.root, p)
				if err == nil {
					names = append(names, filepath.ToSlash(rel))
				}
			}
			return filepath.SkipDir
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}
