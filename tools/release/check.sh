#!/usr/bin/env bash
# make release-check: proves that a program outside this repository can use
# every module as it would be published, without go.work.
#   1. no go.mod of the workspace has a replace directive, and all sibling
#      requirements name one version;
#   2. every module is written at a test version (CHECK_VERSION, default
#      v0.0.0-releasecheck) into a local module proxy directory, zipped as a
#      proxy serves it (golang.org/x/mod/zip), with sibling requirements set
#      to that version;
#   3. in a temporary directory, with GOWORK=off and a fresh module cache,
#      a consumer module gets every module, builds all their packages, and
#      runs a loopback round trip importing core and sftp;
#   4. a build of core/store without cgo fails with the one-line message;
#   5. `go install github.com/alkdev/alknet/cmd/alknet@<version>` works and
#      the binary's `alknet version` prints that version.
# Our modules come only from the local proxy (GONOSUMDB: they are not in the
# checksum database); third-party modules come from the local module cache,
# else from the usual GOPROXY. Servers listen on 127.0.0.1 only.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=${CHECK_VERSION:-v0.0.0-releasecheck}
start=$SECONDS
tmp=$(mktemp -d "${TMPDIR:-/tmp}/alknet-release-check.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"' EXIT
step() { echo "== $*"; }
fail() { echo "release-check: $*" >&2; exit 1; }

step "lint: no replace directive in any go.mod, one sibling version"
(cd "$root/tools/release" && GOWORK=off go test -count=1 . && GOWORK=off go build -o "$tmp/release" .)
"$tmp/release" lint -root "$root"

step "local module proxy holding every module at $version"
"$tmp/release" proxy -root "$root" -version "$version" -out "$tmp/proxy"
modules=($(find "$tmp/proxy" -name list -path '*/@v/list' | sed "s|^$tmp/proxy/||; s|/@v/list$||" | sort))
[ "${#modules[@]}" -gt 0 ] || fail "the proxy holds no module"

usercache=$(go env GOMODCACHE)
userproxy=$(go env GOPROXY)
proxy="file://$tmp/proxy"
[ -d "$usercache/cache/download" ] && proxy+=",file://$usercache/cache/download"
[ -n "$userproxy" ] && [ "$userproxy" != off ] && proxy+=",$userproxy"
export GOWORK=off GOPROXY="$proxy" GOMODCACHE="$tmp/modcache" GONOSUMDB=github.com/alkdev/alknet \
	GOFLAGS="-mod=mod -modcacherw -trimpath"
gover=$(awk '$1 == "go" { print $2; exit }' "$root/core/go.mod")

step "consumer module outside the repository (GOWORK=off): go get every module"
mkdir -p "$tmp/consumer"
cp "$root/tools/release/testdata/consumer/main.go" "$tmp/consumer/"
cd "$tmp/consumer"
printf 'module example.com/alknetconsumer\n\ngo %s\n' "$gover" > go.mod
# Checksums of third-party modules, so no checksum-database lookup is needed
# for what the repository already pins.
cat "$root"/*/go.sum "$root"/*/*/go.sum 2>/dev/null | sort -u > go.sum
gets=() pkgs=()
for m in "${modules[@]}"; do
	gets+=("$m@$version")
	pkgs+=("$m/...")
done
go get "${gets[@]}"
for m in "${modules[@]}"; do
	got=$(go list -m -f '{{.Version}} {{.Dir}}' "$m")
	case "$got" in
	"$version $tmp/modcache/"*) ;;
	*) fail "$m resolved to '$got', want $version from the local proxy" ;;
	esac
done
step "build every package of every module (${#modules[@]} modules)"
go build "${pkgs[@]}"

step "loopback round trip: core + sftp"
go mod tidy
go build -o consumer .
out=$(./consumer) || fail "consumer failed: $out"
echo "$out"
case "$out" in "ok: 262144 bytes over alknet/sftp to "*) ;; *) fail "consumer printed '$out'" ;; esac

step "a build without cgo fails with one line naming the cause"
if nocgo=$(CGO_ENABLED=0 go build -o /dev/null github.com/alkdev/alknet/core/store 2>&1); then
	fail "core/store built without cgo"
fi
grep -q 'SQLite_needs_cgo__install_a_C_compiler' <<<"$nocgo" || fail "unclear failure without cgo: $nocgo"

step "go install github.com/alkdev/alknet/cmd/alknet@$version"
cd "$tmp"
GOBIN="$tmp/bin" go install "github.com/alkdev/alknet/cmd/alknet@$version"
got=$("$tmp/bin/alknet" version)
echo "$got"
case "$got" in "alknet $version ("*) ;; *) fail "alknet version printed '$got', want alknet $version" ;; esac
[ "$("$tmp/bin/alknet" --version)" = "$got" ] || fail "alknet --version differs from alknet version"

echo "release-check: ok in $((SECONDS - start))s"
