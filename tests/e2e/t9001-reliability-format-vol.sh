#!/bin/bash
test_description='RELIABILITY.md §A on volume streams: cases 1, 2, 5, 7, 8,
10, 12, 13

A volume stream is the portable format (kind 2) with one entry, the
volume, applied by vol.c: a full one written in place into an image marked
incomplete until its END, an incremental through a journal.  Truncated,
bit-flipped, replayed, reordered, out-of-range, unknown and degenerate
streams (tests/tools/mkstream) must give their class (truncated 10,
checksum 11, malformed 12, unsupported 13, limit 15, conflict 20; a size
the file system cannot hold is NOSPACE 41), and:
- into a volume holding v1: its sha256 unchanged and its record still
  "complete" at v1 (O1), and it still takes the real incremental (O2);
- into a new image: nothing, or an image marked incomplete, never larger
  than the stream said, that no incremental accepts (never a replica).'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-hostile.sh"
. "$TEST_DIRECTORY/lib-vol.sh"

V=$TRASH_DIRECTORY/v
mkdir -p "$V"
CASES=0

# vrecv IMG STREAM: receive; exit status in recv_rc, stderr in $T/recv.err
vrecv() {
	autosync receive "vol:$1" <"$2" >/dev/null 2>"$T/recv.err"
	recv_rc=$?
}

# vhostile WANT KIND STREAM: KIND dst: into $V/b.img (holds v1); fresh: into
# a new $V/f.img.  Exit in WANT, the oracle of the description.
vhostile() {
	local want=$1 kind=$2 stream=$3 img=$V/b.img
	CASES=$((CASES + 1))
	if test "$kind" = fresh; then
		rm -f "$V"/f.img* && img=$V/f.img
	fi
	vrecv "$img" "$stream"
	case "|$want|" in
	*"|$recv_rc|"*) ;;
	*)	echo "'$(basename "$stream")' into $kind: exit $recv_rc, want $want" >&2
		cat "$T/recv.err" >&2
		return 1 ;;
	esac
	clean_stderr "$T/recv.err" || return 1
	if test "$kind" = dst; then
		test "$(sha "$img")" = "$(cat "$T/b.sha")" &&
		grep -qx "guid $V1" "$img.autosync" &&
		grep -qx "state complete" "$img.autosync" || {
			echo "'$(basename "$stream")' changed the volume" >&2
			cat "$img.autosync" >&2
			return 1
		}
	elif test -e "$img"; then
		grep -qx "state incomplete" "$img.autosync" &&
		test "$(stat -c %s "$img")" -le $((1 << 20)) &&
		test "$(du -k "$img" | cut -f1)" -le 1100 || {
			echo "'$(basename "$stream")' left an image that is not" \
				"marked incomplete, or a big one:" >&2
			ls -ls "$V" >&2; cat "$img.autosync" >&2
			return 1
		}
	fi
}

# vs WANT KIND NAME [MKSTREAM ARGS] [< SCRIPT]: build, then vhostile
vs() {
	local want=$1 kind=$2 name=$3 s
	shift 3
	s=$(ms "$name" "$@") && vhostile "$want" "$kind" "$s"
}

vol_begin() { echo "begin kind=2 target=0x5555 name=hostile"; }

test_expect_success 'setup: a 1 MiB image, v1 and v2, received v1' '
	truncate -s 1M a.img && scribble a.img 6 &&
	autosync snapshot vol:a.img@v1 && autosync send vol:a.img@v1 >full.as &&
	scribble a.img 3 && cp a.img a-v2.img &&
	autosync snapshot vol:a.img@v2 &&
	autosync send -i @v1 vol:a.img@v2 >incr.as &&
	autosync receive vol:v/b.img <full.as &&
	sha v/b.img >b.sha &&
	V1=$(sed -n "s/^guid //p" v/b.img.autosync) && test -n "$V1" &&
	records full.as >full.rec && records incr.as >incr.rec &&
	cat incr.rec && test $(wc -l <incr.rec) -ge 4
'

# --- 1. truncation ----------------------------------------------------------

cut_points() {	# RECORDS_FILE: boundaries, inside every header and check
	awk '{ off = $2; len = $4
		print off; print off + 2; print off + 7; print off + 8
		if (len > 1) print off + 8 + int(len / 2)
		print off + 8 + len; print off + 12 + len }' "$1" |
		awk '$1 > 0' | sort -n -u
}

test_expect_success '1: an incremental cut at every record boundary and inside every field: TRUNCATED, O1' '
	total=$(file_size incr.as) &&
	for off in $(cut_points incr.rec); do
		test "$off" -lt "$total" || continue
		head -c "$off" incr.as >"$CORPUS/vtrunc-incr-$off.as" &&
		vhostile 10 dst "$CORPUS/vtrunc-incr-$off.as" || return 1
	done
'

test_expect_success '1: an incremental cut at 12 random offsets: TRUNCATED, O1' '
	total=$(file_size incr.as) && RANDOM=9001 &&
	for i in $(seq 12); do
		off=$(( (RANDOM * 32768 + RANDOM) % (total - 1) + 1 )) &&
		head -c "$off" incr.as >"$T/cut.as" &&
		vhostile 10 dst "$T/cut.as" || { echo "offset $off"; return 1; }
	done
'

test_expect_success '1: a full stream cut at every record boundary, inside headers and payloads: TRUNCATED, never a replica' '
	total=$(file_size full.as) &&
	for off in $(awk "{ print \$2; print \$2 + 5; print \$2 + 8 + int(\$4 / 2) }" full.rec | awk "\$1 > 0"); do
		test "$off" -lt "$total" || continue
		head -c "$off" full.as >"$CORPUS/vtrunc-full-$off.as" &&
		vhostile 10 fresh "$CORPUS/vtrunc-full-$off.as" || return 1
	done &&
	test -e v/f.img &&
	test_expect_code 20 autosync receive vol:v/f.img <incr.as 2>err &&
	cat err
'

# --- 2. bit flips -------------------------------------------------------------

test_expect_success '2: a flipped bit in every header field and check, and in payloads: CHECKSUM' '
	offs=$(awk "BEGIN { srand(2) } { off = \$2; len = \$4
		print off; print off + 2; print off + 4; print off + 7
		print off + 8 + len; print off + 11 + len; print off + 15 + len
		for (i = 0; i < 2 && len > 0; i++) print off + 8 + int(rand() * len) }" incr.rec) &&
	n=0 &&
	for off in $offs; do
		bit=$(( (off * 5 + 1) % 8 )) &&
		mks --in incr.as --no-rechain --flip "$off:$bit" >"$T/flip.as" &&
		vhostile "11|12" dst "$T/flip.as" || { echo "offset $off bit $bit"; return 1; }
		n=$((n + 1))
	done &&
	echo "$n flips"
'

test_expect_success '2: a flipped bit in a full stream: CHECKSUM, never a replica' '
	total=$(file_size full.as) &&
	for off in 0 9 100 $((total / 2)) $((total - 20)) $((total - 1)); do
		vs "11|12" fresh "vflip-full-$off" --in full.as --no-rechain \
			--flip "$off:2" || return 1
	done
'

# --- 5. replay, reorder, splice -----------------------------------------------

test_expect_success '5: replayed, swapped and dropped records (checks kept): CHECKSUM' '
	n=$(wc -l <incr.rec) &&
	for i in $(seq 0 $((n - 1))); do
		if test "$i" = $((n - 1)); then want="11|12"; else want=11; fi &&
		vs "$want" dst "vdup-$i" --in incr.as --no-rechain --dup "$i" &&
		if test "$i" -lt $((n - 1)); then
			vs 11 dst "vswap-$i" --in incr.as --no-rechain --swap "$i:$((i + 1))"
		fi &&
		if test "$i" -gt 0 && test "$i" -lt $((n - 1)); then
			vs 11 dst "vdrop-$i" --in incr.as --no-rechain --drop "$i"
		fi || return 1
	done
'

test_expect_success '5: re-chained: a second BEGIN, a second entry, DATA replayed, records after END, trailing bytes: MALFORMED' '
	vs 12 dst vsecond-begin --in incr.as --dup 0 &&
	vs 12 dst vsecond-entry --in incr.as --dup 1 &&
	vs 12 dst vdata-replayed --in incr.as --dup 2 &&
	vs 12 dst vend-twice --in incr.as --dup -1 &&
	vs 12 dst vtrailing --in incr.as --append hex:00 &&
	vs 12 dst vtrailing-text --in incr.as --append "garbage\\n" &&
	vs 12 fresh vfull-data-swapped --in full.as --swap 2:3
'

# --- 7. offsets and sizes -----------------------------------------------------

test_expect_success '7: data and holes outside the volume, wrapping or out of order: MALFORMED, no big file' '
	for spec in \
	    "size=1048576|data off=1048576 fill=1 len=65536" \
	    "size=1048576|data off=0xffffffffffff0000 fill=1 len=65536" \
	    "size=1048576|data off=0xffffffffffffffff fill=1 len=2" \
	    "size=1048576|hole off=1048576 len=65536" \
	    "size=1048576|hole off=65536 len=0xffffffffffff0000" \
	    "size=1048576|data off=983040 fill=1 len=65537" \
	    "size=1048576|data off=65536 fill=1 len=65536|data off=0 fill=1 len=65536" \
	    "size=1048576|hole off=65536 len=65536|hole off=0 len=65536" \
	    "size=0|data off=0 fill=1 len=1"; do
		i=$((${i:-0} + 1)) &&
		{ vol_begin; echo "entry path=volume ${spec%%|*}"
		  echo "${spec#*|}" | tr "|" "\n"; echo end; } |
			vs 12 fresh "voffset-$i" || { echo "case: $spec"; return 1; }
	done
'

test_expect_success '7: a volume of 2^62 or 2^63 bytes: refused, no huge sparse file' '
	{ vol_begin; echo "entry path=volume size=0x4000000000000000"
	  echo "hole off=0 len=0x4000000000000000"; echo end; } |
		vs "12|15|41" fresh vsize-2e62 &&
	{ vol_begin; echo "entry path=volume size=0x8000000000000000"
	  echo "hole off=0 len=65536"; echo end; } |
		vs "12|15|41" fresh vsize-2e63 &&
	{ vol_begin; echo "entry path=volume size=0x4000000000000000"
	  echo "data off=0x3fffffffffff0000 fill=1 len=65536"; echo end; } |
		vs "12|15|41" fresh vdata-2e62
'

test_expect_success '7: an incremental that writes past its volume: MALFORMED, O1' '
	base=$(sed -n "s/^guid //p" v/b.img.autosync) &&
	{ echo "begin kind=2 base=0x$base target=0x5556 name=h2"
	  echo "entry op=patch path=volume size=1048576"
	  echo "data off=1048576 fill=1 len=65536"; echo end; } |
		vs 12 dst vincr-past-end &&
	{ echo "begin kind=2 base=0x$base target=0x5556 name=h2"
	  echo "entry op=patch path=volume size=1048576"
	  echo "data off=0xffffffffffff0000 fill=1 len=65536"; echo end; } |
		vs 12 dst vincr-wrap
'

# --- 8. unknown and foreign ---------------------------------------------------

test_expect_success '8: a directory stream, an unknown kind, record type, version or feature: UNSUPPORTED' '
	mkdir d && echo x >d/x && autosync snapshot d@d1 &&
	autosync send d@d1 >"$CORPUS/vdir-stream.as" &&
	vhostile 13 fresh "$CORPUS/vdir-stream.as" &&
	vhostile 13 dst "$CORPUS/vdir-stream.as" &&
	printf "begin kind=99\nend\n" | vs 13 fresh vkind-99 &&
	{ vol_begin; echo "entry path=volume size=65536"; echo "raw type=7 hex:00"; echo end; } |
		vs 13 fresh vtype-7 &&
	printf "begin kind=2 version=2\nend\n" | vs 13 fresh vversion-2 &&
	printf "begin kind=2 required=1\nend\n" | vs 13 fresh vfeature-1
'

# --- 10. degenerate -----------------------------------------------------------

test_expect_success '10: empty, header-only, BEGIN-only, BEGIN+END, two entries, an xattr, a file entry: refused' '
	: >"$CORPUS/vempty.as" &&
	vhostile "10|12" fresh "$CORPUS/vempty.as" &&
	vhostile "10|12" dst "$CORPUS/vempty.as" &&
	head -c 8 full.as >"$CORPUS/vheader.as" &&
	vhostile "10|11" fresh "$CORPUS/vheader.as" &&
	n=$(awk "NR == 2 { print \$2 }" full.rec) &&
	head -c "$n" full.as >"$CORPUS/vbegin-only.as" &&
	vhostile 10 fresh "$CORPUS/vbegin-only.as" &&
	{ vol_begin; echo end; } | vs 12 fresh vbegin-end &&
	{ vol_begin; echo "entry path=volume size=65536"
	  echo "entry path=volume size=65536"; echo end; } | vs 12 fresh vtwo-entries &&
	{ vol_begin; echo "entry path=volume size=65536 nxattr=1"
	  echo "xattr name=user.a value=b"; echo end; } | vs 12 fresh vxattr &&
	{ vol_begin; echo "entry path=etc/passwd size=65536"; echo end; } |
		vs 12 fresh vfile-entry &&
	{ vol_begin; echo "entry path=volume ftype=lnk aux=/etc/shadow"; echo end; } |
		vs 12 fresh vlink-entry &&
	printf "begin kind=2 bs=0\nend\n" | vs 12 fresh vbs-0 &&
	{ vol_begin; echo "entry path=volume size=65536"; echo "data off=0"; echo end; } |
		vs 12 fresh vdata-len-0
'

# --- 12. wrong base or target -------------------------------------------------

test_expect_success '12: an incremental into nothing, from another base, a full one over a replica, another volume: CONFLICT' '
	vhostile 20 fresh "$T/incr.as" &&
	{ echo "begin kind=2 base=0x1234 target=0x5678 name=x"
	  echo "entry op=patch path=volume size=1048576"; echo end; } |
		vs 20 dst vwrong-base &&
	grep -q 0000000000001234 "$T/recv.err" &&
	vhostile 20 dst "$T/full.as" &&
	truncate -s 1M o.img && scribble o.img 2 &&
	autosync snapshot vol:o.img@o1 && scribble o.img 1 &&
	autosync snapshot vol:o.img@o2 &&
	autosync send -i @o1 vol:o.img@o2 >"$CORPUS/vother.as" &&
	vhostile 20 dst "$CORPUS/vother.as"
'

# --- 13. the offline verifier -------------------------------------------------

# receive -n reads and checks the whole stream against what the volume
# holds and writes nothing; its exit status must be the real receive'"'"'s
# for every stream of the corpus, into the replica of v1 (a fresh copy of
# it and its record for each real receive) and into a new image.
test_expect_success '13: receive -n gives the same exit status as receive for every volume stream of the corpus' '
	bad=0 n=0 &&
	for s in "$CORPUS"/v*.as; do
		# a cut incremental into nothing and a cut full stream over the
		# replica are refused at BEGIN: the other kind only, for time
		case $(basename "$s") in
		vtrunc-incr-*) kinds=dst ;;
		vtrunc-full-*) kinds=fresh ;;
		*) kinds="dst fresh" ;;
		esac
		for kind in $kinds; do
			rm -f v/s.img* &&
			if test $kind = dst; then
				cp v/b.img v/s.img && cp v/b.img.autosync v/s.img.autosync
			fi &&
			autosync receive -n vol:v/s.img <"$s" >/dev/null 2>&1; dry=$?
			if test $kind = fresh && test -e v/s.img; then
				echo "$(basename "$s"): receive -n created the image"
				bad=$((bad + 1))
			fi
			vrecv v/s.img "$s"; real=$recv_rc
			n=$((n + 1))
			if test "$dry" != "$real"; then
				echo "$(basename "$s") into $kind: receive $real, receive -n $dry"
				bad=$((bad + 1))
			fi
		done
	done &&
	echo "$n receives compared" && test "$n" -gt 20 &&
	test "$bad" = 0 &&
	cp v/b.img v/s.img && cp v/b.img.autosync v/s.img.autosync &&
	autosync receive -n vol:v/s.img <incr.as &&
	cmp v/b.img v/s.img && cmp v/b.img.autosync v/s.img.autosync
'

test_expect_success 'O1, O2: after all of it the volume is v1, and takes v2' '
	echo "$CASES hostile volume streams" &&
	test "$(sha v/b.img)" = "$(cat b.sha)" &&
	autosync receive vol:v/b.img <incr.as &&
	test "$(sha v/b.img)" = "$(sha a-v2.img)" &&
	test_path_is_missing v/b.img.autosync-journal
'

test_done
