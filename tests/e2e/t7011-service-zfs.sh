#!/bin/bash
test_description='service on ZFS, with a daemon: retention on both sides
(only autosync snapshots go; the newest common one, user snapshots and held
ones stay), NAME-latest as a user property on both sides and -X, -N, holds
on the bases while a step runs and none left after a kill -9 of the
daemon, mount-destination and umount-destination through canmount/mount,
reverse (failback) refused, done, and forced'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-zfs.sh"
. "$TEST_DIRECTORY/lib-service.sh"

zfs_setup || exit 0
A=$(zfs_pool a) && B=$(zfs_pool b) || BAIL_OUT "cannot create pools"
MA=$TRASH_DIRECTORY/mnt/$A
MB=$TRASH_DIRECTORY/mnt/$B

# A zfs first on PATH (the daemon's too): `zfs send` waits while the file
# stall exists, after creating stalled (a run held in its step); `zfs
# clone` clones, then waits likewise while stall-clone exists.
SHIM=$TRASH_DIRECTORY/stall-shim
mkdir -p "$SHIM" && cat >"$SHIM/zfs" <<SHIM_EOF
#!/bin/bash
if test "\$1" = send && test -e "$TRASH_DIRECTORY/stall"; then
	touch "$TRASH_DIRECTORY/stalled"
	while test -e "$TRASH_DIRECTORY/stall"; do sleep 0.1; done
fi
if test "\$1" = clone && test -e "$TRASH_DIRECTORY/stall-clone"; then
	"$ZFS_REAL" "\$@"; rc=\$?
	touch "$TRASH_DIRECTORY/stalled"
	while test -e "$TRASH_DIRECTORY/stall-clone"; do sleep 0.1; done
	exit \$rc
fi
exec "$ZFS_REAL" "\$@"
SHIM_EOF
chmod +x "$SHIM/zfs" && PATH=$SHIM:$PATH && export PATH

# the autosync_* snapshots of dataset $1 (not its children), oldest first
asnaps() {
	zfs list -H -t snapshot -o name -s createtxg -r "$1" |
		grep "^$1@autosync_" | sed 's/.*@//'
}
nsnaps() { asnaps "$1" | wc -l; }
latest() { zfs get -H -o value autosync:z-latest "$1"; }
zprop() { zfs get -H -o value "$2" "$1"; }
# a schedule that does not fire while the test runs: runs are the test's
LATER="--every 1d --at $(date -d '+12 hours' +%H:%M)"

test_expect_success 'retention on both sides, NAME-latest on both' '
	zfs create $A/d && zfs create $A/d/c &&
	echo one >$MA/d/f && echo c >$MA/d/c/g &&
	start_daemon &&
	autosync create z --source zfs:$A/d --dest zfs:$B/d $LATER \
		--keep-src 2 --keep-dst 3 --trace-level 2 &&
	autosync run --wait z &&
	zfs snapshot -r $A/d@mine &&
	for i in 2 3 4; do
		echo $i >>$MA/d/f && autosync run --wait z || return 1
	done &&
	test $(nsnaps $A/d) = 2 && test $(nsnaps $A/d/c) = 2 &&
	test $(nsnaps $B/d) = 3 && test $(nsnaps $B/d/c) = 3 &&
	zfs list $A/d@mine $B/d@mine &&
	n=$(asnaps $A/d | tail -n 1) &&
	test "$(zguid $B/d@$n)" = "$(zguid $A/d@$n)" &&
	test "$(zguid $B/d/c@$n)" = "$(zguid $A/d/c@$n)" &&
	test "$(latest $A/d)" = "$n" && test "$(latest $B/d)" = "$n" &&
	test "$(latest $B/d/c)" = "$n" &&
	log_has z "z-latest is $n (2 sides)" &&
	test $(zfs list -H -t snapshot -o name | grep -c z-latest) = 0
'

test_expect_success 'a held snapshot outlives retention until released' '
	old=$(asnaps $A/d | head -n 1) &&
	zfs hold mine $A/d@$old &&
	autosync run --wait z && autosync run --wait z &&
	zfs list $A/d@$old && test $(nsnaps $A/d) = 3 &&
	zfs release mine $A/d@$old &&
	autosync run --wait z &&
	! zfs list $A/d@$old 2>/dev/null && test $(nsnaps $A/d) = 2
'

test_expect_success '-X (latest=off) removes NAME-latest from both sides' '
	autosync set z latest=off && autosync run --wait z &&
	test "$(latest $A/d)" = - && test "$(latest $B/d)" = - &&
	autosync set z latest=on
'

test_expect_success '-N: the root dataset only' '
	zfs create $A/e && zfs create $A/e/c &&
	autosync create n --source zfs:$A/e --dest zfs:$B/e $LATER -N -X &&
	autosync run --wait n &&
	zfs list $B/e && ! zfs list $B/e/c 2>/dev/null &&
	test $(nsnaps $A/e) = 1 && test $(nsnaps $A/e/c) = 0 &&
	test "$(zfs get -H -o value autosync:n-latest $A/e)" = - &&
	autosync destroy n
'

test_expect_success 'keep_dst on a remote zfs destination is its server'"'"'s' '
	test_expect_code 2 autosync create r --source zfs:$A/d \
		--dest tcp://127.0.0.1:7/zfs:$B/r $LATER --keep-dst 3 2>err &&
	test_grep "kept by its server" err &&
	test_must_fail autosync get r state
'

test_expect_success 'holds on the bases during a step; none left after kill -9 and a run' '
	base=$(asnaps $A/d | tail -n 1) &&
	test -z "$(zfstool held $A)" &&
	rm -f stalled && touch stall && autosync run z &&
	wait_for 30 test -e stalled &&
	zfstool held $A >held &&
	grep -qx "$A/d@$base" held && grep -qx "$A/d/c@$base" held &&
	kill -9 $daemon_pid && { wait $daemon_pid 2>/dev/null; } 2>/dev/null;
	rm -f stall &&
	zfstool held $A | grep -q "@$base" &&
	start_daemon &&
	autosync run --wait z &&
	test -z "$(zfstool held $A)" && test -z "$(zfstool held $B)" &&
	test $(nsnaps $A/d) = 2 &&
	test -z "$(zfs list -H -o name,origin -r $A $B | awk "\$2 != \"-\"")" &&
	n=$(asnaps $A/d | tail -n 1) &&
	test "$(zguid $B/d/c@$n)" = "$(zguid $A/d/c@$n)"
'

test_expect_success 'zfs to a directory: kill -9 with the clone mounted; the next run removes it' '
	echo e >$MA/e/f &&
	autosync create zd --source zfs:$A/e --dest "$PWD/edir" $LATER -N &&
	autosync run --wait zd &&
	rm -f stalled && touch stall-clone && autosync run zd &&
	wait_for 30 test -e stalled &&
	test -n "$(zfs list -H -o name,origin -r $A | awk "\$2 != \"-\"")" &&
	kill -9 $daemon_pid && { wait $daemon_pid 2>/dev/null; } 2>/dev/null;
	rm -f stall-clone &&
	start_daemon &&
	echo e2 >$MA/e/f && autosync run --wait zd &&
	test_cmp $MA/e/f edir/f &&
	test -z "$(zfs list -H -o name,origin -r $A | awk "\$2 != \"-\"")" &&
	test -z "$(zfstool held $A)" &&
	autosync destroy zd
'

test_expect_success 'mount-destination: the replica and its children, read-only' '
	mp=$(autosync mount-destination z) &&
	test "$mp" = "$(cd "$AUTOSYNC_STATE_DIR" && pwd -P)/mnt/z" &&
	test "$(zprop $B/d mounted)" = yes &&
	test "$(zprop $B/d/c mounted)" = yes &&
	test_cmp $MA/d/f "$mp/f" && test_cmp $MA/d/c/g "$mp/c/g" &&
	! touch "$mp/new" 2>/dev/null && ! touch "$mp/c/new" 2>/dev/null &&
	echo five >>$MA/d/f && autosync run --wait z &&
	test_cmp $MA/d/f "$mp/f" &&
	test_expect_code 20 autosync destroy z 2>err &&
	test_grep "umount-destination z" err &&
	test_expect_code 20 autosync mount-destination z
'

test_expect_success 'umount-destination: unmounted, the mount point inherited again' '
	autosync umount-destination z &&
	test "$(zprop $B/d mounted)" = no &&
	test "$(zprop $B/d/c mounted)" = no &&
	test "$(zprop $B/d mountpoint)" = "$MB/d" &&
	test_path_is_missing "$AUTOSYNC_STATE_DIR/mnt/z" &&
	test_expect_code 3 autosync umount-destination z
'

test_expect_success 'reverse is refused until the destination holds the newest snapshot' '
	zfs snapshot -r $A/d@later &&
	test_expect_code 20 autosync reverse z 2>err &&
	test_grep "run a final sync first" err &&
	prop_is z source zfs:$A/d &&
	zfs destroy -r $A/d@later &&
	echo final >$MA/d/final &&
	autosync run --wait z
'

test_expect_success 'reverse: B is the source, writable; what changed on B travels back' '
	autosync reverse z &&
	prop_is z source zfs:$B/d && prop_is z dest zfs:$A/d &&
	test "$(zprop $B/d readonly)" = off &&
	test "$(zprop $B/d mounted)" = yes &&
	test "$(zprop $B/d/c mounted)" = yes &&
	! touch $MA/d/written 2>/dev/null && ! touch $MA/d/c/written 2>/dev/null &&
	echo fromB >$MB/d/f2 &&
	autosync run --wait z &&
	n=$(asnaps $B/d | tail -n 1) &&
	test "$(zguid $A/d@$n)" = "$(zguid $B/d@$n)" &&
	test "$(latest $A/d)" = "$n" && test "$(latest $B/d)" = "$n" &&
	autosync log z | tail -n 3 | grep -q "incremental from" &&
	zfs list $A/d@mine $B/d@mine
'

test_expect_success 'reverse refuses when the source changed since; --force rolls it back' '
	echo late >$MB/d/late &&
	test_expect_code 20 autosync reverse z 2>err &&
	test_grep "changed since .* --force rolls it back" err &&
	prop_is z source zfs:$B/d &&
	autosync reverse --force z &&
	prop_is z source zfs:$A/d && prop_is z dest zfs:$B/d &&
	test "$(zprop $A/d readonly)" = off &&
	n=$(asnaps $A/d | tail -n 1) &&
	test "$(zguid $B/d@$n)" = "$(zguid $A/d@$n)" &&
	zfs list $A/d@mine $B/d@mine &&
	mp=$(autosync mount-destination z) &&
	test_path_is_missing "$mp/late" && test_cmp $MA/d/f2 "$mp/f2" &&
	autosync umount-destination z &&
	stop_daemon
'

test_done
