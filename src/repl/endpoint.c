/* endpoint.c - parse SRC and DST arguments; see endpoint.h. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "repl/endpoint.h"
#include "repl/proto.h"
#include "base/banned.h"

static const struct {
	const char		*scheme;
	enum endpoint_kind	 kind;
} schemes[] = {
	{ "ssh://",	EP_SSH },
	{ "tcp://",	EP_TCP },
	{ "tls://",	EP_TLS },
};

/* Bytes that may never appear in a host or user name. */
static int
name_ok(const char *s, size_t n, const char *forbid)
{
	size_t i;

	if (n == 0 || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		if (iscntrl((unsigned char)s[i]) || s[i] == ' ' ||
		    (unsigned char)s[i] >= 0x80 ||
		    strchr(forbid, s[i]) != NULL)
			return 0;
	}
	return 1;
}

static int
port_ok(const char *s, size_t n)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0 || n > 5)
		return 0;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return 0;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

/* Parse the part after "scheme://" into ep. */
static int
parse_remote(struct endpoint *ep, const char *spec, const char *rest,
    enum endpoint_kind kind, struct as_err *err)
{
	const char *slash, *at, *hs, *he, *ps = NULL;
	size_t hl;

	if ((slash = strchr(rest, '/')) == NULL || slash == rest)
		return as_err_set(err, AS_E_USAGE, 0, "'%s': expected "
		    "%.*s[user@]host[:port]/path", spec,
		    (int)(rest - spec), spec);
	if (strlen(slash) > PROTO_PATH_MAX)
		return as_err_set(err, AS_E_USAGE, 0, "'%.40s...': path too "
		    "long", spec);
	at = memchr(rest, '@', (size_t)(slash - rest));
	hs = rest;
	if (at != NULL) {
		if (kind != EP_SSH)
			return as_err_set(err, AS_E_USAGE, 0, "'%s': a user "
			    "name is only meaningful for ssh://", spec);
		if (!name_ok(rest, (size_t)(at - rest), "/@[]:"))
			return as_err_set(err, AS_E_USAGE, 0, "'%s': bad user "
			    "name", spec);
		ep->user = xstrndup(rest, (size_t)(at - rest));
		hs = at + 1;
	}
	if (*hs == '[') {
		he = memchr(hs, ']', (size_t)(slash - hs));
		if (he == NULL)
			return as_err_set(err, AS_E_USAGE, 0, "'%s': missing "
			    "']' after the IPv6 address", spec);
		hs++;
		hl = (size_t)(he - hs);
		if (!name_ok(hs, hl, "/@[]") ||
		    strspn(hs, "0123456789abcdefABCDEF:.") < hl)
			return as_err_set(err, AS_E_USAGE, 0, "'%s': bad "
			    "IPv6 address", spec);
		he++;
		if (*he == ':')
			ps = he + 1;
		else if (he != slash)
			return as_err_set(err, AS_E_USAGE, 0, "'%s': "
			    "expected ':port' or '/' after ']'", spec);
	} else {
		he = memchr(hs, ':', (size_t)(slash - hs));
		if (he != NULL)
			ps = he + 1;
		else
			he = slash;
		hl = (size_t)(he - hs);
		if (hl > 0 && hs[0] == '-')
			return as_err_set(err, AS_E_USAGE, 0, "'%s': host "
			    "names starting with '-' are refused", spec);
		if (!name_ok(hs, hl, "/@[]:"))
			return as_err_set(err, AS_E_USAGE, 0, "'%s': bad or "
			    "missing host name", spec);
	}
	if (hl > 255)
		return as_err_set(err, AS_E_USAGE, 0, "'%.40s...': host name "
		    "too long", spec);
	if (ps != NULL) {
		if (!port_ok(ps, (size_t)(slash - ps)))
			return as_err_set(err, AS_E_USAGE, 0, "'%s': bad "
			    "port", spec);
		ep->port = xstrndup(ps, (size_t)(slash - ps));
	} else if (kind != EP_SSH)
		ep->port = xstrdup(ENDPOINT_PORT);
	ep->host = xstrndup(hs, hl);
	ep->path = xstrdup(slash);
	ep->kind = kind;
	return 0;
}

int
endpoint_parse(struct endpoint *ep, const char *spec, struct as_err *err)
{
	size_t i, n;

	memset(ep, 0, sizeof(*ep));
	if (spec == NULL || *spec == '\0')
		return as_err_set(err, AS_E_USAGE, 0, "empty dataset path");
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		n = strlen(schemes[i].scheme);
		if (strncmp(spec, schemes[i].scheme, n) != 0)
			continue;
		if (parse_remote(ep, spec, spec + n, schemes[i].kind,
		    err) == -1) {
			endpoint_release(ep);
			return -1;
		}
		ep->spec = xstrdup(spec);
		return 0;
	}
	if (strncmp(spec, "vol:", 4) == 0) {
		if (spec[4] == '\0')
			return as_err_set(err, AS_E_USAGE, 0, "'%s': expected "
			    "vol:PATH", spec);
		ep->kind = EP_VOL;
		ep->spec = xstrdup(spec);
		ep->path = xstrdup(spec + 4);
		return 0;
	}
	if (strncmp(spec, "zfs:", 4) == 0) {
		if (spec[4] == '\0' || spec[4] == '/' || spec[4] == '-')
			return as_err_set(err, AS_E_USAGE, 0, "'%s': expected "
			    "zfs:POOL/DATASET", spec);
		ep->kind = EP_ZFS;
		ep->spec = xstrdup(spec);
		ep->path = xstrdup(spec + 4);
		return 0;
	}
	if (strncmp(spec, "btrfs:", 6) == 0) {
		if (spec[6] != '/')
			return as_err_set(err, AS_E_USAGE, 0, "'%s': expected "
			    "btrfs:/ABSOLUTE/PATH of a subvolume", spec);
		ep->kind = EP_BTRFS;
		ep->spec = xstrdup(spec);
		ep->path = xstrdup(spec + 6);
		return 0;
	}
	if (strstr(spec, "://") != NULL &&
	    strchr(spec, '/') == strstr(spec, "://") + 1)
		return as_err_set(err, AS_E_USAGE, 0, "'%s': unknown "
		    "transport (ssh://, tcp:// or tls://; write './%s' for "
		    "a local directory of that name)", spec, spec);
	ep->kind = EP_LOCAL;
	ep->spec = xstrdup(spec);
	ep->path = xstrdup(spec);
	return 0;
}

int
endpoint_is_remote(const struct endpoint *ep)
{
	return ep->kind == EP_SSH || ep->kind == EP_TCP || ep->kind == EP_TLS;
}

void
endpoint_release(struct endpoint *ep)
{
	if (ep == NULL)
		return;
	free(ep->spec);
	free(ep->path);
	free(ep->host);
	free(ep->user);
	free(ep->port);
	memset(ep, 0, sizeof(*ep));
}
