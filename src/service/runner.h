/*
 * runner.h - the body of one run of a service, in the process that does
 * it (the daemon's child, or `autosync run` in the foreground): the pre
 * hook, the sync step with the service's retention, the '-latest' name,
 * the post hook.  It never touches the store: what it needs is read
 * before (runner_props_load) and what it says goes through a log
 * callback, with a level that the receiver compares with the service's
 * trace_level at the time the line arrives, so that a changed
 * trace_level takes effect on a running run.
 *
 * Trace levels (trace_level):
 *	0  failures only (a failed run, a failed post hook)
 *	1  and one line per run (the default)
 *	2  and the run's details: snapshot and base, counts, pruning, the
 *	   '-latest' name, hooks, rate changes
 *	3  and timings and the hooks' output; the run's own debug log on
 *	   the daemon's standard error
 *
 * Retention (dir engine): keep_src N keeps the newest N of autosync's own
 * snapshots (autosync_*) in the source's catalogs, besides those a
 * destination holds (the newest common snapshot) and the user's; 0
 * keeps them all.  A directory destination holds one snapshot, the
 * newest: keep_dst may be 0 or 1 (the same), more is refused (USAGE).
 * On a local zfs: or btrfs: side the same counts apply to its native
 * snapshots: keep_src on the source, keep_dst on the destination (0:
 * all); only autosync_* go, never the newest common one, a user's, or
 * (ZFS) one with a hold.  A remote side prunes as its server does.
 *
 * latest: after a good run the new snapshot is also reachable as
 * NAME-latest in the source's catalogs (a local source; a pull's source
 * catalogs are on the server and get none).  A directory destination is
 * itself its newest snapshot: there is nothing to add there.  On zfs:
 * and btrfs: sides (both) see latest.h: a user property on ZFS, a
 * symbolic link in the snapshot directory on btrfs.
 */
#ifndef AS_RUNNER_H
#define AS_RUNNER_H

#include <stdint.h>

#include "base/err.h"
#include "repl/remote.h"
#include "service/store.h"

enum {
	RUN_LOG_ERROR = 0,
	RUN_LOG_RUN,
	RUN_LOG_DETAIL,
	RUN_LOG_DEBUG,
};

#define RUNNER_TRACE_MAX	3
#define RUNNER_HOOK_TIMEOUT_MS	(300 * 1000)
#define RUNNER_LATEST_SUFFIX	"-latest"

/* The service's settings for one run, read from the store. */
struct runner_props {
	int		 trace;		/* trace_level, for the run's own log */
	unsigned	 keep_src;	/* 0: all */
	unsigned	 keep_dst;	/* 0 or 1 for directories */
	int		 latest;	/* 1: NAME-latest */
	int		 recursive;	/* 0: -N (SYNC_NO_RECURSE) */
	char		*pre_hook;	/* spec, or NULL */
	char		*post_hook;
	int64_t		 hook_timeout_ms;
	int64_t		 full_scan_ms;	/* full_scan_interval */
	char		*trust;		/* trust: a btrfs pull's trusted
					 * sender host, or NULL */
	struct remote_opts ro;		/* rate limit, compression, key
					 * files (allocated, or NULL) */
	int		 sync_flags;	/* SYNC_* (not a property: reverse) */
};

/* How a run ended: what the child writes to the daemon. */
struct runner_result {
	int		 code;		/* enum as_errcode; AS_E_OK: success */
	int		 sys_errno;
	uint64_t	 bytes;
	char		 msg[AS_ERR_MSGMAX];
};

typedef void	(*runner_log_fn)(void *arg, int level, const char *msg);

struct runner {
	const char	*state_dir;
	const char	*name;		/* the service */
	const char	*source;
	const char	*dest;
	int64_t		 run_id;
	struct runner_props p;
	runner_log_fn	 log;
	void		*log_arg;
	/*
	 * Rate limit changes from the daemon: 8-byte bytes/s values, read
	 * by a thread of the run into runner_rate_live(); -1: none.
	 */
	int		 rate_fd;
	/*
	 * Continuous services with a change journal (changes.h): what
	 * changed since the last run; the scan is narrowed to it
	 * (dir_scan_narrow).  changed_full < 0: no journal; 1: scan
	 * everything (a new journal, an overflow, a mount); 2: the same,
	 * because full_scan_interval has passed; 0: the list.
	 */
	int		 changed_full;
	char		**changed;
	size_t		 nchanged;
	/* the same for a local destination: its drift check */
	int		 dchanged_full;
	char		**dchanged;
	size_t		 ndchanged;
};

int	runner_props_load(struct store *st, const char *name,
	    struct runner_props *p, struct as_err *err);
/*
 * The same from a list of set properties (store_prop_list; the unset
 * ones take their defaults): the daemon's last valid configuration of
 * a service whose stored one is invalid.
 */
int	runner_props_load_list(const struct store_prop *v, size_t n,
	    struct runner_props *p, struct as_err *err);
void	runner_props_release(struct runner_props *p);

/*
 * Check the settings that depend on the endpoints (keep_dst against the
 * destination's engine); USAGE with the reason.
 */
int	runner_check(const char *dest, unsigned keep_dst, struct as_err *err);
/*
 * keep_src other than 1 is obeyed for a local directory source only (its
 * catalogs are here); elsewhere USAGE rather than a setting nothing
 * obeys.
 */
int	runner_check_src(const char *src, unsigned keep_src,
	    struct as_err *err);

/*
 * key_file, cert_file and ca_file against the endpoints (remote_opts):
 * a tcp:// endpoint needs key_file, a PSK that key_load accepts (mode
 * 0600); a tls:// one needs all three, readable, the key not readable by
 * group or other.  Other endpoints take none of them (USAGE).  Empty
 * strings and NULL are "not set".  Errors are one line naming the
 * property and the file.
 */
int	runner_check_auth(const char *src, const char *dst, const char *key,
	    const char *cert, const char *ca, struct as_err *err);

/* One run; res says how it ended. */
void	runner_run(struct runner *r, struct runner_result *res);

/*
 * The rate limit of the running transfer as last sent by the daemon
 * (bytes/s, 0: unlimited), or UINT64_MAX when none was sent: for the
 * transport's pump to apply with ratelimit_set().
 */
uint64_t runner_rate_live(void);

/* Remove NAME-latest from src's catalogs (destroy, latest=off). */
int	runner_drop_latest(const char *state_dir, const char *name,
	    const char *src, struct as_err *err);

#endif
