/*
 * progress.h - transfer progress for a terminal or for scripts.
 *
 * The caller feeds the byte counter and the time; this module decides
 * when to draw:
 *
 *	PROGRESS_TTY	one line on the output fd (stderr), redrawn in place
 *			("\r...\033[K") at most 4 times a second:
 *			"  1.25 GiB  45.3 MiB/s  31%  ETA 0:01:23"
 *			(percent and ETA only when the total is known;
 *			"ETA 0:00:00"-style h:mm:ss, days as "2d03h").
 *			progress_finish() draws the final line and a newline.
 *	PROGRESS_JSON	one JSON object per line, at most once a second, and
 *			one at the end with "done":true:
 *			{"bytes":N,"total":N|null,"rate":N,"percent":F|null,
 *			 "eta":S|null,"elapsed":S,"done":false}
 *			(rate in bytes/s, eta and elapsed in seconds).
 *	PROGRESS_NONE	nothing (not a terminal and no --progress=json).
 *
 * The rate is a moving average over about the last 5 s (exponential, per
 * sample), so it follows a limit change quickly; the ETA derives from it.
 * progress_format() is pure (no clock, no I/O) for unit tests.  Writes use
 * write(2) and ignore errors: progress never fails a transfer.
 */
#ifndef AS_PROGRESS_H
#define AS_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

enum progress_mode {
	PROGRESS_NONE = 0,
	PROGRESS_TTY,
	PROGRESS_JSON,
};

#define PROGRESS_TTY_INTERVAL_NS	250000000ull
#define PROGRESS_JSON_INTERVAL_NS	1000000000ull

struct progress {
	enum progress_mode mode;
	int		fd;		/* where to write (2) */
	uint64_t	total;		/* bytes expected; 0: unknown */
	uint64_t	start_ns;
	uint64_t	last_draw_ns;	/* 0: never drawn */
	uint64_t	sample_ns;	/* last rate sample */
	uint64_t	sample_bytes;
	double		rate;		/* bytes/s, smoothed */
	uint64_t	bytes;		/* last value seen */
	int		drawn;		/* a TTY line is on screen */
};

/*
 * Mode from the --progress option value: "auto" (or NULL) gives TTY when
 * fd is a terminal, else NONE; "json" gives JSON; "none"/"no" NONE; "tty"
 * forces TTY.  -1 for an unknown word.
 */
int	progress_mode_parse(const char *s, int fd, enum progress_mode *mode);
void	progress_init(struct progress *p, enum progress_mode mode, int fd,
	    uint64_t total, uint64_t now_ns);
/* A total learned later (0: unknown). */
void	progress_set_total(struct progress *p, uint64_t total);
/* New counter value; draws when due. */
void	progress_update(struct progress *p, uint64_t bytes, uint64_t now_ns);
/* Final line (TTY: with a newline; JSON: "done":true). */
void	progress_finish(struct progress *p, uint64_t bytes, uint64_t now_ns);
/* Erase a TTY line before someone else prints (a warning). */
void	progress_clear(struct progress *p);

/*
 * Format the line (TTY, without "\r" and erase) or the JSON object
 * (without the newline) for p's state at bytes/now_ns into out; returns
 * out.  Pure: p is not changed.  done marks the final JSON object.
 */
const char *progress_format(const struct progress *p, uint64_t bytes,
	    uint64_t now_ns, int done, char *out, size_t outsz);
/* "1.25 GiB", "512 B", "45.3 MiB" into out. */
const char *progress_fmt_bytes(uint64_t n, char *out, size_t outsz);

#endif
