/* proto.c - encode and decode protocol messages; see proto.h. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "repl/proto.h"
#include "transport/frame.h"
#include "base/banned.h"

#ifndef AUTOSYNC_VERSION
#define AUTOSYNC_VERSION "unknown"
#endif

/* A read cursor over one frame's payload. */
struct cur {
	const uint8_t	*p;
	size_t		 len;
	size_t		 off;
	int		 bad;	/* a read went past the end */
};

static void
cur_init(struct cur *c, const uint8_t *p, size_t len)
{
	c->p = p;
	c->len = len;
	c->off = 0;
	c->bad = 0;
}

static const uint8_t *
cur_take(struct cur *c, size_t n)
{
	const uint8_t *q;

	if (c->bad || n > c->len - c->off) {
		c->bad = 1;
		return NULL;
	}
	q = c->p + c->off;
	c->off += n;
	return q;
}

static uint8_t
cur_u8(struct cur *c)
{
	const uint8_t *q = cur_take(c, 1);

	return q == NULL ? 0 : q[0];
}

static uint16_t
cur_u16(struct cur *c)
{
	const uint8_t *q = cur_take(c, 2);

	return q == NULL ? 0 : le16(q);
}

static uint32_t
cur_u32(struct cur *c)
{
	const uint8_t *q = cur_take(c, 4);

	return q == NULL ? 0 : le32(q);
}

static uint64_t
cur_u64(struct cur *c)
{
	const uint8_t *q = cur_take(c, 8);

	return q == NULL ? 0 : le64(q);
}

/*
 * A string of at most max bytes into out (size > max), no NUL inside.
 * Returns 0, or -1 (cursor marked bad) when too long or malformed.
 */
static int
cur_str(struct cur *c, char *out, size_t max)
{
	const uint8_t *q;
	uint16_t n;

	n = cur_u16(c);
	if (c->bad || n > max) {
		c->bad = 1;
		return -1;
	}
	if ((q = cur_take(c, n)) == NULL)
		return -1;
	if (n > 0 && memchr(q, '\0', n) != NULL) {
		c->bad = 1;
		return -1;
	}
	memcpy(out, q, n);
	out[n] = '\0';
	return 0;
}

static int
cur_done(struct cur *c, const char *what, struct as_err *err)
{
	if (c->bad)
		return as_err_set(err, AS_E_MALFORMED, 0, "malformed %s "
		    "message (%zu bytes)", what, c->len);
	if (c->off != c->len)
		return as_err_set(err, AS_E_MALFORMED, 0, "%s message has "
		    "%zu trailing bytes", what, c->len - c->off);
	return 0;
}

static void
add_str(struct buf *b, const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max)
		n = max;
	buf_add_u16(b, (uint16_t)n);
	buf_add(b, s, n);
}

void
proto_enc_hello(struct buf *out, const struct proto_hello *h)
{
	buf_reset(out);
	buf_add(out, PROTO_MAGIC, 8);
	buf_add_u16(out, h->version);
	buf_add_u16(out, h->min_version);
	buf_add_u32(out, h->features);
	buf_add_u8(out, h->role);
	add_str(out, h->software, sizeof(h->software) - 1);
}

int
proto_dec_hello(struct proto_hello *h, const uint8_t *p, size_t len,
    struct as_err *err)
{
	struct proto_hello t;
	struct cur c;
	const uint8_t *m;

	memset(&t, 0, sizeof(t));
	cur_init(&c, p, len);
	m = cur_take(&c, 8);
	if (m == NULL || memcmp(m, PROTO_MAGIC, 8) != 0)
		return as_err_set(err, AS_E_MALFORMED, 0, "not an autosync "
		    "protocol greeting");
	t.version = cur_u16(&c);
	t.min_version = cur_u16(&c);
	t.features = cur_u32(&c);
	t.role = cur_u8(&c);
	(void)cur_str(&c, t.software, sizeof(t.software) - 1);
	if (cur_done(&c, "HELLO", err) == -1)
		return -1;
	if (t.min_version > t.version)
		return as_err_set(err, AS_E_MALFORMED, 0, "HELLO with "
		    "versions %u..%u", t.min_version, t.version);
	*h = t;
	return 0;
}

void
proto_enc_request(struct buf *out, const struct proto_request *r)
{
	buf_reset(out);
	buf_add_u8(out, r->op);
	buf_add_u32(out, r->flags);
	buf_add_u64(out, r->guid);
	buf_add_u8(out, (uint8_t)r->zstd_level);
	add_str(out, r->path, PROTO_PATH_MAX);
	add_str(out, r->id, PROTO_PATH_MAX);
}

int
proto_dec_request(struct proto_request *r, const uint8_t *p, size_t len,
    struct as_err *err)
{
	struct proto_request *t;
	struct cur c;
	int rc = -1;

	t = xcalloc(1, sizeof(*t));
	cur_init(&c, p, len);
	t->op = cur_u8(&c);
	t->flags = cur_u32(&c);
	t->guid = cur_u64(&c);
	t->zstd_level = (int8_t)cur_u8(&c);
	(void)cur_str(&c, t->path, PROTO_PATH_MAX);
	(void)cur_str(&c, t->id, PROTO_PATH_MAX);
	if (cur_done(&c, "REQUEST", err) == -1)
		goto out;
	if (t->op < OP_HOLD || t->op > OP_REVERSE) {
		as_err_set(err, AS_E_UNSUPPORTED, 0, "unknown request %u",
		    t->op);
		goto out;
	}
	if ((t->flags & ~(REQ_F_FORCE | REQ_F_RESUME | REQ_F_TREE |
	    REQ_F_SOURCE | REQ_F_NESTED | REQ_F_SUBVOLS)) != 0) {
		as_err_set(err, AS_E_UNSUPPORTED, 0, "unknown request flags "
		    "0x%x", t->flags);
		goto out;
	}
	if (t->path[0] == '\0') {
		as_err_set(err, AS_E_MALFORMED, 0, "request with an empty "
		    "path");
		goto out;
	}
	*r = *t;
	rc = 0;
out:
	free(t);
	return rc;
}

void
proto_enc_result(struct buf *out, const struct proto_result *r)
{
	buf_reset(out);
	buf_add_u8(out, r->code);
	buf_add_u8(out, r->class);
	buf_add_u32(out, r->flags);
	buf_add_u64(out, r->guid);
	buf_add_u64(out, r->base_guid);
	buf_add_u64(out, r->bytes);
	buf_add_u64(out, (uint64_t)r->time_ns);
	add_str(out, r->name, PROTO_NAME_MAX);
	add_str(out, r->msg, PROTO_MSG_MAX);
}

int
proto_dec_result(struct proto_result *r, const uint8_t *p, size_t len,
    struct as_err *err)
{
	struct proto_result t;
	struct cur c;

	memset(&t, 0, sizeof(t));
	cur_init(&c, p, len);
	t.code = cur_u8(&c);
	t.class = cur_u8(&c);
	t.flags = cur_u32(&c);
	t.guid = cur_u64(&c);
	t.base_guid = cur_u64(&c);
	t.bytes = cur_u64(&c);
	t.time_ns = (int64_t)cur_u64(&c);
	(void)cur_str(&c, t.name, PROTO_NAME_MAX);
	(void)cur_str(&c, t.msg, PROTO_MSG_MAX);
	if (cur_done(&c, "RESULT", err) == -1)
		return -1;
	if (t.code >= AS_E__COUNT)
		t.code = AS_E_INTERNAL;	/* a newer peer's code */
	*r = t;
	return 0;
}

void
proto_enc_end(struct buf *out, const struct proto_end *e)
{
	buf_reset(out);
	buf_add_u8(out, e->status);
	buf_add_u8(out, e->code);
	buf_add_u64(out, e->bytes);
	add_str(out, e->msg, PROTO_MSG_MAX);
}

int
proto_dec_end(struct proto_end *e, const uint8_t *p, size_t len,
    struct as_err *err)
{
	struct proto_end t;
	struct cur c;

	memset(&t, 0, sizeof(t));
	cur_init(&c, p, len);
	t.status = cur_u8(&c);
	t.code = cur_u8(&c);
	t.bytes = cur_u64(&c);
	(void)cur_str(&c, t.msg, PROTO_MSG_MAX);
	if (cur_done(&c, "END_DATA", err) == -1)
		return -1;
	if (t.status > 1)
		return as_err_set(err, AS_E_MALFORMED, 0, "END_DATA with "
		    "status %u", t.status);
	if (t.code >= AS_E__COUNT)
		t.code = AS_E_INTERNAL;
	*e = t;
	return 0;
}

void
proto_enc_commit(struct buf *out, const struct proto_commit *cm)
{
	buf_reset(out);
	buf_add_u8(out, cm->ok);
	buf_add_u64(out, cm->held_guid);
	buf_add_u8(out, cm->code);
	add_str(out, cm->msg, PROTO_MSG_MAX);
}

int
proto_dec_commit(struct proto_commit *cm, const uint8_t *p, size_t len,
    struct as_err *err)
{
	struct proto_commit t;
	struct cur c;

	memset(&t, 0, sizeof(t));
	cur_init(&c, p, len);
	t.ok = cur_u8(&c);
	t.held_guid = cur_u64(&c);
	t.code = cur_u8(&c);
	(void)cur_str(&c, t.msg, PROTO_MSG_MAX);
	if (cur_done(&c, "COMMIT", err) == -1)
		return -1;
	if (t.ok > 1)
		return as_err_set(err, AS_E_MALFORMED, 0, "COMMIT with ok = "
		    "%u", t.ok);
	if (t.code >= AS_E__COUNT)
		t.code = AS_E_INTERNAL;
	*cm = t;
	return 0;
}

void
proto_enc_snaplist(struct buf *out, const struct proto_snap *v, uint32_t n,
    int more)
{
	uint32_t i;

	buf_reset(out);
	buf_add_u8(out, more ? 1 : 0);
	buf_add_u32(out, n);
	for (i = 0; i < n; i++) {
		buf_add_u64(out, v[i].guid);
		buf_add_u64(out, v[i].base_guid);
		buf_add_u64(out, (uint64_t)v[i].time_ns);
		add_str(out, v[i].name, PROTO_NAME_MAX);
	}
}

int
proto_dec_snaplist(struct proto_snap **v, size_t *n, size_t *cap, int *more,
    const uint8_t *p, size_t len, struct as_err *err)
{
	struct proto_snap *t = NULL;
	struct cur c;
	uint32_t cnt, i;
	uint8_t m;
	int rc = -1;

	cur_init(&c, p, len);
	m = cur_u8(&c);
	cnt = cur_u32(&c);
	if (c.bad)
		return cur_done(&c, "SNAPLIST", err);
	if (m > 1)
		return as_err_set(err, AS_E_MALFORMED, 0, "SNAPLIST with "
		    "more = %u", m);
	/* Each entry takes at least 26 bytes: bound cnt by the frame. */
	if (cnt > PROTO_SNAPLIST_BATCH * 8 || (size_t)cnt * 26 > len - c.off)
		return as_err_set(err, AS_E_MALFORMED, 0, "SNAPLIST claims %u "
		    "snapshots in %zu bytes", cnt, len);
	if (*n + cnt > PROTO_SNAPLIST_MAX)
		return as_err_set(err, AS_E_LIMIT, 0, "more than %d "
		    "snapshots listed", PROTO_SNAPLIST_MAX);
	if (cnt > 0)
		t = xcalloc(cnt, sizeof(*t));
	for (i = 0; i < cnt; i++) {
		t[i].guid = cur_u64(&c);
		t[i].base_guid = cur_u64(&c);
		t[i].time_ns = (int64_t)cur_u64(&c);
		(void)cur_str(&c, t[i].name, PROTO_NAME_MAX);
		if (!c.bad && t[i].guid == 0)
			c.bad = 1;
	}
	if (cur_done(&c, "SNAPLIST", err) == -1)
		goto out;
	if (*n + cnt > *cap) {
		*cap = *n + cnt + 64;
		*v = xreallocarray(*v, *cap, sizeof(**v));
	}
	if (cnt > 0)
		memcpy(*v + *n, t, cnt * sizeof(*t));
	*n += cnt;
	*more = m;
	rc = 0;
out:
	free(t);
	return rc;
}

void
proto_result_from_err(struct proto_result *r, const struct as_err *e)
{
	memset(r, 0, sizeof(*r));
	if (e == NULL || e->code == AS_E_OK)
		return;
	r->code = (uint8_t)e->code;
	r->class = (uint8_t)as_errclass_of(e->code);
	snprintf(r->msg, sizeof(r->msg), "%s", e->msg);
}

int
proto_result_to_err(const struct proto_result *r, const char *peer,
    struct as_err *err)
{
	enum as_errcode code;

	code = r->code == AS_E_OK ? AS_E_INTERNAL : (enum as_errcode)r->code;
	return as_err_set(err, code, 0, "%s: %s", peer,
	    r->msg[0] != '\0' ? r->msg : as_errcode_name(code));
}

static int
send_enc(struct conn *c, uint8_t type, struct buf *b, struct as_err *err)
{
	return frame_send(c, type, b->data, b->len, err);
}

int
proto_send_hello(struct conn *c, uint8_t type, const struct proto_hello *h,
    struct buf *scratch, struct as_err *err)
{
	proto_enc_hello(scratch, h);
	return send_enc(c, type, scratch, err);
}

int
proto_send_request(struct conn *c, const struct proto_request *r,
    struct buf *scratch, struct as_err *err)
{
	proto_enc_request(scratch, r);
	return send_enc(c, PT_REQUEST, scratch, err);
}

int
proto_send_result(struct conn *c, const struct proto_result *r,
    struct buf *scratch, struct as_err *err)
{
	proto_enc_result(scratch, r);
	return send_enc(c, PT_RESULT, scratch, err);
}

int
proto_send_error(struct conn *c, const struct as_err *e, struct buf *scratch,
    struct as_err *err)
{
	struct proto_result r;

	proto_result_from_err(&r, e);
	if (r.code == 0) {
		r.code = AS_E_INTERNAL;
		r.class = AS_PERM;
	}
	return proto_send_result(c, &r, scratch, err);
}

int
proto_send_end(struct conn *c, const struct proto_end *e,
    struct buf *scratch, struct as_err *err)
{
	proto_enc_end(scratch, e);
	return send_enc(c, PT_END_DATA, scratch, err);
}

int
proto_send_commit(struct conn *c, const struct proto_commit *cm,
    struct buf *scratch, struct as_err *err)
{
	proto_enc_commit(scratch, cm);
	return send_enc(c, PT_COMMIT, scratch, err);
}

int
proto_send_blob(struct conn *c, const void *data, size_t len,
    struct buf *scratch, struct as_err *err)
{
	struct proto_end e;
	const uint8_t *p = data;
	size_t off, k;

	for (off = 0; off < len; off += k) {
		k = len - off < PROTO_CHUNK ? len - off : PROTO_CHUNK;
		if (frame_send(c, PT_DATA, p + off, k, err) == -1)
			return -1;
	}
	memset(&e, 0, sizeof(e));
	e.bytes = len;
	return proto_send_end(c, &e, scratch, err);
}

int
proto_recv_blob(struct conn *c, struct buf *out, size_t max,
    struct buf *scratch, struct as_err *err)
{
	struct proto_result r;
	struct proto_end e;
	char tb[16];
	uint8_t type;

	buf_reset(out);
	for (;;) {
		if (frame_recv(c, &type, scratch, FRAME_MAX, err) == -1)
			return -1;
		switch (type) {
		case PT_DATA:
			if (scratch->len > max - out->len)
				return as_err_set(err, AS_E_LIMIT, 0, "'%s' "
				    "sent more than %zu bytes of catalog",
				    c->peer, max);
			buf_add(out, scratch->data, scratch->len);
			break;
		case PT_END_DATA:
			if (proto_dec_end(&e, scratch->data, scratch->len,
			    err) == -1)
				return as_err_prefix(err, "'%s'", c->peer);
			if (e.status != 0)
				return as_err_set(err, e.code != 0 ?
				    (enum as_errcode)e.code :
				    AS_E_IO, 0, "'%s': %s", c->peer, e.msg);
			if (e.bytes != out->len)
				return as_err_set(err, AS_E_TRUNCATED, 0,
				    "'%s' sent %zu bytes of catalog, but says "
				    "%" PRIu64, c->peer, out->len, e.bytes);
			return 0;
		case PT_RESULT:
			if (proto_dec_result(&r, scratch->data, scratch->len,
			    err) == -1)
				return as_err_prefix(err, "'%s'", c->peer);
			if (r.code != 0)
				return proto_result_to_err(&r, c->peer, err);
			/* FALLTHROUGH */
		default:
			return as_err_set(err, AS_E_MALFORMED, 0, "'%s' sent "
			    "%s where a catalog was expected", c->peer,
			    proto_type_name(type, tb, sizeof(tb)));
		}
	}
}

size_t
proto_engine_prefix(const char *path)
{
	static const char *const pfx[] = { "vol:", "zfs:", "btrfs:" };
	size_t i, n;

	for (i = 0; i < sizeof(pfx) / sizeof(pfx[0]); i++) {
		n = strlen(pfx[i]);
		if (strncmp(path, pfx[i], n) == 0)
			return n;
	}
	return 0;
}

const char *
proto_type_name(uint8_t type, char *buf, size_t bufsz)
{
	static const char *const names[] = {
		[PT_HELLO] = "HELLO", [PT_HELLO_OK] = "HELLO_OK",
		[PT_REQUEST] = "REQUEST", [PT_RESULT] = "RESULT",
		[PT_DATA] = "DATA", [PT_END_DATA] = "END_DATA",
		[PT_COMMIT] = "COMMIT", [PT_SNAPLIST] = "SNAPLIST",
		[PT_ZDATA] = "ZDATA", [PT_KEEPALIVE] = "KEEPALIVE",
	};

	if (type < sizeof(names) / sizeof(names[0]) && names[type] != NULL)
		return names[type];
	snprintf(buf, bufsz, "type %u", type);
	return buf;
}

int
proto_send_keepalive(struct conn *c, struct as_err *err)
{
	static const uint8_t none[1];

	return frame_send(c, PT_KEEPALIVE, none, 0, err);
}

void
proto_keepalive_until(struct conn *c, int fd)
{
	struct pollfd p;
	struct as_err e;
	int r;

	for (;;) {
		p.fd = fd;
		p.events = POLLIN;
		p.revents = 0;
		r = poll(&p, 1, PROTO_KEEPALIVE_MS);
		if (r == -1 && errno == EINTR)
			continue;
		if (r != 0)
			return;		/* the report, its end, or poll failed */
		if (proto_send_keepalive(c, &e) == -1)
			return;
	}
}

int
proto_expect(struct conn *c, uint8_t want, struct buf *payload,
    struct proto_result *res, struct as_err *err)
{
	struct proto_result r;
	char b1[16], b2[16];
	uint8_t type;

	do {
		if (frame_recv(c, &type, payload, want == PT_DATA ||
		    want == PT_ZDATA ? FRAME_MAX : PROTO_CTRL_MAX, err) == -1)
			return -1;
	} while (type == PT_KEEPALIVE && want != PT_KEEPALIVE);
	if (type == want)
		return 0;
	if (type == PT_RESULT) {
		if (proto_dec_result(&r, payload->data, payload->len,
		    err) == -1)
			return as_err_prefix(err, "'%s'", c->peer);
		if (res != NULL) {
			*res = r;
			return 1;
		}
		if (r.code != 0)
			return proto_result_to_err(&r, c->peer, err);
	}
	return as_err_set(err, AS_E_MALFORMED, 0, "'%s' sent %s where %s "
	    "was expected", c->peer, proto_type_name(type, b1, sizeof(b1)),
	    proto_type_name(want, b2, sizeof(b2)));
}

/* Printable bytes of what the peer sent, for the banner message. */
static void
printable(const uint8_t *p, size_t n, char *out, size_t outsz)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 1 < outsz; i++) {
		if (p[i] == '\n' || p[i] == '\r')
			out[o++] = ' ';
		else if (isprint(p[i]))
			out[o++] = (char)p[i];
		else
			out[o++] = '.';
	}
	out[o] = '\0';
}

static void
hello_init(struct proto_hello *h, uint8_t role, uint32_t features)
{
	memset(h, 0, sizeof(*h));
	h->version = PROTO_VERSION;
	h->min_version = PROTO_VERSION_MIN;
	h->features = features;
	h->role = role;
	snprintf(h->software, sizeof(h->software), "autosync %s",
	    AUTOSYNC_VERSION);
}

int
proto_client_hello(struct conn *c, uint32_t features, uint32_t *chosen,
    struct as_err *err)
{
	struct proto_hello h;
	struct proto_result r;
	struct buf b = BUF_INIT;
	uint8_t hdr[5], more[64];
	char text[160];
	uint32_t len;
	ssize_t n;
	size_t got;
	int rc = -1, saved;

	hello_init(&h, PROTO_ROLE_ACTIVE, features);
	if (proto_send_hello(c, PT_HELLO, &h, &b, err) == -1)
		goto out;
	/*
	 * Read the header by hand: a login banner or a shell start-up file
	 * that prints is text where a frame should be, and deserves a
	 * better message than "frame too large".
	 */
	if (conn_read_full(c, hdr, sizeof(hdr), err) == -1) {
		if (err != NULL && err->code == AS_E_TRUNCATED)
			as_err_set(err, AS_E_IO, 0, "'%s' closed the "
			    "connection before the autosync protocol started",
			    c->peer);
		goto out;
	}
	len = le32(hdr);
	if (len == 0 || len - 1 > PROTO_CTRL_MAX ||
	    (hdr[4] != PT_HELLO_OK && hdr[4] != PT_RESULT)) {
		memcpy(more, hdr, sizeof(hdr));
		got = sizeof(hdr);
		saved = c->idle_ms;
		c->idle_ms = 500;
		while (got < sizeof(more)) {
			n = conn_read_some(c, more + got, sizeof(more) - got,
			    NULL);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		c->idle_ms = saved;
		printable(more, got, text, sizeof(text));
		as_err_set(err, AS_E_MALFORMED, 0, "'%s' printed '%s' instead "
		    "of speaking the autosync protocol (a login banner, or a "
		    "shell start-up file that prints?)", c->peer, text);
		goto out;
	}
	buf_reset(&b);
	if (len > 1 && conn_read_full(c, buf_reserve(&b, len - 1), len - 1,
	    err) == -1)
		goto out;
	b.len = len - 1;
	if (hdr[4] == PT_RESULT) {
		if (proto_dec_result(&r, b.data, b.len, err) == -1)
			goto out;
		proto_result_to_err(&r, c->peer, err);
		goto out;
	}
	if (proto_dec_hello(&h, b.data, b.len, err) == -1) {
		as_err_prefix(err, "'%s'", c->peer);
		goto out;
	}
	if (h.role != PROTO_ROLE_PASSIVE) {
		as_err_set(err, AS_E_AUTH, 0, "'%s' answered with the wrong "
		    "role %u (a reflected greeting?)", c->peer, h.role);
		goto out;
	}
	if (h.version < PROTO_VERSION_MIN || h.version > PROTO_VERSION) {
		as_err_set(err, AS_E_UNSUPPORTED, 0, "'%s' (%s) chose protocol "
		    "version %u; this side speaks %u..%u", c->peer,
		    h.software, h.version, PROTO_VERSION_MIN, PROTO_VERSION);
		goto out;
	}
	if ((h.features & ~features) != 0) {
		as_err_set(err, AS_E_UNSUPPORTED, 0, "'%s' chose features "
		    "0x%x that were not offered", c->peer, h.features);
		goto out;
	}
	*chosen = h.features;
	rc = 0;
out:
	buf_release(&b);
	return rc;
}

int
proto_server_hello(struct conn *c, uint32_t allowed, uint32_t *chosen,
    struct as_err *err)
{
	struct proto_hello h, mine;
	struct as_err e2;
	struct buf b = BUF_INIT;
	int rc = -1;

	if (proto_expect(c, PT_HELLO, &b, NULL, err) == -1)
		goto out;
	if (proto_dec_hello(&h, b.data, b.len, err) == -1)
		goto out;
	if (h.role != PROTO_ROLE_ACTIVE) {
		as_err_set(err, AS_E_AUTH, 0, "greeting with the wrong role "
		    "%u (a reflected greeting?)", h.role);
		goto refuse;
	}
	if (h.version < PROTO_VERSION_MIN || h.min_version > PROTO_VERSION) {
		as_err_set(err, AS_E_UNSUPPORTED, 0, "client '%s' speaks "
		    "protocol versions %u..%u; this server speaks %u..%u",
		    h.software, h.min_version, h.version, PROTO_VERSION_MIN,
		    PROTO_VERSION);
		goto refuse;
	}
	hello_init(&mine, PROTO_ROLE_PASSIVE,
	    h.features & allowed & PROTO_F_KNOWN);
	if (h.version < mine.version)
		mine.version = h.version;
	if (proto_send_hello(c, PT_HELLO_OK, &mine, &b, err) == -1)
		goto out;
	*chosen = mine.features;
	rc = 0;
	goto out;
refuse:
	(void)proto_send_error(c, err, &b, &e2);
out:
	buf_release(&b);
	return rc;
}
