/* rchild.c - the receiving child of a local transfer; see rchild.h. */
#include <sys/ioctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/io.h"
#include "base/log.h"
#include "base/proc.h"
#include "base/xmalloc.h"
#include "repl/rchild.h"
#include "base/banned.h"

int
rchild_start(struct rchild *c, void (*fn)(void *, int, int), void *arg,
    struct as_err *err)
{
	int data[2], rep[2];
	pid_t parent = getpid();

	c->pid = -1;
	c->data_fd = c->report_fd = -1;
	c->watch = NULL;
	c->fired = 0;
	c->fired_state = '?';
	c->fired_idle_ms = 0;
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
		/* a killed sync takes its receiver along (§F 69) */
		if (proc_die_with_parent(parent) == -1)
			_exit(70);
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

struct rchild_watch {
	pthread_t	tid;
	pid_t		pid;
	int		fd;		/* the stream pipe's write end */
	int		stop[2];	/* a byte or EOF on stop[0]: stop */
	int		idle_ms;
	int		fired;		/* __atomic: the child was killed */
	char		state;		/* its state then ('T': stopped) */
};


/* Read /proc/PID/NAME into buf (NUL-terminated); -1 if gone. */
static int
proc_read(pid_t pid, const char *name, char *buf, size_t sz)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sz - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/*
 * pid's state letter and a number that moves whenever it does anything:
 * its CPU time (utime + stime, in ticks) plus its I/O counters (bytes
 * and calls of read and write: a reader that takes a little from a full
 * pipe now and then uses less than a tick of CPU).  -1 if it is gone.
 */
static int
proc_activity(pid_t pid, char *state, unsigned long long *act)
{
	char buf[1024], *p;
	unsigned long long ut, st, v;
	const char *keys[] = { "rchar:", "wchar:", "syscr:", "syscw:" };
	size_t i;

	if (proc_read(pid, "stat", buf, sizeof(buf)) == -1)
		return -1;
	/* after "pid (comm) ": state, then utime and stime are 12th, 13th */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 1, " %c %*d %*d "
	    "%*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", state, &ut,
	    &st) != 3)
		return -1;
	*act = ut + st;
	if (proc_read(pid, "io", buf, sizeof(buf)) == -1)
		return 0;	/* no I/O accounting: CPU time alone */
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((p = strstr(buf, keys[i])) != NULL &&
		    sscanf(p + strlen(keys[i]), " %llu", &v) == 1)
			*act += v;
	return 0;
}

/*
 * No progress: bytes wait in the pipe, their count does not move and the
 * child neither uses CPU nor reads or writes anything.  An empty pipe is
 * the sender's turn, not the child's, and a busy child (a long drift
 * check, a large apply) moves its counters.
 */
static void *
watch_main(void *arg)
{
	struct rchild_watch *w = arg;
	struct pollfd p;
	unsigned long long act, last_act = 0;
	int64_t since = mono_ms();
	int q, last_q = -1;
	char state = '?';

	for (;;) {
		p.fd = w->stop[0];
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, RCHILD_WATCH_TICK_MS) != 0) {
			if (p.revents == 0 && errno == EINTR)
				continue;
			break;
		}
		if (ioctl(w->fd, FIONREAD, &q) == -1 ||
		    proc_activity(w->pid, &state, &act) == -1)
			break;	/* the child is gone: rchild_finish says so */
		if (q == 0 || q != last_q || act != last_act)
			since = mono_ms();
		else if (mono_ms() - since >= w->idle_ms) {
			w->state = state;
			__atomic_store_n(&w->fired, 1, __ATOMIC_SEQ_CST);
			(void)kill(w->pid, SIGKILL);
			break;
		}
		last_q = q;
		last_act = act;
	}
	return NULL;
}

int
rchild_watch(struct rchild *c, int idle_ms, struct as_err *err)
{
	struct rchild_watch *w;
	int e;

	if (c->pid <= 0 || c->data_fd == -1 || idle_ms <= 0)
		return 0;
	w = xcalloc(1, sizeof(*w));
	w->pid = c->pid;
	w->fd = c->data_fd;
	w->idle_ms = idle_ms;
	if (pipe2(w->stop, O_CLOEXEC) == -1) {
		free(w);
		return as_err_sys(err, errno, "pipe");
	}
	if ((e = pthread_create(&w->tid, NULL, watch_main, w)) != 0) {
		close(w->stop[0]);
		close(w->stop[1]);
		free(w);
		return as_err_sys(err, e, "start the receiver's watch");
	}
	c->watch = w;
	return 0;
}

/*
 * Before the stream is closed: until the child took what is left in the
 * pipe, reported or exited, or the watch killed it.  A stopped child
 * would otherwise keep the last bytes, and the report read would wait
 * for ever.
 */
static void
watch_drain(struct rchild *c)
{
	struct pollfd p;
	int q, ms;

	for (ms = 1; !__atomic_load_n(&c->watch->fired, __ATOMIC_SEQ_CST);
	    ms = ms < 32 ? ms * 2 : ms) {
		if (ioctl(c->data_fd, FIONREAD, &q) == -1 || q == 0)
			return;
		p.fd = c->report_fd;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, ms) > 0)
			return;
	}
}

/* Stop and free the watch; 1 if it killed the child (*state: how). */
static int
watch_end(struct rchild *c, char *state)
{
	struct rchild_watch *w = c->watch;
	int fired;

	if (w == NULL)
		return 0;
	close(w->stop[1]);
	(void)pthread_join(w->tid, NULL);
	close(w->stop[0]);
	fired = w->fired;
	*state = w->state;
	if (fired)
		log_debug("receiver %ld took nothing for %d ms (state %c): "
		    "killed", (long)w->pid, w->idle_ms, w->state);
	c->watch = NULL;
	free(w);
	return fired;
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

void
rchild_end_stream(struct rchild *c)
{
	char state = '?';

	if (c->watch != NULL) {
		c->fired_idle_ms = c->watch->idle_ms;
		if (c->data_fd != -1)
			watch_drain(c);
		if (watch_end(c, &state)) {
			c->fired = 1;
			c->fired_state = state;
		}
	}
	if (c->data_fd != -1) {
		close(c->data_fd);
		c->data_fd = -1;
	}
}

int
rchild_finish(struct rchild *c, struct rchild_report *report, size_t len,
    struct as_err *err)
{
	ssize_t n;
	int status, fired, idle_ms;
	char state;

	rchild_end_stream(c);
	fired = c->fired;
	state = c->fired_state;
	idle_ms = c->fired_idle_ms;
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
		if (fired)
			/* the same class as a connection's idle timeout */
			as_err_set(&report->err, AS_E_TIMEOUT, 0, "the "
			    "receiver took nothing from the stream for %d s "
			    "(%s): killed it; the next run recovers the "
			    "destination", (idle_ms + 999) / 1000,
			    state == 'T' || state == 't' ? "it was stopped" :
			    "stuck");
		else if (WIFSIGNALED(status) && killed_from_outside(
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
