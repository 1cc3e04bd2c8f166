/*
 * mountdst.c - mount-destination (see mountdst.h).
 */
#include <sys/mount.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "base/xmalloc.h"
#include "driver/btrfs.h"
#include "driver/dir.h"
#include "driver/zfs.h"
#include "repl/endpoint.h"
#include "repl/snapstore.h"
#include "service/mountdst.h"
#include "base/banned.h"

static char *
record_path(const char *state_dir, const char *name)
{
	return xasprintf("%s/run/%s.mnt", state_dir, name);
}

/* Undo mountinfo's octal escapes (\040 for a space...) in place. */
static void
unescape(char *s)
{
	char *o = s;

	while (*s != '\0') {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
			    (s[3] - '0'));
			s += 4;
		} else
			*o++ = *s++;
	}
	*o = '\0';
}

/* 1 when path is a mount point (an exact mountinfo entry), 0 if not. */
static int
is_mount_point(const char *path)
{
	FILE *f;
	char *line = NULL, *p, *mp;
	size_t cap = 0;
	int i, found = 0;

	if ((f = fopen("/proc/self/mountinfo", "re")) == NULL)
		return 0;
	while (!found && getline(&line, &cap, f) != -1) {
		/* id parent major:minor root MOUNTPOINT ... */
		p = line;
		for (i = 0; i < 4 && p != NULL; i++)
			if ((p = strchr(p, ' ')) != NULL)
				p++;
		if (p == NULL)
			continue;
		mp = p;
		if ((p = strchr(mp, ' ')) != NULL)
			*p = '\0';
		unescape(mp);
		found = strcmp(mp, path) == 0;
	}
	free(line);
	fclose(f);
	return found;
}

static int
mkdir_p(const char *path, mode_t mode, struct as_err *err)
{
	char *p = xstrdup(path), *s;

	for (s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST) {
			as_err_sys(err, errno, "create '%s'", p);
			free(p);
			return -1;
		}
		*s = '/';
	}
	free(p);
	if (mkdir(path, mode) == -1 && errno != EEXIST)
		return as_err_sys(err, errno, "create '%s'", path);
	return 0;
}

/*
 * The record is the mount point, and for a ZFS replica a second line
 * "zfs:DATASET": it is unmounted through zfs (its children too).
 */
static int
read_record_ds(const char *state_dir, const char *name, char **out,
    char **ds, struct as_err *err);

/* The recorded path of name's mount, or NULL (and 0) when none. */
static int
read_record(const char *state_dir, const char *name, char **out,
    struct as_err *err)
{
	char *ds = NULL;
	int rc = read_record_ds(state_dir, name, out, &ds, err);

	free(ds);
	return rc;
}

static int
read_record_ds(const char *state_dir, const char *name, char **out,
    char **ds, struct as_err *err)
{
	char buf[PATH_MAX + ZFS_NAME_MAX + 8], *rp = record_path(state_dir,
	    name), *p;
	ssize_t n;
	int fd;

	*out = NULL;
	*ds = NULL;
	fd = open(rp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		free(rp);
		return errno == ENOENT ? 0 : as_err_sys(err, errno,
		    "open the mount record of '%s'", name);
	}
	free(rp);
	n = io_read_full(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if ((p = strchr(buf, '\n')) != NULL) {
		*p++ = '\0';
		if (strncmp(p, "zfs:", 4) == 0 && p[4] != '\0')
			*ds = xstrdup(p + 4);
	}
	*out = xstrdup(buf);
	return 1;
}

int
mountdst_active(const char *state_dir, const char *name, char **where,
    struct as_err *err)
{
	char *p = NULL;
	int rc;

	*where = NULL;
	if ((rc = read_record(state_dir, name, &p, err)) <= 0)
		return rc;
	if (!is_mount_point(p)) {
		free(p);
		return 0;
	}
	*where = p;
	return 1;
}

/* A ZFS replica must exist and hold a snapshot: NOTFOUND otherwise. */
static int
zfs_held(const char *ds, struct as_err *err)
{
	struct zfs_tree t;
	int ok;

	if (zfs_list(ds, 0, &t, err) == -1)
		return -1;
	ok = t.n > 0 && t.v[0].nsnaps > 0;
	zfs_tree_release(&t);
	if (!ok)
		return as_err_set(err, AS_E_NOTFOUND, 0, "'zfs:%s' holds no "
		    "snapshot yet: nothing to mount", ds);
	return 0;
}

int
mountdst_mount(const char *state_dir, const char *name, const char *dest,
    const char *path, char **where, struct as_err *err)
{
	struct endpoint de;
	struct cat_header h;
	char *d_abs = NULL, *mp = NULL, *rp = NULL, *old = NULL;
	int held, rc = -1, fd;

	*where = NULL;
	memset(&de, 0, sizeof(de));
	if (endpoint_parse(&de, dest, err) == -1)
		return -1;
	if (endpoint_is_remote(&de)) {
		as_err_set(err, AS_E_USAGE, 0, "'%s' is remote: mount it on "
		    "its own host", dest);
		goto out;
	}
	if (de.kind != EP_LOCAL && de.kind != EP_ZFS && de.kind != EP_BTRFS) {
		as_err_set(err, AS_E_UNSUPPORTED, 0, "'%s': mount-destination "
		    "works on directory, zfs: and btrfs: destinations", dest);
		goto out;
	}
	if (mountdst_active(state_dir, name, &old, err) != 0) {
		if (old != NULL)
			as_err_set(err, AS_E_CONFLICT, 0, "the destination of "
			    "'%s' is already mounted on '%s'", name, old);
		goto out;
	}
	if (de.kind == EP_ZFS) {
		if (zfs_held(de.path, err) == -1)
			goto out;
	} else if (de.kind == EP_BTRFS) {
		/* the published view: a read-only snapshot already */
		d_abs = xstrdup(de.path);
		if (!btrfs_is_subvol(d_abs)) {
			as_err_set(err, AS_E_NOTFOUND, 0, "'%s' holds no "
			    "snapshot yet: nothing to mount", d_abs);
			goto out;
		}
	} else {
		if ((d_abs = snapstore_abspath(de.path, err)) == NULL)
			goto out;
		memset(&h, 0, sizeof(h));
		if ((held = dir_held(d_abs, &h, err)) == -1)
			goto out;
		if (held == 0) {
			as_err_set(err, AS_E_NOTFOUND, 0, "'%s' holds no "
			    "snapshot yet: nothing to mount", d_abs);
			goto out;
		}
		cat_header_release(&h);
	}
	mp = path != NULL ? snapstore_abspath(path, err) :
	    xasprintf("%s/mnt/%s", state_dir, name);
	if (mp == NULL || mkdir_p(mp, 0755, err) == -1)
		goto out;
	/* as mountinfo will spell it: no symbolic links */
	old = mp;
	mp = snapstore_abspath(old, err);
	free(old);
	old = NULL;
	if (mp == NULL)
		goto out;
	if (is_mount_point(mp)) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' is already a mount "
		    "point", mp);
		goto out;
	}
	if (de.kind == EP_ZFS) {
		/* readonly=on, canmount=noauto, mountpoint=mp, then mount */
		if (zfs_mount_tree_ro(de.path, mp, err) == -1) {
			struct as_err e2;

			(void)zfs_unmount_tree(de.path, &e2);
			goto out;
		}
		goto record;
	}
	if (mount(d_abs, mp, NULL, MS_BIND, NULL) == -1) {
		as_err_sys(err, errno, "bind mount '%s' on '%s'%s", d_abs, mp,
		    errno == EPERM ? " (needs root)" : "");
		goto out;
	}
	/* a bind mount takes the flags only on a remount */
	if (mount(NULL, mp, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
	    MS_NOSUID | MS_NODEV, NULL) == -1) {
		as_err_sys(err, errno, "make '%s' read-only", mp);
		(void)umount2(mp, MNT_DETACH);
		goto out;
	}
record:
	rp = xasprintf("%s/run", state_dir);
	(void)mkdir(rp, 0700);
	free(rp);
	rp = record_path(state_dir, name);
	fd = open(rp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1 || io_write_full(fd, mp, strlen(mp)) == -1 ||
	    (de.kind == EP_ZFS && (io_write_full(fd, "\nzfs:", 5) == -1 ||
	    io_write_full(fd, de.path, strlen(de.path)) == -1))) {
		as_err_sys(err, errno, "record the mount in '%s'", rp);
		if (fd >= 0)
			close(fd);
		if (de.kind == EP_ZFS) {
			struct as_err e2;

			(void)zfs_unmount_tree(de.path, &e2);
		} else
			(void)umount2(mp, MNT_DETACH);
		goto out;
	}
	close(fd);
	*where = mp;
	mp = NULL;
	rc = 0;
out:
	endpoint_release(&de);
	free(d_abs);
	free(mp);
	free(rp);
	free(old);
	return rc;
}

int
mountdst_umount(const char *state_dir, const char *name, const char *path,
    char **where, struct as_err *err)
{
	char *mp = NULL, *rec = NULL, *rp, *def, *ds = NULL;
	int rc = -1;

	*where = NULL;
	if (read_record_ds(state_dir, name, &rec, &ds, err) == -1)
		return -1;
	if (path != NULL) {
		if ((mp = snapstore_abspath(path, err)) == NULL)
			goto out;
	} else if (rec != NULL)
		mp = xstrdup(rec);
	else {
		as_err_set(err, AS_E_NOTFOUND, 0, "the destination of '%s' is "
		    "not mounted", name);
		goto out;
	}
	if (!is_mount_point(mp)) {
		as_err_set(err, AS_E_NOTFOUND, 0, "'%s' is not mounted", mp);
		goto out;
	}
	if (ds != NULL && rec != NULL && strcmp(rec, mp) == 0) {
		/* a ZFS replica: zfs unmounts it and its children */
		const char *argv[] = { "zfs", "inherit", "mountpoint", ds,
		    NULL };

		if (zfs_unmount_tree(ds, err) == -1)
			goto out;
		/* mount-destination set it: back to where it would be */
		if (zfs_run("inherit mountpoint", argv, -1, NULL, err) == -1)
			goto out;
	} else if (umount2(mp, 0) == -1) {
		as_err_sys(err, errno, "unmount '%s'", mp);
		if (errno == EBUSY)
			err->code = AS_E_CONFLICT;
		goto out;
	}
	if (rec != NULL && strcmp(rec, mp) == 0) {
		rp = record_path(state_dir, name);
		(void)unlink(rp);
		free(rp);
	}
	def = xasprintf("%s/mnt/%s", state_dir, name);
	if (strcmp(def, mp) == 0)
		(void)rmdir(mp);	/* ours: leave no empty directory */
	free(def);
	*where = mp;
	mp = NULL;
	rc = 0;
out:
	free(mp);
	free(rec);
	free(ds);
	return rc;
}
