#!/bin/bash
test_description='service: the change journal of a continuous service is
fanotify where it can be (one file system mark) and inotify otherwise
(one watch per directory); the journal property picks one; either way a
change is replicated by a run narrowed to the changed directories, and
an overflow of the journal scans everything; without CAP_SYS_ADMIN, or
on a file system without file handles (overlayfs), the daemon uses
inotify and says why in the service log'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-service.sh"

# FANOTIFY: this kernel and this process can mark a file system with
# FAN_REPORT_DFID_NAME (root with CAP_SYS_ADMIN, kernel >= 5.9)
fanotify_ok() {
	python3 - "$TRASH_DIRECTORY" <<-\EOF
	import ctypes, sys
	libc = ctypes.CDLL(None, use_errno=True)
	libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint,
	    ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
	fd = libc.fanotify_init(0xc00, 0)	# FAN_REPORT_DFID_NAME
	sys.exit(fd < 0 or libc.fanotify_mark(fd, 0x101, 0x100, -100,
	    sys.argv[1].encode()) != 0)	# FILESYSTEM, FAN_CREATE
	EOF
}
if ! test_have_prereq ROOT,PYTHON3 || ! fanotify_ok; then
	test_skip_all "needs root with CAP_SYS_ADMIN and fanotify with FAN_REPORT_DFID_NAME"
fi
command -v setpriv >/dev/null && test_set_prereq SETPRIV
grep -qw overlay /proc/filesystems && test_set_prereq OVERLAY

# Everything on a tmpfs of its own where one can be mounted: a fanotify
# mark hears its whole file system, and on a busy shared one an overflow
# (a full scan) could come at any time and fail the narrowed counts.
if test_have_prereq TMPFS; then
	mkdir fs &&
	test_mount -t tmpfs -o size=256m tmpfs fs &&
	cd fs || BAIL_OUT "cannot mount a tmpfs"
	TRASH_DIRECTORY=$TRASH_DIRECTORY/fs
fi

# "scan narrowed to K directories: N entries stat'ed" lines of service
# $1, as "K N"
narrowed() {
	autosync log "$1" | sed -n "s/.*scan narrowed to \([0-9]*\) director[a-z]*: \([0-9]*\) entries stat'ed.*/\1 \2/p"
}
count() { autosync log "$1" | grep -c -- "$2" || :; }

# changed_narrowed SVC K CMD...: after CMD, the source and the
# destination are the same again through runs narrowed to K directories
# in all (none of them a full scan)
changed_narrowed() {
	local svc=$1 k=$2 n f dirs stats sum=0
	shift 2
	n=$(narrowed "$svc" | wc -l)
	f=$(count "$svc" "scan full")
	"$@" &&
	wait_for 20 same "src-$svc" "dst-$svc" &&
	wait_for 10 eval "test \$(narrowed $svc | wc -l) -gt $n" || return 1
	narrowed "$svc" | tail -n +$((n + 1)) >runs
	cat runs
	while read dirs stats; do
		sum=$((sum + dirs))
	done <runs
	test $sum -eq "$k" && test "$(count "$svc" "scan full")" = "$f"
}

tree() {	# DIR: 10 directories of 10 files
	local d f
	for d in 0 1 2 3 4 5 6 7 8 9; do
		mkdir -p "$1/d$d" &&
		for f in 0 1 2 3 4 5 6 7 8 9; do
			echo "$d $f" >"$1/d$d/f$f" || return 1
		done
	done
}

test_expect_success 'journal=fanotify: one mark, changes replicated narrowed' '
	tree src-c &&
	autosync create c --source "$PWD/src-c" --dest "$PWD/dst-c" \
		--continuous 1s --trace-level 3 &&
	test_must_fail autosync set c journal=dnotify 2>err &&
	test_grep "journal: expected auto, fanotify or inotify, not .dnotify." err &&
	autosync set c journal=fanotify &&
	start_daemon &&
	wait_for 30 same src-c dst-c &&
	log_has c "change journal of the source: fanotify (1 file system mark, set up in" &&
	log_has c "change journal of the destination: fanotify" &&
	wait_for 10 prop_ge c successes 1 &&
	changed_narrowed c 2 eval "echo new >src-c/d2/new && echo changed >src-c/d7/f3"
'

test_expect_success 'journal=inotify: a new journal (a full scan), then narrowed' '
	f=$(count c "scan full") &&
	autosync set c journal=inotify &&
	wait_for 10 log_has c "change journal of the source: inotify (11 directory watches, set up in" &&
	wait_for 10 eval "test \$(count c \"scan full\") -gt $f" &&
	wait_for 10 prop_is c state online &&
	changed_narrowed c 2 eval "echo new >src-c/d3/new && rm src-c/d8/f1" &&
	# a directory moved in from outside the tree: listed whole
	mkdir -p outside/sub && echo x >outside/sub/g &&
	changed_narrowed c 3 mv outside src-c/d4/moved
'

test_expect_success 'fanotify: an overflow of its queue scans everything' '
	e0=$(count c "changes: everything (a new journal") &&
	autosync set c journal=fanotify &&
	wait_for 10 eval "test \$(count c \"change journal of the source: fanotify\") -eq 2" &&
	# the new journal'"'"'s first run scans everything: wait for it, or it
	# may take the change below and leave no narrowed run to see
	wait_for 20 eval "test \$(count c \"changes: everything (a new journal\") -gt $e0" &&
	wait_for 20 same src-c dst-c &&
	wait_for 10 prop_is c state online &&
	changed_narrowed c 1 eval "echo before >src-c/d1/before" &&
	n=$(count c "changes: everything (a new journal, an overflow") &&
	max=$(cat /proc/sys/fs/fanotify/max_queued_events) &&
	test_kill $daemon_pid STOP &&
	python3 - "$max" <<-\EOF &&
	import os, sys
	n = int(sys.argv[1]) + 1000	# distinct names: no merging
	for i in range(n):
	    os.mknod("src-c/d5/tmp%d" % i)
	for i in range(n):
	    os.unlink("src-c/d5/tmp%d" % i)
	EOF
	echo after-overflow >src-c/d6/f0 &&
	test_kill $daemon_pid CONT &&
	wait_for 20 same src-c dst-c &&
	wait_for 10 eval "test \$(count c \"changes: everything (a new journal, an overflow\") -gt $n" &&
	# the same journal (no new one), which overflowed
	test "$(count c "change journal of the source")" = 3 &&
	autosync log c | tail -n 30 | grep "changes: everything" &&
	# and then narrowed again
	changed_narrowed c 1 eval "echo after >src-c/d9/after"
'

test_expect_success SETPRIV 'without CAP_SYS_ADMIN: inotify, saying why' '
	stop_daemon &&
	autosync set c journal=auto &&
	echo while-down >src-c/d0/down &&
	test_bg "setpriv --bounding-set -sys_admin --inh-caps -sys_admin autosync daemon 2>>daemon.log" &&
	daemon_pid=$test_bg_pid &&
	wait_for 10 test -S "$AUTOSYNC_STATE_DIR/autosync.sock" &&
	wait_for 20 same src-c dst-c &&
	wait_for 10 log_has c "change journal of the source: inotify (13 directory watches, set up in [0-9.]* s); fanotify not used: fanotify_mark .*: Operation not permitted (needs CAP_SYS_ADMIN)" &&
	wait_for 10 prop_is c state online &&
	changed_narrowed c 1 eval "echo x >src-c/d0/x"
'

test_expect_success SETPRIV 'journal=fanotify without CAP_SYS_ADMIN: no journal, full scans' '
	f=$(count c "scan full") &&
	autosync set c journal=fanotify &&
	wait_for 10 log_has c "change journal of the source: none (journal=fanotify): fanotify_mark .*: Operation not permitted (needs CAP_SYS_ADMIN)" &&
	echo y >src-c/d0/y &&
	wait_for 20 same src-c dst-c &&
	wait_for 10 eval "test \$(count c \"scan full\") -gt $f" &&
	echo z >src-c/d0/z &&
	wait_for 20 same src-c dst-c &&
	stop_daemon &&
	# said once, not after each run
	test "$(count c "change journal of the source: none")" = 1
'

test_expect_success OVERLAY 'a source on overlayfs (no file handles): inotify' '
	autosync disable c &&
	mkdir -p ov/lower ov/upper ov/work src-o &&
	test_mount -t overlay overlay \
		-o "lowerdir=$PWD/ov/lower,upperdir=$PWD/ov/upper,workdir=$PWD/ov/work" \
		src-o &&
	tree src-o &&
	autosync create o --source "$PWD/src-o" --dest "$PWD/dst-o" \
		--continuous 1s --trace-level 3 &&
	start_daemon &&
	wait_for 30 same src-o dst-o &&
	log_has o "change journal of the source: inotify (11 directory watches, set up in [0-9.]* s); fanotify not used: .*: Operation not supported (no file handles here)" &&
	wait_for 10 log_has o "change journal of the destination: fanotify" &&
	wait_for 10 prop_is o state online &&
	changed_narrowed o 1 eval "echo z >src-o/d3/z" &&
	stop_daemon &&
	test_umount src-o
'

cd "${TRASH_DIRECTORY%/fs}" &&
TRASH_DIRECTORY=$(pwd -P)

test_done
