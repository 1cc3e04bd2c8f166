/*
 * proto.h - the protocol between an active side (the CLI's sync, which
 * decides what happens) and a passive side (autosync serve, which only
 * answers), as in zrepl.  doc/autosync-protocol.md is the normative text
 * and names the same fields.
 *
 * Every message is one frame (transport/frame.h).  Integers are
 * little-endian; a string is u16 length + bytes (no NUL inside).  The
 * decoders check every length and count against the frame before using
 * it, fill their output only on success, and reject trailing bytes
 * (RELIABILITY.md I4).
 *
 *   active                         passive
 *   HELLO            ------------>
 *                    <------------ HELLO_OK (or RESULT with the refusal)
 *   REQUEST HOLD     ------------>             push: what do you hold?
 *                    <------------ RESULT (HELD guid | EMPTY)
 *   REQUEST RECEIVE  ------------>             push
 *                    <------------ RESULT (go ahead, or refusal)
 *   DATA... END_DATA ------------>
 *                    <------------ RESULT (the receiver's outcome)
 *   REQUEST SNAPSHOTS ----------->             pull: what do you have?
 *                    <------------ SNAPLIST... (last one: more = 0)
 *   REQUEST SEND     ------------>             pull, with the held guid
 *                    <------------ RESULT (target, base), DATA... END_DATA
 *   COMMIT           ------------>             pull: what the dest holds
 *                    <------------ RESULT
 *   REQUEST REVERSE  ------------>             failback (below)
 *                    <------------ RESULT, then a catalog as DATA...
 *                                  END_DATA (one way or the other)
 *
 * A receiver that fails while data still flows says so at once (RESULT
 * from the passive side, COMMIT with ok = 0 from the active side) and
 * then discards DATA frames until END_DATA, so that the sender stops
 * early and reports the receiver's error, not a broken pipe.
 */
#ifndef AS_PROTO_H
#define AS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "transport/conn.h"

#define PROTO_MAGIC		"ASPROTO\n"	/* 8 bytes in HELLO(_OK) */
#define PROTO_VERSION		1
#define PROTO_VERSION_MIN	1	/* oldest version this side speaks */

/* Feature bits offered in HELLO and chosen in HELLO_OK. */
#define PROTO_F_ZSTD		0x01u	/* ZDATA frames may be sent */
#define PROTO_F_RESUME		0x02u	/* reserved: resumable streams */
#define PROTO_F_KEEPALIVE	0x04u	/* KEEPALIVE frames from a busy side */
#define PROTO_F_KNOWN		(PROTO_F_ZSTD | PROTO_F_KEEPALIVE)

/*
 * How often a side that is busy with nothing to send says it is still
 * there (a receiver committing a large copy, a server scanning a large
 * tree or waiting for a busy destination, a sender before its first
 * byte: each can outlast the peer's idle timeout): KEEPALIVE frames,
 * well inside the shortest idle timeout (--timeout 1).
 */
#define PROTO_KEEPALIVE_MS	400

#define PROTO_ROLE_ACTIVE	1
#define PROTO_ROLE_PASSIVE	2

/* Frame types. */
enum proto_type {
	PT_HELLO	= 1,
	PT_HELLO_OK	= 2,
	PT_REQUEST	= 3,
	PT_RESULT	= 4,
	PT_DATA		= 5,	/* raw stream bytes */
	PT_END_DATA	= 6,
	PT_COMMIT	= 7,
	PT_SNAPLIST	= 8,
	PT_ZDATA	= 9,	/* u32 raw length + one zstd frame */
	PT_KEEPALIVE	= 10,	/* empty: busy, still there (PROTO_F_KEEPALIVE) */
};

/* REQUEST operations. */
enum proto_op {
	OP_HOLD		= 1,	/* recover PATH and say what it holds */
	OP_SNAPSHOTS	= 2,	/* list the snapshots of dataset PATH */
	OP_RECEIVE	= 3,	/* receive the stream that follows into PATH */
	OP_SEND		= 4,	/* snapshot PATH and send from guid */
	/*
	 * Failback of a directory (service reverse, needs rw): without
	 * REQ_F_SOURCE, PATH is a source whose newest snapshot is guid and
	 * becomes a destination holding it (RESULT, then the server's
	 * catalog of guid as DATA... END_DATA); with it, PATH is a
	 * destination holding guid that becomes a source (RESULT GO, the
	 * client's catalog of guid as DATA... END_DATA, RESULT), and id
	 * names the destination that holds guid now.
	 */
	OP_REVERSE	= 5,
};

/* REQUEST flags. */
#define REQ_F_FORCE	0x01u	/* receive -F / sync -F */
#define REQ_F_RESUME	0x02u	/* RECEIVE: resume guid at id "resume:OFF" */
#define REQ_F_TREE	0x04u	/* SNAPSHOTS, SEND of a zfs: dataset or
				 * btrfs: subvolume: its children too
				 * (list; snapshot -r); RECEIVE of a
				 * btrfs: root: publish its children */
#define REQ_F_SOURCE	0x08u	/* REVERSE: PATH becomes a source */
#define REQ_F_NESTED	0x10u	/* HOLD, RECEIVE, SEND of a btrfs: tree:
				 * a subvolume nested below PATH, named by
				 * id ("REL"; SEND: "NAME/REL") */
#define REQ_F_SUBVOLS	0x20u	/* REVERSE of a btrfs: tree (with
				 * REQ_F_TREE): its nested subvolumes
				 * too, their lines in the blobs; a
				 * server older than it refuses it as an
				 * unknown flag, before anything */

/* RESULT flags. */
#define RES_F_HELD	0x01u	/* HOLD: PATH holds snapshot guid */
#define RES_F_EMPTY	0x02u	/* HOLD: PATH holds no snapshot (explicit) */
#define RES_F_FULL	0x04u	/* SEND: a full stream follows */
#define RES_F_RECOVERED	0x08u	/* HOLD: an interrupted receive repaired */
#define RES_F_PARTIAL	0x10u	/* HOLD: can resume base_guid at bytes */
#define RES_F_GO	0x20u	/* RECEIVE: send the stream now */

/* Bounds (checked on decode). */
#define PROTO_PATH_MAX		4095
#define PROTO_NAME_MAX		255
#define PROTO_MSG_MAX		(AS_ERR_MSGMAX - 1)
#define PROTO_CTRL_MAX		(64u << 10)	/* control frame payload */
#define PROTO_CHUNK		(256u << 10)	/* raw bytes per DATA frame */
#define PROTO_SNAPLIST_MAX	100000		/* snapshots in a listing */
#define PROTO_SNAPLIST_BATCH	128		/* per SNAPLIST frame */
#define PROTO_BLOB_MAX		(1u << 30)	/* a catalog sent whole */

struct proto_hello {
	uint16_t	version;	/* highest version the sender speaks */
	uint16_t	min_version;	/* lowest it accepts */
	uint32_t	features;	/* PROTO_F_* offered / chosen */
	uint8_t		role;		/* PROTO_ROLE_* of the sender */
	char		software[64];	/* "autosync 0.1.0", for messages */
};

struct proto_request {
	uint8_t		op;		/* OP_* */
	uint32_t	flags;		/* REQ_F_* */
	uint64_t	guid;		/* SEND: what the destination holds */
	int8_t		zstd_level;	/* SEND: zstd level asked for; 0 none */
	char		path[PROTO_PATH_MAX + 1];
	char		id[PROTO_PATH_MAX + 1];	/* SEND: destination's name */
};

struct proto_result {
	uint8_t		code;		/* enum as_errcode; 0: success */
	uint8_t		class;		/* enum as_errclass when code != 0 */
	uint32_t	flags;		/* RES_F_* */
	uint64_t	guid;		/* held / received / sent snapshot */
	uint64_t	base_guid;	/* SEND, RECEIVE: the stream's base */
	uint64_t	bytes;		/* stream bytes received or sent */
	int64_t		time_ns;	/* the snapshot's creation time */
	char		name[PROTO_NAME_MAX + 1];	/* its name */
	char		msg[PROTO_MSG_MAX + 1];		/* the error */
};

struct proto_end {
	uint8_t		status;		/* 0 complete, 1 the sender failed */
	uint8_t		code;		/* its enum as_errcode */
	uint64_t	bytes;		/* raw stream bytes sent */
	char		msg[PROTO_MSG_MAX + 1];
};

struct proto_commit {
	uint8_t		ok;		/* 1: the receiver committed */
	uint64_t	held_guid;	/* what the destination holds now */
	uint8_t		code;		/* ok == 0: the receiver's error */
	char		msg[PROTO_MSG_MAX + 1];
};

struct proto_snap {
	uint64_t	guid;
	uint64_t	base_guid;
	int64_t		time_ns;
	char		name[PROTO_NAME_MAX + 1];
};

/* Encoders: append the payload to out (reset first). */
void	proto_enc_hello(struct buf *out, const struct proto_hello *h);
void	proto_enc_request(struct buf *out, const struct proto_request *r);
void	proto_enc_result(struct buf *out, const struct proto_result *r);
void	proto_enc_end(struct buf *out, const struct proto_end *e);
void	proto_enc_commit(struct buf *out, const struct proto_commit *c);
/* A SNAPLIST frame of n snapshots; more: another frame follows. */
void	proto_enc_snaplist(struct buf *out, const struct proto_snap *v,
	    uint32_t n, int more);

/* Decoders: MALFORMED on any inconsistency, out untouched then. */
int	proto_dec_hello(struct proto_hello *h, const uint8_t *p, size_t len,
	    struct as_err *err);
int	proto_dec_request(struct proto_request *r, const uint8_t *p,
	    size_t len, struct as_err *err);
int	proto_dec_result(struct proto_result *r, const uint8_t *p, size_t len,
	    struct as_err *err);
int	proto_dec_end(struct proto_end *e, const uint8_t *p, size_t len,
	    struct as_err *err);
int	proto_dec_commit(struct proto_commit *c, const uint8_t *p, size_t len,
	    struct as_err *err);
/*
 * Append the snapshots of one SNAPLIST frame to *v (*n of them, *cap
 * allocated), at most PROTO_SNAPLIST_MAX in all; *more is set.
 */
int	proto_dec_snaplist(struct proto_snap **v, size_t *n, size_t *cap,
	    int *more, const uint8_t *p, size_t len, struct as_err *err);

/*
 * A blob (REVERSE: an encoded catalog) as DATA frames of at most
 * PROTO_CHUNK bytes, then END_DATA with its length; and the receiving
 * end: into out (reset first), at most max bytes (LIMIT beyond), a RESULT
 * instead is the peer's error, END_DATA must count what came.
 */
int	proto_send_blob(struct conn *c, const void *data, size_t len,
	    struct buf *scratch, struct as_err *err);
int	proto_recv_blob(struct conn *c, struct buf *out, size_t max,
	    struct buf *scratch, struct as_err *err);

/* A RESULT from an error (code 0 and flags when err is NULL or OK). */
void	proto_result_from_err(struct proto_result *r, const struct as_err *e);
/* The error a failed RESULT carries, "PEER: msg"; returns -1. */
int	proto_result_to_err(const struct proto_result *r, const char *peer,
	    struct as_err *err);

/* Send one message (encode into scratch, then frame_send). */
int	proto_send_hello(struct conn *c, uint8_t type,
	    const struct proto_hello *h, struct buf *scratch,
	    struct as_err *err);
int	proto_send_request(struct conn *c, const struct proto_request *r,
	    struct buf *scratch, struct as_err *err);
int	proto_send_result(struct conn *c, const struct proto_result *r,
	    struct buf *scratch, struct as_err *err);
int	proto_send_error(struct conn *c, const struct as_err *e,
	    struct buf *scratch, struct as_err *err);
int	proto_send_end(struct conn *c, const struct proto_end *e,
	    struct buf *scratch, struct as_err *err);
int	proto_send_commit(struct conn *c, const struct proto_commit *cm,
	    struct buf *scratch, struct as_err *err);
/* One KEEPALIVE frame (empty). */
int	proto_send_keepalive(struct conn *c, struct as_err *err);
/*
 * Until fd (a receiving child's report pipe) is readable, a KEEPALIVE
 * to the peer every PROTO_KEEPALIVE_MS.  Best effort: a connection
 * that fails here fails again, and is reported, when the answer is sent.
 */
void	proto_keepalive_until(struct conn *c, int fd);

/*
 * Receive the next frame, which must be of type want (or a RESULT, which
 * is decoded into *res when res is not NULL and returned as 1).  Returns
 * 0 with the payload in *payload, 1 for a RESULT, -1 on error (an
 * unexpected type is MALFORMED naming both).  KEEPALIVE frames before it
 * are taken and dropped: each one is progress, so the idle timeout
 * starts again with it.
 */
int	proto_expect(struct conn *c, uint8_t want, struct buf *payload,
	    struct proto_result *res, struct as_err *err);

/*
 * Engines.  A request path names its dataset's engine by a prefix:
 * "vol:/srv/vm.img" is a volume, "zfs:tank/a" a ZFS dataset,
 * "btrfs:/mnt/p/s" a btrfs subvolume, anything else a directory.
 * Returns the prefix's length (4 for "vol:"), 0 for a directory.
 */
size_t	proto_engine_prefix(const char *path);

/* Name of a frame type, for messages ("HELLO", "type 77"). */
const char *proto_type_name(uint8_t type, char *buf, size_t bufsz);

/*
 * The active side's handshake: send HELLO offering features, read the
 * peer's HELLO_OK and set *chosen.  Anything else is a clear error
 * naming the peer: printable bytes before the protocol ("'host' printed
 * 'Welcome...' before the autosync protocol: a login banner or a shell
 * start-up file?"), an early close, a refusal, a version mismatch.
 */
int	proto_client_hello(struct conn *c, uint32_t features,
	    uint32_t *chosen, struct as_err *err);
/*
 * The passive side's: read HELLO, answer HELLO_OK with the features both
 * sides know (limited to allowed), or a RESULT refusing the version.
 */
int	proto_server_hello(struct conn *c, uint32_t allowed,
	    uint32_t *chosen, struct as_err *err);

#endif
