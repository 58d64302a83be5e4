#!/usr/bin/env bash
# Mix network figures (msg/mix), in one run:
#   - Sphinx unwraps per second on one core, against one bare X25519
#     multiplication (an unwrap does two, plus the header stream, the MAC
#     and Lioness over the 18 KiB payload);
#   - end-to-end latency through three mix nodes on loopback at a 50 ms
#     mean delay per hop, against the theoretical sum of three exponentials
#     (Erlang k=3), quantile by quantile, with the same route without delays
#     and the lateness of bare Go timers on the machine as the floors;
#   - bandwidth: packet size against the sealed envelope it carries.
#
#   COUNT=3 BENCHTIME=2s MESSAGES=400 bench/mix.sh
set -euo pipefail
cd "$(dirname "$0")/../msg/mix"
COUNT=${COUNT:-3}
BENCHTIME=${BENCHTIME:-1s}
MESSAGES=${MESSAGES:-300}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(go version | cut -d' ' -f3)"
go test -run '^$' -bench 'BenchmarkUnwrap$|BenchmarkX25519$|BenchmarkWrap$' -cpu 1 -benchtime "$BENCHTIME" -count "$COUNT" . | tee "$out" | grep -E '^Benchmark' || true
go test -run '^$' -bench 'BenchmarkLatency3Hops|BenchmarkTimerLateness$' -benchtime "${MESSAGES}x" -count 1 . | tee -a "$out" | grep -E '^Benchmark' || true
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { grep -E "^$1(-[0-9]+)?[[:space:]]" "$out" | awk -v f="$2" '{for (i=1;i<=NF;i++) if ($(i+1)==f) print $i}' | median; }
un=$(col BenchmarkUnwrap ns/op); x=$(col BenchmarkX25519 ns/op); wr=$(col BenchmarkWrap ns/op)
L=BenchmarkLatency3Hops/mean=50ms; Z=BenchmarkLatency3Hops/mean=0
p50=$(col $L p50-ms); p90=$(col $L p90-ms); p99=$(col $L p99-ms); mean=$(col $L mean-ms)
t50=$(col $L theory-p50-ms); t90=$(col $L theory-p90-ms); t99=$(col $L theory-p99-ms)
z50=$(col $Z p50-ms); z99=$(col $Z p99-ms)
tl=$(col BenchmarkTimerLateness late-mean-ms); tl99=$(col BenchmarkTimerLateness late-p99-ms)
echo
awk -v un="$un" -v x="$x" -v wr="$wr" -v p50="$p50" -v p90="$p90" -v p99="$p99" -v t50="$t50" -v t90="$t90" -v t99="$t99" -v mean="$mean" -v z50="$z50" -v z99="$z99" -v tl="$tl" -v tl99="$tl99" 'BEGIN {
	printf "unwrap, one core     %8.0f /s   (%.0f us; %.2f x one X25519 of %.0f us)\n", 1e9 / un, un / 1e3, un / x, x / 1e3
	printf "wrap, 3 hops         %8.0f /s   (%.0f us)\n", 1e9 / wr, wr / 1e3
	printf "latency 3 hops p50   %8.1f ms   theory %6.1f ms   ratio %.2f\n", p50, t50, p50 / t50
	printf "latency 3 hops p90   %8.1f ms   theory %6.1f ms   ratio %.2f\n", p90, t90, p90 / t90
	printf "latency 3 hops p99   %8.1f ms   theory %6.1f ms   ratio %.2f\n", p99, t99, p99 / t99
	printf "latency 3 hops mean  %8.1f ms   theory %6.1f ms   ratio %.2f\n", mean, 150, mean / 150
	printf "3 hops, no delay     p50 %.1f ms, p99 %.1f ms   (transport and unwraps alone)\n", z50, z99
	printf "bare Go timer        late by %.1f ms on average, p99 %.1f ms   (this machine; a route pays it 3 times)\n", tl, tl99
	pkt = 18432; ov = 1169
	printf "packet vs envelope   16 KiB bucket %.3f   4 KiB %.2f   1 KiB %.2f   (packet %d bytes)\n", pkt / (16384 + ov), pkt / (4096 + ov), pkt / (1024 + ov), pkt
}'
