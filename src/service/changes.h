/*
 * changes.h - the change journal of a continuous service: which
 * directories of a local source tree changed since the last run, so
 * that a tree that did not change is not scanned at all, and a tree
 * that did is scanned only where it changed (dir_scan_narrow).
 *
 * This version watches with inotify: one watch per directory of the
 * tree, added as directories appear, file systems mounted below
 * included (sync scans them), none in the root's ".autosync".  An event
 * on an entry marks its parent directory as changed (a directory's own
 * attributes mark itself; a new directory is marked with
 * every directory below it, since what was made there before its watch
 * existed sent no event; a directory moved in is marked the same way,
 * and its watches, if it was watched, get its new name).  A queue
 * overflow, a watch that cannot be added
 * (max_user_watches), more than CHANGES_MAX directories, a mount or
 * unmount at or below the root (changes_mounts_changed), the root
 * itself moved or deleted, or a new journal (the daemon started) mean
 * "scan everything".
 *
 * What inotify on directories does not hear: a write through a shared
 * mmap (no event at all), a write to a hard-linked file through a name
 * in another directory or outside the tree (the event goes to that
 * name's directory; dir_scan_narrow lists the directories of
 * hard-linked files every time for that reason), changes made on
 * another NFS or CIFS client.  The service scans in full every
 * full_scan_interval for these.
 *
 * fanotify with FAN_REPORT_DFID_NAME (one mark per file system, no
 * per-directory watches, but CAP_SYS_ADMIN and a handle-to-path lookup
 * per event) would save the watches' setup walk and their kernel memory
 * on large trees; it is not used: an idle inotify journal costs no CPU
 * (bench/README.md), and a file system mark hears every event of the
 * file system, most of them outside the tree, each to be looked up and
 * dropped.
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

/*
 * Call when the mount table changed (POLLPRI on /proc/self/mountinfo):
 * if a mount at or below the root came, went or was replaced (inotify
 * says nothing of it), the next take reports full and the tree is
 * watched again.  Returns 1 then, else 0.
 */
int	changes_mounts_changed(struct changes *c);

/*
 * Call when the mount table changed (POLLPRI on /proc/self/mountinfo):
 * if a mount at or below the root came, went or was replaced (inotify
 * says nothing of it), the next take reports full and the tree is
 * watched again.  Returns 1 then, else 0.
 */
int	changes_mounts_changed(struct changes *c);

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
