#!/bin/bash
test_description='network faults mid-transfer over tcp:// (RELIABILITY.md E46-E49)

Each round first syncs a small tree to a fresh destination (its
"previous snapshot", whose manifest is kept), then adds ~24 MiB and
starts the sync that the fault interrupts.  After every fault the
destination must equal its previous snapshot (O1) and the next sync must
complete (O2).

In a network namespace (NETNS, NFT): an nft drop inserted mid-transfer
(blackhole) must end both sides with TIMEOUT (30) within --timeout 3 plus
a margin; "reject with tcp reset" must give a transient error (IO 40 or
TRUNCATED 10) at once, twice in a row; 5 % random loss with tbf must
still complete.  Anywhere: a killed server, a killed client, and the
fault proxy'"'"'s stall (blackhole), truncate, RST, and a bit flip in the
data (CHECKSUM 11, or AUTH 21), push and pull.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY
K=$T/keys/psk.key
TMO=3			# --timeout for the timeout cases
MARGIN_MS=2000		# what "within the timeout" may add
SERVE_TMO=()
if autosync help serve 2>&1 | grep -q -- --timeout; then
	SERVE_TMO=(--timeout "$TMO")
fi

# sync_to PORT [--ns] [OPTIONS] SRC DST-PATH-or-URL: bounded sync with K
sync_at() {
	local port=$1 pfx=()
	shift
	if test "$1" = --ns; then pfx=(ip netns exec "$NET_NS"); shift; fi
	"${pfx[@]}" timeout -k 5 60 autosync sync --key "$K" "$@"
}

# round NAME PORT [--ns]: src-NAME (the small tree) synced to root/NAME;
# its manifest in NAME.before; then the big files added to src-NAME.
round() {
	local name=$1 port=$2 ns=$3
	rm -rf "src-$name" && cp -a small "src-$name" &&
	sync_at "$port" $ns "src-$name" "tcp://127.0.0.1:$port/$name" &&
	assert_same_tree "src-$name" "root/$name" &&
	manifest "root/$name" >"$name.before" &&
	cp -a big/. "src-$name/"
}

# finish NAME PORT [--ns]: the destination is its previous snapshot; the
# next sync completes.
finish() {
	local name=$1 port=$2 ns=$3
	assert_manifest "root/$name" "$name.before" &&
	sync_at "$port" $ns "src-$name" "tcp://127.0.0.1:$port/$name" 2>err || {
		cat err; echo "the sync after the fault failed"; return 1; }
	assert_same_tree "src-$name" "root/$name"
}

# serve_log_says LOG PATTERN SECONDS: the server logged PATTERN (egrep, -i)
# after the mark (line count in $LOG_MARK) within SECONDS.
log_mark() { LOG_MARK=$(wc -l <"$1"); }
log_since() { tail -n +"$((LOG_MARK + 1))" "$1"; }
log_has_() { log_since "$SL_LOG" | grep -Eqi "$SL_PAT"; }
serve_log_says() {
	SL_LOG=$1 SL_PAT=$2
	net_wait_for "$3" log_has_ || {
		echo "the server did not log /$2/ within $3 s; its log since the mark:"
		log_since "$1"
		return 1
	}
}

test_expect_success 'setup: keys, trees, a server' '
	net_deadline 30 autosync keygen --out keys &&
	mkdir root big &&
	mkfixture small small &&
	test_bytes $((8 * 1048576)) b1 >big/big1 &&
	test_bytes $((8 * 1048576)) b2 >big/big2 &&
	test_bytes $((8 * 1048576)) b3 >big/big3 &&
	net_serve main --key "$K" --root "$T/root" "${SERVE_TMO[@]}" &&
	P=$SERVE_PORT MAIN_PID=$SERVE_PID MAIN_LOG=$SERVE_LOG
'

# --- in a namespace, with nftables

test_expect_success NETNS,NFT 'setup: a namespace, nft table, a server inside' '
	net_nft_setup &&
	net_serve ns --ns --key "$K" --root "$T/root" "${SERVE_TMO[@]}" &&
	NP=$SERVE_PORT NS_PID=$SERVE_PID NS_LOG=$SERVE_LOG
'

test_expect_success NETNS,NFT 'blackhole (nft drop) mid-transfer: TIMEOUT on both sides' '
	round bh $NP --ns &&
	test_when_finished net_unblock &&
	log_mark "$NS_LOG" &&
	net_bg bh --ns autosync sync --key "$K" --timeout $TMO --rate-limit 8M \
		src-bh "tcp://127.0.0.1:$NP/bh" &&
	sleep 1 &&
	t_block=$(net_now_ms) &&
	net_block $NP &&
	net_bg_wait 30 &&
	after=$(( $(net_now_ms) - t_block )) &&
	echo "client: exit $BG_RC, $after ms after the blackhole" &&
	serve_log_says "$NS_LOG" "timeout|timed out" $((TMO + 3)) &&
	server_ms=$(( $(net_mtime_ms "$NS_LOG") - t_block )) &&
	echo "server: logged its timeout $server_ms ms after the blackhole" &&
	test $BG_RC = 30 &&
	test $after -le $((TMO * 1000 + MARGIN_MS)) &&
	test $server_ms -le $((TMO * 1000 + MARGIN_MS)) &&
	net_unblock &&
	finish bh $NP --ns
'

# rst_cut N: one sync of src-rst cut by nft reject after 1 s
rst_cut() {
	net_bg rst$1 --ns autosync sync --key "$K" --timeout 10 \
		--rate-limit 8M src-rst "tcp://127.0.0.1:$NP/rst" &&
	sleep 1 &&
	t_cut=$(net_now_ms) &&
	net_reject $NP &&
	net_bg_wait 30 &&
	after=$(( $(net_now_ms) - t_cut )) &&
	echo "cut $1: exit $BG_RC, $after ms after the reset" &&
	net_rc_in $BG_RC 40 10 &&
	test $after -lt 3000 &&
	net_unblock &&
	assert_manifest root/rst rst.before &&
	# The server saw no reset (its peer just went silent): it ends the
	# session by its idle timeout.  With "wait", retry after that.
	if test "$2" = wait; then
		serve_log_says "$NS_LOG" "ended" $((TMO + 3))
	fi
}

test_expect_success NETNS,NFT 'RST (nft reject) mid-transfer: a transient error at once, twice' '
	round rst $NP --ns &&
	test_when_finished net_unblock &&
	log_mark "$NS_LOG" &&
	rst_cut 1 wait &&
	log_mark "$NS_LOG" &&
	rst_cut 2 &&
	# At once: the old session still holds the lock; the server waits for
	# it (up to its idle timeout + 2 s, autosync-protocol.md) rather than
	# answering "busy" (CONFLICT, a permanent error).
	t0=$(net_now_ms) &&
	finish rst $NP --ns &&
	echo "the retry took $(( $(net_now_ms) - t0 )) ms"
'

test_expect_success NETNS,NFT,TC 'a lossy, slow link (5 % drop, 40 mbit) still completes' '
	round lossy $NP --ns &&
	test_when_finished "net_unblock; net_unrate" &&
	net_rate 40mbit &&
	net_loss $NP 5 &&
	rm -f "src-lossy/big2" "src-lossy/big3" &&
	t0=$(net_now_ms) &&
	sync_at $NP --ns --timeout 10 src-lossy "tcp://127.0.0.1:$NP/lossy" 2>err; rc=$? &&
	echo "exit $rc after $(( $(net_now_ms) - t0 )) ms" && cat err &&
	test $rc = 0 &&
	assert_same_tree src-lossy root/lossy
'

# --- anywhere: killed peers

test_expect_success 'the server killed mid-transfer: the client fails at once' '
	net_serve victim --key "$K" --root "$T/root" "${SERVE_TMO[@]}" &&
	VP=$SERVE_PORT VPID=$SERVE_PID &&
	round killsrv $VP &&
	net_bg killsrv autosync sync --key "$K" --timeout 10 --rate-limit 8M \
		src-killsrv "tcp://127.0.0.1:$VP/killsrv" &&
	sleep 1 &&
	t_kill=$(net_now_ms) &&
	net_kill_group $VPID KILL &&
	net_bg_wait 30 &&
	after=$(( $(net_now_ms) - t_kill )) &&
	echo "client: exit $BG_RC, $after ms after the kill" &&
	net_rc_in $BG_RC 40 10 &&
	test $after -lt 3000 &&
	finish killsrv $P
'

test_expect_success 'the client killed mid-transfer: the server rolls back, serves on' '
	round killcli $P &&
	log_mark "$MAIN_LOG" &&
	net_bg killcli setsid autosync sync --key "$K" --rate-limit 8M \
		src-killcli "tcp://127.0.0.1:$P/killcli" &&
	sleep 1 &&
	kill -KILL -- -$BG_PID &&
	net_bg_wait 10 &&
	serve_log_says "$MAIN_LOG" "trunc|closed|eof|reset|error" 10 &&
	log_since "$MAIN_LOG" &&
	net_wait_listen $P $MAIN_PID &&
	finish killcli $P
'

# --- anywhere: the fault proxy between client and server

test_expect_success 'proxy stall (blackhole) mid-transfer: TIMEOUT within --timeout' '
	round stall $P &&
	log_mark "$MAIN_LOG" &&
	net_proxy stall $P --stall-after 4000000 &&
	sync_at $PROXY_PORT --timeout $TMO src-stall "tcp://127.0.0.1:$PROXY_PORT/stall" 2>err; rc=$? &&
	t_end=$(net_now_ms) && cat err &&
	test_grep -q "fault conn=1 stall" "$PROXY_LOG" &&
	ms=$(( t_end - $(net_proxy_fault_ms) )) &&
	echo "client: exit $rc, $ms ms after the stall" &&
	serve_log_says "$MAIN_LOG" "timeout|timed out" $((TMO + 3)) &&
	server_ms=$(( $(net_mtime_ms "$MAIN_LOG") - $(net_proxy_fault_ms) )) &&
	echo "server: logged its timeout $server_ms ms after the stall" &&
	test $rc = 30 &&
	test $ms -le $((TMO * 1000 + MARGIN_MS)) &&
	test $server_ms -le $((TMO * 1000 + MARGIN_MS)) &&
	net_kill $PROXY_PID &&
	finish stall $P
'

test_expect_success 'proxy truncate (FIN) mid-transfer: a transient error at once' '
	round trunc $P &&
	net_proxy trunc $P --truncate 5000000 &&
	t0=$(net_now_ms) &&
	sync_at $PROXY_PORT --timeout 10 src-trunc "tcp://127.0.0.1:$PROXY_PORT/trunc" 2>err; rc=$? &&
	ms=$(( $(net_now_ms) - t0 )) && cat err &&
	echo "client: exit $rc after $ms ms" &&
	test_grep -q "fault conn=1 truncate" "$PROXY_LOG" &&
	net_rc_in $rc 40 10 &&
	test $ms -lt 8000 &&
	net_kill $PROXY_PID &&
	finish trunc $P
'

test_expect_success 'proxy RST mid-transfer, push and pull: a transient error at once' '
	round prst $P &&
	net_proxy prst $P --rst 6000000 &&
	sync_at $PROXY_PORT --timeout 10 src-prst "tcp://127.0.0.1:$PROXY_PORT/prst" 2>err; rc=$? &&
	cat err && echo "push: exit $rc" &&
	net_rc_in $rc 40 10 &&
	net_kill $PROXY_PID &&
	finish prst $P &&
	sync_at $P "tcp://127.0.0.1:$P/prst" pulled-prst &&
	manifest pulled-prst >pulled-prst.before &&
	echo changed >root/prst/a/f1 &&
	test_bytes 3000000 pr >root/prst/new-big &&
	net_proxy prst-pull $P --direction s2c --rst 1500000 &&
	sync_at $PROXY_PORT --timeout 10 "tcp://127.0.0.1:$PROXY_PORT/prst" pulled-prst 2>err; rc=$? &&
	cat err && echo "pull: exit $rc" &&
	net_rc_in $rc 40 10 &&
	net_kill $PROXY_PID &&
	assert_manifest pulled-prst pulled-prst.before
'

# flip_at N:BIT: a push of src-flip with that bit flipped on the wire
flip_at() {
	net_proxy flip $P --flip $1 &&
	sync_at $PROXY_PORT --timeout 10 src-flip "tcp://127.0.0.1:$PROXY_PORT/flip" 2>err
	local rc=$?
	cat err; echo "flip at $1: exit $rc"
	net_kill $PROXY_PID
	test_grep -q "fault conn=1 flip" "$PROXY_LOG" &&
	net_rc_in $rc 11 21 &&
	assert_manifest root/flip flip.before
}

test_expect_success 'bit flips in the pushed data: CHECKSUM (or AUTH), destination unchanged' '
	round flip $P &&
	flip_at 1000000:0 &&
	flip_at 9000000:7 &&
	flip_at 20000000:3 &&
	finish flip $P
'

test_expect_success 'a bit flip in pulled data: CHECKSUM (or AUTH), local copy unchanged' '
	sync_at $P "tcp://127.0.0.1:$P/flip" pulled-flip &&
	manifest pulled-flip >pulled-flip.before &&
	echo changed >root/flip/a/f3 &&
	test_bytes 8000000 pull-new >root/flip/new-for-pull &&
	net_proxy pflip $P --direction s2c --flip 4000000:1 &&
	sync_at $PROXY_PORT --timeout 10 "tcp://127.0.0.1:$PROXY_PORT/flip" pulled-flip 2>err; rc=$? &&
	cat err && echo "exit $rc" &&
	net_kill $PROXY_PID &&
	test_grep -q "fault conn=1 flip" "$PROXY_LOG" &&
	net_rc_in $rc 11 21 &&
	assert_manifest pulled-flip pulled-flip.before &&
	sync_at $P "tcp://127.0.0.1:$P/flip" pulled-flip &&
	assert_same_tree root/flip pulled-flip
'

test_expect_success 'the servers survived every fault' '
	net_wait_listen $P $MAIN_PID &&
	if test -n "$NS_PID"; then net_wait_listen $NP $NS_PID --ns; fi
'

test_expect_success 'no sanitizer report or internal error in the server logs' '
	net_logs_clean
'

test_done
