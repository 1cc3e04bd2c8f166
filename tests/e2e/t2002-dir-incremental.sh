#!/bin/bash
test_description='dir engine: incremental streams, one kind of change at a time

After each change: snapshot, send -i from the previous snapshot, receive,
then the destination must equal the source (assert_same_tree) and verify
must agree.  Stream sizes must follow what changed: a few blocks of a big
file travel as those blocks, a rename as a rename, an unchanged tree as a
few hundred bytes read without opening a single file.'
. "$(dirname "$0")/test-lib.sh"

BS=65536	# the default catalog block size (autosync snapshot --help)

# step: snapshot the next sN, send it from the previous one, receive it
# into dst, and check.  Sets size (stream bytes) and stats (send -v).
# When a step fails, dst is rebuilt by a full receive of the new snapshot
# so that one bug does not fail every later test.
n=0
step() {
	local prev=s$n
	n=$((n + 1))
	autosync snapshot "src@s$n" &&
	autosync send -v -i "@$prev" "src@s$n" >"s$n.as" 2>"s$n.stats" &&
	size=$(file_size "s$n.as") &&
	stats=$(grep "^sent" "s$n.stats") &&
	echo "step s$n: $size stream bytes; $stats" &&
	autosync receive dst <"s$n.as" &&
	assert_same_tree src dst &&
	autosync verify "src@s$n" dst &&
	return 0
	echo "step s$n failed; dst reset to a full receive of s$n"
	rm -rf dst &&
	autosync send "src@s$n" >repair.as &&
	autosync receive dst <repair.as
	return 1
}

# stat_field NAME: a number from the send -v line ("renames", "deletes",
# "entries").
stat_field() {
	echo "$stats" | sed -E "s/.* ([0-9]+) $1.*/\\1/"
}

size_below() {	# LIMIT
	test "$size" -lt "$1" ||
		{ echo "stream of $size bytes, expected < $1"; return 1; }
}

test_expect_success 'setup: every-kind plus a 32 MiB file, full receive' '
	mkfixture src every-kind &&
	test_bytes $((32 << 20)) huge >src/huge &&
	echo "a file that will become a directory" >src/shape &&
	autosync snapshot src@s0 &&
	autosync send src@s0 >s0.as &&
	autosync receive dst <s0.as &&
	assert_same_tree src dst
'

test_expect_success 'an unchanged tree: a stream of a few hundred bytes' '
	step &&
	size_below 1024 &&
	test "$(stat_field entries)" = 0
'

test_expect_success STRACE 'an unchanged tree: the scan stats each entry once and opens no file' '
	nentries=$(find src | wc -l) &&
	test_strace -f -qq -y -o scan.trace -e trace=openat,open,%stat \
		autosync snapshot src@unchanged-scan &&
	python3 - scan.trace "$TRASH_DIRECTORY/src" "$nentries" <<-\EOF
	import re, sys
	log, src, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
	opened, stats = [], 0
	for line in open(log, errors="replace"):
	    if re.search(r"\b(newfstatat|statx|lstat|fstatat64|stat)\(", line) and "AT_EMPTY_PATH" not in line:
	        stats += 1
	    m = re.search(r"\bopen(at)?\(.*\) = \d+<([^>]*)>$", line.rstrip())
	    if m and "O_DIRECTORY" not in line and m.group(2).startswith(src + "/"):
	        opened.append(m.group(2))
	print("entries %d, stat calls %d, files opened %d" % (n, stats, len(opened)))
	if opened:
	    print("opened:", *opened[:10], sep="\n  ")
	    sys.exit(1)
	if stats > n + 50:
	    sys.exit("more than one stat per entry")
	EOF
'

test_expect_success STRACE 'an unchanged tree: send reads no file' '
	test_strace -f -qq -y -o send.trace -e trace=openat,open,read,pread64 \
		autosync send -i @s1 src@unchanged-scan >u.as &&
	! grep -E "= [0-9]+<$TRASH_DIRECTORY/src/[^>]*>$" send.trace |
		grep -v O_DIRECTORY &&
	autosync destroy src@unchanged-scan
'

test_expect_success 'a few scattered 4 KiB writes in a 32 MiB file: only those blocks' '
	for blk in 3 1000 2500 4999 6123 7000 8000 8191; do
		test_bytes 4096 "w$blk" |
		dd of=src/huge bs=4096 seek=$blk conv=notrunc status=none || exit 1
	done &&
	step &&
	size_below $((8 * BS + 16384)) &&
	test $size -gt $((8 * 4096))
'

test_expect_success 'a 1% change of whole blocks: stream is about 1% plus headers' '
	changed=0 &&
	for blk in 7 77 177 277 377; do
		test_bytes $BS "b$blk" |
		dd of=src/huge bs=$BS seek=$blk conv=notrunc status=none &&
		changed=$((changed + BS)) || exit 1
	done &&
	step &&
	test $size -ge $changed &&
	size_below $((changed + changed / 20 + 8192))
'

test_expect_success 'a renamed file keeps its inode: travels as a rename' '
	mv src/huge src/huge.renamed &&
	step &&
	size_below 4096 &&
	test "$(stat_field renames)" -ge 1
'

test_expect_success 'a file moved to another directory' '
	mv src/big-8M+1 src/dir/big-moved &&
	step &&
	size_below 4096 &&
	test "$(stat_field renames)" -ge 1
'

test_expect_success 'truncate: shrink a big file, extend one with a hole' '
	truncate -s $((1 << 20)) src/huge.renamed &&
	truncate -s $((4 << 20)) src/hl-a &&
	step &&
	size_below 65536 &&
	sparse_map src/hl-a >m.src && sparse_map dst/hl-a >m.dst &&
	test_cmp m.src m.dst &&
	test "$(du -B1 src/hl-a | cut -f1)" = "$(du -B1 dst/hl-a | cut -f1)"
'

test_expect_success 'a renamed directory, with its subtree' '
	mv src/dir src/dir-renamed &&
	step &&
	size_below 8192 &&
	test "$(stat_field renames)" -ge 1 &&
	test_path_is_missing dst/dir &&
	test -f dst/dir-renamed/big-moved
'

test_expect_success 'a deleted file and a deleted directory tree' '
	rm src/no-newline &&
	rm -r src/dir-renamed/sub/subsub &&
	step &&
	size_below 4096 &&
	test "$(stat_field deletes)" -ge 3 &&
	test_path_is_missing dst/no-newline &&
	test_path_is_missing dst/dir-renamed/sub/subsub
'

test_expect_success 'a deleted tree 200 levels deep' '
	rm -r src/deep &&
	step &&
	test_path_is_missing dst/deep
'

test_expect_success 'type change: file -> directory' '
	rm src/shape && mkdir src/shape && echo child >src/shape/child &&
	step &&
	test -d dst/shape
'

test_expect_success 'type change: directory -> symlink' '
	rm -r src/shape && ln -s dir-renamed src/shape &&
	step &&
	test -L dst/shape
'

test_expect_success 'type change: symlink -> file, fifo -> directory' '
	rm src/shape && echo "a file again" >src/shape &&
	rm src/fifo && mkdir src/fifo &&
	step &&
	test -f dst/shape && test -d dst/fifo
'

test_expect_success 'hard links: one added, one removed' '
	ln src/regular src/regular-link &&
	rm src/dir-renamed/hl-b &&
	step &&
	test "$(stat -c %i dst/regular)" = "$(stat -c %i dst/regular-link)" &&
	test "$(stat -c %h dst/hl-a)" = 2
'

test_expect_success 'hard links: a group split by a copy' '
	cp -p src/pair-2 src/pair-2.tmp && mv src/pair-2.tmp src/pair-2 &&
	step &&
	test "$(stat -c %i dst/pair-1)" != "$(stat -c %i dst/pair-2)"
'

test_expect_success 'chmod only: no data travels' '
	chmod 0604 src/mode-0600 && chmod 4711 src/setuid && chmod 0700 src/dir-renamed &&
	step &&
	size_below 4096 &&
	grep -q " 0 B of data" s$n.stats
'

test_expect_success 'mtime only' '
	touch -d "2020-02-02 02:02:02.020202020" src/exact-page &&
	touch -h -d "2020-02-02 02:02:02.5" src/link-abs &&
	step &&
	size_below 4096 &&
	grep -q " 0 B of data" s$n.stats
'

test_expect_success XATTR 'xattr only: changed, added, removed' '
	setfattr -n user.text -v "another value" src/regular &&
	setfattr -n user.new -v 0xdeadbeef src/exact-page &&
	setfattr -x user.dir src/dir-renamed &&
	step &&
	size_below 4096 &&
	grep -q " 0 B of data" s$n.stats
'

test_expect_success SETFACL 'ACL only: access and default ACLs' '
	setfacl -m u:4242:r src/acl-file &&
	setfacl -d -m g:4242:rwx src/acl-dir &&
	step &&
	size_below 4096 &&
	getfacl -n dst/acl-file | grep -q "^user:4242:r--"
'

test_expect_success SETCAP 'capability only' '
	setcap cap_sys_time+ep src/cap-file &&
	step &&
	size_below 4096 &&
	getcap dst/cap-file | grep -q cap_sys_time
'

test_expect_success ROOT 'owner only' '
	chown 777:888 src/exact-page && chown -h 999:999 src/link-dangling &&
	step &&
	size_below 4096 &&
	test "$(stat -c %u:%g dst/exact-page)" = 777:888
'

test_expect_success 'a sparse file gains and loses data' '
	test_bytes 1048576 fill |
	dd of=src/sparse-all-hole bs=1M seek=2 conv=notrunc status=none &&
	fallocate -p -o 1048576 -l 1048576 src/sparse-start-middle-end 2>/dev/null ||
	truncate -s 1048576 src/sparse-start-middle-end &&
	step &&
	for f in sparse-all-hole sparse-start-middle-end; do
		sparse_map src/$f >m.src && sparse_map dst/$f >m.dst &&
		test_cmp m.src m.dst || exit 1
	done
'

test_expect_success 'every kind of change at once (the mutate recipe)' '
	mkfixture src2 every-kind &&
	autosync snapshot src2@a &&
	autosync send src2@a | autosync receive dst2 &&
	assert_same_tree src2 dst2 &&
	mkfixture src2 mutate &&
	autosync snapshot src2@b &&
	autosync send -i @a src2@b >m.as &&
	autosync receive dst2 <m.as &&
	assert_same_tree src2 dst2 &&
	autosync verify src2@b dst2
'

test_expect_success 'the same through sync: incremental and identical' '
	echo "sync change" >src/sync-file &&
	autosync sync -v src dst-sync >out1 &&
	test_grep -q full out1 &&
	echo "another change" >>src/sync-file &&
	mv src/exact-page src/exact-page.moved &&
	autosync sync -v src dst-sync >out2 &&
	test_grep -q incremental out2 &&
	test_grep -q " 1 renames" out2 &&
	assert_same_tree src dst-sync &&
	autosync sync -v src dst-sync >out3 &&
	test_grep -q "0 files read" out3 &&
	assert_same_tree src dst-sync
'

test_expect_success 'verify reports a changed file in DST (exit 1)' '
	autosync verify "src@s$n" dst &&
	t=$(stat -c %y dst/regular) &&
	printf "HELLO" >dst/regular && touch -d "$t" dst/regular &&
	test_expect_code 1 autosync verify "src@s$n" dst >out 2>err &&
	test_grep -q "content '\''regular'\''" out
'

test_expect_success 'verify reports mode, extra and missing entries' '
	chmod 0777 dst/setgid &&
	echo extra >dst/extra-file &&
	rm dst/exact-page &&
	test_expect_code 1 autosync verify "src@s$n" dst >out 2>err &&
	test_grep -q "mode '\''setgid'\''" out &&
	test_grep -q "extra '\''extra-file'\''" out &&
	test_grep -q "missing '\''exact-page'\''" out &&
	test_grep -q "differences" err
'

test_expect_success XATTR 'verify reports an xattr change' '
	setfattr -n user.sneaky -v 1 dst/regular-link &&
	test_expect_code 1 autosync verify "src@s$n" dst >out 2>err &&
	test_grep -q "xattr '\''regular-link'\''" out
'

test_done
