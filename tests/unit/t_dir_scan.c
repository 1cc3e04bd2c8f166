/*
 * t_dir_scan.c - the narrowed scan (dir_scan_narrow) on a real tree in a
 * temporary directory: after changes in some directories, a scan narrowed
 * to the directories that changed gives the same catalog as a full scan
 * while it stats only those directories' entries; a new subtree is
 * scanned whole, a replaced directory too; a change outside the list is
 * not seen (the copies come from the base: the journal's word is taken);
 * a hard link changed through another directory makes it scan in full;
 * and, end to end, the list that the change journal (changes.h) hands
 * over narrows the scan to exactly what is needed.
 */
#include <sys/stat.h>
#include <sys/xattr.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
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
#include "driver/dir.h"
#include "format/stream.h"
#include "service/changes.h"
#include "base/banned.h"

#define BS	4096

static char root[] = "/tmp/t_dir_scan.XXXXXX";

static void
put_at(const char *dir, const char *rel, const char *data)
{
	char *p = xasprintf("%s/%s", dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
	free(p);
}

static void
put(const char *rel, const char *data)
{
	put_at(root, rel, data);
}

static void
mkd_at(const char *dir, const char *rel, mode_t mode)
{
	char *p = xasprintf("%s/%s", dir, rel);

	assert_int_equal(mkdir(p, mode), 0);
	free(p);
}

static void
mkd(const char *rel)
{
	mkd_at(root, rel, 0755);
}

/* A new file at path holding data; with xlen, an xattr of data's first
 * xlen bytes. */
static void
put_new(const char *path, const char *data, mode_t mode, const char *xname,
    size_t xlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	if (xlen != 0)
		assert_int_equal(fsetxattr(fd, xname, data, xlen, 0), 0);
	close(fd);
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
gone(const char *rel)
{
	char *p = xasprintf("%s/%s", root, rel);

	assert_int_equal(unlink(p), 0);
	free(p);
}

static void
rm_tree(const char *rel)
{
	char *p = xasprintf("%s/%s", root, rel);

	assert_int_equal(nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(p);
}

/* 20 directories a0..a9/b0..b1 of 5 files each, and a deeper one. */
static void
make_tree(void)
{
	char rel[64];
	int a, b, i;

	for (a = 0; a < 10; a++) {
		snprintf(rel, sizeof(rel), "a%d", a);
		mkd(rel);
		for (b = 0; b < 2; b++) {
			snprintf(rel, sizeof(rel), "a%d/b%d", a, b);
			mkd(rel);
			for (i = 0; i < 5; i++) {
				snprintf(rel, sizeof(rel), "a%d/b%d/f%d", a,
				    b, i);
				put(rel, "hello");
			}
		}
	}
	mkd("a3/b1/deep");
	put("a3/b1/deep/x", "x");
	put("top", "top");
}

/* Two catalogs list the same entries with the same attributes. */
static void
same_catalog(const struct catalog *x, const struct catalog *y)
{
	const struct cat_entry *a, *b;
	size_t i;

	for (i = 0; i < x->n || i < y->n; i++)
		if (i >= x->n || i >= y->n || strcmp(catalog_path(x,
		    &x->ents[i]), catalog_path(y, &y->ents[i])) != 0) {
			print_message("first difference at %zu: '%s' '%s'\n",
			    i, i < x->n ? catalog_path(x, &x->ents[i]) : "-",
			    i < y->n ? catalog_path(y, &y->ents[i]) : "-");
			break;
		}
	assert_int_equal(x->n, y->n);
	for (i = 0; i < x->n; i++) {
		a = &x->ents[i];
		b = &y->ents[i];
		assert_string_equal(catalog_path(x, a), catalog_path(y, b));
		assert_int_equal(a->ino, b->ino);
		assert_int_equal(a->mode, b->mode);
		assert_int_equal(a->size, b->size);
		assert_int_equal(a->nlink, b->nlink);
		assert_int_equal(a->mtime_sec, b->mtime_sec);
		assert_int_equal(a->mtime_nsec, b->mtime_nsec);
		assert_int_equal(a->ctime_sec, b->ctime_sec);
		assert_int_equal(a->ctime_nsec, b->ctime_nsec);
		assert_int_equal(a->flags, b->flags);
		assert_int_equal(a->nblocks, b->nblocks);
		assert_int_equal(a->xattr_len, b->xattr_len);
		if (a->nblocks > 0)
			assert_memory_equal(x->hashes.data + CAT_HASH_AT(a),
			    y->hashes.data + CAT_HASH_AT(b),
			    (size_t)a->nblocks * CAT_HASH_LEN);
	}
}

static void
full_scan(struct catalog *c, const struct catalog *base, struct dir_stats *st)
{
	struct as_err err;

	catalog_init(c);
	memset(st, 0, sizeof(*st));
	assert_int_equal(dir_scan(root, base, BS, 0, c, st, &err), 0);
}

static void
narrow_scan(struct catalog *c, const struct catalog *base,
    const char *const *dirs, size_t n, struct dir_stats *st)
{
	struct as_err err;

	catalog_init(c);
	memset(st, 0, sizeof(*st));
	assert_int_equal(dir_scan_narrow(root, base, dirs, n, BS, 0, c, st,
	    &err), 0);
}

static void
test_narrow(void **state)
{
	struct catalog base, full, nar;
	struct dir_stats fs, ns;
	const char *none[] = { NULL };
	const char *d1[] = { "a2/b0", "a7" };
	const char *d3[] = { "a0/b0" };

	(void)state;
	make_tree();
	full_scan(&base, NULL, &fs);
	assert_int_equal(fs.entries, base.n);

	/* nothing changed: one stat (the root), everything copied */
	narrow_scan(&nar, &base, none, 0, &ns);
	same_catalog(&base, &nar);
	assert_int_equal(ns.entries, 1);
	assert_int_equal(ns.carried, base.n - 1);
	catalog_release(&nar);

	/* a changed file, a new one, a deleted one, a new subtree */
	put("a2/b0/f1", "changed");
	put("a2/b0/new", "new");
	gone("a2/b0/f3");
	mkd("a7/n");
	mkd("a7/n/m");
	put("a7/n/m/z", "z");
	full_scan(&full, &base, &fs);
	narrow_scan(&nar, &base, d1, 2, &ns);
	same_catalog(&full, &nar);
	/* root; a2/b0 and its 5; a7 and its b0, b1, n; n's m; m's z */
	assert_int_equal(ns.entries, 1 + 6 + 4 + 1 + 1);
	assert_int_equal(ns.entries + ns.carried, full.n);
	assert_int_equal(ns.rescans, 0);
	catalog_release(&nar);
	catalog_release(&base);
	base = full;

	/*
	 * a replaced directory is scanned though only its parent is listed
	 * (by its inode, or by its times when it got the old inode number
	 * again); a listed directory below an unlisted one is reached
	 */
	rm_tree("a5/b1");
	mkd("a5/b1");
	put("a5/b1/g", "g");
	mkd("a5/b1/h");
	put("a5/b1/h/i", "i");
	put("a3/b1/deep/y", "y");
	full_scan(&full, &base, &fs);
	{
		const char *d[] = { "a5", "a3/b1/deep" };

		narrow_scan(&nar, &base, d, 2, &ns);
	}
	same_catalog(&full, &nar);
	/* root; a5, b0, b1 (new: g, h, h/i); deep, x, y */
	assert_int_equal(ns.entries, 1 + 3 + 3 + 3);
	catalog_release(&nar);
	catalog_release(&base);
	base = full;

	/* a change the list does not name is not seen: base is trusted */
	put("a9/b0/f0", "unheard of");
	narrow_scan(&nar, &base, none, 0, &ns);
	same_catalog(&base, &nar);
	catalog_release(&nar);
	full_scan(&full, &base, &fs);
	catalog_release(&base);
	base = full;

	/* a new hard link: a rescan in full, the other name is current */
	{
		char *a = xasprintf("%s/a1/b1/f2", root);
		char *b = xasprintf("%s/a0/b0/link", root);

		assert_int_equal(link(a, b), 0);
		free(a);
		free(b);
	}
	full_scan(&full, &base, &fs);
	narrow_scan(&nar, &base, d3, 1, &ns);
	same_catalog(&full, &nar);
	assert_int_equal(ns.rescans, 1);
	catalog_release(&nar);
	catalog_release(&base);
	base = full;

	/*
	 * written through one name with no event heard (as through a name
	 * outside the tree): both directories are listed now (they hold a
	 * hard-linked file), so the change is seen
	 */
	put("a1/b1/f2", "through the other name");
	full_scan(&full, &base, &fs);
	narrow_scan(&nar, &base, none, 0, &ns);
	same_catalog(&full, &nar);
	assert_int_equal(ns.rescans, 1);
	catalog_release(&nar);
	catalog_release(&full);

	/* and unchanged, both directories are listed, nothing rescanned */
	full_scan(&full, &base, &fs);
	catalog_release(&base);
	base = full;
	narrow_scan(&nar, &base, none, 0, &ns);
	same_catalog(&base, &nar);
	assert_int_equal(ns.rescans, 0);
	/* root; a0/b0 and its 6 (f0-f4, link); a1/b1 and its 5 */
	assert_int_equal(ns.entries, 1 + 7 + 6);
	catalog_release(&nar);
	catalog_release(&base);
}

/* The journal's list, end to end: change, take, narrowed scan. */
static void
test_journal(void **state)
{
	struct changes *c;
	struct catalog base, full, nar;
	struct dir_stats fs, ns;
	struct pollfd pfd;
	struct as_err err;
	char **dirs;
	size_t n;
	int isfull;

	(void)state;
	full_scan(&base, NULL, &fs);
	/*
	 * inotify: it hears this tree only.  A fanotify mark hears the whole
	 * file system of /tmp, which other processes keep busy, so the drain
	 * below might never see 100 ms of quiet; t7015 covers fanotify.
	 */
	assert_non_null(c = changes_open_kind(root, CHANGES_INOTIFY, &err));
	changes_take(c, &isfull, &dirs, &n);
	assert_int_equal(isfull, 1);	/* a new journal */
	put("a4/b0/f0", "journal");
	mkd("a6/new");
	put("a6/new/f", "f");
	{
		char *a = xasprintf("%s/a8/b1/f4", root);
		char *b = xasprintf("%s/a8/b0/moved", root);

		assert_int_equal(rename(a, b), 0);
		free(a);
		free(b);
	}
	pfd.fd = changes_fd(c);
	pfd.events = POLLIN;
	while (poll(&pfd, 1, 100) > 0)
		assert_true(changes_read(c, NULL) >= 0);
	changes_take(c, &isfull, &dirs, &n);
	assert_int_equal(isfull, 0);
	full_scan(&full, &base, &fs);
	narrow_scan(&nar, &base, (const char *const *)dirs, n, &ns);
	same_catalog(&full, &nar);
	/*
	 * root; the directories with hard links from test_narrow, a0/b0 and
	 * its 6, a1/b1 and its 5; a4/b0 and its 5; a6 and its 3, new's f;
	 * a8/b0 and its 6, a8/b1 and its 4: nothing else stat'ed
	 */
	assert_int_equal(n, 5);
	assert_int_equal(ns.entries, 1 + 7 + 6 + 6 + 4 + 1 + 7 + 5);
	assert_int_equal(ns.entries + ns.carried, full.n);
	changes_free_list(dirs, n);
	changes_close(c);
	catalog_release(&nar);
	catalog_release(&full);
	catalog_release(&base);
}

/*
 * The full scan on several threads (dir_scan.c, walk_parallel) makes the
 * catalog the single walk makes, entry for entry (xattrs, hashes,
 * symlink targets, a hard link across runs, files between directories
 * at the root), with the same counts; and when the walk meets an error
 * in two runs, it reports the first in path order, as the single walk.
 */
static void
scan_threads(const char *dir, const char *threads, int flags,
    struct catalog *c, struct dir_stats *st, struct as_err *err, int want)
{
	setenv("AUTOSYNC_SCAN_THREADS", threads, 1);
	catalog_init(c);
	memset(st, 0, sizeof(*st));
	memset(err, 0, sizeof(*err));
	assert_int_equal(dir_scan(dir, NULL, BS, flags, c, st, err), want);
	unsetenv("AUTOSYNC_SCAN_THREADS");
}

/* dir/FROM hard-linked as dir/TO */
static void
link_at(const char *dir, const char *from, const char *to)
{
	char *p = xasprintf("%s/%s", dir, from), *q = xasprintf("%s/%s", dir,
	    to);

	assert_int_equal(link(p, q), 0);
	free(p);
	free(q);
}

/* dir/top/ + names of 250 bytes until the path passes AS_PATH_MAX */
static void
too_deep(const char *dir, const char *top)
{
	char name[251];
	int fd, nfd, i;

	memset(name, 'n', 250);
	name[250] = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(mkdirat(fd, top, 0755), 0);
	nfd = openat(fd, top, O_RDONLY | O_DIRECTORY);
	close(fd);
	for (i = 0; i < 17; i++) {
		fd = nfd;
		assert_true(fd >= 0);
		assert_int_equal(mkdirat(fd, name, 0755), 0);
		nfd = openat(fd, name, O_RDONLY | O_DIRECTORY);
		close(fd);
	}
	close(nfd);
}

/* Remove name below dfd however deep (nftw builds paths: too long). */
static void
rm_at(int dfd, const char *name)
{
	struct dirent *de;
	DIR *dp;
	int fd;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd == -1) {
		assert_int_equal(unlinkat(dfd, name, 0), 0);
		return;
	}
	assert_non_null(dp = fdopendir(fd));
	while ((de = readdir(dp)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			rm_at(fd, de->d_name);
	closedir(dp);
	assert_int_equal(unlinkat(dfd, name, AT_REMOVEDIR), 0);
}

static void
test_parallel(void **state)
{
	char dir[] = "/tmp/t_dir_scan_par.XXXXXX", rel[96], *p;
	struct catalog a, b;
	struct dir_stats sa, sb;
	struct as_err ea, eb;
	const struct cat_entry *x, *y;
	size_t i;
	int d, f, fl;

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (d = 0; d < 40; d++) {
		snprintf(rel, sizeof(rel), "%s/d%02d", dir, d);
		assert_int_equal(mkdir(rel, 0750 + (d % 8)), 0);
		for (f = 0; f < 7; f++) {
			snprintf(rel, sizeof(rel), "%s/d%02d/f%d", dir, d, f);
			p = xasprintf("%d-%d %0*d", d, f, d * 300 + f, 0);
			put_new(rel, p, 0644, "user.k", f != 3 ? 0 :
			    strlen(p) < 20 ? strlen(p) : 20);
			free(p);
		}
		snprintf(rel, sizeof(rel), "%s/d%02d/s", dir, d);
		assert_int_equal(symlink("f1", rel), 0);
		/* a file at the root between this directory and the next */
		snprintf(rel, sizeof(rel), "%s/d%02d.txt", dir, d);
		fl = open(rel, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fl >= 0);
		close(fl);
	}
	link_at(dir, "d01/f0", "d38/hard");

	for (fl = 0; fl < 2; fl++) {
		scan_threads(dir, "1", fl ? DIR_SCAN_DEFER : 0, &a, &sa, &ea,
		    0);
		scan_threads(dir, "3", fl ? DIR_SCAN_DEFER : 0, &b, &sb, &eb,
		    0);
		assert_int_equal(a.n, 1 + 40 * 10 + 1);
		same_catalog(&a, &b);
		for (i = 0; i < a.n; i++) {
			x = &a.ents[i];
			y = &b.ents[i];
			assert_int_equal(x->aux_len, y->aux_len);
			assert_string_equal(catalog_aux(&a, x),
			    catalog_aux(&b, y));
			if (x->xattr_len != 0)
				assert_memory_equal(catalog_xattrs(&a, x),
				    catalog_xattrs(&b, y), x->xattr_len);
		}
		assert_int_equal(sa.entries, sb.entries);
		assert_int_equal(sa.files_read, sb.files_read);
		assert_int_equal(sa.bytes_read, sb.bytes_read);
		catalog_release(&a);
		catalog_release(&b);
	}

	/* two paths too long: d05's is met first in path order */
	too_deep(dir, "d36/z");
	too_deep(dir, "d05/z");
	scan_threads(dir, "1", 0, &a, &sa, &ea, -1);
	scan_threads(dir, "3", 0, &b, &sb, &eb, -1);
	assert_int_equal(ea.code, AS_E_LIMIT);
	assert_int_equal(eb.code, ea.code);
	assert_non_null(strstr(ea.msg, "path 'd05/z/"));
	assert_string_equal(eb.msg, ea.msg);
	catalog_release(&a);
	catalog_release(&b);
	rm_at(AT_FDCWD, dir);
}

/* dir/REL holding n directories of 4 files each (a symlink, an xattr) */
static void
chain_fill(const char *dir, const char *rel, int n)
{
	char path[256], *v;
	int d, f;

	for (d = 0; d < n; d++) {
		snprintf(path, sizeof(path), "%s/%s/c%02d", dir, rel, d);
		assert_int_equal(mkdir(path, 0750), 0);
		for (f = 0; f < 4; f++) {
			snprintf(path, sizeof(path), "%s/%s/c%02d/f%d", dir,
			    rel, d, f);
			v = xasprintf("%s %d %d", rel, d, f);
			put_new(path, v, 0640, "user.c", f == 2 ? strlen(v) : 0);
			free(v);
		}
		snprintf(path, sizeof(path), "%s/%s/c%02d/s", dir, rel, d);
		assert_int_equal(symlink("f0", path), 0);
	}
}

/* One thread and three give the same catalog of dir (or the same error). */
static void
same_both_ways(const char *dir, int want, size_t n)
{
	struct catalog a, b;
	struct dir_stats sa, sb;
	struct as_err ea, eb;
	size_t i;

	scan_threads(dir, "1", 0, &a, &sa, &ea, want);
	scan_threads(dir, "3", 0, &b, &sb, &eb, want);
	if (want == 0) {
		assert_int_equal(a.n, n);
		same_catalog(&a, &b);
		for (i = 0; i < a.n; i++)
			assert_string_equal(catalog_aux(&a, &a.ents[i]),
			    catalog_aux(&b, &b.ents[i]));
		assert_int_equal(sa.entries, sb.entries);
		assert_int_equal(sa.bytes_read, sb.bytes_read);
	} else {
		assert_int_equal(eb.code, ea.code);
		assert_string_equal(eb.msg, ea.msg);
	}
	catalog_release(&a);
	catalog_release(&b);
}

/*
 * A root that holds one directory, which holds one directory, which
 * holds many: the full scan goes down the chain and cuts the third
 * (walk_parallel), with the runs' paths below the chain's.  The same
 * catalog as one thread's: with a hard link between two runs, after a
 * chain that ends in a file, and when two runs meet a path too long
 * (the first in path order is said).
 */
static void
test_parallel_chain(void **state)
{
	char dir[] = "/tmp/t_dir_scan_chain.XXXXXX", *p;

	(void)state;
	assert_non_null(mkdtemp(dir));
	mkd_at(dir, "top", 0755);
	mkd_at(dir, "top/mid", 0700);
	chain_fill(dir, "top/mid", 24);
	link_at(dir, "top/mid/c02/f1", "top/mid/c21/hard");
	/* root, top, mid, 24 x (dir, 4 files, symlink), one link */
	same_both_ways(dir, 0, 3 + 24 * 6 + 1);

	/* a second directory at the root: the root is cut, as before */
	mkd_at(dir, "other", 0755);
	same_both_ways(dir, 0, 4 + 24 * 6 + 1);

	/* a chain that ends in a file */
	p = xasprintf("%s/other", dir);
	assert_int_equal(rmdir(p), 0);
	free(p);
	rm_at(AT_FDCWD, dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	mkd_at(dir, "only", 0755);
	p = xasprintf("%s/only/file", dir);
	put_new(p, "", 0644, NULL, 0);
	free(p);
	same_both_ways(dir, 0, 3);

	/* two paths too long below the chain: c05's is met first */
	mkd_at(dir, "only/mid", 0755);
	p = xasprintf("%s/only/file", dir);
	assert_int_equal(unlink(p), 0);
	free(p);
	chain_fill(dir, "only/mid", 8);
	too_deep(dir, "only/mid/c06/z");
	too_deep(dir, "only/mid/c05/z");
	same_both_ways(dir, -1, 0);
	rm_at(AT_FDCWD, dir);
}

/*
 * A root of two directories, one holding nearly everything (/home with
 * one big user): each run of one directory is cut again by the worker
 * that took it (part_walk, SCAN_NEST), below a chain too.  The same
 * catalog as one thread's: with hard links between the nested runs and
 * between the two top runs; two paths too long in nested runs of the
 * big one and one in the small one: the first in path order is said.
 */
static void
test_parallel_nested(void **state)
{
	char dir[] = "/tmp/t_dir_scan_nest.XXXXXX";

	(void)state;
	assert_non_null(mkdtemp(dir));
	mkd_at(dir, "alice", 0755);
	mkd_at(dir, "bob", 0755);
	chain_fill(dir, "alice", 40);	/* >= SCAN_NEST_KIDS */
	chain_fill(dir, "bob", 2);
	link_at(dir, "alice/c03/f1", "alice/c33/hard");
	link_at(dir, "alice/c03/f1", "bob/c01/hard");
	/* root, 2 tops, 42 x (dir, 4 files, symlink), two links */
	same_both_ways(dir, 0, 3 + 42 * 6 + 2);

	/* a chain below one of them: carol/home/ holds the many */
	mkd_at(dir, "carol", 0755);
	mkd_at(dir, "carol/home", 0755);
	chain_fill(dir, "carol/home", 36);
	same_both_ways(dir, 0, 5 + 78 * 6 + 2);

	/* paths too long: alice's c07 and c05 below the cut, bob's c00 */
	too_deep(dir, "alice/c07/z");
	too_deep(dir, "alice/c05/z");
	too_deep(dir, "bob/c00/z");
	same_both_ways(dir, -1, 0);
	rm_at(AT_FDCWD, dir);
}

/*
 * dir_scan_merge with its walk on one thread and on three: the base of
 * a tree, then the tree changed (files written, a directory and files
 * of the root gone, new ones before, between and after the old names, a
 * file moved to another directory, a file made a symlink, an xattr
 * changed): the same out (flags, hashes taken from the base) and the
 * same rest; a base damaged in the middle fails both with one message.
 */
static void
merge_threads(const char *dir, const char *threads, const struct buf *b,
    struct catalog *out, struct catalog *rest, struct dir_stats *st,
    struct as_err *err, int want)
{
	struct cat_reader rd;

	setenv("AUTOSYNC_SCAN_THREADS", threads, 1);
	catalog_init(out);
	catalog_init(rest);
	memset(st, 0, sizeof(*st));
	memset(err, 0, sizeof(*err));
	if (cat_reader_open(&rd, b->data, b->len, NULL, NULL, err) != 0)
		fail_msg("open the base: %s", err->msg);
	if (dir_scan_merge(dir, &rd, BS, DIR_SCAN_DEFER, out, rest, st,
	    err) != want)
		fail_msg("merge on %s threads: %s", threads, err->msg);
	cat_reader_release(&rd);
	unsetenv("AUTOSYNC_SCAN_THREADS");
}

static void
same_extras(const struct catalog *a, const struct catalog *b)
{
	const struct cat_entry *x, *y;
	size_t i;

	same_catalog(a, b);
	for (i = 0; i < a->n; i++) {
		x = &a->ents[i];
		y = &b->ents[i];
		assert_int_equal(x->aux_len, y->aux_len);
		assert_string_equal(catalog_aux(a, x), catalog_aux(b, y));
		if (x->xattr_len != 0)
			assert_memory_equal(catalog_xattrs(a, x),
			    catalog_xattrs(b, y), x->xattr_len);
	}
}

/*
 * The tree of test_merge_parallel below dir/PFX ("" or "top/mid/"),
 * its base, the changes; the same out and rest on one thread and three.
 * Below a chain the base also had entries the merge passes on its way
 * down (top/a-gone, between the chain's directories) and after it
 * (zz-root/, at the root): both gone now, both in rest.
 */
static void
merge_case(const char *pfx)
{
	char dir[] = "/tmp/t_dir_scan_mrg.XXXXXX", rel[128], *p, *q;
	struct catalog base, a, b, ra, rb;
	struct dir_stats sa, sb;
	struct as_err ea, eb;
	struct buf enc;
	size_t i, same;
	long k;
	int d, f;

	assert_non_null(mkdtemp(dir));
	if (pfx[0] != '\0') {
		mkd_at(dir, "top", 0755);
		mkd_at(dir, "top/mid", 0755);
		mkd_at(dir, "zz-root", 0755);
		put_at(dir, "zz-root/x", "after the chain");
		put_at(dir, "top/a-gone", "between the chain's directories");
	}
	for (d = 0; d < 30; d++) {
		snprintf(rel, sizeof(rel), "%s/%sd%02d", dir, pfx, d);
		assert_int_equal(mkdir(rel, 0755), 0);
		for (f = 0; f < 6; f++) {
			snprintf(rel, sizeof(rel), "%sd%02d/f%d", pfx, d, f);
			p = xasprintf("%d-%d %0*d", d, f, d * 500 + f, 0);
			put_at(dir, rel, p);
			free(p);
		}
		snprintf(rel, sizeof(rel), "%sd%02d.txt", pfx, d);
		put_at(dir, rel, "root file");
	}
	catalog_init(&base);
	assert_int_equal(dir_scan(dir, NULL, BS, 0, &base, &sa, &ea), 0);
	base.hdr.guid = 1;
	buf_init(&enc);
	catalog_encode(&base, &enc);

	/* the changes the merge must see (times a clock tick later) */
	usleep(20000);
#define AT(x)	(snprintf(rel, sizeof(rel), "%s%s", pfx, (x)), rel)
	put_at(dir, AT("d03/f2"), "written again, longer than before");
	put_at(dir, AT("d17/f0"), "and this one");
	p = xasprintf("%s/%s", dir, AT("d08"));
	assert_int_equal(nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(p);
	p = xasprintf("%s/%s", dir, AT("d21.txt"));
	assert_int_equal(unlink(p), 0);
	free(p);
	put_at(dir, AT("a-first"), "new, before every old name");
	put_at(dir, AT("d12.5"), "new, between old names");
	put_at(dir, AT("zz-last"), "new, after every old name");
	p = xasprintf("%s/%s", dir, AT("d25"));
	q = xasprintf("%s/%s", dir, AT("d02/moved"));
	assert_int_equal(rename(p, q), 0);
	free(p);
	free(q);
	p = xasprintf("%s/%s", dir, AT("d11/f1"));
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("f0", p), 0);
	free(p);
	p = xasprintf("%s/%s", dir, AT("d29/f5"));
	assert_int_equal(setxattr(p, "user.k", "value", 5, 0), 0);
	free(p);
	if (pfx[0] != '\0') {
		p = xasprintf("%s/zz-root", dir);
		assert_int_equal(nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS),
		    0);
		free(p);
		p = xasprintf("%s/top/a-gone", dir);
		assert_int_equal(unlink(p), 0);
		free(p);
	}

	merge_threads(dir, "1", &enc, &a, &ra, &sa, &ea, 0);
	merge_threads(dir, "3", &enc, &b, &rb, &sb, &eb, 0);
	same_extras(&a, &b);
	same_extras(&ra, &rb);
	assert_int_equal(sa.entries, sb.entries);
	for (i = same = 0; i < a.n; i++)
		same += (a.ents[i].flags & CAT_EF_SAME) != 0;
	/* the unchanged files are not kept in rest: most entries are SAME */
	assert_true(same > 100);
	assert_true(ra.n > 30 && ra.n < base.n - 100);
	if (pfx[0] != '\0') {
		assert_true(catalog_find(&rb, "zz-root/x", 9) >= 0);
		assert_true(catalog_find(&rb, "top/a-gone", 10) >= 0);
	}
	/* a file of the moved directory took its hashes from the base */
	AT("d02/moved/f4");
	k = catalog_find(&b, rel, strlen(rel));
	assert_true(k >= 0);
	assert_int_equal(b.ents[k].flags & CAT_EF_UNHASHED, 0);
#undef AT
	catalog_release(&a);
	catalog_release(&b);
	catalog_release(&ra);
	catalog_release(&rb);

	/* a damaged base: the same error either way */
	enc.data[enc.len / 2] ^= 0x40;
	merge_threads(dir, "1", &enc, &a, &ra, &sa, &ea, -1);
	merge_threads(dir, "3", &enc, &b, &rb, &sb, &eb, -1);
	assert_int_equal(ea.code, eb.code);
	assert_string_equal(ea.msg, eb.msg);
	assert_non_null(strstr(ea.msg, "base catalog"));
	catalog_release(&a);
	catalog_release(&b);
	catalog_release(&ra);
	catalog_release(&rb);
	buf_release(&enc);
	catalog_release(&base);
	rm_at(AT_FDCWD, dir);
}

static void
test_merge_parallel(void **state)
{
	(void)state;
	merge_case("");
	merge_case("top/mid/");
}

static int
setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(root));
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	assert_int_equal(nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_narrow),
		cmocka_unit_test(test_journal),
		cmocka_unit_test(test_parallel),
		cmocka_unit_test(test_parallel_chain),
		cmocka_unit_test(test_parallel_nested),
		cmocka_unit_test(test_merge_parallel),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
