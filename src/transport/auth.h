/*
 * auth.h - the tcp:// handshake: mutual challenge-response on a PSK.
 *
 * It runs first on a fresh connection, before any protocol byte is read
 * or any receiver state is created (RELIABILITY.md I8).  Messages are
 * frames (frame.h layout: u32 len | u8 type | payload, little-endian) of
 * at most AUTH_MSG_MAX bytes; every length is checked before anything
 * else is parsed.
 *
 *   C -> S  HELLO   "ASYNC-AUTH" | u16 version | u32 flags | u8 idlen | id
 *                   | nonce_c[32] | u16 plen | client params
 *   S -> C  CHALLENGE u16 version | u32 flags (accepted) | nonce_s[32]
 *                   | u16 plen | server params | proof_s[32]
 *   C -> S  PROOF   proof_c[32]
 *   S -> C  RESULT  u8 status (0 ok)
 *
 *   transcript = HELLO payload | CHALLENGE payload without proof_s
 *   proof_s = HMAC-SHA256(key, "autosync-auth-v1 server" | transcript)
 *   proof_c = HMAC-SHA256(key, "autosync-auth-v1 client" | transcript
 *             | proof_s)
 *   session = HMAC-SHA256(key, "autosync-auth-v1 session" | transcript
 *             | proof_s)
 *
 * Both nonces are fresh (RAND_bytes), so a recorded handshake does not
 * replay; the role labels differ, so a handshake reflected back at its
 * sender fails; the flags and both params blobs are in the transcript, so
 * a man in the middle that strips a capability breaks both proofs.  Proofs
 * are compared with CRYPTO_memcmp.  A server that does not know the
 * client's key id answers with a proof under a random key, so an unknown
 * id and a wrong key look the same from outside.
 *
 * Downgrade: the server refuses a client whose flags lack any of its
 * opts.required; the client refuses a server whose accepted flags lack any
 * of its opts.required.
 *
 * Every failure is AS_E_AUTH with the one message "authentication failed"
 * (res->reason says why, for the server's debug log only, never for the
 * peer), except on the client: TIMEOUT when the server stops answering,
 * IO for a connection reset, and IO "server 'X' is busy" when the server
 * refused for load (auth_server_busy) - all three are worth a retry.
 * The whole handshake has one deadline (opts.timeout_ms, default
 * AUTH_TIMEOUT_MS); conn idle_ms is restored afterwards.
 *
 * After success the connection carries plain frames; integrity comes from
 * the stream's own checksums.  res->session is a key both sides share
 * for a later per-frame AEAD (AUTH_F_AEAD, not implemented yet: no server
 * accepts it).
 */
#ifndef AS_AUTH_H
#define AS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "transport/conn.h"
#include "transport/keys.h"

#define AUTH_MAGIC		"ASYNC-AUTH"
#define AUTH_VERSION		1
#define AUTH_MSG_MAX		1024
#define AUTH_PARAMS_MAX		256
#define AUTH_NONCE_LEN		32
#define AUTH_TIMEOUT_MS		10000
#define AUTH_FAILED		"authentication failed"

/* Frame types of the handshake (distinct from the protocol's). */
#define AUTH_T_HELLO		0xa1
#define AUTH_T_CHALLENGE	0xa2
#define AUTH_T_PROOF		0xa3
#define AUTH_T_RESULT		0xa4
#define AUTH_T_BUSY		0xa5

/* Capability flags, bound into the transcript. */
#define AUTH_F_AEAD		0x0001u	/* reserved: encrypted frames */
#define AUTH_F_KNOWN		0x0001u	/* all flags this version knows */

struct auth_opts {
	uint32_t	 flags;		/* client: asked for; server: offered */
	uint32_t	 required;	/* must be in the negotiated flags */
	const void	*params;	/* opaque, bound into the transcript */
	size_t		 paramslen;	/* <= AUTH_PARAMS_MAX */
	int		 timeout_ms;	/* whole handshake; 0: AUTH_TIMEOUT_MS */
};

struct auth_result {
	uint32_t	 flags;		/* negotiated: client & server flags */
	char		 key_id[KEY_ID_MAX + 1];	/* the client's key id */
	uint8_t		 peer_params[AUTH_PARAMS_MAX];
	size_t		 peer_paramslen;
	uint8_t		 session[32];	/* shared session secret */
	const char	*reason;	/* failure detail, for logs only */
	int		 guess;		/* server: a key was tried and failed
					 * (a wrong proof, or the client left
					 * after our challenge), not garbage,
					 * a cut hello or a timeout */
};

/*
 * Client side, with its key.  opts and res may be NULL (flags 0, no
 * params).  0 on success, -1 (err set as above).
 */
int	auth_client(struct conn *c, const struct psk *key,
	    const struct auth_opts *opts, struct auth_result *res,
	    struct as_err *err);
/*
 * Server side: the client's key id picks one of keys[0..nkeys-1]; on
 * success *matched (when not NULL) is its index.  opts and res may be
 * NULL.  0 on success, -1 with AUTH "authentication failed".
 */
int	auth_server(struct conn *c, const struct psk *keys, size_t nkeys,
	    size_t *matched, const struct auth_opts *opts,
	    struct auth_result *res, struct as_err *err);
/*
 * Tell a client that connected while the server is over its cap on
 * unauthenticated connections to come back later (one small write with a
 * short deadline, nothing read).  The caller then frees the conn.
 */
void	auth_server_busy(struct conn *c);

#endif
