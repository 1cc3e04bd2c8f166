/*
 * dir.h - the portable engine for directory trees on any Linux file
 * system: snapshot (scan into a catalog), send (catalog diff into a
 * stream), receive (stream into a destination, crash-safe), recover.
 *
 * Roles -> files:
 *   dir_scan.c   walk a tree in path_cmp() order, stat, xattrs, block
 *                hashes -> struct catalog
 *   dir_send.c   diff a target catalog against a base, read the live
 *                files, write the stream
 *   dir_recv.c   read and validate a stream, stage it under DEST/.autosync
 *   dir_apply.c  the journal: commit point, idempotent apply, recovery
 *
 * None of these print; they fill struct as_err.  None keeps a descriptor
 * open after returning.
 */
#ifndef AS_DIR_H
#define AS_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "format/catalog.h"

/* Counters every phase adds to; for -v output, tests and benchmarks. */
struct dir_stats {
	uint64_t	entries;	/* entries scanned (one lstat each) */
	uint64_t	files_read;	/* regular files opened to read */
	uint64_t	bytes_read;	/* file bytes read (scan and send) */
	uint64_t	entries_sent;	/* ENTRY records emitted / applied */
	uint64_t	data_bytes;	/* DATA payload bytes emitted / received */
	uint64_t	stream_bytes;	/* stream bytes written / read */
	uint64_t	renames;	/* RENAME records */
	uint64_t	deletes;	/* DELETE records */
	uint64_t	notpit;		/* files that kept changing while read */
	uint64_t	carried;	/* narrowed scan: entries copied from the
					 * base without a stat */
	uint64_t	rescans;	/* narrowed scans redone in full */
};

#define DIR_SCAN_NOHASH	0x01	/* stat and xattrs only: nblocks = 0 */
#define DIR_SCAN_REHASH	0x02	/* hash every file, trust no base entry */
#define DIR_SCAN_XDEV	0x04	/* descend into file systems mounted below */
#define DIR_SCAN_DEFER	0x08	/* leave new files unread: CAT_EF_UNHASHED */

/*
 * Scan the tree at root into out (initialised by the caller; its header
 * is filled with kind, block_size and source; guid, name and time are the
 * caller's).  Entries come in path_cmp() order, starting with the root
 * itself (path "").  The private directory ".autosync" at the root is
 * skipped.  Without DIR_SCAN_XDEV so is everything below a mount point
 * (the mount point's own directory entry is kept, empty, as rsync -x
 * does); with it, mounted file systems are part of the tree (inode
 * numbers: scan_util.h, scan_fix_ino).
 *
 * Regular files are hashed per block_size block (XXH3-128, canonical
 * bytes; a hole hashes as zeros; the last block hashes its real length),
 * except that an entry whose path, inode, type, size, mtime and ctime
 * all equal an entry of base (may be NULL) takes base's hashes unread:
 * an unchanged tree is scanned with one lstat per entry and no reads.
 * A file that changes while it is hashed (fstat before and after on the
 * descriptor: size, mtime, ctime) is hashed again, up to 3 times, then
 * kept with CAT_EF_NOTPIT and counted in st->notpit.  Entries that vanish
 * during the scan are left out.  Never follows a symlink; opens files
 * with O_NOFOLLOW|O_NONBLOCK and never opens anything but regular files
 * and directories.
 */
int	dir_scan(const char *root, const struct catalog *base,
	    uint32_t block_size, int flags, struct catalog *out,
	    struct dir_stats *st, struct as_err *err);

/*
 * A narrowed scan, for a tree whose changes a journal recorded since
 * base was scanned (service/changes.h): the same catalog as dir_scan()
 * would make, provided that the entries of every directory not in dirs
 * are as in base.  dirs (ndirs, relative to root, "" the root itself, in
 * any order) are the directories to list: their entries are stat'ed as
 * dir_scan() does; a directory below one of them that base does not
 * have (or has with another inode) is scanned whole; every other entry
 * is copied from base without a system call (st->carried counts them),
 * except that the way down to a listed directory is walked through
 * base.  Also listed, whatever dirs says: the directories that hold an
 * entry with more than one link, or a file whose base content was not
 * point-in-time.  An entry stat'ed that is or was hard-linked and
 * differs from base means another name of the same file may have
 * changed where no event was heard: the tree is then scanned again in
 * full (st->rescans).  Without a usable base (NULL, another block size,
 * DIR_SCAN_REHASH, another root directory) this is dir_scan().
 *
 * What it cannot see is what the journal did not hear: a write through
 * a shared mmap (no event), a change made on another NFS client, a
 * change before the journal existed.  Callers scan in full now and then.
 */
int	dir_scan_narrow(const char *root, const struct catalog *base,
	    const char *const *dirs, size_t ndirs, uint32_t block_size,
	    int flags, struct catalog *out, struct dir_stats *st,
	    struct as_err *err);

/*
 * dir_scan with the base read from rd one entry at a time, as a merge,
 * instead of a whole catalog in memory next to out (the sender's peak).
 * An entry that the quick check finds unchanged at its path, and that
 * is neither a directory nor a file with other names, gets
 * CAT_EF_SAME in out and is not kept; every other base entry (changed,
 * gone, moved, directories, hard links) is copied into rest
 * (initialised by the caller; its header is left to the caller).  A
 * moved file takes its base hashes from rest by inode.  dir_send(out,
 * rest) then writes the stream dir_send(out, base) would.  Meant with
 * DIR_SCAN_DEFER (the sender hashes what it reads).  An error in the
 * base catalog fails the scan.  The walk runs on several threads, as a
 * full dir_scan's does, each run of the root's children merging with its
 * own share of the base through a reader of its own (cat_reader_fork).
 */
int	dir_scan_merge(const char *root, struct cat_reader *rd,
	    uint32_t block_size, int flags, struct catalog *out,
	    struct catalog *rest, struct dir_stats *st, struct as_err *err);

#define DIR_SEND_LIVE	0x01	/* target was just scanned: follow changes */
/*
 * out_fd is a pipe that only our own receiver read(2)s (sync's local
 * transfer): its pages are handed over with vmsplice, not copied, and
 * a buffer is reused only once the pipe says its bytes were read.  Not
 * for a pipe to anyone else: one that splice(2)s our pages on would see
 * them change.
 */
#define DIR_SEND_OWNPIPE 0x02

/*
 * Write the stream that turns a destination holding base (NULL: nothing)
 * into one holding target, to out_fd (not closed).  The data is read from
 * the live tree at root; every block sent is hashed and compared with
 * target.  Without DIR_SEND_LIVE a mismatch is an error (CONFLICT: "the
 * snapshot no longer matches the tree: 'path' changed since it was
 * taken").  With DIR_SEND_LIVE (sync: the snapshot is being taken now)
 * the file is re-read, sent again with AS_EF_RETRY, and target's entry is
 * updated to what was sent, so that the catalog saved afterwards
 * describes the stream exactly.
 *
 * Structure: renames are found by inode (same type, different parent or
 * name; not for regular files with nlink > 1, which travel as LINK),
 * deletions are base entries with no counterpart, a type change is a
 * delete and a create.  Only blocks whose hash differs from base's travel;
 * holes travel as HOLE records.  A write error on out_fd (EPIPE: the
 * receiver went away) returns -1 with IO.
 */
int	dir_send(const char *root, struct catalog *target,
	    const struct catalog *base, int out_fd, int flags,
	    struct dir_stats *st, struct as_err *err);

/*
 * dir_send() with a hook that runs once everything but the END record
 * is written (and flushed): a receiver cannot commit before it returns.
 * A hook that returns -1 (err set) fails the send without END, so the
 * receiver refuses the stream.  sync saves the pending catalog there.
 */
int	dir_send_hook(const char *root, struct catalog *target,
	    const struct catalog *base, int out_fd, int flags,
	    int (*before_end)(void *arg, struct as_err *err), void *arg,
	    struct dir_stats *st, struct as_err *err);

#define DIR_RECV_FORCE	0x01	/* -F: roll back a modified destination */
#define DIR_RECV_DRYRUN	0x02	/* validate the whole stream, change nothing */
#define DIR_RECV_SAFE	0x04	/* no devices, setid bits, non-user xattrs
				 * (dir_policy.h) */

struct dir_recv_result {
	uint64_t	target_guid;	/* the snapshot now held */
	uint64_t	base_guid;	/* what the stream was relative to */
	char		name[256];	/* its name */
	struct dir_stats st;
};

/*
 * Apply the stream read from in_fd (not closed) to the tree at dest
 * (created if missing, when its parent exists).  Takes an exclusive lock
 * (DEST/.autosync/lock; a second receiver gets CONFLICT "busy"), recovers
 * an interrupted receive first (dir_recover), checks that the stream's
 * base is the snapshot dest holds (CONFLICT naming both GUIDs; a full
 * stream needs an empty destination or -F), checks that dest was not
 * modified since it was received (CONFLICT listing the first paths,
 * unless DIR_RECV_FORCE), stages everything under DEST/.autosync, and
 * commits atomically: on any error before the commit point the tree is
 * untouched; after it, the apply is rolled forward (now or by the next
 * recover).  Every path is resolved beneath dest without following
 * symlinks.
 */
int	dir_receive(const char *dest, int in_fd, int flags,
	    struct dir_recv_result *res, struct as_err *err);
/*
 * The same with the drift check narrowed (narrow 1) to the directories
 * dirs[0..ndirs) of dest, as a change journal on the destination names
 * them (dir_scan_narrow's rules; held.cat is the base): a change
 * elsewhere is not seen.  The service checks in full every
 * full_scan_interval.
 */
int	dir_receive_narrow(const char *dest, int in_fd, int flags, int narrow,
	    const char *const *dirs, size_t ndirs,
	    struct dir_recv_result *res, struct as_err *err);

/*
 * Resume (doc/autosync-protocol.md, Resume).  A receive without -F makes
 * what it has staged durable every DIR_CKPT_BYTES of stream (not more
 * often than once a second, $AUTOSYNC_DIR_CHECKPOINT_MS for tests, unless
 * DIR_CKPT_MAX_BYTES went by): one syncfs, then DEST/.autosync/partial
 * names the snapshot, its base and the position; those two in a thread
 * while the stream goes on, one at a time, so a cut loses at most two
 * intervals (the one on its way to disk and the one being received):
 * 2 x DIR_CKPT_MAX_BYTES = 64 MiB at most.  A receive that is cut
 * (killed, a truncated stream, a lost connection) keeps it; recovery
 * keeps the stage; any other receive, or a commit, forgets it.
 *
 * A position is (entry << 32) | block: the stream's first `entry`
 * ENTRY records (RETRY ones not counted) are staged, the last of them,
 * when it is a new regular file, up to `block` blocks of the stream's
 * block size.  A resumed stream is the same snapshot (same BEGIN) whose
 * first ENTRY is that last entry again, its data from the block on (a
 * PATCH from its start), followed by the rest.
 */
#define DIR_CKPT_BYTES		(16u << 20)
#define DIR_CKPT_MAX_BYTES	(32u << 20)
#define DIR_POS(entry, block)	(((uint64_t)(entry) << 32) | (uint32_t)(block))
#define DIR_POS_ENTRY(pos)	((pos) >> 32)
#define DIR_POS_BLOCK(pos)	((pos) & 0xffffffffu)

struct dir_partial {
	uint64_t	target_guid;	/* the snapshot being received */
	uint64_t	base_guid;	/* its base, 0 for a full stream */
	uint64_t	pos;		/* DIR_POS */
	uint64_t	bytes;		/* stream bytes received by then */
};

/*
 * The checkpointed transfer dest holds (after dir_recover): 1 and *p,
 * 0 when none, -1 on error.
 */
int	dir_partial(const char *dest, struct dir_partial *p,
	    struct as_err *err);

/*
 * dir_receive continuing the checkpointed transfer of snapshot rguid at
 * position rpos (at most what dir_partial says, same entry): the op
 * list is rebuilt from partial.log, the stage is kept, and in_fd carries
 * the resumed stream.  No such transfer is CONFLICT.  rguid 0 is
 * dir_receive.
 */
int	dir_receive_resume(const char *dest, int in_fd, int flags,
	    uint64_t rguid, uint64_t rpos, struct dir_recv_result *res,
	    struct as_err *err);

/*
 * Both at once: the receive of a sync_run, which may resume (rguid,
 * rpos as dir_receive_resume; 0, 0: no) a transfer into a destination
 * whose drift check a journal narrows (narrow, dirs, ndirs as
 * dir_receive_narrow).  NULL is dir_receive.
 */
struct dir_recv_opts {
	uint64_t		 rguid;
	uint64_t		 rpos;
	int			 narrow;
	const char *const	*dirs;
	size_t			 ndirs;
};
int	dir_receive_opts(const char *dest, int in_fd, int flags,
	    const struct dir_recv_opts *ro, struct dir_recv_result *res,
	    struct as_err *err);

/*
 * dir_send_hook resuming at position rpos (0: from the start): the
 * entries before the position's entry are not sent (nor read), that
 * entry is sent again with its data from the block on when it is a new
 * file, from its start otherwise.
 */
int	dir_send_resume(const char *root, struct catalog *target,
	    const struct catalog *base, int out_fd, int flags,
	    int (*before_end)(void *arg, struct as_err *err), void *arg,
	    uint64_t rpos, struct dir_stats *st, struct as_err *err);

/*
 * Where dir_send_to writes the stream instead of a descriptor: write()
 * takes every byte or returns -1 with errno set (EPIPE: the receiver
 * went away), as a write to out_fd would.  The remote push's sender
 * frames its bytes straight onto the connection this way, without a
 * pipe and a pump thread in between (remote.c, xfer_send_direct).
 */
struct dir_sink {
	int	(*write)(void *arg, const void *p, size_t n);
	void	*arg;
};

/* dir_send_resume writing to sink. */
int	dir_send_to(const char *root, struct catalog *target,
	    const struct catalog *base, const struct dir_sink *sink,
	    int flags, int (*before_end)(void *arg, struct as_err *err),
	    void *arg, uint64_t rpos, struct dir_stats *st,
	    struct as_err *err);

/*
 * Bring dest to a consistent state after a crash: roll a committed
 * journal forward, or discard uncommitted staging.  Takes the lock,
 * creating DEST/.autosync/lock when it is missing (never .autosync
 * itself).  Returns 1 if it did something, 0 if there was nothing to do,
 * -1 on error.
 */
int	dir_recover(const char *dest, struct as_err *err);

/*
 * The snapshot dest holds: returns 1 and fills hdr (release it with
 * cat_header_release), 0 when dest holds none, -1 on error.
 */
int	dir_held(const char *dest, struct cat_header *hdr, struct as_err *err);

#endif
