#!/bin/sh
# demo.sh - show autosync at work on a sample tree with every kind of
# entry: sync it, change it, sync again, show what moved, verify.
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

printf '\ndemo OK\n'
