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
 *     failover, is fine: that is B's content now, and it is sent);
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
 * A tree (A with nested subvolumes, replicated as B's view's children):
 * each nested subvolume REL takes the same steps in its children/ENC
 * directories (btrfs.h), parents first: both trees have the same
 * nested subvolumes (else CONFLICT, even with force: one A has alone,
 * made since G or left out by -N, would be deleted); A/REL's G, B's
 * received copy of it, A/REL unchanged since (a change names A/REL and
 * its first changed path; each subvolume's comparison leaves out the
 * ones nested in it), all checked before anything is made; then S0 of
 * each (one name), each sent with `send -p` its G_B, and the R0s
 * published at A as one view (btrfs_dest_publish, as a run publishes
 * a tree: one rename); then each B/REL is made writable.  An R0 is a
 * snapshot of its G_A and keeps G_A's placeholders of the subvolumes
 * nested in it (empty directories of inode 2), which no stream makes
 * and later runs would carry: before the publication, an R0 that has
 * some is made again without them, as the network's R0 is made (a
 * writable snapshot, S0's UUID and ctransid set, read-only).
 *
 * The next run B -> A is an ordinary incremental from S0 (R0 carries
 * S0's UUID as its received_uuid), per subvolume.  A failure in 2-4
 * deletes what it made (S0, R0): nothing changed.  After 4 a failure
 * is reported as "reversed, but": the service must be swapped anyway.
 *
 * With one side behind a server (REVERSE, doc/autosync-protocol.md),
 * no stream runs during the reverse: B must be as received (S0 = G, so
 * written is CONFLICT), and A's R0 is made as btrfs receive would have
 * made it from an empty incremental: a writable snapshot of G_A given
 * S0's UUID as received_uuid and S0's ctransid as stransid
 * (BTRFS_IOC_SET_RECEIVED_SUBVOL), then read-only (failback_btrfs_demote).
 * A tree takes the same steps per subvolume (the *_tree calls, REVERSE
 * with REQ_F_SUBVOLS): each side checks its own subvolumes, and the
 * other side's list of nested subvolumes (REL, the UUID of its G, S0)
 * is untrusted input, checked against this side's own tree: the same
 * RELs (tree_match's rules), each G as this side knows it; only this
 * side's own paths are ever used.  Each R0 is made without G_A's
 * placeholders (as above), and the tree published at A by one rename.
 * The steps each side does on its own are below; failback_btrfs_local
 * is made of them too.
 */
#ifndef AS_FAILBACK_BTRFS_H
#define AS_FAILBACK_BTRFS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
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

/* S0, the new source's first snapshot, as the old source must know it. */
struct failback_btrfs_base {
	char		 name[BTRFS_NAME_MAX + 1];
	char		 uuid[BTRFS_UUID_LEN + 1];
	uint64_t	 ctransid;
};
/* As one line "UUID CTRANSID NAME" (REVERSE's blob); decode checks it. */
void	failback_btrfs_base_encode(const struct failback_btrfs_base *s0,
	    struct buf *b);
int	failback_btrfs_base_decode(const void *p, size_t len,
	    struct failback_btrfs_base *s0, struct as_err *err);

/*
 * A nested subvolume in a reverse of a tree between machines, as the
 * other side learns it: REL below the root, the UUID of its G (A's
 * snapshot, B's copy's received_uuid) and S0 (named as the root's).
 */
struct failback_btrfs_sub {
	char		 rel[BTRFS_NAME_MAX + 1];
	char		 g[BTRFS_UUID_LEN + 1];
	char		 s0uuid[BTRFS_UUID_LEN + 1];	/* "": no S0 (yet) */
	uint64_t	 s0ct;		/* S0's ctransid */
};
#define FAILBACK_BTRFS_SUBS_MAX	4096		/* nested subvolumes */
#define FAILBACK_BTRFS_TREE_MAX	(2u << 20)	/* a tree's blob */
/*
 * A tree's blob: with s0, S0's line (as above), then a line "GUUID
 * S0UUID S0CTRANSID REL" per nested subvolume; without, "GUUID REL"
 * lines only.  decode checks every line (each REL with
 * sync_btrfs_rel_check, ascending: parents first, once), *v owned.
 */
void	failback_btrfs_tree_encode(const struct failback_btrfs_base *s0,
	    const struct failback_btrfs_sub *v, size_t n, struct buf *b);
int	failback_btrfs_tree_decode(const void *p, size_t len, int with_s0,
	    struct failback_btrfs_base *s0, struct failback_btrfs_sub **v,
	    size_t *n, struct as_err *err);

/* One nested subvolume's state on either side (private). */
struct fb_child;

/* The old source A, checked and locked (step 1's half for A). */
struct failback_btrfs_old {
	char		*path;
	char		*dir;		/* its snapshot directory */
	int		 lock_fd;
	char		 uuid[BTRFS_UUID_LEN + 1];	/* A's */
	struct btrfs_snap g;				/* G_A */
	char		**rels;		/* a tree: A's nested subvolumes */
	size_t		 nrels;
	struct fb_child	*kids;		/* ... each one's G_A, checked */
};
/*
 * A is a source subvolume without nested ones whose newest snapshot is
 * G (guid: its UUID's first 64 bits; 0 any) and that was not written
 * since (CONFLICT naming the first change, unless force: res->changed).
 */
int	failback_btrfs_check_source(const char *a, uint64_t guid, int force,
	    struct failback_btrfs_old *o, struct failback_btrfs_result *res,
	    struct as_err *err);
/*
 * A becomes a replica holding S0 (R0 made from G_A, see above),
 * published at A (the old A deleted); its own snapshots (but those a
 * destination other than dst holds) go.
 */
int	failback_btrfs_demote(struct failback_btrfs_old *o,
	    const struct failback_btrfs_base *s0, const char *dst,
	    struct as_err *err);
void	failback_btrfs_old_release(struct failback_btrfs_old *o);
/*
 * The same for A with nested subvolumes (o->rels, none: one subvolume):
 * the root and each nested one (G_A its newest snapshot, not written
 * since: CONFLICT naming it unless force; the ones nested in it left
 * out of its comparison), all before anything changes.
 */
int	failback_btrfs_check_source_tree(const char *a, uint64_t guid,
	    int force, struct failback_btrfs_old *o,
	    struct failback_btrfs_result *res, struct as_err *err);
/* A's nested subvolumes with their G (no S0) for the other side; owned. */
void	failback_btrfs_source_subs(const struct failback_btrfs_old *o,
	    struct failback_btrfs_sub **v, size_t *n);
/*
 * The other side's list (other: its name, for messages) must name
 * exactly A's nested subvolumes, each with A's G: CONFLICT otherwise
 * (tree_match's messages, or "run a final sync first").
 */
int	failback_btrfs_match_source(const struct failback_btrfs_old *o,
	    const char *other, const struct failback_btrfs_sub *v, size_t n,
	    struct as_err *err);
/*
 * failback_btrfs_demote of a tree: an R0 per subvolume from its G_A
 * (v, matched: each one's S0), placeholders left out, all published at
 * A as one view; its snapshots as a source go.  A failure before the
 * publication deletes the R0s: A as it was.
 */
int	failback_btrfs_demote_tree(struct failback_btrfs_old *o,
	    const struct failback_btrfs_base *s0,
	    const struct failback_btrfs_sub *v, size_t n, const char *dst,
	    struct as_err *err);

/* The old destination B, checked and locked (step 1's half for B). */
struct failback_btrfs_new {
	struct btrfs_dest d;
	struct btrfs_snap g;	/* G_B, its newest received snapshot */
	int		 written;	/* the view written since published */
	int		 s0;		/* S0 taken (drop it on failure) */
	char		 s0name[BTRFS_NAME_MAX + 1];
	char		**rels;		/* a tree: B's nested subvolumes */
	size_t		 nrels;
	struct fb_child	*kids;		/* ... G_B of each, once checked */
	int		 kids_ok;	/* failback_btrfs_check_dest_children */
};
/*
 * B is a view autosync published (written only if allow_written), no
 * nested subvolumes, whose newest received snapshot has received_uuid
 * G (guid; 0: any, n->g says which), else CONFLICT.
 */
int	failback_btrfs_check_dest(const char *b, uint64_t guid,
	    int allow_written, struct failback_btrfs_new *n,
	    struct failback_btrfs_result *res, struct as_err *err);
/* S0: a read-only snapshot of B named name (a fresh one when NULL). */
int	failback_btrfs_take_base(struct failback_btrfs_new *n,
	    const char *name, struct failback_btrfs_base *s0,
	    struct as_err *err);
/*
 * B becomes the source: writable, its dests record says that id holds
 * S0, its received snapshots and published record go.
 */
int	failback_btrfs_promote(struct failback_btrfs_new *n, const char *id,
	    struct as_err *err);
/* Unlock; an S0 taken and not promoted is deleted. */
void	failback_btrfs_new_release(struct failback_btrfs_new *n);
/*
 * B of a tree (n->rels, none: one subvolume): the view as received,
 * the root's newest received snapshot G (guid, 0 any); its children
 * are checked by failback_btrfs_check_dest_children.
 */
int	failback_btrfs_check_dest_tree(const char *b, uint64_t guid,
	    struct failback_btrfs_new *n, struct failback_btrfs_result *res,
	    struct as_err *err);
/*
 * Each nested subvolume's G_B: its newest received snapshot, whose
 * received_uuid is, with v (the other side's list, other: its name),
 * that list's G of it (the RELs exactly B's, else CONFLICT); without
 * v, whatever it is.
 */
int	failback_btrfs_check_dest_children(struct failback_btrfs_new *n,
	    const char *other, const struct failback_btrfs_sub *v, size_t nv,
	    struct as_err *err);
/*
 * S0 of the root and of each nested subvolume, one fresh name (*s0 the
 * root's); *v (owned) lists each one's REL, G and S0, for the other
 * side.  Deleted by release unless promoted.
 */
int	failback_btrfs_take_base_tree(struct failback_btrfs_new *n,
	    struct failback_btrfs_base *s0, struct failback_btrfs_sub **v,
	    size_t *nv, struct as_err *err);
/* failback_btrfs_promote, then each nested subvolume writable. */
int	failback_btrfs_promote_tree(struct failback_btrfs_new *n,
	    const char *id, struct as_err *err);

#endif
