#!/bin/bash
# tests/valgrind/run.sh - every main path of autosync once under valgrind
# memcheck (no invalid access, no use of uninitialised memory, no
# definite leak), in a build without sanitizers (they and valgrind
# exclude each other).  Part of `make check` and CI.
#
#   bash tests/valgrind/run.sh [BUILD_DIR]    # default build-valgrind
#
# Builds BUILD_DIR (meson, debugoptimized, no sanitizer) if needed, then
# runs each check in a fresh directory under /tmp with
# `valgrind --trace-children=yes`, one log per process; a check fails
# when its command fails or any log reports an error.  The warnings
# valgrind prints for the syscalls it does not know (openat2,
# listxattrat, getxattrat: autosync falls back when they fail) are not
# errors.  Ends with "valgrind: N passed, M failed".
set -u

here=$(cd "$(dirname "$0")/../.." && pwd)
bdir=${1:-$here/build-valgrind}
passed=0 failed=0

if ! command -v valgrind >/dev/null; then
	echo "valgrind: not installed (apt-get install valgrind)"
	echo "valgrind: 0 passed, 1 failed"
	exit 1
fi
if ! test -f "$bdir/build.ninja"; then
	meson setup "$bdir" "$here" --buildtype=debugoptimized \
	    -Db_sanitize=none >"${TMPDIR:-/tmp}/valgrind-setup.log" 2>&1 || {
		tail -n 20 "${TMPDIR:-/tmp}/valgrind-setup.log"
		echo "valgrind: 0 passed, 1 failed"; exit 1; }
fi
ninja -C "$bdir" autosync >/dev/null || {
	echo "valgrind: 0 passed, 1 failed"; exit 1; }
A=$bdir/autosync

W=$(mktemp -d "${TMPDIR:-/tmp}/autosync-valgrind.XXXXXX") || exit 1
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$W"
}
trap cleanup EXIT
export AUTOSYNC_STATE_DIR=$W/state
cd "$W" || exit 1

n=0
# vg CMD...: CMD under valgrind; logs in $W/logs/N.PID
vg() {
	mkdir -p "$W/logs"
	valgrind -q --trace-children=yes --leak-check=full \
	    --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	    --log-file="$W/logs/$n.%p" "$@"
}

# the error lines of the logs of check $1 (unknown-syscall notes dropped)
errors_of() {
	cat "$W"/logs/"$1".* 2>/dev/null | grep -v -e 'WARNING: unhandled' \
	    -e 'You may be able to write' -e 'README_MISSING_SYSCALL' \
	    -e 'Nevertheless we consider' -e 'valgrind.org/support' \
	    -e '^==[0-9]*== *$' -e '^--[0-9]*-- *$'
}

# check TITLE EXPECT CMD...: run CMD (a shell string, using vg); its
# exit status must be EXPECT ("0", or "!0" for any failure that is not
# valgrind's own) and no log may hold an error
check() {
	local title=$1 expect=$2 rc e
	shift 2
	n=$((n + 1))
	eval "$*" >"$W/out.$n" 2>"$W/err.$n"
	rc=$?
	e=$(errors_of "$n")
	if { test "$expect" = 0 && test "$rc" != 0; } ||
	    { test "$expect" = '!0' && test "$rc" = 0; } || test -n "$e"; then
		echo "not ok $n - $title (exit $rc)"
		test -z "$e" || echo "$e" | head -n 40 | sed 's/^/# /'
		tail -n 5 "$W/err.$n" | sed 's/^/# /'
		failed=$((failed + 1))
	else
		echo "ok $n - $title"
		passed=$((passed + 1))
	fi
}

mk_tree() {
	mkdir -p src/a/b src/c &&
	for i in $(seq 40); do head -c $((i * 517)) /dev/urandom >src/a/f$i; done &&
	head -c 300000 /dev/urandom >src/c/big &&
	truncate -s 4M src/c/sparse && printf x | dd of=src/c/sparse bs=1 \
	    seek=2M conv=notrunc 2>/dev/null &&
	ln -s ../a/f1 src/c/link && ln src/a/f2 src/c/hard &&
	mkfifo src/c/fifo && setfattr -n user.k -v v src/a/f3 2>/dev/null
	chmod 4755 src/a/f4
}
change_tree() {
	echo changed >>src/a/f5 && rm src/a/f6 && mv src/a/f7 src/a/b/f7 &&
	chmod 600 src/a/f8 && head -c 70000 /dev/urandom >src/c/new
}

mk_tree || exit 1
check "snapshot" 0 'vg "$A" snapshot src@s1'
check "snapshots --json" 0 'vg "$A" snapshots --json src'
check "send (full)" 0 'vg "$A" send src@s1 >full.as'
check "receive (full)" 0 'vg "$A" receive d1 <full.as'
change_tree
check "snapshot, send -i" 0 'vg "$A" snapshot src@s2 && vg "$A" send -i @s1 src@s2 >incr.as'
check "receive -n (dry run)" 0 'vg "$A" receive -n d1 <incr.as'
check "receive (incremental)" 0 'vg "$A" receive d1 <incr.as'
check "verify" 0 'vg "$A" verify src@s2 d1'
cp incr.as bad.as && printf '\377' | dd of=bad.as bs=1 seek=200 conv=notrunc 2>/dev/null
check "receive of a damaged stream fails cleanly" '!0' 'vg "$A" receive d1 <bad.as'
check "destroy" 0 'vg "$A" destroy src@s1'
check "sync (full)" 0 'vg "$A" sync src d2'
change_tree 2>/dev/null; echo more >>src/a/f9
check "sync (incremental)" 0 'vg "$A" sync -v src d2'
check "sync --safe" 0 'vg "$A" sync --safe src d3'
truncate -s 8M a.img && head -c 1M /dev/urandom | dd of=a.img conv=notrunc 2>/dev/null
check "volume sync, full and incremental" 0 'vg "$A" sync vol:a.img vol:b.img &&
	printf y | dd of=a.img bs=1 seek=5000000 conv=notrunc 2>/dev/null &&
	vg "$A" sync vol:a.img vol:b.img'
check "local syncs under a rate limit, with progress (pace, its relay)" 0 \
	'vg "$A" sync --rate-limit 8M --progress=json src d4 2>/dev/null &&
	printf z | dd of=a.img bs=1 seek=6000000 conv=notrunc 2>/dev/null &&
	vg "$A" sync --rate-limit 8M --progress=json vol:a.img vol:b.img 2>/dev/null'

# a server under valgrind, a push and a pull over tcp
mkdir -p srvroot && vg "$A" keygen --out keys >/dev/null 2>&1
n=$((n + 1)); srvn=$n
AUTOSYNC_STATE_DIR=$W/state-srv valgrind -q --trace-children=yes \
    --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --log-file="$W/logs/$srvn.%p" \
    "$A" serve --listen 127.0.0.1:0 --port-file "$W/port" \
    --key "$W/keys/psk.key" --root "$W/srvroot" 2>"$W/serve.err" &
pids+=($!)
for _ in $(seq 200); do test -s "$W/port" && break; sleep 0.1; done
port=$(cat "$W/port" 2>/dev/null)
check "tcp push" 0 'vg "$A" sync --key keys/psk.key src "tcp://127.0.0.1:$port/data"'
check "tcp pull" 0 'vg "$A" sync --key keys/psk.key "tcp://127.0.0.1:$port/data" pulled'
check "a wrong key is refused" '!0' 'vg "$A" keygen --out keys2 >/dev/null &&
	vg "$A" sync --key keys2/psk.key src "tcp://127.0.0.1:$port/data2"'
kill -TERM "${pids[0]}" 2>/dev/null; wait "${pids[0]}" 2>/dev/null; pids=()
e=$(errors_of "$srvn")
if test -n "$e"; then
	echo "not ok $srvn - the server, its sessions and its exit"
	echo "$e" | head -n 40 | sed 's/^/# /'
	failed=$((failed + 1))
else
	echo "ok $srvn - the server, its sessions and its exit"
	passed=$((passed + 1))
fi

# the service: create, run, show, destroy (no daemon: run does it itself)
check "service create, run, show, destroy" 0 'vg "$A" create vgsvc --source "$W/src" --dest "$W/d4" --every 1h &&
	vg "$A" run vgsvc --wait && vg "$A" show --json vgsvc >/dev/null &&
	vg "$A" destroy vgsvc'

echo "valgrind: $passed passed, $failed failed"
test "$failed" = 0
