#!/bin/bash
test_description='service on btrfs, with a daemon: retention on both sides
(only autosync snapshots go, another destination'"'"'s stays), NAME-latest
as a link in the snapshot directory of both sides and -X, -N,
mount-destination (a read-only bind mount of the published view) and
umount-destination; reverse of a subvolume with nested ones, locally
(t7018 reverses one subvolume, t7019 a tree)'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-btrfs.sh"
. "$TEST_DIRECTORY/lib-service.sh"

if ! test_have_prereq BTRFS; then
	test_skip_all "needs root, btrfs-progs and btrfs in the kernel"
fi

A=$TRASH_DIRECTORY/a
B=$TRASH_DIRECTORY/b
SNAPS=$A/.autosync-snapshots/src
HELD=$B/.autosync-snapshots/dst
LATER="--every 1d --at $(date -d '+12 hours' +%H:%M)"

n_of() { autosync_snaps "$1" | wc -l; }

test_expect_success 'retention on both sides, NAME-latest on both' '
	btrfs_fs a && btrfs_fs b &&
	btrfs subvolume create "$A/src" >/dev/null &&
	echo one >"$A/src/f" &&
	btrfs subvolume create "$A/src/nested" >/dev/null &&
	echo n >"$A/src/nested/g" &&
	start_daemon &&
	autosync create b --source "btrfs:$A/src" --dest "btrfs:$B/dst" \
		$LATER --keep-src 2 --keep-dst 3 --trace-level 2 &&
	for i in 1 2 3 4; do
		echo $i >>"$A/src/f" && autosync run --wait b || return 1
	done &&
	test $(n_of "$SNAPS") = 2 && test $(n_of "$HELD") = 3 &&
	n=$(autosync_snaps "$SNAPS" | tail -n 1) &&
	test "$(readlink "$SNAPS/b-latest")" = "$n" &&
	test "$(readlink "$HELD/b-latest")" = "$n" &&
	test_cmp "$A/src/f" "$HELD/b-latest/f" &&
	test_cmp "$A/src/f" "$B/dst/f" && test_cmp "$A/src/nested/g" "$B/dst/nested/g" &&
	log_has b "b-latest is $n (2 sides)"
'

test_expect_success '-X (latest=off) removes the links' '
	autosync set b latest=off && autosync run --wait b &&
	test_path_is_missing "$SNAPS/b-latest" &&
	test_path_is_missing "$HELD/b-latest" &&
	autosync set b latest=on && autosync run --wait b &&
	test -L "$SNAPS/b-latest" && test -L "$HELD/b-latest"
'

test_expect_success '-N: the subvolume without the nested one' '
	autosync create n --source "btrfs:$A/src" --dest "btrfs:$B/flat" \
		$LATER -N -X &&
	autosync run --wait n &&
	test_cmp "$A/src/f" "$B/flat/f" &&
	test_path_is_missing "$B/flat/nested/g" &&
	autosync destroy n
'

test_expect_success 'mount-destination: the view, read-only; umount-destination' '
	mp=$(autosync mount-destination b) &&
	echo "$mp" >>"$TEST_META/mounts" &&
	test_cmp "$A/src/f" "$mp/f" &&
	! touch "$mp/new" 2>/dev/null &&
	grep " $mp " /proc/self/mountinfo | grep -q "[ ,]ro[ ,]" &&
	test_expect_code 20 autosync mount-destination b &&
	echo more >>"$A/src/f" && autosync run --wait b &&
	test_cmp "$A/src/f" "$B/dst/f" &&
	test_expect_code 20 autosync destroy b 2>err &&
	test_grep "umount-destination b" err &&
	autosync umount-destination b &&
	! mountpoint -q "$mp" &&
	test_path_is_missing "$mp" &&
	mp=$(autosync mount-destination b) &&
	echo "$mp" >>"$TEST_META/mounts" &&
	test_cmp "$A/src/f" "$mp/f" &&
	autosync umount-destination b
'

test_expect_success 'reverse with nested subvolumes, local: the tree (t7019)' '
	autosync reverse b &&
	prop_is b source "btrfs:$B/dst" &&
	! btrfs_ro "$B/dst" && ! btrfs_ro "$B/dst/nested" &&
	btrfs_ro "$A/src" && btrfs_ro "$A/src/nested" &&
	test_cmp "$B/dst/nested/g" "$A/src/nested/g" &&
	echo m >>"$B/dst/nested/g" && autosync run --wait b &&
	test_cmp "$B/dst/nested/g" "$A/src/nested/g" &&
	stop_daemon
'

test_done
