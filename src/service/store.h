/*
 * store.h - everything the service knows, in one SQLite database
 * (autosync.db in the state directory): services and their settable
 * properties, runs and events.
 *
 * The database is opened in WAL mode with synchronous=FULL, so that an
 * acknowledged change survives a crash or power loss (RELIABILITY.md
 * §F 61).  The schema carries its version in schema_version; opening
 * migrates an older database forward in one transaction and refuses a
 * newer one (UNSUPPORTED).  Every statement is prepared with bound
 * parameters: no text is ever interpolated into SQL.
 *
 * Times are milliseconds since the epoch (UTC); -1 is "never".  Every
 * function returns 0 (or a pointer) on success and -1 (or NULL) with err:
 * NOTFOUND for an unknown service, CONFLICT for a duplicate name, USAGE
 * for a bad value, IO (NOSPACE for SQLITE_FULL) for a database failure.
 */
#ifndef AS_STORE_H
#define AS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define STORE_VERSION	1	/* the schema this build writes */
#define STORE_DB_NAME	"autosync.db"
#define SVC_NAME_MAX	64

enum svc_state {
	SVC_ONLINE = 0,		/* scheduled */
	SVC_RUNNING,		/* a run is in progress */
	SVC_DISABLED,		/* not scheduled (disable) */
	SVC_MAINTENANCE,	/* parked after a permanent error or retries */
	SVC_DONE,		/* a once schedule that has run */
};

/* One service: its definition and what its runs left behind. */
struct svc {
	int64_t		 id;
	char		*name;
	char		*source;	/* endpoint spec */
	char		*dest;		/* endpoint spec */
	char		*schedule;	/* canonical (sched.h) */
	enum svc_state	 state;
	int64_t		 created;
	int64_t		 next_run;	/* -1: none planned */
	int64_t		 last_start;	/* of the last finished run */
	int64_t		 last_end;
	int64_t		 last_success;	/* end of the last good run */
	char		*last_error;	/* message, or NULL */
	char		*last_errcode;	/* "IO", ..., or NULL */
	uint64_t	 successes;
	uint64_t	 failures;
	uint64_t	 consecutive;	/* failures since the last success */
	uint64_t	 bytes_sent;	/* by the last run */
};

/* How a run ended, for store_run_end(). */
struct run_result {
	int64_t		 ended;
	int		 ok;		/* 1 success, 0 failure */
	enum as_errcode	 code;		/* failure: its code */
	const char	*msg;		/* failure: one line */
	uint64_t	 bytes;		/* stream bytes sent */
	int		 quiet;		/* success: no event (trace_level 0) */
};

/* A settable property: its name, default and what values it takes. */
struct store_propdef {
	const char	*name;
	const char	*def;
	const char	*help;
};

struct store;

/* Open (creating and migrating) the database at path; ":memory:" works. */
struct store	*store_open(const char *path, struct as_err *err);
void		 store_close(struct store *st);
int		 store_schema_version(struct store *st, int *version,
		    struct as_err *err);
/* PRAGMA integrity_check: 0 when "ok", else -1 with its first line. */
int		 store_integrity_check(struct store *st, struct as_err *err);

/* A valid service name: 1-64 of [A-Za-z0-9_.-], not starting with . or -. */
int		 store_name_check(const char *name, struct as_err *err);
const char	*svc_state_name(enum svc_state s);

int	store_svc_create(struct store *st, const char *name, const char *src,
	    const char *dst, const char *schedule, int64_t now,
	    struct as_err *err);
int	store_svc_get(struct store *st, const char *name, struct svc *out,
	    struct as_err *err);
/* All services by name; free with svc_list_free(). */
int	store_svc_list(struct store *st, struct svc **v, size_t *n,
	    struct as_err *err);
void	svc_release(struct svc *s);
void	svc_list_free(struct svc *v, size_t n);
/* Remove a service with its properties, runs and events. */
int	store_svc_destroy(struct store *st, const char *name,
	    struct as_err *err);
/* Change the state and the planned next run (-1: none), with an event. */
int	store_svc_set_state(struct store *st, const char *name,
	    enum svc_state state, int64_t now, struct as_err *err);
int	store_svc_set_next(struct store *st, const char *name, int64_t next,
	    struct as_err *err);
/* The schedule, already in canonical form. */
int	store_svc_set_schedule(struct store *st, const char *name,
	    const char *schedule, struct as_err *err);
/* New endpoints (reverse), with an event saying so. */
int	store_svc_set_endpoints(struct store *st, const char *name,
	    const char *src, const char *dst, int64_t now,
	    struct as_err *err);
/* clear: failures since the last success back to 0, state online. */
int	store_svc_clear(struct store *st, const char *name, int64_t now,
	    struct as_err *err);

/* The settable properties, in display order. */
const struct store_propdef *store_propdefs(size_t *n);
/* Check a value for a settable property (USAGE with the reason). */
int	store_prop_check(const char *key, const char *value,
	    struct as_err *err);
int	store_prop_set(struct store *st, const char *name, const char *key,
	    const char *value, struct as_err *err);
/* The value, or the default when unset; *value is allocated. */
int	store_prop_get(struct store *st, const char *name, const char *key,
	    char **value, struct as_err *err);

/* A property set on a service, as stored (not checked). */
struct store_prop {
	char		*key;
	char		*value;
};
/*
 * Every property set on name (not the defaults), by key, in *v (free
 * with store_prop_list_free); none is *v NULL, *n 0.  The values are as
 * stored: the daemon checks them (store_prop_check) before it uses them,
 * since the database can be written behind `set`'s back.
 */
int	store_prop_list(struct store *st, const char *name,
	    struct store_prop **v, size_t *n, struct as_err *err);
void	store_prop_list_free(struct store_prop *v, size_t n);
/* The value of key in v[0..n), else its default; allocated. */
char	*store_prop_lookup(const struct store_prop *v, size_t n,
	    const char *key);

/*
 * A run starts: a row with no end, the service becomes running.
 * *run_id identifies it for store_run_end().
 */
int	store_run_begin(struct store *st, const char *name, int64_t now,
	    long pid, int64_t *run_id, struct as_err *err);
/*
 * A run ended: its row, the service's counters, last_* values, the new
 * state and next run, and an event, in one transaction.  Keeps the
 * newest STORE_KEEP_ROWS runs and events of the service.
 */
#define STORE_KEEP_ROWS	1000
int	store_run_end(struct store *st, const char *name, int64_t run_id,
	    int64_t started, const struct run_result *r, enum svc_state state,
	    int64_t next, struct as_err *err);
/*
 * A run that the daemon stopped (SIGTERM) before it ended: recorded as
 * interrupted, not as a failure; the service returns to state, with an
 * event.  The next run recovers the destination.
 */
int	store_run_interrupted(struct store *st, const char *name,
	    int64_t run_id, int64_t now, enum svc_state state,
	    struct as_err *err);
/*
 * After a crash: every run without an end becomes "interrupted" and every
 * running service online again.  *n counts the runs.
 */
int	store_recover(struct store *st, int64_t now, unsigned *n,
	    struct as_err *err);
/*
 * The same for one service (name NULL: all), by a run that holds the
 * service's lock: a run still open then belongs to a process that was
 * killed (a foreground `autosync run`, or a daemon's run whose daemon
 * has not started again), and stays open no longer (§F 61).
 */
int	store_recover_service(struct store *st, const char *name,
	    int64_t now, unsigned *n, struct as_err *err);

/* Append an event (one line; escaped when shown) to a service's log. */
int	store_event(struct store *st, const char *name, int64_t now,
	    const char *msg, struct as_err *err);
typedef void	(*store_event_fn)(void *arg, int64_t id, int64_t time,
		    const char *msg);
/* The events of name with an id above after, oldest first. */
int	store_events(struct store *st, const char *name, int64_t after,
	    store_event_fn fn, void *arg, struct as_err *err);
typedef void	(*store_run_fn)(void *arg, int64_t id, int64_t start,
		    int64_t end, const char *outcome, const char *errcode,
		    const char *msg, uint64_t bytes);
/* The runs of name, oldest first. */
int	store_runs(struct store *st, const char *name, store_run_fn fn,
	    void *arg, struct as_err *err);

#endif
