/*
 * serve.h - the passive side: "autosync serve".  It answers the requests
 * of proto.h for the paths its access rules let the client reach, and
 * never decides anything by itself.
 *
 * Three ways to say what a client may reach:
 *
 *  - --stdio without --config: everything the (ssh-authenticated) user
 *    can reach; paths are taken as they come.
 *  - quick mode, --root DIR with --key (tcp) or --tls: one root, read and
 *    write, for whoever authenticates; client paths are relative to DIR
 *    ("/a/b" is DIR/a/b), resolved beneath it.
 *  - --config FILE (serve.conf(5), doc/autosync-protocol.md):
 *
 *	# comments and blank lines are ignored
 *	client NAME key FILE		tcp://: the PSK in FILE (keys.h)
 *	client NAME cert SHA256:HEX	tls://: the client certificate with
 *					this fingerprint (SHA-256 of the DER)
 *	allow NAME PATH ro|rw		NAME may read (pull) or also write
 *					(push) PATH and everything below it
 *
 *    Client paths are absolute server paths that must lie inside one of
 *    the client's roots.  With --stdio the client is named by --client
 *    (default "ssh") and needs no "client" line.
 *
 * No config and no quick-mode root over tcp/tls: nothing is reachable.
 * In every mode a path holding ".." is refused, and beneath a root no
 * existing component may be a symbolic link (UNSAFE_PATH).  Every
 * refusal is logged with the peer's address.
 *
 * The listener (--listen) accepts, forks a child per connection that
 * runs the handshake (PSK or TLS) under a deadline, with at most
 * max_unauth children still in their handshake (the listener stops
 * accepting until one finishes); an authenticated child serves its
 * requests and exits.  Children are reaped on SIGCHLD.
 */
#ifndef AS_SERVE_H
#define AS_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "transport/keys.h"

#define SERVE_MAX_UNAUTH	16
#define SERVE_HANDSHAKE_MS	10000
#define SERVE_CONFIG_MAX	(1u << 20)	/* bytes in a config file */
#define SERVE_CLIENTS_MAX	4096
#define SERVE_GRANTS_MAX	65536

enum serve_client_kind {
	SC_KEY = 1,		/* tcp: PSK */
	SC_CERT,		/* tls: certificate fingerprint */
};

struct serve_client {
	char			*name;
	enum serve_client_kind	 kind;
	struct psk		 key;		/* SC_KEY */
	char			 fp[65];	/* SC_CERT: lower hex */
};

struct serve_grant {
	char	*client;	/* a client's name */
	char	*path;		/* absolute, normalised */
	int	 rw;		/* 1: push too; 0: pull only */
	int	 trusted;	/* "trusted": btrfs streams are received */
	int	 safe;		/* "safe": dir pushes under dir_policy.h */
};

struct serve_config {
	struct serve_client	*clients;
	size_t			 nclients;
	struct serve_grant	*grants;
	size_t			 ngrants;
};

/*
 * Parse a config's text (what names it in messages: "serve.conf:12: ...",
 * USAGE).  Key files are loaded (relative to the current directory).
 * cfg is filled on success only.
 */
int	serve_config_parse(struct serve_config *cfg, const char *text,
	    size_t len, const char *what, struct as_err *err);
int	serve_config_load(struct serve_config *cfg, const char *path,
	    struct as_err *err);
void	serve_config_release(struct serve_config *cfg);

struct serve_opts {
	const char	*state_dir;	/* catalogs of served sources */
	const char	*config;	/* --config, or NULL */
	const char	*root;		/* quick mode --root, or NULL */
	const char	*listen;	/* --listen ADDR:PORT, or NULL */
	const char	*client;	/* --stdio: the client's name */
	const char	*key_file;	/* tcp: PSK; tls: server key */
	const char	*cert_file;	/* tls: server certificate */
	const char	*ca_file;	/* tls: CA of the clients */
	int		 tls;		/* --tls */
	int		 idle_ms;	/* after the handshake; 0: default */
	int		 max_unauth;	/* 0: SERVE_MAX_UNAUTH */
	int		 handshake_ms;	/* 0: SERVE_HANDSHAKE_MS */
	const char	*port_file;	/* write the bound port here, or NULL */
};

/* Serve one client over stdin/stdout; 0 when it closed cleanly. */
int	serve_stdio(const struct serve_opts *o, struct as_err *err);
/* Listen and serve until SIGTERM or SIGINT; 0 then. */
int	serve_listen(const struct serve_opts *o, struct as_err *err);

/*
 * Resolve a client's request path for a client with the given grants
 * (NULL: everything, stdio without config), relative to root when root
 * is not NULL (quick mode).  need_rw: the request writes.  Returns an
 * allocated path, or NULL with UNSAFE_PATH.  Exposed for unit tests.
 */
char	*serve_resolve(const struct serve_grant *g, size_t ng,
	    const char *client, const char *root, const char *req,
	    int need_rw, struct as_err *err);

/*
 * The same for an engine whose requests name datasets (serve_engine.h:
 * "zfs:" requests; req is the name after the prefix).  A dataset root
 * is "zfs:POOL/DS" (a grant's path, or the quick-mode root); req must be
 * a valid dataset name (zfs_name_check: no "..", "@", leading '-') equal
 * to or below one of the client's dataset roots.  Names are never
 * relative: quick mode --root zfs:vault reaches "vault/x" as "zfs:vault/x".
 * A directory root reaches no dataset.  Returns the allocated name, or
 * NULL with UNSAFE_PATH.
 */
char	*serve_resolve_dataset(const struct serve_grant *g, size_t ng,
	    const char *client, const char *root, const char *req,
	    int need_rw, struct as_err *err);
#endif
