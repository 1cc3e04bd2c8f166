#!/bin/bash
test_description='RELIABILITY.md §G 72: a wrapped ZFS stream corrupted in
flight

A zfs push over tcp:// passes through the fault proxy, which flips one bit
of the stream (in the full stream, then in an incremental).  The
corruption must be reported as an error (autosync'"'"'s class, or zfs
receive'"'"'s own checksum failure mapped to one), the replica must stay at
its snapshot with nothing half-received left (no %recv clone), and the
next, clean push must complete with the source'"'"'s GUIDs.  zfs-fuse (pool
v23) has no resume tokens: the resume half of the case does not apply.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-zfs.sh"
. "$TEST_DIRECTORY/lib-net.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"
zfs_setup || exit 0
A=$(zfs_pool a) && B=$(zfs_pool b) || BAIL_OUT "cannot create pools"
MA=$TRASH_DIRECTORY/mnt/$A
T=$TRASH_DIRECTORY

push() { net_deadline 60 autosync sync --key "$T/keys/psk.key" "$@"; }
url() { echo "tcp://127.0.0.1:$1/zfs:$2"; }

# flipped_push OFFSET:BIT: one push through the proxy flipping that bit;
# exit in $rc
flipped_push() {
	net_proxy flip $QPORT --flip "$1" &&
	push --timeout 10 zfs:$A/home "$(url $PROXY_PORT $B/vault/home)" 2>err
	rc=$?
	cat err; echo "flip at $1: exit $rc"
	net_kill $PROXY_PID
	test_grep -q "fault conn=1 flip" "$PROXY_LOG"
}

test_expect_success 'setup: a key, a server confined to zfs:B/vault, a source' '
	net_deadline 30 autosync keygen --out keys >/dev/null &&
	zfs create $B/vault &&
	net_serve q --key "$T/keys/psk.key" --root "zfs:$B/vault" &&
	QPORT=$SERVE_PORT &&
	zfs create $A/home &&
	head -c 3M /dev/urandom >$MA/home/big && echo hello >$MA/home/f
'

test_expect_success '72: a bit flipped in a full zfs stream: an error, nothing received' '
	flipped_push 1500000:3 &&
	net_not_crash $rc && test $rc != 0 &&
	! zfs list -H -o name $B/vault/home 2>/dev/null &&
	test -z "$(zfs list -H -o name -t all -r $B | grep %)"
'

test_expect_success '72: the clean push then completes' '
	push zfs:$A/home "$(url $QPORT $B/vault/home)" &&
	s=$(znewest $A/home) &&
	test "$(zguid $B/vault/home@$s)" = "$(zguid $A/home@$s)"
'

test_expect_success '72: a bit flipped in an incremental: an error, the replica at its snapshot' '
	s0=$(znewest $B/vault/home) &&
	head -c 3M /dev/urandom >$MA/home/big2 &&
	flipped_push 2000000:5 &&
	net_not_crash $rc && test $rc != 0 &&
	test "$(znewest $B/vault/home)" = "$s0" &&
	test -z "$(zfs list -H -o name -t all -r $B | grep %)" &&
	push zfs:$A/home "$(url $QPORT $B/vault/home)" &&
	s=$(znewest $A/home) &&
	test "$(zguid $B/vault/home@$s)" = "$(zguid $A/home@$s)"
'

test_expect_success 'no sanitizer report in the server logs' '
	net_logs_clean
'

test_done
