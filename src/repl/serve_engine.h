/*
 * serve_engine.h - what "autosync serve" does for one kind of dataset.
 *
 * A request path names its engine by a prefix (proto_engine_prefix():
 * "vol:/srv/vm.img", "zfs:tank/a", "btrfs:/mnt/p/s"; no prefix is a
 * directory).  serve.c strips the prefix, passes the rest through the
 * access rules (serve_resolve: roots, rw, no symbolic links) and then
 * calls the engine's functions below; the protocol messages, the
 * confinement, the catalog bookkeeping of SEND (lock, settle, pending,
 * COMMIT, prune) and the stream pumps are the same for every engine.
 *
 * An engine joins by filling a struct serve_engine and adding it to the
 * table in serve.c.  Functions that do not apply may be NULL: a NULL
 * hold/receive refuses HOLD/RECEIVE (UNSUPPORTED), NULL source and
 * send_prepare refuse SNAPSHOTS/SEND.
 */
#ifndef AS_SERVE_ENGINE_H
#define AS_SERVE_ENGINE_H

#include <stdint.h>

#include "base/err.h"
#include "format/catalog.h"
#include "repl/proto.h"
#include "repl/remote.h"
#include "repl/snapstore.h"
#include "repl/sync.h"

/* The session, as an engine sees it. */
struct serve_ctx {
	const char	*state;		/* the server's state directory */
	int		 idle_ms;	/* the session's idle timeout */
	const char	*peer;		/* for messages */
	const struct proto_request *q;	/* HOLD: the request, else NULL */
};

/* RECEIVE: the receiving child's arg (xfer_recv_fn), for every engine. */
struct serve_recv {
	const char	*state;		/* the server's state directory */
	uint64_t	 resume_guid;	/* REQ_F_RESUME: this transfer... */
	uint64_t	 resume_off;	/* ... at this byte; else 0, 0 */
	int		 trusted;	/* the client's grant says "trusted" */
	uint32_t	 flags;		/* the request's REQ_F_* */
	const char	*id;		/* the request's id */
};

/* SEND: what send_prepare gets and fills. */
struct serve_send {
	const struct serve_ctx *x;
	struct snapstore *ss;		/* the source's catalogs (locked) */
	const char	*abs;		/* the source, absolute */
	const char	*spec;		/* the request path, for messages */
	const struct catalog *base;	/* the base, or NULL: full */
	uint32_t	 block_size;	/* base's, or the default */
	struct catalog	*target;	/* fill: guid, name, time, ... */
	struct sync_result *sr;		/* for the engine's counters */
	struct xfer_src	*xs;		/* fill: the sender */
	uint64_t	 estimate;	/* fill: stream bytes, for progress */
	void		*priv;		/* the engine's; free()d by serve */
	uint64_t	 resume_block;	/* send_resume: resume here, or 0
					   (a directory: the DIR_POS) */
};

struct serve_nsend;

struct serve_engine {
	const char	*prefix;	/* "vol:"; "" for directories */
	const char	*what;		/* "volume", for messages */
	/*
	 * 1: a request names a dataset ("zfs:tank/a"), not a path: access
	 * is by dataset prefix (serve_resolve_dataset), and hold sees
	 * whether the dataset exists (serve.c does not lstat it).
	 */
	int		 datasets;
	/*
	 * 1: RECEIVE only from a client whose grant says "trusted" (the
	 * engine's receiver does not validate streams: btrfs); refused
	 * with AUTH before GO otherwise.
	 */
	int		 trust;
	/*
	 * 1: hold, send_prepare and send_resume may run on a thread while
	 * serve keeps the client informed (KEEPALIVE): they fork nothing,
	 * and a child forked by a thread gets its parent-death signal when
	 * that thread ends (base/proc.h).
	 */
	int		 steps_on_thread;
	/*
	 * HOLD on an existing path: repair an interrupted receive
	 * (RES_F_RECOVERED) and say what it holds: RES_F_HELD with guid,
	 * name (and time_ns when known), or RES_F_EMPTY.  0, or -1.
	 */
	int		(*hold)(const struct serve_ctx *x, const char *path,
			    struct proto_result *res, struct as_err *err);
	/*
	 * RECEIVE: the receiving child's work (NULL: dir_receive); its arg
	 * is a struct serve_recv.  resumable: it takes REQ_F_RESUME (and
	 * hold reports RES_F_PARTIAL).
	 */
	xfer_recv_fn	 receive;
	int		 resumable;
	/* RECEIVE failed into a path that did not exist: tidy up */
	void		(*receive_failed)(const char *path);
	/* SNAPSHOTS, SEND: is path a source of this kind (else NOTFOUND) */
	int		(*source)(const char *path, struct as_err *err);
	/*
	 * SEND, after the base was found: the new snapshot's header (and
	 * content, for an engine that scans first) in s->target, the sender
	 * in s->xs.  The sender saves s->target as pending before the
	 * stream ends (SNAP_SAVE_PENDING), so that COMMIT can commit it.
	 */
	int		(*send_prepare)(struct serve_send *s,
			    struct as_err *err);
	/*
	 * An engine whose snapshots are native (zfs:, btrfs:) keeps no
	 * catalogs: SNAPSHOTS and SEND go to these instead of the
	 * snapstore bookkeeping above (source and send_prepare unused).
	 *
	 * list: the snapshots of path, oldest first, as proto_snap entries
	 * (*v allocated); rflags are the request's (REQ_F_TREE: the tree
	 * below path too; the entries' names are the engine's, see
	 * doc/autosync-protocol.md).
	 */
	int		(*list)(const struct serve_ctx *x, const char *path,
			    uint32_t rflags, struct proto_snap **v, size_t *n,
			    struct as_err *err);
	/*
	 * SEND: snapshot path (snap NULL) or take its existing snapshot
	 * snap, and fill ns: the RESULT that answers GO (flags, guid,
	 * base_guid from q->guid, name, time_ns, bytes) and the sender.
	 */
	int		(*nsend)(const struct serve_ctx *x, const char *path,
			    const char *snap, const struct proto_request *q,
			    struct serve_nsend *ns, struct as_err *err);
	/*
	 * COMMIT: the client says what its destination holds now; record
	 * it (for pruning) and prune.  Then nrelease, in every case after
	 * nsend succeeded.
	 */
	int		(*ncommit)(const struct serve_ctx *x,
			    struct serve_nsend *ns,
			    const struct proto_commit *cm, const char *id,
			    struct as_err *err);
	void		(*nrelease)(struct serve_nsend *ns);
	/*
	 * SEND with REQ_F_RESUME (resumable engines), before anything is
	 * settled: the destination (its record rec, holding s->base's GUID,
	 * or nothing) holds the cut transfer of snapshot pguid durably below
	 * byte off (a directory: position off, DIR_POS).  When that transfer
	 * can continue, load its pending catalog into s->target, set
	 * s->resume_block (> 0, at or below off; a directory: off itself,
	 * which the RESULT's bytes carry as is) and fill the rest as
	 * send_prepare does, and return 1; 0 when it cannot (serve settles
	 * and sends a new snapshot; the engine leaves s->target, s->xs and
	 * s->priv as it found them), -1.
	 */
	int		(*send_resume)(struct serve_send *s,
			    const struct snap_dest *rec, uint64_t pguid,
			    uint64_t off, struct as_err *err);
	/*
	 * REVERSE (failback) of an engine that keeps its own snapshots
	 * (zfs:): no catalog travels either way, so the whole request is
	 * this call and one RESULT.  Without REQ_F_SOURCE path, a source
	 * whose newest snapshot is q->guid, becomes a destination (refused
	 * when it changed since, unless REQ_F_FORCE, which rolls it back);
	 * with it, path, a destination holding q->guid, becomes a source
	 * and q->id is recorded as holding q->guid.  REQ_F_TREE: the tree
	 * below path too.  Fills res: guid, name, and (a new destination)
	 * in bytes the datasets that differed, in msg the first.  NULL:
	 * serve.c's own REVERSE (directories, vol:), or UNSUPPORTED.
	 */
	int		(*reverse)(const struct serve_ctx *x, const char *path,
			    const struct proto_request *q,
			    struct proto_result *res, struct as_err *err);
};

/* A native SEND in progress (the engine's nsend fills it). */
struct serve_nsend {
	struct proto_result res;	/* the GO answer */
	struct xfer_src	 xs;		/* the sender */
	void		*priv;		/* the engine's (nrelease frees) */
};

extern const struct serve_engine serve_engine_dir;	/* serve.c */
extern const struct serve_engine serve_engine_vol;	/* serve_vol.c */
extern const struct serve_engine serve_engine_zfs;	/* serve_zfs.c */
extern const struct serve_engine serve_engine_btrfs;	/* serve_btrfs.c */

#endif
