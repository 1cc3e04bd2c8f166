/*
 * dir_scan.c - walk a directory tree into a catalog; see dir.h.
 *
 * The walk is iterative: one frame per directory on the path from the
 * root to the current entry, each holding its children's names (sorted
 * bytewise, so that the output comes in path_cmp() order) on a shared
 * stack.  Only the first SCAN_KEEP_FDS ancestors keep their descriptor;
 * a deeper directory is reopened beneath the nearest one that kept it
 * when the walk comes back to it, so that a deep tree costs neither
 * stack nor descriptors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/io.h"
#include "base/xmalloc.h"
#include "driver/dir.h"
#include "driver/scan_util.h"
#include "format/path.h"
#include "format/stream.h"
#include "base/banned.h"

#define SCAN_KEEP_FDS	64
#define DENTS_BUF	32768

/*
 * A directory being walked: listed (its children read with getdents and
 * stat'ed), or, in a narrowed scan, carried (its children copied from
 * the base catalog, except the directories on the way to a changed one).
 */
enum { FR_LIST, FR_FULL, FR_CARRY };

struct frame {
	int		 kind;		/* FR_*: FULL lists its whole subtree */
	int		 fd;		/* -1: closed, reopen when needed */
	uint32_t	 plen;		/* length of its path in s->path */
	size_t		 first;		/* its children: s->kids[first..] */
	size_t		 nkids;
	size_t		 next;		/* next child to visit */
	size_t		 names_mark;	/* s->names.len before its children */
	uint64_t	 ino;		/* to check a reopened directory */
	uint64_t	 dev;		/* UINT64_MAX: unknown (carried) */
	size_t		 bnext;		/* FR_CARRY: next base entry */
	size_t		 bend;		/* ... and the end of its subtree */
};

/* A directory of a narrowed scan's list (into the caller's strings). */
struct only {
	const char	*p;
	size_t		 len;
};

struct scan {
	const char	*root;
	int		 rootfd;
	int		 flags;
	uint32_t	 bs;
	uint64_t	 dev;		/* the root's file system */
	const struct catalog *base;
	size_t		 bpos;		/* merge cursor into base */
	int		 base_hashes;	/* base block size equals ours */
	/*
	 * dir_scan_merge: base is rd->win, one entry at a time (bcur);
	 * what the walk does not take as unchanged goes to rest.
	 */
	struct cat_reader *rd;
	const struct cat_entry *bcur;
	int		 bused;		/* bcur taken as CAT_EF_SAME */
	int		 bdone;		/* rd is at its end */
	struct as_err	 berr;		/* rd's error, reported after walk */
	int		 bfail;
	const char	*bupper;	/* a part's: the next part's first path */
	size_t		 bupper_len;
	struct catalog	*rest;
	struct catalog	*out;
	struct only	*only;		/* narrowed: sorted by path_cmp() */
	size_t		 nonly;
	int		 narrow;	/* 1: only's directories are listed */
	int		 relisted;	/* a hard-link group changed: rescan */
	int		 nest;		/* a worker of this many cuts deep */
	void		(*each)(void *, const struct cat_entry_in *);
	void		*each_arg;
	struct dir_stats *st;
	struct frame	*fr;
	size_t		 nfr;
	size_t		 frcap;
	struct buf	 names;		/* children names, NUL-terminated */
	size_t		*kids;		/* offsets into names */
	size_t		 nkids;
	size_t		 kidcap;
	struct buf	 xattrs;	/* the current entry's blob */
	struct buf	 hashes;	/* the current entry's block hashes */
	struct scan_xa	 xa;
	uint8_t		*rbuf;
	size_t		 rlen;
	char		 link[AS_PATH_MAX + 2];
	uint64_t	 dents[DENTS_BUF / 8];	/* aligned for dirent64 */
	char		 path[AS_PATH_MAX + AS_NAME_MAX + 2];
};

/* Helpers shared with dir_send.c (scan_util.h). */

void
scan_xa_init(struct scan_xa *x)
{
	memset(x, 0, sizeof(*x));
	x->val = xmalloc(AS_XATTR_VALUE_MAX);
}

void
scan_xa_release(struct scan_xa *x)
{
	if (x == NULL)
		return;
	buf_release(&x->names);
	free(x->sorted);
	free(x->val);
	memset(x, 0, sizeof(*x));
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * listxattrat/getxattrat (Linux 6.13): the xattrs of the entry `at` in
 * the directory fd, no final symlink followed, in one name lookup.  The
 * older way, the l* calls on "/proc/self/fd/DIRFD/NAME", walks procfs
 * for every entry and cost twice a stat here (9.5 against 4.3 us per
 * call): a scan's largest single cost per unchanged entry.  Where the
 * kernel (or a seccomp filter) lacks them, that older way is used.
 */
#ifndef __NR_getxattrat
#define __NR_getxattrat		464	/* one number on every architecture */
#endif
#ifndef __NR_listxattrat
#define __NR_listxattrat	465
#endif

struct xattr_args_v0 {			/* the kernel's struct xattr_args */
	uint64_t	value;
	uint32_t	size;
	uint32_t	flags;
};

static int xattrat_off;		/* the kernel said ENOSYS (or EPERM) */

/* Where xattrs are read: fd itself, a proc path, or the entry at in fd. */
struct xsrc {
	int		 fd;
	const char	*proc;
	const char	*at;
	char		 pbuf[AS_NAME_MAX + 64];
};

/* The *xattrat calls failed as unknown: use the proc path from now on. */
static int
xattrat_fallback(struct xsrc *w)
{
	if (errno != ENOSYS && errno != EPERM)
		return 0;
	__atomic_store_n(&xattrat_off, 1, __ATOMIC_RELAXED);
	snprintf(w->pbuf, sizeof(w->pbuf), "/proc/self/fd/%d/%s", w->fd,
	    w->at);
	w->proc = w->pbuf;
	w->at = NULL;
	return 1;
}

static ssize_t
xa_list(struct xsrc *w, char *p, size_t n)
{
	long r;

	if (w->at != NULL) {
		r = syscall(__NR_listxattrat, w->fd, w->at,
		    AT_SYMLINK_NOFOLLOW, p, n);
		if (r != -1 || !xattrat_fallback(w))
			return (ssize_t)r;
	}
	return w->proc != NULL ? llistxattr(w->proc, p, n) :
	    flistxattr(w->fd, p, n);
}

static ssize_t
xa_get(struct xsrc *w, const char *name, void *p, size_t n)
{
	struct xattr_args_v0 a;
	long r;

	if (w->at != NULL) {
		memset(&a, 0, sizeof(a));
		a.value = (uint64_t)(uintptr_t)p;
		a.size = (uint32_t)n;
		r = syscall(__NR_getxattrat, w->fd, w->at,
		    AT_SYMLINK_NOFOLLOW, name, &a, sizeof(a));
		if (r != -1 || !xattrat_fallback(w))
			return (ssize_t)r;
	}
	return w->proc != NULL ? lgetxattr(w->proc, name, p, n) :
	    fgetxattr(w->fd, name, p, n);
}

static int	xattrs_read(struct xsrc *, struct scan_xa *, struct buf *);

int
scan_xattrs(int fd, int opath, struct scan_xa *x, struct buf *blob)
{
	struct xsrc w = { fd, NULL, NULL, "" };

	if (opath) {
		/*
		 * An O_PATH descriptor has no f*xattr on older kernels; the
		 * magic link reaches the very inode (a symlink included)
		 * without resolving any name again.
		 */
		snprintf(w.pbuf, sizeof(w.pbuf), "/proc/self/fd/%d", fd);
		w.proc = w.pbuf;
	}
	return xattrs_read(&w, x, blob);
}

int
scan_xattrs_path(const char *path, struct scan_xa *x, struct buf *blob)
{
	struct xsrc w = { -1, path, NULL, "" };

	return xattrs_read(&w, x, blob);
}

int
scan_xattrs_at(int dirfd, const char *name, struct scan_xa *x,
    struct buf *blob)
{
	struct xsrc w = { dirfd, NULL, name, "" };

	if (__atomic_load_n(&xattrat_off, __ATOMIC_RELAXED)) {
		snprintf(w.pbuf, sizeof(w.pbuf), "/proc/self/fd/%d/%s", dirfd,
		    name);
		w.proc = w.pbuf;
		w.at = NULL;
	}
	return xattrs_read(&w, x, blob);
}

static int
xattrs_read(struct xsrc *w, struct scan_xa *x, struct buf *blob)
{
	ssize_t n, v;
	size_t i, cnt;
	char *p, *end;

	buf_reset(blob);
	for (;;) {
		n = xa_list(w, NULL, 0);
		if (n == -1) {
			if (errno == ENOTSUP)
				return 0;
			return -1;
		}
		if (n == 0)
			return 0;
		buf_reset(&x->names);
		buf_reserve(&x->names, (size_t)n + 1);
		n = xa_list(w, (char *)x->names.data, (size_t)n);
		if (n == -1 && errno == ERANGE)
			continue;	/* grew meanwhile */
		if (n == -1)
			return -1;
		break;
	}
	x->names.data[n] = '\0';
	x->names.len = (size_t)n;
	cnt = 0;
	p = (char *)x->names.data;
	end = p + n;
	for (; p < end; p += strlen(p) + 1) {
		if (*p == '\0')
			continue;
		if (cnt == x->cap) {
			x->cap = x->cap ? x->cap * 2 : 16;
			x->sorted = xreallocarray(x->sorted, x->cap,
			    sizeof(*x->sorted));
		}
		x->sorted[cnt++] = p;
	}
	if (cnt > AS_XATTRS_MAX) {
		errno = E2BIG;
		return -1;
	}
	/* none at all (overlayfs lists a length for names it hides) */
	if (cnt > 1)
		qsort(x->sorted, cnt, sizeof(*x->sorted), cmp_str);
	for (i = 0; i < cnt; i++) {
		v = xa_get(w, x->sorted[i], x->val,
		    AS_XATTR_VALUE_MAX);
		if (v == -1) {
			if (errno == ENODATA)
				continue;	/* removed meanwhile */
			return -1;
		}
		if (strlen(x->sorted[i]) > AS_XATTR_NAME_MAX) {
			errno = ENAMETOOLONG;
			return -1;
		}
		xattr_blob_add(blob, x->sorted[i], strlen(x->sorted[i]),
		    x->val, (size_t)v);
	}
	return 0;
}

void
scan_hash(const void *p, size_t len, uint8_t out[CAT_HASH_LEN])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(p, len));
	memcpy(out, c.digest, CAT_HASH_LEN);
}

void
scan_zero_hash(uint64_t len, uint8_t out[CAT_HASH_LEN])
{
	static const uint8_t zeros[65536];
	XXH3_state_t *st;
	XXH128_canonical_t c;
	uint64_t n;

	if (len <= sizeof(zeros)) {
		scan_hash(zeros, (size_t)len, out);
		return;
	}
	if ((st = XXH3_createState()) == NULL)
		fatal("out of memory");
	XXH3_128bits_reset(st);
	while (len > 0) {
		n = len < sizeof(zeros) ? len : sizeof(zeros);
		XXH3_128bits_update(st, zeros, (size_t)n);
		len -= n;
	}
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
	XXH3_freeState(st);
	memcpy(out, c.digest, CAT_HASH_LEN);
}

uint64_t
scan_nblocks(uint64_t size, uint32_t block_size)
{
	return size / block_size + (size % block_size != 0);
}

int
scan_hash_fd(int fd, uint64_t size, uint32_t bs, uint8_t *hashes,
    uint8_t *rbuf, size_t rlen, uint64_t *nread)
{
	uint64_t nb = scan_nblocks(size, bs), b = 0, off, blen, end, i;
	uint64_t dstart = 0, dend = 0;
	uint8_t zh[CAT_HASH_LEN];
	int have_zh = 0;
	off_t r;
	ssize_t got;

	while (b < nb) {
		off = b * bs;
		blen = size - off < bs ? size - off : bs;
		if (off >= dend && size <= rlen) {
			/*
			 * One read covers the whole file: finding its holes
			 * first (two lseeks) costs more than reading them,
			 * which gives zeros, i.e. the same hashes.
			 */
			dstart = 0;
			dend = size;
		} else if (off >= dend) {
			/* the next data extent at or after off */
			r = lseek(fd, (off_t)off, SEEK_DATA);
			if (r == -1 && errno == ENXIO)
				dstart = dend = size;
			else if (r == -1 && (errno == EINVAL ||
			    errno == EOPNOTSUPP))
				dstart = off, dend = size;	/* no holes */
			else if (r == -1)
				return -1;
			else {
				dstart = (uint64_t)r;
				r = lseek(fd, r, SEEK_HOLE);
				dend = r == -1 ? size : (uint64_t)r;
			}
			if (dstart > size)
				dstart = size;
			if (dend > size || dend <= off)
				dend = size;
		}
		if (off + blen <= dstart) {
			/* wholly in a hole: nothing to read */
			if (blen == bs) {
				if (!have_zh) {
					scan_zero_hash(bs, zh);
					have_zh = 1;
				}
				memcpy(hashes + b * CAT_HASH_LEN, zh,
				    CAT_HASH_LEN);
			} else
				scan_zero_hash(blen, hashes + b * CAT_HASH_LEN);
			b++;
			continue;
		}
		end = (dend + bs - 1) / bs * bs;
		if (end > size)
			end = size;
		if (end - off > rlen)
			end = off + rlen;
		got = io_pread_full(fd, rbuf, (size_t)(end - off), (off_t)off);
		if (got == -1)
			return -1;
		*nread += (uint64_t)got;
		if ((uint64_t)got < end - off)
			memset(rbuf + got, 0, (size_t)(end - off - got));
		for (i = 0; off + i < end; i += bs, b++)
			scan_hash(rbuf + i, end - off - i < bs ?
			    (size_t)(end - off - i) : bs,
			    hashes + b * CAT_HASH_LEN);
	}
	return 0;
}

static int
open_walk(int dirfd, const char *path, int flags)
{
	char comp[AS_NAME_MAX + 1];
	const char *slash;
	size_t n;
	int cur = dirfd, next, e;

	if (*path == '\0')
		return openat(dirfd, ".", flags | O_CLOEXEC);
	for (;;) {
		slash = strchr(path, '/');
		n = slash != NULL ? (size_t)(slash - path) : strlen(path);
		if (n == 0 || n > AS_NAME_MAX || (n == 2 && path[0] == '.' &&
		    path[1] == '.')) {
			errno = EXDEV;
			next = -1;
		} else {
			memcpy(comp, path, n);
			comp[n] = '\0';
			next = openat(cur, comp, (slash != NULL ? O_PATH |
			    O_DIRECTORY : flags) | O_NOFOLLOW | O_CLOEXEC);
		}
		e = errno;
		if (cur != dirfd)
			close(cur);
		errno = e;
		if (next == -1 || slash == NULL)
			return next;
		cur = next;
		path = slash + 1;
	}
}

int
scan_open_beneath(int dirfd, const char *path, int flags)
{
	static int no_openat2;
	struct open_how how;
	long fd;
	int i;

	if (!no_openat2) {
		memset(&how, 0, sizeof(how));
		how.flags = (uint64_t)(flags | O_CLOEXEC);
		how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
		    RESOLVE_NO_MAGICLINKS;
		for (i = 0; i < 8; i++) {
			fd = syscall(SYS_openat2, dirfd, *path ? path : ".",
			    &how, sizeof(how));
			/* EAGAIN: a rename raced the lookup; try again */
			if (fd != -1 || errno != EAGAIN)
				break;
		}
		if (fd != -1 || errno != ENOSYS)
			return (int)fd;
		no_openat2 = 1;
	}
	return open_walk(dirfd, path, flags);
}

int
scan_open_file(int dirfd, const char *name)
{
	static int no_noatime;
	int fd, fl = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;

	if (!no_noatime) {
		fd = openat(dirfd, name, fl | O_NOATIME);
		/* O_NOATIME needs ownership or CAP_FOWNER */
		if (fd != -1 || errno != EPERM)
			return fd;
	}
	return openat(dirfd, name, fl);
}

void
scan_fix_ino(struct stat *sb, uint64_t rootdev)
{
	uint64_t mix;

	if ((uint64_t)sb->st_dev == rootdev)
		return;
	mix = ((uint64_t)sb->st_dev * UINT64_C(0x9e3779b97f4a7c15)) >> 40;
	sb->st_ino ^= (mix | 1) << 40;
}

void
scan_fill(struct cat_entry *e, const struct stat *sb)
{
	uint32_t type = sb->st_mode & S_IFMT;

	memset(e, 0, sizeof(*e));
	e->ino = sb->st_ino;
	e->mode = sb->st_mode;
	e->uid = sb->st_uid;
	e->gid = sb->st_gid;
	e->nlink = (uint32_t)sb->st_nlink;
	e->size = type == S_IFREG ? (uint64_t)sb->st_size : 0;
	e->rdev = type == S_IFCHR || type == S_IFBLK ? sb->st_rdev : 0;
	e->mtime_sec = sb->st_mtim.tv_sec;
	e->mtime_nsec = (uint32_t)sb->st_mtim.tv_nsec;
	e->ctime_sec = sb->st_ctim.tv_sec;
	e->ctime_nsec = (uint32_t)sb->st_ctim.tv_nsec;
}

int
scan_same(const struct cat_entry *e, const struct stat *sb)
{
	uint32_t type = sb->st_mode & S_IFMT;

	return e->ino == sb->st_ino && (e->mode & S_IFMT) == type &&
	    (type != S_IFREG || e->size == (uint64_t)sb->st_size) &&
	    e->mtime_sec == sb->st_mtim.tv_sec &&
	    e->mtime_nsec == (uint32_t)sb->st_mtim.tv_nsec &&
	    e->ctime_sec == sb->st_ctim.tv_sec &&
	    e->ctime_nsec == (uint32_t)sb->st_ctim.tv_nsec;
}

/* The walk. */

/*
 * A narrowed scan's list of directories: the first at or after p in
 * path_cmp() order (a directory's descendants follow it directly).
 */
static size_t
only_lb(const struct scan *s, const char *p, size_t len)
{
	size_t lo = 0, hi = s->nonly, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (path_cmp(s->only[mid].p, s->only[mid].len, p, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* 1 when the directory p is on the list. */
static int
only_has(const struct scan *s, const char *p, size_t len)
{
	size_t i = only_lb(s, p, len);

	return i < s->nonly && s->only[i].len == len &&
	    memcmp(s->only[i].p, p, len) == 0;
}

/* 1 when p or a directory below it is on the list. */
static int
only_below(const struct scan *s, const char *p, size_t len)
{
	size_t i = only_lb(s, p, len);

	if (i == s->nonly)
		return 0;
	if (len == 0)
		return 1;
	return s->only[i].len >= len && memcmp(s->only[i].p, p, len) == 0 &&
	    (s->only[i].len == len || s->only[i].p[len] == '/');
}

/* The end of base entry i's subtree: the first index not below it. */
static size_t
sub_end(const struct catalog *b, size_t i)
{
	const struct cat_entry *d = &b->ents[i], *e;
	const char *p = catalog_path(b, d);
	size_t j, len = d->path_len;

	if (len == 0)
		return b->n;
	for (j = i + 1; j < b->n; j++) {
		e = &b->ents[j];
		if (e->path_len <= len || catalog_path(b, e)[len] != '/' ||
		    memcmp(catalog_path(b, e), p, len) != 0)
			break;
	}
	return j;
}

/* Copy base entries [from, to) unread: the journal saw no change. */
static void
carry(struct scan *s, size_t from, size_t to)
{
	const struct catalog *b = s->base;
	const struct cat_entry *e;
	struct cat_entry_in in;
	size_t i;
	int hashed;

	for (i = from; i < to; i++) {
		e = &b->ents[i];
		hashed = S_ISREG(e->mode) && (s->flags & DIR_SCAN_NOHASH) == 0;
		memset(&in, 0, sizeof(in));
		in.st = e;
		in.path = catalog_path(b, e);
		in.path_len = e->path_len;
		in.aux = catalog_aux(b, e);
		in.aux_len = e->aux_len;
		in.xattrs = catalog_xattrs(b, e);
		in.xattr_len = e->xattr_len;
		in.hashes = hashed ? b->hashes.data + CAT_HASH_AT(e) : NULL;
		in.nblocks = hashed ? e->nblocks : 0;
		if (s->each != NULL)
			s->each(s->each_arg, &in);
		else
			catalog_add(s->out, &in);
	}
	s->st->carried += to - from;
}

static int	scan_child(struct scan *, int, const char *, size_t,
		    struct as_err *);
static int	reopen(struct scan *, struct as_err *);
static int	push_kind(struct scan *, int, size_t, uint64_t, uint64_t, int,
		    size_t, size_t, struct as_err *);
static void	pop(struct scan *);

/*
 * One step of a carried frame: the next base child with its subtree,
 * copied; or, for a directory on the list, stat'ed and listed; or, for
 * one with a listed directory below it, its entry copied and a carried
 * frame pushed for its children.
 */
static int
carry_step(struct scan *s, struct as_err *err)
{
	const struct catalog *b = s->base;
	struct frame *f = &s->fr[s->nfr - 1];
	const struct cat_entry *e;
	char name[AS_NAME_MAX + 1];
	const char *p;
	size_t i = f->bnext, end, plen, dlen;
	int rc;

	if (i >= f->bend) {
		pop(s);
		return 0;
	}
	e = &b->ents[i];
	p = catalog_path(b, e);
	plen = e->path_len;
	end = sub_end(b, i);
	if (end > f->bend)
		end = f->bend;
	f->bnext = end;
	if (!S_ISDIR(e->mode) || !only_below(s, p, plen)) {
		carry(s, i, end);
		return 0;
	}
	if (!only_has(s, p, plen)) {
		carry(s, i, i + 1);
		memcpy(s->path, p, plen);
		s->path[plen] = '\0';
		return push_kind(s, -1, plen, e->ino, UINT64_MAX, FR_CARRY,
		    i + 1, end, err);
	}
	if (f->fd == -1) {
		if ((rc = reopen(s, err)) == -1)
			return -1;
		if (rc == 1) {
			pop(s);		/* gone meanwhile: so is its subtree */
			return 0;
		}
	}
	memcpy(s->path, p, plen);
	s->path[plen] = '\0';
	if ((dlen = path_parent_len(p, plen)) != 0)
		dlen++;
	snprintf(name, sizeof(name), "%s", s->path + dlen);
	return scan_child(s, f->fd, name, plen, err);
}


static const char *
disp(const struct scan *s)
{
	return s->path[0] != '\0' ? s->path : s->root;
}

/* dir_scan_merge: bcur is done with; rest keeps it unless taken. */
static void
base_retire(struct scan *s)
{
	const struct catalog *w = &s->rd->win;
	const struct cat_entry *b = s->bcur;
	struct cat_entry_in in;

	if (!s->bused) {
		memset(&in, 0, sizeof(in));
		in.st = b;
		in.path = catalog_path(w, b);
		in.path_len = b->path_len;
		in.aux = catalog_aux(w, b);
		in.aux_len = b->aux_len;
		in.xattrs = catalog_xattrs(w, b);
		in.xattr_len = b->xattr_len;
		in.hashes = b->nblocks != 0 ? w->hashes.data + CAT_HASH_AT(b) :
		    NULL;
		in.nblocks = b->nblocks;
		catalog_add(s->rest, &in);
	}
	s->bcur = NULL;
	s->bused = 0;
}

/*
 * dir_scan_merge: the next base entry into bcur.  0 at the end of the
 * base, of a part's share of it (bupper), or on an error (bfail).
 */
static int
base_next(struct scan *s)
{
	const struct cat_entry *e;
	int r;

	if (s->bdone || s->bfail)
		return 0;
	r = cat_reader_next(s->rd, &e, &s->berr);
	if (r == 1 && s->bupper != NULL && path_cmp(catalog_path(&s->rd->win,
	    e), e->path_len, s->bupper, s->bupper_len) >= 0)
		r = 0;		/* the next part's */
	if (r == -1)
		s->bfail = 1;
	if (r != 1) {
		s->bdone = 1;
		s->bcur = NULL;
		return 0;
	}
	s->bcur = e;
	s->bused = 0;
	return 1;
}

/* dir_scan_merge after the walk: what it did not reach is gone. */
static void
base_drain(struct scan *s)
{
	do {
		if (s->bcur != NULL)
			base_retire(s);
	} while (base_next(s));
}

/* base_at for dir_scan_merge: the same merge over the reader. */
static const struct cat_entry *
base_at_rd(struct scan *s, size_t plen)
{
	const struct cat_entry *e;
	int r;

	for (;;) {
		if (s->bcur == NULL && !base_next(s))
			return NULL;
		e = s->bcur;
		r = path_cmp(catalog_path(&s->rd->win, e), e->path_len,
		    s->path, plen);
		if (r == 0)
			return (e->flags & CAT_EF_NOTPIT) != 0 ? NULL : e;
		if (r > 0)
			return NULL;
		base_retire(s);
	}
}

/* The base entry at the current path, by a merge: paths only grow. */
static const struct cat_entry *
base_at(struct scan *s, size_t plen)
{
	const struct catalog *b = s->base;
	const struct cat_entry *e;
	int r;

	if (b == NULL || (s->flags & DIR_SCAN_REHASH) != 0)
		return NULL;
	if (s->rd != NULL)
		return base_at_rd(s, plen);
	while (s->bpos < b->n) {
		e = &b->ents[s->bpos];
		r = path_cmp(catalog_path(b, e), e->path_len, s->path, plen);
		if (r == 0)
			return (e->flags & CAT_EF_NOTPIT) != 0 ? NULL : e;
		if (r > 0)
			return NULL;
		s->bpos++;
	}
	return NULL;
}

/*
 * A regular file that is not at its base path may still be the same
 * file: below a renamed directory, its own ctime does not change.
 */
static const struct cat_entry *
base_by_ino(struct scan *s, const struct stat *sb)
{
	struct catalog *bw;
	const struct cat_entry *e;
	long i;

	/* dir_scan_merge: matched by inode in rest after the walk */
	if (s->base == NULL || (s->flags & DIR_SCAN_REHASH) != 0 ||
	    sb->st_nlink != 1 || s->rd != NULL)
		return NULL;
	/* the inode index is a cache; base's content does not change */
	bw = (struct catalog *)(uintptr_t)s->base;
	if ((i = catalog_find_ino(bw, sb->st_ino)) < 0)
		return NULL;
	e = &bw->ents[i];
	return e->nlink == 1 && (e->flags & CAT_EF_NOTPIT) == 0 ? e : NULL;
}

static void
add(struct scan *s, size_t plen, const struct cat_entry *st,
    const char *aux, size_t auxlen, const uint8_t *xa, size_t xalen,
    const uint8_t *hashes, uint32_t nblocks)
{
	struct cat_entry_in in;

	memset(&in, 0, sizeof(in));
	in.st = st;
	in.path = s->path;
	in.path_len = plen;
	in.aux = aux;
	in.aux_len = auxlen;
	in.xattrs = xa;
	in.xattr_len = xalen;
	in.hashes = hashes;
	in.nblocks = nblocks;
	if (s->each != NULL)
		s->each(s->each_arg, &in);
	else
		catalog_add(s->out, &in);
}

/* Add an entry whose attributes come unread from base (quick check). */
static void
add_reused(struct scan *s, size_t plen, const struct stat *sb,
    const struct cat_entry *b)
{
	const struct catalog *bc = s->base;
	struct cat_entry e;
	int hashed;

	scan_fill(&e, sb);
	hashed = S_ISREG(sb->st_mode) && (s->flags & DIR_SCAN_NOHASH) == 0;
	/*
	 * dir_scan_merge: an unchanged entry at its own path that is no
	 * directory (the parents of other entries) and has no other names
	 * is left out of rest; dir_send knows it by CAT_EF_SAME.
	 */
	if (s->rd != NULL && b == s->bcur && !S_ISDIR(sb->st_mode) &&
	    sb->st_nlink == 1 && b->nlink == 1) {
		s->bused = 1;
		e.flags |= CAT_EF_SAME;
	}
	add(s, plen, &e, catalog_aux(bc, b), b->aux_len,
	    catalog_xattrs(bc, b), b->xattr_len,
	    hashed ? bc->hashes.data + CAT_HASH_AT(b) : NULL,
	    hashed ? b->nblocks : 0);
}

/*
 * Xattrs of a non-directory, non-regular entry (or an unread file),
 * by name in the directory we hold (scan_xattrs_at: listxattrat, or the
 * l* calls on "/proc/self/fd/DIRFD/name"): no final symlink followed,
 * and no descriptor opened for the entry (an O_PATH open + close per
 * entry was a third of an unchanged scan).  Returns 0,
 * 1 when the entry vanished, -1 on error.
 */
static int
xattrs_at(struct scan *s, int dirfd, const char *name, struct as_err *err)
{
	if (scan_xattrs_at(dirfd, name, &s->xa, &s->xattrs) == -1) {
		if (errno == ENOENT)
			return 1;
		return as_err_sys(err, errno, "read xattrs of '%s'", disp(s));
	}
	return 0;
}

/*
 * Read the children of the directory fd onto the names stack, sorted.
 */
static int
read_kids(struct scan *s, int fd, int at_root, size_t *first, size_t *n,
    struct as_err *err)
{
	struct dirent64 *d;
	ssize_t got, pos;
	size_t len, i;
	const char *nm;

	*first = s->nkids;
	if ((got = io_fault("scan_dir")) != 0)	/* tests: a slow disk */
		return as_err_sys(err, (int)got, "read directory '%s'",
		    disp(s));
	for (;;) {
		got = getdents64(fd, s->dents, sizeof(s->dents));
		if (got == -1) {
			if (errno == EINTR)
				continue;
			return as_err_sys(err, errno, "read directory '%s'",
			    disp(s));
		}
		if (got == 0)
			break;
		for (pos = 0; pos < got; pos += d->d_reclen) {
			d = (struct dirent64 *)((char *)s->dents + pos);
			nm = d->d_name;
			if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' &&
			    nm[2] == '\0')))
				continue;
			if (at_root && strcmp(nm, AS_PRIVATE_DIR) == 0)
				continue;
			len = strlen(nm);
			if (s->nkids == s->kidcap) {
				s->kidcap = s->kidcap ? s->kidcap * 2 : 256;
				s->kids = xreallocarray(s->kids, s->kidcap,
				    sizeof(*s->kids));
			}
			s->kids[s->nkids++] = s->names.len;
			buf_add(&s->names, nm, len + 1);
		}
	}
	*n = s->nkids - *first;
	/* offsets -> sort by the names they point at */
	{
		const char **tmp = xreallocarray(NULL, *n ? *n : 1,
		    sizeof(*tmp));

		for (i = 0; i < *n; i++)
			tmp[i] = (const char *)s->names.data +
			    s->kids[*first + i];
		qsort(tmp, *n, sizeof(*tmp), cmp_str);
		for (i = 0; i < *n; i++)
			s->kids[*first + i] = (size_t)(tmp[i] -
			    (const char *)s->names.data);
		free(tmp);
	}
	return 0;
}

/*
 * Push a frame for the directory at s->path (plen bytes), open as fd (or
 * -1 for a carried one, opened when a child must be stat'ed): kind
 * FR_LIST or FR_FULL reads its children now; FR_CARRY walks the base
 * entries [bnext, bend) instead.
 */
static int
push_kind(struct scan *s, int fd, size_t plen, uint64_t ino, uint64_t dev,
    int kind, size_t bnext, size_t bend, struct as_err *err)
{
	struct frame *f;
	size_t mark = s->names.len, first = s->nkids, n = 0;

	if (kind != FR_CARRY && read_kids(s, fd, s->nfr == 0, &first, &n,
	    err) == -1) {
		s->names.len = mark;
		s->nkids = first;
		return -1;
	}
	if (s->nfr == s->frcap) {
		s->frcap = s->frcap ? s->frcap * 2 : 64;
		s->fr = xreallocarray(s->fr, s->frcap, sizeof(*s->fr));
	}
	f = &s->fr[s->nfr++];
	f->kind = kind;
	f->fd = fd;
	f->plen = (uint32_t)plen;
	f->first = first;
	f->nkids = n;
	f->next = 0;
	f->names_mark = mark;
	f->ino = ino;
	f->dev = dev;
	f->bnext = bnext;
	f->bend = bend;
	/* beyond the kept ancestors, the parent gives its descriptor up */
	if (s->nfr >= 2 && s->nfr - 2 >= SCAN_KEEP_FDS &&
	    s->fr[s->nfr - 2].fd != -1) {
		close(s->fr[s->nfr - 2].fd);
		s->fr[s->nfr - 2].fd = -1;
	}
	return 0;
}

static int
push(struct scan *s, int fd, size_t plen, const struct stat *sb,
    struct as_err *err)
{
	return push_kind(s, fd, plen, sb->st_ino, sb->st_dev, FR_FULL, 0, 0,
	    err);
}

static void
pop(struct scan *s)
{
	struct frame *f = &s->fr[--s->nfr];

	if (f->fd != -1 && f->fd != s->rootfd)
		close(f->fd);
	s->names.len = f->names_mark;
	s->nkids = f->first;
}

/* Free s and all it holds but its root descriptor (the caller's). */
static void
scan_free(struct scan *s)
{
	while (s->nfr > 0)
		pop(s);
	scan_xa_release(&s->xa);
	buf_release(&s->names);
	buf_release(&s->xattrs);
	buf_release(&s->hashes);
	free(s->only);
	free(s->kids);
	free(s->fr);
	free(s->rbuf);
	free(s);
}

/*
 * Reopen the top frame's directory beneath the nearest ancestor that
 * kept its descriptor.  Returns 0, 1 when it is gone or was replaced
 * (its remaining children vanished with it), -1 on error.
 */
static int
reopen(struct scan *s, struct as_err *err)
{
	struct frame *f = &s->fr[s->nfr - 1], *a = f;
	struct stat sb;
	size_t skip;
	int fd;

	while (a > s->fr && a->fd == -1)
		a--;
	skip = a->plen ? a->plen + 1 : 0;
	s->path[f->plen] = '\0';
	fd = scan_open_beneath(a->fd, s->path + skip,
	    O_RDONLY | O_DIRECTORY | O_NONBLOCK);
	if (fd == -1) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP ||
		    errno == EXDEV)
			return 1;
		return as_err_sys(err, errno, "open '%s'", disp(s));
	}
	if (fstat(fd, &sb) == -1 || (scan_fix_ino(&sb, s->dev),
	    sb.st_ino != f->ino) || (f->dev != UINT64_MAX &&
	    sb.st_dev != f->dev)) {
		close(fd);
		return 1;
	}
	f->fd = fd;
	return 0;
}

static int
scan_dir(struct scan *s, int dirfd, const char *name, size_t plen,
    struct as_err *err)
{
	const struct cat_entry *b;
	struct cat_entry e;
	struct stat sb;
	int fd, e2, rc;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		if (errno == ENOTDIR || errno == ELOOP)
			return 1;	/* replaced since the lstat */
		return as_err_sys(err, errno, "open '%s'", disp(s));
	}
	if (fstat(fd, &sb) == -1) {
		e2 = errno;
		close(fd);
		return as_err_sys(err, e2, "stat '%s'", disp(s));
	}
	scan_fix_ino(&sb, s->dev);
	b = base_at(s, plen);
	if (b != NULL && scan_same(b, &sb))
		add_reused(s, plen, &sb, b);
	else {
		if (scan_xattrs(fd, 0, &s->xa, &s->xattrs) == -1) {
			e2 = errno;
			close(fd);
			return as_err_sys(err, e2, "read xattrs of '%s'",
			    disp(s));
		}
		scan_fill(&e, &sb);
		add(s, plen, &e, NULL, 0, s->xattrs.data, s->xattrs.len,
		    NULL, 0);
	}
	if (sb.st_dev != s->dev && (s->flags & DIR_SCAN_XDEV) == 0) {
		/* a mount point not to cross: kept, empty (rsync -x) */
		close(fd);
		return 0;
	}
	if (s->narrow && s->fr[s->nfr - 1].kind != FR_FULL &&
	    b != NULL && S_ISDIR(b->mode) && b->ino == sb.st_ino) {
		/*
		 * A directory the base has: listed if the journal says it
		 * changed or its times say so (a directory made again that
		 * got the old inode number), else its entries come from the
		 * base (but for the way down to changed directories below).
		 */
		rc = only_has(s, s->path, plen) || !scan_same(b, &sb) ?
		    push_kind(s, fd, plen,
		    sb.st_ino, sb.st_dev, FR_LIST, 0, 0, err) :
		    push_kind(s, fd, plen, sb.st_ino, sb.st_dev, FR_CARRY,
		    (size_t)(b - s->base->ents) + 1, sub_end(s->base,
		    (size_t)(b - s->base->ents)), err);
	} else
		/* new, or replaced: no event told what was made in it */
		rc = push(s, fd, plen, &sb, err);
	if (rc == -1) {
		close(fd);
		return -1;
	}
	return 0;
}

static int
scan_reg(struct scan *s, int dirfd, const char *name, size_t plen,
    const struct stat *lsb, struct as_err *err)
{
	const struct cat_entry *b;
	struct cat_entry e;
	struct stat a, z;
	uint64_t nb;
	int fd, tries, rc, e2, notpit = 0;

	b = base_at(s, plen);
	if (b == NULL || b->ino != lsb->st_ino)
		b = base_by_ino(s, lsb);
	if (b != NULL && scan_same(b, lsb) &&
	    ((s->flags & DIR_SCAN_NOHASH) != 0 || (s->base_hashes &&
	    b->nblocks == scan_nblocks(b->size, s->bs)))) {
		add_reused(s, plen, lsb, b);
		return 0;
	}
	if ((s->flags & (DIR_SCAN_NOHASH | DIR_SCAN_DEFER)) != 0) {
		/*
		 * DEFER: the sender reads the file anyway and hashes what it
		 * sends (dir_send, LIVE); zero hashes stand in until then.
		 */
		nb = 0;
		scan_fill(&e, lsb);
		if ((s->flags & DIR_SCAN_NOHASH) == 0) {
			nb = scan_nblocks((uint64_t)lsb->st_size, s->bs);
			if (nb > UINT32_MAX)
				return as_err_set(err, AS_E_LIMIT, 0, "'%s' "
				    "has more than 2^32 blocks of %u bytes",
				    disp(s), s->bs);
			e.flags |= CAT_EF_UNHASHED;
		}
		if ((rc = xattrs_at(s, dirfd, name, err)) != 0)
			return rc == 1 ? 0 : -1;
		add(s, plen, &e, NULL, 0, s->xattrs.data, s->xattrs.len,
		    NULL, (uint32_t)nb);
		return 0;
	}
	fd = scan_open_file(dirfd, name);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP || errno == ENXIO)
			return 1;	/* replaced since the lstat */
		return as_err_sys(err, errno, "open '%s'", disp(s));
	}
	s->st->files_read++;
	/* a file read in one go gains nothing from more read-ahead */
	if ((uint64_t)lsb->st_size > s->rlen)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (tries = 0;; tries++) {
		if (fstat(fd, &a) == -1)
			goto fail;
		scan_fix_ino(&a, s->dev);
		if (!S_ISREG(a.st_mode)) {
			close(fd);
			return 1;
		}
		nb = scan_nblocks((uint64_t)a.st_size, s->bs);
		if (nb > UINT32_MAX) {
			close(fd);
			return as_err_set(err, AS_E_LIMIT, 0, "'%s' has more "
			    "than 2^32 blocks of %u bytes", disp(s), s->bs);
		}
		if (scan_xattrs(fd, 0, &s->xa, &s->xattrs) == -1) {
			e2 = errno;
			close(fd);
			return as_err_sys(err, e2, "read xattrs of '%s'",
			    disp(s));
		}
		buf_reset(&s->hashes);
		buf_reserve(&s->hashes, (size_t)nb * CAT_HASH_LEN + 1);
		if (scan_hash_fd(fd, (uint64_t)a.st_size, s->bs,
		    s->hashes.data, s->rbuf, s->rlen, &s->st->bytes_read) == -1)
			goto fail;
		if (fstat(fd, &z) == -1)
			goto fail;
		scan_fix_ino(&z, s->dev);
		if (z.st_ino == a.st_ino && z.st_size == a.st_size &&
		    z.st_mtim.tv_sec == a.st_mtim.tv_sec &&
		    z.st_mtim.tv_nsec == a.st_mtim.tv_nsec &&
		    z.st_ctim.tv_sec == a.st_ctim.tv_sec &&
		    z.st_ctim.tv_nsec == a.st_ctim.tv_nsec)
			break;
		if (tries + 1 == SCAN_TRIES) {
			notpit = 1;
			break;
		}
	}
	close(fd);
	scan_fill(&e, &a);
	if (notpit) {
		e.flags |= CAT_EF_NOTPIT;
		s->st->notpit++;
	}
	add(s, plen, &e, NULL, 0, s->xattrs.data, s->xattrs.len,
	    s->hashes.data, (uint32_t)nb);
	return 0;
fail:
	e2 = errno;
	close(fd);
	return as_err_sys(err, e2, "read '%s'", disp(s));
}

static int
scan_other(struct scan *s, int dirfd, const char *name, size_t plen,
    const struct stat *sb, struct as_err *err)
{
	const struct cat_entry *b;
	struct cat_entry e;
	ssize_t n;
	int rc;

	b = base_at(s, plen);
	if (b != NULL && scan_same(b, sb)) {
		add_reused(s, plen, sb, b);
		return 0;
	}
	n = 0;
	if (S_ISLNK(sb->st_mode)) {
		n = readlinkat(dirfd, name, s->link, sizeof(s->link));
		if (n == -1) {
			if (errno == ENOENT)
				return 0;
			if (errno == EINVAL)
				return 1;	/* no longer a symlink */
			return as_err_sys(err, errno, "read link '%s'",
			    disp(s));
		}
		if ((size_t)n > AS_PATH_MAX)
			return as_err_set(err, AS_E_LIMIT, 0, "symlink '%s' "
			    "has a target longer than %d bytes", disp(s),
			    AS_PATH_MAX);
		s->link[n] = '\0';
	}
	if ((rc = xattrs_at(s, dirfd, name, err)) != 0)
		return rc == 1 ? 0 : -1;
	scan_fill(&e, sb);
	add(s, plen, &e, s->link, (size_t)n, s->xattrs.data, s->xattrs.len,
	    NULL, 0);
	return 0;
}

/*
 * A narrowed scan copies the entries of directories without events, but
 * a hard-linked file is one inode under several names: written through
 * one of them (or a name outside the tree), the others' directories
 * heard nothing, and a new or removed link changes the link count of
 * names elsewhere.  So the directories that hold a hard-linked entry are
 * always listed (scan_run), and when an entry stat'ed here is or was
 * hard-linked and is not exactly as in the base, the copies may be
 * stale: the whole tree is scanned again (dir_scan_narrow).  The drift
 * check (dir_scan_each) compares what it stat'ed anyway.
 */
static void
check_links(struct scan *s, size_t plen, const struct stat *sb)
{
	const struct cat_entry *b = base_at(s, plen);

	if (s->each != NULL || s->relisted)
		return;
	if ((sb->st_nlink > 1 || (b != NULL && b->nlink > 1)) &&
	    (b == NULL || !scan_same(b, sb) || b->nlink != sb->st_nlink))
		s->relisted = 1;
}

/* One child of the top frame; s->path holds its path, plen bytes. */
static int
scan_child(struct scan *s, int dirfd, const char *name, size_t plen,
    struct as_err *err)
{
	struct stat sb;
	int tries, rc;

	for (tries = 0; tries < SCAN_TRIES; tries++) {
		if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW |
		    AT_NO_AUTOMOUNT) == -1) {
			if (errno == ENOENT)
				return 0;
			return as_err_sys(err, errno, "stat '%s'", disp(s));
		}
		scan_fix_ino(&sb, s->dev);
		if (tries == 0)
			s->st->entries++;
		if (s->narrow && !S_ISDIR(sb.st_mode))
			check_links(s, plen, &sb);
		switch (sb.st_mode & S_IFMT) {
		case S_IFDIR:
			rc = scan_dir(s, dirfd, name, plen, err);
			break;
		case S_IFREG:
			rc = scan_reg(s, dirfd, name, plen, &sb, err);
			break;
		case S_IFLNK:
		case S_IFIFO:
		case S_IFSOCK:
		case S_IFCHR:
		case S_IFBLK:
			rc = scan_other(s, dirfd, name, plen, &sb, err);
			break;
		default:
			return as_err_set(err, AS_E_UNSUPPORTED, 0,
			    "'%s' has unknown type 0%o", disp(s),
			    sb.st_mode & S_IFMT);
		}
		if (rc != 1)
			return rc;
	}
	return as_err_set(err, AS_E_NOTCONSISTENT, 0,
	    "'%s' keeps changing its type", disp(s));
}

/* Visit f's next child (f is the top frame, its descriptor open). */
static int
visit_next(struct scan *s, struct frame *f, struct as_err *err)
{
	const char *name;
	size_t nlen, plen;

	name = (const char *)s->names.data + s->kids[f->first + f->next++];
	nlen = strlen(name);
	plen = f->plen;
	if (plen + (plen != 0) + nlen > AS_PATH_MAX) {
		s->path[plen] = '\0';
		return as_err_set(err, AS_E_LIMIT, 0, "path '%s/%s' is longer "
		    "than %d bytes", disp(s), name, AS_PATH_MAX);
	}
	if (plen != 0)
		s->path[plen++] = '/';
	memcpy(s->path + plen, name, nlen + 1);
	return scan_child(s, f->fd, name, plen + nlen, err);
}

static int
walk(struct scan *s, struct as_err *err)
{
	struct frame *f;
	int rc;

	while (s->nfr > 0) {
		f = &s->fr[s->nfr - 1];
		if (f->kind == FR_CARRY) {
			if (carry_step(s, err) == -1)
				return -1;
			continue;
		}
		if (f->next == f->nkids) {
			pop(s);
			continue;
		}
		if (f->fd == -1) {
			if ((rc = reopen(s, err)) == -1)
				return -1;
			if (rc == 1) {
				pop(s);
				continue;
			}
		}
		if (visit_next(s, f, err) == -1)
			return -1;
	}
	return 0;
}

/*
 * A full scan (no base, no narrowing) on several threads: the root's
 * children are cut into up to SCAN_PARTS contiguous runs, each walked
 * by whichever worker is free into a catalog of its own, and the parts
 * are appended to out in order as they complete, so the catalog is the
 * one walk() would make.  Why: the scan of a full copy runs before the
 * first byte is sent, on one CPU while the others wait; the lstat and
 * listxattr calls of different directories do not contend.  An error
 * stops new runs; the one reported is that of the first failed run in
 * path order among those walked.
 *
 * dir_scan_merge's walk is cut the same way: each run merges with its
 * own share of the base, read by a reader of its own (cat_reader_fork)
 * that starts at the first base entry at or after the run's first name
 * and stops before the next run's, and keeps its own rest; the parts'
 * rests, appended in order, are the rest of one walk.  The main thread
 * reads the base through once, ahead of the workers, only to find where
 * each share starts.  Why: an incremental's scan is the stat of every
 * entry (getdents, fstatat), 0.4 s of a 0.75 s sync of 100k files.
 *
 * A root with a single directory in it is not cut: the walk goes down
 * such a chain on the main thread and cuts the first directory with
 * several children (walk_parallel); the runs' paths, and in a merge the
 * first paths the base is read by (par.firsts), carry the chain's.
 *
 * A full scan's run that is one directory is cut again, the same way,
 * by the worker that took it (SCAN_NEST levels): a root with few
 * directories, one of them holding nearly everything (/home with one
 * big user), would otherwise be walked mostly on one thread.  Not a
 * merge's: its runs' shares of the base would need bounds of their own.
 */
#define SCAN_PARTS	64
#define SCAN_THREADS	4
#define SCAN_NEST	1
/*
 * ... when the directory it comes to has this many children: a run of
 * a few small ones is over before more threads would have started (a
 * tree of 100 x 10 directories scanned 10-15 % slower when every run
 * of one was cut again).
 */
#define SCAN_NEST_KIDS	32

struct part {
	struct catalog	 cat;
	struct catalog	 rest;		/* merge: its share of rest */
	struct cat_reader rd;		/* merge: its share of the base */
	int		 ready;		/* merge: rd is set */
	struct dir_stats st;
	struct as_err	 err;
	int		 state;		/* PART_* */
};

enum { PART_WAIT, PART_OK, PART_FAILED, PART_SKIPPED };

struct par {
	struct scan	*s;		/* the frame cut into runs: fr[top] */
	size_t		 top;
	struct part	*parts;
	size_t		 nparts;
	size_t		 next;		/* next run to take */
	int		 failed;	/* take no new run */
	int		 merge;		/* dir_scan_merge: s->rd is the base */
	char		**firsts;	/* a merge below the root: the runs'
					 * first paths (part_first) */
	pthread_mutex_t	 mu;		/* guards next, failed, states, ready */
	pthread_cond_t	 cv;
};

/* How many threads a full scan uses: $AUTOSYNC_SCAN_THREADS, else CPUs. */
static int
scan_threads(void)
{
	const char *e = getenv("AUTOSYNC_SCAN_THREADS");
	long n;

	n = e != NULL ? strtol(e, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > SCAN_THREADS ? SCAN_THREADS : (int)n;
}

/* Where run k of the root's children starts, as an index among them. */
static size_t
part_start(const struct par *p, size_t k)
{
	return p->s->fr[p->top].nkids * k / p->nparts;
}

/* The name of run k's first child. */
static const char *
part_name(const struct par *p, size_t k)
{
	const struct scan *s = p->s;

	return (const char *)s->names.data +
	    s->kids[s->fr[p->top].first + part_start(p, k)];
}

/*
 * Merge: the first path of run k, relative to the scan's root as the
 * base's paths are (the shares are read by it): at the root, the name.
 */
static const char *
part_first(const struct par *p, size_t k)
{
	return p->firsts != NULL ? p->firsts[k] : part_name(p, k);
}

/* Set w up to walk run k of the root's children (w's own stacks). */
static void
part_frame(struct par *p, struct scan *w, size_t k)
{
	const struct scan *s = p->s;
	const struct frame *r = &s->fr[p->top];
	size_t a = part_start(p, k), z = part_start(p, k + 1);
	const char *nm;
	size_t i, len;

	w->names.len = 0;
	w->nkids = 0;
	if (w->kidcap < z - a) {
		w->kidcap = z - a;
		w->kids = xreallocarray(w->kids, w->kidcap, sizeof(*w->kids));
	}
	for (i = a; i < z; i++) {
		nm = (const char *)s->names.data + s->kids[r->first + i];
		len = strlen(nm);
		w->kids[w->nkids++] = w->names.len;
		buf_add(&w->names, nm, len + 1);
	}
	if (w->frcap == 0) {
		w->frcap = 64;
		w->fr = xreallocarray(NULL, w->frcap, sizeof(*w->fr));
	}
	w->fr[0] = *r;
	w->fr[0].first = 0;
	w->fr[0].nkids = w->nkids;
	w->fr[0].next = 0;
	w->fr[0].names_mark = 0;
	w->nfr = 1;
	/* the runs' paths go on from the frame's own */
	memcpy(w->path, s->path, r->plen);
	w->path[r->plen] = '\0';
}

/*
 * Merge: set w up to read run k's share of the base, once the main
 * thread has found where it starts.  0 when the scan failed before.
 */
static int
part_base(struct par *p, struct scan *w, size_t k)
{
	struct part *pt = &p->parts[k];
	int ready;

	pthread_mutex_lock(&p->mu);
	while (!(ready = pt->ready) && !p->failed)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	if (!ready)
		return 0;
	w->rd = &pt->rd;
	w->base = &pt->rd.win;
	w->rest = &pt->rest;
	w->bcur = NULL;
	w->bused = w->bdone = w->bfail = 0;
	w->bupper = k + 1 < p->nparts ? part_first(p, k + 1) : NULL;
	w->bupper_len = w->bupper != NULL ? strlen(w->bupper) : 0;
	return 1;
}

static int	walk_parallel(struct scan *, struct as_err *);

/* Walk run k into its part: 0, -1 with its error, 1 when not started. */
static int
part_walk(struct par *p, struct scan *w, size_t k)
{
	struct part *pt = &p->parts[k];
	int rc;

	w->out = &pt->cat;
	w->st = &pt->st;
	if (p->merge && !part_base(p, w, k))
		return 1;
	part_frame(p, w, k);
	/* one directory: cut it too (walk_parallel goes down to a cut) */
	if (!p->merge && w->nest <= SCAN_NEST && w->nkids == 1)
		rc = walk_parallel(w, &pt->err);
	else
		rc = walk(w, &pt->err);
	while (w->nfr > 0)
		pop(w);
	if (p->merge) {
		if (rc == 0)
			base_drain(w);
		if (rc == 0 && w->bfail) {
			pt->err = w->berr;
			rc = as_err_prefix(&pt->err, "base catalog");
		}
		/*
		 * A share is smaller than the reader's step between two
		 * done calls: give its pages back now, or the whole mapped
		 * base would stay in memory (the pages before it too:
		 * another run still reading there maps them again).
		 */
		if (pt->rd.done != NULL)
			pt->rd.done(pt->rd.done_arg, pt->rd.off);
		cat_reader_release(&pt->rd);
	}
	return rc;
}

static void *
part_worker(void *arg)
{
	struct par *p = arg;
	const struct scan *s = p->s;
	struct scan *w = xcalloc(1, sizeof(*w));
	size_t k;
	int rc;

	w->root = s->root;
	w->nest = s->nest + 1;
	/* the cut frame's descriptor is shared: never closed by a worker */
	w->rootfd = s->fr[p->top].fd;
	w->flags = s->flags;
	w->bs = s->bs;
	w->dev = s->dev;
	w->base_hashes = s->base_hashes;
	scan_xa_init(&w->xa);
	w->rlen = s->rlen;
	w->rbuf = xmalloc_io(w->rlen);
	for (;;) {
		pthread_mutex_lock(&p->mu);
		k = p->failed ? p->nparts : p->next++;
		pthread_mutex_unlock(&p->mu);
		if (k >= p->nparts)
			break;
		rc = part_walk(p, w, k);
		pthread_mutex_lock(&p->mu);
		if (rc != 0)
			p->failed = 1;
		p->parts[k].state = rc == 0 ? PART_OK : rc == 1 ?
		    PART_SKIPPED : PART_FAILED;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	scan_free(w);
	return NULL;
}

/* Merge: part k's reader starts at m. */
static void
part_ready(struct par *p, size_t k, const struct cat_reader_mark *m)
{
	cat_reader_fork(&p->parts[k].rd, p->s->rd, m);
	pthread_mutex_lock(&p->mu);
	p->parts[k].ready = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/*
 * Merge: read the base (past the root's entry) until every run's share
 * has a reader.  Returns 0, or -1 with s->berr (and no new run taken).
 */
static int
part_marks(struct par *p)
{
	struct scan *s = p->s;
	struct cat_reader_mark m;
	const struct cat_entry *e;
	const char *nm = part_first(p, 1);
	size_t k = 1, nmlen = strlen(nm);
	int r;

	memset(&m, 0, sizeof(m));
	cat_reader_mark(s->rd, &m);
	part_ready(p, 0, &m);
	while (k < p->nparts) {
		r = cat_reader_next(s->rd, &e, &s->berr);
		if (r == -1) {
			s->bfail = 1;
			pthread_mutex_lock(&p->mu);
			p->failed = 1;
			pthread_cond_broadcast(&p->cv);
			pthread_mutex_unlock(&p->mu);
			break;
		}
		/* nm: run k's first name, looked up once per run */
		for (; k < p->nparts && (r == 0 ||
		    path_cmp(catalog_path(&s->rd->win, e), e->path_len, nm,
		    nmlen) >= 0); k++) {
			part_ready(p, k, &m);
			if (k + 1 < p->nparts) {
				nm = part_first(p, k + 1);
				nmlen = strlen(nm);
			}
			/*
			 * Each share's reader maps its pages again: give
			 * back what this read mapped up to here, or up to
			 * a reader's step (1 MiB) more stays in memory.
			 */
			if (s->rd->done != NULL)
				s->rd->done(s->rd->done_arg, m.off);
		}
		cat_reader_mark(s->rd, &m);
	}
	cat_reader_mark_release(&m);
	return s->bfail ? -1 : 0;
}

static void
stats_add(struct dir_stats *to, const struct dir_stats *from)
{
	to->entries += from->entries;
	to->files_read += from->files_read;
	to->bytes_read += from->bytes_read;
	to->notpit += from->notpit;
}

static void
firsts_free(struct par *p)
{
	size_t k;

	if (p->firsts != NULL)
		for (k = 0; k < p->nparts; k++)
			free(p->firsts[k]);
	free(p->firsts);
	p->firsts = NULL;
}

/*
 * walk() of the frame s->fr[top] (the top one, not yet visited) on
 * several threads: a full scan, or dir_scan_merge (s->rd) once the
 * root's base entry is retired (top 0).  The frame is left as it was.
 */
static int
walk_parallel_at(struct scan *s, size_t top, struct as_err *err)
{
	pthread_t tid[SCAN_THREADS];
	struct par p;
	size_t k, j, nkids = s->fr[top].nkids;
	int n = scan_threads(), started = 0, rc = 0, i, state, marks = 0;

	if (n < 2 || nkids < 2 || s->fr[top].fd == -1)
		return walk(s, err);
	memset(&p, 0, sizeof(p));
	p.s = s;
	p.top = top;
	p.merge = s->rd != NULL;
	p.nparts = nkids < SCAN_PARTS ? nkids : SCAN_PARTS;
	p.parts = xcalloc(p.nparts, sizeof(*p.parts));
	if (p.merge && top > 0) {
		p.firsts = xcalloc(p.nparts, sizeof(*p.firsts));
		for (k = 0; k < p.nparts; k++)
			p.firsts[k] = xasprintf("%.*s/%s",
			    (int)s->fr[top].plen, s->path, part_name(&p, k));
	}
	for (k = 0; k < p.nparts; k++) {
		catalog_init(&p.parts[k].cat);
		catalog_init(&p.parts[k].rest);
	}
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	for (i = 0; i < n; i++)
		if (pthread_create(&tid[started], NULL, part_worker, &p) == 0)
			started++;
	if (started == 0) {
		/* no thread to be had: one walk, here */
		pthread_mutex_destroy(&p.mu);
		pthread_cond_destroy(&p.cv);
		free(p.parts);
		firsts_free(&p);
		return walk(s, err);
	}
	if (p.merge)
		marks = part_marks(&p);
	/* append the runs in order as they complete */
	for (k = 0; k < p.nparts; k++) {
		pthread_mutex_lock(&p.mu);
		while ((state = p.parts[k].state) == PART_WAIT &&
		    (k < p.next || !p.failed))
			pthread_cond_wait(&p.cv, &p.mu);
		pthread_mutex_unlock(&p.mu);
		if (state != PART_OK)
			break;	/* failed, or never to be taken */
		catalog_append(s->out, &p.parts[k].cat);
		catalog_release(&p.parts[k].cat);
		if (p.merge) {
			catalog_append(s->rest, &p.parts[k].rest);
			catalog_release(&p.parts[k].rest);
		}
		stats_add(s->st, &p.parts[k].st);
	}
	for (i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	/* a bad base (marks -1) is said after the walk, as by walk() */
	if (marks == 0 && k < p.nparts) {
		/* a run at k or after failed; all are done now */
		for (j = k; j < p.nparts; j++)
			if (p.parts[j].state == PART_FAILED) {
				if (err != NULL)
					*err = p.parts[j].err;
				break;
			}
		rc = -1;
	}
	for (j = 0; j < p.nparts; j++) {
		catalog_release(&p.parts[j].cat);
		catalog_release(&p.parts[j].rest);
		if (p.parts[j].ready && p.parts[j].state != PART_OK &&
		    p.parts[j].state != PART_FAILED)
			cat_reader_release(&p.parts[j].rd);
	}
	/* every share was read by its run (the base reader is not done) */
	s->bdone = 1;
	s->bcur = NULL;
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.cv);
	free(p.parts);
	firsts_free(&p);
	/*
	 * The parts grew in the workers' malloc arenas and were freed
	 * there; that memory stays mapped unless handed back, and the
	 * peak of a sync comes after the scan.  Once, by the outer cut.
	 */
	if (s->nest == 0)
		malloc_trim(0);
	return rc;
}

/*
 * A merge: may the base be cut at the top frame (the root, or the end of
 * a one-directory chain)?  The reader must be just past the frame's
 * directory: its entry, when the base has one, is retired here.
 */
static int
base_cut_ready(struct scan *s)
{
	const struct frame *f = &s->fr[s->nfr - 1];
	const struct cat_entry *b = s->bcur;

	if (s->bdone || s->bfail)
		return 0;
	if (b != NULL) {
		if (path_cmp(catalog_path(&s->rd->win, b), b->path_len,
		    s->path, f->plen) != 0)
			return 0;	/* a base entry after it is read */
		base_retire(s);
	}
	return 1;
}

/*
 * walk() on several threads from the root frame (see walk_parallel_at).
 * A scan whose root holds one directory and nothing else (a tree kept
 * under one top directory: /srv/data/home) goes down that chain first
 * and cuts the first directory with several children, or it would run
 * on one thread; a merge reads the base along the chain as walk() does
 * and cuts it there too (base_cut_ready).  Called with the root's frame
 * alone on the stack (scan_run, once base_parallel said yes), or by a
 * full scan's worker with its run of one directory (part_walk).
 */
static int
walk_parallel(struct scan *s, struct as_err *err)
{
	struct frame *f;
	size_t nfr, top;
	int rc;

	if (scan_threads() < 2)
		return walk(s, err);
	for (;;) {
		f = &s->fr[s->nfr - 1];
		if (f->kind != FR_FULL || f->next != 0 || f->nkids != 1 ||
		    f->fd == -1)
			break;
		nfr = s->nfr;
		if (visit_next(s, f, err) == -1)
			return -1;
		if (s->nfr == nfr)
			break;	/* not a directory (or gone): nothing to cut */
	}
	if (s->nfr == 1)
		return walk_parallel_at(s, 0, err);
	top = s->nfr - 1;
	if (s->fr[top].next == 0 && s->fr[top].nkids >= (s->nest > 0 ?
	    SCAN_NEST_KIDS : 2) && (s->rd == NULL || base_cut_ready(s))) {
		if ((rc = walk_parallel_at(s, top, err)) != 0)
			return rc;
		/* cut and walked; or walked whole on one thread (nfr 0) */
		if (s->nfr == top + 1)
			s->fr[top].next = s->fr[top].nkids;
	}
	/* the chain's frames, each visited: walk() pops them */
	return walk(s, err);
}

/* What scan_run does besides the tree and the base. */
struct scan_how {
	void		(*each)(void *, const struct cat_entry_in *);
	void		*each_arg;
	int		 narrow;	/* list only dirs[0..ndirs) */
	const char *const *dirs;
	size_t		 ndirs;
};

static int	scan_run(const char *, const struct catalog *, uint32_t, int,
		    struct catalog *, const struct scan_how *,
		    struct dir_stats *, struct as_err *);
static int	scan_run_rd(const char *, const struct catalog *,
		    struct cat_reader *, struct catalog *, uint32_t, int,
		    struct catalog *, const struct scan_how *,
		    struct dir_stats *, struct as_err *);

int
dir_scan(const char *root, const struct catalog *base, uint32_t block_size,
    int flags, struct catalog *out, struct dir_stats *st, struct as_err *err)
{
	struct scan_how h;

	memset(&h, 0, sizeof(h));
	return scan_run(root, base, block_size, flags, out, &h, st, err);
}

int
dir_scan_narrow(const char *root, const struct catalog *base,
    const char *const *dirs, size_t ndirs, uint32_t block_size, int flags,
    struct catalog *out, struct dir_stats *st, struct as_err *err)
{
	struct scan_how h;
	struct cat_header hdr;
	struct dir_stats dummy;
	int rc;

	if (st == NULL) {
		memset(&dummy, 0, sizeof(dummy));
		st = &dummy;
	}
	memset(&h, 0, sizeof(h));
	h.narrow = 1;
	h.dirs = dirs;
	h.ndirs = ndirs;
	rc = scan_run(root, base, block_size, flags, out, &h, st, err);
	if (rc != 2)
		return rc;
	/* a hard-link group changed (check_links): everything again */
	st->rescans++;
	hdr = out->hdr;
	out->hdr.source = NULL;
	catalog_release(out);
	out->hdr = hdr;
	h.narrow = 0;
	return scan_run(root, base, block_size, flags, out, &h, st, err);
}

int
dir_scan_each(const char *root, const struct catalog *base,
    uint32_t block_size, int flags,
    void (*fn)(void *arg, const struct cat_entry_in *in), void *arg,
    struct dir_stats *st, struct as_err *err)
{
	return dir_scan_each_narrow(root, base, NULL, 0, 0, block_size, flags,
	    fn, arg, st, err);
}

int
dir_scan_each_narrow(const char *root, const struct catalog *base,
    const char *const *dirs, size_t ndirs, int narrow, uint32_t block_size,
    int flags, void (*fn)(void *arg, const struct cat_entry_in *in),
    void *arg, struct dir_stats *st, struct as_err *err)
{
	struct scan_how h;
	struct catalog hdr;
	int rc;

	memset(&h, 0, sizeof(h));
	h.each = fn;
	h.each_arg = arg;
	h.narrow = narrow;
	h.dirs = dirs;
	h.ndirs = ndirs;
	catalog_init(&hdr);
	rc = scan_run(root, base, block_size, flags, &hdr, &h, st, err);
	catalog_release(&hdr);
	return rc;
}

int
dir_scan_merge(const char *root, struct cat_reader *rd, uint32_t block_size,
    int flags, struct catalog *out, struct catalog *rest,
    struct dir_stats *st, struct as_err *err)
{
	static const struct scan_how plain;

	return scan_run_rd(root, &rd->win, rd, rest, block_size, flags, out,
	    &plain, st, err);
}

static int
only_cmp(const void *a, const void *b)
{
	const struct only *x = a, *y = b;

	return path_cmp(x->p, x->len, y->p, y->len);
}

/*
 * The directories a narrowed scan lists: the caller's, and those whose
 * base entries cannot be copied on the journal's word: the parents of
 * hard-linked entries (check_links) and of files whose content was not
 * point-in-time.  0 when the scan cannot be narrowed (no usable base).
 */
static int
only_build(struct scan *s, const struct scan_how *h)
{
	const struct catalog *b = s->base;
	const struct cat_entry *e;
	size_t i, n = 0, k;

	if (b == NULL || b->n == 0 || b->ents[0].path_len != 0 ||
	    (s->flags & DIR_SCAN_REHASH) != 0 || (!s->base_hashes &&
	    (s->flags & DIR_SCAN_NOHASH) == 0))
		return 0;
	s->only = xreallocarray(NULL, h->ndirs + 16, sizeof(*s->only));
	k = h->ndirs + 16;
	for (i = 0; i < h->ndirs; i++) {
		s->only[n].p = h->dirs[i];
		s->only[n++].len = strlen(h->dirs[i]);
	}
	for (i = 1; i < b->n; i++) {
		e = &b->ents[i];
		if (S_ISDIR(e->mode) || (e->nlink <= 1 &&
		    (e->flags & (CAT_EF_NOTPIT | CAT_EF_UNHASHED)) == 0))
			continue;
		if (n == k)
			s->only = xreallocarray(s->only, k *= 2,
			    sizeof(*s->only));
		s->only[n].p = catalog_path(b, e);
		s->only[n].len = path_parent_len(s->only[n].p, e->path_len);
		n++;
	}
	qsort(s->only, n, sizeof(*s->only), only_cmp);
	for (i = 1, k = n > 0; i < n; i++)
		if (only_cmp(&s->only[i], &s->only[k - 1]) != 0)
			s->only[k++] = s->only[i];
	s->nonly = k;
	return 1;
}

/* Returns 0, -1 with err, or 2: a narrowed scan must be done in full. */
static int
scan_run(const char *root, const struct catalog *base, uint32_t block_size,
    int flags, struct catalog *out, const struct scan_how *h,
    struct dir_stats *st, struct as_err *err)
{
	return scan_run_rd(root, base, NULL, NULL, block_size, flags, out, h,
	    st, err);
}

/*
 * Whether walk_parallel can take the walk: a full scan; or a merge with
 * the base reader just past the root's entry (retired here), when the
 * base is read at all.
 */
static int
base_parallel(struct scan *s)
{
	if (s->each != NULL || s->narrow)
		return 0;
	if (s->rd == NULL)
		return s->base == NULL;
	return (s->flags & DIR_SCAN_REHASH) == 0 && base_cut_ready(s);
}

/*
 * dir_scan_merge after the walk: a new file without hashes that is a
 * base file moved (same inode, size and times, one link) takes its
 * hashes, as base_by_ino does in a whole-catalog scan.
 */
static void
rest_moved(struct scan *s)
{
	struct cat_entry *e;
	const struct cat_entry *b;
	size_t i;
	long j;

	for (i = 0; i < s->out->n; i++) {
		e = &s->out->ents[i];
		if ((e->flags & CAT_EF_UNHASHED) == 0 || e->nlink != 1 ||
		    !s->base_hashes)
			continue;
		if ((j = catalog_find_ino(s->rest, e->ino)) < 0)
			continue;
		b = &s->rest->ents[j];
		if (b->nlink != 1 || (b->flags & CAT_EF_NOTPIT) != 0 ||
		    !S_ISREG(b->mode) || b->size != e->size ||
		    b->nblocks != e->nblocks || b->mtime_sec != e->mtime_sec ||
		    b->mtime_nsec != e->mtime_nsec ||
		    b->ctime_sec != e->ctime_sec ||
		    b->ctime_nsec != e->ctime_nsec)
			continue;
		if (e->nblocks != 0)
			memcpy(catalog_hashes_of(s->out, e),
			    catalog_hashes_of(s->rest, b),
			    (size_t)e->nblocks * CAT_HASH_LEN);
		e->flags &= ~CAT_EF_UNHASHED;
	}
	catalog_drop_ino_index(s->rest);
}

static int
scan_run_rd(const char *root, const struct catalog *base,
    struct cat_reader *rd, struct catalog *rest, uint32_t block_size,
    int flags, struct catalog *out, const struct scan_how *h,
    struct dir_stats *st, struct as_err *err)
{
	struct scan *s;
	struct dir_stats dummy;
	struct cat_entry e;
	struct stat sb;
	const struct cat_entry *b;
	int rc = -1, fd;

	if (block_size < AS_BLOCK_MIN || block_size > AS_BLOCK_MAX ||
	    (block_size & (block_size - 1)) != 0)
		return as_err_set(err, AS_E_USAGE, 0,
		    "invalid block size %u", block_size);
	if (st == NULL) {
		memset(&dummy, 0, sizeof(dummy));
		st = &dummy;
	}
	out->hdr.kind = AS_KIND_DIR;
	out->hdr.block_size = block_size;
	free(out->hdr.source);
	out->hdr.source = xstrdup(root);

	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return as_err_sys(err, errno, "open '%s'", root);
	if (fstat(fd, &sb) == -1) {
		rc = as_err_sys(err, errno, "stat '%s'", root);
		close(fd);
		return rc;
	}
	s = xcalloc(1, sizeof(*s));
	s->root = root;
	s->rootfd = fd;
	s->flags = flags;
	s->bs = block_size;
	s->dev = sb.st_dev;
	s->base = base;
	s->base_hashes = base != NULL && base->hdr.block_size == block_size;
	s->rd = rd;
	s->rest = rest;
	s->out = out;
	s->each = h->each;
	s->each_arg = h->each_arg;
	s->narrow = h->narrow && only_build(s, h);
	s->st = st;
	scan_xa_init(&s->xa);
	s->rlen = block_size > SCAN_CHUNK ? block_size : SCAN_CHUNK;
	s->rbuf = xmalloc_io(s->rlen);

	st->entries++;
	b = base_at(s, 0);
	if (b != NULL && scan_same(b, &sb))
		add_reused(s, 0, &sb, b);
	else if (scan_xattrs(fd, 0, &s->xa, &s->xattrs) == -1) {
		as_err_sys(err, errno, "read xattrs of '%s'", root);
		goto out;
	} else {
		scan_fill(&e, &sb);
		add(s, 0, &e, NULL, 0, s->xattrs.data, s->xattrs.len, NULL,
		    0);
	}
	if (s->narrow && (b == NULL || b->ino != sb.st_ino))
		s->narrow = 0;	/* another tree: what the journal saw is moot */
	if (s->narrow && !only_has(s, "", 0))
		rc = push_kind(s, fd, 0, sb.st_ino, sb.st_dev, FR_CARRY, 1,
		    base->n, err);
	else
		rc = push_kind(s, fd, 0, sb.st_ino, sb.st_dev, s->narrow ?
		    FR_LIST : FR_FULL, 0, 0, err);
	if (rc == -1)
		goto out;
	rc = base_parallel(s) ? walk_parallel(s, err) : walk(s, err);
	if (rc == 0 && s->relisted)
		rc = 2;
	if (rc == 0 && rd != NULL) {
		base_drain(s);
		if (s->bfail) {
			if (err != NULL)
				*err = s->berr;
			rc = as_err_prefix(err, "base catalog");
		} else {
			catalog_trim(rest);
			rest_moved(s);
		}
	}
	if (rc == 0)
		catalog_trim(out);
	/* base_by_ino's index of the whole base: not needed past here */
	if (base != NULL)
		catalog_drop_ino_index((struct catalog *)(uintptr_t)base);
out:
	scan_free(s);
	close(fd);
	return rc;
}
