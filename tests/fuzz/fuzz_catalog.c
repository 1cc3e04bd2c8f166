/*
 * fuzz_catalog.c - libFuzzer target for catalog_decode() (catalog.h).
 *
 * A catalog that decodes must be in order, findable by path, and survive
 * a round trip: encode(decode(x)) decodes again and re-encodes to the
 * same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/catalog.h"
#include "rechain.h"
#include "base/banned.h"

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_catalog: property broken: %s\n", what);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct catalog c, c2;
	struct cat_header h;
	struct as_err err;
	struct buf once = BUF_INIT, twice = BUF_INIT;
	size_t i;

	as_err_clear(&err);
	if (catalog_decode_header(&h, data, size, &err) == 0)
		cat_header_release(&h);
	catalog_init(&c);
	if (catalog_decode(&c, data, size, &err) == -1) {
		if (err.code == AS_E_OK || err.msg[0] == '\0')
			fail("rejected without an error class or message");
		catalog_release(&c);
		return 0;
	}
	if (catalog_check_order(&c, &err) == -1)
		fail("decoded catalog is out of order");
	for (i = 0; i < c.n; i++) {
		if (catalog_find(&c, catalog_path(&c, &c.ents[i]),
		    c.ents[i].path_len) != (long)i)
			fail("catalog_find misses a decoded entry");
		if (catalog_find_ino(&c, c.ents[i].ino) < 0)
			fail("catalog_find_ino misses a decoded entry");
	}
	catalog_encode(&c, &once);
	catalog_init(&c2);
	if (catalog_decode(&c2, once.data, once.len, &err) == -1) {
		fprintf(stderr, "fuzz_catalog: %s\n", err.msg);
		fail("re-encoded catalog does not decode");
	}
	catalog_encode(&c2, &twice);
	if (once.len != twice.len || memcmp(once.data, twice.data,
	    once.len) != 0)
		fail("encode(decode(encode(decode(x)))) differs");
	catalog_release(&c);
	catalog_release(&c2);
	buf_release(&once);
	buf_release(&twice);
	return 0;
}

size_t
LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
    unsigned int seed)
{
	return fuzz_mutate_rechained(data, size, max_size, seed,
	    REC_SEED_CATALOG);
}
