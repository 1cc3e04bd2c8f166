/*
 * t_runner.c - the settings a run checks against its endpoints
 * (service/runner.h: keep_src, keep_dst) and the ZFS name of
 * NAME-latest (service/latest.h), table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "service/latest.h"
#include "service/runner.h"
#include "base/banned.h"

static void
test_keep(void **state)
{
	static const struct {
		const char	*spec;
		unsigned	 keep;
		int		 dst_ok;	/* runner_check */
		int		 src_ok;	/* runner_check_src */
	} v[] = {
		{ "/srv/data",			1, 1, 1 },
		{ "/srv/data",			5, 0, 1 },
		{ "/srv/data",			0, 1, 1 },
		{ "zfs:tank/home",		5, 1, 1 },
		{ "zfs:tank/home",		0, 1, 1 },
		{ "btrfs:/mnt/pool/home",	7, 1, 1 },
		{ "vol:/srv/vm.img",		2, 0, 0 },
		{ "ssh://h/zfs:tank/home",	3, 0, 0 },
		{ "tcp://h:7010/zfs:tank/home",	3, 0, 0 },
		{ "ssh://h/srv/data",		3, 0, 0 },
		{ "ssh://h/srv/data",		1, 1, 1 },
	};
	struct as_err err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		as_err_clear(&err);
		assert_int_equal(runner_check(v[i].spec, v[i].keep, &err),
		    v[i].dst_ok ? 0 : -1);
		if (!v[i].dst_ok)
			assert_int_equal(err.code, AS_E_USAGE);
		as_err_clear(&err);
		assert_int_equal(runner_check_src(v[i].spec, v[i].keep, &err),
		    v[i].src_ok ? 0 : -1);
		if (!v[i].src_ok)
			assert_int_equal(err.code, AS_E_USAGE);
	}
	as_err_clear(&err);
	assert_int_equal(runner_check("ssh://h/zfs:tank/x", 2, &err), -1);
	assert_non_null(strstr(err.msg, "kept by its server"));
}

static void
test_zfs_prop(void **state)
{
	static const struct {
		const char *name, *prop;
	} v[] = {
		{ "z",		"autosync:z-latest" },
		{ "Home.Daily",	"autosync:home.daily-latest" },
		{ "db_01-x",	"autosync:db_01-x-latest" },
	};
	size_t i;
	char *p;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		p = latest_zfs_prop(v[i].name);
		assert_string_equal(p, v[i].prop);
		free(p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keep),
		cmocka_unit_test(test_zfs_prop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
