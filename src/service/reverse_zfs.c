/*
 * reverse_zfs.c - failback between two ZFS trees, local or one of them
 * behind a server (see reverse.h); the steps are failback.h's
 * failback_zfs_*.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "driver/zfs.h"
#include "repl/endpoint.h"
#include "repl/failback.h"
#include "repl/remote.h"
#include "repl/snapstore.h"
#include "repl/sync.h"
#include "service/reverse.h"
#include "base/banned.h"

static int
is_auto(const char *name)
{
	return strncmp(name, SNAP_AUTO_PREFIX, strlen(SNAP_AUTO_PREFIX)) == 0;
}

int
reverse_zfs(const char *src, const char *dst, int norecurse, int force,
    struct reverse_result *res, struct as_err *err)
{
	struct zfs_tree st, dt;
	struct failback_zfs_g g;
	struct failback_drift d;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	memset(&st, 0, sizeof(st));
	memset(&dt, 0, sizeof(dt));
	if (failback_zfs_list_source(src, !norecurse, &st, err) == -1 ||
	    zfs_list(dst, !norecurse, &dt, err) == -1 ||
	    failback_zfs_check(&st, src, &dt, dst, 0, 1, force, &g, &d,
	    err) == -1)
		goto out;
	reverse_result_set(res, g.guid, g.name, d.ndiff, d.first);
	rc = 0;
out:
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

/* A zfs: endpoint, local or a URL whose path is /zfs:DS. */
static int
is_zfs(const struct endpoint *ep)
{
	return ep->kind == EP_ZFS || (endpoint_is_remote(ep) &&
	    strncmp(ep->path, "/zfs:", 5) == 0);
}

int
reverse_zfs_kind(const char *src, const char *dst)
{
	struct endpoint se, de;
	int k = 0;

	memset(&se, 0, sizeof(se));
	memset(&de, 0, sizeof(de));
	if (endpoint_parse(&se, src, NULL) == 0 &&
	    endpoint_parse(&de, dst, NULL) == 0 && is_zfs(&se) &&
	    is_zfs(&de) && !(endpoint_is_remote(&se) &&
	    endpoint_is_remote(&de)))
		k = se.kind == EP_ZFS && de.kind == EP_ZFS ? 1 : 2;
	endpoint_release(&se);
	endpoint_release(&de);
	return k;
}

/*
 * The server's listing of zfs:ds (SNAPSHOTS; its tree unless
 * norecurse), as a tree.  The flags stay set for the REVERSE that
 * follows on the same connection: the server turns the same tree.
 */
static int
zlisting(struct remote *r, const char *spec, const char *ds, int norecurse,
    struct zfs_tree *t, struct as_err *err)
{
	struct proto_snap *v = NULL;
	size_t n = 0;
	char *p;
	int rc;

	p = xasprintf("zfs:%s", ds);
	remote_set_path(r, p);
	free(p);
	remote_set_flags(r, norecurse ? 0 : REQ_F_TREE);
	if (remote_snapshots(r, &v, &n, err) == -1)
		return as_err_prefix(err, "list '%s'", spec);
	rc = sync_zfs_listing(ds, remote_peer(r), v, n, t, err);
	free(v);
	return rc;
}

/*
 * A push service (zfs:A here, zfs:B on a server): A is checked here
 * against the server's listing of B (GUIDs, A's writes); the server
 * makes B a source (REVERSE with REQ_F_SOURCE: its newest is still G,
 * its records say that this pull destination holds G, the replica
 * policy goes); then A becomes a destination here (forced: rolled back
 * to G).  A's state is locked throughout (a run of it is "busy"), and
 * nothing changes on either side before both checks passed.
 */
static int
rz_push(const char *state, const char *a, const struct endpoint *de,
    const struct remote_opts *ro, int norecurse, int force,
    struct reverse_result *res, struct as_err *err)
{
	const char *b = de->path + 5;
	struct sync_zfs_src *z = NULL;
	struct failback_zfs_g g;
	struct failback_drift d;
	struct zfs_tree st, dt;
	struct remote *r = NULL;
	char *id = NULL;
	int rc = -1;

	memset(&st, 0, sizeof(st));
	memset(&dt, 0, sizeof(dt));
	if (zfs_name_check(b, 0, err) == -1 ||
	    sync_zfs_src_open(state, a, &z, err) == -1 ||
	    failback_zfs_list_source(a, !norecurse, &st, err) == -1 ||
	    (r = remote_open(de, ro, err)) == NULL ||
	    zlisting(r, de->spec, b, norecurse, &dt, err) == -1 ||
	    failback_zfs_check(&st, a, &dt, b, 0, 1, force, &g, &d,
	    err) == -1)
		goto out;
	reverse_result_set(res, g.guid, g.name, d.ndiff, d.first);
	id = sync_pull_id("zfs:", a);
	if (remote_reverse_promote(r, g.guid, id, NULL, err) == -1) {
		as_err_prefix(err, "make '%s' a source", de->spec);
		goto out;
	}
	if (failback_zfs_demote(a, !norecurse, g.name, force, err) == -1) {
		as_err_prefix(err, "'%s' is a source now, but", de->spec);
		goto out;
	}
	rc = 0;
out:
	remote_close(r);
	free(id);
	zfs_tree_release(&st);
	zfs_tree_release(&dt);
	sync_zfs_src_close(z);
	return rc;
}

/*
 * A pull service (zfs:A on a server, zfs:B here): B's GUIDs are checked
 * against the server's listing of A here; the server checks A again
 * (its newest is G, and its writes since) and makes it a destination
 * (REVERSE; forced: rolled back to G there); then B becomes a source
 * here, its records saying that the server's dataset (by the URL, as a
 * push keys it) holds G.  B's state is locked throughout.
 */
static int
rz_pull(const char *state, const struct endpoint *se, const char *b,
    const struct remote_opts *ro, int norecurse, int force,
    struct reverse_result *res, struct as_err *err)
{
	const char *a = se->path + 5;
	struct sync_zfs_src *z = NULL;
	struct failback_zfs_g g, gb;
	struct failback_drift d;
	struct remote_reverse rv;
	struct zfs_tree st, dt;
	struct remote *r = NULL;
	char *dname;
	int rc = -1;

	memset(&st, 0, sizeof(st));
	memset(&dt, 0, sizeof(dt));
	if (zfs_name_check(a, 0, err) == -1 ||
	    sync_zfs_src_open(state, b, &z, err) == -1 ||
	    zfs_list(b, !norecurse, &dt, err) == -1)
		goto out;
	if (dt.n == 0 || strcmp(dt.v[0].name, b) != 0) {
		as_err_set(err, AS_E_NOTFOUND, 0, "'zfs:%s' does not exist",
		    b);
		goto out;
	}
	/* the server looks at A's writes: its REVERSE decides */
	if ((r = remote_open(se, ro, err)) == NULL ||
	    zlisting(r, se->spec, a, norecurse, &st, err) == -1 ||
	    failback_zfs_check(&st, a, &dt, b, 0, 0, force, &g, &d,
	    err) == -1)
		goto out;
	dname = xasprintf("zfs:%s", b);
	rc = remote_reverse_demote(r, g.guid, force, dname, &rv, NULL, err);
	free(dname);
	if (rc == -1)
		goto out;
	rc = -1;
	reverse_result_set(res, g.guid, g.name, rv.ndiff, rv.first);
	if (failback_zfs_promote(z, b, !norecurse, g.guid, se->spec, &gb,
	    err) == -1) {
		as_err_prefix(err, "'%s' is a destination now, but",
		    se->spec);
		goto out;
	}
	rc = 0;
out:
	remote_close(r);
	zfs_tree_release(&st);
	zfs_tree_release(&dt);
	sync_zfs_src_close(z);
	return rc;
}

int
reverse_zfs_remote(const char *state_dir, const char *src, const char *dst,
    const struct remote_opts *ro, int norecurse, int force,
    struct reverse_result *res, struct as_err *err)
{
	struct endpoint se, de;
	char *state = NULL;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	memset(&se, 0, sizeof(se));
	memset(&de, 0, sizeof(de));
	if (endpoint_parse(&se, src, err) == -1 ||
	    endpoint_parse(&de, dst, err) == -1)
		goto out;
	if (reverse_zfs_kind(src, dst) != 2) {
		as_err_set(err, AS_E_UNSUPPORTED, 0, "reverse '%s' -> '%s': "
		    "not two zfs: datasets with one of them remote", src, dst);
		goto out;
	}
	if ((state = snapstore_state_dir(state_dir, err)) == NULL)
		goto out;
	/* the reverse rolls the old source back itself: no forced run */
	res->rolled_back = 1;
	if (se.kind == EP_ZFS)
		rc = rz_push(state, se.path, &de, ro, norecurse, force, res,
		    err);
	else
		rc = rz_pull(state, &se, de.path, ro, norecurse, force, res,
		    err);
out:
	endpoint_release(&se);
	endpoint_release(&de);
	free(state);
	return rc;
}
