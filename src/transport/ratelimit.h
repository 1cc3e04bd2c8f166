/*
 * ratelimit.h - a token bucket that takes the time as a parameter
 * (curl's ratelimit.h), so that it never sleeps and is tested over fake
 * time.
 *
 * Tokens are bytes; they accrue at bytes_per_sec up to `burst`.  A writer
 * asks ratelimit_wait_ns(rl, now, want): 0 means "send now" (then call
 * ratelimit_consume with what was really sent); otherwise the number of
 * nanoseconds to wait - a poll loop drops POLLOUT and uses it as its
 * timeout.  Consuming more than is available leaves a debt that later
 * waits pay back, so the long-run rate is exact even when writes are
 * larger than the bucket.  want is capped at burst, so a write larger
 * than the bucket is still admitted once the bucket is full.
 *
 * bytes_per_sec 0 means unlimited (wait is always 0).  ratelimit_set()
 * may be called at any time, from the same thread (the service uses it
 * to change a running transfer's limit); the tokens already earned are
 * kept, clamped to the new burst.
 *
 * Rate strings (ratelimit_parse): a decimal number with an optional
 * suffix K, M, G or T (case-insensitive, optional trailing "B", "/s"),
 * base 1024: "40M" = 40 * 2^20 bytes per second, "500K" = 512000,
 * "1G" = 2^30; "0", "" or "none" = unlimited.  Fractions ("1.5M") are
 * allowed.  Values above 2^50 (1 PiB/s) are USAGE errors.
 */
#ifndef AS_RATELIMIT_H
#define AS_RATELIMIT_H

#include <stdint.h>

#include "base/err.h"

struct ratelimit {
	uint64_t	rate;		/* bytes per second; 0: unlimited */
	uint64_t	burst;		/* bucket size in bytes */
	int64_t		tokens;		/* may go negative (debt) */
	uint64_t	last_ns;	/* time tokens were last added */
	int		started;	/* last_ns is valid */
	int		burst_auto;	/* burst follows the rate */
};

/*
 * burst 0 picks a default: max(64 KiB, rate / 10) - a tenth of a second
 * of traffic.  The bucket starts empty at the first call that passes a
 * time.
 */
void	 ratelimit_init(struct ratelimit *rl, uint64_t bytes_per_sec,
	    uint64_t burst);
/*
 * New rate; with an automatic burst the bucket size follows it.  Time
 * since the last call is credited at the new rate (at most one burst).
 */
void	 ratelimit_set(struct ratelimit *rl, uint64_t bytes_per_sec);
/* Nanoseconds until want bytes may be sent; 0: now. */
uint64_t ratelimit_wait_ns(struct ratelimit *rl, uint64_t now_ns,
	    uint64_t want);
/* Take n bytes out of the bucket (may go into debt). */
void	 ratelimit_consume(struct ratelimit *rl, uint64_t now_ns, uint64_t n);
/* Bytes that may be sent right now (0 in debt; UINT64_MAX unlimited). */
uint64_t ratelimit_avail(struct ratelimit *rl, uint64_t now_ns);

/* Parse a rate string into bytes per second (see above). */
int	 ratelimit_parse(const char *s, uint64_t *bytes_per_sec,
	    struct as_err *err);
/* CLOCK_MONOTONIC in nanoseconds, for callers. */
uint64_t ratelimit_now_ns(void);

#endif
