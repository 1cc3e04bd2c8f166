/*
 * dir_journal.h - private to dir_recv.c and dir_apply.c: the receive
 * context, the compact operation list that a stream is reduced to, and the
 * journal that makes its application crash-safe.
 *
 * Layout of DEST/.autosync (mode 0700, owned by us, never a symlink):
 *   lock           flock(LOCK_EX|LOCK_NB) for the whole receive/recover
 *   held.cat       catalog of the destination as last received (NOHASH)
 *   stage/         n<id>  new objects (whole subtrees for new directories)
 *                  r<id>  objects detached by a RENAME, until attached
 *                  x<id>  entries removed by -F, deleted with stage/
 *                  spool  changed blocks of PATCHed files
 *   journal        the op list; exists only from commit to end of apply
 *   journal.phase  one byte per apply phase done, fdatasync'ed
 *   partial        a resume checkpoint of an uncommitted receive (text:
 *                  guid, base, position, log length, stream bytes); while
 *                  it exists, recovery keeps stage/ instead of dropping it
 *   partial.log    the stream's records up to the checkpoint, DATA
 *                  payloads elided, replayed to rebuild the op list
 *
 * Semantics of paths in a stream (doc/autosync-stream.5 must say the
 * same): CREATE, PATCH, ATTR, LINK and the target of RENAME name paths of
 * the new tree; DELETE and the source (aux) of RENAME name paths of the
 * tree the destination holds (the base); the aux of LINK is a path of the
 * new tree.  Order in the stream does not matter to the receiver except
 * that a LINK whose target is itself a LINK comes after it; it checks the
 * whole set after END, before anything is applied.
 */
#ifndef AS_DIR_JOURNAL_H
#define AS_DIR_JOURNAL_H

#include <stdint.h>

#include "base/bg.h"
#include "base/buf.h"
#include "base/err.h"
#include "driver/dir.h"
#include "format/catalog.h"

#define RCV_OPS_MAX	50000000u	/* entries in one stream (LIMIT) */
#define RCV_READ_CHUNK	(256u << 10)

/* rop.op: the stream's AS_OP_* plus our own */
#define RO_EXTRA	16	/* -F: detach an entry the base lacks */

/* rop.flags */
#define RO_TOP		0x01	/* staged as stage/n<id>: attach renames it */
#define RO_XATTRS	0x02	/* xattrs hold the full set */
#define RO_RESET	0x04	/* -F: restores the base's metadata */

/* One operation; strings and xattrs live in the context's arenas. */
struct rop {
	uint64_t	path_off;	/* into strs, NUL-terminated */
	uint64_t	aux_off;	/* into strs, NUL-terminated */
	uint64_t	xattr_off;	/* into xattrs (blob, see catalog.h) */
	uint64_t	size;		/* PATCH: the new size */
	uint64_t	rdev;
	int64_t		mtime_sec;
	uint32_t	mtime_nsec;
	uint32_t	mode;
	uint32_t	uid;
	uint32_t	gid;
	uint32_t	xattr_len;
	uint32_t	id;		/* stage name number */
	uint32_t	top;		/* CREATE: op index of staged top */
	uint32_t	seg_first;	/* PATCH: its ranges in segs */
	uint32_t	nseg;
	uint16_t	path_len;
	uint16_t	aux_len;
	uint8_t		op;
	uint8_t		flags;
};

/* One range of a PATCH: data from the spool, or a hole. */
struct rseg {
	uint64_t	off;
	uint64_t	len;
	uint64_t	spool;		/* offset in stage/spool; HOLE: ~0 */
};

#define RSEG_HOLE	UINT64_MAX

/* Apply phases; journal.phase holds the last one done. */
enum {
	PH_NONE = 0,
	PH_DETACH,	/* deepest first: renames out to stage, deletes, -F */
	PH_ATTACH,	/* shallowest first: staged tops and renames in */
	PH_FILES,	/* links, patches, attrs of non-directories */
	PH_DIRS,	/* directory attrs, deepest first, root last */
	PH_DONE
};

struct rcv {
	const char	*dest;
	int		 flags;		/* DIR_RECV_* */
	int		 destfd;	/* O_RDONLY|O_DIRECTORY */
	int		 privfd;	/* .autosync */
	int		 stagefd;	/* .autosync/stage, or -1 */
	int		 spoolfd;	/* stage/spool, or -1 */
	int		 lockfd;

	/* the snapshot being received (becomes held.cat's header) */
	uint64_t	 guid;
	uint64_t	 base_guid;
	int64_t		 time_ns;
	uint32_t	 block_size;
	char		 name[256];
	char		*source;

	struct rop	*ops;
	size_t		 nops;
	size_t		 capops;
	struct rseg	*segs;
	size_t		 nsegs;
	size_t		 capsegs;
	struct buf	 strs;
	struct buf	 xattrs;
	uint64_t	 spool_len;
	uint32_t	 next_id;

	struct dir_stats *st;
	/*
	 * What the destination held before this receive (held.cat, checked
	 * by the drift scan), borrowed from the caller, or NULL (full
	 * stream, recover).  finish() rescans with it as the base, so that
	 * entries the apply did not touch cost one lstat, then releases it
	 * (catalog_release: the caller's later release is a no-op) so that
	 * two catalogs are not kept past the rescan.  prior_exact: the
	 * drift scan found no difference at all, so with no ops it is the
	 * new held.cat as it is (only the header changes).
	 */
	struct catalog	*prior;
	int		 prior_exact;
	/*
	 * When set (a receive that knows the tree before the apply), finish()
	 * asks it for the new held.cat instead of rescanning the whole
	 * destination: it adds every entry to out in order and returns 0,
	 * or returns 1 when it cannot tell and a rescan must do (what it
	 * added is dropped), or -1 with err.  Never set for a recovery.
	 */
	int		(*derive)(struct rcv *r, struct cat_writer *out,
			    struct as_err *err);
	void		*derive_arg;
	/*
	 * The first metadata change that failed after the commit point for
	 * a reason a retry cannot cure (EPERM, ENOTSUP...): the apply goes on
	 * so that the destination is never wedged, and this is reported.
	 */
	struct as_err	 late_err;
	/*
	 * The syncfs that ends a phase which changed something runs beside
	 * what follows it, which only reads the tree until the phase is
	 * recorded in journal.phase (mark_end: before the next phase, and
	 * before held.cat is renamed into place), so the tree is still
	 * durable before anything names it.
	 */
	struct bg_job	 marker;
	int		 marker_phase;
	int		 marker_pending;
};

void	rcv_init(struct rcv *r, const char *dest, int flags,
	    struct dir_stats *st);
void	rcv_release(struct rcv *r);
const char *rop_path(const struct rcv *r, const struct rop *o);
const char *rop_aux(const struct rcv *r, const struct rop *o);

/*
 * Open dest and .autosync (creating them unless dry), check ownership and
 * mode, take the lock.  dry: a missing .autosync is not created and
 * privfd stays -1.
 */
int	rcv_open(struct rcv *r, int dry, struct as_err *err);
int	rcv_open_private(struct rcv *r, int create, int dry,
	    struct as_err *err);
/* With the lock held: roll forward or back; 1 did something, 0, -1. */
int	rcv_recover(struct rcv *r, struct as_err *err);
/* Commit point: journal the op list, then apply it and finish. */
int	rcv_commit(struct rcv *r, struct as_err *err);
/* Remove stage/ (uncommitted staging), safely beneath privfd. */
int	rcv_discard_stage(struct rcv *r, struct as_err *err);

#define RCV_PARTIAL	"partial"
#define RCV_PARTIAL_LOG	"partial.log"
/* Forget a resume checkpoint (partial, partial.log); the stage stays. */
void	rcv_partial_drop(struct rcv *r);
/* Remove path (relative) and everything below it, beneath rootfd. */
int	rcv_rm_tree(int rootfd, const char *path, struct as_err *err);
/*
 * Write data (or cat, encoded) to name.tmp in .autosync, fsync, rename
 * to name, fsync the directory.
 */
int	rcv_write_atomic(struct rcv *r, const char *name, const void *data,
	    size_t len, const struct catalog *cat, struct as_err *err);

/*
 * Open path (relative, "" = rootfd itself) beneath rootfd with oflags,
 * never following a symlink in any component (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS); with O_PATH|O_NOFOLLOW a final symlink is opened
 * itself.  -1 with UNSAFE_PATH when a symlink is in the way.
 */
int	beneath_open(int rootfd, const char *path, int oflags, const char *what,
	    struct as_err *err);
/*
 * Open the parent directory of path beneath rootfd (O_PATH) and point
 * *name at the last component.
 */
int	beneath_parent(int rootfd, const char *path, const char **name,
	    const char *what, struct as_err *err);
/*
 * Set owner, xattrs (when RO_XATTRS: exactly that set), mode and mtime of
 * the object open as fd (any kind; O_PATH is fine), in that order: chown
 * clears setuid bits and capabilities.  fdio: fd is open for I/O (not
 * O_PATH), so the f* calls work on it directly instead of going through
 * /proc/self/fd.  now: fd's fstat when the caller has it (a file it has
 * just created), else NULL; an owner or a mode that it shows already set
 * is not set again (each chown or chmod dirties the inode).
 */
int	meta_apply(int fd, int fdio, const struct stat *now, uint32_t type,
	    uint32_t uid, uint32_t gid,
	    uint32_t mode, int64_t msec, uint32_t mnsec, const uint8_t *xattrs,
	    size_t xattr_len, int full_set, const char *what,
	    struct as_err *err);

#endif
