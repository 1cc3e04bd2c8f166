/*
 * tcp.h - TCP listener and client sockets for the tcp:// and tls:// paths.
 *
 * Addresses are "host:port", "[v6addr]:port" or ":port" (all addresses);
 * host names are resolved with getaddrinfo.  Every descriptor is
 * O_CLOEXEC.  Sockets are tuned for bulk transfer: Nagle stays on
 * (TCP_NODELAY off: frames are written whole, so coalescing helps), and
 * the send and receive buffers are raised to TCP_BUFSZ (the kernel clamps
 * them to net.core.wmem_max/rmem_max).
 *
 * The peer string of a conn is "addr:port" ("[::1]:7010" for IPv6).
 */
#ifndef AS_TCP_H
#define AS_TCP_H

#include <stddef.h>

#include "base/err.h"
#include "transport/conn.h"

#define TCP_BUFSZ		(4 << 20)
#define TCP_CONNECT_TIMEOUT_MS	10000

/*
 * Split "host:port", "[v6]:port" or ":port" into host (maybe "") and port.
 * 0, or -1 with USAGE ("bad address 'X': expected host:port").
 */
int	tcp_split_hostport(const char *s, char *host, size_t hostsz,
	    char *port, size_t portsz, struct as_err *err);

/*
 * Listen on "host:port" (SO_REUSEADDR, backlog 128, non-blocking,
 * CLOEXEC).  An empty host listens on all addresses (IPv6 with v4-mapped
 * when available).  Port 0 picks a free port: see tcp_local_port().
 * Returns the descriptor, or -1.
 */
int	tcp_listen(const char *hostport, struct as_err *err);
/* Local port a socket is bound to, or -1. */
int	tcp_local_port(int fd);

/*
 * Accept one connection on a listening descriptor, waiting at most
 * timeout_ms (< 0: forever; 0: do not wait: TIMEOUT when none is queued).
 * tcp_accept_fd returns the tuned socket (blocking mode untouched: the
 * caller wraps it) and fills peer ("addr:port"); tcp_accept wraps it in a
 * "tcp" conn (idle_ms = CONN_IDLE_DEFAULT_MS).
 * EINTR, ECONNABORTED and friends give TIMEOUT-class -1 with errno kept in
 * err->sys_errno, so a poll loop can simply try again.
 */
int	tcp_accept_fd(int lfd, int timeout_ms, char *peer, size_t peersz,
	    struct as_err *err);
struct conn *tcp_accept(int lfd, int timeout_ms, struct as_err *err);

/*
 * Connect to host:port (port a number or service name), trying every
 * address getaddrinfo returns until one connects; each attempt and the
 * whole call are bounded by timeout_ms (<= 0: TCP_CONNECT_TIMEOUT_MS).
 * Errors: TIMEOUT, IO ("connect to 'host:port': Connection refused"),
 * NOTFOUND for a name that does not resolve.  A host starting with '-'
 * is refused (USAGE).
 */
int	tcp_connect_fd(const char *host, const char *port, int timeout_ms,
	    char *peer, size_t peersz, struct as_err *err);
struct conn *tcp_connect(const char *host, const char *port, int timeout_ms,
	    struct as_err *err);

/* Wrap a connected socket (ownership taken) in a "tcp" conn. */
struct conn *tcp_conn_from_fd(int fd, const char *peer);

#endif
