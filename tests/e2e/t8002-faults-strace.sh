#!/bin/bash
test_description='crash safety: SIGKILL and EIO at every fsync and rename

A recording run counts the fsync-family and rename-family calls of a
small full and a small incremental receive (strace -f -c).  Then, for
every (syscall S, n <= count), the receive is killed on entry to its n-th
S (strace -e inject=S:signal=SIGKILL:when=n): after "autosync recover"
the destination must be the old or the new snapshot exactly (O3), and
the receive must then complete (O2).  The same with EIO instead of the
signal on the n-th fsync/fdatasync/syncfs: a non-zero exit, old or new
after recovery, then completion.

AUTOSYNC_STRACE_SYSCALLS overrides the syscall list (e.g. add
unlinkat,mkdirat,linkat,symlinkat,write for a long run by hand).'
. "$(dirname "$0")/test-lib.sh"

if ! test_have_prereq STRACE; then
	test_skip_all 'strace is missing or cannot trace here'
fi

SYSCALLS=${AUTOSYNC_STRACE_SYSCALLS:-fsync,fdatasync,syncfs,rename,renameat,renameat2}
EIO_SYSCALLS=fsync,fdatasync,syncfs

# Destinations on a tmpfs when possible: the syscalls are the same, and
# the per-call loops stay fast.
if test_have_prereq TMPFS; then
	mkdir mnt && test_mount -t tmpfs -o size=256m tmpfs mnt ||
		BAIL_OUT "cannot mount a tmpfs"
	D=$TRASH_DIRECTORY/mnt
else
	D=$TRASH_DIRECTORY/dests
	mkdir "$D"
fi

is_empty_dest() {
	! test -e "$1" || test -z "$(ls -A "$1" | grep -vx .autosync)"
}

# check DEST OLD NEW: OLD is a manifest file or "empty"; sets old_or_new.
check_old_or_new() {
	if test "$2" = empty; then
		if is_empty_dest "$1"; then old_or_new=old; return 0; fi
		assert_manifest "$1" "$3" && old_or_new=new
	else
		assert_old_or_new "$1" "$2" "$3"
	fi
}

# count_calls FILE: "syscall calls" lines from strace -c output.
count_calls() {
	awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { print $NF, $4 }' "$1"
}

# prepare KIND: a fresh destination holding the old state of KIND.
prepare() {
	rm -rf "$D/dst" &&
	if test "$1" = incr; then
		autosync receive "$D/dst" <full.as
	fi
}

# one_point KIND STREAM OLD NEW SYSCALL N INJECT: inject, recover, check,
# complete, check.
one_point() {
	local kind=$1 stream=$2 old=$3 new=$4 sc=$5 n=$6 inj=$7 rc label
	label="$kind $sc#$n $inj"
	prepare "$kind" || { echo "$label: cannot prepare"; return 1; }
	test_strace -f -qq -o /dev/null -e trace="$sc" \
		-e inject="$sc:$inj:when=$n" \
		autosync receive "$D/dst" <"$stream" 2>"$TEST_META/err" >/dev/null
	rc=$?
	case "$inj" in
	signal=*)
		if test $rc = 0; then
			echo "$label: the receive finished (call $n of $sc never came)"
		elif test $rc != 137; then
			echo "$label: exit $rc, expected 137 (killed)"
			cat "$TEST_META/err"
			return 1
		fi ;;
	error=*)
		if test $rc = 0; then
			echo "$label: the receive succeeded despite the error"
			# acceptable only if the call was not made
		elif test $rc -ge 128; then
			echo "$label: died with exit $rc instead of reporting the error"
			cat "$TEST_META/err"
			return 1
		else
			grep -q . "$TEST_META/err" ||
				{ echo "$label: exit $rc and no message"; return 1; }
		fi ;;
	esac
	# A process that reported an error is gone: what it left must be a
	# consistent tree already, not one that needs "recover".
	if test "$inj" != "${inj#error}" && test $rc != 0; then
		check_old_or_new "$D/dst" "$old" "$new" ||
			{ echo "$label: exit $rc left a mixed tree (before recover):";
			  cat "$TEST_META/err"; return 1; }
	fi
	autosync recover "$D/dst" 2>"$TEST_META/err" ||
		{ echo "$label: recover failed:"; cat "$TEST_META/err"; return 1; }
	check_old_or_new "$D/dst" "$old" "$new" ||
		{ echo "$label (exit $rc): neither old nor new after recover"; return 1; }
	echo "$label: exit $rc, $old_or_new after recover"
	if test "$inj" != "${inj#error}" && test $rc != 0 && test $old_or_new = new; then
		echo "    (note: an error exit, yet the new snapshot after recover)"
	fi
	autosync receive "$D/dst" <"$stream" 2>"$TEST_META/err"
	rc=$?
	if test $rc = 20 && test $old_or_new = new; then
		return 0	# already new: refused, nothing changed
	fi
	if test $rc != 0; then
		echo "$label: completing receive exited $rc:"
		cat "$TEST_META/err"
		return 1
	fi
	assert_manifest "$D/dst" "$new" ||
		{ echo "$label: not the new tree after completion"; return 1; }
}

# every_point KIND STREAM OLD NEW SYSCALLS INJECT
every_point() {
	local kind=$1 stream=$2 old=$3 new=$4 list=$5 inj=$6 sc n count
	local fails=0 points=0
	prepare "$kind" &&
	test_strace -f -c -o "count.$kind" -e trace="$list" \
		autosync receive "$D/dst" <"$stream" &&
	assert_manifest "$D/dst" "$new" || return 1
	count_calls "count.$kind" >"calls.$kind"
	echo "calls in a clean $kind receive:"; sed 's/^/    /' "calls.$kind"
	test -s "calls.$kind" || { echo "no $list calls at all"; return 1; }
	while read -r sc count; do
		for n in $(seq "$count"); do
			points=$((points + 1))
			one_point "$kind" "$stream" "$old" "$new" "$sc" "$n" "$inj" ||
				fails=$((fails + 1))
		done
	done <"calls.$kind"
	echo "$kind, $inj: $fails of $points points failed"
	test $fails = 0
}

test_expect_success 'setup: a small tree, full and incremental streams' '
	mkfixture src small &&
	autosync snapshot src@s1 &&
	autosync send src@s1 >full.as &&
	manifest src >m1 &&
	echo changed >src/a/f1 &&
	test_bytes 100000 changed | dd of=src/c/big bs=4096 seek=10 conv=notrunc status=none &&
	mv src/a/f2 src/a/f2.renamed && mv src/a/b src/a/b-renamed &&
	rm src/a/f3 && mkdir src/newdir && echo new >src/newdir/new &&
	ln src/a/f4 src/newdir/f4-link && chmod 0700 src/c &&
	fixture_stamp_times src 1300000000 &&
	autosync snapshot src@s2 &&
	autosync send -i @s1 src@s2 >incr.as &&
	manifest src >m2
'

test_expect_success 'SIGKILL at every fsync/rename of a full receive' '
	every_point full full.as empty m1 "$SYSCALLS" signal=SIGKILL
'

test_expect_success 'SIGKILL at every fsync/rename of an incremental receive' '
	every_point incr incr.as m1 m2 "$SYSCALLS" signal=SIGKILL
'

test_expect_success 'EIO at every fsync of a full receive' '
	every_point full full.as empty m1 "$EIO_SYSCALLS" error=EIO
'

test_expect_success 'EIO at every fsync of an incremental receive' '
	every_point incr incr.as m1 m2 "$EIO_SYSCALLS" error=EIO
'

test_expect_success 'EIO on a rename of an incremental receive' '
	every_point incr incr.as m1 m2 rename,renameat,renameat2 error=EIO
'

test_expect_success 'ENOSPC on the first writes of a full receive: NOSPACE (41)' '
	prepare full &&
	test_expect_code 41 test_strace -f -qq -o /dev/null -e trace=write,pwrite64 \
		-e inject=write,pwrite64:error=ENOSPC:when=3 \
		autosync receive "$D/dst" <full.as 2>err &&
	cat err &&
	autosync recover "$D/dst" &&
	is_empty_dest "$D/dst" &&
	autosync receive "$D/dst" <full.as &&
	assert_manifest "$D/dst" m1
'

test_done
