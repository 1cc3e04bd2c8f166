#!/bin/bash
test_description='the receiver'"'"'s writer thread (src/driver/dir_writer.c)

A receive writes and closes staged regular files in a second thread
while its main thread reads the stream and creates entries.  Checked: the
tree is the same with and without the thread ($AUTOSYNC_RECV_THREAD=0);
a receive stopped and killed inside the writer thread (full, incremental,
and a sync'"'"'s receiving child) leaves, after recover, the destination
at its previous snapshot, and the next receive completes it; an error in
the writer thread fails the receive with its class, drops the stage and
keeps the previous snapshot.  The fault site recv_wdata is reached only
by the writer thread (before each data write it does).'
. "$(dirname "$0")/test-lib.sh"

# threads PID: how many threads the process has
threads() { ls "/proc/$1/task" | wc -l; }

# stop_kill CMD: run CMD (a string, in its own session) until a fault
# stops it, record its threads in $nthreads, kill -9 its process group
stop_kill() {
	local pid
	test_bg "setsid $1"
	pid=$test_bg_pid
	test_wait_stopped "$pid" || { test_kill "$pid"; return 1; }
	nthreads=$(threads "$pid")
	kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid"
	{ wait "$pid"; } 2>/dev/null
	test_wait_session "$pid"
}

test_expect_success 'setup: a 2000-file tree, its full and incremental streams' '
	mkfixture src many:600 &&
	autosync snapshot src@s1 &&
	autosync send src@s1 >full.as &&
	manifest src >m1 &&
	mkfixture src mutate-many &&
	autosync snapshot src@s2 &&
	autosync send -i @s1 src@s2 >incr.as &&
	manifest src >m2 &&
	! cmp -s m1 m2
'

test_expect_success 'with and without the writer thread: the same trees' '
	autosync receive d1 <full.as &&
	AUTOSYNC_RECV_THREAD=0 autosync receive d0 <full.as &&
	assert_manifest d1 m1 &&
	assert_manifest d0 m1 &&
	autosync receive d1 <incr.as &&
	AUTOSYNC_RECV_THREAD=0 autosync receive d0 <incr.as &&
	assert_manifest d1 m2 &&
	assert_manifest d0 m2 &&
	rm -rf d0 d1
'

test_expect_success 'a full receive killed in its writer thread: nothing, then the tree' '
	stop_kill "env AUTOSYNC_FAULT=recv_wdata:STOP:100 autosync receive dk <full.as" &&
	test "$nthreads" = 2 &&
	autosync recover dk &&
	test -z "$(ls -A dk | grep -vx .autosync)" &&
	test_path_is_missing dk/.autosync/stage &&
	autosync receive dk <full.as &&
	assert_manifest dk m1
'

test_expect_success 'an incremental killed in its writer thread: the old tree, then the new' '
	stop_kill "env AUTOSYNC_FAULT=recv_wdata:STOP:20 autosync receive dk <incr.as" &&
	test "$nthreads" = 2 &&
	autosync recover dk &&
	assert_manifest dk m1 &&
	test_path_is_missing dk/.autosync/stage &&
	autosync receive dk <incr.as &&
	assert_manifest dk m2 &&
	rm -rf dk
'

test_expect_success 'without the thread the same stop finds one thread (the test can tell)' '
	autosync receive dk <full.as &&
	stop_kill "env AUTOSYNC_RECV_THREAD=0 AUTOSYNC_FAULT=recv_stage:STOP:30 autosync receive dk <incr.as" &&
	test "$nthreads" = 1 &&
	autosync recover dk &&
	assert_manifest dk m1 &&
	rm -rf dk
'

test_expect_success 'a sync whose receiving child is killed in its writer thread' '
	rm -rf s && cp -a src s &&
	autosync sync s ds &&
	assert_manifest ds m2 &&
	manifest ds >before &&
	py_ - s <<-\EOF &&
	import os, sys
	for i in range(200):
	    d = os.path.join(sys.argv[1], "late%d" % (i % 4))
	    os.makedirs(d, exist_ok=True)
	    with open(os.path.join(d, "x%03d" % i), "wb") as f:
	        f.write(b"late %d\n" % i * (i + 50))
	EOF
	manifest s >after &&
	test_expect_code 40 env AUTOSYNC_FAULT=recv_wdata:KILL:50 \
		autosync sync s ds 2>err &&
	test_grep "killed by signal 9" err &&
	autosync recover ds &&
	assert_manifest ds before &&
	autosync sync s ds &&
	assert_manifest ds after &&
	rm -rf s ds
'

test_expect_success 'an error in the writer thread: IO (40), the old tree, no stage' '
	autosync receive de <full.as &&
	test_expect_code 40 env AUTOSYNC_FAULT=recv_wdata:EIO:30 \
		autosync receive de <incr.as 2>err &&
	test_grep "stage .*Input/output error" err &&
	assert_manifest de m1 &&
	test_path_is_missing de/.autosync/stage &&
	test_path_is_missing de/.autosync/journal &&
	autosync receive de <incr.as &&
	assert_manifest de m2
'

test_expect_success 'ENOSPC in the writer thread of a full receive: NOSPACE (41), nothing kept' '
	test_expect_code 41 env AUTOSYNC_FAULT=recv_wdata:ENOSPC:5 \
		autosync receive dn <full.as 2>err &&
	test_grep "No space left" err &&
	test -z "$(ls -A dn | grep -vx .autosync)" &&
	test_path_is_missing dn/.autosync/stage &&
	autosync receive dn <full.as &&
	assert_manifest dn m1
'

test_done
