/* record.c - framing with chained checksums; see record.h. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "format/record.h"
#include "base/xmalloc.h"
#include "base/banned.h"

static uint16_t
hcheck_of(const uint8_t *hdr, uint64_t chain)
{
	return (uint16_t)XXH3_64bits_withSeed(hdr, 2, chain ^
	    XXH3_64bits(hdr + 4, 4));
}

void
rec_encode(struct buf *out, uint64_t *chain, uint16_t type,
    const void *p1, size_t l1, const void *p2, size_t l2)
{
	size_t start = out->len, len = l1 + l2;
	uint8_t *h;
	uint64_t check;

	if (len > REC_PAYLOAD_MAX)
		fatal("record of %zu bytes exceeds the format's maximum", len);
	h = buf_reserve(out, REC_HDR_LEN + len + REC_TRAILER_LEN);
	put_le16(h, type);
	put_le32(h + 4, (uint32_t)len);
	put_le16(h + 2, hcheck_of(h, *chain));
	if (l1 != 0)
		memcpy(h + REC_HDR_LEN, p1, l1);
	if (l2 != 0)
		memcpy(h + REC_HDR_LEN + l1, p2, l2);
	check = XXH3_64bits_withSeed(h, REC_HDR_LEN + len, *chain);
	put_le64(h + REC_HDR_LEN + len, check);
	out->len = start + REC_HDR_LEN + len + REC_TRAILER_LEN;
	*chain = check;
}

void
rec_dec_init(struct rec_dec *d, uint64_t seed, const char *what)
{
	memset(d, 0, sizeof(*d));
	d->chain = seed;
	d->what = what;
}

void
rec_dec_release(struct rec_dec *d)
{
	if (d == NULL)
		return;
	free(d->buf);
	d->buf = NULL;
}

/* Take up to want - have bytes; returns 1 when have reached want. */
static int
fill(struct rec_dec *d, size_t want, const uint8_t **in, size_t *inlen)
{
	size_t n = want - d->have;

	if (n > *inlen)
		n = *inlen;
	if (d->buf == NULL)
		d->buf = xmalloc(REC_HDR_LEN + REC_PAYLOAD_MAX +
		    REC_TRAILER_LEN);
	memcpy(d->buf + d->have, *in, n);
	d->have += n;
	*in += n;
	*inlen -= n;
	return d->have == want;
}

int
rec_dec_feed(struct rec_dec *d, const uint8_t *in, size_t inlen,
    size_t *used, struct rec *out, struct as_err *err)
{
	const uint8_t *p = in, *h;
	size_t left = inlen;
	uint32_t len;
	uint64_t check;
	int rc = 0;

	*used = 0;
	if (d->have == 0 && inlen >= REC_HDR_LEN && inlen - REC_HDR_LEN >=
	    (size_t)le32(in + 4) + REC_TRAILER_LEN &&
	    le32(in + 4) <= REC_PAYLOAD_MAX) {
		/*
		 * The whole record is in the input: checked and returned
		 * where it is.  A full copy used to pass a gigabyte through
		 * here twice.
		 */
		h = in;
		p = in + REC_HDR_LEN + le32(in + 4) + REC_TRAILER_LEN;
	} else {
		if (d->have < REC_HDR_LEN && !fill(d, REC_HDR_LEN, &p, &left))
			goto out;
		h = d->buf;
	}
	/* the header is checked before waiting for the rest */
	if (le16(h + 2) != hcheck_of(h, d->chain)) {
		rc = as_err_set(err, AS_E_CHECKSUM, 0,
		    "%s record %llu at offset %llu: header checksum mismatch",
		    d->what, (unsigned long long)d->nrec,
		    (unsigned long long)d->offset);
		goto out;
	}
	len = le32(h + 4);
	if (len > REC_PAYLOAD_MAX) {
		rc = as_err_set(err, AS_E_LIMIT, 0,
		    "%s record %llu at offset %llu: length %u exceeds %u",
		    d->what, (unsigned long long)d->nrec,
		    (unsigned long long)d->offset, len, REC_PAYLOAD_MAX);
		goto out;
	}
	if (h == d->buf && !fill(d, REC_HDR_LEN + len + REC_TRAILER_LEN, &p,
	    &left))
		goto out;
	check = XXH3_64bits_withSeed(h, REC_HDR_LEN + len, d->chain);
	if (check != le64(h + REC_HDR_LEN + len)) {
		rc = as_err_set(err, AS_E_CHECKSUM, 0,
		    "%s record %llu at offset %llu: checksum mismatch",
		    d->what, (unsigned long long)d->nrec,
		    (unsigned long long)d->offset);
		goto out;
	}
	out->type = le16(h);
	out->len = len;
	out->payload = h + REC_HDR_LEN;
	d->cur = h;
	out->offset = d->offset;
	out->index = d->nrec;
	d->chain = check;
	d->nrec++;
	d->offset += REC_HDR_LEN + len + REC_TRAILER_LEN;
	d->have = 0;
	rc = 1;
out:
	*used = (size_t)(p - in);
	return rc;
}

int
rec_dec_eof(const struct rec_dec *d, struct as_err *err)
{
	if (d->have != 0)
		return as_err_set(err, AS_E_TRUNCATED, 0,
		    "%s truncated inside record %llu at offset %llu",
		    d->what, (unsigned long long)d->nrec,
		    (unsigned long long)d->offset);
	return 0;
}
