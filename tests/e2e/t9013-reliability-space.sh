#!/bin/bash
test_description='RELIABILITY.md 34: a quota and a read-only switch mid-receive

The destination lives in a btrfs subvolume.  A quota: a qgroup limit on
that subvolume (it binds root too; this kernel has neither ext4 quota
formats nor tmpfs quotas, so it stands for a user quota: the receive sees
EDQUOT) smaller than what a full or an incremental stream needs: NOSPACE
(41), the destination keeps its previous snapshot (O1), nothing staged is
left beyond the budget, the file system stays usable; with the limit
raised the same receive completes (O2).  A read-only switch: the receive
stops itself at a named point (AUTOSYNC_FAULT=SITE:STOP) with its stage
half written, the subvolume is made read-only (btrfs property ro: new
files, renames and deletes then fail with EROFS), and the receive is let
go: a classified error, the previous snapshot, and once the subvolume is
writable again recover gives O2 with no staging left.  (`mount -o
remount,ro` cannot be used: it refuses, EBUSY, while a file is open for
writing, which a receive always has.)'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-btrfs.sh"

test_have_prereq BTRFS || test_skip_all "needs root and btrfs"

T=$TRASH_DIRECTORY
SV=$T/b/sv

# The private directory holds no stage or journal (or, resumable, a
# stage a checkpoint names: these streams are far below one checkpoint).
no_staging() {
	if test -e "$1/.autosync/stage" || test -e "$1/.autosync/journal"; then
		echo "staging left in '$1/.autosync':"
		ls -la "$1/.autosync"
		return 1
	fi
}

ro() { btrfs property set -ts "$SV" ro "$1"; }

test_expect_success 'setup: a btrfs subvolume with quotas, a tree and its streams' '
	btrfs_fs b 512M &&
	btrfs quota enable b &&
	btrfs subvolume create "$SV" >/dev/null &&
	mkfixture src many:300 &&
	autosync snapshot src@s1 && autosync send src@s1 >full.as &&
	manifest src >m1 &&
	test_bytes 3000000 7 >src/d00/e00/grown &&
	echo changed >>src/d01/e01/f00001 && rm -f src/d02/e02/f00002 &&
	autosync snapshot src@s2 && autosync send -i @s1 src@s2 >incr.as &&
	manifest src >m2 &&
	ls -l full.as incr.as
'

test_expect_success '34: a quota smaller than a full stream: NOSPACE (41), nothing received, nothing staged' '
	btrfs qgroup limit 1M "$SV" &&
	test_expect_code 41 autosync receive "$SV/d" <full.as 2>err &&
	cat err && grep -q "quota\|space" err &&
	{ ! test -e "$SV/d" || test -z "$(ls -A "$SV/d" | grep -vx .autosync)"; } &&
	{ ! test -e "$SV/d" || no_staging "$SV/d"; } &&
	echo usable >"$SV/probe" && rm "$SV/probe"
'

test_expect_success '34: the limit raised, the same receive completes (O2)' '
	btrfs qgroup limit 64M "$SV" &&
	autosync receive "$SV/d" <full.as &&
	assert_manifest "$SV/d" m1
'

test_expect_success '34: an incremental over the quota: NOSPACE (41), the destination still s1 (O1); then O2' '
	sync && btrfs filesystem sync b &&
	used=$(btrfs qgroup show --raw -r "$SV" | awk "/^0\\/[0-9]/ {print \$2}" | tail -n 1) &&
	echo "referenced: $used" &&
	btrfs qgroup limit $((used + 1048576)) "$SV" &&
	test_expect_code 41 autosync receive "$SV/d" <incr.as 2>err &&
	cat err &&
	assert_manifest "$SV/d" m1 && no_staging "$SV/d" &&
	btrfs qgroup limit none "$SV" &&
	autosync receive "$SV/d" <incr.as &&
	assert_manifest "$SV/d" m2 && no_staging "$SV/d"
'

# ro_mid_receive SITE STREAM DEST: the receive stops itself at SITE, the
# subvolume goes read-only, the receive goes on: its exit status in rc
ro_mid_receive() {
	local pid
	(export AUTOSYNC_FAULT=$1:STOP && exec autosync receive "$3" <"$2" \
		2>ro.err) &
	pid=$!
	test_when_finished "kill -9 $pid 2>/dev/null; ro false" &&
	test_wait_stopped $pid &&
	ro true &&
	kill -CONT $pid &&
	{ wait $pid; rc=$?; } &&
	cat ro.err && echo "exit $rc"
}

test_expect_success '34: read-only mid-stage of a full receive: an error, nothing received; writable again, then O2' '
	rm -rf "$SV/r" &&
	ro_mid_receive recv_write full.as "$SV/r" &&
	test $rc != 0 && test $rc != 1 && test $rc -lt 128 &&
	grep -qi "read-only" ro.err &&
	test -z "$(ls -A "$SV/r" | grep -vx .autosync)" &&
	ro false &&
	autosync recover "$SV/r" &&
	no_staging "$SV/r" &&
	autosync receive "$SV/r" <full.as &&
	assert_manifest "$SV/r" m1
'

test_expect_success '34: read-only mid-stage of an incremental: an error, still s1 (O1); then O2' '
	ro_mid_receive recv_write incr.as "$SV/r" &&
	test $rc != 0 && test $rc -lt 128 &&
	grep -qi "read-only" ro.err &&
	assert_manifest "$SV/r" m1 &&
	ro false &&
	autosync receive "$SV/r" <incr.as &&
	assert_manifest "$SV/r" m2 && no_staging "$SV/r"
'

test_expect_success '34: read-only after the commit point: an error; writable again, recover rolls forward (O2)' '
	rm -rf "$SV/c" && autosync receive "$SV/c" <full.as &&
	ro_mid_receive recv_phase incr.as "$SV/c" &&
	test $rc != 0 && test $rc -lt 128 &&
	ro false &&
	autosync recover "$SV/c" &&
	assert_manifest "$SV/c" m2 && no_staging "$SV/c"
'

test_done
