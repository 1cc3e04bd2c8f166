#!/bin/bash
test_description='service: create, list, show, set, get, destroy; a daemon
that keeps a tree in sync; maintenance after repeated failures and clear;
kill -9 of the daemon, then a restart that carries on'
. "$(dirname "$0")/test-lib.sh"

DB=$AUTOSYNC_STATE_DIR/autosync.db

. "$TEST_DIRECTORY/lib-service.sh"

test_expect_success 'create, list, show, get, set, destroy' '
	mkdir src0 &&
	autosync create one --source "$PWD/src0" --dest "$PWD/dst0" \
		--every 15m --rate-limit 10M &&
	autosync create two --source "$PWD/src0" --dest "$PWD/dst1" \
		--cron "0 2 * * *" &&
	autosync create three --source "$PWD/src0" --dest "$PWD/dst2" \
		--once-at 2036-12-24T02:00 &&
	autosync create four --source "$PWD/src0" --dest "$PWD/dst3" \
		--every 1d --at 02:30 &&
	test_must_fail autosync create one --source a --dest b --every 1m &&
	test_must_fail autosync create bad --source a --dest b &&
	test_must_fail autosync create bad --source a --dest b --every 0s &&
	test_must_fail autosync create -- -x --source a --dest b --every 1m &&
	autosync list >list.out &&
	test_grep "^one  *online  *every 15m" list.out &&
	test_grep "^four .*every 1d at 02:30" list.out &&
	test_grep "^three .*once 2036-12-24T02:00:00Z" list.out &&
	autosync list --json | python3 -m json.tool >/dev/null &&
	autosync show one --json | python3 -m json.tool >/dev/null &&
	prop_is one rate_limit 10M &&
	prop_is one keep_dst 1 &&
	prop_is one latest on &&
	test_must_fail autosync create five --source "$PWD/src0" \
		--dest "$PWD/dst4" --every 1m --keep-dst 7 2>err &&
	test_grep "a directory destination holds one snapshot" err &&
	autosync create five --source "$PWD/src0" \
		--dest "$PWD/dst4" --every 1m -N &&
	prop_is five recursive off &&
	autosync destroy five &&
	test_must_fail autosync get five state &&
	prop_is one state online &&
	prop_is one successes 0 &&
	autosync set one rate_limit=20M "schedule=every 2h" &&
	prop_is one rate_limit 20M &&
	autosync set one trace_level=3 &&
	prop_is one trace_level 3 &&
	prop_is one schedule "every 2h" &&
	test_must_fail autosync set one state=online &&
	test_must_fail autosync set one trace_level=4 &&
	test_must_fail autosync set one "schedule=sometimes" &&
	prop_is one trace_level 3 &&
	test_must_fail autosync get one nosuch &&
	autosync disable one && prop_is one state disabled &&
	autosync enable one && prop_is one state online &&
	for s in one two three four; do autosync destroy $s || return 1; done &&
	test_must_fail autosync show one &&
	autosync list --json >l.json && test "$(cat l.json)" = "[]"
'

test_expect_success 'run in the foreground without a daemon' '
	mkfixture src small &&
	autosync create fg --source "$PWD/src" --dest "$PWD/fgdst" --every 1d &&
	autosync run fg &&
	assert_same_tree src fgdst &&
	prop_is fg successes 1 &&
	autosync log fg >log.out &&
	test_grep "run 1 ok" log.out &&
	autosync destroy fg
'

test_expect_success 'a daemon keeps a 1s service in sync' '
	autosync create live --source "$PWD/src" --dest "$PWD/dst" --every 1s &&
	start_daemon &&
	wait_for 20 same src dst &&
	echo changed >src/a/new-file &&
	wait_for 20 same src dst &&
	wait_for 10 prop_ge live successes 2 &&
	autosync show live --json >show.json &&
	python3 -m json.tool show.json >/dev/null &&
	python3 -c "
import json, sys
d = json.load(open(\"show.json\"))
assert d[\"state\"] in (\"online\", \"running\"), d
assert d[\"successes\"] >= 2 and d[\"failures\"] == 0, d
assert d[\"last_success\"] is not None and d[\"last_replic_time\"] >= 0, d
assert d[\"next_run\"] is not None, d
" &&
	autosync run live --wait &&
	test_must_fail autosync daemon
'

test_expect_success 'a failing destination: maintenance after retries, clear' '
	: >notadir &&
	mkfixture src2 small &&
	autosync create bad --source "$PWD/src2" --dest "$PWD/notadir/dst" \
		--every 1s --retries 3 &&
	wait_for 30 prop_is bad state maintenance &&
	prop_is bad failures 3 &&
	prop_is bad consecutive_failures 3 &&
	prop_is bad last_errcode IO &&
	test_must_fail autosync run bad &&
	rm notadir && mkdir notadir &&
	autosync clear bad &&
	wait_for 20 prop_ge bad successes 1 &&
	prop_is bad consecutive_failures 0 &&
	assert_same_tree src2 notadir/dst
'

test_expect_success 'kill -9 of the daemon, restart: runs carry on' '
	n=$(autosync get live successes) &&
	test_kill $daemon_pid KILL &&
	wait "$daemon_pid" 2>/dev/null
	start_daemon &&
	echo after-restart >src/a/restart-file &&
	wait_for 20 same src dst &&
	wait_for 10 prop_ge live successes $((n + 1)) &&
	prop_is live failures 0 &&
	if command -v sqlite3 >/dev/null; then
		test "$(sqlite3 "$DB" "PRAGMA integrity_check")" = ok
	fi &&
	test_kill $daemon_pid TERM &&
	wait "$daemon_pid"
'

# make demo runs scripts/demo.sh (issue 4: it shows the service, then
# stops its daemon and ends by itself within a minute).
test_expect_success 'the demo runs the service and ends by itself, leaving no daemon' '
	start=$SECONDS &&
	AUTOSYNC=$(command -v autosync) TMPDIR=$PWD timeout 60 \
		sh "$TEST_DIRECTORY/../../scripts/demo.sh" >demo.out 2>&1 ||
		{ cat demo.out; false; } &&
	echo "demo took $((SECONDS - start)) s" &&
	grep -q "is in the replica .* ms after it was written" demo.out &&
	grep -q "^demo OK" demo.out &&
	test "$(ls -d autosync-demo.* 2>/dev/null)" = "" &&
	dpid=$(sed -n "s/^daemon running (pid \([0-9]*\).*/\1/p" demo.out) &&
	test -n "$dpid" && test ! -d /proc/$dpid
'

test_done
