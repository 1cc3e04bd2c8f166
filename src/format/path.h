/*
 * path.h - the rules for paths that travel in streams and catalogs.
 *
 * A path is relative to the dataset root, its components separated by
 * single '/': no leading or trailing '/', no empty, "." or ".."
 * components, no NUL, each component at most AS_NAME_MAX bytes and the
 * whole at most AS_PATH_MAX bytes.  The first component may not be
 * ".autosync", the destination's private directory.  The empty path names
 * the root itself.  Any other byte (invalid UTF-8, control characters) is
 * stored verbatim: Linux allows it, and fidelity requires it.
 */
#ifndef AS_PATH_H
#define AS_PATH_H

#include <stddef.h>

#include "base/err.h"

#define AS_NAME_MAX	255
#define AS_PATH_MAX	4095
#define AS_PRIVATE_DIR	".autosync"

/*
 * 0 when p (len bytes, not necessarily terminated) obeys the rules above;
 * the empty path is accepted only when allow_root.  Otherwise -1 with
 * UNSAFE_PATH (or LIMIT for lengths).
 */
int	path_check(const char *p, size_t len, int allow_root,
	    struct as_err *err);

/*
 * The order of a depth-first walk with each directory's children sorted
 * bytewise: compare component by component, a shorter prefix first.
 * Catalogs are sorted in this order, so the diff is a merge.
 */
int	path_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* Length of the parent's path (0 for a top-level entry). */
size_t	path_parent_len(const char *p, size_t len);

#endif
