/*
 * changes.c - the change journal of a continuous service (changes.h).
 */
#include <sys/inotify.h>
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
#include "base/banned.h"

#define WATCH_MASK	(IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | \
	IN_DELETE | IN_DELETE_SELF | IN_MOVED_FROM | IN_MOVED_TO | \
	IN_MOVE_SELF | IN_DONT_FOLLOW | IN_ONLYDIR | IN_EXCL_UNLINK)

struct changes {
	char	 *root;
	int	  fd;		/* inotify */
	char	**rel;		/* by watch descriptor: the directory, or NULL */
	unsigned *gen;		/* by watch descriptor: walk that saw it */
	size_t	  nrel;
	unsigned  curgen;
	char	**dirs;		/* changed directories, unsorted, repeats */
	size_t	  ndirs;
	size_t	  capdirs;
	int	  full;		/* scan everything */
	int	  rewatch;	/* watches are stale: walk again at take */
	int	  partial;	/* a watch could not be added: every take
				 * is full until a walk adds them all */
	uint64_t  mounts;	/* hash of the mounts at and below root */
};

/*
 * The mounts at and below the root, as a hash of their lines' mount IDs
 * and mount points in /proc/self/mountinfo (in its order): a mount or
 * an unmount there sends no inotify event, but changes this.
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

static void
mark(struct changes *c, const char *rel)
{
	if (c->full)
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

static char *
join(const char *a, const char *b)
{
	return a[0] == '\0' ? xstrdup(b) : xasprintf("%s/%s", a, b);
}

/*
 * Watch rel (relative to the root) and every directory below it; with
 * mark_all, mark them all changed (a new directory: what was made in it
 * before its watch existed sent no event).
 */
static void
add_tree(struct changes *c, const char *rel0, int mark_all)
{
	char **stack = NULL, *rel, *path, *sub;
	size_t n = 0, cap = 0;
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int wd;

	stack = xreallocarray(stack, cap = 16, sizeof(*stack));
	stack[n++] = xstrdup(rel0);
	while (n > 0) {
		rel = stack[--n];
		path = rel[0] == '\0' ? xstrdup(c->root) :
		    xasprintf("%s/%s", c->root, rel);
		wd = inotify_add_watch(c->fd, path, WATCH_MASK);
		if (wd < 0) {
			/* ENOSPC: max_user_watches; ENOENT: gone again */
			if (errno != ENOENT)
				c->full = c->partial = 1;
			free(path);
			free(rel);
			continue;
		}
		if ((size_t)wd >= c->nrel) {
			c->rel = xreallocarray(c->rel, (size_t)wd + 64,
			    sizeof(*c->rel));
			c->gen = xreallocarray(c->gen, (size_t)wd + 64,
			    sizeof(*c->gen));
			memset(c->rel + c->nrel, 0, ((size_t)wd + 64 -
			    c->nrel) * sizeof(*c->rel));
			memset(c->gen + c->nrel, 0, ((size_t)wd + 64 -
			    c->nrel) * sizeof(*c->gen));
			c->nrel = (size_t)wd + 64;
		}
		/* a watched directory that moved: the same wd, a new name */
		free(c->rel[wd]);
		c->rel[wd] = xstrdup(rel);
		c->gen[wd] = c->curgen;
		if (mark_all)
			mark(c, rel);
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
				 * scans them, DIR_SCAN_XDEV): watched too */
				if (lstat(sub, &sb) == -1 ||
				    !S_ISDIR(sb.st_mode)) {
					free(sub);
					continue;
				}
				free(sub);
				if (n == cap)
					stack = xreallocarray(stack, cap *= 2,
					    sizeof(*stack));
				stack[n++] = join(rel, de->d_name);
			}
			closedir(d);
		}
		free(path);
		free(rel);
	}
	free(stack);
}

/*
 * Walk the tree again and drop the watches it did not meet (directories
 * moved out of the tree).  The watches of the rest stay in place all
 * along, so no event is lost meanwhile.
 */
static void
rewatch(struct changes *c)
{
	size_t i;

	c->curgen++;
	add_tree(c, "", 0);
	for (i = 0; i < c->nrel; i++) {
		if (c->rel[i] == NULL || c->gen[i] == c->curgen)
			continue;
		(void)inotify_rm_watch(c->fd, (int)i);
		free(c->rel[i]);
		c->rel[i] = NULL;
	}
}

struct changes *
changes_open(const char *root, struct as_err *err)
{
	struct changes *c;
	struct stat sb;

	if (lstat(root, &sb) == -1) {
		as_err_sys(err, errno, "watch '%s'", root);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->root = xstrdup(root);
	c->full = 1;	/* what happened before we watched is unknown */
	c->mounts = mounts_hash(root);
	c->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (c->fd == -1) {
		as_err_sys(err, errno, "inotify");
		changes_close(c);
		return NULL;
	}
	add_tree(c, "", 0);
	return c;
}

void
changes_close(struct changes *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	for (i = 0; i < c->nrel; i++)
		free(c->rel[i]);
	free(c->rel);
	free(c->gen);
	changes_free_list(c->dirs, c->ndirs);
	free(c->root);
	free(c);
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
	c->rewatch = 1;		/* a new mount's directories need watches */
	return 1;
}

int
changes_pending(const struct changes *c)
{
	return c->full || c->ndirs > 0;
}

static void
event(struct changes *c, const struct inotify_event *ev)
{
	const char *dir;
	char *p;

	if (ev->mask & IN_Q_OVERFLOW) {
		c->full = 1;
		return;
	}
	if (ev->wd < 0 || (size_t)ev->wd >= c->nrel ||
	    (dir = c->rel[ev->wd]) == NULL)
		return;
	if (ev->mask & IN_IGNORED) {
		free(c->rel[ev->wd]);
		c->rel[ev->wd] = NULL;
		return;
	}
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		/*
		 * The root went or moved: the path names another tree now.
		 * Any other directory: its parent heard it (IN_DELETE,
		 * IN_MOVED_FROM) and is marked.
		 */
		if (dir[0] == '\0') {
			c->full = 1;
			c->rewatch = 1;
		}
		return;
	}
	if (ev->len == 0 || ev->name[0] == '\0') {
		mark(c, dir);	/* the directory's own attributes */
		return;
	}
	if (dir[0] == '\0' && strcmp(ev->name, AS_PRIVATE_DIR) == 0)
		return;
	mark(c, dir);
	if (ev->mask & IN_ISDIR) {
		if (ev->mask & IN_MOVED_FROM)
			/* moved out of the tree: its watches go at take */
			c->rewatch = 1;
		else if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
			/*
			 * New here, or moved here (from the tree: its
			 * watches get their new names; from elsewhere: it is
			 * watched from now on).  Everything below is marked:
			 * the scan meets it as a directory it has not seen
			 * at this path and lists it whole anyway.
			 */
			p = join(dir, ev->name);
			add_tree(c, p, 1);
			free(p);
		}
	}
}

int
changes_read(struct changes *c, struct as_err *err)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct
	    inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	char *p;

	for (;;) {
		n = read(c->fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0) {
			c->full = 1;
			return as_err_sys(err, n == 0 ? EIO : errno,
			    "read the change journal of '%s'", c->root);
		}
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			event(c, ev);
		}
	}
	return changes_pending(c);
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
		c->partial = 0;
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
}

void
changes_free_list(char **dirs, size_t n)
{
	size_t i;

	for (i = 0; i < n && dirs != NULL; i++)
		free(dirs[i]);
	free(dirs);
}
