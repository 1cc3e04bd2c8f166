# lib-zfs.sh - real ZFS pools for the t3xxx tests (source after test-lib.sh).
#
# Scripts that use it run one at a time on a machine (a flock on
# ${TMPDIR:-/tmp}/autosync-zfs-tests.lock): zfs-fuse does not survive two
# of them mounting at once.
#
# zfs_setup starts the zfs-fuse daemon if none is running (only one can
# run on a machine: a running one is shared, never stopped), and skips
# the whole script with the reason when ZFS cannot work here (not root,
# no zfs-fuse, no /dev/fuse, a daemon that does not answer).  Pools are
# named astest_$$_NAME on image files in the trash directory, mounted
# below it, and destroyed at exit; the daemon is stopped (by its PID)
# only if this script started it.
#
# The zrepl-style shim: $ZFS_SHIM/zfs logs every argv (one line, the
# arguments separated by spaces) to $ZFS_LOG and execs the real zfs;
# as_zfs runs autosync with the shim first on PATH, so that the log
# holds exactly the commands autosync ran.  With ZFS_SHIM_SLOW=1 in the
# environment, `zfs send` is throttled to about 4 MiB/s (to interrupt
# a transfer in its middle).  With ZFS_SHIM_FAIL_RECV=DATASET, a `zfs
# receive` into DATASET reads its stream and fails.

ZFS_POOL_PREFIX=astest_$$
ZFS_SHIM=$TEST_META/zfs-shim
ZFS_LOG=$TRASH_DIRECTORY/zfs-commands.log
ZFS_REAL=$(command -v zfs 2>/dev/null)
zfs_started_pid=

zfs_daemon_ok_() {
	timeout 10 zpool list >/dev/null 2>&1
}

zfs_setup() {
	local i
	test "$(id -u)" = 0 || { test_skip_all "ZFS tests need root"; return 1; }
	command -v zfs-fuse >/dev/null && test -n "$ZFS_REAL" ||
		{ test_skip_all "zfs-fuse is not installed (apt-get install zfs-fuse)"; return 1; }
	test -c /dev/fuse ||
		{ test_skip_all "no /dev/fuse: zfs-fuse cannot run here"; return 1; }
	# One ZFS test script at a time on a machine: zfs-fuse wedged (every
	# FUSE request hung) when two scripts mounted at the same moment.
	exec {zfs_lock_fd}>>"${TMPDIR:-/tmp}/autosync-zfs-tests.lock" ||
		{ test_skip_all "cannot open the ZFS test lock"; return 1; }
	flock -w 240 "$zfs_lock_fd" ||
		{ test_skip_all "another ZFS test script held the lock for 240 s"; return 1; }
	if ! zfs_daemon_ok_; then
		zfs-fuse --no-daemon --no-kstat-mount \
		    >"$TEST_META/zfs-fuse.log" 2>&1 &
		zfs_started_pid=$!
		for i in $(seq 100); do
			zfs_daemon_ok_ && break
			kill -0 "$zfs_started_pid" 2>/dev/null || break
			sleep 0.1
		done
		if ! zfs_daemon_ok_; then
			zfs_stop_daemon_
			test_skip_all "the zfs-fuse daemon did not start: $(tail -n 3 "$TEST_META/zfs-fuse.log" | tr '\n' ' ')"
			return 1
		fi
	fi
	mkdir -p "$ZFS_SHIM" "$TRASH_DIRECTORY/mnt" || return 1
	cat >"$ZFS_SHIM/zfs" <<EOF
#!/bin/bash
printf '%s\n' "\$*" >>"$ZFS_LOG"
if test -n "\$ZFS_SHIM_FAIL_RECV" && test "\$1" = receive &&
    test "\${@: -1}" = "\$ZFS_SHIM_FAIL_RECV"; then
	cat >/dev/null
	echo "cannot receive: injected failure" >&2
	exit 1
fi
if test -n "\$ZFS_SHIM_SLOW" && test "\$1" = send; then
	set -o pipefail
	"$ZFS_REAL" "\$@" | "$TEST_PYTHON" -S -c '
import sys, time
i, o = sys.stdin.buffer, sys.stdout.buffer
while True:
    b = i.read(262144)
    if not b:
        break
    o.write(b); o.flush(); time.sleep(0.06)
'
	exit
fi
exec "$ZFS_REAL" "\$@"
EOF
	chmod +x "$ZFS_SHIM/zfs"
	: >"$ZFS_LOG"
	return 0
}

zfs_stop_daemon_() {
	local i
	test -n "$zfs_started_pid" || return 0
	kill -TERM "$zfs_started_pid" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$zfs_started_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$zfs_started_pid" 2>/dev/null
	wait "$zfs_started_pid" 2>/dev/null
	zfs_started_pid=
}

# zfs_pool NAME [SIZE]: create pool astest_$$_NAME; echo its name.
zfs_pool() {
	local p=${ZFS_POOL_PREFIX}_$1 size=${2:-256M}
	truncate -s "$size" "$TRASH_DIRECTORY/$p.img" &&
	zpool create -m "$TRASH_DIRECTORY/mnt/$p" "$p" \
	    "$TRASH_DIRECTORY/$p.img" >/dev/null 2>&1 || return 1
	echo "$p"
}

# Destroy a file system or snapshot, retrying while zfs-fuse says busy.
zfs_destroy_retry() {
	local i
	for i in $(seq 30); do
		zfs destroy "$@" 2>/dev/null && return 0
		sleep 0.2
	done
	zfs destroy "$@"
}

zfs_teardown_() {
	local p i
	# by name: zfs_pool runs in $(...), so no list of them survives
	test -n "$ZFS_REAL" && zfs_daemon_ok_ &&
	for p in $(zpool list -H -o name 2>/dev/null |
	    grep "^${ZFS_POOL_PREFIX}_"); do
		# zfs-fuse can stay busy for seconds after a failed test
		for i in $(seq 30); do
			zpool destroy -f "$p" 2>/dev/null && break
			sleep 1
		done
		zpool list "$p" >/dev/null 2>&1 &&
			echo "# teardown: cannot destroy pool '$p'" >&2
		rm -f "$TRASH_DIRECTORY/$p.img"
	done
	zfs_stop_daemon_
}

# Chain our teardown before test-lib's cleanup (pools first, then the
# daemon, then test-lib's processes and mounts).  The cleanup, not the
# exit handler: test_done runs it before it checks that nothing is left
# mounted below the trash directory, and the pools' mounts are there (a
# teardown at exit came after that check, so every trash was kept).
# The exit handler runs the cleanup again: a second teardown finds no
# pool and no daemon of ours.
eval "$(declare -f test_cleanup_all_ |
	sed '1s/test_cleanup_all_/zfs_lib_cleanup_all_/')"
test_cleanup_all_() {
	zfs_teardown_
	zfs_lib_cleanup_all_
}

# autosync with the logging shim first on PATH.
as_zfs() {
	PATH=$ZFS_SHIM:$PATH autosync "$@"
}

# The GUID of a snapshot or dataset.
zguid() {
	zfs get -H -p -o value guid "$1"
}

# The newest snapshot name (after '@') of dataset $1.
znewest() {
	zfs list -H -t snapshot -o name -s createtxg -r "$1" 2>/dev/null |
		grep "^$1@" | tail -n 1 | sed 's/.*@//'
}

# Compare the content of two mounted trees (ignoring autosync's state).
zsame_tree() {
	diff -r --exclude=.autosync "$1" "$2"
}

# The test-only front end of the driver's mount functions.
ZFSTOOL=${ZFSTOOL:-$TEST_ROOT/build/tests/zfstool}
zfstool() {
	"$ZFSTOOL" "$@"
}
