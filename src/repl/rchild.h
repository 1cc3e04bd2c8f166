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

/* The stream pipe's size (F_SETPIPE_SZ; the default is 64 KiB). */
#define RCHILD_PIPE	(1 << 20)

struct rchild {
	pid_t	pid;
	int	data_fd;	/* write end of the stream pipe, or -1 */
	int	report_fd;	/* read end of the report pipe */
};

/*
 * Fork a child that runs fn(arg, stream_fd, report_fd) and never returns
 * (it ends with rchild_exit).  In the parent, c->data_fd is where the
 * stream goes.  Returns 0, or -1 with err (nothing left open).
 */
int	rchild_start(struct rchild *c, void (*fn)(void *, int, int),
	    void *arg, struct as_err *err);
/* In the child: complete the report, write it, exit with its code. */
void	rchild_exit(int report_fd, struct rchild_report *report, size_t len)
	    __attribute__((noreturn));
/*
 * In the parent, once the sender is done: close the stream (the child
 * reads its end), read the report of len bytes and reap the child.  A
 * child that died without a complete report, or failed after reporting
 * success, gets a failed report with an INTERNAL error.  Returns 0, or -1
 * with err if the child could not be waited for.
 */
int	rchild_finish(struct rchild *c, struct rchild_report *report,
	    size_t len, struct as_err *err);
/*
 * The transfer's outcome from the report and the sender's result:
 * 0 committed; 1 committed but the sender failed afterwards (err is the
 * sender's); -1 failed (err explains it, prefixed with the side's name).
 */
int	rchild_verdict(const struct rchild_report *r, int src_rc,
	    const struct as_err *serr, const char *src_name,
	    const char *dst_name, struct as_err *err);

#endif
