#!/bin/bash
test_description='btrfs: faults, and which btrfs operations ran

A logging shim first on PATH (zrepl logmockzfs) records every btrfs
command, and autosync -vv logs every subvolume ioctl as the command it
stands for ("ioctl: subvolume snapshot -r SRC DST"): what a full and an
incremental sync do, that only send and receive run as commands, that
receive always runs confined (-C -E 1 -e), that nothing outside
autosync'"'"'s own directories is ever deleted, and that a refused run
touches nothing.
kill -9 in the middle of a receive and in the middle of publishing the
view: the destination stays the old snapshot, and the next run cleans
up and publishes the new one.  A truncated stream is TRUNCATED and
leaves nothing behind.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-btrfs.sh"

if ! test_have_prereq BTRFS; then
	test_skip_all "needs root, btrfs-progs and btrfs in the kernel"
fi

A=$TRASH_DIRECTORY/a
B=$TRASH_DIRECTORY/b
SNAPS=$A/.autosync-snapshots/@home
HELD=$B/.autosync-snapshots/home

# run_killed WHEN-FILE CMD...: run CMD in its own session, wait until
# WHEN-FILE appears, kill -9 the whole session.
run_killed() {
	local when=$1 pid i
	shift
	rm -f "$when"
	test_bg "setsid $*"
	pid=$test_bg_pid
	for i in $(seq 300); do
		test -e "$when" && break
		sleep 0.1
	done
	test -e "$when" || { echo "'$when' never appeared"; return 1; }
	kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid"
	wait "$pid" 2>/dev/null
	test_wait_session "$pid"
}

# btrfs_ops ERR: the operations autosync -vv logged in ERR, the commands
# it ran and the ioctls, one per line as the shim logs an argv
btrfs_ops() {
	sed -n -e '/^autosync: debug: run: .*: exit [0-9]*$/d' \
		-e 's/^autosync: debug: run: btrfs //p' \
		-e 's/^autosync: debug: ioctl: //p' "$1"
}

test_expect_success 'setup' '
	btrfs_shim_install &&
	btrfs_fs a && btrfs_fs b &&
	btrfs subvolume create "$A/@home" >/dev/null &&
	mkfixture "$A/@home/tree" small &&
	head -c 3000000 /dev/urandom >"$A/@home/big" &&
	btrfs subvolume create "$A/@home/nested" >/dev/null &&
	echo n >"$A/@home/nested/nf"
'

test_expect_success 'full: the operations that ran' '
	shimmed autosync -vv sync "btrfs:$A/@home" "btrfs:$B/home" 2>err &&
	btrfs_ops err >ops &&
	cat "$BTRFS_SHIM_LOG" ops &&
	assert_same_tree "$A/@home" "$B/home" &&
	# the commands: only the streams (the rest are ioctls)
	! grep -v -e "^send " -e "^receive " "$BTRFS_SHIM_LOG" &&
	grep -c "^subvolume snapshot -r " ops >n &&
	test "$(cat n)" = 2 &&
	grep "^subvolume snapshot -r $A/@home $SNAPS/autosync_" ops &&
	grep "^subvolume snapshot -r $A/@home/nested $SNAPS/children/nested/autosync_" \
		ops &&
	# full sends: no parent
	test "$(grep -c "^send " "$BTRFS_SHIM_LOG")" = 2 &&
	! grep "^send .*-p" "$BTRFS_SHIM_LOG" &&
	test "$(grep -c "^receive " "$BTRFS_SHIM_LOG")" = 2 &&
	grep "^receive -q -e -C -E 1 $HELD\$" "$BTRFS_SHIM_LOG" &&
	grep "^receive -q -e -C -E 1 $HELD/children/nested\$" "$BTRFS_SHIM_LOG" &&
	# nothing to delete the first time
	! grep "^subvolume delete" ops
'

# Every command of an incremental run, checked line by line.
check_log() {
	local line bad=0 w
	while read -r line; do
		case "$line" in
		"subvolume delete "*)
			# batched: every path must be autosync's own
			for w in ${line#subvolume delete }; do
				case "$w" in
				"$SNAPS/"*|"$HELD/"*|"$B/.home.autosync-new"*) ;;
				*) echo "deletes '$w': $line"; bad=1 ;;
				esac
			done ;;
		"subvolume snapshot -r $A/@home "*"$SNAPS/"*) ;;
		"subvolume snapshot -r $A/@home/nested $SNAPS/"*) ;;
		"send -q -p $SNAPS/"*) ;;
		"receive -q -e -C -E 1 $HELD"*) ;;
		"subvolume snapshot $HELD/"*" $B/.home.autosync-new"*) ;;
		"subvolume snapshot -r $HELD/"*" $B/.home.autosync-new") ;;
		"property set -ts $B/.home.autosync-new"*" ro "*) ;;
		*) echo "unexpected: $line"; bad=1 ;;
		esac
	done <ops
	return $bad
}

test_expect_success 'incremental: only autosync'"'"'s own subvolumes are touched' '
	old=$(autosync_snaps "$SNAPS") &&
	mv "$A/@home/tree/a/f5" "$A/@home/tree/c/f5-moved" &&
	rm "$A/@home/tree/a/f6" && echo more >>"$A/@home/tree/a/f7" &&
	echo nn >>"$A/@home/nested/nf" &&
	shimmed autosync -vv sync "btrfs:$A/@home" "btrfs:$B/home" 2>err &&
	btrfs_ops err >ops &&
	cat ops &&
	! grep -v -e "^send " -e "^receive " "$BTRFS_SHIM_LOG" &&
	assert_same_tree "$A/@home" "$B/home" &&
	check_log &&
	grep "^send -q -p $SNAPS/$old $SNAPS/autosync_" ops &&
	grep "^send -q -p $SNAPS/children/nested/$old " ops &&
	grep "^subvolume delete $SNAPS/$old\$" ops &&
	grep "^subvolume delete $HELD/$old\$" ops &&
	test_path_is_missing "$SNAPS/$old" && test_path_is_missing "$HELD/$old" &&
	! grep -- " -f " ops
'

test_expect_success 'the view (ioctls): read-only, no received_uuid; the received keep theirs' '
	s=$(autosync_snaps "$HELD") &&
	btrfs_ro "$HELD/$s" && btrfs_ro "$HELD/children/nested/$s" &&
	test "$(btrfs_field "$HELD/$s" "Received UUID")" = \
		"$(btrfs_field "$SNAPS/$s" UUID)" &&
	test "$(btrfs_field "$HELD/children/nested/$s" "Received UUID")" = \
		"$(btrfs_field "$SNAPS/children/nested/$s" UUID)" &&
	# the view is a snapshot of the received one, read-only, and does
	# not carry its received_uuid (receive must never take it)
	btrfs_ro "$B/home" && btrfs_ro "$B/home/nested" &&
	test "$(btrfs_field "$B/home" "Parent UUID")" = \
		"$(btrfs_field "$HELD/$s" UUID)" &&
	test "$(btrfs_field "$B/home" "Received UUID")" = - &&
	test "$(btrfs_field "$B/home/nested" "Received UUID")" = -
'

test_expect_success 'nested discovery (root refs): every level, past one buffer of 255' '
	btrfs subvolume create "$A/many" >/dev/null &&
	mkdir -p "$A/many/x/y" "$A/many/.autosync-snapshots" &&
	for i in $(seq 260); do
		btrfs subvolume create "$A/many/s$i" >/dev/null || return 1
		echo "s$i"
	done >expect &&
	btrfs subvolume create "$A/many/x/y/deep" >/dev/null &&
	btrfs subvolume create "$A/many/x/y/deep/er" >/dev/null &&
	btrfs subvolume create "$A/many/s7/in" >/dev/null &&
	btrfs subvolume create "$A/many/.autosync-snapshots/skip" >/dev/null &&
	printf "%s\n" s7/in x/y/deep x/y/deep/er >>expect &&
	LC_ALL=C sort expect >expect.sorted &&
	"$TEST_ROOT/build/tests/btrfstool" nested "$A/many" >got &&
	test_cmp expect.sorted got &&
	btrfs subvolume list -o "$A/many" >direct &&
	test_line_count = 262 direct
'

# btrfs receive -e exits at the end marker; the last splice of btrfs
# send'"'"'s copying thread (delayed here) then found no reader and the
# kernel killed send with SIGPIPE: a whole stream taken for a failure.
test_expect_success STRACE 'receive done before send'"'"'s last splice: no SIGPIPE' '
	echo late >"$A/@home/late" &&
	test_strace -f -qq -e trace=splice \
		-e inject=splice:delay_enter=300000 -o /dev/null \
		autosync sync "btrfs:$A/@home" "btrfs:$B/home" 2>err &&
	cat err && ! grep "signal 13" err &&
	assert_same_tree "$A/@home" "$B/home"
'

test_expect_success 'a refused run runs nothing that changes anything' '
	btrfs property set -ts "$B/home" ro false &&
	shimmed test_expect_code 20 autosync -vv sync "btrfs:$A/@home" \
		"btrfs:$B/home" 2>err &&
	btrfs_ops err >ops &&
	cat "$BTRFS_SHIM_LOG" ops &&
	! test -s "$BTRFS_SHIM_LOG" && ! test -s ops &&
	btrfs property set -ts "$B/home" ro true
'

test_expect_success 'kill -9 mid-receive: the old view stays, the rerun is clean' '
	manifest "$B/home" >old.m &&
	echo changed >"$A/@home/tree/a/f1" &&
	head -c 3000000 /dev/urandom >"$A/@home/big" &&
	BTRFS_SHIM_STALL=$TRASH_DIRECTORY/stalled \
		run_killed stalled env PATH=$BTRFS_SHIM_DIR:$PATH \
		autosync sync "btrfs:$A/@home" "btrfs:$B/home" &&
	# the receive was under way: a partial, writable subvolume
	p=$(autosync_snaps "$HELD" | tail -n 1) &&
	test -n "$p" && ! btrfs_ro "$HELD/$p" &&
	test -z "$(btrfs_field "$HELD/$p" "Received UUID" | grep -v "^-$")" &&
	assert_manifest "$B/home" old.m &&
	autosync sync -v "btrfs:$A/@home" "btrfs:$B/home" >out 2>err &&
	cat out err &&
	grep "recovered an interrupted receive" err &&
	grep incremental out &&
	assert_same_tree "$A/@home" "$B/home" &&
	test_path_is_missing "$HELD/$p" &&
	test "$(autosync_snaps "$SNAPS")" = "$(autosync_snaps "$HELD")"
'

test_expect_success 'kill -9 while the view is built: old view stays, rerun cleans' '
	manifest "$B/home" >old.m &&
	echo again >"$A/@home/tree/a/f1" &&
	test_expect_code 137 env AUTOSYNC_FAULT=btrfs_view:KILL \
		autosync sync "btrfs:$A/@home" "btrfs:$B/home" &&
	test_path_is_dir "$B/.home.autosync-new" &&
	assert_manifest "$B/home" old.m &&
	btrfs_ro "$B/home" &&
	autosync sync "btrfs:$A/@home" "btrfs:$B/home" 2>err &&
	cat err &&
	test_path_is_missing "$B/.home.autosync-new" &&
	assert_same_tree "$A/@home" "$B/home"
'

# btrfs receive takes an end of stream between two commands for the end
# (it reads concatenated streams that way): only the check that the
# received subvolume is read-only with its received_uuid catches that.
test_expect_success 'a truncated stream: refused, nothing kept, then a clean run' '
	manifest "$B/home" >old.m &&
	head -c 3000000 /dev/urandom >"$A/@home/big" &&
	autosync_snaps "$HELD" >held.before &&
	{ BTRFS_SHIM_TRUNCATE=100000 shimmed autosync sync "btrfs:$A/@home" \
		"btrfs:$B/home" 2>err; rc=$?; } &&
	cat err && echo "exit $rc" &&
	case $rc in
	10) grep -e "unexpected EOF in stream" -e "short read from stream" err ;;
	12) grep "is not read-only: not used" err ;;
	*) false ;;
	esac &&
	assert_manifest "$B/home" old.m &&
	autosync_snaps "$HELD" >held.after &&
	test_cmp held.before held.after &&
	autosync sync "btrfs:$A/@home" "btrfs:$B/home" &&
	assert_same_tree "$A/@home" "$B/home"
'

test_expect_success 'no btrfs command: a clear error' '
	mkdir -p emptybin &&
	test_expect_code 3 env PATH="$TRASH_DIRECTORY/emptybin" "$AUTOSYNC" \
		sync "btrfs:$A/@home" "btrfs:$B/home" 2>err &&
	grep "btrfs-progs" err
'

# A rate limit puts a relay thread of autosync between btrfs send and
# btrfs receive; killing autosync alone (not its session) must still end
# both (their parent-death signal, the pipes' EPIPE and end of file).
test_expect_success 'kill -9 of autosync alone mid a rate-limited stream: both btrfs processes end, the rerun is clean' '
	manifest "$B/home" >old.m &&
	head -c 6000000 /dev/urandom >"$A/@home/big2" &&
	test_bg "setsid autosync sync --rate-limit 1M btrfs:$A/@home btrfs:$B/home" &&
	pid=$test_bg_pid &&
	sleep 2 &&
	kill -0 $pid &&
	test_kill $pid KILL && { wait $pid; :; } &&
	test_wait_session $pid &&
	assert_manifest "$B/home" old.m &&
	autosync sync -v "btrfs:$A/@home" "btrfs:$B/home" >out 2>err &&
	cat out err &&
	grep "recovered an interrupted receive" err &&
	assert_same_tree "$A/@home" "$B/home"
'

test_done
