/*
 * supervisor.c - the runs of services and the daemon loop (see
 * supervisor.h).  One poll loop: the control socket, its clients and a
 * signalfd for SIGCHLD, SIGTERM and SIGINT.  The store is only touched
 * by this process; children report over a pipe.
 */
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
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
#include "repl/remote.h"
#include "repl/sync.h"
#include "repl/endpoint.h"
#include "repl/snapstore.h"
#include "service/changes.h"
#include "service/control.h"
#include "service/metrics.h"
#include "service/hook.h"
#include "service/runner.h"
#include "service/sched.h"
#include "service/supervisor.h"
#include "transport/ratelimit.h"
#include "base/banned.h"

#define MAX_CLIENTS	32
#define MAX_WAITERS	8
#define TICK_MS		1000	/* re-read the store at least this often */
/*
 * A continuous service whose source has a change journal runs when it
 * changed, with a scan narrowed to what changed, and with a full scan at
 * least every full_scan_interval anyway, changes or not (what the
 * journal cannot see: a write through a shared mmap, changes on another
 * machine's NFS client, a dropped watch).
 */
#define FULL_SCAN_MS	(10 * 60 * 1000)	/* until a run read it */
/*
 * A journal that woke the daemon for nothing new is read again after
 * JOURNAL_BATCH_MS, unless that read found JOURNAL_BUSY events or more
 * (a quarter of fanotify's and inotify's default queue: a burst that a
 * pause could let overflow, which costs a full scan).
 */
#define JOURNAL_BATCH_MS 100
#define JOURNAL_BUSY	4096

/*
 * What a run's child writes to its pipe: records of one write each
 * (< PIPE_BUF, so never interleaved): log lines while it runs, then its
 * result.
 */
enum { CHILD_LOG = 1, CHILD_RESULT };
struct child_msg {
	int32_t		 type;		/* CHILD_* */
	int32_t		 level;		/* CHILD_LOG: RUN_LOG_* */
	struct runner_result r;		/* CHILD_LOG: the line in r.msg */
};

struct job {
	char		*name;
	pid_t		 pid;		/* running child, or 0 */
	int		 res_fd;	/* its result pipe */
	int		 ctl_fd;	/* rate changes to it, or -1 */
	uint64_t	 rate;		/* rate_limit it runs with */
	struct child_msg msg;		/* being read from res_fd */
	size_t		 msglen;
	struct runner_result res;	/* its result, once read */
	int		 have_res;
	int		 lock_fd;
	int64_t		 run_id;
	int64_t		 started;	/* wall ms */
	int64_t		 start_mono;
	int64_t		 end_mono;	/* of the last run here; -1 none */
	int64_t		 retry_mono;	/* back-off deadline, or -1 */
	enum svc_state	 prior;		/* state before the run */
	int		 pending;	/* run requested (coalesced) */
	int		 waiters[MAX_WAITERS];
	int		 nwaiters;
	int		 seen;
	int64_t		 shown_next;	/* next_run last written */
	struct changes	*chg;		/* continuous, local source: journal */
	char		*chg_root;	/* what it watches */
	int		 chg_failed;	/* cannot watch chg_root: no retry */
	struct changes	*dchg;		/* ... and a local destination's, for
					 * its drift check */
	char		*dchg_root;
	int		 dchg_failed;
	enum changes_kind chg_want;	/* the journal property they have */
	enum changes_kind dchg_want;
	enum changes_kind chg_now[2];	/* what watches: source, dest */
	char		*chg_said[2];	/* why none, as last logged */
	int64_t		 full_mono;	/* start of the last full scan run */
	int64_t		 full_ms;	/* its full_scan_interval */
	/*
	 * The configuration last found valid (config_check): runs start
	 * with it while the stored one is invalid.  cfg_sched NULL: none
	 * valid yet.
	 */
	char		*cfg_sched;
	struct store_prop *cfg;
	size_t		 ncfg;
	char		*cfg_bad;	/* the rejection last logged, or NULL */
};

struct client {
	int		 fd;
	int		 http;		/* a metrics request, not control */
	size_t		 len;
	char		 buf[CONTROL_LINE_MAX];
};

struct daemon {
	const char	*state_dir;
	struct store	*st;
	struct job	*jobs;
	size_t		 njobs;
	struct client	 clients[MAX_CLIENTS];
	int		 listen_fd;
	int		 metrics_fd;	/* -1: no metrics listener */
	int		 sig_fd;
	int		 mnt_fd;	/* /proc/self/mountinfo: POLLPRI */
	int		 lock_fd;	/* daemon.lock, held while it runs */
	int		 stopping;
	supervisor_note_fn note;
	sigset_t	 oldmask;
};

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static char *
path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = xcalloc(1, n);

	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

char *
supervisor_db_path(const char *state_dir)
{
	return path_in(state_dir, STORE_DB_NAME);
}

char *
supervisor_sock_path(const char *state_dir)
{
	return path_in(state_dir, CONTROL_SOCK_NAME);
}

static int
mkdir_0700(const char *p, struct as_err *err)
{
	if (mkdir(p, 0700) == -1 && errno != EEXIST)
		return as_err_sys(err, errno, "create '%s'", p);
	return 0;
}

struct store *
supervisor_open_store(const char *state_dir, struct as_err *err)
{
	struct store *st;
	char *p;

	if (mkdir_0700(state_dir, err) == -1)
		return NULL;
	p = supervisor_db_path(state_dir);
	st = store_open(p, err);
	free(p);
	return st;
}

/* Take run/NAME.lock; CONFLICT when a run of name holds it. */
static int
lock_service(const char *state_dir, const char *name, struct as_err *err)
{
	char *dir, *p;
	size_t n;
	int fd, e;

	dir = path_in(state_dir, "run");
	if (mkdir_0700(dir, err) == -1) {
		free(dir);
		return -1;
	}
	n = strlen(dir) + strlen(name) + 7;
	p = xcalloc(1, n);
	snprintf(p, n, "%s/%s.lock", dir, name);
	free(dir);
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		as_err_sys(err, errno, "open '%s'", p);
		free(p);
		return -1;
	}
	free(p);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return as_err_set(err, AS_E_CONFLICT, 0, "service "
			    "'%s' is busy: a run is in progress", name);
		return as_err_sys(err, e, "lock service '%s'", name);
	}
	return fd;
}

/* The service's trace_level now (1 when it cannot be read). */
static int
trace_of(struct store *st, const char *name)
{
	char *v = NULL;
	int n = 1;

	if (store_prop_get(st, name, "trace_level", &v, NULL) == 0)
		n = atoi(v);
	free(v);
	return n;
}

/* The service's full_scan_interval now in ms; def if unreadable. */
static int64_t
full_scan_of(struct store *st, const char *name, int64_t def)
{
	char *v = NULL;
	int64_t secs;

	if (store_prop_get(st, name, "full_scan_interval", &v, NULL) == 0 &&
	    sched_parse_duration(v, &secs, NULL) == 0)
		def = secs * 1000;
	free(v);
	return def;
}

/* The service's rate_limit now; UINT64_MAX when it cannot be read. */
static uint64_t
rate_of(struct store *st, const char *name)
{
	char *v = NULL;
	uint64_t r = UINT64_MAX;

	if (store_prop_get(st, name, "rate_limit", &v, NULL) == 0 &&
	    ratelimit_parse(v, &r, NULL) == -1)
		r = UINT64_MAX;
	free(v);
	return r;
}

/* A line of a run for the service's log, if its trace_level wants it. */
static void
run_event(struct store *st, const char *name, int level, const char *msg)
{
	if (level <= trace_of(st, name))
		(void)store_event(st, name, wall_ms(), msg, NULL);
}

static unsigned
retries_of(struct store *st, const char *name)
{
	char *v = NULL;
	unsigned n = 5;

	if (store_prop_get(st, name, "retries", &v, NULL) == 0)
		n = (unsigned)strtoul(v, NULL, 10);
	free(v);
	return n > 0 ? n : 1;
}

/* The class that decides retry or maintenance. */
static enum as_errclass
run_class(const struct runner_result *cr)
{
	if (cr->code == AS_E_CONFLICT && strstr(cr->msg, "is busy") != NULL)
		return AS_TEMP;
	return as_errclass_of(cr->code);
}

/*
 * Record the end of a run: the state it leaves the service in, and the
 * next run time for display (the daemon refines it).
 */
static int
finish(struct store *st, const char *name, int64_t run_id, int64_t started,
    enum svc_state prior, const struct runner_result *cr,
    struct supervisor_run *out, struct as_err *err)
{
	struct run_result rr;
	struct svc v;
	struct sched sc;
	enum svc_state state;
	int64_t next = -1;

	if (store_svc_get(st, name, &v, err) == -1)
		return -1;
	memset(&rr, 0, sizeof(rr));
	rr.ended = wall_ms();
	rr.ok = cr->code == AS_E_OK;
	rr.code = (enum as_errcode)cr->code;
	rr.msg = cr->msg;
	rr.bytes = cr->bytes;
	rr.quiet = trace_of(st, name) < RUN_LOG_RUN;
	state = prior == SVC_DISABLED ? SVC_DISABLED : SVC_ONLINE;
	if (sched_parse(v.schedule, &sc, NULL) == -1)
		sc.kind = 0;
	if (rr.ok) {
		if (sc.kind == SCHED_ONCE && prior != SVC_DISABLED)
			state = SVC_DONE;
	} else if (run_class(cr) == AS_PERM ||
	    v.consecutive + 1 >= retries_of(st, name))
		state = SVC_MAINTENANCE;
	if (state == SVC_ONLINE && sc.kind != 0) {
		next = sched_next(&sc, rr.ended / 1000, started / 1000);
		next = next >= 0 ? next * 1000 : -1;
	}
	svc_release(&v);
	if (out != NULL) {
		out->run_id = run_id;
		out->ms = rr.ended - started;
		out->bytes = cr->bytes;
		out->state = state;
	}
	return store_run_end(st, name, run_id, started, &rr, state, next, err);
}

struct fg_log {
	struct store	*st;
	const char	*name;
};

static void
fg_log(void *arg, int level, const char *msg)
{
	struct fg_log *f = arg;

	run_event(f->st, f->name, level, msg);
}

int
supervisor_lock(const char *state_dir, const char *name, struct as_err *err)
{
	return lock_service(state_dir, name, err);
}

int
supervisor_run_now(struct store *st, const char *state_dir, const char *name,
    struct supervisor_run *out, struct as_err *err)
{
	return supervisor_run_flags(st, state_dir, name, 0, out, err);
}

int
supervisor_run_flags(struct store *st, const char *state_dir,
    const char *name, int sync_flags, struct supervisor_run *out,
    struct as_err *err)
{
	struct runner r;
	struct runner_result cr;
	struct fg_log fl = { st, name };
	struct svc v;
	int64_t run_id, started;
	enum svc_state prior;
	unsigned nrec;
	int lock, rc = -1;

	memset(out, 0, sizeof(*out));
	memset(&r, 0, sizeof(r));
	if (store_svc_get(st, name, &v, err) == -1)
		return -1;
	prior = v.state;
	if (prior == SVC_MAINTENANCE) {
		as_err_set(err, AS_E_CONFLICT, 0, "service '%s' is in "
		    "maintenance: see 'autosync show %s', then 'autosync "
		    "clear %s'", name, name, name);
		goto out;
	}
	if (prior == SVC_RUNNING || prior == SVC_DONE)
		prior = SVC_ONLINE;
	if (runner_props_load(st, name, &r.p, err) == -1 ||
	    (lock = lock_service(state_dir, name, err)) == -1)
		goto out;
	/* with the lock, a run still open is a killed one's (§F 61) */
	if (store_recover_service(st, name, wall_ms(), &nrec, err) == -1) {
		close(lock);
		goto out;
	}
	r.p.sync_flags = sync_flags;
	started = wall_ms();
	if (store_run_begin(st, name, started, (long)getpid(), &run_id,
	    err) == -1) {
		close(lock);
		goto out;
	}
	r.state_dir = state_dir;
	r.name = name;
	r.source = v.source;
	r.dest = v.dest;
	r.run_id = run_id;
	r.log = fg_log;
	r.log_arg = &fl;
	r.rate_fd = -1;
	r.changed_full = r.dchanged_full = -1;
	runner_run(&r, &cr);
	close(lock);
	if (finish(st, name, run_id, started, prior, &cr, out, err) == -1)
		goto out;
	if (cr.code != AS_E_OK) {
		as_err_set(err, (enum as_errcode)cr.code, cr.sys_errno,
		    "%s", cr.msg);
		goto out;
	}
	rc = 0;
out:
	runner_props_release(&r.p);
	svc_release(&v);
	return rc;
}

/* ---- the daemon -------------------------------------------------- */

static void
note(struct daemon *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The service's journal property now (auto when it cannot be read). */
static enum changes_kind
journal_of(struct store *st, const char *name)
{
	enum changes_kind k = CHANGES_AUTO;
	char *v = NULL;

	if (store_prop_get(st, name, "journal", &v, NULL) == 0)
		(void)changes_kind_parse(v, &k);
	free(v);
	return k;
}

/*
 * Which journal watches (what) of a service, and why not fanotify: once
 * in its log when a journal is made, and again if it changes (a file
 * system mounted later that fanotify cannot mark).
 */
static void
journal_say(struct daemon *d, struct job *j, const char *what,
    const struct changes *c, int64_t ms)
{
	char msg[AS_ERR_MSGMAX + 256], took[48] = "";
	enum changes_kind k = changes_kind(c);
	size_t n = changes_watches(c);

	if (ms >= 0)
		snprintf(took, sizeof(took), ", set up in %.3f s",
		    (double)ms / 1000);
	snprintf(msg, sizeof(msg), "change journal of the %s: %s (%zu %s%s%s)"
	    "%s%s", what, k == CHANGES_AUTO ? "none" : changes_kind_name(k),
	    n, k == CHANGES_FANOTIFY ? "file system mark" : "directory watch",
	    n == 1 ? "" : (k == CHANGES_FANOTIFY ? "s" : "es"), took,
	    changes_why(c)[0] != '\0' ? "; fanotify not used: " : "",
	    changes_why(c));
	run_event(d->st, j->name, RUN_LOG_RUN, msg);
	note(d, "'%s': %s", j->name, msg);
}

/*
 * Give continuous services with a local directory source a change
 * journal (and take it from others): watched while the daemon runs, so
 * that an unchanged tree is not scanned every interval.  A changed
 * `journal` property makes a new one.
 */
static void
journal_set(struct daemon *d, struct job *j, const char *what,
    struct changes **c, char **root, int *failed, enum changes_kind *kind,
    enum changes_kind *now, char **said, enum changes_kind want, char *abs)
{
	struct as_err err;
	char msg[AS_ERR_MSGMAX + 128];
	int64_t t0;

	if (abs != NULL && *root != NULL && strcmp(*root, abs) == 0 &&
	    *kind == want) {
		free(abs);
		return;
	}
	changes_close(*c);
	*c = NULL;
	free(*root);
	*root = NULL;
	*failed = 0;
	*kind = want;
	if (abs == NULL)
		return;
	*root = abs;
	as_err_clear(&err);
	t0 = mono_ms();
	/* a tree that is not there yet: runs report it, no journal */
	if ((*c = changes_open_kind(abs, want, &err)) == NULL) {
		*failed = 1;
		snprintf(msg, sizeof(msg), "change journal of the %s: none "
		    "(journal=%s): %s", what, changes_kind_name(want),
		    err.msg);
		/* tried again after each good run: said once */
		if (*said == NULL || strcmp(*said, msg) != 0) {
			run_event(d->st, j->name, RUN_LOG_RUN, msg);
			note(d, "'%s': %s", j->name, msg);
			free(*said);
			*said = xstrdup(msg);
		}
		return;
	}
	free(*said);
	*said = NULL;
	journal_say(d, j, what, *c, mono_ms() - t0);
	*now = changes_kind(*c);
}

/*
 * The same for a local destination, so that the receiver's drift check
 * (was the replica modified?) looks only where something happened:
 * events of autosync's own receives included, which the next run
 * checks.
 */
static void
journal_sync(struct daemon *d, struct job *j, const struct svc *v)
{
	struct endpoint se, de;
	struct sched sc;
	char *abs = NULL, *dabs = NULL;
	enum changes_kind kind = CHANGES_AUTO;
	int want;

	memset(&se, 0, sizeof(se));
	memset(&de, 0, sizeof(de));
	want = v->state != SVC_DISABLED && sched_parse(v->schedule, &sc,
	    NULL) == 0 && sc.kind == SCHED_CONTINUOUS &&
	    endpoint_parse(&se, v->source, NULL) == 0 &&
	    se.kind == EP_LOCAL && (abs = snapstore_abspath(se.path,
	    NULL)) != NULL;
	if (want && endpoint_parse(&de, v->dest, NULL) == 0 &&
	    de.kind == EP_LOCAL)
		dabs = snapstore_abspath(de.path, NULL);
	endpoint_release(&se);
	endpoint_release(&de);
	if (want)
		kind = journal_of(d->st, j->name);
	journal_set(d, j, "source", &j->chg, &j->chg_root, &j->chg_failed,
	    &j->chg_want, &j->chg_now[0], &j->chg_said[0], kind,
	    want ? abs : NULL);
	if (!want)
		free(abs);
	journal_set(d, j, "destination", &j->dchg, &j->dchg_root,
	    &j->dchg_failed, &j->dchg_want, &j->chg_now[1], &j->chg_said[1],
	    kind, dabs);
}

/* What the source's journal heard since the last run (trace level 3). */
static void
journal_stats(struct daemon *d, struct job *j)
{
	struct changes_stats st;
	char msg[256];

	changes_get_stats(j->chg, &st);
	snprintf(msg, sizeof(msg), "journal: %" PRIu64 " event%s since the "
	    "last run, %" PRIu64 " outside the tree, %" PRIu64 " lookup%s",
	    st.events, st.events == 1 ? "" : "s", st.outside, st.lookups,
	    st.lookups == 1 ? "" : "s");
	run_event(d->st, j->name, RUN_LOG_DEBUG, msg);
}

/* After a take: a journal that changed its kind says so. */
static void
journal_check(struct daemon *d, struct job *j)
{
	if (j->chg != NULL && changes_kind(j->chg) != j->chg_now[0]) {
		j->chg_now[0] = changes_kind(j->chg);
		journal_say(d, j, "source", j->chg, -1);
	}
	if (j->dchg != NULL && changes_kind(j->dchg) != j->chg_now[1]) {
		j->chg_now[1] = changes_kind(j->dchg);
		journal_say(d, j, "destination", j->dchg, -1);
	}
}

static void
note(struct daemon *d, const char *fmt, ...)
{
	char buf[AS_ERR_MSGMAX + 128];
	va_list ap;

	if (d->note == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	d->note(buf);
}

static struct job *
job_find(struct daemon *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->njobs; i++)
		if (strcmp(d->jobs[i].name, name) == 0)
			return &d->jobs[i];
	return NULL;
}

static void
cfg_release(struct job *j)
{
	free(j->cfg_sched);
	store_prop_list_free(j->cfg, j->ncfg);
	free(j->cfg_bad);
	j->cfg_sched = j->cfg_bad = NULL;
	j->cfg = NULL;
	j->ncfg = 0;
}

/*
 * Check the service's stored configuration (§F 69): its schedule and
 * every property set, as `set` would.  Valid, it becomes the one kept;
 * invalid (written behind `set`'s back: sqlite3, another version of
 * autosync), it is rejected with one line in the daemon's log and the
 * service's, and v's schedule becomes the kept one, so that the service
 * goes on as before (start_run uses the kept properties).  A service
 * with no valid configuration yet does not run.  A run in progress is
 * not touched either way.
 */
static void
config_check(struct daemon *d, struct job *j, struct svc *v)
{
	struct store_prop *pv = NULL;
	struct sched sc;
	struct as_err e;
	char msg[AS_ERR_MSGMAX + 200];
	size_t pn = 0, i;

	as_err_clear(&e);
	if (store_prop_list(d->st, j->name, &pv, &pn, &e) == -1)
		return;		/* unreadable now: the next loop tries again */
	if (sched_parse(v->schedule, &sc, &e) == -1)
		as_err_prefix(&e, "schedule");
	else
		for (i = 0; i < pn; i++)
			if (store_prop_check(pv[i].key, pv[i].value, &e) == -1)
				break;
	if (e.code == AS_E_OK) {
		if (j->cfg_bad != NULL) {
			/* a warning too: it ends the one below */
			snprintf(msg, sizeof(msg), "service '%s': its "
			    "configuration is valid again", j->name);
			log_warn("%s", msg);
			(void)store_event(d->st, j->name, wall_ms(), msg, NULL);
			free(j->cfg_bad);
			j->cfg_bad = NULL;
		}
		free(j->cfg_sched);
		store_prop_list_free(j->cfg, j->ncfg);
		j->cfg_sched = xstrdup(v->schedule);
		j->cfg = pv;
		j->ncfg = pn;
		return;
	}
	store_prop_list_free(pv, pn);
	snprintf(msg, sizeof(msg), "service '%s': invalid configuration "
	    "rejected: %s; %s", j->name, e.msg, j->cfg_sched != NULL ?
	    "the previous one stays" : "no valid one to keep: not run");
	if (j->cfg_bad == NULL || strcmp(j->cfg_bad, msg) != 0) {
		/* at every verbosity: the service no longer does as told */
		log_warn("%s", msg);
		(void)store_event(d->st, j->name, wall_ms(), msg, NULL);
		free(j->cfg_bad);
		j->cfg_bad = xstrdup(msg);
	}
	if (j->cfg_sched != NULL) {
		free(v->schedule);
		v->schedule = xstrdup(j->cfg_sched);
	}
}

/* Match the jobs to the services in the store. */
static int
reload(struct daemon *d, struct svc **vp, size_t *np, struct as_err *err)
{
	struct job *j;
	size_t i, k;

	if (store_svc_list(d->st, vp, np, err) == -1)
		return -1;
	for (i = 0; i < d->njobs; i++)
		d->jobs[i].seen = 0;
	for (k = 0; k < *np; k++) {
		if ((j = job_find(d, (*vp)[k].name)) == NULL) {
			d->jobs = xreallocarray(d->jobs, d->njobs + 1,
			    sizeof(*d->jobs));
			j = &d->jobs[d->njobs++];
			memset(j, 0, sizeof(*j));
			j->name = xstrdup((*vp)[k].name);
			j->res_fd = j->lock_fd = j->ctl_fd = -1;
			j->end_mono = j->retry_mono = -1;
			j->shown_next = -2;
			j->full_ms = FULL_SCAN_MS;
		}
		j->seen = 1;
	}
	/* destroyed services: drop their jobs unless a run is going on */
	for (i = 0; i < d->njobs; ) {
		j = &d->jobs[i];
		if (j->seen || j->pid != 0) {
			i++;
			continue;
		}
		for (k = 0; k < (size_t)j->nwaiters; k++) {
			control_reply(j->waiters[k], "err NOTFOUND service "
			    "destroyed");
			close(j->waiters[k]);
		}
		changes_close(j->chg);
		free(j->chg_root);
		free(j->chg_said[0]);
		free(j->chg_said[1]);
		changes_close(j->dchg);
		free(j->dchg_root);
		free(j->name);
		cfg_release(j);
		d->jobs[i] = d->jobs[--d->njobs];
	}
	return 0;
}

/* The child's log: one record per line on its result pipe. */
static void
child_log(void *arg, int level, const char *msg)
{
	struct child_msg m;

	memset(&m, 0, sizeof(m));
	m.type = CHILD_LOG;
	m.level = level;
	snprintf(m.r.msg, sizeof(m.r.msg), "%s", msg);
	(void)io_write_full(*(int *)arg, &m, sizeof(m));
}

/*
 * SIGTERM in a run's child (the daemon stops): its hook's whole process
 * group goes too, then the child dies of the signal as before.
 */
static void
child_term(int sig)
{
	hook_kill_running();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
child_run(struct daemon *d, struct job *j, const struct svc *v,
    struct runner *r, int wfd, pid_t parent)
{
	struct child_msg m;
	int i;

	/* die with the daemon: no run outlives it unrecorded (§F 69) */
	if (proc_die_with_parent(parent) == -1)
		_exit(1);
	signal(SIGTERM, child_term);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigprocmask(SIG_SETMASK, &d->oldmask, NULL);
	close(d->listen_fd);
	if (d->metrics_fd >= 0)
		close(d->metrics_fd);
	close(d->sig_fd);
	if (d->mnt_fd >= 0)
		close(d->mnt_fd);
	/*
	 * Not the daemon's lock: a run's receiver outlives a stopped
	 * daemon for a moment (it ends at EOF) and would keep the next
	 * daemon from starting.
	 */
	close(d->lock_fd);
	for (i = 0; i < MAX_CLIENTS; i++)
		if (d->clients[i].fd >= 0)
			close(d->clients[i].fd);
	r->state_dir = d->state_dir;
	r->name = j->name;
	r->source = v->source;
	r->dest = v->dest;
	r->run_id = j->run_id;
	r->log = child_log;
	r->log_arg = &wfd;
	for (i = 0; i < (int)d->njobs; i++) {
		/* the daemon's journals; this run's list was taken */
		changes_close(d->jobs[i].chg);
		d->jobs[i].chg = NULL;
		changes_close(d->jobs[i].dchg);
		d->jobs[i].dchg = NULL;
	}
	memset(&m, 0, sizeof(m));
	m.type = CHILD_RESULT;
	runner_run(r, &m.r);
	(void)io_write_full(wfd, &m, sizeof(m));
	_exit(0);
}

static void
start_run(struct daemon *d, struct job *j, const struct svc *v)
{
	struct runner r;
	struct as_err err;
	struct runner_result cr;
	int p[2], c[2], i, requested;
	unsigned nrec;
	pid_t pid, parent = getpid();

	as_err_clear(&err);
	memset(&r, 0, sizeof(r));
	r.changed_full = r.dchanged_full = -1;
	requested = j->pending;
	j->pending = 0;
	j->prior = v->state == SVC_DISABLED ? SVC_DISABLED : SVC_ONLINE;
	if ((j->cfg_bad != NULL && j->cfg_sched != NULL ?
	    runner_props_load_list(j->cfg, j->ncfg, &r.p, &err) :
	    runner_props_load(d->st, j->name, &r.p, &err)) == -1 ||
	    (j->lock_fd = lock_service(d->state_dir, j->name, &err)) == -1)
		goto fail;
	/* a foreground run of it that was killed: no longer open */
	if (store_recover_service(d->st, j->name, wall_ms(), &nrec,
	    &err) == -1)
		goto fail_lock;
	if (pipe2(p, O_CLOEXEC) == -1) {
		as_err_sys(&err, errno, "pipe");
		goto fail_lock;
	}
	if (pipe2(c, O_CLOEXEC) == -1) {
		as_err_sys(&err, errno, "pipe");
		close(p[0]);
		close(p[1]);
		goto fail_lock;
	}
	j->started = wall_ms();
	j->start_mono = mono_ms();
	if (store_run_begin(d->st, j->name, j->started, 0, &j->run_id,
	    &err) == -1) {
		close(p[0]);
		close(p[1]);
		close(c[0]);
		close(c[1]);
		goto fail_lock;
	}
	if (j->chg != NULL) {
		/* what happened until now, not only what poll saw */
		(void)changes_read(j->chg, NULL);
		journal_stats(d, j);
		changes_take(j->chg, &r.changed_full, &r.changed, &r.nchanged);
		j->full_ms = r.p.full_scan_ms;
		if (r.changed_full == 0 && (requested || j->start_mono -
		    j->full_mono >= j->full_ms)) {
			/* asked for, or the safety net: everything */
			changes_free_list(r.changed, r.nchanged);
			r.changed = NULL;
			r.nchanged = 0;
			r.changed_full = requested ? 3 : 2;
		}
		if (r.changed_full != 0)
			j->full_mono = j->start_mono;
	}
	if (j->dchg != NULL) {
		(void)changes_read(j->dchg, NULL);
		changes_take(j->dchg, &r.dchanged_full, &r.dchanged,
		    &r.ndchanged);
		if (r.dchanged_full == 0 && r.changed_full != 0) {
			/* a full run checks the destination in full too */
			changes_free_list(r.dchanged, r.ndchanged);
			r.dchanged = NULL;
			r.ndchanged = 0;
			r.dchanged_full = r.changed_full;
		}
	}
	journal_check(d, j);
	if ((pid = fork()) == -1) {
		as_err_sys(&err, errno, "fork");
		changes_free_list(r.changed, r.nchanged);
		changes_free_list(r.dchanged, r.ndchanged);
		if (j->chg != NULL)
			changes_force_full(j->chg);
		if (j->dchg != NULL)
			changes_force_full(j->dchg);
		close(p[0]);
		close(p[1]);
		close(c[0]);
		close(c[1]);
		memset(&cr, 0, sizeof(cr));
		cr.code = AS_E_IO;
		snprintf(cr.msg, sizeof(cr.msg), "%s", err.msg);
		(void)finish(d->st, j->name, j->run_id, j->started, j->prior,
		    &cr, NULL, &err);
		goto fail_lock;
	}
	if (pid == 0) {
		close(p[0]);
		close(c[1]);
		r.rate_fd = c[0];
		child_run(d, j, v, &r, p[1], parent);
	}
	changes_free_list(r.changed, r.nchanged);
	changes_free_list(r.dchanged, r.ndchanged);
	close(p[1]);
	close(c[0]);
	(void)fcntl(p[0], F_SETFL, O_NONBLOCK);
	(void)fcntl(c[1], F_SETFL, O_NONBLOCK);
	j->pid = pid;
	j->res_fd = p[0];
	j->ctl_fd = c[1];
	j->rate = r.p.ro.rate;
	j->msglen = 0;
	j->have_res = 0;
	runner_props_release(&r.p);
	note(d, "run %" PRId64 " of '%s' started (pid %ld)", j->run_id,
	    j->name, (long)pid);
	return;
fail_lock:
	close(j->lock_fd);
	j->lock_fd = -1;
fail:
	runner_props_release(&r.p);
	note(d, "cannot start a run of '%s': %s", j->name, err.msg);
	j->retry_mono = mono_ms() + SUPERVISOR_BACKOFF_BASE_MS;
	for (i = 0; i < j->nwaiters; i++) {
		control_reply(j->waiters[i], "err %s %s",
		    as_errcode_name(err.code), err.msg);
		close(j->waiters[i]);
	}
	j->nwaiters = 0;
}

/* Read what the child of j wrote; 0 at its end (EOF), 1 for more. */
static int
job_read(struct daemon *d, struct job *j)
{
	ssize_t n;

	for (;;) {
		n = read(j->res_fd, (char *)&j->msg + j->msglen,
		    sizeof(j->msg) - j->msglen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return errno == EAGAIN ? 1 : 0;
		if (n == 0)
			return 0;
		j->msglen += (size_t)n;
		if (j->msglen < sizeof(j->msg))
			continue;
		j->msglen = 0;
		j->msg.r.msg[sizeof(j->msg.r.msg) - 1] = '\0';
		if (j->msg.type == CHILD_RESULT) {
			j->res = j->msg.r;
			j->have_res = 1;
		} else if (j->msg.type == CHILD_LOG)
			run_event(d->st, j->name, j->msg.level, j->msg.r.msg);
	}
}

/* Pass a changed rate_limit on to the running child of j. */
static void
job_rate(struct daemon *d, struct job *j)
{
	uint64_t r;

	if (j->ctl_fd < 0 || (r = rate_of(d->st, j->name)) == UINT64_MAX ||
	    r == j->rate)
		return;
	if (write(j->ctl_fd, &r, sizeof(r)) == (ssize_t)sizeof(r))
		j->rate = r;
}

/* A child exited: read its result and record the run. */
static void
end_run(struct daemon *d, struct job *j, int status)
{
	struct runner_result cr;
	struct supervisor_run out;
	struct as_err err;
	int i;

	(void)job_read(d, j);
	memset(&cr, 0, sizeof(cr));
	if (j->have_res)
		cr = j->res;
	else {
		cr.code = AS_E_INTERNAL;
		if (WIFSIGNALED(status))
			snprintf(cr.msg, sizeof(cr.msg), "run killed by "
			    "signal %d", WTERMSIG(status));
		else
			snprintf(cr.msg, sizeof(cr.msg), "run exited with "
			    "status %d without a result", WEXITSTATUS(status));
	}
	cr.msg[sizeof(cr.msg) - 1] = '\0';
	if (j->ctl_fd >= 0)
		close(j->ctl_fd);
	j->ctl_fd = -1;
	close(j->res_fd);
	j->res_fd = -1;
	close(j->lock_fd);
	j->lock_fd = -1;
	j->pid = 0;
	j->end_mono = mono_ms();
	memset(&out, 0, sizeof(out));
	as_err_clear(&err);
	if (d->stopping && !j->have_res) {
		/* we stopped it: not the run's failure (§F 69) */
		if (j->chg != NULL)
			changes_force_full(j->chg);
		if (j->dchg != NULL)
			changes_force_full(j->dchg);
		if (store_run_interrupted(d->st, j->name, j->run_id,
		    wall_ms(), j->prior, &err) == -1)
			note(d, "record run of '%s': %s", j->name, err.msg);
		note(d, "run %" PRId64 " of '%s' interrupted", j->run_id,
		    j->name);
		for (i = 0; i < j->nwaiters; i++) {
			control_reply(j->waiters[i], "err TIMEOUT the daemon "
			    "stopped during the run");
			close(j->waiters[i]);
		}
		j->nwaiters = 0;
		return;
	}
	if (finish(d->st, j->name, j->run_id, j->started, j->prior, &cr,
	    &out, &err) == -1)
		note(d, "record run of '%s': %s", j->name, err.msg);
	j->retry_mono = -1;
	if (cr.code != AS_E_OK && j->chg != NULL)
		changes_force_full(j->chg);	/* its changes were not sent */
	if (cr.code != AS_E_OK && j->dchg != NULL)
		changes_force_full(j->dchg);
	if (cr.code == AS_E_OK && j->chg_failed) {
		/* the source exists now: watch it from the next loop */
		free(j->chg_root);
		j->chg_root = NULL;
		j->chg_failed = 0;
	}
	if (cr.code == AS_E_OK && j->dchg_failed) {
		/* the first run made the destination */
		free(j->dchg_root);
		j->dchg_root = NULL;
		j->dchg_failed = 0;
	}
	if (cr.code != AS_E_OK && out.state == SVC_ONLINE) {
		struct svc v;

		if (store_svc_get(d->st, j->name, &v, &err) == 0) {
			j->retry_mono = j->end_mono + sched_backoff(
			    (unsigned)v.consecutive,
			    SUPERVISOR_BACKOFF_BASE_MS,
			    SUPERVISOR_BACKOFF_CAP_MS, (uint32_t)random());
			svc_release(&v);
		}
	}
	if (cr.code == AS_E_OK)
		note(d, "run %" PRId64 " of '%s' ok, %" PRIu64 " bytes",
		    j->run_id, j->name, cr.bytes);
	else
		note(d, "run %" PRId64 " of '%s' failed (%s): %s; state %s",
		    j->run_id, j->name, as_errcode_name(cr.code), cr.msg,
		    svc_state_name(out.state));
	for (i = 0; i < j->nwaiters; i++) {
		if (cr.code == AS_E_OK)
			control_reply(j->waiters[i], "ok %" PRIu64, cr.bytes);
		else
			control_reply(j->waiters[i], "err %s %s",
			    as_errcode_name(cr.code), cr.msg);
		close(j->waiters[i]);
	}
	j->nwaiters = 0;
}

static void
reap(struct daemon *d)
{
	pid_t pid;
	size_t i;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (i = 0; i < d->njobs; i++)
			if (d->jobs[i].pid == pid) {
				end_run(d, &d->jobs[i], status);
				break;
			}
}

/*
 * When j should run next on the monotonic clock (-1: not scheduled),
 * and the wall time to show as next_run.
 */
static int64_t
due_of(const struct job *j, const struct svc *v, int64_t now_mono,
    int64_t now_wall, int64_t *show)
{
	struct sched sc;
	int64_t due, last, t;

	*show = -1;
	if (v->state != SVC_ONLINE || sched_parse(v->schedule, &sc,
	    NULL) == -1)
		return -1;
	if (j->retry_mono >= 0) {
		*show = now_wall + (j->retry_mono - now_mono);
		return j->retry_mono;
	}
	if (sc.kind == SCHED_EVERY && sc.at < 0) {
		if (j->end_mono >= 0)
			due = j->start_mono + sc.interval * 1000;
		else if (v->last_start >= 0)
			due = now_mono + (v->last_start + sc.interval * 1000 -
			    now_wall);
		else
			due = now_mono;
	} else if (sc.kind == SCHED_CONTINUOUS) {
		if (j->end_mono < 0 && v->last_end >= 0)
			due = now_mono + (v->last_end + sc.interval * 1000 -
			    now_wall);
		else if (j->end_mono < 0)
			due = now_mono;
		else if (j->chg == NULL)
			due = j->end_mono + sc.interval * 1000;
		else {
			/*
			 * With a journal a run starts only for a change: at
			 * most one start per interval, right after the last
			 * run if it took longer (the latency of a change is
			 * the run, not a pause).  Nothing changed: wait for a
			 * change, or the next full scan.
			 */
			due = j->start_mono + sc.interval * 1000;
			if (due < j->end_mono)
				due = j->end_mono;
			if (!changes_pending(j->chg) && j->full_ms <= 0)
				/* every run is full: none without a change */
				due = j->start_mono + 24 * 3600 * 1000;
			else if (!changes_pending(j->chg) &&
			    due < j->full_mono + j->full_ms)
				due = j->full_mono + j->full_ms;
		}
	} else {
		last = v->last_start >= 0 ? v->last_start / 1000 : -1;
		if ((t = sched_next(&sc, now_wall / 1000, last)) < 0)
			return -1;
		due = now_mono + (t * 1000 - now_wall);
	}
	if (due < now_mono)
		due = now_mono;
	*show = now_wall + (due - now_mono);
	return due;
}

static void
client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

/* One request line from client c. */
static void
handle(struct daemon *d, struct client *c, char *line)
{
	struct svc v;
	struct as_err err;
	struct job *j;
	char *arg;
	size_t i;
	int wait;

	arg = line + strcspn(line, " ");
	if (*arg != '\0')
		*arg++ = '\0';
	as_err_clear(&err);
	if (strcmp(line, "ping") == 0) {
		control_reply(c->fd, "ok");
	} else if (strcmp(line, "reload") == 0) {
		control_reply(c->fd, "ok");
	} else if (strcmp(line, "list") == 0) {
		for (i = 0; i < d->njobs; i++)
			control_reply(c->fd, "* %s %s %ld", d->jobs[i].name,
			    d->jobs[i].pid != 0 ? "running" : "idle",
			    (long)d->jobs[i].pid);
		control_reply(c->fd, "ok");
	} else if ((wait = strcmp(line, "run-wait") == 0) ||
	    strcmp(line, "run") == 0) {
		if (store_svc_get(d->st, arg, &v, &err) == -1) {
			control_reply(c->fd, "err %s %s",
			    as_errcode_name(err.code), err.msg);
			goto done;
		}
		if (v.state == SVC_MAINTENANCE) {
			control_reply(c->fd, "err CONFLICT service '%s' is in "
			    "maintenance: 'autosync clear %s' first", arg, arg);
			svc_release(&v);
			goto done;
		}
		svc_release(&v);
		j = job_find(d, arg);
		if (j == NULL) {
			struct svc *vs = NULL;
			size_t n = 0;

			if (reload(d, &vs, &n, &err) == 0)
				svc_list_free(vs, n);
			j = job_find(d, arg);
		}
		if (j == NULL) {
			control_reply(c->fd, "err NOTFOUND no service '%s'",
			    arg);
			goto done;
		}
		if (wait && j->nwaiters == MAX_WAITERS) {
			control_reply(c->fd, "err LIMIT too many waiters");
			goto done;
		}
		control_reply(c->fd, "* %s", j->pending || j->pid != 0 ?
		    "coalesced" : "queued");
		j->pending = 1;
		j->retry_mono = -1;
		if (wait) {
			j->waiters[j->nwaiters++] = c->fd;
			c->fd = -1;	/* answered when the run ends */
			c->len = 0;
			return;
		}
		control_reply(c->fd, "ok");
	} else
		control_reply(c->fd, "err USAGE unknown request '%s'", line);
done:
	client_close(c);
}

/* Answer one HTTP request for the metrics, then close. */
static void
http_answer(struct daemon *d, struct client *c)
{
	struct buf body = BUF_INIT;
	struct as_err err;
	char hdr[256];
	int n, ok;

	as_err_clear(&err);
	ok = strncmp(c->buf, "GET /metrics ", 13) == 0 ||
	    strncmp(c->buf, "GET / ", 6) == 0;
	if (!ok)
		buf_add(&body, "only GET /metrics here\n", 24);
	else if (metrics_write(d->st, &body, &err) == -1) {
		ok = -1;
		buf_reset(&body);
		buf_add(&body, err.msg, strlen(err.msg));
		buf_add(&body, "\n", 1);
	}
	n = snprintf(hdr, sizeof(hdr), "HTTP/1.0 %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
	    ok == 1 ? "200 OK" : ok == 0 ? "404 Not Found" :
	    "500 Internal Server Error", ok == 1 ? METRICS_CONTENT_TYPE :
	    "text/plain", body.len);
	if (io_write_full(c->fd, hdr, (size_t)n) == 0)
		(void)io_write_full(c->fd, body.data, body.len);
	buf_release(&body);
	client_close(c);
}

static void
client_read(struct daemon *d, struct client *c)
{
	char *nl;
	ssize_t r;

	r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (r == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (r <= 0) {
		client_close(c);
		return;
	}
	c->len += (size_t)r;
	if (c->http && memchr(c->buf, '\n', c->len) != NULL) {
		http_answer(d, c);
		return;
	}
	if ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
		*nl = '\0';
		handle(d, c, c->buf);
	} else if (c->len == sizeof(c->buf)) {
		control_reply(c->fd, "err LIMIT request too long");
		client_close(c);
	}
}

static void
accept_clients(struct daemon *d, int lfd, int http)
{
	int fd, i;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		for (i = 0; i < MAX_CLIENTS; i++)
			if (d->clients[i].fd < 0)
				break;
		if (i == MAX_CLIENTS) {
			control_reply(fd, "err LIMIT too many clients");
			close(fd);
			continue;
		}
		d->clients[i].fd = fd;
		d->clients[i].len = 0;
		d->clients[i].http = http;
	}
}

/* Stop: SIGTERM to the runs, wait for them, record them. */
static void
stop_runs(struct daemon *d)
{
	size_t i;
	int status;
	pid_t pid;

	for (i = 0; i < d->njobs; i++)
		if (d->jobs[i].pid != 0)
			kill(d->jobs[i].pid, SIGTERM);
	for (i = 0; i < d->njobs; i++) {
		if (d->jobs[i].pid == 0)
			continue;
		while ((pid = waitpid(d->jobs[i].pid, &status, 0)) == -1 &&
		    errno == EINTR)
			;
		end_run(d, &d->jobs[i], pid == -1 ? 0 : status);
	}
}

static int
daemon_lock(const char *state_dir, struct as_err *err)
{
	char *p = path_in(state_dir, "daemon.lock");
	int fd, e;

	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		as_err_sys(err, errno, "open '%s'", p);
		free(p);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			as_err_set(err, AS_E_CONFLICT, 0, "another daemon "
			    "runs on '%s'", state_dir);
		else
			as_err_sys(err, e, "lock '%s'", p);
		free(p);
		return -1;
	}
	free(p);
	return fd;
}

/*
 * After a poll: 1 when only change journals woke it and none of them
 * has become pending (their events were read here), 2 the same when a
 * journal read many events (JOURNAL_BUSY: waiting for more could
 * overflow its queue), else 0.
 */
static int
journals_only(struct daemon *d, struct pollfd *pfd)
{
	size_t i, k, n = 4 + MAX_CLIENTS + 3 * d->njobs;
	struct changes_stats a, b;
	struct changes *c;
	int was, rc = 1;

	for (k = 0; k < n; k++) {
		if (pfd[k].revents == 0)
			continue;
		c = NULL;
		if (k >= 2 + MAX_CLIENTS + d->njobs &&
		    k < 2 + MAX_CLIENTS + 2 * d->njobs) {
			i = k - (2 + MAX_CLIENTS + d->njobs);
			c = d->jobs[i].chg;
		} else if (k >= 4 + MAX_CLIENTS + 2 * d->njobs) {
			i = k - (4 + MAX_CLIENTS + 2 * d->njobs);
			c = d->jobs[i].dchg;
		}
		if (c == NULL || (pfd[k].revents & ~POLLIN))
			return 0;
		was = changes_pending(c);
		changes_get_stats(c, &a);
		if (changes_read(c, NULL) != 0 && !was)
			return 0;
		changes_get_stats(c, &b);
		if (b.events - a.events >= JOURNAL_BUSY)
			rc = 2;
	}
	return rc;
}

/* Leave the journals' descriptors out of the poll (on), or put them back. */
static void
journals_mute(struct daemon *d, struct pollfd *pfd, int on)
{
	size_t i, k;

	for (i = 0; i < d->njobs; i++) {
		k = 2 + MAX_CLIENTS + d->njobs + i;
		pfd[k].fd = on || d->jobs[i].chg == NULL ? -1 :
		    changes_fd(d->jobs[i].chg);
		pfd[k].revents = 0;
		k = 4 + MAX_CLIENTS + 2 * d->njobs + i;
		pfd[k].fd = on || d->jobs[i].dchg == NULL ? -1 :
		    changes_fd(d->jobs[i].dchg);
		pfd[k].revents = 0;
	}
}

int
supervisor_daemon(const char *state_dir, supervisor_note_fn notefn,
    struct as_err *err)
{
	return supervisor_daemon_metrics(state_dir, NULL, notefn, err);
}

int
supervisor_daemon_metrics(const char *state_dir, const char *metrics,
    supervisor_note_fn notefn, struct as_err *err)
{
	struct daemon d;
	struct pollfd *pfd = NULL;
	struct signalfd_siginfo si;
	struct svc *vs = NULL;
	sigset_t mask;
	size_t nv = 0, i;
	unsigned nrec;
	int64_t now_mono, now_wall, due, show, timeout, deadline, mute_end;
	int64_t wait;
	int lock_fd = -1, rc = -1, n, k, jo;
	char *sock = NULL;
	struct job *j;

	memset(&d, 0, sizeof(d));
	d.state_dir = state_dir;
	d.note = notefn;
	d.listen_fd = d.sig_fd = d.metrics_fd = -1;
	/*
	 * A mount below a watched tree sends no inotify event: the mount
	 * table's POLLPRI makes every journal's next run scan in full.
	 */
	d.mnt_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	for (i = 0; i < MAX_CLIENTS; i++)
		d.clients[i].fd = -1;
	srandom((unsigned)(getpid() ^ wall_ms()));
	if ((d.st = supervisor_open_store(state_dir, err)) == NULL ||
	    (lock_fd = daemon_lock(state_dir, err)) == -1)
		goto out;
	d.lock_fd = lock_fd;
	if (store_integrity_check(d.st, err) == -1) {
		as_err_prefix(err, "refusing to run: move the database aside "
		    "and recreate the services");
		goto out;
	}
	if (store_recover(d.st, wall_ms(), &nrec, err) == -1)
		goto out;
	if (nrec > 0)
		note(&d, "%u interrupted run%s recorded; the next run of each "
		    "service recovers its destination", nrec,
		    nrec == 1 ? "" : "s");
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, &d.oldmask) == -1 ||
	    (d.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) ==
	    -1) {
		as_err_sys(err, errno, "signalfd");
		goto out;
	}
	sock = supervisor_sock_path(state_dir);
	if ((d.listen_fd = control_listen(sock, err)) == -1)
		goto out;
	if (metrics != NULL &&
	    (d.metrics_fd = metrics_listen(metrics, err)) == -1)
		goto out;
	note(&d, "daemon started on '%s'", state_dir);
	while (!d.stopping) {
		svc_list_free(vs, nv);
		vs = NULL;
		nv = 0;
		if (reload(&d, &vs, &nv, err) == -1)
			goto out;
		now_mono = mono_ms();
		now_wall = wall_ms();
		timeout = TICK_MS;
		for (i = 0; i < nv; i++) {
			if ((j = job_find(&d, vs[i].name)) == NULL)
				continue;
			config_check(&d, j, &vs[i]);
			if (j->pid != 0)
				continue;
			journal_sync(&d, j, &vs[i]);
			/* a changed full_scan_interval counts at once */
			if (j->chg != NULL)
				j->full_ms = full_scan_of(d.st, j->name,
				    j->full_ms);
			due = due_of(j, &vs[i], now_mono, now_wall, &show);
			if (j->pending && vs[i].state != SVC_MAINTENANCE)
				due = now_mono;
			if (due >= 0 && due <= now_mono) {
				start_run(&d, j, &vs[i]);
				continue;
			}
			if (due >= 0 && due - now_mono < timeout)
				timeout = due - now_mono;
			if (show / 1000 != j->shown_next / 1000 &&
			    store_svc_set_next(d.st, j->name, show,
			    NULL) == 0)
				j->shown_next = show;
		}
		pfd = xreallocarray(pfd, 4 + MAX_CLIENTS + 3 * d.njobs,
		    sizeof(*pfd));
		pfd[0].fd = d.sig_fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = d.listen_fd;
		pfd[1].events = POLLIN;
		for (k = 0; k < MAX_CLIENTS; k++) {
			pfd[2 + k].fd = d.clients[k].fd;
			pfd[2 + k].events = POLLIN;
			pfd[2 + k].revents = 0;
		}
		for (i = 0; i < d.njobs; i++) {
			j = &d.jobs[i];
			if (j->pid != 0)
				job_rate(&d, j);
			pfd[2 + MAX_CLIENTS + i].fd = j->pid != 0 ? j->res_fd :
			    -1;
			pfd[2 + MAX_CLIENTS + i].events = POLLIN;
			pfd[2 + MAX_CLIENTS + i].revents = 0;
			k = 2 + MAX_CLIENTS + (int)(d.njobs + i);
			pfd[k].fd = j->chg != NULL ? changes_fd(j->chg) : -1;
			pfd[k].events = POLLIN;
			pfd[k].revents = 0;
			k = 4 + MAX_CLIENTS + (int)(2 * d.njobs + i);
			pfd[k].fd = j->dchg != NULL ? changes_fd(j->dchg) : -1;
			pfd[k].events = POLLIN;
			pfd[k].revents = 0;
		}
		k = 2 + MAX_CLIENTS + 2 * (int)d.njobs;
		pfd[k].fd = d.metrics_fd;
		pfd[k].events = POLLIN;
		pfd[k].revents = 0;
		pfd[k + 1].fd = d.mnt_fd;
		pfd[k + 1].events = POLLPRI;
		pfd[k + 1].revents = 0;
		/*
		 * Wakeups from journals only, with nothing new for a run
		 * (a fanotify mark hears its whole file system, busy or
		 * not): no reload of the store, and the journals are left
		 * to gather events for JOURNAL_BATCH_MS before the next
		 * read.
		 */
		deadline = mono_ms() + timeout;
		mute_end = -1;
		for (;;) {
			now_mono = mono_ms();
			if (mute_end >= 0 && now_mono >= mute_end) {
				journals_mute(&d, pfd, 0);
				mute_end = -1;
			}
			wait = deadline > now_mono ? deadline - now_mono : 0;
			if (mute_end >= 0 && mute_end - now_mono < wait)
				wait = mute_end - now_mono;
			n = poll(pfd, 4 + MAX_CLIENTS + 3 * d.njobs, (int)wait);
			if (n == 0 && mono_ms() < deadline)
				continue;	/* the end of a mute */
			if (n > 0 && (jo = journals_only(&d, pfd)) != 0) {
				if (mute_end < 0 && jo == 1) {
					journals_mute(&d, pfd, 1);
					mute_end = mono_ms() + JOURNAL_BATCH_MS;
				}
				continue;
			}
			break;
		}
		if (n == -1 && errno != EINTR) {
			as_err_sys(err, errno, "poll");
			goto out;
		}
		if (n <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			while (read(d.sig_fd, &si, sizeof(si)) ==
			    (ssize_t)sizeof(si))
				if (si.ssi_signo == SIGTERM ||
				    si.ssi_signo == SIGINT)
					d.stopping = 1;
				else if (si.ssi_signo == SIGHUP)
					/*
					 * The store is read every loop: a
					 * reload is that, and running runs
					 * keep the settings they started with
					 * (§F 69).
					 */
					note(&d, "SIGHUP: services read again");
			reap(&d);
		}
		for (i = 0; i < d.njobs; i++) {
			if (d.jobs[i].pid != 0 && d.jobs[i].res_fd >= 0 &&
			    (pfd[2 + MAX_CLIENTS + i].revents & POLLIN))
				(void)job_read(&d, &d.jobs[i]);
			if (d.jobs[i].chg != NULL && (pfd[2 + MAX_CLIENTS +
			    d.njobs + i].revents & POLLIN))
				(void)changes_read(d.jobs[i].chg, NULL);
			if (d.jobs[i].dchg != NULL && (pfd[4 + MAX_CLIENTS +
			    2 * d.njobs + i].revents & POLLIN))
				(void)changes_read(d.jobs[i].dchg, NULL);
		}
		if (pfd[1].revents & POLLIN)
			accept_clients(&d, d.listen_fd, 0);
		k = 2 + MAX_CLIENTS + 2 * (int)d.njobs;
		if (d.metrics_fd >= 0 && (pfd[k].revents & POLLIN))
			accept_clients(&d, d.metrics_fd, 1);
		if (d.mnt_fd >= 0 && (pfd[k + 1].revents & (POLLPRI |
		    POLLERR)))
			for (i = 0; i < d.njobs; i++)
				if (d.jobs[i].chg != NULL)
					(void)changes_mounts_changed(
					    d.jobs[i].chg);
		if (d.mnt_fd >= 0 && (pfd[k + 1].revents & (POLLPRI |
		    POLLERR)))
			for (i = 0; i < d.njobs; i++)
				if (d.jobs[i].dchg != NULL)
					(void)changes_mounts_changed(
					    d.jobs[i].dchg);
		for (k = 0; k < MAX_CLIENTS; k++)
			if (d.clients[k].fd >= 0 &&
			    (pfd[2 + k].revents & (POLLIN | POLLHUP | POLLERR)))
				client_read(&d, &d.clients[k]);
	}
	note(&d, "stopping");
	stop_runs(&d);
	rc = 0;
out:
	free(pfd);
	svc_list_free(vs, nv);
	for (i = 0; i < d.njobs; i++) {
		for (k = 0; k < d.jobs[i].nwaiters; k++)
			close(d.jobs[i].waiters[k]);
		changes_close(d.jobs[i].chg);
		free(d.jobs[i].chg_root);
		free(d.jobs[i].chg_said[0]);
		free(d.jobs[i].chg_said[1]);
		changes_close(d.jobs[i].dchg);
		free(d.jobs[i].dchg_root);
		free(d.jobs[i].name);
		cfg_release(&d.jobs[i]);
	}
	free(d.jobs);
	for (i = 0; i < MAX_CLIENTS; i++)
		client_close(&d.clients[i]);
	if (d.listen_fd >= 0) {
		close(d.listen_fd);
		unlink(sock);
	}
	if (d.metrics_fd >= 0)
		close(d.metrics_fd);
	if (d.mnt_fd >= 0)
		close(d.mnt_fd);
	if (d.sig_fd >= 0) {
		close(d.sig_fd);
		sigprocmask(SIG_SETMASK, &d.oldmask, NULL);
	}
	free(sock);
	if (lock_fd >= 0)
		close(lock_fd);
	store_close(d.st);
	return rc;
}
