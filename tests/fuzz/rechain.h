/*
 * rechain.h - a libFuzzer custom mutator helper: after a random mutation,
 * recompute the chained record checks (record.h) so that mutated inputs
 * get past the checksums to the validators behind them (RELIABILITY.md
 * section 4, "Checksums").  Test-only; included by the fuzzers.
 */
#ifndef AS_FUZZ_RECHAIN_H
#define AS_FUZZ_RECHAIN_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

#include "base/buf.h"
#include "format/record.h"
#include "format/stream.h"

size_t	LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/*
 * Re-frame every complete record of data in place: header check, record
 * check and, with fix_end, a stream END record's counts.  Stops at the
 * first record that does not fit.
 */
static void
fuzz_rechain(uint8_t *data, size_t size, uint64_t seed, int fix_end)
{
	uint64_t chain = seed, nrec = 0, nent = 0, bytes = 0, target = 0;
	size_t off = 0;
	uint32_t len;
	uint16_t type;
	uint8_t *h, *p;

	while (size - off >= REC_HDR_LEN) {
		h = data + off;
		p = h + REC_HDR_LEN;
		type = le16(h);
		len = le32(h + 4);
		if (len > REC_PAYLOAD_MAX ||
		    size - off - REC_HDR_LEN < (size_t)len + REC_TRAILER_LEN)
			break;
		if (fix_end && seed == REC_SEED_STREAM) {
			if (type == AS_REC_BEGIN && len >= 48)
				target = le64(p + 40);
			else if (type == AS_REC_ENTRY)
				nent++;
			else if (type == AS_REC_DATA && len > 8)
				bytes += len - 8;
			else if (type == AS_REC_END && len == 32) {
				put_le64(p, nrec);
				put_le64(p + 8, nent);
				put_le64(p + 16, bytes);
				put_le64(p + 24, target);
			}
		}
		put_le16(h + 2, (uint16_t)XXH3_64bits_withSeed(h, 2, chain ^
		    XXH3_64bits(h + 4, 4)));
		chain = XXH3_64bits_withSeed(h, REC_HDR_LEN + len, chain);
		put_le64(p + len, chain);
		off += REC_HDR_LEN + (size_t)len + REC_TRAILER_LEN;
		nrec++;
	}
}

/* Mutate, then usually re-chain: 1 in 8 keeps the raw mutation. */
static size_t
fuzz_mutate_rechained(uint8_t *data, size_t size, size_t max_size,
    unsigned int seed, uint64_t chain_seed)
{
	size = LLVMFuzzerMutate(data, size, max_size);
	if (seed % 8 != 0)
		fuzz_rechain(data, size, chain_seed, (seed >> 3) % 4 != 0);
	return size;
}

#endif
