/*
 * failback_btrfs.c - failback between two btrfs subvolumes, the steps of
 * each side and both sides here (see failback_btrfs.h).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "driver/btrfs.h"
#include "repl/failback_btrfs.h"
#include "repl/sync.h"
#include "repl/sync_btrfs_int.h"
#include "base/banned.h"

#define DESTS_FILE	"dests"

static void	children_free(struct fb_child *c, size_t n, const char *name);

/*
 * A reverse of one subvolume (the other side's has no nested ones: a
 * client sends REQ_F_SUBVOLS for a tree) where path has some: the trees
 * differ, and reversing would drop or keep what the other side has not.
 */
static int
no_nested(const char *path, struct as_err *err)
{
	char **rels = NULL;
	size_t n = 0;
	int rc = 0;

	if (btrfs_nested(path, &rels, &n, err) == -1)
		return as_err_prefix(err, "nested subvolumes of '%s'", path);
	if (n > 0)
		rc = as_err_set(err, AS_E_CONFLICT, 0, "'%s' has nested "
		    "subvolumes ('%s'...) and the other side none: run a final "
		    "sync of the tree first (not -N), or move them out of "
		    "'%s'", path, rels[0], path);
	btrfs_rels_free(rels, n);
	return rc;
}

/*
 * Between machines S0, a snapshot of B's view, stands for G: the view
 * (path) must be a snapshot of G_B (gb), not of an older received one
 * that a run which failed before its publication left on show.
 */
static int
view_of(const char *path, const struct btrfs_snap *gb, struct as_err *err)
{
	struct btrfs_subvol sv;
	int rc = 0;

	memset(&sv, 0, sizeof(sv));
	if (btrfs_info(path, &sv, err) == -1)
		return -1;
	if (strcmp(sv.parent_uuid, gb->uuid) != 0)
		rc = as_err_set(err, AS_E_CONFLICT, 0, "'%s' does not show its "
		    "newest received snapshot '%s' (a run failed before it "
		    "published it): run a final sync first", path, gb->name);
	btrfs_subvol_release(&sv);
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
 * Step 5 on A: its own snapshots in adir (of the subvolume that was its
 * source, uuid: A's, or a nested one's) go but those another
 * destination than b holds by the dests record in rootdir (the root's
 * snapshot directory: one for the tree), and that record with them.
 * Best effort: A is a replica already.
 */
static void
forget_source(const char *rootdir, const char *adir, const char *uuid,
    const char *b)
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
		if ((h = sync_btrfs_held_elsewhere(rootdir, b, v[i].name,
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
	if (np == n && strcmp(adir, rootdir) == 0) {
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

/* The nested subvolumes to leave out of a walk (paths below its root). */
struct skip {
	char *const	*rels;
	size_t		 n;
};

static int
skipped(const struct skip *sk, const char *rel)
{
	size_t i;

	for (i = 0; sk != NULL && i < sk->n; i++)
		if (strcmp(sk->rels[i], rel) == 0)
			return 1;
	return 0;
}

/*
 * Walk root/rel and compare each entry with the one at other/rel; count
 * the entries.  1 at the first difference (its path in first), 0 none,
 * -1 error.  With other NULL only count.  A snapshot keeps inode numbers
 * and times, and every change moves a ctime (a write, a chmod, a
 * rename) or the entry set (counted).  The nested subvolumes in sk are
 * left out on both sides: each is compared as a subvolume of its own,
 * and in a snapshot it is an empty directory of another inode.
 */
static int
walk(const char *root, const char *other, const char *rel,
    const struct skip *sk, uint64_t *n, char *first, size_t firstsz,
    struct as_err *err)
{
	struct stat sa, sg;
	struct dirent *de;
	char *p, *q, *r;
	DIR *d;
	int rc = 0, fd;

	if (rel[0] != '\0' && skipped(sk, rel))
		return 0;
	p = rel[0] == '\0' ? xstrdup(root) : xasprintf("%s/%s", root, rel);
	if (lstat(p, &sa) == -1) {
		rc = as_err_sys(err, errno, "'%s'", p);
		free(p);
		return rc;
	}
	(*n)++;
	if (!S_ISDIR(sa.st_mode))
		goto self;
	/* never through a symbolic link swapped in meanwhile */
	if ((fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) ==
	    -1 || (d = fdopendir(fd)) == NULL) {
		rc = as_err_sys(err, errno, "open '%s'", p);
		if (fd != -1)
			close(fd);
		free(p);
		return rc;
	}
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") ==
		    0)
			continue;
		r = rel[0] == '\0' ? xstrdup(de->d_name) : xasprintf("%s/%s",
		    rel, de->d_name);
		rc = walk(root, other, r, sk, n, first, firstsz, err);
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
    const char *adir, const struct btrfs_snap *ga, const struct skip *sk,
    int force, struct failback_btrfs_result *res, struct as_err *err)
{
	uint64_t gct, na = 0, ng = 0;
	char *g = xasprintf("%s/%s", adir, ga->name);
	int rc;

	if ((rc = btrfs_ctransid(g, &gct, err)) == 0 && asv->ctransid != gct) {
		rc = walk(a, g, "", sk, &na, res->first, sizeof(res->first),
		    err);
		if (rc == 0 && walk(g, NULL, "", sk, &ng, NULL, 0, err) == -1)
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

/* ------------------------------------------------------------------ */
/* S0 on the wire */

void
failback_btrfs_base_encode(const struct failback_btrfs_base *s0,
    struct buf *b)
{
	char line[BTRFS_UUID_LEN + BTRFS_NAME_MAX + 32];
	int n;

	n = snprintf(line, sizeof(line), "%s %" PRIu64 " %s\n", s0->uuid,
	    s0->ctransid, s0->name);
	buf_add(b, line, (size_t)n);
}

int
failback_btrfs_base_decode(const void *p, size_t len,
    struct failback_btrfs_base *s0, struct as_err *err)
{
	char line[BTRFS_UUID_LEN + BTRFS_NAME_MAX + 32], *sp, *end;
	size_t i;

	memset(s0, 0, sizeof(*s0));
	if (len == 0 || len >= sizeof(line) || ((const char *)p)[len - 1] !=
	    '\n')
		goto bad;
	memcpy(line, p, len - 1);
	line[len - 1] = '\0';
	if (strlen(line) != len - 1 || strlen(line) < BTRFS_UUID_LEN + 3 ||
	    line[BTRFS_UUID_LEN] != ' ')
		goto bad;
	for (i = 0; line[i] != '\0'; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			goto bad;	/* one line, no control bytes */
	for (i = 0; i < BTRFS_UUID_LEN; i++)
		if (!((i == 8 || i == 13 || i == 18 || i == 23) ?
		    line[i] == '-' : strchr("0123456789abcdef", line[i]) !=
		    NULL && line[i] != '\0'))
			goto bad;
	memcpy(s0->uuid, line, BTRFS_UUID_LEN);
	sp = line + BTRFS_UUID_LEN + 1;
	if (*sp < '0' || *sp > '9')
		goto bad;
	errno = 0;
	s0->ctransid = strtoull(sp, &end, 10);
	if (errno != 0 || *end != ' ')
		goto bad;
	end++;
	/* a name autosync makes, for a file name in a snapshot directory */
	if (strncmp(end, "autosync_", 9) != 0 || strchr(end, '/') != NULL ||
	    strlen(end) > BTRFS_NAME_MAX)
		goto bad;
	snprintf(s0->name, sizeof(s0->name), "%s", end);
	return 0;
bad:
	return as_err_set(err, AS_E_MALFORMED, 0, "a btrfs reverse's base is "
	    "not 'UUID CTRANSID autosync_NAME'");
}

/* ------------------------------------------------------------------ */
/* The old source */

void
failback_btrfs_old_release(struct failback_btrfs_old *o)
{
	if (o->lock_fd != -1)
		close(o->lock_fd);
	children_free(o->kids, o->nrels, NULL);
	btrfs_rels_free(o->rels, o->nrels);
	free(o->path);
	free(o->dir);
	memset(o, 0, sizeof(*o));
	o->lock_fd = -1;
}

/*
 * failback_btrfs_check_source, and with ra (a local reverse of a tree)
 * A's nested subvolumes into *ra rather than refused: they are left out
 * of A's comparison with G (each is checked on its own).
 */
static int
check_source(const char *a, uint64_t guid, int force, char ***ra,
    size_t *nra, struct failback_btrfs_old *o,
    struct failback_btrfs_result *res, struct as_err *err)
{
	struct btrfs_subvol asv;
	struct btrfs_snap *v = NULL;
	struct skip sk;
	size_t n = 0;
	int rc = -1;

	memset(o, 0, sizeof(*o));
	o->lock_fd = -1;
	memset(&asv, 0, sizeof(asv));
	memset(&sk, 0, sizeof(sk));
	if (sync_btrfs_check_source(a, &asv, err) == -1)
		goto out;
	if (ra == NULL ? no_nested(a, err) == -1 : btrfs_nested(a, ra, nra,
	    err) == -1) {
		if (ra != NULL)
			as_err_prefix(err, "nested subvolumes of '%s'", a);
		goto out;
	}
	if (ra != NULL) {
		sk.rels = *ra;
		sk.n = *nra;
	}
	o->path = xstrdup(a);
	o->dir = btrfs_snapdir(a);
	memcpy(o->uuid, asv.uuid, sizeof(o->uuid));
	if (btrfs_lock(o->dir, &o->lock_fd, err) == -1 ||
	    btrfs_list_snaps(o->dir, asv.uuid, 0, &v, &n, err) == -1)
		goto out;
	if (n == 0 || (guid != 0 && sync_btrfs_uuid64(v[n - 1].uuid) !=
	    guid)) {
		as_err_set(err, AS_E_CONFLICT, 0, "the destination holds "
		    "%016" PRIx64 ", but the newest snapshot of '%s' is %s%s%s: "
		    "run a final sync first, or what only '%s' has is lost",
		    guid, a, n > 0 ? "'" : "", n > 0 ? v[n - 1].name : "none",
		    n > 0 ? "'" : "", a);
		goto out;
	}
	o->g = v[n - 1];
	snprintf(res->common, sizeof(res->common), "%s", o->g.name);
	res->guid = sync_btrfs_uuid64(o->g.uuid);
	if (check_unchanged(a, &asv, o->dir, &o->g, &sk, force, res,
	    err) == -1)
		goto out;
	rc = 0;
out:
	free(v);
	btrfs_subvol_release(&asv);
	if (rc == -1)
		failback_btrfs_old_release(o);
	return rc;
}

int
failback_btrfs_check_source(const char *a, uint64_t guid, int force,
    struct failback_btrfs_old *o, struct failback_btrfs_result *res,
    struct as_err *err)
{
	return check_source(a, guid, force, NULL, NULL, o, res, err);
}

/*
 * The received R0s (the root's, then each nested subvolume's, parents
 * first) published at A as one view, as a run publishes a tree: one
 * rename, the old A and its nested subvolumes deleted.
 */
static int
publish_tree(struct failback_btrfs_old *o, const struct btrfs_pub *pub,
    size_t n, struct as_err *err)
{
	struct btrfs_dest ad;
	int rc;

	dest_of_source(&ad, o->path, o->dir, o->lock_fd);
	rc = btrfs_dest_publish(&ad, pub, n, err);
	ad.lock_fd = -1;	/* o's */
	btrfs_dest_release(&ad);
	if (rc == -1)
		return as_err_prefix(err, "make '%s' a replica", o->path);
	return 0;
}

/* R0 published at A, A's records of its source role dropped. */
static int
publish_received(struct failback_btrfs_old *o, const char *name,
    const struct timespec *at, const struct timespec *mt, const char *dst,
    struct as_err *err)
{
	struct btrfs_pub pub;

	memset(&pub, 0, sizeof(pub));
	pub.rel = "";
	pub.name = name;
	pub.has_times = 1;
	pub.atime = *at;
	pub.mtime = *mt;
	if (publish_tree(o, &pub, 1, err) == -1)
		return -1;
	forget_source(o->dir, o->dir, o->uuid, dst);
	return 0;
}

int
failback_btrfs_demote(struct failback_btrfs_old *o,
    const struct failback_btrfs_base *s0, const char *dst,
    struct as_err *err)
{
	struct stat st;
	char *g, *r0;
	int rc = -1, made = 0;

	g = xasprintf("%s/%s", o->dir, o->g.name);
	r0 = xasprintf("%s/%s", o->dir, s0->name);
	/* an empty incremental from G, received: what btrfs receive does */
	if (btrfs_snapshot(g, r0, 0, err) == -1)
		goto out;
	made = 1;
	if (btrfs_set_received(r0, s0->uuid, s0->ctransid, err) == -1 ||
	    btrfs_set_readonly(r0, 1, err) == -1 || lstat(g, &st) == -1) {
		if (err->code == AS_E_OK)
			as_err_sys(err, errno, "'%s'", g);
		goto out;
	}
	if (publish_received(o, s0->name, &st.st_atim, &st.st_mtim, dst,
	    err) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1 && made)
		undo(o->dir, s0->name);
	free(g);
	free(r0);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The old destination */

void
failback_btrfs_new_release(struct failback_btrfs_new *n)
{
	children_free(n->kids, n->nrels, n->s0name);
	btrfs_rels_free(n->rels, n->nrels);
	if (n->s0)
		undo(n->d.dir, n->s0name);
	btrfs_dest_release(&n->d);
	memset(n, 0, sizeof(*n));
	n->d.lock_fd = -1;
}

/* failback_btrfs_check_dest; with tree, nested subvolumes are let be. */
static int
check_dest(const char *b, uint64_t guid, int allow_written, int tree,
    struct failback_btrfs_new *n, struct failback_btrfs_result *res,
    struct as_err *err)
{
	struct btrfs_snap *v = NULL;
	size_t nv = 0;
	unsigned cleaned = 0;
	int rc = -1, chk;

	memset(n, 0, sizeof(*n));
	n->d.lock_fd = -1;
	if (!btrfs_is_subvol(b))
		return as_err_set(err, AS_E_NOTFOUND, 0, "destination '%s' is "
		    "not a btrfs subvolume: nothing to reverse", b);
	if ((!tree && no_nested(b, err) == -1) ||
	    btrfs_dest_open(&n->d, b, &cleaned, err) == -1 ||
	    (chk = btrfs_dest_check(&n->d, err)) == -1)
		goto out;
	if (chk == 1 && !allow_written) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' was written since "
		    "autosync published it: a reverse over the network needs "
		    "it as received (its first snapshot stands for the common "
		    "one); sync the changes to the old source first, or reverse "
		    "where both are local", b);
		goto out;
	}
	if (chk == 1) {
		/* a failover wrote it: B's content is the source's now */
		log_info("reverse: %s: it is sent as it is", err->msg);
		as_err_clear(err);
		n->written = res->b_written = 1;
	}
	if (btrfs_list_snaps(n->d.dir, NULL, 1, &v, &nv, err) == -1)
		goto out;
	if (nv == 0 || (guid != 0 &&
	    sync_btrfs_uuid64(v[nv - 1].received_uuid) != guid)) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds %s%s%s, but the "
		    "newest snapshot of its source is %016" PRIx64 ": run a "
		    "final sync first, or what only the source has is lost",
		    b, nv > 0 ? "'" : "", nv > 0 ? v[nv - 1].name :
		    "no snapshot", nv > 0 ? "'" : "", guid);
		goto out;
	}
	n->g = v[nv - 1];
	if (!allow_written && view_of(b, &n->g, err) == -1)
		goto out;
	rc = 0;
out:
	free(v);
	if (rc == -1)
		failback_btrfs_new_release(n);
	return rc;
}

int
failback_btrfs_check_dest(const char *b, uint64_t guid, int allow_written,
    struct failback_btrfs_new *n, struct failback_btrfs_result *res,
    struct as_err *err)
{
	return check_dest(b, guid, allow_written, 0, n, res, err);
}

int
failback_btrfs_take_base(struct failback_btrfs_new *n, const char *name,
    struct failback_btrfs_base *s0, struct as_err *err)
{
	struct btrfs_subvol sv;
	const char *dirs[1];
	char *p;
	int rc = -1;

	memset(s0, 0, sizeof(*s0));
	memset(&sv, 0, sizeof(sv));
	dirs[0] = n->d.dir;
	if (name != NULL)
		snprintf(s0->name, sizeof(s0->name), "%s", name);
	else if (btrfs_auto_name(dirs, 1, s0->name, sizeof(s0->name),
	    err) == -1)
		return -1;
	p = xasprintf("%s/%s", n->d.dir, s0->name);
	if (btrfs_snapshot(n->d.path, p, 1, err) == -1) {
		as_err_prefix(err, "snapshot '%s'", n->d.path);
		goto out;
	}
	n->s0 = 1;
	snprintf(n->s0name, sizeof(n->s0name), "%s", s0->name);
	if (btrfs_info(p, &sv, err) == -1)
		goto out;
	memcpy(s0->uuid, sv.uuid, sizeof(s0->uuid));
	s0->ctransid = sv.ctransid;
	rc = 0;
out:
	btrfs_subvol_release(&sv);
	free(p);
	return rc;
}

int
failback_btrfs_promote(struct failback_btrfs_new *n, const char *id,
    struct as_err *err)
{
	if (btrfs_set_readonly(n->d.path, 0, err) == -1)
		return -1;
	n->s0 = 0;	/* kept: the old source holds it, or will */
	if (sync_btrfs_dests_put(n->d.dir, id, n->s0name, err) == -1)
		return -1;
	forget_dest(n->d.dir);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Both sides here */

/*
 * One nested subvolume of a reverse of a tree, at REL below both roots
 * (the roots are o's and n's): the same steps as the root's.  Local:
 * both halves filled; between machines: this side's (A's: a, adir,
 * auuid, ga; B's: b, bdir, gb and S0).
 */
struct fb_child {
	char		*rel;
	char		*a;		/* A/REL */
	char		*b;		/* B/REL */
	char		*adir;		/* their snapshot directories */
	char		*bdir;
	char		 auuid[BTRFS_UUID_LEN + 1];	/* A/REL's */
	struct btrfs_snap ga;		/* G_A of REL */
	struct btrfs_snap gb;		/* G_B of REL */
	char		 s0uuid[BTRFS_UUID_LEN + 1];
	uint64_t	 s0ct;		/* S0's ctransid */
	int		 s0;		/* S0 taken in bdir (undone on failure) */
	int		 r0;		/* R0 received in adir (likewise) */
};

static void
children_free(struct fb_child *c, size_t n, const char *name)
{
	size_t i;

	for (i = 0; c != NULL && i < n; i++) {
		if (c[i].r0)
			undo(c[i].adir, name);
		if (c[i].s0)
			undo(c[i].bdir, name);
		free(c[i].rel);
		free(c[i].a);
		free(c[i].b);
		free(c[i].adir);
		free(c[i].bdir);
	}
	free(c);
}

static int
has_rel(char *const *v, size_t n, const char *rel)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], rel) == 0)
			return 1;
	return 0;
}

/*
 * The trees' shapes: each subvolume nested in B must be in A too (one
 * B has alone was made on B or deleted from A since: a final sync
 * first).  One A has alone was made since G, or left out of the runs
 * (-N): publishing B's tree at A would delete it, so it is refused even
 * with force (a rollback drops what changed in a subvolume B holds, not
 * a subvolume B never held).
 */
static int
tree_match(const char *a, const char *b, char *const *ra, size_t nra,
    char *const *rb, size_t nrb, struct as_err *err)
{
	size_t i;

	for (i = 0; i < nrb; i++)
		if (!has_rel(ra, nra, rb[i]))
			return as_err_set(err, AS_E_CONFLICT, 0, "'%s' has the "
			    "nested subvolume '%s' that '%s' has not: run a "
			    "final sync first", b, rb[i], a);
	for (i = 0; i < nra; i++)
		if (!has_rel(rb, nrb, ra[i]))
			return as_err_set(err, AS_E_CONFLICT, 0, "'%s/%s' is a "
			    "nested subvolume that '%s' has not (made since the "
			    "last sync, or left out by -N): the reverse would "
			    "delete it, --force too; sync it first, or move it "
			    "out of '%s'", a, ra[i], b, a);
	return 0;
}

/*
 * Step 1 for the nested subvolume c->rel, A's half: A's newest snapshot
 * of it is G_A, and A/REL was not written since G_A (the subvolumes
 * nested in it, in ra, left out).
 */
static int
child_source(struct fb_child *c, const char *a, const char *adir,
    char *const *ra, size_t nra, int force,
    struct failback_btrfs_result *res, struct as_err *err)
{
	struct btrfs_subvol sv;
	struct btrfs_snap *v = NULL;
	struct skip sk;
	char **sub;
	size_t nv = 0, i, l = strlen(c->rel);
	int rc = -1;

	memset(&sv, 0, sizeof(sv));
	c->a = xasprintf("%s/%s", a, c->rel);
	if ((c->adir = btrfs_snapdir_of(adir, c->rel, err)) == NULL ||
	    btrfs_info(c->a, &sv, err) == -1 ||
	    btrfs_list_snaps(c->adir, sv.uuid, 0, &v, &nv, err) == -1)
		goto out;
	memcpy(c->auuid, sv.uuid, sizeof(c->auuid));
	if (nv == 0) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' is a nested subvolume "
		    "with no snapshot yet (made since the last sync, or left "
		    "out by -N): the other side has not got it, and the "
		    "reverse would delete it, --force too; sync it first, or "
		    "move it out of '%s'", c->a, a);
		goto out;
	}
	c->ga = v[nv - 1];
	sub = xcalloc(nra + 1, sizeof(*sub));
	sk.rels = sub;
	sk.n = 0;
	for (i = 0; i < nra; i++)
		if (strncmp(ra[i], c->rel, l) == 0 && ra[i][l] == '/')
			sub[sk.n++] = ra[i] + l + 1;
	rc = check_unchanged(c->a, &sv, c->adir, &c->ga, &sk, force, res,
	    err);
	free(sub);
out:
	free(v);
	btrfs_subvol_release(&sv);
	return rc;
}

/*
 * B's half: B's newest received snapshot of c->rel is G_B, and its
 * received_uuid is g (A's G of it, named gname in messages; g NULL:
 * any).  src names A's side in messages.  view: B/REL must show G_B
 * (between machines, view_of).
 */
static int
child_dest(struct fb_child *c, const char *b, const char *bdir,
    const char *g, const char *gname, const char *src, int view,
    struct as_err *err)
{
	struct btrfs_snap *v = NULL;
	size_t nv = 0;
	int rc = -1;

	c->b = xasprintf("%s/%s", b, c->rel);
	if ((c->bdir = btrfs_snapdir_of(bdir, c->rel, err)) == NULL ||
	    btrfs_list_snaps(c->bdir, NULL, 1, &v, &nv, err) == -1)
		goto out;
	if (nv == 0 && g == NULL) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds no snapshot of "
		    "its source: run a final sync first", c->b);
		goto out;
	}
	if (nv == 0 || (g != NULL && strcmp(v[nv - 1].received_uuid,
	    g) != 0)) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds %s%s%s, but the "
		    "newest snapshot of its source '%s' is '%s': run a final "
		    "sync first, or what only the source has is lost", c->b,
		    nv > 0 ? "'" : "", nv > 0 ? v[nv - 1].name :
		    "no snapshot", nv > 0 ? "'" : "", src, gname);
		goto out;
	}
	c->gb = v[nv - 1];
	rc = view ? view_of(c->b, &c->gb, err) : 0;
out:
	free(v);
	return rc;
}

/* Step 1 for the nested subvolume c->rel, both halves (both local). */
static int
check_child(struct fb_child *c, const char *a, const char *b,
    const char *adir, const char *bdir, char *const *ra, size_t nra,
    int force, struct failback_btrfs_result *res, struct as_err *err)
{
	if (child_source(c, a, adir, ra, nra, force, res, err) == -1)
		return -1;
	return child_dest(c, b, bdir, c->ga.uuid, c->ga.name, c->a, 0, err);
}

/* Step 2 for a nested subvolume: S0 of B/REL in its directory (pub: NULL). */
static int
child_base(struct fb_child *c, const char *name, struct btrfs_pub *pub,
    struct as_err *err)
{
	struct btrfs_subvol sv;
	char *p = xasprintf("%s/%s", c->bdir, name);
	int rc = -1;

	memset(&sv, 0, sizeof(sv));
	if (btrfs_snapshot(c->b, p, 1, err) == -1) {
		as_err_prefix(err, "snapshot '%s'", c->b);
		goto out;
	}
	c->s0 = 1;
	if (btrfs_info(p, &sv, err) == -1 || (pub != NULL &&
	    sync_btrfs_pub_times(c->bdir, name, pub, err) == -1))
		goto out;
	memcpy(c->s0uuid, sv.uuid, sizeof(c->s0uuid));
	c->s0ct = sv.ctransid;
	if (pub != NULL) {
		pub->rel = c->rel;
		pub->name = name;
	}
	rc = 0;
out:
	btrfs_subvol_release(&sv);
	free(p);
	return rc;
}

/* r below rel ("" the root), relative to it; NULL when not below. */
static const char *
below(const char *rel, const char *r)
{
	size_t l = strlen(rel);

	if (l == 0)
		return r;
	return strncmp(r, rel, l) == 0 && r[l] == '/' ? r + l + 1 : NULL;
}

/* path is a placeholder: an empty directory of inode 2 (see below). */
static int
placeholder(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_ino == 2;
}

/*
 * R0 of a subvolume (dir/name, REL) is a snapshot of its G_A made by
 * btrfs receive, and keeps G_A's placeholders of the subvolumes nested
 * in it (empty directories of inode 2, BTRFS_EMPTY_SUBVOL_DIR_OBJECTID),
 * where what a stream makes has none: later runs would carry them (a
 * subvolume deleted on B would stay an empty directory at A, and a
 * directory made at its place could not be received).  R0 is made again
 * without them as the network's demote makes its R0: a writable
 * snapshot, the placeholders removed (their directories' times kept),
 * S0's UUID as received_uuid and ctransid as stransid, read-only, in
 * R0's place.
 */
static int
drop_placeholders(const char *root, const char *rel, char *const *rels,
    size_t nrels, struct as_err *err)
{
	struct timespec ts[2];
	struct stat pd;
	const char *sub;
	char *p, *pdir;
	size_t i;

	for (i = 0; i < nrels; i++) {
		if ((sub = below(rel, rels[i])) == NULL)
			continue;
		p = xasprintf("%s/%s", root, sub);
		if (!placeholder(p)) {
			free(p);
			continue;
		}
		pdir = xstrdup(p);
		*strrchr(pdir, '/') = '\0';
		if (lstat(pdir, &pd) == -1 || rmdir(p) == -1) {
			as_err_sys(err, errno, "remove the placeholder '%s'", p);
			free(pdir);
			free(p);
			return -1;
		}
		ts[0] = pd.st_atim;
		ts[1] = pd.st_mtim;
		if (utimensat(AT_FDCWD, pdir, ts, AT_SYMLINK_NOFOLLOW) == -1) {
			as_err_sys(err, errno, "set times of '%s'", pdir);
			free(pdir);
			free(p);
			return -1;
		}
		free(pdir);
		free(p);
	}
	return 0;
}

/* R0 at dir/name made again without them, if it has some. */
static int
strip_placeholders(const char *dir, const char *name, const char *rel,
    char *const *rels, size_t nrels, const char *s0uuid, uint64_t s0ct,
    struct as_err *err)
{
	const char *sub;
	char *r0 = xasprintf("%s/%s", dir, name), *tmp = NULL, *p;
	size_t i, found = 0;
	int rc = -1, made = 0;

	for (i = 0; i < nrels; i++) {
		if ((sub = below(rel, rels[i])) == NULL)
			continue;
		p = xasprintf("%s/%s", r0, sub);
		found += (size_t)placeholder(p);
		free(p);
	}
	if (found == 0) {
		free(r0);
		return 0;
	}
	tmp = xasprintf("%s/.%s.strip", dir, name);
	if (btrfs_snapshot(r0, tmp, 0, err) == -1)
		goto out;
	made = 1;
	if (drop_placeholders(tmp, rel, rels, nrels, err) == -1 ||
	    btrfs_set_received(tmp, s0uuid, s0ct, err) == -1 ||
	    btrfs_set_readonly(tmp, 1, err) == -1 ||
	    btrfs_delete(r0, err) == -1)
		goto out;
	if (rename(tmp, r0) == -1) {
		as_err_sys(err, errno, "rename '%s' to '%s'", tmp, r0);
		goto out;
	}
	made = 0;
	rc = 0;
out:
	if (made) {
		struct as_err e2;

		if (btrfs_delete(tmp, &e2) == -1)
			log_warn("undo the reverse: %s", e2.msg);
	}
	free(tmp);
	free(r0);
	return rc;
}

/*
 * Both sides here: A and every subvolume nested in it (the nested ones
 * B holds as children of its view, btrfs_nested's order: parents
 * first) each take the steps of the header, the checks of all before
 * any change, and the whole tree published at A by one rename (a run's
 * view), so that a failure before it leaves both sides as they were.
 */
int
failback_btrfs_local(const char *a, const char *b, int force,
    struct failback_btrfs_result *res, struct as_err *err)
{
	struct failback_btrfs_old o;
	struct failback_btrfs_new n;
	struct failback_btrfs_base s0;
	struct btrfs_dest ad;
	struct btrfs_pub *pub = NULL;
	struct fb_child *c = NULL;
	const char **dirs = NULL;
	char name[BTRFS_NAME_MAX + 1], **ra = NULL, **rb = NULL;
	size_t nra = 0, nrb = 0, nc = 0, i;
	int rc = -1, received = 0;

	memset(res, 0, sizeof(*res));
	memset(&n, 0, sizeof(n));
	n.d.lock_fd = -1;
	name[0] = '\0';
	/* 1. checks, parents first: A, B holding A's newest, each child */
	if (check_source(a, 0, force, &ra, &nra, &o, res, err) == -1)
		goto out;
	if (check_dest(b, res->guid, 1, 1, &n, res, err) == -1)
		goto out;
	if (btrfs_nested(b, &rb, &nrb, err) == -1) {
		as_err_prefix(err, "nested subvolumes of '%s'", b);
		goto out;
	}
	if (tree_match(a, b, ra, nra, rb, nrb, err) == -1)
		goto out;
	c = xcalloc(nrb + 1, sizeof(*c));
	for (nc = 0; nc < nrb; nc++) {
		c[nc].rel = xstrdup(rb[nc]);
		if (check_child(&c[nc], a, b, o.dir, n.d.dir, ra, nra, force,
		    res, err) == -1) {
			nc++;
			goto out;
		}
	}
	/* 2. S0 of each, parents first, named so that A has not the name */
	dirs = xcalloc(2 * (nc + 1), sizeof(*dirs));
	dirs[0] = n.d.dir;
	dirs[1] = o.dir;
	for (i = 0; i < nc; i++) {
		dirs[2 + 2 * i] = c[i].bdir;
		dirs[3 + 2 * i] = c[i].adir;
	}
	pub = xcalloc(nc + 1, sizeof(*pub));
	if (btrfs_auto_name(dirs, 2 * (nc + 1), name, sizeof(name),
	    err) == -1 || failback_btrfs_take_base(&n, name, &s0, err) == -1 ||
	    sync_btrfs_pub_times(n.d.dir, name, &pub[0], err) == -1)
		goto out;
	snprintf(res->base, sizeof(res->base), "%s", name);
	pub[0].rel = "";
	pub[0].name = name;
	for (i = 0; i < nc; i++)
		if (child_base(&c[i], name, &pub[i + 1], err) == -1)
			goto out;
	/* 3. each S0 received on A, the parent G_A found by its UUID */
	dest_of_source(&ad, a, o.dir, o.lock_fd);
	if (sync_btrfs_transfer(&ad, "", b, n.d.dir, s0.uuid, name, n.g.name,
	    &res->bytes, err) == -1)
		as_err_prefix(err, "send '%s' to '%s' from '%s'", name, a,
		    n.g.name);
	else
		received = 1;
	for (i = 0; received && i < nc; i++) {
		if (sync_btrfs_transfer(&ad, c[i].rel, c[i].b, c[i].bdir,
		    c[i].s0uuid, name, c[i].gb.name, &res->bytes,
		    err) == -1) {
			as_err_prefix(err, "send '%s' to '%s' from '%s'", name,
			    c[i].a, c[i].gb.name);
			break;
		}
		c[i].r0 = 1;
	}
	ad.lock_fd = -1;
	btrfs_dest_release(&ad);
	if (!received || i < nc)
		goto out;
	if (strip_placeholders(o.dir, name, "", rb, nrb, s0.uuid,
	    s0.ctransid, err) == -1)
		goto out;
	for (i = 0; i < nc; i++)
		if (strip_placeholders(c[i].adir, name, c[i].rel, rb, nrb,
		    c[i].s0uuid, c[i].s0ct, err) == -1)
			goto out;
	/* 4. A a replica: the tree published there (the old A deleted) */
	if (publish_tree(&o, pub, nc + 1, err) == -1)
		goto out;
	received = 0;
	for (i = 0; i < nc; i++)
		c[i].r0 = c[i].s0 = 0;	/* A holds them now */
	forget_source(o.dir, o.dir, o.uuid, b);
	for (i = 0; i < nc; i++)
		forget_source(o.dir, c[i].adir, c[i].auuid, b);
	/* 5. B the source: the root, then each child writable */
	if (failback_btrfs_promote(&n, a, err) == -1) {
		as_err_prefix(err, "'%s' is a replica now, but", a);
		goto out;
	}
	for (i = 0; i < nc; i++) {
		if (btrfs_set_readonly(c[i].b, 0, err) == -1) {
			as_err_prefix(err, "'%s' is a replica now, but", a);
			goto out;
		}
		forget_dest(c[i].bdir);
	}
	rc = 0;
out:
	if (received)
		undo(o.dir, name);
	children_free(c, nc, name);
	free(pub);
	free(dirs);
	btrfs_rels_free(ra, nra);
	btrfs_rels_free(rb, nrb);
	failback_btrfs_new_release(&n);
	failback_btrfs_old_release(&o);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Trees between machines: each side its own subvolumes */

void
failback_btrfs_tree_encode(const struct failback_btrfs_base *s0,
    const struct failback_btrfs_sub *v, size_t n, struct buf *b)
{
	size_t i;
	char *line;

	if (s0 != NULL)
		failback_btrfs_base_encode(s0, b);
	for (i = 0; i < n; i++) {
		line = s0 != NULL ? xasprintf("%s %s %" PRIu64 " %s\n", v[i].g,
		    v[i].s0uuid, v[i].s0ct, v[i].rel) : xasprintf("%s %s\n",
		    v[i].g, v[i].rel);
		buf_add(b, line, strlen(line));
		free(line);
	}
}

/* A UUID's text (8-4-4-4-12, lowercase hex) at p, followed by a space. */
static int
uuid_at(const char *p, char out[BTRFS_UUID_LEN + 1])
{
	size_t i;

	for (i = 0; i < BTRFS_UUID_LEN; i++)
		if (!((i == 8 || i == 13 || i == 18 || i == 23) ? p[i] == '-' :
		    p[i] != '\0' && strchr("0123456789abcdef", p[i]) != NULL))
			return -1;
	if (p[BTRFS_UUID_LEN] != ' ')
		return -1;
	memcpy(out, p, BTRFS_UUID_LEN);
	out[BTRFS_UUID_LEN] = '\0';
	return 0;
}

int
failback_btrfs_tree_decode(const void *p, size_t len, int with_s0,
    struct failback_btrfs_base *s0, struct failback_btrfs_sub **out,
    size_t *nout, struct as_err *err)
{
	const char *text = p, *nl, *c;
	struct failback_btrfs_sub *v = NULL, *e;
	char *line = NULL, *end;
	size_t n = 0, off = 0, ll;
	int rc = -1;

	*out = NULL;
	*nout = 0;
	if (len == 0 && !with_s0)
		return 0;	/* no nested subvolume */
	if (len == 0 || len > FAILBACK_BTRFS_TREE_MAX ||
	    memchr(text, '\0', len) != NULL || text[len - 1] != '\n')
		goto bad;
	if (with_s0) {
		if ((nl = memchr(text, '\n', len)) == NULL)
			goto bad;
		off = (size_t)(nl - text) + 1;
		if (failback_btrfs_base_decode(text, off, s0, err) == -1)
			return -1;
	}
	while (off < len) {
		nl = memchr(text + off, '\n', len - off);
		ll = (size_t)(nl - (text + off));
		free(line);
		line = xstrndup(text + off, ll);
		off += ll + 1;
		if (n == FAILBACK_BTRFS_SUBS_MAX) {
			rc = as_err_set(err, AS_E_LIMIT, 0, "a btrfs reverse "
			    "names more than %d nested subvolumes",
			    FAILBACK_BTRFS_SUBS_MAX);
			goto out;
		}
		v = xreallocarray(v, n + 1, sizeof(*v));
		e = &v[n++];
		memset(e, 0, sizeof(*e));
		if (uuid_at(line, e->g) == -1)
			goto bad;
		c = line + BTRFS_UUID_LEN + 1;
		if (with_s0) {
			if (uuid_at(c, e->s0uuid) == -1)
				goto bad;
			c += BTRFS_UUID_LEN + 1;
			if (*c < '0' || *c > '9')
				goto bad;
			errno = 0;
			e->s0ct = strtoull(c, &end, 10);
			if (errno != 0 || *end != ' ')
				goto bad;
			c = end + 1;
		}
		/* (short enough for its snapshot directory's name: rel) */
		if (sync_btrfs_rel_check(c, "a btrfs reverse", err) == -1 ||
		    strlen(c) >= sizeof(e->rel)) {
			rc = -1;
			goto out;
		}
		snprintf(e->rel, sizeof(e->rel), "%s", c);
		/* parents first, each once: what btrfs_nested gives */
		if (n > 1 && strcmp(v[n - 2].rel, e->rel) >= 0)
			goto bad;
	}
	*out = v;
	*nout = n;
	v = NULL;
	rc = 0;
	goto out;
bad:
	rc = as_err_set(err, AS_E_MALFORMED, 0, "a btrfs reverse's list of "
	    "nested subvolumes is not lines 'GUUID %sREL' (ascending)",
	    with_s0 ? "S0UUID CTRANSID " : "");
out:
	free(line);
	free(v);
	return rc;
}

int
failback_btrfs_check_source_tree(const char *a, uint64_t guid, int force,
    struct failback_btrfs_old *o, struct failback_btrfs_result *res,
    struct as_err *err)
{
	char **ra = NULL;
	size_t nra = 0, i;

	if (check_source(a, guid, force, &ra, &nra, o, res, err) == -1) {
		btrfs_rels_free(ra, nra);
		return -1;
	}
	o->rels = ra;
	o->nrels = nra;
	o->kids = xcalloc(nra + 1, sizeof(*o->kids));
	for (i = 0; i < nra; i++) {
		o->kids[i].rel = xstrdup(ra[i]);
		if (child_source(&o->kids[i], a, o->dir, ra, nra, force, res,
		    err) == -1) {
			failback_btrfs_old_release(o);
			return -1;
		}
	}
	return 0;
}

void
failback_btrfs_source_subs(const struct failback_btrfs_old *o,
    struct failback_btrfs_sub **v, size_t *n)
{
	size_t i;

	*v = xcalloc(o->nrels + 1, sizeof(**v));
	*n = o->nrels;
	for (i = 0; i < o->nrels; i++) {
		snprintf((*v)[i].rel, sizeof((*v)[i].rel), "%s", o->kids[i].rel);
		memcpy((*v)[i].g, o->kids[i].ga.uuid, sizeof((*v)[i].g));
	}
}

/* The RELs of v (pointing into it), for tree_match. */
static char **
sub_rels(const struct failback_btrfs_sub *v, size_t n)
{
	char **r = xcalloc(n + 1, sizeof(*r));
	size_t i;

	for (i = 0; i < n; i++)
		r[i] = (char *)v[i].rel;
	return r;
}

/* The entry of v for rel, or NULL. */
static const struct failback_btrfs_sub *
sub_find(const struct failback_btrfs_sub *v, size_t n, const char *rel)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].rel, rel) == 0)
			return &v[i];
	return NULL;
}

int
failback_btrfs_match_source(const struct failback_btrfs_old *o,
    const char *other, const struct failback_btrfs_sub *v, size_t n,
    struct as_err *err)
{
	const struct failback_btrfs_sub *e;
	char **rb = sub_rels(v, n);
	size_t i;
	int rc;

	rc = tree_match(o->path, other, o->rels, o->nrels, rb, n, err);
	free(rb);
	for (i = 0; rc == 0 && i < o->nrels; i++) {
		e = sub_find(v, n, o->kids[i].rel);
		if (strcmp(e->g, o->kids[i].ga.uuid) != 0)
			rc = as_err_set(err, AS_E_CONFLICT, 0, "'%s/%s' holds "
			    "a copy of %s, but the newest snapshot of '%s' is "
			    "'%s': run a final sync first, or what only the "
			    "source has is lost", other, e->rel, e->g,
			    o->kids[i].a, o->kids[i].ga.name);
	}
	return rc;
}

/*
 * R0 of one subvolume (rel: "" the root) at dir/name: a writable
 * snapshot of its G_A (dir/gname) without the placeholders of the
 * subvolumes nested in it (o->rels), given S0's UUID and ctransid as
 * received, read-only.  Deleted again on failure.  pub gets its times
 * (G_A's top directory's: S0 is G).
 */
static int
make_r0(const struct failback_btrfs_old *o, const char *dir,
    const char *gname, const char *name, const char *rel,
    const char *s0uuid, uint64_t s0ct, struct btrfs_pub *pub,
    struct as_err *err)
{
	struct stat st;
	char *g = xasprintf("%s/%s", dir, gname);
	char *r0 = xasprintf("%s/%s", dir, name);
	int rc = -1, made = 0;

	if (btrfs_snapshot(g, r0, 0, err) == -1)
		goto out;
	made = 1;
	if (drop_placeholders(r0, rel, o->rels, o->nrels, err) == -1 ||
	    btrfs_set_received(r0, s0uuid, s0ct, err) == -1 ||
	    btrfs_set_readonly(r0, 1, err) == -1)
		goto out;
	if (lstat(g, &st) == -1) {
		as_err_sys(err, errno, "'%s'", g);
		goto out;
	}
	pub->rel = rel;
	pub->name = name;
	pub->has_times = 1;
	pub->atime = st.st_atim;
	pub->mtime = st.st_mtim;
	rc = 0;
out:
	if (rc == -1 && made)
		undo(dir, name);
	free(g);
	free(r0);
	return rc;
}

int
failback_btrfs_demote_tree(struct failback_btrfs_old *o,
    const struct failback_btrfs_base *s0,
    const struct failback_btrfs_sub *v, size_t n, const char *dst,
    struct as_err *err)
{
	const struct failback_btrfs_sub *e;
	struct btrfs_pub *pub;
	size_t i, made = 0;
	int rc = -1;

	if (failback_btrfs_match_source(o, dst, v, n, err) == -1)
		return -1;
	pub = xcalloc(o->nrels + 1, sizeof(*pub));
	if (make_r0(o, o->dir, o->g.name, s0->name, "", s0->uuid,
	    s0->ctransid, &pub[0], err) == -1)
		goto out;
	for (made = 0; made < o->nrels; made++) {
		e = sub_find(v, n, o->kids[made].rel);
		if (make_r0(o, o->kids[made].adir, o->kids[made].ga.name,
		    s0->name, o->kids[made].rel, e->s0uuid, e->s0ct,
		    &pub[made + 1], err) == -1)
			goto out;
	}
	if (publish_tree(o, pub, o->nrels + 1, err) == -1)
		goto out;
	forget_source(o->dir, o->dir, o->uuid, dst);
	for (i = 0; i < o->nrels; i++)
		forget_source(o->dir, o->kids[i].adir, o->kids[i].auuid, dst);
	rc = 0;
out:
	if (rc == -1 && pub[0].name != NULL) {
		undo(o->dir, s0->name);
		for (i = 0; i < made; i++)
			undo(o->kids[i].adir, s0->name);
	}
	free(pub);
	return rc;
}

int
failback_btrfs_check_dest_tree(const char *b, uint64_t guid,
    struct failback_btrfs_new *n, struct failback_btrfs_result *res,
    struct as_err *err)
{
	if (check_dest(b, guid, 0, 1, n, res, err) == -1)
		return -1;
	if (btrfs_nested(b, &n->rels, &n->nrels, err) == -1) {
		as_err_prefix(err, "nested subvolumes of '%s'", b);
		failback_btrfs_new_release(n);
		return -1;
	}
	n->kids = xcalloc(n->nrels + 1, sizeof(*n->kids));
	return 0;
}

int
failback_btrfs_check_dest_children(struct failback_btrfs_new *n,
    const char *other, const struct failback_btrfs_sub *v, size_t nv,
    struct as_err *err)
{
	const struct failback_btrfs_sub *e = NULL;
	char **ra, *src;
	size_t i;
	int rc = 0;

	if (v != NULL) {
		ra = sub_rels(v, nv);
		rc = tree_match(other, n->d.path, ra, nv, n->rels, n->nrels,
		    err);
		free(ra);
	}
	for (i = 0; rc == 0 && i < n->nrels; i++) {
		free(n->kids[i].rel);
		free(n->kids[i].b);
		free(n->kids[i].bdir);
		n->kids[i].b = n->kids[i].bdir = NULL;
		n->kids[i].rel = xstrdup(n->rels[i]);
		if (v != NULL)
			e = sub_find(v, nv, n->rels[i]);
		src = xasprintf("%s/%s", other, n->rels[i]);
		rc = child_dest(&n->kids[i], n->d.path, n->d.dir, e != NULL ?
		    e->g : NULL, e != NULL ? e->g : NULL, src, 1, err);
		free(src);
	}
	n->kids_ok = rc == 0;
	return rc;
}

int
failback_btrfs_take_base_tree(struct failback_btrfs_new *n,
    struct failback_btrfs_base *s0, struct failback_btrfs_sub **v,
    size_t *nv, struct as_err *err)
{
	const char **dirs;
	char name[BTRFS_NAME_MAX + 1];
	size_t i;
	int rc = -1;

	*v = NULL;
	*nv = 0;
	if (!n->kids_ok && n->nrels > 0)
		return as_err_set(err, AS_E_INTERNAL, 0, "the nested "
		    "subvolumes of '%s' are not checked", n->d.path);
	/* one name, free in every snapshot directory of the tree */
	dirs = xcalloc(n->nrels + 1, sizeof(*dirs));
	dirs[0] = n->d.dir;
	for (i = 0; i < n->nrels; i++)
		dirs[i + 1] = n->kids[i].bdir;
	if (btrfs_auto_name(dirs, n->nrels + 1, name, sizeof(name),
	    err) == -1 || failback_btrfs_take_base(n, name, s0, err) == -1)
		goto out;
	*v = xcalloc(n->nrels + 1, sizeof(**v));
	for (i = 0; i < n->nrels; i++) {
		if (child_base(&n->kids[i], name, NULL, err) == -1)
			goto out;
		snprintf((*v)[i].rel, sizeof((*v)[i].rel), "%s",
		    n->kids[i].rel);
		memcpy((*v)[i].g, n->kids[i].gb.received_uuid,
		    sizeof((*v)[i].g));
		memcpy((*v)[i].s0uuid, n->kids[i].s0uuid,
		    sizeof((*v)[i].s0uuid));
		(*v)[i].s0ct = n->kids[i].s0ct;
	}
	*nv = n->nrels;
	rc = 0;
out:
	if (rc == -1) {
		free(*v);
		*v = NULL;
	}
	free(dirs);
	return rc;
}

int
failback_btrfs_promote_tree(struct failback_btrfs_new *n, const char *id,
    struct as_err *err)
{
	size_t i;
	int rc;

	rc = failback_btrfs_promote(n, id, err);
	for (i = 0; n->s0 == 0 && i < n->nrels; i++)
		n->kids[i].s0 = 0;	/* kept with the root's */
	if (rc == -1)
		return -1;
	for (i = 0; i < n->nrels; i++) {
		if (btrfs_set_readonly(n->kids[i].b, 0, err) == -1)
			return -1;
		forget_dest(n->kids[i].bdir);
	}
	return 0;
}
