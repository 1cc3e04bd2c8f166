#!/bin/bash
test_description='service: make install ships a systemd unit that
verifies; destroy refuses a running service and forgets the rest;
SIGTERM and SIGKILL of the daemon leave no hook or run behind (§F 69)'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-service.sh"

gone() { ! test -e /proc/$1 || grep -q "^State:.*Z" /proc/$1/status; }

test_expect_success 'make install puts the unit in place with the binary path' '
	make -s -C "$TEST_ROOT" -o build install PREFIX="$PWD/p" \
		BUILD="$(dirname "$AUTOSYNC")" >make.out 2>&1 &&
	unit=p/lib/systemd/system/autosync.service &&
	test_path_is_file "$unit" &&
	test_grep "^ExecStart=$PWD/p/bin/autosync daemon$" "$unit" &&
	test_grep "^KillMode=mixed$" "$unit" &&
	test_grep "^ExecReload=/bin/kill -HUP \$MAINPID$" "$unit" &&
	test_grep "^StateDirectory=autosync$" "$unit" &&
	test -x p/bin/autosync &&
	if command -v systemd-analyze >/dev/null; then
		systemd-analyze verify --man=no "$unit"
	fi &&
	test_path_is_file p/share/bash-completion/completions/autosync &&
	cp p/share/bash-completion/completions/autosync completion.bash &&
	make -s -C "$TEST_ROOT" uninstall PREFIX="$PWD/p" &&
	test_path_is_missing "$unit" &&
	test_path_is_missing p/share/bash-completion/completions/autosync
'

# complete WORDS...: what bash completion offers for the last word
complete_words() {
	bash -c '
		. ./completion.bash
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_autosync; printf "%s\n" "${COMPREPLY[@]}"' complete "$@"
}

test_expect_success 'bash completion: commands, services, properties, options' '
	mkdir -p csrc &&
	autosync create comp-svc --source "$PWD/csrc" --dest "$PWD/cdst" \
		--every 1d &&
	complete_words autosync rev >c && test_grep "^reverse$" c &&
	complete_words autosync mount- >c && test_grep "^mount-destination$" c &&
	complete_words autosync show comp >c && test_grep "^comp-svc$" c &&
	complete_words autosync get comp-svc keep_ >c &&
	test_grep "^keep_src$" c && test_grep "^keep_dst$" c &&
	complete_words autosync set comp-svc pre_ >c && test_grep "^pre_hook=$" c &&
	complete_words autosync create x --pre >c && test_grep "^--pre-hook$" c &&
	complete_words autosync log --f >c && test_grep "^--follow$" c &&
	autosync destroy comp-svc
'

test_expect_success 'destroy: refused while running; then forgets the service, keeps the data' '
	mkfixture src small &&
	cat >slow.sh <<-EOF &&
	#!/bin/sh
	: >"$PWD/slow.started"
	exec sleep 3
	EOF
	chmod +x slow.sh &&
	autosync create d --source "$PWD/src" --dest "$PWD/dst" --every 1d \
		--pre-hook "$PWD/slow.sh" &&
	start_daemon &&
	wait_for 10 test -e slow.started &&
	test_expect_code 20 autosync destroy d 2>err &&
	test_grep "is running" err &&
	wait_for 20 prop_is d successes 1 &&
	assert_same_tree src dst &&
	autosync destroy d &&
	test_path_is_missing "$AUTOSYNC_STATE_DIR/run/d.lock" &&
	test_must_fail autosync show d &&
	test_must_fail autosync log d &&
	snaps "$PWD/src" | grep -q "^autosync_" &&
	! snaps "$PWD/src" | grep -q "d-latest" &&
	echo after >src/after &&
	sleep 2 &&
	test_path_is_missing dst/after &&
	autosync list >list && ! grep -q "^d " list &&
	autosync create d --source "$PWD/src" --dest "$PWD/dst" --every 1d &&
	# (its first run may already be over: a fresh counter shows as 1, not 2)
	wait_for 20 prop_is d successes 1 &&
	test_path_is_file dst/after &&
	test "$(autosync log d | grep -c "run [0-9]* ok")" = 1 &&
	stop_daemon
'

test_expect_success 'SIGTERM mid-hook: the hook and its children go, the run is recorded' '
	cat >hang.sh <<-EOF &&
	#!/bin/sh
	sleep 60 &
	echo \$! >"$PWD/hang.child"
	echo \$\$ >"$PWD/hang.pid"
	wait
	EOF
	chmod +x hang.sh &&
	autosync create t --source "$PWD/src" --dest "$PWD/dst-t" --every 1d \
		--pre-hook "$PWD/hang.sh" &&
	start_daemon &&
	wait_for 10 test -s hang.child &&
	test_kill $daemon_pid TERM &&
	wait "$daemon_pid" &&
	wait_for 5 gone "$(cat hang.pid)" &&
	wait_for 5 gone "$(cat hang.child)" &&
	prop_is t state online &&
	prop_is t failures 0 &&
	log_has t "run [0-9]* interrupted (the daemon stopped)" &&
	test_path_is_missing dst-t
'

test_expect_success 'SIGKILL of the daemon mid-hook: no run or hook survives' '
	rm -f slow.started &&
	cat >slow.sh <<-EOF &&
	#!/bin/sh
	echo \$\$ >"$PWD/slow.pid"
	: >"$PWD/slow.started"
	exec sleep 60
	EOF
	autosync set t pre_hook="$PWD/slow.sh" &&
	start_daemon &&
	wait_for 10 test -e slow.started &&
	run_pid=$(autosync get t state >/dev/null &&
		awk "{ print \$4 }" /proc/$(cat slow.pid)/stat) &&
	test_kill $daemon_pid KILL &&
	wait "$daemon_pid" 2>/dev/null
	wait_for 5 gone "$run_pid" &&
	wait_for 5 gone "$(cat slow.pid)" &&
	start_daemon &&
	wait_for 10 log_has t "interrupted (the daemon or the run was killed)" &&
	stop_daemon
'

test_expect_success 'SIGHUP mid-run: the daemon carries on, the run ends normally' '
	rm -f slow.started &&
	cat >slow.sh <<-EOF &&
	#!/bin/sh
	: >"$PWD/slow.started"
	sleep 2
	EOF
	n=$(autosync get t successes) &&
	start_daemon &&
	autosync run t &&
	wait_for 10 test -e slow.started &&
	kill -HUP $daemon_pid &&
	wait_for 20 prop_ge t successes $((n + 1)) &&
	test -d /proc/$daemon_pid &&
	stop_daemon
'

test_done
