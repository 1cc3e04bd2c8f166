/*
 * t_failback_vol.c - the steps of a volume failback (repl/failback.h,
 * failback_vol_*) on real image files: the old source's check
 * (unchanged, a changed block, a changed size, not the newest snapshot,
 * force), making it a destination (its record), making the destination
 * a source (the catalog copied, the record of the destination, its own
 * record gone), and what each refuses.
 */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "base/xmalloc.h"
#include "driver/vol.h"
#include "format/stream.h"
#include "repl/failback.h"
#include "repl/snapstore.h"
#include "base/banned.h"

#define BS	65536u
#define NBLK	4

static char	tmpl[] = "/tmp/t_failback_vol.XXXXXX";
static char	*top;
static char	a[512], b[512], state[512];
static uint64_t	G;

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static void
write_at(const char *path, uint64_t off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0600);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
	close(fd);
}

/* A and B: the same NBLK blocks; A's catalogs hold G, B's record G. */
static int
setup(void **st)
{
	struct snapstore ss;
	struct vol_stats vs;
	struct catalog g;
	struct as_err err;
	uint8_t *buf;
	size_t i;

	(void)st;
	if (top == NULL)
		top = mkdtemp(tmpl);
	assert_non_null(top);
	snprintf(state, sizeof(state), "%s/state", top);
	(void)nftw(state, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(a, sizeof(a), "%s/A.img", top);
	snprintf(b, sizeof(b), "%s/B.img", top);
	unlink(a);
	unlink(b);
	{
		char r[600];

		snprintf(r, sizeof(r), "%s.autosync", a);
		unlink(r);
		snprintf(r, sizeof(r), "%s.autosync", b);
		unlink(r);
		snprintf(r, sizeof(r), "%s.autosync-journal", b);
		unlink(r);
	}
	assert_int_equal(mkdir(state, 0700), 0);
	buf = xmalloc(NBLK * BS);
	for (i = 0; i < NBLK * BS; i++)
		buf[i] = (uint8_t)(i * 7 + i / 4096);
	write_at(a, 0, buf, NBLK * BS);
	write_at(b, 0, buf, NBLK * BS);
	free(buf);

	memset(&ss, 0, sizeof(ss));
	ss.lock_fd = -1;
	catalog_init(&g);
	memset(&vs, 0, sizeof(vs));
	assert_int_equal(snapstore_open(&ss, state, a, 1, &err), 0);
	assert_int_equal(vol_scan(a, BS, &g, &vs, &err), 0);
	g.hdr.time_ns = (int64_t)time(NULL) * 1000000000 - 60000000000LL;
	assert_int_equal(snapstore_auto_name(&ss, g.hdr.time_ns, g.hdr.name,
	    sizeof(g.hdr.name), &err), 0);
	g.hdr.guid = G = snap_guid_new();
	assert_int_equal(snapstore_save(&ss, &g, 0, &err), 0);
	assert_int_equal(vol_hold_set(b, state, &g, &err), 0);
	catalog_release(&g);
	snapstore_release(&ss);
	return 0;
}

static int
teardown_all(void **st)
{
	(void)st;
	if (top != NULL)
		(void)nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void
open_locked(struct snapstore *ss, const char *ds)
{
	struct as_err err;

	memset(ss, 0, sizeof(*ss));
	ss->lock_fd = -1;
	assert_int_equal(snapstore_open(ss, state, ds, 1, &err), 0);
	assert_int_equal(snapstore_lock(ss, &err), 0);
}

static void
test_unchanged_reverse(void **st)
{
	struct snapstore sa, sb;
	struct failback_drift d;
	struct snap_dest rec;
	struct catalog out, c;
	struct as_err err;
	uint64_t held;

	(void)st;
	open_locked(&sa, a);
	open_locked(&sb, b);
	catalog_init(&out);
	catalog_init(&c);
	assert_int_equal(failback_vol_check_source(&sa, a, G, b, 0, &out, &d,
	    &err), 0);
	assert_int_equal(d.ndiff, 0);
	assert_true(out.hdr.guid == G);
	assert_int_equal(failback_vol_demote(a, state, &out, &err), 0);
	assert_int_equal(vol_held(a, state, &held, NULL, &err), 1);
	assert_true(held == G);
	assert_int_equal(failback_vol_promote(&sb, b, state, G, &out, a,
	    &err), 0);
	/* B is a source: no record; its catalogs hold G, named for B */
	assert_int_equal(vol_held(b, state, &held, NULL, &err), 0);
	assert_int_equal(snapstore_load_guid(&sb, G, &c, &err), 1);
	assert_string_equal(c.hdr.source, b);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ents[0].size, NBLK * BS);
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(snapstore_dest_get(&sb, a, &rec, &err), 1);
	assert_true(rec.held_guid == G);
	snap_dest_release(&rec);
	/* the reverse back: B holds nothing now, A holds G */
	assert_int_equal(failback_vol_promote(&sb, b, state, G, &out, a,
	    &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	catalog_release(&c);
	catalog_release(&out);
	snapstore_release(&sa);
	snapstore_release(&sb);
}

static void
test_changed_block(void **st)
{
	struct snapstore sa, sb;
	struct failback_drift d;
	struct catalog out, c;
	struct as_err err;
	uint64_t held;
	uint8_t x[100];

	(void)st;
	memset(x, 0xa5, sizeof(x));
	write_at(a, 2 * BS + 10, x, sizeof(x));
	open_locked(&sa, a);
	open_locked(&sb, b);
	catalog_init(&out);
	catalog_init(&c);
	assert_int_equal(failback_vol_check_source(&sa, a, G, b, 0, &out, &d,
	    &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "first: block 2 "));
	assert_int_equal(d.ndiff, 1);
	/* nothing changed: A has no record, B still holds G */
	assert_int_equal(vol_held(a, state, &held, NULL, &err), 0);
	assert_int_equal(vol_held(b, state, &held, NULL, &err), 1);
	/* forced: a new snapshot of A as read, taken from G */
	assert_int_equal(failback_vol_check_source(&sa, a, G, b, 1, &out, &d,
	    &err), 0);
	assert_int_equal(d.ndiff, 1);
	assert_true(out.hdr.guid != G && out.hdr.guid != 0);
	assert_true(out.hdr.base_guid == G);
	assert_int_equal(failback_vol_demote(a, state, &out, &err), 0);
	assert_int_equal(vol_held(a, state, &held, NULL, &err), 1);
	assert_true(held == out.hdr.guid);
	assert_int_equal(failback_vol_promote(&sb, b, state, G, &out, a,
	    &err), 0);
	assert_int_equal(snapstore_load_guid(&sb, out.hdr.guid, &c, &err), 1);
	catalog_release(&c);
	catalog_release(&out);
	snapstore_release(&sa);
	snapstore_release(&sb);
}

static void
test_changed_size(void **st)
{
	struct snapstore sa;
	struct failback_drift d;
	struct catalog out;
	struct as_err err;

	(void)st;
	assert_int_equal(truncate(a, NBLK * BS + 1000), 0);
	open_locked(&sa, a);
	catalog_init(&out);
	assert_int_equal(failback_vol_check_source(&sa, a, G, b, 0, &out, &d,
	    &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "size"));
	catalog_release(&out);
	snapstore_release(&sa);
}

static void
test_not_newest(void **st)
{
	struct snapstore sa;
	struct failback_drift d;
	struct vol_stats vs;
	struct catalog out, n;
	struct as_err err;

	(void)st;
	open_locked(&sa, a);
	catalog_init(&out);
	catalog_init(&n);
	memset(&vs, 0, sizeof(vs));
	assert_int_equal(vol_scan(a, BS, &n, &vs, &err), 0);
	n.hdr.time_ns = (int64_t)time(NULL) * 1000000000;
	assert_int_equal(snapstore_auto_name(&sa, n.hdr.time_ns, n.hdr.name,
	    sizeof(n.hdr.name), &err), 0);
	n.hdr.guid = snap_guid_new();
	n.hdr.base_guid = G;
	assert_int_equal(snapstore_save(&sa, &n, 0, &err), 0);
	assert_int_equal(failback_vol_check_source(&sa, a, G, b, 1, &out, &d,
	    &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "final sync"));
	catalog_release(&n);
	catalog_release(&out);
	snapstore_release(&sa);
}

static void
test_promote_refusals(void **st)
{
	struct snapstore sa, sb;
	struct failback_drift d;
	struct catalog out;
	struct as_err err;
	char jp[600];

	(void)st;
	open_locked(&sa, a);
	open_locked(&sb, b);
	catalog_init(&out);
	assert_int_equal(failback_vol_check_source(&sa, a, G, b, 0, &out, &d,
	    &err), 0);
	/* B holds G, not G + 1 */
	assert_int_equal(failback_vol_promote(&sb, b, state, G + 1, &out, a,
	    &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	out.hdr.guid = G + 1;
	out.hdr.base_guid = G + 1;
	assert_int_equal(failback_vol_promote(&sb, b, state, G + 1, &out, a,
	    &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	/* a journal next to the volume: no record is written over it */
	snprintf(jp, sizeof(jp), "%s.autosync-journal", a);
	write_at(jp, 0, "x", 1);
	out.hdr.guid = G;
	assert_int_equal(vol_hold_set(a, state, &out, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	unlink(jp);
	catalog_release(&out);
	snapstore_release(&sa);
	snapstore_release(&sb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_unchanged_reverse, setup),
		cmocka_unit_test_setup(test_changed_block, setup),
		cmocka_unit_test_setup(test_changed_size, setup),
		cmocka_unit_test_setup(test_not_newest, setup),
		cmocka_unit_test_setup(test_promote_refusals, setup),
	};

	return cmocka_run_group_tests(tests, NULL, teardown_all);
}
