/*
 * err.h - classified errors that travel up the stack and are reported once.
 *
 * The library never prints.  A failing function fills an optional
 * struct as_err and returns -1 (or NULL).  Callers may add context on the
 * way up with as_err_prefix(); the CLI prints err->msg once and exits with
 * as_exit_code(err).
 */
#ifndef AS_ERR_H
#define AS_ERR_H

#include <stdarg.h>

/* What went wrong, as RELIABILITY.md's O5 classes; decides the exit code. */
enum as_errcode {
	AS_E_OK = 0,
	AS_E_USAGE,		/* bad option or argument */
	AS_E_NOTFOUND,		/* dataset, snapshot or file missing */
	AS_E_TRUNCATED,		/* stream ended early */
	AS_E_CHECKSUM,		/* stream checksum mismatch */
	AS_E_MALFORMED,		/* stream or catalog structurally invalid */
	AS_E_UNSUPPORTED,	/* unknown version, feature or record */
	AS_E_UNSAFE_PATH,	/* path would escape or is not allowed */
	AS_E_LIMIT,		/* a length or count above its bound */
	AS_E_CONFLICT,		/* base mismatch, diverged or busy destination */
	AS_E_AUTH,		/* authentication failed */
	AS_E_TIMEOUT,		/* a deadline passed */
	AS_E_IO,		/* I/O error */
	AS_E_NOSPACE,		/* ENOSPC, EDQUOT, EFBIG */
	AS_E_NOTCONSISTENT,	/* source kept changing while read */
	AS_E_INTERNAL,		/* programmer error or unexpected state */
	AS_E__COUNT
};

/* Whether retrying can help (zrepl's error classes). */
enum as_errclass {
	AS_TEMP = 1,	/* retry with back-off */
	AS_PERM = 2,	/* stop and report */
};

#define AS_ERR_MSGMAX 512

struct as_err {
	enum as_errcode	code;		/* AS_E_OK when no error */
	int		sys_errno;	/* errno at the failure, or 0 */
	char		msg[AS_ERR_MSGMAX]; /* one line, lowercase, no full stop */
};

/*
 * Fill err (when not NULL) and return -1, so that a failure reads
 * "return as_err_set(err, AS_E_IO, errno, "read '%s'", path);".
 */
int	as_err_set(struct as_err *err, enum as_errcode code, int sys_errno,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* As as_err_set(), with the errno text appended: "...: No such file". */
int	as_err_sys(struct as_err *err, int sys_errno, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* Prepend "context: " to an error already set; returns -1. */
int	as_err_prefix(struct as_err *err, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	as_err_clear(struct as_err *err);

/* Map an errno from an I/O call to an error code (ENOSPC -> NOSPACE...). */
enum as_errcode	as_errcode_from_errno(int e);
enum as_errclass as_errclass_of(enum as_errcode code);
/* Stable upper-case name of a code: "CHECKSUM", "UNSAFE_PATH"... */
const char	*as_errcode_name(enum as_errcode code);
/* Process exit status for a code; see doc/autosync.8 EXIT STATUS. */
int		as_exit_code(enum as_errcode code);

#endif
