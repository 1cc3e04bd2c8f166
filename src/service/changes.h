/*
 * changes.h - the change journal of a continuous service: which
 * directories of a local source tree changed since the last run, so
 * that a tree that did not change is not scanned at all, and (once
 * dir_scan can take a list, see below) a tree that did is scanned only
 * where it changed.
 *
 * This version watches with inotify: one watch per directory of the
 * tree, added as directories appear, none below a mount point (dir_scan
 * does not cross them either) nor in the root's ".autosync".  An event
 * on an entry marks its parent directory as changed (a directory's own
 * attributes mark itself; a new directory is marked with
 * every directory below it, since what was made there before its watch
 * existed sent no event).  A moved directory, a queue overflow, a watch
 * that cannot be added
 * (max_user_watches), more than CHANGES_MAX directories, or a new
 * journal (the daemon started) mean "scan everything".
 *
 * fanotify with FAN_REPORT_DFID_NAME (one mark per file system, no
 * per-directory watches, but CAP_SYS_ADMIN and a handle-to-path lookup
 * per event) is the better source on large trees; it is not used yet.
 *
 * What dir_scan would need to use the list: a variant that takes the
 * base catalog and a sorted list of changed directories, lstat()s the
 * entries of those directories (and walks new subtrees whole), and
 * copies every other entry from the base unchanged, in path order.
 */
#ifndef AS_CHANGES_H
#define AS_CHANGES_H

#include <stddef.h>

#include "base/err.h"

#define CHANGES_MAX	10000	/* directories listed; beyond: full */

struct changes;

/* Watch the tree at root (absolute).  The journal starts "full". */
struct changes *changes_open(const char *root, struct as_err *err);
void	changes_close(struct changes *c);

/* Poll it for POLLIN, then call changes_read(). */
int	changes_fd(const struct changes *c);

/*
 * Read the events waiting (never blocks).  Returns 1 when something
 * changed since the last changes_take(), 0 if not, -1 with err when the
 * journal broke (then it reports full).
 */
int	changes_read(struct changes *c, struct as_err *err);

/* The next take reports full (a run that used the last take failed). */
void	changes_force_full(struct changes *c);

/* 1 when changes are waiting (or a full scan is), 0 if not. */
int	changes_pending(const struct changes *c);

/*
 * Take what changed and start afresh: *full is 1 when everything must
 * be scanned; else *dirs holds *n changed directories relative to the
 * root ("" for the root itself), sorted, allocated (changes_free_list).
 */
void	changes_take(struct changes *c, int *full, char ***dirs, size_t *n);
void	changes_free_list(char **dirs, size_t n);

#endif
