/*
 * changes_fanotify.c - the change journal heard through fanotify: one
 * file system mark per file system of the tree, events that name a
 * directory by its file handle, turned into paths (changes.h).
 */
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/xmalloc.h"
#include "format/path.h"
#include "service/changes_int.h"
#include "base/banned.h"

/*
 * What is heard: what the inotify journal hears (IN_CLOSE_WRITE as
 * FAN_CLOSE_WRITE), events on directories included (FAN_ONDIR).  No
 * FAN_DELETE_SELF/FAN_MOVE_SELF: a directory that goes or moves is
 * heard in its parent (FAN_DELETE, FAN_MOVED_FROM with FAN_ONDIR),
 * which is where the root's own move is noticed too.
 */
#define FAN_MASK	(FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | \
	FAN_MOVED_TO | FAN_MODIFY | FAN_ATTRIB | FAN_CLOSE_WRITE | FAN_ONDIR)
#define FAN_BUFSIZE	(64 * 1024)
#define CACHE_BUCKETS	4096
#define CACHE_MAX	65536	/* handles remembered; beyond: forget all */
/*
 * A directory outside the tree that sent IGNORE_AFTER events gets an
 * ignore mark (FAN_MARK_IGNORE, Linux 6.0): the kernel stops queueing
 * its events and its children's.  At most IGNORE_MAX (each pins an
 * inode); none on the root's ancestors (the root's move is heard
 * there).  A directory moved anywhere we hear it drops them all: an
 * ignored one may have come into the tree.
 */
#define IGNORE_AFTER	64
#define IGNORE_MAX	1024

/*
 * Where a file system is mounted in the tree: the root's mount, or one
 * below.  No descriptor is kept open on it between reads: that would
 * keep it from being unmounted ("target is busy"), which a journal must
 * not do.
 */
struct fan_mnt {
	char		*path;
	int		 fd;		/* open_by_handle_at's mount_fd, open
					 * during one read, or -1 */
};

/*
 * A file system of the tree, marked, and its mounts in the tree: more
 * than one when a part of it is bind-mounted below the root (a path is
 * what a handle is as seen through one mount).
 */
struct fan_fs {
	unsigned char	 fsid[8];	/* statfs f_fsid: what events name */
	dev_t		 dev;
	struct fan_mnt	*m;
	size_t		 nm;
};

/* A directory handle and where it is: rel, or NULL (outside the tree). */
struct fan_ent {
	struct fan_ent	*next;
	char		*rel;
	uint32_t	 hits;		/* events, while outside */
	uint32_t	 hash;
	uint32_t	 fs;		/* index in fs[] */
	int		 htype;
	uint32_t	 hlen;
	unsigned char	 h[];
};

struct fan {
	struct fan_fs	*fs;
	size_t		 nfs;
	dev_t		 root_dev;
	ino_t		 root_ino;
	char		*real;		/* the root as the kernel prints it */
	size_t		 rlen;
	struct fan_ent	*tab[CACHE_BUCKETS];
	size_t		 nent;
	size_t		 nign;		/* ignore marks */
	int		 noign;		/* the kernel has no FAN_MARK_IGNORE */
	char		*buf;		/* FAN_BUFSIZE, for read() */
};

/*
 * A failed call that makes fanotify unusable here, with what it needs:
 * "fanotify_mark '/srv': Operation not permitted (needs CAP_SYS_ADMIN)".
 */
static int
fail_sys(struct as_err *err, int e, const char *call, const char *path)
{
	const char *hint = "";

	if (e == EPERM && strcmp(call, "open_by_handle_at") == 0)
		hint = " (needs CAP_DAC_READ_SEARCH)";
	else if (e == EPERM)
		hint = " (needs CAP_SYS_ADMIN)";
	else if (e == EOPNOTSUPP || e == ENODEV)
		hint = " (no file handles here)";
	else if (e == EXDEV)
		hint = " (a subvolume?)";
	else if (e == EMFILE && strcmp(call, "fanotify_init") == 0)
		hint = " (max_user_groups?)";
	if (path == NULL)
		return as_err_set(err, as_errcode_from_errno(e), e, "%s: %s%s",
		    call, strerror(e), hint);
	return as_err_set(err, as_errcode_from_errno(e), e, "%s '%s': %s%s",
	    call, path, strerror(e), hint);
}

/* The path of an open descriptor, as /proc/self/fd shows it, or NULL. */
static char *
fd_path(int fd)
{
	char link[64], buf[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, sizeof(buf));
	if (n <= 0 || (size_t)n >= sizeof(buf))
		return NULL;
	return xstrndup(buf, (size_t)n);
}

static void
cache_clear(struct fan *f)
{
	struct fan_ent *e, *next;
	size_t i;

	for (i = 0; i < CACHE_BUCKETS; i++) {
		for (e = f->tab[i]; e != NULL; e = next) {
			next = e->next;
			free(e->rel);
			free(e);
		}
		f->tab[i] = NULL;
	}
	f->nent = 0;
}

/* Close the mount descriptors a read opened. */
static void
fs_close(struct fan *f)
{
	size_t i, k;

	for (i = 0; i < f->nfs; i++)
		for (k = 0; k < f->fs[i].nm; k++) {
			if (f->fs[i].m[k].fd >= 0)
				close(f->fs[i].m[k].fd);
			f->fs[i].m[k].fd = -1;
		}
}

static void
teardown(struct fan *f)
{
	size_t i, k;

	cache_clear(f);
	fs_close(f);
	for (i = 0; i < f->nfs; i++) {
		for (k = 0; k < f->fs[i].nm; k++)
			free(f->fs[i].m[k].path);
		free(f->fs[i].m);
	}
	free(f->fs);
	f->fs = NULL;
	f->nfs = 0;
	free(f->real);
	f->real = NULL;
}

/* Drop every ignore mark (the file system marks stay). */
static void
unignore(struct changes *c)
{
	struct fan *f = c->priv;

	if (f->nign > 0)
		(void)fanotify_mark(c->fd, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL);
	f->nign = 0;
}

/*
 * Mark the file system of fd (a directory at path, in the tree), or add
 * path to the mounts of one marked already.  Closes fd.
 */
static int
add_fs(struct changes *c, struct fan *f, int fd, const char *path,
    struct as_err *err)
{
	static const unsigned char zero[8];
	struct statfs sfs;
	struct stat sb;
	struct fan_fs *fs;
	size_t i;

	if (fstatfs(fd, &sfs) == -1 || fstat(fd, &sb) == -1) {
		as_err_sys(err, errno, "stat '%s'", path);
		goto fail;
	}
	if (memcmp(&sfs.f_fsid, zero, sizeof(zero)) == 0) {
		as_err_set(err, AS_E_UNSUPPORTED, 0, "fanotify: '%s' is on "
		    "a file system without an fsid", path);
		goto fail;
	}
	for (i = 0; i < f->nfs; i++) {
		if (memcmp(f->fs[i].fsid, &sfs.f_fsid, 8) != 0)
			continue;
		if (f->fs[i].dev == sb.st_dev) {
			fs = &f->fs[i];
			fs->m = xreallocarray(fs->m, fs->nm + 1,
			    sizeof(*fs->m));
			fs->m[fs->nm].path = xstrdup(path);
			fs->m[fs->nm++].fd = -1;
			close(fd);
			return 0;
		}
		/* events could not tell them apart */
		as_err_set(err, AS_E_UNSUPPORTED, 0, "fanotify: '%s' has the "
		    "fsid of another file system of the tree", path);
		goto fail;
	}
	if (fanotify_mark(c->fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
	    FAN_MASK, fd, NULL) == -1) {
		fail_sys(err, errno, "fanotify_mark", path);
		goto fail;
	}
	f->fs = xreallocarray(f->fs, f->nfs + 1, sizeof(*f->fs));
	fs = &f->fs[f->nfs++];
	memcpy(fs->fsid, &sfs.f_fsid, sizeof(fs->fsid));
	fs->dev = sb.st_dev;
	fs->m = xmalloc(sizeof(*fs->m));
	fs->m[0].path = xstrdup(path);
	fs->m[0].fd = -1;
	fs->nm = 1;
	close(fd);
	c->nwatch++;
	return 0;
fail:
	close(fd);
	return -1;
}

/* /proc/self/mountinfo escapes a space as \040 (and tab, \n, \\). */
static void
unescape(char *s)
{
	char *d = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
			    (s[3] - '0'));
			s += 3;
		} else
			*d++ = *s;
	}
	*d = '\0';
}

/* Mark the file systems mounted below the root (sync scans them). */
static int
add_mounts(struct changes *c, struct fan *f, struct as_err *err)
{
	char *line = NULL, *mp, *save = NULL, *priv;
	size_t cap = 0;
	FILE *fp;
	int i, fd, rc = 0;

	if ((fp = fopen("/proc/self/mountinfo", "re")) == NULL)
		return as_err_sys(err, errno, "open '/proc/self/mountinfo'");
	priv = f->rlen == 1 ? xasprintf("/%s", AS_PRIVATE_DIR) :
	    xasprintf("%s/%s", f->real, AS_PRIVATE_DIR);
	while (rc == 0 && getline(&line, &cap, fp) != -1) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
		mp = strtok_r(line, " ", &save);
		for (i = 0; i < 4 && mp != NULL; i++)
			mp = strtok_r(NULL, " ", &save);
		if (mp == NULL)
			continue;
		unescape(mp);
		if (f->rlen > 1 && (strncmp(mp, f->real, f->rlen) != 0 ||
		    mp[f->rlen] != '/'))
			continue;
		if (strcmp(mp, f->real) == 0 || (strncmp(mp, priv,
		    strlen(priv)) == 0 && (mp[strlen(priv)] == '\0' ||
		    mp[strlen(priv)] == '/')))
			continue;
		fd = open(mp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1) {
			/* gone, or under a mount on top: not in the tree */
			if (errno == ENOENT || errno == ENOTDIR ||
			    errno == ELOOP)
				continue;
			rc = as_err_sys(err, errno, "open '%s'", mp);
			break;
		}
		rc = add_fs(c, f, fd, mp, err);
	}
	free(priv);
	free(line);
	fclose(fp);
	return rc;
}

/* Watch the tree: its root's file system and those mounted below. */
static int
setup(struct changes *c, struct fan *f, struct as_err *err)
{
	struct {
		struct file_handle fh;
		unsigned char	 h[MAX_HANDLE_SZ];
	} hb;
	struct stat sb;
	int mid, fd, rfd;

	rfd = open(c->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd == -1 || fstat(rfd, &sb) == -1) {
		as_err_sys(err, errno, "open '%s'", c->root);
		goto fail;
	}
	f->root_dev = sb.st_dev;
	f->root_ino = sb.st_ino;
	if ((f->real = fd_path(rfd)) == NULL || f->real[0] != '/') {
		as_err_set(err, AS_E_UNSUPPORTED, 0, "fanotify: no path for "
		    "'%s' in /proc/self/fd", c->root);
		goto fail;
	}
	f->rlen = strlen(f->real);
	/* handles are turned into paths: that needs CAP_DAC_READ_SEARCH */
	hb.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(rfd, "", &hb.fh, &mid, AT_EMPTY_PATH) == -1) {
		fail_sys(err, errno, "name_to_handle_at", c->root);
		goto fail;
	}
	if ((fd = open_by_handle_at(rfd, &hb.fh, O_PATH | O_CLOEXEC)) ==
	    -1) {
		fail_sys(err, errno, "open_by_handle_at", c->root);
		goto fail;
	}
	close(fd);
	/* the root's own path: its mount is the one paths are seen in */
	if (add_fs(c, f, rfd, c->root, err) == -1 ||
	    add_mounts(c, f, err) == -1)
		return -1;
	return 0;
fail:
	if (rfd >= 0)
		close(rfd);
	return -1;
}

static void
fan_close(struct changes *c)
{
	struct fan *f = c->priv;

	if (f != NULL) {
		teardown(f);
		free(f->buf);
		free(f);
	}
	c->priv = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->nwatch = 0;
}

static int
fan_open(struct changes *c, struct as_err *err)
{
	struct fan *f;

	/*
	 * A bounded queue (max_queued_events): an overflow is one event,
	 * and means "scan everything".
	 */
	c->fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME |
	    FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC);
	if (c->fd == -1)
		return fail_sys(err, errno, "fanotify_init", NULL);
	c->priv = f = xcalloc(1, sizeof(*f));
	f->buf = xmalloc(FAN_BUFSIZE);
	if (setup(c, f, err) == -1) {
		fan_close(c);
		return -1;
	}
	return 0;
}

static int
fan_rewatch(struct changes *c, struct as_err *err)
{
	struct fan *f = c->priv;

	/* everything is scanned after a rewatch: no event is missed */
	if (fanotify_mark(c->fd, FAN_MARK_FLUSH | FAN_MARK_FILESYSTEM, 0,
	    AT_FDCWD, NULL) == -1)
		return as_err_sys(err, errno, "fanotify_mark flush");
	unignore(c);
	teardown(f);
	c->nwatch = 0;
	return setup(c, f, err);
}

/* The root moved or went (its parent heard it): watch again, scan all. */
static void
root_check(struct changes *c)
{
	struct fan *f = c->priv;
	struct stat sb;

	if (stat(c->root, &sb) == -1 || sb.st_dev != f->root_dev ||
	    sb.st_ino != f->root_ino) {
		c->full = 1;
		c->rewatch = 1;
	}
}

static uint32_t
hash_of(uint32_t fs, int htype, const unsigned char *h, uint32_t hlen)
{
	uint32_t x = 2166136261u ^ fs;
	uint32_t i;

	x = (x ^ (uint32_t)htype) * 16777619u;
	for (i = 0; i < hlen; i++)
		x = (x ^ h[i]) * 16777619u;
	return x;
}

/*
 * Open a mount for handle lookups, until the end of this read.  What is
 * mounted there now must be what was marked: else the mounts changed
 * (the table's POLLPRI will say so too), and everything is scanned.
 */
static int
mnt_open(struct changes *c, const struct fan_fs *fs, struct fan_mnt *m)
{
	struct statfs sfs;
	struct stat sb;

	if (m->fd >= 0)
		return 0;
	m->fd = open(m->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->fd == -1 || fstatfs(m->fd, &sfs) == -1 ||
	    fstat(m->fd, &sb) == -1 || sb.st_dev != fs->dev ||
	    memcmp(&sfs.f_fsid, fs->fsid, sizeof(fs->fsid)) != 0) {
		if (m->fd >= 0)
			close(m->fd);
		m->fd = -1;
		c->full = 1;
		c->rewatch = 1;
		return -1;
	}
	return 0;
}

/* The part of path below the real root ("" for itself), or NULL. */
static const char *
below(const struct fan *f, const char *path)
{
	const char *r;

	if (f->rlen == 1)
		r = path + 1;
	else if (strncmp(path, f->real, f->rlen) != 0)
		return NULL;
	else if (path[f->rlen] == '\0')
		r = "";
	else if (path[f->rlen] == '/')
		r = path + f->rlen + 1;
	else
		return NULL;
	if (strncmp(r, AS_PRIVATE_DIR, strlen(AS_PRIVATE_DIR)) == 0 &&
	    (r[strlen(AS_PRIVATE_DIR)] == '\0' ||
	    r[strlen(AS_PRIVATE_DIR)] == '/'))
		return NULL;
	return r;
}

/*
 * The handle hb as seen through mount m: 1 with *rel (allocated) when
 * it is in the tree, 0 when not, -1 when the directory is gone (its
 * parent heard that), -2 when it cannot be told (the journal is full).
 */
static int
lookup(struct changes *c, struct fan_fs *fs, struct fan_mnt *m,
    struct file_handle *fh, char **rel)
{
	struct stat sb;
	const char *r;
	char *path;
	int fd;

	*rel = NULL;
	if (mnt_open(c, fs, m) == -1)
		return -2;
	if ((fd = open_by_handle_at(m->fd, fh, O_PATH | O_CLOEXEC)) == -1) {
		if (errno == ESTALE || errno == ENOENT)
			return -1;
		c->full = 1;
		return -2;
	}
	path = fd_path(fd);
	if (path == NULL || fstat(fd, &sb) == -1) {
		close(fd);
		free(path);
		c->full = 1;
		return -2;
	}
	close(fd);
	if (sb.st_nlink == 0) {		/* removed: " (deleted)" */
		free(path);
		return -1;
	}
	if ((r = below(c->priv, path)) != NULL)
		*rel = xstrdup(r);
	free(path);
	return *rel != NULL;
}

/*
 * Where the directory of a handle is: its path relative to the root
 * (owned by the cache), or NULL when it is outside the tree, in the
 * root's ".autosync", or gone.  A lookup that fails otherwise makes
 * the journal full.
 */
static struct fan_ent *
resolve(struct changes *c, uint32_t fsi, int htype, const unsigned char *h,
    uint32_t hlen)
{
	struct fan *f = c->priv;
	struct {
		struct file_handle fh;
		unsigned char	 h[MAX_HANDLE_SZ];
	} hb;
	struct fan_fs *fs = &f->fs[fsi];
	struct fan_ent *e;
	uint32_t hash = hash_of(fsi, htype, h, hlen);
	char *rel = NULL;
	size_t k;
	int rc = 0;

	for (e = f->tab[hash % CACHE_BUCKETS]; e != NULL; e = e->next)
		if (e->hash == hash && e->fs == fsi && e->htype == htype &&
		    e->hlen == hlen && memcmp(e->h, h, hlen) == 0)
			return e;
	if (hlen > MAX_HANDLE_SZ)
		return NULL;
	c->st.lookups++;
	hb.fh.handle_bytes = hlen;
	hb.fh.handle_type = htype;
	memcpy(hb.fh.f_handle, h, hlen);
	/* the root's mount first; a directory seen twice: that name */
	for (k = 0; k < fs->nm && rc == 0; k++)
		rc = lookup(c, fs, &fs->m[k], &hb.fh, &rel);
	if (rc < 0)
		return NULL;
	if (f->nent >= CACHE_MAX)
		cache_clear(f);
	e = xmalloc(sizeof(*e) + hlen);
	e->rel = rel;
	e->hits = 0;
	e->hash = hash;
	e->fs = fsi;
	e->htype = htype;
	e->hlen = hlen;
	memcpy(e->h, h, hlen);
	e->next = f->tab[hash % CACHE_BUCKETS];
	f->tab[hash % CACHE_BUCKETS] = e;
	f->nent++;
	return e;
}

/* e, outside the tree, is busy: have the kernel drop its events. */
static void
ignore(struct changes *c, uint32_t fsi, const struct fan_ent *e)
{
	struct fan *f = c->priv;
	struct {
		struct file_handle fh;
		unsigned char	 h[MAX_HANDLE_SZ];
	} hb;
	struct fan_fs *fs = &f->fs[fsi];
	size_t len;
	char *path;
	int fd;

	if (f->noign || f->nign >= IGNORE_MAX || mnt_open(c, fs, &fs->m[0]) ==
	    -1)
		return;
	hb.fh.handle_bytes = e->hlen;
	hb.fh.handle_type = e->htype;
	memcpy(hb.fh.f_handle, e->h, e->hlen);
	/* fanotify_mark takes no O_PATH descriptor */
	if ((fd = open_by_handle_at(fs->m[0].fd, &hb.fh, O_RDONLY |
	    O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	if ((path = fd_path(fd)) != NULL) {
		len = strlen(path);
		/* an ancestor of the root (or the root: never here) */
		if (strncmp(f->real, path, len) != 0 || (len > 1 &&
		    f->real[len] != '/' && f->real[len] != '\0')) {
			if (fanotify_mark(c->fd, FAN_MARK_ADD |
			    FAN_MARK_IGNORE_SURV, FAN_MASK |
			    FAN_EVENT_ON_CHILD, fd, NULL) == 0)
				f->nign++;
			else if (errno == EINVAL)
				f->noign = 1;
		}
		free(path);
	}
	close(fd);
}

static int
mark_one(struct changes *c, const char *rel, const char *path, void *arg)
{
	(void)path;
	(void)arg;
	changes_mark(c, rel);
	return 0;
}

/*
 * One event: ev (event_len bytes, as read: not aligned for its u64)
 * with its metadata copied into md.
 */
static void
event(struct changes *c, const struct fanotify_event_metadata *md,
    const unsigned char *ev)
{
	struct fan *f = c->priv;
	struct fanotify_event_info_header h;
	struct file_handle fh;
	const unsigned char *info = NULL, *hp;
	const char *name = ".", *rel;
	struct fan_ent *e;
	char *p;
	size_t off, hoff;
	uint32_t i;

	for (off = md->metadata_len; off + sizeof(h) <= md->event_len;
	    off += h.len) {
		memcpy(&h, ev + off, sizeof(h));
		if (h.len < sizeof(h) || off + h.len > md->event_len)
			return;
		if (h.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME ||
		    h.info_type == FAN_EVENT_INFO_TYPE_DFID) {
			info = ev + off;
			break;
		}
	}
	/* the header, the fsid, then a struct file_handle */
	hoff = sizeof(struct fanotify_event_info_fid);
	if (info == NULL || hoff + sizeof(fh) > h.len)
		return;
	memcpy(&fh, info + hoff, sizeof(fh));
	hp = info + hoff + sizeof(fh);
	if (fh.handle_bytes > h.len - hoff - sizeof(fh))
		return;
	if (h.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
		name = (const char *)hp + fh.handle_bytes;
		if (memchr(name, '\0', h.len - hoff - sizeof(fh) -
		    fh.handle_bytes) == NULL)
			return;
	}
	if ((md->mask & FAN_ONDIR) && (md->mask & (FAN_MOVED_FROM |
	    FAN_MOVED_TO | FAN_DELETE))) {
		/*
		 * Paths of directories below a moved one changed, and one
		 * outside (ignored, maybe) may have come in: heard on
		 * either side, as the other may be an ignored directory.
		 */
		if (md->mask & (FAN_MOVED_FROM | FAN_MOVED_TO)) {
			cache_clear(f);
			unignore(c);
		}
		root_check(c);
	}
	if (c->full)
		return;		/* everything anyway: no lookups */
	for (i = 0; i < f->nfs; i++)
		if (memcmp(f->fs[i].fsid, info + sizeof(h), 8) == 0)
			break;
	if (i == f->nfs)
		return;
	if ((e = resolve(c, i, fh.handle_type, hp, fh.handle_bytes)) ==
	    NULL || e->rel == NULL) {
		c->st.outside++;
		if (e != NULL && ++e->hits == IGNORE_AFTER)
			ignore(c, i, e);
		return;
	}
	rel = e->rel;
	if (strcmp(name, ".") == 0) {
		changes_mark(c, rel);	/* the directory's own attributes */
		return;
	}
	if (rel[0] == '\0' && strcmp(name, AS_PRIVATE_DIR) == 0)
		return;
	changes_mark(c, rel);
	if ((md->mask & FAN_ONDIR) && (md->mask & FAN_MOVED_TO)) {
		/*
		 * Moved here, maybe from outside the tree where nothing was
		 * heard, maybe back to where the base has it: everything
		 * below is listed.  (A new directory needs nothing: what is
		 * made in it is heard.)
		 */
		p = changes_join(rel, name);
		changes_walk(c, p, mark_one, NULL);
		free(p);
	}
}

static int
fan_read(struct changes *c, struct as_err *err)
{
	struct fan *f = c->priv;
	struct fanotify_event_metadata md;
	size_t off;
	ssize_t n;
	int k;

	/* bounded: what is left wakes the caller's poll again */
	for (k = 0; k < 64; k++) {
		n = read(c->fd, f->buf, FAN_BUFSIZE);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0) {
			fs_close(f);
			return as_err_sys(err, n == 0 ? EIO : errno,
			    "read the change journal of '%s'", c->root);
		}
		for (off = 0; off + sizeof(md) <= (size_t)n;
		    off += md.event_len) {
			memcpy(&md, f->buf + off, sizeof(md));
			if (md.event_len < sizeof(md) ||
			    off + md.event_len > (size_t)n) {
				c->full = 1;
				break;
			}
			if (md.fd >= 0)		/* not with FID reports */
				close(md.fd);
			c->st.events++;
			if (md.vers != FANOTIFY_METADATA_VERSION ||
			    (md.mask & FAN_Q_OVERFLOW))
				c->full = 1;
			else
				event(c, &md, (const unsigned char *)f->buf +
				    off);
		}
	}
	fs_close(f);
	return 0;
}

const struct changes_backend changes_fanotify = {
	.name		= "fanotify",
	.kind		= CHANGES_FANOTIFY,
	.open		= fan_open,
	.close		= fan_close,
	.read		= fan_read,
	.rewatch	= fan_rewatch,
};
