/*
 * pace.c - rate limit and progress for a transfer within this machine
 * (see pace.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "transport/pace.h"
#include "base/banned.h"

/* The relay's pipe, and its largest move: as remote.c's */
#define PACE_PIPE_SIZE	(1 << 20)
#define PACE_CHUNK	((size_t)1 << 20)

/* A live rate change is looked for at most this often, as over a link. */
#define PACE_LIVE_NS	1000000000ull

void
pace_init(struct pace *p, uint64_t rate, uint64_t (*rate_live)(void),
    enum progress_mode mode, uint64_t total)
{
	uint64_t now = ratelimit_now_ns();

	pthread_mutex_init(&p->mu, NULL);
	ratelimit_init(&p->rl, rate, 0);
	p->rate_live = rate_live;
	p->live_ns = now;
	p->bytes = 0;
	progress_init(&p->pg, mode, 2, total, now);
}

/*
 * May rl ever hold a chunk back?  (Without rate_live its rate never
 * changes, so this reads no field another thread writes.)
 */
static int
limits(const struct pace *p)
{
	return p->rate_live != NULL || p->rl.rate > 0;
}

static int
shows(const struct pace *p)
{
	return p->pg.mode != PROGRESS_NONE;
}

int
pace_active(const struct pace *p)
{
	return limits(p) || shows(p);
}

int
pace_wants_relay(const struct pace *p)
{
	return shows(p) || p->rl.rate > 0;
}

/* A service's rate_limit set while this runs: into the bucket. */
static void
follow_live(struct pace *p, uint64_t now)
{
	uint64_t v;

	if (p->rate_live == NULL || now - p->live_ns < PACE_LIVE_NS)
		return;
	p->live_ns = now;
	v = p->rate_live();
	if (v != UINT64_MAX && v != p->rl.rate)
		ratelimit_set(&p->rl, v);
}

size_t
pace_take(struct pace *p, size_t want)
{
	struct timespec ts;
	uint64_t now, w;

	if (!limits(p))
		return want;
	for (;;) {
		now = ratelimit_now_ns();
		pthread_mutex_lock(&p->mu);
		follow_live(p, now);
		/* a chunk larger than the bucket would go in bursts */
		if (p->rl.rate != 0 && want > p->rl.burst)
			want = (size_t)p->rl.burst;
		w = p->rl.rate == 0 ? 0 : ratelimit_wait_ns(&p->rl, now, want);
		pthread_mutex_unlock(&p->mu);
		if (w == 0)
			return want;
		/* wake up for a live change too */
		if (p->rate_live != NULL && w > PACE_LIVE_NS)
			w = PACE_LIVE_NS;
		ts.tv_sec = (time_t)(w / 1000000000u);
		ts.tv_nsec = (long)(w % 1000000000u);
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
}

void
pace_moved(struct pace *p, uint64_t n)
{
	uint64_t now;

	if (!pace_active(p))
		return;
	now = ratelimit_now_ns();
	pthread_mutex_lock(&p->mu);
	p->bytes += n;
	if (limits(p))
		ratelimit_consume(&p->rl, now, n);
	if (shows(p))
		progress_update(&p->pg, p->bytes, now);
	pthread_mutex_unlock(&p->mu);
}

void
pace_finish(struct pace *p)
{
	if (shows(p))
		progress_finish(&p->pg, p->bytes, ratelimit_now_ns());
	pthread_mutex_destroy(&p->mu);
}

/* ------------------------------------------------------------------ */
/* The relay */

static void *
relay_main(void *arg)
{
	struct pace_relay *r = arg;
	ssize_t n;
	size_t want;

	for (;;) {
		want = pace_take(r->p, PACE_CHUNK);
		n = splice(r->in, NULL, r->out, NULL, want, SPLICE_F_MOVE);
		if (n == 0)
			break;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			r->err = errno;
			break;
		}
		pace_moved(r->p, (uint64_t)n);
	}
	/* the receiver's end of file; the sender's EPIPE if it still writes */
	close(r->out);
	r->out = -1;
	close(r->in);
	r->in = -1;
	return NULL;
}

int
pace_relay_start(struct pace_relay *r, struct pace *p, int out_fd,
    int *write_fd, struct as_err *err)
{
	int fds[2], e;

	r->p = p;
	r->out = out_fd;
	r->err = 0;
	r->started = 0;
	*write_fd = -1;
	if (pipe2(fds, O_CLOEXEC) == -1) {
		e = errno;
		close(out_fd);
		return as_err_sys(err, e, "pipe");
	}
	/* best effort, as remote.c's: fewer wake-ups per MiB */
	(void)fcntl(fds[1], F_SETPIPE_SZ, PACE_PIPE_SIZE);
	r->in = fds[0];
	if ((e = pthread_create(&r->th, NULL, relay_main, r)) != 0) {
		close(fds[0]);
		close(fds[1]);
		close(out_fd);
		r->in = r->out = -1;
		return as_err_sys(err, e, "start the rate limit's thread");
	}
	r->started = 1;
	*write_fd = fds[1];
	return 0;
}

int
pace_relay_finish(struct pace_relay *r)
{
	if (!r->started)
		return 0;
	pthread_join(r->th, NULL);
	r->started = 0;
	if (r->err != 0) {
		errno = r->err;
		return -1;
	}
	return 0;
}
