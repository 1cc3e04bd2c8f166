/*
 * catalog.h - a snapshot of a tree on the portable engine, in memory and
 * as a file.
 *
 * A catalog lists every entry of the tree in path_cmp() order with its
 * metadata and, for regular files, an XXH3-128 hash of each block_size
 * block (a hole hashes like zeros).  On disk it is a record file
 * (record.h, seed REC_SEED_CATALOG): CAT_HEADER, CAT_ENTRY..., CAT_END.
 * In memory the entries are fixed-size structs whose strings, xattrs and
 * hashes live in three shared arenas, so a tree of 100k entries costs
 * ~100 bytes per entry plus its paths and hashes.
 */
#ifndef AS_CATALOG_H
#define AS_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "format/record.h"

#define CAT_REC_HEADER	0x101
#define CAT_REC_ENTRY	0x102
#define CAT_REC_END	0x103
#define CAT_REC_HASHES	0x104		/* continuation: more block hashes */
#define CAT_HASHES_PER_REC 65536
#define CAT_VERSION	1
#define CAT_HASH_LEN	16		/* XXH3-128, big-endian digest bytes */

#define CAT_EF_NOTPIT	0x01		/* content not point-in-time */
/*
 * In memory only, never saved: a regular file's hashes are not computed
 * yet (dir_scan with DIR_SCAN_DEFER); dir_send with DIR_SEND_LIVE fills
 * them from the bytes it sends, so a full sync reads each file once.
 */
#define CAT_EF_UNHASHED	0x02
/*
 * In memory only: dir_scan_merge found this entry unchanged at its path
 * and did not keep the base entry; dir_send sends nothing for it.
 */
#define CAT_EF_SAME	0x04
#define CAT_EF_MEMORY	(CAT_EF_UNHASHED | CAT_EF_SAME)	/* never saved */

struct cat_header {
	uint32_t	 version;
	uint32_t	 kind;		/* enum as_kind */
	uint32_t	 block_size;
	uint32_t	 flags;
	uint64_t	 guid;		/* never 0 */
	uint64_t	 base_guid;	/* snapshot it was taken relative to, or 0 */
	int64_t		 time_ns;	/* creation time */
	char		 name[256];	/* snapshot name */
	char		*source;	/* owned: the dataset's path */
};

struct cat_entry {
	/*
	 * 64-bit fields first, then 32, then 16: no padding, 88 bytes.
	 * Two catalogs of these are in memory while a sender diffs, so
	 * every byte counts twice per entry; an incremental's peak is
	 * mostly its new catalog's entries.  Hence 32-bit offsets: the
	 * arenas are capped (catalog_xattr_next, catalog_hash_next).
	 */
	uint64_t	ino;
	uint64_t	size;
	uint64_t	rdev;
	int64_t		mtime_sec;
	int64_t		ctime_sec;
	uint32_t	xattr_off;	/* into xattrs, in bytes */
	uint32_t	hash_ix;	/* into hashes, in hashes: CAT_HASH_AT */
	uint32_t	mtime_nsec;
	uint32_t	ctime_nsec;
	uint32_t	uid;
	uint32_t	gid;
	uint32_t	nlink;
	uint32_t	path_off;	/* into strings; NUL-terminated */
	uint32_t	xattr_len;	/* bytes of the xattr blob */
	uint32_t	nblocks;	/* hashes: CAT_HASH_LEN bytes each */
	uint16_t	mode;		/* st_mode: type and 07777 */
	uint16_t	flags;		/* CAT_EF_* */
	uint16_t	path_len;
	uint16_t	aux_len;	/* symlink target length; the target
					 * follows the path's NUL in strings */
};

/* Where e's block hashes start in its catalog's hashes, in bytes. */
#define CAT_HASH_AT(e)	((size_t)(e)->hash_ix * CAT_HASH_LEN)

/*
 * Entry fields as given to catalog_add(): the same values with plain
 * pointers.  xattrs is a blob of records {u16 name_len, u32 value_len,
 * name, value}, sorted by name (see xattr_blob_next()).
 */
struct cat_entry_in {
	const struct cat_entry *st;	/* numeric fields; offsets ignored */
	const char	*path;
	size_t		 path_len;
	const char	*aux;
	size_t		 aux_len;
	const uint8_t	*xattrs;
	size_t		 xattr_len;
	const uint8_t	*hashes;	/* nblocks * CAT_HASH_LEN bytes */
	uint32_t	 nblocks;
};

struct catalog {
	struct cat_header hdr;
	struct cat_entry *ents;		/* sorted by path_cmp() */
	size_t		 n;
	size_t		 cap;
	struct buf	 strings;
	struct buf	 xattrs;
	struct buf	 hashes;
	uint32_t	*ino_index;	/* open-addressed: entry index + 1 */
	size_t		 ino_cap;
};

void	catalog_init(struct catalog *c);
void	catalog_release(struct catalog *c);
/*
 * Give back the slack of the entry array and the arenas (they grow by
 * doubling) once a catalog is complete.  Entries keep their offsets.
 */
void	catalog_trim(struct catalog *c);
/* Append a copy of an entry; the caller keeps path_cmp() order. */
struct cat_entry *catalog_add(struct catalog *c, const struct cat_entry_in *in);
/*
 * Append all of src's entries after c's (the caller keeps path_cmp()
 * order: src's first path sorts after c's last); src is unchanged.
 */
void	catalog_append(struct catalog *c, const struct catalog *src);
/*
 * The xattr_off of a blob of len bytes, or the hash_ix of nblocks hashes,
 * appended to c now: the arenas' ends.  Past what the 32-bit fields hold
 * (4 GiB of xattrs, 2^32 hashes: 16 TiB of data in 4 KiB blocks) the
 * process stops, as for the string arena.
 */
uint32_t catalog_xattr_next(const struct catalog *c, size_t len);
uint32_t catalog_hash_next(const struct catalog *c, uint64_t nblocks);
/* Reserve room for nblocks hashes of the last-added entry and return it. */
uint8_t	*catalog_hashes_of(struct catalog *c, const struct cat_entry *e);
const char *catalog_path(const struct catalog *c, const struct cat_entry *e);
const char *catalog_aux(const struct catalog *c, const struct cat_entry *e);
const uint8_t *catalog_xattrs(const struct catalog *c,
	    const struct cat_entry *e);
/* Entry index for a path, or -1 (binary search). */
long	catalog_find(const struct catalog *c, const char *path, size_t len);
/*
 * Entry index of the first entry with inode ino, or -1.  The index is
 * built on first use; do not add entries afterwards.
 */
long	catalog_find_ino(struct catalog *c, uint64_t ino);
/* Free the inode index (a cache: the next catalog_find_ino rebuilds it). */
void	catalog_drop_ino_index(struct catalog *c);
/* 0 when entries are strictly in path_cmp() order, else -1 MALFORMED. */
int	catalog_check_order(const struct catalog *c, struct as_err *err);

/* Serialise the whole catalog as a record file into out. */
void	catalog_encode(const struct catalog *c, struct buf *out);
/*
 * The same bytes, handed to fn in pieces of about CAT_ENCODE_CHUNK (and
 * the rest at the end), so that the encoded file is never whole in
 * memory next to the catalog.  Stops at the first fn that returns -1
 * and returns -1; 0 when all was written.
 */
#define CAT_ENCODE_CHUNK	(1u << 18)
int	catalog_encode_stream(const struct catalog *c,
	    int (*fn)(void *arg, const void *p, size_t len), void *arg);
/*
 * A catalog file written one entry at a time, for a writer that makes
 * its entries in path_cmp() order and need not keep them (the receiver's
 * held.cat, derived or scanned after an apply): the bytes are those of
 * catalog_encode() of a catalog with the same header and entries, so the
 * format is the same.  Memory: about CAT_ENCODE_CHUNK plus one entry.
 * init writes the header record (h is only read); add appends an entry
 * and hands full chunks to fn; finish writes the END record (the count)
 * and hands the rest.  add refuses (-1, errno EINVAL) an entry that does
 * not come after the previous one or whose lengths the format cannot
 * hold, so a caller's bug never becomes a catalog that does not decode;
 * -1 from fn (errno its own) is returned likewise.  Either failure is
 * sticky: later calls return -1 without writing.
 */
struct cat_writer {
	uint64_t	 chain;
	struct buf	 out;		/* encoded, not handed to fn yet */
	struct buf	 tmp;		/* one entry's payload */
	struct buf	 prev;		/* the previous entry's path */
	struct buf	 zeros;		/* hashes of an entry that has none */
	size_t		 n;		/* entries written */
	int		(*fn)(void *arg, const void *p, size_t len);
	void		*arg;
	int		 failed;
};
void	cat_writer_init(struct cat_writer *w, const struct cat_header *h,
	    int (*fn)(void *arg, const void *p, size_t len), void *arg);
int	cat_writer_add(struct cat_writer *w, const struct cat_entry_in *in);
int	cat_writer_finish(struct cat_writer *w);
void	cat_writer_release(struct cat_writer *w);

/*
 * Parse a whole catalog file held in memory into c (initialised by the
 * caller).  Validates framing, checksums, bounds, paths and order; on
 * failure c is released and -1 is returned.
 */
int	catalog_decode(struct catalog *c, const uint8_t *data, size_t len,
	    struct as_err *err);
/*
 * The same, telling done(arg, off) every CAT_DECODE_DONE_STEP bytes or
 * so that data[0..off) will not be read again: a caller that mapped the
 * file can drop those pages, so that the file and the catalog decoded
 * from it are not both in memory at the end.
 */
#define CAT_DECODE_DONE_STEP	(1u << 20)
int	catalog_decode_cb(struct catalog *c, const uint8_t *data, size_t len,
	    void (*done)(void *arg, size_t off), void *arg,
	    struct as_err *err);
/*
 * A catalog file read one entry at a time (a merge with a walk needs no
 * more): the same checks as catalog_decode().  open reads the header
 * into rd->win.hdr; next returns 1 with *e, valid until the next call
 * (its strings, xattrs and hashes are rd->win's: catalog_path(&rd->win,
 * e) and so on), 0 after the last entry (the END record checked), -1 on
 * error.  done as for catalog_decode_cb().  data must outlive rd.
 */
struct cat_reader {
	struct rec_dec	 d;
	const uint8_t	*data;
	size_t		 len;
	size_t		 off;
	size_t		 told;
	void		(*done)(void *, size_t);
	void		*done_arg;
	struct catalog	 win;		/* the current entry alone */
	struct buf	 prev;		/* the previous entry's path */
	size_t		 count;
	int		 state;		/* 2: END read */
};
int	cat_reader_open(struct cat_reader *rd, const uint8_t *data,
	    size_t len, void (*done)(void *arg, size_t off), void *arg,
	    struct as_err *err);
int	cat_reader_next(struct cat_reader *rd, const struct cat_entry **e,
	    struct as_err *err);
void	cat_reader_release(struct cat_reader *rd);
/*
 * Where a reader stands between two entries, to start a second reader
 * there: a scan that merges the parts of one base on several threads
 * (dir_scan_merge) gives each part a reader of its own.  The second
 * reader decodes the same mapped data with the same checks (the chain
 * of record checks, entry order) from that point on; its window's header
 * carries only the block size and kind (no strings).  done is src's.
 */
struct cat_reader_mark {
	size_t		 off;
	uint64_t	 chain;
	uint64_t	 doff;
	uint64_t	 nrec;
	size_t		 count;
	struct buf	 prev;
};
void	cat_reader_mark(const struct cat_reader *rd, struct cat_reader_mark *m);
void	cat_reader_mark_release(struct cat_reader_mark *m);
void	cat_reader_fork(struct cat_reader *dst, const struct cat_reader *src,
	    const struct cat_reader_mark *m);
/* Parse only the header (the first record) of a catalog file. */
int	catalog_decode_header(struct cat_header *h, const uint8_t *data,
	    size_t len, struct as_err *err);
void	cat_header_release(struct cat_header *h);

/*
 * Walk an xattr blob: returns 1 and fills name/value for the record at
 * *pos and advances it, 0 at the end, -1 if the blob is malformed.
 */
int	xattr_blob_next(const uint8_t *blob, size_t len, size_t *pos,
	    const char **name, size_t *name_len, const uint8_t **value,
	    size_t *value_len);
/* Append one xattr to a blob under construction. */
void	xattr_blob_add(struct buf *blob, const char *name, size_t name_len,
	    const void *value, size_t value_len);

#endif
