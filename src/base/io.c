/* io.c - safe descriptor I/O; see io.h. */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/banned.h"

ssize_t
io_read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = read(fd, (char *)buf + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int
io_write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	ssize_t r;

	while (done < n) {
		r = write(fd, (const char *)buf + done, n - done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)r;
	}
	return 0;
}

int
io_pwrite_full(int fd, const void *buf, size_t n, off_t off)
{
	size_t done = 0;
	ssize_t r;

	while (done < n) {
		r = pwrite(fd, (const char *)buf + done, n - done,
		    off + (off_t)done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)r;
	}
	return 0;
}

ssize_t
io_pread_full(int fd, void *buf, size_t n, off_t off)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static const struct {
	const char	*name;
	int		 value;
} errno_names[] = {
	{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT },
	{ "EFBIG", EFBIG }, { "EACCES", EACCES }, { "EPERM", EPERM },
	{ "EROFS", EROFS }, { "ENOENT", ENOENT }, { "EINTR", EINTR },
};

static int fault_errno, fault_nth, fault_calls, fault_sleep;
static char fault_site[64];

/* $AUTOSYNC_FAULT, read once (receivers call io_fault from two threads). */
static void
fault_parse(void)
{
	const char *spec, *c1, *c2;
	char num[32];
	size_t i, len;

	spec = getenv("AUTOSYNC_FAULT");
	if (spec == NULL || (c1 = strchr(spec, ':')) == NULL ||
	    (size_t)(c1 - spec) >= sizeof(fault_site))
		return;
	memcpy(fault_site, spec, (size_t)(c1 - spec));
	fault_site[c1 - spec] = '\0';
	c2 = strchr(c1 + 1, ':');
	len = c2 != NULL ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
	if (len >= sizeof(num))
		return;
	memcpy(num, c1 + 1, len);
	num[len] = '\0';
	/* KILL: kill -9 at that point, for crash tests */
	fault_errno = strcmp(num, "KILL") == 0 ? -1 : atoi(num);
	/*
	 * STOP: stop there (SIGSTOP), so that a test holds a process at a
	 * known point, e.g. a receiver that has not yet read its stream,
	 * instead of racing it with kill -STOP
	 */
	if (strcmp(num, "STOP") == 0)
		fault_errno = -2;
	if (strncmp(num, "SLEEP", 5) == 0 && atoi(num + 5) > 0) {
		fault_errno = -3;
		fault_sleep = atoi(num + 5);
	}
	for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (strcmp(num, errno_names[i].name) == 0)
			fault_errno = errno_names[i].value;
	fault_nth = c2 != NULL ? atoi(c2 + 1) : 1;
}

int
io_fault(const char *site)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	(void)pthread_once(&once, fault_parse);
	if (fault_errno == 0 || strcmp(site, fault_site) != 0)
		return 0;
	if (__atomic_add_fetch(&fault_calls, 1, __ATOMIC_SEQ_CST) !=
	    fault_nth)
		return 0;
	if (fault_errno == -1)
		raise(SIGKILL);
	if (fault_errno == -2) {
		raise(SIGSTOP);
		return 0;	/* continued: carry on as if no fault */
	}
	if (fault_errno == -3) {
		struct timespec ts = { fault_sleep, 0 };

		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
		return 0;
	}
	return fault_errno;
}

int
io_fsync(int fd, const char *what, struct as_err *err)
{
	int e;

	if ((e = io_fault("fsync")) != 0)
		return as_err_sys(err, e, "fsync '%s'", what);
	if (fsync(fd) == -1)
		return as_err_sys(err, errno, "fsync '%s'", what);
	return 0;
}

int
io_rename_noreplace(int olddfd, const char *oldname, int newdfd,
    const char *newname)
{
	struct stat sb;

	if (renameat2(olddfd, oldname, newdfd, newname, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* (a directory moved into itself gets its EINVAL again below) */
	if (fstatat(olddfd, oldname, &sb, AT_SYMLINK_NOFOLLOW) == -1)
		return -1;
	if (fstatat(newdfd, newname, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = EEXIST;
		return -1;
	}
	if (errno != ENOENT)
		return -1;
	return renameat(olddfd, oldname, newdfd, newname);
}
