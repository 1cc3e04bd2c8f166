#!/bin/bash
test_description='service: a continuous run scans only the directories its
change journal names (the rest is copied from the base catalog), and
scans everything after an overflow of the journal, a restart, or when
full_scan_interval has passed (which also finds what the journal cannot
hear: a write through a hard link outside the tree)'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-service.sh"

# "scan narrowed to K directories: N entries stat'ed" lines, as "K N"
narrowed() {
	autosync log c | sed -n "s/.*scan narrowed to \([0-9]*\) director[a-z]*: \([0-9]*\) entries stat'ed.*/\1 \2/p"
}
count() { autosync log c | grep -c -- "$1" || :; }

test_expect_success 'setup: 20 directories of 10 files, a continuous service' '
	for d in $(seq 10 29); do
		mkdir -p src/d$d &&
		for f in 0 1 2 3 4 5 6 7 8 9; do
			echo "$d $f" >src/d$d/f$f || return 1
		done
	done &&
	autosync create c --source "$PWD/src" --dest "$PWD/dst" \
		--continuous 1s --trace-level 3 &&
	# the narrowed scans with inotify, which hears only the tree (t7015
	# runs them with fanotify, on a file system of its own)
	autosync set c journal=inotify &&
	start_daemon &&
	wait_for 30 same src dst &&
	log_has c "scan full: 221 entries stat" &&
	wait_for 10 prop_ge c successes 1
'

test_expect_success 'changes in several directories: only those are stat-ed' '
	n=$(narrowed | wc -l) &&
	echo new >src/d12/new &&
	echo new >src/d17/new &&
	echo changed >src/d25/f3 &&
	wait_for 20 same src dst &&
	wait_for 10 eval "test \$(narrowed | wc -l) -gt $n" &&
	narrowed | tail -n +$((n + 1)) >runs &&
	cat runs &&
	# the root, then per directory itself and its 11 or 10 entries
	k=0 &&
	while read dirs stats; do
		test "$stats" -ge $((1 + 11 * dirs)) &&
		test "$stats" -le $((1 + 12 * dirs)) &&
		k=$((k + dirs)) || return 1
	done <runs &&
	test $k -eq 3 &&
	log_has c "copied from the base"
'

test_expect_success 'a journal overflow scans everything' '
	n=$(count "scan full") &&
	# more events than either journal queues (fanotify merges events
	# of one name still queued, a create with its unlink too: more
	# distinct names than that)
	max=$(cat /proc/sys/fs/inotify/max_queued_events \
		/proc/sys/fs/fanotify/max_queued_events 2>/dev/null |
		sort -n | tail -1) &&
	test_kill $daemon_pid STOP &&
	python3 - "$max" <<-\EOF &&
	import os, sys
	n = int(sys.argv[1]) + 1000
	for i in range(n):
	    os.mknod("src/d20/tmp%d" % i)
	for i in range(n):
	    os.unlink("src/d20/tmp%d" % i)
	EOF
	echo after-overflow >src/d20/f0 &&
	test_kill $daemon_pid CONT &&
	wait_for 20 same src dst &&
	wait_for 10 eval "test \$(count \"scan full\") -gt $n" &&
	log_has c "changes: everything (a new journal, an overflow"
'

test_expect_success 'a restart scans everything' '
	stop_daemon &&
	n=$(count "scan full") &&
	echo while-down >src/d11/down &&
	start_daemon &&
	wait_for 20 same src dst &&
	wait_for 10 eval "test \$(count \"scan full\") -gt $n" &&
	# the destination has a journal now: its drift check narrows too
	echo more >src/d13/more &&
	wait_for 20 same src dst &&
	wait_for 10 log_has c "destination drift check narrowed"
'

test_expect_success 'full_scan_interval: a full scan finds a write the journal missed' '
	wait_for 10 prop_ge c successes 4 &&
	n=$(count "full_scan_interval passed") &&
	ln src/d14/f4 outside-link &&
	sleep 1.5 &&
	echo "written through a name outside the tree" >outside-link &&
	autosync set c full_scan_interval=3s &&
	# (the trees differ in link counts now: compare the file)
	wait_for 30 cmp -s src/d14/f4 dst/d14/f4 &&
	test "$(count "full_scan_interval passed")" -gt $n &&
	stop_daemon
'

test_done
