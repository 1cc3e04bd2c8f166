/*
 * t_vol.c - the volume engine over real image files: the catalog of a
 * scan, full and incremental streams (which blocks travel, zeros as
 * holes, resize), receive into a sparse image, validation of the entry,
 * base checks, journal recovery, resuming a cut transfer, and the local
 * copy in one process (vol_copy).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "base/buf.h"
#include "driver/vol.h"
#include "format/stream.h"

#define BS	65536u
#define NBLK	64u		/* 4 MiB images */

static char	tmpl[64];
static char	src[128], dst[128], stm[128];
static uint64_t	next_guid = 5000;

static int
setup(void **state)
{
	snprintf(tmpl, sizeof(tmpl), "/tmp/t_vol.XXXXXX");
	if (mkdtemp(tmpl) == NULL)
		return -1;
	snprintf(src, sizeof(src), "%s/src.img", tmpl);
	snprintf(dst, sizeof(dst), "%s/dst.img", tmpl);
	snprintf(stm, sizeof(stm), "%s/stream", tmpl);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	return system(cmd) == 0 ? 0 : -1;
}

/* Fill block i of path with a pattern from seed (0: zeros). */
static void
put_block(const char *path, uint64_t i, unsigned seed)
{
	uint8_t *b = malloc(BS);
	uint32_t x = seed * 2654435761u + 1;
	size_t k;
	int fd;

	assert_non_null(b);
	for (k = 0; k < BS; k++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[k] = seed == 0 ? 0 : (uint8_t)x;
	}
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, BS, (off_t)(i * BS)), (ssize_t)BS);
	close(fd);
	free(b);
}

static void
make_image(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static void
sha256(const char *path, uint8_t out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t buf[65536];
	unsigned len;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(c, buf, (size_t)n);
	EVP_DigestFinal_ex(c, out, &len);
	EVP_MD_CTX_free(c);
	close(fd);
}

static void
assert_same(const char *a, const char *b)
{
	uint8_t ha[32], hb[32];

	sha256(a, ha);
	sha256(b, hb);
	assert_memory_equal(ha, hb, 32);
}

/* Live-send src relative to base (may be NULL) into the stream file. */
static void
send_live(struct catalog *target, const struct catalog *base,
    struct vol_stats *st)
{
	struct vol_send_opts o;
	struct as_err err;
	int fd;

	memset(&o, 0, sizeof(o));
	memset(st, 0, sizeof(*st));
	o.flags = VOL_SEND_LIVE;
	o.block_size = BS;
	catalog_init(target);
	target->hdr.guid = next_guid++;
	target->hdr.base_guid = base != NULL ? base->hdr.guid : 0;
	snprintf(target->hdr.name, sizeof(target->hdr.name), "s%llu",
	    (unsigned long long)target->hdr.guid);
	fd = open(stm, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	if (vol_send(src, target, base, fd, &o, st, &err) == -1)
		fail_msg("vol_send: %s", err.msg);
	close(fd);
}

static int
recv_stream(int flags, struct vol_recv_result *res, struct as_err *err)
{
	int fd = open(stm, O_RDONLY), rc;

	assert_true(fd >= 0);
	rc = vol_receive(dst, tmpl, fd, flags, res, err);
	close(fd);
	return rc;
}

static void
recv_ok(struct vol_recv_result *res)
{
	struct as_err err;

	if (recv_stream(0, res, &err) == -1)
		fail_msg("vol_receive: %s", err.msg);
}

/* Count DATA and HOLE bytes of the stream file (validated). */
static void
count_stream(uint64_t *data, uint64_t *hole, int *op)
{
	struct stream_dec d;
	struct as_rec rec;
	struct as_err err;
	uint8_t buf[65536];
	size_t off, used;
	ssize_t n;
	int fd = open(stm, O_RDONLY), x;

	*data = *hole = 0;
	stream_dec_init(&d);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (off = 0; off < (size_t)n; off += used) {
			x = stream_dec_feed(&d, buf + off, (size_t)n - off,
			    &used, &rec, &err);
			if (x == -1)
				fail_msg("stream: %s", err.msg);
			if (x == 1 && rec.type == AS_REC_DATA)
				*data += rec.u.data.len;
			if (x == 1 && rec.type == AS_REC_HOLE)
				*hole += rec.u.hole.len;
			if (x == 1 && rec.type == AS_REC_ENTRY)
				*op = rec.u.entry.op;
			if (x == 0 && used == 0)
				break;
		}
	}
	assert_int_equal(stream_dec_finish(&d, &err), 0);
	stream_dec_release(&d);
	close(fd);
}

static void
test_scan(void **state)
{
	struct catalog c;
	struct vol_stats st;
	struct as_err err;
	const uint8_t *h;
	uint8_t zh[CAT_HASH_LEN];

	make_image(src, NBLK * BS + 1000);
	put_block(src, 3, 1);
	put_block(src, 40, 2);
	put_block(src, 41, 3);
	memset(&st, 0, sizeof(st));
	catalog_init(&c);
	if (vol_scan(src, BS, &c, &st, &err) == -1)
		fail_msg("vol_scan: %s", err.msg);
	assert_int_equal(c.hdr.kind, AS_KIND_VOL);
	assert_int_equal(c.n, 1);
	assert_string_equal(catalog_path(&c, &c.ents[0]), VOL_ENTRY_PATH);
	assert_int_equal(c.ents[0].size, NBLK * BS + 1000);
	assert_int_equal(c.ents[0].nblocks, NBLK + 1);
	/* the holes of the image are not read, only its 3 data blocks */
	assert_int_equal(st.bytes_read, 3 * BS);
	h = (const uint8_t *)c.hashes.data + CAT_HASH_AT(&c.ents[0]);
	/* zero blocks all hash alike; written ones differ from them */
	memcpy(zh, h, CAT_HASH_LEN);
	assert_memory_equal(h + 10 * CAT_HASH_LEN, zh, CAT_HASH_LEN);
	assert_memory_not_equal(h + 3 * CAT_HASH_LEN, zh, CAT_HASH_LEN);
	assert_memory_not_equal(h + 40 * CAT_HASH_LEN, h + 41 * CAT_HASH_LEN,
	    CAT_HASH_LEN);
	catalog_release(&c);
}

static void
test_full_incremental(void **state)
{
	struct catalog c1, c2, c3;
	struct vol_stats st;
	struct vol_recv_result res;
	struct stat sb;
	uint64_t data, hole, held;
	int op = 0;
	struct as_err err;

	make_image(src, NBLK * BS);
	put_block(src, 1, 1);
	put_block(src, 20, 2);
	put_block(src, 21, 3);
	put_block(src, 63, 4);
	send_live(&c1, NULL, &st);
	count_stream(&data, &hole, &op);
	assert_int_equal(op, AS_OP_CREATE);
	assert_int_equal(data, 4 * BS);
	assert_int_equal(hole, (NBLK - 4) * BS);
	assert_int_equal(st.blocks_sent, 4);
	recv_ok(&res);
	assert_int_equal(res.target_guid, c1.hdr.guid);
	assert_same(src, dst);
	/* the destination is sparse: ~4 blocks allocated */
	assert_int_equal(stat(dst, &sb), 0);
	assert_true((uint64_t)sb.st_blocks * 512 <= 6 * BS);
	assert_int_equal(vol_held(dst, tmpl, &held, NULL, &err), 1);
	assert_int_equal(held, c1.hdr.guid);

	/* change 3 blocks, zero one that had data */
	put_block(src, 5, 7);
	put_block(src, 20, 8);
	put_block(src, 50, 9);
	put_block(src, 63, 0);
	send_live(&c2, &c1, &st);
	count_stream(&data, &hole, &op);
	assert_int_equal(op, AS_OP_PATCH);
	assert_int_equal(data, 3 * BS);
	assert_int_equal(hole, BS);
	recv_ok(&res);
	assert_int_equal(res.st.data_bytes, 3 * BS);
	assert_int_equal(res.st.hole_bytes, BS);
	assert_same(src, dst);
	assert_int_equal(stat(dst, &sb), 0);
	assert_true((uint64_t)sb.st_blocks * 512 <= 7 * BS);

	/* nothing changed: no data */
	send_live(&c3, &c2, &st);
	count_stream(&data, &hole, &op);
	assert_int_equal(data, 0);
	assert_int_equal(hole, 0);
	recv_ok(&res);
	assert_same(src, dst);
	catalog_release(&c1);
	catalog_release(&c2);
	catalog_release(&c3);
}

static void
test_resize_and_snapshot_send(void **state)
{
	struct catalog c1, c2, c3, snap;
	struct vol_stats st;
	struct vol_recv_result res;
	struct vol_send_opts o;
	struct as_err err;
	uint64_t data, hole;
	int op, fd;

	make_image(src, NBLK * BS);
	put_block(src, 2, 1);
	send_live(&c1, NULL, &st);
	recv_ok(&res);
	/* grow by 16 blocks, write into the new part */
	make_image(src, (NBLK + 16) * BS);	/* O_TRUNC: start over */
	put_block(src, 2, 1);
	put_block(src, NBLK + 3, 5);
	send_live(&c2, &c1, &st);
	count_stream(&data, &hole, &op);
	assert_int_equal(data, BS);
	recv_ok(&res);
	assert_int_equal(res.size, (NBLK + 16) * BS);
	assert_same(src, dst);
	/* shrink to a partial last block */
	assert_int_equal(truncate(src, 10 * BS + 123), 0);
	send_live(&c3, &c2, &st);
	recv_ok(&res);
	assert_same(src, dst);

	/* snapshot, then send: reads only the changed blocks */
	put_block(src, 4, 6);
	catalog_init(&snap);
	memset(&st, 0, sizeof(st));
	assert_int_equal(vol_scan(src, BS, &snap, &st, &err), 0);
	snap.hdr.guid = next_guid++;
	snprintf(snap.hdr.name, sizeof(snap.hdr.name), "snap");
	memset(&o, 0, sizeof(o));
	memset(&st, 0, sizeof(st));
	fd = open(stm, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(vol_send(src, &snap, &c3, fd, &o, &st, &err), 0);
	close(fd);
	assert_int_equal(st.bytes_read, BS);
	recv_ok(&res);
	assert_same(src, dst);
	/* the volume changed since the snapshot: refused */
	put_block(src, 4, 9);
	fd = open(stm, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(vol_send(src, &snap, &c3, fd, &o, &st, &err), -1);
	close(fd);
	assert_int_equal(err.code, AS_E_CONFLICT);
	catalog_release(&c1);
	catalog_release(&c2);
	catalog_release(&c3);
	catalog_release(&snap);
}

static void
test_refusals(void **state)
{
	struct catalog c1, c2;
	struct vol_stats st;
	struct vol_recv_result res;
	struct as_err err;
	struct stream_enc e;
	struct as_begin b;
	struct as_entry en;
	struct buf out;
	int fd;

	make_image(src, NBLK * BS);
	put_block(src, 9, 1);
	/* an existing image that autosync did not fill needs -F */
	make_image(dst, BS);
	send_live(&c1, NULL, &st);
	assert_int_equal(recv_stream(0, &res, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_int_equal(recv_stream(VOL_RECV_FORCE, &res, &err), 0);
	assert_same(src, dst);
	/* an incremental from an unknown base */
	c1.hdr.guid = 1;
	send_live(&c2, &c1, &st);
	assert_int_equal(recv_stream(0, &res, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	/* a stream whose entry is not "volume" */
	buf_init(&out);
	stream_enc_init(&e, &out);
	memset(&b, 0, sizeof(b));
	b.version = AS_STREAM_VERSION;
	b.kind = AS_KIND_VOL;
	b.block_size = BS;
	b.target_guid = 77;
	b.name = "x";
	b.name_len = 1;
	b.source = "";
	stream_enc_begin(&e, &b);
	memset(&en, 0, sizeof(en));
	en.op = AS_OP_CREATE;
	en.mode = S_IFREG | 0600;
	en.size = BS;
	en.path = "etc";
	en.path_len = 3;
	en.aux = "";
	stream_enc_entry(&e, &en);
	stream_enc_end(&e);
	fd = open(stm, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(write(fd, out.data, out.len), (ssize_t)out.len);
	close(fd);
	assert_int_equal(recv_stream(VOL_RECV_FORCE, &res, &err), -1);
	assert_int_equal(err.code, AS_E_MALFORMED);
	buf_release(&out);
	catalog_release(&c1);
	catalog_release(&c2);
}

/* A journal without its commit record is discarded, a sealed one replayed. */
static void
test_recover(void **state)
{
	struct catalog c1;
	struct vol_stats st;
	struct vol_recv_result res;
	struct as_err err;
	char jp[160];
	uint64_t held;
	int fd;

	make_image(src, NBLK * BS);
	put_block(src, 9, 1);
	send_live(&c1, NULL, &st);
	recv_ok(&res);
	snprintf(jp, sizeof(jp), "%s.autosync-journal", dst);
	fd = open(jp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(write(fd, "ASVOLJ01 and then nothing", 25), 25);
	close(fd);
	assert_int_equal(vol_recover(dst, tmpl, &err), 1);
	assert_int_equal(access(jp, F_OK), -1);
	assert_same(src, dst);
	assert_int_equal(vol_recover(dst, tmpl, &err), 0);
	assert_int_equal(vol_held(dst, tmpl, &held, NULL, &err), 1);
	assert_int_equal(held, c1.hdr.guid);
	catalog_release(&c1);
}

/*
 * A cut incremental resumes: the receiver keeps its journal up to its
 * last checkpoint, and a resume offset inside a run of zero blocks (one
 * merged HOLE record) shortens that record; the continued stream then
 * gives exactly the source.
 */
static void
test_resume_cut_hole(void **state)
{
	struct catalog c1, c2;
	struct vol_stats st;
	struct vol_recv_result res;
	struct vol_partial p;
	struct vol_send_opts o;
	struct as_err err;
	struct stat sb;
	char cut[160];
	uint64_t i, held, n = 1000, k = 400;
	int fd, in;

	/* checkpoints by stream bytes alone: this stream is read at once */
	setenv("AUTOSYNC_VOL_CHECKPOINT_MS", "0", 1);
	make_image(src, n * BS);
	for (i = 0; i < n; i++)
		put_block(src, i, 1 + (unsigned)(i % 7));
	send_live(&c1, NULL, &st);
	recv_ok(&res);
	/* new data in 0..299 and 500..899, zeros in 300..499 */
	for (i = 0; i < 900; i++)
		put_block(src, i, i >= 300 && i < 500 ? 0 : 100 + (unsigned)i);
	send_live(&c2, &c1, &st);
	/* the receiver gets the first 36 MiB of the stream only */
	snprintf(cut, sizeof(cut), "%s/cut", tmpl);
	assert_int_equal(truncate(stm, 36u << 20) == 0 ? 0 : -1, 0);
	in = open(stm, O_RDONLY);
	assert_true(in >= 0);
	assert_int_equal(vol_receive(dst, tmpl, in, 0, &res, &err), -1);
	close(in);
	/* the old snapshot is intact, the cut transfer resumable */
	assert_int_equal(vol_recover(dst, tmpl, &err), 0);
	assert_int_equal(vol_held(dst, tmpl, &held, NULL, &err), 1);
	assert_int_equal(held, c1.hdr.guid);
	assert_int_equal(vol_partial(dst, tmpl, &p, &err), 1);
	assert_int_equal(p.target_guid, c2.hdr.guid);
	assert_int_equal(p.base_guid, c1.hdr.guid);
	assert_true(p.offset >= 520 * BS);
	/* resume at block 400, inside the zeros */
	memset(&o, 0, sizeof(o));
	o.flags = VOL_SEND_LIVE;
	o.resume_block = k;
	c2.ents[0].ino = k;
	memset(&st, 0, sizeof(st));
	fd = open(stm, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	if (vol_send(src, &c2, &c1, fd, &o, &st, &err) == -1)
		fail_msg("vol_send: %s", err.msg);
	close(fd);
	assert_int_equal(c2.ents[0].ino, 0);
	assert_int_equal(st.data_bytes, 400 * BS);
	in = open(stm, O_RDONLY);
	assert_true(in >= 0);
	if (vol_receive_resume(dst, tmpl, in, 0, c2.hdr.guid, k * BS, &res,
	    &err) == -1)
		fail_msg("resume: %s", err.msg);
	close(in);
	assert_int_equal(res.resumed, k * BS);
	assert_same(src, dst);
	assert_int_equal(vol_held(dst, tmpl, &held, NULL, &err), 1);
	assert_int_equal(held, c2.hdr.guid);
	assert_int_equal(vol_partial(dst, tmpl, &p, &err), 0);
	snprintf(cut, sizeof(cut), "%s.autosync-journal", dst);
	assert_int_equal(stat(cut, &sb), -1);
	catalog_release(&c1);
	catalog_release(&c2);
}

/* vol_copy's checkpoint hook: what the pending catalog covered. */
struct ckpt_seen {
	struct catalog	*target;
	int		 calls;
	uint64_t	 max_ino;
	uint8_t		*hashes;	/* the newest checkpoint's prefix */
};

/* (called from the checkpoint's thread, with a copy of target) */
static int
copy_ckpt(void *arg, const struct catalog *c, struct as_err *err)
{
	struct ckpt_seen *cs = arg;
	uint64_t nb = c->ents[0].ino;

	cs->calls++;
	if (c == cs->target || c->n != 1 || nb > c->ents[0].nblocks)
		return as_err_set(err, AS_E_INTERNAL, 0, "not a prefix copy");
	if (nb > cs->max_ino) {
		cs->max_ino = nb;
		free(cs->hashes);
		cs->hashes = malloc(nb * CAT_HASH_LEN);
		memcpy(cs->hashes, (const uint8_t *)c->hashes.data +
		    CAT_HASH_AT(&c->ents[0]), nb * CAT_HASH_LEN);
	}
	return 0;
}

/* Local copy in one process: vol_copy (base may be NULL). */
static int
copy_live(struct catalog *target, const struct catalog *base, int flags,
    struct vol_stats *st, struct vol_recv_result *res,
    struct ckpt_seen *cs, struct as_err *err)
{
	struct vol_send_opts o;

	memset(&o, 0, sizeof(o));
	memset(st, 0, sizeof(*st));
	o.flags = VOL_SEND_LIVE;
	o.block_size = BS;
	if (cs != NULL) {
		cs->target = target;
		o.checkpoint = copy_ckpt;
		o.arg = cs;
	}
	catalog_init(target);
	target->hdr.guid = next_guid++;
	target->hdr.base_guid = base != NULL ? base->hdr.guid : 0;
	snprintf(target->hdr.name, sizeof(target->hdr.name), "s%llu",
	    (unsigned long long)target->hdr.guid);
	return vol_copy(src, target, base, dst, tmpl, flags, 0, 0, &o, st,
	    res, err);
}

static void
test_copy(void **state)
{
	struct catalog c1, c2, c3, scan;
	struct vol_stats st, sst;
	struct vol_recv_result res;
	struct ckpt_seen cs;
	struct as_err err;
	struct stat sb;
	uint64_t held, i;

	/* 24 MiB: enough stream for checkpoints (floor 0 below) */
	make_image(src, 6 * NBLK * BS);
	for (i = 10; i < 6 * NBLK - 10; i++)
		if (i % 7 != 0)
			put_block(src, i, (unsigned)i + 1);
	assert_int_equal(setenv("AUTOSYNC_VOL_CHECKPOINT_MS", "0", 1), 0);
	memset(&cs, 0, sizeof(cs));
	if (copy_live(&c1, NULL, 0, &st, &res, &cs, &err) == -1)
		fail_msg("vol_copy: %s", err.msg);
	assert_int_equal(unsetenv("AUTOSYNC_VOL_CHECKPOINT_MS"), 0);
	assert_same(src, dst);
	assert_int_equal(res.target_guid, c1.hdr.guid);
	assert_int_equal(vol_held(dst, tmpl, &held, NULL, &err), 1);
	assert_int_equal(held, c1.hdr.guid);
	/* the pending catalog was saved with hashes at each checkpoint */
	assert_true(cs.calls >= 1);
	assert_true(cs.max_ino > 0 && cs.max_ino <= 6 * NBLK);
	assert_int_equal(c1.ents[0].ino, 0);
	/* ... and they were the final hashes of the blocks below it */
	assert_memory_equal(cs.hashes, (const uint8_t *)c1.hashes.data +
	    CAT_HASH_AT(&c1.ents[0]), cs.max_ino * CAT_HASH_LEN);
	free(cs.hashes);
	/* the same hashes as a scan */
	memset(&sst, 0, sizeof(sst));
	catalog_init(&scan);
	if (vol_scan(src, BS, &scan, &sst, &err) == -1)
		fail_msg("vol_scan: %s", err.msg);
	assert_memory_equal((const uint8_t *)c1.hashes.data +
	    CAT_HASH_AT(&c1.ents[0]), (const uint8_t *)scan.hashes.data +
	    CAT_HASH_AT(&scan.ents[0]), 6 * NBLK * CAT_HASH_LEN);
	catalog_release(&scan);
	/* sparse: the holes were not written */
	assert_int_equal(stat(dst, &sb), 0);
	assert_true((uint64_t)sb.st_blocks * 512 < 6 * NBLK * BS - 20 * BS);

	/* incremental: only what changed, through the journal */
	put_block(src, 3, 77);
	put_block(src, 100, 78);
	put_block(src, 101, 0);
	if (copy_live(&c2, &c1, 0, &st, &res, NULL, &err) == -1)
		fail_msg("vol_copy: %s", err.msg);
	assert_int_equal(st.data_bytes, 2 * BS);
	assert_int_equal(st.hole_bytes, BS);
	assert_true(res.st.journal_bytes > 2 * BS);
	assert_same(src, dst);
	assert_int_equal(vol_held(dst, tmpl, &held, NULL, &err), 1);
	assert_int_equal(held, c2.hdr.guid);

	/* a full copy onto a volume holding a snapshot needs the force */
	put_block(src, 5, 79);
	assert_int_equal(copy_live(&c3, NULL, 0, &st, &res, NULL, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "receive '"));
	assert_int_equal(vol_held(dst, tmpl, &held, NULL, &err), 1);
	assert_int_equal(held, c2.hdr.guid);
	catalog_release(&c3);
	if (copy_live(&c3, NULL, VOL_RECV_FORCE, &st, &res, NULL, &err) == -1)
		fail_msg("vol_copy -F: %s", err.msg);
	assert_same(src, dst);
	catalog_release(&c1);
	catalog_release(&c2);
	catalog_release(&c3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_incremental, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resize_and_snapshot_send,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recover, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resume_cut_hole, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
