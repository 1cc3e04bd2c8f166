#!/bin/bash
# bench/vol.sh - volumes: autosync against rsync and cp on image files,
# side by side in one run (issue 5; figures in bench/README.md).
#
# A 4 GiB sparse image holding 1 GiB of data (256 extents of 4 MiB at
# fixed, scattered offsets); each round overwrites 1% of its 64 KiB blocks
# (655 blocks at random offsets, some of them in holes) with random bytes.
#
#   incremental, local   autosync sync vol:SRC vol:DST_A
#                        rsync --inplace --no-whole-file SRC DST_R
#   incremental, ssh     the same to ssh://root@127.0.0.1:PORT/vol:DST_A
#                        and rsync -e ssh ... root@127.0.0.1:DST_R, through
#                        a throwaway sshd on 127.0.0.1 (both use the same
#                        ssh command and cipher)
#   full copy            autosync sync vol:SRC vol:NEW (fresh state)
#                        cp --sparse=always SRC NEW; also cp followed by
#                        "sync NEW" (an fsync), since autosync's receive
#                        fsyncs before it records the snapshot
#   source read          autosync snapshot vol:SRC@s (read + hash) against
#                        cat SRC >/dev/null, cold (the image's pages dropped
#                        with fadvise DONTNEED first) and warm
#
# Every autosync destination is compared with the source (cmp) after the
# timed runs.  Environment: N (rounds, best counts; default 3), BENCH_DIR
# (default /var/tmp/autosync-bench/vol; a real disk), AUTOSYNC (default
# build-rel/autosync, then build/autosync), SIZE_G (image size in GiB,
# default 4; the data is a quarter of it), SSH=0 skips the ssh round.
set -eu -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
N=${N:-3}
B=${BENCH_DIR:-/var/tmp/autosync-bench/vol}
SIZE_G=${SIZE_G:-4}
SSH=${SSH:-1}
if test -z "${AUTOSYNC:-}"; then
	AUTOSYNC=$top/build-rel/autosync
	test -x "$AUTOSYNC" || AUTOSYNC=$top/build/autosync
fi
test -x "$AUTOSYNC" || { echo "vol.sh: no autosync at $AUTOSYNC" >&2; exit 1; }
AUTOSYNC=$(cd "$(dirname "$AUTOSYNC")" && pwd)/$(basename "$AUTOSYNC")

say() { printf '%s\n' "$*" >&2; }
sshd_pid=
cleanup() {
	test -z "$sshd_pid" || kill "$sshd_pid" 2>/dev/null || :
	rm -rf "$B"
}
trap cleanup EXIT
rm -rf "$B"
mkdir -p "$B/state" "$B/rstate"
export AUTOSYNC_STATE_DIR=$B/state
SRC=$B/src.img
BS=65536
SIZE=$((SIZE_G << 30))
NBLK=$((SIZE / BS))

# now_s: wall clock in seconds with ns
now_s() { date +%s.%N; }
# timed CMD...: run it, T is the wall time in seconds
timed() {
	local t0 t1
	sync
	t0=$(now_s)
	"$@" >>"$B/log" 2>&1 || { say "FAILED: $*"; tail -5 "$B/log" >&2; exit 1; }
	t1=$(now_s)
	T=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')
}
best() {	# best A B -> the smaller
	awk -v a="$1" -v b="$2" 'BEGIN { print (a < b ? a : b) }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
drop() { dd if="$1" iflag=nocache count=0 status=none; }

# The image: SIZE sparse, data in 256 extents of SIZE/16 MiB... spread.
say "# making a ${SIZE_G} GiB image with $((SIZE_G * 256)) MiB of data"
truncate -s "$SIZE" "$SRC"
python3 - "$SRC" "$SIZE" <<'PY'
import os, random, sys
path, size = sys.argv[1], int(sys.argv[2])
ext = 4 << 20
n = size // 4 // ext                # a quarter of the image is data
slots = size // ext
rng = random.Random(5)
with open(path, "r+b") as f:
    for s in sorted(rng.sample(range(slots), n)):
        f.seek(s * ext)
        f.write(os.urandom(ext))
PY
say "# image: $(du -h "$SRC" | cut -f1) allocated"

# mutate: 1% of the blocks get random bytes
mutate() {
	python3 - "$SRC" "$NBLK" "$BS" <<'PY'
import os, random, sys
path, nblk, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    for b in random.sample(range(nblk), nblk // 100):
        f.seek(b * bs)
        f.write(os.urandom(bs))
PY
}

declare -A R

# --- full copy
full_as=999999 full_cp=999999 full_cps=999999
for i in $(seq "$N"); do
	rm -rf "$B/full-a.img" "$B/full-a.img.autosync" "$B/full-c.img" \
	    "$B/state"
	mkdir -p "$B/state"
	cat "$SRC" >/dev/null
	timed "$AUTOSYNC" sync vol:"$SRC" vol:"$B/full-a.img"
	full_as=$(best "$full_as" "$T")
	# (autosync drops the source's pages once read: warm them again)
	cat "$SRC" >/dev/null
	timed cp --sparse=always "$SRC" "$B/full-c.img"
	full_cp=$(best "$full_cp" "$T")
	rm -f "$B/full-c.img"
	cat "$SRC" >/dev/null
	timed sh -c 'cp --sparse=always "$1" "$2" && sync "$2"' sh "$SRC" \
	    "$B/full-c.img"
	full_cps=$(best "$full_cps" "$T")
	rm -f "$B/full-c.img"
done
cmp "$SRC" "$B/full-a.img" || { say "full copy: WRONG RESULT"; exit 1; }
say "# full: autosync $full_as s, cp $full_cp s, cp+fsync $full_cps s"
alloc_a=$(du -k "$B/full-a.img" | cut -f1)
rm -f "$B/full-a.img" "$B/full-a.img.autosync"

# --- source read
rd_as=999999 rd_cat=999999 rdw_as=999999 rdw_cat=999999
for i in $(seq "$N"); do
	drop "$SRC"
	timed "$AUTOSYNC" snapshot vol:"$SRC@r$i-cold"
	rd_as=$(best "$rd_as" "$T")
	drop "$SRC"
	timed sh -c 'cat "$1" >/dev/null' sh "$SRC"
	rd_cat=$(best "$rd_cat" "$T")
	cat "$SRC" >/dev/null
	timed "$AUTOSYNC" snapshot vol:"$SRC@r$i-warm"
	rdw_as=$(best "$rdw_as" "$T")
	timed sh -c 'cat "$1" >/dev/null' sh "$SRC"
	rdw_cat=$(best "$rdw_cat" "$T")
done
say "# read: cold autosync $rd_as s, cat $rd_cat s; warm $rdw_as s, $rdw_cat s"

# --- incremental, local
cp --sparse=always "$SRC" "$B/dst-r.img"
"$AUTOSYNC" sync vol:"$SRC" vol:"$B/dst-a.img" >>"$B/log" 2>&1
inc_as=999999 inc_rs=999999
for i in $(seq "$N"); do
	mutate
	cat "$SRC" "$B/dst-r.img" >/dev/null
	if test $((i % 2)) = 1; then
		timed "$AUTOSYNC" sync vol:"$SRC" vol:"$B/dst-a.img"; a=$T
		timed rsync --inplace --no-whole-file "$SRC" "$B/dst-r.img"; r=$T
	else
		timed rsync --inplace --no-whole-file "$SRC" "$B/dst-r.img"; r=$T
		timed "$AUTOSYNC" sync vol:"$SRC" vol:"$B/dst-a.img"; a=$T
	fi
	inc_as=$(best "$inc_as" "$a")
	inc_rs=$(best "$inc_rs" "$r")
done
cmp "$SRC" "$B/dst-a.img" || { say "incremental: WRONG RESULT (autosync)"; exit 1; }
cmp "$SRC" "$B/dst-r.img" || { say "incremental: WRONG RESULT (rsync)"; exit 1; }
say "# incremental local: autosync $inc_as s, rsync $inc_rs s"

# --- incremental over ssh
ssh_as= ssh_rs=
if test "$SSH" = 1 && test "$(id -u)" = 0 && test -x /usr/sbin/sshd; then
	S=$B/sshd
	mkdir -p "$S" /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$S/host" && \
	ssh-keygen -q -t ed25519 -N '' -f "$S/user"
	cp "$S/user.pub" "$S/authorized_keys"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	cat >"$S/config" <<-EOF
	Port $port
	ListenAddress 127.0.0.1
	HostKey $S/host
	PidFile $S/sshd.pid
	AuthorizedKeysFile $S/authorized_keys
	PermitRootLogin prohibit-password
	StrictModes no
	UsePAM no
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	PrintMotd no
	SetEnv AUTOSYNC_STATE_DIR=$B/rstate
	EOF
	/usr/sbin/sshd -D -e -f "$S/config" 2>"$S/log" &
	sshd_pid=$!
	cat >"$S/ssh" <<-EOF
	#!/bin/sh
	exec ssh -F none -p $port -i $S/user -o IdentitiesOnly=yes \
	    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
	    -o BatchMode=yes -o LogLevel=ERROR "\$@"
	EOF
	chmod +x "$S/ssh"
	for _ in $(seq 50); do "$S/ssh" root@127.0.0.1 true 2>/dev/null && break; sleep 0.1; done
	export AUTOSYNC_SSH=$S/ssh AUTOSYNC_REMOTE=$AUTOSYNC
	url=ssh://root@127.0.0.1/vol:$B/dst-sa.img
	cp --sparse=always "$SRC" "$B/dst-sr.img"
	"$AUTOSYNC" sync vol:"$SRC" "$url" >>"$B/log" 2>&1
	ssh_as=999999 ssh_rs=999999
	for i in $(seq "$N"); do
		mutate
		cat "$SRC" "$B/dst-sr.img" >/dev/null
		timed "$AUTOSYNC" sync vol:"$SRC" "$url"; a=$T
		timed rsync --inplace --no-whole-file -e "$S/ssh" "$SRC" \
		    "root@127.0.0.1:$B/dst-sr.img"; r=$T
		ssh_as=$(best "$ssh_as" "$a")
		ssh_rs=$(best "$ssh_rs" "$r")
	done
	cmp "$SRC" "$B/dst-sa.img" || { say "ssh: WRONG RESULT (autosync)"; exit 1; }
	cmp "$SRC" "$B/dst-sr.img" || { say "ssh: WRONG RESULT (rsync)"; exit 1; }
	say "# incremental ssh: autosync $ssh_as s, rsync $ssh_rs s"
fi

verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b ? "met" : "MISSED") }'; }
echo
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench dir: $B on $(df -T "$B" | awk 'NR==2 {print $2 " (" $1 ")"}')"
echo "autosync: $AUTOSYNC ($("$AUTOSYNC" --version 2>&1 | head -1)); $(rsync --version | head -1); cp $(cp --version | head -1 | awk '{print $NF}')"
echo "image: $SIZE_G GiB, $((SIZE_G * 256)) MiB of data, 1% of 64 KiB blocks changed per round; best of N=$N"
echo
echo "| scenario | autosync s | peer | peer s | ratio | goal | |"
echo "|---|---:|---|---:|---:|---|---|"
x=$(ratio "$inc_as" "$inc_rs")
echo "| incremental, local | $inc_as | rsync --inplace --no-whole-file | $inc_rs | $x | ≤ 0.25 | $(verdict "$x" 0.25) |"
if test -n "$ssh_as"; then
	x=$(ratio "$ssh_as" "$ssh_rs")
	echo "| incremental, ssh 127.0.0.1 | $ssh_as | rsync ... -e ssh | $ssh_rs | $x | ≤ 0.25 | $(verdict "$x" 0.25) |"
fi
x=$(ratio "$full_as" "$full_cp")
echo "| full copy | $full_as | cp --sparse=always | $full_cp | $x | ≤ 1.1 | $(verdict "$x" 1.1) |"
x=$(ratio "$full_as" "$full_cps")
echo "| full copy | $full_as | cp --sparse=always + sync FILE | $full_cps | $x | ≤ 1.1 | $(verdict "$x" 1.1) |"
echo "| source read, cold | $rd_as | cat > /dev/null | $rd_cat | throughput $(ratio "$rd_cat" "$rd_as") of cat | report | |"
echo "| source read, warm | $rdw_as | cat > /dev/null | $rdw_cat | throughput $(ratio "$rdw_cat" "$rdw_as") of cat | report | |"
echo
echo "destination of the full copy: $alloc_a KiB allocated (sparse)"
