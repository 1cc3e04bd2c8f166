#!/bin/bash
test_description='--rate-limit and --progress between two local paths

A local sync is limited as rsync --bwlimit limits one: the stream from
the sending side to the receiving one (src/transport/pace.c).  Checked
for a directory and a volume: a limited copy takes at least the time its
changed bytes need at that rate, the copy is exact, the next incremental
is limited to what changed; --progress=json reports the bytes with a
total and ends with done; without either option nothing is printed.
ZFS and btrfs: t3001, t3101.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-vol.sh"

MIB=1048576

test_expect_success 'setup: a 6 MiB tree' '
	mkdir src &&
	head -c $((6 * MIB)) /dev/urandom >src/big &&
	echo small >src/small
'

test_expect_success 'dir: a limited full copy takes the time its bytes need' '
	# 6 MiB at 2 MiB/s
	test_took 2500 "" autosync sync --rate-limit 2M src dst 2>err &&
	test_must_be_empty err &&
	cmp src/big dst/big && cmp src/small dst/small
'

test_expect_success 'dir: the incremental is limited to what changed' '
	head -c $((2 * MIB)) /dev/urandom >src/more &&
	# 2 MiB at 1 MiB/s (all 8 would take 8 s)
	test_took 1500 5000 autosync sync -v --rate-limit 1M src dst >out &&
	cat out && grep "incremental from" out &&
	cmp src/more dst/more
'

test_expect_success 'dir: --progress=json, with the total of the changed data' '
	head -c $((3 * MIB)) /dev/urandom >src/third &&
	autosync sync --progress=json --rate-limit 2M src dst 2>prog &&
	cat prog &&
	progress_done prog $((3 * MIB)) &&
	test "$(progress_num "$(progress_last prog)" total)" -ge $((3 * MIB)) &&
	# a line a second while it ran (1.5 s at 2 MiB/s)
	test "$(grep -c "\"done\":false" prog)" -ge 1 &&
	cmp src/third dst/third
'

test_expect_success 'dir: neither option: nothing on stderr, full speed' '
	echo again >src/small &&
	autosync sync src dst 2>err &&
	test_must_be_empty err &&
	cmp src/small dst/small
'

test_expect_success 'vol: a limited copy and its progress' '
	truncate -s 8M v.img &&
	dd if=/dev/urandom of=v.img bs=1M count=4 seek=2 conv=notrunc \
		status=none &&
	# 4 MiB of data at 2 MiB/s
	test_took 1500 "" autosync sync --progress=json --rate-limit 2M \
		vol:v.img vol:w.img 2>prog &&
	cat prog &&
	progress_done prog $((4 * MIB)) &&
	# the image'"'"'s allocated bytes (its data), not its size
	n=$(progress_num "$(progress_last prog)" total) &&
	test "$n" -ge $((4 * MIB)) && test "$n" -lt $((8 * MIB)) &&
	test "$(sha v.img)" = "$(sha w.img)"
'

test_expect_success 'vol: the incremental is limited to the changed blocks' '
	dd if=/dev/urandom of=v.img bs=1M count=1 seek=1 conv=notrunc \
		status=none &&
	# 1 MiB at 512 KiB/s (all 4 MiB of data would take 8 s)
	test_took 1500 6000 autosync sync -v --rate-limit 512K vol:v.img \
		vol:w.img >out &&
	cat out &&
	test "$(sha v.img)" = "$(sha w.img)"
'

test_done
