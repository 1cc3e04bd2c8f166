/*
 * t_flusher.c - base/flusher.h: a flusher calls syncfs on its period
 * until stopped, stops at once (not at the end of a period), and is a
 * no-op where it could not start.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/clock.h"
#include "base/flusher.h"
#include "base/banned.h"

static void
test_rounds_and_prompt_stop(void **state)
{
	char dir[] = "/tmp/t_flusher.XXXXXX", path[64], buf[65536];
	struct flusher f;
	int64_t t0;
	int fd, i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	memset(buf, 'x', sizeof(buf));
	flusher_start(&f, dir, 40);
	assert_int_equal(f.running, 1);
	/* dirty data for it to write back, over several periods */
	for (i = 0; i < 8; i++) {
		assert_int_equal(write(fd, buf, sizeof(buf)),
		    (ssize_t)sizeof(buf));
		usleep(40000);
	}
	close(fd);
	/* a long period: stop must not wait for it to end */
	pthread_mutex_lock(&f.mu);
	f.every_ms = 60000;
	pthread_mutex_unlock(&f.mu);
	usleep(60000);
	t0 = mono_ms();
	flusher_stop(&f);
	assert_true(mono_ms() - t0 < 5000);
	assert_true(f.rounds >= 3);
	assert_int_equal(f.running, 0);
	flusher_stop(&f);		/* stopped already: nothing */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void
test_no_directory(void **state)
{
	struct flusher f;

	(void)state;
	flusher_start(&f, "/nonexistent/t_flusher", 10);
	assert_int_equal(f.running, 0);
	flusher_stop(&f);
	assert_int_equal(f.rounds, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rounds_and_prompt_stop),
		cmocka_unit_test(test_no_directory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
