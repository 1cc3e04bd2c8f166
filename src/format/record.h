/*
 * record.h - the framing shared by streams and catalog files.
 *
 * A record is   u16 type | u16 hcheck | u32 len | payload[len] | u64 check
 * (little-endian).  hcheck is the low 16 bits of XXH3-64 over the first
 * 6 header bytes seeded with the chain, so that a corrupted length is
 * caught before any payload is awaited.  check is XXH3-64 over the 8
 * header bytes and the payload, seeded with the previous record's check
 * (the chain; the first record is seeded with the file kind's seed).
 * Corruption, truncation, reordering and splicing are caught at the first
 * bad record.  See doc/autosync-stream.5.
 */
#ifndef AS_RECORD_H
#define AS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define REC_HDR_LEN		8
#define REC_TRAILER_LEN		8
/* Largest payload: one 1 MiB data chunk plus its fields, with room. */
#define REC_PAYLOAD_MAX		((1u << 20) + 4096)

#define REC_SEED_STREAM		UINT64_C(0x6175746f73796e63)	/* "autosync" */
#define REC_SEED_CATALOG	UINT64_C(0x6361746c6f672d31)	/* "catlog-1" */
#define REC_SEED_JOURNAL	UINT64_C(0x6a6f75726e616c31)	/* "journal1" */

/* One decoded record; payload points into the decoder's buffer. */
struct rec {
	uint16_t	 type;
	uint32_t	 len;
	const uint8_t	*payload;
	uint64_t	 offset;	/* byte offset of the record in the input */
	uint64_t	 index;		/* 0-based record number */
};

/*
 * Append one framed record to out, chaining from *chain and updating it.
 * The payload is p1 followed by p2 (either may be empty), so that bulk
 * data need not be copied into a temporary first.
 */
void	rec_encode(struct buf *out, uint64_t *chain, uint16_t type,
	    const void *p1, size_t l1, const void *p2, size_t l2);

struct rec_dec {
	uint64_t	 chain;		/* check of the last good record */
	uint8_t		*buf;		/* REC_HDR_LEN + REC_PAYLOAD_MAX + trailer */
	size_t		 have;		/* bytes of the current record in buf */
	/*
	 * The last record returned, header to trailer: in buf, or in the
	 * caller's input when it came whole in one call (not copied).
	 */
	const uint8_t	*cur;
	uint64_t	 offset;	/* input bytes consumed so far */
	uint64_t	 nrec;		/* records decoded */
	const char	*what;		/* "stream", "catalog": for messages */
};

/*
 * Nothing is allocated but the fixed record buffer, and that only for
 * the first record that arrives in pieces: a decoder over a whole
 * mapped file (a catalog reader, one per part of a scan) never needs it.
 */
void	rec_dec_init(struct rec_dec *d, uint64_t seed, const char *what);
void	rec_dec_release(struct rec_dec *d);
/*
 * Consume input.  Returns 1 when a record is complete (out is filled and
 * valid until the next call; *used tells how much input was taken),
 * 0 when all input was taken without completing a record, and -1 on a
 * corrupt or oversized record (CHECKSUM or LIMIT).
 */
int	rec_dec_feed(struct rec_dec *d, const uint8_t *in, size_t inlen,
	    size_t *used, struct rec *out, struct as_err *err);
/* At end of input: 0 if no record is half-read, else -1 TRUNCATED. */
int	rec_dec_eof(const struct rec_dec *d, struct as_err *err);

#endif
