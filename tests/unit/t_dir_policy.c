/*
 * t_dir_policy.c - the safe receive policy (driver/dir_policy.h): which
 * entries are refused, which mode bits cleared, which xattrs dropped.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "driver/dir_policy.h"
#include "base/banned.h"

static struct as_entry
entry(uint32_t mode, const char *path)
{
	struct as_entry e;

	memset(&e, 0, sizeof(e));
	e.mode = mode;
	e.path = path;
	e.path_len = (uint16_t)strlen(path);
	return e;
}

static void
t_devices_refused(void **state)
{
	struct as_entry e;
	struct as_err err;

	(void)state;
	e = entry(S_IFCHR | 0666, "dev/mem");
	as_err_clear(&err);
	assert_int_equal(dir_policy_entry(&e, &err), -1);
	assert_int_equal(err.code, AS_E_UNSAFE_PATH);
	assert_non_null(strstr(err.msg, "'dev/mem' is a device node"));
	e = entry(S_IFBLK | 0660, "sda");
	as_err_clear(&err);
	assert_int_equal(dir_policy_entry(&e, &err), -1);
	assert_int_equal(err.code, AS_E_UNSAFE_PATH);
}

static void
t_setid_cleared(void **state)
{
	static const uint32_t kinds[] = { S_IFREG, S_IFDIR, S_IFIFO,
	    S_IFSOCK, S_IFLNK };
	struct as_entry e;
	struct as_err err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		e = entry(kinds[i] | S_ISUID | S_ISGID | S_ISVTX | 0755, "f");
		as_err_clear(&err);
		assert_int_equal(dir_policy_entry(&e, &err), 0);
		/* type, sticky and permission bits stay */
		assert_int_equal(e.mode, kinds[i] | S_ISVTX | 0755);
	}
}

static void
t_xattrs(void **state)
{
	static const struct {
		const char	*name;
		int		 keep;
	} t[] = {
		{ "user.x", 1 },
		{ "user.mime_type", 1 },
		{ "user.", 0 },		/* no name after the namespace */
		{ "security.capability", 0 },
		{ "security.selinux", 0 },
		{ "trusted.overlay.opaque", 0 },
		{ "system.posix_acl_access", 0 },
		{ "system.posix_acl_default", 0 },
		{ "users.x", 0 },
		{ "USER.x", 0 },
	};
	struct as_xattr x;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&x, 0, sizeof(x));
		x.name = t[i].name;
		x.name_len = (uint16_t)strlen(t[i].name);
		assert_int_equal(dir_policy_xattr(&x), t[i].keep);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_devices_refused),
		cmocka_unit_test(t_setid_cleared),
		cmocka_unit_test(t_xattrs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
