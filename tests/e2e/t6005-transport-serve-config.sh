#!/bin/bash
test_description='transport: autosync serve --config (clients, roots, ro/rw)

Two clients with their own PSKs: alice may push to her root and pull
from it; bob may only pull from alice'"'"'s root (ro) and push to his own.
Every other combination, a path outside every root, a relative path, a
symlink under a root and an unknown key is refused and creates nothing.
Without a config and without --root nothing is reachable.  Over ssh,
"serve --stdio --config FILE --client NAME" as a forced command applies
the same rules.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY
SRV=$T/srv

# as WHO [OPTIONS] SRC DST: sync with WHO's key
as() {
	local who=$1
	shift
	net_deadline 60 autosync sync --key "$T/keys-$who/psk.key" "$@"
}
url() { echo "tcp://127.0.0.1:$CONF_PORT$1"; }

# refused WHO SRC DST: as WHO, refused (not 0, not a crash); the served
# tree is as it was
refused() {
	local rc
	net_ls_root "$SRV" >ls.before || return 1
	as "$@" 2>err
	rc=$?
	cat err
	echo "exit $rc"
	# (2 would be our own usage error, not a refusal)
	test $rc != 0 && test $rc != 2 && net_not_crash $rc &&
	net_ls_root "$SRV" >ls.after && test_cmp ls.before ls.after
}

test_expect_success 'setup: keys, roots, config, server' '
	( for who in alice bob carol; do
		net_deadline 30 autosync keygen --out keys-$who --client $who \
			>/dev/null || exit 1
	done ) &&
	mkdir -p "$SRV/alice" "$SRV/bob" "$SRV/other" &&
	mkfixture small small &&
	cat >serve.conf <<-EOF &&
	# two clients
	client alice key $T/keys-alice/psk.key
	client bob key $T/keys-bob/psk.key

	allow alice $SRV/alice rw
	allow bob $SRV/alice ro
	allow bob $SRV/bob rw
	EOF
	net_serve conf --config "$T/serve.conf" &&
	CONF_PORT=$SERVE_PORT CONF_PID=$SERVE_PID CONF_LOG=$SERVE_LOG
'

test_expect_success 'alice pushes to her root and pulls from it' '
	as alice small "$(url "$SRV/alice/data")" &&
	assert_same_tree small "$SRV/alice/data" &&
	as alice "$(url "$SRV/alice/data")" alice-pulled &&
	assert_same_tree small alice-pulled
'

test_expect_success 'bob pulls from alice'"'"'s root (ro) and pushes to his own' '
	as bob "$(url "$SRV/alice/data")" bob-pulled &&
	assert_same_tree small bob-pulled &&
	as bob small "$(url "$SRV/bob/data")" &&
	assert_same_tree small "$SRV/bob/data"
'

test_expect_success 'bob may not push into a ro root' '
	refused bob small "$(url "$SRV/alice/from-bob")" &&
	refused bob small "$(url "$SRV/alice/data")"
'

test_expect_success 'alice may not reach bob'"'"'s root, either way' '
	refused alice small "$(url "$SRV/bob/from-alice")" &&
	refused alice "$(url "$SRV/bob/data")" alice-from-bob &&
	test_path_is_missing alice-from-bob
'

test_expect_success 'paths outside every root, relative or with .. are refused' '
	refused alice small "$(url "$SRV/other/x")" &&
	refused alice small "$(url "$SRV/alice-not/x")" &&
	refused alice small "$(url "$SRV/alice/../other/x")" &&
	refused alice small "tcp://127.0.0.1:$CONF_PORT/x" &&
	refused alice small "$(url "$SRV")" &&
	refused alice "$(url "$SRV/other")" pulled-other &&
	test_path_is_missing pulled-other
'

test_expect_success 'a symlink under a root is refused (UNSAFE_PATH 14)' '
	ln -s "$SRV/other" "$SRV/alice/link" &&
	net_deadline 30 autosync sync --key keys-alice/psk.key small \
		"$(url "$SRV/alice/link/x")" 2>err; rc=$? &&
	cat err &&
	test $rc = 14 &&
	test_path_is_missing "$SRV/other/x"
'

test_expect_success 'an unknown key is refused with AUTH (21)' '
	net_ls_root "$SRV" >ls.before &&
	test_expect_code 21 as carol small "$(url "$SRV/alice/carol")" &&
	net_ls_root "$SRV" >ls.after && test_cmp ls.before ls.after
'

test_expect_success 'every refusal was logged with the peer address' '
	cat "$CONF_LOG" &&
	test $(grep -c "127.0.0.1" "$CONF_LOG") -ge 8
'

test_expect_success 'no config and no --root: nothing is reachable' '
	net_serve bare --key "$T/keys-alice/psk.key" &&
	bare_pid=$SERVE_PID &&
	net_ls_root "$SRV" >ls.before &&
	net_deadline 30 autosync sync --key keys-alice/psk.key small \
		"tcp://127.0.0.1:$SERVE_PORT$SRV/alice/bare" 2>err; rc=$? &&
	cat err &&
	test $rc != 0 && net_not_crash $rc &&
	net_deadline 30 autosync sync --key keys-alice/psk.key \
		"tcp://127.0.0.1:$SERVE_PORT$SRV/alice/data" bare-pulled 2>err; rc=$? &&
	test $rc != 0 && test_path_is_missing bare-pulled &&
	net_ls_root "$SRV" >ls.after && test_cmp ls.before ls.after &&
	net_kill $bare_pid
'

test_expect_success 'two keys with the same key id are refused, naming the id' '
	net_deadline 30 autosync keygen --out keys-dup1 >/dev/null &&
	net_deadline 30 autosync keygen --out keys-dup2 >/dev/null &&
	printf "client x key %s\nclient y key %s\n" "$T/keys-dup1/psk.key" \
		"$T/keys-dup2/psk.key" >dup.conf &&
	port=$(net_free_port) &&
	net_deadline 10 autosync serve --listen 127.0.0.1:$port \
		--config "$T/dup.conf" >serve.out 2>&1; rc=$? &&
	cat serve.out &&
	test $rc = 2 &&
	test_grep "key id .client." serve.out
'

test_expect_success 'serve refuses a config with bad lines or an open key file' '
	cp keys-alice/psk.key open.key && chmod 644 open.key &&
	printf "client x key %s\nallow x %s rw\n" "$T/open.key" "$SRV/alice" >bad1.conf &&
	printf "client x key %s\nallow x relative/path rw\n" "$T/keys-alice/psk.key" >bad2.conf &&
	printf "client x key %s\nallow x %s/../etc rw\n" "$T/keys-alice/psk.key" "$SRV" >bad3.conf &&
	printf "client x key %s\nallow x %s rwx\n" "$T/keys-alice/psk.key" "$SRV/alice" >bad4.conf &&
	printf "client x key %s\nclient y key %s\nallow x %s rw\n" \
		"$T/keys-alice/psk.key" "$T/keys-alice/psk.key" "$SRV/alice" >bad5.conf &&
	printf "client bad/name key %s\n" "$T/keys-alice/psk.key" >bad6.conf &&
	printf "bogus line\n" >bad7.conf &&
	( for c in bad1 bad2 bad3 bad4 bad5 bad6 bad7; do
		port=$(net_free_port) &&
		net_deadline 10 autosync serve --listen 127.0.0.1:$port \
			--config "$T/$c.conf" >serve.out 2>&1; rc=$?
		echo "$c: exit $rc: $(cat serve.out)"
		test $rc != 0 && net_not_crash $rc && test -s serve.out ||
			{ echo "FAILED: $c"; exit 1; }
	done )
'

test_expect_success SSHD 'ssh forced command with --config --client: the same rules' '
	net_sshd_start &&
	printf "allow backup1 %s rw\nallow backup1 %s ro\n" "$SRV/ssh" "$SRV/alice" >ssh.conf &&
	mkdir "$SRV/ssh" &&
	net_sshd_add_key backup1 "command=\"autosync serve --stdio --config $T/ssh.conf --client backup1\",no-pty" &&
	AUTOSYNC_SSH=$NET_DIR/ssh-backup1 &&
	export AUTOSYNC_SSH &&
	net_deadline 60 autosync sync small "$SSH_URL_BASE$SRV/ssh/data" &&
	assert_same_tree small "$SRV/ssh/data" &&
	net_deadline 60 autosync sync "$SSH_URL_BASE$SRV/alice/data" ssh-pulled &&
	assert_same_tree small ssh-pulled &&
	net_ls_root "$SRV" >ls.before &&
	net_deadline 60 autosync sync small "$SSH_URL_BASE$SRV/alice/via-ssh" 2>err; rc=$? &&
	cat err && test $rc != 0 && net_not_crash $rc &&
	net_deadline 60 autosync sync small "$SSH_URL_BASE$SRV/bob/via-ssh" 2>err; rc=$? &&
	cat err && test $rc != 0 && net_not_crash $rc &&
	net_deadline 60 autosync sync small "$SSH_URL_BASE$T/elsewhere" 2>err; rc=$? &&
	cat err && test $rc != 0 && net_not_crash $rc &&
	test_path_is_missing "$T/elsewhere" &&
	net_ls_root "$SRV" >ls.after && test_cmp ls.before ls.after
'

test_expect_success ROOT 'a "safe" grant: pushes land under the safe policy; sync --safe pulls likewise' '
	mkdir -p "$SRV/carol" safesrc &&
	printf "x\n" >safesrc/tool && chmod 4755 safesrc/tool &&
	printf "y\n" >safesrc/plain && chmod 2755 safesrc/plain &&
	setfattr -n user.a -v 1 safesrc/plain &&
	setfattr -n trusted.b -v 2 safesrc/plain &&
	cat >safe.conf <<-EOF &&
	client carol key $T/keys-carol/psk.key
	allow carol $SRV/carol rw safe
	EOF
	net_serve safe --config "$T/safe.conf" &&
	SAFE_PORT=$SERVE_PORT SAFE_LOG=$SERVE_LOG &&
	net_deadline 60 autosync sync --key "$T/keys-carol/psk.key" safesrc \
		"tcp://127.0.0.1:$SAFE_PORT$SRV/carol/data" &&
	test "$(stat -c %a "$SRV/carol/data/tool")" = 755 &&
	test "$(stat -c %a "$SRV/carol/data/plain")" = 755 &&
	getfattr -h -d -m - "$SRV/carol/data/plain" >xa.out && cat xa.out &&
	grep -q user.a xa.out && ! grep -q trusted.b xa.out &&
	chmod 4755 "$SRV/carol/data/tool" &&
	net_deadline 60 autosync sync --safe --key "$T/keys-carol/psk.key" \
		"tcp://127.0.0.1:$SAFE_PORT$SRV/carol/data" carol-pulled &&
	test "$(stat -c %a carol-pulled/tool)" = 755 &&
	test "$(cat carol-pulled/tool)" = x
'

test_expect_success 'no sanitizer report or internal error in the server logs' '
	net_logs_clean
'

test_done
