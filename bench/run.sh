#!/bin/bash
# run.sh - autosync against rsync, side by side in one run (see README.md).
#
# usage: bench/run.sh            full scale: 100k files (~1 GiB) + 2 x 1 GiB
#        SCALE=0.1 bench/run.sh  quick: 10% of that
#
# Environment:
#   SCALE      size of the data sets, relative to full (default 1)
#   N          rounds per scenario; the best wall time counts (default 3)
#   BENCH_DIR  work directory, on a real disk (default /var/tmp/autosync-bench)
#   AUTOSYNC   the binary (default build/autosync); AUTOSYNC=none: rsync only
#   RESULTS    where to write the results (default bench/results-DATE.md);
#              RESULTS=none: stdout only
#   KEEP=1     keep the data sets afterwards (default: removed, logs kept)
#   ALLOW_TMPFS=1  run on tmpfs anyway (the figures are then not comparable)
#   PYTHON     interpreter for the generators and the timer (default python3)
set -eu -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
SCALE=${SCALE:-1}
N=${N:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/autosync-bench}
AUTOSYNC=${AUTOSYNC:-$top/build/autosync}
RESULTS=${RESULTS:-$here/results-$(date +%Y%m%d-%H%M).md}
KEEP=${KEEP:-0}
PY=${PYTHON:-python3}
B=$BENCH_DIR
LOGS=$B/logs
RSYNC_TREE=(rsync -aHAX --numeric-ids)
RSYNC_BIG=(rsync -aHAX --numeric-ids --inplace --no-whole-file)
RSYNC_CHECK=(rsync -naHAXc --numeric-ids --delete --exclude=/.autosync
	--itemize-changes)

die() { echo "run.sh: $*" >&2; exit 1; }
say() { printf '%s\n' "$*" >&2; }

# --- timer: wall clock (perf_counter, around the command) and peak RSS
# (GNU time's %M: ru_maxrss from wait4, i.e. the largest single process of
# the command and the children it waited for, in KiB; it includes the
# ~2 MiB of the forked time(1) itself, which the baseline below cancels).
# Python cannot report RSS itself: a forked interpreter's high-water mark
# survives execve.
TIMER='
import os, subprocess, sys, time
log, rss = sys.argv[1], sys.argv[2]
with open(log, "ab") as f:
    t0 = time.perf_counter()
    rc = subprocess.call(["/usr/bin/time", "-f", "%M", "-o", rss, "--"]
                         + sys.argv[3:], stdout=f, stderr=f)
    t = time.perf_counter() - t0
with open(rss) as f:
    m = f.read().split()
print("%.4f %s %d" % (t, m[-1] if m else 0, rc))
'

# timed LOG CMD... -> sets T_WALL (s), T_RSS (KiB), T_RC
timed() {
	local log=$1 out
	shift
	printf '\n$ %s\n' "$*" >>"$log"
	out=$("$PY" -c "$TIMER" "$log" "$LOGS/rss.tmp" "$@")
	read -r T_WALL T_RSS T_RC <<<"$out"
	printf '# wall %ss, peak rss %s KiB, exit %s\n' \
	    "$T_WALL" "$T_RSS" "$T_RC" >>"$log"
}

# --- checks ---------------------------------------------------------------
command -v rsync >/dev/null || die "rsync is missing (apt-get install -y rsync)"
command -v "$PY" >/dev/null || die "python3 is missing"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install -y time)"
case $N in ''|*[!0-9]*|0) die "N must be a positive integer" ;; esac
mkdir -p "$B" "$LOGS"
fstype=$(stat -f -c %T "$B")
if [ "$fstype" = tmpfs ] && [ "${ALLOW_TMPFS:-0}" != 1 ]; then
	die "'$B' is on tmpfs; set BENCH_DIR to a real disk (or ALLOW_TMPFS=1)"
fi
# three copies of (1 GiB tree + 2 GiB big files), plus slack
need_kib=$("$PY" -c "print(int(3 * 3.3 * 1048576 * $SCALE + 1048576))")
avail_kib=$(df -Pk "$B" | awk 'NR == 2 { print $4 }')
[ "$avail_kib" -ge "$need_kib" ] ||
	die "'$B' has $((avail_kib / 1024)) MiB free, needs $((need_kib / 1024))"

# Is autosync there and able to sync a small tree correctly?  The binary is
# copied first: a rebuild during the run must not change what is measured.
have_as=0
as_rev=
if [ "$AUTOSYNC" != none ]; then
	if [ -x "$AUTOSYNC" ]; then
		as_rev="$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$top" status --porcelain -- src 2>/dev/null | grep -q . && echo ', src modified'), built $(date -r "$AUTOSYNC" '+%Y-%m-%d %H:%M')"
		cp "$AUTOSYNC" "$B/autosync-under-test"
		AUTOSYNC=$B/autosync-under-test
		s=$B/smoke
		rm -rf "$s"
		mkdir -p "$s/src/d" "$s/state"
		echo hello >"$s/src/d/f"
		ln -s d/f "$s/src/l"
		if AUTOSYNC_STATE_DIR=$s/state "$AUTOSYNC" sync "$s/src" "$s/dst" \
		    >"$LOGS/smoke.log" 2>&1 &&
		    [ -z "$("${RSYNC_CHECK[@]}" "$s/src/" "$s/dst/" 2>&1)" ]; then
			have_as=1
		else
			say "autosync at '$AUTOSYNC' cannot sync yet (see $LOGS/smoke.log): rsync only"
		fi
	else
		say "no autosync binary at '$AUTOSYNC': rsync only"
	fi
fi

# --- data -------------------------------------------------------------------
say "== generating data (SCALE=$SCALE) in $B"
rm -rf "$B/src" "$B/dst-as" "$B/dst-rs" "$B/state-tree" "$B/state-big" "$B/smoke"
"$PY" "$here/gen-tree.py" "$B/src" | tee "$LOGS/gen.log" >&2
mkdir -p "$B/dst-as" "$B/dst-rs"
tree_entries=$(find "$B/src/tree" | wc -l)
# 64 KiB block hashes of the tree: one set per regular-file name
tree_blocks=$(find "$B/src/tree" -type f -printf '%s\n' |
	awk '{ b += int(($1 + 65535) / 65536) } END { print b + 0 }')
big_entries=$(find "$B/src/big" | wc -l)
big_blocks=$(find "$B/src/big" -type f -printf '%s\n' |
	awk '{ b += int(($1 + 65535) / 65536) } END { print b + 0 }')
tree_bytes=$(du -sb "$B/src/tree" | cut -f1)
big_bytes=$(du -sb "$B/src/big" | cut -f1)

# warm DIR...: read every directory, inode and data byte once more.  This
# machine may page out clean page cache that has not been touched for a
# while (e.g. DAMON "pageout" of cold unmapped pages), so "warm cache" is
# re-established right before each timed command, for both tools alike.
warm() {
	local d
	for d; do
		[ -e "$d" ] || continue
		find "$d" -printf '%s\n' >/dev/null
		find "$d" -type f -print0 | xargs -0r cat >/dev/null
	done
}

# --- one scenario -----------------------------------------------------------
# Results, per scenario key: best wall and max peak RSS per tool.
declare -A BEST_AS BEST_RS RSS_AS RSS_RS STATUS_AS VERIFY_AS
broken_tree=0
broken_big=0

# run_as KEY DATASET: one timed autosync sync, then checked
run_as() {
	local key=$1 ds=$2 log=$LOGS/$1.autosync.log diff
	local bvar=broken_$2
	if [ "${!bvar}" = 1 ]; then
		STATUS_AS[$key]="skipped (earlier failure)"
		return
	fi
	if [ "$OWN_FRESH" = 1 ]; then
		rm -rf "$B/dst-as/$ds" "$B/state-$ds"
		mkdir -p "$B/state-$ds"
	fi
	sync
	warm "$B/src/$ds" "$B/dst-as/$ds" "$B/state-$ds"
	timed "$log" env AUTOSYNC_STATE_DIR="$B/state-$ds" \
	    "$AUTOSYNC" sync "$B/src/$ds" "$B/dst-as/$ds"
	if [ "$T_RC" != 0 ]; then
		STATUS_AS[$key]="FAILED: exit $T_RC (see $log)"
		eval "broken_$ds=1"
		say "   autosync FAILED (exit $T_RC), see $log"
		return
	fi
	diff=$("${RSYNC_CHECK[@]}" "$B/src/$ds/" "$B/dst-as/$ds/" 2>&1) || true
	if [ -n "$diff" ]; then
		{ echo "# rsync -c check found differences:"; echo "$diff" | head -50; } >>"$log"
		STATUS_AS[$key]="WRONG RESULT: destination differs (see $log)"
		eval "broken_$ds=1"
		say "   autosync result differs from the source, see $log"
		return
	fi
	# autosync's own verify, untimed; a disagreement is reported, not fatal
	if AUTOSYNC_STATE_DIR=$B/state-$ds "$AUTOSYNC" verify "$B/src/$ds" \
	    "$B/dst-as/$ds" >>"$log" 2>&1; then
		VERIFY_AS[$key]=${VERIFY_AS[$key]:-ok}
	else
		VERIFY_AS[$key]="verify exit $?"
	fi
	STATUS_AS[$key]=${STATUS_AS[$key]:-ok}
	if [ -z "${BEST_AS[$key]:-}" ] ||
	    awk "BEGIN { exit !($T_WALL < ${BEST_AS[$key]}) }"; then
		BEST_AS[$key]=$T_WALL
	fi
	if [ "${RSS_AS[$key]:-0}" -lt "$T_RSS" ]; then
		RSS_AS[$key]=$T_RSS
	fi
	say "   autosync $T_WALL s, $T_RSS KiB"
}

# run_rs KEY DATASET: one timed rsync
run_rs() {
	local key=$1 ds=$2 log=$LOGS/$1.rsync.log
	local -a cmd=("${RSYNC_TREE[@]}")
	[ "$ds" = big ] && cmd=("${RSYNC_BIG[@]}")
	[ "$OWN_FRESH" = 1 ] && rm -rf "$B/dst-rs/$ds"
	sync
	warm "$B/src/$ds" "$B/dst-rs/$ds"
	timed "$log" "${cmd[@]}" "$B/src/$ds/" "$B/dst-rs/$ds/"
	[ "$T_RC" = 0 ] || die "rsync failed (exit $T_RC), see $log"
	if [ -z "${BEST_RS[$key]:-}" ] ||
	    awk "BEGIN { exit !($T_WALL < ${BEST_RS[$key]}) }"; then
		BEST_RS[$key]=$T_WALL
	fi
	if [ "${RSS_RS[$key]:-0}" -lt "$T_RSS" ]; then
		RSS_RS[$key]=$T_RSS
	fi
	say "   rsync    $T_WALL s, $T_RSS KiB"
}

# both KEY DATASET ROUND: the two tools, in alternating order
both() {
	if [ $(($3 % 2)) = 1 ]; then
		[ $have_as = 1 ] && run_as "$1" "$2"
		run_rs "$1" "$2"
	else
		run_rs "$1" "$2"
		[ $have_as = 1 ] && run_as "$1" "$2"
	fi
	return 0
}

# --- scenarios --------------------------------------------------------------
# A full copy starts from an empty destination.  Each tool removes its own
# previous copy right before its own run (OWN_FRESH=1), not both copies at
# the start of the round: the memory a copy frees is what the next writer's
# page cache reuses, and on a VM that returns free memory to its host
# ("free page reporting", e.g. page_reporting.page_reporting_order=11 on
# the kernel command line) memory that was handed back costs several
# seconds per GiB on first touch.  Removing both copies up front gave the
# first writer of the round the 2 GiB just freed and the second one memory
# from the host: whichever tool ran second was up to 2x slower (README,
# "2026-11-29 13:35").
OWN_FRESH=0
for ds in tree big; do
	OWN_FRESH=1
	for r in $(seq 1 "$N"); do
		say "== full copy, $ds, round $r/$N"
		both "full-$ds" "$ds" "$r"
	done
	OWN_FRESH=0
done
# From here on both destinations hold the current source; every round
# starts from that state: mutate the source (untimed), then each tool
# brings its own destination up to date.
for r in $(seq 1 "$N"); do
	say "== incremental, 1% of files, round $r/$N"
	"$PY" "$here/mutate.py" tree --seed $((100 + r)) "$B/src/tree" \
	    | tee -a "$LOGS/mutate.log" >&2
	both incr-tree tree "$r"
done
for r in $(seq 1 "$N"); do
	say "== nothing changed, tree, round $r/$N"
	both noop-tree tree "$r"
done
for r in $(seq 1 "$N"); do
	say "== 1% of 64 KiB blocks in the big files, round $r/$N"
	"$PY" "$here/mutate.py" big --seed $((200 + r)) "$B/src/big" \
	    | tee -a "$LOGS/mutate.log" >&2
	both blocks-big big "$r"
done
for r in $(seq 1 "$N"); do
	say "== nothing changed, big files, round $r/$N"
	both noop-big big "$r"
done
# the rsync copies must be right too, or its figures mean nothing
for ds in tree big; do
	d=$("${RSYNC_CHECK[@]}" "$B/src/$ds/" "$B/dst-rs/$ds/" 2>&1) || true
	[ -z "$d" ] || die "rsync destination '$ds' differs from the source: $d"
done

# Baseline RSS: autosync syncing a tree of one small file, so that the
# per-entry figure does not count the binary, its libraries and buffers.
base_rss=0
if [ $have_as = 1 ]; then
	rm -rf "$B/empty" "$B/empty-dst" "$B/state-empty"
	mkdir -p "$B/empty" "$B/state-empty"
	echo x >"$B/empty/one"
	timed "$LOGS/baseline.log" env AUTOSYNC_STATE_DIR="$B/state-empty" \
	    "$AUTOSYNC" sync "$B/empty" "$B/empty-dst"
	[ "$T_RC" = 0 ] && base_rss=$T_RSS
fi

# --- report -----------------------------------------------------------------
machine() {
	local cpu mem fs
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
	mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	fs=$(findmnt -n -o FSTYPE,SOURCE -T "$B" 2>/dev/null |
		awk '{ print $1 " (" $2 ")" }')
	[ -n "$fs" ] || fs=$fstype
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $(nproc) CPUs (${cpu:-unknown}), $mem RAM, kernel $(uname -r)"
	echo "- bench dir: $B on $fs"
	echo "- rsync: $(rsync --version | head -1)"
	if [ $have_as = 1 ]; then
		echo "- autosync: $("$AUTOSYNC" --version 2>/dev/null | head -1) ($as_rev)"
	else
		echo "- autosync: not run (no working binary)"
	fi
	echo "- data (SCALE=$SCALE): tree $tree_entries entries, $((tree_bytes / 1048576)) MiB; big files $((big_bytes / 1048576)) MiB; best of N=$N, warm cache, local to local"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

row() {	# key title goal
	local key=$1 title=$2 goal=$3 a=${BEST_AS[$1]:-} r=${BEST_RS[$1]:-}
	local ratio=- verdict=- amem=- rmem=-
	[ -n "${RSS_RS[$key]:-}" ] && rmem=$(mib "${RSS_RS[$key]}")
	case ${STATUS_AS[$key]:-ok} in
	ok) ;;
	*) a="" ;;
	esac
	if [ -n "$a" ]; then
		amem=$(mib "${RSS_AS[$key]}")
		ratio=$(awk "BEGIN { printf \"%.2f\", $a / $r }")
		if [ "$goal" != - ]; then
			if awk "BEGIN { exit !($a / $r <= $goal) }"; then
				verdict=met
			else
				verdict=MISSED
			fi
		fi
		a=$(printf '%.3f' "$a")
	elif [ $have_as = 1 ]; then
		a="${STATUS_AS[$key]:-not run}"
		verdict=MISSED
	else
		a="not run"
	fi
	[ "$goal" = - ] || goal="≤ $goal"
	printf '| %s | %s | %.3f | %s | %s | %s | %s | %s |\n' "$title" "$a" \
	    "$r" "$ratio" "$goal" "$verdict" "$amem" "$rmem"
}

report() {
	echo "## Results"
	echo
	machine
	echo
	echo "| scenario | autosync s | rsync s | autosync/rsync | goal | | autosync peak RSS | rsync peak RSS |"
	echo "|---|---:|---:|---:|---|---|---:|---:|"
	row full-tree "full copy, tree" 0.5
	row incr-tree "incremental, 1% of files" 0.4
	row noop-tree "nothing changed, tree" 0.25
	row blocks-big "1% of 64 KiB blocks, 2 big files" 0.5
	row full-big "full copy, 2 big files (info)" -
	row noop-big "nothing changed, big files (info)" -
	echo
	if [ $have_as = 1 ] && [ -n "${RSS_AS[full-tree]:-}" ]; then
		local peak=0 k
		for k in full-tree incr-tree noop-tree; do
			[ "${RSS_AS[$k]:-0}" -gt $peak ] && peak=${RSS_AS[$k]}
		done
		awk -v peak="$peak" -v base="$base_rss" -v n="$tree_entries" \
		    -v blocks="$tree_blocks" -v bb="$big_blocks" \
		    -v bigpeak="${RSS_AS[blocks-big]:-0}" 'BEGIN {
			per = (peak - base) * 1024 / n
			hash = 16 * blocks / n
			printf "Memory, tree: autosync peak RSS %.1f MiB over %d entries", peak / 1024, n
			printf " (baseline: syncing a one-file tree, %.1f MiB).\n", base / 1024
			printf "Per entry: %.0f bytes above the baseline (%.0f bytes raw), of which", per, peak * 1024 / n
			printf " block hashes %.1f bytes (%d hashes x 16 bytes / entry);\n", hash, blocks
			printf "the rest %.0f bytes/entry against the goal of 150: %s.\n", per - hash, (per - hash <= 150 ? "met" : "MISSED")
			printf "Big files: peak RSS %.1f MiB for %d blocks (hashes alone: %.1f MiB).\n", bigpeak / 1024, bb, bb * 16 / 1048576
		}'
		echo
	fi
	[ $have_as = 1 ] || return 0
	local k notes=""
	for k in full-tree incr-tree noop-tree blocks-big full-big noop-big; do
		case ${VERIFY_AS[$k]:-ok} in
		ok) ;;
		*) notes="$notes $k (${VERIFY_AS[$k]})" ;;
		esac
	done
	echo "Every autosync run was checked with \`rsync -naHAXc --numeric-ids --delete\`"
	echo "(no differences allowed) and with \`autosync verify\`${notes:+; autosync verify disagreed on:$notes}."
}

report >"$LOGS/report.md"
echo
cat "$LOGS/report.md"
if [ "$RESULTS" != none ]; then
	cp "$LOGS/report.md" "$RESULTS"
	say "results written to $RESULTS"
fi

if [ "$KEEP" != 1 ]; then
	rm -rf "$B/src" "$B/dst-as" "$B/dst-rs" "$B/state-tree" "$B/state-big" \
	    "$B/empty" "$B/empty-dst" "$B/state-empty" "$B/smoke" \
	    "$B/autosync-under-test"
	say "data removed; logs kept in $LOGS"
fi
