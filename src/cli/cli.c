/* cli.c - helpers the subcommands share; see cli.h. */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "cli/cli.h"
#include "base/banned.h"

const char *
cli_esc(const char *s)
{
	static char bufs[4][4 * 4096 + 64];
	static unsigned slot;

	slot = (slot + 1) % 4;
	return log_escape(s, bufs[slot], sizeof(bufs[slot]));
}

int
cli_error(const struct as_err *err)
{
	enum as_errcode code = err->code;

	if (code == AS_E_OK)
		code = AS_E_INTERNAL;
	log_error("%s", err->msg[0] != '\0' ? cli_esc(err->msg) :
	    "unknown error");
	log_debug("error class %s", as_errcode_name(code));
	return as_exit_code(code);
}

int
cli_usage_error(const char *usage, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s", cli_esc(msg));
	/* the first line of the usage text */
	fprintf(stderr, "%.*s\n", (int)strcspn(usage, "\n"), usage);
	return as_exit_code(AS_E_USAGE);
}

int
cli_bad_option(const char *usage, const char *cmd, char **argv)
{
	if (optopt != 0)
		return cli_usage_error(usage, "%s: unknown option or missing "
		    "argument: '-%c'", cmd, optopt);
	return cli_usage_error(usage, "%s: unknown option or missing "
	    "argument: '%s'", cmd, argv[optind - 1]);
}

int
cli_help(const char *usage)
{
	fputs(usage, stdout);
	return 0;
}

int
cli_split_snap(const char *arg, int need, char **ds, char **snap,
    struct as_err *err)
{
	const char *at;

	*ds = NULL;
	*snap = NULL;
	at = strrchr(arg, '@');
	if (at == NULL || at[1] == '\0') {
		if (need)
			return as_err_set(err, AS_E_USAGE, 0, "'%s' names no "
			    "snapshot: write DATASET@SNAPSHOT", arg);
		*ds = at == NULL ? xstrdup(arg) :
		    xstrndup(arg, (size_t)(at - arg));
	} else {
		*ds = xstrndup(arg, (size_t)(at - arg));
		*snap = xstrdup(at + 1);
	}
	if (**ds == '\0') {
		free(*ds);
		free(*snap);
		*ds = *snap = NULL;
		return as_err_set(err, AS_E_USAGE, 0, "'%s' names no dataset",
		    arg);
	}
	return 0;
}

const char *
cli_guid(uint64_t guid, char buf[17])
{
	snprintf(buf, 17, "%016" PRIx64, guid);
	return buf;
}

const char *
cli_bytes(uint64_t n, char *buf, size_t bufsz)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB",
	    "PiB", "EiB" };
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, bufsz, "%" PRIu64 " B", n);
		return buf;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, bufsz, "%.1f %s", v, unit[u]);
	return buf;
}

const char *
cli_time(int64_t ns, int iso, char *buf, size_t bufsz)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, bufsz, "?");
		return buf;
	}
	strftime(buf, bufsz, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S",
	    &tm);
	return buf;
}

/* Length of the valid UTF-8 sequence at p, or 0. */
static size_t
utf8_len(const unsigned char *p)
{
	size_t n, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 ||
	    cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void
cli_json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	fputc('"', f);
	while (*p != '\0') {
		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p++, f);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p++);
		} else if ((n = utf8_len(p)) == 0) {
			/* not UTF-8: the byte as a code point, as Latin-1 */
			fprintf(f, "\\u%04x", *p++);
		} else {
			fwrite(p, 1, n, f);
			p += n;
		}
	}
	fputc('"', f);
}

void
cli_apply_verbosity(const struct cli *cli)
{
	if (cli->quiet)
		log_set_level(LOG_LVL_ERROR);
	else if (cli->verbose >= 2)
		log_set_level(LOG_LVL_DEBUG);
	else if (cli->verbose == 1)
		log_set_level(LOG_LVL_INFO);
}
