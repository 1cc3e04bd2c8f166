#!/bin/bash
test_description='service: pre and post hooks run from an argv (no shell)
with the run in environment variables; a failing or hanging pre hook
fails the run; a failing post hook is logged; hooks through the daemon'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-service.sh"

# hook OUT [EXIT]: a script that records its argv and AUTOSYNC_* there
mkhook() {
	cat >"$1.sh" <<-HOOK
	#!/bin/sh
	{ for a in "\$@"; do echo "arg=\$a"; done
	  env | grep ^AUTOSYNC_ | sort; } >"$PWD/$1.out"
	echo "hello from $1"
	printf 'esc \033[2J bell \007\n'
	exit ${2:-0}
	HOOK
	chmod +x "$1.sh"
}

# gone PID: no such process, or only a zombie waiting for its parent
gone() {
	! test -e /proc/$1 || grep -q "^State:.*Z" /proc/$1/status
}

test_expect_success 'hooks get their argv verbatim and the run in the environment' '
	mkfixture src small &&
	mkhook pre && mkhook post &&
	autosync create h --source "$PWD/src" --dest "$PWD/dst" --every 1d \
		--pre-hook "$PWD/pre.sh one '\''two words'\'' \$HOME;x \"q\\\"d\"" \
		--post-hook "$PWD/post.sh" &&
	autosync run h &&
	assert_same_tree src dst &&
	test_grep "^arg=one$" pre.out &&
	test_grep "^arg=two words$" pre.out &&
	test_grep "^arg=\$HOME;x$" pre.out &&
	test_grep "^arg=q\"d$" pre.out &&
	test_line_count = 4 <(grep ^arg= pre.out) &&
	test_grep "^AUTOSYNC_HOOK=pre$" pre.out &&
	test_grep "^AUTOSYNC_SERVICE=h$" pre.out &&
	test_grep "^AUTOSYNC_SOURCE=$PWD/src$" pre.out &&
	test_grep "^AUTOSYNC_DEST=$PWD/dst$" pre.out &&
	test_grep "^AUTOSYNC_RUN_ID=1$" pre.out &&
	! grep -q AUTOSYNC_STATUS pre.out &&
	test_grep "^AUTOSYNC_HOOK=post$" post.out &&
	test_grep "^AUTOSYNC_STATUS=0$" post.out &&
	test_grep "^AUTOSYNC_SNAPSHOT=autosync_" post.out &&
	snap=$(sed -n "s/^AUTOSYNC_SNAPSHOT=//p" post.out) &&
	snaps "$PWD/src" | grep -qxF "$snap" &&
	test_grep "^AUTOSYNC_BYTES=[1-9]" post.out
'

test_expect_success 'hook specs are checked: absolute path, quotes' '
	test_must_fail autosync set h pre_hook="pre.sh" 2>err &&
	test_grep "absolute path" err &&
	test_must_fail autosync set h "pre_hook=/bin/true '\''open" 2>err &&
	test_grep "unterminated" err &&
	test_must_fail autosync create h2 --source "$PWD/src" --dest "$PWD/d2" \
		--every 1d --post-hook "true" &&
	test_must_fail autosync get h2 state
'

test_expect_success 'trace level 3 logs the hooks and their output, escaped' '
	autosync set h trace_level=3 &&
	autosync run h &&
	autosync log h >log &&
	test_grep "pre hook: hello from pre" log &&
	test_grep "post hook: hello from post" log &&
	test_grep "post hook: esc \\\\x1b\[2J bell \\\\x07" log &&
	! grep -q "$(printf "\033")" log &&
	autosync set h trace_level=1 &&
	autosync run h &&
	autosync log h | tail -n 1 >last &&
	test_grep "run 3 ok" last &&
	test "$(autosync log h | grep -c "hook: hello")" = 2
'

test_expect_success 'a failing pre hook fails the run before anything is sent' '
	mkhook pre 3 &&
	echo new >src/added &&
	test_expect_code 40 autosync run h 2>err &&
	test_grep "pre hook .*pre.sh. failed: exit status 3" err &&
	test_path_is_missing dst/added &&
	prop_is h last_errcode IO &&
	autosync get h last_error >e &&
	test_grep "run not started" e &&
	prop_is h consecutive_failures 1 &&
	test_grep "^AUTOSYNC_STATUS=0$" post.out
'

test_expect_success 'a missing hook program fails the run (NOTFOUND)' '
	autosync set h pre_hook="$PWD/nosuch" &&
	test_expect_code 3 autosync run h 2>err &&
	test_grep "pre hook .*nosuch. cannot be run: No such file" err &&
	prop_is h state maintenance &&
	autosync clear h
'

test_expect_success 'a hanging pre hook is killed with its children after hook_timeout' '
	cat >hang.sh <<-EOF &&
	#!/bin/sh
	sleep 60 &
	echo \$! >"$PWD/hang.child"
	echo \$\$ >"$PWD/hang.pid"
	wait
	EOF
	chmod +x hang.sh &&
	autosync set h pre_hook="$PWD/hang.sh" hook_timeout=1s &&
	start=$SECONDS &&
	test_expect_code 30 autosync run h 2>err &&
	test $((SECONDS - start)) -lt 10 &&
	test_grep "pre hook .*hang.sh. killed after 1 s" err &&
	autosync clear h &&
	wait_for 5 gone "$(cat hang.pid)" &&
	wait_for 5 gone "$(cat hang.child)"
'

test_expect_success 'a failing post hook is logged; the run still counts' '
	mkhook pre && mkhook post 5 &&
	autosync set h pre_hook="$PWD/pre.sh" hook_timeout=5m &&
	autosync run h &&
	assert_same_tree src dst &&
	autosync log h >log &&
	test_grep "post hook .*post.sh. failed: exit status 5" log &&
	prop_is h consecutive_failures 0
'

test_expect_success 'through the daemon: hooks run, a failed run is in post env' '
	mkhook post &&
	: >notadir &&
	autosync create d --source "$PWD/src" --dest "$PWD/notadir/x" \
		--every 1d --retries 1 --post-hook "$PWD/post.sh d-post" &&
	start_daemon &&
	test_must_fail autosync run d --wait &&
	wait_for 10 prop_is d state maintenance &&
	test_grep "^arg=d-post$" post.out &&
	test_grep "^AUTOSYNC_STATUS=40$" post.out &&
	test_grep "^AUTOSYNC_ERRCODE=IO$" post.out &&
	test_grep "^AUTOSYNC_SNAPSHOT=$" post.out &&
	autosync run h --wait &&
	test_grep "^AUTOSYNC_SERVICE=h$" pre.out &&
	stop_daemon
'

test_done
