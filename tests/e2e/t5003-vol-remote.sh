#!/bin/bash
test_description='volumes over the network: vol: paths through tcp:// and
ssh://, push and pull

"autosync sync vol:IMG tcp://127.0.0.1:PORT/vol:/r.img" (and ssh:// through
a real sshd on 127.0.0.1) replicates an image file in full, then only its
changed blocks; pulls go the other way.  The path prefix selects the
server'"'"'s engine: serve'"'"'s confinement applies to vol: paths (".." and a
symbolic link below the root are refused, an ro root refuses a push, a
path outside every root is refused) and an engine the server does not
serve is UNSUPPORTED.  A push killed mid-transfer resumes at the last
journaled block instead of zero.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-vol.sh"
. "$TEST_DIRECTORY/lib-net.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY

sync_tcp() { net_deadline 60 autosync sync --key "$T/keys/psk.key" "$@"; }

test_expect_success 'setup: keys, a served root with its own state, an image' '
	net_deadline 30 autosync keygen --out keys >/dev/null &&
	mkdir root outside &&
	AUTOSYNC_STATE_DIR=$T/server-state \
		net_serve q --key "$T/keys/psk.key" --root "$T/root" &&
	U=tcp://127.0.0.1:$SERVE_PORT &&
	truncate -s 48M a.img &&
	scribble a.img 60
'

test_expect_success 'tcp push: full, then only the changed blocks' '
	sync_tcp -v vol:a.img "$U/vol:/r.img" >out &&
	cat out &&
	grep "full to" out &&
	test "$(sha a.img)" = "$(sha root/r.img)" &&
	test -f root/r.img.autosync &&
	scribble a.img 4 &&
	sync_tcp -v vol:a.img "$U/vol:/r.img" >out &&
	cat out &&
	grep "incremental from" out &&
	test "$(sha a.img)" = "$(sha root/r.img)" &&
	n=$(data_bytes out) && test "$n" -gt 0 && test "$n" -le $(( 4 * BS ))
'

test_expect_success 'tcp pull: full, then incremental' '
	sync_tcp -v "$U/vol:/r.img" vol:p.img >out &&
	cat out &&
	test "$(sha root/r.img)" = "$(sha p.img)" &&
	scribble root/r.img 3 &&
	sync_tcp -v "$U/vol:/r.img" vol:p.img >out &&
	cat out &&
	grep "incremental from" out &&
	test "$(sha root/r.img)" = "$(sha p.img)" &&
	n=$(data_bytes out) && test "$n" -le $(( 3 * BS )) &&
	autosync --state-dir "$T/server-state" snapshots vol:root/r.img >list &&
	cat list && test "$(grep -c autosync_ list)" = 1
'

test_expect_success 'send | receive into a remote volume' '
	autosync snapshot vol:a.img@s1 &&
	autosync send vol:a.img@s1 >s1.stream &&
	net_deadline 60 autosync receive --key "$T/keys/psk.key" \
		"$U/vol:/recv.img" <s1.stream &&
	test "$(sha a.img)" = "$(sha root/recv.img)"
'

test_expect_success 'confinement applies to vol: paths' '
	net_ls_root root >ls.before &&
	test_must_fail sync_tcp vol:a.img "$U/vol:/../outside/x.img" 2>err &&
	cat err && grep "not allowed" err &&
	ln -s "$T/outside" root/link &&
	test_must_fail sync_tcp vol:a.img "$U/vol:/link/x.img" 2>err &&
	cat err && grep "symbolic link" err &&
	test_must_fail sync_tcp "$U/vol:/link/y.img" vol:y.img 2>err &&
	grep "symbolic link" err &&
	rm root/link &&
	net_ls_root root >ls.after &&
	test_cmp ls.before ls.after &&
	test "$(ls -A outside)" = ""
'

test_expect_success 'a btrfs: push to a quick-mode server is refused (AUTH: never trusted)' '
	test_expect_code 21 net_deadline 30 autosync receive \
		--key "$T/keys/psk.key" "$U/btrfs:/tank/x" <s1.stream 2>err ||
	{ cat err; false; } &&
	cat err && grep "not trusted" err
'

test_expect_success 'serve --config: an ro root refuses a vol: push' '
	mkdir -p srv/ro srv/rw &&
	cp a.img srv/ro/src.img &&
	cat >serve.conf <<-EOF &&
	client default key $T/keys/psk.key
	allow default $T/srv/ro ro
	allow default $T/srv/rw rw
	EOF
	AUTOSYNC_STATE_DIR=$T/server-state \
		net_serve conf --config "$T/serve.conf" &&
	C=tcp://127.0.0.1:$SERVE_PORT &&
	test_must_fail sync_tcp vol:a.img "$C/vol:$T/srv/ro/x.img" 2>err &&
	cat err && grep "read-only" err &&
	test_path_is_missing srv/ro/x.img &&
	test_must_fail sync_tcp vol:a.img "$C/vol:$T/outside/x.img" 2>err &&
	grep "not in a root" err &&
	sync_tcp vol:a.img "$C/vol:$T/srv/rw/x.img" &&
	test "$(sha a.img)" = "$(sha srv/rw/x.img)" &&
	sync_tcp "$C/vol:$T/srv/ro/src.img" vol:fromro.img &&
	test "$(sha a.img)" = "$(sha fromro.img)"
'

# cut_at REC BYTES CMD...: run CMD in a session of its own, kill -9 the
# whole session once REC says BYTES were received durably
cut_at() {
	local rec=$1 want=$2 i pid
	shift 2
	test_bg "setsid $* >cut.out 2>&1" &&
	pid=$test_bg_pid &&
	for i in $(seq 600); do
		test "$(poffset "$rec")" -ge "$want" && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.02
	done
	kill -KILL -- -$pid 2>/dev/null
	wait $pid 2>/dev/null
	test_wait_session $pid &&
	test "$(poffset "$rec")" -ge "$want" || {
		echo "the transfer was not cut after $want bytes" >&2
		cat cut.out "$rec" >&2
		return 1
	}
}

test_expect_success 'a cut local transfer resumes at its checkpoint, full and incremental' '
	truncate -s 128M big.img &&
	dd if=/dev/urandom of=big.img bs=1M count=96 seek=16 conv=notrunc status=none &&
	cut_at big2.img.autosync $(( 40 * MIB )) env AUTOSYNC_VOL_CHECKPOINT_MS=0 autosync sync vol:big.img vol:big2.img &&
	autosync receive --recover-only vol:big2.img &&
	grep "^state incomplete" big2.img.autosync &&
	autosync sync -v vol:big.img vol:big2.img >out &&
	cat out &&
	grep "resumed an interrupted transfer at" out &&
	n=$(data_bytes out) && test "$n" -lt $(( 96 * MIB )) &&
	test "$(sha big.img)" = "$(sha big2.img)" &&
	old=$(sha big2.img) &&
	dd if=/dev/urandom of=big.img bs=1M count=96 seek=24 conv=notrunc status=none &&
	cut_at big2.img.autosync $(( 40 * MIB )) env AUTOSYNC_VOL_CHECKPOINT_MS=0 autosync sync vol:big.img vol:big2.img &&
	autosync receive --recover-only vol:big2.img &&
	test "$(sha big2.img)" = "$old" &&
	test -f big2.img.autosync-journal &&
	autosync sync -v vol:big.img vol:big2.img >out &&
	cat out &&
	grep "incremental from" out &&
	grep "resumed an interrupted transfer at" out &&
	n=$(data_bytes out) && test "$n" -lt $(( 96 * MIB )) &&
	test "$(sha big.img)" = "$(sha big2.img)" &&
	test_path_is_missing big2.img.autosync-journal
'

test_expect_success 'a push killed mid-transfer over tcp resumes there' '
	truncate -s 112M t.img &&
	dd if=/dev/urandom of=t.img bs=1M count=96 seek=8 conv=notrunc status=none &&
	cut_at root/t.img.autosync $(( 40 * MIB )) autosync sync \
		--rate-limit 48M --key "$T/keys/psk.key" vol:t.img "$U/vol:/t.img" &&
	grep "^partial_guid" root/t.img.autosync &&
	sync_tcp -v vol:t.img "$U/vol:/t.img" >out &&
	cat out &&
	grep "resumed an interrupted transfer at" out &&
	n=$(data_bytes out) && test "$n" -lt $(( 96 * MIB )) &&
	test "$(sha t.img)" = "$(sha root/t.img)" &&
	! grep "^partial" root/t.img.autosync
'

test_expect_success SSHD 'ssh push and pull' '
	net_sshd_start &&
	AUTOSYNC_SSH=$NET_SSH && export AUTOSYNC_SSH &&
	S=$SSH_URL_BASE &&
	net_deadline 60 autosync sync vol:a.img "$S/vol:$T/ssh.img" &&
	test "$(sha a.img)" = "$(sha ssh.img)" &&
	scribble a.img 2 &&
	net_deadline 60 autosync sync -v vol:a.img "$S/vol:$T/ssh.img" >out &&
	grep "incremental from" out &&
	test "$(sha a.img)" = "$(sha ssh.img)" &&
	net_deadline 60 autosync sync "$S/vol:$T/ssh.img" vol:sp.img &&
	test "$(sha a.img)" = "$(sha sp.img)"
'

test_done
