#!/usr/bin/env bash
# Queries per second for an A record of a 1,000-record zone, 100 concurrent
# clients, over classic UDP and over DNS over QUIC (RFC 9250): alknet serve
# (zone in alknet.db, DoQ on the node's QUIC port with a public-name
# certificate) against CoreDNS (file plugin, quic:// server block) serving
# the same zone, on loopback, in one run. DoQ clients share 10 connections.
# Prints queries/s and the ratio alknet / CoreDNS (higher is better).
#
#   bench/dns.sh                  # DURATION=5s CLIENTS=100 CONNS=10
#
# Needs CoreDNS (go install github.com/coredns/coredns@v1.15.0) in PATH or
# $GOPATH/bin for the comparison; without it only alknet is measured.
set -euo pipefail

DURATION=${DURATION:-5s}
CLIENTS=${CLIENTS:-100}
CONNS=${CONNS:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/alknet-dns-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
echo "building alknet and dnsbench" >&2
(cd "$ROOT" && go build -o "$WORK/bin/alknet" ./cmd/alknet)
(cd "$ROOT/bench/dnsbench" && GOWORK=off go build -o "$WORK/bin/dnsbench" .)
export PATH=$WORK/bin:$PATH
COREDNS=$(command -v coredns || true)
[ -n "$COREDNS" ] || { [ -x "$(go env GOPATH)/bin/coredns" ] && COREDNS=$(go env GOPATH)/bin/coredns; } || true

freeport() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitdns() { # port [tcp]: until the server answers
	for _ in $(seq 100); do dnsbench load -proto udp -addr "127.0.0.1:$1" -name host500.example.test -c 1 -d 10ms >/dev/null 2>&1 && return 0; sleep 0.1; done
	echo "no DNS server on port $1" >&2; exit 1
}

mkdir -p "$WORK/certs" "$WORK/node"
dnsbench cert "$WORK/certs" dns.test
dnsbench zone example.test 1000 >"$WORK/zone.db"
NAME=host500.example.test

# alknet: the zone imported into alknet.db; anonymous DoQ clients get caps
# that fit the benchmark's connections and streams.
alknet --data "$WORK/node" init >/dev/null 2>&1
alknet --data "$WORK/node" dns import example.test "$WORK/zone.db" 2>/dev/null
cat >"$WORK/node/config.toml" <<CONF
[[tls]]
cert = "$WORK/certs/cert.pem"
key = "$WORK/certs/key.pem"
[limits]
max_anon_conns_per_ip = $((CONNS + 4))
max_anon_streams = $((CLIENTS / CONNS + 8))
[dns]
max_streams = $((CLIENTS / CONNS + 8))
CONF
chmod 600 "$WORK/node/config.toml"
APORT=$(freeport)
alknet --data "$WORK/node" --log-level error serve --listen 127.0.0.1:0 --no-tcp --dns-listen "127.0.0.1:$APORT" >"$WORK/node.out" 2>"$WORK/node.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/node.out" ] && break; sleep 0.1; done
AQUIC=$(head -1 "$WORK/node.out" | sed 's/.*@//')
waitdns "$APORT"

if [ -n "$COREDNS" ]; then
	CPORT=$(freeport)
	CQPORT=$(freeport)
	cat >"$WORK/Corefile" <<CONF
.:$CPORT {
    bind 127.0.0.1
    file $WORK/zone.db example.test
}
quic://.:$CQPORT {
    bind 127.0.0.1
    tls $WORK/certs/cert.pem $WORK/certs/key.pem
    file $WORK/zone.db example.test
}
CONF
	"$COREDNS" -conf "$WORK/Corefile" >"$WORK/coredns.log" 2>&1 &
	PIDS+=($!)
	waitdns "$CPORT"
else
	echo "CoreDNS not found: only alknet is measured (go install github.com/coredns/coredns@v1.15.0)" >&2
fi

run() { dnsbench load -proto "$1" -addr "$2" -name "$NAME" -c "$CLIENTS" -conns "$CONNS" -d "$DURATION" -ca "$WORK/certs/ca.pem" -sni dns.test; }
echo "machine: $(nproc) cores, $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "zone: $(grep -c ' IN ' "$WORK/zone.db") records; $CLIENTS clients, DoQ over $CONNS connections, $DURATION per row"
A_UDP=$(run udp "127.0.0.1:$APORT")
A_DOQ=$(run doq "$AQUIC")
C_UDP=0 C_DOQ=0
if [ -n "$COREDNS" ]; then
	C_UDP=$(run udp "127.0.0.1:$CPORT")
	C_DOQ=$(run doq "127.0.0.1:$CQPORT")
fi
printf '%-6s %12s %12s %10s   (queries/s; ratio alknet/CoreDNS)\n' "" alknet coredns ratio
for row in "udp $A_UDP $C_UDP" "doq $A_DOQ $C_DOQ"; do
	set -- $row
	awk -v l="$1" -v a="$2" -v c="$3" 'BEGIN { printf "%-6s %12.0f %12.0f %10s\n", l, a, c, (c > 0 ? sprintf("%.2f", a / c) : "-") }'
done
