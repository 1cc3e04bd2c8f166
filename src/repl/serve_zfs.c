/*
 * serve_zfs.c - the zfs: engine of "autosync serve" (serve_engine.h):
 * ZFS datasets named "zfs:POOL/DS" in a request, for a push.
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
#include "repl/serve_engine.h"
#include "repl/snapstore.h"
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
	struct zfs_tree t;
	const struct zfs_ds *d;
	const struct zfs_snap *sn;
	int fd;

	(void)arg;
	if (rflags & DIR_RECV_FORCE)
		return as_err_set(err, AS_E_UNSUPPORTED, 0, "'%s': -F is not "
		    "supported for a remote ZFS destination: roll it back on "
		    "the server", ds);
	/* zfs_receive closes its descriptor; the caller closes in_fd */
	if ((fd = dup(in_fd)) == -1)
		return as_err_sys(err, errno, "dup");
	if (zfs_receive(ds, 0, fd, err) == -1)
		return -1;
	if (zfs_list(ds, 0, &t, err) == -1)
		return -1;
	d = zfs_tree_find(&t, ds);
	if (d == NULL || d->nsnaps == 0) {
		zfs_tree_release(&t);
		return as_err_set(err, AS_E_INTERNAL, 0, "'%s': zfs receive "
		    "succeeded but the dataset holds no snapshot", ds);
	}
	sn = &d->snaps[d->nsnaps - 1];
	res->target_guid = sn->guid;
	res->base_guid = d->nsnaps > 1 ? d->snaps[d->nsnaps - 2].guid : 0;
	snprintf(res->name, sizeof(res->name), "%s", sn->name);
	res->st.entries_sent = 1;
	prune_ds(d, sn->name);
	zfs_tree_release(&t);
	return 0;
}

const struct serve_engine serve_engine_zfs = {
	.prefix		= "zfs:",
	.what		= "ZFS",
	.datasets	= 1,
	.hold		= zfs_hold_fn,
	.receive	= zfs_receive_fn,
	.resumable	= 0,
	.receive_failed	= NULL,		/* zfs receive leaves nothing */
	.source		= NULL,		/* pull: not yet */
	.send_prepare	= NULL,
};
