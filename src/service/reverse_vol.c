/*
 * reverse_vol.c - failback between two volumes (vol:), local or one of
 * them behind a server (see reverse.h); the steps are failback.h's
 * failback_vol_*.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "driver/vol.h"
#include "format/catalog.h"
#include "repl/endpoint.h"
#include "repl/failback.h"
#include "repl/remote.h"
#include "repl/snapstore.h"
#include "repl/sync.h"
#include "service/reverse.h"
#include "base/banned.h"

/* What the local volume abs holds: 0 and *guid, or -1 (none: CONFLICT). */
static int
vheld(const char *abs, const char *state, uint64_t *guid, char *name,
    struct as_err *err)
{
	int h;

	if (vol_recover(abs, state, err) == -1 ||
	    (h = vol_held(abs, state, guid, name, err)) == -1)
		return -1;
	if (h == 0)
		return as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds no "
		    "snapshot: nothing to reverse", abs);
	return 0;
}

/*
 * Two local volumes.  A becomes a destination before B a source: if the
 * second step fails, A's record is all that changed, and A is still the
 * service's source (a source's record is never read).
 */
static int
rv_local(const char *state, const char *a, const char *b, int force,
    struct reverse_result *res, struct as_err *err)
{
	struct snapstore sa, sb;
	struct failback_drift d;
	struct catalog g;
	char name[256];
	uint64_t guid = 0;
	int rc = -1;

	memset(&sa, 0, sizeof(sa));
	memset(&sb, 0, sizeof(sb));
	sa.lock_fd = sb.lock_fd = -1;
	catalog_init(&g);
	if (snapstore_open(&sa, state, a, 1, err) == -1 ||
	    snapstore_lock(&sa, err) == -1 ||
	    snapstore_open(&sb, state, b, 1, err) == -1 ||
	    snapstore_lock(&sb, err) == -1 ||
	    vheld(b, state, &guid, name, err) == -1 ||
	    failback_vol_check_source(&sa, a, guid, b, force, &g, &d,
	    err) == -1)
		goto out;
	reverse_result_set(res, guid, name, d.ndiff, d.first);
	if (failback_vol_demote(a, state, &g, err) == -1 ||
	    failback_vol_promote(&sb, b, state, guid, &g, a, err) == -1)
		goto out;
	rc = 0;
out:
	catalog_release(&g);
	snapstore_release(&sa);
	snapstore_release(&sb);
	return rc;
}

/*
 * A push service (A local, B on a server): A is checked and made a
 * destination here, then the server makes B a source (REVERSE with
 * REQ_F_SOURCE, A's catalog travels); B's records say that this pull
 * destination (sync_pull_id "vol:") holds it.  If the server refuses
 * (read-only access...), A's new record goes again: nothing changed.
 */
static int
rv_push(const char *state, const char *a, const struct endpoint *de,
    const struct remote_opts *ro, int force, struct reverse_result *res,
    struct as_err *err)
{
	struct snapstore sa;
	struct failback_drift d;
	struct remote *r = NULL;
	struct catalog g;
	char name[SNAP_NAME_MAX + 1], *id = NULL;
	struct as_err e2;
	uint64_t guid = 0, prev = 0;
	int rc = -1, h;

	memset(&sa, 0, sizeof(sa));
	sa.lock_fd = -1;
	catalog_init(&g);
	if (snapstore_open(&sa, state, a, 1, err) == -1 ||
	    snapstore_lock(&sa, err) == -1 ||
	    (r = remote_open(de, ro, err)) == NULL ||
	    (h = remote_hold(r, &guid, NULL, err)) == -1)
		goto out;
	if (h == 0) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds no snapshot: "
		    "nothing to reverse", de->spec);
		goto out;
	}
	if (failback_vol_check_source(&sa, a, guid, de->spec, force, &g, &d,
	    err) == -1)
		goto out;
	if (g.hdr.guid == guid)
		snprintf(name, sizeof(name), "%s", g.hdr.name);
	else
		snprintf(name, sizeof(name), "%016" PRIx64, guid);
	reverse_result_set(res, guid, name, d.ndiff, d.first);
	if (vol_held(a, state, &prev, NULL, err) == -1 ||
	    failback_vol_demote(a, state, &g, err) == -1)
		goto out;
	id = sync_pull_id("vol:", a);
	if (remote_reverse_promote(r, guid, id, &g, err) == -1) {
		/*
		 * Refused (read-only access, a run in between) or cut: A is
		 * the source still, without the record it did not have.
		 */
		if (prev == 0)
			(void)vol_hold_drop(a, state, &e2);
		as_err_prefix(err, "make '%s' a source", de->spec);
		goto out;
	}
	rc = 0;
out:
	remote_close(r);
	free(id);
	catalog_release(&g);
	snapstore_release(&sa);
	return rc;
}

/*
 * A pull service (A on a server, B local): the server checks A and makes
 * it a destination (REVERSE), sending the catalog it holds; then B
 * becomes a source here, its records saying that the server's volume
 * (by the URL, as a push keys it) holds that.
 */
static int
rv_pull(const char *state, const struct endpoint *se, const char *b,
    const struct remote_opts *ro, int force, struct reverse_result *res,
    struct as_err *err)
{
	struct snapstore sb;
	struct remote_reverse rv;
	struct remote *r = NULL;
	struct catalog g;
	char name[256];
	uint64_t guid = 0;
	int rc = -1;

	memset(&sb, 0, sizeof(sb));
	sb.lock_fd = -1;
	catalog_init(&g);
	if (snapstore_open(&sb, state, b, 1, err) == -1 ||
	    snapstore_lock(&sb, err) == -1 ||
	    vheld(b, state, &guid, name, err) == -1 ||
	    (r = remote_open(se, ro, err)) == NULL ||
	    remote_reverse_demote(r, guid, force, b, &rv, &g, err) == -1)
		goto out;
	reverse_result_set(res, guid, name, rv.ndiff, rv.first);
	if (failback_vol_promote(&sb, b, state, guid, &g, se->spec,
	    err) == -1) {
		as_err_prefix(err, "'%s' is a destination now, but", se->spec);
		goto out;
	}
	rc = 0;
out:
	remote_close(r);
	catalog_release(&g);
	snapstore_release(&sb);
	return rc;
}

/* A volume endpoint: vol:PATH, or a URL whose path is /vol:PATH. */
int
reverse_is_vol(const struct endpoint *ep)
{
	return ep->kind == EP_VOL || (endpoint_is_remote(ep) &&
	    strncmp(ep->path, "/vol:", 5) == 0);
}

int
reverse_vol(const char *state, const struct endpoint *se,
    const struct endpoint *de, const struct remote_opts *ro, int force,
    struct reverse_result *res, struct as_err *err)
{
	char *a = NULL, *b = NULL;
	int rc = -1;

	if (!reverse_is_vol(se) || !reverse_is_vol(de) ||
	    (endpoint_is_remote(se) && endpoint_is_remote(de)))
		return as_err_set(err, AS_E_UNSUPPORTED, 0, "reverse '%s' -> "
		    "'%s': volumes reverse between two vol: endpoints, at "
		    "most one of them remote", se->spec, de->spec);
	if (!endpoint_is_remote(se) &&
	    (a = snapstore_abspath(se->path, err)) == NULL)
		goto out;
	if (!endpoint_is_remote(de) &&
	    (b = snapstore_abspath(de->path, err)) == NULL)
		goto out;
	if (a != NULL && b != NULL)
		rc = rv_local(state, a, b, force, res, err);
	else if (a != NULL)
		rc = rv_push(state, a, de, ro, force, res, err);
	else
		rc = rv_pull(state, se, b, ro, force, res, err);
out:
	free(a);
	free(b);
	return rc;
}
