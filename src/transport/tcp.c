/* tcp.c - TCP listener and client sockets; see tcp.h. */
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "transport/tcp.h"
#include "base/banned.h"

int
tcp_split_hostport(const char *s, char *host, size_t hostsz, char *port,
    size_t portsz, struct as_err *err)
{
	const char *colon, *h = s, *close_br;
	size_t hl;

	if (s == NULL)
		goto bad;
	if (*s == '[') {
		if ((close_br = strchr(s, ']')) == NULL || close_br[1] != ':')
			goto bad;
		h = s + 1;
		hl = (size_t)(close_br - h);
		colon = close_br + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			goto bad;
		if (memchr(s, ':', (size_t)(colon - s)) != NULL)
			goto bad;	/* bare IPv6 needs brackets */
		hl = (size_t)(colon - s);
	}
	if (hl >= hostsz || strlen(colon + 1) >= portsz || colon[1] == '\0')
		goto bad;
	if (strspn(colon + 1, "0123456789") != strlen(colon + 1))
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	memcpy(port, colon + 1, strlen(colon + 1) + 1);
	return 0;
bad:
	return as_err_set(err, AS_E_USAGE, 0, "bad address '%s': expected "
	    "host:port or [ipv6]:port", s != NULL ? s : "");
}

static void
tune(int fd)
{
	int v = TCP_BUFSZ, off = 0;

	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &off, sizeof(off));
	v = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v));
}

static void
fmt_peer(const struct sockaddr *sa, socklen_t len, char *out, size_t outsz)
{
	char h[NI_MAXHOST], p[NI_MAXSERV];
	const char *hp = h;

	if (getnameinfo(sa, len, h, sizeof(h), p, sizeof(p),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, outsz, "?");
		return;
	}
	if (sa->sa_family == AF_INET6) {
		if (strncmp(h, "::ffff:", 7) == 0 && strchr(h + 7, ':') == NULL)
			hp = h + 7;	/* v4-mapped */
		else {
			snprintf(out, outsz, "[%s]:%s", h, p);
			return;
		}
	}
	snprintf(out, outsz, "%s:%s", hp, p);
}

static int
listen_one(const struct addrinfo *ai, int *e)
{
	int fd, one = 1, zero = 0;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, ai->ai_protocol);
	if (fd == -1) {
		*e = errno;
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
		    sizeof(zero));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    listen(fd, 128) == -1) {
		*e = errno;
		close(fd);
		return -1;
	}
	return fd;
}

int
tcp_listen(const char *hostport, struct as_err *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256], port[16];
	int fd = -1, e = 0, r, pass;

	if (tcp_split_hostport(hostport, host, sizeof(host), port,
	    sizeof(port), err) == -1)
		return -1;
	/* An empty host: IPv6 any (dual stack) first, then IPv4 any. */
	for (pass = 0; pass < 2 && fd == -1; pass++) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
		hints.ai_family = host[0] != '\0' ? AF_UNSPEC :
		    pass == 0 ? AF_INET6 : AF_INET;
		if (host[0] != '\0' && pass > 0)
			break;
		r = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints,
		    &res);
		if (r != 0) {
			if (host[0] == '\0' && pass == 0)
				continue;
			return as_err_set(err, AS_E_NOTFOUND, 0, "listen on "
			    "'%s': %s", hostport, gai_strerror(r));
		}
		for (ai = res; ai != NULL && fd == -1; ai = ai->ai_next)
			fd = listen_one(ai, &e);
		freeaddrinfo(res);
	}
	if (fd == -1)
		return as_err_sys(err, e != 0 ? e : EADDRNOTAVAIL,
		    "listen on '%s'", hostport);
	return fd;
}

int
tcp_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

int
tcp_accept_fd(int lfd, int timeout_ms, char *peer, size_t peersz,
    struct as_err *err)
{
	struct sockaddr_storage ss;
	struct pollfd pfd;
	socklen_t len;
	int fd, r;

	pfd.fd = lfd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	r = poll(&pfd, 1, timeout_ms < 0 ? -1 : timeout_ms);
	if (r == -1)
		return as_err_set(err, AS_E_TIMEOUT, errno, "accept: "
		    "interrupted");
	if (r == 0)
		return as_err_set(err, AS_E_TIMEOUT, ETIMEDOUT, "accept: no "
		    "connection within %d ms", timeout_ms);
	len = sizeof(ss);
	fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
	if (fd == -1) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			return as_err_sys(err, errno, "accept");
		/* EAGAIN, EINTR, ECONNABORTED, EPROTO...: try again. */
		return as_err_set(err, AS_E_TIMEOUT, errno, "accept: %s",
		    strerror(errno));
	}
	tune(fd);
	fmt_peer((struct sockaddr *)&ss, len, peer, peersz);
	return fd;
}

struct conn *
tcp_accept(int lfd, int timeout_ms, struct as_err *err)
{
	char peer[128];
	int fd;

	if ((fd = tcp_accept_fd(lfd, timeout_ms, peer, sizeof(peer),
	    err)) == -1)
		return NULL;
	return conn_from_socket(fd, peer);
}

static int
connect_one(const struct addrinfo *ai, uint64_t deadline, int *e)
{
	struct pollfd pfd;
	socklen_t len;
	uint64_t now;
	int fd, r, soerr;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, ai->ai_protocol);
	if (fd == -1) {
		*e = errno;
		return -1;
	}
	tune(fd);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EINTR) {
		*e = errno;
		close(fd);
		return -1;
	}
	for (;;) {
		now = conn_now_ms();
		if (now >= deadline) {
			*e = ETIMEDOUT;
			close(fd);
			return -1;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		r = poll(&pfd, 1, (int)(deadline - now));
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			*e = r == 0 ? ETIMEDOUT : errno;
			close(fd);
			return -1;
		}
		break;
	}
	len = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		soerr = errno;
	if (soerr != 0) {
		*e = soerr;
		close(fd);
		return -1;
	}
	return fd;
}

int
tcp_connect_fd(const char *host, const char *port, int timeout_ms,
    char *peer, size_t peersz, struct as_err *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	uint64_t deadline;
	int fd = -1, e = 0, r;
	char shown[300];

	if (host == NULL || host[0] == '-' || host[0] == '\0' ||
	    port == NULL || port[0] == '\0' || port[0] == '-')
		return as_err_set(err, AS_E_USAGE, 0, "bad host or port '%s' "
		    "'%s'", host != NULL ? host : "",
		    port != NULL ? port : "");
	snprintf(shown, sizeof(shown), strchr(host, ':') != NULL ?
	    "[%s]:%s" : "%s:%s", host, port);
	if (timeout_ms <= 0)
		timeout_ms = TCP_CONNECT_TIMEOUT_MS;
	deadline = conn_now_ms() + (uint64_t)timeout_ms;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	r = getaddrinfo(host, port, &hints, &res);
	if (r == EAI_ADDRFAMILY || r == EAI_NONAME) {
		hints.ai_flags = 0;	/* loopback only hosts */
		r = getaddrinfo(host, port, &hints, &res);
	}
	if (r != 0)
		return as_err_set(err, r == EAI_AGAIN ? AS_E_IO :
		    AS_E_NOTFOUND, 0, "connect to '%s': %s", shown,
		    gai_strerror(r));
	for (ai = res; ai != NULL && fd == -1; ai = ai->ai_next) {
		fd = connect_one(ai, deadline, &e);
		if (fd != -1 && peer != NULL)
			fmt_peer(ai->ai_addr, ai->ai_addrlen, peer, peersz);
	}
	freeaddrinfo(res);
	if (fd == -1) {
		if (e == ETIMEDOUT)
			return as_err_set(err, AS_E_TIMEOUT, e, "connect to "
			    "'%s': timed out after %d ms", shown, timeout_ms);
		return as_err_set(err, AS_E_IO, e, "connect to '%s': %s",
		    shown, strerror(e));
	}
	return fd;
}

struct conn *
tcp_connect(const char *host, const char *port, int timeout_ms,
    struct as_err *err)
{
	char peer[128];
	int fd;

	if ((fd = tcp_connect_fd(host, port, timeout_ms, peer, sizeof(peer),
	    err)) == -1)
		return NULL;
	return conn_from_socket(fd, peer);
}

struct conn *
tcp_conn_from_fd(int fd, const char *peer)
{
	return conn_from_socket(fd, peer);
}
