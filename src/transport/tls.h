/*
 * tls.h - TLS 1.3 (only) over a connected socket, OpenSSL 3.
 *
 * Mutual authentication with certificates: both sides present a
 * certificate and verify the peer's against one CA file (keygen's
 * ca.crt).  The server learns who the client is: the certificate's
 * subject CN and the SHA-256 fingerprint of its DER encoding (struct
 * tls_peer), which serve's config maps to roots.
 *
 * Host name check (client side): with cfg.expect_name set, the server's
 * certificate must carry that DNS name (SAN, or CN without SAN), as
 * X509_check_host does.  It is off by default because keygen's private
 * CA is the trust anchor: any certificate it signed is "the server" and
 * the host in the URL is often an IP or an alias.  Turn it on (the
 * hostname of tls://HOST) when the CA is shared by several servers.
 *
 * The handshake has its own deadline (timeout_ms, default
 * TLS_HANDSHAKE_TIMEOUT_MS); afterwards the conn's idle_ms applies.
 * Failed verification (wrong CA, expired, no client certificate, name
 * mismatch) is AUTH "TLS handshake with 'peer' failed: <reason>";
 * TIMEOUT and IO (reset, EOF) keep their classes.
 *
 * The conn ("tls" ops) reads and writes application data; `pending` is
 * SSL_pending, so a poll loop must not wait on rfd while pending > 0.
 * The socket is put in non-blocking mode; the ops return -1 with EAGAIN
 * when they need the socket readable; a write that needs the socket
 * readable (or a read that needs it writable) waits inside the op, bounded
 * by idle_ms.
 */
#ifndef AS_TLS_H
#define AS_TLS_H

#include <stddef.h>

#include "base/err.h"
#include "transport/conn.h"

#define TLS_HANDSHAKE_TIMEOUT_MS	10000

struct tls_config {
	const char	*ca_file;	/* PEM CA certificate(s), required */
	const char	*cert_file;	/* own PEM certificate, required */
	const char	*key_file;	/* own PEM private key, required */
	const char	*expect_name;	/* client: server's DNS name or NULL */
};

struct tls_peer {
	char	cn[256];		/* subject CN, escaped (log_escape) */
	char	fingerprint[65];	/* SHA-256 of the DER, lower hex */
};

struct tls_ctx;

/*
 * Load certificates and key, check the key matches the certificate, set
 * TLS 1.3 only and peer verification (the server requires a client
 * certificate).  server: 1 for the listening side.  NULL on error (IO or
 * AUTH, naming the file).  The key file must not be readable by others.
 */
struct tls_ctx	*tls_ctx_new(int server, const struct tls_config *cfg,
		    struct as_err *err);
void		 tls_ctx_free(struct tls_ctx *ctx);

/*
 * Run the handshake on fd (ownership taken: closed on failure too) and
 * return a "tls" conn, peer naming it in messages.  timeout_ms <= 0:
 * TLS_HANDSHAKE_TIMEOUT_MS.  who, when not NULL, gets the peer's identity.
 * The ctx must outlive the conn.
 */
struct conn	*tls_client(struct tls_ctx *ctx, int fd, const char *peer,
		    int timeout_ms, struct tls_peer *who, struct as_err *err);
struct conn	*tls_server(struct tls_ctx *ctx, int fd, const char *peer,
		    int timeout_ms, struct tls_peer *who, struct as_err *err);
/* Identity of the peer of a "tls" conn; -1 for another kind. */
int		 tls_conn_peer(const struct conn *c, struct tls_peer *who);

/* SHA-256 fingerprint (lower hex) of the certificate in a PEM file. */
int		 tls_cert_fingerprint(const char *path, char out[65],
		    struct as_err *err);

#endif
