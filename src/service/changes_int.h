/*
 * changes_int.h - what the change journal (changes.c) shares with its
 * two ways of hearing changes (changes_fanotify.c, changes_inotify.c).
 * Private to those three files.
 */
#ifndef AS_CHANGES_INT_H
#define AS_CHANGES_INT_H

#include <stdint.h>

#include "service/changes.h"

struct changes;

/*
 * A way of hearing changes.  open sets c->fd and c->priv (and
 * c->nwatch), and on failure leaves nothing open; read drains c->fd
 * into changes_mark() (never blocks; -1 with err when the descriptor
 * broke); rewatch brings the watches up to date with the tree (after a
 * mount change, a moved root, a watch that could not be added): 0, or
 * -1 with err when the tree cannot be watched whole this way.
 */
struct changes_backend {
	const char	*name;
	enum changes_kind kind;
	int		(*open)(struct changes *c, struct as_err *err);
	void		(*close)(struct changes *c);
	int		(*read)(struct changes *c, struct as_err *err);
	int		(*rewatch)(struct changes *c, struct as_err *err);
};

extern const struct changes_backend changes_fanotify;
extern const struct changes_backend changes_inotify;

struct changes {
	const struct changes_backend *be;
	enum changes_kind want;		/* what was asked for */
	char		*root;
	int		 fd;		/* the backend's, or -1 */
	void		*priv;		/* the backend's state */
	size_t		 nwatch;	/* watches or marks */
	struct changes_stats st;	/* since the last take */
	char		 why[256];	/* why not fanotify, or "" */
	char		**dirs;		/* changed directories, unsorted,
					 * repeats */
	size_t		 ndirs;
	size_t		 capdirs;
	int		 full;		/* scan everything */
	int		 rewatch;	/* watches are stale: redo at take */
	int		 partial;	/* a part of the tree is not watched:
					 * every take is full until a rewatch
					 * watches it all */
	uint64_t	 mounts;	/* hash of the mounts at and below root */
};

/* rel (relative to the root, "" the root) changed. */
void	changes_mark(struct changes *c, const char *rel);

/*
 * Call fn for rel0 and every directory below it (mounts below
 * included, the root's ".autosync" left out), parents first; fn
 * returns 0 to go into the directory, -1 to leave it out.
 */
void	changes_walk(struct changes *c, const char *rel0,
	    int (*fn)(struct changes *c, const char *rel, const char *path,
	    void *arg), void *arg);

/* "a/b" from "a" and "b" ("" and "b" give "b"); allocated. */
char	*changes_join(const char *a, const char *b);

#endif
