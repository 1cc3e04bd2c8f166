#!/bin/bash
test_description='service: reverse (failback) between two directories,
incremental from the common snapshot, refused when it would lose data;
mount-destination and umount-destination (read-only bind mount)'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-service.sh"

# the data bytes the last run of NAME sent (trace level 2)
last_data() {
	autosync log "$1" | sed -n "s/.* sent, \([0-9]*\) data bytes.*/\1/p" |
		tail -n 1
}

test_expect_success 'reverse is refused until the destination holds the newest snapshot' '
	mkdir S && test_bytes 200000 1 >S/big && test_bytes 150000 2 >S/f2 &&
	mkdir S/sub && echo y >S/sub/y &&
	autosync create rv --source "$PWD/S" --dest "$PWD/D" --every 1d \
		--trace-level 2 &&
	autosync run rv &&
	autosync snapshot "$PWD/S@mine" &&
	test_expect_code 20 autosync reverse rv 2>err &&
	test_grep "run a final sync first" err &&
	prop_is rv source "$PWD/S" &&
	autosync destroy -f "$PWD/S@mine" &&
	autosync run rv
'

test_expect_success 'reverse, then only what changed on D travels back to S' '
	autosync reverse rv &&
	prop_is rv source "$PWD/D" &&
	prop_is rv dest "$PWD/S" &&
	log_has rv "reversed: source .*D., destination .*S." &&
	! snaps "$PWD/S" | grep -q rv-latest &&
	autosync snapshots -H | cut -f1 | grep -q "^$PWD/D@autosync_" &&
	echo appended >>D/big &&
	echo new >D/new &&
	mv D/f2 D/f2-moved &&
	autosync run rv &&
	assert_same_tree D S &&
	n=$(last_data rv) &&
	test "$n" -gt 0 && test "$n" -lt 100000 &&
	snaps "$PWD/D" | grep -qx rv-latest
'

test_expect_success 'reverse refuses when the source changed since; --force rolls it back' '
	echo late >D/late &&
	test_expect_code 20 autosync reverse rv 2>err &&
	test_grep "changed since .* --force rolls it back" err &&
	prop_is rv source "$PWD/D" &&
	autosync reverse --force rv &&
	prop_is rv source "$PWD/S" &&
	test_path_is_missing D/late &&
	assert_same_tree S D &&
	echo forward >S/forward && autosync run rv &&
	assert_same_tree S D
'

test_expect_success 'reverse of a directory to a remote volume is not supported' '
	autosync create rem --source "$PWD/S" --dest "ssh://nohost/vol:/x.img" \
		--every 1d &&
	test_expect_code 13 autosync reverse rem 2>err &&
	test_grep "between two vol: endpoints" err &&
	prop_is rem source "$PWD/S" &&
	autosync destroy rem
'

test_expect_success ROOT 'mount-destination: read-only, follows runs; destroy waits for umount' '
	mp=$(autosync mount-destination rv) &&
	test "$mp" = "$(cd "$AUTOSYNC_STATE_DIR" && pwd -P)/mnt/rv" &&
	echo "$mp" >>"$TEST_META/mounts" &&
	test_cmp S/sub/y "$mp/sub/y" &&
	! echo x 2>/dev/null >"$mp/written" &&
	test_path_is_missing D/written &&
	grep " $mp " /proc/self/mountinfo | grep -q "[ ,]ro[ ,]" &&
	test_expect_code 20 autosync mount-destination rv &&
	echo more >S/more && autosync run rv &&
	test_cmp S/more "$mp/more" &&
	test_expect_code 20 autosync destroy rv 2>err &&
	test_grep "umount-destination rv" err &&
	autosync umount-destination rv &&
	! mountpoint -q "$mp" 2>/dev/null &&
	test_path_is_missing "$mp" &&
	test_expect_code 3 autosync umount-destination rv &&
	mkdir there &&
	autosync mount-destination rv there >out &&
	echo "$PWD/there" >>"$TEST_META/mounts" &&
	test_grep "/there$" out &&
	test_cmp S/more there/more &&
	autosync umount-destination rv &&
	test_path_is_dir there &&
	autosync destroy rv
'

test_done
