package git

import (
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
// ("team/alpha.git"). It asks core's Identity.Allows about the resource
// "git:repo/team/alpha" (the form with ".git" is accepted too), so every
// namespace that covers it ("git:repo/team/*", "git:repo/*") and the
// owner's "*" count. A nil identity is allowed nothing.
func Allowed(id *core.Identity, name, action string) bool {
	base := strings.TrimSuffix(name, ".git")
	return id.Allows("git:repo/"+base, action) || id.Allows("git:repo/"+base+".git", action)
}
