/*
 * store.c - the service's SQLite database (see store.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "base/xmalloc.h"
#include "service/hook.h"
#include "service/sched.h"
#include "service/store.h"
#include "transport/compress.h"
#include "transport/ratelimit.h"
#include "base/banned.h"

struct store {
	sqlite3		*db;
};

/* migrations[i] takes a database from version i to i + 1. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE services ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  source TEXT NOT NULL,"
	"  dest TEXT NOT NULL,"
	"  schedule TEXT NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'online' CHECK (state IN"
	"    ('online', 'running', 'disabled', 'maintenance', 'done')),"
	"  created INTEGER NOT NULL,"
	"  next_run INTEGER NOT NULL DEFAULT -1,"
	"  last_start INTEGER NOT NULL DEFAULT -1,"
	"  last_end INTEGER NOT NULL DEFAULT -1,"
	"  last_success INTEGER NOT NULL DEFAULT -1,"
	"  last_error TEXT,"
	"  last_errcode TEXT,"
	"  successes INTEGER NOT NULL DEFAULT 0,"
	"  failures INTEGER NOT NULL DEFAULT 0,"
	"  consecutive INTEGER NOT NULL DEFAULT 0,"
	"  bytes_sent INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE props ("
	"  service INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,"
	"  key TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  PRIMARY KEY (service, key));"
	"CREATE TABLE runs ("
	"  id INTEGER PRIMARY KEY,"
	"  service INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,"
	"  started INTEGER NOT NULL,"
	"  ended INTEGER,"
	"  outcome TEXT CHECK (outcome IN ('ok', 'failed', 'interrupted')),"
	"  errclass TEXT,"
	"  errcode TEXT,"
	"  message TEXT,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  pid INTEGER);"
	"CREATE INDEX runs_by_service ON runs (service, id);"
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY,"
	"  service INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,"
	"  time INTEGER NOT NULL,"
	"  message TEXT NOT NULL);"
	"CREATE INDEX events_by_service ON events (service, id);",
};

#define NMIGRATIONS	(sizeof(migrations) / sizeof(migrations[0]))

static const struct store_propdef propdefs[] = {
	{ "rate_limit",	"0",	"bytes/s on the wire (40M, 500K; 0: none)" },
	{ "compress",	"none",	"none, zstd or zstd:LEVEL" },
	{ "trace_level", "1",	"log verbosity 0-3" },
	{ "retries",	"5",	"failures in a row before maintenance" },
	{ "keep_src",	"1",	"autosync snapshots kept at the source "
				"(0: all)" },
	{ "keep_dst",	"1",	"snapshots kept at the destination "
				"(a directory: 1)" },
	{ "recursive",	"on",	"on, or off (-N)" },
	{ "latest",	"on",	"on, or off (-X): NAME-latest" },
	{ "pre_hook",	"",	"program and arguments run before a run" },
	{ "post_hook",	"",	"program and arguments run after a run" },
	{ "hook_timeout", "5m",	"hooks are killed after this" },
	{ "full_scan_interval", "10m", "continuous: a full scan at least "
				"this often (0: every run)" },
	{ "journal",	"auto",	"continuous: the change journal, auto "
				"(fanotify, else inotify), fanotify or "
				"inotify" },
	{ "key_file",	"",	"tcp: the PSK file; tls: the private key" },
	{ "cert_file",	"",	"tls: this side's certificate" },
	{ "ca_file",	"",	"tls: the CA that signed the server's" },
	{ "trust",	"",	"btrfs pull: receive streams from this host "
	    "(the source URL's; sync --trust)" },
};

#define NPROPS	(sizeof(propdefs) / sizeof(propdefs[0]))

static const char *const state_names[] = {
	[SVC_ONLINE] = "online",
	[SVC_RUNNING] = "running",
	[SVC_DISABLED] = "disabled",
	[SVC_MAINTENANCE] = "maintenance",
	[SVC_DONE] = "done",
};

const char *
svc_state_name(enum svc_state s)
{
	if ((unsigned)s >= sizeof(state_names) / sizeof(state_names[0]))
		return "?";
	return state_names[s];
}

static enum svc_state
state_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (s != NULL && strcmp(s, state_names[i]) == 0)
			return (enum svc_state)i;
	return SVC_MAINTENANCE;	/* unknown: park it rather than run it */
}

/* Fill err from the database's last error. */
static int
dberr(struct store *st, int rc, const char *what, struct as_err *err)
{
	enum as_errcode code = AS_E_IO;

	int e = st != NULL && st->db != NULL ? sqlite3_system_errno(st->db) :
	    0;

	/* a full volume can surface as an I/O error (creating the WAL) */
	if (rc == SQLITE_FULL || e == ENOSPC || e == EDQUOT)
		code = AS_E_NOSPACE;
	else if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		code = AS_E_TIMEOUT;
	return as_err_set(err, code, 0, "state database: %s: %s%s", what,
	    st != NULL && st->db != NULL ? sqlite3_errmsg(st->db) :
	    sqlite3_errstr(rc), code == AS_E_NOSPACE && rc != SQLITE_FULL ?
	    " (no space left on its volume)" : "");
}

static sqlite3_stmt *
prep(struct store *st, const char *sql, struct as_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL)) != SQLITE_OK) {
		dberr(st, rc, "prepare", err);
		return NULL;
	}
	return s;
}

static void
bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

/* Run a statement to completion; finalizes it. */
static int
step_done(struct store *st, sqlite3_stmt *s, const char *what,
    struct as_err *err)
{
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return dberr(st, rc, what, err);
	return 0;
}

static int
exec(struct store *st, const char *sql, struct as_err *err)
{
	int rc;

	if ((rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL)) != SQLITE_OK)
		return dberr(st, rc, sql, err);
	return 0;
}

static int
begin(struct store *st, struct as_err *err)
{
	return exec(st, "BEGIN IMMEDIATE", err);
}

static int
commit(struct store *st, struct as_err *err)
{
	return exec(st, "COMMIT", err);
}

static void
rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

int
store_schema_version(struct store *st, int *version, struct as_err *err)
{
	sqlite3_stmt *s;
	int rc;

	if ((s = prep(st, "PRAGMA user_version", err)) == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return dberr(st, rc, "read the schema version", err);
	return 0;
}

/*
 * Bring the schema to STORE_VERSION in one transaction.  The version
 * is both in user_version (read before anything else) and in the
 * schema_version table, for humans with the sqlite3 shell.
 */
static int
migrate(struct store *st, struct as_err *err)
{
	sqlite3_stmt *s;
	int v;
	size_t i;

	if (begin(st, err) == -1)
		return -1;
	if (store_schema_version(st, &v, err) == -1)
		goto fail;
	if (v > (int)NMIGRATIONS) {
		as_err_set(err, AS_E_UNSUPPORTED, 0, "state database has "
		    "schema version %d, this autosync knows up to %d: use a "
		    "newer autosync", v, (int)NMIGRATIONS);
		goto fail;
	}
	if (v == 0 && exec(st, "CREATE TABLE schema_version ("
	    "version INTEGER NOT NULL, applied INTEGER NOT NULL)", err) == -1)
		goto fail;
	for (i = (size_t)v; i < NMIGRATIONS; i++) {
		if (exec(st, migrations[i], err) == -1) {
			as_err_prefix(err, "migrate to version %zu", i + 1);
			goto fail;
		}
		if ((s = prep(st, "INSERT INTO schema_version VALUES (?, "
		    "CAST(strftime('%s', 'now') AS INTEGER))", err)) == NULL)
			goto fail;
		sqlite3_bind_int(s, 1, (int)i + 1);
		if (step_done(st, s, "record the schema version", err) == -1)
			goto fail;
	}
	if ((size_t)v < NMIGRATIONS) {
		char pragma[64];

		/* a PRAGMA takes no parameters; this is our own integer */
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
		    (int)NMIGRATIONS);
		if (exec(st, pragma, err) == -1)
			goto fail;
	}
	return commit(st, err);
fail:
	rollback(st);
	return -1;
}

struct store *
store_open(const char *path, struct as_err *err)
{
	struct store *st;
	int rc;

	st = xcalloc(1, sizeof(*st));
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		as_err_set(err, rc == SQLITE_CANTOPEN ? AS_E_IO :
		    AS_E_IO, 0, "open state database '%s': %s", path,
		    st->db != NULL ? sqlite3_errmsg(st->db) :
		    sqlite3_errstr(rc));
		store_close(st);
		return NULL;
	}
	sqlite3_busy_timeout(st->db, 10000);
	sqlite3_extended_result_codes(st->db, 0);
	if (exec(st, "PRAGMA journal_mode = WAL", err) == -1 ||
	    exec(st, "PRAGMA synchronous = FULL", err) == -1 ||
	    exec(st, "PRAGMA foreign_keys = ON", err) == -1 ||
	    migrate(st, err) == -1) {
		as_err_prefix(err, "'%s'", path);
		store_close(st);
		return NULL;
	}
	return st;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->db != NULL)
		sqlite3_close(st->db);
	free(st);
}

int
store_integrity_check(struct store *st, struct as_err *err)
{
	sqlite3_stmt *s;
	const unsigned char *t;
	int rc, ok = 0;
	char first[256] = "";

	if ((s = prep(st, "PRAGMA integrity_check", err)) == NULL)
		return -1;
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		t = sqlite3_column_text(s, 0);
		snprintf(first, sizeof(first), "%s", t != NULL ?
		    (const char *)t : "");
		ok = strcmp(first, "ok") == 0;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return dberr(st, rc, "integrity check", err);
	if (!ok)
		return as_err_set(err, AS_E_MALFORMED, 0, "state database "
		    "is damaged: %s", first);
	return 0;
}

int
store_name_check(const char *name, struct as_err *err)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > SVC_NAME_MAX || name[0] == '.' || name[0] == '-')
		goto bad;
	for (i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_' ||
		    name[i] == '.' || name[i] == '-'))
			goto bad;
	return 0;
bad:
	return as_err_set(err, AS_E_USAGE, 0, "bad service name '%s': 1-%d "
	    "letters, digits, '_', '.' or '-', not starting with '.' or '-'",
	    name, SVC_NAME_MAX);
}

int
store_svc_create(struct store *st, const char *name, const char *src,
    const char *dst, const char *schedule, int64_t now, struct as_err *err)
{
	sqlite3_stmt *s;
	int rc;

	if (store_name_check(name, err) == -1)
		return -1;
	if ((s = prep(st, "INSERT INTO services (name, source, dest, "
	    "schedule, created) VALUES (?, ?, ?, ?, ?)", err)) == NULL)
		return -1;
	bind_text(s, 1, name);
	bind_text(s, 2, src);
	bind_text(s, 3, dst);
	bind_text(s, 4, schedule);
	sqlite3_bind_int64(s, 5, now);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_CONSTRAINT)
		return as_err_set(err, AS_E_CONFLICT, 0, "service '%s' "
		    "already exists", name);
	if (rc != SQLITE_DONE)
		return dberr(st, rc, "create service", err);
	return store_event(st, name, now, "created", err);
}

static char *
col_dup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t != NULL ? xstrdup((const char *)t) : NULL;
}

#define SVC_COLS "id, name, source, dest, schedule, state, created, " \
	"next_run, last_start, last_end, last_success, last_error, " \
	"last_errcode, successes, failures, consecutive, bytes_sent"

static void
row_svc(sqlite3_stmt *s, struct svc *v)
{
	const unsigned char *state;

	memset(v, 0, sizeof(*v));
	v->id = sqlite3_column_int64(s, 0);
	v->name = col_dup(s, 1);
	v->source = col_dup(s, 2);
	v->dest = col_dup(s, 3);
	v->schedule = col_dup(s, 4);
	state = sqlite3_column_text(s, 5);
	v->state = state_parse((const char *)state);
	v->created = sqlite3_column_int64(s, 6);
	v->next_run = sqlite3_column_int64(s, 7);
	v->last_start = sqlite3_column_int64(s, 8);
	v->last_end = sqlite3_column_int64(s, 9);
	v->last_success = sqlite3_column_int64(s, 10);
	v->last_error = col_dup(s, 11);
	v->last_errcode = col_dup(s, 12);
	v->successes = (uint64_t)sqlite3_column_int64(s, 13);
	v->failures = (uint64_t)sqlite3_column_int64(s, 14);
	v->consecutive = (uint64_t)sqlite3_column_int64(s, 15);
	v->bytes_sent = (uint64_t)sqlite3_column_int64(s, 16);
}

int
store_svc_get(struct store *st, const char *name, struct svc *out,
    struct as_err *err)
{
	sqlite3_stmt *s;
	int rc;

	if ((s = prep(st, "SELECT " SVC_COLS " FROM services WHERE name = ?",
	    err)) == NULL)
		return -1;
	bind_text(s, 1, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		row_svc(s, out);
	sqlite3_finalize(s);
	if (rc == SQLITE_DONE)
		return as_err_set(err, AS_E_NOTFOUND, 0, "no service '%s'",
		    name);
	if (rc != SQLITE_ROW)
		return dberr(st, rc, "read service", err);
	return 0;
}

int
store_svc_list(struct store *st, struct svc **vp, size_t *np,
    struct as_err *err)
{
	sqlite3_stmt *s;
	struct svc *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if ((s = prep(st, "SELECT " SVC_COLS " FROM services ORDER BY name",
	    err)) == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		row_svc(s, &v[n++]);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		svc_list_free(v, n);
		return dberr(st, rc, "list services", err);
	}
	*vp = v;
	*np = n;
	return 0;
}

void
svc_release(struct svc *v)
{
	if (v == NULL)
		return;
	free(v->name);
	free(v->source);
	free(v->dest);
	free(v->schedule);
	free(v->last_error);
	free(v->last_errcode);
	memset(v, 0, sizeof(*v));
}

void
svc_list_free(struct svc *v, size_t n)
{
	size_t i;

	for (i = 0; i < n && v != NULL; i++)
		svc_release(&v[i]);
	free(v);
}

/* Run an UPDATE/DELETE on one service by name; NOTFOUND if none. */
static int
change_one(struct store *st, sqlite3_stmt *s, const char *name,
    const char *what, struct as_err *err)
{
	int rc;

	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return dberr(st, rc, what, err);
	if (sqlite3_changes(st->db) == 0)
		return as_err_set(err, AS_E_NOTFOUND, 0, "no service '%s'",
		    name);
	return 0;
}

int
store_svc_destroy(struct store *st, const char *name, struct as_err *err)
{
	sqlite3_stmt *s;

	if ((s = prep(st, "DELETE FROM services WHERE name = ?", err)) == NULL)
		return -1;
	bind_text(s, 1, name);
	return change_one(st, s, name, "destroy service", err);
}

int
store_svc_set_state(struct store *st, const char *name, enum svc_state state,
    int64_t now, struct as_err *err)
{
	sqlite3_stmt *s;
	char msg[64];

	if (begin(st, err) == -1)
		return -1;
	if ((s = prep(st, "UPDATE services SET state = ? WHERE name = ?",
	    err)) == NULL)
		goto fail;
	bind_text(s, 1, svc_state_name(state));
	bind_text(s, 2, name);
	if (change_one(st, s, name, "set state", err) == -1)
		goto fail;
	snprintf(msg, sizeof(msg), "state %s", svc_state_name(state));
	if (store_event(st, name, now, msg, err) == -1)
		goto fail;
	return commit(st, err);
fail:
	rollback(st);
	return -1;
}

int
store_svc_clear(struct store *st, const char *name, int64_t now,
    struct as_err *err)
{
	sqlite3_stmt *s;

	if (begin(st, err) == -1)
		return -1;
	if ((s = prep(st, "UPDATE services SET state = 'online', "
	    "consecutive = 0 WHERE name = ?", err)) == NULL)
		goto fail;
	bind_text(s, 1, name);
	if (change_one(st, s, name, "clear", err) == -1 ||
	    store_event(st, name, now, "cleared: state online", err) == -1)
		goto fail;
	return commit(st, err);
fail:
	rollback(st);
	return -1;
}

int
store_svc_set_next(struct store *st, const char *name, int64_t next,
    struct as_err *err)
{
	sqlite3_stmt *s;

	if ((s = prep(st, "UPDATE services SET next_run = ? WHERE name = ?",
	    err)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, next);
	bind_text(s, 2, name);
	return change_one(st, s, name, "set next run", err);
}

int
store_svc_set_schedule(struct store *st, const char *name,
    const char *schedule, struct as_err *err)
{
	sqlite3_stmt *s;
	struct sched sc;

	if (sched_parse(schedule, &sc, err) == -1)
		return -1;
	if ((s = prep(st, "UPDATE services SET schedule = ? WHERE name = ?",
	    err)) == NULL)
		return -1;
	bind_text(s, 1, schedule);
	bind_text(s, 2, name);
	return change_one(st, s, name, "set schedule", err);
}

int
store_svc_set_endpoints(struct store *st, const char *name, const char *src,
    const char *dst, int64_t now, struct as_err *err)
{
	sqlite3_stmt *s;
	char *msg;
	int rc;

	if (begin(st, err) == -1)
		return -1;
	if ((s = prep(st, "UPDATE services SET source = ?, dest = ? WHERE "
	    "name = ?", err)) == NULL)
		goto fail;
	bind_text(s, 1, src);
	bind_text(s, 2, dst);
	bind_text(s, 3, name);
	if (change_one(st, s, name, "set endpoints", err) == -1)
		goto fail;
	msg = xasprintf("reversed: source '%s', destination '%s'", src, dst);
	rc = store_event(st, name, now, msg, err);
	free(msg);
	if (rc == -1)
		goto fail;
	return commit(st, err);
fail:
	rollback(st);
	return -1;
}

const struct store_propdef *
store_propdefs(size_t *n)
{
	*n = NPROPS;
	return propdefs;
}

static const struct store_propdef *
propdef(const char *key)
{
	size_t i;

	for (i = 0; i < NPROPS; i++)
		if (strcmp(propdefs[i].name, key) == 0)
			return &propdefs[i];
	return NULL;
}

static int
uint_in(const char *v, unsigned long max)
{
	char *end;
	unsigned long n;

	if (v[0] < '0' || v[0] > '9')
		return 0;
	errno = 0;
	n = strtoul(v, &end, 10);
	return errno == 0 && *end == '\0' && n <= max;
}

int
store_prop_check(const char *key, const char *value, struct as_err *err)
{
	struct compress_spec cs;
	uint64_t rate;

	char **argv;
	int64_t secs;

	/* recursive=off is SYNC_NO_RECURSE (runner.c), on every engine */
	if (propdef(key) == NULL)
		return as_err_set(err, AS_E_USAGE, 0, "unknown or read-only "
		    "property '%s'", key);
	if (strcmp(key, "rate_limit") == 0) {
		if (value[0] == '\0' || ratelimit_parse(value, &rate, err) == -1)
			return as_err_set(err, AS_E_USAGE, 0, "rate_limit: "
			    "expected a rate such as 40M (0 for none), not "
			    "'%s'", value);
	} else if (strcmp(key, "compress") == 0) {
		if (compress_parse(value, &cs, err) == -1)
			return -1;
	} else if (strcmp(key, "trace_level") == 0) {
		if (!uint_in(value, 3))
			return as_err_set(err, AS_E_USAGE, 0, "trace_level: "
			    "expected 0 to 3, not '%s'", value);
	} else if (strcmp(key, "pre_hook") == 0 ||
	    strcmp(key, "post_hook") == 0) {
		if (hook_split(value, &argv, err) == -1)
			return as_err_prefix(err, "%s", key);
		hook_argv_free(argv);
	} else if (strcmp(key, "hook_timeout") == 0 ||
	    strcmp(key, "full_scan_interval") == 0) {
		if (sched_parse_duration(value, &secs, err) == -1)
			return as_err_prefix(err, "%s", key);
	} else if (strcmp(key, "journal") == 0) {
		if (strcmp(value, "auto") != 0 &&
		    strcmp(value, "fanotify") != 0 &&
		    strcmp(value, "inotify") != 0)
			return as_err_set(err, AS_E_USAGE, 0, "journal: "
			    "expected auto, fanotify or inotify, not '%s'",
			    value);
	} else if (strcmp(key, "retries") == 0) {
		if (!uint_in(value, 1000) || strcmp(value, "0") == 0)
			return as_err_set(err, AS_E_USAGE, 0, "retries: "
			    "expected 1 to 1000, not '%s'", value);
	} else if (strcmp(key, "trust") == 0) {
		/* a host name as in a URL: no user, port or path */
		if (strpbrk(value, "@/ \t") != NULL)
			return as_err_set(err, AS_E_USAGE, 0, "trust: expected "
			    "the source URL's host, not '%s'", value);
	} else if (strcmp(key, "key_file") == 0 ||
	    strcmp(key, "cert_file") == 0 || strcmp(key, "ca_file") == 0) {
		/* the files themselves: runner_check_auth, by the CLI */
		if (value[0] != '\0' && value[0] != '/')
			return as_err_set(err, AS_E_USAGE, 0, "%s: expected "
			    "an absolute path, not '%s'", key, value);
	} else if (strcmp(key, "keep_src") == 0 ||
	    strcmp(key, "keep_dst") == 0) {
		if (!uint_in(value, 1000000))
			return as_err_set(err, AS_E_USAGE, 0, "%s: expected "
			    "a count (0: keep all), not '%s'", key, value);
	} else if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0)
		return as_err_set(err, AS_E_USAGE, 0, "%s: expected on or "
		    "off, not '%s'", key, value);
	return 0;
}

int
store_prop_set(struct store *st, const char *name, const char *key,
    const char *value, struct as_err *err)
{
	sqlite3_stmt *s;

	if (store_prop_check(key, value, err) == -1)
		return -1;
	if ((s = prep(st, "INSERT OR REPLACE INTO props (service, key, value) "
	    "SELECT id, ?, ? FROM services WHERE name = ?", err)) == NULL)
		return -1;
	bind_text(s, 1, key);
	bind_text(s, 2, value);
	bind_text(s, 3, name);
	return change_one(st, s, name, "set property", err);
}

int
store_prop_get(struct store *st, const char *name, const char *key,
    char **value, struct as_err *err)
{
	const struct store_propdef *pd;
	sqlite3_stmt *s;
	struct svc v;
	int rc;

	if ((pd = propdef(key)) == NULL)
		return as_err_set(err, AS_E_USAGE, 0, "unknown property '%s'",
		    key);
	if (store_svc_get(st, name, &v, err) == -1)
		return -1;
	if ((s = prep(st, "SELECT value FROM props WHERE service = ? AND "
	    "key = ?", err)) == NULL) {
		svc_release(&v);
		return -1;
	}
	sqlite3_bind_int64(s, 1, v.id);
	bind_text(s, 2, key);
	svc_release(&v);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*value = col_dup(s, 0);
	else if (rc == SQLITE_DONE)
		*value = xstrdup(pd->def);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return dberr(st, rc, "read property", err);
	if (*value == NULL)
		*value = xstrdup("");
	return 0;
}

int
store_prop_list(struct store *st, const char *name, struct store_prop **vp,
    size_t *np, struct as_err *err)
{
	struct store_prop *v = NULL;
	sqlite3_stmt *s;
	size_t n = 0;
	int rc;

	*vp = NULL;
	*np = 0;
	if ((s = prep(st, "SELECT key, value FROM props WHERE service = "
	    "(SELECT id FROM services WHERE name = ?) ORDER BY key",
	    err)) == NULL)
		return -1;
	bind_text(s, 1, name);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n].key = col_dup(s, 0);
		v[n].value = col_dup(s, 1);
		if (v[n].key == NULL)
			v[n].key = xstrdup("");
		if (v[n].value == NULL)
			v[n].value = xstrdup("");
		n++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		store_prop_list_free(v, n);
		return dberr(st, rc, "read properties", err);
	}
	*vp = v;
	*np = n;
	return 0;
}

void
store_prop_list_free(struct store_prop *v, size_t n)
{
	size_t i;

	for (i = 0; i < n && v != NULL; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

char *
store_prop_lookup(const struct store_prop *v, size_t n, const char *key)
{
	const struct store_propdef *pd;
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].key, key) == 0)
			return xstrdup(v[i].value);
	pd = propdef(key);
	return xstrdup(pd != NULL && pd->def != NULL ? pd->def : "");
}

int
store_run_begin(struct store *st, const char *name, int64_t now, long pid,
    int64_t *run_id, struct as_err *err)
{
	sqlite3_stmt *s;

	if (begin(st, err) == -1)
		return -1;
	if ((s = prep(st, "UPDATE services SET state = 'running' WHERE "
	    "name = ?", err)) == NULL)
		goto fail;
	bind_text(s, 1, name);
	if (change_one(st, s, name, "begin run", err) == -1)
		goto fail;
	if ((s = prep(st, "INSERT INTO runs (service, started, pid) SELECT "
	    "id, ?, ? FROM services WHERE name = ?", err)) == NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, pid);
	bind_text(s, 3, name);
	if (step_done(st, s, "begin run", err) == -1)
		goto fail;
	*run_id = sqlite3_last_insert_rowid(st->db);
	return commit(st, err);
fail:
	rollback(st);
	return -1;
}

/* Keep the newest STORE_KEEP_ROWS rows of table for service. */
static int
trim(struct store *st, const char *sql, int64_t id, struct as_err *err)
{
	sqlite3_stmt *s;

	if ((s = prep(st, sql, err)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, id);
	sqlite3_bind_int(s, 3, STORE_KEEP_ROWS);
	return step_done(st, s, "trim history", err);
}

int
store_run_end(struct store *st, const char *name, int64_t run_id,
    int64_t started, const struct run_result *r, enum svc_state state,
    int64_t next, struct as_err *err)
{
	sqlite3_stmt *s;
	struct svc v;
	char msg[AS_ERR_MSGMAX + 128];
	const char *code = r->ok ? NULL : as_errcode_name(r->code);
	const char *cls = r->ok ? NULL :
	    as_errclass_of(r->code) == AS_TEMP ? "TEMP" : "PERM";

	memset(&v, 0, sizeof(v));
	if (begin(st, err) == -1)
		return -1;
	if ((s = prep(st, "UPDATE runs SET ended = ?, outcome = ?, "
	    "errclass = ?, errcode = ?, message = ?, bytes = ? WHERE id = ?",
	    err)) == NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, r->ended);
	bind_text(s, 2, r->ok ? "ok" : "failed");
	bind_text(s, 3, cls);
	bind_text(s, 4, code);
	bind_text(s, 5, r->ok ? NULL : r->msg);
	sqlite3_bind_int64(s, 6, (sqlite3_int64)r->bytes);
	sqlite3_bind_int64(s, 7, run_id);
	if (step_done(st, s, "end run", err) == -1)
		goto fail;
	if (r->ok)
		s = prep(st, "UPDATE services SET state = ?, next_run = ?, "
		    "last_start = ?, last_end = ?, last_success = ?, "
		    "bytes_sent = ?, successes = successes + 1, "
		    "consecutive = 0 WHERE name = ?", err);
	else
		s = prep(st, "UPDATE services SET state = ?, next_run = ?, "
		    "last_start = ?, last_end = ?, last_error = ?, "
		    "bytes_sent = ?, failures = failures + 1, "
		    "consecutive = consecutive + 1, last_errcode = ? "
		    "WHERE name = ?", err);
	if (s == NULL)
		goto fail;
	bind_text(s, 1, svc_state_name(state));
	sqlite3_bind_int64(s, 2, next);
	sqlite3_bind_int64(s, 3, started);
	sqlite3_bind_int64(s, 4, r->ended);
	if (r->ok)
		sqlite3_bind_int64(s, 5, r->ended);
	else
		bind_text(s, 5, r->msg);
	sqlite3_bind_int64(s, 6, (sqlite3_int64)r->bytes);
	if (r->ok)
		bind_text(s, 7, name);
	else {
		bind_text(s, 7, code);
		bind_text(s, 8, name);
	}
	if (change_one(st, s, name, "end run", err) == -1)
		goto fail;
	if (r->ok)
		snprintf(msg, sizeof(msg), "run %" PRId64 " ok in %.3f s, "
		    "%" PRIu64 " bytes; state %s", run_id,
		    (double)(r->ended - started) / 1e3, r->bytes,
		    svc_state_name(state));
	else
		snprintf(msg, sizeof(msg), "run %" PRId64 " failed (%s, %s): "
		    "%s; state %s", run_id, code, cls, r->msg != NULL ?
		    r->msg : "", svc_state_name(state));
	if ((!(r->ok && r->quiet) &&
	    store_event(st, name, r->ended, msg, err) == -1) ||
	    store_svc_get(st, name, &v, err) == -1 ||
	    trim(st, "DELETE FROM runs WHERE service = ? AND id < "
	    "(SELECT MIN(id) FROM (SELECT id FROM runs WHERE service = ? "
	    "ORDER BY id DESC LIMIT ?))", v.id, err) == -1 ||
	    trim(st, "DELETE FROM events WHERE service = ? AND id < "
	    "(SELECT MIN(id) FROM (SELECT id FROM events WHERE service = ? "
	    "ORDER BY id DESC LIMIT ?))", v.id, err) == -1)
		goto fail;
	svc_release(&v);
	return commit(st, err);
fail:
	svc_release(&v);
	rollback(st);
	return -1;
}

int
store_run_interrupted(struct store *st, const char *name, int64_t run_id,
    int64_t now, enum svc_state state, struct as_err *err)
{
	sqlite3_stmt *s;
	char msg[128];

	if (begin(st, err) == -1)
		return -1;
	if ((s = prep(st, "UPDATE runs SET ended = ?, outcome = "
	    "'interrupted', errclass = 'TEMP', errcode = 'INTERNAL', "
	    "message = 'stopped by the daemon' WHERE id = ?", err)) == NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, run_id);
	if (step_done(st, s, "interrupt run", err) == -1)
		goto fail;
	if ((s = prep(st, "UPDATE services SET state = ? WHERE name = ?",
	    err)) == NULL)
		goto fail;
	bind_text(s, 1, svc_state_name(state));
	bind_text(s, 2, name);
	if (change_one(st, s, name, "interrupt run", err) == -1)
		goto fail;
	snprintf(msg, sizeof(msg), "run %" PRId64 " interrupted (the daemon "
	    "stopped); the next run recovers the destination", run_id);
	if (store_event(st, name, now, msg, err) == -1)
		goto fail;
	return commit(st, err);
fail:
	rollback(st);
	return -1;
}

int
store_recover(struct store *st, int64_t now, unsigned *n, struct as_err *err)
{
	return store_recover_service(st, NULL, now, n, err);
}

/* The runs store_recover_service closes: all open ones, or name's. */
#define OPEN_RUNS "ended IS NULL AND (?2 IS NULL OR service = " \
	"(SELECT id FROM services WHERE name = ?2))"

int
store_recover_service(struct store *st, const char *name, int64_t now,
    unsigned *n, struct as_err *err)
{
	sqlite3_stmt *s;

	*n = 0;
	if (begin(st, err) == -1)
		return -1;
	if ((s = prep(st, "INSERT INTO events (service, time, message) "
	    "SELECT service, ?1, 'run ' || id || ' interrupted (the daemon "
	    "or the run was killed); the next run recovers the destination' "
	    "FROM runs WHERE " OPEN_RUNS, err)) == NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, now);
	bind_text(s, 2, name);
	if (step_done(st, s, "recover", err) == -1)
		goto fail;
	if ((s = prep(st, "UPDATE runs SET ended = ?1, outcome = "
	    "'interrupted', errclass = 'TEMP', errcode = 'INTERNAL', "
	    "message = 'interrupted' WHERE " OPEN_RUNS, err)) == NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, now);
	bind_text(s, 2, name);
	if (step_done(st, s, "recover", err) == -1)
		goto fail;
	*n = (unsigned)sqlite3_changes(st->db);
	if ((s = prep(st, "UPDATE services SET state = 'online' WHERE state = "
	    "'running' AND (?1 IS NULL OR name = ?1)", err)) == NULL)
		goto fail;
	bind_text(s, 1, name);
	if (step_done(st, s, "recover", err) == -1)
		goto fail;
	return commit(st, err);
fail:
	rollback(st);
	return -1;
}

int
store_event(struct store *st, const char *name, int64_t now, const char *msg,
    struct as_err *err)
{
	sqlite3_stmt *s;

	if ((s = prep(st, "INSERT INTO events (service, time, message) "
	    "SELECT id, ?, ? FROM services WHERE name = ?", err)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	bind_text(s, 2, msg);
	bind_text(s, 3, name);
	return change_one(st, s, name, "add event", err);
}

int
store_events(struct store *st, const char *name, int64_t after,
    store_event_fn fn, void *arg, struct as_err *err)
{
	sqlite3_stmt *s;
	const unsigned char *m;
	int rc;

	if ((s = prep(st, "SELECT e.id, e.time, e.message FROM events e JOIN "
	    "services v ON e.service = v.id WHERE v.name = ? AND e.id > ? "
	    "ORDER BY e.id", err)) == NULL)
		return -1;
	bind_text(s, 1, name);
	sqlite3_bind_int64(s, 2, after);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		m = sqlite3_column_text(s, 2);
		fn(arg, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
		    m != NULL ? (const char *)m : "");
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return dberr(st, rc, "read events", err);
	return 0;
}

int
store_runs(struct store *st, const char *name, store_run_fn fn, void *arg,
    struct as_err *err)
{
	sqlite3_stmt *s;
	const unsigned char *o, *c, *m;
	int rc;

	if ((s = prep(st, "SELECT r.id, r.started, r.ended, r.outcome, "
	    "r.errcode, r.message, r.bytes FROM runs r JOIN services v ON "
	    "r.service = v.id WHERE v.name = ? ORDER BY r.id", err)) == NULL)
		return -1;
	bind_text(s, 1, name);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		o = sqlite3_column_text(s, 3);
		c = sqlite3_column_text(s, 4);
		m = sqlite3_column_text(s, 5);
		fn(arg, sqlite3_column_int64(s, 0),
		    sqlite3_column_int64(s, 1),
		    sqlite3_column_type(s, 2) == SQLITE_NULL ? -1 :
		    sqlite3_column_int64(s, 2),
		    o != NULL ? (const char *)o : "", (const char *)c,
		    (const char *)m, (uint64_t)sqlite3_column_int64(s, 6));
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return dberr(st, rc, "read runs", err);
	return 0;
}
