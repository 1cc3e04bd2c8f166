#!/bin/bash
# bench/zfs.sh - what does autosync's wrapping cost over a raw zfs pipe?
#
# Two zfs-fuse pools on image files; one dataset of random data.  Each
# round times, side by side and alternating which goes first:
#
# Each side has its own copy of the data (A/src for raw, A/srcw for
# autosync: the same files), so that neither sees the other's snapshots.
#
#   raw       zfs snapshot A/src@rN && zfs send [-i prev] A/src@rN |
#             zfs receive -u B/raw && zfs destroy the previous snapshot
#             on both sides (the same retention as autosync's)
#   autosync  autosync sync zfs:A/srcw zfs:B/wrap     (snapshot, list,
#             send | autosync | receive, GUID check, policy, prune)
#
# for a full stream (destinations destroyed first), an incremental one
# (1% of the data rewritten before the round) and a run with nothing
# changed.  The best of N rounds counts; ratio = autosync / raw; the goal
# (issue 6) is <= 1.05 for the transfers.
#
# Needs root and zfs-fuse (started if not running, stopped if started).
# Usage: [MB=512] [N=3] [BENCH_DIR=/var/tmp/autosync-bench]
#        [AUTOSYNC=build-rel/autosync] bench/zfs.sh
# (measure a release build: the default build/ of the tests has ASan)
set -u
. "$(dirname "$0")/lib-sshd.sh" || exit 1
AUTOSYNC=${AUTOSYNC:-$(cd "$(dirname "$0")/.." && pwd)/build/autosync}
# absolute: the ssh rounds run it as the remote side, from another directory
case $AUTOSYNC in
/*) ;;
*) AUTOSYNC=$(cd "$(dirname "$AUTOSYNC")" && pwd)/$(basename "$AUTOSYNC") ;;
esac
MB=${MB:-512}
N=${N:-3}
dir=${BENCH_DIR:-/var/tmp/autosync-bench}/zfs
pa=bench_$$_a
pb=bench_$$_b
started=
spid= ppid_= sshd_pid=

cleanup() {
	local p i
	# a round that failed exits with its servers still running
	for p in "$spid" "$ppid_" "$sshd_pid"; do
		test -n "$p" || continue
		kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	for p in "$pa" "$pb"; do
		for i in $(seq 10); do
			zpool list "$p" >/dev/null 2>&1 || break
			zpool destroy -f "$p" 2>/dev/null && break
			sleep 0.5
		done
	done
	if test -n "$started"; then
		kill -TERM "$started" 2>/dev/null
		wait "$started" 2>/dev/null
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

test "$(id -u)" = 0 || { echo "bench/zfs.sh: run as root" >&2; exit 2; }
command -v zfs-fuse >/dev/null || { echo "bench/zfs.sh: no zfs-fuse" >&2; exit 2; }
# one user of zfs-fuse at a time (see tests/e2e/lib-zfs.sh)
exec {lockfd}>>"${TMPDIR:-/tmp}/autosync-zfs-tests.lock"
flock -w 600 "$lockfd" || { echo "bench/zfs.sh: zfs lock busy" >&2; exit 2; }
rm -rf "$dir"
mkdir -p "$dir/ma" "$dir/mb"
if ! timeout 10 zpool list >/dev/null 2>&1; then
	zfs-fuse --no-daemon --no-kstat-mount >"$dir/zfs-fuse.log" 2>&1 &
	started=$!
	for _ in $(seq 100); do
		timeout 10 zpool list >/dev/null 2>&1 && break
		sleep 0.1
	done
fi
# up to 8 copies of the data land in pool B (raw and wrapped, local,
# tcp push, tcp pull, ssh pull); the images are sparse
size=$(( (MB * 10 + 512) ))M
truncate -s "$size" "$dir/a.img" "$dir/b.img"
zpool create -m "$dir/ma" "$pa" "$dir/a.img" 2>/dev/null || exit 1
zpool create -m "$dir/mb" "$pb" "$dir/b.img" 2>/dev/null || exit 1
zfs create "$pa/src"
export AUTOSYNC_STATE_DIR=$dir/state

# MB of random data in 8 MiB files, plus 1000 small files
for i in $(seq $((MB / 8))); do
	head -c $((8 << 20)) /dev/urandom >"$dir/ma/src/f$i"
done
mkdir "$dir/ma/src/small"
for i in $(seq 1000); do
	head -c 4096 /dev/urandom >"$dir/ma/src/small/s$i"
done
zfs create "$pa/srcw"
cp -a "$dir/ma/src/." "$dir/ma/srcw/"
sync

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
best() { printf '%s\n' "$@" | sort -g | head -n 1; }

# Both set a global (RT, WT): they must not run in $(...), which would
# lose rawprev.
rawprev=
raw_round() {	# $1: full|incr
	local s=r$(date +%s%N) t0 t1
	t0=$(now)
	zfs snapshot "$pa/src@$s" || return 1
	if test "$1" = full || test -z "$rawprev"; then
		zfs send "$pa/src@$s" | zfs receive -u "$pb/raw" || return 1
	else
		zfs send -i "$rawprev" "$pa/src@$s" |
			zfs receive -u "$pb/raw" || return 1
	fi
	# the same retention as autosync's: drop the previous snapshot
	if test -n "$rawprev"; then
		zfs destroy "$pa/src@$rawprev" 2>/dev/null
		zfs destroy "$pb/raw@$rawprev" 2>/dev/null
	fi
	t1=$(now)
	rawprev=$s
	RT=$(secs "$t0" "$t1")
}

wrap_round() {
	local t0 t1
	t0=$(now)
	"$AUTOSYNC" sync zfs:"$pa/srcw" zfs:"$pb/wrap" 2>>"$dir/autosync.log" ||
		return 1
	t1=$(now)
	WT=$(secs "$t0" "$t1")
}

reset_dest() {
	local i
	for d in "$pb/raw" "$pb/wrap"; do
		for i in $(seq 20); do
			zfs list "$d" >/dev/null 2>&1 || break
			zfs destroy -r "$d" 2>/dev/null && break
			sleep 0.3
		done
	done
	for s in $(zfs list -H -t snapshot -o name -r "$pa/src" "$pa/srcw"); do
		zfs destroy "$s" 2>/dev/null
	done
	rawprev=
	rm -rf "$AUTOSYNC_STATE_DIR"
}

mutate() {	# rewrite the same 1% of both copies in place (64 KiB blocks)
	local seed=$RANDOM d
	for d in src srcw; do
		python3 - "$dir/ma/$d" "$MB" "$seed" <<'PY'
import os, random, sys
root, mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(int(sys.argv[3]))
files = sorted(f for f in os.listdir(root) if f.startswith("f"))
blocks = mb * 16 // 100 or 1
for _ in range(blocks):
    f = os.path.join(root, rnd.choice(files))
    with open(f, "r+b") as fh:
        fh.seek(rnd.randrange(128) * 65536)
        fh.write(rnd.randbytes(65536))
PY
	done
	sync
}

declare -a rf rw ri wi rn wn
# one scenario: $1 full|incr; runs both in alternating order
pair() {
	if test $((r % 2)) = 1; then
		raw_round "$1" || exit 1; wrap_round || exit 1
	else
		wrap_round || exit 1; raw_round "$1" || exit 1
	fi
}
for r in $(seq "$N"); do
	reset_dest
	sync
	pair full; rf+=("$RT"); rw+=("$WT")
	mutate
	pair incr; ri+=("$RT"); wi+=("$WT")
	pair incr; rn+=("$RT"); wn+=("$WT")
done

# A tree of DATASETS children (a 1 MiB file each), nothing changed
# between runs: the per-run, per-dataset overhead.  Raw: the least a
# script does, `zfs snapshot -r`, one `send -i | receive -u` per dataset,
# and `zfs destroy -r` of the previous snapshot on both sides.
DATASETS=${DATASETS:-20}
zfs create "$pa/tree"
zfs create "$pa/treew"
for i in $(seq "$DATASETS"); do
	zfs create "$pa/tree/c$i"
	zfs create "$pa/treew/c$i"
	head -c 1048576 /dev/urandom >"$dir/ma/tree/c$i/f"
	cp -a "$dir/ma/tree/c$i/f" "$dir/ma/treew/c$i/f"
done
tprev=
tree_raw() {
	local s=t$(date +%s%N) t0 t1 d
	t0=$(now)
	zfs snapshot -r "$pa/tree@$s" || return 1
	for d in $(zfs list -H -o name -r "$pa/tree"); do
		if test -z "$tprev"; then
			zfs send "$d@$s" | zfs receive -u "$pb/traw${d#"$pa/tree"}"
		else
			zfs send -i "$tprev" "$d@$s" |
				zfs receive -u "$pb/traw${d#"$pa/tree"}"
		fi || return 1
	done
	if test -n "$tprev"; then
		zfs destroy -r "$pa/tree@$tprev" && zfs destroy -r "$pb/traw@$tprev"
	fi
	t1=$(now)
	tprev=$s
	RT=$(secs "$t0" "$t1")
}
tree_wrap() {
	local t0 t1
	t0=$(now)
	"$AUTOSYNC" sync zfs:"$pa/treew" zfs:"$pb/twrap" 2>>"$dir/autosync.log" ||
		return 1
	t1=$(now)
	WT=$(secs "$t0" "$t1")
}
tree_raw && tree_wrap || exit 1		# the full streams, not timed
declare -a tr tw
for r in $(seq "$N"); do
	if test $((r % 2)) = 1; then
		tree_raw || exit 1; tree_wrap || exit 1
	else
		tree_wrap || exit 1; tree_raw || exit 1
	fi
	tr+=("$RT"); tw+=("$WT")
done

# Over the network (REMOTE=1, the default): a push over tcp:// to an
# "autosync serve --root zfs:B" on 127.0.0.1 against the raw pipe
# `zfs send | nc | nc -l | zfs receive -u`; full streams of A/src and
# A/srcw (destinations destroyed before each round), then a run with
# nothing changed (autosync: incremental, one HOLD and RECEIVE).
REMOTE=${REMOTE:-1}
declare -a nr_full nw_full nw_none
if test "$REMOTE" = 1; then
	"$AUTOSYNC" keygen --out "$dir/keys" >/dev/null || exit 1
	setsid "$AUTOSYNC" serve --listen 127.0.0.1:0 --port-file "$dir/port" \
	    --key "$dir/keys/psk.key" --root "zfs:$pb" \
	    2>>"$dir/serve.log" </dev/null &
	spid=$!
	for _ in $(seq 100); do test -s "$dir/port" && break; sleep 0.1; done
	sport=$(cat "$dir/port")
	ncport=$((sport + 1))
	nc_round() {
		local t0 t1 s=n$(date +%s%N)
		zfs destroy -r "$pb/ncraw" 2>/dev/null
		t0=$(now)
		# timed, as in raw_round: autosync's run takes its snapshot too
		zfs snapshot "$pa/src@$s" || return 1
		nc -l 127.0.0.1 "$ncport" | zfs receive -u "$pb/ncraw" &
		local rp=$!
		sleep 0.2	# nc -l listening (not timed: see below)
		zfs send "$pa/src@$s" | nc -N 127.0.0.1 "$ncport" || return 1
		wait "$rp" || return 1
		t1=$(now)
		zfs destroy "$pa/src@$s" 2>/dev/null
		RT=$(echo "$t1 - $t0 - 0.2" | bc -l)
	}
	tcp_round() {
		local t0 t1
		t0=$(now)
		"$AUTOSYNC" sync --key "$dir/keys/psk.key" zfs:"$pa/srcw" \
		    "tcp://127.0.0.1:$sport/zfs:$pb/tcpwrap" \
		    2>>"$dir/autosync.log" || return 1
		t1=$(now)
		WT=$(secs "$t0" "$t1")
	}
	for r in $(seq "$N"); do
		zfs destroy -r "$pb/tcpwrap" 2>/dev/null
		for s in $(zfs list -H -t snapshot -o name -r "$pa/srcw"); do
			zfs destroy "$s" 2>/dev/null
		done
		rm -rf "$AUTOSYNC_STATE_DIR"
		if test $((r % 2)) = 1; then
			nc_round || exit 1; tcp_round || exit 1
		else
			tcp_round || exit 1; nc_round || exit 1
		fi
		nr_full+=("$RT"); nw_full+=("$WT")
		tcp_round || exit 1
		nw_none+=("$WT")
	done
	kill -TERM "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	spid=
fi

# Pull (REMOTE=1): "autosync sync tcp://127.0.0.1:PORT/zfs:A/srcw
# zfs:B/pullwrap" from an "autosync serve --root zfs:A" (SNAPSHOTS, SEND
# with the server's snapshot, zfs receive -u here, GUID check, property
# policy) against the same raw pipe as the push (`zfs send | nc | nc -l |
# zfs receive -u`); and, with an sshd (SSH=1, the default when
# /usr/sbin/sshd exists: one is started on 127.0.0.1 for the run), the
# pull over ssh:// against `ssh 127.0.0.1 zfs send A/src@s | zfs receive
# -u B/sshraw`.  Full streams, destinations destroyed before each round,
# alternating who goes first.
SSH=${SSH:-$(test -x /usr/sbin/sshd && echo 1 || echo 0)}
declare -a pr_full pw_full pw_none sr_full sw_full
if test "$REMOTE" = 1; then
	# -vv: its zfs commands are counted below
	setsid "$AUTOSYNC" serve -vv --listen 127.0.0.1:0 \
	    --port-file "$dir/pport" --key "$dir/keys/psk.key" --root "zfs:$pa" \
	    2>>"$dir/serve-pull.log" </dev/null &
	ppid_=$!
	for _ in $(seq 100); do test -s "$dir/pport" && break; sleep 0.1; done
	pport=$(cat "$dir/pport")
	ncport=$((pport + 1))
	pull_round() {
		local t0 t1
		t0=$(now)
		"$AUTOSYNC" sync --key "$dir/keys/psk.key" \
		    "tcp://127.0.0.1:$pport/zfs:$pa/srcw" zfs:"$pb/pullwrap" \
		    2>>"$dir/autosync.log" || return 1
		t1=$(now)
		WT=$(secs "$t0" "$t1")
	}
	if test "$SSH" = 1; then
		sshport=$((pport + 2))
		sshd_start "$dir/ssh" "$sshport" "$dir/state-ssh" || SSH=0
	fi
	ssh_raw_round() {
		local t0 t1 s=h$(date +%s%N)
		zfs destroy -r "$pb/sshraw" 2>/dev/null
		t0=$(now)
		# the snapshot on the remote side in the same login, timed as
		# in raw_round (autosync's pull has the server take one)
		"$dir/ssh/ssh" 127.0.0.1 "zfs snapshot $pa/src@$s &&
		    zfs send $pa/src@$s" | zfs receive -u "$pb/sshraw" || return 1
		t1=$(now)
		zfs destroy "$pa/src@$s" 2>/dev/null
		RT=$(secs "$t0" "$t1")
	}
	ssh_pull_round() {
		local t0 t1
		t0=$(now)
		AUTOSYNC_SSH=$dir/ssh/ssh AUTOSYNC_REMOTE=$AUTOSYNC "$AUTOSYNC" \
		    sync "ssh://127.0.0.1/zfs:$pa/srcw" zfs:"$pb/sshwrap" \
		    2>>"$dir/autosync.log" || {
			echo "bench/zfs.sh: ssh pull failed:" >&2
			tail -n 3 "$dir/autosync.log" >&2
			return 1
		}
		t1=$(now)
		WT=$(secs "$t0" "$t1")
	}
	for r in $(seq "$N"); do
		zfs destroy -r "$pb/pullwrap" 2>/dev/null
		zfs destroy -r "$pb/sshwrap" 2>/dev/null
		for s in $(zfs list -H -t snapshot -o name -r "$pa/srcw"); do
			zfs destroy "$s" 2>/dev/null
		done
		rm -rf "$AUTOSYNC_STATE_DIR" "$dir/state-ssh"
		if test $((r % 2)) = 1; then
			nc_round || exit 1; pull_round || exit 1
		else
			pull_round || exit 1; nc_round || exit 1
		fi
		pr_full+=("$RT"); pw_full+=("$WT")
		pull_round || exit 1
		pw_none+=("$WT")
		# load-independent: the zfs commands of one tcp pull with
		# nothing changed, here (-vv) and on the server (its -vv log)
		if test "$r" = 1; then
			s0=$(grep -c 'debug: run: zfs ' "$dir/serve-pull.log")
			"$AUTOSYNC" -vv sync --key "$dir/keys/psk.key" \
			    "tcp://127.0.0.1:$pport/zfs:$pa/srcw" \
			    zfs:"$pb/pullwrap" 2>"$dir/count.log" >/dev/null ||
			    { echo "count run failed:"; tail -n 3 "$dir/count.log"; }
			sleep 0.5
			pull_cmds_c=$(grep -c 'debug: run: zfs ' "$dir/count.log")
			pull_cmds_s=$(($(grep -c 'debug: run: zfs ' \
			    "$dir/serve-pull.log") - s0))
		fi
		test "$SSH" = 1 || continue
		if test $((r % 2)) = 1; then
			ssh_raw_round || exit 1; ssh_pull_round || exit 1
		else
			ssh_pull_round || exit 1; ssh_raw_round || exit 1
		fi
		sr_full+=("$RT"); sw_full+=("$WT")
	done
	kill -TERM "$ppid_" 2>/dev/null
	wait "$ppid_" 2>/dev/null
	ppid_=
	sshd_stop
fi

# The median of the rounds' own ratios (autosync / raw of the same
# round, run back to back): on a shared machine the load drifts between
# rounds more than within one, so this moves less than best / best.
paired() {	# RAW... WRAP... (N each)
	python3 -c 'import statistics, sys
n = int(sys.argv[1]); v = [float(x) for x in sys.argv[2:]]
print("%.2f" % statistics.median(w / r for r, w in zip(v[:n], v[n:])))' "$N" "$@"
}

row() {
	local name=$1 a b m
	m=$(paired "${@:2}")
	a=$(best "${@:2:$N}")
	shift $((N + 1))
	b=$(best "$@")
	printf '| %s | %.3f | %.3f | %.2f | %s |\n' "$name" "$b" "$a" \
	    "$(echo "$b / $a" | bc -l)" "$m"
}
echo
echo "zfs-fuse $(dpkg-query -W -f '${Version}' zfs-fuse 2>/dev/null), ${MB} MiB + 1000 x 4 KiB, best of $N, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| scenario | autosync s | raw zfs pipe s | autosync/raw (best / best) | median of the rounds' ratios |"
echo "|---|---:|---:|---:|---:|"
row "full stream" "${rf[@]}" "${rw[@]}"
row "incremental, 1% rewritten" "${ri[@]}" "${wi[@]}"
row "nothing changed" "${rn[@]}" "${wn[@]}"
# The per-run cost (commands around the stream) is the "nothing changed"
# difference; what the stream itself costs through autosync is the full
# stream's time less that, for both.
fr=$(best "${rf[@]}"); fw=$(best "${rw[@]}")
nr=$(best "${rn[@]}"); nw=$(best "${wn[@]}")
printf '| stream only (full - nothing changed) | %.3f | %.3f | %.2f | |\n' \
    "$(echo "$fw - $nw" | bc -l)" "$(echo "$fr - $nr" | bc -l)" \
    "$(echo "($fw - $nw) / ($fr - $nr)" | bc -l)"
row "$DATASETS datasets, nothing changed" "${tr[@]}" "${tw[@]}"
if test "$REMOTE" = 1; then
	row "tcp push vs zfs send, nc, zfs receive -u: full" "${nr_full[@]}" "${nw_full[@]}"
	printf '| tcp push, nothing changed | %.3f | | | |\n' "$(best "${nw_none[@]}")"
	row "tcp pull vs zfs send, nc, zfs receive -u: full" "${pr_full[@]}" "${pw_full[@]}"
	printf '| tcp pull, nothing changed | %.3f | | | |\n' "$(best "${pw_none[@]}")"
	printf '| tcp pull, stream only (full - nothing changed) | %.3f | %.3f | %.2f | |\n' \
	    "$(echo "$(best "${pw_full[@]}") - $(best "${pw_none[@]}")" | bc -l)" \
	    "$(best "${pr_full[@]}")" \
	    "$(echo "($(best "${pw_full[@]}") - $(best "${pw_none[@]}")) / $(best "${pr_full[@]}")" | bc -l)"
	if test "$SSH" = 1; then
		row "ssh pull vs ssh zfs send \\| zfs receive -u: full" "${sr_full[@]}" "${sw_full[@]}"
	fi
fi
if test -n "${pull_cmds_c:-}"; then
	echo
	echo "A tcp pull with nothing changed ran $pull_cmds_c zfs commands here and $pull_cmds_s on the server."
fi
