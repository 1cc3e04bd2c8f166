/*
 * cli.h - what the subcommands share: the global options, the command
 * table's signature, and the helpers that print.  Only src/cli prints.
 */
#ifndef AS_CLI_H
#define AS_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "base/err.h"

/* Global options, parsed by main() before the subcommand. */
struct cli {
	const char	*state_dir;	/* --state-dir, or NULL */
	int		 verbose;	/* -v count, global and command */
	int		 quiet;		/* -q */
};

/* A subcommand: argv[0] is its name; returns the exit status. */
typedef int	(*cli_fn)(struct cli *cli, int argc, char **argv);

int	cmd_snapshot(struct cli *, int, char **);
int	cmd_snapshots(struct cli *, int, char **);
int	cmd_destroy(struct cli *, int, char **);
int	cmd_send(struct cli *, int, char **);
int	cmd_receive(struct cli *, int, char **);
int	cmd_sync(struct cli *, int, char **);
int	cmd_verify(struct cli *, int, char **);
int	cmd_recover(struct cli *, int, char **);
int	cmd_serve(struct cli *, int, char **);
int	cmd_keygen(struct cli *, int, char **);
/* cmd_service.c */
int	cmd_create(struct cli *, int, char **);
int	cmd_list(struct cli *, int, char **);
int	cmd_show(struct cli *, int, char **);
int	cmd_get(struct cli *, int, char **);
int	cmd_set(struct cli *, int, char **);
int	cmd_run(struct cli *, int, char **);
int	cmd_enable(struct cli *, int, char **);
int	cmd_disable(struct cli *, int, char **);
int	cmd_clear(struct cli *, int, char **);
int	cmd_destroy_any(struct cli *, int, char **);
int	cmd_log(struct cli *, int, char **);
int	cmd_reverse(struct cli *, int, char **);
int	cmd_metrics(struct cli *, int, char **);
int	cmd_mount_destination(struct cli *, int, char **);
int	cmd_umount_destination(struct cli *, int, char **);
int	cmd_daemon(struct cli *, int, char **);

/*
 * Transport options shared by sync, send and receive (cmd_remote.c):
 * add CLI_REMOTE_LONGOPTS to a getopt_long table and pass what it returns
 * to cli_remote_opt().
 */
enum {
	CLI_OPT_KEY = 0x100,
	CLI_OPT_CERT,
	CLI_OPT_CA,
	CLI_OPT_COMPRESS,
	CLI_OPT_RATE,
	CLI_OPT_PROGRESS,
	CLI_OPT_TIMEOUT,
};

#define CLI_REMOTE_LONGOPTS						\
	{ "key",	required_argument,	NULL, CLI_OPT_KEY },	\
	{ "cert",	required_argument,	NULL, CLI_OPT_CERT },	\
	{ "ca",		required_argument,	NULL, CLI_OPT_CA },	\
	{ "compress",	required_argument,	NULL, CLI_OPT_COMPRESS }, \
	{ "rate-limit",	required_argument,	NULL, CLI_OPT_RATE },	\
	{ "progress",	optional_argument,	NULL, CLI_OPT_PROGRESS }, \
	{ "timeout",	required_argument,	NULL, CLI_OPT_TIMEOUT }

#define CLI_REMOTE_USAGE						\
"Remote endpoints: ssh://[user@]host[:port]/path, tcp://host[:port]/path,\n" \
"tls://host[:port]/path (see autosync-protocol.md).\n"			\
"  --key FILE       tcp://: the pre-shared key; tls://: own private key\n" \
"  --cert FILE      tls://: own certificate\n"				\
"  --ca FILE        tls://: the CA that signed the server's certificate\n" \
"  --compress zstd[:LEVEL]  compress the stream on the wire\n"		\
"  --rate-limit RATE        at most RATE bytes/s (40M, 500K)\n"		\
"  --progress[=json]        progress on stderr (default: on a terminal)\n" \
"  --timeout SECS   give up after SECS without data (default 60)\n"

struct remote_opts;
/* Defaults: progress when stderr is a terminal. */
void	cli_remote_init(struct remote_opts *ro);
/* Apply one transport option; -1 with USAGE. */
int	cli_remote_opt(int ch, const char *arg, struct remote_opts *ro,
	    struct as_err *err);

/* Set the log level from -v and -q (after a subcommand's own -v). */
void	cli_apply_verbosity(const struct cli *cli);
/* Print "autosync: <err->msg>" (escaped) and return its exit status. */
int	cli_error(const struct as_err *err);
/*
 * Print "autosync: <cmd>: <message>" and the usage line, return 2.
 */
int	cli_usage_error(const char *usage, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* After getopt_long returned '?': name the offending argument. */
int	cli_bad_option(const char *usage, const char *cmd, char **argv);
/* Print the usage text to stdout and return 0 (for -h). */
int	cli_help(const char *usage);

/*
 * Split DS@SNAP at the last '@' (see autosync(8), "Naming snapshots").
 * *ds and *snap are allocated; *snap is NULL when arg has no '@' or ends
 * in a lone '@'.  need: 1 the snapshot is required, 0 optional.
 */
int	cli_split_snap(const char *arg, int need, char **ds, char **snap,
	    struct as_err *err);

/* 16 lower-case hex digits, the way GUIDs are shown everywhere. */
const char *cli_guid(uint64_t guid, char buf[17]);
/* "1.5 GiB", "512 B". */
const char *cli_bytes(uint64_t n, char *buf, size_t bufsz);
/* "2024-05-01 12:00:00" (UTC) or ISO 8601 with 'T' and 'Z' when iso. */
const char *cli_time(int64_t ns, int iso, char *buf, size_t bufsz);
/* Write s as a JSON string (quoted, escaped; invalid UTF-8 as \u00XX). */
void	cli_json_str(FILE *f, const char *s);
/* Escape for one-line output (log_escape) into a static buffer slot. */
const char *cli_esc(const char *s);

#endif
