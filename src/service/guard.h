/*
 * guard.h - a service's endpoints are checked when it is created, before
 * any I/O (RELIABILITY.md §F 70): a run makes the destination equal to
 * the source, deleting what the source does not have, so a destination
 * that is a system directory or a home, or that overlaps the source or
 * another service's destination, would destroy data.
 *
 * Refused (USAGE, naming what and why):
 *  - a local path that is not absolute (the daemon's working directory
 *    is not the shell's);
 *  - a local destination that is "/", a top-level system directory
 *    (/bin /boot /dev /etc /home /lib* /proc /root /run /sbin /srv /sys
 *    /tmp /usr /var) or $HOME;
 *  - a local destination equal to, inside, or containing the source;
 *  - a destination equal to, inside, or containing another service's
 *    (local paths; remote ones when host and path say so).
 */
#ifndef AS_GUARD_H
#define AS_GUARD_H

#include <stddef.h>

#include "base/err.h"
#include "service/store.h"

int	guard_endpoints(const char *name, const char *src, const char *dst,
	    const struct svc *others, size_t nothers, struct as_err *err);

#endif
