#!/bin/sh
# demo.sh - show autosync at work on a sample tree with every kind of
# entry: sync it, change it, sync again, show what moved, verify; then
# the service: a daemon, a continuous service on the same tree, changes
# replicated as they happen, its properties, and the daemon stopped.
#
# Runs in a temporary directory with its own state directory; leaves
# nothing behind.  Exits non-zero on the first failure.
#   AUTOSYNC=path/to/autosync sh scripts/demo.sh     (default: build/autosync)
set -eu

AUTOSYNC=${AUTOSYNC:-build/autosync}
case $AUTOSYNC in
/*) ;;
*) AUTOSYNC=$(pwd)/$AUTOSYNC ;;
esac
if ! test -x "$AUTOSYNC"; then
	echo "demo: no autosync binary at '$AUTOSYNC' (run make first)" >&2
	exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/autosync-demo.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
AUTOSYNC_STATE_DIR=$TMP/state
export AUTOSYNC_STATE_DIR
SRC=$TMP/src
DST=$TMP/backup

step() {
	printf '\n=== %s\n' "$*"
}

run() {
	printf '$ %s\n' "$*" | sed "s|$TMP|\$DEMO|g; s|$AUTOSYNC|autosync|"
	"$@"
}

fail() {
	echo "demo: FAILED: $*" >&2
	exit 1
}

# rsync as an independent judge: prints nothing when the trees agree
rsync_check() {
	if ! command -v rsync >/dev/null 2>&1; then
		echo "(rsync not installed: skipping the independent check)"
		return 0
	fi
	out=$(rsync -naHAXc --numeric-ids --delete --exclude=/.autosync \
	    --itemize-changes "$SRC/" "$DST/" 2>&1) || true
	if test -n "$out"; then
		printf '%s\n' "$out"
		fail "rsync sees differences between source and backup"
	fi
	echo "rsync -naHAXc --delete: no differences"
}

step "A sample tree with every kind of entry"
mkdir -p "$SRC/docs/deep/er" "$SRC/empty-dir"
printf 'hello, autosync\n' > "$SRC/docs/readme.txt"
head -c 1048576 /dev/urandom > "$SRC/docs/random.bin"
ln "$SRC/docs/readme.txt" "$SRC/docs/hardlink-to-readme"
ln -s readme.txt "$SRC/docs/symlink-to-readme"
ln -s /nonexistent/target "$SRC/dangling-symlink"
mkfifo "$SRC/a-fifo"
# a 64 MiB sparse file with 4 KiB of data in the middle
truncate -s 64M "$SRC/sparse.img"
printf 'data in the middle' | dd of="$SRC/sparse.img" bs=1 \
    seek=33554432 conv=notrunc 2>/dev/null
printf '#!/bin/sh\necho hi\n' > "$SRC/setuid-tool"
chmod 4755 "$SRC/setuid-tool"
chmod 1777 "$SRC/empty-dir"
touch -d '2001-02-03 04:05:06.123456789' "$SRC/docs/deep/er"
printf 'name with a\nnewline\n' > "$SRC/docs/deep/er/odd
name"
if command -v setfattr >/dev/null 2>&1 &&
    setfattr -n user.demo -v "kept" "$SRC/docs/readme.txt" 2>/dev/null; then
	echo "xattr user.demo set on docs/readme.txt"
else
	echo "(no user xattrs here: skipping)"
fi
if command -v setfacl >/dev/null 2>&1 &&
    setfacl -m u:nobody:r "$SRC/docs/random.bin" 2>/dev/null; then
	echo "ACL u:nobody:r set on docs/random.bin"
else
	echo "(no ACL support here: skipping)"
fi
if test "$(id -u)" -eq 0 && mknod "$SRC/null-device" c 1 3 2>/dev/null; then
	echo "character device null-device created"
fi
(cd "$TMP" && ls -lR src | sed -n '1,40p')

step "First sync: a full stream"
run "$AUTOSYNC" sync -v "$SRC" "$DST" || fail "first sync"
run "$AUTOSYNC" snapshots "$SRC" || fail "snapshots"

step "Verify: autosync re-reads the backup and compares it with the snapshot"
run "$AUTOSYNC" verify -v "$SRC" "$DST" || fail "verify after the first sync"
rsync_check
printf 'sparse file: source uses %s KiB, backup uses %s KiB (of 65536)\n' \
    "$(du -k "$SRC/sparse.img" | cut -f1)" "$(du -k "$DST/sparse.img" | cut -f1)"

step "Change the source"
echo "append a line" >> "$SRC/docs/readme.txt"
echo "  appended to docs/readme.txt (and so to its hard link)"
printf 'patched' | dd of="$SRC/docs/random.bin" bs=1 seek=524288 \
    conv=notrunc 2>/dev/null
echo "  patched 7 bytes in the middle of docs/random.bin (1 MiB)"
mv "$SRC/docs/deep" "$SRC/moved-deep"
echo "  renamed directory docs/deep -> moved-deep"
rm "$SRC/dangling-symlink"
echo "  deleted dangling-symlink"
chmod 600 "$SRC/setuid-tool"
echo "  chmod 600 setuid-tool"
mkdir "$SRC/new-dir" && echo new > "$SRC/new-dir/new-file"
echo "  created new-dir/new-file"

step "Second sync: an incremental stream, only what changed travels"
run "$AUTOSYNC" sync -v "$SRC" "$DST" || fail "second sync"

step "Verify again"
run "$AUTOSYNC" verify -v "$SRC" "$DST" || fail "verify after the second sync"
rsync_check

step "A change made in the backup is detected"
echo "tampered" >> "$DST/new-dir/new-file"
rc=0
run "$AUTOSYNC" verify "$SRC" "$DST" || rc=$?
test "$rc" -eq 1 || fail "verify did not notice a changed file (exit $rc)"
echo "(verify exited 1, as it should; a plain sync would refuse to"
echo " overwrite the backup; sync -F rolls it back)"
run "$AUTOSYNC" sync -v -F "$SRC" "$DST" || fail "sync -F"
run "$AUTOSYNC" verify -v "$SRC" "$DST" || fail "verify after sync -F"

# The service (issue 4): a daemon in the demo's private state
# directory, a continuous service on the same tree, changes replicated
# as they happen; the daemon is stopped and the demo ends by itself.
SVC_DST=$TMP/replica
DAEMON_PID=
stop_daemon() {
	if test -n "$DAEMON_PID"; then
		kill -TERM "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
		DAEMON_PID=
	fi
}
trap 'stop_daemon; rm -rf "$TMP"' EXIT INT TERM

# wait_until SECONDS WHAT COMMAND...: poll COMMAND every 0.2 s
wait_until() {
	limit=$1 what=$2
	shift 2
	i=0
	while ! "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		test $i -le $((limit * 5)) || fail "$what (waited $limit s)"
		sleep 0.2
	done
}

same_tree() {
	out=$(rsync -naHAXc --numeric-ids --delete --exclude=/.autosync \
	    --itemize-changes "$SRC/" "$SVC_DST/" 2>&1) && test -z "$out"
}

step "The service: a daemon, and a continuous service on the tree"
echo '$ autosync daemon &'
"$AUTOSYNC" daemon 2>"$TMP/daemon.log" &
DAEMON_PID=$!
wait_until 10 "the daemon did not start" test -S "$AUTOSYNC_STATE_DIR/autosync.sock"
echo "daemon running (pid $DAEMON_PID, state in \$DEMO/state)"
run "$AUTOSYNC" create demo --source "$SRC" --dest "$SVC_DST" \
    --continuous 1s --keep-src 5 || fail "create"
if command -v rsync >/dev/null 2>&1; then
	wait_until 30 "the first run did not replicate the tree" same_tree
else
	wait_until 30 "the first run did not finish" \
	    "$AUTOSYNC" verify "$SRC" "$SVC_DST"
fi
run "$AUTOSYNC" list || fail "list"

step "Changes are replicated as they happen (no sync command)"
for n in 1 2 3; do
	t0=$(date +%s%N)
	echo "written at $(date +%T.%N)" > "$SRC/live-$n.txt"
	wait_until 15 "live-$n.txt did not reach the replica" \
	    cmp -s "$SRC/live-$n.txt" "$SVC_DST/live-$n.txt"
	echo "  live-$n.txt is in the replica $(( ($(date +%s%N) - t0) / 1000000 )) ms after it was written"
done

step "Where the service stands"
run "$AUTOSYNC" show demo || fail "show"
echo '$ autosync log demo | tail -n 5'
"$AUTOSYNC" log demo | tail -n 5

step "Stop the daemon"
stop_daemon
echo "daemon stopped; the service and its state stay in the state directory"

printf '\ndemo OK\n'
