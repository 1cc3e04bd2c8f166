/*
 * t_dir_recv.c - dir_receive() on hand-built streams: every entry type,
 * incremental ops, hostile paths, truncation, base mismatch, drift, lock,
 * a retry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <cmocka.h>

#include "driver/dir.h"
#include "format/catalog.h"
#include "format/stream.h"
#include "base/banned.h"

static char	tmpl[] = "/tmp/t_dir_recv.XXXXXX";
static char	*top;
static char	dest[512], outside[512];

/* Run a shell command (test fixtures only): system() is banned. */
static int
system_cmd(const char *cmd)
{
	pid_t pid;
	int st;

	if ((pid = fork()) == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (pid == -1 || waitpid(pid, &st, 0) == -1)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static struct as_begin
mkbegin(uint64_t base, uint64_t target, const char *name)
{
	struct as_begin b = { .version = AS_STREAM_VERSION,
	    .kind = AS_KIND_DIR, .block_size = AS_BLOCK_DEFAULT,
	    .base_guid = base, .target_guid = target, .time_ns = 1000,
	    .name = name, .name_len = (uint16_t)strlen(name),
	    .source = "/src", .source_len = 4 };
	return b;
}

static struct as_entry
ent(uint8_t op, uint32_t mode, const char *path, const char *aux)
{
	struct as_entry e;

	memset(&e, 0, sizeof(e));
	e.op = op;
	e.mode = mode;
	e.path = path;
	e.path_len = (uint16_t)strlen(path);
	e.aux = aux;
	e.aux_len = aux != NULL ? (uint16_t)strlen(aux) : 0;
	e.mtime_sec = 1500000000;
	e.mtime_nsec = 123456789;
	return e;
}

/* Receive len bytes of p into dest through a temporary file. */
static int
recv_bytes(const uint8_t *p, size_t len, int flags, struct as_err *err,
    struct dir_recv_result *res)
{
	char path[600];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/stream", top);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	memset(err, 0, sizeof(*err));
	rc = dir_receive(dest, fd, flags, res, err);
	close(fd);
	return rc;
}

static int
recv_buf(struct buf *b, int flags, struct as_err *err)
{
	struct dir_recv_result res;

	return recv_bytes(b->data, b->len, flags, err, &res);
}

/* The full snapshot 1: one entry of every kind. */
static void
build_full(struct buf *out, uint64_t guid)
{
	struct stream_enc e;
	struct as_begin b = mkbegin(0, guid, "one");
	struct as_entry x;
	struct as_xattr xa = { .name = "user.k", .name_len = 6,
	    .value = (const uint8_t *)"val", .value_len = 3 };
	static uint8_t data[5000];

	memset(data, 'a', sizeof(data));
	stream_enc_init(&e, out);
	stream_enc_begin(&e, &b);
	x = ent(AS_OP_ATTR, S_IFDIR | 0755, "", NULL);
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_CREATE, S_IFDIR | 0750, "d", NULL);
	x.uid = 12345;
	x.gid = 54321;
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_CREATE, S_IFREG | 04755, "d/f", NULL);
	x.flags = AS_EF_XATTRS;
	x.nxattr = 1;
	x.size = 300000;
	stream_enc_entry(&e, &x);
	stream_enc_xattr(&e, &xa);
	stream_enc_data(&e, 0, data, sizeof(data));
	stream_enc_hole(&e, 5000, 200000);
	stream_enc_data(&e, 295000, data, sizeof(data));
	x = ent(AS_OP_LINK, S_IFREG | 04755, "d/h", "d/f");
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_CREATE, S_IFDIR | 0700, "d/sub", NULL);
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_CREATE, S_IFREG | 0600, "d/sub/empty", NULL);
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_CREATE, S_IFLNK | 0777, "l", "d/f");
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_CREATE, S_IFIFO | 0640, "p", NULL);
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_CREATE, S_IFSOCK | 0755, "s", NULL);
	stream_enc_entry(&e, &x);
	if (geteuid() == 0) {
		x = ent(AS_OP_CREATE, S_IFCHR | 0666, "z", NULL);
		x.rdev = makedev(1, 3);
		stream_enc_entry(&e, &x);
	}
	stream_enc_end(&e);
}

static int
setup(void **state)
{
	(void)state;
	top = mkdtemp(tmpl);
	assert_non_null(top);
	snprintf(dest, sizeof(dest), "%s/dest", top);
	snprintf(outside, sizeof(outside), "%s/outside", top);
	assert_int_equal(mkdir(outside, 0755), 0);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[700];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	return system_cmd(cmd) == 0 ? 0 : -1;
}

static void
reset_dest(void)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dest);
	assert_int_equal(system_cmd(cmd), 0);
}

/* Entries in dir other than .autosync. */
static int
count_entries(const char *dir)
{
	char cmd[700];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -v '^.autosync$' | "
	    "wc -l", dir);
	f = popen(cmd, "r");
	if (f != NULL) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

static void
at(char *out, size_t sz, const char *rel)
{
	snprintf(out, sz, "%s/%s", dest, rel);
}

/* Neither a stage nor a journal is left under dest/.autosync. */
static void
assert_no_stage(void)
{
	char p[700];
	struct stat sb;

	at(p, sizeof(p), ".autosync/stage");
	assert_int_equal(lstat(p, &sb), -1);
	at(p, sizeof(p), ".autosync/journal");
	assert_int_equal(lstat(p, &sb), -1);
}

static void assert_held_is_tree(void);

static void
test_full_every_type(void **state)
{
	struct buf b = BUF_INIT;
	struct as_err err;
	struct cat_header hdr;
	struct stat sb;
	char p[700], v[16], lnk[64];
	uint8_t got[5000];
	int fd;

	(void)state;
	reset_dest();
	build_full(&b, 1);
	if (recv_buf(&b, 0, &err) != 0)
		fail_msg("receive: %s", err.msg);
	at(p, sizeof(p), "d");
	assert_int_equal(lstat(p, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0750);
	assert_int_equal(sb.st_uid, 12345);
	assert_int_equal(sb.st_gid, 54321);
	assert_int_equal(sb.st_mtim.tv_sec, 1500000000);
	assert_int_equal(sb.st_mtim.tv_nsec, 123456789);
	at(p, sizeof(p), "d/f");
	assert_int_equal(lstat(p, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 04755);
	assert_int_equal(sb.st_size, 300000);
	assert_int_equal(sb.st_nlink, 2);
	assert_true(sb.st_blocks * 512 < 100000);	/* sparse */
	assert_int_equal(sb.st_mtim.tv_nsec, 123456789);
	assert_int_equal(getxattr(p, "user.k", v, sizeof(v)), 3);
	assert_memory_equal(v, "val", 3);
	fd = open(p, O_RDONLY);
	assert_int_equal(pread(fd, got, sizeof(got), 295000), 5000);
	assert_int_equal(got[0], 'a');
	assert_int_equal(pread(fd, got, 10, 100000), 10);
	assert_int_equal(got[0], 0);
	close(fd);
	at(p, sizeof(p), "l");
	assert_int_equal(readlink(p, lnk, sizeof(lnk)), 3);
	assert_memory_equal(lnk, "d/f", 3);
	at(p, sizeof(p), "p");
	assert_int_equal(lstat(p, &sb), 0);
	assert_true(S_ISFIFO(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0640);
	at(p, sizeof(p), "s");
	assert_int_equal(lstat(p, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	at(p, sizeof(p), "d/sub/empty");
	assert_int_equal(lstat(p, &sb), 0);
	if (geteuid() == 0) {
		at(p, sizeof(p), "z");
		assert_int_equal(lstat(p, &sb), 0);
		assert_true(S_ISCHR(sb.st_mode));
		assert_int_equal(sb.st_rdev, makedev(1, 3));
	}
	at(p, sizeof(p), "");
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mtim.tv_sec, 1500000000);
	/* no staging left, held snapshot recorded */
	assert_no_stage();
	assert_int_equal(dir_held(dest, &hdr, &err), 1);
	assert_int_equal(hdr.guid, 1);
	assert_string_equal(hdr.name, "one");
	cat_header_release(&hdr);
	/* held.cat made from the stream (derive_full) is the tree's */
	assert_held_is_tree();
	/* the same full stream again: the destination is not empty */
	assert_int_equal(recv_buf(&b, 0, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	buf_release(&b);
}

static void
test_incremental(void **state)
{
	struct buf b = BUF_INIT;
	struct stream_enc e;
	struct as_begin bg = mkbegin(1, 2, "two");
	struct as_entry x;
	struct as_err err;
	struct stat sb, sb2;
	struct cat_header hdr;
	char p[700], q[700];
	uint8_t got[8];
	int fd;

	(void)state;
	reset_dest();
	build_full(&b, 1);
	if (recv_buf(&b, 0, &err) != 0)
		fail_msg("receive full: %s", err.msg);
	buf_reset(&b);
	stream_enc_init(&e, &b);
	stream_enc_begin(&e, &bg);
	x = ent(AS_OP_ATTR, S_IFDIR | 0755, "", NULL);
	x.mtime_sec = 1600000000;
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_PATCH, S_IFREG | 0644, "d/f", NULL);
	x.size = 300004;
	stream_enc_entry(&e, &x);
	stream_enc_data(&e, 0, "BBBB", 4);
	stream_enc_hole(&e, 295000, 1000);
	stream_enc_data(&e, 300000, "CCCC", 4);
	x = ent(AS_OP_RENAME, S_IFIFO | 0600, "e/p2", "p");
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_DELETE, S_IFSOCK, "s", NULL);
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_LINK, S_IFREG | 0644, "h2", "d/f");
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_RENAME, S_IFDIR | 0711, "e", "d/sub");
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_CREATE, S_IFDIR | 0755, "n", NULL);
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_CREATE, S_IFREG | 0644, "n/new", NULL);
	x.size = 3;
	stream_enc_entry(&e, &x);
	stream_enc_data(&e, 0, "new", 3);
	stream_enc_end(&e);
	/* a dry run changes nothing */
	if (recv_buf(&b, DIR_RECV_DRYRUN, &err) != 0)
		fail_msg("dry run: %s", err.msg);
	at(p, sizeof(p), "p");
	assert_int_equal(lstat(p, &sb), 0);
	if (recv_buf(&b, 0, &err) != 0)
		fail_msg("receive incremental: %s", err.msg);
	at(p, sizeof(p), "d/f");
	assert_int_equal(lstat(p, &sb), 0);
	assert_int_equal(sb.st_size, 300004);
	assert_int_equal(sb.st_mode & 07777, 0644);
	assert_int_equal(sb.st_nlink, 3);
	fd = open(p, O_RDONLY);
	assert_int_equal(pread(fd, got, 5, 0), 5);
	assert_memory_equal(got, "BBBBa", 5);
	assert_int_equal(pread(fd, got, 4, 295000), 4);
	assert_memory_equal(got, "\0\0\0\0", 4);
	assert_int_equal(pread(fd, got, 4, 300000), 4);
	assert_memory_equal(got, "CCCC", 4);
	close(fd);
	at(q, sizeof(q), "h2");
	assert_int_equal(lstat(q, &sb2), 0);
	assert_int_equal(sb2.st_ino, sb.st_ino);
	at(p, sizeof(p), "e/p2");
	assert_int_equal(lstat(p, &sb), 0);
	assert_true(S_ISFIFO(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0600);
	at(p, sizeof(p), "e/empty");
	assert_int_equal(lstat(p, &sb), 0);
	at(p, sizeof(p), "e");
	assert_int_equal(lstat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0711);
	at(p, sizeof(p), "d/sub");
	assert_int_equal(lstat(p, &sb), -1);
	at(p, sizeof(p), "p");
	assert_int_equal(lstat(p, &sb), -1);
	at(p, sizeof(p), "s");
	assert_int_equal(lstat(p, &sb), -1);
	at(p, sizeof(p), "n/new");
	assert_int_equal(lstat(p, &sb), 0);
	assert_int_equal(sb.st_size, 3);
	at(p, sizeof(p), "");
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mtim.tv_sec, 1600000000);
	assert_int_equal(dir_held(dest, &hdr, &err), 1);
	assert_int_equal(hdr.guid, 2);
	assert_int_equal(hdr.base_guid, 1);
	cat_header_release(&hdr);
	/* the same incremental again: base mismatch */
	assert_int_equal(recv_buf(&b, 0, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "0000000000000002"));
	buf_release(&b);
}

static void
test_symlink_then_write(void **state)
{
	struct buf b = BUF_INIT;
	struct stream_enc e;
	struct as_begin bg = mkbegin(0, 7, "evil");
	struct as_begin bi = mkbegin(1, 8, "evil2");
	struct as_entry x;
	struct as_err err;
	struct stat sb;
	char p[700];

	(void)state;
	reset_dest();
	stream_enc_init(&e, &b);
	stream_enc_begin(&e, &bg);
	x = ent(AS_OP_CREATE, S_IFLNK | 0777, "d", outside);
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_CREATE, S_IFREG | 0644, "d/pwn", NULL);
	stream_enc_entry(&e, &x);
	stream_enc_end(&e);
	assert_int_equal(recv_buf(&b, 0, &err), -1);
	assert_int_equal(err.code, AS_E_UNSAFE_PATH);
	assert_int_equal(count_entries(outside), 0);
	assert_int_equal(count_entries(dest), 0);

	/* the other order: the file first, its symlink parent later */
	buf_reset(&b);
	stream_enc_init(&e, &b);
	stream_enc_begin(&e, &bg);
	x = ent(AS_OP_CREATE, S_IFDIR | 0755, "d/x", NULL);
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_CREATE, S_IFLNK | 0777, "d", outside);
	stream_enc_entry(&e, &x);
	stream_enc_end(&e);
	assert_int_equal(recv_buf(&b, 0, &err), -1);
	assert_int_equal(err.code, AS_E_UNSAFE_PATH);
	assert_int_equal(count_entries(outside), 0);
	assert_int_equal(count_entries(dest), 0);

	/* through a symlink the destination already holds */
	buf_reset(&b);
	build_full(&b, 1);
	if (recv_buf(&b, 0, &err) != 0)
		fail_msg("receive full: %s", err.msg);
	buf_reset(&b);
	stream_enc_init(&e, &b);
	stream_enc_begin(&e, &bi);
	x = ent(AS_OP_CREATE, S_IFREG | 0644, "l/pwn", NULL);
	stream_enc_entry(&e, &x);
	stream_enc_end(&e);
	assert_int_equal(recv_buf(&b, 0, &err), -1);
	assert_int_equal(err.code, AS_E_UNSAFE_PATH);
	buf_reset(&b);
	stream_enc_init(&e, &b);
	stream_enc_begin(&e, &bi);
	x = ent(AS_OP_ATTR, S_IFREG | 0777, "l/x", NULL);
	stream_enc_entry(&e, &x);
	stream_enc_end(&e);
	assert_int_equal(recv_buf(&b, 0, &err), -1);
	assert_int_equal(err.code, AS_E_UNSAFE_PATH);
	/* a hard link to something outside the new tree */
	buf_reset(&b);
	stream_enc_init(&e, &b);
	stream_enc_begin(&e, &bi);
	x = ent(AS_OP_LINK, S_IFREG | 0644, "hh", "l");
	stream_enc_entry(&e, &x);
	stream_enc_end(&e);
	assert_int_equal(recv_buf(&b, 0, &err), -1);
	assert_int_equal(err.code, AS_E_UNSAFE_PATH);
	assert_int_equal(count_entries(outside), 0);
	at(p, sizeof(p), "l/pwn");
	assert_int_equal(lstat(p, &sb), -1);
	at(p, sizeof(p), ".autosync/stage");
	assert_int_equal(lstat(p, &sb), -1);
	buf_release(&b);
}

static void
test_truncated(void **state)
{
	struct buf b = BUF_INIT;
	struct dir_recv_result res;
	struct as_err err;
	struct stat sb;
	char p[700];
	size_t cut;

	(void)state;
	reset_dest();
	build_full(&b, 1);
	for (cut = 0; cut < b.len; cut += b.len / 13 + 1) {
		assert_int_equal(recv_bytes(b.data, cut, 0, &err, &res), -1);
		assert_int_equal(err.code, AS_E_TRUNCATED);
		assert_int_equal(count_entries(dest), 0);
		at(p, sizeof(p), ".autosync/stage");
		assert_int_equal(lstat(p, &sb), -1);
	}
	/* just before END */
	assert_int_equal(recv_bytes(b.data, b.len - 1, 0, &err, &res), -1);
	assert_int_equal(err.code, AS_E_TRUNCATED);
	assert_int_equal(count_entries(dest), 0);
	/* a flipped bit */
	b.data[b.len / 2] ^= 4;
	assert_int_equal(recv_bytes(b.data, b.len, 0, &err, &res), -1);
	assert_true(err.code == AS_E_CHECKSUM || err.code == AS_E_MALFORMED);
	assert_int_equal(count_entries(dest), 0);
	buf_release(&b);
}

static void
test_base_mismatch(void **state)
{
	struct buf b = BUF_INIT;
	struct stream_enc e;
	struct as_begin bg = mkbegin(999, 1000, "x");
	struct as_err err;

	(void)state;
	reset_dest();
	stream_enc_init(&e, &b);
	stream_enc_begin(&e, &bg);
	stream_enc_end(&e);
	/* nothing held */
	assert_int_equal(recv_buf(&b, 0, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	buf_reset(&b);
	build_full(&b, 1);
	assert_int_equal(recv_buf(&b, 0, &err), 0);
	buf_reset(&b);
	stream_enc_init(&e, &b);
	stream_enc_begin(&e, &bg);
	stream_enc_end(&e);
	assert_int_equal(recv_buf(&b, 0, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "00000000000003e7"));
	assert_non_null(strstr(err.msg, "0000000000000001"));
	buf_release(&b);
}

static void
test_drift_and_force(void **state)
{
	struct buf b = BUF_INIT;
	struct stream_enc e;
	struct as_begin bg = mkbegin(1, 3, "three");
	struct as_entry x;
	struct as_err err;
	struct stat sb;
	char p[700];
	int fd;

	(void)state;
	reset_dest();
	build_full(&b, 1);
	assert_int_equal(recv_buf(&b, 0, &err), 0);
	buf_reset(&b);
	stream_enc_init(&e, &b);
	stream_enc_begin(&e, &bg);
	x = ent(AS_OP_ATTR, S_IFDIR | 0755, "", NULL);
	stream_enc_entry(&e, &x);
	stream_enc_end(&e);
	/* an extra file and a chmod on the destination */
	at(p, sizeof(p), "d/extra");
	fd = open(p, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	at(p, sizeof(p), "d/sub/empty");
	assert_int_equal(chmod(p, 0666), 0);
	assert_int_equal(recv_buf(&b, 0, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "use -F"));
	if (recv_buf(&b, DIR_RECV_FORCE, &err) != 0)
		fail_msg("forced: %s", err.msg);
	at(p, sizeof(p), "d/extra");
	assert_int_equal(lstat(p, &sb), -1);
	at(p, sizeof(p), "d/sub/empty");
	assert_int_equal(lstat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	at(p, sizeof(p), "d");
	assert_int_equal(lstat(p, &sb), 0);
	assert_int_equal(sb.st_mtim.tv_sec, 1500000000);

	/* content changed and not rewritten: refused even with -F */
	buf_reset(&b);
	bg = mkbegin(3, 4, "four");
	stream_enc_init(&e, &b);
	stream_enc_begin(&e, &bg);
	stream_enc_end(&e);
	at(p, sizeof(p), "d/sub/empty");
	fd = open(p, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	assert_int_equal(recv_buf(&b, DIR_RECV_FORCE, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "cannot roll back 'd/sub/empty'"));

	/* -F with a full stream replaces everything */
	buf_reset(&b);
	build_full(&b, 9);
	if (recv_buf(&b, DIR_RECV_FORCE, &err) != 0)
		fail_msg("forced full: %s", err.msg);
	at(p, sizeof(p), "d/sub/empty");
	assert_int_equal(lstat(p, &sb), 0);
	assert_int_equal(sb.st_size, 0);
	buf_release(&b);
}

static void
test_busy(void **state)
{
	struct buf b = BUF_INIT;
	struct as_err err;
	char p[700];
	int fd;

	(void)state;
	reset_dest();
	build_full(&b, 1);
	assert_int_equal(recv_buf(&b, 0, &err), 0);
	at(p, sizeof(p), ".autosync/lock");
	fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	assert_int_equal(recv_buf(&b, DIR_RECV_FORCE, &err), -1);
	assert_int_equal(err.code, AS_E_CONFLICT);
	assert_non_null(strstr(err.msg, "busy"));
	close(fd);
	assert_int_equal(dir_recover(dest, &err), 0);
	buf_release(&b);
}

static void
test_bad_semantics(void **state)
{
	static const struct {
		uint8_t		 op;
		uint32_t	 mode;
		const char	*path;
		const char	*aux;
		int		 code;
	} cases[] = {
		{ AS_OP_PATCH, S_IFREG | 0644, "nope", NULL, AS_E_MALFORMED },
		{ AS_OP_DELETE, S_IFREG, "nope", NULL, AS_E_MALFORMED },
		{ AS_OP_DELETE, S_IFDIR, "d", NULL, AS_E_MALFORMED },
		{ AS_OP_DELETE, S_IFDIR, "d/f", NULL, AS_E_MALFORMED },
		{ AS_OP_RENAME, S_IFREG | 0644, "x", "nope", AS_E_MALFORMED },
		{ AS_OP_CREATE, S_IFREG | 0644, "p", NULL, AS_E_MALFORMED },
		{ AS_OP_CREATE, S_IFREG | 0644, "q/r", NULL, AS_E_MALFORMED },
		{ AS_OP_LINK, S_IFREG | 0644, "x", "d", AS_E_UNSAFE_PATH },
		{ AS_OP_CREATE, S_IFREG | 0644, "d/f/x", NULL,
		    AS_E_UNSAFE_PATH },
	};
	struct buf b = BUF_INIT;
	struct stream_enc e;
	struct as_begin bg = mkbegin(1, 5, "five");
	struct as_entry x;
	struct as_err err;
	size_t i;

	(void)state;
	reset_dest();
	build_full(&b, 1);
	assert_int_equal(recv_buf(&b, 0, &err), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		stream_enc_init(&e, &b);
		stream_enc_begin(&e, &bg);
		x = ent(cases[i].op, cases[i].mode, cases[i].path,
		    cases[i].aux);
		stream_enc_entry(&e, &x);
		stream_enc_end(&e);
		assert_int_equal(recv_buf(&b, 0, &err), -1);
		if ((int)err.code != cases[i].code)
			fail_msg("case %zu: %s", i, err.msg);
	}
	buf_release(&b);
}

/*
 * Receive stream file argv[2] into argv[3] in a child process, so that
 * AUTOSYNC_FAULT (read once per process) can fail one named site.
 */
static int
child_receive(const char *stream, const char *to)
{
	struct dir_recv_result res;
	struct as_err err;
	int fd;

	if ((fd = open(stream, O_RDONLY)) == -1)
		return 99;
	if (dir_receive(to, fd, 0, &res, &err) == 0)
		return 0;
	fprintf(stderr, "child: %s\n", err.msg);
	return (int)err.code;
}

/* The stream file the child receives: b's bytes. */
static void
write_stream(const struct buf *b)
{
	char path[600];
	int fd;

	snprintf(path, sizeof(path), "%s/stream", top);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b->data, b->len), (ssize_t)b->len);
	close(fd);
}

/* The child's wait status (it may be killed at the fault). */
static int
child_status(const char *fault)
{
	char path[600];
	pid_t pid;
	int st;

	snprintf(path, sizeof(path), "%s/stream", top);
	if ((pid = fork()) == 0) {
		setenv("AUTOSYNC_FAULT", fault, 1);
		execl("/proc/self/exe", "t_dir_recv", "child", path, dest,
		    (char *)NULL);
		_exit(98);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

/* The child's exit code: 0, or the error class of its failure. */
static int
run_child_with_fault(const char *fault)
{
	int st = child_status(fault);

	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/*
 * A crash after the commit point is rolled forward by dir_recover.  A
 * crash (KILL), not an errno: the receiver retries a failed step once
 * in line (rcv_commit), so a one-time EIO heals before the child exits
 * and would leave nothing to recover.
 */
static void
test_recover_forward(void **state)
{
	static const char *faults[] = { "recv_attach:KILL:1",
	    "recv_detach:KILL:2", "recv_link:KILL:1", "recv_meta:KILL:2",
	    "recv_phase:KILL:2" };
	struct buf b = BUF_INIT;
	struct dir_recv_result res;
	struct as_err err;
	struct cat_header hdr;
	struct stat sb;
	char p[700];
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		reset_dest();
		buf_reset(&b);
		build_full(&b, 1);
		assert_int_equal(recv_buf(&b, 0, &err), 0);
		/* incremental with renames, deletes, links */
		{
			struct stream_enc e;
			struct as_begin bg = mkbegin(1, 2, "two");
			struct as_entry x;

			buf_reset(&b);
			stream_enc_init(&e, &b);
			stream_enc_begin(&e, &bg);
			x = ent(AS_OP_RENAME, S_IFDIR | 0711, "e", "d/sub");
			stream_enc_entry(&e, &x);
			x = ent(AS_OP_DELETE, S_IFSOCK, "s", NULL);
			stream_enc_entry(&e, &x);
			x = ent(AS_OP_LINK, S_IFREG | 0644, "h2", "d/f");
			stream_enc_entry(&e, &x);
			x = ent(AS_OP_CREATE, S_IFDIR | 0755, "n", NULL);
			stream_enc_entry(&e, &x);
			stream_enc_end(&e);
		}
		/* write the stream file, fail in a child */
		assert_int_equal(recv_bytes(b.data, 0, 0, &err, &res), -1);
		write_stream(&b);
		/* every site is on this stream's path: it must be reached */
		rc = child_status(faults[i]);
		if (!WIFSIGNALED(rc) || WTERMSIG(rc) != SIGKILL)
			fail_msg("%s: the child was not killed at the site "
			    "(wait status %#x)", faults[i], rc);
		at(p, sizeof(p), ".autosync/journal");
		assert_int_equal(lstat(p, &sb), 0);
		assert_int_equal(dir_held(dest, &hdr, &err), 1);
		assert_int_equal(hdr.guid, 1);
		cat_header_release(&hdr);
		if (dir_recover(dest, &err) != 1)
			fail_msg("%s: recover: %s", faults[i], err.msg);
		assert_int_equal(dir_held(dest, &hdr, &err), 1);
		assert_int_equal(hdr.guid, 2);
		cat_header_release(&hdr);
		at(p, sizeof(p), "e/empty");
		assert_int_equal(lstat(p, &sb), 0);
		at(p, sizeof(p), "h2");
		assert_int_equal(lstat(p, &sb), 0);
		assert_int_equal(sb.st_nlink, 3);
		at(p, sizeof(p), "s");
		assert_int_equal(lstat(p, &sb), -1);
		at(p, sizeof(p), "n");
		assert_int_equal(lstat(p, &sb), 0);
		assert_no_stage();
		assert_int_equal(dir_recover(dest, &err), 0);
	}
	buf_release(&b);
}

/*
 * The syncfs that ends a phase runs on a thread (dir_apply.c mark_start):
 * when it fails once, the step is retried in line and the receive still
 * ends on the new tree, with nothing left for recover.  Failing the
 * first one (the data phase of a full stream) and the second.  First,
 * the site is reached at all: killed there, the receive is committed
 * and recover rolls it forward.
 */
static void
test_sync_fault_retried(void **state)
{
	static const char *faults[] = { "recv_sync:EIO:1",
	    "recv_sync:EIO:2" };
	struct buf b = BUF_INIT;
	struct cat_header hdr;
	struct as_err err;
	size_t i;
	int st;

	(void)state;
	build_full(&b, 1);
	reset_dest();
	write_stream(&b);
	st = child_status("recv_sync:KILL:1");
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		fail_msg("recv_sync:KILL:1 was not reached (status %d)", st);
	assert_int_equal(dir_recover(dest, &err), 1);
	assert_int_equal(dir_held(dest, &hdr, &err), 1);
	assert_int_equal(hdr.guid, 1);
	cat_header_release(&hdr);
	for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		reset_dest();
		if (run_child_with_fault(faults[i]) != 0)
			fail_msg("%s: the receive failed", faults[i]);
		assert_int_equal(dir_held(dest, &hdr, &err), 1);
		assert_int_equal(hdr.guid, 1);
		cat_header_release(&hdr);
		assert_no_stage();
		assert_int_equal(dir_recover(dest, &err), 0);
	}
	buf_release(&b);
}

/* A failure before the commit point leaves the old tree. */
static void
test_fail_before_commit(void **state)
{
	static const char *faults[] = { "recv_stage:ENOSPC:2",
	    "recv_write:ENOSPC:1", "recv_journal:EIO:1" };
	struct buf b = BUF_INIT;
	size_t i;
	int rc;

	(void)state;
	build_full(&b, 1);
	write_stream(&b);
	for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		reset_dest();
		rc = run_child_with_fault(faults[i]);
		assert_int_not_equal(rc, 0);
		if (strstr(faults[i], "ENOSPC") != NULL)
			assert_int_equal(rc, AS_E_NOSPACE);
		assert_int_equal(count_entries(dest), 0);
		assert_no_stage();
	}
	buf_release(&b);
}

/* A stream of ndirs directories of nfiles empty files each, long names. */
#define BIG_DIRS	40
#define BIG_FILES	100
#define BIG_NAME	"file-with-a-name-long-enough-to-fill-the-journal-"

static void
build_big(struct buf *out, uint64_t base, uint64_t guid)
{
	struct stream_enc e;
	struct as_begin b = mkbegin(base, guid, base == 0 ? "big" : "big2");
	struct as_entry x;
	char p[128];
	int i, j;

	stream_enc_init(&e, out);
	stream_enc_begin(&e, &b);
	if (base == 0) {
		x = ent(AS_OP_ATTR, S_IFDIR | 0755, "", NULL);
		stream_enc_entry(&e, &x);
		for (i = 0; i < BIG_DIRS; i++) {
			snprintf(p, sizeof(p), "d%02d", i);
			x = ent(AS_OP_CREATE, S_IFDIR | 0755, p, NULL);
			stream_enc_entry(&e, &x);
			for (j = 0; j < BIG_FILES; j++) {
				snprintf(p, sizeof(p), "d%02d/" BIG_NAME
				    "%03d", i, j);
				x = ent(AS_OP_CREATE, S_IFREG | 0644, p,
				    NULL);
				stream_enc_entry(&e, &x);
			}
		}
	} else {
		/* renames, deletes and creates: the derive's cases */
		x = ent(AS_OP_RENAME, S_IFDIR | 0755, "a00", "d05");
		stream_enc_entry(&e, &x);
		x = ent(AS_OP_DELETE, S_IFREG, "d07/" BIG_NAME "003", NULL);
		stream_enc_entry(&e, &x);
		x = ent(AS_OP_RENAME, S_IFREG | 0600, "d08/moved",
		    "d09/" BIG_NAME "001");
		stream_enc_entry(&e, &x);
		x = ent(AS_OP_CREATE, S_IFREG | 0640, "d39/new", NULL);
		stream_enc_entry(&e, &x);
	}
	stream_enc_end(&e);
}

/* held.cat must be what a scan of the tree finds (NOHASH, as recorded). */
static void
assert_held_is_tree(void)
{
	struct catalog h, c;
	struct dir_stats st;
	struct as_err err;
	struct stat sb;
	char p[700];
	uint8_t *data;
	size_t i;
	int fd;

	at(p, sizeof(p), ".autosync/held.cat");
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	data = malloc((size_t)sb.st_size);
	assert_non_null(data);
	assert_int_equal(read(fd, data, (size_t)sb.st_size), sb.st_size);
	close(fd);
	catalog_init(&h);
	if (catalog_decode(&h, data, (size_t)sb.st_size, &err) == -1)
		fail_msg("held.cat: %s", err.msg);
	free(data);
	catalog_init(&c);
	memset(&st, 0, sizeof(st));
	assert_int_equal(dir_scan(dest, NULL, AS_BLOCK_DEFAULT,
	    DIR_SCAN_NOHASH, &c, &st, &err), 0);
	assert_int_equal(h.n, c.n);
	for (i = 0; i < c.n; i++) {
		assert_string_equal(catalog_path(&h, &h.ents[i]),
		    catalog_path(&c, &c.ents[i]));
		assert_int_equal(h.ents[i].ino, c.ents[i].ino);
		assert_int_equal(h.ents[i].mode, c.ents[i].mode);
		assert_int_equal(h.ents[i].size, c.ents[i].size);
		assert_int_equal(h.ents[i].nlink, c.ents[i].nlink);
		assert_int_equal(h.ents[i].mtime_sec, c.ents[i].mtime_sec);
		assert_int_equal(h.ents[i].mtime_nsec, c.ents[i].mtime_nsec);
		assert_int_equal(h.ents[i].ctime_sec, c.ents[i].ctime_sec);
		assert_int_equal(h.ents[i].ctime_nsec, c.ents[i].ctime_nsec);
		assert_int_equal(h.ents[i].xattr_len, c.ents[i].xattr_len);
		assert_int_equal(h.ents[i].uid, c.ents[i].uid);
		assert_int_equal(h.ents[i].gid, c.ents[i].gid);
		assert_int_equal(h.ents[i].rdev, c.ents[i].rdev);
		assert_int_equal(h.ents[i].aux_len, c.ents[i].aux_len);
		assert_memory_equal(catalog_xattrs(&h, &h.ents[i]),
		    catalog_xattrs(&c, &c.ents[i]), c.ents[i].xattr_len);
	}
	catalog_release(&h);
	catalog_release(&c);
}

/*
 * A tree big enough that the journal (several RCV_READ_CHUNK pieces) and
 * held.cat (several CAT_ENCODE_CHUNK pieces) are written as they are
 * encoded: held.cat after a full receive (rescan) and after an
 * incremental (derived from held.cat and the ops) describes the tree
 * exactly.
 */
/*
 * A file that changed while it was read is sent again (AS_EF_RETRY): the
 * second entry's mode, size, times and data replace the first's, and the
 * first's xattrs go with it.
 */
static void
test_retry(void **state)
{
	struct buf b = BUF_INIT;
	struct stream_enc e;
	struct as_begin bg = mkbegin(0, 9, "retry");
	struct as_entry x;
	struct as_xattr xa = { .name = "user.k", .name_len = 6,
	    .value = (const uint8_t *)"val", .value_len = 3 };
	struct as_err err;
	struct stat sb;
	char p[700], v[16];
	int fd;

	(void)state;
	reset_dest();
	stream_enc_init(&e, &b);
	stream_enc_begin(&e, &bg);
	x = ent(AS_OP_ATTR, S_IFDIR | 0755, "", NULL);
	stream_enc_entry(&e, &x);
	x = ent(AS_OP_CREATE, S_IFREG | 0644, "f", NULL);
	x.flags = AS_EF_XATTRS;
	x.nxattr = 1;
	x.size = 5;
	stream_enc_entry(&e, &x);
	stream_enc_xattr(&e, &xa);
	stream_enc_data(&e, 0, "hello", 5);
	x = ent(AS_OP_CREATE, S_IFREG | 0600, "f", NULL);
	x.flags = AS_EF_RETRY;
	x.size = 3;
	x.mtime_sec = 1600000000;
	stream_enc_entry(&e, &x);
	stream_enc_data(&e, 0, "abc", 3);
	x = ent(AS_OP_CREATE, S_IFREG | 0640, "g", NULL);
	stream_enc_entry(&e, &x);
	stream_enc_end(&e);
	if (recv_buf(&b, 0, &err) != 0)
		fail_msg("receive: %s", err.msg);
	at(p, sizeof(p), "f");
	assert_int_equal(lstat(p, &sb), 0);
	assert_int_equal(sb.st_mode, S_IFREG | 0600);
	assert_int_equal(sb.st_size, 3);
	assert_int_equal(sb.st_mtim.tv_sec, 1600000000);
	assert_int_equal(sb.st_mtim.tv_nsec, 123456789);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, v, sizeof(v)), 3);
	assert_memory_equal(v, "abc", 3);
	close(fd);
	assert_int_equal(getxattr(p, "user.k", v, sizeof(v)), -1);
	at(p, sizeof(p), "g");
	assert_int_equal(lstat(p, &sb), 0);
	assert_int_equal(sb.st_mode, S_IFREG | 0640);
	buf_release(&b);
}

static void
test_big_streamed(void **state)
{
	struct buf b = BUF_INIT;
	struct dir_recv_result res;
	struct as_err err;
	struct stat sb;
	char p[700];

	(void)state;
	reset_dest();
	build_big(&b, 0, 1);
	if (recv_buf(&b, 0, &err) != 0)
		fail_msg("full: %s", err.msg);
	assert_held_is_tree();
	buf_reset(&b);
	build_big(&b, 1, 2);
	if (recv_bytes(b.data, b.len, 0, &err, &res) != 0)
		fail_msg("incremental: %s", err.msg);
	assert_held_is_tree();
	at(p, sizeof(p), "a00/" BIG_NAME "042");
	assert_int_equal(lstat(p, &sb), 0);
	buf_release(&b);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_every_type),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_symlink_then_write),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_base_mismatch),
		cmocka_unit_test(test_drift_and_force),
		cmocka_unit_test(test_busy),
		cmocka_unit_test(test_bad_semantics),
		cmocka_unit_test(test_recover_forward),
		cmocka_unit_test(test_sync_fault_retried),
		cmocka_unit_test(test_fail_before_commit),
		cmocka_unit_test(test_big_streamed),
		cmocka_unit_test(test_retry),
	};

	if (argc == 4 && strcmp(argv[1], "child") == 0)
		return child_receive(argv[2], argv[3]);

	return cmocka_run_group_tests(tests, setup, teardown);
}
