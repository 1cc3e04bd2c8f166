/* sync.c - one local replication step; see sync.h. */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdint.h>
#include <malloc.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/ownwalk.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "format/stream.h"
#include "repl/endpoint.h"
#include "repl/remote.h"
#include "repl/snapstore.h"
#include "repl/rchild.h"
#include "repl/sync.h"
#include "transport/pace.h"
#include "base/banned.h"

/* What the receiving child reports to its parent through a pipe. */
struct recv_report {
	struct rchild_report	hdr;	/* first: see rchild.h */
	struct dir_recv_result	res;
};

/* What the receiving child needs. */
struct recv_args {
	const char		*dst;
	int			 flags;
	struct catalog		*target;
	const struct catalog	*base;
	uint64_t		 rguid;		/* resume: this transfer... */
	uint64_t		 rpos;		/* ... at this position */
	const struct sync_opts	*o;	/* dnarrow: the drift check's list */
};

static int64_t
now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* dst equal to src, or one inside the other, would replicate into itself. */
static int
check_overlap(const char *src, const char *dst, struct as_err *err)
{
	size_t ls = strlen(src), ld = strlen(dst);

	if (strcmp(src, dst) == 0)
		return as_err_set(err, AS_E_USAGE, 0,
		    "source and destination are the same directory '%s'", src);
	if (ld > ls && strncmp(dst, src, ls) == 0 &&
	    (dst[ls] == '/' || ls == 1))
		return as_err_set(err, AS_E_USAGE, 0,
		    "destination '%s' is inside the source '%s'", dst, src);
	if (ls > ld && strncmp(src, dst, ld) == 0 &&
	    (src[ld] == '/' || ld == 1))
		return as_err_set(err, AS_E_USAGE, 0,
		    "source '%s' is inside the destination '%s'", src, dst);
	return 0;
}

/*
 * Settle what earlier syncs left: this destination's pending catalog is
 * adopted when the destination holds it, else discarded; pending catalogs
 * that no destination record names (a crash before the receiver started)
 * are discarded.
 */
int
sync_settle(struct snapstore *ss, const char *dst_abs, uint64_t held,
    struct snap_dest *rec, struct sync_result *res, struct as_err *err)
{
	struct snap_list pl;
	struct snap_dest *recs = NULL;
	const struct snap_info *pi;
	size_t i, j, nrecs = 0;
	int named, rc = -1;

	if (snapstore_list(ss, SNAP_LIST_PENDING, &pl, err) == -1)
		return -1;
	if (rec->pending[0] != '\0') {
		pi = snap_list_by_name(&pl, rec->pending);
		if (pi != NULL && held != 0 && pi->guid == held) {
			if (snapstore_commit_pending(ss, rec->pending,
			    err) == -1)
				goto out;
			res->adopted = 1;
		} else if (pi != NULL) {
			if (snapstore_discard_pending(ss, rec->pending,
			    err) == -1)
				goto out;
			res->discarded = 1;
		}
		rec->pending[0] = '\0';
		rec->held_guid = held;
		if (snapstore_dest_put(ss, dst_abs, rec, err) == -1)
			goto out;
	}
	if (snapstore_dest_list(ss, &recs, &nrecs, err) == -1)
		goto out;
	for (i = 0; i < pl.n; i++) {
		named = 0;
		for (j = 0; j < nrecs; j++)
			if (strcmp(recs[j].pending, pl.v[i].name) == 0)
				named = 1;
		if (!named && strcmp(pl.v[i].name, rec->pending) != 0 &&
		    snapstore_discard_pending(ss, pl.v[i].name, err) == -1)
			goto out;
	}
	rc = 0;
out:
	snap_dest_free_list(recs, nrecs);
	snap_list_release(&pl);
	return rc;
}

/*
 * Destroy sync's own snapshots other than keep and the newest nkeep,
 * except those that a destination (one that still exists) holds or is
 * receiving.  Records of remote destinations (not an absolute path)
 * always count: there is no cheap way to tell that they are gone.
 */
int
sync_prune_keep(struct snapstore *ss, uint64_t keep, unsigned nkeep,
    unsigned *pruned, struct as_err *err)
{
	struct snap_list l;
	struct snap_dest *recs = NULL;
	struct stat st;
	size_t i, j, nrecs = 0;
	unsigned newer = 0;
	int held, rc = -1;

	if (nkeep == 0)
		nkeep = 1;
	if (snapstore_list(ss, 0, &l, err) == -1)
		return -1;
	if (snapstore_dest_list(ss, &recs, &nrecs, err) == -1)
		goto out;
	/* newest first: the list is sorted by time */
	for (i = l.n; i-- > 0; ) {
		if (strncmp(l.v[i].name, SNAP_AUTO_PREFIX,
		    strlen(SNAP_AUTO_PREFIX)) != 0)
			continue;
		if (l.v[i].guid == keep || newer < nkeep) {
			newer++;
			continue;
		}
		held = 0;
		for (j = 0; j < nrecs; j++) {
			if (recs[j].path != NULL && recs[j].path[0] == '/' &&
			    lstat(recs[j].path, &st) == -1 && errno == ENOENT)
				continue;	/* that destination is gone */
			if (recs[j].held_guid == l.v[i].guid ||
			    strcmp(recs[j].pending, l.v[i].name) == 0)
				held = 1;
		}
		if (held)
			continue;
		if (snapstore_destroy(ss, l.v[i].name, err) == -1)
			goto out;
		(*pruned)++;
	}
	rc = 0;
out:
	snap_dest_free_list(recs, nrecs);
	snap_list_release(&l);
	return rc;
}

int
sync_prune(struct snapstore *ss, uint64_t keep, unsigned *pruned,
    struct as_err *err)
{
	return sync_prune_keep(ss, keep, 1, pruned, err);
}

void
sync_pace_init(struct pace *p, const struct sync_opts *o, uint64_t total)
{
	const struct remote_opts *r = o->remote;

	pace_init(p, r != NULL ? r->rate : 0, r != NULL ? r->rate_live : NULL,
	    r != NULL ? r->progress : PROGRESS_NONE, total);
}

/* The receiving child: never returns. */
static void
receive_child(void *arg, int in_fd, int report_fd)
{
	struct recv_args *a = arg;
	struct recv_report r;

	/*
	 * The forked receiver inherits the sender's catalogs, the largest
	 * allocations of the run; it never reads them.  Give the memory back
	 * (the arenas are mmap'ed, so freeing really unmaps them) so that
	 * peak memory is one side's, not both.
	 */
	catalog_release(a->target);
	catalog_release((struct catalog *)(uintptr_t)a->base);
	malloc_trim(0);
	memset(&r, 0, sizeof(r));
	{
		struct dir_recv_opts ro = { a->rguid, a->rpos, 0, NULL, 0 };

		if (a->o != NULL && a->o->dnarrow) {
			ro.narrow = 1;
			ro.dirs = a->o->dchanged;
			ro.ndirs = a->o->ndchanged;
		}
		r.hdr.rc = dir_receive_opts(a->dst, in_fd, a->flags, &ro,
		    &r.res, &r.hdr.err);
	}
	rchild_exit(report_fd, &r.hdr, sizeof(r));
}

/* What the sender records before the END record (pending_hook). */
struct pending_args {
	struct snapstore	*ss;
	struct catalog		*target;
	const char		*dst_abs;
	struct snap_dest	*rec;
};

/*
 * Just before END, when the sender may have updated target to what it
 * really sent: the pending catalog, then the destination record naming
 * it.  The receiver commits only after END, so from here on a crash
 * leaves a pending catalog that describes what the destination may
 * hold, and the next sync adopts or discards it (sync_settle); before
 * here it cannot have committed.  Written once per sync, not before the
 * send as well.
 */
static int
pending_hook(void *arg, struct as_err *err)
{
	struct pending_args *p = arg;

	if (snapstore_save(p->ss, p->target, SNAP_SAVE_PENDING, err) == -1)
		return -1;
	snprintf(p->rec->pending, sizeof(p->rec->pending), "%s",
	    p->target->hdr.name);
	return snapstore_dest_put(p->ss, p->dst_abs, p->rec, err);
}

/*
 * Run the receiver in a child and the sender here.  Returns 0 when the
 * receiver committed, 1 when it committed but the sender failed after
 * the pending catalog was saved (err says why), otherwise -1 with the
 * error that explains the failure.
 */
static int
transfer(const char *src, const char *dst, const char *src_name,
    const char *dst_name, struct snapstore *ss, struct catalog *target,
    const struct catalog *base, int rflags, struct snap_dest *rec,
    struct rchild *early, uint64_t rpos, const struct sync_opts *o,
    struct sync_result *res, struct as_err *err)
{
	struct recv_args a = { dst, rflags, target, base,
	    rpos != 0 ? target->hdr.guid : 0, rpos, o };
	struct pending_args pa = { ss, target, dst, rec };
	struct recv_report r;
	struct rchild c;
	struct as_err serr;
	struct pace pace;
	struct pace_relay relay = { .started = 0 };
	int src_rc, out_fd, flags = DIR_SEND_LIVE | DIR_SEND_OWNPIPE;

	if (early != NULL && early->pid != -1) {
		/* started before the scan (receiver_early); used once */
		c = *early;
		early->pid = -1;
	} else if (rchild_start(&c, receive_child, &a, err) == -1)
		return -1;
	/* a stopped or stuck receiver ends in TIMEOUT (§F 69), not a hang */
	if (rchild_watch(&c, o->remote != NULL && o->remote->idle_ms > 0 ?
	    o->remote->idle_ms : CONN_IDLE_DEFAULT_MS, &serr) == -1)
		log_warn("%s", serr.msg);	/* the transfer goes on */
	as_err_clear(&serr);
	out_fd = c.data_fd;
	sync_pace_init(&pace, o, xfer_estimate(target, base));
	if (pace_wants_relay(&pace)) {
		/*
		 * A rate limit or progress: a relay thread between the two.
		 * Its splice would pass our vmsplice'd pages on, so the
		 * sender copies them (no OWNPIPE).
		 */
		flags &= ~DIR_SEND_OWNPIPE;
		if ((out_fd = dup(c.data_fd)) == -1)
			as_err_sys(&serr, errno, "dup the receiver's pipe");
		if (out_fd == -1 || pace_relay_start(&relay, &pace, out_fd,
		    &out_fd, &serr) == -1) {
			(void)rchild_finish(&c, &r.hdr, sizeof(r), err);
			pace_finish(&pace);
			*err = serr;
			return -1;
		}
	}
	src_rc = dir_send_resume(src, target, base, out_fd, flags,
	    pending_hook, &pa, rpos, &res->send, &serr);
	if (relay.started) {
		close(out_fd);		/* the relay's end of file */
		(void)pace_relay_finish(&relay);
	}
	pace_finish(&pace);
	if (rchild_finish(&c, &r.hdr, sizeof(r), err) == -1)
		return -1;
	return rchild_verdict(&r.hdr, src_rc, &serr, src_name, dst_name,
	    err);
}

/*
 * An incremental to a local destination: start the receiver before the
 * source is scanned, so that its drift check of the destination (a scan
 * of the same size) runs at the same time instead of after it.  The
 * child gets the base as it is now, and target still empty.
 */
static void
receiver_early(const char *dst, int rflags, struct catalog *target,
    const struct catalog *base, const struct sync_opts *o, struct rchild *c)
{
	struct recv_args a = { dst, rflags, target, base, 0, 0, o };
	struct as_err e;

	/* not started (fork failed): transfer() tries again and reports */
	if (rchild_start(c, receive_child, &a, &e) == -1)
		c->pid = -1;
}

/* A receiver started early whose stream never came: close, reap. */
static void
receiver_cancel(struct rchild *c)
{
	struct recv_report r;
	struct as_err e;

	if (c->pid == -1)
		return;
	(void)rchild_finish(c, &r.hdr, sizeof(r), &e);
	c->pid = -1;
}

/* Run recover and read what dst holds: 1 held (*guid), 0 none, -1. */
static int
dest_state(const char *dst, int *recovered, uint64_t *guid,
    struct as_err *err)
{
	struct cat_header h;
	struct stat st;
	int rc;

	*guid = 0;
	if (lstat(dst, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		return as_err_sys(err, errno, "destination '%s'", dst);
	}
	rc = dir_recover(dst, err);	/* names dst in its errors */
	if (rc == -1)
		return -1;
	if (recovered != NULL)
		*recovered = rc;
	memset(&h, 0, sizeof(h));
	rc = dir_held(dst, &h, err);
	if (rc == -1)
		return as_err_prefix(err, "destination '%s'", dst);
	if (rc == 1) {
		*guid = h.guid;
		cat_header_release(&h);
	}
	return rc;
}

int
sync_snapshot(struct snapstore *ss, const char *src_abs, const char *spec,
    const struct catalog *base, uint32_t block_size, struct catalog *target,
    struct sync_result *res, struct as_err *err)
{
	return sync_snapshot_scan(ss, src_abs, spec, base, block_size,
	    DIR_SCAN_XDEV, target, res, err);
}

static int	snapshot_scan(struct snapstore *, const char *, const char *,
		    struct catalog *, struct cat_reader *, uint32_t, int,
		    const struct sync_opts *, struct catalog *,
		    struct sync_result *, struct as_err *);

int
sync_snapshot_scan(struct snapstore *ss, const char *src_abs,
    const char *spec, const struct catalog *base, uint32_t block_size,
    int scan_flags, struct catalog *target, struct sync_result *res,
    struct as_err *err)
{
	return snapshot_scan(ss, src_abs, spec, (struct catalog *)(uintptr_t)
	    base, NULL, block_size, scan_flags, NULL, target, res, err);
}

/*
 * sync_snapshot_scan, narrowed to o's changed directories if it says.
 * With rd: the base is read from rd as the scan goes (dir_scan_merge)
 * and base (its header set by the caller) receives what dir_send needs
 * of it; a narrowed scan needs the whole base (no rd).
 */
static int
snapshot_scan(struct snapstore *ss, const char *src_abs, const char *spec,
    struct catalog *base, struct cat_reader *rd, uint32_t block_size,
    int scan_flags, const struct sync_opts *o, struct catalog *target,
    struct sync_result *res, struct as_err *err)
{
	int64_t t1;
	int rc;

	target->hdr.time_ns = now_ns(CLOCK_REALTIME);
	if (snapstore_auto_name(ss, target->hdr.time_ns, target->hdr.name,
	    sizeof(target->hdr.name), err) == -1)
		return -1;
	t1 = now_ns(CLOCK_MONOTONIC);
	if (rd != NULL)
		rc = dir_scan_merge(src_abs, rd, block_size, scan_flags, target,
		    base, &res->scan, err);
	else if (o != NULL && o->narrow && base != NULL) {
		res->narrowed = 1;
		rc = dir_scan_narrow(src_abs, base, o->changed, o->nchanged,
		    block_size, scan_flags, target, &res->scan, err);
	} else
		rc = dir_scan(src_abs, base, block_size, scan_flags, target,
		    &res->scan, err);
	if (rc == -1)
		return as_err_prefix(err, "scan '%s'", spec);
	res->scan_ns = now_ns(CLOCK_MONOTONIC) - t1;
	if (target->n <= 1)
		return as_err_set(err, AS_E_NOTFOUND, 0, "source '%s' is "
		    "empty: refusing to replicate an empty tree (is it "
		    "mounted?)", spec);
	target->hdr.guid = snap_guid_new();
	target->hdr.base_guid = base != NULL ? base->hdr.guid : 0;
	if (target->hdr.kind == 0)
		target->hdr.kind = AS_KIND_DIR;
	if (target->hdr.source == NULL)
		target->hdr.source = xstrdup(src_abs);
	res->guid = target->hdr.guid;
	snprintf(res->name, sizeof(res->name), "%s", target->hdr.name);
	return 0;
}

/* The destination of a step: a local directory or a server. */
struct dest {
	const char	*abs;	/* local: absolute path; remote: the spec */
	const char	*name;	/* as given, for messages */
	struct remote	*r;	/* remote, or NULL */
};

/* What d holds (1, 0, -1), and the transfer it can resume (*p). */
static int
dest_held(struct dest *d, int *recovered, uint64_t *guid,
    struct dir_partial *p, struct as_err *err)
{
	int rc;

	memset(p, 0, sizeof(*p));
	if (d->r != NULL)
		return remote_hold_partial(d->r, guid, recovered,
		    &p->target_guid, &p->pos, err);
	if ((rc = dest_state(d->abs, recovered, guid, err)) == -1)
		return -1;
	if (dir_partial(d->abs, p, err) == -1)
		return -1;
	return rc;
}

/*
 * Can the transfer d checkpointed (p) be resumed?  Only when a pending
 * catalog of ours is that snapshot, from what d holds: then it is loaded
 * into pend (1).  0 otherwise.  The one this destination's record names
 * first; else the pending catalog with the checkpoint's GUID, for the
 * same destination reached under another name (another address or port
 * of the server, a proxy: records are kept by the name given).
 */
static int
resume_candidate(struct snapstore *ss, const struct snap_dest *rec,
    const struct dir_partial *p, uint64_t held, struct catalog *pend)
{
	struct snap_list pl;
	const struct snap_info *pi;
	char name[SNAP_NAME_MAX + 1];
	struct as_err e;
	int found;

	if (p->target_guid == 0 || DIR_POS_ENTRY(p->pos) == 0)
		return 0;
	if (rec->pending[0] != '\0')
		snprintf(name, sizeof(name), "%s", rec->pending);
	else {
		if (snapstore_list(ss, SNAP_LIST_PENDING, &pl, &e) == -1)
			return 0;
		pi = snap_list_by_guid(&pl, p->target_guid);
		found = pi != NULL;
		if (found)
			snprintf(name, sizeof(name), "%s", pi->name);
		snap_list_release(&pl);
		if (!found)
			return 0;
	}
	if (snapstore_load_pending(ss, name, pend, &e) == -1)
		return 0;
	if (pend->hdr.guid == p->target_guid && pend->hdr.kind ==
	    AS_KIND_DIR && pend->hdr.base_guid == held)
		return 1;
	catalog_release(pend);
	catalog_init(pend);
	return 0;
}

/*
 * The tree as scanned now (t) against the snapshot an interrupted
 * transfer was sending (p): the resumed stream is regenerated from it,
 * so every entry must be as it was (path, type, inode, size, times,
 * owner, mode, links, xattrs, symlink target).  NULL when they match,
 * else the first path that differs (in why, sz bytes).
 */
const char *
sync_tree_changed(const struct catalog *t, const struct catalog *p,
    char *why, size_t sz)
{
	const struct cat_entry *a, *b;
	size_t i;

	for (i = 0; i < t->n && i < p->n; i++) {
		a = &t->ents[i];
		b = &p->ents[i];
		if (a->path_len != b->path_len || memcmp(catalog_path(t, a),
		    catalog_path(p, b), a->path_len) != 0 ||
		    a->mode != b->mode || a->uid != b->uid || a->gid !=
		    b->gid || a->ino != b->ino || a->size != b->size ||
		    a->nlink != b->nlink || a->rdev != b->rdev ||
		    a->mtime_sec != b->mtime_sec || a->mtime_nsec !=
		    b->mtime_nsec || a->ctime_sec != b->ctime_sec ||
		    a->ctime_nsec != b->ctime_nsec || a->aux_len !=
		    b->aux_len || memcmp(catalog_aux(t, a), catalog_aux(p, b),
		    a->aux_len) != 0 || a->xattr_len != b->xattr_len ||
		    memcmp(catalog_xattrs(t, a), catalog_xattrs(p, b),
		    a->xattr_len) != 0) {
			snprintf(why, sz, "%.*s", a->path_len != 0 ?
			    (int)a->path_len : 1, a->path_len != 0 ?
			    catalog_path(t, a) : ".");
			return why;
		}
	}
	if (t->n == p->n)
		return NULL;
	a = i < t->n ? &t->ents[i] : &p->ents[i];
	snprintf(why, sz, "%.*s", (int)a->path_len, i < t->n ?
	    catalog_path(t, a) : catalog_path(p, a));
	return why;
}

/*
 * Step 5 towards a server: as transfer(), the pending catalog saved by
 * the same hook before END (the sender's thread runs it before the END
 * record enters the pipe, so the server cannot commit before it is
 * durable).
 */
static int
remote_transfer(struct dest *d, const char *src, struct snapstore *ss,
    struct catalog *target, const struct catalog *base, int force,
    struct snap_dest *rec, uint64_t rpos, struct sync_result *res,
    struct as_err *err)
{
	struct xfer_src xs;
	struct remote_xfer x;
	struct pending_args pa = { ss, target, d->abs, rec };
	int rc;

	memset(&xs, 0, sizeof(xs));
	xs.root = src;
	xs.target = target;
	xs.base = base;
	xs.sflags = DIR_SEND_LIVE;
	xs.fd = -1;
	xs.before_end = pending_hook;
	xs.before_end_arg = &pa;
	xs.resume_pos = rpos;
	rc = remote_push_resume(d->r, &xs, force, rpos != 0 ?
	    target->hdr.guid : 0, rpos, &x, err);
	res->send = x.st;
	res->wire_bytes = x.wire_bytes;
	return rc;
}

/*
 * A pull's agreement, the same for every engine: list the server's
 * snapshots of se (*v, *n: the caller frees *v) and keep *held as the
 * base only if the server has it; otherwise CONFLICT, or with SYNC_FORCE
 * a full resend (*held = 0).  *id is the key of this destination's
 * record on the server: "pull:HOST:" kind dst_abs.
 */
int
sync_pull_agree(struct remote *r, const struct endpoint *se,
    const struct endpoint *de, int flags, const char *kind,
    const char *dst_abs, uint64_t *held, struct proto_snap **v, size_t *n,
    char **id, struct as_err *err)
{
	size_t i;
	int found = 0;

	if (remote_snapshots(r, v, n, err) == -1)
		return as_err_prefix(err, "list '%s'", se->spec);
	if (*held != 0) {
		for (i = 0; i < *n; i++)
			if ((*v)[i].guid == *held)
				found = 1;
		if (!found && !(flags & SYNC_FORCE))
			return as_err_set(err, AS_E_CONFLICT, 0, "no common "
			    "snapshot: '%s' holds %016" PRIx64 " which '%s' "
			    "does not have; use -F for a full resend",
			    de->spec, *held, se->spec);
		if (!found)
			*held = 0;
	}
	*id = sync_pull_id(kind, dst_abs);
	return 0;
}

char *
sync_pull_id(const char *kind, const char *dst_abs)
{
	char host[256];

	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	return xasprintf("pull:%s:%s%s", host, kind, dst_abs);
}

/* What a pull's transfer x says, into res (the base named from v). */
void
sync_pull_result(const struct remote_xfer *x, const struct proto_snap *v,
    size_t n, struct sync_result *res)
{
	size_t i;

	res->full = x->full;
	res->guid = x->guid;
	res->base_guid = x->base_guid;
	snprintf(res->name, sizeof(res->name), "%s", x->name);
	for (i = 0; i < n; i++)
		if (x->base_guid != 0 && v[i].guid == x->base_guid)
			snprintf(res->base_name, sizeof(res->base_name), "%s",
			    v[i].name);
	res->wire_bytes = x->wire_bytes;
}

void
sync_native_src(struct xfer_src *xs, struct catalog *tc,
    int (*send)(void *arg, int fd, struct as_err *err), void *arg,
    uint64_t guid, const char *name)
{
	catalog_init(tc);
	tc->hdr.guid = guid;
	snprintf(tc->hdr.name, sizeof(tc->hdr.name), "%s", name);
	memset(xs, 0, sizeof(*xs));
	xs->fd = -1;
	xs->send = send;
	xs->send_arg = arg;
	xs->target = tc;
}

/* A pull's receiver resuming its checkpointed transfer (xfer_recv_fn). */
struct pull_resume {
	uint64_t	guid;
	uint64_t	pos;
};

static int
pull_receive(void *arg, const char *dest, int in_fd, int rflags,
    struct dir_recv_result *res, struct as_err *err)
{
	const struct pull_resume *p = arg;

	return dir_receive_resume(dest, in_fd, rflags, p->guid, p->pos, res,
	    err);
}

/* Pull: the source is a server, the destination local. */
static int
pull_run(const struct endpoint *se, const struct endpoint *de,
    const struct sync_opts *o, struct sync_result *res, struct as_err *err)
{
	struct remote_opts ro;
	struct remote *r = NULL;
	struct remote_xfer x;
	struct proto_snap *v = NULL;
	struct dir_partial part;
	struct pull_resume pr;
	char *dst_abs = NULL, *id = NULL;
	uint64_t held = 0;
	size_t n = 0;
	int rc = -1, rflags;

	res->remote = 2;
	memset(&x, 0, sizeof(x));
	/* before realpath hides a planted link from the receiver */
	if (ownwalk_check(de->path, "destination", err) == -1 ||
	    (dst_abs = snapstore_abspath(de->path, err)) == NULL)
		goto out;
	if (dest_state(dst_abs, &res->recovered, &held, err) == -1)
		goto out;
	if (dir_partial(dst_abs, &part, err) == -1)
		goto out;
	memset(&ro, 0, sizeof(ro));
	if (o->remote != NULL)
		ro = *o->remote;
	if ((r = remote_open(se, &ro, err)) == NULL)
		goto out;
	/* Agree on the common snapshot before anything is sent. */
	if (sync_pull_agree(r, se, de, o->flags, "", dst_abs, &held, &v, &n,
	    &id, err) == -1)
		goto out;
	rflags = (o->flags & SYNC_FORCE ? DIR_RECV_FORCE : 0) |
	    (o->flags & SYNC_SAFE ? DIR_RECV_SAFE : 0);
	/*
	 * A checkpointed pull from what dst holds: ask the server to send
	 * that snapshot again from the checkpoint.  A server that cannot
	 * (its source changed, it no longer has that snapshot pending)
	 * sends a new snapshot from the start instead, and says why in its
	 * log: remote_pull_resume sets pr to 0, 0 before the receiver runs,
	 * which then discards the checkpoint.
	 */
	if (part.target_guid != 0 && part.base_guid == held &&
	    !(o->flags & SYNC_FORCE)) {
		pr.guid = part.target_guid;
		pr.pos = part.pos;
		rc = remote_pull_resume(r, held, id, dst_abs, rflags,
		    pull_receive, &pr, &pr.guid, &pr.pos, &x, err);
		if (x.resumed != 0) {
			res->resumed_pos = pr.pos;
			res->resumed = part.bytes;
		} else if (x.guid != 0)
			snprintf(res->resume_msg, sizeof(res->resume_msg),
			    "'%s' did not resume the interrupted transfer of "
			    "%016" PRIx64 " (its log says why): a new snapshot, "
			    "from the start", remote_peer(r), part.target_guid);
	} else
		rc = remote_pull(r, held, id, dst_abs, rflags, &x, err);
	if (rc == -1 && (o->flags & SYNC_FORCE) && held != 0 &&
	    err->code == AS_E_CONFLICT && !x.committed) {
		res->retried_full = 1;
		as_err_clear(err);
		rc = remote_pull(r, 0, id, dst_abs, rflags, &x, err);
	}
	sync_pull_result(&x, v, n, res);
	res->send = x.st;
	res->send.stream_bytes = x.raw_bytes;
out:
	remote_close(r);
	free(v);
	free(id);
	free(dst_abs);
	return rc;
}

int
sync_run(const char *src, const char *dst, const struct sync_opts *o,
    struct sync_result *res, struct as_err *err)
{
	struct endpoint se, de;
	struct snapstore ss;
	struct snap_dest rec;
	struct catalog base, target;
	struct snap_reader sr;
	struct remote_opts ro;
	struct dest d;
	struct rchild early;
	struct stat st;
	struct as_err e2;
	struct dir_partial part, part2;
	struct catalog pend;
	char *state = NULL, *src_abs = NULL, *dst_abs = NULL, why[300];
	uint64_t held = 0, now_guid, rpos = 0;
	uint32_t bs;
	int64_t t0;
	int rc = -1, have_base = 0, tr, rflags, resume = 0, use_rd = 0;

	memset(res, 0, sizeof(*res));
	memset(&ss, 0, sizeof(ss));
	memset(&rec, 0, sizeof(rec));
	memset(&se, 0, sizeof(se));
	memset(&de, 0, sizeof(de));
	memset(&d, 0, sizeof(d));
	ss.lock_fd = -1;
	early.pid = -1;
	memset(&sr, 0, sizeof(sr));
	catalog_init(&base);
	catalog_init(&target);
	catalog_init(&pend);
	t0 = now_ns(CLOCK_MONOTONIC);

	if (endpoint_parse(&se, src, err) == -1 ||
	    endpoint_parse(&de, dst, err) == -1)
		goto out;
	if (se.kind == EP_VOL || de.kind == EP_VOL ||
	    (endpoint_is_remote(&se) && strncmp(se.path, "/vol:", 5) == 0) ||
	    (endpoint_is_remote(&de) && strncmp(de.path, "/vol:", 5) == 0)) {
		rc = sync_run_vol(&se, &de, o, res, err);
		goto out;
	}
	if (se.kind == EP_ZFS || de.kind == EP_ZFS) {
		rc = sync_run_zfs(&se, &de, o, res, err);
		goto out;
	}
	if (se.kind == EP_BTRFS || de.kind == EP_BTRFS) {
		rc = sync_run_btrfs(&se, &de, o, res, err);
		goto out;
	}
	if ((o->flags & SYNC_NO_RECURSE) && endpoint_is_remote(&se)) {
		/* the server scans a pulled source; it has no -N to pass */
		as_err_set(err, AS_E_USAGE, 0, "'%s' -> '%s': -N is not "
		    "supported when pulling from a server", src, dst);
		goto out;
	}
	if (endpoint_is_remote(&se) && endpoint_is_remote(&de)) {
		as_err_set(err, AS_E_USAGE, 0, "'%s' and '%s' are both "
		    "remote: one side of a sync must be local", src, dst);
		goto out;
	}
	if (endpoint_is_remote(&se)) {
		rc = pull_run(&se, &de, o, res, err);
		goto out;
	}
	if ((state = snapstore_state_dir(o->state_dir, err)) == NULL)
		goto out;
	if (lstat(se.path, &st) == -1) {
		if (errno == ENOENT)
			as_err_set(err, AS_E_NOTFOUND, errno,
			    "source '%s' does not exist", se.path);
		else
			as_err_sys(err, errno, "source '%s'", se.path);
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		as_err_set(err, AS_E_NOTFOUND, ENOTDIR,
		    "source '%s' is not a directory", se.path);
		goto out;
	}
	if ((src_abs = snapstore_abspath(se.path, err)) == NULL)
		goto out;
	d.name = de.spec;
	if (endpoint_is_remote(&de)) {
		res->remote = 1;
		d.abs = de.spec;
	} else {
		if (ownwalk_check(de.path, "destination", err) == -1 ||
		    (dst_abs = snapstore_abspath(de.path, err)) == NULL)
			goto out;
		if (check_overlap(src_abs, dst_abs, err) == -1)
			goto out;
		d.abs = dst_abs;
		d.name = de.path;
	}
	if (snapstore_open(&ss, state, src_abs, 1, err) == -1 ||
	    snapstore_lock(&ss, err) == -1)
		goto out;
	if (res->remote) {
		memset(&ro, 0, sizeof(ro));
		if (o->remote != NULL)
			ro = *o->remote;
		if ((d.r = remote_open(&de, &ro, err)) == NULL)
			goto out;
	}

	/* 1. the destination */
	if (dest_held(&d, &res->recovered, &held, &part, err) == -1)
		goto out;

	/*
	 * 2. a previous sync to it that did not finish: resumed from the
	 * destination's checkpoint when the source is as it was (below),
	 * else settled
	 */
	if (snapstore_dest_get(&ss, d.abs, &rec, err) == -1)
		goto out;
	resume = !(o->flags & SYNC_FORCE) && resume_candidate(&ss, &rec,
	    &part, held, &pend);
	if (!resume && sync_settle(&ss, d.abs, held, &rec, res, err) == -1)
		goto out;

	/* 3. the base */
	if (held != 0) {
		/*
		 * The base is read during the scan, as a merge, so that the
		 * sender never holds two whole catalogs (peak memory); a
		 * scan narrowed by a change journal loads it whole (it
		 * copies most entries from the base).
		 */
		use_rd = !o->narrow;
		if (use_rd) {
			have_base = snapstore_open_guid(&ss, held, &sr, err);
			if (have_base == 1) {
				base.hdr = sr.rd.win.hdr;
				base.hdr.source = xstrdup(sr.rd.win.hdr.source
				    != NULL ? sr.rd.win.hdr.source : "");
			}
		} else
			have_base = snapstore_load_guid(&ss, held, &base, err);
		if (have_base == -1)
			goto out;
		if (have_base == 0 && !(o->flags & SYNC_FORCE)) {
			as_err_set(err, AS_E_CONFLICT, 0, "no common snapshot: "
			    "'%s' holds %016" PRIx64 " which '%s' does not "
			    "have; use -F for a full resend", dst, held, src);
			goto out;
		}
	}
	res->full = !have_base;
	if (have_base) {
		res->base_guid = base.hdr.guid;
		snprintf(res->base_name, sizeof(res->base_name), "%s",
		    base.hdr.name);
	}

	/* 4. the new snapshot */
	rflags = (o->flags & SYNC_FORCE ? DIR_RECV_FORCE : 0) |
	    (o->flags & SYNC_SAFE ? DIR_RECV_SAFE : 0);
	if (d.r == NULL && have_base && !resume)
		receiver_early(dst_abs, rflags, &target, &base, o, &early);
	bs = have_base ? base.hdr.block_size : o->block_size != 0 ?
	    o->block_size : AS_BLOCK_DEFAULT;
	/*
	 * A directory's children are the file systems mounted below it:
	 * part of its tree, unless -N (then the mount points stay empty).
	 * Files the scan would hash are left to the sender, which hashes
	 * what it reads to send them (DEFER): each byte read once, locally
	 * and towards a server.  The pending catalog is saved after that,
	 * before END.
	 */
	if (snapshot_scan(&ss, src_abs, src, have_base ? &base : NULL,
	    have_base && use_rd ? &sr.rd : NULL, bs,
	    (o->flags & SYNC_NO_RECURSE ? 0 : DIR_SCAN_XDEV) |
	    DIR_SCAN_DEFER, o, &target, res, err) == -1)
		goto out;
	snap_reader_release(&sr);
	if (resume && sync_tree_changed(&target, &pend, why, sizeof(why)) ==
	    NULL) {
		/* the same snapshot again: the stream is regenerated */
		target.hdr.guid = pend.hdr.guid;
		target.hdr.time_ns = pend.hdr.time_ns;
		snprintf(target.hdr.name, sizeof(target.hdr.name), "%s",
		    pend.hdr.name);
		res->guid = target.hdr.guid;
		snprintf(res->name, sizeof(res->name), "%s", target.hdr.name);
		rpos = part.pos;
		res->resumed_pos = rpos;
		res->resumed = part.bytes;
	} else if (resume) {
		snprintf(res->resume_msg, sizeof(res->resume_msg), "the source "
		    "changed since the interrupted transfer of %s ('%s'): "
		    "starting over", pend.hdr.name, why);
		resume = 0;
		if (sync_settle(&ss, d.abs, held, &rec, res, err) == -1)
			goto out;
	}
	catalog_release(&pend);
	now_guid = target.hdr.guid;
	rec.held_guid = held;
	/*
	 * Both are saved just before END (pending_hook), and also before
	 * the send when it may be resumed, a stream of more than one
	 * checkpoint's worth: a cut transfer resumes only from the pending
	 * catalog that the destination's record names (resume_candidate).
	 * That early catalog lacks the hashes the send computes (DEFER) and
	 * never becomes a snapshot: the receiver commits after END only,
	 * and the hook replaces it before END.
	 */
	if (!(o->flags & SYNC_FORCE) && (resume || xfer_estimate(&target,
	    have_base ? &base : NULL) >= DIR_CKPT_BYTES)) {
		if (snapstore_save(&ss, &target, SNAP_SAVE_PENDING, err) ==
		    -1)
			goto out;
		snprintf(rec.pending, sizeof(rec.pending), "%s",
		    target.hdr.name);
		if (snapstore_dest_put(&ss, d.abs, &rec, err) == -1)
			goto out;
	}

	/* 5. send and receive */
	if (d.r != NULL)
		tr = remote_transfer(&d, src_abs, &ss, &target,
		    have_base ? &base : NULL, rflags != 0, &rec, rpos, res,
		    err);
	else
		tr = transfer(src_abs, dst_abs, se.path, de.path, &ss,
		    &target, have_base ? &base : NULL, rflags, &rec, &early,
		    rpos, o, res, err);
	if (tr == -1 && (o->flags & SYNC_FORCE) && have_base &&
	    err->code == AS_E_CONFLICT) {
		/*
		 * An incremental stream can roll back metadata changes made
		 * on the destination, not content it does not carry: the
		 * receiver refused, so resend in full.
		 */
		res->full = 1;
		res->retried_full = 1;
		memset(&res->send, 0, sizeof(res->send));
		as_err_clear(err);
		if (d.r != NULL)
			tr = remote_transfer(&d, src_abs, &ss, &target, NULL,
			    1, &rec, 0, res, err);
		else
			tr = transfer(src_abs, dst_abs, se.path, de.path, &ss,
			    &target, NULL, rflags, &rec, NULL, 0, o, res, err);
	}
	if (tr == -1) {
		/*
		 * Settle now when the destination says what it holds; if it
		 * cannot tell (a server that went away), the next sync will.
		 */
		if (dest_held(&d, NULL, &held, &part2, &e2) != -1 &&
		    part2.target_guid != now_guid) {
			/* (a checkpointed transfer keeps its pending catalog) */
			if (held == now_guid) {
				if (snapstore_commit_pending(&ss,
				    target.hdr.name, &e2) == 0) {
					rec.held_guid = held;
					rec.pending[0] = '\0';
					(void)snapstore_dest_put(&ss, d.abs,
					    &rec, &e2);
				}
			} else if (snapstore_discard_pending(&ss,
			    target.hdr.name, &e2) == 0) {
				rec.held_guid = held;
				rec.pending[0] = '\0';
				(void)snapstore_dest_put(&ss, d.abs, &rec,
				    &e2);
			}
		}
		goto out;
	}

	/*
	 * 6. commit, then prune.  The pending file is the target as sent
	 * (saved before END), so a rename commits it; the catalog is
	 * written again only when the sender failed after the receiver
	 * committed (tr == 1), for what it is worth.
	 */
	if (tr == 0) {
		if (snapstore_commit_pending(&ss, target.hdr.name, err) == -1)
			goto out;
	} else if (snapstore_save(&ss, &target, SNAP_SAVE_REPLACE, tr == 1 ?
	    &e2 : err) == -1 && tr == 0)
		goto out;
	rec.held_guid = now_guid;
	rec.pending[0] = '\0';
	if (snapstore_dest_put(&ss, d.abs, &rec, tr == 1 ? &e2 : err) ==
	    -1 && tr == 0)
		goto out;
	if (tr == 1)
		goto out;
	if (!(o->flags & SYNC_NO_PRUNE) &&
	    sync_prune_keep(&ss, now_guid, o->keep_src, &res->pruned,
	    err) == -1) {
		as_err_prefix(err, "prune snapshots of '%s'", src);
		goto out;
	}
	rc = 0;
out:
	receiver_cancel(&early);
	snap_reader_release(&sr);
	res->total_ns = now_ns(CLOCK_MONOTONIC) - t0;
	remote_close(d.r);
	catalog_release(&base);
	catalog_release(&target);
	catalog_release(&pend);
	snap_dest_release(&rec);
	snapstore_release(&ss);
	endpoint_release(&se);
	endpoint_release(&de);
	free(state);
	free(src_abs);
	free(dst_abs);
	return rc;
}
