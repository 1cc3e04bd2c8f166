/*
 * reverse.h - failback: the destination of a service becomes its source
 * and the source its destination, incrementally from the snapshot both
 * hold, without resending what they share.
 *
 * For two local directories (the dir engine), with S the source and D
 * the destination:
 *
 *  1. D holds a snapshot (its .autosync/held.cat) and it is the newest
 *     snapshot in S's catalogs: otherwise CONFLICT (run a final sync
 *     first: what S has that D has not would be lost);
 *  2. S has not changed since that snapshot G (a lstat-only scan of S
 *     with G as its base, compared with G): otherwise CONFLICT naming the
 *     first difference, unless force, after which the first run rolls S
 *     back (SYNC_FORCE);
 *  3. D's held catalog becomes a committed snapshot in D's catalogs (the
 *     new source's base: its inodes are D's), with the block hashes of
 *     S's catalog of G for the files it has unchanged, so that the first
 *     run after a reverse reads and sends only what changed on D;
 *  4. S gets a held catalog: S's own catalog of G, which describes S
 *     exactly as the receiver checks it (inodes, times, modes...), so
 *     that the first run is incremental and S's drift check passes;
 *  5. D's catalogs record that S holds G (the prune keeps it).
 *
 * Both catalog stores are locked while this runs (CONFLICT "busy").
 * The steps are repl/failback.h's.
 *
 * One side may be remote (a directory behind ssh://, tcp://, tls://;
 * ro: the service's transport options): its server does that side's
 * steps on REQUEST REVERSE (doc/autosync-protocol.md), and needs rw.
 *  - push (S here, D there): HOLD says what D holds; 1 and 2 here; the
 *    server does 3 and 5 with S's catalog of G, D's record of S being
 *    the pull's (sync_pull_id); then 4 here.  Nothing changes on
 *    either side before both checks passed.
 *  - pull (S there, D here): the server does 1, 2 and 4 and sends its
 *    catalog of G; then 3 and 5 here, D's record of S keyed by the URL
 *    (as a push keys it).
 * Volumes: reverse_vol below; zfs: below.  Other engines and two remote
 * sides are UNSUPPORTED.
 */
#ifndef AS_REVERSE_H
#define AS_REVERSE_H

#include <stdint.h>

#include "base/err.h"
#include "repl/remote.h"
#include "repl/snapstore.h"

struct reverse_result {
	char		 common[SNAP_NAME_MAX + 1];	/* G's name */
	uint64_t	 guid;				/* G */
	uint64_t	 ndiff;		/* differences of S from G */
	char		 first[AS_ERR_MSGMAX / 2];	/* the first one */
	int		 rolled_back;	/* forced: the reverse rolled S back
					 * itself (no forced first run) */
};

int	reverse_dir(const char *state_dir, const char *src, const char *dst,
	    const struct remote_opts *ro, int force,
	    struct reverse_result *res, struct as_err *err);

/*
 * For the engines' files: res says G (guid, its name) and the drift
 * found, ndiff differences of which first is the first.
 */
void	reverse_result_set(struct reverse_result *res, uint64_t guid,
	    const char *name, uint64_t ndiff, const char *first);

/*
 * Between two volumes (vol:A -> vol:B, image files or block devices; at
 * most one of them behind a server: push or pull, the server's side on
 * REQUEST REVERSE like a directory's), in reverse_vol.c with
 * failback.h's failback_vol_* steps:
 *
 *  1. B holds a snapshot G (its record) and G is A's newest: otherwise
 *     CONFLICT (run a final sync first);
 *  2. A is read whole and hashed (a volume keeps no times per block) and
 *     compared with A's catalog of G: changed is CONFLICT unless force;
 *  3. A's record says it holds G (complete) or, forced after a change,
 *     a new snapshot describing A as it is now (base_guid G);
 *  4. that catalog is copied into B's catalogs (named for B), B's
 *     records say A holds it, and B's own record goes (B is a source).
 *
 * The first run B -> A is then an incremental against what A holds: it
 * reads B whole (as every volume run does) and sends only the blocks
 * that differ, those that changed on B since G and, forced, those that
 * changed on A (which rolls A back to B: no full resend).
 */
struct endpoint;
int	reverse_is_vol(const struct endpoint *ep);
int	reverse_vol(const char *state, const struct endpoint *se,
	    const struct endpoint *de, const struct remote_opts *ro,
	    int force, struct reverse_result *res, struct as_err *err);

/*
 * Between two local ZFS trees (zfs:A -> zfs:B), in reverse_zfs.c
 * (failback_zfs_check); ZFS keeps no catalogs, so this only checks, and
 * the caller makes the first run of the reversed service at once:
 *
 *  1. every dataset of A (its children unless norecurse) has its
 *     counterpart in B, whose newest snapshot is A's newest, by GUID
 *     (G): otherwise CONFLICT (run a final sync first);
 *  2. A has not changed since G: ZFS's "written" where the zfs has it;
 *     on zfs-fuse, which has not, A's referenced against G's and G's
 *     used (blocks only G still has).  Changed is CONFLICT unless force
 *     (the first run then rolls A back: receive -F).  Reading A with
 *     atime=on changes it too, as `zfs receive` sees it.
 *
 * The first run B -> A is an incremental from G (GUIDs match); `zfs
 * receive` itself refuses an A written since G ("modified since most
 * recent snapshot") that the check missed.  If that run fails, the
 * caller swaps the endpoints back and reverse_zfs_undo(B, G) destroys
 * the autosync_* snapshots it took on B after G, so that B is again
 * what A's runs expect.  After a good run, failback_zfs_open(B) makes
 * the new source usable: readonly inherited again and canmount=on (the
 * replica policy set them), its file systems mounted.  With force, a
 * snapshot of autosync's on A after G passes the check too (the first
 * run's -F rolls it back); another one is CONFLICT.
 *
 * One of them behind a server (reverse_zfs_remote; ro: the service's
 * transport options): no first run here, the service's record is
 * swapped as a directory's, and its next run is an incremental from G
 * in the new direction.  The steps are failback.h's failback_zfs_*;
 * the server's side is REQUEST REVERSE on its zfs: path (with
 * REQ_F_TREE unless norecurse), which needs rw there.
 *  - push (A here, B there): the server's listing of B (SNAPSHOTS) and
 *    A are checked here as above; the server checks that B's newest is
 *    still G and makes B a source (its records: this pull destination
 *    holds G); then A becomes a destination here: forced, rolled back
 *    to G (`zfs rollback -r`, over autosync's snapshots only), and the
 *    receive policy (readonly=on, canmount=noauto).
 *  - pull (A there, B here): B's GUIDs are checked against the
 *    server's listing of A here; the server checks A (newest G, its
 *    writes) and makes it a destination as above, or refuses
 *    (CONFLICT; nothing changed); then B becomes a source here, its
 *    records saying that the server's dataset (the URL) holds G.
 * Nothing changes on either side before both checks passed; the
 * old source's state (STATE/zfs/<key>/lock) is held, so a run of it in
 * between is "busy".  res->rolled_back is set: a forced reverse rolled
 * A back itself.
 *
 * reverse_zfs_kind: 1 for two local zfs: datasets, 2 for two zfs:
 * datasets one of them remote, 0 otherwise.
 */
int	reverse_zfs(const char *src, const char *dst, int norecurse,
	    int force, struct reverse_result *res, struct as_err *err);
int	reverse_zfs_undo(const char *ds, const char *common, int norecurse,
	    struct as_err *err);
int	reverse_zfs_kind(const char *src, const char *dst);
int	reverse_zfs_remote(const char *state_dir, const char *src,
	    const char *dst, const struct remote_opts *ro, int norecurse,
	    int force, struct reverse_result *res, struct as_err *err);

/*
 * Between two btrfs subvolumes (btrfs:A -> btrfs:B, or one of them a
 * server's btrfs: path: push or pull, the server's side on REQUEST
 * REVERSE), in reverse_btrfs.c with repl/failback_btrfs.h's steps: B's
 * newest received snapshot is A's newest (G), A not written since G
 * (unless force); then B's new first snapshot S0 reaches A (locally a
 * `btrfs send -p` from B's G that `btrfs receive` applies to A's G,
 * found by UUID; over the network, B as received, A's G given S0's
 * UUID as received_uuid) and is published there as a read-only
 * replica, B made writable.  The rollback of A under force is that
 * publish: res->ndiff stays 0 (no forced run is needed).
 */
int	reverse_is_btrfs(const struct endpoint *se, const struct endpoint *de);
int	reverse_btrfs(const struct endpoint *se, const struct endpoint *de,
	    const struct remote_opts *ro, int force,
	    struct reverse_result *res, struct as_err *err);

#endif
