/*
 * t_ownwalk.c - the destination's ownership walk (base/ownwalk.h) over
 * a table of real link layouts: links owned by root or this user are
 * followed, one owned by another user is refused wherever it stands,
 * including inside the target of a trusted link and after "..".
 * Needs root to give links away (lchown); skipped otherwise.
 */
#include <sys/stat.h>

#include <ftw.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/ownwalk.h"
#include "base/banned.h"

#define OTHER_UID	65534

static char root[] = "/tmp/t_ownwalk.XXXXXX";

static void
mk(const char *kind, const char *rel, const char *target, uid_t owner)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	if (strcmp(kind, "dir") == 0)
		assert_int_equal(mkdir(p, 0755), 0);
	else
		assert_int_equal(symlink(target, p), 0);
	assert_int_equal(lchown(p, owner, (gid_t)-1), 0);
}

static void
test_walk(void **state)
{
	static const struct {
		const char	*path;	/* below root */
		int		 code;	/* 0: allowed */
	} t[] = {
		{ "real/dst",			0 },	/* no link */
		{ "real/new/deeper",		0 },	/* not made yet */
		{ "mine/dst",			0 },	/* my link */
		{ "evil/dst",			AS_E_UNSAFE_PATH },
		{ "evil",			AS_E_UNSAFE_PATH },	/* itself */
		{ "mine/../evil/x",		AS_E_UNSAFE_PATH },
		{ "chain/dst",			AS_E_UNSAFE_PATH },	/* my link to evil's */
		{ "real/../real/./dst",		0 },
		{ "loop/x",			AS_E_UNSAFE_PATH },	/* ELOOP */
	};
	struct as_err err;
	char p[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", root, t[i].path);
		as_err_clear(&err);
		if (ownwalk_check(p, "destination", &err) == 0)
			assert_int_equal(t[i].code, 0);
		else {
			if (t[i].code != err.code)
				fail_msg("%s: %s", t[i].path, err.msg);
		}
	}
	/* relative to the working directory, as a CLI argument is */
	assert_int_equal(chdir(root), 0);
	assert_int_equal(ownwalk_check("mine/dst", "destination", &err), 0);
	assert_int_equal(ownwalk_check("evil/dst", "destination", &err), -1);
	assert_int_equal(err.code, AS_E_UNSAFE_PATH);
	assert_non_null(strstr(err.msg, "uid 65534"));
}

static int
setup(void **state)
{
	char p[512];

	(void)state;
	if (geteuid() != 0)
		return 0;
	if (mkdtemp(root) == NULL)
		return -1;
	mk("dir", "real", NULL, 0);
	mk("dir", "real/dst", NULL, 0);
	mk("link", "mine", "real", 0);
	snprintf(p, sizeof(p), "%s/real", root);
	mk("link", "evil", p, OTHER_UID);
	mk("link", "chain", "evil", 0);
	mk("link", "loop", "loop", 0);
	return 0;
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)f;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static int
teardown(void **state)
{
	(void)state;
	return nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk),
	};

	if (geteuid() != 0) {
		printf("1..0 # SKIP lchown to another uid needs root\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
