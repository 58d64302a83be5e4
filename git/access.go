package git

import (
	"slices"
	"strings"

	"github.com/alkdev/alknet/core"
)

// Actions on a repository resource.
const (
	ActionRead   = "read"   // fetch, clone
	ActionWrite  = "write"  // push
	ActionCreate = "create" // a push to a missing repository creates it
)

// Scope is the gate scope of ALPN alknet/git.
const Scope = "git"

// Allowed reports whether id may perform action on the repository name
// ("team/alpha.git"). It looks at the resource "git:repo/team/alpha" (the
// form with ".git" is accepted too) and at every namespace that covers it:
// "git:repo/team/*" and "git:repo/*". A nil identity is allowed nothing.
func Allowed(id *core.Identity, name, action string) bool {
	if id == nil {
		return false
	}
	base := strings.TrimSuffix(name, ".git")
	for typ, actions := range id.Resources {
		if !slices.Contains(actions, action) {
			continue
		}
		res, ok := strings.CutPrefix(typ, "git:repo/")
		if !ok {
			continue
		}
		if res == base || res == name {
			return true
		}
		if ns, ok := strings.CutSuffix(res, "/*"); ok {
			if ns == "" || strings.HasPrefix(base, ns+"/") {
				return true
			}
		}
		if res == "*" {
			return true
		}
	}
	return false
}
