/*
 * t_penalty.c - failed handshakes per address (transport/penalty.h) over
 * a fake clock: the free failures, the doubling and its cap, the window,
 * other addresses untouched, a full table, peer strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "transport/penalty.h"
#include "base/banned.h"

static void
test_doubling(void **state)
{
	struct penalty_box *b = penalty_new(0);
	int64_t now = 1000000, want;
	unsigned n, i;

	(void)state;
	for (i = 1; i <= PENALTY_FREE; i++) {
		assert_int_equal(penalty_fail(b, "10.0.0.1", now, &n), 0);
		assert_int_equal(n, i);
		assert_int_equal(penalty_left(b, "10.0.0.1", now), 0);
	}
	want = PENALTY_BASE_MS;
	for (i = 0; i < 12; i++) {
		assert_int_equal(penalty_fail(b, "10.0.0.1", now, NULL), want);
		assert_int_equal(penalty_left(b, "10.0.0.1", now), want);
		assert_int_equal(penalty_left(b, "10.0.0.1", now + want), 0);
		/* another address is not touched */
		assert_int_equal(penalty_left(b, "10.0.0.2", now), 0);
		want = want * 2 > PENALTY_MAX_MS ? PENALTY_MAX_MS : want * 2;
		now += 100;
	}
	assert_int_equal(penalty_left(b, "10.0.0.1", now), PENALTY_MAX_MS -
	    100);
	/* a quiet window: free failures again */
	now += PENALTY_WINDOW_MS;
	assert_int_equal(penalty_fail(b, "10.0.0.1", now, &n), 0);
	assert_int_equal(n, 1);
	penalty_free(b);
}

static void
test_full_table(void **state)
{
	struct penalty_box *b = penalty_new(4);
	char a[32];
	int i, k;

	(void)state;
	/* a.0 is penalized, then 4 others fail later: a.0 is forgotten */
	for (k = 0; k <= PENALTY_FREE; k++)
		(void)penalty_fail(b, "a.0", 10, NULL);
	assert_true(penalty_left(b, "a.0", 10) > 0);
	for (i = 1; i <= 4; i++) {
		snprintf(a, sizeof(a), "a.%d", i);
		assert_int_equal(penalty_fail(b, a, 20 + i, NULL), 0);
	}
	assert_int_equal(penalty_left(b, "a.0", 30), 0);
	penalty_free(b);
	penalty_free(NULL);
}

static void
test_loopback(void **state)
{
	struct penalty_box *b = penalty_new(0);
	unsigned n;
	int i;

	(void)state;
	for (i = 0; i < 20; i++) {
		assert_int_equal(penalty_fail(b, "127.0.0.1", 5, &n), 0);
		assert_int_equal(penalty_fail(b, "::1", 5, &n), 0);
		assert_int_equal(n, 0);
	}
	assert_int_equal(penalty_left(b, "127.0.0.1", 5), 0);
	assert_false(penalty_exempt("10.0.0.127"));
	assert_false(penalty_exempt("::2"));
	penalty_free(b);
}

static void
test_addr(void **state)
{
	char out[PENALTY_ADDR_MAX];

	(void)state;
	penalty_addr("127.0.0.2:41234", out, sizeof(out));
	assert_string_equal(out, "127.0.0.2");
	penalty_addr("[::1]:7010", out, sizeof(out));
	assert_string_equal(out, "::1");
	penalty_addr("?", out, sizeof(out));
	assert_string_equal(out, "?");
	penalty_addr("[fe80::1", out, 4);
	assert_string_equal(out, "[fe");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doubling),
		cmocka_unit_test(test_full_table),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_addr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
