/* compress.c - zstd with bounded decompression; see compress.h. */
#define ZSTD_STATIC_LINKING_ONLY	/* ZSTD_d_windowLogMax is stable */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "base/xmalloc.h"
#include "transport/compress.h"
#include "base/banned.h"

#define DECOMP_WINDOWLOG_MAX	24	/* 16 MiB: bounded decoder memory */

struct compressor {
	ZSTD_CCtx	*cctx;
	int		 level;
};

struct decompressor {
	ZSTD_DCtx	*dctx;
	uint64_t	 limit;		/* stream mode: total bound, 0 none */
	uint64_t	 produced;
};

int
compress_parse(const char *s, struct compress_spec *spec, struct as_err *err)
{
	char *end;
	long v;

	if (s == NULL || strcmp(s, "none") == 0 || strcmp(s, "off") == 0) {
		spec->algo = COMPRESS_NONE;
		spec->level = 0;
		return 0;
	}
	if (strcmp(s, "zstd") == 0) {
		spec->algo = COMPRESS_ZSTD;
		spec->level = COMPRESS_DEFAULT_LEVEL;
		return 0;
	}
	if (strncmp(s, "zstd:", 5) == 0 && s[5] != '\0') {
		v = strtol(s + 5, &end, 10);
		if (*end == '\0' && v >= -7 && v <= 19 && v != 0) {
			spec->algo = COMPRESS_ZSTD;
			spec->level = (int)v;
			return 0;
		}
	}
	return as_err_set(err, AS_E_USAGE, 0, "bad compression '%s': "
	    "expected none, zstd or zstd:LEVEL (1-19)", s);
}

const char *
compress_spec_str(const struct compress_spec *spec, char *out, size_t outsz)
{
	if (spec->algo == COMPRESS_NONE)
		snprintf(out, outsz, "none");
	else
		snprintf(out, outsz, "zstd:%d", spec->level);
	return out;
}

struct compressor *
compressor_new(int level)
{
	struct compressor *z;

	z = xcalloc(1, sizeof(*z));
	if ((z->cctx = ZSTD_createCCtx()) == NULL)
		fatal("out of memory (zstd)");
	if (compressor_set_level(z, level, NULL) == -1)
		(void)compressor_set_level(z, COMPRESS_DEFAULT_LEVEL, NULL);
	return z;
}

void
compressor_free(struct compressor *z)
{
	if (z == NULL)
		return;
	ZSTD_freeCCtx(z->cctx);
	free(z);
}

int
compressor_set_level(struct compressor *z, int level, struct as_err *err)
{
	size_t r;

	r = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level);
	if (ZSTD_isError(r))
		return as_err_set(err, AS_E_USAGE, 0, "zstd level %d: %s",
		    level, ZSTD_getErrorName(r));
	z->level = level;
	/* The frame carries its size: the receiver checks it first. */
	(void)ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_contentSizeFlag, 1);
	(void)ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 0);
	return 0;
}

size_t
compress_bound(size_t n)
{
	return ZSTD_compressBound(n);
}

int
compress_block(struct compressor *z, const void *src, size_t n,
    struct buf *out, struct as_err *err)
{
	size_t bound, r;
	uint8_t *dst;

	if (n > COMPRESS_BLOCK_MAX)
		return as_err_set(err, AS_E_LIMIT, 0, "block of %zu bytes "
		    "above the compression limit of %u", n,
		    COMPRESS_BLOCK_MAX);
	bound = ZSTD_compressBound(n);
	dst = buf_reserve(out, bound);
	ZSTD_CCtx_reset(z->cctx, ZSTD_reset_session_only);
	r = ZSTD_compress2(z->cctx, dst, bound, src, n);
	if (ZSTD_isError(r))
		return as_err_set(err, AS_E_INTERNAL, 0, "zstd compress: %s",
		    ZSTD_getErrorName(r));
	out->len += r;
	return 0;
}

struct decompressor *
decompressor_new(void)
{
	struct decompressor *z;

	z = xcalloc(1, sizeof(*z));
	if ((z->dctx = ZSTD_createDCtx()) == NULL)
		fatal("out of memory (zstd)");
	(void)ZSTD_DCtx_setParameter(z->dctx, ZSTD_d_windowLogMax,
	    DECOMP_WINDOWLOG_MAX);
	return z;
}

void
decompressor_free(struct decompressor *z)
{
	if (z == NULL)
		return;
	ZSTD_freeDCtx(z->dctx);
	free(z);
}

int
decompress_block(struct decompressor *z, const void *src, size_t n,
    void *dst, size_t max, size_t *outlen, struct as_err *err)
{
	unsigned long long csize;
	size_t fsize, r;

	*outlen = 0;
	fsize = ZSTD_findFrameCompressedSize(src, n);
	if (ZSTD_isError(fsize))
		return as_err_set(err, AS_E_MALFORMED, 0, "compressed block "
		    "of %zu bytes is not a zstd frame: %s", n,
		    ZSTD_getErrorName(fsize));
	if (fsize != n)
		return as_err_set(err, AS_E_MALFORMED, 0, "compressed block "
		    "has %zu bytes after its zstd frame", n - fsize);
	csize = ZSTD_getFrameContentSize(src, n);
	if (csize == ZSTD_CONTENTSIZE_ERROR)
		return as_err_set(err, AS_E_MALFORMED, 0, "compressed block: "
		    "bad zstd frame header");
	if (csize != ZSTD_CONTENTSIZE_UNKNOWN && csize > max)
		return as_err_set(err, AS_E_MALFORMED, 0, "compressed block "
		    "expands beyond %zu bytes (declares %llu)", max, csize);
	ZSTD_DCtx_reset(z->dctx, ZSTD_reset_session_only);
	/* Single pass into dst: zstd never writes beyond max. */
	r = ZSTD_decompressDCtx(z->dctx, dst, max, src, n);
	if (ZSTD_isError(r)) {
		if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
			return as_err_set(err, AS_E_MALFORMED, 0,
			    "compressed block expands beyond %zu bytes", max);
		return as_err_set(err, AS_E_MALFORMED, 0, "compressed block: "
		    "%s", ZSTD_getErrorName(r));
	}
	if (csize != ZSTD_CONTENTSIZE_UNKNOWN && r != csize)
		return as_err_set(err, AS_E_MALFORMED, 0, "compressed block "
		    "declares %llu bytes but holds %zu", csize, r);
	*outlen = r;
	return 0;
}

int
compress_stream(struct compressor *z, const void *in, size_t inlen,
    size_t *inpos, void *out, size_t outcap, size_t *outpos, int end,
    struct as_err *err)
{
	ZSTD_inBuffer ib = { in, inlen, *inpos };
	ZSTD_outBuffer ob = { out, outcap, *outpos };
	size_t r;

	r = ZSTD_compressStream2(z->cctx, &ob, &ib,
	    end ? ZSTD_e_end : ZSTD_e_continue);
	*inpos = ib.pos;
	*outpos = ob.pos;
	if (ZSTD_isError(r))
		return as_err_set(err, AS_E_INTERNAL, 0, "zstd compress: %s",
		    ZSTD_getErrorName(r));
	if (end)
		return r != 0 || ib.pos < ib.size;
	return 0;
}

void
decompressor_reset(struct decompressor *z, uint64_t limit)
{
	ZSTD_DCtx_reset(z->dctx, ZSTD_reset_session_only);
	z->limit = limit;
	z->produced = 0;
}

int
decompress_stream(struct decompressor *z, const void *in, size_t inlen,
    size_t *inpos, void *out, size_t outcap, size_t *outpos,
    struct as_err *err)
{
	ZSTD_inBuffer ib = { in, inlen, *inpos };
	ZSTD_outBuffer ob = { out, outcap, *outpos };
	uint8_t probe;
	uint64_t room;
	size_t r, before;
	int capped = 0;

	if (z->limit != 0) {
		room = z->limit - z->produced;
		if (ob.size - ob.pos > room) {
			ob.size = ob.pos + (size_t)room;
			capped = 1;
		}
	}
	before = ob.pos;
	r = ZSTD_decompressStream(z->dctx, &ob, &ib);
	z->produced += ob.pos - before;
	*inpos = ib.pos;
	*outpos = ob.pos;
	if (ZSTD_isError(r))
		return as_err_set(err, AS_E_MALFORMED, 0, "compressed "
		    "stream: %s", ZSTD_getErrorName(r));
	if (r != 0 && capped && ob.pos == ob.size) {
		/* At the bound with the frame unfinished: one more byte? */
		ZSTD_outBuffer pb = { &probe, 1, 0 };

		r = ZSTD_decompressStream(z->dctx, &pb, &ib);
		*inpos = ib.pos;
		if (ZSTD_isError(r))
			return as_err_set(err, AS_E_MALFORMED, 0, "compressed "
			    "stream: %s", ZSTD_getErrorName(r));
		if (pb.pos > 0)
			return as_err_set(err, AS_E_MALFORMED, 0, "compressed "
			    "stream expands beyond %llu bytes",
			    (unsigned long long)z->limit);
	}
	return r == 0 ? 1 : 0;
}
