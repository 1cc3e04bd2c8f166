/*
 * failback_zfs.c - the steps of a ZFS failback (service reverse) that
 * each side does on its own; see failback.h.  ZFS keeps its snapshots
 * itself: nothing travels but the common snapshot's GUID.
 */
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
#include "repl/snapstore.h"
#include "repl/sync.h"
#include "base/banned.h"

static int
is_auto(const char *name)
{
	return strncmp(name, SNAP_AUTO_PREFIX, strlen(SNAP_AUTO_PREFIX)) == 0;
}

/*
 * The newest snapshot of d, or NULL.  Both listings are oldest first
 * (a local one sorted by createtxg; a server's has none, all 0).
 */
static const struct zfs_snap *
newest(const struct zfs_ds *d)
{
	const struct zfs_snap *n = NULL;
	size_t i;

	for (i = 0; i < d->nsnaps; i++)
		if (n == NULL || d->snaps[i].createtxg >= n->createtxg)
			n = &d->snaps[i];
	return n;
}

/*
 * The first snapshot of d after g (in listing order: creation) that
 * autosync did not make, or NULL: what `rollback -r` to g must never
 * destroy.
 */
static const struct zfs_snap *
foreign_after(const struct zfs_ds *d, const struct zfs_snap *g)
{
	size_t i;

	for (i = (size_t)(g - d->snaps) + 1; i < d->nsnaps; i++)
		if (!is_auto(d->snaps[i].name))
			return &d->snaps[i];
	return NULL;
}

static int
get_u64(const char *ds, const char *prop, uint64_t *v, struct as_err *err)
{
	char *s = NULL, *end;

	if (zfs_get(ds, prop, &s, err) == -1)
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0') {
		as_err_set(err, AS_E_IO, 0, "'%s': %s is '%s'", ds, prop, s);
		free(s);
		return -1;
	}
	free(s);
	return 0;
}

/*
 * Was d written since its snapshot g?  ZFS's own "written" where the
 * listing has it; zfs-fuse has not: there, a change shows as a
 * referenced size that differs from g's, or as blocks only g still
 * holds (g's used > 0; the older snapshots are autosync's and pruned).
 * That can miss a rewrite in place of the same size: the first run
 * after the reverse then meets zfs receive's own check (reverse.h).
 */
static int
changed(const struct zfs_ds *d, const struct zfs_snap *g, int *out,
    struct as_err *err)
{
	uint64_t ref_d, ref_g, used_g;
	char *snap;
	int rc = -1;

	if (d->written >= 0) {
		*out = d->written > 0;
		return 0;
	}
	snap = xasprintf("%s@%s", d->name, g->name);
	if (get_u64(d->name, "referenced", &ref_d, err) == 0 &&
	    get_u64(snap, "referenced", &ref_g, err) == 0 &&
	    get_u64(snap, "used", &used_g, err) == 0) {
		*out = ref_d != ref_g || used_g > 0;
		rc = 0;
	}
	free(snap);
	return rc;
}

int
failback_zfs_list_source(const char *ds, int recursive, struct zfs_tree *t,
    struct as_err *err)
{
	memset(t, 0, sizeof(*t));
	if (zfs_txg_sync(ds, err) == -1) {
		if (err == NULL || err->code != AS_E_NOTFOUND)
			return -1;
		as_err_clear(err);	/* the check says what is missing */
	}
	return zfs_list(ds, recursive, t, err);
}

static void
note_diff(struct failback_drift *d, const char *fmt, const char *a,
    const char *b)
{
	if (d->ndiff++ == 0)
		snprintf(d->first, sizeof(d->first), fmt, a, b);
}

int
failback_zfs_check(const struct zfs_tree *st, const char *src,
    const struct zfs_tree *dt, const char *dst, uint64_t guid, int local,
    int force, struct failback_zfs_g *g, struct failback_drift *d,
    struct as_err *err)
{
	const struct zfs_ds *sd, *dd;
	const struct zfs_snap *gs, *gd, *ns, *f;
	char held[SNAP_NAME_MAX + 32], *dname = NULL;
	size_t i;
	int rc = -1, ch;

	memset(g, 0, sizeof(*g));
	memset(d, 0, sizeof(*d));
	if (st->n == 0 || strcmp(st->v[0].name, src) != 0)
		return as_err_set(err, AS_E_NOTFOUND, 0, "source dataset '%s' "
		    "does not exist: reverse needs it as it was at the last "
		    "sync", src);
	for (i = 0; i < st->n; i++) {
		sd = &st->v[i];
		free(dname);
		/* what D holds of sd: by GUID from D's listing, else G */
		if (dt != NULL) {
			dname = xasprintf("%s%s", dst, sd->name + strlen(src));
			dd = zfs_tree_find(dt, dname);
			gd = dd != NULL ? newest(dd) : NULL;
			gs = gd != NULL ? zfs_ds_snap_guid(sd, gd->guid) : NULL;
			snprintf(held, sizeof(held), "%s%s%s", gd != NULL ?
			    "'" : "", gd != NULL ? gd->name : "no snapshot",
			    gd != NULL ? "'" : "");
		} else {
			dname = xstrdup(dst);
			gs = i == 0 ? zfs_ds_snap_guid(sd, guid) :
			    zfs_ds_snap_name(sd, g->name);
			if (i == 0 && gs == NULL)
				snprintf(held, sizeof(held), "%016" PRIx64,
				    guid);
			else
				snprintf(held, sizeof(held), "'%s'", i == 0 ?
				    gs->name : g->name);
		}
		ns = newest(sd);
		if (gs == NULL || (gs != ns && !force)) {
			as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds %s, but "
			    "the newest snapshot of '%s' is %s%s%s: run a final "
			    "sync first, or what only '%s' has is lost", dname,
			    held, sd->name, ns != NULL ? "'" : "", ns != NULL ?
			    ns->name : "none", ns != NULL ? "'" : "",
			    sd->name);
			goto out;
		}
		if (i == 0) {
			snprintf(g->name, sizeof(g->name), "%s", gs->name);
			g->guid = gs->guid;
		}
		if (gs != ns) {
			/* forced: rollback -r destroys only autosync's */
			if ((f = foreign_after(sd, gs)) != NULL) {
				as_err_set(err, AS_E_CONFLICT, 0, "'%s' has "
				    "snapshot '%s' after '%s' that autosync did "
				    "not make: --force rolls back over "
				    "autosync's snapshots only; destroy it "
				    "yourself to go on", sd->name, f->name,
				    gs->name);
				goto out;
			}
			note_diff(d, "'%s' has snapshots after '%s'", sd->name,
			    gs->name);
			continue;
		}
		if (!local)
			continue;	/* its server looks */
		if (changed(sd, gs, &ch, err) == -1)
			goto out;
		if (ch)
			note_diff(d, "'%s'%s", sd->name, "");
	}
	if (d->ndiff > 0 && !force) {
		as_err_set(err, AS_E_CONFLICT, 0, "'zfs:%s' changed since '%s' "
		    "(%" PRIu64 " dataset%s, first: %s): reversing would lose "
		    "that; --force rolls it back to '%s'", src, g->name,
		    d->ndiff, d->ndiff == 1 ? "" : "s", d->first, g->name);
		goto out;
	}
	rc = 0;
out:
	free(dname);
	return rc;
}

/*
 * zfs rollback -r ds@g, again for up to 5 s while it fails with an I/O
 * error: zfs-fuse answers that (not "busy") when the file system it
 * just unmounted still has its last handles, which it drops a moment
 * later (see zfs_unmount).
 */
static int
rollback(const char *ds, const char *g, struct as_err *err)
{
	int i;

	for (i = 0; zfs_rollback(ds, g, err) == -1; i++) {
		if (err == NULL || err->code != AS_E_IO || i == 10)
			return -1;
		log_debug("'zfs:%s': %s; again", ds, err->msg);
		as_err_clear(err);
		usleep(500000);
	}
	return 0;
}

int
failback_zfs_demote(const char *ds, int recursive, const char *gname,
    int force, struct as_err *err)
{
	struct zfs_tree t;
	const struct zfs_snap *g, *f;
	size_t i;
	int rc = -1;

	if (zfs_list(ds, recursive, &t, err) == -1)
		return -1;
	/* every refusal before the first rollback */
	for (i = 0; force && i < t.n; i++) {
		if ((g = zfs_ds_snap_name(&t.v[i], gname)) == NULL)
			continue;
		if ((f = foreign_after(&t.v[i], g)) != NULL) {
			as_err_set(err, AS_E_CONFLICT, 0, "'%s' has snapshot "
			    "'%s' after '%s' that autosync did not make: "
			    "--force rolls back over autosync's snapshots "
			    "only", t.v[i].name, f->name, gname);
			goto out;
		}
	}
	/*
	 * A replica is not mounted (receive -u): unmounted, children first,
	 * before a rollback (zfs-fuse keeps a mounted file system writable
	 * whatever readonly says) and before the policy.
	 */
	for (i = t.n; i-- > 0; )
		if (!t.v[i].volume && t.v[i].mounted != 0 &&
		    zfs_ds_snap_name(&t.v[i], gname) != NULL &&
		    zfs_unmount(t.v[i].name, err) == -1)
			goto out;
	for (i = 0; i < t.n; i++) {
		if (zfs_ds_snap_name(&t.v[i], gname) == NULL)
			continue;
		/*
		 * Forced: back to G whether or not a change was seen (on
		 * zfs-fuse a rewrite of the same size is not), so that the
		 * first run's receive finds it unmodified.
		 */
		if (force) {
			log_info("'zfs:%s': rolling back to '%s' (--force)",
			    t.v[i].name, gname);
			if (rollback(t.v[i].name, gname, err) == -1)
				goto out;
		}
		/* the receive policy: nothing mounts it before that run */
		if (!t.v[i].volume && zfs_receive_policy(t.v[i].name, 0,
		    err) == -1)
			goto out;
	}
	rc = 0;
out:
	zfs_tree_release(&t);
	return rc;
}

int
failback_zfs_open(const char *ds, int recursive, struct as_err *err)
{
	struct zfs_tree t;
	const char *argv[5];
	char what[ZFS_NAME_MAX + 32];
	size_t i;
	int rc = 0;

	if (zfs_list(ds, recursive, &t, err) == -1)
		return -1;
	for (i = 0; i < t.n && rc == 0; i++) {
		/* the replica policy's local settings go: inherit */
		argv[0] = "zfs";
		argv[1] = "inherit";
		argv[3] = t.v[i].name;
		argv[4] = NULL;
		snprintf(what, sizeof(what), "make '%s' writable",
		    t.v[i].name);
		argv[2] = "readonly";
		if ((rc = zfs_run(what, argv, -1, NULL, err)) == -1 ||
		    t.v[i].volume)
			continue;
		/* canmount is not inheritable: on is its default */
		if ((rc = zfs_set(t.v[i].name, "canmount", "on", err)) == -1)
			continue;
		if (t.v[i].mounted == 1 || t.v[i].mountpoint == NULL ||
		    t.v[i].mountpoint[0] != '/')
			continue;
		argv[1] = "mount";
		argv[2] = t.v[i].name;
		argv[3] = NULL;
		snprintf(what, sizeof(what), "mount '%s'", t.v[i].name);
		if (zfs_run(what, argv, -1, NULL, err) == -1) {
			/* a missing mount point inside a read-only parent */
			log_warn("%s", err->msg);
			as_err_clear(err);
		}
	}
	zfs_tree_release(&t);
	return rc;
}

int
failback_zfs_promote(struct sync_zfs_src *z, const char *ds, int recursive,
    uint64_t guid, const char *dest_key, struct failback_zfs_g *g,
    struct as_err *err)
{
	struct zfs_tree t;
	const struct zfs_snap *n;
	unsigned pruned = 0;
	int rc = -1;

	memset(g, 0, sizeof(*g));
	if (zfs_list(ds, 0, &t, err) == -1)
		return -1;
	if (t.n == 0 || strcmp(t.v[0].name, ds) != 0) {
		as_err_set(err, AS_E_NOTFOUND, 0, "'zfs:%s' does not exist",
		    ds);
		goto out;
	}
	n = newest(&t.v[0]);
	if (n == NULL || n->guid != guid) {
		as_err_set(err, AS_E_CONFLICT, 0, "'zfs:%s' holds %s%s%s, not "
		    "%016" PRIx64 ": a run came in between", ds, n != NULL ?
		    "'" : "", n != NULL ? n->name : "no snapshot", n != NULL ?
		    "'" : "", guid);
		goto out;
	}
	g->guid = n->guid;
	snprintf(g->name, sizeof(g->name), "%s", n->name);
	/* dest_key holds G: no prune of this source destroys it */
	if (sync_zfs_src_commit(z, dest_key, g->name, NULL, &pruned,
	    err) == -1)
		goto out;
	rc = failback_zfs_open(ds, recursive, err);
out:
	zfs_tree_release(&t);
	return rc;
}
