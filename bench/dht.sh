#!/usr/bin/env bash
# Node-record lookups on a loopback Mainline DHT of 20 nodes (anacrolix/dht
# nodes, bootstrapping from each other; nothing leaves 127.0.0.1), in one
# run: alknet's Resolve from a node with a full routing table, anacrolix's
# own BEP44 get (exts/getput) from the same node, and a cold lookup as the
# CLI does it (a new node that knows one bootstrap node). Prints medians
# and the ratio to getput (lower is better).
#   COUNT=5 BENCHTIME=50x bench/dht.sh
set -euo pipefail
cd "$(dirname "$0")/../dns"
COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-50x}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(go version | cut -d' ' -f3)"
go test -run '^$' -bench 'BenchmarkDHTResolve' -benchtime "$BENCHTIME" -count "$COUNT" ./pkarr | tee "$out" | grep -E '^Benchmark' || true
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { grep -E "^$1-[0-9]+[[:space:]]" "$out" | awk -v f="$2" '{for (i=1;i<=NF;i++) if ($(i+1)==f) print $i}' | median; }
w=$(col 'BenchmarkDHTResolve/impl=alknet' 'ns/op')
g=$(col 'BenchmarkDHTResolve/impl=getput' 'ns/op')
c=$(col 'BenchmarkDHTResolve/impl=alknet-cold' 'ns/op')
echo
awk -v w="$w" -v g="$g" -v c="$c" 'BEGIN {
	printf "resolve, warm node   alknet %7.2f ms   getput %7.2f ms   ratio %.2f\n", w / 1e6, g / 1e6, w / g
	printf "resolve, cold node   alknet %7.2f ms   (new node, one bootstrap node)\n", c / 1e6
}'
