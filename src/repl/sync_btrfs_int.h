/*
 * sync_btrfs_int.h - what sync_btrfs.c lends to the btrfs failback
 * (failback_btrfs.c), so that a reverse checks, records and streams
 * exactly as a run does: not a public interface.
 */
#ifndef AS_SYNC_BTRFS_INT_H
#define AS_SYNC_BTRFS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "driver/btrfs.h"

/* The first 64 bits of a UUID: the protocol's and sync_result's GUID. */
uint64_t sync_btrfs_uuid64(const char *uuid);
/* path without trailing slashes (owned); absolute, not "/"; what names it. */
char	*sync_btrfs_norm_path(const char *p, const char *what,
	    struct as_err *err);
/* A source: a subvolume whose parent directory is on its file system. */
int	sync_btrfs_check_source(const char *src, struct btrfs_subvol *sv,
	    struct as_err *err);
/* SNAPDIR/dests: dst holds name now (other destinations' lines kept). */
int	sync_btrfs_dests_put(const char *sdir, const char *dst,
	    const char *name, struct as_err *err);
/* Whether a destination other than dst that still exists holds name. */
int	sync_btrfs_held_elsewhere(const char *sdir, const char *dst,
	    const char *name, struct as_err *err);
/* pub's times: those of the top directory of dir/name (a snapshot). */
int	sync_btrfs_pub_times(const char *dir, const char *name,
	    struct btrfs_pub *pub, struct as_err *err);
/*
 * One local stream, as a run makes it: `btrfs send [-p sdir/parent]
 * sdir/name | btrfs receive` into the snapshot directory of rel ("" the
 * root, else a nested subvolume's children/ENC) in d's, the result
 * checked read-only with received_uuid snap_uuid or deleted; *bytes
 * grows by the stream's size.  src names the source in messages.
 */
int	sync_btrfs_transfer(struct btrfs_dest *d, const char *rel,
	    const char *src, const char *sdir, const char *snap_uuid,
	    const char *name, const char *parent, uint64_t *bytes, struct as_err *err);

#endif
