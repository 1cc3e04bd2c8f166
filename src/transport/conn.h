/*
 * conn.h - a byte channel between two autosync processes.
 *
 * One struct conn hides whether the bytes go through a pair of pipes
 * (local, or the stdio of "ssh host autosync serve --stdio"), a TCP socket
 * or a TLS session.  Every read and write has a deadline: the idle timeout
 * (no byte moved for that long => TIMEOUT), so that a vanished peer is
 * reported, never waited for (RELIABILITY.md I10).  Connection errors are
 * classified: a reset or EOF mid-message is TEMP (AS_E_IO or TRUNCATED),
 * a failed authentication is AUTH.
 */
#ifndef AS_CONN_H
#define AS_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"

struct conn;

struct conn_ops {
	const char	*name;		/* "pipe", "ssh", "tcp", "tls" */
	/* Like read(2)/write(2), -1 with errno; may move fewer bytes. */
	ssize_t		(*read)(struct conn *c, void *buf, size_t n);
	ssize_t		(*write)(struct conn *c, const void *buf, size_t n);
	/* Descriptor to poll for readability/writability. */
	int		(*rfd)(const struct conn *c);
	int		(*wfd)(const struct conn *c);
	/*
	 * Nonzero when the transport holds bytes the socket no longer shows
	 * (TLS records read ahead): do not wait for rfd then, read.  A read
	 * may still return EAGAIN (a partial record): then poll rfd.
	 */
	size_t		(*pending)(const struct conn *c);
	/* Half-close the sending direction; the peer reads EOF. */
	int		(*shutdown_write)(struct conn *c);
	void		(*free)(struct conn *c);	/* closes everything */
};

struct conn {
	const struct conn_ops *ops;
	char		 peer[128];	/* "127.0.0.1:7010", "ssh host": messages */
	int		 idle_ms;	/* 0: no deadline (tests only) */
	uint64_t	 bytes_in;	/* counters for progress and tests */
	uint64_t	 bytes_out;
	void		*impl;		/* the transport's own state */
	/*
	 * Scratch of the copying moves (conn_write_from_fd, conn_read_to_fd
	 * over TLS), kept for the conn's life: a fresh buffer per frame was
	 * a fresh mmap(2), 64 page faults and an munmap per MiB.
	 */
	uint8_t		*copybuf;
	/* Buffers vmspliced into the receiver's pipe (conn.c), or NULL. */
	struct conn_ring *ring;
};

#define CONN_IDLE_DEFAULT_MS	60000

/*
 * A conn over two descriptors (may be the same).  Takes ownership: both are
 * closed by conn_free.  child, when > 0, is a process (ssh) that conn_free
 * reaps after closing, killing it (SIGTERM, then SIGKILL after 2 s) if it
 * does not exit by itself.
 */
struct conn	*conn_from_fds(int rfd, int wfd, pid_t child, const char *peer);

/* Read exactly n bytes; EOF before n is TRUNCATED ("peer closed"). */
int	conn_read_full(struct conn *c, void *buf, size_t n, struct as_err *err);
/*
 * Read up to n bytes, at least 1; returns the count, 0 at EOF, -1 on
 * error or timeout.
 */
ssize_t	conn_read_some(struct conn *c, void *buf, size_t n,
	    struct as_err *err);
int	conn_write_full(struct conn *c, const void *buf, size_t n,
	    struct as_err *err);
int	conn_shutdown_write(struct conn *c, struct as_err *err);
void	conn_free(struct conn *c);

/*
 * Extensions (transport implementers and poll loops).
 *
 * conn_from_fds() puts both descriptors in O_NONBLOCK and FD_CLOEXEC mode
 * (so that a large write cannot outlive the deadline), and writes to a
 * socket with MSG_NOSIGNAL.  A pipe whose reader died still raises SIGPIPE:
 * the CLI ignores SIGPIPE once at start-up, then a write fails with EPIPE
 * and is reported as IO ("connection to 'X' lost while writing").
 *
 * Read error classes: EOF inside conn_read_full is TRUNCATED; ECONNRESET,
 * EPIPE are IO; no byte for idle_ms is TIMEOUT; a TLS record that fails
 * its integrity check (ops return EBADMSG) is CHECKSUM.  All of them say
 * "connection to '<peer>'" in the message.
 */

/* A conn with the given ops and state; idle_ms = CONN_IDLE_DEFAULT_MS. */
struct conn	*conn_new(const struct conn_ops *ops, void *impl,
		    const char *peer);
/* A connected socket (ownership taken) as a "tcp" conn. */
struct conn	*conn_from_socket(int fd, const char *peer);
/* Set O_NONBLOCK and FD_CLOEXEC on fd; -1 with errno. */
int		 conn_set_nonblock(int fd);
/*
 * Wait until fd is ready for events (POLLIN or POLLOUT), at most timeout_ms
 * (<= 0: forever).  0 when ready (or in error/hang-up: the next read or write
 * reports it), -1 with TIMEOUT ("connection to '<peer>' timed out...").
 */
int		 conn_poll_fd(int fd, short events, int timeout_ms,
		    const char *peer, struct as_err *err);
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t	 conn_now_ms(void);
/*
 * Reap pid: wait up to grace_ms for it to exit by itself, then SIGTERM,
 * then SIGKILL 2 s later.  Returns its wait status, or -1 (ECHILD...).
 * conn_free() calls this for the child of conn_from_fds() with 2000 ms.
 */
int		 conn_reap_child(pid_t pid, int grace_ms);

/*
 * Zero-copy moves between a conn and a local descriptor: splice(2), or
 * sendfile(2) from a regular file to a socket, where the conn is a pipe,
 * ssh or tcp conn; a copy through a buffer otherwise (TLS, other kinds of
 * descriptor, bytes the transport buffered).  Same bytes either way.
 */
#define CONN_FD_OTHER	0
#define CONN_FD_PIPE	1
#define CONN_FD_FILE	2	/* a regular file, read at its offset */

/* What fd is (CONN_FD_*), for conn_fd_ready and conn_write_from_fd. */
int	conn_fd_kind(int fd);
/*
 * Bytes fd can give right now without blocking, at most max: the bytes in
 * a pipe (FIONREAD), what is left of a file after its offset.  0: none
 * known (empty, at EOF, another kind): read(2) to find out.
 */
size_t	conn_fd_ready(int fd, int kind, size_t max);
/*
 * Write the plen bytes of pre (a frame header; may be 0), then exactly n
 * bytes taken from fd (which must hold them: conn_fd_ready), to c.  On
 * failure, *src_failed says whether fd was at fault (err says why); the
 * conn is then in the middle of a frame and unusable either way.
 */
int	conn_write_from_fd(struct conn *c, const void *pre, size_t plen,
	    int fd, int kind, size_t n, int *src_failed, struct as_err *err);
/*
 * Read exactly n bytes from c and write them to the pipe fd.  When fd's
 * reader has gone (EPIPE), the bytes are still read (and dropped) so that
 * the conn stays at a frame boundary, and *dst_failed is set; -1 only for
 * a failure of the conn.
 */
int	conn_read_to_fd(struct conn *c, int fd, size_t n, int *dst_failed,
	    struct as_err *err);

#endif
