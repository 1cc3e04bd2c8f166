/*
 * remote.h - replication over a connection: the active side's push and
 * pull (remote_*), and the stream pumps that both sides share (xfer_*).
 *
 * Opening a remote (remote_open) connects the transport named by the
 * endpoint and runs the protocol greeting:
 *
 *   ssh://  spawns $AUTOSYNC_SSH (default "ssh") from an argv vector,
 *           never a shell string:
 *             ssh [-p PORT] [-l USER] -- HOST autosync serve --stdio
 *           ("autosync" is $AUTOSYNC_REMOTE when set).  Paths travel
 *           inside the protocol, never on the ssh command line, so no
 *           quoting can break.  An ssh that exits 127 before the
 *           greeting means autosync is not installed there (NOTFOUND);
 *           255 is ssh's own failure (IO).
 *   tcp://  connects and runs the PSK handshake (auth.h) with --key.
 *   tls://  connects and runs TLS 1.3 with --cert, --key and --ca.
 *
 * Every read and write has the idle deadline (--timeout).
 *
 * The pumps move one stream over the connection as DATA (or, when zstd
 * was negotiated, ZDATA) frames of at most PROTO_CHUNK raw bytes,
 * followed by END_DATA:
 *
 *   xfer_send  runs dir_send in a thread writing into a pipe (or reads a
 *              caller's descriptor) and pumps pipe -> frames, honouring
 *              the rate limit by poll timeouts (no sleeping), watching
 *              the connection for the receiver's early failure;
 *   xfer_recv  forks a child that runs dir_receive on a pipe and pumps
 *              frames -> pipe; the receiver's own error is what it
 *              reports.  Decompression is bounded by PROTO_CHUNK.
 */
#ifndef AS_REMOTE_H
#define AS_REMOTE_H

#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "driver/dir.h"
#include "format/catalog.h"
#include "repl/endpoint.h"
#include "repl/proto.h"
#include "transport/conn.h"
#include "transport/progress.h"
#include "transport/ratelimit.h"

/*
 * The size (F_SETPIPE_SZ) of the pipes a transfer runs through: the
 * pumps' (xfer_send's, a local ZFS step's), and those to ssh and from
 * sshd (ssh moves 32 KiB at a time; with the default 64 KiB both ends
 * kept waking each other).
 */
#define REMOTE_PIPE_SIZE	(1 << 20)

/* What the CLI's transport options say. */
struct remote_opts {
	const char	*key_file;	/* tcp: PSK file; tls: private key */
	const char	*cert_file;	/* tls: own certificate */
	const char	*ca_file;	/* tls: CA that signed the server's */
	int		 idle_ms;	/* --timeout; 0: CONN_IDLE_DEFAULT_MS */
	int		 zstd_level;	/* 0: no compression */
	uint64_t	 rate;		/* bytes/s on the wire; 0: unlimited */
	enum progress_mode progress;	/* on stderr */
	/*
	 * When not NULL: the rate limit as it is now (bytes/s, 0:
	 * unlimited; UINT64_MAX: unchanged), read by the pumps before each
	 * chunk so that a service's changed rate_limit takes effect on the
	 * running transfer (runner_rate_live).
	 */
	uint64_t	(*rate_live)(void);
};

/*
 * The work of xfer_recv's receiving child: apply the stream on in_fd to
 * dest (the dir engine: dir_receive).  Other engines (vol:, ...) give
 * their own and report in the same result struct.
 */
typedef int	(*xfer_recv_fn)(void *arg, const char *dest, int in_fd,
		    int rflags, struct dir_recv_result *res,
		    struct as_err *err);

/* Options of one transfer (both sides). */
struct xfer_opts {
	uint32_t	 features;	/* negotiated PROTO_F_* */
	int		 zstd_level;	/* sender: > 0 compresses (if ZSTD) */
	struct ratelimit *rl;		/* NULL: unlimited */
	uint64_t	(*rate_live)(void); /* remote_opts.rate_live (rl set) */
	struct progress	*prog;		/* NULL: none */
	xfer_recv_fn	 receiver;	/* NULL: dir_receive */
	void		*receiver_arg;
};

/* What the sender pumps. */
struct xfer_src {
	const char	*root;		/* dir_send: the live tree */
	struct catalog	*target;	/* dir_send: target (updated, LIVE) */
	const struct catalog *base;	/* dir_send: base or NULL */
	int		 sflags;	/* dir_send flags */
	uint64_t	 resume_pos;	/* dir_send_resume's position, or 0 */
	int		 fd;		/* >= 0: pump this descriptor instead */
	/*
	 * When not NULL: run this in the sender's thread instead of
	 * dir_send (another engine's sender); it writes the stream to fd.
	 */
	int		(*send)(void *arg, int fd, struct as_err *err);
	void		*send_arg;
	/*
	 * dir_send's hook (dir_send_hook): run in the sender's thread once
	 * everything but the END record is in the stream, so that the peer
	 * cannot commit before it returned; -1 fails the send without END.
	 * A push saves its pending catalog there, with the hashes the send
	 * computed.
	 */
	int		(*before_end)(void *arg, struct as_err *err);
	void		*before_end_arg;
	/*
	 * Run in the sender's thread after dir_send succeeded and before
	 * the stream is closed (the server's pull re-saves its pending
	 * catalog there).
	 */
	int		(*after)(void *arg, struct as_err *err);
	void		*after_arg;
};

/* Outcome of xfer_send. */
struct xfer_sent {
	int		 sender_rc;	/* dir_send's return (0, -1) */
	struct as_err	 serr;		/* its error */
	struct dir_stats st;		/* its counters */
	int		 after_rc;	/* after()'s return */
	struct as_err	 aerr;		/* its error */
	uint64_t	 raw_bytes;	/* stream bytes pumped */
	uint64_t	 wire_bytes;	/* frame payload bytes sent */
	int		 stopped;	/* the peer sent early_type first */
	uint8_t		 early_type;
	struct buf	 early;		/* its payload (caller releases) */
};

/*
 * Pump a stream to the peer, then END_DATA (status 1 with the sender's
 * error when dir_send failed).  When the peer sends a frame before
 * END_DATA went out (a receiver that failed), the sender is stopped,
 * END_DATA with status 1 is sent, and out->stopped is set with the frame
 * in out->early.  Returns 0, or -1 when the connection failed (err).
 */
int	xfer_send(struct conn *c, const struct xfer_opts *o,
	    const struct xfer_src *s, struct xfer_sent *out,
	    struct as_err *err);

/*
 * Called by xfer_recv once when the receiver failed while data still
 * flows, so that the sender hears it at once: the passive side sends a
 * RESULT, the active side a COMMIT with ok = 0.
 */
typedef int	(*xfer_fail_fn)(struct conn *c, void *arg,
		    const struct as_err *rerr, struct as_err *err);

/* Outcome of xfer_recv. */
struct xfer_rcvd {
	int		 recv_rc;	/* dir_receive's return (0, -1) */
	struct as_err	 rerr;		/* its error */
	struct dir_recv_result res;
	struct proto_end end;		/* the sender's END_DATA */
	uint64_t	 raw_bytes;	/* stream bytes received */
	int		 told;		/* fail() was called */
};

/*
 * Receive a stream from the peer into dest (dir_receive with rflags in
 * a child process).  Returns 0 when the exchange completed (see
 * out->recv_rc), -1 when the connection failed (err; the receiver was
 * stopped and left dest as it was).
 */
int	xfer_recv(struct conn *c, const struct xfer_opts *o, const char *dest,
	    int rflags, xfer_fail_fn fail, void *arg, struct xfer_rcvd *out,
	    struct as_err *err);

/* The active side. */
struct remote;

/* Connect to ep (a remote endpoint) and greet; NULL with err. */
struct remote	*remote_open(const struct endpoint *ep,
		    const struct remote_opts *o, struct as_err *err);
/*
 * Name another path (with its engine prefix, "zfs:vault/home/a") in the
 * requests that follow: an engine that replicates a tree of datasets
 * runs one exchange per dataset over one connection.
 */
void		 remote_set_path(struct remote *r, const char *path);
/* REQUEST flags (REQ_F_TREE) added to the requests that follow. */
void		 remote_set_flags(struct remote *r, uint32_t flags);
/*
 * The REQUEST id of the HOLD and RECEIVE requests that follow (NULL:
 * none); a btrfs: tree names a nested subvolume there (REQ_F_NESTED).
 * SEND takes its id as an argument, a resumed RECEIVE its own.
 */
void		 remote_set_id(struct remote *r, const char *id);
/* Close the connection and reap ssh. */
void		 remote_close(struct remote *r);
/* "host", "127.0.0.1:7010": for messages. */
const char	*remote_peer(const struct remote *r);

/*
 * Push step 1: recover ep's path on the server and read what it holds.
 * Returns 1 (*guid), 0 (explicitly nothing), -1.  *recovered is set when
 * an interrupted receive was repaired.
 */
int	remote_hold(struct remote *r, uint64_t *guid, int *recovered,
	    struct as_err *err);
/*
 * The same; *pguid and *poff (when pguid is not NULL) say which
 * interrupted transfer the destination can resume and where (RES_F_PARTIAL),
 * 0 when none.
 */
int	remote_hold_partial(struct remote *r, uint64_t *guid, int *recovered,
	    uint64_t *pguid, uint64_t *poff, struct as_err *err);

/* Outcome of a push or a pull. */
struct remote_xfer {
	int		 committed;	/* the destination holds the target */
	uint64_t	 guid;		/* target */
	uint64_t	 base_guid;
	char		 name[PROTO_NAME_MAX + 1];
	int		 full;
	struct dir_stats st;		/* sender's (push) / receiver's */
	uint64_t	 raw_bytes;
	uint64_t	 wire_bytes;
	uint64_t	 resumed;	/* pull: resumed at this byte, or 0 */
};

/*
 * Push: send the stream of s to ep's path (RECEIVE).  Returns 0 when
 * the server committed it, 1 when it committed but the local sender
 * reported an error afterwards (err), -1 with the error that explains
 * the failure (the receiver's when it failed first).
 */
int	remote_push(struct remote *r, const struct xfer_src *s, int force,
	    struct remote_xfer *x, struct as_err *err);
/*
 * The same, resuming the interrupted transfer of snapshot rguid at byte
 * roff (REQ_F_RESUME); rguid 0 is remote_push.
 */
int	remote_push_resume(struct remote *r, const struct xfer_src *s,
	    int force, uint64_t rguid, uint64_t roff, struct remote_xfer *x,
	    struct as_err *err);

/*
 * Pull step 1: the snapshots of ep's dataset on the server (SNAPSHOTS).
 * An empty list is what the server said explicitly.
 */
int	remote_snapshots(struct remote *r, struct proto_snap **v, size_t *n,
	    struct as_err *err);

/*
 * Pull: ask the server to snapshot ep's path and send it from held (0:
 * full), receive it into dst (dir_receive, rflags) and tell the server
 * what dst holds afterwards (COMMIT).  id names this destination in the
 * server's records.  Returns 0 when dst committed it, -1.
 */
int	remote_pull(struct remote *r, uint64_t held, const char *id,
	    const char *dst, int rflags, struct remote_xfer *x,
	    struct as_err *err);
/* The same with another engine's receiver (xfer_recv_fn) for dst. */
int	remote_pull_with(struct remote *r, uint64_t held, const char *id,
	    const char *dst, int rflags, xfer_recv_fn fn, void *fn_arg,
	    struct remote_xfer *x, struct as_err *err);
/*
 * The same, asking to resume the interrupted transfer of snapshot *rguid
 * that dst holds durably below byte *roff (SEND with REQ_F_RESUME; *rguid
 * 0: an ordinary pull).  Before the stream is received (so before fn
 * runs: fn_arg may point at them) *rguid and *roff are set to where the
 * server resumes (RES_F_PARTIAL: that snapshot, at a block boundary at or
 * below *roff), or both to 0 when it sends a new snapshot from the start.
 */
int	remote_pull_resume(struct remote *r, uint64_t held, const char *id,
	    const char *dst, int rflags, xfer_recv_fn fn, void *fn_arg,
	    uint64_t *rguid, uint64_t *roff, struct remote_xfer *x,
	    struct as_err *err);

/*
 * Failback (REQUEST REVERSE, directories, volumes and zfs:; the server
 * needs rw on the path).  demote: the server's path, a source whose newest snapshot is
 * guid, becomes a destination holding it (dst, the local destination
 * that holds guid, names it in messages); it refuses (CONFLICT) when the
 * path changed since, unless force: rv says how it differs, g
 * (initialised by the caller) gets the server's catalog of guid (for its
 * block hashes).  promote: the server's path, a destination holding
 * guid, becomes a source whose newest snapshot is guid, with the hashes
 * of g (the local catalog of guid); its records say that the
 * destination id (a pull's, sync_pull_id) holds guid.  g NULL: a zfs:
 * path (REQ_F_TREE from remote_set_flags: its tree), which keeps its
 * own snapshots: no catalog travels either way; a forced demote rolls
 * the path back to guid on the server.
 */
struct remote_reverse {
	uint64_t	 ndiff;				/* differences */
	char		 first[PROTO_MSG_MAX + 1];	/* the first one */
	char		 name[PROTO_NAME_MAX + 1];	/* guid's name */
};
int	remote_reverse_demote(struct remote *r, uint64_t guid, int force,
	    const char *dst, struct remote_reverse *rv, struct catalog *g,
	    struct as_err *err);
int	remote_reverse_promote(struct remote *r, uint64_t guid,
	    const char *id, const struct catalog *g, struct as_err *err);
/*
 * The same request for an engine without catalogs (btrfs: S0's line,
 * failback_btrfs.h).  source_blob: the server's path, holding guid,
 * becomes a source recorded as held by id, and *in gets its blob (at
 * most inmax bytes; res: the RESULT); with out (a tree, REQ_F_SUBVOLS
 * from remote_set_flags) the server answers GO first and takes out
 * before it does anything.  dest_blob: the server's path, whose newest
 * snapshot is guid, is checked (refused when changed since, unless
 * force; go: the GO with bytes = differences and msg = the first),
 * takes the blob out and becomes a destination (done, when not NULL:
 * the last RESULT); id names the client's side.
 */
int	remote_reverse_source_blob(struct remote *r, uint64_t guid,
	    const char *id, const void *out, size_t outlen, struct buf *in,
	    size_t inmax, struct proto_result *res, struct as_err *err);
int	remote_reverse_dest_blob(struct remote *r, uint64_t guid, int force,
	    const char *id, const void *out, size_t len,
	    struct proto_result *go, struct proto_result *done,
	    struct as_err *err);

/*
 * Tune a socket conn (no-op for pipes): TCP_NODELAY, and TCP_USER_TIMEOUT
 * at c->idle_ms so that unacknowledged data counts as no progress.
 */
void	xfer_tune_socket(struct conn *c);

/* Estimated stream size for progress: file bytes that differ. */
uint64_t xfer_estimate(const struct catalog *target,
	    const struct catalog *base);

#endif
