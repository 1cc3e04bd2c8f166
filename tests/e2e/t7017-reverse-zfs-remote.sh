#!/bin/bash
test_description='service: reverse (failback) of ZFS services with a remote
side: a push (zfs:A -> tcp://.../zfs:B) becomes a pull and back, a pull
(tcp://.../zfs:B -> zfs:A) becomes a push, a pull over tls and a push over
ssh; the server
does its side through REQUEST REVERSE on its zfs: path; the run after each
reverse is an incremental `zfs send -i` from the common snapshot (bytes
far below the full send); a changed old source (here or on the server) is
refused with both sides left as they were, and --force rolls it back to
the common snapshot; a read-only grant is denied and changes nothing.  Contents are compared with copies kept here: reading
a live old source would change it (atime) after its last snapshot.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-zfs.sh"
. "$TEST_DIRECTORY/lib-net.sh"
. "$TEST_DIRECTORY/lib-service.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"
zfs_setup || exit 0
A=$(zfs_pool a) && B=$(zfs_pool b) || BAIL_OUT "cannot create pools"
MA=$TRASH_DIRECTORY/mnt/$A
MB=$TRASH_DIRECTORY/mnt/$B
T=$TRASH_DIRECTORY

# every zfs command, client's and server's, in $ZFS_LOG
PATH=$ZFS_SHIM:$PATH && export PATH
url() { echo "tcp://127.0.0.1:$QPORT/zfs:$1"; }
zprop() { zfs get -H -o value "$2" "$1"; }
sent() { autosync get "$1" bytes_sent; }
run() { : >"$ZFS_LOG" && net_deadline 60 autosync run "$1"; }
# the last run sent dataset $1 as an incremental from $2 (send -i)
sent_incr() {
	grep -E "^send (-[iI] )?-[iI] $1@$2 $1@autosync_" "$ZFS_LOG" ||
		{ echo "no incremental send of $1 from $2:"; cat "$ZFS_LOG"; false; }
}
# full: the full first send of service $1 (> $2 bytes), said
full() {
	local n
	n=$(sent "$1") && echo "# $1: full send, $n bytes" && test "$n" -gt "$2"
}
# small: an incremental of a few KiB, far below the full 1-2 MB send
small() {
	local n
	n=$(sent "$1") && echo "# $1: after a reverse, $n bytes" &&
	test "$n" -gt 0 && test "$n" -lt 300000
}
# what a reverse must not change: snapshots, GUIDs, policy, mounts
zstate() {
	zfs list -H -t all -o name,guid,readonly,canmount,mounted -r "$1"
}
# ondisk DS CMD...: run CMD with the replica DS mounted for a moment
ondisk() {
	local ds=$1 rc i
	shift
	zfs mount "$ds" || return 1
	"$@"; rc=$?
	for i in 1 2 3 4 5; do zfs unmount "$ds" 2>/dev/null && break; sleep 0.5; done
	return $rc
}
# same_snap DS1 DS2: the newest snapshot of DS1 is on DS2, same GUID
same_snap() {
	local n
	n=$(znewest "$1") && test -n "$n" &&
	test "$(zguid "$1@$n")" = "$(zguid "$2@$n")"
}

test_expect_success 'setup: a tcp server on zfs:B, a source with a child' '
	net_deadline 30 autosync keygen --out keys >/dev/null &&
	zfs create $B/srv &&
	net_serve q --key "$T/keys/psk.key" --root "zfs:$B/srv" &&
	QPORT=$SERVE_PORT &&
	zfs create $A/p && zfs create $A/p/c &&
	test_bytes 2000000 1 >$MA/p/big && echo c >$MA/p/c/g
'

test_expect_success 'push over tcp: full, then reverse makes it a pull' '
	autosync create p --source zfs:$A/p --dest "$(url $B/srv/p)" \
		--key "$T/keys/psk.key" --every 1d --trace-level 2 &&
	run p && full p 2000000 &&
	g=$(znewest $A/p) && test "$(zguid $B/srv/p@$g)" = "$(zguid $A/p@$g)" &&
	net_deadline 60 autosync reverse p &&
	prop_is p source "$(url $B/srv/p)" && prop_is p dest zfs:$A/p &&
	log_has p "reversed: source .*srv/p., destination .zfs:$A/p." &&
	test "$(zprop $B/srv/p readonly)" = off &&
	test "$(zprop $B/srv/p mounted)" = yes &&
	test "$(zprop $B/srv/p/c mounted)" = yes &&
	test "$(zprop $A/p readonly)" = on &&
	test "$(zprop $A/p canmount)" = noauto &&
	test "$(zprop $A/p/c readonly)" = on &&
	test "$(zprop $A/p mounted)" = no && test "$(zprop $A/p/c mounted)" = no
'

test_expect_success 'the run after the reverse is an incremental zfs send -i from G' '
	echo fromB >exp-new && cp exp-new $MB/srv/p/new &&
	printf "c\nc2\n" >exp-g && cp exp-g $MB/srv/p/c/g &&
	run p &&
	sent_incr $B/srv/p $g && sent_incr $B/srv/p/c $g &&
	small p &&
	test "$(znewest $B/srv/p)" != "$g" &&
	same_snap $B/srv/p $A/p && same_snap $B/srv/p/c $A/p/c
'

test_expect_success 'reverse again: back to a push, incremental' '
	g=$(znewest $A/p) &&
	net_deadline 60 autosync reverse p &&
	prop_is p source zfs:$A/p && prop_is p dest "$(url $B/srv/p)" &&
	test "$(zprop $A/p readonly)" = off &&
	test "$(zprop $A/p/c mounted)" = yes &&
	test "$(zprop $B/srv/p readonly)" = on &&
	test "$(zprop $B/srv/p canmount)" = noauto &&
	test "$(zprop $B/srv/p mounted)" = no &&
	test_cmp exp-new $MA/p/new && test_cmp exp-g $MA/p/c/g &&
	echo forward >$MA/p/forward &&
	run p &&
	sent_incr $A/p $g && small p && same_snap $A/p $B/srv/p
'

test_expect_success 'a changed local source is refused, both sides as they were' '
	echo late >$MA/p/late && sync &&
	zstate $A/p >a-before && zstate $B/srv/p >b-before &&
	test_expect_code 20 net_deadline 60 autosync reverse p 2>err &&
	test_grep "changed since .* --force rolls it back" err &&
	prop_is p source zfs:$A/p && prop_is p dest "$(url $B/srv/p)" &&
	zstate $A/p >a-after && zstate $B/srv/p >b-after &&
	test_cmp a-before a-after && test_cmp b-before b-after &&
	test_path_is_file $MA/p/late
'

test_expect_success '--force rolls the local source back to G; the pull is incremental' '
	g=$(znewest $A/p) &&
	net_deadline 60 autosync reverse --force p &&
	prop_is p source "$(url $B/srv/p)" &&
	test "$(znewest $A/p)" = "$g" &&
	ondisk $A/p test_path_is_missing $MA/p/late &&
	echo more >>exp-new && cp exp-new $MB/srv/p/new &&
	run p &&
	sent_incr $B/srv/p $g && small p && same_snap $B/srv/p $A/p &&
	ondisk $A/p test_cmp exp-new $MA/p/new
'

test_expect_success 'pull over tcp: full, then reverse makes it a push' '
	zfs create $B/srv/q && test_bytes 2000000 2 >$MB/srv/q/big &&
	autosync create q --source "$(url $B/srv/q)" --dest zfs:$A/q \
		--key "$T/keys/psk.key" --every 1d &&
	run q && full q 2000000 &&
	test "$(zprop $A/q readonly)" = on &&
	g=$(znewest $B/srv/q) &&
	net_deadline 60 autosync reverse q &&
	prop_is q source zfs:$A/q && prop_is q dest "$(url $B/srv/q)" &&
	test "$(zprop $A/q readonly)" = off && test "$(zprop $A/q mounted)" = yes &&
	test "$(zprop $B/srv/q readonly)" = on &&
	test "$(zprop $B/srv/q canmount)" = noauto &&
	test "$(zprop $B/srv/q mounted)" = no &&
	echo fromA >exp-q && cp exp-q $MA/q/new &&
	run q &&
	sent_incr $A/q $g && small q && same_snap $A/q $B/srv/q &&
	ondisk $B/srv/q test_cmp exp-q $MB/srv/q/new
'

test_expect_success 'a changed remote source is refused by the server, nothing changes; --force rolls it back' '
	net_deadline 60 autosync reverse q &&
	prop_is q source "$(url $B/srv/q)" &&
	echo late >$MB/srv/q/late && sync &&
	zstate $A/q >a-before && zstate $B/srv/q >b-before &&
	test_expect_code 20 net_deadline 60 autosync reverse q 2>err &&
	test_grep "changed since .* --force rolls it back" err &&
	prop_is q source "$(url $B/srv/q)" &&
	zstate $A/q >a-after && zstate $B/srv/q >b-after &&
	test_cmp a-before a-after && test_cmp b-before b-after &&
	g=$(znewest $B/srv/q) &&
	net_deadline 60 autosync reverse --force q &&
	prop_is q source zfs:$A/q &&
	test "$(znewest $B/srv/q)" = "$g" &&
	ondisk $B/srv/q test_path_is_missing $MB/srv/q/late &&
	echo again >>exp-q && cp exp-q $MA/q/new &&
	run q && sent_incr $A/q $g && small q && same_snap $A/q $B/srv/q &&
	ondisk $B/srv/q test_cmp exp-q $MB/srv/q/new
'

test_expect_success 'a reverse is refused while the old source has a newer snapshot' '
	zfs snapshot -r $A/q@mine &&
	test_expect_code 20 net_deadline 60 autosync reverse --force q 2>err &&
	test_grep "autosync did not make" err &&
	prop_is q source zfs:$A/q &&
	zfs destroy -r $A/q@mine
'

test_expect_success 'read-only access: reverse is denied, nothing changes on either side' '
	net_deadline 30 autosync keygen --out keys-ro --client ro >/dev/null &&
	printf "client ro key %s\nallow ro zfs:%s ro\n" "$T/keys-ro/psk.key" \
		"$B/srv" >serve.conf &&
	net_serve ro --config "$T/serve.conf" &&
	zfs create $B/srv/o && echo o >$MB/srv/o/f &&
	autosync create o --source "tcp://127.0.0.1:$SERVE_PORT/zfs:$B/srv/o" \
		--dest zfs:$A/o --key "$T/keys-ro/psk.key" --every 1d &&
	run o &&
	zstate $A/o >a-before && zstate $B/srv/o >b-before &&
	test_expect_code 14 net_deadline 60 autosync reverse o 2>err &&
	test_grep "read-only for client .ro." err &&
	prop_is o source "tcp://127.0.0.1:$SERVE_PORT/zfs:$B/srv/o" &&
	zstate $A/o >a-after && zstate $B/srv/o >b-after &&
	test_cmp a-before a-after && test_cmp b-before b-after &&
	autosync destroy o
'

test_expect_success 'pull over tls: reverse makes it a push, incremental' '
	K=$T/keys &&
	net_serve tls --tls --cert "$K/server.crt" --key "$K/server.key" \
		--ca "$K/ca.crt" --root "zfs:$B/srv" &&
	turl=tls://127.0.0.1:$SERVE_PORT/zfs:$B/srv/t &&
	zfs create $B/srv/t && test_bytes 1000000 4 >$MB/srv/t/big &&
	autosync create t --source "$turl" --dest zfs:$A/t --every 1d \
		--key "$K/client.key" --cert "$K/client.crt" --ca "$K/ca.crt" &&
	run t && full t 1000000 && g=$(znewest $B/srv/t) &&
	net_deadline 60 autosync reverse t &&
	prop_is t source zfs:$A/t && prop_is t dest "$turl" &&
	echo overtls >exp-t && cp exp-t $MA/t/new &&
	run t && sent_incr $A/t $g && small t && same_snap $A/t $B/srv/t &&
	ondisk $B/srv/t test_cmp exp-t $MB/srv/t/new
'

test_expect_success SSHD 'push over ssh: reverse, an incremental pull, and back' '
	net_sshd_start &&
	zfs create $A/s && test_bytes 1000000 3 >$MA/s/big &&
	surl=$SSH_URL_BASE/zfs:$B/s &&
	AUTOSYNC_SSH=$NET_SSH autosync create s --source zfs:$A/s \
		--dest "$surl" --every 1d &&
	AUTOSYNC_SSH=$NET_SSH run s && full s 1000000 &&
	g=$(znewest $A/s) &&
	AUTOSYNC_SSH=$NET_SSH net_deadline 60 autosync reverse s &&
	prop_is s source "$surl" &&
	echo overssh >exp-s && cp exp-s $MB/s/new &&
	AUTOSYNC_SSH=$NET_SSH run s &&
	sent_incr $B/s $g && small s && same_snap $B/s $A/s &&
	AUTOSYNC_SSH=$NET_SSH net_deadline 60 autosync reverse s &&
	prop_is s source zfs:$A/s &&
	test "$(zprop $B/s readonly)" = on &&
	test_cmp exp-s $MA/s/new
'

test_expect_success 'no sanitizer report in the server log' '
	net_logs_clean
'

test_done
