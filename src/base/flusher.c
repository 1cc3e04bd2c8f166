/*
 * flusher.c - periodic syncfs beside a long write (flusher.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/flusher.h"
#include "base/log.h"

#include "base/banned.h"

static void *
flusher_main(void *p)
{
	struct flusher *f = p;
	struct timespec at;

	pthread_mutex_lock(&f->mu);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &at);
		at.tv_sec += f->every_ms / 1000;
		at.tv_nsec += (long)(f->every_ms % 1000) * 1000000L;
		if (at.tv_nsec >= 1000000000L) {
			at.tv_sec++;
			at.tv_nsec -= 1000000000L;
		}
		while (!f->stop && pthread_cond_timedwait(&f->cv, &f->mu,
		    &at) != ETIMEDOUT)
			;
		if (f->stop)
			break;
		pthread_mutex_unlock(&f->mu);
		(void)syncfs(f->fd);
		pthread_mutex_lock(&f->mu);
		f->rounds++;
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

void
flusher_start(struct flusher *f, const char *dir, int every_ms)
{
	pthread_condattr_t ca;

	memset(f, 0, sizeof(*f));
	f->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->fd == -1)
		return;
	f->every_ms = every_ms > 0 ? every_ms : 500;
	pthread_mutex_init(&f->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&f->th, NULL, flusher_main, f) != 0) {
		pthread_cond_destroy(&f->cv);
		pthread_mutex_destroy(&f->mu);
		close(f->fd);
		f->fd = -1;
		return;
	}
	f->running = 1;
}

void
flusher_stop(struct flusher *f)
{
	if (!f->running)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->th, NULL);
	log_debug("flusher: %u syncfs beside the write", f->rounds);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	close(f->fd);
	f->fd = -1;
	f->running = 0;
}
