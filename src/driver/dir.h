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
 * base catalog fails the scan.
 */
int	dir_scan_merge(const char *root, struct cat_reader *rd,
	    uint32_t block_size, int flags, struct catalog *out,
	    struct catalog *rest, struct dir_stats *st, struct as_err *err);

#define DIR_SEND_LIVE	0x01	/* target was just scanned: follow changes */

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
