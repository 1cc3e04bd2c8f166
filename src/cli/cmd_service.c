/*
 * cmd_service.c - the service: create, list, show, get, set, run,
 * enable, disable, clear, destroy (of a service; destroy DS@SNAP is the
 * snapshot's), log, reverse, mount-destination, umount-destination,
 * daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "cli/cli.h"
#include "repl/endpoint.h"
#include "repl/failback.h"
#include "repl/snapstore.h"
#include "service/control.h"
#include "repl/sync.h"
#include "service/guard.h"
#include "service/metrics.h"
#include "service/mountdst.h"
#include "service/reverse.h"
#include "service/runner.h"
#include "service/sched.h"
#include "service/store.h"
#include "service/supervisor.h"
#include "base/banned.h"

static const char usage_create[] =
"usage: autosync create NAME --source SRC --dest DST SCHEDULE [options]\n"
"\n"
"Create a service that replicates SRC to DST (endpoints as for sync)\n"
"on a schedule, run by 'autosync daemon'.  SCHEDULE is one of:\n"
"  --every N{s,m,h,d} [--at HH:MM]   every N (at HH:MM and every N after)\n"
"  --cron 'M H DOM MON DOW'          cron fields\n"
"  --once-at YYYY-MM-DDTHH:MM[:SS]   once (then state done)\n"
"  --continuous [INTERVAL]           one run after another (default 1s)\n"
"Times of day are UTC unless --once-at ends in +HH:MM; TZ is not read.\n"
"\n"
"  --rate-limit RATE   at most RATE bytes/s on the wire (40M)\n"
"  --compress SPEC     none, zstd or zstd:LEVEL\n"
"  --keep-src N        autosync snapshots kept at the source (default 1;\n"
"                      0: all); the newest common one is always kept\n"
"  --keep-dst N        at the destination (a directory holds 1)\n"
"  --trace-level N     log verbosity 0-3 (default 1)\n"
"  --retries N         failures in a row before maintenance (default 5)\n"
"  --pre-hook 'CMD ARG...'   run before each run; failing fails the run\n"
"  --post-hook 'CMD ARG...'  run after each run (AUTOSYNC_STATUS...)\n"
"  --hook-timeout T    kill a hook after T (default 5m)\n"
"  --key FILE          tcp: the PSK file; tls: the private key (0600)\n"
"  --cert FILE         tls: this side's certificate\n"
"  --ca FILE           tls: the CA that signed the server's\n"
"  -N                  non-recursive: no child datasets, subvolumes\n"
"                      or mounts below the source\n"
"  -X                  no NAME-latest name (zfs: a property, btrfs:\n"
"                      a link; see autosync(8))\n";

static const char usage_list[] =
"usage: autosync list [--json]\n"
"\n"
"List the services: name, state, schedule, last success, next run.\n";

static const char usage_show[] =
"usage: autosync show NAME [--json]\n"
"\n"
"Every property of service NAME.  Read-only: name, source, dest, state,\n"
"next_run, last_replic_time (seconds the last run took), last_success,\n"
"last_error, last_errcode, successes, failures, consecutive_failures,\n"
"bytes_sent (by the last run).  Settable with 'autosync set': schedule,\n"
"rate_limit, compress, trace_level, retries, keep_src, keep_dst,\n"
"recursive, latest, pre_hook, post_hook, hook_timeout, key_file,\n"
"cert_file, ca_file, full_scan_interval, journal.\n";

static const char usage_get[] =
"usage: autosync get NAME PROPERTY\n";

static const char usage_set[] =
"usage: autosync set NAME PROPERTY=VALUE...\n"
"\n"
"Change settable properties (see 'autosync show --help'); schedule\n"
"takes the canonical form: 'every 15m', 'every 1d at 02:00',\n"
"'cron 0 2 * * *', 'once 2026-12-24T02:00', 'continuous 1s'.\n";

static const char usage_run[] =
"usage: autosync run NAME [--wait]\n"
"\n"
"Run service NAME now: through the daemon when one runs (--wait: until\n"
"the run ended), else in the foreground.  The exit status is the run's\n"
"(transient errors and permanent ones differ, see autosync(8)).\n";

static const char usage_state[] =
"usage: autosync enable|disable|clear|destroy NAME\n"
"\n"
"enable: schedule NAME again; disable: stop scheduling it; clear: leave\n"
"maintenance for online; destroy: forget the service (its replicas and\n"
"snapshots stay).  'destroy DATASET@NAME' destroys a snapshot.\n";

static const char usage_log[] =
"usage: autosync log [-f | --follow] NAME\n"
"\n"
"The service's events, oldest first, one per line, UTC; how much a run\n"
"says is its trace_level (0-3).  -f: then follow, printing events as\n"
"they come, until the service is destroyed or the command is stopped.\n";

static const char usage_reverse[] =
"usage: autosync reverse [--force] NAME\n"
"\n"
"Failback: the destination of NAME becomes its source and the source its\n"
"destination, incrementally from the snapshot both hold.  Refused unless\n"
"the destination holds the newest snapshot of the source (run a final\n"
"sync first) and the source has not changed since (--force: roll those\n"
"changes back now, with a run).  Two directories, local or one of them\n"
"remote (ssh://, tcp://, tls://: the server does its side and needs rw;\n"
"a push becomes a pull and the reverse), two volumes (vol:, local or one\n"
"of them remote; the old source is read whole to check it), or two local\n"
"zfs: datasets (the first run is made at once; if it fails, the reverse\n"
"is undone), or two btrfs: subvolumes with the ones nested in them, local\n"
"or one of them remote (the old source becomes a read-only replica of\n"
"what the destination holds).\n";

static const char usage_mount[] =
"usage: autosync mount-destination NAME [PATH]\n"
"       autosync umount-destination NAME [PATH]\n"
"\n"
"Mount the destination of NAME read-only (a bind mount) at PATH, by\n"
"default STATE/mnt/NAME, or unmount it.  Runs go on; the mount shows\n"
"each snapshot as it is committed.  Local directory, zfs: (mounted by\n"
"zfs with its children, readonly=on) and btrfs: destinations; root.\n";

static const char usage_daemon[] =
"usage: autosync daemon [--metrics [ADDR:]PORT]\n"
"\n"
"Run the services in the foreground until SIGTERM or SIGINT (SIGHUP:\n"
"read them again).  State: autosync.db in the state directory; control\n"
"socket autosync.sock.  --metrics serves 'autosync metrics' over HTTP\n"
"(GET /metrics) on a loopback address: PORT (127.0.0.1), [::1]:PORT.\n";

static const char usage_metrics[] =
"usage: autosync metrics\n"
"\n"
"The services' state, last success, durations, bytes and run counts in\n"
"the Prometheus text format (for a node_exporter textfile collector).\n";

static char *
state_dir(struct cli *cli, struct as_err *err)
{
	return snapstore_state_dir(cli->state_dir, err);
}

static struct store *
open_store(struct cli *cli, char **sdir, struct as_err *err)
{
	struct store *st;

	if ((*sdir = state_dir(cli, err)) == NULL)
		return NULL;
	if ((st = supervisor_open_store(*sdir, err)) == NULL) {
		free(*sdir);
		*sdir = NULL;
	}
	return st;
}

/*
 * The store and the record of service name, for the verbs on one
 * service: NULL with err (and nothing left open) when either is
 * missing.  close_svc releases what it returns.
 */
static struct store *
open_svc(struct cli *cli, const char *name, char **sdir, struct svc *v,
    struct as_err *err)
{
	struct store *st;

	memset(v, 0, sizeof(*v));
	if ((st = open_store(cli, sdir, err)) != NULL &&
	    store_svc_get(st, name, v, err) == -1) {
		store_close(st);
		free(*sdir);
		*sdir = NULL;
		return NULL;
	}
	return st;
}

static void
close_svc(struct store *st, struct svc *v, char *sdir)
{
	svc_release(v);
	store_close(st);
	free(sdir);
}

/* Tell a running daemon to read the store again; silent when none. */
static void
poke(const char *sdir)
{
	char *sock = supervisor_sock_path(sdir);

	(void)control_request(sock, "reload", NULL, NULL, NULL, 0, 2000, NULL);
	free(sock);
}

/* Only -h and --json; returns -1 to continue, else the exit status. */
static int
simple_opts(int argc, char **argv, const char *usage, const char *cmd,
    int *json)
{
	static const struct option lo[] = {
		{ "json",	no_argument,	NULL, 'j' },
		{ "wait",	no_argument,	NULL, 'w' },
		{ "help",	no_argument,	NULL, 'h' },
		{ NULL,		0,		NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 'j':
		case 'w':
			if (json == NULL)
				return cli_bad_option(usage, cmd, argv);
			*json = 1;
			break;
		case 'h':
			return cli_help(usage);
		default:
			return cli_bad_option(usage, cmd, argv);
		}
	}
	return -1;
}

enum {
	O_SOURCE = 0x200, O_DEST, O_EVERY, O_AT, O_CRON, O_ONCE, O_CONT,
	O_RATE, O_COMPRESS, O_KEEPSRC, O_KEEPDST, O_TRACE, O_RETRIES,
	O_PRE, O_POST, O_HOOKTMO, O_KEY, O_CERT, O_CA,
};
#define NPVAL	(O_CA - O_RATE + 1)

/*
 * A key, certificate or CA file as the daemon will open it: absolute,
 * since it runs elsewhere.  "" stays "" (not set).
 */
static char *
abs_file(const char *v)
{
	char *r, cwd[4096];

	if (v[0] == '\0' || v[0] == '/')
		return xstrdup(v);
	if ((r = realpath(v, NULL)) != NULL)
		return r;
	/* missing: runner_check_auth says so with the path given */
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return xstrdup(v);
	return xasprintf("%s/%s", cwd, v);
}

int
cmd_create(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "source",	required_argument,	NULL, O_SOURCE },
		{ "dest",	required_argument,	NULL, O_DEST },
		{ "every",	required_argument,	NULL, O_EVERY },
		{ "at",		required_argument,	NULL, O_AT },
		{ "cron",	required_argument,	NULL, O_CRON },
		{ "once-at",	required_argument,	NULL, O_ONCE },
		{ "continuous",	optional_argument,	NULL, O_CONT },
		{ "rate-limit",	required_argument,	NULL, O_RATE },
		{ "compress",	required_argument,	NULL, O_COMPRESS },
		{ "keep-src",	required_argument,	NULL, O_KEEPSRC },
		{ "keep-dst",	required_argument,	NULL, O_KEEPDST },
		{ "trace-level", required_argument,	NULL, O_TRACE },
		{ "retries",	required_argument,	NULL, O_RETRIES },
		{ "pre-hook",	required_argument,	NULL, O_PRE },
		{ "post-hook",	required_argument,	NULL, O_POST },
		{ "hook-timeout", required_argument,	NULL, O_HOOKTMO },
		{ "key",	required_argument,	NULL, O_KEY },
		{ "cert",	required_argument,	NULL, O_CERT },
		{ "ca",		required_argument,	NULL, O_CA },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	static const char *const pname[] = {
		[O_RATE - O_RATE] = "rate_limit",
		[O_COMPRESS - O_RATE] = "compress",
		[O_KEEPSRC - O_RATE] = "keep_src",
		[O_KEEPDST - O_RATE] = "keep_dst",
		[O_TRACE - O_RATE] = "trace_level",
		[O_RETRIES - O_RATE] = "retries",
		[O_PRE - O_RATE] = "pre_hook",
		[O_POST - O_RATE] = "post_hook",
		[O_HOOKTMO - O_RATE] = "hook_timeout",
		[O_KEY - O_RATE] = "key_file",
		[O_CERT - O_RATE] = "cert_file",
		[O_CA - O_RATE] = "ca_file",
	};
	const char *pval[NPVAL] = { NULL };
	char *files[3] = { NULL, NULL, NULL };
	const char *src = NULL, *dst = NULL, *at = NULL;
	char spec[SCHED_STR_MAX], canon[SCHED_STR_MAX], *sdir = NULL;
	struct as_err err;
	struct sched sc;
	struct store *st = NULL;
	const char *name;
	int ch, nsched = 0, norec = 0, nolatest = 0, rc = 0;
	size_t i;

	spec[0] = '\0';
	as_err_clear(&err);
	while ((ch = getopt_long(argc, argv, "NXh", lo, NULL)) != -1) {
		switch (ch) {
		case O_SOURCE:
			src = optarg;
			break;
		case O_DEST:
			dst = optarg;
			break;
		case O_EVERY:
			snprintf(spec, sizeof(spec), "every %s", optarg);
			nsched++;
			break;
		case O_AT:
			at = optarg;
			break;
		case O_CRON:
			snprintf(spec, sizeof(spec), "cron %s", optarg);
			nsched++;
			break;
		case O_ONCE:
			snprintf(spec, sizeof(spec), "once %s", optarg);
			nsched++;
			break;
		case O_CONT:
			snprintf(spec, sizeof(spec), "continuous %s",
			    optarg != NULL ? optarg : "1s");
			nsched++;
			break;
		case O_RATE:
		case O_COMPRESS:
		case O_KEEPSRC:
		case O_KEEPDST:
		case O_TRACE:
		case O_RETRIES:
		case O_PRE:
		case O_POST:
		case O_HOOKTMO:
			pval[ch - O_RATE] = optarg;
			break;
		case O_KEY:
		case O_CERT:
		case O_CA:
			free(files[ch - O_KEY]);
			files[ch - O_KEY] = abs_file(optarg);
			pval[ch - O_RATE] = files[ch - O_KEY];
			break;
		case 'N':
			norec = 1;
			break;
		case 'X':
			nolatest = 1;
			break;
		case 'h':
			rc = cli_help(usage_create);
			goto out;
		default:
			rc = cli_bad_option(usage_create, "create", argv);
			goto out;
		}
	}
	/* "--continuous 5s": a separate optional argument */
	if (nsched == 1 && strcmp(spec, "continuous 1s") == 0 &&
	    argc - optind == 2 && argv[optind + 1][0] >= '0' &&
	    argv[optind + 1][0] <= '9') {
		snprintf(spec, sizeof(spec), "continuous %s",
		    argv[optind + 1]);
		argc--;
	}
	if (argc - optind != 1) {
		rc = cli_usage_error(usage_create, "create: expected NAME");
		goto out;
	}
	name = argv[optind];
	if (src == NULL || dst == NULL) {
		rc = cli_usage_error(usage_create, "create: --source and "
		    "--dest are required");
		goto out;
	}
	if (nsched != 1) {
		rc = cli_usage_error(usage_create, "create: expected one of "
		    "--every, --cron, --once-at, --continuous");
		goto out;
	}
	if (at != NULL) {
		if (strncmp(spec, "every ", 6) != 0) {
			rc = cli_usage_error(usage_create, "create: --at "
			    "goes with --every");
			goto out;
		}
		snprintf(canon, sizeof(canon), "%s at %s", spec, at);
		snprintf(spec, sizeof(spec), "%s", canon);
	}
	if (store_name_check(name, &err) == -1 ||
	    sched_parse(spec, &sc, &err) == -1) {
		rc = cli_usage_error(usage_create, "create: %s", err.msg);
		goto out;
	}
	for (i = 0; i < NPVAL; i++)
		if (pval[i] != NULL &&
		    store_prop_check(pname[i], pval[i], &err) == -1) {
			rc = cli_usage_error(usage_create, "create: %s",
			    err.msg);
			goto out;
		}
	if ((pval[O_KEEPDST - O_RATE] != NULL && runner_check(dst,
	    (unsigned)strtoul(pval[O_KEEPDST - O_RATE], NULL, 10),
	    &err) == -1) || (pval[O_KEEPSRC - O_RATE] != NULL &&
	    runner_check_src(src, (unsigned)strtoul(pval[O_KEEPSRC -
	    O_RATE], NULL, 10), &err) == -1)) {
		rc = cli_usage_error(usage_create, "create: %s", err.msg);
		goto out;
	}
	if ((norec && store_prop_check("recursive", "off", &err) == -1) ||
	    (nolatest && store_prop_check("latest", "off", &err) == -1)) {
		rc = cli_usage_error(usage_create, "create: %s", err.msg);
		goto out;
	}
	if (runner_check_auth(src, dst, files[0], files[1], files[2],
	    &err) == -1) {
		as_err_prefix(&err, "create");
		goto fail;
	}
	sched_format(&sc, canon, sizeof(canon));
	if ((st = open_store(cli, &sdir, &err)) == NULL)
		goto fail;
	{
		struct svc *all = NULL;
		size_t nall = 0;

		if (store_svc_list(st, &all, &nall, &err) == -1)
			goto fail;
		rc = guard_endpoints(name, src, dst, all, nall, &err);
		svc_list_free(all, nall);
		if (rc == -1) {
			rc = cli_usage_error(usage_create, "create: %s",
			    err.msg);
			goto out;
		}
	}
	if (store_svc_create(st, name, src, dst, canon,
	    (int64_t)time(NULL) * 1000, &err) == -1)
		goto fail;
	for (i = 0; i < NPVAL; i++)
		if (pval[i] != NULL && store_prop_set(st, name, pname[i],
		    pval[i], &err) == -1)
			goto fail;
	if ((norec && store_prop_set(st, name, "recursive", "off",
	    &err) == -1) ||
	    (nolatest && store_prop_set(st, name, "latest", "off",
	    &err) == -1))
		goto fail;
	poke(sdir);
	goto out;
fail:
	rc = cli_error(&err);
out:
	store_close(st);
	free(sdir);
	for (i = 0; i < 3; i++)
		free(files[i]);
	return rc;
}

/* A time in ms for display: ISO UTC, or "-". */
static const char *
tstr(int64_t ms, char *buf, size_t bufsz)
{
	if (ms < 0)
		return "-";
	return cli_time(ms * 1000000, 1, buf, bufsz);
}

struct kv {
	const char	*k;
	char		 v[AS_ERR_MSGMAX];
	int		 num;	/* JSON: a number, not a string */
};

#define NKV	32

/* Every property of v, in display order; returns the count. */
static size_t
props_of(struct store *st, const struct svc *v, struct kv *kv)
{
	const struct store_propdef *pd;
	char *val, t[64];
	size_t n = 0, np, i;

#define KV(key, isnum, ...) do {					\
		kv[n].k = (key);					\
		kv[n].num = (isnum);					\
		snprintf(kv[n].v, sizeof(kv[n].v), __VA_ARGS__);	\
		n++;							\
	} while (0)
	KV("name", 0, "%s", v->name);
	KV("source", 0, "%s", v->source);
	KV("dest", 0, "%s", v->dest);
	KV("schedule", 0, "%s", v->schedule);
	KV("state", 0, "%s", svc_state_name(v->state));
	KV("next_run", 0, "%s", tstr(v->next_run, t, sizeof(t)));
	if (v->last_start >= 0 && v->last_end >= v->last_start)
		KV("last_replic_time", 1, "%.3f",
		    (double)(v->last_end - v->last_start) / 1e3);
	else
		KV("last_replic_time", 0, "-");
	KV("last_run", 0, "%s", tstr(v->last_start, t, sizeof(t)));
	KV("last_success", 0, "%s", tstr(v->last_success, t, sizeof(t)));
	KV("last_error", 0, "%s", v->last_error != NULL ? v->last_error : "-");
	KV("last_errcode", 0, "%s", v->last_errcode != NULL ?
	    v->last_errcode : "-");
	KV("successes", 1, "%" PRIu64, v->successes);
	KV("failures", 1, "%" PRIu64, v->failures);
	KV("consecutive_failures", 1, "%" PRIu64, v->consecutive);
	KV("bytes_sent", 1, "%" PRIu64, v->bytes_sent);
	pd = store_propdefs(&np);
	for (i = 0; i < np && n < NKV; i++) {
		if (store_prop_get(st, v->name, pd[i].name, &val, NULL) == -1)
			continue;
		KV(pd[i].name, 0, "%s", val);
		free(val);
	}
#undef KV
	return n;
}

static void
print_json_obj(const struct kv *kv, size_t n)
{
	size_t i;

	printf("{");
	for (i = 0; i < n; i++) {
		printf("%s", i > 0 ? ", " : "");
		cli_json_str(stdout, kv[i].k);
		printf(": ");
		if (kv[i].num)
			printf("%s", kv[i].v);
		else if (strcmp(kv[i].v, "-") == 0)
			printf("null");
		else
			cli_json_str(stdout, kv[i].v);
	}
	printf("}");
}

int
cmd_list(struct cli *cli, int argc, char **argv)
{
	struct as_err err;
	struct store *st;
	struct svc *v = NULL;
	struct kv kv[NKV];
	size_t n = 0, i, nk;
	char *sdir = NULL, t1[64], t2[64];
	int json = 0, rc;

	if ((rc = simple_opts(argc, argv, usage_list, "list", &json)) >= 0)
		return rc;
	if (argc - optind != 0)
		return cli_usage_error(usage_list, "list: no arguments");
	as_err_clear(&err);
	if ((st = open_store(cli, &sdir, &err)) == NULL ||
	    store_svc_list(st, &v, &n, &err) == -1) {
		rc = cli_error(&err);
		goto out;
	}
	rc = 0;
	if (json)
		printf("[");
	else
		printf("%-16s %-11s %-24s %-20s %s\n", "NAME", "STATE",
		    "SCHEDULE", "LAST SUCCESS", "NEXT RUN");
	for (i = 0; i < n; i++) {
		if (json) {
			nk = props_of(st, &v[i], kv);
			printf("%s", i > 0 ? ",\n " : "");
			print_json_obj(kv, nk);
			continue;
		}
		printf("%-16s %-11s %-24s %-20s %s\n", v[i].name,
		    svc_state_name(v[i].state), v[i].schedule,
		    tstr(v[i].last_success, t1, sizeof(t1)),
		    tstr(v[i].next_run, t2, sizeof(t2)));
	}
	if (json)
		printf("]\n");
out:
	svc_list_free(v, n);
	store_close(st);
	free(sdir);
	return rc;
}

/* show (prop NULL: every property, json or not) and get (one). */
static int
print_props(struct cli *cli, const char *name, const char *prop, int json)
{
	struct as_err err;
	struct store *st;
	struct svc v;
	struct kv kv[NKV];
	size_t n, i;
	char *sdir = NULL;
	int rc = 0;

	as_err_clear(&err);
	if ((st = open_svc(cli, name, &sdir, &v, &err)) == NULL)
		return cli_error(&err);
	n = props_of(st, &v, kv);
	if (prop == NULL && json) {
		print_json_obj(kv, n);
		printf("\n");
	} else if (prop == NULL) {
		for (i = 0; i < n; i++)
			printf("%-22s %s\n", kv[i].k, cli_esc(kv[i].v));
	} else {
		for (i = 0; i < n && strcmp(kv[i].k, prop) != 0; i++)
			;
		if (i < n)
			printf("%s\n", cli_esc(kv[i].v));
		else {
			as_err_set(&err, AS_E_USAGE, 0, "get: unknown "
			    "property '%s'", prop);
			rc = cli_error(&err);
		}
	}
	close_svc(st, &v, sdir);
	return rc;
}

int
cmd_show(struct cli *cli, int argc, char **argv)
{
	int json = 0, rc;

	if ((rc = simple_opts(argc, argv, usage_show, "show", &json)) >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(usage_show, "show: expected NAME");
	return print_props(cli, argv[optind], NULL, json);
}

int
cmd_get(struct cli *cli, int argc, char **argv)
{
	int rc;

	if ((rc = simple_opts(argc, argv, usage_get, "get", NULL)) >= 0)
		return rc;
	if (argc - optind != 2)
		return cli_usage_error(usage_get, "get: expected NAME and "
		    "PROPERTY");
	return print_props(cli, argv[optind], argv[optind + 1], 0);
}

int
cmd_set(struct cli *cli, int argc, char **argv)
{
	struct as_err err;
	struct store *st;
	struct sched sc;
	struct svc v;
	static const char *const fprop[3] = { "key_file", "cert_file",
	    "ca_file" };
	char *sdir = NULL, *key, canon[SCHED_STR_MAX], *fval[3] = { NULL };
	char *abs = NULL;
	const char *val;
	int i, k, files = 0, rc;

	if ((rc = simple_opts(argc, argv, usage_set, "set", NULL)) >= 0)
		return rc;
	if (argc - optind < 2)
		return cli_usage_error(usage_set, "set: expected NAME and "
		    "PROPERTY=VALUE");
	as_err_clear(&err);
	/* check everything before changing anything */
	for (i = optind + 1; i < argc; i++) {
		if ((val = strchr(argv[i], '=')) == NULL)
			return cli_usage_error(usage_set, "set: expected "
			    "PROPERTY=VALUE, not '%s'", cli_esc(argv[i]));
		key = xstrdup(argv[i]);
		key[val - argv[i]] = '\0';
		val++;
		rc = strcmp(key, "schedule") == 0 ?
		    sched_parse(val, &sc, &err) :
		    strstr(key, "_file") != NULL && val[0] != '/' ?
		    store_prop_check(key, "", &err) :	/* abs_file later */
		    store_prop_check(key, val, &err);
		free(key);
		if (rc == -1)
			return cli_usage_error(usage_set, "set: %s", err.msg);
	}
	if ((st = open_svc(cli, argv[optind], &sdir, &v, &err)) == NULL)
		goto fail;
	/* the key files as they will be, against the endpoints */
	for (k = 0; k < 3; k++)
		if (store_prop_get(st, argv[optind], fprop[k], &fval[k],
		    &err) == -1)
			goto fail;
	for (i = optind + 1; i < argc; i++) {
		val = strchr(argv[i], '=') + 1;
		for (k = 0; k < 3; k++)
			if (strncmp(argv[i], fprop[k], strlen(fprop[k])) == 0 &&
			    argv[i][strlen(fprop[k])] == '=') {
				free(fval[k]);
				fval[k] = abs_file(val);
				files = 1;
			}
	}
	if (files && runner_check_auth(v.source, v.dest, fval[0], fval[1],
	    fval[2], &err) == -1) {
		as_err_prefix(&err, "set");
		goto fail;
	}
	for (i = optind + 1; i < argc; i++)
		if ((strncmp(argv[i], "keep_dst=", 9) == 0 &&
		    runner_check(v.dest, (unsigned)strtoul(argv[i] + 9, NULL,
		    10), &err) == -1) || (strncmp(argv[i], "keep_src=", 9) ==
		    0 && runner_check_src(v.source, (unsigned)strtoul(argv[i] +
		    9, NULL, 10), &err) == -1)) {
			rc = cli_usage_error(usage_set, "set: %s", err.msg);
			goto out;
		}
	for (i = optind + 1; i < argc; i++) {
		val = strchr(argv[i], '=');
		key = xstrdup(argv[i]);
		key[val - argv[i]] = '\0';
		val++;
		for (k = 0; k < 3; k++)
			if (strcmp(key, fprop[k]) == 0) {
				free(abs);
				val = abs = abs_file(val);
			}
		if (strcmp(key, "schedule") == 0) {
			(void)sched_parse(val, &sc, NULL);
			rc = store_svc_set_schedule(st, argv[optind],
			    sched_format(&sc, canon, sizeof(canon)), &err);
		} else
			rc = store_prop_set(st, argv[optind], key, val, &err);
		free(key);
		if (rc == -1)
			goto fail;
	}
	poke(sdir);
	rc = 0;
	goto out;
fail:
	rc = cli_error(&err);
out:
	svc_release(&v);
	store_close(st);
	free(sdir);
	free(abs);
	for (k = 0; k < 3; k++)
		free(fval[k]);
	return rc;
}

int
cmd_run(struct cli *cli, int argc, char **argv)
{
	struct as_err err;
	struct store *st = NULL;
	struct supervisor_run r;
	char *sdir = NULL, *sock = NULL, req[CONTROL_LINE_MAX], out[64];
	int wait = 0, rc;

	if ((rc = simple_opts(argc, argv, usage_run, "run", &wait)) >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(usage_run, "run: expected NAME");
	as_err_clear(&err);
	if ((sdir = state_dir(cli, &err)) == NULL)
		return cli_error(&err);
	sock = supervisor_sock_path(sdir);
	snprintf(req, sizeof(req), "%s %s", wait ? "run-wait" : "run",
	    argv[optind]);
	if (control_request(sock, req, NULL, NULL, out, sizeof(out), -1,
	    &err) == 0) {
		log_info("run of '%s' %s by the daemon", cli_esc(argv[optind]),
		    wait ? "done" : "requested");
		rc = 0;
		goto out;
	}
	if (err.code != AS_E_NOTFOUND || (err.sys_errno != ENOENT &&
	    err.sys_errno != ECONNREFUSED)) {
		rc = cli_error(&err);
		goto out;
	}
	/* no daemon: in the foreground */
	as_err_clear(&err);
	if ((st = supervisor_open_store(sdir, &err)) == NULL ||
	    supervisor_run_now(st, sdir, argv[optind], &r, &err) == -1) {
		rc = cli_error(&err);
		goto out;
	}
	log_info("run of '%s': ok in %.3f s, %" PRIu64 " bytes",
	    cli_esc(argv[optind]), (double)r.ms / 1e3, r.bytes);
	rc = 0;
out:
	store_close(st);
	free(sock);
	free(sdir);
	return rc;
}

static int
state_verb(struct cli *cli, int argc, char **argv, const char *verb)
{
	struct as_err err;
	struct store *st;
	struct svc v;
	char *sdir = NULL;
	int64_t now = (int64_t)time(NULL) * 1000;
	int rc, lock;

	if ((rc = simple_opts(argc, argv, usage_state, verb, NULL)) >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(usage_state, "%s: expected NAME", verb);
	as_err_clear(&err);
	if ((st = open_svc(cli, argv[optind], &sdir, &v, &err)) == NULL)
		goto fail;
	if (strcmp(verb, "destroy") == 0) {
		if (v.state == SVC_RUNNING) {
			as_err_set(&err, AS_E_CONFLICT, 0, "service '%s' is "
			    "running: disable it and wait for the run to end",
			    v.name);
			goto fail;
		}
		{
			char *mp = NULL;

			if (mountdst_active(sdir, v.name, &mp, &err) == 1) {
				as_err_set(&err, AS_E_CONFLICT, 0, "the "
				    "destination of '%s' is mounted on '%s': "
				    "'autosync umount-destination %s' first",
				    v.name, mp, v.name);
				free(mp);
				goto fail;
			}
			as_err_clear(&err);
		}
		/* NAME-latest is the service's; autosync_* stay (prune) */
		if (runner_drop_latest(sdir, v.name, v.source, &err) == -1) {
			log_warn("cannot remove '%s%s': %s", v.name,
			    RUNNER_LATEST_SUFFIX, cli_esc(err.msg));
			as_err_clear(&err);
		}
		/*
		 * Hold the run lock while forgetting it, so that no run
		 * (of a daemon or a foreground `run`) is in between.
		 */
		if ((lock = supervisor_lock(sdir, v.name, &err)) == -1)
			goto fail;
		rc = store_svc_destroy(st, v.name, &err);
		if (rc == 0) {
			char *p = xasprintf("%s/run/%s.lock", sdir, v.name);

			(void)unlink(p);
			free(p);
			p = xasprintf("%s/run/%s.mnt", sdir, v.name);
			(void)unlink(p);
			free(p);
		}
		close(lock);
	} else if (strcmp(verb, "enable") == 0)
		rc = v.state != SVC_DISABLED ? 0 :
		    store_svc_set_state(st, v.name, SVC_ONLINE, now, &err);
	else if (strcmp(verb, "disable") == 0)
		rc = v.state == SVC_DISABLED ? 0 :
		    store_svc_set_state(st, v.name, SVC_DISABLED, now, &err);
	else
		rc = store_svc_clear(st, v.name, now, &err);
	if (rc == -1)
		goto fail;
	poke(sdir);
	goto out;
fail:
	rc = cli_error(&err);
out:
	svc_release(&v);
	store_close(st);
	free(sdir);
	return rc;
}

int
cmd_enable(struct cli *cli, int argc, char **argv)
{
	return state_verb(cli, argc, argv, "enable");
}

int
cmd_disable(struct cli *cli, int argc, char **argv)
{
	return state_verb(cli, argc, argv, "disable");
}

int
cmd_clear(struct cli *cli, int argc, char **argv)
{
	return state_verb(cli, argc, argv, "clear");
}

/* destroy NAME (a service) or destroy [-f] DATASET@SNAP (a snapshot). */
int
cmd_destroy_any(struct cli *cli, int argc, char **argv)
{
	int i;

	/* a path or a snapshot is never a service name */
	for (i = 1; i < argc; i++)
		if (argv[i][0] == '-' || strchr(argv[i], '@') != NULL ||
		    strchr(argv[i], '/') != NULL)
			return cmd_destroy(cli, argc, argv);
	return state_verb(cli, argc, argv, "destroy");
}

static void
print_event(void *arg, int64_t id, int64_t t, const char *msg)
{
	char buf[64];

	*(int64_t *)arg = id;
	printf("%s %s\n", tstr(t, buf, sizeof(buf)), cli_esc(msg));
}

#define LOG_FOLLOW_MS	200

int
cmd_log(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "follow",	no_argument,	NULL, 'f' },
		{ "help",	no_argument,	NULL, 'h' },
		{ NULL,		0,		NULL, 0 }
	};
	struct as_err err;
	struct store *st = NULL;
	struct svc v;
	char *sdir = NULL;
	int64_t last = 0;
	int rc, ch, follow = 0;

	while ((ch = getopt_long(argc, argv, "fh", lo, NULL)) != -1) {
		switch (ch) {
		case 'f':
			follow = 1;
			break;
		case 'h':
			return cli_help(usage_log);
		default:
			return cli_bad_option(usage_log, "log", argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(usage_log, "log: expected NAME");
	as_err_clear(&err);
	rc = 0;
	if ((st = open_store(cli, &sdir, &err)) == NULL ||
	    store_name_check(argv[optind], &err) == -1 ||
	    store_svc_get(st, argv[optind], &v, &err) == -1)
		goto fail;
	svc_release(&v);
	for (;;) {
		if (store_events(st, argv[optind], last, print_event, &last,
		    &err) == -1)
			goto fail;
		if (!follow)
			break;
		if (fflush(stdout) == EOF || ferror(stdout))
			break;	/* the reader went away */
		usleep(LOG_FOLLOW_MS * 1000);
		if (store_svc_get(st, argv[optind], &v, &err) == -1) {
			if (err.code != AS_E_NOTFOUND)
				goto fail;
			log_warn("service '%s' was destroyed",
			    cli_esc(argv[optind]));
			break;
		}
		svc_release(&v);
	}
	goto out;
fail:
	rc = cli_error(&err);
out:
	store_close(st);
	free(sdir);
	return rc;
}

/*
 * A btrfs: service whose destination is mounted (mount-destination): a
 * reverse would flip the view under the read-only bind mount, and the
 * reverse back could not delete the subvolume it replaces (busy).
 */
static int
btrfs_mounted(const char *sdir, const struct svc *v, struct as_err *err)
{
	struct endpoint se, de;
	char *mp = NULL;
	int r = 0;

	memset(&se, 0, sizeof(se));
	memset(&de, 0, sizeof(de));
	if (endpoint_parse(&se, v->source, NULL) == 0 &&
	    endpoint_parse(&de, v->dest, NULL) == 0 &&
	    reverse_is_btrfs(&se, &de) &&
	    mountdst_active(sdir, v->name, &mp, err) == 1)
		r = as_err_set(err, AS_E_CONFLICT, 0, "the destination is "
		    "mounted on '%s': umount-destination %s first", mp,
		    v->name);
	else
		as_err_clear(err);
	endpoint_release(&se);
	endpoint_release(&de);
	free(mp);
	return r;
}

/*
 * reverse for zfs:A -> zfs:B (reverse.h): check, swap the endpoints,
 * make the first run B -> A now (receive -F with --force); if it fails,
 * swap back and destroy what it snapshotted on B, so that the reverse
 * happened entirely or not at all.  Takes lock (the run lock) and
 * closes it before the run, which takes its own.
 */
static int
reverse_zfs_svc(struct store *st, const char *sdir, const struct svc *v,
    int force, int lock)
{
	struct reverse_result res;
	struct supervisor_run r;
	struct as_err err, e2;
	struct endpoint se, de;
	char *rec = NULL, *mp = NULL;
	const char *a, *b;
	int norec, rc;

	as_err_clear(&err);
	memset(&se, 0, sizeof(se));
	memset(&de, 0, sizeof(de));
	if (endpoint_parse(&se, v->source, &err) == -1 ||
	    endpoint_parse(&de, v->dest, &err) == -1)
		goto fail;
	a = se.path;
	b = de.path;
	if (store_prop_get(st, v->name, "recursive", &rec, &err) == -1)
		goto fail;
	norec = strcmp(rec, "off") == 0;
	if (mountdst_active(sdir, v->name, &mp, &err) == 1) {
		as_err_set(&err, AS_E_CONFLICT, 0, "the destination is mounted "
		    "on '%s': umount-destination %s first", mp, v->name);
		goto fail;
	}
	if (reverse_zfs(a, b, norec, force, &res, &err) == -1 ||
	    store_svc_set_endpoints(st, v->name, v->dest, v->source,
	    (int64_t)time(NULL) * 1000, &err) == -1)
		goto fail;
	close(lock);
	lock = -1;
	if (res.ndiff > 0)
		log_info("'%s' changed since '%s' (%" PRIu64 " dataset%s): "
		    "rolling it back", cli_esc(v->source), res.common,
		    res.ndiff, res.ndiff == 1 ? "" : "s");
	if (supervisor_run_flags(st, sdir, v->name, force ? SYNC_FORCE : 0,
	    &r, &err) == -1) {
		/* all or nothing: the service as it was, B as A left it */
		as_err_clear(&e2);
		if (store_svc_set_endpoints(st, v->name, v->source, v->dest,
		    (int64_t)time(NULL) * 1000, &e2) == -1 ||
		    reverse_zfs_undo(b, res.common, norec, &e2) == -1 ||
		    /* that run's failure was the reverse's, not the service's */
		    (v->state != SVC_MAINTENANCE && store_svc_clear(st,
		    v->name, (int64_t)time(NULL) * 1000, &e2) == -1))
			log_warn("undo the reverse of '%s': %s", v->name,
			    cli_esc(e2.msg));
		if (err.code == AS_E_CONFLICT && !force)
			/* zfs receive saw what the check could not */
			as_err_set(&err, AS_E_CONFLICT, 0, "'%s' changed since "
			    "'%s' (zfs receive: %s): reversing would lose "
			    "that; --force rolls it back to '%s'",
			    cli_esc(v->source), res.common,
			    strstr(err.msg, "modified since") != NULL ?
			    "modified since its newest snapshot" : err.msg,
			    res.common);
		else
			as_err_prefix(&err, "the first run after the reverse "
			    "failed, so it was undone");
		goto fail;
	}
	if (failback_zfs_open(b, !norec, &err) == -1) {
		as_err_prefix(&err, "reversed, but");
		goto fail;
	}
	log_info("reversed '%s': source '%s', destination '%s', from '%s'",
	    v->name, cli_esc(v->dest), cli_esc(v->source), res.common);
	(void)store_event(st, v->name, (int64_t)time(NULL) * 1000,
	    "reversed (zfs)", NULL);
	poke(sdir);
	rc = 0;
	goto out;
fail:
	as_err_prefix(&err, "reverse '%s'", v->name);
	rc = cli_error(&err);
out:
	if (lock >= 0)
		close(lock);
	endpoint_release(&se);
	endpoint_release(&de);
	free(rec);
	free(mp);
	return rc;
}

int
cmd_reverse(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force",	no_argument,	NULL, 'F' },
		{ "help",	no_argument,	NULL, 'h' },
		{ NULL,		0,		NULL, 0 }
	};
	struct reverse_result res;
	struct runner_props props;
	struct supervisor_run r;
	struct as_err err;
	struct store *st = NULL;
	struct svc v;
	char *sdir = NULL, *mp = NULL;
	int ch, force = 0, lock = -1, rc, have_props = 0, zk;

	while ((ch = getopt_long(argc, argv, "Fh", lo, NULL)) != -1) {
		switch (ch) {
		case 'F':
			force = 1;
			break;
		case 'h':
			return cli_help(usage_reverse);
		default:
			return cli_bad_option(usage_reverse, "reverse", argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(usage_reverse, "reverse: expected NAME");
	as_err_clear(&err);
	if ((st = open_svc(cli, argv[optind], &sdir, &v, &err)) == NULL ||
	    (lock = supervisor_lock(sdir, v.name, &err)) == -1)
		goto fail;
	if ((zk = reverse_zfs_kind(v.source, v.dest)) == 1) {
		rc = reverse_zfs_svc(st, sdir, &v, force, lock);
		lock = -1;
		goto out;
	}
	/* a zfs: replica mounted by mount-destination would become a source
	 * mounted there */
	if (zk == 2 && mountdst_active(sdir, v.name, &mp, &err) == 1) {
		as_err_set(&err, AS_E_CONFLICT, 0, "reverse '%s': the "
		    "destination is mounted on '%s': umount-destination %s "
		    "first", v.name, mp, v.name);
		goto fail;
	}
	as_err_clear(&err);
	if (btrfs_mounted(sdir, &v, &err) == -1) {
		as_err_prefix(&err, "reverse '%s'", v.name);
		goto fail;
	}
	/* a remote side: the service's transport options (key_file...) */
	if (runner_props_load(st, v.name, &props, &err) == -1)
		goto fail;
	have_props = 1;
	if ((zk == 2 ? reverse_zfs_remote(sdir, v.source, v.dest, &props.ro,
	    !props.recursive, force, &res, &err) : reverse_dir(sdir, v.source,
	    v.dest, &props.ro, force, &res, &err)) == -1 ||
	    store_svc_set_endpoints(st, v.name, v.dest,
	    v.source, (int64_t)time(NULL) * 1000, &err) == -1) {
		as_err_prefix(&err, "reverse '%s'", v.name);
		goto fail;
	}
	close(lock);
	lock = -1;
	/* the old source's NAME-latest would name a stale snapshot */
	if (runner_drop_latest(sdir, v.name, v.source, &err) == -1)
		log_warn("cannot remove '%s%s' of '%s': %s", v.name,
		    RUNNER_LATEST_SUFFIX, cli_esc(v.source), cli_esc(err.msg));
	as_err_clear(&err);
	log_info("reversed '%s': source '%s', destination '%s', from '%s'",
	    v.name, cli_esc(v.dest), cli_esc(v.source), res.common);
	if (res.ndiff > 0 && res.rolled_back)
		log_info("'%s' changed since '%s' (%" PRIu64 " difference%s): "
		    "rolled back", cli_esc(v.source), res.common, res.ndiff,
		    res.ndiff == 1 ? "" : "s");
	else if (res.ndiff > 0) {
		/* --force: roll the new destination back now */
		log_info("'%s' changed since '%s' (%" PRIu64 " differences): "
		    "rolling it back", cli_esc(v.source), res.common,
		    res.ndiff);
		if (supervisor_run_flags(st, sdir, v.name, SYNC_FORCE, &r,
		    &err) == -1)
			goto fail;
	}
	poke(sdir);
	rc = 0;
	goto out;
fail:
	rc = cli_error(&err);
out:
	if (have_props)
		runner_props_release(&props);
	if (lock >= 0)
		close(lock);
	svc_release(&v);
	store_close(st);
	free(sdir);
	free(mp);
	return rc;
}

static int
mount_verb(struct cli *cli, int argc, char **argv, int mount)
{
	struct as_err err;
	struct store *st = NULL;
	struct svc v;
	char *sdir = NULL, *where = NULL;
	const char *cmd = mount ? "mount-destination" : "umount-destination";
	int rc;

	if ((rc = simple_opts(argc, argv, usage_mount, cmd, NULL)) >= 0)
		return rc;
	if (argc - optind < 1 || argc - optind > 2)
		return cli_usage_error(usage_mount, "%s: expected NAME [PATH]",
		    cmd);
	as_err_clear(&err);
	if ((st = open_svc(cli, argv[optind], &sdir, &v, &err)) == NULL)
		goto fail;
	if (mount)
		rc = mountdst_mount(sdir, v.name, v.dest, argc - optind == 2 ?
		    argv[optind + 1] : NULL, &where, &err);
	else
		rc = mountdst_umount(sdir, v.name, argc - optind == 2 ?
		    argv[optind + 1] : NULL, &where, &err);
	if (rc == -1)
		goto fail;
	if (mount)
		printf("%s\n", cli_esc(where));
	(void)store_event(st, v.name, (int64_t)time(NULL) * 1000, mount ?
	    "destination mounted read-only" : "destination unmounted", NULL);
	rc = 0;
	goto out;
fail:
	rc = cli_error(&err);
out:
	free(where);
	svc_release(&v);
	store_close(st);
	free(sdir);
	return rc;
}

int
cmd_mount_destination(struct cli *cli, int argc, char **argv)
{
	return mount_verb(cli, argc, argv, 1);
}

int
cmd_umount_destination(struct cli *cli, int argc, char **argv)
{
	return mount_verb(cli, argc, argv, 0);
}

static void
daemon_note(const char *msg)
{
	log_info("%s", cli_esc(msg));
}

int
cmd_daemon(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "metrics",	required_argument,	NULL, 'm' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	struct as_err err;
	const char *metrics = NULL;
	char *sdir;
	int rc, ch;

	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 'm':
			metrics = optarg;
			break;
		case 'h':
			return cli_help(usage_daemon);
		default:
			return cli_bad_option(usage_daemon, "daemon", argv);
		}
	}
	if (argc - optind != 0)
		return cli_usage_error(usage_daemon, "daemon: no arguments");
	as_err_clear(&err);
	if ((sdir = state_dir(cli, &err)) == NULL)
		return cli_error(&err);
	rc = supervisor_daemon_metrics(sdir, metrics, daemon_note, &err) ==
	    -1 ? cli_error(&err) : 0;
	free(sdir);
	return rc;
}

int
cmd_metrics(struct cli *cli, int argc, char **argv)
{
	struct buf b = BUF_INIT;
	struct as_err err;
	struct store *st;
	char *sdir = NULL;
	int rc;

	if ((rc = simple_opts(argc, argv, usage_metrics, "metrics",
	    NULL)) >= 0)
		return rc;
	if (argc - optind != 0)
		return cli_usage_error(usage_metrics, "metrics: no arguments");
	as_err_clear(&err);
	rc = 0;
	if ((st = open_store(cli, &sdir, &err)) == NULL ||
	    metrics_write(st, &b, &err) == -1)
		rc = cli_error(&err);
	else
		fwrite(b.data, 1, b.len, stdout);
	buf_release(&b);
	store_close(st);
	free(sdir);
	return rc;
}
