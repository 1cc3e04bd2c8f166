#!/bin/bash
test_description='service: reverse of a btrfs tree with a remote side

btrfs:A (a root, one nested subvolume and one nested in it) replicated to
a real "autosync serve" (tcp, serve.conf granting rw trusted, the logging
shim on its PATH) and reversed over the network, each side doing its own
steps per subvolume (REVERSE with REQ_F_TREE | REQ_F_SUBVOLS): a push
becomes a pull and back, no stream during the reverse, every subvolume
of the new source writable and every one of the replica read-only,
without placeholders of nested subvolumes; the first run after each
reverse is one `btrfs send -p` per subvolume (the shim counts the
client'"'"'s and the server'"'"'s), its bytes against the full send.  A
written child is refused on either side (exit 20, named, nothing
changed), then --force rolls it back; a child added since the last sync
is refused even with --force, one removed until a final sync, and a
replica whose last run failed before it was published; a pull
over ssh reversed and back.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-btrfs.sh"
. "$TEST_DIRECTORY/lib-net.sh"
. "$TEST_DIRECTORY/lib-service.sh"

test_have_prereq BTRFS || test_skip_all "needs root, btrfs-progs and btrfs in the kernel"
net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY
A=$T/a
B=$T/b
MIB=1048576
SUBS=". one one/two"

# no_stream: the shim saw no send and no receive
no_stream() {
	! grep -q "^send\|^receive" "$BTRFS_SHIM_LOG"
}
# snapdirs: both sides' snapshot directories, for before/after
snapdirs() {
	ls -aR "$A/.autosync-snapshots" "$B/.autosync-snapshots"
}
rev() { net_deadline 60 autosync reverse "$@"; }
run() { net_deadline 60 autosync run "$@"; }

test_expect_success 'setup: a tree A -> a tcp server B, full then incremental' '
	btrfs_fs a && btrfs_fs b && btrfs_shim_install &&
	AUTOSYNC_STATE_DIR=$T/server-state btrfs_serve "$A" "$B" &&
	U=$(btrfs_url "$B") &&
	btrfs_tree "$A/p" &&
	autosync create p --source "btrfs:$A/p" --dest "$U/p" \
		--key "$T/keys-alice/psk.key" --every 1d --trace-level 2 &&
	shimmed run p &&
	full=$(autosync get p bytes_sent) && echo "# full send: $full bytes" &&
	test "$full" -gt $((3 * MIB)) &&
	echo more >>"$A/p/one/two/f2" && run p &&
	same_tree "$A/p" "$B/p" && all_ro "$B/p" && subvols "$B/p"
'

test_expect_success 'push over tcp: the tree reversed, B the source (a pull)' '
	autosync set p trust=127.0.0.1 &&
	shimmed rev p && no_stream &&
	prop_is p source "$U/p" && prop_is p dest "btrfs:$A/p" &&
	all_rw "$B/p" && all_ro "$A/p" && subvols "$A/p" &&
	same_tree "$A/p" "$B/p" &&
	n=$(autosync_snaps "$B/.autosync-snapshots/p") &&
	test $(echo "$n" | wc -l) = 1 &&
	test "$(autosync_snaps "$A/.autosync-snapshots/p")" = "$n" &&
	sa=$A/.autosync-snapshots/p sb=$B/.autosync-snapshots/p &&
	received_is "$sa/$n" "$sb/$n" &&
	received_is "$sa/children/one/$n" "$sb/children/one/$n" &&
	received_is "$sa/children/one%2Ftwo/$n" "$sb/children/one%2Ftwo/$n" &&
	test_path_is_missing "$sa/$n/one" &&
	test_path_is_missing "$sa/children/one/$n/two"
'

test_expect_success 'the first run after it: one send -p per subvolume' '
	head -c 100000 /dev/urandom >"$B/p/one/two/new" &&
	echo r2 >>"$B/p/f" &&
	shimmed run p &&
	sends_p 3 && sent_below p $MIB &&
	echo "# first run after the push reverse: $(autosync get p bytes_sent) bytes (full: $full)" &&
	same_tree "$A/p" "$B/p" && all_ro "$A/p"
'

test_expect_success 'pull: a child written on the server is refused (20)' '
	run p &&
	snapdirs >before &&
	echo late >"$B/p/one/late" &&
	test_expect_code 20 rev p 2>err &&
	cat err &&
	test_grep "p/one. changed since .*first: .late.*--force" err &&
	prop_is p source "$U/p" &&
	all_rw "$B/p" && all_ro "$A/p" &&
	test_path_is_missing "$A/p/one/late" &&
	snapdirs >after && test_cmp before after
'

test_expect_success 'pull: --force rolls it back on the server; then send -p each' '
	shimmed rev --force p && no_stream &&
	prop_is p source "btrfs:$A/p" && prop_is p dest "$U/p" &&
	all_rw "$A/p" && all_ro "$B/p" && subvols "$B/p" &&
	test_path_is_missing "$B/p/one/late" &&
	same_tree "$A/p" "$B/p" &&
	echo three >>"$A/p/one/d/x" &&
	shimmed run p &&
	sends_p 3 && sent_below p $MIB &&
	echo "# first run after the pull reverse: $(autosync get p bytes_sent) bytes (full: $full)" &&
	same_tree "$A/p" "$B/p" && all_ro "$B/p"
'

test_expect_success 'push: a child written here is refused (20), then --force' '
	snapdirs >before &&
	echo w >"$A/p/one/two/w" &&
	test_expect_code 20 rev p 2>err &&
	cat err && test_grep "p/one/two. changed since .*first: .w.*--force" err &&
	prop_is p source "btrfs:$A/p" && all_rw "$A/p" && all_ro "$B/p" &&
	snapdirs >after && test_cmp before after &&
	rev --force p &&
	prop_is p source "$U/p" && all_rw "$B/p" && all_ro "$A/p" &&
	test_path_is_missing "$A/p/one/two/w" && same_tree "$A/p" "$B/p" &&
	echo four >>"$B/p/one/two/f2" &&
	shimmed run p && sends_p 3 && sent_below p $MIB &&
	same_tree "$A/p" "$B/p"
'

test_expect_success 'a child made on the source since the last sync: refused, --force too' '
	btrfs subvolume create "$B/p/one/new" >/dev/null &&
	echo n >"$B/p/one/new/n" &&
	snapdirs >before &&
	test_expect_code 20 rev --force p 2>err &&
	cat err && test_grep "p/one/new. is a nested subvolume .*--force too" err &&
	prop_is p source "$U/p" && all_rw "$B/p" && all_ro "$A/p" &&
	test "$(cat "$B/p/one/new/n")" = n &&
	snapdirs >after && test_cmp before after &&
	run p && same_tree "$A/p" "$B/p" &&
	rev p && prop_is p source "btrfs:$A/p" &&
	btrfs_rw "$A/p/one/new" && btrfs_ro "$B/p/one/new"
'

test_expect_success 'a child removed from the source: refused until a final sync' '
	btrfs subvolume delete "$A/p/one/new" >/dev/null &&
	snapdirs >before &&
	test_expect_code 20 rev p 2>err &&
	cat err && test_grep "p/one. changed since .*first: .\.." err &&
	test_expect_code 20 rev --force p 2>err &&
	cat err && test_grep "nested subvolume .one/new. that .* has not: run a final sync first" err &&
	snapdirs >after && test_cmp before after &&
	prop_is p source "btrfs:$A/p" && all_rw "$A/p" && all_ro "$B/p" &&
	btrfs_ro "$B/p/one/new" &&
	run p && test_path_is_missing "$B/p/one/new" &&
	rev p && prop_is p source "$U/p" && all_rw "$B/p" && all_ro "$A/p" &&
	echo five >>"$B/p/f" && shimmed run p && sends_p 3 &&
	same_tree "$A/p" "$B/p"
'

test_expect_success 'a replica that does not show its newest snapshot: refused' '
	echo six >>"$B/p/one/f6" &&
	AUTOSYNC_FAULT=btrfs_view:5 test_expect_code 40 run p 2>err &&
	snapdirs >before &&
	test_expect_code 20 rev p 2>err &&
	cat err && test_grep "does not show its newest received snapshot .*run a final sync first" err &&
	prop_is p source "$U/p" && all_rw "$B/p" && all_ro "$A/p" &&
	snapdirs >after && test_cmp before after &&
	run p && rev p && prop_is p source "btrfs:$A/p" &&
	same_tree "$A/p" "$B/p" && all_ro "$B/p"
'

test_expect_success SSHD 'pull over ssh: a tree reversed (a push) and back' '
	net_sshd_start &&
	export AUTOSYNC_SSH=$NET_SSH &&
	btrfs subvolume create "$B/s" >/dev/null &&
	btrfs subvolume create "$B/s/kid" >/dev/null &&
	head -c $MIB /dev/urandom >"$B/s/kid/big" && echo t >"$B/s/t" &&
	autosync create s --source "$SSH_URL_BASE/btrfs:$B/s" \
		--dest "btrfs:$A/s" --every 1d --trace-level 2 &&
	autosync set s trust=127.0.0.1 &&
	run s &&
	rev s &&
	prop_is s source "btrfs:$A/s" && prop_is s dest "$SSH_URL_BASE/btrfs:$B/s" &&
	btrfs_rw "$A/s" && btrfs_rw "$A/s/kid" && btrfs_ro "$B/s" && btrfs_ro "$B/s/kid" &&
	echo e >"$A/s/kid/e" &&
	shimmed run s && sends_p 2 && sent_below s 100000 &&
	same_tree "$B/s" "$A/s" &&
	rev s &&
	prop_is s source "$SSH_URL_BASE/btrfs:$B/s" &&
	btrfs_rw "$B/s/kid" && btrfs_ro "$A/s/kid" &&
	echo f >"$B/s/kid/f" &&
	run s && sent_below s 100000 &&
	same_tree "$B/s" "$A/s"
'

test_expect_success 'a hostile client naming a path outside the tree: refused' '
	# "autosync serve --stdio" (trusting: an ssh login) behind an "ssh"
	# that rewrites EVIL_FROM into EVIL_TO (as long) in the DATA frames
	# the client sends: its list of nested subvolumes.  Frames: u32 len,
	# u8 type (DATA 5), payload.
	cat >evil-ssh <<-\EOF &&
	#!/usr/bin/python3
	import os, struct, subprocess, sys
	frm = os.environ.get("EVIL_FROM", "").encode()
	to = os.environ.get("EVIL_TO", "").encode()
	p = subprocess.Popen(["autosync", "serve", "--stdio"],
	                     stdin=subprocess.PIPE)
	i, o = sys.stdin.buffer, p.stdin
	def take(n):
	    b = b""
	    while len(b) < n:
	        c = i.read(n - len(b))
	        if not c:
	            o.close()
	            sys.exit(p.wait())
	        b += c
	    return b
	while True:
	    n, = struct.unpack("<I", take(4))
	    f = take(n)
	    if f[0] == 5 and frm:
	        f = f.replace(frm, to)
	    o.write(struct.pack("<I", n) + f)
	    o.flush()
	EOF
	chmod +x evil-ssh &&
	btrfs subvolume create "$A/h" >/dev/null &&
	btrfs subvolume create "$A/h/kid" >/dev/null && echo k >"$A/h/kid/k" &&
	autosync create h --source "btrfs:$A/h" --dest "ssh://evil/btrfs:$B/h" \
		--every 1d &&
	AUTOSYNC_SSH=$T/evil-ssh run h &&
	snapdirs >before &&
	EVIL_FROM=" kid" EVIL_TO=" ../" AUTOSYNC_SSH=$T/evil-ssh \
		test_expect_code 14 rev h 2>err &&
	cat err && test_grep "named the nested subvolume .\.\./.: not a path below the root" err &&
	prop_is h source "btrfs:$A/h" &&
	btrfs_ro "$B/h" && btrfs_ro "$B/h/kid" && btrfs_rw "$A/h/kid" &&
	snapdirs >after && test_cmp before after &&
	AUTOSYNC_SSH=$T/evil-ssh rev h &&
	prop_is h source "ssh://evil/btrfs:$B/h" && btrfs_rw "$B/h/kid"
'

test_expect_success 'no sanitizer report in the server logs' '
	net_logs_clean
'

test_done
