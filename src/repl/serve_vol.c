/*
 * serve_vol.c - the vol: engine of "autosync serve" (serve_engine.h):
 * image files and block devices named "vol:PATH" in a request.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/xmalloc.h"
#include "driver/vol.h"
#include "format/stream.h"
#include "repl/serve_engine.h"
#include "base/banned.h"

/*
 * A receive in progress holds the image's flock; say "busy" (CONFLICT, EWOULDBLOCK) rather than read a
 * record that is being written, so that serve waits for it.
 */
static int
vol_busy(const char *path, struct as_err *err)
{
	struct stat st;
	int fd, busy = 0;

	/*
	 * (A block device in use, mounted or not, is refused by the
	 * receive itself with the reason; no point waiting for it.)
	 */
	if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
		return 0;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) != -1) {
		busy = flock(fd, LOCK_SH | LOCK_NB) == -1 &&
		    errno == EWOULDBLOCK;
		close(fd);
	}
	if (busy)
		return as_err_set(err, AS_E_CONFLICT, EWOULDBLOCK, "volume "
		    "is busy: another receive holds it");
	return 0;
}

static int
vol_hold(const struct serve_ctx *x, const char *path,
    struct proto_result *res, struct as_err *err)
{
	struct vol_partial p;
	char name[256];
	uint64_t guid;
	int r;

	if (vol_busy(path, err) == -1)
		return -1;
	if ((r = vol_recover(path, x->state, err)) == -1)
		return -1;
	if (r == 1)
		res->flags |= RES_F_RECOVERED;
	if ((r = vol_held(path, x->state, &guid, name, err)) == -1)
		return -1;
	if (vol_partial(path, x->state, &p, err) == 1) {
		res->flags |= RES_F_PARTIAL;
		res->base_guid = p.target_guid;
		res->bytes = p.offset;
	}
	if (r == 1) {
		res->flags |= RES_F_HELD;
		res->guid = guid;
		snprintf(res->name, sizeof(res->name), "%s", name);
	} else
		res->flags |= RES_F_EMPTY;
	return 0;
}

static int
vol_receive_fn(void *arg, const char *dest, int in_fd, int rflags,
    struct dir_recv_result *res, struct as_err *err)
{
	const struct serve_recv *sr = arg;
	struct sync_vol_recv a;

	a.state = sr->state;
	a.resume_guid = sr->resume_guid;
	a.resume_off = sr->resume_off;
	return sync_vol_receive(&a, dest, in_fd, rflags, res, err);
}

/* Messages say what is wrong; serve.c names the source before them. */
static int
vol_source(const char *path, struct as_err *err)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return as_err_set(err, AS_E_NOTFOUND, errno, "%s", errno ==
		    ENOENT ? "does not exist" : strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return as_err_set(err, AS_E_NOTFOUND, 0, "is neither a block "
		    "device nor a regular file");
	return 0;
}

struct vol_sender {
	struct serve_send	*s;
	struct vol_stats	 st;
};

static int
save_pending(void *arg, struct as_err *err)
{
	struct vol_sender *v = arg;

	return snapstore_save(v->s->ss, v->s->target, SNAP_SAVE_PENDING, err);
}

/*
 * A resume checkpoint: the hashes read so far, so that a pull cut from
 * here on can resume (send_resume).
 */
static int
save_checkpoint(void *arg, const struct catalog *c, struct as_err *err)
{
	struct vol_sender *v = arg;

	return snapstore_save(v->s->ss, c, SNAP_SAVE_PENDING, err);
}

static int
vol_sender_run(void *arg, int fd, struct as_err *err)
{
	struct vol_sender *v = arg;
	struct vol_send_opts o;

	memset(&o, 0, sizeof(o));
	o.flags = VOL_SEND_LIVE;
	o.block_size = v->s->block_size;
	o.before_end = save_pending;
	o.checkpoint = save_checkpoint;
	o.resume_block = v->s->resume_block;
	o.arg = v;
	return vol_send(v->s->abs, v->s->target, v->s->base, fd, &o, &v->st,
	    err);
}

/* The sender of s->target (prepared, or a cut transfer's, resumed). */
static void
vol_sender_set(struct serve_send *s)
{
	struct vol_sender *v;

	v = xcalloc(1, sizeof(*v));
	v->s = s;
	s->priv = v;
	s->xs->send = vol_sender_run;
	s->xs->send_arg = v;
	s->xs->target = s->target;
	s->xs->base = s->base;
	s->xs->fd = -1;
}

/* A pull that was cut: continue it where the destination can. */
static int
vol_send_resume(struct serve_send *s, const struct snap_dest *rec,
    uint64_t pguid, uint64_t off, struct as_err *err)
{
	(void)err;
	if (s->base != NULL && s->base->hdr.kind != AS_KIND_VOL)
		return 0;
	s->resume_block = sync_vol_resume_point(s->ss, rec, pguid, off,
	    s->base != NULL ? s->base->hdr.guid : 0, s->abs, s->target);
	if (s->resume_block == 0)
		return 0;
	vol_sender_set(s);
	s->estimate = 0;
	return 1;
}

/* The snapshot is taken while it is sent: only its header now. */
static int
vol_send_prepare(struct serve_send *s, struct as_err *err)
{
	struct timespec ts;
	uint64_t size;
	int is_blk;

	if (s->base != NULL && s->base->hdr.kind != AS_KIND_VOL)
		return as_err_set(err, AS_E_CONFLICT, 0, "snapshot '%s' of "
		    "'%s' is not a volume snapshot", s->base->hdr.name,
		    s->spec);
	if (vol_probe(s->abs, &size, &is_blk, err) == -1)
		return -1;
	clock_gettime(CLOCK_REALTIME, &ts);
	s->target->hdr.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (snapstore_auto_name(s->ss, s->target->hdr.time_ns,
	    s->target->hdr.name, sizeof(s->target->hdr.name), err) == -1)
		return -1;
	s->target->hdr.guid = snap_guid_new();
	s->target->hdr.base_guid = s->base != NULL ? s->base->hdr.guid : 0;
	s->target->hdr.source = xstrdup(s->abs);
	vol_sender_set(s);
	/* a full stream carries every block (holes as HOLE records) */
	s->estimate = s->base == NULL ? size : 0;
	return 0;
}

const struct serve_engine serve_engine_vol = {
	.prefix		= "vol:",
	.what		= "volume",
	.hold		= vol_hold,
	.receive	= vol_receive_fn,
	.resumable	= 1,
	.receive_failed	= NULL,		/* vol_receive tidies up itself */
	.source		= vol_source,
	.send_prepare	= vol_send_prepare,
	.send_resume	= vol_send_resume,
};
