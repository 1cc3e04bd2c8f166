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
 * A server that predates REQ_F_SUBVOLS refuses it as an unknown request
 * flag, before it does anything: say what that means.
 */
static void
old_server(int tree, struct as_err *err)
{
	if (tree && err->code == AS_E_UNSUPPORTED &&
	    strstr(err->msg, "unknown request flags") != NULL)
		as_err_prefix(err, "the server cannot reverse btrfs "
		    "subvolumes with nested ones (an older autosync: upgrade "
		    "it)");
}

/*
 * A push service (A here, B on a server): A checked here (each nested
 * subvolume too), then the server makes B a source (REVERSE with
 * REQ_F_SOURCE; a tree with REQ_F_SUBVOLS: after GO it takes A's list
 * of nested subvolumes and checks B's against it) and answers its S0s,
 * held by this pull destination's id; then A becomes a replica of
 * them.  The server has changed when A's step fails: said so.
 */
static int
reverse_push(const char *a, const struct endpoint *de,
    const struct remote_opts *ro, int force,
    struct failback_btrfs_result *fr, struct as_err *err)
{
	struct failback_btrfs_old o;
	struct failback_btrfs_base s0;
	struct failback_btrfs_sub *mine = NULL, *theirs = NULL;
	struct proto_result res;
	struct remote *r = NULL;
	struct buf in = BUF_INIT, out = BUF_INIT;
	size_t nmine = 0, ntheirs = 0;
	char *id = NULL;
	int rc = -1, tree;

	if (failback_btrfs_check_source_tree(a, 0, force, &o, fr, err) == -1)
		return -1;
	tree = o.nrels > 0;
	if (tree) {
		failback_btrfs_source_subs(&o, &mine, &nmine);
		failback_btrfs_tree_encode(NULL, mine, nmine, &out);
	}
	if ((r = remote_open(de, ro, err)) == NULL)
		goto out;
	remote_set_path(r, de->path + 1);
	if (tree)
		remote_set_flags(r, REQ_F_TREE | REQ_F_SUBVOLS);
	id = sync_pull_id("btrfs:", a);
	if (remote_reverse_source_blob(r, fr->guid, id, tree ? out.data :
	    NULL, out.len, &in, tree ? FAILBACK_BTRFS_TREE_MAX : 4096, &res,
	    err) == -1 || (tree ? failback_btrfs_tree_decode(in.data, in.len,
	    1, &s0, &theirs, &ntheirs, err) : failback_btrfs_base_decode(
	    in.data, in.len, &s0, err)) == -1) {
		old_server(tree, err);
		as_err_prefix(err, "make '%s' a source", de->spec);
		goto out;
	}
	snprintf(fr->base, sizeof(fr->base), "%s", s0.name);
	if ((tree ? failback_btrfs_demote_tree(&o, &s0, theirs, ntheirs,
	    de->spec, err) : failback_btrfs_demote(&o, &s0, de->spec,
	    err)) == -1) {
		as_err_prefix(err, "'%s' is a source now, but", de->spec);
		goto out;
	}
	rc = 0;
out:
	remote_close(r);
	buf_release(&in);
	buf_release(&out);
	free(mine);
	free(theirs);
	free(id);
	failback_btrfs_old_release(&o);
	return rc;
}

/*
 * A pull service (A on a server, B here): B checked here (each nested
 * subvolume too) and its S0s taken, then the server checks A (a tree:
 * REQ_F_SUBVOLS, and each of A's nested subvolumes against B's list
 * that comes with the S0s) and makes it a replica of them (REVERSE),
 * then B becomes the source, A's URL holding S0 (as a push keys it).
 */
static int
reverse_pull(const struct endpoint *se, const char *b,
    const struct remote_opts *ro, int force,
    struct failback_btrfs_result *fr, struct as_err *err)
{
	struct failback_btrfs_new n;
	struct failback_btrfs_base s0;
	struct failback_btrfs_sub *v = NULL;
	struct proto_result go, done;
	struct remote *r = NULL;
	struct buf out = BUF_INIT;
	size_t nv = 0;
	char *id = NULL;
	int rc = -1, tree;

	if (failback_btrfs_check_dest_tree(b, 0, &n, fr, err) == -1)
		return -1;
	tree = n.nrels > 0;
	fr->guid = sync_btrfs_uuid64(n.g.received_uuid);
	snprintf(fr->common, sizeof(fr->common), "%s", n.g.name);
	if (tree) {
		if (failback_btrfs_check_dest_children(&n, se->spec, NULL, 0,
		    err) == -1 || failback_btrfs_take_base_tree(&n, &s0, &v,
		    &nv, err) == -1)
			goto out;
		failback_btrfs_tree_encode(&s0, v, nv, &out);
	} else {
		if (failback_btrfs_take_base(&n, NULL, &s0, err) == -1)
			goto out;
		failback_btrfs_base_encode(&s0, &out);
	}
	snprintf(fr->base, sizeof(fr->base), "%s", s0.name);
	if ((r = remote_open(se, ro, err)) == NULL)
		goto out;
	remote_set_path(r, se->path + 1);
	if (tree)
		remote_set_flags(r, REQ_F_TREE | REQ_F_SUBVOLS);
	/* the key of its dests record for us, whose line goes */
	id = sync_pull_id("btrfs:", b);
	if (remote_reverse_dest_blob(r, fr->guid, force, id, out.data,
	    out.len, &go, &done, err) == -1) {
		old_server(tree, err);
		goto out;
	}
	/* the root's change comes with GO, a tree's with the last RESULT */
	fr->changed = go.bytes > 0 || done.bytes > 0;
	snprintf(fr->first, sizeof(fr->first), "%s", done.bytes > 0 ?
	    done.msg : go.msg);
	if ((tree ? failback_btrfs_promote_tree(&n, se->spec, err) :
	    failback_btrfs_promote(&n, se->spec, err)) == -1) {
		as_err_prefix(err, "'%s' is a replica now, but", se->spec);
		goto out;
	}
	rc = 0;
out:
	remote_close(r);
	buf_release(&out);
	free(v);
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
