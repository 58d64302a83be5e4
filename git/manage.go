package git

import (
	"fmt"

	"github.com/alkdev/alknet/core"
)

// List returns the names of the repositories id may read, sorted.
func (s *Server) List(id *core.Identity) ([]string, error) {
	names, err := s.repos.list()
	if err != nil {
		return nil, fmt.Errorf("alknet/git: list: %w", err)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if Allowed(id, n, ActionRead) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Create makes an empty bare repository (HEAD -> refs/heads/main) for id,
// which needs the create action on it. It returns the clean name.
func (s *Server) Create(id *core.Identity, repoPath string) (string, error) {
	name, err := CleanName(repoPath)
	if err != nil {
		return "", err
	}
	if !Allowed(id, name, ActionCreate) {
		return "", fmt.Errorf("%w for %s: %s", ErrForbidden, Resource(name), ActionCreate)
	}
	if _, err := s.repos.create(name); err != nil {
		return "", err
	}
	s.log.Info("git repository created", "repo", name, "peer", peerName(id))
	return name, nil
}

// Remove deletes a repository; id needs both the create and the write
// action on it. Pushes in flight finish first.
func (s *Server) Remove(id *core.Identity, repoPath string) (string, error) {
	name, err := CleanName(repoPath)
	if err != nil {
		return "", err
	}
	if !Allowed(id, name, ActionCreate) || !Allowed(id, name, ActionWrite) {
		return "", fmt.Errorf("%w for %s: %s and %s", ErrForbidden, Resource(name), ActionCreate, ActionWrite)
	}
	lk := s.repos.lock(name)
	lk.Lock()
	defer lk.Unlock()
	if err := s.repos.remove(name); err != nil {
		return "", err
	}
	s.log.Info("git repository removed", "repo", name, "peer", peerName(id))
	return name, nil
}
