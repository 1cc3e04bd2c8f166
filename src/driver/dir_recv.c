/*
 * dir_recv.c - receive a stream into a directory tree: checks against
 * what the destination holds, staging under DEST/.autosync/stage, and the
 * semantic validation of the whole op list before the commit point
 * (dir_apply.c).  See dir.h and dir_journal.h.
 *
 * Decisions:
 * - The stream is checked as a whole before anything is applied: the
 *   decoder (stream.h) checks framing and fields as records arrive; the
 *   meaning of the ops (does a source exist, is a parent a directory, does
 *   a create collide) is checked here after END, against a model of the
 *   new tree built from the held catalog and the op list.  Any violation
 *   discards the stage: the destination is untouched.
 * - A CREATE whose parent directory was created earlier in the stream is
 *   staged inside that staged directory, so a full receive stages whole
 *   subtrees and only top-level new entries are renamed at apply.
 * - Metadata of staged non-directories is set when their entry closes
 *   (after all their data: chown clears setuid bits and capabilities);
 *   staged directories stay 0700 until the last apply phase, so that a
 *   default ACL cannot leak into children and a read-only mode cannot
 *   stop their creation.
 * - Drift (the destination changed since it was received) is found by a
 *   NOHASH scan with held.cat as its base (unchanged entries: one lstat),
 *   merged with held.cat as it goes: inode, type, size, mtime, ctime,
 *   mode, owner, link count, xattrs, symlink target, device number, and
 *   extra or missing paths.  With -F: extra entries are moved out and
 *   deleted, changed metadata is reset to the held values, and an entry
 *   whose content changed (a regular file with another inode, size or
 *   mtime; another type, symlink target or device) or that vanished must
 *   be deleted by the stream, or the receive is refused: its old content
 *   is nowhere to be had, so only a full resend can restore it.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/clock.h"
#include "base/io.h"
#include "base/xmalloc.h"
#include "driver/dir.h"
#include "driver/dir_policy.h"
#include "driver/dir_journal.h"
#include "driver/dir_writer.h"
#include "driver/scan_util.h"
#include "format/catalog.h"
#include "format/path.h"
#include "format/stream.h"
#include "base/banned.h"

/* Kinds of keys in the path index. */
enum { K_NEW = 1, K_MOD, K_DEL, K_SRC };

struct hslot {
	uint32_t	op1;		/* op index + 1; 0: empty */
	/*
	 * kind << 24 | 24 bits of the key's hash: a probe that passes a
	 * slot of another key rarely reads that key's string (a cache
	 * miss per probe when the table is large).
	 */
	uint32_t	kt;
};

/* Drift items kept for the checks after END (-F). */
enum { D_MISSING = 1, D_CONTENT, D_META };

struct drift {
	uint32_t	held;		/* index in the held catalog */
	uint8_t		kind;
};

struct rs {
	struct rcv	 r;
	struct catalog	 held;
	int		 have_held;	/* held.cat was read */
	int		 use_held;	/* the stream is relative to it */
	struct hslot	*h;
	size_t		 hcap;
	size_t		 hn;
	struct drift	*drift;
	size_t		 ndrift;
	size_t		 capdrift;
	/* the entry being received */
	long		 cur;		/* op index, -1: none */
	int		 curfd;		/* staged regular file */
	uint64_t	 curend;	/* end of its data written so far */
	/*
	 * The writer thread (dir_writer.h) that writes, sets up and closes
	 * staged regular files, started with the first one; NULL: this
	 * thread does it (a dry run, $AUTOSYNC_RECV_THREAD=0, or no thread).
	 */
	struct dir_writer *wr;
	int		 wr_off;	/* do not start one */
	/*
	 * A full stream: each staged regular file as the writer saw it once
	 * closed, by op index, in chunks that never move (the writer fills
	 * them while ops grows); held.cat is made from them (derive_full).
	 */
	struct dw_stat	**hs;
	size_t		 nhs;		/* chunks */
	int		 hs_on;
	/*
	 * The stage directory the last entry was created in (O_PATH), kept
	 * for its siblings: the stream comes in path order, so one lookup
	 * serves a whole directory instead of one openat2 per entry.
	 */
	int		 pfd;
	size_t		 pfd_len;
	char		 pfd_rel[AS_PATH_MAX_BUF + 16];
	/*
	 * The drift scan run before the stream's BEGIN arrived (so that it
	 * overlaps with a sender still scanning its source): its verdict
	 * for on_begin, which keeps it only for an incremental from the held
	 * snapshot.
	 */
	int		 drift_done;
	int		 narrow;	/* drift check: only dirs (journal) */
	const char *const *dirs;
	size_t		 ndirs;
	struct as_err	 drift_err;
	int		 staging;	/* stage/ exists (not a dry run) */
	int		 dry;
	int		 safe;		/* DIR_RECV_SAFE: dir_policy.h */
	uint64_t	 max_size;	/* largest regular file in the stream */
	/*
	 * Resume checkpoints (dir.h).  plog holds the records since the
	 * last checkpoint (DATA payloads elided), written to partial.log
	 * at plog_len when the next one is made.
	 */
	int		 ckpt;		/* make checkpoints */
	int		 replay;	/* decoding partial.log: stage nothing */
	int		 resumed;	/* a resumed leg follows a replay */
	int		 cont;		/* its first ENTRY continues op cur */
	uint64_t	 cont_off;	/* data kept below this */
	int		 cont_log;	/* log the kept ranges after its xattrs */
	int		 cur_retried;	/* op cur had a RETRY */
	struct buf	 plog;
	uint64_t	 plog_chain;
	uint64_t	 plog_len;
	int		 plogfd;
	uint64_t	 bytes_base;	/* stream bytes of earlier legs */
	uint64_t	 ckpt_at;	/* stream bytes at the last checkpoint */
	int64_t		 ckpt_ns;	/* ... and when */
	int		 ckpt_made;	/* this receive wrote a partial */
	int		 plog_cut;	/* partial.log cut to plog_len */
	struct dckpt	*ck;		/* a checkpoint on its way to disk */
	/* while replaying: where the last ENTRY starts (log, chain, ops) */
	uint64_t	 c_log_off;
	uint64_t	 c_chain;
	uint64_t	 c_spool;
	size_t		 c_nsegs;
	int		 fail_in_read;	/* the stream itself stopped */
};

#define R(s)	(&(s)->r)

/* --- path index -------------------------------------------------- */

static const char *
key_str(const struct rs *s, uint32_t i, uint8_t kind, size_t *len)
{
	const struct rop *o = &s->r.ops[i];

	if (kind == K_SRC) {
		*len = o->aux_len;
		return rop_aux(&s->r, o);
	}
	*len = o->path_len;
	return rop_path(&s->r, o);
}

static uint64_t
hkey(uint8_t kind, const char *p, size_t len)
{
	return XXH3_64bits_withSeed(p, len, kind);
}

#define HKT(kind, h)	((uint32_t)(kind) << 24 | (uint32_t)((h) >> 40))

static long
hfind_h(const struct rs *s, uint8_t kind, const char *p, size_t len,
    uint64_t h)
{
	const char *k;
	size_t i, kl;

	if (s->hcap == 0)
		return -1;
	for (i = (size_t)h & (s->hcap - 1); s->h[i].op1 != 0;
	    i = (i + 1) & (s->hcap - 1)) {
		if (s->h[i].kt != HKT(kind, h))
			continue;
		k = key_str(s, s->h[i].op1 - 1, kind, &kl);
		if (kl == len && memcmp(k, p, len) == 0)
			return (long)s->h[i].op1 - 1;
	}
	return -1;
}

static long
hfind(const struct rs *s, uint8_t kind, const char *p, size_t len)
{
	return s->hcap == 0 ? -1 : hfind_h(s, kind, p, len,
	    hkey(kind, p, len));
}

static void
hinsert(struct rs *s, uint8_t kind, uint32_t op, uint64_t h)
{
	size_t i;

	for (i = (size_t)h & (s->hcap - 1); s->h[i].op1 != 0;
	    i = (i + 1) & (s->hcap - 1))
		;
	s->h[i].op1 = op + 1;
	s->h[i].kt = HKT(kind, h);
	s->hn++;
}

/* Index op under its key of kind; -1 when the key is there already. */
static int
hadd(struct rs *s, uint8_t kind, uint32_t op)
{
	struct hslot *old = s->h;
	size_t oldcap = s->hcap, i, kl;
	const char *k;
	uint64_t h;
	uint8_t ok;

	if ((s->hn + 1) * 2 > s->hcap) {
		s->hcap = oldcap ? oldcap * 2 : 1024;
		s->h = xcalloc(s->hcap, sizeof(*s->h));
		s->hn = 0;
		for (i = 0; i < oldcap; i++) {
			if (old[i].op1 == 0)
				continue;
			ok = (uint8_t)(old[i].kt >> 24);
			k = key_str(s, old[i].op1 - 1, ok, &kl);
			hinsert(s, ok, old[i].op1 - 1, hkey(ok, k, kl));
		}
		free(old);
	}
	k = key_str(s, op, kind, &kl);
	h = hkey(kind, k, kl);
	if (hfind_h(s, kind, k, kl, h) != -1)
		return -1;
	hinsert(s, kind, op, h);
	return 0;
}

/* --- the model of the new tree ------------------------------------ */

static uint32_t
held_type(const struct rs *s, long k)
{
	return s->held.ents[k].mode & S_IFMT;
}

static long
held_find(const struct rs *s, const char *p, size_t len)
{
	if (!s->use_held)
		return len == 0 ? 0 : -1;
	return catalog_find(&s->held, p, len);
}

/*
 * The type of the object at new-tree path p (len bytes), 0 when there is
 * none.  With skip_last, a create/rename/link target at p itself is
 * ignored: the answer is what remains of the base there.  *blocked gets
 * the type of a non-directory met on the way (0 if none).
 */
static uint32_t
new_type(const struct rs *s, const char *p, size_t len, int skip_last,
    uint32_t *blocked)
{
	char old[AS_PATH_MAX_BUF];
	size_t oldlen = 0, start = 0, end, clen;
	const struct rop *o;
	uint32_t type = S_IFDIR;
	int created = 0;
	long j, k;

	*blocked = 0;
	while (start < len) {
		for (end = start; end < len && p[end] != '/'; end++)
			;
		if (type != S_IFDIR) {
			*blocked = type;
			return 0;
		}
		j = (end == len && skip_last) ? -1 : hfind(s, K_NEW, p, end);
		if (j >= 0) {
			o = &s->r.ops[j];
			if (o->op == AS_OP_RENAME) {
				k = held_find(s, rop_aux(&s->r, o),
				    o->aux_len);
				if (k < 0)
					return 0;
				memcpy(old, rop_aux(&s->r, o), o->aux_len);
				oldlen = o->aux_len;
				type = held_type(s, k);
				created = 0;
			} else {
				type = o->mode & S_IFMT;
				created = 1;
			}
		} else if (created) {
			return 0;
		} else {
			clen = end - start;
			if (oldlen + 1 + clen >= sizeof(old))
				return 0;
			if (oldlen > 0)
				old[oldlen++] = '/';
			memcpy(old + oldlen, p + start, clen);
			oldlen += clen;
			if (hfind(s, K_DEL, old, oldlen) >= 0 ||
			    hfind(s, K_SRC, old, oldlen) >= 0)
				return 0;
			if ((k = held_find(s, old, oldlen)) < 0)
				return 0;
			type = held_type(s, k);
		}
		start = end + 1;
	}
	return type;
}

static const char *
type_word(uint32_t t)
{
	switch (t) {
	case S_IFLNK:
		return "a symlink";
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	default:
		return "a special file";
	}
}

/* The parent of new-tree path p must be a directory of the new tree. */
static int
check_parent(const struct rs *s, const char *p, size_t len,
    struct as_err *err)
{
	size_t plen = path_parent_len(p, len);
	uint32_t t, blocked;

	t = new_type(s, p, plen, 0, &blocked);
	if (t == S_IFDIR)
		return 0;
	if (t == S_IFLNK || blocked == S_IFLNK)
		return as_err_set(err, AS_E_UNSAFE_PATH, 0, "'%s': a parent "
		    "is a symlink; refusing to follow it", p);
	if (t == 0 && blocked == 0)
		return as_err_set(err, AS_E_MALFORMED, 0, "'%s': the parent "
		    "directory does not exist", p);
	return as_err_set(err, AS_E_UNSAFE_PATH, 0, "'%s': a parent is %s, "
	    "not a directory", p, type_word(t != 0 ? t : blocked));
}

/* Check the meaning of every op, after END and before the commit. */
static int
validate(struct rs *s, struct as_err *err)
{
	struct rcv *r = R(s);
	const struct rop *o;
	const char *p, *a, *q;
	size_t i, plen, qlen;
	uint32_t t, blocked, type;
	long k, j;

	for (i = 0; i < r->nops; i++) {
		o = &r->ops[i];
		p = rop_path(r, o);
		a = rop_aux(r, o);
		type = o->mode & S_IFMT;
		switch (o->op) {
		case AS_OP_CREATE:
		case AS_OP_RENAME:
		case AS_OP_LINK:
			if (check_parent(s, p, o->path_len, err) == -1)
				return -1;
			if (new_type(s, p, o->path_len, 1, &blocked) != 0)
				return as_err_set(err, AS_E_MALFORMED, 0,
				    "'%s' is created but the destination "
				    "keeps an entry there", p);
			if (o->op == AS_OP_RENAME) {
				k = held_find(s, a, o->aux_len);
				if (k < 0)
					return as_err_set(err, AS_E_MALFORMED,
					    0, "rename source '%s' is not in "
					    "the snapshot held by '%s'", a,
					    r->dest);
				if (held_type(s, k) != type)
					return as_err_set(err, AS_E_MALFORMED,
					    0, "rename of '%s' to '%s' changes "
					    "its type", a, p);
				if (hfind(s, K_DEL, a, o->aux_len) >= 0)
					return as_err_set(err, AS_E_MALFORMED,
					    0, "'%s' is both renamed and "
					    "deleted", a);
				if (r->st != NULL)
					r->st->renames++;
			}
			if (o->op == AS_OP_LINK) {
				t = new_type(s, a, o->aux_len, 0, &blocked);
				if (t != S_IFREG)
					return as_err_set(err,
					    AS_E_UNSAFE_PATH, 0, "hard link "
					    "'%s': target '%s' is not a "
					    "regular file of the new tree", p,
					    a);
				j = hfind(s, K_NEW, a, o->aux_len);
				/*
				 * A link may only name what exists by now:
				 * the held tree or an entry made earlier in
				 * the stream (RELIABILITY.md #18).
				 */
				if (j >= 0 && (size_t)j > i)
					return as_err_set(err,
					    AS_E_UNSAFE_PATH, 0, "hard link "
					    "'%s' names '%s', which the stream "
					    "makes later", p, a);
			}
			break;
		case AS_OP_PATCH:
		case AS_OP_ATTR:
			t = new_type(s, p, o->path_len, 0, &blocked);
			if (t == 0 && blocked == S_IFLNK)
				return as_err_set(err, AS_E_UNSAFE_PATH, 0,
				    "'%s': a parent is a symlink; refusing to "
				    "follow it", p);
			if (t == 0)
				return as_err_set(err, AS_E_MALFORMED, 0,
				    "%s of '%s', which does not exist",
				    as_op_name(o->op), p);
			if (t != type)
				return as_err_set(err, AS_E_MALFORMED, 0,
				    "%s of '%s' as %s, but it is %s",
				    as_op_name(o->op), p, type_word(type),
				    type_word(t));
			break;
		case AS_OP_DELETE:
			k = held_find(s, p, o->path_len);
			if (k < 0)
				return as_err_set(err, AS_E_MALFORMED, 0,
				    "delete of '%s', which is not in the "
				    "snapshot held by '%s'", p, r->dest);
			if (held_type(s, k) != type)
				return as_err_set(err, AS_E_MALFORMED, 0,
				    "delete of '%s' as %s, but it is %s", p,
				    type_word(type), type_word(held_type(s,
				    k)));
			if (type != S_IFDIR)
				break;
			/* every child must go: deleted or moved away */
			for (j = k + 1; (size_t)j < s->held.n; j++) {
				q = catalog_path(&s->held, &s->held.ents[j]);
				qlen = s->held.ents[j].path_len;
				if (qlen <= o->path_len || q[o->path_len] !=
				    '/' || memcmp(q, p, o->path_len) != 0)
					break;
				plen = path_parent_len(q, qlen);
				if (plen != o->path_len)
					continue;
				if (hfind(s, K_DEL, q, qlen) < 0 &&
				    hfind(s, K_SRC, q, qlen) < 0)
					return as_err_set(err, AS_E_MALFORMED,
					    0, "delete of directory '%s' "
					    "leaves '%s' in it", p, q);
			}
			break;
		}
	}
	return 0;
}

/* --- ops ------------------------------------------------------------ */

static uint32_t
add_op(struct rs *s, uint8_t op, const char *path, size_t plen,
    const char *aux, size_t alen)
{
	struct rcv *r = R(s);
	struct rop *o;

	if (r->nops == r->capops) {
		r->capops = r->capops ? r->capops * 2 : 1024;
		r->ops = xreallocarray(r->ops, r->capops, sizeof(*r->ops));
	}
	o = &r->ops[r->nops];
	memset(o, 0, sizeof(*o));
	o->op = op;
	o->path_off = r->strs.len;
	buf_add(&r->strs, path, plen);
	buf_add_u8(&r->strs, 0);
	o->path_len = (uint16_t)plen;
	o->aux_off = r->strs.len;
	buf_add(&r->strs, aux, alen);
	buf_add_u8(&r->strs, 0);
	o->aux_len = (uint16_t)alen;
	o->xattr_off = r->xattrs.len;
	o->top = (uint32_t)r->nops;
	return (uint32_t)r->nops++;
}

/* "n<id>/rest": where a CREATE lives under stage/. */
static void
stage_rel(const struct rs *s, uint32_t i, char *out, size_t sz)
{
	const struct rop *o = &s->r.ops[i], *t = &s->r.ops[o->top];

	snprintf(out, sz, "n%u%s", (unsigned)t->id, rop_path(&s->r, o) +
	    t->path_len);
}

static void
stage_parent_drop(struct rs *s)
{
	if (s->pfd != -1)
		close(s->pfd);
	s->pfd = -1;
}

static int
stage_create(struct rs *s, uint32_t i, const char *aux,
    struct as_err *err)
{
	char srel[AS_PATH_MAX_BUF + 16];
	struct rop *o = &s->r.ops[i];
	const char *name, *path = rop_path(&s->r, o);
	uint32_t type = o->mode & S_IFMT;
	size_t plen;
	int pfd, fd, e;

	stage_rel(s, i, srel, sizeof(srel));
	plen = path_parent_len(srel, strlen(srel));
	if (s->pfd != -1 && plen == s->pfd_len && memcmp(srel, s->pfd_rel,
	    plen) == 0) {
		pfd = s->pfd;
		name = srel + plen + (plen != 0);
	} else {
		stage_parent_drop(s);
		if ((pfd = beneath_parent(s->r.stagefd, srel, &name, "stage",
		    err)) == -1)
			return as_err_prefix(err, "stage '%s'", path);
		s->pfd = pfd;
		s->pfd_len = plen;
		memcpy(s->pfd_rel, srel, plen);
	}
	if ((e = io_fault("recv_stage")) != 0)
		return as_err_sys(err, e, "stage '%s'", path);
	switch (type) {
	case S_IFDIR:
		e = mkdirat(pfd, name, 0700) == -1 ? errno : 0;
		break;
	case S_IFREG:
		/*
		 * Sized when the entry closes (close_entry), and only when
		 * its data ends short of the size: most files are written
		 * to the end, and an empty one needs nothing.
		 */
		/*
		 * With its own permission bits: usually the umask leaves
		 * them, and close_entry need not chmod.  stage/ is 0700,
		 * so nobody else sees the file before it is complete.
		 */
		fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, o->mode & 0777);
		e = fd == -1 ? errno : 0;
		if (fd != -1) {
			s->curfd = fd;
			s->curend = 0;
		}
		break;
	case S_IFLNK:
		e = symlinkat(aux, pfd, name) == -1 ? errno : 0;
		break;
	default:
		/* fifos, sockets, devices: made, never opened */
		e = mknodat(pfd, name, type | 0600, (dev_t)o->rdev) == -1 ?
		    errno : 0;
		break;
	}
	if (e == EEXIST && s->resumed && !s->cont) {
		/*
		 * Staged after the last checkpoint by the interrupted
		 * receive: this resumed stream makes it again.
		 */
		if (s->wr != NULL && dir_writer_drain(s->wr, err) == -1)
			return -1;
		if (rcv_rm_tree(s->r.stagefd, srel, err) == -1)
			return as_err_prefix(err, "stage '%s'", path);
		stage_parent_drop(s);
		return stage_create(s, i, aux, err);
	}
	if (e != 0)
		return as_err_sys(err, e, "stage '%s'", path);
	return 0;
}

/*
 * The writer thread, started the first time one is needed; NULL when the
 * data is written here (see struct rs).
 */
static struct dir_writer *
writer(struct rs *s)
{
	struct as_err e;

	if (s->wr != NULL || s->wr_off)
		return s->wr;
	if (!dir_writer_wanted() ||
	    (s->wr = dir_writer_new(&e)) == NULL)
		s->wr_off = 1;	/* no thread: the same work, in order, here */
	return s->wr;
}

/* Everything given to the writer is done: 0, or -1 with its error. */
static int
writer_drain(struct rs *s, struct as_err *err)
{
	return s->wr != NULL ? dir_writer_drain(s->wr, err) : 0;
}

#define HS_CHUNK	4096u

/* Op i's slot for derive_full, made when make; NULL when none. */
static struct dw_stat *
hstat_of(struct rs *s, size_t i, int make)
{
	size_t c = i / HS_CHUNK, n;

	if (!s->hs_on)
		return NULL;
	if (c >= s->nhs) {
		if (!make)
			return NULL;
		n = c + 1 > s->nhs * 2 ? c + 1 : s->nhs * 2;
		s->hs = xreallocarray(s->hs, n, sizeof(*s->hs));
		memset(s->hs + s->nhs, 0, (n - s->nhs) * sizeof(*s->hs));
		s->nhs = n;
	}
	if (s->hs[c] == NULL) {
		if (!make)
			return NULL;
		s->hs[c] = xcalloc(HS_CHUNK, sizeof(**s->hs));
	}
	return &s->hs[c][i % HS_CHUNK];
}

/* The entry is complete: set the metadata of a staged non-directory. */
static int
close_entry(struct rs *s, struct as_err *err)
{
	char srel[AS_PATH_MAX_BUF + 16];
	struct rcv *r = R(s);
	struct rop *o;
	struct dw_meta m;
	struct dir_writer *w;
	uint32_t type;
	int fd, rc;

	if (s->cur < 0)
		return 0;
	o = &r->ops[s->cur];
	type = o->mode & S_IFMT;
	rc = 0;
	if (o->op == AS_OP_CREATE && type != S_IFDIR && s->staging &&
	    s->curfd != -1) {
		fd = s->curfd;
		s->curfd = -1;
		memset(&m, 0, sizeof(m));
		m.size = o->size;
		m.end = s->curend;
		m.mtime_sec = o->mtime_sec;
		m.mtime_nsec = o->mtime_nsec;
		m.mode = o->mode;
		m.uid = o->uid;
		m.gid = o->gid;
		m.full_set = (o->flags & RO_XATTRS) != 0;
		m.xattrs = r->xattrs.data + o->xattr_off;
		m.xattr_len = o->xattr_len;
		m.path = rop_path(r, o);
		m.out = hstat_of(s, (size_t)s->cur, 1);
		/* size, owner, xattrs, mode, times, close: here or there */
		w = writer(s);
		rc = w != NULL ? dir_writer_close(w, fd, &m, err) :
		    dir_writer_finish_fd(fd, &m, 0, err);
	} else if (o->op == AS_OP_CREATE && type != S_IFDIR && s->staging) {
		stage_rel(s, (uint32_t)s->cur, srel, sizeof(srel));
		fd = beneath_open(r->stagefd, srel, O_PATH | O_NOFOLLOW,
		    "stage", err);
		if (fd == -1)
			rc = -1;
		else {
			rc = meta_apply(fd, 0, NULL, type, o->uid, o->gid,
			    o->mode, o->mtime_sec, o->mtime_nsec,
			    r->xattrs.data + o->xattr_off, o->xattr_len,
			    (o->flags & RO_XATTRS) != 0, rop_path(r, o), err);
			close(fd);
		}
	}
	if (o->op == AS_OP_CREATE && type != S_IFDIR &&
	    o->xattr_off + o->xattr_len == r->xattrs.len) {
		/* applied already (or copied to the writer): not journaled */
		r->xattrs.len = o->xattr_off;
		o->xattr_len = 0;
	}
	s->cur = -1;
	return rc;
}

/*
 * An entry sent again (RETRY, or the first of a resumed stream): its
 * attributes replace those of o, and the XATTR records that o had are
 * dropped (they are sent again after it).
 */
static void
rop_again(struct rs *s, struct rop *o, const struct as_entry *e)
{
	struct rcv *r = R(s);

	o->mode = e->mode;
	o->uid = e->uid;
	o->gid = e->gid;
	o->size = e->size;
	if (e->size > s->max_size)
		s->max_size = e->size;
	o->mtime_sec = e->mtime_sec;
	o->mtime_nsec = e->mtime_nsec;
	o->flags = (uint8_t)((o->flags & ~RO_XATTRS) |
	    ((e->flags & AS_EF_XATTRS) ? RO_XATTRS : 0));
	if (o->xattr_off + o->xattr_len == r->xattrs.len)
		r->xattrs.len = o->xattr_off;
	o->xattr_off = r->xattrs.len;
	o->xattr_len = 0;
}

static int
on_retry(struct rs *s, const struct as_entry *e, struct as_err *err)
{
	struct rcv *r = R(s);
	struct rop *o;

	if (s->cur < 0 || r->ops[s->cur].op != e->op)
		return as_err_set(err, AS_E_MALFORMED, 0, "'%.*s': a retry "
		    "that does not follow its entry", (int)e->path_len,
		    e->path);
	o = &r->ops[s->cur];
	s->cur_retried = 1;
	/* the previous data of this entry is void */
	rop_again(s, o, e);
	if (o->op == AS_OP_PATCH) {
		o->seg_first = (uint32_t)r->nsegs;
		o->nseg = 0;
	} else if (s->curfd != -1) {
		/* the data queued for it first */
		if (writer_drain(s, err) == -1)
			return -1;
		if (ftruncate(s->curfd, 0) == -1)
			return as_err_sys(err, errno, "stage '%s'",
			    rop_path(r, o));
		s->curend = 0;
	}
	return 0;
}

/*
 * The first ENTRY of a resumed stream: the entry the checkpoint ended in,
 * sent again.  It must be the same object; a new file keeps its data
 * below cont_off, a PATCH starts over (its spool from where it began).
 */
static int
on_continue(struct rs *s, const struct as_entry *e, struct as_err *err)
{
	char srel[AS_PATH_MAX_BUF + 16];
	struct rcv *r = R(s);
	struct rop *o;
	struct rseg *g;
	size_t k, n;
	int fd;

	s->cont = 0;
	if (s->cur < 0)
		return as_err_set(err, AS_E_INTERNAL, 0, "resume without an "
		    "entry");
	o = &r->ops[s->cur];
	if (e->op != o->op || e->path_len != o->path_len || memcmp(e->path,
	    rop_path(r, o), e->path_len) != 0 || e->aux_len != o->aux_len ||
	    memcmp(e->aux, rop_aux(r, o), e->aux_len) != 0 ||
	    (e->mode & S_IFMT) != (o->mode & S_IFMT))
		return as_err_set(err, AS_E_CONFLICT, 0, "the resumed stream "
		    "does not continue '%s' where the interrupted one stopped "
		    "(it starts with '%.*s')", rop_path(r, o),
		    (int)e->path_len, e->path);
	/* its XATTR records follow again */
	rop_again(s, o, e);
	o->rdev = e->rdev;
	if (o->op == AS_OP_PATCH) {
		/*
		 * The ranges below cont_off stay (the one across it is cut);
		 * they were spooled one after another from c_spool unless
		 * the entry had a RETRY, and then the checkpoint said 0.
		 */
		r->spool_len = s->c_spool;
		n = 0;
		if (s->cont_off > 0 && o->seg_first == s->c_nsegs) {
			for (k = o->seg_first; k < (size_t)o->seg_first +
			    o->nseg; k++) {
				g = &r->segs[k];
				if (g->off >= s->cont_off)
					break;
				if (g->off + g->len > s->cont_off)
					g->len = s->cont_off - g->off;
				if (g->spool != RSEG_HOLE)
					r->spool_len = g->spool + g->len;
				n++;
			}
		}
		o->seg_first = (uint32_t)s->c_nsegs;
		o->nseg = (uint32_t)n;
		r->nsegs = s->c_nsegs + n;
		s->cont_log = n > 0;
	} else if (o->op == AS_OP_CREATE && S_ISREG(o->mode)) {
		stage_rel(s, (uint32_t)s->cur, srel, sizeof(srel));
		fd = beneath_open(r->stagefd, srel, O_WRONLY | O_NOFOLLOW,
		    "stage", err);
		if (fd == -1)
			return as_err_prefix(err, "resume '%s'", rop_path(r,
			    o));
		if (ftruncate(fd, (off_t)s->cont_off) == -1) {
			close(fd);
			return as_err_sys(err, errno, "resume '%s'",
			    rop_path(r, o));
		}
		s->curfd = fd;
		s->curend = s->cont_off;
	}
	return 0;
}

static int
on_entry(struct rs *s, const struct as_entry *e, struct as_err *err)
{
	struct rcv *r = R(s);
	struct rop *o;
	uint32_t i, type = e->mode & S_IFMT;
	size_t plen;
	long j;

	if (r->st != NULL)
		r->st->entries_sent++;
	if ((e->flags & AS_EF_RETRY) != 0)
		return on_retry(s, e, err);
	if (s->cont)
		return on_continue(s, e, err);
	if (close_entry(s, err) == -1)
		return -1;
	if (r->nops >= RCV_OPS_MAX)
		return as_err_set(err, AS_E_LIMIT, 0, "stream has more than "
		    "%u entries", RCV_OPS_MAX);
	s->cur_retried = 0;
	i = add_op(s, e->op, e->path, e->path_len, e->aux, e->aux_len);
	o = &r->ops[i];
	o->mode = e->mode;
	o->uid = e->uid;
	o->gid = e->gid;
	o->rdev = e->rdev;
	o->size = e->size;
	if (e->size > s->max_size)
		s->max_size = e->size;
	o->mtime_sec = e->mtime_sec;
	o->mtime_nsec = e->mtime_nsec;
	if ((e->flags & AS_EF_XATTRS) != 0)
		o->flags |= RO_XATTRS;
	o->seg_first = (uint32_t)r->nsegs;
	s->cur = i;
	switch (e->op) {
	case AS_OP_CREATE:
	case AS_OP_LINK:
	case AS_OP_RENAME:
		if (hadd(s, K_NEW, i) == -1)
			return as_err_set(err, AS_E_MALFORMED, 0, "'%.*s' is "
			    "created twice", (int)e->path_len, e->path);
		if (e->op == AS_OP_RENAME) {
			if (hadd(s, K_SRC, i) == -1)
				return as_err_set(err, AS_E_MALFORMED, 0,
				    "'%.*s' is renamed twice",
				    (int)e->aux_len, e->aux);
			o->id = r->next_id++;
		}
		break;
	case AS_OP_PATCH:
	case AS_OP_ATTR:
		if (hadd(s, K_MOD, i) == -1)
			return as_err_set(err, AS_E_MALFORMED, 0, "'%.*s' is "
			    "changed twice", (int)e->path_len, e->path);
		return 0;
	case AS_OP_DELETE:
		if (hadd(s, K_DEL, i) == -1)
			return as_err_set(err, AS_E_MALFORMED, 0, "'%.*s' is "
			    "deleted twice", (int)e->path_len, e->path);
		return 0;
	}
	if (e->op != AS_OP_CREATE)
		return 0;
	/* inside a directory this stream created: stage it in there */
	plen = path_parent_len(e->path, e->path_len);
	j = plen > 0 ? hfind(s, K_NEW, e->path, plen) : -1;
	if (j >= 0 && r->ops[j].op == AS_OP_CREATE) {
		if ((r->ops[j].mode & S_IFMT) != S_IFDIR)
			return as_err_set(err, AS_E_UNSAFE_PATH, 0, "'%.*s': "
			    "its parent is %s made by this stream, not a "
			    "directory", (int)e->path_len, e->path,
			    type_word(r->ops[j].mode & S_IFMT));
		o->top = r->ops[j].top;
	} else {
		o->flags |= RO_TOP;
		o->id = r->next_id++;
	}
	if (!s->staging)
		return 0;
	(void)type;
	return stage_create(s, i, e->aux_len ? rop_aux(r, o) : "", err);
}

static int
on_xattr(struct rs *s, const struct as_xattr *x)
{
	struct rcv *r = R(s);
	struct rop *o = &r->ops[s->cur];

	xattr_blob_add(&r->xattrs, x->name, x->name_len, x->value,
	    x->value_len);
	o->xattr_len = (uint32_t)(r->xattrs.len - o->xattr_off);
	return 0;
}

static int
add_seg(struct rs *s, uint64_t off, uint64_t len, uint64_t spool)
{
	struct rcv *r = R(s);

	if (r->nsegs >= UINT32_MAX)
		return -1;
	if (r->nsegs == r->capsegs) {
		r->capsegs = r->capsegs ? r->capsegs * 2 : 1024;
		r->segs = xreallocarray(r->segs, r->capsegs, sizeof(*r->segs));
	}
	r->segs[r->nsegs].off = off;
	r->segs[r->nsegs].len = len;
	r->segs[r->nsegs].spool = spool;
	r->nsegs++;
	r->ops[s->cur].nseg++;
	return 0;
}

static int
on_data(struct rs *s, const struct as_data *d, struct as_err *err)
{
	struct rcv *r = R(s);
	struct rop *o = &r->ops[s->cur];
	struct dir_writer *w;
	int e;

	if (r->st != NULL)
		r->st->data_bytes += d->len;
	if (o->op == AS_OP_CREATE) {
		if (!s->staging)
			return 0;
		if ((e = io_fault("recv_write")) != 0)
			return as_err_sys(err, e, "stage '%s'", rop_path(r, o));
		if ((w = writer(s)) != NULL) {
			if (dir_writer_data(w, s->curfd, d->offset, d->data,
			    d->len, rop_path(r, o), err) == -1)
				return -1;
		} else if (io_pwrite_full(s->curfd, d->data, d->len,
		    (off_t)d->offset) == -1)
			return as_err_sys(err, errno, "stage '%s'",
			    rop_path(r, o));
		if (d->offset + d->len > s->curend)
			s->curend = d->offset + d->len;
		return 0;
	}
	/* PATCH: spool the block, applied in place after the commit */
	if (s->staging) {
		if (r->spoolfd == -1 && (r->spoolfd = openat(r->stagefd,
		    "spool", O_RDWR | O_CREAT | (s->resumed ? 0 : O_EXCL) |
		    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1)
			return as_err_sys(err, errno, "create the spool of "
			    "'%s'", r->dest);
		if ((e = io_fault("recv_write")) != 0 ||
		    (io_pwrite_full(r->spoolfd, d->data, d->len,
		    (off_t)r->spool_len) == -1 && (e = errno) != 0))
			return as_err_sys(err, e, "spool '%s'", rop_path(r, o));
	}
	if (add_seg(s, d->offset, d->len, r->spool_len) == -1)
		return as_err_set(err, AS_E_LIMIT, 0, "too many data records");
	r->spool_len += d->len;
	return 0;
}

static int
on_hole(struct rs *s, const struct as_hole *h, struct as_err *err)
{
	struct rop *o = &s->r.ops[s->cur];

	/* a staged file is sparse where nothing was written (close_entry) */
	if (o->op != AS_OP_PATCH)
		return 0;
	if (add_seg(s, h->offset, h->len, RSEG_HOLE) == -1)
		return as_err_set(err, AS_E_LIMIT, 0, "too many hole records");
	return 0;
}

/* --- what the destination holds -------------------------------------- */

/*
 * catalog_decode_cb's done: mapped pages count in the resident size
 * until unmapped; give back what is decoded (it stays in the page cache).
 */
static void
held_drop(void *map, size_t off)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	off -= off % pg;
	if (off > 0)
		(void)madvise(map, off, MADV_DONTNEED);
}

static int
load_held(struct rs *s, struct as_err *err)
{
	struct buf b = BUF_INIT;
	struct stat sb;
	const uint8_t *data;
	void *map;
	ssize_t n;
	int fd, rc;

	if (s->r.privfd == -1)
		return 0;
	fd = openat(s->r.privfd, "held.cat", O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		return as_err_sys(err, errno, "open the held catalog of '%s'",
		    s->r.dest);
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return as_err_set(err, AS_E_MALFORMED, 0, "the held catalog "
		    "of '%s' is not a file", s->r.dest);
	}
	/*
	 * Decoded straight from a mapping: the file is never held in memory
	 * next to the catalog it decodes to.  held.cat is only ever replaced
	 * by a rename (write_atomic) under the lock we hold, so the mapped
	 * inode does not change.
	 */
	map = MAP_FAILED;
	if (sb.st_size > 0)
		map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE,
		    fd, 0);
	if (map == MAP_FAILED) {
		n = io_read_full(fd, buf_reserve(&b, (size_t)sb.st_size + 1),
		    (size_t)sb.st_size);
		data = b.data;
	} else {
		(void)madvise(map, (size_t)sb.st_size, MADV_SEQUENTIAL);
		n = sb.st_size;
		data = map;
	}
	close(fd);
	if (n == -1) {
		buf_release(&b);
		return as_err_sys(err, errno, "read the held catalog of '%s'",
		    s->r.dest);
	}
	rc = catalog_decode_cb(&s->held, data, (size_t)n, map != MAP_FAILED ?
	    held_drop : NULL, map, err);
	if (map != MAP_FAILED)
		munmap(map, (size_t)sb.st_size);
	buf_release(&b);
	if (rc == -1)
		return as_err_prefix(err, "held catalog of '%s'", s->r.dest);
	s->have_held = 1;
	return 0;
}

/* Is dest empty but for .autosync?  1 yes, 0 no, -1 error. */
static int
dest_empty(struct rs *s, struct as_err *err)
{
	struct dirent *de;
	DIR *d;
	int fd, empty = 1;

	if (s->r.destfd == -1)
		return 1;
	if ((fd = openat(s->r.destfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return as_err_sys(err, errno, "read '%s'", s->r.dest);
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..")
		    != 0 && strcmp(de->d_name, AS_PRIVATE_DIR) != 0) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* -F on a full stream: everything there now is moved out and deleted. */
static int
extras_all(struct rs *s, struct as_err *err)
{
	struct dirent *de;
	DIR *d;
	uint32_t i;
	int fd;

	if ((fd = openat(s->r.destfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return as_err_sys(err, errno, "read '%s'", s->r.dest);
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") ==
		    0 || strcmp(de->d_name, AS_PRIVATE_DIR) == 0)
			continue;
		i = add_op(s, RO_EXTRA, de->d_name, strlen(de->d_name), "", 0);
		s->r.ops[i].id = s->r.next_id++;
	}
	closedir(d);
	return 0;
}

static int
content_differs(const struct cat_entry *h, const char *haux,
    const struct cat_entry_in *in)
{
	const struct cat_entry *c = in->st;
	uint32_t t = h->mode & S_IFMT;

	if (t != (c->mode & S_IFMT))
		return 1;
	switch (t) {
	case S_IFDIR:
		return 0;
	case S_IFLNK:
		return h->aux_len != in->aux_len || memcmp(haux, in->aux,
		    h->aux_len) != 0 || h->ino != c->ino;
	case S_IFREG:
		return h->ino != c->ino || h->size != c->size ||
		    h->mtime_sec != c->mtime_sec ||
		    h->mtime_nsec != c->mtime_nsec;
	default:
		return h->rdev != c->rdev || h->ino != c->ino;
	}
}

static int
meta_differs(const struct catalog *hc, const struct cat_entry *h,
    const struct cat_entry_in *in)
{
	const struct cat_entry *c = in->st;

	return h->mode != c->mode || h->uid != c->uid || h->gid != c->gid ||
	    h->mtime_sec != c->mtime_sec || h->mtime_nsec != c->mtime_nsec ||
	    h->ctime_sec != c->ctime_sec || h->ctime_nsec != c->ctime_nsec ||
	    h->nlink != c->nlink || h->ino != c->ino ||
	    h->xattr_len != in->xattr_len || (h->xattr_len != 0 &&
	    memcmp(catalog_xattrs(hc, h), in->xattrs, h->xattr_len) != 0);
}

static void
add_drift(struct rs *s, size_t held, uint8_t kind)
{
	if (s->ndrift == s->capdrift) {
		s->capdrift = s->capdrift ? s->capdrift * 2 : 64;
		s->drift = xreallocarray(s->drift, s->capdrift,
		    sizeof(*s->drift));
	}
	s->drift[s->ndrift].held = (uint32_t)held;
	s->drift[s->ndrift].kind = kind;
	s->ndrift++;
}

/* The drift check: a merge of held.cat with the entries as scanned. */
struct drift_walk {
	struct rs	*s;
	const struct catalog *h;
	size_t		 i;		/* next held entry */
	size_t		 count;		/* differences */
	char		 first[AS_PATH_MAX_BUF];
	int		 have_x;	/* the last extra: below it is extra */
	uint64_t	 xoff;
	size_t		 xlen;
};

static void
drift_note(struct drift_walk *w, const char *p, size_t len)
{
	if (w->count++ == 0)
		snprintf(w->first, sizeof(w->first), "%.*s",
		    len != 0 ? (int)len : 1, len != 0 ? p : ".");
}

static void
drift_each(void *arg, const struct cat_entry_in *in)
{
	struct drift_walk *w = arg;
	struct rs *s = w->s;
	const struct catalog *h = w->h;
	const struct cat_entry *he;
	const char *hp;
	uint32_t n;
	int c = 1;

	for (; w->i < h->n; w->i++) {
		he = &h->ents[w->i];
		hp = catalog_path(h, he);
		if ((c = path_cmp(hp, he->path_len, in->path,
		    in->path_len)) >= 0)
			break;
		/* in the snapshot, gone from the destination */
		drift_note(w, hp, he->path_len);
		add_drift(s, w->i, D_MISSING);
	}
	if (w->i == h->n || c > 0) {
		/* on the destination only: below a known extra? */
		if (w->have_x && in->path_len > w->xlen &&
		    in->path[w->xlen] == '/' && memcmp(in->path,
		    s->r.strs.data + w->xoff, w->xlen) == 0)
			return;
		drift_note(w, in->path, in->path_len);
		n = add_op(s, RO_EXTRA, in->path, in->path_len, "", 0);
		s->r.ops[n].id = s->r.next_id++;
		w->have_x = 1;
		w->xoff = s->r.ops[n].path_off;
		w->xlen = in->path_len;
		return;
	}
	he = &h->ents[w->i];
	if (content_differs(he, catalog_aux(h, he), in)) {
		drift_note(w, catalog_path(h, he), he->path_len);
		add_drift(s, w->i, D_CONTENT);
	} else if (meta_differs(h, he, in)) {
		drift_note(w, catalog_path(h, he), he->path_len);
		add_drift(s, w->i, D_META);
	}
	w->i++;
}

/*
 * Compare the destination with held.cat.  Without -F any difference is a
 * CONFLICT; with it, extras become RO_EXTRA ops now and the rest is kept
 * for check_drift() after END.
 *
 * The scan is merged with held.cat as it goes (dir_scan_each): no second
 * catalog in memory.  held.cat is also the scan's base: an entry whose
 * inode, type, size, mtime and ctime are as held keeps the held xattrs
 * and symlink target unread (setting an xattr moves the ctime; a symlink
 * cannot be changed in place), so an unchanged destination costs one
 * lstat per entry.  With no difference at all, held.cat describes the
 * destination exactly (every field of an entry is compared), which
 * finish() relies on (r->prior_exact).
 */
static int
find_drift(struct rs *s, struct as_err *err)
{
	struct drift_walk *w;
	const struct catalog *h = &s->held;
	size_t count;
	int rc;

	w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->h = h;
	if (dir_scan_each_narrow(s->r.dest, h, s->dirs, s->ndirs, s->narrow,
	    h->hdr.block_size, DIR_SCAN_NOHASH, drift_each, w, NULL,
	    err) == -1) {
		free(w);
		return as_err_prefix(err, "check '%s' for changes", s->r.dest);
	}
	for (; w->i < h->n; w->i++) {
		drift_note(w, catalog_path(h, &h->ents[w->i]),
		    h->ents[w->i].path_len);
		add_drift(s, w->i, D_MISSING);
	}
	count = w->count;
	s->r.prior_exact = count == 0;
	rc = 0;
	if (count > 0 && (s->r.flags & DIR_RECV_FORCE) == 0) {
		if (count == 1)
			rc = as_err_set(err, AS_E_CONFLICT, 0, "destination "
			    "'%s' was modified since snapshot '%s': '%s' "
			    "changed; use -F to roll back", s->r.dest,
			    h->hdr.name, w->first);
		else
			rc = as_err_set(err, AS_E_CONFLICT, 0, "destination "
			    "'%s' was modified since snapshot '%s': '%s' "
			    "changed (and %zu more); use -F to roll back",
			    s->r.dest, h->hdr.name, w->first, count - 1);
	}
	free(w);
	return rc;
}

/* Where old path p (held) ends up in the new tree; 0 if deleted. */
static int
new_path_of(const struct rs *s, const char *p, size_t len, char *out,
    size_t sz)
{
	const struct rop *o;
	size_t alen = len;
	long j;

	for (;;) {
		if (hfind(s, K_DEL, p, alen) >= 0)
			return 0;
		if ((j = hfind(s, K_SRC, p, alen)) >= 0) {
			o = &s->r.ops[j];
			if ((size_t)o->path_len + (len - alen) >= sz)
				return 0;
			snprintf(out, sz, "%s%.*s", rop_path(&s->r, o),
			    (int)(len - alen), p + alen);
			return 1;
		}
		if (alen == 0)
			break;
		alen = path_parent_len(p, alen);
	}
	snprintf(out, sz, "%.*s", (int)len, p);
	return 1;
}

/* -F, after END: decide what the drift means for this stream. */
static int
check_drift(struct rs *s, struct as_err *err)
{
	const struct cat_entry *he;
	const char *p;
	char np[AS_PATH_MAX_BUF];
	size_t i;
	uint32_t n;
	struct rop *o;

	for (i = 0; i < s->ndrift; i++) {
		he = &s->held.ents[s->drift[i].held];
		p = catalog_path(&s->held, he);
		switch (s->drift[i].kind) {
		case D_MISSING:
			if (hfind(s, K_DEL, p, he->path_len) >= 0)
				break;
			return as_err_set(err, AS_E_CONFLICT, 0, "cannot roll "
			    "back '%s': it was removed from the destination; "
			    "resend it in full (autosync sync -F does)", p);
		case D_CONTENT:
			if (hfind(s, K_DEL, p, he->path_len) >= 0) {
				/* move it out whole; the delete finds nothing */
				n = add_op(s, RO_EXTRA, p, he->path_len, "",
				    0);
				s->r.ops[n].id = s->r.next_id++;
				break;
			}
			return as_err_set(err, AS_E_CONFLICT, 0, "cannot roll "
			    "back '%s': its content changed on the "
			    "destination; resend it in full (autosync sync -F "
			    "does)", p);
		case D_META:
			if (!new_path_of(s, p, he->path_len, np, sizeof(np)))
				break;
			n = add_op(s, AS_OP_ATTR, np, strlen(np), "", 0);
			o = &s->r.ops[n];
			o->flags = RO_RESET | RO_XATTRS;
			o->mode = he->mode;
			o->uid = he->uid;
			o->gid = he->gid;
			o->mtime_sec = he->mtime_sec;
			o->mtime_nsec = he->mtime_nsec;
			o->xattr_off = s->r.xattrs.len;
			o->xattr_len = he->xattr_len;
			buf_add(&s->r.xattrs, catalog_xattrs(&s->held, he),
			    he->xattr_len);
			break;
		}
	}
	return 0;
}

/* --- the new held.cat without a rescan ----------------------------- */

/*
 * An entry of the tree after the apply that is not where held.cat has it:
 * renamed (itself or with a directory), or new (CREATE, LINK).
 */
struct dmove {
	uint64_t	off;		/* new path in the derive arena */
	uint32_t	len;
	int64_t		held;		/* held entry, or -1 */
};

struct derive {
	struct rs	*s;
	struct buf	 arena;		/* NUL-terminated paths */
	struct dmove	*mv;
	size_t		 nmv, capmv;
	uint64_t	*marks;		/* offsets of paths to stat again */
	size_t		 nmarks, capmarks;
	size_t		 mcur;		/* d_marked's place in marks */
	int		 pfd;		/* parent of the last entry stat'ed */
	struct buf	 ppath;
	uint64_t	 rootdev;
	struct scan_xa	 xa;
	struct buf	 xbuf;
	char		 link[AS_PATH_MAX + 2];
};

static const char *
d_str(const struct derive *d, uint64_t off)
{
	return (const char *)d->arena.data + off;
}

static uint64_t
d_add(struct derive *d, const char *p, size_t len)
{
	uint64_t off = d->arena.len;

	buf_add(&d->arena, p, len);
	buf_add_u8(&d->arena, 0);
	return off;
}

static void
d_mark(struct derive *d, const char *p, size_t len)
{
	if (d->nmarks == d->capmarks) {
		d->capmarks = d->capmarks ? d->capmarks * 2 : 256;
		d->marks = xreallocarray(d->marks, d->capmarks,
		    sizeof(*d->marks));
	}
	d->marks[d->nmarks++] = d_add(d, p, len);
}

/* Mark the new-tree location of old (held) path p's parent. */
static void
d_mark_old_parent(struct derive *d, const char *p, size_t len)
{
	char np[AS_PATH_MAX_BUF];
	size_t pl = path_parent_len(p, len);

	if (len == 0)
		return;
	if (new_path_of(d->s, p, pl, np, sizeof(np)))
		d_mark(d, np, strlen(np));
}

static void
d_move(struct derive *d, const char *p, size_t len, int64_t held)
{
	if (d->nmv == d->capmv) {
		d->capmv = d->capmv ? d->capmv * 2 : 256;
		d->mv = xreallocarray(d->mv, d->capmv, sizeof(*d->mv));
	}
	d->mv[d->nmv].off = d_add(d, p, len);
	d->mv[d->nmv].len = (uint32_t)len;
	d->mv[d->nmv].held = held;
	d->nmv++;
}

static int
cmp_mark(const void *a, const void *b, void *arg)
{
	const struct derive *d = arg;
	const char *x = d_str(d, *(const uint64_t *)a);
	const char *y = d_str(d, *(const uint64_t *)b);

	return path_cmp(x, strlen(x), y, strlen(y));
}

static int
cmp_move(const void *a, const void *b, void *arg)
{
	const struct derive *d = arg;
	const struct dmove *x = a, *y = b;

	return path_cmp(d_str(d, x->off), x->len, d_str(d, y->off), y->len);
}

static int
d_marked(struct derive *d, const char *p, size_t len)
{
	const char *m;
	int c;

	/* d_emit's paths come in path order, as do the sorted marks */
	for (; d->mcur < d->nmarks; d->mcur++) {
		m = d_str(d, d->marks[d->mcur]);
		c = path_cmp(m, strlen(m), p, len);
		if (c == 0)
			return 1;
		if (c > 0)
			break;
	}
	return 0;
}

/* Hand one entry of the new tree to the held.cat writer. */
static int
d_add_entry(struct derive *d, struct cat_writer *out,
    const struct cat_entry_in *in, struct as_err *err)
{
	if (cat_writer_add(out, in) == -1)
		return as_err_sys(err, errno, "write the held catalog of '%s'",
		    d->s->r.dest);
	return 0;
}

/*
 * Add the entry at new path p as it is on disk now, the way a NOHASH scan
 * with held.cat as its base records it (h: its held entry, or NULL).
 * 0, or -1 with err; an entry that vanished is left out.
 */
static int
d_stat(struct derive *d, struct cat_writer *out, const char *p, size_t len,
    const struct cat_entry *h, struct as_err *err)
{
	const struct catalog *hc = &d->s->held;
	struct cat_entry_in in;
	struct cat_entry e;
	struct stat sb;
	char proc[AS_NAME_MAX + 64];
	size_t pl = path_parent_len(p, len);
	const char *name = p + (pl != 0 ? pl + 1 : 0);
	ssize_t n = 0;
	int dfd, rc;

	if (len == 0) {
		dfd = d->s->r.destfd;
		rc = fstat(dfd, &sb);
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dfd);
	} else {
		if (d->pfd == -1 || d->ppath.len != pl ||
		    memcmp(d->ppath.data, p, pl) != 0) {
			if (d->pfd != -1)
				close(d->pfd);
			buf_reset(&d->ppath);
			buf_add(&d->ppath, p, pl);
			buf_add_u8(&d->ppath, 0);
			d->ppath.len = pl;
			d->pfd = beneath_open(d->s->r.destfd,
			    (const char *)d->ppath.data, O_PATH | O_DIRECTORY,
			    "open", err);
			if (d->pfd == -1) {
				d->ppath.len = 0;
				return errno == ENOENT ? 0 : -1;
			}
		}
		dfd = d->pfd;
		rc = fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW);
	}
	if (rc == -1) {
		if (errno == ENOENT)
			return 0;
		return as_err_sys(err, errno, "stat '%s'", p);
	}
	scan_fix_ino(&sb, d->rootdev);
	scan_fill(&e, &sb);
	memset(&in, 0, sizeof(in));
	in.st = &e;
	in.path = p;
	in.path_len = len;
	if (h != NULL && scan_same(h, &sb)) {
		/* an xattr change moves the ctime; a symlink is immutable */
		in.aux = catalog_aux(hc, h);
		in.aux_len = h->aux_len;
		in.xattrs = catalog_xattrs(hc, h);
		in.xattr_len = h->xattr_len;
		return d_add_entry(d, out, &in, err);
	}
	if (S_ISLNK(sb.st_mode)) {
		n = readlinkat(dfd, name, d->link, sizeof(d->link));
		if (n == -1 && errno == ENOENT)
			return 0;
		if (n == -1 || (size_t)n > AS_PATH_MAX)
			return as_err_sys(err, n == -1 ? errno : ENAMETOOLONG,
			    "read link '%s'", p);
		in.aux = d->link;
		in.aux_len = (size_t)n;
	}
	if ((len == 0 ? scan_xattrs_path(proc, &d->xa, &d->xbuf) :
	    scan_xattrs_at(dfd, name, &d->xa, &d->xbuf)) == -1) {
		if (errno == ENOENT)
			return 0;
		return as_err_sys(err, errno, "read xattrs of '%s'", p);
	}
	in.xattrs = d->xbuf.data;
	in.xattr_len = d->xbuf.len;
	return d_add_entry(d, out, &in, err);
}

/* Emit one entry of the new tree: a copy of held entry h, or a stat. */
static int
d_emit(struct derive *d, struct cat_writer *out, const char *p, size_t len,
    const struct cat_entry *h, struct as_err *err)
{
	const struct catalog *hc = &d->s->held;
	struct cat_entry_in in;

	/*
	 * Stat again what the apply touched or may have: the paths of ops,
	 * their parents (old and new), link targets, every hard-linked
	 * file (a link made or removed changes the others' nlink and
	 * ctime), and what is new.
	 */
	if (h == NULL || h->nlink > 1 || d_marked(d, p, len))
		return d_stat(d, out, p, len, h, err);
	memset(&in, 0, sizeof(in));
	in.st = h;
	in.path = p;
	in.path_len = len;
	in.aux = catalog_aux(hc, h);
	in.aux_len = h->aux_len;
	in.xattrs = catalog_xattrs(hc, h);
	in.xattr_len = h->xattr_len;
	return d_add_entry(d, out, &in, err);
}

/*
 * rcv.derive: the catalog of the tree after the apply, from held.cat
 * (which the drift check found to describe the tree exactly before it)
 * and the op list, with one stat for each entry the apply touched
 * instead of a walk of the whole destination.  Only for an incremental
 * without -F whose drift check found nothing; 1 (rescan) otherwise.
 */
static int
derive_held(struct rcv *r, struct cat_writer *out, struct as_err *err)
{
	struct rs *s = r->derive_arg;
	const struct catalog *h = &s->held;
	const struct cat_entry *he;
	const struct rop *o;
	struct derive d;
	struct stat rsb;
	char np[AS_PATH_MAX_BUF];
	uint8_t *moved;
	const char *p, *mp;
	size_t i, j, k, plen, mlen, nmoving = 0;
	int rc = 1, c;

	if (!s->use_held || !r->prior_exact || (r->flags &
	    DIR_RECV_FORCE) != 0 || h->n == 0 || fstat(r->destfd, &rsb) == -1)
		return 1;
	memset(&d, 0, sizeof(d));
	d.s = s;
	d.pfd = -1;
	d.rootdev = (uint64_t)rsb.st_dev;
	scan_xa_init(&d.xa);
	moved = xcalloc(h->n, 1);
	for (i = 0; i < r->nops; i++) {
		o = &r->ops[i];
		p = rop_path(r, o);
		switch (o->op) {
		case AS_OP_CREATE:
		case AS_OP_LINK:
			d_move(&d, p, o->path_len, -1);
			/* FALLTHROUGH */
		case AS_OP_PATCH:
		case AS_OP_ATTR:
		case AS_OP_RENAME:
			d_mark(&d, p, o->path_len);
			if (o->path_len != 0)
				d_mark(&d, p, path_parent_len(p, o->path_len));
			if (o->op == AS_OP_LINK)
				d_mark(&d, rop_aux(r, o), o->aux_len);
			if (o->op == AS_OP_RENAME)
				d_mark_old_parent(&d, rop_aux(r, o),
				    o->aux_len);
			break;
		case AS_OP_DELETE:
			d_mark_old_parent(&d, p, o->path_len);
			break;
		default:
			goto out;	/* -F's extras: not here */
		}
		if (o->op == AS_OP_RENAME || o->op == AS_OP_DELETE)
			nmoving++;
	}
	/*
	 * Where every held entry ends up; 2: gone.  Without a rename or a
	 * delete, each stays where it is (the usual small incremental: no
	 * path lookups for the whole tree).
	 */
	for (i = 0; nmoving > 0 && i < h->n; i++) {
		he = &h->ents[i];
		p = catalog_path(h, he);
		if (!new_path_of(s, p, he->path_len, np, sizeof(np)))
			moved[i] = 2;
		else if (strlen(np) != he->path_len || memcmp(np, p,
		    he->path_len) != 0) {
			moved[i] = 1;
			d_move(&d, np, strlen(np), (int64_t)i);
		}
	}
	if (d.nmarks > 0)
		qsort_r(d.marks, d.nmarks, sizeof(*d.marks), cmp_mark, &d);
	if (d.nmv > 0)
		qsort_r(d.mv, d.nmv, sizeof(*d.mv), cmp_move, &d);
	/* merge the entries in place (held order) with the moved ones */
	i = j = 0;
	while (i < h->n || j < d.nmv) {
		if (i < h->n && moved[i] != 0) {
			i++;
			continue;
		}
		he = i < h->n ? &h->ents[i] : NULL;
		p = he != NULL ? catalog_path(h, he) : NULL;
		plen = he != NULL ? he->path_len : 0;
		mp = j < d.nmv ? d_str(&d, d.mv[j].off) : NULL;
		mlen = j < d.nmv ? d.mv[j].len : 0;
		if (he == NULL)
			c = 1;
		else if (mp == NULL)
			c = -1;
		else
			c = path_cmp(p, plen, mp, mlen);
		if (c == 0)
			goto out;	/* two entries at one path: rescan */
		if (c < 0) {
			if (d_emit(&d, out, p, plen, he, err) == -1) {
				rc = -1;
				goto out;
			}
			i++;
			continue;
		}
		if (j + 1 < d.nmv && path_cmp(mp, mlen, d_str(&d,
		    d.mv[j + 1].off), d.mv[j + 1].len) == 0)
			goto out;
		k = (size_t)d.mv[j].held;
		if (d_emit(&d, out, mp, mlen, d.mv[j].held < 0 ? NULL :
		    &h->ents[k], err) == -1) {
			rc = -1;
			goto out;
		}
		j++;
	}
	rc = 0;
out:
	if (d.pfd != -1)
		close(d.pfd);
	free(moved);
	free(d.mv);
	free(d.marks);
	buf_release(&d.arena);
	buf_release(&d.ppath);
	buf_release(&d.xbuf);
	scan_xa_release(&d.xa);
	return rc;
}

static int
cmp_op_path(const void *a, const void *b, void *arg)
{
	const struct rcv *r = arg;
	const struct rop *x = &r->ops[*(const uint32_t *)a];
	const struct rop *y = &r->ops[*(const uint32_t *)b];

	return path_cmp(rop_path(r, x), x->path_len, rop_path(r, y),
	    y->path_len);
}

/*
 * rcv.derive for a full stream into an empty tree: held.cat from the op
 * list in path order, without a walk of the destination.  A regular file
 * staged inside a new directory (the apply renames only that directory,
 * which leaves the file's ctime as it was), not linked, is recorded as
 * the writer saw it once closed (dw_stat: its inode and ctime; the rest
 * is what the stream gave, which the writer checked it has).  Everything
 * else is stat'ed as a scan does: directories (the last phase sets their
 * attributes), top-level entries (renamed into place), links and their
 * targets, symlinks, special files, files with xattrs, and any file the
 * writer could not vouch for (a resumed transfer's, for one).  1
 * (rescan) when the op list is not a plain full stream.
 */
static int
derive_full(struct rcv *r, struct cat_writer *out, struct as_err *err)
{
	struct rs *s = r->derive_arg;
	struct cat_entry_in in;
	struct cat_entry e;
	struct derive d;
	struct stat rsb;
	const struct rop *o;
	const struct dw_stat *hs;
	uint32_t *idx;
	uint8_t *linked;
	size_t i, n = 0;
	long j;
	int rc = 1;

	if (s->use_held || !s->hs_on || fstat(r->destfd, &rsb) == -1)
		return 1;
	memset(&d, 0, sizeof(d));
	d.s = s;
	d.pfd = -1;
	d.rootdev = (uint64_t)rsb.st_dev;
	scan_xa_init(&d.xa);
	idx = xreallocarray(NULL, r->nops + 1, sizeof(*idx));
	linked = xcalloc(r->nops + 1, 1);
	for (i = 0; i < r->nops; i++) {
		o = &r->ops[i];
		if (o->op == AS_OP_LINK) {
			j = hfind(s, K_NEW, rop_aux(r, o), o->aux_len);
			if (j >= 0)
				linked[j] = 1;
		} else if (o->op != AS_OP_CREATE && !(o->op == AS_OP_ATTR &&
		    o->path_len == 0))
			goto out;	/* not a plain full stream */
		idx[n++] = (uint32_t)i;
	}
	/* our sender's full streams come in path order: sort only if not */
	for (i = 1; i < n && cmp_op_path(&idx[i - 1], &idx[i], r) < 0; i++)
		;
	if (i < n)
		qsort_r(idx, n, sizeof(*idx), cmp_op_path, r);
	/* the root comes first, named by the stream or not */
	if ((n == 0 || r->ops[idx[0]].path_len != 0) &&
	    d_stat(&d, out, "", 0, NULL, err) == -1) {
		rc = -1;
		goto out;
	}
	for (i = 0; i < n; i++) {
		o = &r->ops[idx[i]];
		hs = hstat_of(s, idx[i], 0);
		if (o->op == AS_OP_CREATE && S_ISREG(o->mode) &&
		    (o->flags & RO_TOP) == 0 && !linked[idx[i]] &&
		    hs != NULL && hs->ino != 0) {
			memset(&e, 0, sizeof(e));
			e.ino = hs->ino;
			e.mode = (uint16_t)(o->mode & (S_IFMT | 07777));
			e.uid = o->uid;
			e.gid = o->gid;
			e.nlink = 1;
			e.size = o->size;
			e.mtime_sec = o->mtime_sec;
			e.mtime_nsec = o->mtime_nsec;
			e.ctime_sec = hs->ctime_ns / 1000000000;
			e.ctime_nsec = (uint32_t)(hs->ctime_ns % 1000000000);
			memset(&in, 0, sizeof(in));
			in.st = &e;
			in.path = rop_path(r, o);
			in.path_len = o->path_len;
			if (d_add_entry(&d, out, &in, err) == -1) {
				rc = -1;
				goto out;
			}
			continue;
		}
		if (d_stat(&d, out, rop_path(r, o), o->path_len, NULL,
		    err) == -1) {
			rc = -1;
			goto out;
		}
	}
	rc = 0;
out:
	if (d.pfd != -1)
		close(d.pfd);
	free(idx);
	free(linked);
	buf_release(&d.ppath);
	buf_release(&d.xbuf);
	scan_xa_release(&d.xa);
	return rc;
}

/*
 * Check for drift before the stream arrives, when held.cat exists: a
 * stream relative to it (the usual incremental) needs the check, and the
 * sender may still be scanning.  Any failure is kept for on_begin.
 */
static void
drift_early(struct rs *s)
{
	as_err_clear(&s->drift_err);
	(void)find_drift(s, &s->drift_err);
	s->drift_done = 1;
}

/* The stream is not relative to held.cat: forget an early drift check. */
static void
drift_drop(struct rs *s)
{
	if (!s->drift_done)
		return;
	s->drift_done = 0;
	s->ndrift = 0;
	s->r.nops = 0;
	s->r.next_id = 0;
	s->r.prior_exact = 0;
	buf_reset(&s->r.strs);
	as_err_clear(&s->drift_err);
}

static int
on_begin(struct rs *s, const struct as_begin *b, struct dir_recv_result *res,
    struct as_err *err)
{
	struct rcv *r = R(s);
	const struct cat_header *hh = &s->held.hdr;
	int force = (r->flags & DIR_RECV_FORCE) != 0, empty;

	if (s->resumed && !s->replay) {
		/* the same snapshot as the checkpoint's (I6) */
		if (b->kind != AS_KIND_DIR || b->target_guid != r->guid ||
		    b->base_guid != r->base_guid || b->block_size !=
		    r->block_size || b->name_len != strlen(r->name) ||
		    memcmp(b->name, r->name, b->name_len) != 0)
			return as_err_set(err, AS_E_CONFLICT, 0, "the resumed "
			    "stream is not the interrupted transfer of '%s' "
			    "into '%s'", r->name, r->dest);
		return 0;
	}
	r->guid = b->target_guid;
	r->base_guid = b->base_guid;
	r->time_ns = b->time_ns;
	r->block_size = b->block_size;
	snprintf(r->name, sizeof(r->name), "%s", b->name);
	free(r->source);	/* a recovered journal may have set it */
	r->source = xstrndup(b->source, b->source_len);
	res->target_guid = b->target_guid;
	res->base_guid = b->base_guid;
	snprintf(res->name, sizeof(res->name), "%s", b->name);
	if (b->kind != AS_KIND_DIR)
		return as_err_set(err, AS_E_UNSUPPORTED, 0, "stream of dataset "
		    "kind %u cannot be received into directory '%s'", b->kind,
		    r->dest);
	if (b->base_guid != 0) {
		if (!s->have_held)
			return as_err_set(err, AS_E_CONFLICT, 0, "stream is "
			    "incremental from %016llx but '%s' holds no "
			    "snapshot", (unsigned long long)b->base_guid,
			    r->dest);
		if (hh->guid != b->base_guid)
			return as_err_set(err, AS_E_CONFLICT, 0, "stream is "
			    "incremental from %016llx but '%s' holds %016llx "
			    "('%s')", (unsigned long long)b->base_guid,
			    r->dest, (unsigned long long)hh->guid, hh->name);
		s->use_held = 1;
		if (s->drift_done) {
			if (s->drift_err.code != AS_E_OK) {
				if (err != NULL)
					*err = s->drift_err;
				return -1;
			}
		} else if (find_drift(s, err) == -1)
			return -1;
	} else {
		drift_drop(s);
		if ((empty = dest_empty(s, err)) == -1)
			return -1;
		if ((s->have_held || !empty) && !force) {
			if (s->have_held && hh->guid == b->target_guid)
				return as_err_set(err, AS_E_CONFLICT, 0,
				    "destination '%s' already holds snapshot "
				    "'%s'", r->dest, hh->name);
			return as_err_set(err, AS_E_CONFLICT, 0, "destination "
			    "'%s' exists and is not empty; use -F to "
			    "overwrite", r->dest);
		}
		if (!empty && extras_all(s, err) == -1)
			return -1;
	}
	if (s->dry)
		return 0;
	if (s->replay) {
		/* the stage of the interrupted receive, kept by recover */
		r->stagefd = openat(r->privfd, "stage", O_RDONLY |
		    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (r->stagefd == -1)
			return as_err_sys(err, errno, "open '%s/%s/stage'",
			    r->dest, AS_PRIVATE_DIR);
		return 0;
	}
	if (r->privfd == -1) {
		if (rcv_open_private(r, 1, 0, err) == -1)
			return -1;
		/* another receiver may have created it meanwhile */
		if (faccessat(r->privfd, "held.cat", F_OK,
		    AT_SYMLINK_NOFOLLOW) == 0)
			return as_err_set(err, AS_E_CONFLICT, 0, "destination "
			    "'%s' is busy: another receive started", r->dest);
	}
	if (mkdirat(r->privfd, "stage", 0700) == -1)
		return as_err_sys(err, errno, "create '%s/%s/stage'", r->dest,
		    AS_PRIVATE_DIR);
	s->staging = 1;
	/* into an empty tree: held.cat from the stream (derive_full) */
	s->hs_on = b->base_guid == 0 && !force;
	r->stagefd = openat(r->privfd, "stage", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (r->stagefd == -1)
		return as_err_sys(err, errno, "open '%s/%s/stage'", r->dest,
		    AS_PRIVATE_DIR);
	return 0;
}

static int
on_record(struct rs *s, const struct as_rec *rec, struct dir_recv_result *res,
    struct as_err *err)
{
	switch (rec->type) {
	case AS_REC_BEGIN:
		return on_begin(s, &rec->u.begin, res, err);
	case AS_REC_ENTRY:
		if (s->safe) {
			struct as_entry en = rec->u.entry;

			if (dir_policy_entry(&en, err) == -1)
				return -1;
			return on_entry(s, &en, err);
		}
		return on_entry(s, &rec->u.entry, err);
	case AS_REC_XATTR:
		if (s->safe && !dir_policy_xattr(&rec->u.xattr))
			return 0;
		return on_xattr(s, &rec->u.xattr);
	case AS_REC_DATA:
		return on_data(s, &rec->u.data, err);
	case AS_REC_HOLE:
		return on_hole(s, &rec->u.hole, err);
	case AS_REC_END:
		/* the writer's errors belong to the stream's reading */
		if (close_entry(s, err) == -1)
			return -1;
		return writer_drain(s, err);
	}
	return 0;
}

/* --- resume checkpoints --------------------------------------------- */

static void
close_fd_if(int *fd)
{
	if (*fd != -1)
		close(*fd);
	*fd = -1;
}


/* The time floor between checkpoints: 1 s, or $AUTOSYNC_DIR_CHECKPOINT_MS. */
static int64_t
ckpt_floor_ns(void)
{
	const char *e = getenv("AUTOSYNC_DIR_CHECKPOINT_MS");
	char *end;
	long v;

	if (e == NULL || *e == '\0')
		return 1000000000;
	v = strtol(e, &end, 10);
	if (*end != '\0' || v < 0)
		return 1000000000;
	return (int64_t)v * 1000000;
}

/* Append the record the decoder just completed to the log (no END). */
static void
log_record(struct rs *s, const struct stream_dec *d)
{
	const uint8_t *h = d->rd.cur;
	uint16_t type = le16(h);
	uint32_t len = le32(h + 4);
	uint8_t l4[4];

	if (type == AS_REC_END)
		return;
	if (type == AS_REC_DATA) {
		/* offset u64, then the length instead of the bytes */
		put_le32(l4, len - 8);
		rec_encode(&s->plog, &s->plog_chain, type, h + REC_HDR_LEN, 8,
		    l4, 4);
	} else
		rec_encode(&s->plog, &s->plog_chain, type, h + REC_HDR_LEN,
		    len, NULL, 0);
}

/*
 * After a resumed PATCH's ENTRY and XATTR records: its ranges kept from
 * before (on_continue), so that a replay of the log rebuilds them.
 */
static void
log_kept(struct rs *s)
{
	const struct rop *o = &s->r.ops[s->cur];
	const struct rseg *g;
	uint8_t p[16];
	size_t k;

	s->cont_log = 0;
	for (k = o->seg_first; k < (size_t)o->seg_first + o->nseg; k++) {
		g = &s->r.segs[k];
		put_le64(p, g->off);
		if (g->spool == RSEG_HOLE) {
			put_le64(p + 8, g->len);
			rec_encode(&s->plog, &s->plog_chain, AS_REC_HOLE, p, 16,
			    NULL, 0);
		} else {
			put_le32(p + 8, (uint32_t)g->len);
			rec_encode(&s->plog, &s->plog_chain, AS_REC_DATA, p, 12,
			    NULL, 0);
		}
	}
}

/*
 * A checkpoint on its way to disk: the syncfs and the partial file are
 * done by a thread while the stream goes on (as vol.c's struct ckpt), so
 * the receive does not stop at each checkpoint and the disk writes what
 * was received while the next records are staged.  Everything the
 * partial names was written before the thread called syncfs, so it is
 * durable before the partial says so.
 */
struct dckpt {
	pthread_t	 tid;
	struct rcv	*r;
	char		 text[256];
	size_t		 len;
	int		 rc;
	struct as_err	 err;
};

static void *
dckpt_main(void *arg)
{
	struct dckpt *c = arg;

	c->rc = -1;
	if (syncfs(c->r->destfd) == -1) {
		as_err_sys(&c->err, errno, "sync '%s'", c->r->dest);
		return NULL;
	}
	if (rcv_write_atomic(c->r, RCV_PARTIAL, c->text, c->len, NULL,
	    &c->err) == -1)
		return NULL;
	c->rc = 0;
	return NULL;
}

/*
 * Wait for the checkpoint in flight, if any: 0, or -1 with its error in
 * err (when err is not NULL: a caller that already failed keeps its own).
 */
static int
ckpt_join(struct rs *s, struct as_err *err)
{
	struct dckpt *c = s->ck;
	int rc;

	if (c == NULL)
		return 0;
	pthread_join(c->tid, NULL);
	rc = c->rc;
	if (rc == 0)
		s->ckpt_made = 1;
	else if (err != NULL)
		*err = c->err;
	free(c);
	s->ck = NULL;
	return rc;
}

/*
 * Make what was received durable and say where it ends: the log since
 * the last checkpoint, one syncfs (the staged objects, the spool, the
 * log), then the partial file, atomically; the last two in a thread
 * (struct dckpt).  One is in flight at a time: the next waits for it,
 * and only when the disk is more than an interval behind, so a cut loses
 * at most two intervals (the one in flight and the one being filled).
 */
static int
checkpoint(struct rs *s, uint64_t bytes, struct as_err *err)
{
	struct rcv *r = R(s);
	const struct rop *o;
	struct dckpt *c;
	uint64_t blk = 0;
	int n, e;

	if (r->nops == 0 || s->cur < 0 || !s->staging)
		return 0;
	if (ckpt_join(s, err) == -1)
		return -1;
	/* what the writer thread has queued is part of the stage */
	if (writer_drain(s, err) == -1)
		return -1;
	o = &r->ops[s->cur];
	if (o->op == AS_OP_CREATE && S_ISREG(o->mode) && r->block_size != 0)
		blk = s->curend / r->block_size;
	else if (o->op == AS_OP_PATCH && o->nseg > 0 && !s->cur_retried &&
	    r->block_size != 0)
		blk = (r->segs[o->seg_first + o->nseg - 1].off +
		    r->segs[o->seg_first + o->nseg - 1].len) / r->block_size;
	if (blk > UINT32_MAX)
		blk = UINT32_MAX;
	if (s->plogfd == -1 && (s->plogfd = openat(r->privfd,
	    RCV_PARTIAL_LOG, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600)) == -1)
		return as_err_sys(err, errno, "create '%s/%s/%s'", r->dest,
		    AS_PRIVATE_DIR, RCV_PARTIAL_LOG);
	/* a longer log left by an earlier leg is of no use */
	if (!s->plog_cut) {
		if (ftruncate(s->plogfd, (off_t)s->plog_len) == -1)
			return as_err_sys(err, errno, "truncate '%s/%s/%s'",
			    r->dest, AS_PRIVATE_DIR, RCV_PARTIAL_LOG);
		s->plog_cut = 1;
	}
	if (s->plog.len > 0 && io_pwrite_full(s->plogfd, s->plog.data,
	    s->plog.len, (off_t)s->plog_len) == -1)
		return as_err_sys(err, errno, "write '%s/%s/%s'", r->dest,
		    AS_PRIVATE_DIR, RCV_PARTIAL_LOG);
	s->plog_len += s->plog.len;
	buf_reset(&s->plog);
	c = xcalloc(1, sizeof(*c));
	c->r = r;
	n = snprintf(c->text, sizeof(c->text), "autosync-partial 1\n"
	    "guid %016llx\nbase %016llx\nposition %llu\nlog %llu\n"
	    "bytes %llu\n", (unsigned long long)r->guid,
	    (unsigned long long)r->base_guid,
	    (unsigned long long)DIR_POS(r->nops, blk),
	    (unsigned long long)s->plog_len, (unsigned long long)bytes);
	c->len = (size_t)n;
	if ((e = pthread_create(&c->tid, NULL, dckpt_main, c)) != 0) {
		free(c);
		return as_err_sys(err, e, "start a checkpoint of '%s'",
		    r->dest);
	}
	s->ck = c;
	return 0;
}

/* The value after "\nKEY " in text (or at its start), base 16 or 10. */
static int
kv(const char *text, const char *key, int base, uint64_t *out)
{
	char pat[32];
	const char *p;
	char *end;

	snprintf(pat, sizeof(pat), "\n%s ", key);
	if ((p = strstr(text, pat)) == NULL)
		return -1;
	p += strlen(pat);
	errno = 0;
	*out = strtoull(p, &end, base);
	return errno != 0 || end == p || *end != '\n' ? -1 : 0;
}

/* Read DEST/.autosync/partial: 1 and *p, *log_len; 0 none or unusable. */
static int
partial_read(int privfd, struct dir_partial *p, uint64_t *log_len)
{
	char text[512];
	ssize_t n;
	int fd;

	memset(p, 0, sizeof(*p));
	fd = openat(privfd, RCV_PARTIAL, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return 0;
	n = io_read_full(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	if (strncmp(text, "autosync-partial 1\n", 19) != 0 ||
	    kv(text, "guid", 16, &p->target_guid) == -1 ||
	    kv(text, "base", 16, &p->base_guid) == -1 ||
	    kv(text, "position", 10, &p->pos) == -1 ||
	    kv(text, "log", 10, log_len) == -1 ||
	    kv(text, "bytes", 10, &p->bytes) == -1 || p->target_guid == 0 ||
	    DIR_POS_ENTRY(p->pos) == 0)
		return 0;
	return 1;
}

int
dir_partial(const char *dest, struct dir_partial *p, struct as_err *err)
{
	struct stat sb;
	uint64_t log_len;
	int dfd, pfd, rc;

	memset(p, 0, sizeof(*p));
	dfd = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd == -1) {
		if (errno == ENOENT)
			return 0;
		return as_err_sys(err, errno, "open destination '%s'", dest);
	}
	pfd = openat(dfd, AS_PRIVATE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	close(dfd);
	if (pfd == -1)
		return 0;
	rc = fstatat(pfd, "stage", &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    partial_read(pfd, p, &log_len) == 1;
	close(pfd);
	if (!rc)
		memset(p, 0, sizeof(*p));
	return rc;
}

/*
 * Feed n bytes of a stream (or, replaying, of partial.log) through the
 * decoder and on_record; log and checkpoint as it goes.
 */
static int
feed(struct rs *s, struct stream_dec *d, const uint8_t *buf, size_t n,
    struct dir_recv_result *res, struct as_err *err)
{
	struct as_rec rec;
	uint64_t chain0, bytes, size;
	size_t off, used;
	int x;

	for (off = 0; off < n; off += used) {
		chain0 = d->rd.chain;
		x = stream_dec_feed(d, buf + off, n - off, &used, &rec, err);
		if (x == -1)
			return -1;
		if (x == 0 && used == 0)
			break;
		if (x != 1)
			continue;
		if (s->replay && rec.type == AS_REC_ENTRY &&
		    (rec.u.entry.flags & AS_EF_RETRY) == 0) {
			size = REC_HDR_LEN + (uint64_t)le32(d->rd.cur + 4) +
			    REC_TRAILER_LEN;
			s->c_log_off = d->rd.offset - size;
			s->c_chain = chain0;
			s->c_spool = s->r.spool_len;
			s->c_nsegs = s->r.nsegs;
		}
		if (on_record(s, &rec, res, err) == -1)
			return -1;
		if (s->replay || !s->ckpt || (s->resumed &&
		    rec.type == AS_REC_BEGIN))
			continue;
		log_record(s, d);
		if (s->cont_log && d->xattrs_left == 0 && (rec.type ==
		    AS_REC_ENTRY || rec.type == AS_REC_XATTR))
			log_kept(s);
		bytes = s->bytes_base + d->rd.offset;
		if (rec.type != AS_REC_END && bytes - s->ckpt_at >=
		    DIR_CKPT_BYTES && (bytes - s->ckpt_at >=
		    DIR_CKPT_MAX_BYTES || mono_ns() - s->ckpt_ns >=
		    ckpt_floor_ns())) {
			if (checkpoint(s, bytes, err) == -1)
				return -1;
			s->ckpt_at = bytes;
			s->ckpt_ns = mono_ns();
		}
	}
	return 0;
}

/* Read, decode and stage the whole stream. */
static int
read_stream(struct rs *s, int in_fd, struct dir_recv_result *res,
    struct as_err *err)
{
	struct stream_dec d;
	uint8_t *buf;
	ssize_t n;
	int rc = -1;

	buf = xmalloc_io(RCV_READ_CHUNK);
	stream_dec_init(&d);
	for (;;) {
		n = read(in_fd, buf, RCV_READ_CHUNK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			as_err_sys(err, errno, "read the stream");
			goto out;
		}
		if (n == 0)
			break;
		if (s->r.st != NULL)
			s->r.st->stream_bytes += (uint64_t)n;
		if (feed(s, &d, buf, (size_t)n, res, err) == -1)
			goto out;
	}
	rc = stream_dec_finish(&d, err);
out:
	stream_dec_release(&d);
	free(buf);
	return rc;
}

/*
 * Rebuild the op list of the checkpointed transfer rguid from
 * partial.log (nothing staged again), and get ready for the resumed
 * stream at rpos.  A checkpoint that cannot be used is forgotten
 * (CONFLICT): the next transfer starts over.
 */
static int
resume_prepare(struct rs *s, uint64_t rguid, uint64_t rpos,
    struct dir_recv_result *res, struct as_err *err)
{
	struct rcv *r = R(s);
	struct dir_partial p;
	struct dir_stats *st = r->st;
	struct stream_dec d;
	struct buf log = BUF_INIT;
	struct as_err e2;
	uint64_t log_len;
	ssize_t n;
	int rc = -1;

	if (r->privfd == -1 || partial_read(r->privfd, &p, &log_len) != 1 ||
	    p.target_guid != rguid)
		return as_err_set(err, AS_E_CONFLICT, 0, "destination '%s' "
		    "holds no interrupted transfer of %016llx to resume",
		    r->dest, (unsigned long long)rguid);
	if (DIR_POS_ENTRY(rpos) != DIR_POS_ENTRY(p.pos) ||
	    DIR_POS_BLOCK(rpos) > DIR_POS_BLOCK(p.pos))
		return as_err_set(err, AS_E_CONFLICT, 0, "destination '%s' "
		    "cannot resume at position %llu (its checkpoint is at "
		    "%llu)", r->dest, (unsigned long long)rpos,
		    (unsigned long long)p.pos);
	if ((r->flags & DIR_RECV_FORCE) != 0)
		return as_err_set(err, AS_E_USAGE, 0, "a resumed receive "
		    "cannot roll back '%s' (-F)", r->dest);
	s->plogfd = openat(r->privfd, RCV_PARTIAL_LOG, O_RDWR | O_NOFOLLOW |
	    O_CLOEXEC);
	if (s->plogfd == -1) {
		as_err_sys(&e2, errno, "open '%s'", RCV_PARTIAL_LOG);
		goto unusable;
	}
	n = io_pread_full(s->plogfd, buf_reserve(&log, (size_t)log_len + 1),
	    (size_t)log_len, 0);
	if (n != (ssize_t)log_len) {
		as_err_set(&e2, AS_E_TRUNCATED, 0, "'%s' is short",
		    RCV_PARTIAL_LOG);
		goto unusable;
	}
	s->replay = 1;
	r->st = NULL;
	stream_dec_init(&d);
	d.data_elided = 1;
	as_err_clear(&e2);
	rc = feed(s, &d, log.data, (size_t)n, res, &e2);
	if (rc == 0 && (!d.seen_begin || r->nops != DIR_POS_ENTRY(rpos) ||
	    s->cur != (long)r->nops - 1)) {
		rc = -1;
		as_err_set(&e2, AS_E_MALFORMED, 0, "it has %zu entries, not "
		    "%llu", r->nops, (unsigned long long)DIR_POS_ENTRY(rpos));
	}
	stream_dec_release(&d);
	r->st = st;
	s->replay = 0;
	if (rc == -1)
		goto unusable;
	buf_release(&log);
	/*
	 * Resumed before the checkpoint's block: the staged file is cut
	 * back below what the checkpoint says, which then no longer holds
	 * until this stream makes its own.
	 */
	if (rpos != p.pos)
		(void)unlinkat(r->privfd, RCV_PARTIAL, 0);
	s->resumed = 1;
	s->cont = 1;
	s->cont_off = DIR_POS_BLOCK(rpos) * (uint64_t)r->block_size;
	s->staging = 1;
	s->plog_chain = s->c_chain;
	s->plog_len = s->c_log_off;
	s->bytes_base = p.bytes;
	s->ckpt_at = p.bytes;
	s->ckpt_ns = mono_ns();
	return 0;
unusable:
	buf_release(&log);
	if (e2.code == AS_E_CONFLICT && err != NULL) {
		/* the destination changed (drift): keep the checkpoint */
		*err = e2;
		return -1;
	}
	close_fd_if(&s->plogfd);
	close_fd_if(&r->stagefd);
	rcv_partial_drop(r);
	(void)rcv_discard_stage(r, NULL);
	return as_err_set(err, AS_E_CONFLICT, 0, "the checkpoint of '%s' "
	    "cannot be used (%s): forgotten, the next transfer starts over",
	    r->dest, e2.msg);
}

/*
 * A dry run stages nothing, so a file larger than the destination's file
 * system allows would pass it and fail the real receive.  Ask the file
 * system with an unnamed temporary file (O_TMPFILE: no directory entry,
 * nothing to clean up), so that both agree (RELIABILITY.md #13).
 */
static int
probe_size(struct rs *s, struct as_err *err)
{
	int fd, e;

	if (s->r.destfd == -1 || s->max_size < (UINT64_C(1) << 32))
		return 0;
	fd = openat(s->r.destfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd == -1)
		return 0;	/* no O_TMPFILE here: the real receive tells */
	if (ftruncate(fd, (off_t)s->max_size) == -1) {
		e = errno;
		close(fd);
		return as_err_sys(err, e, "a file of %llu bytes does not fit "
		    "on '%s'", (unsigned long long)s->max_size, s->r.dest);
	}
	close(fd);
	return 0;
}

int
dir_receive(const char *dest, int in_fd, int flags,
    struct dir_recv_result *res, struct as_err *err)
{
	return dir_receive_opts(dest, in_fd, flags, NULL, res, err);
}

int
dir_receive_narrow(const char *dest, int in_fd, int flags, int narrow,
    const char *const *dirs, size_t ndirs, struct dir_recv_result *res,
    struct as_err *err)
{
	struct dir_recv_opts ro = { 0, 0, narrow, dirs, ndirs };

	return dir_receive_opts(dest, in_fd, flags, &ro, res, err);
}

int
dir_receive_resume(const char *dest, int in_fd, int flags, uint64_t rguid,
    uint64_t rpos, struct dir_recv_result *res, struct as_err *err)
{
	struct dir_recv_opts ro = { rguid, rpos, 0, NULL, 0 };

	return dir_receive_opts(dest, in_fd, flags, &ro, res, err);
}

/* A failure that leaves the checkpoint worth resuming from. */
static int
keeps_checkpoint(const struct rs *s, const struct as_err *err)
{
	if (!s->fail_in_read || (!s->ckpt_made && !s->resumed) ||
	    err == NULL)
		return 0;
	/*
	 * CHECKSUM too (RELIABILITY.md 45): what the checkpoint holds was
	 * verified when it was written, and a resume rewrites everything
	 * after it, the damaged bytes included.  A MALFORMED stream is not
	 * a damaged one: its sender is not trusted to resume.
	 */
	return err->code == AS_E_TRUNCATED || err->code == AS_E_IO ||
	    err->code == AS_E_TIMEOUT || err->code == AS_E_NOSPACE ||
	    err->code == AS_E_CHECKSUM;
}

int
dir_receive_opts(const char *dest, int in_fd, int flags,
    const struct dir_recv_opts *ro, struct dir_recv_result *res,
    struct as_err *err)
{
	static const struct dir_recv_opts none;
	struct dir_recv_result dummy;
	struct rs s;
	struct stat sb;
	uint64_t rguid, rpos;
	int rc = -1;

	if (res == NULL)
		res = &dummy;
	if (ro == NULL)
		ro = &none;
	rguid = ro->rguid;
	rpos = ro->rpos;
	memset(res, 0, sizeof(*res));
	memset(&s, 0, sizeof(s));
	s.narrow = ro->narrow;
	s.dirs = ro->dirs;
	s.ndirs = ro->ndirs;
	rcv_init(&s.r, dest, flags, &res->st);
	catalog_init(&s.held);
	s.cur = -1;
	s.curfd = -1;
	s.pfd = -1;
	s.plogfd = -1;
	s.plog_chain = REC_SEED_STREAM;
	s.ckpt_ns = mono_ns();
	s.dry = (flags & DIR_RECV_DRYRUN) != 0;
	s.safe = (flags & DIR_RECV_SAFE) != 0;
	s.ckpt = !s.dry && (flags & DIR_RECV_FORCE) == 0;
	if (rcv_open(&s.r, s.dry, err) == -1)
		goto out;
	if (!s.dry) {
		if (s.r.privfd != -1 && rcv_recover(&s.r, err) == -1) {
			as_err_prefix(err, "recover '%s'", dest);
			goto out;
		}
		/* an ordinary receive forgets an interrupted transfer */
		if (s.r.privfd != -1 && rguid == 0 && fstatat(s.r.privfd,
		    RCV_PARTIAL, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
			rcv_partial_drop(&s.r);
			if (rcv_discard_stage(&s.r, err) == -1)
				goto out;
		}
	} else if (s.r.privfd != -1 && fstatat(s.r.privfd, "journal", &sb,
	    AT_SYMLINK_NOFOLLOW) == 0) {
		as_err_set(err, AS_E_CONFLICT, 0, "destination '%s' has an "
		    "unfinished receive; recover it first", dest);
		goto out;
	}
	if (load_held(&s, err) == -1)
		goto out;
	if (!s.dry && s.have_held)
		drift_early(&s);
	if (rguid != 0 && (s.dry || resume_prepare(&s, rguid, rpos, res,
	    err) == -1)) {
		if (s.dry)
			as_err_set(err, AS_E_USAGE, 0, "a dry run does not "
			    "resume");
		goto out;
	}
	if (read_stream(&s, in_fd, res, err) == -1) {
		s.fail_in_read = 1;
		goto fail;
	}
	/* the last checkpoint: its failure is one of the read */
	if (ckpt_join(&s, err) == -1) {
		s.fail_in_read = 1;
		goto fail;
	}
	if (s.cont) {
		as_err_set(err, AS_E_MALFORMED, 0, "the resumed stream ends "
		    "before it continues the interrupted one");
		goto fail;
	}
	if (close_entry(&s, err) == -1 || writer_drain(&s, err) == -1)
		goto fail;
	/* the ring is of no more use: not in memory beside held.cat's */
	dir_writer_free(s.wr);
	s.wr = NULL;
	stage_parent_drop(&s);
	if (validate(&s, err) == -1 || check_drift(&s, err) == -1)
		goto fail;
	if (s.dry) {
		rc = probe_size(&s, err);
		goto out;
	}
	close_fd_if(&s.plogfd);
	/*
	 * After a drift check held.cat is the base of the rescan after the
	 * apply, and with nothing changed, the new held.cat itself.
	 */
	if (s.use_held) {
		s.r.prior = &s.held;
		s.r.derive = derive_held;
		s.r.derive_arg = &s;
	} else if (s.hs_on) {
		s.r.derive = derive_full;
		s.r.derive_arg = &s;
	}
	if (rcv_commit(&s.r, err) == -1) {
		/* not committed: drop the stage now, not at the next run */
		if (s.r.privfd != -1 && fstatat(s.r.privfd, "journal", &sb,
		    AT_SYMLINK_NOFOLLOW) == -1) {
			rcv_partial_drop(&s.r);
			(void)rcv_discard_stage(&s.r, NULL);
		}
		goto out;
	}
	rc = 0;
	goto out;
fail:
	/* before the stage is judged: a partial may still be on its way */
	(void)ckpt_join(&s, NULL);
	/* the writer is done with the stage before it is dropped */
	dir_writer_free(s.wr);
	s.wr = NULL;
	if (s.curfd != -1) {
		close(s.curfd);
		s.curfd = -1;
	}
	stage_parent_drop(&s);
	if (s.staging && keeps_checkpoint(&s, err)) {
		/* resumable: recover keeps the stage (dir.h) */
	} else if (s.staging || s.resumed) {
		if (s.r.privfd != -1)
			rcv_partial_drop(&s.r);
		(void)rcv_discard_stage(&s.r, NULL);
	}
out:
	(void)ckpt_join(&s, NULL);
	dir_writer_free(s.wr);
	if (s.curfd != -1)
		close(s.curfd);
	close_fd_if(&s.plogfd);
	stage_parent_drop(&s);
	rcv_release(&s.r);
	catalog_release(&s.held);
	while (s.nhs > 0)
		free(s.hs[--s.nhs]);
	free(s.hs);
	buf_release(&s.plog);
	free(s.h);
	free(s.drift);
	return rc;
}
