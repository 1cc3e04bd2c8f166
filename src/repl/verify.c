/* verify.c - compare a destination with a snapshot; see verify.h. */
#include <sys/stat.h>

#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "format/catalog.h"
#include "format/path.h"
#include "repl/verify.h"
#include "base/banned.h"

/* An inode -> inode map, open addressing, for hard-link groups. */
struct ino_map {
	uint64_t	*key;
	uint64_t	*val;
	uint8_t		*used;
	size_t		 cap;	/* a power of two */
};

static void
ino_map_init(struct ino_map *m, size_t n)
{
	m->cap = 16;
	while (m->cap < n * 2)
		m->cap *= 2;
	m->key = xcalloc(m->cap, sizeof(*m->key));
	m->val = xcalloc(m->cap, sizeof(*m->val));
	m->used = xcalloc(m->cap, 1);
}

static void
ino_map_release(struct ino_map *m)
{
	free(m->key);
	free(m->val);
	free(m->used);
}

/*
 * Map k to v unless k is mapped already; returns 1 when k was mapped to
 * v or is now, 0 when it is mapped to something else.  The map never
 * holds more than n keys, so it never fills up.
 */
static int
ino_map_check(struct ino_map *m, uint64_t k, uint64_t v)
{
	size_t i = (size_t)((k * UINT64_C(0x9e3779b97f4a7c15)) >> 17) &
	    (m->cap - 1);

	while (m->used[i]) {
		if (m->key[i] == k)
			return m->val[i] == v;
		i = (i + 1) & (m->cap - 1);
	}
	m->used[i] = 1;
	m->key[i] = k;
	m->val[i] = v;
	return 1;
}

static uint64_t
compare_pair(const struct catalog *sc, const struct cat_entry *a,
    const struct catalog *dc, const struct cat_entry *b, const char *path,
    struct ino_map *fwd, struct ino_map *rev, verify_cb cb, void *arg)
{
	uint64_t n = 0;
	uint32_t type = a->mode & S_IFMT;

#define DIFF(kind) do { n++; if (cb != NULL) cb(arg, kind, path); } while (0)
	if (type != (b->mode & S_IFMT)) {
		DIFF("type");
		return n;
	}
	if (S_ISREG(a->mode)) {
		if (a->size != b->size || a->nblocks != b->nblocks ||
		    (a->nblocks > 0 && memcmp(sc->hashes.data + CAT_HASH_AT(a),
		    dc->hashes.data + CAT_HASH_AT(b),
		    (size_t)a->nblocks * CAT_HASH_LEN) != 0))
			DIFF("content");
	} else if (S_ISCHR(a->mode) || S_ISBLK(a->mode)) {
		if (a->rdev != b->rdev)
			DIFF("content");
	} else if (S_ISLNK(a->mode)) {
		if (a->aux_len != b->aux_len || (a->aux_len > 0 &&
		    memcmp(catalog_aux(sc, a), catalog_aux(dc, b),
		    a->aux_len) != 0))
			DIFF("target");
	}
	if (!S_ISLNK(a->mode) && (a->mode & 07777) != (b->mode & 07777))
		DIFF("mode");
	if (a->uid != b->uid || a->gid != b->gid)
		DIFF("owner");
	if (a->mtime_sec != b->mtime_sec || a->mtime_nsec != b->mtime_nsec)
		DIFF("mtime");
	if (a->xattr_len != b->xattr_len || (a->xattr_len > 0 &&
	    memcmp(catalog_xattrs(sc, a), catalog_xattrs(dc, b),
	    a->xattr_len) != 0))
		DIFF("xattr");
	if (!S_ISDIR(a->mode) && (!ino_map_check(fwd, a->ino, b->ino) ||
	    !ino_map_check(rev, b->ino, a->ino)))
		DIFF("link");
#undef DIFF
	return n;
}

uint64_t
verify_catalogs(const struct catalog *snap, struct catalog *dst,
    verify_cb cb, void *arg)
{
	struct ino_map fwd, rev;
	const struct cat_entry *a, *b;
	const char *pa, *pb;
	size_t i = 0, j = 0;
	uint64_t n = 0;
	int c;

	ino_map_init(&fwd, snap->n);
	ino_map_init(&rev, snap->n);
	while (i < snap->n || j < dst->n) {
		a = i < snap->n ? &snap->ents[i] : NULL;
		b = j < dst->n ? &dst->ents[j] : NULL;
		pa = a != NULL ? catalog_path(snap, a) : NULL;
		pb = b != NULL ? catalog_path(dst, b) : NULL;
		if (a == NULL)
			c = 1;
		else if (b == NULL)
			c = -1;
		else
			c = path_cmp(pa, a->path_len, pb, b->path_len);
		if (c < 0) {
			n++;
			if (cb != NULL)
				cb(arg, "missing", pa);
			i++;
		} else if (c > 0) {
			n++;
			if (cb != NULL)
				cb(arg, "extra", pb);
			j++;
		} else {
			n += compare_pair(snap, a, dst, b, pa, &fwd, &rev, cb,
			    arg);
			i++;
			j++;
		}
	}
	ino_map_release(&fwd);
	ino_map_release(&rev);
	return n;
}

int
verify_tree(const struct catalog *snap, const char *dest, verify_cb cb,
    void *arg, uint64_t *ndiff, struct dir_stats *st, struct as_err *err)
{
	struct dir_stats local;
	struct catalog dc;

	memset(&local, 0, sizeof(local));
	catalog_init(&dc);
	if (dir_scan(dest, NULL, snap->hdr.block_size, DIR_SCAN_REHASH, &dc,
	    st != NULL ? st : &local, err) == -1) {
		catalog_release(&dc);
		return as_err_prefix(err, "scan '%s'", dest);
	}
	*ndiff = verify_catalogs(snap, &dc, cb, arg);
	catalog_release(&dc);
	return 0;
}
