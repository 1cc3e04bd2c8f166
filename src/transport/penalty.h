/*
 * penalty.h - wrong keys per peer address, and how long the handshakes
 * of that address wait for them (RELIABILITY.md §E 50).
 *
 * After OpenSSH's PerSourcePenalties, but a delay rather than a refusal:
 * the first PENALTY_FREE wrong keys of an address within
 * PENALTY_WINDOW_MS cost nothing (a mistyped key, a client that
 * retries); each further one makes the next handshakes of that address
 * wait PENALTY_BASE_MS, doubled per wrong key up to PENALTY_MAX_MS,
 * which stays below a client's 10 s handshake deadline: a client with
 * the right key from the same address (NAT, loopback) is slowed, never
 * refused.  A guesser gets one try per delay and connection, and its
 * waiting connections hold handshake slots that go first at the
 * listener's cap (--max-unauth drops the oldest): clients from other
 * addresses are not kept out.  Only tried keys count (auth_result.guess:
 * a wrong proof, or a client that left after the server's challenge, as
 * one with a wrong key does), not garbage, a cut hello or a timeout.
 *
 * Loopback (127.0.0.0/8, ::1) is exempt: every client of an ssh tunnel
 * or a local proxy comes from there, and one guesser would slow them all.
 *
 * Pure bookkeeping over a caller-given clock (milliseconds), no I/O:
 * unit-tested without sleeping.  The table holds at most cap addresses;
 * a new one replaces the one whose last failure is oldest, so memory is
 * bounded whatever the number of addresses.
 */
#ifndef AS_PENALTY_H
#define AS_PENALTY_H

#include <stddef.h>
#include <stdint.h>

#define PENALTY_FREE		5
#define PENALTY_WINDOW_MS	60000	/* failures older than this expire */
#define PENALTY_BASE_MS		1000
#define PENALTY_MAX_MS		6000
#define PENALTY_CAP		1024	/* addresses remembered */
#define PENALTY_ADDR_MAX	64	/* an IPv6 text address fits */

struct penalty_box;

struct penalty_box *penalty_new(size_t cap);
void	penalty_free(struct penalty_box *b);
/*
 * A failed handshake from addr at now: returns the penalty it starts in
 * ms (0: still free), and the failures counted in the window in *fails
 * (may be NULL).
 */
int64_t	penalty_fail(struct penalty_box *b, const char *addr, int64_t now,
	    unsigned *fails);
/* 1 if addr (from penalty_addr) is never penalized: loopback. */
int	penalty_exempt(const char *addr);
/* The ms a handshake from addr accepted at now waits; 0: none. */
int64_t	penalty_left(const struct penalty_box *b, const char *addr,
	    int64_t now);
/* The address part of a peer "ADDR:PORT" or "[V6]:PORT" into out. */
void	penalty_addr(const char *peer, char *out, size_t outsz);

#endif
