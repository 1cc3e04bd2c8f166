# lib-vol.sh - helpers of the volume tests (t5xxx), sourced after
# test-lib.sh: random block writes, content hashes, and the byte figures
# that `sync -v` prints, so that every volume test reads them the same way.

BS=65536
MIB=1048576

# sha FILE: the sha256 of a file or device, alone
sha() { sha256sum <"$1" | cut -d' ' -f1; }

# scribble IMG N: N random 64 KiB blocks at random block offsets
scribble() {
	local img=$1 n=$2 nblk i
	nblk=$(( $(stat -c %s "$img") / BS ))
	for i in $(seq "$n"); do
		dd if=/dev/urandom of="$img" bs=$BS count=1 conv=notrunc \
			seek=$(( (RANDOM * 32768 + RANDOM) % nblk )) status=none ||
			return 1
	done
}

# data_bytes OUT: the "of data" figure of a sync -v output, in bytes
data_bytes() {
	sed -n 's/.*sent 1 entries, \([0-9.]*\) \([KMG]*i*B\) of data.*/\1 \2/p' "$1" |
	awk '{ m = 1; if ($2 == "KiB") m = 1024; if ($2 == "MiB") m = 1048576;
		if ($2 == "GiB") m = 1073741824; printf "%d\n", $1 * m }'
}

# poffset REC: the partial_offset of a volume record, or 0
poffset() { sed -n 's/^partial_offset //p' "$1" 2>/dev/null | grep . || echo 0; }
