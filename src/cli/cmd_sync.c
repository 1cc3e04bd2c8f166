/* cmd_sync.c - sync, verify, recover. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "cli/cli.h"
#include "driver/dir.h"
#include "format/catalog.h"
#include "repl/remote.h"
#include "repl/snapstore.h"
#include "repl/sync.h"
#include "driver/vol.h"
#include "repl/verify.h"
#include "base/banned.h"

static const char usage_sync[] =
"usage: autosync sync [-v] [-F] [-N] [--no-prune] [--safe] [transport options]\n"
"                     SRC DST\n"
"\n"
"Replicate the directory tree SRC to DST in one step: take a snapshot\n"
"of SRC (named autosync_YYYY-MM-DD_HH:MM:SS, UTC), send what changed\n"
"since the newest snapshot that DST holds (everything the first time)\n"
"and apply it to DST, crash-safe.  Then destroy sync's older snapshots\n"
"(names starting with autosync_) that no destination holds, like\n"
"syncoid; snapshots you made with 'autosync snapshot' are kept.\n"
"\n"
"  -F, --force      if DST holds no snapshot that SRC has, or was\n"
"                   modified since it was received, resend in full and\n"
"                   roll DST back (changes made in DST are lost)\n"
"  -N, --no-recursive  replicate only SRC itself: no ZFS child datasets,\n"
"                   no nested btrfs subvolumes; for a directory, no file\n"
"                   systems mounted below it (mount points stay empty)\n"
"  --no-prune       keep sync's older snapshots\n"
"  --safe           DST is a directory receiving from a source not\n"
"                   trusted with privileged objects: device nodes are\n"
"                   refused, setuid/setgid bits cleared, only user.*\n"
"                   xattrs kept\n"
"  --trust HOST     a btrfs pull receives streams from HOST (the URL's host,\n"
"                   as written): btrfs receive does not validate a stream,\n"
"                   so a pull from a server not named here is refused\n"
"  -v, --verbose    print a summary: full or incremental, entries, bytes,\n"
"                   renames, deletes, time and rate\n"
"\n"
"One of SRC and DST may be remote: a push (remote DST) or a pull (remote\n"
"SRC, whose snapshots the server keeps).\n"
CLI_REMOTE_USAGE;

static const char usage_verify[] =
"usage: autosync verify [-v] SRC[@SNAP] DST\n"
"       autosync verify [-v] vol:SRC[@SNAP] vol:DST\n"
"\n"
"Compare the tree DST with snapshot SNAP of SRC (default: the newest)\n"
"by reading every file in DST.  Prints one line per difference,\n"
"\"<kind> 'path'\", kind one of: missing extra type content target mode\n"
"owner mtime xattr link.  Exits 0 when DST is identical, 1 otherwise.\n"
"To name a SRC whose path contains '@' without a snapshot, end it with\n"
"a lone '@': /data/a@b@ is the directory /data/a@b.\n"
"\n"
"With vol:, every block of the volume DST is read and compared with\n"
"SNAP of the volume SRC (default: the snapshot DST holds, else the\n"
"newest): \"content block N (LEN bytes)\" per block, \"size\" when the\n"
"sizes differ.\n"
"\n"
"  -v, --verbose    also say so when DST is identical\n";

static const char usage_recover[] =
"usage: autosync recover [-v] DEST\n"
"\n"
"Bring DEST to a consistent snapshot after an interrupted receive: roll\n"
"a committed receive forward, or discard an uncommitted one.  'receive'\n"
"and 'sync' do this by themselves first.\n";

static double
secs(int64_t ns)
{
	return (double)ns / 1e9;
}

/*
 * The options of a command that has only -v and -h (verify, recover):
 * -1 to go on with the operands from optind, or the exit status (the
 * help printed, or a bad option named), like simple_opts() of service.
 */
static int
opts_v_only(struct cli *cli, int argc, char **argv, const char *usage,
    const char *cmd)
{
	static const struct option lo[] = {
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (ch) {
		case 'v':
			cli->verbose++;
			break;
		case 'h':
			return cli_help(usage);
		default:
			return cli_bad_option(usage, cmd, argv);
		}
	}
	cli_apply_verbosity(cli);
	return -1;
}

int
cmd_sync(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force",	no_argument,		NULL, 'F' },
		{ "no-recursive", no_argument,		NULL, 'N' },
		{ "no-prune",	no_argument,		NULL, 'P' },
		{ "safe",	no_argument,		NULL, 'S' },
		{ "trust",	required_argument,	NULL, 'T' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		CLI_REMOTE_LONGOPTS,
		{ NULL,		0,			NULL, 0 }
	};
	struct as_err err;
	struct sync_opts o;
	struct sync_result r;
	struct remote_opts ro;
	char g[17], bg[17], b1[32], b2[32], b3[32], rate[32];
	double t;
	int ch;

	memset(&o, 0, sizeof(o));
	cli_remote_init(&ro);
	as_err_clear(&err);
	while ((ch = getopt_long(argc, argv, "FNvh", lo, NULL)) != -1) {
		switch (ch) {
		case CLI_OPT_KEY:
		case CLI_OPT_CERT:
		case CLI_OPT_CA:
		case CLI_OPT_COMPRESS:
		case CLI_OPT_RATE:
		case CLI_OPT_PROGRESS:
		case CLI_OPT_TIMEOUT:
			if (cli_remote_opt(ch, optarg, &ro, &err) == -1)
				return cli_usage_error(usage_sync, "sync: %s",
				    err.msg);
			break;
		case 'F':
			o.flags |= SYNC_FORCE;
			break;
		case 'N':
			o.flags |= SYNC_NO_RECURSE;
			break;
		case 'P':
			o.flags |= SYNC_NO_PRUNE;
			break;
		case 'S':
			o.flags |= SYNC_SAFE;
			break;
		case 'T':
			o.trust = optarg;
			break;
		case 'v':
			cli->verbose++;
			break;
		case 'h':
			return cli_help(usage_sync);
		default:
			return cli_bad_option(usage_sync, "sync", argv);
		}
	}
	cli_apply_verbosity(cli);
	if (argc - optind != 2)
		return cli_usage_error(usage_sync,
		    "sync: expected SRC and DST");
	/* the safe policy judges the entries of a directory stream */
	if ((o.flags & SYNC_SAFE) && (strstr(argv[optind + 1], "://") !=
	    NULL || strncmp(argv[optind + 1], "zfs:", 4) == 0 ||
	    strncmp(argv[optind + 1], "btrfs:", 6) == 0 ||
	    strncmp(argv[optind + 1], "vol:", 4) == 0))
		return cli_usage_error(usage_sync, "sync: --safe is for a "
		    "local directory DST (a server applies its serve.conf "
		    "'safe' grant; zfs, btrfs and volume streams are not "
		    "made of entries it can judge)");
	o.state_dir = cli->state_dir;
	o.remote = &ro;
	as_err_clear(&err);
	if (sync_run(argv[optind], argv[optind + 1], &o, &r, &err) == -1) {
		if (r.recovered)
			log_info("recovered an interrupted receive in '%s'",
			    cli_esc(argv[optind + 1]));
		return cli_error(&err);
	}
	if (r.recovered)
		log_info("recovered an interrupted receive in '%s'",
		    cli_esc(argv[optind + 1]));
	if (r.retried_full)
		log_info("the destination's content changed since it was "
		    "received: resent in full");
	if (r.adopted)
		log_info("adopted the snapshot of an interrupted sync");
	if (r.replaced)
		log_info("the destination was modified since it was "
		    "published: replaced (-F)");
	if (r.resume_msg[0] != '\0')
		log_info("%s", r.resume_msg);
	if (r.scan.notpit > 0 && strncmp(argv[optind], "vol:", 4) == 0)
		log_warn("'%s' was written while it was read: snapshot '%s' "
		    "is not point-in-time (freeze it first: fsfreeze, an LVM "
		    "snapshot, or an image on btrfs or xfs)",
		    cli_esc(argv[optind]), r.name);
	else if (r.scan.notpit > 0 || r.send.notpit > 0)
		log_warn("%" PRIu64 " files kept changing while read; "
		    "snapshot '%s' is not point-in-time for them",
		    r.scan.notpit > r.send.notpit ? r.scan.notpit :
		    r.send.notpit, r.name);
	if (!cli->verbose)
		return 0;
	t = secs(r.total_ns);
	cli_bytes(t > 0 ? (uint64_t)((double)r.send.stream_bytes / t) : 0,
	    rate, sizeof(rate));
	printf("sync '%s' -> '%s': %s", cli_esc(argv[optind]),
	    cli_esc(argv[optind + 1]), r.full ? "full" : "incremental");
	if (!r.full)
		printf(" from %s (%s)", r.base_name, cli_guid(r.base_guid, bg));
	printf(" to %s (%s)\n", r.name, cli_guid(r.guid, g));
	if (r.zfs_datasets > 0) {
		printf("  %u dataset%s (%u full), %s of zfs streams\n",
		    r.zfs_datasets, r.zfs_datasets == 1 ? "" : "s", r.zfs_full,
		    cli_bytes(r.send.stream_bytes, b3, sizeof(b3)));
		goto tail;
	}
	if (r.subvols > 0) {
		/* btrfs: native streams, no scan */
		printf("  sent %u subvolume%s, %s of btrfs send streams in "
		    "%.2f s\n", r.subvols, r.subvols == 1 ? "" : "s",
		    cli_bytes(r.send.stream_bytes, b2, sizeof(b2)),
		    secs(r.xfer_ns));
		goto tail;
	}
	if (r.remote != 2)
		printf("  scanned %" PRIu64 " entries in %.2f s, %" PRIu64
		    " files read (%s)\n", r.scan.entries, secs(r.scan_ns),
		    r.scan.files_read, cli_bytes(r.scan.bytes_read, b1,
		    sizeof(b1)));
	printf("  sent %" PRIu64 " entries, %s of data, %s stream, %" PRIu64
	    " renames, %" PRIu64 " deletes\n", r.send.entries_sent,
	    cli_bytes(r.send.data_bytes, b2, sizeof(b2)),
	    cli_bytes(r.send.stream_bytes, b3, sizeof(b3)), r.send.renames,
	    r.send.deletes);
	if (r.cloned)
		printf("  read from a reflink copy (point-in-time)\n");
	if (r.resumed_pos != 0) {
		printf("  resumed an interrupted transfer at entry %" PRIu64
		    ", block %" PRIu64, DIR_POS_ENTRY(r.resumed_pos),
		    DIR_POS_BLOCK(r.resumed_pos));
		if (r.resumed)
			printf(" (%s of the stream were there)", cli_bytes(
			    r.resumed, b1, sizeof(b1)));
		printf("\n");
	} else if (r.resumed)
		printf("  resumed an interrupted transfer at %s\n",
		    cli_bytes(r.resumed, b1, sizeof(b1)));
	if (r.remote != 0)
		printf("  %s on the wire\n", cli_bytes(r.wire_bytes, b1,
		    sizeof(b1)));
tail:
	printf("  time %.2f s, %s/s", t, rate);
	if (r.pruned > 0)
		printf(", pruned %u older snapshot%s", r.pruned,
		    r.pruned == 1 ? "" : "s");
	printf("\n");
	return 0;
}

struct verify_out {
	uint64_t n;
};

static void
print_diff(void *arg, const char *kind, const char *path)
{
	struct verify_out *vo = arg;

	vo->n++;
	printf("%s '%s'\n", kind, path[0] == '\0' ? "." : cli_esc(path));
}

static void
print_block(void *arg, uint64_t block, uint64_t len)
{
	struct verify_out *vo = arg;

	vo->n++;
	printf("content block %" PRIu64 " (%" PRIu64 " bytes)\n", block,
	    len);
}

/*
 * verify vol:SRC[@SNAP] vol:DST: compare DST's blocks with a snapshot of
 * SRC: SNAP, else the one DST holds, else SRC's newest.
 */
static int
verify_vol(struct cli *cli, const char *ds, const char *name,
    const char *dst)
{
	struct as_err err;
	struct snapstore ss;
	struct snap_list l;
	const struct snap_info *si;
	struct catalog c;
	struct verify_out vo;
	struct vol_stats st;
	char *state = NULL, *snap = NULL, held_name[256];
	uint64_t ndiff = 0, held = 0;
	int rc = 0, sized;

	memset(&ss, 0, sizeof(ss));
	ss.lock_fd = -1;
	memset(&vo, 0, sizeof(vo));
	memset(&st, 0, sizeof(st));
	memset(&l, 0, sizeof(l));
	catalog_init(&c);
	as_err_clear(&err);
	if ((state = snapstore_state_dir(cli->state_dir, &err)) == NULL ||
	    snapstore_open(&ss, state, ds, 0, &err) == -1 ||
	    snapstore_list(&ss, 0, &l, &err) == -1)
		goto fail;
	if (name != NULL)
		snap = xstrdup(name);
	else {
		if (vol_recover(dst, state, &err) == -1 ||
		    vol_held(dst, state, &held, held_name, &err) == -1)
			goto fail;
		if (held != 0 && (si = snap_list_by_guid(&l, held)) != NULL)
			snap = xstrdup(si->name);
		else if (l.n > 0)
			snap = xstrdup(l.v[l.n - 1].name);
		else {
			as_err_set(&err, AS_E_NOTFOUND, 0, "verify: 'vol:%s' "
			    "has no snapshots", ds);
			goto fail;
		}
	}
	if (snapstore_load(&ss, snap, &c, &err) == -1)
		goto fail;
	if (vol_verify(&c, dst, print_block, &vo, &ndiff, &sized, &st,
	    &err) == -1) {
		as_err_prefix(&err, "verify 'vol:%s'", dst);
		goto fail;
	}
	if (sized) {
		printf("size '%s'\n", cli_esc(dst));
		ndiff++;
	}
	if (ndiff > 0) {
		log_error("verify 'vol:%s': %" PRIu64 " difference%s from "
		    "'vol:%s@%s'", cli_esc(dst), ndiff, ndiff == 1 ? "" : "s",
		    cli_esc(ds), snap);
		rc = 1;
	} else if (cli->verbose)
		printf("'vol:%s' matches 'vol:%s@%s' (%" PRIu64 " blocks)\n",
		    cli_esc(dst), cli_esc(ds), snap, st.blocks != 0 ?
		    st.blocks : (c.ents[0].size + c.hdr.block_size - 1) /
		    c.hdr.block_size);
	goto out;
fail:
	rc = cli_error(&err);
out:
	catalog_release(&c);
	snap_list_release(&l);
	snapstore_release(&ss);
	free(state);
	free(snap);
	return rc;
}

int
cmd_verify(struct cli *cli, int argc, char **argv)
{
	struct as_err err;
	struct snapstore ss;
	struct snap_list l;
	struct catalog c;
	struct verify_out vo;
	char *state = NULL, *ds = NULL, *name = NULL;
	const char *dst;
	uint64_t ndiff = 0;
	int ex, rc = 0;

	if ((ex = opts_v_only(cli, argc, argv, usage_verify, "verify")) >= 0)
		return ex;
	if (argc - optind != 2)
		return cli_usage_error(usage_verify,
		    "verify: expected SRC[@SNAP] and DST");
	dst = argv[optind + 1];
	memset(&ss, 0, sizeof(ss));
	ss.lock_fd = -1;
	memset(&vo, 0, sizeof(vo));
	catalog_init(&c);
	as_err_clear(&err);
	if (cli_split_snap(argv[optind], 0, &ds, &name, &err) == -1)
		goto fail;
	if ((strncmp(ds, "vol:", 4) == 0) != (strncmp(dst, "vol:", 4) == 0)) {
		as_err_set(&err, AS_E_USAGE, 0, "verify: a volume is verified "
		    "against a volume: name both vol:PATH");
		goto fail;
	}
	if (strncmp(ds, "vol:", 4) == 0) {
		rc = verify_vol(cli, ds + 4, name, dst + 4);
		goto out;
	}
	if ((state = snapstore_state_dir(cli->state_dir, &err)) == NULL ||
	    snapstore_open(&ss, state, ds, 0, &err) == -1)
		goto fail;
	if (name == NULL) {
		if (snapstore_list(&ss, 0, &l, &err) == -1)
			goto fail;
		if (l.n == 0) {
			snap_list_release(&l);
			as_err_set(&err, AS_E_NOTFOUND, 0, "verify: '%s' has "
			    "no snapshots", ds);
			goto fail;
		}
		name = xstrdup(l.v[l.n - 1].name);
		snap_list_release(&l);
	}
	if (snapstore_load(&ss, name, &c, &err) == -1)
		goto fail;
	if (verify_tree(&c, dst, print_diff, &vo, &ndiff, NULL, &err) == -1) {
		as_err_prefix(&err, "verify");
		goto fail;
	}
	if (ndiff > 0) {
		log_error("verify '%s': %" PRIu64 " difference%s from "
		    "'%s@%s'", cli_esc(dst), ndiff, ndiff == 1 ? "" : "s",
		    cli_esc(ds), name);
		rc = 1;
	} else if (cli->verbose)
		printf("'%s' matches '%s@%s' (%zu entries)\n", cli_esc(dst),
		    cli_esc(ds), name, c.n);
	goto out;
fail:
	rc = cli_error(&err);
out:
	catalog_release(&c);
	snapstore_release(&ss);
	free(state);
	free(ds);
	free(name);
	return rc;
}

int
cmd_recover(struct cli *cli, int argc, char **argv)
{
	struct as_err err;
	int r;

	if ((r = opts_v_only(cli, argc, argv, usage_recover, "recover")) >= 0)
		return r;
	if (argc - optind != 1)
		return cli_usage_error(usage_recover,
		    "recover: expected one DEST");
	as_err_clear(&err);
	if (strncmp(argv[optind], "vol:", 4) == 0) {
		/* not a directory named "vol:...": that used to say nothing */
		char *state;

		if ((state = snapstore_state_dir(cli->state_dir, &err)) == NULL)
			return cli_error(&err);
		r = vol_recover(argv[optind] + 4, state, &err);
		free(state);
		if (r == -1) {
			as_err_prefix(&err, "recover '%s'", argv[optind]);
			return cli_error(&err);
		}
	} else if ((r = dir_recover(argv[optind], &err)) == -1)
		return cli_error(&err);
	if (cli->verbose)
		printf("%s '%s'\n", r ? "recovered" : "nothing to recover in",
		    cli_esc(argv[optind]));
	return 0;
}
