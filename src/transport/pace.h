/*
 * pace.h - the rate limit and progress of a transfer within this machine:
 * both sides local, joined by a pipe between two processes or by one
 * process's buffers, where remote.c's poll loop does not run.
 *
 * rsync's --bwlimit and syncoid's mbuffer limit a local copy too: a
 * backup to a second disk should not take all of it.  So --rate-limit,
 * a service's rate_limit (followed live, as over a connection) and
 * --progress apply here with the same token bucket (ratelimit.h) and the
 * same progress line (progress.h).  What is counted is the stream: the
 * bytes that go from sender to receiver, as on the wire.
 *
 * Blocking, for the thread that moves the bytes: pace_take() sleeps until
 * a chunk may go and says how large, pace_moved() counts what went.
 * Several threads may share one pace (a ZFS tree's streams): the limit
 * and the count are the sum of theirs.  An
 * inactive pace (no limit, no progress) costs a branch: callers keep
 * their fast paths (pace_active).
 *
 * pace_relay: a thread that moves a pipe's bytes on to out_fd under a
 * pace, for a sender and a receiver that would otherwise share one pipe
 * (btrfs send | btrfs receive, a dir sender and its receiving child).
 */
#ifndef AS_PACE_H
#define AS_PACE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "transport/progress.h"
#include "transport/ratelimit.h"

struct pace {
	pthread_mutex_t	 mu;		/* several streams may share a pace */
	struct ratelimit rl;
	uint64_t	(*rate_live)(void);	/* NULL, or remote.h's */
	uint64_t	 live_ns;	/* when rate_live was last asked */
	struct progress	 pg;
	uint64_t	 bytes;		/* moved so far (when active) */
};

/*
 * rate: bytes/s, 0 none; rate_live: a service's changing limit (see
 * remote_opts), NULL none; mode: the progress line, on stderr; total:
 * the bytes expected, 0 unknown.
 */
void	pace_init(struct pace *p, uint64_t rate, uint64_t (*rate_live)(void),
	    enum progress_mode mode, uint64_t total);
/* Does p limit or show anything? */
int	pace_active(const struct pace *p);
/*
 * Should a stream that could go straight from sender to receiver (one
 * pipe) go through a relay for p?  When a limit is in force or progress
 * is shown; not for a live limit that is none now (a service's run,
 * unlimited): the relay would cost every such run a copy, so it takes a
 * new limit at its next run.
 */
int	pace_wants_relay(const struct pace *p);
/* Sleep until some of want (> 0) may move; returns how much (<= want). */
size_t	pace_take(struct pace *p, size_t want);
/* n bytes moved. */
void	pace_moved(struct pace *p, uint64_t n);
/* The transfer ended: the progress line's last state; p is released. */
void	pace_finish(struct pace *p);

struct pace_relay {
	struct pace	*p;
	int		 in;		/* the pipe's read end */
	int		 out;
	pthread_t	 th;
	int		 started;
	int		 err;		/* errno of a failed splice, or 0 */
};

/*
 * A pipe whose write end (*write_fd, the sender's to write and close)
 * the relay's thread reads, moving the bytes to out_fd under p until end
 * of file.  out_fd is the relay's: closed when it ends, so its reader
 * sees end of file; when out_fd fails (its reader went away) the pipe's
 * read end is closed too, so that the sender gets EPIPE, not a hang.
 * p is used by the thread until pace_relay_finish.  -1 (err) with
 * nothing started and out_fd closed.
 */
int	pace_relay_start(struct pace_relay *r, struct pace *p, int out_fd,
	    int *write_fd, struct as_err *err);
/*
 * Wait for the relay to end (the sender must have closed its write end).
 * 0, or -1 with errno set to why a splice failed.
 */
int	pace_relay_finish(struct pace_relay *r);

#endif
