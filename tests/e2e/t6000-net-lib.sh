#!/bin/bash
test_description='the network test infrastructure itself (lib-net.sh, faultproxy.py)

Checks with plain tools (ssh, python sockets, nc) that what the transport
tests rely on works: a real sshd on 127.0.0.1 with throwaway keys and a
session environment that finds this build of autosync; argv and forced
commands in authorized_keys; a network namespace with nft drop, reject and
loss, and tc tbf; the fault proxy'"'"'s stall, flip, truncate and RST at
exact byte offsets.  If these fail, the t6xxx and t81xx results mean
nothing.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"

# A sink server: for each connection K, stores what it receives in
# DIR/conn-K.bin and, when the client half-closes, answers "got N".
cat >"$NET_DIR/sink.py" <<-'EOF'
import socket, sys, threading, os
d, pf = sys.argv[1], sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
open(pf + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename(pf + ".tmp", pf)
n = 0
def serve(c, k):
    got = 0
    with open(os.path.join(d, "conn-%d.bin" % k), "wb") as f:
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                f.write(b); f.flush()
                got += len(b)
            c.sendall(b"got %d\n" % got)
        except OSError as e:
            open(os.path.join(d, "conn-%d.err" % k), "w").write(str(e))
    c.close()
while True:
    c, _ = s.accept()
    n += 1
    threading.Thread(target=serve, args=(c, n), daemon=True).start()
EOF

# A client: sends FILE to PORT, half-closes, prints the answer; exit 3
# on reset, 4 on timeout (TIMEOUT seconds of no progress).
cat >"$NET_DIR/client.py" <<-'EOF'
import socket, sys
port, path, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
data = open(path, "rb").read()
try:
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    ans = b""
    while True:
        b = c.recv(4096)
        if not b:
            break
        ans += b
    sys.stdout.write(ans.decode())
except ConnectionResetError as e:
    print("reset:", e, file=sys.stderr); sys.exit(3)
except BrokenPipeError as e:
    print("reset:", e, file=sys.stderr); sys.exit(3)
except socket.timeout as e:
    print("timeout:", e, file=sys.stderr); sys.exit(4)
except ConnectionRefusedError as e:
    print("refused:", e, file=sys.stderr); sys.exit(5)
EOF

# start_sink NAME [--ns]: SINK_PORT, SINK_DIR
start_sink() {
	local pfx=
	SINK_DIR=$NET_DIR/sink-$1
	mkdir -p "$SINK_DIR" && rm -f "$SINK_DIR"/*
	test "$2" = --ns && pfx="ip netns exec $NET_NS "
	test_bg "$pfx$NET_PDEATH$TEST_PYTHON $NET_DIR/sink.py $SINK_DIR $SINK_DIR/port >$SINK_DIR/log 2>&1"
	SINK_PID=$test_bg_pid
	for i in $(seq 100); do
		test -s "$SINK_DIR/port" && SINK_PORT=$(cat "$SINK_DIR/port") && return 0
		sleep 0.05
	done
	cat "$SINK_DIR/log"
	return 1
}

client() { net_deadline 30 "$TEST_PYTHON" "$NET_DIR/client.py" "$@"; }
client_ns() { net_run timeout -k 5 30 "$TEST_PYTHON" "$NET_DIR/client.py" "$@"; }

test_expect_success 'setup: payloads' '
	test_bytes 1048576 payload >one-mib &&
	test_bytes 5000 small >small
'

# --- sshd

test_expect_success SSHD 'sshd starts on a free port and ssh works' '
	net_sshd_start &&
	test -n "$SSHD_PORT" && kill -0 "$SSHD_PID" &&
	net_ssh root@127.0.0.1 echo hello >out &&
	echo hello >expect && test_cmp expect out &&
	test_grep -q "^$NET_SSH .*\[root@127.0.0.1\] \[echo\] \[hello\]" "$NET_DIR/ssh-argv.log"
'

test_expect_success SSHD 'the session finds this autosync, its own state dir and HOME' '
	net_ssh root@127.0.0.1 "command -v autosync; echo \$AUTOSYNC_STATE_DIR; echo \$HOME" >out &&
	printf "%s\n" "$TEST_META/bin/autosync" "$TRASH_DIRECTORY/.state-remote" "$HOME" >expect &&
	test_cmp expect out &&
	net_ssh root@127.0.0.1 autosync --version >out &&
	autosync --version >expect &&
	test_cmp expect out
'

test_expect_success SSHD 'remote command: argv is one string for the remote shell' '
	net_ssh root@127.0.0.1 printf "%s\\\\n" "a b" >out &&
	printf "a\nb\n" >expect &&
	test_cmp expect out
'

test_expect_success SSHD 'a forced command in authorized_keys runs instead' '
	net_sshd_add_key forced "command=\"echo forced:\$SSH_ORIGINAL_COMMAND\"" &&
	"$NET_DIR/ssh-forced" root@127.0.0.1 anything at all >out &&
	echo "forced:anything at all" >expect &&
	test_cmp expect out
'

test_expect_success SSHD 'a key whose PATH lacks autosync gets 127 (for t6001)' '
	net_sshd_add_key nobin "environment=\"PATH=/usr/bin:/bin\"" &&
	"$NET_DIR/ssh-nobin" root@127.0.0.1 "echo \$PATH" >out &&
	echo /usr/bin:/bin >expect && test_cmp expect out &&
	test_expect_code 127 "$NET_DIR/ssh-nobin" root@127.0.0.1 autosync --version
'

test_expect_success SSHD 'sshd stops by PID' '
	pid=$SSHD_PID port=$SSHD_PORT &&
	net_sshd_stop &&
	! kill -0 $pid 2>/dev/null &&
	net_port_closed $port &&
	net_sshd_start && kill -0 "$SSHD_PID" &&
	net_ssh root@127.0.0.1 true
'

# --- namespace, nft, tc

test_expect_success NETNS 'a namespace with lo up, separate from ours' '
	net_ns_setup &&
	ip netns list | grep -q "^$NET_NS\b" &&
	net_run ip -o link show lo | grep -q "UP" &&
	start_sink ns --ns &&
	net_wait_listen $SINK_PORT --ns &&
	client_ns $SINK_PORT small 5 >out &&
	echo "got 5000" >expect && test_cmp expect out &&
	test_must_fail client $SINK_PORT small 2 2>err
'

test_expect_success NETNS,NFT 'nft drop blackholes a port both ways; unblock restores' '
	net_nft_setup &&
	test_when_finished net_unblock &&
	net_block $SINK_PORT &&
	net_rules >rules && test_grep -q "dport $SINK_PORT drop" rules &&
	t0=$(net_now_ms) &&
	test_expect_code 4 client_ns $SINK_PORT small 2 &&
	test $(( $(net_now_ms) - t0 )) -ge 1900 &&
	net_unblock &&
	client_ns $SINK_PORT small 5 >out &&
	echo "got 5000" >expect && test_cmp expect out
'

test_expect_success NETNS,NFT 'nft drop inserted mid-transfer stalls the sender' '
	test_bytes 20971520 big >big &&
	test_when_finished "net_unblock; net_unrate" &&
	net_rate 40mbit &&
	{ client_ns $SINK_PORT big 3 >out 2>err; echo $? >rc; } &
	cpid=$! &&
	sleep 1 &&
	net_block $SINK_PORT &&
	wait $cpid; test "$(cat rc)" = 4 &&
	net_unblock && net_unrate &&
	ls -l "$SINK_DIR" &&
	f=$(ls -t "$SINK_DIR"/conn-*.bin | head -n 1) &&
	size=$(file_size "$f") &&
	echo "received $size of 20971520 before the blackhole" &&
	test "$size" -gt 0 && test "$size" -lt 20971520
'

test_expect_success NETNS,NFT 'nft reject gives a reset quickly' '
	test_when_finished net_unblock &&
	net_reject $SINK_PORT &&
	t0=$(net_now_ms) &&
	test_must_fail client_ns $SINK_PORT small 5 2>err &&
	test $(( $(net_now_ms) - t0 )) -lt 2000 &&
	test_grep -E "reset|refused" err &&
	net_unblock
'

test_expect_success NETNS,NFT 'nft random loss still delivers intact' '
	test_when_finished net_unblock &&
	net_loss $SINK_PORT 5 &&
	client_ns $SINK_PORT one-mib 20 >out &&
	echo "got 1048576" >expect && test_cmp expect out &&
	# one connection holds exactly the bytes sent (not always the newest
	# file: a connection stalled by an earlier test may still be writing)
	for f in "$SINK_DIR"/conn-*.bin; do
		cmp -s one-mib "$f" && break
		f=
	done && test -n "$f" &&
	net_unblock
'

test_expect_success NETNS,TC 'tc tbf limits the rate on the namespace lo' '
	test_when_finished net_unrate &&
	net_rate 8mbit &&
	t0=$(net_now_ms) &&
	client_ns $SINK_PORT one-mib 20 >out &&
	ms=$(( $(net_now_ms) - t0 )) &&
	net_unrate &&
	echo "1 MiB at 8 mbit/s took $ms ms" &&
	# net_rate bursts 256 KiB: the other 768 KiB take 786 ms at least
	# (a bound of 900 failed once, at 897 ms; unlimited is ~10 ms)
	test $ms -ge 750 && test $ms -lt 5000
'

# --- fault proxy (root namespace)

test_expect_success PYTHON3 'proxy: no fault forwards intact, both ways' '
	start_sink plain &&
	net_proxy clean $SINK_PORT &&
	client $PROXY_PORT one-mib 10 >out &&
	echo "got 1048576" >expect && test_cmp expect out &&
	cmp one-mib "$SINK_DIR/conn-1.bin" &&
	sleep 0.2 &&
	test "$(net_proxy_stat c2s)" = 1048576 &&
	test "$(net_proxy_stat s2c)" = 12 &&
	test "$(net_proxy_stat fault)" = none &&
	net_kill $PROXY_PID
'

test_expect_success PYTHON3 'proxy --flip N:BIT flips exactly one bit' '
	net_proxy flip $SINK_PORT --flip 300000:5 &&
	client $PROXY_PORT one-mib 10 >out &&
	f=$(ls -t "$SINK_DIR"/conn-*.bin | head -n 1) &&
	cmp -l one-mib "$f" >diffs || :;
	test_line_count = 1 diffs &&
	read off a b <diffs &&
	test $off = 300001 &&
	test $(( 8#$a ^ 8#$b )) = 32 &&
	net_kill $PROXY_PID
'

test_expect_success PYTHON3 'proxy --truncate N delivers exactly N bytes, then FIN' '
	net_proxy trunc $SINK_PORT --truncate 123457 &&
	client $PROXY_PORT one-mib 10 >out 2>err; rc=$? &&
	echo "client exit $rc" &&
	sleep 0.3 &&
	f=$(ls -t "$SINK_DIR"/conn-*.bin | head -n 1) &&
	test $(file_size "$f") = 123457 &&
	cmp -n 123457 one-mib "$f" &&
	test_must_be_empty out &&
	test "$(net_proxy_stat fault)" = truncate &&
	net_kill $PROXY_PID
'

test_expect_success PYTHON3 'proxy --rst N resets both sides after N bytes' '
	net_proxy rst $SINK_PORT --rst 65537 &&
	test_expect_code 3 client $PROXY_PORT one-mib 10 2>err &&
	sleep 0.3 &&
	k=$(ls -t "$SINK_DIR"/conn-*.bin | head -n 1) && k=${k%.bin} &&
	test $(file_size "$k.bin") = 65537 &&
	test_grep -i reset "$k.err" &&
	net_kill $PROXY_PID
'

test_expect_success PYTHON3 'proxy --stall-after N: N bytes, then silence, sockets open' '
	net_proxy stall $SINK_PORT --stall-after 200000 &&
	t0=$(net_now_ms) &&
	test_expect_code 4 client $PROXY_PORT one-mib 2 &&
	test $(( $(net_now_ms) - t0 )) -ge 1900 &&
	f=$(ls -t "$SINK_DIR"/conn-*.bin | head -n 1) &&
	test $(file_size "$f") = 200000 &&
	test_path_is_missing "${f%.bin}.err" &&
	net_kill $PROXY_PID
'

test_expect_success PYTHON3 'proxy --direction s2c counts the answer bytes' '
	net_proxy s2c $SINK_PORT --direction s2c --truncate 3 &&
	client $PROXY_PORT small 10 >out &&
	printf "got" >expect && test_cmp expect out &&
	net_kill $PROXY_PID
'

test_expect_success PYTHON3 'proxy --only-conn K spares the other connections' '
	net_proxy only $SINK_PORT --only-conn 2 --truncate 10 &&
	client $PROXY_PORT small 10 >out1 &&
	client $PROXY_PORT small 10 >out2 &&
	client $PROXY_PORT small 10 >out3 &&
	echo "got 5000" >expect &&
	test_cmp expect out1 && test_cmp expect out3 &&
	test_must_be_empty out2 &&
	net_kill $PROXY_PID
'

test_expect_success PYTHON3 'proxy --max-seconds bounds its life' '
	net_proxy life $SINK_PORT --max-seconds 1 &&
	pid=$PROXY_PID &&
	sleep 2 &&
	wait $pid && ! kill -0 $pid 2>/dev/null &&
	test_grep -q "max-seconds" "$PROXY_LOG"
'

test_expect_success 'servers die with a SIGKILLed test script (pdeathsig)' '
	if test -z "$NET_PDEATH"; then
		echo "no setpriv --pdeathsig here"
	else
		{ bash -c "${NET_PDEATH}sleep 60 & echo \$! >child.pid; exec sleep 60" & } &&
		parent=$! &&
		net_wait_for 5 test -s child.pid &&
		child=$(cat child.pid) &&
		kill -0 $child &&
		# the death signal is set once setpriv has run: it has when
		# the child is sleep (setpriv execs it after its prctl)
		net_wait_for 5 eval "test \"\$(cat /proc/$child/comm 2>/dev/null)\" = sleep" &&
		{ kill -KILL $parent; wait $parent; } 2>/dev/null;
		net_wait_for 5 eval "! kill -0 $child 2>/dev/null"
	fi
'

test_expect_success NETNS 'namespaces of killed runs are removed by the next setup' '
	ip netns add at-4194300 &&
	net_ns_gc_ &&
	! ip netns list | grep -q "^at-4194300\b" &&
	ip netns list | grep -q "^$NET_NS\b"
'

test_done
