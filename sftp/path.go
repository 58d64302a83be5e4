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
// gave them) into what is stored on disk. A stored target never climbs:
// it has no ".." element and is not absolute, so it names something in the
// link's own directory or below it. That holds however the directories
// around the link are renamed or replaced later, and whatever other links
// the target passes through were made under the same rule (a check that
// resolved ".." through existing links at creation time could be undone
// by swapping a directory for a link afterwards). An absolute target is
// stored relative to the link's directory when it lies under it, and
// refused otherwise, like any target with a ".." element.
func linkTarget(target, link string) (string, error) {
	if target == "" || strings.IndexByte(target, 0) >= 0 {
		return "", errBadPath
	}
	if path.IsAbs(target) {
		dir := path.Dir(clientPath(link))
		abs := path.Clean(target)
		rel := relPath(dir, abs)
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return "", errLinkClimb
		}
		return rel, nil
	}
	for _, el := range strings.Split(target, "/") {
		if el == ".." {
			return "", errLinkClimb
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
