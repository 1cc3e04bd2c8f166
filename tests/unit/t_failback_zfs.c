/*
 * t_failback_zfs.c - the check of a ZFS failback (repl/failback.h,
 * failback_zfs_check) on listings: G by GUID per dataset against the
 * other side's tree (a local listing, or a server's SNAPSHOTS through
 * sync_zfs_listing, which has no createtxg), or on a server the root by
 * GUID and the children by G's name; a write since G; newer snapshots
 * (autosync's pass with force, another one never); what each refuses.
 * The side that runs zfs (demote, promote) is t7017's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/xmalloc.h"
#include "driver/zfs.h"
#include "repl/failback.h"
#include "repl/proto.h"
#include "repl/sync.h"
#include "base/banned.h"

#define COLS	"name,type,guid,createtxg,written"
#define G1	"autosync_2026-11-28_10:00:00"
#define G2	"autosync_2026-11-28_11:00:00"

/* A tree from `zfs list` text (COLS); written is the datasets' "written". */
static void
tree(struct zfs_tree *t, const char *text)
{
	struct as_err err;

	assert_int_equal(zfs_parse_list(text, COLS, t, &err), 0);
}

/* S: tank/a (written wa) and tank/a/c, both with G1 and maybe more. */
static void
src_tree(struct zfs_tree *t, int wa, const char *extra)
{
	char *s;

	s = xasprintf(
	    "tank/a\tfilesystem\t1\t1\t%d\n"
	    "tank/a@" G1 "\tsnapshot\t11\t10\t0\n"
	    "%s"
	    "tank/a/c\tfilesystem\t2\t2\t0\n"
	    "tank/a/c@" G1 "\tsnapshot\t21\t10\t0\n", wa,
	    extra != NULL ? extra : "");
	tree(t, s);
	free(s);
}

/* D: vault/a and vault/a/c holding G1 (GUIDs 11, 21). */
static void
dst_tree(struct zfs_tree *t)
{
	tree(t,
	    "vault/a\tfilesystem\t5\t1\t0\n"
	    "vault/a@" G1 "\tsnapshot\t11\t30\t0\n"
	    "vault/a/c\tfilesystem\t6\t2\t0\n"
	    "vault/a/c@" G1 "\tsnapshot\t21\t30\t0\n");
}

static int
check(const struct zfs_tree *st, const struct zfs_tree *dt, uint64_t guid,
    int local, int force, struct failback_zfs_g *g,
    struct failback_drift *d, struct as_err *err)
{
	as_err_clear(err);
	return failback_zfs_check(st, "tank/a", dt, "vault/a", guid, local,
	    force, g, d, err);
}

static void
test_unchanged(void **state)
{
	struct zfs_tree st, dt;
	struct failback_zfs_g g;
	struct failback_drift d;
	struct as_err err;

	(void)state;
	src_tree(&st, 0, NULL);
	dst_tree(&dt);
	assert_int_equal(check(&st, &dt, 0, 1, 0, &g, &d, &err), 0);
	assert_string_equal(g.name, G1);
	assert_int_equal(g.guid, 11);
	assert_int_equal(d.ndiff, 0);
	zfs_tree_release(&st);
	zfs_tree_release(&dt);
}

static void
test_written(void **state)
{
	struct zfs_tree st, dt;
	struct failback_zfs_g g;
	struct failback_drift d;
	struct as_err err;

	(void)state;
	src_tree(&st, 4096, NULL);
	dst_tree(&dt);
	assert_int_equal(check(&st, &dt, 0, 1, 0, &g, &d, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "changed since '" G1 "'"));
	assert_non_null(strstr(err.msg, "--force rolls it back"));
	/* forced: passes, counted */
	assert_int_equal(check(&st, &dt, 0, 1, 1, &g, &d, &err), 0);
	assert_int_equal(d.ndiff, 1);
	assert_string_equal(d.first, "'tank/a'");
	/* S is a server's: its server looks at the writes */
	assert_int_equal(check(&st, &dt, 0, 0, 0, &g, &d, &err), 0);
	assert_int_equal(d.ndiff, 0);
	zfs_tree_release(&st);
	zfs_tree_release(&dt);
}

static void
test_newer_snapshots(void **state)
{
	struct zfs_tree st, dt;
	struct failback_zfs_g g;
	struct failback_drift d;
	struct as_err err;

	(void)state;
	dst_tree(&dt);
	/* an autosync_* snapshot after G: a final sync, or forced */
	src_tree(&st, 0, "tank/a@" G2 "\tsnapshot\t12\t40\t0\n");
	assert_int_equal(check(&st, &dt, 0, 1, 0, &g, &d, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "run a final sync first"));
	assert_non_null(strstr(err.msg, "'" G2 "'"));
	assert_int_equal(check(&st, &dt, 0, 1, 1, &g, &d, &err), 0);
	assert_int_equal(d.ndiff, 1);
	assert_non_null(strstr(d.first, "after '" G1 "'"));
	zfs_tree_release(&st);
	/* one autosync did not make: never */
	src_tree(&st, 0, "tank/a@mine\tsnapshot\t12\t40\t0\n");
	assert_int_equal(check(&st, &dt, 0, 1, 1, &g, &d, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "'mine'"));
	assert_non_null(strstr(err.msg, "autosync did not make"));
	zfs_tree_release(&st);
	zfs_tree_release(&dt);
}

static void
test_diverged(void **state)
{
	struct zfs_tree st, dt;
	struct failback_zfs_g g;
	struct failback_drift d;
	struct as_err err;

	(void)state;
	src_tree(&st, 0, NULL);
	/* D's child holds a snapshot S never had: even forced */
	tree(&dt,
	    "vault/a\tfilesystem\t5\t1\t0\n"
	    "vault/a@" G1 "\tsnapshot\t11\t30\t0\n"
	    "vault/a/c\tfilesystem\t6\t2\t0\n"
	    "vault/a/c@" G1 "\tsnapshot\t99\t30\t0\n");
	assert_int_equal(check(&st, &dt, 0, 1, 1, &g, &d, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "'vault/a/c' holds"));
	zfs_tree_release(&dt);
	/* D lacks the child */
	tree(&dt,
	    "vault/a\tfilesystem\t5\t1\t0\n"
	    "vault/a@" G1 "\tsnapshot\t11\t30\t0\n");
	assert_int_equal(check(&st, &dt, 0, 1, 0, &g, &d, &err), -1);
	assert_non_null(strstr(err.msg, "holds no snapshot"));
	zfs_tree_release(&dt);
	/* no S at all */
	memset(&dt, 0, sizeof(dt));
	zfs_tree_release(&st);
	memset(&st, 0, sizeof(st));
	assert_int_equal(check(&st, &dt, 0, 1, 0, &g, &d, &err), -1);
	assert_int_equal(err.code, AS_E_NOTFOUND);
}

/* On a server: the root by GUID, the children by G's name. */
static void
test_server_side(void **state)
{
	struct zfs_tree st;
	struct failback_zfs_g g;
	struct failback_drift d;
	struct as_err err;

	(void)state;
	src_tree(&st, 0, NULL);
	assert_int_equal(check(&st, NULL, 11, 1, 0, &g, &d, &err), 0);
	assert_string_equal(g.name, G1);
	assert_int_equal(check(&st, NULL, 12, 1, 0, &g, &d, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "000000000000000c"));
	zfs_tree_release(&st);
	/* a child whose newest is not G's name */
	tree(&st,
	    "tank/a\tfilesystem\t1\t1\t0\n"
	    "tank/a@" G1 "\tsnapshot\t11\t10\t0\n"
	    "tank/a/c\tfilesystem\t2\t2\t0\n"
	    "tank/a/c@other\tsnapshot\t21\t10\t0\n");
	assert_int_equal(check(&st, NULL, 11, 1, 1, &g, &d, &err), -1);
	assert_non_null(strstr(err.msg, "'tank/a/c'"));
	zfs_tree_release(&st);
}

/* A server's listing (no createtxg): the newest is the last listed. */
static void
test_listing(void **state)
{
	struct proto_snap v[5];
	struct zfs_tree st, dt;
	struct failback_zfs_g g;
	struct failback_drift d;
	struct as_err err;

	(void)state;
	memset(v, 0, sizeof(v));
	snprintf(v[0].name, sizeof(v[0].name), "tank/a");
	v[0].guid = 1;
	snprintf(v[1].name, sizeof(v[1].name), "tank/a@autosync_old");
	v[1].guid = 10;
	snprintf(v[2].name, sizeof(v[2].name), "tank/a@" G1);
	v[2].guid = 11;
	snprintf(v[3].name, sizeof(v[3].name), "tank/a/c");
	v[3].guid = 2;
	snprintf(v[4].name, sizeof(v[4].name), "tank/a/c@" G1);
	v[4].guid = 21;
	assert_int_equal(sync_zfs_listing("tank/a", "peer", v, 5, &st, &err),
	    0);
	dst_tree(&dt);
	assert_int_equal(check(&st, &dt, 0, 0, 0, &g, &d, &err), 0);
	assert_int_equal(g.guid, 11);
	zfs_tree_release(&dt);
	/* D holds the older one: S has G1 after it */
	tree(&dt,
	    "vault/a\tfilesystem\t5\t1\t0\n"
	    "vault/a@autosync_old\tsnapshot\t10\t30\t0\n"
	    "vault/a/c\tfilesystem\t6\t2\t0\n"
	    "vault/a/c@" G1 "\tsnapshot\t21\t30\t0\n");
	assert_int_equal(check(&st, &dt, 0, 0, 0, &g, &d, &err), -1);
	assert_non_null(strstr(err.msg, "run a final sync first"));
	zfs_tree_release(&dt);
	zfs_tree_release(&st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unchanged),
		cmocka_unit_test(test_written),
		cmocka_unit_test(test_newer_snapshots),
		cmocka_unit_test(test_diverged),
		cmocka_unit_test(test_server_side),
		cmocka_unit_test(test_listing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
