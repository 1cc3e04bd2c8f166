#!/bin/bash
test_description='RELIABILITY.md 28: very many entries in one directory

One directory of 50,000 entries (10^6 with AUTOSYNC_TEST_LONG=1), on a
tmpfs when one can be mounted: a full sync with a 256 KiB stack gives O2
(the walk and the receive are iterative), an incremental that changes,
adds and removes 1% of them moves only those (bytes bounded), and one
with nothing changed sends a few hundred bytes.  The peak memory of the
full sync is reported per entry (the catalog goal is 150 bytes each plus
block hashes; here, less the peak of a one-file sync, it is checked
against a loose bound, 1000 bytes, since an ASan build carries its own
overhead).'
. "$(dirname "$0")/test-lib.sh"

N=50000
test -n "${AUTOSYNC_TEST_LONG:-}" && N=1000000
say "# $N entries in one directory"

if test_have_prereq TMPFS; then
	# a 4 KiB page per small file, source and destination, and the catalogs
	mkdir mnt && test_mount -t tmpfs \
		-o size=$((N * 10 / 1024 + 512))m,nr_inodes=$((N * 3 + 100000)) tmpfs mnt ||
		BAIL_OUT "cannot mount a tmpfs"
	D=$TRASH_DIRECTORY/mnt
else
	D=$TRASH_DIRECTORY
fi

test_expect_success "setup: $N small files in one directory" '
	mkdir "$D/src" &&
	py_ - "$D/src/big" "$N" <<-\EOF
	import os, sys
	d, n = sys.argv[1], int(sys.argv[2])
	os.mkdir(d)
	for i in range(n):
	    with open(os.path.join(d, "entry-%07d" % i), "wb") as f:
	        f.write(b"%d\n" % i)
	    if i % 1000 == 7:
	        os.symlink("entry-%07d" % (i - 1), os.path.join(d, "link-%07d" % i))
	EOF
'

# peak_kb CMD...: the peak RSS in KiB of CMD and its children (ASan
# quarantine off: it keeps freed memory, which is not what is measured)
peak_kb() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0" \
		/usr/bin/time -f "%M KiB peak" "$@" 2>peak.err >/dev/null &&
	sed -n "s/^\([0-9]*\) KiB peak$/\1/p" peak.err
}

test_expect_success '28: the full sync with a 256 KiB stack gives O2' '
	mkdir -p "$D/one" && echo 1 >"$D/one/f" &&
	base=$(peak_kb autosync sync "$D/one" "$D/one-dst") &&
	kb=$(ulimit -s 256 && peak_kb autosync sync "$D/src" "$D/dst") &&
	per=$(( (kb - base) * 1024 / N )) &&
	echo "peak $kb KiB, one-file sync $base KiB: $per bytes per entry" &&
	test $per -lt 1000 &&
	test "$(ls -f "$D/dst/big" | wc -l)" = "$(ls -f "$D/src/big" | wc -l)" &&
	assert_same_tree "$D/src" "$D/dst"
'

test_expect_success '28: 1% changed, added and removed: only those travel' '
	py_ - "$D/src/big" "$N" <<-\EOF &&
	import os, sys
	d, n = sys.argv[1], int(sys.argv[2])
	for i in range(0, n, 300):
	    with open(os.path.join(d, "entry-%07d" % i), "ab") as f:
	        f.write(b"changed\n")
	    os.unlink(os.path.join(d, "entry-%07d" % (i + 1)))
	    with open(os.path.join(d, "new-%07d" % i), "wb") as f:
	        f.write(b"new\n")
	EOF
	(ulimit -s 256 && exec autosync sync -v "$D/src" "$D/dst") >out 2>&1 &&
	cat out &&
	sent=$(sed -n "s/^ *sent \\([0-9]*\\) entries.*/\\1/p" out) &&
	echo "sent $sent entries" &&
	test "$sent" -le $((N / 100 + 10)) &&
	assert_same_tree "$D/src" "$D/dst"
'

test_expect_success '28: nothing changed: a stream of a few hundred bytes' '
	autosync sync -v "$D/src" "$D/dst" >out 2>&1 &&
	cat out &&
	grep -q "sent 0 entries, 0 B of data" out &&
	bytes=$(sed -n "s/.*of data, \\([0-9]*\\) B stream.*/\\1/p" out) &&
	echo "stream: $bytes bytes" && test "$bytes" -lt 1024 &&
	assert_same_tree "$D/src" "$D/dst"
'

test_done
