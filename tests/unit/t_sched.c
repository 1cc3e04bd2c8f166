/*
 * t_sched.c - schedules (service/sched.h): parsing and canonical form,
 * the next run for every kind over a table of (schedule, now, last)
 * with fake time in UTC (month ends, leap days, year ends), and the
 * back-off's bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "service/sched.h"
#include "base/banned.h"

static int64_t
T(const char *s)
{
	int64_t t = -1;

	assert_int_equal(sched_parse_time(s, &t, NULL), 0);
	return t;
}

static void
test_parse_format(void **state)
{
	static const struct {
		const char	*in;
		const char	*canon;	/* NULL: refused */
	} t[] = {
		{ "every 15m", "every 15m" },
		{ "every 90s", "every 90s" },
		{ "every 120", "every 2m" },
		{ "every 1d at 02:00", "every 1d at 02:00" },
		{ "every 24h at 23:59", "every 1d at 23:59" },
		{ "continuous", "continuous 1s" },
		{ "continuous 5s", "continuous 5s" },
		{ "once 2026-12-24T02:00", "once 2026-12-24T02:00:00Z" },
		{ "once 2026-12-24T02:00+01:00", "once 2026-12-24T01:00:00Z" },
		{ "cron 0 2 * * *", "cron 0 2 * * *" },
		{ "cron */15 * * * 1-5", "cron 0,15,30,45 * * * 1-5" },
		{ "cron 0 0 1,15 * 7", "cron 0 0 1,15 * 0" },
		{ "every 0s", NULL },
		{ "every 367d", NULL },
		{ "every 5x", NULL },
		{ "every 1d at 24:00", NULL },
		{ "once 2026-02-30T00:00", NULL },
		{ "once 2026-12-24", NULL },
		{ "cron 60 * * * *", NULL },
		{ "cron * * * *", NULL },
		{ "cron * * 0 * *", NULL },
		{ "cron * * * 13 *", NULL },
		{ "cron */0 * * * *", NULL },
		{ "hourly", NULL },
	};
	struct sched s;
	struct as_err err;
	char out[SCHED_STR_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		as_err_clear(&err);
		if (t[i].canon == NULL) {
			assert_int_equal(sched_parse(t[i].in, &s, &err), -1);
			assert_int_equal(err.code, AS_E_USAGE);
			continue;
		}
		assert_int_equal(sched_parse(t[i].in, &s, &err), 0);
		assert_string_equal(sched_format(&s, out, sizeof(out)),
		    t[i].canon);
		/* the canonical form parses to itself */
		assert_int_equal(sched_parse(out, &s, &err), 0);
		assert_string_equal(sched_format(&s, out, sizeof(out)),
		    t[i].canon);
	}
}

static void
test_next(void **state)
{
	static const struct {
		const char	*sched;
		const char	*now;
		const char	*last;	/* NULL: never ran */
		const char	*next;	/* NULL: none */
	} t[] = {
		/* intervals: from the last start, now when never ran */
		{ "every 15m", "2026-01-01T00:00", NULL, "2026-01-01T00:00" },
		{ "every 15m", "2026-01-01T00:20", "2026-01-01T00:10",
		    "2026-01-01T00:25" },
		{ "continuous 1s", "2026-01-01T00:00:05", "2026-01-01T00:00:03",
		    "2026-01-01T00:00:04" },
		/* every at: the series anchored at HH:MM */
		{ "every 1d at 02:00", "2026-01-31T03:00", NULL,
		    "2026-02-01T02:00" },
		{ "every 1d at 02:00", "2026-01-31T01:00", NULL,
		    "2026-01-31T02:00" },
		{ "every 1d at 02:00", "2026-01-31T02:00", NULL,
		    "2026-01-31T02:00" },
		{ "every 1d at 02:00", "2026-02-01T02:00", "2026-01-31T02:00",
		    "2026-02-01T02:00" },
		{ "every 6h at 02:00", "2026-12-31T21:00", NULL,
		    "2027-01-01T02:00" },
		{ "every 6h at 02:00", "2026-03-01T09:00", NULL,
		    "2026-03-01T14:00" },
		/* a week down: one catch-up run, not seven */
		{ "every 1d at 02:00", "2026-01-08T12:00", "2026-01-01T02:00",
		    "2026-01-02T02:00" },
		/* cron: month ends, leap days, weekdays */
		{ "cron 0 2 * * *", "2026-01-31T02:00:01", NULL,
		    "2026-02-01T02:00" },
		{ "cron 0 0 31 * *", "2026-02-01T00:00", NULL,
		    "2026-03-31T00:00" },
		{ "cron 0 0 29 2 *", "2026-03-01T00:00", NULL,
		    "2028-02-29T00:00" },
		{ "cron 30 12 * * 1", "2026-05-02T00:00", NULL,
		    "2026-05-04T12:30" },	/* 2026-05-04 is a Monday */
		{ "cron 0 0 13 * 5", "2026-01-01T00:00", NULL,
		    "2026-01-02T00:00" },	/* DOM or DOW: Friday the 2nd */
		{ "cron */15 * * * *", "2026-12-31T23:50", NULL,
		    "2027-01-01T00:00" },
		{ "cron 0 0 30 2 *", "2026-01-01T00:00", NULL, NULL },
		{ "cron 5 * * * *", "2026-06-30T23:05", "2026-06-30T23:05",
		    "2026-07-01T00:05" },
		/* once */
		{ "once 2026-12-24T02:00", "2026-01-01T00:00", NULL,
		    "2026-12-24T02:00" },
		{ "once 2026-12-24T02:00", "2027-01-01T00:00", NULL,
		    "2026-12-24T02:00" },	/* missed: due at once */
		{ "once 2026-12-24T02:00", "2027-01-01T00:00",
		    "2026-12-24T02:00", NULL },
	};
	struct sched s;
	int64_t got;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(sched_parse(t[i].sched, &s, NULL), 0);
		got = sched_next(&s, T(t[i].now),
		    t[i].last != NULL ? T(t[i].last) : -1);
		if (got != (t[i].next != NULL ? T(t[i].next) : -1))
			fail_msg("case %zu '%s' now %s: got %lld", i,
			    t[i].sched, t[i].now, (long long)got);
	}
}

static void
test_backoff(void **state)
{
	int64_t d, prev_max = 0, lo, hi;
	unsigned f;
	uint32_t r;

	(void)state;
	for (f = 1; f <= 40; f++) {
		hi = 1000;
		for (unsigned i = 1; i < f && hi < 300000; i++)
			hi *= 2;
		if (hi > 300000)
			hi = 300000;
		lo = hi - hi / 2;
		for (r = 0; r < 2000; r += 7) {
			d = sched_backoff(f, 1000, 300000, r * 2654435761u);
			assert_true(d >= lo && d <= hi);
		}
		assert_int_equal(sched_backoff(f, 1000, 300000, 0), lo);
		assert_true(hi >= prev_max);
		prev_max = hi;
	}
	assert_int_equal(sched_backoff(1, 0, 1000, 5), 0);
	assert_true(sched_backoff(100, 1000, 300000, 0xffffffffu) <= 300000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_format),
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
