/*
 * t_dir_send.c - dir_scan() and dir_send() over real temporary trees:
 * the catalog a scan makes, and the records of full and incremental
 * streams, decoded with the stream validator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>

#include "driver/dir.h"
#include "format/stream.h"

#define BS	65536u

/* One decoded record, reduced to what the tests look at. */
struct r {
	int		 type;
	int		 op;
	int		 flags;
	uint32_t	 mode;
	uint64_t	 size;
	uint64_t	 off;
	uint64_t	 len;
	char		 path[AS_PATH_MAX_BUF];
	char		 aux[AS_PATH_MAX_BUF];
};

struct recs {
	struct r	*v;
	size_t		 n;
	size_t		 bytes;
};

static char	tmpl[64];
static uint64_t	next_guid = 1000;

static void
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static void
writef(const char *rel, const void *p, size_t n, off_t off)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpl, rel);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, n, off), (ssize_t)n);
	close(fd);
}

static void
snap(struct catalog *c, const struct catalog *base, struct dir_stats *st)
{
	struct as_err err;

	memset(&err, 0, sizeof(err));
	memset(st, 0, sizeof(*st));
	catalog_init(c);
	c->hdr.guid = next_guid++;
	snprintf(c->hdr.name, sizeof(c->hdr.name), "s%llu",
	    (unsigned long long)c->hdr.guid);
	if (dir_scan(tmpl, base, BS, 0, c, st, &err) == -1)
		fail_msg("scan: %s", err.msg);
	assert_int_equal(catalog_check_order(c, &err), 0);
}

static void
decode(int fd, struct recs *out)
{
	struct stream_dec d;
	struct as_rec rec;
	struct as_err err;
	static uint8_t buf[1 << 16];
	struct r *r;
	ssize_t n;
	size_t off, used;
	int rc;

	memset(out, 0, sizeof(*out));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	stream_dec_init(&d);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		out->bytes += (size_t)n;
		for (off = 0; off < (size_t)n; off += used) {
			rc = stream_dec_feed(&d, buf + off, (size_t)n - off,
			    &used, &rec, &err);
			if (rc == -1)
				fail_msg("decode: %s", err.msg);
			if (rc == 0)
				continue;
			out->v = realloc(out->v, (out->n + 1) * sizeof(*r));
			r = &out->v[out->n++];
			memset(r, 0, sizeof(*r));
			r->type = rec.type;
			if (rec.type == AS_REC_ENTRY) {
				r->op = rec.u.entry.op;
				r->flags = rec.u.entry.flags;
				r->mode = rec.u.entry.mode;
				r->size = rec.u.entry.size;
				memcpy(r->path, rec.u.entry.path,
				    rec.u.entry.path_len);
				memcpy(r->aux, rec.u.entry.aux,
				    rec.u.entry.aux_len);
			} else if (rec.type == AS_REC_DATA) {
				r->off = rec.u.data.offset;
				r->len = rec.u.data.len;
			} else if (rec.type == AS_REC_HOLE) {
				r->off = rec.u.hole.offset;
				r->len = rec.u.hole.len;
			} else if (rec.type == AS_REC_XATTR)
				memcpy(r->path, rec.u.xattr.name,
				    rec.u.xattr.name_len);
		}
	}
	assert_int_equal(stream_dec_finish(&d, &err), 0);
	stream_dec_release(&d);
}

static int
send(struct catalog *t, const struct catalog *b, int flags,
    struct recs *out, struct dir_stats *st, struct as_err *err)
{
	int fd = memfd_create("stream", MFD_CLOEXEC), rc;

	assert_true(fd >= 0);
	memset(st, 0, sizeof(*st));
	memset(err, 0, sizeof(*err));
	rc = dir_send(tmpl, t, b, fd, flags, st, err);
	if (rc == 0)
		decode(fd, out);
	close(fd);
	return rc;
}

static void
send_ok(struct catalog *t, const struct catalog *b, struct recs *out,
    struct dir_stats *st)
{
	struct as_err err;

	if (send(t, b, 0, out, st, &err) == -1)
		fail_msg("send: %s", err.msg);
	assert_int_equal(out->v[0].type, AS_REC_BEGIN);
	assert_int_equal(out->v[out->n - 1].type, AS_REC_END);
}

/* Index of the entry record with op and path, or -1. */
static long
find(const struct recs *rs, int op, const char *path)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		if (rs->v[i].type == AS_REC_ENTRY && rs->v[i].op == op &&
		    strcmp(rs->v[i].path, path) == 0)
			return (long)i;
	return -1;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpl, sizeof(tmpl), "/tmp/t_dir_send.XXXXXX");
	assert_non_null(mkdtemp(tmpl));
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	sh("rm -rf '%s'", tmpl);
	return 0;
}

/* A tree with every kind of entry the test user can make. */
static void
make_tree(void)
{
	static uint8_t big[1 << 20];
	size_t i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	sh("cd '%s' && mkdir -p d/sub e .autosync/x && echo hi > d/sub/f && "
	    "ln -s ../x d/l && mkfifo fifo && echo one > one && ln one two && "
	    "echo gone > gone && echo t > tc && echo m > mv && "
	    "truncate -s 300000 sparse", tmpl);
	writef("sparse", "data", 4, 200000);
	writef("big", big, sizeof(big), 0);
	/* user xattrs need a file system that has them (not old tmpfs) */
	(void)setxattr(tmpl, "user.root", "r", 1, 0);
	{
		char p[512];

		snprintf(p, sizeof(p), "%s/one", tmpl);
		(void)setxattr(p, "user.b", "2", 1, 0);
		(void)setxattr(p, "user.a", "1", 1, 0);
	}
}

static void
test_scan(void **state)
{
	struct catalog c, c2;
	struct dir_stats st;
	const struct cat_entry *e;
	long i;

	(void)state;
	make_tree();
	snap(&c, NULL, &st);
	assert_int_equal(c.ents[0].path_len, 0);
	assert_int_equal(catalog_find(&c, ".autosync", 9), -1);
	i = catalog_find(&c, "big", 3);
	assert_true(i > 0);
	e = &c.ents[i];
	assert_int_equal(e->size, 1 << 20);
	assert_int_equal(e->nblocks, 16);
	i = catalog_find(&c, "sparse", 6);
	assert_int_equal(c.ents[i].nblocks, 5);
	i = catalog_find(&c, "d/l", 3);
	assert_string_equal(catalog_aux(&c, &c.ents[i]), "../x");
	i = catalog_find(&c, "two", 3);
	assert_int_equal(c.ents[i].nlink, 2);
	assert_true(st.files_read > 0);
	/* an unchanged tree: one lstat per entry, no reads */
	snap(&c2, &c, &st);
	assert_int_equal(c2.n, c.n);
	assert_int_equal(st.entries, c.n);
	assert_int_equal(st.files_read, 0);
	assert_int_equal(st.bytes_read, 0);
	assert_memory_equal(c2.hashes.data, c.hashes.data, c.hashes.len);
	catalog_release(&c);
	catalog_release(&c2);
}

static void
test_full(void **state)
{
	struct catalog c;
	struct dir_stats st;
	struct recs rs;
	long i;

	(void)state;
	make_tree();
	snap(&c, NULL, &st);
	send_ok(&c, NULL, &rs, &st);
	assert_int_equal(rs.v[1].op, AS_OP_ATTR);
	assert_string_equal(rs.v[1].path, "");
	assert_true(find(&rs, AS_OP_CREATE, "d") < find(&rs, AS_OP_CREATE,
	    "d/sub"));
	i = find(&rs, AS_OP_CREATE, "d/l");
	assert_true(i > 0);
	assert_string_equal(rs.v[i].aux, "../x");
	assert_true(find(&rs, AS_OP_CREATE, "fifo") > 0);
	assert_true(find(&rs, AS_OP_CREATE, "one") > 0);
	i = find(&rs, AS_OP_LINK, "two");
	assert_true(i > 0);
	assert_string_equal(rs.v[i].aux, "one");
	/* 1 MiB in one data record */
	i = find(&rs, AS_OP_CREATE, "big");
	assert_int_equal(rs.v[i + 1].type, AS_REC_DATA);
	assert_int_equal(rs.v[i + 1].len, 1 << 20);
	/* the sparse file: hole, the block with data, hole */
	i = find(&rs, AS_OP_CREATE, "sparse");
	assert_int_equal(rs.v[i + 1].type, AS_REC_HOLE);
	assert_int_equal(rs.v[i + 2].type, AS_REC_DATA);
	assert_true(rs.v[i + 2].off <= 200000 &&
	    rs.v[i + 2].off + rs.v[i + 2].len >= 200004);
	assert_int_equal(rs.v[i + 3].type, AS_REC_HOLE);
	assert_int_equal(rs.v[i + 3].off + rs.v[i + 3].len, 300000);
	assert_int_equal(st.entries_sent, c.n);
	assert_int_equal(st.stream_bytes, rs.bytes);
	free(rs.v);
	catalog_release(&c);
}

static void
test_incremental(void **state)
{
	struct catalog a, b, c;
	struct dir_stats st;
	struct recs rs;
	long i;

	(void)state;
	make_tree();
	snap(&a, NULL, &st);
	/* one block of big, chmod, renames, delete, type change, link */
	writef("big", "XXXX", 4, 5 * BS + 17);
	sh("cd '%s' && chmod 600 d/sub/f && mv mv mv2 && mv e e2 && "
	    "rm gone && rm tc && mkdir tc && ln one three", tmpl);
	snap(&b, &a, &st);
	send_ok(&b, &a, &rs, &st);
	i = find(&rs, AS_OP_PATCH, "big");
	assert_true(i > 0);
	assert_int_equal(rs.v[i].size, 1 << 20);
	assert_int_equal(rs.v[i + 1].type, AS_REC_DATA);
	assert_int_equal(rs.v[i + 1].off, 5 * BS);
	assert_int_equal(rs.v[i + 1].len, BS);
	assert_int_equal(rs.v[i + 2].type, AS_REC_ENTRY);
	assert_int_equal(st.data_bytes, BS);
	assert_true(find(&rs, AS_OP_ATTR, "d/sub/f") > 0);
	i = find(&rs, AS_OP_RENAME, "mv2");
	assert_true(i > 0);
	assert_string_equal(rs.v[i].aux, "mv");
	i = find(&rs, AS_OP_RENAME, "e2");
	assert_true(i > 0);
	assert_string_equal(rs.v[i].aux, "e");
	assert_true(find(&rs, AS_OP_DELETE, "gone") > 0);
	/* the type change: deleted as a file, created as a directory, or
	 * (inode reuse) another directory renamed there */
	i = find(&rs, AS_OP_DELETE, "tc");
	assert_true(i > 0);
	assert_true(S_ISREG(rs.v[i].mode));
	assert_true(find(&rs, AS_OP_CREATE, "tc") > 0 ||
	    find(&rs, AS_OP_RENAME, "tc") > 0);
	i = find(&rs, AS_OP_LINK, "three");
	assert_true(i > 0);
	assert_string_equal(rs.v[i].aux, "one");
	/* deletions and renames come first */
	assert_true(find(&rs, AS_OP_DELETE, "gone") < find(&rs,
	    AS_OP_RENAME, "mv2"));
	assert_true(find(&rs, AS_OP_RENAME, "mv2") < find(&rs, AS_OP_PATCH,
	    "big"));
	/* nothing else travels: the linked pair is unchanged */
	assert_int_equal(find(&rs, AS_OP_PATCH, "one"), -1);
	assert_int_equal(find(&rs, AS_OP_LINK, "two"), -1);
	assert_int_equal(st.renames, 2 + (find(&rs, AS_OP_RENAME, "tc") > 0));
	free(rs.v);

	/* an unchanged tree: BEGIN and END, no reads */
	snap(&c, &b, &st);
	assert_int_equal(st.files_read, 0);
	send_ok(&c, &b, &rs, &st);
	assert_int_equal(rs.n, 2);
	assert_true(rs.bytes < 300);
	assert_int_equal(st.files_read, 0);
	free(rs.v);
	catalog_release(&a);
	catalog_release(&b);
	catalog_release(&c);
}

static void
test_conflict_and_live(void **state)
{
	struct catalog a, b;
	struct dir_stats st;
	struct recs rs;
	struct as_err err;
	long i;

	(void)state;
	make_tree();
	snap(&a, NULL, &st);
	writef("big", "YYYY", 4, 3 * BS);
	assert_int_equal(send(&a, NULL, 0, &rs, &st, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "'big' changed since it was taken"));
	/* live: the file is described anew and the catalog follows */
	assert_int_equal(send(&a, NULL, DIR_SEND_LIVE, &rs, &st, &err), 0);
	free(rs.v);
	snap(&b, &a, &st);
	send_ok(&b, &a, &rs, &st);
	assert_int_equal(rs.n, 2);
	free(rs.v);
	/* a base with a missing file as the target of a patch */
	catalog_release(&b);
	writef("big", "ZZZZ", 4, 7 * BS);
	snap(&b, &a, &st);
	i = catalog_find(&b, "big", 3);
	assert_true(i > 0);
	sh("rm '%s/big'", tmpl);
	assert_int_equal(send(&b, &a, 0, &rs, &st, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	catalog_release(&a);
	catalog_release(&b);
}

/* The byte at off of file k of test_ownpipe's tree. */
static uint8_t
pattern(unsigned k, uint64_t off)
{
	return (uint8_t)(k * 131 + off * 7 + (off >> 12));
}

/*
 * test_ownpipe's reader: reads in small pieces (slowly at first, so
 * that the sender's blocks wait in the pipe), decodes, and checks every
 * DATA byte against pattern(); exits 0 when the stream is whole and
 * right, else 1 (a bad record), 2 (a wrong byte) or 3 (no END); with
 * stop_at it stops reading there and exits 0.
 */
static void
pipe_reader(int fd, size_t stop_at)
{
	struct stream_dec d;
	struct as_rec rec;
	struct as_err err;
	static uint8_t buf[3000];
	size_t got = 0, off, used, i;
	unsigned k = 0;
	ssize_t n;
	int rc;

	stream_dec_init(&d);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		got += (size_t)n;
		if (stop_at != 0 && got >= stop_at)
			_exit(0);
		if (got < (1u << 20))
			usleep(200);
		for (off = 0; off < (size_t)n; off += used) {
			rc = stream_dec_feed(&d, buf + off, (size_t)n - off,
			    &used, &rec, &err);
			if (rc == -1)
				_exit(1);
			if (rc == 0)
				continue;
			if (rec.type == AS_REC_ENTRY && rec.u.entry.path_len ==
			    3 && rec.u.entry.path[0] == 'f')
				k = (unsigned)(rec.u.entry.path[1] - '0') * 10 +
				    (unsigned)(rec.u.entry.path[2] - '0');
			if (rec.type == AS_REC_DATA)
				for (i = 0; i < rec.u.data.len; i++)
					if (rec.u.data.data[i] != pattern(k,
					    rec.u.data.offset + i))
						_exit(2);
		}
	}
	_exit(stream_dec_finish(&d, &err) == 0 ? 0 : 3);
}

/*
 * DIR_SEND_OWNPIPE: blocks handed over with vmsplice and reused once
 * read arrive intact through a pipe no bigger than a block, read slowly;
 * a reader that goes away mid-stream ends the send with IO, no hang.
 */
static void
test_ownpipe(void **state)
{
	static uint8_t data[200000];
	struct catalog c;
	struct dir_stats st;
	struct as_err err;
	char rel[16];
	unsigned k;
	size_t i;
	pid_t pid;
	int p[2], status, round;

	(void)state;
	for (k = 10; k < 50; k++) {
		for (i = 0; i < sizeof(data); i++)
			data[i] = pattern(k, i);
		snprintf(rel, sizeof(rel), "f%u", k);
		writef(rel, data, sizeof(data), 0);
	}
	snap(&c, NULL, &st);
	signal(SIGPIPE, SIG_IGN);	/* as main() does: EPIPE, not death */
	alarm(60);	/* a send that hangs fails the test */
	for (round = 0; round < 2; round++) {
		assert_int_equal(pipe(p), 0);
		(void)fcntl(p[1], F_SETPIPE_SZ, 65536);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[1]);
			pipe_reader(p[0], round == 0 ? 0 : 500000);
		}
		close(p[0]);
		memset(&err, 0, sizeof(err));
		memset(&st, 0, sizeof(st));
		i = (size_t)dir_send(tmpl, &c, NULL, p[1], DIR_SEND_OWNPIPE,
		    &st, &err);
		close(p[1]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		if (round == 0) {
			assert_int_equal((int)i, 0);
			assert_true(st.stream_bytes > 40 * sizeof(data));
		} else {
			assert_int_equal((int)i, -1);
			assert_int_equal(err.code, AS_E_IO);
		}
	}
	alarm(0);
	catalog_release(&c);
}

static void
test_deep(void **state)
{
	struct catalog c;
	struct dir_stats st;
	struct as_err err;
	size_t i;
	int fd, nfd;

	(void)state;
	/* 2000 levels: more than the kept descriptors, within AS_PATH_MAX */
	fd = open(tmpl, O_RDONLY | O_DIRECTORY);
	for (i = 0; i < 2000; i++) {
		assert_int_equal(mkdirat(fd, "a", 0755), 0);
		close(openat(fd, "z", O_CREAT | O_WRONLY, 0644));
		nfd = openat(fd, "a", O_RDONLY | O_DIRECTORY);
		close(fd);
		fd = nfd;
	}
	close(fd);
	snap(&c, NULL, &st);
	assert_int_equal(c.n, 1 + 2 * 2000);
	assert_int_equal(st.files_read, 2000);
	catalog_release(&c);
	/* deeper than a path may be long: a clean error */
	fd = open(tmpl, O_RDONLY | O_DIRECTORY);
	for (i = 0; i < 2100; i++) {
		(void)mkdirat(fd, "a", 0755);
		nfd = openat(fd, "a", O_RDONLY | O_DIRECTORY);
		close(fd);
		fd = nfd;
	}
	close(fd);
	catalog_init(&c);
	memset(&err, 0, sizeof(err));
	assert_int_equal(dir_scan(tmpl, NULL, BS, 0, &c, &st, &err), -1);
	assert_int_equal(err.code, AS_E_LIMIT);
	catalog_release(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incremental, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_conflict_and_live, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_deep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ownpipe, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
