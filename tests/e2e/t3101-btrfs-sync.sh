#!/bin/bash
test_description='btrfs: sync btrfs:SRC btrfs:DST on loop-mounted btrfs

Two btrfs file systems on image files, made and mounted by the test.
Full, then incremental (by received_uuid), nested subvolumes added and
removed, -N, a destination modified since it was published (refused,
then replaced with -F), something autosync did not create in the way,
pruning on both sides, two destinations from one source, and the
portable engine across file systems (btrfs: to a directory and a
directory to btrfs).'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-btrfs.sh"

if ! test_have_prereq BTRFS; then
	test_skip_all "needs root, btrfs-progs and btrfs in the kernel"
fi

A=$TRASH_DIRECTORY/a
B=$TRASH_DIRECTORY/b
SNAPS=$A/.autosync-snapshots/@home
HELD=$B/.autosync-snapshots/home

# same_tree_but_placeholders SRC DST: SRC and DST have equal manifests
# except for the times of the empty directories that stand for nested
# subvolumes in a snapshot (btrfs makes their times up when they are
# read: "added" and "d/nested" here).
same_tree_but_placeholders() {
	manifest "$1" | grep -v -e "^added d " -e "^d/nested d " >m1 &&
	manifest "$2" | grep -v -e "^added d " -e "^d/nested d " >m2 &&
	test_cmp m1 m2
}

test_expect_success 'setup: two file systems, a subvolume with nested ones' '
	btrfs_fs a && btrfs_fs b &&
	btrfs subvolume create "$A/@home" >/dev/null &&
	mkfixture "$A/@home/tree" every-kind &&
	mkdir -p "$A/@home/d" && echo one >"$A/@home/d/f" &&
	btrfs subvolume create "$A/@home/d/nested" >/dev/null &&
	echo n >"$A/@home/d/nested/nf" &&
	btrfs subvolume create "$A/@home/d/nested/deeper" >/dev/null &&
	head -c 300000 /dev/urandom >"$A/@home/d/nested/deeper/x" &&
	touch -d "2020-01-01 00:00:00" "$A/@home/d" "$A/@home/d/nested"
'

test_expect_success 'full: the view holds the tree and its nested subvolumes' '
	autosync sync -v "btrfs:$A/@home" "btrfs:$B/home" >out &&
	cat out &&
	grep "full to autosync_" out &&
	grep "sent 3 subvolumes" out &&
	assert_same_tree "$A/@home" "$B/home" &&
	btrfs_ro "$B/home" && btrfs_ro "$B/home/d/nested" &&
	btrfs_ro "$B/home/d/nested/deeper" &&
	test "$(autosync_snaps "$SNAPS" | wc -l)" = 1 &&
	test "$(autosync_snaps "$HELD" | wc -l)" = 1 &&
	# identity: the received snapshot carries the source snapshot UUID
	s=$(autosync_snaps "$SNAPS") &&
	test "$(btrfs_field "$HELD/$s" "Received UUID")" = \
		"$(btrfs_field "$SNAPS/$s" UUID)" &&
	# private: nobody else reaches the staging of a receive
	test "$(stat -c %a "$HELD")" = 700 &&
	! test -e "$B/.home.autosync-new"
'

test_expect_success 'incremental from the newest common snapshot; older ones pruned' '
	old=$(autosync_snaps "$SNAPS") &&
	mutate_every_kind_ "$A/@home/tree" &&
	echo two >>"$A/@home/d/f" &&
	echo y >"$A/@home/d/nested/deeper/y" &&
	autosync sync -v "btrfs:$A/@home" "btrfs:$B/home" >out &&
	cat out &&
	grep "incremental from $old" out &&
	assert_same_tree "$A/@home" "$B/home" &&
	autosync_snaps "$SNAPS" >s && test_line_count = 1 s &&
	! grep -x "$old" s &&
	autosync_snaps "$HELD" >h && test_cmp s h &&
	autosync_snaps "$SNAPS/children/d%2Fnested%2Fdeeper" >c &&
	test_cmp s c
'

test_expect_success 'nothing changed: a small incremental' '
	autosync sync -v "btrfs:$A/@home" "btrfs:$B/home" >out &&
	grep incremental out &&
	n=$(sed -n "s/.*subvolumes, \([0-9.]*\) \([KMG]*i*B\) of btrfs.*/\1 \2/p" out) &&
	echo "$n" && case "$n" in *" B"|*" KiB") ;; *) false ;; esac &&
	assert_same_tree "$A/@home" "$B/home"
'

test_expect_success 'a nested subvolume added, then one removed' '
	btrfs subvolume create "$A/@home/added" >/dev/null &&
	echo a >"$A/@home/added/a" &&
	autosync sync -v "btrfs:$A/@home" "btrfs:$B/home" >out &&
	grep "sent 4 subvolumes" out &&
	assert_same_tree "$A/@home" "$B/home" &&
	btrfs_ro "$B/home/added" &&
	btrfs subvolume delete "$A/@home/d/nested/deeper" >/dev/null &&
	autosync sync -v "btrfs:$A/@home" "btrfs:$B/home" >out &&
	grep "sent 3 subvolumes" out &&
	assert_same_tree "$A/@home" "$B/home" &&
	# the snapshots of the gone one are pruned on both sides
	test_path_is_missing "$SNAPS/children/d%2Fnested%2Fdeeper" &&
	test_path_is_missing "$HELD/children/d%2Fnested%2Fdeeper"
'

test_expect_success '-N: the subvolume alone' '
	autosync sync -v -N "btrfs:$A/@home" "btrfs:$B/n" >out &&
	grep "sent 1 subvolume," out &&
	test_path_is_file "$B/n/d/f" &&
	test_path_is_missing "$B/n/added" &&
	test_path_is_missing "$B/n/d/nested" &&
	test_path_is_missing "$B/.autosync-snapshots/n/children" &&
	# a view never carries a received_uuid (btrfs receive could take
	# it for the parent of an incremental)
	test "$(btrfs_field "$B/n" "Received UUID")" = - &&
	test "$(btrfs_field "$B/home" "Received UUID")" = - &&
	test "$(btrfs_field "$B/home/d/nested" "Received UUID")" = -
'

test_expect_success 'a destination modified since it was published is refused' '
	before=$(btrfs_field "$B/home" UUID) &&
	btrfs property set -ts "$B/home" ro false &&
	echo local >"$B/home/local-change" &&
	test_expect_code 20 autosync sync "btrfs:$A/@home" "btrfs:$B/home" \
		2>err &&
	cat err &&
	grep "was modified since autosync published it" err &&
	grep -- "-F" err &&
	test_path_is_file "$B/home/local-change" &&
	test "$(btrfs_field "$B/home" UUID)" = "$before"
'

test_expect_success 'a written nested view is detected too' '
	btrfs property set -ts "$B/home" ro true &&
	btrfs property set -ts "$B/home/added" ro false &&
	echo x >"$B/home/added/x" &&
	test_expect_code 20 autosync sync "btrfs:$A/@home" "btrfs:$B/home" \
		2>err &&
	grep "home/added" err
'

test_expect_success '-F replaces the modified destination' '
	autosync sync -v -F "btrfs:$A/@home" "btrfs:$B/home" >out 2>err &&
	cat out err &&
	grep "incremental" out &&
	grep "replaced" err &&
	test_path_is_missing "$B/home/local-change" &&
	test_path_is_missing "$B/home/added/x" &&
	assert_same_tree "$A/@home" "$B/home" &&
	btrfs_ro "$B/home"
'

test_expect_success 'what autosync did not create is never replaced, even with -F' '
	btrfs subvolume create "$B/foreign" >/dev/null &&
	echo mine >"$B/foreign/file" &&
	test_expect_code 20 autosync sync -F "btrfs:$A/@home" \
		"btrfs:$B/foreign" 2>err &&
	grep "autosync did not create it" err &&
	test_path_is_file "$B/foreign/file" &&
	mkdir "$B/plain" &&
	test_must_fail autosync sync -F "btrfs:$A/@home" "btrfs:$B/plain" &&
	test_path_is_dir "$B/plain"
'

test_expect_success 'two destinations: each keeps its common snapshot' '
	autosync sync "btrfs:$A/@home" "btrfs:$B/second" &&
	echo three >>"$A/@home/d/f" &&
	autosync sync "btrfs:$A/@home" "btrfs:$B/home" &&
	autosync sync -v "btrfs:$A/@home" "btrfs:$B/second" >out &&
	grep incremental out &&
	assert_same_tree "$A/@home" "$B/second"
'

test_expect_success 'refusals: overlap, a plain directory as btrfs:, dir to btrfs:' '
	test_expect_code 2 autosync sync "btrfs:$A/@home" "btrfs:$A/@home/in" &&
	mkdir -p "$A/plaindir" &&
	test_expect_code 3 autosync sync "btrfs:$A/plaindir" "btrfs:$B/x" \
		2>err && cat err &&
	test_expect_code 2 autosync sync "$A/plaindir" "btrfs:$B/x" 2>err &&
	grep "without btrfs:" err &&
	test_expect_code 2 autosync sync "btrfs:relative" "btrfs:$B/x"
'

test_expect_success 'a mounted subvolume: its parent is another file system' '
	mkdir -p sub &&
	test_mount -o loop,subvol=@home a.img sub &&
	test_expect_code 2 autosync sync "btrfs:$TRASH_DIRECTORY/sub" \
		"btrfs:$B/m" 2>err &&
	grep "top of a mount" err &&
	test_umount sub
'

test_expect_success 'btrfs: to a directory: point-in-time, incremental' '
	mkdir -p ext &&
	autosync sync -v "btrfs:$A/@home" "$TRASH_DIRECTORY/ext/copy" >out &&
	grep "full to" out &&
	test_path_is_dir "$SNAPS/dir-source" && btrfs_ro "$SNAPS/dir-source" &&
	same_tree_but_placeholders "$SNAPS/dir-source" ext/copy &&
	echo four >>"$A/@home/d/f" &&
	autosync sync -v "btrfs:$A/@home" "$TRASH_DIRECTORY/ext/copy" >out &&
	cat out &&
	grep "incremental from" out &&
	# only the changed file bytes travel (entries: it and its parents)
	grep "entries, $(wc -c <"$A/@home/d/f") B of data" out &&
	same_tree_but_placeholders "$SNAPS/dir-source" ext/copy &&
	test "$(cat ext/copy/d/f)" = "$(cat "$A/@home/d/f")" &&
	# nested subvolumes are other file systems to the portable engine
	test_path_is_dir ext/copy/d/nested &&
	test_path_is_missing ext/copy/d/nested/nf
'

test_expect_success 'a directory to a directory on btrfs: a plain local path' '
	mkfixture plainsrc small &&
	autosync sync plainsrc "$B/plaincopy" &&
	assert_same_tree plainsrc "$B/plaincopy"
'

test_expect_success 'a local btrfs stream under --rate-limit, with --progress' '
	btrfs subvolume create "$A/@paced" >/dev/null &&
	head -c 6291456 /dev/urandom >"$A/@paced/big" &&
	# 6 MiB at 2 MiB/s
	test_took 2500 "" autosync sync --rate-limit 2M --progress=json \
		"btrfs:$A/@paced" "btrfs:$B/paced" 2>prog &&
	cat prog &&
	progress_done prog 6291456 &&
	cmp "$A/@paced/big" "$B/paced/big"
'

test_done
