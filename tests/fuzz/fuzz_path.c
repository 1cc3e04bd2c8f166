/*
 * fuzz_path.c - libFuzzer target for path_check(), path_cmp() and
 * path_parent_len() (path.h), against an independent statement of the
 * rules: every accepted path is relative, has no empty, "." or ".."
 * component, no NUL, bounded lengths and no private first component, and
 * every path with those properties is accepted.
 *
 * Input: byte 0 selects allow_root (bit 0); the rest is split at the
 * first 0xff byte into path a and a second path b for the order checks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/path.h"
#include "base/banned.h"

static void
fail(const char *what, const char *p, size_t len)
{
	fprintf(stderr, "fuzz_path: property broken: %s: '%.*s' (%zu bytes)\n",
	    what, (int)(len > 300 ? 300 : len), p, len);
	abort();
}

/*
 * The rules of path.h, written out again: 0 when allowed, else the error
 * class of the first broken rule (lengths are LIMIT, the rest UNSAFE_PATH).
 */
static enum as_errcode
model(const char *p, size_t len, int allow_root)
{
	size_t i, start, end;

	if (len == 0)
		return allow_root ? AS_E_OK : AS_E_UNSAFE_PATH;
	if (len > AS_PATH_MAX)
		return AS_E_LIMIT;
	for (i = 0; i < len; i++)
		if (p[i] == '\0')
			return AS_E_UNSAFE_PATH;
	for (start = 0; start <= len; start = end + 1) {
		for (end = start; end < len && p[end] != '/'; end++)
			;
		if (end == start || (end - start == 1 && p[start] == '.') ||
		    (end - start == 2 && p[start] == '.' &&
		    p[start + 1] == '.'))
			return AS_E_UNSAFE_PATH;
		if (end - start > AS_NAME_MAX)
			return AS_E_LIMIT;
		if (start == 0 && end == strlen(AS_PRIVATE_DIR) &&
		    memcmp(p, AS_PRIVATE_DIR, end) == 0)
			return AS_E_UNSAFE_PATH;
	}
	return AS_E_OK;
}

/* Component-wise comparison, the way path_cmp() documents it. */
static int
model_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i = 0, j = 0, ea, eb, n;
	int r;

	for (;;) {
		if (i >= alen && j >= blen)
			return 0;
		if (i >= alen)
			return -1;
		if (j >= blen)
			return 1;
		for (ea = i; ea < alen && a[ea] != '/'; ea++)
			;
		for (eb = j; eb < blen && b[eb] != '/'; eb++)
			;
		n = ea - i < eb - j ? ea - i : eb - j;
		if ((r = memcmp(a + i, b + j, n)) != 0)
			return r < 0 ? -1 : 1;
		if (ea - i != eb - j)
			return ea - i < eb - j ? -1 : 1;
		/* same component: "a" ends, "a/" continues */
		if (ea == alen && eb == blen)
			return 0;
		if (ea == alen)
			return -1;
		if (eb == blen)
			return 1;
		i = ea + 1;
		j = eb + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *a, *b, *sep;
	size_t alen, blen, pl;
	struct as_err err;
	enum as_errcode want;
	int allow_root, rc, c1, c2;

	if (size == 0)
		return 0;
	allow_root = data[0] & 1;
	a = (const char *)data + 1;
	alen = size - 1;
	sep = memchr(a, 0xff, alen);
	b = sep != NULL ? sep + 1 : a;
	blen = sep != NULL ? alen - (size_t)(sep + 1 - a) : alen;
	if (sep != NULL)
		alen = (size_t)(sep - a);

	as_err_clear(&err);
	rc = path_check(a, alen, allow_root, &err);
	want = model(a, alen, allow_root);
	if ((rc == 0) != (want == AS_E_OK))
		fail(rc == 0 ? "accepted a path the rules forbid" :
		    "rejected a path the rules allow", a, alen);
	if (rc == -1 && err.code != want)
		fail("rejected with an unexpected error class", a, alen);

	/* order: a total order that agrees with the component model */
	c1 = path_cmp(a, alen, b, blen);
	c2 = path_cmp(b, blen, a, alen);
	if ((c1 > 0) - (c1 < 0) != -((c2 > 0) - (c2 < 0)))
		fail("path_cmp is not antisymmetric", a, alen);
	if (path_cmp(a, alen, a, alen) != 0)
		fail("path_cmp(a, a) != 0", a, alen);
	if (path_check(a, alen, 1, &err) == 0 &&
	    path_check(b, blen, 1, &err) == 0 &&
	    (c1 > 0) - (c1 < 0) != model_cmp(a, alen, b, blen))
		fail("path_cmp disagrees with the component order", a, alen);

	pl = path_parent_len(a, alen);
	if (alen > 0 && pl >= alen)
		fail("parent not shorter than the path", a, alen);
	if (pl > 0 && a[pl] != '/')
		fail("parent does not end at a '/'", a, alen);
	return 0;
}
