/*
 * t_hook.c - hooks (service/hook.h): splitting specs into an argv over
 * a table, and running real programs: argv and environment, output
 * lines, exit status, a missing program, a timeout that kills the group.
 */
#include <sys/wait.h>

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "service/hook.h"
#include "base/banned.h"

static void
test_split(void **state)
{
	static const struct {
		const char	*in;
		const char	*out[6];	/* NULL-terminated */
		int		 ok;
	} t[] = {
		{ "", { NULL }, 1 },
		{ "   ", { NULL }, 1 },
		{ "/bin/true", { "/bin/true", NULL }, 1 },
		{ " /x  a\tb ", { "/x", "a", "b", NULL }, 1 },
		{ "/x 'a b' \"c d\"", { "/x", "a b", "c d", NULL }, 1 },
		{ "/x 'a\\b'", { "/x", "a\\b", NULL }, 1 },
		{ "/x \"q\\\"d\\\\\"", { "/x", "q\"d\\", NULL }, 1 },
		{ "/x \"a\\b\"", { "/x", "a\\b", NULL }, 1 },
		{ "/x a\\ b", { "/x", "a b", NULL }, 1 },
		{ "/x $HOME;rm *", { "/x", "$HOME;rm", "*", NULL }, 1 },
		{ "/x a'b'c", { "/x", "abc", NULL }, 1 },
		{ "/x ''", { "/x", "", NULL }, 1 },
		{ "x", { NULL }, 0 },			/* not absolute */
		{ "'/x", { NULL }, 0 },			/* unterminated */
		{ "/x \"a", { NULL }, 0 },
		{ "/x a\\", { NULL }, 0 },
		{ "/x a\nb", { NULL }, 0 },		/* control char */
	};
	struct as_err err;
	char **argv;
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		argv = NULL;
		if (!t[i].ok) {
			assert_int_equal(hook_split(t[i].in, &argv, &err), -1);
			assert_int_equal(err.code, AS_E_USAGE);
			assert_null(argv);
			continue;
		}
		assert_int_equal(hook_split(t[i].in, &argv, &err), 0);
		if (t[i].out[0] == NULL) {
			assert_null(argv);
			continue;
		}
		for (k = 0; t[i].out[k] != NULL; k++) {
			assert_non_null(argv[k]);
			assert_string_equal(argv[k], t[i].out[k]);
		}
		assert_null(argv[k]);
		hook_argv_free(argv);
	}
}

struct lines {
	int	n;
	char	v[8][HOOK_LINE_MAX + 1];
};

static void
collect(void *arg, const char *line)
{
	struct lines *l = arg;

	if (l->n < 8)
		snprintf(l->v[l->n], sizeof(l->v[0]), "%s", line);
	l->n++;
}

static void
test_run(void **state)
{
	char *argv[] = { "/bin/sh", "-c",
	    "echo \"$1 $AUTOSYNC_X\"; echo err >&2; printf tail; exit 3",
	    "sh", "arg one", NULL };
	char *env[] = { "AUTOSYNC_X=ex", NULL };
	char *missing[] = { "/nonexistent/hook", NULL };
	char *hang[] = { "/bin/sh", "-c", "sleep 30 & sleep 30", NULL };
	struct lines l;
	struct as_err err;
	struct timespec t0, t1;
	int status;

	(void)state;
	memset(&l, 0, sizeof(l));
	assert_int_equal(hook_run(argv, env, 10000, collect, &l, &status,
	    &err), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 3);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0], "arg one ex");
	assert_string_equal(l.v[1], "err");
	assert_string_equal(l.v[2], "tail");	/* no newline at the end */
	assert_null(getenv("AUTOSYNC_X"));	/* only the hook's */

	assert_int_equal(hook_run(missing, NULL, 10000, NULL, NULL, &status,
	    &err), -1);
	assert_int_equal(err.code, AS_E_NOTFOUND);
	assert_non_null(strstr(err.msg, "cannot be run"));

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(hook_run(hang, NULL, 300, NULL, NULL, &status,
	    &err), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(err.code, AS_E_TIMEOUT);
	assert_true(t1.tv_sec - t0.tv_sec < 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
