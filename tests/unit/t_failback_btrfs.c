/*
 * t_failback_btrfs.c - the line a btrfs REVERSE carries (S0: UUID,
 * ctransid, name; failback_btrfs.h): a round trip, and every malformed
 * form a peer could send refused as MALFORMED with nothing filled in.
 * What needs a file system is in tests/e2e/t7018-reverse-btrfs.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "repl/failback_btrfs.h"

#define UUID	"5a24ac37-a99e-6c47-a7f0-e0b83e42d1a6"

static void
t_round_trip(void **state)
{
	struct failback_btrfs_base a, b;
	struct buf out = BUF_INIT;
	struct as_err err;

	(void)state;
	memset(&a, 0, sizeof(a));
	snprintf(a.uuid, sizeof(a.uuid), "%s", UUID);
	snprintf(a.name, sizeof(a.name), "autosync_2026-11-28_17:41:47_2");
	a.ctransid = 18446744073709551615ull;
	failback_btrfs_base_encode(&a, &out);
	assert_int_equal(out.len, strlen(UUID " 18446744073709551615 "
	    "autosync_2026-11-28_17:41:47_2\n"));
	as_err_clear(&err);
	assert_int_equal(failback_btrfs_base_decode(out.data, out.len, &b,
	    &err), 0);
	assert_string_equal(b.uuid, a.uuid);
	assert_string_equal(b.name, a.name);
	assert_true(b.ctransid == a.ctransid);
	buf_release(&out);
}

static void
t_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"\n",
		UUID " 12 autosync_x",			/* no newline */
		UUID " 12 autosync_x\n\n",		/* two lines */
		UUID "  12 autosync_x\n",
		UUID " -1 autosync_x\n",
		UUID " 99999999999999999999 autosync_x\n",	/* overflow */
		UUID " 12\n",
		UUID " 12 \n",
		UUID " 12 mine\n",			/* not autosync's */
		UUID " 12 autosync_../../etc\n",
		UUID " 12 autosync_a/b\n",
		"5a24ac37a99e6c47a7f0e0b83e42d1a6xxxx 12 autosync_x\n",
		"5A24AC37-A99E-6C47-A7F0-E0B83E42D1A6 12 autosync_x\n",
		"5a24ac37-a99e-6c47-a7f0-e0b83e42d1a 12 autosync_x\n",
		"5a24ac37-a99e-6c47-a7f0-e0b83e42d1ag 12 autosync_x\n",
	};
	struct failback_btrfs_base b;
	struct as_err err;
	char nul[] = UUID " 12 autosync_x\0y\n";
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		as_err_clear(&err);
		memset(&b, 'x', sizeof(b));
		assert_int_equal(failback_btrfs_base_decode(bad[i],
		    strlen(bad[i]), &b, &err), -1);
		assert_int_equal(err.code, AS_E_MALFORMED);
		assert_int_equal(b.name[0], '\0');
	}
	as_err_clear(&err);
	assert_int_equal(failback_btrfs_base_decode(nul, sizeof(nul) - 1, &b,
	    &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_round_trip),
		cmocka_unit_test(t_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
