#!/bin/bash
test_description='RELIABILITY.md §F 69 (signals and child cleanup): after
SIGKILL of sync (local, a tcp pull, an ssh push), of serve and of the
daemon, no child of theirs (receiving child, ssh, connection child, run)
is left after 5 s; a local sync whose receiving child is stopped ends in
TIMEOUT after --timeout with the old tree; SIGHUP with a changed and with
an invalid configuration in the middle of a transfer.  §F 61: `autosync
run` killed at the n-th write or fdatasync of the state DB (strace).
§F 63: a prune during a slow transfer (dir engine).  §E 50: wrong keys
from one address are slowed down, a client from elsewhere is not'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-service.sh"
. "$TEST_DIRECTORY/lib-net.sh"

T=$TRASH_DIRECTORY

# tree PID: PID and all its descendants, one a line (ps, not /proc walks)
tree() {
	ps -eo pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END {
			n = 1; q[1] = root
			for (i = 1; i <= n; i++) {
				print q[i]
				m = split(kids[q[i]], k, " ")
				for (j = 1; j <= m; j++) q[++n] = k[j]
			}
		}'
}

# descendants PID: the processes below PID (not PID itself)
descendants() { tree "$1" | tail -n +2; }

# wait_kids PID N: until PID has at least N descendants (20 s)
wait_kids() {
	local i=0
	while test $i -lt 200; do
		test "$(descendants "$1" | wc -l)" -ge "$2" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "pid $1 has fewer than $2 descendants: $(descendants "$1")"
	return 1
}

# all_gone SECONDS PID...: every PID ended (or is a zombie) within SECONDS
all_gone() {
	local t=$1 p s
	shift
	for p in "$@"; do
		wait_for "$t" eval "! kill -0 $p || test \"\$(test_proc_state $p)\" = Z" || {
			echo "pid $p ($(tr '\0' ' ' </proc/$p/cmdline 2>/dev/null)) survived, state $(test_proc_state $p)"
			return 1
		}
	done
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

# kill_ours PID...: kill -9 each PID that is still an autosync (or ssh)
# process of this test (its cwd in the trash directory): the cleanup of
# a failed case; a reused PID is left alone
kill_ours() {
	local p here
	here=$(cd "$TRASH_DIRECTORY" && pwd -P)
	for p in "$@"; do
		test "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$here" &&
			kill -KILL "$p" 2>/dev/null
	done
	return 0
}

test_expect_success 'setup: a 24 MiB source, synced once; keys' '
	mkdir src && echo a >src/a &&
	for i in 1 2 3; do head -c 8M /dev/urandom >src/f$i || return 1; done &&
	autosync sync src dst && manifest dst >dst.m &&
	echo more >src/b && head -c 8M /dev/urandom >src/f4 &&
	net_deadline 30 autosync keygen --out keys
'

# A child stopped (SIGSTOP) before its parent is killed cannot end by
# itself on the end of its input: only the parent-death signal (or a
# kill of its process group) ends it.

# The receiving child stops itself at the first entry it stages
# (AUTOSYNC_FAULT=recv_stage:STOP); the parent fills the pipe.
# stalled_timeout ERR CMD...: CMD (a sync with --timeout 2) in the
# background, its receiving child stopped at its first staged entry: it
# ends in TIMEOUT (30) within 8 s of that stop, says so in ERR, and
# leaves no child
stalled_timeout() {
	local err=$1 pid rc t0
	shift
	(export AUTOSYNC_FAULT=recv_stage:STOP && exec "$@" 2>"$err") &
	pid=$!
	child=
	test_when_finished "kill_ours \$child $pid"
	child_of $pid && echo "receiving child $child" &&
	wait_for 20 eval "test \"\$(test_proc_state $child)\" = T" &&
	t0=$SECONDS &&
	wait_for 15 eval "! kill -0 $pid || test \"\$(test_proc_state $pid)\" = Z" ||
		return 1
	wait $pid
	rc=$?
	cat "$err" && echo "sync: exit $rc after $((SECONDS - t0)) s" &&
	test $rc = 30 &&
	test $((SECONDS - t0)) -le 8 &&
	test_grep "the receiver took nothing from the stream for 2 s (it was stopped)" "$err" &&
	all_gone 1 $child
}

test_expect_success '69c: a local sync whose receiving child is stopped: TIMEOUT after --timeout, the old tree' '
	stalled_timeout c.err autosync sync --timeout 2 src dst &&
	test_grep "receive .dst.: the receiver took nothing" c.err &&
	assert_manifest dst dst.m &&
	autosync sync src dst && assert_same_tree src dst
'

test_expect_success '69b: SIGKILL of a local sync: its receiving child is gone within 5 s' '
	echo c >src/c && head -c 8M /dev/urandom >src/f6 || return 1
	(export AUTOSYNC_FAULT=recv_stage:STOP &&
		exec autosync sync src dst 2>k.err) &
	pid=$!
	child=
	test_when_finished "kill_ours \$child \$pid" &&
	child_of $pid && echo "receiving child $child" &&
	wait_for 20 eval "test \"\$(test_proc_state $child)\" = T" &&
	kill -KILL $pid && { wait $pid; true; } &&
	all_gone 5 $child &&
	autosync sync src dst 2>r.err && cat r.err &&
	assert_same_tree src dst
'

test_expect_success '69b: SIGKILL of a tcp pull: its receiving child is gone within 5 s' '
	net_serve q --key "$T/keys/psk.key" --root "$T" || return 1
	(exec autosync sync --key "$T/keys/psk.key" --rate-limit 2M \
		"tcp://127.0.0.1:$SERVE_PORT/src" pulled 2>p.err) &
	pid=$!
	kids=
	test_when_finished "kill_ours \$kids \$pid" &&
	wait_kids $pid 1 && sleep 1 &&
	kids=$(descendants $pid) && echo "children: $kids" &&
	kill -STOP $kids &&
	kill -KILL $pid && { wait $pid; true; } &&
	all_gone 5 $kids
'

# The same watch as a local sync's, on the receiving child of a pull
# (and of a server's push session: the same code, remote.c xfer_recv).
test_expect_success '69c: a tcp pull whose receiving child is stopped: TIMEOUT after --timeout, the old tree' '
	autosync sync --key "$T/keys/psk.key" \
		"tcp://127.0.0.1:$SERVE_PORT/src" pulled3 &&
	manifest pulled3 >pulled3.m &&
	head -c 8M /dev/urandom >src/f7 &&
	stalled_timeout t.err autosync sync --timeout 2 \
		--key "$T/keys/psk.key" "tcp://127.0.0.1:$SERVE_PORT/src" pulled3 &&
	assert_manifest pulled3 pulled3.m &&
	autosync sync --key "$T/keys/psk.key" \
		"tcp://127.0.0.1:$SERVE_PORT/src" pulled3 &&
	assert_same_tree src pulled3
'

test_expect_success '69b: SIGKILL of serve mid-session: its connection child is gone within 5 s' '
	(exec autosync sync --key "$T/keys/psk.key" --rate-limit 2M \
		"tcp://127.0.0.1:$SERVE_PORT/src" pulled2 2>s.err) &
	pid=$!
	kids=
	test_when_finished "kill_ours \$kids \$pid" &&
	wait_kids $SERVE_PID 1 && kids=$(descendants $SERVE_PID) &&
	echo "connection children: $kids" &&
	kill -STOP $kids &&
	net_kill $SERVE_PID KILL &&
	all_gone 5 $kids &&
	{ wait $pid; rc=$?; } && cat s.err && echo "client: exit $rc" &&
	test $rc != 0
'

test_expect_success '69: SIGTERM to serve mid-session: it stops listening, the session finishes, then it exits' '
	mkdir srct && head -c 4M /dev/urandom >srct/f &&
	net_serve t -v --key "$T/keys/psk.key" --root "$T" || return 1
	(exec autosync sync --key "$T/keys/psk.key" --rate-limit 1M \
		"tcp://127.0.0.1:$SERVE_PORT/srct" pulledt 2>t.err) &
	pid=$!
	test_when_finished "kill_ours \$pid" &&
	wait_kids $SERVE_PID 1 &&
	kill -TERM $SERVE_PID &&
	wait_for 5 net_port_closed $SERVE_PORT &&
	kill -0 $SERVE_PID &&
	{ wait $pid; rc=$?; } && cat t.err && test $rc = 0 &&
	assert_same_tree srct pulledt &&
	wait_for 5 eval "! kill -0 $SERVE_PID" &&
	test_grep "stopping: waiting for 1 session in progress" "$SERVE_LOG"
'

test_expect_success SSHD '69b: SIGKILL of an ssh push: ssh is gone within 5 s' '
	net_sshd_start || return 1
	(export AUTOSYNC_SSH=$NET_SSH &&
		exec autosync sync --rate-limit 2M src "$SSH_URL_BASE$T/spushed" 2>h.err) &
	pid=$!
	kids=
	test_when_finished "kill_ours \$kids \$pid" &&
	wait_for 20 test -d spushed/.autosync &&
	kids=$(descendants $pid) && echo "children: $kids" &&
	test -n "$kids" &&
	kill -STOP $kids &&
	kill -KILL $pid && { wait $pid; true; } &&
	all_gone 5 $kids
'

test_expect_success '69b: SIGKILL of the daemon mid-transfer: no run or receiver is left after 5 s' '
	autosync create k --source "$T/src" --dest "$T/dk" --every 1d &&
	AUTOSYNC_FAULT=recv_stage:STOP start_daemon &&
	kids=
	test_when_finished "kill_ours \$kids" &&
	autosync run k &&
	wait_kids $daemon_pid 2 && kids=$(descendants $daemon_pid) &&
	echo "run and receiver: $kids" &&
	test_kill $daemon_pid KILL && { wait $daemon_pid; true; } &&
	all_gone 5 $kids &&
	autosync run k && assert_same_tree src dk
'

# cont_receiver PID: the run's receiving child below daemon PID, stopped
# at recv_stage, is continued (20 s to find it)
cont_receiver() {
	local i=0 k
	while test $i -lt 200; do
		for k in $(descendants "$1"); do
			test "$(test_proc_state $k)" = T && { kill -CONT $k; return 0; }
		done
		sleep 0.1
		i=$((i + 1))
	done
	echo "no stopped receiver below $1: $(descendants "$1")"
	return 1
}

# db SQL: run the statements of SQL on the state DB (python3's sqlite3,
# as the sqlite3 program is not among CI's packages), rows as a|b|c
db() {
	"$TEST_PYTHON" -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for s in sys.argv[2].split(";"):
    if s.strip():
        for row in c.execute(s):
            print("|".join(str(x) for x in row))
c.commit()
' "$AUTOSYNC_STATE_DIR/autosync.db" "$1"
}

# The service is new: the daemon starts its first run at once.  The
# daemon's runs stop at their receiver's first staged entry
# (AUTOSYNC_FAULT in the daemon's environment): a transfer in progress
# for as long as the test needs, continued with cont_receiver.  An
# invalid configuration is written behind set's checks, with db.
test_expect_success '69a: SIGHUP mid-transfer with a changed configuration: the transfer goes on' '
	mkdir src2 && head -c 8M /dev/urandom >src2/f &&
	autosync create h --source "$T/src2" --dest "$T/dh" --every 1d &&
	rm -f "$AUTOSYNC_STATE_DIR/autosync.sock" && : >daemon.log &&
	AUTOSYNC_FAULT=recv_stage:STOP test_bg "autosync -v daemon 2>>daemon.log" &&
	daemon_pid=$test_bg_pid &&
	wait_for 10 test -S "$AUTOSYNC_STATE_DIR/autosync.sock" &&
	kids=
	test_when_finished "kill_ours \$kids" &&
	wait_kids $daemon_pid 2 && kids=$(descendants $daemon_pid) &&
	autosync set h keep_src=2 "schedule=every 1h" &&
	kill -HUP $daemon_pid &&
	wait_for 10 grep -q "SIGHUP" daemon.log &&
	test "$(descendants $daemon_pid)" = "$kids" &&
	cont_receiver $daemon_pid &&
	wait_for 30 prop_is h successes 1 &&
	assert_same_tree src2 dh
'

test_expect_success '69a: SIGHUP mid-transfer with an invalid configuration: rejected with a log line, the transfer ends, the old one stays' '
	echo more >src2/g &&
	n=$(autosync get h successes) &&
	autosync run h &&
	wait_kids $daemon_pid 2 && kids=$(descendants $daemon_pid) &&
	db "INSERT OR REPLACE INTO props (service, key, value) SELECT id, '"'"'rate_limit'"'"', '"'"'fast'"'"' FROM services WHERE name = '"'"'h'"'"';
	    UPDATE services SET schedule = '"'"'every banana'"'"' WHERE name = '"'"'h'"'"';" &&
	kill -HUP $daemon_pid &&
	wait_for 10 grep -q "invalid configuration rejected" daemon.log &&
	cat daemon.log &&
	test_grep "service .h.: invalid configuration rejected: schedule: .*banana.*; the previous one stays" daemon.log &&
	test "$(grep -c "invalid configuration rejected" daemon.log)" = 1 &&
	autosync log h >log.out && test_grep "invalid configuration rejected" log.out &&
	kill -0 $daemon_pid &&
	test "$(descendants $daemon_pid)" = "$kids" &&
	cont_receiver $daemon_pid &&
	wait_for 30 prop_is h successes $((n + 1)) &&
	assert_same_tree src2 dh
'

test_expect_success '69a: the next run starts with the kept configuration (keep_src=2), not the invalid one' '
	echo again >src2/h &&
	(exec autosync run h --wait >rw.out 2>&1) &
	pid=$!
	cont_receiver $daemon_pid &&
	{ wait $pid; rc=$?; } && cat rw.out && test $rc = 0 &&
	assert_same_tree src2 dh &&
	autosync snapshots -H "$T/src2" >snaps.out && cat snaps.out &&
	test "$(grep -c "^autosync_" snaps.out)" = 2 &&
	test_grep ! "cannot start a run" daemon.log
'

test_expect_success '69a: the configuration made valid again is taken, and said' '
	db "DELETE FROM props WHERE key = '"'"'rate_limit'"'"';
	    UPDATE services SET schedule = '"'"'every 2h'"'"' WHERE name = '"'"'h'"'"';" &&
	kill -HUP $daemon_pid &&
	wait_for 10 grep -q "configuration is valid again" daemon.log &&
	stop_daemon
'

# §F 61: `autosync run` (foreground: it writes the state DB itself)
# killed at the n-th pwrite64 or fdatasync that touches the DB or its
# WAL (strace -P: only those are traced and counted).  A run makes about
# 23 pwrite64 and 5 fdatasync of them; a sample of each.
DB=$AUTOSYNC_STATE_DIR/autosync.db

# db_ok: integrity_check is ok and no run is open
db_ok() {
	test "$(db "PRAGMA integrity_check")" = ok &&
	test "$(db "SELECT COUNT(*) FROM runs WHERE ended IS NULL")" = 0
}

# kill_db_at SYSCALL N: one run killed at the N-th SYSCALL on the DB,
# then the checks; the trial's lines in trials.log
kill_db_at() {
	local rc last
	echo "$1 $2" >>"src3/n-$1-$2"
	test_strace -qq -o st.log -y -P "$DB" -P "$DB-wal" -P "$DB-journal" \
		-e trace=pwrite64,fdatasync,fsync \
		-e inject="$1":signal=SIGKILL:when="$2" \
		autosync run d 2>run.err
	rc=$?
	last=$(grep -v "^+++" st.log | tail -n 1 |
		sed -n "s|^\([a-z0-9]*\)([0-9]*<[^>]*/\([^/>]*\)>.*|\1 on \2|p")
	echo "$1 #$2: exit $rc, the last call: $last" >>trials.log
	case $rc in
	137) grep -q "killed by SIGKILL" st.log || { echo "$1 #$2: not killed by strace"; return 1; } ;;
	0) ;;
	*) echo "$1 #$2: exit $rc"; cat run.err; return 1 ;;
	esac
	test "$(db "PRAGMA integrity_check")" = ok || {
		echo "$1 #$2: integrity_check failed"; return 1; }
	autosync run d 2>run2.err || { echo "$1 #$2: the next run failed"; cat run2.err; return 1; }
	db_ok || { echo "$1 #$2: a run is left open"; db "SELECT * FROM runs"; return 1; }
	assert_same_tree src3 d3
}

test_expect_success STRACE '61: setup: a service run in the foreground' '
	mkdir src3 && echo a >src3/a &&
	autosync create d --source "$T/src3" --dest "$T/d3" --every 1d &&
	autosync run d && db_ok
'

test_expect_success STRACE '61: SIGKILL at the n-th write of the state DB: integrity ok, no run left open, the next run works' '
	for n in 1 2 5 9 14 20; do
		kill_db_at pwrite64 $n || return 1
	done &&
	cat trials.log &&
	test "$(grep -c "exit 137" trials.log)" -ge 5 &&
	autosync log d >log.out && test_grep "interrupted" log.out
'

test_expect_success STRACE '61: SIGKILL at the n-th fdatasync of the state DB: the same' '
	: >trials.log &&
	for n in 1 3 5; do
		kill_db_at fdatasync $n || return 1
	done &&
	cat trials.log &&
	test "$(grep -c "exit 137" trials.log)" = 3
'

# §F 63, dir engine: a service a63 pushes src4 over tcp, slowly
# (rate_limit), while service b63 from the same source with keep_src=1
# and a destroy of a63's base try to prune; after it, b63's prune keeps
# what a63 holds, and a63's next run is an incremental.  Each service
# holds its own snapshot: a63's base (the older) and b63's.  A refused
# prune waits 2 s for the lock (SNAP_LOCK_WAIT_MS): the transfer takes 8.
snap_names() { autosync snapshots -H "$T/src4" | cut -f1 | grep "^autosync_" | sort; }

test_expect_success '63: setup: two services of one source, one over tcp' '
	mkdir src4 r63 && head -c 8M /dev/urandom >src4/f1 &&
	net_serve p63 --key "$T/keys/psk.key" --root "$T/r63" &&
	autosync create a63 --source "$T/src4" \
		--dest "tcp://127.0.0.1:$SERVE_PORT/p63" --every 1d \
		--key "$T/keys/psk.key" &&
	autosync create b63 --source "$T/src4" --dest "$T/d63b" --every 1d &&
	autosync set a63 keep_src=1 && autosync set b63 keep_src=1 &&
	autosync run a63 && autosync run b63 &&
	snap_names >snaps0 && cat snaps0 && test "$(wc -l <snaps0)" = 2
'

test_expect_success '63: a prune during a slow transfer is refused (busy): the base stays while it is sent, what b63 holds after' '
	head -c 8M /dev/urandom >src4/f2 && autosync set a63 rate_limit=1M &&
	base=$(head -n 1 snaps0) || return 1
	(exec autosync run a63 2>a63.err) &
	pid=$!
	test_when_finished "kill_ours \$pid" &&
	wait_for 20 eval "test -d r63/p63/.autosync/stage" &&
	test_expect_code 20 autosync run b63 2>b.err && cat b.err &&
	test_grep "is busy" b.err &&
	test_expect_code 20 autosync destroy "$T/src4@$base" 2>d.err && cat d.err &&
	test_grep "is busy" d.err &&
	snap_names >snaps-mid && grep -qx "$base" snaps-mid &&
	kill -0 $pid &&
	{ wait $pid; rc=$?; } && cat a63.err && test $rc = 0 &&
	assert_same_tree src4 r63/p63 &&
	snap_names >snaps1 && cat snaps1 &&
	grep -qx "$(tail -n 1 snaps0)" snaps1 && test "$(wc -l <snaps1)" = 2
'

test_expect_success '63: the next prune keeps what the other destination holds; its next run is incremental' '
	autosync run b63 && assert_same_tree src4 d63b &&
	snap_names >snaps2 && cat snaps2 &&
	! grep -qx "$(head -n 1 snaps0)" snaps2 &&
	! grep -qx "$(tail -n 1 snaps0)" snaps2 &&
	grep -qx "$(tail -n 1 snaps1)" snaps2 &&
	echo small >src4/s && autosync set a63 rate_limit=0 &&
	autosync run a63 && assert_same_tree src4 r63/p63 &&
	sent_below a63 1048576
'

# §E 50: wrong keys from one address make its handshakes wait
# (transport/penalty.h: 5 free; the 6th makes the next wait 1 s, the
# 7th 2 s, ... up to 6 s).  The server
# listens on every address of a namespace of its own whose lo also has
# 10.50.0.1 and 10.50.0.2 (loopback itself is exempt): a client that
# connects to one of them comes from it, so the guesser (10.50.0.2) and
# the other client (10.50.0.1) are two peers.
# ms_of CMD...: run CMD, its wall time in ms in $ms, its status in $rc
ms_of() {
	local t0
	t0=$(date +%s%N)
	"$@"; rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
}

test_expect_success NETNS '50: setup: serve on every address of a namespace, a wrong key' '
	net_ns_setup &&
	net_run ip addr add 10.50.0.1/32 dev lo &&
	net_run ip addr add 10.50.0.2/32 dev lo &&
	net_deadline 30 autosync keygen --out wrong &&
	mkdir r50 && mkdir s50 && echo x >s50/x &&
	P50=$(net_free_port --ns) &&
	test_bg "ip netns exec $NET_NS setsid ${NET_PDEATH}autosync serve -v --listen 0.0.0.0:$P50 --key $T/keys/psk.key --root $T/r50 >>serve50.log 2>&1" &&
	S50=$test_bg_pid && echo "$S50" >>"$NET_DIR/groups" &&
	net_wait_listen "$P50" "$S50" --ns
'

test_expect_success NETNS '50: repeated wrong keys from one address wait longer and longer, and it is logged' '
	: >tries.log &&
	for i in 1 2 3 4 5 6 7; do
		ms_of net_run autosync sync --key "$T/wrong/psk.key" s50 \
			"tcp://10.50.0.2:$P50/w" 2>w.err
		echo "wrong key $i: exit $rc in $ms ms" >>tries.log
		test $rc = 21 || { cat w.err; return 1; }
	done &&
	cat tries.log &&
	test "$(sed -n "5s/.* in \([0-9]*\) ms/\1/p" tries.log)" -lt 1000 &&
	test "$(sed -n "7s/.* in \([0-9]*\) ms/\1/p" tries.log)" -ge 900 &&
	test_grep "10.50.0.2.: 6 wrong keys in 60 s: its handshakes wait 1 s" serve50.log &&
	test_grep "10.50.0.2.: 7 wrong keys in 60 s: its handshakes wait 2 s" serve50.log &&
	test "$(grep -c "refused .10.50.0.2:[0-9]*.: authentication failed" serve50.log)" = 7 &&
	test_path_is_missing r50/w
'

test_expect_success NETNS '50: 20 guessers at once from that address do not slow a client from another one' '
	n0=$(grep -c "refused .10.50.0.2:[0-9]*.: authentication failed" serve50.log) &&
	flood=
	test_when_finished "kill_ours \$flood" &&
	for i in $(seq 20); do
		# a source each: a sync holds its source'"'"'s catalogs, and the
		# client below must not find s50 busy
		mkdir -p "s50g$i" && echo x >"s50g$i/x" &&
		(exec ip netns exec $NET_NS autosync sync --key "$T/wrong/psk.key" \
			"s50g$i" "tcp://10.50.0.2:$P50/w" 2>/dev/null) &
		flood="$flood $!"
	done &&
	sleep 0.5 &&
	ms_of net_run autosync sync --key "$T/keys/psk.key" s50 \
		"tcp://10.50.0.1:$P50/ok1" &&
	echo "right key from 10.50.0.1: exit $rc in $ms ms" &&
	test $rc = 0 && test $ms -lt 3000 &&
	assert_same_tree s50 r50/ok1 &&
	for p in $flood; do
		{ wait $p; r=$?; } && test $r != 0 || { echo "guesser $p: exit $r"; return 1; }
	done &&
	n1=$(grep -c "refused .10.50.0.2:[0-9]*.: authentication failed" serve50.log) &&
	echo "$((n1 - n0)) of the 20 guessers tried a key (the rest dropped at the cap)" &&
	test $((n1 - n0)) -ge 10 &&
	test_path_is_missing r50/w
'

test_expect_success NETNS '50: one with the right key from the guessing address waits, but is served' '
	ms_of net_run autosync sync --key "$T/keys/psk.key" s50 \
		"tcp://10.50.0.2:$P50/ok2" &&
	echo "right key from 10.50.0.2: exit $rc in $ms ms" &&
	test $rc = 0 && test $ms -ge 1000 &&
	assert_same_tree s50 r50/ok2 &&
	net_kill_group $S50 TERM
'

test_done
