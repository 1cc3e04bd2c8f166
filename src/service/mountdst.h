/*
 * mountdst.h - mount-destination: make a service's replica readable
 * somewhere without letting writes there diverge it.
 *
 * For a local directory destination: a read-only bind mount (MS_BIND,
 * then a remount with MS_RDONLY, MS_NOSUID and MS_NODEV) of the
 * destination at a path, by default STATE/mnt/NAME.  Runs keep
 * replicating into the destination; the mount shows each new snapshot
 * as it is committed.  The path is recorded in STATE/run/NAME.mnt so
 * that umount-destination (and destroy, which refuses while mounted)
 * find it.  Needs CAP_SYS_ADMIN (root).  Remote destinations are USAGE
 * (mount on the destination's host), volumes UNSUPPORTED.
 *
 * A zfs: destination is mounted by zfs (zfs_mount_tree_ro: readonly=on,
 * canmount=noauto, mountpoint=path, the children below it), and the
 * record has a second line "zfs:DATASET" so that umount-destination
 * unmounts the tree through zfs and lets mountpoint be inherited again.
 * A btrfs: destination (the published view, a read-only snapshot) is
 * bind-mounted like a directory; a later run swaps a new view in at the
 * destination path, which the mount does not follow.
 */
#ifndef AS_MOUNTDST_H
#define AS_MOUNTDST_H

#include "base/err.h"

/*
 * Mount the destination dest (an endpoint spec) of service name at path
 * (NULL: the default; created when missing).  *where gets the path
 * (allocated).  CONFLICT when the service already has one mounted.
 */
int	mountdst_mount(const char *state_dir, const char *name,
	    const char *dest, const char *path, char **where,
	    struct as_err *err);

/*
 * Unmount what mountdst_mount mounted for name (or path, when given);
 * NOTFOUND when nothing is.  *where gets the path (allocated, may be
 * NULL on error).
 */
int	mountdst_umount(const char *state_dir, const char *name,
	    const char *path, char **where, struct as_err *err);

/* 1 when service name has its destination mounted, 0 if not, -1. */
int	mountdst_active(const char *state_dir, const char *name, char **where,
	    struct as_err *err);

#endif
