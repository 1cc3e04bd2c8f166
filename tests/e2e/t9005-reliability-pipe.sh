#!/bin/bash
test_description='RELIABILITY.md §E 59: the local pipe

"autosync send | autosync receive" through a FIFO, each end a process of
its own so that the test can signal it, and "sync", whose receiver is a
forked child:
(a) the receiver refuses the stream at its first records while the sender
    still has 48 MiB to write: the sender ends at once (it is not left
    blocked); "sync" reports the receiver'"'"'s error, not a broken pipe;
(b) the receiver is stopped until the pipe is full, then killed: the
    sender ends at once, no zombie; for "sync", the killed receiving child
    is reported as IO (40: killed from outside, a retry may work; a
    receiver that crashes by itself is INTERNAL) and the destination is
    recovered to its old state;
(c) the sender is killed in the middle of a record: the receiver says
    TRUNCATED (10) and the destination is its old state (O1), directory
    and volume.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-vol.sh"

# stat_of PID: the process state letter, or "gone"
stat_of() {
	local s
	s=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && echo "$s" || echo gone
}

# wait_blocked PID: until PID sleeps in a write to a full pipe (10 s)
wait_blocked() {
	local i=0
	while test $i -lt 100; do
		case $(cat "/proc/$1/wchan" 2>/dev/null) in
		*pipe_write*) return 0 ;;	# anon_pipe_write on 6.x
		# vmsplice (a local sync's sender hands its blocks over)
		pipe_wait_writable) return 0 ;;
		esac
		sleep 0.1
		i=$((i + 1))
	done
	echo "pid $1 never blocked on the pipe (wchan $(cat "/proc/$1/wchan" 2>/dev/null))"
	return 1
}

# Note: "X &" ends an and-list; so "A && B &" runs A too in the
# background, and "B & p=$! && C" sets p in a background subshell: the
# jobs below stand alone, each followed by its own "p=$!" line.

# A background job "autosync ... &" would, with the traps of test-lib,
# fork autosync from a shell instead of exec'ing it: hence
# "(exec autosync ...) &", whose PID is autosync's own.

# ends_within SECONDS PID: PID exits within SECONDS; its status in $rc
ends_within() {
	local i=0
	while test $i -lt $(($1 * 10)); do
		if ! kill -0 "$2" 2>/dev/null || test "$(stat_of "$2")" = Z; then
			wait "$2"; rc=$?
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	echo "pid $2 still running after $1 s (state $(stat_of "$2"), wchan $(cat "/proc/$2/wchan" 2>/dev/null))"
	return 1
}

# stopped_receiver ERRFILE ARGS...: "autosync receive ARGS" from the fifo,
# held stopped before it reads a byte: a job that opens the fifo (so the
# sender's open returns and it writes until the pipe is full), stops
# itself, and once continued (kill -CONT $rpid) execs the receiver on it.
# Its PID in rpid, stopped on return.  A receiver stopped from outside
# once it runs races the test: on a quiet machine it drained a whole
# 12.8 MiB volume stream before kill -STOP reached it.
stopped_receiver() {
	local err=$1
	shift
	(exec <fifo && kill -STOP $BASHPID &&
		exec autosync receive "$@" 2>"$err") &
	rpid=$!
	test_wait_stopped $rpid
}

# child_of PID: the one child of PID (20 s), in child
child_of() {
	local i=0
	child=
	while test $i -lt 200; do
		child=$(cat "/proc/$1/task/$1/children" 2>/dev/null)
		child=${child% }
		case $child in
		"" | *" "*) ;;
		*) return 0 ;;
		esac
		sleep 0.1
		i=$((i + 1))
	done
	echo "pid $1 has no single child ('$child')"
	return 1
}

# kill_autosync PID...: kill -9 each PID that is still one of this test's
# processes (autosync, or the shell that becomes it, in the trash
# directory): the cleanup of a failed case, where a stopped process left
# behind would hold the test's output open.  A PID reused since by
# somebody else's process is left alone.
kill_autosync() {
	local p here
	here=$(cd "$TRASH_DIRECTORY" && pwd -P)
	for p in "$@"; do
		case $(readlink "/proc/$p/exe" 2>/dev/null) in
		*/autosync | */bash)
			test "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$here" &&
				kill -KILL "$p" 2>/dev/null ;;
		esac
	done
	return 0
}

test_expect_success 'setup: a 48 MiB tree, s1 received, s2 with 48 MiB more' '
	mkdir src && echo a >src/a && mkdir src/d && echo b >src/d/b &&
	autosync snapshot src@s1 && autosync send src@s1 >s1.as &&
	autosync receive dst <s1.as && manifest dst >dst.m &&
	for i in 1 2 3; do head -c 16M /dev/urandom >src/big$i || return 1; done &&
	autosync snapshot src@s2 &&
	mkfifo fifo
'

test_expect_success '59a: the receiver refuses at once: the sender is not left writing' '
	mkdir foreign && echo mine >foreign/file && manifest foreign >foreign.m ||
		return 1
	(exec autosync send -i @s1 src@s2 >fifo 2>send.err) &
	spid=$!
	autosync receive foreign <fifo 2>recv.err; rrc=$? &&
	cat recv.err && echo "receive: exit $rrc" &&
	test $rrc = 20 &&
	ends_within 10 $spid && cat send.err && echo "send: exit $rc" &&
	test $rc != 0 &&
	assert_manifest foreign foreign.m
'

test_expect_success '59a: sync reports the receiver'"'"'s refusal, not a broken pipe' '
	rm -rf foreign2 && mkdir foreign2 && echo mine >foreign2/file &&
	manifest foreign2 >foreign2.m &&
	test_expect_code 20 autosync sync src foreign2 2>err &&
	cat err &&
	test_grep "foreign2" err &&
	test_grep ! -i "broken pipe\|EPIPE" err &&
	assert_manifest foreign2 foreign2.m
'

# The receiver stops itself at the first entry it stages (as in the sync
# case below): stopped from outside once it ran, it could drain the stream
# first and the sender would never block.
test_expect_success '59b: the receiver stopped, then killed: the sender ends at once' '
	(exec autosync send -i @s1 src@s2 >fifo 2>send.err) &
	spid=$!
	(export AUTOSYNC_FAULT=recv_stage:STOP &&
		exec autosync receive dst <fifo 2>recv.err) &
	rpid=$!
	test_when_finished "kill_autosync \$spid \$rpid" &&
	echo "sender $spid, receiver $rpid" &&
	test_wait_stopped $rpid &&
	wait_blocked $spid &&
	kill -KILL $rpid;
	wait $rpid; echo "receiver: exit $?" &&
	ends_within 5 $spid && cat send.err && echo "send: exit $rc" &&
	test $rc != 0 &&
	autosync recover dst &&
	assert_manifest dst dst.m
'

# The receiving child stops itself (AUTOSYNC_FAULT=recv_stage:STOP) at
# the first entry it stages, after a few records: the parent fills the
# pipe and blocks in pipe_write, and the test kills the child there.
# (Stopping it from outside raced it: the child found by ps had often
# received the whole 48 MiB and was committing, the parent was reading
# its report (anon_pipe_read), wait_blocked failed, so the kill -9 was
# never sent and the parent waited for a stopped child.)
test_expect_success '59b: sync with its receiving child stopped, then killed: an error at once' '
	autosync receive dst-b <s1.as && manifest dst-b >dst-b.m || return 1
	(export AUTOSYNC_FAULT=recv_stage:STOP &&
		exec autosync sync src dst-b 2>sync.err) &
	pid=$!
	child=
	test_when_finished "kill_autosync \$child \$pid" &&
	child_of $pid && echo "receiving child $child" &&
	test_wait_stopped $child &&
	wait_blocked $pid &&
	kill -KILL $child &&
	ends_within 10 $pid && cat sync.err && echo "sync: exit $rc" &&
	test $rc = 40 &&
	test_grep "receiver killed by signal 9" sync.err &&
	autosync recover dst-b &&
	assert_manifest dst-b dst-b.m &&
	autosync sync src dst-b && assert_same_tree src dst-b
'

test_expect_success '59c: the sender killed mid-record: TRUNCATED, the old tree' '
	(exec autosync send -i @s1 src@s2 >fifo 2>send.err) &
	spid=$!
	rpid=
	test_when_finished "kill_autosync \$spid \$rpid" &&
	stopped_receiver recv.err dst &&
	echo "sender $spid, receiver $rpid" &&
	wait_blocked $spid &&
	kill -KILL $spid && wait $spid;
	kill -CONT $rpid &&
	ends_within 10 $rpid && cat recv.err && echo "receive: exit $rc" &&
	test $rc = 10 &&
	assert_manifest dst dst.m &&
	test_path_is_missing dst/.autosync/stage
'

test_expect_success '59c: the same for a volume: TRUNCATED, the image unchanged' '
	truncate -s 32M a.img && scribble a.img 4 &&
	autosync snapshot vol:a.img@v1 && autosync send vol:a.img@v1 >v1.as &&
	autosync receive vol:b.img <v1.as && sha b.img >b.sha &&
	scribble a.img 200 && autosync snapshot vol:a.img@v2 || return 1
	(exec autosync send -i @v1 vol:a.img@v2 >fifo 2>send.err) &
	spid=$!
	rpid=
	test_when_finished "kill_autosync \$spid \$rpid" &&
	stopped_receiver recv.err vol:b.img &&
	echo "sender $spid, receiver $rpid" &&
	wait_blocked $spid &&
	kill -KILL $spid && wait $spid;
	kill -CONT $rpid &&
	ends_within 10 $rpid && cat recv.err && echo "receive: exit $rc" &&
	test $rc = 10 &&
	autosync recover vol:b.img &&
	test "$(sha b.img)" = "$(cat b.sha)"
'

test_done
