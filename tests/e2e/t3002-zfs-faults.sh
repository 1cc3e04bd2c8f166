#!/bin/bash
test_description='zfs: property policy (a stream from a dataset whose
mountpoint is /root/.ssh mounts nothing), kill -9 of the sync in the middle
of a full and of an incremental transfer then a clean rerun, holds and user
snapshots survive pruning, out of space, and the commands autosync ran'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-zfs.sh"

zfs_setup || exit 0
A=$(zfs_pool a) && B=$(zfs_pool b) || BAIL_OUT "cannot create pools"
MA=$TRASH_DIRECTORY/mnt/$A
MB=$TRASH_DIRECTORY/mnt/$B

# Is anything mounted at $1 (or below it)?
mounted_at() {
	awk -v p="$1" '$2 == p || index($2, p "/") == 1 { f = 1 } END { exit !f }' \
	    /proc/self/mounts
}

test_expect_success 'a dataset whose mountpoint is /root/.ssh mounts nothing' '
	! mounted_at /root/.ssh &&
	zfs create -o canmount=noauto -o mountpoint=$TRASH_DIRECTORY/tmpmp \
	    $A/evil && zfs mount $A/evil &&
	echo key >$TRASH_DIRECTORY/tmpmp/authorized_keys &&
	zfs unmount $A/evil &&
	zfs set mountpoint=/root/.ssh $A/evil &&
	! mounted_at /root/.ssh &&
	zfs create $B/r &&
	as_zfs sync zfs:$A/evil zfs:$B/r/evil &&
	! mounted_at /root/.ssh &&
	test "$(zfs get -H -o value mounted $B/r/evil)" = no &&
	test "$(zfs get -H -o value mountpoint $B/r/evil)" = "$MB/r/evil" &&
	test "$(zfs get -H -o value canmount $B/r/evil)" = noauto &&
	test "$(zfs get -H -o value readonly $B/r/evil)" = on
'

test_expect_success 'a mounted source with its own mountpoint: the replica stays unmounted' '
	zfs create -o mountpoint=$TRASH_DIRECTORY/srcmp $A/mp &&
	echo data >$TRASH_DIRECTORY/srcmp/d &&
	as_zfs sync zfs:$A/mp zfs:$B/r/mp &&
	test "$(zfs get -H -o value mounted $B/r/mp)" = no &&
	test "$(zfs get -H -o value mountpoint $B/r/mp)" = "$MB/r/mp" &&
	! mounted_at $MB/r/mp
'

test_expect_success 'kill -9 of the sync in the middle of a full transfer, then a clean rerun' '
	zfs create $A/big &&
	dd if=/dev/urandom of=$MA/big/f1 bs=1M count=24 2>/dev/null &&
	n0=$(grep -c "^receive" $ZFS_LOG) &&
	test_bg "env ZFS_SHIM_SLOW=1 PATH=$ZFS_SHIM:$PATH setsid autosync sync zfs:$A/big zfs:$B/big" &&
	pid=$test_bg_pid &&
	for i in $(seq 100); do
		test "$(grep -c "^receive" $ZFS_LOG)" -gt $n0 && break
		sleep 0.1
	done &&
	sleep 1.5 &&
	kill -0 $pid &&
	test_kill $pid KILL && { wait $pid; :; } &&
	test_wait_session $pid &&
	! zfs list $B/big 2>/dev/null &&
	as_zfs sync -v zfs:$A/big zfs:$B/big >out &&
	grep "full to" out &&
	s=$(znewest $A/big) &&
	test "$(zguid $B/big@$s)" = "$(zguid $A/big@$s)"
'

test_expect_success 'kill -9 in the middle of an incremental: the replica stays at its snapshot' '
	old=$(znewest $B/big) && oldguid=$(zguid $B/big@$old) &&
	dd if=/dev/urandom of=$MA/big/f2 bs=1M count=24 2>/dev/null &&
	sleep 1 && n0=$(grep -c "^receive" $ZFS_LOG) &&
	test_bg "env ZFS_SHIM_SLOW=1 PATH=$ZFS_SHIM:$PATH setsid autosync sync zfs:$A/big zfs:$B/big" &&
	pid=$test_bg_pid &&
	for i in $(seq 100); do
		test "$(grep -c "^receive" $ZFS_LOG)" -gt $n0 && break
		sleep 0.1
	done &&
	sleep 1.5 &&
	kill -0 $pid &&
	test_kill $pid KILL && { wait $pid; :; } &&
	test_wait_session $pid &&
	test "$(znewest $B/big)" = "$old" &&
	test "$(zguid $B/big@$old)" = "$oldguid" &&
	as_zfs sync -v zfs:$A/big zfs:$B/big >out &&
	grep "incremental from $old" out &&
	s=$(znewest $A/big) &&
	test "$(zguid $B/big@$s)" = "$(zguid $A/big@$s)" &&
	zfstool mount $B/big &&
	cmp $MA/big/f1 $MB/big/f1 && cmp $MA/big/f2 $MB/big/f2 &&
	zfstool umount $B/big &&
	zfstool held $A >held && test_must_be_empty held
'

test_expect_success 'held and user snapshots survive pruning' '
	s=$(znewest $A/big) &&
	zfs hold mine $A/big@$s &&
	zfs snapshot $A/big@user1 &&
	echo x >$MA/big/f3 && sleep 1 &&
	as_zfs sync zfs:$A/big zfs:$B/big &&
	echo y >>$MA/big/f3 && sleep 1 &&
	as_zfs sync zfs:$A/big zfs:$B/big &&
	zfs list $A/big@$s && zfs list $A/big@user1 &&
	zfs list $B/big@user1 &&
	zfstool held $A/big >held &&
	grep -x "$A/big@$s" held &&
	zfs release mine $A/big@$s
'

test_expect_success 'out of space on the destination is NOSPACE' '
	C=$(zfs_pool c 64M) &&
	zfs create $A/fat &&
	dd if=/dev/urandom of=$MA/fat/f bs=1M count=80 2>/dev/null &&
	test_expect_code 41 as_zfs sync zfs:$A/fat zfs:$C/fat 2>err &&
	grep "out of space" err &&
	! zfs list $C/fat 2>/dev/null
'

test_expect_success 'the commands autosync ran: receive -u always, destroy only autosync_' '
	grep "^receive " $ZFS_LOG >recv && test -s recv &&
	! grep -v -e "^receive -u " -e "^receive -u\$" recv &&
	grep "^receive -u $B/big\$" recv &&
	! grep "^destroy " $ZFS_LOG | grep -v "@autosync_" &&
	! grep "^destroy -r" $ZFS_LOG | grep -v "@autosync_" &&
	grep "^hold autosync $A/big@autosync_" $ZFS_LOG &&
	grep "^release autosync $A/big@autosync_" $ZFS_LOG
'

# Between two local pools autosync asks for streams of blocks as they are
# on disk (send -L -e -c) when its zfs has them.  A receiver that refuses
# one (a destination pool without lz4 or large blocks: "pool must be
# upgraded", UNSUPPORTED) gets the plain stream instead.  zfs-fuse has
# neither: a shim says its send has -L -e -c, and the real send refuses
# them (invalid option, UNSUPPORTED), which takes the same way back.
test_expect_success 'streams of blocks as on disk where zfs has them; plain again when refused' '
	mkdir -p blk-shim &&
	cat >blk-shim/zfs <<-EOF &&
	#!/bin/bash
	printf "%s\n" "\$*" >>"$TRASH_DIRECTORY/blk.log"
	if test \$# = 0; then
		"$ZFS_REAL" 2>&1 | sed "s/^\(.send \[-[A-Za-z]*\)/\1Lec/" >&2
		exit 2
	fi
	exec "$ZFS_REAL" "\$@"
	EOF
	chmod +x blk-shim/zfs &&
	PATH=$TRASH_DIRECTORY/blk-shim:$PATH zfs 2>&1 | grep "send \[-RDpLec\]" &&
	zfs create $A/blk && echo b >$MA/blk/f &&
	PATH=$TRASH_DIRECTORY/blk-shim:$PATH autosync sync -N zfs:$A/blk \
		zfs:$B/blk 2>err &&
	cat err blk.log &&
	grep "refused a stream of blocks as they are on disk" err &&
	grep "^send -L -e -c $A/blk@autosync_" blk.log &&
	grep "^send $A/blk@autosync_" blk.log &&
	s=$(znewest $A/blk) &&
	test "$(zguid $B/blk@$s)" = "$(zguid $A/blk@$s)"
'

zfs_teardown_
test_done
