/*
 * t_zfs.c - the zfs driver's pure parts against recorded outputs
 * (tests/data/zfs, see its README): capability detection from the usage
 * text of zfs-fuse and of modern OpenZFS, the `zfs get -p` and
 * `zfs list -p` listings, the stderr texts that decide error classes,
 * names, and resume tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "driver/zfs.h"

#define LIST_COLS "name,type,guid,createtxg,creation,userrefs,written," \
	"mountpoint,canmount,mounted,receive_resume_token"

static char *
fixture(const char *name)
{
	const char *dir = getenv("AS_TEST_DATA");
	char path[1024];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/zfs/%s", dir != NULL ? dir :
	    "../tests/data", name);
	f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "cannot open fixture '%s'\n", path);
		fail();
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
test_caps_zfs_fuse(void **state)
{
	char *usage = fixture("zfs-fuse-usage.txt");
	char *probe = fixture("zfs-fuse-probe-recv-u.txt");
	struct zfs_caps c;

	(void)state;
	zfs_caps_parse(usage, probe, &c);
	assert_false(c.list_p);		/* list [-rH] only */
	assert_true(c.recv_u);		/* not listed, but the probe passed */
	assert_false(c.recv_s);
	assert_false(c.recv_o);
	assert_false(c.recv_x);
	assert_true(c.send_p);
	assert_true(c.send_R);
	assert_true(c.send_I);
	assert_false(c.send_c);
	assert_false(c.send_w);
	assert_true(c.hold);
	assert_false(c.holds_list);	/* holds [-r]: needs python */
	assert_false(c.bookmark);
	assert_false(c.written);
	assert_non_null(strstr(c.impl, "zfs-fuse"));
	/* its streams carry blocks only one way */
	assert_int_equal(zfs_send_block_flags(&c), 0);
	/* without the probe, -u is not assumed */
	zfs_caps_parse(usage, NULL, &c);
	assert_false(c.recv_u);
	zfs_caps_parse(usage, "invalid option 'u'\nusage:\n", &c);
	assert_false(c.recv_u);
	free(usage);
	free(probe);
}

static void
test_caps_openzfs(void **state)
{
	char *usage = fixture("openzfs-usage.txt");
	char *probe = fixture("openzfs-probe-recv-u.txt");
	struct zfs_caps c;

	(void)state;
	zfs_caps_parse(usage, probe, &c);
	assert_true(c.list_p);
	assert_true(c.recv_u);
	assert_true(c.recv_s);
	assert_true(c.recv_o);
	assert_true(c.recv_x);
	assert_true(c.send_p);
	assert_true(c.send_R);
	assert_true(c.send_I);
	assert_true(c.send_c);
	assert_true(c.send_L);
	assert_true(c.send_e);
	assert_true(c.send_w);
	assert_true(c.hold);
	assert_true(c.holds_list);
	assert_true(c.bookmark);
	assert_true(c.written);
	assert_string_equal(c.impl, "OpenZFS");
	assert_int_equal(zfs_send_block_flags(&c), ZFS_SEND_LARGE |
	    ZFS_SEND_EMBED | ZFS_SEND_COMPRESSED);
	/* the usage alone is enough on OpenZFS */
	zfs_caps_parse(usage, NULL, &c);
	assert_true(c.recv_u);
	zfs_caps_parse("", NULL, &c);
	assert_false(c.recv_u);
	assert_false(c.hold);
	free(usage);
	free(probe);
}

static void
test_parse_get_zfs_fuse(void **state)
{
	char *text = fixture("zfs-fuse-get.txt");
	struct zfs_tree t;
	struct as_err err;
	const struct zfs_ds *d;

	(void)state;
	assert_int_equal(zfs_parse_get(text, &t, &err), 0);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.v[0].name, "zxa");
	assert_string_equal(t.v[1].name, "zxa/src");
	d = zfs_tree_find(&t, "zxa/src");
	assert_non_null(d);
	assert_int_equal(d->guid, 8403636907265502803ull);
	assert_string_equal(d->mountpoint, "/zxa/src");
	assert_string_equal(d->canmount, "on");
	assert_int_equal(d->mounted, 1);
	assert_int_equal(d->written, -1);	/* v23: unknown */
	assert_null(d->resume_token);
	assert_int_equal(d->nsnaps, 3);
	assert_string_equal(d->snaps[0].name, "s1");
	assert_int_equal(d->snaps[0].guid, 16460103770276764824ull);
	assert_int_equal(d->snaps[0].createtxg, 11);
	assert_int_equal(d->snaps[0].creation, 1795851911);
	assert_int_equal(d->snaps[0].userrefs, 0);
	assert_string_equal(d->snaps[1].name, "s2");
	assert_int_equal(d->snaps[1].guid, 6667126965759599255ull);
	assert_ptr_equal(zfs_ds_snap_guid(d, 6667126965759599255ull),
	    &d->snaps[1]);
	assert_ptr_equal(zfs_ds_snap_name(d, "s1"), &d->snaps[0]);
	assert_null(zfs_ds_snap_guid(d, 1));
	assert_null(zfs_tree_find(&t, "zxa/nope"));
	zfs_tree_release(&t);
	free(text);
}

static void
test_parse_list_openzfs(void **state)
{
	char *text = fixture("openzfs-list.txt");
	struct zfs_tree t;
	struct as_err err;
	const struct zfs_ds *d;

	(void)state;
	assert_int_equal(zfs_parse_list(text, LIST_COLS, &t, &err), 0);
	assert_int_equal(t.n, 4);
	d = zfs_tree_find(&t, "tank/home");
	assert_non_null(d);
	assert_int_equal(d->written, 0);
	assert_int_equal(d->nsnaps, 2);
	/* ordered by createtxg, not by name */
	assert_string_equal(d->snaps[0].name, "autosync_2026-11-28_07:45:00");
	assert_string_equal(d->snaps[1].name, "daily");
	assert_int_equal(d->snaps[1].userrefs, 1);
	d = zfs_tree_find(&t, "tank/home/child");
	assert_non_null(d);
	assert_string_equal(d->canmount, "noauto");
	assert_int_equal(d->mounted, 0);
	assert_int_equal(d->written, 4096);
	assert_non_null(d->resume_token);
	assert_int_equal(zfs_token_check(d->resume_token, &err), 0);
	d = zfs_tree_find(&t, "tank/vol");
	assert_non_null(d);
	assert_int_equal(d->volume, 1);
	assert_null(d->mountpoint);
	zfs_tree_release(&t);
	free(text);
}

static void
test_parse_bad(void **state)
{
	struct zfs_tree t;
	struct as_err err;

	(void)state;
	/* a guid that is not a number */
	assert_int_equal(zfs_parse_get("a@s\tguid\t12x\n", &t, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	assert_int_equal(zfs_parse_get("a@s\tguid\t99999999999999999999\n",
	    &t, &err), -1);
	/* two fields */
	assert_int_equal(zfs_parse_get("a\tguid\n", &t, &err), -1);
	/* a list line with the wrong number of columns */
	assert_int_equal(zfs_parse_list("a\tfilesystem\n", LIST_COLS, &t,
	    &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	/* empty snapshot name */
	assert_int_equal(zfs_parse_get("a@\tguid\t1\n", &t, &err), -1);
	/* empty output: an empty tree */
	assert_int_equal(zfs_parse_get("", &t, &err), 0);
	assert_int_equal(t.n, 0);
	/* bookmarks are skipped */
	assert_int_equal(zfs_parse_get("a#b\tguid\t1\n", &t, &err), 0);
	assert_int_equal(t.n, 0);
}

/* zfs send's words for each set of flags. */
static void
test_send_argv(void **state)
{
	const char *argv[ZFS_SEND_ARGV];
	char line[512];
	size_t n, i;

	(void)state;
	n = zfs_send_argv("t/a@s2", NULL, 0, argv);
	assert_int_equal(n, 3);
	assert_null(argv[n]);
	assert_string_equal(argv[2], "t/a@s2");
	n = zfs_send_argv("t/a@s2", "t/a@s1", ZFS_SEND_PROPS |
	    ZFS_SEND_INTERMEDIATE | ZFS_SEND_BLOCKS, argv);
	assert_true(n < ZFS_SEND_ARGV);
	assert_null(argv[n]);
	line[0] = '\0';
	for (i = 0; i < n; i++) {
		strcat(line, argv[i]);
		strcat(line, " ");
	}
	assert_string_equal(line, "zfs send -p -L -e -c -I t/a@s1 t/a@s2 ");
	n = zfs_send_argv("t/a@s2", "t/a@s1", ZFS_SEND_COMPRESSED, argv);
	assert_int_equal(n, 6);
	assert_string_equal(argv[2], "-c");
	assert_string_equal(argv[3], "-i");
}

/* Texts recorded from zfs-fuse (pool v23) and OpenZFS. */
static void
test_classify(void **state)
{
	static const struct {
		const char	*text;
		enum as_errcode	 code;
	} v[] = {
		/* zfs-fuse */
		{ "cannot open 'zxa/nonexist': dataset does not exist\n",
		    AS_E_NOTFOUND },
		{ "cannot receive new filesystem stream: dataset does not "
		    "exist\n", AS_E_NOTFOUND },
		{ "WARNING: could not send zxa/src@nope: does not exist\n",
		    AS_E_NOTFOUND },
		{ "warning: cannot send 'zxa/src@s2': incremental source "
		    "(@nope) does not exist\n", AS_E_NOTFOUND },
		{ "cannot receive incremental stream: destination zxb/dst has "
		    "been modified\nsince most recent snapshot\n",
		    AS_E_CONFLICT },
		{ "cannot receive new filesystem stream: destination 'zxb/dst' "
		    "exists\nmust specify -F to overwrite it\n", AS_E_CONFLICT },
		{ "cannot receive incremental stream: most recent snapshot of "
		    "zxb/src does not\nmatch incremental source\n",
		    AS_E_CONFLICT },
		{ "cannot create snapshot 'zxa/src@s1': dataset already "
		    "exists\n", AS_E_CONFLICT },
		{ "cannot destroy 'zxa/src@s1': dataset is busy\n",
		    AS_E_CONFLICT },
		{ "cannot receive new filesystem stream: out of space\n",
		    AS_E_NOSPACE },
		{ "cannot receive new filesystem stream: invalid stream "
		    "(checksum mismatch)\n", AS_E_CHECKSUM },
		{ "cannot receive: failed to read from stream\n",
		    AS_E_TRUNCATED },
		{ "cannot receive new filesystem stream: invalid backup "
		    "stream\n", AS_E_MALFORMED },
		{ "cannot receive: invalid stream (bad magic number)\n",
		    AS_E_MALFORMED },
		{ "invalid option 'o'\nusage:\n\treceive [-vnF] "
		    "<filesystem|volume|snapshot>\n", AS_E_UNSUPPORTED },
		{ "unrecognized command 'bookmark'\nusage: zfs command args "
		    "...\n", AS_E_UNSUPPORTED },
		{ "internal error: /usr/lib/zfs/pyzfs.py not found\n",
		    AS_E_UNSUPPORTED },
		{ "connect: Permission denied\ninternal error: failed to "
		    "initialize ZFS library\n", AS_E_AUTH },
		{ "connect: No such file or directory\nPlease make sure that "
		    "the zfs-fuse daemon is running.\ninternal error: failed "
		    "to initialize ZFS library\n", AS_E_IO },
		{ "warning: cannot send 'zxa/src@s3': Broken pipe\n",
		    AS_E_IO },
		/* OpenZFS */
		{ "cannot create snapshot 'tank/a@s': permission denied\n",
		    AS_E_AUTH },
		{ "cannot receive new filesystem stream: incomplete stream\n",
		    AS_E_TRUNCATED },
		{ "cannot receive new filesystem stream: destination has "
		    "snapshots (eg. tank/b@x)\nmust destroy them to overwrite "
		    "it\n", AS_E_CONFLICT },
		{ "cannot rollback to 'tank/b@a': more recent snapshots "
		    "or bookmarks exist\nuse '-r' to force deletion of the "
		    "following snapshots and bookmarks:\n", AS_E_CONFLICT },
		{ "cannot resume send: 'pool1/test@b' used in the initial "
		    "send no longer exists\n", AS_E_NOTFOUND },
		{ "cannot resume send: resume token is corrupt\n",
		    AS_E_MALFORMED },
		{ "The ZFS modules are not loaded.\nTry running "
		    "'/sbin/modprobe zfs' as root to load them.\n",
		    AS_E_UNSUPPORTED },
		{ "cannot receive: destination tank/b contains "
		    "partially-complete state from \"zfs receive -s\".\n",
		    AS_E_CONFLICT },
		/* a destination pool without a feature the stream needs:
		 * a stream of blocks as they are on disk goes plain */
		{ "cannot receive new filesystem stream: pool must be "
		    "upgraded to receive this stream.\n", AS_E_UNSUPPORTED },
		{ "cannot receive: stream has unsupported feature, feature "
		    "flags = 24\n", AS_E_UNSUPPORTED },
		{ "something nobody expected\n", AS_E_IO },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (zfs_classify(v[i].text) != v[i].code)
			fprintf(stderr, "text %zu: '%s' -> %s, expected %s\n",
			    i, v[i].text,
			    as_errcode_name(zfs_classify(v[i].text)),
			    as_errcode_name(v[i].code));
		assert_int_equal(zfs_classify(v[i].text), v[i].code);
	}
	assert_int_equal(zfs_classify(NULL), AS_E_IO);
}

static void
test_names(void **state)
{
	struct as_err err;

	(void)state;
	assert_int_equal(zfs_name_check("tank", 0, &err), 0);
	assert_int_equal(zfs_name_check("tank/home/a-b_c.d:e", 0, &err), 0);
	assert_int_equal(zfs_name_check("tank/home@autosync_2026-11-28_07:45:"
	    "00", 1, &err), 0);
	assert_int_equal(zfs_name_check("", 0, &err), -1);
	assert_int_equal(err.code, AS_E_USAGE);
	assert_int_equal(zfs_name_check("/tank", 0, &err), -1);
	assert_int_equal(zfs_name_check("-tank", 0, &err), -1);
	assert_int_equal(zfs_name_check("tank/", 0, &err), -1);
	assert_int_equal(zfs_name_check("tank//a", 0, &err), -1);
	assert_int_equal(zfs_name_check("tank/../a", 0, &err), -1);
	assert_int_equal(zfs_name_check("tank/./a", 0, &err), -1);
	assert_int_equal(zfs_name_check("tank@s", 0, &err), -1);
	assert_int_equal(zfs_name_check("tank", 1, &err), -1);
	assert_int_equal(zfs_name_check("tank@a@b", 1, &err), -1);
	assert_int_equal(zfs_name_check("tank/a\nb", 0, &err), -1);
	assert_int_equal(zfs_name_check("tank/a;rm", 0, &err), -1);
}

static void
test_tokens(void **state)
{
	char *text = fixture("openzfs-send-nvt.txt");
	char *bad = fixture("openzfs-send-nvt-corrupt.txt");
	struct as_err err;
	uint64_t to, from;
	char *name = NULL;

	(void)state;
	/* tokens as OpenZFS writes them (full and incremental send) */
	assert_int_equal(zfs_token_check("1-bf31b879a-b8-789c636064000310a500"
	    "c4ec50360710e72765a5269740f80cd8e4d3d28a534b18e00024cf86249f5459"
	    "925acc802a8facbf243fbd3433858161f5ddb9ab1ae7c7466a20c97382e5f312"
	    "735319180af2f3730cf58166953824c2cc0200cde81651", &err), 0);
	assert_int_equal(zfs_token_check("2-bf31b879a-b8-789c", &err), -1);
	assert_int_equal(err.code, AS_E_UNSUPPORTED);
	assert_int_equal(zfs_token_check("1-bf31b879a-b8", &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	assert_int_equal(zfs_token_check("1-xyz-b8-789c", &err), -1);
	assert_int_equal(zfs_token_check("1-bf-b8-789", &err), -1);
	assert_int_equal(zfs_token_check("1-bf-0-789c", &err), -1);
	assert_int_equal(zfs_token_check("1-bf-2-789c00112233445566778899aabb"
	    "ccddeeff00112233445566778899aabbccddeeff00112233445566778899aabb"
	    "ccddeeff00112233445566778899aabbccddeeff0011", &err), -1);
	assert_int_equal(zfs_token_check("-", &err), -1);

	assert_int_equal(zfs_token_parse(text, &to, &from, &name, &err), 0);
	assert_int_equal(to, 0x854f02a2dd32cf0dull);
	assert_int_equal(from, 0x595d9f81aa9dddabull);
	assert_string_equal(name, "pool1/test@b");
	free(name);
	assert_int_equal(zfs_token_parse(bad, &to, &from, &name, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	/* zfs-fuse: no -t at all */
	assert_int_equal(zfs_token_parse("invalid option 't'\n", &to, &from,
	    &name, &err), -1);
	assert_int_equal(err.code, AS_E_UNSUPPORTED);
	/* a token naming something that is not a snapshot */
	assert_int_equal(zfs_token_parse("resume token contents:\nnvlist "
	    "version: 0\n\ttoguid = 0x1\n\ttoname = ../etc\n", &to, &from,
	    &name, &err), -1);
	assert_int_equal(zfs_token_parse("resume token contents:\nnvlist "
	    "version: 0\n\ttoguid = 0xzz\n\ttoname = a@b\n", &to, &from,
	    &name, &err), -1);
	assert_int_equal(zfs_token_parse("resume token contents:\nnvlist "
	    "version: 0\n\ttoname = a@b\n", &to, &from, &name, &err), -1);
	assert_null(name);
	free(text);
	free(bad);
}

/* A one-dataset tree from "name:guid" pairs, oldest first. */
static void
mk_ds(struct zfs_tree *t, const char *ds, const char *const *snaps,
    int64_t written)
{
	char text[4096];
	size_t off = 0;
	unsigned txg = 1;
	struct as_err err;

	off += (size_t)snprintf(text + off, sizeof(text) - off,
	    "%s\tguid\t1\n%s\twritten\t%lld\n", ds, ds, (long long)written);
	for (; *snaps != NULL; snaps++) {
		const char *c = strchr(*snaps, ':');

		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "%s@%.*s\tguid\t%s\n%s@%.*s\tcreatetxg\t%u\n", ds,
		    (int)(c - *snaps), *snaps, c + 1, ds, (int)(c - *snaps),
		    *snaps, txg++);
	}
	assert_int_equal(zfs_parse_get(text, t, &err), 0);
	assert_int_equal(t->n, 1);
}

static void
test_compare(void **state)
{
	static const char *const src[] = { "autosync_1:11", "daily:12",
	    "autosync_2:13", "autosync_3:14", NULL };
	/* renamed on the destination: still common, by GUID */
	static const char *const d_renamed[] = { "autosync_1:11",
	    "renamed:13", NULL };
	/* same name, another GUID: not common */
	static const char *const d_imposter[] = { "autosync_1:11",
	    "autosync_3:99", NULL };
	static const char *const d_diverged[] = { "autosync_2:13",
	    "autosync_x:50", "mine:51", NULL };
	static const char *const d_none[] = { "x:70", "autosync_y:71", NULL };
	static const char *const d_empty[] = { NULL };
	struct zfs_tree ts, td;
	struct zfs_common c;
	char rep[1000];

	(void)state;
	mk_ds(&ts, "a/s", src, -1);

	mk_ds(&td, "b/d", d_renamed, 0);
	zfs_compare(&ts.v[0], &td.v[0], &c);
	assert_non_null(c.base_s);
	assert_string_equal(c.base_s->name, "autosync_2");
	assert_string_equal(c.base_d->name, "renamed");
	assert_int_equal(c.after, 0);
	assert_null(c.foreign);
	assert_false(c.modified);
	zfs_tree_release(&td);

	mk_ds(&td, "b/d", d_imposter, 4096);
	zfs_compare(&ts.v[0], &td.v[0], &c);
	assert_string_equal(c.base_s->name, "autosync_1");
	assert_int_equal(c.after, 1);
	assert_null(c.foreign);		/* autosync_3 is autosync's name */
	assert_true(c.modified);
	zfs_compare_report(&ts.v[0], &td.v[0], &c, rep, sizeof(rep));
	assert_string_equal(rep, "common snapshot: autosync_1; source only: "
	    "daily, autosync_2, autosync_3; destination only: autosync_3");
	zfs_tree_release(&td);

	mk_ds(&td, "b/d", d_diverged, 0);
	zfs_compare(&ts.v[0], &td.v[0], &c);
	assert_string_equal(c.base_d->name, "autosync_2");
	assert_int_equal(c.after, 2);
	assert_string_equal(c.foreign, "mine");
	zfs_tree_release(&td);

	mk_ds(&td, "b/d", d_none, 0);
	zfs_compare(&ts.v[0], &td.v[0], &c);
	assert_null(c.base_s);
	assert_null(c.base_d);
	assert_int_equal(c.after, 2);
	assert_string_equal(c.foreign, "x");
	zfs_compare_report(&ts.v[0], &td.v[0], &c, rep, sizeof(rep));
	assert_string_equal(rep, "common snapshot: none; source only: "
	    "autosync_1, daily, autosync_2, autosync_3; destination only: x, "
	    "autosync_y");
	zfs_tree_release(&td);

	mk_ds(&td, "b/d", d_empty, 0);
	zfs_compare(&ts.v[0], &td.v[0], &c);
	assert_null(c.base_d);
	assert_int_equal(c.after, 0);
	zfs_tree_release(&td);
	zfs_tree_release(&ts);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps_zfs_fuse),
		cmocka_unit_test(test_caps_openzfs),
		cmocka_unit_test(test_send_argv),
		cmocka_unit_test(test_parse_get_zfs_fuse),
		cmocka_unit_test(test_parse_list_openzfs),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_compare),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
