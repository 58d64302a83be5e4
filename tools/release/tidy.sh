#!/usr/bin/env bash
# make tidy: `go mod tidy` in every module of go.work. go mod tidy ignores
# go.work and would look up sibling modules at the version they are required
# at, which may not be published yet; it gets them from a local module proxy
# built from this tree instead (and a throwaway module cache), then drops
# their checksum lines from go.sum, which would not match the published ones.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/alknet-tidy.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"' EXIT
(cd "$root/tools/release" && GOWORK=off go build -o "$tmp/release" .)
version=$("$tmp/release" current -root "$root")
"$tmp/release" proxy -root "$root" -version "$version" -out "$tmp/proxy"
usercache=$(go env GOMODCACHE)
userproxy=$(go env GOPROXY)
proxy="file://$tmp/proxy"
[ -d "$usercache/cache/download" ] && proxy+=",file://$usercache/cache/download"
[ -n "$userproxy" ] && [ "$userproxy" != off ] && proxy+=",$userproxy"
dirs=$(cd "$root" && go list -m -f '{{.Dir}}')
export GOPROXY="$proxy" GOMODCACHE="$tmp/modcache" GONOSUMDB=github.com/alkdev/alknet GOFLAGS=-modcacherw
for m in $dirs; do
	echo "== go mod tidy $m"
	(cd "$m" && go mod tidy && sed -i.bak '/^github\.com\/alkdev\/alknet\//d' go.sum && rm -f go.sum.bak)
done
