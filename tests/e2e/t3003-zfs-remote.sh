#!/bin/bash
test_description='zfs remote: push zfs:A to a real "autosync serve" over tcp
(quick mode --root zfs:DS, and serve.conf "allow NAME zfs:DS rw|ro") and
over the real sshd: full then incremental with children, the GUIDs on the
server are the source'"'"'s, the replica is received -u with the property
policy; a client confined to its dataset root cannot reach another dataset,
a read-only grant cannot be written, bad names are refused, every refusal
is logged with the peer; divergence is refused before anything is sent.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-zfs.sh"
. "$TEST_DIRECTORY/lib-net.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"
zfs_setup || exit 0
A=$(zfs_pool a) && B=$(zfs_pool b) || BAIL_OUT "cannot create pools"
MA=$TRASH_DIRECTORY/mnt/$A
T=$TRASH_DIRECTORY

# push [OPTIONS] SRC DST: with the quick-mode key, bounded in time
push() { PATH=$ZFS_SHIM:$PATH net_deadline 60 autosync sync --key "$T/keys/psk.key" "$@"; }
# as_key KEYFILE SRC DST: the same with another key
as_key() { local k=$1; shift; PATH=$ZFS_SHIM:$PATH net_deadline 60 autosync sync --key "$k" "$@"; }
url() { echo "tcp://127.0.0.1:$QPORT/zfs:$1"; }

test_expect_success 'setup: a key, a server confined to zfs:B/vault, a source with a child' '
	net_deadline 30 autosync keygen --out keys >/dev/null &&
	zfs create $B/vault && zfs create $B/other &&
	net_serve q --key "$T/keys/psk.key" --root "zfs:$B/vault" &&
	QPORT=$SERVE_PORT QLOG=$SERVE_LOG &&
	zfs create $A/home && zfs create $A/home/c1 &&
	echo hello >$MA/home/f && echo one >$MA/home/c1/x
'

test_expect_success 'push over tcp: full, a dataset and its child' '
	push -v zfs:$A/home "$(url $B/vault/home)" >out 2>&1 &&
	cat out && grep "2 datasets (2 full)" out &&
	s=$(znewest $A/home) && test -n "$s" &&
	test "$(zguid $B/vault/home@$s)" = "$(zguid $A/home@$s)" &&
	test "$(zguid $B/vault/home/c1@$s)" = "$(zguid $A/home/c1@$s)"
'

test_expect_success 'a missing source: NOTFOUND naming it, to a live server or a dead one' '
	test_expect_code 3 push zfs:$A/nosuch "$(url $B/vault/x)" 2>err &&
	grep "source dataset .$A/nosuch. does not exist" err &&
	test_expect_code 3 push zfs:$A/nosuch tcp://127.0.0.1:1/zfs:$B/vault/x 2>err &&
	grep "source dataset .$A/nosuch. does not exist" err
'

test_expect_success 'the replica is unmounted, canmount=noauto, readonly' '
	for d in $B/vault/home $B/vault/home/c1; do
		test "$(zfs get -H -o value mounted $d)" = no &&
		test "$(zfs get -H -o value canmount $d)" = noauto &&
		test "$(zfs get -H -o value readonly $d)" = on || return 1
	done
'

test_expect_success 'incremental after full, with a new child; older snapshots pruned on both sides' '
	echo more >>$MA/home/f && zfs create $A/home/c2 && echo two >$MA/home/c2/y &&
	sleep 1 &&
	push -v zfs:$A/home "$(url $B/vault/home)" >out 2>&1 &&
	cat out && grep "incremental from autosync_" out &&
	grep "3 datasets (1 full)" out &&
	s=$(znewest $A/home) &&
	for d in "" /c1 /c2; do
		test "$(zguid $B/vault/home$d@$s)" = "$(zguid $A/home$d@$s)" ||
			return 1
	done &&
	test "$(zfs list -H -t snapshot -o name -r $A/home | grep -c "^$A/home@")" = 1 &&
	test "$(zfs list -H -t snapshot -o name -r $B/vault/home | grep -c "^$B/vault/home@")" = 1
'

test_expect_success '-N sends the top dataset only' '
	echo n >>$MA/home/f && echo n >>$MA/home/c1/x && sleep 1 &&
	push -v -N zfs:$A/home "$(url $B/vault/home)" >out 2>&1 &&
	cat out && grep "1 datasets\|1 dataset" out &&
	s=$(znewest $A/home) &&
	test "$(zguid $B/vault/home@$s)" = "$(zguid $A/home@$s)" &&
	test -z "$(zfs list -H -o name $B/vault/home/c1@$s 2>/dev/null)"
'

test_expect_success 'confined: another dataset, "..", "@", a leading "-" are refused and logged' '
	zfs list -H -o name -t all -r $B >before &&
	( for d in $B/other/x $B/vaultx/x $B $B/vault/../other/x \
		$B/vault/a@b -$B/vault/x $B/vault//x; do
		push zfs:$A/home "tcp://127.0.0.1:$QPORT/zfs:$d" 2>err; rc=$?
		cat err
		test $rc != 0 && net_not_crash $rc &&
		grep -i "root\|not a valid" err ||
			{ echo "FAILED: $d ($rc)"; exit 1; }
	done ) &&
	zfs list -H -o name -t all -r $B >after && test_cmp before after &&
	grep "refused .*zfs:$B/other/x.* from .127.0.0.1" "$QLOG"
'

test_expect_success 'serve.conf: allow NAME zfs:DS rw / ro' '
	net_deadline 30 autosync keygen --out keys-alice --client alice >/dev/null &&
	zfs create $B/alice && zfs create $B/shared &&
	cat >serve.conf <<-EOF &&
	client alice key $T/keys-alice/psk.key
	allow alice zfs:$B/alice rw
	allow alice zfs:$B/shared ro
	allow alice $T rw
	EOF
	net_serve conf --config "$T/serve.conf" &&
	PATH=$ZFS_SHIM:$PATH net_deadline 60 autosync sync --key keys-alice/psk.key zfs:$A/home \
		"tcp://127.0.0.1:$SERVE_PORT/zfs:$B/alice/home" &&
	s=$(znewest $A/home) &&
	test "$(zguid $B/alice/home/c1@$s)" = "$(zguid $A/home/c1@$s)" &&
	test_must_fail as_key keys-alice/psk.key \
		zfs:$A/home "tcp://127.0.0.1:$SERVE_PORT/zfs:$B/shared/home" 2>err &&
	cat err && grep "read-only" err &&
	test_must_fail as_key keys-alice/psk.key \
		zfs:$A/home "tcp://127.0.0.1:$SERVE_PORT/zfs:$B/vault/x" 2>err &&
	cat err && grep "not in a dataset root granted" err &&
	test -z "$(zfs list -H -o name $B/shared/home $B/vault/x 2>/dev/null)" &&
	grep "refused .*zfs:$B/vault/x.* from .127.0.0.1" "$SERVE_LOG"
'

test_expect_success 'divergence on the server is refused before anything is sent' '
	zfs snapshot $B/vault/home@mine &&
	s0=$(znewest $A/home) &&
	echo d >>$MA/home/f && sleep 1 &&
	test_must_fail push zfs:$A/home "$(url $B/vault/home)" 2>err &&
	cat err && grep "diverged" err &&
	test "$(znewest $B/vault/home)" = mine &&
	test "$(znewest $A/home)" = "$s0" &&
	zfs destroy $B/vault/home@mine &&
	push zfs:$A/home "$(url $B/vault/home)"
'

test_expect_success SSHD 'push over the real sshd (serve --stdio)' '
	net_sshd_start &&
	echo ssh >>$MA/home/f && sleep 1 &&
	AUTOSYNC_SSH=$NET_SSH PATH=$ZFS_SHIM:$PATH net_deadline 60 autosync sync zfs:$A/home \
		"$SSH_URL_BASE/zfs:$B/viassh" &&
	s=$(znewest $A/home) &&
	test "$(zguid $B/viassh/c2@$s)" = "$(zguid $A/home/c2@$s)" &&
	test "$(zfs get -H -o value readonly $B/viassh)" = on
'

test_expect_success 'no sanitizer report in the server logs' '
	net_logs_clean
'

# the pools are mounted below the trash directory: gone before test_done
zfs_teardown_
test_done
