/*
 * runner.c - one run of a service (see runner.h).
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "repl/endpoint.h"
#include "repl/snapstore.h"
#include "repl/sync.h"
#include "service/hook.h"
#include "service/latest.h"
#include "service/runner.h"
#include "service/sched.h"
#include "transport/compress.h"
#include "transport/keys.h"
#include "transport/ratelimit.h"
#include "base/banned.h"

static _Atomic uint64_t rate_live = UINT64_MAX;

uint64_t
runner_rate_live(void)
{
	return atomic_load(&rate_live);
}

static void
say(struct runner *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(struct runner *r, int level, const char *fmt, ...)
{
	char buf[AS_ERR_MSGMAX];
	va_list ap;

	if (r->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	r->log(r->log_arg, level, buf);
}

static unsigned
uint_of(const char *v)
{
	return (unsigned)strtoul(v, NULL, 10);
}

/* From the store (st), or from the properties v[0..n) when st is NULL. */
static int
props_load(struct store *st, const char *name, const struct store_prop *pv,
    size_t pn, struct runner_props *p, struct as_err *err)
{
	struct compress_spec cs;
	int64_t secs;
	char *v = NULL;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	p->ro.progress = PROGRESS_NONE;
#define GET(key) do {							\
		free(v);						\
		v = NULL;						\
		if (st == NULL)						\
			v = store_prop_lookup(pv, pn, (key));		\
		else if (store_prop_get(st, name, (key), &v, err) == -1) \
			goto out;					\
	} while (0)
	GET("rate_limit");
	if (ratelimit_parse(v, &p->ro.rate, err) == -1)
		goto out;
	GET("compress");
	if (compress_parse(v, &cs, err) == -1)
		goto out;
	p->ro.zstd_level = cs.algo == COMPRESS_ZSTD ? (cs.level != 0 ?
	    cs.level : COMPRESS_DEFAULT_LEVEL) : 0;
	GET("trace_level");
	p->trace = (int)uint_of(v);
	GET("keep_src");
	p->keep_src = uint_of(v);
	GET("keep_dst");
	p->keep_dst = uint_of(v);
	GET("latest");
	p->latest = strcmp(v, "on") == 0;
	GET("recursive");
	p->recursive = strcmp(v, "off") != 0;
	GET("pre_hook");
	if (v[0] != '\0') {
		p->pre_hook = v;
		v = NULL;
	}
	GET("post_hook");
	if (v[0] != '\0') {
		p->post_hook = v;
		v = NULL;
	}
#define GETFILE(key, field) do {					\
		GET(key);						\
		if (v[0] != '\0') {					\
			p->ro.field = v;				\
			v = NULL;					\
		}							\
	} while (0)
	GETFILE("key_file", key_file);
	GETFILE("cert_file", cert_file);
	GETFILE("ca_file", ca_file);
#undef GETFILE
	GET("trust");
	if (v[0] != '\0') {
		p->trust = v;
		v = NULL;
	}
	GET("hook_timeout");
	if (sched_parse_duration(v, &secs, err) == -1)
		goto out;
	p->hook_timeout_ms = secs * 1000;
	GET("full_scan_interval");
	if (sched_parse_duration(v, &secs, err) == -1)
		goto out;
	p->full_scan_ms = secs * 1000;
#undef GET
	rc = 0;
out:
	free(v);
	if (rc == -1)
		runner_props_release(p);
	return rc;
}

int
runner_props_load(struct store *st, const char *name, struct runner_props *p,
    struct as_err *err)
{
	return props_load(st, name, NULL, 0, p, err);
}

int
runner_props_load_list(const struct store_prop *v, size_t n,
    struct runner_props *p, struct as_err *err)
{
	return props_load(NULL, NULL, v, n, p, err);
}

void
runner_props_release(struct runner_props *p)
{
	free(p->pre_hook);
	free(p->post_hook);
	free(p->trust);
	p->pre_hook = p->post_hook = p->trust = NULL;
	free((char *)p->ro.key_file);
	free((char *)p->ro.cert_file);
	free((char *)p->ro.ca_file);
	p->ro.key_file = p->ro.cert_file = p->ro.ca_file = NULL;
}

/* 1 when spec is a local zfs: or btrfs: endpoint (native snapshots). */
static int
native_local(const char *spec)
{
	struct endpoint ep;
	int r;

	memset(&ep, 0, sizeof(ep));
	if (endpoint_parse(&ep, spec, NULL) == -1)
		return 0;
	r = ep.kind == EP_ZFS || ep.kind == EP_BTRFS;
	endpoint_release(&ep);
	return r;
}

int
runner_check(const char *dest, unsigned keep_dst, struct as_err *err)
{
	struct endpoint de;
	int rc = 0;

	if (keep_dst <= 1)
		return 0;
	memset(&de, 0, sizeof(de));
	if (endpoint_parse(&de, dest, NULL) == -1)
		return 0;	/* the run reports the endpoint itself */
	if (de.kind == EP_ZFS || de.kind == EP_BTRFS)
		rc = 0;		/* its own snapshots: sync_opts.keep_dst */
	else if (endpoint_is_remote(&de) && de.path != NULL &&
	    (strncmp(de.path, "zfs:", 4) == 0 ||
	    strncmp(de.path, "/zfs:", 5) == 0))
		rc = as_err_set(err, AS_E_USAGE, 0, "keep_dst %u: the "
		    "snapshots of a remote destination are kept by its server "
		    "(keep_dst 0 or 1 here)", keep_dst);
	else
		rc = as_err_set(err, AS_E_USAGE, 0, "keep_dst %u: a %s "
		    "destination holds one snapshot, the newest (keep_dst "
		    "0 or 1)", keep_dst, de.kind == EP_VOL ? "volume" :
		    "directory");
	endpoint_release(&de);
	return rc;
}

int
runner_check_src(const char *src, unsigned keep_src, struct as_err *err)
{
	struct endpoint se;
	int rc = 0;

	if (keep_src == 1)
		return 0;
	memset(&se, 0, sizeof(se));
	if (endpoint_parse(&se, src, NULL) == -1)
		return 0;	/* the run reports the endpoint itself */
	if (endpoint_is_remote(&se))
		rc = as_err_set(err, AS_E_USAGE, 0, "keep_src %u: the "
		    "snapshots of a remote source are kept by its server "
		    "(keep_src 1 here)", keep_src);
	else if (se.kind == EP_VOL)
		rc = as_err_set(err, AS_E_USAGE, 0, "keep_src %u: not "
		    "supported for 'vol' sources yet (keep_src 1)", keep_src);
	endpoint_release(&se);
	return rc;
}

/* A file the TLS layer will read: a readable regular file. */
static int
check_file(const char *prop, const char *path, int secret, struct as_err *err)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return as_err_sys(err, errno, "%s '%s'", prop, path);
	if (fstat(fd, &st) == -1) {
		as_err_sys(err, errno, "%s '%s'", prop, path);
		close(fd);
		return -1;
	}
	close(fd);
	if (!S_ISREG(st.st_mode))
		return as_err_set(err, AS_E_USAGE, 0, "%s '%s' is not a "
		    "regular file", prop, path);
	if (secret && (st.st_mode & 077) != 0)
		return as_err_set(err, AS_E_AUTH, 0, "%s '%s' is readable by "
		    "others; chmod 600 it", prop, path);
	return 0;
}

static int
set_(const char *s)
{
	return s != NULL && s[0] != '\0';
}

int
runner_check_auth(const char *src, const char *dst, const char *key,
    const char *cert, const char *ca, struct as_err *err)
{
	struct endpoint se, de;
	const struct endpoint *ep = NULL;
	struct psk k;
	int rc = -1;

	memset(&se, 0, sizeof(se));
	memset(&de, 0, sizeof(de));
	if (endpoint_parse(&se, src, NULL) == 0 &&
	    (se.kind == EP_TCP || se.kind == EP_TLS))
		ep = &se;
	if (endpoint_parse(&de, dst, NULL) == 0 &&
	    (de.kind == EP_TCP || de.kind == EP_TLS))
		ep = &de;
	if (ep == NULL) {
		if (set_(key) || set_(cert) || set_(ca))
			as_err_set(err, AS_E_USAGE, 0, "%s: only tcp:// and "
			    "tls:// endpoints take key, certificate and CA "
			    "files", set_(key) ? "key_file" : set_(cert) ?
			    "cert_file" : "ca_file");
		else
			rc = 0;
	} else if (ep->kind == EP_TCP) {
		if (!set_(key))
			as_err_set(err, AS_E_USAGE, 0, "'%s' needs key_file "
			    "(--key): the pre-shared key", ep->spec);
		else if (set_(cert) || set_(ca))
			as_err_set(err, AS_E_USAGE, 0, "%s: a tcp:// endpoint "
			    "takes key_file only", set_(cert) ? "cert_file" :
			    "ca_file");
		else if (key_load(key, &k, err) == 0) {
			key_clear(&k);
			rc = 0;
		} else
			as_err_prefix(err, "key_file");
	} else {
		if (!set_(key) || !set_(cert) || !set_(ca))
			as_err_set(err, AS_E_USAGE, 0, "'%s' needs key_file, "
			    "cert_file and ca_file (--key, --cert, --ca)",
			    ep->spec);
		else if (check_file("key_file", key, 1, err) == 0 &&
		    check_file("cert_file", cert, 0, err) == 0 &&
		    check_file("ca_file", ca, 0, err) == 0)
			rc = 0;
	}
	endpoint_release(&se);
	endpoint_release(&de);
	return rc;
}

/* ---- hooks ------------------------------------------------------- */

struct hook_ctx {
	struct runner	*r;
	const char	*which;
};

static void
hook_line(void *arg, const char *line)
{
	struct hook_ctx *h = arg;

	say(h->r, RUN_LOG_DEBUG, "%s hook: %s", h->which, line);
}

/*
 * Run a hook with the run's details in its environment.  Returns 0 when
 * it exited 0, else -1 with err saying how it failed.
 */
static int
run_hook(struct runner *r, const char *which, const char *spec,
    const struct runner_result *res, const struct sync_result *sr,
    struct as_err *err)
{
	struct hook_ctx h = { r, which };
	char **argv = NULL, *env[16], st[64];
	size_t n = 0, i;
	int status, rc = -1;

	if (hook_split(spec, &argv, err) == -1)
		return as_err_prefix(err, "%s hook", which);
	if (argv == NULL)
		return 0;
	env[n++] = xasprintf("AUTOSYNC_HOOK=%s", which);
	env[n++] = xasprintf("AUTOSYNC_SERVICE=%s", r->name);
	env[n++] = xasprintf("AUTOSYNC_SOURCE=%s", r->source);
	env[n++] = xasprintf("AUTOSYNC_DEST=%s", r->dest);
	env[n++] = xasprintf("AUTOSYNC_RUN_ID=%" PRId64, r->run_id);
	if (res != NULL) {
		env[n++] = xasprintf("AUTOSYNC_STATUS=%d",
		    res->code == AS_E_OK ? 0 :
		    as_exit_code((enum as_errcode)res->code));
		env[n++] = xasprintf("AUTOSYNC_ERRCODE=%s",
		    as_errcode_name((enum as_errcode)res->code));
		env[n++] = xasprintf("AUTOSYNC_ERROR=%s", res->msg);
		env[n++] = xasprintf("AUTOSYNC_BYTES=%" PRIu64, res->bytes);
		env[n++] = xasprintf("AUTOSYNC_SNAPSHOT=%s",
		    res->code == AS_E_OK ? sr->name : "");
		env[n++] = xasprintf("AUTOSYNC_BASE_SNAPSHOT=%s",
		    res->code == AS_E_OK ? sr->base_name : "");
	}
	env[n] = NULL;
	say(r, RUN_LOG_DETAIL, "%s hook '%s' started", which, argv[0]);
	if (hook_run(argv, env, r->p.hook_timeout_ms > 0 ?
	    r->p.hook_timeout_ms : RUNNER_HOOK_TIMEOUT_MS, hook_line, &h,
	    &status, err) == -1) {
		/* "hook '/x' killed..." -> "pre hook '/x' killed..." */
		snprintf(st, sizeof(st), "%s", which);
		if (err != NULL) {
			char m[AS_ERR_MSGMAX];

			snprintf(m, sizeof(m), "%s %s", st, err->msg);
			as_err_set(err, err->code, err->sys_errno, "%s", m);
		}
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		as_err_set(err, AS_E_IO, 0, "%s hook '%s' failed: %s", which,
		    argv[0], hook_status_str(status, st, sizeof(st)));
		goto out;
	}
	say(r, RUN_LOG_DETAIL, "%s hook '%s' done", which, argv[0]);
	rc = 0;
out:
	for (i = 0; i < n; i++)
		free(env[i]);
	hook_argv_free(argv);
	return rc;
}

/* ---- rate limit changes ------------------------------------------ */

struct rate_thread {
	struct runner	*r;
	int		 stop_fd;	/* readable: the run is over */
	_Atomic int	 ready;		/* the thread runs its own code */
};

static void *
rate_reader(void *arg)
{
	struct rate_thread *t = arg;
	struct runner *r = t->r;
	struct pollfd pfd[2];
	uint64_t v;
	char b[32];

	atomic_store(&t->ready, 1);
	for (;;) {
		pfd[0].fd = r->rate_fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = t->stop_fd;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents != 0 || read(r->rate_fd, &v, sizeof(v)) !=
		    (ssize_t)sizeof(v))
			break;
		atomic_store(&rate_live, v);
		if (v == 0)
			snprintf(b, sizeof(b), "none");
		else
			snprintf(b, sizeof(b), "%" PRIu64 " bytes/s", v);
		say(r, RUN_LOG_DETAIL, "rate limit now %s", b);
	}
	return NULL;
}

/* ---- latest ------------------------------------------------------ */

/* The source's catalogs, when the source is a local directory. */
static int
local_source(const char *state_dir, const char *src, struct snapstore *ss,
    struct as_err *err)
{
	struct endpoint se;
	char *state = NULL, *abs = NULL;
	int rc = 0;

	memset(&se, 0, sizeof(se));
	memset(ss, 0, sizeof(*ss));
	ss->lock_fd = -1;
	if (endpoint_parse(&se, src, NULL) == -1 || se.kind != EP_LOCAL)
		goto out;
	if ((state = snapstore_state_dir(state_dir, err)) == NULL ||
	    (abs = snapstore_abspath(se.path, err)) == NULL ||
	    snapstore_open(ss, state, abs, 0, err) == -1) {
		rc = -1;
		goto out;
	}
	rc = 1;
out:
	free(state);
	free(abs);
	endpoint_release(&se);
	return rc;
}

/* Lock ss, waiting up to 5 s for another sync of the same source. */
static int
lock_wait(struct snapstore *ss, struct as_err *err)
{
	int i;

	for (i = 0; ; i++) {
		if (snapstore_lock(ss, err) == 0)
			return 0;
		if (err->code != AS_E_CONFLICT || i == 100)
			return -1;
		as_err_clear(err);
		usleep(50000);
	}
}

static void
set_latest(struct runner *r, const struct sync_result *sr)
{
	struct snapstore ss;
	struct as_err err;
	char alias[SNAP_NAME_MAX + 1];
	int l;

	as_err_clear(&err);
	snprintf(alias, sizeof(alias), "%s" RUNNER_LATEST_SUFFIX, r->name);
	if ((l = local_source(r->state_dir, r->source, &ss, &err)) == 0)
		return;
	if (l == -1 || lock_wait(&ss, &err) == -1 ||
	    snapstore_alias(&ss, sr->name, alias, &err) == -1)
		say(r, RUN_LOG_ERROR, "cannot name '%s' %s: %s", sr->name,
		    alias, err.msg);
	else
		say(r, RUN_LOG_DETAIL, "%s is %s", alias, sr->name);
	snapstore_release(&ss);
}

/* NAME-latest on the zfs: and btrfs: sides (latest.h), or its removal. */
static void
native_latest(struct runner *r, const struct sync_result *sr)
{
	struct as_err err;
	char alias[SNAP_NAME_MAX + 1];
	int sides = 0;

	as_err_clear(&err);
	snprintf(alias, sizeof(alias), "%s" RUNNER_LATEST_SUFFIX, r->name);
	if (!native_local(r->source) && !native_local(r->dest))
		return;
	if (!r->p.latest) {
		if (latest_native_drop(r->name, r->source, r->dest,
		    &err) == -1)
			say(r, RUN_LOG_ERROR, "latest off: %s", err.msg);
		return;
	}
	if (latest_native_set(r->name, r->source, r->dest, sr->name, &sides,
	    &err) == -1)
		say(r, RUN_LOG_ERROR, "cannot name '%s' %s: %s", sr->name,
		    alias, err.msg);
	else if (sides > 0)
		say(r, RUN_LOG_DETAIL, "%s is %s (%d side%s)", alias,
		    sr->name, sides, sides == 1 ? "" : "s");
}

int
runner_drop_latest(const char *state_dir, const char *name, const char *src,
    struct as_err *err)
{
	struct snapstore ss;
	char alias[SNAP_NAME_MAX + 1];
	int l, rc = 0;

	snprintf(alias, sizeof(alias), "%s" RUNNER_LATEST_SUFFIX, name);
	if ((l = local_source(state_dir, src, &ss, err)) <= 0)
		return l;
	if (access(ss.dir, F_OK) == -1 && errno == ENOENT) {
		snapstore_release(&ss);
		return 0;	/* never synced: no catalogs, no alias */
	}
	if (lock_wait(&ss, err) == -1 ||
	    (snapstore_destroy(&ss, alias, err) == -1 &&
	    err->code != AS_E_NOTFOUND))
		rc = -1;
	if (rc == 0)
		as_err_clear(err);
	snapstore_release(&ss);
	return rc;
}

/* ---- the run ----------------------------------------------------- */

static void
fail(struct runner_result *res, const struct as_err *err)
{
	res->code = err->code != AS_E_OK ? err->code : AS_E_INTERNAL;
	res->sys_errno = err->sys_errno;
	snprintf(res->msg, sizeof(res->msg), "%s", err->msg);
}

void
runner_run(struct runner *r, struct runner_result *res)
{
	struct sync_opts o;
	struct sync_result sr;
	struct as_err err;
	struct rate_thread rt;
	pthread_t tid;
	int have_thread = 0, stop[2] = { -1, -1 };

	memset(res, 0, sizeof(*res));
	memset(&sr, 0, sizeof(sr));
	as_err_clear(&err);
	if (r->p.trace >= RUN_LOG_DEBUG)
		log_set_level(LOG_LVL_DEBUG);
	if (r->rate_fd >= 0 && pipe2(stop, O_CLOEXEC) == 0) {
		rt.r = r;
		rt.stop_fd = stop[0];
		atomic_store(&rt.ready, 0);
		if (pthread_create(&tid, NULL, rate_reader, &rt) == 0)
			have_thread = 1;
		/*
		 * The sync forks its receiver soon: not while the new thread
		 * is still being set up (a fork then inherited an allocator
		 * lock the thread held, and the receiver hung under ASan).
		 */
		while (have_thread && !atomic_load(&rt.ready))
			usleep(1000);
	}
	say(r, RUN_LOG_DEBUG, "run %" PRId64 " started (pid %ld)", r->run_id,
	    (long)getpid());
	if (r->changed_full == 1)
		say(r, RUN_LOG_DEBUG, "changes: everything (a new journal, "
		    "an overflow, a mount or a failed run)");
	else if (r->changed_full == 2)
		say(r, RUN_LOG_DEBUG, "changes: everything (full_scan_interval "
		    "passed)");
	else if (r->changed_full == 3)
		say(r, RUN_LOG_DEBUG, "changes: everything (a requested run)");
	else if (r->changed_full == 0 && r->nchanged == 0)
		say(r, RUN_LOG_DEBUG, "changes: none (a requested or periodic "
		    "run)");
	else if (r->changed_full == 0)
		say(r, RUN_LOG_DEBUG, "changes: %zu director%s: '%s'%s%s%s",
		    r->nchanged, r->nchanged == 1 ? "y" : "ies",
		    r->changed[0], r->nchanged > 1 ? " ... '" : "",
		    r->nchanged > 1 ? r->changed[r->nchanged - 1] : "",
		    r->nchanged > 1 ? "'" : "");
	if (runner_check(r->dest, r->p.keep_dst, &err) == -1 ||
	    runner_check_src(r->source, r->p.keep_src, &err) == -1 ||
	    runner_check_auth(r->source, r->dest, r->p.ro.key_file,
	    r->p.ro.cert_file, r->p.ro.ca_file, &err) == -1) {
		fail(res, &err);
		goto out;
	}
	if (r->p.pre_hook != NULL && run_hook(r, "pre", r->p.pre_hook, NULL,
	    NULL, &err) == -1) {
		as_err_prefix(&err, "run not started");
		fail(res, &err);
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.state_dir = r->state_dir;
	/* a changed rate_limit reaches the transfer (remote.h) */
	if (have_thread)
		r->p.ro.rate_live = runner_rate_live;
	o.remote = &r->p.ro;
	o.keep_src = r->p.keep_src;
	o.keep_dst = r->p.keep_dst;
	o.flags = r->p.sync_flags;
	if (r->changed_full == 0) {
		o.narrow = 1;
		o.changed = (const char *const *)r->changed;
		o.nchanged = r->nchanged;
	}
	if (r->dchanged_full == 0) {
		o.dnarrow = 1;
		o.dchanged = (const char *const *)r->dchanged;
		o.ndchanged = r->ndchanged;
		say(r, RUN_LOG_DEBUG, "destination drift check narrowed to "
		    "%zu director%s", r->ndchanged, r->ndchanged == 1 ? "y" :
		    "ies");
	} else if (r->dchanged_full > 0)
		say(r, RUN_LOG_DEBUG, "destination drift check in full");
	if (!r->p.recursive)
		o.flags |= SYNC_NO_RECURSE;
	o.trust = r->p.trust;
	if (native_local(r->source) || native_local(r->dest)) {
		/* 0 keeps all on that side only (sync.h counts 0 as 1) */
		if (o.keep_src == 0)
			o.keep_src = UINT_MAX;
		if (o.keep_dst == 0)
			o.keep_dst = UINT_MAX;
	} else if (r->p.keep_src == 0)
		o.flags |= SYNC_NO_PRUNE;
	if (sync_run(r->source, r->dest, &o, &sr, &err) == -1)
		fail(res, &err);
	res->bytes = sr.remote != 0 ? sr.wire_bytes : sr.send.stream_bytes;
	if (sr.resume_msg[0] != '\0')
		say(r, RUN_LOG_DETAIL, "%s", sr.resume_msg);
	if (sr.resumed_pos != 0)
		say(r, RUN_LOG_DETAIL, "resumed an interrupted transfer at "
		    "entry %" PRIu64 ", block %" PRIu64,
		    DIR_POS_ENTRY(sr.resumed_pos), DIR_POS_BLOCK(sr.resumed_pos));
	if (res->code == AS_E_OK) {
		say(r, RUN_LOG_DETAIL, "snapshot %s, %s%s; %" PRIu64
		    " entries scanned, %" PRIu64 " sent, %" PRIu64
		    " data bytes; %u pruned", sr.name, sr.full ? "full" :
		    "incremental from ", sr.full ? "" : sr.base_name,
		    sr.scan.entries, sr.send.entries_sent,
		    sr.send.data_bytes, sr.pruned);
		say(r, RUN_LOG_DEBUG, "scan %.3f s, run %.3f s",
		    (double)sr.scan_ns / 1e9, (double)sr.total_ns / 1e9);
		if (sr.narrowed)
			say(r, RUN_LOG_DEBUG, "scan narrowed to %zu "
			    "director%s: %" PRIu64 " entries stat'ed, %" PRIu64
			    " copied from the base%s", r->nchanged,
			    r->nchanged == 1 ? "y" : "ies", sr.scan.entries,
			    sr.scan.carried, sr.scan.rescans ? " (a hard-link "
			    "group changed: scanned again in full)" : "");
		else
			say(r, RUN_LOG_DEBUG, "scan full: %" PRIu64 " entries "
			    "stat'ed", sr.scan.entries);
		if (r->p.latest && sr.remote != 2)
			set_latest(r, &sr);
		else if (sr.remote != 2 && runner_drop_latest(r->state_dir,
		    r->name, r->source, &err) == -1)
			say(r, RUN_LOG_ERROR, "latest off: %s", err.msg);
		native_latest(r, &sr);
	}
	if (r->p.post_hook != NULL) {
		as_err_clear(&err);
		if (run_hook(r, "post", r->p.post_hook, res, &sr, &err) == -1)
			say(r, RUN_LOG_ERROR, "%s", err.msg);
	}
out:
	if (have_thread) {
		close(stop[1]);
		stop[1] = -1;
		pthread_join(tid, NULL);
	}
	if (stop[0] >= 0)
		close(stop[0]);
	if (stop[1] >= 0)
		close(stop[1]);
}
