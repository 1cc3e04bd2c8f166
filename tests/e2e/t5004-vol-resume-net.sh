#!/bin/bash
test_description='volumes: cut pulls resume over tcp, and vol: over tls

A pull of a volume over tcp:// is cut twice in a row by the fault proxy
(a reset after a fixed number of bytes from the server); each retry
resumes at the destination'"'"'s last checkpoint, so every attempt gets
further, and a third one finishes with less than the whole volume sent.
Meanwhile the destination is never reported as holding a snapshot.  A
resume that names a snapshot the server did not record starts over.  Over
tls:// (mutual certificates): a push in full and then incremental, a pull
in full and then incremental, a cut push and a cut pull that resume.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-vol.sh"
. "$TEST_DIRECTORY/lib-net.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY

# Checkpoints as often as the byte counts allow, on both sides.
AUTOSYNC_VOL_CHECKPOINT_MS=0
export AUTOSYNC_VOL_CHECKPOINT_MS

sync_tcp() { net_deadline 60 autosync sync --key "$T/keys/psk.key" "$@"; }
sync_tls() {
	net_deadline 60 autosync sync --cert "$T/keys/client.crt" \
		--key "$T/keys/client.key" --ca "$T/keys/ca.crt" "$@"
}

test_expect_success 'setup: keys, tcp and tls servers, a 96 MiB volume' '
	net_deadline 30 autosync keygen --out keys >/dev/null &&
	mkdir root &&
	AUTOSYNC_STATE_DIR=$T/server-state \
		net_serve tcp --key "$T/keys/psk.key" --root "$T/root" &&
	U=tcp://127.0.0.1:$SERVE_PORT TCP_PORT=$SERVE_PORT TCP_LOG=$SERVE_LOG &&
	AUTOSYNC_STATE_DIR=$T/server-state \
		net_serve tls --tls --cert "$T/keys/server.crt" \
		--key "$T/keys/server.key" --ca "$T/keys/ca.crt" \
		--root "$T/root" &&
	S=tls://127.0.0.1:$SERVE_PORT TLS_PORT=$SERVE_PORT TLS_LOG=$SERVE_LOG &&
	truncate -s 112M root/v.img &&
	dd if=/dev/urandom of=root/v.img bs=1M count=96 seek=8 conv=notrunc status=none
'

test_expect_success 'a tcp pull cut twice in a row resumes each time' '
	net_proxy rst $TCP_PORT --rst $(( 40 * MIB )) --direction s2c &&
	P=tcp://127.0.0.1:$PROXY_PORT &&
	test_must_fail sync_tcp "$P/vol:/v.img" vol:p.img 2>err1 &&
	cat err1 &&
	o1=$(poffset p.img.autosync) && echo "first cut: $o1" &&
	test "$o1" -gt 0 &&
	grep "^state incomplete" p.img.autosync &&
	autosync snapshots vol:p.img >held && ! grep autosync_ held &&
	test_must_fail sync_tcp -v "$P/vol:/v.img" vol:p.img >out2 2>err2 &&
	cat out2 err2 &&
	o2=$(poffset p.img.autosync) && echo "second cut: $o2" &&
	test "$o2" -gt "$o1" &&
	grep "^state incomplete" p.img.autosync &&
	sync_tcp -v "$U/vol:/v.img" vol:p.img >out &&
	cat out &&
	grep "resumed an interrupted transfer at" out &&
	n=$(data_bytes out) && test "$n" -lt $(( 96 * MIB - o2 + 16 * MIB )) &&
	test "$(sha root/v.img)" = "$(sha p.img)" &&
	! grep "^partial" p.img.autosync &&
	grep "^state complete" p.img.autosync &&
	net_kill "$PROXY_PID"
'

test_expect_success 'the resumed pull is a snapshot on both sides; the next is incremental' '
	autosync --state-dir "$T/server-state" snapshots vol:root/v.img >list &&
	cat list && test "$(grep -c autosync_ list)" = 1 &&
	! ls "$T"/server-state/catalogs/*/*.pending 2>/dev/null &&
	scribble root/v.img 3 &&
	sync_tcp -v "$U/vol:/v.img" vol:p.img >out &&
	cat out &&
	grep "incremental from" out &&
	! grep "resumed" out &&
	n=$(data_bytes out) && test "$n" -le $(( 3 * BS )) &&
	test "$(sha root/v.img)" = "$(sha p.img)"
'

test_expect_success 'a resume the server did not record is refused: the pull starts over' '
	net_proxy rst2 $TCP_PORT --rst $(( 40 * MIB )) --direction s2c \
		--only-conn 1 &&
	P=tcp://127.0.0.1:$PROXY_PORT &&
	truncate -s 52M root/s.img &&
	dd if=/dev/urandom of=root/s.img bs=1M count=48 seek=2 conv=notrunc status=none &&
	test_must_fail sync_tcp "$P/vol:/s.img" vol:q.img 2>err &&
	test "$(poffset q.img.autosync)" -gt 0 &&
	sed -i "s/^partial_guid .*/partial_guid 0123456789abcdef/" q.img.autosync &&
	sync_tcp -v "$P/vol:/s.img" vol:q.img >out &&
	cat out &&
	! grep "resumed" out &&
	n=$(data_bytes out) && test "$n" -eq $(( 48 * MIB )) &&
	test "$(sha root/s.img)" = "$(sha q.img)" &&
	! grep "^partial" q.img.autosync &&
	net_kill "$PROXY_PID"
'

test_expect_success 'tls: push full, then incremental' '
	truncate -s 16M a.img &&
	scribble a.img 20 &&
	sync_tls -v vol:a.img "$S/vol:/a.img" >out &&
	cat out && grep "full to" out &&
	test "$(sha a.img)" = "$(sha root/a.img)" &&
	scribble a.img 4 &&
	sync_tls -v vol:a.img "$S/vol:/a.img" >out &&
	cat out && grep "incremental from" out &&
	n=$(data_bytes out) && test "$n" -gt 0 && test "$n" -le $(( 4 * BS )) &&
	test "$(sha a.img)" = "$(sha root/a.img)"
'

test_expect_success 'tls: pull full, then incremental' '
	sync_tls -v "$S/vol:/a.img" vol:ta.img >out &&
	cat out && grep "full to" out &&
	test "$(sha root/a.img)" = "$(sha ta.img)" &&
	scribble root/a.img 2 &&
	sync_tls -v "$S/vol:/a.img" vol:ta.img >out &&
	cat out && grep "incremental from" out &&
	n=$(data_bytes out) && test "$n" -le $(( 2 * BS )) &&
	test "$(sha root/a.img)" = "$(sha ta.img)"
'

# cut_resume SYNC LOG FROM TO FROM_FILE TO_FILE [DIR]: SYNC (sync_tcp or
# sync_tls) FROM -> TO is cut by the proxy and fails; once LOG's server
# has ended that session (it notices the cut after the client, and may
# still be saving its checkpoint and holding the image), TO_FILE's record
# holds a checkpoint; the retry resumes there, sends less than the 48 MiB
# of data, and the images match.  DIR (c2s, s2c): the proxy first carried
# more than the whole image that way (the sender had written everything).
cut_resume() {
	local e n
	e=$(net_serve_nended "$2") &&
	test_must_fail "$1" "$3" "$4" 2>err &&
	cat err &&
	{ test -z "$7" || test "$(net_proxy_stat "$7")" -gt $(( 48 * MIB )); } &&
	net_wait_for 30 net_serve_ended "$2" $((e + 1)) &&
	test "$(poffset "$6.autosync")" -gt 0 &&
	"$1" -v "$3" "$4" >out &&
	cat out &&
	grep "resumed an interrupted transfer at" out &&
	n=$(data_bytes out) && test "$n" -lt $(( 48 * MIB )) &&
	test "$(sha "$5")" = "$(sha "$6")" &&
	net_kill "$PROXY_PID"
}

# (a push names its destination by URL: the retry goes through the same
# proxy, which cuts only the first connection)
test_expect_success 'tls: a cut push and a cut pull resume' '
	truncate -s 52M w.img &&
	dd if=/dev/urandom of=w.img bs=1M count=48 seek=2 conv=notrunc status=none &&
	net_proxy tlsrst $TLS_PORT --rst $(( 36 * MIB )) --direction c2s \
		--only-conn 1 &&
	C=tls://127.0.0.1:$PROXY_PORT &&
	cut_resume sync_tls "$TLS_LOG" vol:w.img "$C/vol:/w.img" w.img root/w.img &&
	net_proxy tlsrst2 $TLS_PORT --rst $(( 36 * MIB )) --direction s2c \
		--only-conn 1 &&
	C=tls://127.0.0.1:$PROXY_PORT &&
	cut_resume sync_tls "$TLS_LOG" "$C/vol:/w.img" vol:tw.img w.img tw.img
'

# The cut comes after the sender has written its whole stream (the proxy
# drops the rest of it, then resets): the sender's pending catalog is then
# complete, not a checkpoint's prefix, and resumes as well.  The stat line
# proves the sender got that far.
test_expect_success 'a push and a pull cut after their sender wrote everything resume' '
	truncate -s 52M x.img &&
	dd if=/dev/urandom of=x.img bs=1M count=48 seek=2 conv=notrunc status=none &&
	net_proxy droprst $TCP_PORT --drop-rst $(( 36 * MIB )):1500 \
		--direction c2s --only-conn 1 &&
	P=tcp://127.0.0.1:$PROXY_PORT &&
	cut_resume sync_tcp "$TCP_LOG" vol:x.img "$P/vol:/x.img" x.img \
		root/x.img c2s &&
	net_proxy droprst2 $TCP_PORT --drop-rst $(( 36 * MIB )):1500 \
		--direction s2c --only-conn 1 &&
	P=tcp://127.0.0.1:$PROXY_PORT &&
	cut_resume sync_tcp "$TCP_LOG" "$P/vol:/x.img" vol:px.img x.img px.img s2c
'

test_expect_success 'no sanitizer report in the servers'"'"' logs' '
	net_logs_clean
'

test_done
