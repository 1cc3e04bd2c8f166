#!/bin/bash
# mkcorpus.sh - regenerate the mkstream-made seeds of tests/fuzz/corpus/.
#
# usage: tests/fuzz/mkcorpus.sh [MKSTREAM]   (default build/tests/mkstream)
#
# Writes corpus/stream/ms-*.as (valid streams with every record type and
# the hostile cases of RELIABILITY.md section 3A), corpus/catalog/ms-*.cat
# and corpus/path/*.  Files stay small (< 64 KiB each).
#
# The send-* seeds are left alone: they were made by the real sender from
# a small tree with every kind of entry (0/1/4095/4096/4097-byte files, a
# sparse file, a hard link, relative, absolute and dangling symlinks, a
# FIFO, xattrs, a 255-byte name, a control-character name, depth 50):
# send-full.as, then send-incr.as after renames, deletes, type changes,
# chmod, xattr and block changes; send-empty.as of an empty tree; and the
# catalogs send-*.cat from the state directory and DEST/.autosync.
# Refresh them by hand when the format changes.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mk=${1:-$root/build/tests/mkstream}
sc="$here/corpus/stream"
cc="$here/corpus/catalog"
pc="$here/corpus/path"
mkdir -p "$sc" "$cc" "$pc"
rm -f "$sc"/ms-*.as "$cc"/ms-*.cat "$pc"/ms-*

# ms NAME [MKSTREAM OPTIONS] < SCRIPT
ms() {
	local name=$1
	shift
	"$mk" "$@" >"$sc/ms-$name.as"
}

base='begin target=0x2a name=monday source=/srv/data time=1700000000000000000
entry op=attr ftype=dir path= mtime=1700000000 nsec=5
entry ftype=dir path=d perm=0750 uid=1000 gid=1000
entry ftype=reg path=d/f size=9000 nxattr=2 mtime=-1 nsec=999999999
xattr name=user.a value=hex:6869
xattr name=security.capability value=hex:0100000200200000000000000000000000000000
data off=0 fill=0x41 len=100
hole off=100 len=4000
data off=4100 fill=0x42 len=4900
entry ftype=reg path=d/empty
entry ftype=lnk path=d/l aux=../d/f
entry ftype=lnk path=abs aux=/etc/passwd
entry ftype=fifo path=p
entry ftype=sock path=s
entry ftype=chr path=null rdev=0x103
entry ftype=blk path=sda rdev=0x800
entry ftype=reg path=suid perm=04755 size=1
data off=0 hex:7f
entry op=link path=d/f2 aux=d/f ftype=reg size=9000
entry ftype=reg path=ctl\e[31m\n size=0
end'
echo "$base" | ms full
echo "$base" | ms full-norechain --no-rechain
incr='begin base=0x2a target=0x2b name=tuesday
entry op=attr ftype=dir path=
entry op=patch path=d/f size=8192 nxattr=1
xattr name=user.b value=rep:16:xy
data off=4096 fill=0x43 len=4096
entry op=rename ftype=dir path=e aux=d
entry op=delete ftype=lnk path=abs
entry op=attr ftype=reg path=suid perm=0755
entry op=delete ftype=reg path=e/empty
entry ftype=dir path=abs
entry op=link ftype=reg path=abs/h aux=e/f size=8192
end'
echo "$incr" | ms incr
printf 'begin\nend\n' | ms begin-end
printf 'begin\n' | ms begin-only
printf 'begin name=rep:255:n source=rep:4095:s\nend\n' | ms long-names
printf 'begin\nentry ftype=reg path=rep:255:a size=1\ndata off=0 hex:00\nend\n' |
    ms name255
# hostile: one per RELIABILITY section 3A case, as regression seeds
echo "$base" | ms trunc --truncate -5
echo "$base" | ms flip --flip 200:3
echo "$base" | ms dup --dup 3
echo "$base" | ms swap --swap 6:8
echo "$base" | ms drop --drop 4
echo "$base" | ms after-end --append "$(printf 'hex:%s' 00)"
printf 'begin\nend\nbegin target=0x2b\n' | ms rec-after-end
printf 'begin\nbegin target=0x2b\nend\n' | ms two-begins
printf 'begin\nentry path=x size=4\n' | ms setlen --set-len 1:4294967295
printf 'begin\nentry path=x nxattr=4294967295\nend\n' | ms nxattr-max
printf 'begin\nentry path=x size=0x7fffffffffffffff\nend\n' | ms size-max
printf 'begin\nentry path=x size=8192\ndata off=0xfffffffffffff000 fill=1 len=8192\nend\n' |
    ms data-wrap
printf 'begin\nentry path=x size=8192\nhole off=4096 len=0xfffffffffffff000\nend\n' |
    ms hole-wrap
printf 'begin version=2\nend\n' | ms version
printf 'begin required=1\nend\n' | ms feature
printf 'begin\nraw type=7 hex:00\nend\n' | ms type7
printf 'begin\nentry path=a\\0b\nend\n' | ms nul-path
printf 'begin\nentry path=../x\nend\n' | ms dotdot
printf 'begin\nentry path=/etc/x\nend\n' | ms abs
printf 'begin\nentry path=x path_len=65535\nend\n' | ms path-len
printf 'begin\nentry path=.autosync/x\nend\n' | ms private
printf 'begin bs=0\nend\n' | ms bs0
printf 'begin\nentry path=x mtime=-9223372036854775808 nsec=1000000000\nend\n' |
    ms nsec
printf 'begin\nentry path=x nxattr=1\nxattr name=user.a value_len=1073741824\nend\n' |
    ms xattr-huge
: >"$sc/ms-empty.as"

# catalogs: framing with the catalog seed, payloads as catalog.c lays them
le16() { printf '%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)); }
le32() { le16 $(($1 & 65535)); le16 $(($1 >> 16 & 65535)); }
le64() { le32 $(($1 & 0xffffffff)); le32 $(($1 >> 32 & 0xffffffff)); }
hexs() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
cat_hdr() {	# name source guid
	printf 'raw type=0x101 hex:%s%s%s%s%s%s%s%s%s%s%s\n' \
	    "$(le32 1)" "$(le32 1)" "$(le32 65536)" "$(le32 0)" \
	    "$(le64 "$3")" "$(le64 0)" "$(le64 1700000000)" \
	    "$(le16 ${#1})" "$(le16 ${#2})" "$(hexs "$1")" "$(hexs "$2")"
}
cat_ent() {	# path mode size ino nblocks [aux] [xattrblobhex]
	local aux=${6:-} xb=${7:-} h=""
	local i
	for ((i = 0; i < $5; i++)); do
		h="$h$(printf '%032x' "$i")"
	done
	printf 'raw type=0x102 hex:%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s\n' \
	    "$(le32 "$2")" "$(le32 0)" "$(le32 0)" "$(le32 1)" "$(le32 0)" \
	    "$(le64 "$4")" "$(le64 "$3")" "$(le64 0)" "$(le64 1700000000)" \
	    "$(le64 1700000000)" "$(le32 0)" "$(le32 0)" "$(le32 "$5")" \
	    "$(le16 ${#1})" "$(le16 ${#aux})" "$(le32 $((${#xb} / 2)))" \
	    "$(hexs "$1")" "$(hexs "$aux")" "$xb" "$h"
}
cat_end() { printf 'raw type=0x103 hex:%s\n' "$(le64 "$1")"; }
xblob="$(le16 6)$(le32 2)$(hexs user.a)6869"
{
	cat_hdr monday /srv/data 42
	cat_ent "" $((0040755)) 0 2 0
	cat_ent d $((0040755)) 0 3 0
	cat_ent d/f $((0100644)) 70000 4 2 "" "$xblob"
	cat_ent d/h $((0100644)) 70000 4 2
	cat_ent d/l $((0120777)) 0 5 0 ../x
	cat_end 5
} | "$mk" --seed catalog >"$cc/ms-small.cat"
{
	cat_hdr e /x 7
	cat_end 0
} | "$mk" --seed catalog >"$cc/ms-empty.cat"
{
	cat_hdr big /x 9
	cat_ent "" $((0040755)) 0 2 0
	cat_ent f $((0100644)) $((65536 * 3)) 3 3
	cat_end 2
} | "$mk" --seed catalog >"$cc/ms-hashes.cat"

# paths: byte 0 bit 0 = allow_root, then path, 0xff, second path
p() { printf '%b' "$2" >"$pc/ms-$1"; }
p ok '\x00a/b/c\xffa/b'
p root '\x01\xffa'
p dotdot '\x00a/../b'
p dot '\x00./a'
p abs '\x00/etc/passwd'
p trail '\x00a/'
p dbl '\x00a//b'
p nul '\x00a\x00b'
p priv '\x00.autosync/x\xff.autosyncx'
p ctl '\x00\x1b[31m\n\xff\x1b'
printf '\x00%s' "$(head -c 255 /dev/zero | tr '\0' a)" >"$pc/ms-255"
printf '\x00%s' "$(head -c 256 /dev/zero | tr '\0' a)" >"$pc/ms-256"
ls "$sc" "$cc" "$pc" | grep -c . >/dev/null
echo "corpus: $(ls "$sc" | wc -l) streams, $(ls "$cc" | wc -l) catalogs," \
    "$(ls "$pc" | wc -l) paths, $(du -sk "$here/corpus" | cut -f1) KiB"
