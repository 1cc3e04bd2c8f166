/* catalog.c - snapshot catalogs in memory and on disk; see catalog.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format/catalog.h"
#include "format/path.h"
#include "format/record.h"
#include "format/stream.h"
#include "base/xmalloc.h"
#include "base/banned.h"

#define HDR_FIXED	44
#define ENT_FIXED	80

void
catalog_init(struct catalog *c)
{
	memset(c, 0, sizeof(*c));
	c->hdr.version = CAT_VERSION;
}

void
cat_header_release(struct cat_header *h)
{
	if (h == NULL)
		return;
	free(h->source);
	h->source = NULL;
}

void
catalog_release(struct catalog *c)
{
	if (c == NULL)
		return;
	cat_header_release(&c->hdr);
	free(c->ents);
	free(c->ino_index);
	buf_release(&c->strings);
	buf_release(&c->xattrs);
	buf_release(&c->hashes);
	catalog_init(c);
}

static void
buf_trim(struct buf *b)
{
	if (b->data == NULL || b->cap == b->len)
		return;
	if (b->len == 0) {
		buf_release(b);
		return;
	}
	b->data = xrealloc(b->data, b->len);
	b->cap = b->len;
}

void
catalog_trim(struct catalog *c)
{
	if (c->ents != NULL && c->cap > c->n && c->n > 0) {
		c->ents = xreallocarray(c->ents, c->n, sizeof(*c->ents));
		c->cap = c->n;
	}
	buf_trim(&c->strings);
	buf_trim(&c->xattrs);
	buf_trim(&c->hashes);
}

static uint32_t
add_string(struct buf *b, const char *s, size_t len)
{
	uint32_t off = (uint32_t)b->len;

	if (b->len + len + 1 > UINT32_MAX)
		fatal("catalog string arena exceeds 4 GiB");
	buf_add(b, s, len);
	buf_add_u8(b, 0);
	return off;
}

uint32_t
catalog_xattr_next(const struct catalog *c, size_t len)
{
	if (c->xattrs.len + len > UINT32_MAX)
		fatal("catalog xattr arena exceeds 4 GiB");
	return (uint32_t)c->xattrs.len;
}

uint32_t
catalog_hash_next(const struct catalog *c, uint64_t nblocks)
{
	uint64_t ix = c->hashes.len / CAT_HASH_LEN;

	if (ix + nblocks > UINT32_MAX)
		fatal("catalog holds more than 2^32 block hashes");
	return (uint32_t)ix;
}

struct cat_entry *
catalog_add(struct catalog *c, const struct cat_entry_in *in)
{
	struct cat_entry *e;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 1024;
		c->ents = xreallocarray(c->ents, c->cap, sizeof(*c->ents));
	}
	e = &c->ents[c->n++];
	*e = *in->st;
	e->path_len = (uint16_t)in->path_len;
	e->path_off = add_string(&c->strings, in->path, in->path_len);
	e->aux_len = (uint16_t)in->aux_len;
	if (in->aux_len)	/* right after the path: catalog_aux() */
		(void)add_string(&c->strings, in->aux, in->aux_len);
	e->xattr_off = catalog_xattr_next(c, in->xattr_len);
	e->xattr_len = (uint32_t)in->xattr_len;
	buf_add(&c->xattrs, in->xattrs, in->xattr_len);
	e->hash_ix = catalog_hash_next(c, in->nblocks);
	e->nblocks = in->nblocks;
	if (in->hashes != NULL)
		buf_add(&c->hashes, in->hashes,
		    (size_t)in->nblocks * CAT_HASH_LEN);
	else if (in->nblocks != 0) {
		buf_reserve(&c->hashes, (size_t)in->nblocks * CAT_HASH_LEN);
		memset(c->hashes.data + c->hashes.len, 0,
		    (size_t)in->nblocks * CAT_HASH_LEN);
		c->hashes.len += (size_t)in->nblocks * CAT_HASH_LEN;
	}
	return e;
}

void
catalog_append(struct catalog *c, const struct catalog *src)
{
	size_t soff = c->strings.len, i;
	uint32_t xoff, hix;
	struct cat_entry *e;

	if (src->n == 0)
		return;
	if (soff + src->strings.len > UINT32_MAX)
		fatal("catalog string arena exceeds 4 GiB");
	xoff = catalog_xattr_next(c, src->xattrs.len);
	hix = catalog_hash_next(c, src->hashes.len / CAT_HASH_LEN);
	if (c->cap < c->n + src->n) {
		c->cap = c->cap * 2 > c->n + src->n ? c->cap * 2 :
		    c->n + src->n;
		c->ents = xreallocarray(c->ents, c->cap, sizeof(*c->ents));
	}
	buf_add(&c->strings, src->strings.data, src->strings.len);
	buf_add(&c->xattrs, src->xattrs.data, src->xattrs.len);
	buf_add(&c->hashes, src->hashes.data, src->hashes.len);
	e = c->ents + c->n;
	memcpy(e, src->ents, src->n * sizeof(*e));
	for (i = 0; i < src->n; i++) {
		e[i].path_off += (uint32_t)soff;
		e[i].xattr_off += xoff;
		e[i].hash_ix += hix;
	}
	c->n += src->n;
	catalog_drop_ino_index(c);
}

/*
 * An arena that was never grown has no memory: NULL + 0, and memcpy or
 * memcmp of 0 bytes at NULL, are undefined.  Zero-length views of such
 * an arena point here instead.
 */
static uint8_t	empty_arena[1];

uint8_t *
catalog_hashes_of(struct catalog *c, const struct cat_entry *e)
{
	return c->hashes.data == NULL ? empty_arena :
	    c->hashes.data + CAT_HASH_AT(e);
}

const char *
catalog_path(const struct catalog *c, const struct cat_entry *e)
{
	return (const char *)c->strings.data + e->path_off;
}

const char *
catalog_aux(const struct catalog *c, const struct cat_entry *e)
{
	/* the empty string is the path's NUL */
	return (const char *)c->strings.data + e->path_off + e->path_len +
	    (e->aux_len != 0);
}

const uint8_t *
catalog_xattrs(const struct catalog *c, const struct cat_entry *e)
{
	return c->xattrs.data == NULL ? empty_arena :
	    c->xattrs.data + e->xattr_off;
}

long
catalog_find(const struct catalog *c, const char *path, size_t len)
{
	size_t lo = 0, hi = c->n, mid;
	int r;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		r = path_cmp(catalog_path(c, &c->ents[mid]),
		    c->ents[mid].path_len, path, len);
		if (r == 0)
			return (long)mid;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static size_t
ino_slot(uint64_t ino, size_t cap)
{
	ino ^= ino >> 33;
	ino *= UINT64_C(0xff51afd7ed558ccd);
	ino ^= ino >> 33;
	return (size_t)ino & (cap - 1);
}

long
catalog_find_ino(struct catalog *c, uint64_t ino)
{
	size_t i, s;

	if (c->ino_index == NULL) {
		c->ino_cap = 16;
		while (c->ino_cap < c->n * 2)
			c->ino_cap *= 2;
		c->ino_index = xcalloc(c->ino_cap, sizeof(*c->ino_index));
		for (i = 0; i < c->n; i++) {
			s = ino_slot(c->ents[i].ino, c->ino_cap);
			while (c->ino_index[s] != 0 &&
			    c->ents[c->ino_index[s] - 1].ino != c->ents[i].ino)
				s = (s + 1) & (c->ino_cap - 1);
			if (c->ino_index[s] == 0)	/* keep the first */
				c->ino_index[s] = (uint32_t)i + 1;
		}
	}
	s = ino_slot(ino, c->ino_cap);
	while (c->ino_index[s] != 0) {
		if (c->ents[c->ino_index[s] - 1].ino == ino)
			return (long)c->ino_index[s] - 1;
		s = (s + 1) & (c->ino_cap - 1);
	}
	return -1;
}

void
catalog_drop_ino_index(struct catalog *c)
{
	free(c->ino_index);
	c->ino_index = NULL;
	c->ino_cap = 0;
}

int
catalog_check_order(const struct catalog *c, struct as_err *err)
{
	size_t i;

	for (i = 1; i < c->n; i++)
		if (path_cmp(catalog_path(c, &c->ents[i - 1]),
		    c->ents[i - 1].path_len, catalog_path(c, &c->ents[i]),
		    c->ents[i].path_len) >= 0)
			return as_err_set(err, AS_E_MALFORMED, 0,
			    "catalog entry %zu is out of order", i);
	return 0;
}

static void
put_header(struct cat_writer *w, const struct cat_header *h)
{
	uint8_t f[HDR_FIXED + 256 + AS_PATH_MAX_BUF];
	size_t nl, sl;

	nl = strlen(h->name);
	sl = h->source ? strlen(h->source) : 0;
	put_le32(f, CAT_VERSION);
	put_le32(f + 4, h->kind);
	put_le32(f + 8, h->block_size);
	put_le32(f + 12, h->flags);
	put_le64(f + 16, h->guid);
	put_le64(f + 24, h->base_guid);
	put_le64(f + 32, (uint64_t)h->time_ns);
	put_le16(f + 40, (uint16_t)nl);
	put_le16(f + 42, (uint16_t)sl);
	memcpy(f + HDR_FIXED, h->name, nl);
	if (sl)
		memcpy(f + HDR_FIXED + nl, h->source, sl);
	rec_encode(&w->out, &w->chain, CAT_REC_HEADER, f, HDR_FIXED + nl + sl,
	    NULL, 0);
}

/*
 * n hashes of an entry that has none in memory (catalog_add's zeros):
 * a buffer of zeros, grown to the largest record's worth.
 */
static const uint8_t *
zero_hashes(struct cat_writer *w, size_t n)
{
	size_t need = n * CAT_HASH_LEN;

	if (w->zeros.len < need) {
		buf_reserve(&w->zeros, need - w->zeros.len);
		memset(w->zeros.data + w->zeros.len, 0, need - w->zeros.len);
		w->zeros.len = need;
	}
	return w->zeros.data;
}

/* Hand what is encoded to fn once it holds CAT_ENCODE_CHUNK (or at last). */
static int
flush(struct cat_writer *w, int last)
{
	if (w->fn == NULL || w->failed || (!last &&
	    w->out.len < CAT_ENCODE_CHUNK))
		return w->failed ? -1 : 0;
	if (w->fn(w->arg, w->out.data, w->out.len) == -1) {
		w->failed = 1;
		return -1;
	}
	buf_reset(&w->out);
	return 0;
}

/* One ENTRY record (and its HASHES continuations), unchecked. */
static int
put_entry(struct cat_writer *w, const struct cat_entry_in *in)
{
	const struct cat_entry *e = in->st;
	const uint8_t *hashes = in->hashes;
	uint8_t ef[ENT_FIXED];
	uint32_t inl;
	size_t done, n;

	if (hashes == NULL && in->nblocks != 0)
		hashes = zero_hashes(w, in->nblocks < CAT_HASHES_PER_REC ?
		    in->nblocks : CAT_HASHES_PER_REC);
	put_le32(ef, e->mode);
	put_le32(ef + 4, e->uid);
	put_le32(ef + 8, e->gid);
	put_le32(ef + 12, e->nlink);
	put_le32(ef + 16, e->flags & ~CAT_EF_MEMORY);
	put_le64(ef + 20, e->ino);
	put_le64(ef + 28, e->size);
	put_le64(ef + 36, e->rdev);
	put_le64(ef + 44, (uint64_t)e->mtime_sec);
	put_le64(ef + 52, (uint64_t)e->ctime_sec);
	put_le32(ef + 60, e->mtime_nsec);
	put_le32(ef + 64, e->ctime_nsec);
	put_le32(ef + 68, in->nblocks);
	put_le16(ef + 72, (uint16_t)in->path_len);
	put_le16(ef + 74, (uint16_t)in->aux_len);
	put_le32(ef + 76, (uint32_t)in->xattr_len);
	/* hashes that fit go inline; the rest in HASHES records */
	inl = in->nblocks < CAT_HASHES_PER_REC / 2 ? in->nblocks :
	    CAT_HASHES_PER_REC / 2;
	buf_reset(&w->tmp);
	buf_add(&w->tmp, ef, ENT_FIXED);
	buf_add(&w->tmp, in->path, in->path_len);
	buf_add(&w->tmp, in->aux, in->aux_len);
	buf_add(&w->tmp, in->xattrs, in->xattr_len);
	rec_encode(&w->out, &w->chain, CAT_REC_ENTRY, w->tmp.data, w->tmp.len,
	    inl != 0 ? hashes : NULL, (size_t)inl * CAT_HASH_LEN);
	for (done = inl; done < in->nblocks; done += n) {
		n = in->nblocks - done;
		if (n > CAT_HASHES_PER_REC)
			n = CAT_HASHES_PER_REC;
		rec_encode(&w->out, &w->chain, CAT_REC_HASHES,
		    in->hashes != NULL ? hashes + done * CAT_HASH_LEN :
		    hashes, n * CAT_HASH_LEN, NULL, 0);
	}
	w->n++;
	return flush(w, 0);
}

void
cat_writer_init(struct cat_writer *w, const struct cat_header *h,
    int (*fn)(void *arg, const void *p, size_t len), void *arg)
{
	memset(w, 0, sizeof(*w));
	w->chain = REC_SEED_CATALOG;
	w->fn = fn;
	w->arg = arg;
	put_header(w, h);
}

int
cat_writer_add(struct cat_writer *w, const struct cat_entry_in *in)
{
	if (w->failed)
		return -1;
	/* what catalog_decode() would refuse is never written */
	if (in->path_len > AS_PATH_MAX || in->aux_len > UINT16_MAX ||
	    (w->n > 0 && path_cmp((const char *)w->prev.data, w->prev.len,
	    in->path, in->path_len) >= 0)) {
		w->failed = 1;
		errno = EINVAL;
		return -1;
	}
	buf_reset(&w->prev);
	buf_add(&w->prev, in->path, in->path_len);
	return put_entry(w, in);
}

int
cat_writer_finish(struct cat_writer *w)
{
	uint8_t f[8];

	if (w->failed)
		return -1;
	put_le64(f, (uint64_t)w->n);
	rec_encode(&w->out, &w->chain, CAT_REC_END, f, 8, NULL, 0);
	return flush(w, 1);
}

void
cat_writer_release(struct cat_writer *w)
{
	if (w == NULL)
		return;
	buf_release(&w->out);
	buf_release(&w->tmp);
	buf_release(&w->prev);
	buf_release(&w->zeros);
}

/*
 * Encode c, appended to out when fn is NULL; with fn, handed to fn
 * whenever CAT_ENCODE_CHUNK bytes are ready, and at the end.  No order
 * check: tests encode malformed catalogs on purpose.
 */
static int
encode(const struct catalog *c, struct buf *out,
    int (*fn)(void *, const void *, size_t), void *arg)
{
	struct cat_writer w;
	struct cat_entry_in in;
	const struct cat_entry *e;
	size_t i;
	int rc = 0;

	cat_writer_init(&w, &c->hdr, fn, arg);
	memset(&in, 0, sizeof(in));
	for (i = 0; i < c->n && rc == 0; i++) {
		e = &c->ents[i];
		in.st = e;
		in.path = catalog_path(c, e);
		in.path_len = e->path_len;
		in.aux = catalog_aux(c, e);
		in.aux_len = e->aux_len;
		in.xattrs = catalog_xattrs(c, e);
		in.xattr_len = e->xattr_len;
		in.hashes = catalog_hashes_of((struct catalog *)c, e);
		in.nblocks = e->nblocks;
		rc = put_entry(&w, &in);
	}
	if (rc == 0)
		rc = cat_writer_finish(&w);
	if (fn == NULL)
		buf_add(out, w.out.data, w.out.len);
	cat_writer_release(&w);
	return rc;
}

void
catalog_encode(const struct catalog *c, struct buf *out)
{
	(void)encode(c, out, NULL, NULL);
}

int
catalog_encode_stream(const struct catalog *c,
    int (*fn)(void *arg, const void *p, size_t len), void *arg)
{
	return encode(c, NULL, fn, arg);
}

static int
dec_header(struct cat_header *h, const struct rec *r, struct as_err *err)
{
	const uint8_t *p = r->payload;
	uint16_t nl, sl;

	if (r->type != CAT_REC_HEADER || r->len < HDR_FIXED)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "not an autosync catalog");
	memset(h, 0, sizeof(*h));
	h->version = le32(p);
	if (h->version != CAT_VERSION)
		return as_err_set(err, AS_E_UNSUPPORTED, 0,
		    "catalog version %u is not supported", h->version);
	h->kind = le32(p + 4);
	h->block_size = le32(p + 8);
	h->flags = le32(p + 12);
	h->guid = le64(p + 16);
	h->base_guid = le64(p + 24);
	h->time_ns = (int64_t)le64(p + 32);
	nl = le16(p + 40);
	sl = le16(p + 42);
	if (r->len != HDR_FIXED + (uint32_t)nl + sl || nl > 255 ||
	    sl > AS_PATH_MAX || h->guid == 0)
		return as_err_set(err, AS_E_MALFORMED,
		    0, "catalog header is malformed");
	if (h->block_size < AS_BLOCK_MIN || h->block_size > AS_BLOCK_MAX ||
	    (h->block_size & (h->block_size - 1)) != 0)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "catalog block size %u is invalid", h->block_size);
	memcpy(h->name, p + HDR_FIXED, nl);
	h->name[nl] = '\0';
	h->source = xstrndup((const char *)p + HDR_FIXED + nl, sl);
	return 0;
}

int
catalog_decode_header(struct cat_header *h, const uint8_t *data, size_t len,
    struct as_err *err)
{
	struct rec_dec d;
	struct rec r;
	size_t used;
	int rc;

	rec_dec_init(&d, REC_SEED_CATALOG, "catalog");
	rc = rec_dec_feed(&d, data, len, &used, &r, err);
	if (rc == 0)
		rc = as_err_set(err, AS_E_TRUNCATED, 0, "catalog truncated");
	else if (rc == 1)
		rc = dec_header(h, &r, err);
	rec_dec_release(&d);
	return rc;
}

/* One CAT_REC_ENTRY into c; hashes beyond the inline ones come later. */
static int
dec_entry(struct catalog *c, const struct rec *r, size_t left,
    uint32_t *hashes_left, struct as_err *err)
{
	const uint8_t *p = r->payload;
	struct cat_entry st;
	struct cat_entry_in in;
	size_t hl, inl, pos = 0;
	const char *n;
	const uint8_t *v;
	size_t nlen, vlen;
	int x;

	if (r->len < ENT_FIXED)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "catalog entry %zu is short", c->n);
	if (le32(p) > UINT16_MAX || le32(p + 16) > UINT16_MAX)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "catalog entry %zu has out-of-range fields", c->n);
	memset(&st, 0, sizeof(st));
	st.mode = (uint16_t)le32(p);
	st.uid = le32(p + 4);
	st.gid = le32(p + 8);
	st.nlink = le32(p + 12);
	/* in-memory flags mean nothing in a file */
	st.flags = (uint16_t)(le32(p + 16) & ~(uint32_t)CAT_EF_MEMORY);
	st.ino = le64(p + 20);
	st.size = le64(p + 28);
	st.rdev = le64(p + 36);
	st.mtime_sec = (int64_t)le64(p + 44);
	st.ctime_sec = (int64_t)le64(p + 52);
	st.mtime_nsec = le32(p + 60);
	st.ctime_nsec = le32(p + 64);
	st.nblocks = le32(p + 68);
	memset(&in, 0, sizeof(in));
	in.st = &st;
	in.path_len = le16(p + 72);
	in.aux_len = le16(p + 74);
	in.xattr_len = le32(p + 76);
	in.nblocks = st.nblocks;
	hl = (size_t)r->len - ENT_FIXED;
	if (in.path_len + in.aux_len + in.xattr_len > hl)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "catalog entry %zu overruns its record", c->n);
	hl -= in.path_len + in.aux_len + in.xattr_len;
	if (hl % CAT_HASH_LEN != 0 || hl / CAT_HASH_LEN > st.nblocks)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "catalog entry %zu has a bad hash count", c->n);
	inl = hl / CAT_HASH_LEN;
	/* the rest must come in HASHES records: bound it by the input left */
	if ((uint64_t)(st.nblocks - inl) * CAT_HASH_LEN > left)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "catalog entry %zu claims %u hashes beyond the end of the "
		    "file", c->n, st.nblocks);
	in.path = (const char *)p + ENT_FIXED;
	in.aux = in.path + in.path_len;
	in.xattrs = (const uint8_t *)in.aux + in.aux_len;
	if (path_check(in.path, in.path_len, 1, err) == -1)
		return as_err_prefix(err, "catalog entry %zu", c->n);
	if (memchr(in.aux, '\0', in.aux_len) != NULL)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "catalog entry %zu has a NUL in its link target", c->n);
	if (st.size > (uint64_t)AS_SIZE_MAX || st.mtime_nsec >= 1000000000u ||
	    st.ctime_nsec >= 1000000000u ||
	    (uint64_t)st.nblocks * c->hdr.block_size > (uint64_t)AS_SIZE_MAX +
	    c->hdr.block_size)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "catalog entry %zu has out-of-range fields", c->n);
	while ((x = xattr_blob_next(in.xattrs, in.xattr_len, &pos, &n, &nlen,
	    &v, &vlen)) == 1)
		;
	if (x == -1)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "catalog entry %zu has malformed xattrs", c->n);
	/* add with inline hashes, zero-fill the rest for HASHES records */
	in.hashes = NULL;
	{
		struct cat_entry *e = catalog_add(c, &in);
		if (inl != 0)
			memcpy(catalog_hashes_of(c, e), in.xattrs +
			    in.xattr_len, inl * CAT_HASH_LEN);
	}
	*hashes_left = st.nblocks - (uint32_t)inl;
	return 0;
}

int
catalog_decode(struct catalog *c, const uint8_t *data, size_t len,
    struct as_err *err)
{
	return catalog_decode_cb(c, data, len, NULL, NULL, err);
}

int
catalog_decode_cb(struct catalog *c, const uint8_t *data, size_t len,
    void (*done)(void *arg, size_t off), void *arg, struct as_err *err)
{
	struct rec_dec d;
	struct rec r;
	size_t used, off = 0, told = 0;
	uint32_t hashes_left = 0, n;
	int rc, state = 0;	/* 0 header, 1 entries, 2 done */
	struct cat_entry *last = NULL;

	/*
	 * Every entry takes at least one record of REC_HDR_LEN + ENT_FIXED +
	 * REC_TRAILER_LEN bytes: size the array once from that bound instead
	 * of doubling (and copying) it, and trim it at the end.
	 */
	if (c->ents == NULL && len / (REC_HDR_LEN + ENT_FIXED +
	    REC_TRAILER_LEN) > 0) {
		c->cap = len / (REC_HDR_LEN + ENT_FIXED + REC_TRAILER_LEN);
		c->ents = xreallocarray(NULL, c->cap, sizeof(*c->ents));
	}
	rec_dec_init(&d, REC_SEED_CATALOG, "catalog");
	for (;;) {
		/* everything before the record about to be read is used */
		if (done != NULL && off - told >= CAT_DECODE_DONE_STEP) {
			done(arg, off);
			told = off;
		}
		rc = rec_dec_feed(&d, data + off, len - off, &used, &r, err);
		off += used;
		if (rc == -1)
			goto fail;
		if (rc == 0) {
			as_err_set(err, AS_E_TRUNCATED, 0,
			    "catalog truncated after %zu entries", c->n);
			goto fail;
		}
		if (state == 2) {
			as_err_set(err, AS_E_MALFORMED, 0,
			    "catalog has data after its end");
			goto fail;
		}
		if (state == 0) {
			if (dec_header(&c->hdr, &r, err) == -1)
				goto fail;
			state = 1;
		} else if (r.type == CAT_REC_HASHES) {
			n = r.len / CAT_HASH_LEN;
			if (last == NULL || r.len % CAT_HASH_LEN != 0 ||
			    n == 0 || n > hashes_left) {
				as_err_set(err, AS_E_MALFORMED, 0,
				    "catalog has a misplaced hash record");
				goto fail;
			}
			memcpy(catalog_hashes_of(c, last) + (size_t)(last->nblocks -
			    hashes_left) * CAT_HASH_LEN, r.payload, r.len);
			hashes_left -= n;
		} else if (hashes_left != 0) {
			as_err_set(err, AS_E_MALFORMED, 0,
			    "catalog entry %zu lacks %u hashes", c->n,
			    hashes_left);
			goto fail;
		} else if (r.type == CAT_REC_ENTRY) {
			if (dec_entry(c, &r, len - off, &hashes_left,
			    err) == -1)
				goto fail;
			last = &c->ents[c->n - 1];
			if (c->n > 1 && path_cmp(catalog_path(c, last - 1),
			    last[-1].path_len, catalog_path(c, last),
			    last->path_len) >= 0) {
				as_err_set(err, AS_E_MALFORMED, 0,
				    "catalog entry %zu is out of order",
				    c->n - 1);
				goto fail;
			}
		} else if (r.type == CAT_REC_END) {
			if (r.len != 8 || le64(r.payload) != c->n) {
				as_err_set(err, AS_E_MALFORMED, 0,
				    "catalog end does not match its entries");
				goto fail;
			}
			state = 2;
			if (off == len)
				break;
		} else {
			as_err_set(err, AS_E_MALFORMED, 0,
			    "catalog has an unknown record type 0x%x", r.type);
			goto fail;
		}
	}
	rec_dec_release(&d);
	catalog_trim(c);
	return 0;
fail:
	rec_dec_release(&d);
	catalog_release(c);
	return -1;
}

int
xattr_blob_next(const uint8_t *blob, size_t len, size_t *pos,
    const char **name, size_t *name_len, const uint8_t **value,
    size_t *value_len)
{
	size_t p = *pos, nl, vl;

	if (p == len)
		return 0;
	if (len - p < 6)
		return -1;
	nl = le16(blob + p);
	vl = le32(blob + p + 2);
	if (nl == 0 || nl > AS_XATTR_NAME_MAX || vl > AS_XATTR_VALUE_MAX ||
	    len - p - 6 < nl + vl)
		return -1;
	*name = (const char *)blob + p + 6;
	*name_len = nl;
	*value = blob + p + 6 + nl;
	*value_len = vl;
	*pos = p + 6 + nl + vl;
	return 1;
}

void
xattr_blob_add(struct buf *blob, const char *name, size_t name_len,
    const void *value, size_t value_len)
{
	buf_add_u16(blob, (uint16_t)name_len);
	buf_add_u32(blob, (uint32_t)value_len);
	buf_add(blob, name, name_len);
	buf_add(blob, value, value_len);
}

int
cat_reader_open(struct cat_reader *rd, const uint8_t *data, size_t len,
    void (*done)(void *arg, size_t off), void *arg, struct as_err *err)
{
	struct rec r;
	size_t used;
	int rc;

	memset(rd, 0, sizeof(*rd));
	catalog_init(&rd->win);
	rd->data = data;
	rd->len = len;
	rd->done = done;
	rd->done_arg = arg;
	rec_dec_init(&rd->d, REC_SEED_CATALOG, "catalog");
	rc = rec_dec_feed(&rd->d, data, len, &used, &r, err);
	rd->off = used;
	if (rc == 0)
		rc = as_err_set(err, AS_E_TRUNCATED, 0, "catalog truncated");
	else if (rc == 1)
		rc = dec_header(&rd->win.hdr, &r, err);
	if (rc == -1) {
		cat_reader_release(rd);
		return -1;
	}
	return 0;
}

int
cat_reader_next(struct cat_reader *rd, const struct cat_entry **out,
    struct as_err *err)
{
	struct catalog *c = &rd->win;
	struct cat_entry *e = NULL;
	struct rec r;
	size_t used;
	uint32_t hashes_left = 0, n;
	int rc;

	*out = NULL;
	if (rd->state == 2)
		return 0;
	c->n = 0;
	buf_reset(&c->strings);
	buf_reset(&c->xattrs);
	buf_reset(&c->hashes);
	for (;;) {
		if (rd->done != NULL && rd->off - rd->told >=
		    CAT_DECODE_DONE_STEP) {
			rd->done(rd->done_arg, rd->off);
			rd->told = rd->off;
		}
		rc = rec_dec_feed(&rd->d, rd->data + rd->off, rd->len -
		    rd->off, &used, &r, err);
		rd->off += used;
		if (rc == -1)
			return -1;
		if (rc == 0)
			return as_err_set(err, AS_E_TRUNCATED, 0,
			    "catalog truncated after %zu entries", rd->count);
		if (r.type == CAT_REC_HASHES) {
			n = r.len / CAT_HASH_LEN;
			if (e == NULL || r.len % CAT_HASH_LEN != 0 || n == 0 ||
			    n > hashes_left)
				return as_err_set(err, AS_E_MALFORMED, 0,
				    "catalog has a misplaced hash record");
			memcpy(catalog_hashes_of(c, e) + (size_t)(e->nblocks -
			    hashes_left) * CAT_HASH_LEN, r.payload, r.len);
			hashes_left -= n;
		} else if (hashes_left != 0)
			return as_err_set(err, AS_E_MALFORMED, 0,
			    "catalog entry %zu lacks %u hashes", rd->count,
			    hashes_left);
		else if (r.type == CAT_REC_ENTRY) {
			if (e != NULL)
				return as_err_set(err, AS_E_INTERNAL, 0,
				    "catalog reader: two entries");
			c->n = 0;
			if (dec_entry(c, &r, rd->len - rd->off, &hashes_left,
			    err) == -1)
				return -1;
			e = &c->ents[0];
			if (rd->count > 0 && path_cmp((const char *)
			    rd->prev.data, rd->prev.len, catalog_path(c, e),
			    e->path_len) >= 0)
				return as_err_set(err, AS_E_MALFORMED, 0,
				    "catalog entry %zu is out of order",
				    rd->count);
		} else if (r.type == CAT_REC_END) {
			if (e != NULL)
				return as_err_set(err, AS_E_INTERNAL, 0,
				    "catalog reader: end inside an entry");
			if (r.len != 8 || le64(r.payload) != rd->count)
				return as_err_set(err, AS_E_MALFORMED, 0,
				    "catalog end does not match its entries");
			if (rd->off != rd->len)
				return as_err_set(err, AS_E_MALFORMED, 0,
				    "catalog has data after its end");
			rd->state = 2;
			return 0;
		} else
			return as_err_set(err, AS_E_MALFORMED, 0,
			    "catalog has an unknown record type 0x%x", r.type);
		if (e != NULL && hashes_left == 0) {
			/* complete; a HASHES record never follows it now */
			buf_reset(&rd->prev);
			buf_add(&rd->prev, catalog_path(c, e), e->path_len);
			rd->count++;
			*out = e;
			return 1;
		}
	}
}

void
cat_reader_mark(const struct cat_reader *rd, struct cat_reader_mark *m)
{
	m->off = rd->off;
	m->chain = rd->d.chain;
	m->doff = rd->d.offset;
	m->nrec = rd->d.nrec;
	m->count = rd->count;
	buf_reset(&m->prev);
	buf_add(&m->prev, rd->prev.data, rd->prev.len);
}

void
cat_reader_mark_release(struct cat_reader_mark *m)
{
	buf_release(&m->prev);
}

void
cat_reader_fork(struct cat_reader *dst, const struct cat_reader *src,
    const struct cat_reader_mark *m)
{
	memset(dst, 0, sizeof(*dst));
	catalog_init(&dst->win);
	dst->win.hdr.version = src->win.hdr.version;
	dst->win.hdr.kind = src->win.hdr.kind;
	dst->win.hdr.flags = src->win.hdr.flags;
	dst->win.hdr.block_size = src->win.hdr.block_size;
	dst->data = src->data;
	dst->len = src->len;
	dst->off = m->off;
	dst->told = m->off;
	dst->done = src->done;
	dst->done_arg = src->done_arg;
	rec_dec_init(&dst->d, m->chain, src->d.what);
	dst->d.offset = m->doff;
	dst->d.nrec = m->nrec;
	dst->count = m->count;
	buf_add(&dst->prev, m->prev.data, m->prev.len);
}

void
cat_reader_release(struct cat_reader *rd)
{
	if (rd == NULL)
		return;
	rec_dec_release(&rd->d);
	catalog_release(&rd->win);
	buf_release(&rd->prev);
	memset(rd, 0, sizeof(*rd));
}
