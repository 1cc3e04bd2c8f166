/*
 * serve_zfs.c - the zfs: engine of "autosync serve" (serve_engine.h):
 * ZFS datasets named "zfs:POOL/DS" in a request, pushed to this server
 * (HOLD, RECEIVE) or pulled from it (SNAPSHOTS, SEND, COMMIT: the native
 * functions, below).
 *
 * One dataset per exchange: the client lists its own tree and, for each
 * dataset, asks HOLD (the newest snapshot of the destination dataset, by
 * GUID) and pushes a RECEIVE with a native `zfs send` stream from that
 * base (or a full one).  So the client decides per dataset exactly as
 * sync_zfs.c does locally, and the server needs no `send -R`, which
 * zfs-fuse (pool v23) has but whose replication streams carry
 * properties (a mountpoint) that its receive cannot exclude.
 *
 * Access is by dataset prefix (serve_resolve_dataset, serve.conf(5)
 * "allow NAME zfs:POOL/DS rw").  Every receive is `zfs receive -u`
 * under the local property policy (canmount=noauto, readonly=on), and
 * after it the destination dataset keeps only the received snapshot of
 * autosync's ("autosync_*"): the same pruning as a local destination.
 * REVERSE turns a dataset (tree) around for a service's failback.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "driver/zfs.h"
#include "repl/failback.h"
#include "repl/serve_engine.h"
#include "repl/snapstore.h"
#include "repl/sync.h"
#include "base/banned.h"

/*
 * zfs's capabilities are kept in STATE/zfs/caps (zfs_caps_cache), as for
 * a local sync: a session then runs no probe commands.  Best effort.
 */
static void
caps_cache(const char *state)
{
	static int done;
	char *dir;

	if (done || state == NULL)
		return;
	done = 1;
	dir = xasprintf("%s/zfs", state);
	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		zfs_caps_cache(dir);
	free(dir);
}

/*
 * HOLD: what the dataset holds.  A dataset that does not exist, or has
 * no snapshot, is EMPTY (a full stream; zfs refuses it over an existing
 * dataset with its own words).  One written since its newest snapshot
 * is refused here, before a stream is sent (CONFLICT).
 */
static int
zfs_hold_fn(const struct serve_ctx *x, const char *ds,
    struct proto_result *res, struct as_err *err)
{
	struct zfs_tree t;
	const struct zfs_ds *d;
	const struct zfs_snap *sn;

	caps_cache(x->state);
	if (zfs_list(ds, 0, &t, err) == -1)
		return -1;
	d = zfs_tree_find(&t, ds);
	if (d == NULL || d->nsnaps == 0) {
		res->flags |= RES_F_EMPTY;
		zfs_tree_release(&t);
		return 0;
	}
	if (d->resume_token != NULL) {
		as_err_set(err, AS_E_CONFLICT, 0, "holds a partial receive "
		    "(resume token); abort it with 'zfs receive -A %s'", ds);
		zfs_tree_release(&t);
		return -1;
	}
	sn = &d->snaps[d->nsnaps - 1];
	if (d->written > 0) {
		as_err_set(err, AS_E_CONFLICT, 0, "was modified since its "
		    "newest snapshot '%s'", sn->name);
		zfs_tree_release(&t);
		return -1;
	}
	res->flags |= RES_F_HELD;
	res->guid = sn->guid;
	res->time_ns = sn->creation * 1000000000;
	snprintf(res->name, sizeof(res->name), "%s", sn->name);
	zfs_tree_release(&t);
	return 0;
}

/* autosync's snapshots of ds other than keep go (best effort). */
static void
prune_ds(const struct zfs_ds *d, const char *keep)
{
	struct as_err e;
	size_t i;

	for (i = 0; i < d->nsnaps; i++) {
		if (strcmp(d->snaps[i].name, keep) == 0 ||
		    strncmp(d->snaps[i].name, SNAP_AUTO_PREFIX,
		    strlen(SNAP_AUTO_PREFIX)) != 0 || d->snaps[i].userrefs > 0)
			continue;
		as_err_clear(&e);
		if (zfs_destroy_snapshot(d->name, d->snaps[i].name, 0, 0,
		    &e) == -1)
			log_warn("prune '%s@%s': %s", d->name,
			    d->snaps[i].name, e.msg);
	}
}

/*
 * RECEIVE: the receiving child.  The result names the newest snapshot
 * of the dataset afterwards, which the client checks against the GUID
 * it sent.
 */
static int
zfs_receive_fn(void *arg, const char *ds, int in_fd, int rflags,
    struct dir_recv_result *res, struct as_err *err)
{
	(void)arg;
	if (rflags & DIR_RECV_FORCE)
		return as_err_set(err, AS_E_UNSUPPORTED, 0, "'%s': -F is not "
		    "supported for a remote ZFS destination: roll it back on "
		    "the server", ds);
	return sync_zfs_receive(ds, 0, in_fd, res, prune_ds, err);
}

/* ------------------------------------------------------------------ */
/* Pull: SNAPSHOTS and SEND of a dataset (native: no catalogs) */

/*
 * SNAPSHOTS: one entry per dataset (its full name and GUID), then one
 * per snapshot of it, oldest first ("DS@SNAP", its GUID and creation
 * time): the whole tree below ds with REQ_F_TREE.  A dataset that holds
 * a partial receive is no source and is left out.
 */
static int
zfs_list_fn(const struct serve_ctx *x, const char *ds, uint32_t rflags,
    struct proto_snap **v, size_t *n, struct as_err *err)
{
	struct zfs_tree t;
	const struct zfs_ds *d;
	struct proto_snap *e;
	size_t i, j, k = 0, cap = 0;

	*v = NULL;
	*n = 0;
	caps_cache(x->state);
	if (zfs_list(ds, (rflags & REQ_F_TREE) != 0, &t, err) == -1)
		return -1;
	if (zfs_tree_find(&t, ds) == NULL) {
		zfs_tree_release(&t);
		return as_err_set(err, AS_E_NOTFOUND, 0, "does not exist");
	}
	for (i = 0; i < t.n; i++) {
		d = &t.v[i];
		if (d->resume_token != NULL)
			continue;
		if (k + d->nsnaps + 1 > PROTO_SNAPLIST_MAX) {
			free(*v);
			*v = NULL;
			zfs_tree_release(&t);
			return as_err_set(err, AS_E_LIMIT, 0, "has more than "
			    "%d snapshots", PROTO_SNAPLIST_MAX);
		}
		if (k + d->nsnaps + 1 > cap) {
			cap = (k + d->nsnaps + 1) * 2;
			*v = xreallocarray(*v, cap, sizeof(**v));
		}
		e = &(*v)[k++];
		memset(e, 0, sizeof(*e));
		e->guid = d->guid != 0 ? d->guid : 1;
		snprintf(e->name, sizeof(e->name), "%s", d->name);
		for (j = 0; j < d->nsnaps; j++) {
			e = &(*v)[k++];
			memset(e, 0, sizeof(*e));
			e->guid = d->snaps[j].guid;
			e->time_ns = d->snaps[j].creation * 1000000000;
			snprintf(e->name, sizeof(e->name), "%s@%s", d->name,
			    d->snaps[j].name);
		}
	}
	*n = k;
	zfs_tree_release(&t);
	return 0;
}

/* One pulled dataset: what is sent, and the source's locked state. */
struct zsend {
	struct sync_zfs_src *src;
	char		*snap;		/* DS@NAME */
	char		*base;		/* DS@BASE, or NULL: full */
	char		 name[SNAP_NAME_MAX + 1];
	uint64_t	 guid;
	int		 flags;		/* ZFS_SEND_* */
};

static int
zsend_run(void *arg, int fd, struct as_err *err)
{
	const struct zsend *z = arg;

	return zfs_send(z->snap, z->base, z->flags, fd, err);
}

static void
zfs_nrelease_fn(struct serve_nsend *ns)
{
	struct zsend *z = ns->priv;

	if (z == NULL)
		return;
	sync_zfs_src_close(z->src);
	free(z->snap);
	free(z->base);
	free(z);
	ns->priv = NULL;
}

/*
 * SEND: snapshot ds (and, with REQ_F_TREE, its children: one atomic
 * `zfs snapshot -r`) under a new name, or take its existing snapshot
 * snap (a child of a tree the same session snapshotted), and send it
 * from the snapshot whose GUID the client holds (q->guid; none: full).
 * The stream carries no properties (the client receives -u under its
 * own policy, as a push does).
 */
static int
zfs_nsend_fn(const struct serve_ctx *x, const char *ds, const char *snap,
    const struct proto_request *q, struct serve_nsend *ns,
    struct as_err *err)
{
	const struct zfs_caps *caps;
	struct zfs_tree t;
	const struct zfs_ds *d;
	const struct zfs_snap *sn, *b = NULL;
	struct zsend *z;
	char *full;
	size_t i;

	memset(&t, 0, sizeof(t));
	caps_cache(x->state);
	if ((caps = zfs_caps(err)) == NULL)
		return -1;
	if (snap != NULL) {
		int bad;

		full = xasprintf("%s@%s", ds, snap);
		bad = strlen(snap) > SNAP_NAME_MAX ||
		    zfs_name_check(full, 1, NULL) == -1;
		free(full);
		if (bad)
			return as_err_set(err, AS_E_UNSAFE_PATH, 0, "'%s' is "
			    "not a valid snapshot name", snap);
	}
	z = xcalloc(1, sizeof(*z));
	ns->priv = z;
	if (sync_zfs_src_open(x->state, ds, &z->src, err) == -1)
		goto fail;
	if (snap == NULL) {
		if (zfs_list(ds, (q->flags & REQ_F_TREE) != 0, &t, err) == -1)
			goto fail;
		if ((d = zfs_tree_find(&t, ds)) == NULL) {
			as_err_set(err, AS_E_NOTFOUND, 0, "does not exist");
			goto fail;
		}
		if (d->resume_token != NULL) {
			as_err_set(err, AS_E_CONFLICT, 0, "holds a partial "
			    "receive: not a source");
			goto fail;
		}
		sync_zfs_new_name(&t, z->name, sizeof(z->name));
		zfs_tree_release(&t);
		if (zfs_snapshot(ds, z->name, (q->flags & REQ_F_TREE) != 0,
		    err) == -1)
			goto fail;
	} else
		snprintf(z->name, sizeof(z->name), "%s", snap);
	if (zfs_list(ds, 0, &t, err) == -1)
		goto fail;
	if ((d = zfs_tree_find(&t, ds)) == NULL) {
		as_err_set(err, AS_E_NOTFOUND, 0, "does not exist");
		goto fail;
	}
	if ((sn = zfs_ds_snap_name(d, z->name)) == NULL) {
		as_err_set(err, AS_E_NOTFOUND, 0, "has no snapshot '%s'",
		    z->name);
		goto fail;
	}
	if (q->guid != 0 && (b = zfs_ds_snap_guid(d, q->guid)) == NULL &&
	    !(q->flags & REQ_F_FORCE)) {
		as_err_set(err, AS_E_CONFLICT, 0, "no common snapshot: the "
		    "destination holds %016" PRIx64 " which '%s' does not "
		    "have; use -F for a full resend", q->guid, ds);
		goto fail;
	}
	if (b != NULL && b->createtxg >= sn->createtxg) {
		as_err_set(err, AS_E_CONFLICT, 0, "the destination holds "
		    "'%s', not older than '%s'", b->name, sn->name);
		goto fail;
	}
	z->guid = sn->guid;
	z->snap = xasprintf("%s@%s", ds, z->name);
	if (b != NULL) {
		z->base = xasprintf("%s@%s", ds, b->name);
		/* -I only when there is something between (zfs-fuse: slow) */
		for (i = 0; caps->send_I && i < d->nsnaps; i++)
			if (d->snaps[i].createtxg > b->createtxg &&
			    d->snaps[i].createtxg < sn->createtxg)
				z->flags = ZFS_SEND_INTERMEDIATE;
	}
	ns->res.flags = RES_F_GO | (b == NULL ? RES_F_FULL : 0);
	ns->res.guid = sn->guid;
	ns->res.base_guid = b != NULL ? b->guid : 0;
	ns->res.time_ns = sn->creation * 1000000000;
	snprintf(ns->res.name, sizeof(ns->res.name), "%s", z->name);
	ns->xs.fd = -1;
	ns->xs.send = zsend_run;
	ns->xs.send_arg = z;
	zfs_tree_release(&t);
	return 0;
fail:
	zfs_tree_release(&t);
	zfs_nrelease_fn(ns);
	return -1;
}

/*
 * COMMIT: record what the client's destination holds of ds (the new
 * snapshot, or what it held before) so that pruning, here or by a
 * local sync of ds, keeps it; after a committed transfer destroy ds's
 * other autosync_* snapshots that no destination holds.
 */
static int
zfs_ncommit_fn(const struct serve_ctx *x, struct serve_nsend *ns,
    const struct proto_commit *cm, const char *id, struct as_err *err)
{
	struct zsend *z = ns->priv;
	struct zfs_tree t;
	const struct zfs_ds *d;
	const struct zfs_snap *h;
	char *ds, *held = NULL;
	unsigned pruned = 0;
	int rc;

	(void)x;
	if (cm->ok && cm->held_guid == z->guid)
		return sync_zfs_src_commit(z->src, id, z->name, z->name,
		    &pruned, err);
	ds = xstrndup(z->snap, strcspn(z->snap, "@"));
	if (cm->held_guid != 0 && zfs_list(ds, 0, &t, err) == 0) {
		d = zfs_tree_find(&t, ds);
		h = d != NULL ? zfs_ds_snap_guid(d, cm->held_guid) : NULL;
		if (h != NULL)
			held = xstrdup(h->name);
		zfs_tree_release(&t);
	}
	rc = sync_zfs_src_commit(z->src, id, held, NULL, &pruned, err);
	free(held);
	free(ds);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Failback: REVERSE (failback.h, failback_zfs_*) */

/*
 * ds's state (the lock a pull of it takes) is held throughout, so that
 * no SEND of it runs in between (CONFLICT "busy").
 */
static int
zfs_reverse_fn(const struct serve_ctx *x, const char *ds,
    const struct proto_request *q, struct proto_result *res,
    struct as_err *err)
{
	struct sync_zfs_src *z = NULL;
	struct failback_zfs_g g;
	struct failback_drift d;
	struct zfs_tree t;
	int tree = (q->flags & REQ_F_TREE) != 0, rc = -1;

	memset(&t, 0, sizeof(t));
	memset(&d, 0, sizeof(d));
	caps_cache(x->state);
	if (sync_zfs_src_open(x->state, ds, &z, err) == -1)
		return -1;
	if (q->flags & REQ_F_SOURCE) {
		if (failback_zfs_promote(z, ds, tree, q->guid, q->id, &g,
		    err) == -1)
			goto out;
	} else if (failback_zfs_list_source(ds, tree, &t, err) == -1 ||
	    failback_zfs_check(&t, ds, NULL, q->id[0] != '\0' ? q->id :
	    "the client's destination", q->guid, 1,
	    (q->flags & REQ_F_FORCE) != 0, &g, &d, err) == -1 ||
	    failback_zfs_demote(ds, tree, g.name,
	    (q->flags & REQ_F_FORCE) != 0, err) == -1)
		goto out;
	res->guid = g.guid;
	res->bytes = d.ndiff;
	snprintf(res->name, sizeof(res->name), "%s", g.name);
	snprintf(res->msg, sizeof(res->msg), "%s", d.first);
	rc = 0;
out:
	zfs_tree_release(&t);
	sync_zfs_src_close(z);
	return rc;
}

const struct serve_engine serve_engine_zfs = {
	.prefix		= "zfs:",
	.what		= "ZFS",
	.datasets	= 1,
	.hold		= zfs_hold_fn,
	.receive	= zfs_receive_fn,
	.resumable	= 0,
	.receive_failed	= NULL,		/* zfs receive leaves nothing */
	.source		= NULL,		/* native: list, nsend, ncommit */
	.send_prepare	= NULL,
	.list		= zfs_list_fn,
	.nsend		= zfs_nsend_fn,
	.ncommit	= zfs_ncommit_fn,
	.nrelease	= zfs_nrelease_fn,
	.reverse	= zfs_reverse_fn,
};
