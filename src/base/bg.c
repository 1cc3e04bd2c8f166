/*
 * bg.c - one function run beside the caller (bg.h).
 */
#include <string.h>
#include <time.h>

#include "base/bg.h"

#include "base/banned.h"

static void *
bg_main(void *p)
{
	struct bg_job *j = p;

	j->rc = j->fn(j->arg, &j->err);
	return NULL;
}

void
bg_start(struct bg_job *j, int (*fn)(void *, struct as_err *), void *arg)
{
	memset(j, 0, sizeof(*j));
	as_err_clear(&j->err);
	j->fn = fn;
	j->arg = arg;
	j->started = 1;
	j->threaded = pthread_create(&j->th, NULL, bg_main, j) == 0;
	if (!j->threaded)
		(void)bg_main(j);
}

int
bg_wait(struct bg_job *j, int ms)
{
	struct timespec ts;
	int r;

	if (!j->started || !j->threaded)
		return 1;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	r = pthread_timedjoin_np(j->th, NULL, &ts);
	if (r != 0)
		return 0;	/* ETIMEDOUT: still running */
	j->threaded = 0;	/* joined: bg_join only collects */
	return 1;
}

int
bg_join(struct bg_job *j, struct as_err *err)
{
	if (!j->started)
		return 0;
	if (j->threaded)
		pthread_join(j->th, NULL);
	j->started = 0;
	j->threaded = 0;
	if (j->rc == -1 && err != NULL)
		*err = j->err;
	return j->rc;
}
