/*
 * metrics.c - Prometheus text exposition of the services (metrics.h).
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/xmalloc.h"
#include "service/metrics.h"
#include "base/banned.h"

static void
addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
addf(struct buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n :
		    sizeof(tmp) - 1);
}

/* A label value: backslash, double quote and newline escaped. */
static void
label(struct buf *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			buf_add(b, "\\", 1);
		if (*v == '\n')
			buf_add(b, "\\n", 2);
		else
			buf_add(b, v, 1);
	}
}

static void
head(struct buf *b, const char *name, const char *type, const char *help)
{
	addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
sample(struct buf *b, const char *name, const char *svc, const char *lk,
    const char *lv, const char *value)
{
	addf(b, "%s{service=\"", name);
	label(b, svc);
	if (lk != NULL) {
		addf(b, "\",%s=\"", lk);
		label(b, lv);
	}
	addf(b, "\"} %s\n", value);
}

int
metrics_write(struct store *st, struct buf *out, struct as_err *err)
{
	static const enum svc_state states[] = { SVC_ONLINE, SVC_RUNNING,
	    SVC_DISABLED, SVC_MAINTENANCE, SVC_DONE };
	struct svc *v = NULL;
	size_t n = 0, i, k;
	char num[64];

	if (store_svc_list(st, &v, &n, err) == -1)
		return -1;
	head(out, "autosync_service_state", "gauge",
	    "1 for the state the service is in, 0 for the others");
	for (i = 0; i < n; i++)
		for (k = 0; k < sizeof(states) / sizeof(states[0]); k++)
			sample(out, "autosync_service_state", v[i].name,
			    "state", svc_state_name(states[k]),
			    v[i].state == states[k] ? "1" : "0");
	head(out, "autosync_last_success_timestamp_seconds", "gauge",
	    "end of the last good run, seconds since the epoch");
	for (i = 0; i < n; i++)
		if (v[i].last_success >= 0) {
			snprintf(num, sizeof(num), "%.3f",
			    (double)v[i].last_success / 1e3);
			sample(out, "autosync_last_success_timestamp_seconds",
			    v[i].name, NULL, NULL, num);
		}
	head(out, "autosync_last_run_duration_seconds", "gauge",
	    "how long the last run took (last_replic_time)");
	for (i = 0; i < n; i++)
		if (v[i].last_start >= 0 && v[i].last_end >= v[i].last_start) {
			snprintf(num, sizeof(num), "%.3f",
			    (double)(v[i].last_end - v[i].last_start) / 1e3);
			sample(out, "autosync_last_run_duration_seconds",
			    v[i].name, NULL, NULL, num);
		}
	head(out, "autosync_last_run_bytes", "gauge",
	    "bytes sent by the last run");
	for (i = 0; i < n; i++) {
		snprintf(num, sizeof(num), "%" PRIu64, v[i].bytes_sent);
		sample(out, "autosync_last_run_bytes", v[i].name, NULL, NULL,
		    num);
	}
	head(out, "autosync_next_run_timestamp_seconds", "gauge",
	    "when the next run is planned, seconds since the epoch");
	for (i = 0; i < n; i++)
		if (v[i].next_run >= 0) {
			snprintf(num, sizeof(num), "%.3f",
			    (double)v[i].next_run / 1e3);
			sample(out, "autosync_next_run_timestamp_seconds",
			    v[i].name, NULL, NULL, num);
		}
	head(out, "autosync_runs_total", "counter",
	    "runs that ended, by outcome");
	for (i = 0; i < n; i++) {
		snprintf(num, sizeof(num), "%" PRIu64, v[i].successes);
		sample(out, "autosync_runs_total", v[i].name, "outcome", "ok",
		    num);
		snprintf(num, sizeof(num), "%" PRIu64, v[i].failures);
		sample(out, "autosync_runs_total", v[i].name, "outcome",
		    "failed", num);
	}
	head(out, "autosync_consecutive_failures", "gauge",
	    "failed runs since the last good one");
	for (i = 0; i < n; i++) {
		snprintf(num, sizeof(num), "%" PRIu64, v[i].consecutive);
		sample(out, "autosync_consecutive_failures", v[i].name, NULL,
		    NULL, num);
	}
	svc_list_free(v, n);
	return 0;
}

int
metrics_listen(const char *spec, struct as_err *err)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	const char *port = spec, *colon;
	char host[64];
	socklen_t len;
	unsigned long p;
	char *end;
	int fd, one = 1, six = 0;

	memset(&ss, 0, sizeof(ss));
	snprintf(host, sizeof(host), "127.0.0.1");
	if ((colon = strrchr(spec, ':')) != NULL) {
		port = colon + 1;
		if ((size_t)(colon - spec) >= sizeof(host))
			goto bad;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
	}
	errno = 0;
	p = strtoul(port, &end, 10);
	if (port[0] < '0' || port[0] > '9' || *end != '\0' || errno != 0 ||
	    p == 0 || p > 65535)
		goto bad;
	if (strcmp(host, "localhost") == 0 || strcmp(host, "127.0.0.1") == 0) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*s4);
	} else if (strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		s6->sin6_addr = in6addr_loopback;
		len = sizeof(*s6);
		six = 1;
	} else
		goto bad;
	fd = socket(six ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1)
		return as_err_sys(err, errno, "metrics socket");
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, 16) == -1) {
		as_err_sys(err, errno, "metrics: listen on '%s'", spec);
		close(fd);
		return -1;
	}
	return fd;
bad:
	return as_err_set(err, AS_E_USAGE, 0, "metrics: '%s': expected PORT "
	    "or a loopback address and port (127.0.0.1:PORT, [::1]:PORT, "
	    "localhost:PORT)", spec);
}
