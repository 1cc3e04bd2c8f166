#!/bin/bash
# transport.sh - autosync's transports against nc, ssh and an rsync daemon,
# side by side in one run, on loopback (see README.md, "Transports").
#
# usage: bench/transport.sh              4 GiB stream + the 100k-file tree
#        SCALE=0.05 bench/transport.sh   quick: 5% of every size
#
# Environment:
#   SCALE      size of the data, relative to full (default 1: a 4 GiB
#              stream, 100,000 files)
#   N          rounds per scenario; the best wall time counts (default 3)
#   BENCH_DIR  work directory on a real disk (default /var/tmp/autosync-xbench)
#   SINK_DIR   where streams are received, on tmpfs so that the disk does
#              not limit what is measured (default /dev/shm/autosync-xbench)
#   AUTOSYNC   the binary (default build-rel/autosync, else build/autosync);
#              a sanitizer build is refused
#   ONLY       "stream" or "tree": run one part only
#   KEYS       the stream scenarios to run (default: all; see README.md)
#   RESULTS    where to write the results (default
#              bench/results-transport-DATE.md); RESULTS=none: stdout only
#   KEEP=1     keep the data afterwards (logs are always kept)
#   PYTHON     interpreter for the generators and the timer (default python3)
#
# Every server (autosync serve, sshd, the rsync daemon) is started here on
# 127.0.0.1 with throwaway keys and killed by its PID at the end.
set -eu -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
SCALE=${SCALE:-1}
N=${N:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/autosync-xbench}
SINK_DIR=${SINK_DIR:-/dev/shm/autosync-xbench}
if [ -z "${AUTOSYNC:-}" ]; then
	AUTOSYNC=$top/build/autosync
	[ -x "$top/build-rel/autosync" ] && AUTOSYNC=$top/build-rel/autosync
fi
ONLY=${ONLY:-}
RESULTS=${RESULTS:-$here/results-transport-$(date +%Y%m%d-%H%M).md}
KEEP=${KEEP:-0}
PY=${PYTHON:-python3}
B=$BENCH_DIR
S=$SINK_DIR
LOGS=$B/logs
RSYNC_TREE=(rsync -aHAX --numeric-ids)
RSYNC_CHECK=(rsync -naHAXc --numeric-ids --delete --exclude=/.autosync
	--itemize-changes)
GCM=aes128-gcm@openssh.com

die() { echo "transport.sh: $*" >&2; exit 1; }
say() { printf '%s\n' "$*" >&2; }

# --- servers, killed by PID on exit -----------------------------------------
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$S"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT PID: until something listens on 127.0.0.1:PORT
wait_port() {
	local i
	for i in $(seq 200); do
		ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# --- checks -------------------------------------------------------------------
for t in nc rsync ssh ss "$PY"; do
	command -v "$t" >/dev/null || die "'$t' is missing"
done
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd is missing (apt-get install openssh-server)"
[ "$(id -u)" = 0 ] || die "run as root (the throwaway sshd and the rsync daemon need it)"
nc -h 2>&1 | grep -q -- '-N' || die "nc must be OpenBSD netcat (for -N)"
case $N in ''|*[!0-9]*|0) die "N must be a positive integer" ;; esac
case $ONLY in ''|stream|tree) ;; *) die "ONLY must be stream or tree" ;; esac
[ -x "$AUTOSYNC" ] || die "no autosync binary at '$AUTOSYNC' (meson setup build-rel && ninja -C build-rel)"
if grep -aq __asan_init "$AUTOSYNC"; then
	die "'$AUTOSYNC' is a sanitizer build; use a plain one (meson setup build-rel)"
fi
mkdir -p "$B" "$LOGS"
[ "$(stat -f -c %T "$B")" != tmpfs ] || die "'$B' is on tmpfs; set BENCH_DIR to a real disk"
[ "$(stat -f -c %T "$(dirname "$S")")" = tmpfs ] ||
	say "warning: SINK_DIR '$S' is not on tmpfs: the disk is part of the stream figures"

stream_bytes=$("$PY" -c "print(int(4 * 2**30 * $SCALE) // 2**20 * 2**20)")
# disk: the stream's data file and the stream (2 x), the tree (3 x ~1 GiB);
# only the part that runs
disk_stream=$stream_bytes disk_tree=1
[ "$ONLY" = tree ] && disk_stream=0
[ "$ONLY" = stream ] && disk_tree=0
need_kib=$("$PY" -c "print(int((2 * $disk_stream + $disk_tree * 3.3 * 2**30 * $SCALE) / 1024 + 1048576))")
avail_kib=$(df -Pk "$B" | awk 'NR == 2 { print $4 }')
[ "$avail_kib" -ge "$need_kib" ] ||
	die "'$B' has $((avail_kib / 1024)) MiB free, needs $((need_kib / 1024))"
# tmpfs: one received copy of the stream at a time
sink_avail=$(df -Pk "$(dirname "$S")" | awk 'NR == 2 { print $4 }')
[ "$sink_avail" -ge $((stream_bytes / 1024 + 262144)) ] ||
	die "'$(dirname "$S")' has $((sink_avail / 1024)) MiB free, needs $((stream_bytes / 1048576 + 256))"

# The binary is copied first: a rebuild during the run must not change
# what is measured.  The remote side finds it as "autosync" in its PATH.
as_rev="$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$top" status --porcelain -- src 2>/dev/null | grep -q . && echo ', src modified'), built $(date -r "$AUTOSYNC" '+%Y-%m-%d %H:%M')"
rm -rf "$B/bin" "$S"
mkdir -p "$B/bin" "$S"
cp "$AUTOSYNC" "$B/bin/autosync"
A=$B/bin/autosync
export PATH="$B/bin:$PATH"
export AUTOSYNC_STATE_DIR=$B/state-cli

# timed LOG [xtime options] -- CMD...: sets T_WALL, T_CPU, T_RC
timed() {
	local log=$1 out
	shift
	printf '\n$ %s\n' "$*" >>"$log"
	out=$("$PY" "$here/xtime.py" --log "$log" "$@")
	read -r T_WALL T_CPU T_RC <<<"$out"
	printf '# wall %ss, cpu %ss, exit %s\n' "$T_WALL" "$T_CPU" "$T_RC" >>"$log"
}

declare -A BEST CPU STATUS

# record KEY: keep the best wall time of KEY and the CPU time of that run
record() {
	local key=$1
	if [ "$T_RC" != 0 ]; then
		STATUS[$key]="FAILED: exit $T_RC (see $LOGS/$key.log)"
		say "   $key FAILED (exit $T_RC)"
		return
	fi
	if [ -z "${BEST[$key]:-}" ] ||
	    awk "BEGIN { exit !($T_WALL < ${BEST[$key]}) }"; then
		BEST[$key]=$T_WALL
		CPU[$key]=$T_CPU
	fi
	say "   $(printf '%-10s %8.3f s  cpu %7.3f s' "$key" "$T_WALL" "$T_CPU")"
}

# --- servers --------------------------------------------------------------------
say "== keys and servers"
rm -rf "$B/keys" "$B/sshd" "$B/state-cli" "$B/state-srv" "$B/state-ssh"
mkdir -p "$B/sshd" "$B/state-cli" "$B/state-srv" "$B/state-ssh" /run/sshd
chmod 0700 "$B/sshd"
"$A" keygen --out "$B/keys" >"$LOGS/keygen.log" 2>&1 || die "keygen failed"
K=$B/keys
TCP_OPTS=(--key "$K/psk.key")
TLS_OPTS=(--cert "$K/client.crt" --key "$K/client.key" --ca "$K/ca.crt")

# serve NAME ROOT OPTIONS...: autosync serve on a free port -> SERVE_PORT,
# SERVE_PID
serve() {
	local name=$1 root=$2 i
	shift 2
	mkdir -p "$root"
	for i in 1 2 3; do
		SERVE_PORT=$(free_port)
		AUTOSYNC_STATE_DIR=$B/state-srv "$A" serve \
		    --listen "127.0.0.1:$SERVE_PORT" --root "$root" "$@" \
		    </dev/null >>"$LOGS/serve-$name.log" 2>&1 &
		SERVE_PID=$!
		PIDS+=("$SERVE_PID")
		wait_port "$SERVE_PORT" "$SERVE_PID" && return 0
	done
	die "autosync serve ($name) did not start, see $LOGS/serve-$name.log"
}

# sshd with throwaway host and user keys (as tests/e2e/lib-net.sh does);
# the session finds autosync first in its PATH.
ssh-keygen -q -t ed25519 -N '' -C xbench-host -f "$B/sshd/host" || die "ssh-keygen"
ssh-keygen -q -t ed25519 -N '' -C xbench-user -f "$B/sshd/user" || die "ssh-keygen"
printf 'environment="PATH=%s" %s\n' "$PATH" "$(cat "$B/sshd/user.pub")" \
    >"$B/sshd/authorized_keys"
for i in 1 2 3; do
	SSHD_PORT=$(free_port)
	cat >"$B/sshd/sshd_config" <<-EOF
	Port $SSHD_PORT
	ListenAddress 127.0.0.1
	HostKey $B/sshd/host
	PidFile $B/sshd/sshd.pid
	AuthorizedKeysFile $B/sshd/authorized_keys
	PermitRootLogin prohibit-password
	StrictModes no
	UsePAM no
	PubkeyAuthentication yes
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	PermitUserEnvironment yes
	PrintMotd no
	PrintLastLog no
	Banner none
	X11Forwarding no
	AllowTcpForwarding no
	SetEnv AUTOSYNC_STATE_DIR=$B/state-ssh
	EOF
	/usr/sbin/sshd -t -f "$B/sshd/sshd_config" || die "sshd -t failed"
	/usr/sbin/sshd -D -e -f "$B/sshd/sshd_config" 2>>"$LOGS/sshd.log" &
	SSHD_PID=$!
	PIDS+=("$SSHD_PID")
	wait_port "$SSHD_PORT" "$SSHD_PID" && break
	SSHD_PID=
done
[ -n "$SSHD_PID" ] || die "sshd did not start, see $LOGS/sshd.log"
# The ssh client autosync runs (AUTOSYNC_SSH) and the baselines use alike:
# the throwaway key, no known_hosts, the test sshd's port unless the
# caller names one; SSH_CIPHER picks the cipher (default: ssh's own).
SSHW=$B/ssh-wrap
cat >"$SSHW" <<-EOF
#!/bin/sh
port=-p$SSHD_PORT
for a in "\$@"; do
	case "\$a" in
	--) break ;;
	-p|-p*) port= ;;
	esac
done
exec ssh -F none -i '$B/sshd/user' -o IdentitiesOnly=yes -o IdentityAgent=none \\
	-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \\
	-o GlobalKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR \\
	-o KexAlgorithms=curve25519-sha256 \\
	\${SSH_CIPHER:+-c "\$SSH_CIPHER"} \${port:+"\$port"} "\$@"
EOF
chmod 0755 "$SSHW"
[ "$("$SSHW" root@127.0.0.1 'command -v autosync')" = "$A" ] ||
	die "ssh to the throwaway sshd does not find $A"
ssh_default_cipher=$("$SSHW" -v root@127.0.0.1 true 2>&1 |
	sed -n 's/.*kex: client->server cipher: \([^ ]*\).*/\1/p' | head -1)
export AUTOSYNC_SSH=$SSHW

# =============================================================================
# Part 1: one 4 GiB stream through each transport
# =============================================================================
stream_part() {
	local STREAM=$B/stream.as r k order
	say "== stream: a single file of $((stream_bytes / 1048576)) MiB, half random, half compressible"
	rm -rf "$B/sdata" "$B/state-cli"
	mkdir -p "$B/sdata" "$B/state-cli"
	# 1 MiB pieces, alternating: random bytes (from a 64 MiB pool, at a
	# moving offset) and text-like records that zstd shrinks about 4x.
	"$PY" - "$B/sdata/data" "$stream_bytes" <<-'EOF'
	import os, random, sys
	path, size = sys.argv[1], int(sys.argv[2])
	rnd = random.Random(42)
	pool = rnd.randbytes(64 << 20)
	words = [bytes("%s%d" % (w, i), "ascii") for i, w in
	         enumerate(["alpha", "beta", "gamma", "delta", "sync", "data"] * 40)]
	def text(n):
	    out = bytearray()
	    while len(out) < n:
	        out += b"%08x %s %s\n" % (rnd.getrandbits(32), rnd.choice(words), rnd.choice(words))
	    return bytes(out[:n])
	texts = [text(1 << 20) for _ in range(16)]
	M = 1 << 20
	with open(path, "wb") as f:
	    for i in range(size // M):
	        if i % 2 == 0:
	            o = (i * 7919 * 4096) % (len(pool) - M)
	            f.write(pool[o:o + M])
	        else:
	            f.write(texts[i % 16])
	EOF
	"$A" snapshot "$B/sdata@s1" >"$LOGS/stream-gen.log" 2>&1 || die "snapshot failed"
	"$A" send "$B/sdata@s1" >"$STREAM" 2>>"$LOGS/stream-gen.log" || die "send failed"
	STREAM_SIZE=$(stat -c %s "$STREAM")
	say "   stream: $STREAM_SIZE bytes"

	serve tcp "$S/root" --key "$K/psk.key"
	TCP_PORT=$SERVE_PORT TCP_PID=$SERVE_PID
	serve tls "$S/root" --tls --cert "$K/server.crt" --key "$K/server.key" --ca "$K/ca.crt"
	TLS_PORT=$SERVE_PORT TLS_PID=$SERVE_PID

	local keys=${KEYS:-"local nc-raw nc tcp tcp-zstd ssh-gcm-raw ssh-gcm tls ssh-raw ssh ssh-url"}
	for r in $(seq 1 "$N"); do
		say "== stream, round $r/$N"
		# a different order each round: no scenario always runs first
		order=$(for k in $keys; do echo "$k"; done | "$PY" -c "
import random, sys; l = sys.stdin.read().split(); random.Random($r).shuffle(l); print(' '.join(l))")
		for k in $order; do
			# zstd is for information and slow: one round
			[ "$k" = tcp-zstd ] && [ "$r" -gt 1 ] && continue
			stream_one "$k" "$r"
		done
	done
	kill "$TCP_PID" "$TLS_PID" 2>/dev/null || true
}

# stream_one KEY ROUND
stream_one() {
	local k=$1 r=$2 d=$S/root/$1 log=$LOGS/$1.log p
	# (the served root itself stays: the servers hold it open)
	rm -rf "$d" "$B/state-srv" "$B/state-ssh"
	mkdir -p "$B/state-srv" "$B/state-ssh"
	cat "$STREAM" >/dev/null	# warm: the stream is read from memory
	sync
	p=$(free_port)
	case $k in
	local)		# the receiver alone, from the file: what every path adds to
		timed "$log" --stdin "$STREAM" -- "$A" receive "$d" ;;
	nc-raw)		# nc to nc, the bytes thrown away: loopback's ceiling
		timed "$log" --bg "nc -l 127.0.0.1 $p >/dev/null" --port "$p" \
		    --stdin "$STREAM" -- nc -N 127.0.0.1 "$p" ;;
	nc)		# nc pipes the stream into the same receive
		timed "$log" --bg "nc -l 127.0.0.1 $p | '$A' receive '$d'" \
		    --port "$p" --stdin "$STREAM" -- nc -N 127.0.0.1 "$p" ;;
	tcp)
		timed "$log" --watch "$TCP_PID" --stdin "$STREAM" -- \
		    "$A" receive "${TCP_OPTS[@]}" "tcp://127.0.0.1:$TCP_PORT/$k" ;;
	tcp-zstd)
		timed "$log" --watch "$TCP_PID" --stdin "$STREAM" -- \
		    "$A" receive "${TCP_OPTS[@]}" --compress zstd:1 \
		    "tcp://127.0.0.1:$TCP_PORT/$k" ;;
	tls)
		timed "$log" --watch "$TLS_PID" --stdin "$STREAM" -- \
		    "$A" receive "${TLS_OPTS[@]}" "tls://127.0.0.1:$TLS_PORT/$k" ;;
	ssh-gcm-raw)
		timed "$log" --watch "$SSHD_PID" --stdin "$STREAM" -- \
		    env SSH_CIPHER=$GCM "$SSHW" root@127.0.0.1 'cat >/dev/null' ;;
	ssh-gcm)	# ssh (aes128-gcm) pipes the stream into the same receive
		timed "$log" --watch "$SSHD_PID" --stdin "$STREAM" -- \
		    env SSH_CIPHER=$GCM "$SSHW" root@127.0.0.1 autosync receive "$d" ;;
	ssh-raw)
		timed "$log" --watch "$SSHD_PID" --stdin "$STREAM" -- \
		    "$SSHW" root@127.0.0.1 'cat >/dev/null' ;;
	ssh)		# ssh (its default cipher) pipes it into the same receive
		timed "$log" --watch "$SSHD_PID" --stdin "$STREAM" -- \
		    "$SSHW" root@127.0.0.1 autosync receive "$d" ;;
	ssh-url)	# autosync's ssh:// transport, same ssh, same cipher
		timed "$log" --watch "$SSHD_PID" --stdin "$STREAM" -- \
		    "$A" receive "ssh://root@127.0.0.1:$SSHD_PORT$d" ;;
	esac
	record "$k"
	# what was received is the data that was sent (round 1; later rounds
	# rely on the stream's checksums, which receive verified)
	case $k in
	*-raw) ;;
	*)	if [ "$T_RC" = 0 ] && [ "$r" = 1 ] &&
		    ! cmp -s "$B/sdata/data" "$d/data"; then
			STATUS[$k]="WRONG RESULT: the received file differs"
			say "   $k: WRONG RESULT"
		fi ;;
	esac
	rm -rf "$d"
}

# =============================================================================
# Part 2: the tree over tcp:// against rsync to an rsync daemon
# =============================================================================
tree_part() {
	local r
	say "== tree (SCALE=$SCALE)"
	rm -rf "$B/src" "$B/root" "$B/dst-rs"
	SCALE=$SCALE "$PY" "$here/gen-tree.py" --only tree "$B/src" | tee "$LOGS/gen.log" >&2
	tree_entries=$(find "$B/src/tree" | wc -l)
	tree_bytes=$(du -sb "$B/src/tree" | cut -f1)
	mkdir -p "$B/root" "$B/dst-rs"

	serve tree "$B/root" --key "$K/psk.key"
	TREE_PORT=$SERVE_PORT TREE_PID=$SERVE_PID
	RSYNCD_PORT=$(free_port)
	cat >"$B/rsyncd.conf" <<-EOF
	address = 127.0.0.1
	port = $RSYNCD_PORT
	use chroot = no
	munge symlinks = no
	log file = $LOGS/rsyncd.log
	[bench]
	path = $B/dst-rs
	read only = false
	uid = root
	gid = root
	numeric ids = yes
	EOF
	rsync --daemon --no-detach --config="$B/rsyncd.conf" &
	RSYNCD_PID=$!
	PIDS+=("$RSYNCD_PID")
	wait_port "$RSYNCD_PORT" "$RSYNCD_PID" || die "the rsync daemon did not start"

	for r in $(seq 1 "$N"); do
		say "== tree: full copy, round $r/$N"
		# each tool removes its own copy right before its run: see
		# OWN_FRESH in run.sh (memory a VM handed back to its host)
		TREE_FRESH=1 tree_both full "$r"
	done
	for r in $(seq 1 "$N"); do
		say "== tree: incremental, 1% of files, round $r/$N"
		"$PY" "$here/mutate.py" tree --seed $((100 + r)) "$B/src/tree" \
		    | tee -a "$LOGS/mutate.log" >&2
		tree_both incr "$r"
	done
	d=$("${RSYNC_CHECK[@]}" "$B/src/tree/" "$B/dst-rs/tree/" 2>&1) || true
	[ -z "$d" ] || die "the rsync daemon's copy differs from the source: $d"
	kill "$TREE_PID" "$RSYNCD_PID" 2>/dev/null || true
}

warm_tree() {
	find "$@" -printf '%s\n' >/dev/null 2>&1 || true
	find "$B/src/tree" -type f -print0 | xargs -0r cat >/dev/null
}

tree_as() {
	local k=$1-tree-tcp log=$LOGS/$1-tree-tcp.log d
	if [ "${TREE_FRESH:-0}" = 1 ]; then
		rm -rf "$B/root/tree" "$B/state-cli" "$B/state-srv"
		mkdir -p "$B/state-cli" "$B/state-srv"
	fi
	sync
	warm_tree "$B/src/tree" "$B/root/tree" "$B/state-cli"
	timed "$log" --watch "$TREE_PID" -- "$A" sync "${TCP_OPTS[@]}" \
	    "$B/src/tree" "tcp://127.0.0.1:$TREE_PORT/tree"
	record "$k"
	if [ "$T_RC" = 0 ]; then
		d=$("${RSYNC_CHECK[@]}" "$B/src/tree/" "$B/root/tree/" 2>&1) || true
		if [ -n "$d" ]; then
			{ echo "# rsync -c check found differences:"; echo "$d" | head -50; } >>"$log"
			STATUS[$k]="WRONG RESULT: destination differs (see $log)"
			say "   $k: WRONG RESULT"
		fi
	fi
}

tree_rs() {
	local k=$1-tree-rsyncd log=$LOGS/$1-tree-rsyncd.log
	[ "${TREE_FRESH:-0}" = 1 ] && rm -rf "$B/dst-rs/tree"
	sync
	warm_tree "$B/src/tree" "$B/dst-rs/tree"
	timed "$log" --watch "$RSYNCD_PID" -- "${RSYNC_TREE[@]}" \
	    "$B/src/tree/" "rsync://127.0.0.1:$RSYNCD_PORT/bench/tree/"
	record "$k"
}

tree_both() {
	if [ $(($2 % 2)) = 1 ]; then
		tree_as "$1"; tree_rs "$1"
	else
		tree_rs "$1"; tree_as "$1"
	fi
}

[ "$ONLY" = tree ] || stream_part
[ "$ONLY" = stream ] || tree_part

# =============================================================================
# Report
# =============================================================================
gib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1073741824 }'; }

# srow KEY TITLE: wall, MB/s, CPU s/GiB of one stream scenario
srow() {
	local k=$1 w=${BEST[$1]:-}
	if [ -z "$w" ] || [ -n "${STATUS[$k]:-}" ]; then
		printf '| %s | %s | | | |\n' "$2" "${STATUS[$k]:-not run}"
		return
	fi
	awk -v w="$w" -v c="${CPU[$k]}" -v b="$STREAM_SIZE" -v t="$2" 'BEGIN {
		printf "| %s | %.3f | %.0f | %.2f | %.2f |\n", t, w, b / w / 1e6, c,
		    c / (b / 1073741824) }'
}

# ratio TITLE A B GOAL: throughput of A over that of B (= wall B / wall A),
# against GOAL (at least)
ratio() {
	local a=${BEST[$2]:-} b=${BEST[$3]:-} v
	if [ -z "$a" ] || [ -z "$b" ] || [ -n "${STATUS[$2]:-}${STATUS[$3]:-}" ]; then
		printf '| %s | - | %s | not measured |\n' "$1" "$4"
		return
	fi
	v=$(awk "BEGIN { printf \"%.2f\", $b / $a }")
	if [ "$4" = - ]; then
		printf '| %s | %s | - | - |\n' "$1" "$v"
	elif awk "BEGIN { exit !($v >= $4) }"; then
		printf '| %s | %s | ≥ %s | met |\n' "$1" "$v" "$4"
	else
		printf '| %s | %s | ≥ %s | MISSED |\n' "$1" "$v" "$4"
	fi
}

# tratio TITLE A B GOAL: wall of A over wall of B, against GOAL (at most)
tratio() {
	local a=${BEST[$2]:-} b=${BEST[$3]:-} v
	if [ -z "$a" ] || [ -z "$b" ] || [ -n "${STATUS[$2]:-}${STATUS[$3]:-}" ]; then
		printf '| %s | - | ≤ %s | not measured |\n' "$1" "$4"
		return
	fi
	v=$(awk "BEGIN { printf \"%.2f\", $a / $b }")
	if awk "BEGIN { exit !($v <= $4) }"; then
		printf '| %s | %s | ≤ %s | met |\n' "$1" "$v" "$4"
	else
		printf '| %s | %s | ≤ %s | MISSED |\n' "$1" "$v" "$4"
	fi
}

report() {
	local cpu mem
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
	mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	echo "## Transports: results"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- machine: $(nproc) CPUs (${cpu:-unknown}), $mem RAM, kernel $(uname -r)"
	echo "- autosync: $("$A" --version 2>/dev/null | head -1) ($as_rev)"
	echo "- $(ssh -V 2>&1); default cipher here: ${ssh_default_cipher:-?}; $(nc -h 2>&1 | head -1); $(rsync --version | head -1)"
	echo "- SCALE=$SCALE, best of N=$N, loopback (127.0.0.1); stream received into $S (tmpfs)"
	if [ "$ONLY" != tree ]; then
		echo
		echo "Stream: $STREAM_SIZE bytes ($(gib "$STREAM_SIZE") GiB; one file, 1 MiB pieces alternately random and text-like), sent from a file in the page cache.  CPU: every process of the transfer, both ends (user + system)."
		echo
		echo "| path | wall s | MB/s | CPU s | CPU s/GiB |"
		echo "|---|---:|---:|---:|---:|"
		srow local "autosync receive < file (no transport)"
		srow nc-raw "nc → nc > /dev/null (loopback ceiling)"
		srow nc "nc → nc \| autosync receive"
		srow tcp "autosync receive tcp://"
		srow tcp-zstd "autosync receive --compress zstd:1 tcp:// (info, 1 round)"
		srow ssh-gcm-raw "ssh -c aes128-gcm cat > /dev/null"
		srow ssh-gcm "ssh -c aes128-gcm autosync receive"
		srow tls "autosync receive tls://"
		srow ssh-raw "ssh cat > /dev/null"
		srow ssh "ssh autosync receive"
		srow ssh-url "autosync receive ssh://"
		echo
		echo "| goal | ratio | goal | |"
		echo "|---|---:|---|---|"
		ratio "tcp:// / nc (same receive)" tcp nc 0.95
		ratio "tcp:// / nc → /dev/null" tcp nc-raw -
		ratio "tls:// / ssh -c aes128-gcm (same receive)" tls ssh-gcm 2
		ratio "tls:// / ssh -c aes128-gcm cat > /dev/null" tls ssh-gcm-raw -
		ratio "ssh:// / ssh (same receive)" ssh-url ssh 0.95
		ratio "ssh:// / ssh cat > /dev/null" ssh-url ssh-raw -
		if [ -n "${BEST[local]:-}" ]; then
			echo
			echo 'CPU the transport adds to the receive alone (CPU s/GiB of the row minus that of `autosync receive < file`):'
			echo
			echo "| path | added CPU s/GiB |"
			echo "|---|---:|"
			for k in nc tcp tls ssh-gcm ssh ssh-url; do
				[ -n "${CPU[$k]:-}" ] || continue
				awk -v a="${CPU[$k]}" -v l="${CPU[local]}" -v b="$STREAM_SIZE" -v k="$k" 'BEGIN {
					printf "| %s | %.2f |\n", k, (a - l) / (b / 1073741824) }'
			done
		fi
	fi
	if [ "$ONLY" != stream ]; then
		echo
		echo "Tree: $tree_entries entries, $((tree_bytes / 1048576)) MiB (gen-tree.py tree); destination on $B (disk); autosync sync to autosync serve over tcp:// against rsync -aHAX --numeric-ids to an rsync daemon."
		echo
		echo "| scenario | autosync tcp:// s | rsync daemon s | autosync CPU s | rsync CPU s |"
		echo "|---|---:|---:|---:|---:|"
		for k in full incr; do
			printf '| %s | %s | %s | %s | %s |\n' \
			    "$([ $k = full ] && echo "full copy" || echo "incremental, 1% of files")" \
			    "${STATUS[$k-tree-tcp]:-${BEST[$k-tree-tcp]:-}}" \
			    "${STATUS[$k-tree-rsyncd]:-${BEST[$k-tree-rsyncd]:-}}" \
			    "${CPU[$k-tree-tcp]:-}" "${CPU[$k-tree-rsyncd]:-}"
		done
		echo
		echo "| goal | ratio | goal | |"
		echo "|---|---:|---|---|"
		tratio "full copy: tcp:// / rsync daemon" full-tree-tcp full-tree-rsyncd 0.5
		tratio "incremental: tcp:// / rsync daemon" incr-tree-tcp incr-tree-rsyncd 0.4
	fi
}

report >"$LOGS/report-transport.md"
echo
cat "$LOGS/report-transport.md"
if [ "$RESULTS" != none ]; then
	cp "$LOGS/report-transport.md" "$RESULTS"
	say "results written to $RESULTS"
fi
if [ "$KEEP" != 1 ]; then
	rm -rf "$B/src" "$B/root" "$B/dst-rs" "$B/sdata" "$B/stream.as" \
	    "$B/state-cli" "$B/state-srv" "$B/state-ssh" "$B/bin"
	say "data removed; logs kept in $LOGS"
fi
