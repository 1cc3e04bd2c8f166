#!/bin/bash
# bench/btrfs.sh - `autosync sync btrfs:SRC btrfs:DST` against the raw
# pipe it wraps, `btrfs subvolume snapshot -r` + `btrfs send [-p] |
# btrfs receive`, on the same data in the same run (issue 6: wrapped
# transfers cost <= 5% over the raw pipe).
#
#   bench/btrfs.sh                      # 1 GiB full, 10% incremental
#   SIZE_MB=256 N=2 bench/btrfs.sh      # quicker
#
# Root only (loop mounts).  Two btrfs file systems on sparse image files
# in BENCH_DIR (default /var/tmp/autosync-btrfs-bench, a real disk), made
# and mounted here, unmounted and removed at the end (mount -o loop: the
# loop devices go with the unmount).
#
# Scenarios (each round: raw and autosync alternate who goes first; the
# best of N rounds counts; `sync` before every timed command):
#   full         raw: snapshot -r S, then send S | receive RAW (timed
#                apart: the pipe alone, and both)
#                autosync: sync btrfs:SRC btrfs:AS (destinations and
#                snapshots removed before each round)
#   incremental  CHANGE_PCT% of the files rewritten, then
#                raw: snapshot -r S2, then send -p S1 S2 | receive RAW
#                autosync: sync (incremental from its common snapshot)
# The source has no nested subvolumes (one stream each), so the figures
# compare one wrapped stream with one raw stream.  Two comparisons: the
# streams alone (`sync -v` "... in X s": send | splice pump | receive
# and the check of the received subvolume) against the raw pipe alone,
# and autosync's whole run (snapshot, streams, view, pruning) against
# the raw snapshot + pipe.
# Correctness: after each autosync run, `diff -r` of the source snapshot
# and the view.
set -u
. "$(dirname "$0")/lib-sshd.sh" || exit 1

AUTOSYNC=${AUTOSYNC:-$(cd "$(dirname "$0")/.." && pwd)/build/autosync}
BENCH_DIR=${BENCH_DIR:-/var/tmp/autosync-btrfs-bench}
SIZE_MB=${SIZE_MB:-1024}
FILE_MB=${FILE_MB:-8}
CHANGE_PCT=${CHANGE_PCT:-10}
N=${N:-3}
PYTHON=${PYTHON:-python3}

die() { echo "btrfs.sh: $*" >&2; exit 1; }
test "$(id -u)" = 0 || die "run as root (loop mounts)"
command -v btrfs >/dev/null && command -v mkfs.btrfs >/dev/null ||
	die "btrfs-progs is not installed"
test -x "$AUTOSYNC" || die "no autosync at '$AUTOSYNC'"

mkdir -p "$BENCH_DIR" || exit 1
W=$(cd "$BENCH_DIR" && pwd)
A=$W/a
B=$W/b
export AUTOSYNC_STATE_DIR=$W/state
mkdir -p "$AUTOSYNC_STATE_DIR" "$A" "$B"

spid= sshd_pid=
cleanup() {
	cd / || :
	# a failed round leaves its servers running
	for p in "$spid" "$sshd_pid"; do
		test -n "$p" && kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	for m in "$A" "$B"; do
		mountpoint -q "$m" && umount "$m"
	done
	rm -rf "$W"
}
trap cleanup EXIT

# room for both destinations and their previous round (deleted
# subvolumes are freed by btrfs' cleaner: see del_all); images are sparse
img_mb=$((SIZE_MB * 8 + 2048))
for n in a b; do
	truncate -s "${img_mb}M" "$W/$n.img" &&
	mkfs.btrfs -q -f "$W/$n.img" >/dev/null 2>&1 &&
	mount -o loop "$W/$n.img" "$W/$n" || die "cannot make btrfs '$n'"
	# Write four times the data into the image once, and remove it: on
	# this VM the first write to a page of a /dev/shm file costs seconds
	# a GiB (memory handed back to the host, README.md "2026-11-29
	# 13:35"), and it fell on whichever side wrote first in round 1
	# (autosync's full copy: 7.99 s against 4.3-4.6 s after).
	dd if=/dev/zero of="$W/$n/fill" bs=4M count="$SIZE_MB" status=none ||
	    die "cannot fill btrfs '$n'"
	rm -f "$W/$n/fill"
done
sync

# seconds CMD...: wall time of CMD (after a sync), or "FAIL"; its
# standard output goes to $BENCH_OUT (default: nowhere)
seconds() {
	test -n "${NOSYNC:-}" || sync
	"$PYTHON" -c '
import os, subprocess, sys, time
out = open(os.environ.get("BENCH_OUT", "/dev/null"), "w")
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdout=out)
if r.returncode != 0:
    print("FAIL"); sys.exit(0)
print("%.3f" % (time.perf_counter() - t))' "$@"
}

raw_pipe() {	# [PARENT] SNAP DESTDIR
	if test $# = 3; then
		btrfs send -q -p "$1" "$2" | btrfs receive -q "$3"
	else
		btrfs send -q "$1" | btrfs receive -q "$2"
	fi
}
export -f raw_pipe

# raw_run PARENT|- SNAP DESTDIR: snapshot (timed alone), then the pipe,
# then committing what it wrote (`btrfs filesystem sync` right after:
# autosync's view snapshot commits the destination's transaction), then
# for an incremental deleting the parent on both sides (autosync prunes
# to the newest: deleting a subvolume evicts its files from the page
# cache, 0.1-0.5 s after a receive of hundreds of MiB); prints
# "SNAPSHOT_S PIPE_S COMMIT_S DELETE_S"
raw_run() {
	local ts tp tc td=0.000
	ts=$(seconds btrfs subvolume snapshot -r "$A/src" "$2")
	if test "$1" = -; then
		tp=$(seconds bash -c 'raw_pipe "$@"' _ "$2" "$3")
	else
		tp=$(seconds bash -c 'raw_pipe "$@"' _ "$1" "$2" "$3")
	fi
	tc=$(NOSYNC=1 seconds btrfs filesystem sync "$B")
	if test "$1" != -; then
		td=$(NOSYNC=1 seconds btrfs subvolume delete "$1" \
		    "$3/$(basename "$1")")
	fi
	echo "$ts $tp $tc $td"
}
sum() { "$PYTHON" -c "import sys
try: print('%.3f' % (float(sys.argv[1]) + float(sys.argv[2])))
except ValueError: print('FAIL')" "$1" "$2"; }

echo "# generating $SIZE_MB MiB in $FILE_MB MiB files"
btrfs subvolume create "$A/src" >/dev/null || exit 1
nfiles=$((SIZE_MB / FILE_MB))
for i in $(seq "$nfiles"); do
	head -c $((FILE_MB * 1048576)) /dev/urandom >"$A/src/f$i"
done
mkdir -p "$A/raw-snaps" "$B/raw"

best() { sort -n | grep -v FAIL | head -n 1; }
# uncache DIR...: drop the page cache of the files below DIR (clean
# pages; POSIX_FADV_DONTNEED), which reading them for the check filled:
# deleting a subvolume evicts its cached pages (0.3-0.5 s for 512 MiB
# here), which would bill autosync's next pruning for the check's reads
uncache() {
	"$PYTHON" -c '
import os, sys
for top in sys.argv[1:]:
    for d, _, fs in os.walk(top):
        for f in fs:
            fd = os.open(os.path.join(d, f), os.O_RDONLY | os.O_NOFOLLOW)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)' "$@"
}
check() {	# the view equals the source's newest autosync snapshot
	local s
	s=$(ls -1 "$A/.autosync-snapshots/src" | grep '^autosync_' | tail -n 1)
	diff -r "$A/.autosync-snapshots/src/$s" "$B/as" >/dev/null ||
		{ echo "WRONG RESULT: $B/as differs from $s"; return 1; }
	uncache "$A/.autosync-snapshots/src/$s" "$B/as"
}

del_all() {	# delete every subvolume below dir (no nested ones here)
	local d=$1 p
	for p in "$d"/*; do
		test -d "$p" && btrfs subvolume delete "$p" >/dev/null
	done
	return 0
}

# the "streams in X s" of sync -v: autosync's send | receive alone
xfer() { sed -n 's/.* of btrfs send streams in \([0-9.]*\) s$/\1/p' "$W/as.out"; }
as_sync() { BENCH_OUT=$W/as.out seconds "$AUTOSYNC" sync -v "btrfs:$A/src" "btrfs:$B/as"; }

full_as=() full_raw=() incr_as=() incr_raw=() full_x=() incr_x=()
full_p=() incr_p=() full_c=() incr_c=() incr_d=()
for r in $(seq "$N"); do
	# full: both destinations empty, no snapshots
	del_all "$B/raw"; del_all "$A/raw-snaps"
	test -d "$B/as" && btrfs subvolume delete "$B/as" >/dev/null
	del_all "$B/.autosync-snapshots/as" 2>/dev/null
	del_all "$A/.autosync-snapshots/src" 2>/dev/null
	rm -rf "$B/.autosync-snapshots" "$A/.autosync-snapshots"
	# wait for btrfs' cleaner to free what was deleted
	btrfs subvolume sync "$A" >/dev/null; btrfs subvolume sync "$B" >/dev/null
	if test $((r % 2)) = 1; then
		set -- $(raw_run - "$A/raw-snaps/s$r.0" "$B/raw")
		t_as=$(as_sync)
	else
		t_as=$(as_sync)
		set -- $(raw_run - "$A/raw-snaps/s$r.0" "$B/raw")
	fi
	t_pipe=$2 t_raw=$(sum "$1" "$2") t_rawc=$(sum "$(sum "$1" "$2")" "$3")
	check || t_as=FAIL
	t_x=$(xfer)
	echo "round $r full: raw $t_raw s (pipe $t_pipe s, + commit $t_rawc s), autosync $t_as s (streams $t_x s)"
	full_raw+=("$t_raw") full_as+=("$t_as") full_x+=("$t_x") full_p+=("$t_pipe")
	full_c+=("$t_rawc")

	# incremental: CHANGE_PCT% of the files rewritten
	step=$((100 / CHANGE_PCT))
	for i in $(seq 1 "$step" "$nfiles"); do
		head -c $((FILE_MB * 1048576)) /dev/urandom >"$A/src/f$i"
	done
	if test $((r % 2)) = 0; then
		set -- $(raw_run "$A/raw-snaps/s$r.0" "$A/raw-snaps/s$r.1" "$B/raw")
		t_as=$(as_sync)
	else
		t_as=$(as_sync)
		set -- $(raw_run "$A/raw-snaps/s$r.0" "$A/raw-snaps/s$r.1" "$B/raw")
	fi
	t_pipe=$2 t_raw=$(sum "$1" "$2") t_rawc=$(sum "$(sum "$1" "$2")" "$3")
	t_rawd=$(sum "$t_rawc" "$4")
	check || t_as=FAIL
	t_x=$(xfer)
	echo "round $r incremental: raw $t_raw s (pipe $t_pipe s, + commit $t_rawc s, + delete $t_rawd s), autosync $t_as s (streams $t_x s)"
	incr_raw+=("$t_raw") incr_as+=("$t_as") incr_x+=("$t_x") incr_p+=("$t_pipe")
	incr_c+=("$t_rawc") incr_d+=("$t_rawd")
done

# Load-independent counts of one more incremental run (1 file
# rewritten): the btrfs commands autosync ran and the subvolume ioctls
# that stand for commands (its -vv log), and with strace the syscalls
# of the run and its children; for the raw side the same for `snapshot
# -r` + `send -p | receive`.
head -c $((FILE_MB * 1048576)) /dev/urandom >"$A/src/f1"
"$AUTOSYNC" sync -vv "btrfs:$A/src" "btrfs:$B/as" 2>"$W/vv.err" >/dev/null
n_cmd=$(grep '^autosync: debug: run: btrfs ' "$W/vv.err" |
	grep -vc ': exit [0-9]*$')
n_ioc=$(grep -c '^autosync: debug: ioctl: ' "$W/vv.err")
n_sys=- n_rawsys=-
if command -v strace >/dev/null; then
	head -c $((FILE_MB * 1048576)) /dev/urandom >"$A/src/f1"
	strace -f -c -o "$W/as.strace" "$AUTOSYNC" sync "btrfs:$A/src" \
	    "btrfs:$B/as" >/dev/null 2>&1
	n_sys=$(awk '$NF == "total" {print $(NF-2)}' "$W/as.strace")
	last=$(ls -1v "$A/raw-snaps" | tail -n 1)
	head -c $((FILE_MB * 1048576)) /dev/urandom >"$A/src/f1"
	strace -f -c -o "$W/raw.strace" bash -c "btrfs subvolume snapshot -r \
	    '$A/src' '$A/raw-snaps/count' >/dev/null && btrfs send -q -p \
	    '$A/raw-snaps/$last' '$A/raw-snaps/count' | btrfs receive -q '$B/raw'"
	n_rawsys=$(awk '$NF == "total" {print $(NF-2)}' "$W/raw.strace")
fi
echo "counts, one incremental run: autosync ran $n_cmd btrfs commands and $n_ioc subvolume ioctls, $n_sys syscalls (strace -f -c); raw snapshot + send | receive: 3 commands, $n_rawsys syscalls"

# Over the network (REMOTE=1, the default): a full push over tcp:// to
# an "autosync serve --config" on 127.0.0.1 whose serve.conf trusts the
# client for btrfs: ("allow bench btrfs:B rw trusted"), against the raw
# pipe `btrfs send S | nc -N 127.0.0.1 P` into `nc -l P | btrfs receive
# B/ncraw` (its snapshot is taken before and not timed; the 0.2 s the
# script waits for nc -l is taken off); autosync's whole run is timed
# (snapshot, HOLD, RECEIVE: the stream in DATA frames into btrfs receive
# on the server, the view, pruning).  Destinations deleted before each
# round, alternating who goes first.
REMOTE=${REMOTE:-1}
net_raw=() net_as=() net_x=() net_c=()
if test "$REMOTE" = 1 && command -v nc >/dev/null; then
	"$AUTOSYNC" keygen --out "$W/keys" --client bench >/dev/null || exit 1
	cat >"$W/serve.conf" <<-EOF
	client bench key $W/keys/psk.key
	allow bench btrfs:$B rw trusted
	EOF
	setsid "$AUTOSYNC" serve --listen 127.0.0.1:0 --port-file "$W/port" \
	    --config "$W/serve.conf" 2>>"$W/serve.log" </dev/null &
	spid=$!
	for _ in $(seq 100); do test -s "$W/port" && break; sleep 0.1; done
	sport=$(cat "$W/port")
	ncport=$((sport + 1))
	mkdir -p "$B/ncraw"
	nc_raw() {	# prints seconds
		local s=$A/raw-snaps/n$1 t
		btrfs subvolume snapshot -r "$A/src" "$s" >/dev/null || return 1
		sync
		t=$("$PYTHON" -c '
import subprocess, sys, time
s, d, p = sys.argv[1:4]
r = subprocess.Popen("nc -l 127.0.0.1 %s | btrfs receive -q %s" % (p, d), shell=True)
time.sleep(0.2)
t = time.perf_counter()
subprocess.run("btrfs send -q %s | nc -N 127.0.0.1 %s" % (s, p), shell=True, check=True)
r.wait()
tp = time.perf_counter() - t
subprocess.run(["btrfs", "filesystem", "sync", d], check=True)
tc = time.perf_counter() - t
print("%.3f %.3f" % (tp, tc)) if r.returncode == 0 else print("FAIL FAIL")' "$s" "$B/ncraw" "$ncport")
		echo "$t"
	}
	tcp_as() {
		BENCH_OUT=$W/tcp.out seconds "$AUTOSYNC" sync -v --key "$W/keys/psk.key" \
		    "btrfs:$A/src" "tcp://127.0.0.1:$sport/btrfs:$B/tcpas"
	}
	for r in $(seq "$N"); do
		del_all "$B/ncraw"; del_all "$A/raw-snaps"
		test -d "$B/tcpas" && btrfs subvolume delete "$B/tcpas" >/dev/null
		del_all "$B/.autosync-snapshots/tcpas" 2>/dev/null
		del_all "$A/.autosync-snapshots/src" 2>/dev/null
		rm -rf "$B/.autosync-snapshots/tcpas" "$A/.autosync-snapshots"
		rm -rf "$AUTOSYNC_STATE_DIR"/*
		btrfs subvolume sync "$A" >/dev/null; btrfs subvolume sync "$B" >/dev/null
		if test $((r % 2)) = 1; then
			t2=$(nc_raw "$r"); t_as=$(tcp_as)
		else
			t_as=$(tcp_as); t2=$(nc_raw "$r")
		fi
		t_raw=${t2% *} t_rawc=${t2#* }
		s=$(ls -1 "$A/.autosync-snapshots/src" | grep '^autosync_' | tail -n 1)
		diff -r "$A/.autosync-snapshots/src/$s" "$B/tcpas" >/dev/null ||
			{ echo "WRONG RESULT: $B/tcpas differs from $s"; t_as=FAIL; }
		t_x=$(sed -n 's/.* of btrfs send streams in \([0-9.]*\) s$/\1/p' "$W/tcp.out")
		echo "round $r tcp push full: raw nc pipe $t_raw s (+ commit $t_rawc s), autosync $t_as s (streams $t_x s)"
		net_raw+=("$t_raw") net_as+=("$t_as") net_x+=("$t_x") net_c+=("$t_rawc")
	done
	kill -TERM "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	spid=
fi

# Over ssh (SSH=1, the default, with REMOTE=1): a full push through a
# real sshd on 127.0.0.1 (throwaway keys, started here), raw
# `btrfs send S | ssh 127.0.0.1 btrfs receive B/sshraw` against
# `autosync sync btrfs:A/src ssh://127.0.0.1/btrfs:B/sshas` (the remote
# end is `autosync serve --stdio`), both through the same ssh wrapper
# (same cipher); autosync's whole run is timed, the raw snapshot is not.
SSH=${SSH:-1}
ssh_raw=() ssh_as=() ssh_c=()
if test "$REMOTE" = 1 && test "$SSH" = 1 && test -x /usr/sbin/sshd; then
	sshport=$(( ${sport:-40000} + 2 ))
	sshd_start "$W/ssh" "$sshport" "$W/state-ssh"
	ssh_ok=$?
	mkdir -p "$B/sshraw"
	ssh_raw_run() {	# prints seconds
		local s=$A/raw-snaps/s$1
		btrfs subvolume snapshot -r "$A/src" "$s" >/dev/null || return 1
		local tp tc
		tp=$(seconds sh -c 'btrfs send -q "$1" | "$2" 127.0.0.1 btrfs receive -q "$3"' \
		    sh "$s" "$W/ssh/ssh" "$B/sshraw")
		tc=$(NOSYNC=1 seconds btrfs filesystem sync "$B/sshraw")
		echo "$tp $(sum "$tp" "$tc")"
	}
	ssh_as_run() {
		AUTOSYNC_SSH=$W/ssh/ssh AUTOSYNC_REMOTE=$AUTOSYNC seconds \
		    "$AUTOSYNC" sync "btrfs:$A/src" "ssh://127.0.0.1/btrfs:$B/sshas"
	}
	if test "$ssh_ok" = 0; then
		for r in $(seq "$N"); do
			del_all "$B/sshraw"; del_all "$A/raw-snaps"
			test -d "$B/sshas" && btrfs subvolume delete "$B/sshas" >/dev/null
			del_all "$B/.autosync-snapshots/sshas" 2>/dev/null
			del_all "$A/.autosync-snapshots/src" 2>/dev/null
			rm -rf "$B/.autosync-snapshots/sshas" "$A/.autosync-snapshots"
			rm -rf "$AUTOSYNC_STATE_DIR"/* "$W/state-ssh"
			btrfs subvolume sync "$A" >/dev/null; btrfs subvolume sync "$B" >/dev/null
			if test $((r % 2)) = 1; then
				t2=$(ssh_raw_run "$r"); t_as=$(ssh_as_run)
			else
				t_as=$(ssh_as_run); t2=$(ssh_raw_run "$r")
			fi
			t_raw=${t2% *} t_rawc=${t2#* }
			s=$(ls -1 "$A/.autosync-snapshots/src" | grep '^autosync_' | tail -n 1)
			diff -r "$A/.autosync-snapshots/src/$s" "$B/sshas" >/dev/null ||
				{ echo "WRONG RESULT: $B/sshas differs from $s"; t_as=FAIL; }
			echo "round $r ssh push full: raw ssh pipe $t_raw s (+ commit $t_rawc s), autosync $t_as s"
			ssh_raw+=("$t_raw") ssh_as+=("$t_as") ssh_c+=("$t_rawc")
		done
	else
		echo "ssh: cannot log in to the sshd started here; skipped"
	fi
	sshd_stop
fi

fr=$(printf '%s\n' "${full_raw[@]}" | best)
fa=$(printf '%s\n' "${full_as[@]}" | best)
ir=$(printf '%s\n' "${incr_raw[@]}" | best)
ia=$(printf '%s\n' "${incr_as[@]}" | best)
fx=$(printf '%s\n' "${full_x[@]}" | best)
fp=$(printf '%s\n' "${full_p[@]}" | best)
ip=$(printf '%s\n' "${incr_p[@]}" | best)
fc=$(printf '%s\n' "${full_c[@]}" | best)
ic=$(printf '%s\n' "${incr_c[@]}" | best)
id=$(printf '%s\n' "${incr_d[@]}" | best)
ix=$(printf '%s\n' "${incr_x[@]}" | best)
ratio() {
	"$PYTHON" -c "import sys
try: print('%.3f' % (float(sys.argv[1]) / float(sys.argv[2])))
except ValueError: print('-')" "$1" "$2"
}
# The median of the rounds' own ratios (autosync / raw of the same
# round, run back to back): on a shared machine the load drifts between
# rounds more than within one, so this moves less than best / best.
paired() {	# RAW_ARRAY_NAME WRAP_ARRAY_NAME
	local -n pr_=$1 pw_=$2
	"$PYTHON" -c 'import statistics, sys
n = int(sys.argv[1]); v = sys.argv[2:]
q = []
for r, w in zip(v[:n], v[n:]):
    try: q.append(float(w) / float(r))
    except (ValueError, ZeroDivisionError): pass
print("%.3f" % statistics.median(q) if q else "-")' "${#pr_[@]}" "${pr_[@]}" "${pw_[@]}"
}
echo
echo "machine: $(nproc) CPUs, kernel $(uname -r), $(btrfs --version)"
echo "autosync: $("$AUTOSYNC" --version 2>/dev/null | head -n 1)"
echo "data: $SIZE_MB MiB in $nfiles files; incremental: $CHANGE_PCT% of the files rewritten; best of N=$N"
echo
echo "| scenario | raw send\\|receive s | autosync streams s | ratio (goal ≤ 1.05) | raw snapshot + pipe s | + commit s | autosync whole run s | ratio to raw | ratio to raw + commit |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
echo "| full, $SIZE_MB MiB | $fp | $fx | $(ratio "$fx" "$fp") | $fr | $fc | $fa | $(ratio "$fa" "$fr") | $(ratio "$fa" "$fc") |"
echo "| incremental, $CHANGE_PCT% rewritten | $ip | $ix | $(ratio "$ix" "$ip") | $ir | $ic | $ia | $(ratio "$ia" "$ir") | $(ratio "$ia" "$ic") |"
echo
echo "incremental: raw snapshot + pipe + commit + deleting the parent on both sides $id s; autosync / that $(ratio "$ia" "$id")"
if test "${#net_raw[@]}" -gt 0; then
	nr=$(printf '%s\n' "${net_raw[@]}" | best)
	na=$(printf '%s\n' "${net_as[@]}" | best)
	echo
	nx=$(printf '%s\n' "${net_x[@]}" | best)
	nc_=$(printf '%s\n' "${net_c[@]}" | best)
	echo "| scenario | raw btrfs send \\| nc \\| btrfs receive s | + commit s | autosync tcp push: stream s | autosync whole run s | ratio to raw | ratio to raw + commit |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	echo "| full, $SIZE_MB MiB over tcp | $nr | $nc_ | $nx | $na | $(ratio "$na" "$nr") | $(ratio "$na" "$nc_") |"
fi
echo
echo "median of the rounds' ratios: full streams $(paired full_p full_x), incremental streams $(paired incr_p incr_x)$(
	test "${#net_raw[@]}" -gt 0 && echo ", tcp push whole run / raw nc pipe $(paired net_raw net_as)")$(
	test "${#ssh_raw[@]}" -gt 0 && echo ", ssh push whole run / raw ssh pipe $(paired ssh_raw ssh_as)")"
if test "${#ssh_raw[@]}" -gt 0; then
	sr=$(printf '%s\n' "${ssh_raw[@]}" | best)
	sa=$(printf '%s\n' "${ssh_as[@]}" | best)
	sc=$(printf '%s\n' "${ssh_c[@]}" | best)
	echo
	echo "| scenario | raw btrfs send \\| ssh btrfs receive s | + commit s | autosync ssh push, whole run s | ratio to raw | ratio to raw + commit |"
	echo "|---|---:|---:|---:|---:|---:|"
	echo "| full, $SIZE_MB MiB over ssh | $sr | $sc | $sa | $(ratio "$sa" "$sr") | $(ratio "$sa" "$sc") |"
fi
