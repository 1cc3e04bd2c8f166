/*
 * main.c - autosync's entry point: global options, then the subcommand
 * from a static table (git's git.c).  Each subcommand lives in a
 * cmd_<group>.c with its own getopt_long and usage text.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/cli.h"
#include "base/banned.h"

#ifndef AUTOSYNC_VERSION
#define AUTOSYNC_VERSION "unknown"
#endif

static const struct cmd {
	const char	*name;
	cli_fn		 fn;
	const char	*summary;
} cmds[] = {
	{ "snapshot",	cmd_snapshot,
	    "take a snapshot (catalog) of a tree" },
	{ "snapshots",	cmd_snapshots,	"list snapshots" },
	{ "destroy",	cmd_destroy_any,
	    "destroy a snapshot (DS@SNAP) or a service" },
	{ "send",	cmd_send,
	    "write a full or incremental stream" },
	{ "receive",	cmd_receive,
	    "apply a stream to a destination" },
	{ "sync",	cmd_sync,
	    "snapshot, send and receive in one step" },
	{ "verify",	cmd_verify,
	    "compare a destination with a snapshot" },
	{ "recover",	cmd_recover,
	    "repair an interrupted receive" },
	{ "serve",	cmd_serve,
	    "answer remote syncs (ssh, tcp, tls)" },
	{ "keygen",	cmd_keygen,
	    "make keys and certificates for tcp and tls" },
	{ "create",	cmd_create,	"create a service" },
	{ "list",	cmd_list,	"list services" },
	{ "show",	cmd_show,	"show a service's properties" },
	{ "get",	cmd_get,	"print one property of a service" },
	{ "set",	cmd_set,	"change properties of a service" },
	{ "run",	cmd_run,	"run a service now" },
	{ "enable",	cmd_enable,	"schedule a service again" },
	{ "disable",	cmd_disable,	"stop scheduling a service" },
	{ "clear",	cmd_clear,	"return a service from maintenance" },
	{ "log",	cmd_log,	"a service's events" },
	{ "reverse",	cmd_reverse,	"swap a service's source and destination" },
	{ "mount-destination", cmd_mount_destination,
	    "mount a service's replica read-only" },
	{ "umount-destination", cmd_umount_destination,
	    "unmount it" },
	{ "daemon",	cmd_daemon,	"run the services (foreground)" },
	{ "metrics",	cmd_metrics,	"the services in Prometheus format" },
};

#define NCMDS	(sizeof(cmds) / sizeof(cmds[0]))

static const char usage_main[] =
"usage: autosync [--state-dir DIR] [-v | -q] COMMAND [ARGS]\n"
"       autosync help [COMMAND]\n"
"       autosync --version\n"
"\n"
"Global options:\n"
"  --state-dir DIR  where snapshot catalogs live (default:\n"
"                   $AUTOSYNC_STATE_DIR, /var/lib/autosync for root,\n"
"                   ~/.local/state/autosync)\n"
"  -v, --verbose    say more (repeat for debug output)\n"
"  -q, --quiet      only errors\n"
"  -h, --help       this text\n"
"  --version        print the version\n"
"\n"
"Commands:\n";

static void
print_usage(FILE *f)
{
	size_t i;

	fputs(usage_main, f);
	for (i = 0; i < NCMDS; i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
	fputs("\nSee 'autosync help COMMAND' and autosync(8).\n", f);
}

static const struct cmd *
find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

static int
cmd_help(struct cli *cli, int argc, char **argv)
{
	const struct cmd *c;
	char *hargv[3];

	if (argc < 2) {
		print_usage(stdout);
		return 0;
	}
	if ((c = find_cmd(argv[1])) == NULL) {
		log_error("help: '%s' is not an autosync command",
		    cli_esc(argv[1]));
		return 2;
	}
	hargv[0] = argv[1];
	hargv[1] = "--help";
	hargv[2] = NULL;
	optind = 0;
	return c->fn(cli, 2, hargv);
}

/* Check that everything written to stdout really got out. */
static int
finish_stdout(int rc)
{
	int e;

	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout) && fclose(stdout) == 0)
		return rc;
	e = errno;
	if (e != EPIPE)
		log_error("write to standard output: %s",
		    e != 0 ? strerror(e) : "I/O error");
	return rc != 0 ? rc : as_exit_code(e != 0 ? as_errcode_from_errno(e) :
	    AS_E_IO);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state-dir",	required_argument,	NULL, 's' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "quiet",	no_argument,		NULL, 'q' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ NULL,		0,			NULL, 0 }
	};
	struct cli cli;
	const struct cmd *c;
	int ch, rc;

	/*
	 * Catalogs are a few large arrays that grow by doubling.  A fixed
	 * mmap threshold keeps them in their own mappings: realloc moves
	 * them with mremap instead of copying next to the old block, and a
	 * freed catalog goes back to the system.  glibc's default raises
	 * the threshold after the first large free, which put the later
	 * catalogs on the heap (peak memory of a snapshot -20%).
	 */
	(void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	/*
	 * Every thread but the main one shares one arena.  A scan's
	 * workers grow their parts of a catalog in their arenas; glibc
	 * never trims a thread arena's top, so each one kept what its
	 * parts had used into the send, the peak (0.3-0.5 MiB at 100k
	 * entries, bench/README.md, session 12).  The threads allocate
	 * rarely: one lock costs nothing measurable.
	 */
	(void)mallopt(M_ARENA_MAX, 2);

	memset(&cli, 0, sizeof(cli));
	log_set_progname("autosync");
	/* A reader that goes away is an EPIPE error, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;	/* we name the bad option ourselves */

	while ((ch = getopt_long(argc, argv, "+vqh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			cli.state_dir = optarg;
			break;
		case 'v':
			cli.verbose++;
			break;
		case 'q':
			cli.quiet = 1;
			break;
		case 'h':
			print_usage(stdout);
			return finish_stdout(0);
		case 'V':
			printf("autosync %s\n", AUTOSYNC_VERSION);
			return finish_stdout(0);
		default:
			if (optopt != 0)
				log_error("unknown option or missing argument: "
				    "'-%c'", optopt);
			else
				log_error("unknown option or missing argument: "
				    "'%s'", cli_esc(argv[optind - 1]));
			fprintf(stderr, "%.*s\n", (int)strcspn(usage_main,
			    "\n"), usage_main);
			return 2;
		}
	}
	cli_apply_verbosity(&cli);
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		print_usage(stderr);
		return 2;
	}
	optind = 0;	/* GNU getopt: start afresh for the subcommand */
	if (strcmp(argv[0], "help") == 0)
		return finish_stdout(cmd_help(&cli, argc, argv));
	if ((c = find_cmd(argv[0])) == NULL) {
		log_error("'%s' is not an autosync command; see 'autosync "
		    "--help'", cli_esc(argv[0]));
		return 2;
	}
	rc = c->fn(&cli, argc, argv);
	return finish_stdout(rc);
}
