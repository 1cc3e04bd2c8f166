#!/bin/bash
test_description='receive stays inside the destination (RELIABILITY.md 3B: 15, 16, 18, 19, 22, 26, 28)

Crafted streams try to reach outside the destination through odd path forms,
symlinks (made by the stream or held from an earlier snapshot), hard links,
planted objects and deletes.  Sentinels beside the destination (outside/:
known content, mode, owner 12345, mtime, xattr) must stay exactly as they
were after every try (O4), and a refused stream must leave the destination
as it was (O1).  Also: privileged objects (devices, setuid, capabilities)
travel faithfully by default, FIFOs are never opened, and names, paths and
depths at and past their limits.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-hostile.sh"

# The destination of most tries holds s1 of src: f, d/g, and a symlink.
test_expect_success 'setup: sentinels outside, a destination holding s1' '
	sentinels_setup &&
	mkdir src src/d &&
	echo f >src/f && echo g >src/d/g && ln -s f src/lf &&
	mkfifo src/p &&
	fixture_stamp_times src &&
	autosync snapshot src@s1 &&
	autosync send src@s1 >full.as &&
	autosync receive "$DST" <full.as &&
	assert_same_tree src "$DST" &&
	dst_fp=$(fp "$DST") &&
	confined
'

# --- 15. absolute, dot-dot and odd path forms -----------------------------

ODD_PATHS=("$OUTSIDE/pwn" '../x' 'a/../../x' 'a/./../..' '//x' 'a//b' '.'
	'..' '' 'a/' 'a/..' 'a/.' './a' '.autosync' '.autosync/x'
	'.autosync/held.cat' '../outside/pwn' 'd/../../outside/pwn' '/' 'd/')

# odd_entries P: one line per entry type and op that names P as its path
# or its source.
odd_entries() {
	local p=$1
	cat <<-EOF
	entry path=$p size=3|data off=0 hex:706f776e
	entry ftype=dir path=$p
	entry ftype=lnk path=$p aux=$OUTSIDE/victim
	entry ftype=fifo path=$p
	entry ftype=sock path=$p
	entry ftype=chr path=$p rdev=0x103
	entry ftype=blk path=$p rdev=0x800
	entry op=link path=$p aux=f
	entry op=link path=h aux=$p
	entry op=rename ftype=reg path=$p aux=f
	entry op=rename ftype=reg path=r aux=$p
	entry op=delete ftype=reg path=$p
	entry op=delete ftype=dir path=$p
	entry op=attr ftype=reg path=$p perm=0777
	entry op=patch path=$p size=3|data off=0 hex:706f776e
	EOF
}

test_expect_success '15: every odd path form with every entry type and op gives UNSAFE_PATH for the whole stream' '
	n=0 &&
	for p in "${ODD_PATHS[@]}"; do
		odd_entries "$p" >entries || return 1
		while read -r e; do
			case "$e" in
			"entry op=attr ftype=dir path=") continue ;;
			esac
			{ incr_begin
			  echo "entry path=okfile size=2"; echo "data off=0 hex:6f6b"
			  echo "$e" | tr "|" "\n"; echo end; } >script &&
			s=$(ms "odd-$n" script) &&
			hostile 14 dst "$s" || { echo "path [$p] entry [$e]"; return 1; }
			n=$((n + 1))
		done <entries
	done &&
	echo "$n streams" &&
	test_path_is_missing "$DST/okfile"
'

test_expect_success '15: the same in full streams into an empty destination' '
	n=0 &&
	for p in "${ODD_PATHS[@]}"; do
		odd_entries "$p" | head -n 4 >entries || return 1
		while read -r e; do
			{ full_begin; echo "entry op=attr ftype=dir path="
			  echo "entry path=okfile size=2"; echo "data off=0 hex:6f6b"
			  echo "$e" | tr "|" "\n"; echo end; } >script &&
			s=$(ms "odd-full-$n" script) &&
			hostile 14 fresh "$s" || { echo "path [$p] entry [$e]"; return 1; }
			n=$((n + 1))
		done <entries
	done &&
	echo "$n streams"
'

test_expect_success '15: the root may only be given metadata, never replaced' '
	{ incr_begin; echo "entry op=attr ftype=reg path="; echo end; } |
		hs "12|14" dst root-as-file &&
	{ incr_begin; echo "entry op=delete ftype=dir path="; echo end; } |
		hs 14 dst root-delete &&
	{ incr_begin; echo "entry op=rename ftype=dir path=x aux="; echo end; } |
		hs 14 dst root-rename &&
	{ incr_begin; echo "entry ftype=dir path="; echo end; } |
		hs "12|14" dst root-create
'

# --- 16. symlink, then write through it -----------------------------------

# through TARGET: one line per way to reach through a symlink l -> TARGET
# made earlier in the same stream.
through() {
	cat <<-EOF
	entry path=l/pwn size=3|data off=0 hex:706f776e
	entry ftype=dir path=l/x
	entry ftype=fifo path=l/p
	entry ftype=lnk path=l/s aux=x
	entry op=link path=l/h aux=f
	entry op=link path=h aux=l/victim
	entry op=link path=h aux=l/inner
	entry op=rename ftype=reg path=stolen aux=l/victim
	entry op=rename ftype=reg path=l/moved aux=f
	entry op=delete ftype=reg path=l/victim
	entry op=delete ftype=reg path=l/inner
	entry op=attr ftype=reg path=l/victim perm=0777
	entry op=attr ftype=dir path=l perm=0777
	entry op=patch path=l/victim size=3|data off=0 hex:706f776e
	entry op=patch path=l size=3|data off=0 hex:706f776e
	entry op=attr ftype=reg path=l perm=06777 uid=0
	EOF
}

test_expect_success '16: a symlink made by the stream is never followed by a later record' '
	n=0 &&
	for target in "$OUTSIDE" ../outside ../../.. ../outside/victimdir \
	    ../outside/victim "$OUTSIDE/victimdir"; do
		through >entries &&
		while read -r e; do
			{ incr_begin; echo "entry ftype=lnk path=l aux=$target"
			  echo "$e" | tr "|" "\n"; echo end; } >script &&
			s=$(ms "through-$n" script) &&
			hostile "12|14|20|40" dst "$s" ||
				{ echo "l -> $target, then [$e]"; return 1; }
			n=$((n + 1))
		done <entries
	done &&
	echo "$n streams" &&
	test_path_is_missing "$OUTSIDE/pwn" && test_path_is_missing "$OUTSIDE/x" &&
	confined
'

test_expect_success '16: the same into an empty destination (a full stream)' '
	n=0 &&
	for target in "$OUTSIDE" ../outside ../outside/victimdir; do
		through | head -n 4 >entries &&
		while read -r e; do
			{ full_begin; echo "entry op=attr ftype=dir path="
			  echo "entry ftype=lnk path=l aux=$target"
			  echo "$e" | tr "|" "\n"; echo end; } >script &&
			s=$(ms "through-full-$n" script) &&
			hostile "12|14|20|40" fresh "$s" ||
				{ echo "l -> $target, then [$e]"; return 1; }
			n=$((n + 1))
		done <entries
	done
'

test_expect_success STRACE '16: without openat2 (ENOSYS, as on a kernel before 5.6 or under valgrind) the walk by components follows nothing either' '
	RECV_WRAP=(test_strace -f -qq -o /dev/null -e trace=openat2
		-e inject=openat2:error=ENOSYS) &&
	n=0 &&
	for target in "$OUTSIDE" ../outside ../outside/victimdir; do
		through >entries &&
		while read -r e; do
			{ incr_begin; echo "entry ftype=lnk path=l aux=$target"
			  echo "$e" | tr "|" "\n"; echo end; } >script &&
			s=$(ms "nosys-$n" script) &&
			hostile "12|14|20|40" dst "$s" ||
				{ echo "l -> $target, then [$e]"; RECV_WRAP=(); return 1; }
			n=$((n + 1))
		done <entries
	done &&
	RECV_WRAP=() &&
	echo "$n streams" &&
	test_path_is_missing "$OUTSIDE/pwn" && test_path_is_missing "$OUTSIDE/x" &&
	confined &&
	rm -rf nosys-src nosys-dst && mkfixture nosys-src small &&
	test_strace -f -qq -o /dev/null -e trace=openat2 \
		-e inject=openat2:error=ENOSYS autosync sync nosys-src nosys-dst &&
	assert_same_tree nosys-src nosys-dst
'

test_expect_success STRACE '16: audit: no path syscall of a hostile receive resolves outside the destination' '
	{ incr_begin; echo "entry ftype=lnk path=l aux=$OUTSIDE"
	  echo "entry path=l/pwn size=3"; echo "data off=0 hex:706f776e"; echo end; } |
		ms audit >/dev/null &&
	ASAN_OPTIONS=detect_leaks=0 strace -f -y -qq -s 0 \
		-e trace=%file,%desc -o audit.log \
		autosync receive "$DST" <"$CORPUS/audit.as" 2>/dev/null
	test $? != 0 &&
	test -s audit.log &&
	! grep -v -e "^[0-9]* *symlinkat(" audit.log | grep -F "$OUTSIDE" &&
	confined && test "$(fp "$DST")" = "$dst_fp"
'

# --- 18. hard-link escapes ------------------------------------------------

test_expect_success '18: a hard link to a file outside gives UNSAFE_PATH; the victim keeps its link count' '
	for aux in "$OUTSIDE/victim" ../outside/victim d/../../outside/victim; do
		{ incr_begin; echo "entry op=link path=h aux=$aux"
		  echo "entry op=patch path=h size=3"; echo "data off=0 hex:706f776e"
		  echo "entry op=attr ftype=reg path=h perm=04777 uid=0"; echo end; } |
			hs 14 dst "link-out-$(echo "$aux" | md5sum | cut -c1-8)" || return 1
	done &&
	test "$(stat -c %h "$OUTSIDE/victim")" = 1
'

test_expect_success '18: a hard link to an entry that comes later in the stream is refused (UNSAFE_PATH or MALFORMED)' '
	test_when_finished "rm -rf \"\$DST\" && autosync receive \"\$DST\" <full.as &&
		dst_fp=\$(fp \"\$DST\")" &&
	{ incr_begin; echo "entry op=link path=h aux=later"
	  echo "entry path=later size=1"; echo "data off=0 hex:41"; echo end; } |
		hs "12|14|20" dst link-later &&
	{ incr_begin; echo "entry op=link path=h aux=nowhere"; echo end; } |
		hs "12|14|20" dst link-missing &&
	{ incr_begin; echo "entry op=link path=h aux=d"; echo end; } |
		hs "12|14|20" dst link-to-dir &&
	{ incr_begin; echo "entry op=link path=h aux=lf"; echo end; } |
		hs "12|14|20" dst link-to-symlink
'

test_expect_success '18: a hard link planted in the destination to a file outside is never written through' '
	before=$(sentinel_state noctime) &&
	ln "$OUTSIDE/victim" "$DST/planted" &&
	test_when_finished "rm -f \"\$DST/planted\"; SENTINEL_STATE=\$(sentinel_state);
		dst_fp=\$(fp \"\$DST\")" &&
	planted_state=$(sentinel_state) &&
	{ incr_begin; echo "entry op=link path=h aux=planted"
	  echo "entry op=patch path=planted size=3"; echo "data off=0 hex:706f776e"
	  echo "entry op=attr ftype=reg path=planted perm=04777"; echo end; } |
		ms planted >/dev/null &&
	recv "$DST" "$CORPUS/planted.as" && echo "exit $recv_rc" && cat recv.err &&
	case $recv_rc in 12|20) ;; *) false ;; esac && clean_stderr recv.err &&
	test "$(sentinel_state)" = "$planted_state" &&
	recv "$DST" "$CORPUS/planted.as" -F && echo "with -F: exit $recv_rc" &&
	cat recv.err && test "$recv_rc" != 0 && test "$recv_rc" -lt 128 &&
	rm -f "$DST/planted" &&
	no_staging "$DST" &&
	test "$(sentinel_state noctime)" = "$before" &&
	test "$(cat "$OUTSIDE/victim")" = "victim content"
'

# --- 19. metadata operations on a held symlink to outside -----------------

# The base for case 19: a destination whose held snapshot has symlinks
# to the sentinels (made with sync, as a user would).
D19=$T/dst19
reset19() {
	rm -rf "$D19" && autosync sync src19 "$D19" >/dev/null &&
	d19_fp=$(fp "$D19")
}

# meta19 WANT NAME SCRIPT-LINES...: an incremental from what D19 holds;
# exit in WANT; O4 always; D19 unchanged unless it succeeded.
meta19() {
	local want=$1 name=$2 s l
	shift 2
	{ incr_begin "$D19"
	  for l in "$@"; do echo "$l" | tr "|" "\n"; done
	  echo end; } >"$T/script19" &&
	s=$(ms "$name" "$T/script19") || return 1
	recv "$D19" "$s"
	echo "$name: exit $recv_rc $(head -c 300 "$T/recv.err")"
	case "|$want|" in
	*"|$recv_rc|"*) ;;
	*) echo "$name: exit $recv_rc, want $want" >&2; return 1 ;;
	esac
	confined || return 1
	clean_stderr "$T/recv.err" || return 1
	if test "$recv_rc" != 0; then
		no_staging "$D19" && test "$(fp "$D19")" = "$d19_fp" ||
			{ echo "$name: refused but changed the destination" >&2; return 1; }
	fi
}

test_expect_success '19: setup: sync a tree with symlinks to the sentinels' '
	mkdir src19 &&
	echo f >src19/f &&
	ln -s "$OUTSIDE/victim" src19/lv &&
	ln -s "$OUTSIDE/victimdir" src19/lvd &&
	ln -s ../outside/victim src19/lrel &&
	reset19 &&
	test "$(readlink "$D19/lv")" = "$OUTSIDE/victim" &&
	test -n "$(held_guid "$D19")" && confined
'

test_expect_success '19: chmod, chown and utimes of a held symlink act on the link itself' '
	reset19 &&
	meta19 "0|12|20" attr-lnk "entry op=attr ftype=lnk path=lv perm=0777 uid=4242 gid=4243 mtime=5" &&
	if test "$recv_rc" = 0; then
		test "$(stat -c "%u:%g %Y" "$D19/lv")" = "4242:4243 5"
	fi &&
	reset19 &&
	meta19 "0|12|20" utimes-rel "entry op=attr ftype=lnk path=lrel mtime=7 nsec=5" &&
	reset19 &&
	meta19 "0|12|20|40" xattr-lnk "entry op=attr ftype=lnk path=lv nxattr=1|xattr name=user.pwn value=x"
'

test_expect_success '19: ops that would treat a held symlink as a file or a directory are refused' '
	reset19 &&
	meta19 "12|20" chmod-as-file "entry op=attr ftype=reg path=lv perm=04777 uid=0" &&
	meta19 "12|20" patch-through "entry op=patch path=lv size=3|data off=0 hex:706f776e" &&
	meta19 "12|20" truncate-through "entry op=patch path=lv size=0" &&
	meta19 "12|20" xattr-as-file "entry op=attr ftype=reg path=lv nxattr=1|xattr name=user.pwn value=x" &&
	meta19 "12|20" chmod-as-dir "entry op=attr ftype=dir path=lvd perm=0777" &&
	meta19 "12|20" delete-as-dir "entry op=delete ftype=dir path=lvd" &&
	meta19 "12|14|20" create-below "entry path=lvd/pwn size=3|data off=0 hex:706f776e" &&
	meta19 "12|14|20" delete-below "entry op=delete ftype=reg path=lvd/inner" &&
	meta19 "12|14|20" attr-below "entry op=attr ftype=reg path=lvd/inner perm=0777" &&
	meta19 "12|14|20" rename-below "entry op=rename ftype=reg path=lvd/f aux=f" &&
	meta19 "12|14|20" rename-from-below "entry op=rename ftype=reg path=got aux=lvd/inner" &&
	meta19 "12|14|20" link-below "entry op=link path=h aux=lvd/inner"
'

test_expect_success '19: rename and delete of a held symlink move or remove the link, not its target' '
	reset19 &&
	meta19 0 rename-lnk "entry op=rename ftype=lnk path=moved aux=lv" &&
	test -L "$D19/moved" && test_path_is_missing "$D19/lv" &&
	reset19 &&
	meta19 0 delete-lnk "entry op=delete ftype=lnk path=lvd" &&
	test_path_is_missing "$D19/lvd" && test -f "$OUTSIDE/victimdir/inner" &&
	reset19 &&
	meta19 0 replace-lnk "entry op=delete ftype=lnk path=lv" \
		"entry path=lv size=3|data off=0 hex:706f77" &&
	test "$(cat "$D19/lv")" = pow && test ! -L "$D19/lv" &&
	confined
'

# --- 22. privileged objects -----------------------------------------------

test_expect_success ROOT '22: devices, setuid/setgid, capabilities and trusted xattrs travel faithfully (the default policy)' '
	cap=0100000200200000000000000000000000000000 &&
	acl=0200000001000600ffffffff020007003930000004000400ffffffff10000700ffffffff20000700ffffffff &&
	{ echo "begin target=0x2222 name=priv"; echo "entry op=attr ftype=dir path="
	  echo "entry ftype=chr path=mem rdev=0x101 perm=0666"
	  echo "entry ftype=blk path=sda rdev=0x800 perm=0666"
	  echo "entry path=suid perm=04755 size=10"; echo "data off=0 bytes=#!/bin/sh\\n"
	  echo "entry path=sgid perm=02755 gid=0 size=1"; echo "data off=0 hex:41"
	  echo "entry path=capped perm=0755 size=1 nxattr=1"
	  echo "xattr name=security.capability value=hex:$cap"
	  echo "data off=0 hex:41"
	  echo "entry path=secx size=0 nxattr=2"
	  echo "xattr name=trusted.x value=t"
	  echo "xattr name=security.capability value=hex:$cap"
	  echo "entry path=acl-ow perm=0677 nxattr=1"
	  echo "xattr name=system.posix_acl_access value=hex:$acl"
	  echo "entry ftype=fifo path=fifo"; echo "entry ftype=sock path=sock"
	  echo end; } | mks >priv.as &&
	fresh_dest && recv "$FRESH" priv.as && cat recv.err && test "$recv_rc" = 0 &&
	test "$(stat -c "%F %t:%T %a" "$FRESH/mem")" = "character special file 1:1 666" &&
	test "$(stat -c "%F %t:%T" "$FRESH/sda")" = "block special file 8:0" &&
	test "$(stat -c %a "$FRESH/suid")" = 4755 &&
	test "$(stat -c %a "$FRESH/sgid")" = 2755 &&
	getcap "$FRESH/capped" | grep -q cap_net_raw &&
	getfattr -h -n trusted.x "$FRESH/secx" | grep -q "trusted.x=\"t\"" &&
	getfacl -n "$FRESH/acl-ow" >acl.out && cat acl.out &&
	grep -q "^user:12345:rwx" acl.out && grep -q "^other::rwx" acl.out &&
	test -p "$FRESH/fifo" && test -S "$FRESH/sock" &&
	confined
'

test_expect_success ROOT '22: receive --safe refuses a stream with a device node: UNSAFE_PATH (14), nothing received' '
	fresh_dest && recv "$FRESH" priv.as --safe && cat recv.err &&
	test "$recv_rc" = 14 && grep -q "device node" recv.err &&
	grep -q "safe" recv.err && fresh_untouched && clean_stderr recv.err &&
	recv "$FRESH" priv.as --safe --dry-run && test "$recv_rc" = 14 &&
	fresh_untouched
'

test_expect_success ROOT '22: receive --safe: no setuid/setgid, no capability, only user xattrs; FIFO and socket land' '
	{ echo "begin target=0x2223 name=priv2"; echo "entry op=attr ftype=dir path="
	  echo "entry path=suid perm=04755 size=10"; echo "data off=0 bytes=#!/bin/sh\\n"
	  echo "entry path=sgid perm=02755 gid=0 size=1"; echo "data off=0 hex:41"
	  echo "entry ftype=dir path=sgid-dir perm=02775"
	  echo "entry path=capped perm=0755 size=1 nxattr=2"
	  echo "xattr name=security.capability value=hex:$cap"
	  echo "xattr name=user.keep value=k"
	  echo "data off=0 hex:41"
	  echo "entry path=secx size=0 nxattr=2"
	  echo "xattr name=trusted.x value=t"
	  echo "xattr name=user.y value=y"
	  echo "entry path=acl-ow perm=0677 nxattr=1"
	  echo "xattr name=system.posix_acl_access value=hex:$acl"
	  echo "entry ftype=fifo path=fifo"; echo "entry ftype=sock path=sock"
	  echo end; } | mks >safe.as &&
	fresh_dest && recv "$FRESH" safe.as --safe && cat recv.err &&
	test "$recv_rc" = 0 &&
	test "$(stat -c %a "$FRESH/suid")" = 755 &&
	test "$(stat -c %a "$FRESH/sgid")" = 755 &&
	test "$(stat -c %a "$FRESH/sgid-dir")" = 775 &&
	test "$(stat -c %a "$FRESH/acl-ow")" = 677 &&
	test -z "$(find "$FRESH" -path "$FRESH/.autosync" -prune -o -perm /6000 -print)" &&
	test -z "$(getcap -r "$FRESH" 2>/dev/null)" &&
	getfattr -h -d -m - "$FRESH/capped" "$FRESH/secx" "$FRESH/acl-ow" >xa.out &&
	cat xa.out &&
	grep -q "^user.keep=\"k\"" xa.out && grep -q "^user.y=\"y\"" xa.out &&
	! grep -q "trusted\|security\|system" xa.out &&
	test -p "$FRESH/fifo" && test -S "$FRESH/sock" && confined &&
	fresh_dest && recv "$FRESH" safe.as && test "$recv_rc" = 0 &&
	test "$(stat -c %a "$FRESH/suid")" = 4755
'

test_expect_success '22: --safe is refused for a volume or remote destination (2)' '
	test_expect_code 2 autosync receive --safe vol:"$T/img" <safe.as 2>err &&
	grep -q "local directory" err &&
	test_expect_code 2 autosync receive --safe tcp://127.0.0.1:1/x <safe.as 2>err &&
	test_expect_code 2 autosync sync --safe "$FRESH" btrfs:/nonexistent 2>err &&
	grep -q "local directory DST" err &&
	test_expect_code 2 autosync sync --safe "$FRESH" ssh://127.0.0.1/x 2>err
'

test_expect_success ROOT '22: sync --safe keeps the policy on incrementals, and the next run sees no drift' '
	rm -rf ssrc sdst && mkdir ssrc &&
	printf "x\n" >ssrc/tool && chmod 4755 ssrc/tool &&
	printf "y\n" >ssrc/plain &&
	setfattr -n user.a -v 1 ssrc/plain && setfattr -n trusted.b -v 2 ssrc/plain &&
	autosync sync --safe ssrc sdst &&
	test "$(stat -c %a sdst/tool)" = 755 &&
	getfattr -h -d -m - sdst/plain >xa.out && grep -q user.a xa.out &&
	! grep -q trusted.b xa.out &&
	printf "xx\n" >ssrc/tool && chmod 6755 ssrc/tool &&
	printf "z\n" >ssrc/new && chmod 2755 ssrc/new &&
	autosync sync --safe ssrc sdst &&
	test "$(cat sdst/tool)" = xx && test "$(stat -c %a sdst/tool)" = 755 &&
	test "$(stat -c %a sdst/new)" = 755 &&
	autosync sync --safe ssrc sdst 2>err && cat err &&
	! grep -qi "modified" err
'

test_expect_success '22: a FIFO in the destination is never opened: no hang, no read' '
	{ incr_begin; echo "entry op=patch path=p size=3"; echo "data off=0 hex:706f776e"; echo end; } |
		ms patch-fifo >/dev/null &&
	RECV_WRAP=(timeout -k 5 20) &&
	test_when_finished "RECV_WRAP=()" &&
	hostile "12|20" dst "$CORPUS/patch-fifo.as" &&
	{ incr_begin; echo "entry op=attr ftype=reg path=p perm=0644"; echo end; } |
		hs "12|20" dst attr-fifo-as-file &&
	rm "$DST/f" && mkfifo "$DST/f" &&
	test_when_finished "rm -rf \"$DST\" && autosync receive \"$DST\" <full.as" &&
	{ incr_begin; echo "entry op=patch path=f size=3"; echo "data off=0 hex:706f776e"; echo end; } |
		ms patch-planted-fifo >/dev/null &&
	dst_fp=$(fp "$DST") &&
	hostile 20 dst "$CORPUS/patch-planted-fifo.as" &&
	recv "$DST" "$CORPUS/patch-planted-fifo.as" -F &&
	echo "with -F: exit $recv_rc" && cat recv.err &&
	test "$recv_rc" != 124 && test "$recv_rc" -lt 128 && test "$recv_rc" != 0
'

test_expect_success 'refresh the reference destination' '
	rm -rf "$DST" && autosync receive "$DST" <full.as && dst_fp=$(fp "$DST")
'

# --- 26. delete scope -----------------------------------------------------

test_expect_success '26: deletes of the root, dot names, the private directory or outside give UNSAFE_PATH' '
	for p in "" . .. .autosync .autosync/held.cat .autosync/lock \
	    ../outside/victim "$OUTSIDE/victim" ../outside d/../..; do
		for t in reg dir lnk; do
			{ incr_begin; echo "entry op=delete ftype=$t path=$p"; echo end; } |
				hs 14 dst "del-$(echo "$p$t" | md5sum | cut -c1-8)" ||
				{ echo "delete [$p] $t"; return 1; }
		done
	done &&
	test -f "$DST/.autosync/held.cat"
'

test_expect_success '26: deletes of a missing path, or of the wrong type, are refused' '
	{ incr_begin; echo "entry op=delete ftype=reg path=nothing"; echo end; } |
		hs "12|20" dst del-missing &&
	{ incr_begin; echo "entry op=delete ftype=reg path=d"; echo end; } |
		hs "12|20" dst del-dir-as-file &&
	{ incr_begin; echo "entry op=delete ftype=dir path=f"; echo end; } |
		hs "12|20" dst del-file-as-dir &&
	{ incr_begin; echo "entry op=delete ftype=lnk path=f"; echo end; } |
		hs "12|20" dst del-file-as-link
'

test_expect_success '26: a delete of a directory that holds files autosync never made gives CONFLICT and removes nothing' '
	echo precious >"$DST/d/planted" &&
	test_when_finished "rm -f \"\$DST/d/planted\" && touch -r src/d \"\$DST/d\"" &&
	dst_fp=$(fp "$DST") &&
	{ incr_begin; echo "entry op=delete ftype=reg path=d/g"
	  echo "entry op=delete ftype=dir path=d"; echo end; } |
		hs 20 dst del-drifted-dir &&
	test "$(cat "$DST/d/planted")" = precious &&
	{ incr_begin; echo "entry op=delete ftype=dir path=d"; echo end; } |
		hs "12|20" dst del-dir-with-children
'

test_expect_success 'the reference destination is still s1' '
	dst_fp=$(fp "$DST") &&
	manifest src >src.m && manifest "$DST" >dst.m &&
	assert_same_tree src "$DST"
'

# --- 28. names, paths and depth at their limits ---------------------------

name255=$(printf "%0255d" 0 | tr 0 a)
name256=$(printf "%0256d" 0 | tr 0 b)

test_expect_success '28: a 255-byte name is received, a 256-byte one gives LIMIT' '
	{ full_begin; echo "entry op=attr ftype=dir path="
	  echo "entry path=$name255 size=1"; echo "data off=0 hex:41"; echo end; } |
		ms name255 >/dev/null &&
	fresh_dest && recv "$FRESH" "$CORPUS/name255.as" && test "$recv_rc" = 0 &&
	test "$(cat "$FRESH/$name255")" = A &&
	{ full_begin; echo "entry op=attr ftype=dir path="
	  echo "entry path=$name256 size=1"; echo "data off=0 hex:41"; echo end; } |
		hs 15 fresh name256 &&
	{ full_begin; echo "entry op=attr ftype=dir path="
	  echo "entry ftype=lnk path=l aux=$name256"; echo end; } | ms target256 >/dev/null &&
	fresh_dest && recv "$FRESH" "$CORPUS/target256.as" &&
	echo "symlink target of 256 bytes: exit $recv_rc" && test "$recv_rc" -lt 128
'

# deep_script LEN: a full stream of nested directories (names of up to
# 255 bytes) and a file in the deepest, whose path is LEN bytes.
deep_script() {
	local len=$1 p="" rem c
	full_begin
	echo "entry op=attr ftype=dir path="
	while :; do
		rem=$(( len - ${#p} - (${#p} > 0 ? 1 : 0) ))
		test "$rem" -gt 255 || break
		c=$(( rem - 2 < 255 ? rem - 2 : 255 ))
		p=${p:+$p/}$(printf "%0${c}d" 0 | tr 0 a)
		echo "entry ftype=dir path=$p"
	done
	echo "entry path=${p:+$p/}$(printf "%0${rem}d" 0 | tr 0 z) size=1"
	echo "data off=0 hex:41"
	echo end
}

test_expect_success '28: a path of 4095 bytes is received, 4096 bytes give LIMIT' '
	deep_script 4095 | ms path4095 >/dev/null &&
	fresh_dest && recv "$FRESH" "$CORPUS/path4095.as" && cat recv.err &&
	test "$recv_rc" = 0 &&
	test "$(cd "$FRESH" && find . -path ./.autosync -prune -o -type f -print |
		wc -c)" = $((4095 + 3)) &&
	deep_script 4096 | hs 15 fresh path4096
'

test_expect_success '28: 2048 nested directories (the deepest a path allows) with a 256 KiB stack' '
	{ full_begin; echo "entry op=attr ftype=dir path="
	  p=a; for i in $(seq 1 2048); do echo "entry ftype=dir path=$p"; p=$p/a; done
	  echo end; } | ms deep2047 >/dev/null &&
	fresh_dest &&
	(ulimit -s 256 && exec autosync receive "$FRESH" <"$CORPUS/deep2047.as") 2>err &&
	test "$(cd "$FRESH" && find . -path ./.autosync -prune -o -type d -print | wc -l)" = 2049
'

test_expect_success '28: a source tree 10000 deep syncs or gives LIMIT, with a 256 KiB stack' '
	test_when_finished "rm -rf deep deepdst" &&
	python3 -c "
import os
os.mkdir(\"deep\")
os.chdir(\"deep\")
for i in range(10000):
    os.mkdir(\"d\")
    os.chdir(\"d\")
open(\"leaf\", \"w\").write(\"x\")
" &&
	(ulimit -s 256 && exec autosync sync deep deepdst) >out 2>err
	rc=$? && echo "exit $rc" && cat err &&
	test "$rc" -lt 128 &&
	case $rc in
	0) test "$(cd deepdst && find . -name leaf | wc -l)" = 1 ;;
	15) recv_rc=$rc && clean_stderr err ;;
	*) false ;;
	esac
'

test_expect_success 'O4: the sentinels are untouched after everything' '
	confined
'

test_done
