#!/bin/bash
# ramdisk.sh - a RAM-backed ext4 file system for the benchmarks.
#
# usage: bench/ramdisk.sh up [SIZE] [MOUNTPOINT]   (default 12G, /mnt/rb)
#        bench/ramdisk.sh down [MOUNTPOINT]
#
# The figures in README.md come from an ext4 image on /dev/shm, loop-mounted:
# the disk of a shared VM is too noisy to compare tools on.  "up" also
# writes every block of the file system once and removes what it wrote.
# Why: a tmpfs file allocates its memory on the first write to each page,
# and on a VM that hands free memory back to its host ("free page
# reporting") that first touch costs seconds per GiB.  Without the fill,
# whichever tool first wrote to blocks ext4 had never used paid for it, and
# the runs while the image grew were up to 2x slower than the rest
# (README.md, "2026-11-29 13:35").
set -eu -o pipefail

die() { echo "ramdisk.sh: $*" >&2; exit 1; }

img=/dev/shm/autosync-bench.img
case ${1:-} in
up)
	size=${2:-12G}
	mnt=${3:-/mnt/rb}
	mountpoint -q "$mnt" && die "'$mnt' is already a mount point"
	[ -e "$img" ] && die "'$img' exists; run '$0 down' first"
	truncate -s "$size" "$img"
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$img"
	mkdir -p "$mnt"
	mount -o loop "$img" "$mnt"
	# dd stops with ENOSPC when the file system is full: that is the point
	dd if=/dev/zero of="$mnt/fill" bs=4M status=none 2>/dev/null || true
	rm -f "$mnt/fill"
	sync
	df -h "$mnt" | tail -1
	;;
down)
	mnt=${2:-/mnt/rb}
	if mountpoint -q "$mnt"; then
		umount "$mnt"
	fi
	rm -f "$img"
	;;
*)
	die "usage: $0 up [SIZE] [MOUNTPOINT] | down [MOUNTPOINT]"
	;;
esac
