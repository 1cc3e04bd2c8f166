#!/bin/bash
test_description='transport: tls:// (TLS 1.3, mutual certificates)

"autosync keygen" makes a CA and a server and a client certificate;
"autosync serve --tls" on a free port.  Push and pull give the same tree;
a client that trusts another CA, or a client certificate from another CA,
is refused with AUTH (21) and nothing is created; a TLS 1.2 or
certificate-less handshake fails; the file contents never cross the wire
in clear (recorded through the fault proxy); tls and tcp do not mix.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY
MARKER=autosync-plaintext-marker-6003

# sync_tls [OPTIONS] SRC DST, with the client identity of keys/
sync_tls() {
	net_deadline 60 autosync sync --cert "$T/keys/client.crt" \
		--key "$T/keys/client.key" --ca "$T/keys/ca.crt" "$@"
}

tls_url() { echo "tls://127.0.0.1:${2:-$TLS_PORT}/$1"; }

test_expect_success 'setup: keygen makes the files, keys private' '
	net_deadline 30 autosync keygen --out keys &&
	( for f in psk.key ca.crt server.crt server.key client.crt client.key; do
		test_path_is_file keys/$f || exit 1
	done ) &&
	( for f in psk.key server.key client.key; do
		test "$(stat -c %a keys/$f)" = 600 || { echo "mode of $f"; exit 1; }
	done ) &&
	net_deadline 30 autosync keygen --out keys2 &&
	! cmp -s keys/ca.crt keys2/ca.crt &&
	mkdir root &&
	mkfixture src every-kind &&
	mkfixture small small &&
	for i in $(seq 200); do echo "$MARKER $i"; done >small/marker
'

test_expect_success 'keygen refuses to overwrite existing keys' '
	cp keys/client.key client.key.before &&
	net_deadline 30 autosync keygen --out keys 2>err; rc=$? &&
	cat err &&
	cmp keys/client.key client.key.before &&
	test $rc != 0 && net_not_crash $rc
'

test_expect_success OPENSSL 'the certificates chain to the CA' '
	openssl verify -CAfile keys/ca.crt keys/server.crt keys/client.crt &&
	test_must_fail openssl verify -CAfile keys2/ca.crt keys/server.crt
'

test_expect_success 'serve --tls starts' '
	net_serve tls --tls --cert "$T/keys/server.crt" --key "$T/keys/server.key" \
		--ca "$T/keys/ca.crt" --root "$T/root" &&
	TLS_PORT=$SERVE_PORT TLS_PID=$SERVE_PID TLS_LOG=$SERVE_LOG
'

test_expect_success 'push: full sync to tls:// gives the same tree' '
	sync_tls src "$(tls_url dst)" &&
	assert_same_tree src root/dst
'

test_expect_success 'push: incremental' '
	mkfixture src mutate &&
	sync_tls src "$(tls_url dst)" &&
	assert_same_tree src root/dst
'

test_expect_success 'pull: full and incremental' '
	sync_tls "$(tls_url dst)" pulled &&
	assert_same_tree src pulled &&
	cp -a small root/origin &&
	sync_tls "$(tls_url origin)" pulled-origin &&
	assert_same_tree small pulled-origin &&
	echo changed >root/origin/a/f1 &&
	sync_tls "$(tls_url origin)" pulled-origin &&
	assert_same_tree root/origin pulled-origin
'

test_expect_success 'a client that trusts another CA is refused: 21, nothing created' '
	net_ls_root root >ls.before &&
	test_expect_code 21 net_deadline 30 autosync sync \
		--cert keys/client.crt --key keys/client.key --ca keys2/ca.crt \
		small "$(tls_url wrong-ca)" 2>err &&
	cat err &&
	net_ls_root root >ls.after && test_cmp ls.before ls.after
'

test_expect_success 'a client certificate from another CA is refused: 21' '
	net_ls_root root >ls.before &&
	test_expect_code 21 net_deadline 30 autosync sync \
		--cert keys2/client.crt --key keys2/client.key --ca keys/ca.crt \
		small "$(tls_url wrong-client)" 2>err &&
	cat err &&
	net_ls_root root >ls.after && test_cmp ls.before ls.after &&
	test_grep -i "127.0.0.1" "$TLS_LOG"
'

test_expect_success 'the same refusals for a pull; nothing created locally' '
	test_expect_code 21 net_deadline 30 autosync sync \
		--cert keys/client.crt --key keys/client.key --ca keys2/ca.crt \
		"$(tls_url dst)" pulled-wrong 2>err &&
	test_expect_code 21 net_deadline 30 autosync sync \
		--cert keys2/client.crt --key keys2/client.key --ca keys/ca.crt \
		"$(tls_url dst)" pulled-wrong 2>err &&
	test_path_is_missing pulled-wrong
'

test_expect_success 'a certificate that does not match its key is refused' '
	net_deadline 30 autosync sync \
		--cert keys/client.crt --key keys2/client.key --ca keys/ca.crt \
		small "$(tls_url mismatch)" 2>err; rc=$? &&
	cat err &&
	test $rc != 0 && net_not_crash $rc &&
	test_path_is_missing root/mismatch
'

test_expect_success 'the server certificate used as a client certificate is refused' '
	net_deadline 30 autosync sync \
		--cert keys/server.crt --key keys/server.key --ca keys/ca.crt \
		small "$(tls_url as-server)" 2>err; rc=$? &&
	cat err &&
	test $rc != 0 && net_not_crash $rc &&
	test_path_is_missing root/as-server
'

test_expect_success OPENSSL 'TLS 1.3 only; no session without a client certificate' '
	echo | net_deadline 10 openssl s_client -connect 127.0.0.1:$TLS_PORT \
		-tls1_2 -CAfile keys/ca.crt -cert keys/client.crt -key keys/client.key \
		>s12.out 2>&1; rc12=$? &&
	echo | net_deadline 10 openssl s_client -connect 127.0.0.1:$TLS_PORT \
		-tls1_3 -CAfile keys/ca.crt -cert keys/client.crt -key keys/client.key \
		>s13.out 2>&1 &&
	cat s13.out | head -n 40 &&
	test $rc12 != 0 &&
	test_grep -q "TLSv1.3" s13.out &&
	test_grep -q "Verify return code: 0" s13.out &&
	net_ls_root root >ls.before &&
	printf "GARBAGE\n" | net_deadline 10 openssl s_client \
		-connect 127.0.0.1:$TLS_PORT -tls1_3 -CAfile keys/ca.crt \
		>snocert.out 2>&1;
	net_ls_root root >ls.after && test_cmp ls.before ls.after &&
	net_wait_listen $TLS_PORT $TLS_PID
'

test_expect_success 'file contents never cross the wire in clear' '
	net_proxy rec $TLS_PORT --record "$NET_DIR/tls-rec" &&
	sync_tls small "$(tls_url marked $PROXY_PORT)" &&
	assert_same_tree small root/marked &&
	sync_tls "$(tls_url marked $PROXY_PORT)" pulled-marked &&
	assert_same_tree small pulled-marked &&
	net_kill $PROXY_PID &&
	test $(file_size "$NET_DIR/tls-rec.c2s") -gt 1000 &&
	test $(file_size "$NET_DIR/tls-rec.s2c") -gt 1000 &&
	! grep -a -q "$MARKER" "$NET_DIR/tls-rec.c2s" &&
	! grep -a -q "$MARKER" "$NET_DIR/tls-rec.s2c" &&
	! grep -a -q "hard-f2" "$NET_DIR/tls-rec.c2s" &&
	! grep -a -q "hard-f2" "$NET_DIR/tls-rec.s2c"
'

test_expect_success 'tls and tcp do not mix; the client fails cleanly' '
	net_serve plain --key "$T/keys/psk.key" --root "$T/root" &&
	tcp_port=$SERVE_PORT tcp_pid=$SERVE_PID &&
	net_ls_root root >ls.before &&
	net_deadline 30 autosync sync --cert keys/client.crt \
		--key keys/client.key --ca keys/ca.crt \
		small "tls://127.0.0.1:$tcp_port/mix1" 2>err; rc=$? &&
	cat err && test $rc != 0 && net_not_crash $rc &&
	net_ls_root root >ls.after && test_cmp ls.before ls.after &&
	net_kill $tcp_pid
'

test_expect_success 'a bit flipped on the TLS wire: AUTH or CHECKSUM, nothing committed' '
	sync_tls small "$(tls_url flipped)" &&
	manifest root/flipped >flipped.before &&
	test_bytes 3000000 flip >small/big-for-flip &&
	net_proxy flip $TLS_PORT --flip 1500000:3 &&
	net_deadline 60 autosync sync --cert keys/client.crt \
		--key keys/client.key --ca keys/ca.crt \
		small "$(tls_url flipped $PROXY_PORT)" 2>err; rc=$? &&
	cat err && cat "$PROXY_LOG" &&
	net_kill $PROXY_PID &&
	echo "exit $rc" &&
	test_grep -q "fault conn=1 flip" "$PROXY_LOG" &&
	# The server detects the bad record (AUTH); the client sees AUTH, or
	# IO when the server'"'"'s close resets the connection before its alert
	# is read (a race, reported).
	net_rc_in $rc 21 11 40 &&
	test_grep -Ei "mac|decrypt|auth|integrity|tag" "$TLS_LOG" &&
	assert_manifest root/flipped flipped.before
'

test_expect_success 'no sanitizer report or internal error in the server logs' '
	net_logs_clean
'

test_done
