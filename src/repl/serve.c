/* serve.c - the passive side of the protocol; see serve.h. */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/bg.h"
#include "base/io.h"
#include "base/proc.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "driver/dir.h"
#include "driver/vol.h"
#include "driver/zfs.h"
#include "format/stream.h"
#include "repl/failback.h"
#include "repl/failback_btrfs.h"
#include "repl/proto.h"
#include "repl/remote.h"
#include "repl/serve.h"
#include "repl/serve_engine.h"
#include "repl/snapstore.h"
#include "repl/sync.h"
#include "transport/auth.h"
#include "transport/compress.h"
#include "transport/frame.h"
#include "transport/penalty.h"
#include "transport/tcp.h"
#include "transport/tls.h"
#include "base/banned.h"

/*
 * Config.
 */

void
serve_config_release(struct serve_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nclients; i++) {
		free(cfg->clients[i].name);
		key_clear(&cfg->clients[i].key);
	}
	for (i = 0; i < cfg->ngrants; i++) {
		free(cfg->grants[i].client);
		free(cfg->grants[i].path);
	}
	free(cfg->clients);
	free(cfg->grants);
	memset(cfg, 0, sizeof(*cfg));
}

static int
client_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= KEY_ID_MAX && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWX"
	    "YZabcdefghijklmnopqrstuvwxyz0123456789._@-") == n;
}

/*
 * Lexically normalise an absolute path: no "..", no empty or "."
 * components.  Allocated, or NULL.
 */
static char *
norm_abs(const char *p)
{
	struct buf b = BUF_INIT;
	const char *s, *e;
	char *out;
	size_t n;

	if (p[0] != '/')
		return NULL;
	for (s = p; *s != '\0'; s = e) {
		while (*s == '/')
			s++;
		if (*s == '\0')
			break;
		e = s + strcspn(s, "/");
		n = (size_t)(e - s);
		if (n == 1 && s[0] == '.')
			continue;
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			buf_release(&b);
			return NULL;
		}
		buf_add_u8(&b, '/');
		buf_add(&b, s, n);
	}
	if (b.len == 0)
		buf_add_u8(&b, '/');
	out = xstrndup((const char *)b.data, b.len);
	buf_release(&b);
	return out;
}

static int
parse_fp(const char *s, char fp[65])
{
	size_t i, o = 0;

	if (strncasecmp(s, "SHA256:", 7) == 0)
		s += 7;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == ':')
			continue;
		if (!isxdigit((unsigned char)s[i]) || o >= 64)
			return -1;
		fp[o++] = (char)tolower((unsigned char)s[i]);
	}
	fp[o] = '\0';
	return o == 64 ? 0 : -1;
}

/* Is word among the n words v? */
static int
has_word(char **v, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], word) == 0)
			return 1;
	return 0;
}

/* An allow line's options: each of "trusted" and "safe" at most once. */
static int
grant_words_ok(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((strcmp(v[i], "trusted") != 0 && strcmp(v[i], "safe") !=
		    0) || has_word(v + i + 1, n - i - 1, v[i]))
			return 0;
	return 1;
}

int
serve_config_parse(struct serve_config *cfg, const char *text, size_t len,
    const char *what, struct as_err *err)
{
	struct serve_config t;
	struct serve_client *cl;
	struct serve_grant *g;
	char *copy, *line, *next, *w[7], *save;
	size_t i, j, nw, ln = 0;
	int rc = -1;

	memset(&t, 0, sizeof(t));
	if (len > SERVE_CONFIG_MAX)
		return as_err_set(err, AS_E_LIMIT, 0, "%s: larger than %u "
		    "bytes", what, SERVE_CONFIG_MAX);
	if (memchr(text, '\0', len) != NULL)
		return as_err_set(err, AS_E_USAGE, 0, "%s: holds a NUL byte",
		    what);
	copy = xstrndup(text, len);
	for (line = copy; line != NULL; line = next) {
		ln++;
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if ((save = strchr(line, '#')) != NULL)
			*save = '\0';
		nw = 0;
		memset(w, 0, sizeof(w));	/* (quiets -O2's may-be-unset) */
		for (save = line; nw < 7;) {
			save += strspn(save, " \t\r");
			if (*save == '\0')
				break;
			w[nw++] = save;
			save += strcspn(save, " \t\r");
			if (*save != '\0')
				*save++ = '\0';
		}
		if (nw == 0)
			continue;
		if (nw == 7 || (save != NULL && save[strspn(save,
		    " \t\r")] != '\0')) {
			as_err_set(err, AS_E_USAGE, 0, "%s:%zu: too many "
			    "words", what, ln);
			goto out;
		}
		if (strcmp(w[0], "client") == 0 && nw == 4) {
			if (!client_name_ok(w[1])) {
				as_err_set(err, AS_E_USAGE, 0, "%s:%zu: bad "
				    "client name '%s'", what, ln, w[1]);
				goto out;
			}
			for (i = 0; i < t.nclients; i++)
				if (strcmp(t.clients[i].name, w[1]) == 0)
					break;
			if (i < t.nclients) {
				as_err_set(err, AS_E_USAGE, 0, "%s:%zu: client "
				    "'%s' defined twice", what, ln, w[1]);
				goto out;
			}
			if (t.nclients >= SERVE_CLIENTS_MAX) {
				as_err_set(err, AS_E_LIMIT, 0, "%s:%zu: more "
				    "than %d clients", what, ln,
				    SERVE_CLIENTS_MAX);
				goto out;
			}
			t.clients = xreallocarray(t.clients, t.nclients + 1,
			    sizeof(*t.clients));
			cl = &t.clients[t.nclients];
			memset(cl, 0, sizeof(*cl));
			if (strcmp(w[2], "key") == 0) {
				cl->kind = SC_KEY;
				if (key_load(w[3], &cl->key, err) == -1) {
					as_err_prefix(err, "%s:%zu", what, ln);
					goto out;
				}
				for (j = 0; j < t.nclients; j++)
					if (t.clients[j].kind == SC_KEY &&
					    strcmp(t.clients[j].key.id,
					    cl->key.id) == 0)
						break;
				if (j < t.nclients) {
					/* Name the id before wiping it. */
					as_err_set(err, AS_E_USAGE, 0,
					    "%s:%zu: key id '%s' already "
					    "belongs to client '%s'", what, ln,
					    cl->key.id, t.clients[j].name);
					key_clear(&cl->key);
					goto out;
				}
			} else if (strcmp(w[2], "cert") == 0 ||
			    strcmp(w[2], "cert-fingerprint") == 0) {
				cl->kind = SC_CERT;
				if (parse_fp(w[3], cl->fp) == -1) {
					as_err_set(err, AS_E_USAGE, 0,
					    "%s:%zu: expected SHA256:<64 hex "
					    "digits>", what, ln);
					goto out;
				}
			} else {
				as_err_set(err, AS_E_USAGE, 0, "%s:%zu: "
				    "expected 'client NAME key FILE' or "
				    "'client NAME cert SHA256:HEX'", what, ln);
				goto out;
			}
			cl->name = xstrdup(w[1]);
			t.nclients++;
		} else if (strcmp(w[0], "allow") == 0 && nw >= 4 &&
		    nw <= 6 && grant_words_ok(w + 4, nw - 4)) {
			if (!client_name_ok(w[1])) {
				as_err_set(err, AS_E_USAGE, 0, "%s:%zu: bad "
				    "client name '%s'", what, ln, w[1]);
				goto out;
			}
			if (strcmp(w[3], "ro") != 0 &&
			    strcmp(w[3], "rw") != 0) {
				as_err_set(err, AS_E_USAGE, 0, "%s:%zu: "
				    "expected 'ro' or 'rw', not '%s'", what,
				    ln, w[3]);
				goto out;
			}
			if (t.ngrants >= SERVE_GRANTS_MAX) {
				as_err_set(err, AS_E_LIMIT, 0, "%s:%zu: too "
				    "many allow lines", what, ln);
				goto out;
			}
			t.grants = xreallocarray(t.grants, t.ngrants + 1,
			    sizeof(*t.grants));
			g = &t.grants[t.ngrants];
			if (strncmp(w[2], "zfs:", 4) == 0) {
				/* a dataset root: kept as "zfs:POOL/DS" */
				if (zfs_name_check(w[2] + 4, 0, err) == -1) {
					as_err_prefix(err, "%s:%zu", what, ln);
					goto out;
				}
				g->path = xstrdup(w[2]);
			} else if ((g->path = norm_abs(strncmp(w[2], "btrfs:",
			    6) == 0 ? w[2] + 6 : w[2])) == NULL) {
				as_err_set(err, AS_E_USAGE, 0, "%s:%zu: '%s' "
				    "is not an absolute path without '..'",
				    what, ln, w[2]);
				goto out;
			}
			g->client = xstrdup(w[1]);
			g->rw = strcmp(w[3], "rw") == 0;
			g->trusted = has_word(w + 4, nw - 4, "trusted");
			g->safe = has_word(w + 4, nw - 4, "safe");
			t.ngrants++;
		} else {
			as_err_set(err, AS_E_USAGE, 0, "%s:%zu: expected "
			    "'client NAME key FILE', 'client NAME cert "
			    "SHA256:HEX' or 'allow NAME PATH ro|rw "
			    "[trusted] [safe]'", what, ln);
			goto out;
		}
	}
	*cfg = t;
	memset(&t, 0, sizeof(t));
	rc = 0;
out:
	serve_config_release(&t);
	free(copy);
	return rc;
}

int
serve_config_load(struct serve_config *cfg, const char *path,
    struct as_err *err)
{
	struct buf b = BUF_INIT;
	struct stat st;
	ssize_t n;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return as_err_sys(err, errno, "config '%s'", path);
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > SERVE_CONFIG_MAX) {
		as_err_set(err, AS_E_USAGE, 0, "config '%s' is not a regular "
		    "file of at most %u bytes", path, SERVE_CONFIG_MAX);
		goto out;
	}
	n = io_read_full(fd, buf_reserve(&b, (size_t)st.st_size + 1),
	    (size_t)st.st_size + 1);
	if (n == -1) {
		as_err_sys(err, errno, "read config '%s'", path);
		goto out;
	}
	b.len = (size_t)n;
	rc = serve_config_parse(cfg, (const char *)b.data, b.len, path, err);
out:
	close(fd);
	buf_release(&b);
	return rc;
}

/*
 * Access.
 */

/* Refuse a symbolic link in any existing component of p below root. */
static int
check_beneath(const char *root, const char *p, struct as_err *err)
{
	struct stat st;
	size_t rl = strlen(root), i;
	char *tmp;
	int rc = 0;

	tmp = xstrdup(p);
	for (i = rl; ; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		if (i > rl) {
			tmp[i] = '\0';
			if (lstat(tmp, &st) == -1) {
				if (errno != ENOENT && errno != ENOTDIR)
					rc = as_err_sys(err, errno, "'%s'",
					    tmp);
				break;
			}
			if (S_ISLNK(st.st_mode)) {
				rc = as_err_set(err, AS_E_UNSAFE_PATH, 0,
				    "'%s' is a symbolic link", tmp);
				break;
			}
			tmp[i] = p[i];
		}
		if (p[i] == '\0')
			break;
	}
	free(tmp);
	return rc;
}

/*
 * Of the grants that cover a request, the one with the longest root
 * (length l) decides; rw wins among equals.  *best and *bl are the one
 * chosen so far and its length.
 */
static void
grant_pick(const struct serve_grant **best, size_t *bl,
    const struct serve_grant *g, size_t l)
{
	if (*best == NULL || l > *bl || (l == *bl && g->rw)) {
		*best = g;
		*bl = l;
	}
}

char *
serve_resolve(const struct serve_grant *g, size_t ng, const char *client,
    const char *root, const char *req, int need_rw, struct as_err *err)
{
	const struct serve_grant *best = NULL;
	char *n = NULL, *rel = NULL, *out = NULL, *nroot = NULL;
	size_t i, l, bl = 0;

	if (req[0] == '\0' || strlen(req) > PROTO_PATH_MAX) {
		as_err_set(err, AS_E_UNSAFE_PATH, 0, "bad path");
		return NULL;
	}
	/* Relative requests (stdio) are taken from the current directory. */
	rel = req[0] == '/' ? xstrdup(req) : xasprintf("/%s", req);
	if ((n = norm_abs(rel)) == NULL) {
		as_err_set(err, AS_E_UNSAFE_PATH, 0, "'%s': '..' is not "
		    "allowed", req);
		goto out;
	}
	if (root != NULL) {
		if ((nroot = norm_abs(root)) == NULL) {
			as_err_set(err, AS_E_UNSAFE_PATH, 0, "bad root '%s'",
			    root);
			goto out;
		}
		out = strcmp(n, "/") == 0 ? xstrdup(nroot) :
		    strcmp(nroot, "/") == 0 ? xstrdup(n) :
		    xasprintf("%s%s", nroot, n);
		if (check_beneath(nroot, out, err) == -1) {
			free(out);
			out = NULL;
		}
		goto out;
	}
	if (g == NULL) {
		out = req[0] == '/' ? xstrdup(n) : xstrdup(n + 1);
		goto out;
	}
	for (i = 0; i < ng; i++) {
		if (strcmp(g[i].client, client) != 0)
			continue;
		l = strlen(g[i].path);
		if (strcmp(g[i].path, "/") != 0 && (strncmp(n, g[i].path,
		    l) != 0 || (n[l] != '/' && n[l] != '\0')))
			continue;
		grant_pick(&best, &bl, &g[i], l);
	}
	if (best == NULL) {
		as_err_set(err, AS_E_UNSAFE_PATH, 0, "'%s' is not in a root "
		    "granted to client '%s'", req, client);
		goto out;
	}
	if (need_rw && !best->rw) {
		as_err_set(err, AS_E_UNSAFE_PATH, 0, "'%s' is read-only for "
		    "client '%s'", req, client);
		goto out;
	}
	if (check_beneath(best->path, n, err) == -1)
		goto out;
	out = n;
	n = NULL;
out:
	free(rel);
	free(n);
	free(nroot);
	return out;
}

/* Is ds the dataset root or below it? */
static int
ds_beneath(const char *root, const char *ds)
{
	size_t l = strlen(root);

	return strncmp(ds, root, l) == 0 && (ds[l] == '\0' || ds[l] == '/');
}

char *
serve_resolve_dataset(const struct serve_grant *g, size_t ng,
    const char *client, const char *root, const char *req, int need_rw,
    struct as_err *err)
{
	const struct serve_grant *best = NULL;
	size_t i, bl = 0;
	char esc[PROTO_PATH_MAX * 4 + 8];

	log_escape(req, esc, sizeof(esc));
	if (zfs_name_check(req, 0, NULL) == -1) {
		as_err_set(err, AS_E_UNSAFE_PATH, 0, "'zfs:%s' is not a valid "
		    "dataset name", esc);
		return NULL;
	}
	if (root != NULL) {
		/* quick mode: a dataset root, or no dataset at all */
		if (strncmp(root, "zfs:", 4) != 0 ||
		    !ds_beneath(root + 4, req)) {
			as_err_set(err, AS_E_UNSAFE_PATH, 0, "'zfs:%s' is not "
			    "below this server's root", esc);
			return NULL;
		}
		return xstrdup(req);
	}
	if (g == NULL)
		return xstrdup(req);
	for (i = 0; i < ng; i++) {
		if (strcmp(g[i].client, client) != 0 ||
		    strncmp(g[i].path, "zfs:", 4) != 0 ||
		    !ds_beneath(g[i].path + 4, req))
			continue;
		grant_pick(&best, &bl, &g[i], strlen(g[i].path));
	}
	if (best == NULL) {
		as_err_set(err, AS_E_UNSAFE_PATH, 0, "'zfs:%s' is not in a "
		    "dataset root granted to client '%s'", esc, client);
		return NULL;
	}
	if (need_rw && !best->rw) {
		as_err_set(err, AS_E_UNSAFE_PATH, 0, "'zfs:%s' is read-only "
		    "for client '%s'", esc, client);
		return NULL;
	}
	return xstrdup(req);
}

/*
 * One session: the request loop.
 */

struct session {
	struct conn		*c;
	const char		*state;
	const char		*client;	/* for logs and grants */
	const struct serve_grant *grants;	/* NULL: everything */
	size_t			 ngrants;
	const char		*root;		/* quick mode */
	int			 all;		/* stdio, no config: all */
	uint32_t		 features;
	struct buf		 b;
	struct buf		 scratch;
};

static const char *
op_name(uint8_t op)
{
	switch (op) {
	case OP_HOLD:
		return "HOLD";
	case OP_SNAPSHOTS:
		return "SNAPSHOTS";
	case OP_RECEIVE:
		return "RECEIVE";
	case OP_SEND:
		return "SEND";
	case OP_REVERSE:
		return "REVERSE";
	}
	return "?";
}

/* Answer with an error (logged as a refusal when it is one). */
static int
answer_err(struct session *s, const struct proto_request *q,
    const struct as_err *e)
{
	struct as_err e2;
	char esc[512];

	if (e->code == AS_E_UNSAFE_PATH || e->code == AS_E_AUTH)
		log_warn("refused %s '%s' from '%s' (client '%s'): %s",
		    op_name(q->op), log_escape(q->path, esc, sizeof(esc)),
		    s->c->peer, s->client, e->msg);
	else
		log_info("%s '%s' from '%s': %s", op_name(q->op),
		    log_escape(q->path, esc, sizeof(esc)), s->c->peer, e->msg);
	return proto_send_error(s->c, e, &s->scratch, &e2) == -1 ? -1 : 0;
}

/*
 * The engine a request path names (serve_engine.h); *rest is the path
 * after its prefix.  NULL with UNSUPPORTED for an engine this server does
 * not serve.
 */
static const struct serve_engine *const engines[] = {
	&serve_engine_vol,
	&serve_engine_zfs,
	&serve_engine_btrfs,
	&serve_engine_dir,	/* no prefix: last */
};

static const struct serve_engine *
engine_of(const char *path, const char **rest, struct as_err *err)
{
	size_t i, n = proto_engine_prefix(path);

	for (i = 0; i < sizeof(engines) / sizeof(engines[0]); i++) {
		if (strlen(engines[i]->prefix) != n ||
		    strncmp(path, engines[i]->prefix, n) != 0)
			continue;
		*rest = path + n;
		return engines[i];
	}
	as_err_set(err, AS_E_UNSUPPORTED, 0, "'%.*s' datasets are not served "
	    "by this autosync", (int)n, path);
	return NULL;
}

/* Resolve the request's path (after its engine prefix) for access. */
static char *
resolve(struct session *s, const struct serve_engine *eng, const char *path,
    int need_rw, struct as_err *err)
{
	static const struct serve_grant none;

	if (eng->datasets)
		return serve_resolve_dataset(s->grants != NULL || s->all ?
		    s->grants : &none, s->ngrants, s->client, s->root, path,
		    need_rw, err);
	/* Without grants or a root, nothing: unless told "all" (stdio). */
	return serve_resolve(s->grants != NULL || s->all ? s->grants : &none,
	    s->ngrants, s->client, s->root, path, need_rw, err);
}

/*
 * The client's grant that decides for the resolved path p (the longest
 * path, rw before ro), or NULL (quick mode, an ssh login without one).
 */
static const struct serve_grant *
grant_for(const struct session *s, const char *p)
{
	const struct serve_grant *best = NULL;
	size_t i, l, bl = 0;

	for (i = 0; s->grants != NULL && i < s->ngrants; i++) {
		if (strcmp(s->grants[i].client, s->client) != 0)
			continue;
		l = strlen(s->grants[i].path);
		if (strcmp(s->grants[i].path, "/") != 0 &&
		    (strncmp(p, s->grants[i].path, l) != 0 ||
		    (p[l] != '/' && p[l] != '\0')))
			continue;
		if (best == NULL || l > bl || (l == bl && s->grants[i].rw)) {
			best = &s->grants[i];
			bl = l;
		}
	}
	return best;
}

/*
 * Does the client's grant for the resolved path p say "trusted"?  An
 * ssh login without a config (s->all) is: that user can run btrfs
 * receive anyway; quick mode (a root, no grants) never is.
 */
static int
trusted_for(const struct session *s, const char *p)
{
	const struct serve_grant *g;

	if (s->all)
		return 1;
	g = grant_for(s, p);
	return g != NULL && g->trusted;
}

/* Does the client's grant for p say "safe" (dir_policy.h)? */
static int
safe_for(const struct session *s, const char *p)
{
	const struct serve_grant *g;

	if (s->all)
		return 0;
	g = grant_for(s, p);
	return g != NULL && g->safe;
}

static void
ctx_of(struct session *s, struct serve_ctx *x)
{
	x->state = s->state;
	x->idle_ms = s->c->idle_ms > 0 ? s->c->idle_ms : CONN_IDLE_DEFAULT_MS;
	x->peer = s->c->peer;
	x->q = NULL;
}

/*
 * A step that can be silent for long before the answer: a scan of
 * millions of entries or of a cold disk (a send's preparation), the
 * recovery of a large interrupted receive, a wait for a busy
 * destination (HOLD).  With KEEPALIVE negotiated and an engine whose
 * steps may run on a thread (serve_engine.h), the step runs there while
 * this one tells the client every PROTO_KEEPALIVE_MS that the server is
 * still there, so that its idle timeout does not take the silence for
 * a dead server.
 */
static int
with_keepalive(struct session *s, const struct serve_engine *eng,
    int (*fn)(void *, struct as_err *), void *arg, struct as_err *err)
{
	struct bg_job j;
	struct as_err e;
	int alive = 1;

	if (!(s->features & PROTO_F_KEEPALIVE) || !eng->steps_on_thread)
		return fn(arg, err);
	bg_start(&j, fn, arg);
	while (!bg_wait(&j, PROTO_KEEPALIVE_MS))
		if (alive && proto_send_keepalive(s->c, &e) == -1)
			alive = 0;	/* the answer will fail and say so */
	return bg_join(&j, err);
}

/* HOLD's attempts, a busy destination waited for (do_hold). */
struct hold_args {
	const struct serve_engine *eng;
	const struct serve_ctx	*x;
	const char		*p;
	const char		*path;
	const char		*peer;
	struct proto_result	*res;
};

static int
hold_run(void *arg, struct as_err *err)
{
	struct hold_args *a = arg;
	uint64_t deadline;
	int r, waited = 0;

	/*
	 * A session whose client vanished without a word (a reset that
	 * only the client saw) holds the lock until its idle timeout: wait
	 * that long for it rather than answer "busy" to the retry.
	 */
	deadline = conn_now_ms() + (uint64_t)a->x->idle_ms + 2000;
	while ((r = a->eng->hold(a->x, a->p, a->res, err)) == -1 &&
	    err->code == AS_E_CONFLICT && err->sys_errno == EWOULDBLOCK &&
	    conn_now_ms() < deadline) {
		if (!waited)
			log_info("HOLD '%s' from '%s': waiting for a busy "
			    "destination", a->path, a->peer);
		waited = 1;
		(void)poll(NULL, 0, 200);
		as_err_clear(err);
		memset(a->res, 0, sizeof(*a->res));
	}
	return r;
}

static int
do_hold(struct session *s, const struct proto_request *q)
{
	const struct serve_engine *eng;
	struct proto_result res;
	struct serve_ctx x;
	struct as_err err;
	struct stat st;
	const char *rest;
	struct hold_args ha;
	char *p;
	int r;

	as_err_clear(&err);
	memset(&res, 0, sizeof(res));
	if ((eng = engine_of(q->path, &rest, &err)) == NULL)
		return answer_err(s, q, &err);
	if (eng->hold == NULL) {
		as_err_set(&err, AS_E_UNSUPPORTED, 0, "'%s': this server "
		    "cannot receive %s datasets", q->path, eng->what);
		return answer_err(s, q, &err);
	}
	if ((p = resolve(s, eng, rest, 1, &err)) == NULL)
		return answer_err(s, q, &err);
	if (!eng->datasets && lstat(p, &st) == -1) {
		if (errno != ENOENT) {
			as_err_sys(&err, errno, "destination '%s'", q->path);
			free(p);
			return answer_err(s, q, &err);
		}
		res.flags = RES_F_EMPTY;
		free(p);
		return proto_send_result(s->c, &res, &s->scratch, &err);
	}
	ctx_of(s, &x);
	x.q = q;
	ha = (struct hold_args){ eng, &x, p, q->path, s->c->peer, &res };
	r = with_keepalive(s, eng, hold_run, &ha, &err);
	free(p);
	if (r == -1) {
		as_err_prefix(&err, "destination '%s'", q->path);
		return answer_err(s, q, &err);
	}
	return proto_send_result(s->c, &res, &s->scratch, &err);
}

static int
recv_fail(struct conn *c, void *arg, const struct as_err *rerr,
    struct as_err *err)
{
	struct session *s = arg;

	return proto_send_error(c, rerr, &s->scratch, err);
}

static int
do_receive(struct session *s, const struct proto_request *q)
{
	const struct serve_engine *eng;
	struct proto_result res;
	struct xfer_opts xo;
	struct xfer_rcvd *rc;
	struct serve_recv sr;
	int safe;
	struct as_err err;
	struct stat st;
	const char *rest;
	char *p, esc[512], *end;
	int r, existed;

	as_err_clear(&err);
	memset(&sr, 0, sizeof(sr));
	sr.state = s->state;
	if ((eng = engine_of(q->path, &rest, &err)) == NULL)
		return answer_err(s, q, &err);
	if (eng->hold == NULL) {
		as_err_set(&err, AS_E_UNSUPPORTED, 0, "'%s': this server "
		    "cannot receive %s datasets", q->path, eng->what);
		return answer_err(s, q, &err);
	}
	if (q->flags & REQ_F_RESUME) {
		if (!eng->resumable) {
			as_err_set(&err, AS_E_UNSUPPORTED, 0, "'%s': %s "
			    "transfers do not resume", q->path, eng->what);
			return answer_err(s, q, &err);
		}
		errno = 0;
		sr.resume_off = strncmp(q->id, "resume:", 7) != 0 ? 0 :
		    strtoull(q->id + 7, &end, 10);
		if (strncmp(q->id, "resume:", 7) != 0 || errno != 0 ||
		    *end != '\0' || end == q->id + 7 || q->guid == 0) {
			as_err_set(&err, AS_E_MALFORMED, 0, "RECEIVE with "
			    "RESUME needs a guid and id 'resume:OFFSET'");
			return answer_err(s, q, &err);
		}
		sr.resume_guid = q->guid;
	}
	if ((p = resolve(s, eng, rest, 1, &err)) == NULL)
		return answer_err(s, q, &err);
	sr.trusted = trusted_for(s, p);
	sr.flags = q->flags;
	sr.id = q->id;
	if (eng->trust && !sr.trusted) {
		/* before GO: not one byte of the stream is read */
		as_err_set(&err, AS_E_AUTH, 0, "'%s': client '%s' is not "
		    "trusted to send %s streams here (serve.conf: 'allow %s "
		    "PATH rw trusted')", q->path, s->client, eng->what,
		    s->client);
		free(p);
		return answer_err(s, q, &err);
	}
	safe = safe_for(s, p);
	if (safe && eng != &serve_engine_dir) {
		/* a native stream is not made of entries the policy judges */
		as_err_set(&err, AS_E_UNSUPPORTED, 0, "'%s': client '%s' may "
		    "only push directory trees here (serve.conf: 'safe'), "
		    "not %s streams", q->path, s->client, eng->what);
		free(p);
		return answer_err(s, q, &err);
	}
	memset(&res, 0, sizeof(res));
	res.flags = RES_F_GO;
	if (proto_send_result(s->c, &res, &s->scratch, &err) == -1) {
		free(p);
		return -1;
	}
	memset(&xo, 0, sizeof(xo));
	xo.features = s->features;
	xo.receiver = eng->receive;
	xo.receiver_arg = &sr;
	existed = lstat(p, &st) == 0;
	rc = xcalloc(1, sizeof(*rc));
	r = xfer_recv(s->c, &xo, p, ((q->flags & REQ_F_FORCE) ?
	    DIR_RECV_FORCE : 0) | (safe ? DIR_RECV_SAFE : 0), recv_fail, s,
	    rc, &err);
	log_escape(q->path, esc, sizeof(esc));
	/* A failed first receive leaves nothing behind. */
	if ((r == -1 || rc->recv_rc != 0) && !existed &&
	    eng->receive_failed != NULL)
		eng->receive_failed(p);
	if (r == -1) {
		log_warn("receive '%s' from '%s': %s", esc, s->c->peer,
		    err.msg);
		if (rc->recv_rc == 0)
			log_info("receive '%s': the stream was committed "
			    "before the connection failed", esc);
		free(rc);
		free(p);
		return -1;
	}
	free(p);
	if (rc->told) {
		log_info("receive '%s' from '%s': %s", esc, s->c->peer,
		    rc->rerr.msg);
		free(rc);
		return 0;
	}
	if (rc->recv_rc != 0) {
		as_err_prefix(&rc->rerr, "receive '%s'", q->path);
		r = answer_err(s, q, &rc->rerr);
		free(rc);
		return r;
	}
	memset(&res, 0, sizeof(res));
	res.guid = rc->res.target_guid;
	res.base_guid = rc->res.base_guid;
	res.bytes = rc->raw_bytes;
	snprintf(res.name, sizeof(res.name), "%s", rc->res.name);
	log_info("received '%s' into '%s' from '%s' (%" PRIu64 " bytes)",
	    rc->res.name, esc, s->c->peer, rc->raw_bytes);
	free(rc);
	return proto_send_result(s->c, &res, &s->scratch, &err);
}

/* The dataset path behind a request for a source, absolute. */
static char *
source_path(struct session *s, const struct proto_request *q,
    const struct serve_engine **engp, struct as_err *err)
{
	const struct serve_engine *eng;
	const char *rest;
	char *p, *abs, msg[AS_ERR_MSGMAX];

	if ((eng = engine_of(q->path, &rest, err)) == NULL)
		return NULL;
	if (eng->source == NULL || eng->send_prepare == NULL) {
		as_err_set(err, AS_E_UNSUPPORTED, 0, "'%s': this server "
		    "cannot send %s datasets", q->path, eng->what);
		return NULL;
	}
	if ((p = resolve(s, eng, rest, 0, err)) == NULL)
		return NULL;
	if (eng->source(p, err) == -1) {
		snprintf(msg, sizeof(msg), "%s", err != NULL ? err->msg : "");
		as_err_set(err, err != NULL ? err->code : AS_E_NOTFOUND,
		    err != NULL ? err->sys_errno : 0, "source '%s' %s",
		    q->path, msg);
		free(p);
		return NULL;
	}
	abs = snapstore_abspath(p, err);
	free(p);
	*engp = eng;
	return abs;
}

/*
 * A dataset request of a native engine: "DS" or, for a SEND, "DS@SNAP"
 * (an existing snapshot).  The dataset is resolved for access; *snap is
 * the part after '@' (allocated), or NULL.
 */
static char *
resolve_native(struct session *s, const struct serve_engine *eng,
    const char *rest, int snap_ok, char **snap, struct as_err *err)
{
	const char *at = eng->datasets ? strchr(rest, '@') : NULL;
	char *ds, *p;

	*snap = NULL;
	if (at == NULL)
		return resolve(s, eng, rest, 0, err);
	if (!snap_ok || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
	    strchr(at + 1, '/') != NULL || strlen(at + 1) > PROTO_NAME_MAX) {
		char esc[PROTO_PATH_MAX * 4 + 8];

		as_err_set(err, AS_E_UNSAFE_PATH, 0, "'%s' does not name a "
		    "dataset%s", log_escape(rest, esc, sizeof(esc)), snap_ok ?
		    " or a snapshot" : "");
		return NULL;
	}
	ds = xstrndup(rest, (size_t)(at - rest));
	p = resolve(s, eng, ds, 0, err);
	free(ds);
	if (p != NULL)
		*snap = xstrdup(at + 1);
	return p;
}

/* The listing v as SNAPLIST frames (an empty one for none). */
static int
send_snaplist(struct session *s, const struct proto_snap *v, size_t n,
    struct as_err *err)
{
	size_t i = 0, k;

	do {
		k = n - i < PROTO_SNAPLIST_BATCH ? n - i :
		    PROTO_SNAPLIST_BATCH;
		proto_enc_snaplist(&s->scratch, v + i, (uint32_t)k,
		    i + k < n);
		if (frame_send(s->c, PT_SNAPLIST, s->scratch.data,
		    s->scratch.len, err) == -1)
			return -1;
		i += k;
	} while (i < n);
	return 0;
}

/* SNAPSHOTS of a native engine: its own listing. */
static int
snapshots_native(struct session *s, const struct proto_request *q,
    const struct serve_engine *eng, const char *rest)
{
	struct proto_snap *v = NULL;
	struct serve_ctx x;
	struct as_err err;
	char *p, *snap;
	size_t n = 0;
	int rc;

	as_err_clear(&err);
	if ((p = resolve_native(s, eng, rest, 0, &snap, &err)) == NULL)
		return answer_err(s, q, &err);
	ctx_of(s, &x);
	if (eng->list(&x, p, q->flags, &v, &n, &err) == -1) {
		free(p);
		as_err_prefix(&err, "source '%s'", q->path);
		return answer_err(s, q, &err);
	}
	free(p);
	rc = send_snaplist(s, v, n, &err);
	free(v);
	return rc;
}

static int
do_snapshots(struct session *s, const struct proto_request *q)
{
	const struct serve_engine *eng;
	struct snapstore ss;
	struct snap_list l;
	struct proto_snap v[PROTO_SNAPLIST_BATCH];
	struct as_err err;
	const char *rest;
	char *abs;
	size_t i, k;
	uint32_t n;

	as_err_clear(&err);
	memset(&ss, 0, sizeof(ss));
	ss.lock_fd = -1;
	if ((eng = engine_of(q->path, &rest, &err)) != NULL &&
	    eng->list != NULL)
		return snapshots_native(s, q, eng, rest);
	as_err_clear(&err);
	if ((abs = source_path(s, q, &eng, &err)) == NULL)
		return answer_err(s, q, &err);
	if (snapstore_open(&ss, s->state, abs, 0, &err) == -1 ||
	    snapstore_list(&ss, 0, &l, &err) == -1) {
		free(abs);
		snapstore_release(&ss);
		return answer_err(s, q, &err);
	}
	free(abs);
	snapstore_release(&ss);
	i = 0;
	do {
		n = 0;
		for (k = 0; k < PROTO_SNAPLIST_BATCH && i < l.n; k++, i++) {
			memset(&v[n], 0, sizeof(v[n]));
			v[n].guid = l.v[i].guid;
			v[n].base_guid = l.v[i].base_guid;
			v[n].time_ns = l.v[i].time_ns;
			snprintf(v[n].name, sizeof(v[n].name), "%s",
			    l.v[i].name);
			n++;
		}
		proto_enc_snaplist(&s->scratch, v, n, i < l.n);
		if (frame_send(s->c, PT_SNAPLIST, s->scratch.data,
		    s->scratch.len, &err) == -1) {
			snap_list_release(&l);
			return -1;
		}
	} while (i < l.n);
	snap_list_release(&l);
	return 0;
}

/*
 * The directory engine.
 */

static int
dir_hold_fn(const struct serve_ctx *x, const char *path,
    struct proto_result *res, struct as_err *err)
{
	struct cat_header h;
	struct dir_partial p;
	int r;

	(void)x;
	if ((r = dir_recover(path, err)) == -1)
		return -1;
	if (r == 1)
		res->flags |= RES_F_RECOVERED;
	/* a checkpointed transfer (dir.h): base_guid and its position */
	if ((r = dir_partial(path, &p, err)) == -1)
		return -1;
	if (r == 1) {
		res->flags |= RES_F_PARTIAL;
		res->base_guid = p.target_guid;
		res->bytes = p.pos;
	}
	memset(&h, 0, sizeof(h));
	if ((r = dir_held(path, &h, err)) == -1)
		return -1;
	if (r == 1) {
		res->flags |= RES_F_HELD;
		res->guid = h.guid;
		res->time_ns = h.time_ns;
		snprintf(res->name, sizeof(res->name), "%s", h.name);
		cat_header_release(&h);
	} else
		res->flags |= RES_F_EMPTY;
	return 0;
}

/* RECEIVE, resumed (REQ_F_RESUME) or not. */
static int
dir_serve_receive(void *arg, const char *dest, int in_fd, int rflags,
    struct dir_recv_result *res, struct as_err *err)
{
	const struct serve_recv *sr = arg;

	return dir_receive_resume(dest, in_fd, rflags, sr->resume_guid,
	    sr->resume_off, res, err);
}

static void
dir_receive_failed(const char *path)
{
	(void)rmdir(path);	/* no empty directory left behind */
}

static int
dir_source(const char *path, struct as_err *err)
{
	struct stat st;

	if (lstat(path, &st) == -1 || !S_ISDIR(st.st_mode))
		return as_err_set(err, AS_E_NOTFOUND, errno, "%s",
		    errno == ENOENT ? "does not exist" : "is not a directory");
	return 0;
}

struct resave {
	struct snapstore	*ss;
	struct catalog		*target;
};

static int
resave(void *arg, struct as_err *err)
{
	struct resave *rs = arg;

	return snapstore_save(rs->ss, rs->target, SNAP_SAVE_PENDING, err);
}

/* Scan now, send the scan (following files that change meanwhile). */
static int
dir_send_prepare(struct serve_send *s, struct as_err *err)
{
	struct resave *rs;

	if (sync_snapshot(s->ss, s->abs, s->spec, s->base, s->block_size,
	    s->target, s->sr, err) == -1 ||
	    snapstore_save(s->ss, s->target, SNAP_SAVE_PENDING, err) == -1)
		return -1;
	rs = xcalloc(1, sizeof(*rs));
	rs->ss = s->ss;
	rs->target = s->target;
	s->priv = rs;
	s->xs->root = s->abs;
	s->xs->target = s->target;
	s->xs->base = s->base;
	s->xs->sflags = DIR_SEND_LIVE;
	s->xs->fd = -1;
	s->xs->after = resave;
	s->xs->after_arg = rs;
	s->estimate = xfer_estimate(s->target, s->base);
	return 0;
}

/*
 * A cut pull of a directory tree (send_resume): pguid is the interrupted
 * snapshot, off the DIR_POS up to which the destination holds it.  The
 * record's pending catalog must be that snapshot, made from what the
 * destination holds (I6), and the tree as it was then: the stream is
 * regenerated from a new scan, so the scan must match the pending
 * catalog entry for entry.  Then the pending snapshot is sent again
 * (its guid, time, name) from off.  0 otherwise, the reason logged (a
 * warning: the whole snapshot is sent again): serve settles and sends a
 * new snapshot from the start.
 */
static int
dir_serve_send_resume(struct serve_send *s, const struct snap_dest *rec,
    uint64_t pguid, uint64_t off, struct as_err *err)
{
	struct catalog pend;
	struct as_err e2;
	char esc[512], why[300];
	uint64_t held = s->base != NULL ? s->base->hdr.guid : 0;
	int rc = 0;

	catalog_init(&pend);
	log_escape(s->spec, esc, sizeof(esc));
	if (off == 0 || rec->pending[0] == '\0' ||
	    snapstore_load_pending(s->ss, rec->pending, &pend, &e2) == -1 ||
	    pend.hdr.guid != pguid || pend.hdr.kind != AS_KIND_DIR ||
	    pend.hdr.base_guid != held) {
		log_warn("send '%s' to '%s': no interrupted transfer of %016"
		    PRIx64 " from %016" PRIx64 " to resume: starting over",
		    esc, s->x->peer, pguid, held);
		goto out;
	}
	if (dir_send_prepare(s, err) == -1) {
		rc = -1;
		goto out;
	}
	if (sync_tree_changed(s->target, &pend, why, sizeof(why)) != NULL) {
		log_warn("send '%s' to '%s': the source changed since the "
		    "interrupted transfer of %s ('%s'): starting over", esc,
		    s->x->peer, pend.hdr.name, why);
		/* serve settles and prepares again: leave nothing of this */
		(void)snapstore_discard_pending(s->ss, s->target->hdr.name,
		    &e2);
		free(s->priv);
		s->priv = NULL;
		memset(s->xs, 0, sizeof(*s->xs));
		catalog_release(s->target);
		catalog_init(s->target);
		s->estimate = 0;
		goto out;
	}
	/* the same snapshot again: its name, guid and time */
	(void)snapstore_discard_pending(s->ss, s->target->hdr.name, &e2);
	s->target->hdr.guid = pend.hdr.guid;
	s->target->hdr.time_ns = pend.hdr.time_ns;
	snprintf(s->target->hdr.name, sizeof(s->target->hdr.name), "%s",
	    pend.hdr.name);
	if (snapstore_save(s->ss, s->target, SNAP_SAVE_PENDING, err) == -1) {
		rc = -1;
		goto out;
	}
	s->xs->resume_pos = off;
	/* for a directory, the position itself (the RESULT's bytes) */
	s->resume_block = off;
	s->estimate = 0;
	rc = 1;
out:
	catalog_release(&pend);
	return rc;
}

const struct serve_engine serve_engine_dir = {
	.prefix		= "",
	.what		= "directory",
	.hold		= dir_hold_fn,
	.receive	= dir_serve_receive,
	.resumable	= 1,
	.receive_failed	= dir_receive_failed,
	.source		= dir_source,
	.send_prepare	= dir_send_prepare,
	.send_resume	= dir_serve_send_resume,
	.steps_on_thread = 1,
};

static int
clamp_level(int l)
{
	if (l == 0)
		return 0;
	if (l > 19)
		return 19;
	if (l < -7)
		return -7;
	return l;
}

/*
 * The stream of a SEND, then the client's COMMIT into cm (sent while the
 * stream still ran, or after it): 0, or -1 (logged with the peer and
 * esc, the request's path) when either failed and the connection is
 * done.  Shared by the catalog engines (do_send) and the native ones.
 */
static int
send_stream_commit(struct session *s, const struct proto_request *q,
    struct xfer_src *xs, const char *esc, struct proto_commit *cm)
{
	struct xfer_opts xo;
	struct xfer_sent sent;
	struct as_err err;
	int t = -1;

	as_err_clear(&err);
	memset(&xo, 0, sizeof(xo));
	memset(&sent, 0, sizeof(sent));
	buf_init(&sent.early);
	xo.features = s->features;
	xo.zstd_level = clamp_level(q->zstd_level);
	/*
	 * The level is the peer's (one signed byte on the wire): out of
	 * our range it is clamped, and said, so that a peer asking for
	 * 127 or -128 is visible (RELIABILITY.md #60).  Without zstd
	 * negotiated it is not used at all (xfer_send).
	 */
	if (xo.zstd_level != q->zstd_level && (s->features & PROTO_F_ZSTD))
		log_warn("send '%s': '%s' asked for zstd level %d, using %d",
		    esc, s->c->peer, q->zstd_level, xo.zstd_level);
	if (xfer_send(s->c, &xo, xs, &sent, &err) == -1)
		goto fail;
	if (sent.sender_rc == -1)
		log_warn("send '%s' to '%s': %s", esc, s->c->peer,
		    sent.serr.msg);
	if (sent.stopped && sent.early_type != PT_COMMIT) {
		log_warn("send '%s': '%s' sent frame type %u during the "
		    "stream", esc, s->c->peer, sent.early_type);
		t = -1;
		goto out;
	}
	if (sent.stopped)
		t = proto_dec_commit(cm, sent.early.data, sent.early.len,
		    &err);
	else if ((t = proto_expect(s->c, PT_COMMIT, &s->b, NULL, &err)) == 0)
		t = proto_dec_commit(cm, s->b.data, s->b.len, &err);
	if (t != -1)
		goto out;
fail:
	log_warn("send '%s' to '%s': %s", esc, s->c->peer, err.msg);
	t = -1;
out:
	buf_release(&sent.early);
	return t == -1 ? -1 : 0;
}

/*
 * SEND of a native engine: the engine snapshots (or names an existing
 * snapshot) and sends; COMMIT is handed to it.  The catalogs are not
 * involved.
 */
static int
send_native(struct session *s, const struct proto_request *q,
    const struct serve_engine *eng, const char *rest)
{
	struct serve_nsend ns;
	struct serve_ctx x;
	struct proto_result res;
	struct proto_commit cm;
	struct as_err err;
	char *p, *snap = NULL, esc[512];
	int rc = 0;

	as_err_clear(&err);
	memset(&ns, 0, sizeof(ns));
	log_escape(q->path, esc, sizeof(esc));
	if (q->id[0] == '\0') {
		as_err_set(&err, AS_E_MALFORMED, 0, "SEND without a "
		    "destination name");
		return answer_err(s, q, &err);
	}
	if ((p = resolve_native(s, eng, rest, 1, &snap, &err)) == NULL)
		return answer_err(s, q, &err);
	ctx_of(s, &x);
	ns.xs.fd = -1;
	if (eng->nsend(&x, p, snap, q, &ns, &err) == -1) {
		free(p);
		free(snap);
		as_err_prefix(&err, "source '%s'", q->path);
		return answer_err(s, q, &err);
	}
	free(p);
	free(snap);
	if (proto_send_result(s->c, &ns.res, &s->scratch, &err) == -1) {
		rc = -1;
		goto out;
	}
	if (send_stream_commit(s, q, &ns.xs, esc, &cm) == -1) {
		rc = -1;
		goto out;
	}
	if (!cm.ok)
		log_info("send '%s' to '%s': the receiver failed: %s", esc,
		    s->c->peer, cm.msg);
	memset(&res, 0, sizeof(res));
	if (eng->ncommit(&x, &ns, &cm, q->id, &err) == -1) {
		rc = answer_err(s, q, &err);
		goto out;
	}
	res.guid = cm.held_guid;
	if (cm.ok && cm.held_guid == ns.res.guid)
		log_info("sent '%s' as '%s' to '%s'", esc, ns.res.name,
		    s->c->peer);
	rc = proto_send_result(s->c, &res, &s->scratch, &err);
out:
	if (eng->nrelease != NULL)
		eng->nrelease(&ns);
	return rc;
}

/* The steps before a send's first byte (send_prepare, send_resume). */
struct step_args {
	const struct serve_engine *eng;
	struct serve_send	*sp;
	const struct snap_dest	*rec;
	uint64_t		 rguid, roff;
};

static int
prepare_run(void *arg, struct as_err *err)
{
	struct step_args *a = arg;

	return a->eng->send_prepare(a->sp, err);
}

static int
resume_run(void *arg, struct as_err *err)
{
	struct step_args *a = arg;

	return a->eng->send_resume(a->sp, a->rec, a->rguid, a->roff, err);
}

static int
do_send(struct session *s, const struct proto_request *q)
{
	const struct serve_engine *eng = NULL;
	struct snapstore ss;
	struct snap_dest rec;
	struct catalog base, target;
	struct sync_result *sr;
	struct proto_result res;
	struct proto_commit cm;
	struct xfer_src xs;
	struct serve_send sp;
	struct serve_ctx x;
	struct as_err err, e2;
	char *abs = NULL, esc[512], *end;
	const char *id = q->id;
	uint64_t rguid = 0, roff = 0;
	int rc = 0, have_base = 0, resumed = 0;
	struct step_args sa = { NULL, NULL, NULL, 0, 0 };

	as_err_clear(&err);
	{
		const char *rest;

		if ((eng = engine_of(q->path, &rest, &err)) != NULL &&
		    eng->nsend != NULL)
			return send_native(s, q, eng, rest);
		as_err_clear(&err);
		eng = NULL;
	}
	memset(&ss, 0, sizeof(ss));
	memset(&rec, 0, sizeof(rec));
	memset(&sp, 0, sizeof(sp));
	memset(&xs, 0, sizeof(xs));
	ss.lock_fd = -1;
	catalog_init(&base);
	catalog_init(&target);
	sr = xcalloc(1, sizeof(*sr));
	log_escape(q->path, esc, sizeof(esc));
	if (q->id[0] == '\0') {
		as_err_set(&err, AS_E_MALFORMED, 0, "SEND without a "
		    "destination name");
		goto refuse;
	}
	if (q->flags & REQ_F_RESUME) {
		/* id is "resume:GUID:OFFSET:" and the destination's name */
		errno = 0;
		if (strncmp(id, "resume:", 7) == 0) {
			rguid = strtoull(id + 7, &end, 16);
			if (*end == ':' && end != id + 7) {
				id = end + 1;
				roff = strtoull(id, &end, 10);
				id = *end == ':' && end != id ? end + 1 : NULL;
			} else
				id = NULL;
		} else
			id = NULL;
		if (id == NULL || errno != 0 || rguid == 0 || *id == '\0') {
			as_err_set(&err, AS_E_MALFORMED, 0, "SEND with RESUME "
			    "needs an id 'resume:GUID:OFFSET:NAME'");
			goto refuse;
		}
	}
	if ((abs = source_path(s, q, &eng, &err)) == NULL)
		goto refuse;
	if (snapstore_open(&ss, s->state, abs, 1, &err) == -1 ||
	    snapstore_lock(&ss, &err) == -1 ||
	    snapstore_dest_get(&ss, id, &rec, &err) == -1)
		goto refuse;
	ctx_of(s, &x);
	sp.x = &x;
	sp.ss = &ss;
	sp.abs = abs;
	sp.spec = q->path;
	sp.target = &target;
	sp.sr = sr;
	sp.xs = &xs;
	/*
	 * A cut pull that the destination can continue: its pending
	 * snapshot is not settled but resumed (an engine that cannot says
	 * so with 0, and a new snapshot is sent from the start).
	 */
	if (rguid != 0 && eng->send_resume != NULL) {
		if (q->guid != 0 && (have_base = snapstore_load_guid(&ss,
		    q->guid, &base, &err)) == -1)
			goto refuse;
		if (q->guid == 0 || have_base == 1) {
			sp.base = have_base ? &base : NULL;
			sp.block_size = have_base ? base.hdr.block_size :
			    AS_BLOCK_DEFAULT;
			sa = (struct step_args){ eng, &sp, &rec, rguid,
			    roff };
			if ((resumed = with_keepalive(s, eng, resume_run, &sa,
			    &err)) == -1)
				goto refuse;
		}
		if (!resumed) {
			catalog_release(&base);
			catalog_init(&base);
			have_base = 0;
		}
	}
	if (resumed)
		goto go;
	if (sync_settle(&ss, id, q->guid, &rec, sr, &err) == -1)
		goto refuse;
	if (q->guid != 0) {
		have_base = snapstore_load_guid(&ss, q->guid, &base, &err);
		if (have_base == -1)
			goto refuse;
		if (have_base == 0 && !(q->flags & REQ_F_FORCE)) {
			as_err_set(&err, AS_E_CONFLICT, 0, "no common "
			    "snapshot: the destination holds %016" PRIx64
			    " which '%s' does not have; use -F for a full "
			    "resend", q->guid, q->path);
			goto refuse;
		}
	}
	sp.base = have_base ? &base : NULL;
	sp.block_size = have_base ? base.hdr.block_size : AS_BLOCK_DEFAULT;
	sa.eng = eng;
	sa.sp = &sp;
	if (with_keepalive(s, eng, prepare_run, &sa, &err) == -1)
		goto refuse;
	snprintf(rec.pending, sizeof(rec.pending), "%s", target.hdr.name);
	rec.held_guid = q->guid;
	if (snapstore_dest_put(&ss, id, &rec, &err) == -1)
		goto refuse;

go:
	memset(&res, 0, sizeof(res));
	res.flags = RES_F_GO | (have_base ? 0 : RES_F_FULL) |
	    (resumed ? RES_F_PARTIAL : 0);
	res.guid = target.hdr.guid;
	res.base_guid = have_base ? base.hdr.guid : 0;
	res.time_ns = target.hdr.time_ns;
	/* resumed: where the stream starts, else its size (for progress) */
	res.bytes = !resumed ? sp.estimate : eng == &serve_engine_dir ?
	    sp.resume_block : sp.resume_block * target.hdr.block_size;
	if (resumed)
		log_info("send '%s' to '%s': resuming '%s' at %" PRIu64,
		    esc, s->c->peer, target.hdr.name, res.bytes);
	snprintf(res.name, sizeof(res.name), "%s", target.hdr.name);
	if (proto_send_result(s->c, &res, &s->scratch, &err) == -1) {
		rc = -1;
		goto out;
	}
	/* on failure the pending catalog stays: the next SEND settles it */
	if (send_stream_commit(s, q, &xs, esc, &cm) == -1) {
		rc = -1;
		goto out;
	}
	memset(&res, 0, sizeof(res));
	if (cm.ok && cm.held_guid == target.hdr.guid) {
		if (snapstore_save(&ss, &target, SNAP_SAVE_REPLACE,
		    &err) == -1)
			goto refuse;
		rec.held_guid = target.hdr.guid;
		rec.pending[0] = '\0';
		if (snapstore_dest_put(&ss, id, &rec, &err) == -1)
			goto refuse;
		if (sync_prune(&ss, target.hdr.guid, &sr->pruned, &e2) == -1)
			log_warn("prune snapshots of '%s': %s", esc, e2.msg);
		res.guid = target.hdr.guid;
		log_info("sent '%s' as '%s' to '%s'", esc, target.hdr.name,
		    s->c->peer);
	} else if (!cm.ok && (cm.code == AS_E_TRUNCATED || cm.code ==
	    AS_E_IO || cm.code == AS_E_TIMEOUT || cm.code == AS_E_NOSPACE ||
	    cm.code == AS_E_CHECKSUM)) {
		/*
		 * The receiver may have checkpointed it (it keeps its
		 * checkpoint for these, dir_recv.c keeps_checkpoint): the
		 * pending catalog stays for a resume; the next plain SEND
		 * settles it.
		 */
		res.guid = cm.held_guid;
		log_info("send '%s' to '%s': the receiver failed: %s", esc,
		    s->c->peer, cm.msg);
	} else {
		(void)snapstore_discard_pending(&ss, target.hdr.name, &e2);
		rec.held_guid = cm.held_guid;
		rec.pending[0] = '\0';
		(void)snapstore_dest_put(&ss, id, &rec, &e2);
		res.guid = cm.held_guid;
		if (!cm.ok)
			log_info("send '%s' to '%s': the receiver failed: %s",
			    esc, s->c->peer, cm.msg);
	}
	rc = proto_send_result(s->c, &res, &s->scratch, &err);
	goto out;
refuse:
	rc = answer_err(s, q, &err);
out:
	catalog_release(&base);
	catalog_release(&target);
	snap_dest_release(&rec);
	snapstore_release(&ss);
	free(abs);
	free(sr);
	free(sp.priv);
	return rc;
}

/*
 * REVERSE of a volume (failback.h, failback_vol_*), the server's side:
 * the same messages as a directory's.  A source that changed since
 * q->guid and is forced sends the catalog of what it holds now (a new
 * snapshot whose base_guid is q->guid) instead of q->guid's.
 */
/*
 * A REVERSE whose path is now a destination holding g: the result (the
 * differences found, rolled back by the next run) and g's catalog, whose
 * hashes spare the client's first run from resending what both hold.
 */
static int
answer_demoted(struct session *s, const char *esc, uint64_t guid,
    const struct catalog *g, const struct failback_drift *d,
    struct as_err *err)
{
	struct proto_result res;
	struct buf blob = BUF_INIT;
	int rc;

	memset(&res, 0, sizeof(res));
	res.guid = guid;
	res.time_ns = g->hdr.time_ns;
	res.bytes = d->ndiff;
	snprintf(res.name, sizeof(res.name), "%s", g->hdr.name);
	snprintf(res.msg, sizeof(res.msg), "%s", d->first);
	log_info("reverse '%s' for '%s': a destination holding '%s'%s", esc,
	    s->c->peer, g->hdr.name, d->ndiff > 0 ? " (changed since: rolled "
	    "back by the next run)" : "");
	if (proto_send_result(s->c, &res, &s->scratch, err) == -1)
		return -1;
	catalog_encode(g, &blob);
	rc = proto_send_blob(s->c, blob.data, blob.len, &s->scratch, err);
	buf_release(&blob);
	return rc;
}

static int
do_reverse_vol(struct session *s, const struct proto_request *q,
    const char *p, const char *esc)
{
	struct failback_drift d;
	struct proto_result res;
	struct snapstore ss;
	struct catalog g;
	struct buf blob = BUF_INIT;
	struct as_err err;
	uint64_t size, held = 0;
	char name[256];
	char *abs = NULL;
	int rc = 0, is_blk, h;

	as_err_clear(&err);
	memset(&ss, 0, sizeof(ss));
	memset(&res, 0, sizeof(res));
	ss.lock_fd = -1;
	catalog_init(&g);
	name[0] = '\0';
	if (vol_probe(p, &size, &is_blk, &err) == -1 ||
	    (abs = snapstore_abspath(p, &err)) == NULL ||
	    snapstore_open(&ss, s->state, abs, 1, &err) == -1 ||
	    snapstore_lock(&ss, &err) == -1)
		goto refuse;
	if (q->flags & REQ_F_SOURCE) {
		if (vol_recover(abs, s->state, &err) == -1 ||
		    (h = vol_held(abs, s->state, &held, name, &err)) == -1)
			goto refuse;
		if (h == 0 || held != q->guid) {
			as_err_set(&err, AS_E_CONFLICT, 0, "'%s' holds %s, not "
			    "%016" PRIx64 ": a run came in between", q->path,
			    h ? name : "no snapshot", q->guid);
			goto refuse;
		}
		res.flags = RES_F_GO;
		if (proto_send_result(s->c, &res, &s->scratch, &err) == -1)
			goto fail;
		if (proto_recv_blob(s->c, &blob, PROTO_BLOB_MAX, &s->b,
		    &err) == -1)
			goto fail;
		if (catalog_decode(&g, blob.data, blob.len, &err) == -1) {
			as_err_prefix(&err, "the client's catalog");
			goto refuse;
		}
		if (failback_vol_promote(&ss, abs, s->state, q->guid, &g,
		    q->id, &err) == -1)
			goto refuse;
		memset(&res, 0, sizeof(res));
		res.guid = q->guid;
		res.time_ns = g.hdr.time_ns;
		snprintf(res.name, sizeof(res.name), "%s", name);
		log_info("reverse '%s' for '%s': a source from '%s' on", esc,
		    s->c->peer, g.hdr.name);
		rc = proto_send_result(s->c, &res, &s->scratch, &err);
		goto out;
	}
	if (failback_vol_check_source(&ss, abs, q->guid, q->id[0] != '\0' ?
	    q->id : "the client's destination", (q->flags & REQ_F_FORCE) != 0,
	    &g, &d, &err) == -1 ||
	    failback_vol_demote(abs, s->state, &g, &err) == -1)
		goto refuse;
	if (answer_demoted(s, esc, q->guid, &g, &d, &err) == -1)
		goto fail;
	goto out;
refuse:
	rc = answer_err(s, q, &err);
	goto out;
fail:
	log_warn("reverse '%s' from '%s': %s", esc, s->c->peer, err.msg);
	rc = -1;
out:
	buf_release(&blob);
	catalog_release(&g);
	snapstore_release(&ss);
	free(abs);
	return rc;
}

/*
 * REVERSE of an engine that does it whole (serve_engine.h's reverse:
 * zfs:): one RESULT, no catalog either way.
 */
static int
do_reverse_native(struct session *s, const struct proto_request *q,
    const struct serve_engine *eng, const char *p, const char *esc)
{
	struct serve_ctx x;
	struct proto_result res;
	struct as_err err;

	as_err_clear(&err);
	memset(&res, 0, sizeof(res));
	ctx_of(s, &x);
	if (eng->reverse(&x, p, q, &res, &err) == -1)
		return answer_err(s, q, &err);
	if (q->flags & REQ_F_SOURCE)
		log_info("reverse '%s' for '%s': a source from '%s' on", esc,
		    s->c->peer, res.name);
	else
		log_info("reverse '%s' for '%s': a destination holding "
		    "'%s'%s", esc, s->c->peer, res.name, res.bytes > 0 ?
		    " (rolled back to it)" : "");
	return proto_send_result(s->c, &res, &s->scratch, &err) == -1 ?
	    -1 : 0;
}

/*
 * REVERSE of a btrfs subvolume (failback_btrfs.h), the server's side.
 * With REQ_F_SOURCE (a push service becomes a pull) p, a view holding
 * q->guid as received, becomes the source: its first snapshot S0 is
 * taken and recorded as held by the pull destination q->id, and the
 * answer is a RESULT then S0 as a blob.  Without (a pull becomes a
 * push) p, a source whose newest snapshot is q->guid and unchanged since
 * (unless REQ_F_FORCE), is answered GO; the client's S0 comes as a blob
 * and p becomes a replica holding it; only for a client trusted with
 * btrfs streams here, whose pushes must come next.
 *
 * A tree (REQ_F_SUBVOLS with REQ_F_TREE): p's nested subvolumes too,
 * each checked here.  With REQ_F_SOURCE, GO once the root is checked,
 * then the client's list (REL and G of each of its nested subvolumes)
 * must name exactly p's, each holding that G as received, before S0s
 * are taken; the answer's blob has an S0 line per subvolume.  Without,
 * every subvolume of p is checked before GO, and the client's S0 lines
 * must name exactly p's nested subvolumes, each with p's G of it.  The
 * client's RELs only ever pick among p's own (btrfs_nested's): no path
 * of the client's is opened.
 */
static int
do_reverse_btrfs(struct session *s, const struct proto_request *q,
    const char *p, const char *esc)
{
	struct failback_btrfs_result fr;
	struct failback_btrfs_base s0;
	struct failback_btrfs_old o;
	struct failback_btrfs_new n;
	struct failback_btrfs_sub *v = NULL, *w = NULL;
	struct proto_result res;
	struct buf blob = BUF_INIT;
	struct as_err err;
	size_t nv = 0, nw = 0;
	int rc = 0, ho = 0, hn = 0, tree = (q->flags & REQ_F_SUBVOLS) != 0;

	as_err_clear(&err);
	memset(&res, 0, sizeof(res));
	memset(&fr, 0, sizeof(fr));
	if (q->guid == 0 || ((q->flags & REQ_F_SOURCE) && q->id[0] == '\0')) {
		as_err_set(&err, AS_E_MALFORMED, 0, "REVERSE needs a snapshot "
		    "(and, to make a source, a destination name)");
		goto refuse;
	}
	if (tree && !(q->flags & REQ_F_TREE)) {
		as_err_set(&err, AS_E_MALFORMED, 0, "REVERSE with "
		    "REQ_F_SUBVOLS needs REQ_F_TREE");
		goto refuse;
	}
	if (q->flags & REQ_F_SOURCE) {
		if ((tree ? failback_btrfs_check_dest_tree(p, q->guid, &n, &fr,
		    &err) : failback_btrfs_check_dest(p, q->guid, 0, &n, &fr,
		    &err)) == -1)
			goto refuse;
		hn = 1;
		if (tree) {
			res.flags = RES_F_GO;
			res.guid = q->guid;
			if (proto_send_result(s->c, &res, &s->scratch,
			    &err) == -1 || proto_recv_blob(s->c, &blob,
			    FAILBACK_BTRFS_TREE_MAX, &s->b, &err) == -1)
				goto fail;
			memset(&res, 0, sizeof(res));
			if (failback_btrfs_tree_decode(blob.data, blob.len, 0,
			    NULL, &v, &nv, &err) == -1 ||
			    failback_btrfs_check_dest_children(&n, q->id, v, nv,
			    &err) == -1 ||
			    failback_btrfs_take_base_tree(&n, &s0, &w, &nw,
			    &err) == -1 ||
			    failback_btrfs_promote_tree(&n, q->id, &err) == -1)
				goto refuse;
		} else if (failback_btrfs_take_base(&n, NULL, &s0, &err) ==
		    -1 || failback_btrfs_promote(&n, q->id, &err) == -1)
			goto refuse;
		res.guid = q->guid;
		snprintf(res.name, sizeof(res.name), "%s", s0.name);
		log_info("reverse '%s' for '%s': a source from '%s' on%s", esc,
		    s->c->peer, s0.name, tree ? " (with its nested "
		    "subvolumes)" : "");
		buf_reset(&blob);
		if (tree)
			failback_btrfs_tree_encode(&s0, w, nw, &blob);
		else
			failback_btrfs_base_encode(&s0, &blob);
		if (proto_send_result(s->c, &res, &s->scratch, &err) == -1 ||
		    proto_send_blob(s->c, blob.data, blob.len, &s->scratch,
		    &err) == -1)
			goto fail;
		goto out;
	}
	if (!trusted_for(s, p)) {
		as_err_set(&err, AS_E_AUTH, 0, "'%s': client '%s' is not "
		    "trusted to send btrfs streams here, as the pushes after "
		    "this reverse would (serve.conf: 'allow %s PATH rw "
		    "trusted')", q->path, s->client, s->client);
		goto refuse;
	}
	if ((tree ? failback_btrfs_check_source_tree(p, q->guid, (q->flags &
	    REQ_F_FORCE) != 0, &o, &fr, &err) : failback_btrfs_check_source(p,
	    q->guid, (q->flags & REQ_F_FORCE) != 0, &o, &fr, &err)) == -1)
		goto refuse;
	ho = 1;
	res.flags = RES_F_GO;
	res.guid = q->guid;
	res.bytes = (uint64_t)fr.changed;
	snprintf(res.name, sizeof(res.name), "%s", fr.common);
	snprintf(res.msg, sizeof(res.msg), "%s", fr.first);
	if (proto_send_result(s->c, &res, &s->scratch, &err) == -1 ||
	    proto_recv_blob(s->c, &blob, tree ? FAILBACK_BTRFS_TREE_MAX : 4096,
	    &s->b, &err) == -1)
		goto fail;
	if (tree ? (failback_btrfs_tree_decode(blob.data, blob.len, 1, &s0,
	    &v, &nv, &err) == -1 || failback_btrfs_demote_tree(&o, &s0, v, nv,
	    q->id, &err) == -1) : (failback_btrfs_base_decode(blob.data,
	    blob.len, &s0, &err) == -1 || failback_btrfs_demote(&o, &s0, q->id,
	    &err) == -1))
		goto refuse;
	memset(&res, 0, sizeof(res));
	res.guid = q->guid;
	snprintf(res.name, sizeof(res.name), "%s", s0.name);
	log_info("reverse '%s' for '%s': a replica holding '%s'%s%s", esc,
	    s->c->peer, s0.name, tree ? " with its nested subvolumes" : "",
	    fr.changed ? " (changed since: rolled back)" : "");
	rc = proto_send_result(s->c, &res, &s->scratch, &err);
	goto out;
refuse:
	rc = answer_err(s, q, &err);
	goto out;
fail:
	log_warn("reverse '%s' from '%s': %s", esc, s->c->peer, err.msg);
	rc = -1;
out:
	if (hn)
		failback_btrfs_new_release(&n);
	if (ho)
		failback_btrfs_old_release(&o);
	free(v);
	free(w);
	buf_release(&blob);
	return rc;
}

/*
 * REVERSE: failback of a directory (failback.h), the server's side.
 * Without REQ_F_SOURCE the path, a source whose newest snapshot is
 * q->guid, becomes a destination holding it (refused when it changed
 * since, unless REQ_F_FORCE), and its catalog of q->guid goes to the
 * client; with it, the path, a destination holding q->guid, becomes a
 * source with the client's catalog's hashes, and the destination q->id
 * is recorded as holding q->guid.  Needs rw either way: both write.
 */
static int
do_reverse(struct session *s, const struct proto_request *q)
{
	const struct serve_engine *eng;
	struct failback_drift d;
	struct proto_result res;
	struct snapstore ss;
	struct cat_header h;
	struct catalog g;
	struct buf blob = BUF_INIT;
	struct as_err err;
	struct stat st;
	const char *rest;
	char *p = NULL, *abs = NULL, esc[512];
	int rc = 0, held = 0;

	as_err_clear(&err);
	memset(&ss, 0, sizeof(ss));
	memset(&h, 0, sizeof(h));
	memset(&res, 0, sizeof(res));
	ss.lock_fd = -1;
	catalog_init(&g);
	log_escape(q->path, esc, sizeof(esc));
	if ((eng = engine_of(q->path, &rest, &err)) == NULL)
		goto refuse;
	if (eng == &serve_engine_btrfs) {
		if ((p = resolve(s, eng, rest, 1, &err)) == NULL)
			goto refuse;
		rc = do_reverse_btrfs(s, q, p, esc);
		goto out;
	}
	if (eng != &serve_engine_dir && eng != &serve_engine_vol &&
	    eng->reverse == NULL) {
		as_err_set(&err, AS_E_UNSUPPORTED, 0, "'%s': reverse is for "
		    "directories, volumes, ZFS datasets and btrfs subvolumes; "
		    "this server cannot "
		    "reverse %s datasets", q->path, eng->what);
		goto refuse;
	}
	if (q->guid == 0 || ((q->flags & REQ_F_SOURCE) && q->id[0] == '\0')) {
		as_err_set(&err, AS_E_MALFORMED, 0, "REVERSE needs a snapshot "
		    "(and, to make a source, a destination name)");
		goto refuse;
	}
	if ((p = resolve(s, eng, rest, 1, &err)) == NULL)
		goto refuse;
	if (eng->reverse != NULL) {
		rc = do_reverse_native(s, q, eng, p, esc);
		goto out;
	}
	if (eng == &serve_engine_vol) {
		rc = do_reverse_vol(s, q, p, esc);
		goto out;
	}
	if (lstat(p, &st) == -1 || !S_ISDIR(st.st_mode)) {
		as_err_set(&err, AS_E_NOTFOUND, errno, "'%s' is not a "
		    "directory", q->path);
		goto refuse;
	}
	if ((abs = snapstore_abspath(p, &err)) == NULL ||
	    snapstore_open(&ss, s->state, abs, 1, &err) == -1 ||
	    snapstore_lock(&ss, &err) == -1)
		goto refuse;
	if (q->flags & REQ_F_SOURCE) {
		if (dir_recover(abs, &err) == -1 ||
		    (held = dir_held(abs, &h, &err)) == -1)
			goto refuse;
		if (held == 0 || h.guid != q->guid) {
			as_err_set(&err, AS_E_CONFLICT, 0, "'%s' holds %s, not "
			    "%016" PRIx64 ": a run came in between", q->path,
			    held ? h.name : "no snapshot", q->guid);
			goto refuse;
		}
		res.flags = RES_F_GO;
		if (proto_send_result(s->c, &res, &s->scratch, &err) == -1)
			goto fail;
		/* a stream out of step ends the session */
		if (proto_recv_blob(s->c, &blob, PROTO_BLOB_MAX, &s->b,
		    &err) == -1)
			goto fail;
		if (catalog_decode(&g, blob.data, blob.len, &err) == -1) {
			as_err_prefix(&err, "the client's catalog");
			goto refuse;
		}
		if (failback_promote(&ss, abs, q->guid, &g, q->id, &err) == -1)
			goto refuse;
		memset(&res, 0, sizeof(res));
		res.guid = h.guid;
		res.time_ns = h.time_ns;
		snprintf(res.name, sizeof(res.name), "%s", h.name);
		log_info("reverse '%s' for '%s': a source from '%s' on", esc,
		    s->c->peer, h.name);
		rc = proto_send_result(s->c, &res, &s->scratch, &err);
		goto out;
	}
	if (failback_check_source(&ss, abs, q->guid, q->id[0] != '\0' ?
	    q->id : "the client's destination", (q->flags & REQ_F_FORCE) != 0,
	    &g, &d, &err) == -1 || failback_demote(abs, &g, &err) == -1)
		goto refuse;
	if (answer_demoted(s, esc, g.hdr.guid, &g, &d, &err) == -1)
		goto fail;
	goto out;
refuse:
	rc = answer_err(s, q, &err);
	goto out;
fail:
	log_warn("reverse '%s' from '%s': %s", esc, s->c->peer, err.msg);
	rc = -1;
out:
	if (held == 1)
		cat_header_release(&h);
	buf_release(&blob);
	catalog_release(&g);
	snapstore_release(&ss);
	free(abs);
	free(p);
	return rc;
}

/*
 * The next frame, or 0 when the peer closed cleanly between requests.
 * Returns 1 with a frame, 0 at EOF, -1 on error.
 */
static int
next_frame(struct conn *c, uint8_t *type, struct buf *b, struct as_err *err)
{
	uint8_t hdr[5];
	uint32_t len;
	ssize_t n;

	n = conn_read_some(c, hdr, 1, err);
	if (n == 0)
		return 0;
	if (n == -1)
		return -1;
	if (conn_read_full(c, hdr + 1, 4, err) == -1)
		return -1;
	len = le32(hdr);
	if (len == 0 || len - 1 > PROTO_CTRL_MAX)
		return as_err_set(err, AS_E_MALFORMED, 0, "'%s' sent a frame "
		    "of %" PRIu32 " bytes where a request was expected",
		    c->peer, len);
	*type = hdr[4];
	buf_reset(b);
	if (len > 1) {
		if (conn_read_full(c, buf_reserve(b, len - 1), len - 1,
		    err) == -1)
			return -1;
		b->len = len - 1;
	}
	return 1;
}

static int
session_run(struct session *s, struct as_err *err)
{
	struct proto_request *q;
	struct as_err e2;
	char tb[16];
	uint8_t type;
	int r, rc = -1;

	if (proto_server_hello(s->c, PROTO_F_KNOWN, &s->features,
	    err) == -1)
		return -1;
	q = xmalloc(sizeof(*q));
	for (;;) {
		r = next_frame(s->c, &type, &s->b, err);
		if (r == 0) {
			rc = 0;
			break;
		}
		if (r == -1)
			break;
		if (type != PT_REQUEST) {
			as_err_set(err, AS_E_MALFORMED, 0, "'%s' sent %s "
			    "where a request was expected", s->c->peer,
			    proto_type_name(type, tb, sizeof(tb)));
			(void)proto_send_error(s->c, err, &s->scratch, &e2);
			break;
		}
		if (proto_dec_request(q, s->b.data, s->b.len, err) == -1) {
			as_err_prefix(err, "'%s'", s->c->peer);
			(void)proto_send_error(s->c, err, &s->scratch, &e2);
			break;
		}
		switch (q->op) {
		case OP_HOLD:
			r = do_hold(s, q);
			break;
		case OP_RECEIVE:
			r = do_receive(s, q);
			break;
		case OP_SNAPSHOTS:
			r = do_snapshots(s, q);
			break;
		case OP_SEND:
			r = do_send(s, q);
			break;
		case OP_REVERSE:
			r = do_reverse(s, q);
			break;
		default:
			r = -1;
		}
		if (r == -1) {
			as_err_set(err, AS_E_IO, 0, "session with '%s' ended "
			    "by an error", s->c->peer);
			break;
		}
	}
	free(q);
	return rc;
}

static void
session_init(struct session *s, struct conn *c, const char *state,
    const char *client)
{
	memset(s, 0, sizeof(*s));
	s->c = c;
	s->state = state;
	s->client = client;
	buf_init(&s->b);
	buf_init(&s->scratch);
}

static void
session_release(struct session *s)
{
	buf_release(&s->b);
	buf_release(&s->scratch);
}

int
serve_stdio(const struct serve_opts *o, struct as_err *err)
{
	struct serve_config cfg;
	struct session s;
	struct conn *c;
	const char *ssh;
	char *state, peer[128];
	int rc, in = -1, out = -1, nul = -1;

	memset(&cfg, 0, sizeof(cfg));
	if ((state = snapstore_state_dir(o->state_dir, err)) == NULL)
		return -1;
	if (o->config != NULL && serve_config_load(&cfg, o->config,
	    err) == -1) {
		free(state);
		return -1;
	}
	ssh = getenv("SSH_CONNECTION");
	if (ssh != NULL && *ssh != '\0')
		snprintf(peer, sizeof(peer), "ssh %.*s", (int)strcspn(ssh,
		    " "), ssh);
	else
		snprintf(peer, sizeof(peer), "stdio");
	/*
	 * Move the protocol off descriptors 0 and 1, and put /dev/null
	 * there: nothing printed by accident can corrupt the protocol.
	 */
	if ((in = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3)) == -1 ||
	    (out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3)) == -1 ||
	    (nul = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1 ||
	    dup2(nul, STDIN_FILENO) == -1 || dup2(nul, STDOUT_FILENO) == -1) {
		as_err_sys(err, errno, "set up standard input and output");
		if (in != -1)
			close(in);
		if (out != -1)
			close(out);
		if (nul != -1)
			close(nul);
		serve_config_release(&cfg);
		free(state);
		return -1;
	}
	close(nul);
	/* sshd's pipes, if pipes they are: as ssh's on the client side */
	(void)fcntl(in, F_SETPIPE_SZ, REMOTE_PIPE_SIZE);
	(void)fcntl(out, F_SETPIPE_SZ, REMOTE_PIPE_SIZE);
	c = conn_from_fds(in, out, 0, peer);
	if (o->idle_ms > 0)
		c->idle_ms = o->idle_ms;
	session_init(&s, c, state, o->client != NULL ? o->client : "ssh");
	if (o->config != NULL) {
		s.grants = cfg.grants;
		s.ngrants = cfg.ngrants;
	} else if (o->root != NULL)
		s.root = o->root;
	else
		s.all = 1;
	rc = session_run(&s, err);
	session_release(&s);
	conn_free(c);
	serve_config_release(&cfg);
	free(state);
	return rc;
}

/*
 * The listener.
 */

static volatile sig_atomic_t stop_flag;
static int sig_pipe_w = -1;

static void
on_signal(int sig)
{
	int e = errno;
	char ch = (char)sig;

	if ((sig == SIGTERM || sig == SIGINT) && stop_flag < 2)
		stop_flag++;	/* the second one ends the sessions too */
	if (sig_pipe_w != -1)
		(void)write(sig_pipe_w, &ch, 1);
	errno = e;
}

struct child {
	pid_t		pid;
	int		auth_fd;	/* -1 once authenticated (or gone) */
	uint64_t	start_ms;	/* when it was accepted */
	char		addr[PENALTY_ADDR_MAX];	/* the peer's address */
};

struct listener {
	const struct serve_opts	*o;
	struct serve_config	 cfg;
	struct psk		*keys;		/* tcp: the clients' keys */
	const char		**key_client;	/* ... and their names */
	size_t			 nkeys;
	struct tls_ctx		*tls;
	char			*state;
	struct child		*kids;
	size_t			 nkids;
	int			 lfd;
	int			 sigr;
	struct penalty_box	*pen;		/* failed handshakes (§E 50) */
};

/*
 * What a connection's child says on its auth pipe: "1" authenticated, a
 * guess that failed (a complete PSK proof with a wrong key, or a
 * certificate of the CA that is no configured client; not a handshake
 * cut, malformed or timed out, nor a certificate of another CA, which
 * TLS refuses and no guess gets past) that counts against its address,
 * or nothing (EOF).
 */
#define SERVE_AUTH_FAILED	"0"

/* The authenticated connection's child: never returns. */
static void
conn_child(struct listener *L, int fd, const char *peer, int auth_w,
    int64_t delay_ms)
{
	struct timespec ts;
	struct auth_opts ao;
	struct auth_result ar;
	struct tls_peer who;
	struct session s;
	struct as_err err;
	struct conn *c = NULL;
	const char *client = NULL;
	size_t i, matched = 0;
	int rc;

	signal(SIGCHLD, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	close(L->lfd);
	close(L->sigr);
	close(sig_pipe_w);
	for (i = 0; i < L->nkids; i++)
		if (L->kids[i].auth_fd != -1)
			close(L->kids[i].auth_fd);
	as_err_clear(&err);
	if (delay_ms > 0) {
		/*
		 * Its address guessed keys lately (penalty.h): the handshake
		 * waits, less than a client's handshake deadline.  This
		 * child holds a handshake slot meanwhile, the oldest first
		 * to go at the cap: clients from elsewhere are not kept out.
		 */
		log_debug("'%s': handshake delayed %lld ms (wrong keys from "
		    "its address)", peer, (long long)delay_ms);
		ts.tv_sec = (time_t)(delay_ms / 1000);
		ts.tv_nsec = (long)(delay_ms % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	if (L->tls != NULL) {
		memset(&who, 0, sizeof(who));
		c = tls_server(L->tls, fd, peer, L->o->handshake_ms, &who,
		    &err);
		if (c == NULL) {
			log_warn("refused '%s': %s", peer, err.msg);
			_exit(1);
		}
		if (L->o->config != NULL) {
			for (i = 0; i < L->cfg.nclients; i++)
				if (L->cfg.clients[i].kind == SC_CERT &&
				    strcmp(L->cfg.clients[i].fp,
				    who.fingerprint) == 0)
					client = L->cfg.clients[i].name;
			if (client == NULL) {
				log_warn("refused '%s': certificate '%s' "
				    "(SHA256:%s) is not a configured client",
				    peer, who.cn, who.fingerprint);
				(void)write(auth_w, SERVE_AUTH_FAILED, 1);
				conn_free(c);
				_exit(1);
			}
		} else
			client = "default";
	} else {
		c = tcp_conn_from_fd(fd, peer);
		memset(&ao, 0, sizeof(ao));
		ao.timeout_ms = L->o->handshake_ms;
		memset(&ar, 0, sizeof(ar));
		if (auth_server(c, L->keys, L->nkeys, &matched, &ao, &ar,
		    &err) == -1) {
			log_warn("refused '%s': %s%s%s", peer, err.msg,
			    ar.reason != NULL ? ": " : "",
			    ar.reason != NULL ? ar.reason : "");
			if (ar.guess)
				(void)write(auth_w, SERVE_AUTH_FAILED, 1);
			conn_free(c);
			_exit(1);
		}
		client = L->key_client[matched];
	}
	(void)write(auth_w, "1", 1);
	close(auth_w);
	c->idle_ms = L->o->idle_ms > 0 ? L->o->idle_ms : CONN_IDLE_DEFAULT_MS;
	xfer_tune_socket(c);
	log_info("'%s' authenticated as client '%s'", peer, client);
	session_init(&s, c, L->state, client);
	if (L->o->config != NULL) {
		s.grants = L->cfg.grants;
		s.ngrants = L->cfg.ngrants;
	} else
		s.root = L->o->root;
	rc = session_run(&s, &err);
	if (rc == -1)
		log_warn("'%s': %s", peer, err.msg);
	session_release(&s);
	conn_free(c);
	_exit(rc == 0 ? 0 : 1);
}

/* A child's handshake failed: count it against its address, say so. */
static void
auth_failed(struct listener *L, const struct child *k)
{
	int64_t ms;
	unsigned n;

	ms = penalty_fail(L->pen, k->addr, (int64_t)conn_now_ms(), &n);
	if (ms > 0)
		log_warn("'%s': %u wrong keys in %d s: its handshakes wait "
		    "%lld s", k->addr, n, PENALTY_WINDOW_MS / 1000,
		    (long long)((ms + 999) / 1000));
}

static void
reap(struct listener *L)
{
	size_t i;
	pid_t pid;
	int status;
	char c;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < L->nkids; i++) {
			if (L->kids[i].pid != pid)
				continue;
			/* its last word, if the poll loop has not read it */
			if (L->kids[i].auth_fd != -1 &&
			    read(L->kids[i].auth_fd, &c, 1) == 1 &&
			    c == SERVE_AUTH_FAILED[0])
				auth_failed(L, &L->kids[i]);
			if (L->kids[i].auth_fd != -1)
				close(L->kids[i].auth_fd);
			L->kids[i] = L->kids[--L->nkids];
			break;
		}
	}
}

static size_t
unauth_count(const struct listener *L)
{
	size_t i, n = 0;

	for (i = 0; i < L->nkids; i++)
		if (L->kids[i].auth_fd != -1)
			n++;
	return n;
}

/* Kill the oldest child still in its handshake; the reaper removes it. */
static void
evict_oldest(struct listener *L)
{
	struct child *old = NULL;
	size_t i;

	for (i = 0; i < L->nkids; i++)
		if (L->kids[i].auth_fd != -1 && (old == NULL ||
		    L->kids[i].start_ms < old->start_ms))
			old = &L->kids[i];
	if (old == NULL)
		return;
	log_debug("dropping child %d: still in its handshake",
	    (int)old->pid);
	kill(old->pid, SIGKILL);
	close(old->auth_fd);
	old->auth_fd = -1;
}

static int
listener_setup(struct listener *L, struct as_err *err)
{
	struct tls_config tc;
	size_t i;

	if (L->o->tls) {
		if (L->o->cert_file == NULL || L->o->key_file == NULL ||
		    L->o->ca_file == NULL)
			return as_err_set(err, AS_E_USAGE, 0, "--tls needs "
			    "--cert, --key and --ca");
		memset(&tc, 0, sizeof(tc));
		tc.ca_file = L->o->ca_file;
		tc.cert_file = L->o->cert_file;
		tc.key_file = L->o->key_file;
		if ((L->tls = tls_ctx_new(1, &tc, err)) == NULL)
			return -1;
		if (L->o->config == NULL && L->o->root == NULL)
			log_warn("no --config and no --root: nothing is "
			    "reachable");
		return 0;
	}
	if (L->o->config != NULL) {
		for (i = 0; i < L->cfg.nclients; i++) {
			if (L->cfg.clients[i].kind != SC_KEY)
				continue;
			L->keys = xreallocarray(L->keys, L->nkeys + 1,
			    sizeof(*L->keys));
			L->key_client = xreallocarray(L->key_client,
			    L->nkeys + 1, sizeof(*L->key_client));
			L->keys[L->nkeys] = L->cfg.clients[i].key;
			L->key_client[L->nkeys] = L->cfg.clients[i].name;
			L->nkeys++;
		}
		if (L->nkeys == 0)
			log_warn("config '%s' names no client key: no tcp "
			    "client can connect", L->o->config);
		return 0;
	}
	if (L->o->key_file == NULL || L->o->root == NULL) {
		log_warn("no --config and no --key/--root: nothing is "
		    "reachable");
		return 0;
	}
	L->keys = xcalloc(1, sizeof(*L->keys));
	L->key_client = xcalloc(1, sizeof(*L->key_client));
	if (key_load(L->o->key_file, &L->keys[0], err) == -1)
		return -1;
	L->key_client[0] = "default";
	L->nkeys = 1;
	return 0;
}

/* Write the port file atomically, so that a reader never sees half. */
static int
write_port(const char *path, const char *text, size_t n, struct as_err *err)
{
	char *tmp;
	int fd, rc = -1;

	tmp = xasprintf("%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1) {
		as_err_sys(err, errno, "port file '%s'", tmp);
		goto out;
	}
	if (io_write_full(fd, text, n) == -1 || close(fd) == -1) {
		as_err_sys(err, errno, "write '%s'", tmp);
		goto out;
	}
	if (rename(tmp, path) == -1) {
		as_err_sys(err, errno, "rename '%s'", tmp);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}

int
serve_listen(const struct serve_opts *o, struct as_err *err)
{
	struct listener L;
	struct serve_opts oo;
	struct sigaction sa;
	struct pollfd *pfd = NULL;
	struct stat st;
	char peer[128], pbuf[16], drain[64], addr[PENALTY_ADDR_MAX];
	size_t i, k, np, cap;
	int sp[2], aw[2], fd, r, rc = -1, full_logged = 0, port;
	pid_t pid, listener = getpid();
	int64_t delay;

	memset(&L, 0, sizeof(L));
	oo = *o;
	if (oo.max_unauth <= 0)
		oo.max_unauth = SERVE_MAX_UNAUTH;
	if (oo.handshake_ms <= 0)
		oo.handshake_ms = SERVE_HANDSHAKE_MS;
	L.o = &oo;
	L.lfd = L.sigr = -1;
	L.pen = penalty_new(PENALTY_CAP);
	/* (a dataset root "zfs:POOL/DS" is checked per request) */
	if (oo.root != NULL && strncmp(oo.root, "zfs:", 4) != 0 &&
	    (stat(oo.root, &st) == -1 ||
	    !S_ISDIR(st.st_mode)))
		return as_err_set(err, AS_E_NOTFOUND, 0, "root '%s' is not "
		    "a directory", oo.root);
	if ((L.state = snapstore_state_dir(oo.state_dir, err)) == NULL)
		return -1;
	if (oo.config != NULL && serve_config_load(&L.cfg, oo.config,
	    err) == -1)
		goto out;
	if (listener_setup(&L, err) == -1)
		goto out;
	if ((L.lfd = tcp_listen(oo.listen, err)) == -1)
		goto out;
	port = tcp_local_port(L.lfd);
	log_info("listening on %s (%s, port %d)", oo.listen,
	    L.tls != NULL ? "tls" : "tcp", port);
	if (oo.port_file != NULL) {
		r = snprintf(pbuf, sizeof(pbuf), "%d\n", port);
		if (write_port(oo.port_file, pbuf, (size_t)r, err) == -1)
			goto out;
	}
	if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) == -1) {
		as_err_sys(err, errno, "pipe");
		goto out;
	}
	L.sigr = sp[0];
	sig_pipe_w = sp[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	cap = 0;
	while (!stop_flag) {
		if (cap < L.nkids + 2) {
			cap = L.nkids + 16;
			pfd = xreallocarray(pfd, cap, sizeof(*pfd));
		}
		np = 0;
		pfd[np].fd = L.sigr;
		pfd[np++].events = POLLIN;
		pfd[np].fd = L.lfd;
		pfd[np].events = POLLIN;
		np++;
		for (i = 0; i < L.nkids; i++) {
			pfd[np].fd = L.kids[i].auth_fd;
			pfd[np++].events = POLLIN;
		}
		for (i = 0; i < np; i++)
			pfd[i].revents = 0;
		r = poll(pfd, np, -1);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			as_err_sys(err, errno, "poll");
			goto out;
		}
		if (pfd[0].revents & POLLIN) {
			while (read(L.sigr, drain, sizeof(drain)) > 0)
				;
			reap(&L);
			continue;	/* the kids array changed */
		}
		for (i = 2; i < np; i++) {
			if (pfd[i].revents == 0 || pfd[i].fd == -1)
				continue;
			/* A byte (authenticated) or EOF (gone): not pending. */
			for (k = 0; k < L.nkids; k++)
				if (L.kids[k].auth_fd == pfd[i].fd) {
					if (read(L.kids[k].auth_fd, drain, 1) ==
					    1 && drain[0] == SERVE_AUTH_FAILED[0])
						auth_failed(&L, &L.kids[k]);
					close(L.kids[k].auth_fd);
					L.kids[k].auth_fd = -1;
				}
		}
		if (!(pfd[1].revents & POLLIN))
			continue;
		fd = tcp_accept_fd(L.lfd, 0, peer, sizeof(peer), err);
		if (fd == -1)
			continue;	/* nothing queued, or an aborted one */
		penalty_addr(peer, addr, sizeof(addr));
		delay = penalty_left(L.pen, addr, (int64_t)conn_now_ms());
		if (unauth_count(&L) >= (size_t)oo.max_unauth) {
			/*
			 * At the cap, the oldest connection still in its
			 * handshake makes room (OpenSSH's MaxStartups idea):
			 * silent connections cannot lock clients out.
			 */
			evict_oldest(&L);
			if (!full_logged)
				log_warn("%d connections in their handshake: "
				    "dropping the oldest for each new one",
				    oo.max_unauth);
			full_logged = 1;
		} else
			full_logged = 0;
		if (pipe2(aw, O_CLOEXEC) == -1) {
			log_warn("pipe: %s", strerror(errno));
			close(fd);
			continue;
		}
		fflush(NULL);
		if ((pid = fork()) == -1) {
			log_warn("fork: %s", strerror(errno));
			close(fd);
			close(aw[0]);
			close(aw[1]);
			continue;
		}
		if (pid == 0) {
			/* a killed listener takes its sessions along (§F 69) */
			if (proc_die_with_parent(listener) == -1)
				_exit(1);
			close(aw[0]);
			/* the session never returns here: nothing of the
			 * listener's own stays allocated in it */
			free(pfd);
			pfd = NULL;
			conn_child(&L, fd, peer, aw[1], delay);
		}
		close(fd);
		close(aw[1]);
		L.kids = xreallocarray(L.kids, L.nkids + 1, sizeof(*L.kids));
		L.kids[L.nkids].pid = pid;
		L.kids[L.nkids].auth_fd = aw[0];
		L.kids[L.nkids].start_ms = conn_now_ms();
		snprintf(L.kids[L.nkids].addr, sizeof(L.kids[L.nkids].addr),
		    "%s", addr);
		L.nkids++;
		log_debug("connection from '%s' (child %d)", peer, (int)pid);
	}
	/*
	 * Sessions in progress finish: they die with this process
	 * (proc_die_with_parent), so it waits for them, without listening.
	 * A second SIGTERM ends them at once.
	 */
	close(L.lfd);
	L.lfd = -1;
	if (L.nkids > 0)
		log_info("stopping: waiting for %zu session%s in progress "
		    "(SIGTERM again ends %s)", L.nkids,
		    L.nkids == 1 ? "" : "s", L.nkids == 1 ? "it" : "them");
	else
		log_info("stopping");
	while (L.nkids > 0 && stop_flag < 2) {
		struct pollfd sp1 = { .fd = L.sigr, .events = POLLIN };

		if (poll(&sp1, 1, -1) == -1 && errno != EINTR)
			break;
		while (read(L.sigr, drain, sizeof(drain)) > 0)
			;
		reap(&L);
	}
	rc = 0;
out:
	free(pfd);
	for (i = 0; i < L.nkids; i++)
		if (L.kids[i].auth_fd != -1)
			close(L.kids[i].auth_fd);
	free(L.kids);
	if (L.lfd != -1)
		close(L.lfd);
	if (L.sigr != -1) {
		close(L.sigr);
		close(sig_pipe_w);
		sig_pipe_w = -1;
	}
	if (L.o->config == NULL && L.keys != NULL)
		key_clear(&L.keys[0]);
	free(L.keys);
	free(L.key_client);
	tls_ctx_free(L.tls);
	serve_config_release(&L.cfg);
	free(L.state);
	penalty_free(L.pen);
	return rc;
}
