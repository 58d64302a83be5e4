#!/usr/bin/env bash
# Benchmark: 1 GiB put and get with alknet fs on loopback, in one run,
# against
#   1. a bare alknet stream: the same GET answer read by `alknet pipe` into
#      a file (no verification, no store), and the Go benchmark
#      BenchmarkTransfer (fs against a plain core.Stream, file to file,
#      interleaved so both see the same load);
#   2. alknet cp (SFTP over alknet, SHA-256 checked);
#   3. scp to OpenSSH's sshd over TCP;
#   4. b3sum alone against the store's hashing (BenchmarkHash), to show
#      hashing is not the bottleneck.
# `alknet pipe` to alknet/ping (an echo: every byte crosses twice) is shown
# as the transport's reference.
#
# Usage: [TMPDIR=/dev/shm] bench/fs.sh [SIZE_MIB]   (default 1024)
# Needs root (sshd runs on a spare port with a temporary config and host
# key, stopped at the end), openssh-client, b3sum; installs openssh-server
# and b3sum with apt-get when missing.
set -euo pipefail

SIZE_MIB=${1:-1024}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/alknet-fs-bench.XXXXXX")
SSHD_PID=""
SERVE_PID=""
cleanup() {
	[ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null || true
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null && wait "$SSHD_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

command -v scp >/dev/null || { echo "needs OpenSSH's scp: apt-get install openssh-client" >&2; exit 1; }
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v b3sum >/dev/null || need+=(b3sum)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing ${need[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "building alknet" >&2
(cd "$HERE/cmd/alknet" && go build -o "$WORK/alknet" .)
A="$WORK/alknet"

now() { date +%s.%N; }
mbps() { awk -v s="$SIZE_MIB" -v t="$1" 'BEGIN { printf "%.1f", s * 1.048576 / t }'; }

mkdir -p "$WORK/local"
echo "writing a ${SIZE_MIB} MiB test file" >&2
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/local/src.bin"
SUM=$(b3sum --no-names "$WORK/local/src.bin")
check() { # file label
	local got
	got=$(b3sum --no-names "$1")
	[ "$got" = "$SUM" ] || { echo "content mismatch after $2" >&2; exit 1; }
	rm -f "$1"
}

# --- alknet node ------------------------------------------------------------
"$A" --data "$WORK/client" init >/dev/null 2>&1
FP=$("$A" --data "$WORK/client" id --fingerprint)
mkdir -p "$WORK/node"
cat >"$WORK/node/config.toml" <<CFG
[sftp]
root = "$WORK/node/files"
[[peers]]
id = "bench"
fingerprints = ["$FP"]
scopes = ["fs", "fs:write", "sftp", "sftp:write"]
CFG
"$A" --data "$WORK/node" --log-level warn serve --listen 127.0.0.1:0 >"$WORK/addr" 2>"$WORK/serve.log" &
SERVE_PID=$!
for _ in $(seq 100); do [ -s "$WORK/addr" ] && break; sleep 0.1; done
ADDR=$(head -1 "$WORK/addr")
[ -n "$ADDR" ] || { cat "$WORK/serve.log" >&2; exit 1; }
C=(--data "$WORK/client" --log-level error)

# --- sshd -------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/ssh" /run/sshd "$WORK/sshfiles"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/host" >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/user" >/dev/null
cp "$WORK/ssh/user.pub" "$WORK/ssh/authorized_keys"
chmod 600 "$WORK/ssh/authorized_keys"
SFTP_SERVER=""
for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/libexec/sftp-server; do
	[ -x "$p" ] && SFTP_SERVER=$p && break
done
cat >"$WORK/ssh/sshd_config" <<CFG
Port $PORT
ListenAddress 127.0.0.1
HostKey $WORK/ssh/host
AuthorizedKeysFile $WORK/ssh/authorized_keys
PidFile $WORK/ssh/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp $SFTP_SERVER
CFG
/usr/sbin/sshd -D -e -f "$WORK/ssh/sshd_config" 2>"$WORK/ssh/log" &
SSHD_PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
SCP=(scp -q -i "$WORK/ssh/user" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -P "$PORT")
U="$(id -un)@127.0.0.1"

# --- runs -------------------------------------------------------------------
# Each figure is the median of RUNS rounds; a round runs every command once,
# so all of them see the same load.
RUNS=${RUNS:-3}
declare -A T S
time_of() { # command... -> seconds on stdout; the command's stdout in $WORK/stdout
	local s e
	s=$(now)
	"$@" >"$WORK/stdout"
	e=$(now)
	awk -v s="$s" -v e="$e" 'BEGIN { print e - s }'
}
sample() { # name command...
	local t
	t=$(time_of "${@:2}")
	S[$1]="${S[$1]:-} $t"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
GETREQ=""
NAMES=("b3sum" "fs put" "fs get" "pipe get (bare)" "pipe get (bare) + fsync" "pipe echo (ping)" "cp put" "cp get" "scp put" "scp get")
echo "runs (${SIZE_MIB} MiB, loopback, $(nproc) cores, median of $RUNS rounds):" >&2
for round in $(seq "$RUNS"); do
	echo "  round $round" >&2
	sample "b3sum" b3sum "$WORK/local/src.bin"
	sample "fs put" "$A" "${C[@]}" fs put -q "$WORK/local/src.bin" "$ADDR"
	TICKET=$(tail -1 "$WORK/stdout")
	sample "fs get" "$A" "${C[@]}" fs get -q "$TICKET" -o "$WORK/local/fs.bin"
	check "$WORK/local/fs.bin" "fs get"
	# The same GET answer over a bare `alknet pipe` stream: frame length
	# 35, op 1, the hash, no ranges; then also synced to disk at the end,
	# as fs get (and cp) do.
	GETREQ="\\x00\\x00\\x00\\x23\\x01$(echo "$SUM" | sed 's/../\\x&/g')\\x00\\x00"
	sample "pipe get (bare)" bash -c "printf '$GETREQ' | '$A' --data '$WORK/client' --log-level error pipe --alpn alknet/fs '$ADDR' >'$WORK/local/pipe.bin'"
	rm -f "$WORK/local/pipe.bin"
	sample "pipe get (bare) + fsync" bash -c "printf '$GETREQ' | '$A' --data '$WORK/client' --log-level error pipe --alpn alknet/fs '$ADDR' >'$WORK/local/pipe.bin' && sync '$WORK/local/pipe.bin'"
	rm -f "$WORK/local/pipe.bin"
	sample "pipe echo (ping)" bash -c "'$A' --data '$WORK/client' --log-level error pipe --alpn alknet/ping '$ADDR' <'$WORK/local/src.bin' >/dev/null"
	sample "cp put" "$A" "${C[@]}" cp -q "$WORK/local/src.bin" "$ADDR:/c.bin"
	sample "cp get" "$A" "${C[@]}" cp -q "$ADDR:/c.bin" "$WORK/local/c.bin"
	check "$WORK/local/c.bin" "alknet cp get"
	rm -f "$WORK/node/files/c.bin"
	sample "scp put" "${SCP[@]}" "$WORK/local/src.bin" "$U:$WORK/sshfiles/s.bin"
	sample "scp get" "${SCP[@]}" "$U:$WORK/sshfiles/s.bin" "$WORK/local/s.bin"
	check "$WORK/local/s.bin" "scp get"
	rm -f "$WORK/sshfiles/s.bin"
	# The next round's put must store the blob anew.
	"$A" --data "$WORK/node" --log-level error fs tag --delete src.bin >/dev/null
	"$A" --data "$WORK/node" --log-level error fs gc --grace 0 >/dev/null
done
for n in "${NAMES[@]}"; do
	T[$n]=$(echo "${S[$n]}" | median)
	printf '  %-24s %8.2f s  %8s MB/s   (runs:%s)\n' "$n" "${T[$n]}" "$(mbps "${T[$n]}")" "${S[$n]}" >&2
done

echo "go benchmarks (in one process; fs against a bare core.Stream, interleaved):" >&2
GB=$(cd "$HERE/fs" && FS_BENCH_MIB=$((SIZE_MIB < 256 ? SIZE_MIB : 256)) go test -run '^$' -bench 'BenchmarkTransfer|BenchmarkHash' -benchtime 3x -count 1 . | grep '^Benchmark')
echo "$GB" | sed 's/^/  /' >&2
metric() { echo "$GB" | grep "$1" | awk -v f="$2" '{for (i=1;i<=NF;i++) if ($(i+1)==f) print $i}'; }

ratio() { awk -v a="${T[$1]}" -v b="${T[$2]}" 'BEGIN { printf "%.2fx", a / b }'; }
echo
echo "throughput ratios (higher is faster for the first named):"
printf '  fs get / bare pipe get:     %s   (bare + fsync: %s; Go benchmark fs/bare: get %s, put %s)\n' \
	"$(ratio "pipe get (bare)" "fs get")" "$(ratio "pipe get (bare) + fsync" "fs get")" "$(metric 'op=get' 'fs/bare')" "$(metric 'op=put' 'fs/bare')"
printf '  fs get / cp get:            %s\n' "$(ratio "cp get" "fs get")"
printf '  fs put / cp put:            %s\n' "$(ratio "cp put" "fs put")"
printf '  fs get / scp get:           %s\n' "$(ratio "scp get" "fs get")"
printf '  fs put / scp put:           %s\n' "$(ratio "scp put" "fs put")"
printf '  store hashing %s MB/s vs b3sum %s MB/s (b3sum: all cores, mmap)\n' \
	"$(metric 'BenchmarkHash' 'MB/s')" "$(mbps "${T[b3sum]}")"
