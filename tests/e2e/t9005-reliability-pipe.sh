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

# started PID: until PID runs autosync (10 s).  A background job is a
# shell until its redirections are open and it has exec'"'"'ed, and with the
# traps of test-lib it forks instead: hence "(exec autosync ...) &".
started() {
	local i=0
	while test $i -lt 100; do
		case $(readlink "/proc/$1/exe" 2>/dev/null) in
		*/autosync) return 0 ;;
		esac
		sleep 0.05
		i=$((i + 1))
	done
	echo "pid $1 never became autosync"
	return 1
}

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

test_expect_success '59b: the receiver stopped, then killed: the sender ends at once' '
	(exec autosync send -i @s1 src@s2 >fifo 2>send.err) &
	spid=$!
	(exec autosync receive dst <fifo 2>recv.err) &
	rpid=$!
	echo "sender $spid, receiver $rpid" &&
	started $rpid && kill -STOP $rpid &&
	wait_blocked $spid &&
	kill -KILL $rpid && kill -CONT $rpid 2>/dev/null;
	wait $rpid; echo "receiver: exit $?" &&
	ends_within 5 $spid && cat send.err && echo "send: exit $rc" &&
	test $rc != 0 &&
	autosync recover dst &&
	assert_manifest dst dst.m
'

# Intermittent (1 run in 4 of .ci/run on a quiet machine, 16:05): the
# sync'"'"'s main thread was found in anon_pipe_read instead of the sender in
# pipe_write, and after the child was killed it stayed there for 10 s, a
# possible hang of the parent on a dead receiver (a write end of the pipe
# it reads held open?).  Kept as a known breakage until that is found.
test_expect_failure '59b: sync with its receiving child stopped, then killed: an error at once' '
	autosync receive dst-b <s1.as && manifest dst-b >dst-b.m || return 1
	(exec autosync sync src dst-b 2>sync.err) &
	pid=$!
	child= && i=0 &&
	while test -z "$child" && test $i -lt 100; do
		child=$(ps -o pid= --ppid $pid | head -n 1 | tr -d " ")
		sleep 0.05; i=$((i + 1))
	done &&
	test -n "$child" && echo "receiving child $child" &&
	kill -STOP $child &&
	wait_blocked $pid &&
	kill -KILL $child && kill -CONT $child 2>/dev/null;
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
	(exec autosync receive dst <fifo 2>recv.err) &
	rpid=$!
	echo "sender $spid, receiver $rpid" &&
	started $rpid && kill -STOP $rpid &&
	wait_blocked $spid &&
	kill -KILL $spid && wait $spid;
	kill -CONT $rpid &&
	ends_within 10 $rpid && cat recv.err && echo "receive: exit $rc" &&
	test $rc = 10 &&
	assert_manifest dst dst.m &&
	test_path_is_missing dst/.autosync/stage
'

# Intermittent on a fast quiet machine: the receiver drained the whole
# 12.8 MiB stream before it was stopped, so the sender ended (exit 0)
# instead of blocking; the test must stop the receiver before it reads.
test_expect_failure '59c: the same for a volume: TRUNCATED, the image unchanged' '
	truncate -s 32M a.img && scribble a.img 4 &&
	autosync snapshot vol:a.img@v1 && autosync send vol:a.img@v1 >v1.as &&
	autosync receive vol:b.img <v1.as && sha b.img >b.sha &&
	scribble a.img 200 && autosync snapshot vol:a.img@v2 || return 1
	(exec autosync send -i @v1 vol:a.img@v2 >fifo 2>send.err) &
	spid=$!
	(exec autosync receive vol:b.img <fifo 2>recv.err) &
	rpid=$!
	echo "sender $spid, receiver $rpid" &&
	started $rpid && kill -STOP $rpid &&
	wait_blocked $spid &&
	kill -KILL $spid && wait $spid;
	kill -CONT $rpid &&
	ends_within 10 $rpid && cat recv.err && echo "receive: exit $rc" &&
	test $rc = 10 &&
	autosync recover vol:b.img &&
	test "$(sha b.img)" = "$(cat b.sha)"
'

test_done
