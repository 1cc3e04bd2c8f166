/*
 * dir_policy.h - what a receive of a directory stream keeps from a sender
 * it does not trust with privileged objects (RELIABILITY.md case 22).
 *
 * The default policy is faithful: everything the stream carries lands
 * (devices, setuid/setgid, capabilities, every xattr), as a backup of a
 * system tree needs.  The safe policy (receive/sync --safe, serve.conf
 * "safe") is for a stream from a peer that must not be able to plant a
 * privilege on this machine:
 *   - a block or character device node refuses the whole stream
 *     (UNSAFE_PATH, naming it): dropping it would leave a replica that
 *     the next incremental, which may change that node, cannot follow;
 *   - setuid and setgid bits are cleared on every entry;
 *   - only "user." xattrs are kept: security.* (capabilities, SELinux
 *     labels), trusted.* and system.* (POSIX ACLs) are dropped.
 * FIFOs and sockets are harmless here (a receiver never opens them) and
 * land as they are.  Pure functions: no file system, no state.
 */
#ifndef AS_DIR_POLICY_H
#define AS_DIR_POLICY_H

#include "base/err.h"
#include "format/stream.h"

/*
 * Apply the safe policy to e in place: 0, or -1 with UNSAFE_PATH when e
 * must not be received at all.
 */
int	dir_policy_entry(struct as_entry *e, struct as_err *err);

/* 1 when the safe policy keeps xattr x, 0 when it drops it. */
int	dir_policy_xattr(const struct as_xattr *x);

#endif
