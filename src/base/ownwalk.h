/*
 * ownwalk.h - a destination is never reached through a symbolic link
 * that another user could have planted (RELIABILITY.md case 21, rsync's
 * ownership walk, CVE-2026-53796).
 *
 * The receiver opens its destination with O_NOFOLLOW, which guards only
 * the last component: "/srv/dst/job" where /srv/dst was replaced by a
 * link to /etc by the user who owns /srv would still be followed, and
 * `sync` resolves its destination with realpath before the receiver sees
 * it.  So every link met while resolving the path (the components and
 * the links their targets name in turn) must be owned by root or by the
 * user autosync runs as; a link owned by anyone else is refused, whoever
 * owns the directory it sits in.  What does not exist yet ends the walk:
 * the receiver creates it as a real directory.
 */
#ifndef AS_OWNWALK_H
#define AS_OWNWALK_H

#include "base/err.h"

/*
 * 0 when path (absolute, or relative to the working directory) is
 * reached only through trusted links; -1 with UNSAFE_PATH naming the
 * link and its owner, ELOOP past 40 links, or the failed lstat/readlink.
 * what names the path in the message ("destination").
 */
int	ownwalk_check(const char *path, const char *what, struct as_err *err);

#endif
