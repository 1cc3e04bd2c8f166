#!/bin/bash
test_description='zfs remote pull: a real "autosync serve" sends zfs:A (a
dataset and its children) to "autosync sync URL/zfs:A zfs:B" over tcp
(quick mode --root zfs:DS, and serve.conf "allow NAME zfs:DS ro"), tls and
the real sshd: full, incremental with a child added and one removed, -N,
the GUIDs on B are the server'"'"'s, B is received -u with the property
policy; divergence is refused with a report before anything is created,
-F rolls back only autosync'"'"'s snapshots; a client confined to its
dataset root cannot pull another dataset; a connection cut in the middle
of a stream leaves B as it was, and the next run completes.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-zfs.sh"
. "$TEST_DIRECTORY/lib-net.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"
zfs_setup || exit 0
A=$(zfs_pool a) && B=$(zfs_pool b) || BAIL_OUT "cannot create pools"
MA=$TRASH_DIRECTORY/mnt/$A
T=$TRASH_DIRECTORY

# pull [OPTIONS] SRC DST: with the quick-mode key, bounded in time
pull() { PATH=$ZFS_SHIM:$PATH net_deadline 60 autosync sync --key "$T/keys/psk.key" "$@"; }
# as_key KEYFILE SRC DST: the same with another key
as_key() { local k=$1; shift; PATH=$ZFS_SHIM:$PATH net_deadline 60 autosync sync --key "$k" "$@"; }
url() { echo "tcp://127.0.0.1:$QPORT/zfs:$1"; }
# the snapshots of dataset $1 itself (names after '@')
zsnaps() { zfs list -H -t snapshot -o name -s createtxg -r "$1" | grep "^$1@" | sed 's/.*@//'; }

test_expect_success 'setup: a key, a server confined to zfs:A/src, a source with a child' '
	net_deadline 30 autosync keygen --out keys >/dev/null &&
	zfs create $A/src && zfs create $A/src/home && zfs create $A/src/home/c1 &&
	zfs create $A/secret &&
	echo hello >$MA/src/home/f && echo one >$MA/src/home/c1/x &&
	net_serve q --key "$T/keys/psk.key" --root "zfs:$A/src" &&
	QPORT=$SERVE_PORT QLOG=$SERVE_LOG
'

test_expect_success 'pull over tcp: full, a dataset and its child' '
	pull -v "$(url $A/src/home)" zfs:$B/home >out 2>&1 &&
	cat out && grep "2 datasets (2 full)" out &&
	s=$(znewest $A/src/home) && test -n "$s" &&
	test "$(zguid $B/home@$s)" = "$(zguid $A/src/home@$s)" &&
	test "$(zguid $B/home/c1@$s)" = "$(zguid $A/src/home/c1@$s)"
'

test_expect_success 'the replica is unmounted, canmount=noauto, readonly' '
	for d in $B/home $B/home/c1; do
		test "$(zfs get -H -o value mounted $d)" = no &&
		test "$(zfs get -H -o value canmount $d)" = noauto &&
		test "$(zfs get -H -o value readonly $d)" = on || return 1
	done
'

test_expect_success 'incremental: a child added, one removed; older snapshots pruned on both sides' '
	s0=$(znewest $A/src/home) &&
	echo more >>$MA/src/home/f && zfs create $A/src/home/c2 &&
	echo two >$MA/src/home/c2/y && zfs_destroy_retry -r $A/src/home/c1 &&
	sleep 1 &&
	pull -v "$(url $A/src/home)" zfs:$B/home >out 2>&1 &&
	cat out && grep "incremental from $s0" out &&
	grep "2 datasets (1 full)" out &&
	s=$(znewest $A/src/home) && test "$s" != "$s0" &&
	test "$(zguid $B/home@$s)" = "$(zguid $A/src/home@$s)" &&
	test "$(zguid $B/home/c2@$s)" = "$(zguid $A/src/home/c2@$s)" &&
	test "$(zsnaps $A/src/home)" = "$s" && test "$(zsnaps $B/home)" = "$s" &&
	test "$(zsnaps $B/home/c1)" = "$s0"
'

test_expect_success '-N pulls the top dataset only' '
	echo n >>$MA/src/home/f && echo n >>$MA/src/home/c2/y && sleep 1 &&
	pull -v -N "$(url $A/src/home)" zfs:$B/home >out 2>&1 &&
	cat out && grep "1 dataset" out &&
	s=$(znewest $A/src/home) &&
	test "$(zguid $B/home@$s)" = "$(zguid $A/src/home@$s)" &&
	test -z "$(zfs list -H -o name $A/src/home/c2@$s 2>/dev/null)" &&
	test -z "$(zfs list -H -o name $B/home/c2@$s 2>/dev/null)" &&
	pull "$(url $A/src/home)" zfs:$B/home &&
	s=$(znewest $A/src/home) &&
	test "$(zguid $B/home/c2@$s)" = "$(zguid $A/src/home/c2@$s)"
'

test_expect_success 'a destination whose parent is missing: NOTFOUND naming it, from a live server or a dead one' '
	test_expect_code 3 pull "$(url $A/src/home)" zfs:$B/nope/home 2>err &&
	grep "parent .$B/nope. of the destination does not exist" err &&
	test_expect_code 3 pull tcp://127.0.0.1:1/zfs:$A/src/home zfs:$B/nope/home 2>err &&
	grep "parent .$B/nope. of the destination does not exist" err &&
	! zfs list $B/nope 2>/dev/null
'

test_expect_success 'divergence is refused with a report before anything is created' '
	zfs snapshot $B/home@mine &&
	s0=$(znewest $A/src/home) &&
	echo d >>$MA/src/home/f && sleep 1 &&
	test_must_fail pull "$(url $A/src/home)" zfs:$B/home 2>err &&
	cat err && grep "destination only: mine" err &&
	test "$(znewest $A/src/home)" = "$s0" &&
	test "$(znewest $B/home)" = mine &&
	test_must_fail pull -F "$(url $A/src/home)" zfs:$B/home 2>err &&
	cat err && grep "not made by autosync" err &&
	test "$(znewest $A/src/home)" = "$s0" &&
	zfs destroy $B/home@mine
'

test_expect_success '-F rolls back a snapshot of autosync'"'"'s on the destination' '
	zfs snapshot $B/home@autosync_2000-01-01_00:00:00 &&
	test_must_fail pull "$(url $A/src/home)" zfs:$B/home 2>err &&
	cat err && grep "use -F" err &&
	pull -F "$(url $A/src/home)" zfs:$B/home &&
	s=$(znewest $A/src/home) &&
	test "$(zsnaps $B/home)" = "$s" &&
	test "$(zguid $B/home@$s)" = "$(zguid $A/src/home@$s)"
'

test_expect_success 'confined: outside the root, "..", "@" and a leading "-" are refused and logged' '
	zfs list -H -o name -t all -r $A >before &&
	( for d in $A/secret $A $A/srcx $A/src/../secret -$A/src/home \
		$A/src/home@x@y; do
		pull "tcp://127.0.0.1:$QPORT/zfs:$d" zfs:$B/x 2>err; rc=$?
		cat err
		test $rc != 0 && net_not_crash $rc &&
		grep -i "root\|not a valid\|does not name\|expected" err ||
			{ echo "FAILED: $d ($rc)"; exit 1; }
	done ) &&
	zfs list -H -o name -t all -r $A >after && test_cmp before after &&
	test -z "$(zfs list -H -o name $B/x 2>/dev/null)" &&
	grep "refused .*zfs:$A/secret.* from .127.0.0.1" "$QLOG"
'

test_expect_success 'serve.conf: a read-only grant suffices to pull, nothing outside it' '
	net_deadline 30 autosync keygen --out keys-bob --client bob >/dev/null &&
	cat >serve.conf <<-EOF &&
	client bob key $T/keys-bob/psk.key
	allow bob zfs:$A/src/home ro
	EOF
	net_serve conf --config "$T/serve.conf" &&
	PATH=$ZFS_SHIM:$PATH net_deadline 60 autosync sync --key keys-bob/psk.key \
		"tcp://127.0.0.1:$SERVE_PORT/zfs:$A/src/home/c2" zfs:$B/bob &&
	s=$(znewest $A/src/home/c2) &&
	test "$(zguid $B/bob@$s)" = "$(zguid $A/src/home/c2@$s)" &&
	test_must_fail as_key keys-bob/psk.key \
		"tcp://127.0.0.1:$SERVE_PORT/zfs:$A/secret" zfs:$B/bob2 2>err &&
	cat err && grep "not in a dataset root granted" err &&
	test -z "$(zfs list -H -o name $B/bob2 2>/dev/null)" &&
	grep "refused .*zfs:$A/secret.* from .127.0.0.1" "$SERVE_LOG"
'

test_expect_success 'a connection cut mid-stream: a clean error, B unchanged, the rerun completes' '
	s0=$(znewest $B/home) &&
	dd if=/dev/urandom of=$MA/src/home/big bs=1M count=12 2>/dev/null &&
	sleep 1 &&
	net_proxy cut $QPORT --direction s2c --rst 3000000 --only-conn 1 &&
	{ pull "tcp://127.0.0.1:$PROXY_PORT/zfs:$A/src/home" zfs:$B/home 2>err; rc=$?; } &&
	cat err && net_not_crash $rc && net_rc_in $rc 10 40 &&
	test "$(znewest $B/home)" = "$s0" &&
	test -z "$(zfs list -H -o name -t all -r $B | grep %)" &&
	pull "tcp://127.0.0.1:$PROXY_PORT/zfs:$A/src/home" zfs:$B/home &&
	s=$(znewest $A/src/home) &&
	test "$(zguid $B/home@$s)" = "$(zguid $A/src/home@$s)" &&
	test "$(zsnaps $A/src/home)" = "$s"
'

test_expect_success 'pull over tls (mutual certificates)' '
	net_serve tlsq --tls --cert "$T/keys/server.crt" --key "$T/keys/server.key" \
		--ca "$T/keys/ca.crt" --root "zfs:$A/src" &&
	PATH=$ZFS_SHIM:$PATH net_deadline 60 autosync sync --cert "$T/keys/client.crt" \
		--key "$T/keys/client.key" --ca "$T/keys/ca.crt" \
		"tls://127.0.0.1:$SERVE_PORT/zfs:$A/src/home" zfs:$B/viatls &&
	s=$(znewest $A/src/home) &&
	test "$(zguid $B/viatls@$s)" = "$(zguid $A/src/home@$s)" &&
	test "$(zguid $B/viatls/c2@$s)" = "$(zguid $A/src/home/c2@$s)"
'

test_expect_success SSHD 'pull over the real sshd (serve --stdio)' '
	net_sshd_start &&
	echo ssh >>$MA/src/home/f && sleep 1 &&
	AUTOSYNC_SSH=$NET_SSH PATH=$ZFS_SHIM:$PATH net_deadline 60 autosync sync \
		"$SSH_URL_BASE/zfs:$A/src/home" zfs:$B/viassh &&
	s=$(znewest $A/src/home) &&
	test "$(zguid $B/viassh/c2@$s)" = "$(zguid $A/src/home/c2@$s)" &&
	test "$(zfs get -H -o value readonly $B/viassh)" = on &&
	echo again >>$MA/src/home/f && sleep 1 &&
	AUTOSYNC_SSH=$NET_SSH PATH=$ZFS_SHIM:$PATH net_deadline 60 autosync sync \
		"$SSH_URL_BASE/zfs:$A/src/home" zfs:$B/viassh &&
	s=$(znewest $A/src/home) &&
	test "$(zguid $B/viassh@$s)" = "$(zguid $A/src/home@$s)"
'

test_expect_success 'no sanitizer report in the server logs' '
	net_logs_clean
'

# the pools are mounted below the trash directory: gone before test_done
zfs_teardown_
test_done
