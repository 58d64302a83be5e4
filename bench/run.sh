#!/usr/bin/env bash
# Core benchmarks: core.Stream against a bare quic-go stream, and new
# connections through the ALPN router (ten ALPNs) against a bare quic-go
# accept loop, in the same run; and the same single stream over the TCP+TLS
# listener against QUIC. Prints medians and ratios.
#   COUNT=5 BENCHTIME=2s bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/../core"
COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-2s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(go version | cut -d' ' -f3)"
go test -run '^$' -bench 'BenchmarkStream|BenchmarkConnect' -benchtime "$BENCHTIME" -count "$COUNT" . | tee "$out" | grep -E '^Benchmark' || true
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { grep -E "^$1-[0-9]+[[:space:]]" "$out" | awk -v f="$2" '{for (i=1;i<=NF;i++) if ($(i+1)==f) print $i}' | median; }
sa=$(col 'BenchmarkStream/impl=alknet' 'MB/s'); sq=$(col 'BenchmarkStream/impl=quic-go' 'MB/s')
st=$(col 'BenchmarkStream/impl=alknet-tcp' 'MB/s')
ca=$(col 'BenchmarkConnect/impl=alknet' 'ns/op'); cq=$(col 'BenchmarkConnect/impl=quic-go' 'ns/op')
echo
awk -v sa="$sa" -v sq="$sq" -v st="$st" -v ca="$ca" -v cq="$cq" 'BEGIN {
	printf "stream throughput   alknet %8.1f MB/s   quic-go %8.1f MB/s   ratio %.2f\n", sa, sq, sa / sq
	printf "tcp+tls vs quic     tcp    %8.1f MB/s   quic    %8.1f MB/s   ratio %.2f\n", st, sa, st / sa
	printf "connections/s       alknet %8.0f        quic-go %8.0f        ratio %.2f\n", 1e9 / ca, 1e9 / cq, cq / ca
}'
