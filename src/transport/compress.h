/*
 * compress.h - zstd over caller buffers, with bounded decompression.
 *
 * A spec is "none", "zstd" (level COMPRESS_DEFAULT_LEVEL) or "zstd:N"
 * (N from 1 to 19; negative fast levels -1..-7 too).  The protocol
 * negotiates it; this layer only compresses.
 *
 * Block mode (what the protocol uses, one zstd frame per data frame):
 * compress_block() turns up to COMPRESS_BLOCK_MAX bytes into one zstd
 * frame; decompress_block() expands one frame into a caller buffer of
 * `max` bytes and fails with MALFORMED if the frame would produce more
 * (a bomb), if its header declares more, if it is not exactly one
 * complete frame, or if it is corrupt.  Nothing beyond max is ever
 * written or allocated.
 *
 * Stream mode: compress_stream()/decompress_stream() move bytes from an
 * input span to an output span like ZSTD_compressStream2 /
 * ZSTD_decompressStream, reporting how much of each was used, with a
 * total output bound on decompression (limit, 0: none).
 *
 * Contexts are reused: no allocation per block.
 */
#ifndef AS_COMPRESS_H
#define AS_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define COMPRESS_DEFAULT_LEVEL	3
#define COMPRESS_BLOCK_MAX	(1u << 20)

enum compress_algo {
	COMPRESS_NONE = 0,
	COMPRESS_ZSTD = 1,
};

struct compress_spec {
	enum compress_algo	algo;
	int			level;
};

/* Parse a spec ("none", "zstd", "zstd:3"); USAGE on error. */
int	compress_parse(const char *s, struct compress_spec *spec,
	    struct as_err *err);
/* Format a spec back ("zstd:3", "none") into out. */
const char *compress_spec_str(const struct compress_spec *spec, char *out,
	    size_t outsz);

struct compressor;
struct decompressor;

struct compressor	*compressor_new(int level);
void			 compressor_free(struct compressor *z);
/* Change the level between blocks. */
int			 compressor_set_level(struct compressor *z, int level,
			    struct as_err *err);
/*
 * Compress n (<= COMPRESS_BLOCK_MAX) bytes of src into one zstd frame
 * appended to out (which grows by at most ZSTD_compressBound(n)).
 */
int	compress_block(struct compressor *z, const void *src, size_t n,
	    struct buf *out, struct as_err *err);
/* Upper bound of compress_block's output for n input bytes. */
size_t	compress_bound(size_t n);

struct decompressor	*decompressor_new(void);
void			 decompressor_free(struct decompressor *z);
/*
 * Decompress exactly one complete zstd frame (src, n) into dst (at most
 * max bytes); *outlen gets the size.  MALFORMED: corrupt, more than one
 * frame, trailing bytes, truncated frame, or output above max ("compressed
 * block expands beyond N bytes").
 */
int	decompress_block(struct decompressor *z, const void *src, size_t n,
	    void *dst, size_t max, size_t *outlen, struct as_err *err);

/*
 * Streaming.  *inpos and *outpos advance.  compress_stream with end != 0
 * finishes the frame; it returns 1 while output is still pending (call
 * again with more room), 0 when done.  decompress_stream returns 1 when a
 * frame ended, 0 when it needs more input or room, -1 on error; total
 * output across calls since decompressor_reset above limit (when not 0)
 * is MALFORMED.
 */
int	compress_stream(struct compressor *z, const void *in, size_t inlen,
	    size_t *inpos, void *out, size_t outcap, size_t *outpos, int end,
	    struct as_err *err);
void	decompressor_reset(struct decompressor *z, uint64_t limit);
int	decompress_stream(struct decompressor *z, const void *in,
	    size_t inlen, size_t *inpos, void *out, size_t outcap,
	    size_t *outpos, struct as_err *err);

#endif
