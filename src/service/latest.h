/*
 * latest.h - NAME-latest where the snapshots are the engine's own (ZFS,
 * btrfs), on each local side of a service; the dir engine's is an alias
 * among its catalogs (runner.c).
 *
 * ZFS: a user property, not a snapshot.  After a good run the root
 * dataset of a local zfs: side gets
 *
 *	autosync:NAME-latest = autosync_YYYY-MM-DD_HH:MM:SS
 *
 * (NAME lowercased: ZFS takes no capitals in a property name), which
 * its children inherit, so `zfs get autosync:NAME-latest DS` names the
 * newest snapshot on the source and on the destination alike.  Why not
 * a snapshot called NAME-latest: a ZFS snapshot has one name, so it
 * would be a second snapshot.  On the source it would lie between two
 * runs' snapshots and the next `send -I` would carry it over; on the
 * destination it would be a snapshot the source does not have after
 * the common one, which is exactly what divergence detection refuses
 * (and -F would not destroy it: not autosync_*).  Renaming the newest
 * autosync_* snapshot instead would keep its GUID but lose the name
 * that the other destinations' records (STATE/zfs/.../dests) and the
 * pruning go by.  A property changes neither GUIDs nor snapshots nor
 * the data a receive checks ("modified since most recent snapshot").
 *
 * btrfs: a symbolic link SNAPDIR/NAME-latest -> autosync_... in the
 * snapshot directory of a local btrfs: side (driver/btrfs.h, both
 * sides one layout), replaced by one rename; the driver looks only at
 * autosync_* there.
 *
 * A remote side gets none (its server's business), nor a directory.
 */
#ifndef AS_LATEST_H
#define AS_LATEST_H

#include "base/err.h"

#define LATEST_ZFS_PREFIX	"autosync:"

/*
 * Name snap (the run's new snapshot) NAME-latest on each local zfs: or
 * btrfs: side of src -> dst.  *sides counts the sides named (0: none of
 * them is such).  Returns 0, or -1 with err (the first failure).
 */
int	latest_native_set(const char *name, const char *src, const char *dst,
	    const char *snap, int *sides, struct as_err *err);
/* Remove NAME-latest from those sides; missing is not an error. */
int	latest_native_drop(const char *name, const char *src,
	    const char *dst, struct as_err *err);
/* The ZFS property of service name (allocated). */
char	*latest_zfs_prop(const char *name);

#endif
