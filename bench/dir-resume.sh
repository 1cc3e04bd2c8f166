#!/bin/bash
# bench/dir-resume.sh - what the resume checkpoints of a directory
# receive cost: a local full sync into a fresh destination with them (the
# default) and without (-F turns them off; on an empty destination it
# changes nothing else), side by side in one run, N rounds alternating,
# best wall time; plus the syscalls strace counts for one run of each
# (load-independent).  Two trees: a few large files, many small ones.
#
#   bench/dir-resume.sh                 SCALE=0.25 N=3 by default
#   AUTOSYNC=build-rel/autosync SCALE=1 bench/dir-resume.sh
set -eu
AUTOSYNC=${AUTOSYNC:-build/autosync}
SCALE=${SCALE:-0.25}
N=${N:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/autosync-bench-dresume}
AUTOSYNC=$(realpath "$AUTOSYNC")

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
cd "$BENCH_DIR"
export AUTOSYNC_STATE_DIR=$BENCH_DIR/state

big_mib=$(awk -v s="$SCALE" 'BEGIN { print int(1024 * s) }')
small_n=$(awk -v s="$SCALE" 'BEGIN { print int(80000 * s) }')
mkdir -p big small
for i in $(seq 1 8); do
	head -c $((big_mib / 8))M /dev/urandom >big/f$i
done
python3 - "$small_n" <<'EOF'
import os, sys
n = int(sys.argv[1])
for i in range(n):
    d = "small/d%03d" % (i % 500)
    os.makedirs(d, exist_ok=True)
    with open("%s/f%06d" % (d, i), "wb") as f:
        f.write(os.urandom(4096))
EOF
sync

now() { date +%s.%N; }

# one TREE FLAGS: wall seconds of one full sync into a fresh destination
one() {
	rm -rf "dst-$1" state
	sync
	t0=$(now)
	"$AUTOSYNC" sync $2 "$1" "dst-$1" >/dev/null
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

echo "| tree | checkpoints (default) s | none (-F) s | ratio | syncfs with / without | write+pwrite with / without |"
echo "|---|---|---|---|---|---|"
for tree in big small; do
	best_on=999999 best_off=999999
	for r in $(seq 1 "$N"); do
		a=$(one "$tree" "")
		b=$(one "$tree" "-F")
		best_on=$(awk -v x="$a" -v y="$best_on" 'BEGIN { print (x < y) ? x : y }')
		best_off=$(awk -v x="$b" -v y="$best_off" 'BEGIN { print (x < y) ? x : y }')
	done
	counts() {
		rm -rf "dst-$tree" state
		strace -f -c -o "strace-$tree-$1.txt" "$AUTOSYNC" sync $2 "$tree" \
			"dst-$tree" >/dev/null
		sf=$(awk '$NF == "syncfs" { print $4 }' "strace-$tree-$1.txt")
		wr=$(awk '$NF == "write" || $NF == "pwrite64" { n += $4 } END { print n + 0 }' \
			"strace-$tree-$1.txt")
		echo "${sf:-0} $wr"
	}
	set -- $(counts on "") $(counts off -F)
	echo "| $tree | $best_on | $best_off | $(awk -v x="$best_on" -v y="$best_off" \
		'BEGIN { printf "%.2f", x / y }') | $1 / $3 | $2 / $4 |"
done
cd /
rm -rf "$BENCH_DIR"
