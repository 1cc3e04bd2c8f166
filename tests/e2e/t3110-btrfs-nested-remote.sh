#!/bin/bash
test_description='btrfs remote, nested subvolumes: push and pull of a tree
with two levels of nested subvolumes through a real "autosync serve" (tcp,
serve.conf) and the real sshd, between two loop-mounted btrfs file systems:
full then incremental, each subvolume from its own newest common snapshot
(btrfs send -p per subvolume, received_uuid = the source snapshot UUID),
contents compared with rsync -naHAXc and a manifest; a child added and one
removed between runs (created on the destination, its snapshots deleted on
both sides); -N replicates only the top; an untrusted sender is refused
before anything is received, a pull without --trust before it connects;
a pull publishes the snapshot it received whatever name a hostile
server gives it.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-btrfs.sh"
. "$TEST_DIRECTORY/lib-net.sh"

test_have_prereq BTRFS || test_skip_all "needs root, btrfs-progs and btrfs in the kernel"
net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY
A=$T/a
B=$T/b
SA=$A/.autosync-snapshots/@home		# the source's snapshot directory
# received_ok SRC_SNAPDIR DST_SNAPDIR: one received snapshot, the
# source's newest, whose received_uuid is that snapshot's UUID
received_ok() {
	local s
	s=$(autosync_snaps "$2") &&
	test "$(echo "$s" | wc -l)" = 1 &&
	test "$s" = "$(autosync_snaps "$1" | tail -n 1)" &&
	btrfs_ro "$2/$s" &&
	received_is "$2/$s" "$1/$s"
}
# tree_ok DST SNAPDIR: DST is the source's tree, every nested subvolume
# a read-only subvolume there, received from its own snapshot
tree_ok() {
	local d=$1 sd=$2 c r
	assert_same_tree "$A/@home" "$d" &&
	btrfs_ro "$d" && received_ok "$SA" "$sd" &&
	for c in $(cd "$SA/children" && ls); do
		r=$(printf '%s' "$c" | sed 's/%2F/\//g') &&
		is_subvol "$d/$r" && btrfs_ro "$d/$r" &&
		received_ok "$SA/children/$c" "$sd/children/$c" || return 1
	done
}
# the stream figures of sync -v ("sent 4 subvolumes, 1.2 MiB of ...")
sent_line() { grep -o 'sent [0-9]* subvolumes\?, [^ ]* [^ ]*' "$1"; }

test_expect_success 'setup: a tree with two levels of nested subvolumes, a server' '
	btrfs_fs a && btrfs_fs b && btrfs_shim_install &&
	btrfs subvolume create "$A/@home" >/dev/null &&
	mkfixture "$A/@home/tree" every-kind &&
	echo top >"$A/@home/f" &&
	btrfs subvolume create "$A/@home/sub" >/dev/null &&
	head -c 300000 /dev/urandom >"$A/@home/sub/data" &&
	ln "$A/@home/sub/data" "$A/@home/sub/link" &&
	setfattr -n user.k -v v "$A/@home/sub/data" &&
	btrfs subvolume create "$A/@home/sub/deep" >/dev/null &&
	echo deep >"$A/@home/sub/deep/g" && mkdir "$A/@home/sub/deep/d" &&
	mkdir "$A/@home/dir" && btrfs subvolume create "$A/@home/dir/other" >/dev/null &&
	echo other >"$A/@home/dir/other/h" &&
	mkdir "$B/m" "$B/pulls" &&
	btrfs_serve "$A" "$B"
'

test_expect_success 'push over tcp: the whole tree, full then incremental' '
	shimmed btrfs_as alice -v "btrfs:$A/@home" "$(btrfs_url $B/home)" >out 2>&1 &&
	cat out && grep "full to autosync_" out && grep "sent 4 subvolumes" out &&
	test "$(grep -c "^send " "$BTRFS_SHIM_LOG")" = 4 &&
	test "$(btrfs_srv_receives)" = 4 &&
	sent_line out >push-full &&
	tree_ok "$B/home" "$B/.autosync-snapshots/home" &&
	echo more >>"$A/@home/f" && echo more >>"$A/@home/sub/deep/g" &&
	rm "$A/@home/sub/link" && echo new >"$A/@home/dir/other/n" &&
	shimmed btrfs_as alice -v "btrfs:$A/@home" "$(btrfs_url $B/home)" >out 2>&1 &&
	cat out && grep "incremental from autosync_" out &&
	test "$(grep -c "^send .*-p " "$BTRFS_SHIM_LOG")" = 4 &&
	sent_line out >push-incr && cat push-full push-incr &&
	tree_ok "$B/home" "$B/.autosync-snapshots/home" &&
	test "$(autosync_snaps "$SA/children/sub%2Fdeep" | wc -l)" = 1
'

test_expect_success 'push: a child added and one removed between runs' '
	btrfs subvolume create "$A/@home/sub/new" >/dev/null &&
	echo n >"$A/@home/sub/new/x" &&
	btrfs subvolume delete "$A/@home/dir/other" >/dev/null &&
	shimmed btrfs_as alice -v "btrfs:$A/@home" "$(btrfs_url $B/home)" >out 2>&1 &&
	cat out && grep "sent 4 subvolumes" out &&
	grep -c "^send .*-p " "$BTRFS_SHIM_LOG" >n && test "$(cat n)" = 3 &&
	tree_ok "$B/home" "$B/.autosync-snapshots/home" &&
	is_subvol "$B/home/sub/new" && test_path_is_missing "$B/home/dir/other" &&
	test_path_is_missing "$SA/children/dir%2Fother" &&
	test_path_is_missing "$B/.autosync-snapshots/home/children/dir%2Fother"
'

test_expect_success 'pull over tcp: the whole tree, full, incremental, a child added and one removed' '
	btrfs_as alice -v --trust 127.0.0.1 "$(btrfs_url $A/@home)" "btrfs:$B/pulls/home" >out 2>&1 &&
	cat out && grep "full to autosync_" out && grep "sent 4 subvolumes" out &&
	sent_line out >pull-full &&
	tree_ok "$B/pulls/home" "$B/pulls/.autosync-snapshots/home" &&
	echo again >>"$A/@home/sub/data" && echo again >"$A/@home/sub/new/y" &&
	btrfs subvolume create "$A/@home/dir/third" >/dev/null &&
	echo t >"$A/@home/dir/third/z" &&
	btrfs subvolume delete "$A/@home/sub/deep" >/dev/null &&
	: >"$BTRFS_SHIM_LOG" &&
	btrfs_as alice -v --trust 127.0.0.1 "$(btrfs_url $A/@home)" "btrfs:$B/pulls/home" >out 2>&1 &&
	cat out && grep "incremental from autosync_" out &&
	grep "sent 4 subvolumes" out && sent_line out >pull-incr &&
	test "$(grep -c "^send .*-p " "$BTRFS_SHIM_LOG")" = 3 &&
	test "$(grep -c "^send " "$BTRFS_SHIM_LOG")" = 4 &&
	cat pull-full pull-incr &&
	tree_ok "$B/pulls/home" "$B/pulls/.autosync-snapshots/home" &&
	is_subvol "$B/pulls/home/dir/third" &&
	test_path_is_missing "$B/pulls/home/sub/deep" &&
	test_path_is_missing "$B/pulls/.autosync-snapshots/home/children/sub%2Fdeep" &&
	test_path_is_missing "$SA/children/sub%2Fdeep"
'

test_expect_success 'the push destination follows the same changes' '
	btrfs_as alice "btrfs:$A/@home" "$(btrfs_url $B/home)" &&
	tree_ok "$B/home" "$B/.autosync-snapshots/home" &&
	test_path_is_missing "$B/home/sub/deep"
'

test_expect_success 'a child whose stream is cut: the previous view stays, the next run completes' '
	head -c 400000 /dev/urandom >"$A/@home/sub/new/big" &&
	manifest "$B/home" >before &&
	BTRFS_SHIM_TRUNCATE=2000 test_must_fail shimmed btrfs_as alice \
		"btrfs:$A/@home" "$(btrfs_url $B/home)" 2>err &&
	cat err && grep "nested" err &&
	manifest "$B/home" >after && test_cmp before after &&
	btrfs_as alice "btrfs:$A/@home" "$(btrfs_url $B/home)" &&
	tree_ok "$B/home" "$B/.autosync-snapshots/home"
'

test_expect_success 'a modified child of the view is refused before anything is received' '
	btrfs property set -ts "$B/home/sub" ro false &&
	n0=$(btrfs_srv_receives) && echo x >>"$A/@home/f" &&
	test_must_fail btrfs_as alice "btrfs:$A/@home" "$(btrfs_url $B/home)" 2>err &&
	cat err && grep "made writable" err && test "$(btrfs_srv_receives)" = "$n0" &&
	btrfs_as alice -F "btrfs:$A/@home" "$(btrfs_url $B/home)" &&
	tree_ok "$B/home" "$B/.autosync-snapshots/home"
'

test_expect_success '-N replicates only the top, both ways' '
	btrfs_as alice -N "btrfs:$A/@home" "$(btrfs_url $B/flat)" &&
	test "$(cat "$B/flat/f")" = "$(cat "$A/@home/f")" &&
	test_path_is_missing "$B/flat/sub/data" && ! is_subvol "$B/flat/sub" &&
	test_path_is_missing "$B/.autosync-snapshots/flat/children" &&
	btrfs_as alice -N --trust 127.0.0.1 "$(btrfs_url $A/@home)" "btrfs:$B/pulls/flat" &&
	test "$(cat "$B/pulls/flat/f")" = "$(cat "$A/@home/f")" &&
	test_path_is_missing "$B/pulls/flat/sub/data" &&
	test_path_is_missing "$B/pulls/.autosync-snapshots/flat/children"
'

test_expect_success 'an untrusted sender of a tree is refused before anything is received' '
	n0=$(btrfs_srv_receives) &&
	{ btrfs_as mallory "btrfs:$A/@home" "$(btrfs_url $B/m/home)" 2>err; test $? = 21; } &&
	cat err && grep "not trusted" err &&
	test "$(btrfs_srv_receives)" = "$n0" && test -z "$(ls -A "$B/m")" &&
	{ btrfs_as alice "$(btrfs_url $A/@home)" "btrfs:$B/pulls/untrusted" 2>err; test $? = 21; } &&
	cat err && grep "not configured as trusted" err &&
	! test -e "$B/pulls/untrusted"
'

test_expect_success 'push and pull of the tree over tls (a certificate with a trusted grant)' '
	fp=$(openssl x509 -in "$T/keys-alice/client.crt" -noout -fingerprint -sha256 | sed "s/.*=//") &&
	cat >serve-tls.conf <<-EOF &&
	client carol cert SHA256:$fp
	allow carol btrfs:$B rw trusted
	allow carol btrfs:$A ro
	EOF
	net_serve tls --tls --cert "$T/keys-alice/server.crt" --key "$T/keys-alice/server.key" \
		--ca "$T/keys-alice/ca.crt" --config "$T/serve-tls.conf" &&
	tls() {
		net_deadline 60 autosync sync --cert "$T/keys-alice/client.crt" \
			--key "$T/keys-alice/client.key" --ca "$T/keys-alice/ca.crt" "$@"
	} &&
	U=tls://127.0.0.1:$SERVE_PORT &&
	tls "btrfs:$A/@home" "$U/btrfs:$B/viatls" &&
	tree_ok "$B/viatls" "$B/.autosync-snapshots/viatls" &&
	echo tls >"$A/@home/sub/new/t" &&
	tls -v "btrfs:$A/@home" "$U/btrfs:$B/viatls" >out &&
	grep "incremental from" out &&
	tree_ok "$B/viatls" "$B/.autosync-snapshots/viatls" &&
	tls --trust 127.0.0.1 "$U/btrfs:$A/@home" "btrfs:$B/tlspull" &&
	tree_ok "$B/tlspull" "$B/.autosync-snapshots/tlspull"
'

test_expect_success SSHD 'push and pull of the tree over the real sshd' '
	net_sshd_start &&
	AUTOSYNC_SSH=$NET_SSH net_deadline 60 autosync sync "btrfs:$A/@home" \
		"$SSH_URL_BASE/btrfs:$B/viassh" &&
	tree_ok "$B/viassh" "$B/.autosync-snapshots/viassh" &&
	AUTOSYNC_SSH=$NET_SSH net_deadline 60 autosync sync --trust 127.0.0.1 \
		"$SSH_URL_BASE/btrfs:$A/@home" "btrfs:$B/sshpull" &&
	tree_ok "$B/sshpull" "$B/.autosync-snapshots/sshpull"
'

test_expect_success 'setup: a hostile server (an ssh that rewrites what GO names)' '
	# "autosync serve --stdio --root $EVIL_ROOT" here, every GO answer
	# naming $EVIL_NAME.  Frames: u32 len, u8 type, payload; RESULT (4):
	# u8 code, u8 class, u32 flags (GO 0x20), 4 x u64, u16 + the name.
	cat >evil-ssh <<-\EOF &&
	#!/usr/bin/python3
	import os, struct, subprocess, sys
	root, name = os.environ["EVIL_ROOT"], os.environ["EVIL_NAME"].encode()
	p = subprocess.Popen(["autosync", "serve", "--stdio", "--root", root],
	                     stdout=subprocess.PIPE)
	i, o = p.stdout, sys.stdout.buffer
	def take(n):
	    b = b""
	    while len(b) < n:
	        c = i.read(n - len(b))
	        if not c:
	            sys.exit(p.wait())
	        b += c
	    return b
	while True:
	    n, = struct.unpack("<I", take(4))
	    f = take(n)
	    if f[0] == 4 and struct.unpack_from("<I", f, 3)[0] & 0x20:
	        k = 41 + struct.unpack_from("<H", f, 39)[0]
	        f = f[:39] + struct.pack("<H", len(name)) + name + f[k:]
	    o.write(struct.pack("<I", len(f)) + f)
	    o.flush()
	EOF
	chmod +x evil-ssh &&
	btrfs subvolume create "$A/@solo" >/dev/null && echo solo >"$A/@solo/f" &&
	btrfs subvolume create "$B/secret" >/dev/null && echo secret >"$B/secret/s"
'

test_expect_success 'a pull publishes what it received, never a snapshot the server names' '
	EVIL_ROOT=$A EVIL_NAME=../../secret AUTOSYNC_SSH=$T/evil-ssh \
		net_deadline 60 autosync sync -v --trust evil \
		"ssh://evil/btrfs:/@solo" "btrfs:$B/evil" >out 2>&1;
	cat out &&
	test_path_is_missing "$B/evil/s" && assert_same_tree "$A/@solo" "$B/evil"
'

test_expect_success 'no sanitizer report in the server logs' '
	net_logs_clean
'

test_done
