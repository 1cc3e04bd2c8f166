#!/bin/bash
test_description='RELIABILITY.md §C on volumes: 30 (crash at every
syscall boundary), 34 (EFBIG), 39 (concurrent receivers); directories:
t9003

30: every fsync, rename, truncate, unlink and write of a volume
incremental (its journal, then the apply) is cut by SIGKILL in turn
(strace -e inject): after "recover vol:IMG" the image and its record are
v1 or v2 exactly (O3), and the receive then completes (O2).  Calls are
sampled (the first two, the middle one, the last two) unless
AUTOSYNC_TEST_LONG=1.

34: under "prlimit --fsize" (EFBIG, SIGXFSZ ignored as a daemon would)
the receive fails with a class; the image is v1, or v2 once recover
rolls a journal committed before the apply failed forward (O3).

39: two receives into one volume: the second is refused busy, the first
completes.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-vol.sh"

. "$TEST_DIRECTORY/lib-crash.sh"

# --- 30, volumes --------------------------------------------------------------

vprep() { rm -f "$D"/b.img* && autosync receive "vol:$D/b.img" <vfull.as; }
vcheck() {
	local h
	h=$(sha "$D/b.img")
	if test "$h" = "$(cat v2.sha)" &&
	   grep -qx "guid $G2" "$D/b.img.autosync"; then
		state=new
	elif test "$1" != new && test "$h" = "$(cat v1.sha)" &&
	   grep -qx "guid $G1" "$D/b.img.autosync"; then
		state=old
	else
		echo "the volume is neither v1 nor v2 (or its record disagrees):"
		cat "$D/b.img.autosync"
		return 1
	fi
}

test_expect_success 'setup: a volume, v1 and v2' '
	truncate -s 2M a.img && scribble a.img 8 &&
	autosync snapshot vol:a.img@v1 && autosync send vol:a.img@v1 >vfull.as &&
	sha a.img >v1.sha &&
	scribble a.img 4 && truncate -s 3M a.img &&
	autosync snapshot vol:a.img@v2 && autosync send -i @v1 vol:a.img@v2 >vincr.as &&
	sha a.img >v2.sha &&
	vprep && G1=$(sed -n "s/^guid //p" "$D/b.img.autosync") &&
	autosync receive "vol:$D/b.img" <vincr.as &&
	G2=$(sed -n "s/^guid //p" "$D/b.img.autosync") &&
	test "$G1" != "$G2" && vcheck new
'

test_expect_success '30: SIGKILL at every fsync, rename, truncate and unlink of a volume incremental' '
	kill_at vprep vcheck "vol:$D/b.img" vincr.as fsync,fdatasync,rename,renameat,renameat2,ftruncate,unlink,unlinkat
'

test_expect_success '30: SIGKILL at every write of a volume incremental' '
	kill_at vprep vcheck "vol:$D/b.img" vincr.as write,pwrite64
'

test_expect_success '34: the same for a volume: v1, or v2 once recover rolls a committed journal forward' '
	vprep &&
	(trap "" XFSZ && exec prlimit --fsize=2500000 autosync receive "vol:$D/b.img" <vincr.as) 2>err; rc=$?;
	cat err && echo "exit $rc" &&
	case $rc in 40|41) ;; *) false ;; esac &&
	autosync recover "vol:$D/b.img" &&
	vcheck any && echo "after recover: $state" &&
	if test $state = old; then
		autosync receive "vol:$D/b.img" <vincr.as
	fi &&
	vcheck new
'

# --- 39 -----------------------------------------------------------------------

test_expect_success '39: a second receive into a volume being received is refused busy' '
	vprep &&
	mkfifo feed &&
	test_when_finished "exec 9>&-" &&
	test_bg "autosync receive vol:$D/b.img <feed" &&
	first=$test_bg_pid &&
	exec 9>feed &&
	head -c 1000 vincr.as >&9 &&
	sleep 1 &&
	test_expect_code 20 autosync receive "vol:$D/b.img" <vincr.as 2>err &&
	cat err && test_grep -i busy err &&
	test "$(sha "$D/b.img")" = "$(cat v1.sha)" &&
	tail -c +1001 vincr.as >&9 &&
	exec 9>&- &&
	wait $first &&
	vcheck new
'

test_done
