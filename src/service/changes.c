/*
 * changes.c - the change journal of a continuous service (changes.h):
 * the choice between fanotify and inotify, and what both share (the
 * list of changed directories, the mount table, the walk).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/xmalloc.h"
#include "format/path.h"
#include "service/changes.h"
#include "service/changes_int.h"
#include "base/banned.h"

static const char *const kind_names[] = {
	[CHANGES_AUTO] = "auto",
	[CHANGES_FANOTIFY] = "fanotify",
	[CHANGES_INOTIFY] = "inotify",
};

const char *
changes_kind_name(enum changes_kind k)
{
	if ((unsigned)k >= sizeof(kind_names) / sizeof(kind_names[0]))
		return "?";
	return kind_names[k];
}

int
changes_kind_parse(const char *s, enum changes_kind *k)
{
	size_t i;

	for (i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
		if (s != NULL && strcmp(s, kind_names[i]) == 0) {
			*k = (enum changes_kind)i;
			return 0;
		}
	return -1;
}

/*
 * The mounts at and below the root, as a hash of their lines' mount IDs
 * and mount points in /proc/self/mountinfo (in its order): a mount or
 * an unmount there sends no event to either journal, but changes this.
 */
static uint64_t
mounts_hash(const char *root)
{
	char *line = NULL, *id, *mp, *save = NULL;
	size_t cap = 0, rlen = strlen(root);
	uint64_t h = 1469598103934665603ULL;
	const char *p;
	FILE *f;
	int i;

	if ((f = fopen("/proc/self/mountinfo", "re")) == NULL)
		return 0;
	while (getline(&line, &cap, f) != -1) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
		id = strtok_r(line, " ", &save);
		for (i = 0, mp = NULL; i < 4 && id != NULL; i++)
			mp = strtok_r(NULL, " ", &save);
		if (id == NULL || mp == NULL || strncmp(mp, root, rlen) != 0 ||
		    (mp[rlen] != '\0' && mp[rlen] != '/' && rlen > 1))
			continue;
		for (p = id; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		for (p = mp; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		h = (h ^ '\n') * 1099511628211ULL;
	}
	free(line);
	fclose(f);
	return h;
}

void
changes_mark(struct changes *c, const char *rel)
{
	if (c->full)
		return;
	/* a busy directory: one entry for a run of its events */
	if (c->ndirs > 0 && strcmp(c->dirs[c->ndirs - 1], rel) == 0)
		return;
	if (c->ndirs == 4 * CHANGES_MAX) {
		c->full = 1;
		return;
	}
	if (c->ndirs == c->capdirs) {
		c->capdirs = c->capdirs ? c->capdirs * 2 : 64;
		c->dirs = xreallocarray(c->dirs, c->capdirs, sizeof(*c->dirs));
	}
	c->dirs[c->ndirs++] = xstrdup(rel);
}

char *
changes_join(const char *a, const char *b)
{
	return a[0] == '\0' ? xstrdup(b) : xasprintf("%s/%s", a, b);
}

void
changes_walk(struct changes *c, const char *rel0,
    int (*fn)(struct changes *, const char *, const char *, void *),
    void *arg)
{
	char **stack = NULL, *rel, *path, *sub;
	size_t n = 0, cap = 0;
	struct dirent *de;
	struct stat sb;
	DIR *d;

	stack = xreallocarray(stack, cap = 16, sizeof(*stack));
	stack[n++] = xstrdup(rel0);
	while (n > 0) {
		rel = stack[--n];
		path = rel[0] == '\0' ? xstrdup(c->root) :
		    xasprintf("%s/%s", c->root, rel);
		if (fn(c, rel, path, arg) == -1) {
			free(path);
			free(rel);
			continue;
		}
		if ((d = opendir(path)) != NULL) {
			while ((de = readdir(d)) != NULL) {
				if (strcmp(de->d_name, ".") == 0 ||
				    strcmp(de->d_name, "..") == 0 ||
				    (rel[0] == '\0' && strcmp(de->d_name,
				    AS_PRIVATE_DIR) == 0))
					continue;
				if (de->d_type != DT_DIR &&
				    de->d_type != DT_UNKNOWN)
					continue;
				sub = xasprintf("%s/%s", path, de->d_name);
				/* mounts below are part of the tree (sync
				 * scans them, DIR_SCAN_XDEV): walked too */
				if (lstat(sub, &sb) == -1 ||
				    !S_ISDIR(sb.st_mode)) {
					free(sub);
					continue;
				}
				free(sub);
				if (n == cap)
					stack = xreallocarray(stack, cap *= 2,
					    sizeof(*stack));
				stack[n++] = changes_join(rel, de->d_name);
			}
			closedir(d);
		}
		free(path);
		free(rel);
	}
	free(stack);
}

static int
open_backend(struct changes *c, const struct changes_backend *be,
    struct as_err *err)
{
	c->be = be;
	c->fd = -1;
	c->priv = NULL;
	c->nwatch = 0;
	if (be->open(c, err) == -1) {
		c->be = NULL;
		c->fd = -1;
		return -1;
	}
	return 0;
}

struct changes *
changes_open_kind(const char *root, enum changes_kind want,
    struct as_err *err)
{
	struct as_err ferr;
	struct changes *c;
	struct stat sb;

	if (lstat(root, &sb) == -1) {
		as_err_sys(err, errno, "watch '%s'", root);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->root = xstrdup(root);
	c->want = want;
	c->fd = -1;
	c->full = 1;	/* what happened before we watched is unknown */
	c->mounts = mounts_hash(root);
	as_err_clear(&ferr);
	if (want != CHANGES_INOTIFY) {
		if (open_backend(c, &changes_fanotify, &ferr) == 0)
			return c;
		if (want == CHANGES_FANOTIFY) {
			if (err != NULL)
				*err = ferr;
			changes_close(c);
			return NULL;
		}
		snprintf(c->why, sizeof(c->why), "%s", ferr.msg);
	}
	if (open_backend(c, &changes_inotify, err) == -1) {
		changes_close(c);
		return NULL;
	}
	return c;
}

struct changes *
changes_open(const char *root, struct as_err *err)
{
	return changes_open_kind(root, CHANGES_AUTO, err);
}

void
changes_close(struct changes *c)
{
	if (c == NULL)
		return;
	if (c->be != NULL)
		c->be->close(c);
	changes_free_list(c->dirs, c->ndirs);
	free(c->root);
	free(c);
}

enum changes_kind
changes_kind(const struct changes *c)
{
	return c->be != NULL ? c->be->kind : CHANGES_AUTO;
}

const char *
changes_why(const struct changes *c)
{
	return c->why;
}

size_t
changes_watches(const struct changes *c)
{
	return c->nwatch;
}

void
changes_get_stats(const struct changes *c, struct changes_stats *st)
{
	*st = c->st;
}

int
changes_fd(const struct changes *c)
{
	return c->fd;
}

void
changes_force_full(struct changes *c)
{
	c->full = 1;
}

int
changes_mounts_changed(struct changes *c)
{
	uint64_t h = mounts_hash(c->root);

	if (h == c->mounts)
		return 0;
	c->mounts = h;
	c->full = 1;
	c->rewatch = 1;		/* a new mount needs watches or a mark */
	return 1;
}

int
changes_pending(const struct changes *c)
{
	return c->full || c->ndirs > 0;
}

int
changes_read(struct changes *c, struct as_err *err)
{
	if (c->be != NULL && c->be->read(c, err) == -1) {
		c->full = 1;
		return -1;
	}
	return changes_pending(c);
}

/*
 * Bring the watches up to date.  A fanotify journal that cannot mark
 * the tree whole any more (a file system without usable handles was
 * mounted below) becomes an inotify one when either was good enough;
 * a journal left without any (both failed) tries again at each take,
 * and reports everything meanwhile.
 */
static void
rewatch(struct changes *c)
{
	struct as_err e;

	as_err_clear(&e);
	c->partial = 0;
	if (c->be != NULL) {
		if (c->be->rewatch(c, &e) == 0)
			return;
		if (c->be->kind != CHANGES_FANOTIFY ||
		    c->want != CHANGES_AUTO) {
			c->partial = c->full = 1;
			return;
		}
		c->be->close(c);
		c->be = NULL;
		c->fd = -1;
		snprintf(c->why, sizeof(c->why), "%s", e.msg);
		if (open_backend(c, &changes_inotify, NULL) == 0)
			return;
	} else {
		if (c->want != CHANGES_INOTIFY &&
		    open_backend(c, &changes_fanotify, &e) == 0)
			return;
		if (c->want != CHANGES_FANOTIFY &&
		    open_backend(c, &changes_inotify, NULL) == 0)
			return;
	}
	c->partial = c->full = 1;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
changes_take(struct changes *c, int *full, char ***dirs, size_t *n)
{
	size_t i, k;

	*full = c->full || c->partial;
	*dirs = NULL;
	*n = 0;
	if (c->rewatch || c->partial) {
		/* a directory without a watch is never heard: try again */
		rewatch(c);
		c->rewatch = 0;
	}
	if (!*full && c->ndirs > 0) {
		qsort(c->dirs, c->ndirs, sizeof(*c->dirs), str_cmp);
		for (i = 1, k = 1; i < c->ndirs; i++) {
			if (strcmp(c->dirs[i], c->dirs[k - 1]) == 0)
				free(c->dirs[i]);
			else
				c->dirs[k++] = c->dirs[i];
		}
		c->ndirs = k;
		if (k > CHANGES_MAX)
			*full = 1;
		else {
			*dirs = c->dirs;
			*n = c->ndirs;
			c->dirs = NULL;
			c->ndirs = c->capdirs = 0;
		}
	}
	changes_free_list(c->dirs, c->ndirs);
	c->dirs = NULL;
	c->ndirs = c->capdirs = 0;
	c->full = c->partial;	/* still unwatched directories: full again */
	memset(&c->st, 0, sizeof(c->st));
}

void
changes_free_list(char **dirs, size_t n)
{
	size_t i;

	for (i = 0; i < n && dirs != NULL; i++)
		free(dirs[i]);
	free(dirs);
}
