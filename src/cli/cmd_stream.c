/* cmd_stream.c - send, receive. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "cli/cli.h"
#include "driver/dir.h"
#include "driver/vol.h"
#include "format/catalog.h"
#include "format/stream.h"
#include "repl/endpoint.h"
#include "repl/remote.h"
#include "repl/snapstore.h"
#include "base/banned.h"

static const char usage_send[] =
"usage: autosync send [-v] [-i BASE] DATASET@SNAP > STREAM\n"
"       autosync send [-v] [-F] [-i BASE] [transport options] DATASET@SNAP URL\n"
"\n"
"Write the stream of snapshot SNAP of DATASET to standard output: full,\n"
"or with -i the changes since snapshot BASE.  The tree is read live, so\n"
"it must still match the snapshot: a file that changed since is an\n"
"error (use 'autosync sync' to snapshot and send in one step).\n"
"DATASET may be vol:PATH: only the blocks whose hash differs from BASE\n"
"are read, and each must still match the snapshot.\n"
"Refuses to write to a terminal.  With a remote URL, the stream goes to\n"
"'autosync serve' there, which receives it into the URL's path (as\n"
"'autosync send ... | autosync receive URL' would).\n"
"\n"
"  -i BASE     incremental from BASE: '@base', 'base' or 'DATASET@base'\n"
"  -F, --force URL only: as receive -F on the remote side\n"
"  -v          print what was sent on standard error\n"
"\n"
CLI_REMOTE_USAGE;

static const char usage_receive[] =
"usage: autosync receive [-v] [-F] [-n] [--safe] [--recover-only]\n"
"                        [transport options]\n"
"                        DEST < STREAM\n"
"\n"
"Apply a stream read from standard input to the directory DEST (created\n"
"if missing).  A full stream needs an empty DEST; an incremental one\n"
"needs DEST to hold its base snapshot.  Crash-safe: on any failure DEST\n"
"is left at the snapshot it held.  DEST may be vol:PATH, a block device\n"
"or an image file (see autosync-stream(5) \"VOLUME STREAMS\").\n"
"\n"
"  -F, --force         roll back changes made in DEST since it was\n"
"                      received, and let a full stream replace it\n"
"  -n, --dry-run       read and validate the whole stream, change nothing\n"
"  --recover-only      only repair an interrupted receive, read no stream\n"
"  --safe              for a sender not trusted with privileged objects:\n"
"                      refuse device nodes, clear setuid/setgid bits,\n"
"                      keep only user.* xattrs\n"
"  -v, --verbose       print what was received on standard error\n"
"\n"
"DEST may be remote: the stream is sent to 'autosync serve' there.\n"
CLI_REMOTE_USAGE;

static void
print_stats(const char *verb, const struct dir_stats *st, int full)
{
	char b[32], s[32];

	fprintf(stderr, "%s %s stream: %" PRIu64 " entries, %s of data "
	    "(%s stream), %" PRIu64 " renames, %" PRIu64 " deletes\n", verb,
	    full ? "full" : "incremental", st->entries_sent,
	    cli_bytes(st->data_bytes, b, sizeof(b)),
	    cli_bytes(st->stream_bytes, s, sizeof(s)), st->renames,
	    st->deletes);
}

/*
 * send DATASET@SNAP URL: the stream of target (from base) straight to
 * 'autosync serve' at url, which receives it into the URL's path.
 */
static int
send_remote(const char *root, struct catalog *target,
    const struct catalog *base, const char *url, int force,
    const struct remote_opts *ro, struct dir_stats *st, struct as_err *err)
{
	struct endpoint ep;
	struct remote *r;
	struct remote_xfer x;
	struct xfer_src xs;
	int rc;

	if (endpoint_parse(&ep, url, err) == -1)
		return -1;
	if (!endpoint_is_remote(&ep)) {
		endpoint_release(&ep);
		return as_err_set(err, AS_E_USAGE, 0, "'%s' is not a remote "
		    "endpoint", url);
	}
	memset(&xs, 0, sizeof(xs));
	xs.root = root;
	xs.target = target;
	xs.base = base;
	xs.fd = -1;
	if ((r = remote_open(&ep, ro, err)) == NULL) {
		endpoint_release(&ep);
		return -1;
	}
	rc = remote_push(r, &xs, force, &x, err);
	remote_close(r);
	endpoint_release(&ep);
	*st = x.st;
	return rc == 0 ? 0 : -1;
}

int
cmd_send(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "incremental", required_argument,	NULL, 'i' },
		{ "force",	no_argument,		NULL, 'F' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		CLI_REMOTE_LONGOPTS,
		{ NULL,		0,			NULL, 0 }
	};
	struct as_err err;
	struct snapstore ss;
	struct catalog target, base;
	struct dir_stats st;
	struct vol_stats vst;
	struct vol_send_opts vo;
	struct remote_opts ro;
	const char *iarg = NULL, *url = NULL;
	char *state = NULL, *ds = NULL, *name = NULL, *bds = NULL;
	char *bname = NULL, *babs = NULL, g[17], bg[17], b1[32], b2[32];
	int ch, rc = 0, have_base = 0, is_vol = 0, force = 0;

	cli_remote_init(&ro);
	as_err_clear(&err);
	while ((ch = getopt_long(argc, argv, "i:Fvh", lo, NULL)) != -1) {
		switch (ch) {
		case CLI_OPT_KEY:
		case CLI_OPT_CERT:
		case CLI_OPT_CA:
		case CLI_OPT_COMPRESS:
		case CLI_OPT_RATE:
		case CLI_OPT_PROGRESS:
		case CLI_OPT_TIMEOUT:
			if (cli_remote_opt(ch, optarg, &ro, &err) == -1)
				return cli_usage_error(usage_send,
				    "send: %s", err.msg);
			break;
		case 'F':
			force = 1;
			break;
		case 'i':
			iarg = optarg;
			break;
		case 'v':
			cli->verbose++;
			break;
		case 'h':
			return cli_help(usage_send);
		default:
			return cli_bad_option(usage_send, "send", argv);
		}
	}
	cli_apply_verbosity(cli);
	if (argc - optind == 2) {
		url = argv[optind + 1];
		if (strstr(url, "://") == NULL)
			return cli_usage_error(usage_send, "send: '%s' is not "
			    "a remote URL (ssh://, tcp://, tls://); write a "
			    "local stream to standard output", cli_esc(url));
	} else if (argc - optind != 1)
		return cli_usage_error(usage_send,
		    "send: expected one DATASET@SNAP");
	else if (force)
		return cli_usage_error(usage_send, "send: -F needs a URL");
	if (url == NULL && isatty(STDOUT_FILENO))
		return cli_usage_error(usage_send, "send: refusing to write a "
		    "stream to a terminal; redirect standard output");
	memset(&ss, 0, sizeof(ss));
	ss.lock_fd = -1;
	memset(&st, 0, sizeof(st));
	memset(&vst, 0, sizeof(vst));
	catalog_init(&target);
	catalog_init(&base);
	as_err_clear(&err);
	if (cli_split_snap(argv[optind], 1, &ds, &name, &err) == -1)
		goto fail;
	if (strncmp(ds, "vol:", 4) == 0 && ds[4] != '\0') {
		memmove(ds, ds + 4, strlen(ds + 4) + 1);
		is_vol = 1;
	}
	if ((state = snapstore_state_dir(cli->state_dir, &err)) == NULL ||
	    snapstore_open(&ss, state, ds, 0, &err) == -1 ||
	    snapstore_load(&ss, name, &target, &err) == -1)
		goto fail;
	if (iarg != NULL) {
		/* "@base", "base" or "DATASET@base" */
		if (strchr(iarg, '@') == NULL)
			bname = xstrdup(iarg);
		else if (iarg[0] == '@')
			bname = xstrdup(iarg + 1);
		else {
			if (cli_split_snap(iarg, 1, &bds, &bname, &err) == -1)
				goto fail;
			if (is_vol && strncmp(bds, "vol:", 4) == 0)
				memmove(bds, bds + 4, strlen(bds + 4) + 1);
			if ((babs = snapstore_abspath(bds, &err)) == NULL)
				goto fail;
			if (strcmp(babs, ss.dataset) != 0) {
				as_err_set(&err, AS_E_USAGE, 0, "send: base "
				    "'%s' is not a snapshot of '%s'", iarg,
				    ds);
				goto fail;
			}
		}
		if (snapstore_load(&ss, bname, &base, &err) == -1)
			goto fail;
		if (base.hdr.guid == target.hdr.guid) {
			as_err_set(&err, AS_E_USAGE, 0, "send: base and target "
			    "are the same snapshot '%s'", name);
			goto fail;
		}
		if (base.hdr.time_ns > target.hdr.time_ns)
			log_warn("base '%s' is newer than '%s'", bname, name);
		have_base = 1;
	}
	if (is_vol) {
		memset(&vo, 0, sizeof(vo));
		if (url != NULL) {
			as_err_set(&err, AS_E_USAGE, 0, "send: a volume "
			    "snapshot goes to a URL with 'autosync sync "
			    "vol:%s URL/vol:PATH', not with send", ds);
			goto fail;
		}
		if (target.hdr.kind != AS_KIND_VOL) {
			as_err_set(&err, AS_E_USAGE, 0, "send: '%s@%s' is not "
			    "a volume snapshot", ds, name);
			goto fail;
		}
		if (vol_send(ss.dataset, &target, have_base ? &base : NULL,
		    STDOUT_FILENO, &vo, &vst, &err) == -1) {
			as_err_prefix(&err, "send 'vol:%s@%s'", ds, name);
			goto fail;
		}
		if (cli->verbose)
			fprintf(stderr, "sent %s volume stream of 'vol:%s@%s' "
			    "(guid %s): %" PRIu64 " of %" PRIu64 " blocks, %s "
			    "of data, %s stream\n", have_base ? "incremental" :
			    "full", cli_esc(ds), name,
			    cli_guid(target.hdr.guid, g), vst.blocks_sent +
			    vst.zero_blocks, vst.blocks, cli_bytes(
			    vst.data_bytes, b1, sizeof(b1)), cli_bytes(
			    vst.stream_bytes, b2, sizeof(b2)));
		goto out;
	}
	if (target.hdr.kind == AS_KIND_VOL) {
		as_err_set(&err, AS_E_USAGE, 0, "send: '%s@%s' is a volume "
		    "snapshot: name it vol:%s@%s", ds, name, ds, name);
		goto fail;
	}
	if (url != NULL) {
		if (send_remote(ss.dataset, &target, have_base ? &base : NULL,
		    url, force, &ro, &st, &err) == -1) {
			as_err_prefix(&err, "send '%s@%s'", ds, name);
			goto fail;
		}
	} else if (dir_send(ss.dataset, &target, have_base ? &base : NULL,
	    STDOUT_FILENO, 0, &st, &err) == -1) {
		as_err_prefix(&err, "send '%s@%s'", ds, name);
		goto fail;
	}
	if (cli->verbose) {
		print_stats("sent", &st, !have_base);
		fprintf(stderr, "  snapshot '%s@%s' (guid %s)", cli_esc(ds),
		    name, cli_guid(target.hdr.guid, g));
		if (have_base)
			fprintf(stderr, " from '%s' (guid %s)", bname,
			    cli_guid(base.hdr.guid, bg));
		fputc('\n', stderr);
	}
	goto out;
fail:
	rc = cli_error(&err);
out:
	catalog_release(&target);
	catalog_release(&base);
	snapstore_release(&ss);
	free(state);
	free(ds);
	free(name);
	free(bds);
	free(bname);
	free(babs);
	return rc;
}

/* receive into a remote DEST: pump standard input to its server. */
static int
receive_remote(struct cli *cli, const char *dest, int flags,
    int recover_only, const struct remote_opts *ro)
{
	struct endpoint ep;
	struct remote *r = NULL;
	struct remote_xfer x;
	struct xfer_src xs;
	struct as_err err;
	char g[17];
	int rc;

	as_err_clear(&err);
	if (recover_only || (flags & DIR_RECV_DRYRUN))
		return cli_usage_error(usage_receive, "receive: -n and "
		    "--recover-only work on a local DEST only");
	if (endpoint_parse(&ep, dest, &err) == -1)
		return cli_error(&err);
	if (!endpoint_is_remote(&ep)) {
		endpoint_release(&ep);
		return cli_usage_error(usage_receive, "receive: '%s' is not a "
		    "remote endpoint", cli_esc(dest));
	}
	if (isatty(STDIN_FILENO)) {
		endpoint_release(&ep);
		return cli_usage_error(usage_receive, "receive: refusing to "
		    "read a stream from a terminal; redirect standard input");
	}
	memset(&xs, 0, sizeof(xs));
	xs.fd = STDIN_FILENO;
	if ((r = remote_open(&ep, ro, &err)) == NULL ||
	    (rc = remote_push(r, &xs, (flags & DIR_RECV_FORCE) != 0, &x,
	    &err)) == -1) {
		remote_close(r);
		endpoint_release(&ep);
		return cli_error(&err);
	}
	remote_close(r);
	endpoint_release(&ep);
	if (cli->verbose)
		fprintf(stderr, "received '%s' (guid %s) into '%s'\n",
		    cli_esc(x.name), cli_guid(x.guid, g), cli_esc(dest));
	return 0;
}

/* receive into (or recover) the volume vol:PATH. */
static int
receive_vol(struct cli *cli, const char *dest, int flags, int recover_only)
{
	struct vol_recv_result res;
	struct as_err err;
	char *state, g[17];
	int r;

	as_err_clear(&err);
	if (recover_only && (flags & DIR_RECV_DRYRUN))
		return cli_usage_error(usage_receive, "receive: -n and "
		    "--recover-only do not go together");
	if ((state = snapstore_state_dir(cli->state_dir, &err)) == NULL)
		return cli_error(&err);
	if (recover_only) {
		r = vol_recover(dest, state, &err);
		free(state);
		if (r == -1) {
			as_err_prefix(&err, "recover '%s'", dest);
			return cli_error(&err);
		}
		if (cli->verbose)
			fprintf(stderr, "%s '%s'\n", r ? "recovered" :
			    "nothing to recover in", cli_esc(dest));
		return 0;
	}
	if (isatty(STDIN_FILENO)) {
		free(state);
		return cli_usage_error(usage_receive, "receive: refusing to "
		    "read a stream from a terminal; redirect standard input");
	}
	r = vol_receive(dest, state, STDIN_FILENO,
	    (flags & DIR_RECV_FORCE ? VOL_RECV_FORCE : 0) |
	    (flags & DIR_RECV_DRYRUN ? VOL_RECV_DRYRUN : 0), &res, &err);
	free(state);
	if (r == -1) {
		as_err_prefix(&err, "receive '%s'", dest);
		return cli_error(&err);
	}
	if (cli->verbose && (flags & DIR_RECV_DRYRUN))
		fprintf(stderr, "dry run: volume snapshot '%s' (guid %s) "
		    "would be received: %" PRIu64 " bytes of data, %" PRIu64
		    " bytes of holes\n", cli_esc(res.name),
		    cli_guid(res.target_guid, g), res.st.data_bytes,
		    res.st.hole_bytes);
	else if (cli->verbose)
		fprintf(stderr, "received volume snapshot '%s' (guid %s): "
		    "%" PRIu64 " bytes of data, %" PRIu64 " bytes of holes\n",
		    cli_esc(res.name), cli_guid(res.target_guid, g),
		    res.st.data_bytes, res.st.hole_bytes);
	return 0;
}

int
cmd_receive(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force",	no_argument,		NULL, 'F' },
		{ "dry-run",	no_argument,		NULL, 'n' },
		{ "recover-only", no_argument,		NULL, 'R' },
		{ "safe",	no_argument,		NULL, 'S' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		CLI_REMOTE_LONGOPTS,
		{ NULL,		0,			NULL, 0 }
	};
	struct as_err err;
	struct dir_recv_result res;
	struct remote_opts ro;
	const char *dest;
	char g[17], bg[17];
	int ch, flags = 0, recover_only = 0, r;

	cli_remote_init(&ro);
	as_err_clear(&err);
	while ((ch = getopt_long(argc, argv, "Fnvh", lo, NULL)) != -1) {
		switch (ch) {
		case CLI_OPT_KEY:
		case CLI_OPT_CERT:
		case CLI_OPT_CA:
		case CLI_OPT_COMPRESS:
		case CLI_OPT_RATE:
		case CLI_OPT_PROGRESS:
		case CLI_OPT_TIMEOUT:
			if (cli_remote_opt(ch, optarg, &ro, &err) == -1)
				return cli_usage_error(usage_receive,
				    "receive: %s", err.msg);
			break;
		case 'F':
			flags |= DIR_RECV_FORCE;
			break;
		case 'n':
			flags |= DIR_RECV_DRYRUN;
			break;
		case 'R':
			recover_only = 1;
			break;
		case 'S':
			flags |= DIR_RECV_SAFE;
			break;
		case 'v':
			cli->verbose++;
			break;
		case 'h':
			return cli_help(usage_receive);
		default:
			return cli_bad_option(usage_receive, "receive", argv);
		}
	}
	cli_apply_verbosity(cli);
	if (argc - optind != 1)
		return cli_usage_error(usage_receive,
		    "receive: expected one DEST");
	dest = argv[optind];
	as_err_clear(&err);
	/* a volume has no entries to judge; a server applies its own policy */
	if ((flags & DIR_RECV_SAFE) && ((strncmp(dest, "vol:", 4) == 0 &&
	    dest[4] != '\0') || strstr(dest, "://") != NULL))
		return cli_usage_error(usage_receive, "receive: --safe is for "
		    "a local directory (a server applies its serve.conf "
		    "'safe' grant)");
	if (strncmp(dest, "vol:", 4) == 0 && dest[4] != '\0')
		return receive_vol(cli, dest + 4, flags, recover_only);
	if (strstr(dest, "://") != NULL)
		return receive_remote(cli, dest, flags, recover_only, &ro);
	if (recover_only) {
		if ((r = dir_recover(dest, &err)) == -1)
			return cli_error(&err);
		if (cli->verbose)
			fprintf(stderr, "%s '%s'\n", r ? "recovered" :
			    "nothing to recover in", cli_esc(dest));
		return 0;
	}
	if (isatty(STDIN_FILENO))
		return cli_usage_error(usage_receive, "receive: refusing to "
		    "read a stream from a terminal; redirect standard input");
	memset(&res, 0, sizeof(res));
	if (dir_receive(dest, STDIN_FILENO, flags, &res, &err) == -1) {
		as_err_prefix(&err, "receive '%s'", dest);
		return cli_error(&err);
	}
	if (cli->verbose) {
		print_stats(flags & DIR_RECV_DRYRUN ? "validated" : "received",
		    &res.st, res.base_guid == 0);
		fprintf(stderr, "  snapshot '%s' (guid %s)%s%s\n",
		    cli_esc(res.name),
		    cli_guid(res.target_guid, g), res.base_guid != 0 ?
		    " from guid " : "", res.base_guid != 0 ?
		    cli_guid(res.base_guid, bg) : "");
	}
	return 0;
}
