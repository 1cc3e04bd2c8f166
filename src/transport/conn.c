/*
 * conn.c - a byte channel with deadlines; see conn.h.
 *
 * Every wait is a poll(2) bounded by the idle timeout, so a peer that
 * vanishes without closing (a pulled cable, a stopped process) is reported
 * as TIMEOUT instead of being waited for (RELIABILITY.md I10).
 */
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/xmalloc.h"
#include "transport/conn.h"
#include "base/banned.h"

struct fdconn {
	int	rfd;
	int	wfd;
	int	wsock;		/* wfd is a socket: send(MSG_NOSIGNAL) */
	pid_t	child;
};

static ssize_t
fd_read(struct conn *c, void *buf, size_t n)
{
	struct fdconn *f = c->impl;

	return read(f->rfd, buf, n);
}

static ssize_t
fd_write(struct conn *c, const void *buf, size_t n)
{
	struct fdconn *f = c->impl;

	if (f->wsock)
		return send(f->wfd, buf, n, MSG_NOSIGNAL);
	return write(f->wfd, buf, n);
}

static int
fd_rfd(const struct conn *c)
{
	const struct fdconn *f = c->impl;

	return f->rfd;
}

static int
fd_wfd(const struct conn *c)
{
	const struct fdconn *f = c->impl;

	return f->wfd;
}

static size_t
fd_pending(const struct conn *c)
{
	return 0;
}

static int
fd_shutdown_write(struct conn *c)
{
	struct fdconn *f = c->impl;

	if (f->wfd < 0)
		return 0;
	if (f->wsock)
		return shutdown(f->wfd, SHUT_WR);
	if (f->wfd == f->rfd)
		return 0;
	if (close(f->wfd) == -1 && errno != EINTR) {
		f->wfd = -1;
		return -1;
	}
	f->wfd = -1;
	return 0;
}

static void
fd_free(struct conn *c)
{
	struct fdconn *f = c->impl;

	if (f->wfd >= 0 && f->wfd != f->rfd)
		close(f->wfd);
	if (f->rfd >= 0)
		close(f->rfd);
	f->rfd = f->wfd = -1;
	if (f->child > 0)
		conn_reap_child(f->child, 2000);
	free(f);
	c->impl = NULL;
}

static const struct conn_ops fd_ops = {
	.name = "pipe",
	.read = fd_read,
	.write = fd_write,
	.rfd = fd_rfd,
	.wfd = fd_wfd,
	.pending = fd_pending,
	.shutdown_write = fd_shutdown_write,
	.free = fd_free,
};

static const struct conn_ops tcp_ops = {
	.name = "tcp",
	.read = fd_read,
	.write = fd_write,
	.rfd = fd_rfd,
	.wfd = fd_wfd,
	.pending = fd_pending,
	.shutdown_write = fd_shutdown_write,
	.free = fd_free,
};

static const struct conn_ops ssh_ops = {
	.name = "ssh",
	.read = fd_read,
	.write = fd_write,
	.rfd = fd_rfd,
	.wfd = fd_wfd,
	.pending = fd_pending,
	.shutdown_write = fd_shutdown_write,
	.free = fd_free,
};

static int
is_socket(int fd)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return 0;
	return S_ISSOCK(st.st_mode);
}

int
conn_set_nonblock(int fd)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return -1;
	if ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	if ((fl = fcntl(fd, F_GETFD)) == -1)
		return -1;
	if ((fl & FD_CLOEXEC) == 0 && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) == -1)
		return -1;
	return 0;
}

struct conn *
conn_new(const struct conn_ops *ops, void *impl, const char *peer)
{
	struct conn *c;

	c = xcalloc(1, sizeof(*c));
	c->ops = ops;
	c->impl = impl;
	c->idle_ms = CONN_IDLE_DEFAULT_MS;
	snprintf(c->peer, sizeof(c->peer), "%s", peer != NULL ? peer : "?");
	return c;
}

static struct conn *
fdconn_new(const struct conn_ops *ops, int rfd, int wfd, pid_t child,
    const char *peer)
{
	struct fdconn *f;

	f = xcalloc(1, sizeof(*f));
	f->rfd = rfd;
	f->wfd = wfd;
	f->child = child;
	f->wsock = wfd >= 0 && is_socket(wfd);
	/* Best effort: a failure only loses the deadline on large writes. */
	if (rfd >= 0)
		(void)conn_set_nonblock(rfd);
	if (wfd >= 0 && wfd != rfd)
		(void)conn_set_nonblock(wfd);
	return conn_new(ops, f, peer);
}

struct conn *
conn_from_fds(int rfd, int wfd, pid_t child, const char *peer)
{
	return fdconn_new(child > 0 ? &ssh_ops : &fd_ops, rfd, wfd, child,
	    peer);
}

struct conn *
conn_from_socket(int fd, const char *peer)
{
	return fdconn_new(&tcp_ops, fd, fd, 0, peer);
}

uint64_t
conn_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
conn_poll_fd(int fd, short events, int timeout_ms, const char *peer,
    struct as_err *err)
{
	struct pollfd pfd;
	uint64_t deadline = 0, now;
	int r, left;

	if (timeout_ms > 0)
		deadline = conn_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		left = -1;
		if (timeout_ms > 0) {
			now = conn_now_ms();
			left = now >= deadline ? 0 : (int)(deadline - now);
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, left);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return as_err_sys(err, errno, "poll '%s'", peer);
		}
		if (r == 0)
			return as_err_set(err, AS_E_TIMEOUT, ETIMEDOUT,
			    "connection to '%s' timed out: no data for %d ms",
			    peer, timeout_ms);
		/* POLLERR/POLLHUP: let the read or write report it. */
		return 0;
	}
}

static int
conn_wait(struct conn *c, short events, struct as_err *err)
{
	int fd;

	fd = events == POLLIN ? c->ops->rfd(c) : c->ops->wfd(c);
	if (fd < 0)
		return as_err_set(err, AS_E_IO, EBADF, "connection to '%s' "
		    "is closed for %s", c->peer,
		    events == POLLIN ? "reading" : "writing");
	return conn_poll_fd(fd, events, c->idle_ms, c->peer, err);
}

static int
conn_io_error(struct conn *c, int e, const char *what, struct as_err *err)
{
	if (e == ECONNRESET || e == EPIPE)
		return as_err_set(err, AS_E_IO, e, "connection to '%s' lost "
		    "while %s: %s", c->peer, what, strerror(e));
	if (e == ETIMEDOUT)
		return as_err_set(err, AS_E_TIMEOUT, e, "connection to '%s' "
		    "timed out while %s", c->peer, what);
	if (e == EBADMSG)
		return as_err_set(err, AS_E_CHECKSUM, e, "connection to '%s': "
		    "a record failed its integrity check while %s", c->peer,
		    what);
	if (e == EPROTO)
		return as_err_set(err, AS_E_IO, e, "connection to '%s': "
		    "protocol error while %s", c->peer, what);
	return as_err_set(err, as_errcode_from_errno(e), e, "connection to "
	    "'%s': %s: %s", c->peer, what, strerror(e));
}

ssize_t
conn_read_some(struct conn *c, void *buf, size_t n, struct as_err *err)
{
	ssize_t r;
	int must_poll;

	if (n == 0)
		return 0;
	/*
	 * The descriptors are non-blocking: try the read first and poll only
	 * when it says EAGAIN (a bulk transfer mostly finds data waiting, so
	 * this saves a poll per read).  Once a read said EAGAIN (for TLS: a
	 * partial record is buffered), only the socket helps.
	 */
	must_poll = 0;
	for (;;) {
		if (must_poll && conn_wait(c, POLLIN, err) == -1)
			return -1;
		must_poll = 1;
		r = c->ops->read(c, buf, n);
		if (r > 0) {
			c->bytes_in += (uint64_t)r;
			return r;
		}
		if (r == 0)
			return 0;
		if (errno == EINTR || errno == EAGAIN ||
		    errno == EWOULDBLOCK)
			continue;
		conn_io_error(c, errno, "reading", err);
		return -1;
	}
}

int
conn_read_full(struct conn *c, void *buf, size_t n, struct as_err *err)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = conn_read_some(c, (uint8_t *)buf + got, n - got, err);
		if (r == -1)
			return -1;
		if (r == 0)
			return as_err_set(err, AS_E_TRUNCATED, 0,
			    "connection to '%s': peer closed the connection "
			    "(%zu of %zu bytes read)", c->peer, got, n);
		got += (size_t)r;
	}
	return 0;
}

int
conn_write_full(struct conn *c, const void *buf, size_t n,
    struct as_err *err)
{
	size_t done = 0;
	ssize_t r;

	while (done < n) {
		r = c->ops->write(c, (const uint8_t *)buf + done, n - done);
		if (r > 0) {
			done += (size_t)r;
			c->bytes_out += (uint64_t)r;
			continue;
		}
		if (r == 0)
			errno = EAGAIN;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (conn_wait(c, POLLOUT, err) == -1)
				return -1;
			continue;
		}
		return conn_io_error(c, errno, "writing", err);
	}
	return 0;
}

/*
 * Zero-copy moves (splice, sendfile).
 *
 * A DATA frame's payload used to be read into a buffer and written out
 * again on both ends: two copies through user space per hop, next to the
 * copies nc makes too.  Between an fd-based conn and a pipe or a regular
 * file the kernel moves the pages itself.  Whatever cannot be spliced
 * (TLS, a descriptor of another kind, bytes a transport buffered, a file
 * system without splice) takes the copying path; the bytes on the wire
 * are the same either way.
 */

#define COPY_BUFSZ	(256u << 10)

/* The conn's copy buffer: COPY_BUFSZ bytes, plus room for a prefix. */
#define COPY_PREFIX	64
/* A mapped send's first write: prefix and payload in one TLS record. */
#define CONN_MAP_FIRST	16384

static uint8_t *
copy_buf(struct conn *c)
{
	if (c->copybuf == NULL)
		c->copybuf = xmalloc_io(COPY_PREFIX + COPY_BUFSZ);
	return c->copybuf;
}

static int
is_fd_conn(const struct conn *c)
{
	return c->ops == &fd_ops || c->ops == &tcp_ops || c->ops == &ssh_ops;
}

int
conn_fd_kind(int fd)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return CONN_FD_OTHER;
	if (S_ISFIFO(st.st_mode))
		return CONN_FD_PIPE;
	if (S_ISREG(st.st_mode))
		return CONN_FD_FILE;
	return CONN_FD_OTHER;
}

size_t
conn_fd_ready(int fd, int kind, size_t max)
{
	struct stat st;
	off_t off;
	int n = 0;

	switch (kind) {
	case CONN_FD_PIPE:
		if (ioctl(fd, FIONREAD, &n) == -1 || n <= 0)
			return 0;
		return (size_t)n < max ? (size_t)n : max;
	case CONN_FD_FILE:
		if (fstat(fd, &st) == -1 ||
		    (off = lseek(fd, 0, SEEK_CUR)) == -1 || st.st_size <= off)
			return 0;
		return (uint64_t)(st.st_size - off) < max ?
		    (size_t)(st.st_size - off) : max;
	default:
		return 0;
	}
}

/* errno of a failed splice/sendfile into a conn: the conn's fault? */
static int
is_conn_errno(int e)
{
	return e == EPIPE || e == ECONNRESET || e == ETIMEDOUT ||
	    e == ENOTCONN || e == ECONNABORTED || e == EHOSTUNREACH ||
	    e == ENETUNREACH || e == ENETDOWN;
}

/*
 * Write pre, then n bytes from fd, to the conn through a buffer; pre goes
 * out with the first piece of the payload (one TLS record, not a 5-byte
 * record of its own).
 */
static int
copy_from_fd(struct conn *c, const void *pre, size_t plen, int fd,
    size_t n, int *src_failed, struct as_err *err)
{
	uint8_t *b;
	size_t want, off = plen;
	ssize_t r;
	int rc = 0;

	if (plen > COPY_PREFIX) {
		/* Not a frame header: on its own. */
		if (conn_write_full(c, pre, plen, err) == -1)
			return -1;
		off = plen = 0;
	}
	b = copy_buf(c);
	if (plen > 0)
		memcpy(b, pre, plen);
	while (n > 0) {
		want = n < COPY_BUFSZ ? n : COPY_BUFSZ;
		r = read(fd, b + off, want);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && errno == EAGAIN) {
			if (conn_poll_fd(fd, POLLIN, 0, "the stream", err) == -1) {
				rc = -1;
				break;
			}
			continue;
		}
		if (r <= 0) {
			*src_failed = 1;
			if (r == 0)
				as_err_set(err, AS_E_TRUNCATED, 0, "the stream "
				    "ended inside a frame to '%s'", c->peer);
			else
				as_err_sys(err, errno, "read the stream");
			rc = -1;
			break;
		}
		if (conn_write_full(c, b, off + (size_t)r, err) == -1) {
			rc = -1;
			break;
		}
		off = 0;
		n -= (size_t)r;
	}
	if (rc == 0 && off > 0)
		rc = conn_write_full(c, b, off, err);	/* n == 0 */
	return rc;
}

/*
 * A file that shrinks while it is mapped raises SIGBUS on the next touch
 * of a page past its new end.  The mapped sends catch it: when the fault
 * is inside the range this thread is sending, the handler maps zeros over
 * the rest of the range and notes it, so the write finishes (with zeros,
 * which the stream's checksums would refuse) and the send then fails with
 * the file to blame; the conn is in the middle of a frame, unusable, and
 * the peer sees the connection end without END.  Jumping out of the
 * write instead would leave OpenSSL's state half-updated.  A fault
 * elsewhere restores the default action, so it repeats and kills as it
 * would have.
 */
static __thread uintptr_t	 bus_lo, bus_hi;	/* 0, 0: none */
static __thread volatile sig_atomic_t bus_hit;
static pthread_once_t		 bus_once = PTHREAD_ONCE_INIT;
static int			 bus_ok;
static long			 bus_pagesz;

static void
on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr, p;
	int e = errno;

	if (bus_hi != 0 && a >= bus_lo && a < bus_hi) {
		p = a & ~((uintptr_t)bus_pagesz - 1);
		if (mmap((void *)p, bus_hi - p, PROT_READ, MAP_FIXED |
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
			bus_hit = 1;
			errno = e;
			return;
		}
	}
	signal(SIGBUS, SIG_DFL);
	errno = e;
}

static void
bus_install(void)
{
	struct sigaction sa;

	bus_pagesz = sysconf(_SC_PAGESIZE);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	bus_ok = bus_pagesz > 0 && sigaction(SIGBUS, &sa, NULL) == 0;
}

/*
 * Send pre, then the n bytes at m (inside a mapping of the source file
 * that ends at mend), under the SIGBUS guard.  The prefix goes out in one
 * record with the start of the payload, as in copy_from_fd.
 */
static int
write_mapped(struct conn *c, const void *pre, size_t plen,
    const uint8_t *m, size_t n, const uint8_t *mend, int *src_failed,
    struct as_err *err)
{
	uint8_t *b;
	size_t k = 0;
	int rc = 0;

	bus_hit = 0;
	bus_lo = (uintptr_t)m;
	bus_hi = (uintptr_t)mend;
	if (plen > 0) {
		b = copy_buf(c);
		k = n < CONN_MAP_FIRST - plen ? n : CONN_MAP_FIRST - plen;
		memcpy(b, pre, plen);
		memcpy(b + plen, m, k);
		rc = conn_write_full(c, b, plen + k, err);
	}
	if (rc == 0 && k < n && !bus_hit)
		rc = conn_write_full(c, m + k, n - k, err);
	bus_lo = bus_hi = 0;
	if (bus_hit) {
		*src_failed = 1;
		return as_err_set(err, AS_E_TRUNCATED, 0, "the stream file "
		    "shrank while it was sent to '%s'", c->peer);
	}
	return rc;
}

/*
 * The copying path for a regular file: map the n bytes at fd's offset
 * and write from the mapping (one copy fewer than read(2) into a buffer;
 * TLS encrypts straight from the page cache), then move the offset past
 * them.  Falls back to copy_from_fd where the file cannot be mapped.
 */
static int
map_from_fd(struct conn *c, const void *pre, size_t plen, int fd, size_t n,
    int *src_failed, struct as_err *err)
{
	uint8_t *m;
	off_t off, start;
	size_t len;
	int rc;

	(void)pthread_once(&bus_once, bus_install);
	if (!bus_ok || n == 0 || plen > COPY_PREFIX ||
	    (off = lseek(fd, 0, SEEK_CUR)) == -1)
		return copy_from_fd(c, pre, plen, fd, n, src_failed, err);
	start = off & ~((off_t)bus_pagesz - 1);
	len = (size_t)(off - start) + n;
	m = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, start);
	if (m == MAP_FAILED)
		return copy_from_fd(c, pre, plen, fd, n, src_failed, err);
	rc = write_mapped(c, pre, plen, m + (off - start), n, m + len,
	    src_failed, err);
	munmap(m, len);
	if (rc == 0 && lseek(fd, off + (off_t)n, SEEK_SET) == -1) {
		*src_failed = 1;
		rc = as_err_sys(err, errno, "seek in the stream");
	}
	return rc;
}

int
conn_write_from_fd(struct conn *c, const void *pre, size_t plen, int fd,
    int kind, size_t n, int *src_failed, struct as_err *err)
{
	struct fdconn *f;
	size_t done = 0;
	ssize_t r;

	*src_failed = 0;
	if (!is_fd_conn(c) && kind == CONN_FD_FILE)
		return map_from_fd(c, pre, plen, fd, n, src_failed, err);
	if (!is_fd_conn(c) || kind == CONN_FD_OTHER ||
	    (kind == CONN_FD_FILE && !((struct fdconn *)c->impl)->wsock &&
	    conn_fd_kind(((struct fdconn *)c->impl)->wfd) != CONN_FD_PIPE))
		return copy_from_fd(c, pre, plen, fd, n, src_failed, err);
	f = c->impl;
	/*
	 * The prefix (a frame header) waits for the payload in the socket
	 * (MSG_MORE): on its own it would leave as a tiny segment, since
	 * TCP_NODELAY is set for the control messages.
	 */
	while (done < plen) {
		if (f->wsock)
			r = send(f->wfd, (const uint8_t *)pre + done,
			    plen - done, MSG_NOSIGNAL | MSG_MORE);
		else
			r = write(f->wfd, (const uint8_t *)pre + done,
			    plen - done);
		if (r > 0) {
			done += (size_t)r;
			c->bytes_out += (uint64_t)r;
			continue;
		}
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (conn_wait(c, POLLOUT, err) == -1)
				return -1;
			continue;
		}
		return conn_io_error(c, r == 0 ? EPIPE : errno, "writing",
		    err);
	}
	done = 0;
	while (done < n) {
		if (kind == CONN_FD_FILE && f->wsock)
			r = sendfile(f->wfd, fd, NULL, n - done);
		else
			r = splice(fd, NULL, f->wfd, NULL, n - done,
			    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (r > 0) {
			done += (size_t)r;
			c->bytes_out += (uint64_t)r;
			continue;
		}
		if (r == 0) {
			*src_failed = 1;
			return as_err_set(err, AS_E_TRUNCATED, 0, "the stream "
			    "ended inside a frame to '%s'", c->peer);
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			/* The source holds the bytes (the caller counted them). */
			if (conn_wait(c, POLLOUT, err) == -1)
				return -1;
			continue;
		}
		if ((errno == EINVAL || errno == ENOSYS ||
		    errno == EOPNOTSUPP) && done == 0)
			return copy_from_fd(c, NULL, 0, fd, n, src_failed,
			    err);
		if (is_conn_errno(errno))
			return conn_io_error(c, errno, "writing", err);
		*src_failed = 1;
		return as_err_sys(err, errno, "read the stream");
	}
	return 0;
}

/*
 * Bytes copied out of the conn (TLS: decrypted) reach the receiver's pipe
 * by vmsplice(2) from a ring of buffers instead of write(2): the pipe
 * takes references to the pages instead of a copy, and the reader copies
 * from them.  A slot may be filled again only once the reader has taken
 * every byte in it: the pipe is FIFO, so that is when the bytes put into
 * the pipe since, plus what it still holds (FIONREAD), cover the slot's
 * end.  With a ring of several times the pipe's size that is always so
 * in practice; when it is not, the chunk takes the write(2) path, which
 * never waits on the reader's progress.  The ring is MADV_DONTFORK (a
 * receiving child forked later must not share it) and belongs to one
 * pipe: another pipe gets a fresh ring, the old one's pages live on in
 * the old pipe until it lets them go.
 */
#define RING_SLOTS	16
#define RING_BYTES	(RING_SLOTS * COPY_BUFSZ)

struct conn_ring {
	uint8_t		*base;
	dev_t		 dev;		/* the pipe it feeds */
	ino_t		 ino;
	uint64_t	 total;		/* bytes put into that pipe */
	uint64_t	 end[RING_SLOTS];	/* total after each slot's bytes */
	unsigned	 next;
};

static void
ring_free(struct conn_ring *r)
{
	if (r == NULL)
		return;
	if (r->base != NULL)
		munmap(r->base, RING_BYTES);
	free(r);
}

/* The ring for pipe fd, new if fd is another pipe; NULL: not a pipe. */
static struct conn_ring *
ring_for(struct conn *c, int fd)
{
	struct conn_ring *r = c->ring;
	struct stat st;
	void *m;
	int psz;

	if (fstat(fd, &st) == -1 || !S_ISFIFO(st.st_mode))
		return NULL;
	if (r != NULL && r->dev == st.st_dev && r->ino == st.st_ino)
		return r->base != NULL ? r : NULL;
	ring_free(r);
	c->ring = r = xcalloc(1, sizeof(*r));
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	/* A pipe as large as half the ring: the copying path (and no ring). */
	psz = fcntl(fd, F_GETPIPE_SZ);
	if (psz <= 0 || (size_t)psz > RING_BYTES / 2)
		return NULL;
	m = mmap(NULL, RING_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	if (madvise(m, RING_BYTES, MADV_DONTFORK) == -1) {
		munmap(m, RING_BYTES);
		return NULL;
	}
	r->base = m;
	return r;
}

/* The next slot if the reader is done with it, else NULL. */
static uint8_t *
ring_slot(struct conn_ring *r, int fd)
{
	int q = 0;

	if (r->end[r->next] != 0) {
		if (ioctl(fd, FIONREAD, &q) == -1 || q < 0 ||
		    r->total - (uint64_t)q < r->end[r->next])
			return NULL;
	}
	return r->base + (size_t)r->next * COPY_BUFSZ;
}

/* vmsplice n bytes at b (the next slot) into fd; -1 with errno. */
static int
ring_put(struct conn_ring *r, int fd, uint8_t *b, size_t n)
{
	struct iovec iov;
	ssize_t w;

	iov.iov_base = b;
	iov.iov_len = n;
	while (iov.iov_len > 0) {
		w = vmsplice(fd, &iov, 1, 0);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EPIPE;
			return -1;
		}
		iov.iov_base = (uint8_t *)iov.iov_base + w;
		iov.iov_len -= (size_t)w;
		r->total += (uint64_t)w;
	}
	r->end[r->next] = r->total;
	r->next = (r->next + 1) % RING_SLOTS;
	return 0;
}

/* Read n bytes from the conn and write them to fd through a buffer. */
static int
copy_to_fd(struct conn *c, int fd, size_t n, int *dst_failed,
    struct as_err *err)
{
	struct conn_ring *r;
	uint8_t *b;
	size_t want;
	int rc = 0;

	if (n == 0)
		return 0;
	r = *dst_failed ? NULL : ring_for(c, fd);
	while (n > 0) {
		want = n < COPY_BUFSZ ? n : COPY_BUFSZ;
		b = r != NULL && !*dst_failed ? ring_slot(r, fd) : NULL;
		if (conn_read_full(c, b != NULL ? b : copy_buf(c), want,
		    err) == -1) {
			rc = -1;
			break;
		}
		if (*dst_failed)
			;	/* drain the frame all the same */
		else if (b != NULL) {
			if (ring_put(r, fd, b, want) == -1)
				*dst_failed = 1;
		} else if (io_write_full(fd, copy_buf(c), want) == -1)
			*dst_failed = 1;
		else if (r != NULL)
			r->total += want;
		n -= want;
	}
	return rc;
}

int
conn_read_to_fd(struct conn *c, int fd, size_t n, int *dst_failed,
    struct as_err *err)
{
	struct pollfd pfd;
	struct fdconn *f;
	ssize_t r;

	*dst_failed = 0;
	if (!is_fd_conn(c) || c->ops->pending(c) > 0)
		return copy_to_fd(c, fd, n, dst_failed, err);
	f = c->impl;
	while (n > 0) {
		r = splice(f->rfd, NULL, fd, NULL, n, SPLICE_F_MOVE);
		if (r > 0) {
			n -= (size_t)r;
			c->bytes_in += (uint64_t)r;
			continue;
		}
		if (r == 0)
			return as_err_set(err, AS_E_TRUNCATED, 0,
			    "connection to '%s': peer closed the connection "
			    "inside a frame", c->peer);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			/*
			 * Between two pipes, a non-blocking source makes the
			 * whole splice non-blocking: the output may be the one
			 * that is full.  Then wait for our own reader, which
			 * the old copying path blocked on as well.
			 */
			pfd.fd = fd;
			pfd.events = POLLOUT;
			pfd.revents = 0;
			if (poll(&pfd, 1, 0) == 0) {
				pfd.revents = 0;
				while (poll(&pfd, 1, -1) == -1 && errno == EINTR)
					;
				continue;
			}
			if (conn_wait(c, POLLIN, err) == -1)
				return -1;
			continue;
		}
		if (errno == EPIPE) {
			/* Our reader went away: drain the frame. */
			*dst_failed = 1;
			return copy_to_fd(c, fd, n, dst_failed, err);
		}
		if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)
			return copy_to_fd(c, fd, n, dst_failed, err);
		return conn_io_error(c, errno, "reading", err);
	}
	return 0;
}

int
conn_shutdown_write(struct conn *c, struct as_err *err)
{
	if (c->ops->shutdown_write(c) == -1)
		return conn_io_error(c, errno, "closing", err);
	return 0;
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->ops != NULL && c->ops->free != NULL)
		c->ops->free(c);
	free(c->copybuf);
	ring_free(c->ring);
	free(c);
}

static int
wait_exit(pid_t pid, int ms, int *status)
{
	struct timespec ts = { 0, 10 * 1000000 };
	uint64_t deadline;
	pid_t r;

	deadline = conn_now_ms() + (uint64_t)ms;
	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 1;
		if (r == -1 && errno != EINTR)
			return -1;	/* ECHILD: reaped elsewhere */
		if (conn_now_ms() >= deadline)
			return 0;
		nanosleep(&ts, NULL);
	}
}

int
conn_reap_child(pid_t pid, int grace_ms)
{
	int status = 0, r;

	if (pid <= 0)
		return -1;
	r = wait_exit(pid, grace_ms, &status);
	if (r == 0) {
		kill(pid, SIGTERM);
		r = wait_exit(pid, 2000, &status);
	}
	if (r == 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		r = 1;
	}
	return r == 1 ? status : -1;
}
