#!/usr/bin/env bash
# alknet/msg in one run, on loopback: messages per second delivered from
# one node to another over one anonymous connection (1 KiB bucket: seal,
# deliver, open and store on the recipient's node, acknowledge; four
# senders), send-to-arrival latency p50/p99 with a live subscriber, and the
# cost of sealing and opening one message with X-Wing (the whole envelope:
# KEM, AEAD, signature, padding) against the bare HPKE single-shot seal and
# open with X-Wing and with X25519 only (DHKEM(X25519)), same 1 KiB
# plaintext. Prints medians and the X-Wing / X25519 ratios (the price of
# the post-quantum half).
#   COUNT=3 BENCHTIME=1s bench/msg.sh
set -euo pipefail
cd "$(dirname "$0")/../msg"
COUNT=${COUNT:-3}
BENCHTIME=${BENCHTIME:-1s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)"
go test -run '^$' -bench 'BenchmarkDeliver|BenchmarkArrival|BenchmarkSeal|BenchmarkOpen|BenchmarkHPKE' -benchtime "$BENCHTIME" -count "$COUNT" . | tee "$out" | grep -E '^Benchmark' || true
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { grep -E "^$1-[0-9]+[[:space:]]" "$out" | awk -v f="$2" '{for (i=1;i<=NF;i++) if ($(i+1)==f) print $i}' | median; }
rate=$(col BenchmarkDeliver msgs/s)
p50=$(col BenchmarkArrival p50-us); p99=$(col BenchmarkArrival p99-us)
seal=$(col BenchmarkSeal ns/op); open=$(col BenchmarkOpen ns/op)
xs=$(col BenchmarkHPKESealXWing ns/op); xo=$(col BenchmarkHPKEOpenXWing ns/op)
cs=$(col BenchmarkHPKESealX25519 ns/op); co=$(col BenchmarkHPKEOpenX25519 ns/op)
echo
awk -v rate="$rate" -v p50="$p50" -v p99="$p99" -v seal="$seal" -v open="$open" -v xs="$xs" -v xo="$xo" -v cs="$cs" -v co="$co" 'BEGIN {
	printf "delivery node to node (1 KiB bucket)   %8.0f msgs/s\n", rate
	printf "send-to-arrival, live subscriber       p50 %6.0f us   p99 %6.0f us\n", p50, p99
	printf "envelope Seal / Open (X-Wing, signed)  %6.0f us / %6.0f us\n", seal / 1000, open / 1000
	printf "HPKE seal  X-Wing %6.0f us   X25519 %6.0f us   ratio %.2f\n", xs / 1000, cs / 1000, (cs > 0 ? xs / cs : 0)
	printf "HPKE open  X-Wing %6.0f us   X25519 %6.0f us   ratio %.2f\n", xo / 1000, co / 1000, (co > 0 ? xo / co : 0)
}'
