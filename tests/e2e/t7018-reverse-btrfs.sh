#!/bin/bash
test_description='service: reverse (failback) of btrfs services

btrfs:A -> btrfs:B on two loop-mounted btrfs file systems, reversed to
btrfs:B -> btrfs:A: B (its view written during a failover) becomes a
writable source, A a read-only replica holding what B holds; the first
run after it is an incremental `btrfs send -p` of what B changed (bytes
far below the full send), and so after the reverse back.  An old source
written since the common snapshot is refused (exit 20, nothing swapped
or changed) unless --force, which rolls it back.  A publish that fails
(a fault site) leaves both sides and the service as they were.  A
destination that is behind its source is refused.  Over tcp (a real "autosync serve" with a
serve.conf granting rw trusted): a push service becomes a pull and back
(the server does its side on REQUEST REVERSE), a pull whose server side
was written since is refused then forced, each first run after a
reverse incremental; a server view written since is refused.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-btrfs.sh"
. "$TEST_DIRECTORY/lib-net.sh"
. "$TEST_DIRECTORY/lib-service.sh"

if ! test_have_prereq BTRFS; then
	test_skip_all "needs root, btrfs-progs and btrfs in the kernel"
fi

A=$TRASH_DIRECTORY/a
B=$TRASH_DIRECTORY/b
MIB=1048576

# same DIR DIR: the same files (contents and modes)
same_tree() {
	diff -r "$1" "$2" >/dev/null
}

test_expect_success 'setup: a service A -> B, a full then an incremental run' '
	btrfs_fs a && btrfs_fs b &&
	btrfs subvolume create "$A/src" >/dev/null &&
	head -c $((4 * MIB)) /dev/urandom >"$A/src/big" &&
	echo one >"$A/src/f" &&
	autosync create r --source "btrfs:$A/src" --dest "btrfs:$B/dst" \
		--every 1d --trace-level 2 &&
	autosync run r &&
	full=$(autosync get r bytes_sent) && echo "# full: $full bytes" &&
	test "$full" -gt $((4 * MIB)) &&
	echo two >>"$A/src/f" &&
	autosync run r &&
	same_tree "$A/src" "$B/dst" && btrfs_ro "$B/dst"
'

test_expect_success 'local reverse: B (written in a failover) is the source' '
	btrfs property set -ts "$B/dst" ro false &&
	echo failover >"$B/dst/fo" &&
	autosync reverse r &&
	prop_is r source "btrfs:$B/dst" &&
	prop_is r dest "btrfs:$A/src" &&
	log_has r "reversed: source .btrfs:.*dst., destination .btrfs:.*src." &&
	btrfs_rw "$B/dst" && btrfs_ro "$A/src" &&
	same_tree "$A/src" "$B/dst" &&
	test "$(cat "$A/src/fo")" = failover &&
	test -z "$(btrfs_field "$A/src" "Received UUID" | grep -v "^-$")" &&
	n=$(autosync_snaps "$A/.autosync-snapshots/src") &&
	test $(echo "$n" | wc -l) = 1 &&
	test "$(btrfs_field "$A/.autosync-snapshots/src/$n" "Received UUID")" = \
	     "$(btrfs_field "$B/.autosync-snapshots/dst/$n" UUID)" &&
	test "$(autosync_snaps "$B/.autosync-snapshots/dst")" = "$n"
'

test_expect_success 'the first run after it is incremental (btrfs send -p)' '
	head -c 100000 /dev/urandom >"$B/dst/new" &&
	btrfs_shim_install &&
	shimmed autosync run r &&
	grep "^send -q -p .*/b/.autosync-snapshots/dst/autosync_" "$BTRFS_SHIM_LOG" &&
	sent_below r $MIB &&
	same_tree "$A/src" "$B/dst" && btrfs_ro "$A/src"
'

test_expect_success 'an old source written since is refused, nothing changes' '
	autosync run r &&
	echo late >"$B/dst/late" &&
	test_expect_code 20 autosync reverse r 2>err &&
	cat err &&
	test_grep "changed since .*first: .late.*--force rolls it back" err &&
	prop_is r source "btrfs:$B/dst" &&
	btrfs_rw "$B/dst" && btrfs_ro "$A/src" &&
	test_path_is_missing "$A/src/late"
'

test_expect_success '--force rolls the old source back and reverses' '
	autosync reverse --force r &&
	prop_is r source "btrfs:$A/src" &&
	btrfs_rw "$A/src" && btrfs_ro "$B/dst" &&
	test_path_is_missing "$B/dst/late" &&
	same_tree "$A/src" "$B/dst" &&
	echo three >>"$A/src/f" &&
	autosync run r &&
	sent_below r $MIB &&
	same_tree "$A/src" "$B/dst"
'

test_expect_success 'reverse back: incremental again' '
	autosync reverse r &&
	prop_is r source "btrfs:$B/dst" &&
	btrfs_rw "$B/dst" && btrfs_ro "$A/src" &&
	echo four >>"$B/dst/f" &&
	autosync run r &&
	sent_below r $MIB &&
	same_tree "$A/src" "$B/dst"
'

test_expect_success 'a publish that fails undoes the reverse: nothing changed' '
	ls -a "$A/.autosync-snapshots/src" "$B/.autosync-snapshots/dst" >before &&
	test_expect_code 40 env AUTOSYNC_FAULT=btrfs_view:5 \
		autosync reverse r 2>err &&
	cat err &&
	prop_is r source "btrfs:$B/dst" &&
	btrfs_rw "$B/dst" && btrfs_ro "$A/src" &&
	ls -a "$A/.autosync-snapshots/src" "$B/.autosync-snapshots/dst" >after &&
	test_cmp before after &&
	test_path_is_missing "$A/.src.autosync-new" &&
	echo six >>"$B/dst/f" &&
	autosync run r && sent_below r $MIB &&
	same_tree "$A/src" "$B/dst"
'

test_expect_success 'a mounted destination (mount-destination) is refused' '
	mp=$(autosync mount-destination r) &&
	echo "$mp" >>"$TEST_META/mounts" &&
	test_expect_code 20 autosync reverse r 2>err &&
	test_grep "umount-destination r" err &&
	prop_is r source "btrfs:$B/dst" && btrfs_ro "$A/src" &&
	autosync umount-destination r
'

test_expect_success 'a destination behind its source is refused' '
	echo five >>"$B/dst/f" &&
	btrfs subvolume snapshot -r "$B/dst" \
		"$B/.autosync-snapshots/dst/autosync_2099-01-01_00:00:00" >/dev/null &&
	test_expect_code 20 autosync reverse r 2>err &&
	test_grep "run a final sync first" err &&
	prop_is r source "btrfs:$B/dst" &&
	btrfs subvolume delete "$B/.autosync-snapshots/dst/autosync_2099-01-01_00:00:00" >/dev/null &&
	autosync run r && same_tree "$A/src" "$B/dst"
'

test_expect_success 'setup: a tcp server granting alice rw trusted on b' '
	net_has_serve &&
	net_deadline 30 autosync keygen --out keys --client alice >/dev/null &&
	net_deadline 30 autosync keygen --out keys2 --client bob >/dev/null &&
	net_deadline 30 autosync keygen --out keys3 --client carol >/dev/null &&
	cat >serve.conf <<-EOF &&
	client alice key $TRASH_DIRECTORY/keys/psk.key
	client bob key $TRASH_DIRECTORY/keys2/psk.key
	client carol key $TRASH_DIRECTORY/keys3/psk.key
	allow alice btrfs:$B rw trusted
	allow bob btrfs:$B rw
	allow carol btrfs:$B ro
	EOF
	AUTOSYNC_STATE_DIR=$TRASH_DIRECTORY/server-state \
		net_serve tcp --config "$TRASH_DIRECTORY/serve.conf" &&
	U=tcp://127.0.0.1:$SERVE_PORT/btrfs:$B
'

test_expect_success 'push over tcp: reverse makes it a pull, and back' '
	btrfs subvolume create "$A/np" >/dev/null &&
	head -c $((2 * MIB)) /dev/urandom >"$A/np/big" &&
	autosync create p --source "btrfs:$A/np" --dest "$U/np" \
		--key "$TRASH_DIRECTORY/keys/psk.key" --every 1d --trace-level 2 &&
	net_deadline 60 autosync run p &&
	echo a >"$A/np/f" && net_deadline 60 autosync run p &&
	autosync set p trust=127.0.0.1 &&
	net_deadline 60 autosync reverse p &&
	prop_is p source "$U/np" && prop_is p dest "btrfs:$A/np" &&
	btrfs_rw "$B/np" && btrfs_ro "$A/np" && same_tree "$A/np" "$B/np" &&
	echo b >>"$B/np/f" &&
	net_deadline 60 autosync run p && sent_below p $MIB &&
	same_tree "$A/np" "$B/np" &&
	net_deadline 60 autosync reverse p &&
	prop_is p source "btrfs:$A/np" && prop_is p dest "$U/np" &&
	btrfs_rw "$A/np" && btrfs_ro "$B/np" &&
	echo c >>"$A/np/f" &&
	net_deadline 60 autosync run p && sent_below p $MIB &&
	same_tree "$A/np" "$B/np"
'

test_expect_success 'push over tcp: a server view written since is refused' '
	btrfs property set -ts "$B/np" ro false &&
	echo w >"$B/np/w" &&
	test_expect_code 20 net_deadline 60 autosync reverse p 2>err &&
	cat err && test_grep "needs it as received" err &&
	prop_is p source "btrfs:$A/np" && btrfs_rw "$A/np" &&
	test "$(autosync_snaps "$B/.autosync-snapshots/np" | wc -l)" = 1 &&
	test "$(autosync_snaps "$A/.autosync-snapshots/np" | wc -l)" = 1
'

test_expect_success 'pull over tcp: the server written since is refused, then forced' '
	btrfs subvolume create "$B/nq" >/dev/null &&
	head -c $((2 * MIB)) /dev/urandom >"$B/nq/big" &&
	autosync create q --source "$U/nq" --dest "btrfs:$A/nq" \
		--key "$TRASH_DIRECTORY/keys/psk.key" --every 1d --trace-level 2 &&
	autosync set q trust=127.0.0.1 &&
	net_deadline 60 autosync run q &&
	same_tree "$B/nq" "$A/nq" &&
	echo late >"$B/nq/late" &&
	test_expect_code 20 net_deadline 60 autosync reverse q 2>err &&
	cat err && test_grep "changed since .*late" err &&
	prop_is q source "$U/nq" && btrfs_ro "$A/nq" &&
	test -f "$B/nq/late" &&
	net_deadline 60 autosync reverse --force q &&
	prop_is q source "btrfs:$A/nq" && prop_is q dest "$U/nq" &&
	btrfs_rw "$A/nq" && btrfs_ro "$B/nq" &&
	test_path_is_missing "$B/nq/late" && same_tree "$B/nq" "$A/nq" &&
	echo d >"$A/nq/d" &&
	net_deadline 60 autosync run q && sent_below q $MIB &&
	same_tree "$B/nq" "$A/nq"
'

test_expect_success 'untrusted (21) and read-only (14) clients: nothing changes' '
	btrfs subvolume create "$B/nu" >/dev/null &&
	echo u >"$B/nu/f" &&
	autosync create u --source "$U/nu" --dest "btrfs:$A/nu" \
		--key "$TRASH_DIRECTORY/keys/psk.key" --every 1d &&
	autosync set u trust=127.0.0.1 &&
	net_deadline 60 autosync run u &&
	ls -a "$A/.autosync-snapshots/nu" "$B/.autosync-snapshots/nu" >before &&
	autosync set u key_file="$TRASH_DIRECTORY/keys2/psk.key" &&
	test_expect_code 21 net_deadline 60 autosync reverse u 2>err &&
	cat err && test_grep "not trusted" err &&
	autosync set u key_file="$TRASH_DIRECTORY/keys3/psk.key" &&
	test_expect_code 14 net_deadline 60 autosync reverse u 2>err &&
	cat err &&
	prop_is u source "$U/nu" && btrfs_ro "$A/nu" && btrfs_rw "$B/nu" &&
	ls -a "$A/.autosync-snapshots/nu" "$B/.autosync-snapshots/nu" >after &&
	test_cmp before after
'

test_expect_success SSHD 'pull over ssh: reverse makes it a push, and back' '
	net_sshd_start &&
	export AUTOSYNC_SSH=$NET_SSH &&
	btrfs subvolume create "$B/ns" >/dev/null &&
	head -c $MIB /dev/urandom >"$B/ns/big" &&
	autosync create s --source "$SSH_URL_BASE/btrfs:$B/ns" \
		--dest "btrfs:$A/ns" --every 1d --trace-level 2 &&
	autosync set s trust=127.0.0.1 &&
	net_deadline 60 autosync run s &&
	net_deadline 60 autosync reverse s &&
	prop_is s source "btrfs:$A/ns" &&
	prop_is s dest "$SSH_URL_BASE/btrfs:$B/ns" &&
	btrfs_rw "$A/ns" && btrfs_ro "$B/ns" &&
	echo e >"$A/ns/e" &&
	net_deadline 60 autosync run s && sent_below s 100000 &&
	same_tree "$B/ns" "$A/ns" &&
	net_deadline 60 autosync reverse s &&
	prop_is s source "$SSH_URL_BASE/btrfs:$B/ns" &&
	btrfs_rw "$B/ns" && btrfs_ro "$A/ns" &&
	echo f >"$B/ns/f" &&
	net_deadline 60 autosync run s && sent_below s 100000 &&
	same_tree "$B/ns" "$A/ns"
'

test_done
