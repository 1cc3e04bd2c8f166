# test-lib.sh - the end-to-end test framework for autosync (bash).
#
# Modelled on git's t/test-lib.sh.  A test script looks like this:
#
#	#!/bin/bash
#	test_description='what this file checks'
#	. "$(dirname "$0")/test-lib.sh"
#
#	test_expect_success 'title' '
#		mkfixture src every-kind &&
#		autosync sync src dst &&
#		assert_same_tree src dst
#	'
#	test_expect_success ROOT,SETCAP 'title' '...'
#	test_done
#
# Each script runs in its own trash directory under ${TMPDIR:-/tmp}
# (removed when every test passed, kept and named when one failed), with
# its own autosync state directory (AUTOSYNC_STATE_DIR) and HOME.  Test
# bodies are eval'ed in the script's shell, so chain commands with &&.
#
# Options (or AUTOSYNC_TEST_OPTS): -v/--verbose show each test's output,
# -i/--immediate stop at the first failure, -d/--debug keep the trash
# directory, -x trace test bodies with set -x.
#
# The binary is $AUTOSYNC, or build/autosync of this checkout; an
# "autosync" on PATH (first) runs it, so strace, setsid and timeout work.

# ---------------------------------------------------------------------------
# Setup

LC_ALL=C
LANG=C
TZ=UTC
export LC_ALL LANG TZ
unset CDPATH

if test -z "$test_description"; then
	echo "test-lib: the script did not set test_description" >&2
	exit 1
fi

TEST_DIRECTORY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) || exit 1
TEST_ROOT=$(cd "$TEST_DIRECTORY/../.." && pwd) || exit 1
TEST_NAME=$(basename "$0" .sh)

verbose='' immediate='' debug='' trace=''
for opt in $AUTOSYNC_TEST_OPTS "$@"; do
	case "$opt" in
	-v|--verbose)	verbose=t ;;
	-i|--immediate)	immediate=t ;;
	-d|--debug)	debug=t ;;
	-x)		trace=t ;;
	-h|--help)
		echo "usage: $0 [-v] [-i] [-d] [-x]"
		echo "$test_description"
		exit 0 ;;
	*)	echo "test-lib: unknown option '$opt'" >&2; exit 2 ;;
	esac
done

if test -t 1 && test -z "$NO_COLOR"; then
	c_red=$(printf '\033[31m') c_green=$(printf '\033[32m')
	c_yellow=$(printf '\033[33m') c_reset=$(printf '\033[0m')
else
	c_red='' c_green='' c_yellow='' c_reset=''
fi

say() { echo "$@"; }
say_color() {
	local color=$1; shift
	case "$color" in
	error) printf '%s%s%s\n' "$c_red" "$*" "$c_reset" ;;
	pass) printf '%s%s%s\n' "$c_green" "$*" "$c_reset" ;;
	skip) printf '%s%s%s\n' "$c_yellow" "$*" "$c_reset" ;;
	*) printf '%s\n' "$*" ;;
	esac
}
BAIL_OUT() {
	echo "Bail out! $TEST_NAME: $*"
	test_count_failure=$((test_count_failure + 1))
	exit 1
}

# Resolve python3 once: wrappers such as pyenv shims cost a fork and an
# exec of a shell per call, and fixtures call python3 often.
TEST_PYTHON=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) ||
	TEST_PYTHON=
test -x "$TEST_PYTHON" || TEST_PYTHON=$(command -v python3) ||
	BAIL_OUT "python3 is required"
python3() { "$TEST_PYTHON" "$@"; }
# The library's own helpers need no site packages: skip site (faster).
py_() { "$TEST_PYTHON" -S "$@"; }

AUTOSYNC=${AUTOSYNC:-$TEST_ROOT/build/autosync}
case "$AUTOSYNC" in
/*) ;;
*) AUTOSYNC=$(cd "$(dirname "$AUTOSYNC")" && pwd)/$(basename "$AUTOSYNC") ;;
esac
export AUTOSYNC

test_count=0 test_count_success=0 test_count_failure=0
test_count_skip=0 test_count_fixed=0 test_count_broken=0
test_failed_titles=

TRASH_DIRECTORY=$(mktemp -d "${TMPDIR:-/tmp}/autosync-$TEST_NAME.XXXXXX") ||
	BAIL_OUT "cannot create a trash directory"
TRASH_DIRECTORY=$(cd "$TRASH_DIRECTORY" && pwd -P)
TEST_META=$TRASH_DIRECTORY/.test-meta	# pids, mounts, per-test logs
mkdir "$TEST_META" "$TEST_META/bin" "$TRASH_DIRECTORY/.state" \
	"$TRASH_DIRECTORY/.home" || BAIL_OUT "cannot populate the trash directory"
: >"$TEST_META/pids"
: >"$TEST_META/mounts"

AUTOSYNC_STATE_DIR=$TRASH_DIRECTORY/.state
HOME=$TRASH_DIRECTORY/.home
export AUTOSYNC_STATE_DIR HOME
ln -s "$AUTOSYNC" "$TEST_META/bin/autosync"
PATH=$TEST_META/bin:$PATH
export PATH

# A sanitizer build should abort loudly rather than exit with a code that
# a test could mistake for an autosync error class.
: "${ASAN_OPTIONS=abort_on_error=1:detect_leaks=1}"
: "${UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS UBSAN_OPTIONS

# ---------------------------------------------------------------------------
# Cleanup: only what this script started or mounted.

# Run "$1" (a shell command string) in the background as a direct child;
# remember its PID for the cleanup, and return it in test_bg_pid.  The
# command is exec'ed, so the PID is the command's own; redirections belong
# inside the string: test_bg 'autosync receive dst <fifo'.
test_bg() {
	eval "exec $1" &
	test_bg_pid=$!
	echo "$test_bg_pid" >>"$TEST_META/pids"
}

# Kill a process this script started (a direct child; a PID that was
# reaped and reused by somebody else is left alone).
test_kill() {
	local sig=${2:-KILL} pid=$1 ppid
	ppid=$(awk '{ print $4 }' "/proc/$pid/stat" 2>/dev/null) || return 0
	test "$ppid" = "$$" || return 0
	kill -s "$sig" "$pid" 2>/dev/null
	return 0
}

# test_proc_state PID: the state letter of PID (R, S, T, Z...), empty
# when it is gone
test_proc_state() { awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null; }

# test_wait_stopped PID: until PID is stopped (state T, e.g. by an
# AUTOSYNC_FAULT=SITE:STOP), 20 s at most; at once when PID is gone
test_wait_stopped() {
	local i=0
	while test $i -lt 200 && test -e "/proc/$1"; do
		test "$(test_proc_state "$1")" = T && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "pid $1 never stopped (state $(test_proc_state "$1"))"
	return 1
}

# Wait (up to 10 s) until no process of session SID is left: after a
# kill -9 of a process group, its children may still be exiting (and
# holding locks) when the leader has been reaped.
test_wait_session() {
	local sid=$1 i stat rest line
	for i in $(seq 100); do
		rest=
		for stat in /proc/[0-9]*/stat; do
			# field 6 is the session; the command (field 2) may hold spaces
			read -r line 2>/dev/null <"$stat" || continue
			line=${line##*) }
			set -- $line
			test "$4" = "$sid" && { rest=t; break; }
		done
		test -z "$rest" && return 0
		sleep 0.1
	done
	echo "test_wait_session: processes of session $sid still running" >&2
	return 1
}

# mount "$@" with the mount point last, recorded for cleanup.
test_mount() {
	local mp
	mp=$(cd "${!#}" && pwd -P) || return 1
	mount "$@" || return 1
	echo "$mp" >>"$TEST_META/mounts"
}

# Unmount a mount point this script mounted.
test_umount() {
	local mp
	mp=$(cd "$1" && pwd -P) || return 1
	grep -qxF "$mp" "$TEST_META/mounts" || {
		echo "test_umount: '$mp' was not mounted by this test" >&2
		return 1
	}
	umount "$mp" || umount -l "$mp" || return 1
	grep -vxF "$mp" "$TEST_META/mounts" >"$TEST_META/mounts.new"
	mv "$TEST_META/mounts.new" "$TEST_META/mounts"
}

test_cleanup_all_() {
	local pid mp
	cd / || :
	test -d "$TEST_META" || return 0
	while read -r pid; do
		test -n "$pid" && test_kill "$pid" KILL
	done <"$TEST_META/pids"
	while read -r pid; do
		test -n "$pid" && wait "$pid" 2>/dev/null
	done <"$TEST_META/pids"
	: >"$TEST_META/pids"
	tac "$TEST_META/mounts" | while read -r mp; do
		test -n "$mp" || continue
		if mountpoint -q "$mp"; then
			umount "$mp" 2>/dev/null || umount -l "$mp" ||
				echo "# cleanup: cannot unmount '$mp'" >&2
		fi
	done
	: >"$TEST_META/mounts"
}

test_at_exit_() {
	local code=$?
	trap - EXIT
	test_cleanup_all_
	if test -n "$test_done_called"; then
		exit "$code"
	fi
	echo "# $TEST_NAME: exited ($code) before test_done; trash kept in" \
		"'$TRASH_DIRECTORY'"
	exit 1
}
trap test_at_exit_ EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Prerequisites

test_prereq_ok_='' test_prereq_missing_=''

test_set_prereq() { test_prereq_ok_="$test_prereq_ok_ $1 "; }

test_lazy_prereq_() {
	case "$1" in
	ROOT)	test "$(id -u)" = 0 ;;
	RSYNC)	command -v rsync >/dev/null ;;
	PYTHON3) command -v python3 >/dev/null ;;
	XATTR)	command -v setfattr >/dev/null && command -v getfattr >/dev/null &&
		: >"$TEST_META/xattr-probe" &&
		setfattr -n user.probe -v 1 "$TEST_META/xattr-probe" 2>/dev/null ;;
	SETFACL) command -v setfacl >/dev/null && command -v getfacl >/dev/null &&
		: >"$TEST_META/acl-probe" &&
		setfacl -m u:12345:r "$TEST_META/acl-probe" 2>/dev/null ;;
	SETCAP)	command -v setcap >/dev/null && command -v getcap >/dev/null &&
		: >"$TEST_META/cap-probe" &&
		setcap cap_net_raw+ep "$TEST_META/cap-probe" 2>/dev/null ;;
	STRACE)	command -v strace >/dev/null &&
		strace -f -qq -o /dev/null true 2>/dev/null ;;
	DEBOOTSTRAP) command -v debootstrap >/dev/null ;;
	TMPFS)	test "$(id -u)" = 0 && mkdir -p "$TEST_META/tmpfs-probe" &&
		mount -t tmpfs -o size=1m tmpfs "$TEST_META/tmpfs-probe" 2>/dev/null &&
		umount "$TEST_META/tmpfs-probe" ;;
	*)	echo "test-lib: unknown prerequisite '$1'" >&2; return 1 ;;
	esac
}

# test_have_prereq A,B,!C: true when all hold; missing ones are remembered
# in test_missing_prereq for the skip message.
test_have_prereq() {
	local p neg ok=0
	test_missing_prereq=
	for p in ${1//,/ }; do
		neg=
		case "$p" in !*) neg=t; p=${p#!} ;; esac
		case "$test_prereq_ok_" in
		*" $p "*) ;;
		*)
			case "$test_prereq_missing_" in
			*" $p "*) ;;
			*)
				if (test_lazy_prereq_ "$p") >/dev/null 2>&1; then
					test_set_prereq "$p"
				else
					test_prereq_missing_="$test_prereq_missing_ $p "
				fi ;;
			esac ;;
		esac
		case "$test_prereq_ok_" in
		*" $p "*) test -z "$neg" || { ok=1; test_missing_prereq="$test_missing_prereq,!$p"; } ;;
		*) test -n "$neg" || { ok=1; test_missing_prereq="$test_missing_prereq,$p"; } ;;
		esac
	done
	test_missing_prereq=${test_missing_prereq#,}
	return $ok
}

# ---------------------------------------------------------------------------
# Running tests

test_ok_() {
	test_count_success=$((test_count_success + 1))
	say_color pass "ok $test_count - $1"
}

test_failure_() {
	test_count_failure=$((test_count_failure + 1))
	test_failed_titles="$test_failed_titles
#	$test_count - $1"
	say_color error "not ok $test_count - $1"
	# Show the body and the tail of what it printed.
	printf '%s\n' "$2" | sed -e 's/^/#	/'
	if test -z "$verbose" && test -s "$TEST_META/out.$test_count"; then
		echo "#	--- output (last 60 lines) ---"
		tail -n 60 "$TEST_META/out.$test_count" | sed -e 's/^/#	/'
	fi
	test -z "$immediate" || { test_done_called=t;
		echo "# stopped at the first failure (-i); trash kept in '$TRASH_DIRECTORY'";
		test_cleanup_all_; exit 1; }
}

test_skip_() {
	test_count_skip=$((test_count_skip + 1))
	say_color skip "ok $test_count # skip $1 ($2)"
}

# Run one body in this shell, output to the per-test log (or the terminal
# with -v), with cleanups registered by test_when_finished.
test_run_() {
	local body=$1 out=$TEST_META/out.$test_count
	test_cleanup=:
	cd "$TRASH_DIRECTORY" || BAIL_OUT "trash directory vanished"
	if test -n "$verbose"; then
		exec 5>&1 6>&2
	else
		exec 5>"$out" 6>&5
	fi
	if test -n "$trace"; then
		eval "set -x
$body" >&5 2>&6 </dev/null
		test_eval_ret_=$?
		set +x
	else
		eval "$body" >&5 2>&6 </dev/null
		test_eval_ret_=$?
	fi
	eval "$test_cleanup" >&5 2>&6 </dev/null ||
		{ echo "# cleanup of test $test_count failed" >&6;
		  test "$test_eval_ret_" != 0 || test_eval_ret_=1; }
	exec 5>&- 6>&-
	cd "$TRASH_DIRECTORY" || BAIL_OUT "trash directory vanished"
	return "$test_eval_ret_"
}

# Register a command to run after the current test, pass or fail.
test_when_finished() {
	test_cleanup="{ $*
	} && (exit \"\$test_eval_ret_\"); test_eval_ret_=\$?; $test_cleanup"
}

test_expect_success() {
	local prereq=
	test "$#" = 3 && { prereq=$1; shift; }
	test "$#" = 2 || BAIL_OUT "test_expect_success needs 2 or 3 arguments"
	test_count=$((test_count + 1))
	if test -n "$prereq" && ! test_have_prereq "$prereq"; then
		test_skip_ "$1" "missing $test_missing_prereq"
		return 0
	fi
	if test_run_ "$2"; then
		test_ok_ "$1"
	else
		test_failure_ "$1" "$2"
	fi
	return 0
}

# A known breakage: failing is expected (not counted as a failure);
# passing is reported as fixed.
test_expect_failure() {
	local prereq=
	test "$#" = 3 && { prereq=$1; shift; }
	test "$#" = 2 || BAIL_OUT "test_expect_failure needs 2 or 3 arguments"
	test_count=$((test_count + 1))
	if test -n "$prereq" && ! test_have_prereq "$prereq"; then
		test_skip_ "$1" "missing $test_missing_prereq"
		return 0
	fi
	if test_run_ "$2"; then
		test_count_fixed=$((test_count_fixed + 1))
		test_count_success=$((test_count_success + 1))
		say_color pass "ok $test_count - $1 # TODO known breakage vanished"
	else
		test_count_broken=$((test_count_broken + 1))
		say_color skip "not ok $test_count - $1 # TODO known breakage"
	fi
	return 0
}

# test_skip 'title' 'why': record a test that cannot run here.
test_skip() {
	test_count=$((test_count + 1))
	test_skip_ "$1" "$2"
}

# test_skip_all 'why': skip the rest of the script and finish.
test_skip_all() {
	say "# skip all remaining tests of $TEST_NAME: $1"
	test_count_skip=$((test_count_skip + 1))
	test_count=$((test_count + 1))
	say_color skip "ok $test_count # skip $TEST_NAME ($1)"
	test_done
}

test_done() {
	test_done_called=t
	say "1..$test_count"
	test "$test_count_broken" = 0 ||
		say_color skip "# still have $test_count_broken known breakage(s)"
	test "$test_count_fixed" = 0 ||
		say_color pass "# $test_count_fixed known breakage(s) vanished"
	say "# passed $test_count_success, failed $test_count_failure, skipped $test_count_skip"
	test_cleanup_all_
	if test "$test_count_failure" = 0 && test -z "$debug"; then
		if grep -qF " $TRASH_DIRECTORY" /proc/self/mounts; then
			say "# something is still mounted below '$TRASH_DIRECTORY'; kept"
		else
			cd / && rm -rf --one-file-system "$TRASH_DIRECTORY"
		fi
		exit 0
	fi
	if test "$test_count_failure" != 0; then
		say "# failed tests:$test_failed_titles"
	fi
	say "# trash directory kept: '$TRASH_DIRECTORY'"
	test "$test_count_failure" = 0
	exit
}

# ---------------------------------------------------------------------------
# Assertions

test_cmp() { diff -u "$@"; }

# test_expect_code N cmd...: cmd must exit with exactly N.
test_expect_code() {
	local want=$1 got
	shift
	"$@"
	got=$?
	test "$got" = "$want" && return 0
	echo "test_expect_code: '$*' exited $got, want $want" >&2
	return 1
}

# test_must_fail cmd...: a non-zero exit that is not a crash or a signal.
test_must_fail() {
	local got
	"$@"
	got=$?
	if test "$got" = 0; then
		echo "test_must_fail: '$*' succeeded" >&2; return 1
	elif test "$got" -gt 128 && test "$got" -le 192; then
		echo "test_must_fail: '$*' died of signal $((got - 128))" >&2; return 1
	elif test "$got" = 127 || test "$got" = 126; then
		echo "test_must_fail: '$*' could not run ($got)" >&2; return 1
	fi
	return 0
}

test_path_is_file() { test -f "$1" || { echo "not a file: '$1'" >&2; return 1; }; }
test_path_is_dir() { test -d "$1" || { echo "not a directory: '$1'" >&2; return 1; }; }
test_path_is_missing() { ! test -e "$1" && ! test -L "$1" || { echo "exists: '$1'" >&2; return 1; }; }
test_must_be_empty() {
	test -s "$1" || return 0
	echo "'$1' is not empty:" >&2; cat "$1" >&2; return 1
}
# test_now_ms: the wall clock in milliseconds
test_now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# test_took MIN MAX CMD...: run CMD (its status is test_took's); it must
# take MIN ms or more, and less than MAX (empty: no bound).  The time is
# said on the test's own output, whatever CMD's redirections.
test_took() {
	local min=$1 max=$2 t0 t1 rc
	shift 2
	t0=$(test_now_ms)
	"$@"
	rc=$?
	t1=$(test_now_ms)
	echo "# $* took $((t1 - t0)) ms (want >= $min${max:+ and < $max})" >&6
	test $rc = 0 && test $((t1 - t0)) -ge "$min" &&
		{ test -z "$max" || test $((t1 - t0)) -lt "$max"; }
}

# --progress=json: the last object FILE holds, and a number member of one
progress_last() { grep '^{"bytes":' "$1" | tail -n 1; }
progress_num() { echo "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
# progress_done FILE MIN: FILE's last object is the final one and counts
# at least MIN bytes
progress_done() {
	local j
	j=$(progress_last "$1")
	echo "$j" | grep -q '"done":true' &&
	test "$(progress_num "$j" bytes)" -ge "$2" ||
	{ echo "progress_done: '$j', want done and >= $2 bytes" >&2; return 1; }
}
test_line_count() {	# test_line_count = N file
	local n
	n=$(wc -l <"$3")
	test "$n" "$1" "$2" || { echo "test_line_count: $n lines in '$3', want $1 $2" >&2; cat "$3" >&2; return 1; }
}
# grep that shows the file on failure
test_grep() {
	local neg=
	test "$1" = "!" && { neg=t; shift; }
	local file=${!#}
	if test -n "$neg"; then
		! grep "$@" && return 0
		echo "test_grep: found what should not be there in '$file':" >&2
	else
		grep "$@" && return 0
		echo "test_grep: no match for '${*:1:$#-1}' in '$file':" >&2
	fi
	cat "$file" >&2
	return 1
}

file_size() { stat -c %s "$1"; }

# strace with LeakSanitizer off: LSan needs ptrace itself and fails at
# exit under a tracer (sanitizer builds in CI).
test_strace() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace "$@"
}

# ---------------------------------------------------------------------------
# Fixtures (RELIABILITY.md 2.1)

# A deterministic stream of N bytes (seeded), fast and incompressible.
test_bytes() {	# test_bytes N [seed]
	py_ - "$1" "${2:-0}" <<-'EOF'
	import hashlib, sys
	n, seed = int(sys.argv[1]), sys.argv[2].encode()
	out = sys.stdout.buffer
	i = 0
	while n > 0:
	    k = min(n, 1 << 20)
	    out.write(hashlib.shake_256(seed + b"/%d" % i).digest(k))
	    n -= k
	    i += 1
	EOF
}

# Set a distinct nanosecond mtime (and atime) on every entry below DIR,
# children before parents, symlinks themselves; DIR's own too.
fixture_stamp_times() {	# DIR [base_seconds]
	py_ - "$1" "${2:-1000000000}" <<-'EOF'
	import os, sys
	root, base = os.fsencode(sys.argv[1]), int(sys.argv[2])
	paths = []
	for d, dirs, files in os.walk(root, topdown=False):
	    for n in files + dirs:
	        p = os.path.join(d, n)
	        if os.path.dirname(p) == root and n == b".autosync":
	            continue
	        paths.append(p)
	paths.append(root)
	for i, p in enumerate(paths):
	    ns = (base + 7919 * i) * 10**9 + (123456789 + 1000003 * i) % 10**9
	    os.utime(p, ns=(ns, ns), follow_symlinks=False)
	EOF
}

# A UNIX socket bound at PATH (then the listener exits; the inode stays).
mksocket() {
	py_ - "$1" <<-'EOF'
	import os, socket, sys
	d, n = os.path.split(os.path.abspath(sys.argv[1]))
	os.chdir(d)
	s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	s.bind(n)
	s.close()
	EOF
}

# A sparse file of SIZE bytes with data only in the given MiB-aligned
# extents (offset_MiB:len_MiB ...), filled with test_bytes.
mksparse() {	# FILE SIZE_BYTES off:len ...
	local f=$1 size=$2 ext off len
	shift 2
	rm -f "$f" && : >"$f" || return 1
	for ext in "$@"; do
		off=${ext%%:*} len=${ext#*:}
		test_bytes $((len * 1048576)) "$f$off" |
			dd of="$f" bs=1M seek="$off" iflag=fullblock conv=notrunc status=none || return 1
	done
	truncate -s "$size" "$f"
}

# mkfixture DIR RECIPE: build a source tree.  Recipes:
#   empty        an empty directory
#   small        ~30 entries of the common kinds (for per-syscall loops)
#   every-kind   every kind of entry and metadata autosync must carry
#                (devices, owners and capabilities only as root)
#   many[:N]     N (default 2000) small files in a 3-level tree, with
#                a few big files, symlinks, hard links and xattrs
#   mutate       the incremental pair: applied to an every-kind tree,
#                makes every kind of change (see mutate_every_kind)
#   mutate-many  changes ~10% of a "many" tree (content, renames,
#                deletes, new files, chmod, type changes)
mkfixture() {
	local dir=$1 recipe=$2
	case "$recipe" in
	empty)		mkdir -p "$dir" ;;
	small)		mkdir -p "$dir" && fixture_small_ "$dir" ;;
	every-kind)	mkdir -p "$dir" && fixture_every_kind_ "$dir" ;;
	many)		mkdir -p "$dir" && fixture_many_ "$dir" 2000 ;;
	many:*)		mkdir -p "$dir" && fixture_many_ "$dir" "${recipe#many:}" ;;
	mutate)		mutate_every_kind_ "$dir" ;;
	mutate-many)	mutate_many_ "$dir" ;;
	*)		echo "mkfixture: unknown recipe '$recipe'" >&2; return 1 ;;
	esac
}

fixture_small_() {
	local d=$1 i
	(
	cd "$d" &&
	mkdir -p a/b c &&
	for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
		echo "file $i" >"a/f$i" || exit 1
	done &&
	for i in 1 2 3 4 5 6; do
		printf 'deep %s\n' "$i" >"a/b/g$i" || exit 1
	done &&
	test_bytes 300000 small >c/big &&
	: >c/empty &&
	ln -s ../a/f1 c/rel-link &&
	ln -s /nonexistent c/dangling &&
	ln a/f2 c/hard-f2 &&
	mkfifo c/fifo &&
	chmod 0600 a/f3 && chmod 2755 a/b &&
	if test_have_prereq XATTR; then
		setfattr -n user.small -v hello a/f4 || exit 1
	fi
	) && fixture_stamp_times "$d" 1100000000
}

fixture_every_kind_() {
	local d=$1 long255 utf255 i deep
	long255=$(printf 'n%.0s' $(seq 255))
	# 85 three-byte characters = 255 bytes
	utf255=$(for i in $(seq 85); do printf '\xe2\x82\xac'; done)
	(
	cd "$d" || exit 1
	# regular files
	echo "hello, world" >regular &&
	: >empty &&
	test_bytes 8388609 big >big-8M+1 &&
	test_bytes 4096 page >exact-page &&
	printf 'no newline' >no-newline &&
	# sparse: holes at the start, middle and end; all hole; tail hole
	mksparse sparse-start-middle-end $((7 * 1048576)) 1:1 4:1 &&
	mksparse sparse-all-hole $((5 * 1048576)) &&
	mksparse sparse-data-then-hole $((3 * 1048576 + 123)) 0:1 &&
	mksparse sparse-hole-then-data $((2 * 1048576)) 1:1 &&
	# directories: nested, empty, deep (depth 200)
	mkdir -p dir/sub/subsub empty-dir &&
	echo one >dir/one && echo two >dir/sub/two && echo three >dir/sub/subsub/three &&
	deep=$(printf 'd/%.0s' $(seq 200)) && mkdir -p "deep/$deep" &&
	echo bottom >"deep/${deep}bottom" &&
	# symlinks
	ln -s regular link-rel &&
	ln -s ../regular dir/link-up &&
	ln -s /etc/hostname link-abs &&
	ln -s does/not/exist link-dangling &&
	ln -s dir link-to-dir &&
	ln -s "$(printf 'x%.0s' $(seq 1000))" link-long-target &&
	# hard links: a group of three across directories, a pair
	echo "linked content" >hl-a &&
	ln hl-a dir/hl-b && ln hl-a dir/sub/hl-c &&
	echo "pair" >pair-1 && ln pair-1 pair-2 &&
	# special files
	mkfifo fifo &&
	mksocket socket &&
	# modes
	echo suid >setuid && echo sgid >setgid &&
	mkdir sticky-dir setgid-dir &&
	echo private >mode-0600 && echo odd >mode-0741 &&
	# names
	echo 255 >"$long255" &&
	echo utf >"$utf255" &&
	echo bad >$'bad-utf8-\xff\xfe-name' &&
	echo nl >$'new\nline' &&
	echo sp >' leading space' && echo dash >-leading-dash &&
	echo at >'at@sign' && echo bs >'back\slash' && echo tab >$'tab\tname' &&
	echo utf8 >'ünïcødé-名前' &&
	mkdir $'dir-\xff' && echo inside >$'dir-\xff/f' || exit 1
	# owners, devices, trusted xattrs: root only
	if test_have_prereq ROOT; then
		mknod char-null c 1 3 &&
		mknod block-loop b 7 0 &&
		echo owned >owned-12345 && chown 12345:12345 owned-12345 &&
		mkdir owned-dir && chown 12345:54321 owned-dir &&
		ln -s regular owned-link && chown -h 12345:12345 owned-link &&
		chown 12345:12345 setuid setgid || exit 1
	fi
	chmod 4755 setuid && chmod 2755 setgid &&
	chmod 1777 sticky-dir && chmod 2775 setgid-dir &&
	chmod 0600 mode-0600 && chmod 0741 mode-0741 || exit 1
	# extended attributes
	if test_have_prereq XATTR; then
		setfattr -n user.text -v "some value" regular &&
		setfattr -n user.binary -v 0x00ff7f80fe01 regular &&
		setfattr -n user.empty regular &&
		setfattr -n user.dir -v on-a-dir dir &&
		setfattr -n user.big -v "0x$(test_bytes 2000 xattr | od -An -tx1 -v | tr -d ' \n')" big-8M+1 &&
		setfattr -n user.on-hardlink -v shared hl-a &&
		setfattr -n user.sparse -v s sparse-start-middle-end || exit 1
		if test_have_prereq ROOT; then
			setfattr -n trusted.autosync-test -v trusted regular || exit 1
		fi
	fi
	if test_have_prereq SETFACL; then
		echo acl >acl-file &&
		setfacl -m u:12345:rw,g:54321:r acl-file &&
		mkdir acl-dir &&
		setfacl -m u:12345:rwx acl-dir &&
		setfacl -d -m u:12345:rx,g::r acl-dir &&
		echo inherits >acl-dir/inherited || exit 1
	fi
	if test_have_prereq SETCAP; then
		echo cap >cap-file &&
		setcap cap_net_raw,cap_net_bind_service+ep cap-file || exit 1
	fi
	) && fixture_stamp_times "$d" 1000000000
}

fixture_many_() {
	local d=$1 n=$2
	py_ - "$d" "$n" <<-'EOF' || return 1
	import hashlib, os, sys
	root, n = sys.argv[1], int(sys.argv[2])
	def data(i, size):
	    return hashlib.shake_256(b"many%d" % i).digest(size)
	for i in range(n):
	    d = os.path.join(root, "d%02d" % (i % 20), "e%02d" % (i % 7))
	    os.makedirs(d, exist_ok=True)
	    size = [0, 17, 1000, 4096, 9000, 70000][i % 6]
	    if i % 250 == 0:
	        size = 1 << 20
	    with open(os.path.join(d, "f%05d" % i), "wb") as f:
	        f.write(data(i, size))
	    if i % 100 == 1:
	        os.symlink("f%05d" % (i - 1), os.path.join(d, "l%05d" % i))
	    if i % 100 == 2:
	        os.link(os.path.join(d, "f%05d" % i), os.path.join(d, "h%05d" % i))
	    if i % 50 == 3:
	        os.setxattr(os.path.join(d, "f%05d" % i), "user.many", b"x%d" % i)
	    if i % 10 == 4:
	        os.chmod(os.path.join(d, "f%05d" % i), 0o640)
	EOF
	fixture_stamp_times "$d" 1200000000
}

# The incremental pair for every-kind: each kind of change at once.
mutate_every_kind_() {
	(
	cd "$1" || exit 1
	# content: a few blocks of the big file, a truncation, an extension
	test_bytes 4096 m1 | dd of=big-8M+1 bs=4096 seek=100 conv=notrunc status=none &&
	test_bytes 4096 m2 | dd of=big-8M+1 bs=4096 seek=1500 conv=notrunc status=none &&
	truncate -s 5 regular &&
	echo more >>no-newline &&
	# renames: a file within and across directories, a directory
	mv exact-page exact-page.renamed &&
	mv dir/one one-moved-up &&
	mv dir/sub dir/sub-renamed &&
	# deletes: a file, a tree
	rm empty && rm -r empty-dir &&
	# type changes: file -> dir, dir -> symlink, symlink -> file
	rm pair-2 && mkdir pair-2 && echo now-a-dir >pair-2/child &&
	rm -r dir/sub-renamed/subsub && ln -s ../../regular dir/sub-renamed/subsub &&
	rm link-rel && echo was-a-link >link-rel &&
	# hard links: add one, remove one
	ln regular regular-hardlink &&
	rm dir/hl-b &&
	# metadata only
	chmod 0640 mode-0741 &&
	touch -h -d '2011-11-11 11:11:11.111111111' link-abs &&
	touch -d '2012-12-12 12:12:12.121212121' setgid &&
	# new entries of other kinds
	mkfifo fifo2 && mksocket socket2 && ln -s new-dangling link-new &&
	mksparse sparse-new $((6 * 1048576)) 2:1 || exit 1
	if test_have_prereq XATTR; then
		setfattr -n user.text -v "changed value" regular &&
		setfattr -x user.binary regular &&
		setfattr -n user.added -v 1 dir || exit 1
	fi
	if test_have_prereq SETFACL; then
		setfacl -m u:12345:r acl-file && setfacl -x g:54321 acl-file || exit 1
	fi
	if test_have_prereq SETCAP; then
		setcap cap_net_raw+ep cap-file || exit 1
	fi
	if test_have_prereq ROOT; then
		chown 23456:23456 owned-12345 || exit 1
	fi
	)
}

mutate_many_() {
	py_ - "$1" <<-'EOF'
	import hashlib, os, shutil, sys
	root = sys.argv[1]
	files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root)
	               for f in fs if f.startswith("f"))
	for k, p in enumerate(files):
	    if k % 10 == 1:            # rewrite content
	        with open(p, "wb") as f:
	            f.write(hashlib.sha512(p.encode()).digest() * 40)
	    elif k % 10 == 3:          # delete
	        os.unlink(p)
	    elif k % 10 == 5 and k % 20 == 5:    # rename
	        os.rename(p, p + ".moved")
	    elif k % 10 == 7:          # chmod only
	        os.chmod(p, 0o600)
	for i in range(100):           # new files in a new directory
	    d = os.path.join(root, "new%02d" % (i % 5))
	    os.makedirs(d, exist_ok=True)
	    with open(os.path.join(d, "n%03d" % i), "wb") as f:
	        f.write(b"new %d\n" % i * (i + 1))
	shutil.rmtree(os.path.join(root, "d19"))                      # a tree goes
	os.rename(os.path.join(root, "d18"), os.path.join(root, "d18-renamed"))
	EOF
}

# ---------------------------------------------------------------------------
# Oracles

# manifest DIR: the O1/O2 manifest, one line per entry sorted by path:
# path type mode uid gid size|rdev mtime_ns link-target sha256 hardlink-group
# xattrs (from getfattr -d -m - -e hex).  DIR/.autosync is left out.
manifest() {
	local dir=$1 xattrs=$TEST_META/manifest-xattrs.$$
	: >"$xattrs"
	if command -v getfattr >/dev/null; then
		(cd "$dir" && getfattr -R -h -P -d -m - -e hex --absolute-names . \
			>"$xattrs" 2>/dev/null)
	fi
	py_ - "$dir" "$xattrs" <<-'EOF'
	import hashlib, os, re, stat, sys
	root = os.fsencode(sys.argv[1])
	def esc(b):
	    return "".join(chr(c) if 0x21 <= c < 0x7f and c != 0x5c else "\\x%02x" % c
	                   for c in b) or "."
	def unquote(s):   # getfattr: \ooo and \\ escapes
	    return re.sub(rb"\\([0-7]{3}|\\)",
	                  lambda m: b"\\" if m.group(1) == b"\\" else bytes([int(m.group(1), 8)]), s)
	xa = {}
	cur = None
	with open(sys.argv[2], "rb") as f:
	    for line in f.read().split(b"\n"):
	        if line.startswith(b"# file: "):
	            p = unquote(line[8:])
	            p = b"" if p == b"." else p[2:] if p.startswith(b"./") else p
	            cur = xa.setdefault(p, [])
	        elif line and cur is not None:
	            cur.append(line.decode("latin-1"))
	entries = []
	def walk(rel):
	    full = os.path.join(root, rel) if rel else root
	    st = os.lstat(full)
	    entries.append((rel, st))
	    if stat.S_ISDIR(st.st_mode):
	        for n in os.listdir(full):
	            if rel == b"" and n == b".autosync":
	                continue
	            walk(os.path.join(rel, n) if rel else n)
	walk(b"")
	entries.sort(key=lambda e: e[0])
	# a link group is two or more names inside the tree: a name outside
	# it (perf's ~/.debug cache links system binaries) does not count
	groups, names = {}, {}
	for rel, st in entries:
	    if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
	        groups.setdefault((st.st_dev, st.st_ino), rel)
	        names[(st.st_dev, st.st_ino)] = names.get((st.st_dev, st.st_ino), 0) + 1
	groups = {k: v for k, v in groups.items() if names[k] > 1}
	lines = []
	for rel, st in entries:
	    m = st.st_mode
	    full = os.path.join(root, rel) if rel else root
	    t = ("d" if stat.S_ISDIR(m) else "f" if stat.S_ISREG(m) else
	         "l" if stat.S_ISLNK(m) else "p" if stat.S_ISFIFO(m) else
	         "s" if stat.S_ISSOCK(m) else "c" if stat.S_ISCHR(m) else
	         "b" if stat.S_ISBLK(m) else "?")
	    size, target, digest, group = "-", "-", "-", "-"
	    if t in "fl":
	        size = str(st.st_size)
	    if t in "cb":
	        size = "%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
	    if t == "l":
	        target = esc(os.readlink(full))
	    if t == "f":
	        h = hashlib.sha256()
	        with open(full, "rb") as f:
	            for chunk in iter(lambda: f.read(1 << 20), b""):
	                h.update(chunk)
	        digest = h.hexdigest()
	    if (st.st_dev, st.st_ino) in groups:
	        group = esc(groups[(st.st_dev, st.st_ino)])
	    x = ",".join(sorted(xa.get(rel, []))) or "-"
	    lines.append("%s %s %o %d %d %s %d %s %s %s %s\n" % (
	        esc(rel), t, stat.S_IMODE(m), st.st_uid, st.st_gid, size,
	        st.st_mtime_ns, target, digest, group, x))
	sys.stdout.write("".join(lines))
	EOF
	local rc=$?
	rm -f "$xattrs"
	return $rc
}

# The data extents of a file, by SEEK_DATA/SEEK_HOLE: "start-end" per line.
sparse_map() {
	py_ - "$1" <<-'EOF'
	import os, sys
	fd = os.open(sys.argv[1], os.O_RDONLY)
	size, off = os.fstat(fd).st_size, 0
	while off < size:
	    try:
	        start = os.lseek(fd, off, os.SEEK_DATA)
	    except OSError:
	        break
	    end = os.lseek(fd, start, os.SEEK_HOLE)
	    print("%d-%d" % (start, end))
	    off = end
	EOF
}

# The ACLs of every non-symlink entry below DIR (relative names, sorted).
acl_listing_() {
	(cd "$1" && find . -path ./.autosync -prune -o ! -type l -print0 |
		sort -z | xargs -0 -r getfacl -n -- 2>&1)
}

cap_listing_() {
	(cd "$1" && getcap -r . 2>&1 | grep -v '^\./\.autosync/' | sort)
}

# assert_same_tree SRC DST: SRC and DST are equal by rsync's opinion, by
# manifest, and by getfacl -R and getcap -r (when those exist).  On
# failure, prints what differs and returns 1.
assert_same_tree() {
	local src=$1 dst=$2 ok=0 t=$TEST_META/same.$$
	if ! test -d "$src" || ! test -d "$dst"; then
		echo "assert_same_tree: '$src' or '$dst' is not a directory" >&2
		return 1
	fi
	if command -v rsync >/dev/null; then
		rsync -naHAXc --numeric-ids --delete --exclude=/.autosync \
			--itemize-changes "$src/" "$dst/" >"$t.rsync" 2>&1 ||
			echo "(rsync exited $?)" >>"$t.rsync"
		if test -s "$t.rsync"; then
			echo "assert_same_tree: rsync -naHAXc sees differences:" >&2
			head -n 50 "$t.rsync" >&2
			ok=1
		fi
	fi
	manifest "$src" >"$t.src" && manifest "$dst" >"$t.dst" || ok=1
	if ! cmp -s "$t.src" "$t.dst"; then
		echo "assert_same_tree: manifests differ (- $src, + $dst):" >&2
		diff -u "$t.src" "$t.dst" | head -n 80 >&2
		ok=1
	fi
	if command -v getfacl >/dev/null; then
		acl_listing_ "$src" >"$t.acl-src"
		acl_listing_ "$dst" >"$t.acl-dst"
		if ! cmp -s "$t.acl-src" "$t.acl-dst"; then
			echo "assert_same_tree: getfacl differs:" >&2
			diff -u "$t.acl-src" "$t.acl-dst" | head -n 40 >&2
			ok=1
		fi
	fi
	if command -v getcap >/dev/null; then
		cap_listing_ "$src" >"$t.cap-src"
		cap_listing_ "$dst" >"$t.cap-dst"
		if ! cmp -s "$t.cap-src" "$t.cap-dst"; then
			echo "assert_same_tree: getcap -r differs:" >&2
			diff -u "$t.cap-src" "$t.cap-dst" >&2
			ok=1
		fi
	fi
	rm -f "$t".*
	return $ok
}

# assert_manifest DIR FILE: DIR's manifest equals the one saved in FILE.
assert_manifest() {
	local t=$TEST_META/am.$$
	manifest "$1" >"$t" || return 1
	if cmp -s "$2" "$t"; then
		rm -f "$t"; return 0
	fi
	echo "assert_manifest: '$1' differs from '$2' (- expected, + actual):" >&2
	diff -u "$2" "$t" | head -n 60 >&2
	rm -f "$t"
	return 1
}

# assert_old_or_new DIR OLD NEW: DIR's manifest equals OLD or NEW; sets
# old_or_new to "old" or "new".
assert_old_or_new() {
	local t=$TEST_META/oon.$$
	old_or_new=
	manifest "$1" >"$t" || return 1
	if cmp -s "$t" "$2"; then old_or_new=old
	elif cmp -s "$t" "$3"; then old_or_new=new
	else
		echo "assert_old_or_new: '$1' is neither old nor new" >&2
		echo "--- against old:" >&2; diff -u "$2" "$t" | head -n 30 >&2
		echo "--- against new:" >&2; diff -u "$3" "$t" | head -n 30 >&2
		rm -f "$t"
		return 1
	fi
	rm -f "$t"
}

# The manifest of an empty destination (missing or an empty directory):
# just the root line, whatever its times.  For old-or-new checks of full
# receives.
empty_manifest_check() {	# DIR
	test -d "$1" || return 0
	test -z "$(ls -A "$1" | grep -vx '.autosync')"
}

# ---------------------------------------------------------------------------
# autosync helpers

# The GUID of DS@SNAP as "autosync snapshots --json" prints it.
snapshot_guid() {	# DS SNAP
	autosync snapshots --json "$1" | python3 -c '
import json, sys
want = sys.argv[1]
doc = json.load(sys.stdin)
if isinstance(doc, dict):
    doc = doc.get("snapshots", [])
for s in doc:
    if s.get("name") == want or s.get("name", "").endswith("@" + want):
        print(s["guid"])
        sys.exit(0)
sys.exit(1)
' "$2"
}

cd "$TRASH_DIRECTORY" || BAIL_OUT "cannot enter the trash directory"

if ! test -x "$AUTOSYNC"; then
	BAIL_OUT "no autosync binary at '$AUTOSYNC' (run make, or set AUTOSYNC)"
fi
