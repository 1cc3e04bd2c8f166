/* endpoint.c - parse SRC and DST arguments; see endpoint.h. */
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "repl/endpoint.h"
#include "base/banned.h"

static const char *const later[] = {
	"ssh://", "tcp://", "tls://", "zfs:", "btrfs:", "vol:",
};

int
endpoint_parse(struct endpoint *ep, const char *spec, struct as_err *err)
{
	size_t i, n;

	memset(ep, 0, sizeof(*ep));
	if (spec == NULL || *spec == '\0')
		return as_err_set(err, AS_E_USAGE, 0, "empty dataset path");
	for (i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
		n = strlen(later[i]);
		if (strncmp(spec, later[i], n) != 0)
			continue;
		if (later[i][n - 1] == '/')
			return as_err_set(err, AS_E_USAGE, 0, "'%s': %.*s "
			    "endpoints are not supported yet", spec,
			    (int)strcspn(later[i], ":"), later[i]);
		return as_err_set(err, AS_E_USAGE, 0, "'%s': %.*s datasets "
		    "are not supported yet (write './%s' for a local "
		    "directory of that name)", spec,
		    (int)strcspn(later[i], ":"), later[i], spec);
	}
	ep->kind = EP_LOCAL;
	ep->spec = xstrdup(spec);
	ep->path = xstrdup(spec);
	return 0;
}

void
endpoint_release(struct endpoint *ep)
{
	if (ep == NULL)
		return;
	free(ep->spec);
	free(ep->path);
	memset(ep, 0, sizeof(*ep));
}
