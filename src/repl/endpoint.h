/*
 * endpoint.h - where a dataset is reached, parsed from a command-line
 * argument (DESIGN.md "Endpoints").
 *
 *   /srv/data, ./data            a local directory (dir driver)
 *   ssh://[user@]host[:port]/path   over "ssh host autosync serve --stdio"
 *   tcp://host[:port]/path       over autosync serve's TCP listener (PSK)
 *   tls://host[:port]/path       over TLS 1.3
 *
 * host is a name, an IPv4 address or "[v6 address]"; the port defaults
 * to 22 for ssh (left to ssh's own config) and ENDPOINT_PORT for tcp and
 * tls.  The path of a remote endpoint starts at the '/' after the host
 * and is taken as it is: absolute on the server, or (serve --root) under
 * the served root.  A host or user that starts with '-', or holds a
 * space, a control character or one of "/@[]" where it does not belong,
 * is refused (USAGE), so that it can never become an option of ssh.
 *
 *   vol:/path                    a local volume: a block device or an
 *                                image file (vol driver, driver/vol.h);
 *                                a regular file is a volume only so named
 *
 *   zfs:POOL/DATASET             a ZFS dataset (zfs driver); path is
 *                                the dataset name
 *   btrfs:/path                  a btrfs subvolume (btrfs driver); path
 *                                is the subvolume's absolute path
 *
 * A local directory whose name starts like one of these is named with
 * a leading "./".
 */
#ifndef AS_ENDPOINT_H
#define AS_ENDPOINT_H

#include "base/err.h"

#define ENDPOINT_PORT	"7010"

enum endpoint_kind {
	EP_LOCAL = 1,	/* a directory on this machine (dir driver) */
	EP_SSH,		/* ssh://[user@]host[:port]/path */
	EP_TCP,		/* tcp://host[:port]/path */
	EP_TLS,		/* tls://host[:port]/path */
	EP_VOL,		/* vol:/path: a local volume (vol driver) */
	EP_ZFS,		/* zfs:pool/dataset (zfs driver) */
	EP_BTRFS,	/* btrfs:/path of a subvolume (btrfs driver) */
};

struct endpoint {
	enum endpoint_kind kind;
	char		*spec;	/* owned: the argument as given */
	char		*path;	/* owned: the local or remote path */
	char		*host;	/* owned: remote host (no brackets), or NULL */
	char		*user;	/* owned: ssh user, or NULL */
	char		*port;	/* owned: port, or NULL (ssh: its default) */
};

/* Parse spec into ep; -1 with USAGE for what is not supported. */
int	endpoint_parse(struct endpoint *ep, const char *spec,
	    struct as_err *err);
void	endpoint_release(struct endpoint *ep);
/* 1 when ep is reached through a transport (ssh, tcp, tls). */
int	endpoint_is_remote(const struct endpoint *ep);

#endif
