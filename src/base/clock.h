/*
 * clock.h - the monotonic clock in the units callers count in.
 *
 * Timeouts, periods and rates are measured on CLOCK_MONOTONIC, which no
 * change of the wall clock moves; these were once a private copy in each
 * module that needed one.
 */
#ifndef AS_CLOCK_H
#define AS_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds on the monotonic clock. */
static inline int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Milliseconds on the monotonic clock. */
static inline int64_t
mono_ms(void)
{
	return mono_ns() / 1000000;
}

#endif
