/*
 * scan_util.h - helpers private to the dir driver, shared by dir_scan.c
 * (which defines them) and dir_send.c: block hashing, confined opens,
 * extended attributes, stat comparison.
 */
#ifndef AS_SCAN_UTIL_H
#define AS_SCAN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/err.h"
#include "format/catalog.h"

#define SCAN_TRIES	4		/* one read and up to 3 re-reads */
#define SCAN_CHUNK	(1u << 20)	/* bytes per read(2) */

/* Scratch space for reading extended attributes; reused per entry. */
struct scan_xa {
	struct buf	 names;		/* list of names from listxattr */
	const char	**sorted;	/* pointers into names */
	size_t		 cap;
	uint8_t		*val;		/* AS_XATTR_VALUE_MAX bytes */
};

void	scan_xa_init(struct scan_xa *x);
void	scan_xa_release(struct scan_xa *x);

/*
 * Read every extended attribute of the object behind fd, all namespaces,
 * into blob (reset first) sorted by name.  fd may be an O_PATH
 * descriptor when opath is set (symlinks and special files): the
 * attributes are then read through /proc/self/fd.  A file system
 * without xattr support gives an empty blob.  Returns 0, or -1 with
 * errno set (E2BIG: more than AS_XATTRS_MAX attributes).
 */
int	scan_xattrs(int fd, int opath, struct scan_xa *x, struct buf *blob);
/*
 * The same for the object at path, read with llistxattr/lgetxattr: a
 * final symlink is not followed.  ENOENT when it is gone.
 */
int	scan_xattrs_path(const char *path, struct scan_xa *x,
	    struct buf *blob);
/*
 * The same for the entry name in the directory dirfd (listxattrat and
 * getxattrat where the kernel has them, else the l* calls through
 * /proc/self/fd/DIRFD/name); a final symlink is not followed.
 */
int	scan_xattrs_at(int dirfd, const char *name, struct scan_xa *x,
	    struct buf *blob);

/* XXH3-128 of p in canonical (big-endian) bytes. */
void	scan_hash(const void *p, size_t len, uint8_t out[CAT_HASH_LEN]);
/* The hash of len zero bytes: what a hole hashes as. */
void	scan_zero_hash(uint64_t len, uint8_t out[CAT_HASH_LEN]);
/* Number of block_size blocks of a file of size bytes. */
uint64_t scan_nblocks(uint64_t size, uint32_t block_size);

/*
 * Hash the open regular file fd, taken to be size bytes long, into
 * hashes (scan_nblocks() * CAT_HASH_LEN bytes).  Blocks that lie wholly
 * in a hole (SEEK_DATA/SEEK_HOLE) are not read.  rbuf holds rlen bytes,
 * a multiple of bs.  A short read (the file shrank) hashes zeros for the
 * missing part: the caller's fstat after the read notices the change.
 * Adds the bytes read to *nread.  Returns 0, or -1 with errno set.
 */
int	scan_hash_fd(int fd, uint64_t size, uint32_t bs, uint8_t *hashes,
	    uint8_t *rbuf, size_t rlen, uint64_t *nread);

/*
 * Open path (relative, "" for dirfd itself) beneath dirfd without
 * following any symlink or leaving dirfd's tree (openat2 with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or a walk of O_NOFOLLOW opens
 * where openat2 is missing).  flags get O_CLOEXEC added.  Returns a
 * descriptor, or -1 with errno set.
 */
int	scan_open_beneath(int dirfd, const char *path, int flags);

/*
 * Open the regular file name in dirfd for reading: O_NOFOLLOW, O_NONBLOCK
 * (a fifo swapped in cannot block us), O_NOATIME where permitted.
 */
int	scan_open_file(int dirfd, const char *name);

/*
 * dir_scan() without building a catalog: every entry, in the same
 * path_cmp() order, is handed to fn (its pointers are valid only during
 * the call).  For a comparison against another catalog that needs no
 * second catalog in memory.
 */
int	dir_scan_each(const char *root, const struct catalog *base,
	    uint32_t block_size, int flags,
	    void (*fn)(void *arg, const struct cat_entry_in *in), void *arg,
	    struct dir_stats *st, struct as_err *err);
/*
 * The same, narrowed to dirs as dir_scan_narrow() when narrow is 1 (no
 * rescan: a difference among the entries stat'ed is the caller's to
 * see, and the copies from base are base).
 */
int	dir_scan_each_narrow(const char *root, const struct catalog *base,
	    const char *const *dirs, size_t ndirs, int narrow,
	    uint32_t block_size, int flags,
	    void (*fn)(void *arg, const struct cat_entry_in *in), void *arg,
	    struct dir_stats *st, struct as_err *err);

/*
 * A scan that crosses mount points (DIR_SCAN_XDEV) meets several file
 * systems, whose inode numbers may coincide, while hard-link groups and
 * renames are found by inode.  Every stat of the tree goes through this:
 * an entry on another device than the root's (rootdev) gets a mix of its
 * device number in bits 40-63 of its inode number (never all zero), so
 * inodes below 2^40 on different devices stay apart; the root's own file
 * system keeps its numbers.  A device number that changes (a tmpfs
 * mounted again) makes its entries new files to the next incremental.
 */
void	scan_fix_ino(struct stat *sb, uint64_t rootdev);

/* The catalog's numeric fields from a stat (rdev only for devices). */
void	scan_fill(struct cat_entry *e, const struct stat *sb);

/* Equal inode, type, size, mtime and ctime: the quick check. */
int	scan_same(const struct cat_entry *e, const struct stat *sb);

#endif
