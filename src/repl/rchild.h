/*
 * rchild.h - the receiving side of a local transfer, in a child process.
 *
 * A local sync runs the receiver in a forked child that reads a pipe and
 * the sender in the parent that writes it, exactly as the two sides of a
 * network transfer.  The child writes one fixed-size report back through
 * a second pipe; every report starts with struct rchild_report.  These
 * helpers own the pipes, the fork and the reaping, and decide whose error
 * explains a failure (the receiver's, unless it only saw the stream end
 * early because the sender stopped).
 */
#ifndef AS_RCHILD_H
#define AS_RCHILD_H

#include <stddef.h>
#include <sys/types.h>

#include "base/err.h"

/* The first member of every child report. */
struct rchild_report {
	int		rc;	/* 0: the receiver committed */
	struct as_err	err;	/* why not */
};

struct rchild_watch;

/* The stream pipe's size (F_SETPIPE_SZ; the default is 64 KiB). */
#define RCHILD_PIPE	(1 << 20)

struct rchild {
	pid_t	pid;
	int	data_fd;	/* write end of the stream pipe, or -1 */
	int	report_fd;	/* read end of the report pipe */
	struct rchild_watch *watch;	/* rchild_watch's, or NULL */
	int	fired;		/* the watch killed the child ... */
	char	fired_state;	/* ... in this state ('T': stopped) ... */
	int	fired_idle_ms;	/* ... after this long */
};

/*
 * Fork a child that runs fn(arg, stream_fd, report_fd) and never returns
 * (it ends with rchild_exit).  In the parent, c->data_fd is where the
 * stream goes.  Returns 0, or -1 with err (nothing left open).
 */
int	rchild_start(struct rchild *c, void (*fn)(void *, int, int),
	    void *arg, struct as_err *err);
/*
 * The idle timeout of a local transfer, as a connection has one
 * (conn.h): from now until rchild_finish, a thread looks at the stream
 * pipe and the child every RCHILD_WATCH_TICK_MS.  When the pipe holds
 * bytes the child has not taken and the child used no CPU and read or
 * wrote nothing (/proc/PID/stat, io) for idle_ms (it is stopped, or
 * stuck in the kernel), the thread kills it
 * (SIGKILL): the sender's next write fails (EPIPE) and rchild_finish
 * reports TIMEOUT.  Call it after any copy of *c is made.  Returns 0,
 * or -1 with err (nothing watches then).  Once the child has taken the
 * whole stream, its report is waited for without a deadline: a child
 * stopped while it commits is not timed out.
 */
#define RCHILD_WATCH_TICK_MS	250
int	rchild_watch(struct rchild *c, int idle_ms, struct as_err *err);
/* In the child: complete the report, write it, exit with its code. */
void	rchild_exit(int report_fd, struct rchild_report *report, size_t len)
	    __attribute__((noreturn));
/*
 * In the parent, once the sender is done: close the stream (the child
 * reads its end), read the report of len bytes and reap the child.  A
 * child that died without a complete report, or failed after reporting
 * success, gets a failed report with an INTERNAL error; one that the watch
 * killed (rchild_watch), a TIMEOUT.  Before the stream is closed it waits
 * for the child to take what is left in the pipe (the watch still on).
 * Returns 0, or -1 with err if the child could not be waited for.
 */
int	rchild_finish(struct rchild *c, struct rchild_report *report,
	    size_t len, struct as_err *err);
/*
 * The first half of rchild_finish, for a caller that has something to do
 * while the child commits (a server keeps its peer informed,
 * proto_keepalive_until): wait for the child to take what is left in the
 * pipe, end the watch and close the stream.  rchild_finish then only
 * reads the report and reaps.
 */
void	rchild_end_stream(struct rchild *c);
/*
 * The transfer's outcome from the report and the sender's result:
 * 0 committed; 1 committed but the sender failed afterwards (err is the
 * sender's); -1 failed (err explains it, prefixed with the side's name).
 */
int	rchild_verdict(const struct rchild_report *r, int src_rc,
	    const struct as_err *serr, const char *src_name,
	    const char *dst_name, struct as_err *err);

#endif
