/*
 * failback.h - the steps of a directory failback (service reverse) that
 * each side does on its own, so that the same code serves two local
 * directories (service/reverse.c), the local side of a push or pull
 * service, and the server's side (serve.c, REQUEST REVERSE).
 *
 * With S the old source and D the old destination, holding snapshot G:
 *
 *  - failback_check_source, on S (its catalogs locked): G is the newest
 *    snapshot in S's catalogs (else CONFLICT: run a final sync first),
 *    its catalog is loaded, and an lstat-only scan of S with G as its
 *    base finds S unchanged since G (else CONFLICT naming the first
 *    difference, unless force: the first run then rolls S back);
 *  - failback_demote, on S: S holds G as its own catalog of G describes
 *    it (S/.autosync/held.cat), so that the first run D -> S is an
 *    incremental whose drift check passes;
 *  - failback_promote, on D (its catalogs locked): D's held catalog
 *    becomes a committed snapshot in D's catalogs (the new source's
 *    base: D's inodes), with G's block hashes for the files it has
 *    unchanged, so that the first run reads and sends only what changed
 *    on D; and D's catalogs record that the destination named dest_key
 *    holds G (the prune keeps it).
 *
 * The catalog of G travels between machines for the hashes (REVERSE in
 * doc/autosync-protocol.md); without it the first run sends changed
 * files whole.
 */
#ifndef AS_FAILBACK_H
#define AS_FAILBACK_H

#include <stdint.h>

#include "base/err.h"
#include "format/catalog.h"
#include "repl/snapstore.h"

/* How S differs from G. */
struct failback_drift {
	uint64_t	 ndiff;				/* differences */
	char		 first[AS_ERR_MSGMAX / 2];	/* the first one */
};

/*
 * S is abs, its catalogs ss (locked); G is guid, held by dst (a name for
 * messages).  g (initialised by the caller) gets G's catalog.  Returns
 * 0 (d says how S differs; force let it pass), -1 with CONFLICT.
 */
/* G is the newest snapshot of abs (CONFLICT otherwise); hname: G's name. */
int	failback_check_newest(struct snapstore *ss, const char *abs,
	    uint64_t guid, const char *dst, char *hname, size_t hlen,
	    struct as_err *err);
int	failback_check_source(struct snapstore *ss, const char *abs,
	    uint64_t guid, const char *dst, int force, struct catalog *g,
	    struct failback_drift *d, struct as_err *err);

/* S (abs) holds g: its .autosync/held.cat.  g's root entry is updated. */
int	failback_demote(const char *abs, struct catalog *g, struct as_err *err);

/*
 * D is abs, holding guid (the caller checked it after dir_recover), its
 * catalogs ss (locked); g is G's catalog from S (its hashes), or NULL.
 */
int	failback_promote(struct snapstore *ss, const char *abs, uint64_t guid,
	    const struct catalog *g, const char *dest_key,
	    struct as_err *err);

/*
 * Volumes (vol:, image files and block devices; state: the state
 * directory, for a device's record).  S, D and G as above.
 *
 *  - failback_vol_check_source, on S (its catalogs ss locked): G is the
 *    newest snapshot of S (else CONFLICT); S is read whole and hashed at
 *    G's block size (a volume keeps no times per block) and compared
 *    with S's catalog of G.  Unchanged: out gets that catalog.  Changed:
 *    CONFLICT unless force; with force out describes S as it is now, a
 *    new snapshot (new guid, base_guid G), so that the first run from D
 *    diffs against what S really holds: it sends the blocks where S
 *    differs from D, and S ends equal to D (an incremental, not a full
 *    resend).  d: changed blocks (and a size change), the first one.
 *  - failback_vol_demote, on S: S holds out (its record, complete).
 *  - failback_vol_promote, on D (its catalogs ss locked): D holds guid;
 *    g (out from S: guid, or taken from it) is saved as a snapshot of D
 *    (its hashes describe S, which is what a diff needs), dest_key is
 *    recorded as holding it, and D's record is removed (a sync into D
 *    again must be told -F).
 */
int	failback_vol_check_source(struct snapstore *ss, const char *abs,
	    uint64_t guid, const char *dst, int force, struct catalog *out,
	    struct failback_drift *d, struct as_err *err);
int	failback_vol_demote(const char *abs, const char *state,
	    const struct catalog *g, struct as_err *err);
int	failback_vol_promote(struct snapstore *ss, const char *abs,
	    const char *state, uint64_t guid, const struct catalog *g,
	    const char *dest_key, struct as_err *err);

/*
 * ZFS (zfs:, a tree unless -N).  ZFS keeps its own snapshots: no
 * catalog travels, only G's GUID.  S's tree st (root src) and D's tree
 * dt (root dst), each listed here (zfs_list) or from a server's
 * SNAPSHOTS (sync_zfs_listing):
 *
 *  - failback_zfs_check: every dataset of S has a snapshot G that its
 *    counterpart in D holds as its newest, by GUID (without dt, on a
 *    server: the root's G is guid, a child's the snapshot of the root
 *    G's name, as one recursive snapshot names them), and G is S's
 *    newest: otherwise CONFLICT (run a final sync first) naming both,
 *    unless force and only autosync's snapshots came after G (rollback
 *    -r destroys them; a foreign one is CONFLICT even then).  local: S
 *    is on this machine, so whether it was written since G is looked at
 *    too (ZFS's "written"; on zfs-fuse referenced and used, see
 *    reverse.h): CONFLICT unless force.  g gets the root's G, d the
 *    datasets that differ (0 unless force) and the first.
 *  - failback_zfs_demote, on S (here): its file systems are unmounted
 *    (children first; busy for 10 s is an error), as a replica is;
 *    forced, every dataset that has G is rolled back to it (`zfs
 *    rollback -r`, after checking again that only autosync's snapshots
 *    go); then the receive policy (canmount=noauto, readonly=on), so
 *    that nothing writes S before the first run D -> S, which is an
 *    incremental from G.  With -N a child still mounted below S keeps
 *    S busy: unmount it first.
 *  - failback_zfs_promote, on D (here; z: D's state, opened and locked
 *    by the caller, sync_zfs_src_open): D's root holds guid as its newest snapshot (else CONFLICT: a run
 *    came in between), D's records (STATE/zfs/<key>/dests) say that the
 *    destination dest_key holds G (no prune of D as a source destroys
 *    it), and failback_zfs_open: readonly inherited again, canmount=on,
 *    its file systems mounted.  g gets G.
 */
/*
 * S listed for failback_zfs_check (local): its pool written out first
 * (zfs_txg_sync), or a write of a moment ago would not show in the
 * sizes that say whether S changed since G.  A missing S: t is empty.
 */
struct zfs_tree;
struct sync_zfs_src;
int	failback_zfs_list_source(const char *ds, int recursive,
	    struct zfs_tree *t, struct as_err *err);
struct failback_zfs_g {
	uint64_t	 guid;
	char		 name[SNAP_NAME_MAX + 1];
};
int	failback_zfs_check(const struct zfs_tree *st, const char *src,
	    const struct zfs_tree *dt, const char *dst, uint64_t guid,
	    int local, int force, struct failback_zfs_g *g,
	    struct failback_drift *d, struct as_err *err);
int	failback_zfs_demote(const char *ds, int recursive, const char *gname,
	    int force, struct as_err *err);
int	failback_zfs_promote(struct sync_zfs_src *z, const char *ds,
	    int recursive, uint64_t guid, const char *dest_key,
	    struct failback_zfs_g *g, struct as_err *err);
int	failback_zfs_open(const char *ds, int recursive, struct as_err *err);

#endif
