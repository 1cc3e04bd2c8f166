/* buf.c - growable byte buffer; see buf.h. */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xmalloc.h"
#include "base/banned.h"

/* from this capacity on, an empty buffer grows page-aligned */
#define BUF_IO_MIN	(64u * 1024)

void
buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
buf_release(struct buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	buf_init(b);
}

uint8_t *
buf_reserve(struct buf *b, size_t n)
{
	size_t want;

	if (n > SIZE_MAX / 2 - b->len)
		fatal("buffer of %zu bytes cannot grow by %zu", b->len, n);
	want = b->len + n;
	if (want > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < want)
			cap *= 2;
		/*
		 * An empty buffer about to take a large read (a frame's
		 * payload, a whole file) starts page-aligned, as read(2)
		 * copies much faster there (see xmalloc_io); one that holds
		 * bytes keeps realloc, which moves large blocks without a
		 * copy.
		 */
		if (b->len == 0 && cap >= BUF_IO_MIN) {
			free(b->data);
			b->data = xmalloc_io(cap);
		} else
			b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	return b->data + b->len;
}

void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	memcpy(buf_reserve(b, n), p, n);
	b->len += n;
}

void
buf_add_u8(struct buf *b, uint8_t v)
{
	*buf_reserve(b, 1) = v;
	b->len += 1;
}

void
buf_add_u16(struct buf *b, uint16_t v)
{
	put_le16(buf_reserve(b, 2), v);
	b->len += 2;
}

void
buf_add_u32(struct buf *b, uint32_t v)
{
	put_le32(buf_reserve(b, 4), v);
	b->len += 4;
}

void
buf_add_u64(struct buf *b, uint64_t v)
{
	put_le64(buf_reserve(b, 8), v);
	b->len += 8;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
}
