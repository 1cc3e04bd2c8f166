/* zfs.c - the ZFS driver; see zfs.h. */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/bg.h"
#include "base/io.h"
#include "base/proc.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "driver/zfs.h"
#include "base/banned.h"

#define OUT_MAX		(64u << 20)	/* stdout of a listing */
#define ERRTXT_MAX	(64u << 10)	/* stderr kept for messages */
#define LINE_MAX_LOG	1024
#define NAME_OK(c)	(isalnum(c) || (c) == '_' || (c) == '-' || \
			 (c) == '.' || (c) == ':' || (c) == ' ')

/* ------------------------------------------------------------------ */
/* Error classes from zfs's own words */

/*
 * Checked in order: the first substring found decides.  Each row is
 * pinned by a unit test with the text zfs-fuse or OpenZFS prints.
 */
static const struct {
	const char	*text;
	enum as_errcode	 code;
} classes[] = {
	/* the tool itself */
	{ "Please make sure that the zfs-fuse daemon is running", AS_E_IO },
	{ "The ZFS modules are not loaded",		AS_E_UNSUPPORTED },
	{ "Permission denied",				AS_E_AUTH },
	{ "permission denied",				AS_E_AUTH },
	{ "must be root",				AS_E_AUTH },
	{ "insufficient privileges",			AS_E_AUTH },
	{ "invalid option",				AS_E_UNSUPPORTED },
	{ "unrecognized command",			AS_E_UNSUPPORTED },
	{ "pyzfs.py not found",			AS_E_UNSUPPORTED },
	{ "unsupported version",			AS_E_UNSUPPORTED },
	{ "stream has unsupported feature",		AS_E_UNSUPPORTED },
	{ "pool must be upgraded",			AS_E_UNSUPPORTED },
	{ "is not a valid token",			AS_E_MALFORMED },
	{ "resume token is corrupt",			AS_E_MALFORMED },
	/* divergence and busy: zrepl's ConflictDiverged, syncoid's refusal */
	{ "has been modified",				AS_E_CONFLICT },
	{ "does not match incremental source",		AS_E_CONFLICT },
	{ "must specify -F to overwrite",		AS_E_CONFLICT },
	{ "destination has snapshots",			AS_E_CONFLICT },
	{ "more recent snapshots",			AS_E_CONFLICT },
	{ "dataset already exists",			AS_E_CONFLICT },
	{ "dataset is busy",				AS_E_CONFLICT },
	{ "pool or dataset is busy",			AS_E_CONFLICT },
	{ "Device or resource busy",			AS_E_CONFLICT },
	{ "has dependent clones",			AS_E_CONFLICT },
	{ "contains partially-complete state",		AS_E_CONFLICT },
	/* space */
	{ "out of space",				AS_E_NOSPACE },
	{ "No space left on device",			AS_E_NOSPACE },
	{ "quota exceeded",				AS_E_NOSPACE },
	/* the stream */
	{ "checksum mismatch",				AS_E_CHECKSUM },
	{ "failed to read from stream",			AS_E_TRUNCATED },
	{ "incomplete stream",				AS_E_TRUNCATED },
	{ "invalid backup stream",			AS_E_MALFORMED },
	{ "bad magic number",				AS_E_MALFORMED },
	{ "invalid stream",				AS_E_MALFORMED },
	/* missing things, after the texts above that also say "exist" */
	{ "dataset does not exist",			AS_E_NOTFOUND },
	{ "no such pool",				AS_E_NOTFOUND },
	{ "does not exist",				AS_E_NOTFOUND },
	{ "no longer exists",				AS_E_NOTFOUND },
	{ "could not find any snapshots",		AS_E_NOTFOUND },
	/* the machine */
	{ "pool I/O is currently suspended",		AS_E_IO },
	{ "I/O error",					AS_E_IO },
	{ "Broken pipe",				AS_E_IO },
};

enum as_errcode
zfs_classify(const char *text)
{
	enum as_errcode code = AS_E_IO;
	char *flat, *p;
	size_t i;

	if (text == NULL)
		return AS_E_IO;
	/* zfs wraps its messages ("does not\nmatch incremental source") */
	flat = xstrndup(text, strnlen(text, ERRTXT_MAX));
	for (p = flat; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (strstr(flat, classes[i].text) != NULL) {
			code = classes[i].code;
			break;
		}
	free(flat);
	return code;
}

/* zfs's stderr as one line: newlines become spaces, escaped. */
static void
one_line(const char *text, char *out, size_t outsz)
{
	char tmp[AS_ERR_MSGMAX];
	size_t i, j = 0;

	for (i = 0; text != NULL && text[i] != '\0' && j + 1 < sizeof(tmp);
	    i++) {
		if (text[i] == '\n') {
			if (text[i + 1] == '\0')
				break;
			/* zfs wraps long messages: join them */
			if (j > 0 && tmp[j - 1] != ' ')
				tmp[j++] = ' ';
			continue;
		}
		tmp[j++] = text[i];
	}
	tmp[j] = '\0';
	log_escape(tmp, out, (unsigned)outsz);
}

/* Fill err from a failed command's stderr. */
static int
cmd_error(struct as_err *err, const char *what, const char *errtxt,
    int status)
{
	char line[AS_ERR_MSGMAX];
	enum as_errcode code;

	one_line(errtxt, line, sizeof(line));
	if (line[0] == '\0')
		return as_err_set(err, AS_E_IO, 0,
		    "%s: zfs %s %d", what, status >= 128 ? "killed by signal" :
		    "exited with status", status >= 128 ? status - 128 :
		    status);
	code = zfs_classify(errtxt);
	if (strstr(errtxt, "zfs-fuse daemon is running") != NULL)
		return as_err_set(err, code, 0, "%s: the zfs-fuse daemon is "
		    "not running (start it with 'zfs-fuse')", what);
	return as_err_set(err, code, 0, "%s: %s", what, line);
}

/* ------------------------------------------------------------------ */
/* Running commands */

static void
argv_line(const char *const argv[], char *out, size_t outsz)
{
	char esc[LINE_MAX_LOG];
	size_t off = 0;
	int i;

	out[0] = '\0';
	for (i = 0; argv[i] != NULL && off + 1 < outsz; i++) {
		log_escape(argv[i], esc, sizeof(esc));
		off += (size_t)snprintf(out + off, outsz - off, "%s%s",
		    i > 0 ? " " : "", esc);
	}
}

/* Read a memfd from its start, NUL-terminated, at most max bytes. */
static char *
read_memfd(int fd, size_t max)
{
	struct stat st;
	char *buf;
	ssize_t r;
	size_t n;

	if (fstat(fd, &st) == -1)
		return xstrdup("");
	n = (size_t)st.st_size < max ? (size_t)st.st_size : max;
	buf = xmalloc(n + 1);
	r = io_pread_full(fd, buf, n, 0);
	buf[r > 0 ? (size_t)r : 0] = '\0';
	return buf;
}

static int
memfd(const char *name, struct as_err *err)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd == -1)
		return as_err_sys(err, errno, "memfd_create");
	return fd;
}

int
zfs_proc_start(struct zfs_proc *p, const char *what, const char *const argv[],
    int in_fd, int out_fd, struct as_err *err)
{
	char line[LINE_MAX_LOG];
	int nul = -1;
	pid_t pid, parent;

	memset(p, 0, sizeof(*p));
	p->err_fd = -1;
	argv_line(argv, line, sizeof(line));
	if ((p->err_fd = memfd("zfs-stderr", err)) == -1)
		return -1;
	if ((in_fd == -1 || out_fd == -1) &&
	    (nul = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1) {
		close(p->err_fd);
		return as_err_sys(err, errno, "open '/dev/null'");
	}
	log_debug("run: %s", line);
	fflush(NULL);
	parent = getpid();
	if ((pid = fork()) == -1) {
		as_err_sys(err, errno, "fork");
		close(p->err_fd);
		if (nul != -1)
			close(nul);
		return -1;
	}
	if (pid == 0) {
		/*
		 * A killed autosync takes its zfs commands along (§F 69):
		 * a zfs send would go on reading and holding its pipe.  Not
		 * zfs receive: killed, it leaves the dataset of a full
		 * stream behind (zfs-fuse), and the next sync would call it
		 * diverged; with its writer gone it sees the end of its
		 * stream and cleans up itself.  dup2 clears FD_CLOEXEC on
		 * 0, 1 and 2 only.
		 */
		if ((argv[1] == NULL || strcmp(argv[1], "receive") != 0) &&
		    proc_die_with_parent(parent) == -1)
			_exit(126);
		if (dup2(in_fd != -1 ? in_fd : nul, 0) == -1 ||
		    dup2(out_fd != -1 ? out_fd : nul, 1) == -1 ||
		    dup2(p->err_fd, 2) == -1)
			_exit(126);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		fprintf(stderr, "cannot run '%s': %s\n", argv[0],
		    strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	if (nul != -1)
		close(nul);
	p->pid = pid;
	p->what = xstrdup(what);
	p->line = xstrdup(line);
	return 0;
}

static void
proc_release(struct zfs_proc *p)
{
	if (p->err_fd != -1)
		close(p->err_fd);
	free(p->what);
	free(p->line);
	memset(p, 0, sizeof(*p));
	p->err_fd = -1;
}

/* Reap p: its status (exit code, or 128 + signal) and stderr text. */
static int
proc_reap(struct zfs_proc *p, int *status, char **errtxt)
{
	int st;
	pid_t r;

	while ((r = waitpid(p->pid, &st, 0)) == -1 && errno == EINTR)
		;
	if (r == -1)
		*status = 127;
	else if (WIFEXITED(st))
		*status = WEXITSTATUS(st);
	else
		*status = 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	*errtxt = read_memfd(p->err_fd, ERRTXT_MAX);
	if (*status == 0)
		log_debug("exit 0: %s", p->line);
	else {
		char esc[AS_ERR_MSGMAX];

		one_line(*errtxt, esc, sizeof(esc));
		log_debug("exit %d: %s: %s", *status, p->line, esc);
	}
	return 0;
}

int
zfs_proc_finish(struct zfs_proc *p, struct as_err *err)
{
	char *errtxt = NULL;
	int status, rc = 0;

	if (p->pid <= 0) {
		proc_release(p);
		return 0;
	}
	proc_reap(p, &status, &errtxt);
	if (status == 127 && strstr(errtxt, "cannot run") != NULL)
		rc = as_err_set(err, AS_E_UNSUPPORTED, 0, "%s: zfs is not "
		    "installed (or not on PATH)", p->what);
	else if (status != 0)
		rc = cmd_error(err, p->what, errtxt, status);
	free(errtxt);
	proc_release(p);
	return rc;
}

void
zfs_proc_kill(struct zfs_proc *p)
{
	if (p->pid > 0)
		kill(p->pid, SIGTERM);
}

int
zfs_exec(const char *const argv[], int in_fd, char **out, char **errtxt,
    int *status, struct as_err *err)
{
	struct zfs_proc p;
	char *e = NULL;
	int ofd = -1;

	if (out != NULL)
		*out = NULL;
	if (errtxt != NULL)
		*errtxt = NULL;
	if (out != NULL && (ofd = memfd("zfs-stdout", err)) == -1)
		return -1;
	if (zfs_proc_start(&p, argv[1] != NULL ? argv[1] : argv[0], argv,
	    in_fd, ofd, err) == -1) {
		if (ofd != -1)
			close(ofd);
		return -1;
	}
	proc_reap(&p, status, &e);
	proc_release(&p);
	if (out != NULL) {
		*out = read_memfd(ofd, OUT_MAX);
		close(ofd);
	}
	if (errtxt != NULL)
		*errtxt = e;
	else
		free(e);
	return 0;
}

int
zfs_run(const char *what, const char *const argv[], int in_fd, char **out,
    struct as_err *err)
{
	char *errtxt = NULL;
	int status, rc = 0;

	if (zfs_exec(argv, in_fd, out, &errtxt, &status, err) == -1)
		return -1;
	if (status == 127 && strstr(errtxt, "cannot run") != NULL)
		rc = as_err_set(err, AS_E_UNSUPPORTED, 0, "%s: '%s' is not "
		    "installed (or not on PATH)", what, argv[0]);
	else if (status != 0)
		rc = cmd_error(err, what, errtxt, status);
	free(errtxt);
	if (rc == -1 && out != NULL) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Capabilities */

/*
 * The option letters of every usage line of command cmd ("\tcmd [-xyz]")
 * appended to flags; 1 when the command is listed at all.
 */
static int
usage_flags(const char *usage, const char *cmd, char *flags, size_t flagsz,
    char *lines, size_t linesz)
{
	const char *p = usage, *e, *q;
	size_t cl = strlen(cmd), fl = strlen(flags), ll = strlen(lines);
	int found = 0;

	while (p != NULL && *p != '\0') {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		q = p;
		while (q < e && (*q == '\t' || *q == ' '))
			q++;
		/* a command line starts with a tab; continuations with 4
		 * more spaces and belong to the previous line */
		if (*p == '\t' && (size_t)(e - q) >= cl &&
		    strncmp(q, cmd, cl) == 0 && (q[cl] == ' ' ||
		    q + cl == e)) {
			found = 1;
			/* the whole line, for "-o <property>" and the like */
			if (ll + (size_t)(e - q) + 2 < linesz) {
				memcpy(lines + ll, q, (size_t)(e - q));
				ll += (size_t)(e - q);
				lines[ll++] = '\n';
				lines[ll] = '\0';
			}
			for (q += cl; q < e; q++) {
				if (q[0] == '[' && q[1] == '-' &&
				    isalpha((unsigned char)q[2])) {
					for (q += 2; q < e && isalpha(
					    (unsigned char)*q); q++)
						if (fl + 1 < flagsz) {
							flags[fl++] = *q;
							flags[fl] = '\0';
						}
				}
			}
		}
		p = *e != '\0' ? e + 1 : e;
	}
	return found;
}

void
zfs_caps_parse(const char *usage, const char *recv_u_probe,
    struct zfs_caps *c)
{
	char f[128], lines[2048];
	int has_version;

	memset(c, 0, sizeof(*c));
	if (usage == NULL)
		usage = "";
	f[0] = lines[0] = '\0';
	usage_flags(usage, "list", f, sizeof(f), lines, sizeof(lines));
	c->list_p = strchr(f, 'p') != NULL;

	f[0] = lines[0] = '\0';
	usage_flags(usage, "send", f, sizeof(f), lines, sizeof(lines));
	c->send_p = strchr(f, 'p') != NULL;
	c->send_R = strchr(f, 'R') != NULL;
	c->send_c = strchr(f, 'c') != NULL;
	c->send_L = strchr(f, 'L') != NULL;
	c->send_e = strchr(f, 'e') != NULL;
	c->send_w = strchr(f, 'w') != NULL;
	c->send_I = strstr(lines, "[-[iI] ") != NULL ||
	    strstr(lines, "[-[i|I] ") != NULL;
	c->recv_s = strstr(lines, "-t <receive_resume_token>") != NULL;

	f[0] = lines[0] = '\0';
	usage_flags(usage, "receive", f, sizeof(f), lines, sizeof(lines));
	c->recv_s = c->recv_s && strchr(f, 's') != NULL;
	c->recv_u = strchr(f, 'u') != NULL;
	c->recv_o = strstr(lines, "[-o ") != NULL;
	c->recv_x = strstr(lines, "[-x ") != NULL;
	/*
	 * zfs-fuse accepts -u without listing it: the probe `zfs receive
	 * -u` (no dataset, so it does nothing) fails on the missing
	 * argument where -u is known and on "invalid option 'u'" where not.
	 */
	if (!c->recv_u && recv_u_probe != NULL && recv_u_probe[0] != '\0' &&
	    strstr(recv_u_probe, "invalid option") == NULL)
		c->recv_u = 1;

	f[0] = lines[0] = '\0';
	c->hold = usage_flags(usage, "hold", f, sizeof(f), lines,
	    sizeof(lines)) && usage_flags(usage, "release", f, sizeof(f),
	    lines, sizeof(lines));
	f[0] = lines[0] = '\0';
	c->holds_list = usage_flags(usage, "holds", f, sizeof(f), lines,
	    sizeof(lines)) && strchr(f, 'H') != NULL;
	f[0] = lines[0] = '\0';
	c->bookmark = usage_flags(usage, "bookmark", f, sizeof(f), lines,
	    sizeof(lines));
	/* "written" came with the same generation as bookmarks (2013) */
	c->written = c->bookmark;
	f[0] = lines[0] = '\0';
	has_version = usage_flags(usage, "version", f, sizeof(f), lines,
	    sizeof(lines));
	snprintf(c->impl, sizeof(c->impl), "%s", has_version ? "OpenZFS" :
	    c->bookmark ? "zfs (bookmarks, no version command)" :
	    "zfs without bookmarks (pool version 28 or older, e.g. zfs-fuse)");
}

static struct zfs_caps caps_cache;
static int caps_done;
static char *caps_dir;

void
zfs_caps_cache(const char *dir)
{
	free(caps_dir);
	caps_dir = dir != NULL ? xstrdup(dir) : NULL;
}

/* The identity of the zfs found on PATH, or "" when not found. */
static void
zfs_identity(char *out, size_t outsz)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL, *p;
	struct stat st;

	out[0] = '\0';
	if (path == NULL)
		return;
	copy = xstrdup(path);
	for (dir = strtok_r(copy, ":", &save); dir != NULL;
	    dir = strtok_r(NULL, ":", &save)) {
		p = xasprintf("%s/zfs", dir);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			/* autosync's version: the cache is a struct */
			snprintf(out, outsz, "autosync %s %zu zfs %s %ju %ju "
			    "%jd %jd", AUTOSYNC_VERSION, sizeof(caps_cache), p,
			    (uintmax_t)st.st_dev, (uintmax_t)st.st_ino,
			    (intmax_t)st.st_size, (intmax_t)st.st_mtime);
			free(p);
			break;
		}
		free(p);
	}
	free(copy);
}

/* Read the cached caps if they belong to this zfs: 1 yes, 0 no. */
static int
caps_load(const char *id)
{
	char *p, buf[1024], *nl;
	int fd;
	ssize_t r;

	if (caps_dir == NULL || id[0] == '\0')
		return 0;
	p = xasprintf("%s/caps", caps_dir);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	if (fd == -1)
		return 0;
	r = io_read_full(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return 0;
	buf[r] = '\0';
	if ((nl = strchr(buf, '\n')) == NULL)
		return 0;
	*nl = '\0';
	if (strcmp(buf, id) != 0 ||
	    (size_t)(r - (nl + 1 - buf)) != sizeof(caps_cache))
		return 0;
	memcpy(&caps_cache, nl + 1, sizeof(caps_cache));
	caps_cache.impl[sizeof(caps_cache.impl) - 1] = '\0';
	return 1;
}

static void
caps_save(const char *id)
{
	char *p, *tmp;
	int fd;

	if (caps_dir == NULL || id[0] == '\0')
		return;
	p = xasprintf("%s/caps", caps_dir);
	tmp = xasprintf("%s/caps.tmp", caps_dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd != -1) {
		if (io_write_full(fd, id, strlen(id)) == 0 &&
		    io_write_full(fd, "\n", 1) == 0 &&
		    io_write_full(fd, &caps_cache, sizeof(caps_cache)) == 0 &&
		    close(fd) == 0)
			(void)rename(tmp, p);
		else
			(void)unlink(tmp);
	}
	free(p);
	free(tmp);
}

/* `zfs receive -u` as a job: what it says tells whether -u exists */
struct probe_args {
	const char *const *argv;
	char		*out;		/* its stderr */
};

static int
probe_run(void *arg, struct as_err *err)
{
	struct probe_args *p = arg;
	int status;

	return zfs_exec(p->argv, -1, NULL, &p->out, &status, err);
}

const struct zfs_caps *
zfs_caps(struct as_err *err)
{
	struct probe_args pa = { NULL, NULL };
	struct bg_job probej;
	struct as_err perr;
	int prc;
	static const char *const a_usage[] = { "zfs", NULL };
	static const char *const a_probe[] = { "zfs", "receive", "-u", NULL };
	char *usage = NULL, *probe = NULL, id[PATH_MAX + 128];
	int status;

	if (caps_done)
		return &caps_cache;
	zfs_identity(id, sizeof(id));
	if (caps_load(id)) {
		caps_done = 1;
		log_debug("zfs: capabilities of '%s' from the cache", id);
		return &caps_cache;
	}
	/* the probe beside the usage: two round trips for the time of one */
	pa.argv = a_probe;
	bg_start(&probej, probe_run, &pa);
	if (zfs_exec(a_usage, -1, NULL, &usage, &status, err) == -1) {
		(void)bg_join(&probej, NULL);
		free(pa.out);
		return NULL;
	}
	prc = bg_join(&probej, &perr);
	if (status == 127 && strstr(usage, "cannot run") != NULL) {
		free(usage);
		free(pa.out);
		as_err_set(err, AS_E_UNSUPPORTED, 0, "zfs is not installed (or "
		    "not on PATH)");
		return NULL;
	}
	if (strstr(usage, "where 'command' is one of") == NULL) {
		/* no usage: the tool could not start (no daemon...) */
		cmd_error(err, "zfs", usage, status != 0 ? status : 1);
		free(usage);
		free(pa.out);
		return NULL;
	}
	if (prc == -1) {
		free(usage);
		if (err != NULL)
			*err = perr;
		return NULL;
	}
	probe = pa.out;
	zfs_caps_parse(usage, probe, &caps_cache);
	free(usage);
	free(probe);
	caps_done = 1;
	caps_save(id);
	log_debug("zfs: %s; list -p %s, receive -u %s, resume %s, "
	    "receive -o/-x %s, holds %s, bookmarks %s", caps_cache.impl,
	    caps_cache.list_p ? "yes" : "no", caps_cache.recv_u ? "yes" : "no",
	    caps_cache.recv_s ? "yes" : "no",
	    caps_cache.recv_o && caps_cache.recv_x ? "yes" : "no",
	    caps_cache.hold ? "yes" : "no", caps_cache.bookmark ? "yes" : "no");
	return &caps_cache;
}

void
zfs_caps_note(const char *key, const char *msg)
{
	static char said[16][32];
	static unsigned nsaid;
	unsigned i;

	for (i = 0; i < nsaid; i++)
		if (strcmp(said[i], key) == 0)
			return;
	if (nsaid < sizeof(said) / sizeof(said[0]))
		snprintf(said[nsaid++], sizeof(said[0]), "%s", key);
	log_info("zfs: %s", msg);
}

/* ------------------------------------------------------------------ */
/* Names */

int
zfs_name_check(const char *name, int snap, struct as_err *err)
{
	const char *p, *at = NULL;
	size_t n = strlen(name);

	if (n == 0 || n > ZFS_NAME_MAX || name[0] == '/' || name[0] == '-' ||
	    name[n - 1] == '/')
		goto bad;
	for (p = name; *p != '\0'; p++) {
		if (*p == '@') {
			if (at != NULL || !snap || p == name || p[1] == '\0')
				goto bad;
			at = p;
			continue;
		}
		if (*p == '/') {
			if (at != NULL || p[1] == '/' || p[1] == '\0')
				goto bad;
			continue;
		}
		if (!NAME_OK((unsigned char)*p))
			goto bad;
	}
	if (snap && at == NULL)
		goto bad;
	/* "." and ".." components */
	for (p = name; p != NULL; p = strchr(p, '/')) {
		if (*p == '/')
			p++;
		if ((p[0] == '.' && (p[1] == '/' || p[1] == '\0' ||
		    p[1] == '@')) || (p[0] == '.' && p[1] == '.' &&
		    (p[2] == '/' || p[2] == '\0' || p[2] == '@')))
			goto bad;
	}
	return 0;
bad:
	{
		char esc[ZFS_NAME_MAX * 4 + 8];

		log_escape(name, esc, sizeof(esc));
		return as_err_set(err, AS_E_USAGE, 0, "'%s' is not a valid "
		    "ZFS %s name", esc, snap ? "snapshot" : "dataset");
	}
}

/* ------------------------------------------------------------------ */
/* Listing */

void
zfs_tree_release(struct zfs_tree *t)
{
	size_t i, j;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		for (j = 0; j < t->v[i].nsnaps; j++)
			free(t->v[i].snaps[j].name);
		free(t->v[i].snaps);
		free(t->v[i].name);
		free(t->v[i].mountpoint);
		free(t->v[i].canmount);
		free(t->v[i].resume_token);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

struct zfs_ds *
zfs_tree_find(const struct zfs_tree *t, const char *name)
{
	size_t lo = 0, hi = t->n, mid;
	int c;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		c = strcmp(t->v[mid].name, name);
		if (c == 0)
			return &t->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct zfs_snap *
zfs_ds_snap_guid(const struct zfs_ds *ds, uint64_t guid)
{
	size_t i;

	for (i = 0; ds != NULL && i < ds->nsnaps; i++)
		if (ds->snaps[i].guid == guid)
			return &ds->snaps[i];
	return NULL;
}

const struct zfs_snap *
zfs_ds_snap_name(const struct zfs_ds *ds, const char *name)
{
	size_t i;

	for (i = 0; ds != NULL && i < ds->nsnaps; i++)
		if (strcmp(ds->snaps[i].name, name) == 0)
			return &ds->snaps[i];
	return NULL;
}

void
zfs_compare(const struct zfs_ds *src, const struct zfs_ds *dst,
    struct zfs_common *c)
{
	size_t i, from;

	memset(c, 0, sizeof(*c));
	for (i = dst->nsnaps; i-- > 0; ) {
		c->base_s = zfs_ds_snap_guid(src, dst->snaps[i].guid);
		if (c->base_s != NULL) {
			c->base_d = &dst->snaps[i];
			break;
		}
	}
	from = c->base_d != NULL ? (size_t)(c->base_d - dst->snaps) + 1 : 0;
	c->after = dst->nsnaps - from;
	for (i = from; i < dst->nsnaps; i++)
		if (strncmp(dst->snaps[i].name, "autosync_", 9) != 0) {
			c->foreign = dst->snaps[i].name;
			break;
		}
	c->modified = dst->written > 0;
}

/* "a, b, c (and N more)", or "none". */
static void
name_list(char *buf, size_t bufsz, const char *const *names, size_t n)
{
	size_t i, off = 0;

	buf[0] = '\0';
	if (n == 0) {
		snprintf(buf, bufsz, "none");
		return;
	}
	for (i = 0; i < n && i < 8 && off < bufsz; i++)
		off += (size_t)snprintf(buf + off, bufsz - off, "%s%s",
		    i > 0 ? ", " : "", names[i]);
	if (n > 8 && off < bufsz)
		snprintf(buf + off, bufsz - off, " (and %zu more)", n - 8);
}

void
zfs_compare_report(const struct zfs_ds *src, const struct zfs_ds *dst,
    const struct zfs_common *c, char *buf, size_t bufsz)
{
	const char **so, **doo;
	char a[400], b[400];
	size_t i, nso = 0, ndo = 0;

	so = xcalloc(src->nsnaps + 1, sizeof(*so));
	doo = xcalloc(dst->nsnaps + 1, sizeof(*doo));
	for (i = 0; i < src->nsnaps; i++)
		if (zfs_ds_snap_guid(dst, src->snaps[i].guid) == NULL)
			so[nso++] = src->snaps[i].name;
	for (i = 0; i < dst->nsnaps; i++)
		if (zfs_ds_snap_guid(src, dst->snaps[i].guid) == NULL)
			doo[ndo++] = dst->snaps[i].name;
	name_list(a, sizeof(a), so, nso);
	name_list(b, sizeof(b), doo, ndo);
	snprintf(buf, bufsz, "common snapshot: %s; source only: %s; "
	    "destination only: %s", c->base_d != NULL ? c->base_d->name :
	    "none", a, b);
	free(so);
	free(doo);
}

/* The parser's state: the tree and where the last line went. */
struct parse {
	struct zfs_tree	*t;
	size_t		 cap;
	size_t		 last_ds;	/* index + 1, 0 none */
	size_t		 ds_cap;	/* of the last ds's snaps */
};

static struct zfs_ds *
ds_get(struct parse *ps, const char *name, size_t len)
{
	struct zfs_tree *t = ps->t;
	struct zfs_ds *d;
	size_t i;

	/* lines come grouped by dataset: try the last one first */
	if (ps->last_ds != 0) {
		d = &t->v[ps->last_ds - 1];
		if (strlen(d->name) == len && memcmp(d->name, name, len) == 0)
			return d;
	}
	for (i = 0; i < t->n; i++)
		if (strlen(t->v[i].name) == len &&
		    memcmp(t->v[i].name, name, len) == 0)
			break;
	if (i == t->n) {
		if (t->n == ps->cap) {
			ps->cap = ps->cap ? ps->cap * 2 : 16;
			t->v = xreallocarray(t->v, ps->cap, sizeof(*t->v));
		}
		d = &t->v[t->n++];
		memset(d, 0, sizeof(*d));
		d->name = xstrndup(name, len);
		d->written = -1;
		d->mounted = -1;
		d->readonly = -1;
	}
	if (ps->last_ds != i + 1)
		ps->ds_cap = t->v[i].nsnaps;	/* exact: grows on add */
	ps->last_ds = i + 1;
	return &t->v[i];
}

static struct zfs_snap *
snap_get(struct parse *ps, struct zfs_ds *d, const char *name)
{
	size_t i;

	if (d->nsnaps > 0 && strcmp(d->snaps[d->nsnaps - 1].name, name) == 0)
		return &d->snaps[d->nsnaps - 1];
	for (i = 0; i < d->nsnaps; i++)
		if (strcmp(d->snaps[i].name, name) == 0)
			return &d->snaps[i];
	if (d->nsnaps == ps->ds_cap) {
		ps->ds_cap = ps->ds_cap ? ps->ds_cap * 2 : 8;
		d->snaps = xreallocarray(d->snaps, ps->ds_cap,
		    sizeof(*d->snaps));
	}
	memset(&d->snaps[d->nsnaps], 0, sizeof(d->snaps[0]));
	d->snaps[d->nsnaps].name = xstrdup(name);
	d->snaps[d->nsnaps].userrefs = -1;
	return &d->snaps[d->nsnaps++];
}

static int
parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return 0;
}

/* Apply one name/property/value triple. */
static int
apply_prop(struct parse *ps, const char *name, const char *prop,
    const char *value, unsigned lineno, struct as_err *err)
{
	const char *at;
	struct zfs_ds *d;
	struct zfs_snap *s = NULL;
	uint64_t v = 0;
	int dash = strcmp(value, "-") == 0, num;

	if (strchr(name, '#') != NULL)
		return 0;		/* a bookmark */
	at = strchr(name, '@');
	if (at == name || (at != NULL && at[1] == '\0') || name[0] == '\0')
		goto bad;
	d = ds_get(ps, name, at != NULL ? (size_t)(at - name) : strlen(name));
	if (at != NULL)
		s = snap_get(ps, d, at + 1);
	num = !dash && parse_u64(value, &v) == 0;
	if (strcmp(prop, "type") == 0) {
		if (s == NULL && strcmp(value, "volume") == 0)
			d->volume = 1;
	} else if (strcmp(prop, "guid") == 0) {
		if (!num)
			goto bad;
		if (s != NULL)
			s->guid = v;
		else
			d->guid = v;
	} else if (strcmp(prop, "createtxg") == 0) {
		if (!num)
			goto bad;
		if (s != NULL)
			s->createtxg = v;
	} else if (strcmp(prop, "creation") == 0) {
		if (!num)
			goto bad;
		if (s != NULL)
			s->creation = (int64_t)v;
	} else if (strcmp(prop, "userrefs") == 0) {
		if (s != NULL && num)
			s->userrefs = (int64_t)v;
	} else if (strcmp(prop, "written") == 0) {
		if (s == NULL && num)
			d->written = (int64_t)v;
	} else if (strcmp(prop, "mountpoint") == 0) {
		if (s == NULL && !dash) {
			free(d->mountpoint);
			d->mountpoint = xstrdup(value);
		}
	} else if (strcmp(prop, "canmount") == 0) {
		if (s == NULL && !dash) {
			free(d->canmount);
			d->canmount = xstrdup(value);
		}
	} else if (strcmp(prop, "mounted") == 0) {
		if (s == NULL && !dash)
			d->mounted = strcmp(value, "yes") == 0;
	} else if (strcmp(prop, "readonly") == 0) {
		if (s == NULL && !dash)
			d->readonly = strcmp(value, "on") == 0;
	} else if (strcmp(prop, "receive_resume_token") == 0) {
		if (s == NULL && !dash && value[0] != '\0') {
			free(d->resume_token);
			d->resume_token = xstrdup(value);
		}
	}
	return 0;
bad:
	return as_err_set(err, AS_E_MALFORMED, 0, "zfs output line %u: "
	    "unexpected %s '%.64s' of '%.128s'", lineno, prop, value, name);
}

static int
cmp_ds(const void *a, const void *b)
{
	return strcmp(((const struct zfs_ds *)a)->name,
	    ((const struct zfs_ds *)b)->name);
}

static int
cmp_snap(const void *a, const void *b)
{
	const struct zfs_snap *x = a, *y = b;

	if (x->createtxg != y->createtxg)
		return x->createtxg < y->createtxg ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void
tree_sort(struct zfs_tree *t)
{
	size_t i;

	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), cmp_ds);
	for (i = 0; i < t->n; i++)
		if (t->v[i].nsnaps > 1)
			qsort(t->v[i].snaps, t->v[i].nsnaps,
			    sizeof(t->v[i].snaps[0]), cmp_snap);
}

/* Split text into lines and lines into tab-separated fields. */
static int
parse_lines(const char *text, const char *columns, struct zfs_tree *t,
    struct as_err *err)
{
	struct parse ps;
	char *copy, *line, *next, *f[16], *cols, *cv[16];
	unsigned lineno = 0, nf, ncol = 0, i;
	int rc = -1;

	memset(t, 0, sizeof(*t));
	memset(&ps, 0, sizeof(ps));
	ps.t = t;
	cols = columns != NULL ? xstrdup(columns) : NULL;
	if (cols != NULL) {
		for (line = cols; line != NULL && ncol < 16; ncol++) {
			cv[ncol] = line;
			if ((line = strchr(line, ',')) != NULL)
				*line++ = '\0';
		}
		if (ncol < 2 || strcmp(cv[0], "name") != 0) {
			as_err_set(err, AS_E_INTERNAL, 0, "zfs list columns "
			    "'%s'", columns);
			free(cols);
			return -1;
		}
	}
	copy = xstrdup(text);
	for (line = copy; line != NULL && *line != '\0'; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (*line == '\0')
			continue;
		for (nf = 0, f[0] = line; nf < 16; ) {
			char *tab = strchr(f[nf], '\t');

			nf++;
			if (tab == NULL)
				break;
			*tab = '\0';
			if (nf < 16)
				f[nf] = tab + 1;
		}
		if (cols == NULL) {
			if (nf != 3) {
				as_err_set(err, AS_E_MALFORMED, 0, "zfs get "
				    "output line %u: %u fields, expected 3",
				    lineno, nf);
				goto out;
			}
			if (apply_prop(&ps, f[0], f[1], f[2], lineno,
			    err) == -1)
				goto out;
			continue;
		}
		if (nf != ncol) {
			as_err_set(err, AS_E_MALFORMED, 0, "zfs list output "
			    "line %u: %u fields, expected %u", lineno, nf,
			    ncol);
			goto out;
		}
		for (i = 1; i < ncol; i++)
			if (apply_prop(&ps, f[0], cv[i], f[i], lineno,
			    err) == -1)
				goto out;
	}
	tree_sort(t);
	rc = 0;
out:
	if (rc == -1)
		zfs_tree_release(t);
	free(copy);
	free(cols);
	return rc;
}

int
zfs_parse_get(const char *text, struct zfs_tree *t, struct as_err *err)
{
	return parse_lines(text, NULL, t, err);
}

int
zfs_parse_list(const char *text, const char *columns, struct zfs_tree *t,
    struct as_err *err)
{
	return parse_lines(text, columns, t, err);
}

/* Drop every dataset but name from t (a -d 1 listing holds children). */
static void
keep_only(struct zfs_tree *t, const char *name)
{
	struct zfs_tree one;
	size_t j, k = 0;

	for (j = 0; j < t->n; j++) {
		if (strcmp(t->v[j].name, name) == 0 && k == 0) {
			struct zfs_ds tmp = t->v[0];

			t->v[0] = t->v[j];
			t->v[j] = tmp;
			k = 1;
		}
	}
	/* release v[k..n) by handing them to a tree of their own */
	one.v = t->v + k;
	one.n = t->n - k;
	for (j = 0; j < one.n; j++) {
		size_t i;

		for (i = 0; i < one.v[j].nsnaps; i++)
			free(one.v[j].snaps[i].name);
		free(one.v[j].snaps);
		free(one.v[j].name);
		free(one.v[j].mountpoint);
		free(one.v[j].canmount);
		free(one.v[j].resume_token);
	}
	t->n = k;
}

int
zfs_list(const char *root, int recursive, struct zfs_tree *t,
    struct as_err *err)
{
	const struct zfs_caps *c;
	const char *argv[16];
	char props[256], cols[300], what[ZFS_NAME_MAX + 32], *out = NULL;
	char *errtxt = NULL;
	int i = 0, status, rc;

	memset(t, 0, sizeof(*t));
	if ((c = zfs_caps(err)) == NULL)
		return -1;
	snprintf(props, sizeof(props), "type,guid,createtxg,creation,"
	    "userrefs,mountpoint,canmount,mounted,readonly%s%s",
	    c->written ? ",written" : "",
	    c->recv_s ? ",receive_resume_token" : "");
	argv[i++] = "zfs";
	if (c->list_p) {
		/* one line per dataset: the cheaper listing */
		snprintf(cols, sizeof(cols), "name,%s", props);
		argv[i++] = "list";
		argv[i++] = "-H";
		argv[i++] = "-p";
		argv[i++] = "-t";
		argv[i++] = "filesystem,volume,snapshot";
		argv[i++] = "-o";
		argv[i++] = cols;
	} else {
		argv[i++] = "get";
		argv[i++] = "-H";
		argv[i++] = "-p";
		argv[i++] = "-o";
		argv[i++] = "name,property,value";
		argv[i++] = props;
	}
	/* -d 1: the dataset and its snapshots (and children, dropped) */
	argv[i++] = recursive ? "-r" : "-d";
	if (!recursive)
		argv[i++] = "1";
	argv[i++] = root;
	argv[i] = NULL;
	if (zfs_exec(argv, -1, &out, &errtxt, &status, err) == -1)
		return -1;
	snprintf(what, sizeof(what), "list '%s'", root);
	if (status != 0) {
		if (zfs_classify(errtxt) == AS_E_NOTFOUND &&
		    strstr(errtxt, root) != NULL)
			rc = 0;		/* no such dataset: empty */
		else
			rc = cmd_error(err, what, errtxt, status);
		goto out;
	}
	rc = c->list_p ? zfs_parse_list(out, cols, t, err) :
	    zfs_parse_get(out, t, err);
	if (rc == -1) {
		as_err_prefix(err, "%s", what);
		goto out;
	}
	if (!recursive)
		keep_only(t, root);
out:
	free(out);
	free(errtxt);
	return rc;
}

int
zfs_list_held(const char *root, char ***out, size_t *n, struct as_err *err)
{
	struct zfs_tree t;
	size_t i, j, cap = 0;

	*out = NULL;
	*n = 0;
	if (zfs_list(root, 1, &t, err) == -1)
		return -1;
	for (i = 0; i < t.n; i++)
		for (j = 0; j < t.v[i].nsnaps; j++) {
			if (t.v[i].snaps[j].userrefs <= 0)
				continue;
			if (*n == cap) {
				cap = cap ? cap * 2 : 8;
				*out = xreallocarray(*out, cap, sizeof(**out));
			}
			(*out)[(*n)++] = xasprintf("%s@%s", t.v[i].name,
			    t.v[i].snaps[j].name);
		}
	zfs_tree_release(&t);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Snapshots, properties, holds */

int
zfs_snapshot(const char *ds, const char *name, int recursive,
    struct as_err *err)
{
	const char *argv[6];
	char *full, what[ZFS_NAME_MAX * 2 + 32];
	int i = 0, rc;

	full = xasprintf("%s@%s", ds, name);
	argv[i++] = "zfs";
	argv[i++] = "snapshot";
	if (recursive)
		argv[i++] = "-r";
	argv[i++] = full;
	argv[i] = NULL;
	snprintf(what, sizeof(what), "snapshot '%s'", full);
	rc = zfs_run(what, argv, -1, NULL, err);
	free(full);
	return rc;
}

int
zfs_destroy_snapshot(const char *ds, const char *name, int recursive,
    int any_name, struct as_err *err)
{
	const char *argv[5];
	char *full, what[ZFS_NAME_MAX * 2 + 32];
	int rc, i = 0;

	if (!any_name && strncmp(name, "autosync_", 9) != 0)
		return as_err_set(err, AS_E_INTERNAL, 0, "refusing to destroy "
		    "'%s@%s': autosync did not create it", ds, name);
	if (strchr(ds, '@') != NULL || name[0] == '\0')
		return as_err_set(err, AS_E_INTERNAL, 0, "destroy: bad "
		    "snapshot '%s@%s'", ds, name);
	full = xasprintf("%s@%s", ds, name);
	argv[i++] = "zfs";
	argv[i++] = "destroy";
	if (recursive)
		argv[i++] = "-r";
	argv[i++] = full;
	argv[i] = NULL;
	snprintf(what, sizeof(what), "destroy '%s'", full);
	rc = zfs_run(what, argv, -1, NULL, err);
	free(full);
	return rc;
}

int
zfs_txg_sync(const char *ds, struct as_err *err)
{
	const char *argv[] = { "zfs", "inherit", ZFS_SYNC_PROP, ds, NULL };
	char what[ZFS_NAME_MAX + 32];

	snprintf(what, sizeof(what), "sync the pool of '%s'", ds);
	return zfs_run(what, argv, -1, NULL, err);
}

int
zfs_rollback(const char *ds, const char *name, struct as_err *err)
{
	const char *argv[5];
	char *full, what[ZFS_NAME_MAX * 2 + 32];
	int rc;

	full = xasprintf("%s@%s", ds, name);
	argv[0] = "zfs";
	argv[1] = "rollback";
	argv[2] = "-r";
	argv[3] = full;
	argv[4] = NULL;
	snprintf(what, sizeof(what), "roll back to '%s'", full);
	rc = zfs_run(what, argv, -1, NULL, err);
	free(full);
	return rc;
}

static int
hold_cmd(const char *verb, const char *ds, const char *name, int recursive,
    struct as_err *err)
{
	const char *argv[6];
	char *full, what[ZFS_NAME_MAX * 2 + 32];
	int rc, i = 0;

	full = xasprintf("%s@%s", ds, name);
	argv[i++] = "zfs";
	argv[i++] = verb;
	if (recursive)
		argv[i++] = "-r";
	argv[i++] = ZFS_HOLD_TAG;
	argv[i++] = full;
	argv[i] = NULL;
	snprintf(what, sizeof(what), "%s '%s'", verb, full);
	rc = zfs_run(what, argv, -1, NULL, err);
	free(full);
	return rc;
}

int
zfs_hold(const char *ds, const char *name, int recursive, struct as_err *err)
{
	return hold_cmd("hold", ds, name, recursive, err);
}

int
zfs_release(const char *ds, const char *name, int recursive,
    struct as_err *err)
{
	return hold_cmd("release", ds, name, recursive, err);
}

int
zfs_get(const char *ds, const char *prop, char **value, struct as_err *err)
{
	const char *argv[] = { "zfs", "get", "-H", "-p", "-o", "value", prop,
	    ds, NULL };
	char what[ZFS_NAME_MAX + 64];
	size_t n;

	snprintf(what, sizeof(what), "get %s of '%s'", prop, ds);
	if (zfs_run(what, argv, -1, value, err) == -1)
		return -1;
	n = strlen(*value);
	while (n > 0 && (*value)[n - 1] == '\n')
		(*value)[--n] = '\0';
	return 0;
}

int
zfs_set(const char *ds, const char *prop, const char *value,
    struct as_err *err)
{
	const char *argv[5];
	char *pv, what[ZFS_NAME_MAX + 600];
	int rc;

	pv = xasprintf("%s=%s", prop, value);
	argv[0] = "zfs";
	argv[1] = "set";
	argv[2] = pv;
	argv[3] = ds;
	argv[4] = NULL;
	snprintf(what, sizeof(what), "set %s on '%s'", pv, ds);
	rc = zfs_run(what, argv, -1, NULL, err);
	free(pv);
	return rc;
}

/* Set prop=value unless it already is (saves a command, and a remount). */
static int
ensure(const char *ds, const char *prop, const char *value,
    struct as_err *err)
{
	char *cur = NULL;
	int rc;

	if (zfs_get(ds, prop, &cur, err) == -1)
		return -1;
	rc = strcmp(cur, value) == 0 ? 0 : zfs_set(ds, prop, value, err);
	free(cur);
	return rc;
}

static int
is_mounted(const char *ds, struct as_err *err)
{
	char *v = NULL;
	int m;

	if (zfs_get(ds, "mounted", &v, err) == -1)
		return -1;
	m = strcmp(v, "yes") == 0;
	free(v);
	return m;
}

/*
 * Unmount ds (if mounted) and run argv (NULL: nothing more), retrying
 * for up to 10 s while the file system is busy: zfs-fuse releases a
 * mount's last handles a moment after the reader closed them (seconds,
 * on a loaded machine).
 */
static int
retry_busy(const char *what, const char *const argv[], const char *ds,
    struct as_err *err)
{
	const char *um[] = { "zfs", "unmount", ds, NULL };
	char uwhat[ZFS_NAME_MAX + 32];
	int i, m, rc = -1;

	snprintf(uwhat, sizeof(uwhat), "unmount '%s'", ds);
	for (i = 0; i < 50; i++) {
		if (i > 0)
			usleep(200000);
		if ((m = is_mounted(ds, err)) == -1)
			return -1;
		if (m == 1 && zfs_run(uwhat, um, -1, NULL, err) == -1) {
			if (err != NULL && err->code == AS_E_CONFLICT)
				continue;
			return -1;
		}
		if (argv == NULL)
			return 0;
		rc = zfs_run(what, argv, -1, NULL, err);
		if (rc == 0 || err == NULL || err->code != AS_E_CONFLICT)
			return rc;
	}
	return -1;
}

int
zfs_unmount(const char *ds, struct as_err *err)
{
	return retry_busy(NULL, NULL, ds, err);
}

int
zfs_mount_ro(const char *ds, const char *mountpoint, struct as_err *err)
{
	const char *argv[] = { "zfs", "mount", ds, NULL };
	char what[ZFS_NAME_MAX + 32], *mp = NULL;
	int m;

	if (mountpoint != NULL && (mountpoint[0] != '/' ||
	    strstr(mountpoint, "/../") != NULL))
		return as_err_set(err, AS_E_USAGE, 0, "mount '%s': mount point "
		    "'%s' is not an absolute path", ds, mountpoint);
	if (ensure(ds, "readonly", "on", err) == -1 ||
	    ensure(ds, "canmount", "noauto", err) == -1)
		return -1;
	if (mountpoint != NULL) {
		if ((m = is_mounted(ds, err)) == -1)
			return -1;
		if (ensure(ds, "mountpoint", mountpoint, err) == -1)
			return -1;
	} else {
		if (zfs_get(ds, "mountpoint", &mp, err) == -1)
			return -1;
		m = strcmp(mp, "none") == 0 || strcmp(mp, "legacy") == 0;
		free(mp);
		if (m)
			return as_err_set(err, AS_E_USAGE, 0, "mount '%s': its "
			    "mountpoint is none or legacy; give a mount point",
			    ds);
	}
	if ((m = is_mounted(ds, err)) != 0)
		return m == -1 ? -1 : 0;
	snprintf(what, sizeof(what), "mount '%s'", ds);
	return zfs_run(what, argv, -1, NULL, err);
}

int
zfs_mount_tree_ro(const char *root, const char *mountpoint,
    struct as_err *err)
{
	struct zfs_tree t;
	size_t i;
	int rc = 0;

	if (zfs_list(root, 1, &t, err) == -1)
		return -1;
	if (t.n == 0 || strcmp(t.v[0].name, root) != 0) {
		zfs_tree_release(&t);
		return as_err_set(err, AS_E_NOTFOUND, 0, "mount '%s': dataset "
		    "does not exist", root);
	}
	rc = zfs_mount_ro(root, mountpoint, err);
	for (i = 1; i < t.n && rc == 0; i++) {
		struct as_err e2;

		if (t.v[i].volume)
			continue;
		/*
		 * A child whose mount point is missing from its read-only
		 * parent (a child the source has dropped) cannot be mounted:
		 * the rest of the replica still can.
		 */
		as_err_clear(&e2);
		if (zfs_mount_ro(t.v[i].name, NULL, &e2) == -1)
			log_warn("%s", e2.msg);
	}
	zfs_tree_release(&t);
	return rc;
}

int
zfs_unmount_tree(const char *root, struct as_err *err)
{
	struct zfs_tree t;
	size_t i;
	int rc = 0;

	if (zfs_list(root, 1, &t, err) == -1)
		return -1;
	for (i = t.n; i-- > 0 && rc == 0; )
		if (!t.v[i].volume && t.v[i].mounted != 0)
			rc = zfs_unmount(t.v[i].name, err);
	zfs_tree_release(&t);
	return rc;
}

int
zfs_clone(const char *snap, const char *ds, const char *mountpoint,
    struct as_err *err)
{
	const char *argv[12];
	char *mp, what[ZFS_NAME_MAX * 2 + 32];
	int rc, m;

	mp = xasprintf("mountpoint=%s", mountpoint);
	argv[0] = "zfs";
	argv[1] = "clone";
	argv[2] = "-o";
	argv[3] = "canmount=noauto";
	argv[4] = "-o";
	argv[5] = "readonly=on";
	argv[6] = "-o";
	argv[7] = mp;
	argv[8] = snap;
	argv[9] = ds;
	argv[10] = NULL;
	snprintf(what, sizeof(what), "clone '%s' as '%s'", snap, ds);
	rc = zfs_run(what, argv, -1, NULL, err);
	free(mp);
	if (rc == -1)
		return -1;
	/* zfs-fuse mounts a new clone even with canmount=noauto */
	if ((m = is_mounted(ds, err)) == 1)
		return 0;
	argv[0] = "zfs";
	argv[1] = "mount";
	argv[2] = ds;
	argv[3] = NULL;
	snprintf(what, sizeof(what), "mount '%s'", ds);
	if (m == -1 || zfs_run(what, argv, -1, NULL, err) == -1) {
		struct as_err e2;

		(void)zfs_destroy_clone(ds, &e2);
		return -1;
	}
	return 0;
}

int
zfs_destroy_clone(const char *ds, struct as_err *err)
{
	const char *argv[] = { "zfs", "destroy", ds, NULL };
	char what[ZFS_NAME_MAX + 32], *origin = NULL;
	int is_clone;

	if (zfs_get(ds, "origin", &origin, err) == -1)
		return -1;
	is_clone = strcmp(origin, "-") != 0 && origin[0] != '\0';
	free(origin);
	if (!is_clone)
		return as_err_set(err, AS_E_CONFLICT, 0, "refusing to destroy "
		    "'%s': it is not a clone", ds);
	snprintf(what, sizeof(what), "destroy clone '%s'", ds);
	return retry_busy(what, argv, ds, err);
}

/* ------------------------------------------------------------------ */
/* Send and receive */

int
zfs_send_block_flags(const struct zfs_caps *c)
{
	return (c->send_L ? ZFS_SEND_LARGE : 0) |
	    (c->send_e ? ZFS_SEND_EMBED : 0) |
	    (c->send_c ? ZFS_SEND_COMPRESSED : 0);
}

size_t
zfs_send_argv(const char *snap, const char *base, int flags,
    const char **argv)
{
	size_t i = 0;

	argv[i++] = "zfs";
	argv[i++] = "send";
	if (flags & ZFS_SEND_PROPS)
		argv[i++] = "-p";
	if (flags & ZFS_SEND_LARGE)
		argv[i++] = "-L";
	if (flags & ZFS_SEND_EMBED)
		argv[i++] = "-e";
	if (flags & ZFS_SEND_COMPRESSED)
		argv[i++] = "-c";
	if (base != NULL) {
		argv[i++] = flags & ZFS_SEND_INTERMEDIATE ? "-I" : "-i";
		argv[i++] = base;
	}
	argv[i++] = snap;
	argv[i] = NULL;
	return i;
}

int
zfs_send_start(struct zfs_proc *p, const char *snap, const char *base,
    int flags, int out_fd, struct as_err *err)
{
	const char *argv[ZFS_SEND_ARGV];
	char what[ZFS_NAME_MAX * 2 + 32];

	(void)zfs_send_argv(snap, base, flags, argv);
	snprintf(what, sizeof(what), "send '%s'", snap);
	return zfs_proc_start(p, what, argv, -1, out_fd, err);
}

int
zfs_receive_start(struct zfs_proc *p, const char *ds, int flags, int in_fd,
    struct as_err *err)
{
	const struct zfs_caps *c;
	const char *argv[16];
	char what[ZFS_NAME_MAX + 32];
	int i = 0;

	if ((c = zfs_caps(err)) == NULL)
		return -1;
	argv[i++] = "zfs";
	argv[i++] = "receive";
	if (c->recv_u)
		argv[i++] = "-u";
	else
		zfs_caps_note("recv_u", "this zfs has no 'receive -u': "
		    "received datasets may be mounted by the receive");
	if (flags & ZFS_RECV_FORCE)
		argv[i++] = "-F";
	if (c->recv_o && c->recv_x) {
		argv[i++] = "-o";
		argv[i++] = "canmount=noauto";
		argv[i++] = "-o";
		argv[i++] = "readonly=on";
		argv[i++] = "-x";
		argv[i++] = "mountpoint";
	}
	argv[i++] = ds;
	argv[i] = NULL;
	snprintf(what, sizeof(what), "receive '%s'", ds);
	return zfs_proc_start(p, what, argv, in_fd, -1, err);
}

/*
 * canmount=noauto and readonly=on on ds by two `zfs set` at once: a zfs
 * without `receive -o` (zfs-fuse) takes one property per `set`, and each
 * command is a round trip to the daemon (about 30 ms on zfs-fuse), which
 * after a full receive was most of what a wrapped transfer costs over
 * the raw pipe.  The two properties are independent, so the order in
 * which they land does not matter; the first failure is reported.
 */
static int
set_policy(const char *ds, struct as_err *err)
{
	static const char *const pv[2] = { "canmount=noauto", "readonly=on" };
	const char *argv[2][5];
	char what[2][ZFS_NAME_MAX + 64];
	struct zfs_proc p[2];
	struct as_err e;
	int k, started = 0, rc = 0;

	for (k = 0; k < 2; k++) {
		argv[k][0] = "zfs";
		argv[k][1] = "set";
		argv[k][2] = pv[k];
		argv[k][3] = ds;
		argv[k][4] = NULL;
		snprintf(what[k], sizeof(what[k]), "set %s on '%s'", pv[k], ds);
		if (zfs_proc_start(&p[k], what[k], argv[k], -1, -1, err) ==
		    -1) {
			rc = -1;
			break;
		}
		started++;
	}
	for (k = 0; k < started; k++) {
		as_err_clear(&e);
		if (zfs_proc_finish(&p[k], &e) == -1 && rc == 0) {
			if (err != NULL)
				*err = e;
			rc = -1;
		}
	}
	return rc;
}

int
zfs_receive_policy(const char *ds, int known, struct as_err *err)
{
	if (known)
		return set_policy(ds, err);
	if (ensure(ds, "canmount", "noauto", err) == -1 ||
	    ensure(ds, "readonly", "on", err) == -1)
		return -1;
	return 0;
}

int
zfs_send(const char *snap, const char *base, int flags, int out_fd,
    struct as_err *err)
{
	struct zfs_proc p;

	if (zfs_send_start(&p, snap, base, flags, out_fd, err) == -1)
		return -1;
	return zfs_proc_finish(&p, err);
}

int
zfs_receive(const char *ds, int flags, int in_fd, struct as_err *err)
{
	struct zfs_proc p;
	int rc;

	rc = zfs_receive_start(&p, ds, flags, in_fd, err);
	close(in_fd);
	if (rc == -1)
		return -1;
	if (zfs_proc_finish(&p, err) == -1)
		return -1;
	return zfs_receive_policy(ds, 0, err);
}

/* ------------------------------------------------------------------ */
/* Resume tokens */

#define TOKEN_MAX	(1u << 20)

static int
all_hex(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

int
zfs_token_check(const char *token, struct as_err *err)
{
	const char *p[4], *e;
	size_t len[4], n = strlen(token), i;
	uint64_t packed;
	char num[20];

	if (n > TOKEN_MAX)
		return as_err_set(err, AS_E_LIMIT, 0, "resume token of %zu "
		    "bytes (max %u)", n, TOKEN_MAX);
	p[0] = token;
	for (i = 0; i < 4; i++) {
		e = i < 3 ? strchr(p[i], '-') : p[i] + strlen(p[i]);
		if (e == NULL)
			return as_err_set(err, AS_E_MALFORMED, 0,
			    "resume token: %zu fields, expected 4", i + 1);
		len[i] = (size_t)(e - p[i]);
		if (!all_hex(p[i], len[i]))
			return as_err_set(err, AS_E_MALFORMED, 0,
			    "resume token: field %zu is not hexadecimal", i + 1);
		if (i < 3)
			p[i + 1] = e + 1;
	}
	if (len[0] != 1 || p[0][0] != '1')
		return as_err_set(err, AS_E_UNSUPPORTED, 0, "resume token "
		    "version '%.*s' (only 1 is known)", (int)len[0], p[0]);
	if (len[1] > 16 || len[2] > 16)
		return as_err_set(err, AS_E_MALFORMED, 0, "resume token: "
		    "checksum or length field too long");
	memcpy(num, p[2], len[2]);
	num[len[2]] = '\0';
	packed = strtoull(num, NULL, 16);
	/* the compressed nvlist: whole bytes, not absurdly larger than the
	 * packed size it inflates to (zlib adds a few bytes at worst) */
	if (len[3] % 2 != 0 || packed == 0 || packed > TOKEN_MAX ||
	    len[3] / 2 > packed + 64)
		return as_err_set(err, AS_E_MALFORMED, 0, "resume token: "
		    "%zu data bytes for a %" PRIu64 "-byte list", len[3] / 2,
		    packed);
	return 0;
}

int
zfs_token_parse(const char *text, uint64_t *toguid, uint64_t *fromguid,
    char **toname, struct as_err *err)
{
	const char *p, *e, *v;
	char key[32], val[ZFS_NAME_MAX + 1];
	int have_to = 0, have_name = 0;
	size_t kl, vl;
	char *end;

	*toguid = *fromguid = 0;
	*toname = NULL;
	if (strstr(text, "resume token is corrupt") != NULL)
		return as_err_set(err, AS_E_MALFORMED, 0, "resume token is "
		    "corrupt");
	if ((p = strstr(text, "resume token contents:")) == NULL)
		return as_err_set(err, AS_E_UNSUPPORTED, 0, "zfs send -nv -t "
		    "printed no resume token contents");
	for (; *p != '\0'; p = *e != '\0' ? e + 1 : e) {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		/* "\tkey = value" */
		if (*p != '\t' || (v = strstr(p, " = ")) == NULL || v > e)
			continue;
		kl = (size_t)(v - p - 1);
		vl = (size_t)(e - v - 3);
		if (kl == 0 || kl >= sizeof(key) || vl >= sizeof(val))
			continue;
		memcpy(key, p + 1, kl);
		key[kl] = '\0';
		memcpy(val, v + 3, vl);
		val[vl] = '\0';
		if (strcmp(key, "toguid") == 0 ||
		    strcmp(key, "fromguid") == 0) {
			uint64_t g;

			errno = 0;
			g = strtoull(val, &end, 0);
			if (errno != 0 || *end != '\0' || end == val)
				return as_err_set(err, AS_E_MALFORMED, 0,
				    "resume token: %s '%s'", key, val);
			if (key[0] == 't') {
				*toguid = g;
				have_to = 1;
			} else
				*fromguid = g;
		} else if (strcmp(key, "toname") == 0) {
			if (zfs_name_check(val, 1, err) == -1)
				return as_err_prefix(err, "resume token");
			free(*toname);
			*toname = xstrdup(val);
			have_name = 1;
		}
	}
	if (!have_to || !have_name) {
		free(*toname);
		*toname = NULL;
		return as_err_set(err, AS_E_MALFORMED, 0, "resume token: no "
		    "%s", have_to ? "toname" : "toguid");
	}
	return 0;
}
