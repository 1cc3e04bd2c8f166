/*
 * t_changes.c - the change journal (service/changes.h) on a real tree in
 * a temporary directory: a new journal is full, a file change names its
 * directory, a new directory is watched, a moved directory is full, the
 * private .autosync is ignored, nothing pending after a take.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/xmalloc.h"
#include "service/changes.h"
#include "base/banned.h"

static char root[] = "/tmp/t_changes.XXXXXX";

static void
touch(const char *rel)
{
	char *p = xasprintf("%s/%s", root, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	free(p);
}

static void
mkd(const char *rel)
{
	char *p = xasprintf("%s/%s", root, rel);

	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
}

/* Read what is there (the events of the calls just made). */
static void
drain(struct changes *c)
{
	struct pollfd pfd = { changes_fd(c), POLLIN, 0 };

	while (poll(&pfd, 1, 100) > 0)
		assert_true(changes_read(c, NULL) >= 0);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(path);
}

static void
take(struct changes *c, int want_full, const char *const *want)
{
	char **dirs;
	size_t n, i;
	int full;

	changes_take(c, &full, &dirs, &n);
	assert_int_equal(full, want_full);
	for (i = 0; want != NULL && want[i] != NULL; i++) {
		assert_true(i < n);
		assert_string_equal(dirs[i], want[i]);
	}
	assert_int_equal(n, i);
	changes_free_list(dirs, n);
	assert_int_equal(changes_pending(c), 0);
}

static void
test_journal(void **state)
{
	static const char *const a[] = { "a", NULL };
	static const char *const root_and_new[] = { "", "b", "b/c", NULL };
	static const char *const deep[] = { "b/c", NULL };
	struct changes *c;
	char *cmd;

	(void)state;
	assert_non_null(mkdtemp(root));
	mkd("a");
	mkd(".autosync");
	touch("a/f");
	assert_non_null(c = changes_open(root, NULL));
	assert_int_equal(changes_pending(c), 1);
	take(c, 1, NULL);			/* new: everything */

	touch("a/f");
	drain(c);
	take(c, 0, a);

	touch(".autosync/held.cat");		/* private: not a change */
	drain(c);
	assert_int_equal(changes_pending(c), 0);

	mkd("b");
	mkd("b/c");
	drain(c);
	take(c, 0, root_and_new);
	touch("b/c/g");				/* watched by now */
	drain(c);
	take(c, 0, deep);

	cmd = xasprintf("%s/b", root);
	{
		char *to = xasprintf("%s/moved", root);

		assert_int_equal(rename(cmd, to), 0);
		free(to);
	}
	free(cmd);
	drain(c);
	{
		/* a moved directory: its parent and its new place */
		static const char *const moved[] = { "", "moved", "moved/c",
		    NULL };

		take(c, 0, moved);
	}
	touch("moved/c/h");			/* watched under its new name */
	drain(c);
	{
		static const char *const moved[] = { "moved/c", NULL };

		take(c, 0, moved);
	}
	changes_close(c);
	assert_int_equal(nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
