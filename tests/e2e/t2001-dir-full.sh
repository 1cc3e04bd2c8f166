#!/bin/bash
test_description='dir engine: fidelity of a full replication

Every kind of entry and metadata of the every-kind fixture must arrive
intact, judged by independent tools (rsync -naHAXc, getfacl, getcap, stat,
du, SEEK_DATA) and by the manifest; sync, send > file + receive < file and
send | receive must all give the same tree.'
. "$(dirname "$0")/test-lib.sh"

# Compare one stat(1) format over the same relative paths in two trees.
stat_same() {	# FORMAT SRC DST PATH...
	local fmt=$1 a=$2 b=$3 p
	shift 3
	for p in "$@"; do
		test "$(stat -c "$fmt" "$a/$p")" = "$(stat -c "$fmt" "$b/$p")" || {
			echo "stat -c '$fmt' differs for '$p':" \
				"$(stat -c "$fmt" "$a/$p") vs $(stat -c "$fmt" "$b/$p")"
			return 1
		}
	done
}

test_expect_success 'setup: the every-kind fixture' '
	mkfixture src every-kind &&
	manifest src >src.manifest
'

test_expect_success 'sync makes an identical tree' '
	autosync sync src dst &&
	assert_same_tree src dst
'

test_expect_success 'the source is not modified, and gets no .autosync' '
	assert_manifest src src.manifest &&
	test_path_is_missing src/.autosync
'

test_expect_success 'the destination has only .autosync added' '
	test_path_is_dir dst/.autosync &&
	(cd src && ls -A | sort) >src.ls &&
	(cd dst && ls -A | grep -vx .autosync | sort) >dst.ls &&
	test_cmp src.ls dst.ls
'

test_expect_success 'verify agrees (exit 0)' '
	autosync verify src dst &&
	autosync verify -v src dst >out &&
	test_grep -q matches out
'

test_expect_success 'directories keep their nanosecond mtimes' '
	(cd src && find . -type d -print0 | sort -z) >dirs &&
	test $(tr -cd "\0" <dirs | wc -c) -gt 200 &&
	(cd src && xargs -0 stat -c "%n %.9Y" <../dirs) >src.times &&
	(cd dst && xargs -0 stat -c "%n %.9Y" <../dirs) >dst.times &&
	test_cmp src.times dst.times &&
	test "$(stat -c %.9Y src)" = "$(stat -c %.9Y dst)" &&
	stat -c %y dst/dir | grep -v "\.000000000"
'

test_expect_success 'symlinks keep their targets and nanosecond mtimes' '
	for l in link-rel dir/link-up link-abs link-dangling link-to-dir \
		link-long-target; do
		test -L dst/$l &&
		test "$(readlink src/$l)" = "$(readlink dst/$l)" &&
		stat_same "%.9Y" src dst $l || { echo "$l"; exit 1; }
	done &&
	test "$(readlink dst/link-abs)" = /etc/hostname
'

test_expect_success 'sparse files: holes stay holes, du agrees' '
	for f in sparse-start-middle-end sparse-all-hole sparse-data-then-hole \
		sparse-hole-then-data; do
		sparse_map src/$f >map.src &&
		sparse_map dst/$f >map.dst &&
		test_cmp map.src map.dst &&
		test "$(du -B1 src/$f | cut -f1)" = "$(du -B1 dst/$f | cut -f1)" &&
		cmp src/$f dst/$f || { echo "sparse file $f"; exit 1; }
	done &&
	du -k dst/sparse-all-hole | grep -q "^0	"
'

test_expect_success 'large and odd-sized files are byte-identical' '
	cmp src/big-8M+1 dst/big-8M+1 &&
	test $(file_size dst/big-8M+1) = 8388609 &&
	cmp src/exact-page dst/exact-page &&
	cmp src/no-newline dst/no-newline &&
	test -f dst/empty && ! test -s dst/empty
'

test_expect_success 'hard-link groups are preserved' '
	test "$(stat -c %i dst/hl-a)" = "$(stat -c %i dst/dir/hl-b)" &&
	test "$(stat -c %i dst/hl-a)" = "$(stat -c %i dst/dir/sub/hl-c)" &&
	test "$(stat -c %h dst/hl-a)" = 3 &&
	test "$(stat -c %i dst/pair-1)" = "$(stat -c %i dst/pair-2)" &&
	test "$(stat -c %h dst/pair-1)" = 2 &&
	test "$(stat -c %i dst/hl-a)" != "$(stat -c %i dst/pair-1)"
'

test_expect_success 'fifos and sockets' '
	test -p dst/fifo && test -S dst/socket &&
	stat_same "%f %a %.9Y" src dst fifo socket
'

test_expect_success ROOT 'device nodes keep type and numbers' '
	test -c dst/char-null && test -b dst/block-loop &&
	stat_same "%F %t:%T %a %u:%g" src dst char-null block-loop
'

test_expect_success 'setuid, setgid and sticky modes' '
	stat_same "%a" src dst setuid setgid sticky-dir setgid-dir mode-0600 \
		mode-0741 &&
	test "$(stat -c %a dst/setuid)" = 4755 &&
	test "$(stat -c %a dst/setgid)" = 2755 &&
	test "$(stat -c %a dst/sticky-dir)" = 1777 &&
	test "$(stat -c %a dst/setgid-dir)" = 2775
'

test_expect_success ROOT 'numeric owners, on files, directories and symlinks' '
	stat_same "%u:%g" src dst owned-12345 owned-dir owned-link setuid &&
	test "$(stat -c %u:%g dst/owned-12345)" = 12345:12345 &&
	test "$(stat -c %u:%g dst/owned-dir)" = 12345:54321 &&
	test "$(stat -c %u:%g dst/owned-link)" = 12345:12345
'

test_expect_success XATTR 'extended attributes, binary and empty values' '
	getfattr -h -d -m - -e hex src/regular | sed 1d >x.src &&
	getfattr -h -d -m - -e hex dst/regular | sed 1d >x.dst &&
	test_cmp x.src x.dst &&
	test_grep -q "user.binary=0x00ff7f80fe01" x.dst &&
	test_grep -q "^user.empty" x.dst &&
	getfattr -n user.dir --only-values dst/dir >v && echo -n on-a-dir >e &&
	test_cmp e v &&
	getfattr -n user.big -e hex dst/big-8M+1 | grep -q "^user.big=0x"
'

test_expect_success XATTR,ROOT 'trusted.* attributes travel as root' '
	getfattr -n trusted.autosync-test --only-values dst/regular >v &&
	echo -n trusted >e && test_cmp e v
'

test_expect_success XATTR 'xattrs are the same without listxattrat (a kernel before 6.13)' '
	"$TEST_ROOT/build/tests/noxattrat" "$AUTOSYNC" sync src dst-old-kernel &&
	assert_same_tree src dst-old-kernel &&
	getfattr -h -d -m - -e hex -R src 2>/dev/null | sed "s|^# file: src|#|" >x.src &&
	getfattr -h -d -m - -e hex -R dst-old-kernel 2>/dev/null |
		sed "s|^# file: dst-old-kernel|#|" | grep -v "^#/.autosync" >x.dst &&
	test_cmp x.src x.dst
'

test_expect_success SETFACL 'POSIX ACLs, access and default' '
	(cd src && getfacl -n acl-file acl-dir acl-dir/inherited) >acl.src &&
	(cd dst && getfacl -n acl-file acl-dir acl-dir/inherited) >acl.dst &&
	test_cmp acl.src acl.dst &&
	test_grep -q "^user:12345:rw-" acl.dst &&
	test_grep -q "^default:user:12345:r-x" acl.dst
'

test_expect_success SETCAP 'file capabilities' '
	getcap src/cap-file | sed "s|^src/||" >cap.src &&
	getcap dst/cap-file | sed "s|^dst/||" >cap.dst &&
	test_cmp cap.src cap.dst &&
	test_grep -q "cap_net_bind_service,cap_net_raw=ep" cap.dst
'

test_expect_success 'awkward names: 255 bytes, invalid UTF-8, newline' '
	long=$(printf "n%.0s" $(seq 255)) &&
	test -f "dst/$long" &&
	test -f "$(printf "dst/bad-utf8-\377\376-name")" &&
	test -f "$(printf "dst/new\nline")" &&
	test -f "dst/back\\slash" && test -f "dst/-leading-dash" &&
	test -f "dst/ leading space" && test -f "dst/at@sign" &&
	test -f "$(printf "dst/dir-\377/f")"
'

test_expect_success 'a directory tree 200 levels deep' '
	deep=$(printf "d/%.0s" $(seq 200)) &&
	test "$(cat "dst/deep/${deep}bottom")" = bottom
'

test_expect_success 'send > file; receive < file gives the same tree as sync' '
	autosync snapshot src@manual &&
	autosync send src@manual >full.as &&
	test $(file_size full.as) -gt 8388609 &&
	autosync receive dst2 <full.as &&
	assert_same_tree src dst2 &&
	assert_same_tree dst dst2 &&
	autosync verify src@manual dst2
'

test_expect_success 'send | receive through a pipe' '
	autosync send src@manual | autosync receive dst3 &&
	assert_same_tree src dst3
'

test_expect_success 'send | (odd-sized chunks) | receive, as over ssh' '
	autosync send src@manual |
	python3 -c "
import os, random, sys
r = random.Random(7)
while True:
    b = os.read(0, r.choice([1, 7, 512, 4093, 65537]))
    if not b:
        break
    while b:
        b = b[os.write(1, b):]
" | autosync receive dst4 &&
	assert_same_tree src dst4
'

test_expect_success 'receive -n validates a stream and changes nothing' '
	autosync receive -n dst5 <full.as &&
	! test -e dst5 || test -z "$(ls -A dst5 | grep -vx .autosync)"
'

test_expect_success 'a second sync of an unchanged tree keeps it identical' '
	autosync sync -v src dst >out &&
	test_grep -q incremental out &&
	assert_same_tree src dst
'

test_expect_success 'sync refuses an empty source (an unmounted one?)' '
	mkdir empty-src &&
	touch -d @1234567890.987654321 empty-src &&
	test_expect_code 3 autosync sync empty-src empty-dst 2>err &&
	test_grep -q "empty" err &&
	! test -e empty-dst || test -z "$(ls -A empty-dst | grep -vx .autosync)"
'

test_expect_success 'an empty tree by snapshot, send and receive' '
	autosync snapshot empty-src@e &&
	autosync send empty-src@e | autosync receive empty-dst &&
	assert_same_tree empty-src empty-dst
'

test_expect_success 'a stream to a regular file is refused' '
	echo x >not-a-dir &&
	test_must_fail autosync receive not-a-dir <full.as 2>err &&
	test "$(cat not-a-dir)" = x
'

test_done
