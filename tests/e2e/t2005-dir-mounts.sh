#!/bin/bash
test_description='dir engine: file systems mounted below the source

A sync of a directory replicates the file systems mounted below it as
part of its tree (like rsync -a); with -N it does not descend into them
and keeps each mount point as an empty directory (like rsync -x), so
that "/" with -N leaves out /proc, /sys and /dev.  Both file systems
here are tmpfs instances, whose inode numbers start small and meet:
hard-link groups on the two must stay apart.'
. "$(dirname "$0")/test-lib.sh"

if ! test_have_prereq TMPFS; then
	test_skip_all 'needs root and tmpfs mounts'
fi

# inode DIR/PATH
ino() { stat -c %i "$1"; }

test_expect_success 'setup: a tmpfs tree with a tmpfs mounted inside' '
	mkdir outer &&
	test_mount -t tmpfs -o size=64m tmpfs outer &&
	mkdir outer/src outer/src/m &&
	echo top >outer/src/a &&
	echo linked >outer/src/l1 && ln outer/src/l1 outer/src/l2 &&
	test_mount -t tmpfs -o size=16m,mode=0750 tmpfs outer/src/m &&
	echo inner >outer/src/m/x &&
	echo gone-soon >outer/src/m/y &&
	echo inner-linked >outer/src/m/l1 && ln outer/src/m/l1 outer/src/m/l2 &&
	mkdir outer/src/m/sub && echo z >outer/src/m/sub/z &&
	ln -s x outer/src/m/sym &&
	setfattr -n user.k -v v outer/src/m/x 2>/dev/null || : &&
	S=outer/src &&
	echo "inodes: l1 $(ino $S/l1), m/l1 $(ino $S/m/l1), a $(ino $S/a), m/x $(ino $S/m/x)"
'

test_expect_success 'sync replicates the mounted file system as part of the tree' '
	autosync sync $S outer/d1 &&
	assert_same_tree $S outer/d1 &&
	test -f outer/d1/m/sub/z &&
	test "$(ino outer/d1/l1)" = "$(ino outer/d1/l2)" &&
	test "$(ino outer/d1/m/l1)" = "$(ino outer/d1/m/l2)" &&
	test "$(ino outer/d1/l1)" != "$(ino outer/d1/m/l1)" &&
	test "$(stat -c %h outer/d1/l1)" = 2 &&
	test "$(stat -c %h outer/d1/m/l1)" = 2 &&
	test "$(stat -c %a outer/d1/m)" = 750
'

test_expect_success 'an incremental carries changes below the mount point' '
	echo changed >$S/m/x &&
	rm $S/m/y &&
	echo new >$S/m/sub/new &&
	ln $S/m/x $S/m/x2 &&
	autosync -v sync $S outer/d1 >out &&
	cat out &&
	test_grep -q incremental out &&
	assert_same_tree $S outer/d1
'

test_expect_success 'an unchanged tree across the mount sends nothing new' '
	autosync -v sync $S outer/d1 >out &&
	cat out &&
	assert_same_tree $S outer/d1 &&
	autosync verify $S outer/d1
'

test_expect_success 'sync -N keeps the mount point, empty' '
	autosync sync -N $S outer/d2 &&
	test -d outer/d2/m &&
	test -z "$(ls -A outer/d2/m)" &&
	test "$(stat -c %a outer/d2/m)" = 750 &&
	test -f outer/d2/a &&
	rsync -naHAXcx --numeric-ids --delete --exclude=/.autosync \
		--itemize-changes $S/ outer/d2/ >diffs &&
	test_must_be_empty diffs
'

test_expect_success 'sync -N: changes below the mount point do not travel' '
	echo more >$S/m/more &&
	echo top2 >$S/b &&
	autosync sync -N $S outer/d2 &&
	test -f outer/d2/b &&
	test -z "$(ls -A outer/d2/m)" &&
	rsync -naHAXcx --numeric-ids --delete --exclude=/.autosync \
		--itemize-changes $S/ outer/d2/ >diffs &&
	test_must_be_empty diffs
'

test_expect_success 'snapshot -N and snapshot record different trees' '
	autosync snapshot -N $S@one &&
	autosync snapshot $S@all &&
	autosync snapshots --json $S >list &&
	cat list &&
	n1=$(py_ -c "import json,sys; print([s[\"entries\"] for s in json.load(open(\"list\")) if s[\"name\"] == \"one\"][0])") &&
	n2=$(py_ -c "import json,sys; print([s[\"entries\"] for s in json.load(open(\"list\")) if s[\"name\"] == \"all\"][0])") &&
	echo "entries: -N $n1, all $n2" &&
	test $n1 -lt $n2
'

test_done
