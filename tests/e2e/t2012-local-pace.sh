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
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

test_expect_success 'setup: a 6 MiB tree' '
	mkdir src &&
	head -c $((6 * MIB)) /dev/urandom >src/big &&
	echo small >src/small
'

test_expect_success 'dir: a limited full copy takes the time its bytes need' '
	t0=$(now_ms) &&
	autosync sync --rate-limit 2M src dst 2>err &&
	t1=$(now_ms) &&
	echo "# 6 MiB at 2 MiB/s: $((t1 - t0)) ms" &&
	test $((t1 - t0)) -ge 2500 &&
	test_must_be_empty err &&
	cmp src/big dst/big && cmp src/small dst/small
'

test_expect_success 'dir: the incremental is limited to what changed' '
	head -c $((2 * MIB)) /dev/urandom >src/more &&
	t0=$(now_ms) &&
	autosync sync -v --rate-limit 1M src dst >out &&
	t1=$(now_ms) &&
	cat out && grep "incremental from" out &&
	echo "# 2 MiB at 1 MiB/s: $((t1 - t0)) ms" &&
	test $((t1 - t0)) -ge 1500 && test $((t1 - t0)) -lt 5000 &&
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
	t0=$(now_ms) &&
	autosync sync --progress=json --rate-limit 2M vol:v.img vol:w.img \
		2>prog &&
	t1=$(now_ms) &&
	cat prog &&
	echo "# 4 MiB of data at 2 MiB/s: $((t1 - t0)) ms" &&
	test $((t1 - t0)) -ge 1500 &&
	progress_done prog $((4 * MIB)) &&
	# the image'"'"'s allocated bytes (its data), not its size
	n=$(progress_num "$(progress_last prog)" total) &&
	test "$n" -ge $((4 * MIB)) && test "$n" -lt $((8 * MIB)) &&
	test "$(sha v.img)" = "$(sha w.img)"
'

test_expect_success 'vol: the incremental is limited to the changed blocks' '
	dd if=/dev/urandom of=v.img bs=1M count=1 seek=1 conv=notrunc \
		status=none &&
	t0=$(now_ms) &&
	autosync sync -v --rate-limit 512K vol:v.img vol:w.img >out &&
	t1=$(now_ms) &&
	cat out &&
	echo "# 1 MiB at 512 KiB/s: $((t1 - t0)) ms" &&
	test $((t1 - t0)) -ge 1500 && test $((t1 - t0)) -lt 6000 &&
	test "$(sha v.img)" = "$(sha w.img)"
'

test_done
