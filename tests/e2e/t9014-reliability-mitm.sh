#!/bin/bash
test_description='RELIABILITY.md §E 54 (downgrade): a man in the middle
that edits the greeting on a live connection.

The fault proxy (tests/tools/faultproxy.py --flip) sits between a client
and "autosync serve" and flips one bit of the tcp:// handshake: the
client'"'"'s auth HELLO (version, capability flags, key id, nonce, params)
or the server'"'"'s CHALLENGE (version, accepted flags, nonce, params).  The
flags and both params are in the authenticated transcript, so every such
edit ends in AUTH (21) on the client, a refusal with the peer address in
the server'"'"'s log, and nothing created on the server.  On tls:// a bit
flipped in the ClientHello, or in a record after the handshake, ends the
connection with an error and creates nothing.  A proxy that edits
nothing lets the same sync through (the proxy path itself works).'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"
test_have_prereq PYTHON3 || test_skip_all "the fault proxy needs python3"

T=$TRASH_DIRECTORY

test_expect_success 'setup: keys, a source, serve over tcp and over tls' '
	net_deadline 30 autosync keygen --out keys &&
	mkdir root troot &&
	mkfixture src small &&
	head -c 300000 /dev/urandom >src/big &&
	net_serve tcp --key "$T/keys/psk.key" --root "$T/root" &&
	TCP_PORT=$SERVE_PORT && TCP_LOG=$SERVE_LOG &&
	net_serve tls --tls --cert "$T/keys/server.crt" \
		--key "$T/keys/server.key" --ca "$T/keys/ca.crt" \
		--root "$T/troot" &&
	TLS_PORT=$SERVE_PORT
'

# through_proxy UPSTREAM DIRECTION OFFSET:BIT URLPREFIX NAME [OPTIONS]:
# sync src to NAME through a proxy that flips that bit; its exit status
# in rc, stderr in NAME.err
through_proxy() {
	local up=$1 dir=$2 flip=$3 scheme=$4 name=$5
	shift 5
	net_proxy "$name" "$up" --direction "$dir" --flip "$flip" \
		--max-conns 1 || return 1
	net_deadline 30 autosync sync "$@" src \
		"$scheme://127.0.0.1:$PROXY_PORT/$name" 2>"$name.err"
	rc=$?
	cat "$name.err"
	net_kill "$PROXY_PID"
	return 0
}

test_expect_success 'control: through a proxy that flips nothing the sync works' '
	net_proxy clean "$TCP_PORT" --max-conns 1 &&
	net_deadline 30 autosync sync --key "$T/keys/psk.key" src \
		"tcp://127.0.0.1:$PROXY_PORT/clean" &&
	assert_same_tree src root/clean &&
	net_kill "$PROXY_PID"
'

# HELLO: u32 len | u8 type | "ASYNC-AUTH" (5..14) | u16 version (15) |
# u32 flags (17) | u8 idlen (21) | id | nonce[32] | u16 plen | params
test_expect_success '54: every edit of the auth HELLO (c2s) is refused: AUTH, nothing created, logged with the peer' '
	for spot in 15:0 16:1 17:0 17:1 18:0 20:7 21:0 22:0 30:3 40:5 \
		60:0 70:2; do
		through_proxy "$TCP_PORT" c2s "$spot" tcp "h${spot%:*}b${spot#*:}" \
			--key "$T/keys/psk.key" || return 1
		echo "flip $spot: exit $rc"
		test "$rc" = 21 || return 1
		test_grep "authentication failed" "h${spot%:*}b${spot#*:}.err" ||
			return 1
		test_path_is_missing "root/h${spot%:*}b${spot#*:}" || return 1
	done &&
	grep -c "127.0.0.1" "$TCP_LOG" &&
	grep -i "auth" "$TCP_LOG" | grep -q "127.0.0.1" &&
	test "$(ls root)" = clean
'

# CHALLENGE: u32 len | u8 type | u16 version (5) | u32 flags (7) |
# nonce_s[32] (11) | u16 plen (43) | params | proof_s[32]
test_expect_success '54: every edit of the server CHALLENGE (s2c) is refused: AUTH, nothing created' '
	for spot in 5:0 6:0 7:0 7:1 8:3 10:7 11:0 30:4 43:0 45:1; do
		through_proxy "$TCP_PORT" s2c "$spot" tcp "c${spot%:*}b${spot#*:}" \
			--key "$T/keys/psk.key" || return 1
		echo "flip $spot: exit $rc"
		test "$rc" = 21 || return 1
		test_path_is_missing "root/c${spot%:*}b${spot#*:}" || return 1
	done &&
	test "$(ls root)" = clean
'

tls_opts() {
	echo --cert "$T/keys/client.crt" --key "$T/keys/client.key" \
		--ca "$T/keys/ca.crt"
}

test_expect_success '54: tls: a bit flipped in the handshake either way, or in a record after it: an error, nothing created' '
	for spot in c2s:11:0 c2s:40:2 c2s:100:5 s2c:60:1 s2c:1200:3 \
		c2s:100000:0; do
		d=${spot%%:*} f=${spot#*:}
		through_proxy "$TLS_PORT" "$d" "$f" tls "t$d${f%:*}" \
			$(tls_opts) || return 1
		echo "flip $spot: exit $rc"
		test "$rc" != 0 && net_not_crash "$rc" || return 1
		test_path_is_missing "troot/t$d${f%:*}" || return 1
	done &&
	net_proxy tclean "$TLS_PORT" --max-conns 1 &&
	net_deadline 30 autosync sync $(tls_opts) src \
		"tls://127.0.0.1:$PROXY_PORT/tclean" &&
	net_kill "$PROXY_PID" &&
	assert_same_tree src troot/tclean &&
	test "$(ls troot)" = tclean
'

test_expect_success '54: tls: a bit flipped in the data of a pull: an error, nothing received' '
	net_proxy tpull "$TLS_PORT" --direction s2c --flip 100000:3 \
		--max-conns 1 &&
	net_deadline 30 autosync sync $(tls_opts) \
		"tls://127.0.0.1:$PROXY_PORT/tclean" pulled 2>pull.err
	rc=$? && cat pull.err && echo "exit $rc" &&
	net_kill "$PROXY_PID" &&
	test "$rc" != 0 && net_not_crash "$rc" &&
	test_grep "integrity" pull.err &&
	! test -e pulled/big
'

test_expect_success 'the servers logged no sanitizer report' '
	net_logs_clean
'

test_done
