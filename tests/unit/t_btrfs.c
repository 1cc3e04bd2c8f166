/*
 * t_btrfs.c - the btrfs driver's pure parts: `btrfs subvolume show` and
 * `btrfs subvolume list -o -u -q -R` outputs (recorded with btrfs-progs
 * v6.2 on loop-mounted btrfs), the stderr texts that map to error
 * classes (each the real text btrfs printed), the encoding of nested
 * paths, and the trust rule (an untrusted stream is refused before any
 * process is spawned); between machines, what a peer names of a tree
 * (a nested subvolume's REL, a pull's listing).  What needs a file system is in
 * tests/e2e/t3101-btrfs-*.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "driver/btrfs.h"
#include "driver/zfs.h"
#include "repl/sync.h"

/* `btrfs subvolume show` of a subvolume with two snapshots */
static const char fx_show_src[] =
	"@home\n"
	"\tName: \t\t\t@home\n"
	"\tUUID: \t\t\teadc6e76-a74d-2140-81ff-bb40137ba438\n"
	"\tParent UUID: \t\t-\n"
	"\tReceived UUID: \t\t-\n"
	"\tCreation time: \t\t2026-11-28 07:57:41 +0000\n"
	"\tSubvolume ID: \t\t256\n"
	"\tGeneration: \t\t24\n"
	"\tGen at creation: \t7\n"
	"\tParent ID: \t\t5\n"
	"\tTop level ID: \t\t5\n"
	"\tFlags: \t\t\t-\n"
	"\tSend transid: \t\t0\n"
	"\tSend time: \t\t2026-11-28 07:57:41 +0000\n"
	"\tReceive transid: \t0\n"
	"\tReceive time: \t\t-\n"
	"\tSnapshot(s):\n"
	"\t\t\t\t.autosync-snapshots/@home/autosync_2026-11-28_07:59:13\n"
	"\t\t\t\t.autosync-snapshots/@home/dir-source\n";

/* ... of one of them: read-only, Parent UUID */
static const char fx_show_snap[] =
	".autosync-snapshots/@home/autosync_2026-11-28_07:59:13\n"
	"\tName: \t\t\tautosync_2026-11-28_07:59:13\n"
	"\tUUID: \t\t\t68972c45-ae93-d849-9753-e8d4deacf717\n"
	"\tParent UUID: \t\teadc6e76-a74d-2140-81ff-bb40137ba438\n"
	"\tReceived UUID: \t\t-\n"
	"\tCreation time: \t\t2026-11-28 07:59:13 +0000\n"
	"\tSubvolume ID: \t\t271\n"
	"\tGeneration: \t\t21\n"
	"\tGen at creation: \t21\n"
	"\tParent ID: \t\t5\n"
	"\tTop level ID: \t\t5\n"
	"\tFlags: \t\t\treadonly\n"
	"\tSend transid: \t\t0\n"
	"\tSend time: \t\t2026-11-28 07:59:13 +0000\n"
	"\tReceive transid: \t0\n"
	"\tReceive time: \t\t-\n"
	"\tSnapshot(s):\n";

/* ... of its received copy on the destination (the view is its snapshot) */
static const char fx_show_recv[] =
	".autosync-snapshots/home/autosync_2026-11-28_07:59:13\n"
	"\tName: \t\t\tautosync_2026-11-28_07:59:13\n"
	"\tUUID: \t\t\t650b3a42-4e5b-4649-8095-151f6d73df2d\n"
	"\tParent UUID: \t\t7cb0e515-c449-4345-8238-64ca413712f5\n"
	"\tReceived UUID: \t\t68972c45-ae93-d849-9753-e8d4deacf717\n"
	"\tCreation time: \t\t2026-11-28 07:59:13 +0000\n"
	"\tSubvolume ID: \t\t275\n"
	"\tGeneration: \t\t64\n"
	"\tGen at creation: \t61\n"
	"\tParent ID: \t\t5\n"
	"\tTop level ID: \t\t5\n"
	"\tFlags: \t\t\treadonly\n"
	"\tSend transid: \t\t15\n"
	"\tSend time: \t\t2026-11-28 07:59:13 +0000\n"
	"\tReceive transid: \t62\n"
	"\tReceive time: \t\t2026-11-28 07:59:13 +0000\n"
	"\tSnapshot(s):\n"
	"\t\t\t\thome\n";

/* ... of the top level */
static const char fx_show_top[] =
	"/\n"
	"\tName: \t\t\t<FS_TREE>\n"
	"\tUUID: \t\t\tde1f326e-460b-4ad8-be90-2a8b183416f2\n"
	"\tParent UUID: \t\t-\n"
	"\tReceived UUID: \t\t-\n"
	"\tCreation time: \t\t2026-11-28 07:57:40 +0000\n"
	"\tSubvolume ID: \t\t5\n"
	"\tGeneration: \t\t24\n"
	"\tGen at creation: \t0\n"
	"\tParent ID: \t\t0\n"
	"\tTop level ID: \t\t0\n"
	"\tFlags: \t\t\t-\n"
	"\tSend transid: \t\t0\n"
	"\tSend time: \t\t2026-11-28 07:57:40 +0000\n"
	"\tReceive transid: \t0\n"
	"\tReceive time: \t\t-\n"
	"\tSnapshot(s):\n";

/* `btrfs subvolume list -o -u -q -R`: "-" UUIDs are padded */
static const char fx_list[] =
	"ID 257 gen 19 top level 256 parent_uuid -                                    received_uuid -                                    uuid 6dd6e051-32fc-6b44-b378-ea412e810906 path @home/d/nested\n"
	"ID 258 gen 20 top level 257 parent_uuid -                                    received_uuid -                                    uuid 9b9dec73-640b-4b4a-8f81-b7fd80b9d2f3 path @home/d/nested/deeper\n"
	"ID 275 gen 64 top level 5 parent_uuid 7cb0e515-c449-4345-8238-64ca413712f5 received_uuid 68972c45-ae93-d849-9753-e8d4deacf717 uuid 650b3a42-4e5b-4649-8095-151f6d73df2d path .autosync-snapshots/home/autosync_2026-11-28_07:59:13\n";

static void
t_show_subvolume(void **state)
{
	struct btrfs_subvol sv;
	struct as_err err;

	(void)state;
	memset(&sv, 0, sizeof(sv));
	assert_int_equal(btrfs_parse_show(fx_show_src, &sv, &err), 0);
	assert_string_equal(sv.path, "@home");
	assert_string_equal(sv.name, "@home");
	assert_string_equal(sv.uuid, "eadc6e76-a74d-2140-81ff-bb40137ba438");
	assert_string_equal(sv.parent_uuid, "");
	assert_string_equal(sv.received_uuid, "");
	assert_int_equal(sv.id, 256);
	assert_int_equal(sv.generation, 24);
	assert_int_equal(sv.otransid, 7);
	assert_int_equal(sv.parent_id, 5);
	assert_int_equal(sv.top_level, 5);
	assert_int_equal(sv.readonly, 0);
	btrfs_subvol_release(&sv);
}

static void
t_show_snapshot_and_received(void **state)
{
	struct btrfs_subvol sv;
	struct as_err err;

	(void)state;
	memset(&sv, 0, sizeof(sv));
	assert_int_equal(btrfs_parse_show(fx_show_snap, &sv, &err), 0);
	assert_string_equal(sv.name, "autosync_2026-11-28_07:59:13");
	assert_string_equal(sv.parent_uuid,
	    "eadc6e76-a74d-2140-81ff-bb40137ba438");
	assert_int_equal(sv.readonly, 1);
	assert_int_equal(sv.id, 271);
	btrfs_subvol_release(&sv);

	assert_int_equal(btrfs_parse_show(fx_show_recv, &sv, &err), 0);
	/* identity: the destination's received_uuid is the source's UUID */
	assert_string_equal(sv.received_uuid,
	    "68972c45-ae93-d849-9753-e8d4deacf717");
	assert_string_equal(sv.uuid, "650b3a42-4e5b-4649-8095-151f6d73df2d");
	assert_int_equal(sv.readonly, 1);
	btrfs_subvol_release(&sv);

	assert_int_equal(btrfs_parse_show(fx_show_top, &sv, &err), 0);
	assert_string_equal(sv.path, "/");
	assert_string_equal(sv.name, "<FS_TREE>");
	assert_int_equal(sv.id, 5);
	btrfs_subvol_release(&sv);
}

static void
t_show_malformed(void **state)
{
	struct btrfs_subvol sv;
	struct as_err err;
	char *t;

	(void)state;
	memset(&sv, 0, sizeof(sv));
	/* no UUID line */
	t = strdup(fx_show_src);
	memcpy(strstr(t, "\tUUID:"), "\tXXXX:", 6);
	assert_int_equal(btrfs_parse_show(t, &sv, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	free(t);
	/* a bad UUID */
	t = strdup(fx_show_src);
	*strstr(t, "eadc6e76") = 'g';
	assert_int_equal(btrfs_parse_show(t, &sv, &err), -1);
	free(t);
	/* a bad number */
	t = strdup(fx_show_src);
	memcpy(strstr(t, "\t\t256"), "\t\t2x6", 5);
	assert_int_equal(btrfs_parse_show(t, &sv, &err), -1);
	free(t);
	/* truncated after the path */
	assert_int_equal(btrfs_parse_show("@home\n", &sv, &err), -1);
	assert_int_equal(btrfs_parse_show("", &sv, &err), -1);
}

static void
t_list(void **state)
{
	struct btrfs_list_ent *v = NULL;
	struct as_err err;
	size_t n = 0;

	(void)state;
	assert_int_equal(btrfs_parse_list(fx_list, &v, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[0].id, 257);
	assert_int_equal(v[0].gen, 19);
	assert_int_equal(v[0].top_level, 256);
	assert_string_equal(v[0].parent_uuid, "");
	assert_string_equal(v[0].received_uuid, "");
	assert_string_equal(v[0].uuid, "6dd6e051-32fc-6b44-b378-ea412e810906");
	assert_string_equal(v[0].path, "@home/d/nested");
	assert_string_equal(v[1].path, "@home/d/nested/deeper");
	assert_string_equal(v[2].received_uuid,
	    "68972c45-ae93-d849-9753-e8d4deacf717");
	/* a path with ':' and '%' is the rest of the line */
	assert_string_equal(v[2].path,
	    ".autosync-snapshots/home/autosync_2026-11-28_07:59:13");
	btrfs_list_free(v, n);

	/* empty output: no subvolumes */
	assert_int_equal(btrfs_parse_list("", &v, &n, &err), 0);
	assert_int_equal(n, 0);
	btrfs_list_free(v, n);
	/* a path with spaces */
	assert_int_equal(btrfs_parse_list("ID 300 gen 1 top level 5 "
	    "parent_uuid - received_uuid - uuid "
	    "6dd6e051-32fc-6b44-b378-ea412e810906 path a b/c d\n", &v, &n,
	    &err), 0);
	assert_string_equal(v[0].path, "a b/c d");
	btrfs_list_free(v, n);
}

static void
t_list_malformed(void **state)
{
	static const char *bad[] = {
		"ID x gen 1 top level 5 path a\n",
		"ID 1 gen 1 top level 5 path \n",
		"ID 1 gen 1 top level 5\n",
		"ID 1 gen 1 top level 5 uuid 12 path a\n",
		"garbage\n",
	};
	struct btrfs_list_ent *v = NULL;
	struct as_err err;
	size_t n = 0, i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(btrfs_parse_list(bad[i], &v, &n, &err), -1);
		assert_int_equal(err.code, AS_E_MALFORMED);
	}
}

/*
 * Each mapping with the text btrfs-progs v6.2 printed on stderr when
 * the case was made to happen on loop-mounted btrfs (the command in the
 * comment).
 */
static void
t_errcode(void **state)
{
	static const struct {
		const char	*text;
		enum as_errcode	 code;
	} t[] = {
		/* receive into a file system that fills up */
		{ "ERROR: writing to big failed: No space left on device\n",
		  AS_E_NOSPACE },
		/* head -c 300 full.stream | btrfs receive */
		{ "At subvol s2\nERROR: unexpected EOF in stream\n",
		  AS_E_TRUNCATED },
		/* send | head -c 100000 | receive: cut inside a command */
		{ "ERROR: short read from stream: expected 49175 read 1423\n",
		  AS_E_TRUNCATED },
		/* a bit flipped at byte 200 */
		{ "At subvol s2\nERROR: crc32 mismatch in command\n",
		  AS_E_CHECKSUM },
		/* 1000 random bytes */
		{ "ERROR: unexpected header\n", AS_E_MALFORMED },
		/* </dev/null */
		{ "ERROR: empty stream is not considered valid\n",
		  AS_E_MALFORMED },
		/* an incremental stream into a file system without its base */
		{ "ERROR: cannot find parent subvolume\n", AS_E_CONFLICT },
		/* property set ro false on a received subvolume */
		{ "ERROR: cannot flip ro->rw with received_uuid set, use force "
		  "if you really want that\n", AS_E_CONFLICT },
		/* the same stream received twice */
		{ "At subvol s2\nERROR: creating subvolume s2 failed: File "
		  "exists\n", AS_E_CONFLICT },
		/* subvolume delete of one with a nested subvolume */
		{ "ERROR: Could not destroy subvolume/snapshot: Directory not "
		  "empty\n", AS_E_CONFLICT },
		/* snapshot to another file system */
		{ "ERROR: cannot snapshot 'ma/@home': Invalid cross-device "
		  "link\n", AS_E_USAGE },
		/* subvolume show of a plain directory */
		{ "ERROR: Not a Btrfs subvolume: Invalid argument\n",
		  AS_E_NOTFOUND },
		/* subvolume show of a directory on ext4 */
		{ "ERROR: Not a Btrfs filesystem: Invalid argument\n",
		  AS_E_NOTFOUND },
		/* subvolume list of a directory on ext4 */
		{ "ERROR: not a btrfs filesystem: /tmp\nERROR: can't access "
		  "'/tmp'\n", AS_E_NOTFOUND },
		/* snapshot of a missing subvolume */
		{ "ERROR: Could not statfs: No such file or directory\n",
		  AS_E_NOTFOUND },
		{ "ERROR: cannot find real path for '/nonexist': No such file "
		  "or directory\n", AS_E_NOTFOUND },
		/* unknown texts are I/O errors */
		{ "ERROR: cannot snapshot 'ma/@home': Read-only file system\n",
		  AS_E_IO },
		{ "ERROR: subvolume /x/@home is not read-only\n", AS_E_IO },
		{ "", AS_E_IO },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (btrfs_errcode(t[i].text) != t[i].code)
			fail_msg("'%s': got %s, want %s", t[i].text,
			    as_errcode_name(btrfs_errcode(t[i].text)),
			    as_errcode_name(t[i].code));
	}
	assert_int_equal(btrfs_errcode(NULL), AS_E_IO);
}

static void
t_enc_rel(void **state)
{
	struct as_err err;
	char out[BTRFS_NAME_MAX + 1], *p, *d;
	char big[200];

	(void)state;
	assert_int_equal(btrfs_enc_rel("a/b%c", out, sizeof(out), &err), 0);
	assert_string_equal(out, "a%2Fb%25c");
	assert_int_equal(btrfs_enc_rel("nested", out, sizeof(out), &err), 0);
	assert_string_equal(out, "nested");
	memset(big, '/', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(btrfs_enc_rel(big, out, sizeof(out), &err), -1);
	assert_int_equal(err.code, AS_E_LIMIT);
	assert_int_equal(btrfs_enc_rel("", out, sizeof(out), &err), -1);

	p = btrfs_snapdir("/mnt/a/@home");
	assert_string_equal(p, "/mnt/a/.autosync-snapshots/@home");
	d = btrfs_snapdir_of(p, "x/y", &err);
	assert_string_equal(d, "/mnt/a/.autosync-snapshots/@home/children/"
	    "x%2Fy");
	free(d);
	d = btrfs_snapdir_of(p, "", &err);
	assert_string_equal(d, p);
	free(d);
	free(p);
}

/* RELIABILITY.md case 74: no trust, no btrfs receive. */
static void
t_untrusted_refused(void **state)
{
	struct btrfs_proc *p;
	struct as_err err;
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	/* PATH without btrfs: had it spawned, it would fail differently */
	setenv("PATH", "/nonexistent", 1);
	as_err_clear(&err);
	p = btrfs_receive_start("/tmp", fds[0], 0, &err);
	assert_null(p);
	assert_int_equal(err.code, AS_E_AUTH);
	assert_non_null(strstr(err.msg, "trusted"));
	/* ownership was taken: the descriptor is closed */
	assert_int_equal(fcntl(fds[0], F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	close(fds[1]);
}

/* A nested subvolume's path as a peer names it (REQ_F_NESTED). */
static void
t_rel_check(void **state)
{
	static const char *const good[] = { "a", "a/b", "@home/x y", "a/.b",
	    "..a", "a%2F" };
	static const char *const bad[] = { "", "/a", "a/", "a//b", ".", "..",
	    "a/../b", "a/./b", "../a", "a/..", "a\nb", "a\x7f" };
	struct as_err err;
	char longrel[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(sync_btrfs_rel_check(good[i], "t", NULL), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		as_err_clear(&err);
		assert_int_equal(sync_btrfs_rel_check(bad[i], "t", &err), -1);
		assert_int_equal(err.code, AS_E_UNSAFE_PATH);
	}
	/* too long to name its snapshot directory once escaped */
	memset(longrel, 'a', sizeof(longrel) - 1);
	longrel[sizeof(longrel) - 1] = '\0';
	assert_int_equal(sync_btrfs_rel_check(longrel, "t", NULL), -1);
}

static void
snap(struct proto_snap *e, uint64_t guid, const char *name)
{
	memset(e, 0, sizeof(*e));
	e->guid = guid;
	snprintf(e->name, sizeof(e->name), "%s", name);
}

/* A pull's listing of a tree: well formed, and each way it is not. */
static void
t_listing(void **state)
{
	struct proto_snap v[8];
	struct sync_btrfs_sub *s = NULL;
	struct as_err err;
	size_t n = 0;

	(void)state;
	snap(&v[0], 1, "autosync_1");
	snap(&v[1], 2, "autosync_2");
	snap(&v[2], 9, "sub/");
	snap(&v[3], 3, "autosync_2");
	snap(&v[4], 8, "sub/deep/");
	snap(&v[5], 7, "dir/x/");
	assert_int_equal(sync_btrfs_listing("p", v, 4, &s, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(s[0].rel, "");
	assert_int_equal(s[0].nsnaps, 2);
	assert_string_equal(s[1].rel, "sub");
	assert_int_equal(s[1].nsnaps, 1);
	assert_int_equal(s[1].snaps[0].guid, 3);
	sync_btrfs_subs_free(s, n);
	/* a child without snapshots (new on the server), a deeper one */
	assert_int_equal(sync_btrfs_listing("p", v, 5, &s, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(s[2].rel, "sub/deep");
	assert_int_equal(s[2].nsnaps, 0);
	sync_btrfs_subs_free(s, n);
	/* out of order ("dir/x" after "sub/deep") */
	as_err_clear(&err);
	assert_int_equal(sync_btrfs_listing("p", v, 6, &s, &n, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	/* listed twice */
	snap(&v[4], 8, "sub/");
	assert_int_equal(sync_btrfs_listing("p", v, 5, &s, &n, &err), -1);
	/* a path that leaves the root */
	snap(&v[2], 9, "../etc/");
	as_err_clear(&err);
	assert_int_equal(sync_btrfs_listing("p", v, 3, &s, &n, &err), -1);
	assert_int_equal(err.code, AS_E_UNSAFE_PATH);
	snap(&v[2], 9, "/");
	assert_int_equal(sync_btrfs_listing("p", v, 3, &s, &n, &err), -1);
	/* a snapshot name with a '/', a zero GUID */
	snap(&v[2], 9, "sub/");
	snap(&v[3], 3, "sub/autosync_2");
	assert_int_equal(sync_btrfs_listing("p", v, 4, &s, &n, &err), -1);
	snap(&v[3], 0, "autosync_2");
	assert_int_equal(sync_btrfs_listing("p", v, 4, &s, &n, &err), -1);
}

/*
 * A server's receive of a nested subvolume: no trust, no receive; a
 * REL that leaves the root is refused before anything is created (the
 * destination's parent does not even exist).
 */
static void
t_receive_nested_refused(void **state)
{
	struct sync_btrfs_recv a;
	struct dir_recv_result res;
	struct as_err err;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&res, 0, sizeof(res));
	a.rel = "sub";
	as_err_clear(&err);
	assert_int_equal(sync_btrfs_receive(&a, "/nonexistent/d", -1, 0, &res,
	    &err), -1);
	assert_int_equal(err.code, AS_E_AUTH);
	a.trusted = 1;
	a.rel = "../../etc";
	as_err_clear(&err);
	assert_int_equal(sync_btrfs_receive(&a, "/nonexistent/d", -1, 0, &res,
	    &err), -1);
	assert_int_equal(err.code, AS_E_UNSAFE_PATH);
	a.rel = "";
	assert_int_equal(sync_btrfs_receive(&a, "/nonexistent/d", -1, 0, &res,
	    &err), -1);
	assert_int_equal(err.code, AS_E_UNSAFE_PATH);
}

/* base for now, as btrfs_auto_name and sync_zfs_new_name make it */
static void
now_base(char *base, size_t n, time_t *t)
{
	struct tm tm;

	*t = time(NULL);
	gmtime_r(t, &tm);
	strftime(base, n, "autosync_%Y-%m-%d_%H:%M:%S", &tm);
}

/*
 * A new name goes above the highest suffix of its second, never back to
 * a lower free one: the destination may still hold a name this side
 * pruned (t7020: a run within the same second collided with it).
 */
static void
t_auto_name_above(void **state)
{
	char d1[] = "/tmp/t_btrfs.XXXXXX", d2[] = "/tmp/t_btrfs.XXXXXX";
	char base[64], want[96], out[96], p[256];
	const char *dirs[2];
	struct zfs_snap zs[2];
	struct zfs_ds ds;
	struct zfs_tree zt;
	struct as_err err;
	time_t t0, t1;
	int tries;

	(void)state;
	assert_non_null(mkdtemp(d1));
	assert_non_null(mkdtemp(d2));
	dirs[0] = d1;
	dirs[1] = d2;
	for (tries = 0; tries < 5; tries++) {
		now_base(base, sizeof(base), &t0);
		/* "_2" here, nothing of this second there: _3, not base */
		snprintf(p, sizeof(p), "%s/%s_2", d1, base);
		assert_int_equal(mkdir(p, 0700), 0);
		as_err_clear(&err);
		assert_int_equal(btrfs_auto_name(dirs, 2, out, sizeof(out),
		    &err), 0);
		memset(&ds, 0, sizeof(ds));
		memset(zs, 0, sizeof(zs));
		zs[0].name = want;
		snprintf(want, sizeof(want), "%s_7", base);
		zs[1].name = (char *)"autosync_1999-01-01_00:00:00_9";
		ds.snaps = zs;
		ds.nsnaps = 2;
		zt.v = &ds;
		zt.n = 1;
		{
			char zout[96];

			sync_zfs_new_name(&zt, zout, sizeof(zout));
			now_base(base, sizeof(base), &t1);
			rmdir(p);
			if (t1 != t0)
				continue;	/* the second turned: again */
			snprintf(want, sizeof(want), "%s_3", base);
			assert_string_equal(out, want);
			snprintf(want, sizeof(want), "%s_8", base);
			assert_string_equal(zout, want);
		}
		break;
	}
	assert_true(tries < 5);
	rmdir(d1);
	rmdir(d2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_show_subvolume),
		cmocka_unit_test(t_show_snapshot_and_received),
		cmocka_unit_test(t_show_malformed),
		cmocka_unit_test(t_list),
		cmocka_unit_test(t_list_malformed),
		cmocka_unit_test(t_errcode),
		cmocka_unit_test(t_enc_rel),
		cmocka_unit_test(t_untrusted_refused),
		cmocka_unit_test(t_rel_check),
		cmocka_unit_test(t_listing),
		cmocka_unit_test(t_receive_nested_refused),
		cmocka_unit_test(t_auto_name_above),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
