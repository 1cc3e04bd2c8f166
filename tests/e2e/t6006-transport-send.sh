#!/bin/bash
test_description='transport: send DATASET@SNAP URL, and streams through every data path

"autosync send DATASET@SNAP tcp://..." pushes a stream to autosync serve
(full, incremental with -i, -F to replace); a local path instead of a URL
and -F without a URL are usage errors.  "autosync receive URL < STREAM"
moves the payload by sendfile (a stream file), by splice (a pipe) and by
copying (tls, zstd): the received tree is the same every way, and a
stream cut short is refused without touching the destination.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY
K="--key $T/keys/psk.key"

test_expect_success 'setup: keys, a tcp and a tls server, a source' '
	net_deadline 30 autosync keygen --out keys &&
	mkdir root &&
	net_serve tcp --key "$T/keys/psk.key" --root "$T/root" &&
	TCP=tcp://127.0.0.1:$SERVE_PORT &&
	net_serve tls --tls --cert "$T/keys/server.crt" --key "$T/keys/server.key" \
		--ca "$T/keys/ca.crt" --root "$T/root" &&
	TLS=tls://127.0.0.1:$SERVE_PORT &&
	mkfixture src every-kind &&
	mkdir -p src/bulk &&
	test_bytes 6000000 bulk1 >src/bulk/random &&
	autosync snapshot src@s1
'

test_expect_success 'send SNAP tcp://: a full stream, received there' '
	net_deadline 60 autosync send -v $K src@s1 "$TCP/sent" 2>err &&
	cat err &&
	test_grep "sent full stream" err &&
	assert_same_tree src root/sent
'

test_expect_success 'send -i BASE SNAP tcp://: the incremental' '
	mkfixture src mutate &&
	echo more >src/bulk/new &&
	autosync snapshot src@s2 &&
	net_deadline 60 autosync send -i @s1 $K src@s2 "$TCP/sent" &&
	assert_same_tree src root/sent
'

test_expect_success 'send of a snapshot the destination holds: CONFLICT; -F replaces' '
	net_deadline 60 autosync send $K src@s2 "$TCP/sent" 2>err; rc=$? &&
	cat err &&
	test "$rc" = 20 &&
	net_deadline 60 autosync send -F $K src@s2 "$TCP/sent" &&
	assert_same_tree src root/sent
'

test_expect_success 'send to a local path or -F without a URL: usage errors' '
	net_deadline 10 autosync send src@s2 "$T/elsewhere" 2>err; rc=$? &&
	test "$rc" = 2 && test_grep "not a remote URL" err &&
	net_deadline 10 autosync send -F src@s2 >/dev/null 2>err; rc=$? &&
	test "$rc" = 2 && test_grep "needs a URL" err &&
	test_path_is_missing "$T/elsewhere"
'

test_expect_success 'receive URL < stream file (sendfile), < pipe (splice), tls and zstd (copies): same tree' '
	autosync send src@s2 >full.as &&
	net_deadline 60 autosync receive $K "$TCP/by-file" <full.as &&
	assert_same_tree src root/by-file &&
	cat full.as | net_deadline 60 autosync receive $K "$TCP/by-pipe" &&
	assert_same_tree src root/by-pipe &&
	net_deadline 60 autosync receive $K --compress zstd:1 "$TCP/by-zstd" <full.as &&
	assert_same_tree src root/by-zstd &&
	net_deadline 60 autosync receive --cert keys/client.crt --key keys/client.key \
		--ca keys/ca.crt "$TLS/by-tls" <full.as &&
	assert_same_tree src root/by-tls
'

test_expect_success 'a stream file cut short: refused, nothing left behind' '
	head -c 3000000 full.as >cut.as &&
	net_deadline 60 autosync receive $K "$TCP/cut" <cut.as 2>err; rc=$? &&
	cat err &&
	net_not_crash "$rc" && test "$rc" != 0 &&
	test_path_is_missing root/cut/bulk
'

test_expect_success 'no sanitizer report or internal error in the server logs' '
	net_logs_clean
'

test_done
