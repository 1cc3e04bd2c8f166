/*
 * buf.h - a growable byte buffer, reused across records so that the data
 * path does not allocate per record.
 */
#ifndef AS_BUF_H
#define AS_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t	*data;	/* owned; NULL until first growth */
	size_t	 len;	/* bytes in use */
	size_t	 cap;	/* bytes allocated */
};

#define BUF_INIT { NULL, 0, 0 }

void	 buf_init(struct buf *b);
void	 buf_release(struct buf *b);
/* Make room for n more bytes and return a pointer to them (len unchanged). */
uint8_t	*buf_reserve(struct buf *b, size_t n);
void	 buf_add(struct buf *b, const void *p, size_t n);
void	 buf_add_u8(struct buf *b, uint8_t v);
void	 buf_add_u16(struct buf *b, uint16_t v);	/* little-endian */
void	 buf_add_u32(struct buf *b, uint32_t v);
void	 buf_add_u64(struct buf *b, uint64_t v);
void	 buf_reset(struct buf *b);			/* len = 0, keeps memory */

/* Little-endian loads and stores over raw memory. */
static inline uint16_t
le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
	    ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t
le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32);
}

static inline void
put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void
put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

#endif
