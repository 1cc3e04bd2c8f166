/*
 * sync_zfs.c - the replication step for ZFS datasets (sync.h):
 *
 *   zfs:A -> zfs:B        native: `zfs send | zfs receive` per dataset
 *   zfs:A -> /dir         a frozen snapshot through the portable engine
 *   zfs:A -> URL/zfs:B    push to a server (zfs_push: HOLD, RECEIVE)
 *   URL/zfs:A -> zfs:B    pull from a server (zfs_pull: SNAPSHOTS, SEND;
 *                         the server's side is sync_zfs_src_* and
 *                         serve_zfs.c)
 *
 * A push and a pull run the same plan as zfs:A -> zfs:B below, with the
 * server answering for one side, one exchange per dataset.
 *
 * zfs:A -> zfs:B, recursive unless SYNC_NO_RECURSE:
 *  1. lock A's state (STATE/zfs/<key>/lock; CONFLICT "busy") and list
 *     both trees with their snapshots' GUIDs (identity is the GUID,
 *     never the name);
 *  2. plan every dataset of A (parents first): its destination exists
 *     or not; the newest destination snapshot whose GUID A has is the
 *     base; a destination snapshot after the base, or one written since
 *     its newest snapshot, is divergence: CONFLICT with a report of the
 *     common, source-only and destination-only snapshots, before anything
 *     is created.  With SYNC_FORCE the destination is rolled back to the
 *     base, or (no base) its snapshots are destroyed for a full resend,
 *     but only when every snapshot that goes was made by autosync;
 *  3. snapshot A (and its children: -r, atomic) as
 *     autosync_YYYY-MM-DD_HH:MM:SS (UTC), as sync.c names them;
 *  4. per dataset, `zfs send [-I base] A/x@new` piped through this
 *     process (bytes counted) into `zfs receive -u B/x`; children that
 *     are new on A get a full stream; those gone from A are kept on B;
 *     after each receive the GUID of B/x@new is checked and the property
 *     policy applied (canmount=noauto, readonly=on);
 *  5. record that B holds the new snapshot (STATE/zfs/<key>/dests) and
 *     prune: autosync_* snapshots other than the new one, on A unless
 *     another destination's record still names them, and on B; the
 *     newest o->keep_src of autosync's on A and o->keep_dst on B stay
 *     (0: 1), and so does a snapshot with a hold (a user's, or a step's
 *     of another run).
 *
 * Property policy: autosync's streams carry no properties unless the
 * receiver can both exclude mountpoint and override canmount while it
 * receives (OpenZFS `receive -x mountpoint -o canmount=noauto`); on
 * zfs-fuse they are not sent, and B's datasets inherit from B's parent.
 * Every receive has -u.  So a source whose mountpoint is /root/.ssh
 * mounts nothing anywhere.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/bg.h"
#include "base/io.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "driver/zfs.h"
#include "repl/endpoint.h"
#include "repl/remote.h"
#include "repl/snapstore.h"
#include "repl/sync.h"
#include "transport/pace.h"
#include "base/banned.h"


static int64_t
znow_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* State: STATE/zfs/<key of "zfs:A">/{lock,dests/<key of dst>} */

struct zstate {
	char	*dir;
	int	 lock_fd;
};

static int
mkdirs(const char *path, struct as_err *err)
{
	char *p = xstrdup(path), *s;
	int rc = 0;

	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, 0700) == -1 && errno != EEXIST) {
				rc = as_err_sys(err, errno, "state directory "
				    "'%s'", p);
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	return rc;
}

static int
zstate_open(struct zstate *zs, const char *state, const char *ds,
    struct as_err *err)
{
	char *name, *key, *dests, *lock;

	zs->lock_fd = -1;
	name = xasprintf("zfs:%s", ds);
	key = snapstore_key(name);
	zs->dir = xasprintf("%s/zfs/%s", state, key);
	free(key);
	free(name);
	dests = xasprintf("%s/dests", zs->dir);
	if (mkdirs(dests, err) == -1) {
		free(dests);
		return -1;
	}
	free(dests);
	lock = xasprintf("%s/lock", zs->dir);
	zs->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (zs->lock_fd == -1) {
		as_err_sys(err, errno, "open '%s'", lock);
		free(lock);
		return -1;
	}
	free(lock);
	if (flock(zs->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			return as_err_set(err, AS_E_CONFLICT, 0, "'zfs:%s' is "
			    "busy: another sync of it is running", ds);
		return as_err_sys(err, errno, "lock 'zfs:%s'", ds);
	}
	return 0;
}

static void
zstate_release(struct zstate *zs)
{
	if (zs->lock_fd != -1)
		close(zs->lock_fd);
	free(zs->dir);
	zs->dir = NULL;
	zs->lock_fd = -1;
}

/*
 * Record the snapshots that dest's datasets hold as their newest common
 * one (usually one name: a recursive snapshot is named alike in every
 * dataset; after a run that failed half-way, the old and the new).  The
 * record is "DEST\nNAME\n...", written atomically (write, fsync,
 * rename); pruning keeps every name that another record holds.
 */
static int
rec_put(struct zstate *zs, const char *dest, char *const *names, size_t n,
    struct as_err *err)
{
	char *key = snapstore_key(dest), *path, *tmp;
	size_t i;
	int fd, rc = -1;

	path = xasprintf("%s/dests/%s", zs->dir, key);
	tmp = xasprintf("%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1) {
		as_err_sys(err, errno, "write '%s'", tmp);
		goto out;
	}
	if (io_write_full(fd, dest, strlen(dest)) == -1 ||
	    io_write_full(fd, "\n", 1) == -1)
		goto werr;
	for (i = 0; i < n; i++)
		if (io_write_full(fd, names[i], strlen(names[i])) == -1 ||
		    io_write_full(fd, "\n", 1) == -1)
			goto werr;
	if (io_fsync(fd, tmp, err) == -1) {
		close(fd);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) == -1) {
		as_err_sys(err, errno, "rename '%s'", tmp);
		goto out;
	}
	rc = 0;
	goto out;
werr:
	as_err_sys(err, errno, "write '%s'", tmp);
	close(fd);
out:
	free(key);
	free(path);
	free(tmp);
	return rc;
}

/*
 * The snapshot names that other destinations' records hold.  Allocated
 * array of strings.
 */
static int
rec_held_names(struct zstate *zs, const char *dest, char ***out, size_t *n,
    struct as_err *err)
{
	char *dir = xasprintf("%s/dests", zs->dir), *mine, *p, *line, *nl;
	char *buf = xmalloc(65536);
	struct dirent *de;
	DIR *d;
	ssize_t r;
	int fd;

	*out = NULL;
	*n = 0;
	mine = snapstore_key(dest);
	if ((d = opendir(dir)) == NULL) {
		as_err_sys(err, errno, "open '%s'", dir);
		free(dir);
		free(mine);
		free(buf);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, mine) == 0 ||
		    strstr(de->d_name, ".tmp") != NULL)
			continue;
		p = xasprintf("%s/%s", dir, de->d_name);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		free(p);
		if (fd == -1)
			continue;
		r = io_read_full(fd, buf, 65535);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		/* the first line names the destination */
		if ((line = strchr(buf, '\n')) == NULL)
			continue;
		for (line++; *line != '\0'; line = nl + 1) {
			if ((nl = strchr(line, '\n')) == NULL)
				break;
			*nl = '\0';
			if (*line == '\0')
				continue;
			*out = xreallocarray(*out, *n + 1, sizeof(**out));
			(*out)[(*n)++] = xstrdup(line);
		}
	}
	closedir(d);
	free(dir);
	free(mine);
	free(buf);
	return 0;
}

/* The names dest's own record holds (none when it has no record). */
static int
rec_own_names(struct zstate *zs, const char *dest, char ***out, size_t *n)
{
	char *key = snapstore_key(dest), *p, *line, *nl;
	char *buf = xmalloc(65536);
	ssize_t r;
	int fd;

	*out = NULL;
	*n = 0;
	p = xasprintf("%s/dests/%s", zs->dir, key);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	free(key);
	r = fd == -1 ? -1 : io_read_full(fd, buf, 65535);
	if (fd != -1)
		close(fd);
	if (r > 0) {
		buf[r] = '\0';
		line = strchr(buf, '\n');
		for (line = line != NULL ? line + 1 : NULL; line != NULL &&
		    (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
			*nl = '\0';
			if (*line == '\0')
				continue;
			*out = xreallocarray(*out, *n + 1, sizeof(**out));
			(*out)[(*n)++] = xstrdup(line);
		}
	}
	free(buf);
	return 0;
}

static void
free_names(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * Say what a missing capability costs once per state directory (not on
 * every scheduled run): the marker STATE/zfs/noted-KEY remembers it.
 */
static void
note_once(const char *state, const char *key, const char *msg)
{
	char *p = xasprintf("%s/zfs/noted-%s", state, key);
	int fd;

	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd != -1) {
		close(fd);
		zfs_caps_note(key, msg);
	} else if (errno != EEXIST)
		zfs_caps_note(key, msg);
	else
		log_debug("zfs: %s", msg);
	free(p);
}

/* ------------------------------------------------------------------ */
/* Planning */

struct zstep;
static int record_run(struct zstate *zs, const char *dkey,
    const struct zstep *steps, size_t n, const char *name, int keep_old,
    struct as_err *err);

struct zstep {
	const struct zfs_ds *src;	/* in the source tree */
	char		*dst;		/* destination dataset name */
	const struct zfs_ds *dds;	/* existing destination, or NULL */
	const struct zfs_snap *base_d;	/* common snapshot, on dst */
	const struct zfs_snap *base_s;	/* ... and on src */
	int		 diverged;	/* dst snapshots after the base */
	int		 modified;	/* dst written since its newest */
	int		 nobase;	/* dst exists, nothing in common */
	int		 held;		/* base held: 1 alone, 2 by hold -r */
	int		 sent;		/* received this run */
	int		 force;		/* -F: rolled back or emptied */
	struct zfs_common cmp;		/* dst against src */
};

/*
 * Count a dataset sent (full unless incremental); the root's (first)
 * step names the run in res.  ns, the sent snapshot, may be NULL for the
 * root, whose listing runs beside its send (zfs_to_zfs).
 */
static void
step_sent(struct zstep *s, int root, int incremental,
    const struct zfs_snap *ns, struct sync_result *res)
{
	res->send.entries_sent++;
	res->zfs_datasets++;
	if (!incremental)
		res->zfs_full++;
	if (root) {
		res->full = !incremental;
		if (ns != NULL)		/* else filled once listed */
			res->guid = ns->guid;
		if (incremental) {
			res->base_guid = s->base_s->guid;
			snprintf(res->base_name, sizeof(res->base_name), "%s",
			    s->base_s->name);
		}
	}
	s->sent = 1;
}


static int
is_auto(const char *name)
{
	return strncmp(name, SNAP_AUTO_PREFIX, strlen(SNAP_AUTO_PREFIX)) == 0;
}

/* The report of a diverged dataset (see zfs_compare_report). */
static void
diverge_report(const struct zstep *st, char *buf, size_t bufsz)
{
	zfs_compare_report(st->src, st->dds, &st->cmp, buf, bufsz);
}

/* The destination name of source dataset s: dst_root + the rest. */
static char *
map_name(const char *src_root, const char *dst_root, const char *s)
{
	return xasprintf("%s%s", dst_root, s + strlen(src_root));
}

/* Plan one dataset: its base, and whether the destination diverged. */
static void
plan_one(struct zstep *st, const struct zfs_tree *dt)
{
	st->dds = zfs_tree_find(dt, st->dst);
	if (st->dds == NULL)
		return;
	zfs_compare(st->src, st->dds, &st->cmp);
	st->base_s = st->cmp.base_s;
	st->base_d = st->cmp.base_d;
	st->nobase = st->base_d == NULL;
	st->diverged = st->base_d != NULL && st->cmp.after > 0;
	st->modified = st->cmp.modified;
}

/* Record, for dest, each dataset's newest common snapshot after a run. */
static int
record_run(struct zstate *zs, const char *dkey, const struct zstep *steps,
    size_t n, const char *name, int keep_old, struct as_err *err)
{
	char **names, **old = NULL;
	const char *c;
	size_t i, j, k = 0, nold = 0;
	int rc;

	/*
	 * keep_old (a -N run): the children's bases, which this run did not
	 * look at, stay recorded, or another destination's pruning would
	 * destroy them on the source.
	 */
	if (keep_old)
		(void)rec_own_names(zs, dkey, &old, &nold);
	names = xcalloc(n + nold + 1, sizeof(*names));
	for (i = 0; i < nold; i++) {
		for (j = 0; j < k && strcmp(names[j], old[i]) != 0; j++)
			;
		if (j == k)
			names[k++] = old[i];
	}
	for (i = 0; i < n; i++) {
		c = steps[i].sent ? name : steps[i].base_s != NULL &&
		    !steps[i].nobase ? steps[i].base_s->name : NULL;
		if (c == NULL)
			continue;
		for (j = 0; j < k && strcmp(names[j], c) != 0; j++)
			;
		if (j == k)
			names[k++] = (char *)(uintptr_t)c;
	}
	rc = rec_put(zs, dkey, names, k, err);
	free(names);
	free_names(old, nold);
	return rc;
}

/* The first snapshot (on dst) after the base that autosync did not make. */
static const char *
foreign_after_base(const struct zstep *st)
{
	return st->cmp.foreign;
}

/*
 * Does d have a snapshot between the base and the new one?  Only then is
 * `send -I` (which carries them) different from `send -i`, and -I costs
 * zfs-fuse a scan of the dataset's snapshots (0.1 s each).
 */
static int
has_between(const struct zfs_ds *d, uint64_t from_txg, uint64_t to_txg)
{
	size_t i;

	for (i = 0; i < d->nsnaps; i++)
		if (d->snaps[i].createtxg > from_txg &&
		    d->snaps[i].createtxg < to_txg)
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* One transfer: zfs send | (this process) | zfs receive */

/*
 * Copy in to out with splice(2) until end of file, under pc (a rate
 * limit, progress: pace.h); *bytes counts.  0 at end of file, -1 with
 * errno (EPIPE: the receiver went away).
 */
static int
pump(int in, int out, struct pace *pc, uint64_t *bytes)
{
	ssize_t n;

	for (;;) {
		n = splice(in, NULL, out, NULL, pace_take(pc, 1 << 20),
		    SPLICE_F_MOVE);
		if (n == 0)
			return 0;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		*bytes += (uint64_t)n;
		pace_moved(pc, (uint64_t)n);
	}
}

/* One stream: what transfer() sends and where it receives it. */
struct zpipe {
	const char	*snap;
	const char	*base;		/* incremental from it, or NULL */
	int		 sflags;	/* ZFS_SEND_* */
	const char	*dst;
	int		 rflags;	/* ZFS_RECV_* */
	/* called once both zfs processes are started, when set */
	void		(*spawned)(void *);
	void		*spawned_arg;
	struct pace	*pace;		/* the sync's, shared by its streams */
};

/*
 * zfs send | pump | zfs receive.  zp->spawned, when set, is called once
 * both zfs processes are started: the caller's side jobs start then, so
 * that on a busy machine their zfs commands (each a few ms of CPU to
 * start) do not delay the stream's.
 */
static int
transfer(const struct zpipe *zp, uint64_t *bytes, struct as_err *err)
{
	struct zfs_proc sp, rp;
	struct as_err serr, rerr;
	int a[2], b[2], prc, perr = 0, src, rrc;

	if (pipe2(a, O_CLOEXEC) == -1)
		return as_err_sys(err, errno, "pipe");
	if (pipe2(b, O_CLOEXEC) == -1) {
		close(a[0]);
		close(a[1]);
		return as_err_sys(err, errno, "pipe");
	}
	/*
	 * Larger pipes: fewer wake-ups of the three processes per MiB (the
	 * default 64 KiB pipe switches context every 16 pages).  Best
	 * effort: a failure leaves the default.
	 */
	(void)fcntl(a[1], F_SETPIPE_SZ, REMOTE_PIPE_SIZE);
	(void)fcntl(b[1], F_SETPIPE_SZ, REMOTE_PIPE_SIZE);
	if (zfs_receive_start(&rp, zp->dst, zp->rflags, b[0], err) == -1) {
		close(a[0]);
		close(a[1]);
		close(b[0]);
		close(b[1]);
		return -1;
	}
	close(b[0]);
	if (zfs_send_start(&sp, zp->snap, zp->base, zp->sflags, a[1],
	    err) == -1) {
		close(a[0]);
		close(a[1]);
		close(b[1]);
		zfs_proc_kill(&rp);
		(void)zfs_proc_finish(&rp, &rerr);
		return -1;
	}
	close(a[1]);
	if (zp->spawned != NULL)
		zp->spawned(zp->spawned_arg);
	prc = pump(a[0], b[1], zp->pace, bytes);
	if (prc == -1)
		perr = errno;
	/* end of stream for the receiver; EPIPE for a sender still going */
	close(b[1]);
	close(a[0]);
	as_err_clear(&serr);
	as_err_clear(&rerr);
	src = zfs_proc_finish(&sp, &serr);
	rrc = zfs_proc_finish(&rp, &rerr);
	if (rrc == -1 && (src == 0 || (rerr.code != AS_E_TRUNCATED &&
	    rerr.code != AS_E_MALFORMED))) {
		/* the receiver's own refusal explains the failure */
		*err = rerr;
		return -1;
	}
	if (src == -1) {
		*err = serr;
		return -1;
	}
	if (rrc == -1) {
		*err = rerr;
		return -1;
	}
	if (prc == -1)
		return as_err_sys(err, perr, "copy the stream of '%s'",
		    zp->snap);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The step */

/* k of a snapshot name base (1) or base_k, else 0. */
static unsigned
name_suffix(const char *name, const char *base)
{
	size_t bl = strlen(base);
	unsigned long v;
	char *end;

	if (strncmp(name, base, bl) != 0)
		return 0;
	if (name[bl] == '\0')
		return 1;
	if (name[bl] != '_' || name[bl + 1] < '1' || name[bl + 1] > '9')
		return 0;
	errno = 0;
	v = strtoul(name + bl + 1, &end, 10);
	return errno != 0 || *end != '\0' || v > UINT_MAX / 2 ? 0 :
	    (unsigned)v;
}

/*
 * A name for the new snapshot that no dataset of the tree has yet, above
 * the highest suffix of this second rather than the lowest free one: a
 * name pruned here may still be held by a destination that keeps more
 * (zfs receive would refuse it there as existing), while every name a
 * destination got from here is at most the newest here, never pruned.
 */
static void
new_name(const struct zfs_tree *t, time_t now, char *out, size_t outsz)
{
	char base[64];
	struct tm tm;
	unsigned n, m, start = 1;
	size_t i, j;
	int used;

	gmtime_r(&now, &tm);
	strftime(base, sizeof(base), SNAP_AUTO_PREFIX "%Y-%m-%d_%H:%M:%S",
	    &tm);
	for (i = 0; i < t->n; i++)
		for (j = 0; j < t->v[i].nsnaps; j++)
			if ((m = name_suffix(t->v[i].snaps[j].name, base)) >=
			    start)
				start = m + 1;
	for (n = start; ; n++) {
		if (n == 1)
			snprintf(out, outsz, "%s", base);
		else
			snprintf(out, outsz, "%s_%u", base, n);
		used = 0;
		for (i = 0; i < t->n && !used; i++)
			used = zfs_ds_snap_name(&t->v[i], out) != NULL;
		if (!used)
			return;
	}
}

/*
 * The name step 1 snapshots with before anything is listed: new_name
 * over the names dest's record holds (the newest it got from here, so
 * a run that follows another within the same second guesses the next
 * suffix).  Step 3 keeps the snapshot only if new_name over the
 * listing agrees.
 */
static void
early_name(struct zstate *zs, const char *dest, time_t now, char *out,
    size_t outsz)
{
	struct zfs_ds d;
	struct zfs_tree t = { &d, 1 };
	char **names;
	size_t i, n;

	memset(&d, 0, sizeof(d));
	(void)rec_own_names(zs, dest, &names, &n);
	d.snaps = xcalloc(n + 1, sizeof(*d.snaps));
	for (i = 0; i < n; i++)
		d.snaps[i].name = names[i];
	d.nsnaps = n;
	new_name(&t, now, out, outsz);
	free(d.snaps);
	free_names(names, n);
}

/* Does one of the names in v equal name? */
static int
in_names(char **v, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], name) == 0)
			return 1;
	return 0;
}

/*
 * May snapshot i of d go?  Only autosync's, not keep, not held, and not
 * among the newest nkeep of autosync's in d (0 counts as 1: keep is the
 * newest), by creation order in the pool.
 */
static int
prunable(const struct zfs_ds *d, size_t i, const char *keep, char **held,
    size_t nheld, unsigned nkeep)
{
	const char *s = d->snaps[i].name;
	unsigned newer = 0;
	size_t j;

	if (!is_auto(s) || strcmp(s, keep) == 0 || in_names(held, nheld, s) ||
	    d->snaps[i].userrefs > 0)
		return 0;
	for (j = 0; j < d->nsnaps; j++)
		if (d->snaps[j].createtxg > d->snaps[i].createtxg &&
		    is_auto(d->snaps[j].name))
			newer++;
	return newer >= (nkeep == 0 ? 1 : nkeep);
}

/*
 * Destroy the prunable snapshots of the datasets of t that hold keep
 * (the ones this run reached; a child kept on the destination after the
 * source dropped it is left alone).  A name that goes from every dataset
 * of the tree that has it goes in one `zfs destroy -r root@name` when
 * recursive; otherwise one dataset at a time.
 */
static int
prune_tree(const struct zfs_tree *t, const char *root, const char *keep,
    char **held, size_t nheld, int recursive, unsigned nkeep,
    unsigned *pruned, struct as_err *err)
{
	char **names = NULL;
	const struct zfs_snap *sn;
	size_t nn = 0, i, j, k, count;
	int all;

	for (i = 0; i < t->n; i++) {
		if (zfs_ds_snap_name(&t->v[i], keep) == NULL)
			continue;
		for (j = 0; j < t->v[i].nsnaps; j++)
			if (prunable(&t->v[i], j, keep, held, nheld, nkeep) &&
			    !in_names(names, nn, t->v[i].snaps[j].name)) {
				names = xreallocarray(names, nn + 1,
				    sizeof(*names));
				names[nn++] = t->v[i].snaps[j].name;
			}
	}
	for (k = 0; k < nn; k++) {
		/* one command when every holder of the name may lose it */
		all = recursive && t->n > 0 &&
		    strcmp(t->v[0].name, root) == 0 &&
		    zfs_ds_snap_name(&t->v[0], names[k]) != NULL;
		for (i = 0, count = 0; all && i < t->n; i++) {
			sn = zfs_ds_snap_name(&t->v[i], names[k]);
			if (sn == NULL)
				continue;
			count++;
			if (zfs_ds_snap_name(&t->v[i], keep) == NULL ||
			    !prunable(&t->v[i], (size_t)(sn - t->v[i].snaps),
			    keep, held, nheld, nkeep))
				all = 0;
		}
		if (all) {
			if (zfs_destroy_snapshot(root, names[k], 1, 0,
			    err) == -1)
				goto fail;
			*pruned += (unsigned)count;
			continue;
		}
		for (i = 0; i < t->n; i++) {
			sn = zfs_ds_snap_name(&t->v[i], names[k]);
			if (sn == NULL || zfs_ds_snap_name(&t->v[i], keep) ==
			    NULL || !prunable(&t->v[i], (size_t)(sn -
			    t->v[i].snaps), keep, held, nheld, nkeep))
				continue;
			if (zfs_destroy_snapshot(t->v[i].name, names[k], 0, 0,
			    err) == -1)
				goto fail;
			(*pruned)++;
		}
	}
	free(names);
	return 0;
fail:
	free(names);
	return -1;
}

/* ------------------------------------------------------------------ */
/* The source side of a pull, for a server (sync.h) */

struct sync_zfs_src {
	struct zstate	 zs;
	char		*ds;
};

int
sync_zfs_src_open(const char *state, const char *ds,
    struct sync_zfs_src **out, struct as_err *err)
{
	struct sync_zfs_src *z = xcalloc(1, sizeof(*z));

	z->zs.lock_fd = -1;
	z->ds = xstrdup(ds);
	if (zstate_open(&z->zs, state, ds, err) == -1) {
		sync_zfs_src_close(z);
		return -1;
	}
	*out = z;
	return 0;
}

void
sync_zfs_new_name(const struct zfs_tree *t, char *out, size_t outsz)
{
	new_name(t, time(NULL), out, outsz);
}

int
sync_zfs_src_commit(struct sync_zfs_src *z, const char *dest,
    const char *held, const char *keep, unsigned *pruned,
    struct as_err *err)
{
	struct zfs_tree t;
	char **names = NULL, *one = (char *)(uintptr_t)held;
	size_t nn = 0;
	int rc;

	if (rec_put(&z->zs, dest, &one, held != NULL ? 1 : 0, err) == -1)
		return -1;
	if (keep == NULL)
		return 0;
	if (rec_held_names(&z->zs, dest, &names, &nn, err) == -1)
		return -1;
	if ((rc = zfs_list(z->ds, 0, &t, err)) == 0)
		rc = prune_tree(&t, z->ds, keep, names, nn, 0, 0, pruned, err);
	zfs_tree_release(&t);
	free_names(names, nn);
	return rc;
}

void
sync_zfs_src_close(struct sync_zfs_src *z)
{
	if (z == NULL)
		return;
	zstate_release(&z->zs);
	free(z->ds);
	free(z);
}

/* Make way for a forced step on one dataset (SYNC_FORCE only). */
static int
force_prepare(struct zstep *st, struct as_err *err)
{
	const char *foreign = foreign_after_base(st);
	size_t i;

	if (foreign != NULL)
		return as_err_set(err, AS_E_CONFLICT, 0, "'%s': snapshot "
		    "'%s' was not made by autosync; -F destroys only "
		    "autosync's snapshots: destroy it yourself to go on",
		    st->dst, foreign);
	/*
	 * A forced receive replaces the file system under its mount:
	 * unmount first (zfs-fuse fails a full `receive -F` over a mounted
	 * dataset with "I/O error" after receiving it).
	 */
	if (st->dds->mounted == 1 && zfs_unmount(st->dst, err) == -1)
		return -1;
	if (st->base_d != NULL) {
		if (!st->diverged)
			return 0;	/* receive -F rolls back writes */
		log_info("'%s': rolling back to '%s' (-F)", st->dst,
		    st->base_d->name);
		return zfs_rollback(st->dst, st->base_d->name, err);
	}
	/* nothing in common: a full stream, over autosync's snapshots only */
	for (i = 0; i < st->dds->nsnaps; i++) {
		log_info("'%s': destroying '%s' for a full resend (-F)",
		    st->dst, st->dds->snaps[i].name);
		if (zfs_destroy_snapshot(st->dst, st->dds->snaps[i].name, 0, 0,
		    err) == -1)
			return -1;
	}
	return 0;
}

/* A listing as a job (base/bg.h). */
struct list_one {
	const char	*root;
	int		 recursive;
	struct zfs_tree	*t;
};

static int
list_one_run(void *arg, struct as_err *err)
{
	struct list_one *l = arg;

	return zfs_list(l->root, l->recursive, l->t, err);
}

/*
 * Both trees of a step, listed at once: each listing is one zfs
 * command, a round trip to the zfs daemon that costs more than the
 * parsing (about 30 ms on zfs-fuse), and the two are independent.  The
 * destination's is listed by a thread (zfs_caps is filled before, so
 * the thread only forks, reads and parses); the source's error, if
 * any, is the one reported, as when they ran one after the other.
 */
static int
list_both(const char *src, const char *dst, int recursive,
    struct zfs_tree *st, struct zfs_tree *dt, struct as_err *err)
{
	struct list_one l = { dst, recursive, dt };
	struct bg_job j;
	int rc;

	bg_start(&j, list_one_run, &l);
	rc = zfs_list(src, recursive, st, err);
	if (bg_join(&j, rc == 0 ? err : NULL) == -1)
		return -1;
	return rc;
}

/* The new snapshot as a job. */
struct snap_job {
	const char	*ds;
	const char	*name;
	int		 recursive;
};

static int
snap_run(void *arg, struct as_err *err)
{
	struct snap_job *j = arg;

	return zfs_snapshot(j->ds, j->name, j->recursive, err);
}

/*
 * Take the snapshot named name out of every dataset of t: the snapshot
 * this run made while t was listed, which the plan must not see (it is
 * newer than anything the destination can hold, and new_name must not
 * count it as taken).
 */
static void
strip_snap(struct zfs_tree *t, const char *name)
{
	struct zfs_ds *d;
	size_t i, j;

	for (i = 0; i < t->n; i++) {
		d = &t->v[i];
		for (j = 0; j < d->nsnaps; j++)
			if (strcmp(d->snaps[j].name, name) == 0)
				break;
		if (j == d->nsnaps)
			continue;
		free(d->snaps[j].name);
		memmove(&d->snaps[j], &d->snaps[j + 1], (d->nsnaps - j - 1) *
		    sizeof(*d->snaps));
		d->nsnaps--;
	}
}

/*
 * The destination dst must exist, or its parent (a receive creates
 * dst, never its parents).  dt is dst's listing.
 */
static int
dst_parent_check(const char *dst, const struct zfs_tree *dt,
    struct as_err *err)
{
	struct zfs_tree pt;
	char *parent;
	size_t n;

	if (zfs_tree_find(dt, dst) != NULL)
		return 0;
	if (strchr(dst, '/') == NULL)
		return as_err_set(err, AS_E_NOTFOUND, 0, "destination pool "
		    "'%s' does not exist", dst);
	parent = xstrndup(dst, (size_t)(strrchr(dst, '/') - dst));
	if (zfs_list(parent, 0, &pt, err) == -1) {
		free(parent);
		return -1;
	}
	n = pt.n;
	zfs_tree_release(&pt);
	if (n == 0)
		as_err_set(err, AS_E_NOTFOUND, 0, "the parent '%s' of the "
		    "destination does not exist", parent);
	free(parent);
	return n == 0 ? -1 : 0;
}

/*
 * Step 2's verdict over planned steps: a destination dataset that holds
 * a partial receive, diverged, has nothing in common or was modified is
 * CONFLICT with a report, unless force; with force every refusal (a
 * snapshot autosync did not make) comes before any rollback or destroy,
 * and then the forced datasets are made ready (force_prepare).
 */
static int
plan_refuse(struct zstep *steps, size_t n, int force, struct as_err *err)
{
	char report[1500];
	size_t i;

	for (i = 0; i < n; i++) {
		struct zstep *s = &steps[i];

		if (s->dds != NULL && s->dds->resume_token != NULL)
			return as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds "
			    "a partial receive (resume token); abort it with "
			    "'zfs receive -A %s'", s->dst, s->dst);
		if (s->dds == NULL || (!s->diverged && !s->nobase &&
		    !s->modified))
			continue;
		diverge_report(s, report, sizeof(report));
		if (!force)
			return as_err_set(err, AS_E_CONFLICT, 0, "'%s' %s; %s; "
			    "use -F to roll it back (only autosync's snapshots "
			    "are destroyed)", s->dst, s->nobase ? "has no "
			    "snapshot in common with the source" :
			    s->diverged ? "has snapshots the source does not "
			    "have after the common one" : "was modified since "
			    "its newest snapshot", report);
		/* all refusals before any rollback or destroy */
		if (foreign_after_base(s) != NULL)
			return as_err_set(err, AS_E_CONFLICT, 0, "'%s': "
			    "snapshot '%s' was not made by autosync; -F "
			    "destroys only autosync's snapshots: destroy it "
			    "yourself to go on (%s)", s->dst,
			    foreign_after_base(s), report);
		s->force = 1;
	}
	for (i = 0; i < n; i++) {
		if (!steps[i].force)
			continue;
		diverge_report(&steps[i], report, sizeof(report));
		log_info("'%s' diverged (%s): forcing", steps[i].dst, report);
		if (force_prepare(&steps[i], err) == -1)
			return -1;
	}
	return 0;
}

/*
 * The jobs a step runs beside each other (base/bg.h): every zfs command
 * is a round trip to the daemon, so a step costs about as many of them
 * as it has in a row.  Which may overlap, and why it is safe:
 *   - the listings of both trees and the new snapshot: the plan sees
 *     the source without it (strip_snap), and a snapshot the plan
 *     refuses, or whose name the listing shows was not free, is
 *     destroyed (it is autosync's, made a moment ago) before the
 *     destination is touched;
 *   - the listing of the new snapshot (its GUID, for the checks), the
 *     holds on the bases and the root's send: the send needs only the
 *     name just made, and holds what it sends itself while it runs
 *     (the holds are for the children's sends and the rest of the
 *     step; they are in place before any of those);
 *   - the destination's listing (the checks), the property policy of
 *     datasets this run created, and the release of the bases: none
 *     reads what another writes, and nothing is pruned before the
 *     checks have passed;
 *   - the pruning of the source and of the destination: different
 *     pools, each from its own listing.
 */
struct hold_job {
	const char	*src;
	struct zfs_tree	*st;
	struct zstep	*steps;
	size_t		 n;
	int		 recursive;
	const char	*rhold;		/* out: held with hold -r */
};

/*
 * Holds keep the bases from being destroyed while the step runs
 * (zrepl's step holds).  A run killed before its release leaves them:
 * release autosync's tag on our snapshots first (we hold the lock, so no
 * other run of this source holds them now).
 */
static int
hold_bases(void *arg, struct as_err *err)
{
	struct hold_job *h = arg;
	struct zfs_tree *st = h->st;
	struct zstep *steps = h->steps;
	size_t i, j;

	/* st then counts the holds as they are without ours (holds_from) */
	for (i = 0; i < st->n; i++)
		for (j = 0; j < st->v[i].nsnaps; j++)
			if (st->v[i].snaps[j].userrefs > 0 &&
			    is_auto(st->v[i].snaps[j].name) &&
			    zfs_release(st->v[i].name, st->v[i].snaps[j].name,
			    0, NULL) == 0)
				st->v[i].snaps[j].userrefs--;
	/*
	 * One `hold -r` on the root's base covers every child whose base
	 * has the same name (a recursive snapshot names them alike); the
	 * others are held one by one.
	 */
	if (h->recursive && h->n > 1 && steps[0].base_s != NULL &&
	    !steps[0].nobase) {
		if (zfs_hold(h->src, steps[0].base_s->name, 1, err) == -1)
			return -1;
		h->rhold = steps[0].base_s->name;
	}
	for (i = 0; i < h->n; i++) {
		if (steps[i].base_s == NULL || steps[i].nobase)
			continue;
		if (h->rhold != NULL &&
		    strcmp(steps[i].base_s->name, h->rhold) == 0) {
			steps[i].held = 2;
			continue;
		}
		if (zfs_hold(steps[i].src->name, steps[i].base_s->name, 0,
		    err) == -1)
			return -1;
		steps[i].held = 1;
	}
	return 0;
}

/*
 * Join the hold job once it was started: the base held with hold -r
 * (for release_bases) is known only then.
 */
static int
join_hold(struct bg_job *j, const struct hold_job *h, const char **rhold,
    struct as_err *err)
{
	int rc;

	if (!j->started)
		return 0;
	rc = bg_join(j, err);
	*rhold = h->rhold;
	return rc;
}

/*
 * Release what hold_bases held, all of it even when one fails (the
 * first failure is the error); what is released is marked so, so a
 * second call (the step's error path) tries only what is left.
 */
struct release_job {
	const char	*src;
	struct zstep	*steps;
	size_t		 n;
	const char	**rhold;
};

static int
release_bases(void *arg, struct as_err *err)
{
	struct release_job *r = arg;
	size_t i;
	int rc = 0;

	if (*r->rhold != NULL) {
		if (zfs_release(r->src, *r->rhold, 1, err) == -1) {
			rc = -1;
			err = NULL;
		} else
			*r->rhold = NULL;
	}
	for (i = 0; i < r->n; i++) {
		struct zstep *s = &r->steps[i];

		if (s->held == 1 &&
		    zfs_release(s->src->name, s->base_s->name, 0, err) == -1) {
			rc = -1;
			err = NULL;
			continue;
		}
		s->held = 0;
	}
	return rc;
}

/*
 * The holds of nt's snapshots as st counted them (less the leftovers
 * hold_bases released), for the pruning: nt is listed while this step
 * holds the bases and while the root's `zfs send` puts its own
 * temporary holds on what it sends, so its counts are the step's, not
 * the ones that will be there when it ends.  A snapshot st does not
 * have (the new one, or one made meanwhile) keeps nt's count.
 */
static void
holds_from(struct zfs_tree *nt, const struct zfs_tree *st)
{
	const struct zfs_ds *sd;
	const struct zfs_snap *ss;
	size_t i, j;

	for (i = 0; i < nt->n; i++) {
		if ((sd = zfs_tree_find(st, nt->v[i].name)) == NULL)
			continue;
		for (j = 0; j < nt->v[i].nsnaps; j++) {
			ss = zfs_ds_snap_guid(sd, nt->v[i].snaps[j].guid);
			if (ss != NULL)
				nt->v[i].snaps[j].userrefs = ss->userrefs;
		}
	}
}

/*
 * Step 4's streams.  The root's goes alone, beside the listing of the new
 * snapshot; the children's go ZFS_SEND_JOBS at a time: each `zfs send |
 * zfs receive` of a small incremental is mostly the round trips of its
 * two commands to the zfs daemon, and on zfs-fuse 20 of them take 25 %
 * less wall time four at a time than one after another (bench/README.md,
 * session 8).  A child whose destination does not exist yet waits for
 * its parent's stream, which creates the parent.
 */
#define ZFS_SEND_JOBS	3

struct send_ctx {
	struct zstep		*steps;
	size_t			 n;
	const struct zfs_tree	*nt;	/* the new snapshot's listing, or
					 * NULL while it runs (the root) */
	const char		*name;	/* the new snapshot */
	int			 sflags;
	int			 rflags;
	struct sync_result	*res;
	pthread_mutex_t		 mu;	/* res, state, failed, err */
	pthread_cond_t		 cv;	/* a step is done */
	unsigned char		*state;	/* a step's: 0 to go, 1 going, 2 done */
	int			 failed;
	struct as_err		 err;	/* the first failure */
	/* the root's stream is under way (transfer's spawned) */
	void			(*root_spawned)(void *);
	void			*root_arg;
	struct pace		*pace;	/* rate limit, progress: all streams */
};

/* Send step i; counted in c->res under c->mu. */
static int
send_step(struct send_ctx *c, size_t i, struct as_err *err)
{
	struct zstep *s = &c->steps[i];
	const struct zfs_ds *sd = NULL;
	const struct zfs_snap *ns = NULL;
	struct zpipe zp;
	char report[1500], *snap, *base;
	uint64_t bytes = 0;
	int between, rc, sflags;

	if (c->nt != NULL) {
		sd = zfs_tree_find(c->nt, s->src->name);
		ns = sd != NULL ? zfs_ds_snap_name(sd, c->name) : NULL;
		if (ns == NULL)
			return 0;	/* destroyed meanwhile */
	}
	base = s->base_s != NULL && !(s->nobase) ? xasprintf("%s@%s",
	    s->src->name, s->base_s->name) : NULL;
	if (base != NULL && ns != NULL && s->base_s->guid == ns->guid) {
		free(base);
		return 0;	/* nothing new (cannot happen) */
	}
	snap = xasprintf("%s@%s", s->src->name, c->name);
	between = base != NULL && (ns != NULL ?
	    has_between(sd, s->base_s->createtxg, ns->createtxg) :
	    has_between(s->src, s->base_s->createtxg, UINT64_MAX));
	log_debug("zfs: %s '%s' -> '%s'%s%s", base != NULL ?
	    "incremental" : "full", snap, s->dst, base != NULL ?
	    " from " : "", base != NULL ? s->base_s->name : "");
	/* -F: roll back writes (incremental), or replace an existing
	 * dataset that has nothing in common (full, after force_prepare);
	 * never for a dataset that is new */
	pthread_mutex_lock(&c->mu);
	sflags = c->sflags;
	pthread_mutex_unlock(&c->mu);
	zp.snap = snap;
	zp.base = base;
	zp.sflags = between ? sflags : sflags & ~ZFS_SEND_INTERMEDIATE;
	zp.dst = s->dst;
	zp.rflags = s->dds != NULL ? c->rflags : 0;
	zp.spawned = i == 0 ? c->root_spawned : NULL;
	zp.spawned_arg = c->root_arg;
	zp.pace = c->pace;
	rc = transfer(&zp, &bytes, err);
	if (rc == -1 && err->code == AS_E_UNSUPPORTED &&
	    (zp.sflags & ZFS_SEND_BLOCKS)) {
		/*
		 * The destination's pool lacks a feature such a stream
		 * needs (lz4, large blocks...): refused before anything was
		 * received.  Plain streams from here on, for this run.
		 */
		log_warn("zfs: '%s' refused a stream of blocks as they are "
		    "on disk (%.160s); sending plain streams", s->dst, err->msg);
		pthread_mutex_lock(&c->mu);
		c->sflags &= ~ZFS_SEND_BLOCKS;
		pthread_mutex_unlock(&c->mu);
		zp.sflags &= ~ZFS_SEND_BLOCKS;
		zp.spawned = NULL;	/* the side jobs started already */
		bytes = 0;
		as_err_clear(err);
		rc = transfer(&zp, &bytes, err);
	}
	if (rc == -1 && err->code == AS_E_CONFLICT && s->dds != NULL) {
		diverge_report(s, report, sizeof(report));
		as_err_prefix(err, "'%s' (%s; use -F to roll it back)",
		    s->dst, report);
	}
	pthread_mutex_lock(&c->mu);
	c->res->send.stream_bytes += bytes;
	if (rc == 0) {
		c->res->send.data_bytes += bytes;
		step_sent(s, i == 0, base != NULL, ns, c->res);
	}
	pthread_mutex_unlock(&c->mu);
	free(snap);
	free(base);
	return rc;
}

/*
 * May child step i go (c->mu held)?  Yes when its destination exists,
 * or when the step of its parent is done or not part of the run (then
 * the parent exists, or the receive says that it does not).
 */
static int
child_ready(const struct send_ctx *c, size_t i)
{
	const struct zstep *s = &c->steps[i];
	size_t j, plen = (size_t)(strrchr(s->dst, '/') - s->dst);

	if (s->dds != NULL)
		return 1;
	for (j = i; j-- > 0;)
		if (strlen(c->steps[j].dst) == plen &&
		    strncmp(c->steps[j].dst, s->dst, plen) == 0)
			return c->state[j] == 2;
	return 1;
}

/*
 * One sender of children: takes the first step that may go, until none
 * is left or one failed.  It waits only while every step left waits for
 * a parent that another sender is sending, so it never waits forever.
 */
static int
children_run(void *arg, struct as_err *err)
{
	struct send_ctx *c = arg;
	struct as_err e;
	size_t i;
	int left, rc;

	(void)err;		/* the first failure goes to c->err */
	pthread_mutex_lock(&c->mu);
	while (!c->failed) {
		left = 0;
		for (i = 1; i < c->n; i++) {
			if (c->state[i] != 0)
				continue;
			left = 1;
			if (child_ready(c, i))
				break;
		}
		if (!left)
			break;
		if (i == c->n) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		c->state[i] = 1;
		pthread_mutex_unlock(&c->mu);
		as_err_clear(&e);
		rc = send_step(c, i, &e);
		pthread_mutex_lock(&c->mu);
		c->state[i] = 2;
		if (rc == -1 && !c->failed) {
			c->failed = 1;
			c->err = e;
		}
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* The children's streams (steps 1..n-1); the first failure wins. */
static int
send_children(struct send_ctx *c, struct as_err *err)
{
	struct bg_job jobs[ZFS_SEND_JOBS];
	size_t k, nj;

	if (c->n < 2)
		return 0;
	nj = c->n - 1 < ZFS_SEND_JOBS ? c->n - 1 : ZFS_SEND_JOBS;
	for (k = 0; k < nj; k++)
		bg_start(&jobs[k], children_run, c);
	for (k = 0; k < nj; k++)
		(void)bg_join(&jobs[k], NULL);
	if (c->failed) {
		*err = c->err;
		return -1;
	}
	return 0;
}

/*
 * canmount=noauto, readonly=on on the datasets this run created (a zfs
 * with receive -o set them as it received): known to need both, so set
 * beside the listing that checks them (zfs_receive_policy).
 */
struct policy_job {
	struct zstep	*steps;
	size_t		 n;
};

static int
policy_new(void *arg, struct as_err *err)
{
	struct policy_job *p = arg;
	size_t i;

	for (i = 0; i < p->n; i++)
		if (p->steps[i].sent && p->steps[i].dds == NULL &&
		    !p->steps[i].src->volume &&
		    zfs_receive_policy(p->steps[i].dst, 1, err) == -1)
			return -1;
	return 0;
}

struct prune_job {
	const struct zfs_tree *t;
	const char	*root;
	const char	*keep;
	char		**held;
	size_t		 nheld;
	int		 recursive;
	unsigned	 nkeep;
	unsigned	 pruned;
};

static int
prune_run(void *arg, struct as_err *err)
{
	struct prune_job *p = arg;

	return prune_tree(p->t, p->root, p->keep, p->held, p->nheld,
	    p->recursive, p->nkeep, &p->pruned, err);
}

/*
 * The jobs beside the root's stream: the bases' hold and the listing of
 * the new snapshot, started once its zfs send and receive are (or at
 * once when there is no root stream).
 */
struct beside {
	struct bg_job		*holdj;
	struct hold_job		*hj;
	int			 hold;		/* the zfs has holds */
	struct bg_job		*listj;
	struct list_one		*lj;
	int			 started;
};

static void
beside_start(void *arg)
{
	struct beside *b = arg;

	if (b->started)
		return;
	b->started = 1;
	if (b->hold)
		bg_start(b->holdj, hold_bases, b->hj);
	bg_start(b->listj, list_one_run, b->lj);
}

static int
zfs_to_zfs(const char *src, const char *dst, const char *state,
    const struct sync_opts *o, struct sync_result *res, struct as_err *err)
{
	const struct zfs_caps *caps;
	struct zfs_tree st, dt, nt;
	struct zstate zs;
	struct zstep *steps = NULL;
	const struct zfs_ds *nd, *sd;
	const struct zfs_snap *ns;
	char name[SNAP_NAME_MAX + 1], *dkey;
	char **held = NULL;
	int recursive = !(o->flags & SYNC_NO_RECURSE), force =
	    o->flags & SYNC_FORCE, rc = -1, sflags = 0;
	int snapped = 0, recorded = 0;
	const char *rhold = NULL;	/* base held with hold -r on src */
	size_t i, n = 0, nheld = 0, srclen = strlen(src), dstlen;
	struct send_ctx sc = { .mu = PTHREAD_MUTEX_INITIALIZER,
	    .cv = PTHREAD_COND_INITIALIZER };
	struct pace pace;
	struct bg_job snapj, holdj, listj, policyj, releasej, prunej[2];
	struct snap_job sj;
	struct hold_job hj;
	struct list_one lj;
	struct beside bs;
	struct policy_job pj;
	struct release_job rj;
	struct prune_job pr[2];
	int list_rc, policy_rc, release_rc, prune_rc;
	/* step 1's snapshot, made and not (yet) the step's */
	char early[SNAP_NAME_MAX + 1];
	int early_made = 0;
	struct as_err snap_err;
	time_t now;
	/* a zfs without receive -o: the new datasets' policy by `zfs set` */
	int policy_beside;

	memset(&snapj, 0, sizeof(snapj));
	memset(&holdj, 0, sizeof(holdj));
	memset(&listj, 0, sizeof(listj));
	memset(&policyj, 0, sizeof(policyj));
	memset(&releasej, 0, sizeof(releasej));
	memset(&st, 0, sizeof(st));
	memset(&dt, 0, sizeof(dt));
	memset(&nt, 0, sizeof(nt));
	memset(&zs, 0, sizeof(zs));
	zs.lock_fd = -1;
	dstlen = strlen(dst);
	if (strcmp(src, dst) == 0 || (dstlen > srclen &&
	    strncmp(dst, src, srclen) == 0 && dst[srclen] == '/') ||
	    (srclen > dstlen && strncmp(src, dst, dstlen) == 0 &&
	    src[dstlen] == '/'))
		return as_err_set(err, AS_E_USAGE, 0, "'zfs:%s' and 'zfs:%s' "
		    "overlap: one would replicate into itself", src, dst);
	if ((caps = zfs_caps(err)) == NULL)
		return -1;
	policy_beside = !(caps->recv_o && caps->recv_x);
	if (caps->send_I)
		sflags |= ZFS_SEND_INTERMEDIATE;
	if (caps->send_p && caps->recv_o && caps->recv_x)
		sflags |= ZFS_SEND_PROPS;
	/* between two pools of this zfs: blocks as they are on disk */
	sflags |= zfs_send_block_flags(caps);
	if (zstate_open(&zs, state, src, err) == -1)
		goto out;
	if (!(sflags & ZFS_SEND_PROPS))
		note_once(state, "props", "properties are not replicated: "
		    "this zfs cannot exclude mountpoint while it receives "
		    "(receive -x/-o); replicas inherit from their parent");

	/*
	 * 1. both trees, and the new snapshot beside them.  The name is
	 * this second's, as new_name gives it when no snapshot of the
	 * second exists yet (the usual case); step 3 keeps the snapshot
	 * only if the listing confirms that, and destroys it when the
	 * plan refuses: the destination is never touched before the plan.
	 */
	now = time(NULL);
	dkey = xasprintf("zfs:%s", dst);
	early_name(&zs, dkey, now, early, sizeof(early));
	free(dkey);
	sj.ds = src;
	sj.name = early;
	sj.recursive = recursive;
	bg_start(&snapj, snap_run, &sj);
	list_rc = list_both(src, dst, recursive, &st, &dt, err);
	as_err_clear(&snap_err);
	early_made = bg_join(&snapj, &snap_err) == 0;
	if (list_rc == -1)
		goto out;
	if (early_made)
		strip_snap(&st, early);
	if (st.n == 0 || strcmp(st.v[0].name, src) != 0) {
		as_err_set(err, AS_E_NOTFOUND, 0, "source dataset '%s' does "
		    "not exist", src);
		goto out;
	}
	if (dst_parent_check(dst, &dt, err) == -1)
		goto out;

	/* 2. plan, and refuse divergence before anything is created */
	steps = xcalloc(st.n, sizeof(*steps));
	for (i = 0; i < st.n; i++) {
		if (st.v[i].resume_token != NULL)
			continue;	/* a partial receive is not a source */
		steps[n].src = &st.v[i];
		steps[n].dst = map_name(src, dst, st.v[i].name);
		plan_one(&steps[n], &dt);
		n++;
	}
	if (plan_refuse(steps, n, force, err) == -1)
		goto out;

	/*
	 * 3. the new snapshot: step 1's, when its name is the one the
	 * listing gives; else (a snapshot of this second exists, or the
	 * early one failed as existing) one by that name now.  The bases
	 * are held beside the root's send (see struct hold_job).
	 */
	new_name(&st, now, name, sizeof(name));
	if (early_made && strcmp(name, early) == 0) {
		early_made = 0;
	} else {
		if (early_made) {
			if (zfs_destroy_snapshot(src, early, recursive, 0,
			    err) == -1)
				goto out;
			early_made = 0;
		} else if (snap_err.code != AS_E_CONFLICT) {
			*err = snap_err;
			goto out;
		}
		if (zfs_snapshot(src, name, recursive, err) == -1)
			goto out;
	}
	snapped = 1;
	snprintf(res->name, sizeof(res->name), "%s", name);
	hj.src = src;
	hj.st = &st;
	hj.steps = steps;
	hj.n = n;
	hj.recursive = recursive;
	hj.rhold = NULL;
	lj.root = src;
	lj.recursive = recursive;
	lj.t = &nt;
	bs = (struct beside){ &holdj, &hj, caps->hold, &listj, &lj, 0 };
	sc.root_spawned = beside_start;
	sc.root_arg = &bs;

	/*
	 * 4. one stream per dataset, parents first.  The root's goes while
	 * the new snapshot is listed (it exists: we just made it; a
	 * snapshot a third party makes meanwhile is not in st, so send -I
	 * leaves it out); the children's wait for the listing, which says
	 * which of them still exist, and go several at once (send_ctx).
	 */
	sc.steps = steps;
	sc.n = n;
	sc.nt = NULL;
	sc.name = name;
	sc.sflags = sflags;
	sc.rflags = force ? ZFS_RECV_FORCE : 0;
	sc.res = res;
	sc.state = xcalloc(n + 1, 1);
	sc.pace = &pace;
	sync_pace_init(&pace, o, 0);
	if (n > 0 && send_step(&sc, 0, err) == -1)
		goto out;
	beside_start(&bs);	/* no root stream: not started yet */
	sc.state[0] = 2;	/* its children may go */
	if (join_hold(&holdj, &hj, &rhold, err) == -1 ||
	    bg_join(&listj, err) == -1)
		goto out;
	sc.nt = &nt;
	if (send_children(&sc, err) == -1)
		goto out;
	holds_from(&nt, &st);
	if (n > 0 && steps[0].sent) {
		sd = zfs_tree_find(&nt, steps[0].src->name);
		ns = sd != NULL ? zfs_ds_snap_name(sd, name) : NULL;
		if (ns == NULL) {
			as_err_set(err, AS_E_INTERNAL, 0, "'%s@%s' was sent "
			    "but is not listed any more", src, name);
			goto out;
		}
		res->guid = ns->guid;
	}

	/*
	 * The destination must hold exactly what was sent, under the
	 * property policy: one listing for all (and for the pruning), while
	 * the new datasets get their policy and the bases are released.
	 */
	zfs_tree_release(&dt);
	lj.root = dst;
	lj.t = &dt;
	bg_start(&listj, list_one_run, &lj);
	pj.steps = steps;
	pj.n = n;
	if (policy_beside)
		bg_start(&policyj, policy_new, &pj);
	rj.src = src;
	rj.steps = steps;
	rj.n = n;
	rj.rhold = &rhold;
	bg_start(&releasej, release_bases, &rj);
	list_rc = bg_join(&listj, err);
	policy_rc = bg_join(&policyj, list_rc == 0 ? err : NULL);
	release_rc = bg_join(&releasej, list_rc == 0 && policy_rc == 0 ?
	    err : NULL);
	if (list_rc == -1 || policy_rc == -1)
		goto out;
	for (i = 0; i < n; i++) {
		struct zstep *s = &steps[i];
		const struct zfs_snap *got;

		if (!s->sent)
			continue;
		nd = zfs_tree_find(&dt, s->dst);
		sd = zfs_tree_find(&nt, s->src->name);
		ns = sd != NULL ? zfs_ds_snap_name(sd, name) : NULL;
		got = zfs_ds_snap_name(nd, name);
		if (ns == NULL || got == NULL || got->guid != ns->guid) {
			as_err_set(err, AS_E_INTERNAL, 0, "'%s': zfs receive "
			    "succeeded but '%s@%s' %s", s->dst, s->dst, name,
			    got == NULL ? "is missing" : "has another GUID");
			goto out;
		}
		if (nd->volume || (nd->canmount != NULL &&
		    strcmp(nd->canmount, "noauto") == 0 && nd->readonly == 1))
			continue;
		if (policy_beside && s->dds == NULL)
			continue;	/* set beside the listing */
		if (zfs_receive_policy(s->dst, nd->canmount != NULL &&
		    strcmp(nd->canmount, "noauto") != 0 && nd->readonly == 0,
		    err) == -1)
			goto out;
	}
	if (release_rc == -1)
		goto out;

	/* 5. record, then prune */
	dkey = xasprintf("zfs:%s", dst);
	if (record_run(&zs, dkey, steps, n, name, !recursive, err) == -1) {
		free(dkey);
		goto out;
	}
	recorded = 1;
	if (!(o->flags & SYNC_NO_PRUNE)) {
		if (rec_held_names(&zs, dkey, &held, &nheld, err) == -1) {
			free(dkey);
			goto out;
		}
		pr[0] = (struct prune_job){ &nt, src, name, held, nheld,
		    recursive, o->keep_src, 0 };
		pr[1] = (struct prune_job){ &dt, dst, name, NULL, 0,
		    recursive, o->keep_dst, 0 };
		bg_start(&prunej[0], prune_run, &pr[0]);
		bg_start(&prunej[1], prune_run, &pr[1]);
		prune_rc = bg_join(&prunej[0], err);
		if (bg_join(&prunej[1], prune_rc == 0 ? err : NULL) == -1)
			prune_rc = -1;
		res->pruned += pr[0].pruned + pr[1].pruned;
		if (prune_rc == -1) {
			free(dkey);
			goto out;
		}
	}
	free(dkey);
	rc = 0;
out:
	/* a failure may leave jobs running: every one is joined once */
	(void)bg_join(&snapj, NULL);
	(void)join_hold(&holdj, &hj, &rhold, NULL);
	(void)bg_join(&listj, NULL);
	(void)bg_join(&policyj, NULL);
	(void)bg_join(&releasej, NULL);
	if (rc == -1 && snapped && !recorded) {
		/* what each destination dataset holds now, for the pruning
		 * of the next run to this source's other destinations */
		char *k = xasprintf("zfs:%s", dst);

		(void)record_run(&zs, k, steps, n, name, !recursive, NULL);
		free(k);
	}
	rj = (struct release_job){ src, steps, n, &rhold };
	(void)release_bases(&rj, NULL);
	if (early_made) {
		/* refused, or failed, before the step could use it */
		struct as_err e2;

		if (zfs_destroy_snapshot(src, early, recursive, 0, &e2) == -1)
			log_warn("%s", e2.msg);
	}
	for (i = 0; i < n; i++)
		free(steps[i].dst);
	free(steps);
	if (sc.state != NULL)	/* pace was started with it */
		pace_finish(&pace);
	free(sc.state);
	pthread_cond_destroy(&sc.cv);
	pthread_mutex_destroy(&sc.mu);
	free_names(held, nheld);
	zfs_tree_release(&st);
	zfs_tree_release(&dt);
	zfs_tree_release(&nt);
	zstate_release(&zs);
	return rc;
}

/* ------------------------------------------------------------------ */
/* zfs:A -> a server's zfs:B (push): one HOLD and RECEIVE per dataset */

struct zpush_send {
	const char	*snap;
	const char	*base;
	int		 flags;
};

/* The sender's thread: the native stream into the pump's pipe. */
static int
zpush_send(void *arg, int fd, struct as_err *err)
{
	const struct zpush_send *p = arg;

	return zfs_send(p->snap, p->base, p->flags, fd, err);
}

/* The request path of destination dataset ds: "zfs:ds". */
static void
zpush_path(struct remote *r, const char *ds)
{
	char *p = xasprintf("zfs:%s", ds);

	remote_set_path(r, p);
	free(p);
}

/*
 * The same steps as zfs_to_zfs, with the server answering for B: per
 * dataset, HOLD says the GUID of its newest snapshot (or nothing), which
 * must be a snapshot of the source (else divergence, refused before
 * anything is created) and is the base; RECEIVE takes the stream and
 * answers with the GUID received, checked against the one sent.  The
 * server prunes B's older autosync_* snapshots after each receive; -F
 * is refused (a rollback is the server's owner's decision).
 */
static int
zfs_push(const char *src, const struct endpoint *de, const char *state,
    const struct sync_opts *o, struct sync_result *res, struct as_err *err)
{
	const struct zfs_caps *caps;
	struct zfs_tree st, nt;
	struct zstate zs;
	struct zstep *steps = NULL;
	const struct zfs_ds *sd;
	const struct zfs_snap *ns;
	struct remote_opts ro;
	struct remote *r = NULL;
	struct remote_xfer x;
	struct zpush_send ps;
	struct xfer_src xs;
	struct catalog tc;
	char name[SNAP_NAME_MAX + 1], *snap = NULL, *base = NULL, **held = NULL;
	const char *dst = de->path + 5;
	int recursive = !(o->flags & SYNC_NO_RECURSE), rc = -1, sflags = 0;
	int snapped = 0, recorded = 0;
	size_t i, n = 0, nheld = 0;
	uint64_t guid;
	struct list_one lj;
	struct bg_job listj;

	memset(&listj, 0, sizeof(listj));
	memset(&st, 0, sizeof(st));
	memset(&nt, 0, sizeof(nt));
	memset(&zs, 0, sizeof(zs));
	zs.lock_fd = -1;
	res->remote = 1;
	if (o->flags & SYNC_FORCE)
		return as_err_set(err, AS_E_USAGE, 0, "'%s': -F is not "
		    "supported towards a server's ZFS dataset: roll it back "
		    "there", de->spec);
	if (zfs_name_check(dst, 0, err) == -1)
		return -1;
	if ((caps = zfs_caps(err)) == NULL)
		return -1;
	/* never -p: the server's receive may not exclude mountpoint */
	if (caps->send_I)
		sflags |= ZFS_SEND_INTERMEDIATE;
	if (zstate_open(&zs, state, src, err) == -1)
		goto out;

	/*
	 * 1. the source tree, listed while the server is reached (an ssh
	 * login, a handshake: independent, and longer); the listing's error
	 * wins, as when it came first.  Then what the server holds of each
	 * dataset.
	 */
	lj.root = src;
	lj.recursive = recursive;
	lj.t = &st;
	bg_start(&listj, list_one_run, &lj);
	memset(&ro, 0, sizeof(ro));
	if (o->remote != NULL)
		ro = *o->remote;
	r = remote_open(de, &ro, err);
	if (bg_join(&listj, err) == -1)
		goto out;
	if (st.n == 0 || strcmp(st.v[0].name, src) != 0) {
		as_err_set(err, AS_E_NOTFOUND, 0, "source dataset '%s' does "
		    "not exist", src);
		goto out;
	}
	if (r == NULL)
		goto out;
	steps = xcalloc(st.n, sizeof(*steps));
	for (i = 0; i < st.n; i++) {
		struct zstep *s;
		int h;

		if (st.v[i].resume_token != NULL)
			continue;	/* a partial receive is not a source */
		s = &steps[n++];
		s->src = &st.v[i];
		s->dst = map_name(src, dst, st.v[i].name);
		zpush_path(r, s->dst);
		/* 2. plan; refuse divergence before anything is created */
		if ((h = remote_hold(r, &guid, NULL, err)) == -1) {
			as_err_prefix(err, "'%s'", de->spec);
			goto out;
		}
		if (h == 0)
			continue;	/* a full stream */
		s->base_s = zfs_ds_snap_guid(s->src, guid);
		if (s->base_s == NULL) {
			as_err_set(err, AS_E_CONFLICT, 0, "'zfs:%s' on '%s' "
			    "has diverged from 'zfs:%s': its newest snapshot "
			    "(guid %016" PRIx64 ") is not one of the source's "
			    "(newest: '%s'); roll it back on the server to a "
			    "snapshot the source has", s->dst,
			    remote_peer(r), s->src->name, guid,
			    s->src->nsnaps > 0 ? s->src->snaps[
			    s->src->nsnaps - 1].name : "none");
			goto out;
		}
	}
	/* the bases stay while the step runs */
	if (caps->hold)
		for (i = 0; i < n; i++) {
			if (steps[i].base_s == NULL)
				continue;
			if (zfs_hold(steps[i].src->name,
			    steps[i].base_s->name, 0, err) == -1)
				goto out;
			steps[i].held = 1;
		}

	/* 3. the new snapshot */
	new_name(&st, time(NULL), name, sizeof(name));
	if (zfs_snapshot(src, name, recursive, err) == -1)
		goto out;
	snapped = 1;
	snprintf(res->name, sizeof(res->name), "%s", name);
	if (zfs_list(src, recursive, &nt, err) == -1)
		goto out;

	/* 4. one stream per dataset, parents first */
	for (i = 0; i < n; i++) {
		struct zstep *s = &steps[i];

		sd = zfs_tree_find(&nt, s->src->name);
		ns = sd != NULL ? zfs_ds_snap_name(sd, name) : NULL;
		if (ns == NULL)
			continue;	/* destroyed meanwhile */
		free(snap);
		free(base);
		snap = xasprintf("%s@%s", s->src->name, name);
		base = s->base_s != NULL ? xasprintf("%s@%s", s->src->name,
		    s->base_s->name) : NULL;
		ps.snap = snap;
		ps.base = base;
		ps.flags = base != NULL && has_between(sd,
		    s->base_s->createtxg, ns->createtxg) ? sflags :
		    sflags & ~ZFS_SEND_INTERMEDIATE;
		sync_native_src(&xs, &tc, zpush_send, &ps, ns->guid, name);
		log_debug("zfs: %s '%s' -> '%s' on '%s'", base != NULL ?
		    "incremental" : "full", snap, s->dst, remote_peer(r));
		zpush_path(r, s->dst);
		rc = remote_push(r, &xs, 0, &x, err);
		catalog_release(&tc);
		res->send.stream_bytes += x.raw_bytes;
		res->wire_bytes += x.wire_bytes;
		if (rc != 0) {
			rc = -1;
			goto out;
		}
		rc = -1;
		res->send.data_bytes += x.raw_bytes;
		step_sent(s, i == 0, base != NULL, ns, res);
	}

	/* 5. release the bases, record, then prune the source */
	for (i = 0; i < n; i++) {
		struct zfs_ds *d;
		const struct zfs_snap *b;

		if (!steps[i].held)
			continue;
		if (zfs_release(steps[i].src->name, steps[i].base_s->name, 0,
		    err) == -1)
			goto out;
		steps[i].held = 0;
		d = zfs_tree_find(&nt, steps[i].src->name);
		b = d != NULL ? zfs_ds_snap_name(d, steps[i].base_s->name) :
		    NULL;
		if (b != NULL && b->userrefs > 0)
			((struct zfs_snap *)(uintptr_t)b)->userrefs--;
	}
	if (record_run(&zs, de->spec, steps, n, name, !recursive, err) == -1)
		goto out;
	recorded = 1;
	if (!(o->flags & SYNC_NO_PRUNE)) {
		if (rec_held_names(&zs, de->spec, &held, &nheld, err) == -1)
			goto out;
		if (prune_tree(&nt, src, name, held, nheld, recursive,
		    o->keep_src, &res->pruned, err) == -1)
			goto out;
	}
	rc = 0;
out:
	if (rc == -1 && snapped && !recorded)
		(void)record_run(&zs, de->spec, steps, n, name, !recursive, NULL);
	for (i = 0; i < n; i++)
		if (steps[i].held)
			(void)zfs_release(steps[i].src->name,
			    steps[i].base_s->name, 0, NULL);
	if (steps != NULL)
		for (i = 0; i < n; i++)
			free(steps[i].dst);
	free(steps);
	free(snap);
	free(base);
	free_names(held, nheld);
	(void)bg_join(&listj, NULL);
	remote_close(r);
	zfs_tree_release(&st);
	zfs_tree_release(&nt);
	zstate_release(&zs);
	return rc;
}

/* ------------------------------------------------------------------ */
/* A server's zfs:A -> zfs:B (pull): one SEND per dataset */

/* Is ds the dataset root or below it? */
static int
ds_beneath(const char *root, const char *ds)
{
	size_t l = strlen(root);

	return strncmp(ds, root, l) == 0 && (ds[l] == '\0' || ds[l] == '/');
}

/* Is the parent of ds (not a pool) in t? */
static int
parent_listed(const struct zfs_tree *t, const char *ds)
{
	char *p = xstrndup(ds, (size_t)(strrchr(ds, '/') - ds));
	int r = zfs_tree_find(t, p) != NULL;

	free(p);
	return r;
}

/* The server's listing of root as a tree (sync.h). */
int
sync_zfs_listing(const char *root, const char *peer,
    const struct proto_snap *v, size_t n, struct zfs_tree *t,
    struct as_err *err)
{
	struct zfs_ds *d;
	struct zfs_snap *sn;
	const char *at;
	char *ds;
	size_t i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < n; i++) {
		at = strchr(v[i].name, '@');
		ds = at != NULL ? xstrndup(v[i].name, (size_t)(at -
		    v[i].name)) : xstrdup(v[i].name);
		if (zfs_name_check(ds, 0, NULL) == -1 ||
		    !ds_beneath(root, ds) || (at != NULL &&
		    zfs_name_check(v[i].name, 1, NULL) == -1))
			goto bad;
		d = zfs_tree_find(t, ds);
		if (at == NULL) {
			if (d != NULL || (strcmp(ds, root) != 0 &&
			    !parent_listed(t, ds)))
				goto bad;
			t->v = xreallocarray(t->v, t->n + 1, sizeof(*t->v));
			d = &t->v[t->n++];
			memset(d, 0, sizeof(*d));
			d->name = ds;
			d->guid = v[i].guid;
			d->written = -1;
			d->mounted = -1;
			d->readonly = -1;
			continue;
		}
		if (d == NULL || strlen(at + 1) > SNAP_NAME_MAX)
			goto bad;
		free(ds);
		d->snaps = xreallocarray(d->snaps, d->nsnaps + 1,
		    sizeof(*d->snaps));
		sn = &d->snaps[d->nsnaps++];
		memset(sn, 0, sizeof(*sn));
		sn->name = xstrdup(at + 1);
		sn->guid = v[i].guid;
		sn->creation = v[i].time_ns / 1000000000;
		sn->userrefs = -1;
	}
	return 0;
bad:
	{
		char esc[PROTO_NAME_MAX * 4 + 8];

		as_err_set(err, AS_E_MALFORMED, 0, "'%s' listed '%s' for "
		    "'zfs:%s'", peer, log_escape(v[i].name, esc, sizeof(esc)),
		    root);
	}
	free(ds);
	zfs_tree_release(t);
	return -1;
}

int
sync_zfs_receive(const char *ds, int zflags, int in_fd,
    struct dir_recv_result *res,
    void (*after)(const struct zfs_ds *d, const char *newest),
    struct as_err *err)
{
	struct zfs_tree t;
	struct zfs_proc p;
	const struct zfs_ds *d;
	const struct zfs_snap *sn;
	int rc;

	/* the caller closes in_fd */
	if (zfs_receive_start(&p, ds, zflags, in_fd, err) == -1 ||
	    zfs_proc_finish(&p, err) == -1)
		return -1;
	if (zfs_list(ds, 0, &t, err) == -1)
		return -1;
	d = zfs_tree_find(&t, ds);
	if (d == NULL || d->nsnaps == 0) {
		zfs_tree_release(&t);
		return as_err_set(err, AS_E_INTERNAL, 0, "'%s': zfs receive "
		    "succeeded but the dataset holds no snapshot", ds);
	}
	/*
	 * The property policy from the listing, as a push does: no `zfs
	 * get` of each property (two zfs commands, 20-100 ms each on
	 * zfs-fuse, on every dataset of every run).
	 */
	if (!d->volume && !(d->canmount != NULL && strcmp(d->canmount,
	    "noauto") == 0 && d->readonly == 1)) {
		rc = zfs_receive_policy(ds, d->canmount != NULL &&
		    strcmp(d->canmount, "noauto") != 0 && d->readonly == 0,
		    err);
		if (rc == -1) {
			zfs_tree_release(&t);
			return -1;
		}
	}
	sn = &d->snaps[d->nsnaps - 1];
	res->target_guid = sn->guid;
	res->base_guid = d->nsnaps > 1 ? d->snaps[d->nsnaps - 2].guid : 0;
	snprintf(res->name, sizeof(res->name), "%s", sn->name);
	res->st.entries_sent = 1;
	if (after != NULL)
		after(d, sn->name);
	zfs_tree_release(&t);
	return 0;
}

/*
 * The receiving child of a pulled dataset: `zfs receive -u` into ds
 * under the property policy; the result names ds's newest snapshot,
 * which remote_pull_with checks against the one announced.
 */
static int
zpull_recv(void *arg, const char *ds, int in_fd, int rflags,
    struct dir_recv_result *res, struct as_err *err)
{
	(void)arg;
	return sync_zfs_receive(ds, (rflags & DIR_RECV_FORCE) ?
	    ZFS_RECV_FORCE : 0, in_fd, res, NULL, err);
}

/* The destination's listing (a list_one) and its parent's check. */
static int
dst_list_run(void *arg, struct as_err *err)
{
	struct list_one *l = arg;

	if (list_one_run(l, err) == -1)
		return -1;
	return dst_parent_check(l->root, l->t, err);
}

/*
 * The same steps as zfs_to_zfs with the server answering for A: the
 * listing of A's tree (SNAPSHOTS, REQ_F_TREE unless -N) is planned
 * against B exactly as a local source would be (GUIDs, divergence
 * report, -F over autosync's snapshots only), before anything is
 * created on either side; then SEND of A (REQ_F_TREE: the server takes
 * one recursive snapshot) and of each child's snapshot of that name
 * ("zfs:A/c@NAME"), each from the base this side chose, received with
 * `zfs receive -u`.  The server records what B holds and prunes A; this
 * side prunes B.
 */
static int
zfs_pull(const struct endpoint *se, const struct endpoint *de,
    const char *state, const struct sync_opts *o, struct sync_result *res,
    struct as_err *err)
{
	const char *src = se->path + 5, *dst = de->path;
	struct zfs_tree st, dt, nt;
	struct zstate zs;
	struct zstep *steps = NULL;
	struct remote_opts ro;
	struct remote *r = NULL;
	struct remote_xfer x;
	struct proto_snap *v = NULL;
	char name[SNAP_NAME_MAX + 1], report[1500], *id = NULL, *path;
	int recursive = !(o->flags & SYNC_NO_RECURSE), force =
	    o->flags & SYNC_FORCE, rc = -1, rf, agree_rc = -1;
	size_t i, n = 0, nv = 0;
	uint64_t held = 0;
	struct list_one dj;
	struct bg_job dstj;

	memset(&dstj, 0, sizeof(dstj));
	memset(&st, 0, sizeof(st));
	memset(&dt, 0, sizeof(dt));
	memset(&nt, 0, sizeof(nt));
	memset(&zs, 0, sizeof(zs));
	zs.lock_fd = -1;
	name[0] = '\0';
	res->remote = 2;
	if (zfs_name_check(src, 0, err) == -1)
		return -1;
	if (zfs_caps(err) == NULL)
		return -1;
	/* one pull into B at a time */
	if (zstate_open(&zs, state, dst, err) == -1)
		goto out;

	/*
	 * 1. A's tree, as the server lists it, while B is listed here: the
	 * connection (an ssh login, a handshake) and the server's listing
	 * take longer than B's, and nothing of one is needed by the other.
	 * B's error, when both fail, is the one reported, as when B was
	 * listed first.
	 */
	dj.root = dst;
	dj.recursive = recursive;
	dj.t = &dt;
	bg_start(&dstj, dst_list_run, &dj);
	memset(&ro, 0, sizeof(ro));
	if (o->remote != NULL)
		ro = *o->remote;
	if ((r = remote_open(se, &ro, err)) != NULL) {
		path = xasprintf("zfs:%s", src);
		remote_set_path(r, path);
		free(path);
		remote_set_flags(r, recursive ? REQ_F_TREE : 0);
		agree_rc = sync_pull_agree(r, se, de, o->flags, "zfs:", dst,
		    &held, &v, &nv, &id, err);
	}
	if (bg_join(&dstj, err) == -1 || r == NULL || agree_rc == -1)
		goto out;
	if (sync_zfs_listing(src, remote_peer(r), v, nv, &st, err) == -1)
		goto out;
	if (st.n == 0 || strcmp(st.v[0].name, src) != 0) {
		as_err_set(err, AS_E_NOTFOUND, 0, "'%s': the server did not "
		    "list 'zfs:%s'", se->spec, src);
		goto out;
	}

	/* 2. plan; refuse divergence before anything is created */
	steps = xcalloc(st.n, sizeof(*steps));
	for (i = 0; i < st.n; i++) {
		steps[n].src = &st.v[i];
		steps[n].dst = map_name(src, dst, st.v[i].name);
		plan_one(&steps[n], &dt);
		n++;
	}
	if (plan_refuse(steps, n, force, err) == -1)
		goto out;

	/* 3., 4. the server snapshots A (-r) with the first SEND */
	for (i = 0; i < n; i++) {
		struct zstep *s = &steps[i];

		if (i == 0)
			path = xasprintf("zfs:%s", src);
		else
			path = xasprintf("zfs:%s@%s", s->src->name, name);
		remote_set_path(r, path);
		free(path);
		remote_set_flags(r, i == 0 && recursive ? REQ_F_TREE : 0);
		held = s->base_s != NULL && !s->nobase ? s->base_s->guid : 0;
		/* -F: roll back writes, or replace an emptied dataset */
		rf = force && s->dds != NULL ? DIR_RECV_FORCE : 0;
		log_debug("zfs: pull '%s' -> '%s' from %016" PRIx64,
		    s->src->name, s->dst, held);
		rc = remote_pull_with(r, held, id, s->dst, rf, zpull_recv,
		    NULL, &x, err);
		res->send.stream_bytes += x.raw_bytes;
		res->wire_bytes += x.wire_bytes;
		if (rc != 0) {
			rc = -1;
			if (err->code == AS_E_CONFLICT && s->dds != NULL) {
				diverge_report(s, report, sizeof(report));
				as_err_prefix(err, "'%s' (%s; use -F to roll "
				    "it back)", s->dst, report);
			}
			goto out;
		}
		rc = -1;
		if (i == 0) {
			snprintf(name, sizeof(name), "%s", x.name);
			sync_pull_result(&x, NULL, 0, res);
			if (!x.full && s->base_s != NULL)
				snprintf(res->base_name,
				    sizeof(res->base_name), "%s",
				    s->base_s->name);
		} else if (strcmp(x.name, name) != 0) {
			as_err_set(err, AS_E_MALFORMED, 0, "'%s' sent '%s' "
			    "for '%s@%s'", remote_peer(r), x.name,
			    s->src->name, name);
			goto out;
		}
		res->send.data_bytes += x.raw_bytes;
		res->send.entries_sent++;
		res->zfs_datasets++;
		if (x.full)
			res->zfs_full++;
		s->sent = 1;
	}

	/* 5. prune B: autosync's older snapshots where the new one is */
	if (!(o->flags & SYNC_NO_PRUNE)) {
		if (zfs_list(dst, recursive, &nt, err) == -1 ||
		    prune_tree(&nt, dst, name, NULL, 0, recursive,
		    o->keep_dst, &res->pruned, err) == -1)
			goto out;
	}
	rc = 0;
out:
	if (steps != NULL)
		for (i = 0; i < n; i++)
			free(steps[i].dst);
	free(steps);
	free(v);
	free(id);
	(void)bg_join(&dstj, NULL);
	remote_close(r);
	zfs_tree_release(&st);
	zfs_tree_release(&dt);
	zfs_tree_release(&nt);
	zstate_release(&zs);
	return rc;
}

/* ------------------------------------------------------------------ */
/* zfs:A -> a directory: the portable engine reads a frozen clone */

/*
 * Unmount and destroy the clones under croot (children first); the
 * clones of a crashed run are found and removed the same way.
 */
static int
clones_destroy(const char *croot, struct as_err *err)
{
	struct zfs_tree t;
	size_t i;
	int rc = 0;

	if (zfs_list(croot, 1, &t, err) == -1)
		return -1;
	for (i = t.n; i-- > 0; )
		if (zfs_destroy_clone(t.v[i].name, err) == -1) {
			rc = -1;
			break;
		}
	zfs_tree_release(&t);
	return rc;
}

static int
zfs_to_dir(const struct endpoint *se, const struct endpoint *de,
    const char *state, const struct sync_opts *o, struct sync_result *res,
    struct as_err *err)
{
	const char *src = se->path;
	struct zfs_tree st, nt;
	struct zstate zs;
	struct sync_opts o2;
	struct as_err e2;
	char name[SNAP_NAME_MAX + 1], *croot = NULL, *mnt = NULL, *key;
	char *pool, *dkey = NULL, *dabs = NULL, **held = NULL;
	int recursive = !(o->flags & SYNC_NO_RECURSE), rc = -1, cloned = 0;
	size_t i, nheld = 0;

	memset(&st, 0, sizeof(st));
	memset(&nt, 0, sizeof(nt));
	memset(&zs, 0, sizeof(zs));
	zs.lock_fd = -1;
	if (zfs_caps(err) == NULL)
		return -1;
	if (zstate_open(&zs, state, src, err) == -1)
		goto out;
	/* the clone lives in the source's pool, named after the source */
	pool = xstrndup(src, strcspn(src, "/"));
	key = snapstore_key(src);
	croot = xasprintf("%s/autosync-clone-%.*s", pool, 180, key);
	{
		char *p;

		/* a dataset name cannot hold '%' (snapstore's escape) */
		for (p = croot; *p != '\0'; p++)
			if (*p == '%')
				*p = '_';
	}
	free(key);
	free(pool);
	mnt = xasprintf("%s/mnt", zs.dir);
	if (mkdirs(mnt, err) == -1)
		goto out;
	/* a crashed run's clones */
	if (clones_destroy(croot, err) == -1)
		goto out;

	if (zfs_list(src, 1, &st, err) == -1)
		goto out;
	if (st.n == 0) {
		as_err_set(err, AS_E_NOTFOUND, 0, "source dataset '%s' does "
		    "not exist", src);
		goto out;
	}
	/*
	 * The portable engine copies one file system (it stops at mount
	 * points): children would be left out silently, so say it.
	 */
	if (recursive && st.n > 1) {
		as_err_set(err, AS_E_USAGE, 0, "'%s' has child datasets ('%s' "
		    "...) and a directory holds one file system: use -N to "
		    "copy '%s' alone, or sync each child to a directory of "
		    "its own", se->spec, st.v[1].name, src);
		goto out;
	}
	recursive = 0;
	new_name(&st, time(NULL), name, sizeof(name));
	if (zfs_snapshot(src, name, recursive, err) == -1)
		goto out;
	if (zfs_list(src, recursive, &nt, err) == -1)
		goto out;
	/* clone each dataset and mount it where it sits below the root */
	cloned = 1;
	for (i = 0; i < nt.n; i++) {
		const struct zfs_ds *d = &nt.v[i];
		char *snap, *cname, *cmnt;
		struct stat sb;
		int r;

		if (d->volume || zfs_ds_snap_name(d, name) == NULL)
			continue;
		cname = xasprintf("%s%s", croot, d->name + strlen(src));
		cmnt = xasprintf("%s%s", mnt, d->name + strlen(src));
		if (i > 0 && (lstat(cmnt, &sb) == -1 || !S_ISDIR(sb.st_mode))) {
			log_warn("'%s': no directory '%s' in its parent's "
			    "snapshot: not copied", d->name,
			    d->name + strlen(src) + 1);
			free(cname);
			free(cmnt);
			continue;
		}
		snap = xasprintf("%s@%s", d->name, name);
		r = zfs_clone(snap, cname, cmnt, err);
		free(snap);
		free(cname);
		free(cmnt);
		if (r == -1)
			goto out;
	}

	/* the portable engine, from the frozen tree at a stable path */
	o2 = *o;
	o2.flags &= ~SYNC_NO_RECURSE;
	if (sync_run(mnt, de->spec, &o2, res, err) == -1) {
		as_err_prefix(err, "'%s@%s' (cloned at '%s')", src, name, mnt);
		goto out;
	}
	if ((dabs = snapstore_abspath(de->path, err)) == NULL)
		goto out;
	dkey = xasprintf("dir:%s", dabs);
	{
		char *one = name;

		if (rec_put(&zs, dkey, &one, 1, err) == -1)
			goto out;
	}
	if (!(o->flags & SYNC_NO_PRUNE)) {
		unsigned pruned = 0;

		if (rec_held_names(&zs, dkey, &held, &nheld, err) == -1)
			goto out;
		if (prune_tree(&nt, src, name, held, nheld, 0, o->keep_src,
		    &pruned, err) == -1)
			goto out;
		res->pruned += pruned;
	}
	rc = 0;
out:
	if (cloned && croot != NULL) {
		as_err_clear(&e2);
		if (clones_destroy(croot, &e2) == -1) {
			if (rc == 0) {
				*err = e2;
				rc = -1;
			} else
				log_warn("%s", e2.msg);
		}
	}
	free_names(held, nheld);
	free(croot);
	free(mnt);
	free(dkey);
	free(dabs);
	zfs_tree_release(&st);
	zfs_tree_release(&nt);
	zstate_release(&zs);
	return rc;
}

int
sync_run_zfs(const struct endpoint *se, const struct endpoint *de,
    const struct sync_opts *o, struct sync_result *res, struct as_err *err)
{
	char *state = NULL;
	int64_t t0 = znow_ns(CLOCK_MONOTONIC);
	int rc = -1;

	if (endpoint_is_remote(se) && (strncmp(se->path, "/zfs:", 5) != 0 ||
	    de->kind != EP_ZFS))
		return as_err_set(err, AS_E_USAGE, 0, "'%s' -> '%s': a "
		    "server's ZFS dataset ('.../zfs:POOL/DS') is pulled into "
		    "a local ZFS dataset (zfs:POOL/DS)", se->spec, de->spec);
	if (endpoint_is_remote(de) && strncmp(de->path, "/zfs:", 5) != 0)
		return as_err_set(err, AS_E_USAGE, 0, "'%s' -> '%s': a ZFS "
		    "dataset goes to a server's ZFS dataset: name it "
		    "'.../zfs:POOL/DS'", se->spec, de->spec);
	if (se->kind != EP_ZFS && !endpoint_is_remote(se))
		return as_err_set(err, AS_E_USAGE, 0, "'%s' -> '%s': a "
		    "directory goes to a ZFS dataset through its mounted "
		    "directory: name that path as the destination", se->spec,
		    de->spec);
	if (se->kind == EP_ZFS && zfs_name_check(se->path, 0, err) == -1)
		return -1;
	if (de->kind == EP_ZFS && zfs_name_check(de->path, 0, err) == -1)
		return -1;
	if ((state = snapstore_state_dir(o->state_dir, err)) == NULL)
		return -1;
	{
		char *zdir = xasprintf("%s/zfs", state);

		if (mkdirs(zdir, err) == -1) {
			free(zdir);
			free(state);
			return -1;
		}
		zfs_caps_cache(zdir);
		free(zdir);
	}
	if (endpoint_is_remote(se))
		rc = zfs_pull(se, de, state, o, res, err);
	else if (endpoint_is_remote(de))
		rc = zfs_push(se->path, de, state, o, res, err);
	else if (de->kind == EP_ZFS)
		rc = zfs_to_zfs(se->path, de->path, state, o, res, err);
	else if (de->kind == EP_LOCAL)
		rc = zfs_to_dir(se, de, state, o, res, err);
	else
		as_err_set(err, AS_E_USAGE, 0, "'%s' -> '%s': a ZFS dataset "
		    "goes to a ZFS dataset or a directory", se->spec, de->spec);
	res->total_ns = znow_ns(CLOCK_MONOTONIC) - t0;
	free(state);
	return rc;
}
