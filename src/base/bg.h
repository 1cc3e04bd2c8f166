/*
 * bg.h - one function run beside the caller, joined later.
 *
 * The native drivers spend most of a run waiting for `zfs` commands, each
 * a round trip to the daemon (20-30 ms on zfs-fuse) whatever its work;
 * independent ones (a hold and the new snapshot, a listing and a send)
 * cost one wait instead of two when they overlap.  A job is a function
 * and its argument; bg_start runs it on a thread, or at once on the
 * caller's when no thread can be made, so a caller never has to handle
 * that case.  Every started job must be joined (bg_join), exactly once:
 * the function's children are reaped by the thread that forked them
 * (see proc.h on PR_SET_PDEATHSIG), so a job must not leave any running.
 */
#ifndef AS_BG_H
#define AS_BG_H

#include <pthread.h>

#include "base/err.h"

struct bg_job {
	int		(*fn)(void *arg, struct as_err *err);
	void		 *arg;
	struct as_err	  err;
	int		  rc;
	int		  started;	/* started and not joined */
	int		  threaded;
	pthread_t	  th;
};

/* Run fn(arg) beside the caller; j must stay in place until joined. */
void	bg_start(struct bg_job *j, int (*fn)(void *, struct as_err *),
	    void *arg);

/*
 * Wait up to ms for j to end: 1 when it has (bg_join then returns at
 * once), 0 when it still runs.  For a caller with something to do
 * meanwhile (a server that keeps its client informed, serve.c).
 */
int	bg_wait(struct bg_job *j, int ms);

/*
 * Wait for j: its fn's return value, with its error copied to err (when
 * not NULL) on -1.  A job never started, or already joined, returns 0.
 */
int	bg_join(struct bg_job *j, struct as_err *err);

#endif
