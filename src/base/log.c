/* log.c - diagnostics on stderr; see log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/banned.h"

static enum log_level level = LOG_LVL_WARN;
static const char *progname = "autosync";

void
log_set_level(enum log_level lvl)
{
	level = lvl;
}

enum log_level
log_get_level(void)
{
	return level;
}

void
log_set_progname(const char *name)
{
	progname = name;
}

static void
log_v(enum log_level lvl, const char *tag, const char *fmt, va_list ap)
{
	char line[2048];

	if (lvl > level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* One fputs per line so that concurrent writers do not interleave. */
	fprintf(stderr, "%s: %s%s\n", progname, tag, line);
}

#define LOG_FN(fn, lvl, tag)				\
void							\
fn(const char *fmt, ...)				\
{							\
	va_list ap;					\
	va_start(ap, fmt);				\
	log_v(lvl, tag, fmt, ap);			\
	va_end(ap);					\
}

LOG_FN(log_error, LOG_LVL_ERROR, "")
LOG_FN(log_warn, LOG_LVL_WARN, "warning: ")
LOG_FN(log_info, LOG_LVL_INFO, "")
LOG_FN(log_debug, LOG_LVL_DEBUG, "debug: ")
LOG_FN(log_trace, LOG_LVL_TRACE, "trace: ")

const char *
log_escape(const char *in, char *out, unsigned outsz)
{
	static const char hex[] = "0123456789abcdef";
	unsigned o = 0;
	const unsigned char *p;

	if (outsz == 0)
		return out;
	for (p = (const unsigned char *)in; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && *p <= 0x9f) ||
		    *p == '\\') {
			if (o + 5 >= outsz)
				break;
			out[o++] = '\\';
			if (*p == '\\') {
				out[o++] = '\\';
				continue;
			}
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		} else {
			if (o + 2 >= outsz)
				break;
			out[o++] = (char)*p;
		}
	}
	out[o] = '\0';
	return out;
}
