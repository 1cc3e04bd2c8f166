/*
 * t_changes.c - the change journal (service/changes.h) on a real tree in
 * a temporary directory, once with fanotify and once with inotify: a
 * new journal is full, a file change names its directory, a new
 * directory is heard, a moved directory is marked whole, the private
 * .autosync is ignored, nothing pending after a take; changes outside
 * the tree are not heard, and a busy directory there is ignored by the
 * kernel until it moves; a directory moved out, changed and moved back
 * is marked whole; the root moved is "everything"; a queue overflow is
 * "everything"; a file system mounted below the root is heard, and so
 * is a directory from outside bind-mounted below it; auto switches to
 * inotify when overlayfs is mounted below; auto
 * picks fanotify where it works.  The fanotify cases skip where it is
 * not available (not root, no CAP_SYS_ADMIN).
 */
#include <sys/mount.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/xmalloc.h"
#include "service/changes.h"
#include "base/banned.h"

/*
 * The trees live on a tmpfs of this test's own where it can mount one:
 * a fanotify mark hears its whole file system, and on a shared busy one
 * a queue overflow (everything) could come at any time.
 */
static char base[64] = "/tmp";
static int base_mounted;
static char root[96];

static void
touch(const char *rel)
{
	char *p = xasprintf("%s/%s", root, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	free(p);
}

static void
mkd(const char *rel)
{
	char *p = xasprintf("%s/%s", root, rel);

	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
}

static void
mv(const char *from, const char *to)
{
	char *a = from[0] == '/' ? xstrdup(from) :
	    xasprintf("%s/%s", root, from);
	char *b = to[0] == '/' ? xstrdup(to) : xasprintf("%s/%s", root, to);

	assert_int_equal(rename(a, b), 0);
	free(a);
	free(b);
}

/*
 * Read what is there: both journals queue an event while the call that
 * made it runs, so one read after the calls gets them all.
 */
static void
drain(struct changes *c)
{
	assert_true(changes_read(c, NULL) >= 0);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(path);
}

static void
rm_tree(const char *path)
{
	assert_int_equal(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void
take(struct changes *c, int want_full, const char *const *want)
{
	char **dirs;
	size_t n, i;
	int full;

	changes_take(c, &full, &dirs, &n);
	assert_int_equal(full, want_full);
	for (i = 0; want != NULL && want[i] != NULL; i++) {
		if (i >= n || strcmp(dirs[i], want[i]) != 0)
			print_error("dir %zu: '%s', expected '%s'\n", i,
			    i < n ? dirs[i] : "(none)", want[i]);
		assert_true(i < n);
		assert_string_equal(dirs[i], want[i]);
	}
	if (n != i)
		print_error("%zu directories, expected %zu ('%s'...)\n", n, i,
		    n > 0 ? dirs[0] : "");
	assert_int_equal(n, i);
	changes_free_list(dirs, n);
	assert_int_equal(changes_pending(c), 0);
}

/* A fresh tree in root and a journal of kind k on it (or a skip). */
static struct changes *
fresh(enum changes_kind k)
{
	struct changes *c;
	struct as_err err;

	snprintf(root, sizeof(root), "%s/t_changes.XXXXXX", base);
	assert_non_null(mkdtemp(root));
	mkd("a");
	mkd(".autosync");
	touch("a/f");
	c = changes_open_kind(root, k, &err);
	if (c == NULL && k == CHANGES_FANOTIFY) {
		print_message("fanotify not available: %s\n", err.msg);
		rm_tree(root);
		skip();
	}
	assert_non_null(c);
	assert_int_equal(changes_kind(c), k);
	assert_int_equal(changes_pending(c), 1);
	take(c, 1, NULL);			/* new: everything */
	return c;
}

static void
done(struct changes *c)
{
	changes_close(c);
	rm_tree(root);
}

static void
journal(enum changes_kind k)
{
	static const char *const a[] = { "a", NULL };
	static const char *const root_and_a[] = { "", "a", NULL };
	/* inotify marks a new directory whole: it had no watch yet */
	static const char *const root_and_new_ino[] = { "", "b", "b/c", NULL };
	static const char *const root_and_new_fan[] = { "", "b", NULL };
	static const char *const deep[] = { "b/c", NULL };
	static const char *const moved[] = { "", "moved", "moved/c", NULL };
	static const char *const moved_c[] = { "moved/c", NULL };
	struct changes *c = fresh(k);
	char *p;

	touch("a/f");
	drain(c);
	take(c, 0, a);

	touch(".autosync/held.cat");		/* private: not a change */
	mkd(".autosync/stage");
	touch(".autosync/stage/x");
	drain(c);
	assert_int_equal(changes_pending(c), 0);

	mkd("b");
	mkd("b/c");
	drain(c);
	take(c, 0, k == CHANGES_INOTIFY ? root_and_new_ino : root_and_new_fan);
	touch("b/c/g");				/* heard by now */
	drain(c);
	take(c, 0, deep);

	mv("b", "moved");			/* its parent and its new place */
	drain(c);
	take(c, 0, moved);
	touch("moved/c/h");			/* heard under its new name */
	drain(c);
	take(c, 0, moved_c);

	/* a directory's own attributes: itself (inotify: its parent too) */
	p = xasprintf("%s/a", root);
	assert_int_equal(chmod(p, 0700), 0);
	free(p);
	drain(c);
	take(c, 0, k == CHANGES_INOTIFY ? root_and_a : a);
	done(c);
}

static void
test_fanotify(void **state)
{
	(void)state;
	journal(CHANGES_FANOTIFY);
}

static void
test_inotify(void **state)
{
	(void)state;
	journal(CHANGES_INOTIFY);
}

/*
 * A directory moved out of the tree, changed there (not heard) and moved
 * back: everything in it is listed, since the base has it at that path
 * with that inode.
 */
static void
out_and_back(enum changes_kind k)
{
	static const char *const a_ab[] = { "a", "a/b", NULL };
	static const char *const r[] = { "", NULL };
	static const char *const r_a_ab[] = { "", "a", "a/b", NULL };
	struct changes *c = fresh(k);
	char out[80], *p;
	int fd;

	mkd("a/b");
	touch("a/b/f");
	drain(c);
	take(c, 0, a_ab);
	snprintf(out, sizeof(out), "%s.out", root);
	mv("a", out);
	drain(c);
	take(c, 0, r);
	p = xasprintf("%s/b/f", out);
	fd = open(p, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "changed", 7), 7);
	close(fd);
	free(p);
	drain(c);
	assert_int_equal(changes_pending(c), 0);	/* outside: not heard */
	mv(out, "a");
	drain(c);
	take(c, 0, r_a_ab);
	done(c);
}

static void
test_out_and_back_fanotify(void **state)
{
	(void)state;
	out_and_back(CHANGES_FANOTIFY);
}

static void
test_out_and_back_inotify(void **state)
{
	(void)state;
	out_and_back(CHANGES_INOTIFY);
}

/* The root moved away (and another directory put in its place). */
static void
root_moved(enum changes_kind k)
{
	static const char *const a[] = { "a", NULL };
	static const char *const r[] = { "", NULL };
	/* inotify: a new directory is marked with what is below it */
	static const char *const r_a[] = { "", "a", NULL };
	struct changes *c = fresh(k);
	char away[80];

	snprintf(away, sizeof(away), "%s.away", root);
	assert_int_equal(rename(root, away), 0);
	assert_int_equal(mkdir(root, 0755), 0);
	drain(c);
	take(c, 1, NULL);
	mkd("a");				/* the new tree is watched */
	drain(c);
	take(c, 0, k == CHANGES_INOTIFY ? r_a : r);
	touch("a/f");
	drain(c);
	take(c, 0, a);
	rm_tree(away);
	done(c);
}

static void
test_root_moved_fanotify(void **state)
{
	(void)state;
	root_moved(CHANGES_FANOTIFY);
}

static void
test_root_moved_inotify(void **state)
{
	(void)state;
	root_moved(CHANGES_INOTIFY);
}

/* More events than the queue holds, unread: everything. */
static void
test_overflow_fanotify(void **state)
{
	static const char *const a[] = { "a", NULL };
	struct changes *c;
	char path[128];
	long max = 16384, i;
	FILE *f;

	(void)state;
	c = fresh(CHANGES_FANOTIFY);
	if ((f = fopen("/proc/sys/fs/fanotify/max_queued_events", "re")) !=
	    NULL) {
		assert_int_equal(fscanf(f, "%ld", &max), 1);
		fclose(f);
	}
	/* distinct names: the queue merges repeats of one event */
	for (i = 0; i < max + 100; i++) {
		snprintf(path, sizeof(path), "%s/a/n%ld", root, i);
		assert_int_equal(mknod(path, S_IFREG | 0644, 0), 0);
	}
	drain(c);
	take(c, 1, NULL);
	touch("a/f");
	drain(c);
	take(c, 0, a);
	done(c);
}

/* Changes beside the tree, on its file system: not heard, and cheap. */
static void
test_outside_fanotify(void **state)
{
	struct changes *c;
	char out[80], *p;
	int i, fd;

	(void)state;
	c = fresh(CHANGES_FANOTIFY);
	snprintf(out, sizeof(out), "%s.side", root);
	assert_int_equal(mkdir(out, 0755), 0);
	for (i = 0; i < 100; i++) {
		p = xasprintf("%s/f%d", out, i % 5);
		fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_true(fd >= 0);
		close(fd);
		free(p);
	}
	drain(c);
	assert_int_equal(changes_pending(c), 0);
	rm_tree(out);
	done(c);
}

/* Inode marks of the journal's fanotify group (its ignore marks). */
static int
inode_marks(const struct changes *c)
{
	char path[64], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", changes_fd(c));
	assert_non_null(f = fopen(path, "re"));
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "fanotify ino:", 13) == 0)
			n++;
	fclose(f);
	return n;
}

/*
 * A busy directory beside the tree is ignored by the kernel after a
 * while (fewer events read than made); moved into the tree, it is heard
 * again.  A busy parent of the root is never ignored: the root's move
 * is still heard.
 */
static void
test_busy_outside_fanotify(void **state)
{
	static const char *const r_in[] = { "", "in", NULL };
	static const char *const in[] = { "in", NULL };
	struct changes *c;
	char out[80], par[96], away[80], *p;
	int i, fd;

	(void)state;
	c = fresh(CHANGES_FANOTIFY);
	assert_int_equal(inode_marks(c), 0);
	snprintf(out, sizeof(out), "%s.busy", root);
	assert_int_equal(mkdir(out, 0755), 0);
	p = xasprintf("%s/f", out);
	for (i = 0; i < 300; i++) {
		fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "x", 1), 1);
		close(fd);
		drain(c);		/* one event each: none merged */
	}
	free(p);
	assert_int_equal(changes_pending(c), 0);
	/* its ignore mark (and maybe others': the file system is shared) */
	assert_true(inode_marks(c) >= 1);
	mv(out, "in");				/* in the tree now */
	drain(c);
	take(c, 0, r_in);
	touch("in/f");				/* heard again */
	drain(c);
	take(c, 0, in);

	/* the root's parent, busy: never ignored */
	snprintf(par, sizeof(par), "%s.parent-busy", root);
	for (i = 0; i < 200; i++) {
		fd = open(par, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_true(fd >= 0);
		close(fd);
		drain(c);
	}
	assert_int_equal(unlink(par), 0);
	snprintf(away, sizeof(away), "%s.away", root);
	assert_int_equal(rename(root, away), 0);
	drain(c);				/* heard here */
	assert_int_equal(rename(away, root), 0);
	take(c, 1, NULL);
	done(c);
}

/* A file system mounted below the root (a tmpfs): heard, by path. */
static void
test_mount_below_fanotify(void **state)
{
	static const char *const m[] = { "m", NULL };
	static const char *const ms[] = { "m/s", NULL };
	struct changes *c;
	char *p;

	(void)state;
	c = fresh(CHANGES_FANOTIFY);
	mkd("m");
	p = xasprintf("%s/m", root);
	if (mount("t_changes", p, "tmpfs", 0, "size=1m") == -1) {
		print_message("no tmpfs mount: %s\n", strerror(errno));
		free(p);
		done(c);
		skip();
	}
	drain(c);
	assert_int_equal(changes_mounts_changed(c), 1);
	take(c, 1, NULL);			/* the mount: everything */
	assert_int_equal(changes_watches(c), 2);
	touch("m/f");
	drain(c);
	take(c, 0, m);
	mkd("m/s");
	touch("m/s/g");
	drain(c);
	{
		static const char *const m_ms[] = { "m", "m/s", NULL };

		take(c, 0, m_ms);
	}
	touch("m/s/g");
	drain(c);
	take(c, 0, ms);
	assert_int_equal(umount(p), 0);
	free(p);
	drain(c);
	assert_int_equal(changes_mounts_changed(c), 1);
	take(c, 1, NULL);
	assert_int_equal(changes_watches(c), 1);
	done(c);
}

/*
 * A directory of the root's file system from outside the tree,
 * bind-mounted below the root: heard under its name in the tree.
 */
static void
test_bind_below_fanotify(void **state)
{
	static const char *const bm[] = { "bm", NULL };
	static const char *const bmx[] = { "bm/x", NULL };
	struct changes *c;
	char out[80], *p, *q;
	int fd;

	(void)state;
	c = fresh(CHANGES_FANOTIFY);
	snprintf(out, sizeof(out), "%s.bind", root);
	assert_int_equal(mkdir(out, 0755), 0);
	p = xasprintf("%s/x", out);
	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
	mkd("bm");
	p = xasprintf("%s/bm", root);
	if (mount(out, p, NULL, MS_BIND, NULL) == -1) {
		print_message("no bind mount: %s\n", strerror(errno));
		free(p);
		rm_tree(out);
		done(c);
		skip();
	}
	drain(c);
	assert_int_equal(changes_mounts_changed(c), 1);
	take(c, 1, NULL);
	assert_int_equal(changes_watches(c), 1);	/* the same one */
	touch("bm/f");
	drain(c);
	take(c, 0, bm);
	q = xasprintf("%s/x/g", out);			/* by its other name */
	fd = open(q, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	free(q);
	drain(c);
	take(c, 0, bmx);
	assert_int_equal(umount(p), 0);
	free(p);
	rm_tree(out);
	done(c);
}

/*
 * auto: a file system without usable handles (overlayfs) mounted below
 * the root later makes the journal an inotify one, saying why.
 */
static void
test_auto_switch(void **state)
{
	static const char *const ov_d[] = { "ov", "ov/d", NULL };
	struct changes *c;
	struct as_err err;
	char *p, *opts;
	int i;

	(void)state;
	c = fresh(CHANGES_FANOTIFY);		/* a skip without fanotify */
	changes_close(c);
	assert_non_null(c = changes_open_kind(root, CHANGES_AUTO, &err));
	assert_int_equal(changes_kind(c), CHANGES_FANOTIFY);
	take(c, 1, NULL);
	mkd("ov");
	p = xasprintf("%s/ov", root);
	/* its layers beside the tree */
	opts = xasprintf("%s.lower", root);
	assert_int_equal(mkdir(opts, 0755), 0);
	free(opts);
	opts = xasprintf("%s.upper", root);
	assert_int_equal(mkdir(opts, 0755), 0);
	free(opts);
	opts = xasprintf("%s.work", root);
	assert_int_equal(mkdir(opts, 0755), 0);
	free(opts);
	opts = xasprintf("lowerdir=%s.lower,upperdir=%s.upper,workdir=%s.work",
	    root, root, root);
	if (mount("t_changes", p, "overlay", 0, opts) == -1) {
		print_message("no overlayfs: %s\n", strerror(errno));
		free(p);
		free(opts);
		done(c);
		skip();
	}
	free(opts);
	drain(c);
	assert_int_equal(changes_mounts_changed(c), 1);
	take(c, 1, NULL);
	assert_int_equal(changes_kind(c), CHANGES_INOTIFY);
	assert_non_null(strstr(changes_why(c), "no file handles"));
	mkd("ov/d");				/* heard by inotify now */
	drain(c);
	take(c, 0, ov_d);
	assert_int_equal(umount(p), 0);
	free(p);
	for (i = 0; i < 3; i++) {
		opts = xasprintf("%s.%s", root, (const char *[]){ "lower",
		    "upper", "work" }[i]);
		rm_tree(opts);
		free(opts);
	}
	done(c);
}

static void
test_auto_and_names(void **state)
{
	struct changes *c;
	enum changes_kind k;
	struct as_err err;

	(void)state;
	assert_int_equal(changes_kind_parse("auto", &k), 0);
	assert_int_equal(k, CHANGES_AUTO);
	assert_int_equal(changes_kind_parse("fanotify", &k), 0);
	assert_int_equal(k, CHANGES_FANOTIFY);
	assert_int_equal(changes_kind_parse("inotify", &k), 0);
	assert_int_equal(k, CHANGES_INOTIFY);
	assert_int_equal(changes_kind_parse("dnotify", &k), -1);
	assert_string_equal(changes_kind_name(CHANGES_INOTIFY), "inotify");

	snprintf(root, sizeof(root), "%s/t_changes.XXXXXX", base);
	assert_non_null(mkdtemp(root));
	mkd("a");
	mkd("a/b");
	/* auto: fanotify where it works, else inotify saying why */
	c = changes_open_kind(root, CHANGES_FANOTIFY, &err);
	if (c != NULL) {
		changes_close(c);
		assert_non_null(c = changes_open(root, &err));
		assert_int_equal(changes_kind(c), CHANGES_FANOTIFY);
		assert_string_equal(changes_why(c), "");
		assert_int_equal(changes_watches(c), 1);
	} else {
		assert_non_null(c = changes_open(root, &err));
		assert_int_equal(changes_kind(c), CHANGES_INOTIFY);
		assert_true(changes_why(c)[0] != '\0');
	}
	changes_close(c);
	assert_non_null(c = changes_open_kind(root, CHANGES_INOTIFY, &err));
	assert_int_equal(changes_watches(c), 3);	/* ., a, a/b */
	assert_string_equal(changes_why(c), "");
	changes_close(c);
	rm_tree(root);
}

int
main(void)
{
	int rc;

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fanotify),
		cmocka_unit_test(test_inotify),
		cmocka_unit_test(test_out_and_back_fanotify),
		cmocka_unit_test(test_out_and_back_inotify),
		cmocka_unit_test(test_root_moved_fanotify),
		cmocka_unit_test(test_root_moved_inotify),
		cmocka_unit_test(test_overflow_fanotify),
		cmocka_unit_test(test_outside_fanotify),
		cmocka_unit_test(test_busy_outside_fanotify),
		cmocka_unit_test(test_mount_below_fanotify),
		cmocka_unit_test(test_bind_below_fanotify),
		cmocka_unit_test(test_auto_switch),
		cmocka_unit_test(test_auto_and_names),
	};

	snprintf(base, sizeof(base), "/tmp/t_changes.fs.XXXXXX");
	if (mkdtemp(base) == NULL)
		return 1;
	if (mount("t_changes", base, "tmpfs", 0, "size=64m") == 0)
		base_mounted = 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (base_mounted)
		(void)umount2(base, MNT_DETACH);
	(void)rmdir(base);
	return rc;
}
