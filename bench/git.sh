#!/usr/bin/env bash
# Clone, incremental fetch and push of a real repository (miekg/dns, from
# the shared test bundle) through alknet (git-remote-alknet over QUIC, with
# the go-git backend and with the system upload-pack backend, and the
# go-git backend over TCP+TLS with alknet+tcp://), git daemon
# (git://) and OpenSSH sshd (git-upload-pack over ssh), on loopback, in one
# run. Prints seconds per case and the ratio to sshd (lower is better).
#
#   bench/git.sh                         # bundle at ../shared/testdata/git
#   BUNDLE=/path/to/x.bundle RUNS=3 bench/git.sh
#
# Needs git; sshd (openssh-server) is used when installed and the script
# runs as root, else that column is skipped.
set -euo pipefail

RUNS=${RUNS:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUNDLE=${BUNDLE:-$ROOT/../shared/testdata/git/miekg-dns.bundle}
[ -f "$BUNDLE" ] || { echo "bundle not found: $BUNDLE (set BUNDLE=)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/alknet-git-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
echo "building alknet" >&2
(cd "$ROOT" && go build -o "$WORK/bin/alknet" ./cmd/alknet)
# git runs with its own HOME (after the build, which needs the Go caches).
export HOME=$WORK/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.com GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.com
mkdir -p "$HOME"
"$WORK/bin/alknet" git install-helper "$WORK/bin" >/dev/null
export PATH=$WORK/bin:$PATH
export ALKNET_DATA=$WORK/client
FP=$(alknet --data "$WORK/client" id --fingerprint 2>/dev/null || true)
[ -n "$FP" ] || { alknet --data "$WORK/client" init >/dev/null 2>&1; FP=$(alknet --data "$WORK/client" id --fingerprint); }

startnode() { # name backend; the address goes to $WORK/<name>.out (not run in a subshell, so PIDS keeps the node)
	mkdir -p "$WORK/$1"
	cat >"$WORK/$1/config.toml" <<CONF
[git]
root = "$WORK/repos"
backend = "$2"
[[peers]]
id = "bench"
fingerprints = ["$FP"]
scopes = ["git"]
resources = { "git:repo/*" = ["read", "write", "create"] }
CONF
	alknet --data "$WORK/$1" --log-level error serve --listen 127.0.0.1:0 >"$WORK/$1.out" 2>"$WORK/$1.log" &
	PIDS+=($!)
	for _ in $(seq 100); do [ -s "$WORK/$1.out" ] && break; sleep 0.1; done
}

git clone -q --mirror "$BUNDLE" "$WORK/repos/dns.git"
COMMITS=$(git -C "$WORK/repos/dns.git" rev-list --all --count)
startnode node-gogit go-git
startnode node-system system
A_GOGIT=$(head -1 "$WORK/node-gogit.out")
A_SYSTEM=$(head -1 "$WORK/node-system.out")

DPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
git daemon --reuseaddr --base-path="$WORK/repos" --export-all --enable=receive-pack --listen=127.0.0.1 --port="$DPORT" 2>"$WORK/daemon.log" &
PIDS+=($!)
for _ in $(seq 100); do git ls-remote "git://127.0.0.1:$DPORT/dns.git" >/dev/null 2>&1 && break; sleep 0.1; done

declare -A URL=([alknet-gogit]="alknet://$A_GOGIT/dns.git" [alknet-tcp]="alknet+tcp://$A_GOGIT/dns.git" [alknet-system]="alknet://$A_SYSTEM/dns.git" [daemon]="git://127.0.0.1:$DPORT/dns.git")
ORDER=(alknet-gogit alknet-tcp alknet-system daemon)
if [ "$(id -u)" = 0 ] && [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null; then
	SPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	ssh-keygen -q -t ed25519 -N '' -f "$WORK/id" -C bench
	ssh-keygen -q -t ed25519 -N '' -f "$WORK/host" -C host
	cp "$WORK/id.pub" "$WORK/authorized_keys"
	mkdir -p /run/sshd
	cat >"$WORK/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $SPORT
HostKey $WORK/host
AuthorizedKeysFile $WORK/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PidFile $WORK/sshd.pid
CONF
	/usr/sbin/sshd -D -e -f "$WORK/sshd_config" 2>"$WORK/sshd.log" &
	PIDS+=($!)
	echo "[127.0.0.1]:$SPORT $(awk '{print $1, $2}' "$WORK/host.pub")" >"$WORK/known_hosts"
	export GIT_SSH_COMMAND="ssh -F /dev/null -i $WORK/id -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$WORK/known_hosts"
	for _ in $(seq 100); do git ls-remote "ssh://root@127.0.0.1:$SPORT$WORK/repos/dns.git" >/dev/null 2>&1 && break; sleep 0.1; done
	URL[sshd]="ssh://root@127.0.0.1:$SPORT$WORK/repos/dns.git"
	ORDER+=(sshd)
else
	echo "sshd skipped (needs root and openssh-server)" >&2
fi

secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN{printf "%.2f", e-s}'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo "machine: $(nproc) cores, $(go version | cut -d' ' -f3), $(git --version), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "repository: $(du -sh "$WORK/repos/dns.git" | cut -f1), $COMMITS commits"
declare -A CLONE FETCH PUSH
for t in "${ORDER[@]}"; do
	c="" f="" p=""
	for r in $(seq "$RUNS"); do
		d=$WORK/c-$t-$r
		c+=" $(secs git clone -q --mirror "${URL[$t]}" "$d.git")"
		git clone -q "$d.git" "$d"
		git -C "$d" checkout -q -b "bench-$t-$r"
		for i in $(seq 100); do echo "$i" >>"$d/bench.txt"; git -C "$d" add bench.txt; git -C "$d" commit -q -m "bench $i"; done
		p+=" $(secs git -C "$d" push -q "${URL[$t]}" "bench-$t-$r")"
		f+=" $(secs git -C "$d.git" fetch -q "${URL[$t]}" "+refs/heads/*:refs/heads/*")"
	done
	CLONE[$t]=$(echo "$c" | median); PUSH[$t]=$(echo "$p" | median); FETCH[$t]=$(echo "$f" | median)
done
base=${ORDER[-1]}
printf '%-16s %10s %10s %12s   (seconds; ratio to %s)\n' "" clone push-100 fetch-100 "$base"
for t in "${ORDER[@]}"; do
	awk -v t="$t" -v c="${CLONE[$t]}" -v p="${PUSH[$t]}" -v f="${FETCH[$t]}" -v bc="${CLONE[$base]}" -v bp="${PUSH[$base]}" -v bf="${FETCH[$base]}" \
		'BEGIN { printf "%-16s %5.2f %4.1fx %5.2f %4.1fx %6.2f %4.1fx\n", t, c, c/bc, p, p/bp, f, f/bf }'
done
