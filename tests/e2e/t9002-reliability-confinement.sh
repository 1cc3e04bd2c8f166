#!/bin/bash
test_description='RELIABILITY.md §B 21: a planted destination root, parent
component or private directory

Another user (uid 65534, as "chown -h" or in a directory it owns) plants a
symlink to the sentinels (lib-hostile.sh: $OUTSIDE) where root is about to
receive: the destination itself, a component of its path, its private
directory (.autosync, or a volume'"'"'s IMAGE.autosync record, its
temporary and its journal), or pre-creates the private directory with mode
0777.  Expected: UNSAFE_PATH (14) or a receive that replaced the planted
name, and in every case every sentinel exactly as before (O4) and the
destination as before (O1).  A symlink owned by root on the way (as
/var/run -> /run) stays allowed.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-hostile.sh"
. "$TEST_DIRECTORY/lib-vol.sh"

if ! test_have_prereq ROOT; then
	test_skip_all 'planting as another user needs root'
fi

# plant LINK TARGET: a symlink owned by uid 65534, as that user would
# leave it
plant() { ln -s "$2" "$1" && chown -h 65534:65534 "$1"; }

test_expect_success 'setup: sentinels, a tree and its stream, a volume and its streams' '
	sentinels_setup &&
	mkdir src && echo one >src/f && mkdir src/d && echo two >src/d/g &&
	autosync snapshot src@s1 && autosync send src@s1 >full.as &&
	truncate -s 1M a.img && scribble a.img 3 &&
	autosync snapshot vol:a.img@v1 && autosync send vol:a.img@v1 >vfull.as &&
	scribble a.img 2 &&
	autosync snapshot vol:a.img@v2 &&
	autosync send -i @v1 vol:a.img@v2 >vincr.as &&
	mkdir evil && chown 65534:65534 evil
'

test_expect_success '21: the destination itself a symlink of another user: UNSAFE_PATH' '
	plant evil/job1 "$OUTSIDE/victimdir" &&
	test_expect_code 14 autosync receive evil/job1 <full.as 2>err &&
	cat err && test_grep "a symbolic link owned by uid 65534" err &&
	confined
'

test_expect_success '21: a private directory planted as a symlink, or 0777 by another user: UNSAFE_PATH' '
	mkdir -p evil/job2 evil/job3/.autosync &&
	plant evil/job2/.autosync "$OUTSIDE/victimdir" &&
	test_expect_code 14 autosync receive evil/job2 <full.as 2>err &&
	cat err &&
	chmod 0777 evil/job3/.autosync && chown 65534:65534 evil/job3/.autosync &&
	test_expect_code 14 autosync receive evil/job3 <full.as 2>err &&
	cat err && test_grep "not owned by uid 0 with mode 0700" err &&
	test "$(ls -A evil/job3/.autosync)" = "" &&
	test_path_is_missing evil/job2/f && test_path_is_missing evil/job3/f &&
	confined
'

test_expect_success '21: a symlink owned by root on the way is allowed' '
	mkdir -p real/dsts && ln -s "$PWD/real/dsts" rootlink &&
	autosync receive rootlink/job <full.as &&
	assert_same_tree src real/dsts/job
'

test_expect_success '21: vol: a planted IMAGE.autosync.tmp is not written through' '
	mkdir evilv && autosync receive vol:evilv/b.img <vfull.as &&
	chown 65534:65534 evilv &&
	sha evilv/b.img >b.sha &&
	plant evilv/b.img.autosync.tmp "$OUTSIDE/victim" &&
	autosync receive vol:evilv/b.img <vincr.as 2>err; rc=$? &&
	cat err && echo "exit $rc" &&
	confined &&
	case $rc in
	0)	test "$(sha evilv/b.img)" = "$(sha a.img)" &&
		test -f evilv/b.img.autosync && ! test -L evilv/b.img.autosync ;;
	14)	test "$(sha evilv/b.img)" = "$(cat b.sha)" ;;
	*)	false ;;
	esac
'

test_expect_success '21: vol: a planted record or journal symlink: UNSAFE_PATH, nothing read or written through' '
	rm -rf evilv && mkdir evilv && autosync receive vol:evilv/b.img <vfull.as &&
	chown 65534:65534 evilv && sha evilv/b.img >b.sha &&
	plant evilv/b.img.autosync-journal "$OUTSIDE/victim" &&
	test_expect_code 14 autosync receive vol:evilv/b.img <vincr.as 2>err &&
	cat err && test_grep "symbolic link" err &&
	test "$(sha evilv/b.img)" = "$(cat b.sha)" &&
	confined &&
	rm evilv/b.img.autosync-journal &&
	mv evilv/b.img.autosync evilv/rec &&
	plant evilv/b.img.autosync "$PWD/evilv/rec" &&
	test_expect_code 14 autosync receive vol:evilv/b.img <vincr.as 2>err &&
	cat err && test_grep "symbolic link" err &&
	test "$(sha evilv/b.img)" = "$(cat b.sha)" &&
	confined
'

test_expect_success '21: vol: the image itself a planted symlink: refused, the victim intact' '
	plant evilv/c.img "$OUTSIDE/victim" &&
	test_must_fail autosync receive vol:evilv/c.img <vfull.as 2>err &&
	cat err &&
	test_must_fail autosync receive -F vol:evilv/c.img <vfull.as 2>err &&
	cat err &&
	confined
'

# rsync'"'"'s rule (CVE-2026-53796): a path component that is a symlink
# owned by another user is not followed (base/ownwalk.c: O_NOFOLLOW
# alone guards only the last component).
test_expect_success '21: a parent component that is a symlink of another user is refused (dir)' '
	plant evil/parent "$OUTSIDE/victimdir" &&
	autosync receive evil/parent/job <full.as 2>err; rc=$? &&
	cat err && echo "exit $rc" &&
	test_path_is_missing "$OUTSIDE/victimdir/job" &&
	test $rc = 14 &&
	confined
'

# sync resolves the destination with realpath before the receiver opens
# it: the ownership walk (base/ownwalk.c) must come first.
test_expect_success '21: sync to a destination that is a symlink of another user is refused' '
	mkdir -p elsewhere/empty &&
	plant evil/job4 "$PWD/elsewhere/empty" &&
	autosync sync src evil/job4 2>err; rc=$? &&
	cat err && echo "exit $rc" &&
	test "$(ls -A elsewhere/empty)" = "" &&
	test $rc = 14
'

test_done
