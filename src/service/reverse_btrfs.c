/*
 * reverse_btrfs.c - failback between two btrfs subvolumes (reverse.h):
 * the endpoints to paths, the steps in repl/failback_btrfs.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "repl/endpoint.h"
#include "repl/failback_btrfs.h"
#include "repl/sync_btrfs_int.h"
#include "service/reverse.h"
#include "base/banned.h"

int
reverse_is_btrfs(const struct endpoint *se, const struct endpoint *de)
{
	return se->kind == EP_BTRFS && de->kind == EP_BTRFS;
}

int
reverse_btrfs(const struct endpoint *se, const struct endpoint *de,
    int force, struct reverse_result *res, struct as_err *err)
{
	struct failback_btrfs_result fr;
	char *a = NULL, *b = NULL;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if ((a = sync_btrfs_norm_path(se->path, "source", err)) == NULL ||
	    (b = sync_btrfs_norm_path(de->path, "destination", err)) == NULL)
		goto out;
	if (failback_btrfs_local(a, b, force, &fr, err) == -1)
		goto out;
	snprintf(res->common, sizeof(res->common), "%s", fr.common);
	res->guid = fr.guid;
	/* rolled back already: the caller's forced run is not needed */
	res->ndiff = 0;
	snprintf(res->first, sizeof(res->first), "%s", fr.first);
	log_info("reverse 'btrfs:%s' -> 'btrfs:%s': from '%s', '%s' sent "
	    "(%" PRIu64 " bytes)%s%s", a, b, fr.common, fr.base, fr.bytes,
	    fr.changed ? ", rolled back" : "", fr.b_written ?
	    ", written since the last sync" : "");
	rc = 0;
out:
	free(a);
	free(b);
	return rc;
}
