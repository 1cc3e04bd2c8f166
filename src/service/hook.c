/*
 * hook.c - pre and post hooks (see hook.h).
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/io.h"
#include "base/proc.h"
#include "base/xmalloc.h"
#include "service/hook.h"
#include "base/banned.h"

extern char **environ;

/* The process group of the hook running now, for hook_kill_running(). */
static volatile sig_atomic_t running_pgid;

void
hook_kill_running(void)
{
	pid_t pg = (pid_t)running_pgid;

	if (pg > 0)
		kill(-pg, SIGKILL);
}

void
hook_argv_free(char **argv)
{
	size_t i;

	if (argv == NULL)
		return;
	for (i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

int
hook_split(const char *spec, char ***argvp, struct as_err *err)
{
	char **argv = NULL, *w = NULL;
	size_t n = 0, wl = 0, i, len = strlen(spec);
	int inword = 0, rc = -1;
	char q = 0, c;

	*argvp = NULL;
	for (i = 0; i < len; i++)
		if ((unsigned char)spec[i] < 0x20 && spec[i] != '\t')
			return as_err_set(err, AS_E_USAGE, 0, "hook: control "
			    "characters are not allowed");
	w = xcalloc(1, len + 1);
	argv = xcalloc(HOOK_ARGS_MAX + 1, sizeof(*argv));
	for (i = 0; i <= len; i++) {
		c = spec[i];
		if (q == '\'') {
			if (c == '\0')
				goto unterminated;
			if (c == '\'')
				q = 0;
			else
				w[wl++] = c;
			continue;
		}
		if (q == '"') {
			if (c == '\0')
				goto unterminated;
			if (c == '\\' && (spec[i + 1] == '"' ||
			    spec[i + 1] == '\\'))
				w[wl++] = spec[++i];
			else if (c == '"')
				q = 0;
			else
				w[wl++] = c;
			continue;
		}
		if (c == '\0' || c == ' ' || c == '\t') {
			if (inword) {
				if (n == HOOK_ARGS_MAX) {
					as_err_set(err, AS_E_USAGE, 0, "hook: "
					    "more than %d words", HOOK_ARGS_MAX);
					goto out;
				}
				argv[n++] = xstrndup(w, wl);
				wl = 0;
				inword = 0;
			}
			continue;
		}
		inword = 1;
		if (c == '\'' || c == '"')
			q = c;
		else if (c == '\\') {
			if (spec[i + 1] == '\0') {
				as_err_set(err, AS_E_USAGE, 0, "hook: a "
				    "backslash ends '%s'", spec);
				goto out;
			}
			w[wl++] = spec[++i];
		} else
			w[wl++] = c;
	}
	if (n > 0 && argv[0][0] != '/') {
		as_err_set(err, AS_E_USAGE, 0, "hook: '%s' is not an absolute "
		    "path (hooks run without a shell or PATH search)", argv[0]);
		goto out;
	}
	if (n > 0) {
		*argvp = argv;
		argv = NULL;
	}
	rc = 0;
	goto out;
unterminated:
	as_err_set(err, AS_E_USAGE, 0, "hook: unterminated %c quote in '%s'",
	    q, spec);
out:
	hook_argv_free(argv);
	free(w);
	return rc;
}

const char *
hook_status_str(int status, char *buf, unsigned bufsz)
{
	if (WIFEXITED(status))
		snprintf(buf, bufsz, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, bufsz, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, bufsz, "wait status %#x", status);
	return buf;
}


/* The hook's child: never returns. */
static void
hook_child(char *const *argv, char *const *env, int out_fd, int errpipe,
    pid_t parent)
{
	size_t i;
	int fd, e;

	setpgid(0, 0);
	if (proc_die_with_parent(parent) == -1)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd == -1 || dup2(fd, 0) == -1 || dup2(out_fd, 1) == -1 ||
	    dup2(out_fd, 2) == -1)
		goto fail;
	for (i = 0; env != NULL && env[i] != NULL; i++)
		if (putenv(env[i]) != 0)
			goto fail;
	execve(argv[0], argv, environ);
fail:
	e = errno;
	(void)io_write_full(errpipe, &e, sizeof(e));
	_exit(127);
}

/* Pass on complete lines of buf (len bytes); keep the rest. */
static size_t
lines_out(char *buf, size_t len, int flush, hook_line_fn fn, void *arg,
    unsigned *nlines)
{
	char *nl, *p = buf;
	size_t rest;

	while ((nl = memchr(p, '\n', len - (size_t)(p - buf))) != NULL ||
	    (flush && p < buf + len)) {
		if (nl == NULL)
			nl = buf + len;
		*nl = '\0';
		if (fn != NULL && (*nlines)++ < HOOK_LINES_MAX)
			fn(arg, p);
		p = nl + 1;
		if (p > buf + len)
			p = buf + len;
	}
	rest = len - (size_t)(p - buf);
	memmove(buf, p, rest);
	return rest;
}

int
hook_run(char *const *argv, char *const *env, int64_t timeout_ms,
    hook_line_fn fn, void *arg, int *status, struct as_err *err)
{
	struct pollfd pfd;
	char buf[HOOK_LINE_MAX + 1];
	size_t len = 0;
	int out[2], ep[2], e = 0, open_out = 1, timed_out = 0;
	unsigned nlines = 0;
	int64_t deadline, left;
	ssize_t r;
	pid_t pid, w, parent = getpid();

	*status = 0;
	if (pipe2(out, O_CLOEXEC) == -1)
		return as_err_sys(err, errno, "hook '%s': pipe", argv[0]);
	if (pipe2(ep, O_CLOEXEC) == -1) {
		close(out[0]);
		close(out[1]);
		return as_err_sys(err, errno, "hook '%s': pipe", argv[0]);
	}
	if ((pid = fork()) == -1) {
		e = errno;
		close(out[0]);
		close(out[1]);
		close(ep[0]);
		close(ep[1]);
		return as_err_sys(err, e, "hook '%s': fork", argv[0]);
	}
	if (pid == 0) {
		close(out[0]);
		close(ep[0]);
		hook_child(argv, env, out[1], ep[1], parent);
	}
	/* both sides set the group, so a kill never misses it */
	(void)setpgid(pid, pid);
	running_pgid = pid;
	close(out[1]);
	close(ep[1]);
	deadline = mono_ms() + timeout_ms;
	while (open_out) {
		left = deadline - mono_ms();
		if (left <= 0) {
			timed_out = 1;
			break;
		}
		pfd.fd = out[0];
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, left > 1000 ? 1000 : (int)left) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd.revents == 0)
			continue;
		r = read(out[0], buf + len, sizeof(buf) - 1 - len);
		if (r == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0) {
			open_out = 0;
			break;
		}
		len += (size_t)r;
		len = lines_out(buf, len, len == sizeof(buf) - 1, fn, arg,
		    &nlines);
	}
	if (len > 0)
		(void)lines_out(buf, len, 1, fn, arg, &nlines);
	close(out[0]);
	/* the output is closed; the hook may still run (a daemon child) */
	if (timed_out) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	for (;;) {
		w = waitpid(pid, status, WNOHANG);
		if (w == pid)
			break;
		if (w == -1 && errno != EINTR) {
			e = errno;
			close(ep[0]);
			return as_err_sys(err, e, "hook '%s': wait", argv[0]);
		}
		if (w == 0 && !timed_out && mono_ms() >= deadline) {
			timed_out = 1;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
		}
		if (w == 0)
			usleep(20000);
	}
	if (timed_out)
		kill(-pid, SIGKILL);	/* what it left behind, too */
	running_pgid = 0;
	e = 0;
	r = read(ep[0], &e, sizeof(e));
	close(ep[0]);
	if (r == (ssize_t)sizeof(e) && e != 0)
		return as_err_set(err, e == ENOENT ? AS_E_NOTFOUND : AS_E_IO,
		    e, "hook '%s' cannot be run: %s", argv[0], strerror(e));
	if (timed_out)
		return as_err_set(err, AS_E_TIMEOUT, 0, "hook '%s' killed "
		    "after %lld s", argv[0], (long long)(timeout_ms / 1000));
	return 0;
}
