/* ratelimit.c - a token bucket over caller-supplied time; see ratelimit.h. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "transport/ratelimit.h"
#include "base/banned.h"

#define NS	1000000000ull
#define RATE_MAX	(1ull << 50)

static uint64_t
default_burst(uint64_t rate)
{
	uint64_t b = rate / 10;

	return b < 65536 ? 65536 : b;
}

void
ratelimit_init(struct ratelimit *rl, uint64_t bytes_per_sec, uint64_t burst)
{
	memset(rl, 0, sizeof(*rl));
	if (bytes_per_sec > RATE_MAX)
		bytes_per_sec = RATE_MAX;
	rl->rate = bytes_per_sec;
	rl->burst_auto = burst == 0;
	rl->burst = burst == 0 ? default_burst(bytes_per_sec) : burst;
	if (rl->burst > RATE_MAX)
		rl->burst = RATE_MAX;
}

static void
refill(struct ratelimit *rl, uint64_t now)
{
	unsigned __int128 add, used;
	uint64_t elapsed;

	if (!rl->started) {
		rl->started = 1;
		rl->last_ns = now;
		return;
	}
	if (now <= rl->last_ns)
		return;
	if (rl->rate == 0) {
		rl->last_ns = now;
		return;
	}
	elapsed = now - rl->last_ns;
	add = (unsigned __int128)elapsed * rl->rate / NS;
	if (add == 0)
		return;		/* keep the fraction for later */
	if ((__int128)rl->tokens + (__int128)add >= (__int128)rl->burst) {
		rl->tokens = (int64_t)rl->burst;
		rl->last_ns = now;
		return;
	}
	rl->tokens += (int64_t)add;
	/* Advance by the time those whole tokens took; keep the rest. */
	used = (add * NS + rl->rate - 1) / rl->rate;
	rl->last_ns += (uint64_t)used;
}

void
ratelimit_set(struct ratelimit *rl, uint64_t bytes_per_sec)
{
	if (bytes_per_sec > RATE_MAX)
		bytes_per_sec = RATE_MAX;
	rl->rate = bytes_per_sec;
	if (rl->burst_auto)
		rl->burst = default_burst(bytes_per_sec);
	if (rl->tokens > (int64_t)rl->burst)
		rl->tokens = (int64_t)rl->burst;
}

uint64_t
ratelimit_wait_ns(struct ratelimit *rl, uint64_t now_ns, uint64_t want)
{
	unsigned __int128 need, ns;
	uint64_t frac;

	refill(rl, now_ns);
	if (rl->rate == 0)
		return 0;
	if (want > rl->burst)
		want = rl->burst;
	if (rl->tokens >= 0 && (uint64_t)rl->tokens >= want)
		return 0;
	need = (unsigned __int128)((__int128)want - rl->tokens);
	ns = (need * NS + rl->rate - 1) / rl->rate;
	frac = now_ns > rl->last_ns ? now_ns - rl->last_ns : 0;
	if (ns <= frac)
		return 1;
	ns -= frac;
	if (ns > UINT64_MAX / 2)
		ns = UINT64_MAX / 2;
	return (uint64_t)ns;
}

void
ratelimit_consume(struct ratelimit *rl, uint64_t now_ns, uint64_t n)
{
	refill(rl, now_ns);
	if (rl->rate == 0)
		return;
	if (n > RATE_MAX)
		n = RATE_MAX;
	if (rl->tokens < INT64_MIN / 4)
		return;		/* absurd debt: stop counting, no overflow */
	rl->tokens -= (int64_t)n;
}

uint64_t
ratelimit_avail(struct ratelimit *rl, uint64_t now_ns)
{
	refill(rl, now_ns);
	if (rl->rate == 0)
		return UINT64_MAX;
	return rl->tokens > 0 ? (uint64_t)rl->tokens : 0;
}

int
ratelimit_parse(const char *s, uint64_t *bytes_per_sec, struct as_err *err)
{
	const char *p, *orig = s;
	char *end;
	double v, mul = 1;

	if (s == NULL || *s == '\0' || strcasecmp(s, "none") == 0) {
		*bytes_per_sec = 0;
		return 0;
	}
	for (p = s; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p) && *p != '.' &&
		    strchr("kKmMgGtTbB/s", *p) == NULL)
			goto bad;
	if (!isdigit((unsigned char)*s))
		goto bad;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s)
		goto bad;
	switch (*end) {
	case 'k': case 'K': mul = 1024.0; end++; break;
	case 'm': case 'M': mul = 1048576.0; end++; break;
	case 'g': case 'G': mul = 1073741824.0; end++; break;
	case 't': case 'T': mul = 1099511627776.0; end++; break;
	default: break;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (strcmp(end, "/s") == 0)
		end += 2;
	if (*end != '\0')
		goto bad;
	v *= mul;
	if (!(v >= 0) || v > (double)RATE_MAX)
		return as_err_set(err, AS_E_USAGE, 0, "rate '%s' is too "
		    "large", orig);
	*bytes_per_sec = (uint64_t)(v + 0.5);
	return 0;
bad:
	return as_err_set(err, AS_E_USAGE, 0, "bad rate '%s': expected "
	    "bytes per second such as 500K, 40M or 1G", orig);
}

uint64_t
ratelimit_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}
