/*
 * t_io.c - the named fault sites of base/io.h, each in a forked child
 * (AUTOSYNC_FAULT is read once per process): an errno at the nth call,
 * KILL (the child dies of SIGKILL there), and STOP (the child stops there,
 * seen by waitpid WUNTRACED, and once continued the call returns 0).
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/io.h"
#include "base/banned.h"

/*
 * Fork a child that sets AUTOSYNC_FAULT to spec and calls
 * io_fault("here") three times and io_fault("elsewhere") once; it exits
 * with 10 * (the call that returned non-zero, 0 if none) + (its value
 * == ENOSPC).  Returns the pid.
 */
static pid_t
child(const char *spec)
{
	pid_t pid;
	int i, hit = 0, e, nospc = 0;

	pid = fork();
	assert_true(pid != -1);
	if (pid != 0)
		return pid;
	if (setenv("AUTOSYNC_FAULT", spec, 1) == -1)
		_exit(99);
	if (io_fault("elsewhere") != 0)
		_exit(98);
	for (i = 1; i <= 3; i++) {
		if ((e = io_fault("here")) != 0 && hit == 0) {
			hit = i;
			nospc = e == ENOSPC;
		}
	}
	_exit(hit * 10 + nospc);
}

static void
test_errno(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = child("here:ENOSPC:2");
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 21);
}

static void
test_kill(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = child("here:KILL");
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
}

/* Stopped at the site; continued, it goes on as if no fault was set. */
static void
test_stop(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = child("here:STOP:3");
	assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
	assert_true(WIFSTOPPED(status));
	assert_int_equal(WSTOPSIG(status), SIGSTOP);
	assert_int_equal(kill(pid, SIGCONT), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* SLEEPn: the call waits n seconds, then returns 0 like no fault. */
static void
test_sleep(void **state)
{
	struct timespec t0, t1;
	int status;
	pid_t pid;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = child("here:SLEEP1:2");
	assert_int_equal(waitpid(pid, &status, 0), pid);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000000000L +
	    (t1.tv_nsec - t0.tv_nsec) >= 1000000000L);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errno),
		cmocka_unit_test(test_kill),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_sleep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
