/* cmd_snapshot.c - snapshot, snapshots, destroy. */
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "cli/cli.h"
#include "driver/dir.h"
#include "driver/vol.h"
#include "format/catalog.h"
#include "format/stream.h"
#include "repl/snapstore.h"
#include "base/banned.h"

static const char usage_snapshot[] =
"usage: autosync snapshot [-v] [-N] [-b SIZE] DATASET@NAME\n"
"\n"
"Record a snapshot of the directory tree DATASET: a catalog of every\n"
"entry, its metadata and block hashes, kept in the state directory.\n"
"Unchanged files (same inode, size, mtime and ctime as in the newest\n"
"snapshot) are not read again.  DATASET may be vol:PATH, a block device\n"
"or an image file: its size and a hash per block (the whole volume is\n"
"read; an image file on btrfs or xfs is cloned first, so the snapshot\n"
"is point-in-time).\n"
"\n"
"  -b, --block-size SIZE  hash block size for the first snapshot\n"
"                         (4096..16777216, a power of two; default 65536)\n"
"  -N, --no-recursive     leave out file systems mounted below DATASET\n"
"                         (their mount points are recorded empty)\n"
"  -v, --verbose          print what was recorded\n";

static const char usage_snapshots[] =
"usage: autosync snapshots [--json | -H] [DATASET...]\n"
"\n"
"List snapshots, oldest first: name, GUID, creation time (UTC), entries\n"
"and bytes of regular files.  Without DATASET, list every dataset that\n"
"has snapshots in the state directory.\n"
"\n"
"  --json    one JSON array of objects\n"
"  -H        no header, fields separated by one tab (for scripts)\n";

static const char usage_destroy[] =
"usage: autosync destroy [-f] [-v] DATASET@NAME\n"
"\n"
"Delete a snapshot's catalog.  A snapshot that a destination holds\n"
"(the base of its next incremental sync) is kept unless -f is given.\n"
"\n"
"  -f, --force    destroy it even if a destination holds it\n";

static int
parse_size(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return -1;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end != '\0' || v < AS_BLOCK_MIN || v > AS_BLOCK_MAX ||
	    (v & (v - 1)) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* "vol:PATH" -> "PATH" in place; 1 when it was a volume. */
static int
strip_vol(char *ds)
{
	if (strncmp(ds, "vol:", 4) != 0 || ds[4] == '\0')
		return 0;
	memmove(ds, ds + 4, strlen(ds + 4) + 1);
	return 1;
}

/*
 * snapshot vol:PATH@name: hash the volume.  Its block size is the newest
 * snapshot's (so that an incremental send from it works), else -b's.
 */
static int
snapshot_vol(struct cli *cli, const char *path, const char *name,
    uint32_t bs, int bs_given)
{
	struct as_err err;
	struct snapstore ss;
	struct snap_list l;
	struct catalog c;
	struct vol_stats st;
	struct timespec ts;
	char *state = NULL, g[17], b[32];
	uint64_t size;
	int rc = 0, ex, is_blk;

	memset(&ss, 0, sizeof(ss));
	ss.lock_fd = -1;
	memset(&st, 0, sizeof(st));
	catalog_init(&c);
	as_err_clear(&err);
	if (vol_probe(path, &size, &is_blk, &err) == -1 ||
	    (state = snapstore_state_dir(cli->state_dir, &err)) == NULL ||
	    snapstore_open(&ss, state, path, 1, &err) == -1 ||
	    snapstore_lock(&ss, &err) == -1)
		goto fail;
	if ((ex = snapstore_exists(&ss, name, &err)) == -1)
		goto fail;
	if (ex == 1) {
		as_err_set(&err, AS_E_CONFLICT, EEXIST,
		    "snapshot 'vol:%s@%s' already exists", path, name);
		goto fail;
	}
	if (snapstore_list(&ss, 0, &l, &err) == -1)
		goto fail;
	if (l.n > 0) {
		if (bs_given && bs != l.v[l.n - 1].block_size)
			log_warn("'vol:%s' has %u-byte block snapshots: -b %u "
			    "ignored", cli_esc(path), l.v[l.n - 1].block_size,
			    bs);
		bs = l.v[l.n - 1].block_size;
	}
	snap_list_release(&l);
	clock_gettime(CLOCK_REALTIME, &ts);
	if (vol_scan(ss.dataset, bs, &c, &st, &err) == -1) {
		as_err_prefix(&err, "snapshot 'vol:%s'", path);
		goto fail;
	}
	c.hdr.guid = snap_guid_new();
	c.hdr.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	snprintf(c.hdr.name, sizeof(c.hdr.name), "%s", name);
	if (snapstore_save(&ss, &c, 0, &err) == -1)
		goto fail;
	if (st.changed)
		log_warn("'vol:%s' was written while it was read: snapshot "
		    "'%s' is not point-in-time (freeze it first: fsfreeze, "
		    "an LVM snapshot, or an image on btrfs or xfs)",
		    cli_esc(path), name);
	if (cli->verbose)
		fprintf(stderr, "created 'vol:%s@%s' (guid %s): %" PRIu64
		    " blocks of %u bytes, %s read%s\n", cli_esc(path), name,
		    cli_guid(c.hdr.guid, g), st.blocks, bs,
		    cli_bytes(st.bytes_read, b, sizeof(b)), st.cloned ?
		    ", from a reflink copy (point-in-time)" : "");
	goto out;
fail:
	rc = cli_error(&err);
out:
	catalog_release(&c);
	snapstore_release(&ss);
	free(state);
	return rc;
}

int
cmd_snapshot(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "block-size",	required_argument,	NULL, 'b' },
		{ "no-recursive", no_argument,		NULL, 'N' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	struct as_err err;
	struct snapstore ss;
	struct snap_list l;
	struct catalog base, c;
	struct dir_stats st;
	struct timespec ts;
	struct stat sb;
	char *state = NULL, *ds = NULL, *name = NULL, g[17], b[32];
	uint32_t bs = AS_BLOCK_DEFAULT;
	int ch, rc = 0, have_base = 0, ex, bs_given = 0;
	int sflags = DIR_SCAN_XDEV;

	while ((ch = getopt_long(argc, argv, "b:Nvh", lo, NULL)) != -1) {
		switch (ch) {
		case 'N':
			sflags = 0;
			break;
		case 'b':
			if (parse_size(optarg, &bs) == -1)
				return cli_usage_error(usage_snapshot,
				    "snapshot: bad block size '%s'", optarg);
			bs_given = 1;
			break;
		case 'v':
			cli->verbose++;
			break;
		case 'h':
			return cli_help(usage_snapshot);
		default:
			return cli_bad_option(usage_snapshot, "snapshot", argv);
		}
	}
	cli_apply_verbosity(cli);
	if (argc - optind != 1)
		return cli_usage_error(usage_snapshot,
		    "snapshot: expected one DATASET@NAME");
	memset(&ss, 0, sizeof(ss));
	ss.lock_fd = -1;
	memset(&st, 0, sizeof(st));
	catalog_init(&base);
	catalog_init(&c);
	as_err_clear(&err);
	if (cli_split_snap(argv[optind], 1, &ds, &name, &err) == -1 ||
	    snap_name_check(name, &err) == -1)
		goto fail;
	if (strip_vol(ds)) {
		rc = snapshot_vol(cli, ds, name, bs, bs_given);
		goto out;
	}
	if (stat(ds, &sb) == -1) {
		as_err_sys(&err, errno, "snapshot '%s'", ds);
		goto fail;
	}
	if (!S_ISDIR(sb.st_mode)) {
		as_err_set(&err, AS_E_USAGE, ENOTDIR,
		    "snapshot '%s': not a directory", ds);
		goto fail;
	}
	if ((state = snapstore_state_dir(cli->state_dir, &err)) == NULL ||
	    snapstore_open(&ss, state, ds, 1, &err) == -1 ||
	    snapstore_lock(&ss, &err) == -1)
		goto fail;
	if ((ex = snapstore_exists(&ss, name, &err)) == -1)
		goto fail;
	if (ex == 1) {
		as_err_set(&err, AS_E_CONFLICT, EEXIST,
		    "snapshot '%s@%s' already exists", ds, name);
		goto fail;
	}
	/* the newest snapshot spares reading unchanged files */
	if (snapstore_list(&ss, 0, &l, &err) == -1)
		goto fail;
	if (l.n > 0) {
		if (snapstore_load(&ss, l.v[l.n - 1].name, &base, &err) == -1) {
			snap_list_release(&l);
			goto fail;
		}
		have_base = 1;
		bs = base.hdr.block_size;
	}
	snap_list_release(&l);
	clock_gettime(CLOCK_REALTIME, &ts);
	if (dir_scan(ss.dataset, have_base ? &base : NULL, bs, sflags, &c,
	    &st, &err) == -1) {
		as_err_prefix(&err, "snapshot '%s'", ds);
		goto fail;
	}
	c.hdr.guid = snap_guid_new();
	c.hdr.base_guid = have_base ? base.hdr.guid : 0;
	c.hdr.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (c.hdr.kind == 0)
		c.hdr.kind = AS_KIND_DIR;
	if (c.hdr.source == NULL)
		c.hdr.source = xstrdup(ss.dataset);
	snprintf(c.hdr.name, sizeof(c.hdr.name), "%s", name);
	if (snapstore_save(&ss, &c, 0, &err) == -1)
		goto fail;
	if (st.notpit > 0)
		log_warn("%" PRIu64 " files kept changing while read; "
		    "'%s@%s' is not point-in-time for them", st.notpit,
		    cli_esc(ds), name);
	if (cli->verbose)
		fprintf(stderr, "created '%s@%s' (guid %s): %zu entries, "
		    "%" PRIu64 " files read, %s read\n", cli_esc(ds), name,
		    cli_guid(c.hdr.guid, g), c.n, st.files_read,
		    cli_bytes(st.bytes_read, b, sizeof(b)));
	goto out;
fail:
	rc = cli_error(&err);
out:
	catalog_release(&base);
	catalog_release(&c);
	snapstore_release(&ss);
	free(state);
	free(ds);
	free(name);
	return rc;
}

static void
list_one(const char *ds, const struct snap_list *l, int json, int scripted,
    int show_ds, int *first)
{
	char g[17], bg[17], t[40];
	const struct snap_info *s;
	size_t i;

	for (i = 0; i < l->n; i++) {
		s = &l->v[i];
		if (json) {
			fputs(*first ? "\n  {" : ",\n  {", stdout);
			fputs("\"dataset\": ", stdout);
			cli_json_str(stdout, ds);
			fputs(", \"name\": ", stdout);
			cli_json_str(stdout, s->name);
			printf(", \"guid\": \"%s\", \"base_guid\": \"%s\", "
			    "\"time\": \"%s\", \"time_ns\": %" PRId64 ", "
			    "\"entries\": %" PRIu64 ", \"bytes\": %" PRIu64
			    ", \"not_point_in_time\": %" PRIu64 "}",
			    cli_guid(s->guid, g), cli_guid(s->base_guid, bg),
			    cli_time(s->time_ns, 1, t, sizeof(t)), s->time_ns,
			    s->entries, s->bytes, s->notpit);
		} else if (scripted) {
			printf("%s%s%s\t%s\t%" PRId64 "\t%" PRIu64 "\t%"
			    PRIu64 "\n", show_ds ? cli_esc(ds) : "",
			    show_ds ? "@" : "", s->name, cli_guid(s->guid, g),
			    s->time_ns, s->entries, s->bytes);
		} else {
			char b[32], nm[4096 * 4 + 300];

			snprintf(nm, sizeof(nm), "%s%s%s", show_ds ?
			    cli_esc(ds) : "", show_ds ? "@" : "", s->name);
			printf("%-32s  %s  %s  %9" PRIu64 "  %10s\n", nm,
			    cli_guid(s->guid, g), cli_time(s->time_ns, 0, t,
			    sizeof(t)), s->entries, cli_bytes(s->bytes, b,
			    sizeof(b)));
		}
		*first = 0;
	}
}

int
cmd_snapshots(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json",	no_argument,		NULL, 'j' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	struct as_err err;
	struct snapstore ss;
	struct snap_list l;
	char *state = NULL, **dss = NULL;
	size_t nds = 0, i;
	int ch, json = 0, scripted = 0, first = 1, rc = 0, show_ds;

	while ((ch = getopt_long(argc, argv, "Hh", lo, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 'H':
			scripted = 1;
			break;
		case 'h':
			return cli_help(usage_snapshots);
		default:
			return cli_bad_option(usage_snapshots, "snapshots",
			    argv);
		}
	}
	as_err_clear(&err);
	if ((state = snapstore_state_dir(cli->state_dir, &err)) == NULL)
		return cli_error(&err);
	show_ds = argc - optind != 1;
	if (optind == argc) {
		if (snapstore_datasets(state, &dss, &nds, &err) == -1) {
			free(state);
			return cli_error(&err);
		}
	} else {
		nds = (size_t)(argc - optind);
		dss = xcalloc(nds, sizeof(*dss));
		for (i = 0; i < nds; i++) {
			dss[i] = xstrdup(argv[optind + (int)i]);
			(void)strip_vol(dss[i]);
		}
	}
	if (json)
		fputs("[", stdout);
	else if (!scripted)
		printf("%-32s  %-16s  %-19s  %9s  %10s\n", "NAME", "GUID",
		    "CREATED (UTC)", "ENTRIES", "BYTES");
	for (i = 0; i < nds; i++) {
		if (snapstore_open(&ss, state, dss[i], 0, &err) == -1 ||
		    snapstore_list(&ss, SNAP_LIST_SIZES, &l, &err) == -1) {
			snapstore_release(&ss);
			rc = cli_error(&err);
			break;
		}
		list_one(ss.dataset, &l, json, scripted, show_ds, &first);
		snap_list_release(&l);
		snapstore_release(&ss);
	}
	if (json)
		fputs(first ? "]\n" : "\n]\n", stdout);
	for (i = 0; i < nds; i++)
		free(dss[i]);
	free(dss);
	free(state);
	return rc;
}

int
cmd_destroy(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force",	no_argument,		NULL, 'f' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	struct as_err err;
	struct snapstore ss;
	struct snap_list l;
	struct snap_dest *recs = NULL;
	const struct snap_info *si;
	struct stat sb;
	char *state = NULL, *ds = NULL, *name = NULL;
	size_t nrecs = 0, i;
	int ch, force = 0, rc = 0;

	while ((ch = getopt_long(argc, argv, "fvh", lo, NULL)) != -1) {
		switch (ch) {
		case 'f':
			force = 1;
			break;
		case 'v':
			cli->verbose++;
			break;
		case 'h':
			return cli_help(usage_destroy);
		default:
			return cli_bad_option(usage_destroy, "destroy", argv);
		}
	}
	cli_apply_verbosity(cli);
	if (argc - optind != 1)
		return cli_usage_error(usage_destroy,
		    "destroy: expected one DATASET@NAME");
	memset(&ss, 0, sizeof(ss));
	ss.lock_fd = -1;
	memset(&l, 0, sizeof(l));
	as_err_clear(&err);
	if (cli_split_snap(argv[optind], 1, &ds, &name, &err) == -1)
		goto fail;
	(void)strip_vol(ds);
	if (snap_name_check(name, &err) == -1 ||
	    (state = snapstore_state_dir(cli->state_dir, &err)) == NULL ||
	    snapstore_open(&ss, state, ds, 0, &err) == -1 ||
	    snapstore_list(&ss, 0, &l, &err) == -1)
		goto fail;
	if ((si = snap_list_by_name(&l, name)) == NULL) {
		as_err_set(&err, AS_E_NOTFOUND, ENOENT, "destroy: no snapshot "
		    "'%s@%s'", ds, name);
		goto fail;
	}
	if (snapstore_lock(&ss, &err) == -1 ||
	    snapstore_dest_list(&ss, &recs, &nrecs, &err) == -1)
		goto fail;
	for (i = 0; i < nrecs && !force; i++) {
		if (recs[i].held_guid != si->guid ||
		    (recs[i].path != NULL && lstat(recs[i].path, &sb) == -1))
			continue;
		as_err_set(&err, AS_E_CONFLICT, 0, "destroy '%s@%s': '%s' "
		    "holds it as the base of its next sync; use -f to "
		    "destroy it anyway", ds, name, recs[i].path);
		goto fail;
	}
	if (snapstore_destroy(&ss, name, &err) == -1)
		goto fail;
	if (cli->verbose)
		fprintf(stderr, "destroyed '%s@%s'\n", cli_esc(ds), name);
	goto out;
fail:
	rc = cli_error(&err);
out:
	snap_dest_free_list(recs, nrecs);
	snap_list_release(&l);
	snapstore_release(&ss);
	free(state);
	free(ds);
	free(name);
	return rc;
}
