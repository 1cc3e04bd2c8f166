#!/bin/bash
test_description='dir engine: refusals that protect the destination

An incremental whose base the destination does not hold is refused
naming both GUIDs; a destination modified since its last receive is
refused unless -F; a full stream does not land on a non-empty directory;
two receivers of one destination do not interleave.  Every refusal exits
20 (CONFLICT) and leaves the destination exactly as it was (O1).'
. "$(dirname "$0")/test-lib.sh"

test_expect_success 'setup: s1 full, s2 incremental received; s3 taken' '
	mkfixture src small &&
	test_bytes $((4 << 20)) big >src/big4 &&
	autosync snapshot src@s1 &&
	autosync send src@s1 >s1.as &&
	echo two >src/two &&
	autosync snapshot src@s2 &&
	autosync send -i @s1 src@s2 >s1-s2.as &&
	echo three >src/three &&
	autosync snapshot src@s3 &&
	autosync send -i @s1 src@s3 >s1-s3.as &&
	autosync send -i @s2 src@s3 >s2-s3.as &&
	autosync send src@s3 >s3.as &&
	g1=$(snapshot_guid src s1) && g2=$(snapshot_guid src s2) &&
	g3=$(snapshot_guid src s3) &&
	echo "s1 $g1 s2 $g2 s3 $g3" &&
	autosync receive dst <s1.as &&
	autosync receive dst <s1-s2.as &&
	manifest dst >dst.s2
'

test_expect_success 'an incremental from the wrong base is refused, naming both GUIDs' '
	test_expect_code 20 autosync receive dst <s1-s3.as 2>err &&
	cat err &&
	test_line_count = 1 err &&
	test_grep -q "$g1" err &&
	test_grep -q "$g2" err &&
	assert_manifest dst dst.s2
'

test_expect_success '... even with -F' '
	test_expect_code 20 autosync receive -F dst <s1-s3.as 2>err &&
	test_grep -q "$g1" err &&
	assert_manifest dst dst.s2
'

test_expect_success 'the same stream again (already received) is refused' '
	test_expect_code 20 autosync receive dst <s1-s2.as 2>err &&
	assert_manifest dst dst.s2
'

test_expect_success 'an incremental into an empty destination is refused' '
	mkdir empty &&
	test_expect_code 20 autosync receive empty <s2-s3.as 2>err &&
	test_grep -q "$g2" err &&
	test -z "$(ls -A empty | grep -vx .autosync)" &&
	test_expect_code 20 autosync receive missing <s2-s3.as 2>err &&
	! test -e missing || test -z "$(ls -A missing | grep -vx .autosync)"
'

test_expect_success 'a destination modified since its receive is refused' '
	echo local change >dst/a/f1 &&
	manifest dst >dst.modified &&
	test_expect_code 20 autosync receive dst <s2-s3.as 2>err &&
	cat err &&
	test_line_count = 1 err &&
	test_grep -q "a/f1" err &&
	assert_manifest dst dst.modified
'

test_expect_success '... whatever the change: a new file, a chmod, an xattr' '
	echo new >dst/local-file &&
	test_expect_code 20 autosync receive dst <s2-s3.as 2>err &&
	rm dst/local-file &&
	chmod 0600 dst/a/f2 &&
	test_expect_code 20 autosync receive dst <s2-s3.as 2>err &&
	if test_have_prereq XATTR; then
		setfattr -n user.local -v 1 dst/a/f5 &&
		test_expect_code 20 autosync receive dst <s2-s3.as 2>err
	fi
'

# An incremental stream does not carry unchanged content, so receive -F
# cannot undo a content change: it must refuse, clearly, and touch nothing
# (sync -F resends in full).
test_expect_success 'receive -F refuses to "roll back" changed content it does not have' '
	manifest dst >dst.modified2 &&
	test_expect_code 20 autosync receive -F dst <s2-s3.as 2>err &&
	test_grep -q "a/f1" err &&
	assert_manifest dst dst.modified2
'

test_expect_success 'receive -F rolls back a new file, a chmod and an xattr' '
	autosync receive mdst <s1.as &&
	autosync receive mdst <s1-s2.as &&
	echo new >mdst/local-file && mkdir mdst/local-dir &&
	chmod 0600 mdst/a/f2 &&
	if test_have_prereq XATTR; then
		setfattr -n user.local -v 1 mdst/a/f5
	fi &&
	test_expect_code 20 autosync receive mdst <s2-s3.as 2>err &&
	autosync receive -F mdst <s2-s3.as &&
	assert_same_tree src mdst &&
	autosync verify src@s3 mdst
'

test_expect_success 'a full stream into a non-empty plain directory is refused' '
	mkdir -p plain && echo precious >plain/keep && mkdir plain/sub &&
	manifest plain >plain.before &&
	test_expect_code 20 autosync receive plain <s3.as 2>err &&
	test_line_count = 1 err &&
	assert_manifest plain plain.before &&
	test_path_is_missing plain/.autosync
'

test_expect_success 'a full stream into a destination that holds a snapshot is refused' '
	manifest dst >dst.s3 &&
	test_expect_code 20 autosync receive dst <s1.as 2>err &&
	assert_manifest dst dst.s3
'

test_expect_success '-F lets a full stream replace the destination' '
	autosync receive -F dst <s1.as &&
	assert_same_tree src dst
	autosync verify src@s1 dst &&
	autosync receive -F plain <s3.as &&
	assert_same_tree src plain
'

test_expect_success 'receive -n does not take the lock long or change anything' '
	manifest dst >dst.s1 &&
	autosync receive -n dst <s1-s2.as &&
	assert_manifest dst dst.s1 &&
	test_expect_code 20 autosync receive -n dst <s2-s3.as 2>err
'

test_expect_success 'sync: a modified destination is refused unless -F' '
	autosync sync src sdst &&
	echo local >sdst/local &&
	echo "changed content" >sdst/a/f3 &&
	manifest sdst >sdst.modified &&
	echo change >>src/two &&
	test_expect_code 20 autosync sync src sdst 2>err &&
	assert_manifest sdst sdst.modified &&
	autosync sync -F src sdst &&
	assert_same_tree src sdst
'

test_expect_success 'sync: a destination holding a foreign snapshot is refused' '
	mkdir other && echo other >other/x &&
	autosync sync other odst &&
	manifest odst >odst.before &&
	test_expect_code 20 autosync sync src odst 2>err &&
	assert_manifest odst odst.before
'

# A receive that is stalled reading its stream holds the lock.
test_expect_success 'a concurrent receive of the same destination: busy' '
	mkfifo feed &&
	test_when_finished "exec 9>&-" &&
	test_bg "autosync receive cdst <feed" &&
	first=$test_bg_pid &&
	exec 9>feed &&
	head -c 65536 s3.as >&9 &&
	sleep 1 &&
	test -e cdst/.autosync/lock &&
	test_expect_code 20 autosync receive cdst <s3.as 2>err &&
	cat err &&
	test_grep -qi busy err &&
	test_expect_code 20 autosync sync src cdst 2>err2 &&
	test_grep -qi busy err2 &&
	tail -c +65537 s3.as >&9 &&
	exec 9>&- &&
	wait $first &&
	autosync verify src@s3 cdst
'

test_expect_success 'recover does not break into a running receive' '
	test_when_finished "exec 9>&-" &&
	test_bg "autosync receive cdst2 <feed" &&
	first=$test_bg_pid &&
	exec 9>feed &&
	head -c 65536 s3.as >&9 &&
	sleep 1 &&
	test_must_fail autosync recover cdst2 2>err &&
	test_grep -qi busy err &&
	tail -c +65537 s3.as >&9 &&
	exec 9>&- &&
	wait $first &&
	autosync verify src@s3 cdst2
'

test_done
