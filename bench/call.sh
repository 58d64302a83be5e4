#!/usr/bin/env bash
# alknet/call against grpc-go on loopback, in one run: unary echo over one
# connection with 1 and 64 concurrent callers (p50/p99 latency, calls/s) in
# two layouts, a QUIC stream per call ("alknet") and every call multiplexed
# on one stream ("alknet-mux"), and
# server-streaming items/s. Both carry the same JSON bodies over TLS 1.3 with
# ed25519 keys; "quic-stream" is the transport floor (the same body echoed on
# a bare alknet stream, no call protocol). Prints medians and ratios
# (alknet / grpc in every row: lower is better for latency, higher for rates).
#   COUNT=5 BENCHTIME=2s bench/call.sh
# The bench module is outside go.work (it pulls in grpc-go): GOWORK=off.
set -euo pipefail
cd "$(dirname "$0")/callbench"
COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-2s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)"
GOWORK=off go test -run '^$' -bench 'BenchmarkUnary|BenchmarkStream' -benchtime "$BENCHTIME" -count "$COUNT" . | tee "$out" | grep -E '^Benchmark' || true
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { grep -E "^$1-[0-9]+ " "$out" | awk -v f="$2" '{for (i=1;i<=NF;i++) if ($(i+1)==f) print $i}' | median; }
echo
printf '%-22s %12s %12s %12s %12s %10s %10s\n' "" alknet alknet-mux grpc quic-stream "alknet/grpc" "mux/grpc"
for c in 1 64; do
	for m in p50-µs p99-µs calls/s; do
		a=$(col "BenchmarkUnary/callers=$c/impl=alknet" "$m")
		x=$(col "BenchmarkUnary/callers=$c/impl=alknet-mux" "$m")
		g=$(col "BenchmarkUnary/callers=$c/impl=grpc" "$m")
		q=$(col "BenchmarkUnary/callers=$c/impl=quic-stream" "$m")
		awk -v l="unary c=$c $m" -v a="$a" -v x="$x" -v g="$g" -v q="$q" 'BEGIN { printf "%-22s %12.0f %12.0f %12.0f %12.0f %10.2f %10.2f\n", l, a, x, g, q, (g > 0 ? a / g : 0), (g > 0 ? x / g : 0) }'
	done
done
a=$(col 'BenchmarkStream/impl=alknet' 'items/s'); g=$(col 'BenchmarkStream/impl=grpc' 'items/s')
awk -v a="$a" -v g="$g" 'BEGIN { printf "%-22s %12.0f %12s %12.0f %12s %10.2f\n", "stream items/s", a, "-", g, "-", (g > 0 ? a / g : 0) }'
