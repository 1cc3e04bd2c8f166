/*
 * failback_btrfs.h - failback between two btrfs subvolumes: the
 * destination B of a service A -> B becomes its source, A its
 * destination, incrementally from the snapshot G both hold.
 *
 * What btrfs gives: B holds G as a received snapshot G_B (read-only,
 * received_uuid = the UUID of A's snapshot G_A); B's path is a read-only
 * *view* (a snapshot of G_B, driver/btrfs.h).  `btrfs send -p G_B X`
 * names as its parent G_B's received_uuid (the kernel uses a parent's
 * received_uuid when it has one), and `btrfs receive` looks a parent up
 * first by received_uuid, then by UUID: on A it finds G_A itself.  What
 * autosync's runs need besides: the new source's base must be one of
 * its own snapshots (parent_uuid = the live subvolume's UUID) whose UUID
 * is the received_uuid of one the new destination holds.
 *
 * failback_btrfs_local (A and B on this machine):
 *
 *  1. checks, nothing changed yet: A a source subvolume and B a view
 *     autosync published (written since, e.g. made writable during a
 *     failover, is fine: that is B's content now, and it is sent); no
 *     nested subvolumes on either side (UNSUPPORTED in this version);
 *     B's newest received snapshot is A's newest snapshot G (by
 *     received_uuid), else CONFLICT (run a final sync first); A not
 *     written since G: its ctransid (the transaction that last changed
 *     its content) is G_A's, else CONFLICT unless force;
 *  2. S0: a read-only snapshot of B's view in B's snapshot directory,
 *     the new source's first snapshot;
 *  3. `btrfs send -p G_B S0 | btrfs receive` into A's snapshot directory
 *     (the parent found by UUID: G_A): R0, a received snapshot of S0
 *     made by btrfs itself; only what B has that G has not travels
 *     (nothing but the top directory's metadata when B is as received);
 *  4. R0 published at A as a destination's view (btrfs_dest_publish):
 *     A becomes a read-only replica and the old A is deleted (with
 *     force, that is the roll-back of what A had since G);
 *  5. A's own snapshots go (but those another destination holds), and
 *     its dests record for B; B's view is made writable (it is the
 *     source now), its dests record says A holds S0, and its received
 *     snapshots and published record go.
 *
 * The next run B -> A is an ordinary incremental from S0 (R0 carries
 * S0's UUID as its received_uuid).  A failure in 2-4 deletes what it
 * made (S0, R0): nothing changed.  After 4 a failure is reported as
 * "reversed, but": the service must be swapped anyway.
 */
#ifndef AS_FAILBACK_BTRFS_H
#define AS_FAILBACK_BTRFS_H

#include <stdint.h>

#include "base/err.h"
#include "driver/btrfs.h"

struct failback_btrfs_result {
	char		 common[BTRFS_NAME_MAX + 1];	/* G's name */
	uint64_t	 guid;		/* G (the first 64 bits of its UUID) */
	char		 base[BTRFS_NAME_MAX + 1];	/* S0's name */
	int		 changed;	/* A written since G (forced) */
	int		 b_written;	/* B's view written since published */
	uint64_t	 bytes;		/* the stream of step 3 */
	char		 first[256];	/* what changed on A, for messages */
};

int	failback_btrfs_local(const char *a, const char *b, int force,
	    struct failback_btrfs_result *res, struct as_err *err);

#endif
