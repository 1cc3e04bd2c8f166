#!/bin/bash
test_description='service: tcp:// and tls:// destinations

key_file, cert_file and ca_file (create --key/--cert/--ca, set) are checked
when they are set; a service pushes to a real "autosync serve" over tcp
(PSK) and tls (keygen certificates) and the replica matches; a wrong key
is a permanent failure (maintenance, AUTH in show and log); a server that
is down is transient and retried with back-off; "set rate_limit" reaches
the running transfer, over tcp and on a local service.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"
. "$TEST_DIRECTORY/lib-service.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY
K=$T/keys

tcp_url() { echo "tcp://127.0.0.1:$TCP_PORT/$1"; }
tls_url() { echo "tls://127.0.0.1:$TLS_PORT/$1"; }

test_expect_success 'setup: keys, a tcp and a tls server, a daemon' '
	net_deadline 30 autosync keygen --out keys &&
	net_deadline 30 autosync keygen --out keys2 &&
	mkdir root &&
	net_serve tcp --key "$K/psk.key" --root "$T/root" &&
	TCP_PORT=$SERVE_PORT TCP_PID=$SERVE_PID &&
	net_serve tls --tls --cert "$K/server.crt" --key "$K/server.key" \
		--ca "$K/ca.crt" --root "$T/root" &&
	TLS_PORT=$SERVE_PORT TLS_PID=$SERVE_PID &&
	mkfixture src small &&
	start_daemon
'

test_expect_success 'create and set check the key files' '
	test_must_fail autosync create a --source "$T/src" \
		--dest "$(tcp_url a)" --every 1h 2>err &&
	test_grep "needs key_file" err &&
	cp keys/psk.key open.key && chmod 644 open.key &&
	test_must_fail autosync create a --source "$T/src" \
		--dest "$(tcp_url a)" --every 1h --key open.key 2>err &&
	test_grep "chmod 600" err &&
	test_must_fail autosync create a --source "$T/src" \
		--dest "$(tcp_url a)" --every 1h --key nosuch.key 2>err &&
	test_grep "nosuch.key" err &&
	test_must_fail autosync create a --source "$T/src" \
		--dest "$(tls_url a)" --every 1h --key keys/client.key \
		--cert keys/client.crt 2>err &&
	test_grep "needs key_file, cert_file and ca_file" err &&
	test_must_fail autosync create a --source "$T/src" --dest "$T/x" \
		--every 1h --key keys/psk.key 2>err &&
	test_grep "only tcp:// and tls://" err &&
	! autosync list | grep -q "^a " &&
	(cd keys && autosync create a --source "$T/src" \
		--dest "$(tcp_url a)" --every 1h --key psk.key) &&
	prop_is a key_file "$K/psk.key" &&
	autosync show a | grep -q "key_file.*$K/psk.key" &&
	test_must_fail autosync set a key_file=open.key 2>err &&
	test_grep "chmod 600" err &&
	test_must_fail autosync set a key_file= 2>err &&
	test_grep "needs key_file" err &&
	test_must_fail autosync set a cert_file="$K/client.crt" 2>err &&
	test_grep "takes key_file only" err &&
	prop_is a key_file "$K/psk.key" &&
	autosync set a key_file="$K/../keys/psk.key" &&
	# the daemon runs a new service at once, and destroy refuses a
	# running one: after that first run
	wait_for 30 prop_ge a successes 1 &&
	wait_for 30 prop_is a state online &&
	autosync destroy a
'

test_expect_success 'a service pushes over tcp and the replica matches' '
	autosync create t --source "$T/src" --dest "$(tcp_url t)" \
		--every 1h --key "$K/psk.key" &&
	net_deadline 60 autosync run t --wait &&
	assert_same_tree src root/t &&
	echo changed >src/new-file &&
	net_deadline 60 autosync run t --wait &&
	assert_same_tree src root/t &&
	prop_ge t successes 2 &&
	prop_is t state online
'

test_expect_success 'a service pushes over tls and the replica matches' '
	autosync create s --source "$T/src" --dest "$(tls_url s)" \
		--every 1h --key "$K/client.key" --cert "$K/client.crt" \
		--ca "$K/ca.crt" &&
	autosync show s | grep -q "cert_file.*client.crt" &&
	net_deadline 60 autosync run s --wait &&
	assert_same_tree src root/s &&
	prop_is s state online
'

test_expect_success 'a wrong key is permanent: maintenance, AUTH shown' '
	autosync create w --source "$T/src" --dest "$(tcp_url w)" \
		--every 1h --retries 2 --key "$K/../keys2/psk.key" &&
	test_must_fail net_deadline 60 autosync run w --wait &&
	wait_for 20 prop_is w state maintenance &&
	prop_is w last_errcode AUTH &&
	autosync show w >show.out &&
	test_grep -i "last_error.*auth" show.out &&
	autosync log w >log.out &&
	test_grep -i "auth" log.out &&
	test_path_is_missing root/w
'

test_expect_success 'a server that is down is transient: retried with back-off' '
	DOWN=$(net_free_port) &&
	autosync create d --source "$T/src" \
		--dest "tcp://127.0.0.1:$DOWN/d" --every 1h --retries 50 \
		--key "$K/psk.key" &&
	test_must_fail net_deadline 60 autosync run d --wait &&
	prop_is d state online &&
	test "$(autosync get d last_errcode)" != AUTH &&
	# the daemon retries by itself, later each time
	wait_for 20 prop_ge d consecutive_failures 3 &&
	prop_is d state online &&
	autosync show d >show.out &&
	test_grep "next_run" show.out &&
	autosync log d >log.out &&
	test_grep "127.0.0.1:$DOWN" log.out &&
	autosync disable d
'

test_expect_success 'set rate_limit reaches the running transfer' '
	mkdir big &&
	head -c $((12 * 1024 * 1024)) /dev/urandom >big/blob &&
	autosync create r --source "$T/big" --dest "$(tcp_url r)" \
		--every 1h --rate-limit 2M --key "$K/psk.key" --trace-level 2 &&
	t0=$(net_now_ms) &&
	autosync run r &&
	sleep 1 &&
	# 12 MiB at 2 MiB/s: still running after 1 s (the limit holds)
	prop_is r state running &&
	autosync set r rate_limit=20M &&
	wait_for 30 prop_ge r successes 1 &&
	t1=$(net_now_ms) &&
	echo "# 12 MiB took $((t1 - t0)) ms (at 2M throughout: 6000)" &&
	test $((t1 - t0)) -lt 4500 &&
	cmp big/blob root/r/blob &&
	log_has r "rate limit now"
'

test_expect_success 'rate_limit on a local service limits it, and set reaches it' '
	autosync create l --source "$T/big" --dest "$T/l" --every 1h \
		--rate-limit 2M --trace-level 2 2>err &&
	test_must_be_empty err &&
	t0=$(net_now_ms) &&
	autosync run l &&
	sleep 1 &&
	# 12 MiB at 2 MiB/s: still running after 1 s (the limit holds)
	prop_is l state running &&
	autosync set l rate_limit=20M 2>err &&
	test_must_be_empty err &&
	wait_for 30 prop_ge l successes 1 &&
	t1=$(net_now_ms) &&
	echo "# 12 MiB took $((t1 - t0)) ms (at 2M throughout: 6000)" &&
	test $((t1 - t0)) -lt 4500 &&
	cmp big/blob l/blob &&
	log_has l "rate limit now"
'

test_expect_success 'stop the daemon and the servers' '
	stop_daemon &&
	net_kill_group "$TCP_PID" TERM &&
	net_kill_group "$TLS_PID" TERM &&
	net_logs_clean &&
	! grep -E "AddressSanitizer|LeakSanitizer|runtime error" daemon.log
'

test_done
