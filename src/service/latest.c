/*
 * latest.c - NAME-latest on ZFS and btrfs (see latest.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/xmalloc.h"
#include "driver/btrfs.h"
#include "driver/zfs.h"
#include "repl/endpoint.h"
#include "service/latest.h"
#include "service/runner.h"
#include "base/banned.h"

char *
latest_zfs_prop(const char *name)
{
	char *p = xasprintf(LATEST_ZFS_PREFIX "%s" RUNNER_LATEST_SUFFIX,
	    name), *s;

	for (s = p; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	return p;
}

/* The link in a btrfs subvolume's snapshot directory. */
static char *
btrfs_link(const char *subvol, const char *name, int tmp)
{
	char *dir = btrfs_snapdir(subvol), *p;

	p = xasprintf("%s/%s%s%s", dir, tmp ? "." : "", name,
	    tmp ? RUNNER_LATEST_SUFFIX ".tmp" : RUNNER_LATEST_SUFFIX);
	free(dir);
	return p;
}

static int
side_set(const struct endpoint *ep, const char *name, const char *snap,
    struct as_err *err)
{
	char *prop, *lnk, *tmp;
	int rc;

	if (ep->kind == EP_ZFS) {
		prop = latest_zfs_prop(name);
		rc = zfs_set(ep->path, prop, snap, err);
		free(prop);
		return rc == -1 ? -1 : 1;
	}
	if (ep->kind != EP_BTRFS)
		return 0;
	lnk = btrfs_link(ep->path, name, 0);
	tmp = btrfs_link(ep->path, name, 1);
	(void)unlink(tmp);
	rc = 1;
	if (symlink(snap, tmp) == -1 || rename(tmp, lnk) == -1) {
		rc = as_err_sys(err, errno, "name '%s'", lnk);
		(void)unlink(tmp);
	}
	free(lnk);
	free(tmp);
	return rc;
}

static int
side_drop(const struct endpoint *ep, const char *name, struct as_err *err)
{
	const char *argv[5];
	char *prop, *lnk;
	int rc = 0;

	if (ep->kind == EP_ZFS) {
		prop = latest_zfs_prop(name);
		argv[0] = "zfs";
		argv[1] = "inherit";
		argv[2] = prop;
		argv[3] = ep->path;
		argv[4] = NULL;
		if (zfs_run("inherit", argv, -1, NULL, err) == -1 &&
		    err->code != AS_E_NOTFOUND)
			rc = -1;
		free(prop);
	} else if (ep->kind == EP_BTRFS) {
		lnk = btrfs_link(ep->path, name, 0);
		if (unlink(lnk) == -1 && errno != ENOENT)
			rc = as_err_sys(err, errno, "remove '%s'", lnk);
		free(lnk);
	}
	if (rc == 0)
		as_err_clear(err);
	return rc;
}

/* Parse both; a side that does not parse is left alone. */
static void
parse2(const char *src, const char *dst, struct endpoint *se,
    struct endpoint *de)
{
	memset(se, 0, sizeof(*se));
	memset(de, 0, sizeof(*de));
	if (endpoint_parse(se, src, NULL) == -1)
		memset(se, 0, sizeof(*se));
	if (endpoint_parse(de, dst, NULL) == -1)
		memset(de, 0, sizeof(*de));
}

int
latest_native_set(const char *name, const char *src, const char *dst,
    const char *snap, int *sides, struct as_err *err)
{
	struct endpoint se, de;
	int a, b = 0;

	*sides = 0;
	parse2(src, dst, &se, &de);
	if ((a = side_set(&se, name, snap, err)) != -1)
		b = side_set(&de, name, snap, err);
	if (a > 0)
		(*sides)++;
	if (b > 0)
		(*sides)++;
	endpoint_release(&se);
	endpoint_release(&de);
	return a == -1 || b == -1 ? -1 : 0;
}

int
latest_native_drop(const char *name, const char *src, const char *dst,
    struct as_err *err)
{
	struct endpoint se, de;
	int rc;

	parse2(src, dst, &se, &de);
	rc = side_drop(&se, name, err);
	if (rc == 0)
		rc = side_drop(&de, name, err);
	endpoint_release(&se);
	endpoint_release(&de);
	return rc;
}
