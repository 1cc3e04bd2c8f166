/* path.c - path rules and order; see path.h. */
#include <string.h>

#include "format/path.h"
#include "base/banned.h"

int
path_check(const char *p, size_t len, int allow_root, struct as_err *err)
{
	size_t i, start = 0, clen;

	if (len == 0) {
		if (allow_root)
			return 0;
		return as_err_set(err, AS_E_UNSAFE_PATH, 0,
		    "empty path where an entry was expected");
	}
	if (len > AS_PATH_MAX)
		return as_err_set(err, AS_E_LIMIT, 0,
		    "path of %zu bytes exceeds %d", len, AS_PATH_MAX);
	if (memchr(p, '\0', len) != NULL)
		return as_err_set(err, AS_E_UNSAFE_PATH, 0,
		    "path contains a NUL byte");
	for (i = 0; i <= len; i++) {
		if (i < len && p[i] != '/')
			continue;
		clen = i - start;
		if (clen == 0)
			return as_err_set(err, AS_E_UNSAFE_PATH, 0,
			    "path '%.*s' has an empty component",
			    (int)(len > 200 ? 200 : len), p);
		if ((clen == 1 && p[start] == '.') ||
		    (clen == 2 && p[start] == '.' && p[start + 1] == '.'))
			return as_err_set(err, AS_E_UNSAFE_PATH, 0,
			    "path '%.*s' has a '.' or '..' component",
			    (int)(len > 200 ? 200 : len), p);
		if (clen > AS_NAME_MAX)
			return as_err_set(err, AS_E_LIMIT, 0,
			    "path component of %zu bytes exceeds %d", clen,
			    AS_NAME_MAX);
		if (start == 0 && clen == sizeof(AS_PRIVATE_DIR) - 1 &&
		    memcmp(p, AS_PRIVATE_DIR, clen) == 0)
			return as_err_set(err, AS_E_UNSAFE_PATH, 0,
			    "path '%.*s' is inside the private '%s' directory",
			    (int)(len > 200 ? 200 : len), p, AS_PRIVATE_DIR);
		start = i + 1;
	}
	return 0;
}

int
path_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i, n = alen < blen ? alen : blen;
	unsigned char ca, cb;

	for (i = 0; i < n; i++) {
		ca = (unsigned char)a[i];
		cb = (unsigned char)b[i];
		if (ca == cb)
			continue;
		/* '/' ends a component: it sorts before every name byte. */
		if (ca == '/')
			return -1;
		if (cb == '/')
			return 1;
		return ca < cb ? -1 : 1;
	}
	if (alen == blen)
		return 0;
	return alen < blen ? -1 : 1;
}

size_t
path_parent_len(const char *p, size_t len)
{
	while (len > 0 && p[len - 1] != '/')
		len--;
	return len > 0 ? len - 1 : 0;
}
