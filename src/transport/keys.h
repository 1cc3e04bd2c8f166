/*
 * keys.h - pre-shared keys for tcp:// and the files "autosync keygen" makes.
 *
 * A PSK file holds one line (a trailing newline is optional; '#' comment
 * lines and blank lines are skipped):
 *
 *	autosync-psk-v1 <id> <64 hex chars>
 *
 * <id> is 1..KEY_ID_MAX characters of [A-Za-z0-9._@-]; it names the key
 * in the handshake (not secret) and in the server's config.  The 32 bytes
 * are the secret.  A key file must not be readable or writable by group or
 * other (mode & 077 == 0): key_load refuses it otherwise.
 *
 * keygen_dir() writes into a directory (created 0700 when missing; files
 * are never overwritten: an existing file is an error):
 *
 *	psk.key		the PSK for tcp:// (0600); give a copy to the client
 *			and list it in the server's config (or --key)
 *	ca.crt		self-signed CA certificate: both sides verify the
 *			peer's certificate against it (--ca)
 *	ca.key		the CA's private key (0600); needed only to issue more
 *			certificates: keep it off the servers
 *	server.crt	server certificate (CN "autosync-server" or the given
 *	server.key	name, SAN DNS of it), and its key (0600) for serve
 *	client.crt	client certificate (CN = the client id) and its key
 *	client.key	(0600) for "autosync sync tls://..."
 *
 * Keys are ECDSA P-256; certificates are X.509 v3, SHA-256, valid for
 * 10 years from now (minus one day for clock skew).
 */
#ifndef AS_KEYS_H
#define AS_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define KEY_ID_MAX	64
#define KEY_LEN		32
#define KEY_MAGIC	"autosync-psk-v1"

struct psk {
	char	 id[KEY_ID_MAX + 1];
	uint8_t	 key[KEY_LEN];
	size_t	 len;		/* KEY_LEN once loaded; 0: empty (refused) */
};

/*
 * Load a PSK file.  Errors: NOTFOUND/IO to open it; AUTH "key file 'X' is
 * readable by others; chmod 600 it" for mode & 077; MALFORMED "key file
 * 'X': ..." for anything but one well-formed line.  The file is opened
 * O_NOFOLLOW|O_CLOEXEC and must be a regular file of at most 4 KiB.
 */
int	key_load(const char *path, struct psk *k, struct as_err *err);
/* Parse the text of a key file (for tests and config); what names it. */
int	key_parse(const char *text, size_t len, const char *what,
	    struct psk *k, struct as_err *err);
/* A fresh random key (RAND_bytes) with the given id; -1 on a bad id. */
int	key_generate(struct psk *k, const char *id, struct as_err *err);
/*
 * Write k to path, created 0600 with O_EXCL (an existing file is an
 * error, IO with EEXIST), fsynced.
 */
int	key_write(const char *path, const struct psk *k, struct as_err *err);
/* Whether id is a valid key id. */
int	key_id_valid(const char *id);
/* Wipe the secret (OPENSSL_cleanse). */
void	key_clear(struct psk *k);

/*
 * Make every file listed above in dir.  client_id names the client (key
 * id and client certificate CN; NULL: "client"); server_name is the
 * server certificate's CN and DNS SAN (NULL: "autosync-server").
 */
int	keygen_dir(const char *dir, const char *client_id,
	    const char *server_name, struct as_err *err);

#endif
