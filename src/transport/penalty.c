/* penalty.c - failed handshakes per peer address; see penalty.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "transport/penalty.h"
#include "base/banned.h"

struct slot {
	char		addr[PENALTY_ADDR_MAX];
	unsigned	fails;		/* in the window */
	int64_t		last;		/* the last failure */
	int64_t		until;		/* refused before this */
};

struct penalty_box {
	struct slot	*v;
	size_t		 n, cap;
};

struct penalty_box *
penalty_new(size_t cap)
{
	struct penalty_box *b = xcalloc(1, sizeof(*b));

	b->cap = cap > 0 ? cap : PENALTY_CAP;
	b->v = xcalloc(b->cap, sizeof(*b->v));
	return b;
}

void
penalty_free(struct penalty_box *b)
{
	if (b == NULL)
		return;
	free(b->v);
	free(b);
}

static struct slot *
find(const struct penalty_box *b, const char *addr)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (strcmp(b->v[i].addr, addr) == 0)
			return &b->v[i];
	return NULL;
}

int
penalty_exempt(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0;
}

int64_t
penalty_fail(struct penalty_box *b, const char *addr, int64_t now,
    unsigned *fails)
{
	struct slot *s;
	int64_t ms;
	size_t i, old;
	unsigned k;

	if (fails != NULL)
		*fails = 0;
	if (penalty_exempt(addr))
		return 0;
	if ((s = find(b, addr)) == NULL) {
		if (b->n < b->cap)
			s = &b->v[b->n++];
		else {
			/* full: forget the address that failed longest ago */
			for (i = 1, old = 0; i < b->n; i++)
				if (b->v[i].last < b->v[old].last)
					old = i;
			s = &b->v[old];
		}
		memset(s, 0, sizeof(*s));
		snprintf(s->addr, sizeof(s->addr), "%s", addr);
	} else if (now - s->last >= PENALTY_WINDOW_MS)
		s->fails = 0;	/* a quiet window: start again */
	s->fails++;
	s->last = now;
	if (fails != NULL)
		*fails = s->fails;
	if (s->fails <= PENALTY_FREE)
		return 0;
	/* BASE << (fails - FREE - 1), capped, without shifting too far */
	for (ms = PENALTY_BASE_MS, k = s->fails - PENALTY_FREE - 1;
	    k > 0 && ms < PENALTY_MAX_MS; k--)
		ms *= 2;
	if (ms > PENALTY_MAX_MS)
		ms = PENALTY_MAX_MS;
	s->until = now + ms;
	return ms;
}

int64_t
penalty_left(const struct penalty_box *b, const char *addr, int64_t now)
{
	const struct slot *s = find(b, addr);

	return s != NULL && s->until > now ? s->until - now : 0;
}

void
penalty_addr(const char *peer, char *out, size_t outsz)
{
	const char *e;
	size_t n;

	if (peer[0] == '[' && (e = strchr(peer, ']')) != NULL)
		peer++;
	else if ((e = strrchr(peer, ':')) == NULL)
		e = peer + strlen(peer);
	n = (size_t)(e - peer);
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, peer, n);
	out[n] = '\0';
}
