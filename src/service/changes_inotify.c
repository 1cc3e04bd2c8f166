/*
 * changes_inotify.c - the change journal heard through inotify: one
 * watch per directory of the tree (changes.h).
 */
#include <sys/inotify.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/xmalloc.h"
#include "format/path.h"
#include "service/changes_int.h"
#include "base/banned.h"

#define WATCH_MASK	(IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | \
	IN_DELETE | IN_DELETE_SELF | IN_MOVED_FROM | IN_MOVED_TO | \
	IN_MOVE_SELF | IN_DONT_FOLLOW | IN_ONLYDIR | IN_EXCL_UNLINK)

struct ino {
	char	**rel;		/* by watch descriptor: the directory, or NULL */
	unsigned *gen;		/* by watch descriptor: walk that saw it */
	size_t	  nrel;
	unsigned  curgen;
	int	  mark_all;	/* the walk marks what it watches */
};

/* changes_walk's fn: watch one directory; -1 (do not go in) if not. */
static int
watch_one(struct changes *c, const char *rel, const char *path, void *arg)
{
	struct ino *w = c->priv;
	int wd;

	(void)arg;
	wd = inotify_add_watch(c->fd, path, WATCH_MASK);
	if (wd < 0) {
		/* ENOSPC: max_user_watches; ENOENT: gone again */
		if (errno != ENOENT)
			c->full = c->partial = 1;
		return -1;
	}
	if ((size_t)wd >= w->nrel) {
		w->rel = xreallocarray(w->rel, (size_t)wd + 64,
		    sizeof(*w->rel));
		w->gen = xreallocarray(w->gen, (size_t)wd + 64,
		    sizeof(*w->gen));
		memset(w->rel + w->nrel, 0, ((size_t)wd + 64 - w->nrel) *
		    sizeof(*w->rel));
		memset(w->gen + w->nrel, 0, ((size_t)wd + 64 - w->nrel) *
		    sizeof(*w->gen));
		w->nrel = (size_t)wd + 64;
	}
	/* a watched directory that moved: the same wd, a new name */
	if (w->rel[wd] == NULL)
		c->nwatch++;
	free(w->rel[wd]);
	w->rel[wd] = xstrdup(rel);
	w->gen[wd] = w->curgen;
	if (w->mark_all)
		changes_mark(c, rel);
	return 0;
}

/*
 * Watch rel (relative to the root) and every directory below it; with
 * mark_all, mark them all changed (a new directory: what was made in it
 * before its watch existed sent no event).
 */
static void
add_tree(struct changes *c, const char *rel, int mark_all)
{
	struct ino *w = c->priv;

	w->mark_all = mark_all;
	changes_walk(c, rel, watch_one, NULL);
	w->mark_all = 0;
}

static void
drop_watch(struct changes *c, size_t wd)
{
	struct ino *w = c->priv;

	free(w->rel[wd]);
	w->rel[wd] = NULL;
	c->nwatch--;
}

/*
 * Walk the tree again and drop the watches it did not meet (directories
 * moved out of the tree).  The watches of the rest stay in place all
 * along, so no event is lost meanwhile.
 */
static int
ino_rewatch(struct changes *c, struct as_err *err)
{
	struct ino *w = c->priv;
	size_t i;

	w->curgen++;
	add_tree(c, "", 0);
	for (i = 0; i < w->nrel; i++) {
		if (w->rel[i] == NULL || w->gen[i] == w->curgen)
			continue;
		(void)inotify_rm_watch(c->fd, (int)i);
		drop_watch(c, i);
	}
	if (c->partial)
		return as_err_set(err, AS_E_LIMIT, 0, "watch '%s': not every "
		    "directory could be watched (max_user_watches?)", c->root);
	return 0;
}

static void
ino_close(struct changes *c)
{
	struct ino *w = c->priv;
	size_t i;

	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (w != NULL) {
		for (i = 0; i < w->nrel; i++)
			free(w->rel[i]);
		free(w->rel);
		free(w->gen);
		free(w);
	}
	c->priv = NULL;
	c->nwatch = 0;
}

static int
ino_open(struct changes *c, struct as_err *err)
{
	c->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (c->fd == -1)
		return as_err_sys(err, errno, "inotify");
	c->priv = xcalloc(1, sizeof(struct ino));
	add_tree(c, "", 0);
	return 0;
}

static void
event(struct changes *c, const struct inotify_event *ev)
{
	struct ino *w = c->priv;
	const char *dir;
	char *p;

	if (ev->mask & IN_Q_OVERFLOW) {
		c->full = 1;
		return;
	}
	if (ev->wd < 0 || (size_t)ev->wd >= w->nrel ||
	    (dir = w->rel[ev->wd]) == NULL)
		return;
	if (ev->mask & IN_IGNORED) {
		drop_watch(c, (size_t)ev->wd);
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
		changes_mark(c, dir);	/* the directory's own attributes */
		return;
	}
	if (dir[0] == '\0' && strcmp(ev->name, AS_PRIVATE_DIR) == 0)
		return;
	changes_mark(c, dir);
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
			p = changes_join(dir, ev->name);
			add_tree(c, p, 1);
			free(p);
		}
	}
}

static int
ino_read(struct changes *c, struct as_err *err)
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
		if (n <= 0)
			return as_err_sys(err, n == 0 ? EIO : errno,
			    "read the change journal of '%s'", c->root);
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			c->st.events++;
			event(c, ev);
		}
	}
	return 0;
}

const struct changes_backend changes_inotify = {
	.name		= "inotify",
	.kind		= CHANGES_INOTIFY,
	.open		= ino_open,
	.close		= ino_close,
	.read		= ino_read,
	.rewatch	= ino_rewatch,
};
