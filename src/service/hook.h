/*
 * hook.h - a service's pre and post hooks: programs run before and after
 * each run, from an argv vector, never through a shell.
 *
 * A hook is stored as one property string split into words like a
 * systemd ExecStart= line, without any expansion:
 *
 *	words are separated by spaces or tabs;
 *	'...'	 is literal (no escapes inside);
 *	"..."	 is literal except \" and \\;
 *	\c	 outside quotes is c.
 *
 * The first word must be an absolute path (no PATH search); control
 * characters are refused; at most HOOK_ARGS_MAX words.  The empty string
 * is "no hook".
 *
 * A hook runs with the caller's environment plus the variables it is
 * given (autosync(8) lists them), stdin from /dev/null and stdout and
 * stderr captured line by line; in its own process group, killed
 * (SIGKILL to the group) after its timeout, and killed with the caller
 * when the caller dies (PR_SET_PDEATHSIG).
 */
#ifndef AS_HOOK_H
#define AS_HOOK_H

#include <stdint.h>

#include "base/err.h"

#define HOOK_ARGS_MAX		64
#define HOOK_LINE_MAX		400	/* longer output lines are cut */
#define HOOK_LINES_MAX		100	/* lines passed on per run */

/*
 * Split spec into a NULL-terminated argv (allocated; hook_argv_free).
 * *argv is NULL for the empty string.  USAGE with the reason.
 */
int	hook_split(const char *spec, char ***argv, struct as_err *err);
void	hook_argv_free(char **argv);

/* One line of the hook's output (without the newline). */
typedef void	(*hook_line_fn)(void *arg, const char *line);

/*
 * Run argv with env ("NAME=value" strings, NULL-terminated; may be NULL)
 * added to the environment.  Returns 0 when the hook ran to its end,
 * with its wait status in *status; -1 with err when it could not be
 * started (NOTFOUND, IO: "hook '/x' cannot be run: ...") or was killed after
 * timeout_ms (TIMEOUT).
 */
int	hook_run(char *const *argv, char *const *env, int64_t timeout_ms,
	    hook_line_fn fn, void *arg, int *status, struct as_err *err);

/*
 * SIGKILL to the process group of the hook running now, if any: for a
 * SIGTERM handler of the process that runs hooks (async-signal-safe).
 */
void	hook_kill_running(void);

/* "exit status 3", "killed by signal 9": for messages. */
const char *hook_status_str(int status, char *buf, unsigned bufsz);

#endif
