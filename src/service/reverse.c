/*
 * reverse.c - failback between two local directories (see reverse.h).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/io.h"
#include "base/xmalloc.h"
#include "driver/dir.h"
#include "format/catalog.h"
#include "format/path.h"
#include "repl/endpoint.h"
#include "repl/failback.h"
#include "repl/proto.h"
#include "repl/remote.h"
#include "repl/sync.h"
#include "repl/snapstore.h"
#include "service/reverse.h"
#include "base/banned.h"

void
reverse_result_set(struct reverse_result *res, uint64_t guid,
    const char *name, uint64_t ndiff, const char *first)
{
	res->guid = guid;
	snprintf(res->common, sizeof(res->common), "%s", name);
	res->ndiff = ndiff;
	snprintf(res->first, sizeof(res->first), "%s", first);
}

/* What the destination D holds, after recovering it; none is CONFLICT. */
static int
dest_snapshot(const char *d_abs, struct cat_header *h, struct as_err *err)
{
	int held;

	if (dir_recover(d_abs, err) == -1 ||
	    (held = dir_held(d_abs, h, err)) == -1)
		return -1;
	if (held == 0)
		return as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds no "
		    "snapshot: nothing to reverse", d_abs);
	return 0;
}

/* Two local directories: every step here. */
static int
reverse_local(const char *state, const char *s_abs, const char *d_abs,
    int force, struct reverse_result *res, struct as_err *err)
{
	struct snapstore sss, dss;
	struct failback_drift d;
	struct cat_header h;
	struct catalog g;
	int rc = -1, held = 0;

	memset(&sss, 0, sizeof(sss));
	memset(&dss, 0, sizeof(dss));
	memset(&h, 0, sizeof(h));
	sss.lock_fd = dss.lock_fd = -1;
	catalog_init(&g);
	if (snapstore_open(&sss, state, s_abs, 1, err) == -1 ||
	    snapstore_lock(&sss, err) == -1 ||
	    snapstore_open(&dss, state, d_abs, 1, err) == -1 ||
	    snapstore_lock(&dss, err) == -1)
		goto out;
	/* what D holds is S's newest snapshot, and S is as it was then */
	if (dest_snapshot(d_abs, &h, err) == -1)
		goto out;
	held = 1;
	if (failback_check_source(&sss, s_abs, h.guid, d_abs, force, &g, &d,
	    err) == -1)
		goto out;
	reverse_result_set(res, h.guid, h.name, d.ndiff, d.first);
	/* D becomes the source, S a destination holding G */
	if (failback_promote(&dss, d_abs, h.guid, &g, s_abs, err) == -1 ||
	    failback_demote(s_abs, &g, err) == -1)
		goto out;
	rc = 0;
out:
	if (held == 1)
		cat_header_release(&h);
	catalog_release(&g);
	snapstore_release(&sss);
	snapstore_release(&dss);
	return rc;
}

/*
 * A push service (S local, D on a server): S is checked here, then the
 * server makes D a source (REVERSE with REQ_F_SOURCE: S's catalog of G
 * travels for its hashes; D's records say that this pull destination
 * holds G), then S becomes a destination.  Nothing changes anywhere
 * before both checks passed.
 */
static int
reverse_push(const char *state, const char *s_abs, const struct endpoint *de,
    const struct remote_opts *ro, int force, struct reverse_result *res,
    struct as_err *err)
{
	struct snapstore sss;
	struct failback_drift d;
	struct remote *r = NULL;
	struct catalog g;
	char *id = NULL;
	uint64_t guid = 0;
	int rc = -1, h;

	memset(&sss, 0, sizeof(sss));
	sss.lock_fd = -1;
	catalog_init(&g);
	if (snapstore_open(&sss, state, s_abs, 1, err) == -1 ||
	    snapstore_lock(&sss, err) == -1)
		goto out;
	if ((r = remote_open(de, ro, err)) == NULL)
		goto out;
	if ((h = remote_hold(r, &guid, NULL, err)) == -1)
		goto out;
	if (h == 0) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds no snapshot: "
		    "nothing to reverse", de->spec);
		goto out;
	}
	if (failback_check_source(&sss, s_abs, guid, de->spec, force, &g,
	    &d, err) == -1)
		goto out;
	reverse_result_set(res, guid, g.hdr.name, d.ndiff, d.first);
	id = sync_pull_id("", s_abs);
	if (remote_reverse_promote(r, guid, id, &g, err) == -1) {
		as_err_prefix(err, "make '%s' a source", de->spec);
		goto out;
	}
	if (failback_demote(s_abs, &g, err) == -1)
		goto out;
	rc = 0;
out:
	remote_close(r);
	free(id);
	catalog_release(&g);
	snapstore_release(&sss);
	return rc;
}

/*
 * A pull service (S on a server, D local): the server checks S and makes
 * it a destination holding G (REVERSE), sending its catalog of G; then
 * D becomes a source here with those hashes, and D's records say that
 * the server's path (by the URL, as a push keys it) holds G.
 */
static int
reverse_pull(const char *state, const struct endpoint *se, const char *d_abs,
    const struct remote_opts *ro, int force, struct reverse_result *res,
    struct as_err *err)
{
	struct snapstore dss;
	struct remote_reverse rv;
	struct remote *r = NULL;
	struct cat_header h;
	struct catalog g;
	int rc = -1, held = 0;

	memset(&dss, 0, sizeof(dss));
	memset(&h, 0, sizeof(h));
	dss.lock_fd = -1;
	catalog_init(&g);
	if (snapstore_open(&dss, state, d_abs, 1, err) == -1 ||
	    snapstore_lock(&dss, err) == -1)
		goto out;
	if (dest_snapshot(d_abs, &h, err) == -1)
		goto out;
	held = 1;
	if ((r = remote_open(se, ro, err)) == NULL)
		goto out;
	if (remote_reverse_demote(r, h.guid, force, d_abs, &rv, &g,
	    err) == -1)
		goto out;
	reverse_result_set(res, h.guid, h.name, rv.ndiff, rv.first);
	if (failback_promote(&dss, d_abs, h.guid, &g, se->spec, err) == -1) {
		as_err_prefix(err, "'%s' is a destination now, but",
		    se->spec);
		goto out;
	}
	rc = 0;
out:
	remote_close(r);
	if (held == 1)
		cat_header_release(&h);
	catalog_release(&g);
	snapstore_release(&dss);
	return rc;
}

/* A remote directory: no engine prefix after the host. */
static int
remote_dir(const struct endpoint *ep)
{
	return endpoint_is_remote(ep) && !(ep->path[0] == '/' &&
	    proto_engine_prefix(ep->path + 1) > 0);
}

/* What a refused pair is, for the message. */
static const char *
kind_word(const struct endpoint *se, const struct endpoint *de)
{
	const struct endpoint *ep[2] = { se, de };
	int i;

	for (i = 0; i < 2; i++) {
		if (ep[i]->kind == EP_BTRFS)
			return "btrfs";
		if (ep[i]->kind == EP_VOL)
			return "volumes";
		if (ep[i]->kind == EP_ZFS && endpoint_is_remote(ep[1 - i]))
			return "zfs: with a remote side";
		if (endpoint_is_remote(ep[i]) && !remote_dir(ep[i]))
			return strncmp(ep[i]->path, "/vol:", 5) == 0 ?
			    "remote volumes" : strncmp(ep[i]->path, "/zfs:",
			    5) == 0 ? "remote zfs: datasets" :
			    "remote btrfs: subvolumes";
	}
	if (endpoint_is_remote(se) && endpoint_is_remote(de))
		return "two remote endpoints";
	return "these endpoints";
}

int
reverse_dir(const char *state_dir, const char *src, const char *dst,
    const struct remote_opts *ro, int force, struct reverse_result *res,
    struct as_err *err)
{
	struct endpoint se, de;
	struct remote_opts none;
	struct stat sb;
	char *state = NULL, *s_abs = NULL, *d_abs = NULL;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	memset(&se, 0, sizeof(se));
	memset(&de, 0, sizeof(de));
	memset(&none, 0, sizeof(none));
	if (ro == NULL)
		ro = &none;
	if (endpoint_parse(&se, src, err) == -1 ||
	    endpoint_parse(&de, dst, err) == -1)
		goto out;
	if (reverse_is_vol(&se) || reverse_is_vol(&de)) {
		if ((state = snapstore_state_dir(state_dir, err)) != NULL)
			rc = reverse_vol(state, &se, &de, ro, force, res, err);
		goto out;
	}
	if (reverse_is_btrfs(&se, &de)) {
		rc = reverse_btrfs(&se, &de, ro, force, res, err);
		goto out;
	}
	if (!((se.kind == EP_LOCAL && (de.kind == EP_LOCAL ||
	    remote_dir(&de))) || (remote_dir(&se) && de.kind == EP_LOCAL))) {
		as_err_set(err, AS_E_UNSUPPORTED, 0, "reverse '%s' -> '%s': "
		    "only between two directories, two volumes or two zfs: "
		    "datasets (local, or one of them remote) in this version "
		    "(not supported on %s)", src, dst, kind_word(&se, &de));
		goto out;
	}
	if ((state = snapstore_state_dir(state_dir, err)) == NULL)
		goto out;
	if (se.kind == EP_LOCAL) {
		if ((s_abs = snapstore_abspath(se.path, err)) == NULL)
			goto out;
		if (lstat(s_abs, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
			as_err_set(err, AS_E_NOTFOUND, errno, "source '%s' is "
			    "not a directory: reverse needs it as it was at "
			    "the last sync", s_abs);
			goto out;
		}
	}
	if (de.kind == EP_LOCAL &&
	    (d_abs = snapstore_abspath(de.path, err)) == NULL)
		goto out;
	if (s_abs != NULL && d_abs != NULL)
		rc = reverse_local(state, s_abs, d_abs, force, res, err);
	else if (s_abs != NULL)
		rc = reverse_push(state, s_abs, &de, ro, force, res, err);
	else
		rc = reverse_pull(state, &se, d_abs, ro, force, res, err);
out:
	endpoint_release(&se);
	endpoint_release(&de);
	free(state);
	free(s_abs);
	free(d_abs);
	return rc;
}
