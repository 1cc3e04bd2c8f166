/*
 * frame.h - length-prefixed messages over a conn (git's pkt-line idea):
 *
 *	u32 len | u8 type | payload[len - 1]	(little-endian)
 *
 * The reader never reads past its frame and refuses a length above the
 * caller's maximum before reading the payload (RELIABILITY.md I4).
 * Control messages and bulk data share one connection this way.  The
 * message types and their payloads are the protocol's (src/repl/proto.h);
 * this layer only moves frames.
 */
#ifndef AS_FRAME_H
#define AS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "transport/conn.h"

#define FRAME_MAX	((1u << 20) + 4096)	/* largest payload */

/* Send one frame (type, then payload of len bytes). */
int	frame_send(struct conn *c, uint8_t type, const void *payload,
	    size_t len, struct as_err *err);
/*
 * Receive one frame into *payload (reset and grown as needed, at most max
 * bytes, max <= FRAME_MAX).  Returns 0; -1 on error, TRUNCATED on EOF,
 * LIMIT for an oversized frame.
 */
int	frame_recv(struct conn *c, uint8_t *type, struct buf *payload,
	    size_t max, struct as_err *err);

/*
 * Send one frame whose payload is the next len bytes of fd, which holds
 * them (conn_fd_ready): spliced where the conn allows, copied otherwise.
 * *src_failed as for conn_write_from_fd.
 */
int	frame_send_fd(struct conn *c, uint8_t type, int fd, int kind,
	    size_t len, int *src_failed, struct as_err *err);
/*
 * Receive only a frame's header: its type and payload length (at most
 * max).  The caller then reads exactly *len bytes (conn_read_full,
 * conn_read_to_fd) before the next frame.
 */
int	frame_recv_head(struct conn *c, uint8_t *type, size_t *len,
	    size_t max, struct as_err *err);

#endif
