/*
 * t_store.c - the service's database (service/store.h) on ":memory:" and
 * on a file: migrations, services, properties, runs, crash recovery,
 * integrity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "service/runner.h"
#include "service/store.h"
#include "base/banned.h"

static void
test_migrate(void **state)
{
	struct store *st;
	struct as_err err;
	char path[] = "/tmp/t_store.XXXXXX";
	char db[64];
	sqlite3 *raw;
	int v = -1, fd;

	(void)state;
	st = store_open(":memory:", &err);
	assert_non_null(st);
	assert_int_equal(store_schema_version(st, &v, &err), 0);
	assert_int_equal(v, STORE_VERSION);
	assert_int_equal(store_integrity_check(st, &err), 0);
	store_close(st);

	/* a file: reopening does not migrate twice; newer is refused */
	assert_non_null(mkdtemp(path));
	snprintf(db, sizeof(db), "%s/a.db", path);
	assert_non_null(st = store_open(db, &err));
	assert_int_equal(store_svc_create(st, "a", "/s", "/d", "every 1m", 1,
	    &err), 0);
	store_close(st);
	assert_non_null(st = store_open(db, &err));
	assert_int_equal(store_schema_version(st, &v, &err), 0);
	assert_int_equal(v, STORE_VERSION);
	store_close(st);
	assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, "SELECT count(*) FROM "
	    "schema_version", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, "PRAGMA user_version = 99", NULL,
	    NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);
	as_err_clear(&err);
	assert_null(store_open(db, &err));
	assert_int_equal(err.code, AS_E_UNSUPPORTED);
	fd = 0;
	(void)fd;
	snprintf(db, sizeof(db), "%s/a.db-wal", path);
	unlink(db);
	snprintf(db, sizeof(db), "%s/a.db-shm", path);
	unlink(db);
	snprintf(db, sizeof(db), "%s/a.db", path);
	unlink(db);
	rmdir(path);
}

static void
test_crud(void **state)
{
	struct store *st;
	struct as_err err;
	struct svc v, *l;
	size_t n, i;
	char *val;

	(void)state;
	assert_non_null(st = store_open(":memory:", &err));
	assert_int_equal(store_svc_create(st, "home", "/srv/home",
	    "ssh://b/x", "every 15m", 1000, &err), 0);
	assert_int_equal(store_svc_create(st, "db", "/srv/db", "/mnt/db",
	    "continuous 1s", 1000, &err), 0);
	assert_int_equal(store_svc_create(st, "home", "/a", "/b",
	    "every 1m", 1000, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_int_equal(store_svc_create(st, "-bad", "/a", "/b",
	    "every 1m", 1000, &err), -1);
	assert_int_equal(err.code, AS_E_USAGE);
	assert_int_equal(store_svc_create(st, "a'; DROP TABLE services;--",
	    "/a", "/b", "every 1m", 1000, &err), -1);

	assert_int_equal(store_svc_list(st, &l, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(l[0].name, "db");
	assert_string_equal(l[1].name, "home");
	assert_int_equal(l[1].state, SVC_ONLINE);
	assert_int_equal(l[1].last_success, -1);
	svc_list_free(l, n);

	assert_int_equal(store_svc_get(st, "nope", &v, &err), -1);
	assert_int_equal(err.code, AS_E_NOTFOUND);

	/* properties: defaults, set, refused values */
	assert_int_equal(store_prop_get(st, "home", "retries", &val, &err),
	    0);
	assert_string_equal(val, "5");
	free(val);
	assert_int_equal(store_prop_set(st, "home", "rate_limit", "10M",
	    &err), 0);
	assert_int_equal(store_prop_get(st, "home", "rate_limit", &val,
	    &err), 0);
	assert_string_equal(val, "10M");
	free(val);
	assert_int_equal(store_prop_set(st, "home", "rate_limit", "fast",
	    &err), -1);
	assert_int_equal(store_prop_set(st, "home", "trace_level", "9",
	    &err), -1);
	assert_int_equal(store_prop_set(st, "home", "state", "online",
	    &err), -1);
	assert_int_equal(store_prop_set(st, "nope", "retries", "3", &err),
	    -1);
	assert_int_equal(err.code, AS_E_NOTFOUND);
	assert_int_equal(store_prop_set(st, "home", "compress", "zstd:3",
	    &err), 0);
	assert_int_equal(store_svc_set_schedule(st, "home", "every 5m",
	    &err), 0);
	assert_int_equal(store_svc_set_schedule(st, "home", "sometimes",
	    &err), -1);

	/* state changes */
	assert_int_equal(store_svc_set_state(st, "home", SVC_DISABLED, 2000,
	    &err), 0);
	assert_int_equal(store_svc_get(st, "home", &v, &err), 0);
	assert_int_equal(v.state, SVC_DISABLED);
	assert_string_equal(v.schedule, "every 5m");
	svc_release(&v);

	/* destroy takes properties, runs and events along */
	assert_int_equal(store_svc_destroy(st, "home", &err), 0);
	assert_int_equal(store_svc_destroy(st, "home", &err), -1);
	assert_int_equal(err.code, AS_E_NOTFOUND);
	assert_int_equal(store_svc_list(st, &l, &n, &err), 0);
	assert_int_equal(n, 1);
	for (i = 0; i < n; i++)
		assert_string_equal(l[i].name, "db");
	svc_list_free(l, n);
	assert_int_equal(store_integrity_check(st, &err), 0);
	store_close(st);
}

struct count {
	int	n;
	int	interrupted;
	int	failed;
};

static void
count_run(void *arg, int64_t id, int64_t start, int64_t end,
    const char *outcome, const char *code, const char *msg, uint64_t bytes)
{
	struct count *c = arg;

	(void)id; (void)start; (void)end; (void)code; (void)msg; (void)bytes;
	c->n++;
	c->interrupted += strcmp(outcome, "interrupted") == 0;
	c->failed += strcmp(outcome, "failed") == 0;
}

static void
count_event(void *arg, int64_t id, int64_t t, const char *msg)
{
	(void)id; (void)t; (void)msg;
	((struct count *)arg)->n++;
}

static void
test_runs(void **state)
{
	struct store *st;
	struct as_err err;
	struct svc v;
	struct run_result r;
	struct count c;
	int64_t id;
	unsigned n;
	int i;

	(void)state;
	assert_non_null(st = store_open(":memory:", &err));
	assert_int_equal(store_svc_create(st, "a", "/s", "/d", "every 1m",
	    0, &err), 0);

	assert_int_equal(store_run_begin(st, "a", 1000, 42, &id, &err), 0);
	assert_int_equal(store_svc_get(st, "a", &v, &err), 0);
	assert_int_equal(v.state, SVC_RUNNING);
	svc_release(&v);
	memset(&r, 0, sizeof(r));
	r.ended = 3500;
	r.ok = 1;
	r.bytes = 1234;
	assert_int_equal(store_run_end(st, "a", id, 1000, &r, SVC_ONLINE,
	    61000, &err), 0);
	assert_int_equal(store_svc_get(st, "a", &v, &err), 0);
	assert_int_equal(v.state, SVC_ONLINE);
	assert_int_equal(v.successes, 1);
	assert_int_equal(v.last_success, 3500);
	assert_int_equal(v.last_end - v.last_start, 2500);
	assert_int_equal(v.bytes_sent, 1234);
	assert_int_equal(v.next_run, 61000);
	svc_release(&v);

	/* two failures in a row, then maintenance */
	for (i = 0; i < 2; i++) {
		assert_int_equal(store_run_begin(st, "a", 5000, 42, &id, &err),
		    0);
		memset(&r, 0, sizeof(r));
		r.ended = 6000;
		r.code = AS_E_IO;
		r.msg = "write 'x': no\nnewline";
		assert_int_equal(store_run_end(st, "a", id, 5000, &r,
		    i == 1 ? SVC_MAINTENANCE : SVC_ONLINE, -1, &err), 0);
	}
	assert_int_equal(store_svc_get(st, "a", &v, &err), 0);
	assert_int_equal(v.state, SVC_MAINTENANCE);
	assert_int_equal(v.failures, 2);
	assert_int_equal(v.consecutive, 2);
	assert_string_equal(v.last_errcode, "IO");
	svc_release(&v);
	assert_int_equal(store_svc_clear(st, "a", 7000, &err), 0);
	assert_int_equal(store_svc_get(st, "a", &v, &err), 0);
	assert_int_equal(v.state, SVC_ONLINE);
	assert_int_equal(v.consecutive, 0);
	assert_int_equal(v.failures, 2);
	svc_release(&v);

	/* a run that never ended: recovered as interrupted */
	assert_int_equal(store_run_begin(st, "a", 8000, 42, &id, &err), 0);
	assert_int_equal(store_recover(st, 9000, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_recover(st, 9000, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_svc_get(st, "a", &v, &err), 0);
	assert_int_equal(v.state, SVC_ONLINE);
	svc_release(&v);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_runs(st, "a", count_run, &c, &err), 0);
	assert_int_equal(c.n, 4);
	assert_int_equal(c.interrupted, 1);
	assert_int_equal(c.failed, 2);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_events(st, "a", 0, count_event, &c, &err), 0);
	assert_true(c.n >= 6);

	/* history is trimmed to STORE_KEEP_ROWS */
	for (i = 0; i < STORE_KEEP_ROWS + 20; i++) {
		assert_int_equal(store_run_begin(st, "a", 10000 + i, 1, &id,
		    &err), 0);
		memset(&r, 0, sizeof(r));
		r.ended = 10000 + i;
		r.ok = 1;
		assert_int_equal(store_run_end(st, "a", id, 10000 + i, &r,
		    SVC_ONLINE, -1, &err), 0);
	}
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_runs(st, "a", count_run, &c, &err), 0);
	assert_int_equal(c.n, STORE_KEEP_ROWS);
	assert_int_equal(store_integrity_check(st, &err), 0);
	store_close(st);
}

struct ev {
	int	n;
	char	last[256];
};

static void
last_event(void *arg, int64_t id, int64_t t, const char *msg)
{
	struct ev *e = arg;

	(void)id;
	(void)t;
	e->n++;
	snprintf(e->last, sizeof(e->last), "%s", msg);
}

/* Properties of this slice: hooks, trace levels, retention; quiet runs,
 * runs the daemon stopped, reversed endpoints. */
static void
test_props_and_ends(void **state)
{
	struct store *st;
	struct as_err err;
	struct run_result r;
	struct count c;
	struct svc v;
	struct ev e;
	int64_t id;
	char *val;

	(void)state;
	assert_non_null(st = store_open(":memory:", &err));
	assert_int_equal(store_svc_create(st, "a", "/s", "/d", "every 1m",
	    1000, &err), 0);
	assert_int_equal(store_prop_set(st, "a", "trace_level", "3", &err),
	    0);
	assert_int_equal(store_prop_set(st, "a", "trace_level", "4", &err),
	    -1);
	assert_int_equal(store_prop_set(st, "a", "keep_src", "24", &err), 0);
	assert_int_equal(store_prop_set(st, "a", "keep_src", "-1", &err),
	    -1);
	assert_int_equal(store_prop_set(st, "a", "pre_hook",
	    "/bin/echo 'a b' c", &err), 0);
	assert_int_equal(store_prop_set(st, "a", "pre_hook", "echo x",
	    &err), -1);
	assert_int_equal(err.code, AS_E_USAGE);
	assert_int_equal(store_prop_set(st, "a", "post_hook", "", &err), 0);
	assert_int_equal(store_prop_set(st, "a", "hook_timeout", "0s", &err),
	    -1);
	assert_int_equal(store_prop_set(st, "a", "hook_timeout", "90s", &err),
	    0);
	/* -N is obeyed by every engine (SYNC_NO_RECURSE) */
	assert_int_equal(store_prop_set(st, "a", "recursive", "off", &err),
	    0);
	assert_int_equal(store_prop_set(st, "a", "recursive", "no", &err),
	    -1);
	assert_int_equal(err.code, AS_E_USAGE);
	assert_int_equal(store_prop_set(st, "a", "recursive", "on", &err),
	    0);
	assert_int_equal(store_prop_get(st, "a", "keep_dst", &val, &err), 0);
	assert_string_equal(val, "1");
	free(val);
	assert_int_equal(store_prop_get(st, "a", "latest", &val, &err), 0);
	assert_string_equal(val, "on");
	free(val);

	/* a quiet success leaves no event; a failure always does */
	memset(&e, 0, sizeof(e));
	assert_int_equal(store_events(st, "a", 0, last_event, &e, &err), 0);
	assert_int_equal(e.n, 1);			/* created */
	assert_int_equal(store_run_begin(st, "a", 2000, 1, &id, &err), 0);
	memset(&r, 0, sizeof(r));
	r.ended = 3000;
	r.ok = 1;
	r.quiet = 1;
	assert_int_equal(store_run_end(st, "a", id, 2000, &r, SVC_ONLINE,
	    -1, &err), 0);
	memset(&e, 0, sizeof(e));
	assert_int_equal(store_events(st, "a", 0, last_event, &e, &err), 0);
	assert_int_equal(e.n, 1);
	assert_int_equal(store_svc_get(st, "a", &v, &err), 0);
	assert_int_equal(v.successes, 1);
	svc_release(&v);

	/* stopped by the daemon: interrupted, not a failure */
	assert_int_equal(store_run_begin(st, "a", 4000, 1, &id, &err), 0);
	assert_int_equal(store_run_interrupted(st, "a", id, 5000, SVC_ONLINE,
	    &err), 0);
	assert_int_equal(store_svc_get(st, "a", &v, &err), 0);
	assert_int_equal(v.state, SVC_ONLINE);
	assert_int_equal(v.failures, 0);
	assert_int_equal(v.consecutive, 0);
	svc_release(&v);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_runs(st, "a", count_run, &c, &err), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.interrupted, 1);
	memset(&e, 0, sizeof(e));
	assert_int_equal(store_events(st, "a", 0, last_event, &e, &err), 0);
	assert_non_null(strstr(e.last, "interrupted (the daemon stopped)"));

	/* reverse swaps the endpoints, with an event */
	assert_int_equal(store_svc_set_endpoints(st, "a", "/d", "/s", 6000,
	    &err), 0);
	assert_int_equal(store_svc_get(st, "a", &v, &err), 0);
	assert_string_equal(v.source, "/d");
	assert_string_equal(v.dest, "/s");
	svc_release(&v);
	assert_int_equal(store_svc_set_endpoints(st, "b", "/d", "/s", 6000,
	    &err), -1);
	assert_int_equal(err.code, AS_E_NOTFOUND);
	assert_int_equal(store_integrity_check(st, &err), 0);
	store_close(st);
}

/*
 * The daemon's view of a service's configuration (§F 69): the set
 * properties as stored, an invalid one written behind set's back among
 * them, and the kept list read back into a run's properties with the
 * unset ones at their defaults.
 */
static void
test_prop_list(void **state)
{
	struct store *st;
	struct store_prop *v;
	struct runner_props p;
	struct as_err err;
	char *s;
	size_t n;

	(void)state;
	assert_non_null(st = store_open(":memory:", &err));
	assert_int_equal(store_svc_create(st, "a", "/s", "/d", "every 1h", 0,
	    &err), 0);
	assert_int_equal(store_prop_list(st, "a", &v, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_null(v);
	assert_int_equal(store_prop_list(st, "none", &v, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_prop_set(st, "a", "rate_limit", "10M", &err),
	    0);
	assert_int_equal(store_prop_set(st, "a", "keep_src", "3", &err), 0);
	assert_int_equal(store_prop_list(st, "a", &v, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].key, "keep_src");
	assert_string_equal(v[1].value, "10M");
	s = store_prop_lookup(v, n, "keep_src");
	assert_string_equal(s, "3");
	free(s);
	s = store_prop_lookup(v, n, "retries");
	assert_string_equal(s, "5");	/* the default */
	free(s);
	memset(&p, 0, sizeof(p));
	assert_int_equal(runner_props_load_list(v, n, &p, &err), 0);
	assert_int_equal(p.keep_src, 3);
	assert_true(p.ro.rate >= 10 * 1000 * 1000);
	runner_props_release(&p);
	store_prop_list_free(v, n);

	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate),
		cmocka_unit_test(test_crud),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_props_and_ends),
		cmocka_unit_test(test_prop_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
