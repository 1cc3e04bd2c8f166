/*
 * btrfs.h - the btrfs driver: runs `btrfs send` and `btrfs receive`
 * (btrfs-progs) for the streams, and does the rest (subvolume info,
 * nested subvolumes, snapshots, the read-only flag, deletes) by the
 * ioctls btrfs-progs itself issues for those commands: a command costs
 * a fork and an exec, 5-150 ms each on a loaded machine.
 *
 * Every command runs from an argv vector (never a shell), with stderr
 * captured; each is logged at debug level with its argv and exit status,
 * and a failure's stderr is mapped to an error class (btrfs_errcode(),
 * each mapping pinned by tests/unit/t_btrfs.c with the real text).  An
 * ioctl is logged at debug level as the command it stands for
 * ("ioctl: subvolume delete PATH"), and its errno mapped to the class
 * the command's message would have.
 *
 * Where autosync keeps its snapshots (both sides, one layout):
 *
 *   PARENT/.autosync-snapshots/NAME/          for the subvolume PARENT/NAME
 *       autosync_YYYY-MM-DD_HH:MM:SS          the subvolume's snapshots
 *                                             (destination: the received
 *                                             ones)
 *       children/ENC/autosync_...             those of a nested subvolume
 *                                             at NAME/REL, ENC = REL with
 *                                             '%' as %25 and '/' as %2F
 *       published                             destination: the view that
 *                                             autosync published at NAME
 *       dests                                 source: the snapshot each
 *                                             destination holds
 *       .lock
 *   PARENT/.NAME.autosync-new                 destination: the next view
 *                                             while it is built
 *
 * Next to the subvolume, not inside it: a snapshot must be on the same
 * file system as its subvolume (so not in the state directory), and
 * inside the subvolume it would become part of what is replicated (a
 * nested subvolume of every later snapshot).  One directory per
 * subvolume keeps two subvolumes of one parent apart.  The directories
 * are mode 0700: they are also the private staging area where btrfs
 * receive writes, reachable by no other user.  A subvolume whose parent
 * directory is on another file system (the top of a mount) is refused
 * as a source: mount the file system's top level, or the parent
 * subvolume, and name the subvolume below it.
 *
 * The destination path is a *view*: a read-only snapshot of the newest
 * received snapshot, with the nested subvolumes' received snapshots
 * snapshotted at their places inside it (btrfs cannot put a subvolume
 * inside a received one: it is read-only, and making it writable drops
 * its received_uuid).  It is built next to the destination and swapped
 * in with one rename (a read-only subvolume can only be renamed within
 * its directory), so readers see the old view or the new one.  The
 * received snapshots stay in the snapshot directory as the bases of the
 * next incremental.  The published record holds the view's UUIDs and
 * ctransids: a destination written, made writable or replaced since is
 * detected (btrfs_dest_check).  While it is built the view is writable
 * (children are placed and times set before it is made read-only): for
 * that moment a local user who may write a file of the replica by its
 * mode could change it before it is recorded.
 *
 * Identity is the subvolume UUID: a snapshot on the destination is the
 * source snapshot whose UUID is its received_uuid.  Names are only for
 * people.  autosync only ever deletes subvolumes it created: read-only
 * snapshots named autosync_* in these directories whose parent UUID
 * (source) is the subvolume's, or that carry a received_uuid
 * (destination); a receive it interrupted (an autosync_* subvolume there
 * that is not read-only with a received_uuid); and views it published.
 *
 * Trust (RELIABILITY.md case 74): btrfs receive does not validate what a
 * stream does (paths, clones from arbitrary files, setuid bits), so a
 * stream is received only from a sender the caller has configured as
 * trusted: btrfs_receive_start() takes the verdict as an explicit flag
 * and refuses (AUTH, nothing spawned) without it.  A local sync's sender
 * is this process's own `btrfs send`, so it is trusted; a server must
 * pass trusted only for clients its configuration marks so.  Accepted
 * streams run as `btrfs receive -e -C -E 1` (stop at the end marker,
 * chroot into the private directory, stop at the first error), and a
 * received subvolume is used only once it is read-only and carries the
 * expected received_uuid; otherwise it is deleted.
 */
#ifndef AS_BTRFS_H
#define AS_BTRFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "base/err.h"

#define BTRFS_SNAPDIR		".autosync-snapshots"
#define BTRFS_NEXT_SUFFIX	".autosync-new"
#define BTRFS_CHILDREN		"children"
#define BTRFS_PUBLISHED		"published"
#define BTRFS_UUID_LEN		36	/* 8-4-4-4-12 hex digits */
#define BTRFS_NAME_MAX		255

/* A subvolume as `btrfs subvolume show` describes it. */
struct btrfs_subvol {
	char		*path;	/* owned: path from the top level ("@home") */
	char		 name[BTRFS_NAME_MAX + 1];
	char		 uuid[BTRFS_UUID_LEN + 1];	/* "" when "-" */
	char		 parent_uuid[BTRFS_UUID_LEN + 1];
	char		 received_uuid[BTRFS_UUID_LEN + 1];
	uint64_t	 id;		/* Subvolume ID */
	uint64_t	 generation;	/* Generation */
	uint64_t	 otransid;	/* Gen at creation */
	uint64_t	 parent_id;	/* Parent ID */
	uint64_t	 top_level;	/* Top level ID */
	int		 readonly;	/* Flags holds "readonly" */
	uint64_t	 ctransid;	/* btrfs_info() only: see btrfs_ctransid */
};

/* A line of `btrfs subvolume list -o -u -q -R`. */
struct btrfs_list_ent {
	uint64_t	 id;
	uint64_t	 gen;
	uint64_t	 top_level;
	char		 uuid[BTRFS_UUID_LEN + 1];
	char		 parent_uuid[BTRFS_UUID_LEN + 1];
	char		 received_uuid[BTRFS_UUID_LEN + 1];
	char		*path;	/* owned: from the top level */
};

/* A snapshot autosync keeps (one of a subvolume's, or a received one). */
struct btrfs_snap {
	char		 name[BTRFS_NAME_MAX + 1];
	char		 uuid[BTRFS_UUID_LEN + 1];
	char		 parent_uuid[BTRFS_UUID_LEN + 1];
	char		 received_uuid[BTRFS_UUID_LEN + 1];
	uint64_t	 id;	/* subvolume IDs grow: the newest is the last */
};

/* Parsers of the command's output: pure, for the unit tests too. */
int	btrfs_parse_show(const char *text, struct btrfs_subvol *sv,
	    struct as_err *err);
void	btrfs_subvol_release(struct btrfs_subvol *sv);
int	btrfs_parse_list(const char *text, struct btrfs_list_ent **v,
	    size_t *n, struct as_err *err);
void	btrfs_list_free(struct btrfs_list_ent *v, size_t n);
/* The error class of a failed command from its stderr (IO if unknown). */
enum as_errcode btrfs_errcode(const char *stderr_text);
/* REL as one file name ('%' -> %25, '/' -> %2F); -1 LIMIT if too long. */
int	btrfs_enc_rel(const char *rel, char *out, size_t outsz,
	    struct as_err *err);

/*
 * Run `btrfs ARGS...` (args NULL-terminated, without "btrfs"), stdin
 * from /dev/null; when out is not NULL it receives stdout (owned,
 * NUL-terminated).  A non-zero exit is an error whose text is the first
 * ERROR line of stderr and whose class is btrfs_errcode()'s.
 */
int	btrfs_run(const char *const *args, char **out, struct as_err *err);

/* `btrfs subvolume show PATH`; NOTFOUND when PATH is not a subvolume. */
int	btrfs_show(const char *path, struct btrfs_subvol *sv,
	    struct as_err *err);
/*
 * The subvolumes nested below the subvolume at path, at any depth, as
 * paths relative to it (sorted, parents first), leaving out autosync's
 * own BTRFS_SNAPDIR directories: from the kernel's root refs
 * (BTRFS_IOC_GET_SUBVOL_ROOTREF and BTRFS_IOC_INO_LOOKUP_USER, Linux
 * >= 4.18), level by level, nothing run.  *rels is owned
 * (btrfs_rels_free).
 */
int	btrfs_nested(const char *path, char ***rels, size_t *n,
	    struct as_err *err);
void	btrfs_rels_free(char **rels, size_t n);
/*
 * The same fields (path left NULL, ctransid set) from the kernel
 * (BTRFS_IOC_GET_SUBVOL_INFO, Linux >= 4.18) without running anything:
 * every look-up of a run (the source, a received subvolume's check,
 * snapshot directories, the views).  NOTFOUND when path is not on
 * btrfs; on a directory that is not a subvolume's root it describes the
 * subvolume that holds it: check btrfs_is_subvol() first.
 */
int	btrfs_info(const char *path, struct btrfs_subvol *sv,
	    struct as_err *err);
/* Whether path is a subvolume's root on btrfs (stat only). */
int	btrfs_is_subvol(const char *path);
/* The file system's UUID (BTRFS_IOC_FS_INFO); NOTFOUND off btrfs. */
int	btrfs_fsid(const char *path, unsigned char fsid[16],
	    struct as_err *err);
/* mkdir -p; the last directory must be this user's and mode 0700. */
int	btrfs_mkdir_private(const char *path, struct as_err *err);
/*
 * What `btrfs subvolume snapshot [-r] src dst` does, by its ioctl
 * (BTRFS_IOC_SNAP_CREATE_V2); dst must not exist.  A read-only snapshot
 * of a received subvolume keeps its received_uuid, a writable one
 * does not (the kernel's rule).
 */
int	btrfs_snapshot(const char *src, const char *dst, int readonly,
	    struct as_err *err);
/*
 * What `btrfs property set -ts path ro true|false` does (never -f: a
 * received subvolume is not made writable, CONFLICT), by ioctl
 * (BTRFS_IOC_SUBVOL_SETFLAGS).
 */
int	btrfs_set_readonly(const char *path, int ro, struct as_err *err);
/*
 * What `btrfs receive` does to a subvolume it has received, by its
 * ioctl (BTRFS_IOC_SET_RECEIVED_SUBVOL): received_uuid := uuid (text,
 * 8-4-4-4-12), stransid := the sender's ctransid, stime now.  path must
 * be writable (the kernel refuses a read-only one): set read-only after.
 */
int	btrfs_set_received(const char *path, const char *uuid,
	    uint64_t stransid, struct as_err *err);
/*
 * Delete the subvolume at path and every subvolume nested in it
 * (deepest first; a read-only parent is made writable first), by
 * BTRFS_IOC_SNAP_DESTROY as `btrfs subvolume delete` does (no commit).
 */
int	btrfs_delete(const char *path, struct as_err *err);
/*
 * Delete each of paths (one ioctl each, as `btrfs subvolume delete
 * P...`): for read-only snapshots, which never hold nested subvolumes.
 */
int	btrfs_delete_snapshots(const char *const *paths, size_t n,
	    struct as_err *err);
/*
 * The subvolume's ctransid (BTRFS_IOC_GET_SUBVOL_INFO): the transaction
 * that last changed its content.  `show` prints only the generation,
 * which balance and scrub bump on an untouched subvolume too.
 */
int	btrfs_ctransid(const char *path, uint64_t *ctransid,
	    struct as_err *err);

/* Streams: a running `btrfs send` or `btrfs receive`. */
struct btrfs_proc;

/*
 * Start `btrfs send [-p parent] snap` writing to out_fd.  Takes
 * ownership of out_fd (closed here, in every case).  NULL with err.
 */
struct btrfs_proc *btrfs_send_start(const char *snap, const char *parent,
	    int out_fd, struct as_err *err);
/*
 * Start `btrfs receive -q -e -C -E 1 dir` reading in_fd.  Refuses with
 * AUTH, spawning nothing, unless trusted (see above).  Takes ownership
 * of in_fd (closed here, in every case).  NULL with err.
 */
struct btrfs_proc *btrfs_receive_start(const char *dir, int in_fd,
	    int trusted, struct as_err *err);
/* Wait for it, log, map its error; frees p.  0 or -1 with err. */
int	btrfs_proc_finish(struct btrfs_proc *p, struct as_err *err);
/*
 * Wait until it has exited (without reaping it) and read the bytes it
 * wrote (/proc/PID/io wchar: for `btrfs send`, the stream, which the
 * kernel writes for it).  0, or -1 when that cannot be read.
 */
int	btrfs_proc_written(struct btrfs_proc *p, uint64_t *bytes);
/*
 * Wait until it has exited (without reaping it): 1 when it exited with
 * status 0, 0 otherwise, -1 when it cannot be waited for.
 */
int	btrfs_proc_exited_ok(struct btrfs_proc *p);
/* Kill it (SIGKILL) and reap it; frees p; for error paths. */
void	btrfs_proc_abort(struct btrfs_proc *p);

/* The BTRFS_SNAPDIR directory for the subvolume at path (owned). */
char	*btrfs_snapdir(const char *path);
/*
 * The directory that holds the snapshots of rel (NULL or "" for the
 * subvolume itself) inside snapdir (owned).  NULL with err (LIMIT).
 */
char	*btrfs_snapdir_of(const char *snapdir, const char *rel,
	    struct as_err *err);
/*
 * autosync's snapshots in dir (names autosync_*, read-only subvolumes),
 * sorted oldest first by subvolume ID.  With parent_uuid, only
 * snapshots of that subvolume (the source side); with received, only
 * those carrying a received_uuid (the destination side).  A missing dir
 * is an empty list.
 */
int	btrfs_list_snaps(const char *dir, const char *parent_uuid,
	    int received, struct btrfs_snap **v, size_t *n,
	    struct as_err *err);
/* Create dir (mkdir -p; the last one 0700) and flock dir/.lock. */
int	btrfs_lock(const char *dir, int *fd, struct as_err *err);
/* A fresh autosync_YYYY-MM-DD_HH:MM:SS[_N] name free in every dir. */
int	btrfs_auto_name(const char *const *dirs, size_t ndirs, char *out,
	    size_t outsz, struct as_err *err);

/*
 * The destination side, usable by a server: the subvolume (published
 * view) at dst, and its BTRFS_SNAPDIR.
 */
struct btrfs_dest {
	char		*path;		/* owned: the destination */
	char		*dir;		/* owned: its BTRFS_SNAPDIR */
	char		*next;		/* owned: PARENT/.NAME.autosync-new */
	int		 lock_fd;
};

/*
 * Open the destination dst (absolute; its parent directory must exist
 * on btrfs): create its directories (0700), take its lock (CONFLICT
 * "busy"), and delete what an interrupted run left: partial receives
 * and an unfinished view (never published).  *cleaned counts them.
 */
int	btrfs_dest_open(struct btrfs_dest *d, const char *dst,
	    unsigned *cleaned, struct as_err *err);
void	btrfs_dest_release(struct btrfs_dest *d);
/*
 * Whether dst is what autosync last published there: 0 yes (or nothing
 * is there), 1 modified since (written, made writable, replaced; msg in
 * err, class CONFLICT), -1 error.  Something at dst that autosync never
 * published is CONFLICT (-1) even with force: it is never replaced.
 */
int	btrfs_dest_check(struct btrfs_dest *d, struct as_err *err);
/*
 * Receive one stream: start `btrfs receive` into the snapshot directory
 * of rel on in_fd (ownership taken; refused unless trusted, see above;
 * CONFLICT if name is there already), then, once the caller has fed it,
 * finish: check that it made the subvolume name, read-only, whose
 * received_uuid is expect_uuid (when not NULL).  On any failure what was
 * received is deleted.
 */
struct btrfs_proc *btrfs_dest_receive_start(struct btrfs_dest *d,
	    const char *rel, const char *name, int in_fd, int trusted,
	    struct as_err *err);
int	btrfs_dest_receive_finish(struct btrfs_dest *d, struct btrfs_proc *p,
	    const char *rel, const char *name, const char *expect_uuid,
	    struct as_err *err);

/* One subvolume of a published view: rel ("" the root) and snapshot. */
struct btrfs_pub {
	const char	*rel;
	const char	*name;	/* a received snapshot in rel's directory */
	int		 has_times;	/* times below are set */
	struct timespec	 atime;	/* of the source snapshot's top directory */
	struct timespec	 mtime;
};

/*
 * Publish: build the view (a snapshot of the root's received snapshot
 * with each child's snapshotted at its place inside, all then made
 * read-only) at d->next, record it, and swap it atomically with dst
 * (renameat2 RENAME_EXCHANGE; a plain rename the first time).  The old
 * view is deleted.  v[0] must be the root; children parents first.
 * An incremental btrfs receive leaves the top directory's mtime at the
 * time of the receive (it makes its temporary names there): with
 * has_times, each view's top directory gets the source's times back.
 */
int	btrfs_dest_publish(struct btrfs_dest *d, const struct btrfs_pub *v,
	    size_t n, struct as_err *err);

#endif
