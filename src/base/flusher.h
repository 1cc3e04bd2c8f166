/*
 * flusher.h - write a file system's dirty data back while a long write
 * goes on, so that the commit at its end finds little left.
 *
 * A native receive (`btrfs receive`) writes a whole stream into the page
 * cache; the kernel starts writing it back only after 30 s or at a
 * tenth of RAM, so on a run of a few seconds all of it is left to the
 * commit that makes it durable before it is published, which then
 * costs as long as the write-back of everything, with nothing else
 * going on.  A syncfs every half second from a thread overlaps that
 * write-back with the transfer: measured on RAM-backed btrfs images, 1
 * GiB full, pipe + commit 3.2-3.7 s with it against 3.7-3.8 s without
 * (bench/README.md, session 8).  The flusher is best effort: a syncfs
 * that fails is not reported (the commit that follows is the one that
 * counts), and a thread that cannot be made means no flusher.
 */
#ifndef AS_FLUSHER_H
#define AS_FLUSHER_H

#include <pthread.h>

struct flusher {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	pthread_t	 th;
	int		 fd;		/* a directory on the file system */
	int		 every_ms;
	int		 stop;
	int		 running;
	unsigned	 rounds;	/* syncfs calls made */
};

/* Start flushing the file system dir is on, every every_ms. */
void	flusher_start(struct flusher *f, const char *dir, int every_ms);

/*
 * Stop (waiting for a syncfs under way) and release; a flusher that
 * never started, or is already stopped, is left as it is.
 */
void	flusher_stop(struct flusher *f);

#endif
