/*
 * sync.h - one replication step, local to local: snapshot the source,
 * send it (incrementally from the newest snapshot both sides share) and
 * receive it into the destination, in one call.  The workhorse that the
 * CLI's `sync` and, later, the service call.
 *
 * The steps:
 *  1. recover an interrupted receive on the destination (dir_recover) and
 *     read the snapshot it holds (dir_held);
 *  2. settle a previous sync to this destination that crashed between the
 *     receiver's commit and the catalog's: its pending catalog is adopted
 *     when the destination holds its GUID, discarded otherwise;
 *  3. the base is the source's snapshot with the held GUID; if the
 *     destination holds a snapshot the source does not have: CONFLICT,
 *     unless SYNC_FORCE (full resend, destination rolled back);
 *     with SYNC_FORCE, an incremental that the receiver refuses because
 *     the destination's content changed (CONFLICT) is resent in full;
 *  4. scan the source into a new catalog (new GUID, name
 *     autosync_YYYY-MM-DD_HH:MM:SS in UTC), save it as pending;
 *  5. a child process receives (dir_receive) from a pipe while this one
 *     sends (dir_send, DIR_SEND_LIVE); the receiver's own error is what
 *     is reported when it fails, not the sender's EPIPE;
 *  6. commit the catalog and the destination record; then prune: every
 *     other snapshot whose name starts with "autosync_" (sync's own) is
 *     destroyed unless a destination still holds it (like syncoid; user
 *     snapshots are never touched), or it is among the newest
 *     o->keep_src of them.  SYNC_NO_PRUNE keeps them all.
 *
 * An empty or missing source is refused (NOTFOUND): an empty tree is
 * most often a file system that is not mounted, and replicating it would
 * empty the destination.
 *
 * Takes the source's catalog lock for the whole step (CONFLICT "busy").
 * Forks once; the child never returns from sync_run().
 */
#ifndef AS_SYNC_H
#define AS_SYNC_H

#include <stdint.h>

#include "base/err.h"
#include "driver/dir.h"
#include "repl/remote.h"
#include "repl/snapstore.h"

#define SYNC_FORCE	0x01	/* -F: full resend, roll back dst */
#define SYNC_NO_PRUNE	0x02	/* keep sync's older snapshots */
#define SYNC_NO_RECURSE	0x04	/* -N: no child datasets/subvolumes/mounts */
#define SYNC_SAFE	0x08	/* --safe: a directory destination receives
				 * under dir_policy.h's safe policy */

struct sync_opts {
	const char	*state_dir;	/* --state-dir, or NULL */
	int		 flags;		/* SYNC_* */
	uint32_t	 block_size;	/* full sync; 0: the default */
	const struct remote_opts *remote; /* transport options, or NULL */
	unsigned	 keep_src;	/* step 6 keeps the newest N of sync's
					 * own snapshots (0: 1, the new one) */
	unsigned	 keep_dst;	/* the same on a destination that keeps
					 * snapshots (zfs, btrfs) */
	/*
	 * A local directory source whose changes since the last sync a
	 * journal recorded (service/changes.h): narrow 1 scans only the
	 * directories changed[0..nchanged) (dir_scan_narrow; relative to
	 * the source) and copies the rest from the base.  Ignored for a
	 * full sync.
	 */
	int		 narrow;
	const char *const *changed;
	size_t		 nchanged;
	/* the same for a local destination: its drift check */
	int		 dnarrow;
	const char *const *dchanged;
	size_t		 ndchanged;
	const char	*trust;		/* a btrfs pull receives only from
					 * this host (the URL's); NULL: none */
};

struct sync_result {
	int		 full;		/* 1 full, 0 incremental */
	char		 name[SNAP_NAME_MAX + 1];	/* new snapshot */
	uint64_t	 guid;
	char		 base_name[SNAP_NAME_MAX + 1]; /* "": full */
	uint64_t	 base_guid;
	struct dir_stats scan;		/* the source scan */
	struct dir_stats send;		/* what the sender emitted */
	int64_t		 scan_ns;	/* wall time of the scan */
	int		 narrowed;	/* the scan was narrowed (scan.carried,
					 * scan.rescans say how far) */
	int64_t		 total_ns;	/* wall time of the step */
	int64_t		 xfer_ns;	/* btrfs: wall time of the streams */
	unsigned	 pruned;	/* snapshots destroyed by pruning */
	int		 recovered;	/* dir_recover repaired dst */
	int		 adopted;	/* a crashed sync's catalog kept */
	int		 discarded;	/* ... or discarded */
	int		 retried_full;	/* -F: incremental refused */
	int		 remote;	/* 1 push, 2 pull, 0 local */
	uint64_t	 wire_bytes;	/* remote: frame bytes (compressed) */
	unsigned	 zfs_datasets;	/* zfs: datasets sent, 0 otherwise */
	unsigned	 zfs_full;	/* ... of which with a full stream */
	unsigned	 subvols;	/* btrfs: subvolumes sent (send's
					   stream_bytes counts their streams) */
	int		 replaced;	/* btrfs -F: a modified dst replaced */
	int		 cloned;	/* vol: read from a FICLONE copy */
	uint64_t	 resumed;	/* vol: a cut transfer resumed here;
					   dir: the stream bytes the
					   destination had (local) */
	uint64_t	 resumed_pos;	/* dir: resumed at DIR_POS, or 0 */
	char		 resume_msg[400]; /* why a checkpoint was not used */
};

/*
 * Run one step from src to dst (endpoint specs; see endpoint.h).  res is
 * filled as far as the step got.  Returns 0, or -1 with err.
 *
 * One side may be remote (remote.h): a push (local source, remote
 * destination) runs the steps above with the destination's part (1 and
 * 5) done by the server: HOLD, then RECEIVE; the destination record is
 * keyed by the endpoint as given.  A pull (remote source, local
 * destination) recovers and reads the local destination, and asks the
 * server to do steps 2-4 and 6 on its own catalogs (SEND, COMMIT).  Both
 * remote is USAGE.
 */
int	sync_run(const char *src, const char *dst, const struct sync_opts *o,
	    struct sync_result *res, struct as_err *err);

/*
 * The step between two local volumes (both endpoints EP_VOL, else
 * USAGE), in sync_vol.c: the same six steps with the vol driver
 * (driver/vol.h); the snapshot is taken while it is sent, so the source
 * is read once.  sync_run() calls it for vol: endpoints.
 */
struct endpoint;
int	sync_run_vol(const struct endpoint *se, const struct endpoint *de,
	    const struct sync_opts *o, struct sync_result *res,
	    struct as_err *err);

/*
 * The receiving child's work for a volume (an xfer_recv_fn, remote.h):
 * vol_receive_resume into dest with a struct sync_vol_recv as
 * arg; DIR_RECV_FORCE in rflags is VOL_RECV_FORCE.  The
 * result is reported in dir_recv_result's fields (entries_sent 1).
 */
struct sync_vol_recv {
	const char	*state;		/* the state directory */
	uint64_t	 resume_guid;	/* vol_receive_resume's, or 0 */
	uint64_t	 resume_off;
};
int	sync_vol_receive(void *arg, const char *dest, int in_fd,
	    int rflags, struct dir_recv_result *res, struct as_err *err);
/*
 * The sending side of a resume (a local sync, a push, a served pull):
 * can the cut transfer that a destination holds part of (snapshot
 * pguid, durable below byte poff; see vol_partial) continue?  Only when
 * the destination's record rec names it as pending, that pending catalog
 * has GUID pguid and base held, hashes for a prefix (a checkpoint) or
 * for every block (saved before END), and the volume at
 * src still has its size.  Then the catalog replaces *target and the
 * block to resume at (> 0, the lower of the two) is returned; else 0,
 * target untouched.
 */
struct snap_dest;
uint64_t sync_vol_resume_point(struct snapstore *ss,
	    const struct snap_dest *rec, uint64_t pguid, uint64_t poff,
	    uint64_t held, const char *src, struct catalog *target);

/*
 * The step when either endpoint is a ZFS dataset (sync_zfs.c) or a
 * btrfs subvolume (sync_btrfs.c); sync_run() calls them.  For ZFS:
 * zfs:A -> zfs:B natively (recursive unless SYNC_NO_RECURSE), and
 * zfs:A -> a local directory through a read-only clone and the dir
 * engine; res->zfs_datasets/zfs_full count the streams, send.stream_bytes
 * their bytes.  See the comment at the top of sync_zfs.c.
 */
int	sync_run_zfs(const struct endpoint *se, const struct endpoint *de,
	    const struct sync_opts *o, struct sync_result *res,
	    struct as_err *err);
int	sync_run_btrfs(const struct endpoint *se, const struct endpoint *de,
	    const struct sync_opts *o, struct sync_result *res,
	    struct as_err *err);

/*
 * The rate limit and progress of a transfer between two local paths
 * (transport/pace.h), from o->remote's rate, live rate and progress
 * mode; total: the bytes expected, 0 unknown.
 */
struct pace;
void	sync_pace_init(struct pace *p, const struct sync_opts *o,
	    uint64_t total);

/*
 * Pieces that serve's SEND shares with sync_run (the source side of a
 * step), on a locked snapstore:
 *
 * sync_settle: step 2 for the destination record named dst_key, given
 * what that destination holds (held); sets res->adopted/discarded.
 */
int	sync_settle(struct snapstore *ss, const char *dst_key, uint64_t held,
	    struct snap_dest *rec, struct sync_result *res,
	    struct as_err *err);
/*
 * sync_snapshot: step 4: scan src_abs (relative to base, may be NULL)
 * into target (initialised by the caller) with a new GUID and automatic
 * name; refuses an empty tree (NOTFOUND).  spec names the source in
 * messages.  res->scan, scan_ns, guid and name are set.  File systems
 * mounted below src_abs are part of the tree (DIR_SCAN_XDEV).
 */
int	sync_snapshot(struct snapstore *ss, const char *src_abs,
	    const char *spec, const struct catalog *base, uint32_t block_size,
	    struct catalog *target, struct sync_result *res,
	    struct as_err *err);
/* The same with the scan's DIR_SCAN_* flags: 0 for -N (rsync -x). */
int	sync_snapshot_scan(struct snapstore *ss, const char *src_abs,
	    const char *spec, const struct catalog *base, uint32_t block_size,
	    int scan_flags, struct catalog *target, struct sync_result *res,
	    struct as_err *err);
/*
 * A pull's agreement and its result, shared by the engines' pulls
 * (sync.c, sync_vol.c): see sync.c.
 */
struct remote;
struct remote_xfer;
struct proto_snap;
int	sync_pull_agree(struct remote *r, const struct endpoint *se,
	    const struct endpoint *de, int flags, const char *kind,
	    const char *dst_abs, uint64_t *held, struct proto_snap **v,
	    size_t *n, char **id, struct as_err *err);
/* That key, "pull:HOST:" kind dst_abs (allocated); reverse needs it too. */
char	*sync_pull_id(const char *kind, const char *dst_abs);
void	sync_pull_result(const struct remote_xfer *x,
	    const struct proto_snap *v, size_t n, struct sync_result *res);
/*
 * The source of a push of a native engine's stream (btrfs, zfs): send
 * writes it to fd in the sender's thread (xfer_src.send); tc, set up
 * here, names the target for the server (guid, name): the caller
 * releases it once the push is over.
 */
void	sync_native_src(struct xfer_src *xs, struct catalog *tc,
	    int (*send)(void *arg, int fd, struct as_err *err), void *arg,
	    uint64_t guid, const char *name);
/*
 * The source side of a ZFS pull, for a server (sync_zfs.c): the state
 * a local sync keeps for its source dataset (STATE/zfs/<key of
 * "zfs:DS">: the lock, one record per destination) is locked for one
 * SEND (CONFLICT "busy"); sync_zfs_new_name picks the new snapshot's
 * name (autosync_YYYY-MM-DD_HH:MM:SS, free in every dataset of t);
 * after the COMMIT, sync_zfs_src_commit records that destination dest
 * holds held (NULL: nothing of ds) and, when keep is not NULL, destroys
 * ds's other autosync_* snapshots that no destination's record holds.
 */
struct sync_zfs_src;
struct zfs_tree;
int	sync_zfs_src_open(const char *state, const char *ds,
	    struct sync_zfs_src **out, struct as_err *err);
void	sync_zfs_new_name(const struct zfs_tree *t, char *out, size_t outsz);
/*
 * `zfs receive -u` of in_fd into ds (zflags ZFS_RECV_*; in_fd stays
 * open), then res from ds's newest snapshot (target, its predecessor as
 * base, name); after, when not NULL, sees ds's listing and that name
 * (the server prunes there).  The receiving child of a push's server
 * and of a pull's client.
 */
struct zfs_ds;
int	sync_zfs_receive(const char *ds, int zflags, int in_fd,
	    struct dir_recv_result *res,
	    void (*after)(const struct zfs_ds *d, const char *newest),
	    struct as_err *err);
int	sync_zfs_src_commit(struct sync_zfs_src *zs, const char *dest,
	    const char *held, const char *keep, unsigned *pruned,
	    struct as_err *err);
void	sync_zfs_src_close(struct sync_zfs_src *zs);
/*
 * A server's SNAPSHOTS listing of zfs:root (v, n: one entry per dataset,
 * its full name, then its snapshots "DS@SNAP" oldest first) as a tree t
 * (no createtxg: the order is the listing's).  Untrusted: every name
 * must be valid and at or below root, a dataset listed once and after
 * its parent, a snapshot after its dataset (MALFORMED naming peer).
 */
int	sync_zfs_listing(const char *root, const char *peer,
	    const struct proto_snap *v, size_t n, struct zfs_tree *t,
	    struct as_err *err);

/*
 * btrfs between machines (sync_btrfs.c): a subvolume and, unless -N,
 * the subvolumes nested below it, one exchange each (REQ_F_NESTED names
 * a nested one by its path below the root, REL), identified by the
 * first 64 bits of the snapshot UUID (the protocol's GUID).
 *
 * sync_btrfs_receive: the receiving child's work (an xfer_recv_fn) for
 * the destination subvolume dst, arg a struct sync_btrfs_recv: open and
 * lock dst, check that it is what autosync published (modified:
 * CONFLICT unless DIR_RECV_FORCE), receive the stream (refused, AUTH,
 * before anything is read, unless trusted: btrfs receive does not
 * validate streams) into the snapshot directory of the root or of rel,
 * check that it made one read-only autosync_* subvolume with a
 * received_uuid, and delete the older received snapshots there.  The
 * root's (rel NULL) is then published as the view at dst, with tree the
 * children holding a snapshot of the same name placed in it (a push
 * sends them first) and the others' snapshot directories deleted (gone
 * on the source).  res: target_guid, name.
 * sync_btrfs_held: what dst (rel NULL) or its nested subvolume rel
 * holds (the newest received snapshot); 1, 0 (nothing), -1.
 */
struct sync_btrfs_recv {
	int		 trusted;	/* the sender is configured as trusted */
	const char	*rel;		/* a nested subvolume, or NULL */
	int		 tree;		/* root: publish the children too */
};
int	sync_btrfs_receive(void *arg, const char *dst, int in_fd, int rflags,
	    struct dir_recv_result *res, struct as_err *err);
int	sync_btrfs_held(const char *dst, const char *rel, uint64_t *guid,
	    char *name, size_t namesz, struct as_err *err);
/*
 * The sending side of a pull, for a server: sync_btrfs_list lists the
 * snapshots autosync keeps of src (oldest first) and, unless norecurse,
 * after them an entry "REL/" per nested subvolume followed by its
 * snapshots; sync_btrfs_send_open locks src's snapshot directory and
 * either (nested NULL) takes a new read-only snapshot of src and,
 * unless norecurse, of every nested subvolume under one name, and picks
 * the base (the snapshot whose GUID is base; none: CONFLICT unless
 * force, then a full stream), or (nested "NAME/REL") sends the snapshot
 * NAME of the nested subvolume REL from its snapshot base (none: full);
 * it fills the GO answer and the sender.  After the COMMIT,
 * sync_btrfs_send_commit records what destination id holds and prunes
 * (committed; the root's older snapshots and gone children's, or a
 * child's older ones), or deletes the new snapshot(s).
 */
/*
 * Untrusted input of the btrfs tree exchanges, for sync_btrfs.c and the
 * unit tests.  sync_btrfs_rel_check: REL, a nested subvolume's path
 * below the root as a peer names it, is relative, without an empty, "."
 * or ".." component or a control character, and short enough to name
 * its snapshot directory; 0, or -1 UNSAFE_PATH (who: for the message).
 * sync_btrfs_listing: a pull's listing (SNAPSHOTS) as subvolumes, [0]
 * the root, then each nested one ("REL/" entries: checked, ascending,
 * each once; no '/' in a snapshot's name, no zero GUID), their
 * snapshots pointing into v; 0, or -1 MALFORMED or UNSAFE_PATH.
 */
struct sync_btrfs_sub {
	const char		*rel;		/* "" the root */
	char			*relbuf;	/* owned */
	const struct proto_snap	*snaps;		/* in the listing */
	size_t			 nsnaps;
	uint64_t		 base;		/* btrfs_pull's: sent from */
};
int	sync_btrfs_rel_check(const char *rel, const char *who,
	    struct as_err *err);
int	sync_btrfs_listing(const char *peer, const struct proto_snap *v,
	    size_t n, struct sync_btrfs_sub **out, size_t *nout,
	    struct as_err *err);
void	sync_btrfs_subs_free(struct sync_btrfs_sub *v, size_t n);
struct sync_btrfs_send;
int	sync_btrfs_list(const char *src, int norecurse, struct proto_snap **v,
	    size_t *n, struct as_err *err);
int	sync_btrfs_send_open(const char *src, uint64_t base, int force,
	    int norecurse, const char *nested, struct sync_btrfs_send **out,
	    struct proto_result *go, struct xfer_src *xs, struct as_err *err);
int	sync_btrfs_send_commit(struct sync_btrfs_send *s, const char *id,
	    int committed, struct as_err *err);
void	sync_btrfs_send_close(struct sync_btrfs_send *s);

/*
 * A resume regenerates the stream of the interrupted snapshot p from the
 * tree as scanned now (t): NULL when every entry is as p has it (path,
 * type, inode, size, times, owner, mode, links, xattrs, symlink
 * target), else the first path that differs, in why.
 */
const char *sync_tree_changed(const struct catalog *t,
	    const struct catalog *p, char *why, size_t sz);
/* sync_prune: step 6's pruning, keeping keep. */
int	sync_prune(struct snapstore *ss, uint64_t keep, unsigned *pruned,
	    struct as_err *err);
/*
 * sync_prune_keep: the same keeping also the newest nkeep of sync's own
 * snapshots (keep counts as one of them; nkeep 0 is 1).  Snapshots a
 * destination holds or receives and the user's are kept whatever nkeep.
 */
int	sync_prune_keep(struct snapstore *ss, uint64_t keep, unsigned nkeep,
	    unsigned *pruned, struct as_err *err);

#endif
