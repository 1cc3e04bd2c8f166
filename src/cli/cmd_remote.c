/* cmd_remote.c - serve, keygen, and the transport options of sync. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "cli/cli.h"
#include "driver/zfs.h"
#include "repl/remote.h"
#include "repl/serve.h"
#include "transport/compress.h"
#include "transport/keys.h"
#include "transport/progress.h"
#include "transport/ratelimit.h"
#include "base/banned.h"

static const char usage_serve[] =
"usage: autosync serve --stdio [--config FILE [--client NAME] | --root DIR]\n"
"       autosync serve --listen ADDR:PORT [--config FILE]\n"
"                      [--key PSKFILE --root DIR] [--port-file FILE]\n"
"       autosync serve --listen ADDR:PORT --tls --cert CRT --key KEY\n"
"                      --ca CA [--config FILE | --root DIR]\n"
"\n"
"Answer the requests of 'autosync sync' on another machine: receive what\n"
"it pushes, send what it pulls, for the paths the access rules allow.\n"
"\n"
"  --stdio          serve one client on standard input and output (the\n"
"                   remote side of ssh://; a forced command works).\n"
"                   Without --config every path the user can reach\n"
"  --listen A:P     accept tcp:// (or, with --tls, tls://) connections\n"
"  --config FILE    clients and their roots (see autosync-serve.conf(5)):\n"
"                     client NAME key FILE\n"
"                     client NAME cert SHA256:HEX\n"
"                     allow NAME PATH ro|rw\n"
"  --key FILE       tcp: the pre-shared key of quick mode; tls: the\n"
"                   server's private key\n"
"  --root DIR       quick mode: one root, read-write, for every client\n"
"                   that authenticates; client paths are relative to it.\n"
"                   --root zfs:POOL/DS: the datasets below POOL/DS\n"
"                   (named in full: zfs:POOL/DS/x), and no path\n"
"  --tls            TLS 1.3 with client certificates: --cert, --key, --ca\n"
"  --client NAME    --stdio: the client's name in --config (default ssh)\n"
"  --timeout SECS   idle timeout of a connection (default 60)\n"
"  --max-unauth N   connections allowed in their handshake at once (16)\n"
"  --port-file F    write the port listened on to F (with port 0)\n"
"\n"
"Without --config and without a root nothing is reachable over the\n"
"network.  Every refusal is logged with the peer's address.\n";

static const char usage_keygen[] =
"usage: autosync keygen --out DIR [--client NAME] [--server-name NAME]\n"
"\n"
"Write a new pre-shared key (psk.key, for tcp://) and a private CA with a\n"
"server and a client certificate (for tls://) into DIR, created 0700.\n"
"Existing files are never overwritten.\n"
"\n"
"  --out DIR            where to write\n"
"  --client NAME        the client's key id and certificate name\n"
"                       (default 'client')\n"
"  --server-name NAME   the server certificate's name (default\n"
"                       'autosync-server')\n";

void
cli_remote_init(struct remote_opts *ro)
{
	enum progress_mode m = PROGRESS_NONE;

	memset(ro, 0, sizeof(*ro));
	(void)progress_mode_parse(NULL, STDERR_FILENO, &m);
	ro->progress = m;
}

static int
parse_secs(const char *s, int *ms)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 86400)
		return -1;
	*ms = (int)v * 1000;
	return 0;
}

int
cli_remote_opt(int ch, const char *arg, struct remote_opts *ro,
    struct as_err *err)
{
	struct compress_spec cs;
	enum progress_mode m;

	switch (ch) {
	case CLI_OPT_KEY:
		ro->key_file = arg;
		return 0;
	case CLI_OPT_CERT:
		ro->cert_file = arg;
		return 0;
	case CLI_OPT_CA:
		ro->ca_file = arg;
		return 0;
	case CLI_OPT_COMPRESS:
		if (compress_parse(arg, &cs, err) == -1)
			return -1;
		ro->zstd_level = cs.algo == COMPRESS_ZSTD ? (cs.level != 0 ?
		    cs.level : COMPRESS_DEFAULT_LEVEL) : 0;
		return 0;
	case CLI_OPT_RATE:
		if (*arg == '\0')
			return as_err_set(err, AS_E_USAGE, 0, "--rate-limit: "
			    "expected a rate such as 40M (0 for none)");
		return ratelimit_parse(arg, &ro->rate, err);
	case CLI_OPT_PROGRESS:
		if (progress_mode_parse(arg != NULL ? arg : "tty",
		    STDERR_FILENO, &m) == -1)
			return as_err_set(err, AS_E_USAGE, 0, "--progress: "
			    "expected json, tty or none, not '%s'", arg);
		ro->progress = m;
		return 0;
	case CLI_OPT_TIMEOUT:
		if (parse_secs(arg, &ro->idle_ms) == -1)
			return as_err_set(err, AS_E_USAGE, 0, "--timeout: "
			    "expected seconds from 1 to 86400, not '%s'", arg);
		return 0;
	}
	return as_err_set(err, AS_E_INTERNAL, 0, "option %d", ch);
}

int
cmd_serve(struct cli *cli, int argc, char **argv)
{
	enum {
		O_STDIO = 0x200, O_LISTEN, O_CONFIG, O_ROOT, O_TLS,
		O_CLIENT, O_MAXU, O_PORTFILE,
	};
	static const struct option lo[] = {
		{ "stdio",	no_argument,		NULL, O_STDIO },
		{ "listen",	required_argument,	NULL, O_LISTEN },
		{ "config",	required_argument,	NULL, O_CONFIG },
		{ "root",	required_argument,	NULL, O_ROOT },
		{ "tls",	no_argument,		NULL, O_TLS },
		{ "client",	required_argument,	NULL, O_CLIENT },
		{ "max-unauth",	required_argument,	NULL, O_MAXU },
		{ "port-file",	required_argument,	NULL, O_PORTFILE },
		{ "key",	required_argument,	NULL, CLI_OPT_KEY },
		{ "cert",	required_argument,	NULL, CLI_OPT_CERT },
		{ "ca",		required_argument,	NULL, CLI_OPT_CA },
		{ "timeout",	required_argument,	NULL, CLI_OPT_TIMEOUT },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	struct serve_opts o;
	struct as_err err;
	char *end, *root_abs = NULL;
	long v;
	int ch, stdio = 0, ms, rc;

	memset(&o, 0, sizeof(o));
	as_err_clear(&err);
	while ((ch = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (ch) {
		case O_STDIO:
			stdio = 1;
			break;
		case O_LISTEN:
			o.listen = optarg;
			break;
		case O_CONFIG:
			o.config = optarg;
			break;
		case O_ROOT:
			o.root = optarg;
			break;
		case O_TLS:
			o.tls = 1;
			break;
		case O_CLIENT:
			o.client = optarg;
			break;
		case O_PORTFILE:
			o.port_file = optarg;
			break;
		case O_MAXU:
			v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v < 1 ||
			    v > 4096)
				return cli_usage_error(usage_serve, "serve: "
				    "--max-unauth: expected 1 to 4096");
			o.max_unauth = (int)v;
			break;
		case CLI_OPT_KEY:
			o.key_file = optarg;
			break;
		case CLI_OPT_CERT:
			o.cert_file = optarg;
			break;
		case CLI_OPT_CA:
			o.ca_file = optarg;
			break;
		case CLI_OPT_TIMEOUT:
			if (parse_secs(optarg, &ms) == -1)
				return cli_usage_error(usage_serve, "serve: "
				    "--timeout: expected seconds, 1 to 86400");
			o.idle_ms = ms;
			break;
		case 'v':
			cli->verbose++;
			break;
		case 'h':
			return cli_help(usage_serve);
		default:
			return cli_bad_option(usage_serve, "serve", argv);
		}
	}
	cli_apply_verbosity(cli);
	if (argc != optind)
		return cli_usage_error(usage_serve, "serve: unexpected "
		    "argument '%s'", cli_esc(argv[optind]));
	if (stdio == (o.listen != NULL))
		return cli_usage_error(usage_serve, "serve: expected one of "
		    "--stdio and --listen");
	if (o.config != NULL && o.root != NULL)
		return cli_usage_error(usage_serve, "serve: --config and "
		    "--root exclude each other");
	if (stdio && (o.tls || o.port_file != NULL || o.key_file != NULL))
		return cli_usage_error(usage_serve, "serve: --stdio takes no "
		    "--tls, --key or --port-file (ssh authenticates)");
	if (!stdio && o.client != NULL)
		return cli_usage_error(usage_serve, "serve: --client is for "
		    "--stdio");
	/*
	 * The root is the boundary every request is resolved beneath: fix
	 * it once, absolute and without symlinks, before serving anything.
	 */
	if (o.root != NULL && strncmp(o.root, "zfs:", 4) == 0) {
		/* a dataset root (serve_resolve_dataset): a name, no path */
		if (zfs_name_check(o.root + 4, 0, &err) == -1) {
			as_err_prefix(&err, "serve: root '%s'", o.root);
			return cli_error(&err);
		}
	} else if (o.root != NULL) {
		if ((root_abs = realpath(o.root, NULL)) == NULL) {
			as_err_sys(&err, errno, "serve: root '%s'", o.root);
			return cli_error(&err);
		}
		o.root = root_abs;
	}
	o.state_dir = cli->state_dir;
	if (stdio) {
		log_set_progname("autosync serve");
		rc = serve_stdio(&o, &err) == -1 ? cli_error(&err) : 0;
		free(root_abs);
		return rc;
	}
	rc = serve_listen(&o, &err) == -1 ? cli_error(&err) : 0;
	free(root_abs);
	return rc;
}

int
cmd_keygen(struct cli *cli, int argc, char **argv)
{
	enum { O_OUT = 0x200, O_CLIENTID, O_SERVERNAME };
	static const struct option lo[] = {
		{ "out",	required_argument,	NULL, O_OUT },
		{ "client",	required_argument,	NULL, O_CLIENTID },
		{ "server-name", required_argument,	NULL, O_SERVERNAME },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	struct as_err err;
	const char *out = NULL, *client = NULL, *server = NULL;
	int ch;

	while ((ch = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (ch) {
		case O_OUT:
			out = optarg;
			break;
		case O_CLIENTID:
			client = optarg;
			break;
		case O_SERVERNAME:
			server = optarg;
			break;
		case 'v':
			cli->verbose++;
			break;
		case 'h':
			return cli_help(usage_keygen);
		default:
			return cli_bad_option(usage_keygen, "keygen", argv);
		}
	}
	cli_apply_verbosity(cli);
	if (argc != optind)
		return cli_usage_error(usage_keygen, "keygen: unexpected "
		    "argument '%s'", cli_esc(argv[optind]));
	if (out == NULL)
		return cli_usage_error(usage_keygen, "keygen: --out DIR is "
		    "required");
	as_err_clear(&err);
	if (keygen_dir(out, client, server, &err) == -1)
		return cli_error(&err);
	if (cli->verbose || !cli->quiet)
		printf("wrote psk.key, ca.crt, ca.key, server.crt, server.key, "
		    "client.crt and client.key in '%s'\n", cli_esc(out));
	return 0;
}
