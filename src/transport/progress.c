/* progress.c - transfer progress on a terminal or as JSON; see progress.h. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "transport/progress.h"
#include "base/banned.h"

#define NS	1000000000ull
#define RATE_TAU_S	5.0

int
progress_mode_parse(const char *s, int fd, enum progress_mode *mode)
{
	if (s == NULL || strcmp(s, "auto") == 0)
		*mode = isatty(fd) ? PROGRESS_TTY : PROGRESS_NONE;
	else if (strcmp(s, "json") == 0)
		*mode = PROGRESS_JSON;
	else if (strcmp(s, "tty") == 0 || strcmp(s, "yes") == 0)
		*mode = PROGRESS_TTY;
	else if (strcmp(s, "none") == 0 || strcmp(s, "no") == 0)
		*mode = PROGRESS_NONE;
	else
		return -1;
	return 0;
}

void
progress_init(struct progress *p, enum progress_mode mode, int fd,
    uint64_t total, uint64_t now_ns)
{
	memset(p, 0, sizeof(*p));
	p->mode = mode;
	p->fd = fd;
	p->total = total;
	p->start_ns = now_ns;
	p->sample_ns = now_ns;
}

void
progress_set_total(struct progress *p, uint64_t total)
{
	p->total = total;
}

const char *
progress_fmt_bytes(uint64_t n, char *out, size_t outsz)
{
	static const char *unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB",
	    "EiB" };
	double v = (double)n;
	int i = -1;

	if (n < 1024) {
		snprintf(out, outsz, "%llu B", (unsigned long long)n);
		return out;
	}
	while (v >= 1024.0 && i < 5) {
		v /= 1024.0;
		i++;
	}
	snprintf(out, outsz, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" :
	    "%.0f %s", v, unit[i]);
	return out;
}

static void
fmt_duration(uint64_t s, char *out, size_t outsz)
{
	if (s >= 86400)
		snprintf(out, outsz, "%llud%02lluh",
		    (unsigned long long)(s / 86400),
		    (unsigned long long)(s % 86400 / 3600));
	else
		snprintf(out, outsz, "%llu:%02llu:%02llu",
		    (unsigned long long)(s / 3600),
		    (unsigned long long)(s % 3600 / 60),
		    (unsigned long long)(s % 60));
}

/* The rate to show: smoothed, or the plain average early on. */
static double
shown_rate(const struct progress *p, uint64_t bytes, uint64_t now_ns)
{
	double el;

	if (p->rate > 0)
		return p->rate;
	if (now_ns <= p->start_ns)
		return 0;
	el = (double)(now_ns - p->start_ns) / (double)NS;
	return el > 0 ? (double)bytes / el : 0;
}

const char *
progress_format(const struct progress *p, uint64_t bytes, uint64_t now_ns,
    int done, char *out, size_t outsz)
{
	char b[32], r[32], eta[32];
	double rate, pct = -1, elapsed;
	uint64_t left;
	long long etas = -1;

	rate = shown_rate(p, bytes, now_ns);
	elapsed = now_ns > p->start_ns ?
	    (double)(now_ns - p->start_ns) / (double)NS : 0;
	if (p->total > 0) {
		pct = 100.0 * (double)bytes / (double)p->total;
		if (pct > 100)
			pct = 100;
		left = bytes < p->total ? p->total - bytes : 0;
		if (left == 0)
			etas = 0;
		else if (rate >= 1)
			etas = (long long)((double)left / rate + 0.5);
	}
	if (p->mode == PROGRESS_JSON) {
		char tot[32] = "null", pc[32] = "null", et[32] = "null";

		if (p->total > 0) {
			snprintf(tot, sizeof(tot), "%llu",
			    (unsigned long long)p->total);
			snprintf(pc, sizeof(pc), "%.1f", pct);
		}
		if (etas >= 0 && !done)
			snprintf(et, sizeof(et), "%lld", etas);
		else if (done)
			snprintf(et, sizeof(et), "0");
		snprintf(out, outsz, "{\"bytes\":%llu,\"total\":%s,"
		    "\"rate\":%llu,\"percent\":%s,\"eta\":%s,"
		    "\"elapsed\":%.1f,\"done\":%s}",
		    (unsigned long long)bytes, tot,
		    (unsigned long long)(rate + 0.5), pc, et, elapsed,
		    done ? "true" : "false");
		return out;
	}
	progress_fmt_bytes(bytes, b, sizeof(b));
	progress_fmt_bytes((uint64_t)(rate + 0.5), r, sizeof(r));
	if (done) {
		fmt_duration((uint64_t)(elapsed + 0.5), eta, sizeof(eta));
		if (p->total > 0)
			snprintf(out, outsz, "%10s  %10s/s  %3.0f%%  in %s",
			    b, r, pct, eta);
		else
			snprintf(out, outsz, "%10s  %10s/s  in %s", b, r, eta);
	} else if (p->total > 0) {
		if (etas >= 0)
			fmt_duration((uint64_t)etas, eta, sizeof(eta));
		else
			snprintf(eta, sizeof(eta), "--:--:--");
		snprintf(out, outsz, "%10s  %10s/s  %3.0f%%  ETA %s",
		    b, r, pct, eta);
	} else
		snprintf(out, outsz, "%10s  %10s/s", b, r);
	return out;
}

static void
sample(struct progress *p, uint64_t bytes, uint64_t now_ns)
{
	double dt, inst, a;

	if (now_ns <= p->sample_ns || bytes < p->sample_bytes)
		return;
	dt = (double)(now_ns - p->sample_ns) / (double)NS;
	if (dt < 0.2)
		return;
	inst = (double)(bytes - p->sample_bytes) / dt;
	a = dt / RATE_TAU_S;
	if (a > 1)
		a = 1;
	p->rate = p->rate == 0 ? inst : p->rate + a * (inst - p->rate);
	p->sample_ns = now_ns;
	p->sample_bytes = bytes;
}

static void
emit(struct progress *p, uint64_t bytes, uint64_t now_ns, int done)
{
	char line[256], out[300];
	int n;

	progress_format(p, bytes, now_ns, done, line, sizeof(line));
	if (p->mode == PROGRESS_TTY)
		n = snprintf(out, sizeof(out), "\r%s\033[K%s", line,
		    done ? "\n" : "");
	else
		n = snprintf(out, sizeof(out), "%s\n", line);
	if (n > 0 && (size_t)n < sizeof(out) &&
	    write(p->fd, out, (size_t)n) == -1) {
		/* progress never fails a transfer */
	}
	p->drawn = p->mode == PROGRESS_TTY && !done;
	p->last_draw_ns = now_ns;
}

void
progress_update(struct progress *p, uint64_t bytes, uint64_t now_ns)
{
	uint64_t every;

	p->bytes = bytes;
	if (p->mode == PROGRESS_NONE)
		return;
	sample(p, bytes, now_ns);
	every = p->mode == PROGRESS_TTY ? PROGRESS_TTY_INTERVAL_NS :
	    PROGRESS_JSON_INTERVAL_NS;
	if (p->last_draw_ns != 0 && now_ns - p->last_draw_ns < every)
		return;
	if (p->last_draw_ns == 0 && now_ns - p->start_ns < every)
		return;
	emit(p, bytes, now_ns, 0);
}

void
progress_finish(struct progress *p, uint64_t bytes, uint64_t now_ns)
{
	double el;

	p->bytes = bytes;
	if (p->mode == PROGRESS_NONE)
		return;
	/* The final line shows the average over the whole run. */
	el = now_ns > p->start_ns ?
	    (double)(now_ns - p->start_ns) / (double)NS : 0;
	p->rate = el > 0 ? (double)bytes / el : 0;
	emit(p, bytes, now_ns, 1);
}

void
progress_clear(struct progress *p)
{
	static const char clr[] = "\r\033[K";

	if (p->mode == PROGRESS_TTY && p->drawn) {
		if (write(p->fd, clr, sizeof(clr) - 1) == -1) {
			/* ignored */
		}
		p->drawn = 0;
	}
}
