/* remote.c - push and pull over a connection; see remote.h. */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "base/proc.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "format/stream.h"
#include "repl/rchild.h"
#include "repl/remote.h"
#include "transport/auth.h"
#include "transport/compress.h"
#include "transport/frame.h"
#include "transport/keys.h"
#include "transport/tcp.h"
#include "transport/tls.h"
#include "base/banned.h"

/*
 * Raw DATA frames moved by splice (transport/conn.h) carry up to what the
 * pipe holds; receivers accept up to FRAME_MAX.  Rate-limited transfers
 * keep PROTO_CHUNK frames, the unit the bucket is asked about.
 */
#define SPLICE_CHUNK	(1u << 20)

struct remote {
	struct conn	*c;
	pid_t		 ssh_pid;	/* ours to reap, or 0 */
	struct tls_ctx	*tls;
	uint32_t	 features;	/* negotiated */
	char		*path;		/* the remote path */
	uint32_t	 req_flags;	/* added to every request */
	char		*req_id;	/* HOLD, RECEIVE: id, or NULL */
	struct remote_opts o;
	struct ratelimit rl;
	struct buf	 b;		/* scratch for control messages */
};

/* What the receiving child reports to its parent (rchild.h). */
struct recv_report {
	struct rchild_report	hdr;
	struct dir_recv_result	res;
};

/*
 * The stream pumps.
 */

struct sender_thread {
	const struct xfer_src	*s;
	int			 fd;	/* the stream's pipe; or, with sink, */
	const struct dir_sink	*sink;	/* closed when the sender is done */
	struct xfer_sent	*out;
	int			 after_rc;
};

static void *
sender_main(void *arg)
{
	struct sender_thread *t = arg;

	if (t->s->send != NULL)
		t->out->sender_rc = t->s->send(t->s->send_arg, t->fd,
		    &t->out->serr);
	else if (t->sink != NULL)
		t->out->sender_rc = dir_send_to(t->s->root, t->s->target,
		    t->s->base, t->sink, t->s->sflags, t->s->before_end,
		    t->s->before_end_arg, t->s->resume_pos, &t->out->st,
		    &t->out->serr);
	else
		t->out->sender_rc = dir_send_resume(t->s->root,
		    t->s->target, t->s->base, t->fd, t->s->sflags,
		    t->s->before_end, t->s->before_end_arg, t->s->resume_pos,
		    &t->out->st, &t->out->serr);
	if (t->out->sender_rc == -1 && t->out->serr.code == AS_E_OK)
		as_err_set(&t->out->serr, AS_E_INTERNAL, 0, "send failed");
	if (t->out->sender_rc == 0 && t->s->after != NULL)
		t->out->after_rc = t->s->after(t->s->after_arg,
		    &t->out->aerr);
	close(t->fd);
	return NULL;
}

/* The RESULT that answers a request, decoded; its peer named on errors. */
static int
read_result(struct remote *r, struct proto_result *res, struct as_err *err)
{
	if (proto_expect(r->c, PT_RESULT, &r->b, NULL, err) == -1)
		return -1;
	if (proto_dec_result(res, r->b.data, r->b.len, err) == -1)
		return as_err_prefix(err, "'%s'", r->c->peer);
	return 0;
}

/* The same, and a refusal (code != 0) as the error it carries. */
static int
read_ok_result(struct remote *r, struct proto_result *res,
    struct as_err *err)
{
	if (read_result(r, res, err) == -1)
		return -1;
	if (res->code != 0)
		return proto_result_to_err(res, r->c->peer, err);
	return 0;
}

static int
ms_of_ns(uint64_t ns)
{
	uint64_t ms = (ns + 999999) / 1000000;

	return ms > 60000 ? 60000 : (int)ms;
}

/*
 * A live rate change (remote_opts.rate_live) goes into the bucket before
 * the next chunk; returns the longest poll timeout (ms) that still sees
 * the next change in time: 1 s while changes can come, else -1.
 */
static int
rate_follow(const struct xfer_opts *o)
{
	uint64_t v;

	if (o->rate_live == NULL || o->rl == NULL)
		return -1;
	v = o->rate_live();
	if (v != UINT64_MAX && v != o->rl->rate)
		ratelimit_set(o->rl, v);
	return 1000;
}

/* END_DATA for a finished send: its bytes, and why it stopped if it did. */
static int
send_end(struct conn *c, const struct xfer_sent *out, struct as_err *err)
{
	struct proto_end end;
	struct buf scratch = BUF_INIT;
	int r;

	memset(&end, 0, sizeof(end));
	end.bytes = out->raw_bytes;
	if (out->stopped) {
		end.status = 1;
		end.code = AS_E_IO;
		snprintf(end.msg, sizeof(end.msg), "sender stopped: the "
		    "receiver failed");
	} else if (out->sender_rc == -1) {
		end.status = 1;
		end.code = (uint8_t)out->serr.code;
		snprintf(end.msg, sizeof(end.msg), "%s", out->serr.msg);
	}
	r = proto_send_end(c, &end, &scratch, err);
	buf_release(&scratch);
	return r;
}

/*
 * The direct push: dir_send's sender frames its bytes onto the
 * connection itself (dir_sink), where xfer_send's pump would move them
 * from a pipe.  On a 2-CPU machine the pipe cost a page allocation and a
 * copy per 4 KiB, the pump's splice and a thread's wake-ups per chunk
 * (bench/README.md, session 11).  Only for a plain connection (its two
 * directions are separate descriptors: the main thread reads the
 * receiver's early answer while the sender writes), and only without
 * compression or a rate limit, which stay the pump's.
 */
struct direct_sink {
	struct conn		*c;
	const struct xfer_opts	*o;
	struct xfer_sent	*out;
	pthread_mutex_t		 mu;	/* one frame at a time on c */
	int			 stop;	/* the receiver answered: stop */
	int			 conn_failed;
	struct as_err		 cerr;	/* the connection's error */
};

static int
direct_write(void *arg, const void *p, size_t n)
{
	struct direct_sink *k = arg;
	const uint8_t *b = p;
	size_t m;
	int r;

	while (n > 0) {
		if (__atomic_load_n(&k->stop, __ATOMIC_ACQUIRE)) {
			errno = EPIPE;
			return -1;
		}
		m = n > SPLICE_CHUNK ? SPLICE_CHUNK : n;
		pthread_mutex_lock(&k->mu);
		r = frame_send(k->c, PT_DATA, b, m, &k->cerr);
		pthread_mutex_unlock(&k->mu);
		if (r == -1) {
			k->conn_failed = 1;
			errno = EPIPE;
			return -1;
		}
		/* read by the main thread: is the sender still quiet? */
		__atomic_store_n(&k->out->raw_bytes, k->out->raw_bytes + m,
		    __ATOMIC_RELEASE);
		k->out->wire_bytes += m;
		if (k->o->prog != NULL)
			progress_update(k->o->prog, k->out->raw_bytes,
			    ratelimit_now_ns());
		b += m;
		n -= m;
	}
	return 0;
}

static int
direct_eligible(const struct conn *c, const struct xfer_opts *o,
    const struct xfer_src *s)
{
	return s->fd < 0 && s->send == NULL && o->rl == NULL &&
	    !((o->features & PROTO_F_ZSTD) && o->zstd_level != 0) &&
	    strcmp(c->ops->name, "tcp") == 0 &&
	    getenv("AUTOSYNC_NO_DIRECT_PUSH") == NULL;
}

static int
xfer_send_direct(struct conn *c, const struct xfer_opts *o,
    const struct xfer_src *s, struct xfer_sent *out, struct as_err *err)
{
	struct direct_sink k;
	struct dir_sink sink;
	struct sender_thread th;
	struct pollfd pfd[2];
	pthread_t tid;
	uint64_t last_sent = ratelimit_now_ns();
	int done[2], r, e, tmo, quiet, failed = 0;

	memset(&k, 0, sizeof(k));
	k.c = c;
	k.o = o;
	k.out = out;
	pthread_mutex_init(&k.mu, NULL);
	sink.write = direct_write;
	sink.arg = &k;
	/* the sender closes done[1] when it is done: POLLHUP on done[0] */
	if (pipe2(done, O_CLOEXEC) == -1) {
		pthread_mutex_destroy(&k.mu);
		return as_err_sys(err, errno, "pipe");
	}
	memset(&th, 0, sizeof(th));
	th.s = s;
	th.fd = done[1];
	th.sink = &sink;
	th.out = out;
	if ((e = pthread_create(&tid, NULL, sender_main, &th)) != 0) {
		close(done[0]);
		close(done[1]);
		pthread_mutex_destroy(&k.mu);
		return as_err_sys(err, e, "start the sender");
	}
	for (;;) {
		/* silent before the first byte: KEEPALIVE, as xfer_send */
		quiet = (o->features & PROTO_F_KEEPALIVE) &&
		    __atomic_load_n(&out->raw_bytes, __ATOMIC_ACQUIRE) == 0;
		tmo = quiet ? PROTO_KEEPALIVE_MS : -1;
		pfd[0].fd = c->ops->rfd(c);
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		pfd[1].fd = done[0];
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		r = poll(pfd, 2, tmo);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			as_err_sys(err, errno, "poll");
			failed = 1;
			break;
		}
		if (r == 0) {
			if (quiet && ratelimit_now_ns() - last_sent >=
			    (uint64_t)PROTO_KEEPALIVE_MS * 1000000) {
				pthread_mutex_lock(&k.mu);
				r = proto_send_keepalive(c, err);
				pthread_mutex_unlock(&k.mu);
				if (r == -1) {
					failed = 1;
					break;
				}
				last_sent = ratelimit_now_ns();
			}
			continue;
		}
		if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
			/*
			 * The receiver spoke first: it failed.  It drains
			 * what is on its way until END_DATA, so the sender
			 * finishes its frame and then stops.
			 */
			if (frame_recv(c, &out->early_type, &out->early,
			    PROTO_CTRL_MAX, err) == -1)
				failed = 1;
			else
				out->stopped = 1;
			break;
		}
		if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0)
			break;
	}
	/* whatever ended the wait, a sender still going stops at its frame */
	__atomic_store_n(&k.stop, 1, __ATOMIC_RELEASE);
	pthread_join(tid, NULL);
	close(done[0]);
	pthread_mutex_destroy(&k.mu);
	if (k.conn_failed && !failed) {
		*err = k.cerr;
		failed = 1;
	}
	if (failed)
		return -1;
	return send_end(c, out, err);
}

int
xfer_send(struct conn *c, const struct xfer_opts *o,
    const struct xfer_src *s, struct xfer_sent *out, struct as_err *err)
{
	struct sender_thread th;
	struct compressor *z = NULL;
	struct pollfd pfd[2];
	struct buf zb = BUF_INIT;
	pthread_t tid;
	uint8_t *raw;
	uint64_t now, wait_ns, last_sent = ratelimit_now_ns();
	ssize_t n;
	size_t avail;
	int p[2], in_fd, have_thread = 0, conn_failed = 0, r, e, tmo;
	int read_failed = 0, kind, src_failed, tmo_max, quiet;

	memset(&out->st, 0, sizeof(out->st));
	as_err_clear(&out->serr);
	out->sender_rc = 0;
	out->after_rc = 0;
	as_err_clear(&out->aerr);
	out->raw_bytes = out->wire_bytes = 0;
	out->stopped = 0;
	out->early_type = 0;
	buf_reset(&out->early);
	if (direct_eligible(c, o, s))
		return xfer_send_direct(c, o, s, out, err);
	raw = xmalloc_io(PROTO_CHUNK);
	if ((o->features & PROTO_F_ZSTD) && o->zstd_level != 0)
		z = compressor_new(o->zstd_level);

	if (s->fd >= 0)
		in_fd = s->fd;
	else {
		if (pipe2(p, O_CLOEXEC) == -1) {
			as_err_sys(err, errno, "pipe");
			free(raw);
			compressor_free(z);
			return -1;
		}
		(void)fcntl(p[1], F_SETPIPE_SZ, REMOTE_PIPE_SIZE);
		memset(&th, 0, sizeof(th));
		th.s = s;
		th.fd = p[1];
		th.out = out;
		if ((e = pthread_create(&tid, NULL, sender_main, &th)) != 0) {
			as_err_sys(err, e, "start the sender");
			close(p[0]);
			close(p[1]);
			free(raw);
			compressor_free(z);
			return -1;
		}
		have_thread = 1;
		in_fd = p[0];
	}
	/* Uncompressed data from a pipe or a file is spliced, not copied. */
	kind = z == NULL ? conn_fd_kind(in_fd) : CONN_FD_OTHER;

	for (;;) {
		tmo_max = rate_follow(o);
		now = ratelimit_now_ns();
		wait_ns = o->rl != NULL ? ratelimit_wait_ns(o->rl, now,
		    PROTO_CHUNK) : 0;
		pfd[0].fd = c->ops->rfd(c);
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		pfd[1].fd = in_fd;
		pfd[1].events = wait_ns == 0 ? POLLIN : 0;
		pfd[1].revents = 0;
		tmo = wait_ns == 0 ? -1 : ms_of_ns(wait_ns);
		if (tmo_max >= 0 && (tmo < 0 || tmo > tmo_max))
			tmo = tmo_max;
		/*
		 * A sender may be silent for long before its first byte
		 * (a scan of millions of entries, or of a cold disk): the
		 * receiver's idle timeout must not take that for a dead
		 * peer (PROTO_F_KEEPALIVE).  Not once bytes flowed: a
		 * sender silent then is stuck, and the receiver's timeout
		 * is the one that should end it.
		 */
		quiet = (o->features & PROTO_F_KEEPALIVE) && wait_ns == 0 &&
		    out->raw_bytes == 0;
		if (quiet && (tmo < 0 || tmo > PROTO_KEEPALIVE_MS))
			tmo = PROTO_KEEPALIVE_MS;
		if (c->ops->pending(c) > 0)
			tmo = 0;
		r = poll(pfd, 2, tmo);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			as_err_sys(err, errno, "poll");
			conn_failed = 1;
			break;
		}
		if (r == 0 && quiet && c->ops->pending(c) == 0 &&
		    ratelimit_now_ns() - last_sent >=
		    (uint64_t)PROTO_KEEPALIVE_MS * 1000000) {
			if (proto_send_keepalive(c, err) == -1) {
				conn_failed = 1;
				break;
			}
			last_sent = ratelimit_now_ns();
			continue;
		}
		if (c->ops->pending(c) > 0 || (pfd[0].revents &
		    (POLLIN | POLLHUP | POLLERR)) != 0) {
			/* The receiver spoke first: it failed. */
			if (frame_recv(c, &out->early_type, &out->early,
			    PROTO_CTRL_MAX, err) == -1) {
				conn_failed = 1;
				break;
			}
			out->stopped = 1;
			break;
		}
		if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
			continue;
		avail = kind == CONN_FD_OTHER ? 0 : conn_fd_ready(in_fd, kind,
		    o->rl != NULL && o->rl->rate > 0 ? PROTO_CHUNK :
		    SPLICE_CHUNK);
		if (avail > 0) {
			if (frame_send_fd(c, PT_DATA, in_fd, kind, avail,
			    &src_failed, err) == -1) {
				if (src_failed) {
					out->serr = *err;
					read_failed = 1;
				}
				conn_failed = 1;
				break;
			}
			out->raw_bytes += avail;
			out->wire_bytes += avail;
			n = (ssize_t)avail;
			goto sent;
		}
		n = read(in_fd, raw, PROTO_CHUNK);
		if (n == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			as_err_sys(&out->serr, errno, "read the stream");
			read_failed = 1;
			break;
		}
		if (n == 0)
			break;
		out->raw_bytes += (uint64_t)n;
		if (z != NULL) {
			buf_reset(&zb);
			buf_add_u32(&zb, (uint32_t)n);
			if (compress_block(z, raw, (size_t)n, &zb, err) == -1) {
				conn_failed = 1;
				break;
			}
			r = frame_send(c, PT_ZDATA, zb.data, zb.len, err);
			out->wire_bytes += zb.len;
		} else {
			r = frame_send(c, PT_DATA, raw, (size_t)n, err);
			out->wire_bytes += (uint64_t)n;
		}
		if (r == -1) {
			conn_failed = 1;
			break;
		}
sent:
		now = ratelimit_now_ns();
		last_sent = now;
		if (o->rl != NULL)
			ratelimit_consume(o->rl, now, z != NULL ? zb.len :
			    (uint64_t)n);
		if (o->prog != NULL)
			progress_update(o->prog, out->raw_bytes, now);
	}

	if (have_thread) {
		close(in_fd);	/* a sender still writing gets EPIPE */
		pthread_join(tid, NULL);
	}
	if (read_failed)
		out->sender_rc = -1;
	free(raw);
	compressor_free(z);
	buf_release(&zb);
	if (conn_failed)
		return -1;
	return send_end(c, out, err);
}

/* What the receiving child needs (rchild_start's arg). */
struct recv_args {
	struct conn		*c;
	const struct xfer_opts	*o;
	const char		*dst;
	int			 flags;
};

/* The receiving child: never returns. */
static void
receive_child(void *arg, int in_fd, int report_fd)
{
	const struct recv_args *a = arg;
	struct conn *c = a->c;
	const struct xfer_opts *o = a->o;
	const char *dst = a->dst;
	int flags = a->flags;
	struct recv_report r;
	int fd;

	/* The connection is the parent's: drop our copies. */
	fd = c->ops->rfd(c);
	if (fd > 2)
		close(fd);
	fd = c->ops->wfd(c);
	if (fd > 2)
		close(fd);
	memset(&r, 0, sizeof(r));
	if (o->receiver != NULL)
		r.hdr.rc = o->receiver(o->receiver_arg, dst, in_fd, flags,
		    &r.res, &r.hdr.err);
	else
		r.hdr.rc = dir_receive(dst, in_fd, flags, &r.res, &r.hdr.err);
	rchild_exit(report_fd, &r.hdr, sizeof(r));
}

/*
 * Close the stream, read the child's report and reap it (rchild_finish:
 * a child the watch killed is a TIMEOUT, one killed from outside an IO
 * error, as for a local transfer).
 */
static void
collect(struct rchild *rw, struct xfer_rcvd *out)
{
	struct recv_report r;
	struct as_err e;

	if (rchild_finish(rw, &r.hdr, sizeof(r), &e) == -1) {
		memset(&r, 0, sizeof(r));
		r.hdr.rc = -1;
		r.hdr.err = e;
	}
	out->recv_rc = r.hdr.rc;
	out->rerr = r.hdr.err;
	out->res = r.res;
}

int
xfer_recv(struct conn *c, const struct xfer_opts *o, const char *dest,
    int rflags, xfer_fail_fn fail, void *arg, struct xfer_rcvd *out,
    struct as_err *err)
{
	struct decompressor *dz = NULL;
	struct buf pl = BUF_INIT;
	struct pollfd pfd[2];
	uint8_t *raw = NULL, type;
	const uint8_t *wp;
	uint64_t now, wait_ns;
	size_t wn, rawlen;
	uint32_t decl;
	struct recv_args ra = { c, o, dest, rflags };
	struct rchild rw;
	struct as_err we;
	int r, tmo, pw = -1, gone = 0, rc = -1, dst_failed;
	char tb[16];

	memset(out, 0, sizeof(*out));
	if (rchild_start(&rw, receive_child, &ra, err) == -1)
		return -1;
	/*
	 * A stopped or stuck receiver ends in TIMEOUT (§F 69), not a hang
	 * with the connection's data stuck in its full pipe.
	 */
	if (rchild_watch(&rw, c->idle_ms > 0 ? c->idle_ms :
	    CONN_IDLE_DEFAULT_MS, &we) == -1)
		log_warn("%s", we.msg);	/* the transfer goes on */
	pw = rw.data_fd;
	if (o->features & PROTO_F_ZSTD) {
		dz = decompressor_new();
		raw = xmalloc_io(PROTO_CHUNK);
	}

	for (;;) {
		(void)rate_follow(o);	/* a pull: at most a chunk late */
		now = ratelimit_now_ns();
		wait_ns = o->rl != NULL && !gone ? ratelimit_wait_ns(o->rl,
		    now, PROTO_CHUNK) : 0;
		pfd[0].fd = c->ops->rfd(c);
		pfd[0].events = wait_ns == 0 ? POLLIN : 0;
		pfd[0].revents = 0;
		pfd[1].fd = gone ? -1 : rw.report_fd;
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		tmo = wait_ns > 0 ? ms_of_ns(wait_ns) :
		    c->idle_ms > 0 ? c->idle_ms : -1;
		if (wait_ns == 0 && c->ops->pending(c) > 0)
			tmo = 0;
		r = poll(pfd, 2, tmo);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			as_err_sys(err, errno, "poll");
			goto fail;
		}
		if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
			/* The receiver finished before END_DATA. */
			pw = -1;
			collect(&rw, out);
			gone = 1;
			if (out->recv_rc != 0 && fail != NULL) {
				out->told = 1;
				if (fail(c, arg, &out->rerr, err) == -1)
					goto out;
			}
			continue;
		}
		if (r == 0 && wait_ns == 0 && c->ops->pending(c) == 0) {
			as_err_set(err, AS_E_TIMEOUT, ETIMEDOUT, "connection "
			    "to '%s' timed out: no data for %d ms", c->peer,
			    c->idle_ms);
			goto fail;
		}
		if (c->ops->pending(c) == 0 && (pfd[0].revents &
		    (POLLIN | POLLHUP | POLLERR)) == 0)
			continue;
		if (frame_recv_head(c, &type, &rawlen, FRAME_MAX, err) == -1)
			goto fail;
		if (type == PT_KEEPALIVE) {
			/* a silent sender is still there (xfer_send) */
			if (rawlen != 0) {
				as_err_set(err, AS_E_MALFORMED, 0, "'%s' sent a "
				    "KEEPALIVE frame of %zu bytes", c->peer,
				    rawlen);
				goto fail;
			}
			continue;
		}
		if (type == PT_DATA && pw != -1) {
			/* Spliced to the receiver, not copied (conn.h). */
			if (conn_read_to_fd(c, pw, rawlen, &dst_failed,
			    err) == -1)
				goto fail;
			if (dst_failed)
				/* The receiver went away: its report says why
				 * (collect closes the pipe, the watch on) */
				pw = -1;
			out->raw_bytes += rawlen;
			now = ratelimit_now_ns();
			if (o->rl != NULL)
				ratelimit_consume(o->rl, now, rawlen);
			if (o->prog != NULL)
				progress_update(o->prog, out->raw_bytes, now);
			continue;
		}
		buf_reset(&pl);
		if (rawlen > 0) {
			if (conn_read_full(c, buf_reserve(&pl, rawlen), rawlen,
			    err) == -1)
				goto fail;
			pl.len = rawlen;
		}
		if (type == PT_END_DATA) {
			if (proto_dec_end(&out->end, pl.data, pl.len,
			    err) == -1) {
				as_err_prefix(err, "'%s'", c->peer);
				goto fail;
			}
			break;
		}
		if (type == PT_DATA) {
			wp = pl.data;
			wn = pl.len;
		} else if (type == PT_ZDATA && dz != NULL) {
			if (pl.len < 4) {
				as_err_set(err, AS_E_MALFORMED, 0, "'%s' sent "
				    "a short ZDATA frame", c->peer);
				goto fail;
			}
			decl = le32(pl.data);
			if (decl > PROTO_CHUNK) {
				as_err_set(err, AS_E_LIMIT, 0, "'%s' sent a "
				    "ZDATA frame of %" PRIu32 " bytes (max %u)",
				    c->peer, decl, PROTO_CHUNK);
				goto fail;
			}
			if (decompress_block(dz, pl.data + 4, pl.len - 4,
			    raw, decl, &rawlen, err) == -1 ||
			    rawlen != decl) {
				if (rawlen != decl)
					as_err_set(err, AS_E_MALFORMED, 0,
					    "ZDATA frame declares %" PRIu32
					    " bytes and holds %zu", decl,
					    rawlen);
				as_err_prefix(err, "'%s'", c->peer);
				goto fail;
			}
			wp = raw;
			wn = rawlen;
		} else {
			as_err_set(err, AS_E_MALFORMED, 0, "'%s' sent %s "
			    "inside a stream", c->peer,
			    proto_type_name(type, tb, sizeof(tb)));
			goto fail;
		}
		out->raw_bytes += wn;
		now = ratelimit_now_ns();
		if (o->rl != NULL)
			ratelimit_consume(o->rl, now, pl.len);
		if (o->prog != NULL)
			progress_update(o->prog, out->raw_bytes, now);
		if (pw != -1 && wn > 0 && io_write_full(pw, wp, wn) == -1)
			/* The receiver went away: its report says why. */
			pw = -1;
	}
	if (!gone) {
		/*
		 * The child commits once it sees the end of the stream;
		 * that can outlast the peer's idle timeout (a syncfs of a
		 * large copy on a slow disk), so say we are still here.
		 */
		pw = -1;
		rchild_end_stream(&rw);
		if (o->features & PROTO_F_KEEPALIVE)
			proto_keepalive_until(c, rw.report_fd);
		collect(&rw, out);
	}
	rc = 0;
	goto out;
fail:
	if (!gone)
		collect(&rw, out);
out:
	decompressor_free(dz);
	free(raw);
	buf_release(&pl);
	return rc;
}

uint64_t
xfer_estimate(const struct catalog *target, const struct catalog *base)
{
	const struct cat_entry *e, *b;
	const char *p;
	uint64_t sum = 0;
	size_t i;
	long j;

	for (i = 0; i < target->n; i++) {
		e = &target->ents[i];
		/* CAT_EF_SAME: unchanged, its base twin not kept (merge scan) */
		if ((e->mode & S_IFMT) != S_IFREG || (base != NULL &&
		    (e->flags & CAT_EF_SAME) != 0))
			continue;
		if (base != NULL) {
			p = catalog_path(target, e);
			j = catalog_find(base, p, e->path_len);
			if (j >= 0) {
				b = &base->ents[j];
				if (b->size == e->size && b->ino == e->ino &&
				    b->mtime_sec == e->mtime_sec &&
				    b->mtime_nsec == e->mtime_nsec)
					continue;
			}
		}
		sum += e->size;
	}
	return sum;
}

/*
 * The active side.
 */

void
xfer_tune_socket(struct conn *c)
{
	unsigned int tmo;
	int on = 1, fd;

	fd = c->ops->wfd(c);
	if (fd < 0)
		return;
	/*
	 * Requests and answers are small and wait for each other: Nagle
	 * with delayed ACKs would add 40 ms to each exchange.  Bulk data
	 * goes out in large frames anyway.
	 */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	/*
	 * Data the kernel accepted but the peer never acknowledged is no
	 * progress: without this, a blackholed peer is noticed only once
	 * the (megabytes of) socket buffer are full, long after the idle
	 * timeout.
	 */
	if (c->idle_ms > 0) {
		tmo = (unsigned int)c->idle_ms;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &tmo,
		    sizeof(tmo));
	}
}

/* Spawn ssh with the greeting's pipes; the conn and the pid. */
static int
spawn_ssh(struct remote *r, const struct endpoint *ep, struct as_err *err)
{
	const char *argv[16], *prog, *rcmd;
	char peer[300], line[1024];
	size_t i, off;
	int in[2], out[2];
	pid_t pid, parent;

	prog = getenv("AUTOSYNC_SSH");
	if (prog == NULL || *prog == '\0')
		prog = "ssh";
	rcmd = getenv("AUTOSYNC_REMOTE");
	if (rcmd == NULL || *rcmd == '\0')
		rcmd = "autosync";
	if (ep->host == NULL || ep->host[0] == '-' ||
	    (ep->user != NULL && ep->user[0] == '-'))
		return as_err_set(err, AS_E_USAGE, 0, "refusing ssh host or "
		    "user starting with '-'");
	i = 0;
	argv[i++] = prog;
	if (ep->port != NULL) {
		argv[i++] = "-p";
		argv[i++] = ep->port;
	}
	if (ep->user != NULL) {
		argv[i++] = "-l";
		argv[i++] = ep->user;
	}
	argv[i++] = "--";
	argv[i++] = ep->host;
	argv[i++] = rcmd;
	argv[i++] = "serve";
	argv[i++] = "--stdio";
	argv[i] = NULL;
	for (i = 0, off = 0; argv[i] != NULL && off < sizeof(line); i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s",
		    i > 0 ? " " : "", argv[i]);
	log_debug("run: %s", line);

	if (pipe2(in, O_CLOEXEC) == -1)
		return as_err_sys(err, errno, "pipe");
	if (pipe2(out, O_CLOEXEC) == -1) {
		as_err_sys(err, errno, "pipe");
		close(in[0]);
		close(in[1]);
		return -1;
	}
	fflush(NULL);
	parent = getpid();
	if ((pid = fork()) == -1) {
		as_err_sys(err, errno, "fork");
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		return -1;
	}
	if (pid == 0) {
		/*
		 * A killed autosync takes its ssh along: the remote serve
		 * then sees its stdin close (§F 69).  dup2 clears
		 * FD_CLOEXEC on 0 and 1 only.
		 */
		if (proc_die_with_parent(parent) == -1 ||
		    dup2(in[0], 0) == -1 || dup2(out[1], 1) == -1)
			_exit(126);
		signal(SIGPIPE, SIG_DFL);
		execvp(prog, (char *const *)argv);
		fprintf(stderr, "autosync: cannot run '%s': %s\n", prog,
		    strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(in[0]);
	close(out[1]);
	/*
	 * ssh reads and writes 32 KiB at a time: with pipes of 1 MiB
	 * instead of 64 KiB, it and we wait on each other far less often.
	 */
	(void)fcntl(in[1], F_SETPIPE_SZ, REMOTE_PIPE_SIZE);
	(void)fcntl(out[0], F_SETPIPE_SZ, REMOTE_PIPE_SIZE);
	snprintf(peer, sizeof(peer), "%s%s%s", ep->user != NULL ? ep->user :
	    "", ep->user != NULL ? "@" : "", ep->host);
	r->c = conn_from_fds(out[0], in[1], 0, peer);
	r->ssh_pid = pid;
	return 0;
}

/* After a failed greeting over ssh: what ssh's exit status says. */
static void
ssh_diagnose(struct remote *r, struct as_err *err)
{
	char peer[sizeof(r->c->peer)];
	int status;

	if (r->ssh_pid <= 0 || (err != NULL && err->code != AS_E_IO &&
	    err->code != AS_E_TRUNCATED))
		return;
	snprintf(peer, sizeof(peer), "%s", r->c->peer);
	conn_free(r->c);
	r->c = NULL;
	status = conn_reap_child(r->ssh_pid, 2000);
	r->ssh_pid = 0;
	if (status == -1 || !WIFEXITED(status))
		return;
	log_debug("ssh exited with status %d", WEXITSTATUS(status));
	if (WEXITSTATUS(status) == 127)
		as_err_set(err, AS_E_NOTFOUND, 0, "'%s': autosync is not "
		    "installed there, or not in the PATH of a non-interactive "
		    "shell (ssh exit status 127)", peer);
	else if (WEXITSTATUS(status) == 255)
		as_err_set(err, AS_E_IO, 0, "ssh to '%s' failed (exit status "
		    "255; ssh's message is above)", peer);
	else if (WEXITSTATUS(status) != 0)
		as_err_set(err, AS_E_IO, 0, "'%s': the remote command exited "
		    "with status %d before the autosync protocol started",
		    peer, WEXITSTATUS(status));
}

struct remote *
remote_open(const struct endpoint *ep, const struct remote_opts *o,
    struct as_err *err)
{
	struct remote *r;
	struct tls_config tc;
	struct psk key;
	char peer[300];
	uint32_t offer = 0;
	int fd, idle;

	if (!endpoint_is_remote(ep)) {
		as_err_set(err, AS_E_INTERNAL, 0, "'%s' is not remote",
		    ep->spec);
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->o = *o;
	/*
	 * "/vol:/srv/img" names a volume: the request path keeps the
	 * engine's prefix without the URL's slash ("vol:/srv/img"), and
	 * the server's engine table takes it from there.
	 */
	r->path = xstrdup(ep->path[0] == '/' && proto_engine_prefix(
	    ep->path + 1) > 0 ? ep->path + 1 : ep->path);
	buf_init(&r->b);
	ratelimit_init(&r->rl, o->rate, 0);
	idle = o->idle_ms > 0 ? o->idle_ms : CONN_IDLE_DEFAULT_MS;

	switch (ep->kind) {
	case EP_SSH:
		if (spawn_ssh(r, ep, err) == -1)
			goto fail;
		break;
	case EP_TCP:
		if (o->key_file == NULL) {
			as_err_set(err, AS_E_USAGE, 0, "'%s': tcp:// needs "
			    "--key KEYFILE (the pre-shared key)", ep->spec);
			goto fail;
		}
		memset(&key, 0, sizeof(key));
		if (key_load(o->key_file, &key, err) == -1) {
			/* An unusable key cannot authenticate: AUTH. */
			if (err != NULL && err->code == AS_E_MALFORMED)
				err->code = AS_E_AUTH;
			goto fail;
		}
		r->c = tcp_connect(ep->host, ep->port, idle, err);
		if (r->c == NULL) {
			key_clear(&key);
			goto fail;
		}
		r->c->idle_ms = idle;
		if (auth_client(r->c, &key, NULL, NULL, err) == -1) {
			key_clear(&key);
			goto fail;
		}
		key_clear(&key);
		break;
	case EP_TLS:
		if (o->key_file == NULL || o->cert_file == NULL ||
		    o->ca_file == NULL) {
			as_err_set(err, AS_E_USAGE, 0, "'%s': tls:// needs "
			    "--cert FILE, --key FILE and --ca FILE", ep->spec);
			goto fail;
		}
		memset(&tc, 0, sizeof(tc));
		tc.ca_file = o->ca_file;
		tc.cert_file = o->cert_file;
		tc.key_file = o->key_file;
		if ((r->tls = tls_ctx_new(0, &tc, err)) == NULL)
			goto fail;
		fd = tcp_connect_fd(ep->host, ep->port, idle, peer,
		    sizeof(peer), err);
		if (fd == -1)
			goto fail;
		r->c = tls_client(r->tls, fd, peer, 0, NULL, err);
		if (r->c == NULL)
			goto fail;
		break;
	default:
		as_err_set(err, AS_E_INTERNAL, 0, "bad endpoint kind");
		goto fail;
	}
	r->c->idle_ms = idle;
	if (ep->kind != EP_SSH)
		xfer_tune_socket(r->c);
	if (o->zstd_level != 0)
		offer |= PROTO_F_ZSTD;
	offer |= PROTO_F_KEEPALIVE;
	if (proto_client_hello(r->c, offer, &r->features, err) == -1) {
		ssh_diagnose(r, err);
		goto fail;
	}
	log_debug("connected to '%s' (%s), features 0x%x", r->c->peer,
	    r->c->ops->name, r->features);
	return r;
fail:
	remote_close(r);
	return NULL;
}

void
remote_close(struct remote *r)
{
	int status;

	if (r == NULL)
		return;
	if (r->c != NULL) {
		(void)conn_shutdown_write(r->c, NULL);
		conn_free(r->c);
	}
	if (r->ssh_pid > 0) {
		status = conn_reap_child(r->ssh_pid, 5000);
		if (status != -1)
			log_debug("ssh exited with status %d",
			    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	tls_ctx_free(r->tls);
	buf_release(&r->b);
	free(r->path);
	free(r->req_id);
	free(r);
}

const char *
remote_peer(const struct remote *r)
{
	return r->c->peer;
}

void
remote_set_path(struct remote *r, const char *path)
{
	free(r->path);
	r->path = xstrdup(path);
}

void
remote_set_flags(struct remote *r, uint32_t flags)
{
	r->req_flags = flags;
}

void
remote_set_id(struct remote *r, const char *id)
{
	free(r->req_id);
	r->req_id = id != NULL ? xstrdup(id) : NULL;
}

static void
request_init(struct remote *r, struct proto_request *q, uint8_t op)
{
	memset(q, 0, sizeof(*q));
	q->op = op;
	q->flags = r->req_flags;
	snprintf(q->path, sizeof(q->path), "%s", r->path);
	if (r->req_id != NULL)
		snprintf(q->id, sizeof(q->id), "%s", r->req_id);
}

int
remote_hold(struct remote *r, uint64_t *guid, int *recovered,
    struct as_err *err)
{
	return remote_hold_partial(r, guid, recovered, NULL, NULL, err);
}

int
remote_hold_partial(struct remote *r, uint64_t *guid, int *recovered,
    uint64_t *pguid, uint64_t *poff, struct as_err *err)
{
	struct proto_request *q;
	struct proto_result res;
	int rc;

	*guid = 0;
	if (pguid != NULL)
		*pguid = *poff = 0;
	q = xmalloc(sizeof(*q));
	request_init(r, q, OP_HOLD);
	rc = proto_send_request(r->c, q, &r->b, err);
	free(q);
	if (rc == -1)
		return -1;
	if (read_ok_result(r, &res, err) == -1)
		return -1;
	if (recovered != NULL)
		*recovered = (res.flags & RES_F_RECOVERED) != 0;
	if (pguid != NULL && (res.flags & RES_F_PARTIAL) &&
	    res.base_guid != 0) {
		*pguid = res.base_guid;
		*poff = res.bytes;
	}
	if ((res.flags & RES_F_HELD) && res.guid != 0 &&
	    !(res.flags & RES_F_EMPTY)) {
		*guid = res.guid;
		return 1;
	}
	if ((res.flags & RES_F_EMPTY) && !(res.flags & RES_F_HELD))
		return 0;
	/* Never take silence for "holds nothing". */
	return as_err_set(err, AS_E_MALFORMED, 0, "'%s' did not say what "
	    "'%s' holds", r->c->peer, r->path);
}

static void
xfer_opts_init(struct remote *r, struct xfer_opts *xo, struct progress *pg,
    uint64_t total)
{
	memset(xo, 0, sizeof(*xo));
	xo->features = r->features;
	xo->zstd_level = r->o.zstd_level;
	xo->rl = r->o.rate > 0 || r->o.rate_live != NULL ? &r->rl : NULL;
	xo->rate_live = r->o.rate_live;
	progress_init(pg, r->o.progress, 2, total, ratelimit_now_ns());
	xo->prog = r->o.progress != PROGRESS_NONE ? pg : NULL;
}

int
remote_push(struct remote *r, const struct xfer_src *s, int force,
    struct remote_xfer *x, struct as_err *err)
{
	return remote_push_resume(r, s, force, 0, 0, x, err);
}

int
remote_push_resume(struct remote *r, const struct xfer_src *s, int force,
    uint64_t rguid, uint64_t roff, struct remote_xfer *x,
    struct as_err *err)
{
	struct proto_request *q;
	struct proto_result res;
	struct xfer_opts xo;
	struct xfer_sent sent;
	struct progress pg;
	int rc;

	memset(x, 0, sizeof(*x));
	memset(&sent, 0, sizeof(sent));
	buf_init(&sent.early);
	q = xmalloc(sizeof(*q));
	request_init(r, q, OP_RECEIVE);
	q->flags |= force ? REQ_F_FORCE : 0;
	if (rguid != 0) {
		q->flags |= REQ_F_RESUME;
		q->guid = rguid;
		snprintf(q->id, sizeof(q->id), "resume:%" PRIu64, roff);
	}
	rc = proto_send_request(r->c, q, &r->b, err);
	free(q);
	if (rc == -1)
		return -1;
	if (read_ok_result(r, &res, err) == -1)
		return -1;
	if (!(res.flags & RES_F_GO))
		return as_err_set(err, AS_E_MALFORMED, 0, "'%s' did not "
		    "accept the stream", r->c->peer);

	xfer_opts_init(r, &xo, &pg, s->target != NULL ?
	    xfer_estimate(s->target, s->base) : 0);
	rc = xfer_send(r->c, &xo, s, &sent, err);
	if (xo.prog != NULL)
		progress_finish(xo.prog, sent.raw_bytes, ratelimit_now_ns());
	x->st = sent.st;
	x->raw_bytes = sent.raw_bytes;
	x->wire_bytes = sent.wire_bytes;
	if (rc == -1) {
		/* A sender error explains a broken connection better. */
		if (sent.sender_rc == -1 && sent.serr.sys_errno != EPIPE)
			*err = sent.serr;
		goto out;
	}
	rc = -1;
	if (sent.stopped) {
		if (sent.early_type != PT_RESULT) {
			as_err_set(err, AS_E_MALFORMED, 0, "'%s' sent frame "
			    "type %u during the stream", r->c->peer,
			    sent.early_type);
			goto out;
		}
		if (proto_dec_result(&res, sent.early.data, sent.early.len,
		    err) == -1) {
			as_err_prefix(err, "'%s'", r->c->peer);
			goto out;
		}
	} else {
		if (read_result(r, &res, err) == -1)
			goto out;
	}
	if (res.code == 0) {
		if (s->target != NULL && res.guid != s->target->hdr.guid) {
			as_err_set(err, AS_E_MALFORMED, 0, "'%s' says it "
			    "received %016" PRIx64 ", not %016" PRIx64,
			    r->c->peer, res.guid, s->target->hdr.guid);
			goto out;
		}
		x->committed = 1;
		x->guid = res.guid;
		x->base_guid = res.base_guid;
		x->full = res.base_guid == 0;
		snprintf(x->name, sizeof(x->name), "%s", res.name);
		if (sent.sender_rc == -1) {
			*err = sent.serr;
			rc = 1;
		} else if (sent.after_rc == -1) {
			*err = sent.aerr;
			rc = 1;
		} else
			rc = 0;
		goto out;
	}
	/*
	 * A receiver that saw its stream end early failed because the
	 * sender did: say why the sender stopped.
	 */
	if (sent.sender_rc == -1 && sent.serr.sys_errno != EPIPE &&
	    res.code == AS_E_TRUNCATED) {
		*err = sent.serr;
		as_err_prefix(err, "send");
		goto out;
	}
	proto_result_to_err(&res, r->c->peer, err);
	as_err_prefix(err, "receive '%s'", r->path);
out:
	buf_release(&sent.early);
	return rc;
}

int
remote_snapshots(struct remote *r, struct proto_snap **v, size_t *n,
    struct as_err *err)
{
	struct proto_request *q;
	struct proto_result res;
	size_t cap = 0;
	int more = 1, rc;

	*v = NULL;
	*n = 0;
	q = xmalloc(sizeof(*q));
	request_init(r, q, OP_SNAPSHOTS);
	rc = proto_send_request(r->c, q, &r->b, err);
	free(q);
	if (rc == -1)
		return -1;
	while (more) {
		rc = proto_expect(r->c, PT_SNAPLIST, &r->b, &res, err);
		if (rc == 1) {
			if (res.code != 0)
				proto_result_to_err(&res, r->c->peer, err);
			else
				as_err_set(err, AS_E_MALFORMED, 0, "'%s' "
				    "ended a listing without its last part",
				    r->c->peer);
			rc = -1;
		}
		if (rc == -1 || proto_dec_snaplist(v, n, &cap, &more,
		    r->b.data, r->b.len, err) == -1) {
			free(*v);
			*v = NULL;
			*n = 0;
			return -1;
		}
	}
	return 0;
}

struct pull_fail {
	uint64_t	held;
	struct buf	*scratch;
};

static int
pull_fail(struct conn *c, void *arg, const struct as_err *rerr,
    struct as_err *err)
{
	struct pull_fail *pf = arg;
	struct proto_commit cm;

	memset(&cm, 0, sizeof(cm));
	cm.ok = 0;
	cm.held_guid = pf->held;
	cm.code = (uint8_t)rerr->code;
	snprintf(cm.msg, sizeof(cm.msg), "%s", rerr->msg);
	return proto_send_commit(c, &cm, pf->scratch, err);
}

int
remote_pull(struct remote *r, uint64_t held, const char *id,
    const char *dst, int rflags, struct remote_xfer *x, struct as_err *err)
{
	return remote_pull_with(r, held, id, dst, rflags, NULL, NULL, x, err);
}

int
remote_pull_with(struct remote *r, uint64_t held, const char *id,
    const char *dst, int rflags, xfer_recv_fn fn, void *fn_arg,
    struct remote_xfer *x, struct as_err *err)
{
	uint64_t g = 0, o = 0;

	return remote_pull_resume(r, held, id, dst, rflags, fn, fn_arg, &g,
	    &o, x, err);
}

int
remote_pull_resume(struct remote *r, uint64_t held, const char *id,
    const char *dst, int rflags, xfer_recv_fn fn, void *fn_arg,
    uint64_t *rguid, uint64_t *roff, struct remote_xfer *x,
    struct as_err *err)
{
	struct proto_request *q;
	struct proto_result res, fin;
	struct proto_commit cm;
	struct xfer_opts xo;
	struct xfer_rcvd *rc_out;
	struct progress pg;
	struct pull_fail pf;
	struct buf scratch = BUF_INIT;
	uint64_t in0;
	int rc = -1, n;

	memset(x, 0, sizeof(*x));
	in0 = r->c->bytes_in;
	rc_out = xcalloc(1, sizeof(*rc_out));
	q = xmalloc(sizeof(*q));
	request_init(r, q, OP_SEND);
	q->guid = held;
	q->flags |= (rflags & DIR_RECV_FORCE) ? REQ_F_FORCE : 0;
	q->zstd_level = (int8_t)r->o.zstd_level;
	if (*rguid != 0) {
		q->flags |= REQ_F_RESUME;
		snprintf(q->id, sizeof(q->id), "resume:%016" PRIx64 ":%" PRIu64
		    ":%s", *rguid, *roff, id);
	} else
		snprintf(q->id, sizeof(q->id), "%s", id);
	n = proto_send_request(r->c, q, &r->b, err);
	free(q);
	if (n == -1)
		goto out;
	if (read_ok_result(r, &res, err) == -1)
		goto out;
	if (!(res.flags & RES_F_GO) || res.guid == 0 ||
	    (!(res.flags & RES_F_FULL) && (held == 0 ||
	    res.base_guid != held))) {
		as_err_set(err, AS_E_MALFORMED, 0, "'%s' offered a stream "
		    "that does not fit what '%s' holds", r->c->peer, dst);
		goto out;
	}
	if (res.flags & RES_F_PARTIAL) {
		/* the receiver checks the rest (block size, its record) */
		if (*rguid == 0 || res.guid != *rguid || res.bytes > *roff ||
		    res.bytes == 0) {
			as_err_set(err, AS_E_MALFORMED, 0, "'%s' resumes a "
			    "transfer that '%s' did not ask for", r->c->peer,
			    dst);
			goto out;
		}
		*roff = res.bytes;
		x->resumed = res.bytes;
	} else
		*rguid = *roff = 0;
	x->guid = res.guid;
	x->base_guid = (res.flags & RES_F_FULL) ? 0 : res.base_guid;
	x->full = (res.flags & RES_F_FULL) != 0;
	snprintf(x->name, sizeof(x->name), "%s", res.name);

	xfer_opts_init(r, &xo, &pg, (res.flags & RES_F_PARTIAL) ? 0 :
	    res.bytes);
	xo.receiver = fn;
	xo.receiver_arg = fn_arg;
	pf.held = held;
	pf.scratch = &scratch;
	n = xfer_recv(r->c, &xo, dst, rflags, pull_fail, &pf, rc_out, err);
	if (xo.prog != NULL)
		progress_finish(xo.prog, rc_out->raw_bytes,
		    ratelimit_now_ns());
	x->st = rc_out->res.st;
	x->raw_bytes = rc_out->raw_bytes;
	x->wire_bytes = r->c->bytes_in - in0;
	if (n == -1) {
		/* The receiver's own error tells more than a broken link. */
		if (rc_out->recv_rc == -1 && rc_out->told)
			*err = rc_out->rerr;
		goto out;
	}
	if (!rc_out->told) {
		memset(&cm, 0, sizeof(cm));
		if (rc_out->recv_rc == 0) {
			cm.ok = 1;
			cm.held_guid = rc_out->res.target_guid;
		} else {
			cm.held_guid = held;
			cm.code = (uint8_t)rc_out->rerr.code;
			snprintf(cm.msg, sizeof(cm.msg), "%s",
			    rc_out->rerr.msg);
		}
		if (proto_send_commit(r->c, &cm, &scratch, err) == -1)
			goto out;
	}
	if (read_result(r, &fin, err) == -1)
		goto out;
	if (rc_out->recv_rc != 0) {
		if (rc_out->rerr.code == AS_E_TRUNCATED &&
		    rc_out->end.status == 1 && rc_out->end.code != 0) {
			as_err_set(err, (enum as_errcode)rc_out->end.code, 0,
			    "%s: send: %s", r->c->peer, rc_out->end.msg);
			goto out;
		}
		*err = rc_out->rerr;
		as_err_prefix(err, "receive '%s'", dst);
		goto out;
	}
	if (rc_out->res.target_guid != res.guid) {
		as_err_set(err, AS_E_MALFORMED, 0, "'%s' announced %016"
		    PRIx64 " and sent %016" PRIx64, r->c->peer, res.guid,
		    rc_out->res.target_guid);
		goto out;
	}
	/*
	 * The name is this side's too, as received: the server's word for
	 * it goes no further (a lying server would otherwise choose what
	 * the caller keeps when it prunes, or publishes).
	 */
	if (rc_out->res.name[0] != '\0')
		snprintf(x->name, sizeof(x->name), "%s", rc_out->res.name);
	x->committed = 1;
	if (fin.code != 0) {
		proto_result_to_err(&fin, r->c->peer, err);
		as_err_prefix(err, "received, but the source could not "
		    "record it (the next sync will)");
		goto out;
	}
	rc = 0;
out:
	free(rc_out);
	buf_release(&scratch);
	return rc;
}

/*
 * REVERSE (failback), the client's two calls; the server's side is
 * serve.c's do_reverse.  Both need rw on the path.
 */

/* Send REVERSE of guid with flags; id names the other side (messages). */
static int
send_reverse(struct remote *r, uint32_t flags, uint64_t guid, const char *id,
    struct as_err *err)
{
	struct proto_request *q;
	int rc;

	q = xmalloc(sizeof(*q));
	request_init(r, q, OP_REVERSE);
	q->flags |= flags;
	q->guid = guid;
	snprintf(q->id, sizeof(q->id), "%s", id);
	rc = proto_send_request(r->c, q, &r->b, err);
	free(q);
	return rc;
}

/*
 * The RESULT that ends a REVERSE names guid, the snapshot asked for, and
 * has none of the flags in bad (a GO where no more is to be asked).
 */
static int
check_reversed(const struct remote *r, const struct proto_result *res,
    uint64_t guid, uint32_t bad, struct as_err *err)
{
	if (res->guid != guid || (res->flags & bad))
		return as_err_set(err, AS_E_MALFORMED, 0, "'%s' reversed %016"
		    PRIx64 ", not %016" PRIx64, r->c->peer, res->guid, guid);
	return 0;
}

/* The server's path becomes a destination holding guid (see remote.h). */
int
remote_reverse_demote(struct remote *r, uint64_t guid, int force,
    const char *dst, struct remote_reverse *rv, struct catalog *g, struct as_err *err)
{
	struct proto_result res;
	struct buf blob = BUF_INIT, scratch = BUF_INIT;
	int rc = -1;

	memset(rv, 0, sizeof(*rv));
	if (send_reverse(r, force ? REQ_F_FORCE : 0, guid, dst, err) == -1)
		return -1;
	if (read_ok_result(r, &res, err) == -1)
		goto out;
	if (check_reversed(r, &res, guid, 0, err) == -1)
		goto out;
	rv->ndiff = res.bytes;
	snprintf(rv->first, sizeof(rv->first), "%s", res.msg);
	snprintf(rv->name, sizeof(rv->name), "%s", res.name);
	if (g == NULL) {
		rc = 0;		/* zfs: no catalog */
		goto out;
	}
	/* its catalog of guid, for the hashes */
	if (proto_recv_blob(r->c, &blob, PROTO_BLOB_MAX, &scratch, err) == -1 ||
	    catalog_decode(g, blob.data, blob.len, err) == -1) {
		as_err_prefix(err, "the catalog of '%s' from '%s'", res.name,
		    r->c->peer);
		goto out;
	}
	/* (a forced volume: what it holds now, taken from guid) */
	if (g->hdr.guid != guid && !(g->hdr.kind == AS_KIND_VOL &&
	    rv->ndiff > 0 && g->hdr.base_guid == guid)) {
		as_err_set(err, AS_E_MALFORMED, 0, "'%s' sent the catalog of "
		    "%016" PRIx64 ", not %016" PRIx64, r->c->peer, g->hdr.guid,
		    guid);
		goto out;
	}
	rc = 0;
out:
	buf_release(&blob);
	buf_release(&scratch);
	return rc;
}

/*
 * REVERSE with a blob for the engines without catalogs (see remote.h):
 * the server's path becomes a source and answers a blob, or becomes a
 * destination once it has taken one.
 */
int
remote_reverse_source_blob(struct remote *r, uint64_t guid, const char *id,
    const void *out, size_t outlen, struct buf *in, size_t inmax,
    struct proto_result *res, struct as_err *err)
{
	struct buf scratch = BUF_INIT;
	int rc;

	if (send_reverse(r, REQ_F_SOURCE, guid, id, err) == -1 ||
	    read_ok_result(r, res, err) == -1)
		return -1;
	if (out != NULL) {
		/* a tree: the server asks for the client's list first */
		if (!(res->flags & RES_F_GO) || res->guid != guid)
			return as_err_set(err, AS_E_MALFORMED, 0, "'%s' did "
			    "not ask for the nested subvolumes of %016" PRIx64,
			    r->c->peer, guid);
		if (proto_send_blob(r->c, out, outlen, &r->b, err) == -1 ||
		    read_ok_result(r, res, err) == -1)
			return -1;
	}
	if (check_reversed(r, res, guid, RES_F_GO, err) == -1)
		return -1;
	rc = proto_recv_blob(r->c, in, inmax, &scratch, err);
	buf_release(&scratch);
	return rc;
}

int
remote_reverse_dest_blob(struct remote *r, uint64_t guid, int force,
    const char *id, const void *out, size_t len, struct proto_result *go,
    struct proto_result *done, struct as_err *err)
{
	struct proto_result res;

	if (done == NULL)
		done = &res;
	if (send_reverse(r, force ? REQ_F_FORCE : 0, guid, id, err) == -1 ||
	    read_ok_result(r, go, err) == -1)
		return -1;
	if (!(go->flags & RES_F_GO) || go->guid != guid)
		return as_err_set(err, AS_E_MALFORMED, 0, "'%s' did not ask "
		    "for the new source's snapshot of %016" PRIx64, r->c->peer,
		    guid);
	if (proto_send_blob(r->c, out, len, &r->b, err) == -1 ||
	    read_ok_result(r, done, err) == -1)
		return -1;
	return check_reversed(r, done, guid, 0, err);
}

/* The server's path becomes a source (see remote.h). */
int
remote_reverse_promote(struct remote *r, uint64_t guid, const char *id,
    const struct catalog *g, struct as_err *err)
{
	struct proto_result res;
	struct buf blob = BUF_INIT;
	int rc;

	if (send_reverse(r, REQ_F_SOURCE, guid, id, err) == -1 ||
	    read_ok_result(r, &res, err) == -1)
		return -1;
	if (g == NULL && (res.flags & RES_F_GO))
		return as_err_set(err, AS_E_MALFORMED, 0, "'%s' asked for a "
		    "catalog that a zfs: reverse has not", r->c->peer);
	if (g == NULL)
		goto done;	/* zfs: that was the only RESULT */
	if (!(res.flags & RES_F_GO))
		return as_err_set(err, AS_E_MALFORMED, 0, "'%s' did not ask "
		    "for the catalog", r->c->peer);
	catalog_encode(g, &blob);
	rc = proto_send_blob(r->c, blob.data, blob.len, &r->b, err);
	buf_release(&blob);
	if (rc == -1)
		return -1;
	if (read_ok_result(r, &res, err) == -1)
		return -1;
done:
	if (res.guid != guid)
		return as_err_set(err, AS_E_MALFORMED, 0, "'%s' made %016"
		    PRIx64 " a source snapshot, not %016" PRIx64, r->c->peer,
		    res.guid, guid);
	return 0;
}
