#!/bin/bash
test_description='volumes: sync vol: image files and a loop device

Sparse 64 MiB images with random blocks at random offsets are synced in
full and incrementally (sha256 equal, only changed blocks travel, the
destination stays sparse), resized, synced onto a loop device (too small
a device and a mounted one are refused before anything is written), and
a sync is killed with -9 at random points: after recovery the
destination is exactly the old or the new snapshot.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-vol.sh"

seed=${AUTOSYNC_KILL_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$seed
say "# AUTOSYNC_KILL_SEED=$seed"

# head_sha DEV BYTES: sha256 of the first BYTES of a device
head_sha() { head -c "$2" "$1" | sha256sum | cut -d' ' -f1; }

test_expect_success 'full sync of a sparse image' '
	truncate -s 64M a.img &&
	scribble a.img 40 &&
	autosync sync -v vol:a.img vol:b.img >out &&
	cat out &&
	grep "full to" out &&
	test "$(sha a.img)" = "$(sha b.img)" &&
	test -f b.img.autosync &&
	grep "^state complete" b.img.autosync &&
	test "$(du -k b.img | cut -f1)" -le $(( 40 * 64 + 256 ))
'

test_expect_success 'incremental sync carries only the changed blocks' '
	scribble a.img 10 &&
	autosync sync -v vol:a.img vol:b.img >out &&
	cat out &&
	grep "incremental from" out &&
	test "$(sha a.img)" = "$(sha b.img)" &&
	n=$(data_bytes out) &&
	test "$n" -gt 0 && test "$n" -le $(( 10 * BS )) &&
	test "$(du -k b.img | cut -f1)" -le $(( 50 * 64 + 256 ))
'

test_expect_success 'zeroed blocks become holes; nothing changed sends nothing' '
	dd if=/dev/zero of=a.img bs=1M count=64 conv=notrunc status=none &&
	scribble a.img 3 &&
	autosync sync -v vol:a.img vol:b.img >out &&
	test "$(sha a.img)" = "$(sha b.img)" &&
	test "$(du -k b.img | cut -f1)" -le $(( 3 * 64 + 256 )) &&
	autosync sync -v vol:a.img vol:b.img >out &&
	test "$(data_bytes out)" = 0
'

test_expect_success 'a second destination' '
	autosync sync vol:a.img vol:c.img &&
	test "$(sha a.img)" = "$(sha c.img)"
'

test_expect_success 'growth and shrink are replicated' '
	truncate -s 80M a.img &&
	dd if=/dev/urandom of=a.img bs=$BS count=1 seek=$(( 70 * 16 )) \
		conv=notrunc status=none &&
	autosync sync -v vol:a.img vol:b.img >out &&
	test "$(stat -c %s b.img)" = $(( 80 * MIB )) &&
	test "$(sha a.img)" = "$(sha b.img)" &&
	n=$(data_bytes out) && test "$n" -le $(( 2 * BS )) &&
	truncate -s $(( 48 * MIB + 12345 )) a.img &&
	autosync sync vol:a.img vol:b.img &&
	test "$(stat -c %s b.img)" = $(( 48 * MIB + 12345 )) &&
	test "$(sha a.img)" = "$(sha b.img)"
'

test_expect_success 'a regular file is a volume only with vol:' '
	test_must_fail autosync sync a.img vol:d.img 2>err &&
	cat err &&
	test_must_fail autosync sync vol:a.img d 2>err &&
	grep "volume" err &&
	test_path_is_missing d.img
'

test_expect_success 'an existing image autosync did not fill needs -F' '
	truncate -s 1M e.img &&
	test_must_fail autosync sync vol:a.img vol:e.img 2>err &&
	grep "use -F" err &&
	test "$(stat -c %s e.img)" = $MIB &&
	autosync sync -F vol:a.img vol:e.img &&
	test "$(sha a.img)" = "$(sha e.img)"
'

# mkloop IMG: attach IMG to a free loop device (the caller detaches it
# by name with test_when_finished)
mkloop() { losetup -f --show "$1"; }

if test "$(id -u)" = 0 && command -v losetup >/dev/null &&
   test -e /dev/loop-control && truncate -s 1M probe.img &&
   probe=$(losetup -f --show probe.img 2>/dev/null); then
	losetup -d "$probe"
	test_set_prereq LOOP
	rm -f probe.img
else
	say "# skipping loop device tests: losetup unavailable or not root"
fi

test_expect_success LOOP 'sync onto a loop device, full and incremental' '
	truncate -s 64M l1.img &&
	dev=$(mkloop l1.img) &&
	test_when_finished "losetup -d $dev" &&
	test_must_fail autosync sync vol:a.img vol:$dev 2>err &&
	grep "use -F" err &&
	autosync sync -F vol:a.img vol:$dev &&
	size=$(stat -c %s a.img) &&
	test "$(head_sha $dev $size)" = "$(sha a.img)" &&
	scribble a.img 5 &&
	dd if=/dev/zero of=a.img bs=$BS count=4 seek=2 conv=notrunc status=none &&
	autosync sync -v vol:a.img vol:$dev >out &&
	grep incremental out &&
	test "$(head_sha $dev $size)" = "$(sha a.img)" &&
	test -f "$AUTOSYNC_STATE_DIR/volumes/$(echo "$dev" | sed "s,/,%2F,g")"
'

test_expect_success LOOP 'a device smaller than the volume is refused' '
	truncate -s 16M small.img &&
	dev=$(mkloop small.img) &&
	test_when_finished "losetup -d $dev" &&
	test_must_fail autosync sync -F vol:a.img vol:$dev 2>err &&
	cat err &&
	grep "nothing was written" err &&
	test "$(sha small.img)" = "$(head -c 16M /dev/zero | sha256sum | cut -d" " -f1)"
'

test_expect_success LOOP 'a mounted device is refused' '
	command -v mkfs.ext4 >/dev/null || { say "# no mkfs.ext4"; return 0; }
	truncate -s 64M m.img &&
	dev=$(mkloop m.img) &&
	test_when_finished "losetup -d $dev" &&
	mkfs.ext4 -q "$dev" &&
	mkdir mnt &&
	test_mount "$dev" mnt &&
	test_must_fail autosync sync -F vol:a.img vol:$dev 2>err &&
	cat err &&
	grep "mounted" err &&
	test_umount mnt
'

test_expect_success 'kill -9 of a sync at random points: old or new' '
	truncate -s 64M k.img &&
	scribble k.img 50 &&
	autosync sync vol:k.img vol:kb.img &&
	for t in 1 2 3 4 5; do
		old=$(sha kb.img) &&
		scribble k.img 150 &&
		new=$(sha k.img) &&
		test_bg "setsid autosync sync vol:k.img vol:kb.img >/dev/null 2>&1" &&
		pid=$test_bg_pid &&
		sleep 0.$(( RANDOM % 4 ))$(( RANDOM % 10 )) &&
		{ kill -KILL -- -$pid 2>/dev/null; wait $pid; : ; } &&
		test_wait_session $pid &&
		autosync receive --recover-only vol:kb.img &&
		got=$(sha kb.img) &&
		if test "$got" = "$old"; then say "# trial $t: old";
		elif test "$got" = "$new"; then say "# trial $t: new";
		else echo "trial $t: neither old nor new" >&2; false; fi &&
		test_path_is_missing kb.img.autosync-journal &&
		autosync sync vol:k.img vol:kb.img &&
		test "$(sha kb.img)" = "$new" || return 1
	done
'

test_done
