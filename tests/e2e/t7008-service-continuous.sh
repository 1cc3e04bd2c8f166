#!/bin/bash
test_description='service: a continuous service watches its source (change
journal): an unchanged tree is not scanned every interval, a change is
replicated at once, new directories are watched, a moved directory is
replicated, a restart scans everything'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-service.sh"

ok_runs() { autosync log c | grep -c "run [0-9]* ok"; }
runs_are() { test "$(ok_runs)" = "$1"; }

test_expect_success 'an idle continuous service does not run every second' '
	mkfixture src small &&
	autosync create c --source "$PWD/src" --dest "$PWD/dst" \
		--continuous 1s --trace-level 3 &&
	# inotify hears this tree only: a fanotify mark hears the whole shared
	# disk, whose bursts may overflow its queue and add a (correct, full)
	# run to the idle count; t7015 tests fanotify on a tmpfs of its own
	autosync set c journal=inotify &&
	start_daemon &&
	wait_for 20 same src dst &&
	log_has c "changes: everything" &&
	wait_for 10 prop_ge c successes 1 &&
	n=$(ok_runs) &&
	sleep 3 &&
	test "$(ok_runs)" -le $((n + 1)) &&
	m=$(ok_runs) &&
	sleep 3 &&
	runs_are $m
'

test_expect_success 'a change is replicated, and the run names its directory' '
	echo changed >src/a/new-file &&
	wait_for 10 same src dst &&
	wait_for 10 log_has c "changes: 1 directory: .a." &&
	sleep 1 &&
	m=$(ok_runs) &&
	sleep 2 &&
	runs_are $m
'

test_expect_success 'a new directory is watched from then on' '
	mkdir -p src/fresh/deep &&
	echo 1 >src/fresh/deep/one &&
	wait_for 10 same src dst &&
	sleep 1 &&
	echo 2 >src/fresh/deep/two &&
	wait_for 10 same src dst &&
	wait_for 10 log_has c "changes: 1 directory: .fresh/deep."
'

test_expect_success 'a moved directory is replicated, a restart scans everything' '
	mv src/fresh src/moved &&
	wait_for 10 same src dst &&
	echo 3 >src/moved/deep/three &&
	wait_for 10 same src dst &&
	wait_for 10 log_has c "changes: 1 directory: .moved/deep." &&
	stop_daemon &&
	n=$(autosync log c | grep -c "changes: everything") &&
	echo while-down >src/moved/down &&
	start_daemon &&
	wait_for 20 same src dst &&
	test "$(autosync log c | grep -c "changes: everything")" -gt $n &&
	stop_daemon
'

test_done
