#!/bin/bash
test_description='RELIABILITY.md rows that were "partly": 56 (pre-auth
slowloris and floods), 33 (I/O errors on volumes), 60 (a peer-set zstd
level is clamped)

56: connections that trickle a handshake one byte a second are cut at the
handshake deadline (10 s) all the same; an endless message, a huge length
or 64 MiB of garbage are refused after a few KiB, fast; 2000 connections
opened and closed fast (half of them reset) leave no child behind, the
listener'"'"'s RSS bounded (< 8 MiB growth), and a real client served
during and after.

33: a volume incremental failing with EIO or ENOSPC at the n-th write
(AUTOSYNC_FAULT=vol_write) or at an fsync: a classified error (40/41);
before the journal is committed the image and its record are v1 exactly;
once it is committed (a fault in the apply), "recover" rolls it forward to
v2 by rewriting every block from the journal (no fsync retried and
trusted), and so does the next receive by itself (which then refuses the
same incremental as already applied); a full receive cut by EIO leaves
an image marked incomplete, and the next full receive gives a replica.

60: the fault proxy flips the sign bit of the zstd level in a pull'"'"'s
SEND request (-1 becomes 127, 1 becomes -127, none becomes -128): the
server clamps to 19 or -7 and says so in its log (zstd itself would
take 127 as 22 and -127 as is), its stream is as long as with those
levels (within 0.5 %) and the pull completes; -128 to a client that
offered no zstd is ignored (zstd was not negotiated: the stream is not compressed).'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"
. "$TEST_DIRECTORY/lib-vol.sh"

net_has_serve || test_skip_all "this autosync has no serve command yet"
test -n "$TEST_PYTHON" || test_skip_all "python3 is needed"

T=$TRASH_DIRECTORY

sync_tcp() { net_deadline 60 autosync sync --key "$T/keys/psk.key" "$@"; }

server_alive() {
	kill -0 "$SERVE_PID" &&
	! test "$(awk '{ print $3 }' /proc/$SERVE_PID/stat)" = Z &&
	net_wait_listen "$SERVE_PORT" "$SERVE_PID"
}

# rss_kb PID: the resident set of PID, in KiB
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# nkids PID: the live children of PID (zombies count: they are leaks too)
nkids() { ps -o pid= --ppid "$1" | wc -l; }

# --- 56 -----------------------------------------------------------------------

# trickle.py PORT N: N connections each sending a handshake header that
# announces a 1 KiB hello, then one byte a second; prints per connection
# "closed MS BYTES" (or "open BYTES" after 16 s).
cat >"$NET_DIR/trickle.py" <<-'EOF'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
hdr = (1025).to_bytes(4, "little") + b"\xa1"
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    socks.append([s, 0, None])
t0 = time.monotonic()
while time.monotonic() - t0 < 16 and any(c[2] is None for c in socks):
    for c in socks:
        if c[2] is not None:
            continue
        s = c[0]
        try:
            if s.recv(4096) == b"":
                raise ConnectionResetError
        except BlockingIOError:
            pass
        except OSError:
            c[2] = time.monotonic() - t0
            continue
        try:
            b = hdr[c[1]:c[1] + 1] if c[1] < len(hdr) else b"A"
            c[1] += s.send(b)
        except OSError:
            c[2] = time.monotonic() - t0
    time.sleep(1)
for s, sent, t in socks:
    print("open %d" % sent if t is None else "closed %d %d" % (t * 1000, sent))
EOF

# blast.py PORT PREFIX: one connection sending PREFIX (hex) then 'A's, up
# to 64 MiB, as fast as it can; prints "BYTES MS" when the server stops it
cat >"$NET_DIR/blast.py" <<-'EOF'
import socket, sys, time
port, prefix = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)
t0 = time.monotonic()
sent, chunk = 0, prefix + b"A" * (65536 - len(prefix))
try:
    while sent < (64 << 20):
        sent += s.send(chunk)
        chunk = b"A" * 65536
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
except OSError:
    pass
print(sent, int((time.monotonic() - t0) * 1000))
EOF

# flood.py PORT N: N connections opened and closed at once, every other
# one by a reset; prints how many connected
cat >"$NET_DIR/flood.py" <<-'EOF'
import socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
ok = 0
for i in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        continue
    ok += 1
    if i % 2:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
    s.close()
print(ok)
EOF

test_expect_success 'setup: keys, a served root, a source' '
	net_deadline 30 autosync keygen --out keys &&
	mkdir root &&
	net_serve q --key "$T/keys/psk.key" --root "$T/root" &&
	mkfixture small small
'

test_expect_success '56: while 4 connections trickle a handshake, endless or oversized messages are cut at once' '
	test_bg "$NET_PDEATH$TEST_PYTHON $NET_DIR/trickle.py $SERVE_PORT 4 >trickle.out 2>&1" &&
	trickle_pid=$test_bg_pid &&
	sleep 0.5 &&
	for p in "" ffffff7fa1 0104000000a1 41535052; do
		$TEST_PYTHON "$NET_DIR/blast.py" $SERVE_PORT "$p" >blast.out &&
		echo "prefix \"$p\": $(cat blast.out) (bytes ms)" &&
		read bytes ms <blast.out &&
		test $bytes -lt $((16 << 20)) && test $ms -lt 5000 || return 1
	done &&
	server_alive
'

# --- 33, volumes --------------------------------------------------------------

vprep() { rm -f "$D"/b.img* && autosync receive "vol:$D/b.img" <vfull.as; }
# vis STATE: the image and its record are v1 (old) or v2 (new) exactly
vis() {
	local v=1
	test $1 = new && v=2
	test "$(sha "$D/b.img")" = "$(cat v$v.sha)" &&
	grep -qx "guid $(eval echo \$G$v)" "$D/b.img.autosync" || {
		echo "the image is not $1 (or its record disagrees):"
		cat "$D/b.img.autosync"
		return 1
	}
}
# vfault SPEC CODE: the incremental under AUTOSYNC_FAULT=SPEC fails with CODE
vfault() {
	vprep &&
	test_expect_code $2 env AUTOSYNC_FAULT=$1 \
		autosync receive "vol:$D/b.img" <vincr.as 2>err &&
	cat err
}

test_expect_success '33: setup: a volume, v1 and v2' '
	D=$T/vd && mkdir "$D" &&
	truncate -s 2M a.img && scribble a.img 8 &&
	autosync snapshot vol:a.img@v1 && autosync send vol:a.img@v1 >vfull.as &&
	sha a.img >v1.sha &&
	scribble a.img 6 && truncate -s 3M a.img &&
	autosync snapshot vol:a.img@v2 && autosync send -i @v1 vol:a.img@v2 >vincr.as &&
	sha a.img >v2.sha &&
	vprep && G1=$(sed -n "s/^guid //p" "$D/b.img.autosync") &&
	autosync receive "vol:$D/b.img" <vincr.as &&
	G2=$(sed -n "s/^guid //p" "$D/b.img.autosync") &&
	test "$G1" != "$G2" && vis new
'

test_expect_success '33: EIO or ENOSPC on a journal write, EIO on a journal fsync: v1, then O2' '
	for f in vol_write:EIO:1:40 vol_write:ENOSPC:1:41 fsync:EIO:1:40 fsync:EIO:2:40 fsync:EIO:3:40; do
		vfault ${f%:*} ${f##*:} &&
		vis old && ! test -e "$D/b.img.autosync-journal" &&
		autosync receive "vol:$D/b.img" <vincr.as &&
		vis new || { echo "failed for $f"; return 1; }
	done
'

test_expect_success '33: EIO at the n-th write of the apply, or at its fsync: recover gives v2, then O2' '
	for f in vol_write:EIO:2 vol_write:EIO:4 fsync:EIO:4 fsync:EIO:5 vol-apply:EIO:1 vol-commit:EIO:1; do
		vfault $f 40 &&
		test -e "$D/b.img.autosync-journal" &&
		autosync recover "vol:$D/b.img" &&
		vis new && ! test -e "$D/b.img.autosync-journal" &&
		test_expect_code 20 autosync receive "vol:$D/b.img" <vincr.as 2>err &&
		test_grep "does not match" err || { echo "failed for $f"; return 1; }
	done
'

test_expect_success '33: the same fault, then the next receive rolls forward by itself' '
	vfault vol_write:EIO:3 40 &&
	! vis old && ! vis new &&
	test_expect_code 20 autosync receive "vol:$D/b.img" <vincr.as 2>err &&
	vis new
'

test_expect_success '33: EIO at the n-th write of a full receive: no replica, then O2' '
	rm -f "$D"/b.img* &&
	test_expect_code 40 env AUTOSYNC_FAULT=vol_write:EIO:3 \
		autosync receive "vol:$D/b.img" <vfull.as 2>err &&
	cat err &&
	grep -qx "state incomplete" "$D/b.img.autosync" &&
	test_expect_code 20 autosync receive "vol:$D/b.img" <vincr.as 2>err &&
	cat err && test_grep "holds no snapshot" err &&
	autosync receive "vol:$D/b.img" <vfull.as &&
	vis old &&
	autosync receive "vol:$D/b.img" <vincr.as &&
	vis new
'

# (the volume cases of #33 run while the trickle goes on: see below)
test_expect_success '56: a handshake trickled at 1 byte/s is cut at the deadline (10 s)' '
	test -n "$trickle_pid" && wait $trickle_pid &&
	cat trickle.out &&
	test $(grep -c "^closed" trickle.out) = 4 &&
	while read what ms bytes; do
		test $ms -ge 9000 && test $ms -le 13000 &&
		test $bytes -ge 8 || return 1
	done <trickle.out &&
	test_grep "timeout" "$SERVE_LOG"
'

test_expect_success '56: 2000 connect/close (half reset): no child left, RSS bounded, clients served' '
	$TEST_PYTHON "$NET_DIR/flood.py" $SERVE_PORT 200 >warm.out &&
	sleep 1 &&
	rss0=$(rss_kb $SERVE_PID) &&
	r0=$(grep -c "refused" "$SERVE_LOG") &&
	test_bg "$NET_PDEATH$TEST_PYTHON $NET_DIR/flood.py $SERVE_PORT 2000 >flood.out 2>&1" &&
	flood_pid=$test_bg_pid &&
	sleep 0.5 &&
	t0=$(net_now_ms) &&
	sync_tcp small "tcp://127.0.0.1:$SERVE_PORT/during-flood" &&
	echo "a sync during the flood took $(( $(net_now_ms) - t0 )) ms" &&
	assert_same_tree small root/during-flood &&
	wait $flood_pid &&
	echo "connected: $(cat flood.out) of 2000" &&
	test $(cat flood.out) -ge 1900 &&
	# the listener drains its backlog: every flood connection gets a
	# child that logs its refusal (within the handshake deadline, 10 s);
	# then no child is left
	t0=$(net_now_ms) &&
	for i in $(seq 150); do
		test $(grep -c "refused" "$SERVE_LOG") -ge $((r0 + 2000)) &&
		test $(nkids $SERVE_PID) = 0 && break
		sleep 0.1
	done &&
	echo "refusals logged: $(( $(grep -c "refused" "$SERVE_LOG") - r0 ))" &&
	echo "children left: $(nkids $SERVE_PID) after $(( $(net_now_ms) - t0 )) ms" &&
	test $(nkids $SERVE_PID) = 0 &&
	rss1=$(rss_kb $SERVE_PID) &&
	echo "listener VmRSS: $rss0 KiB before, $rss1 KiB after" &&
	test $((rss1 - rss0)) -lt 8192 &&
	server_alive &&
	t0=$(net_now_ms) &&
	sync_tcp small "tcp://127.0.0.1:$SERVE_PORT/after-flood" &&
	echo "a sync after the flood took $(( $(net_now_ms) - t0 )) ms" &&
	assert_same_tree small root/after-flood
'

# --- 60 -----------------------------------------------------------------------

# level_off REC: the offset in REC.c2s of the zstd level of the first SEND
# request (frames: u32 length, u8 type, payload; REQUEST is type 3, SEND
# op 4, then u32 flags and u64 guid)
level_off() {
	$TEST_PYTHON - "$1.c2s" <<-'EOF'
	import struct, sys
	b = open(sys.argv[1], "rb").read()
	i = 0
	while i + 6 <= len(b):
	    l = struct.unpack("<I", b[i:i + 4])[0]
	    if b[i + 4] == 3 and b[i + 5] == 4:
	        print(i + 5 + 13)
	        sys.exit(0)
	    i += 4 + l
	sys.exit(1)
	EOF
}

# byte_at FILE OFF: one byte, as a signed decimal
byte_at() { od -An -t d1 -j "$2" -N 1 "$1" | tr -d " "; }

# pull_via NAME COMPRESS [FLIP]: a pull of root/text through a recording
# proxy (flipping bit FLIP of the level); its s2c bytes in s2c.NAME
pull_via() {
	local flip=
	test -z "$3" || flip="--flip $3 --direction c2s"
	net_proxy "$1" $SERVE_PORT --record "$T/rec.$1" --max-conns 1 $flip &&
	sync_tcp --compress "$2" "tcp://127.0.0.1:$PROXY_PORT/text" "pull.$1" &&
	net_proxy_stat s2c >"s2c.$1" &&
	wait $PROXY_PID &&
	echo "$1 ($2${3:+, flip $3}): $(cat s2c.$1) bytes from the server" &&
	assert_same_tree root/text "pull.$1"
}

test_expect_success '60: setup: a compressible source, pulled at -1, 1, none, 19, -7' '
	mkdir root/text &&
	$TEST_PYTHON -c "
import random
random.seed(7)
w = [\"\".join(random.choice(\"abcdefghij\") for _ in range(random.randint(3, 9))) for _ in range(3000)]
open(\"root/text/words\", \"w\").write(\" \".join(random.choice(w) for _ in range(75000)))
" &&
	pull_via m1 zstd:-1 && off=$(level_off rec.m1) &&
	echo "the level is byte $off of the client stream" &&
	test "$(byte_at rec.m1.c2s $off)" = -1 &&
	pull_via p1 zstd:1 && test "$(level_off rec.p1)" = $off &&
	test "$(byte_at rec.p1.c2s $off)" = 1 &&
	pull_via z0 none && test "$(level_off rec.z0)" = $off &&
	test "$(byte_at rec.z0.c2s $off)" = 0 &&
	pull_via l19 zstd:19 && pull_via l7 zstd:-7 &&
	test $(cat s2c.l19) -lt $(cat s2c.l7)
'

# same_size A B: two stream sizes within 0.5 % (the listing of the
# server's snapshots grows a little with every pull)
same_size() {
	local d=$(( $(cat s2c.$1) - $(cat s2c.$2) ))
	test $(( ${d#-} * 200 )) -le $(cat s2c.$2)
}

test_expect_success '60: a level of 127 on the wire: served at 19' '
	pull_via f127 zstd:-1 $off:7 &&
	test "$(byte_at rec.f127.c2s $off)" = 127 &&
	same_size f127 l19 && ! same_size f127 m1 &&
	test_grep "asked for zstd level 127, using 19" "$SERVE_LOG"
'

test_expect_success '60: a level of -127 on the wire: served at -7' '
	pull_via f127n zstd:1 $off:7 &&
	test "$(byte_at rec.f127n.c2s $off)" = -127 &&
	same_size f127n l7 && ! same_size f127n p1 &&
	test_grep "asked for zstd level -127, using -7" "$SERVE_LOG"
'

test_expect_success '60: a level of -128 from a client that asked for none: not compressed' '
	pull_via f128 none $off:7 &&
	test "$(byte_at rec.f128.c2s $off)" = -128 &&
	same_size f128 z0 && ! same_size f128 l7 &&
	test_grep ! "zstd level -128" "$SERVE_LOG" &&
	server_alive
'

test_done
