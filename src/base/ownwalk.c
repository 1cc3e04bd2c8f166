/*
 * ownwalk.c - resolve a path as realpath does, one component at a time,
 * checking the owner of every symbolic link on the way.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/ownwalk.h"
#include "base/banned.h"

#define OWNWALK_MAXLINKS	40	/* as the kernel's ELOOP */

/* Drop the last component of the resolved prefix r (never past "/"). */
static void
strip_last(char *r)
{
	char *s = strrchr(r, '/');

	if (s == NULL || s == r)
		r[1] = '\0';
	else
		*s = '\0';
}

int
ownwalk_check(const char *path, const char *what, struct as_err *err)
{
	char resolved[PATH_MAX], rest[2 * PATH_MAX], target[PATH_MAX];
	char cand[PATH_MAX];
	struct stat st;
	uid_t me = geteuid();
	int links = 0, n;
	char *comp, *next;

	if (path[0] == '/')
		snprintf(resolved, sizeof(resolved), "/");
	else if (getcwd(resolved, sizeof(resolved)) == NULL)
		return as_err_sys(err, errno, "%s '%s': working directory",
		    what, path);
	if (strlen(path) >= sizeof(rest))
		return as_err_set(err, AS_E_LIMIT, ENAMETOOLONG,
		    "%s '%s': path too long", what, path);
	snprintf(rest, sizeof(rest), "%s", path);

	for (comp = rest; comp != NULL; comp = next) {
		while (*comp == '/')
			comp++;
		if (*comp == '\0')
			break;
		if ((next = strchr(comp, '/')) != NULL)
			*next++ = '\0';
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			strip_last(resolved);
			continue;
		}
		n = snprintf(cand, sizeof(cand), "%s%s%s", resolved,
		    strcmp(resolved, "/") == 0 ? "" : "/", comp);
		if (n < 0 || (size_t)n >= sizeof(cand))
			return as_err_set(err, AS_E_LIMIT, ENAMETOOLONG,
			    "%s '%s': path too long", what, path);
		if (lstat(cand, &st) == -1) {
			if (errno == ENOENT)
				return 0;	/* made by the receiver */
			return as_err_sys(err, errno, "%s '%s': lstat '%s'",
			    what, path, cand);
		}
		if (!S_ISLNK(st.st_mode)) {
			memcpy(resolved, cand, (size_t)n + 1);
			continue;
		}
		if (st.st_uid != 0 && st.st_uid != me)
			return as_err_set(err, AS_E_UNSAFE_PATH, 0,
			    "%s '%s' goes through '%s', a symbolic link owned "
			    "by uid %u (neither root nor this user): not "
			    "following it; name the real directory instead",
			    what, path, cand, (unsigned)st.st_uid);
		if (++links > OWNWALK_MAXLINKS)
			return as_err_set(err, AS_E_UNSAFE_PATH, ELOOP,
			    "%s '%s': too many symbolic links", what, path);
		n = (int)readlink(cand, target, sizeof(target) - 1);
		if (n == -1)
			return as_err_sys(err, errno, "%s '%s': readlink '%s'",
			    what, path, cand);
		target[n] = '\0';
		/* the target's components come before what is left */
		if (next != NULL && strlen(target) + 1 + strlen(next) + 1 >
		    sizeof(rest))
			return as_err_set(err, AS_E_LIMIT, ENAMETOOLONG,
			    "%s '%s': path too long", what, path);
		if (next != NULL) {
			memmove(rest + strlen(target) + 1, next,
			    strlen(next) + 1);
			rest[strlen(target)] = '/';
			memcpy(rest, target, strlen(target));
		} else
			snprintf(rest, sizeof(rest), "%s", target);
		next = rest;
		if (target[0] == '/')
			snprintf(resolved, sizeof(resolved), "/");
	}
	return 0;
}
