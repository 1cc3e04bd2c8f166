/*
 * failback_btrfs.c - failback between two local btrfs subvolumes (see
 * failback_btrfs.h).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "driver/btrfs.h"
#include "repl/failback_btrfs.h"
#include "repl/sync_btrfs_int.h"
#include "base/banned.h"

#define DESTS_FILE	"dests"

/* Nested subvolumes are not reversed yet: name the first one. */
static int
no_nested(const char *path, struct as_err *err)
{
	char **rels = NULL;
	size_t n = 0;
	int rc = 0;

	if (btrfs_nested(path, &rels, &n, err) == -1)
		return as_err_prefix(err, "nested subvolumes of '%s'", path);
	if (n > 0)
		rc = as_err_set(err, AS_E_UNSUPPORTED, 0, "'%s' has nested "
		    "subvolumes ('%s'...): reverse takes one btrfs subvolume "
		    "in this version", path, rels[0]);
	btrfs_rels_free(rels, n);
	return rc;
}

/*
 * The old source a as a destination: the fields of a btrfs_dest that
 * btrfs_dest_open would fill, but without its clean-up, which would
 * delete a's own snapshots (read-only, no received_uuid) and with them
 * G_A, the parent that step 3's receive needs.  lock_fd stays the
 * caller's: set it to -1 before btrfs_dest_release.
 */
static void
dest_of_source(struct btrfs_dest *d, const char *a, const char *adir,
    int lock_fd)
{
	char *parent = xstrdup(a), *slash = strrchr(parent, '/');

	*(slash == parent ? slash + 1 : slash) = '\0';
	memset(d, 0, sizeof(*d));
	d->path = xstrdup(a);
	d->dir = xstrdup(adir);
	d->next = xasprintf("%s/.%s" BTRFS_NEXT_SUFFIX, strcmp(parent, "/") ==
	    0 ? "" : parent, strrchr(a, '/') + 1);
	d->lock_fd = lock_fd;
	free(parent);
}

/* Delete path, a subvolume this reverse made; for error paths. */
static void
undo(const char *dir, const char *name)
{
	struct as_err e2;
	char *p = xasprintf("%s/%s", dir, name);

	if (btrfs_is_subvol(p) && btrfs_delete(p, &e2) == -1)
		log_warn("undo the reverse: %s", e2.msg);
	free(p);
}

/*
 * Step 5 on A: its own snapshots (of the subvolume that was its source,
 * uuid) go but those another destination than b holds, and b's line of
 * its dests record.  Best effort: A is a replica already.
 */
static void
forget_source(const char *adir, const char *uuid, const char *b)
{
	struct btrfs_snap *v = NULL;
	struct as_err e2;
	char **paths;
	size_t n = 0, i, np = 0;
	int h;

	if (btrfs_list_snaps(adir, uuid, 0, &v, &n, &e2) == -1) {
		log_warn("'%s': %s", adir, e2.msg);
		return;
	}
	paths = xcalloc(n + 1, sizeof(*paths));
	for (i = 0; i < n; i++) {
		if ((h = sync_btrfs_held_elsewhere(adir, b, v[i].name,
		    &e2)) != 0) {
			if (h == -1)
				log_warn("'%s': %s", adir, e2.msg);
			continue;
		}
		paths[np++] = xasprintf("%s/%s", adir, v[i].name);
	}
	if (np > 0 && btrfs_delete_snapshots((const char *const *)paths, np,
	    &e2) == -1)
		log_warn("delete the snapshots of '%s' as a source: %s", adir,
		    e2.msg);
	if (np == n) {
		char *p = xasprintf("%s/%s", adir, DESTS_FILE);

		if (unlink(p) == -1 && errno != ENOENT)
			log_warn("remove '%s': %s", p, strerror(errno));
		free(p);
	}
	for (i = 0; i < np; i++)
		free(paths[i]);
	free(paths);
	free(v);
}

/*
 * Step 5 on B: the received snapshots (bases of A's runs, which stop)
 * and the published record go.  Best effort: B is a source already.
 */
static void
forget_dest(const char *bdir)
{
	struct btrfs_snap *v = NULL;
	struct as_err e2;
	char **paths, *p;
	size_t n = 0, i;

	if (btrfs_list_snaps(bdir, NULL, 1, &v, &n, &e2) == -1) {
		log_warn("'%s': %s", bdir, e2.msg);
		return;
	}
	paths = xcalloc(n + 1, sizeof(*paths));
	for (i = 0; i < n; i++)
		paths[i] = xasprintf("%s/%s", bdir, v[i].name);
	if (n > 0 && btrfs_delete_snapshots((const char *const *)paths, n,
	    &e2) == -1)
		log_warn("delete the received snapshots in '%s': %s", bdir,
		    e2.msg);
	for (i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	free(v);
	p = xasprintf("%s/%s", bdir, BTRFS_PUBLISHED);
	if (unlink(p) == -1 && errno != ENOENT)
		log_warn("remove '%s': %s", p, strerror(errno));
	free(p);
}

/*
 * What a change to an entry shows in lstat (atime left out: a read).
 * Not the top directory's ctime: setting the subvolume's read-only flag
 * moves it in memory only, so a snapshot taken after can show the older
 * one (seen on 6.18); its entries and mtime still show what was done.
 */
static int
same_stat(const struct stat *x, const struct stat *y, int top)
{
	return x->st_mode == y->st_mode && x->st_ino == y->st_ino &&
	    x->st_uid == y->st_uid && x->st_gid == y->st_gid &&
	    x->st_nlink == y->st_nlink && x->st_size == y->st_size &&
	    x->st_rdev == y->st_rdev &&
	    x->st_mtim.tv_sec == y->st_mtim.tv_sec &&
	    x->st_mtim.tv_nsec == y->st_mtim.tv_nsec &&
	    (top || (x->st_ctim.tv_sec == y->st_ctim.tv_sec &&
	    x->st_ctim.tv_nsec == y->st_ctim.tv_nsec));
}

/*
 * Walk root/rel and compare each entry with the one at other/rel; count
 * the entries.  1 at the first difference (its path in first), 0 none,
 * -1 error.  With other NULL only count.  A snapshot keeps inode numbers
 * and times, and every change moves a ctime (a write, a chmod, a
 * rename) or the entry set (counted).
 */
static int
walk(const char *root, const char *other, const char *rel, uint64_t *n,
    char *first, size_t firstsz, struct as_err *err)
{
	struct stat sa, sg;
	struct dirent *de;
	char *p, *q, *r;
	DIR *d;
	int rc = 0;

	p = rel[0] == '\0' ? xstrdup(root) : xasprintf("%s/%s", root, rel);
	if (lstat(p, &sa) == -1) {
		rc = as_err_sys(err, errno, "'%s'", p);
		free(p);
		return rc;
	}
	(*n)++;
	if (!S_ISDIR(sa.st_mode))
		goto self;
	if ((d = opendir(p)) == NULL) {
		rc = as_err_sys(err, errno, "open '%s'", p);
		free(p);
		return rc;
	}
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") ==
		    0)
			continue;
		r = rel[0] == '\0' ? xstrdup(de->d_name) : xasprintf("%s/%s",
		    rel, de->d_name);
		rc = walk(root, other, r, n, first, firstsz, err);
		free(r);
	}
	if (rc == 0 && errno != 0)
		rc = as_err_sys(err, errno, "read '%s'", p);
	closedir(d);
	if (rc != 0) {
		free(p);
		return rc;
	}
self:
	/* after the entries: a new file is named rather than its directory */
	free(p);
	if (other == NULL)
		return 0;
	q = rel[0] == '\0' ? xstrdup(other) : xasprintf("%s/%s", other, rel);
	rc = lstat(q, &sg) == -1 || !same_stat(&sa, &sg, rel[0] == '\0');
	free(q);
	if (rc == 1)
		snprintf(first, firstsz, "'%s'", rel[0] == '\0' ? "." : rel);
	return rc;
}

/*
 * Step 1 for A: is it as it was at G?  Its ctransid (the transaction
 * that last changed its content) is G_A's when nothing was done to it;
 * when it moved, A and G_A are compared by lstat, because reading a file
 * moves it too (the atime, under relatime the first read after a
 * write).
 */
static int
check_unchanged(const char *a, const struct btrfs_subvol *asv,
    const char *adir, const struct btrfs_snap *ga, int force,
    struct failback_btrfs_result *res, struct as_err *err)
{
	uint64_t gct, na = 0, ng = 0;
	char *g = xasprintf("%s/%s", adir, ga->name);
	int rc;

	if ((rc = btrfs_ctransid(g, &gct, err)) == 0 && asv->ctransid != gct) {
		rc = walk(a, g, "", &na, res->first, sizeof(res->first), err);
		if (rc == 0 && walk(g, NULL, "", &ng, NULL, 0, err) == -1)
			rc = -1;
		if (rc == 0 && na != ng) {
			snprintf(res->first, sizeof(res->first), "%" PRIu64
			    " entries, '%s' had %" PRIu64, na, ga->name, ng);
			rc = 1;
		}
	}
	free(g);
	if (rc <= 0)
		return rc;
	res->changed = 1;
	if (!force)
		return as_err_set(err, AS_E_CONFLICT, 0, "'btrfs:%s' changed "
		    "since '%s' (first: %s): reversing would lose that; --force "
		    "rolls it back to '%s'", a, ga->name, res->first,
		    ga->name);
	log_info("'btrfs:%s' changed since '%s' (first: %s): rolled back "
	    "(--force)", a, ga->name, res->first);
	return 0;
}

int
failback_btrfs_local(const char *a, const char *b, int force,
    struct failback_btrfs_result *res, struct as_err *err)
{
	struct btrfs_subvol asv, s0;
	struct btrfs_dest bd, ad;
	struct btrfs_snap *as = NULL, *bs = NULL;
	const struct btrfs_snap *ga, *gb;
	struct btrfs_pub pub;
	struct stat st;
	char *adir = NULL, *s0path = NULL, name[BTRFS_NAME_MAX + 1];
	const char *dirs[2];
	size_t na = 0, nb = 0;
	unsigned cleaned = 0;
	int afd = -1, rc = -1, chk, made = 0;

	memset(res, 0, sizeof(*res));
	memset(&asv, 0, sizeof(asv));
	memset(&s0, 0, sizeof(s0));
	memset(&bd, 0, sizeof(bd));
	memset(&ad, 0, sizeof(ad));
	bd.lock_fd = ad.lock_fd = -1;

	/* 1. checks: A, B, G, A unchanged since G */
	if (sync_btrfs_check_source(a, &asv, err) == -1 ||
	    no_nested(a, err) == -1)
		goto out;
	if (!btrfs_is_subvol(b)) {
		as_err_set(err, AS_E_NOTFOUND, 0, "destination '%s' is not a "
		    "btrfs subvolume: nothing to reverse", b);
		goto out;
	}
	if (no_nested(b, err) == -1)
		goto out;
	adir = btrfs_snapdir(a);
	if (btrfs_lock(adir, &afd, err) == -1 ||
	    btrfs_dest_open(&bd, b, &cleaned, err) == -1)
		goto out;
	if ((chk = btrfs_dest_check(&bd, err)) == -1)
		goto out;
	if (chk == 1) {
		/* a failover wrote it: B's content is the source's now */
		log_info("reverse: %s: it is sent as it is", err->msg);
		as_err_clear(err);
		res->b_written = 1;
	}
	if (btrfs_list_snaps(adir, asv.uuid, 0, &as, &na, err) == -1 ||
	    btrfs_list_snaps(bd.dir, NULL, 1, &bs, &nb, err) == -1)
		goto out;
	ga = na > 0 ? &as[na - 1] : NULL;
	gb = nb > 0 ? &bs[nb - 1] : NULL;
	if (ga == NULL || gb == NULL || strcmp(gb->received_uuid,
	    ga->uuid) != 0) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds %s%s%s, but the "
		    "newest snapshot of '%s' is %s%s%s: run a final sync "
		    "first, or what only '%s' has is lost", b, gb != NULL ?
		    "'" : "", gb != NULL ? gb->name : "no snapshot", gb !=
		    NULL ? "'" : "", a, ga != NULL ? "'" : "", ga != NULL ?
		    ga->name : "none", ga != NULL ? "'" : "", a);
		goto out;
	}
	snprintf(res->common, sizeof(res->common), "%s", ga->name);
	res->guid = sync_btrfs_uuid64(ga->uuid);
	if (check_unchanged(a, &asv, adir, ga, force, res, err) == -1)
		goto out;

	/* 2. S0, the new source's first snapshot */
	dirs[0] = bd.dir;
	dirs[1] = adir;
	if (btrfs_auto_name(dirs, 2, name, sizeof(name), err) == -1)
		goto out;
	s0path = xasprintf("%s/%s", bd.dir, name);
	if (btrfs_snapshot(b, s0path, 1, err) == -1) {
		as_err_prefix(err, "snapshot '%s'", b);
		goto out;
	}
	made = 1;
	if (btrfs_info(s0path, &s0, err) == -1 || lstat(s0path, &st) == -1) {
		if (err->code == AS_E_OK)
			as_err_sys(err, errno, "'%s'", s0path);
		goto out;
	}
	snprintf(res->base, sizeof(res->base), "%s", name);

	/* 3. S0 received on A, the parent G_A found by its UUID */
	dest_of_source(&ad, a, adir, afd);
	if (sync_btrfs_transfer(&ad, b, bd.dir, s0.uuid, name, gb->name,
	    &res->bytes, err) == -1) {
		as_err_prefix(err, "send '%s' to '%s' from '%s'", name, a,
		    gb->name);
		goto out;
	}
	made = 2;

	/* 4. A a replica: R0 published there (the old A is deleted) */
	memset(&pub, 0, sizeof(pub));
	pub.rel = "";
	pub.name = name;
	pub.has_times = 1;
	pub.atime = st.st_atim;
	pub.mtime = st.st_mtim;
	if (btrfs_dest_publish(&ad, &pub, 1, err) == -1) {
		as_err_prefix(err, "make '%s' a replica", a);
		goto out;
	}
	made = 3;

	/* 5. the records of the roles each side had */
	forget_source(adir, asv.uuid, b);
	forget_dest(bd.dir);
	if (btrfs_set_readonly(b, 0, err) == -1 ||
	    sync_btrfs_dests_put(bd.dir, a, name, err) == -1) {
		as_err_prefix(err, "'%s' is a replica now, but", a);
		goto out;
	}
	rc = 0;
out:
	if (rc == -1 && made >= 1 && made < 3) {
		if (made == 2)
			undo(adir, name);
		undo(bd.dir, name);
	}
	free(as);
	free(bs);
	free(s0path);
	btrfs_subvol_release(&asv);
	btrfs_subvol_release(&s0);
	btrfs_dest_release(&bd);
	ad.lock_fd = -1;	/* afd, closed below */
	btrfs_dest_release(&ad);
	if (afd != -1)
		close(afd);
	free(adir);
	return rc;
}
