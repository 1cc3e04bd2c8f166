/*
 * t_proto.c - the replication protocol's messages (repl/proto.h) and the
 * passive side's access rules (repl/serve.h).
 *
 * Every message is encoded, decoded and compared; every proper prefix of
 * an encoding and every encoding with a byte appended must be refused
 * with the output left untouched; lengths and counts above their bounds
 * are refused.  The greeting is run over a socketpair against a banner, a
 * reflected greeting and a peer that chooses what was not offered.  The
 * serve.conf parser is checked for its exact messages, and serve_resolve
 * for confinement beneath roots.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "repl/proto.h"
#include "repl/serve.h"
#include "transport/conn.h"
#include "transport/frame.h"
#include "transport/keys.h"
#include "base/banned.h"

#define FILL	0xa5

/* ---- helpers ---------------------------------------------------------- */

/* Decode p/len into a fresh object of size sz through a common shape. */
typedef int (*dec_fn)(void *out, const uint8_t *p, size_t len,
    struct as_err *err);

static int
dec_hello(void *o, const uint8_t *p, size_t len, struct as_err *err)
{
	return proto_dec_hello(o, p, len, err);
}

static int
dec_request(void *o, const uint8_t *p, size_t len, struct as_err *err)
{
	return proto_dec_request(o, p, len, err);
}

static int
dec_result(void *o, const uint8_t *p, size_t len, struct as_err *err)
{
	return proto_dec_result(o, p, len, err);
}

static int
dec_end(void *o, const uint8_t *p, size_t len, struct as_err *err)
{
	return proto_dec_end(o, p, len, err);
}

static int
dec_commit(void *o, const uint8_t *p, size_t len, struct as_err *err)
{
	return proto_dec_commit(o, p, len, err);
}

/*
 * Every proper prefix of enc, and enc with one byte appended, is
 * MALFORMED and leaves the output as it was.
 */
static void
check_prefixes(dec_fn dec, const struct buf *enc, size_t sz,
    const char *name)
{
	struct as_err err;
	uint8_t *out, *pat, *p;
	char want[128];
	size_t k;

	out = malloc(sz);
	pat = malloc(sz);
	assert_non_null(out);
	assert_non_null(pat);
	memset(pat, FILL, sz);
	/* A copy of exactly k bytes, so that ASan sees any over-read. */
	for (k = 0; k < enc->len; k++) {
		p = malloc(k > 0 ? k : 1);
		assert_non_null(p);
		memcpy(p, enc->data, k);
		memset(out, FILL, sz);
		as_err_clear(&err);
		assert_int_equal(dec(out, p, k, &err), -1);
		assert_int_equal(err.code, AS_E_MALFORMED);
		assert_memory_equal(out, pat, sz);
		free(p);
	}
	p = malloc(enc->len + 1);
	assert_non_null(p);
	memcpy(p, enc->data, enc->len);
	p[enc->len] = 0;
	memset(out, FILL, sz);
	as_err_clear(&err);
	assert_int_equal(dec(out, p, enc->len + 1, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	snprintf(want, sizeof(want), "%s message has 1 trailing bytes", name);
	assert_string_equal(err.msg, want);
	assert_memory_equal(out, pat, sz);
	free(p);
	free(out);
	free(pat);
}

/* Decode p/len expecting failure with code, output untouched. */
static void
check_refused(dec_fn dec, const uint8_t *p, size_t len, size_t sz,
    enum as_errcode code, const char *msg)
{
	struct as_err err;
	uint8_t *out, *pat;

	out = malloc(sz);
	pat = malloc(sz);
	assert_non_null(out);
	assert_non_null(pat);
	memset(out, FILL, sz);
	memset(pat, FILL, sz);
	as_err_clear(&err);
	assert_int_equal(dec(out, p, len, &err), -1);
	assert_int_equal(err.code, code);
	if (msg != NULL)
		assert_string_equal(err.msg, msg);
	assert_memory_equal(out, pat, sz);
	free(out);
	free(pat);
}

/* A string field of n bytes of 'x', raw (the encoders would clip it). */
static void
add_raw_str(struct buf *b, size_t n, char ch)
{
	size_t i;

	buf_add_u16(b, (uint16_t)n);
	for (i = 0; i < n; i++)
		buf_add_u8(b, (uint8_t)ch);
}

/* ---- HELLO ------------------------------------------------------------ */

static void
t_hello(void **state)
{
	struct proto_hello h, d;
	struct buf b = BUF_INIT;
	struct as_err err;

	(void)state;
	memset(&h, 0, sizeof(h));
	h.version = 7;
	h.min_version = 3;
	h.features = 0xdeadbeef;
	h.role = PROTO_ROLE_ACTIVE;
	snprintf(h.software, sizeof(h.software), "autosync 9.9");
	proto_enc_hello(&b, &h);
	assert_int_equal(b.len, 8 + 2 + 2 + 4 + 1 + 2 + strlen(h.software));
	assert_memory_equal(b.data, PROTO_MAGIC, 8);
	memset(&d, FILL, sizeof(d));
	as_err_clear(&err);
	assert_int_equal(proto_dec_hello(&d, b.data, b.len, &err), 0);
	assert_int_equal(d.version, 7);
	assert_int_equal(d.min_version, 3);
	assert_int_equal(d.features, 0xdeadbeef);
	assert_int_equal(d.role, PROTO_ROLE_ACTIVE);
	assert_string_equal(d.software, "autosync 9.9");
	check_prefixes(dec_hello, &b, sizeof(d), "HELLO");

	/* Bad magic: the first prefixes already say "not a greeting". */
	b.data[0] = 'X';
	check_refused(dec_hello, b.data, b.len, sizeof(d), AS_E_MALFORMED,
	    "not an autosync protocol greeting");
	b.data[0] = 'A';

	/* min_version above version. */
	h.min_version = 8;
	proto_enc_hello(&b, &h);
	check_refused(dec_hello, b.data, b.len, sizeof(d), AS_E_MALFORMED,
	    "HELLO with versions 8..7");

	/* software longer than 63 bytes, written by hand. */
	buf_reset(&b);
	buf_add(&b, PROTO_MAGIC, 8);
	buf_add_u16(&b, 1);
	buf_add_u16(&b, 1);
	buf_add_u32(&b, 0);
	buf_add_u8(&b, 1);
	add_raw_str(&b, 64, 'x');
	check_refused(dec_hello, b.data, b.len, sizeof(d), AS_E_MALFORMED,
	    NULL);
	/* 63 is fine. */
	buf_reset(&b);
	buf_add(&b, PROTO_MAGIC, 8);
	buf_add_u16(&b, 1);
	buf_add_u16(&b, 1);
	buf_add_u32(&b, 0);
	buf_add_u8(&b, 1);
	add_raw_str(&b, 63, 'x');
	assert_int_equal(proto_dec_hello(&d, b.data, b.len, &err), 0);
	assert_int_equal(strlen(d.software), 63);

	/* A NUL inside a string. */
	buf_reset(&b);
	buf_add(&b, PROTO_MAGIC, 8);
	buf_add_u16(&b, 1);
	buf_add_u16(&b, 1);
	buf_add_u32(&b, 0);
	buf_add_u8(&b, 1);
	buf_add_u16(&b, 3);
	buf_add(&b, "a\0b", 3);
	check_refused(dec_hello, b.data, b.len, sizeof(d), AS_E_MALFORMED,
	    NULL);

	/* The encoder clips an over-long field rather than overflow. */
	memset(&h, 0, sizeof(h));
	memset(h.software, 'y', sizeof(h.software) - 1);
	proto_enc_hello(&b, &h);
	assert_int_equal(proto_dec_hello(&d, b.data, b.len, &err), 0);
	assert_int_equal(strlen(d.software), sizeof(h.software) - 1);
	buf_release(&b);
}

/* ---- REQUEST ---------------------------------------------------------- */

static void
t_request(void **state)
{
	struct proto_request *q, *d;
	struct buf b = BUF_INIT;
	struct as_err err;
	uint8_t op;

	(void)state;
	q = calloc(1, sizeof(*q));
	d = calloc(1, sizeof(*d));
	assert_non_null(q);
	assert_non_null(d);
	for (op = OP_HOLD; op <= OP_REVERSE; op++) {
		memset(q, 0, sizeof(*q));
		q->op = op;
		q->flags = REQ_F_FORCE;
		q->guid = 0x0123456789abcdefull;
		q->zstd_level = -5;
		snprintf(q->path, sizeof(q->path), "/pool/data %u", op);
		snprintf(q->id, sizeof(q->id), "pull:host:/restore/%u", op);
		proto_enc_request(&b, q);
		memset(d, FILL, sizeof(*d));
		as_err_clear(&err);
		assert_int_equal(proto_dec_request(d, b.data, b.len, &err), 0);
		assert_int_equal(d->op, op);
		assert_int_equal(d->flags, REQ_F_FORCE);
		assert_true(d->guid == 0x0123456789abcdefull);
		assert_int_equal(d->zstd_level, -5);
		assert_string_equal(d->path, q->path);
		assert_string_equal(d->id, q->id);
		check_prefixes(dec_request, &b, sizeof(*d), "REQUEST");
	}

	/* Longest path and id. */
	memset(q, 0, sizeof(*q));
	q->op = OP_SEND;
	memset(q->path, 'p', PROTO_PATH_MAX);
	memset(q->id, 'i', PROTO_PATH_MAX);
	proto_enc_request(&b, q);
	assert_int_equal(proto_dec_request(d, b.data, b.len, &err), 0);
	assert_int_equal(strlen(d->path), PROTO_PATH_MAX);
	assert_int_equal(strlen(d->id), PROTO_PATH_MAX);

	/* A path of PROTO_PATH_MAX + 1 bytes, by hand. */
	buf_reset(&b);
	buf_add_u8(&b, OP_HOLD);
	buf_add_u32(&b, 0);
	buf_add_u64(&b, 0);
	buf_add_u8(&b, 0);
	add_raw_str(&b, PROTO_PATH_MAX + 1, 'p');
	add_raw_str(&b, 0, 'i');
	check_refused(dec_request, b.data, b.len, sizeof(*d), AS_E_MALFORMED,
	    NULL);

	/* Unknown op, unknown flags, empty path. */
	memset(q, 0, sizeof(*q));
	snprintf(q->path, sizeof(q->path), "/x");
	q->op = 0;
	proto_enc_request(&b, q);
	check_refused(dec_request, b.data, b.len, sizeof(*d),
	    AS_E_UNSUPPORTED, "unknown request 0");
	q->op = OP_REVERSE + 1;
	proto_enc_request(&b, q);
	check_refused(dec_request, b.data, b.len, sizeof(*d),
	    AS_E_UNSUPPORTED, "unknown request 6");
	q->op = OP_REVERSE;
	q->flags = REQ_F_SOURCE | REQ_F_FORCE;
	proto_enc_request(&b, q);
	assert_int_equal(proto_dec_request(d, b.data, b.len, &err), 0);
	assert_int_equal(d->flags, REQ_F_SOURCE | REQ_F_FORCE);
	q->flags = REQ_F_NESTED;
	proto_enc_request(&b, q);
	assert_int_equal(proto_dec_request(d, b.data, b.len, &err), 0);
	assert_int_equal(d->flags, REQ_F_NESTED);
	q->flags = REQ_F_TREE | REQ_F_SUBVOLS;
	proto_enc_request(&b, q);
	assert_int_equal(proto_dec_request(d, b.data, b.len, &err), 0);
	assert_int_equal(d->flags, REQ_F_TREE | REQ_F_SUBVOLS);
	/* a flag this side does not know: what an older server answers */
	q->flags = 0x40;
	proto_enc_request(&b, q);
	check_refused(dec_request, b.data, b.len, sizeof(*d),
	    AS_E_UNSUPPORTED, "unknown request flags 0x40");
	q->op = OP_HOLD;
	q->flags = 0x80 | REQ_F_RESUME;
	proto_enc_request(&b, q);
	check_refused(dec_request, b.data, b.len, sizeof(*d),
	    AS_E_UNSUPPORTED, "unknown request flags 0x82");
	q->flags = 0;
	q->path[0] = '\0';
	proto_enc_request(&b, q);
	check_refused(dec_request, b.data, b.len, sizeof(*d), AS_E_MALFORMED,
	    "request with an empty path");
	buf_release(&b);
	free(q);
	free(d);
}

/* ---- RESULT ----------------------------------------------------------- */

static void
t_result(void **state)
{
	struct proto_result r, d;
	struct buf b = BUF_INIT;
	struct as_err err, e;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.code = AS_E_CONFLICT;
	r.class = AS_PERM;
	r.flags = RES_F_HELD | RES_F_RECOVERED;
	r.guid = 1;
	r.base_guid = UINT64_MAX;
	r.bytes = 1ull << 40;
	r.time_ns = -42;
	snprintf(r.name, sizeof(r.name), "autosync_2024-01-01_00:00:00");
	snprintf(r.msg, sizeof(r.msg), "busy");
	proto_enc_result(&b, &r);
	memset(&d, FILL, sizeof(d));
	as_err_clear(&err);
	assert_int_equal(proto_dec_result(&d, b.data, b.len, &err), 0);
	assert_int_equal(d.code, AS_E_CONFLICT);
	assert_int_equal(d.class, AS_PERM);
	assert_int_equal(d.flags, RES_F_HELD | RES_F_RECOVERED);
	assert_true(d.guid == 1 && d.base_guid == UINT64_MAX);
	assert_true(d.bytes == 1ull << 40);
	assert_true(d.time_ns == -42);
	assert_string_equal(d.name, r.name);
	assert_string_equal(d.msg, "busy");
	check_prefixes(dec_result, &b, sizeof(d), "RESULT");

	/* Longest name and message. */
	memset(r.name, 'n', PROTO_NAME_MAX);
	r.name[PROTO_NAME_MAX] = '\0';
	memset(r.msg, 'm', PROTO_MSG_MAX);
	r.msg[PROTO_MSG_MAX] = '\0';
	proto_enc_result(&b, &r);
	assert_int_equal(proto_dec_result(&d, b.data, b.len, &err), 0);
	assert_int_equal(strlen(d.name), PROTO_NAME_MAX);
	assert_int_equal(strlen(d.msg), PROTO_MSG_MAX);

	/* A name one byte too long, by hand. */
	buf_reset(&b);
	buf_add_u8(&b, 0);
	buf_add_u8(&b, 0);
	buf_add_u32(&b, 0);
	buf_add_u64(&b, 0);
	buf_add_u64(&b, 0);
	buf_add_u64(&b, 0);
	buf_add_u64(&b, 0);
	add_raw_str(&b, PROTO_NAME_MAX + 1, 'n');
	add_raw_str(&b, 0, 'm');
	check_refused(dec_result, b.data, b.len, sizeof(d), AS_E_MALFORMED,
	    NULL);
	/* A message one byte too long. */
	buf_reset(&b);
	buf_add_u8(&b, 0);
	buf_add_u8(&b, 0);
	buf_add_u32(&b, 0);
	buf_add_u64(&b, 0);
	buf_add_u64(&b, 0);
	buf_add_u64(&b, 0);
	buf_add_u64(&b, 0);
	add_raw_str(&b, 0, 'n');
	add_raw_str(&b, PROTO_MSG_MAX + 1, 'm');
	check_refused(dec_result, b.data, b.len, sizeof(d), AS_E_MALFORMED,
	    NULL);

	/* A code from a newer peer reads as INTERNAL. */
	memset(&r, 0, sizeof(r));
	r.code = 200;
	proto_enc_result(&b, &r);
	assert_int_equal(proto_dec_result(&d, b.data, b.len, &err), 0);
	assert_int_equal(d.code, AS_E_INTERNAL);

	/* To and from errors, keeping the class. */
	as_err_set(&e, AS_E_TIMEOUT, 0, "no data for 60 s");
	proto_result_from_err(&r, &e);
	assert_int_equal(r.code, AS_E_TIMEOUT);
	assert_int_equal(r.class, AS_TEMP);
	proto_enc_result(&b, &r);
	assert_int_equal(proto_dec_result(&d, b.data, b.len, &err), 0);
	assert_int_equal(proto_result_to_err(&d, "host", &err), -1);
	assert_int_equal(err.code, AS_E_TIMEOUT);
	assert_string_equal(err.msg, "host: no data for 60 s");
	proto_result_from_err(&r, NULL);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.flags, 0);
	/* A "failed" result without a code is still an error. */
	memset(&d, 0, sizeof(d));
	assert_int_equal(proto_result_to_err(&d, "host", &err), -1);
	assert_int_equal(err.code, AS_E_INTERNAL);
	buf_release(&b);
}

/* ---- END_DATA and COMMIT ---------------------------------------------- */

static void
t_end_commit(void **state)
{
	struct proto_end e, ed;
	struct proto_commit c, cd;
	struct buf b = BUF_INIT;
	struct as_err err;

	(void)state;
	memset(&e, 0, sizeof(e));
	e.status = 1;
	e.code = AS_E_IO;
	e.bytes = 123456789;
	snprintf(e.msg, sizeof(e.msg), "read '/srv/x': Input/output error");
	proto_enc_end(&b, &e);
	memset(&ed, FILL, sizeof(ed));
	as_err_clear(&err);
	assert_int_equal(proto_dec_end(&ed, b.data, b.len, &err), 0);
	assert_int_equal(ed.status, 1);
	assert_int_equal(ed.code, AS_E_IO);
	assert_true(ed.bytes == 123456789);
	assert_string_equal(ed.msg, e.msg);
	check_prefixes(dec_end, &b, sizeof(ed), "END_DATA");
	e.status = 2;
	proto_enc_end(&b, &e);
	check_refused(dec_end, b.data, b.len, sizeof(ed), AS_E_MALFORMED,
	    "END_DATA with status 2");
	e.status = 0;
	e.code = 250;
	proto_enc_end(&b, &e);
	assert_int_equal(proto_dec_end(&ed, b.data, b.len, &err), 0);
	assert_int_equal(ed.code, AS_E_INTERNAL);

	memset(&c, 0, sizeof(c));
	c.ok = 1;
	c.held_guid = 0xfeedfacecafebeefull;
	proto_enc_commit(&b, &c);
	memset(&cd, FILL, sizeof(cd));
	assert_int_equal(proto_dec_commit(&cd, b.data, b.len, &err), 0);
	assert_int_equal(cd.ok, 1);
	assert_true(cd.held_guid == 0xfeedfacecafebeefull);
	assert_int_equal(cd.code, 0);
	assert_string_equal(cd.msg, "");
	check_prefixes(dec_commit, &b, sizeof(cd), "COMMIT");
	c.ok = 0;
	c.code = AS_E_NOSPACE;
	snprintf(c.msg, sizeof(c.msg), "no space left");
	proto_enc_commit(&b, &c);
	assert_int_equal(proto_dec_commit(&cd, b.data, b.len, &err), 0);
	assert_int_equal(cd.ok, 0);
	assert_int_equal(cd.code, AS_E_NOSPACE);
	assert_string_equal(cd.msg, "no space left");
	check_prefixes(dec_commit, &b, sizeof(cd), "COMMIT");
	c.ok = 2;
	proto_enc_commit(&b, &c);
	check_refused(dec_commit, b.data, b.len, sizeof(cd), AS_E_MALFORMED,
	    "COMMIT with ok = 2");
	buf_release(&b);
}

/* ---- SNAPLIST --------------------------------------------------------- */

static void
t_snaplist(void **state)
{
	struct proto_snap in[3], *v = NULL;
	struct buf b = BUF_INIT, t = BUF_INIT;
	struct as_err err;
	size_t n = 0, cap = 0, k, i;
	int more = -1;

	(void)state;
	memset(in, 0, sizeof(in));
	for (i = 0; i < 3; i++) {
		in[i].guid = 100 + i;
		in[i].base_guid = i == 0 ? 0 : 99 + i;
		in[i].time_ns = (int64_t)i * 1000000000;
		snprintf(in[i].name, sizeof(in[i].name), "snap%zu", i);
	}
	/* Two frames append; the first says more follow. */
	proto_enc_snaplist(&b, in, 2, 1);
	as_err_clear(&err);
	assert_int_equal(proto_dec_snaplist(&v, &n, &cap, &more, b.data,
	    b.len, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(more, 1);
	proto_enc_snaplist(&b, in + 2, 1, 0);
	assert_int_equal(proto_dec_snaplist(&v, &n, &cap, &more, b.data,
	    b.len, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(more, 0);
	assert_true(cap >= 3);
	for (i = 0; i < 3; i++) {
		assert_true(v[i].guid == in[i].guid);
		assert_true(v[i].base_guid == in[i].base_guid);
		assert_true(v[i].time_ns == in[i].time_ns);
		assert_string_equal(v[i].name, in[i].name);
	}

	/* An empty listing is one explicit frame. */
	proto_enc_snaplist(&b, NULL, 0, 0);
	assert_int_equal(b.len, 5);
	more = -1;
	assert_int_equal(proto_dec_snaplist(&v, &n, &cap, &more, b.data,
	    b.len, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(more, 0);

	/* Every prefix and a trailing byte: refused, nothing appended. */
	proto_enc_snaplist(&b, in, 3, 1);
	for (k = 0; k <= b.len; k++) {
		buf_reset(&t);
		buf_add(&t, b.data, k < b.len ? k : b.len);
		if (k == b.len)
			buf_add_u8(&t, 0);
		more = 7;
		as_err_clear(&err);
		assert_int_equal(proto_dec_snaplist(&v, &n, &cap, &more,
		    t.data, t.len, &err), -1);
		assert_int_equal(err.code, AS_E_MALFORMED);
		assert_int_equal(n, 3);
		assert_int_equal(more, 7);
	}
	assert_string_equal(err.msg, "SNAPLIST message has 1 trailing bytes");

	/* more must be 0 or 1. */
	proto_enc_snaplist(&b, in, 1, 0);
	b.data[0] = 2;
	assert_int_equal(proto_dec_snaplist(&v, &n, &cap, &more, b.data,
	    b.len, &err), -1);
	assert_string_equal(err.msg, "SNAPLIST with more = 2");

	/* A guid of 0 is not a snapshot. */
	proto_enc_snaplist(&b, in, 1, 0);
	put_le64(b.data + 5, 0);
	assert_int_equal(proto_dec_snaplist(&v, &n, &cap, &more, b.data,
	    b.len, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);

	/* A count the frame cannot hold, before any allocation. */
	buf_reset(&b);
	buf_add_u8(&b, 0);
	buf_add_u32(&b, UINT32_MAX);
	assert_int_equal(proto_dec_snaplist(&v, &n, &cap, &more, b.data,
	    b.len, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	assert_string_equal(err.msg, "SNAPLIST claims 4294967295 snapshots "
	    "in 5 bytes");
	/* More per frame than 8 batches, even with the bytes present. */
	buf_reset(&b);
	buf_add_u8(&b, 0);
	buf_add_u32(&b, PROTO_SNAPLIST_BATCH * 8 + 1);
	for (i = 0; i < PROTO_SNAPLIST_BATCH * 8 + 1; i++) {
		buf_add_u64(&b, i + 1);
		buf_add_u64(&b, 0);
		buf_add_u64(&b, 0);
		add_raw_str(&b, 0, 'x');
	}
	assert_int_equal(proto_dec_snaplist(&v, &n, &cap, &more, b.data,
	    b.len, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	assert_int_equal(n, 3);

	/* A name above PROTO_NAME_MAX. */
	buf_reset(&b);
	buf_add_u8(&b, 0);
	buf_add_u32(&b, 1);
	buf_add_u64(&b, 1);
	buf_add_u64(&b, 0);
	buf_add_u64(&b, 0);
	add_raw_str(&b, PROTO_NAME_MAX + 1, 'n');
	assert_int_equal(proto_dec_snaplist(&v, &n, &cap, &more, b.data,
	    b.len, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);

	/* The total across frames is bounded: LIMIT. */
	n = PROTO_SNAPLIST_MAX - 1;
	proto_enc_snaplist(&b, in, 2, 1);
	assert_int_equal(proto_dec_snaplist(&v, &n, &cap, &more, b.data,
	    b.len, &err), -1);
	assert_int_equal(err.code, AS_E_LIMIT);
	assert_int_equal(n, PROTO_SNAPLIST_MAX - 1);
	free(v);
	buf_release(&b);
	buf_release(&t);
}

static void
t_type_name(void **state)
{
	char tb[16];

	(void)state;
	assert_string_equal(proto_type_name(PT_HELLO, tb, sizeof(tb)),
	    "HELLO");
	assert_string_equal(proto_type_name(PT_ZDATA, tb, sizeof(tb)),
	    "ZDATA");
	assert_string_equal(proto_type_name(0, tb, sizeof(tb)), "type 0");
	assert_string_equal(proto_type_name(77, tb, sizeof(tb)), "type 77");
}

/* The engine prefix of a request path: a table of paths. */
static void
t_engine_prefix(void **state)
{
	static const struct {
		const char	*path;
		size_t		 n;
	} v[] = {
		{ "vol:/srv/vm.img", 4 },
		{ "vol:relative.img", 4 },
		{ "zfs:tank/a", 4 },
		{ "btrfs:/mnt/p/s", 6 },
		{ "/srv/data", 0 },
		{ "/vol:/x", 0 },	/* the URL's slash is the client's */
		{ "volume", 0 },
		{ "VOL:/x", 0 },
		{ "", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(proto_engine_prefix(v[i].path), v[i].n);
}

/* ---- the greeting over a socketpair ----------------------------------- */

struct pair {
	struct conn	*a;	/* the side under test */
	struct conn	*b;	/* the test's hand-written peer */
};

static void
pair_open(struct pair *p)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p->a = conn_from_fds(sv[0], sv[0], 0, "peer");
	p->b = conn_from_fds(sv[1], sv[1], 0, "test");
	assert_non_null(p->a);
	assert_non_null(p->b);
	p->a->idle_ms = 2000;
	p->b->idle_ms = 2000;
}

static void
pair_close(struct pair *p)
{
	conn_free(p->a);
	conn_free(p->b);
}

/* ---- KEEPALIVE while a receiver commits ------------------------------- */

/*
 * proto_keepalive_until sends KEEPALIVE until its fd is readable;
 * proto_expect drops them before the frame it waits for, each restarting
 * the idle timeout: 1.5 s of keepalives then a RESULT, with an idle
 * timeout of 1 s on the waiting side.
 */
static void
t_keepalive(void **state)
{
	struct proto_result r;
	struct pair p;
	struct buf b = BUF_INIT;
	struct as_err err;
	int rep[2], n = 0;
	uint8_t type;
	pid_t pid;

	(void)state;
	pair_open(&p);
	assert_int_equal(pipe(rep), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		close(rep[0]);
		usleep(1500 * 1000);
		_exit(0);	/* rep[1] closed: the "report" is there */
	}
	close(rep[1]);
	proto_keepalive_until(p.a, rep[0]);
	close(rep[0]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	memset(&r, 0, sizeof(r));
	r.code = 0;
	assert_int_equal(proto_send_result(p.a, &r, &b, &err), 0);
	/* the peer sees three or more KEEPALIVEs, then the RESULT */
	p.b->idle_ms = 1000;
	for (;;) {
		assert_int_equal(frame_recv(p.b, &type, &b, PROTO_CTRL_MAX,
		    &err), 0);
		if (type != PT_KEEPALIVE)
			break;
		assert_int_equal(b.len, 0);
		n++;
	}
	assert_int_equal(type, PT_RESULT);
	assert_true(n >= 3);

	/* proto_expect drops them; an idle second between them is no error */
	assert_int_equal(frame_send(p.a, PT_KEEPALIVE, "", 0, &err), 0);
	assert_int_equal(frame_send(p.a, PT_KEEPALIVE, "", 0, &err), 0);
	assert_int_equal(proto_send_result(p.a, &r, &b, &err), 0);
	assert_int_equal(proto_expect(p.b, PT_RESULT, &b, NULL, &err), 0);
	/* nothing but KEEPALIVEs, then silence: the idle timeout */
	assert_int_equal(frame_send(p.a, PT_KEEPALIVE, "", 0, &err), 0);
	assert_int_equal(proto_expect(p.b, PT_RESULT, &b, NULL, &err), -1);
	assert_int_equal(err.code, AS_E_TIMEOUT);
	buf_release(&b);
	pair_close(&p);
}

/* ---- a blob (REVERSE's catalog) over a socketpair --------------------- */

/* The peer b sends n bytes of pattern as a blob from a child process. */
static pid_t
blob_child(struct pair *p, size_t n, int how)
{
	struct proto_result r;
	struct proto_end e;
	struct buf sc = BUF_INIT;
	struct as_err err;
	uint8_t *v;
	size_t i;
	pid_t pid;

	pid = fork();
	assert_true(pid != -1);
	if (pid != 0)
		return pid;
	v = malloc(n + 1);
	for (i = 0; i < n; i++)
		v[i] = (uint8_t)(i * 7);
	if (how == 0)
		_exit(proto_send_blob(p->b, v, n, &sc, &err) == 0 ? 0 : 1);
	if (how == 1) {		/* END_DATA counting one byte more */
		(void)frame_send(p->b, PT_DATA, v, n, &err);
		memset(&e, 0, sizeof(e));
		e.bytes = n + 1;
		_exit(proto_send_end(p->b, &e, &sc, &err) == 0 ? 0 : 1);
	}
	memset(&r, 0, sizeof(r));	/* a refusal instead */
	r.code = AS_E_CONFLICT;
	r.class = AS_PERM;
	snprintf(r.msg, sizeof(r.msg), "busy");
	_exit(proto_send_result(p->b, &r, &sc, &err) == 0 ? 0 : 1);
}

static void
t_blob(void **state)
{
	struct pair p;
	struct buf out = BUF_INIT, sc = BUF_INIT;
	struct as_err err;
	size_t i, n = 3 * PROTO_CHUNK + 5;
	int st;
	pid_t pid;

	(void)state;
	pair_open(&p);
	pid = blob_child(&p, n, 0);
	assert_int_equal(proto_recv_blob(p.a, &out, PROTO_BLOB_MAX, &sc,
	    &err), 0);
	assert_int_equal(out.len, n);
	for (i = 0; i < n; i++)
		if (out.data[i] != (uint8_t)(i * 7))
			fail_msg("byte %zu differs", i);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(st, 0);
	pair_close(&p);

	/* more than the receiver's maximum */
	pair_open(&p);
	pid = blob_child(&p, 1000, 0);
	assert_int_equal(proto_recv_blob(p.a, &out, 999, &sc, &err), -1);
	assert_int_equal(err.code, AS_E_LIMIT);
	(void)waitpid(pid, &st, 0);
	pair_close(&p);

	/* END_DATA that does not count what came */
	pair_open(&p);
	pid = blob_child(&p, 1000, 1);
	assert_int_equal(proto_recv_blob(p.a, &out, 4096, &sc, &err), -1);
	assert_int_equal(err.code, AS_E_TRUNCATED);
	(void)waitpid(pid, &st, 0);
	pair_close(&p);

	/* the peer's refusal is its error */
	pair_open(&p);
	pid = blob_child(&p, 0, 2);
	assert_int_equal(proto_recv_blob(p.a, &out, 4096, &sc, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_string_equal(err.msg, "peer: busy");
	(void)waitpid(pid, &st, 0);
	pair_close(&p);
	buf_release(&out);
	buf_release(&sc);
}

static void
t_client_hello(void **state)
{
	struct proto_hello h;
	struct pair p;
	struct buf b = BUF_INIT;
	struct as_err err;
	uint32_t chosen = 0;
	const char *banner = "Welcome to host\n";

	(void)state;
	/* A login banner where the greeting should be. */
	pair_open(&p);
	assert_int_equal(conn_write_full(p.b, banner, strlen(banner), &err),
	    0);
	assert_int_equal(conn_shutdown_write(p.b, &err), 0);
	assert_int_equal(proto_client_hello(p.a, 0, &chosen, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	assert_string_equal(err.msg, "'peer' printed 'Welcome to host ' "
	    "instead of speaking the autosync protocol (a login banner, or "
	    "a shell start-up file that prints?)");
	pair_close(&p);

	/* An early close. */
	pair_open(&p);
	assert_int_equal(conn_shutdown_write(p.b, &err), 0);
	assert_int_equal(proto_client_hello(p.a, 0, &chosen, &err), -1);
	assert_int_equal(err.code, AS_E_IO);
	assert_string_equal(err.msg, "'peer' closed the connection before "
	    "the autosync protocol started");
	pair_close(&p);

	/* A greeting reflected back (role active). */
	pair_open(&p);
	memset(&h, 0, sizeof(h));
	h.version = h.min_version = PROTO_VERSION;
	h.role = PROTO_ROLE_ACTIVE;
	assert_int_equal(proto_send_hello(p.b, PT_HELLO_OK, &h, &b, &err), 0);
	assert_int_equal(proto_client_hello(p.a, 0, &chosen, &err), -1);
	assert_int_equal(err.code, AS_E_AUTH);
	assert_string_equal(err.msg, "'peer' answered with the wrong role 1 "
	    "(a reflected greeting?)");
	pair_close(&p);

	/* Features that were not offered. */
	pair_open(&p);
	h.role = PROTO_ROLE_PASSIVE;
	h.features = PROTO_F_ZSTD;
	assert_int_equal(proto_send_hello(p.b, PT_HELLO_OK, &h, &b, &err), 0);
	assert_int_equal(proto_client_hello(p.a, 0, &chosen, &err), -1);
	assert_int_equal(err.code, AS_E_UNSUPPORTED);
	pair_close(&p);

	/* A version this side does not speak. */
	pair_open(&p);
	h.features = 0;
	h.version = PROTO_VERSION + 1;
	h.min_version = PROTO_VERSION + 1;
	assert_int_equal(proto_send_hello(p.b, PT_HELLO_OK, &h, &b, &err), 0);
	assert_int_equal(proto_client_hello(p.a, 0, &chosen, &err), -1);
	assert_int_equal(err.code, AS_E_UNSUPPORTED);
	pair_close(&p);

	/* A refusal keeps the server's code. */
	pair_open(&p);
	as_err_set(&err, AS_E_AUTH, 0, "go away");
	assert_int_equal(proto_send_error(p.b, &err, &b, &err), 0);
	assert_int_equal(proto_client_hello(p.a, 0, &chosen, &err), -1);
	assert_int_equal(err.code, AS_E_AUTH);
	assert_string_equal(err.msg, "peer: go away");
	pair_close(&p);

	/* And a good one. */
	pair_open(&p);
	h.version = h.min_version = PROTO_VERSION;
	h.features = PROTO_F_ZSTD;
	assert_int_equal(proto_send_hello(p.b, PT_HELLO_OK, &h, &b, &err), 0);
	assert_int_equal(proto_client_hello(p.a, PROTO_F_ZSTD, &chosen,
	    &err), 0);
	assert_int_equal(chosen, PROTO_F_ZSTD);
	pair_close(&p);
	buf_release(&b);
}

static void
t_server_hello(void **state)
{
	struct proto_hello h;
	struct proto_result r;
	struct pair p;
	struct buf b = BUF_INIT;
	struct as_err err;
	uint32_t chosen = 0;
	uint8_t type;

	(void)state;
	/* A passive greeting sent to a server: refused with AUTH. */
	pair_open(&p);
	memset(&h, 0, sizeof(h));
	h.version = h.min_version = PROTO_VERSION;
	h.role = PROTO_ROLE_PASSIVE;
	assert_int_equal(proto_send_hello(p.b, PT_HELLO, &h, &b, &err), 0);
	assert_int_equal(proto_server_hello(p.a, PROTO_F_KNOWN, &chosen,
	    &err), -1);
	assert_int_equal(err.code, AS_E_AUTH);
	assert_int_equal(frame_recv(p.b, &type, &b, PROTO_CTRL_MAX, &err), 0);
	assert_int_equal(type, PT_RESULT);
	assert_int_equal(proto_dec_result(&r, b.data, b.len, &err), 0);
	assert_int_equal(r.code, AS_E_AUTH);
	pair_close(&p);

	/* A client that needs a newer version. */
	pair_open(&p);
	h.role = PROTO_ROLE_ACTIVE;
	h.version = h.min_version = PROTO_VERSION + 1;
	assert_int_equal(proto_send_hello(p.b, PT_HELLO, &h, &b, &err), 0);
	assert_int_equal(proto_server_hello(p.a, PROTO_F_KNOWN, &chosen,
	    &err), -1);
	assert_int_equal(err.code, AS_E_UNSUPPORTED);
	assert_int_equal(frame_recv(p.b, &type, &b, PROTO_CTRL_MAX, &err), 0);
	assert_int_equal(type, PT_RESULT);
	assert_int_equal(proto_dec_result(&r, b.data, b.len, &err), 0);
	assert_int_equal(r.code, AS_E_UNSUPPORTED);
	pair_close(&p);

	/*
	 * A newer client that still speaks ours: our version, and only the
	 * features both know and the server allows.
	 */
	pair_open(&p);
	h.version = PROTO_VERSION + 3;
	h.min_version = PROTO_VERSION;
	h.features = 0xffffffffu;
	assert_int_equal(proto_send_hello(p.b, PT_HELLO, &h, &b, &err), 0);
	assert_int_equal(proto_server_hello(p.a, 0, &chosen, &err), 0);
	assert_int_equal(chosen, 0);
	assert_int_equal(frame_recv(p.b, &type, &b, PROTO_CTRL_MAX, &err), 0);
	assert_int_equal(type, PT_HELLO_OK);
	assert_int_equal(proto_dec_hello(&h, b.data, b.len, &err), 0);
	assert_int_equal(h.version, PROTO_VERSION);
	assert_int_equal(h.role, PROTO_ROLE_PASSIVE);
	assert_int_equal(h.features, 0);
	pair_close(&p);

	/* Something else than HELLO first. */
	pair_open(&p);
	assert_int_equal(frame_send(p.b, PT_DATA, "x", 1, &err), 0);
	assert_int_equal(proto_server_hello(p.a, PROTO_F_KNOWN, &chosen,
	    &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	assert_string_equal(err.msg, "'peer' sent DATA where HELLO was "
	    "expected");
	pair_close(&p);
	buf_release(&b);
}

/* ---- serve.conf ------------------------------------------------------- */


static char tmpdir[] = "/tmp/t_proto.XXXXXX";

/* tmpdir/name, into a static buffer of the caller's. */
static char *
tpath(char *out, size_t outsz, const char *name)
{
	snprintf(out, outsz, "%s/%s", tmpdir, name);
	return out;
}

static void
write_key(const char *name, const char *id, mode_t mode)
{
	struct psk k;
	struct as_err err;
	char p[256];

	tpath(p, sizeof(p), name);
	assert_int_equal(key_generate(&k, id, &err), 0);
	assert_int_equal(key_write(p, &k, &err), 0);
	assert_int_equal(chmod(p, mode), 0);
	key_clear(&k);
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int
setup_dir(void **state)
{
	char p[256];

	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	write_key("alice.key", "alice", 0600);
	write_key("alice2.key", "alice", 0600);
	write_key("bob.key", "bob", 0600);
	write_key("open.key", "carol", 0644);
	if (mkdir(tpath(p, sizeof(p), "root"), 0700) == -1 ||
	    mkdir(tpath(p, sizeof(p), "root/sub"), 0700) == -1 ||
	    symlink("/etc", tpath(p, sizeof(p), "root/link")) == -1)
		return -1;
	return 0;
}

static int
teardown_dir(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Parse text; expect failure with code and the exact message. */
static void
conf_refused(const char *text, enum as_errcode code, const char *msg)
{
	struct serve_config cfg, pat;
	struct as_err err;

	memset(&cfg, FILL, sizeof(cfg));
	memset(&pat, FILL, sizeof(pat));
	as_err_clear(&err);
	assert_int_equal(serve_config_parse(&cfg, text, strlen(text),
	    "serve.conf", &err), -1);
	assert_int_equal(err.code, code);
	assert_string_equal(err.msg, msg);
	assert_memory_equal(&cfg, &pat, sizeof(cfg));
}

static void
t_conf_good(void **state)
{
	struct serve_config cfg;
	struct as_err err;
	char text[2048], k1[256], k2[256];
	const char *fp = "SHA256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:"
	    "FF:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";

	(void)state;
	snprintf(text, sizeof(text),
	    "# clients\n"
	    "\n"
	    "client alice key %s   # the laptop\n"
	    "\tclient bob key %s\r\n"
	    "client web-1.example@x cert %s\n"
	    "allow alice /srv//a/./b/ rw\n"
	    "allow alice /srv/a/b/keep ro\n"
	    "allow web-1.example@x / ro\n"
	    "allow ssh /home/backup rw\n"
	    "allow bob btrfs:/mnt//backup/ rw trusted\n"
	    "allow bob /srv/untrusted rw safe\n"
	    "allow bob /srv/both rw safe trusted\n",
	    tpath(k1, sizeof(k1), "alice.key"),
	    tpath(k2, sizeof(k2), "bob.key"), fp);
	memset(&cfg, 0, sizeof(cfg));
	as_err_clear(&err);
	assert_int_equal(serve_config_parse(&cfg, text, strlen(text),
	    "serve.conf", &err), 0);
	assert_int_equal(cfg.nclients, 3);
	assert_string_equal(cfg.clients[0].name, "alice");
	assert_int_equal(cfg.clients[0].kind, SC_KEY);
	assert_string_equal(cfg.clients[0].key.id, "alice");
	assert_int_equal(cfg.clients[0].key.len, KEY_LEN);
	assert_string_equal(cfg.clients[1].key.id, "bob");
	assert_int_equal(cfg.clients[2].kind, SC_CERT);
	assert_string_equal(cfg.clients[2].fp, "00112233445566778899aabbccddee"
	    "ff00112233445566778899aabbccddeeff");
	assert_int_equal(cfg.ngrants, 7);
	assert_string_equal(cfg.grants[0].client, "alice");
	assert_string_equal(cfg.grants[0].path, "/srv/a/b");
	assert_int_equal(cfg.grants[0].rw, 1);
	assert_int_equal(cfg.grants[1].rw, 0);
	assert_string_equal(cfg.grants[2].path, "/");
	/* An allow line may name a client without a client line (stdio). */
	assert_string_equal(cfg.grants[3].client, "ssh");
	assert_int_equal(cfg.grants[3].trusted, 0);
	/* btrfs:/PATH is the path root /PATH; "trusted" for btrfs receive */
	assert_string_equal(cfg.grants[4].path, "/mnt/backup");
	assert_int_equal(cfg.grants[4].trusted, 1);
	assert_int_equal(cfg.grants[4].safe, 0);
	/* "safe": pushes of trees under the safe receive policy */
	assert_int_equal(cfg.grants[5].safe, 1);
	assert_int_equal(cfg.grants[5].trusted, 0);
	assert_int_equal(cfg.grants[6].safe, 1);
	assert_int_equal(cfg.grants[6].trusted, 1);
	serve_config_release(&cfg);
	assert_int_equal(cfg.nclients, 0);

	/* Empty and comment-only configs are valid and grant nothing. */
	assert_int_equal(serve_config_parse(&cfg, "# nothing\n\n", 11,
	    "serve.conf", &err), 0);
	assert_int_equal(cfg.nclients, 0);
	assert_int_equal(cfg.ngrants, 0);
	serve_config_release(&cfg);
}

static void
t_conf_errors(void **state)
{
	static const char generic[] = "expected 'client NAME key FILE', "
	    "'client NAME cert SHA256:HEX' or 'allow NAME PATH ro|rw "
	    "[trusted] [safe]'";
	char text[1024], msg[1024], k1[256], k2[256], k3[256];

	(void)state;
	tpath(k1, sizeof(k1), "alice.key");
	tpath(k2, sizeof(k2), "alice2.key");
	tpath(k3, sizeof(k3), "open.key");

	/* Unknown directive. */
	snprintf(msg, sizeof(msg), "serve.conf:2: %s", generic);
	conf_refused("# x\nroot /srv\n", AS_E_USAGE, msg);
	conf_refused("# x\ndeny alice /srv rw\n", AS_E_USAGE, msg);
	/* Missing fields. */
	conf_refused("\nclient alice key\n", AS_E_USAGE, msg);
	conf_refused("\nallow alice /srv\n", AS_E_USAGE, msg);
	conf_refused("\nallow\n", AS_E_USAGE, msg);
	/* A fifth word other than "trusted" or "safe", or one twice. */
	conf_refused("\nallow alice /srv rw trustme\n", AS_E_USAGE, msg);
	conf_refused("\nallow alice /srv rw safe safe\n", AS_E_USAGE, msg);
	conf_refused("\nallow alice /srv rw trusted trusted\n", AS_E_USAGE,
	    msg);
	conf_refused("\nallow alice /srv rw safe x\n", AS_E_USAGE, msg);
	/* client with neither key nor cert. */
	conf_refused("client alice psk /k\n", AS_E_USAGE, "serve.conf:1: "
	    "expected 'client NAME key FILE' or 'client NAME cert "
	    "SHA256:HEX'");
	/* Seven words or more. */
	conf_refused("allow alice /srv rw and more words\n", AS_E_USAGE,
	    "serve.conf:1: too many words");
	/* Relative allow path, and '..'. */
	conf_refused("allow alice srv/data rw\n", AS_E_USAGE, "serve.conf:1: "
	    "'srv/data' is not an absolute path without '..'");
	conf_refused("allow alice /srv/../etc rw\n", AS_E_USAGE,
	    "serve.conf:1: '/srv/../etc' is not an absolute path without "
	    "'..'");
	/* Mode. */
	conf_refused("allow alice /srv RW\n", AS_E_USAGE, "serve.conf:1: "
	    "expected 'ro' or 'rw', not 'RW'");
	/* Client names. */
	conf_refused("allow al/ice /srv rw\n", AS_E_USAGE, "serve.conf:1: "
	    "bad client name 'al/ice'");
	conf_refused("client al:ice cert SHA256:00\n", AS_E_USAGE,
	    "serve.conf:1: bad client name 'al:ice'");
	/* Fingerprints. */
	conf_refused("client web cert SHA256:0011\n", AS_E_USAGE,
	    "serve.conf:1: expected SHA256:<64 hex digits>");
	/* Key file readable by others (mode 0644). */
	snprintf(text, sizeof(text), "client carol key %s\n", k3);
	snprintf(msg, sizeof(msg), "serve.conf:1: key file '%s' is readable "
	    "by others; chmod 600 it", k3);
	conf_refused(text, AS_E_AUTH, msg);
	/* Missing key file. */
	snprintf(text, sizeof(text), "client carol key %s/none\n", tmpdir);
	snprintf(msg, sizeof(msg), "serve.conf:1: key file '%s/none': No "
	    "such file or directory", tmpdir);
	conf_refused(text, AS_E_NOTFOUND, msg);
	/* Duplicate client. */
	snprintf(text, sizeof(text), "client alice key %s\n"
	    "client alice cert SHA256:%064d\n", k1, 0);
	conf_refused(text, AS_E_USAGE, "serve.conf:2: client 'alice' defined "
	    "twice");
	/* One key id for two clients. */
	snprintf(text, sizeof(text), "client a1 key %s\nclient a2 key %s\n",
	    k1, k2);
	conf_refused(text, AS_E_USAGE, "serve.conf:2: key id 'alice' already "
	    "belongs to client 'a1'");
	/* A NUL byte. */
	{
		struct serve_config cfg;
		struct as_err err;

		assert_int_equal(serve_config_parse(&cfg, "allow\0x", 7,
		    "serve.conf", &err), -1);
		assert_string_equal(err.msg, "serve.conf: holds a NUL byte");
	}
}

static void
t_conf_load(void **state)
{
	struct serve_config cfg;
	struct as_err err;
	char p[256];

	(void)state;
	as_err_clear(&err);
	assert_int_equal(serve_config_load(&cfg, tpath(p, sizeof(p),
	    "missing.conf"), &err), -1);
	assert_int_equal(err.code, AS_E_NOTFOUND);
	/* A directory is not a config. */
	assert_int_equal(serve_config_load(&cfg, tmpdir, &err), -1);
	assert_int_equal(err.code, AS_E_USAGE);
}

/* ---- path confinement ------------------------------------------------- */

static void
resolve_ok(const struct serve_grant *g, size_t ng, const char *client,
    const char *root, const char *req, int rw, const char *want)
{
	struct as_err err;
	char *p;

	as_err_clear(&err);
	p = serve_resolve(g, ng, client, root, req, rw, &err);
	if (p == NULL)
		fail_msg("'%s' refused: %s", req, err.msg);
	assert_string_equal(p, want);
	free(p);
}

static void
resolve_refused(const struct serve_grant *g, size_t ng, const char *client,
    const char *root, const char *req, int rw, const char *msg)
{
	struct as_err err;
	char *p;

	as_err_clear(&err);
	p = serve_resolve(g, ng, client, root, req, rw, &err);
	if (p != NULL)
		fail_msg("'%s' resolved to '%s'", req, p);
	assert_int_equal(err.code, AS_E_UNSAFE_PATH);
	if (msg != NULL)
		assert_string_equal(err.msg, msg);
}

/* zfs: requests name datasets, confined by dataset prefix. */
static void
ds_ok(const struct serve_grant *g, size_t ng, const char *client,
    const char *root, const char *req, int rw)
{
	struct as_err err;
	char *p;

	as_err_clear(&err);
	p = serve_resolve_dataset(g, ng, client, root, req, rw, &err);
	if (p == NULL)
		fail_msg("'%s' refused: %s", req, err.msg);
	assert_string_equal(p, req);
	free(p);
}

static void
ds_refused(const struct serve_grant *g, size_t ng, const char *client,
    const char *root, const char *req, int rw, const char *msg)
{
	struct as_err err;
	char *p;

	as_err_clear(&err);
	p = serve_resolve_dataset(g, ng, client, root, req, rw, &err);
	if (p != NULL)
		fail_msg("'%s' resolved to '%s'", req, p);
	assert_int_equal(err.code, AS_E_UNSAFE_PATH);
	if (msg != NULL)
		assert_string_equal(err.msg, msg);
}

static void
t_resolve_datasets(void **state)
{
	static const struct serve_grant none;
	struct serve_grant g[4];
	const char *bad[] = { "vault/a/../b", "vault/a/./b", "vault/a@s",
	    "vault/a%x", "-vault/a", "vault//a", "vault/a/", "/vault/a", "",
	    "vault/a b", "..", "vault/a\nb" };
	size_t i;

	(void)state;
	g[0].client = "alice";
	g[0].path = "zfs:vault/a";
	g[0].rw = 1;
	g[1].client = "alice";
	g[1].path = "zfs:vault/a/keep";
	g[1].rw = 0;
	g[2].client = "alice";
	g[2].path = "/";		/* a path root reaches no dataset */
	g[2].rw = 1;
	g[3].client = "bob";
	g[3].path = "zfs:vault/b";
	g[3].rw = 1;

	ds_ok(g, 4, "alice", NULL, "vault/a", 1);
	ds_ok(g, 4, "alice", NULL, "vault/a/x/y", 1);
	ds_ok(g, 4, "alice", NULL, "vault/a/keep/x", 0);
	ds_refused(g, 4, "alice", NULL, "vault/a/keep/x", 1,
	    "'zfs:vault/a/keep/x' is read-only for client 'alice'");
	ds_ok(g, 4, "alice", NULL, "vault/a/keeper", 1);
	ds_refused(g, 4, "alice", NULL, "vault/ab", 0,
	    "'zfs:vault/ab' is not in a dataset root granted to client "
	    "'alice'");
	ds_refused(g, 4, "alice", NULL, "vault", 0, NULL);
	ds_refused(g, 4, "alice", NULL, "vault/b/x", 0, NULL);
	ds_refused(g, 4, "mallory", NULL, "vault/a", 0, NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ds_refused(g, 4, "alice", NULL, bad[i], 0, NULL);
	ds_refused(g, 4, "alice", NULL, "vault/a/../b", 0,
	    "'zfs:vault/a/../b' is not a valid dataset name");
	/* quick mode: a dataset root, names in full */
	ds_ok(NULL, 0, "default", "zfs:vault", "vault/x", 1);
	ds_ok(NULL, 0, "default", "zfs:vault", "vault", 1);
	ds_refused(NULL, 0, "default", "zfs:vault", "vaultx/y", 1,
	    "'zfs:vaultx/y' is not below this server's root");
	ds_refused(NULL, 0, "default", "zfs:vault", "tank/x", 1, NULL);
	/* a directory root reaches no dataset */
	ds_refused(NULL, 0, "default", "/srv", "vault/x", 1, NULL);
	/* no grants at all (tcp without config) */
	ds_refused(&none, 0, "default", NULL, "vault/x", 0, NULL);
	/* stdio without a config: every valid name */
	ds_ok(NULL, 0, "ssh", NULL, "tank/x", 1);
	ds_refused(NULL, 0, "ssh", NULL, "tank/../x", 1, NULL);
}

static void
t_resolve_grants(void **state)
{
	struct serve_grant g[4];
	char root[256], want[512], req[512], msg[1024];
	char *longp;

	(void)state;
	g[0].client = "alice";
	g[0].path = "/srv/a";
	g[0].rw = 1;
	g[1].client = "alice";
	g[1].path = "/srv/a/keep";
	g[1].rw = 0;
	g[2].client = "bob";
	g[2].path = "/srv/b";
	g[2].rw = 0;
	g[3].client = "eve";
	g[3].path = "/";
	g[3].rw = 0;

	resolve_ok(g, 4, "alice", NULL, "/srv/a", 1, "/srv/a");
	resolve_ok(g, 4, "alice", NULL, "/srv/a/x/y", 1, "/srv/a/x/y");
	resolve_ok(g, 4, "alice", NULL, "//srv/./a//x/", 1, "/srv/a/x");
	/* The longest root decides: keep is read-only. */
	resolve_ok(g, 4, "alice", NULL, "/srv/a/keep/x", 0, "/srv/a/keep/x");
	resolve_refused(g, 4, "alice", NULL, "/srv/a/keep/x", 1,
	    "'/srv/a/keep/x' is read-only for client 'alice'");
	resolve_ok(g, 4, "alice", NULL, "/srv/a/keeper", 1, "/srv/a/keeper");
	/* A prefix of the name is not inside the root. */
	resolve_refused(g, 4, "alice", NULL, "/srv/ab", 0,
	    "'/srv/ab' is not in a root granted to client 'alice'");
	resolve_refused(g, 4, "alice", NULL, "/srv", 0,
	    "'/srv' is not in a root granted to client 'alice'");
	/* Another client's root. */
	resolve_refused(g, 4, "alice", NULL, "/srv/b/x", 0,
	    "'/srv/b/x' is not in a root granted to client 'alice'");
	resolve_refused(g, 4, "bob", NULL, "/srv/b/x", 1,
	    "'/srv/b/x' is read-only for client 'bob'");
	/* A client no grant names reaches nothing. */
	resolve_refused(g, 4, "mallory", NULL, "/srv/a", 0,
	    "'/srv/a' is not in a root granted to client 'mallory'");
	/* '..' anywhere, even when it would stay inside. */
	resolve_refused(g, 4, "alice", NULL, "/srv/a/../b/x", 0,
	    "'/srv/a/../b/x': '..' is not allowed");
	resolve_refused(g, 4, "alice", NULL, "/srv/a/x/..", 0,
	    "'/srv/a/x/..': '..' is not allowed");
	resolve_refused(g, 4, "alice", NULL, "/srv/a/x/../y", 0, NULL);
	resolve_refused(g, 4, "alice", NULL, "..", 0, NULL);
	/* "..." is a name, not a parent. */
	resolve_ok(g, 4, "alice", NULL, "/srv/a/...", 0, "/srv/a/...");
	/* The root "/" holds everything; still no '..'. */
	resolve_ok(g, 4, "eve", NULL, "/etc/x", 0, "/etc/x");
	resolve_refused(g, 4, "eve", NULL, "/etc/../x", 0, NULL);
	/* Empty and over-long paths. */
	resolve_refused(g, 4, "alice", NULL, "", 0, "bad path");
	longp = malloc(PROTO_PATH_MAX + 2);
	assert_non_null(longp);
	memset(longp, 'a', PROTO_PATH_MAX + 1);
	longp[0] = '/';
	longp[PROTO_PATH_MAX + 1] = '\0';
	resolve_refused(g, 4, "eve", NULL, longp, 0, "bad path");
	free(longp);
	/* No grants at all (no config over tcp/tls): nothing. */
	resolve_refused(g, 0, "alice", NULL, "/srv/a", 0, NULL);

	/* A symbolic link beneath a granted root. */
	g[0].path = tpath(root, sizeof(root), "root");
	snprintf(req, sizeof(req), "%s/link/passwd", root);
	snprintf(msg, sizeof(msg), "'%s/link' is a symbolic link", root);
	resolve_refused(g, 1, "alice", NULL, req, 0, msg);
	snprintf(req, sizeof(req), "%s/sub/new/deeper", root);
	snprintf(want, sizeof(want), "%s/sub/new/deeper", root);
	resolve_ok(g, 1, "alice", NULL, req, 1, want);
}

static void
t_resolve_root(void **state)
{
	char root[256], want[512], msg[1024];

	(void)state;
	tpath(root, sizeof(root), "root");
	/* Quick mode: request paths are relative to the root. */
	snprintf(want, sizeof(want), "%s/sub/x", root);
	resolve_ok(NULL, 0, "default", root, "/sub/x", 1, want);
	resolve_ok(NULL, 0, "default", root, "sub/x", 1, want);
	resolve_ok(NULL, 0, "default", root, "/./sub//x/", 1, want);
	resolve_ok(NULL, 0, "default", root, "/", 1, root);
	/* An absolute server path is still beneath the root. */
	snprintf(want, sizeof(want), "%s/etc/passwd", root);
	resolve_ok(NULL, 0, "default", root, "/etc/passwd", 1, want);
	/* No way out. */
	resolve_refused(NULL, 0, "default", root, "/../etc", 1,
	    "'/../etc': '..' is not allowed");
	resolve_refused(NULL, 0, "default", root, "../etc", 1, NULL);
	resolve_refused(NULL, 0, "default", root, "/sub/../../etc", 1, NULL);
	snprintf(msg, sizeof(msg), "'%s/link' is a symbolic link", root);
	resolve_refused(NULL, 0, "default", root, "/link/passwd", 1, msg);
	resolve_refused(NULL, 0, "default", root, "/link", 0, msg);
	/* A root of "/" adds nothing. */
	resolve_ok(NULL, 0, "default", "/", "/a/b", 1, "/a/b");
}

static void
t_resolve_all(void **state)
{
	(void)state;
	/* stdio without config: taken as they come, '..' still refused. */
	resolve_ok(NULL, 0, "ssh", NULL, "/pool/data", 1, "/pool/data");
	resolve_ok(NULL, 0, "ssh", NULL, "backups/data", 1, "backups/data");
	resolve_ok(NULL, 0, "ssh", NULL, "./backups//data/", 1,
	    "backups/data");
	resolve_refused(NULL, 0, "ssh", NULL, "../other", 1,
	    "'../other': '..' is not allowed");
	resolve_refused(NULL, 0, "ssh", NULL, "/pool/../etc", 1, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_hello),
		cmocka_unit_test(t_request),
		cmocka_unit_test(t_result),
		cmocka_unit_test(t_end_commit),
		cmocka_unit_test(t_snaplist),
		cmocka_unit_test(t_type_name),
		cmocka_unit_test(t_engine_prefix),
		cmocka_unit_test(t_blob),
		cmocka_unit_test(t_client_hello),
		cmocka_unit_test(t_server_hello),
		cmocka_unit_test(t_conf_good),
		cmocka_unit_test(t_conf_errors),
		cmocka_unit_test(t_keepalive),
		cmocka_unit_test(t_conf_load),
		cmocka_unit_test(t_resolve_grants),
		cmocka_unit_test(t_resolve_datasets),
		cmocka_unit_test(t_resolve_root),
		cmocka_unit_test(t_resolve_all),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
