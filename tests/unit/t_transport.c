/*
 * t_transport.c - the transport layer: rate limiter over fake time, frames
 * over a socketpair, the PSK handshake against every kind of bad client,
 * TLS with keygen's certificates, zstd round trips and bombs, progress.
 *
 * The peer of each two-sided test runs in a forked child that sends its
 * result back through a pipe.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <zstd.h>

#include "base/buf.h"
#include "base/err.h"
#include "transport/auth.h"
#include "transport/compress.h"
#include "transport/conn.h"
#include "transport/frame.h"
#include "transport/keys.h"
#include "transport/pace.h"
#include "transport/progress.h"
#include "transport/ratelimit.h"
#include "transport/tcp.h"
#include "transport/tls.h"

#define MB	1000000ull
#define NS	1000000000ull

/* ---- helpers ---------------------------------------------------------- */

struct peer_result {
	int		rc;
	struct as_err	err;
	uint8_t		session[32];
	char		info[256];
};

typedef void (*peer_fn)(int fd, void *arg, struct peer_result *res);

struct peer {
	pid_t	pid;
	int	pipe;
};

/* Run fn(fd) in a child; its result comes back through peer_wait. */
static struct peer
peer_start(int fd, int closefd, peer_fn fn, void *arg)
{
	struct peer p;
	struct peer_result res;
	int pp[2];

	assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
	p.pid = fork();
	assert_true(p.pid >= 0);
	if (p.pid == 0) {
		close(pp[0]);
		if (closefd >= 0)
			close(closefd);
		memset(&res, 0, sizeof(res));
		fn(fd, arg, &res);
		if (write(pp[1], &res, sizeof(res)) != sizeof(res))
			_exit(2);
		_exit(0);
	}
	close(pp[1]);
	close(fd);
	p.pipe = pp[0];
	return p;
}

static void
peer_wait(struct peer p, struct peer_result *res)
{
	int st;

	memset(res, 0, sizeof(*res));
	assert_int_equal(read(p.pipe, res, sizeof(*res)), sizeof(*res));
	close(p.pipe);
	assert_int_equal(waitpid(p.pid, &st, 0), p.pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void
spair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
}

static void
mkpsk(struct psk *k, const char *id, uint8_t fill)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->id, sizeof(k->id), "%s", id);
	memset(k->key, fill, KEY_LEN);
	k->len = KEY_LEN;
}

/* ---- rate limiter ----------------------------------------------------- */

/*
 * A sender that writes chunk bytes whenever the bucket allows, waking up
 * late by up to jitter ns (scheduler noise); returns bytes sent in
 * [t0, t1).
 */
static uint64_t
simulate(struct ratelimit *rl, uint64_t *now, uint64_t until,
    uint64_t chunk, uint64_t jitter, unsigned *seed)
{
	uint64_t sent = 0, w;

	while (*now < until) {
		w = ratelimit_wait_ns(rl, *now, chunk);
		if (w > 0) {
			*now += w;
			if (jitter > 0)
				*now += (uint64_t)rand_r(seed) % jitter;
			continue;
		}
		ratelimit_consume(rl, *now, chunk);
		sent += chunk;
		*now += 2000;	/* the write itself takes 2 us */
	}
	return sent;
}

static void
check_rate(uint64_t rate, uint64_t chunk, uint64_t jitter)
{
	struct ratelimit rl;
	uint64_t now = 5 * NS, sent;
	unsigned seed = 42;
	double got;

	ratelimit_init(&rl, rate, 0);
	sent = simulate(&rl, &now, now + 10 * NS, chunk, jitter, &seed);
	got = (double)sent / 10.0;
	assert_true(got >= 0.95 * (double)rate && got <= 1.05 * (double)rate);
}

static void
t_ratelimit_accuracy(void **state)
{
	static const uint64_t rates[] = { 10 * MB, 50 * MB, 200 * MB };
	static const uint64_t chunks[] = { 4096, 65536, 1 << 20 };
	size_t i, j;

	for (i = 0; i < 3; i++)
		for (j = 0; j < 3; j++) {
			check_rate(rates[i], chunks[j], 0);
			check_rate(rates[i], chunks[j], 1000000);
		}
}

static void
t_ratelimit_change(void **state)
{
	struct ratelimit rl;
	uint64_t now = 0, a, b, c;
	unsigned seed = 7;

	ratelimit_init(&rl, 50 * MB, 0);
	a = simulate(&rl, &now, 5 * NS, 65536, 500000, &seed);
	ratelimit_set(&rl, 10 * MB);
	b = simulate(&rl, &now, 10 * NS, 65536, 500000, &seed);
	ratelimit_set(&rl, 200 * MB);
	c = simulate(&rl, &now, 15 * NS, 65536, 500000, &seed);
	assert_true(a >= 0.95 * 250 * MB && a <= 1.05 * 250 * MB);
	/* The old bucket may spill at most its burst into the new period. */
	assert_true(b >= 0.95 * 50 * MB && b <= 1.05 * 50 * MB + 5 * MB);
	assert_true(c >= 0.95 * 1000 * MB && c <= 1.05 * 1000 * MB);
	/* Unlimited never waits. */
	ratelimit_set(&rl, 0);
	assert_int_equal(ratelimit_wait_ns(&rl, now, 1 << 30), 0);
}

static void
t_ratelimit_parse(void **state)
{
	struct as_err err;
	uint64_t v;

	assert_int_equal(ratelimit_parse("40M", &v, &err), 0);
	assert_int_equal(v, 40ull << 20);
	assert_int_equal(ratelimit_parse("500K", &v, &err), 0);
	assert_int_equal(v, 512000);
	assert_int_equal(ratelimit_parse("1G", &v, &err), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(ratelimit_parse("1.5m", &v, &err), 0);
	assert_int_equal(v, 1572864);
	assert_int_equal(ratelimit_parse("123", &v, &err), 0);
	assert_int_equal(v, 123);
	assert_int_equal(ratelimit_parse("10MB/s", &v, &err), 0);
	assert_int_equal(v, 10ull << 20);
	assert_int_equal(ratelimit_parse("none", &v, &err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(ratelimit_parse("-1M", &v, &err), -1);
	assert_int_equal(err.code, AS_E_USAGE);
	assert_int_equal(ratelimit_parse("12X", &v, &err), -1);
	assert_int_equal(ratelimit_parse("M", &v, &err), -1);
	assert_int_equal(ratelimit_parse("99999999T", &v, &err), -1);
}

/* ---- frames ----------------------------------------------------------- */

static void
t_frame_roundtrip(void **state)
{
	struct conn *a, *b;
	struct as_err err;
	struct buf p = BUF_INIT;
	uint8_t type, big[100000];
	int sv[2];

	spair(sv);
	a = conn_from_fds(sv[0], sv[0], 0, "a");
	b = conn_from_fds(sv[1], sv[1], 0, "b");
	memset(big, 'x', sizeof(big));
	assert_int_equal(frame_send(a, 7, "hello", 5, &err), 0);
	assert_int_equal(frame_send(a, 8, NULL, 0, &err), 0);
	assert_int_equal(frame_recv(b, &type, &p, 1024, &err), 0);
	assert_int_equal(type, 7);
	assert_int_equal(p.len, 5);
	assert_memory_equal(p.data, "hello", 5);
	assert_int_equal(frame_recv(b, &type, &p, 1024, &err), 0);
	assert_int_equal(type, 8);
	assert_int_equal(p.len, 0);
	/* Larger than a socket buffer: the writer needs the reader. */
	if (fork() == 0) {
		frame_send(a, 9, big, sizeof(big), NULL);
		_exit(0);
	}
	assert_int_equal(frame_recv(b, &type, &p, FRAME_MAX, &err), 0);
	assert_int_equal(p.len, sizeof(big));
	wait(NULL);
	assert_int_equal(a->bytes_out, 5 + 5 + 5);
	assert_int_equal(b->bytes_in, 5 + 5 + 5 + 5 + sizeof(big));
	conn_free(a);
	conn_free(b);
	buf_release(&p);
}

/*
 * Frames whose payload is spliced from a file or a pipe (frame_send_fd)
 * and spliced into a pipe on the other end (conn_read_to_fd), over a
 * socket conn and over a pair of pipes (the ssh case): the same bytes as
 * frame_send/frame_recv, frame boundaries kept when the local reader has
 * gone, and a source shorter than announced is the source's failure.
 */
static void
splice_one(int use_pipes)
{
	struct conn *a, *b;
	struct as_err err;
	struct buf p = BUF_INIT;
	char tmpl[] = "/tmp/t_transport.XXXXXX";
	uint8_t type, *data, *got;
	size_t len, n1 = 300000, n2 = 60000;
	int sv[2], ab[2], ba[2], in[2], out[2], fd, srcf, dstf, st;
	pid_t pid;
	size_t i;
	ssize_t r;

	data = malloc(n1);
	got = malloc(n1);
	assert_non_null(data);
	assert_non_null(got);
	for (i = 0; i < n1; i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	unlink(tmpl);
	assert_int_equal(write(fd, data, n1), (ssize_t)n1);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	if (use_pipes) {
		assert_int_equal(pipe(ab), 0);
		assert_int_equal(pipe(ba), 0);
		a = conn_from_fds(ba[0], ab[1], 0, "a");
		b = conn_from_fds(ab[0], ba[1], 0, "b");
	} else {
		spair(sv);
		a = conn_from_socket(sv[0], "a");
		b = conn_from_socket(sv[1], "b");
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int k, ok = 1;

		signal(SIGPIPE, SIG_IGN);
		/* 1: the file, in two frames */
		k = conn_fd_kind(fd);
		ok &= k == CONN_FD_FILE;
		ok &= conn_fd_ready(fd, k, 1 << 20) == n1;
		ok &= frame_send_fd(a, 5, fd, k, 100000, &srcf, NULL) == 0;
		ok &= conn_fd_ready(fd, k, 1 << 20) == n1 - 100000;
		ok &= frame_send_fd(a, 5, fd, k, n1 - 100000, &srcf,
		    NULL) == 0;
		ok &= conn_fd_ready(fd, k, 1 << 20) == 0;
		/* 2: a pipe */
		ok &= pipe(in) == 0;
		ok &= write(in[1], data, n2) == (ssize_t)n2;
		k = conn_fd_kind(in[0]);
		ok &= k == CONN_FD_PIPE;
		ok &= conn_fd_ready(in[0], k, 1 << 20) == n2;
		ok &= frame_send_fd(a, 6, in[0], k, n2, &srcf, NULL) == 0;
		/* 3: again, for a reader that has gone */
		ok &= write(in[1], data, n2) == (ssize_t)n2;
		ok &= frame_send_fd(a, 6, in[0], k, n2, &srcf, NULL) == 0;
		ok &= frame_send(a, 7, "end", 3, NULL) == 0;
		/* 4: a file shorter than announced */
		ok &= lseek(fd, (off_t)n1 - 10, SEEK_SET) == (off_t)n1 - 10;
		ok &= frame_send_fd(a, 5, fd, CONN_FD_FILE, 20, &srcf,
		    NULL) == -1 && srcf == 1;
		_exit(ok ? 0 : 1);
	}
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(pipe(out), 0);
	assert_true(fcntl(out[1], F_SETPIPE_SZ, 1 << 20) >= (int)n1);
	/* 1 */
	assert_int_equal(frame_recv_head(b, &type, &len, FRAME_MAX, &err), 0);
	assert_int_equal(type, 5);
	assert_int_equal(len, 100000);
	assert_int_equal(conn_read_to_fd(b, out[1], len, &dstf, &err), 0);
	assert_int_equal(dstf, 0);
	assert_int_equal(frame_recv_head(b, &type, &len, FRAME_MAX, &err), 0);
	assert_int_equal(len, n1 - 100000);
	assert_int_equal(conn_read_to_fd(b, out[1], len, &dstf, &err), 0);
	for (i = 0; i < n1; i += (size_t)r) {
		r = read(out[0], got + i, n1 - i);
		assert_true(r > 0);
	}
	assert_memory_equal(got, data, n1);
	/* 2 */
	assert_int_equal(frame_recv(b, &type, &p, FRAME_MAX, &err), 0);
	assert_int_equal(type, 6);
	assert_int_equal(p.len, n2);
	assert_memory_equal(p.data, data, n2);
	/* 3: our reader is gone; the frame is drained all the same */
	close(out[0]);
	assert_int_equal(frame_recv_head(b, &type, &len, FRAME_MAX, &err), 0);
	assert_int_equal(len, n2);
	assert_int_equal(conn_read_to_fd(b, out[1], len, &dstf, &err), 0);
	assert_int_equal(dstf, 1);
	assert_int_equal(frame_recv(b, &type, &p, FRAME_MAX, &err), 0);
	assert_int_equal(type, 7);
	assert_memory_equal(p.data, "end", 3);
	close(out[1]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(b->bytes_in, 5 * 5 + n1 + 2 * n2 + 3);
	signal(SIGPIPE, SIG_DFL);
	close(fd);
	conn_free(a);
	conn_free(b);
	buf_release(&p);
	free(data);
	free(got);
}

static void
t_frame_splice(void **state)
{
	splice_one(0);
	splice_one(1);
}

static void
t_frame_oversized(void **state)
{
	struct conn *b;
	struct as_err err;
	struct buf p = BUF_INIT;
	uint8_t hdr[5], type;
	int sv[2];

	spair(sv);
	b = conn_from_fds(sv[1], sv[1], 0, "peer");
	put_le32(hdr, 2000);
	hdr[4] = 1;
	assert_int_equal(write(sv[0], hdr, 5), 5);
	assert_int_equal(write(sv[0], "payload", 7), 7);
	assert_int_equal(frame_recv(b, &type, &p, 1024, &err), -1);
	assert_int_equal(err.code, AS_E_LIMIT);
	assert_int_equal(b->bytes_in, 5);	/* the payload was not read */
	/* A zero length is malformed, not a huge read. */
	put_le32(hdr, 0);
	conn_free(b);
	spair(sv);
	b = conn_from_fds(sv[1], sv[1], 0, "peer");
	assert_int_equal(write(sv[0], hdr, 5), 5);
	assert_int_equal(frame_recv(b, &type, &p, 1024, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	/* The sender refuses too. */
	assert_int_equal(frame_send(b, 1, hdr, FRAME_MAX + 1, &err), -1);
	assert_int_equal(err.code, AS_E_LIMIT);
	conn_free(b);
	close(sv[0]);
	buf_release(&p);
}

static void
t_frame_truncated(void **state)
{
	struct conn *b;
	struct as_err err;
	struct buf p = BUF_INIT;
	uint8_t hdr[5], type;
	size_t cut;
	int sv[2];

	put_le32(hdr, 101);
	hdr[4] = 3;
	for (cut = 0; cut < 5 + 10; cut += cut < 6 ? 1 : 4) {
		spair(sv);
		b = conn_from_fds(sv[1], sv[1], 0, "peer");
		assert_int_equal(write(sv[0], hdr, cut < 5 ? cut : 5),
		    cut < 5 ? (ssize_t)cut : 5);
		if (cut > 5)
			assert_int_equal(write(sv[0], "0123456789", cut - 5),
			    (ssize_t)(cut - 5));
		close(sv[0]);
		assert_int_equal(frame_recv(b, &type, &p, 1024, &err), -1);
		assert_int_equal(err.code, AS_E_TRUNCATED);
		assert_non_null(strstr(err.msg, "peer closed"));
		conn_free(b);
	}
	buf_release(&p);
}

static void
t_frame_timeout(void **state)
{
	struct conn *b;
	struct as_err err;
	struct buf p = BUF_INIT;
	uint8_t type, junk[65536];
	uint64_t t0;
	int sv[2];

	spair(sv);
	b = conn_from_fds(sv[1], sv[1], 0, "quiet peer");
	b->idle_ms = 200;
	t0 = conn_now_ms();
	assert_int_equal(frame_recv(b, &type, &p, 1024, &err), -1);
	assert_int_equal(err.code, AS_E_TIMEOUT);
	assert_true(conn_now_ms() - t0 >= 190 && conn_now_ms() - t0 < 1000);
	assert_non_null(strstr(err.msg, "quiet peer"));
	/* A writer whose peer never reads times out too. */
	memset(junk, 0, sizeof(junk));
	t0 = conn_now_ms();
	for (;;) {
		if (conn_write_full(b, junk, sizeof(junk), &err) == -1)
			break;
		assert_true(conn_now_ms() - t0 < 5000);
	}
	assert_int_equal(err.code, AS_E_TIMEOUT);
	conn_free(b);
	close(sv[0]);
	buf_release(&p);
}

static void
t_conn_child_reaped(void **state)
{
	struct conn *c;
	int sv[2], st;
	pid_t pid;
	uint64_t t0;

	/* A child that ignores EOF and SIGTERM is killed, not waited for. */
	spair(sv);
	pid = fork();
	if (pid == 0) {
		signal(SIGTERM, SIG_IGN);
		for (;;)
			pause();
	}
	c = conn_from_fds(sv[0], sv[0], pid, "ssh test");
	assert_string_equal(c->ops->name, "ssh");
	t0 = conn_now_ms();
	conn_free(c);
	assert_true(conn_now_ms() - t0 < 8000);
	assert_int_equal(waitpid(pid, &st, WNOHANG), -1);	/* reaped */
	close(sv[1]);
}

/* ---- PSK handshake ---------------------------------------------------- */

struct srv_arg {
	const struct psk	*keys;
	size_t			 nkeys;
	struct auth_opts	 opts;
	size_t			 cut;	/* server writes at most this */
};

/* A conn that stops writing (and half-closes) after `limit` bytes. */
struct cutconn {
	int	fd;
	size_t	limit;
	size_t	done;
};

static ssize_t
cut_read(struct conn *c, void *buf, size_t n)
{
	struct cutconn *k = c->impl;

	return read(k->fd, buf, n);
}

static ssize_t
cut_write(struct conn *c, const void *buf, size_t n)
{
	struct cutconn *k = c->impl;
	ssize_t r;

	if (k->done >= k->limit) {
		shutdown(k->fd, SHUT_WR);
		return (ssize_t)n;	/* pretend: the bytes are lost */
	}
	if (n > k->limit - k->done)
		n = k->limit - k->done;
	r = send(k->fd, buf, n, MSG_NOSIGNAL);
	if (r > 0)
		k->done += (size_t)r;
	if (k->done >= k->limit)
		shutdown(k->fd, SHUT_WR);
	return r;
}

static int
cut_fd(const struct conn *c)
{
	const struct cutconn *k = c->impl;

	return k->fd;
}

static size_t
cut_pending(const struct conn *c)
{
	return 0;
}

static int
cut_shutdown(struct conn *c)
{
	struct cutconn *k = c->impl;

	return shutdown(k->fd, SHUT_WR);
}

static void
cut_free(struct conn *c)
{
	struct cutconn *k = c->impl;

	close(k->fd);
	free(k);
}

static const struct conn_ops cut_ops = {
	"cut", cut_read, cut_write, cut_fd, cut_fd, cut_pending,
	cut_shutdown, cut_free,
};

static struct conn *
cut_conn(int fd, size_t limit)
{
	struct cutconn *k = calloc(1, sizeof(*k));

	k->fd = fd;
	k->limit = limit;
	return conn_new(&cut_ops, k, "cut");
}

static void
srv_fn(int fd, void *arg, struct peer_result *res)
{
	struct srv_arg *a = arg;
	struct auth_result ar;
	struct conn *c;
	size_t m = 99;

	c = a->cut > 0 ? cut_conn(fd, a->cut) :
	    conn_from_fds(fd, fd, 0, "client");
	res->rc = auth_server(c, a->keys, a->nkeys, &m, &a->opts, &ar,
	    &res->err);
	memcpy(res->session, ar.session, 32);
	snprintf(res->info, sizeof(res->info), "%zu %s %.*s %u %s", m,
	    ar.key_id, (int)ar.peer_paramslen, (const char *)ar.peer_params,
	    ar.flags, ar.reason != NULL ? ar.reason : "-");
	if (res->rc == 0) {
		/* After the handshake: plain frames. */
		frame_send(c, 42, "data", 4, NULL);
	}
	conn_free(c);
}

static void
assert_auth_failed(const struct as_err *err)
{
	assert_int_equal(err->code, AS_E_AUTH);
	assert_string_equal(err->msg, AUTH_FAILED);
}

/*
 * One handshake: the real client with ckey against a server with skeys.
 * Returns the client's rc; *sr gets the server's result.
 */
static int
handshake(const struct psk *ckey, const struct auth_opts *copts,
    struct srv_arg *sa, size_t ccut, struct peer_result *sr,
    struct auth_result *cres, struct as_err *cerr)
{
	struct conn *c;
	struct peer p;
	int sv[2], rc;

	spair(sv);
	p = peer_start(sv[1], sv[0], srv_fn, sa);
	c = ccut > 0 ? cut_conn(sv[0], ccut) :
	    conn_from_fds(sv[0], sv[0], 0, "server");
	c->idle_ms = 4321;
	rc = auth_client(c, ckey, copts, cres, cerr);
	assert_int_equal(c->idle_ms, 4321);	/* restored */
	if (rc == 0) {
		struct buf b = BUF_INIT;
		uint8_t type;

		assert_int_equal(frame_recv(c, &type, &b, 100, cerr), 0);
		assert_int_equal(type, 42);
		buf_release(&b);
	}
	conn_free(c);
	peer_wait(p, sr);
	return rc;
}

static void
t_auth_success(void **state)
{
	struct psk keys[3], ck;
	struct srv_arg sa;
	struct auth_opts co;
	struct auth_result cr;
	struct peer_result sr;
	struct as_err err;

	mkpsk(&keys[0], "alice", 1);
	mkpsk(&keys[1], "bob", 2);
	mkpsk(&keys[2], "carol", 3);
	memset(&sa, 0, sizeof(sa));
	sa.keys = keys;
	sa.nkeys = 3;
	sa.opts.params = "srv-caps";
	sa.opts.paramslen = 8;
	ck = keys[1];
	memset(&co, 0, sizeof(co));
	co.params = "zstd,resume";
	co.paramslen = 11;
	assert_int_equal(handshake(&ck, &co, &sa, 0, &sr, &cr, &err), 0);
	assert_int_equal(sr.rc, 0);
	assert_string_equal(sr.info, "1 bob zstd,resume 0 -");
	assert_int_equal(cr.peer_paramslen, 8);
	assert_memory_equal(cr.peer_params, "srv-caps", 8);
	assert_memory_equal(cr.session, sr.session, 32);
	/* A second run has fresh nonces: another session key. */
	{
		struct auth_result cr2;

		assert_int_equal(handshake(&ck, &co, &sa, 0, &sr, &cr2,
		    &err), 0);
		assert_memory_not_equal(cr.session, cr2.session, 32);
	}
}

static void
expect_both_fail(const struct psk *ck, const struct auth_opts *co,
    struct srv_arg *sa, size_t ccut)
{
	struct auth_result cr;
	struct peer_result sr;
	struct as_err err;

	memset(&err, 0, sizeof(err));
	assert_int_equal(handshake(ck, co, sa, ccut, &sr, &cr, &err), -1);
	assert_auth_failed(&err);
	assert_int_equal(sr.rc, -1);
	assert_auth_failed(&sr.err);
}

static void
t_auth_bad_keys(void **state)
{
	struct psk sk, ck;
	struct srv_arg sa;
	size_t i;

	mkpsk(&sk, "alice", 0x5a);
	memset(&sa, 0, sizeof(sa));
	sa.keys = &sk;
	sa.nkeys = 1;
	/* wrong key */
	mkpsk(&ck, "alice", 0x33);
	expect_both_fail(&ck, NULL, &sa, 0);
	/* unknown id: the same answer */
	mkpsk(&ck, "mallory", 0x5a);
	expect_both_fail(&ck, NULL, &sa, 0);
	/* empty key */
	mkpsk(&ck, "alice", 0x5a);
	ck.len = 0;
	expect_both_fail(&ck, NULL, &sa, 0);
	/* one byte changed, at several places */
	for (i = 0; i < KEY_LEN; i += 7) {
		mkpsk(&ck, "alice", 0x5a);
		ck.key[i] ^= 0x01;
		expect_both_fail(&ck, NULL, &sa, 0);
	}
	/* the server has an empty key under that id */
	mkpsk(&ck, "alice", 0x5a);
	sk.len = 0;
	expect_both_fail(&ck, NULL, &sa, 0);
}

static void
t_auth_truncated(void **state)
{
	struct psk sk;
	struct srv_arg sa;
	size_t cut, total;

	mkpsk(&sk, "alice", 0x5a);
	memset(&sa, 0, sizeof(sa));
	sa.keys = &sk;
	sa.nkeys = 1;
	/* client -> server: HELLO (5 + 10+2+4+1+5+32+2) and PROOF (5+32) */
	total = 5 + 56 + 5 + 32;
	for (cut = 1; cut < total; cut++)
		expect_both_fail(&sk, NULL, &sa, cut);
	/* server -> client: CHALLENGE (5+2+4+32+2+32) and RESULT (5+1) */
	total = 5 + 72 + 5 + 1;
	for (cut = 1; cut < total; cut++) {
		struct auth_result cr;
		struct peer_result sr;
		struct as_err err;

		sa.cut = cut;
		memset(&err, 0, sizeof(err));
		assert_int_equal(handshake(&sk, NULL, &sa, 0, &sr, &cr, &err),
		    -1);
		assert_auth_failed(&err);
	}
}

static void
raw_server(const struct psk *sk, const void *bytes, size_t n,
    struct peer_result *sr)
{
	struct srv_arg sa;
	struct peer p;
	int sv[2];

	memset(&sa, 0, sizeof(sa));
	sa.keys = sk;
	sa.nkeys = 1;
	sa.opts.timeout_ms = 500;
	spair(sv);
	p = peer_start(sv[1], -1, srv_fn, &sa);
	if (n > 0)
		assert_int_equal(write(sv[0], bytes, n), (ssize_t)n);
	shutdown(sv[0], SHUT_WR);
	peer_wait(p, sr);
	close(sv[0]);
}

static void
t_auth_garbage(void **state)
{
	struct psk sk;
	struct peer_result sr;
	uint8_t junk[300], hdr[5];
	size_t i;
	uint64_t t0;

	mkpsk(&sk, "alice", 0x5a);
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	raw_server(&sk, junk, sizeof(junk), &sr);
	assert_int_equal(sr.rc, -1);
	assert_auth_failed(&sr.err);
	/* "GET / HTTP/1.0": a huge length, refused before reading it */
	raw_server(&sk, "GET / HTTP/1.0\r\n\r\n", 18, &sr);
	assert_auth_failed(&sr.err);
	/* a well-sized frame of the wrong type */
	put_le32(hdr, 1);
	hdr[4] = AUTH_T_PROOF;
	raw_server(&sk, hdr, 5, &sr);
	assert_auth_failed(&sr.err);
	/* nothing at all */
	raw_server(&sk, NULL, 0, &sr);
	assert_auth_failed(&sr.err);
	/* silence: the handshake deadline (500 ms here) ends it */
	{
		struct srv_arg sa;
		struct peer p;
		int sv[2];

		memset(&sa, 0, sizeof(sa));
		sa.keys = &sk;
		sa.nkeys = 1;
		sa.opts.timeout_ms = 500;
		spair(sv);
		t0 = conn_now_ms();
		p = peer_start(sv[1], -1, srv_fn, &sa);
		/* slowloris: one byte, then nothing */
		assert_int_equal(write(sv[0], "A", 1), 1);
		peer_wait(p, &sr);
		assert_true(conn_now_ms() - t0 < 3000);
		assert_auth_failed(&sr.err);
		assert_non_null(strstr(sr.info, "timeout"));
		close(sv[0]);
	}
}

/* The attacker knows the id, not the key: it bounces proofs around. */
static void
t_auth_reflected(void **state)
{
	struct psk sk;
	struct srv_arg sa;
	struct peer_result sr;
	struct peer p;
	uint8_t hello[64], buf[256], proof[5 + 32];
	size_t n = 0;
	int sv[2];
	ssize_t r;

	mkpsk(&sk, "alice", 0x5a);
	memset(&sa, 0, sizeof(sa));
	sa.keys = &sk;
	sa.nkeys = 1;
	spair(sv);
	p = peer_start(sv[1], -1, srv_fn, &sa);
	put_le32(hello, 5 + 10 + 2 + 4 + 1 + 5 + 32 + 2 - 4);
	hello[4] = AUTH_T_HELLO;
	n = 5;
	memcpy(hello + n, AUTH_MAGIC, 10);
	n += 10;
	put_le16(hello + n, AUTH_VERSION);
	n += 2;
	put_le32(hello + n, 0);
	n += 4;
	hello[n++] = 5;
	memcpy(hello + n, "alice", 5);
	n += 5;
	memset(hello + n, 0xee, 32);
	n += 32;
	put_le16(hello + n, 0);
	n += 2;
	put_le32(hello, (uint32_t)(n - 4));
	assert_int_equal(write(sv[0], hello, n), (ssize_t)n);
	/* read the challenge: 5 + 72 */
	n = 0;
	while (n < 77 && (r = read(sv[0], buf + n, 77 - n)) > 0)
		n += (size_t)r;
	assert_int_equal(n, 77);
	assert_int_equal(buf[4], AUTH_T_CHALLENGE);
	/* send the server's own proof back as ours */
	put_le32(proof, 33);
	proof[4] = AUTH_T_PROOF;
	memcpy(proof + 5, buf + 77 - 32, 32);
	assert_int_equal(write(sv[0], proof, sizeof(proof)), sizeof(proof));
	peer_wait(p, &sr);
	assert_int_equal(sr.rc, -1);
	assert_auth_failed(&sr.err);
	close(sv[0]);

}

static void
cli_fn(int fd, void *arg, struct peer_result *res)
{
	const struct psk *k = arg;
	struct conn *c = conn_from_fds(fd, fd, 0, "other client");

	res->rc = auth_client(c, k, NULL, NULL, &res->err);
	conn_free(c);
}

static void
t_auth_mirror(void **state)
{
	struct psk k;
	struct conn *c;
	struct peer p;
	struct peer_result r;
	struct as_err err;
	int sv[2];

	mkpsk(&k, "alice", 0x5a);
	spair(sv);
	p = peer_start(sv[1], sv[0], cli_fn, &k);
	c = conn_from_fds(sv[0], sv[0], 0, "mirror");
	assert_int_equal(auth_client(c, &k, NULL, NULL, &err), -1);
	assert_auth_failed(&err);
	conn_free(c);
	peer_wait(p, &r);
	assert_int_equal(r.rc, -1);
	assert_auth_failed(&r.err);
}

static void
t_auth_downgrade(void **state)
{
	struct psk k;
	struct srv_arg sa;
	struct auth_opts co;
	struct auth_result cr;
	struct peer_result sr;
	struct as_err err;

	mkpsk(&k, "alice", 0x5a);
	memset(&sa, 0, sizeof(sa));
	sa.keys = &k;
	sa.nkeys = 1;
	/* server requires a capability the client does not ask for */
	sa.opts.flags = AUTH_F_AEAD;
	sa.opts.required = AUTH_F_AEAD;
	expect_both_fail(&k, NULL, &sa, 0);
	/* client requires what the server does not offer */
	memset(&sa.opts, 0, sizeof(sa.opts));
	memset(&co, 0, sizeof(co));
	co.flags = co.required = AUTH_F_AEAD;
	assert_int_equal(handshake(&k, &co, &sa, 0, &sr, &cr, &err), -1);
	assert_auth_failed(&err);
	/* both offer it: negotiated */
	sa.opts.flags = AUTH_F_AEAD;
	assert_int_equal(handshake(&k, &co, &sa, 0, &sr, &cr, &err), 0);
	assert_int_equal(cr.flags, AUTH_F_AEAD);
	/* oversized params are refused locally */
	co.flags = co.required = 0;
	co.params = "x";
	co.paramslen = AUTH_PARAMS_MAX + 1;
	assert_int_equal(handshake(&k, &co, &sa, 0, &sr, &cr, &err), -1);
	assert_auth_failed(&err);
}

static void
t_auth_busy(void **state)
{
	struct psk k;
	struct conn *c, *s;
	struct as_err err;
	int sv[2];

	mkpsk(&k, "alice", 0x5a);
	spair(sv);
	s = conn_from_fds(sv[1], sv[1], 0, "c");
	auth_server_busy(s);
	c = conn_from_fds(sv[0], sv[0], 0, "srv");
	assert_int_equal(auth_client(c, &k, NULL, NULL, &err), -1);
	assert_int_equal(err.code, AS_E_IO);
	assert_non_null(strstr(err.msg, "busy"));
	conn_free(s);
	conn_free(c);
}

/* ---- keys ------------------------------------------------------------- */

static char	kdir[64];

static void
wfile(const char *path, const char *text, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	fchmod(fd, mode);
	close(fd);
}

static void
t_keys(void **state)
{
	struct psk k, k2;
	struct as_err err;
	char path[128], line[200];

	snprintf(path, sizeof(path), "%s/a.key", kdir);
	snprintf(line, sizeof(line), "# comment\n%s host-1.example "
	    "000102030405060708090a0b0c0d0e0f"
	    "101112131415161718191A1B1C1D1E1F\n", KEY_MAGIC);
	wfile(path, line, 0600);
	assert_int_equal(key_load(path, &k, &err), 0);
	assert_string_equal(k.id, "host-1.example");
	assert_int_equal(k.len, KEY_LEN);
	assert_int_equal(k.key[0x1f], 0x1f);
	/* readable by others */
	chmod(path, 0644);
	assert_int_equal(key_load(path, &k, &err), -1);
	assert_int_equal(err.code, AS_E_AUTH);
	assert_non_null(strstr(err.msg, "chmod 600"));
	chmod(path, 0640);
	assert_int_equal(key_load(path, &k, &err), -1);
	assert_int_equal(err.code, AS_E_AUTH);
	/* malformed: short key, empty key, empty file, two keys, bad id */
	wfile(path, KEY_MAGIC " a 0011\n", 0600);
	assert_int_equal(key_load(path, &k, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	wfile(path, KEY_MAGIC " a \n", 0600);
	assert_int_equal(key_load(path, &k, &err), -1);
	wfile(path, "", 0600);
	assert_int_equal(key_load(path, &k, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	snprintf(line, sizeof(line), "%s a %064d\n%s b %064d\n", KEY_MAGIC, 0,
	    KEY_MAGIC, 0);
	wfile(path, line, 0600);
	assert_int_equal(key_load(path, &k, &err), -1);
	snprintf(line, sizeof(line), "%s a/b %064d\n", KEY_MAGIC, 0);
	wfile(path, line, 0600);
	assert_int_equal(key_load(path, &k, &err), -1);
	snprintf(path, sizeof(path), "%s/missing.key", kdir);
	assert_int_equal(key_load(path, &k, &err), -1);
	assert_int_equal(err.code, AS_E_NOTFOUND);
	/* generate, write, load back */
	assert_int_equal(key_generate(&k, "gen", &err), 0);
	snprintf(path, sizeof(path), "%s/gen.key", kdir);
	unlink(path);
	assert_int_equal(key_write(path, &k, &err), 0);
	assert_int_equal(key_write(path, &k, &err), -1);	/* exists */
	assert_int_equal(key_load(path, &k2, &err), 0);
	assert_memory_equal(k.key, k2.key, KEY_LEN);
	assert_int_equal(key_generate(&k, "-bad id", &err), -1);
}

/* ---- TLS -------------------------------------------------------------- */

struct tls_arg {
	const char	*dir;	/* server's keygen dir */
	const char	*ca;	/* CA file the server trusts */
};

static void
tls_srv_fn(int fd, void *arg, struct peer_result *res)
{
	struct tls_arg *a = arg;
	struct tls_config cfg;
	struct tls_ctx *ctx;
	struct tls_peer who;
	struct conn *c;
	struct buf b = BUF_INIT;
	char cert[128], key[128];
	uint8_t type;

	snprintf(cert, sizeof(cert), "%s/server.crt", a->dir);
	snprintf(key, sizeof(key), "%s/server.key", a->dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.ca_file = a->ca;
	cfg.cert_file = cert;
	cfg.key_file = key;
	if ((ctx = tls_ctx_new(1, &cfg, &res->err)) == NULL) {
		res->rc = -2;
		return;
	}
	c = tls_server(ctx, fd, "client", 3000, &who, &res->err);
	if (c == NULL) {
		res->rc = -1;
		tls_ctx_free(ctx);
		return;
	}
	snprintf(res->info, sizeof(res->info), "%s %s", who.cn,
	    who.fingerprint);
	/* echo one frame back, doubled */
	if (frame_recv(c, &type, &b, FRAME_MAX, &res->err) == -1 ||
	    frame_send(c, type, b.data, b.len, &res->err) == -1 ||
	    frame_send(c, type, b.data, b.len, &res->err) == -1)
		res->rc = -3;
	conn_shutdown_write(c, NULL);
	conn_free(c);
	tls_ctx_free(ctx);
	buf_release(&b);
}

static struct conn *
tls_try(const char *sdir, const char *sca, const char *cdir,
    const char *cca, struct peer_result *sr, struct as_err *err)
{
	struct tls_arg a = { sdir, sca };
	struct tls_config cfg;
	struct tls_ctx *ctx;
	struct tls_peer who;
	struct conn *c;
	struct peer p;
	char cert[128], key[128];
	int sv[2];

	spair(sv);
	p = peer_start(sv[1], sv[0], tls_srv_fn, &a);
	snprintf(cert, sizeof(cert), "%s/client.crt", cdir);
	snprintf(key, sizeof(key), "%s/client.key", cdir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.ca_file = cca;
	cfg.cert_file = cert;
	cfg.key_file = key;
	ctx = tls_ctx_new(0, &cfg, err);
	assert_non_null(ctx);
	c = tls_client(ctx, sv[0], "server", 3000, &who, err);
	if (c != NULL) {
		struct buf b = BUF_INIT;
		uint8_t type, big[300000];
		size_t i;

		assert_string_equal(c->ops->name, "tls");
		assert_string_equal(who.cn, "autosync-server");
		for (i = 0; i < sizeof(big); i++)
			big[i] = (uint8_t)(i * 7);
		assert_int_equal(frame_send(c, 5, big, sizeof(big), err), 0);
		for (i = 0; i < 2; i++) {
			assert_int_equal(frame_recv(c, &type, &b, FRAME_MAX,
			    err), 0);
			assert_int_equal(b.len, sizeof(big));
			assert_memory_equal(b.data, big, sizeof(big));
		}
		/* then a clean EOF */
		assert_int_equal(conn_read_some(c, big, 10, err), 0);
		buf_release(&b);
	}
	peer_wait(p, sr);
	tls_ctx_free(ctx);
	return c;
}

static void
t_tls(void **state)
{
	char a[128], b[128], aca[160], bca[160], fp[65], exp[300];
	struct peer_result sr;
	struct as_err err;
	struct conn *c;

	snprintf(a, sizeof(a), "%s/tlsA", kdir);
	snprintf(b, sizeof(b), "%s/tlsB", kdir);
	assert_int_equal(keygen_dir(a, "backup-client", NULL, &err), 0);
	assert_int_equal(keygen_dir(b, NULL, NULL, &err), 0);
	/* never overwrites */
	assert_int_equal(keygen_dir(a, NULL, NULL, &err), -1);
	snprintf(aca, sizeof(aca), "%s/ca.crt", a);
	snprintf(bca, sizeof(bca), "%s/ca.crt", b);
	{
		struct stat st;
		char p[200];

		snprintf(p, sizeof(p), "%s/client.key", a);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		snprintf(p, sizeof(p), "%s/psk.key", a);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	/* success: the server learns who the client is */
	memset(&err, 0, sizeof(err));
	c = tls_try(a, aca, a, aca, &sr, &err);
	assert_non_null(c);
	assert_int_equal(sr.rc, 0);
	snprintf(exp, sizeof(exp), "%s/client.crt", a);
	assert_int_equal(tls_cert_fingerprint(exp, fp, &err), 0);
	snprintf(exp, sizeof(exp), "backup-client %s", fp);
	assert_string_equal(sr.info, exp);
	conn_free(c);
	/* the client trusts another CA: AUTH on both sides */
	c = tls_try(a, aca, a, bca, &sr, &err);
	assert_null(c);
	assert_int_equal(err.code, AS_E_AUTH);
	assert_int_equal(sr.rc, -1);
	assert_int_equal(sr.err.code, AS_E_AUTH);
	/* the client's certificate is from another CA */
	c = tls_try(a, aca, b, aca, &sr, &err);
	assert_null(c);
	assert_int_equal(err.code, AS_E_AUTH);
	assert_int_equal(sr.err.code, AS_E_AUTH);
	/* the server's certificate is from another CA */
	c = tls_try(b, aca, a, aca, &sr, &err);
	assert_null(c);
	assert_int_equal(err.code, AS_E_AUTH);
	/* a group-readable key is refused */
	{
		struct tls_config cfg;
		char cert[160], key[160];

		snprintf(cert, sizeof(cert), "%s/client.crt", b);
		snprintf(key, sizeof(key), "%s/client.key", b);
		chmod(key, 0640);
		memset(&cfg, 0, sizeof(cfg));
		cfg.ca_file = bca;
		cfg.cert_file = cert;
		cfg.key_file = key;
		assert_null(tls_ctx_new(0, &cfg, &err));
		assert_int_equal(err.code, AS_E_AUTH);
		assert_non_null(strstr(err.msg, "chmod 600"));
	}
}

/*
 * A payload from a regular file over TLS is encrypted from a mapping of
 * the file (conn.c map_from_fd).  The server here reads raw bytes after
 * a pause, so that the client blocks with most of the mapping unread;
 * it answers how many bytes it got and their sum.
 */
struct tlsfile_arg {
	struct tls_arg	 t;
	int		 pause_ms;
};

static void
tls_drain_fn(int fd, void *arg, struct peer_result *res)
{
	struct tlsfile_arg *a = arg;
	struct tls_config cfg;
	struct tls_ctx *ctx;
	struct conn *c;
	struct timespec ts;
	uint8_t b[65536];
	uint64_t total = 0, sum = 0;
	ssize_t n, i;
	char cert[128], key[128];

	snprintf(cert, sizeof(cert), "%s/server.crt", a->t.dir);
	snprintf(key, sizeof(key), "%s/server.key", a->t.dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.ca_file = a->t.ca;
	cfg.cert_file = cert;
	cfg.key_file = key;
	if ((ctx = tls_ctx_new(1, &cfg, &res->err)) == NULL) {
		res->rc = -2;
		return;
	}
	if ((c = tls_server(ctx, fd, "client", 3000, NULL,
	    &res->err)) == NULL) {
		res->rc = -1;
		tls_ctx_free(ctx);
		return;
	}
	ts.tv_sec = a->pause_ms / 1000;
	ts.tv_nsec = (a->pause_ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
	c->idle_ms = 5000;
	while ((n = conn_read_some(c, b, sizeof(b), &res->err)) > 0) {
		for (i = 0; i < n; i++)
			sum += b[i];
		total += (uint64_t)n;
	}
	res->rc = n == 0 ? 0 : -3;
	snprintf(res->info, sizeof(res->info), "%llu %llu",
	    (unsigned long long)total, (unsigned long long)sum);
	conn_free(c);
	tls_ctx_free(ctx);
}

struct shrinker {
	int	fd;
	int	after_ms;
};

static void *
shrink_main(void *arg)
{
	struct shrinker *s = arg;
	struct timespec ts = { 0, 0 };

	ts.tv_nsec = s->after_ms * 1000000L;
	nanosleep(&ts, NULL);
	if (ftruncate(s->fd, 0) != 0)
		return (void *)1;
	return NULL;
}

static void
t_tls_file(void **state)
{
	char a[128], aca[160], cert[160], key[160], path[160], want[64];
	struct tlsfile_arg ta;
	struct peer_result sr;
	struct tls_config cfg;
	struct tls_ctx *ctx;
	struct as_err err;
	struct shrinker sh;
	struct conn *c;
	struct peer p;
	pthread_t tid;
	uint8_t *data;
	uint64_t sum = 0;
	size_t len = 1000 + (1u << 20), i, off = 1000;	/* a frame's max */
	int sv[2], fd, failed, rc, round;
	void *tr;

	snprintf(a, sizeof(a), "%s/tlsF", kdir);
	assert_int_equal(keygen_dir(a, NULL, NULL, &err), 0);
	snprintf(aca, sizeof(aca), "%s/ca.crt", a);
	snprintf(cert, sizeof(cert), "%s/client.crt", a);
	snprintf(key, sizeof(key), "%s/client.key", a);
	snprintf(path, sizeof(path), "%s/stream", a);
	data = malloc(len);
	assert_non_null(data);
	for (i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 31 + (i >> 12));
	for (i = off; i < len; i++)
		sum += data[i];
	memset(&cfg, 0, sizeof(cfg));
	cfg.ca_file = aca;
	cfg.cert_file = cert;
	cfg.key_file = key;
	ctx = tls_ctx_new(0, &cfg, &err);
	assert_non_null(ctx);
	/* round 0: the bytes arrive; round 1: the file shrinks meanwhile */
	for (round = 0; round < 2; round++) {
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, data, len), (ssize_t)len);
		/* an offset that is not page-aligned */
		assert_int_equal(lseek(fd, (off_t)off, SEEK_SET), (off_t)off);
		spair(sv);
		ta.t.dir = a;
		ta.t.ca = aca;
		ta.pause_ms = round == 0 ? 0 : 600;
		p = peer_start(sv[1], sv[0], tls_drain_fn, &ta);
		c = tls_client(ctx, sv[0], "server", 3000, NULL, &err);
		assert_non_null(c);
		if (round == 1) {
			sh.fd = fd;
			sh.after_ms = 200;
			assert_int_equal(pthread_create(&tid, NULL,
			    shrink_main, &sh), 0);
		}
		failed = 0;
		rc = frame_send_fd(c, 7, fd, conn_fd_kind(fd), len - off,
		    &failed, &err);
		if (round == 0) {
			assert_int_equal(rc, 0);
			assert_int_equal(failed, 0);
			assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)len);
		} else {
			assert_int_equal(pthread_join(tid, &tr), 0);
			assert_null(tr);
			/* an error that blames the file, not a SIGBUS */
			assert_int_equal(rc, -1);
			assert_int_equal(failed, 1);
			assert_int_equal(err.code, AS_E_TRUNCATED);
			assert_non_null(strstr(err.msg, "shrank"));
		}
		conn_shutdown_write(c, NULL);
		conn_free(c);
		peer_wait(p, &sr);
		if (round == 0) {
			assert_int_equal(sr.rc, 0);
			/* the 5-byte frame header, then the payload */
			snprintf(want, sizeof(want), "%llu",
			    (unsigned long long)(len - off + 5));
			assert_int_equal(strncmp(sr.info, want, strlen(want)),
			    0);
			snprintf(want, sizeof(want), " %llu",
			    (unsigned long long)(sum + 7 +
			    ((len - off + 1) & 0xff) +
			    (((len - off + 1) >> 8) & 0xff) +
			    (((len - off + 1) >> 16) & 0xff) +
			    (((len - off + 1) >> 24) & 0xff)));
			assert_non_null(strstr(sr.info, want));
		}
		close(fd);
	}
	tls_ctx_free(ctx);
	free(data);
}

/*
 * The receiving side of TLS hands decrypted payloads to a pipe by
 * vmsplice from a ring of buffers (conn.c copy_to_fd): a slow reader
 * behind a small pipe must still get every byte as sent, never a buffer
 * that was filled again while the pipe still held it.
 */
#define RING_FRAMES	24
#define RING_FRAME	(1u << 20)

static uint8_t
ring_byte(size_t frame, size_t i)
{
	return (uint8_t)(frame * 131 + i * 7 + (i >> 9));
}

static void
tls_frames_fn(int fd, void *arg, struct peer_result *res)
{
	struct tls_arg *a = arg;
	struct tls_config cfg;
	struct tls_ctx *ctx;
	struct conn *c;
	uint8_t *b;
	size_t f, i;
	char cert[128], key[128];

	snprintf(cert, sizeof(cert), "%s/client.crt", a->dir);
	snprintf(key, sizeof(key), "%s/client.key", a->dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.ca_file = a->ca;
	cfg.cert_file = cert;
	cfg.key_file = key;
	if ((ctx = tls_ctx_new(0, &cfg, &res->err)) == NULL) {
		res->rc = -2;
		return;
	}
	if ((c = tls_client(ctx, fd, "server", 3000, NULL,
	    &res->err)) == NULL) {
		res->rc = -1;
		tls_ctx_free(ctx);
		return;
	}
	c->idle_ms = 20000;
	b = malloc(RING_FRAME);
	for (f = 0; f < RING_FRAMES && res->rc == 0; f++) {
		for (i = 0; i < RING_FRAME; i++)
			b[i] = ring_byte(f, i);
		if (frame_send(c, 9, b, RING_FRAME, &res->err) == -1)
			res->rc = -3;
	}
	conn_shutdown_write(c, NULL);
	conn_free(c);
	tls_ctx_free(ctx);
	free(b);
}

static void
t_tls_ring(void **state)
{
	char a[128], aca[160], cert[160], key[160];
	struct tls_arg ta;
	struct peer_result sr;
	struct tls_config cfg;
	struct tls_ctx *ctx;
	struct as_err err;
	struct conn *c;
	struct peer p;
	uint8_t type, rb[4096];
	size_t len, f, i, got;
	ssize_t n;
	pid_t rd;
	int sv[2], pp[2], st, failed;

	snprintf(a, sizeof(a), "%s/tlsR", kdir);
	assert_int_equal(keygen_dir(a, NULL, NULL, &err), 0);
	snprintf(aca, sizeof(aca), "%s/ca.crt", a);
	snprintf(cert, sizeof(cert), "%s/server.crt", a);
	snprintf(key, sizeof(key), "%s/server.key", a);
	/* the reader: slow (small reads, a pause now and then), checking */
	assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
	assert_true(fcntl(pp[1], F_SETPIPE_SZ, 65536) > 0);
	rd = fork();
	assert_true(rd >= 0);
	if (rd == 0) {
		struct timespec ts = { 0, 2000000 };

		close(pp[1]);
		f = i = 0;
		got = 0;
		while ((n = read(pp[0], rb, sizeof(rb))) > 0) {
			for (ssize_t k = 0; k < n; k++) {
				if (rb[k] != ring_byte(f, i))
					_exit(3);
				if (++i == RING_FRAME) {
					i = 0;
					f++;
				}
			}
			got += (size_t)n;
			if (got % (256 * 1024) < sizeof(rb))
				nanosleep(&ts, NULL);
		}
		_exit(f == RING_FRAMES && i == 0 ? 0 : 4);
	}
	close(pp[0]);
	spair(sv);
	ta.dir = a;
	ta.ca = aca;
	p = peer_start(sv[1], sv[0], tls_frames_fn, &ta);
	memset(&cfg, 0, sizeof(cfg));
	cfg.ca_file = aca;
	cfg.cert_file = cert;
	cfg.key_file = key;
	ctx = tls_ctx_new(1, &cfg, &err);
	assert_non_null(ctx);
	c = tls_server(ctx, sv[0], "client", 3000, NULL, &err);
	assert_non_null(c);
	c->idle_ms = 20000;
	for (f = 0; f < RING_FRAMES; f++) {
		assert_int_equal(frame_recv_head(c, &type, &len, FRAME_MAX,
		    &err), 0);
		assert_int_equal(type, 9);
		assert_int_equal(len, RING_FRAME);
		assert_int_equal(conn_read_to_fd(c, pp[1], len, &failed,
		    &err), 0);
		assert_int_equal(failed, 0);
	}
	close(pp[1]);
	assert_int_equal(waitpid(rd, &st, 0), rd);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	peer_wait(p, &sr);
	assert_int_equal(sr.rc, 0);
	conn_free(c);
	tls_ctx_free(ctx);
}

/* ---- tcp -------------------------------------------------------------- */

static void
t_tcp(void **state)
{
	struct as_err err;
	struct conn *c, *s;
	char host[64], port[16], pstr[16];
	uint8_t buf[4];
	int lfd;

	assert_int_equal(tcp_split_hostport("[::1]:7010", host, sizeof(host),
	    port, sizeof(port), &err), 0);
	assert_string_equal(host, "::1");
	assert_string_equal(port, "7010");
	assert_int_equal(tcp_split_hostport(":99", host, sizeof(host), port,
	    sizeof(port), &err), 0);
	assert_string_equal(host, "");
	assert_int_equal(tcp_split_hostport("::1:7010", host, sizeof(host),
	    port, sizeof(port), &err), -1);
	assert_int_equal(tcp_split_hostport("host", host, sizeof(host), port,
	    sizeof(port), &err), -1);
	assert_int_equal(tcp_split_hostport("h:x1", host, sizeof(host), port,
	    sizeof(port), &err), -1);

	lfd = tcp_listen("127.0.0.1:0", &err);
	assert_true(lfd >= 0);
	snprintf(pstr, sizeof(pstr), "%d", tcp_local_port(lfd));
	c = tcp_connect("127.0.0.1", pstr, 2000, &err);
	assert_non_null(c);
	assert_string_equal(c->ops->name, "tcp");
	s = tcp_accept(lfd, 2000, &err);
	assert_non_null(s);
	assert_non_null(strstr(s->peer, "127.0.0.1:"));
	assert_int_equal(conn_write_full(c, "ping", 4, &err), 0);
	assert_int_equal(conn_read_full(s, buf, 4, &err), 0);
	assert_memory_equal(buf, "ping", 4);
	conn_free(c);
	assert_int_equal(conn_read_some(s, buf, 4, &err), 0);
	conn_free(s);
	/* nothing queued: accept does not block */
	assert_null(tcp_accept(lfd, 0, &err));
	assert_int_equal(err.code, AS_E_TIMEOUT);
	close(lfd);
	/* refused */
	assert_null(tcp_connect("127.0.0.1", pstr, 2000, &err));
	assert_int_equal(err.code, AS_E_IO);
	assert_null(tcp_connect("-oProxyCommand=x", "22", 2000, &err));
	assert_int_equal(err.code, AS_E_USAGE);
	/* all addresses */
	lfd = tcp_listen(":0", &err);
	assert_true(lfd >= 0);
	snprintf(pstr, sizeof(pstr), "%d", tcp_local_port(lfd));
	c = tcp_connect("localhost", pstr, 2000, &err);
	assert_non_null(c);
	s = tcp_accept(lfd, 2000, &err);
	assert_non_null(s);
	conn_free(c);
	conn_free(s);
	close(lfd);
	/* IPv6 loopback, when the machine has it */
	lfd = tcp_listen("[::1]:0", &err);
	if (lfd >= 0) {
		snprintf(pstr, sizeof(pstr), "%d", tcp_local_port(lfd));
		c = tcp_connect("::1", pstr, 2000, &err);
		assert_non_null(c);
		s = tcp_accept(lfd, 2000, &err);
		assert_non_null(s);
		assert_non_null(strstr(s->peer, "[::1]:"));
		conn_free(c);
		conn_free(s);
		close(lfd);
	}
}

/* ---- compression ------------------------------------------------------ */

static void
t_compress(void **state)
{
	struct compress_spec sp;
	struct compressor *z;
	struct decompressor *d;
	struct as_err err;
	struct buf out = BUF_INIT;
	uint8_t *src, *dst;
	size_t n = COMPRESS_BLOCK_MAX, got, i;
	char s[32];

	assert_int_equal(compress_parse("zstd:3", &sp, &err), 0);
	assert_int_equal(sp.level, 3);
	assert_string_equal(compress_spec_str(&sp, s, sizeof(s)), "zstd:3");
	assert_int_equal(compress_parse("zstd", &sp, &err), 0);
	assert_int_equal(compress_parse("none", &sp, &err), 0);
	assert_int_equal(sp.algo, COMPRESS_NONE);
	assert_int_equal(compress_parse("zstd:99", &sp, &err), -1);
	assert_int_equal(compress_parse("gzip", &sp, &err), -1);
	assert_int_equal(compress_parse("zstd:", &sp, &err), -1);

	src = malloc(n);
	dst = malloc(n);
	for (i = 0; i < n; i++)
		src[i] = i < n / 2 ? (uint8_t)(i % 17) :
		    (uint8_t)((i * 2654435761u) >> 13);
	z = compressor_new(3);
	d = decompressor_new();
	assert_int_equal(compress_block(z, src, n, &out, &err), 0);
	assert_true(out.len < n);
	assert_int_equal(decompress_block(d, out.data, out.len, dst, n, &got,
	    &err), 0);
	assert_int_equal(got, n);
	assert_memory_equal(src, dst, n);
	/* a smaller bound than the content: refused */
	assert_int_equal(decompress_block(d, out.data, out.len, dst, n - 1,
	    &got, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	/* trailing bytes, truncation, garbage */
	buf_add(&out, "x", 1);
	assert_int_equal(decompress_block(d, out.data, out.len, dst, n, &got,
	    &err), -1);
	assert_int_equal(decompress_block(d, out.data, out.len / 2, dst, n,
	    &got, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	assert_int_equal(decompress_block(d, "garbage!", 8, dst, n, &got,
	    &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	/* empty block */
	buf_reset(&out);
	assert_int_equal(compress_block(z, src, 0, &out, &err), 0);
	assert_int_equal(decompress_block(d, out.data, out.len, dst, n, &got,
	    &err), 0);
	assert_int_equal(got, 0);
	compressor_free(z);
	decompressor_free(d);
	buf_release(&out);
	free(src);
	free(dst);
}

static void
t_compress_bomb(void **state)
{
	struct decompressor *d;
	struct compressor *z;
	struct as_err err;
	size_t big = 64u << 20, clen, got, ip, op, cap;
	uint8_t *zeros, *c, *dst;
	ZSTD_CCtx *cc;
	int r;

	zeros = calloc(1, big);
	cap = ZSTD_compressBound(big);
	c = malloc(cap);
	dst = malloc(1 << 20);
	d = decompressor_new();
	/* 64 MiB of zeros, size declared in the header */
	clen = ZSTD_compress(c, cap, zeros, big, 1);
	assert_false(ZSTD_isError(clen));
	assert_int_equal(decompress_block(d, c, clen, dst, 1 << 20, &got,
	    &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	assert_non_null(strstr(err.msg, "expands beyond"));
	/* the same without a declared size: still stops at the bound */
	cc = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
	{
		ZSTD_inBuffer ib = { zeros, big, 0 };
		ZSTD_outBuffer ob = { c, cap, 0 };

		assert_int_equal(ZSTD_compressStream2(cc, &ob, &ib,
		    ZSTD_e_end), 0);
		clen = ob.pos;
	}
	ZSTD_freeCCtx(cc);
	assert_int_equal(decompress_block(d, c, clen, dst, 1 << 20, &got,
	    &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	/* stream mode with a total limit */
	decompressor_reset(d, 3 << 20);
	ip = 0;
	r = 0;
	while (r == 0) {
		op = 0;
		r = decompress_stream(d, c, clen, &ip, dst, 1 << 20, &op,
		    &err);
		assert_true(op <= 1 << 20);
	}
	assert_int_equal(r, -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	/* and a legitimate stream within the limit passes */
	z = compressor_new(1);
	{
		size_t sp = 0, cp = 0;

		while (compress_stream(z, zeros, 2 << 20, &sp, c, cap, &cp,
		    1, &err) == 1)
			;
		clen = cp;
	}
	decompressor_reset(d, 2 << 20);
	ip = 0;
	got = 0;
	for (;;) {
		op = 0;
		r = decompress_stream(d, c, clen, &ip, dst, 1 << 20, &op,
		    &err);
		assert_true(r >= 0);
		got += op;
		if (r == 1)
			break;
	}
	assert_int_equal(got, 2 << 20);
	compressor_free(z);
	decompressor_free(d);
	free(zeros);
	free(c);
	free(dst);
}

/* ---- progress --------------------------------------------------------- */

static void
t_progress(void **state)
{
	struct progress p;
	char out[1024], b[32];
	int sv[2];
	ssize_t n;

	assert_string_equal(progress_fmt_bytes(512, b, sizeof(b)), "512 B");
	assert_string_equal(progress_fmt_bytes(1536, b, sizeof(b)),
	    "1.50 KiB");
	assert_string_equal(progress_fmt_bytes(5ull << 30, b, sizeof(b)),
	    "5.00 GiB");
	progress_init(&p, PROGRESS_TTY, -1, 100ull << 20, 1000 * NS);
	progress_format(&p, 25ull << 20, 1010 * NS, 0, out, sizeof(out));
	assert_non_null(strstr(out, "25.0 MiB"));
	assert_non_null(strstr(out, "2.50 MiB/s"));
	assert_non_null(strstr(out, " 25%"));
	assert_non_null(strstr(out, "ETA 0:00:30"));
	progress_set_total(&p, 0);
	progress_format(&p, 25ull << 20, 1010 * NS, 0, out, sizeof(out));
	assert_null(strstr(out, "ETA"));
	p.mode = PROGRESS_JSON;
	p.total = 100;
	progress_format(&p, 50, 1002 * NS, 0, out, sizeof(out));
	assert_string_equal(out, "{\"bytes\":50,\"total\":100,\"rate\":25,"
	    "\"percent\":50.0,\"eta\":2,\"elapsed\":2.0,\"done\":false}");
	/* JSON: one line per second at most, and a final one */
	spair(sv);
	progress_init(&p, PROGRESS_JSON, sv[0], 0, 0);
	progress_update(&p, 10, NS / 2);
	progress_update(&p, 20, NS);
	progress_update(&p, 30, NS + NS / 2);
	progress_update(&p, 40, 2 * NS);
	progress_finish(&p, 50, 2 * NS + 1);
	close(sv[0]);
	n = read(sv[1], out, sizeof(out) - 1);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "\"bytes\":20,"));
	assert_null(strstr(out, "\"bytes\":30,"));
	assert_non_null(strstr(out, "\"bytes\":40,"));
	assert_non_null(strstr(out, "\"bytes\":50,"));
	assert_non_null(strstr(out, "\"done\":true}\n"));
	close(sv[1]);
}

/* ------------------------------------------------------------------ */
/* pace: local transfers */

struct relay_writer {
	int		 fd;
	const uint8_t	*data;
	size_t		 len;
	int		 err;	/* errno of the failed write, or 0 */
};

static void *
relay_writer_main(void *arg)
{
	struct relay_writer *w = arg;
	size_t off = 0;
	ssize_t n;

	while (off < w->len) {
		n = write(w->fd, w->data + off, w->len - off > 65536 ?
		    65536 : w->len - off);
		if (n == -1) {
			w->err = errno;
			break;
		}
		off += (size_t)n;
	}
	close(w->fd);
	return NULL;
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Every byte through the relay, in order, and its end of file. */
static void
t_pace_relay_copies(void **state)
{
	struct pace p;
	struct pace_relay r;
	struct relay_writer w;
	struct as_err err;
	pthread_t th;
	size_t len = 3u << 20, got = 0, i;
	uint8_t *data = malloc(len), *back = malloc(len);
	int out[2];
	ssize_t n;

	(void)state;
	for (i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	assert_int_equal(pipe(out), 0);
	pace_init(&p, 0, NULL, PROGRESS_NONE, 0);
	assert_false(pace_active(&p));
	assert_int_equal(pace_relay_start(&r, &p, out[1], &w.fd, &err), 0);
	w.data = data;
	w.len = len;
	w.err = 0;
	assert_int_equal(pthread_create(&th, NULL, relay_writer_main, &w), 0);
	while ((n = read(out[0], back + got, len + 1 - got > 65536 ? 65536 :
	    len + 1 - got)) > 0)
		got += (size_t)n;
	assert_int_equal(n, 0);		/* the relay closed its out */
	pthread_join(th, NULL);
	assert_int_equal(w.err, 0);
	assert_int_equal(pace_relay_finish(&r), 0);
	assert_int_equal(got, len);
	assert_memory_equal(back, data, len);
	pace_finish(&p);
	close(out[0]);
	free(data);
	free(back);
}

/* A receiver that went away: the sender gets EPIPE, not a hang. */
static void
t_pace_relay_reader_gone(void **state)
{
	struct pace p;
	struct pace_relay r;
	struct relay_writer w;
	struct as_err err;
	pthread_t th;
	size_t len = 8u << 20;
	uint8_t *data = calloc(1, len);
	int out[2];

	(void)state;
	signal(SIGPIPE, SIG_IGN);	/* as main.c: EPIPE, not the signal */
	assert_int_equal(pipe(out), 0);
	close(out[0]);
	pace_init(&p, 0, NULL, PROGRESS_NONE, 0);
	assert_int_equal(pace_relay_start(&r, &p, out[1], &w.fd, &err), 0);
	w.data = data;
	w.len = len;
	w.err = 0;
	assert_int_equal(pthread_create(&th, NULL, relay_writer_main, &w), 0);
	pthread_join(th, NULL);
	assert_int_equal(w.err, EPIPE);
	assert_int_equal(pace_relay_finish(&r), -1);
	assert_int_equal(errno, EPIPE);
	pace_finish(&p);
	free(data);
}

/* The limit holds over pace_take/pace_moved; chunks fit the bucket. */
static void
t_pace_rate(void **state)
{
	struct pace p;
	uint64_t moved = 0;
	size_t n;
	double t0, dt;

	(void)state;
	pace_init(&p, 4u << 20, NULL, PROGRESS_NONE, 0);
	assert_true(pace_active(&p));
	t0 = mono_s();
	while (moved < (2u << 20)) {
		n = pace_take(&p, 1u << 20);
		assert_true(n > 0 && n <= p.rl.burst);
		pace_moved(&p, n);
		moved += n;
	}
	dt = mono_s() - t0;
	/* 2 MiB at 4 MiB/s from an empty bucket: at least 0.5 s, less one
	 * chunk taken on credit */
	assert_true(dt >= 0.4);
	assert_int_equal(p.bytes, moved);
	pace_finish(&p);
}

static uint64_t
live_fast(void)
{
	return 1u << 30;
}

/* A service's new rate reaches a pace that sleeps: within a second. */
static void
t_pace_live(void **state)
{
	struct pace p;
	double t0, dt;

	(void)state;
	/* a service's unlimited run: followed live, no relay (a copy) */
	pace_init(&p, 0, live_fast, PROGRESS_NONE, 0);
	assert_true(pace_active(&p));
	assert_false(pace_wants_relay(&p));
	pace_finish(&p);
	pace_init(&p, 0, NULL, PROGRESS_JSON, 0);
	assert_true(pace_wants_relay(&p));
	pace_finish(&p);
	pace_init(&p, 1, live_fast, PROGRESS_NONE, 0);	/* 1 byte/s */
	assert_true(pace_wants_relay(&p));
	t0 = mono_s();
	assert_true(pace_take(&p, 65536) > 0);
	pace_moved(&p, 65536);
	assert_true(pace_take(&p, 65536) > 0);
	dt = mono_s() - t0;
	assert_true(dt < 2.5);
	assert_int_equal(p.rl.rate, 1u << 30);
	pace_finish(&p);
}

static int
setup(void **state)
{
	snprintf(kdir, sizeof(kdir), "/tmp/t_transport.XXXXXX");
	assert_non_null(mkdtemp(kdir));
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) == -1 ? 0 : 0;
}

static int
teardown(void **state)
{
	if (strncmp(kdir, "/tmp/t_transport.", 17) == 0)
		nftw(kdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_ratelimit_accuracy),
		cmocka_unit_test(t_ratelimit_change),
		cmocka_unit_test(t_ratelimit_parse),
		cmocka_unit_test(t_frame_roundtrip),
		cmocka_unit_test(t_frame_splice),
		cmocka_unit_test(t_frame_oversized),
		cmocka_unit_test(t_frame_truncated),
		cmocka_unit_test(t_frame_timeout),
		cmocka_unit_test(t_conn_child_reaped),
		cmocka_unit_test(t_auth_success),
		cmocka_unit_test(t_auth_bad_keys),
		cmocka_unit_test(t_auth_truncated),
		cmocka_unit_test(t_auth_garbage),
		cmocka_unit_test(t_auth_reflected),
		cmocka_unit_test(t_auth_mirror),
		cmocka_unit_test(t_auth_downgrade),
		cmocka_unit_test(t_auth_busy),
		cmocka_unit_test(t_keys),
		cmocka_unit_test(t_tls_file),
		cmocka_unit_test(t_tls_ring),
		cmocka_unit_test(t_tls),
		cmocka_unit_test(t_tcp),
		cmocka_unit_test(t_compress),
		cmocka_unit_test(t_compress_bomb),
		cmocka_unit_test(t_progress),
		cmocka_unit_test(t_pace_relay_copies),
		cmocka_unit_test(t_pace_relay_reader_gone),
		cmocka_unit_test(t_pace_rate),
		cmocka_unit_test(t_pace_live),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
