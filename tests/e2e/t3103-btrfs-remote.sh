#!/bin/bash
test_description='btrfs remote: push and pull of btrfs:/PATH through a real
"autosync serve" (serve.conf over tcp, and the real sshd) between two
loop-mounted btrfs file systems: full then incremental (by received_uuid)
both ways; btrfs receive runs only for a sender configured as trusted
("allow NAME btrfs:/PATH rw trusted" on the server, --trust HOST for a
pull), and an untrusted one is refused before one byte is received;
nested subvolumes are replicated, -N leaves them out; confinement to the granted roots; a connection
cut in the middle of a stream leaves the destination as it was and the
next run completes.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-btrfs.sh"
. "$TEST_DIRECTORY/lib-net.sh"

test_have_prereq BTRFS || test_skip_all "needs root, btrfs-progs and btrfs in the kernel"
net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY
A=$T/a
B=$T/b

test_expect_success 'setup: two file systems, a server trusting alice, not mallory' '
	btrfs_fs a && btrfs_fs b && btrfs_shim_install &&
	btrfs subvolume create "$A/@home" >/dev/null &&
	mkfixture "$A/@home/tree" every-kind &&
	echo one >"$A/@home/f" &&
	btrfs subvolume create "$A/@nest" >/dev/null &&
	echo n >"$A/@nest/f" && btrfs subvolume create "$A/@nest/inner" >/dev/null &&
	mkdir "$B/m" "$B/pulls" &&
	btrfs_serve "$A" "$B"
'

test_expect_success 'push over tcp: full, then incremental' '
	btrfs_as alice -v "btrfs:$A/@home" "$(btrfs_url $B/home)" >out 2>&1 &&
	cat out && grep "full to autosync_" out &&
	assert_same_tree "$A/@home" "$B/home" && btrfs_ro "$B/home" &&
	s=$(autosync_snaps "$A/.autosync-snapshots/@home") &&
	test "$(btrfs_field "$B/.autosync-snapshots/home/$s" "Received UUID")" = \
		"$(btrfs_field "$A/.autosync-snapshots/@home/$s" UUID)" &&
	echo two >>"$A/@home/f" && rm "$A/@home/tree/file" 2>/dev/null; sleep 1 &&
	btrfs_as alice -v "btrfs:$A/@home" "$(btrfs_url $B/home)" >out 2>&1 &&
	cat out && grep "incremental from $s" out &&
	assert_same_tree "$A/@home" "$B/home" &&
	test "$(autosync_snaps "$A/.autosync-snapshots/@home" | wc -l)" = 1 &&
	test "$(autosync_snaps "$B/.autosync-snapshots/home" | wc -l)" = 1
'

test_expect_success 'an untrusted sender is refused before anything is received' '
	n0=$(btrfs_srv_receives) &&
	test_must_fail btrfs_as mallory "btrfs:$A/@home" "$(btrfs_url $B/m/home)" 2>err; rc=$?
	cat err && grep "not trusted" err &&
	test_must_fail btrfs_as mallory "btrfs:$A/@home" "$(btrfs_url $B/m/home)" &&
	{ btrfs_as mallory "btrfs:$A/@home" "$(btrfs_url $B/m/home)"; test $? = 21; } &&
	test "$(btrfs_srv_receives)" = "$n0" &&
	test -z "$(ls -A "$B/m")" &&
	grep "refused\|not trusted" "$NET_DIR/serve-conf.log"
'

test_expect_success 'nested subvolumes are replicated (t3110), -N leaves them out' '
	btrfs_as alice "btrfs:$A/@nest" "$(btrfs_url $B/nest)" &&
	test "$(cat "$B/nest/f")" = n && test "$(stat -c %i "$B/nest/inner")" = 256 &&
	btrfs_ro "$B/nest/inner" &&
	btrfs_as alice -N "btrfs:$A/@nest" "$(btrfs_url $B/nestN)" &&
	test "$(cat "$B/nestN/f")" = n && test_path_is_missing "$B/nestN/inner"
'

test_expect_success 'pull over tcp: refused without --trust, then full and incremental' '
	test_must_fail btrfs_as alice "$(btrfs_url $A/@home)" "btrfs:$B/pulls/home" 2>err &&
	cat err && grep "not configured as trusted" err &&
	{ btrfs_as alice "$(btrfs_url $A/@home)" "btrfs:$B/pulls/home"; test $? = 21; } &&
	! test -e "$B/pulls/home" && ! test -e "$B/pulls/.autosync-snapshots" &&
	btrfs_as alice -v --trust 127.0.0.1 "$(btrfs_url $A/@home)" "btrfs:$B/pulls/home" >out 2>&1 &&
	cat out && grep "full to autosync_" out &&
	assert_same_tree "$A/@home" "$B/pulls/home" && btrfs_ro "$B/pulls/home" &&
	echo three >>"$A/@home/f" && sleep 1 &&
	btrfs_as alice -v --trust 127.0.0.1 "$(btrfs_url $A/@home)" "btrfs:$B/pulls/home" >out 2>&1 &&
	cat out && grep "incremental from autosync_" out &&
	assert_same_tree "$A/@home" "$B/pulls/home"
'

test_expect_success 'a service pulls only once its trust property names the server' '
	autosync create bp --source "$(btrfs_url $A/@home)" \
		--dest "btrfs:$B/pulls/svc" --every 1h \
		--key "$T/keys-alice/psk.key" &&
	test_must_fail net_deadline 60 autosync run bp >out 2>&1 &&
	cat out && grep "not configured as trusted" out &&
	! test -e "$B/pulls/svc" &&
	test_must_fail autosync set bp trust=alice@127.0.0.1 2>err &&
	cat err && grep "trust: expected" err &&
	autosync set bp trust=127.0.0.1 &&
	autosync show bp | grep "trust.*127\.0\.0\.1" &&
	autosync clear bp &&
	net_deadline 60 autosync run bp &&
	assert_same_tree "$A/@home" "$B/pulls/svc" && btrfs_ro "$B/pulls/svc" &&
	autosync destroy bp
'

test_expect_success 'confined: a read-only root cannot be pushed to, nothing outside the roots' '
	test_must_fail btrfs_as alice "btrfs:$A/@home" "$(btrfs_url $A/copy)" 2>err &&
	cat err && grep "read-only" err && ! test -e "$A/copy" &&
	test_must_fail btrfs_as alice --trust 127.0.0.1 "$(btrfs_url $T/keys-alice)" "btrfs:$B/pulls/x" 2>err &&
	cat err && grep "not in a root granted" err &&
	test_must_fail btrfs_as mallory "btrfs:$A/@home" "$(btrfs_url $B/home2)" 2>err &&
	cat err && grep "not in a root granted" err && ! test -e "$B/home2"
'

test_expect_success 'a connection cut mid-stream: the destination is unchanged, the rerun completes' '
	head -c 8000000 /dev/urandom >"$A/@home/big" && sleep 1 &&
	manifest "$B/home" >before &&
	net_proxy cut $SPORT --rst 2000000 --only-conn 1 &&
	{ net_deadline 60 autosync sync --key "$T/keys-alice/psk.key" "btrfs:$A/@home" \
		"tcp://127.0.0.1:$PROXY_PORT/btrfs:$B/home" 2>err; rc=$?; } &&
	cat err && net_not_crash $rc && net_rc_in $rc 10 40 &&
	manifest "$B/home" >after && test_cmp before after &&
	net_deadline 60 autosync sync --key "$T/keys-alice/psk.key" "btrfs:$A/@home" \
		"tcp://127.0.0.1:$PROXY_PORT/btrfs:$B/home" &&
	assert_same_tree "$A/@home" "$B/home" &&
	test "$(autosync_snaps "$B/.autosync-snapshots/home" | wc -l)" = 1
'

test_expect_success SSHD 'push and pull over the real sshd (serve --stdio, no config: trusted)' '
	net_sshd_start &&
	AUTOSYNC_SSH=$NET_SSH net_deadline 60 autosync sync "btrfs:$A/@home" \
		"$SSH_URL_BASE/btrfs:$B/viassh" &&
	assert_same_tree "$A/@home" "$B/viassh" &&
	AUTOSYNC_SSH=$NET_SSH net_deadline 60 autosync sync --trust 127.0.0.1 \
		"$SSH_URL_BASE/btrfs:$B/viassh" "btrfs:$A/back" &&
	assert_same_tree "$A/@home" "$A/back"
'

test_expect_success 'no sanitizer report in the server logs' '
	net_logs_clean
'

test_done
