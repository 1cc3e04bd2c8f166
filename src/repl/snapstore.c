/* snapstore.c - snapshot catalogs in the state directory; see snapstore.h. */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "base/buf.h"
#include "base/io.h"
#include "base/xmalloc.h"
#include "format/catalog.h"
#include "repl/snapstore.h"
#include "base/banned.h"

#define CAT_SUFFIX	".cat"
#define PENDING_SUFFIX	".cat.pending"
#define CATALOG_MAX	(UINT64_C(1) << 36)	/* refuse beyond 64 GiB */

char *
snapstore_state_dir(const char *opt, struct as_err *err)
{
	const char *env, *home;
	struct passwd *pw;

	if (opt != NULL && *opt != '\0')
		return xstrdup(opt);
	env = getenv("AUTOSYNC_STATE_DIR");
	if (env != NULL && *env != '\0')
		return xstrdup(env);
	if (geteuid() == 0)
		return xstrdup("/var/lib/autosync");
	env = getenv("XDG_STATE_HOME");
	if (env != NULL && env[0] == '/')
		return xasprintf("%s/autosync", env);
	home = getenv("HOME");
	if (home == NULL || *home == '\0') {
		pw = getpwuid(geteuid());
		home = pw != NULL ? pw->pw_dir : NULL;
	}
	if (home == NULL || *home == '\0') {
		as_err_set(err, AS_E_USAGE, 0, "cannot find the state "
		    "directory: HOME is not set; use --state-dir");
		return NULL;
	}
	return xasprintf("%s/.local/state/autosync", home);
}

/* Remove ".", "..", empty components and trailing '/' from an abs path. */
static char *
normalise(const char *abs)
{
	char *out;
	size_t o = 0, i = 0, n, len = strlen(abs);

	out = xmalloc(len + 2);
	while (i < len) {
		while (i < len && abs[i] == '/')
			i++;
		n = 0;
		while (i + n < len && abs[i + n] != '/')
			n++;
		if (n == 0)
			break;
		if (n == 1 && abs[i] == '.') {
			/* skip */
		} else if (n == 2 && abs[i] == '.' && abs[i + 1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			out[o++] = '/';
			memcpy(out + o, abs + i, n);
			o += n;
		}
		i += n;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

char *
snapstore_abspath(const char *path, struct as_err *err)
{
	char *rp, *tmp, *res;
	char cwd[PATH_MAX];

	if (path == NULL || *path == '\0') {
		as_err_set(err, AS_E_USAGE, 0, "empty dataset path");
		return NULL;
	}
	rp = realpath(path, NULL);
	if (rp != NULL)
		return rp;
	if (errno != ENOENT && errno != ENOTDIR) {
		as_err_sys(err, errno, "resolve '%s'", path);
		return NULL;
	}
	if (path[0] == '/')
		return normalise(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		as_err_sys(err, errno, "resolve '%s': getcwd", path);
		return NULL;
	}
	tmp = xasprintf("%s/%s", cwd, path);
	res = normalise(tmp);
	free(tmp);
	return res;
}

static int
key_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("._,+=@:-", c) != NULL;
}

char *
snapstore_key(const char *abspath)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b = BUF_INIT;
	const unsigned char *p;
	char *key, tail[24];
	size_t cut = 0;
	int over = 0;

	for (p = (const unsigned char *)abspath; *p != '\0'; p++) {
		if (key_safe(*p)) {
			buf_add_u8(&b, *p);
		} else {
			buf_add_u8(&b, '%');
			buf_add_u8(&b, (uint8_t)hex[*p >> 4]);
			buf_add_u8(&b, (uint8_t)hex[*p & 15]);
		}
		if (b.len <= SNAPSTORE_KEY_MAX - 20)
			cut = b.len;
		else
			over = 1;
	}
	if (over || b.len > SNAPSTORE_KEY_MAX) {
		snprintf(tail, sizeof(tail), "~%016" PRIx64,
		    (uint64_t)XXH64(abspath, strlen(abspath), 0));
		b.len = cut;
		buf_add(&b, tail, strlen(tail));
	}
	buf_add_u8(&b, 0);
	key = (char *)b.data;
	return key;
}

/* Inverse of snapstore_key for keys without a hash tail, else NULL. */
static char *
key_unescape(const char *key)
{
	struct buf b = BUF_INIT;
	unsigned int v;
	const char *p;

	if (strchr(key, '~') != NULL)
		return NULL;
	for (p = key; *p != '\0'; p++) {
		if (*p == '%') {
			if (sscanf(p + 1, "%2x", &v) != 1 || p[1] == '\0' ||
			    p[2] == '\0') {
				buf_release(&b);
				return NULL;
			}
			buf_add_u8(&b, (uint8_t)v);
			p += 2;
		} else
			buf_add_u8(&b, (uint8_t)*p);
	}
	buf_add_u8(&b, 0);
	return (char *)b.data;
}

static int
mkdir_p(const char *path, struct as_err *err)
{
	char *tmp, *s;

	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return as_err_sys(err, errno, "create '%s'", path);
	tmp = xstrdup(path);
	for (s = tmp + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(tmp, 0700) == -1 && errno != EEXIST) {
			as_err_sys(err, errno, "create '%s'", tmp);
			free(tmp);
			return -1;
		}
		*s = '/';
	}
	free(tmp);
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return as_err_sys(err, errno, "create '%s'", path);
	return 0;
}

int
snapstore_open(struct snapstore *ss, const char *state, const char *dataset,
    int create, struct as_err *err)
{
	char *key, *dests;

	memset(ss, 0, sizeof(*ss));
	ss->lock_fd = -1;
	if ((ss->dataset = snapstore_abspath(dataset, err)) == NULL)
		return -1;
	ss->state = xstrdup(state);
	key = snapstore_key(ss->dataset);
	ss->dir = xasprintf("%s/catalogs/%s", state, key);
	free(key);
	if (create) {
		dests = xasprintf("%s/dests", ss->dir);
		if (mkdir_p(dests, err) == -1) {
			free(dests);
			snapstore_release(ss);
			return as_err_prefix(err, "state directory");
		}
		free(dests);
	}
	return 0;
}

void
snapstore_release(struct snapstore *ss)
{
	if (ss == NULL)
		return;
	if (ss->lock_fd != -1)
		close(ss->lock_fd);
	free(ss->state);
	free(ss->dataset);
	free(ss->dir);
	memset(ss, 0, sizeof(*ss));
	ss->lock_fd = -1;
}

/*
 * flock, waiting up to SNAP_LOCK_WAIT_MS for a holder that is on its way
 * out: a sync's receiving child inherits the lock's descriptor (fork
 * without exec), and when its parent is killed it lives on for a moment
 * until it sees the end of its stream.  A sync that really runs is not
 * done in that time: it is still refused as busy, only 2 s later.
 */
#define SNAP_LOCK_WAIT_MS	2000
#define SNAP_LOCK_POLL_MS	20

static int
lock_wait(int fd)
{
	struct timespec ts = { 0, SNAP_LOCK_POLL_MS * 1000000L };
	int waited;

	for (waited = 0; ; waited += SNAP_LOCK_POLL_MS) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK || waited >= SNAP_LOCK_WAIT_MS)
			return -1;
		(void)nanosleep(&ts, NULL);
	}
}

int
snapstore_lock(struct snapstore *ss, struct as_err *err)
{
	char *p;
	int fd;

	if (ss->lock_fd != -1)
		return 0;
	p = xasprintf("%s/lock", ss->dir);
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		as_err_sys(err, errno, "open '%s'", p);
		free(p);
		return -1;
	}
	free(p);
	if (lock_wait(fd) == -1) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK)
			return as_err_set(err, AS_E_CONFLICT, 0,
			    "'%s' is busy: another autosync process is using "
			    "its catalogs",
			    ss->dataset);
		return as_err_sys(err, e, "lock catalogs of '%s'",
		    ss->dataset);
	}
	ss->lock_fd = fd;
	return 0;
}

int
snap_name_check(const char *name, struct as_err *err)
{
	const char *p;
	size_t n = strlen(name);

	if (n == 0)
		return as_err_set(err, AS_E_USAGE, 0,
		    "empty snapshot name");
	if (n > SNAP_NAME_MAX)
		return as_err_set(err, AS_E_USAGE, 0,
		    "snapshot name is longer than %d bytes", SNAP_NAME_MAX);
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return as_err_set(err, AS_E_USAGE, 0,
		    "invalid snapshot name '%s'", name);
	for (p = name; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
		    *p == ':' || *p == '-')
			continue;
		return as_err_set(err, AS_E_USAGE, 0, "invalid snapshot name "
		    "'%.64s': only letters, digits and _ . : - are allowed",
		    name);
	}
	return 0;
}

uint64_t
snap_guid_new(void)
{
	uint64_t g = 0;
	ssize_t n;

	while (g == 0) {
		n = getrandom(&g, sizeof(g), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(g))
			fatal("getrandom: %s", strerror(errno));
	}
	return g;
}

static char *
snap_file(const struct snapstore *ss, const char *name, int pending)
{
	return xasprintf("%s/%s%s", ss->dir, name,
	    pending ? PENDING_SUFFIX : CAT_SUFFIX);
}

static int
file_exists(const char *path, struct as_err *err)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		return 1;
	if (errno == ENOENT || errno == ENOTDIR)
		return 0;
	return as_err_sys(err, errno, "stat '%s'", path);
}

int
snapstore_exists(const struct snapstore *ss, const char *name,
    struct as_err *err)
{
	char *p = snap_file(ss, name, 0);
	int rc;

	rc = file_exists(p, err);
	free(p);
	return rc;
}

int
snapstore_auto_name(const struct snapstore *ss, int64_t time_ns, char *out,
    size_t outsz, struct as_err *err)
{
	char base[64], *p, *q;
	struct tm tm;
	time_t t = (time_t)(time_ns / 1000000000);
	unsigned n;
	int a, b;

	if (gmtime_r(&t, &tm) == NULL)
		return as_err_set(err, AS_E_INTERNAL, 0, "bad time");
	strftime(base, sizeof(base), SNAP_AUTO_PREFIX "%Y-%m-%d_%H:%M:%S",
	    &tm);
	for (n = 1; n < 100000; n++) {
		if (n == 1)
			snprintf(out, outsz, "%s", base);
		else
			snprintf(out, outsz, "%s_%u", base, n);
		p = snap_file(ss, out, 0);
		q = snap_file(ss, out, 1);
		a = file_exists(p, err);
		b = a == -1 ? -1 : file_exists(q, err);
		free(p);
		free(q);
		if (a == -1 || b == -1)
			return -1;
		if (a == 0 && b == 0)
			return 0;
	}
	return as_err_set(err, AS_E_LIMIT, 0, "too many snapshots named '%s'",
	    base);
}

/*
 * catalog_decode_cb's done: the mapped catalog file up to off is decoded;
 * give its pages back (they stay in the page cache), so that peak memory
 * is the decoded catalog, not that plus the whole file.
 */
static void
drop_pages(void *arg, size_t off)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	off -= off % pg;
	if (off > 0)
		(void)madvise(arg, off, MADV_DONTNEED);
}

/*
 * Open a catalog file for reading: a regular file of sane size, never
 * through a symbolic link, and never blocking on a FIFO planted in its
 * place.  Returns the descriptor and its size, or -1.
 */
static int
open_catalog_file(const char *path, size_t *size, struct as_err *err)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1)
		return as_err_sys(err, errno, "open '%s'", path);
	if (fstat(fd, &st) == -1) {
		as_err_sys(err, errno, "stat '%s'", path);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > CATALOG_MAX) {
		close(fd);
		return as_err_set(err, AS_E_LIMIT, 0,
		    "'%s' is not a catalog file of sane size", path);
	}
	*size = (size_t)st.st_size;
	return fd;
}

/*
 * The start of a catalog file, enough for its header record (HEADER:
 * 44 bytes, a name of at most 255, a source of at most AS_PATH_MAX).
 */
#define CAT_HEAD_MAX	(64u << 10)

/*
 * Read a catalog file into b, refusing absurd sizes: the whole of it, or
 * with head set its first CAT_HEAD_MAX bytes at most.
 */
static int
read_cat(const char *path, int head, struct buf *b, struct as_err *err)
{
	size_t size;
	ssize_t n;
	int fd;

	if ((fd = open_catalog_file(path, &size, err)) == -1)
		return -1;
	buf_reset(b);
	buf_reserve(b, head ? CAT_HEAD_MAX : size + 1);
	n = io_read_full(fd, b->data, head ? CAT_HEAD_MAX : size);
	if (n == -1) {
		as_err_sys(err, errno, "read '%s'", path);
		close(fd);
		return -1;
	}
	b->len = (size_t)n;
	close(fd);
	return 0;
}

/* Read a whole catalog file into b. */
static int
read_file(const char *path, struct buf *b, struct as_err *err)
{
	return read_cat(path, 0, b, err);
}

/* Read the start of a catalog file (its header) into b. */
static int
read_head(const char *path, struct buf *b, struct as_err *err)
{
	return read_cat(path, 1, b, err);
}

/* Write data to dir/final atomically. */
static int
write_fd(void *arg, const void *p, size_t len)
{
	return io_write_full(*(int *)arg, p, len) == -1 ? -1 : 0;
}

/* With cat set, the catalog is encoded piecewise instead of data. */
static int
write_atomic(const char *dir, const char *final, const void *data,
    size_t len, const struct catalog *cat, struct as_err *err)
{
	char *tmp, *dst;
	int fd, dfd, f, rc = -1;

	tmp = xasprintf("%s/.tmp.%ld.%s", dir, (long)getpid(), final);
	dst = xasprintf("%s/%s", dir, final);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1) {
		as_err_sys(err, errno, "create '%s'", tmp);
		goto out;
	}
	if ((f = io_fault("snapstore_write")) != 0 ||
	    (cat != NULL && catalog_encode_stream(cat, write_fd, &fd) == -1) ||
	    (cat == NULL && io_write_full(fd, data, len) == -1)) {
		as_err_sys(err, f != 0 ? f : errno, "write '%s'", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (io_fsync(fd, tmp, err) == -1) {
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) == -1) {
		as_err_sys(err, errno, "close '%s'", tmp);
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, dst) == -1) {
		as_err_sys(err, errno, "rename '%s' to '%s'", tmp, dst);
		unlink(tmp);
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1) {
		as_err_sys(err, errno, "open '%s'", dir);
		goto out;
	}
	rc = io_fsync(dfd, dir, err);
	close(dfd);
out:
	free(tmp);
	free(dst);
	return rc;
}

static int
fsync_dir(const char *dir, struct as_err *err)
{
	int dfd, rc;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1)
		return as_err_sys(err, errno, "open '%s'", dir);
	rc = io_fsync(dfd, dir, err);
	close(dfd);
	return rc;
}

static int
info_cmp(const void *a, const void *b)
{
	const struct snap_info *x = a, *y = b;

	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int
ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n > m && strcmp(s + n - m, suf) == 0;
}

int
snapstore_list(const struct snapstore *ss, int flags, struct snap_list *out,
    struct as_err *err)
{
	const char *suf = flags & SNAP_LIST_PENDING ? PENDING_SUFFIX :
	    CAT_SUFFIX;
	struct buf b = BUF_INIT;
	struct dirent *de;
	struct snap_info *si;
	struct cat_header h;
	struct catalog c;
	size_t cap = 0, i, nl;
	char *path;
	DIR *d;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((d = opendir(ss->dir)) == NULL) {
		if (errno == ENOENT)
			return 0;
		return as_err_sys(err, errno, "open '%s'", ss->dir);
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !ends_with(de->d_name, suf))
			continue;
		/* "x.cat.pending" also ends in neither ".cat" nor vice versa */
		nl = strlen(de->d_name) - strlen(suf);
		if (nl > SNAP_NAME_MAX)
			continue;
		path = xasprintf("%s/%s", ss->dir, de->d_name);
		/*
		 * A listing needs the header only: reading whole catalogs
		 * cost a buffer the size of the largest one, at the peak
		 * of a sync (its prune lists with the new catalog held).
		 */
		if ((flags & SNAP_LIST_SIZES ? read_file(path, &b, err) :
		    read_head(path, &b, err)) == -1) {
			free(path);
			goto out;
		}
		if (out->n == cap) {
			cap = cap ? cap * 2 : 16;
			out->v = xreallocarray(out->v, cap, sizeof(*out->v));
		}
		si = &out->v[out->n];
		memset(si, 0, sizeof(*si));
		if (flags & SNAP_LIST_SIZES) {
			catalog_init(&c);
			if (catalog_decode(&c, b.data, b.len, err) == -1) {
				as_err_prefix(err, "catalog '%s'", path);
				free(path);
				goto out;
			}
			si->entries = c.n;
			for (i = 0; i < c.n; i++) {
				/* a hard-linked file counts once, as in du */
				if (S_ISREG(c.ents[i].mode) &&
				    (c.ents[i].nlink < 2 ||
				    catalog_find_ino(&c, c.ents[i].ino) ==
				    (long)i))
					si->bytes += c.ents[i].size;
				if (c.ents[i].flags & CAT_EF_NOTPIT)
					si->notpit++;
			}
			h = c.hdr;
			c.hdr.source = NULL;
			catalog_release(&c);
		} else if (catalog_decode_header(&h, b.data, b.len, err) ==
		    -1) {
			as_err_prefix(err, "catalog '%s'", path);
			free(path);
			goto out;
		}
		free(path);
		/* the file name is authoritative for the name */
		memcpy(si->name, de->d_name, nl);
		si->name[nl] = '\0';
		si->guid = h.guid;
		si->base_guid = h.base_guid;
		si->time_ns = h.time_ns;
		si->block_size = h.block_size;
		si->flags = h.flags;
		cat_header_release(&h);
		out->n++;
	}
	if (errno != 0) {
		as_err_sys(err, errno, "read '%s'", ss->dir);
		goto out;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), info_cmp);
	rc = 0;
out:
	closedir(d);
	buf_release(&b);
	if (rc == -1)
		snap_list_release(out);
	return rc;
}

void
snap_list_release(struct snap_list *l)
{
	if (l == NULL)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

const struct snap_info *
snap_list_by_name(const struct snap_list *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

const struct snap_info *
snap_list_by_guid(const struct snap_list *l, uint64_t guid)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i].guid == guid)
			return &l->v[i];
	return NULL;
}

/*
 * Map a catalog file read-only instead of reading it into the heap, so
 * that it is not held next to the catalog decoded from it.  Catalog files
 * are only ever replaced by a rename (write_atomic), never changed in
 * place.  *map is NULL (and b holds the data) when it cannot be mapped.
 */
static int
map_file(const char *path, void **map, size_t *len, struct buf *b,
    struct as_err *err)
{
	size_t size;
	int fd;

	*map = NULL;
	*len = 0;
	if ((fd = open_catalog_file(path, &size, err)) == -1)
		return -1;
	if (size > 0) {
		*map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (*map == MAP_FAILED)
			*map = NULL;
		else {
			(void)madvise(*map, size, MADV_SEQUENTIAL);
			*len = size;
		}
	}
	close(fd);
	if (*map == NULL)
		return read_file(path, b, err);
	return 0;
}

static int
load_file(const struct snapstore *ss, const char *name, int pending,
    struct catalog *c, struct as_err *err);

int
snapstore_load(const struct snapstore *ss, const char *name,
    struct catalog *c, struct as_err *err)
{
	return load_file(ss, name, 0, c, err);
}

int
snapstore_load_pending(const struct snapstore *ss, const char *name,
    struct catalog *c, struct as_err *err)
{
	return load_file(ss, name, 1, c, err);
}

static int
load_file(const struct snapstore *ss, const char *name, int pending,
    struct catalog *c, struct as_err *err)
{
	struct buf b = BUF_INIT;
	char *path;
	void *map;
	size_t mlen;
	int rc;

	if (snap_name_check(name, err) == -1)
		return -1;
	path = snap_file(ss, name, pending);
	if (map_file(path, &map, &mlen, &b, err) == -1) {
		if (err != NULL && err->sys_errno == ENOENT)
			as_err_set(err, AS_E_NOTFOUND, ENOENT,
			    "no %ssnapshot '%s@%s'", pending ? "pending " : "",
			    ss->dataset, name);
		free(path);
		buf_release(&b);
		catalog_release(c);
		return -1;
	}
	if (map != NULL) {
		rc = catalog_decode_cb(c, map, mlen, drop_pages, map, err);
		munmap(map, mlen);
	} else
		rc = catalog_decode(c, b.data, b.len, err);
	if (rc == -1)
		as_err_prefix(err, "catalog '%s'", path);
	else if (strcmp(c->hdr.name, name) != 0)
		/* a renamed file: the file name wins, as in listings */
		snprintf(c->hdr.name, sizeof(c->hdr.name), "%s", name);
	free(path);
	buf_release(&b);
	return rc;
}

int
snapstore_load_guid(const struct snapstore *ss, uint64_t guid,
    struct catalog *c, struct as_err *err)
{
	struct snap_list l;
	const struct snap_info *si;
	int rc = 0;

	if (snapstore_list(ss, 0, &l, err) == -1)
		return -1;
	si = snap_list_by_guid(&l, guid);
	if (si != NULL)
		rc = snapstore_load(ss, si->name, c, err) == -1 ? -1 : 1;
	snap_list_release(&l);
	return rc;
}

int
snapstore_save(struct snapstore *ss, const struct catalog *c, int flags,
    struct as_err *err)
{
	char *final, *path;
	int rc, ex;

	if (snap_name_check(c->hdr.name, err) == -1)
		return -1;
	if (c->hdr.guid == 0)
		return as_err_set(err, AS_E_INTERNAL, 0,
		    "catalog '%s' has no guid", c->hdr.name);
	if (mkdir_p(ss->dir, err) == -1)
		return as_err_prefix(err, "state directory");
	if (!(flags & (SNAP_SAVE_PENDING | SNAP_SAVE_REPLACE))) {
		path = snap_file(ss, c->hdr.name, 0);
		ex = file_exists(path, err);
		free(path);
		if (ex == -1)
			return -1;
		if (ex == 1)
			return as_err_set(err, AS_E_CONFLICT, EEXIST,
			    "snapshot '%s@%s' already exists", ss->dataset,
			    c->hdr.name);
	}
	final = xasprintf("%s%s", c->hdr.name, flags & SNAP_SAVE_PENDING ?
	    PENDING_SUFFIX : CAT_SUFFIX);
	rc = write_atomic(ss->dir, final, NULL, 0, c, err);
	free(final);
	if (rc == -1)
		return as_err_prefix(err, "save snapshot '%s@%s'",
		    ss->dataset, c->hdr.name);
	if (!(flags & SNAP_SAVE_PENDING))
		return snapstore_discard_pending(ss, c->hdr.name, err);
	return 0;
}

int
snapstore_commit_pending(struct snapstore *ss, const char *name,
    struct as_err *err)
{
	char *from, *to;
	int rc = 0;

	from = snap_file(ss, name, 1);
	to = snap_file(ss, name, 0);
	if (rename(from, to) == -1)
		rc = as_err_sys(err, errno, "commit '%s'", from);
	else
		rc = fsync_dir(ss->dir, err);
	free(from);
	free(to);
	return rc;
}

int
snapstore_discard_pending(struct snapstore *ss, const char *name,
    struct as_err *err)
{
	char *p = snap_file(ss, name, 1);
	int rc = 0;

	if (unlink(p) == -1) {
		if (errno != ENOENT)
			rc = as_err_sys(err, errno, "remove '%s'", p);
	} else
		rc = fsync_dir(ss->dir, err);
	free(p);
	return rc;
}

int
snapstore_destroy(struct snapstore *ss, const char *name, struct as_err *err)
{
	char *p;
	int rc;

	if (snap_name_check(name, err) == -1)
		return -1;
	p = snap_file(ss, name, 0);
	if (unlink(p) == -1) {
		if (errno == ENOENT)
			rc = as_err_set(err, AS_E_NOTFOUND, ENOENT,
			    "no snapshot '%s@%s'", ss->dataset, name);
		else
			rc = as_err_sys(err, errno, "remove '%s'", p);
	} else
		rc = fsync_dir(ss->dir, err);
	free(p);
	return rc;
}

/*
 * A destination record is text:
 *   autosync-dest 1\n held <hex guid>\n pending <name or ->\n path <path>
 * The path runs to the end of the file, so that any byte may be in it.
 */
static int
dest_parse(const char *file, struct buf *b, struct snap_dest *d,
    struct as_err *err)
{
	char pend[SNAP_NAME_MAX + 2];
	const char *p, *path;
	int used = 0;

	memset(d, 0, sizeof(*d));
	buf_add_u8(b, 0);
	p = (const char *)b->data;
	if (sscanf(p, "autosync-dest 1\nheld %" SCNx64 "\npending %256s\npath "
	    "%n", &d->held_guid, pend, &used) != 2 || used == 0)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "destination record '%s' is malformed", file);
	path = p + used;
	d->path = xstrndup(path, b->len - 1 - (size_t)used);
	if (strcmp(pend, "-") != 0 && snap_name_check(pend, NULL) == 0)
		snprintf(d->pending, sizeof(d->pending), "%s", pend);
	return 0;
}

int
snapstore_dest_get(const struct snapstore *ss, const char *dest,
    struct snap_dest *d, struct as_err *err)
{
	struct buf b = BUF_INIT;
	char *key, *path;
	int rc;

	memset(d, 0, sizeof(*d));
	key = snapstore_key(dest);
	path = xasprintf("%s/dests/%s", ss->dir, key);
	free(key);
	rc = file_exists(path, err);
	if (rc == 1) {
		if (read_file(path, &b, err) == -1 ||
		    dest_parse(path, &b, d, err) == -1)
			rc = -1;
	}
	free(path);
	buf_release(&b);
	return rc;
}

int
snapstore_dest_put(struct snapstore *ss, const char *dest,
    const struct snap_dest *d, struct as_err *err)
{
	char *key, *dir, *text;
	int rc;

	key = snapstore_key(dest);
	dir = xasprintf("%s/dests", ss->dir);
	if (mkdir_p(dir, err) == -1) {
		free(key);
		free(dir);
		return -1;
	}
	text = xasprintf("autosync-dest 1\nheld %016" PRIx64 "\npending %s\n"
	    "path %s", d->held_guid, d->pending[0] != '\0' ? d->pending : "-",
	    dest);
	rc = write_atomic(dir, key, text, strlen(text), NULL, err);
	free(text);
	free(key);
	free(dir);
	return rc;
}

int
snapstore_dest_list(const struct snapstore *ss, struct snap_dest **v,
    size_t *n, struct as_err *err)
{
	struct buf b = BUF_INIT;
	struct dirent *de;
	size_t cap = 0;
	char *dir, *path;
	DIR *d;
	int rc = 0;

	*v = NULL;
	*n = 0;
	dir = xasprintf("%s/dests", ss->dir);
	if ((d = opendir(dir)) == NULL) {
		rc = errno == ENOENT ? 0 : as_err_sys(err, errno, "open '%s'",
		    dir);
		free(dir);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*v = xreallocarray(*v, cap, sizeof(**v));
		}
		path = xasprintf("%s/%s", dir, de->d_name);
		if (read_file(path, &b, err) == -1 ||
		    dest_parse(path, &b, &(*v)[*n], err) == -1) {
			free(path);
			rc = -1;
			break;
		}
		free(path);
		(*n)++;
	}
	closedir(d);
	free(dir);
	buf_release(&b);
	if (rc == -1) {
		snap_dest_free_list(*v, *n);
		*v = NULL;
		*n = 0;
	}
	return rc;
}

void
snap_dest_release(struct snap_dest *d)
{
	if (d == NULL)
		return;
	free(d->path);
	d->path = NULL;
}

void
snap_dest_free_list(struct snap_dest *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		snap_dest_release(&v[i]);
	free(v);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The dataset of a hashed key: the source recorded in one of its catalogs. */
static char *
dataset_from_catalogs(const char *state, const char *key)
{
	struct snapstore ss;
	struct snap_list l;
	struct buf b = BUF_INIT;
	struct cat_header h;
	char *path, *res = NULL;

	memset(&ss, 0, sizeof(ss));
	ss.dir = xasprintf("%s/catalogs/%s", state, key);
	if (snapstore_list(&ss, 0, &l, NULL) == 0 && l.n > 0) {
		path = snap_file(&ss, l.v[l.n - 1].name, 0);
		if (read_head(path, &b, NULL) == 0 &&
		    catalog_decode_header(&h, b.data, b.len, NULL) == 0) {
			if (h.source != NULL && h.source[0] == '/')
				res = xstrdup(h.source);
			cat_header_release(&h);
		}
		free(path);
	}
	snap_list_release(&l);
	buf_release(&b);
	free(ss.dir);
	return res;
}

int
snapstore_datasets(const char *state, char ***out, size_t *n,
    struct as_err *err)
{
	struct dirent *de;
	size_t cap = 0;
	char *dir, *ds;
	DIR *d;

	*out = NULL;
	*n = 0;
	dir = xasprintf("%s/catalogs", state);
	if ((d = opendir(dir)) == NULL) {
		int e = errno, rc;

		rc = e == ENOENT ? 0 : as_err_sys(err, e, "open '%s'", dir);
		free(dir);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		ds = key_unescape(de->d_name);
		if (ds == NULL)
			ds = dataset_from_catalogs(state, de->d_name);
		if (ds == NULL)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		(*out)[(*n)++] = ds;
	}
	closedir(d);
	free(dir);
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), str_cmp);
	return 0;
}

/*
 * A second name for a committed snapshot: a hard link, so that it costs
 * no copy and keeps the catalog when the first name is pruned.  Made
 * under a temporary name and renamed over the alias, so that the alias
 * always names a whole catalog.
 */
int
snapstore_alias(struct snapstore *ss, const char *name, const char *alias,
    struct as_err *err)
{
	char *from, *to, *tmp;
	int rc = -1;

	if (snap_name_check(name, err) == -1 ||
	    snap_name_check(alias, err) == -1)
		return -1;
	from = snap_file(ss, name, 0);
	to = snap_file(ss, alias, 0);
	tmp = xasprintf("%s/.alias.%ld.tmp", ss->dir, (long)getpid());
	(void)unlink(tmp);
	if (link(from, tmp) == -1) {
		if (errno == ENOENT)
			as_err_set(err, AS_E_NOTFOUND, ENOENT,
			    "no snapshot '%s@%s'", ss->dataset, name);
		else
			as_err_sys(err, errno, "link '%s'", from);
		goto out;
	}
	if (rename(tmp, to) == -1) {
		as_err_sys(err, errno, "rename '%s'", tmp);
		(void)unlink(tmp);
		goto out;
	}
	rc = fsync_dir(ss->dir, err);
out:
	free(from);
	free(to);
	free(tmp);
	return rc;
}

int
snapstore_open_guid(const struct snapstore *ss, uint64_t guid,
    struct snap_reader *sr, struct as_err *err)
{
	struct snap_list l;
	const struct snap_info *si;
	char *path = NULL;
	int rc = 0;

	memset(sr, 0, sizeof(*sr));
	if (snapstore_list(ss, 0, &l, err) == -1)
		return -1;
	si = snap_list_by_guid(&l, guid);
	if (si == NULL)
		goto out;
	rc = -1;
	path = snap_file(ss, si->name, 0);
	if (map_file(path, &sr->map, &sr->len, &sr->b, err) == -1)
		goto out;
	if (cat_reader_open(&sr->rd, sr->map != NULL ? sr->map : sr->b.data,
	    sr->map != NULL ? sr->len : sr->b.len, sr->map != NULL ?
	    drop_pages : NULL, sr->map, err) == -1) {
		as_err_prefix(err, "catalog '%s'", path);
		snap_reader_release(sr);
		goto out;
	}
	/* a renamed file: the file name wins, as in listings */
	snprintf(sr->rd.win.hdr.name, sizeof(sr->rd.win.hdr.name), "%s",
	    si->name);
	rc = 1;
out:
	free(path);
	snap_list_release(&l);
	return rc;
}

void
snap_reader_release(struct snap_reader *sr)
{
	if (sr == NULL)
		return;
	cat_reader_release(&sr->rd);
	if (sr->map != NULL)
		munmap(sr->map, sr->len);
	buf_release(&sr->b);
	memset(sr, 0, sizeof(*sr));
}
