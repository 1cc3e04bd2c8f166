#!/bin/bash
test_description='service: trace_level 0-3 decides what runs log, and a
change reaches a running run; rate_limit changes reach the running run;
log -f follows'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-service.sh"

test_expect_success 'trace_level 0 logs failures only, 2 the run details' '
	mkfixture src small &&
	autosync create q --source "$PWD/src" --dest "$PWD/dst" --every 1d \
		--trace-level 0 &&
	autosync run q &&
	! log_has q "run [0-9]* ok" &&
	prop_is q successes 1 &&
	autosync set q trace_level=1 &&
	echo a >src/a1 && autosync run q &&
	log_has q "run [0-9]* ok" &&
	! log_has q "entries scanned" &&
	autosync set q trace_level=2 &&
	echo b >src/b1 && autosync run q &&
	log_has q "snapshot autosync_.*incremental from autosync_.*entries scanned" &&
	log_has q "q-latest is autosync_" &&
	! log_has q "scan .* s, run .* s" &&
	autosync set q trace_level=3 &&
	autosync run q &&
	log_has q "scan .* s, run .* s" &&
	log_has q "run [0-9]* started (pid [0-9]*)" &&
	autosync set q trace_level=0 "dest=$PWD/nope" 2>err;
	test_grep "unknown or read-only property" err &&
	prop_is q trace_level 3
'

test_expect_success 'a failure is logged at trace_level 0' '
	autosync set q trace_level=0 &&
	: >notadir &&
	autosync create f --source "$PWD/src" --dest "$PWD/notadir/d" \
		--every 1d --trace-level 0 &&
	test_must_fail autosync run f &&
	log_has f "run [0-9]* failed (IO, TEMP)"
'

# slow pre hook: says "early", marks that it started, sleeps, says "late";
# the daemon runs the new service at once (it never ran)
test_expect_success 'trace_level and rate_limit changes reach a running run' '
	cat >slow.sh <<-EOF &&
	#!/bin/sh
	echo early
	: >"$PWD/slow.started"
	sleep 3
	echo late
	EOF
	chmod +x slow.sh &&
	autosync create s --source "$PWD/src" --dest "$PWD/dst-s" --every 1d \
		--pre-hook "$PWD/slow.sh" --rate-limit 10M &&
	start_daemon &&
	wait_for 10 test -e slow.started &&
	sleep 1 &&
	prop_is s state running &&
	autosync set s trace_level=3 rate_limit=1M &&
	wait_for 10 log_has s "rate limit now 1048576 bytes/s" &&
	autosync set s rate_limit=0 &&
	wait_for 10 log_has s "rate limit now none" &&
	wait_for 20 prop_is s successes 1 &&
	log_has s "pre hook: late" &&
	! log_has s "pre hook: early" &&
	assert_same_tree src dst-s
'

oks_are() { test "$(grep -c "run [0-9]* ok" follow.out)" = "$1"; }

test_expect_success 'log -f follows new events and ends when the service is destroyed' '
	autosync set s pre_hook= &&
	test_bg "autosync log -f s >follow.out 2>follow.err" &&
	fpid=$test_bg_pid &&
	wait_for 10 grep -q "s-latest is" follow.out &&
	test "$(grep -c "run [0-9]* ok" follow.out)" = 1 &&
	autosync run s --wait &&
	wait_for 10 oks_are 2 &&
	autosync disable s &&
	autosync destroy s &&
	wait "$fpid" &&
	test_grep "was destroyed" follow.err &&
	test "$(grep -c "run [0-9]* ok" follow.out)" = 2 &&
	stop_daemon
'

test_done
