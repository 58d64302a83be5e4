#!/usr/bin/env bash
# alknet's HTTP server against Caddy on loopback, in one run: requests/s
# and p50/p99 latency for a small static file (1026 bytes) over h2 and h3
# from 32 concurrent requests on one connection, `alknet serve` and Caddy
# (each its own process) serving the same file to the same Go clients; and
# the call gateway (node/info over h2 and h3) against the same query on
# alknet/call, its overhead. Prints medians and ratios (alknet / caddy,
# gateway / call: higher is better for req/s, lower for latency).
#   COUNT=3 BENCHTIME=3s bench/http.sh
# Caddy comes from the Go module proxy (CADDY_VERSION, default latest) into
# a temporary GOBIN unless CADDY names a binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
COUNT=${COUNT:-3}
BENCHTIME=${BENCHTIME:-3s}
tmp=$(mktemp -d)
caddy_pid=""
node_pid=""
cleanup() {
	for p in $caddy_pid $node_pid; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)"

caddy=${CADDY:-}
if [ -z "$caddy" ]; then
	echo "building caddy ${CADDY_VERSION:-latest} ..." >&2
	(cd "$tmp" && GOWORK=off GOBIN="$tmp/bin" go install "github.com/caddyserver/caddy/v2/cmd/caddy@${CADDY_VERSION:-latest}")
	caddy="$tmp/bin/caddy"
fi
echo "caddy: $(go version -m "$caddy" | awk '$1=="mod" {print $3}')"

# The same 1026 bytes the Go benchmark serves (benchFile).
mkdir -p "$tmp/site"
for _ in $(seq 54); do echo "alknet static file"; done > "$tmp/site/file.txt"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$tmp/Caddyfile" <<CADDY
{
	admin off
	auto_https disable_redirects
	skip_install_trust
	storage file_system $tmp/caddy-data
	servers {
		protocols h1 h2 h3
	}
}
https://127.0.0.1:$port {
	tls internal
	root * $tmp/site
	file_server
}
CADDY
XDG_DATA_HOME="$tmp/xdg" XDG_CONFIG_HOME="$tmp/xdg" "$caddy" run --config "$tmp/Caddyfile" --adapter caddyfile >"$tmp/caddy.log" 2>&1 &
caddy_pid=$!
for _ in $(seq 200); do
	curl -sk --max-time 1 "https://127.0.0.1:$port/file.txt" -o /dev/null && break
	kill -0 "$caddy_pid" 2>/dev/null || { cat "$tmp/caddy.log" >&2; exit 1; }
	sleep 0.05
done

# alknet serve with the same file as its static root, knowing the
# benchmark's client key as a peer with scope call.
(cd "$root/cmd/alknet" && go build -o "$tmp/alknet" .)
"$tmp/alknet" --data "$tmp/client" init >/dev/null 2>&1
"$tmp/alknet" --data "$tmp/node" init >/dev/null 2>&1
"$tmp/alknet" --data "$tmp/node" peer add bench --node "$("$tmp/alknet" --data "$tmp/client" id)" --scope call >/dev/null 2>&1
printf '[http]\nroot = "%s"\nmax_anon_streams = 128\n' "$tmp/site" > "$tmp/node/config.toml"
chmod 600 "$tmp/node/config.toml"
"$tmp/alknet" --data "$tmp/node" serve --listen 127.0.0.1:0 >"$tmp/node.out" 2>"$tmp/node.log" &
node_pid=$!
for _ in $(seq 600); do
	[ -s "$tmp/node.out" ] && break
	kill -0 "$node_pid" 2>/dev/null || { cat "$tmp/node.log" >&2; exit 1; }
	sleep 0.05
done
node=$(head -1 "$tmp/node.out")
echo "alknet: $node"

out="$tmp/bench.txt"
(cd "$root/http" && ALKNET_BENCH_NODE="$node" ALKNET_BENCH_KEY="$tmp/client/identity.key" ALKNET_BENCH_CADDY="https://127.0.0.1:$port" go test -run '^$' -bench 'BenchmarkHTTP|BenchmarkGateway' -benchtime "$BENCHTIME" -count "$COUNT" .) | tee "$out" | grep -E '^Benchmark' || true

median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { grep -E "^$1-[0-9]+[[:space:]]" "$out" | awk -v f="$2" '{for (i=1;i<=NF;i++) if ($(i+1)==f) print $i}' | median; }
echo
printf '%-28s %12s %12s %12s %12s %8s\n' "" "req/s" "p99-µs" "peer req/s" "peer p99-µs" "ratio"
for p in h2 h3; do
	a=$(col "BenchmarkHTTP/target=alknet/proto=$p" 'req/s'); ap=$(col "BenchmarkHTTP/target=alknet/proto=$p" 'p99-µs')
	c=$(col "BenchmarkHTTP/target=caddy/proto=$p" 'req/s'); cp=$(col "BenchmarkHTTP/target=caddy/proto=$p" 'p99-µs')
	awk -v l="static $p (vs caddy)" -v a="$a" -v ap="$ap" -v c="$c" -v cp="$cp" 'BEGIN { printf "%-28s %12.0f %12.0f %12.0f %12.0f %8.2f\n", l, a, ap, c, cp, (c > 0 ? a / c : 0) }'
done
c=$(col 'BenchmarkGateway/impl=call' 'req/s'); cp=$(col 'BenchmarkGateway/impl=call' 'p99-µs')
for p in h2 h3; do
	a=$(col "BenchmarkGateway/impl=gateway-$p" 'req/s'); ap=$(col "BenchmarkGateway/impl=gateway-$p" 'p99-µs')
	awk -v l="gateway $p (vs alknet/call)" -v a="$a" -v ap="$ap" -v c="$c" -v cp="$cp" 'BEGIN { printf "%-28s %12.0f %12.0f %12.0f %12.0f %8.2f\n", l, a, ap, c, cp, (c > 0 ? a / c : 0) }'
done
