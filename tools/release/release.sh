#!/usr/bin/env bash
# make release VERSION=v0.x.y: prepares a release of every module at one
# version. It refuses a working tree with changes, sets every sibling
# requirement (and the go.work replacements) to VERSION, commits that if
# anything changed, and creates the tags <module dir>/VERSION in dependency
# order (core and vault, then the handlers, then cmd/alknet and examples).
# It pushes nothing; it prints the git push line.
set -euo pipefail
fail() { echo "release: $*" >&2; exit 1; }
version=${1:-}
[ -n "$version" ] || fail "usage: make release VERSION=v0.x.y"
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
[ -z "$(git status --porcelain)" ] || fail "the working tree has changes or untracked files; commit or stash them first"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/alknet-release.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd tools/release && GOWORK=off go build -o "$tmp/release" .)
"$tmp/release" lint -root "$root"
tags=$("$tmp/release" tags -root "$root" -version "$version")
for t in $tags; do
	if git rev-parse -q --verify "refs/tags/$t" >/dev/null; then
		fail "tag $t exists already"
	fi
done

"$tmp/release" set -root "$root" -version "$version"
for m in $(go list -m -f '{{.Dir}}'); do
	(cd "$m" && go build ./...) || fail "$m does not build with siblings at $version"
done
if ! git diff --quiet; then
	git commit -q -a -m "release $version: require sibling modules at $version"
	echo "committed: $(git log -1 --format='%h %s')"
fi
for t in $tags; do
	git tag -a "$t" -m "$t"
	echo "tagged $t"
done
echo
echo "Nothing was pushed. Check, then publish with:"
echo "  git push origin HEAD $(echo $tags)"
