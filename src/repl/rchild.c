/* rchild.c - the receiving child of a local transfer; see rchild.h. */
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "repl/rchild.h"
#include "base/banned.h"

int
rchild_start(struct rchild *c, void (*fn)(void *, int, int), void *arg,
    struct as_err *err)
{
	int data[2], rep[2];

	c->pid = -1;
	c->data_fd = c->report_fd = -1;
	if (pipe2(data, O_CLOEXEC) == -1)
		return as_err_sys(err, errno, "pipe");
	/*
	 * A bigger pipe than the default 64 KiB: sender and receiver switch
	 * less often (a full copy moves the whole tree through it).  Not
	 * having it (a lower pipe-max-size) only costs time.
	 */
	(void)fcntl(data[1], F_SETPIPE_SZ, RCHILD_PIPE);
	if (pipe2(rep, O_CLOEXEC) == -1) {
		as_err_sys(err, errno, "pipe");
		close(data[0]);
		close(data[1]);
		return -1;
	}
	fflush(NULL);
	if ((c->pid = fork()) == -1) {
		as_err_sys(err, errno, "fork");
		close(data[0]);
		close(data[1]);
		close(rep[0]);
		close(rep[1]);
		return -1;
	}
	if (c->pid == 0) {
		close(data[1]);
		close(rep[0]);
		/* a sender that went away is an error to report, not a kill */
		signal(SIGPIPE, SIG_IGN);
		fn(arg, data[0], rep[1]);
		_exit(70);	/* fn must not return */
	}
	close(data[0]);
	close(rep[1]);
	c->data_fd = data[1];
	c->report_fd = rep[0];
	return 0;
}

void
rchild_exit(int report_fd, struct rchild_report *report, size_t len)
{
	if (report->rc == -1 && report->err.code == AS_E_OK)
		as_err_set(&report->err, AS_E_INTERNAL, 0, "receive failed");
	(void)io_write_full(report_fd, report, len);
	_exit(report->rc == 0 ? 0 : as_exit_code(report->err.code));
}

/*
 * A signal someone sent (RELIABILITY.md O5: the run failed for a reason
 * outside autosync, IO), as opposed to one the receiver raised itself
 * (SIGSEGV, SIGABRT: a bug, INTERNAL).
 */
static int
killed_from_outside(int sig)
{
	return sig == SIGKILL || sig == SIGTERM || sig == SIGINT ||
	    sig == SIGHUP || sig == SIGPIPE;
}

int
rchild_finish(struct rchild *c, struct rchild_report *report, size_t len,
    struct as_err *err)
{
	ssize_t n;
	int status;

	if (c->data_fd != -1) {
		close(c->data_fd);
		c->data_fd = -1;
	}
	memset(report, 0, len);
	n = io_read_full(c->report_fd, report, len);
	close(c->report_fd);
	c->report_fd = -1;
	while (waitpid(c->pid, &status, 0) == -1) {
		if (errno != EINTR)
			return as_err_sys(err, errno, "wait for the receiver");
	}
	if (n != (ssize_t)len) {
		memset(report, 0, len);
		report->rc = -1;
		if (WIFSIGNALED(status) && killed_from_outside(
		    WTERMSIG(status)))
			/* kill -9, the OOM killer, a shutdown: retry */
			as_err_set(&report->err, AS_E_IO, 0, "receiver killed "
			    "by signal %d (%s); the next run recovers the "
			    "destination", WTERMSIG(status),
			    strsignal(WTERMSIG(status)));
		else if (WIFSIGNALED(status))
			as_err_set(&report->err, AS_E_INTERNAL, 0,
			    "receiver killed by signal %d (%s)",
			    WTERMSIG(status), strsignal(WTERMSIG(status)));
		else
			as_err_set(&report->err, AS_E_INTERNAL, 0,
			    "receiver exited with status %d without a report",
			    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	} else if (report->rc == 0 && (!WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)) {
		report->rc = -1;
		as_err_set(&report->err, AS_E_INTERNAL, 0,
		    "receiver failed after its report");
	}
	return 0;
}

int
rchild_verdict(const struct rchild_report *r, int src_rc,
    const struct as_err *serr, const char *src_name, const char *dst_name,
    struct as_err *err)
{
	if (r->rc == 0) {
		if (src_rc == -1) {
			/* committed anyway; the caller records it */
			*err = *serr;
			return 1;
		}
		return 0;
	}
	/*
	 * A receiver that saw its stream end early failed because the
	 * sender did: say why the sender stopped.  Any other receiver
	 * failure came first, and the sender's error (EPIPE) is its echo.
	 */
	if (src_rc == -1 && serr->sys_errno != EPIPE &&
	    r->err.code == AS_E_TRUNCATED) {
		*err = *serr;
		return as_err_prefix(err, "send '%s'", src_name);
	}
	*err = r->err;
	return as_err_prefix(err, "receive '%s'", dst_name);
}
