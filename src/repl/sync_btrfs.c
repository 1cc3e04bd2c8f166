/*
 * sync_btrfs.c - the replication step for btrfs subvolumes (sync.h).
 * The btrfs driver is being built (issue 6); until it lands the step is
 * refused with USAGE, as the endpoint prefix was before.
 */
#include "repl/endpoint.h"
#include "repl/sync.h"
#include "base/banned.h"

int
sync_run_btrfs(const struct endpoint *se, const struct endpoint *de,
    const struct sync_opts *o, struct sync_result *res, struct as_err *err)
{
	(void)o;
	(void)res;
	return as_err_set(err, AS_E_USAGE, 0, "'%s' -> '%s': btrfs subvolumes are "
	    "not supported yet", se->spec, de->spec);
}
