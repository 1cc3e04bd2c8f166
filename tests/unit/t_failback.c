/*
 * t_failback.c - the steps of a directory failback (repl/failback.h) on
 * real directories: the old source's check (each kind of difference,
 * force), making it a destination (and checking it again: a reverse that
 * failed after that step runs again), making a destination a source
 * (its own dataset's catalog, the record of the destination).
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "base/xmalloc.h"
#include "driver/dir.h"
#include "format/stream.h"
#include "repl/failback.h"
#include "repl/snapstore.h"
#include "repl/sync.h"
#include "base/banned.h"

static char	tmpl[] = "/tmp/t_failback.XXXXXX";
static char	*top;
static char	src[512], state[512];

static void
put(const char *rel, const char *text)
{
	char p[600];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", src, rel);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static void
rm_rf(const char *p)
{
	(void)nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int
setup(void **st)
{
	char p[600];

	(void)st;
	if (top == NULL)
		top = mkdtemp(tmpl);
	assert_non_null(top);
	snprintf(p, sizeof(p), "%s/S", top);
	rm_rf(p);
	snprintf(p, sizeof(p), "%s/state", top);
	rm_rf(p);
	snprintf(p, sizeof(p), "%s/other-state", top);
	rm_rf(p);
	snprintf(src, sizeof(src), "%s/S", top);
	snprintf(state, sizeof(state), "%s/state", top);
	assert_int_equal(mkdir(src, 0755), 0);
	assert_int_equal(mkdir(state, 0700), 0);
	put("a", "alpha\n");
	put("b", "bravo\n");
	return 0;
}

static int
teardown_all(void **st)
{
	(void)st;
	if (top != NULL)
		rm_rf(top);
	return 0;
}

/* A snapshot of src in its catalogs (locked ss); its GUID. */
static uint64_t
snap(struct snapstore *ss)
{
	struct catalog c;
	struct sync_result *r;
	struct as_err err;
	uint64_t g;

	catalog_init(&c);
	r = xcalloc(1, sizeof(*r));
	assert_int_equal(snapstore_open(ss, state, src, 1, &err), 0);
	assert_int_equal(snapstore_lock(ss, &err), 0);
	assert_int_equal(sync_snapshot(ss, src, src, NULL, AS_BLOCK_DEFAULT,
	    &c, r, &err), 0);
	assert_int_equal(snapstore_save(ss, &c, 0, &err), 0);
	g = c.hdr.guid;
	catalog_release(&c);
	free(r);
	return g;
}

static void
t_check_source(void **st)
{
	struct snapstore ss;
	struct failback_drift d;
	struct catalog g;
	struct as_err err;
	uint64_t guid;
	char p[600];

	(void)st;
	memset(&ss, 0, sizeof(ss));
	ss.lock_fd = -1;
	guid = snap(&ss);
	catalog_init(&g);
	/* unchanged */
	assert_int_equal(failback_check_source(&ss, src, guid, "D", 0, &g, &d,
	    &err), 0);
	assert_true(d.ndiff == 0);
	assert_true(g.hdr.guid == guid);
	catalog_release(&g);
	/* not the newest snapshot: a final sync first */
	catalog_init(&g);
	assert_int_equal(failback_check_source(&ss, src, guid + 1, "D", 1, &g,
	    &d, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "run a final sync first"));
	catalog_release(&g);
	/* a chmod (ctime: "content"), then a new file: refused, or counted */
	snprintf(p, sizeof(p), "%s/b", src);
	assert_int_equal(chmod(p, 0600), 0);
	catalog_init(&g);
	assert_int_equal(failback_check_source(&ss, src, guid, "D", 0, &g, &d,
	    &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "first: content 'b'"));
	assert_non_null(strstr(err.msg, "--force rolls it back"));
	catalog_release(&g);
	put("c", "charlie\n");
	catalog_init(&g);
	assert_int_equal(failback_check_source(&ss, src, guid, "D", 1, &g, &d,
	    &err), 0);
	assert_true(d.ndiff >= 2);
	catalog_release(&g);
	snapstore_release(&ss);
}

/*
 * Demoted: S holds G; checking S again finds nothing changed although
 * .autosync moved the root's ctime and links (a reverse run again).
 */
static void
t_demote_again(void **st)
{
	struct snapstore ss;
	struct failback_drift d;
	struct cat_header h;
	struct catalog g;
	struct as_err err;
	uint64_t guid;

	(void)st;
	memset(&ss, 0, sizeof(ss));
	ss.lock_fd = -1;
	guid = snap(&ss);
	catalog_init(&g);
	assert_int_equal(failback_check_source(&ss, src, guid, "D", 0, &g, &d,
	    &err), 0);
	assert_int_equal(failback_demote(src, &g, &err), 0);
	catalog_release(&g);
	memset(&h, 0, sizeof(h));
	assert_int_equal(dir_held(src, &h, &err), 1);
	assert_true(h.guid == guid);
	cat_header_release(&h);
	catalog_init(&g);
	assert_int_equal(failback_check_source(&ss, src, guid, "D", 0, &g, &d,
	    &err), 0);
	assert_true(d.ndiff == 0);
	catalog_release(&g);
	snapstore_release(&ss);
}

/* Promoted: the held catalog is a snapshot of the new source's own. */
static void
t_promote(void **st)
{
	struct snapstore ss, ds;
	struct failback_drift d;
	struct snap_dest rec;
	struct catalog g, c;
	struct as_err err;
	uint64_t guid;
	char dst[600];

	(void)st;
	memset(&ss, 0, sizeof(ss));
	memset(&ds, 0, sizeof(ds));
	memset(&rec, 0, sizeof(rec));
	ss.lock_fd = ds.lock_fd = -1;
	guid = snap(&ss);
	catalog_init(&g);
	assert_int_equal(failback_check_source(&ss, src, guid, "D", 0, &g, &d,
	    &err), 0);
	assert_int_equal(failback_demote(src, &g, &err), 0);
	/* src, holding G, now plays the old destination */
	snprintf(dst, sizeof(dst), "%s/other-state", top);
	assert_int_equal(mkdir(dst, 0700), 0);
	assert_int_equal(snapstore_open(&ds, dst, src, 1, &err), 0);
	assert_int_equal(snapstore_lock(&ds, &err), 0);
	assert_int_equal(failback_promote(&ds, src, guid + 1, &g, "pull:x:/y",
	    &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_int_equal(failback_promote(&ds, src, guid, &g, "pull:x:/y",
	    &err), 0);
	catalog_init(&c);
	assert_int_equal(snapstore_load_guid(&ds, guid, &c, &err), 1);
	assert_string_equal(c.hdr.source, src);
	catalog_release(&c);
	assert_int_equal(snapstore_dest_get(&ds, "pull:x:/y", &rec, &err), 1);
	assert_true(rec.held_guid == guid);
	snap_dest_release(&rec);
	catalog_release(&g);
	snapstore_release(&ds);
	snapstore_release(&ss);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(t_check_source, setup),
		cmocka_unit_test_setup(t_demote_again, setup),
		cmocka_unit_test_setup(t_promote, setup),
	};

	return cmocka_run_group_tests(tests, NULL, teardown_all);
}
