#!/bin/bash
test_description='dir: an interrupted transfer resumes at the receiver'"'"'s checkpoint

A 96 MiB tree (four 24 MiB random files and a small directory) is sent;
the receiver checkpoints every 16 MiB of stream
(AUTOSYNC_DIR_CHECKPOINT_MS=0 lifts the 1 s floor).  The transfer is cut
(an I/O error injected into the receiver, a kill -9 of the receiving
child, a kill -9 of the serving process of a tcp:// push, twice); the
next sync says it resumed and sends at most what was not checkpointed
plus one interval (RELIABILITY.md O8), and the result is exactly the
source (rsync -c prints nothing).  A source changed between the cut and
the retry is sent again from the start, and the sync says so.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"

T=$TRASH_DIRECTORY
export AUTOSYNC_DIR_CHECKPOINT_MS=0

# same_tree SRC DST: rsync finds nothing to do
same_tree() {
	out=$(rsync -naHAXc --numeric-ids --delete --exclude=/.autosync \
		"$1/" "$2/") && test -z "$out" || { echo "differs: $out"; false; }
}

# ckpt_mib DST: the stream MiB the destination's checkpoint covers
ckpt_mib() {
	awk '$1 == "bytes" { print int($2 / 1048576) }' "$1/.autosync/partial" 2>/dev/null
}

# sent_mib FILE: the "stream" figure of sync -v, in whole MiB
sent_mib() {
	sed -n 's/.* of data, \([0-9.]*\) \([KMG]*i*B\) stream.*/\1 \2/p' "$1" |
	awk '{ v = $1; if ($2 == "GiB") v *= 1024; if ($2 == "KiB") v /= 1024;
	       if ($2 == "B") v /= 1048576; print int(v + 0.999) }'
}

# wait_ckpt DST MIB: until the checkpoint covers at least MIB (10 s)
wait_ckpt() {
	local i=0
	while test $i -lt 1000; do
		c=$(ckpt_mib "$1")
		test -n "$c" && test "$c" -ge "$2" && return 0
		sleep 0.01
		i=$((i + 1))
	done
	return 1
}

# run_bg CMD...: run CMD in the background, quietly ($pid: its own PID, not
# a subshell's)
run_bg() { "$@" >/dev/null 2>&1 & pid=$!; }

# kill_children PID: kill -9 the direct children of PID
kill_children() {
	for c in $(ps -o pid= --ppid "$1"); do kill -9 "$c" 2>/dev/null; done
	return 0
}

test_expect_success 'setup: a 96 MiB source' '
	mkdir -p src/sub &&
	for i in 1 2 3 4; do head -c 24M /dev/urandom >src/f$i || return 1; done &&
	echo small >src/sub/a && ln -s f1 src/link
'

test_expect_success 'local: an I/O error mid-stream keeps the checkpoint' '
	test_expect_code 40 env AUTOSYNC_FAULT=recv_write:5:60 \
		autosync sync src dst 2>err &&
	grep "Input/output error" err &&
	test -f dst/.autosync/partial &&
	! test -e dst/f1 &&
	test "$(ls -A dst | grep -vx .autosync)" = "" &&
	c=$(ckpt_mib dst) && test "$c" -ge 16 && echo "$c" >ckpt1
'

test_expect_success 'local: the next sync resumes and re-sends at most one interval' '
	autosync sync -v src dst >out 2>&1 && cat out &&
	grep "resumed an interrupted transfer at entry" out &&
	s=$(sent_mib out) && c=$(cat ckpt1) &&
	echo "sent $s MiB after a checkpoint at $c MiB of 96" &&
	test "$s" -le $((96 - c + 16)) && test "$s" -lt 96 &&
	same_tree src dst && ! test -e dst/.autosync/partial &&
	! test -e dst/.autosync/stage
'

test_expect_success 'local: kill -9 of the receiving child, then resume' '
	rm -rf dst2 &&
	run_bg autosync sync src dst2 &&
	wait_ckpt dst2 16 && kill_children $pid &&
	{ wait $pid; test $? -ne 0; } &&
	c=$(ckpt_mib dst2) && test "$c" -ge 16 &&
	test "$(ls -A dst2 | grep -vx .autosync)" = "" &&
	autosync sync -v src dst2 >out 2>&1 && cat out &&
	grep "resumed an interrupted transfer" out &&
	s=$(sent_mib out) && echo "sent $s MiB after a checkpoint at $c MiB" &&
	test "$s" -le $((96 - c + 16)) &&
	same_tree src dst2
'

test_expect_success 'local: a source changed after the cut starts over' '
	rm -rf dst3 &&
	test_expect_code 40 env AUTOSYNC_FAULT=recv_write:5:60 \
		autosync sync src dst3 2>/dev/null &&
	test -f dst3/.autosync/partial &&
	echo changed >>src/f1 &&
	autosync sync -v src dst3 >out 2>&1 && cat out &&
	grep "source changed since the interrupted transfer" out &&
	! grep "resumed an interrupted" out &&
	s=$(sent_mib out) && test "$s" -ge 96 &&
	same_tree src dst3
'

test_expect_success 'incremental: a PATCH cut inside one file resumes inside it' '
	dd if=/dev/urandom of=src/f3 bs=1M count=22 conv=notrunc 2>/dev/null &&
	test_expect_code 40 env AUTOSYNC_FAULT=recv_write:5:20 \
		autosync sync src dst 2>/dev/null &&
	c=$(ckpt_mib dst) && test "$c" -ge 16 &&
	grep "^position" dst/.autosync/partial &&
	autosync sync -v src dst >out 2>&1 && cat out &&
	grep "resumed an interrupted transfer at entry [0-9]*, block [1-9]" out &&
	s=$(sent_mib out) && echo "sent $s MiB of 22 after a checkpoint at $c" &&
	test "$s" -le $((22 - c + 2)) &&
	same_tree src dst
'

test_expect_success 'incremental: a cut PATCH/CREATE mix resumes too' '
	head -c 40M /dev/urandom >src/f5 &&
	dd if=/dev/urandom of=src/f2 bs=1M count=20 conv=notrunc 2>/dev/null &&
	test_expect_code 40 env AUTOSYNC_FAULT=recv_write:5:30 \
		autosync sync src dst 2>/dev/null &&
	test -f dst/.autosync/partial &&
	autosync sync -v src dst >out 2>&1 && cat out &&
	grep "resumed an interrupted transfer" out &&
	same_tree src dst
'

net_has_serve || { test_done; exit 0; }

test_expect_success 'tcp: setup a server' '
	net_deadline 30 autosync keygen --out keys >/dev/null &&
	mkdir root &&
	net_serve r --key "$T/keys/psk.key" --root "$T/root"
'

# push_bg DST: a rate-limited push in the background ($pid)
push_bg() {
	run_bg autosync sync --key "$T/keys/psk.key" --rate-limit 40M --timeout 5 \
		src "tcp://127.0.0.1:$SERVE_PORT/$1"
}

test_expect_success 'tcp: the serving process killed twice, each retry resumes' '
	push_bg d1 && wait_ckpt root/d1 16 && kill_children $SERVE_PID &&
	{ wait $pid; test $? -ne 0; } &&
	c1=$(ckpt_mib root/d1) && test "$c1" -ge 16 &&
	push_bg d1 && wait_ckpt root/d1 $((c1 + 16)) &&
	kill_children $SERVE_PID && { wait $pid; test $? -ne 0; } &&
	c2=$(ckpt_mib root/d1) && test "$c2" -gt "$c1" &&
	test "$(ls -A root/d1 | grep -vx .autosync)" = "" &&
	net_deadline 60 autosync sync -v --key "$T/keys/psk.key" src \
		"tcp://127.0.0.1:$SERVE_PORT/d1" >out 2>&1 && cat out &&
	grep "resumed an interrupted transfer at entry" out &&
	s=$(sent_mib out) &&
	echo "checkpoints at $c1 and $c2 MiB; the last leg sent $s MiB" &&
	total=$(du -sm --apparent-size src | cut -f1) &&
	test "$s" -le $((total - c2 + 16)) &&
	same_tree src root/d1
'

test_expect_success 'tcp: a cut pull resumes at the local checkpoint' '
	mkdir -p root/psrc &&
	cp src/f1 src/f2 src/f3 src/f4 root/psrc/ &&
	run_bg autosync sync --key "$T/keys/psk.key" --rate-limit 40M --timeout 5 \
		"tcp://127.0.0.1:$SERVE_PORT/psrc" pdst &&
	wait_ckpt pdst 16 && kill_children $SERVE_PID &&
	{ wait $pid; test $? -ne 0; } &&
	c=$(ckpt_mib pdst) && test "$c" -ge 16 &&
	test "$(ls -A pdst | grep -vx .autosync)" = "" &&
	net_deadline 60 autosync sync -v --key "$T/keys/psk.key" \
		"tcp://127.0.0.1:$SERVE_PORT/psrc" pdst >out 2>&1 && cat out &&
	grep "resumed an interrupted transfer at entry" out &&
	s=$(sent_mib out) && echo "sent $s MiB of 96 after a checkpoint at $c" &&
	test "$s" -le $((96 - c + 16)) &&
	same_tree root/psrc pdst
'

test_expect_success 'tcp: a pull whose source changed after the cut starts over' '
	mkdir -p root/psrc2 && cp src/f1 src/f2 src/f3 root/psrc2/ &&
	run_bg autosync sync --key "$T/keys/psk.key" --rate-limit 40M --timeout 5 \
		"tcp://127.0.0.1:$SERVE_PORT/psrc2" pdst2 &&
	wait_ckpt pdst2 16 && kill_children $SERVE_PID &&
	{ wait $pid; test $? -ne 0; } &&
	echo more >>root/psrc2/f1 &&
	net_deadline 60 autosync sync -v --key "$T/keys/psk.key" \
		"tcp://127.0.0.1:$SERVE_PORT/psrc2" pdst2 >out 2>&1 && cat out &&
	grep "did not resume the interrupted transfer" out &&
	grep "source changed since the interrupted transfer" "$SERVE_LOG" &&
	! grep "resumed an interrupted" out &&
	same_tree root/psrc2 pdst2
'

# RELIABILITY 43, run one: the snapshot the cut transfer was sending is
# gone from the sender (no holds on it between runs).  A pull's target is
# the server's pending catalog (not listed, not destroyable by name);
# removed by hand here, as a lost state directory would: the next run
# cannot resume, discards the partial stage and sends anew.
test_expect_success '43: a pull whose target snapshot is gone from the server after the cut starts over' '
	mkdir -p root/psrc3 && cp src/f1 src/f2 src/f3 root/psrc3/ &&
	run_bg autosync sync --key "$T/keys/psk.key" --rate-limit 40M --timeout 5 \
		"tcp://127.0.0.1:$SERVE_PORT/psrc3" pdst3 &&
	wait_ckpt pdst3 16 && kill_children $SERVE_PID &&
	{ wait $pid; test $? -ne 0; } &&
	test -f pdst3/.autosync/partial &&
	pending=$(ls "$AUTOSYNC_STATE_DIR"/catalogs/*psrc3/*.cat.pending) &&
	echo "target: $pending" && test -f "$pending" && rm "$pending" &&
	net_deadline 60 autosync sync -v --key "$T/keys/psk.key" \
		"tcp://127.0.0.1:$SERVE_PORT/psrc3" pdst3 >out 2>&1 && cat out &&
	grep "did not resume the interrupted transfer" out &&
	! grep "resumed an interrupted" out &&
	s=$(sent_mib out) && test "$s" -ge 72 &&
	same_tree root/psrc3 pdst3 &&
	test ! -e pdst3/.autosync/partial
'

if test_have_prereq SSHD; then
test_expect_success 'ssh: a push cut by killing ssh resumes' '
	net_sshd_start && mkdir remote &&
	run_bg env AUTOSYNC_SSH=$NET_SSH autosync sync --rate-limit 40M \
		--timeout 5 src "$SSH_URL_BASE$T/remote/s1" &&
	wait_ckpt remote/s1 16 && kill_children $pid &&
	{ wait $pid; test $? -ne 0; } &&
	c=$(ckpt_mib remote/s1) && test "$c" -ge 16 &&
	test "$(ls -A remote/s1 | grep -vx .autosync)" = "" &&
	AUTOSYNC_SSH=$NET_SSH net_deadline 60 autosync sync -v src \
		"$SSH_URL_BASE$T/remote/s1" >out 2>&1 && cat out &&
	grep "resumed an interrupted transfer at entry" out &&
	s=$(sent_mib out) && total=$(du -sm --apparent-size src | cut -f1) &&
	echo "sent $s MiB of $total after a checkpoint at $c" &&
	test "$s" -le $((total - c + 16)) &&
	same_tree src remote/s1
'
fi

test_done
