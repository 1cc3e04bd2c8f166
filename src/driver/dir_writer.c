/*
 * dir_writer.c - the receiver's writer thread (dir_writer.h).
 *
 * Decisions:
 * - One ring of bytes, items laid out one after another (a header, the
 *   path, then data or xattrs), each a multiple of DW_ALIGN so that a
 *   wrap marker always fits before the end.  The receiving thread copies
 *   a DATA record in once (the decoder's buffer is reused for the next
 *   record); the writer pwrite()s from the ring.  A record larger than a
 *   piece goes in pieces, so that the ring stays small (it counts in
 *   the receiver's resident size, which issue 2 bounds per entry).
 * - A close whose xattrs do not fit in the ring (rare: big ACLs or many
 *   values) waits for the queue to empty and is done by the caller's
 *   thread; the order of the file's jobs is the same.
 * - The first error stops the work, not the queue: later items are
 *   dropped (their descriptors closed), and every later call returns
 *   that error, so the receive fails as it did when the write failed in
 *   place, with the same message.
 * - Only the receiving thread calls in: one producer, one consumer, so
 *   head and tail are atomics and an item takes no lock; a side that
 *   runs dry sleeps, and is woken once a batch is ready (struct
 *   dir_writer).
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "base/xmalloc.h"
#include "driver/dir_journal.h"
#include "driver/dir_writer.h"
#include "base/banned.h"

#define DW_ALIGN	64u
#define DW_BATCH_BYTES	(256u << 10)	/* wake an idle writer at ... */
#define DW_BATCH_FILES	16		/* ... or at this many closes */

enum { DW_WRAP = 1, DW_DATA, DW_CLOSE };

struct dw_item {
	uint32_t	kind;
	uint32_t	size;		/* bytes of the item, DW_ALIGN'ed */
	int		fd;
	uint32_t	path_len;	/* path follows the header */
	uint64_t	off;		/* DATA: file offset */
	uint64_t	len;		/* DATA: bytes; CLOSE: xattr bytes */
	/* CLOSE */
	uint64_t	size_;
	uint64_t	end;
	int64_t		mtime_sec;
	uint32_t	mtime_nsec;
	uint32_t	mode;
	uint32_t	uid;
	uint32_t	gid;
	uint32_t	full_set;
	struct dw_stat	*out;
};

struct dir_writer {
	pthread_t	 thr;
	uint8_t		*ring;
	/*
	 * One producer (the receiving thread) and one consumer (the
	 * writer): head, tail, files and failed are atomics, so that an
	 * item costs no lock.  The lock and the conditions are only for
	 * sleeping: a side sets its *_waits flag under the lock and checks
	 * again before it waits; the other side reads the flag after it
	 * moved head or tail (sequentially consistent, so one of the two
	 * sees the other) and wakes it under the lock.
	 */
	uint64_t	 head;		/* bytes queued (receiver) */
	uint64_t	 tail;		/* bytes done (writer) */
	unsigned	 files;		/* closes queued, not done */
	int		 failed;	/* err is set (writer, once) */
	struct as_err	 err;		/* the first error */
	pthread_mutex_t	 mu;
	pthread_cond_t	 work;		/* the writer waits for items */
	pthread_cond_t	 room;		/* the receiver waits for room */
	int		 w_waits;
	int		 r_waits;
	int		 stop;		/* under mu */
	int		 kick;		/* start each file's write-back */
};

int
dir_writer_wanted(void)
{
	const char *e = getenv("AUTOSYNC_RECV_THREAD");

	return e == NULL || strcmp(e, "0") != 0;
}

/* Fill m->out from fd, once meta_apply is done (dw_stat). */
static void
closed_stat(int fd, const struct dw_meta *m)
{
	struct stat sb;

	m->out->ino = 0;
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sb.st_nlink != 1 || (sb.st_mode & 07777) != (m->mode & 07777) ||
	    sb.st_uid != m->uid || sb.st_gid != m->gid ||
	    (uint64_t)sb.st_size != m->size ||
	    sb.st_mtim.tv_sec != m->mtime_sec ||
	    (uint32_t)sb.st_mtim.tv_nsec != m->mtime_nsec)
		return;
	/* none from the stream, and none the file system added (an ACL) */
	if (m->xattr_len != 0 || flistxattr(fd, NULL, 0) != 0)
		return;
	m->out->ctime_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000 +
	    sb.st_ctim.tv_nsec;
	m->out->ino = (uint64_t)sb.st_ino;
}

int
dir_writer_finish_fd(int fd, const struct dw_meta *m, int kick,
    struct as_err *err)
{
	struct stat now, *nowp = NULL;
	int rc;

	/* a trailing hole (or a file of holes): set the size */
	if (m->end < m->size && ftruncate(fd, (off_t)m->size) == -1) {
		rc = as_err_sys(err, errno, "stage '%s'", m->path);
		close(fd);
		return rc;
	}
	/*
	 * Created by us just now: one fstat tells which of owner and mode
	 * are already right (the usual case for a backup made as the files'
	 * owner), which saves a chown and a chmod that each dirty the inode.
	 */
	if (fstat(fd, &now) == 0)
		nowp = &now;
	rc = meta_apply(fd, 1, nowp, S_IFREG, m->uid, m->gid, m->mode,
	    m->mtime_sec, m->mtime_nsec, m->xattrs, m->xattr_len,
	    m->full_set, m->path, err);
	/*
	 * The file as the apply will leave it (it is renamed only with a
	 * directory above it): what held.cat needs without a rescan.
	 */
	if (rc == 0 && m->out != NULL)
		closed_stat(fd, m);
	/*
	 * $AUTOSYNC_RECV_KICK=1: start its write-back now, from this
	 * thread, so that the receive's syncfs (checkpoints, the commit)
	 * finds little left to write.  Not by default: it moves the
	 * write-back's CPU from the kernel's flusher into this thread, which
	 * measured slower on a busy 2-CPU machine (bench/README.md, branch
	 * fullperf).  Nothing depends on it: the syncfs makes it durable.
	 */
	if (rc == 0 && kick)
		(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	close(fd);
	return rc;
}

/* Do one item (lock not held); errors go to w->err, once. */
static void
do_item(struct dir_writer *w, const struct dw_item *it)
{
	const char *path = (const char *)(it + 1);
	const uint8_t *body = (const uint8_t *)path + it->path_len + 1;
	struct dw_meta m;
	struct as_err e;
	int failed, x;

	failed = __atomic_load_n(&w->failed, __ATOMIC_ACQUIRE);
	as_err_clear(&e);
	if (it->kind == DW_DATA) {
		if (failed)
			return;
		/* a fault site only this thread reaches (tests: t2011) */
		if ((x = io_fault("recv_wdata")) == 0 &&
		    io_pwrite_full(it->fd, body, (size_t)it->len,
		    (off_t)it->off) == 0)
			return;
		as_err_sys(&e, x != 0 ? x : errno, "stage '%s'", path);
	} else {
		if (failed) {
			close(it->fd);
			return;
		}
		memset(&m, 0, sizeof(m));
		m.size = it->size_;
		m.end = it->end;
		m.mtime_sec = it->mtime_sec;
		m.mtime_nsec = it->mtime_nsec;
		m.mode = it->mode;
		m.uid = it->uid;
		m.gid = it->gid;
		m.full_set = (int)it->full_set;
		m.xattrs = body;
		m.xattr_len = (size_t)it->len;
		m.path = path;
		m.out = it->out;
		if (dir_writer_finish_fd(it->fd, &m, w->kick, &e) == 0)
			return;
	}
	/* only this thread sets it: the first error stays */
	w->err = e;
	__atomic_store_n(&w->failed, 1, __ATOMIC_RELEASE);
}

#define LOAD(p)		__atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

/* Wake whoever waits on c, if its flag says so. */
static void
wake(struct dir_writer *w, int *waits, pthread_cond_t *c)
{
	if (!LOAD(waits))
		return;
	pthread_mutex_lock(&w->mu);
	pthread_cond_signal(c);
	pthread_mutex_unlock(&w->mu);
}

/*
 * A receiver waiting for room is woken once the queue is down to half
 * (or empty), not at every item: it then fills it in one go.
 */
static int
low_water(struct dir_writer *w)
{
	uint64_t queued = LOAD(&w->head) - LOAD(&w->tail);

	return queued == 0 || (queued <= DW_RING / 2 &&
	    LOAD(&w->files) <= DW_MAX_FILES / 2);
}

static void *
writer_main(void *arg)
{
	struct dir_writer *w = arg;
	const struct dw_item *it;
	uint64_t head, tail;
	uint32_t size;
	int close_;

	tail = w->tail;
	for (;;) {
		head = LOAD(&w->head);
		if (head == tail) {
			pthread_mutex_lock(&w->mu);
			STORE(&w->w_waits, 1);
			while (LOAD(&w->head) == tail && !w->stop)
				pthread_cond_wait(&w->work, &w->mu);
			STORE(&w->w_waits, 0);
			head = LOAD(&w->head);
			pthread_mutex_unlock(&w->mu);
			if (head == tail)
				break;	/* stopped, and nothing left */
		}
		/* the items below head are ours until tail moves past them */
		while (tail != head) {
			it = (const struct dw_item *)(w->ring +
			    tail % DW_RING);
			size = it->size;
			close_ = it->kind == DW_CLOSE;
			if (it->kind != DW_WRAP)
				do_item(w, it);
			tail += size;
			if (close_)
				__atomic_sub_fetch(&w->files, 1,
				    __ATOMIC_SEQ_CST);
			STORE(&w->tail, tail);
			if (LOAD(&w->r_waits) && low_water(w))
				wake(w, &w->r_waits, &w->room);
		}
	}
	return NULL;
}

struct dir_writer *
dir_writer_new(struct as_err *err)
{
	struct dir_writer *w = xcalloc(1, sizeof(*w));
	const char *kick;
	sigset_t all, old;
	int e;

	w->ring = xmalloc(DW_RING);
	kick = getenv("AUTOSYNC_RECV_KICK");
	w->kick = kick != NULL && strcmp(kick, "1") == 0;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->room, NULL);
	/* signals are the receiving thread's to take */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&w->thr, NULL, writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->work);
		pthread_cond_destroy(&w->room);
		free(w->ring);
		free(w);
		as_err_sys(err, e, "start the writer thread");
		return NULL;
	}
	return w;
}

/* The first error, copied to err: -1; 0 if none. */
static int
failed_get(struct dir_writer *w, struct as_err *err)
{
	if (!__atomic_load_n(&w->failed, __ATOMIC_ACQUIRE))
		return 0;
	if (err != NULL)
		*err = w->err;
	return -1;
}

/*
 * Sleep until the writer has moved tail past seen and the queue is down
 * to its low water (it always gets there while items are queued, failed
 * or not); it is woken first, in case it sleeps on a batch not yet full.
 */
static void
wait_room(struct dir_writer *w, uint64_t seen)
{
	pthread_mutex_lock(&w->mu);
	STORE(&w->r_waits, 1);
	if (LOAD(&w->w_waits))
		pthread_cond_signal(&w->work);
	while (LOAD(&w->tail) == seen || !low_water(w))
		pthread_cond_wait(&w->room, &w->mu);
	STORE(&w->r_waits, 0);
	pthread_mutex_unlock(&w->mu);
}

/*
 * Room for an item of size bytes (and a file, with_file) at head: its
 * header, or NULL (-1 in *rc) when the writer failed.  Only the receiving
 * thread moves head, and the writer reads only below it, so the item is
 * filled without a lock and handed over by publish().
 */
static struct dw_item *
reserve(struct dir_writer *w, uint32_t size, int with_file, int *rc,
    struct as_err *err)
{
	uint64_t off, need, tail;
	struct dw_item *wrap;

	for (;;) {
		if (failed_get(w, err) == -1) {
			*rc = -1;
			return NULL;
		}
		tail = LOAD(&w->tail);
		off = w->head % DW_RING;
		need = size + (off + size > DW_RING ? DW_RING - off : 0);
		if (DW_RING - (w->head - tail) >= need &&
		    (!with_file || LOAD(&w->files) < DW_MAX_FILES))
			break;
		wait_room(w, tail);
	}
	if (off + size > DW_RING) {
		/* the writer skips to the ring's start */
		wrap = (struct dw_item *)(w->ring + off);
		memset(wrap, 0, sizeof(*wrap));
		wrap->kind = DW_WRAP;
		wrap->size = (uint32_t)(DW_RING - off);
		STORE(&w->head, w->head + (DW_RING - off));
		off = 0;
	}
	*rc = 0;
	return (struct dw_item *)(w->ring + off);
}

/*
 * The item at head is filled: hand it over.  An idle writer is woken
 * once a batch is queued, not per item (a wake-up and a switch per small
 * file cost more than the work); whoever waits for it wakes it first.
 */
static void
publish(struct dir_writer *w, uint32_t size, int with_file)
{
	if (with_file)
		__atomic_add_fetch(&w->files, 1, __ATOMIC_SEQ_CST);
	STORE(&w->head, w->head + size);
	if (w->head - LOAD(&w->tail) >= DW_BATCH_BYTES ||
	    LOAD(&w->files) >= DW_BATCH_FILES)
		wake(w, &w->w_waits, &w->work);
}

static uint32_t
item_size(size_t path_len, size_t body)
{
	size_t n = sizeof(struct dw_item) + path_len + 1 + body;

	return (uint32_t)((n + DW_ALIGN - 1) & ~(size_t)(DW_ALIGN - 1));
}

/* The header and path of a new item; returns where its body goes. */
static uint8_t *
item_fill(struct dw_item *it, uint32_t kind, uint32_t size, int fd,
    const char *path, size_t path_len)
{
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	it->size = size;
	it->fd = fd;
	it->path_len = (uint32_t)path_len;
	memcpy(it + 1, path, path_len);
	((char *)(it + 1))[path_len] = '\0';
	return (uint8_t *)(it + 1) + path_len + 1;
}

int
dir_writer_data(struct dir_writer *w, int fd, uint64_t off,
    const void *data, size_t len, const char *path, struct as_err *err)
{
	const uint8_t *p = data;
	struct dw_item *it;
	size_t n, plen = strlen(path);
	uint32_t size;
	int rc;

	while (len > 0) {
		n = len < DW_PIECE ? len : DW_PIECE;
		size = item_size(plen, n);
		if ((it = reserve(w, size, 0, &rc, err)) == NULL)
			return rc;
		memcpy(item_fill(it, DW_DATA, size, fd, path, plen), p, n);
		it->off = off;
		it->len = n;
		publish(w, size, 0);
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

int
dir_writer_close(struct dir_writer *w, int fd, const struct dw_meta *m,
    struct as_err *err)
{
	struct dw_item *it;
	size_t plen = strlen(m->path);
	uint32_t size;
	int rc;

	if (sizeof(struct dw_item) + plen + 1 + m->xattr_len > DW_RING / 4) {
		/* too big for the ring: in order, here */
		if (dir_writer_drain(w, err) == -1) {
			close(fd);
			return -1;
		}
		return dir_writer_finish_fd(fd, m, w->kick, err);
	}
	size = item_size(plen, m->xattr_len);
	if ((it = reserve(w, size, 1, &rc, err)) == NULL) {
		close(fd);
		return rc;
	}
	if (m->xattr_len > 0)
		memcpy(item_fill(it, DW_CLOSE, size, fd, m->path, plen),
		    m->xattrs, m->xattr_len);
	else
		(void)item_fill(it, DW_CLOSE, size, fd, m->path, plen);
	it->len = m->xattr_len;
	it->size_ = m->size;
	it->end = m->end;
	it->mtime_sec = m->mtime_sec;
	it->mtime_nsec = m->mtime_nsec;
	it->mode = m->mode;
	it->uid = m->uid;
	it->gid = m->gid;
	it->full_set = m->full_set != 0;
	it->out = m->out;
	publish(w, size, 1);
	return 0;
}

int
dir_writer_drain(struct dir_writer *w, struct as_err *err)
{
	uint64_t tail;

	while ((tail = LOAD(&w->tail)) != w->head)
		wait_room(w, tail);
	return failed_get(w, err);
}

void
dir_writer_free(struct dir_writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	/* the writer empties the queue (closing its descriptors), then ends */
	pthread_join(w->thr, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->room);
	free(w->ring);
	free(w);
}
