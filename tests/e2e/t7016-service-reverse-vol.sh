#!/bin/bash
test_description='service: reverse (failback) of volume services

vol:A -> vol:B (image files) reversed to vol:B -> vol:A: the first run
after it is incremental (only the blocks written on B travel), and so is
the run after a second reverse; the old destination keeps no record (a
sync into it again needs -F).  An old source written since the common
snapshot is refused (exit 20, the first changed block named, nothing
swapped) unless --force, whose first run rolls it back to the new
source with only the differing blocks sent (sha256 equal afterwards).
Two loop devices (root): the records in the state directory.  Over tcp
(a real "autosync serve --listen" with a serve.conf): a push becomes
a pull and back, a pull becomes a push, the server changed since is
refused then forced, a read-only client is denied (exit 14) and nothing
changes on either side.  Over ssh (a real sshd, root): a pull becomes a
push and back.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-vol.sh"
. "$TEST_DIRECTORY/lib-net.sh"
. "$TEST_DIRECTORY/lib-service.sh"

T=$TRASH_DIRECTORY
SRV_STATE=$T/server-state

# small: some blocks sent, far fewer than the 8 MiB volume
small() {
	local n
	n=$(autosync get "$1" bytes_sent) && echo "# $1: $n bytes sent" &&
	test "$n" -gt 0 && test "$n" -lt 600000
}
# blocks IMG SEEK N: N random 64 KiB blocks from block SEEK on
blocks() {
	dd if=/dev/urandom of="$1" bs=$BS count="$3" seek="$2" \
		conv=notrunc,fsync status=none
}
same_vol() { test "$(sha "$1")" = "$(sha "$2")"; }

test_expect_success 'local: reverse, the first run is incremental' '
	head -c $((8 * MIB)) /dev/urandom >A.img &&
	autosync create v --source "vol:$T/A.img" --dest "vol:$T/B.img" \
		--every 1d --trace-level 2 &&
	autosync run v &&
	same_vol A.img B.img &&
	test -f B.img.autosync &&
	autosync reverse v &&
	prop_is v source "vol:$T/B.img" &&
	prop_is v dest "vol:$T/A.img" &&
	log_has v "reversed: source .vol:.*B.img., destination .vol:.*A.img." &&
	test ! -e B.img.autosync &&
	grep "^state complete" A.img.autosync &&
	blocks B.img 10 2 &&
	autosync run v &&
	small v &&
	log_has v "incremental from" &&
	same_vol A.img B.img
'

test_expect_success 'local: reverse back, incremental again' '
	autosync reverse v &&
	prop_is v source "vol:$T/A.img" &&
	test ! -e A.img.autosync &&
	blocks A.img 40 3 &&
	autosync run v &&
	small v &&
	same_vol A.img B.img
'

test_expect_success 'local: a source written since is refused; --force rolls it back' '
	sha B.img >b.sha &&
	blocks A.img 70 4 &&
	test_expect_code 20 autosync reverse v 2>err &&
	cat err &&
	test_grep "changed since .*first: block 70" err &&
	prop_is v source "vol:$T/A.img" &&
	test ! -e A.img.autosync &&
	test -f B.img.autosync &&
	autosync reverse --force v &&
	prop_is v source "vol:$T/B.img" &&
	same_vol A.img B.img &&
	test "$(sha A.img)" = "$(cat b.sha)" &&
	small v &&
	blocks B.img 5 1 &&
	autosync run v &&
	small v &&
	same_vol A.img B.img &&
	autosync destroy v
'

if test "$(id -u)" = 0 && command -v losetup >/dev/null &&
   test -e /dev/loop-control && truncate -s 1M probe.img &&
   probe=$(losetup -f --show probe.img 2>/dev/null); then
	losetup -d "$probe"
	test_set_prereq LOOP
	rm -f probe.img
else
	say "# skipping loop device tests: losetup unavailable or not root"
fi
# rec DEV: a device's record in the state directory
rec() { echo "$AUTOSYNC_STATE_DIR/volumes/$(echo "$1" | sed "s,/,%2F,g")"; }

test_expect_success LOOP 'block devices: reverse, records in the state directory' '
	head -c $((8 * MIB)) /dev/urandom >L1.img && truncate -s 8M L2.img &&
	d1=$(losetup -f --show L1.img) &&
	test_when_finished "losetup -d $d1" &&
	d2=$(losetup -f --show L2.img) &&
	test_when_finished "losetup -d $d2" &&
	autosync sync -F "vol:$d1" "vol:$d2" &&
	autosync create d --source "vol:$d1" --dest "vol:$d2" --every 1d \
		--trace-level 2 &&
	autosync run d &&
	test -f "$(rec $d2)" && test ! -e "$(rec $d1)" &&
	autosync reverse d &&
	prop_is d source "vol:$d2" &&
	test ! -e "$(rec $d2)" &&
	grep "^state complete" "$(rec $d1)" &&
	blocks "$d2" 9 2 &&
	autosync run d &&
	small d &&
	same_vol "$d1" "$d2" &&
	autosync destroy d
'

test_expect_success 'setup: a tcp server, rw and ro clients' '
	net_has_serve &&
	net_deadline 30 autosync keygen --out keys --client rw >/dev/null &&
	net_deadline 30 autosync keygen --out keys2 --client ro >/dev/null &&
	mkdir root &&
	cat >serve.conf <<-EOF &&
	client rw key $T/keys/psk.key
	client ro key $T/keys2/psk.key
	allow rw $T/root rw
	allow ro $T/root ro
	EOF
	AUTOSYNC_STATE_DIR=$SRV_STATE \
		net_serve tcp --config "$T/serve.conf" &&
	U=tcp://127.0.0.1:$SERVE_PORT/vol:$T
'

test_expect_success 'push over tcp: reverse makes it a pull, and back' '
	head -c $((8 * MIB)) /dev/urandom >P.img &&
	autosync create p --source "vol:$T/P.img" --dest "$U/root/R.img" \
		--key "$T/keys/psk.key" --every 1d --trace-level 2 &&
	net_deadline 60 autosync run p &&
	same_vol P.img root/R.img &&
	net_deadline 60 autosync reverse p &&
	prop_is p source "$U/root/R.img" &&
	prop_is p dest "vol:$T/P.img" &&
	test ! -e root/R.img.autosync &&
	blocks root/R.img 20 2 &&
	net_deadline 60 autosync run p &&
	small p &&
	same_vol P.img root/R.img &&
	net_deadline 60 autosync reverse p &&
	prop_is p source "vol:$T/P.img" &&
	blocks P.img 30 2 &&
	net_deadline 60 autosync run p &&
	small p &&
	same_vol P.img root/R.img
'

test_expect_success 'read-only access: reverse is denied, nothing changes' '
	head -c $((2 * MIB)) /dev/urandom >O.img &&
	net_deadline 60 autosync sync --key "$T/keys/psk.key" "vol:$T/O.img" \
		"$U/root/O.img" &&
	autosync create o --source "vol:$T/O.img" --dest "$U/root/O.img" \
		--key "$T/keys2/psk.key" --every 1d &&
	ls -l --time-style=full-iso root "$SRV_STATE" >before &&
	test_expect_code 14 net_deadline 60 autosync reverse o 2>err &&
	cat err &&
	prop_is o source "vol:$T/O.img" &&
	test ! -e O.img.autosync &&
	ls -l --time-style=full-iso root "$SRV_STATE" >after &&
	test_cmp before after &&
	grep "^state complete" root/O.img.autosync &&
	autosync destroy o
'

test_expect_success 'pull over tcp: the server changed since is refused, then forced' '
	head -c $((8 * MIB)) /dev/urandom >root/Q.img &&
	autosync create q --source "$U/root/Q.img" --dest "vol:$T/Q2.img" \
		--key "$T/keys/psk.key" --every 1d --trace-level 2 &&
	net_deadline 60 autosync run q &&
	same_vol root/Q.img Q2.img &&
	blocks root/Q.img 60 3 &&
	test_expect_code 20 net_deadline 60 autosync reverse q 2>err &&
	cat err &&
	test_grep "changed since" err &&
	prop_is q source "$U/root/Q.img" &&
	test ! -e root/Q.img.autosync &&
	net_deadline 60 autosync reverse --force q &&
	prop_is q source "vol:$T/Q2.img" &&
	prop_is q dest "$U/root/Q.img" &&
	same_vol root/Q.img Q2.img &&
	small q &&
	test ! -e Q2.img.autosync &&
	blocks Q2.img 7 1 &&
	net_deadline 60 autosync run q &&
	small q &&
	same_vol root/Q.img Q2.img
'

test_expect_success SSHD 'pull over ssh: reverse makes it a push, and back' '
	net_sshd_start &&
	export AUTOSYNC_SSH=$NET_SSH &&
	head -c $((8 * MIB)) /dev/urandom >H.img &&
	autosync create h --source "$SSH_URL_BASE/vol:$T/H.img" \
		--dest "vol:$T/H2.img" --every 1d --trace-level 2 &&
	net_deadline 60 autosync run h &&
	same_vol H.img H2.img &&
	net_deadline 60 autosync reverse h &&
	prop_is h source "vol:$T/H2.img" &&
	prop_is h dest "$SSH_URL_BASE/vol:$T/H.img" &&
	grep "^state complete" H.img.autosync &&
	blocks H2.img 33 2 &&
	net_deadline 60 autosync run h &&
	small h &&
	same_vol H.img H2.img &&
	net_deadline 60 autosync reverse h &&
	prop_is h source "$SSH_URL_BASE/vol:$T/H.img" &&
	blocks H.img 44 1 &&
	net_deadline 60 autosync run h &&
	small h &&
	same_vol H.img H2.img
'

test_done
