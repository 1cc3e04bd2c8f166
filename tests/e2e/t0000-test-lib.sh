#!/bin/bash
test_description='the test framework itself: fixtures and oracles

The oracles must catch every kind of difference that autosync promises to
carry, or the other tests prove nothing.  Uses rsync and cp only.'
. "$(dirname "$0")/test-lib.sh"

test_expect_success 'success is reported like this' '
	:
'

test_expect_success 'test_expect_code and test_must_fail' '
	test_expect_code 3 sh -c "exit 3" &&
	! test_expect_code 3 sh -c "exit 4" 2>/dev/null &&
	test_must_fail false &&
	! test_must_fail sh -c "kill -9 \$\$" 2>/dev/null &&
	! test_must_fail true 2>/dev/null
'

test_expect_success 'prerequisites: negation and unknown names' '
	test_have_prereq PYTHON3 &&
	! test_have_prereq !PYTHON3 &&
	! test_have_prereq NO_SUCH_PREREQ 2>/dev/null
'

test_expect_success 'test_bg and test_kill touch only our children' '
	test_bg "sleep 300" &&
	pid=$test_bg_pid &&
	kill -0 $pid &&
	test_kill $pid &&
	! wait $pid &&
	test_kill 1 &&
	kill -0 1
'

test_expect_success 'the state directory and HOME are private' '
	case "$AUTOSYNC_STATE_DIR" in "$TRASH_DIRECTORY"/*) ;; *) false ;; esac &&
	case "$HOME" in "$TRASH_DIRECTORY"/*) ;; *) false ;; esac &&
	test "$(command -v autosync)" = "$TEST_META/bin/autosync"
'

test_expect_success 'every-kind fixture has every kind' '
	mkfixture src every-kind &&
	manifest src >m &&
	for t in d f l p s; do
		awk -v t=$t "\$2 == t" m | grep -q . || { echo "no type $t"; exit 1; }
	done &&
	if test_have_prereq ROOT; then
		grep -q " c 644 0 0 1,3 " m && grep -q " b 644 0 0 7,0 " m &&
		grep -q "^owned-12345 f 644 12345 12345 " m
	fi &&
	grep -q "^setuid f 4755 " m && grep -q "^sticky-dir d 1777 " m &&
	grep -q "^new\\\\x0aline f " m &&
	grep -q "^bad-utf8-\\\\xff\\\\xfe-name f " m &&
	test $(file_size big-8M+1 2>/dev/null || file_size src/big-8M+1) = 8388609 &&
	sparse_map src/sparse-start-middle-end >map &&
	printf "%s\n" 1048576-2097152 4194304-5242880 >expect &&
	test_cmp expect map &&
	sparse_map src/sparse-all-hole >map && test_must_be_empty map &&
	du -k src/sparse-all-hole | grep -q "^0	"
'

test_expect_success 'nanosecond times are set on directories and symlinks' '
	t1=$(stat -c %y src/dir) && t2=$(stat -c %y src/link-rel) &&
	case "$t1" in *.000000000*) false ;; esac &&
	case "$t2" in *.000000000*) false ;; esac &&
	test "$t1" != "$t2"
'

test_expect_success RSYNC 'an rsync -aHAX copy is the same tree' '
	rsync -aHAX --numeric-ids src/ copy/ &&
	assert_same_tree src copy
'

test_expect_success RSYNC '.autosync at the root of the destination is ignored' '
	mkdir copy/.autosync && echo junk >copy/.autosync/x &&
	touch -d @1000000000.123456789 copy &&
	touch -d @1000000000.123456789 src &&
	assert_same_tree src copy &&
	rm -r copy/.autosync && touch -d @1000000000.123456789 copy
'

test_expect_success RSYNC 'a smaller copy for the oracle checks' '
	rsync -aHAX --numeric-ids --exclude=/big-8M+1 --exclude="/sparse-*" \
		--exclude=/deep src/ lite/ &&
	rsync -aHAX --numeric-ids lite/ lite2/ &&
	assert_same_tree lite lite2
'

# Each of these breaks a copy in one way; the oracle must notice.
check_caught() {	# title prereq break-command
	test_expect_success "$2" "oracle catches: $1" "
		rm -rf broken &&
		rsync -aHAX --numeric-ids lite/ broken/ &&
		(cd broken && $3) &&
		! assert_same_tree lite broken
	"
}
check_caught 'chmod' RSYNC 'chmod 0644 setuid'
check_caught 'ns mtime of a directory' RSYNC 'touch -d @1000000000.5 dir'
check_caught 'ns mtime of a symlink' RSYNC 'touch -h -d @1000000000.5 link-rel'
check_caught 'content, same size and mtime' RSYNC \
	't=$(stat -c %y regular) && echo "hello, WORLD" >regular && touch -d "$t" regular'
check_caught 'an extra file' RSYNC 'echo x >extra'
check_caught 'a missing empty directory' RSYNC 'rmdir empty-dir && touch -d @1000000000 .'
check_caught 'a symlink target' RSYNC 'ln -sfn other link-dangling'
check_caught 'a broken hard link' RSYNC \
	't=$(stat -c %y dir/hl-b) && cp --preserve=all hl-a x && mv x dir/hl-b'
check_caught 'a fifo that became a file' RSYNC \
	't=$(stat -c %y fifo) && rm fifo && : >fifo && touch -d "$t" fifo'
check_caught 'an xattr value' RSYNC,XATTR 'setfattr -n user.text -v other regular'
check_caught 'an xattr on a directory' RSYNC,XATTR 'setfattr -x user.dir dir'
check_caught 'an ACL entry' RSYNC,SETFACL 'setfacl -m u:12345:r acl-file'
check_caught 'a default ACL' RSYNC,SETFACL 'setfacl -k acl-dir'
check_caught 'a capability' RSYNC,SETCAP 'setcap -r cap-file'
check_caught 'an owner' RSYNC,ROOT 'chown -h 0:0 owned-link'
check_caught 'a device number' RSYNC,ROOT \
	't=$(stat -c %y char-null) && rm char-null && mknod char-null c 1 5 && touch -d "$t" char-null'

test_expect_success 'mutate changes every kind at once' '
	rsync -aHAX --numeric-ids src/ before/ &&
	mkfixture src mutate &&
	! assert_same_tree before src >/dev/null 2>&1 &&
	test -d src/pair-2 && test -L src/dir/sub-renamed/subsub &&
	test -f src/link-rel && ! test -e src/empty
'

test_expect_success 'many and mutate-many' '
	mkfixture many many:300 &&
	test $(find many -type f | wc -l) -ge 300 &&
	manifest many >m1 &&
	mkfixture many mutate-many &&
	manifest many >m2 &&
	! cmp -s m1 m2
'

test_expect_success 'small fixture is small' '
	mkfixture small small &&
	n=$(find small | wc -l) &&
	test $n -le 50
'

test_expect_success TMPFS 'test_mount and test_umount' '
	mkdir mnt &&
	test_mount -t tmpfs -o size=1m tmpfs mnt &&
	mountpoint -q mnt &&
	test_umount mnt &&
	! mountpoint -q mnt
'

test_expect_failure 'a known breakage is reported, not counted' '
	false
'

test_done
