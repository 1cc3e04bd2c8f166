/*
 * dir_writer.h - private to dir_recv.c: a thread that writes the data of
 * staged regular files and closes them (size, owner, xattrs, mode, times,
 * close), while the receiving thread goes on reading, checking and
 * creating the next entries.  The two use both cores of a small machine:
 * file creation and the stream on one, data and metadata on the other.
 *
 * Crash safety is the receiver's as before: everything happens inside
 * DEST/.autosync/stage, which nobody sees before the commit, and every
 * point that relies on the stage being complete (a resume checkpoint, the
 * commit's syncfs) first calls dir_writer_drain(), which returns once the
 * thread has done all it was given.  The order of the jobs of one file is
 * kept (one thread, first in first out).
 *
 * Memory: one ring of DW_RING bytes, data copied in as it is decoded;
 * at most DW_MAX_FILES files are open in the queue at once.
 */
#ifndef AS_DIR_WRITER_H
#define AS_DIR_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define DW_RING		(1u << 20)	/* bytes queued at most */
#define DW_PIECE	(128u << 10)	/* a DATA record is queued in pieces */
#define DW_MAX_FILES	64		/* descriptors in the queue at once */

struct dir_writer;

/*
 * A staged regular file as it is once closed, for held.cat (dir_recv.c,
 * derive_full): its inode and ctime, when it has one link, no xattrs,
 * and the owner, mode, size and mtime the stream gave; ino 0 otherwise.
 */
struct dw_stat {
	uint64_t	 ino;
	int64_t		 ctime_ns;
};

/* What closing a staged regular file sets (meta_apply, dir_journal.h). */
struct dw_meta {
	uint64_t	 size;		/* the file's size */
	uint64_t	 end;		/* end of the data written */
	int64_t		 mtime_sec;
	uint32_t	 mtime_nsec;
	uint32_t	 mode;
	uint32_t	 uid;
	uint32_t	 gid;
	int		 full_set;	/* xattrs are the full set */
	const uint8_t	*xattrs;	/* blob, copied */
	size_t		 xattr_len;
	const char	*path;		/* for messages, copied */
	struct dw_stat	*out;		/* filled once closed, or NULL; must
					 * stay put until a drain */
};

/*
 * Whether receives use the thread: yes unless $AUTOSYNC_RECV_THREAD is
 * "0" (benchmarks and tests compare both ways).
 */
int	dir_writer_wanted(void);
/*
 * With $AUTOSYNC_RECV_KICK "1" the thread starts each file's write-back
 * once it is closed (sync_file_range); by default the receive's syncfs
 * (checkpoints, the commit) writes it all back, as without the thread.
 */

/* A writer with its thread started; NULL (err set) when it cannot be. */
struct dir_writer *dir_writer_new(struct as_err *err);

/*
 * Queue len bytes (copied) for fd at off; path names the file in a
 * message.  -1 with err when the thread failed earlier (its first error;
 * the queue is then only emptied).
 */
int	dir_writer_data(struct dir_writer *w, int fd, uint64_t off,
	    const void *data, size_t len, const char *path,
	    struct as_err *err);

/*
 * Queue the end of fd: the size when the data ends short of it, then
 * meta_apply() as close_entry does, then close.  The descriptor belongs
 * to the writer from this call on, also when it returns -1.
 */
int	dir_writer_close(struct dir_writer *w, int fd,
	    const struct dw_meta *m, struct as_err *err);

/* Wait until everything queued is done: 0, or -1 with the first error. */
int	dir_writer_drain(struct dir_writer *w, struct as_err *err);

/* Drain (errors dropped), stop the thread, free; NULL is fine. */
void	dir_writer_free(struct dir_writer *w);

/*
 * The end of a staged regular file without the thread, the same steps
 * (dir_writer_close runs this in the thread; fd is closed).  kick: start
 * the file's write-back (sync_file_range), as the thread does.
 */
int	dir_writer_finish_fd(int fd, const struct dw_meta *m, int kick,
	    struct as_err *err);

#endif
