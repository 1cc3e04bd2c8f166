/* btrfs.c - the btrfs driver; see btrfs.h. */
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/magic.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/proc.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "driver/btrfs.h"
#include "base/banned.h"

#define BTRFS_ARGV_MAX	16
#define BTRFS_OUT_MAX	(16u << 20)	/* bound on captured output */
#define SUBVOL_INO	256		/* BTRFS_FIRST_FREE_OBJECTID */
#define AUTO_PREFIX	"autosync_"
#define PUB_MAGIC	"autosync-btrfs-published-v1"

struct btrfs_proc {
	pid_t	pid;
	int	err_fd;		/* memfd holding the child's stderr */
	int	out_fd;		/* memfd holding its stdout, or -1 */
	char	line[1024];	/* the command, for the log */
	char	what[64];	/* "btrfs receive": for messages */
};

/* ------------------------------------------------------------------ */
/* Parsers */

/*
 * Known stderr texts (btrfs-progs 6.2; older releases say the same) and
 * their classes.  Matched case-insensitively as substrings, first match
 * wins; each is pinned by a test in tests/unit/t_btrfs.c.
 */
static const struct {
	const char	*text;
	enum as_errcode	 code;
} err_map[] = {
	{ "No space left on device",		AS_E_NOSPACE },
	{ "Disk quota exceeded",		AS_E_NOSPACE },
	{ "unexpected EOF in stream",		AS_E_TRUNCATED },
	{ "short read from stream",		AS_E_TRUNCATED },
	{ "crc32 mismatch",			AS_E_CHECKSUM },
	{ "unexpected header",			AS_E_MALFORMED },
	{ "empty stream is not considered valid", AS_E_MALFORMED },
	{ "cannot find parent subvolume",	AS_E_CONFLICT },
	{ "cannot flip ro->rw with received_uuid set", AS_E_CONFLICT },
	{ "File exists",			AS_E_CONFLICT },
	{ "Directory not empty",		AS_E_CONFLICT },
	{ "Invalid cross-device link",		AS_E_USAGE },
	{ "Not a Btrfs subvolume",		AS_E_NOTFOUND },
	{ "not a btrfs filesystem",		AS_E_NOTFOUND },
	{ "No such file or directory",		AS_E_NOTFOUND },
};

enum as_errcode
btrfs_errcode(const char *text)
{
	size_t i;

	if (text == NULL)
		return AS_E_IO;
	for (i = 0; i < sizeof(err_map) / sizeof(err_map[0]); i++)
		if (strcasestr(text, err_map[i].text) != NULL)
			return err_map[i].code;
	return AS_E_IO;
}

/* "-" or a 36-character UUID into out; -1 otherwise. */
static int
parse_uuid(const char *s, size_t len, char *out)
{
	size_t i;

	if (len == 1 && s[0] == '-') {
		out[0] = '\0';
		return 0;
	}
	if (len != BTRFS_UUID_LEN)
		return -1;
	for (i = 0; i < len; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -1;
		} else if (!isxdigit((unsigned char)s[i]))
			return -1;
	}
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

static int
parse_u64(const char *s, size_t len, uint64_t *v)
{
	char buf[32], *end;

	if (len == 0 || len >= sizeof(buf) || !isdigit((unsigned char)s[0]))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	*v = strtoull(buf, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

void
btrfs_subvol_release(struct btrfs_subvol *sv)
{
	if (sv == NULL)
		return;
	free(sv->path);
	sv->path = NULL;
}

/*
 * The first line is the path; then "\tKey: \t\tvalue" lines.  Lines
 * indented deeper (the snapshot list) and unknown keys are skipped.
 */
int
btrfs_parse_show(const char *text, struct btrfs_subvol *out,
    struct as_err *err)
{
	struct btrfs_subvol sv;
	const char *p, *nl, *colon, *v, *ve;
	size_t klen, vlen;
	int have = 0, bad = 0;
	uint64_t *num;

	memset(&sv, 0, sizeof(sv));
	nl = strchr(text, '\n');
	if (nl == NULL || nl == text)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "btrfs subvolume show: no path line");
	sv.path = xstrndup(text, (size_t)(nl - text));
	for (p = nl + 1; *p != '\0' && !bad; p = *nl == '\0' ? nl : nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if (p[0] != '\t' || p[1] == '\t')
			continue;
		p++;
		colon = memchr(p, ':', (size_t)(nl - p));
		if (colon == NULL)
			continue;
		klen = (size_t)(colon - p);
		for (v = colon + 1; v < nl && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = nl; ve > v && (ve[-1] == ' ' || ve[-1] == '\t' ||
		    ve[-1] == '\r'); ve--)
			;
		vlen = (size_t)(ve - v);
		num = NULL;
#define KEY(k) (klen == sizeof(k) - 1 && strncasecmp(p, k, klen) == 0)
		if (KEY("Name")) {
			if (vlen > BTRFS_NAME_MAX)
				bad = 1;
			else {
				memcpy(sv.name, v, vlen);
				sv.name[vlen] = '\0';
				have |= 1;
			}
		} else if (KEY("UUID")) {
			bad = parse_uuid(v, vlen, sv.uuid) == -1;
			have |= 2;
		} else if (KEY("Parent UUID"))
			bad = parse_uuid(v, vlen, sv.parent_uuid) == -1;
		else if (KEY("Received UUID"))
			bad = parse_uuid(v, vlen, sv.received_uuid) == -1;
		else if (KEY("Subvolume ID")) {
			num = &sv.id;
			have |= 4;
		} else if (KEY("Generation"))
			num = &sv.generation;
		else if (KEY("Gen at creation"))
			num = &sv.otransid;
		else if (KEY("Parent ID"))
			num = &sv.parent_id;
		else if (KEY("Top level ID"))
			num = &sv.top_level;
		else if (KEY("Flags"))
			sv.readonly = vlen >= 8 && memmem(v, vlen, "readonly",
			    8) != NULL;
#undef KEY
		if (num != NULL && parse_u64(v, vlen, num) == -1)
			bad = 1;
	}
	if (bad || have != 7) {
		btrfs_subvol_release(&sv);
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "btrfs subvolume show: %s", bad ? "a malformed field" :
		    "Name, UUID or Subvolume ID missing");
	}
	*out = sv;
	return 0;
}

void
btrfs_list_free(struct btrfs_list_ent *v, size_t n)
{
	size_t i;

	for (i = 0; i < n && v != NULL; i++)
		free(v[i].path);
	free(v);
}

/* The value after "key " at *p, up to the next space; advances *p. */
static int
list_field(const char **p, const char *key, const char **v, size_t *vlen)
{
	size_t kl = strlen(key);
	const char *e;

	if (strncmp(*p, key, kl) != 0 || (*p)[kl] != ' ')
		return -1;
	for (*v = *p + kl; **v == ' '; (*v)++)
		;
	e = strchr(*v, ' ');
	if (e == NULL)
		return -1;
	*vlen = (size_t)(e - *v);
	/* "-" UUIDs are padded to the width of a UUID */
	while (*e == ' ')
		e++;
	*p = e;
	return 0;
}

/*
 * "ID 257 gen 8 top level 256 parent_uuid - received_uuid - uuid U
 * path P": the fields before "path" in that order (-u -q -R add the
 * UUIDs); the path is the rest of the line.
 */
int
btrfs_parse_list(const char *text, struct btrfs_list_ent **out, size_t *nout,
    struct as_err *err)
{
	struct btrfs_list_ent *v = NULL, e;
	const char *p, *nl, *f;
	size_t n = 0, fl;
	int ok;

	for (p = text; *p != '\0'; p = *nl == '\0' ? nl : nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if (nl == p)
			continue;
		memset(&e, 0, sizeof(e));
		ok = list_field(&p, "ID", &f, &fl) == 0 &&
		    parse_u64(f, fl, &e.id) == 0 &&
		    list_field(&p, "gen", &f, &fl) == 0 &&
		    parse_u64(f, fl, &e.gen) == 0 &&
		    list_field(&p, "top level", &f, &fl) == 0 &&
		    parse_u64(f, fl, &e.top_level) == 0;
		if (ok && strncmp(p, "parent_uuid ", 12) == 0)
			ok = list_field(&p, "parent_uuid", &f, &fl) == 0 &&
			    parse_uuid(f, fl, e.parent_uuid) == 0;
		if (ok && strncmp(p, "received_uuid ", 14) == 0)
			ok = list_field(&p, "received_uuid", &f, &fl) == 0 &&
			    parse_uuid(f, fl, e.received_uuid) == 0;
		if (ok && strncmp(p, "uuid ", 5) == 0)
			ok = list_field(&p, "uuid", &f, &fl) == 0 &&
			    parse_uuid(f, fl, e.uuid) == 0;
		/* the path: the rest of the line, never empty */
		if (!ok || strncmp(p, "path ", 5) != 0 || p + 5 >= nl) {
			btrfs_list_free(v, n);
			return as_err_set(err, AS_E_MALFORMED, 0,
			    "btrfs subvolume list: malformed line %zu", n + 1);
		}
		e.path = xstrndup(p + 5, (size_t)(nl - p - 5));
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = e;
	}
	*out = v;
	*nout = n;
	return 0;
}

int
btrfs_enc_rel(const char *rel, char *out, size_t outsz, struct as_err *err)
{
	size_t o = 0;
	const char *p;

	for (p = rel; *p != '\0'; p++) {
		if (o + 4 > outsz || o + 3 > BTRFS_NAME_MAX)
			return as_err_set(err, AS_E_LIMIT, 0, "nested subvolume "
			    "path '%s' is too long to name its snapshots", rel);
		if (*p == '%' || *p == '/') {
			out[o++] = '%';
			out[o++] = '2';
			out[o++] = *p == '%' ? '5' : 'F';
		} else
			out[o++] = *p;
	}
	if (o == 0 || o >= outsz)
		return as_err_set(err, AS_E_LIMIT, 0, "bad nested subvolume "
		    "path '%s'", rel);
	out[o] = '\0';
	return 0;
}

/* ------------------------------------------------------------------ */
/* Running btrfs */

static int
read_memfd(int fd, char **out, struct as_err *err)
{
	struct stat st;
	char *buf;
	ssize_t n;

	if (fstat(fd, &st) == -1)
		return as_err_sys(err, errno, "stat btrfs output");
	if ((uint64_t)st.st_size > BTRFS_OUT_MAX)
		return as_err_set(err, AS_E_LIMIT, 0, "btrfs printed %jd "
		    "bytes (max %u)", (intmax_t)st.st_size, BTRFS_OUT_MAX);
	buf = xmalloc((size_t)st.st_size + 1);
	n = io_pread_full(fd, buf, (size_t)st.st_size, 0);
	if (n < 0) {
		free(buf);
		return as_err_sys(err, errno, "read btrfs output");
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}

/*
 * Spawn btrfs with args; stdin in_fd (-1: /dev/null), stdout out_fd (-1:
 * a memfd kept in p->out_fd when capture, else /dev/null).  in_fd and
 * out_fd are closed here in every case.
 */
static struct btrfs_proc *
spawn(const char *const *args, int in_fd, int out_fd, int capture,
    struct as_err *err)
{
	const char *argv[BTRFS_ARGV_MAX + 2];
	struct btrfs_proc *p;
	size_t i, off;
	pid_t parent;
	int nul = -1, e;

	p = xcalloc(1, sizeof(*p));
	p->err_fd = p->out_fd = -1;
	argv[0] = "btrfs";
	for (i = 0; args[i] != NULL; i++) {
		if (i == BTRFS_ARGV_MAX)
			fatal("btrfs: too many arguments");
		argv[i + 1] = args[i];
	}
	argv[i + 1] = NULL;
	for (i = 0, off = 0; argv[i] != NULL && off < sizeof(p->line); i++)
		off += (size_t)snprintf(p->line + off, sizeof(p->line) - off,
		    "%s%s", i > 0 ? " " : "", argv[i]);
	snprintf(p->what, sizeof(p->what), "btrfs %s%s%s", args[0],
	    args[1] != NULL && (strcmp(args[0], "subvolume") == 0 ||
	    strcmp(args[0], "property") == 0) ? " " : "",
	    args[1] != NULL && (strcmp(args[0], "subvolume") == 0 ||
	    strcmp(args[0], "property") == 0) ? args[1] : "");
	if ((p->err_fd = memfd_create("btrfs-stderr", MFD_CLOEXEC)) == -1 ||
	    (capture && (p->out_fd = memfd_create("btrfs-stdout",
	    MFD_CLOEXEC)) == -1) ||
	    (nul = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1) {
		as_err_sys(err, errno, "run %s", p->what);
		goto fail;
	}
	log_debug("run: %s", p->line);
	fflush(NULL);
	parent = getpid();
	if ((p->pid = fork()) == -1) {
		as_err_sys(err, errno, "fork for %s", p->what);
		goto fail;
	}
	if (p->pid == 0) {
		/*
		 * A killed autosync takes its btrfs send and receive along:
		 * an orphaned receive would go on writing where the next
		 * run cleans up.
		 */
		if (proc_die_with_parent(parent) == -1)
			_exit(126);
		/* dup2 clears FD_CLOEXEC on the three we keep. */
		if (dup2(in_fd != -1 ? in_fd : nul, 0) == -1 ||
		    dup2(out_fd != -1 ? out_fd : capture ? p->out_fd : nul,
		    1) == -1 || dup2(p->err_fd, 2) == -1)
			_exit(126);
		signal(SIGPIPE, SIG_DFL);
		execvp("btrfs", (char *const *)argv);
		e = errno;
		dprintf(2, "ERROR: cannot run 'btrfs': %s\n", strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	close(nul);
	if (in_fd != -1)
		close(in_fd);
	if (out_fd != -1)
		close(out_fd);
	return p;
fail:
	if (nul != -1)
		close(nul);
	if (in_fd != -1)
		close(in_fd);
	if (out_fd != -1)
		close(out_fd);
	if (p->err_fd != -1)
		close(p->err_fd);
	if (p->out_fd != -1)
		close(p->out_fd);
	free(p);
	return NULL;
}

/* The first "ERROR: " line of text, without the prefix, in buf. */
static const char *
first_error(const char *text, char *buf, size_t bufsz)
{
	const char *p = strstr(text, "ERROR: "), *e;

	if (p != NULL)
		p += 7;
	else
		for (p = text; *p == '\n'; p++)
			;
	e = strchr(p, '\n');
	if (e == NULL)
		e = p + strlen(p);
	if ((size_t)(e - p) >= bufsz)
		e = p + bufsz - 1;
	memcpy(buf, p, (size_t)(e - p));
	buf[e - p] = '\0';
	return buf;
}

/* Wait for p; on success and capture, *out gets stdout.  Frees p. */
static int
finish(struct btrfs_proc *p, char **out, struct as_err *err)
{
	char *text = NULL, line[400], esc[400];
	int status, rc = -1;
	pid_t w;

	do
		w = waitpid(p->pid, &status, 0);
	while (w == -1 && errno == EINTR);
	if (w == -1) {
		as_err_sys(err, errno, "wait for %s", p->what);
		goto out;
	}
	if (read_memfd(p->err_fd, &text, err) == -1)
		goto out;
	if (WIFEXITED(status))
		log_debug("run: %s: exit %d", p->line, WEXITSTATUS(status));
	else
		log_debug("run: %s: signal %d", p->line, WTERMSIG(status));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (out != NULL && read_memfd(p->out_fd, out, err) == -1)
			goto out;
		rc = 0;
		goto out;
	}
	if (text[0] != '\0')
		log_debug("%s: stderr: %s", p->what, log_escape(text, esc,
		    sizeof(esc)));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		as_err_set(err, AS_E_NOTFOUND, 0, "cannot run 'btrfs': is "
		    "btrfs-progs installed?");
	else if (!WIFEXITED(status))
		as_err_set(err, AS_E_IO, 0, "%s: killed by signal %d",
		    p->what, WTERMSIG(status));
	else
		as_err_set(err, btrfs_errcode(text), 0, "%s: %s", p->what,
		    text[0] != '\0' ? first_error(text, line, sizeof(line)) :
		    "failed");
out:
	free(text);
	close(p->err_fd);
	if (p->out_fd != -1)
		close(p->out_fd);
	free(p);
	return rc;
}

int
btrfs_run(const char *const *args, char **out, struct as_err *err)
{
	struct btrfs_proc *p;

	if (out != NULL)
		*out = NULL;
	if ((p = spawn(args, -1, -1, out != NULL, err)) == NULL)
		return -1;
	return finish(p, out, err);
}

int
btrfs_proc_finish(struct btrfs_proc *p, struct as_err *err)
{
	return finish(p, NULL, err);
}

int
btrfs_proc_written(struct btrfs_proc *p, uint64_t *bytes)
{
	siginfo_t si;
	char path[64], buf[512], *w;
	ssize_t n;
	int fd, rc;

	/* once it has exited, before it is reaped: its counters stay */
	do
		rc = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOWAIT);
	while (rc == -1 && errno == EINTR);
	if (rc == -1)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/io", (int)p->pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((w = strstr(buf, "wchar: ")) == NULL)
		return -1;
	*bytes = strtoull(w + 7, NULL, 10);
	return 0;
}

int
btrfs_proc_exited_ok(struct btrfs_proc *p)
{
	siginfo_t si;
	int rc;

	do
		rc = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOWAIT);
	while (rc == -1 && errno == EINTR);
	if (rc == -1)
		return -1;
	return si.si_code == CLD_EXITED && si.si_status == 0;
}

void
btrfs_proc_abort(struct btrfs_proc *p)
{
	if (p == NULL)
		return;
	kill(p->pid, SIGKILL);
	(void)finish(p, NULL, NULL);
}

struct btrfs_proc *
btrfs_send_start(const char *snap, const char *parent, int out_fd,
    struct as_err *err)
{
	const char *a[6];
	size_t i = 0;

	a[i++] = "send";
	a[i++] = "-q";
	if (parent != NULL) {
		a[i++] = "-p";
		a[i++] = parent;
	}
	a[i++] = snap;
	a[i] = NULL;
	return spawn(a, -1, out_fd, 0, err);
}

struct btrfs_proc *
btrfs_receive_start(const char *dir, int in_fd, int trusted,
    struct as_err *err)
{
	const char *a[] = { "receive", "-q", "-e", "-C", "-E", "1", dir,
	    NULL };

	if (!trusted) {
		close(in_fd);
		as_err_set(err, AS_E_AUTH, 0, "refusing a btrfs stream for '%s' "
		    "from a sender not configured as trusted (btrfs receive "
		    "does not validate streams)", dir);
		return NULL;
	}
	return spawn(a, in_fd, -1, 0, err);
}

/* ------------------------------------------------------------------ */
/* Subvolumes */

int
btrfs_show(const char *path, struct btrfs_subvol *sv, struct as_err *err)
{
	const char *a[] = { "subvolume", "show", path, NULL };
	char *out;
	int rc;

	if (btrfs_run(a, &out, err) == -1)
		return -1;
	rc = btrfs_parse_show(out, sv, err);
	free(out);
	if (rc == -1)
		as_err_prefix(err, "'%s'", path);
	return rc;
}

static void
uuid_str(const unsigned char u[BTRFS_UUID_SIZE], char out[BTRFS_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;
	int zero = 1;

	for (i = 0; i < BTRFS_UUID_SIZE; i++)
		if (u[i] != 0)
			zero = 0;
	if (zero) {
		out[0] = '\0';
		return;
	}
	for (i = 0; i < BTRFS_UUID_SIZE; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[u[i] >> 4];
		out[o++] = hex[u[i] & 15];
	}
	out[o] = '\0';
}

int
btrfs_info(const char *path, struct btrfs_subvol *sv, struct as_err *err)
{
	struct btrfs_ioctl_get_subvol_info_args a;
	int fd, e;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return as_err_sys(err, errno, "open '%s'", path);
	memset(&a, 0, sizeof(a));
	if (ioctl(fd, BTRFS_IOC_GET_SUBVOL_INFO, &a) == -1) {
		e = errno;
		close(fd);
		if (e == ENOTTY || e == EINVAL)
			return as_err_set(err, AS_E_NOTFOUND, e, "'%s' is not "
			    "a btrfs subvolume", path);
		return as_err_sys(err, e, "subvolume info of '%s'", path);
	}
	close(fd);
	memset(sv, 0, sizeof(*sv));
	a.name[sizeof(a.name) - 1] = '\0';
	snprintf(sv->name, sizeof(sv->name), "%s", a.name);
	uuid_str(a.uuid, sv->uuid);
	uuid_str(a.parent_uuid, sv->parent_uuid);
	uuid_str(a.received_uuid, sv->received_uuid);
	sv->id = a.treeid;
	sv->generation = a.generation;
	sv->otransid = a.otransid;
	sv->parent_id = a.parent_id;
	/* root item flags, not the ioctl flags */
	sv->readonly = (a.flags & BTRFS_ROOT_SUBVOL_RDONLY) != 0;
	sv->ctransid = a.ctransid;
	return 0;
}

int
btrfs_is_subvol(const char *path)
{
	struct stat st;
	struct statfs sf;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
	    st.st_ino == SUBVOL_INO && statfs(path, &sf) == 0 &&
	    sf.f_type == BTRFS_SUPER_MAGIC;
}

/*
 * A failed ioctl as an error: the command's classes for the same errno
 * (EEXIST and ENOTEMPTY: something is in the way; btrfs-progs says
 * "File exists" and "Directory not empty" for them).
 */
static int
ioctl_err(struct as_err *err, int e, const char *what, const char *path)
{
	as_err_sys(err, e, "%s '%s'", what, path);
	if (err != NULL && (e == EEXIST || e == ENOTEMPTY))
		err->code = AS_E_CONFLICT;
	if (err != NULL && (e == ENOTTY || e == EINVAL))
		err->code = AS_E_NOTFOUND;	/* not a btrfs subvolume */
	return -1;
}

/*
 * The directory holding path, opened, and path's last component in
 * *name (a pointer into path).  -1 with err.
 */
static int
open_parent(const char *path, const char **name, struct as_err *err)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd;

	if (slash == NULL) {
		dir = xstrdup(".");
		*name = path;
	} else {
		dir = slash == path ? xstrdup("/") : xstrndup(path,
		    (size_t)(slash - path));
		*name = slash + 1;
	}
	if (**name == '\0' || strcmp(*name, ".") == 0 ||
	    strcmp(*name, "..") == 0 || strlen(*name) > BTRFS_VOL_NAME_MAX) {
		free(dir);
		return as_err_set(err, AS_E_USAGE, 0, "'%s': not a subvolume "
		    "name", path);
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		as_err_sys(err, errno, "open '%s'", dir);
	free(dir);
	return fd;
}

/*
 * The subvolume operations below are the ioctls btrfs-progs issues for
 * its commands (`subvolume snapshot`, `property set ro`, `subvolume
 * delete`), made here: a command costs a fork, an exec and the loading
 * of btrfs-progs, 5-150 ms each on a loaded machine, against well
 * under a millisecond for the ioctl itself (a snapshot's commit aside);
 * a run made about ten of them.  Each is logged at debug level as the
 * command it stands for, "ioctl: subvolume snapshot -r SRC DST".
 */
int
btrfs_snapshot(const char *src, const char *dst, int readonly,
    struct as_err *err)
{
	struct btrfs_ioctl_vol_args_v2 a;
	struct stat st;
	const char *name;
	int sfd, dfd, rc = 0;

	/* as the command would: never inside an existing directory */
	if (lstat(dst, &st) == 0)
		return as_err_set(err, AS_E_CONFLICT, EEXIST, "snapshot '%s': "
		    "exists", dst);
	log_debug("ioctl: subvolume snapshot%s %s %s", readonly ? " -r" : "",
	    src, dst);
	if (!btrfs_is_subvol(src))
		return as_err_set(err, AS_E_NOTFOUND, 0, "snapshot '%s': not a "
		    "btrfs subvolume", src);
	sfd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd == -1)
		return as_err_sys(err, errno, "open '%s'", src);
	if ((dfd = open_parent(dst, &name, err)) == -1) {
		close(sfd);
		return -1;
	}
	memset(&a, 0, sizeof(a));
	a.fd = sfd;
	a.flags = readonly ? BTRFS_SUBVOL_RDONLY : 0;
	snprintf(a.name, sizeof(a.name), "%s", name);
	if (ioctl(dfd, BTRFS_IOC_SNAP_CREATE_V2, &a) == -1)
		rc = ioctl_err(err, errno, "snapshot", dst);
	close(sfd);
	close(dfd);
	return rc;
}

int
btrfs_set_readonly(const char *path, int ro, struct as_err *err)
{
	struct btrfs_subvol sv;
	uint64_t flags;
	int fd, rc = -1;

	memset(&sv, 0, sizeof(sv));
	log_debug("ioctl: property set -ts %s ro %s", path, ro ? "true" :
	    "false");
	/*
	 * As `property set` without -f: a received subvolume made
	 * writable would keep a received_uuid that no longer says what
	 * it holds, and could be taken for the parent of a later receive.
	 */
	if (!btrfs_is_subvol(path))
		return as_err_set(err, AS_E_NOTFOUND, 0, "'%s' is not a btrfs "
		    "subvolume", path);
	if (!ro && btrfs_info(path, &sv, err) == -1)
		return -1;
	if (!ro && sv.received_uuid[0] != '\0')
		return as_err_set(err, AS_E_CONFLICT, 0, "'%s': cannot flip "
		    "ro->rw with received_uuid set", path);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return as_err_sys(err, errno, "open '%s'", path);
	if (ioctl(fd, BTRFS_IOC_SUBVOL_GETFLAGS, &flags) == -1) {
		ioctl_err(err, errno, "flags of", path);
		goto out;
	}
	flags = ro ? flags | BTRFS_SUBVOL_RDONLY : flags & ~BTRFS_SUBVOL_RDONLY;
	if (ioctl(fd, BTRFS_IOC_SUBVOL_SETFLAGS, &flags) == -1) {
		ioctl_err(err, errno, "set read-only", path);
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

static int
hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
	    c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int
btrfs_set_received(const char *path, const char *uuid, uint64_t stransid,
    struct as_err *err)
{
	struct btrfs_ioctl_received_subvol_args a;
	struct timespec now;
	size_t i, k = 0;
	int fd, rc = 0, hi, lo;

	memset(&a, 0, sizeof(a));
	for (i = 0; uuid[i] != '\0' && k < BTRFS_UUID_SIZE; i++) {
		if (uuid[i] == '-')
			continue;
		if ((hi = hexval(uuid[i])) == -1 || uuid[i + 1] == '\0' ||
		    (lo = hexval(uuid[i + 1])) == -1)
			break;
		a.uuid[k++] = (char)(hi << 4 | lo);
		i++;
	}
	if (k != BTRFS_UUID_SIZE || uuid[i] != '\0' ||
	    strlen(uuid) != BTRFS_UUID_LEN)
		return as_err_set(err, AS_E_MALFORMED, 0, "'%s': not a UUID",
		    uuid);
	log_debug("ioctl: set received subvol %s %s %" PRIu64, path, uuid,
	    stransid);
	if (!btrfs_is_subvol(path))
		return as_err_set(err, AS_E_NOTFOUND, 0, "'%s' is not a btrfs "
		    "subvolume", path);
	clock_gettime(CLOCK_REALTIME, &now);
	a.stransid = stransid;
	a.stime.sec = (uint64_t)now.tv_sec;
	a.stime.nsec = (uint32_t)now.tv_nsec;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return as_err_sys(err, errno, "open '%s'", path);
	if (ioctl(fd, BTRFS_IOC_SET_RECEIVED_SUBVOL, &a) == -1)
		rc = ioctl_err(err, errno, "set received UUID of", path);
	close(fd);
	return rc;
}

/*
 * Delete one subvolume (BTRFS_IOC_SNAP_DESTROY from its directory, as
 * `btrfs subvolume delete` does, no commit); CONFLICT when it holds
 * nested subvolumes.
 */
static int
destroy(const char *path, struct as_err *err)
{
	struct btrfs_ioctl_vol_args a;
	const char *name;
	int fd, rc = 0;

	if (!btrfs_is_subvol(path))
		return as_err_set(err, AS_E_NOTFOUND, 0, "delete '%s': not a "
		    "btrfs subvolume", path);
	if ((fd = open_parent(path, &name, err)) == -1)
		return -1;
	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", name);
	if (ioctl(fd, BTRFS_IOC_SNAP_DESTROY, &a) == -1)
		rc = ioctl_err(err, errno, "delete", path);
	close(fd);
	return rc;
}

void
btrfs_rels_free(char **rels, size_t n)
{
	size_t i;

	for (i = 0; i < n && rels != NULL; i++)
		free(rels[i]);
	free(rels);
}

/*
 * Subvolumes directly below the subvolume at path, as paths relative
 * to it: the kernel's root refs of the subvolume
 * (BTRFS_IOC_GET_SUBVOL_ROOTREF, 255 a call), each named by
 * BTRFS_IOC_INO_LOOKUP_USER (the directory's path below path, and the
 * subvolume's name there); both Linux >= 4.18, neither needs root.
 * What `btrfs subvolume list -o` prints, without running it.
 */
static int
direct_children(const char *path, char ***rels, size_t *n,
    struct as_err *err)
{
	struct btrfs_ioctl_get_subvol_rootref_args ra;
	struct btrfs_ioctl_ino_lookup_user_args la;
	char **r = NULL;
	size_t k = 0, i;
	int fd, rc = -1, more;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return as_err_sys(err, errno, "open '%s'", path);
	memset(&ra, 0, sizeof(ra));
	do {
		more = 0;
		if (ioctl(fd, BTRFS_IOC_GET_SUBVOL_ROOTREF, &ra) == -1) {
			if (errno != EOVERFLOW) {
				ioctl_err(err, errno, "list the subvolumes "
				    "below", path);
				goto out;
			}
			more = 1;	/* a full buffer, and more to come */
		}
		for (i = 0; i < ra.num_items; i++) {
			memset(&la, 0, sizeof(la));
			la.dirid = ra.rootref[i].dirid;
			la.treeid = ra.rootref[i].treeid;
			if (ioctl(fd, BTRFS_IOC_INO_LOOKUP_USER, &la) == -1) {
				ioctl_err(err, errno, "name a subvolume below",
				    path);
				goto out;
			}
			la.name[sizeof(la.name) - 1] = '\0';
			la.path[sizeof(la.path) - 1] = '\0';
			/* path: "" or "dir/sub/" below path */
			r = xreallocarray(r, k + 1, sizeof(*r));
			r[k++] = xasprintf("%s%s", la.path, la.name);
		}
		/* the kernel left min_treeid at the next one to look at */
	} while (more);
	*rels = r;
	*n = k;
	r = NULL;
	rc = 0;
out:
	btrfs_rels_free(r, k);
	close(fd);
	return rc;
}

static int
rel_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
has_snapdir(const char *rel)
{
	size_t l = strlen(BTRFS_SNAPDIR);
	const char *p;

	for (p = rel; p != NULL; p = strchr(p, '/')) {
		if (*p == '/')
			p++;
		if (strncmp(p, BTRFS_SNAPDIR, l) == 0 &&
		    (p[l] == '/' || p[l] == '\0'))
			return 1;
	}
	return 0;
}

int
btrfs_nested(const char *path, char ***rels, size_t *n, struct as_err *err)
{
	char **all = NULL, **c = NULL, *abs, *rel;
	size_t na = 0, nc, i, done = 0;
	int rc = -1;

	/* breadth first: each found subvolume is listed in turn */
	if (direct_children(path, &c, &nc, err) == -1)
		return -1;
	for (;;) {
		for (i = 0; i < nc; i++) {
			if (has_snapdir(c[i])) {
				free(c[i]);
				continue;
			}
			all = xreallocarray(all, na + 1, sizeof(*all));
			all[na++] = c[i];
		}
		free(c);
		c = NULL;
		nc = 0;
		if (done == na)
			break;
		rel = all[done++];
		abs = xasprintf("%s/%s", path, rel);
		if (!btrfs_is_subvol(abs)) {
			as_err_set(err, AS_E_NOTFOUND, 0, "nested subvolume "
			    "'%s' is not where btrfs lists it", abs);
			free(abs);
			goto out;
		}
		if (direct_children(abs, &c, &nc, err) == -1) {
			free(abs);
			goto out;
		}
		free(abs);
		/* their paths are relative to rel: make them path's */
		for (i = 0; i < nc; i++) {
			abs = xasprintf("%s/%s", rel, c[i]);
			free(c[i]);
			c[i] = abs;
		}
	}
	if (na > 0)
		qsort(all, na, sizeof(*all), rel_cmp);
	*rels = all;
	*n = na;
	all = NULL;
	rc = 0;
out:
	btrfs_rels_free(c, nc);
	btrfs_rels_free(all, na);
	return rc;
}

int
btrfs_delete_snapshots(const char *const *paths, size_t n, struct as_err *err)
{
	size_t i;

	for (i = 0; i < n; i++) {
		log_debug("ioctl: subvolume delete %s", paths[i]);
		if (destroy(paths[i], err) == -1)
			return -1;
	}
	return 0;
}

int
btrfs_delete(const char *path, struct as_err *err)
{
	struct btrfs_subvol sv;
	struct as_err e;
	char **c = NULL, *abs;
	size_t nc = 0, i;
	int rc = -1;

	log_debug("ioctl: subvolume delete %s", path);
	/* most have no nested subvolume: one ioctl */
	if (destroy(path, &e) == 0)
		return 0;
	if (e.code != AS_E_CONFLICT) {
		if (err != NULL)
			*err = e;
		return -1;
	}
	memset(&sv, 0, sizeof(sv));
	if (direct_children(path, &c, &nc, err) == -1)
		return -1;
	if (nc > 0) {
		/* a read-only subvolume's entries cannot be removed */
		if (btrfs_info(path, &sv, err) == -1)
			goto out;
		if (sv.readonly && btrfs_set_readonly(path, 0, err) == -1)
			goto out;
		qsort(c, nc, sizeof(*c), rel_cmp);
		for (i = nc; i-- > 0;) {
			abs = xasprintf("%s/%s", path, c[i]);
			rc = btrfs_delete(abs, err);
			free(abs);
			if (rc == -1)
				goto out;
		}
	}
	rc = destroy(path, err);
out:
	btrfs_subvol_release(&sv);
	btrfs_rels_free(c, nc);
	return rc;
}

int
btrfs_fsid(const char *path, unsigned char fsid[16], struct as_err *err)
{
	struct btrfs_ioctl_fs_info_args a;
	int fd, e;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return as_err_sys(err, errno, "open '%s'", path);
	memset(&a, 0, sizeof(a));
	if (ioctl(fd, BTRFS_IOC_FS_INFO, &a) == -1) {
		e = errno;
		close(fd);
		if (e == ENOTTY || e == EINVAL)
			return as_err_set(err, AS_E_NOTFOUND, e, "'%s' is not "
			    "on btrfs", path);
		return as_err_sys(err, e, "file system of '%s'", path);
	}
	close(fd);
	memcpy(fsid, a.fsid, 16);
	return 0;
}

int
btrfs_ctransid(const char *path, uint64_t *ctransid, struct as_err *err)
{
	struct btrfs_ioctl_get_subvol_info_args a;
	int fd, e;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return as_err_sys(err, errno, "open '%s'", path);
	memset(&a, 0, sizeof(a));
	if (ioctl(fd, BTRFS_IOC_GET_SUBVOL_INFO, &a) == -1) {
		e = errno;
		close(fd);
		return as_err_sys(err, e, "subvolume info of '%s'", path);
	}
	close(fd);
	*ctransid = a.ctransid;
	return 0;
}

/* ------------------------------------------------------------------ */
/* autosync's snapshot directories */

char *
btrfs_snapdir(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return xasprintf("%s/%s", BTRFS_SNAPDIR, path);
	return xasprintf("%.*s/%s/%s", (int)(slash - path), path,
	    BTRFS_SNAPDIR, slash + 1);
}

char *
btrfs_snapdir_of(const char *snapdir, const char *rel, struct as_err *err)
{
	char enc[BTRFS_NAME_MAX + 1];

	if (rel == NULL || rel[0] == '\0')
		return xstrdup(snapdir);
	if (btrfs_enc_rel(rel, enc, sizeof(enc), err) == -1)
		return NULL;
	return xasprintf("%s/%s/%s", snapdir, BTRFS_CHILDREN, enc);
}

static int
snap_cmp(const void *a, const void *b)
{
	const struct btrfs_snap *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int
btrfs_list_snaps(const char *dir, const char *parent_uuid, int received,
    struct btrfs_snap **out, size_t *nout, struct as_err *err)
{
	struct btrfs_snap *v = NULL;
	struct btrfs_subvol sv;
	struct dirent *de;
	size_t n = 0;
	char *p;
	DIR *d;
	int rc = -1;

	*out = NULL;
	*nout = 0;
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return 0;
		return as_err_sys(err, errno, "open '%s'", dir);
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, AUTO_PREFIX, strlen(AUTO_PREFIX)) != 0)
			continue;
		p = xasprintf("%s/%s", dir, de->d_name);
		if (!btrfs_is_subvol(p)) {
			free(p);
			continue;
		}
		memset(&sv, 0, sizeof(sv));
		if (btrfs_info(p, &sv, err) == -1) {
			free(p);
			goto out;
		}
		free(p);
		if (sv.readonly && (parent_uuid == NULL ||
		    strcmp(sv.parent_uuid, parent_uuid) == 0) &&
		    (!received || sv.received_uuid[0] != '\0')) {
			v = xreallocarray(v, n + 1, sizeof(*v));
			memset(&v[n], 0, sizeof(v[n]));
			snprintf(v[n].name, sizeof(v[n].name), "%s",
			    de->d_name);
			memcpy(v[n].uuid, sv.uuid, sizeof(sv.uuid));
			memcpy(v[n].parent_uuid, sv.parent_uuid,
			    sizeof(sv.parent_uuid));
			memcpy(v[n].received_uuid, sv.received_uuid,
			    sizeof(sv.received_uuid));
			v[n].id = sv.id;
			n++;
		}
		btrfs_subvol_release(&sv);
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), snap_cmp);
	*out = v;
	*nout = n;
	v = NULL;
	rc = 0;
out:
	free(v);
	closedir(d);
	return rc;
}

/*
 * The highest k among dir's names base (k 1) and base_k, 0 when none.
 */
static unsigned
max_suffix(const char *dir, const char *base)
{
	struct dirent *de;
	size_t bl = strlen(base);
	unsigned long v;
	unsigned max = 0;
	char *end;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, base, bl) != 0)
			continue;
		if (de->d_name[bl] == '\0')
			v = 1;
		else if (de->d_name[bl] == '_' && de->d_name[bl + 1] >= '1' &&
		    de->d_name[bl + 1] <= '9') {
			errno = 0;
			v = strtoul(de->d_name + bl + 1, &end, 10);
			if (errno != 0 || *end != '\0' || v >= 100000)
				continue;
		} else
			continue;
		if (v > max)
			max = (unsigned)v;
	}
	closedir(d);
	return max;
}

int
btrfs_auto_name(const char *const *dirs, size_t ndirs, char *out,
    size_t outsz, struct as_err *err)
{
	char base[64], *p;
	struct tm tm;
	struct stat st;
	time_t t = time(NULL);
	unsigned k, m, start = 1;
	size_t i;
	int used;

	if (gmtime_r(&t, &tm) == NULL)
		return as_err_set(err, AS_E_INTERNAL, 0, "bad time");
	strftime(base, sizeof(base), AUTO_PREFIX "%Y-%m-%d_%H:%M:%S", &tm);
	/*
	 * Above the highest suffix of this second, not the lowest free one:
	 * a name this side pruned may still be held by a destination (which
	 * keeps more, or kept a run's snapshot it never published), and a
	 * stream of a new snapshot under that name would collide there
	 * (btrfs receive: File exists).  Every name a destination got from
	 * here is at most this side's newest, which is never pruned.
	 */
	for (i = 0; i < ndirs; i++)
		if ((m = max_suffix(dirs[i], base)) >= start)
			start = m + 1;
	for (k = start; k < 100000; k++) {
		if (k == 1)
			snprintf(out, outsz, "%s", base);
		else
			snprintf(out, outsz, "%s_%u", base, k);
		used = 0;
		for (i = 0; i < ndirs && !used; i++) {
			p = xasprintf("%s/%s", dirs[i], out);
			used = lstat(p, &st) == 0;
			free(p);
		}
		if (!used)
			return 0;
	}
	return as_err_set(err, AS_E_LIMIT, 0, "too many snapshots named "
	    "'%s'", base);
}

int
btrfs_mkdir_private(const char *path, struct as_err *err)
{
	struct stat st;
	char *p, *s;

	p = xstrdup(path);
	for (s = strchr(p + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST) {
			as_err_sys(err, errno, "create '%s'", p);
			free(p);
			return -1;
		}
		*s = '/';
	}
	free(p);
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return as_err_sys(err, errno, "create '%s'", path);
	if (lstat(path, &st) == -1)
		return as_err_sys(err, errno, "'%s'", path);
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0)
		return as_err_set(err, AS_E_UNSAFE_PATH, 0, "'%s' is not a "
		    "private directory of this user (mode 0700)", path);
	return 0;
}

static int
lock_dir(const char *dir, int *fdp, struct as_err *err)
{
	char *p = xasprintf("%s/.lock", dir);
	int fd;

	fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	free(p);
	if (fd == -1)
		return as_err_sys(err, errno, "lock '%s'", dir);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		close(fd);
		if (errno == EWOULDBLOCK)
			return as_err_set(err, AS_E_CONFLICT, 0, "'%s' is busy: "
			    "another sync is running", dir);
		return as_err_sys(err, errno, "lock '%s'", dir);
	}
	*fdp = fd;
	return 0;
}

int
btrfs_lock(const char *dir, int *fd, struct as_err *err)
{
	if (btrfs_mkdir_private(dir, err) == -1)
		return -1;
	return lock_dir(dir, fd, err);
}

/* ------------------------------------------------------------------ */
/* The destination */

void
btrfs_dest_release(struct btrfs_dest *d)
{
	if (d == NULL)
		return;
	if (d->lock_fd > 0)
		close(d->lock_fd);
	free(d->path);
	free(d->dir);
	free(d->next);
	memset(d, 0, sizeof(*d));
	d->lock_fd = -1;
}

/* An interrupted receive in dir: a subvolume not (read-only and received). */
static int
clean_partial(const char *dir, unsigned *cleaned, struct as_err *err)
{
	struct btrfs_subvol sv;
	struct dirent *de;
	char *p;
	DIR *d;
	int rc = 0;

	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : as_err_sys(err, errno, "open "
		    "'%s'", dir);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, AUTO_PREFIX, strlen(AUTO_PREFIX)) != 0)
			continue;
		p = xasprintf("%s/%s", dir, de->d_name);
		memset(&sv, 0, sizeof(sv));
		if (btrfs_is_subvol(p) && (rc = btrfs_info(p, &sv, err)) == 0 &&
		    (!sv.readonly || sv.received_uuid[0] == '\0')) {
			rc = btrfs_delete(p, err);
			(*cleaned)++;
		}
		btrfs_subvol_release(&sv);
		free(p);
	}
	closedir(d);
	return rc;
}

/* The published record: lines "view|prev UUID CTRANSID REL" ("." root). */
struct pub_line {
	char		 kind[8];
	char		 uuid[BTRFS_UUID_LEN + 1];
	uint64_t	 ctransid;
	char		 rel[PATH_MAX];
};

static int read_published(const struct btrfs_dest *, struct pub_line **,
    size_t *, struct as_err *);

/*
 * A view left at d->next by an interrupted publish: ours when the
 * published record names it, or when it is a snapshot of one of the
 * received snapshots.
 */
static int
clean_next(struct btrfs_dest *d, unsigned *cleaned, struct as_err *err)
{
	struct btrfs_subvol sv;
	struct btrfs_snap *v = NULL;
	struct pub_line *pl = NULL;
	size_t n = 0, npl = 0, i;
	int ours = 0, rc = -1;

	if (!btrfs_is_subvol(d->next))
		return 0;
	memset(&sv, 0, sizeof(sv));
	if (btrfs_info(d->next, &sv, err) == -1 ||
	    read_published(d, &pl, &npl, err) == -1 ||
	    btrfs_list_snaps(d->dir, NULL, 1, &v, &n, err) == -1)
		goto out;
	for (i = 0; i < npl; i++)
		if (strcmp(pl[i].uuid, sv.uuid) == 0)
			ours = 1;
	for (i = 0; i < n; i++)
		if (strcmp(v[i].uuid, sv.parent_uuid) == 0)
			ours = 1;
	if (!ours) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' is in the way and "
		    "autosync did not create it: move it away", d->next);
		goto out;
	}
	if (btrfs_delete(d->next, err) == -1)
		goto out;
	(*cleaned)++;
	rc = 0;
out:
	btrfs_subvol_release(&sv);
	free(pl);
	free(v);
	return rc;
}

int
btrfs_dest_open(struct btrfs_dest *d, const char *dst, unsigned *cleaned,
    struct as_err *err)
{
	struct statfs sf;
	struct dirent *de;
	char *parent, *p;
	DIR *dir;
	int rc = -1;

	memset(d, 0, sizeof(*d));
	d->lock_fd = -1;
	*cleaned = 0;
	d->path = xstrdup(dst);
	parent = xstrdup(dst);
	p = strrchr(parent, '/');
	if (p == NULL || p[1] == '\0' || dst[0] != '/') {
		free(parent);
		return as_err_set(err, AS_E_USAGE, 0, "destination '%s': an "
		    "absolute path is needed", dst);
	}
	*(p == parent ? p + 1 : p) = '\0';
	if (statfs(parent, &sf) == -1) {
		rc = as_err_sys(err, errno, "destination '%s'", parent);
		free(parent);
		return rc;
	}
	if (sf.f_type != BTRFS_SUPER_MAGIC) {
		free(parent);
		return as_err_set(err, AS_E_USAGE, 0, "destination '%s': its "
		    "parent directory is not on btrfs", dst);
	}
	d->next = xasprintf("%s/.%s" BTRFS_NEXT_SUFFIX, strcmp(parent,
	    "/") == 0 ? "" : parent, strrchr(dst, '/') + 1);
	free(parent);
	d->dir = btrfs_snapdir(dst);
	if (btrfs_mkdir_private(d->dir, err) == -1 ||
	    lock_dir(d->dir, &d->lock_fd, err) == -1)
		return -1;
	/* what an interrupted run left was never published */
	if (clean_partial(d->dir, cleaned, err) == -1)
		return as_err_prefix(err, "clean up '%s'", dst);
	p = xasprintf("%s/%s", d->dir, BTRFS_CHILDREN);
	dir = opendir(p);
	free(p);
	rc = 0;
	while (dir != NULL && rc == 0 && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s/%s", d->dir, BTRFS_CHILDREN, de->d_name);
		rc = clean_partial(p, cleaned, err);
		free(p);
	}
	if (dir != NULL)
		closedir(dir);
	if (rc == 0)
		rc = clean_next(d, cleaned, err);
	if (rc == -1)
		as_err_prefix(err, "clean up '%s'", dst);
	return rc;
}

static int
read_published(const struct btrfs_dest *d, struct pub_line **out,
    size_t *nout, struct as_err *err)
{
	struct pub_line *v = NULL, l;
	char *path, buf[PATH_MAX + 128];
	FILE *f;
	size_t n = 0, len;
	int line = 0;

	path = xasprintf("%s/%s", d->dir, BTRFS_PUBLISHED);
	f = fopen(path, "re");
	free(path);
	*out = NULL;
	*nout = 0;
	if (f == NULL)
		return errno == ENOENT ? 0 : as_err_sys(err, errno,
		    "read '%s/%s'", d->dir, BTRFS_PUBLISHED);
	while (fgets(buf, sizeof(buf), f) != NULL) {
		len = strlen(buf);
		if (len > 0 && buf[len - 1] == '\n')
			buf[--len] = '\0';
		if (line++ == 0) {
			if (strcmp(buf, PUB_MAGIC) != 0)
				goto bad;
			continue;
		}
		memset(&l, 0, sizeof(l));
		if (sscanf(buf, "%7s %36s %" SCNu64 " %4095[^\n]", l.kind,
		    l.uuid, &l.ctransid, l.rel) != 4)
			goto bad;
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = l;
	}
	fclose(f);
	if (line == 0) {
		free(v);
		return as_err_set(err, AS_E_MALFORMED, 0, "'%s/%s' is empty",
		    d->dir, BTRFS_PUBLISHED);
	}
	*out = v;
	*nout = n;
	return 0;
bad:
	fclose(f);
	free(v);
	return as_err_set(err, AS_E_MALFORMED, 0, "'%s/%s': bad line %d",
	    d->dir, BTRFS_PUBLISHED, line);
}

static int
write_published(const struct btrfs_dest *d, const struct pub_line *v,
    size_t n, struct as_err *err)
{
	char *path, *tmp;
	FILE *f;
	size_t i;
	int fd, rc = -1;

	path = xasprintf("%s/%s", d->dir, BTRFS_PUBLISHED);
	tmp = xasprintf("%s.tmp", path);
	if ((f = fopen(tmp, "we")) == NULL) {
		as_err_sys(err, errno, "write '%s'", tmp);
		goto out;
	}
	fprintf(f, "%s\n", PUB_MAGIC);
	for (i = 0; i < n; i++)
		fprintf(f, "%s %s %" PRIu64 " %s\n", v[i].kind, v[i].uuid,
		    v[i].ctransid, v[i].rel);
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) == -1) {
		as_err_sys(err, errno, "write '%s'", tmp);
		fclose(f);
		goto out;
	}
	fclose(f);
	if (rename(tmp, path) == -1) {
		as_err_sys(err, errno, "rename '%s'", tmp);
		goto out;
	}
	if ((fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(fd);
		close(fd);
	}
	rc = 0;
out:
	free(path);
	free(tmp);
	return rc;
}

/* What is at path now: uuid, ctransid, read-only; 0 or -1. */
static int
view_state(const char *path, struct pub_line *l, int *ro, struct as_err *err)
{
	struct btrfs_subvol sv;

	if (btrfs_info(path, &sv, err) == -1)
		return -1;
	snprintf(l->uuid, sizeof(l->uuid), "%s", sv.uuid);
	*ro = sv.readonly;
	l->ctransid = sv.ctransid;
	return 0;
}

int
btrfs_dest_check(struct btrfs_dest *d, struct as_err *err)
{
	struct pub_line *v = NULL, now;
	struct stat st;
	char *p;
	size_t n = 0, i;
	int ro, rc = -1, root = -1, prev = -1;

	if (lstat(d->path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		return as_err_sys(err, errno, "destination '%s'", d->path);
	}
	if (read_published(d, &v, &n, err) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (strcmp(v[i].kind, "view") == 0 &&
		    strcmp(v[i].rel, ".") == 0)
			root = (int)i;
		if (strcmp(v[i].kind, "prev") == 0)
			prev = (int)i;
	}
	if (root == -1 || !btrfs_is_subvol(d->path)) {
		as_err_set(err, AS_E_CONFLICT, 0, "destination '%s' exists and "
		    "autosync did not create it: move it away first", d->path);
		goto out;
	}
	memset(&now, 0, sizeof(now));
	if (view_state(d->path, &now, &ro, err) == -1)
		goto out;
	if (prev != -1 && strcmp(now.uuid, v[prev].uuid) == 0 && ro &&
	    now.ctransid == v[prev].ctransid) {
		/* a run stopped between recording its view and the swap */
		rc = 0;
		goto out;
	}
	if (strcmp(now.uuid, v[root].uuid) != 0) {
		as_err_set(err, AS_E_CONFLICT, 0, "destination '%s' was "
		    "replaced by another subvolume since autosync published "
		    "it: move it away first", d->path);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (strcmp(v[i].kind, "view") != 0)
			continue;
		p = (int)i == root ? xstrdup(d->path) :
		    xasprintf("%s/%s", d->path, v[i].rel);
		if (!btrfs_is_subvol(p)) {
			as_err_set(err, AS_E_CONFLICT, 0, "destination '%s' was "
			    "modified since autosync published it: '%s' is "
			    "gone; use -F to replace it", d->path, p);
			free(p);
			rc = 1;
			goto out;
		}
		if (view_state(p, &now, &ro, err) == -1) {
			free(p);
			goto out;
		}
		if (strcmp(now.uuid, v[i].uuid) != 0 || !ro ||
		    now.ctransid != v[i].ctransid) {
			as_err_set(err, AS_E_CONFLICT, 0, "destination '%s' was "
			    "modified since autosync published it ('%s': %s); "
			    "use -F to replace it (its changes are lost)",
			    d->path, p, !ro ? "made writable" :
			    strcmp(now.uuid, v[i].uuid) != 0 ? "replaced" :
			    "written");
			free(p);
			rc = 1;
			goto out;
		}
		free(p);
	}
	rc = 0;
out:
	free(v);
	return rc;
}

struct btrfs_proc *
btrfs_dest_receive_start(struct btrfs_dest *d, const char *rel,
    const char *name, int in_fd, int trusted, struct as_err *err)
{
	struct btrfs_proc *p = NULL;
	struct stat st;
	char *dir, *got = NULL;

	if ((dir = btrfs_snapdir_of(d->dir, rel, err)) == NULL ||
	    btrfs_mkdir_private(dir, err) == -1)
		goto out;
	got = xasprintf("%s/%s", dir, name);
	if (lstat(got, &st) == 0) {
		as_err_set(err, AS_E_CONFLICT, EEXIST, "receive '%s': exists",
		    got);
		goto out;
	}
	p = btrfs_receive_start(dir, in_fd, trusted, err);
	in_fd = -1;
out:
	if (in_fd != -1)
		close(in_fd);
	free(dir);
	free(got);
	return p;
}

int
btrfs_dest_receive_finish(struct btrfs_dest *d, struct btrfs_proc *p,
    const char *rel, const char *name, const char *expect_uuid,
    struct as_err *err)
{
	struct btrfs_subvol sv;
	struct as_err e2;
	char *got = NULL, *dir;
	int rc = -1;

	memset(&sv, 0, sizeof(sv));
	if ((dir = btrfs_snapdir_of(d->dir, rel, err)) == NULL) {
		btrfs_proc_abort(p);
		return -1;
	}
	got = xasprintf("%s/%s", dir, name);
	if (btrfs_proc_finish(p, err) == -1)
		goto fail;
	if (!btrfs_is_subvol(got)) {
		as_err_set(err, AS_E_MALFORMED, 0, "the stream did not make "
		    "the subvolume '%s'", got);
		goto fail;
	}
	/* the kernel's answer, where `show` would print it */
	if (btrfs_info(got, &sv, err) == -1)
		goto fail;
	if (!sv.readonly || sv.received_uuid[0] == '\0' ||
	    (expect_uuid != NULL && strcmp(sv.received_uuid,
	    expect_uuid) != 0)) {
		as_err_set(err, AS_E_MALFORMED, 0, "received subvolume '%s' is "
		    "%s: not used", got, !sv.readonly ? "not read-only" :
		    sv.received_uuid[0] == '\0' ? "without received_uuid" :
		    "not the snapshot that was sent (received_uuid)");
		goto fail;
	}
	rc = 0;
	goto out;
fail:
	/* made by this receive (start checked that nothing was there) */
	if (btrfs_is_subvol(got) && btrfs_delete(got, &e2) == -1)
		log_debug("%s", e2.msg);
out:
	btrfs_subvol_release(&sv);
	free(got);
	free(dir);
	return rc;
}

/*
 * Snapshot a child's received snapshot src at dst inside the view, and
 * give dst's directory back the times the stream set (the new entry
 * would make them now).  An empty placeholder at dst (inode 2,
 * BTRFS_EMPTY_SUBVOL_DIR_OBJECTID: what a snapshot shows of a subvolume
 * nested in its source) goes first: a stream never makes one, but a
 * reverse's received root is a snapshot of the old source's own one,
 * and keeps its placeholders (failback_btrfs.h).
 */
static int
place_child(const char *src, const char *dst, struct as_err *err)
{
	struct timespec ts[2];
	struct stat st, ph;
	char *dir = xstrdup(dst);
	int rc = -1;

	*strrchr(dir, '/') = '\0';
	if (lstat(dir, &st) == -1) {
		as_err_sys(err, errno, "'%s'", dir);
		goto out;
	}
	if (lstat(dst, &ph) == 0 && S_ISDIR(ph.st_mode) && ph.st_ino == 2 &&
	    rmdir(dst) == -1) {
		as_err_sys(err, errno, "remove the placeholder '%s'", dst);
		goto out;
	}
	if (btrfs_snapshot(src, dst, 0, err) == -1)
		goto out;
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	if (utimensat(AT_FDCWD, dir, ts, AT_SYMLINK_NOFOLLOW) == -1) {
		as_err_sys(err, errno, "set times of '%s'", dir);
		goto out;
	}
	rc = 0;
out:
	free(dir);
	return rc;
}

/*
 * Every directory on the way from view to REL's place is a directory,
 * not a symbolic link: a child's place comes from the root's stream
 * (and, between machines, REL from the peer), and a child is never
 * placed outside the view.  UNSAFE_PATH.
 */
static int
dirs_beneath(const char *view, const char *rel, struct as_err *err)
{
	struct stat st;
	const char *c;
	char *p;
	int rc = 0;

	for (c = strchr(rel, '/'); c != NULL && rc == 0;
	    c = strchr(c + 1, '/')) {
		p = xasprintf("%s/%.*s", view, (int)(c - rel), rel);
		if (lstat(p, &st) == -1)
			rc = as_err_sys(err, errno, "place nested subvolume "
			    "'%s': '%s'", rel, p);
		else if (!S_ISDIR(st.st_mode))
			rc = as_err_set(err, AS_E_UNSAFE_PATH, 0, "'%s' is not "
			    "a directory: nested subvolume '%s' is not placed",
			    p, rel);
		free(p);
	}
	return rc;
}

int
btrfs_dest_publish(struct btrfs_dest *d, const struct btrfs_pub *v, size_t n,
    struct as_err *err)
{
	struct pub_line *pl = NULL;
	struct stat st;
	char *view, *src = NULL, *dst = NULL, *sd = NULL;
	size_t i, np = 0;
	int ro, rc = -1, exists, e;

	view = xstrdup(d->next);
	exists = lstat(d->path, &st) == 0;
	pl = xcalloc(n + 1, sizeof(*pl));
	for (i = 0; i < n; i++) {
		free(sd);
		free(src);
		free(dst);
		src = dst = NULL;
		if ((sd = btrfs_snapdir_of(d->dir, v[i].rel, err)) == NULL)
			goto out;
		src = xasprintf("%s/%s", sd, v[i].name);
		dst = i == 0 ? xstrdup(view) : xasprintf("%s/%s", view,
		    v[i].rel);
		if (i > 0 && (dirs_beneath(view, v[i].rel, err) == -1 ||
		    place_child(src, dst, err) == -1))
			goto out;
		/*
		 * Writable first, even with nothing to place: a read-only
		 * snapshot of a received subvolume keeps its received_uuid
		 * (a writable one does not), and a second subvolume with it
		 * could be taken by btrfs receive for the parent of the
		 * next incremental.
		 */
		if (i == 0 && btrfs_snapshot(src, dst, 0, err) == -1)
			goto out;
	}
	/* a view that is built, not yet read-only nor recorded (t3102) */
	if ((e = io_fault("btrfs_view")) != 0) {
		as_err_sys(err, e, "build the view '%s'", view);
		goto out;
	}
	/* read-only, children before their parents */
	for (i = n; i-- > 0;) {
		struct timespec ts[2];

		free(dst);
		dst = i == 0 ? xstrdup(view) : xasprintf("%s/%s", view,
		    v[i].rel);
		ts[0] = v[i].atime;
		ts[1] = v[i].mtime;
		if (v[i].has_times && utimensat(AT_FDCWD, dst, ts,
		    AT_SYMLINK_NOFOLLOW) == -1) {
			as_err_sys(err, errno, "set times of '%s'", dst);
			goto out;
		}
		if (btrfs_set_readonly(dst, 1, err) == -1 ||
		    view_state(dst, &pl[np], &ro, err) == -1)
			goto out;
		snprintf(pl[np].kind, sizeof(pl[np].kind), "view");
		snprintf(pl[np].rel, sizeof(pl[np].rel), "%s", i == 0 ? "." :
		    v[i].rel);
		np++;
	}
	if (exists) {
		if (view_state(d->path, &pl[np], &ro, err) == -1)
			goto out;
		snprintf(pl[np].kind, sizeof(pl[np].kind), "prev");
		snprintf(pl[np].rel, sizeof(pl[np].rel), ".");
		np++;
	}
	/*
	 * Durable before it is visible: creating a snapshot commits the
	 * transaction (btrfs makes snapshots at commit), so the received
	 * data and the view are on disk before the rename below.
	 */
	if (write_published(d, pl, np, err) == -1)
		goto out;
	if (renameat2(AT_FDCWD, view, AT_FDCWD, d->path, exists ?
	    RENAME_EXCHANGE : RENAME_NOREPLACE) == -1) {
		as_err_sys(err, errno, "publish '%s'", d->path);
		goto out;
	}
	if (exists && write_published(d, pl, np - 1, err) == -1)
		goto out;
	/* the old view, now at d->next */
	if (exists && btrfs_delete(view, err) == -1) {
		as_err_prefix(err, "delete the previous view of '%s'",
		    d->path);
		goto out;
	}
	rc = 0;
out:
	if (rc == -1 && btrfs_is_subvol(view)) {
		struct as_err e2;

		if (btrfs_delete(view, &e2) == -1)
			log_debug("%s", e2.msg);
	}
	free(pl);
	free(view);
	free(sd);
	free(src);
	free(dst);
	return rc;
}
