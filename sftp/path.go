package sftp

import (
	"path"
	"strings"
)

// resolve maps a path as the client sees it (absolute from the session's
// root, or relative to it) to a name for os.Root: "." for the root itself,
// else a slash-separated path with no "." or ".." elements, no leading
// slash and no empty elements. ".." above the root stays at the root, as
// in a chroot. NUL bytes are refused. The result never names anything
// outside the root lexically; os.Root then refuses symlinks that lead out.
func resolve(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", errBadPath
	}
	c := path.Clean("/" + p)
	if c == "/" {
		return ".", nil
	}
	return c[1:], nil
}

// clientPath is the absolute path the client sees for p.
func clientPath(p string) string { return path.Clean("/" + p) }

// linkTarget turns the target of a new symlink at link (both as the client
// gave them) into what is stored on disk: relative targets are kept,
// absolute ones are rewritten relative to the link's directory so they
// mean the same inside the jail. A target that lexically leaves the root
// is refused.
func linkTarget(target, link string) (string, error) {
	if target == "" || strings.IndexByte(target, 0) >= 0 {
		return "", errBadPath
	}
	dir := path.Dir(clientPath(link))
	if path.IsAbs(target) {
		abs := path.Clean(target)
		rel := relPath(dir, abs)
		return rel, nil
	}
	// Walk dir + target without collapsing ".." at the root.
	depth := 0
	if dir != "/" {
		depth = strings.Count(dir, "/")
	}
	for _, el := range strings.Split(target, "/") {
		switch el {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", errEscape
			}
		default:
			depth++
		}
	}
	return target, nil
}

// relPath returns the relative path from directory base to target, both
// clean and absolute.
func relPath(base, target string) string {
	split := func(p string) []string {
		if p == "/" {
			return nil
		}
		return strings.Split(p[1:], "/")
	}
	b, t := split(base), split(target)
	i := 0
	for i < len(b) && i < len(t) && b[i] == t[i] {
		i++
	}
	parts := make([]string, 0, len(b)-i+len(t)-i)
	for range b[i:] {
		parts = append(parts, "..")
	}
	parts = append(parts, t[i:]...)
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}
