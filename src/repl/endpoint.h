/*
 * endpoint.h - where a dataset is reached, parsed from a command-line
 * argument (DESIGN.md "Endpoints").
 *
 * Only local directories are supported for now.  "ssh://", "tcp://" and
 * "tls://" URLs and the "zfs:", "btrfs:" and "vol:" prefixes are
 * recognised and refused with USAGE "not supported yet", so that a
 * later transport or driver fills in this seam without changing callers.
 * A local directory whose name starts like one of those is named with a
 * leading "./".
 */
#ifndef AS_ENDPOINT_H
#define AS_ENDPOINT_H

#include "base/err.h"

enum endpoint_kind {
	EP_LOCAL = 1,	/* a directory on this machine (dir driver) */
};

struct endpoint {
	enum endpoint_kind kind;
	char		*spec;	/* owned: the argument as given */
	char		*path;	/* owned: the local path, as given */
};

/* Parse spec into ep; -1 with USAGE for what is not supported. */
int	endpoint_parse(struct endpoint *ep, const char *spec,
	    struct as_err *err);
void	endpoint_release(struct endpoint *ep);

#endif
