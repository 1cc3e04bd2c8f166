/*
 * sync_vol.c - one local replication step between two volumes (vol:);
 * the volume counterpart of sync_run()'s steps, see sync.h.
 *
 * The source is read once: the snapshot is taken while the stream is
 * written (vol_send with VOL_SEND_LIVE), and its catalog is saved as
 * pending before the END record lets the receiver commit.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/xmalloc.h"
#include "driver/vol.h"
#include "format/stream.h"
#include "repl/endpoint.h"
#include "repl/remote.h"
#include "repl/snapstore.h"
#include "repl/sync.h"
#include "transport/pace.h"
#include "base/banned.h"

struct vol_save {
	struct snapstore	*ss;
	struct catalog		*target;
};

static int64_t
vnow_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
save_pending(void *arg, struct as_err *err)
{
	struct vol_save *vs = arg;

	return snapstore_save(vs->ss, vs->target, SNAP_SAVE_PENDING, err);
}

/* A resume checkpoint: c is target or, from vol_copy's thread, a copy. */
static int
save_checkpoint(void *arg, const struct catalog *c, struct as_err *err)
{
	struct vol_save *vs = arg;

	return snapstore_save(vs->ss, c, SNAP_SAVE_PENDING, err);
}

int
sync_vol_receive(void *arg, const char *dest, int in_fd, int rflags,
    struct dir_recv_result *res, struct as_err *err)
{
	const struct sync_vol_recv *a = arg;
	struct vol_recv_result *vr;
	int rc;

	vr = xcalloc(1, sizeof(*vr));
	rc = vol_receive_resume(dest, a->state, in_fd, rflags &
	    DIR_RECV_FORCE ? VOL_RECV_FORCE : 0, a->resume_guid,
	    a->resume_off, vr, err);
	memset(res, 0, sizeof(*res));
	res->target_guid = vr->target_guid;
	res->base_guid = vr->base_guid;
	snprintf(res->name, sizeof(res->name), "%s", vr->name);
	res->st.entries_sent = 1;
	res->st.data_bytes = vr->st.data_bytes;
	res->st.stream_bytes = vr->st.stream_bytes;
	free(vr);
	return rc;
}

/* A local copy's chunk went: its bytes under the rate limit, progress. */
static void
copy_paced(void *arg, uint64_t stream_bytes)
{
	struct pace *p = arg;

	pace_moved(p, stream_bytes - p->bytes);
	/* the chunk went first: wait until the bucket has paid for it */
	(void)pace_take(p, 1);
}

/*
 * A full copy's stream, for its progress: about the volume's data from
 * off on, an image file's allocated bytes (holes are not sent) or a
 * device's size.
 */
static uint64_t
copy_total(const char *src, uint64_t off)
{
	struct as_err e;
	struct stat st;
	uint64_t size = 0;
	int is_blk;

	if (stat(src, &st) == 0 && S_ISREG(st.st_mode))
		size = (uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size ?
		    (uint64_t)st.st_blocks * 512 : (uint64_t)st.st_size;
	else if (vol_probe(src, &size, &is_blk, &e) == -1)
		size = 0;
	return size > off ? size - off : 0;
}

/*
 * Both volumes are local: sender and receiver in this process
 * (vol_copy), the changed blocks written from the buffer they were read
 * into.  0: committed; -1: failed (err).
 */
static int
vol_transfer(const char *src, const char *dst, const char *state,
    struct snapstore *ss, struct catalog *target,
    const struct catalog *base, int rflags, uint64_t rblock,
    const struct sync_opts *o, struct sync_result *res,
    struct vol_stats *sst, struct as_err *err)
{
	struct vol_recv_result *rr;
	struct vol_send_opts so;
	struct vol_save vs;
	struct pace pace;
	uint64_t rguid = 0, roff = 0;
	int rc;

	if (rblock > 0) {
		rguid = target->hdr.guid;
		roff = rblock * target->hdr.block_size;
	}
	memset(&so, 0, sizeof(so));
	so.flags = VOL_SEND_LIVE;
	so.block_size = o->block_size;
	vs.ss = ss;
	vs.target = target;
	so.before_end = save_pending;
	so.checkpoint = save_checkpoint;
	so.arg = &vs;
	so.resume_block = rblock;
	sync_pace_init(&pace, o, base == NULL && o->remote != NULL &&
	    o->remote->progress != PROGRESS_NONE ? copy_total(src, roff) : 0);
	if (pace_active(&pace)) {
		so.paced = copy_paced;
		so.pace_arg = &pace;
	}
	rr = xcalloc(1, sizeof(*rr));
	rc = vol_copy(src, target, base, dst, state, rflags, rguid, roff, &so,
	    sst, rr, err);
	pace_finish(&pace);
	res->recovered |= rr->recovered;
	free(rr);
	return rc;
}

/* A volume endpoint: vol:PATH, or a remote URL whose path is /vol:PATH. */
static int
is_vol(const struct endpoint *ep)
{
	return ep->kind == EP_VOL || (endpoint_is_remote(ep) &&
	    strncmp(ep->path, "/vol:", 5) == 0);
}

/* The pushing sender: the live send, pending saved before END. */
struct push_send {
	const char		*src;
	struct catalog		*target;
	const struct catalog	*base;
	uint32_t		 block_size;
	uint64_t		 resume_block;
	struct vol_save		 vs;
	struct vol_stats	 st;
};

static int
push_send(void *arg, int fd, struct as_err *err)
{
	struct push_send *p = arg;
	struct vol_send_opts so;

	memset(&so, 0, sizeof(so));
	so.flags = VOL_SEND_LIVE;
	so.block_size = p->block_size;
	so.before_end = save_pending;
	so.checkpoint = save_checkpoint;
	so.arg = &p->vs;
	so.resume_block = p->resume_block;
	return vol_send(p->src, p->target, p->base, fd, &so, &p->st, err);
}

/* Push: step 5 towards a server. */
static int
vol_push(struct remote *r, const char *src, struct snapstore *ss,
    struct catalog *target, const struct catalog *base, int force,
    uint64_t rblock, const struct sync_opts *o, struct sync_result *res,
    struct vol_stats *sst, struct as_err *err)
{
	struct push_send ps;
	struct xfer_src xs;
	struct remote_xfer x;
	int rc;

	memset(&ps, 0, sizeof(ps));
	ps.src = src;
	ps.target = target;
	ps.base = base;
	ps.block_size = o->block_size;
	ps.resume_block = rblock;
	ps.vs.ss = ss;
	ps.vs.target = target;
	memset(&xs, 0, sizeof(xs));
	xs.fd = -1;
	xs.send = push_send;
	xs.send_arg = &ps;
	xs.target = target;
	xs.base = base;
	rc = remote_push_resume(r, &xs, force, rblock > 0 ? target->hdr.guid :
	    0, rblock * target->hdr.block_size, &x, err);
	*sst = ps.st;
	res->wire_bytes = x.wire_bytes;
	return rc;
}

/* Pull: the source is a server's volume, the destination local. */
static int
vol_pull(const struct endpoint *se, const struct endpoint *de,
    const struct sync_opts *o, struct sync_result *res, struct as_err *err)
{
	struct remote_opts ro;
	struct remote *r = NULL;
	struct remote_xfer x;
	struct sync_vol_recv va;
	struct proto_snap *v = NULL;
	struct vol_partial part;
	char *state = NULL, *dst_abs = NULL, *id = NULL;
	uint64_t held = 0;
	size_t n = 0;
	int rc = -1, x2;

	res->remote = 2;
	memset(&x, 0, sizeof(x));
	memset(&part, 0, sizeof(part));
	if ((state = snapstore_state_dir(o->state_dir, err)) == NULL ||
	    (dst_abs = snapstore_abspath(de->path, err)) == NULL)
		goto out;
	if (access(dst_abs, F_OK) == 0) {
		if ((x2 = vol_recover(dst_abs, state, err)) == -1) {
			as_err_prefix(err, "recover '%s'", de->path);
			goto out;
		}
		res->recovered = x2;
		if (vol_held(dst_abs, state, &held, NULL, err) == -1 ||
		    vol_partial(dst_abs, state, &part, err) == -1)
			goto out;
	}
	memset(&ro, 0, sizeof(ro));
	if (o->remote != NULL)
		ro = *o->remote;
	if ((r = remote_open(se, &ro, err)) == NULL)
		goto out;
	if (sync_pull_agree(r, se, de, o->flags, "vol:", dst_abs, &held, &v,
	    &n, &id, err) == -1)
		goto out;
	/*
	 * A cut pull of a snapshot from what dst still holds: ask the
	 * server to continue it at dst's checkpoint (it answers where, or
	 * sends a new snapshot, and the receiver then forgets the cut one).
	 */
	memset(&va, 0, sizeof(va));
	va.state = state;
	if (part.target_guid != 0 && part.base_guid == held) {
		va.resume_guid = part.target_guid;
		va.resume_off = part.offset;
	}
	rc = remote_pull_resume(r, held, id, dst_abs, o->flags & SYNC_FORCE ?
	    DIR_RECV_FORCE : 0, sync_vol_receive, &va, &va.resume_guid,
	    &va.resume_off, &x, err);
	sync_pull_result(&x, v, n, res);
	res->resumed = x.resumed;
	res->send.entries_sent = 1;
	res->send.data_bytes = x.st.data_bytes;
	res->send.stream_bytes = x.raw_bytes;
out:
	remote_close(r);
	free(v);
	free(id);
	free(state);
	free(dst_abs);
	return rc;
}

/* What the destination holds now: local, or asked of the server. */
static int
vol_dest_held(struct remote *r, const char *dst_abs, const char *state,
    int *recovered, uint64_t *held, struct vol_partial *p,
    struct as_err *err)
{
	int x;

	*held = 0;
	memset(p, 0, sizeof(*p));
	if (r != NULL)
		return remote_hold_partial(r, held, recovered, &p->target_guid,
		    &p->offset, err) == -1 ? -1 : 0;
	if (access(dst_abs, F_OK) != 0)
		return 0;
	if ((x = vol_recover(dst_abs, state, err)) == -1)
		return -1;
	if (recovered != NULL)
		*recovered = x;
	if (vol_held(dst_abs, state, held, NULL, err) == -1)
		return -1;
	return vol_partial(dst_abs, state, p, err) == -1 ? -1 : 0;
}

/*
 * Can the cut transfer that a destination holds part of (snapshot pguid,
 * durable below poff) resume?  See sync.h.
 */
uint64_t
sync_vol_resume_point(struct snapstore *ss, const struct snap_dest *rec,
    uint64_t pguid, uint64_t poff, uint64_t held, const char *src,
    struct catalog *target)
{
	struct catalog c;
	struct as_err e;
	uint64_t size, rb;
	int is_blk;

	if (pguid == 0 || rec->pending[0] == '\0')
		return 0;
	catalog_init(&c);
	if (snapstore_load_pending(ss, rec->pending, &c, &e) == -1)
		return 0;
	rb = 0;
	/*
	 * A checkpoint's catalog has hashes for its first ino blocks; one
	 * that before_end saved (ino 0) for all of them: the cut came after
	 * the sender had written its whole stream into the transport's
	 * buffers, which hold megabytes.
	 */
	if (c.n == 1 && c.ents[0].ino == 0)
		c.ents[0].ino = c.ents[0].nblocks;
	if (c.hdr.guid == pguid && c.hdr.kind == AS_KIND_VOL &&
	    c.hdr.base_guid == held && c.n == 1 && c.ents[0].ino > 0 &&
	    c.hdr.block_size != 0 &&
	    vol_probe(src, &size, &is_blk, &e) == 0 && size == c.ents[0].size)
		rb = poff / c.hdr.block_size < c.ents[0].ino ?
		    poff / c.hdr.block_size : c.ents[0].ino;
	if (rb == 0) {
		catalog_release(&c);
		return 0;
	}
	catalog_release(target);
	*target = c;
	return rb;
}

int
sync_run_vol(const struct endpoint *se, const struct endpoint *de,
    const struct sync_opts *o, struct sync_result *res, struct as_err *err)
{
	struct snapstore ss;
	struct snap_dest rec;
	struct catalog base, target;
	struct vol_stats sst;
	struct remote_opts ro;
	struct remote *r = NULL;
	struct vol_partial part;
	struct as_err e2;
	char *state = NULL, *src_abs = NULL, *dst_abs = NULL;
	const char *dkey;
	uint64_t held = 0, now_guid, size, rblock = 0;
	int64_t t0;
	int rc = -1, have_base = 0, tr, is_blk;

	t0 = vnow_ns(CLOCK_MONOTONIC);
	memset(&ss, 0, sizeof(ss));
	memset(&rec, 0, sizeof(rec));
	memset(&sst, 0, sizeof(sst));
	ss.lock_fd = -1;
	catalog_init(&base);
	catalog_init(&target);
	if (!is_vol(se) || !is_vol(de)) {
		as_err_set(err, AS_E_USAGE, 0, "'%s' -> '%s': a volume "
		    "replicates to a volume: name both sides vol:PATH (or "
		    "URL/vol:PATH)", se->spec, de->spec);
		goto out;
	}
	if (endpoint_is_remote(se) && endpoint_is_remote(de)) {
		as_err_set(err, AS_E_USAGE, 0, "'%s' and '%s' are both "
		    "remote: one side of a sync must be local", se->spec,
		    de->spec);
		goto out;
	}
	if (endpoint_is_remote(se)) {
		rc = vol_pull(se, de, o, res, err);
		goto out;
	}
	if ((state = snapstore_state_dir(o->state_dir, err)) == NULL)
		goto out;
	if (vol_probe(se->path, &size, &is_blk, err) == -1)
		goto out;
	if ((src_abs = snapstore_abspath(se->path, err)) == NULL)
		goto out;
	if (endpoint_is_remote(de)) {
		res->remote = 1;
		dkey = de->spec;
	} else {
		if ((dst_abs = snapstore_abspath(de->path, err)) == NULL)
			goto out;
		if (strcmp(src_abs, dst_abs) == 0) {
			as_err_set(err, AS_E_USAGE, 0, "source and destination "
			    "are the same volume '%s'", src_abs);
			goto out;
		}
		dkey = dst_abs;
	}
	if (snapstore_open(&ss, state, src_abs, 1, err) == -1 ||
	    snapstore_lock(&ss, err) == -1)
		goto out;
	if (res->remote) {
		memset(&ro, 0, sizeof(ro));
		if (o->remote != NULL)
			ro = *o->remote;
		if ((r = remote_open(de, &ro, err)) == NULL)
			goto out;
	}

	/* 1. the destination */
	if (vol_dest_held(r, dst_abs, state, &res->recovered, &held, &part,
	    err) == -1) {
		if (r == NULL)
			as_err_prefix(err, "recover '%s'", de->path);
		goto out;
	}

	/*
	 * 2. a previous sync to it that did not finish: resumed where the
	 * destination's last checkpoint is, or settled
	 */
	if (snapstore_dest_get(&ss, dkey, &rec, err) == -1)
		goto out;
	rblock = sync_vol_resume_point(&ss, &rec, part.target_guid,
	    part.offset, held, src_abs, &target);
	if (rblock == 0 && sync_settle(&ss, dkey, held, &rec, res,
	    err) == -1)
		goto out;

	/* 3. the base */
	if (held != 0) {
		have_base = snapstore_load_guid(&ss, held, &base, err);
		if (have_base == -1)
			goto out;
		if (have_base == 1 && base.hdr.kind != AS_KIND_VOL) {
			as_err_set(err, AS_E_CONFLICT, 0, "snapshot '%s' of "
			    "'%s' is not a volume snapshot", base.hdr.name,
			    se->spec);
			goto out;
		}
		if (have_base == 0 && !(o->flags & SYNC_FORCE)) {
			as_err_set(err, AS_E_CONFLICT, 0, "no common snapshot: "
			    "'%s' holds %016" PRIx64 " which '%s' does not "
			    "have; use -F for a full resend", de->spec, held,
			    se->spec);
			goto out;
		}
	}
	res->full = !have_base;
	if (have_base) {
		res->base_guid = base.hdr.guid;
		snprintf(res->base_name, sizeof(res->base_name), "%s",
		    base.hdr.name);
	}

	/* 4. the new snapshot's header; its blocks come with the send */
	if (rblock > 0) {
		now_guid = target.hdr.guid;
		res->guid = now_guid;
		res->resumed = rblock * target.hdr.block_size;
		snprintf(res->name, sizeof(res->name), "%s", target.hdr.name);
		goto transfer;
	}
	target.hdr.time_ns = vnow_ns(CLOCK_REALTIME);
	if (snapstore_auto_name(&ss, target.hdr.time_ns, target.hdr.name,
	    sizeof(target.hdr.name), err) == -1)
		goto out;
	target.hdr.guid = now_guid = snap_guid_new();
	target.hdr.base_guid = have_base ? base.hdr.guid : 0;
	target.hdr.source = xstrdup(src_abs);
	res->guid = now_guid;
	snprintf(res->name, sizeof(res->name), "%s", target.hdr.name);
	snprintf(rec.pending, sizeof(rec.pending), "%s", target.hdr.name);
	rec.held_guid = held;
	if (snapstore_dest_put(&ss, dkey, &rec, err) == -1)
		goto out;

	/* 5. send and receive */
transfer:
	if (r != NULL)
		tr = vol_push(r, src_abs, &ss, &target, have_base ? &base :
		    NULL, (o->flags & SYNC_FORCE) != 0, rblock, o, res, &sst,
		    err);
	else
		tr = vol_transfer(src_abs, dst_abs, state, &ss, &target,
		    have_base ? &base : NULL, o->flags & SYNC_FORCE ?
		    VOL_RECV_FORCE : 0, rblock, o, res, &sst, err);
	res->scan.entries = 1;
	res->scan.files_read = 1;
	res->scan.bytes_read = sst.bytes_read;
	res->scan.notpit = (uint64_t)sst.changed;
	res->cloned = sst.cloned;
	res->scan_ns = vnow_ns(CLOCK_MONOTONIC) - t0;
	res->send.entries_sent = 1;
	res->send.files_read = 1;
	res->send.bytes_read = sst.bytes_read;
	res->send.data_bytes = sst.data_bytes;
	res->send.stream_bytes = sst.stream_bytes;
	if (tr == -1) {
		/*
		 * Settle now when the destination says what it holds; if it
		 * cannot tell (a server that went away), the next sync will.
		 */
		if (vol_dest_held(r, dst_abs, state, NULL, &held, &part,
		    &e2) != -1 && part.target_guid != now_guid) {
			/* (a resumable transfer keeps its pending catalog) */
			if (held == now_guid) {
				if (snapstore_commit_pending(&ss,
				    target.hdr.name, &e2) == 0) {
					rec.held_guid = held;
					rec.pending[0] = '\0';
					(void)snapstore_dest_put(&ss, dkey,
					    &rec, &e2);
				}
			} else if (snapstore_discard_pending(&ss,
			    target.hdr.name, &e2) == 0) {
				rec.held_guid = held;
				rec.pending[0] = '\0';
				(void)snapstore_dest_put(&ss, dkey, &rec,
				    &e2);
			}
		}
		goto out;
	}

	/*
	 * 6. commit, then prune.  The pending catalog saved just before END
	 * is target: a rename commits it (rewriting and syncing the whole
	 * catalog again cost as much as a checkpoint); without it, save.
	 */
	if ((tr != 0 || snapstore_commit_pending(&ss, target.hdr.name,
	    &e2) == -1) && snapstore_save(&ss, &target, SNAP_SAVE_REPLACE,
	    tr == 1 ? &e2 : err) == -1 && tr == 0)
		goto out;
	rec.held_guid = now_guid;
	rec.pending[0] = '\0';
	if (snapstore_dest_put(&ss, dkey, &rec, tr == 1 ? &e2 : err) ==
	    -1 && tr == 0)
		goto out;
	if (tr == 1)
		goto out;
	if (!(o->flags & SYNC_NO_PRUNE) &&
	    sync_prune(&ss, now_guid, &res->pruned, err) == -1) {
		as_err_prefix(err, "prune snapshots of '%s'", se->spec);
		goto out;
	}
	rc = 0;
out:
	res->total_ns = vnow_ns(CLOCK_MONOTONIC) - t0;
	remote_close(r);
	catalog_release(&base);
	catalog_release(&target);
	snap_dest_release(&rec);
	snapstore_release(&ss);
	free(state);
	free(src_abs);
	free(dst_abs);
	return rc;
}
