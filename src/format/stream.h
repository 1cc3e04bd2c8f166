/*
 * stream.h - the portable stream: record payloads and the rules for their
 * order.  Pure code over caller buffers; doc/autosync-stream.5 is the
 * normative description and names the same fields.
 *
 * A stream is BEGIN, then ENTRY records (each followed by the XATTR, DATA
 * and HOLE records that belong to it), then END, then end of input.
 */
#ifndef AS_STREAM_H
#define AS_STREAM_H

#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "format/path.h"
#include "format/record.h"

#define AS_PATH_MAX_BUF	(AS_PATH_MAX + 1)

#define AS_STREAM_MAGIC		"autosync"	/* 8 bytes, no NUL */
#define AS_STREAM_VERSION	1
/* Required-feature bits this decoder understands (none yet). */
#define AS_FEATURES_KNOWN	0u

#define AS_DATA_MAX		(1u << 20)	/* bytes in one DATA record */
#define AS_XATTR_NAME_MAX	255
#define AS_XATTR_VALUE_MAX	65536
#define AS_XATTRS_MAX		1024		/* per entry */
#define AS_SIZE_MAX		(INT64_C(1) << 62)
#define AS_BLOCK_MIN		4096u
#define AS_BLOCK_MAX		(16u << 20)
#define AS_BLOCK_DEFAULT	(64u << 10)

enum as_rec_type {
	AS_REC_BEGIN	= 1,
	AS_REC_END	= 2,
	AS_REC_ENTRY	= 3,
	AS_REC_XATTR	= 4,
	AS_REC_DATA	= 5,
	AS_REC_HOLE	= 6,
};

enum as_kind {
	AS_KIND_DIR	= 1,
	AS_KIND_VOL	= 2,
	AS_KIND_ZFS	= 3,
	AS_KIND_BTRFS	= 4,
};

/* What an ENTRY asks the receiver to do at path. */
enum as_op {
	AS_OP_CREATE	= 1,	/* a new object; regular files: DATA/HOLE follow */
	AS_OP_PATCH	= 2,	/* existing regular file: new size, changed blocks */
	AS_OP_ATTR	= 3,	/* existing object: metadata only */
	AS_OP_RENAME	= 4,	/* move the object at aux to path */
	AS_OP_DELETE	= 5,	/* remove the object (of type mode) at path */
	AS_OP_LINK	= 6,	/* hard link path to the regular file at aux */
};

#define AS_EF_XATTRS	0x01	/* exactly nxattr XATTR records follow: the full set */
#define AS_EF_RETRY	0x02	/* same path as the previous entry: replaces its data */
#define AS_EF_NOTPIT	0x04	/* kept changing while read: not point-in-time */
#define AS_EF_KNOWN	0x07

struct as_begin {
	uint32_t	 version;
	uint32_t	 required;	/* feature bits a receiver must know */
	uint32_t	 optional;	/* feature bits it may ignore */
	uint32_t	 kind;		/* enum as_kind */
	uint32_t	 block_size;	/* catalog block size of the target */
	uint32_t	 flags;		/* none defined; must be 0 */
	uint64_t	 base_guid;	/* 0 for a full stream */
	uint64_t	 target_guid;	/* never 0 */
	int64_t		 time_ns;	/* target snapshot creation, ns since epoch */
	const char	*name;		/* target snapshot name */
	uint16_t	 name_len;	/* 1..255 */
	const char	*source;	/* source dataset, informational */
	uint16_t	 source_len;	/* 0..4095 */
};

struct as_entry {
	uint8_t		 op;		/* enum as_op */
	uint8_t		 flags;		/* AS_EF_* */
	uint32_t	 mode;		/* st_mode: type and permission bits */
	uint32_t	 uid;
	uint32_t	 gid;
	uint32_t	 nxattr;	/* XATTR records following (AS_EF_XATTRS) */
	uint64_t	 rdev;		/* device nodes */
	uint64_t	 size;		/* regular files: the new size */
	int64_t		 mtime_sec;
	uint32_t	 mtime_nsec;	/* < 1e9 */
	const char	*path;		/* see path.h; "" is the root (ATTR only) */
	uint16_t	 path_len;
	const char	*aux;		/* symlink target, RENAME source, LINK target */
	uint16_t	 aux_len;
};

struct as_xattr {
	const char	*name;
	uint16_t	 name_len;	/* 1..255 */
	const uint8_t	*value;
	uint32_t	 value_len;	/* 0..65536 */
};

struct as_data {
	uint64_t	 offset;
	const uint8_t	*data;
	uint32_t	 len;		/* 1..AS_DATA_MAX */
};

struct as_hole {
	uint64_t	 offset;
	uint64_t	 len;
};

struct as_end {
	uint64_t	 nrecords;	/* records before END, BEGIN included */
	uint64_t	 nentries;	/* ENTRY records */
	uint64_t	 data_bytes;	/* sum of DATA lengths */
	uint64_t	 target_guid;	/* as in BEGIN */
};

struct as_rec {
	enum as_rec_type type;
	uint64_t	 index;		/* record number, for messages */
	union {
		struct as_begin	begin;
		struct as_entry	entry;
		struct as_xattr	xattr;
		struct as_data	data;
		struct as_hole	hole;
		struct as_end	end;
	} u;
};

/* Encoder: appends framed records to *out; the caller drains out. */
struct stream_enc {
	struct buf	*out;
	uint64_t	 chain;
	uint64_t	 nrecords;
	uint64_t	 nentries;
	uint64_t	 data_bytes;
	uint64_t	 target_guid;
};

void	stream_enc_init(struct stream_enc *e, struct buf *out);
void	stream_enc_begin(struct stream_enc *e, const struct as_begin *b);
void	stream_enc_entry(struct stream_enc *e, const struct as_entry *en);
void	stream_enc_xattr(struct stream_enc *e, const struct as_xattr *x);
void	stream_enc_data(struct stream_enc *e, uint64_t off, const void *p,
	    uint32_t len);
void	stream_enc_hole(struct stream_enc *e, uint64_t off, uint64_t len);
void	stream_enc_end(struct stream_enc *e);

/*
 * Decoder and validator.  It checks framing, every field's bounds, path
 * syntax and the order rules (BEGIN first, data only after a regular
 * file's CREATE/PATCH with ascending non-overlapping ranges within its
 * size, exact xattr counts, END counts, nothing after END).  Semantic
 * checks that need the destination (does the base match, does the path
 * exist) are the receiver's.
 */
struct stream_dec {
	struct rec_dec	 rd;
	struct as_begin	 begin;		/* valid after the first record */
	char		 name[256];	/* storage for begin.name */
	int		 seen_begin;
	int		 seen_end;
	uint64_t	 nentries;
	uint64_t	 data_bytes;
	/* the entry that following XATTR/DATA/HOLE records belong to */
	uint8_t		 cur_op;
	uint32_t	 cur_type;	/* S_IFMT bits, 0 when none */
	uint64_t	 cur_size;
	uint64_t	 cur_pos;	/* end of the last DATA/HOLE range */
	uint32_t	 xattrs_left;
	uint32_t	 xattr_type;	/* S_IFMT of the entry owning the xattrs */
	char		 cur_path[AS_PATH_MAX_BUF];
	uint16_t	 cur_path_len;
	int		 cur_data_seen;
	/*
	 * Set by the caller before the first feed: DATA records carry only
	 * offset u64 and length u32, no content (as_data.data is NULL).  A
	 * receiver's own log of what it staged (dir_recv.c) is decoded so,
	 * with every other check of a stream.
	 */
	int		 data_elided;
};

void	stream_dec_init(struct stream_dec *d);
void	stream_dec_release(struct stream_dec *d);
/*
 * Returns 1 with *rec filled (pointers valid until the next call),
 * 0 when the input is used up, -1 on error; *used is the input taken.
 */
int	stream_dec_feed(struct stream_dec *d, const uint8_t *in, size_t len,
	    size_t *used, struct as_rec *rec, struct as_err *err);
/* At end of input: 0 when END was seen, else -1 (TRUNCATED). */
int	stream_dec_finish(struct stream_dec *d, struct as_err *err);

/* Human name of a record type or op, for messages and dumps. */
const char *as_rec_type_name(uint32_t type);
const char *as_op_name(uint32_t op);

#endif
