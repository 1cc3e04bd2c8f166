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
