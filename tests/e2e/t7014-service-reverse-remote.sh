#!/bin/bash
test_description='service: reverse (failback) of push and pull services of
directories, over tcp (a real "autosync serve --listen" with a serve.conf),
tls (quick mode)
and ssh (a real sshd on 127.0.0.1): the server does its side through
REQUEST REVERSE; the run after a reverse, and after a second reverse, is
incremental (bytes_sent small); a changed old source is refused unless
--force, which rolls it back with the first run; a client with read-only
access is denied and nothing changes on the server.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"
. "$TEST_DIRECTORY/lib-service.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY
SRV_STATE=$T/.state-srv		# the tcp server's catalogs

tcp_url() { echo "tcp://127.0.0.1:$TCP_PORT$1"; }

# the last run's wire bytes, and its data bytes (trace level 2)
sent() { autosync get "$1" bytes_sent; }
last_data() {
	autosync log "$1" | sed -n "s/.* sent, \([0-9]*\) data bytes.*/\1/p" |
		tail -n 1
}
# small: more than nothing, far less than the 2 MB tree
small() {
	local n
	n=$(sent "$1") && echo "# $1: $n bytes sent" &&
	test "$n" -gt 0 && test "$n" -lt 300000
}

test_expect_success 'setup: keys, a tcp server with rw and ro clients, sshd' '
	net_deadline 30 autosync keygen --out keys --client rw &&
	net_deadline 30 autosync keygen --out keys2 --client ro &&
	mkdir srv &&
	cat >serve.conf <<-EOF &&
	client rw key $T/keys/psk.key
	client ro key $T/keys2/psk.key
	allow rw $T/srv rw
	allow ro $T/srv ro
	EOF
	AUTOSYNC_STATE_DIR=$SRV_STATE net_serve tcp --config "$T/serve.conf" &&
	TCP_PORT=$SERVE_PORT &&
	net_sshd_start &&
	export AUTOSYNC_SSH=$NET_SSH
'

test_expect_success 'push over tcp: reverse makes it a pull, incremental' '
	mkdir S && test_bytes 1500000 1 >S/big && test_bytes 500000 2 >S/f2 &&
	mkdir S/sub && echo y >S/sub/y &&
	autosync create p --source "$T/S" --dest "$(tcp_url "$T/srv/R")" \
		--key "$T/keys/psk.key" --every 1d --trace-level 2 &&
	net_deadline 60 autosync run p &&
	assert_same_tree S srv/R &&
	net_deadline 60 autosync reverse p &&
	prop_is p source "$(tcp_url "$T/srv/R")" &&
	prop_is p dest "$T/S" &&
	log_has p "reversed: source .*srv/R., destination .*S." &&
	AUTOSYNC_STATE_DIR=$SRV_STATE autosync snapshots -H >srv-snaps &&
	grep -q "^$T/srv/R@autosync_" srv-snaps &&
	echo appended >>srv/R/big &&
	echo new >srv/R/new &&
	mv srv/R/f2 srv/R/f2-moved &&
	net_deadline 60 autosync run p &&
	assert_same_tree srv/R S &&
	log_has p "incremental from" &&
	small p &&
	n=$(last_data p) && test "$n" -lt 300000
'

test_expect_success 'reverse twice: back to a push, incremental again' '
	net_deadline 60 autosync reverse p &&
	prop_is p source "$T/S" &&
	prop_is p dest "$(tcp_url "$T/srv/R")" &&
	test_path_is_file srv/R/.autosync/held.cat &&
	echo forward >S/forward && echo more >>S/big &&
	net_deadline 60 autosync run p &&
	assert_same_tree S srv/R &&
	small p
'

test_expect_success 'a changed local source is refused; --force rolls it back' '
	echo late >S/late &&
	test_expect_code 20 net_deadline 60 autosync reverse p 2>err &&
	test_grep "changed since .* --force rolls it back" err &&
	prop_is p source "$T/S" &&
	cp S/.autosync/held.cat held-before &&
	test_cmp held-before S/.autosync/held.cat &&
	net_deadline 60 autosync reverse --force p &&
	prop_is p source "$(tcp_url "$T/srv/R")" &&
	test_path_is_missing S/late &&
	assert_same_tree srv/R S &&
	small p
'

test_expect_success 'a changed remote source is refused by the server; --force rolls it back' '
	echo late >srv/R/late &&
	test_expect_code 20 net_deadline 60 autosync reverse p 2>err &&
	test_grep "changed since .* --force rolls it back" err &&
	prop_is p source "$(tcp_url "$T/srv/R")" &&
	cp srv/R/.autosync/held.cat held-before &&
	test_cmp held-before srv/R/.autosync/held.cat &&
	net_deadline 60 autosync reverse --force p &&
	prop_is p source "$T/S" &&
	test_path_is_missing srv/R/late &&
	assert_same_tree S srv/R &&
	small p
'

test_expect_success 'read-only access: reverse is denied, nothing changes' '
	mkdir srv/O && test_bytes 100000 3 >srv/O/a &&
	autosync create o --source "$(tcp_url "$T/srv/O")" --dest "$T/OD" \
		--key "$T/keys2/psk.key" --every 1d &&
	net_deadline 60 autosync run o &&
	assert_same_tree srv/O OD &&
	net_ls_root srv/O >before &&
	test_expect_code 14 net_deadline 60 autosync reverse o 2>err &&
	test_grep "read-only for client .ro." err &&
	grep -q "refused REVERSE .*srv/O" "$SERVE_LOG" &&
	prop_is o source "$(tcp_url "$T/srv/O")" &&
	net_ls_root srv/O >after &&
	test_cmp before after &&
	autosync destroy o
'

test_expect_success 'push over tls: reverse and run, incremental' '
	K=$T/keys && mkdir tlsroot &&
	AUTOSYNC_STATE_DIR=$SRV_STATE net_serve tls --tls \
		--cert "$K/server.crt" --key "$K/server.key" --ca "$K/ca.crt" \
		--root "$T/tlsroot" &&
	url=tls://127.0.0.1:$SERVE_PORT/L &&
	mkdir L && test_bytes 1000000 6 >L/big &&
	autosync create l --source "$T/L" --dest "$url" --key "$K/client.key" \
		--cert "$K/client.crt" --ca "$K/ca.crt" --every 1d &&
	net_deadline 60 autosync run l &&
	net_deadline 60 autosync reverse l &&
	prop_is l source "$url" &&
	echo more >>tlsroot/L/big &&
	net_deadline 60 autosync run l &&
	assert_same_tree tlsroot/L L &&
	small l &&
	autosync destroy l
'

test_expect_success SSHD 'pull over ssh: reverse makes it a push, incremental, and back' '
	mkdir P && test_bytes 1500000 4 >P/big && echo x >P/x &&
	autosync create q --source "$SSH_URL_BASE$T/P" --dest "$T/Q" \
		--every 1d --trace-level 2 &&
	net_deadline 60 autosync run q &&
	assert_same_tree P Q &&
	net_deadline 60 autosync reverse q &&
	prop_is q source "$T/Q" &&
	prop_is q dest "$SSH_URL_BASE$T/P" &&
	echo changed >>Q/big && echo new >Q/new &&
	net_deadline 60 autosync run q &&
	assert_same_tree Q P &&
	small q &&
	net_deadline 60 autosync reverse q &&
	prop_is q source "$SSH_URL_BASE$T/P" &&
	echo again >>P/big &&
	net_deadline 60 autosync run q &&
	assert_same_tree P Q &&
	small q
'

test_expect_success SSHD 'a reverse cut after the server did its part is run again' '
	mkdir P2 && test_bytes 300000 5 >P2/a &&
	autosync create q2 --source "$SSH_URL_BASE$T/P2" --dest "$T/Q2" \
		--every 1d &&
	net_deadline 60 autosync run q2 &&
	test_must_fail net_deadline 60 env AUTOSYNC_FAULT=snapstore_write:EIO \
		autosync reverse q2 2>err &&
	test_grep "is a destination now, but" err &&
	prop_is q2 source "$SSH_URL_BASE$T/P2" &&
	test_path_is_file P2/.autosync/held.cat &&
	net_deadline 60 autosync reverse q2 &&
	prop_is q2 source "$T/Q2" &&
	echo after-cut >Q2/after-cut &&
	net_deadline 60 autosync run q2 &&
	assert_same_tree Q2 P2 &&
	small q2 &&
	autosync destroy q2
'

test_expect_success SSHD 'over ssh: a changed remote source is refused; --force' '
	echo late >P/late &&
	test_expect_code 20 net_deadline 60 autosync reverse q 2>err &&
	test_grep "changed since" err &&
	prop_is q source "$SSH_URL_BASE$T/P" &&
	net_deadline 60 autosync reverse --force q &&
	prop_is q source "$T/Q" &&
	test_path_is_missing P/late &&
	assert_same_tree Q P
'

test_expect_success 'no sanitizer report in the servers logs' '
	net_logs_clean
'

test_done
