#!/bin/bash
test_description='volumes: snapshot, snapshots, send, receive, verify and
destroy of vol: datasets; point-in-time reads

An image file is snapshotted, sent in full and incrementally through
"send | receive", verified block by block (a damaged block and a size
change are found), and a snapshot that no longer matches the volume is
refused by send.  On a loop-mounted btrfs the image is cloned (FICLONE)
before it is read, so a writer running during the sync does not make the
snapshot a mixture; on ext4 the same writer is detected and the run says
the snapshot is not point-in-time.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-vol.sh"

test_expect_success 'snapshot vol: and list it' '
	truncate -s 32M a.img &&
	scribble a.img 20 &&
	autosync snapshot -v vol:a.img@s1 2>out &&
	cat out &&
	grep "512 blocks of 65536 bytes" out &&
	autosync snapshots vol:a.img >list &&
	grep "^s1 " list &&
	autosync snapshots -H vol:a.img | cut -f1 >names &&
	test "$(cat names)" = s1 &&
	test_must_fail autosync snapshot vol:a.img@s1 2>err &&
	grep "already exists" err &&
	test_must_fail autosync snapshot vol:missing.img@s1 2>err &&
	grep "does not exist" err
'

test_expect_success 'send | receive, full then incremental' '
	autosync send -v vol:a.img@s1 >s1.stream 2>out &&
	cat out && grep "full volume stream" out &&
	autosync receive vol:b.img <s1.stream &&
	test "$(sha a.img)" = "$(sha b.img)" &&
	scribble a.img 3 &&
	autosync snapshot vol:a.img@s2 &&
	autosync send -v -i @s1 vol:a.img@s2 >s2.stream 2>out &&
	cat out && grep "incremental" out &&
	grep "of 512 blocks" out &&
	test "$(stat -c %s s2.stream)" -le $(( 3 * BS + 4096 )) &&
	autosync receive vol:b.img <s2.stream &&
	test "$(sha a.img)" = "$(sha b.img)" &&
	test_must_fail autosync receive vol:b.img <s2.stream 2>err &&
	grep "does not match" err
'

test_expect_success 'verify vol: finds damaged blocks and a size change' '
	autosync verify -v vol:a.img vol:b.img >out &&
	grep "matches .vol:a.img@s2." out &&
	autosync verify vol:a.img@s2 vol:b.img &&
	cp b.img c.img &&
	dd if=/dev/urandom of=c.img bs=4096 count=1 seek=$(( 16 * 7 + 3 )) \
		conv=notrunc status=none &&
	test_expect_code 1 autosync verify vol:a.img@s2 vol:c.img >out &&
	cat out &&
	test "$(cat out)" = "content block 7 (65536 bytes)" &&
	truncate -s 31M c.img &&
	test_expect_code 1 autosync verify vol:a.img@s2 vol:c.img >out &&
	grep "^size" out &&
	test_must_fail autosync verify vol:a.img b.img 2>err &&
	grep "name both vol:PATH" err
'

test_expect_success 'send refuses a snapshot the volume no longer matches' '
	scribble a.img 2 &&
	test_must_fail autosync send vol:a.img@s2 >stale.stream 2>err &&
	cat err &&
	grep "changed since the snapshot was taken" err
'

test_expect_success 'destroy vol:PATH@snap' '
	autosync destroy vol:a.img@s1 &&
	autosync snapshots -H vol:a.img | cut -f1 >names &&
	test "$(cat names)" = s2 &&
	test_must_fail autosync destroy vol:a.img@s1 2>err &&
	grep "no snapshot" err
'

# writer IMG: rewrite a block of IMG over and over until killed
start_writer() {
	test_bg "sh -c \"while :; do dd if=/dev/urandom of='$1' bs=$BS count=1 \
		seek=\\\$(( \\\$(od -An -N2 -tu2 /dev/urandom) % 2048 )) \
		conv=notrunc status=none; done\""
	writer=$test_bg_pid
}

test_expect_success 'a volume written while read: the run says so' '
	truncate -s 128M w.img &&
	dd if=/dev/urandom of=w.img bs=1M count=96 conv=notrunc status=none &&
	start_writer w.img &&
	test_when_finished "test_kill $writer" &&
	sleep 0.2 &&
	autosync sync -v vol:w.img vol:w2.img >out 2>err &&
	cat out err &&
	grep "was written while it was read" err &&
	grep "not point-in-time" err &&
	! grep "reflink copy" out &&
	test_kill $writer && wait $writer 2>/dev/null; :
'

if test "$(id -u)" = 0 && command -v mkfs.btrfs >/dev/null &&
   test -e /dev/loop-control && truncate -s 1M probe.img &&
   probe=$(losetup -f --show probe.img 2>/dev/null); then
	losetup -d "$probe"
	rm -f probe.img
	test_set_prereq BTRFSLOOP
else
	say "# skipping the btrfs tests: not root, no mkfs.btrfs or no losetup"
fi

test_expect_success BTRFSLOOP 'on btrfs the image is cloned: point-in-time' '
	truncate -s 512M fs.img &&
	dev=$(losetup -f --show fs.img) &&
	test_when_finished "losetup -d $dev" &&
	mkfs.btrfs -q "$dev" &&
	mkdir mnt &&
	test_mount "$dev" mnt &&
	test_when_finished "test_umount mnt" &&
	truncate -s 128M mnt/v.img &&
	dd if=/dev/urandom of=mnt/v.img bs=1M count=96 conv=notrunc status=none &&
	autosync snapshot -v vol:mnt/v.img@quiet 2>out &&
	grep "reflink copy" out &&
	start_writer mnt/v.img &&
	sleep 0.2 &&
	autosync sync -v vol:mnt/v.img vol:v2.img >out 2>err &&
	test_kill $writer && { wait $writer 2>/dev/null; :; } &&
	cat out err &&
	grep "read from a reflink copy (point-in-time)" out &&
	! grep "written while it was read" err &&
	autosync verify vol:mnt/v.img vol:v2.img &&
	test "$(ls -A mnt)" = v.img
'

test_done
