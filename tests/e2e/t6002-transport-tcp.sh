#!/bin/bash
test_description='transport: tcp:// (PSK, quick mode) between two autosync processes

"autosync serve --listen 127.0.0.1:PORT --key KEYFILE --root DIR" on a free
port; push and pull, full and incremental, give the same tree as a local
sync.  RELIABILITY.md E50 and I8: a wrong, empty, truncated or one-byte-
changed key, or a key file others may read, is refused with AUTH (21) and
nothing is created under the served root; a garbage first frame, raw
bytes, an HTTP request or a huge length prefix leave the server running
(and logged with the peer address).  A path that would leave the root is
refused, through ".." and through a symlink alike.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY

# A "server" that answers every connection with 70000 bytes of 0xff.
cat >"$NET_DIR/garbage-server.py" <<-'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(4)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"\xff" * 70000)
    except OSError:
        pass
    c.close()
EOF

# flip_byte FILE: change one byte in the middle of FILE, keeping it in
# its alphabet (a hex digit stays a hex digit, base64 stays base64)
flip_byte() {
	python3 - "$1" <<-'EOF'
import string, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = len(b) // 2
while i < len(b) and chr(b[i]) in "\r\n=-":
    i += 1
c = chr(b[i])
if c in "0123456789abcdef":
    b[i] = ord("%x" % (int(c, 16) ^ 1))
elif c in "ABCDEF":
    b[i] = ord("%X" % (int(c, 16) ^ 1))
elif c.isalnum():
    b[i] = ord("a" if c != "a" else "b")
else:
    b[i] ^= 1
open(p, "wb").write(b)
EOF
}

# sync_tcp [OPTIONS] SRC DST: sync with the served key, bounded in time
sync_tcp() { net_deadline 60 autosync sync --key "$T/keys/psk.key" "$@"; }

# The server is still up and listening, and serves a real client.
server_alive() {
	kill -0 "$SERVE_PID" && ! test "$(awk '{ print $3 }' /proc/$SERVE_PID/stat)" = Z &&
	net_wait_listen "$SERVE_PORT" "$SERVE_PID"
}

# raw_send FILE: connect with bash /dev/tcp, send FILE, read what comes
# back for at most 3 s (into raw.out), close.
raw_send() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$SERVE_PORT" || exit 1
		cat "$1" >&3 2>/dev/null
		timeout 3 cat <&3 >raw.out 2>/dev/null
		exec 3>&-
		exit 0
	)
}

test_expect_success 'setup: keys, a served root, a source' '
	net_deadline 30 autosync keygen --out keys &&
	test_path_is_file keys/psk.key &&
	test "$(stat -c %a keys/psk.key)" = 600 &&
	test -s keys/psk.key &&
	mkdir root outside &&
	echo sentinel >outside/sentinel &&
	net_serve q --key "$T/keys/psk.key" --root "$T/root" &&
	mkfixture src every-kind &&
	mkfixture small small
'

test_expect_success 'push: full sync to tcp:// gives the same tree' '
	sync_tcp src "tcp://127.0.0.1:$SERVE_PORT/dst" &&
	assert_same_tree src root/dst
'

test_expect_success 'push: incremental after changes' '
	mkfixture src mutate &&
	sync_tcp -v src "tcp://127.0.0.1:$SERVE_PORT/dst" >out 2>&1 &&
	cat out &&
	assert_same_tree src root/dst
'

test_expect_success 'an unchanged push keeps the tree' '
	sync_tcp src "tcp://127.0.0.1:$SERVE_PORT/dst" &&
	assert_same_tree src root/dst
'

test_expect_success 'push: the scan reads no file, the send hashes what it reads' '
	mkdir once &&
	head -c 1048576 /dev/urandom >once/big &&
	echo a >once/a &&
	sync_tcp -v once "tcp://127.0.0.1:$SERVE_PORT/once" >out 2>&1 &&
	cat out &&
	test_grep "scanned 3 entries in .* 0 files read (0 B)" out &&
	test_grep "sent 3 entries, 1.0 MiB of data" out &&
	assert_same_tree once root/once &&
	# one byte changed inside the second block: the catalog the push
	# saved holds the hashes its send computed, so one block travels
	printf x | dd of=once/big bs=1 seek=70000 conv=notrunc 2>/dev/null &&
	sync_tcp -v once "tcp://127.0.0.1:$SERVE_PORT/once" >out 2>&1 &&
	cat out &&
	test_grep "incremental" out &&
	test_grep "sent 1 entries, 64.0 KiB of data" out &&
	assert_same_tree once root/once
'

test_expect_success 'pull: full, then incremental' '
	sync_tcp "tcp://127.0.0.1:$SERVE_PORT/dst" pulled &&
	assert_same_tree src pulled &&
	cp -a small root/origin &&
	sync_tcp "tcp://127.0.0.1:$SERVE_PORT/origin" pulled-origin &&
	assert_same_tree small pulled-origin &&
	echo changed >root/origin/a/f1 && rm root/origin/a/f2 &&
	mkdir root/origin/new && echo new >root/origin/new/file &&
	sync_tcp "tcp://127.0.0.1:$SERVE_PORT/origin" pulled-origin &&
	assert_same_tree root/origin pulled-origin
'

test_expect_success 'pull into a copy of another source: no common snapshot (20), -F resends' '
	cp -a pulled-origin pulled-other &&
	test_expect_code 20 sync_tcp "tcp://127.0.0.1:$SERVE_PORT/dst" \
		pulled-other 2>err &&
	test_grep "no common snapshot" err &&
	assert_same_tree root/origin pulled-other &&
	sync_tcp -F "tcp://127.0.0.1:$SERVE_PORT/dst" pulled-other &&
	assert_same_tree src pulled-other
'

test_expect_success 'a nested path under the root' '
	mkdir -p root/a/b &&
	sync_tcp small "tcp://127.0.0.1:$SERVE_PORT/a/b/c" &&
	assert_same_tree small root/a/b/c
'

# --- E50: authentication

# refused_push KEYFILE NAME: push with KEYFILE is refused with AUTH and
# the served root is exactly as it was (names, types, sizes).
refused_push() {
	local rc
	net_ls_root root >ls.before || return 1
	net_deadline 30 autosync sync --key "$1" small \
		"tcp://127.0.0.1:$SERVE_PORT/$2" 2>err
	rc=$?
	cat err
	echo "exit $rc (want 21, AUTH)"
	test $rc = 21 &&
	net_ls_root root >ls.after &&
	test_cmp ls.before ls.after &&
	test_path_is_missing "root/$2" &&
	server_alive
}

test_expect_success 'a wrong key (another keygen) is refused: 21, nothing created' '
	net_deadline 30 autosync keygen --out keys2 &&
	! cmp -s keys/psk.key keys2/psk.key &&
	refused_push keys2/psk.key wrong-key
'

test_expect_success 'the server logs the refusal with the peer address' '
	test_grep -i "127.0.0.1" "$SERVE_LOG"
'

test_expect_success 'a pull with a wrong key is refused too, nothing created locally' '
	test_expect_code 21 net_deadline 30 autosync sync --key keys2/psk.key \
		"tcp://127.0.0.1:$SERVE_PORT/dst" pulled-wrong 2>err &&
	test_path_is_missing pulled-wrong
'

test_expect_success 'the right key with one byte changed is refused' '
	cp keys/psk.key onebyte.key && chmod 600 onebyte.key &&
	size=$(file_size onebyte.key) &&
	flip_byte onebyte.key &&
	! cmp -s keys/psk.key onebyte.key &&
	test $(file_size onebyte.key) = $size &&
	refused_push onebyte.key one-byte
'

test_expect_success 'an empty key file is refused' '
	: >empty.key && chmod 600 empty.key &&
	refused_push empty.key empty-key
'

test_expect_success 'a truncated key file is refused' '
	head -c $(( $(file_size keys/psk.key) / 2 )) keys/psk.key >half.key &&
	chmod 600 half.key &&
	refused_push half.key half-key
'

test_expect_success 'a key file others may read (0644) is refused' '
	cp keys/psk.key open.key && chmod 644 open.key &&
	refused_push open.key open-key &&
	test_grep -Ei "permission|mode|readable|0644|644|others" err
'

test_expect_success 'serve refuses to start with an empty, short or open key' '
	( for k in empty.key half.key open.key; do
		port=$(net_free_port) &&
		net_deadline 10 autosync serve --listen 127.0.0.1:$port \
			--key "$T/$k" --root "$T/root" >serve.out 2>&1; rc=$?
		cat serve.out
		test $rc != 0 && net_not_crash $rc &&
		test -s serve.out &&
		net_port_closed $port || { echo "FAILED: serve with $k ($rc)"; exit 1; }
	done )
'

test_expect_success 'a missing key file is refused' '
	net_ls_root root >ls.before &&
	net_deadline 30 autosync sync --key "$T/no-such.key" small \
		"tcp://127.0.0.1:$SERVE_PORT/missing-key" 2>err; rc=$? &&
	cat err && test $rc != 0 && net_not_crash $rc &&
	net_ls_root root >ls.after && test_cmp ls.before ls.after
'

test_expect_success 'tcp:// without --key is a usage error' '
	test_expect_code 2 net_deadline 30 autosync sync small \
		"tcp://127.0.0.1:$SERVE_PORT/no-key" 2>err &&
	test_path_is_missing root/no-key
'

# --- E50: garbage before authentication

test_expect_success 'raw garbage, HTTP, a huge length: the server survives' '
	net_ls_root root >ls.before &&
	printf "GARBAGE\r\n\000\377\376 not a frame\n" >g1 &&
	printf "GET / HTTP/1.0\r\nHost: x\r\n\r\n" >g2 &&
	printf "\377\377\377\377\001ASPROTO\n" >g3 &&
	printf "\005\000\000\000\001ABCD" >g4 &&
	head -c 65536 /dev/urandom >g5 &&
	: >g6 &&
	printf "\001" >g7 &&
	( for g in g1 g2 g3 g4 g5 g6 g7; do
		raw_send $g || { echo "cannot connect for $g"; exit 1; }
		server_alive || { echo "server died after $g"; exit 1; }
	done ) &&
	net_ls_root root >ls.after &&
	test_cmp ls.before ls.after
'

test_expect_success 'garbage: the server logged the failures; a real client still works' '
	cat "$SERVE_LOG" &&
	test $(grep -c "127.0.0.1" "$SERVE_LOG") -ge 2 &&
	sync_tcp small "tcp://127.0.0.1:$SERVE_PORT/after-garbage" &&
	assert_same_tree small root/after-garbage
'

test_expect_success 'the right key against garbage replies: client fails cleanly' '
	port=$(net_free_port) &&
	test_bg "$NET_PDEATH$TEST_PYTHON $NET_DIR/garbage-server.py $port" &&
	net_wait_listen $port $test_bg_pid &&
	net_deadline 30 autosync sync --key keys/psk.key small \
		"tcp://127.0.0.1:$port/x" 2>err; rc=$? &&
	cat err && test $rc != 0 && net_not_crash $rc &&
	net_deadline 30 autosync sync --key keys/psk.key \
		"tcp://127.0.0.1:$port/x" pulled-garbage 2>err; rc=$? &&
	cat err && test $rc != 0 && net_not_crash $rc &&
	test_path_is_missing pulled-garbage
'

test_expect_success 'the handshake cut at many points, both ways: a clean failure' '
	net_ls_root root >ls.before &&
	for dir in c2s s2c; do
		for n in 0 1 4 8 9 16 31 32 33 48 64 65 100 200; do
			net_proxy cut-$dir-$n $SERVE_PORT --direction $dir --truncate $n \
				--max-seconds 20 || return 1
			t0=$(net_now_ms)
			net_deadline 30 autosync sync --key keys/psk.key small \
				"tcp://127.0.0.1:$PROXY_PORT/cut" 2>err
			rc=$? ms=$(( $(net_now_ms) - t0 ))
			net_kill $PROXY_PID
			echo "$dir cut at $n: exit $rc after $ms ms: $(cat err)"
			if test $rc = 0; then
				# the cut came after the handshake and the tiny
				# tree: it must then be complete
				assert_same_tree small root/cut && rm -rf root/cut ||
					echo "FAILED" >>cut.failed
			else
				net_not_crash $rc && test -s err && test $ms -lt 5000 ||
					echo "FAILED: $dir $n" >>cut.failed
			fi
		done
	done &&
	test_path_is_missing cut.failed &&
	# A full receive cut after its request may leave the new, empty
	# destination directory (as a killed local receive does), no more.
	if test -d root/cut; then
		empty_manifest_check root/cut && rm -rf root/cut
	fi &&
	net_ls_root root >ls.after && test_cmp ls.before ls.after &&
	server_alive
'

# Holds N silent connections to PORT; prints, per connection, the ms
# until the server closed it (or "open" after LIMIT s).
cat >"$NET_DIR/silent.py" <<-'EOF'
import selectors, socket, sys, time
port, n, limit = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
sel = selectors.DefaultSelector()
t0 = time.monotonic()
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    sel.register(s, selectors.EVENT_READ, i)
left = n
while left and time.monotonic() - t0 < limit:
    for key, _ in sel.select(0.1):
        try:
            b = key.fileobj.recv(4096)
        except OSError:
            b = b""
        if not b:
            print("closed %d" % ((time.monotonic() - t0) * 1000), flush=True)
            sel.unregister(key.fileobj)
            key.fileobj.close()
            left -= 1
for key in list(sel.get_map().values()):
    print("open", flush=True)
EOF

test_expect_success 'silent connections are closed by the handshake deadline (10 s)' '
	test_bg "$NET_PDEATH$TEST_PYTHON $NET_DIR/silent.py $SERVE_PORT 12 14 >silent.out 2>&1" &&
	silent_pid=$test_bg_pid &&
	sleep 0.5 &&
	t0=$(net_now_ms) &&
	sync_tcp small "tcp://127.0.0.1:$SERVE_PORT/while-silent" &&
	echo "the client took $(( $(net_now_ms) - t0 )) ms" &&
	assert_same_tree small root/while-silent &&
	wait $silent_pid &&
	sort silent.out | uniq -c &&
	test_grep ! open silent.out &&
	test $(grep -c closed silent.out) = 12 &&
	test "$(sort -k2 -n silent.out | tail -n 1 | cut -d" " -f2)" -le 12000 &&
	server_alive
'

test_expect_success 'more silent connections than --max-unauth do not starve a client (E56)' '
	test_bg "$NET_PDEATH$TEST_PYTHON $NET_DIR/silent.py $SERVE_PORT 40 12 >silent2.out 2>&1" &&
	silent_pid=$test_bg_pid &&
	sleep 0.5 &&
	t0=$(net_now_ms) &&
	sync_tcp small "tcp://127.0.0.1:$SERVE_PORT/while-flood" &&
	ms=$(( $(net_now_ms) - t0 )) &&
	echo "the client took $ms ms" &&
	assert_same_tree small root/while-flood &&
	test_kill $silent_pid KILL && { wait $silent_pid; :; } &&
	test $ms -lt 5000 &&
	server_alive
'

# --- confinement under --root

test_expect_success 'paths that leave the root by ".." are refused' '
	net_ls_root root >ls.before &&
	ls -A "$T" >"$NET_DIR/t.before" &&
	( for p in ../escape ../outside/x a/../../escape .. ./../escape \
		a/b/../../../escape; do
		net_deadline 30 autosync sync --key keys/psk.key small \
			"tcp://127.0.0.1:$SERVE_PORT/$p" 2>err; rc=$?
		cat err
		test $rc != 0 && net_not_crash $rc &&
		test_path_is_missing "$T/escape" &&
		test_path_is_missing outside/x || { echo "FAILED: $p ($rc)"; exit 1; }
	done ) &&
	net_ls_root root >ls.after && test_cmp ls.before ls.after &&
	ls -A "$T" >"$NET_DIR/t.after" && test_cmp "$NET_DIR/t.before" "$NET_DIR/t.after"
'

test_expect_success 'a pull cannot read outside the root by ".."' '
	( for p in ../outside ../../ "a/../../outside"; do
		net_deadline 30 autosync sync --key keys/psk.key \
			"tcp://127.0.0.1:$SERVE_PORT/$p" pulled-escape 2>err; rc=$?
		cat err
		test $rc != 0 && net_not_crash $rc &&
		test_path_is_missing pulled-escape || { echo "FAILED: $p"; exit 1; }
	done )
'

test_expect_success 'a symlink in the root does not lead outside (push and pull)' '
	ln -s "$T/outside" root/link-out &&
	ln -s .. root/link-up &&
	(cd outside && find . -printf "%p %y %s %i\n" | sort) >o.before &&
	net_deadline 30 autosync sync --key keys/psk.key small \
		"tcp://127.0.0.1:$SERVE_PORT/link-out/x" 2>err; rc=$? &&
	cat err &&
	net_deadline 30 autosync sync --key keys/psk.key small \
		"tcp://127.0.0.1:$SERVE_PORT/link-up/escape" 2>err; rc2=$? &&
	cat err &&
	(cd outside && find . -printf "%p %y %s %i\n" | sort) >o.after &&
	test_cmp o.before o.after &&
	test_path_is_missing "$T/escape" &&
	test $rc != 0 && test $rc2 != 0 &&
	net_deadline 30 autosync sync --key keys/psk.key \
		"tcp://127.0.0.1:$SERVE_PORT/link-out" pulled-link 2>err; rc=$? &&
	cat err &&
	test $rc != 0 && test_path_is_missing pulled-link/sentinel
'

test_expect_success 'an absolute-looking path stays under the root' '
	sync_tcp small "tcp://127.0.0.1:$SERVE_PORT//double-slash" 2>err; rc=$? &&
	cat err &&
	test_path_is_missing /double-slash &&
	if test $rc = 0; then assert_same_tree small root/double-slash; fi
'

# A receiver that fails mid-stream answers at once; the sender stops
# (the direct push, where the sender frames onto the connection itself,
# and the pump the same: AUTOSYNC_NO_DIRECT_PUSH).
test_expect_success ROOT 'a destination that fills up mid-push: NOSPACE (41) at once, both paths' '
	mkdir root/tiny bigsrc &&
	test_mount -t tmpfs -o size=8m tmpfs root/tiny &&
	for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
		head -c 1048576 /dev/urandom >bigsrc/f$i || return 1
	done &&
	test_expect_code 41 sync_tcp bigsrc "tcp://127.0.0.1:$SERVE_PORT/tiny/d" 2>err &&
	grep "No space left" err &&
	test_path_is_missing root/tiny/d/f1 &&
	rm -rf root/tiny/d &&
	AUTOSYNC_NO_DIRECT_PUSH=1 test_expect_code 41 sync_tcp bigsrc \
	    "tcp://127.0.0.1:$SERVE_PORT/tiny/d" 2>err &&
	grep "No space left" err &&
	test_path_is_missing root/tiny/d/f1 &&
	server_alive
'

test_expect_success 'the server is still alive and no process was left behind' '
	server_alive &&
	sync_tcp small "tcp://127.0.0.1:$SERVE_PORT/final" &&
	assert_same_tree small root/final
'

test_expect_success 'no sanitizer report or internal error in the server logs' '
	net_logs_clean
'

test_done
