/*
 * t_failback_btrfs.c - the line a btrfs REVERSE carries (S0: UUID,
 * ctransid, name; failback_btrfs.h): a round trip, and every malformed
 * form a peer could send refused as MALFORMED with nothing filled in.
 * A tree's blob (S0's line, then a line per nested subvolume, or the
 * nested subvolumes alone): a round trip, and what a peer could send
 * to name a path outside the root, or out of order, refused.
 * What needs a file system is in tests/e2e/t7018-reverse-btrfs.sh and
 * t7020-reverse-btrfs-tree-remote.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "repl/failback_btrfs.h"

#define UUID	"5a24ac37-a99e-6c47-a7f0-e0b83e42d1a6"
#define UUID2	"0123abcd-a99e-6c47-a7f0-e0b83e42d1a6"

static void
t_round_trip(void **state)
{
	struct failback_btrfs_base a, b;
	struct buf out = BUF_INIT;
	struct as_err err;

	(void)state;
	memset(&a, 0, sizeof(a));
	snprintf(a.uuid, sizeof(a.uuid), "%s", UUID);
	snprintf(a.name, sizeof(a.name), "autosync_2026-11-28_17:41:47_2");
	a.ctransid = 18446744073709551615ull;
	failback_btrfs_base_encode(&a, &out);
	assert_int_equal(out.len, strlen(UUID " 18446744073709551615 "
	    "autosync_2026-11-28_17:41:47_2\n"));
	as_err_clear(&err);
	assert_int_equal(failback_btrfs_base_decode(out.data, out.len, &b,
	    &err), 0);
	assert_string_equal(b.uuid, a.uuid);
	assert_string_equal(b.name, a.name);
	assert_true(b.ctransid == a.ctransid);
	buf_release(&out);
}

static void
t_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"\n",
		UUID " 12 autosync_x",			/* no newline */
		UUID " 12 autosync_x\n\n",		/* two lines */
		UUID "  12 autosync_x\n",
		UUID " -1 autosync_x\n",
		UUID " 99999999999999999999 autosync_x\n",	/* overflow */
		UUID " 12\n",
		UUID " 12 \n",
		UUID " 12 mine\n",			/* not autosync's */
		UUID " 12 autosync_../../etc\n",
		UUID " 12 autosync_a/b\n",
		"5a24ac37a99e6c47a7f0e0b83e42d1a6xxxx 12 autosync_x\n",
		"5A24AC37-A99E-6C47-A7F0-E0B83E42D1A6 12 autosync_x\n",
		"5a24ac37-a99e-6c47-a7f0-e0b83e42d1a 12 autosync_x\n",
		"5a24ac37-a99e-6c47-a7f0-e0b83e42d1ag 12 autosync_x\n",
	};
	struct failback_btrfs_base b;
	struct as_err err;
	char nul[] = UUID " 12 autosync_x\0y\n";
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		as_err_clear(&err);
		memset(&b, 'x', sizeof(b));
		assert_int_equal(failback_btrfs_base_decode(bad[i],
		    strlen(bad[i]), &b, &err), -1);
		assert_int_equal(err.code, AS_E_MALFORMED);
		assert_int_equal(b.name[0], '\0');
	}
	as_err_clear(&err);
	assert_int_equal(failback_btrfs_base_decode(nul, sizeof(nul) - 1, &b,
	    &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
}

static void
t_tree_round_trip(void **state)
{
	struct failback_btrfs_sub v[3], *w = NULL;
	struct failback_btrfs_base s0, t0;
	struct buf out = BUF_INIT;
	struct as_err err;
	size_t n = 0, i;
	static const char *const rels[] = { "one", "one/t w o", "z%2F" };

	(void)state;
	memset(&s0, 0, sizeof(s0));
	snprintf(s0.uuid, sizeof(s0.uuid), "%s", UUID);
	snprintf(s0.name, sizeof(s0.name), "autosync_2026-11-28_17:41:47");
	s0.ctransid = 7;
	memset(v, 0, sizeof(v));
	for (i = 0; i < 3; i++) {
		snprintf(v[i].rel, sizeof(v[i].rel), "%s", rels[i]);
		snprintf(v[i].g, sizeof(v[i].g), "%s", UUID2);
		snprintf(v[i].s0uuid, sizeof(v[i].s0uuid), "%s", UUID);
		v[i].s0ct = 100 + i;
	}
	failback_btrfs_tree_encode(&s0, v, 3, &out);
	as_err_clear(&err);
	assert_int_equal(failback_btrfs_tree_decode(out.data, out.len, 1, &t0,
	    &w, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(t0.name, s0.name);
	for (i = 0; i < 3; i++) {
		assert_string_equal(w[i].rel, rels[i]);
		assert_string_equal(w[i].g, UUID2);
		assert_string_equal(w[i].s0uuid, UUID);
		assert_true(w[i].s0ct == 100 + i);
	}
	free(w);
	/* without S0s: the nested subvolumes and their G only */
	buf_reset(&out);
	failback_btrfs_tree_encode(NULL, v, 3, &out);
	assert_int_equal(failback_btrfs_tree_decode(out.data, out.len, 0, NULL,
	    &w, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(w[1].rel, "one/t w o");
	assert_string_equal(w[1].s0uuid, "");
	free(w);
	/* and none */
	assert_int_equal(failback_btrfs_tree_decode(NULL, 0, 0, NULL, &w, &n,
	    &err), 0);
	assert_int_equal(n, 0);
	buf_release(&out);
}

static void
t_tree_malformed(void **state)
{
	static const struct {
		const char	*text;
		int		 with_s0;
		enum as_errcode	 code;
	} bad[] = {
		{ UUID2 " one", 0, AS_E_MALFORMED },		/* no newline */
		{ UUID2 " one\n\n", 0, AS_E_MALFORMED },
		{ UUID2 " ../etc\n", 0, AS_E_UNSAFE_PATH },
		{ UUID2 " one/../../etc\n", 0, AS_E_UNSAFE_PATH },
		{ UUID2 " /etc\n", 0, AS_E_UNSAFE_PATH },
		{ UUID2 " a//b\n", 0, AS_E_UNSAFE_PATH },
		{ UUID2 " a/.\n", 0, AS_E_UNSAFE_PATH },
		{ UUID2 " a\tb\x01\n", 0, AS_E_UNSAFE_PATH },
		{ UUID2 " \n", 0, AS_E_UNSAFE_PATH },
		{ UUID2 " b\n" UUID2 " a\n", 0, AS_E_MALFORMED },	/* order */
		{ UUID2 " a\n" UUID2 " a\n", 0, AS_E_MALFORMED },	/* twice */
		{ "0123ABCD-a99e-6c47-a7f0-e0b83e42d1a6 a\n", 0,
		    AS_E_MALFORMED },
		{ UUID2 "\n", 0, AS_E_MALFORMED },
		{ "", 1, AS_E_MALFORMED },			/* no S0 */
		{ UUID " 1 autosync_x\n" UUID2 " a\n", 1, AS_E_MALFORMED },
		{ UUID " 1 autosync_x\n" UUID2 " " UUID " x a\n", 1,
		    AS_E_MALFORMED },
		{ UUID " 1 autosync_x\n" UUID2 " " UUID " -1 a\n", 1,
		    AS_E_MALFORMED },
		{ UUID " 1 autosync_x\n" UUID2 " " UUID " 1 ..\n", 1,
		    AS_E_UNSAFE_PATH },
		{ UUID " 1 mine\n" UUID2 " " UUID " 1 a\n", 1,
		    AS_E_MALFORMED },
	};
	struct failback_btrfs_sub *w;
	struct failback_btrfs_base s0;
	struct as_err err;
	char nul[] = UUID2 " a\0b\n";
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		as_err_clear(&err);
		w = (void *)&err;
		n = 77;
		assert_int_equal(failback_btrfs_tree_decode(bad[i].text,
		    strlen(bad[i].text), bad[i].with_s0, &s0, &w, &n, &err),
		    -1);
		assert_int_equal(err.code, bad[i].code);
		assert_null(w);
		assert_int_equal(n, 0);
	}
	as_err_clear(&err);
	assert_int_equal(failback_btrfs_tree_decode(nul, sizeof(nul) - 1, 0,
	    NULL, &w, &n, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_round_trip),
		cmocka_unit_test(t_malformed),
		cmocka_unit_test(t_tree_round_trip),
		cmocka_unit_test(t_tree_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
