/*
 * zfs.h - the ZFS driver: drives the zfs(8) command.
 *
 * Every command runs from an argv vector (execvp, never a shell), with
 * its standard output and error captured; every command is logged at
 * debug level with its argv and exit status (`autosync -v -v ...`).
 * A failing command becomes a struct as_err whose class comes from the
 * text zfs printed (zfs_classify(): "dataset does not exist" NOTFOUND,
 * "has been modified since most recent snapshot" CONFLICT, "out of
 * space" NOSPACE, "invalid option" UNSUPPORTED, "permission denied"
 * AUTH...), and whose message is "WHAT: zfs's own words".
 *
 * What the installed zfs supports is detected once per process
 * (zfs_caps()): from the command's own usage text, plus one harmless
 * probe for `receive -u`, which zfs-fuse accepts without listing it.
 * Where something is missing (zfs-fuse is pool version 23: no resume
 * tokens, no bookmarks, no `receive -o/-x`, `zfs holds` needs python)
 * the callers degrade and zfs_caps_note() says so once.
 *
 * The functions are plain and local so that a server (autosync serve)
 * can call them too: receive from a descriptor, send to a descriptor,
 * list snapshots with their GUIDs and hold counts.
 *
 * Names: a dataset is "pool/a/b", a snapshot "pool/a/b@snap".  Callers
 * pass names they have checked with zfs_name_check().
 */
#ifndef AS_ZFS_H
#define AS_ZFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"

#define ZFS_NAME_MAX	255	/* ZFS_MAX_DATASET_NAME_LEN - 1 */
#define ZFS_HOLD_TAG	"autosync"	/* the tag of autosync's holds */

/* What the installed zfs can do. */
struct zfs_caps {
	char		impl[64];	/* "zfs-fuse", "OpenZFS", ... */
	unsigned	list_p:1;	/* zfs list -p (else zfs get -p) */
	unsigned	recv_u:1;	/* receive -u: do not mount */
	unsigned	recv_s:1;	/* receive -s and send -t: resume */
	unsigned	recv_o:1;	/* receive -o prop=value */
	unsigned	recv_x:1;	/* receive -x prop */
	unsigned	send_p:1;	/* send -p: properties */
	unsigned	send_R:1;	/* send -R: replication stream */
	unsigned	send_I:1;	/* send -I: intermediate snapshots */
	unsigned	send_c:1;	/* send -c: compressed */
	unsigned	send_L:1;	/* send -L: large blocks */
	unsigned	send_e:1;	/* send -e: embedded data */
	unsigned	send_w:1;	/* send -w: raw (encrypted) */
	unsigned	hold:1;		/* hold / release */
	unsigned	holds_list:1;	/* zfs holds -H works */
	unsigned	bookmark:1;	/* zfs bookmark */
	unsigned	written:1;	/* the "written" property */
};

/*
 * Parse the usage text that `zfs` prints when run without arguments, and
 * the standard error of the probe `zfs receive -u` (NULL when not run),
 * into c.  Pure: the unit tests feed it recorded outputs.
 */
void	zfs_caps_parse(const char *usage, const char *recv_u_probe,
	    struct zfs_caps *c);
/*
 * Detect once per process; NULL with err when zfs cannot run.  With
 * zfs_caps_cache(dir) set first, the result is kept in dir/caps across
 * processes, keyed by the zfs binary's identity (device, inode, size,
 * mtime), so that a scheduled run does not pay two extra commands.
 */
const struct zfs_caps *zfs_caps(struct as_err *err);
void	zfs_caps_cache(const char *dir);
/* Log what a missing capability costs, once per process and key. */
void	zfs_caps_note(const char *key, const char *msg);

/*
 * Map zfs's standard error to a class; AS_E_IO when nothing matches.
 * Pure; pinned by the unit tests with texts from zfs-fuse and OpenZFS.
 */
enum as_errcode	zfs_classify(const char *text);

/* 0 when name is a plausible dataset (or, with snap, snapshot) name. */
int	zfs_name_check(const char *name, int snap, struct as_err *err);

/*
 * Run argv (argv[0] "zfs" or "zpool", found on PATH) to completion.
 * in_fd: its standard input, or -1 for /dev/null (not closed).
 * *out (when out != NULL) receives its standard output, NUL-terminated
 * (at most 64 MiB).  A non-zero exit is an error classified from its
 * standard error and named by what ("snapshot 'a@b'").  Returns 0 or -1.
 */
int	zfs_run(const char *what, const char *const argv[], int in_fd,
	    char **out, struct as_err *err);
/*
 * Run argv to completion whatever its exit status: *status (exit status,
 * or 128 + signal), *out and *errtxt (both may be NULL).  Returns -1 only
 * when it could not be run.
 */
int	zfs_exec(const char *const argv[], int in_fd, char **out,
	    char **errtxt, int *status, struct as_err *err);

/* A zfs process running in the background (send or receive). */
struct zfs_proc {
	pid_t	 pid;		/* 0 when none */
	int	 err_fd;	/* memfd holding its standard error */
	char	*what;		/* for messages */
	char	*line;		/* argv joined, for the log */
};

/*
 * Start argv with in_fd / out_fd as its standard input / output (-1:
 * /dev/null); neither is closed.  Wait with zfs_proc_finish(), which
 * reaps it, classifies a failure, and releases p.  zfs_proc_kill()
 * sends SIGTERM (to abandon it) before the finish.
 */
int	zfs_proc_start(struct zfs_proc *p, const char *what,
	    const char *const argv[], int in_fd, int out_fd,
	    struct as_err *err);
int	zfs_proc_finish(struct zfs_proc *p, struct as_err *err);
void	zfs_proc_kill(struct zfs_proc *p);

/* One snapshot as listed. */
struct zfs_snap {
	char		*name;		/* owned: the part after '@' */
	uint64_t	 guid;
	uint64_t	 createtxg;	/* order of creation in the pool */
	int64_t		 creation;	/* seconds since the epoch */
	int64_t		 userrefs;	/* holds, or -1 when unknown */
};

/* One dataset with its snapshots, oldest first. */
struct zfs_ds {
	char		*name;		/* owned: full name */
	int		 volume;	/* 1 for a zvol */
	uint64_t	 guid;
	int64_t		 written;	/* bytes since the newest snapshot;
					 * -1 when unknown */
	char		*mountpoint;	/* owned, or NULL */
	char		*canmount;	/* owned, or NULL */
	int		 mounted;	/* 1 yes, 0 no, -1 unknown */
	int		 readonly;	/* 1 on, 0 off, -1 unknown */
	char		*resume_token;	/* owned: receive_resume_token, or
					 * NULL for none/unsupported */
	struct zfs_snap	*snaps;
	size_t		 nsnaps;
};

/* Datasets sorted by name, so that a parent comes before its children. */
struct zfs_tree {
	struct zfs_ds	*v;
	size_t		 n;
};

void	zfs_tree_release(struct zfs_tree *t);
/* The dataset of that full name, or NULL. */
struct zfs_ds *zfs_tree_find(const struct zfs_tree *t, const char *name);
/* The snapshot of ds with that GUID / name, or NULL. */
const struct zfs_snap *zfs_ds_snap_guid(const struct zfs_ds *ds,
	    uint64_t guid);
const struct zfs_snap *zfs_ds_snap_name(const struct zfs_ds *ds,
	    const char *name);

/*
 * How a destination dataset stands against its source, by GUID (never by
 * name): base_s/base_d the newest destination snapshot that the source
 * also has (NULL: nothing in common); after the destination snapshots
 * after it (all of them without a base: divergence when > 0); foreign
 * the first of those not named "autosync_*" (what -F must not destroy);
 * modified when the destination was written since its newest snapshot
 * (its "written" property, where known).  Pure.
 */
struct zfs_common {
	const struct zfs_snap *base_s;
	const struct zfs_snap *base_d;
	size_t		 after;
	const char	*foreign;
	int		 modified;
};
void	zfs_compare(const struct zfs_ds *src, const struct zfs_ds *dst,
	    struct zfs_common *c);
/*
 * "common snapshot: X; source only: a, b; destination only: c" (at most
 * 8 names per list, then "(and N more)").
 */
void	zfs_compare_report(const struct zfs_ds *src, const struct zfs_ds *dst,
	    const struct zfs_common *c, char *buf, size_t bufsz);

/*
 * Parse the output of
 *   zfs get -H -p -o name,property,value PROPS [-r|-d 1] ROOT   (get)
 *   zfs list -H -p -o COLUMNS -t all [-r|-d 1] ROOT             (list)
 * into t.  COLUMNS is the -o argument, starting with "name" and holding
 * "type"; both forms know the properties type, guid, createtxg,
 * creation, userrefs, written, mountpoint, canmount, mounted, readonly
 * and receive_resume_token, and ignore others.  Pure; every number is
 * checked.
 */
int	zfs_parse_get(const char *text, struct zfs_tree *t,
	    struct as_err *err);
int	zfs_parse_list(const char *text, const char *columns,
	    struct zfs_tree *t, struct as_err *err);

/*
 * List root and (recursive) every filesystem and volume below it, each
 * with its snapshots, in one zfs command.  A missing root is not an
 * error: t is empty and 0 is returned.
 */
int	zfs_list(const char *root, int recursive, struct zfs_tree *t,
	    struct as_err *err);
/*
 * Snapshots under root (recursive) that have holds (userrefs > 0), as
 * "ds@snap" strings (allocated array of allocated strings).
 */
int	zfs_list_held(const char *root, char ***out, size_t *n,
	    struct as_err *err);

/* zfs snapshot [-r] ds@name. */
int	zfs_snapshot(const char *ds, const char *name, int recursive,
	    struct as_err *err);
/*
 * Destroy the snapshot ds@name (recursive: also the snapshots of that
 * name of every descendant; never a file system); refuses (INTERNAL) a
 * name that does not start with "autosync_" unless any_name: the guard
 * of "never destroy what autosync did not create".
 */
int	zfs_destroy_snapshot(const char *ds, const char *name, int recursive,
	    int any_name, struct as_err *err);
/* zfs rollback -r ds@name: destroys the later snapshots (-F only). */
int	zfs_rollback(const char *ds, const char *name, struct as_err *err);
/*
 * Make the pool of ds write out what is dirty (a transaction group), so
 * that referenced, used and written say what the dataset holds now: a
 * write a moment ago counts there only after that (seconds, or never
 * on an idle zfs-fuse).  `zfs inherit ZFS_SYNC_PROP ds` of a property
 * nobody sets is a sync task that changes nothing (zfs-fuse has no
 * `zpool sync`).
 */
#define ZFS_SYNC_PROP	"autosync:txg-sync"
int	zfs_txg_sync(const char *ds, struct as_err *err);
/*
 * zfs hold / release [-r] ZFS_HOLD_TAG on ds@name; recursive: also on
 * the snapshots of that name of every descendant that has one.
 */
int	zfs_hold(const char *ds, const char *name, int recursive,
	    struct as_err *err);
int	zfs_release(const char *ds, const char *name, int recursive,
	    struct as_err *err);

/* zfs get -H -p -o value prop ds into *value (allocated). */
int	zfs_get(const char *ds, const char *prop, char **value,
	    struct as_err *err);
/* zfs set prop=value ds. */
int	zfs_set(const char *ds, const char *prop, const char *value,
	    struct as_err *err);

/*
 * Clones (the portable engine reads a frozen snapshot through one):
 * zfs_clone creates ds from snap (full name) with canmount=noauto,
 * readonly=on and the given mountpoint, and mounts it there;
 * zfs_destroy_clone unmounts and destroys a file system that must have
 * an origin (refuses anything else, CONFLICT).
 */
int	zfs_clone(const char *snap, const char *ds, const char *mountpoint,
	    struct as_err *err);
int	zfs_destroy_clone(const char *ds, struct as_err *err);

/* Flags of zfs_send_start() and zfs_receive_start(). */
#define ZFS_SEND_PROPS		0x01	/* -p: only to a receive -x/-o */
#define ZFS_SEND_INTERMEDIATE	0x02	/* -I instead of -i */
#define ZFS_SEND_LARGE		0x04	/* -L: large blocks as they are */
#define ZFS_SEND_EMBED		0x08	/* -e: embedded blocks as they are */
#define ZFS_RECV_FORCE		0x10	/* -F: roll back to the base */
#define ZFS_SEND_COMPRESSED	0x20	/* -c: blocks as compressed on disk */
/* the three that keep blocks as they are on disk */
#define ZFS_SEND_BLOCKS	(ZFS_SEND_LARGE | ZFS_SEND_EMBED | ZFS_SEND_COMPRESSED)

/*
 * The ZFS_SEND_BLOCKS flags that c's `zfs send` has: streams that carry
 * blocks as they are on disk (no decompression and recompression, no
 * splitting of large records: smaller streams, less CPU), as
 * zrepl's send.compressed / large_blocks / embedded_data do.  They need
 * a receiver of the same generation, and a destination pool with the
 * features: sync_zfs.c uses them between two local pools only, and
 * sends plain streams again when the receive refuses them.
 */
int	zfs_send_block_flags(const struct zfs_caps *c);
/*
 * The argv (NULL-terminated, at most ZFS_SEND_ARGV entries with the
 * NULL) of `zfs send [-p] [-L] [-e] [-c] [-i|-I base] snap`; returns
 * how many words.  Pure, for the tests.
 */
#define ZFS_SEND_ARGV	12
size_t	zfs_send_argv(const char *snap, const char *base, int flags,
	    const char **argv);
/*
 * Start `zfs send ...` (zfs_send_argv) writing to out_fd (not closed);
 * base and snap are full names, base NULL for a full stream.
 */
int	zfs_send_start(struct zfs_proc *p, const char *snap,
	    const char *base, int flags, int out_fd, struct as_err *err);
/*
 * Start `zfs receive` into ds from in_fd (not closed) under the
 * property policy: -u where supported (never mounted by the receive);
 * where -o/-x are supported also -o canmount=noauto -o readonly=on
 * -x mountpoint; zfs_receive_policy() completes the policy afterwards.
 */
int	zfs_receive_start(struct zfs_proc *p, const char *ds, int flags,
	    int in_fd, struct as_err *err);
/*
 * After a receive: canmount=noauto and readonly=on on ds (set only
 * where different; known: 1 when the caller knows both differ, so no
 * zfs get is needed, and the two `zfs set` run at once), so that
 * neither a reboot nor `zfs mount -a` mounts the replica and nothing
 * writes to it (which would make the next incremental refuse:
 * "destination has been modified").
 */
int	zfs_receive_policy(const char *ds, int known, struct as_err *err);

/* Synchronous forms for a server: send to / receive from a descriptor;
 * zfs_receive takes ownership of in_fd (closed, also on failure). */
int	zfs_send(const char *snap, const char *base, int flags, int out_fd,
	    struct as_err *err);
int	zfs_receive(const char *ds, int flags, int in_fd, struct as_err *err);

/*
 * Resume tokens (receive -s; OpenZFS only).  zfs_token_check validates
 * the form "1-<hex checksum>-<hex length>-<hex zlib data>" (bounded) of
 * a receive_resume_token.  zfs_token_parse reads the output of
 * `zfs send -nv -t TOKEN` ("resume token contents: nvlist version: 0
 * ... toguid = 0x... toname = pool/fs@snap") into toguid, fromguid (0:
 * full) and toname (allocated), so that the caller can check that the
 * token names the snapshot it means to send (RELIABILITY.md I6).
 */
int	zfs_token_check(const char *token, struct as_err *err);
int	zfs_token_parse(const char *text, uint64_t *toguid,
	    uint64_t *fromguid, char **toname, struct as_err *err);

/*
 * Mount a replica read-only / unmount it (mount-destination and
 * umount-destination of the service).  zfs_mount_ro sets readonly=on and
 * canmount=noauto, sets mountpoint when given (else keeps the inherited
 * one; refuses "none" and "legacy", USAGE), and mounts ds; mounting an
 * already mounted ds is not an error.  zfs_unmount unmounts ds if it is
 * mounted.
 */
int	zfs_mount_ro(const char *ds, const char *mountpoint,
	    struct as_err *err);
int	zfs_unmount(const char *ds, struct as_err *err);
/*
 * The same for a replica and its children: zfs_mount_tree_ro mounts root
 * (at mountpoint, or where it inherits) and every file system below it,
 * parents first, each at its inherited place; zfs_unmount_tree unmounts
 * them children first.  Volumes are skipped.
 */
int	zfs_mount_tree_ro(const char *root, const char *mountpoint,
	    struct as_err *err);
int	zfs_unmount_tree(const char *root, struct as_err *err);

#endif
