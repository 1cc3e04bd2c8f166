#!/bin/bash
# bench/ratelimit.sh - does --rate-limit hold over a real transfer, over
# tcp:// and between two local paths, next to rsync --bwlimit?
#
# At each rate, copies a file of random data worth 8 s at that rate: an
# autosync push over tcp:// on loopback, an autosync sync between two
# local directories, and rsync --bwlimit between the same two paths.
# The achieved rate is the file's size over the run's wall time (start-up
# included, a few ms in 8 s); the goal (issues 3 and 6) is within 5% of
# the limit.  Rates are base 1024, as --rate-limit and rsync's --bwlimit
# (KiB/s) read them.  Usage: bench/ratelimit.sh [RATE...]
set -eu
AUTOSYNC=${AUTOSYNC:-$(cd "$(dirname "$0")/.." && pwd)/build/autosync}
dir=${BENCH_DIR:-/var/tmp/autosync-bench}/ratelimit
rates=${*:-10M 50M 200M}
rm -rf "$dir"
mkdir -p "$dir/src" "$dir/root"
trap 'kill "$serve_pid" 2>/dev/null; rm -rf "$dir"' EXIT
export AUTOSYNC_STATE_DIR=$dir/state
"$AUTOSYNC" keygen --out "$dir/keys" >/dev/null
"$AUTOSYNC" serve --listen 127.0.0.1:0 --port-file "$dir/port" \
    --key "$dir/keys/psk.key" --root "$dir/root" 2>"$dir/serve.log" &
serve_pid=$!
for _ in $(seq 50); do test -s "$dir/port" && break; sleep 0.1; done
port=$(cat "$dir/port")
bytes_of() {	# 10M -> bytes
	python3 -c 'import sys; s=sys.argv[1]; m={"K":1<<10,"M":1<<20,"G":1<<30}
print(int(float(s[:-1])*m[s[-1]]) if s[-1] in m else int(s))' "$1"
}
now_ns() { date +%s%N; }
# ratio WANT BYTES T0 T1: achieved rate / limit
ratio() { python3 -c 'import sys; w,b,t0,t1=map(int,sys.argv[1:])
print("%.3f" % (b / ((t1 - t0) / 1e9) / w))' "$@"; }
fresh() { rm -rf "$dir/root/dst" "$dir/local" "$dir/rsync" "$AUTOSYNC_STATE_DIR"; }

printf '%-8s %14s %10s %10s %10s\n' limit 'limit B/s' 'tcp push' local \
    'rsync local'
for r in $rates; do
	want=$(bytes_of "$r")
	size=$((want * 8))
	rm -f "$dir/src/f"
	head -c "$size" /dev/urandom >"$dir/src/f"
	fresh
	t0=$(now_ns)
	"$AUTOSYNC" sync --key "$dir/keys/psk.key" --rate-limit "$r" \
	    "$dir/src" "tcp://127.0.0.1:$port/dst"
	t1=$(now_ns)
	tcp=$(ratio "$want" "$size" "$t0" "$t1")
	t0=$(now_ns)
	"$AUTOSYNC" sync --rate-limit "$r" "$dir/src" "$dir/local"
	t1=$(now_ns)
	loc=$(ratio "$want" "$size" "$t0" "$t1")
	cmp "$dir/src/f" "$dir/local/f"
	t0=$(now_ns)
	rsync -a --bwlimit=$((want / 1024)) "$dir/src/" "$dir/rsync/"
	t1=$(now_ns)
	rs=$(ratio "$want" "$size" "$t0" "$t1")
	printf '%-8s %14d %10s %10s %10s\n' "$r" "$want" "$tcp" "$loc" "$rs"
done
