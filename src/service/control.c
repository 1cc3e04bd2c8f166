/*
 * control.c - the control socket's transport (see control.h).  What the
 * requests do is the supervisor's business.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/io.h"
#include "service/control.h"
#include "base/banned.h"

static int
addr_of(const char *path, struct sockaddr_un *sun, struct as_err *err)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return as_err_set(err, AS_E_LIMIT, 0, "control socket path "
		    "'%s' is too long", path);
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

static int
connect_to(const char *path, struct as_err *err)
{
	struct sockaddr_un sun;
	int fd, e;

	if (addr_of(path, &sun, err) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return as_err_sys(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		e = errno;
		close(fd);
		if (e == ENOENT || e == ECONNREFUSED)
			return as_err_set(err, AS_E_NOTFOUND, e, "no daemon "
			    "listens on '%s'", path);
		return as_err_sys(err, e, "connect to '%s'", path);
	}
	return fd;
}

int
control_listen(const char *path, struct as_err *err)
{
	struct sockaddr_un sun;
	struct as_err e2;
	mode_t old;
	int fd, c;

	if (addr_of(path, &sun, err) == -1)
		return -1;
	if ((c = connect_to(path, &e2)) != -1) {
		close(c);
		return as_err_set(err, AS_E_CONFLICT, 0, "a daemon already "
		    "listens on '%s'", path);
	}
	if (unlink(path) == -1 && errno != ENOENT)
		return as_err_sys(err, errno, "remove stale '%s'", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		return as_err_sys(err, errno, "socket");
	old = umask(077);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		c = errno;
		umask(old);
		close(fd);
		return as_err_sys(err, c, "bind '%s'", path);
	}
	umask(old);
	if (chmod(path, 0600) == -1 || listen(fd, 16) == -1) {
		c = errno;
		close(fd);
		return as_err_sys(err, c, "listen on '%s'", path);
	}
	return fd;
}

int
control_reply(int fd, const char *fmt, ...)
{
	char line[CONTROL_LINE_MAX + 2];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	/* one line: never let a message's own newline split the reply */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	return io_write_full(fd, line, (size_t)n);
}


int
control_request(const char *path, const char *request, control_line_fn fn,
    void *arg, char *out, size_t outsz, int timeout_ms, struct as_err *err)
{
	char buf[CONTROL_LINE_MAX + 1], *nl, *code, *text;
	struct pollfd pfd;
	size_t len = 0;
	ssize_t r;
	int64_t deadline = timeout_ms >= 0 ? mono_ms() + timeout_ms : -1;
	int fd, rc = -1, left;

	if ((fd = connect_to(path, err)) == -1)
		return -1;
	if (control_reply(fd, "%s", request) == -1) {
		as_err_sys(err, errno, "write to '%s'", path);
		goto out;
	}
	for (;;) {
		while ((nl = memchr(buf, '\n', len)) != NULL) {
			*nl = '\0';
			if (strncmp(buf, "* ", 2) == 0) {
				if (fn != NULL)
					fn(arg, buf + 2);
			} else if (strncmp(buf, "ok", 2) == 0) {
				if (out != NULL)
					snprintf(out, outsz, "%s", buf[2] ==
					    ' ' ? buf + 3 : "");
				rc = 0;
				goto out;
			} else if (strncmp(buf, "err ", 4) == 0) {
				code = buf + 4;
				text = code + strcspn(code, " ");
				if (*text != '\0')
					*text++ = '\0';
				as_err_set(err, AS_E_INTERNAL, 0, "%s", text);
				for (int c = 1; c < AS_E__COUNT; c++)
					if (strcmp(as_errcode_name(c),
					    code) == 0)
						err->code = c;
				goto out;
			} else {
				as_err_set(err, AS_E_MALFORMED, 0, "daemon "
				    "sent a bad reply line");
				goto out;
			}
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len);
		}
		if (len == CONTROL_LINE_MAX) {
			as_err_set(err, AS_E_LIMIT, 0, "daemon reply line too "
			    "long");
			goto out;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		left = deadline < 0 ? -1 : (int)(deadline - mono_ms());
		if (deadline >= 0 && left <= 0) {
			as_err_set(err, AS_E_TIMEOUT, 0, "no reply from the "
			    "daemon");
			goto out;
		}
		if (poll(&pfd, 1, left) == -1) {
			if (errno == EINTR)
				continue;
			as_err_sys(err, errno, "poll");
			goto out;
		}
		r = read(fd, buf + len, CONTROL_LINE_MAX - len);
		if (r == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0) {
			as_err_set(err, AS_E_IO, r == -1 ? errno : 0, "the "
			    "daemon closed the connection");
			goto out;
		}
		len += (size_t)r;
	}
out:
	close(fd);
	return rc;
}
