#!/bin/bash
test_description='out of space: a destination on an 8 MiB tmpfs

A stream bigger than the file system must fail with NOSPACE (exit 41),
leave the destination exactly as it was (O1), leave no staging behind
after recovery (the space comes back), keep the file system mounted and
usable, and succeed once there is room.'
. "$(dirname "$0")/test-lib.sh"

if ! test_have_prereq TMPFS; then
	test_skip_all 'needs root to mount a size-limited tmpfs'
fi

# used_kb DIR: KiB used on the file system holding DIR
used_kb() { df -k --output=used "$1" | tail -n 1 | tr -d ' '; }

is_empty_dest() {
	! test -e "$1" || test -z "$(ls -A "$1" | grep -vx .autosync)"
}

test_expect_success 'setup: an 8 MiB tmpfs; sources of 16 MiB and 1 MiB' '
	mkdir small &&
	test_mount -t tmpfs -o size=8m tmpfs small &&
	mkfixture big small &&
	for i in 1 2 3 4; do
		test_bytes $((4 << 20)) "big$i" >big/data$i || exit 1
	done &&
	autosync snapshot big@s1 &&
	autosync send big@s1 >big.as &&
	test $(file_size big.as) -gt $((16 << 20)) &&
	mkfixture little small &&
	test_bytes $((1 << 20)) little >little/one-mib &&
	autosync snapshot little@s1 &&
	autosync send little@s1 >little.as &&
	manifest little >little.m1 &&
	empty_used=$(used_kb small) &&
	echo "empty tmpfs: $empty_used KiB used"
'

test_expect_success 'a full stream larger than the file system: NOSPACE (41)' '
	test_expect_code 41 autosync receive small/dst <big.as 2>err &&
	cat err &&
	test_line_count = 1 err &&
	is_empty_dest small/dst
'

test_expect_success '... and after recover, the space is back' '
	if test -e small/dst; then autosync recover small/dst; fi &&
	is_empty_dest small/dst &&
	used=$(used_kb small) &&
	echo "used after recover: $used KiB" &&
	test $used -le $((empty_used + 256))
'

test_expect_success '... and the file system is still mounted and usable' '
	mountpoint -q small &&
	test_bytes $((6 << 20)) usable >small/usable &&
	test $(file_size small/usable) = $((6 << 20)) &&
	rm small/usable
'

test_expect_success 'an incremental that does not fit: NOSPACE, the old tree stays' '
	rm -rf small/dst &&
	autosync receive small/dst <little.as &&
	assert_manifest small/dst little.m1 &&
	for i in 1 2; do
		test_bytes $((4 << 20)) "more$i" >little/more$i || exit 1
	done &&
	autosync snapshot little@s2 &&
	autosync send -i @s1 little@s2 >little-s2.as &&
	manifest little >little.m2 &&
	before=$(used_kb small) &&
	test_expect_code 41 autosync receive small/dst <little-s2.as 2>err &&
	cat err &&
	assert_manifest small/dst little.m1 &&
	autosync recover small/dst &&
	assert_manifest small/dst little.m1 &&
	after=$(used_kb small) &&
	echo "used before $before KiB, after $after KiB" &&
	test $after -le $((before + 256))
'

test_expect_success 'rewriting a big file in place, beyond the free space' '
	rm -rf small/dst &&
	mkdir inplace &&
	test_bytes $((5 << 20)) inplace >inplace/big &&
	autosync snapshot inplace@s1 &&
	autosync send inplace@s1 | autosync receive small/dst &&
	manifest inplace >inplace.m1 &&
	test_bytes $((5 << 20)) rewritten |
		dd of=inplace/big conv=notrunc status=none &&
	autosync snapshot inplace@s2 &&
	autosync send -i @s1 inplace@s2 >inplace.as &&
	test_expect_code 41 autosync receive small/dst <inplace.as 2>err &&
	cat err &&
	assert_manifest small/dst inplace.m1 &&
	autosync recover small/dst &&
	assert_manifest small/dst inplace.m1
'

test_expect_success 'sync into a full destination: NOSPACE, nothing changed' '
	rm -rf small/dst &&
	test_expect_code 41 autosync sync big small/sdst 2>err &&
	cat err &&
	autosync recover small/sdst 2>/dev/null || : &&
	is_empty_dest small/sdst &&
	rm -rf small/sdst
'

test_expect_success 'with room again, the same streams succeed' '
	mount -o remount,size=64m small &&
	autosync receive small/dst2 <little.as &&
	autosync receive small/dst2 <little-s2.as &&
	assert_manifest small/dst2 little.m2 &&
	autosync receive small/dst3 <big.as &&
	assert_same_tree big small/dst3
'

test_expect_success 'the mount is ours to undo' '
	test_umount small &&
	! mountpoint -q small
'

test_done
