/*
 * dir_apply.c - the receive side's commit point, journal, idempotent
 * apply and recovery; see dir.h and dir_journal.h.
 *
 * Durability order (DESIGN.md "Receiving safely"):
 *   staged objects are written without fsync; at the commit point one
 *   syncfs() makes the stage and spool durable, then the journal is
 *   written to journal.tmp, fsync'ed, renamed to journal and the
 *   directory fsync'ed.  Before that rename a crash leaves the old tree
 *   (recovery deletes stage/); after it, recovery rolls forward.
 *   After each phase that has ops: syncfs(), then one byte appended to
 *   journal.phase and fdatasync'ed, so a replay starts at the first
 *   unfinished phase; every step of a phase checks the state first and
 *   is a no-op when it was done already.  A phase without ops changes
 *   nothing, so it needs neither.
 *   At the end: held.cat (tmp, fsync, rename, fsync dir; the last phase's
 *   syncfs already made the tree durable), unlink journal (fsync dir),
 *   unlink journal.phase, remove stage/.
 *   A stream without ops after a clean drift check skips the journal:
 *   only held.cat changes, atomically, and the old and the new one both
 *   describe the tree as it is (rcv_commit).
 *   Memory: the journal and the new held.cat are written to their .tmp
 *   files as they are encoded (journal_encode in RCV_READ_CHUNK pieces,
 *   cat_writer entry by entry from the derive or the rescan), so next
 *   to the op list a receive never holds a second copy of the tree's
 *   description; the order of fsyncs and renames is unchanged.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "base/ownwalk.h"
#include "base/xmalloc.h"
#include "driver/dir_journal.h"
#include "driver/scan_util.h"
#include "format/path.h"
#include "format/record.h"
#include "format/stream.h"
#include "base/banned.h"

#define J_HDR		0x201
#define J_OP		0x202
#define J_SEGS		0x203
#define J_END		0x204
#define J_VERSION	1
#define J_HDR_FIXED	52
#define J_OP_FIXED	66
#define J_SEGS_PER_REC	4096

/* Largest journal we agree to read back (ours; still bounded). */
#define J_FILE_MAX	((uint64_t)1 << 40)

void
rcv_init(struct rcv *r, const char *dest, int flags, struct dir_stats *st)
{
	memset(r, 0, sizeof(*r));
	r->dest = dest;
	r->flags = flags;
	r->destfd = r->privfd = r->stagefd = r->spoolfd = r->lockfd = -1;
	r->st = st;
}

static void
close_fd(int *fd)
{
	if (*fd != -1)
		close(*fd);
	*fd = -1;
}

void
rcv_release(struct rcv *r)
{
	close_fd(&r->spoolfd);
	close_fd(&r->stagefd);
	close_fd(&r->privfd);
	close_fd(&r->destfd);
	/* closing the descriptor drops the flock */
	close_fd(&r->lockfd);
	free(r->ops);
	free(r->segs);
	free(r->source);
	buf_release(&r->strs);
	buf_release(&r->xattrs);
	r->ops = NULL;
	r->segs = NULL;
	r->source = NULL;
}

const char *
rop_path(const struct rcv *r, const struct rop *o)
{
	return (const char *)r->strs.data + o->path_off;
}

const char *
rop_aux(const struct rcv *r, const struct rop *o)
{
	return (const char *)r->strs.data + o->aux_off;
}

static int
unsafe_or_sys(struct as_err *err, int e, const char *what, const char *path)
{
	if (e == ELOOP || e == EXDEV)
		return as_err_set(err, AS_E_UNSAFE_PATH, e, "%s '%s': a "
		    "symlink or an escape is in the way", what, path);
	return as_err_sys(err, e, "%s '%s'", what, path);
}

int
beneath_open(int rootfd, const char *path, int oflags, const char *what,
    struct as_err *err)
{
	int fd, e;

	if (path[0] == '\0') {
		/* the root itself: rootfd was opened without following */
		fd = openat(rootfd, ".", (oflags & ~O_NOFOLLOW) | O_CLOEXEC);
		if (fd == -1) {
			e = errno;
			as_err_sys(err, e, "%s '.'", what);
			errno = e;
		}
		return fd;
	}
	/*
	 * openat2 RESOLVE_BENEATH, or where it is missing (a kernel before
	 * 5.6, valgrind) the same walk one component at a time with
	 * O_NOFOLLOW, refusing "..": nothing is followed either way.
	 */
	fd = scan_open_beneath(rootfd, path, oflags);
	if (fd == -1) {
		e = errno;
		unsafe_or_sys(err, e, what, path);
		errno = e;	/* callers may look at it */
		return -1;
	}
	return fd;
}

int
beneath_parent(int rootfd, const char *path, const char **name,
    const char *what, struct as_err *err)
{
	char pbuf[AS_PATH_MAX_BUF + 32];
	size_t plen, len = strlen(path);

	plen = path_parent_len(path, len);
	if (plen == 0) {
		*name = path;
		return beneath_open(rootfd, "", O_PATH | O_DIRECTORY, what, err);
	}
	if (plen >= sizeof(pbuf))
		return as_err_set(err, AS_E_LIMIT, 0, "%s '%s': path too long",
		    what, path);
	memcpy(pbuf, path, plen);
	pbuf[plen] = '\0';
	*name = path + plen + 1;
	return beneath_open(rootfd, pbuf, O_PATH | O_DIRECTORY, what, err);
}

/* Is name (NUL-terminated) in the xattr blob? */
static int
blob_has(const uint8_t *blob, size_t len, const char *name)
{
	const char *n;
	const uint8_t *v;
	size_t pos = 0, nl, vl, want = strlen(name);

	while (xattr_blob_next(blob, len, &pos, &n, &nl, &v, &vl) == 1)
		if (nl == want && memcmp(n, name, nl) == 0)
			return 1;
	return 0;
}

int
meta_apply(int fd, int fdio, const struct stat *now, uint32_t type,
    uint32_t uid, uint32_t gid,
    uint32_t mode, int64_t msec, uint32_t mnsec, const uint8_t *xattrs,
    size_t xattr_len, int full_set, const char *what, struct as_err *err)
{
	char proc[64], nbuf[AS_XATTR_NAME_MAX + 1], *list = NULL, *p;
	struct timespec ts[2];
	const char *n;
	const uint8_t *v;
	size_t pos = 0, nl, vl;
	ssize_t ll;
	int e;

	/*
	 * The descriptor may be O_PATH (symlinks, fifos, devices: never
	 * opened for I/O); /proc/self/fd/N reaches the object itself, never
	 * what a symlink points to.
	 */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((e = io_fault("recv_meta")) != 0)
		return as_err_sys(err, e, "set owner of '%s'", what);
	if ((now == NULL || now->st_uid != uid || now->st_gid != gid) &&
	    (fdio ? fchown(fd, uid, gid) : fchownat(fd, "", uid, gid,
	    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) == -1)
		return as_err_sys(err, errno, "set owner of '%s'", what);
	if (full_set) {
		ll = fdio ? flistxattr(fd, NULL, 0) : listxattr(proc, NULL, 0);
		if (ll > 0) {
			list = xmalloc((size_t)ll + 1);
			ll = fdio ? flistxattr(fd, list, (size_t)ll) :
			    listxattr(proc, list, (size_t)ll);
		}
		for (p = list; ll > 0 && p < list + ll; p += strlen(p) + 1)
			if (!blob_has(xattrs, xattr_len, p) &&
			    (fdio ? fremovexattr(fd, p) :
			    removexattr(proc, p)) == -1 && errno != ENODATA) {
				e = errno;
				free(list);
				return as_err_sys(err, e, "remove xattr '%s' "
				    "of '%s'", p, what);
			}
		free(list);
	}
	while (xattr_blob_next(xattrs, xattr_len, &pos, &n, &nl, &v, &vl) ==
	    1) {
		memcpy(nbuf, n, nl);
		nbuf[nl] = '\0';
		if ((fdio ? fsetxattr(fd, nbuf, v, vl, 0) :
		    setxattr(proc, nbuf, v, vl, 0)) == -1)
			return as_err_sys(err, errno, "set xattr '%s' of '%s'",
			    nbuf, what);
	}
	/*
	 * Linux symlinks have no mode of their own.  An xattr (an ACL) may
	 * have changed the mode that now shows: then always.
	 */
	if (type != S_IFLNK && (now == NULL || xattr_len != 0 || full_set ||
	    (now->st_mode & 07777) != (mode & 07777)) &&
	    (fdio ? fchmod(fd, mode & 07777) :
	    chmod(proc, mode & 07777)) == -1)
		return as_err_sys(err, errno, "set mode of '%s'", what);
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = (time_t)msec;
	ts[1].tv_nsec = (long)mnsec;
	if ((fdio ? futimens(fd, ts) : utimensat(AT_FDCWD, proc, ts, 0)) ==
	    -1)
		return as_err_sys(err, errno, "set times of '%s'", what);
	return 0;
}

/*
 * meta_apply after the commit point.  A failure that a retry cannot cure
 * (the file system refuses that xattr, mode or owner) must not leave a
 * journal that every later recover replays and fails on: note it in
 * r->late_err, go on, and let the caller report it once the apply ends.
 */
static int
meta_apply_late(struct rcv *r, int fd, int fdio, uint32_t type,
    const struct rop *o, const char *what, struct as_err *err)
{
	struct as_err e;

	as_err_clear(&e);
	if (meta_apply(fd, fdio, NULL, type, o->uid, o->gid, o->mode,
	    o->mtime_sec, o->mtime_nsec, r->xattrs.data + o->xattr_off,
	    o->xattr_len, (o->flags & RO_XATTRS) != 0, what, &e) == 0)
		return 0;
	switch (e.sys_errno) {
	case EPERM:
	case EACCES:
	case ENOTSUP:
	case E2BIG:
	case ERANGE:
	case EINVAL:
		if (r->late_err.code == AS_E_OK)
			r->late_err = e;
		return 0;
	}
	if (err != NULL)
		*err = e;
	return -1;
}

/*
 * Remove path (file or whole tree) beneath rootfd without following
 * symlinks and with a constant number of descriptors: descend to the
 * first subdirectory, empty it, climb back by reopening from rootfd.
 */
int
rcv_rm_tree(int rootfd, const char *path, struct as_err *err)
{
	char cur[AS_PATH_MAX_BUF + 8 + AS_NAME_MAX + 1];
	const char *name;
	struct dirent *de;
	struct stat sb;
	size_t base = strlen(path), len;
	int fd, pfd, descended;
	DIR *d;

	if (base >= sizeof(cur))
		return as_err_set(err, AS_E_LIMIT, 0, "remove '%s': path too "
		    "long", path);
	memcpy(cur, path, base + 1);
	for (;;) {
		fd = beneath_open(rootfd, cur, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW, "remove", err);
		if (fd == -1 && (errno == ENOTDIR || errno == ELOOP))
			goto up;	/* not a directory: unlink it */
		if (fd == -1) {
			if (errno == ENOENT && strlen(cur) == base)
				return 0;
			return -1;
		}
		if ((d = fdopendir(fd)) == NULL) {
			close(fd);
			return as_err_sys(err, errno, "read '%s'", cur);
		}
		descended = 0;
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			if (de->d_type == DT_UNKNOWN) {
				if (fstatat(dirfd(d), de->d_name, &sb,
				    AT_SYMLINK_NOFOLLOW) == -1)
					continue;
				de->d_type = S_ISDIR(sb.st_mode) ? DT_DIR :
				    DT_REG;
			}
			if (de->d_type != DT_DIR) {
				if (unlinkat(dirfd(d), de->d_name, 0) == -1 &&
				    errno != ENOENT) {
					closedir(d);
					return as_err_sys(err, errno, "remove "
					    "'%s/%s'", cur, de->d_name);
				}
				continue;
			}
			len = strlen(cur);
			if (len + 1 + strlen(de->d_name) >= sizeof(cur)) {
				closedir(d);
				return as_err_set(err, AS_E_LIMIT, 0, "remove "
				    "'%s': too deep", cur);
			}
			cur[len] = '/';
			memcpy(cur + len + 1, de->d_name, strlen(de->d_name)
			    + 1);
			descended = 1;
			break;
		}
		closedir(d);
		if (descended)
			continue;
up:
		/* cur is empty (or not a directory): remove it, go up */
		if ((pfd = beneath_parent(rootfd, cur, &name, "remove",
		    err)) == -1)
			return -1;
		if (unlinkat(pfd, name, AT_REMOVEDIR) == -1 &&
		    (errno != ENOTDIR || unlinkat(pfd, name, 0) == -1) &&
		    errno != ENOENT) {
			int e = errno;

			close(pfd);
			return as_err_sys(err, e, "remove '%s'", cur);
		}
		close(pfd);
		len = strlen(cur);
		if (len <= base)
			return 0;
		cur[path_parent_len(cur, len)] = '\0';
	}
}

int
rcv_discard_stage(struct rcv *r, struct as_err *err)
{
	close_fd(&r->spoolfd);
	close_fd(&r->stagefd);
	return rcv_rm_tree(r->privfd, "stage", err);
}

int
rcv_open(struct rcv *r, int dry, struct as_err *err)
{
	struct stat sb;

	/* O_NOFOLLOW guards the last component only */
	if (ownwalk_check(r->dest, "destination", err) == -1)
		return -1;
	r->destfd = open(r->dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (r->destfd == -1 && errno == ENOENT && !dry) {
		if (mkdir(r->dest, 0755) == -1 && errno != EEXIST)
			return as_err_sys(err, errno, "create destination "
			    "'%s'", r->dest);
		r->destfd = open(r->dest, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
	}
	if (r->destfd == -1) {
		if (errno == ENOENT && dry)
			return 0;
		if (lstat(r->dest, &sb) == 0 && S_ISLNK(sb.st_mode))
			return as_err_set(err, AS_E_UNSAFE_PATH, ELOOP,
			    "destination '%s' is a symlink", r->dest);
		if (errno == ENOTDIR)
			return as_err_set(err, AS_E_CONFLICT, errno,
			    "destination '%s' is not a directory", r->dest);
		return as_err_sys(err, errno, "open destination '%s'",
		    r->dest);
	}
	return rcv_open_private(r, 0, dry, err);
}

/*
 * Open DEST/.autosync (creating it when create) and take the receive lock.
 * A missing private directory is not an error unless create: a receive
 * creates it only once the stream's first record has been accepted, so
 * that a refused stream leaves the destination untouched.
 */
int
rcv_open_private(struct rcv *r, int create, int dry, struct as_err *err)
{
	struct stat sb;
	int fd;

	if (create && mkdirat(r->destfd, AS_PRIVATE_DIR, 0700) == -1 &&
	    errno != EEXIST)
		return as_err_sys(err, errno, "create '%s/%s'", r->dest,
		    AS_PRIVATE_DIR);
	r->privfd = openat(r->destfd, AS_PRIVATE_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (r->privfd == -1) {
		if (errno == ENOENT && !create)
			return 0;
		if (errno == ELOOP || errno == ENOTDIR)
			return as_err_set(err, AS_E_UNSAFE_PATH, errno,
			    "'%s/%s' is a symlink or not a directory",
			    r->dest, AS_PRIVATE_DIR);
		return as_err_sys(err, errno, "open '%s/%s'", r->dest,
		    AS_PRIVATE_DIR);
	}
	if (fstat(r->privfd, &sb) == -1)
		return as_err_sys(err, errno, "stat '%s/%s'", r->dest,
		    AS_PRIVATE_DIR);
	if (sb.st_uid != geteuid() || (sb.st_mode & 07777) != 0700)
		return as_err_set(err, AS_E_UNSAFE_PATH, 0, "'%s/%s' is not "
		    "owned by uid %u with mode 0700; refusing to use it",
		    r->dest, AS_PRIVATE_DIR, (unsigned)geteuid());
	fd = openat(r->privfd, "lock", O_RDWR | O_NOFOLLOW | O_CLOEXEC |
	    (dry ? 0 : O_CREAT), 0600);
	if (fd == -1) {
		if (errno == ENOENT && dry)
			return 0;
		return as_err_sys(err, errno, "open '%s/%s/lock'", r->dest,
		    AS_PRIVATE_DIR);
	}
	r->lockfd = fd;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			return as_err_set(err, AS_E_CONFLICT, errno,
			    "destination '%s' is busy: another receive holds "
			    "its lock", r->dest);
		return as_err_sys(err, errno, "lock '%s'", r->dest);
	}
	return 0;
}

/* A file in the private directory written to name.tmp first. */
static int
atomic_open(struct rcv *r, const char *tmp, struct as_err *err)
{
	int fd;

	(void)unlinkat(r->privfd, tmp, 0);
	fd = openat(r->privfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return as_err_sys(err, errno, "create '%s/%s/%s'", r->dest,
		    AS_PRIVATE_DIR, tmp);
	return fd;
}

/* ... then fsync, rename to name, fsync dir; fd is closed. */
static int
atomic_commit(struct rcv *r, int fd, const char *tmp, const char *name,
    struct as_err *err)
{
	if (io_fsync(fd, tmp, err) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	if (renameat(r->privfd, tmp, r->privfd, name) == -1)
		return as_err_sys(err, errno, "rename '%s/%s/%s'", r->dest,
		    AS_PRIVATE_DIR, tmp);
	return io_fsync(r->privfd, AS_PRIVATE_DIR, err);
}

/* A cat_writer's output: the file, and the errno of a failed write. */
struct cat_out {
	int	fd;
	int	err;
};

static int
write_out(void *arg, const void *p, size_t len)
{
	struct cat_out *o = arg;

	if (io_write_full(o->fd, p, len) == -1) {
		o->err = errno;
		return -1;
	}
	return 0;
}

/*
 * Write data (or, when cat is set, the catalog encoded piecewise) to
 * name.tmp in privfd, fsync, rename to name, fsync dir.
 */
int
rcv_write_atomic(struct rcv *r, const char *name, const void *data,
    size_t len, const struct catalog *cat, struct as_err *err)
{
	struct cat_out o;
	char tmp[64];
	int e;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	if ((o.fd = atomic_open(r, tmp, err)) == -1)
		return -1;
	o.err = 0;
	if ((e = io_fault("recv_journal")) != 0 ||
	    (cat != NULL && catalog_encode_stream(cat, write_out, &o) == -1 &&
	    (e = o.err) != 0) ||
	    (cat == NULL && io_write_full(o.fd, data, len) == -1 &&
	    (e = errno) != 0)) {
		close(o.fd);
		return as_err_sys(err, e, "write '%s/%s/%s'", r->dest,
		    AS_PRIVATE_DIR, tmp);
	}
	return atomic_commit(r, o.fd, tmp, name, err);
}

static void
put_str_rec(struct buf *out, uint64_t *chain, uint16_t type,
    const uint8_t *fixed, size_t flen, const struct buf *tail)
{
	rec_encode(out, chain, type, fixed, flen, tail->data, tail->len);
}

/*
 * Hand out to o's file once it holds RCV_READ_CHUNK bytes (or at last):
 * the journal of a full receive (about 100 bytes per op) is never whole
 * in memory next to the op list it encodes.
 */
static int
journal_flush(struct buf *out, struct cat_out *o, int last)
{
	if (!last && out->len < RCV_READ_CHUNK)
		return 0;
	if (write_out(o, out->data, out->len) == -1)
		return -1;
	buf_reset(out);
	return 0;
}

static int
journal_encode(const struct rcv *r, struct buf *out, struct cat_out *fo)
{
	uint8_t f[J_HDR_FIXED + 256 + AS_PATH_MAX_BUF];
	uint8_t seg[J_SEGS_PER_REC * 24];
	struct buf tail = BUF_INIT;
	uint64_t chain = REC_SEED_JOURNAL;
	size_t i, j, n, nl = strlen(r->name);
	size_t sl = r->source != NULL ? strlen(r->source) : 0;
	const struct rop *o;

	if (sl > AS_PATH_MAX)
		sl = AS_PATH_MAX;
	put_le32(f, J_VERSION);
	put_le32(f + 4, r->block_size);
	put_le64(f + 8, r->guid);
	put_le64(f + 16, r->base_guid);
	put_le64(f + 24, (uint64_t)r->time_ns);
	put_le64(f + 32, r->nops);
	put_le64(f + 40, r->nsegs);
	put_le16(f + 48, (uint16_t)nl);
	put_le16(f + 50, (uint16_t)sl);
	memcpy(f + J_HDR_FIXED, r->name, nl);
	if (sl > 0)
		memcpy(f + J_HDR_FIXED + nl, r->source, sl);
	rec_encode(out, &chain, J_HDR, f, J_HDR_FIXED + nl + sl, NULL, 0);
	for (i = 0; i < r->nops; i++) {
		o = &r->ops[i];
		put_le64(f, o->size);
		put_le64(f + 8, o->rdev);
		put_le64(f + 16, (uint64_t)o->mtime_sec);
		put_le32(f + 24, o->mtime_nsec);
		put_le32(f + 28, o->mode);
		put_le32(f + 32, o->uid);
		put_le32(f + 36, o->gid);
		put_le32(f + 40, o->xattr_len);
		put_le32(f + 44, o->id);
		put_le32(f + 48, o->top);
		put_le32(f + 52, o->seg_first);
		put_le32(f + 56, o->nseg);
		put_le16(f + 60, o->path_len);
		put_le16(f + 62, o->aux_len);
		f[64] = o->op;
		f[65] = o->flags;
		buf_reset(&tail);
		buf_add(&tail, rop_path(r, o), o->path_len);
		buf_add(&tail, rop_aux(r, o), o->aux_len);
		buf_add(&tail, r->xattrs.data + o->xattr_off, o->xattr_len);
		put_str_rec(out, &chain, J_OP, f, J_OP_FIXED, &tail);
		if (journal_flush(out, fo, 0) == -1) {
			buf_release(&tail);
			return -1;
		}
	}
	for (i = 0; i < r->nsegs; i += n) {
		n = r->nsegs - i < J_SEGS_PER_REC ? r->nsegs - i :
		    J_SEGS_PER_REC;
		for (j = 0; j < n; j++) {
			put_le64(seg + j * 24, r->segs[i + j].off);
			put_le64(seg + j * 24 + 8, r->segs[i + j].len);
			put_le64(seg + j * 24 + 16, r->segs[i + j].spool);
		}
		rec_encode(out, &chain, J_SEGS, seg, n * 24, NULL, 0);
		if (journal_flush(out, fo, 0) == -1) {
			buf_release(&tail);
			return -1;
		}
	}
	put_le64(f, r->nops);
	put_le64(f + 8, r->nsegs);
	rec_encode(out, &chain, J_END, f, 16, NULL, 0);
	buf_release(&tail);
	return journal_flush(out, fo, 1);
}

/* The journal, written as it is encoded: rcv_write_atomic()'s steps. */
static int
write_journal(struct rcv *r, struct as_err *err)
{
	static const char tmp[] = "journal.tmp";
	struct buf j = BUF_INIT;
	struct cat_out o;
	int e;

	if ((o.fd = atomic_open(r, tmp, err)) == -1)
		return -1;
	o.err = 0;
	if ((e = io_fault("recv_journal")) != 0 ||
	    (journal_encode(r, &j, &o) == -1 && (e = o.err) != 0)) {
		buf_release(&j);
		close(o.fd);
		return as_err_sys(err, e, "write '%s/%s/%s'", r->dest,
		    AS_PRIVATE_DIR, tmp);
	}
	buf_release(&j);
	return atomic_commit(r, o.fd, tmp, "journal", err);
}

static uint64_t
add_str(struct buf *b, const char *s, size_t len)
{
	uint64_t off = b->len;

	buf_add(b, s, len);
	buf_add_u8(b, 0);
	return off;
}

/* Parse a journal into r (ops, segs, header).  Our own file, checked. */
static int
journal_decode(struct rcv *r, const uint8_t *data, size_t len,
    struct as_err *err)
{
	struct rec_dec d;
	struct rec rec;
	size_t off = 0, used, i, n;
	uint64_t want_ops = 0, want_segs = 0;
	const uint8_t *p;
	struct rop *o;
	int rc, seen_end = 0, seen_hdr = 0;

#define JBAD(...) do { as_err_set(err, AS_E_MALFORMED, 0, \
	"journal of '%s': " __VA_ARGS__); goto fail; } while (0)

	rec_dec_init(&d, REC_SEED_JOURNAL, "journal");
	while (off < len) {
		rc = rec_dec_feed(&d, data + off, len - off, &used, &rec, err);
		off += used;
		if (rc == -1)
			goto fail;
		if (rc == 0)
			break;
		p = rec.payload;
		if (seen_end)
			JBAD("records after the end", r->dest);
		if (!seen_hdr && rec.type != J_HDR)
			JBAD("no header", r->dest);
		switch (rec.type) {
		case J_HDR: {
			uint16_t nl, sl;

			if (seen_hdr || rec.len < J_HDR_FIXED ||
			    le32(p) != J_VERSION)
				JBAD("bad header", r->dest);
			nl = le16(p + 48);
			sl = le16(p + 50);
			if (rec.len != J_HDR_FIXED + (uint32_t)nl + sl ||
			    nl > 255)
				JBAD("bad header", r->dest);
			r->block_size = le32(p + 4);
			r->guid = le64(p + 8);
			r->base_guid = le64(p + 16);
			r->time_ns = (int64_t)le64(p + 24);
			want_ops = le64(p + 32);
			want_segs = le64(p + 40);
			if (want_ops > RCV_OPS_MAX || want_segs > UINT32_MAX)
				JBAD("bad counts", r->dest);
			memcpy(r->name, p + J_HDR_FIXED, nl);
			r->name[nl] = '\0';
			free(r->source);
			r->source = xstrndup((const char *)p + J_HDR_FIXED +
			    nl, sl);
			seen_hdr = 1;
			break;
		}
		case J_OP:
			if (r->nops >= want_ops || rec.len < J_OP_FIXED)
				JBAD("bad op record", r->dest);
			if (r->nops == r->capops) {
				r->capops = r->capops ? r->capops * 2 : 256;
				r->ops = xreallocarray(r->ops, r->capops,
				    sizeof(*r->ops));
			}
			o = &r->ops[r->nops];
			memset(o, 0, sizeof(*o));
			o->size = le64(p);
			o->rdev = le64(p + 8);
			o->mtime_sec = (int64_t)le64(p + 16);
			o->mtime_nsec = le32(p + 24);
			o->mode = le32(p + 28);
			o->uid = le32(p + 32);
			o->gid = le32(p + 36);
			o->xattr_len = le32(p + 40);
			o->id = le32(p + 44);
			o->top = le32(p + 48);
			o->seg_first = le32(p + 52);
			o->nseg = le32(p + 56);
			o->path_len = le16(p + 60);
			o->aux_len = le16(p + 62);
			o->op = p[64];
			o->flags = p[65];
			if (rec.len != J_OP_FIXED + (uint32_t)o->path_len +
			    o->aux_len + o->xattr_len ||
			    (uint64_t)o->seg_first + o->nseg > want_segs ||
			    o->top >= want_ops)
				JBAD("bad op record", r->dest);
			p += J_OP_FIXED;
			if (path_check((const char *)p, o->path_len, 1,
			    err) == -1 || memchr(p, 0, o->path_len) != NULL ||
			    memchr(p + o->path_len, 0, o->aux_len) != NULL)
				goto fail;
			o->path_off = add_str(&r->strs, (const char *)p,
			    o->path_len);
			o->aux_off = add_str(&r->strs, (const char *)p +
			    o->path_len, o->aux_len);
			o->xattr_off = r->xattrs.len;
			buf_add(&r->xattrs, p + o->path_len + o->aux_len,
			    o->xattr_len);
			r->nops++;
			break;
		case J_SEGS:
			if (rec.len % 24 != 0 ||
			    r->nsegs + rec.len / 24 > want_segs)
				JBAD("bad segment record", r->dest);
			n = rec.len / 24;
			if (r->nsegs + n > r->capsegs) {
				r->capsegs = r->nsegs + n;
				r->segs = xreallocarray(r->segs, r->capsegs,
				    sizeof(*r->segs));
			}
			for (i = 0; i < n; i++) {
				r->segs[r->nsegs].off = le64(p + i * 24);
				r->segs[r->nsegs].len = le64(p + i * 24 + 8);
				r->segs[r->nsegs].spool = le64(p + i * 24 +
				    16);
				r->nsegs++;
			}
			break;
		case J_END:
			if (rec.len != 16 || le64(p) != want_ops ||
			    le64(p + 8) != want_segs || r->nops != want_ops ||
			    r->nsegs != want_segs)
				JBAD("end does not match", r->dest);
			seen_end = 1;
			break;
		default:
			JBAD("unknown record", r->dest);
		}
	}
	if (!seen_end)
		JBAD("truncated", r->dest);
	rec_dec_release(&d);
	return 0;
fail:
	rec_dec_release(&d);
	return -1;
#undef JBAD
}

static int
record_phase(struct rcv *r, int phase, struct as_err *err)
{
	uint8_t b = (uint8_t)phase;
	int fd, e;

	fd = openat(r->privfd, "journal.phase", O_WRONLY | O_CREAT |
	    O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return as_err_sys(err, errno, "open journal.phase of '%s'",
		    r->dest);
	if ((e = io_fault("recv_phase")) != 0 ||
	    (io_write_full(fd, &b, 1) == -1 && (e = errno) != 0) ||
	    (fdatasync(fd) == -1 && (e = errno) != 0)) {
		close(fd);
		return as_err_sys(err, e, "write journal.phase of '%s'",
		    r->dest);
	}
	close(fd);
	return 0;
}

static int
sync_job(void *arg, struct as_err *err)
{
	struct rcv *r = arg;
	int e;

	if ((e = io_fault("recv_sync")) != 0 || (syncfs(r->destfd) == -1 &&
	    (e = errno) != 0))
		return as_err_sys(err, e, "sync '%s'", r->dest);
	return 0;
}

/*
 * Phase ph changed the tree: make that durable (syncfs), then record it
 * in journal.phase.  The syncfs runs beside what follows, which only
 * reads the tree until mark_end: above all the derive of held.cat.  A
 * retry after a failure (rcv_commit) marks in line, one step at a time.
 */
static int
mark_start(struct rcv *r, int ph, int in_line, struct as_err *err)
{
	if (in_line)
		return sync_job(r, err) == -1 ? -1 : record_phase(r, ph, err);
	r->marker_phase = ph;
	r->marker_pending = 1;
	bg_start(&r->marker, sync_job, r);
	return 0;
}

/* Wait for the pending mark's syncfs, then write its record. */
static int
mark_end(struct rcv *r, struct as_err *err)
{
	if (!r->marker_pending)
		return 0;
	r->marker_pending = 0;
	if (bg_join(&r->marker, err) == -1)
		return -1;
	return record_phase(r, r->marker_phase, err);
}

/* The last phase done according to journal.phase (PH_NONE if none). */
static int
read_phase(struct rcv *r)
{
	uint8_t b[64];
	ssize_t n;
	int fd, ph = PH_NONE, i;

	fd = openat(r->privfd, "journal.phase", O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1)
		return PH_NONE;
	while ((n = read(fd, b, sizeof(b))) > 0)
		for (i = 0; i < n; i++)
			if (b[i] > ph && b[i] < PH_DONE)
				ph = b[i];
	close(fd);
	return ph;
}

static void
stage_name(char *out, size_t sz, char kind, uint32_t id)
{
	snprintf(out, sz, "%c%u", kind, (unsigned)id);
}

/* qsort_r orderings over op indices */
static int
key_cmp(const struct rcv *r, uint32_t a, uint32_t b, int use_aux_a,
    int use_aux_b)
{
	const struct rop *oa = &r->ops[a], *ob = &r->ops[b];

	return path_cmp(use_aux_a ? rop_aux(r, oa) : rop_path(r, oa),
	    use_aux_a ? oa->aux_len : oa->path_len,
	    use_aux_b ? rop_aux(r, ob) : rop_path(r, ob),
	    use_aux_b ? ob->aux_len : ob->path_len);
}

static int
detach_rank(uint8_t op)
{
	return op == RO_EXTRA ? 0 : op == AS_OP_RENAME ? 1 : 2;
}

/* deepest first; on one path: -F extras, then renames, then deletes */
static int
cmp_detach(const void *pa, const void *pb, void *arg)
{
	const struct rcv *r = arg;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	int c;

	c = key_cmp(r, a, b, r->ops[a].op == AS_OP_RENAME,
	    r->ops[b].op == AS_OP_RENAME);
	if (c != 0)
		return -c;
	return detach_rank(r->ops[a].op) - detach_rank(r->ops[b].op);
}

static int
cmp_attach(const void *pa, const void *pb, void *arg)
{
	const struct rcv *r = arg;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

	return key_cmp(r, a, b, 0, 0);
}

/* deepest first, root last; -F resets before the stream's own attrs */
static int
cmp_dirs(const void *pa, const void *pb, void *arg)
{
	const struct rcv *r = arg;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	int c;

	c = key_cmp(r, a, b, 0, 0);
	if (c != 0)
		return -c;
	c = (r->ops[b].flags & RO_RESET) - (r->ops[a].flags & RO_RESET);
	return c != 0 ? c : (a < b ? -1 : a > b);
}

static int
detach_one(struct rcv *r, const struct rop *o, struct as_err *err)
{
	char sname[32];
	const char *path, *name;
	struct stat sb;
	int pfd, e;

	path = o->op == AS_OP_RENAME ? rop_aux(r, o) : rop_path(r, o);
	if (o->op != AS_OP_DELETE)
		stage_name(sname, sizeof(sname), o->op == RO_EXTRA ? 'x' : 'r',
		    o->id);
	pfd = beneath_parent(r->destfd, path, &name, "detach", err);
	if (pfd == -1) {
		/* replay: an ancestor may be gone already */
		if (err != NULL && err->sys_errno == ENOENT)
			goto absent;
		return -1;
	}
	if ((e = io_fault("recv_detach")) != 0) {
		close(pfd);
		return as_err_sys(err, e, "detach '%s'", path);
	}
	if (o->op == AS_OP_DELETE) {
		if (unlinkat(pfd, name, S_ISDIR(o->mode) ? AT_REMOVEDIR : 0) ==
		    -1 && errno != ENOENT) {
			e = errno;
			close(pfd);
			if (e == ENOTEMPTY || e == EEXIST)
				return as_err_set(err, AS_E_CONFLICT, e,
				    "cannot delete '%s': the directory is not "
				    "empty on the destination", path);
			return as_err_sys(err, e, "delete '%s'", path);
		}
		close(pfd);
		if (r->st != NULL)
			r->st->deletes++;
		return 0;
	}
	if (io_rename_noreplace(pfd, name, r->stagefd, sname) == -1) {
		e = errno;
		close(pfd);
		if (e == ENOENT)
			goto absent;
		return as_err_sys(err, e, "detach '%s'", path);
	}
	close(pfd);
	return 0;
absent:
	if (o->op == AS_OP_DELETE || o->op == RO_EXTRA)
		return 0;
	if (fstatat(r->stagefd, sname, &sb, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	return as_err_set(err, AS_E_CONFLICT, ENOENT, "rename source '%s' is "
	    "missing from the destination", path);
}

static int
attach_one(struct rcv *r, const struct rop *o, struct as_err *err)
{
	char sname[32];
	const char *path = rop_path(r, o), *name;
	struct stat sb;
	int pfd, e;

	stage_name(sname, sizeof(sname), o->op == AS_OP_RENAME ? 'r' : 'n',
	    o->id);
	if ((pfd = beneath_parent(r->destfd, path, &name, "attach", err)) ==
	    -1)
		return -1;
	if ((e = io_fault("recv_attach")) != 0) {
		close(pfd);
		return as_err_sys(err, e, "attach '%s'", path);
	}
	if (io_rename_noreplace(r->stagefd, sname, pfd, name) == -1) {
		e = errno;
		if (e == ENOENT && fstatat(r->stagefd, sname, &sb,
		    AT_SYMLINK_NOFOLLOW) == -1 && fstatat(pfd, name, &sb,
		    AT_SYMLINK_NOFOLLOW) == 0) {
			close(pfd);	/* replay: done already */
			return 0;
		}
		close(pfd);
		if (e == EEXIST)
			return as_err_set(err, AS_E_CONFLICT, e, "cannot "
			    "create '%s': it exists on the destination", path);
		return as_err_sys(err, e, "attach '%s'", path);
	}
	close(pfd);
	return 0;
}

static int
link_one(struct rcv *r, const struct rop *o, struct as_err *err)
{
	const char *path = rop_path(r, o), *aux = rop_aux(r, o);
	const char *name, *tname;
	struct stat ts, ns;
	int pfd, tfd, e, rc = -1;

	if ((tfd = beneath_parent(r->destfd, aux, &tname, "link", err)) == -1)
		return -1;
	if ((pfd = beneath_parent(r->destfd, path, &name, "link", err)) ==
	    -1) {
		close(tfd);
		return -1;
	}
	if (fstatat(tfd, tname, &ts, AT_SYMLINK_NOFOLLOW) == -1) {
		as_err_sys(err, errno, "link '%s' to '%s'", path, aux);
		goto out;
	}
	if (!S_ISREG(ts.st_mode)) {
		as_err_set(err, AS_E_UNSAFE_PATH, 0, "link '%s' to '%s': not "
		    "a regular file", path, aux);
		goto out;
	}
	if ((e = io_fault("recv_link")) != 0 ||
	    (linkat(tfd, tname, pfd, name, 0) == -1 && (e = errno) != 0)) {
		if (e == EEXIST && fstatat(pfd, name, &ns,
		    AT_SYMLINK_NOFOLLOW) == 0 && ns.st_ino == ts.st_ino &&
		    ns.st_dev == ts.st_dev)
			rc = 0;	/* replay */
		else
			as_err_sys(err, e, "link '%s' to '%s'", path, aux);
		goto out;
	}
	rc = 0;
out:
	close(tfd);
	close(pfd);
	return rc;
}

static int
patch_one(struct rcv *r, const struct rop *o, uint8_t *buf,
    struct as_err *err)
{
	char proc[64];
	const char *path = rop_path(r, o);
	const struct rseg *s;
	struct stat sb;
	uint32_t i;
	ssize_t n;
	int pfd, fd = -1, e, rc = -1;

	if ((pfd = beneath_open(r->destfd, path, O_PATH | O_NOFOLLOW, "patch",
	    err)) == -1)
		return -1;
	if (fstat(pfd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		as_err_set(err, AS_E_CONFLICT, 0, "cannot patch '%s': not a "
		    "regular file on the destination", path);
		goto out;
	}
	/* reopen the checked object itself for writing: no race on names */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	if ((fd = open(proc, O_WRONLY | O_CLOEXEC)) == -1) {
		as_err_sys(err, errno, "open '%s'", path);
		goto out;
	}
	if (ftruncate(fd, (off_t)o->size) == -1) {
		as_err_sys(err, errno, "truncate '%s'", path);
		goto out;
	}
	for (i = 0; i < o->nseg; i++) {
		s = &r->segs[o->seg_first + i];
		if (s->spool == RSEG_HOLE) {
			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE |
			    FALLOC_FL_KEEP_SIZE, (off_t)s->off,
			    (off_t)s->len) == 0)
				continue;
			if (errno != EOPNOTSUPP) {
				as_err_sys(err, errno, "punch a hole in '%s'",
				    path);
				goto out;
			}
			/* no hole punching here: write zeros */
			{
				uint64_t done, k;

				memset(buf, 0, AS_DATA_MAX);
				for (done = 0; done < s->len; done += k) {
					k = s->len - done < AS_DATA_MAX ?
					    s->len - done : AS_DATA_MAX;
					if (io_pwrite_full(fd, buf, k,
					    (off_t)(s->off + done)) == -1) {
						as_err_sys(err, errno, "write "
						    "'%s'", path);
						goto out;
					}
				}
			}
			continue;
		}
		if (s->len > AS_DATA_MAX) {
			as_err_set(err, AS_E_INTERNAL, 0, "journal segment too "
			    "long for '%s'", path);
			goto out;
		}
		n = io_pread_full(r->spoolfd, buf, s->len, (off_t)s->spool);
		if (n != (ssize_t)s->len) {
			as_err_sys(err, n == -1 ? errno : EIO, "read the spool "
			    "for '%s'", path);
			goto out;
		}
		if ((e = io_fault("recv_write")) != 0 ||
		    (io_pwrite_full(fd, buf, s->len, (off_t)s->off) == -1 &&
		    (e = errno) != 0)) {
			as_err_sys(err, e, "write '%s'", path);
			goto out;
		}
	}
	if (meta_apply_late(r, fd, 1, S_IFREG, o, path, err) == -1)
		goto out;
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	close(pfd);
	return rc;
}

static int
attr_one(struct rcv *r, const struct rop *o, struct as_err *err)
{
	const char *path = rop_path(r, o);
	uint32_t type = o->mode & S_IFMT;
	struct stat sb;
	int fd, rc;

	fd = beneath_open(r->destfd, path, type == S_IFDIR ? O_RDONLY |
	    O_DIRECTORY | O_NOFOLLOW : O_PATH | O_NOFOLLOW, "set attributes",
	    err);
	if (fd == -1)
		return -1;
	if (fstat(fd, &sb) == -1 || (sb.st_mode & S_IFMT) != type) {
		close(fd);
		return as_err_set(err, AS_E_CONFLICT, 0, "cannot set "
		    "attributes of '%s': its type differs on the destination",
		    path);
	}
	/* directories are open O_RDONLY, the rest O_PATH */
	rc = meta_apply_late(r, fd, type == S_IFDIR, type, o, path[0] ? path :
	    ".", err);
	close(fd);
	return rc;
}

static int
is_dir_op(const struct rop *o)
{
	return S_ISDIR(o->mode) && (o->op == AS_OP_CREATE ||
	    o->op == AS_OP_ATTR || o->op == AS_OP_RENAME);
}

/*
 * A phase with n ops starts on a tree the earlier ones left durable and
 * recorded (mark_end); one without ops changes nothing and need not wait.
 */
static int
phase_ready(struct rcv *r, size_t n, struct as_err *err)
{
	return n > 0 ? mark_end(r, err) : 0;
}

/* Run one phase; *did: how many ops it had (0: it changed nothing). */
static int
run_phase(struct rcv *r, int ph, size_t *did, struct as_err *err)
{
	uint32_t *idx;
	uint8_t *buf = NULL;
	size_t i, n = 0;
	int rc = 0, pass;

	idx = xreallocarray(NULL, r->nops + 1, sizeof(*idx));
	switch (ph) {
	case PH_DETACH:
		for (i = 0; i < r->nops; i++)
			if (r->ops[i].op == AS_OP_RENAME ||
			    r->ops[i].op == AS_OP_DELETE ||
			    r->ops[i].op == RO_EXTRA)
				idx[n++] = (uint32_t)i;
		qsort_r(idx, n, sizeof(*idx), cmp_detach, r);
		rc = phase_ready(r, n, err);
		for (i = 0; i < n && rc == 0; i++)
			rc = detach_one(r, &r->ops[idx[i]], err);
		break;
	case PH_ATTACH:
		for (i = 0; i < r->nops; i++)
			if (r->ops[i].op == AS_OP_RENAME ||
			    (r->ops[i].op == AS_OP_CREATE &&
			    (r->ops[i].flags & RO_TOP) != 0))
				idx[n++] = (uint32_t)i;
		qsort_r(idx, n, sizeof(*idx), cmp_attach, r);
		rc = phase_ready(r, n, err);
		for (i = 0; i < n && rc == 0; i++)
			rc = attach_one(r, &r->ops[idx[i]], err);
		break;
	case PH_FILES:
		for (i = 0; i < r->nops; i++)
			if (!is_dir_op(&r->ops[i]) &&
			    r->ops[i].op != AS_OP_CREATE &&
			    r->ops[i].op != AS_OP_DELETE &&
			    r->ops[i].op != RO_EXTRA)
				n++;
		if (n == 0 || (rc = phase_ready(r, n, err)) == -1)
			break;
		buf = xmalloc_io(AS_DATA_MAX);
		/* -F resets first, then links, then the stream's changes */
		for (pass = 0; pass < 3 && rc == 0; pass++)
			for (i = 0; i < r->nops && rc == 0; i++) {
				const struct rop *o = &r->ops[i];

				if (is_dir_op(o) || o->op == AS_OP_CREATE)
					continue;
				if (pass == 0 && (o->flags & RO_RESET) != 0)
					rc = attr_one(r, o, err);
				else if (pass == 1 && o->op == AS_OP_LINK)
					rc = link_one(r, o, err);
				else if (pass == 2 && o->op == AS_OP_PATCH)
					rc = patch_one(r, o, buf, err);
				else if (pass == 2 && (o->flags & RO_RESET) ==
				    0 && (o->op == AS_OP_ATTR ||
				    o->op == AS_OP_RENAME))
					rc = attr_one(r, o, err);
			}
		break;
	case PH_DIRS:
		for (i = 0; i < r->nops; i++)
			if (is_dir_op(&r->ops[i]))
				idx[n++] = (uint32_t)i;
		qsort_r(idx, n, sizeof(*idx), cmp_dirs, r);
		rc = phase_ready(r, n, err);
		for (i = 0; i < n && rc == 0; i++)
			rc = attr_one(r, &r->ops[idx[i]], err);
		break;
	}
	free(buf);
	free(idx);
	*did = n;
	return rc;
}

static int
open_stage(struct rcv *r, struct as_err *err)
{
	if (r->stagefd == -1) {
		r->stagefd = openat(r->privfd, "stage", O_RDONLY |
		    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (r->stagefd == -1)
			return as_err_sys(err, errno, "open '%s/%s/stage'",
			    r->dest, AS_PRIVATE_DIR);
	}
	if (r->spoolfd == -1 && r->nsegs > 0) {
		r->spoolfd = openat(r->stagefd, "spool", O_RDONLY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (r->spoolfd == -1)
			return as_err_sys(err, errno, "open the spool of "
			    "'%s'", r->dest);
	}
	return 0;
}

static void
held_each(void *arg, const struct cat_entry_in *in)
{
	/* a failure is sticky in the writer, seen after the scan */
	(void)cat_writer_add(arg, in);
}

/*
 * held.cat of the tree after an apply, written entry by entry as the
 * derive (or the rescan) makes them: the new catalog is never whole in
 * memory, only the writer's chunk.  The file is name.tmp until it is
 * complete and durable, so a crash or a failure here leaves the old
 * held.cat (or none) in place, as rcv_write_atomic() does.
 */
static int
write_held(struct rcv *r, const struct cat_header *h, struct as_err *err)
{
	static const char tmp[] = "held.cat.tmp";
	struct cat_writer w;
	struct cat_out o;
	struct dir_stats st;
	int rc, e;

	if ((o.fd = atomic_open(r, tmp, err)) == -1)
		return -1;
	o.err = 0;
	if ((e = io_fault("recv_journal")) != 0) {
		close(o.fd);
		return as_err_sys(err, e, "write '%s/%s/%s'", r->dest,
		    AS_PRIVATE_DIR, tmp);
	}
	rc = 1;
	if (r->derive != NULL) {
		cat_writer_init(&w, h, write_out, &o);
		rc = r->derive(r, &w, err);
		if (rc == 1) {
			/* what the derive wrote is dropped: start again */
			cat_writer_release(&w);
			if (ftruncate(o.fd, 0) == -1 || lseek(o.fd, 0,
			    SEEK_SET) == -1) {
				e = errno;
				close(o.fd);
				return as_err_sys(err, e, "truncate "
				    "'%s/%s/%s'", r->dest, AS_PRIVATE_DIR,
				    tmp);
			}
		}
	}
	if (rc == 1) {
		cat_writer_init(&w, h, write_out, &o);
		/* what the apply did not touch keeps its lstat-only path */
		memset(&st, 0, sizeof(st));
		rc = dir_scan_each(r->dest, r->prior, r->block_size,
		    DIR_SCAN_NOHASH, held_each, &w, &st, err);
	}
	if (rc == 0 && cat_writer_finish(&w) == -1)
		rc = -1;
	/* the writer failed first: whatever the scan said came after */
	if (w.failed)
		rc = o.err != 0 ? as_err_sys(err, o.err, "write '%s/%s/%s'",
		    r->dest, AS_PRIVATE_DIR, tmp) : as_err_set(err,
		    AS_E_INTERNAL, EINVAL, "the new catalog of '%s' is not in "
		    "path order", r->dest);
	cat_writer_release(&w);
	/* the last phase's record (apply_from) before held.cat names it */
	if (rc == 0 && mark_end(r, err) == -1)
		rc = -1;
	if (rc != 0) {
		close(o.fd);
		(void)unlinkat(r->privfd, tmp, 0);
		return -1;
	}
	return atomic_commit(r, o.fd, tmp, "held.cat", err);
}

/*
 * Write held.cat for the tree as it is now, then drop the journal.
 *
 * No syncfs here: every phase that changed something ended with one
 * (mark_start), so the tree is durable before held.cat names it; the
 * last of them may still run and is ended (mark_end) first.
 * With no ops at all (an unchanged tree) the tree was not touched and
 * r->prior, checked against it just before, is the new held.cat as it is.
 */
static int
finish(struct rcv *r, struct as_err *err)
{
	struct cat_header h;
	int rc;

	memset(&h, 0, sizeof(h));
	h.version = CAT_VERSION;
	h.guid = r->guid;
	h.base_guid = r->base_guid;
	h.time_ns = r->time_ns;
	h.kind = AS_KIND_DIR;
	h.block_size = r->block_size;
	snprintf(h.name, sizeof(h.name), "%s", r->name);
	h.source = (char *)(r->source != NULL ? r->source : "");
	if (r->prior != NULL && r->prior_exact && r->nops == 0) {
		free(r->prior->hdr.source);
		r->prior->hdr = h;
		r->prior->hdr.source = xstrdup(h.source);
		rc = mark_end(r, err);
		if (rc == 0)
			rc = rcv_write_atomic(r, "held.cat", NULL, 0,
			    r->prior, err);
	} else {
		rc = write_held(r, &h, err);
		if (rc == -1)
			as_err_prefix(err, "record the snapshot held by '%s'",
			    r->dest);
		/* the catalog before the apply is of no more use */
		if (r->prior != NULL) {
			catalog_release(r->prior);
			r->prior = NULL;
		}
	}
	if (rc == -1)
		return -1;
	/* no journal (nothing to apply): nothing to remove durably */
	if (unlinkat(r->privfd, "journal", 0) == -1) {
		if (errno != ENOENT)
			return as_err_sys(err, errno, "remove the journal of "
			    "'%s'", r->dest);
	} else if (io_fsync(r->privfd, AS_PRIVATE_DIR, err) == -1)
		return -1;
	(void)unlinkat(r->privfd, "journal.phase", 0);
	rcv_partial_drop(r);
	return rcv_discard_stage(r, err);
}

void
rcv_partial_drop(struct rcv *r)
{
	(void)unlinkat(r->privfd, RCV_PARTIAL, 0);
	(void)unlinkat(r->privfd, RCV_PARTIAL_LOG, 0);
	(void)unlinkat(r->privfd, RCV_PARTIAL ".tmp", 0);
}

/* After a finished apply: report a metadata change it could not make. */
static int
rcv_late_result(struct rcv *r, struct as_err *err)
{
	if (r->late_err.code == AS_E_OK)
		return 0;
	if (err != NULL) {
		*err = r->late_err;
		as_err_prefix(err, "received snapshot '%s' into '%s', but",
		    r->name, r->dest);
	}
	return -1;
}

static int
apply_from(struct rcv *r, int done, int in_line, struct as_err *err)
{
	size_t did;
	int ph, rc = -1;

	if (open_stage(r, err) == -1)
		return -1;
	for (ph = done + 1; ph < PH_DONE; ph++) {
		if (run_phase(r, ph, &did, err) == -1)
			goto out;
		/*
		 * A phase without ops changed nothing: there is nothing to
		 * make durable, and a replay that runs it again does nothing
		 * either, so it needs neither a syncfs nor a record.
		 * read_phase() takes the highest phase recorded.
		 */
		if (did > 0 && mark_start(r, ph, in_line, err) == -1)
			goto out;
	}
	rc = finish(r, err);
out:
	/* finish ended the mark before held.cat; an error path did not */
	r->marker_pending = 0;
	(void)bg_join(&r->marker, NULL);
	return rc;
}

int
rcv_commit(struct rcv *r, struct as_err *err)
{

	/*
	 * Nothing to apply (the stream has no ops: the tree is already the
	 * new snapshot) and the tree was scanned just before: no journal.
	 * The only change is held.cat, replaced atomically (rcv_write_atomic:
	 * tmp, fsync, rename, fsync of the directory), and both the old and
	 * the new held.cat describe this very tree, so a crash at any point
	 * leaves a consistent destination; the empty stage/ is removed by
	 * the next recover.  Without an exact r->prior (a full stream, -F)
	 * the rescan and the usual path apply.
	 */
	if (r->nops == 0 && r->nsegs == 0 && r->prior != NULL &&
	    r->prior_exact) {
		if (finish(r, err) == -1)
			return as_err_prefix(err, "snapshot '%s' is not "
			    "recorded in '%s'", r->name, r->dest);
		return 0;
	}

	/* everything staged reaches the disk before the journal names it */
	if (r->spoolfd != -1 && fdatasync(r->spoolfd) == -1)
		return as_err_sys(err, errno, "sync the spool of '%s'",
		    r->dest);
	if (syncfs(r->destfd) == -1)
		return as_err_sys(err, errno, "sync '%s'", r->dest);
	if (unlinkat(r->privfd, "journal.phase", 0) == 0 &&
	    io_fsync(r->privfd, AS_PRIVATE_DIR, err) == -1)
		return -1;
	if (write_journal(r, err) == -1) {
		(void)unlinkat(r->privfd, "journal", 0);
		return -1;
	}
	/*
	 * Committed: from here on the tree is rolled forward, never back.  A
	 * transient failure (EIO on one fsync) is retried once from the
	 * recorded phase, one step after the other (no syncfs beside the
	 * next step), so that the destination is consistent when we
	 * return; if it fails again, the journal stays for recover.
	 */
	if (apply_from(r, PH_NONE, 0, err) == -1 &&
	    apply_from(r, read_phase(r), 1, err) == -1)
		return as_err_prefix(err, "snapshot '%s' is committed but not "
		    "fully applied (run 'autosync recover %s')", r->name,
		    r->dest);
	return rcv_late_result(r, err);
}

static int
read_file_at(int dirfd, const char *name, uint64_t max, struct buf *out,
    int *absent, struct as_err *err)
{
	struct stat sb;
	ssize_t n;
	int fd;

	*absent = 0;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT) {
			*absent = 1;
			return 0;
		}
		return as_err_sys(err, errno, "open '%s'", name);
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    (uint64_t)sb.st_size > max) {
		close(fd);
		return as_err_set(err, AS_E_MALFORMED, 0, "'%s' is not a "
		    "plausible file", name);
	}
	buf_reset(out);
	n = io_read_full(fd, buf_reserve(out, (size_t)sb.st_size + 1),
	    (size_t)sb.st_size);
	close(fd);
	if (n == -1)
		return as_err_sys(err, errno, "read '%s'", name);
	out->len = (size_t)n;
	return 0;
}

int
rcv_recover(struct rcv *r, struct as_err *err)
{
	struct buf j = BUF_INIT;
	struct stat sb;
	int absent, rc;

	(void)unlinkat(r->privfd, "journal.tmp", 0);
	(void)unlinkat(r->privfd, "held.cat.tmp", 0);
	if (read_file_at(r->privfd, "journal", J_FILE_MAX, &j, &absent,
	    err) == -1) {
		buf_release(&j);
		return -1;
	}
	if (absent) {
		buf_release(&j);
		if (fstatat(r->privfd, "stage", &sb, AT_SYMLINK_NOFOLLOW) ==
		    -1) {
			rcv_partial_drop(r);
			return 0;
		}
		/*
		 * Uncommitted but checkpointed (dir.h, resume): the stage is
		 * kept for the transfer to continue; the destination itself
		 * was never touched.
		 */
		if (fstatat(r->privfd, RCV_PARTIAL, &sb, AT_SYMLINK_NOFOLLOW) ==
		    0 && S_ISREG(sb.st_mode))
			return 0;
		/* uncommitted: roll back */
		(void)unlinkat(r->privfd, "journal.phase", 0);
		if (rcv_discard_stage(r, err) == -1)
			return -1;
		return 1;
	}
	rc = journal_decode(r, j.data, j.len, err);
	buf_release(&j);
	if (rc == -1)
		return -1;
	if (apply_from(r, read_phase(r), 1, err) == -1 ||
	    rcv_late_result(r, err) == -1)
		return -1;
	/* this context recovered someone else's op list: forget it */
	r->nops = r->nsegs = 0;
	buf_reset(&r->strs);
	buf_reset(&r->xattrs);
	return 1;
}

int
dir_recover(const char *dest, struct as_err *err)
{
	struct rcv r;
	struct stat sb;
	int rc;

	if (lstat(dest, &sb) == -1 && errno == ENOENT)
		return 0;
	rcv_init(&r, dest, 0, NULL);
	/* dry open: never creates .autosync where there is none */
	if (rcv_open(&r, 1, err) == -1) {
		rcv_release(&r);
		return as_err_prefix(err, "recover '%s'", dest);
	}
	/*
	 * .autosync without its lock file (lost, or removed by hand) may
	 * still hold a journal or staging: take the lock the way a receive
	 * does, creating the file, rather than take "no lock" for "nothing
	 * to do".  Only a missing .autosync means there is nothing here.
	 */
	if (r.privfd != -1 && r.lockfd == -1) {
		close_fd(&r.privfd);
		if (rcv_open_private(&r, 0, 0, err) == -1) {
			rcv_release(&r);
			return as_err_prefix(err, "recover '%s'", dest);
		}
	}
	rc = 0;
	if (r.privfd != -1)
		rc = rcv_recover(&r, err);
	rcv_release(&r);
	if (rc == -1)
		return as_err_prefix(err, "recover '%s'", dest);
	return rc;
}

int
dir_held(const char *dest, struct cat_header *hdr, struct as_err *err)
{
	uint8_t b[REC_HDR_LEN + 64 + 256 + AS_PATH_MAX_BUF + REC_TRAILER_LEN];
	ssize_t n;
	int dfd, pfd, fd;

	dfd = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd == -1) {
		if (errno == ENOENT)
			return 0;
		return as_err_sys(err, errno, "open destination '%s'", dest);
	}
	pfd = openat(dfd, AS_PRIVATE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	close(dfd);
	if (pfd == -1) {
		if (errno == ENOENT)
			return 0;
		return as_err_sys(err, errno, "open '%s/%s'", dest,
		    AS_PRIVATE_DIR);
	}
	fd = openat(pfd, "held.cat", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(pfd);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		return as_err_sys(err, errno, "open the held catalog of '%s'",
		    dest);
	}
	n = io_read_full(fd, b, sizeof(b));
	close(fd);
	if (n == -1)
		return as_err_sys(err, errno, "read the held catalog of '%s'",
		    dest);
	memset(hdr, 0, sizeof(*hdr));
	if (catalog_decode_header(hdr, b, (size_t)n, err) == -1)
		return as_err_prefix(err, "held catalog of '%s'", dest);
	return 1;
}
