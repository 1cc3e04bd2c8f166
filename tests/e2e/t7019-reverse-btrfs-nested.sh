#!/bin/bash
test_description='service: reverse (failback) of a btrfs tree

btrfs:A -> btrfs:B where A holds nested subvolumes (one, and two nested
in it), both local: the reverse takes the steps of a single subvolume
for the root and each child (checks and snapshots parents first, the
tree published at A by one rename), every subvolume of B writable after
it, every one of A read-only; the first run after it is a `btrfs send -p`
per subvolume (counted with the shim), and so after the reverse back.
A write in a child of the old source is refused (exit 20, that child
named, nothing changed), then --force rolls it back; the received
copies hold no placeholders of nested subvolumes (a child deleted on the
new source goes on the replica, and comes back); a nested subvolume
the replica never held is refused even with --force.  Between machines:
t7020.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-btrfs.sh"
. "$TEST_DIRECTORY/lib-service.sh"

if ! test_have_prereq BTRFS; then
	test_skip_all "needs root, btrfs-progs and btrfs in the kernel"
fi

A=$TRASH_DIRECTORY/a
B=$TRASH_DIRECTORY/b
MIB=1048576
SUBS=". one one/two"

test_expect_success 'setup: a tree A -> B, a full then an incremental run' '
	btrfs_fs a && btrfs_fs b &&
	btrfs_tree "$A/src" &&
	echo root >"$A/src/f" &&
	autosync create r --source "btrfs:$A/src" --dest "btrfs:$B/dst" \
		--every 1d --trace-level 2 &&
	autosync run r &&
	echo more >>"$A/src/one/two/f2" &&
	autosync run r &&
	same_tree "$A/src" "$B/dst" && all_ro "$B/dst" && subvols "$B/dst"
'

test_expect_success 'local reverse of the tree: B (a child written) the source' '
	btrfs property set -ts "$B/dst/one" ro false &&
	echo failover >"$B/dst/one/fo" &&
	btrfs_shim_install &&
	shimmed autosync reverse r &&
	sends_p 3 &&
	prop_is r source "btrfs:$B/dst" && prop_is r dest "btrfs:$A/src" &&
	all_rw "$B/dst" && all_ro "$A/src" && subvols "$A/src" &&
	same_tree "$A/src" "$B/dst" &&
	test "$(cat "$A/src/one/fo")" = failover &&
	n=$(autosync_snaps "$B/.autosync-snapshots/dst") &&
	test $(echo "$n" | wc -l) = 1 &&
	test "$(autosync_snaps "$A/.autosync-snapshots/src")" = "$n" &&
	c=$B/.autosync-snapshots/dst/children &&
	received_is "$A/.autosync-snapshots/src/children/one%2Ftwo/$n" \
		"$c/one%2Ftwo/$n"
'

test_expect_success 'the first run after it: one send -p per subvolume' '
	head -c 100000 /dev/urandom >"$B/dst/one/two/new" &&
	echo r2 >>"$B/dst/f" &&
	shimmed autosync run r &&
	sends_p 3 && sent_below r $MIB &&
	same_tree "$A/src" "$B/dst" && all_ro "$A/src"
'

test_expect_success 'a write in a child of the old source is refused' '
	autosync run r &&
	ls -a "$A/.autosync-snapshots/src" "$B/.autosync-snapshots/dst" \
		"$B/.autosync-snapshots/dst/children/one" >before &&
	echo late >"$B/dst/one/late" &&
	test_expect_code 20 autosync reverse r 2>err &&
	cat err &&
	test_grep "btrfs:$B/dst/one. changed since .*first: .late.*--force" err &&
	prop_is r source "btrfs:$B/dst" &&
	all_rw "$B/dst" && all_ro "$A/src" &&
	test_path_is_missing "$A/src/one/late" &&
	ls -a "$A/.autosync-snapshots/src" "$B/.autosync-snapshots/dst" \
		"$B/.autosync-snapshots/dst/children/one" >after &&
	test_cmp before after
'

test_expect_success '--force rolls the child back; then incremental' '
	autosync reverse --force r &&
	prop_is r source "btrfs:$A/src" &&
	all_rw "$A/src" && all_ro "$B/dst" &&
	test_path_is_missing "$B/dst/one/late" &&
	same_tree "$A/src" "$B/dst" &&
	echo three >>"$A/src/one/d/x" &&
	shimmed autosync run r &&
	sends_p 3 && sent_below r $MIB &&
	same_tree "$A/src" "$B/dst"
'

test_expect_success 'reverse back: incremental per subvolume again' '
	autosync reverse r &&
	prop_is r source "btrfs:$B/dst" &&
	all_rw "$B/dst" && all_ro "$A/src" &&
	echo four >>"$B/dst/one/two/f2" &&
	shimmed autosync run r &&
	sends_p 3 && sent_below r $MIB &&
	same_tree "$A/src" "$B/dst"
'

test_expect_success 'a publish that fails leaves the whole tree as it was' '
	ls -aR "$A/.autosync-snapshots/src" "$B/.autosync-snapshots/dst" >before &&
	test_expect_code 40 env AUTOSYNC_FAULT=btrfs_view:5 \
		autosync reverse r 2>err &&
	cat err &&
	prop_is r source "btrfs:$B/dst" &&
	all_rw "$B/dst" && all_ro "$A/src" &&
	ls -aR "$A/.autosync-snapshots/src" "$B/.autosync-snapshots/dst" >after &&
	test_cmp before after &&
	test_path_is_missing "$A/.src.autosync-new" &&
	echo six >>"$B/dst/one/f6" &&
	shimmed autosync run r && sends_p 3 &&
	same_tree "$A/src" "$B/dst"
'

test_expect_success 'a child deleted on the new source goes on the replica' '
	autosync reverse r && prop_is r source "btrfs:$A/src" &&
	n=$(autosync_snaps "$B/.autosync-snapshots/dst" | tail -n 1) &&
	test_path_is_missing "$B/.autosync-snapshots/dst/$n/one" &&
	test_path_is_missing "$B/.autosync-snapshots/dst/children/one/$n/two" &&
	btrfs subvolume delete "$A/src/one/two" >/dev/null &&
	shimmed autosync run r && sends_p 2 &&
	test_path_is_missing "$B/dst/one/two" &&
	same_tree "$A/src" "$B/dst" &&
	btrfs subvolume create "$A/src/one/two" >/dev/null &&
	echo back >"$A/src/one/two/b" &&
	autosync run r && same_tree "$A/src" "$B/dst" &&
	autosync reverse r && prop_is r source "btrfs:$B/dst"
'

test_expect_success 'a nested subvolume B never held is refused, --force too' '
	btrfs subvolume create "$B/dst/one/extra" >/dev/null &&
	echo keep >"$B/dst/one/extra/k" &&
	test_expect_code 20 autosync reverse --force r 2>err &&
	cat err && test_grep "one/extra. is a nested subvolume .*--force too" err &&
	prop_is r source "btrfs:$B/dst" && all_rw "$B/dst" && all_ro "$A/src" &&
	test "$(cat "$B/dst/one/extra/k")" = keep &&
	btrfs subvolume delete "$B/dst/one/extra" >/dev/null &&
	test_expect_code 20 autosync reverse r 2>err &&
	test_grep "dst/one. changed since .*first: .\.." err &&
	autosync run r && autosync reverse r && prop_is r source "btrfs:$A/src" &&
	same_tree "$A/src" "$B/dst"
'

test_done
