#!/usr/bin/env bash
# Benchmark: SFTP get and put on loopback, in one run, three ways:
#   1. OpenSSH sftp -D "alknet pipe --alpn alknet/sftp ADDR"  (sftp over alknet)
#   2. alknet cp                                               (pkg/sftp client over alknet)
#   3. OpenSSH sftp to its own sshd over TCP                   (the reference)
# and prints throughput and ratios against OpenSSH.
#
# Usage: [TMPDIR=/dev/shm] bench/sftp.sh [SIZE_MIB]   (default 1024; a tmpfs
# TMPDIR keeps the disk out of the comparison)
# Needs: go, openssh-client; installs openssh-server with apt-get when sshd
# is missing (run as root: sshd is started on a spare port with a temporary
# config and host key, and stopped at the end).
set -euo pipefail

SIZE_MIB=${1:-1024}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/alknet-sftp-bench.XXXXXX")
SSHD_PID=""
SERVE_PID=""
cleanup() {
	[ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null || true
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null && wait "$SSHD_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

command -v sftp >/dev/null || { echo "needs OpenSSH's sftp: apt-get install openssh-client" >&2; exit 1; }
if [ ! -x /usr/sbin/sshd ]; then
	echo "installing openssh-server" >&2
	apt-get install -y openssh-server >/dev/null
fi
SFTP_SERVER=""
for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/libexec/sftp-server; do
	[ -x "$p" ] && SFTP_SERVER=$p && break
done
[ -n "$SFTP_SERVER" ] || { echo "no sftp-server binary found" >&2; exit 1; }

echo "building alknet" >&2
(cd "$HERE/cmd/alknet" && go build -o "$WORK/alknet" .)
A="$WORK/alknet"

now() { date +%s.%N; }
mbps() { awk -v s="$SIZE_MIB" -v t="$1" 'BEGIN { printf "%.1f", s / t }'; }

# --- data -----------------------------------------------------------------
mkdir -p "$WORK/local"
echo "writing a ${SIZE_MIB} MiB test file" >&2
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/local/src.bin"
SUM=$(sha256sum "$WORK/local/src.bin" | cut -d' ' -f1)
check() { # file label
	local got
	got=$(sha256sum "$1" | cut -d' ' -f1)
	[ "$got" = "$SUM" ] || { echo "checksum mismatch after $2" >&2; exit 1; }
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
scopes = ["sftp", "sftp:write"]
CFG
"$A" --data "$WORK/node" --log-level warn serve --listen 127.0.0.1:0 >"$WORK/addr" 2>"$WORK/serve.log" &
SERVE_PID=$!
for _ in $(seq 100); do [ -s "$WORK/addr" ] && break; sleep 0.1; done
ADDR=$(head -1 "$WORK/addr")
[ -n "$ADDR" ] || { cat "$WORK/serve.log" >&2; exit 1; }
PIPE="$A --data $WORK/client --log-level error pipe --alpn alknet/sftp $ADDR"

# --- sshd -------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/ssh" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/host" >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/user" >/dev/null
cp "$WORK/ssh/user.pub" "$WORK/ssh/authorized_keys"
chmod 600 "$WORK/ssh/authorized_keys"
mkdir -p "$WORK/sshfiles"
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
SSH_OPTS=(-q -i "$WORK/ssh/user" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -P "$PORT")
USER_NAME=$(id -un)

# --- runs -------------------------------------------------------------------
declare -A T
run() { # name command...
	local s e
	s=$(now)
	"${@:2}" >/dev/null
	e=$(now)
	T[$1]=$(awk -v s="$s" -v e="$e" 'BEGIN { print e - s }')
	printf '  %-22s %8.2f s  %8s MiB/s\n' "$1" "${T[$1]}" "$(mbps "${T[$1]}")" >&2
}

echo "runs (${SIZE_MIB} MiB, loopback, $(nproc) cores):" >&2
run "openssh put" sftp "${SSH_OPTS[@]}" -b - "$USER_NAME@127.0.0.1" <<<"put $WORK/local/src.bin $WORK/sshfiles/f.bin"
run "openssh get" sftp "${SSH_OPTS[@]}" -b - "$USER_NAME@127.0.0.1" <<<"get $WORK/sshfiles/f.bin $WORK/local/ssh.bin"
check "$WORK/local/ssh.bin" "openssh get"
run "sftp -D alknet put" sftp -D "$PIPE" -b - <<<"put $WORK/local/src.bin /f.bin"
run "sftp -D alknet get" sftp -D "$PIPE" -b - <<<"get /f.bin $WORK/local/d.bin"
check "$WORK/local/d.bin" "sftp -D get"
rm -f "$WORK/node/files/f.bin"
run "alknet cp put" "$A" --data "$WORK/client" cp -q "$WORK/local/src.bin" "$ADDR:/c.bin"
run "alknet cp get" "$A" --data "$WORK/client" cp -q "$ADDR:/c.bin" "$WORK/local/c.bin"
check "$WORK/local/c.bin" "alknet cp get"
rm -f "$WORK/node/files/c.bin"
run "alknet cp put noverify" "$A" --data "$WORK/client" cp -q --no-verify "$WORK/local/src.bin" "$ADDR:/n.bin"
run "alknet cp get noverify" "$A" --data "$WORK/client" cp -q --no-verify "$ADDR:/n.bin" "$WORK/local/n.bin"
check "$WORK/local/n.bin" "alknet cp get --no-verify"

ratio() { awk -v a="${T[$1]}" -v b="${T[$2]}" 'BEGIN { printf "%.2fx", a / b }'; }
echo
echo "throughput relative to OpenSSH sftp over TCP (higher is faster):"
for dir in put get; do
	printf '  %s: sftp -D over alknet %s, alknet cp %s (with checksum), alknet cp --no-verify %s\n' "$dir" \
		"$(ratio "openssh $dir" "sftp -D alknet $dir")" \
		"$(ratio "openssh $dir" "alknet cp $dir")" \
		"$(ratio "openssh $dir" "alknet cp $dir noverify")"
done
