/*
 * failback.c - the steps of a directory failback (see failback.h).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/io.h"
#include "base/xmalloc.h"
#include "driver/dir.h"
#include "format/catalog.h"
#include "format/path.h"
#include "repl/failback.h"
#include "repl/snapstore.h"
#include "base/banned.h"

#define HELD_NAME	"held.cat"

static void
first_diff(struct failback_drift *d, const char *kind, const char *path)
{
	d->ndiff++;
	if (d->first[0] == '\0')
		snprintf(d->first, sizeof(d->first), "%s '%s'", kind,
		    path[0] == '\0' ? "." : path);
}

/*
 * What the receiver's drift check looks at (dir_recv.c): an entry of
 * scan (an lstat-only scan of the tree) against the same path in g.
 * Content is judged by inode, size and times, as there are no hashes.
 */
static const char *
entry_differs(const struct catalog *g, const struct cat_entry *a,
    const struct catalog *sc, const struct cat_entry *b)
{
	if ((a->mode & S_IFMT) != (b->mode & S_IFMT))
		return "type";
	if (a->ino != b->ino || a->size != b->size || a->rdev != b->rdev ||
	    a->mtime_sec != b->mtime_sec || a->mtime_nsec != b->mtime_nsec ||
	    a->ctime_sec != b->ctime_sec || a->ctime_nsec != b->ctime_nsec)
		return "content";
	if (a->mode != b->mode)
		return "mode";
	if (a->uid != b->uid || a->gid != b->gid)
		return "owner";
	if (a->nlink != b->nlink)
		return "link";
	if (a->aux_len != b->aux_len || memcmp(catalog_aux(g, a),
	    catalog_aux(sc, b), a->aux_len) != 0)
		return "target";
	if (a->xattr_len != b->xattr_len || (a->xattr_len > 0 &&
	    memcmp(catalog_xattrs(g, a), catalog_xattrs(sc, b),
	    a->xattr_len) != 0))
		return "xattr";
	return NULL;
}

/*
 * The new source's base: D's held catalog (D's inodes and times, as its
 * receiver recorded the tree right after it applied G) with the block
 * hashes of G for the regular files whose size and mtime G has too (the
 * same content: D held G).  So the first scan after the reverse reads
 * only what changed on D, and only changed blocks travel.
 */
static void
with_hashes(const struct catalog *hc, const struct catalog *g,
    struct catalog *out)
{
	const struct cat_entry *e, *ge;
	struct cat_entry_in in;
	size_t i;
	long k;

	for (i = 0; i < hc->n; i++) {
		e = &hc->ents[i];
		memset(&in, 0, sizeof(in));
		in.st = e;
		in.path = catalog_path(hc, e);
		in.path_len = e->path_len;
		in.aux = catalog_aux(hc, e);
		in.aux_len = e->aux_len;
		in.xattrs = catalog_xattrs(hc, e);
		in.xattr_len = e->xattr_len;
		if (e->nblocks > 0) {
			in.hashes = hc->hashes.data + CAT_HASH_AT(e);
			in.nblocks = e->nblocks;
		} else if (g != NULL && S_ISREG(e->mode) &&
		    g->hdr.block_size == hc->hdr.block_size &&
		    (k = catalog_find(g, in.path, in.path_len)) >= 0) {
			ge = &g->ents[k];
			if (S_ISREG(ge->mode) && ge->size == e->size &&
			    ge->mtime_sec == e->mtime_sec &&
			    ge->mtime_nsec == e->mtime_nsec) {
				in.hashes = g->hashes.data + CAT_HASH_AT(ge);
				in.nblocks = ge->nblocks;
			}
		}
		catalog_add(out, &in);
	}
	out->hdr = hc->hdr;
	out->hdr.source = hc->hdr.source != NULL ?
	    xstrdup(hc->hdr.source) : NULL;
}

/* Count the differences of the tree scanned into sc from g. */
static void
drift(const struct catalog *g, const struct catalog *sc,
    struct failback_drift *d)
{
	const char *why, *p;
	size_t i, found = 0;
	long k;

	for (i = 0; i < sc->n; i++) {
		p = catalog_path(sc, &sc->ents[i]);
		k = catalog_find(g, p, sc->ents[i].path_len);
		if (k < 0) {
			first_diff(d, "extra", p);
			continue;
		}
		found++;
		if ((why = entry_differs(g, &g->ents[k], sc,
		    &sc->ents[i])) != NULL)
			first_diff(d, why, p);
	}
	if (found < g->n) {
		for (i = 0; i < g->n; i++) {
			p = catalog_path(g, &g->ents[i]);
			if (catalog_find(sc, p, g->ents[i].path_len) < 0)
				first_diff(d, "missing", p);
		}
	}
}

/* Read a whole file into b (at most 64 GiB, as catalogs). */
static int
slurp(const char *path, struct buf *b, struct as_err *err)
{
	char tmp[65536];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return as_err_sys(err, errno, "open '%s'", path);
	while ((n = read(fd, tmp, sizeof(tmp))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			as_err_sys(err, errno, "read '%s'", path);
			close(fd);
			return -1;
		}
		buf_add(b, tmp, (size_t)n);
	}
	close(fd);
	return 0;
}

static int
write_fd(void *arg, const void *p, size_t len)
{
	return io_write_full(*(int *)arg, p, len);
}

/*
 * Write c as DIR/.autosync/held.cat: tmp, fsync, rename, fsync dir.
 * Creating .autosync changes the root directory's mtime, ctime and link
 * count: the mtime is put back to c's (the snapshot's), and c's root
 * entry takes the new ctime and link count, as a receiver records its
 * tree with .autosync in it.
 */
static int
write_held(const char *dir, struct catalog *c, struct as_err *err)
{
	struct timespec ts[2];
	struct stat sb;
	char *priv, *tmp, *dst;
	int fd = -1, dfd, rc = -1, made = 1;

	priv = xasprintf("%s/%s", dir, AS_PRIVATE_DIR);
	tmp = xasprintf("%s/%s.tmp", priv, HELD_NAME);
	dst = xasprintf("%s/%s", priv, HELD_NAME);
	if (mkdir(priv, 0700) == -1) {
		if (errno != EEXIST) {
			as_err_sys(err, errno, "create '%s'", priv);
			goto out;
		}
		made = 0;
	}
	if (made && c->n > 0 && c->ents[0].path_len == 0) {
		ts[0].tv_sec = 0;
		ts[0].tv_nsec = UTIME_OMIT;
		ts[1].tv_sec = c->ents[0].mtime_sec;
		ts[1].tv_nsec = c->ents[0].mtime_nsec;
		if (utimensat(AT_FDCWD, dir, ts, AT_SYMLINK_NOFOLLOW) == -1 ||
		    lstat(dir, &sb) == -1) {
			as_err_sys(err, errno, "stat '%s'", dir);
			goto out;
		}
		c->ents[0].ctime_sec = sb.st_ctim.tv_sec;
		c->ents[0].ctime_nsec = (uint32_t)sb.st_ctim.tv_nsec;
		c->ents[0].nlink = (uint32_t)sb.st_nlink;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1) {
		as_err_sys(err, errno, "create '%s'", tmp);
		goto out;
	}
	if (catalog_encode_stream(c, write_fd, &fd) == -1) {
		as_err_sys(err, errno, "write '%s'", tmp);
		goto out_unlink;
	}
	if (io_fsync(fd, tmp, err) == -1)
		goto out_unlink;
	close(fd);
	fd = -1;
	if (rename(tmp, dst) == -1) {
		as_err_sys(err, errno, "rename '%s'", tmp);
		goto out_unlink;
	}
	if ((dfd = open(priv, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		as_err_sys(err, errno, "open '%s'", priv);
		goto out;
	}
	rc = io_fsync(dfd, priv, err);
	close(dfd);
	goto out;
out_unlink:
	(void)unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	free(priv);
	free(tmp);
	free(dst);
	return rc;
}

/*
 * A reverse that made abs a destination of guid already (and then
 * failed on the other side) created .autosync: the root's ctime and link
 * count moved, as its held.cat records them.  Take those into g, so that
 * running the reverse again is not refused for its own trace.
 */
static void
held_root(const char *abs, uint64_t guid, struct catalog *g)
{
	struct cat_header h;
	struct catalog hc;
	struct buf b = BUF_INIT;
	struct as_err e;
	char *path;
	int held;

	memset(&h, 0, sizeof(h));
	if ((held = dir_held(abs, &h, &e)) != 1 || h.guid != guid ||
	    g->n == 0 || g->ents[0].path_len != 0) {
		if (held == 1)
			cat_header_release(&h);
		return;
	}
	cat_header_release(&h);
	catalog_init(&hc);
	path = xasprintf("%s/%s/%s", abs, AS_PRIVATE_DIR, HELD_NAME);
	if (slurp(path, &b, &e) == 0 &&
	    catalog_decode(&hc, b.data, b.len, &e) == 0 &&
	    hc.hdr.guid == guid && hc.n > 0 && hc.ents[0].path_len == 0) {
		g->ents[0].ctime_sec = hc.ents[0].ctime_sec;
		g->ents[0].ctime_nsec = hc.ents[0].ctime_nsec;
		g->ents[0].nlink = hc.ents[0].nlink;
	}
	free(path);
	buf_release(&b);
	catalog_release(&hc);
}

/*
 * G (guid) must be the newest snapshot of abs, or what only abs has
 * would be lost; hname gets G's name there (its GUID if abs lacks it).
 */
int
failback_check_newest(struct snapstore *ss, const char *abs, uint64_t guid,
    const char *dst, char *hname, size_t hlen, struct as_err *err)
{
	struct snap_list l;
	const struct snap_info *newest, *held;
	int rc = -1;

	memset(&l, 0, sizeof(l));
	if (snapstore_list(ss, 0, &l, err) == -1)
		return -1;
	newest = l.n > 0 ? &l.v[l.n - 1] : NULL;
	held = snap_list_by_guid(&l, guid);
	if (held != NULL)
		snprintf(hname, hlen, "%s", held->name);
	else
		snprintf(hname, hlen, "%016" PRIx64, guid);
	if (newest == NULL || newest->guid != guid)
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds '%s', but the "
		    "newest snapshot of '%s' is '%s': run a final sync "
		    "first, or what only '%s' has is lost", dst, hname, abs,
		    newest != NULL ? newest->name : "(none)", abs);
	else
		rc = 0;
	snap_list_release(&l);
	return rc;
}

int
failback_check_source(struct snapstore *ss, const char *abs, uint64_t guid,
    const char *dst, int force, struct catalog *g, struct failback_drift *d,
    struct as_err *err)
{
	struct catalog scan;
	struct dir_stats st;
	char hname[SNAP_NAME_MAX + 1];
	int rc = -1;

	memset(d, 0, sizeof(*d));
	catalog_init(&scan);
	if (failback_check_newest(ss, abs, guid, dst, hname, sizeof(hname),
	    err) == -1)
		goto out;
	if (snapstore_load_guid(ss, guid, g, err) != 1) {
		if (err != NULL && err->code == AS_E_OK)
			as_err_set(err, AS_E_NOTFOUND, 0, "no catalog of '%s' "
			    "in '%s'", hname, abs);
		goto out;
	}
	held_root(abs, guid, g);
	memset(&st, 0, sizeof(st));
	if (dir_scan(abs, g, g->hdr.block_size, DIR_SCAN_NOHASH, &scan, &st,
	    err) == -1) {
		as_err_prefix(err, "scan '%s'", abs);
		goto out;
	}
	drift(g, &scan, d);
	if (d->ndiff > 0 && !force) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' changed since '%s' "
		    "(%" PRIu64 " difference%s, first: %s): reversing would "
		    "lose that; --force rolls it back to '%s'", abs, hname,
		    d->ndiff, d->ndiff == 1 ? "" : "s", d->first, hname);
		goto out;
	}
	rc = 0;
out:
	catalog_release(&scan);
	return rc;
}

int
failback_demote(const char *abs, struct catalog *g, struct as_err *err)
{
	if (write_held(abs, g, err) == -1)
		return as_err_prefix(err, "make '%s' a destination", abs);
	return 0;
}

int
failback_promote(struct snapstore *ss, const char *abs, uint64_t guid,
    const struct catalog *g, const char *dest_key, struct as_err *err)
{
	struct catalog hc, nc;
	struct snap_dest rec;
	struct buf b = BUF_INIT;
	char *path;
	int rc = -1;

	catalog_init(&hc);
	catalog_init(&nc);
	memset(&rec, 0, sizeof(rec));
	path = xasprintf("%s/%s/%s", abs, AS_PRIVATE_DIR, HELD_NAME);
	if (slurp(path, &b, err) == -1 ||
	    catalog_decode(&hc, b.data, b.len, err) == -1) {
		as_err_prefix(err, "held catalog of '%s'", abs);
		goto out;
	}
	if (hc.hdr.guid != guid) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' changed while it was "
		    "read", path);
		goto out;
	}
	if (g != NULL && g->hdr.guid != guid)
		g = NULL;	/* not G's: no hashes rather than wrong ones */
	with_hashes(&hc, g, &nc);
	/* a source's catalogs name it (held.cat names what was sent) */
	free(nc.hdr.source);
	nc.hdr.source = xstrdup(abs);
	if (snapstore_save(ss, &nc, SNAP_SAVE_REPLACE, err) == -1)
		goto out;
	rec.held_guid = guid;
	if (snapstore_dest_put(ss, dest_key, &rec, err) == -1)
		goto out;
	rc = 0;
out:
	free(path);
	buf_release(&b);
	catalog_release(&hc);
	catalog_release(&nc);
	snap_dest_release(&rec);
	return rc;
}
