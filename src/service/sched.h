/*
 * sched.h - a service's schedule: parsing, formatting and the next run,
 * as pure functions of the time they are given (no clock is read here),
 * and the back-off after a failed run.
 *
 * A schedule is stored as one canonical string:
 *
 *	every N{s,m,h,d} [at HH:MM]	every N, or at HH:MM and every N after
 *	cron M H DOM MON DOW		five cron fields (*, N, N-M, ranges
 *					with /STEP, lists with ','); DOW 0-7,
 *					0 and 7 are Sunday; when both DOM and
 *					DOW are restricted either may match
 *	once YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM|-HH:MM]
 *	continuous [N{s,m,h,d}]		one run after another, N (1s) apart
 *
 * Times of day (at, cron, once without an offset) are UTC; the daemon
 * never reads TZ.  A once time may carry its own UTC offset.  An "every
 * N at HH:MM" series is anchored at HH:MM of 1970-01-01: times HH:MM +
 * k * N, so "every 6h at 02:00" is 02:00, 08:00, 14:00, 20:00.
 */
#ifndef AS_SCHED_H
#define AS_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

enum sched_kind {
	SCHED_EVERY = 1,
	SCHED_CRON,
	SCHED_ONCE,
	SCHED_CONTINUOUS,
};

#define SCHED_INTERVAL_MAX	(366 * 86400)
#define SCHED_STR_MAX		128

struct sched {
	enum sched_kind	 kind;
	int64_t		 interval;	/* every, continuous: seconds */
	int		 at;		/* every: minute of the day, or -1 */
	int64_t		 once;		/* once: seconds since the epoch */
	uint64_t	 c_min;		/* cron: bit per minute 0-59 */
	uint32_t	 c_hour;	/* bit per hour 0-23 */
	uint32_t	 c_dom;		/* bit per day 1-31 */
	uint16_t	 c_mon;		/* bit per month 1-12 */
	uint8_t		 c_dow;		/* bit per weekday 0-6 (0: Sunday) */
	int		 c_dom_any;	/* DOM was "*" */
	int		 c_dow_any;	/* DOW was "*" */
};

/* Parse a canonical schedule string; USAGE with the reason. */
int	sched_parse(const char *spec, struct sched *s, struct as_err *err);
/* Write the canonical form of s into out (SCHED_STR_MAX is enough). */
const char *sched_format(const struct sched *s, char *out, size_t outsz);
/* "15m" -> 900: a positive count with an optional s, m, h or d. */
int	sched_parse_duration(const char *str, int64_t *secs,
	    struct as_err *err);
/* "2026-12-24T02:00" (UTC unless it ends in Z or +-HH:MM) -> epoch. */
int	sched_parse_time(const char *str, int64_t *t, struct as_err *err);

/*
 * The time (seconds since the epoch, or of any clock for the interval
 * kinds) of the next run, given now and the start of the last run
 * (last < 0: never ran).  May be <= now: the run is due.
 *
 * every (no at), continuous: last + interval, or now when it never ran.
 * every at, cron: the first time of the series after last (at most one
 * missed run is caught up, never a burst), or the first at or after now
 * when it never ran.  once: its time, or -1 (no more runs) after a run.
 * Returns -1 also for a cron that never matches (31 February).
 */
int64_t	sched_next(const struct sched *s, int64_t now, int64_t last);

/*
 * The delay in milliseconds before retry number failures (>= 1) after a
 * transient error: base * 2^(failures-1), at most cap, then jittered
 * into [d/2, d] by rnd (any random 32-bit value).
 */
int64_t	sched_backoff(unsigned failures, int64_t base_ms, int64_t cap_ms,
	    uint32_t rnd);

#endif
