/*
 * vol.c - the volume engine: hash a volume, send changed blocks, receive
 * into an image file or a block device through a journal; see vol.h.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <linux/falloc.h>
#include <linux/fs.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/io.h"
#include "base/ownwalk.h"
#include "base/xmalloc.h"
#include "driver/vol.h"
#include "format/stream.h"
#include "base/banned.h"

#define VOL_READ_CHUNK	(8u << 20)	/* bytes per sequential read */
/*
 * A local copy (vol_copy) writes from the read buffer: 1 MiB stays in
 * the CPU's caches between the read, the hash and the write, where
 * 8 MiB goes to memory and back (measured: ~15% faster end to end).
 */
#define VOL_COPY_CHUNK	(1u << 20)
#define VOL_OUT_FLUSH	(1u << 20)	/* stream bytes buffered */
#define VOL_IN_BUF	(1u << 20)
/*
 * Resume checkpoints: the receiver makes its progress durable after at
 * least 16 MiB of stream and 1 s, the sender saves the hashes read so
 * far after 32 MiB and 0.5 s (so that it is ahead of the receiver's).
 * Each costs a few fsyncs: the time floor keeps a fast transfer from
 * paying for dozens.  The receiver's are made durable by a thread
 * while the transfer goes on (struct ckpt), one at a time, so a cut
 * loses at most two of its intervals (the one in flight and the one
 * being filled), or the sender's one, whichever is more.
 */
#define VOL_CKPT_RECV	(16u << 20)
#define VOL_CKPT_SEND	(32u << 20)
#define VOL_CKPT_RECV_NS 1000000000LL
#define VOL_CKPT_SEND_NS 500000000LL

/* The time floor in ns: def, or $AUTOSYNC_VOL_CHECKPOINT_MS (tests). */
static int64_t
ckpt_floor(int64_t def)
{
	const char *e = getenv("AUTOSYNC_VOL_CHECKPOINT_MS");

	if (e == NULL || *e == '\0')
		return def;
	return strtoll(e, NULL, 10) * 1000000 / (def == VOL_CKPT_RECV_NS ?
	    1 : 2);
}
/*
 * A full stream's writes are handed to the disk (sync_file_range, no
 * wait) every this many bytes, so that write-back overlaps the transfer
 * instead of all waiting for the final fsync.
 */
#define VOL_WB_CHUNK	(8u << 20)

#define REC_MAGIC	"autosync-vol 1"
#define JRN_MAGIC	"ASVOLJ01"
#define JRN_HDR		48	/* magic, guids, size, bs, name_len */
#define JRN_REC		24		/* type, pad, off, len */
#define JRN_DATA	1
#define JRN_ZERO	2
#define JRN_COMMIT	3

/* ------------------------------------------------------------------ */
/* small helpers */


static int
all_zero(const uint8_t *p, size_t n)
{
	static const uint8_t z[64];

	while (n >= sizeof(z)) {
		if (memcmp(p, z, sizeof(z)) != 0)
			return 0;
		p += sizeof(z);
		n -= sizeof(z);
	}
	return n == 0 || memcmp(p, z, n) == 0;
}

static void
hash_block(const void *p, size_t n, uint8_t out[CAT_HASH_LEN])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
	memcpy(out, c.digest, CAT_HASH_LEN);
}

static int
fsync_dir_of(const char *path, struct as_err *err)
{
	char *dir, *slash;
	int fd, rc;

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) == NULL) {
		free(dir);
		dir = xstrdup(".");
	} else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		as_err_sys(err, errno, "open '%s'", dir);
		free(dir);
		return -1;
	}
	rc = io_fsync(fd, dir, err);
	close(fd);
	free(dir);
	return rc;
}

int
vol_probe(const char *path, uint64_t *size, int *is_blk, struct as_err *err)
{
	struct stat st;
	uint64_t sz;
	int fd;

	if (stat(path, &st) == -1) {
		if (errno == ENOENT)
			return as_err_set(err, AS_E_NOTFOUND, errno,
			    "volume '%s' does not exist", path);
		return as_err_sys(err, errno, "volume '%s'", path);
	}
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		*is_blk = 0;
		return 0;
	}
	if (!S_ISBLK(st.st_mode))
		return as_err_set(err, AS_E_USAGE, 0, "'%s' is neither a "
		    "block device nor a regular file", path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return as_err_sys(err, errno, "open '%s'", path);
	if (ioctl(fd, BLKGETSIZE64, &sz) == -1) {
		as_err_sys(err, errno, "size of '%s'", path);
		close(fd);
		return -1;
	}
	close(fd);
	*size = sz;
	*is_blk = 1;
	return 0;
}

static void
header_fill(struct catalog *c, const char *path, uint32_t bs)
{
	c->hdr.version = CAT_VERSION;
	c->hdr.kind = AS_KIND_VOL;
	c->hdr.block_size = bs;
	if (c->hdr.source == NULL)
		c->hdr.source = xstrdup(path);
}

/* Add the single entry of a volume catalog; returns its hash array. */
static uint8_t *
add_entry(struct catalog *c, uint64_t size, uint32_t bs)
{
	struct cat_entry st;
	struct cat_entry_in in;
	struct cat_entry *e;
	uint64_t nb = (size + bs - 1) / bs;

	memset(&st, 0, sizeof(st));
	memset(&in, 0, sizeof(in));
	st.mode = S_IFREG | 0600;
	st.size = size;
	st.nlink = 1;
	st.nblocks = (uint32_t)nb;
	in.st = &st;
	in.path = VOL_ENTRY_PATH;
	in.path_len = strlen(VOL_ENTRY_PATH);
	in.nblocks = (uint32_t)nb;
	e = catalog_add(c, &in);
	return catalog_hashes_of(c, e);
}

/* The volume's entry in a catalog, or NULL when it is not a volume's. */
static const struct cat_entry *
vol_entry(const struct catalog *c)
{
	if (c == NULL || c->hdr.kind != AS_KIND_VOL || c->n != 1 ||
	    strcmp(catalog_path(c, &c->ents[0]), VOL_ENTRY_PATH) != 0)
		return NULL;
	return &c->ents[0];
}

static int
check_bs(uint32_t bs, struct as_err *err)
{
	if (bs < AS_BLOCK_MIN || bs > AS_BLOCK_MAX || (bs & (bs - 1)) != 0)
		return as_err_set(err, AS_E_USAGE, 0, "block size %u: must be "
		    "a power of two from %u to %u", bs, AS_BLOCK_MIN,
		    AS_BLOCK_MAX);
	return 0;
}

static int
check_nblocks(uint64_t size, uint32_t bs, const char *path,
    struct as_err *err)
{
	if (size > (uint64_t)AS_SIZE_MAX ||
	    (size + bs - 1) / bs > UINT32_MAX)
		return as_err_set(err, AS_E_LIMIT, 0, "volume '%s' of %" PRIu64
		    " bytes is too large for %u-byte blocks", path, size, bs);
	return 0;
}

/* ------------------------------------------------------------------ */
/* reading the source */

/*
 * The source as it is read: the volume itself, or a FICLONE copy of an
 * image file (an unnamed O_TMPFILE in the image's directory, so that a
 * crash leaves nothing behind) taken before the first read, which makes
 * the snapshot point-in-time on btrfs and xfs.  Without a clone, what
 * can tell that the volume was written while it was read is recorded
 * first (ctime and mtime of a file, the sectors-written counter of a
 * block device).
 */
struct vsrc {
	int		 fd;
	int		 is_blk;
	int		 cloned;
	uint64_t	 size;
	struct stat	 st0;
	uint64_t	 wsect0;	/* sectors written, or UINT64_MAX */
};

/* Sectors written to block device dev since boot, or UINT64_MAX. */
static uint64_t
dev_wsectors(dev_t dev)
{
	char p[64], line[512];
	unsigned long long v[7];
	FILE *f;

	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/stat", major(dev),
	    minor(dev));
	if ((f = fopen(p, "re")) == NULL)
		return UINT64_MAX;
	if (fgets(line, sizeof(line), f) == NULL || sscanf(line, "%llu %llu "
	    "%llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
	    &v[5], &v[6]) != 7) {
		fclose(f);
		return UINT64_MAX;
	}
	fclose(f);
	return v[6];
}

static int
vsrc_open(struct vsrc *s, const char *path, int try_clone,
    struct as_err *err)
{
	struct stat st;
	char *dir, *slash;
	int tfd;

	memset(s, 0, sizeof(*s));
	s->wsect0 = UINT64_MAX;
	if ((s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		return as_err_sys(err, errno, "open '%s'", path);
	if (fstat(s->fd, &st) == -1) {
		as_err_sys(err, errno, "'%s'", path);
		goto fail;
	}
	if (S_ISBLK(st.st_mode)) {
		s->is_blk = 1;
		if (ioctl(s->fd, BLKGETSIZE64, &s->size) == -1) {
			as_err_sys(err, errno, "size of '%s'", path);
			goto fail;
		}
		s->wsect0 = dev_wsectors(st.st_rdev);
		s->st0 = st;
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		as_err_set(err, AS_E_USAGE, 0, "'%s' is neither a block "
		    "device nor a regular file", path);
		goto fail;
	}
	s->st0 = st;
	s->size = (uint64_t)st.st_size;
	if (!try_clone || getenv("AUTOSYNC_VOL_NOCLONE") != NULL)
		return 0;
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) == NULL) {
		free(dir);
		dir = xstrdup(".");
	} else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	tfd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	free(dir);
	if (tfd == -1)
		return 0;	/* a read-only directory: read it live */
	if (ioctl(tfd, FICLONE, s->fd) == -1 || fstat(tfd, &st) == -1) {
		close(tfd);	/* no reflinks here (ext4, tmpfs): live */
		return 0;
	}
	close(s->fd);
	s->fd = tfd;
	s->cloned = 1;
	s->size = (uint64_t)st.st_size;
	return 0;
fail:
	close(s->fd);
	s->fd = -1;
	return -1;
}

/* 1 when the volume was (or may have been) written since vsrc_open. */
static int
vsrc_changed(const struct vsrc *s)
{
	struct stat st;
	uint64_t w;

	if (s->cloned)
		return 0;
	if (s->is_blk) {
		w = dev_wsectors(s->st0.st_rdev);
		return w != UINT64_MAX && s->wsect0 != UINT64_MAX &&
		    w != s->wsect0;
	}
	if (fstat(s->fd, &st) == -1)
		return 1;
	return st.st_size != s->st0.st_size ||
	    st.st_mtim.tv_sec != s->st0.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != s->st0.st_mtim.tv_nsec ||
	    st.st_ctim.tv_sec != s->st0.st_ctim.tv_sec ||
	    st.st_ctim.tv_nsec != s->st0.st_ctim.tv_nsec;
}

static void
vsrc_close(struct vsrc *s)
{
	if (s->fd != -1)
		close(s->fd);
	s->fd = -1;
}

struct walker {
	const char	*path;
	int		 fd;		/* open on the volume (or its clone) */
	int		 is_blk;
	uint32_t	 bs;
	uint64_t	 size;
	uint64_t	 start;		/* first block to read */
	size_t		 chunk;		/* bytes per read; 0: VOL_READ_CHUNK */
	/*
	 * Called for each block, in order; p == NULL: the block is in a
	 * hole of an image file (all zeros, not read).
	 */
	int		(*fn)(void *arg, uint64_t i, const uint8_t *p,
			    size_t len, struct as_err *err);
	/*
	 * Optional: called after fn has seen every block of one read,
	 * before the buffer is reused (a local copy writes from it).
	 */
	int		(*chunk_done)(void *arg, struct as_err *err);
	void		*arg;
	struct vol_stats *st;
};

/*
 * Read the volume once, sequentially, in large reads.  On an image file
 * the holes are found with SEEK_DATA / SEEK_HOLE and not read: a block
 * entirely inside a hole is passed as NULL.
 */
static int
walk(struct walker *w, struct as_err *err)
{
	uint8_t *buf;
	uint64_t off = w->start * w->bs, i = w->start, dend = 0, nb, end;
	size_t chunk, want, k, len;
	ssize_t n;
	off_t x;
	int rc = -1, seek = !w->is_blk;

	chunk = w->chunk != 0 ? w->chunk : VOL_READ_CHUNK;
	if (chunk < w->bs)
		chunk = w->bs;
	(void)posix_fadvise(w->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	buf = xmalloc_io(chunk);
	while (off < w->size) {
		if (seek && off >= dend) {
			/* Where does the data at or after off start and end? */
			x = lseek(w->fd, (off_t)off, SEEK_DATA);
			if (x == -1 && errno == ENXIO)
				x = (off_t)w->size;	/* a hole to the end */
			else if (x == -1) {
				seek = 0;		/* not supported */
				dend = w->size;
				continue;
			}
			/* blocks wholly inside the hole [off, x) */
			nb = (uint64_t)x >= w->size ? (w->size - off +
			    w->bs - 1) / w->bs : ((uint64_t)x - off) / w->bs;
			for (end = i + nb; i < end; i++, off += len) {
				len = w->size - off < w->bs ?
				    (size_t)(w->size - off) : w->bs;
				if (w->fn(w->arg, i, NULL, len, err) == -1)
					goto out;
			}
			if (off >= w->size)
				break;
			x = lseek(w->fd, (off_t)off, SEEK_HOLE);
			dend = x == -1 ? w->size : (uint64_t)x;
			/* read whole blocks: round the end of data up */
			dend = (dend + w->bs - 1) / w->bs * w->bs;
			if (dend <= off)
				dend = off + w->bs;
			if (dend > w->size)
				dend = w->size;
		}
		end = seek ? dend : w->size;
		want = end - off < chunk ? (size_t)(end - off) : chunk;
		n = io_pread_full(w->fd, buf, want, (off_t)off);
		if (n == -1) {
			as_err_sys(err, errno, "read '%s' at %" PRIu64,
			    w->path, off);
			goto out;
		}
		if ((size_t)n != want) {
			as_err_set(err, AS_E_NOTCONSISTENT, 0, "volume '%s' "
			    "shrank while it was read", w->path);
			goto out;
		}
		w->st->bytes_read += (uint64_t)n;
		for (k = 0; k < want; k += len, i++) {
			len = want - k < w->bs ? want - k : w->bs;
			if (w->fn(w->arg, i, buf + k, len, err) == -1)
				goto out;
		}
		if (w->chunk_done != NULL && w->chunk_done(w->arg, err) == -1)
			goto out;
		/* what was hashed is not needed again */
		(void)posix_fadvise(w->fd, (off_t)off, (off_t)want,
		    POSIX_FADV_DONTNEED);
		off += want;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* The hash of len zero bytes; full blocks are computed once per size. */
static void
zero_hash(uint32_t bs, size_t len, uint8_t out[CAT_HASH_LEN])
{
	static uint8_t h[CAT_HASH_LEN];
	static uint32_t h_bs;
	uint8_t *z;

	if (len == bs && h_bs == bs) {
		memcpy(out, h, CAT_HASH_LEN);
		return;
	}
	z = xcalloc(1, len);
	hash_block(z, len, out);
	free(z);
	if (len == bs) {
		memcpy(h, out, CAT_HASH_LEN);
		h_bs = bs;
	}
}

struct scan_ctx {
	uint8_t		*hashes;
	uint32_t	 bs;
};

static int
scan_block(void *arg, uint64_t i, const uint8_t *p, size_t len,
    struct as_err *err)
{
	struct scan_ctx *s = arg;

	(void)err;
	if (p == NULL)
		zero_hash(s->bs, len, s->hashes + i * CAT_HASH_LEN);
	else
		hash_block(p, len, s->hashes + i * CAT_HASH_LEN);
	return 0;
}

int
vol_scan(const char *path, uint32_t bs, struct catalog *out,
    struct vol_stats *st, struct as_err *err)
{
	struct walker w;
	struct scan_ctx s;
	struct vsrc src;
	struct cat_entry *e;
	int rc;

	memset(&w, 0, sizeof(w));
	if (check_bs(bs, err) == -1 || vsrc_open(&src, path, 1, err) == -1)
		return -1;
	if (check_nblocks(src.size, bs, path, err) == -1) {
		vsrc_close(&src);
		return -1;
	}
	header_fill(out, path, bs);
	s.hashes = add_entry(out, src.size, bs);
	s.bs = bs;
	w.path = path;
	w.fd = src.fd;
	w.is_blk = src.is_blk;
	w.size = src.size;
	w.bs = bs;
	w.fn = scan_block;
	w.arg = &s;
	w.st = st;
	st->blocks = (src.size + bs - 1) / bs;
	st->cloned = src.cloned;
	rc = walk(&w, err);
	if (rc == 0 && vsrc_changed(&src)) {
		st->changed = 1;
		e = &out->ents[0];
		e->flags |= CAT_EF_NOTPIT;
	}
	vsrc_close(&src);
	return rc;
}

struct verify_ctx {
	const uint8_t	*want;		/* the snapshot's hashes */
	uint32_t	 bs;
	uint64_t	 ndiff;
	void		(*cb)(void *, uint64_t, uint64_t);
	void		*arg;
};

static int
verify_block(void *arg, uint64_t i, const uint8_t *p, size_t len,
    struct as_err *err)
{
	struct verify_ctx *v = arg;
	uint8_t h[CAT_HASH_LEN];

	(void)err;
	if (p == NULL)
		zero_hash(v->bs, len, h);
	else
		hash_block(p, len, h);
	if (memcmp(h, v->want + i * CAT_HASH_LEN, CAT_HASH_LEN) != 0) {
		v->ndiff++;
		if (v->cb != NULL)
			v->cb(v->arg, i, (uint64_t)len);
	}
	return 0;
}

int
vol_verify(const struct catalog *snap, const char *path,
    void (*cb)(void *arg, uint64_t block, uint64_t len), void *arg,
    uint64_t *ndiff, int *size_differs, struct vol_stats *st,
    struct as_err *err)
{
	const struct cat_entry *e;
	struct verify_ctx v;
	struct walker w;
	struct vsrc src;
	int rc;

	*ndiff = 0;
	*size_differs = 0;
	if ((e = vol_entry(snap)) == NULL)
		return as_err_set(err, AS_E_USAGE, 0, "snapshot '%s' is not a "
		    "volume snapshot", snap->hdr.name);
	if (vsrc_open(&src, path, 0, err) == -1)
		return -1;
	/* a device may be larger than the volume it holds */
	if (src.is_blk ? src.size < e->size : src.size != e->size)
		*size_differs = 1;
	memset(&v, 0, sizeof(v));
	v.want = (const uint8_t *)snap->hashes.data + CAT_HASH_AT(e);
	v.bs = snap->hdr.block_size;
	v.cb = cb;
	v.arg = arg;
	memset(&w, 0, sizeof(w));
	w.path = path;
	w.fd = src.fd;
	w.is_blk = src.is_blk;
	w.bs = v.bs;
	w.size = src.size < e->size ? src.size : e->size;
	/* a shorter volume: its last block is compared at its length */
	if (w.size < e->size)
		w.size -= w.size % v.bs;
	w.fn = verify_block;
	w.arg = &v;
	w.st = st;
	rc = walk(&w, err);
	vsrc_close(&src);
	*ndiff = v.ndiff;
	return rc;
}

/* ------------------------------------------------------------------ */
/* sending */

/*
 * A local copy (vol_copy) hands the sender's records straight to the
 * receiver's handler in the same process: no encoding, no pipe, no
 * decoding, and DATA is written from the read buffer.
 */
struct rcv;
static int	lc_record(struct rcv *r, const struct as_rec *rec,
		    uint64_t bytes, struct as_err *err);
static void	lc_set_ckpt(struct rcv *r, int (*fn)(void *, uint64_t,
		    struct catalog *), int (*save)(void *,
		    const struct catalog *, struct as_err *), void *arg,
		    void *save_arg);
static int	rcv_ckpt_join(struct rcv *s, struct as_err *err);
static int	lc_ckpt_join(struct rcv *r, struct as_err *err);

struct snd {
	struct rcv	*lc;		/* local copy: the receiver, or NULL */
	/* local copy: consecutive changed blocks still in the read buffer */
	uint64_t	 run_off;
	const uint8_t	*run_p;
	size_t		 run_len;
	int		 ckpt_lc;	/* snd_lc_ckpt is the receiver's hook */
	struct stream_enc enc;
	struct buf	 out;
	int		 fd;
	uint64_t	 hole_off;
	uint64_t	 hole_len;	/* pending hole, 0: none */
	struct vol_stats *st;
	const uint8_t	*base_h;	/* base hashes, or NULL */
	uint64_t	 base_nb;
	uint64_t	 base_size;
	uint32_t	 bs;
	uint8_t		*target_h;
	int		 live;
	const char	*path;
	const struct vol_send_opts *o;
	struct catalog	*target;
	uint64_t	 ckpt_at;	/* stream bytes at the last checkpoint */
	int64_t		 ckpt_ns;	/* ... and when */
};

static int
snd_flush(struct snd *s, struct as_err *err)
{
	if (s->out.len == 0)
		return 0;
	if (io_write_full(s->fd, s->out.data, s->out.len) == -1)
		return as_err_sys(err, errno, "write the stream");
	s->st->stream_bytes += s->out.len;
	buf_reset(&s->out);
	return 0;
}

/* Framed sizes, for the byte counts that pace checkpoints. */
#define SND_DATA_OVERHEAD	(REC_HDR_LEN + 8 + REC_TRAILER_LEN)
#define SND_HOLE_BYTES		(REC_HDR_LEN + 16 + REC_TRAILER_LEN)

static int
snd_hole_out(struct snd *s, struct as_err *err)
{
	struct as_rec r;

	if (s->hole_len == 0)
		return 0;
	s->st->hole_bytes += s->hole_len;
	if (s->lc == NULL) {
		stream_enc_hole(&s->enc, s->hole_off, s->hole_len);
		s->hole_len = 0;
		return 0;
	}
	memset(&r, 0, sizeof(r));
	r.type = AS_REC_HOLE;
	r.u.hole.offset = s->hole_off;
	r.u.hole.len = s->hole_len;
	s->hole_len = 0;
	s->st->stream_bytes += SND_HOLE_BYTES;
	return lc_record(s->lc, &r, SND_HOLE_BYTES, err);
}

/* Local copy: write the pending run of changed blocks. */
static int
snd_run_out(struct snd *s, struct as_err *err)
{
	struct as_rec r;
	uint64_t bytes;

	if (s->run_len == 0)
		return 0;
	memset(&r, 0, sizeof(r));
	r.type = AS_REC_DATA;
	r.u.data.offset = s->run_off;
	r.u.data.data = s->run_p;
	r.u.data.len = (uint32_t)s->run_len;
	bytes = s->run_len + SND_DATA_OVERHEAD;
	s->run_len = 0;
	s->st->stream_bytes += bytes;
	return lc_record(s->lc, &r, bytes, err);
}

static int
snd_chunk_done(void *arg, struct as_err *err)
{
	struct snd *s = arg;

	if (snd_run_out(s, err) == -1)
		return -1;
	if (s->o->paced != NULL)
		s->o->paced(s->o->pace_arg, s->st->stream_bytes);
	return 0;
}

/* Emit block i (its bytes p, len) unless base has the same hash. */
static int
snd_block(struct snd *s, uint64_t i, const uint8_t *p, size_t len,
    const uint8_t *h, struct as_err *err)
{
	uint64_t off = i * s->bs;
	size_t k, n;

	if (s->base_h != NULL && i < s->base_nb &&
	    memcmp(s->base_h + i * CAT_HASH_LEN, h, CAT_HASH_LEN) == 0)
		return 0;
	if (p == NULL || all_zero(p, len)) {
		if (snd_run_out(s, err) == -1)
			return -1;
		if (s->hole_len != 0 && s->hole_off + s->hole_len == off)
			s->hole_len += len;
		else {
			if (snd_hole_out(s, err) == -1)
				return -1;
			s->hole_off = off;
			s->hole_len = len;
		}
		s->st->zero_blocks++;
	} else if (s->lc != NULL) {
		if (snd_hole_out(s, err) == -1)
			return -1;
		/* one write for the changed blocks of a read, not one each */
		if (s->run_len != 0 && (s->run_off + s->run_len != off ||
		    s->run_p + s->run_len != p || s->run_len + len >
		    UINT32_MAX) && snd_run_out(s, err) == -1)
			return -1;
		if (s->run_len == 0) {
			s->run_off = off;
			s->run_p = p;
		}
		s->run_len += len;
		s->st->data_bytes += len;
		s->st->blocks_sent++;
	} else {
		if (snd_hole_out(s, err) == -1)
			return -1;
		for (k = 0; k < len; k += n) {
			n = len - k < AS_DATA_MAX ? len - k : AS_DATA_MAX;
			stream_enc_data(&s->enc, off + k, p + k, (uint32_t)n);
		}
		s->st->data_bytes += len;
		s->st->blocks_sent++;
	}
	if (s->out.len >= VOL_OUT_FLUSH)
		return snd_flush(s, err);
	return 0;
}

static int
live_block(void *arg, uint64_t i, const uint8_t *p, size_t len,
    struct as_err *err)
{
	struct snd *s = arg;
	uint8_t *h = s->target_h + i * CAT_HASH_LEN;

	if (p == NULL)
		zero_hash(s->bs, len, h);
	else
		hash_block(p, len, h);
	if (snd_block(s, i, p, len, h, err) == -1)
		return -1;
	/* (a local copy saves target when its receiver checkpoints) */
	if (s->lc == NULL && s->o->checkpoint != NULL &&
	    s->st->stream_bytes + s->out.len -
	    s->ckpt_at >= VOL_CKPT_SEND && mono_ns() - s->ckpt_ns >=
	    ckpt_floor(VOL_CKPT_SEND_NS)) {
		s->target->ents[0].ino = i + 1;
		if (s->o->checkpoint(s->o->arg, s->target, err) == -1)
			return -1;
		s->target->ents[0].ino = 0;
		s->ckpt_at = s->st->stream_bytes + s->out.len;
		s->ckpt_ns = mono_ns();
	}
	return 0;
}

/* Not live: read only the blocks that differ, check them against target. */
static int
send_changed(struct snd *s, uint64_t size, struct as_err *err)
{
	uint8_t *buf, h[CAT_HASH_LEN];
	uint64_t i, nb = (size + s->bs - 1) / s->bs, off;
	size_t len;
	ssize_t n;
	int fd, rc = -1;

	if ((fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		return as_err_sys(err, errno, "open '%s'", s->path);
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	buf = xmalloc_io(s->bs);
	for (i = 0; i < nb; i++) {
		if (s->base_h != NULL && i < s->base_nb &&
		    memcmp(s->base_h + i * CAT_HASH_LEN, s->target_h +
		    i * CAT_HASH_LEN, CAT_HASH_LEN) == 0)
			continue;
		off = i * s->bs;
		len = size - off < s->bs ? (size_t)(size - off) : s->bs;
		n = io_pread_full(fd, buf, len, (off_t)off);
		if (n == -1) {
			as_err_sys(err, errno, "read '%s' at %" PRIu64,
			    s->path, off);
			goto out;
		}
		s->st->bytes_read += (uint64_t)n;
		if ((size_t)n != len) {
			as_err_set(err, AS_E_CONFLICT, 0, "the volume changed "
			    "since the snapshot was taken: '%s' shrank",
			    s->path);
			goto out;
		}
		hash_block(buf, len, h);
		if (memcmp(h, s->target_h + i * CAT_HASH_LEN,
		    CAT_HASH_LEN) != 0) {
			as_err_set(err, AS_E_CONFLICT, 0, "the volume changed "
			    "since the snapshot was taken: '%s' differs at "
			    "block %" PRIu64, s->path, i);
			goto out;
		}
		if (snd_block(s, i, buf, len, h, err) == -1 ||
		    snd_run_out(s, err) == -1)
			goto out;
	}
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

/* Local copy: BEGIN, ENTRY or END handed to the receiver. */
static int
snd_lc_head(struct snd *s, enum as_rec_type type, const struct as_begin *b,
    const struct as_entry *en, struct as_err *err)
{
	struct as_rec r;

	memset(&r, 0, sizeof(r));
	r.type = type;
	if (b != NULL)
		r.u.begin = *b;
	if (en != NULL)
		r.u.entry = *en;
	return lc_record(s->lc, &r, 0, err);
}

/*
 * Local copy, live: the receiver is about to record a checkpoint at
 * covered; its thread saves target first with the hashes of the blocks
 * below it (all hashed: a block is hashed before it is handed over), so
 * that the resume point (the smaller of the two) is the receiver's.
 * The thread gets a copy (copy, initialised), since this thread goes on
 * filling target.
 */
static int
snd_lc_ckpt(void *arg, uint64_t covered, struct catalog *copy)
{
	struct snd *s = arg;
	const struct cat_entry *e = &s->target->ents[0];
	uint64_t nb = (covered + s->bs - 1) / s->bs;
	uint8_t *h;

	if (nb > e->nblocks)
		return -1;
	copy->hdr = s->target->hdr;
	copy->hdr.source = s->target->hdr.source != NULL ?
	    xstrdup(s->target->hdr.source) : NULL;
	h = add_entry(copy, e->size, s->bs);
	memcpy(h, (const uint8_t *)s->target->hashes.data + CAT_HASH_AT(e),
	    nb * CAT_HASH_LEN);
	memset(h + nb * CAT_HASH_LEN, 0, (e->nblocks - nb) * CAT_HASH_LEN);
	copy->ents[0].ino = nb;
	copy->ents[0].flags = e->flags;
	return 0;
}

/* vol_send, to out_fd or (lc != NULL) to a receiver in this process */
static int
vol_send_to(const char *path, struct catalog *target,
    const struct catalog *base, int out_fd, struct rcv *lc,
    const struct vol_send_opts *o, struct vol_stats *st,
    struct as_err *err)
{
	struct snd s;
	struct walker w;
	struct vsrc src;
	struct as_begin b;
	struct as_entry en;
	struct as_err e2;
	const struct cat_entry *be = NULL, *te;
	uint64_t size;
	uint32_t bs;
	int rc = -1;

	memset(&s, 0, sizeof(s));
	memset(&w, 0, sizeof(w));
	src.fd = -1;
	buf_init(&s.out);
	s.fd = out_fd;
	s.lc = lc;
	s.st = st;
	s.path = path;
	s.o = o;
	s.target = target;
	s.ckpt_ns = mono_ns();
	s.live = (o->flags & VOL_SEND_LIVE) != 0;
	if (base != NULL && (be = vol_entry(base)) == NULL)
		return as_err_set(err, AS_E_USAGE, 0, "base snapshot '%s' is "
		    "not a volume snapshot", base->hdr.name);
	if (s.live && o->resume_block > 0) {
		/* a cut transfer: its pending catalog says what was read */
		if ((te = vol_entry(target)) == NULL || te->ino == 0 ||
		    o->resume_block > te->ino)
			return as_err_set(err, AS_E_INTERNAL, 0, "resume "
			    "without a partial catalog");
		bs = target->hdr.block_size;
		if (vsrc_open(&src, path, 1, err) == -1)
			return -1;
		size = src.size;
		st->cloned = src.cloned;
		if (size != te->size) {
			vsrc_close(&src);
			return as_err_set(err, AS_E_CONFLICT, 0, "'%s' changed "
			    "size since the cut transfer: it cannot resume",
			    path);
		}
		target->ents[0].ino = 0;
		s.target_h = (uint8_t *)target->hashes.data + CAT_HASH_AT(te);
	} else if (s.live) {
		bs = base != NULL ? base->hdr.block_size : o->block_size != 0 ?
		    o->block_size : AS_BLOCK_DEFAULT;
		if (target->n != 0)
			return as_err_set(err, AS_E_INTERNAL, 0, "live send "
			    "into a catalog with entries");
		if (check_bs(bs, err) == -1 ||
		    vsrc_open(&src, path, 1, err) == -1)
			return -1;
		size = src.size;
		st->cloned = src.cloned;
		if (check_nblocks(size, bs, path, err) == -1) {
			vsrc_close(&src);
			return -1;
		}
		header_fill(target, path, bs);
		s.target_h = add_entry(target, size, bs);
	} else {
		if ((te = vol_entry(target)) == NULL)
			return as_err_set(err, AS_E_USAGE, 0, "snapshot '%s' "
			    "is not a volume snapshot", target->hdr.name);
		bs = target->hdr.block_size;
		size = te->size;
		s.target_h = (uint8_t *)target->hashes.data + CAT_HASH_AT(te);
	}
	if (base != NULL && base->hdr.block_size != bs) {
		vsrc_close(&src);
		return as_err_set(err, AS_E_USAGE, 0, "base '%s' has %u-byte "
		    "blocks, the target %u", base->hdr.name,
		    base->hdr.block_size, bs);
	}
	s.bs = bs;
	if (be != NULL) {
		s.base_h = (const uint8_t *)base->hashes.data + CAT_HASH_AT(be);
		s.base_nb = be->nblocks;
		s.base_size = be->size;
	}
	st->blocks = (size + bs - 1) / bs;
	stream_enc_init(&s.enc, &s.out);
	memset(&b, 0, sizeof(b));
	b.version = AS_STREAM_VERSION;
	b.kind = AS_KIND_VOL;
	b.block_size = bs;
	b.base_guid = base != NULL ? base->hdr.guid : 0;
	b.target_guid = target->hdr.guid;
	b.time_ns = target->hdr.time_ns;
	b.name = target->hdr.name;
	b.name_len = (uint16_t)strlen(target->hdr.name);
	b.source = target->hdr.source != NULL ? target->hdr.source : "";
	b.source_len = (uint16_t)strnlen(b.source, AS_PATH_MAX);
	if (lc != NULL && s.live && o->checkpoint != NULL) {
		lc_set_ckpt(lc, snd_lc_ckpt, o->checkpoint, &s, o->arg);
		s.ckpt_lc = 1;
	}
	if (lc == NULL)
		stream_enc_begin(&s.enc, &b);
	else if (snd_lc_head(&s, AS_REC_BEGIN, &b, NULL, err) == -1)
		goto out;
	memset(&en, 0, sizeof(en));
	en.op = base != NULL ? AS_OP_PATCH : AS_OP_CREATE;
	en.mode = S_IFREG | 0600;
	en.size = size;
	en.path = VOL_ENTRY_PATH;
	en.path_len = (uint16_t)strlen(VOL_ENTRY_PATH);
	en.aux = "";
	if (lc == NULL)
		stream_enc_entry(&s.enc, &en);
	else if (snd_lc_head(&s, AS_REC_ENTRY, NULL, &en, err) == -1)
		goto out;
	if (snd_flush(&s, err) == -1)
		goto out;
	if (s.live) {
		w.path = path;
		w.fd = src.fd;
		w.is_blk = src.is_blk;
		w.bs = bs;
		w.size = size;
		w.start = o->resume_block;
		w.fn = live_block;
		if (lc != NULL) {
			w.chunk = VOL_COPY_CHUNK;
			w.chunk_done = snd_chunk_done;
		}
		w.arg = &s;
		w.st = st;
		if (walk(&w, err) == -1)
			goto out;
		if (vsrc_changed(&src)) {
			st->changed = 1;
			target->ents[0].flags |= CAT_EF_NOTPIT;
		}
	} else if (send_changed(&s, size, err) == -1)
		goto out;
	if (snd_hole_out(&s, err) == -1 || snd_run_out(&s, err) == -1 ||
	    snd_flush(&s, err) == -1)
		goto out;
	/* (before_end saves the catalog a checkpoint may be saving) */
	if (lc != NULL && lc_ckpt_join(lc, err) == -1)
		goto out;
	if (o->before_end != NULL && o->before_end(o->arg, err) == -1)
		goto out;
	if (lc == NULL)
		stream_enc_end(&s.enc);
	else if (snd_lc_head(&s, AS_REC_END, NULL, NULL, err) == -1)
		goto out;
	if (snd_flush(&s, err) == -1)
		goto out;
	rc = 0;
out:
	if (s.ckpt_lc) {
		/* (the checkpoint's thread may still use s and o) */
		(void)rcv_ckpt_join(lc, &e2);
		lc_set_ckpt(lc, NULL, NULL, NULL, NULL);
	}
	vsrc_close(&src);
	buf_release(&s.out);
	return rc;
}

int
vol_send(const char *path, struct catalog *target,
    const struct catalog *base, int out_fd, const struct vol_send_opts *o,
    struct vol_stats *st, struct as_err *err)
{
	return vol_send_to(path, target, base, out_fd, NULL, o, st, err);
}

/* ------------------------------------------------------------------ */
/* destination state: the record and the journal */

static char *
path_key(const char *abs)
{
	static const char ok[] = "._,+=@:-";
	struct buf b;
	const unsigned char *p;
	char hex[4];

	buf_init(&b);
	for (p = (const unsigned char *)abs; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr(ok, *p) != NULL)
			buf_add(&b, p, 1);
		else {
			snprintf(hex, sizeof(hex), "%%%02X", *p);
			buf_add(&b, hex, 3);
		}
	}
	buf_add(&b, "", 1);
	return (char *)b.data;
}

int
vol_paths(const char *dest, const char *state, char **record,
    char **journal, struct as_err *err)
{
	struct stat st;
	char *abs, *key, *dir;

	*record = *journal = NULL;
	if (stat(dest, &st) == 0 && S_ISBLK(st.st_mode)) {
		if (state == NULL)
			return as_err_set(err, AS_E_USAGE, 0, "block device "
			    "'%s': a state directory is needed", dest);
		if ((abs = realpath(dest, NULL)) == NULL)
			return as_err_sys(err, errno, "'%s'", dest);
		dir = xasprintf("%s/volumes", state);
		if (mkdir(state, 0700) == -1 && errno != EEXIST) {
			as_err_sys(err, errno, "create '%s'", state);
			free(dir);
			free(abs);
			return -1;
		}
		if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
			as_err_sys(err, errno, "create '%s'", dir);
			free(dir);
			free(abs);
			return -1;
		}
		key = path_key(abs);
		*record = xasprintf("%s/%s", dir, key);
		*journal = xasprintf("%s/%s.journal", dir, key);
		free(key);
		free(dir);
		free(abs);
		return 0;
	}
	*record = xasprintf("%s.autosync", dest);
	*journal = xasprintf("%s.autosync-journal", dest);
	return 0;
}

struct vrec {
	uint64_t	guid;
	uint64_t	size;
	uint32_t	block_size;
	int		complete;
	char		name[256];
	/* an interrupted transfer that can resume (pguid != 0) */
	uint64_t	pguid;		/* the snapshot being received */
	uint64_t	pbase;		/* its base (0: full, in place) */
	uint64_t	poff;		/* every block below is durable */
	uint64_t	pjlen;		/* incremental: journal bytes then */
};

/*
 * A record or journal next to an image that is a symbolic link was not
 * made by autosync: refuse rather than read or write through it.
 */
static int
state_symlink(const char *path, struct as_err *err)
{
	return as_err_set(err, AS_E_UNSAFE_PATH, ELOOP, "'%s' is a symbolic "
	    "link; refusing to use it", path);
}

/* 1 read, 0 none, -1 error. */
static int
rec_read(const char *path, struct vrec *r, struct as_err *err)
{
	char buf[1024], *line, *nl, *v;
	ssize_t n;
	int fd, magic = 0;

	memset(r, 0, sizeof(*r));
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP)
			return state_symlink(path, err);
		return as_err_sys(err, errno, "open '%s'", path);
	}
	n = io_read_full(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n == -1)
		return as_err_sys(err, errno, "read '%s'", path);
	buf[n] = '\0';
	for (line = buf; *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			break;
		*nl = '\0';
		if (strcmp(line, REC_MAGIC) == 0) {
			magic = 1;
			continue;
		}
		if ((v = strchr(line, ' ')) == NULL)
			continue;
		*v++ = '\0';
		if (strcmp(line, "guid") == 0)
			r->guid = strtoull(v, NULL, 16);
		else if (strcmp(line, "size") == 0)
			r->size = strtoull(v, NULL, 10);
		else if (strcmp(line, "block_size") == 0)
			r->block_size = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(line, "state") == 0)
			r->complete = strcmp(v, "complete") == 0;
		else if (strcmp(line, "name") == 0)
			snprintf(r->name, sizeof(r->name), "%s", v);
		else if (strcmp(line, "partial_guid") == 0)
			r->pguid = strtoull(v, NULL, 16);
		else if (strcmp(line, "partial_base") == 0)
			r->pbase = strtoull(v, NULL, 16);
		else if (strcmp(line, "partial_offset") == 0)
			r->poff = strtoull(v, NULL, 10);
		else if (strcmp(line, "partial_journal") == 0)
			r->pjlen = strtoull(v, NULL, 10);
	}
	if (!magic)
		return as_err_set(err, AS_E_MALFORMED, 0, "'%s' is not a "
		    "volume record", path);
	return 1;
}

/* Write the record atomically: temporary file, fsync, rename, fsync dir. */
static int
rec_write(const char *path, const struct vrec *r, struct as_err *err)
{
	char *tmp, *text, *t2;
	int fd, rc = -1;

	tmp = xasprintf("%s.tmp", path);
	text = xasprintf("%s\nguid %016" PRIx64 "\nname %s\nsize %" PRIu64
	    "\nblock_size %u\nstate %s\n", REC_MAGIC, r->guid, r->name,
	    r->size, r->block_size, r->complete ? "complete" : "incomplete");
	if (r->pguid != 0) {
		t2 = xasprintf("%spartial_guid %016" PRIx64 "\npartial_base "
		    "%016" PRIx64 "\npartial_offset %" PRIu64 "\n"
		    "partial_journal %" PRIu64 "\n", text, r->pguid, r->pbase,
		    r->poff, r->pjlen);
		free(text);
		text = t2;
	}
	/*
	 * The image's directory may be writable by someone else: whatever
	 * is planted at the temporary name goes, and the new file is made
	 * exclusively, so that nothing is written through a symlink or into
	 * a file of theirs (RELIABILITY.md §B 21).
	 */
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		as_err_sys(err, errno, "create '%s'", tmp);
		goto out;
	}
	if (io_write_full(fd, text, strlen(text)) == -1) {
		as_err_sys(err, errno, "write '%s'", tmp);
		close(fd);
		goto out;
	}
	if (io_fsync(fd, tmp, err) == -1) {
		close(fd);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) == -1) {
		as_err_sys(err, errno, "rename '%s'", tmp);
		goto out;
	}
	rc = fsync_dir_of(path, err);
out:
	if (rc == -1)
		(void)unlink(tmp);
	free(tmp);
	free(text);
	return rc;
}

int
vol_held(const char *dest, const char *state, uint64_t *guid, char *name,
    struct as_err *err)
{
	struct vrec r;
	char *rp, *jp;
	int rc;

	*guid = 0;
	if (vol_paths(dest, state, &rp, &jp, err) == -1)
		return -1;
	rc = rec_read(rp, &r, err);
	free(rp);
	free(jp);
	if (rc != 1)
		return rc;
	if (!r.complete || r.guid == 0)
		return 0;
	*guid = r.guid;
	if (name != NULL)
		snprintf(name, 256, "%s", r.name);
	return 1;
}

/*
 * Failback (vol.h): dest, a source until now, holds snap.  Nothing may
 * be half received into it: a journal left there is refused (the caller
 * ran vol_recover, which settles any).
 */
int
vol_hold_set(const char *dest, const char *state, const struct catalog *snap,
    struct as_err *err)
{
	const struct cat_entry *e;
	const char *c;
	struct vrec r;
	struct stat st;
	char *rp, *jp;
	int rc = -1;

	if ((e = vol_entry(snap)) == NULL || snap->hdr.guid == 0)
		return as_err_set(err, AS_E_USAGE, 0, "snapshot '%s' is not a "
		    "volume snapshot", snap->hdr.name);
	/* the record is lines of text: a name cannot add one */
	for (c = snap->hdr.name; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return as_err_set(err, AS_E_MALFORMED, 0, "snapshot "
			    "name with a control character");
	if (vol_paths(dest, state, &rp, &jp, err) == -1)
		return -1;
	if (lstat(jp, &st) == 0) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' has an apply journal "
		    "'%s': recover it first", dest, jp);
		goto out;
	}
	memset(&r, 0, sizeof(r));
	r.guid = snap->hdr.guid;
	r.size = e->size;
	r.block_size = snap->hdr.block_size;
	r.complete = 1;
	snprintf(r.name, sizeof(r.name), "%s", snap->hdr.name);
	rc = rec_write(rp, &r, err);
out:
	free(rp);
	free(jp);
	return rc;
}

/*
 * Failback (vol.h): dest, a destination until now, holds nothing.  What
 * vol_recover left of a journal is a cut incremental's spool (dest still
 * holds its snapshot: nothing of it was applied), which no one will
 * resume now: it goes first, then the record.
 */
int
vol_hold_drop(const char *dest, const char *state, struct as_err *err)
{
	char *rp, *jp;
	int rc = 0;

	if (vol_paths(dest, state, &rp, &jp, err) == -1)
		return -1;
	if (unlink(jp) == -1 && errno != ENOENT)
		rc = as_err_sys(err, errno, "remove '%s'", jp);
	else if (unlink(rp) == -1 && errno != ENOENT)
		rc = as_err_sys(err, errno, "remove '%s'", rp);
	else
		rc = fsync_dir_of(rp, err);
	free(rp);
	free(jp);
	return rc;
}

/* Is the block device dev (st_rdev) mounted?  1 yes, 0 no. */
static int
dev_mounted(dev_t dev)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	unsigned ma, mi;
	int found = 0;

	if ((f = fopen("/proc/self/mountinfo", "re")) == NULL)
		return 0;
	while (getline(&line, &cap, f) != -1) {
		/* id parent major:minor root mountpoint ... */
		if (sscanf(line, "%*u %*u %u:%u", &ma, &mi) == 2 &&
		    ma == major(dev) && mi == minor(dev)) {
			found = 1;
			break;
		}
	}
	free(line);
	fclose(f);
	return found;
}

/* The destination, open for writing. */
struct vdst {
	const char	*path;
	int		 fd;
	int		 is_blk;
	uint64_t	 dev_size;	/* block devices */
	uint64_t	 file_size;	/* image files, dry runs */
};

static int
dst_open(struct vdst *d, const char *path, int create, struct as_err *err)
{
	struct stat st;
	int fl = O_RDWR | O_CLOEXEC | O_NOCTTY;

	d->path = path;
	d->fd = -1;
	d->is_blk = 0;
	if (ownwalk_check(path, "destination", err) == -1)
		return -1;
	if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
		d->is_blk = 1;
		if (dev_mounted(st.st_rdev))
			return as_err_set(err, AS_E_CONFLICT, 0, "block device "
			    "'%s' is mounted: refusing to write to it", path);
		if ((d->fd = open(path, fl | O_EXCL)) == -1) {
			if (errno == EBUSY)
				return as_err_set(err, AS_E_CONFLICT, errno,
				    "block device '%s' is in use", path);
			return as_err_sys(err, errno, "open '%s'", path);
		}
		if (ioctl(d->fd, BLKGETSIZE64, &d->dev_size) == -1) {
			as_err_sys(err, errno, "size of '%s'", path);
			close(d->fd);
			d->fd = -1;
			return -1;
		}
		return 0;
	}
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return as_err_set(err, AS_E_USAGE, 0, "'%s' is neither a "
		    "block device nor a regular file", path);
	if ((d->fd = open(path, fl | O_NOFOLLOW | (create ? O_CREAT : 0),
	    0600)) == -1)
		return as_err_sys(err, errno, "open '%s'", path);
	if (flock(d->fd, LOCK_EX | LOCK_NB) == -1) {
		close(d->fd);
		d->fd = -1;
		return as_err_set(err, AS_E_CONFLICT, errno, "volume '%s' is "
		    "busy: another receive holds it", path);
	}
	return 0;
}

/* Make len bytes at off read as zeros. */
static int
dst_zero(struct vdst *d, uint64_t off, uint64_t len, struct as_err *err)
{
	static const uint8_t z[65536];
	uint64_t range[2], k, n;

	if (d->is_blk) {
		range[0] = off;
		range[1] = len;
		if (ioctl(d->fd, BLKZEROOUT, range) == 0)
			return 0;
	} else if (fallocate(d->fd, FALLOC_FL_PUNCH_HOLE |
	    FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	for (k = 0; k < len; k += n) {
		n = len - k < sizeof(z) ? len - k : sizeof(z);
		if (io_pwrite_full(d->fd, z, (size_t)n, (off_t)(off + k)) ==
		    -1)
			return as_err_sys(err, errno, "write '%s'", d->path);
	}
	return 0;
}

static int
dst_resize(struct vdst *d, uint64_t size, struct as_err *err)
{
	if (d->is_blk)
		return 0;
	if (ftruncate(d->fd, (off_t)size) == -1)
		return as_err_sys(err, errno, "resize '%s' to %" PRIu64,
		    d->path, size);
	return 0;
}

/* The journal, as written by the receiver. */
struct jrn {
	const char	*path;
	int		 fd;
	struct buf	 b;
	XXH3_state_t	*xs;
	uint64_t	 nrec;
	uint64_t	 bytes;
};

static int
jrn_flush(struct jrn *j, struct as_err *err)
{
	int e;

	if (j->b.len == 0)
		return 0;
	XXH3_64bits_update(j->xs, j->b.data, j->b.len);
	/* (vol_write: the tests' EIO/ENOSPC at the n-th write, #33) */
	if ((e = io_fault("vol_write")) != 0 ||
	    (io_write_full(j->fd, j->b.data, j->b.len) == -1 &&
	    (e = errno) != 0))
		return as_err_sys(err, e, "write '%s'", j->path);
	j->bytes += j->b.len;
	buf_reset(&j->b);
	return 0;
}

static int
jrn_add(struct jrn *j, uint8_t type, uint64_t off, uint64_t len,
    const void *data, struct as_err *err)
{
	uint8_t h[JRN_REC];

	memset(h, 0, sizeof(h));
	h[0] = type;
	put_le64(h + 8, off);
	put_le64(h + 16, len);
	buf_add(&j->b, h, sizeof(h));
	if (type == JRN_DATA)
		buf_add(&j->b, data, (size_t)len);
	j->nrec++;
	if (j->b.len >= VOL_OUT_FLUSH)
		return jrn_flush(j, err);
	return 0;
}

/* Seal the journal: data, fsync, commit record, fsync, directory fsync. */
static int
jrn_commit(struct jrn *j, struct as_err *err)
{
	uint8_t h[JRN_REC];

	if (jrn_flush(j, err) == -1 || io_fsync(j->fd, j->path, err) == -1)
		return -1;
	memset(h, 0, sizeof(h));
	h[0] = JRN_COMMIT;
	put_le64(h + 8, j->nrec);
	put_le64(h + 16, XXH3_64bits_digest(j->xs));
	if (io_write_full(j->fd, h, sizeof(h)) == -1)
		return as_err_sys(err, errno, "write '%s'", j->path);
	if (io_fsync(j->fd, j->path, err) == -1)
		return -1;
	return fsync_dir_of(j->path, err);
}

struct jhdr {
	uint64_t	target_guid;
	uint64_t	base_guid;
	uint64_t	size;
	uint32_t	block_size;
	char		name[256];
};

static int
jrn_begin(struct jrn *j, const struct jhdr *h, struct as_err *err)
{
	uint8_t f[JRN_HDR];
	size_t nl = strlen(h->name);

	/* a new journal, never one planted there (as rec_write) */
	(void)unlink(j->path);
	if ((j->fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		return as_err_sys(err, errno, "create '%s'", j->path);
	if ((j->xs = XXH3_createState()) == NULL)
		return as_err_set(err, AS_E_INTERNAL, ENOMEM, "out of memory");
	XXH3_64bits_reset(j->xs);
	memset(f, 0, sizeof(f));
	memcpy(f, JRN_MAGIC, 8);
	put_le64(f + 8, h->target_guid);
	put_le64(f + 16, h->base_guid);
	put_le64(f + 24, h->size);
	put_le32(f + 32, h->block_size);
	put_le32(f + 36, (uint32_t)nl);
	buf_add(&j->b, f, sizeof(f));
	buf_add(&j->b, h->name, nl);
	return 0;
}

static void
jrn_release(struct jrn *j)
{
	if (j->fd != -1)
		close(j->fd);
	j->fd = -1;
	buf_release(&j->b);
	if (j->xs != NULL)
		XXH3_freeState(j->xs);
	j->xs = NULL;
}

/* A reader over the journal file. */
struct jread {
	int		 fd;
	uint8_t		*buf;
	size_t		 cap, have, pos;
	uint64_t	 off;		/* file offset of buf[0] */
};

/* Make n bytes available at r->buf + r->pos; 0 ok, -1 short. */
static int
jr_need(struct jread *r, size_t n)
{
	ssize_t got;

	if (r->have - r->pos >= n)
		return 0;
	memmove(r->buf, r->buf + r->pos, r->have - r->pos);
	r->off += r->pos;
	r->have -= r->pos;
	r->pos = 0;
	if (n > r->cap) {
		r->cap = n;
		r->buf = xrealloc(r->buf, r->cap);
	}
	got = io_read_full(r->fd, r->buf + r->have, r->cap - r->have);
	if (got > 0)
		r->have += (size_t)got;
	return r->have >= n ? 0 : -1;
}

/*
 * Read a journal; with d == NULL only check that it is sealed (returns 1
 * sealed, 0 not), else apply it to d (returns 1, or -1).
 */
static int
jrn_scan(const char *path, struct jhdr *h, struct vdst *d,
    struct vol_stats *st, struct as_err *err)
{
	struct jread r;
	XXH3_state_t *xs = NULL;
	uint64_t off, len, nrec = 0;
	uint32_t nl;
	uint8_t type;
	int rc = -1, e;

	memset(&r, 0, sizeof(r));
	if ((r.fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ELOOP)
			return state_symlink(path, err);
		return as_err_sys(err, errno, "open '%s'", path);
	}
	r.cap = VOL_OUT_FLUSH + JRN_REC;
	r.buf = xmalloc_io(r.cap);
	(void)posix_fadvise(r.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if ((xs = XXH3_createState()) == NULL) {
		as_err_set(err, AS_E_INTERNAL, ENOMEM, "out of memory");
		goto out;
	}
	XXH3_64bits_reset(xs);
	if (jr_need(&r, JRN_HDR) == -1 || memcmp(r.buf, JRN_MAGIC, 8) != 0)
		goto unsealed;
	nl = le32(r.buf + 36);
	if (nl > 255 || jr_need(&r, JRN_HDR + nl) == -1)
		goto unsealed;
	h->target_guid = le64(r.buf + 8);
	h->base_guid = le64(r.buf + 16);
	h->size = le64(r.buf + 24);
	h->block_size = le32(r.buf + 32);
	memcpy(h->name, r.buf + JRN_HDR, nl);
	h->name[nl] = '\0';
	XXH3_64bits_update(xs, r.buf, JRN_HDR + nl);
	r.pos = JRN_HDR + nl;
	if (d != NULL && dst_resize(d, h->size, err) == -1)
		goto out;
	for (;;) {
		if (jr_need(&r, JRN_REC) == -1)
			goto unsealed;
		type = r.buf[r.pos];
		off = le64(r.buf + r.pos + 8);
		len = le64(r.buf + r.pos + 16);
		if (type == JRN_COMMIT) {
			if (off != nrec || len != XXH3_64bits_digest(xs))
				goto unsealed;
			break;
		}
		if ((type != JRN_DATA && type != JRN_ZERO) ||
		    len > h->size || off > h->size - len ||
		    (type == JRN_DATA && len > AS_DATA_MAX))
			goto unsealed;
		XXH3_64bits_update(xs, r.buf + r.pos, JRN_REC);
		r.pos += JRN_REC;
		if (type == JRN_DATA) {
			if (jr_need(&r, (size_t)len) == -1)
				goto unsealed;
			XXH3_64bits_update(xs, r.buf + r.pos, (size_t)len);
			if (d != NULL) {
				if ((e = io_fault("vol_write")) != 0 ||
				    (io_pwrite_full(d->fd, r.buf + r.pos,
				    (size_t)len, (off_t)off) == -1 &&
				    (e = errno) != 0)) {
					as_err_sys(err, e, "write '%s'",
					    d->path);
					goto out;
				}
				st->data_bytes += len;
			}
			r.pos += (size_t)len;
		} else if (d != NULL) {
			if (dst_zero(d, off, len, err) == -1)
				goto out;
			st->hole_bytes += len;
		}
		nrec++;
	}
	rc = 1;
	goto out;
unsealed:
	if (d != NULL)
		as_err_set(err, AS_E_MALFORMED, 0, "journal '%s' is damaged",
		    path);
	else
		rc = 0;
out:
	if (xs != NULL)
		XXH3_freeState(xs);
	free(r.buf);
	close(r.fd);
	return rc;
}

/*
 * Apply the sealed journal at jpath to d, fsync d, record the snapshot,
 * remove the journal.
 */
static int
jrn_apply(const char *jpath, const char *rpath, struct vdst *d,
    struct vol_stats *st, struct as_err *err)
{
	struct jhdr h;
	struct vrec r;

	memset(&h, 0, sizeof(h));
	if (jrn_scan(jpath, &h, d, st, err) == -1)
		return -1;
	if (io_fault("vol-apply") != 0)
		return as_err_set(err, AS_E_IO, EIO, "injected fault");
	if (io_fsync(d->fd, d->path, err) == -1)
		return -1;
	memset(&r, 0, sizeof(r));
	r.guid = h.target_guid;
	r.size = h.size;
	r.block_size = h.block_size;
	r.complete = 1;
	snprintf(r.name, sizeof(r.name), "%s", h.name);
	if (rec_write(rpath, &r, err) == -1)
		return -1;
	if (unlink(jpath) == -1)
		return as_err_sys(err, errno, "remove '%s'", jpath);
	return fsync_dir_of(jpath, err);
}

static int
recover_open(const char *dest, const char *state, struct vdst *d,
    int *did, struct vol_stats *st, struct as_err *err)
{
	struct jhdr h;
	struct stat sb;
	struct vrec r;
	char *rp = NULL, *jp = NULL;
	int rc = -1, sealed, x;

	*did = 0;
	if (vol_paths(dest, state, &rp, &jp, err) == -1)
		return -1;
	if (lstat(jp, &sb) == -1) {
		rc = errno == ENOENT ? 0 : as_err_sys(err, errno, "'%s'", jp);
		goto out;
	}
	memset(&h, 0, sizeof(h));
	if ((sealed = jrn_scan(jp, &h, NULL, st, err)) == -1)
		goto out;
	if (!sealed) {
		/*
		 * A transfer cut after a checkpoint: keep the journal up to
		 * it, so that the next one resumes there (vol_partial).
		 */
		memset(&r, 0, sizeof(r));
		if ((x = rec_read(rp, &r, err)) == -1)
			goto out;
		if (x == 1 && r.pguid != 0 && r.pbase != 0 &&
		    r.pguid == h.target_guid && r.pjlen >= JRN_HDR &&
		    (uint64_t)sb.st_size >= r.pjlen) {
			if (truncate(jp, (off_t)r.pjlen) == -1) {
				as_err_sys(err, errno, "truncate '%s'", jp);
				goto out;
			}
			rc = 0;
			goto out;
		}
		*did = 1;
		if (unlink(jp) == -1) {
			as_err_sys(err, errno, "remove '%s'", jp);
			goto out;
		}
		rc = fsync_dir_of(jp, err);
		goto out;
	}
	*did = 1;
	if (d->fd == -1 && dst_open(d, dest, 0, err) == -1)
		goto out;
	rc = jrn_apply(jp, rp, d, st, err);
out:
	free(rp);
	free(jp);
	return rc;
}

int
vol_recover(const char *dest, const char *state, struct as_err *err)
{
	struct vdst d;
	struct vol_stats st;
	int did, rc;

	memset(&st, 0, sizeof(st));
	d.fd = -1;
	rc = recover_open(dest, state, &d, &did, &st, err);
	if (d.fd != -1)
		close(d.fd);
	return rc == -1 ? -1 : did;
}

int
vol_partial(const char *dest, const char *state, struct vol_partial *p,
    struct as_err *err)
{
	struct vrec r;
	struct stat sb;
	char *rp, *jp;
	int rc;

	memset(p, 0, sizeof(*p));
	if (vol_paths(dest, state, &rp, &jp, err) == -1)
		return -1;
	rc = rec_read(rp, &r, err);
	if (rc == 1 && (r.pguid == 0 || (r.pbase != 0 && (lstat(jp, &sb) ==
	    -1 || (uint64_t)sb.st_size < r.pjlen))))
		rc = 0;
	if (rc == 1) {
		p->target_guid = r.pguid;
		p->base_guid = r.pbase;
		p->offset = r.poff;
	}
	free(rp);
	free(jp);
	return rc;
}

/*
 * Reopen the journal at j->path of an interrupted transfer of target
 * to append to it: keep the records below cut (a HOLE reaching past it
 * is shortened), drop the rest, and restore the running hash.
 */
static int
jrn_reopen(struct jrn *j, uint64_t target, uint64_t cut,
    struct as_err *err)
{
	struct jread r;
	uint64_t off, len, end;
	uint32_t nl;
	uint8_t type;
	int rc = -1, last;

	memset(&r, 0, sizeof(r));
	if ((j->fd = open(j->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ELOOP)
			return state_symlink(j->path, err);
		return as_err_sys(err, errno, "open '%s'", j->path);
	}
	if ((j->xs = XXH3_createState()) == NULL)
		return as_err_set(err, AS_E_INTERNAL, ENOMEM, "out of memory");
	XXH3_64bits_reset(j->xs);
	r.fd = j->fd;
	r.cap = VOL_OUT_FLUSH + JRN_REC;
	r.buf = xmalloc_io(r.cap);
	if (jr_need(&r, JRN_HDR) == -1 || memcmp(r.buf, JRN_MAGIC, 8) != 0 ||
	    le64(r.buf + 8) != target || (nl = le32(r.buf + 36)) > 255 ||
	    jr_need(&r, JRN_HDR + nl) == -1) {
		as_err_set(err, AS_E_MALFORMED, 0, "journal '%s' does not hold "
		    "the transfer to resume", j->path);
		goto out;
	}
	XXH3_64bits_update(j->xs, r.buf, JRN_HDR + nl);
	r.pos = JRN_HDR + nl;
	j->nrec = 0;
	for (last = 0; !last;) {
		if (jr_need(&r, JRN_REC) == -1)
			break;
		type = r.buf[r.pos];
		off = le64(r.buf + r.pos + 8);
		len = le64(r.buf + r.pos + 16);
		if ((type != JRN_DATA && type != JRN_ZERO) || off >= cut)
			break;
		if (type == JRN_ZERO && off + len > cut) {
			/* the HOLE that straddles the cut ends there */
			len = cut - off;
			put_le64(r.buf + r.pos + 16, len);
			if (io_pwrite_full(j->fd, r.buf + r.pos + 16, 8,
			    (off_t)(r.off + r.pos + 16)) == -1) {
				as_err_sys(err, errno, "write '%s'", j->path);
				goto out;
			}
			last = 1;
		}
		if (type == JRN_DATA && (off + len > cut || len > AS_DATA_MAX ||
		    jr_need(&r, JRN_REC + (size_t)len) == -1))
			break;
		XXH3_64bits_update(j->xs, r.buf + r.pos, JRN_REC +
		    (type == JRN_DATA ? (size_t)len : 0));
		r.pos += JRN_REC + (type == JRN_DATA ? (size_t)len : 0);
		j->nrec++;
	}
	end = r.off + r.pos;
	if (ftruncate(j->fd, (off_t)end) == -1 ||
	    lseek(j->fd, (off_t)end, SEEK_SET) == -1) {
		as_err_sys(err, errno, "truncate '%s'", j->path);
		goto out;
	}
	j->bytes = end;
	rc = 0;
out:
	free(r.buf);
	return rc;
}

/* ------------------------------------------------------------------ */
/* receiving */

struct rcv {
	const char	*dest;
	char		*rpath;
	char		*jpath;
	struct vdst	 d;
	struct jrn	 j;
	struct vrec	 held;		/* valid when have_held */
	int		 have_held;
	int		 flags;
	int		 full;
	int		 seen_entry;
	int		 created;	/* dest did not exist */
	int		 touched;	/* dest written (full stream) */
	uint64_t	 resume_guid;	/* asked to resume this transfer */
	uint64_t	 resume_off;	/* ... at this offset */
	int		 resuming;	/* and it can */
	int		 have_ckpt;	/* a checkpoint was made durable */
	uint64_t	 ckpt_at;	/* stream bytes at the last one */
	int64_t		 ckpt_ns;	/* ... and when */
	uint64_t	 covered;	/* every block below was received */
	uint64_t	 wb_from;	/* full: written back below this */
	uint64_t	 size;
	struct as_begin	 b;
	char		 name[256];
	struct vol_recv_result *res;
	int		 lc_failed;	/* vol_copy: the receiving side failed */
	int		 dry;		/* VOL_RECV_DRYRUN: check, write nothing */
	/*
	 * vol_copy: the sender's hashes of the blocks below covered, for a
	 * checkpoint (a copy the checkpoint's thread saves with pre_save)
	 */
	int		(*pre_ckpt)(void *arg, uint64_t covered,
			    struct catalog *copy);
	int		(*pre_save)(void *arg, const struct catalog *c,
			    struct as_err *err);
	void		*pre_arg;
	void		*save_arg;
	struct ckpt	*ck;		/* a checkpoint on its way to disk */
};

static int
on_begin(struct rcv *s, const struct as_begin *b, struct as_err *err)
{
	if (b->kind != AS_KIND_VOL)
		return as_err_set(err, AS_E_UNSUPPORTED, 0, "not a volume stream "
		    "(kind %u): receive it into a directory", b->kind);
	s->b = *b;
	snprintf(s->name, sizeof(s->name), "%s", b->name);
	s->full = b->base_guid == 0;
	if (s->resuming && (b->target_guid != s->held.pguid ||
	    b->base_guid != s->held.pbase ||
	    b->block_size != s->held.block_size))
		return as_err_set(err, AS_E_CONFLICT, 0, "stream of %016" PRIx64
		    " does not continue the interrupted transfer of %016"
		    PRIx64 " to '%s'", b->target_guid, s->held.pguid, s->dest);
	s->res->target_guid = b->target_guid;
	s->res->base_guid = b->base_guid;
	snprintf(s->res->name, sizeof(s->res->name), "%s", b->name);
	if (!s->full && !s->resuming) {
		if (!s->have_held || !s->held.complete || s->held.guid == 0)
			return as_err_set(err, AS_E_CONFLICT, 0, "incremental "
			    "stream from %016" PRIx64 " but '%s' holds no "
			    "snapshot", b->base_guid, s->dest);
		if (s->held.guid != b->base_guid)
			return as_err_set(err, AS_E_CONFLICT, 0, "stream base "
			    "%016" PRIx64 " does not match '%s', which holds "
			    "%016" PRIx64, b->base_guid, s->dest,
			    s->held.guid);
		if (s->held.block_size != 0 &&
		    s->held.block_size != b->block_size)
			return as_err_set(err, AS_E_CONFLICT, 0, "stream has "
			    "%u-byte blocks, '%s' was received with %u",
			    b->block_size, s->dest, s->held.block_size);
	}
	return 0;
}

/*
 * Would an image file of size bytes fit where dest is?  A nameless file
 * (O_TMPFILE) in dest's directory, resized and dropped, answers as the
 * real receive's ftruncate would, without writing anything anyone sees.
 */
static int
dry_probe_size(const char *dest, uint64_t size, struct as_err *err)
{
	const char *slash = strrchr(dest, '/');
	char *dir;
	int fd, e;

	dir = slash == NULL ? xstrdup(".") : slash == dest ? xstrdup("/") :
	    xstrndup(dest, (size_t)(slash - dest));
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	free(dir);
	if (fd == -1)
		return 0;	/* no O_TMPFILE here: the real receive tells */
	if (ftruncate(fd, (off_t)size) == -1) {
		e = errno;
		close(fd);
		return as_err_sys(err, e, "resize '%s' to %" PRIu64, dest,
		    size);
	}
	close(fd);
	return 0;
}

/*
 * A dry run's entry: the refusals a real receive would make before it
 * writes (a full stream over a volume that is not ours), nothing else.
 */
static int
dry_entry(struct rcv *s, const struct as_entry *e, struct as_err *err)
{
	if (s->full && !(s->flags & VOL_RECV_FORCE)) {
		if (s->have_held && s->held.complete && s->held.guid != 0)
			return as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds "
			    "snapshot %016" PRIx64 ": a full stream needs -F",
			    s->dest, s->held.guid);
		if (!s->have_held && s->d.fd != -1 && (s->d.is_blk ||
		    s->d.file_size > 0))
			return as_err_set(err, AS_E_CONFLICT, 0, "'%s' exists "
			    "and was not received by autosync: use -F to "
			    "overwrite it", s->dest);
	}
	if (!s->d.is_blk && dry_probe_size(s->dest, e->size, err) == -1)
		return -1;
	return 0;
}

static int
on_entry(struct rcv *s, const struct as_entry *e, struct as_err *err)
{
	struct jhdr h;
	struct vrec r;
	struct stat st;

	if (s->seen_entry)
		return as_err_set(err, AS_E_MALFORMED, 0, "volume stream "
		    "with more than one entry");
	s->seen_entry = 1;
	if (e->path_len != strlen(VOL_ENTRY_PATH) ||
	    memcmp(e->path, VOL_ENTRY_PATH, e->path_len) != 0 ||
	    (e->mode & S_IFMT) != S_IFREG || e->nxattr != 0 ||
	    e->op != (s->full ? AS_OP_CREATE : AS_OP_PATCH))
		return as_err_set(err, AS_E_MALFORMED, 0, "volume stream "
		    "entry must be a %s of '" VOL_ENTRY_PATH "'",
		    s->full ? "create" : "patch");
	s->size = e->size;
	s->res->size = e->size;
	if (s->d.is_blk && e->size > s->d.dev_size)
		return as_err_set(err, AS_E_NOSPACE, 0, "block device '%s' "
		    "holds %" PRIu64 " bytes, the volume needs %" PRIu64
		    ": nothing was written", s->dest, s->d.dev_size, e->size);
	if (s->dry)
		return dry_entry(s, e, err);
	if (s->resuming) {
		if (e->size != s->held.size && s->full)
			return as_err_set(err, AS_E_CONFLICT, 0, "the volume "
			    "changed size since the transfer to '%s' was cut",
			    s->dest);
		s->covered = s->resume_off;
		if (!s->full) {
			s->j.path = s->jpath;
			return jrn_reopen(&s->j, s->b.target_guid,
			    s->resume_off, err);
		}
		/* what the cut transfer wrote past the resume point goes */
		s->touched = 1;
		if (!s->d.is_blk && (dst_resize(&s->d, s->resume_off,
		    err) == -1 || dst_resize(&s->d, e->size, err) == -1))
			return -1;
		return 0;
	}
	if (!s->full) {
		memset(&h, 0, sizeof(h));
		h.target_guid = s->b.target_guid;
		h.base_guid = s->b.base_guid;
		h.size = e->size;
		h.block_size = s->b.block_size;
		snprintf(h.name, sizeof(h.name), "%s", s->name);
		s->j.path = s->jpath;
		return jrn_begin(&s->j, &h, err);
	}
	/* full: an existing volume must be ours (or -F) */
	if (!(s->flags & VOL_RECV_FORCE)) {
		if (s->have_held && s->held.complete && s->held.guid != 0)
			return as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds "
			    "snapshot %016" PRIx64 ": a full stream needs -F",
			    s->dest, s->held.guid);
		if (!s->have_held && (s->d.is_blk ||
		    (fstat(s->d.fd, &st) == 0 && st.st_size > 0)))
			return as_err_set(err, AS_E_CONFLICT, 0, "'%s' exists "
			    "and was not received by autosync: use -F to "
			    "overwrite it", s->dest);
	}
	memset(&r, 0, sizeof(r));
	r.size = e->size;
	r.block_size = s->b.block_size;
	snprintf(r.name, sizeof(r.name), "%s", s->name);
	s->touched = 1;
	if (rec_write(s->rpath, &r, err) == -1)
		return -1;
	/* an image file starts over sparse: holes need no writes */
	if (!s->d.is_blk && (dst_resize(&s->d, 0, err) == -1 ||
	    dst_resize(&s->d, e->size, err) == -1))
		return -1;
	return 0;
}

/*
 * A resume checkpoint on its way to disk.  Making it durable waits for
 * the disk (the volume's or journal's data up to the checkpoint, the
 * sender's catalog, the record), so a thread does that while the
 * transfer goes on: the copy does not stop at each checkpoint, and the
 * disk writes what was received while the next blocks are read.  Once
 * the thread is done, everything below r.poff was durable before the
 * record said so (the sync was called after those writes returned).
 */
struct ckpt {
	pthread_t	 tid;
	int		 rc;
	struct as_err	 err;
	int		 fd;		/* the volume, or the journal */
	int		 full;		/* fdatasync fd, else fsync */
	const char	*what;		/* fd's path, for messages */
	const char	*rpath;
	struct vrec	 r;		/* the record to write */
	struct catalog	 cat;		/* vol_copy: the sender's hashes */
	int		 have_cat;
	int		(*save)(void *, const struct catalog *,
			    struct as_err *);
	void		*save_arg;
};

static void *
ckpt_main(void *arg)
{
	struct ckpt *c = arg;

	c->rc = -1;
	if (c->have_cat && c->save(c->save_arg, &c->cat, &c->err) == -1)
		goto out;
	if ((c->full ? fdatasync(c->fd) : fsync(c->fd)) == -1) {
		as_err_sys(&c->err, errno, "sync '%s'", c->what);
		goto out;
	}
	if (rec_write(c->rpath, &c->r, &c->err) == -1)
		goto out;
	c->rc = 0;
out:
	return NULL;
}

/* Wait for the checkpoint in flight, if any; its result (err). */
static int
rcv_ckpt_join(struct rcv *s, struct as_err *err)
{
	struct ckpt *c = s->ck;
	int rc;

	if (c == NULL)
		return 0;
	pthread_join(c->tid, NULL);
	rc = c->rc;
	if (rc == -1)
		*err = c->err;
	else
		s->have_ckpt = 1;
	catalog_release(&c->cat);
	free(c);
	s->ck = NULL;
	return rc;
}

/*
 * Every VOL_CKPT_RECV bytes of stream and VOL_CKPT_RECV_NS: make what
 * was received so far durable and say so in the record, so that a cut
 * transfer resumes at s->covered: an incremental's journal is flushed
 * and fsync'ed (its length recorded), a full stream's volume
 * fdatasync'ed; in a thread (struct ckpt).  One is in flight at a time:
 * the next one waits for it, so that the record is never more than two
 * intervals behind what was received (the one in flight and the one
 * being filled): what a cut can lose.
 */
static int
rcv_maybe_checkpoint(struct rcv *s, struct as_err *err)
{
	struct ckpt *c;
	int e;

	if (s->res->st.stream_bytes - s->ckpt_at < VOL_CKPT_RECV ||
	    mono_ns() - s->ckpt_ns < ckpt_floor(VOL_CKPT_RECV_NS))
		return 0;
	/* (waits only when the disk is more than an interval behind) */
	if (rcv_ckpt_join(s, err) == -1)
		return -1;
	c = xcalloc(1, sizeof(*c));
	catalog_init(&c->cat);
	if (s->pre_ckpt != NULL) {
		if (s->pre_ckpt(s->pre_arg, s->covered, &c->cat) == -1) {
			free(c);
			return as_err_set(err, AS_E_INTERNAL, 0, "checkpoint "
			    "without the sender's catalog");
		}
		c->have_cat = 1;
		c->save = s->pre_save;
		c->save_arg = s->save_arg;
	}
	if (s->full) {
		c->fd = s->d.fd;
		c->full = 1;
		c->what = s->dest;
		c->r.size = s->size;
		c->r.block_size = s->b.block_size;
		snprintf(c->r.name, sizeof(c->r.name), "%s", s->name);
	} else {
		if (jrn_flush(&s->j, err) == -1) {
			catalog_release(&c->cat);
			free(c);
			return -1;
		}
		c->fd = s->j.fd;
		c->what = s->j.path;
		c->r = s->held;
		c->r.pjlen = s->j.bytes;
	}
	c->r.pguid = s->b.target_guid;
	c->r.pbase = s->b.base_guid;
	c->r.poff = s->covered;
	c->rpath = s->rpath;
	if ((e = pthread_create(&c->tid, NULL, ckpt_main, c)) != 0) {
		catalog_release(&c->cat);
		free(c);
		return as_err_sys(err, e, "start a checkpoint");
	}
	s->ck = c;
	s->ckpt_at = s->res->st.stream_bytes;
	s->ckpt_ns = mono_ns();
	return 0;
}

static int
on_record(struct rcv *s, const struct as_rec *rec, struct as_err *err)
{
	int e;

	switch (rec->type) {
	case AS_REC_BEGIN:
		return on_begin(s, &rec->u.begin, err);
	case AS_REC_ENTRY:
		return on_entry(s, &rec->u.entry, err);
	case AS_REC_XATTR:
		return as_err_set(err, AS_E_MALFORMED, 0, "xattr record in a "
		    "volume stream");
	case AS_REC_DATA:
		if (!s->seen_entry || rec->u.data.offset < s->covered)
			return as_err_set(err, AS_E_MALFORMED, 0, "volume data "
			    "out of order");
		s->res->st.data_bytes += rec->u.data.len;
		if (s->dry) {
			s->covered = rec->u.data.offset + rec->u.data.len;
			return 0;
		}
		if (!s->full) {
			if (jrn_add(&s->j, JRN_DATA, rec->u.data.offset,
			    rec->u.data.len, rec->u.data.data, err) == -1)
				return -1;
		} else if ((e = io_fault("vol_write")) != 0 ||
		    (io_pwrite_full(s->d.fd, rec->u.data.data,
		    rec->u.data.len, (off_t)rec->u.data.offset) == -1 &&
		    (e = errno) != 0))
			return as_err_sys(err, e, "write '%s'", s->dest);
		s->covered = rec->u.data.offset + rec->u.data.len;
		if (s->full && s->covered - s->wb_from >= VOL_WB_CHUNK) {
			(void)sync_file_range(s->d.fd, (off_t)s->wb_from,
			    (off_t)(s->covered - s->wb_from),
			    SYNC_FILE_RANGE_WRITE);
			s->wb_from = s->covered;
		}
		return rcv_maybe_checkpoint(s, err);
	case AS_REC_HOLE:
		if (!s->seen_entry || rec->u.hole.offset < s->covered)
			return as_err_set(err, AS_E_MALFORMED, 0, "volume hole "
			    "out of order");
		s->res->st.hole_bytes += rec->u.hole.len;
		if (s->dry) {
			s->covered = rec->u.hole.offset + rec->u.hole.len;
			return 0;
		}
		if (!s->full) {
			if (jrn_add(&s->j, JRN_ZERO, rec->u.hole.offset,
			    rec->u.hole.len, NULL, err) == -1)
				return -1;
		} else if (s->d.is_blk && dst_zero(&s->d, rec->u.hole.offset,
		    rec->u.hole.len, err) == -1)
			return -1;
		s->covered = rec->u.hole.offset + rec->u.hole.len;
		return rcv_maybe_checkpoint(s, err);
	case AS_REC_END:
		if (!s->seen_entry)
			return as_err_set(err, AS_E_MALFORMED, 0, "volume "
			    "stream without its entry");
		return 0;
	}
	return 0;
}

static int
read_stream(struct rcv *s, int in_fd, struct as_err *err)
{
	struct stream_dec d;
	struct as_rec rec;
	uint8_t *buf;
	size_t off, used;
	ssize_t n;
	int x, rc = -1;

	stream_dec_init(&d);
	buf = xmalloc_io(VOL_IN_BUF);
	for (;;) {
		n = read(in_fd, buf, VOL_IN_BUF);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			as_err_sys(err, errno, "read the stream");
			goto out;
		}
		if (n == 0)
			break;
		s->res->st.stream_bytes += (uint64_t)n;
		for (off = 0; off < (size_t)n; off += used) {
			x = stream_dec_feed(&d, buf + off, (size_t)n - off,
			    &used, &rec, err);
			if (x == -1)
				goto out;
			if (x == 1 && on_record(s, &rec, err) == -1)
				goto out;
			if (x == 0 && used == 0)
				break;
		}
	}
	rc = stream_dec_finish(&d, err);
out:
	stream_dec_release(&d);
	free(buf);
	return rc;
}

int
vol_receive(const char *dest, const char *state, int in_fd, int flags,
    struct vol_recv_result *res, struct as_err *err)
{
	return vol_receive_resume(dest, state, in_fd, flags, 0, 0, res, err);
}

/*
 * A dry run's set-up: what the destination holds, read only.  Nothing is
 * created, recovered, locked or forgotten; a volume that does not exist
 * yet holds nothing; a crash to recover is CONFLICT (a real receive
 * would settle it first, and its outcome decides what the stream needs).
 */
static int
dry_open(struct rcv *s, const char *dest, uint64_t resume_guid,
    struct as_err *err)
{
	struct stat sb;
	int x;

	s->dry = 1;
	if (resume_guid != 0)
		return as_err_set(err, AS_E_USAGE, 0, "a dry run does not "
		    "resume");
	if (ownwalk_check(dest, "destination", err) == -1)
		return -1;
	if (lstat(dest, &sb) == -1) {
		if (errno != ENOENT)
			return as_err_sys(err, errno, "'%s'", dest);
		return 0;
	}
	if (S_ISLNK(sb.st_mode))
		return as_err_set(err, AS_E_UNSAFE_PATH, ELOOP, "destination "
		    "'%s' is a symlink", dest);
	if (!S_ISREG(sb.st_mode) && !S_ISBLK(sb.st_mode))
		return as_err_set(err, AS_E_USAGE, 0, "'%s' is neither a "
		    "block device nor a regular file", dest);
	s->d.fd = open(dest, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (s->d.fd == -1)
		return as_err_sys(err, errno, "open '%s'", dest);
	s->d.path = dest;
	s->d.is_blk = S_ISBLK(sb.st_mode);
	s->d.file_size = (uint64_t)sb.st_size;
	if (s->d.is_blk && ioctl(s->d.fd, BLKGETSIZE64, &s->d.dev_size) == -1)
		return as_err_sys(err, errno, "size of '%s'", dest);
	if ((x = rec_read(s->rpath, &s->held, err)) == -1)
		return -1;
	s->have_held = x;
	/* a journal without a checkpoint naming it: a crash mid-apply */
	if (lstat(s->jpath, &sb) == 0 && !(x == 1 && s->held.pguid != 0))
		return as_err_set(err, AS_E_CONFLICT, 0, "'%s' has an "
		    "unfinished receive; recover it first", dest);
	return 0;
}

/* The receiver's set-up: recovery, the record, resume; before any record. */
static int
rcv_open(struct rcv *s, const char *dest, const char *state, int flags,
    uint64_t resume_guid, uint64_t resume_off, struct vol_recv_result *res,
    struct as_err *err)
{
	struct stat sb;
	int did, x;

	memset(res, 0, sizeof(*res));
	memset(s, 0, sizeof(*s));
	s->ckpt_ns = mono_ns();
	s->dest = dest;
	s->flags = flags;
	s->res = res;
	s->d.fd = -1;
	s->j.fd = -1;
	if (vol_paths(dest, state, &s->rpath, &s->jpath, err) == -1)
		return -1;
	if (flags & VOL_RECV_DRYRUN)
		return dry_open(s, dest, resume_guid, err);
	if (stat(dest, &sb) == -1) {
		if (errno != ENOENT)
			return as_err_sys(err, errno, "'%s'", dest);
		s->created = 1;
	}
	if (dst_open(&s->d, dest, 1, err) == -1)
		return -1;
	if (recover_open(dest, state, &s->d, &did, &res->st, err) == -1)
		return -1;
	res->recovered = did;
	memset(&res->st, 0, sizeof(res->st));
	if ((x = rec_read(s->rpath, &s->held, err)) == -1)
		return -1;
	s->have_held = x;
	s->resume_guid = resume_guid;
	s->resume_off = resume_off;
	if (x == 1 && s->held.pguid != 0) {
		if (resume_guid != 0 && resume_guid == s->held.pguid &&
		    resume_off <= s->held.poff && s->held.block_size != 0 &&
		    resume_off % s->held.block_size == 0 &&
		    (s->held.pbase == 0 ||
		    lstat(s->jpath, &sb) == 0)) {
			s->resuming = 1;
			res->resumed = resume_off;
		} else {
			/* not resumed: forget it */
			if (s->held.pbase != 0 && unlink(s->jpath) == -1 &&
			    errno != ENOENT)
				return as_err_sys(err, errno, "remove '%s'",
				    s->jpath);
			s->held.pguid = s->held.pbase = 0;
			s->held.poff = s->held.pjlen = 0;
			if (rec_write(s->rpath, &s->held, err) == -1)
				return -1;
		}
	}
	if (resume_guid != 0 && !s->resuming)
		return as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds no "
		    "interrupted transfer of %016" PRIx64 " to resume at %"
		    PRIu64, dest, resume_guid, resume_off);
	return 0;
}

/* After END: make it durable and record the snapshot (full), or seal
 * and apply the journal (incremental). */
static int
rcv_commit(struct rcv *s, struct as_err *err)
{
	struct vol_recv_result *res = s->res;
	struct vrec r;

	if (!s->seen_entry)
		return as_err_set(err, AS_E_MALFORMED, 0, "volume stream "
		    "without its entry");
	if (s->dry)
		return 0;
	if (rcv_ckpt_join(s, err) == -1)
		return -1;
	if (s->full) {
		if (io_fsync(s->d.fd, s->dest, err) == -1)
			return -1;
		memset(&r, 0, sizeof(r));
		r.guid = s->b.target_guid;
		r.size = s->size;
		r.block_size = s->b.block_size;
		r.complete = 1;
		snprintf(r.name, sizeof(r.name), "%s", s->name);
		return rec_write(s->rpath, &r, err);
	}
	res->st.journal_bytes = s->j.bytes;
	if (jrn_commit(&s->j, err) == -1)
		return -1;
	jrn_release(&s->j);
	if (io_fault("vol-commit") != 0)
		return as_err_set(err, AS_E_IO, EIO, "injected fault");
	res->st.data_bytes = res->st.hole_bytes = 0;
	if (jrn_apply(s->jpath, s->rpath, &s->d, &res->st, err) == -1)
		return -1;
	res->st.journal_bytes = s->j.bytes;
	return 0;
}

/* Release what rcv_open took; rc -1: the receive failed. */
static int
rcv_close(struct rcv *s, int rc)
{
	struct as_err e;

	(void)rcv_ckpt_join(s, &e);
	if (rc == -1 && s->j.fd != -1 && !s->have_ckpt && !s->resuming) {
		/* never sealed, nothing to resume from: throw it away */
		jrn_release(&s->j);
		(void)unlink(s->jpath);
	}
	jrn_release(&s->j);
	if (rc == -1 && s->created && !s->touched && s->d.fd != -1)
		(void)unlink(s->dest);	/* nothing of ours in it */
	if (s->d.fd != -1)
		close(s->d.fd);
	free(s->rpath);
	free(s->jpath);
	return rc;
}

int
vol_receive_resume(const char *dest, const char *state, int in_fd,
    int flags, uint64_t resume_guid, uint64_t resume_off,
    struct vol_recv_result *res, struct as_err *err)
{
	struct rcv s;
	int rc = -1;

	if (rcv_open(&s, dest, state, flags, resume_guid, resume_off, res,
	    err) == 0 && read_stream(&s, in_fd, err) == 0 &&
	    rcv_commit(&s, err) == 0)
		rc = 0;
	return rcv_close(&s, rc);
}

static void
lc_set_ckpt(struct rcv *r, int (*fn)(void *, uint64_t, struct catalog *),
    int (*save)(void *, const struct catalog *, struct as_err *), void *arg,
    void *save_arg)
{
	r->pre_ckpt = fn;
	r->pre_save = save;
	r->pre_arg = arg;
	r->save_arg = save_arg;
}

/* The checkpoint in flight, as a failure of the receiving side. */
static int
lc_ckpt_join(struct rcv *r, struct as_err *err)
{
	if (rcv_ckpt_join(r, err) == -1) {
		r->lc_failed = 1;
		return -1;
	}
	return 0;
}

static int
lc_record(struct rcv *r, const struct as_rec *rec, uint64_t bytes,
    struct as_err *err)
{
	r->res->st.stream_bytes += bytes;
	if (on_record(r, rec, err) == -1) {
		r->lc_failed = 1;
		return -1;
	}
	return 0;
}

int
vol_copy(const char *src, struct catalog *target,
    const struct catalog *base, const char *dest, const char *state,
    int rflags, uint64_t resume_guid, uint64_t resume_off,
    const struct vol_send_opts *o, struct vol_stats *sst,
    struct vol_recv_result *res, struct as_err *err)
{
	struct rcv s;
	int rc = -1;

	if (rcv_open(&s, dest, state, rflags, resume_guid, resume_off, res,
	    err) == -1) {
		as_err_prefix(err, "receive '%s'", dest);
		return rcv_close(&s, -1);
	}
	if (vol_send_to(src, target, base, -1, &s, o, sst, err) == -1)
		as_err_prefix(err, s.lc_failed ? "receive '%s'" : "send '%s'",
		    s.lc_failed ? dest : src);
	else if (rcv_commit(&s, err) == -1)
		as_err_prefix(err, "receive '%s'", dest);
	else
		rc = 0;
	return rcv_close(&s, rc);
}
