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
 * SRC and, unless SYNC_NO_RECURSE, its nested subvolumes, one exchange
 * per subvolume over one connection as zfs does one per dataset
 * (sync_zfs.c), a nested one named by its path below the root (REL,
 * REQ_F_NESTED); each from its own newest common snapshot; the same
 * layout, view and pruning on each side, the view published only once
 * every subvolume arrived (by the server when the root's RECEIVE comes
 * last, by a pulling client itself); the protocol's GUID is the first
 * 64 bits of a snapshot's UUID.  A stream is received only from a
 * sender configured as trusted: the server's grant says so, and a
 * pulling client names the server (sync_opts.trust).
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

#include "base/clock.h"
#include "base/flusher.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "driver/btrfs.h"
#include "repl/endpoint.h"
#include "repl/remote.h"
#include "repl/sync.h"
#include "repl/sync_btrfs_int.h"
#include "transport/pace.h"
#include "base/banned.h"

/*
 * While a stream is received, the destination's dirty data is written
 * back this often (base/flusher.h): the commit before publishing then
 * has little left to write.
 */
#define BTRFS_FLUSH_MS	500

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
 * `btrfs send | btrfs receive` would be: nothing to frame or compress,
 * so the bytes need not pass through here (measured in bench/README.md),
 * unless pace (may be NULL) limits the rate or shows progress: then a
 * relay thread moves them.  The sender's count of written bytes is the
 * stream's size.  The receiver's error explains a failure, unless it only saw
 * the stream end early because the sender failed.
 */
static int
transfer(struct btrfs_dest *d, const struct item *it, const char *name,
    const char *parent, struct pace *pace, uint64_t *bytes,
    struct as_err *err)
{
	struct btrfs_proc *sp = NULL, *rp = NULL;
	struct flusher fl = { .running = 0 };
	struct pace_relay relay = { .started = 0 };
	struct as_err serr;
	char *snap, *par = NULL, drain[4096];
	uint64_t n = 0;
	ssize_t r;
	int fds[2] = { -1, -1 }, src_rc, rcv_rc, keep = -1, send_fd;

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
	send_fd = fds[1];
	fds[1] = -1;
	/* a rate limit or progress: the stream goes through here */
	if (pace != NULL && pace_wants_relay(pace) &&
	    pace_relay_start(&relay, pace, send_fd, &send_fd, err) == -1)
		goto fail;
	sp = btrfs_send_start(snap, par, send_fd, err);
	if (sp == NULL)
		goto fail;
	flusher_start(&fl, d->dir, BTRFS_FLUSH_MS);
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
	/* ended: the stream's end of file, or our reader's close above */
	(void)pace_relay_finish(&relay);
	if (btrfs_proc_written(sp, &n) == 0)
		*bytes += n;
	as_err_clear(&serr);
	src_rc = btrfs_proc_finish(sp, &serr);
	sp = NULL;
	rcv_rc = btrfs_dest_receive_finish(d, rp, it->rel, name,
	    it->snap_uuid, err);
	rp = NULL;
	flusher_stop(&fl);
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
	(void)pace_relay_finish(&relay);	/* the sender is gone */
	flusher_stop(&fl);
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

int
sync_btrfs_pub_times(const char *dir, const char *name, struct btrfs_pub *pub,
    struct as_err *err)
{
	struct stat st;
	char *path = xasprintf("%s/%s", dir, name);
	int rc = 0;

	if (lstat(path, &st) == -1)
		rc = as_err_sys(err, errno, "'%s'", path);
	else {
		pub->has_times = 1;
		pub->atime = st.st_atim;
		pub->mtime = st.st_mtim;
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

/* Free what a prune gathered, deleting nothing. */
static void
doomed_release(struct doomed *dd)
{
	size_t i;

	for (i = 0; i < dd->n; i++)
		free(dd->v[i]);
	for (i = 0; i < dd->ndirs; i++)
		free(dd->dirs[i]);
	free(dd->v);
	free(dd->dirs);
	memset(dd, 0, sizeof(*dd));
}

/* Delete what a prune gathered: the snapshots, then emptied directories. */
static int
doomed_run(struct doomed *dd, unsigned *pruned, struct as_err *err)
{
	size_t i;
	int rc = 0;

	if (dd->n > 0 && btrfs_delete_snapshots((const char *const *)dd->v,
	    dd->n, err) == -1)
		rc = -1;
	else if (pruned != NULL)
		*pruned += (unsigned)dd->n;
	for (i = 0; rc == 0 && i < dd->ndirs; i++)
		(void)rmdir(dd->dirs[i]);
	doomed_release(dd);
	return rc;
}

/*
 * The source's side of the pruning after a run to dst, into dd: each
 * item's snapshots but name, the newest nkeep and other destinations',
 * and, unless norecurse, the snapshot directories of children that are
 * gone (sdir: the root's snapshot directory).
 */
static int
src_doomed(const char *sdir, const struct item *items, size_t n,
    const char *name, unsigned nkeep, const char *dst, int norecurse,
    struct doomed *dd, struct as_err *err)
{
	struct btrfs_snap *v = NULL;
	struct dest_rec *dr = NULL;
	size_t i, nv = 0, ndr = 0;
	int rc = -1;

	if (dests_read(sdir, &dr, &ndr, err) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (btrfs_list_snaps(items[i].sdir, items[i].uuid, 0, &v, &nv,
		    err) == -1)
			goto out;
		prune_list(items[i].sdir, v, nv, name, nkeep, dr, ndr, dst,
		    dd);
		free(v);
		v = NULL;
	}
	if (!norecurse && prune_gone(sdir, items, n, 0, dd, err) == -1)
		goto out;
	rc = 0;
out:
	dests_free(dr, ndr);
	return rc;
}

/*
 * The destination's side, into dd: in the snapshot directory of each
 * item's rel (items[0]: the root) the received snapshots but name and
 * the newest nkeep, and, with gone, the directories of children not in
 * items (removed on the source).
 */
static int
dst_doomed(struct btrfs_dest *d, const struct item *items, size_t n,
    const char *name, unsigned nkeep, int gone, struct doomed *dd,
    struct as_err *err)
{
	struct btrfs_snap *v = NULL;
	char *dir;
	size_t i, nv = 0;
	int rc;

	for (i = 0; i < n; i++) {
		if ((dir = btrfs_snapdir_of(d->dir, items[i].rel, err)) == NULL)
			return -1;
		rc = btrfs_list_snaps(dir, NULL, 1, &v, &nv, err);
		if (rc == 0)
			prune_list(dir, v, nv, name, nkeep, NULL, 0, NULL, dd);
		free(dir);
		free(v);
		v = NULL;
		if (rc == -1)
			return -1;
	}
	return gone ? prune_gone(d->dir, items, n, 1, dd, err) : 0;
}

/* A local run's pruning: both sides (src_doomed, dst_doomed) at once. */
static int
prune(const char *dst, struct btrfs_dest *d, const struct item *items,
    size_t n, const char *name, int norecurse, unsigned nkeep_src,
    unsigned nkeep_dst, unsigned *pruned, struct as_err *err)
{
	struct doomed dd;
	int rc = -1;

	memset(&dd, 0, sizeof(dd));
	if (src_doomed(items[0].sdir, items, n, name, nkeep_src, dst,
	    norecurse, &dd, err) == 0 && dst_doomed(d, items, n, name,
	    nkeep_dst, !norecurse, &dd, err) == 0)
		rc = doomed_run(&dd, pruned, err);
	doomed_release(&dd);
	return rc;
}

/*
 * After a run to a server (push) or from one (a server's SEND): the
 * source's side alone.
 */
static int
prune_src(const char *sdir, const struct item *items, size_t n,
    const char *name, unsigned nkeep, const char *dst, int norecurse,
    unsigned *pruned, struct as_err *err)
{
	struct doomed dd;
	int rc = -1;

	memset(&dd, 0, sizeof(dd));
	if (src_doomed(sdir, items, n, name, nkeep, dst, norecurse, &dd,
	    err) == 0)
		rc = doomed_run(&dd, pruned, err);
	doomed_release(&dd);
	return rc;
}

/*
 * After a pull or a server's RECEIVE: the destination's side alone, in
 * the snapshot directories of the n rels (rels[0] "": the root).
 */
static int
prune_dst(struct btrfs_dest *d, const char *const *rels, size_t n,
    const char *name, unsigned nkeep, int gone, unsigned *pruned,
    struct as_err *err)
{
	struct item *it;
	struct doomed dd;
	size_t i;
	int rc = -1;

	memset(&dd, 0, sizeof(dd));
	it = xcalloc(n, sizeof(*it));
	for (i = 0; i < n; i++)
		it[i].rel = (char *)(uintptr_t)rels[i];
	if (dst_doomed(d, it, n, name, nkeep, gone, &dd, err) == 0)
		rc = doomed_run(&dd, pruned, err);
	doomed_release(&dd);
	free(it);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The runs */

/*
 * Open and lock the destination dst of a run into d and check that it
 * is what autosync published: modified, CONFLICT unless -F (then
 * res->replaced).  0, or -1 with err.
 */
static int
dest_open_checked(struct btrfs_dest *d, const char *dst,
    const struct sync_opts *o, struct sync_result *res, struct as_err *err)
{
	unsigned cleaned = 0;
	int chk;

	if (btrfs_dest_open(d, dst, &cleaned, err) == -1)
		return -1;
	res->recovered = cleaned > 0;
	chk = btrfs_dest_check(d, err);
	if (chk == -1 || (chk == 1 && !(o->flags & SYNC_FORCE)))
		return -1;
	if (chk == 1) {
		res->replaced = 1;
		as_err_clear(err);
	}
	return 0;
}

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
	struct pace pace;
	char *sdir = NULL, *hdir = NULL, name[BTRFS_NAME_MAX + 1];
	const char *dirs[2];
	size_t n = 0, i, nss = 0, nhs = 0;
	int64_t t1;
	int sfd = -1, rc = -1;

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
	if (dest_open_checked(&d, dst, o, res, err) == -1)
		goto out;

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
	sync_pace_init(&pace, o, 0);
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
		t1 = mono_ns();
		if (transfer(&d, &items[i], name, common != NULL ?
		    common->name : NULL, &pace, &res->send.stream_bytes,
		    err) == -1)
			goto out;
		res->xfer_ns += mono_ns() - t1;
		res->subvols++;
		pub[i].rel = items[i].rel;
		pub[i].name = name;
		if (sync_btrfs_pub_times(items[i].sdir, name, &pub[i],
		    err) == -1)
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
	if (pub != NULL)	/* pace was started with it */
		pace_finish(&pace);
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
/*
 * Between machines: a tree of subvolumes, one exchange per subvolume,
 * its snapshots by the UUID's GUID.  A nested subvolume is named by its
 * path below the root ("REL") in the request's id, with REQ_F_NESTED.
 */

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

/*
 * A nested subvolume's path as a peer names it: relative, components
 * neither empty, "." nor "..", no control characters, and short enough
 * to name its snapshot directory (btrfs_enc_rel).  UNSAFE_PATH.
 */
int
sync_btrfs_rel_check(const char *rel, const char *who, struct as_err *err)
{
	char enc[BTRFS_NAME_MAX + 1], esc[PROTO_PATH_MAX * 4 + 8];
	const unsigned char *p;
	size_t len;
	const char *c = rel;
	int bad = rel[0] == '\0';

	for (p = (const unsigned char *)rel; *p != '\0' && !bad; p++)
		bad = *p < 0x20 || *p == 0x7f;
	while (!bad) {
		len = strcspn(c, "/");
		bad = len == 0 || (len == 1 && c[0] == '.') ||
		    (len == 2 && c[0] == '.' && c[1] == '.');
		if (c[len] == '\0')
			break;
		c += len + 1;
	}
	if (!bad && btrfs_enc_rel(rel, enc, sizeof(enc), NULL) == 0)
		return 0;
	return as_err_set(err, AS_E_UNSAFE_PATH, 0, "%s named the nested "
	    "subvolume '%s': not a path below the root", who,
	    log_escape(rel, esc, sizeof(esc)));
}

/*
 * btrfs receive the stream on in_fd into dir, a snapshot directory of
 * a destination this process has open (locked), and find what it made:
 * one new autosync_* subvolume, read-only with a received_uuid (the
 * only ones btrfs_list_snaps lists), into *got.  Whatever a failed
 * receive left is deleted by the next btrfs_dest_open.
 */
static int
receive_into(const char *dir, int in_fd, struct btrfs_snap *got,
    struct as_err *err)
{
	struct btrfs_snap *before = NULL, *after = NULL;
	struct btrfs_proc *p;
	struct flusher fl;
	size_t i, j, nb = 0, na = 0;
	int rc = -1, fd, found = 0, frc;

	if (btrfs_mkdir_private(dir, err) == -1 ||
	    btrfs_list_snaps(dir, NULL, 1, &before, &nb, err) == -1)
		goto out;
	/*
	 * CLOEXEC as every descriptor (spawn's dup2 clears it on btrfs's
	 * stdin): a plain dup would leak this pipe end into anything
	 * another thread spawns meanwhile, and a leaked write end or
	 * reader keeps the other side from seeing the end of the stream.
	 */
	if ((fd = fcntl(in_fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		as_err_sys(err, errno, "receive into '%s': dup the stream",
		    dir);
		goto out;
	}
	/* the callers checked the sender's trust before anything was read */
	if ((p = btrfs_receive_start(dir, fd, 1, err)) == NULL)
		goto out;
	flusher_start(&fl, dir, BTRFS_FLUSH_MS);
	frc = btrfs_proc_finish(p, err);
	flusher_stop(&fl);
	if (frc == -1)
		goto out;
	if (btrfs_list_snaps(dir, NULL, 1, &after, &na, err) == -1)
		goto out;
	for (i = 0; i < na && !found; i++) {
		for (j = 0; j < nb; j++)
			if (strcmp(after[i].name, before[j].name) == 0)
				break;
		if (j == nb && strncmp(after[i].name, "autosync_", 9) == 0) {
			*got = after[i];
			found = 1;
		}
	}
	if (!found) {
		as_err_set(err, AS_E_MALFORMED, 0, "the stream made no new "
		    "read-only autosync_* snapshot with a received_uuid in "
		    "'%s'", dir);
		goto out;
	}
	rc = 0;
out:
	free(before);
	free(after);
	return rc;
}

/* REL from a children/ENC directory name (btrfs_enc_rel's inverse). */
static char *
rel_decode(const char *enc)
{
	char *out = xmalloc(strlen(enc) + 1), *o = out;

	for (; *enc != '\0'; enc++) {
		if (enc[0] == '%' && enc[1] == '2' && (enc[2] == '5' ||
		    enc[2] == 'F')) {
			*o++ = enc[2] == '5' ? '%' : '/';
			enc += 2;
		} else
			*o++ = *enc;
	}
	*o = '\0';
	return out;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The children of a destination that hold a received snapshot called
 * name (this run's: a server's push sends them before the root), sorted
 * (a parent's REL sorts before its children's).
 */
static int
children_holding(struct btrfs_dest *d, const char *name, char ***out,
    size_t *nout, struct as_err *err)
{
	struct btrfs_snap *v = NULL;
	struct dirent *de;
	char *base, *p, *rel, **rels = NULL;
	size_t i, nv, n = 0;
	DIR *dir;
	int rc = 0, has;

	*out = NULL;
	*nout = 0;
	base = xasprintf("%s/%s", d->dir, BTRFS_CHILDREN);
	if ((dir = opendir(base)) == NULL) {
		rc = errno == ENOENT ? 0 : as_err_sys(err, errno, "open "
		    "'%s'", base);
		free(base);
		return rc;
	}
	while (rc == 0 && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		rel = rel_decode(de->d_name);
		if (sync_btrfs_rel_check(rel, "a directory", NULL) == -1) {
			free(rel);
			continue;	/* not one of ours */
		}
		p = xasprintf("%s/%s", base, de->d_name);
		rc = btrfs_list_snaps(p, NULL, 1, &v, &nv, err);
		free(p);
		for (i = 0, has = 0; rc == 0 && i < nv; i++)
			has |= strcmp(v[i].name, name) == 0;
		free(v);
		v = NULL;
		if (rc == 0 && has) {
			rels = xreallocarray(rels, n + 1, sizeof(*rels));
			rels[n++] = rel;
		} else
			free(rel);
	}
	closedir(dir);
	free(base);
	if (rc == -1) {
		btrfs_rels_free(rels, n);
		return -1;
	}
	if (n > 1)
		qsort(rels, n, sizeof(*rels), str_cmp);
	*out = rels;
	*nout = n;
	return 0;
}

int
sync_btrfs_held(const char *dst, const char *rel, uint64_t *guid,
    char *name, size_t namesz, struct as_err *err)
{
	struct btrfs_snap *v = NULL;
	char *dir, *p, *sd;
	size_t n = 0;
	int rc;

	*guid = 0;
	if (rel != NULL && sync_btrfs_rel_check(rel, "the client", err) == -1)
		return -1;
	if ((p = norm_path(dst, "destination", err)) == NULL)
		return -1;
	sd = btrfs_snapdir(p);
	free(p);
	dir = btrfs_snapdir_of(sd, rel, err);
	free(sd);
	if (dir == NULL)
		return -1;
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
	struct btrfs_snap got;
	struct btrfs_pub *pub = NULL;
	const char *rel = NULL, **all = NULL;
	char *path, *dir = NULL, **rels = NULL;
	size_t i, nrels = 0;
	unsigned cleaned = 0;
	int rc = -1, chk;

	memset(&d, 0, sizeof(d));
	d.lock_fd = -1;
	/* refused before anything is read or created */
	if (a == NULL || !a->trusted)
		return as_err_set(err, AS_E_AUTH, 0, "refusing a btrfs stream "
		    "for '%s' from a sender not configured as trusted (btrfs "
		    "receive does not validate streams)", dst);
	/* REQ_F_NESTED: never the root, whatever id says */
	if ((rel = a->rel) != NULL && sync_btrfs_rel_check(rel, "the client",
	    err) == -1)
		return -1;
	if ((path = norm_path(dst, "destination", err)) == NULL)
		return -1;
	if (btrfs_dest_open(&d, path, &cleaned, err) == -1)
		goto out;
	chk = btrfs_dest_check(&d, err);
	if (chk == -1 || (chk == 1 && !(rflags & DIR_RECV_FORCE)))
		goto out;
	as_err_clear(err);
	if ((dir = btrfs_snapdir_of(d.dir, rel, err)) == NULL ||
	    receive_into(dir, in_fd, &got, err) == -1)
		goto out;
	if (rel == NULL) {
		/*
		 * The root comes last: the view takes the children that
		 * hold a snapshot of this run's name (read-only, with a
		 * received_uuid that the client checked), and with
		 * a->tree only those (the others are gone on the source).
		 */
		if (a->tree && children_holding(&d, got.name, &rels, &nrels,
		    err) == -1)
			goto out;
		pub = xcalloc(nrels + 1, sizeof(*pub));
		pub[0].rel = "";
		pub[0].name = got.name;
		for (i = 0; i < nrels; i++) {
			pub[i + 1].rel = rels[i];
			pub[i + 1].name = got.name;
		}
		if (btrfs_dest_publish(&d, pub, nrels + 1, err) == -1)
			goto out;
	}
	res->target_guid = uuid64(got.received_uuid);
	snprintf(res->name, sizeof(res->name), "%s", got.name);
	res->st.entries_sent = 1;
	/*
	 * The older received snapshots (of the view's subvolumes, with
	 * a->tree), and with a->tree the children that are gone: best
	 * effort, published already.
	 */
	all = xcalloc(nrels + 1, sizeof(*all));
	all[0] = rel != NULL ? rel : "";
	for (i = 0; i < nrels; i++)
		all[i + 1] = rels[i];
	if (prune_dst(&d, all, nrels + 1, got.name, 0, a->tree &&
	    rel == NULL, NULL, err) == -1) {
		log_warn("prune '%s': %s", d.dir, err->msg);
		as_err_clear(err);
	}
	rc = 0;
out:
	free(pub);
	free(all);
	btrfs_rels_free(rels, nrels);
	free(dir);
	btrfs_dest_release(&d);
	free(path);
	return rc;
}

/*
 * The listing of a pull: the root's snapshots, then, unless norecurse,
 * for each nested subvolume an entry "REL/" (its GUID: its own UUID's)
 * followed by its snapshots.
 */
int
sync_btrfs_list(const char *src, int norecurse, struct proto_snap **v,
    size_t *n, struct as_err *err)
{
	struct btrfs_subvol sv;
	struct btrfs_snap *ss = NULL;
	struct item *items = NULL;
	struct proto_snap *e;
	char *path, *sdir = NULL;
	size_t i, j, ns = 0, ni = 0, k = 0, cap = 0;
	int rc = -1;

	*v = NULL;
	*n = 0;
	memset(&sv, 0, sizeof(sv));
	if ((path = norm_path(src, "source", err)) == NULL)
		return -1;
	if (check_source(path, &sv, err) == -1)
		goto out;
	sdir = btrfs_snapdir(path);
	if (items_get(path, sdir, &sv, norecurse, &items, &ni, err) == -1)
		goto out;
	for (i = 0; i < ni; i++) {
		if (btrfs_list_snaps(items[i].sdir, items[i].uuid, 0, &ss, &ns,
		    err) == -1)
			goto out;
		if (k + ns + 1 > PROTO_SNAPLIST_MAX) {
			as_err_set(err, AS_E_LIMIT, 0, "'%s' has more than %d "
			    "snapshots", path, PROTO_SNAPLIST_MAX);
			goto out;
		}
		if (k + ns + 1 > cap) {
			cap = (k + ns + 1) * 2;
			*v = xreallocarray(*v, cap, sizeof(**v));
		}
		if (i > 0) {
			if (strlen(items[i].rel) + 1 > PROTO_NAME_MAX) {
				as_err_set(err, AS_E_LIMIT, 0, "nested "
				    "subvolume '%s' of '%s': its path is too "
				    "long to be listed", items[i].rel, path);
				goto out;
			}
			e = &(*v)[k++];
			memset(e, 0, sizeof(*e));
			e->guid = uuid64(items[i].uuid) != 0 ?
			    uuid64(items[i].uuid) : 1;
			snprintf(e->name, sizeof(e->name), "%s/",
			    items[i].rel);
		}
		for (j = 0; j < ns; j++) {
			e = &(*v)[k++];
			memset(e, 0, sizeof(*e));
			e->guid = uuid64(ss[j].uuid);
			snprintf(e->name, sizeof(e->name), "%s", ss[j].name);
		}
		free(ss);
		ss = NULL;
	}
	*n = k;
	rc = 0;
out:
	if (rc == -1) {
		free(*v);
		*v = NULL;
	}
	free(ss);
	items_free(items, ni);
	free(sdir);
	free(path);
	btrfs_subvol_release(&sv);
	return rc;
}

/* One stream's ends, for the sender's thread. */
struct bstream {
	const char	*snap;		/* btrfs send this */
	const char	*parent;	/* -p this, or NULL: full */
};

/* The sender's thread: btrfs send into the pump's pipe. */
static int
bsend_run(void *arg, int fd, struct as_err *err)
{
	const struct bstream *b = arg;
	struct btrfs_proc *p;
	int f;

	/* CLOEXEC: see sync_btrfs_receive (this thread runs beside the pump) */
	if ((f = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return as_err_sys(err, errno, "send '%s': dup the stream",
		    b->snap);
	if ((p = btrfs_send_start(b->snap, b->parent, f, err)) == NULL)
		return -1;
	return btrfs_proc_finish(p, err);
}

struct sync_btrfs_send {
	char		*src;
	char		*sdir;		/* the root's snapshot directory */
	char		*snap;		/* the new snapshot (a child's) */
	char		*parent;	/* the base, or NULL */
	char		 name[BTRFS_NAME_MAX + 1];
	char		 uuid[BTRFS_UUID_LEN + 1];
	int		 lock_fd;
	struct bstream	 bs;
	struct item	*items;		/* the root's SEND: the snapshotted */
	size_t		 nitems;
	int		 tree;		/* ... with REQ_F_TREE */
	char		*csdir;		/* a nested SEND: the child's dir */
	char		 cuuid[BTRFS_UUID_LEN + 1];	/* ... its UUID */
};

void
sync_btrfs_send_close(struct sync_btrfs_send *s)
{
	if (s == NULL)
		return;
	if (s->lock_fd != -1)
		close(s->lock_fd);
	items_free(s->items, s->nitems);
	free(s->src);
	free(s->sdir);
	free(s->snap);
	free(s->parent);
	free(s->csdir);
	free(s);
}

/*
 * A nested SEND: id "NAME/REL" names the snapshot NAME that the root's
 * SEND took of the subvolume REL nested below s->src; it must be one of
 * the nested subvolumes (the kernel's root refs: nothing outside the
 * root is reached through a symbolic link).  The base is the child's
 * snapshot with GUID base, or none (a full stream: a child's base may
 * have gone with a child replaced on the source).
 */
static int
send_open_nested(struct sync_btrfs_send *s, const char *id, uint64_t base,
    struct proto_result *go, struct as_err *err)
{
	struct btrfs_subvol cv;
	struct btrfs_snap *ss = NULL;
	const struct btrfs_snap *sn = NULL, *b;
	const char *slash = strchr(id, '/'), *rel;
	char **rels = NULL, *abs = NULL, esc[PROTO_PATH_MAX * 4 + 8];
	size_t i, nr = 0, ns = 0;
	int rc = -1, found = 0;

	memset(&cv, 0, sizeof(cv));
	if (slash == NULL || (size_t)(slash - id) > BTRFS_NAME_MAX ||
	    strncmp(id, "autosync_", 9) != 0)
		return as_err_set(err, AS_E_MALFORMED, 0, "nested SEND of "
		    "'%s': '%s' is not 'autosync_NAME/REL'", s->src,
		    log_escape(id, esc, sizeof(esc)));
	snprintf(s->name, sizeof(s->name), "%.*s", (int)(slash - id), id);
	rel = slash + 1;
	if (sync_btrfs_rel_check(rel, "the client", err) == -1)
		return -1;
	if (btrfs_nested(s->src, &rels, &nr, err) == -1)
		return as_err_prefix(err, "nested subvolumes of '%s'", s->src);
	for (i = 0; i < nr && !found; i++)
		found = strcmp(rels[i], rel) == 0;
	if (!found) {
		as_err_set(err, AS_E_NOTFOUND, 0, "'%s' has no nested "
		    "subvolume '%s'", s->src, rel);
		goto out;
	}
	abs = xasprintf("%s/%s", s->src, rel);
	if (btrfs_info(abs, &cv, err) == -1 ||
	    (s->csdir = btrfs_snapdir_of(s->sdir, rel, err)) == NULL ||
	    btrfs_list_snaps(s->csdir, cv.uuid, 0, &ss, &ns, err) == -1)
		goto out;
	memcpy(s->cuuid, cv.uuid, sizeof(s->cuuid));
	for (i = 0; i < ns && sn == NULL; i++)
		if (strcmp(ss[i].name, s->name) == 0)
			sn = &ss[i];
	if (sn == NULL) {
		as_err_set(err, AS_E_NOTFOUND, 0, "nested subvolume '%s' has "
		    "no snapshot '%s'", rel, log_escape(s->name, esc,
		    sizeof(esc)));
		goto out;
	}
	b = snap_by_guid(ss, ns, base);
	if (b == sn)
		b = NULL;
	s->snap = xasprintf("%s/%s", s->csdir, sn->name);
	if (b != NULL)
		s->parent = xasprintf("%s/%s", s->csdir, b->name);
	memcpy(s->uuid, sn->uuid, sizeof(s->uuid));
	go->flags = RES_F_GO | (b == NULL ? RES_F_FULL : 0);
	go->guid = uuid64(sn->uuid);
	go->base_guid = b != NULL ? uuid64(b->uuid) : 0;
	snprintf(go->name, sizeof(go->name), "%s", s->name);
	rc = 0;
out:
	free(ss);
	free(abs);
	btrfs_subvol_release(&cv);
	btrfs_rels_free(rels, nr);
	return rc;
}

int
sync_btrfs_send_open(const char *src, uint64_t base, int force,
    int norecurse, const char *nested, struct sync_btrfs_send **out,
    struct proto_result *go, struct xfer_src *xs, struct as_err *err)
{
	struct sync_btrfs_send *s;
	struct btrfs_subvol sv;
	struct btrfs_snap *ss = NULL;
	const struct btrfs_snap *b;
	const char **dirs = NULL;
	size_t i, ns = 0;

	memset(&sv, 0, sizeof(sv));
	memset(go, 0, sizeof(*go));
	s = xcalloc(1, sizeof(*s));
	s->lock_fd = -1;
	if ((s->src = norm_path(src, "source", err)) == NULL ||
	    check_source(s->src, &sv, err) == -1)
		goto fail;
	s->sdir = btrfs_snapdir(s->src);
	if (btrfs_lock(s->sdir, &s->lock_fd, err) == -1)
		goto fail;
	if (nested != NULL) {
		if (send_open_nested(s, nested, base, go, err) == -1)
			goto fail;
		goto done;
	}
	if (btrfs_list_snaps(s->sdir, sv.uuid, 0, &ss, &ns, err) == -1)
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
	/* the root and (REQ_F_TREE) its nested subvolumes, one name */
	s->tree = !norecurse;
	if (items_get(s->src, s->sdir, &sv, norecurse, &s->items, &s->nitems,
	    err) == -1)
		goto fail;
	dirs = xcalloc(s->nitems, sizeof(*dirs));
	for (i = 0; i < s->nitems; i++)
		dirs[i] = s->items[i].sdir;
	if (btrfs_auto_name(dirs, s->nitems, s->name, sizeof(s->name),
	    err) == -1 || items_snapshot(s->items, s->nitems, s->name,
	    err) == -1)
		goto fail;
	memcpy(s->uuid, s->items[0].snap_uuid, sizeof(s->uuid));
	s->snap = xasprintf("%s/%s", s->sdir, s->name);
	go->flags = RES_F_GO | (b == NULL ? RES_F_FULL : 0);
	go->guid = uuid64(s->uuid);
	go->base_guid = b != NULL ? uuid64(b->uuid) : 0;
	snprintf(go->name, sizeof(go->name), "%s", s->name);
done:
	s->bs.snap = s->snap;
	s->bs.parent = s->parent;
	xs->fd = -1;
	xs->send = bsend_run;
	xs->send_arg = &s->bs;
	free(dirs);
	free(ss);
	btrfs_subvol_release(&sv);
	*out = s;
	return 0;
fail:
	free(dirs);
	free(ss);
	btrfs_subvol_release(&sv);
	sync_btrfs_send_close(s);
	return -1;
}

int
sync_btrfs_send_commit(struct sync_btrfs_send *s, const char *id,
    int committed, struct as_err *err)
{
	struct btrfs_snap *v = NULL;
	struct dest_rec *dr = NULL;
	struct doomed dd;
	struct as_err e2;
	char *p;
	size_t i, nv = 0, ndr = 0;
	int rc = -1;

	memset(&dd, 0, sizeof(dd));
	if (!committed) {
		/* nobody holds them: the next pull takes others */
		for (i = 1; i < s->nitems; i++) {
			p = xasprintf("%s/%s", s->items[i].sdir, s->name);
			if (btrfs_delete(p, &e2) == -1)
				log_warn("%s", e2.msg);
			free(p);
		}
		return btrfs_delete(s->snap, err);
	}
	if (s->csdir != NULL) {
		/*
		 * A child: the root's COMMIT recorded this run's name for
		 * the destination; id ("NAME/REL") names none of the
		 * records, so every destination's snapshot stays.
		 */
		if (dests_read(s->sdir, &dr, &ndr, err) == -1 ||
		    btrfs_list_snaps(s->csdir, s->cuuid, 0, &v, &nv,
		    err) == -1)
			goto out;
		prune_list(s->csdir, v, nv, s->name, 0, dr, ndr, id, &dd);
		rc = doomed_run(&dd, NULL, err);
		goto out;
	}
	if (dests_put(s->sdir, id, s->name, err) == -1)
		goto out;
	/*
	 * The root's older snapshots (each child's at its own COMMIT: the
	 * destination still holds its older one until then), and with
	 * REQ_F_TREE the directories of children that are gone.
	 */
	if (prune_src(s->sdir, s->items, 1, s->name, 0, id, 1, NULL,
	    err) == -1)
		goto out;
	if (s->tree && prune_gone(s->sdir, s->items, s->nitems, 0, &dd,
	    err) == -1)
		goto out;
	rc = doomed_run(&dd, NULL, err);
out:
	doomed_release(&dd);
	free(v);
	dests_free(dr, ndr);
	return rc;
}

/*
 * One subvolume's exchange with a server, started at t1, is over: its
 * figures into res.  rc is remote_push's or remote_pull_with's; 0, or
 * -1 with err (prefixed with rel, a nested subvolume's, unless NULL).
 */
static int
xfer_done(struct sync_result *res, const struct remote_xfer *x, int64_t t1,
    int rc, const char *rel, struct as_err *err)
{
	res->xfer_ns += mono_ns() - t1;
	res->send.stream_bytes += x->raw_bytes;
	res->send.data_bytes += x->raw_bytes;
	res->wire_bytes += x->wire_bytes;
	if (rc == 0)
		return 0;
	if (rel != NULL)
		as_err_prefix(err, "nested '%s'", rel);
	return -1;
}

/* The request path, flags and id of item it of a push to de. */
static void
push_target(struct remote *r, const struct endpoint *de,
    const struct item *it, uint32_t flags)
{
	remote_set_path(r, de->path + 1);
	remote_set_flags(r, flags | (it->rel[0] != '\0' ? REQ_F_NESTED : 0));
	remote_set_id(r, it->rel[0] != '\0' ? it->rel : NULL);
}

/*
 * btrfs:SRC -> a server's btrfs:DST (push), the same steps as
 * btrfs_to_btrfs with the server answering for DST: HOLD per subvolume
 * (SRC, then its nested ones unless -N) says what the server holds of
 * it; the root's must be one of SRC's snapshots (else CONFLICT unless
 * -F, before anything is created), a child's that is not (or none) is
 * sent in full.  Then this run's snapshots, and one RECEIVE per
 * subvolume: the children first, parents first, each checked by the
 * GUID the server received, then the root with REQ_F_TREE, which
 * publishes the view with the children that arrived (a failed child
 * leaves the old view); the server prunes the children that are gone.
 */
static int
btrfs_push(const char *src, const struct endpoint *de,
    const struct sync_opts *o, struct sync_result *res, struct as_err *err)
{
	struct btrfs_subvol sv;
	struct btrfs_snap *ss = NULL;
	const struct btrfs_snap *b;
	struct item *items = NULL;
	struct remote_opts ro;
	struct remote *r = NULL;
	struct remote_xfer x;
	struct bstream bs;
	struct xfer_src xs;
	struct catalog tc;
	char **parents = NULL, *sdir = NULL, *snap = NULL;
	char name[BTRFS_NAME_MAX + 1];
	const char **dirs = NULL;
	uint64_t held = 0;
	size_t i, k, n = 0, ns = 0;
	int64_t t1;
	int rc = -1, h, sfd = -1, force = (o->flags & SYNC_FORCE) != 0;
	int norec = (o->flags & SYNC_NO_RECURSE) != 0;

	memset(&sv, 0, sizeof(sv));
	res->remote = 1;
	if (check_source(src, &sv, err) == -1)
		goto out;
	sdir = btrfs_snapdir(src);
	if (btrfs_lock(sdir, &sfd, err) == -1 ||
	    items_get(src, sdir, &sv, norec, &items, &n, err) == -1)
		goto out;
	memset(&ro, 0, sizeof(ro));
	if (o->remote != NULL)
		ro = *o->remote;
	if ((r = remote_open(de, &ro, err)) == NULL)
		goto out;

	/* 1. what the server holds of each subvolume: the bases */
	parents = xcalloc(n, sizeof(*parents));
	for (i = 0; i < n; i++) {
		push_target(r, de, &items[i], 0);
		if ((h = remote_hold(r, &held, i == 0 ? &res->recovered : NULL,
		    err)) == -1) {
			if (i > 0)
				as_err_prefix(err, "'%s' nested '%s'",
				    de->spec, items[i].rel);
			else
				as_err_prefix(err, "'%s'", de->spec);
			goto out;
		}
		if (btrfs_list_snaps(items[i].sdir, items[i].uuid, 0, &ss, &ns,
		    err) == -1)
			goto out;
		b = h == 1 ? snap_by_guid(ss, ns, held) : NULL;
		if (i == 0 && h == 1 && b == NULL && !force) {
			as_err_set(err, AS_E_CONFLICT, 0, "'%s' on '%s' has "
			    "diverged from '%s': it holds %016" PRIx64 ", "
			    "which is not one of the source's snapshots; use "
			    "-F for a full resend", de->path + 1,
			    remote_peer(r), src, held);
			goto out;
		}
		if (b != NULL)
			parents[i] = xasprintf("%s/%s", items[i].sdir, b->name);
		if (i == 0 && b != NULL) {
			snprintf(res->base_name, sizeof(res->base_name), "%s",
			    b->name);
			res->base_guid = held;
		}
		free(ss);
		ss = NULL;
	}

	/* 2. this run's snapshots, one name */
	dirs = xcalloc(n, sizeof(*dirs));
	for (i = 0; i < n; i++)
		dirs[i] = items[i].sdir;
	if (btrfs_auto_name(dirs, n, name, sizeof(name), err) == -1 ||
	    items_snapshot(items, n, name, err) == -1)
		goto out;
	snprintf(res->name, sizeof(res->name), "%s", name);
	res->guid = uuid64(items[0].snap_uuid);
	res->full = parents[0] == NULL;

	/* 3. the children (parents first), then the root */
	for (k = 0; k < n; k++) {
		i = k + 1 < n ? k + 1 : 0;
		push_target(r, de, &items[i], i == 0 && !norec ? REQ_F_TREE :
		    0);
		free(snap);
		snap = xasprintf("%s/%s", items[i].sdir, name);
		bs.snap = snap;
		bs.parent = parents[i];
		sync_native_src(&xs, &tc, bsend_run, &bs,
		    uuid64(items[i].snap_uuid), name);
		log_debug("btrfs: %s '%s' -> '%s'%s%s on '%s'",
		    bs.parent != NULL ? "incremental" : "full", snap,
		    de->path + 1, i > 0 ? " nested " : "", items[i].rel,
		    remote_peer(r));
		t1 = mono_ns();
		rc = remote_push(r, &xs, force, &x, err);
		catalog_release(&tc);
		rc = xfer_done(res, &x, t1, rc, i > 0 ? items[i].rel : NULL,
		    err);
		if (rc == -1)
			goto out;
		rc = -1;
		res->subvols++;
	}
	res->send.entries_sent = res->subvols;

	/* 4. record, prune the source */
	if (dests_put(sdir, de->spec, name, err) == -1)
		goto out;
	if (!(o->flags & SYNC_NO_PRUNE) && prune_src(sdir, items, n, name,
	    o->keep_src, de->spec, norec, &res->pruned, err) == -1) {
		as_err_prefix(err, "prune snapshots of '%s'", src);
		goto out;
	}
	rc = 0;
out:
	for (i = 0; parents != NULL && i < n; i++)
		free(parents[i]);
	free(parents);
	free(dirs);
	free(snap);
	free(ss);
	remote_close(r);
	items_free(items, n);
	btrfs_subvol_release(&sv);
	if (sfd != -1)
		close(sfd);
	free(sdir);
	return rc;
}

void
sync_btrfs_subs_free(struct sync_btrfs_sub *v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i].relbuf);
	free(v);
}

/*
 * The server's listing (SNAPSHOTS) as subvolumes: the root's snapshots
 * first, then for each nested subvolume "REL/" and its snapshots.
 * Untrusted: every REL a path below the root (sync_btrfs_rel_check),
 * listed once and in order (a parent before its children), no '/' in a
 * snapshot's name.
 */
int
sync_btrfs_listing(const char *peer, const struct proto_snap *v, size_t n,
    struct sync_btrfs_sub **out, size_t *nout, struct as_err *err)
{
	struct sync_btrfs_sub *it;
	char esc[PROTO_NAME_MAX * 4 + 8];
	size_t i, k = 1, len;

	it = xcalloc(1, sizeof(*it));
	it[0].rel = "";
	it[0].snaps = v;
	for (i = 0; i < n; i++) {
		len = strlen(v[i].name);
		if (len > 0 && v[i].name[len - 1] == '/') {
			it = xreallocarray(it, k + 1, sizeof(*it));
			memset(&it[k], 0, sizeof(it[k]));
			it[k].relbuf = xstrndup(v[i].name, len - 1);
			it[k].rel = it[k].relbuf;
			it[k].snaps = &v[i + 1];
			k++;
			if (sync_btrfs_rel_check(it[k - 1].rel, peer,
			    err) == -1)
				goto fail;
			if (k > 2 && strcmp(it[k - 2].rel, it[k - 1].rel) >= 0)
				goto bad;
			continue;
		}
		if (strchr(v[i].name, '/') != NULL || v[i].guid == 0)
			goto bad;
		it[k - 1].nsnaps++;
	}
	*out = it;
	*nout = k;
	return 0;
bad:
	as_err_set(err, AS_E_MALFORMED, 0, "'%s' listed '%s' out of place",
	    peer, log_escape(v[i].name, esc, sizeof(esc)));
fail:
	sync_btrfs_subs_free(it, k);
	return -1;
}

/* Is guid one of it's snapshots on the server? */
static int
pitem_has(const struct sync_btrfs_sub *it, uint64_t guid)
{
	size_t i;

	for (i = 0; i < it->nsnaps; i++)
		if (it->snaps[i].guid == guid)
			return 1;
	return 0;
}

/*
 * The receiving child of a pulled subvolume: into its snapshot
 * directory of the destination that the parent opened (its lock is
 * this child's too); published by the parent once all arrived.
 */
struct bpull_recv {
	struct btrfs_dest *d;
	const char	*rel;
};

static int
bpull_recv(void *arg, const char *dst, int in_fd, int rflags,
    struct dir_recv_result *res, struct as_err *err)
{
	const struct bpull_recv *p = arg;
	struct btrfs_snap got;
	char *dir;
	int rc;

	(void)dst;
	(void)rflags;
	if ((dir = btrfs_snapdir_of(p->d->dir, p->rel, err)) == NULL)
		return -1;
	rc = receive_into(dir, in_fd, &got, err);
	free(dir);
	if (rc == -1)
		return -1;
	res->target_guid = uuid64(got.received_uuid);
	snprintf(res->name, sizeof(res->name), "%s", got.name);
	res->st.entries_sent = 1;
	return 0;
}

/*
 * The local name of the snapshot a pull received into rel's directory of
 * d: the one whose received_uuid's GUID is guid (remote_pull_with checked
 * that the receiver made it).  Not the GO answer's name: that comes from
 * the peer and the view would be published from that path
 * (RELIABILITY.md I2).  MALFORMED when there is none.
 */
static int
pulled_name(struct btrfs_dest *d, const char *rel, uint64_t guid,
    const char *peer, char *name, size_t namesz, struct as_err *err)
{
	struct btrfs_snap *v = NULL;
	char *dir;
	size_t i, n = 0;
	int rc;

	if ((dir = btrfs_snapdir_of(d->dir, rel, err)) == NULL)
		return -1;
	rc = btrfs_list_snaps(dir, NULL, 1, &v, &n, err);
	for (i = n; rc == 0 && i-- > 0;)
		if (uuid64(v[i].received_uuid) == guid)
			break;
	if (rc == 0 && i == (size_t)-1)
		rc = as_err_set(err, AS_E_MALFORMED, 0, "'%s' sent %016"
		    PRIx64 " but '%s' holds no snapshot received from it",
		    peer, guid, dir);
	else if (rc == 0)
		snprintf(name, namesz, "%s", v[i].name);
	free(v);
	free(dir);
	return rc;
}

/*
 * A server's btrfs:SRC -> btrfs:DST (pull): only from a sender this side
 * trusts (--trust HOST), refused before connecting otherwise.  DST is
 * opened and checked as a local destination is; the listing (SNAPSHOTS,
 * REQ_F_TREE unless -N) gives each subvolume's snapshots: DST's root
 * must hold one of the root's (else CONFLICT unless -F), each child is
 * sent from the newest snapshot DST received of it that the server
 * lists (none: in full).  SEND of the root (REQ_F_TREE: the server
 * snapshots the tree) then of each child's snapshot of that name
 * (REQ_F_NESTED, id "NAME/REL"), each received into its snapshot
 * directory and checked (read-only, the announced received_uuid); the
 * view is published when all arrived, then DST is pruned (children no
 * longer listed go, as locally).
 */
static int
btrfs_pull(const struct endpoint *se, const char *dst,
    const struct sync_opts *o, struct sync_result *res, struct as_err *err)
{
	struct btrfs_dest d;
	struct btrfs_snap *hs = NULL;
	struct bpull_recv ra;
	struct btrfs_pub *pub = NULL;
	struct remote_opts ro;
	struct remote *r = NULL;
	struct remote_xfer x;
	struct proto_snap *v = NULL;
	struct sync_btrfs_sub *its = NULL;
	const char **rels = NULL;
	char *id = NULL, *cid = NULL, *dir = NULL;
	char name[BTRFS_NAME_MAX + 1], got[BTRFS_NAME_MAX + 1];
	uint64_t held = 0;
	size_t i, j, n = 0, ni = 0, nh = 0;
	int64_t t1;
	int rc = -1, norec = (o->flags & SYNC_NO_RECURSE) != 0;

	memset(&d, 0, sizeof(d));
	d.lock_fd = -1;
	res->remote = 2;
	if (o->trust == NULL || strcmp(o->trust, se->host) != 0)
		return as_err_set(err, AS_E_AUTH, 0, "refusing to receive a "
		    "btrfs stream from '%s': not configured as trusted (btrfs "
		    "receive does not validate streams; name it with --trust "
		    "%s, or a service's trust=%s, if it is)", se->host,
		    se->host, se->host);
	if (dest_open_checked(&d, dst, o, res, err) == -1)
		goto out;
	memset(&ro, 0, sizeof(ro));
	if (o->remote != NULL)
		ro = *o->remote;
	if ((r = remote_open(se, &ro, err)) == NULL)
		goto out;
	remote_set_path(r, se->path + 1);
	remote_set_flags(r, norec ? 0 : REQ_F_TREE);
	if (remote_snapshots(r, &v, &n, err) == -1) {
		as_err_prefix(err, "list '%s'", se->spec);
		goto out;
	}
	if (sync_btrfs_listing(remote_peer(r), v, n, &its, &ni, err) == -1)
		goto out;
	if (norec && ni > 1) {
		as_err_set(err, AS_E_MALFORMED, 0, "'%s' listed nested "
		    "subvolumes it was not asked for", remote_peer(r));
		goto out;
	}

	/* 1. the bases: the root's is what DST holds, or CONFLICT */
	for (i = 0; i < ni; i++) {
		if ((dir = btrfs_snapdir_of(d.dir, its[i].rel, err)) == NULL ||
		    btrfs_list_snaps(dir, NULL, 1, &hs, &nh, err) == -1)
			goto out;
		if (i == 0 && nh > 0) {
			held = uuid64(hs[nh - 1].received_uuid);
			if (!pitem_has(&its[0], held)) {
				if (!(o->flags & SYNC_FORCE)) {
					as_err_set(err, AS_E_CONFLICT, 0, "no "
					    "common snapshot: '%s' holds %016"
					    PRIx64 " which '%s' does not "
					    "have; use -F for a full resend",
					    dst, held, se->spec);
					goto out;
				}
				held = 0;
			}
			its[0].base = held;
		}
		for (j = nh; i > 0 && j-- > 0;)
			if (pitem_has(&its[i], uuid64(hs[j].received_uuid))) {
				its[i].base = uuid64(hs[j].received_uuid);
				break;
			}
		free(hs);
		hs = NULL;
		free(dir);
		dir = NULL;
	}
	id = sync_pull_id("btrfs:", dst);

	/* 2. the root (the server snapshots the tree), then each child */
	ra.d = &d;
	name[0] = '\0';
	for (i = 0; i < ni; i++) {
		ra.rel = its[i].rel;
		if (i > 0) {
			remote_set_flags(r, REQ_F_NESTED);
			free(cid);
			cid = xasprintf("%s/%s", name, its[i].rel);
		}
		t1 = mono_ns();
		rc = remote_pull_with(r, its[i].base, i == 0 ? id : cid, dst,
		    i == 0 && (o->flags & SYNC_FORCE) ? DIR_RECV_FORCE : 0,
		    bpull_recv, &ra, &x, err);
		rc = xfer_done(res, &x, t1, rc, i > 0 ? its[i].rel : NULL, err);
		if (rc == -1)
			goto out;
		rc = -1;
		if (pulled_name(&d, its[i].rel, x.guid, remote_peer(r),
		    got, sizeof(got), err) == -1)
			goto out;
		if (i == 0) {
			snprintf(name, sizeof(name), "%s", got);
			snprintf(x.name, sizeof(x.name), "%s", got);
			sync_pull_result(&x, its[0].snaps, its[0].nsnaps, res);
		} else if (strcmp(got, name) != 0) {
			as_err_set(err, AS_E_MALFORMED, 0, "'%s' sent '%s' for "
			    "nested '%s' of '%s'", remote_peer(r), got,
			    its[i].rel, name);
			goto out;
		}
		res->subvols++;
	}
	res->send.entries_sent = res->subvols;

	/* 3. publish, prune */
	pub = xcalloc(ni, sizeof(*pub));
	rels = xcalloc(ni, sizeof(*rels));
	for (i = 0; i < ni; i++) {
		pub[i].rel = rels[i] = its[i].rel;
		pub[i].name = name;
	}
	if (btrfs_dest_publish(&d, pub, ni, err) == -1)
		goto out;
	if (!(o->flags & SYNC_NO_PRUNE) && prune_dst(&d, rels, ni, name,
	    o->keep_dst, !norec, &res->pruned, err) == -1) {
		as_err_prefix(err, "prune snapshots of '%s'", dst);
		goto out;
	}
	rc = 0;
out:
	free(pub);
	free(rels);
	free(hs);
	free(dir);
	free(id);
	free(cid);
	sync_btrfs_subs_free(its, ni);
	free(v);
	remote_close(r);
	btrfs_dest_release(&d);
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
	int64_t t0 = mono_ns();
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
		rc = btrfs_pull(se, dst, o, res, err);
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
	res->total_ns = mono_ns() - t0;
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
sync_btrfs_transfer(struct btrfs_dest *d, const char *rel, const char *src,
    const char *sdir, const char *snap_uuid, const char *name,
    const char *parent, uint64_t *bytes, struct as_err *err)
{
	struct item it;

	memset(&it, 0, sizeof(it));
	it.rel = (char *)(uintptr_t)rel;
	it.abs = (char *)(uintptr_t)src;
	it.sdir = (char *)(uintptr_t)sdir;
	snprintf(it.snap_uuid, sizeof(it.snap_uuid), "%s", snap_uuid);
	return transfer(d, &it, name, parent, NULL, bytes, err);
}
