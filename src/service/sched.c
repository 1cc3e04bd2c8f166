/*
 * sched.c - schedule strings and next-run arithmetic (see sched.h).
 * Nothing here reads a clock: every function takes the time it needs.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/sched.h"
#include "base/banned.h"

#define CRON_SEARCH_DAYS	(366 * 8)	/* covers every leap cycle */

int
sched_parse_duration(const char *str, int64_t *secs, struct as_err *err)
{
	char *end;
	unsigned long long v;
	int64_t mul = 1;

	if (!isdigit((unsigned char)str[0]))
		goto bad;
	errno = 0;
	v = strtoull(str, &end, 10);
	if (errno != 0)
		goto bad;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	default:
		goto bad;
	}
	if (*end != '\0' && end[1] != '\0')
		goto bad;
	if (v == 0 || v > (unsigned long long)SCHED_INTERVAL_MAX ||
	    (int64_t)v * mul > SCHED_INTERVAL_MAX)
		return as_err_set(err, AS_E_USAGE, 0, "interval '%s' out of "
		    "range (1s to 366d)", str);
	*secs = (int64_t)v * mul;
	return 0;
bad:
	return as_err_set(err, AS_E_USAGE, 0, "bad interval '%s': expected "
	    "a number with s, m, h or d", str);
}

/* Exactly n digits at s, within [lo, hi]. */
static int
digits(const char *s, int n, int lo, int hi, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
days_in_month(int year, int mon)	/* mon 1-12 */
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };

	if (mon == 2 && ((year % 4 == 0 && year % 100 != 0) ||
	    year % 400 == 0))
		return 29;
	return d[mon - 1];
}

static int
parse_hhmm(const char *s, int *minute)
{
	int h, m;

	if (strlen(s) != 5 || s[2] != ':' || digits(s, 2, 0, 23, &h) == -1 ||
	    digits(s + 3, 2, 0, 59, &m) == -1)
		return -1;
	*minute = h * 60 + m;
	return 0;
}

int
sched_parse_time(const char *str, int64_t *t, struct as_err *err)
{
	struct tm tm;
	const char *p = str;
	int y, mo, d, h, mi, s = 0, oh, om, off = 0;
	time_t v;

	if (digits(p, 4, 1970, 9999, &y) == -1 || p[4] != '-' ||
	    digits(p + 5, 2, 1, 12, &mo) == -1 || p[7] != '-' ||
	    digits(p + 8, 2, 1, 31, &d) == -1 ||
	    (p[10] != 'T' && p[10] != ' ') ||
	    digits(p + 11, 2, 0, 23, &h) == -1 || p[13] != ':' ||
	    digits(p + 14, 2, 0, 59, &mi) == -1)
		goto bad;
	p += 16;
	if (*p == ':') {
		if (digits(p + 1, 2, 0, 59, &s) == -1)
			goto bad;
		p += 3;
	}
	if (*p == 'Z' && p[1] == '\0')
		p++;
	else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
	    digits(p + 1, 2, 0, 23, &oh) == 0 &&
	    digits(p + 4, 2, 0, 59, &om) == 0) {
		off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	}
	if (*p != '\0' || d > days_in_month(y, mo))
		goto bad;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	v = timegm(&tm);
	*t = (int64_t)v - off;
	return 0;
bad:
	return as_err_set(err, AS_E_USAGE, 0, "bad time '%s': expected "
	    "YYYY-MM-DDTHH:MM[:SS] (UTC), optionally with Z or +HH:MM", str);
}

/* One cron field into a bit mask over [lo, hi]. */
static int
cron_field(const char *f, int lo, int hi, uint64_t *mask, int *any)
{
	const char *p = f;
	char *end;
	long a, b, step;

	*mask = 0;
	*any = strcmp(f, "*") == 0;
	for (;;) {
		step = 1;
		if (*p == '*') {
			a = lo;
			b = hi;
			p++;
		} else {
			if (!isdigit((unsigned char)*p))
				return -1;
			a = strtol(p, &end, 10);
			p = end;
			b = a;
			if (*p == '-') {
				if (!isdigit((unsigned char)p[1]))
					return -1;
				b = strtol(p + 1, &end, 10);
				p = end;
			}
		}
		if (*p == '/') {
			if (!isdigit((unsigned char)p[1]))
				return -1;
			step = strtol(p + 1, &end, 10);
			p = end;
			if (step < 1 || step > hi)
				return -1;
		}
		if (a < lo || b > hi || a > b)
			return -1;
		for (; a <= b; a += step)
			*mask |= (uint64_t)1 << a;
		if (*p == '\0')
			return 0;
		if (*p++ != ',')
			return -1;
	}
}

static int
parse_cron(char *fields, struct sched *s, const char *spec,
    struct as_err *err)
{
	static const struct {
		const char	*name;
		int		 lo, hi;
	} f[5] = {
		{ "minute", 0, 59 }, { "hour", 0, 23 },
		{ "day of month", 1, 31 }, { "month", 1, 12 },
		{ "day of week", 0, 7 },
	};
	char *v[5], *p = fields;
	uint64_t m[5];
	int i, any[5];

	for (i = 0; i < 5; i++) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return as_err_set(err, AS_E_USAGE, 0, "cron '%s': "
			    "expected 5 fields (M H DOM MON DOW)", spec);
		v[i] = p;
		while (*p != '\0' && *p != ' ')
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
	while (*p == ' ')
		p++;
	if (*p != '\0')
		return as_err_set(err, AS_E_USAGE, 0, "cron '%s': expected 5 "
		    "fields (M H DOM MON DOW)", spec);
	for (i = 0; i < 5; i++)
		if (cron_field(v[i], f[i].lo, f[i].hi, &m[i], &any[i]) == -1)
			return as_err_set(err, AS_E_USAGE, 0, "cron '%s': bad "
			    "%s field '%s'", spec, f[i].name, v[i]);
	s->c_min = m[0];
	s->c_hour = (uint32_t)m[1];
	s->c_dom = (uint32_t)m[2];
	s->c_mon = (uint16_t)m[3];
	s->c_dow = (uint8_t)((m[4] | (m[4] >> 7)) & 0x7f);
	s->c_dom_any = any[2];
	s->c_dow_any = any[4];
	return 0;
}

int
sched_parse(const char *spec, struct sched *s, struct as_err *err)
{
	char buf[SCHED_STR_MAX], *word, *rest, *at;
	struct sched n;

	if (strlen(spec) >= sizeof(buf))
		return as_err_set(err, AS_E_USAGE, 0, "schedule too long");
	snprintf(buf, sizeof(buf), "%s", spec);
	memset(&n, 0, sizeof(n));
	n.at = -1;
	word = buf;
	while (*word == ' ')
		word++;
	rest = word + strcspn(word, " ");
	if (*rest != '\0')
		*rest++ = '\0';
	while (*rest == ' ')
		rest++;
	if (strcmp(word, "every") == 0) {
		n.kind = SCHED_EVERY;
		if ((at = strstr(rest, " at ")) != NULL) {
			*at = '\0';
			if (parse_hhmm(at + 4, &n.at) == -1)
				return as_err_set(err, AS_E_USAGE, 0, "bad "
				    "time of day '%s': expected HH:MM", at + 4);
		}
		if (sched_parse_duration(rest, &n.interval, err) == -1)
			return -1;
	} else if (strcmp(word, "continuous") == 0) {
		n.kind = SCHED_CONTINUOUS;
		n.interval = 1;
		if (*rest != '\0' &&
		    sched_parse_duration(rest, &n.interval, err) == -1)
			return -1;
	} else if (strcmp(word, "once") == 0) {
		n.kind = SCHED_ONCE;
		if (sched_parse_time(rest, &n.once, err) == -1)
			return -1;
	} else if (strcmp(word, "cron") == 0) {
		n.kind = SCHED_CRON;
		if (parse_cron(rest, &n, spec, err) == -1)
			return -1;
	} else
		return as_err_set(err, AS_E_USAGE, 0, "bad schedule '%s': "
		    "expected every, cron, once or continuous", spec);
	*s = n;
	return 0;
}

static const char *
dur_str(int64_t v, char *out, size_t outsz)
{
	if (v % 86400 == 0)
		snprintf(out, outsz, "%" PRId64 "d", v / 86400);
	else if (v % 3600 == 0)
		snprintf(out, outsz, "%" PRId64 "h", v / 3600);
	else if (v % 60 == 0)
		snprintf(out, outsz, "%" PRId64 "m", v / 60);
	else
		snprintf(out, outsz, "%" PRId64 "s", v);
	return out;
}

/* A cron mask back as a list of ranges. */
static void
mask_str(uint64_t m, int lo, int hi, int any, char *out, size_t outsz)
{
	size_t len = 0;
	int a, b;

	if (any) {
		snprintf(out, outsz, "*");
		return;
	}
	out[0] = '\0';
	for (a = lo; a <= hi; a++) {
		if (!(m & ((uint64_t)1 << a)))
			continue;
		for (b = a; b + 1 <= hi && (m & ((uint64_t)1 << (b + 1))); b++)
			;
		if (len < outsz)
			len += snprintf(out + len, outsz - len, "%s%d",
			    len > 0 ? "," : "", a);
		if (b > a && len < outsz)
			len += snprintf(out + len, outsz - len, "-%d", b);
		a = b;
	}
}

const char *
sched_format(const struct sched *s, char *out, size_t outsz)
{
	char d[32], f[5][64];
	struct tm tm;
	time_t t;

	switch (s->kind) {
	case SCHED_EVERY:
		if (s->at >= 0)
			snprintf(out, outsz, "every %s at %02d:%02d",
			    dur_str(s->interval, d, sizeof(d)), s->at / 60,
			    s->at % 60);
		else
			snprintf(out, outsz, "every %s",
			    dur_str(s->interval, d, sizeof(d)));
		break;
	case SCHED_CONTINUOUS:
		snprintf(out, outsz, "continuous %s",
		    dur_str(s->interval, d, sizeof(d)));
		break;
	case SCHED_ONCE:
		t = (time_t)s->once;
		gmtime_r(&t, &tm);
		strftime(out, outsz, "once %Y-%m-%dT%H:%M:%SZ", &tm);
		break;
	case SCHED_CRON:
		mask_str(s->c_min, 0, 59, s->c_min == (((uint64_t)1 << 60) -
		    1), f[0], sizeof(f[0]));
		mask_str(s->c_hour, 0, 23, s->c_hour == 0xffffff, f[1],
		    sizeof(f[1]));
		mask_str(s->c_dom, 1, 31, s->c_dom_any, f[2], sizeof(f[2]));
		mask_str(s->c_mon, 1, 12, s->c_mon == 0x1ffe, f[3],
		    sizeof(f[3]));
		mask_str(s->c_dow, 0, 6, s->c_dow_any, f[4], sizeof(f[4]));
		snprintf(out, outsz, "cron %s %s %s %s %s", f[0], f[1], f[2],
		    f[3], f[4]);
		break;
	default:
		snprintf(out, outsz, "?");
		break;
	}
	return out;
}

static int
cron_day_ok(const struct sched *s, const struct tm *tm)
{
	int dom = (s->c_dom >> tm->tm_mday) & 1;
	int dow = (s->c_dow >> tm->tm_wday) & 1;

	if (!((s->c_mon >> (tm->tm_mon + 1)) & 1))
		return 0;
	if (s->c_dom_any && s->c_dow_any)
		return 1;
	if (s->c_dom_any)
		return dow;
	if (s->c_dow_any)
		return dom;
	return dom || dow;	/* Vixie cron: either restricted field */
}

/* The first minute t > after that the cron fields match, or -1. */
static int64_t
cron_next(const struct sched *s, int64_t after)
{
	struct tm tm;
	time_t day;
	int64_t t, d;
	int h, m, start;

	t = after - (after % 60 + 60) % 60 + 60;	/* next whole minute */
	day = (time_t)(t - (t % 86400 + 86400) % 86400);
	start = (int)((t - (int64_t)day) / 60);
	for (d = 0; d < CRON_SEARCH_DAYS; d++, day += 86400, start = 0) {
		gmtime_r(&day, &tm);
		if (!cron_day_ok(s, &tm))
			continue;
		for (h = start / 60; h < 24; h++) {
			if (!((s->c_hour >> h) & 1))
				continue;
			for (m = h == start / 60 ? start % 60 : 0; m < 60; m++)
				if ((s->c_min >> m) & 1)
					return (int64_t)day + h * 3600 +
					    m * 60;
		}
	}
	return -1;
}

int64_t
sched_next(const struct sched *s, int64_t now, int64_t last)
{
	int64_t anchor, k, ref;

	switch (s->kind) {
	case SCHED_EVERY:
		if (s->at < 0)
			return last < 0 ? now : last + s->interval;
		anchor = (int64_t)s->at * 60;
		/* first series time > ref (last), or >= now (never ran) */
		ref = last < 0 ? now - 1 : last;
		k = ref - anchor;
		k = k >= 0 ? k / s->interval + 1 : -((-k) / s->interval);
		if (anchor + k * s->interval <= ref)
			k++;
		return anchor + k * s->interval;
	case SCHED_CONTINUOUS:
		return last < 0 ? now : last + s->interval;
	case SCHED_ONCE:
		return last < 0 ? s->once : -1;
	case SCHED_CRON:
		return cron_next(s, last < 0 ? now - 1 : last);
	}
	return -1;
}

int64_t
sched_backoff(unsigned failures, int64_t base_ms, int64_t cap_ms,
    uint32_t rnd)
{
	int64_t d = base_ms;
	unsigned i;

	if (base_ms <= 0)
		return 0;
	for (i = 1; i < failures && d < cap_ms; i++)
		d *= 2;
	if (d > cap_ms)
		d = cap_ms;
	return d - d / 2 + (int64_t)(rnd % (uint64_t)(d / 2 + 1));
}
