/*
 * sync_btrfs.c - the replication step for btrfs subvolumes (sync.h),
 * with the btrfs driver (driver/btrfs.h; its header describes where the
 * snapshots live and the trust rule).
 *
 * btrfs:SRC -> btrfs:DST, both local:
 *  1. open the destination (take its lock, delete what an interrupted
 *     run left: partial receives, an unfinished view) and check that
 *     what is at DST is what autosync last published there; modified is
 *     CONFLICT unless SYNC_FORCE;
 *  2. the subvolumes: SRC and, unless SYNC_NO_RECURSE, every subvolume
 *     nested below it (btrfs_nested);
 *  3. a read-only snapshot of each, one name autosync_YYYY-MM-DD_HH:MM:SS
 *     for the run (each subvolume's snapshot is atomic; btrfs has no
 *     snapshot of several subvolumes at once, so children are taken one
 *     after the other, parents first);
 *  4. for each, the newest common snapshot: the newest of the source's
 *     whose UUID is the received_uuid of one the destination holds;
 *     `btrfs send [-p common] | btrfs receive` joined by one pipe, into
 *     the private snapshot directory,
 *     checked (read-only, the expected received_uuid) or deleted;
 *  5. publish the view at DST (btrfs_dest_publish): a read-only snapshot
 *     of the newest received root with each child's at its place,
 *     swapped in by one rename;
 *  6. record which snapshot DST holds (SNAPDIR/dests: other destinations'
 *     snapshots are kept), then prune older autosync_* snapshots on both
 *     sides but the newest o->keep_src (source) and o->keep_dst
 *     (destination), and the snapshots of children that are gone.
 *
 * Between machines (btrfs_push, btrfs_pull; a server's side is
 * sync_btrfs_receive and sync_btrfs_send_*, called by serve_btrfs.c):
 * one subvolume (nested ones need SYNC_NO_RECURSE and are left out),
 * the same layout, view and pruning on each side; the protocol's GUID is
 * the first 64 bits of a snapshot's UUID.  A stream is received only
 * from a sender configured as trusted: the server's grant says so, and
 * a pulling client names the server (sync_opts.trust).
 *
 * btrfs:SRC -> a directory (local or remote): the portable engine reads
 * a read-only snapshot of SRC at a stable path, SNAPDIR/dir-source,
 * replaced each run, so that its catalogs (keyed by the source path)
 * give incremental runs.  A snapshot at a fixed name rather than a
 * symbolic link to the newest one (sync refuses a source that is not a
 * directory: it lstat()s it) or a bind mount (it would need a mount
 * namespace and a cleanup after a crash).  Snapshots keep inode numbers
 * and times, so the scan's quick check reuses unchanged entries.  dir_scan stops at other file systems, and a
 * nested subvolume is one: only SRC itself is copied, nested
 * subvolumes are empty directories there (as with -N).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "driver/btrfs.h"
#include "repl/endpoint.h"
#include "repl/remote.h"
#include "repl/sync.h"
#include "repl/sync_btrfs_int.h"
#include "base/banned.h"

#define DIR_SOURCE	"dir-source"
#define DESTS_FILE	"dests"

/* One subvolume of the run. */
struct item {
	char		*rel;		/* "" for SRC itself */
	char		*abs;		/* the source subvolume */
	char		*sdir;		/* its snapshot directory */
	char		 uuid[BTRFS_UUID_LEN + 1];
	char		 snap_uuid[BTRFS_UUID_LEN + 1];	/* this run's */
	int		 taken;		/* this run's snapshot exists */
};

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The first 64 bits of a UUID, for sync_result's GUID fields. */
static uint64_t
uuid64(const char *u)
{
	uint64_t v = 0;
	int k = 0;

	for (; *u != '\0' && k < 16; u++) {
		if (*u == '-')
			continue;
		v = v << 4 | (uint64_t)(*u <= '9' ? *u - '0' :
		    (*u | 0x20) - 'a' + 10);
		k++;
	}
	return v;
}

/* path without trailing slashes (owned); must be absolute. */
static char *
norm_path(const char *p, const char *what, struct as_err *err)
{
	size_t l = strlen(p);

	if (p[0] != '/') {
		as_err_set(err, AS_E_USAGE, 0, "%s '%s': btrfs: takes an "
		    "absolute path", what, p);
		return NULL;
	}
	while (l > 1 && p[l - 1] == '/')
		l--;
	if (l == 1) {
		as_err_set(err, AS_E_USAGE, 0, "%s '/': name a subvolume "
		    "below the top directory", what);
		return NULL;
	}
	return xstrndup(p, l);
}

static int
inside(const char *a, const char *b)
{
	size_t lb = strlen(b);

	return strcmp(a, b) == 0 || (strncmp(a, b, lb) == 0 &&
	    (a[lb] == '/' || lb == 1));
}

/* SRC must be a subvolume whose parent directory is on its file system. */
static int
check_source(const char *src, struct btrfs_subvol *sv, struct as_err *err)
{
	unsigned char a[16], b[16];
	struct stat st;
	char *parent;
	int rc;

	memset(sv, 0, sizeof(*sv));
	if (lstat(src, &st) == -1)
		return as_err_sys(err, errno, "source '%s'", src);
	if (!btrfs_is_subvol(src))
		return as_err_set(err, AS_E_NOTFOUND, 0, "source '%s': not a "
		    "btrfs subvolume", src);
	if (btrfs_info(src, sv, err) == -1)
		return as_err_prefix(err, "source '%s'", src);
	parent = xstrdup(src);
	*(strrchr(parent, '/') == parent ? parent + 1 :
	    strrchr(parent, '/')) = '\0';
	rc = btrfs_fsid(src, a, err);
	if (rc == 0 && (btrfs_fsid(parent, b, NULL) == -1 ||
	    memcmp(a, b, 16) != 0))
		rc = as_err_set(err, AS_E_USAGE, 0, "source '%s' is the top of "
		    "a mount: its snapshots go next to it, in '%s', which is "
		    "another file system; mount the file system's top level "
		    "and name the subvolume below it", src, parent);
	free(parent);
	return rc;
}

/* ------------------------------------------------------------------ */
/* SNAPDIR/dests: which snapshot each destination holds, "NAME\tDEST". */

struct dest_rec {
	char	*name;
	char	*dest;
};

static void
dests_free(struct dest_rec *v, size_t n)
{
	size_t i;

	for (i = 0; i < n && v != NULL; i++) {
		free(v[i].name);
		free(v[i].dest);
	}
	free(v);
}

static int
dests_read(const char *sdir, struct dest_rec **out, size_t *nout,
    struct as_err *err)
{
	struct dest_rec *v = NULL;
	char *p, *line = NULL, *tab;
	size_t n = 0, cap = 0;
	ssize_t len;
	FILE *f;

	p = xasprintf("%s/%s", sdir, DESTS_FILE);
	f = fopen(p, "re");
	free(p);
	*out = NULL;
	*nout = 0;
	if (f == NULL)
		return errno == ENOENT ? 0 : as_err_sys(err, errno, "read "
		    "'%s/%s'", sdir, DESTS_FILE);
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if ((tab = strchr(line, '\t')) == NULL)
			continue;
		*tab = '\0';
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n].name = xstrdup(line);
		v[n].dest = xstrdup(tab + 1);
		n++;
	}
	free(line);
	fclose(f);
	*out = v;
	*nout = n;
	return 0;
}

static int
dests_put(const char *sdir, const char *dst, const char *name,
    struct as_err *err)
{
	struct dest_rec *v = NULL;
	char *p, *tmp;
	size_t n = 0, i;
	FILE *f;
	int rc = -1;

	if (dests_read(sdir, &v, &n, err) == -1)
		return -1;
	p = xasprintf("%s/%s", sdir, DESTS_FILE);
	tmp = xasprintf("%s.tmp", p);
	if ((f = fopen(tmp, "we")) == NULL) {
		as_err_sys(err, errno, "write '%s'", tmp);
		goto out;
	}
	fprintf(f, "%s\t%s\n", name, dst);
	for (i = 0; i < n; i++)
		if (strcmp(v[i].dest, dst) != 0)
			fprintf(f, "%s\t%s\n", v[i].name, v[i].dest);
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) == -1) {
		as_err_sys(err, errno, "write '%s'", tmp);
		fclose(f);
		goto out;
	}
	fclose(f);
	if (rename(tmp, p) == -1) {
		as_err_sys(err, errno, "rename '%s'", tmp);
		goto out;
	}
	rc = 0;
out:
	dests_free(v, n);
	free(p);
	free(tmp);
	return rc;
}

/* Whether another destination that still exists holds name. */
static int
held_elsewhere(const struct dest_rec *v, size_t n, const char *dst,
    const char *name)
{
	struct stat st;
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0 &&
		    strcmp(v[i].dest, dst) != 0 &&
		    (v[i].dest[0] != '/' || lstat(v[i].dest, &st) == 0))
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Items */

static void
items_free(struct item *v, size_t n)
{
	size_t i;

	for (i = 0; i < n && v != NULL; i++) {
		free(v[i].rel);
		free(v[i].abs);
		free(v[i].sdir);
	}
	free(v);
}

/* SRC and, unless norecurse, its nested subvolumes. */
static int
items_get(const char *src, const char *sdir, const struct btrfs_subvol *sv,
    int norecurse, struct item **out, size_t *nout, struct as_err *err)
{
	struct btrfs_subvol c;
	struct item *v;
	char **rels = NULL;
	size_t nr = 0, i, n = 0;
	int rc = -1;

	if (!norecurse && btrfs_nested(src, &rels, &nr, err) == -1)
		return as_err_prefix(err, "nested subvolumes of '%s'", src);
	v = xcalloc(nr + 1, sizeof(*v));
	v[0].rel = xstrdup("");
	v[0].abs = xstrdup(src);
	v[0].sdir = xstrdup(sdir);
	memcpy(v[0].uuid, sv->uuid, sizeof(v[0].uuid));
	n = 1;
	for (i = 0; i < nr; i++, n++) {
		v[n].rel = xstrdup(rels[i]);
		v[n].abs = xasprintf("%s/%s", src, rels[i]);
		if ((v[n].sdir = btrfs_snapdir_of(sdir, rels[i], err)) == NULL)
			goto out;
		memset(&c, 0, sizeof(c));
		if (btrfs_info(v[n].abs, &c, err) == -1)
			goto out;
		memcpy(v[n].uuid, c.uuid, sizeof(v[n].uuid));
		btrfs_subvol_release(&c);
	}
	*out = v;
	*nout = n;
	v = NULL;
	rc = 0;
out:
	items_free(v, n + 1);
	btrfs_rels_free(rels, nr);
	return rc;
}

/* Take this run's snapshot of every item; undo them all on failure. */
static int
items_snapshot(struct item *v, size_t n, const char *name,
    struct as_err *err)
{
	struct btrfs_subvol sv;
	struct as_err e2;
	char *p;
	size_t i;

	for (i = 0; i < n; i++) {
		if (btrfs_mkdir_private(v[i].sdir, err) == -1)
			goto fail;
		p = xasprintf("%s/%s", v[i].sdir, name);
		memset(&sv, 0, sizeof(sv));
		if (btrfs_snapshot(v[i].abs, p, 1, err) == -1) {
			free(p);
			goto fail;
		}
		v[i].taken = 1;
		if (btrfs_info(p, &sv, err) == -1) {
			free(p);
			goto fail;
		}
		free(p);
		memcpy(v[i].snap_uuid, sv.uuid, sizeof(sv.uuid));
		btrfs_subvol_release(&sv);
	}
	return 0;
fail:
	as_err_prefix(err, "snapshot '%s'", v[i].abs);
	for (i = 0; i < n; i++) {
		if (!v[i].taken)
			continue;
		p = xasprintf("%s/%s", v[i].sdir, name);
		if (btrfs_delete(p, &e2) == -1)
			log_debug("%s", e2.msg);
		free(p);
		v[i].taken = 0;
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* One stream */

/*
 * Send it (incremental from parent when not NULL) and receive it into
 * d's snapshot directory.  Locally the two are joined by one pipe, as
 * `btrfs send | btrfs receive` would be: nothing to frame, rate-limit or
 * compress, so the bytes need not pass through here (measured in
 * bench/README.md); the sender's count of written bytes is the stream's
 * size.  The receiver's error explains a failure, unless it only saw
 * the stream end early because the sender failed.
 */
static int
transfer(struct btrfs_dest *d, const struct item *it, const char *name,
    const char *parent, uint64_t *bytes, struct as_err *err)
{
	struct btrfs_proc *sp = NULL, *rp = NULL;
	struct as_err serr;
	char *snap, *par = NULL, drain[4096];
	uint64_t n = 0;
	ssize_t r;
	int fds[2] = { -1, -1 }, src_rc, rcv_rc, keep = -1;

	snap = xasprintf("%s/%s", it->sdir, name);
	if (parent != NULL)
		par = xasprintf("%s/%s", it->sdir, parent);
	if (pipe2(fds, O_CLOEXEC) == -1 ||
	    (keep = fcntl(fds[0], F_DUPFD_CLOEXEC, 0)) == -1) {
		as_err_sys(err, errno, "pipe");
		goto fail;
	}
	rp = btrfs_dest_receive_start(d, it->rel, name, fds[0], 1, err);
	fds[0] = -1;
	if (rp == NULL)
		goto fail;
	sp = btrfs_send_start(snap, par, fds[1], err);
	fds[1] = -1;
	if (sp == NULL)
		goto fail;
	/*
	 * btrfs receive -e exits at the stream's end marker, and can do so
	 * before the copying thread of btrfs send has seen the end of its
	 * own pipe: that last splice finds no reader on ours and the
	 * kernel kills btrfs send with SIGPIPE, with nothing left to write
	 * (splice checks for readers before it waits for input).  Our
	 * read end stays a reader until then: drained (nothing is left
	 * after a whole stream) once the receive succeeded, closed at once
	 * when it failed, so that the sender stops.
	 */
	if (btrfs_proc_exited_ok(rp) == 1) {
		while ((r = read(keep, drain, sizeof(drain))) > 0 ||
		    (r == -1 && errno == EINTR))
			if (r > 0)
				log_debug("'%s': %zd bytes after the end of the "
				    "stream", it->abs, r);
	}
	close(keep);
	keep = -1;
	if (btrfs_proc_written(sp, &n) == 0)
		*bytes += n;
	as_err_clear(&serr);
	src_rc = btrfs_proc_finish(sp, &serr);
	sp = NULL;
	rcv_rc = btrfs_dest_receive_finish(d, rp, it->rel, name,
	    it->snap_uuid, err);
	rp = NULL;
	if (rcv_rc == 0 && src_rc == 0) {
		free(snap);
		free(par);
		return 0;
	}
	if (src_rc == -1 && (rcv_rc == 0 || err->code == AS_E_TRUNCATED))
		*err = serr;
	if (rcv_rc == 0) {
		/* the receiver kept it: the sender's failure still wins */
		char *kept, *dir;
		struct as_err e2;

		dir = btrfs_snapdir_of(d->dir, it->rel, &e2);
		kept = dir != NULL ? xasprintf("%s/%s", dir, name) : NULL;
		if (kept != NULL && btrfs_delete(kept, &e2) == -1)
			log_debug("%s", e2.msg);
		free(kept);
		free(dir);
	}
	as_err_prefix(err, "'%s'", it->abs);
	goto out;
fail:
	btrfs_proc_abort(rp);
	btrfs_proc_abort(sp);
out:
	if (keep != -1)
		close(keep);
	if (fds[0] != -1)
		close(fds[0]);
	if (fds[1] != -1)
		close(fds[1]);
	free(snap);
	free(par);
	return -1;
}

/* The times of the top directory of item's snapshot name. */
static int
snap_times(const struct item *it, const char *name, struct btrfs_pub *p,
    struct as_err *err)
{
	struct stat st;
	char *path = xasprintf("%s/%s", it->sdir, name);
	int rc = 0;

	if (lstat(path, &st) == -1)
		rc = as_err_sys(err, errno, "'%s'", path);
	else {
		p->has_times = 1;
		p->atime = st.st_atim;
		p->mtime = st.st_mtim;
	}
	free(path);
	return rc;
}

/* The newest of src (not name) whose UUID a received one carries. */
static const struct btrfs_snap *
newest_common(const struct btrfs_snap *src, size_t ns,
    const struct btrfs_snap *held, size_t nh, const char *name)
{
	size_t i, j;

	for (i = ns; i-- > 0;) {
		if (strcmp(src[i].name, name) == 0)
			continue;
		for (j = 0; j < nh; j++)
			if (strcmp(src[i].uuid, held[j].received_uuid) == 0)
				return &src[i];
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Pruning */

/* What a prune deletes, in one batch at the end. */
struct doomed {
	char	**v;
	size_t	  n;
	char	**dirs;		/* emptied directories to remove after */
	size_t	  ndirs;
};

static void
doomed_add(char ***v, size_t *n, char *p)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = p;
}

/*
 * The snapshots of v (oldest first) but keep, the newest nkeep (0:
 * none by count) and other destinations'.
 */
static void
prune_list(const char *dir, const struct btrfs_snap *v, size_t n,
    const char *keep, unsigned nkeep, const struct dest_rec *dr, size_t ndr,
    const char *dst, struct doomed *dd)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if ((keep != NULL && strcmp(v[i].name, keep) == 0) ||
		    (nkeep > 0 && n - i <= nkeep) ||
		    (dr != NULL && held_elsewhere(dr, ndr, dst, v[i].name)))
			continue;
		doomed_add(&dd->v, &dd->n, xasprintf("%s/%s", dir,
		    v[i].name));
	}
}

/* Snapshot directories of children no longer in items. */
static int
prune_gone(const char *snapdir, const struct item *items, size_t n,
    int received, struct doomed *dd, struct as_err *err)
{
	struct btrfs_snap *v = NULL;
	struct dirent *de;
	char *base, *p, *q;
	size_t i, nv;
	DIR *dir;
	int rc = 0, found;

	base = xasprintf("%s/%s", snapdir, BTRFS_CHILDREN);
	if ((dir = opendir(base)) == NULL) {
		free(base);
		return errno == ENOENT ? 0 : as_err_sys(err, errno, "open "
		    "'%s/%s'", snapdir, BTRFS_CHILDREN);
	}
	while (rc == 0 && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s", base, de->d_name);
		found = 0;
		for (i = 1; i < n && !found; i++) {
			q = btrfs_snapdir_of(snapdir, items[i].rel, NULL);
			found = q != NULL && strcmp(q, p) == 0;
			free(q);
		}
		if (!found) {
			rc = btrfs_list_snaps(p, NULL, received, &v, &nv, err);
			if (rc == 0)
				prune_list(p, v, nv, NULL, 0, NULL, 0, NULL, dd);
			free(v);
			v = NULL;
			doomed_add(&dd->dirs, &dd->ndirs, p);
		} else
			free(p);
	}
	closedir(dir);
	free(base);
	return rc;
}

static int
prune(const char *dst, struct btrfs_dest *d, const struct item *items,
    size_t n, const char *name, int norecurse, unsigned nkeep_src,
    unsigned nkeep_dst, unsigned *pruned, struct as_err *err)
{
	struct btrfs_snap *v = NULL;
	struct dest_rec *dr = NULL;
	struct doomed dd;
	char *dir;
	size_t i, nv = 0, ndr = 0;
	int rc = -1;

	memset(&dd, 0, sizeof(dd));
	if (dests_read(items[0].sdir, &dr, &ndr, err) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (btrfs_list_snaps(items[i].sdir, items[i].uuid, 0, &v, &nv,
		    err) == -1)
			goto out;
		prune_list(items[i].sdir, v, nv, name, nkeep_src, dr, ndr, dst,
		    &dd);
		free(v);
		v = NULL;
		if ((dir = btrfs_snapdir_of(d->dir, items[i].rel, err)) ==
		    NULL)
			goto out;
		if (btrfs_list_snaps(dir, NULL, 1, &v, &nv, err) == -1) {
			free(dir);
			goto out;
		}
		prune_list(dir, v, nv, name, nkeep_dst, NULL, 0, NULL, &dd);
		free(dir);
		free(v);
		v = NULL;
	}
	if (!norecurse && (prune_gone(items[0].sdir, items, n, 0, &dd,
	    err) == -1 || prune_gone(d->dir, items, n, 1, &dd, err) == -1))
		goto out;
	if (btrfs_delete_snapshots((const char *const *)dd.v, dd.n,
	    err) == -1)
		goto out;
	*pruned += (unsigned)dd.n;
	for (i = 0; i < dd.ndirs; i++)
		(void)rmdir(dd.dirs[i]);
	rc = 0;
out:
	for (i = 0; i < dd.n; i++)
		free(dd.v[i]);
	for (i = 0; i < dd.ndirs; i++)
		free(dd.dirs[i]);
	free(dd.v);
	free(dd.dirs);
	free(v);
	dests_free(dr, ndr);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The runs */

static int
btrfs_to_btrfs(const char *src, const char *dst, const struct sync_opts *o,
    struct sync_result *res, struct as_err *err)
{
	struct btrfs_subvol sv;
	struct btrfs_dest d;
	struct btrfs_snap *ss = NULL, *hs = NULL;
	const struct btrfs_snap *common;
	struct btrfs_pub *pub = NULL;
	struct item *items = NULL;
	char *sdir = NULL, *hdir = NULL, name[BTRFS_NAME_MAX + 1];
	const char *dirs[2];
	size_t n = 0, i, nss = 0, nhs = 0;
	unsigned cleaned = 0;
	int64_t t1;
	int sfd = -1, rc = -1, chk;

	memset(&sv, 0, sizeof(sv));
	memset(&d, 0, sizeof(d));
	d.lock_fd = -1;
	if (inside(dst, src) || inside(src, dst)) {
		return as_err_set(err, AS_E_USAGE, 0, "'%s' and '%s': one is "
		    "inside the other", src, dst);
	}
	if (check_source(src, &sv, err) == -1)
		goto out;
	sdir = btrfs_snapdir(src);
	if (btrfs_lock(sdir, &sfd, err) == -1)
		goto out;

	/* 1. the destination */
	if (btrfs_dest_open(&d, dst, &cleaned, err) == -1)
		goto out;
	res->recovered = cleaned > 0;
	chk = btrfs_dest_check(&d, err);
	if (chk == -1 || (chk == 1 && !(o->flags & SYNC_FORCE)))
		goto out;
	if (chk == 1) {
		res->replaced = 1;
		as_err_clear(err);
	}

	/* 2., 3. the subvolumes and their snapshots */
	if (items_get(src, sdir, &sv, o->flags & SYNC_NO_RECURSE, &items, &n,
	    err) == -1)
		goto out;
	dirs[0] = sdir;
	dirs[1] = d.dir;
	if (btrfs_auto_name(dirs, 2, name, sizeof(name), err) == -1 ||
	    items_snapshot(items, n, name, err) == -1)
		goto out;
	snprintf(res->name, sizeof(res->name), "%s", name);
	res->guid = uuid64(items[0].snap_uuid);

	/* 4. send and receive each */
	pub = xcalloc(n, sizeof(*pub));
	for (i = 0; i < n; i++) {
		if (btrfs_list_snaps(items[i].sdir, items[i].uuid, 0, &ss,
		    &nss, err) == -1)
			goto out;
		if ((hdir = btrfs_snapdir_of(d.dir, items[i].rel, err)) ==
		    NULL || btrfs_list_snaps(hdir, NULL, 1, &hs, &nhs,
		    err) == -1)
			goto out;
		common = newest_common(ss, nss, hs, nhs, name);
		if (i == 0) {
			res->full = common == NULL;
			if (common != NULL) {
				snprintf(res->base_name,
				    sizeof(res->base_name), "%s",
				    common->name);
				res->base_guid = uuid64(common->uuid);
			}
		}
		t1 = now_ns();
		if (transfer(&d, &items[i], name, common != NULL ?
		    common->name : NULL, &res->send.stream_bytes, err) == -1)
			goto out;
		res->xfer_ns += now_ns() - t1;
		res->subvols++;
		pub[i].rel = items[i].rel;
		pub[i].name = name;
		if (snap_times(&items[i], name, &pub[i], err) == -1)
			goto out;
		free(ss);
		free(hs);
		free(hdir);
		ss = hs = NULL;
		hdir = NULL;
	}
	res->send.data_bytes = res->send.stream_bytes;
	res->send.entries_sent = res->subvols;

	/* 5. publish */
	if (btrfs_dest_publish(&d, pub, n, err) == -1)
		goto out;

	/* 6. record, prune */
	if (dests_put(sdir, dst, name, err) == -1)
		goto out;
	if (!(o->flags & SYNC_NO_PRUNE) && prune(dst, &d, items, n, name,
	    o->flags & SYNC_NO_RECURSE, o->keep_src, o->keep_dst,
	    &res->pruned, err) == -1) {
		as_err_prefix(err, "prune snapshots of '%s'", src);
		goto out;
	}
	rc = 0;
out:
	free(ss);
	free(hs);
	free(hdir);
	free(pub);
	items_free(items, n);
	btrfs_subvol_release(&sv);
	btrfs_dest_release(&d);
	if (sfd != -1)
		close(sfd);
	free(sdir);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Between machines: one subvolume, its snapshots by the UUID's GUID */

/* The snapshot of v whose UUID's first 64 bits are guid, or NULL. */
static const struct btrfs_snap *
snap_by_guid(const struct btrfs_snap *v, size_t n, uint64_t guid)
{
	size_t i;

	for (i = n; guid != 0 && i-- > 0;)
		if (uuid64(v[i].uuid) == guid)
			return &v[i];
	return NULL;
}

/* A remote btrfs side takes one subvolume: refuse nested ones unless -N. */
static int
no_nested(const char *src, const struct btrfs_subvol *sv, int norecurse,
    struct as_err *err)
{
	char **rels = NULL;
	size_t nr = 0;
	int rc = 0;

	if (norecurse)
		return 0;
	if (btrfs_nested(src, &rels, &nr, err) == -1)
		return as_err_prefix(err, "nested subvolumes of '%s'", src);
	if (nr > 0)
		rc = as_err_set(err, AS_E_USAGE, 0, "'%s' has nested "
		    "subvolumes ('%s'...): a remote btrfs side replicates "
		    "one subvolume; use -N (they are left out)",
		    src, rels[0]);
	btrfs_rels_free(rels, nr);
	return rc;
}

int
sync_btrfs_held(const char *dst, uint64_t *guid, char *name, size_t namesz,
    struct as_err *err)
{
	struct btrfs_snap *v = NULL;
	char *dir, *p;
	size_t n = 0;
	int rc;

	*guid = 0;
	if ((p = norm_path(dst, "destination", err)) == NULL)
		return -1;
	dir = btrfs_snapdir(p);
	free(p);
	rc = btrfs_list_snaps(dir, NULL, 1, &v, &n, err);
	free(dir);
	if (rc == -1)
		return -1;
	if (n > 0) {
		*guid = uuid64(v[n - 1].received_uuid);
		if (name != NULL)
			snprintf(name, namesz, "%s", v[n - 1].name);
	}
	free(v);
	return n > 0 ? 1 : 0;
}

int
sync_btrfs_receive(void *arg, const char *dst, int in_fd, int rflags,
    struct dir_recv_result *res, struct as_err *err)
{
	const struct sync_btrfs_recv *a = arg;
	struct btrfs_dest d;
	struct btrfs_snap *before = NULL, *after = NULL;
	const struct btrfs_snap *got = NULL;
	struct btrfs_proc *p;
	struct btrfs_pub pub;
	struct doomed dd;
	char *path;
	size_t i, j, nb = 0, na = 0;
	unsigned cleaned = 0;
	int rc = -1, chk, fd;

	memset(&d, 0, sizeof(d));
	memset(&dd, 0, sizeof(dd));
	d.lock_fd = -1;
	/* refused before anything is read or created */
	if (a == NULL || !a->trusted)
		return as_err_set(err, AS_E_AUTH, 0, "refusing a btrfs stream "
		    "for '%s' from a sender not configured as trusted (btrfs "
		    "receive does not validate streams)", dst);
	if ((path = norm_path(dst, "destination", err)) == NULL)
		return -1;
	if (btrfs_dest_open(&d, path, &cleaned, err) == -1)
		goto out;
	chk = btrfs_dest_check(&d, err);
	if (chk == -1 || (chk == 1 && !(rflags & DIR_RECV_FORCE)))
		goto out;
	as_err_clear(err);
	if (btrfs_list_snaps(d.dir, NULL, 1, &before, &nb, err) == -1)
		goto out;
	if ((fd = dup(in_fd)) == -1) {
		as_err_sys(err, errno, "dup");
		goto out;
	}
	if ((p = btrfs_receive_start(d.dir, fd, 1, err)) == NULL ||
	    btrfs_proc_finish(p, err) == -1)
		goto out;	/* the next open deletes a partial receive */
	if (btrfs_list_snaps(d.dir, NULL, 1, &after, &na, err) == -1)
		goto out;
	for (i = 0; i < na && got == NULL; i++) {
		for (j = 0; j < nb; j++)
			if (strcmp(after[i].name, before[j].name) == 0)
				break;
		if (j == nb)
			got = &after[i];
	}
	if (got == NULL || strncmp(got->name, "autosync_", 9) != 0) {
		as_err_set(err, AS_E_MALFORMED, 0, "the stream made no new "
		    "read-only autosync_* snapshot with a received_uuid in "
		    "'%s'", d.dir);
		goto out;
	}
	memset(&pub, 0, sizeof(pub));
	pub.rel = "";
	pub.name = got->name;
	if (btrfs_dest_publish(&d, &pub, 1, err) == -1)
		goto out;
	res->target_guid = uuid64(got->received_uuid);
	snprintf(res->name, sizeof(res->name), "%s", got->name);
	res->st.entries_sent = 1;
	/* the older received snapshots (best effort: published already) */
	prune_list(d.dir, after, na, got->name, 0, NULL, 0, NULL, &dd);
	if (dd.n > 0 && btrfs_delete_snapshots((const char *const *)dd.v,
	    dd.n, err) == -1) {
		log_warn("prune '%s': %s", d.dir, err->msg);
		as_err_clear(err);
	}
	rc = 0;
out:
	for (i = 0; i < dd.n; i++)
		free(dd.v[i]);
	free(dd.v);
	free(before);
	free(after);
	btrfs_dest_release(&d);
	free(path);
	return rc;
}

int
sync_btrfs_list(const char *src, int norecurse, struct proto_snap **v,
    size_t *n, struct as_err *err)
{
	struct btrfs_subvol sv;
	struct btrfs_snap *ss = NULL;
	char *path, *sdir = NULL;
	size_t i, ns = 0;
	int rc = -1;

	*v = NULL;
	*n = 0;
	memset(&sv, 0, sizeof(sv));
	if ((path = norm_path(src, "source", err)) == NULL)
		return -1;
	if (check_source(path, &sv, err) == -1 ||
	    no_nested(path, &sv, norecurse, err) == -1)
		goto out;
	sdir = btrfs_snapdir(path);
	if (btrfs_list_snaps(sdir, sv.uuid, 0, &ss, &ns, err) == -1)
		goto out;
	*v = xcalloc(ns + 1, sizeof(**v));
	for (i = 0; i < ns; i++) {
		(*v)[i].guid = uuid64(ss[i].uuid);
		snprintf((*v)[i].name, sizeof((*v)[i].name), "%s",
		    ss[i].name);
	}
	*n = ns;
	rc = 0;
out:
	free(ss);
	free(sdir);
	free(path);
	btrfs_subvol_release(&sv);
	return rc;
}

struct sync_btrfs_send {
	char		*src;
	char		*sdir;
	char		*snap;		/* the new snapshot */
	char		*parent;	/* the base, or NULL */
	char		 name[BTRFS_NAME_MAX + 1];
	char		 uuid[BTRFS_UUID_LEN + 1];
	int		 lock_fd;
};

/* The sender's thread: btrfs send into the pump's pipe. */
static int
bsend_run(void *arg, int fd, struct as_err *err)
{
	const struct sync_btrfs_send *s = arg;
	struct btrfs_proc *p;
	int f;

	if ((f = dup(fd)) == -1)
		return as_err_sys(err, errno, "dup");
	if ((p = btrfs_send_start(s->snap, s->parent, f, err)) == NULL)
		return -1;
	return btrfs_proc_finish(p, err);
}

void
sync_btrfs_send_close(struct sync_btrfs_send *s)
{
	if (s == NULL)
		return;
	if (s->lock_fd != -1)
		close(s->lock_fd);
	free(s->src);
	free(s->sdir);
	free(s->snap);
	free(s->parent);
	free(s);
}

/* Take a read-only snapshot of src named name in sdir; its UUID. */
static int
take_snapshot(struct sync_btrfs_send *s, const struct btrfs_subvol *sv,
    struct as_err *err)
{
	struct item it;

	memset(&it, 0, sizeof(it));
	it.rel = (char *)(uintptr_t)"";
	it.abs = s->src;
	it.sdir = s->sdir;
	memcpy(it.uuid, sv->uuid, sizeof(it.uuid));
	if (items_snapshot(&it, 1, s->name, err) == -1)
		return -1;
	memcpy(s->uuid, it.snap_uuid, sizeof(s->uuid));
	s->snap = xasprintf("%s/%s", s->sdir, s->name);
	return 0;
}

int
sync_btrfs_send_open(const char *src, uint64_t base, int force,
    int norecurse, struct sync_btrfs_send **out, struct proto_result *go,
    struct xfer_src *xs, struct as_err *err)
{
	struct sync_btrfs_send *s;
	struct btrfs_subvol sv;
	struct btrfs_snap *ss = NULL;
	const struct btrfs_snap *b;
	const char *dirs[1];
	size_t ns = 0;

	memset(&sv, 0, sizeof(sv));
	s = xcalloc(1, sizeof(*s));
	s->lock_fd = -1;
	if ((s->src = norm_path(src, "source", err)) == NULL ||
	    check_source(s->src, &sv, err) == -1 ||
	    no_nested(s->src, &sv, norecurse, err) == -1)
		goto fail;
	s->sdir = btrfs_snapdir(s->src);
	if (btrfs_lock(s->sdir, &s->lock_fd, err) == -1 ||
	    btrfs_list_snaps(s->sdir, sv.uuid, 0, &ss, &ns, err) == -1)
		goto fail;
	b = snap_by_guid(ss, ns, base);
	if (base != 0 && b == NULL && !force) {
		as_err_set(err, AS_E_CONFLICT, 0, "no common snapshot: the "
		    "destination holds %016" PRIx64 " which '%s' does not "
		    "have; use -F for a full resend", base, s->src);
		goto fail;
	}
	if (b != NULL)
		s->parent = xasprintf("%s/%s", s->sdir, b->name);
	dirs[0] = s->sdir;
	if (btrfs_auto_name(dirs, 1, s->name, sizeof(s->name), err) == -1 ||
	    take_snapshot(s, &sv, err) == -1)
		goto fail;
	memset(go, 0, sizeof(*go));
	go->flags = RES_F_GO | (b == NULL ? RES_F_FULL : 0);
	go->guid = uuid64(s->uuid);
	go->base_guid = b != NULL ? uuid64(b->uuid) : 0;
	snprintf(go->name, sizeof(go->name), "%s", s->name);
	xs->fd = -1;
	xs->send = bsend_run;
	xs->send_arg = s;
	free(ss);
	btrfs_subvol_release(&sv);
	*out = s;
	return 0;
fail:
	free(ss);
	btrfs_subvol_release(&sv);
	sync_btrfs_send_close(s);
	return -1;
}

int
sync_btrfs_send_commit(struct sync_btrfs_send *s, const char *id,
    int committed, struct as_err *err)
{
	struct btrfs_subvol sv;
	struct btrfs_snap *v = NULL;
	struct dest_rec *dr = NULL;
	struct doomed dd;
	size_t i, nv = 0, ndr = 0;
	int rc = -1;

	memset(&dd, 0, sizeof(dd));
	memset(&sv, 0, sizeof(sv));
	if (!committed) {
		/* nobody holds it: the next pull takes another */
		if (btrfs_delete(s->snap, err) == -1)
			return -1;
		return 0;
	}
	if (dests_put(s->sdir, id, s->name, err) == -1 ||
	    dests_read(s->sdir, &dr, &ndr, err) == -1 ||
	    btrfs_info(s->src, &sv, err) == -1 ||
	    btrfs_list_snaps(s->sdir, sv.uuid, 0, &v, &nv, err) == -1)
		goto out;
	prune_list(s->sdir, v, nv, s->name, 0, dr, ndr, id, &dd);
	if (btrfs_delete_snapshots((const char *const *)dd.v, dd.n,
	    err) == -1)
		goto out;
	rc = 0;
out:
	for (i = 0; i < dd.n; i++)
		free(dd.v[i]);
	free(dd.v);
	free(v);
	dests_free(dr, ndr);
	btrfs_subvol_release(&sv);
	return rc;
}

/* btrfs:SRC -> a server's btrfs:DST (push): HOLD, then RECEIVE. */
static int
btrfs_push(const char *src, const struct endpoint *de,
    const struct sync_opts *o, struct sync_result *res, struct as_err *err)
{
	struct sync_btrfs_send s;
	struct btrfs_subvol sv;
	struct btrfs_snap *ss = NULL;
	const struct btrfs_snap *b = NULL;
	struct remote_opts ro;
	struct remote *r = NULL;
	struct remote_xfer x;
	struct xfer_src xs;
	struct catalog tc;
	struct dest_rec *dr = NULL;
	struct doomed dd;
	const char *dirs[1];
	uint64_t held = 0;
	size_t i, ns = 0, ndr = 0;
	int64_t t1;
	int rc = -1, h, force = (o->flags & SYNC_FORCE) != 0;

	memset(&s, 0, sizeof(s));
	memset(&sv, 0, sizeof(sv));
	memset(&dd, 0, sizeof(dd));
	catalog_init(&tc);
	s.lock_fd = -1;
	res->remote = 1;
	s.src = xstrdup(src);
	if (check_source(src, &sv, err) == -1 ||
	    no_nested(src, &sv, o->flags & SYNC_NO_RECURSE, err) == -1)
		goto out;
	s.sdir = btrfs_snapdir(src);
	if (btrfs_lock(s.sdir, &s.lock_fd, err) == -1)
		goto out;
	memset(&ro, 0, sizeof(ro));
	if (o->remote != NULL)
		ro = *o->remote;
	if ((r = remote_open(de, &ro, err)) == NULL)
		goto out;
	remote_set_path(r, de->path + 1);
	if ((h = remote_hold(r, &held, &res->recovered, err)) == -1) {
		as_err_prefix(err, "'%s'", de->spec);
		goto out;
	}
	if (btrfs_list_snaps(s.sdir, sv.uuid, 0, &ss, &ns, err) == -1)
		goto out;
	if (h == 1 && (b = snap_by_guid(ss, ns, held)) == NULL && !force) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' on '%s' has diverged "
		    "from '%s': it holds %016" PRIx64 ", which is not one of "
		    "the source's snapshots; use -F for a full resend",
		    de->path + 1, remote_peer(r), src, held);
		goto out;
	}
	if (b != NULL) {
		s.parent = xasprintf("%s/%s", s.sdir, b->name);
		snprintf(res->base_name, sizeof(res->base_name), "%s",
		    b->name);
		res->base_guid = held;
	}
	dirs[0] = s.sdir;
	if (btrfs_auto_name(dirs, 1, s.name, sizeof(s.name), err) == -1 ||
	    take_snapshot(&s, &sv, err) == -1)
		goto out;
	snprintf(res->name, sizeof(res->name), "%s", s.name);
	res->guid = uuid64(s.uuid);
	res->full = b == NULL;
	tc.hdr.guid = res->guid;
	snprintf(tc.hdr.name, sizeof(tc.hdr.name), "%s", s.name);
	memset(&xs, 0, sizeof(xs));
	xs.fd = -1;
	xs.send = bsend_run;
	xs.send_arg = &s;
	xs.target = &tc;
	t1 = now_ns();
	rc = remote_push(r, &xs, force, &x, err);
	res->xfer_ns = now_ns() - t1;
	res->send.stream_bytes = x.raw_bytes;
	res->send.data_bytes = x.raw_bytes;
	res->wire_bytes = x.wire_bytes;
	if (rc != 0) {
		rc = -1;
		goto out;
	}
	rc = -1;
	res->subvols = 1;
	res->send.entries_sent = 1;
	/* record, prune the source */
	free(ss);
	ss = NULL;
	if (dests_put(s.sdir, de->spec, s.name, err) == -1)
		goto out;
	if (!(o->flags & SYNC_NO_PRUNE)) {
		if (dests_read(s.sdir, &dr, &ndr, err) == -1 ||
		    btrfs_list_snaps(s.sdir, sv.uuid, 0, &ss, &ns, err) == -1)
			goto out;
		prune_list(s.sdir, ss, ns, s.name, 0, dr, ndr, de->spec, &dd);
		if (btrfs_delete_snapshots((const char *const *)dd.v, dd.n,
		    err) == -1)
			goto out;
		res->pruned += (unsigned)dd.n;
	}
	rc = 0;
out:
	for (i = 0; i < dd.n; i++)
		free(dd.v[i]);
	free(dd.v);
	dests_free(dr, ndr);
	free(ss);
	catalog_release(&tc);
	remote_close(r);
	btrfs_subvol_release(&sv);
	if (s.lock_fd != -1)
		close(s.lock_fd);
	free(s.src);
	free(s.sdir);
	free(s.snap);
	free(s.parent);
	return rc;
}

/*
 * A server's btrfs:SRC -> btrfs:DST (pull): only from a sender this side
 * trusts (--trust HOST), refused before connecting otherwise; then the
 * shared agreement (SNAPSHOTS: what DST holds must be one of the
 * server's), SEND, and sync_btrfs_receive in the receiving child.
 */
static int
btrfs_pull(const struct endpoint *se, const char *dst,
    const struct endpoint *de, const struct sync_opts *o,
    struct sync_result *res, struct as_err *err)
{
	struct sync_btrfs_recv ra;
	struct remote_opts ro;
	struct remote *r = NULL;
	struct remote_xfer x;
	struct proto_snap *v = NULL;
	char *id = NULL;
	uint64_t held = 0;
	size_t n = 0;
	int64_t t1;
	int rc = -1;

	res->remote = 2;
	if (o->trust == NULL || strcmp(o->trust, se->host) != 0)
		return as_err_set(err, AS_E_AUTH, 0, "refusing to receive a "
		    "btrfs stream from '%s': not configured as trusted (btrfs "
		    "receive does not validate streams; name it with --trust "
		    "%s, or a service's trust=%s, if it is)", se->host,
		    se->host, se->host);
	if (sync_btrfs_held(dst, &held, NULL, 0, err) == -1)
		return -1;
	memset(&ro, 0, sizeof(ro));
	if (o->remote != NULL)
		ro = *o->remote;
	if ((r = remote_open(se, &ro, err)) == NULL)
		goto out;
	remote_set_path(r, se->path + 1);
	remote_set_flags(r, o->flags & SYNC_NO_RECURSE ? 0 : REQ_F_TREE);
	if (sync_pull_agree(r, se, de, o->flags, "btrfs:", dst, &held, &v, &n,
	    &id, err) == -1)
		goto out;
	ra.trusted = 1;
	t1 = now_ns();
	rc = remote_pull_with(r, held, id, dst, o->flags & SYNC_FORCE ?
	    DIR_RECV_FORCE : 0, sync_btrfs_receive, &ra, &x, err);
	res->xfer_ns = now_ns() - t1;
	sync_pull_result(&x, v, n, res);
	res->send.stream_bytes = x.raw_bytes;
	res->send.data_bytes = x.raw_bytes;
	if (rc == 0) {
		res->subvols = 1;
		res->send.entries_sent = 1;
	}
out:
	remote_close(r);
	free(v);
	free(id);
	return rc;
}

/* btrfs:SRC to a directory: the portable engine reads a frozen copy. */
static int
btrfs_to_dir(const char *src, const struct endpoint *de,
    const struct sync_opts *o, struct sync_result *res, struct as_err *err)
{
	struct btrfs_subvol sv, fv;
	struct sync_opts o2;
	char *sdir = NULL, *frozen = NULL, *dabs = NULL;
	int sfd = -1, rc = -1;

	memset(&sv, 0, sizeof(sv));
	memset(&fv, 0, sizeof(fv));
	if (!endpoint_is_remote(de)) {
		dabs = realpath(de->path, NULL);
		if (dabs == NULL && de->path[0] == '/')
			dabs = xstrdup(de->path);
		if (dabs != NULL && (inside(dabs, src) || inside(src, dabs))) {
			as_err_set(err, AS_E_USAGE, 0, "'%s' and '%s': one is "
			    "inside the other", src, de->path);
			goto out;
		}
	}
	if (check_source(src, &sv, err) == -1)
		goto out;
	sdir = btrfs_snapdir(src);
	if (btrfs_lock(sdir, &sfd, err) == -1)
		goto out;
	frozen = xasprintf("%s/%s", sdir, DIR_SOURCE);
	if (btrfs_is_subvol(frozen)) {
		/* last run's: ours only if it is a snapshot of src */
		if (btrfs_info(frozen, &fv, err) == -1)
			goto out;
		if (!fv.readonly || strcmp(fv.parent_uuid, sv.uuid) != 0) {
			as_err_set(err, AS_E_CONFLICT, 0, "'%s' is not a "
			    "snapshot of '%s' that autosync made: move it "
			    "away", frozen, src);
			goto out;
		}
		if (btrfs_delete(frozen, err) == -1)
			goto out;
	}
	if (btrfs_snapshot(src, frozen, 1, err) == -1) {
		as_err_prefix(err, "snapshot '%s'", src);
		goto out;
	}
	o2 = *o;
	o2.flags &= ~SYNC_NO_RECURSE;
	rc = sync_run(frozen, de->spec, &o2, res, err);
out:
	btrfs_subvol_release(&sv);
	btrfs_subvol_release(&fv);
	if (sfd != -1)
		close(sfd);
	free(sdir);
	free(frozen);
	free(dabs);
	return rc;
}

int
sync_run_btrfs(const struct endpoint *se, const struct endpoint *de,
    const struct sync_opts *o, struct sync_result *res, struct as_err *err)
{
	char *src = NULL, *dst = NULL;
	int64_t t0 = now_ns();
	int rc = -1;

	if (endpoint_is_remote(se)) {
		if (strncmp(se->path, "/btrfs:/", 8) != 0 ||
		    de->kind != EP_BTRFS)
			return as_err_set(err, AS_E_USAGE, 0, "'%s' -> '%s': a "
			    "server's btrfs subvolume ('.../btrfs:/PATH') is "
			    "pulled into a local one (btrfs:/PATH)", se->spec,
			    de->spec);
		if ((dst = norm_path(de->path, "destination", err)) == NULL)
			goto out;
		rc = btrfs_pull(se, dst, de, o, res, err);
		goto out;
	}
	if (endpoint_is_remote(de) && se->kind != EP_BTRFS)
		return as_err_set(err, AS_E_USAGE, 0, "'%s' -> '%s': a "
		    "directory goes to a directory, on btrfs too: name the "
		    "destination without btrfs:", se->spec, de->spec);
	if (se->kind != EP_BTRFS)
		return as_err_set(err, AS_E_USAGE, 0, "'%s' -> '%s': a "
		    "directory goes to a directory, on btrfs too: name the "
		    "destination without btrfs:", se->spec, de->spec);
	if ((src = norm_path(se->path, "source", err)) == NULL)
		goto out;
	if (endpoint_is_remote(de) && strncmp(de->path, "/btrfs:/", 8) == 0) {
		rc = btrfs_push(src, de, o, res, err);
		goto out;
	}
	if (de->kind != EP_BTRFS) {
		rc = btrfs_to_dir(src, de, o, res, err);
		goto out;
	}
	if ((dst = norm_path(de->path, "destination", err)) == NULL)
		goto out;
	rc = btrfs_to_btrfs(src, dst, o, res, err);
out:
	res->total_ns = now_ns() - t0;
	free(src);
	free(dst);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Lent to the failback (sync_btrfs_int.h) */

uint64_t
sync_btrfs_uuid64(const char *u)
{
	return uuid64(u);
}

char *
sync_btrfs_norm_path(const char *p, const char *what, struct as_err *err)
{
	return norm_path(p, what, err);
}

int
sync_btrfs_check_source(const char *src, struct btrfs_subvol *sv,
    struct as_err *err)
{
	return check_source(src, sv, err);
}

int
sync_btrfs_dests_put(const char *sdir, const char *dst, const char *name,
    struct as_err *err)
{
	return dests_put(sdir, dst, name, err);
}

int
sync_btrfs_held_elsewhere(const char *sdir, const char *dst,
    const char *name, struct as_err *err)
{
	struct dest_rec *v = NULL;
	size_t n = 0;
	int r;

	if (dests_read(sdir, &v, &n, err) == -1)
		return -1;
	r = held_elsewhere(v, n, dst, name);
	dests_free(v, n);
	return r;
}

int
sync_btrfs_transfer(struct btrfs_dest *d, const char *src, const char *sdir,
    const char *snap_uuid, const char *name, const char *parent,
    uint64_t *bytes, struct as_err *err)
{
	struct item it;

	memset(&it, 0, sizeof(it));
	it.rel = (char *)(uintptr_t)"";
	it.abs = (char *)(uintptr_t)src;
	it.sdir = (char *)(uintptr_t)sdir;
	snprintf(it.snap_uuid, sizeof(it.snap_uuid), "%s", snap_uuid);
	return transfer(d, &it, name, parent, bytes, err);
}
