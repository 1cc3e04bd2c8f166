/*
 * metrics.h - the services' state in the Prometheus text exposition
 * format (version 0.0.4), for `autosync metrics` (a node_exporter
 * textfile, a cron job) and for the daemon's optional listener
 * (`autosync daemon --metrics [ADDR:]PORT`, loopback addresses only).
 *
 * Per service (label service="NAME"):
 *	autosync_service_state{state="..."}		1 for the current state
 *	autosync_last_success_timestamp_seconds	(absent: never)
 *	autosync_last_run_duration_seconds		(absent: never ran)
 *	autosync_last_run_bytes
 *	autosync_next_run_timestamp_seconds		(absent: none planned)
 *	autosync_runs_total{outcome="ok"|"failed"}	counters
 *	autosync_consecutive_failures
 */
#ifndef AS_METRICS_H
#define AS_METRICS_H

#include "base/buf.h"
#include "base/err.h"
#include "service/store.h"

#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

/* Append the exposition of every service in st to out. */
int	metrics_write(struct store *st, struct buf *out, struct as_err *err);

/*
 * Listen on a loopback address: "PORT" (127.0.0.1), "127.0.0.1:PORT",
 * "[::1]:PORT" or "localhost:PORT"; USAGE for anything else.  Returns
 * a non-blocking, close-on-exec descriptor.
 */
int	metrics_listen(const char *spec, struct as_err *err);

#endif
