#!/bin/bash
# bench/service-zfs.sh - the per-run overhead of a ZFS service: a run
# with nothing changed over a tree of D datasets (issue 6: <= 0.5x
# syncoid -r) and a run after 1% of the data changed (<= 0.8x), side by
# side with syncoid when it is installed (Debian: apt-get install sanoid).
#
# Two zfs-fuse pools on image files.  Each tool has its own copy of the
# tree (A/as for autosync, A/sy for syncoid: a root and D children with a
# small file and 4 MiB of random data each), so that neither sees the other's snapshots.  After a
# first (full) run of each, N rounds, alternating which goes first, of
#
#   autosync  autosync run svc     (a foreground run of a service
#             zfs:A/as -> zfs:B/as, recursive, keep 1, NAME-latest on:
#             the store, a forked run, snapshot -r, D+1 incremental
#             streams, GUID checks, prune, the property on both sides)
#   syncoid   syncoid -r --quiet A/sy B/sy   (its defaults: a sync
#             snapshot per dataset, send -I, prune of its old ones)
#
# with nothing written in between, then N rounds where before each
# tool's run ten 4 KiB blocks of every dataset's 4 MiB are rewritten.  Reported per tool: the best and the
# median wall time, the CPU time of the tool and its children plus the
# zfs-fuse daemon's (xtime.py --watch), and the number of zfs commands a
# run ran (a logging zfs first on PATH: a count that does not depend on
# the machine's load).  ratio = autosync / syncoid.
#
# Needs root and zfs-fuse (started if not running, stopped if started).
# Usage: [D=20] [N=3] [BENCH_DIR=/var/tmp/autosync-bench]
#        [AUTOSYNC=build-rel/autosync] bench/service-zfs.sh
# (measure a release build: the default build/ of the tests has ASan)
set -u
here=$(cd "$(dirname "$0")" && pwd)
AUTOSYNC=${AUTOSYNC:-$here/../build-rel/autosync}
D=${D:-20}
N=${N:-3}
dir=${BENCH_DIR:-/var/tmp/autosync-bench}/service-zfs
pa=bsvc_$$_a
pb=bsvc_$$_b
started=

cleanup() {
	local p i
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

test "$(id -u)" = 0 || { echo "bench/service-zfs.sh: run as root" >&2; exit 2; }
command -v zfs-fuse >/dev/null ||
	{ echo "bench/service-zfs.sh: no zfs-fuse" >&2; exit 2; }
test -x "$AUTOSYNC" ||
	{ echo "bench/service-zfs.sh: no '$AUTOSYNC' (meson setup build-rel --buildtype=release)" >&2; exit 2; }
have_syncoid=
command -v syncoid >/dev/null && have_syncoid=1
# one user of zfs-fuse at a time (see tests/e2e/lib-zfs.sh)
exec {lockfd}>>"${TMPDIR:-/tmp}/autosync-zfs-tests.lock"
flock -w 600 "$lockfd" || { echo "bench/service-zfs.sh: zfs lock busy" >&2; exit 2; }
rm -rf "$dir"
mkdir -p "$dir/shim" "$dir/state"
if ! timeout 10 zpool list >/dev/null 2>&1; then
	zfs-fuse --no-daemon --no-kstat-mount >"$dir/zfs-fuse.log" 2>&1 &
	started=$!
	for i in $(seq 100); do
		timeout 10 zpool list >/dev/null 2>&1 && break
		sleep 0.1
	done
fi
zpid=$(pgrep -x zfs-fuse | head -n 1)
real=$(command -v zfs)
cat >"$dir/shim/zfs" <<EOF
#!/bin/bash
echo "\$*" >>"$dir/zfs.log"
exec "$real" "\$@"
EOF
chmod +x "$dir/shim/zfs"
export PATH=$dir/shim:$PATH AUTOSYNC_STATE_DIR=$dir/state

truncate -s 512M "$dir/a.img" "$dir/b.img"
zpool create -m "$dir/ma" "$pa" "$dir/a.img" >/dev/null &&
zpool create -m "$dir/mb" "$pb" "$dir/b.img" >/dev/null ||
	{ echo "bench/service-zfs.sh: cannot create pools" >&2; exit 1; }
for t in as sy; do
	zfs create "$pa/$t"
	for i in $(seq -w 1 "$D"); do
		zfs create "$pa/$t/d$i"
		echo "dataset $i" >"$dir/ma/$t/d$i/f"
		# 4 MiB of data per dataset: the 1% scenario rewrites 1% of it
		head -c 4M /dev/urandom >"$dir/ma/$t/d$i/data"
	done
done

"$AUTOSYNC" create svc --source "zfs:$pa/as" --dest "zfs:$pb/as" \
	--every 1d --at "$(date -d '+12 hours' +%H:%M)" >/dev/null &&
"$AUTOSYNC" run svc 2>/dev/null ||
	{ echo "bench/service-zfs.sh: the first autosync run failed" >&2; exit 1; }
if test -n "$have_syncoid"; then
	syncoid -r --quiet "$pa/sy" "$pb/sy" >/dev/null 2>&1 ||
		{ echo "bench/service-zfs.sh: the first syncoid run failed" >&2; exit 1; }
fi

best() { printf '%s\n' "$@" | sort -g | head -n 1; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
# one timed run: "WALL CPU ZFSCMDS"
timed() {
	local out
	: >"$dir/zfs.log"
	out=$(python3 "$here/xtime.py" --watch "$zpid" -- "$@" 2>/dev/null) ||
		return 1
	set -- $out
	test "$3" = 0 || { echo "bench/service-zfs.sh: run failed" >&2; return 1; }
	echo "$1 $2 $(wc -l <"$dir/zfs.log")"
}

# change_1pct TREE: overwrite 1% of every dataset's data (ten 4 KiB
# blocks of 4 MiB at random places), the same amount for both tools.
change_1pct() {
	local i k
	for i in $(seq -w 1 "$D"); do
		for k in $(seq 10); do
			dd if=/dev/urandom of="$dir/ma/$1/d$i/data" bs=4k count=1 \
			    seek=$((RANDOM % 1024)) conv=notrunc status=none
		done
	done
}

# scenario NAME CHANGE: N rounds, tools alternating who goes first;
# CHANGE (none or change_1pct) runs before each tool's timed run.
scenario() {
	local r side
	aw=() ac=() an=() sw=() sc=() sn=()
	for r in $(seq "$N"); do
		for side in $( ((r % 2)) && echo "a s" || echo "s a"); do
			if test "$side" = a; then
				test "$2" = none || "$2" as
				set -- "$1" "$2" $(timed "$AUTOSYNC" run svc) || exit 1
				aw+=("$3") ac+=("$4") an+=("$5")
			elif test -n "$have_syncoid"; then
				test "$2" = none || "$2" sy
				set -- "$1" "$2" $(timed syncoid -r --quiet "$pa/sy" "$pb/sy") || exit 1
				sw+=("$3") sc+=("$4") sn+=("$5")
			fi
		done
	done
	echo "# service run, $1, $D datasets + root, N=$N (zfs-fuse; shared, noisy machine)"
	printf '%-10s %10s %10s %10s %10s\n' tool best_s median_s cpu_s zfs_cmds
	printf '%-10s %10s %10s %10s %10s\n' autosync "$(best "${aw[@]}")" \
		"$(median "${aw[@]}")" "$(best "${ac[@]}")" "$(best "${an[@]}")"
	if test -n "$have_syncoid"; then
		printf '%-10s %10s %10s %10s %10s\n' syncoid "$(best "${sw[@]}")" \
			"$(median "${sw[@]}")" "$(best "${sc[@]}")" "$(best "${sn[@]}")"
		python3 - "$(best "${aw[@]}")" "$(best "${sw[@]}")" \
		    "$(median "${aw[@]}")" "$(median "${sw[@]}")" \
		    "$(best "${an[@]}")" "$(best "${sn[@]}")" <<'PY'
import sys
a, s, am, sm, an, sn = map(float, sys.argv[1:])
print("ratio autosync/syncoid: best %.2f, median %.2f, zfs commands %.2f"
      % (a / s, am / sm, an / sn))
PY
	else
		echo "syncoid: not installed (apt-get install sanoid): no ratio"
	fi
}

scenario "nothing changed (goal <= 0.5)" none
scenario "1% of the data changed (goal <= 0.8)" change_1pct
