#!/bin/bash
test_description='RELIABILITY.md §D 45: corruption on the resumed leg; §E 46, 47: resume after a
blackhole or a reset

A push over tcp:// of a 64 MiB tree is cut by killing the serving process
once the receiver has checkpointed 16 MiB (as t2010).  The resumed push
then goes through the fault proxy, which flips one bit of it: it must
fail with CHECKSUM (11), or AUTH, or a transient error, leave the
destination empty (O1) and keep the checkpoint it had (the original
progress is not lost).  A third, clean push resumes (O8: it sends less
than the tree) and gives O2.  (The client keeps its pending catalog by
the destination'"'"'s URL and finds it by the checkpoint'"'"'s GUID when the
same destination is reached under another URL.)  The same three legs
for a 64 MiB volume image: CHECKSUM (or the same others), the record
still incomplete at its checkpoint, then a resumed push (O8) and equal
images (O2).

§E 46, 47 (the O8 half; t8101 has the timing and the classes): a push cut
past a 16 MiB checkpoint by a proxy stall (TIMEOUT, 30) or a reset
(transient: IO 40 or TRUNCATED 10) keeps the checkpoint, and the next
push resumes there (O8) and gives O2.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"
. "$TEST_DIRECTORY/lib-vol.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY
export AUTOSYNC_DIR_CHECKPOINT_MS=0

ckpt_mib() {
	awk '$1 == "bytes" { print int($2 / 1048576) }' "$1/.autosync/partial" 2>/dev/null
}
ckpt_ge() { c=$(ckpt_mib "$1") && test -n "$c" && test "$c" -ge "$2"; }
voff_ge() { test "$(poffset "$1")" -ge "$2"; }
kill_children() {
	for c in $(ps -o pid= --ppid "$1"); do kill -9 "$c" 2>/dev/null; done
	return 0
}
sent_mib() {
	sed -n 's/.* of data, \([0-9.]*\) \([KMG]*i*B\) stream.*/\1 \2/p' "$1" |
	awk '{ v = $1; if ($2 == "GiB") v *= 1024; if ($2 == "KiB") v /= 1024;
	       if ($2 == "B") v /= 1048576; print int(v + 0.999) }'
}

test_expect_success 'setup: a 64 MiB tree, a server' '
	mkdir -p src/sub &&
	for i in 1 2 3 4; do head -c 16M /dev/urandom >src/f$i || return 1; done &&
	echo small >src/sub/a &&
	net_deadline 30 autosync keygen --out keys >/dev/null &&
	mkdir root &&
	net_serve r --key "$T/keys/psk.key" --root "$T/root" &&
	# every leg through the same URL (under which the sender keeps its
	# pending catalog): the proxy, which flips a bit of its second
	# connection only; the last case reaches the server by another URL
	net_proxy flip $SERVE_PORT --flip 3000000:4 --only-conn 2 &&
	URL=tcp://127.0.0.1:$PROXY_PORT/d
'

test_expect_success '45: a push cut after a checkpoint' '
	(exec autosync sync --key "$T/keys/psk.key" --rate-limit 40M --timeout 5 \
		src "$URL" >/dev/null 2>&1) &
	pid=$!
	net_wait_for 30 ckpt_ge root/d 16 && kill_children $SERVE_PID &&
	{ wait $pid; test $? -ne 0; } &&
	c1=$(ckpt_mib root/d) && echo "checkpoint at $c1 MiB" &&
	test "$(ls -A root/d | grep -vx .autosync)" = ""
'

test_expect_success '45: the resumed leg bit-flipped: CHECKSUM (or AUTH, or transient), nothing applied' '
	net_deadline 60 autosync sync -v --key "$T/keys/psk.key" --timeout 5 \
		src "$URL" >out 2>&1; rc=$?
	cat out; echo "exit $rc" &&
	test_grep -q "fault conn=2 flip" "$PROXY_LOG" &&
	net_rc_in $rc 11 21 40 10 &&
	test "$(ls -A root/d | grep -vx .autosync)" = ""
'

# What the checkpoint holds was verified when it was written: a CHECKSUM
# failure after it keeps it (dir_recv.c keeps_checkpoint).
test_expect_success '45: the checkpoint survives the corrupted leg' '
	c2=$(ckpt_mib root/d) && echo "checkpoint now at ${c2:-none} MiB" &&
	test -n "$c2" && test "$c2" -ge "$c1"
'

test_expect_success '45: a third push gives O2' '
	net_deadline 60 autosync sync -v --key "$T/keys/psk.key" \
		src "$URL" >out3 2>&1 && cat out3 &&
	net_kill $PROXY_PID &&
	assert_same_tree src root/d &&
	test_path_is_missing root/d/.autosync/partial
'

test_expect_success '45: ... and resumed there (O8: less than the tree)' '
	test_grep "resumed an interrupted transfer" out3 &&
	s=$(sent_mib out3) && echo "sent $s MiB of 64" &&
	test "$s" -lt 64
'

# --- D 45 for a volume: the same three legs, a 64 MiB image ---

test_expect_success '45 (vol): a push cut after a checkpoint' '
	truncate -s 64M v.img &&
	dd if=/dev/urandom of=v.img bs=1M count=64 conv=notrunc status=none &&
	net_proxy vflip $SERVE_PORT --flip 3000000:4 --only-conn 2 &&
	VURL=tcp://127.0.0.1:$PROXY_PORT/vol:/v.img || return 1
	(AUTOSYNC_VOL_CHECKPOINT_MS=0 exec autosync sync --key "$T/keys/psk.key" \
		--rate-limit 40M --timeout 5 vol:v.img "$VURL" >/dev/null 2>&1) &
	pid=$!
	net_wait_for 30 voff_ge root/v.img.autosync $((16 * 1048576)) &&
	kill_children $SERVE_PID &&
	{ wait $pid; test $? -ne 0; } &&
	v1=$(poffset root/v.img.autosync) && echo "checkpoint at $v1 bytes" &&
	grep "^state incomplete" root/v.img.autosync
'

test_expect_success '45 (vol): the resumed leg bit-flipped fails, nothing applied' '
	net_deadline 60 autosync sync -v --key "$T/keys/psk.key" --timeout 5 \
		vol:v.img "$VURL" >out 2>&1; rc=$?
	cat out; echo "exit $rc" &&
	test_grep -q "fault conn=2 flip" "$PROXY_LOG" &&
	net_rc_in $rc 11 21 40 10 &&
	grep "^state incomplete" root/v.img.autosync &&
	v2=$(poffset root/v.img.autosync) && echo "checkpoint now at $v2" &&
	test "$v2" -ge "$v1"
'

test_expect_success '45 (vol): a third push resumes there (O8) and gives O2' '
	net_deadline 60 autosync sync -v --key "$T/keys/psk.key" \
		vol:v.img "$VURL" >out3 2>&1 && cat out3 &&
	net_kill $PROXY_PID &&
	test_grep "resumed an interrupted transfer" out3 &&
	n=$(data_bytes out3) && echo "sent $n bytes of 64 MiB" &&
	test "$n" -lt $((64 * 1048576)) &&
	test "$(sha v.img)" = "$(sha root/v.img)" &&
	grep "^state complete" root/v.img.autosync
'

# --- E 46, 47: after a blackhole or a reset, the retry resumes (O8) ---

# cut_then_resume NAME PROXY-OPTIONS WANT-EXIT...: a push of src to a new
# destination through the proxy (which cuts its first connection past
# 32 MiB of 64), then a clean push through the same proxy (so the same
# URL) that must resume: fewer MiB than the tree, O2.
cut_then_resume() {
	local name=$1 opts=$2 rc c s
	shift 2
	net_proxy "$name" $P2 $opts --only-conn 1 &&
	net_deadline 60 autosync sync --key "$T/keys/psk.key" --timeout 3 \
		src "tcp://127.0.0.1:$PROXY_PORT/$name" >out 2>&1
	rc=$?
	cat out; echo "$name: exit $rc"
	net_rc_in $rc "$@" &&
	c=$(ckpt_mib root/$name) && echo "checkpoint at ${c:-none} MiB" &&
	test -n "$c" && test "$c" -ge 16 &&
	test "$(ls -A root/$name | grep -vx .autosync)" = "" &&
	net_deadline 60 autosync sync -v --key "$T/keys/psk.key" \
		src "tcp://127.0.0.1:$PROXY_PORT/$name" >out 2>&1; rc=$?
	cat out; net_kill $PROXY_PID
	test $rc = 0 &&
	test_grep "resumed an interrupted transfer" out &&
	s=$(sent_mib out) && echo "the retry sent $s MiB of 64" &&
	test "$s" -le $((64 - c + 16)) &&
	assert_same_tree src root/$name
}

test_expect_success '46, 47: a server with a 3 s idle timeout' '
	net_serve r2 --key "$T/keys/psk.key" --root "$T/root" --timeout 3 &&
	P2=$SERVE_PORT
'

test_expect_success '46: a blackhole (proxy stall) past a checkpoint: TIMEOUT, then the retry resumes (O8)' '
	cut_then_resume bh "--stall-after 40000000" 30
'

test_expect_success '47: a reset (proxy RST) past a checkpoint: a transient error, then the retry resumes (O8)' '
	cut_then_resume rst "--rst 40000000" 40 10
'

# The retry names the server directly, not through the proxy: another
# URL, so the sender has no record of a transfer to it; it finds its
# pending catalog by the GUID of the server'"'"'s checkpoint (sync.c
# resume_candidate) and resumes all the same.
test_expect_success '47: the retry reaches the same destination by another URL and still resumes (O8)' '
	net_proxy rst2 $P2 --rst 40000000 --only-conn 1 &&
	net_deadline 60 autosync sync --key "$T/keys/psk.key" --timeout 3 \
		src "tcp://127.0.0.1:$PROXY_PORT/other" >out 2>&1
	rc=$?
	cat out; net_kill $PROXY_PID
	net_rc_in $rc 40 10 &&
	c=$(ckpt_mib root/other) && echo "checkpoint at ${c:-none} MiB" &&
	test -n "$c" && test "$c" -ge 16 &&
	net_deadline 60 autosync sync -v --key "$T/keys/psk.key" \
		src "tcp://127.0.0.1:$P2/other" >out 2>&1 && cat out &&
	test_grep "resumed an interrupted transfer" out &&
	s=$(sent_mib out) && echo "the retry sent $s MiB of 64" &&
	test "$s" -le $((64 - c + 16)) &&
	assert_same_tree src root/other
'

test_expect_success 'no sanitizer report or internal error in the server logs' '
	net_logs_clean
'

test_done
