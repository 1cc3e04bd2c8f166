/*
 * changes.h - the change journal of a continuous service: which
 * directories of a local source tree changed since the last run, so
 * that a tree that did not change is not scanned at all, and a tree
 * that did is scanned only where it changed (dir_scan_narrow).
 *
 * Two ways to hear changes, the first that works is used:
 *
 * fanotify (changes_fanotify.c): one FAN_MARK_FILESYSTEM mark per file
 * system of the tree (the root's, and each mounted below it: sync scans
 * them), events reported with the directory's file handle and the
 * entry's name (FAN_REPORT_DFID_NAME).  A handle is turned into a path
 * (open_by_handle_at, then the descriptor's /proc/self/fd link), cached
 * by handle, so that a busy directory costs one lookup; a directory
 * outside the tree (the mark hears the whole file system) is cached as
 * such and its events dropped, and once it proves busy the kernel is
 * told to ignore it (an ignore mark, until a directory moves).  No walk
 * of the tree, no per-directory kernel object in it.  Needs CAP_SYS_ADMIN (file system marks) and
 * CAP_DAC_READ_SEARCH (open_by_handle_at), and file systems whose
 * handles can be decoded and that report an fsid (not overlayfs, many
 * FUSE file systems, a btrfs subvolume other than the top one).
 *
 * inotify (changes_inotify.c): one watch per directory of the tree,
 * added as directories appear, mounts below included, none in the
 * root's ".autosync".
 *
 * Either way an event on an entry marks its parent directory as
 * changed (a directory's own attributes mark itself); a directory moved
 * in is marked with every directory below it (it may have changed
 * where nothing was heard; inotify marks a new directory the same way,
 * since what was made in it before its watch existed sent no event).
 * A queue overflow, a watch or mark that cannot be added
 * (max_user_watches), more than CHANGES_MAX directories, a mount or
 * unmount at or below the root (changes_mounts_changed), the root
 * itself moved or deleted, or a new journal (the daemon started) mean
 * "scan everything".  A fanotify journal that cannot mark a file system
 * mounted later switches to inotify (CHANGES_AUTO) or reports
 * everything at each take until it can (CHANGES_FANOTIFY).
 *
 * What neither hears: a write through a shared mmap (no event at all),
 * a write to a hard-linked file through a name in another directory or
 * outside the tree (the event names that directory; dir_scan_narrow
 * lists the directories of hard-linked files every time for that
 * reason), changes made on another NFS or CIFS client, a directory
 * bind-mounted twice inside the tree (heard under one of its names).
 * The service scans in full every full_scan_interval for these.
 *
 * Cost: an idle inotify journal costs no CPU but one watch (and a
 * pinned inode) per directory, set up by a walk of the whole tree; a
 * fanotify journal is set up at once, but hears every change of its
 * file systems, also outside the tree (bench/README.md has figures):
 * on a busy shared file system `journal=inotify` may be cheaper.
 */
#ifndef AS_CHANGES_H
#define AS_CHANGES_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define CHANGES_MAX	10000	/* directories listed; beyond: full */

/* Which journal: the service property `journal`. */
enum changes_kind {
	CHANGES_AUTO = 0,	/* fanotify, else inotify */
	CHANGES_FANOTIFY,	/* fanotify only */
	CHANGES_INOTIFY,	/* inotify only */
};

struct changes;

/* Watch the tree at root (absolute).  The journal starts "full". */
struct changes *changes_open(const char *root, struct as_err *err);
/*
 * The same with a choice: CHANGES_FANOTIFY fails (with the reason in
 * err) where fanotify cannot watch the tree; CHANGES_AUTO then uses
 * inotify and says why in changes_why().
 */
struct changes *changes_open_kind(const char *root, enum changes_kind want,
	    struct as_err *err);
void	changes_close(struct changes *c);

/* "auto", "fanotify", "inotify" and back; -1 for another word. */
const char *changes_kind_name(enum changes_kind k);
int	changes_kind_parse(const char *s, enum changes_kind *k);

/*
 * CHANGES_FANOTIFY or CHANGES_INOTIFY: what watches now (CHANGES_AUTO:
 * nothing, until a take manages to watch again).
 */
enum changes_kind changes_kind(const struct changes *c);
/* Why fanotify is not used ("" when it is, or was not asked for). */
const char *changes_why(const struct changes *c);
/* inotify: directories watched; fanotify: file systems marked. */
size_t	changes_watches(const struct changes *c);

/* What a journal heard since the last take (changes_take resets it). */
struct changes_stats {
	uint64_t	events;		/* read from the kernel */
	uint64_t	outside;	/* of them, outside the tree (fanotify) */
	uint64_t	lookups;	/* handles turned into paths (fanotify) */
};
void	changes_get_stats(const struct changes *c, struct changes_stats *st);

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
 * if a mount at or below the root came, went or was replaced (neither
 * journal hears it), the next take reports full and the tree is
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
