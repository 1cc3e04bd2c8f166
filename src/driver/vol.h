/*
 * vol.h - the portable engine for volumes: a block device (partition,
 * LVM volume, loop or NBD device) or a raw image file named with "vol:".
 *
 * A snapshot of a volume is a catalog (catalog.h) of kind AS_KIND_VOL
 * with exactly one entry, path VOL_ENTRY_PATH, type S_IFREG, whose size
 * is the volume's size in bytes and whose hashes are the XXH3-128 of
 * each block_size block (the last block hashes its real length).  An
 * all-zero block hashes like any block of zeros; it travels as HOLE.
 *
 * A volume stream (doc/autosync-stream.5 "VOLUME STREAMS") is BEGIN
 * (kind vol), one ENTRY for VOL_ENTRY_PATH (op CREATE for a full
 * stream, PATCH for an incremental one, size = the new volume size),
 * DATA for each block whose hash differs from the base's, HOLE for
 * every all-zero block that differs (adjacent ones merged), END.
 *
 * Destination state (see vol_paths()):
 *   image file DEST:   DEST.autosync           the held-snapshot record
 *                      DEST.autosync-journal   the apply journal
 *   block device DEV:  STATE/volumes/<key>     the held-snapshot record
 *                      STATE/volumes/<key>.journal
 * where <key> is the device's absolute path with every byte outside
 * [A-Za-z0-9._,+=@:-] written as %XX.
 *
 * None of these print; they fill struct as_err.  None keeps a descriptor
 * open after returning.
 */
#ifndef AS_VOL_H
#define AS_VOL_H

#include <stdint.h>

#include "base/err.h"
#include "format/catalog.h"

#define VOL_ENTRY_PATH	"volume"

/* Counters; for -v output, tests and benchmarks. */
struct vol_stats {
	uint64_t	bytes_read;	/* volume bytes read */
	uint64_t	blocks;		/* blocks in the target */
	uint64_t	blocks_sent;	/* blocks sent as DATA */
	uint64_t	zero_blocks;	/* blocks sent in a HOLE */
	uint64_t	data_bytes;	/* DATA bytes sent/applied */
	uint64_t	hole_bytes;	/* HOLE bytes emitted/applied */
	uint64_t	stream_bytes;	/* stream bytes written / read */
	uint64_t	journal_bytes;	/* bytes spooled to the journal */
	int		cloned;		/* read from a FICLONE copy */
	int		changed;	/* written while it was read */
};

/*
 * What a path given as "vol:PATH" is: fills *size (bytes) and *is_blk.
 * A regular file or a block device; anything else is USAGE, a missing
 * path NOTFOUND.
 */
int	vol_probe(const char *path, uint64_t *size, int *is_blk,
	    struct as_err *err);

/*
 * Hash the volume at path into out (initialised by the caller; its
 * header gets kind, block_size and, when NULL, source; guid, name and
 * time are the caller's).  Reads the volume once, sequentially, in large
 * reads with POSIX_FADV_SEQUENTIAL.
 */
int	vol_scan(const char *path, uint32_t block_size, struct catalog *out,
	    struct vol_stats *st, struct as_err *err);

/*
 * Compare the volume at path with snapshot snap: every block is read
 * (holes of an image file are not) and hashed at the snapshot's block
 * size; cb(arg, block, len) is called for each block that differs.  A
 * size that differs (an image file of another size, a device smaller
 * than the volume) sets *size_differs; the blocks both have are still
 * compared.  Returns 0 with *ndiff, or -1.
 */
int	vol_verify(const struct catalog *snap, const char *path,
	    void (*cb)(void *arg, uint64_t block, uint64_t len), void *arg,
	    uint64_t *ndiff, int *size_differs, struct vol_stats *st,
	    struct as_err *err);

#define VOL_SEND_LIVE	0x01	/* fill target while reading */

struct vol_send_opts {
	int		 flags;		/* VOL_SEND_* */
	uint32_t	 block_size;	/* LIVE: block size of target */
	/*
	 * LIVE, resuming a cut transfer: target is the pending catalog of
	 * that transfer (VOL_ENTRY_PATH's ino = blocks with hashes, see
	 * below) and the stream carries only blocks from resume_block on.
	 */
	uint64_t	 resume_block;
	/*
	 * LIVE: called every 32 MiB of stream (and 0.5 s, half the
	 * receiver's floor) with c: target, or a copy of it, whose hashes
	 * are valid for the blocks read so far; the entry's ino holds how
	 * many (a complete catalog has ino 0).  Saving c then makes the
	 * transfer resumable from there.  vol_copy calls it from the
	 * thread that makes the receiver's checkpoint durable, with a copy.
	 */
	int		(*checkpoint)(void *arg, const struct catalog *c,
			    struct as_err *err);
	/* called after the last DATA/HOLE, before END is written */
	int		(*before_end)(void *arg, struct as_err *err);
	void		*arg;
	/*
	 * vol_copy, when set: called after each chunk read with the
	 * stream's bytes so far; it may sleep (a rate limit).
	 */
	void		(*paced)(void *pace_arg, uint64_t stream_bytes);
	void		*pace_arg;
};

/*
 * Write the stream that turns a volume holding base (NULL: nothing) into
 * one holding target, to out_fd (not closed).
 *
 * Without VOL_SEND_LIVE, target is a complete catalog taken earlier:
 * only the blocks whose hash differs from base are read, and each is
 * hashed again; a mismatch is CONFLICT ("the volume changed since the
 * snapshot was taken").  With VOL_SEND_LIVE, target holds only a header
 * (guid, name, time): the whole volume is read once, hashed, compared
 * with base and the entry is added to target, so that target describes
 * the stream exactly.  A block size different from base's is USAGE.
 */
int	vol_send(const char *path, struct catalog *target,
	    const struct catalog *base, int out_fd,
	    const struct vol_send_opts *o, struct vol_stats *st,
	    struct as_err *err);

#define VOL_RECV_FORCE	0x01	/* -F: overwrite any volume */
#define VOL_RECV_DRYRUN	0x02	/* -n: read and check it all, write nothing */

struct vol_recv_result {
	uint64_t	target_guid;	/* the snapshot now held */
	uint64_t	base_guid;	/* what the stream was relative to */
	uint64_t	size;		/* the volume's new size */
	char		name[256];
	int		recovered;	/* a crash was settled first */
	uint64_t	resumed;	/* resumed at this offset, or 0 */
	struct vol_stats st;
};

/*
 * Apply the volume stream read from in_fd (not closed) to dest: an image
 * file (created sparse when missing) or a block device.  state is the
 * state directory (needed for block devices only).
 *
 * Checks before anything is written: the stream is a volume stream, its
 * base is the snapshot dest holds (CONFLICT); a full stream into a
 * volume that holds a snapshot or was not filled by autosync (an image
 * file of nonzero size without record, any block device without record)
 * needs VOL_RECV_FORCE; a block device is not mounted (CONFLICT) and is
 * opened O_EXCL; a block device smaller than the stream's size is
 * NOSPACE.
 *
 * An incremental stream is spooled to the journal, which is fsync'ed and
 * sealed with a commit record; only then is it applied in place (DATA:
 * pwrite; HOLE: fallocate PUNCH_HOLE|KEEP_SIZE on files, BLKZEROOUT on
 * devices, else zeros written), dest fsync'ed, the record updated and
 * the journal removed.  After a crash the volume is exactly the old or
 * the new snapshot (vol_recover).  A full stream is written in place:
 * the record says "incomplete" until it is done, and an incomplete
 * volume holds no snapshot.
 */
int	vol_receive(const char *dest, const char *state, int in_fd,
	    int flags, struct vol_recv_result *res, struct as_err *err);

/*
 * The same, continuing an interrupted transfer of snapshot resume_guid
 * at byte resume_off (a multiple of the block size, at most what
 * vol_partial says): what was received below it is kept, the rest
 * dropped, and the stream (BEGIN of the same snapshot and base, then
 * only DATA/HOLE at or after resume_off) continues from there.  No such
 * partial transfer is CONFLICT.  resume_guid 0: an ordinary receive,
 * which forgets any partial transfer.
 *
 * Resume checkpoints: every 16 MiB of stream (and at least 1 s; the
 * environment variable AUTOSYNC_VOL_CHECKPOINT_MS changes that floor,
 * for tests) the receiver makes what it has durable (journal fsync'ed,
 * or a full stream's volume fdatasync'ed) and then records
 * "partial_guid/base/offset/journal" in the held-snapshot record; a
 * thread does that while the stream goes on, one checkpoint at a time
 * (the next waits for the one in flight), so the record is at most two
 * intervals behind what was received.  A failed or killed receive
 * keeps that state (an incremental one still holds its old snapshot
 * meanwhile; a full one stays incomplete).
 */
int	vol_receive_resume(const char *dest, const char *state, int in_fd,
	    int flags, uint64_t resume_guid, uint64_t resume_off,
	    struct vol_recv_result *res, struct as_err *err);

/*
 * vol_send and vol_receive_resume in one process, for a local copy
 * (both volumes on this machine): the sender's records go straight to
 * the receiver's handler instead of through a stream, so each changed
 * byte is read once and written once from the same buffer (no
 * encoding, pipe or decoding, no record checks: nothing travels).
 * Everything else is the receiver's as with a stream: a full copy marks
 * dest incomplete until it is fsync'ed and recorded, an incremental one
 * goes through the sealed journal, and both make resume checkpoints at
 * the same pace.  o, sst: as vol_send; dest, state, rflags (VOL_RECV_*),
 * resume_guid, resume_off, res: as vol_receive_resume.  An error says
 * which side failed ("send 'SRC': ...", "receive 'DEST': ...").
 */
int	vol_copy(const char *src, struct catalog *target,
	    const struct catalog *base, const char *dest, const char *state,
	    int rflags, uint64_t resume_guid, uint64_t resume_off,
	    const struct vol_send_opts *o, struct vol_stats *sst,
	    struct vol_recv_result *res, struct as_err *err);

/* An interrupted transfer into a volume that can be resumed. */
struct vol_partial {
	uint64_t	target_guid;	/* the snapshot being received */
	uint64_t	base_guid;	/* its base; 0: a full stream */
	uint64_t	offset;		/* received durably below this */
};

/* 1 and *p when dest holds one, 0 when not, -1 on error. */
int	vol_partial(const char *dest, const char *state,
	    struct vol_partial *p, struct as_err *err);

/*
 * Settle a crashed apply: a sealed journal is replayed, an unsealed one
 * discarded (unless it is a resumable transfer's, vol_partial: then it
 * is cut back to its last checkpoint and kept).  Returns 1 if it did something, 0 if not, -1 on error.
 */
int	vol_recover(const char *dest, const char *state, struct as_err *err);

/*
 * The snapshot dest holds: returns 1 and fills *guid (and name, when not
 * NULL, of at least 256 bytes), 0 when it holds none (no record, or an
 * incomplete full receive), -1 on error.
 */
int	vol_held(const char *dest, const char *state, uint64_t *guid,
	    char *name, struct as_err *err);

/*
 * Failback (service reverse): vol_hold_set makes dest, a source until
 * now, a destination holding snap (its record: snap's guid, name, size
 * and block size, complete); a journal left there is CONFLICT (run
 * vol_recover first).  vol_hold_drop removes the record of dest, a
 * destination that becomes a source, and the spool of a cut incremental
 * that vol_recover kept for a resume (run it first): a sync into dest
 * must then be told -F, rather than write over what changed there.
 */
int	vol_hold_set(const char *dest, const char *state,
	    const struct catalog *snap, struct as_err *err);
int	vol_hold_drop(const char *dest, const char *state, struct as_err *err);

/*
 * The record and journal paths of dest (allocated; free both).  dest
 * need not exist; when it does not, it is taken as an image file.
 */
int	vol_paths(const char *dest, const char *state, char **record,
	    char **journal, struct as_err *err);

#endif
