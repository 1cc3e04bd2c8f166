#!/bin/bash
test_description='crash safety: kill -9 the receiver at random points

A ~2000-file tree is received in full and incrementally; each trial kills
the receiver (its whole process group) after a random delay within the
time a clean receive takes.  After "autosync recover" (or the next
receive, in every other trial) the destination must be exactly the old
or the new snapshot (O3), staging must be gone, and the receive must then
complete to the new snapshot (O2).  Same for a killed "sync".

AUTOSYNC_KILL_TRIALS (default 10) trials per kind of receive, a quarter
as many killed syncs; 100 by hand.
AUTOSYNC_KILL_SEED makes the delays reproducible.  The destinations live
on a tmpfs when we may mount one (fsync is free there, and a killed
process leaves the same state as on disk); else in the trash directory
with fewer default trials.'
. "$(dirname "$0")/test-lib.sh"

seed=${AUTOSYNC_KILL_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$seed
say "# AUTOSYNC_KILL_SEED=$seed"

if test_have_prereq TMPFS; then
	TRIALS=${AUTOSYNC_KILL_TRIALS:-10}
	mkdir mnt && test_mount -t tmpfs -o size=1g tmpfs mnt ||
		BAIL_OUT "cannot mount a tmpfs"
	D=$TRASH_DIRECTORY/mnt
else
	TRIALS=${AUTOSYNC_KILL_TRIALS:-3}
	D=$TRASH_DIRECTORY/dests
	mkdir "$D"
fi

kept_checkpoint=0
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ms_to_s MS: "1.234"
ms_to_s() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

# is_empty_dest DIR: missing, or holding nothing but .autosync
is_empty_dest() {
	! test -e "$1" || test -z "$(ls -A "$1" | grep -vx .autosync)"
}

# The state after a kill, once recovered: "old" (OLD is a manifest file,
# or "empty") or "new" (NEW manifest), else fail.
check_old_or_new() {	# DEST OLD NEW
	if test "$2" = empty && is_empty_dest "$1"; then
		old_or_new=old
		return 0
	fi
	if test "$2" = empty; then
		assert_manifest "$1" "$3" && old_or_new=new
	else
		assert_old_or_new "$1" "$2" "$3"
	fi
}

# Staging left in DEST/.autosync after recovery, beyond what a clean
# receive keeps (its size in KiB is $staging_budget).  With "resumable",
# a stage that a checkpoint names is kept on purpose (dir.h: recovery
# keeps what a resume continues from); the completing receive, an
# ordinary one, must then forget it.
check_staging() {	# DEST [resumable]
	local kb
	test -d "$1/.autosync" || return 0
	if test "${2-}" = resumable &&
		test -f "$1/.autosync/partial" &&
		head -n 1 "$1/.autosync/partial" | grep -qx "autosync-partial 1" &&
		! test -e "$1/.autosync/journal"; then
		kept_checkpoint=$((kept_checkpoint + 1))
		return 0
	fi
	kb=$(du -sk "$1/.autosync" | cut -f1)
	test "$kb" -le "$staging_budget" && return 0
	echo "staging not cleaned: $1/.autosync holds $kb KiB (budget $staging_budget):"
	find "$1/.autosync" -ls | head -n 20
	return 1
}

# One trial: start CMD (a receive or sync, string) in its own session,
# kill its process group after a random delay in [0, 1.1 T], recover (or
# not: MODE "next"), check old-or-new, complete with CMD, check new.
trial() {	# LABEL CMD DEST T_MS OLD NEW MODE
	local label=$1 cmd=$2 dest=$3 t=$4 old=$5 new=$6 mode=$7 delay pid rc
	delay=$(( RANDOM * (t * 11 / 10 + 1) / 32768 ))
	test_bg "setsid $cmd"
	pid=$test_bg_pid
	sleep "$(ms_to_s $delay)"
	kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null
	{ wait "$pid"; } 2>/dev/null
	rc=$?
	last_delay=$delay last_rc=$rc
	test_wait_session "$pid" || return 1
	case $rc in
	0|137) ;;
	*) echo "$label: '$cmd' exited $rc before the kill"; return 1 ;;
	esac
	if test "$mode" = recover; then
		autosync recover "$dest" ||
			{ echo "$label: recover failed"; return 1; }
		check_old_or_new "$dest" "$old" "$new" ||
			{ echo "$label: killed after ${delay} ms (exit $rc): neither old nor new"; return 1; }
		check_staging "$dest" resumable || return 1
		echo "$label: killed after ${delay} ms (exit $rc): $old_or_new"
	else
		echo "$label: killed after ${delay} ms (exit $rc); the next run recovers"
	fi
	# complete: the same command again gives the new tree (a receive of
	# a stream already applied is refused with CONFLICT: that is fine)
	eval "$cmd" 2>"$label.err"
	rc=$?
	case $rc in
	0) ;;
	20) grep -q "holds\|already" "$label.err" ||
		{ echo "$label: completion refused:"; cat "$label.err"; return 1; } ;;
	*) echo "$label: completion exited $rc:"; cat "$label.err"; return 1 ;;
	esac
	assert_manifest "$dest" "$new" ||
		{ echo "$label: not the new tree after completion"; return 1; }
	check_staging "$dest"
}

test_expect_success 'setup: a 2000-file tree, its full and incremental streams' '
	mkfixture src many &&
	autosync snapshot src@s1 &&
	autosync send src@s1 >full.as &&
	manifest src >m1 &&
	mkfixture src mutate-many &&
	autosync snapshot src@s2 &&
	autosync send -i @s1 src@s2 >incr.as &&
	manifest src >m2 &&
	! cmp -s m1 m2 &&
	t0=$(now_ms) && autosync receive "$D/ref" <full.as && t1=$(now_ms) &&
	assert_manifest "$D/ref" m1 &&
	t1=$(now_ms) && autosync receive "$D/ref" <incr.as && t2=$(now_ms) &&
	assert_manifest "$D/ref" m2 &&
	T_full=$((t1 - t0)) && T_incr=$((t2 - t1)) &&
	staging_budget=$(( $(du -sk "$D/ref/.autosync" | cut -f1) * 2 + 256 )) &&
	echo "clean receives: full $T_full ms, incremental $T_incr ms;" \
		"staging budget $staging_budget KiB" &&
	rm -rf "$D/ref"
'

test_expect_success 'setup: time a clean sync' '
	t0=$(now_ms) && autosync sync src "$D/sref" && t1=$(now_ms) &&
	assert_manifest "$D/sref" m2 &&
	T_sync=$((t1 - t0)) &&
	echo "clean sync: $T_sync ms" &&
	rm -rf "$D/sref"
'

# A receive that finished before its kill says the clean time was an
# overestimate: aim the next kills earlier.
adapt() {	# VAR
	if test "$last_rc" = 0 && test "$last_delay" -gt 10; then
		eval "$1=\$((last_delay * 9 / 10))"
	fi
}

# Every other trial leaves the recovery to the next receive.
trial_mode() { if test $(($1 % 2)) = 1; then echo recover; else echo next; fi; }

test_expect_success "kill -9 during a full receive ($TRIALS trials)" '
	fails=0 &&
	for i in $(seq $TRIALS); do
		rm -rf "$D/full" &&
		trial "full-$i" "autosync receive $D/full <full.as" "$D/full" \
			$T_full empty m1 $(trial_mode $i) ||
			fails=$((fails + 1))
		adapt T_full
	done &&
	echo "$fails of $TRIALS trials failed; recoveries that kept a" \
		"checkpoint so far: $kept_checkpoint" &&
	test $fails = 0
'

test_expect_success "kill -9 during an incremental receive ($TRIALS trials)" '
	fails=0 &&
	for i in $(seq $TRIALS); do
		rm -rf "$D/inc" &&
		autosync receive "$D/inc" <full.as &&
		trial "incr-$i" "autosync receive $D/inc <incr.as" "$D/inc" \
			$T_incr m1 m2 $(trial_mode $i) ||
			fails=$((fails + 1))
		adapt T_incr
	done &&
	echo "$fails of $TRIALS trials failed; recoveries that kept a" \
		"checkpoint so far: $kept_checkpoint" &&
	test $fails = 0
'

test_expect_success "kill -9 during a full sync ($(( (TRIALS + 3) / 4 )) trials)" '
	fails=0 &&
	for i in $(seq $(( (TRIALS + 3) / 4 ))); do
		rm -rf "$D/sync" &&
		trial "sync-$i" "autosync sync src $D/sync" "$D/sync" \
			$T_sync empty m2 $(trial_mode $i) ||
			fails=$((fails + 1))
		adapt T_sync
	done &&
	echo "$fails trials failed" &&
	test $fails = 0 &&
	assert_manifest src m2
'

# lost_lock DEST STREAM: DEST left with a committed journal (the receive
# killed on its first fdatasync: the journal.phase record after the
# first phase) and no lock file, as when .autosync/lock was lost.
lost_lock() {
	rm -rf "$1" &&
	test_strace -f -qq -o /dev/null -e trace=fdatasync \
		-e inject=fdatasync:signal=SIGKILL:when=1 \
		autosync receive "$1" <"$2" 2>/dev/null
	test $? = 137 || { echo "lost_lock: the receive was not killed"; return 1; }
	test -f "$1/.autosync/journal" ||
		{ echo "lost_lock: no committed journal"; return 1; }
	rm "$1/.autosync/lock"
}

test_expect_success STRACE 'recover without a lock file rolls a committed journal forward' '
	lost_lock "$D/nolock" full.as &&
	autosync recover "$D/nolock" &&
	test -f "$D/nolock/.autosync/lock" &&
	! test -e "$D/nolock/.autosync/journal" &&
	! test -e "$D/nolock/.autosync/stage" &&
	assert_manifest "$D/nolock" m1
'

test_expect_success 'recover without a lock file drops uncommitted staging' '
	rm -rf "$D/nolock" &&
	autosync receive "$D/nolock" <full.as &&
	mkdir "$D/nolock/.autosync/stage" &&
	echo junk >"$D/nolock/.autosync/stage/n0" &&
	rm "$D/nolock/.autosync/lock" &&
	autosync recover "$D/nolock" &&
	! test -e "$D/nolock/.autosync/stage" &&
	assert_manifest "$D/nolock" m1
'

test_expect_success STRACE 'receive and sync recover without a lock file' '
	lost_lock "$D/nolock" full.as &&
	autosync receive "$D/nolock" <incr.as &&
	assert_manifest "$D/nolock" m2 &&
	lost_lock "$D/nolock" full.as &&
	autosync sync src "$D/nolock" &&
	! test -e "$D/nolock/.autosync/journal" &&
	assert_manifest "$D/nolock" m2 &&
	rm -rf "$D/nolock"
'

test_done
