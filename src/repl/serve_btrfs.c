/*
 * serve_btrfs.c - the btrfs: engine of "autosync serve" (serve_engine.h):
 * btrfs subvolumes named "btrfs:PATH" in a request, pushed to and
 * pulled from this server.
 *
 * A path, not a dataset: access is serve_resolve's (roots, rw, no
 * symbolic link below the root).  One subvolume per exchange, as ZFS
 * does one dataset: a nested subvolume is named by REQ_F_NESTED and its
 * path below the root in the request's id (HOLD, RECEIVE: "REL"; SEND:
 * "NAME/REL", the snapshot the root's SEND took); a push's root RECEIVE
 * with REQ_F_TREE publishes the view with the children it sent first,
 * and a pull's SNAPSHOTS and SEND with REQ_F_TREE list and snapshot the
 * nested subvolumes (unless -N).  The snapshots are btrfs's own (native:
 * no catalogs); the protocol's GUID is the first 64 bits of a
 * snapshot's UUID.
 *
 * Trust (RELIABILITY.md case 74): btrfs receive does not validate what
 * a stream does, so RECEIVE is refused (AUTH, before GO: nothing is
 * read) unless the client's grant says "trusted" (serve.conf: "allow
 * NAME btrfs:/mnt/backup rw trusted"), or the session is an ssh login
 * without a config (that user can run btrfs receive anyway).  Quick
 * mode (--root) never trusts.  The work is in sync_btrfs.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "repl/serve_engine.h"
#include "repl/sync.h"
#include "base/banned.h"

static int
btrfs_hold_fn(const struct serve_ctx *x, const char *path,
    struct proto_result *res, struct as_err *err)
{
	uint64_t guid;
	int r;

	if ((r = sync_btrfs_held(path, x->q != NULL && (x->q->flags &
	    REQ_F_NESTED) ? x->q->id : NULL, &guid, res->name,
	    sizeof(res->name), err)) == -1)
		return -1;
	if (r == 1) {
		res->flags |= RES_F_HELD;
		res->guid = guid;
	} else {
		res->name[0] = '\0';
		res->flags |= RES_F_EMPTY;
	}
	return 0;
}

static int
btrfs_receive_fn(void *arg, const char *dest, int in_fd, int rflags,
    struct dir_recv_result *res, struct as_err *err)
{
	const struct serve_recv *sr = arg;
	struct sync_btrfs_recv a;

	a.trusted = sr->trusted;
	a.rel = (sr->flags & REQ_F_NESTED) ? sr->id : NULL;
	a.tree = (sr->flags & REQ_F_TREE) != 0;
	return sync_btrfs_receive(&a, dest, in_fd, rflags, res, err);
}

static int
btrfs_list_fn(const struct serve_ctx *x, const char *path, uint32_t rflags,
    struct proto_snap **v, size_t *n, struct as_err *err)
{
	(void)x;
	return sync_btrfs_list(path, !(rflags & REQ_F_TREE), v, n, err);
}

static int
btrfs_nsend_fn(const struct serve_ctx *x, const char *path, const char *snap,
    const struct proto_request *q, struct serve_nsend *ns,
    struct as_err *err)
{
	struct sync_btrfs_send *s;

	(void)x;
	(void)snap;	/* a path engine: never split at '@' */
	if (sync_btrfs_send_open(path, q->guid, (q->flags & REQ_F_FORCE) != 0,
	    !(q->flags & REQ_F_TREE), (q->flags & REQ_F_NESTED) ? q->id :
	    NULL, &s, &ns->res, &ns->xs, err) == -1)
		return -1;
	ns->priv = s;
	return 0;
}

static int
btrfs_ncommit_fn(const struct serve_ctx *x, struct serve_nsend *ns,
    const struct proto_commit *cm, const char *id, struct as_err *err)
{
	(void)x;
	return sync_btrfs_send_commit(ns->priv, id, cm->ok &&
	    cm->held_guid == ns->res.guid, err);
}

static void
btrfs_nrelease_fn(struct serve_nsend *ns)
{
	sync_btrfs_send_close(ns->priv);
	ns->priv = NULL;
}

const struct serve_engine serve_engine_btrfs = {
	.prefix		= "btrfs:",
	.what		= "btrfs",
	.trust		= 1,
	.hold		= btrfs_hold_fn,
	.receive	= btrfs_receive_fn,
	.resumable	= 0,
	.receive_failed	= NULL,
	.source		= NULL,		/* native: list, nsend, ncommit */
	.send_prepare	= NULL,
	.list		= btrfs_list_fn,
	.nsend		= btrfs_nsend_fn,
	.ncommit	= btrfs_ncommit_fn,
	.nrelease	= btrfs_nrelease_fn,
};
