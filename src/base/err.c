/* err.c - classified errors; see err.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/banned.h"

static const struct {
	const char	*name;
	int		 exit_code;
	enum as_errclass class;
} codes[AS_E__COUNT] = {
	[AS_E_OK]		= { "OK",		0,  AS_PERM },
	[AS_E_USAGE]		= { "USAGE",		2,  AS_PERM },
	[AS_E_NOTFOUND]		= { "NOTFOUND",		3,  AS_PERM },
	[AS_E_TRUNCATED]	= { "TRUNCATED",	10, AS_TEMP },
	[AS_E_CHECKSUM]		= { "CHECKSUM",		11, AS_TEMP },
	[AS_E_MALFORMED]	= { "MALFORMED",	12, AS_PERM },
	[AS_E_UNSUPPORTED]	= { "UNSUPPORTED",	13, AS_PERM },
	[AS_E_UNSAFE_PATH]	= { "UNSAFE_PATH",	14, AS_PERM },
	[AS_E_LIMIT]		= { "LIMIT",		15, AS_PERM },
	[AS_E_CONFLICT]		= { "CONFLICT",		20, AS_PERM },
	[AS_E_AUTH]		= { "AUTH",		21, AS_PERM },
	[AS_E_TIMEOUT]		= { "TIMEOUT",		30, AS_TEMP },
	[AS_E_IO]		= { "IO",		40, AS_TEMP },
	[AS_E_NOSPACE]		= { "NOSPACE",		41, AS_TEMP },
	[AS_E_NOTCONSISTENT]	= { "NOTCONSISTENT",	42, AS_TEMP },
	[AS_E_INTERNAL]		= { "INTERNAL",		70, AS_PERM },
};

static int
err_vset(struct as_err *err, enum as_errcode code, int sys_errno,
    const char *fmt, va_list ap)
{
	if (err == NULL)
		return -1;
	err->code = code;
	err->sys_errno = sys_errno;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return -1;
}

int
as_err_set(struct as_err *err, enum as_errcode code, int sys_errno,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, code, sys_errno, fmt, ap);
	va_end(ap);
	return -1;
}

int
as_err_sys(struct as_err *err, int sys_errno, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	err_vset(err, as_errcode_from_errno(sys_errno), sys_errno, fmt, ap);
	va_end(ap);
	n = strlen(err->msg);
	snprintf(err->msg + n, sizeof(err->msg) - n, ": %s",
	    strerror(sys_errno));
	return -1;
}

int
as_err_prefix(struct as_err *err, const char *fmt, ...)
{
	char head[AS_ERR_MSGMAX], old[AS_ERR_MSGMAX];
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", head, old);
	return -1;
}

void
as_err_clear(struct as_err *err)
{
	if (err == NULL)
		return;
	err->code = AS_E_OK;
	err->sys_errno = 0;
	err->msg[0] = '\0';
}

enum as_errcode
as_errcode_from_errno(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return AS_E_NOSPACE;
	case ENOENT:
		return AS_E_NOTFOUND;
	case ELOOP:
	case EXDEV:
		return AS_E_UNSAFE_PATH;
	case ETIMEDOUT:
		return AS_E_TIMEOUT;
	case ENAMETOOLONG:
		return AS_E_LIMIT;
	default:
		return AS_E_IO;
	}
}

enum as_errclass
as_errclass_of(enum as_errcode code)
{
	if (code < 0 || code >= AS_E__COUNT)
		return AS_PERM;
	return codes[code].class;
}

const char *
as_errcode_name(enum as_errcode code)
{
	if (code < 0 || code >= AS_E__COUNT)
		return "INTERNAL";
	return codes[code].name;
}

int
as_exit_code(enum as_errcode code)
{
	if (code < 0 || code >= AS_E__COUNT)
		return 70;
	return codes[code].exit_code;
}
