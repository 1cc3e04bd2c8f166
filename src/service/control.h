/*
 * control.h - the daemon's control socket: a UNIX stream socket in the
 * state directory (autosync.sock), mode 0600 in a 0700 directory, so
 * only its owner (or root) can talk to the daemon.
 *
 * The protocol is lines of text, one request per connection:
 *
 *	request:	VERB [ARG]\n		(at most CONTROL_LINE_MAX bytes)
 *	reply:		zero or more "* DATA\n" lines, then one final
 *			"ok [TEXT]\n" or "err CODE TEXT\n" (CODE as
 *			as_errcode_name: "NOTFOUND", "CONFLICT"...)
 *
 *	ping			ok
 *	list			* NAME STATE PID (PID 0: no run), per service
 *	run NAME		ok queued | ok coalesced (a run is due anyway)
 *	run-wait NAME		ok BYTES once the run ended, or err ...
 *	reload			ok (the daemon reads the database again)
 */
#ifndef AS_CONTROL_H
#define AS_CONTROL_H

#include <stddef.h>

#include "base/err.h"

#define CONTROL_SOCK_NAME	"autosync.sock"
#define CONTROL_LINE_MAX	1024

/*
 * Bind and listen on path, replacing a stale socket (one nobody answers
 * on); CONFLICT when a daemon answers there.  Returns a non-blocking,
 * close-on-exec descriptor.
 */
int	control_listen(const char *path, struct as_err *err);

/*
 * Send one request and read the reply.  Data lines go to fn (without
 * "* " and the newline); the final line's text after "ok " goes to
 * out (may be NULL).  Returns 0 for ok, -1 with err for err (its code and
 * text) or a failure; NOTFOUND (sys_errno ENOENT or ECONNREFUSED) when no
 * daemon listens.  timeout_ms < 0 waits for ever.
 */
typedef void	(*control_line_fn)(void *arg, const char *line);
int	control_request(const char *path, const char *request,
	    control_line_fn fn, void *arg, char *out, size_t outsz,
	    int timeout_ms, struct as_err *err);

/* Write a whole reply line (with "\n" added); -1 on a write error. */
int	control_reply(int fd, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
