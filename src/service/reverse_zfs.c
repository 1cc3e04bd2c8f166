/*
 * reverse_zfs.c - failback between two local ZFS trees (see reverse.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "driver/zfs.h"
#include "repl/snapstore.h"
#include "service/reverse.h"
#include "base/banned.h"

static int
is_auto(const char *name)
{
	return strncmp(name, SNAP_AUTO_PREFIX, strlen(SNAP_AUTO_PREFIX)) == 0;
}

/* The newest snapshot of d by creation, or NULL. */
static const struct zfs_snap *
newest(const struct zfs_ds *d)
{
	const struct zfs_snap *n = NULL;
	size_t i;

	for (i = 0; i < d->nsnaps; i++)
		if (n == NULL || d->snaps[i].createtxg > n->createtxg)
			n = &d->snaps[i];
	return n;
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
reverse_zfs(const char *src, const char *dst, int norecurse, int force,
    struct reverse_result *res, struct as_err *err)
{
	struct zfs_tree st, dt;
	const struct zfs_ds *sd, *dd;
	const struct zfs_snap *gs, *gd;
	char *dname = NULL;
	size_t i;
	int rc = -1, ch;

	memset(res, 0, sizeof(*res));
	memset(&st, 0, sizeof(st));
	memset(&dt, 0, sizeof(dt));
	if (zfs_list(src, !norecurse, &st, err) == -1 ||
	    zfs_list(dst, !norecurse, &dt, err) == -1)
		goto out;
	if (st.n == 0 || strcmp(st.v[0].name, src) != 0) {
		as_err_set(err, AS_E_NOTFOUND, 0, "source dataset '%s' does "
		    "not exist: reverse needs it as it was at the last sync",
		    src);
		goto out;
	}
	for (i = 0; i < st.n; i++) {
		sd = &st.v[i];
		free(dname);
		dname = xasprintf("%s%s", dst, sd->name + strlen(src));
		dd = zfs_tree_find(&dt, dname);
		gs = newest(sd);
		gd = dd != NULL ? newest(dd) : NULL;
		if (gs == NULL || gd == NULL || gs->guid != gd->guid) {
			as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds %s%s%s, "
			    "but the newest snapshot of '%s' is %s%s%s: run a "
			    "final sync first, or what only '%s' has is lost",
			    dname, gd != NULL ? "'" : "", gd != NULL ?
			    gd->name : "no snapshot", gd != NULL ? "'" : "",
			    sd->name, gs != NULL ? "'" : "", gs != NULL ?
			    gs->name : "none", gs != NULL ? "'" : "",
			    sd->name);
			goto out;
		}
		if (i == 0) {
			snprintf(res->common, sizeof(res->common), "%s",
			    gs->name);
			res->guid = gs->guid;
		}
		if (changed(sd, gs, &ch, err) == -1)
			goto out;
		if (ch) {
			res->ndiff++;
			if (res->first[0] == '\0')
				snprintf(res->first, sizeof(res->first),
				    "'%s'", sd->name);
		}
	}
	if (res->ndiff > 0 && !force) {
		as_err_set(err, AS_E_CONFLICT, 0, "'zfs:%s' changed since '%s' "
		    "(%" PRIu64 " dataset%s, first: %s): reversing would lose "
		    "that; --force rolls it back to '%s'", src, res->common,
		    res->ndiff, res->ndiff == 1 ? "" : "s", res->first,
		    res->common);
		goto out;
	}
	rc = 0;
out:
	free(dname);
	zfs_tree_release(&st);
	zfs_tree_release(&dt);
	return rc;
}

int
reverse_zfs_undo(const char *ds, const char *common, int norecurse,
    struct as_err *err)
{
	struct zfs_tree t;
	const struct zfs_snap *g;
	char **names = NULL;
	size_t i, j, k, n = 0;
	int rc = 0;

	if (zfs_list(ds, !norecurse, &t, err) == -1)
		return -1;
	for (i = 0; i < t.n; i++) {
		if ((g = zfs_ds_snap_name(&t.v[i], common)) == NULL)
			continue;
		for (j = 0; j < t.v[i].nsnaps; j++) {
			const char *s = t.v[i].snaps[j].name;

			if (t.v[i].snaps[j].createtxg <= g->createtxg ||
			    !is_auto(s))
				continue;
			for (k = 0; k < n && strcmp(names[k], s) != 0; k++)
				;
			if (k == n) {
				names = xreallocarray(names, n + 1,
				    sizeof(*names));
				names[n++] = xstrdup(s);
			}
		}
	}
	for (k = 0; k < n && rc == 0; k++) {
		log_info("'zfs:%s': destroying '%s' (the reverse is undone)",
		    ds, names[k]);
		rc = zfs_destroy_snapshot(ds, names[k], !norecurse, 0, err);
	}
	for (k = 0; k < n; k++)
		free(names[k]);
	free(names);
	zfs_tree_release(&t);
	return rc;
}

int
reverse_zfs_open(const char *ds, int norecurse, struct as_err *err)
{
	struct zfs_tree t;
	const char *argv[5];
	char what[ZFS_NAME_MAX + 32];
	size_t i;
	int rc = 0;

	if (zfs_list(ds, !norecurse, &t, err) == -1)
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
