/* t_format.c - stream and catalog codecs: round trips, truncation, flips. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "format/catalog.h"
#include "format/path.h"
#include "format/stream.h"

/* A small stream with every record type. */
static void
build_stream(struct buf *out)
{
	struct stream_enc e;
	struct as_begin b = { .version = AS_STREAM_VERSION, .kind = AS_KIND_DIR,
	    .block_size = AS_BLOCK_DEFAULT, .base_guid = 0, .target_guid = 42,
	    .time_ns = 1, .name = "monday", .name_len = 6, .source = "/srv",
	    .source_len = 4 };
	struct as_entry root = { .op = AS_OP_ATTR, .mode = S_IFDIR | 0755 };
	struct as_entry f = { .op = AS_OP_CREATE, .flags = AS_EF_XATTRS,
	    .mode = S_IFREG | 0644, .nxattr = 1, .size = 10000,
	    .path = "a/b", .path_len = 3 };
	struct as_xattr x = { .name = "user.k", .name_len = 6,
	    .value = (const uint8_t *)"v", .value_len = 1 };
	struct as_entry l = { .op = AS_OP_CREATE, .mode = S_IFLNK | 0777,
	    .path = "a/l", .path_len = 3, .aux = "../x", .aux_len = 4 };
	static uint8_t data[100];

	stream_enc_init(&e, out);
	stream_enc_begin(&e, &b);
	root.path = "";
	stream_enc_entry(&e, &root);
	stream_enc_entry(&e, &f);
	stream_enc_xattr(&e, &x);
	stream_enc_data(&e, 0, data, sizeof(data));
	stream_enc_hole(&e, 100, 9000);
	stream_enc_data(&e, 9100, data, sizeof(data));
	stream_enc_entry(&e, &l);
	stream_enc_end(&e);
}

/* Decode a whole buffer, feeding it in chunks of step bytes. */
static int
decode_all(const uint8_t *p, size_t len, size_t step, int *nrec,
    struct as_err *err)
{
	struct stream_dec d;
	struct as_rec r;
	size_t off = 0, used, n;
	int rc = 0;

	*nrec = 0;
	stream_dec_init(&d);
	while (off < len) {
		n = len - off < step ? len - off : step;
		rc = stream_dec_feed(&d, p + off, n, &used, &r, err);
		off += used;
		if (rc == -1)
			goto out;
		if (rc == 1)
			(*nrec)++;
	}
	rc = stream_dec_finish(&d, err);
out:
	stream_dec_release(&d);
	return rc;
}

static void
test_stream_roundtrip(void **state)
{
	struct buf b = BUF_INIT;
	struct as_err err;
	int n;

	(void)state;
	build_stream(&b);
	assert_int_equal(decode_all(b.data, b.len, b.len, &n, &err), 0);
	assert_int_equal(n, 9);
	assert_int_equal(decode_all(b.data, b.len, 1, &n, &err), 0);
	assert_int_equal(n, 9);
	buf_release(&b);
}

static void
test_stream_truncation_every_byte(void **state)
{
	struct buf b = BUF_INIT;
	struct as_err err;
	size_t cut;
	int n;

	(void)state;
	build_stream(&b);
	for (cut = 0; cut < b.len; cut++) {
		assert_int_equal(decode_all(b.data, cut, 7, &n, &err), -1);
		assert_int_equal(err.code, AS_E_TRUNCATED);
	}
	buf_release(&b);
}

static void
test_stream_bitflip_every_bit(void **state)
{
	struct buf b = BUF_INIT;
	struct as_err err;
	size_t i;
	int bit, n;

	(void)state;
	build_stream(&b);
	for (i = 0; i < b.len; i++)
		for (bit = 0; bit < 8; bit++) {
			b.data[i] ^= (uint8_t)(1 << bit);
			assert_int_equal(decode_all(b.data, b.len, 4096, &n,
			    &err), -1);
			b.data[i] ^= (uint8_t)(1 << bit);
		}
	buf_release(&b);
}

static void
test_stream_trailing_garbage(void **state)
{
	struct buf b = BUF_INIT;
	struct as_err err;
	int n;

	(void)state;
	build_stream(&b);
	buf_add_u8(&b, 0);
	assert_int_equal(decode_all(b.data, b.len, 3, &n, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	buf_release(&b);
}

/*
 * A receiver's resume log (dir_recv.c): the same records, DATA payloads
 * replaced by their length.  Re-frame b that way into out.
 */
static void
elide_data(const struct buf *b, struct buf *out, uint32_t bad_len)
{
	struct rec_dec rd;
	struct rec r;
	struct as_err err;
	uint64_t chain = REC_SEED_STREAM;
	size_t off = 0, used;
	uint8_t l4[4];

	rec_dec_init(&rd, REC_SEED_STREAM, "stream");
	while (off < b->len) {
		assert_int_equal(rec_dec_feed(&rd, b->data + off, b->len - off,
		    &used, &r, &err), 1);
		off += used;
		if (r.type == AS_REC_DATA) {
			put_le32(l4, bad_len != 0 ? bad_len : r.len - 8);
			rec_encode(out, &chain, r.type, r.payload, 8, l4, 4);
		} else
			rec_encode(out, &chain, r.type, r.payload, r.len, NULL,
			    0);
	}
	rec_dec_release(&rd);
}

static int
decode_elided(const uint8_t *p, size_t len, int *ndata, struct as_err *err)
{
	struct stream_dec d;
	struct as_rec r;
	size_t off = 0, used;
	int rc = 0;

	*ndata = 0;
	stream_dec_init(&d);
	d.data_elided = 1;
	while (off < len) {
		rc = stream_dec_feed(&d, p + off, len - off, &used, &r, err);
		off += used;
		if (rc == -1)
			goto out;
		if (rc == 1 && r.type == AS_REC_DATA) {
			assert_null(r.u.data.data);
			assert_int_equal(r.u.data.len, 100);
			(*ndata)++;
		}
	}
	rc = stream_dec_finish(&d, err);
out:
	stream_dec_release(&d);
	return rc;
}

static void
test_stream_data_elided(void **state)
{
	struct buf b = BUF_INIT, e = BUF_INIT, z = BUF_INIT, big = BUF_INIT;
	struct as_err err;
	int n;

	(void)state;
	build_stream(&b);
	elide_data(&b, &e, 0);
	assert_true(e.len < b.len);
	assert_int_equal(decode_elided(e.data, e.len, &n, &err), 0);
	assert_int_equal(n, 2);
	/* a real DATA record, or a length above the maximum: refused */
	assert_int_equal(decode_elided(b.data, b.len, &n, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	elide_data(&b, &z, UINT32_MAX);
	assert_int_equal(decode_elided(z.data, z.len, &n, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	elide_data(&b, &big, AS_DATA_MAX + 1);
	assert_int_equal(decode_elided(big.data, big.len, &n, &err), -1);
	/* the plain decoder does not take an elided stream */
	assert_int_equal(decode_all(e.data, e.len, e.len, &n, &err), -1);
	buf_release(&b);
	buf_release(&e);
	buf_release(&z);
	buf_release(&big);
}

static void
test_path_rules(void **state)
{
	static const struct { const char *p; int ok; } cases[] = {
		{ "a", 1 }, { "a/b", 1 }, { "a b/\x1b[2J", 1 },
		{ "/etc/x", 0 }, { "../x", 0 }, { "a/../../x", 0 },
		{ "a/./../..", 0 }, { "//x", 0 }, { "a//b", 0 }, { ".", 0 },
		{ "..", 0 }, { "a/", 0 }, { "a/..", 0 }, { "a/.", 0 },
		{ ".autosync", 0 }, { ".autosync/x", 0 }, { "x/.autosync", 1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(path_check(cases[i].p, strlen(cases[i].p), 0,
		    NULL) == 0, cases[i].ok);
	assert_int_equal(path_check("", 0, 0, NULL), -1);
	assert_int_equal(path_check("", 0, 1, NULL), 0);
	assert_true(path_cmp("a/b", 3, "a-b", 3) < 0);
	assert_true(path_cmp("a", 1, "a/b", 3) < 0);
	assert_true(path_cmp("a/z", 3, "aa", 2) < 0);
}

static void
test_catalog_roundtrip(void **state)
{
	struct catalog c, d;
	struct cat_entry st;
	struct cat_entry_in in;
	struct buf out = BUF_INIT, xb = BUF_INIT;
	struct as_err err;
	static uint8_t hashes[70000 * CAT_HASH_LEN];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(hashes); i++)
		hashes[i] = (uint8_t)(i * 7);
	catalog_init(&c);
	c.hdr.kind = AS_KIND_DIR;
	c.hdr.block_size = AS_BLOCK_DEFAULT;
	c.hdr.guid = 7;
	memcpy(c.hdr.name, "snap", 5);
	memset(&st, 0, sizeof(st));
	memset(&in, 0, sizeof(in));
	in.st = &st;
	st.mode = S_IFDIR | 0755;
	in.path = "";
	catalog_add(&c, &in);
	st.mode = S_IFREG | 0644;
	st.ino = 99;
	in.path = "big";
	in.path_len = 3;
	in.hashes = hashes;
	in.nblocks = 70000;
	xattr_blob_add(&xb, "user.a", 6, "1", 1);
	in.xattrs = xb.data;
	in.xattr_len = xb.len;
	catalog_add(&c, &in);
	catalog_encode(&c, &out);
	catalog_init(&d);
	assert_int_equal(catalog_decode(&d, out.data, out.len, &err), 0);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.ents[1].nblocks, 70000);
	assert_memory_equal(catalog_hashes_of(&d, &d.ents[1]), hashes,
	    sizeof(hashes));
	assert_int_equal(catalog_find(&d, "big", 3), 1);
	assert_int_equal(catalog_find_ino(&d, 99), 1);
	assert_int_equal(catalog_find(&d, "nope", 4), -1);
	catalog_release(&d);
	for (i = 0; i < out.len; i += 97) {
		catalog_init(&d);
		assert_int_equal(catalog_decode(&d, out.data, i, &err), -1);
	}
	catalog_release(&c);
	buf_release(&out);
	buf_release(&xb);
}

/*
 * cat_reader yields what catalog_decode does, one entry at a time (the
 * 70000 hashes come in a continuation record), a symlink's target after
 * its path, and fails on every truncation, as catalog_decode does.
 */
static int
read_all(const struct buf *out, size_t len, size_t *n, struct as_err *err)
{
	struct cat_reader rd;
	const struct cat_entry *e;
	int rc;

	*n = 0;
	if (cat_reader_open(&rd, out->data, len, NULL, NULL, err) == -1)
		return -1;
	while ((rc = cat_reader_next(&rd, &e, err)) == 1) {
		if (*n == 1) {
			assert_int_equal(e->nblocks, 70000);
			assert_int_equal(catalog_hashes_of(&rd.win,
			    (struct cat_entry *)(uintptr_t)e)[69999 *
			    CAT_HASH_LEN], (uint8_t)(69999 * CAT_HASH_LEN * 7));
		}
		if (*n == 2) {
			assert_int_equal(e->aux_len, 3);
			assert_string_equal(catalog_aux(&rd.win, e), "big");
			assert_string_equal(catalog_path(&rd.win, e), "link");
		}
		(*n)++;
	}
	cat_reader_release(&rd);
	return rc;
}

static void
test_catalog_reader(void **state)
{
	struct catalog c;
	struct cat_entry st;
	struct cat_entry_in in;
	struct buf out = BUF_INIT;
	struct as_err err;
	static uint8_t hashes[70000 * CAT_HASH_LEN];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(hashes); i++)
		hashes[i] = (uint8_t)(i * 7);
	catalog_init(&c);
	c.hdr.kind = AS_KIND_DIR;
	c.hdr.block_size = AS_BLOCK_DEFAULT;
	c.hdr.guid = 8;
	memcpy(c.hdr.name, "snap", 5);
	memset(&st, 0, sizeof(st));
	memset(&in, 0, sizeof(in));
	in.st = &st;
	st.mode = S_IFDIR | 0755;
	in.path = "";
	catalog_add(&c, &in);
	st.mode = S_IFREG | 0644;
	st.flags = CAT_EF_SAME;		/* in memory only: never saved */
	in.path = "big";
	in.path_len = 3;
	in.hashes = hashes;
	in.nblocks = 70000;
	catalog_add(&c, &in);
	st.mode = S_IFLNK | 0777;
	st.flags = 0;
	in.path = "link";
	in.path_len = 4;
	in.aux = "big";
	in.aux_len = 3;
	in.hashes = NULL;
	in.nblocks = 0;
	catalog_add(&c, &in);
	assert_string_equal(catalog_aux(&c, &c.ents[2]), "big");
	assert_string_equal(catalog_aux(&c, &c.ents[1]), "");
	catalog_encode(&c, &out);
	assert_int_equal(read_all(&out, out.len, &n, &err), 0);
	assert_int_equal(n, 3);
	catalog_release(&c);
	catalog_init(&c);
	assert_int_equal(catalog_decode(&c, out.data, out.len, &err), 0);
	assert_int_equal(c.ents[1].flags & CAT_EF_SAME, 0);
	catalog_release(&c);
	for (i = 0; i < out.len; i += 97)
		assert_int_equal(read_all(&out, i, &n, &err), -1);
	buf_release(&out);
}

/* cat_writer's output: into a buffer, or failing at the nth call. */
struct sink {
	struct buf	out;
	int		calls;
	int		fail_at;	/* 0: never */
};

static int
sink_fn(void *arg, const void *p, size_t len)
{
	struct sink *k = arg;

	if (++k->calls == k->fail_at) {
		errno = ENOSPC;
		return -1;
	}
	buf_add(&k->out, p, len);
	return 0;
}

/*
 * The streaming writer makes the very bytes of catalog_encode() (so the
 * format is unchanged), in pieces, and refuses what would not decode.
 */
static void
test_catalog_writer(void **state)
{
	static uint8_t hashes[70000 * CAT_HASH_LEN];
	char path[32];
	struct catalog c, d;
	struct cat_entry st;
	struct cat_entry_in in;
	struct cat_writer w;
	struct buf whole = BUF_INIT;
	struct sink k;
	struct as_err err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(hashes); i++)
		hashes[i] = (uint8_t)(i * 13);
	catalog_init(&c);
	c.hdr.kind = AS_KIND_DIR;
	c.hdr.block_size = AS_BLOCK_DEFAULT;
	c.hdr.guid = 9;
	c.hdr.base_guid = 8;
	c.hdr.source = strdup("/srv/data");
	memcpy(c.hdr.name, "snap", 5);
	memset(&st, 0, sizeof(st));
	memset(&in, 0, sizeof(in));
	in.st = &st;
	st.mode = S_IFDIR | 0755;
	in.path = "";
	catalog_add(&c, &in);
	/* enough entries for several CAT_ENCODE_CHUNK pieces */
	for (i = 0; i < 20000; i++) {
		st.mode = S_IFREG | 0644;
		st.ino = i + 2;
		st.size = i * 1000;
		snprintf(path, sizeof(path), "f%06zu", i);
		in.path = path;
		in.path_len = strlen(path);
		in.xattrs = (const uint8_t *)"\x01\x00\x01\x00\x00\x00" "ab";
		in.xattr_len = i % 3 == 0 ? 8 : 0;
		in.hashes = i == 7 ? hashes : hashes + i;
		in.nblocks = i == 7 ? 70000 : (uint32_t)(i % 4);
		catalog_add(&c, &in);
	}
	/* no hashes in memory: written as zeros, as catalog_add keeps them */
	st.mode = S_IFREG | 0600;
	in.path = "z";
	in.path_len = 1;
	in.xattr_len = 0;
	in.hashes = NULL;
	in.nblocks = 3;
	catalog_add(&c, &in);
	catalog_encode(&c, &whole);

	memset(&k, 0, sizeof(k));
	cat_writer_init(&w, &c.hdr, sink_fn, &k);
	for (i = 0; i < c.n; i++) {
		memset(&in, 0, sizeof(in));
		in.st = &c.ents[i];
		in.path = catalog_path(&c, &c.ents[i]);
		in.path_len = c.ents[i].path_len;
		in.xattrs = catalog_xattrs(&c, &c.ents[i]);
		in.xattr_len = c.ents[i].xattr_len;
		in.nblocks = c.ents[i].nblocks;
		in.hashes = i == c.n - 1 ? NULL :
		    catalog_hashes_of(&c, &c.ents[i]);
		assert_int_equal(cat_writer_add(&w, &in), 0);
	}
	assert_int_equal(cat_writer_finish(&w), 0);
	cat_writer_release(&w);
	assert_true(k.calls > 2);
	assert_int_equal(k.out.len, whole.len);
	assert_memory_equal(k.out.data, whole.data, whole.len);
	catalog_init(&d);
	assert_int_equal(catalog_decode(&d, k.out.data, k.out.len, &err), 0);
	assert_int_equal(d.n, c.n);
	catalog_release(&d);
	buf_release(&k.out);

	/* out of order, or twice the same path: refused, and sticky */
	memset(&k, 0, sizeof(k));
	cat_writer_init(&w, &c.hdr, sink_fn, &k);
	memset(&in, 0, sizeof(in));
	in.st = &st;
	in.path = "b";
	in.path_len = 1;
	assert_int_equal(cat_writer_add(&w, &in), 0);
	in.path = "a";
	errno = 0;
	assert_int_equal(cat_writer_add(&w, &in), -1);
	assert_int_equal(errno, EINVAL);
	in.path = "c";
	assert_int_equal(cat_writer_add(&w, &in), -1);
	assert_int_equal(cat_writer_finish(&w), -1);
	cat_writer_release(&w);
	cat_writer_init(&w, &c.hdr, sink_fn, &k);
	in.path = "b";
	assert_int_equal(cat_writer_add(&w, &in), 0);
	assert_int_equal(cat_writer_add(&w, &in), -1);
	cat_writer_release(&w);
	buf_release(&k.out);

	/* a failed write: its errno, and nothing more is written */
	memset(&k, 0, sizeof(k));
	k.fail_at = 2;
	cat_writer_init(&w, &c.hdr, sink_fn, &k);
	for (i = 0; i < c.n; i++) {
		memset(&in, 0, sizeof(in));
		in.st = &c.ents[i];
		in.path = catalog_path(&c, &c.ents[i]);
		in.path_len = c.ents[i].path_len;
		if (cat_writer_add(&w, &in) == -1)
			break;
	}
	assert_true(i < c.n);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(cat_writer_finish(&w), -1);
	assert_int_equal(k.calls, 2);
	cat_writer_release(&w);
	buf_release(&k.out);
	buf_release(&whole);
	catalog_release(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_roundtrip),
		cmocka_unit_test(test_stream_truncation_every_byte),
		cmocka_unit_test(test_stream_bitflip_every_bit),
		cmocka_unit_test(test_stream_trailing_garbage),
		cmocka_unit_test(test_stream_data_elided),
		cmocka_unit_test(test_path_rules),
		cmocka_unit_test(test_catalog_roundtrip),
		cmocka_unit_test(test_catalog_reader),
		cmocka_unit_test(test_catalog_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
