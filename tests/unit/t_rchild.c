/*
 * t_rchild.c - the receiving child's watch (repl/rchild.h, §F 69): a
 * child that stops itself before it reads is killed after idle_ms and
 * reported as TIMEOUT; one that reads slowly but steadily is not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/io.h"
#include "repl/rchild.h"
#include "base/banned.h"

struct report {
	struct rchild_report	hdr;
};

/* Stops itself before it reads: the pipe fills and stays full. */
static void
stopped_child(void *arg, int in_fd, int report_fd)
{
	struct report r;

	(void)arg;
	raise(SIGSTOP);
	memset(&r, 0, sizeof(r));
	(void)in_fd;
	rchild_exit(report_fd, &r.hdr, sizeof(r));
}

/* Reads everything, 64 KiB every 50 ms, then reports success. */
static void
slow_child(void *arg, int in_fd, int report_fd)
{
	struct timespec ts = { 0, 50 * 1000000L };
	struct report r;
	static char b[65536];

	(void)arg;
	while (io_read_full(in_fd, b, sizeof(b)) > 0)
		(void)nanosleep(&ts, NULL);
	memset(&r, 0, sizeof(r));
	rchild_exit(report_fd, &r.hdr, sizeof(r));
}

/* Write n bytes to fd; -1 with errno at the first failure. */
static int
feed(int fd, size_t n)
{
	static char b[65536];
	size_t k;

	for (; n > 0; n -= k) {
		k = n < sizeof(b) ? n : sizeof(b);
		if (io_write_full(fd, b, k) == -1)
			return -1;
	}
	return 0;
}

static void
test_stopped(void **state)
{
	struct rchild c;
	struct report r;
	struct as_err err;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(rchild_start(&c, stopped_child, NULL, &err), 0);
	assert_int_equal(rchild_watch(&c, 500, &err), 0);
	/* blocks on the full pipe until the watch kills the child */
	assert_int_equal(feed(c.data_fd, 8 << 20), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(rchild_finish(&c, &r.hdr, sizeof(r), &err), 0);
	assert_int_equal(r.hdr.rc, -1);
	assert_int_equal(r.hdr.err.code, AS_E_TIMEOUT);
	assert_non_null(strstr(r.hdr.err.msg, "it was stopped"));
}

static void
test_slow(void **state)
{
	struct rchild c;
	struct report r;
	struct as_err err;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(rchild_start(&c, slow_child, NULL, &err), 0);
	/* 2 MiB at 64 KiB per 50 ms: longer than idle_ms, never idle */
	assert_int_equal(rchild_watch(&c, 600, &err), 0);
	assert_int_equal(feed(c.data_fd, 2 << 20), 0);
	assert_int_equal(rchild_finish(&c, &r.hdr, sizeof(r), &err), 0);
	assert_int_equal(r.hdr.rc, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stopped),
		cmocka_unit_test(test_slow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
