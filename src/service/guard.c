/*
 * guard.c - endpoint checks at creation (see guard.h).
 */
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "repl/endpoint.h"
#include "repl/snapstore.h"
#include "service/guard.h"
#include "base/banned.h"

static const char *const system_dirs[] = {
	"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32",
	"/lib64", "/libx32", "/proc", "/root", "/run", "/sbin", "/srv",
	"/sys", "/tmp", "/usr", "/var", "/usr/bin", "/usr/lib", "/usr/sbin",
	"/usr/local", "/var/lib",
};

/* a equal to b, or one of them inside the other */
static int
overlaps(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;

	if (strncmp(a, b, n) != 0)
		return 0;
	if (la == lb)
		return 1;
	/* the shorter is a parent: the next byte of the longer is '/' */
	return (la > lb ? a[n] : b[n]) == '/' || n == 1;
}

static int
is_local(const struct endpoint *e)
{
	return e->kind == EP_LOCAL || e->kind == EP_VOL ||
	    e->kind == EP_BTRFS;
}

/* A comparable form: the absolute path, or host:port:path for remotes. */
static char *
key_of(const struct endpoint *e, struct as_err *err)
{
	if (is_local(e))
		return snapstore_abspath(e->path, err);
	if (endpoint_is_remote(e))
		return xasprintf("%d:%s:%s:%s", (int)e->kind,
		    e->host != NULL ? e->host : "", e->port != NULL ? e->port :
		    "", e->path);
	return xasprintf("%d:%s", (int)e->kind, e->path);
}

static int
check_dest_dir(const char *raw, const char *abs, struct as_err *err)
{
	const char *home = getenv("HOME");
	size_t i;

	for (i = 0; i < sizeof(system_dirs) / sizeof(system_dirs[0]); i++)
		if (strcmp(raw, system_dirs[i]) == 0 ||
		    strcmp(abs, system_dirs[i]) == 0)
			return as_err_set(err, AS_E_USAGE, 0, "destination "
			    "'%s' is a system directory: a run makes it equal "
			    "to the source; give a dedicated directory such as "
			    "'%s/autosync'", raw, strcmp(abs, "/") == 0 ? "" :
			    abs);
	if (home != NULL && home[0] == '/' && (strcmp(raw, home) == 0 ||
	    strcmp(abs, home) == 0))
		return as_err_set(err, AS_E_USAGE, 0, "destination '%s' is "
		    "$HOME: a run makes it equal to the source; give a "
		    "dedicated directory", raw);
	return 0;
}

int
guard_endpoints(const char *name, const char *src, const char *dst,
    const struct svc *others, size_t nothers, struct as_err *err)
{
	struct endpoint se, de, oe;
	char *sk = NULL, *dk = NULL, *ok = NULL;
	size_t i;
	int rc = -1;

	memset(&se, 0, sizeof(se));
	memset(&de, 0, sizeof(de));
	memset(&oe, 0, sizeof(oe));
	if (endpoint_parse(&se, src, err) == -1 ||
	    endpoint_parse(&de, dst, err) == -1)
		goto out;
	if (is_local(&se) && se.path[0] != '/') {
		as_err_set(err, AS_E_USAGE, 0, "source '%s' is not an absolute "
		    "path (the daemon does not run in this directory)", src);
		goto out;
	}
	if (is_local(&de) && de.path[0] != '/') {
		as_err_set(err, AS_E_USAGE, 0, "destination '%s' is not an "
		    "absolute path (the daemon does not run in this "
		    "directory)", dst);
		goto out;
	}
	if ((sk = key_of(&se, err)) == NULL || (dk = key_of(&de, err)) == NULL)
		goto out;
	if (de.kind == EP_LOCAL && check_dest_dir(de.path, dk, err) == -1)
		goto out;
	if (is_local(&se) && is_local(&de) && overlaps(sk, dk)) {
		as_err_set(err, AS_E_USAGE, 0, "destination '%s' and source "
		    "'%s' overlap: one would replicate into the other", dst,
		    src);
		goto out;
	}
	for (i = 0; i < nothers; i++) {
		if (strcmp(others[i].name, name) == 0)
			continue;
		endpoint_release(&oe);
		memset(&oe, 0, sizeof(oe));
		free(ok);
		ok = NULL;
		if (endpoint_parse(&oe, others[i].dest, NULL) == -1 ||
		    (ok = key_of(&oe, NULL)) == NULL)
			continue;
		if (is_local(&oe) != is_local(&de) || !overlaps(ok, dk))
			continue;
		as_err_set(err, AS_E_USAGE, 0, "destination '%s' overlaps "
		    "the destination '%s' of service '%s': their runs would "
		    "undo each other", dst, others[i].dest, others[i].name);
		goto out;
	}
	rc = 0;
out:
	free(sk);
	free(dk);
	free(ok);
	endpoint_release(&se);
	endpoint_release(&de);
	endpoint_release(&oe);
	return rc;
}
