#!/bin/bash
test_description='transport: a commit that outlasts the idle timeout

The side that received a whole stream commits it in its receiving child
(fsyncs, a syncfs of the whole copy: minutes on a slow disk).  Its peer
waits for the answer with its idle timeout; KEEPALIVE frames
(PROTO_F_KEEPALIVE, every 400 ms) tell it the other side is still
there.  The receiving child stops itself at its commit
(AUTOSYNC_FAULT=recv_phase:STOP) and is continued after twice the
waiting side'"'"'s --timeout: a push and a pull both succeed.  (Before
the keepalives, the push'"'"'s client gave up with TIMEOUT, 30, while the
server went on to commit.)  The same holds before the first byte: a
pull whose server scans its source for 3 x the client'"'"'s --timeout
(the scan slowed by AUTOSYNC_FAULT=scan_dir:SLEEP3) succeeds, and so
does a push with --timeout 1 to a destination that another push holds
for about 3 s; before, both clients gave up with TIMEOUT after
--timeout.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY

# stopped_below PID: a descendant of PID stopped by a signal (20 s), in
# stopped
stopped_below() {
	local i=0 p
	stopped=
	while test $i -lt 200; do
		for p in $(ps -eo pid=,ppid= | awk -v root="$1" '
			{ kids[$2] = kids[$2] " " $1 }
			END { n = 1; q[1] = root
				for (i = 1; i <= n; i++) {
					m = split(kids[q[i]], k, " ")
					for (j = 1; j <= m; j++) q[++n] = k[j]
				}
				for (i = 2; i <= n; i++) print q[i] }'); do
			if test "$(test_proc_state "$p")" = T; then
				stopped=$p
				return 0
			fi
		done
		sleep 0.1
		i=$((i + 1))
	done
	echo "no stopped process below $1" >&2
	return 1
}

test_expect_success 'setup: keys, a source, a server whose receiver stops at its commit' '
	net_deadline 30 autosync keygen --out keys &&
	mkdir root &&
	mkdir src && head -c 3M /dev/urandom >src/f && echo a >src/a &&
	AUTOSYNC_FAULT=recv_phase:STOP net_serve slow \
		--key "$T/keys/psk.key" --root "$T/root" &&
	SLOW_PORT=$SERVE_PORT SLOW_PID=$SERVE_PID
'

test_expect_success 'push: the server commits for 2 x --timeout; its keepalives hold the client: success' '
	net_bg push autosync sync --timeout 2 --key "$T/keys/psk.key" src \
		"tcp://127.0.0.1:$SLOW_PORT/d" &&
	stopped_below $SLOW_PID && echo "server receiver $stopped stopped" &&
	sleep 4 && kill -0 $BG_PID &&
	kill -CONT $stopped &&
	net_bg_wait 30 && echo "client: exit $BG_RC" &&
	test "$BG_RC" = 0 &&
	assert_same_tree src root/d
'

test_expect_success 'pull: the client commits for 2 x the server'"'"'s --timeout; the server waits: success' '
	net_serve quick --timeout 2 --key "$T/keys/psk.key" --root "$T/root" &&
	echo b >root/d/b &&
	(export AUTOSYNC_FAULT=recv_phase:STOP &&
		exec autosync sync --key "$T/keys/psk.key" \
		"tcp://127.0.0.1:$SERVE_PORT/d" pulled 2>pull.err) &
	pid=$! &&
	stopped_below $pid && echo "client receiver $stopped stopped" &&
	sleep 4 && kill -0 $pid &&
	kill -CONT $stopped &&
	{ wait $pid; rc=$?; } && cat pull.err && echo "pull: exit $rc" &&
	test $rc = 0 &&
	assert_same_tree root/d pulled &&
	! grep -i "timed out" "$SERVE_LOG"
'

# Before the first byte: the server scans the source of a pull (slowed
# down here: its scan sleeps 3 s in its first directory,
# AUTOSYNC_FAULT=scan_dir:SLEEP3, a cold disk or millions of entries)
# while the client waits for its answer with --timeout 1.
test_expect_success 'pull: the server scans for 3 x the client'"'"'s --timeout before its answer: success' '
	AUTOSYNC_FAULT=scan_dir:SLEEP3 net_serve scan \
		--key "$T/keys/psk.key" --root "$T/root" &&
	t0=$(net_now_ms) &&
	net_deadline 30 autosync sync --timeout 1 --key "$T/keys/psk.key" \
		"tcp://127.0.0.1:$SERVE_PORT/d" pulled-slow &&
	ms=$(( $(net_now_ms) - t0 )) && echo "pull took $ms ms" &&
	test $ms -ge 3000 &&
	assert_same_tree root/d pulled-slow
'

# HOLD waits for a destination another session has locked (up to the
# server's idle timeout + 2 s); the second client, with --timeout 1,
# hears keepalives meanwhile and goes on once the first push is done.
# (Another source, -F: a destination holds one source's snapshots.)
test_expect_success 'push: a destination busy with another push for 3 x --timeout: the second waits, then lands' '
	net_serve plain --key "$T/keys/psk.key" --root "$T/root" &&
	head -c 8M /dev/urandom >src/big &&
	mkdir src2 && echo other >src2/other &&
	net_bg first autosync sync --rate-limit 3M --key "$T/keys/psk.key" \
		src "tcp://127.0.0.1:$SERVE_PORT/busy" &&
	first=$BG_PID &&
	net_wait_for 20 test -d root/busy/.autosync &&
	t0=$(net_now_ms) &&
	net_deadline 60 autosync sync -F --timeout 1 \
		--key "$T/keys/psk.key" src2 \
		"tcp://127.0.0.1:$SERVE_PORT/busy" 2>second.err &&
	ms=$(( $(net_now_ms) - t0 )) && cat second.err &&
	echo "the second push took $ms ms" && test $ms -ge 1500 &&
	BG_PID=$first && net_bg_wait 60 && test "$BG_RC" = 0 &&
	assert_same_tree src2 root/busy
'

test_expect_success 'the servers logged no sanitizer report' '
	net_logs_clean
'

test_done
