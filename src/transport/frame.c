/* frame.c - length-prefixed messages over a conn; see frame.h. */
#include <errno.h>
#include <string.h>

#include "transport/frame.h"
#include "base/banned.h"

/* Frames up to this size are sent with one write. */
#define FRAME_COALESCE	8192

int
frame_send(struct conn *c, uint8_t type, const void *payload, size_t len,
    struct as_err *err)
{
	uint8_t hdr[5], small[5 + FRAME_COALESCE];

	if (len > FRAME_MAX)
		return as_err_set(err, AS_E_LIMIT, 0, "frame of %zu bytes "
		    "to '%s' above the limit of %u bytes", len, c->peer,
		    FRAME_MAX);
	put_le32(hdr, (uint32_t)(len + 1));
	hdr[4] = type;
	/*
	 * A small frame goes out in one write: header and payload in two
	 * writes would let Nagle hold the payload until the peer's delayed
	 * ACK (40 ms per control message).
	 */
	if (len <= FRAME_COALESCE) {
		memcpy(small, hdr, sizeof(hdr));
		if (len > 0)
			memcpy(small + sizeof(hdr), payload, len);
		return conn_write_full(c, small, sizeof(hdr) + len, err);
	}
	if (conn_write_full(c, hdr, sizeof(hdr), err) == -1)
		return -1;
	if (len > 0 && conn_write_full(c, payload, len, err) == -1)
		return -1;
	return 0;
}

int
frame_send_fd(struct conn *c, uint8_t type, int fd, int kind, size_t len,
    int *src_failed, struct as_err *err)
{
	uint8_t hdr[5];

	*src_failed = 0;
	if (len > FRAME_MAX)
		return as_err_set(err, AS_E_LIMIT, 0, "frame of %zu bytes "
		    "to '%s' above the limit of %u bytes", len, c->peer,
		    FRAME_MAX);
	put_le32(hdr, (uint32_t)(len + 1));
	hdr[4] = type;
	return conn_write_from_fd(c, hdr, sizeof(hdr), fd, kind, len,
	    src_failed, err);
}

int
frame_recv_head(struct conn *c, uint8_t *type, size_t *len, size_t max,
    struct as_err *err)
{
	uint8_t hdr[5];
	uint32_t n;

	if (max > FRAME_MAX)
		max = FRAME_MAX;
	*len = 0;
	if (conn_read_full(c, hdr, sizeof(hdr), err) == -1)
		return -1;
	n = le32(hdr);
	if (n == 0)
		return as_err_set(err, AS_E_MALFORMED, 0, "frame from '%s' "
		    "has length 0", c->peer);
	if ((size_t)n - 1 > max)
		return as_err_set(err, AS_E_LIMIT, 0, "frame from '%s' of "
		    "%zu bytes above the limit of %zu bytes", c->peer,
		    (size_t)n - 1, max);
	*type = hdr[4];
	*len = (size_t)n - 1;
	return 0;
}

int
frame_recv(struct conn *c, uint8_t *type, struct buf *payload, size_t max,
    struct as_err *err)
{
	size_t plen;

	buf_reset(payload);
	if (frame_recv_head(c, type, &plen, max, err) == -1)
		return -1;
	if (plen > 0) {
		if (conn_read_full(c, buf_reserve(payload, plen), plen,
		    err) == -1)
			return -1;
		payload->len = plen;
	}
	return 0;
}
