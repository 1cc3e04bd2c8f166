/*
 * failback_vol.c - the steps of a volume failback (service reverse)
 * that each side does on its own; see failback.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/xmalloc.h"
#include "driver/vol.h"
#include "format/catalog.h"
#include "format/stream.h"
#include "repl/failback.h"
#include "repl/snapstore.h"
#include "base/banned.h"

static const struct cat_entry *
vol_ent(const struct catalog *c)
{
	if (c->hdr.kind != AS_KIND_VOL || c->n != 1 || c->hdr.block_size == 0)
		return NULL;
	return &c->ents[0];
}

/* How now (S read) differs from g (G): blocks, and a size change. */
static void
vol_drift(const struct catalog *g, const struct catalog *now,
    struct failback_drift *d)
{
	const struct cat_entry *a = vol_ent(g), *b = vol_ent(now);
	const uint8_t *ha, *hb;
	uint64_t i, na, nb, bs = g->hdr.block_size;

	memset(d, 0, sizeof(*d));
	na = (a->size + bs - 1) / bs;
	nb = (b->size + bs - 1) / bs;
	ha = (const uint8_t *)g->hashes.data + CAT_HASH_AT(a);
	hb = (const uint8_t *)now->hashes.data + CAT_HASH_AT(b);
	if (a->size != b->size) {
		d->ndiff++;
		snprintf(d->first, sizeof(d->first), "size %" PRIu64 " -> %"
		    PRIu64 " bytes", a->size, b->size);
	}
	for (i = 0; i < na && i < nb; i++) {
		if (memcmp(ha + i * CAT_HASH_LEN, hb + i * CAT_HASH_LEN,
		    CAT_HASH_LEN) == 0)
			continue;
		if (d->ndiff++ == 0)
			snprintf(d->first, sizeof(d->first), "block %" PRIu64
			    " (byte %" PRIu64 ")", i, i * bs);
	}
}

int
failback_vol_check_source(struct snapstore *ss, const char *abs,
    uint64_t guid, const char *dst, int force, struct catalog *out,
    struct failback_drift *d, struct as_err *err)
{
	struct catalog g, now;
	struct vol_stats st;
	char hname[SNAP_NAME_MAX + 1];
	int rc = -1;

	memset(d, 0, sizeof(*d));
	catalog_init(&g);
	catalog_init(&now);
	if (failback_check_newest(ss, abs, guid, dst, hname, sizeof(hname),
	    err) == -1)
		goto out;
	if (snapstore_load_guid(ss, guid, &g, err) != 1) {
		if (err != NULL && err->code == AS_E_OK)
			as_err_set(err, AS_E_NOTFOUND, 0, "no catalog of '%s' "
			    "in '%s'", hname, abs);
		goto out;
	}
	if (vol_ent(&g) == NULL) {
		as_err_set(err, AS_E_CONFLICT, 0, "snapshot '%s' of '%s' is "
		    "not a volume snapshot", hname, abs);
		goto out;
	}
	/*
	 * A volume keeps no times per block: whether S changed since G is
	 * known only by reading it whole and hashing it (holes of an image
	 * file are not read).
	 */
	memset(&st, 0, sizeof(st));
	if (vol_scan(abs, g.hdr.block_size, &now, &st, err) == -1) {
		as_err_prefix(err, "read '%s'", abs);
		goto out;
	}
	vol_drift(&g, &now, d);
	if (d->ndiff > 0 && !force) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' changed since '%s' "
		    "(%" PRIu64 " difference%s, first: %s): reversing would "
		    "lose that; --force rolls it back to what '%s' holds",
		    abs, hname, d->ndiff, d->ndiff == 1 ? "" : "s", d->first,
		    dst);
		goto out;
	}
	if (d->ndiff == 0) {
		*out = g;
		catalog_init(&g);
		rc = 0;
		goto out;
	}
	/*
	 * --force: S holds what it holds now, a snapshot of its own taken
	 * relative to G; D's first run diffs against it, so it sends
	 * exactly the blocks where S differs from D and S ends equal to D.
	 */
	now.hdr.time_ns = (int64_t)time(NULL) * 1000000000;
	if (snapstore_auto_name(ss, now.hdr.time_ns, now.hdr.name,
	    sizeof(now.hdr.name), err) == -1)
		goto out;
	now.hdr.guid = snap_guid_new();
	now.hdr.base_guid = guid;
	*out = now;
	catalog_init(&now);
	rc = 0;
out:
	catalog_release(&g);
	catalog_release(&now);
	return rc;
}

int
failback_vol_demote(const char *abs, const char *state,
    const struct catalog *g, struct as_err *err)
{
	if (vol_recover(abs, state, err) == -1)
		return -1;
	return vol_hold_set(abs, state, g, err);
}

int
failback_vol_promote(struct snapstore *ss, const char *abs, const char *state,
    uint64_t guid, const struct catalog *g, const char *dest_key,
    struct as_err *err)
{
	struct snap_dest rec;
	struct catalog nc;
	struct buf b = BUF_INIT;
	uint64_t held = 0;
	int rc = -1;

	memset(&rec, 0, sizeof(rec));
	catalog_init(&nc);
	if (vol_ent(g) == NULL) {
		as_err_set(err, AS_E_MALFORMED, 0, "the catalog of '%s' is not "
		    "a volume snapshot", g->hdr.name);
		goto out;
	}
	if (g->hdr.guid != guid && g->hdr.base_guid != guid) {
		as_err_set(err, AS_E_MALFORMED, 0, "the catalog of '%s' is "
		    "%016" PRIx64 ", neither %016" PRIx64 " nor taken from it",
		    g->hdr.name, g->hdr.guid, guid);
		goto out;
	}
	if (vol_recover(abs, state, err) == -1 ||
	    vol_held(abs, state, &held, NULL, err) == -1)
		goto out;
	if (held != guid) {
		as_err_set(err, AS_E_CONFLICT, 0, "'%s' holds %016" PRIx64
		    ", not %016" PRIx64 ": a run came in between", abs, held,
		    guid);
		goto out;
	}
	/* a copy named for D: the hashes are G's (or S's now), the path D */
	catalog_encode(g, &b);
	if (catalog_decode(&nc, b.data, b.len, err) == -1)
		goto out;
	free(nc.hdr.source);
	nc.hdr.source = xstrdup(abs);
	if (snapstore_save(ss, &nc, SNAP_SAVE_REPLACE, err) == -1 ||
	    snapstore_dest_get(ss, dest_key, &rec, err) == -1)
		goto out;
	rec.held_guid = nc.hdr.guid;
	rec.pending[0] = '\0';
	if (snapstore_dest_put(ss, dest_key, &rec, err) == -1)
		goto out;
	/* D is a source now: a sync into it again needs -F */
	rc = vol_hold_drop(abs, state, err);
out:
	buf_release(&b);
	catalog_release(&nc);
	snap_dest_release(&rec);
	return rc;
}
