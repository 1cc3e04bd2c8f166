/*
 * supervisor.h - running services: one run in the foreground, or the
 * daemon that runs every service on its schedule.
 *
 * A run is one sync_run() (repl/sync.h) from the service's source to its
 * destination, in a child process, under the service's lock
 * (run/NAME.lock in the state directory, flock), so that runs of one
 * service never overlap, whoever starts them.  Each run is a row in the
 * store from its start; a run that never ended (the daemon or the run was
 * killed) is marked interrupted when the daemon starts, and the next run
 * recovers the destination itself (sync_run step 1).
 *
 * After a run: success -> online (done for a once schedule); a TEMP error
 * -> online with a retry after an exponential back-off with jitter
 * (sched_backoff); a PERM error, or as many failures in a row as the
 * retries property -> maintenance, until `clear`.  A CONFLICT "busy"
 * (another process holds the source's catalogs) counts as TEMP.
 *
 * Intervals (every without at, continuous, back-off) are measured on the
 * monotonic clock; only at, cron and once read the wall clock, and then
 * never catch up more than one missed run.
 */
#ifndef AS_SUPERVISOR_H
#define AS_SUPERVISOR_H

#include <stdint.h>

#include "base/err.h"
#include "service/store.h"

#define SUPERVISOR_BACKOFF_BASE_MS	1000
#define SUPERVISOR_BACKOFF_CAP_MS	(5 * 60 * 1000)

/* "$state/autosync.db", "$state/autosync.sock": allocated. */
char	*supervisor_db_path(const char *state_dir);
char	*supervisor_sock_path(const char *state_dir);

/*
 * Open the store of state_dir (creating the directory, mode 0700).
 */
struct store *supervisor_open_store(const char *state_dir,
	    struct as_err *err);

/* What a finished run reports. */
struct supervisor_run {
	int64_t		 run_id;
	int64_t		 ms;		/* duration */
	uint64_t	 bytes;
	enum svc_state	 state;		/* the service's state after it */
};

/*
 * Run service name once now, in this process (its child does the sync),
 * recorded in the store like a daemon's run.  Refused (CONFLICT) in
 * maintenance or while another run holds the lock.  Returns 0, or -1
 * with the run's error in err (out is filled either way once the run
 * started).
 */
int	supervisor_run_now(struct store *st, const char *state_dir,
	    const char *name, struct supervisor_run *out, struct as_err *err);
/* The same with sync flags (SYNC_FORCE: reverse --force). */
int	supervisor_run_flags(struct store *st, const char *state_dir,
	    const char *name, int sync_flags, struct supervisor_run *out,
	    struct as_err *err);

/*
 * Take service name's run lock (run/NAME.lock) for a command that must
 * not overlap a run (reverse): a descriptor to close, or -1 with
 * CONFLICT "busy".
 */
int	supervisor_lock(const char *state_dir, const char *name,
	    struct as_err *err);

/* The daemon's progress, for the CLI to log (may be NULL). */
typedef void	(*supervisor_note_fn)(const char *msg);

/*
 * The daemon, in the foreground: refuses to start when another daemon
 * holds state_dir's daemon.lock (CONFLICT), recovers interrupted runs,
 * listens on the control socket and runs services until SIGTERM or
 * SIGINT, which stop the running children (their runs are recorded as
 * interrupted; the next run recovers them).  Returns 0 after such a
 * stop, or -1 with err.
 */
int	supervisor_daemon(const char *state_dir, supervisor_note_fn note,
	    struct as_err *err);
/*
 * The same, also serving the services' metrics (metrics.h) over HTTP on
 * the loopback address metrics ("PORT", "127.0.0.1:PORT"...) when it is
 * not NULL: GET /metrics, one request per connection.
 */
int	supervisor_daemon_metrics(const char *state_dir, const char *metrics,
	    supervisor_note_fn note, struct as_err *err);

#endif
