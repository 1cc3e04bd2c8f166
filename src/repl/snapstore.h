/*
 * snapstore.h - the snapshot catalogs of the portable engine, kept in
 * autosync's state directory.
 *
 * Layout:
 *
 *   STATE/catalogs/<key>/<snap>.cat          a committed snapshot
 *   STATE/catalogs/<key>/<snap>.cat.pending  a sync's target, written
 *                                            before its receive can commit
 *   STATE/catalogs/<key>/dests/<key2>        what a destination holds
 *   STATE/catalogs/<key>/lock                flock(2): one sync at a time
 *
 * <key> is the dataset's absolute path (realpath(3) when it exists, else
 * the lexically normalised absolute path) with every byte outside
 * [A-Za-z0-9._,+=@:-] written as %XX (upper-case hex): "/srv/data" is
 * "%2Fsrv%2Fdata", "%" is "%25".  A key longer than SNAPSTORE_KEY_MAX
 * keeps its first bytes and ends in "~" and the XXH64 of the full path
 * in hex; '~' never appears otherwise, so keys cannot collide.
 *
 * Every file is written atomically: a temporary file in the same
 * directory, fsync, rename, fsync of the directory.
 *
 * Pending catalogs make sync crash-safe: the new snapshot's catalog is
 * saved as <snap>.cat.pending and the destination record names it before
 * the receiver can commit (a local sync: once, just before the stream's
 * END record; a remote one: before the transfer starts, and again before
 * END); after the receiver succeeded it is committed (renamed to
 * <snap>.cat).
 * A crash in between leaves the pending file; the next sync to that
 * destination adopts it when the destination holds its GUID and discards
 * it otherwise, so the common snapshot is never lost.
 *
 * Snapshot names: 1..255 bytes of [A-Za-z0-9_.:-], not "." or "..".
 */
#ifndef AS_SNAPSTORE_H
#define AS_SNAPSTORE_H

#include <stdint.h>

#include "base/err.h"
#include "format/catalog.h"

#define SNAPSTORE_KEY_MAX	200
#define SNAP_NAME_MAX		255
#define SNAP_AUTO_PREFIX	"autosync_"	/* names that sync creates */

/* One dataset's catalogs. */
struct snapstore {
	char	*state;		/* the state directory */
	char	*dataset;	/* absolute path of the dataset */
	char	*dir;		/* STATE/catalogs/<key> */
	int	 lock_fd;	/* -1 unless snapstore_lock() succeeded */
};

/* A snapshot as listed. */
struct snap_info {
	char	 name[SNAP_NAME_MAX + 1];
	uint64_t guid;
	uint64_t base_guid;	/* what it was scanned relative to, or 0 */
	int64_t	 time_ns;	/* creation, ns since the epoch */
	uint32_t block_size;
	uint32_t flags;		/* catalog header flags */
	uint64_t entries;	/* with SNAP_LIST_SIZES, else 0 */
	uint64_t bytes;		/* sum of regular file sizes; ditto */
	uint64_t notpit;	/* entries not point-in-time; ditto */
};

struct snap_list {
	struct snap_info *v;	/* sorted by time_ns, then name */
	size_t		 n;
};

/* What sync recorded about a destination of this dataset. */
struct snap_dest {
	uint64_t held_guid;	/* snapshot it holds, or 0 */
	char	 pending[SNAP_NAME_MAX + 1]; /* pending snapshot, or "" */
	char	*path;		/* owned: the destination's path */
};

#define SNAP_LIST_SIZES		0x01	/* read all: sizes */
#define SNAP_LIST_PENDING	0x02	/* list pending catalogs instead */

/*
 * The state directory: opt when not NULL, else $AUTOSYNC_STATE_DIR when
 * set and not empty, else /var/lib/autosync for root, else
 * $XDG_STATE_HOME/autosync, else ~/.local/state/autosync.  Returns an
 * allocated string, or NULL with err (no HOME).
 */
char	*snapstore_state_dir(const char *opt, struct as_err *err);

/* The absolute, normalised form of path (see above); allocated. */
char	*snapstore_abspath(const char *path, struct as_err *err);

/* Write the key of an absolute path into out (allocated). */
char	*snapstore_key(const char *abspath);

/*
 * Open the catalogs of dataset in state (creating directories when
 * create is set).  ss is filled on success; snapstore_release() frees it.
 * Without create, a dataset with no catalogs is not an error: its lists
 * are empty.
 */
int	snapstore_open(struct snapstore *ss, const char *state,
	    const char *dataset, int create, struct as_err *err);
void	snapstore_release(struct snapstore *ss);

/*
 * Take the dataset's lock (non-blocking): CONFLICT "busy" when another
 * process holds it.  Released by snapstore_release().
 */
int	snapstore_lock(struct snapstore *ss, struct as_err *err);

/* 0 when name is a valid snapshot name, else -1 USAGE naming it. */
int	snap_name_check(const char *name, struct as_err *err);

/* A random GUID (getrandom(2)), never 0. */
uint64_t snap_guid_new(void);

/*
 * Fill out with "autosync_YYYY-MM-DD_HH:MM:SS" (UTC, for time_ns), with
 * "_N" appended (N = 2, 3, ...) while a committed or pending snapshot of
 * that name exists.  outsz >= SNAP_NAME_MAX + 1.
 */
int	snapstore_auto_name(const struct snapstore *ss, int64_t time_ns,
	    char *out, size_t outsz, struct as_err *err);

/* List snapshots; out is empty (not an error) for an unknown dataset. */
int	snapstore_list(const struct snapstore *ss, int flags,
	    struct snap_list *out, struct as_err *err);
void	snap_list_release(struct snap_list *l);
/* The listed snapshot with this name or GUID, or NULL. */
const struct snap_info *snap_list_by_name(const struct snap_list *l,
	    const char *name);
const struct snap_info *snap_list_by_guid(const struct snap_list *l,
	    uint64_t guid);

/* 1 when a committed snapshot of that name exists, 0 if not, -1 error. */
int	snapstore_exists(const struct snapstore *ss, const char *name,
	    struct as_err *err);

/*
 * Load a committed snapshot's catalog into c (initialised by the caller;
 * released on failure).  NOTFOUND "no snapshot 'DS@name'" when missing.
 */
int	snapstore_load(const struct snapstore *ss, const char *name,
	    struct catalog *c, struct as_err *err);
/* The same for a pending catalog (<name>.cat.pending). */
int	snapstore_load_pending(const struct snapstore *ss, const char *name,
	    struct catalog *c, struct as_err *err);
/* Load the committed snapshot with this GUID: 1 found, 0 none, -1 error. */
int	snapstore_load_guid(const struct snapstore *ss, uint64_t guid,
	    struct catalog *c, struct as_err *err);
/*
 * Open the snapshot with that GUID for reading one entry at a time
 * (cat_reader): 1 with sr open (its header in sr->rd.win.hdr), 0 when
 * there is none, -1 on error.  The file is mapped and its pages given
 * back as they are read.  snap_reader_release() in every case.
 */
struct snap_reader {
	struct cat_reader rd;
	void		*map;
	size_t		 len;
	struct buf	 b;		/* when it could not be mapped */
};
int	snapstore_open_guid(const struct snapstore *ss, uint64_t guid,
	    struct snap_reader *sr, struct as_err *err);
void	snap_reader_release(struct snap_reader *sr);

/*
 * Save c as snapshot c->hdr.name.  SNAP_SAVE_PENDING writes
 * <name>.cat.pending.  Otherwise <name>.cat is written; it must not
 * exist (CONFLICT) unless SNAP_SAVE_REPLACE, and a pending file of that
 * name is removed afterwards (the commit of a sync).
 */
#define SNAP_SAVE_PENDING	0x01
#define SNAP_SAVE_REPLACE	0x02
int	snapstore_save(struct snapstore *ss, const struct catalog *c,
	    int flags, struct as_err *err);

/* Rename <name>.cat.pending to <name>.cat (adopt a crashed sync's). */
int	snapstore_commit_pending(struct snapstore *ss, const char *name,
	    struct as_err *err);
/* Remove <name>.cat.pending; a missing file is not an error. */
int	snapstore_discard_pending(struct snapstore *ss, const char *name,
	    struct as_err *err);
/* Remove <name>.cat: NOTFOUND when missing. */
int	snapstore_destroy(struct snapstore *ss, const char *name,
	    struct as_err *err);

/*
 * Make alias a second name of the committed snapshot name (a hard link,
 * replacing an alias of that name atomically): the service's
 * "<service>-latest".  NOTFOUND when name is missing.
 */
int	snapstore_alias(struct snapstore *ss, const char *name,
	    const char *alias, struct as_err *err);

/*
 * Destination records.  get: 1 and *d filled, 0 when none, -1 error.
 * put: written atomically.  list: every record, *n of them.
 */
int	snapstore_dest_get(const struct snapstore *ss, const char *dest,
	    struct snap_dest *d, struct as_err *err);
int	snapstore_dest_put(struct snapstore *ss, const char *dest,
	    const struct snap_dest *d, struct as_err *err);
int	snapstore_dest_list(const struct snapstore *ss, struct snap_dest **v,
	    size_t *n, struct as_err *err);
void	snap_dest_release(struct snap_dest *d);
void	snap_dest_free_list(struct snap_dest *v, size_t n);

/*
 * Datasets that have catalogs in state: their absolute paths, as
 * recorded in each directory's newest catalog (allocated, sorted).
 */
int	snapstore_datasets(const char *state, char ***out, size_t *n,
	    struct as_err *err);

#endif
