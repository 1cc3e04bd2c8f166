# lib-btrfs.sh - helpers for the btrfs tests (t31xx, t70xx): file systems on
# image files, loop-mounted by the test itself (mount -o loop: the loop
# device is released when test-lib unmounts it), and a logging shim.
#
# Sets the prerequisite BTRFS when we are root and mkfs.btrfs, btrfs and
# the kernel's btrfs are there.

if test "$(id -u)" = 0 && command -v mkfs.btrfs >/dev/null &&
   command -v btrfs >/dev/null &&
   { grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null; }; then
	test_set_prereq BTRFS
	REAL_BTRFS=$(command -v btrfs)
fi

# btrfs_fs NAME [SIZE]: an empty btrfs in NAME.img mounted at NAME.
btrfs_fs() {
	local name=$1 size=${2:-300M}
	rm -f "$name.img" &&
	truncate -s "$size" "$name.img" &&
	mkfs.btrfs -q -f "$name.img" >/dev/null 2>&1 &&
	mkdir -p "$name" &&
	test_mount -o loop "$name.img" "$name"
}

# The logging shim (zrepl's logmockzfs): "btrfs" first on PATH in
# $BTRFS_SHIM_DIR appends its argv (one line, words separated by
# spaces) to $BTRFS_SHIM_LOG and execs the real btrfs.  With
# BTRFS_SHIM_STALL=FILE, a receive gets the first 256 KiB of its stream,
# FILE is created, and the rest never comes (for kill -9 mid-receive).
# With BTRFS_SHIM_HANG="WORDS:FILE", a command whose argv starts with
# WORDS creates FILE and hangs before it runs.  With
# BTRFS_SHIM_TRUNCATE=N, send's stream is cut after N bytes.
BTRFS_SHIM_DIR=$TRASH_DIRECTORY/.btrfs-shim
BTRFS_SHIM_LOG=$TRASH_DIRECTORY/btrfs.log
btrfs_shim_install() {
	mkdir -p "$BTRFS_SHIM_DIR" &&
	cat >"$BTRFS_SHIM_DIR/btrfs" <<-SHIM &&
	#!/bin/bash
	echo "\$*" >>"$BTRFS_SHIM_LOG"
	if test -n "\$BTRFS_SHIM_STALL" && test "\$1" = receive; then
		{ head -c 262144; touch "\$BTRFS_SHIM_STALL"; sleep 600; } |
			"$REAL_BTRFS" "\$@"
		exit
	fi
	if test -n "\$BTRFS_SHIM_HANG"; then
		case "\$*" in "\${BTRFS_SHIM_HANG%%:*}"*)
			touch "\${BTRFS_SHIM_HANG#*:}"; sleep 600; exit 1 ;;
		esac
	fi
	if test -n "\$BTRFS_SHIM_TRUNCATE" && test "\$1" = send; then
		set -o pipefail
		"$REAL_BTRFS" "\$@" | head -c "\$BTRFS_SHIM_TRUNCATE"
		exit 0
	fi
	exec "$REAL_BTRFS" "\$@"
	SHIM
	chmod +x "$BTRFS_SHIM_DIR/btrfs"
}

# shimmed CMD...: run CMD with the shim first on PATH, log emptied first.
shimmed() {
	: >"$BTRFS_SHIM_LOG" &&
	PATH=$BTRFS_SHIM_DIR:$PATH "$@"
}

# btrfs_ro PATH: PATH is a read-only subvolume
btrfs_ro() {
	btrfs property get -ts "$1" ro | grep -qx 'ro=true'
}

# btrfs_rw SUBVOL: the subvolume is writable (not ro)
btrfs_rw() { ! btrfs_ro "$1"; }

# btrfs_field PATH FIELD: a field of `btrfs subvolume show`
btrfs_field() {
	btrfs subvolume show "$1" | sed -n "s/^[[:space:]]*$2:[[:space:]]*//p"
}

# The autosync_* snapshots in DIR, one per line.
autosync_snaps() {
	ls -1 "$1" 2>/dev/null | grep '^autosync_' || :
}

# Trees of nested subvolumes (t3110, t7019, t7020).

# btrfs_tree ROOT: the subvolume ROOT, "one" nested in it and "two" in
# that (SUBS=". one one/two"), 1 MiB of random data in each, a file and
# its hard link in one/d
btrfs_tree() {
	btrfs subvolume create "$1" >/dev/null &&
	btrfs subvolume create "$1/one" >/dev/null &&
	btrfs subvolume create "$1/one/two" >/dev/null &&
	head -c 1048576 /dev/urandom >"$1/big" &&
	head -c 1048576 /dev/urandom >"$1/one/big1" &&
	head -c 1048576 /dev/urandom >"$1/one/two/big2" &&
	mkdir "$1/one/d" && echo x >"$1/one/d/x" &&
	ln "$1/one/d/x" "$1/one/d/hard"
}

# same_tree X Y: the same trees, contents, modes, links, xattrs (the
# snapshot directories left out)
same_tree() {
	test -z "$(rsync -naHAXc --delete --exclude=.autosync-snapshots \
		--out-format=%n "$1/" "$2/")" && diff -r "$1" "$2" >/dev/null
}

# is_subvol PATH: PATH is a subvolume's root (inode 256)
is_subvol() { test "$(stat -c %i "$1")" = 256; }

# all_ro ROOT / all_rw ROOT / subvols ROOT: each of $SUBS (set by the
# test: the root "." and its nested subvolumes, relative to ROOT) is
# read-only / writable / a subvolume's root
all_ro() {
	local s
	for s in $SUBS; do btrfs_ro "$1/$s" || return 1; done
}
all_rw() {
	local s
	for s in $SUBS; do btrfs_rw "$1/$s" || return 1; done
}
subvols() {
	local s
	for s in $SUBS; do is_subvol "$1/$s" || return 1; done
}

# sends_p N: the shim saw N incremental sends and no full one
sends_p() {
	local p f
	p=$(grep -c "^send .*-p " "$BTRFS_SHIM_LOG")
	f=$(grep "^send " "$BTRFS_SHIM_LOG" | grep -vc -- " -p ")
	echo "# send -p: $p, full sends: $f"
	test "$p" = "$1" && test "$f" = 0
}

# received_is SNAP_A SNAP_B: SNAP_A received SNAP_B (its received_uuid
# is SNAP_B's UUID)
received_is() {
	test "$(btrfs_field "$1" "Received UUID")" = "$(btrfs_field "$2" UUID)"
}

# Between machines (source lib-net.sh first).  btrfs_serve A B: keys for
# the clients alice and mallory (keys-NAME/ in the trash directory) and
# a real "autosync serve" over tcp on 127.0.0.1:$SPORT, the shim first on
# its PATH (BTRFS_SHIM_LOG logs its btrfs commands), granting alice B rw
# and trusted (btrfs receive runs for her) and A ro, mallory B/m rw (not
# trusted) and A ro.  A server with a state directory of its own:
# AUTOSYNC_STATE_DIR=DIR btrfs_serve A B.
btrfs_serve() {
	local t=$TRASH_DIRECTORY
	net_deadline 30 autosync keygen --out keys-alice --client alice >/dev/null &&
	net_deadline 30 autosync keygen --out keys-mallory --client mallory >/dev/null &&
	cat >serve.conf <<-EOS &&
	client alice key $t/keys-alice/psk.key
	client mallory key $t/keys-mallory/psk.key
	allow alice btrfs:$2 rw trusted
	allow alice btrfs:$1 ro
	allow mallory btrfs:$2/m rw
	allow mallory btrfs:$1 ro
	EOS
	PATH=$BTRFS_SHIM_DIR:$PATH net_serve conf --config "$t/serve.conf" &&
	SPORT=$SERVE_PORT
}

# btrfs_as KEYNAME ARGS...: autosync sync with that client's key, bounded
btrfs_as() {
	local k=$1
	shift
	net_deadline 60 autosync sync --key "$TRASH_DIRECTORY/keys-$k/psk.key" "$@"
}

# btrfs_url PATH: btrfs:PATH on btrfs_serve's server
btrfs_url() {
	echo "tcp://127.0.0.1:$SPORT/btrfs:$1"
}

# How many btrfs receive the server ran since the shim's log was emptied.
btrfs_srv_receives() {
	grep -c '^receive' "$BTRFS_SHIM_LOG" || :
}
