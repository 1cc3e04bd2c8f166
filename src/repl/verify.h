/*
 * verify.h - compare a destination tree with a snapshot's catalog.
 *
 * The destination is scanned afresh (dir_scan with DIR_SCAN_REHASH at the
 * snapshot's block size: every file is read) and merged with the catalog
 * in path order.  Each difference is reported once per path and kind
 * through a callback, so that the library does not print:
 *
 *   missing  in the snapshot, not in the destination
 *   extra    in the destination, not in the snapshot
 *   type     file type differs (nothing else is compared then)
 *   content  size, block hashes or device number differ
 *   target   symlink target differs
 *   mode     permission bits (incl. setuid, setgid, sticky) differ
 *   owner    numeric uid or gid differs
 *   mtime    modification time differs (nanoseconds; directories too)
 *   xattr    extended attributes (incl. ACLs, capabilities) differ
 *   link     hard-link grouping differs: entries that share an inode in
 *            the snapshot do not share one in the destination, or the
 *            other way round
 *
 * The root itself has path "" and is compared like any directory.
 */
#ifndef AS_VERIFY_H
#define AS_VERIFY_H

#include <stdint.h>

#include "base/err.h"
#include "driver/dir.h"
#include "format/catalog.h"

/* Called for each difference; path is relative to the roots. */
typedef void	(*verify_cb)(void *arg, const char *kind, const char *path);

/*
 * Compare snap (the expected state) with dst (a catalog of what is
 * there).  dst's inode index is built.  Returns the number of
 * differences.
 */
uint64_t verify_catalogs(const struct catalog *snap, struct catalog *dst,
	    verify_cb cb, void *arg);

/*
 * Scan the tree at dest and compare it with snap.  Returns 0 and sets
 * *ndiff, or -1 with err when the scan fails.  st gets the scan's counters
 * (may be NULL).
 */
int	verify_tree(const struct catalog *snap, const char *dest,
	    verify_cb cb, void *arg, uint64_t *ndiff, struct dir_stats *st,
	    struct as_err *err);

#endif
