#!/bin/bash
test_description='RELIABILITY.md §C on directories: 30 (crash at every
syscall boundary), 34 (EFBIG), 40 (the source changing during a sync);
volumes: t9004

30: t8002 cuts a directory receive at every fsync and rename.  Here the
other syscalls of the list: every unlink, mkdir, symlink, link, chmod,
chown and utimes of an incremental receive that exercises each of them
(most run after the commit point, so recovery rolls forward).  After each SIGKILL, recover must give the old or the new state exactly
(O3), and the receive must then complete (O2).  Calls are sampled (the
first two, the middle one, the last two) unless AUTOSYNC_TEST_LONG=1.

34: a receive under "prlimit --fsize" (EFBIG, with SIGXFSZ ignored as a
daemon would) fails with a class and leaves the old state (O1).

40: while "sync" reads the tree, files grow, shrink, vanish, and one is
swapped for a symlink to a secret outside; the destination never holds
the secret or a mixture the sync calls consistent, and a quiet sync
afterwards gives O2.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-vol.sh"

T=$TRASH_DIRECTORY

. "$TEST_DIRECTORY/lib-crash.sh"

# --- 30, directories ----------------------------------------------------------

dprep() { rm -rf "$D/dst" && autosync receive "$D/dst" <full.as; }

# dcheck new|any: the destination is the new tree (new), or the old or the
# new one (any; $state says which)
dcheck() {
	if test "$1" = new; then
		assert_manifest "$D/dst" m2 >/dev/null && state=new
	elif assert_manifest "$D/dst" m1 >/dev/null 2>&1; then
		state=old
	else
		assert_manifest "$D/dst" m2 && state=new
	fi
}

test_expect_success 'setup: a tree and an incremental that unlinks, makes, links, chmods, chowns, touches and renames' '
	mkfixture src small &&
	mkdir -p src/gone/sub && echo x >src/gone/sub/x && echo y >src/gone/y &&
	echo t >src/typechange && mkdir src/dir2link && echo z >src/dir2link/z &&
	fixture_stamp_times src 1200000000 &&
	autosync snapshot src@s1 && autosync send src@s1 >full.as &&
	manifest src >m1 &&
	rm -r src/gone src/a/f5 &&
	mkdir -p src/new/deeper && echo n >src/new/deeper/n &&
	ln -s ../a/f6 src/new/link && ln src/a/f7 src/new/hard &&
	chmod 0640 src/a/f8 && chmod 0700 src/c &&
	if test_have_prereq ROOT; then chown 4321:4321 src/a/f9; fi &&
	mv src/a/f10 src/a/f10.moved && mv src/a/b src/b-moved &&
	rm src/typechange && mkdir src/typechange &&
	rm -r src/dir2link && ln -s a src/dir2link &&
	fixture_stamp_times src 1300000000 &&
	touch -d "2001-01-01 00:00:00.5" src/a/f11 &&
	autosync snapshot src@s2 && autosync send -i @s1 src@s2 >incr.as &&
	manifest src >m2
'

test_expect_success '30: SIGKILL at every unlink, mkdir, symlink and link of an incremental receive' '
	kill_at dprep dcheck "$D/dst" incr.as unlink,unlinkat,rmdir,mkdir,mkdirat,symlink,symlinkat,link,linkat
'

test_expect_success '30: SIGKILL at every chmod, chown and utimes of an incremental receive' '
	kill_at dprep dcheck "$D/dst" incr.as fchmod,fchmodat,chmod,fchown,fchownat,lchown,utimensat,futimesat
'

# --- 34 -----------------------------------------------------------------------

test_expect_success '34: a file size limit (EFBIG) mid-receive: a classified error, the old tree, then O2' '
	dprep &&
	test_bytes 3000000 efbig >src/c/efbig-file &&
	autosync snapshot src@s3 && autosync send -i @s2 src@s3 >incr3.as &&
	autosync receive "$D/dst" <incr.as &&
	manifest "$D/dst" >m2.check && test_cmp m2 m2.check &&
	(trap "" XFSZ && exec prlimit --fsize=1000000 autosync receive "$D/dst" <incr3.as) 2>err; rc=$?;
	cat err && echo "exit $rc" &&
	case $rc in 40|41) ;; *) false ;; esac &&
	test_grep "too large" err &&
	autosync recover "$D/dst" &&
	assert_manifest "$D/dst" m2 &&
	autosync receive "$D/dst" <incr3.as &&
	assert_same_tree src "$D/dst"
'

# --- 40 -----------------------------------------------------------------------

# sync_live: sync live to $D/live.  Seen 3 times in about 10 runs of this
# file, never alone: a sync of "live" failed at once with "'live' is busy:
# another autosync process is using its catalogs" (CONFLICT, 20) with no
# sync running: most likely the receiving child of a sync killed by an
# earlier case, which holds the inherited lock until it sees the end of
# its stream.  snapstore_lock now waits up to 2 s for such a holder; the
# retry stays, said loudly, in case another cause shows.
sync_live() {
	autosync sync live "$D/live" 2>"$T/sync1.err" && return 0
	cat "$T/sync1.err"
	grep -q "is busy: another autosync process" "$T/sync1.err" || return 1
	echo "NOTE: spurious busy (see the comment above sync_live); retrying"
	ps -eo pid,ppid,stat,args | grep "[a]utosync" | grep -v "zfs\|serve\|daemon"
	sleep 1
	autosync sync live "$D/live"
}

test_expect_success '40: a tree changing under sync: the secret never travels, a quiet sync gives O2' '
	mkdir -p outside && echo "TOP SECRET" >outside/secret &&
	chmod 600 outside/secret &&
	mkdir live && for i in $(seq 1 40); do
		test_bytes 200000 "f$i" >live/f$i || return 1
	done &&
	mkdir live/dir && echo d >live/dir/d &&
	sync_live &&
	(
		i=0
		while test $i -lt 150; do
			n=$((i % 40 + 1))
			case $((i % 5)) in
			0) head -c 70000 /dev/urandom >>live/f$n ;;
			1) truncate -s 1000 live/f$n ;;
			2) rm -f live/f$n; test_bytes 5000 "r$i" >live/f$n ;;
			3) rm -f live/f$n && ln -s "$PWD/outside/secret" live/f$n ;;
			4) mv live/dir live/dir2 2>/dev/null || mv live/dir2 live/dir ;;
			esac
			i=$((i + 1))
		done
	) &
	mut=$! &&
	runs=0 &&
	while kill -0 $mut 2>/dev/null && test $runs -lt 12; do
		autosync sync live "$D/live" >/dev/null 2>>sync.err
		echo "sync exit $?" >>sync.rc
		runs=$((runs + 1))
		! grep -rqs "TOP SECRET" "$D/live" || { echo "the secret travelled"; return 1; }
	done &&
	wait $mut &&
	echo "$runs syncs during the changes:" && sort sync.rc | uniq -c &&
	! grep -v "sync exit [0-9]$\|sync exit [1-4][0-9]$" sync.rc &&
	sync_live &&
	assert_same_tree live "$D/live" &&
	! grep -rqs "TOP SECRET" "$D/live" &&
	test "$(cat outside/secret)" = "TOP SECRET"
'

test_done
