/*
 * reverse_btrfs.c - failback between two btrfs subvolumes (reverse.h):
 * both local, or one of them a server's btrfs: path (push or pull); the
 * steps are repl/failback_btrfs.h's, a server's side on REQUEST REVERSE.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "repl/endpoint.h"
#include "repl/failback_btrfs.h"
#include "repl/proto.h"
#include "repl/remote.h"
#include "repl/sync.h"
#include "repl/sync_btrfs_int.h"
#include "service/reverse.h"
#include "base/banned.h"

/* A server's btrfs: path ("/btrfs:/..." after the host). */
static int
remote_btrfs(const struct endpoint *ep)
{
	return endpoint_is_remote(ep) && strncmp(ep->path, "/btrfs:/", 8) == 0;
}

int
reverse_is_btrfs(const struct endpoint *se, const struct endpoint *de)
{
	return (se->kind == EP_BTRFS && (de->kind == EP_BTRFS ||
	    remote_btrfs(de))) || (remote_btrfs(se) && de->kind == EP_BTRFS);
}

/*
 * A push service (A here, B on a server): A checked here, then the
 * server makes B a source (REVERSE with REQ_F_SOURCE) and answers its
 * S0, held by this pull destination's id; then A becomes a replica of
 * S0.  The server has changed when A's step fails: said so.
 */
static int
reverse_push(const char *a, const struct endpoint *de,
    const struct remote_opts *ro, int force,
    struct failback_btrfs_result *fr, struct as_err *err)
{
	struct failback_btrfs_old o;
	struct failback_btrfs_base s0;
	struct proto_result res;
	struct remote *r = NULL;
	struct buf in = BUF_INIT;
	char *id = NULL;
	int rc = -1;

	if (failback_btrfs_check_source(a, 0, force, &o, fr, err) == -1)
		return -1;
	if ((r = remote_open(de, ro, err)) == NULL)
		goto out;
	remote_set_path(r, de->path + 1);
	id = sync_pull_id("btrfs:", a);
	if (remote_reverse_source_blob(r, fr->guid, id, &in, &res,
	    err) == -1 || failback_btrfs_base_decode(in.data, in.len, &s0,
	    err) == -1) {
		as_err_prefix(err, "make '%s' a source", de->spec);
		goto out;
	}
	snprintf(fr->base, sizeof(fr->base), "%s", s0.name);
	if (failback_btrfs_demote(&o, &s0, de->spec, err) == -1) {
		as_err_prefix(err, "'%s' is a source now, but", de->spec);
		goto out;
	}
	rc = 0;
out:
	remote_close(r);
	buf_release(&in);
	free(id);
	failback_btrfs_old_release(&o);
	return rc;
}

/*
 * A pull service (A on a server, B here): B checked here and S0 taken,
 * then the server checks A and makes it a replica of S0 (REVERSE), then
 * B becomes the source, A's URL holding S0 (as a push keys it).
 */
static int
reverse_pull(const struct endpoint *se, const char *b,
    const struct remote_opts *ro, int force,
    struct failback_btrfs_result *fr, struct as_err *err)
{
	struct failback_btrfs_new n;
	struct failback_btrfs_base s0;
	struct proto_result go;
	struct remote *r = NULL;
	struct buf out = BUF_INIT;
	char *id = NULL;
	int rc = -1;

	if (failback_btrfs_check_dest(b, 0, 0, &n, fr, err) == -1)
		return -1;
	fr->guid = sync_btrfs_uuid64(n.g.received_uuid);
	snprintf(fr->common, sizeof(fr->common), "%s", n.g.name);
	if (failback_btrfs_take_base(&n, NULL, &s0, err) == -1)
		goto out;
	snprintf(fr->base, sizeof(fr->base), "%s", s0.name);
	failback_btrfs_base_encode(&s0, &out);
	if ((r = remote_open(se, ro, err)) == NULL)
		goto out;
	remote_set_path(r, se->path + 1);
	/* the key of its dests record for us, whose line goes */
	id = sync_pull_id("btrfs:", b);
	if (remote_reverse_dest_blob(r, fr->guid, force, id, out.data,
	    out.len, &go, err) == -1)
		goto out;
	fr->changed = go.bytes > 0;
	snprintf(fr->first, sizeof(fr->first), "%s", go.msg);
	if (failback_btrfs_promote(&n, se->spec, err) == -1) {
		as_err_prefix(err, "'%s' is a replica now, but", se->spec);
		goto out;
	}
	rc = 0;
out:
	remote_close(r);
	buf_release(&out);
	free(id);
	failback_btrfs_new_release(&n);
	return rc;
}

int
reverse_btrfs(const struct endpoint *se, const struct endpoint *de,
    const struct remote_opts *ro, int force, struct reverse_result *res,
    struct as_err *err)
{
	struct failback_btrfs_result fr;
	char *a = NULL, *b = NULL;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	memset(&fr, 0, sizeof(fr));
	if (!endpoint_is_remote(se) &&
	    (a = sync_btrfs_norm_path(se->path, "source", err)) == NULL)
		goto out;
	if (!endpoint_is_remote(de) &&
	    (b = sync_btrfs_norm_path(de->path, "destination", err)) == NULL)
		goto out;
	if (a != NULL && b != NULL)
		rc = failback_btrfs_local(a, b, force, &fr, err);
	else if (a != NULL)
		rc = reverse_push(a, de, ro, force, &fr, err);
	else
		rc = reverse_pull(se, b, ro, force, &fr, err);
	if (rc == -1)
		goto out;
	snprintf(res->common, sizeof(res->common), "%s", fr.common);
	res->guid = fr.guid;
	/* rolled back already: the caller's forced run is not needed */
	res->ndiff = 0;
	snprintf(res->first, sizeof(res->first), "%s", fr.first);
	log_info("reverse '%s' -> '%s': from '%s', '%s' the new source's "
	    "base (%" PRIu64 " bytes sent)%s%s", se->spec, de->spec,
	    fr.common, fr.base, fr.bytes, fr.changed ? ", rolled back" : "",
	    fr.b_written ? ", written since the last sync" : "");
out:
	free(a);
	free(b);
	return rc;
}
