/*
 * fuzz_stream.c - libFuzzer target for the stream decoder and validator
 * (RELIABILITY.md section 4, fuzz_stream_parse).  No file system.
 *
 * Each input is decoded twice: in one piece and in pseudo-random chunks
 * derived from the input.  Besides sanitizer findings, it aborts when the
 * two verdicts differ (the decoder must not depend on how reads split the
 * stream) or when an accepted record breaks a rule the validator promises
 * (paths, ranges, counts).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "format/path.h"
#include "format/stream.h"
#include "rechain.h"
#include "base/banned.h"

struct verdict {
	int		 rc;		/* 0 accepted, -1 rejected */
	enum as_errcode	 code;
	uint64_t	 nrec;		/* records returned */
};

static void
fail(const char *what, uint64_t idx)
{
	fprintf(stderr, "fuzz_stream: property broken at record %llu: %s\n",
	    (unsigned long long)idx, what);
	abort();
}

/* What the validator promised about each record it returned. */
struct shadow {
	uint32_t	type;		/* S_IFMT of the current data entry */
	uint64_t	size;
	uint64_t	pos;
	uint64_t	nrec;
};

static void
check_record(struct shadow *s, const struct as_rec *r)
{
	const struct as_entry *e;
	struct as_err err;

	if (r->index != s->nrec)
		fail("record index out of sequence", r->index);
	s->nrec++;
	switch (r->type) {
	case AS_REC_BEGIN:
		if (r->index != 0 || r->u.begin.target_guid == 0 ||
		    r->u.begin.name_len == 0 || r->u.begin.name_len > 255)
			fail("bad begin accepted", r->index);
		break;
	case AS_REC_ENTRY:
		e = &r->u.entry;
		if (path_check(e->path, e->path_len, 1, &err) == -1)
			fail("entry path accepted that path_check rejects",
			    r->index);
		if (e->path_len == 0 && (e->op != AS_OP_ATTR ||
		    (e->mode & S_IFMT) != S_IFDIR))
			fail("root path on a non-attr entry", r->index);
		if ((e->op == AS_OP_RENAME || e->op == AS_OP_LINK) &&
		    path_check(e->aux, e->aux_len, 0, &err) == -1)
			fail("bad rename/link source accepted", r->index);
		if (e->mtime_nsec >= 1000000000u)
			fail("nsec out of range accepted", r->index);
		s->type = (e->op == AS_OP_CREATE || e->op == AS_OP_PATCH) ?
		    (e->mode & S_IFMT) : 0;
		s->size = e->size;
		s->pos = 0;
		break;
	case AS_REC_DATA:
		if (s->type != S_IFREG || r->u.data.len == 0 ||
		    r->u.data.len > AS_DATA_MAX ||
		    r->u.data.offset < s->pos ||
		    r->u.data.offset > s->size ||
		    r->u.data.len > s->size - r->u.data.offset)
			fail("data range accepted outside its file", r->index);
		s->pos = r->u.data.offset + r->u.data.len;
		break;
	case AS_REC_HOLE:
		if (s->type != S_IFREG || r->u.hole.len == 0 ||
		    r->u.hole.offset < s->pos ||
		    r->u.hole.offset > s->size ||
		    r->u.hole.len > s->size - r->u.hole.offset)
			fail("hole range accepted outside its file", r->index);
		s->pos = r->u.hole.offset + r->u.hole.len;
		break;
	case AS_REC_XATTR:
		if (r->u.xattr.name_len == 0 ||
		    r->u.xattr.name_len > AS_XATTR_NAME_MAX ||
		    r->u.xattr.value_len > AS_XATTR_VALUE_MAX ||
		    memchr(r->u.xattr.name, '\0', r->u.xattr.name_len) != NULL)
			fail("bad xattr accepted", r->index);
		break;
	case AS_REC_END:
		if (r->u.end.nrecords != r->index)
			fail("end count accepted that does not match",
			    r->index);
		break;
	default:
		fail("unknown record type returned", r->index);
	}
}

/* Decode data in one piece, or in pseudo-random chunks. */
static struct verdict
decode(const uint8_t *data, size_t size, int chunked)
{
	struct stream_dec d;
	struct as_rec r;
	struct as_err err;
	struct shadow s;
	struct verdict v;
	uint64_t rnd = XXH3_64bits(data, size) | 1;
	size_t off = 0, end, used;
	int rc;

	memset(&v, 0, sizeof(v));
	memset(&s, 0, sizeof(s));
	as_err_clear(&err);
	/* cheap: the record buffer comes with the first record in pieces */
	stream_dec_init(&d);
	for (;;) {
		if (chunked) {
			rnd ^= rnd << 13;
			rnd ^= rnd >> 7;
			rnd ^= rnd << 17;
			end = off + 1 + (size_t)(rnd % 64);
			if (rnd % 5 == 0)
				end += (size_t)(rnd >> 32) % 100000;
			if (end > size)
				end = size;
		} else
			end = size;
		/* feed [off, end) until it is used up or a verdict falls */
		while (off < end || (off == size && end == size)) {
			rc = stream_dec_feed(&d, data + off, end - off, &used,
			    &r, &err);
			if (used > end - off)
				fail("decoder used more than it was given",
				    v.nrec);
			off += used;
			if (rc == -1) {
				v.rc = -1;
				goto out;
			}
			if (rc == 1) {
				check_record(&s, &r);
				v.nrec++;
				continue;
			}
			if (off != end)
				fail("decoder returned 0 with input left",
				    v.nrec);
			break;
		}
		if (off == size)
			break;
	}
	v.rc = stream_dec_finish(&d, &err);
out:
	v.code = v.rc == 0 ? AS_E_OK : err.code;
	if (v.rc == -1 && (err.code == AS_E_OK || err.msg[0] == '\0'))
		fail("rejected without an error class or message", v.nrec);
	stream_dec_release(&d);
	return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verdict a, b;

	a = decode(data, size, 0);
	b = decode(data, size, 1);
	if (a.rc != b.rc || a.code != b.code || a.nrec != b.nrec) {
		fprintf(stderr, "fuzz_stream: verdict depends on chunking: "
		    "whole rc=%d %s after %llu records, chunked rc=%d %s "
		    "after %llu records\n", a.rc, as_errcode_name(a.code),
		    (unsigned long long)a.nrec, b.rc, as_errcode_name(b.code),
		    (unsigned long long)b.nrec);
		abort();
	}
	return 0;
}

size_t
LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
    unsigned int seed)
{
	return fuzz_mutate_rechained(data, size, max_size, seed,
	    REC_SEED_STREAM);
}
