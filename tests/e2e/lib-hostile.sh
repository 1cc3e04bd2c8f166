# lib-hostile.sh - helpers shared by the hostile-stream tests (t1001,
# t2101), sourced after test-lib.sh.  Not a test script itself.
#
# Streams are built with tests/tools/mkstream ($MKSTREAM).  A "hostile"
# receive must exit with an expected error class and leave the
# destination as it was (O1), without staging, without raw control bytes
# on stderr, and, when sentinels were set up, with every object outside
# the destination as it was (O4).

MKSTREAM=${MKSTREAM:-$TEST_ROOT/build/tests/mkstream}
if ! test -x "$MKSTREAM"; then
	test_skip_all "no mkstream at '$MKSTREAM' (build the tests first)"
fi
mks() { "$MKSTREAM" "$@"; }

T=$TRASH_DIRECTORY
CORPUS=$T/corpus		# every hostile stream tried: NAME.as
CORPUS_LIST=$T/corpus.list	# "FILE KIND EXIT" per stream tried
DST=$T/dst			# the reference destination (holds a snapshot)
FRESH=$T/fresh			# an empty destination, made anew per try
OUTSIDE=$T/outside		# sentinels (RELIABILITY.md 2.1)
mkdir -p "$CORPUS"
: >"$CORPUS_LIST"
RECV_WRAP=()			# a command prefix for receive (limits)
SENTINEL_STATE=			# set by sentinels_setup
dst_fp=

# fp DIR: a cheap O1 fingerprint, one line per entry below DIR except
# .autosync: type, mode, owner, size, mtime, ctime, inode, link target.
fp() {
	(cd "$1" && find . -path ./.autosync -prune -o \
		-printf '%p %y %m %U %G %s %T@ %C@ %i %l\n' | LC_ALL=C sort)
}

# held_guid DEST: the GUID DEST holds, from its held catalog's header.
held_guid() {
	od -An -tx8 -j24 -N8 "$1/.autosync/held.cat" | tr -d ' \n'
}

# recv DEST STREAM [OPTION...]: run receive; exit status in recv_rc,
# output in $T/recv.out and $T/recv.err.
recv() {
	local dest=$1 stream=$2
	shift 2
	"${RECV_WRAP[@]}" autosync receive "$@" "$dest" <"$stream" \
		>"$T/recv.out" 2>"$T/recv.err"
	recv_rc=$?
}

# The destination's private directory holds no staging or journal.
no_staging() {
	if test -e "$1/.autosync/stage" || test -e "$1/.autosync/journal"; then
		echo "staging left in '$1/.autosync':" >&2
		ls -la "$1/.autosync" >&2
		return 1
	fi
}

# clean_stderr FILE: an error report is printable text (no terminal
# escapes or other raw control bytes) and says what failed.
clean_stderr() {
	if LC_ALL=C grep -qaP '[\x00-\x08\x0b-\x1f\x7f]' "$1"; then
		echo "raw control bytes in '$1':" >&2
		od -c "$1" | head -n 20 >&2
		return 1
	fi
	if test "$recv_rc" != 0 && ! grep -q '^autosync: ' "$1"; then
		echo "no 'autosync: ...' error line:" >&2
		cat "$1" >&2
		return 1
	fi
}

fresh_dest() {
	rm -rf "$FRESH" && mkdir "$FRESH"
}

# fresh_untouched: FRESH still holds nothing (its .autosync aside), no
# staging, and nothing big was written anywhere below it.
fresh_untouched() {
	local left
	left=$(ls -A "$FRESH" | grep -vx '.autosync')
	if test -n "$left"; then
		echo "a failed receive left entries in the destination:" >&2
		echo "$left" >&2
		return 1
	fi
	no_staging "$FRESH" || return 1
	if test "$(du -sk "$FRESH" | cut -f1)" -gt 1024 ||
	   test -n "$(find "$FRESH" -size +1M)"; then
		echo "a failed receive left big files behind:" >&2
		find "$FRESH" -ls >&2
		return 1
	fi
}

# --- sentinels (O4) -----------------------------------------------------

# sentinel_state [noctime]: everything about the objects below $OUTSIDE:
# type, mode, owner, size, mtime, ctime, inode, link count, target,
# content hash, xattrs.
sentinel_state() {
	local ctime='%C@ '
	test "${1:-}" = noctime && ctime=
	(cd "$OUTSIDE" &&
	find . -printf "%p %y %m %U %G %s %T@ $ctime%i %n %l\n" | LC_ALL=C sort &&
	find . -type f -exec sha256sum {} + | LC_ALL=C sort &&
	if command -v getfattr >/dev/null; then
		getfattr -R -h -P -d -m - -e hex . 2>/dev/null
	fi)
}

# sentinels_setup: $OUTSIDE/{victim,victimdir/,victim.sh} beside the
# destinations, with known content, mode 0644, owner 12345 (as root), a
# fixed mtime and an xattr.
sentinels_setup() {
	mkdir -p "$OUTSIDE/victimdir" &&
	echo "victim content" >"$OUTSIDE/victim" &&
	echo "inner" >"$OUTSIDE/victimdir/inner" &&
	printf '#!/bin/sh\necho victim\n' >"$OUTSIDE/victim.sh" &&
	chmod 0644 "$OUTSIDE/victim" "$OUTSIDE/victimdir/inner" &&
	chmod 0755 "$OUTSIDE/victim.sh" "$OUTSIDE/victimdir" || return 1
	if test_have_prereq ROOT; then
		chown -R 12345:12345 "$OUTSIDE" || return 1
	fi
	if test_have_prereq XATTR; then
		setfattr -n user.sentinel -v untouched "$OUTSIDE/victim" &&
		setfattr -n user.sentinel -v untouched "$OUTSIDE/victimdir" ||
			return 1
	fi
	touch -h -d '2001-02-03 04:05:06.123456789' "$OUTSIDE/victim" \
		"$OUTSIDE/victim.sh" "$OUTSIDE/victimdir/inner" \
		"$OUTSIDE/victimdir" "$OUTSIDE" &&
	SENTINEL_STATE=$(sentinel_state)
}

# confined: O4, the sentinels are exactly as they were set up.
confined() {
	test -z "$SENTINEL_STATE" && return 0
	local now
	now=$(sentinel_state)
	test "$now" = "$SENTINEL_STATE" && return 0
	echo "O4 broken: something outside the destination changed:" >&2
	diff <(echo "$SENTINEL_STATE") <(echo "$now") >&2
	return 1
}

# --- hostile receives -----------------------------------------------------

# hostile WANT KIND STREAM [OPTION...]: receiving STREAM must exit with one
# of WANT ("11" or "11|12") and leave the destination as it was.  KIND
# dst: $DST as fingerprinted in dst_fp; fresh: a new empty directory.  The
# stream joins the corpus for the dry-run comparison.
hostile() {
	local want=$1 kind=$2 stream=$3 d=$DST
	shift 3
	if test "$kind" = fresh; then
		fresh_dest || return 1
		d=$FRESH
	fi
	recv "$d" "$stream" "$@"
	test "$#" != 0 || echo "$stream $kind $recv_rc" >>"$CORPUS_LIST"
	case "|$want|" in
	*"|$recv_rc|"*) ;;
	*)
		echo "hostile: '$(basename "$stream")' into $kind exited" \
			"$recv_rc, want $want" >&2
		tail -n 20 "$T/recv.err" >&2
		return 1 ;;
	esac
	clean_stderr "$T/recv.err" || return 1
	confined || return 1
	if test "$kind" = fresh; then
		fresh_untouched || return 1
	else
		no_staging "$DST" || return 1
		if test "$(fp "$DST")" != "$dst_fp"; then
			echo "hostile: '$(basename "$stream")' changed the" \
				"destination:" >&2
			diff <(echo "$dst_fp") <(fp "$DST") | head -n 20 >&2
			return 1
		fi
	fi
}

# ms NAME [MKSTREAM ARGS] [< SCRIPT]: build a corpus stream, print its path.
ms() {
	local name=$1
	shift
	mks "$@" >"$CORPUS/$name.as" || {
		echo "mkstream failed for '$name'" >&2
		return 1
	}
	echo "$CORPUS/$name.as"
}

# hs WANT KIND NAME [MKSTREAM ARGS] [< SCRIPT]: ms, then hostile.
hs() {
	local want=$1 kind=$2 name=$3 s
	shift 3
	s=$(ms "$name" "$@") && hostile "$want" "$kind" "$s"
}

# Stream headers for scripts: a full stream (into FRESH) or an incremental
# from what DEST (default $DST) holds.
full_begin() { echo "begin target=0x7777 name=hostile"; }
incr_begin() {
	echo "begin base=0x$(held_guid "${1:-$DST}") target=0x7778 name=hostile2"
}

# records STREAM: "INDEX OFFSET TYPE LEN" per record.
records() { mks --list --in "$1" | grep -v '^total'; }
