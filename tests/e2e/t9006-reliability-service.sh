#!/bin/bash
test_description='RELIABILITY.md §F: 67 (a second daemon on the same state
refuses to start), 69 (SIGTERM to the daemon in the middle of a transfer:
it stops at once, no process of the run survives, the destination keeps
its old state and the checkpoint, and the next run resumes: O8), 66 (a
CHECKSUM error on every attempt, through the fault proxy: retried, then
maintenance with CHECKSUM shown, not retried in a loop)'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-service.sh"
. "$TEST_DIRECTORY/lib-net.sh"

# the receiver checkpoints every 16 MiB with no 1 s floor (t2010)
export AUTOSYNC_DIR_CHECKPOINT_MS=0

# ckpt_mib DST: the stream MiB the destination's checkpoint covers
ckpt_mib() {
	awk '$1 == "bytes" { print int($2 / 1048576) }' "$1/.autosync/partial" 2>/dev/null
}
ckpt_ge() { c=$(ckpt_mib "$1") && test -n "$c" && test "$c" -ge "$2"; }

# run_procs: processes of a run: any autosync process of ours but the
# daemon (a run is a child of the daemon, its receiver a child of it)
run_procs() {
	ps -eo pid,ppid,args | awk -v d="$1" '$2 == d { print $1 }'
}

test_expect_success 'setup: a 128 MiB source, a server, a service, a daemon' '
	mkdir -p src/sub &&
	for i in 1 2 3 4; do head -c 32M /dev/urandom >src/f$i || return 1; done &&
	echo small >src/sub/a &&
	net_deadline 30 autosync keygen --out keys >/dev/null &&
	mkdir root &&
	net_serve r --key "$PWD/keys/psk.key" --root "$PWD/root" &&
	# Over tcp:// at 24 MB/s, so that the kill below lands mid-transfer
	# (at full speed, in CI, the copy was done before the checkpoint said
	# 16 MiB), and the session of a server is cut too.
	autosync create big --source "$PWD/src" \
		--dest "tcp://127.0.0.1:$SERVE_PORT/big" --key "$PWD/keys/psk.key" \
		--every 1d --rate-limit 24M &&
	start_daemon
'

test_expect_success '67: a second daemon on the same state directory refuses to start' '
	timeout 20 autosync daemon 2>err2; rc=$?
	cat err2 && echo "exit $rc" &&
	test $rc != 0 && test $rc != 124 && test $rc -lt 128 &&
	test_grep -i "another daemon" err2 &&
	kill -0 $daemon_pid &&
	autosync list >/dev/null
'

test_expect_success '69: SIGTERM mid-transfer: the daemon stops at once, the run with it, the checkpoint stays' '
	autosync run big &&
	wait_for 60 ckpt_ge root/big 16 &&
	c1=$(ckpt_mib root/big) && echo "checkpoint at $c1 MiB" &&
	kids=$(run_procs $daemon_pid) && echo "run processes: $kids" &&
	t0=$SECONDS &&
	test_kill $daemon_pid TERM &&
	wait "$daemon_pid" &&
	echo "the daemon stopped in $((SECONDS - t0)) s" &&
	test $((SECONDS - t0)) -le 10 &&
	for k in $kids; do
		wait_for 5 eval "! kill -0 $k" || { echo "run process $k survived"; return 1; }
	done &&
	# the server sees the connection end after the run is gone
	net_wait_for 30 net_serve_ended "$SERVE_LOG" 1 &&
	test "$(ls -A root/big | grep -vx .autosync)" = "" &&
	test -f root/big/.autosync/partial &&
	autosync log big >log.out && cat log.out &&
	test_grep -i "interrupted\|stopped" log.out
'

test_expect_success '69: the next run resumes at the checkpoint (O8: fewer bytes than the tree) and ends in O2' '
	# the daemon runs an interrupted service at once on start; the first
	# run that ends ok is the resumed one
	start_daemon &&
	autosync run --wait big &&
	autosync log big >log2.out && cat log2.out &&
	b=$(sed -n "s/.*run [0-9]* ok in .*, \([0-9]*\) bytes.*/\1/p" log2.out | head -n 1) &&
	total=$(du -sb --apparent-size src | cut -f1) &&
	echo "the resumed run sent $b of $total bytes, the checkpoint was at $c1 MiB" &&
	test "$b" -lt "$total" &&
	test "$b" -le $((total - c1 * 1048576 + 16 * 1048576)) &&
	assert_same_tree src root/big &&
	test_path_is_missing root/big/.autosync/partial
'

test_expect_success '66: CHECKSUM on every attempt: retried, then maintenance, not a loop' '
	net_proxy flip $SERVE_PORT --flip 1000000:2 &&
	autosync create flipped --source "$PWD/src" \
		--dest "tcp://127.0.0.1:$PROXY_PORT/f" --key "$PWD/keys/psk.key" \
		--every 1h --retries 3 &&
	autosync run flipped &&
	wait_for 60 prop_is flipped state maintenance &&
	prop_is flipped last_errcode CHECKSUM &&
	prop_is flipped consecutive_failures 3 &&
	n=$(grep -c "fault conn=[0-9]* flip" "$PROXY_LOG") &&
	echo "$n flipped connections" && test "$n" -eq 3 &&
	autosync log flipped >log3.out && cat log3.out &&
	sleep 3 &&
	test "$(grep -c "fault conn=[0-9]* flip" "$PROXY_LOG")" -eq 3 &&
	prop_is flipped state maintenance &&
	test "$(ls -A root/f 2>/dev/null | grep -vx .autosync)" = "" &&
	net_kill $PROXY_PID &&
	stop_daemon
'

test_done
