/*
 * io.h - safe descriptor I/O: full reads and writes, EINTR retried,
 * and named fault-injection sites for tests.
 */
#ifndef AS_IO_H
#define AS_IO_H

#include <stddef.h>
#include <sys/types.h>

#include "base/err.h"

/*
 * Read exactly n bytes unless end of file comes first.  Returns the number
 * of bytes read (< n only at end of file), or -1 with errno set.
 */
ssize_t	io_read_full(int fd, void *buf, size_t n);
/* Write all n bytes; returns 0, or -1 with errno set. */
int	io_write_full(int fd, const void *buf, size_t n);
/* pwrite all n bytes at off; returns 0, or -1 with errno set. */
int	io_pwrite_full(int fd, const void *buf, size_t n, off_t off);
/* pread up to n bytes at off until n or end of file; -1 with errno. */
ssize_t	io_pread_full(int fd, void *buf, size_t n, off_t off);

/*
 * Named fault sites.  With AUTOSYNC_FAULT="site:errno[:nth]" in the
 * environment (test builds and production alike: it costs one getenv at
 * start-up), the nth call (default 1st) of io_fault("site") returns the
 * errno value (a number or a name such as ENOSPC); all others return 0.
 * The value KILL makes that call kill the process instead (SIGKILL:
 * kill -9 at a named point, for crash tests); STOP makes it stop the
 * process (SIGSTOP) and, once continued, return 0: a test catches the
 * process at a named point and signals it there.  SLEEPn makes that call
 * sleep n seconds, then return 0: only the calling thread waits (a slow
 * disk, where STOP would stop every thread).
 */
int	io_fault(const char *site);

/* fsync that reports through err, naming what was synced. */
int	io_fsync(int fd, const char *what, struct as_err *err);

/*
 * renameat2(RENAME_NOREPLACE): 0, or -1 with errno (EEXIST when new
 * exists).  On a file system that lacks the flag (zfs-fuse and other
 * FUSE 2 file systems answer EINVAL) it checks that new is absent and
 * renames: not atomic against another writer of the same directory,
 * which the receiver's lock rules out for autosync's own renames.
 */
int	io_rename_noreplace(int olddfd, const char *oldname, int newdfd,
	    const char *newname);

#endif
