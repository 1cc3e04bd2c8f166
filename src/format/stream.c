/* stream.c - stream record payloads and order rules; see stream.h. */
#include <string.h>
#include <sys/stat.h>

#include "format/stream.h"
#include "base/banned.h"

#define BEGIN_FIXED	60
#define ENTRY_FIXED	56
#define XATTR_FIXED	8
#define DATA_FIXED	8
#define HOLE_LEN	16
#define END_LEN		32

void
stream_enc_init(struct stream_enc *e, struct buf *out)
{
	memset(e, 0, sizeof(*e));
	e->out = out;
	e->chain = REC_SEED_STREAM;
}

void
stream_enc_begin(struct stream_enc *e, const struct as_begin *b)
{
	uint8_t f[BEGIN_FIXED];

	memcpy(f, AS_STREAM_MAGIC, 8);
	put_le32(f + 8, b->version);
	put_le32(f + 12, b->required);
	put_le32(f + 16, b->optional);
	put_le32(f + 20, b->kind);
	put_le32(f + 24, b->block_size);
	put_le32(f + 28, b->flags);
	put_le64(f + 32, b->base_guid);
	put_le64(f + 40, b->target_guid);
	put_le64(f + 48, (uint64_t)b->time_ns);
	put_le16(f + 56, b->name_len);
	put_le16(f + 58, b->source_len);
	/* name and source are small: join them in the record itself */
	{
		uint8_t tail[256 + 4096];
		memcpy(tail, b->name, b->name_len);
		memcpy(tail + b->name_len, b->source, b->source_len);
		rec_encode(e->out, &e->chain, AS_REC_BEGIN, f, sizeof(f),
		    tail, (size_t)b->name_len + b->source_len);
	}
	e->target_guid = b->target_guid;
	e->nrecords++;
}

void
stream_enc_entry(struct stream_enc *e, const struct as_entry *en)
{
	uint8_t f[ENTRY_FIXED + AS_PATH_MAX_BUF];

	memset(f, 0, ENTRY_FIXED);
	f[0] = en->op;
	f[1] = en->flags;
	put_le16(f + 2, en->path_len);
	put_le16(f + 4, en->aux_len);
	put_le32(f + 8, en->mode);
	put_le32(f + 12, en->uid);
	put_le32(f + 16, en->gid);
	put_le32(f + 20, en->nxattr);
	put_le64(f + 24, en->rdev);
	put_le64(f + 32, en->size);
	put_le64(f + 40, (uint64_t)en->mtime_sec);
	put_le32(f + 48, en->mtime_nsec);
	memcpy(f + ENTRY_FIXED, en->path, en->path_len);
	rec_encode(e->out, &e->chain, AS_REC_ENTRY, f,
	    ENTRY_FIXED + (size_t)en->path_len, en->aux, en->aux_len);
	e->nrecords++;
	e->nentries++;
}

void
stream_enc_xattr(struct stream_enc *e, const struct as_xattr *x)
{
	uint8_t f[XATTR_FIXED + AS_XATTR_NAME_MAX];

	put_le16(f, x->name_len);
	put_le16(f + 2, 0);
	put_le32(f + 4, x->value_len);
	memcpy(f + XATTR_FIXED, x->name, x->name_len);
	rec_encode(e->out, &e->chain, AS_REC_XATTR, f,
	    XATTR_FIXED + (size_t)x->name_len, x->value, x->value_len);
	e->nrecords++;
}

void
stream_enc_data(struct stream_enc *e, uint64_t off, const void *p,
    uint32_t len)
{
	uint8_t f[DATA_FIXED];

	put_le64(f, off);
	rec_encode(e->out, &e->chain, AS_REC_DATA, f, sizeof(f), p, len);
	e->nrecords++;
	e->data_bytes += len;
}

void
stream_enc_hole(struct stream_enc *e, uint64_t off, uint64_t len)
{
	uint8_t f[HOLE_LEN];

	put_le64(f, off);
	put_le64(f + 8, len);
	rec_encode(e->out, &e->chain, AS_REC_HOLE, f, sizeof(f), NULL, 0);
	e->nrecords++;
}

void
stream_enc_end(struct stream_enc *e)
{
	uint8_t f[END_LEN];

	put_le64(f, e->nrecords);
	put_le64(f + 8, e->nentries);
	put_le64(f + 16, e->data_bytes);
	put_le64(f + 24, e->target_guid);
	rec_encode(e->out, &e->chain, AS_REC_END, f, sizeof(f), NULL, 0);
}

void
stream_dec_init(struct stream_dec *d)
{
	memset(d, 0, sizeof(*d));
	rec_dec_init(&d->rd, REC_SEED_STREAM, "stream");
}

void
stream_dec_release(struct stream_dec *d)
{
	if (d == NULL)
		return;
	rec_dec_release(&d->rd);
}

#define BAD(code, ...) \
	as_err_set(err, code, 0, "stream record %llu: " __VA_ARGS__)
#define IDX (unsigned long long)r->index

static int
valid_snapname(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 255)
		return 0;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' &&
	    s[1] == '.'))
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '/' || c == '@')
			return 0;
	}
	return 1;
}

static int
dec_begin(struct stream_dec *d, const struct rec *r, struct as_rec *out,
    struct as_err *err)
{
	const uint8_t *p = r->payload;
	struct as_begin *b = &d->begin;

	if (d->seen_begin)
		return BAD(AS_E_MALFORMED, "a second begin record", IDX);
	if (r->len < BEGIN_FIXED || memcmp(p, AS_STREAM_MAGIC, 8) != 0)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "not an autosync stream (bad magic)");
	b->version = le32(p + 8);
	b->required = le32(p + 12);
	b->optional = le32(p + 16);
	b->kind = le32(p + 20);
	b->block_size = le32(p + 24);
	b->flags = le32(p + 28);
	b->base_guid = le64(p + 32);
	b->target_guid = le64(p + 40);
	b->time_ns = (int64_t)le64(p + 48);
	b->name_len = le16(p + 56);
	b->source_len = le16(p + 58);
	if (b->version != AS_STREAM_VERSION)
		return as_err_set(err, AS_E_UNSUPPORTED, 0,
		    "stream format version %u is not supported (this autosync "
		    "reads version %u)", b->version, AS_STREAM_VERSION);
	if ((b->required & ~AS_FEATURES_KNOWN) != 0)
		return as_err_set(err, AS_E_UNSUPPORTED, 0,
		    "stream requires unknown features 0x%x",
		    b->required & ~AS_FEATURES_KNOWN);
	if (r->len != BEGIN_FIXED + (uint32_t)b->name_len + b->source_len)
		return BAD(AS_E_MALFORMED, "begin length %u does not match "
		    "its fields", IDX, r->len);
	if (b->kind < AS_KIND_DIR || b->kind > AS_KIND_BTRFS)
		return BAD(AS_E_UNSUPPORTED, "unknown dataset kind %u", IDX,
		    b->kind);
	if (b->block_size < AS_BLOCK_MIN || b->block_size > AS_BLOCK_MAX ||
	    (b->block_size & (b->block_size - 1)) != 0)
		return BAD(AS_E_MALFORMED, "invalid block size %u", IDX,
		    b->block_size);
	if (b->flags != 0)
		return BAD(AS_E_UNSUPPORTED, "unknown begin flags 0x%x", IDX,
		    b->flags);
	if (b->target_guid == 0 || b->base_guid == b->target_guid)
		return BAD(AS_E_MALFORMED, "invalid snapshot guids", IDX);
	if (!valid_snapname((const char *)p + BEGIN_FIXED, b->name_len))
		return BAD(AS_E_MALFORMED, "invalid snapshot name", IDX);
	if (b->source_len > AS_PATH_MAX || memchr(p + BEGIN_FIXED +
	    b->name_len, '\0', b->source_len) != NULL)
		return BAD(AS_E_MALFORMED, "invalid source name", IDX);
	memcpy(d->name, p + BEGIN_FIXED, b->name_len);
	d->name[b->name_len] = '\0';
	b->name = d->name;
	b->source = (const char *)p + BEGIN_FIXED + b->name_len;
	d->seen_begin = 1;
	out->u.begin = *b;
	return 0;
}

static int
type_ok(uint32_t t)
{
	return t == S_IFREG || t == S_IFDIR || t == S_IFLNK || t == S_IFIFO ||
	    t == S_IFSOCK || t == S_IFCHR || t == S_IFBLK;
}

/* Everything about the previous entry that must be complete by now. */
static int
close_entry(struct stream_dec *d, const struct rec *r, struct as_err *err)
{
	if (d->xattrs_left != 0)
		return BAD(AS_E_MALFORMED, "%u xattr records missing for "
		    "the previous entry", IDX, d->xattrs_left);
	return 0;
}

static int
dec_entry(struct stream_dec *d, const struct rec *r, struct as_rec *out,
    struct as_err *err)
{
	const uint8_t *p = r->payload;
	struct as_entry *e = &out->u.entry;
	uint32_t type;
	int is_root_ok;

	if (close_entry(d, r, err) == -1)
		return -1;
	if (r->len < ENTRY_FIXED)
		return BAD(AS_E_MALFORMED, "entry of %u bytes is too short",
		    IDX, r->len);
	e->op = p[0];
	e->flags = p[1];
	e->path_len = le16(p + 2);
	e->aux_len = le16(p + 4);
	e->mode = le32(p + 8);
	e->uid = le32(p + 12);
	e->gid = le32(p + 16);
	e->nxattr = le32(p + 20);
	e->rdev = le64(p + 24);
	e->size = le64(p + 32);
	e->mtime_sec = (int64_t)le64(p + 40);
	e->mtime_nsec = le32(p + 48);
	e->path = (const char *)p + ENTRY_FIXED;
	e->aux = e->path + e->path_len;
	if (r->len != ENTRY_FIXED + (uint32_t)e->path_len + e->aux_len)
		return BAD(AS_E_MALFORMED, "entry length %u does not match "
		    "its fields", IDX, r->len);
	if (le16(p + 6) != 0 || le32(p + 52) != 0)
		return BAD(AS_E_MALFORMED, "reserved entry fields are not 0",
		    IDX);
	if (e->op < AS_OP_CREATE || e->op > AS_OP_LINK)
		return BAD(AS_E_UNSUPPORTED, "unknown entry operation %u", IDX,
		    e->op);
	if ((e->flags & ~AS_EF_KNOWN) != 0)
		return BAD(AS_E_UNSUPPORTED, "unknown entry flags 0x%x", IDX,
		    e->flags);
	type = e->mode & S_IFMT;
	if (!type_ok(type) || (e->mode & ~(uint32_t)(S_IFMT | 07777)) != 0)
		return BAD(AS_E_MALFORMED, "invalid mode 0%o", IDX, e->mode);
	/* (uid_t)-1 means "leave unchanged" to chown(2): never an owner */
	if (e->uid == UINT32_MAX || e->gid == UINT32_MAX)
		return BAD(AS_E_MALFORMED, "owner %u:%u is reserved", IDX,
		    e->uid, e->gid);
	if (e->mtime_nsec >= 1000000000u)
		return BAD(AS_E_MALFORMED, "nanoseconds %u out of range", IDX,
		    e->mtime_nsec);
	if (e->size > (uint64_t)AS_SIZE_MAX)
		return BAD(AS_E_LIMIT, "size %llu too large", IDX,
		    (unsigned long long)e->size);
	is_root_ok = e->op == AS_OP_ATTR && type == S_IFDIR;
	if (path_check(e->path, e->path_len, is_root_ok, err) == -1)
		return as_err_prefix(err, "stream record %llu", IDX);
	if ((e->flags & AS_EF_XATTRS) == 0 && e->nxattr != 0)
		return BAD(AS_E_MALFORMED, "xattr count without the flag", IDX);
	if (e->nxattr > AS_XATTRS_MAX)
		return BAD(AS_E_LIMIT, "%u xattrs on one entry (max %u)", IDX,
		    e->nxattr, AS_XATTRS_MAX);
	if ((e->flags & AS_EF_XATTRS) != 0 && e->op != AS_OP_CREATE &&
	    e->op != AS_OP_PATCH && e->op != AS_OP_ATTR)
		return BAD(AS_E_MALFORMED, "xattrs on a %s entry", IDX,
		    as_op_name(e->op));
	if (type != S_IFCHR && type != S_IFBLK && e->rdev != 0)
		return BAD(AS_E_MALFORMED, "device number on a non-device",
		    IDX);
	if (type != S_IFREG && e->size != 0)
		return BAD(AS_E_MALFORMED, "size on a non-regular entry", IDX);
	switch (e->op) {
	case AS_OP_CREATE:
		if (type == S_IFLNK) {
			if (e->aux_len == 0 || memchr(e->aux, '\0',
			    e->aux_len) != NULL)
				return BAD(AS_E_MALFORMED, "invalid symlink "
				    "target", IDX);
		} else if (e->aux_len != 0)
			return BAD(AS_E_MALFORMED, "unexpected aux field", IDX);
		break;
	case AS_OP_PATCH:
		if (type != S_IFREG || e->aux_len != 0)
			return BAD(AS_E_MALFORMED, "patch of a non-regular "
			    "entry", IDX);
		break;
	case AS_OP_ATTR:
	case AS_OP_DELETE:
		if (e->aux_len != 0)
			return BAD(AS_E_MALFORMED, "unexpected aux field", IDX);
		break;
	case AS_OP_RENAME:
	case AS_OP_LINK:
		if (path_check(e->aux, e->aux_len, 0, err) == -1)
			return as_err_prefix(err, "stream record %llu", IDX);
		if (e->aux_len == e->path_len &&
		    memcmp(e->aux, e->path, e->path_len) == 0)
			return BAD(AS_E_MALFORMED, "%s onto itself", IDX,
			    as_op_name(e->op));
		if (e->op == AS_OP_LINK && type != S_IFREG)
			return BAD(AS_E_MALFORMED, "hard link to a "
			    "non-regular entry", IDX);
		break;
	}
	if ((e->flags & AS_EF_RETRY) != 0) {
		if ((e->op != AS_OP_CREATE && e->op != AS_OP_PATCH) ||
		    type != S_IFREG || d->cur_type != S_IFREG ||
		    (d->cur_op != AS_OP_CREATE && d->cur_op != AS_OP_PATCH) ||
		    e->path_len != d->cur_path_len ||
		    memcmp(e->path, d->cur_path, e->path_len) != 0)
			return BAD(AS_E_MALFORMED, "retry does not follow the "
			    "same file", IDX);
	}
	d->cur_op = e->op;
	d->cur_type = (e->op == AS_OP_CREATE || e->op == AS_OP_PATCH) ?
	    type : 0;
	d->cur_size = e->size;
	d->cur_pos = 0;
	d->xattrs_left = e->nxattr;
	d->xattr_type = type;
	memcpy(d->cur_path, e->path, e->path_len);
	d->cur_path_len = e->path_len;
	d->nentries++;
	return 0;
}

static int
dec_xattr(struct stream_dec *d, const struct rec *r, struct as_rec *out,
    struct as_err *err)
{
	const uint8_t *p = r->payload;
	struct as_xattr *x = &out->u.xattr;

	if (d->xattrs_left == 0)
		return BAD(AS_E_MALFORMED, "unexpected xattr record", IDX);
	if (r->len < XATTR_FIXED)
		return BAD(AS_E_MALFORMED, "short xattr record", IDX);
	x->name_len = le16(p);
	x->value_len = le32(p + 4);
	if (le16(p + 2) != 0)
		return BAD(AS_E_MALFORMED, "reserved xattr field is not 0",
		    IDX);
	if (x->name_len == 0 || x->name_len > AS_XATTR_NAME_MAX ||
	    x->value_len > AS_XATTR_VALUE_MAX)
		return BAD(AS_E_LIMIT, "xattr name of %u or value of %u bytes",
		    IDX, x->name_len, x->value_len);
	if (r->len != XATTR_FIXED + (uint32_t)x->name_len + x->value_len)
		return BAD(AS_E_MALFORMED, "xattr length %u does not match "
		    "its fields", IDX, r->len);
	x->name = (const char *)p + XATTR_FIXED;
	x->value = p + XATTR_FIXED + x->name_len;
	if (memchr(x->name, '\0', x->name_len) != NULL)
		return BAD(AS_E_MALFORMED, "xattr name contains NUL", IDX);
	/* Linux allows user.* only on regular files and directories */
	if (x->name_len >= 5 && memcmp(x->name, "user.", 5) == 0 &&
	    d->xattr_type != S_IFREG && d->xattr_type != S_IFDIR)
		return BAD(AS_E_MALFORMED, "xattr '%.*s' on a %s: only regular "
		    "files and directories can carry user.* attributes", IDX,
		    (int)x->name_len, x->name, d->xattr_type == S_IFLNK ?
		    "symlink" : "special file");
	d->xattrs_left--;
	return 0;
}

/* DATA and HOLE: a range of the current regular file, in order. */
static int
check_range(struct stream_dec *d, const struct rec *r, uint64_t off,
    uint64_t len, struct as_err *err)
{
	if (d->cur_type != S_IFREG || d->xattrs_left != 0)
		return BAD(AS_E_MALFORMED, "%s record outside a regular file",
		    IDX, as_rec_type_name(r->type));
	if (len == 0)
		return BAD(AS_E_MALFORMED, "empty %s range", IDX,
		    as_rec_type_name(r->type));
	if (off < d->cur_pos || off > d->cur_size ||
	    len > d->cur_size - off)
		return BAD(AS_E_MALFORMED, "%s range %llu+%llu outside "
		    "0..%llu or out of order", IDX, as_rec_type_name(r->type),
		    (unsigned long long)off, (unsigned long long)len,
		    (unsigned long long)d->cur_size);
	d->cur_pos = off + len;
	return 0;
}

static int
dec_record(struct stream_dec *d, const struct rec *r, struct as_rec *out,
    struct as_err *err)
{
	const uint8_t *p = r->payload;

	out->type = r->type;
	out->index = r->index;
	if (d->seen_end)
		return BAD(AS_E_MALFORMED, "record after the end record", IDX);
	if (!d->seen_begin && r->type != AS_REC_BEGIN)
		return BAD(AS_E_MALFORMED, "stream does not start with a "
		    "begin record", IDX);
	switch (r->type) {
	case AS_REC_BEGIN:
		return dec_begin(d, r, out, err);
	case AS_REC_ENTRY:
		return dec_entry(d, r, out, err);
	case AS_REC_XATTR:
		return dec_xattr(d, r, out, err);
	case AS_REC_DATA:
		if (d->data_elided) {
			if (r->len != DATA_FIXED + 4 || le32(p + 8) == 0 ||
			    le32(p + 8) > AS_DATA_MAX)
				return BAD(AS_E_MALFORMED, "elided data record "
				    "of %u bytes", IDX, r->len);
			out->u.data.offset = le64(p);
			out->u.data.data = NULL;
			out->u.data.len = le32(p + 8);
			if (check_range(d, r, out->u.data.offset,
			    out->u.data.len, err) == -1)
				return -1;
			d->data_bytes += out->u.data.len;
			return 0;
		}
		if (r->len <= DATA_FIXED || r->len - DATA_FIXED > AS_DATA_MAX)
			return BAD(AS_E_MALFORMED, "data record of %u bytes",
			    IDX, r->len);
		out->u.data.offset = le64(p);
		out->u.data.data = p + DATA_FIXED;
		out->u.data.len = r->len - DATA_FIXED;
		if (check_range(d, r, out->u.data.offset, out->u.data.len,
		    err) == -1)
			return -1;
		d->data_bytes += out->u.data.len;
		return 0;
	case AS_REC_HOLE:
		if (r->len != HOLE_LEN)
			return BAD(AS_E_MALFORMED, "hole record of %u bytes",
			    IDX, r->len);
		out->u.hole.offset = le64(p);
		out->u.hole.len = le64(p + 8);
		return check_range(d, r, out->u.hole.offset, out->u.hole.len,
		    err);
	case AS_REC_END:
		if (close_entry(d, r, err) == -1)
			return -1;
		if (r->len != END_LEN)
			return BAD(AS_E_MALFORMED, "end record of %u bytes",
			    IDX, r->len);
		out->u.end.nrecords = le64(p);
		out->u.end.nentries = le64(p + 8);
		out->u.end.data_bytes = le64(p + 16);
		out->u.end.target_guid = le64(p + 24);
		if (out->u.end.nrecords != r->index ||
		    out->u.end.nentries != d->nentries ||
		    out->u.end.data_bytes != d->data_bytes ||
		    out->u.end.target_guid != d->begin.target_guid)
			return BAD(AS_E_MALFORMED, "end record does not match "
			    "the stream (records, entries, bytes or guid)",
			    IDX);
		d->seen_end = 1;
		return 0;
	default:
		return BAD(AS_E_UNSUPPORTED, "unknown record type %u", IDX,
		    r->type);
	}
}

int
stream_dec_feed(struct stream_dec *d, const uint8_t *in, size_t len,
    size_t *used, struct as_rec *rec, struct as_err *err)
{
	struct rec r;
	int rc;

	*used = 0;
	if (d->seen_end && len > 0)
		return as_err_set(err, AS_E_MALFORMED, 0,
		    "trailing data after the end record");
	rc = rec_dec_feed(&d->rd, in, len, used, &r, err);
	if (rc != 1)
		return rc;
	if (dec_record(d, &r, rec, err) == -1)
		return -1;
	return 1;
}

int
stream_dec_finish(struct stream_dec *d, struct as_err *err)
{
	if (rec_dec_eof(&d->rd, err) == -1)
		return -1;
	if (!d->seen_end)
		return as_err_set(err, AS_E_TRUNCATED, 0,
		    "stream truncated after %llu records (no end record)",
		    (unsigned long long)d->rd.nrec);
	return 0;
}

const char *
as_rec_type_name(uint32_t type)
{
	static const char *names[] = { "?", "begin", "end", "entry", "xattr",
	    "data", "hole" };

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}

const char *
as_op_name(uint32_t op)
{
	static const char *names[] = { "?", "create", "patch", "attr",
	    "rename", "delete", "link" };

	return op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}
