/*
 * mkstream.c - test-only builder of autosync streams, honest or hostile
 * (RELIABILITY.md 2.2).  Never installed.
 *
 * usage: mkstream [options] [SCRIPT]      (SCRIPT "-" or absent: stdin)
 *        mkstream [options] --in STREAM   (mutate an existing stream)
 *
 * The script has one record per line; '#' starts a comment line.  Fields
 * are key=value, numbers take C syntax (0x2a, 0644, -5), byte strings
 * take one of
 *	hex:6869		bytes from hex digits
 *	rep:N:TEXT		TEXT repeated N times
 *	TEXT			with escapes \\ \s (space) \n \t \r \e \0 \xHH
 * Records (every field has a default and every field can be set):
 *	begin  magic= version=1 required=0 optional=0 kind=1 bs=65536
 *	       flags=0 base=0 target=0x2a time=0 name=s1 source=
 *	       name_len= source_len=
 *	entry  op=create|patch|attr|rename|delete|link|N flags= mode=
 *	       ftype=reg|dir|lnk|fifo|sock|chr|blk perm=0644 uid= gid=
 *	       nxattr= rdev= size= mtime= nsec= path= aux= path_len=
 *	       aux_len= rsv1= rsv2=      (flags defaults to 1 when nxattr>0)
 *	xattr  name= value= name_len= value_len= rsv=
 *	data   off= hex:...  |  bytes=...  |  fill=0x41 len=N
 *	hole   off= len=
 *	end    nrecords= nentries= bytes= target=   (unset: computed)
 *	raw    type=N hex:...  |  bytes=...
 * Any record also takes rtype=N (the framing type) and setlen=N (the
 * framing length field, the header check recomputed to match).
 *
 * Options (also accepted as script lines starting with "--"), applied in
 * order after the records are built:
 *	--no-rechain	keep the checks each record had in script order
 *	--seed stream|catalog|N
 *	--dup I  --drop I  --swap I:J
 *	--splice FILE:I[:J]	record I := record J (default I) of stream FILE
 *	--insert FILE:I:J	insert record J of FILE before record I (I may
 *				be the record count: append)
 *	--set-len I:V	framing length of record I
 *	--truncate N  --flip OFF:BIT  --append BYTES	(on the final bytes)
 *	--list		print "INDEX OFFSET TYPE LEN" per record instead
 * Indices and offsets may be negative: counted from the end.  With
 * rechaining (the default) the END counts that were not set explicitly
 * (and, with --in, those of every END record) are recomputed after the
 * record mutations, as a forger would.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/buf.h"
#include "base/io.h"
#include "base/xmalloc.h"
#include "format/record.h"
#include "format/stream.h"
#include "base/banned.h"

struct mrec {
	uint16_t	 type;
	struct buf	 payload;
	int		 has_setlen;
	uint32_t	 setlen;
	uint16_t	 stale_hcheck;	/* as encoded in script order */
	uint64_t	 stale_check;
	int		 end_auto;	/* an END whose counts are computed */
	int		 end_set[4];	/* nrecords nentries bytes target */
	uint64_t	 end_val[4];
	int		 line;
};

struct mlist {
	struct mrec	*v;
	size_t		 n;
	size_t		 cap;
};

enum mut_kind {
	M_DUP, M_DROP, M_SWAP, M_SPLICE, M_INSERT, M_SETLEN, M_TRUNCATE,
	M_FLIP, M_APPEND
};

struct mut {
	enum mut_kind	 kind;
	long long	 a;
	long long	 b;
	char		*file;
	struct buf	 bytes;
};

static struct mut	*muts;
static size_t		 nmuts;
static int		 rechain = 1;
static int		 list_only;
static uint64_t		 seed = REC_SEED_STREAM;
static const char	*in_file;
static const char	*script_name = "-";
static int		 lineno;

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mkstream: ");
	if (lineno > 0)
		fprintf(stderr, "%s:%d: ", script_name, lineno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t
parse_num(const char *key, const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	if (*s == '-')
		v = (uint64_t)strtoll(s, &end, 0);
	else
		v = strtoull(s, &end, 0);
	if (*s == '\0' || *end != '\0' || errno != 0)
		die("bad number '%s' for %s", s, key);
	return v;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void
parse_hex(const char *s, struct buf *out)
{
	int h, l;

	while (*s != '\0') {
		if ((h = hexval(s[0])) < 0 || (l = hexval(s[1])) < 0)
			die("bad hex string near '%s'", s);
		buf_add_u8(out, (uint8_t)(h << 4 | l));
		s += 2;
	}
}

static void
parse_escaped(const char *s, struct buf *out)
{
	int h, l;

	for (; *s != '\0'; s++) {
		if (*s != '\\') {
			buf_add_u8(out, (uint8_t)*s);
			continue;
		}
		switch (*++s) {
		case '\\':
			buf_add_u8(out, '\\');
			break;
		case 's':
			buf_add_u8(out, ' ');
			break;
		case 'n':
			buf_add_u8(out, '\n');
			break;
		case 't':
			buf_add_u8(out, '\t');
			break;
		case 'r':
			buf_add_u8(out, '\r');
			break;
		case 'e':
			buf_add_u8(out, 0x1b);
			break;
		case '0':
			buf_add_u8(out, 0);
			break;
		case 'x':
			if ((h = hexval(s[1])) < 0 || (l = hexval(s[2])) < 0)
				die("bad \\x escape");
			buf_add_u8(out, (uint8_t)(h << 4 | l));
			s += 2;
			break;
		default:
			die("unknown escape '\\%c'", *s ? *s : '0');
		}
	}
}

static void
parse_bytes(const char *s, struct buf *out)
{
	struct buf one = BUF_INIT;
	char *end;
	unsigned long long n, i;

	if (strncmp(s, "hex:", 4) == 0) {
		parse_hex(s + 4, out);
		return;
	}
	if (strncmp(s, "rep:", 4) == 0) {
		errno = 0;
		n = strtoull(s + 4, &end, 10);
		if (errno != 0 || *end != ':' || n > (1ull << 26))
			die("bad rep: string '%s'", s);
		parse_escaped(end + 1, &one);
		for (i = 0; i < n; i++)
			buf_add(out, one.data, one.len);
		buf_release(&one);
		return;
	}
	parse_escaped(s, out);
}

/* The key=value fields of one line, each to be used exactly once. */
struct kv {
	char	*key;
	char	*val;
	int	 used;
};

struct line {
	char		*cmd;
	struct kv	 kv[64];
	size_t		 n;
};

static struct kv *
find(struct line *l, const char *key)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->kv[i].key, key) == 0) {
			l->kv[i].used = 1;
			return &l->kv[i];
		}
	return NULL;
}

static int
has(struct line *l, const char *key)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->kv[i].key, key) == 0)
			return 1;
	return 0;
}

static uint64_t
num(struct line *l, const char *key, uint64_t def)
{
	struct kv *kv = find(l, key);

	return kv == NULL ? def : parse_num(key, kv->val);
}

static int
bytes(struct line *l, const char *key, const char *def, struct buf *out)
{
	struct kv *kv = find(l, key);

	buf_reset(out);
	if (kv != NULL)
		parse_bytes(kv->val, out);
	else if (def != NULL)
		parse_bytes(def, out);
	return kv != NULL;
}

static void
check_all_used(struct line *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!l->kv[i].used)
			die("unknown field '%s' for %s", l->kv[i].key, l->cmd);
}

static struct mrec *
list_add(struct mlist *ml, uint16_t type)
{
	struct mrec *r;

	if (ml->n == ml->cap) {
		ml->cap = ml->cap ? ml->cap * 2 : 64;
		ml->v = xreallocarray(ml->v, ml->cap, sizeof(*ml->v));
	}
	r = &ml->v[ml->n++];
	memset(r, 0, sizeof(*r));
	r->type = type;
	r->line = lineno;
	return r;
}

static void
rec_begin(struct line *l, struct mrec *r)
{
	struct buf magic = BUF_INIT, name = BUF_INIT, src = BUF_INIT;
	uint8_t f[60];

	bytes(l, "magic", AS_STREAM_MAGIC, &magic);
	if (magic.len != 8)
		die("magic must be 8 bytes");
	bytes(l, "name", "s1", &name);
	bytes(l, "source", "", &src);
	memcpy(f, magic.data, 8);
	put_le32(f + 8, (uint32_t)num(l, "version", AS_STREAM_VERSION));
	put_le32(f + 12, (uint32_t)num(l, "required", 0));
	put_le32(f + 16, (uint32_t)num(l, "optional", 0));
	put_le32(f + 20, (uint32_t)num(l, "kind", AS_KIND_DIR));
	put_le32(f + 24, (uint32_t)num(l, "bs", AS_BLOCK_DEFAULT));
	put_le32(f + 28, (uint32_t)num(l, "flags", 0));
	put_le64(f + 32, num(l, "base", 0));
	put_le64(f + 40, num(l, "target", 0x2a));
	put_le64(f + 48, num(l, "time", 0));
	put_le16(f + 56, (uint16_t)num(l, "name_len", name.len));
	put_le16(f + 58, (uint16_t)num(l, "source_len", src.len));
	buf_add(&r->payload, f, sizeof(f));
	buf_add(&r->payload, name.data, name.len);
	buf_add(&r->payload, src.data, src.len);
	buf_release(&magic);
	buf_release(&name);
	buf_release(&src);
}

static uint32_t
parse_op(struct line *l)
{
	static const char *ops[] = { "create", "patch", "attr", "rename",
	    "delete", "link" };
	struct kv *kv = find(l, "op");
	size_t i;

	if (kv == NULL)
		return AS_OP_CREATE;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(kv->val, ops[i]) == 0)
			return (uint32_t)i + 1;
	return (uint32_t)parse_num("op", kv->val);
}

static uint32_t
parse_mode(struct line *l)
{
	static const struct {
		const char	*name;
		uint32_t	 type;
		uint32_t	 perm;
	} types[] = {
		{ "reg", S_IFREG, 0644 }, { "dir", S_IFDIR, 0755 },
		{ "lnk", S_IFLNK, 0777 }, { "fifo", S_IFIFO, 0644 },
		{ "sock", S_IFSOCK, 0755 }, { "chr", S_IFCHR, 0600 },
		{ "blk", S_IFBLK, 0600 },
	};
	struct kv *kv;
	size_t i;
	uint32_t type = S_IFREG, perm = 0644;

	if (has(l, "mode")) {
		if (has(l, "ftype") || has(l, "perm"))
			die("mode= excludes ftype= and perm=");
		return (uint32_t)num(l, "mode", 0);
	}
	if ((kv = find(l, "ftype")) != NULL) {
		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcmp(kv->val, types[i].name) == 0)
				break;
		if (i == sizeof(types) / sizeof(types[0]))
			die("unknown ftype '%s'", kv->val);
		type = types[i].type;
		perm = types[i].perm;
	}
	return type | (uint32_t)num(l, "perm", perm);
}

static void
rec_entry(struct line *l, struct mrec *r)
{
	struct buf path = BUF_INIT, aux = BUF_INIT;
	uint8_t f[56];
	uint32_t nx;

	memset(f, 0, sizeof(f));
	bytes(l, "path", "", &path);
	bytes(l, "aux", "", &aux);
	nx = (uint32_t)num(l, "nxattr", 0);
	f[0] = (uint8_t)parse_op(l);
	f[1] = (uint8_t)num(l, "flags", nx != 0 ? AS_EF_XATTRS : 0);
	put_le16(f + 2, (uint16_t)num(l, "path_len", path.len));
	put_le16(f + 4, (uint16_t)num(l, "aux_len", aux.len));
	put_le16(f + 6, (uint16_t)num(l, "rsv1", 0));
	put_le32(f + 8, parse_mode(l));
	put_le32(f + 12, (uint32_t)num(l, "uid", 0));
	put_le32(f + 16, (uint32_t)num(l, "gid", 0));
	put_le32(f + 20, nx);
	put_le64(f + 24, num(l, "rdev", 0));
	put_le64(f + 32, num(l, "size", 0));
	put_le64(f + 40, num(l, "mtime", 0));
	put_le32(f + 48, (uint32_t)num(l, "nsec", 0));
	put_le32(f + 52, (uint32_t)num(l, "rsv2", 0));
	buf_add(&r->payload, f, sizeof(f));
	buf_add(&r->payload, path.data, path.len);
	buf_add(&r->payload, aux.data, aux.len);
	buf_release(&path);
	buf_release(&aux);
}

static void
rec_xattr(struct line *l, struct mrec *r)
{
	struct buf name = BUF_INIT, val = BUF_INIT;
	uint8_t f[8];

	bytes(l, "name", "user.a", &name);
	bytes(l, "value", "", &val);
	put_le16(f, (uint16_t)num(l, "name_len", name.len));
	put_le16(f + 2, (uint16_t)num(l, "rsv", 0));
	put_le32(f + 4, (uint32_t)num(l, "value_len", val.len));
	buf_add(&r->payload, f, sizeof(f));
	buf_add(&r->payload, name.data, name.len);
	buf_add(&r->payload, val.data, val.len);
	buf_release(&name);
	buf_release(&val);
}

/* Payload bytes of data/raw: hex:... positional, bytes=, or fill= len=. */
static void
content(struct line *l, struct buf *out)
{
	struct kv *kv;
	uint64_t n, fill;
	uint8_t *p;

	if ((kv = find(l, "hex")) != NULL) {
		parse_hex(kv->val, out);
		return;
	}
	if ((kv = find(l, "bytes")) != NULL) {
		parse_bytes(kv->val, out);
		return;
	}
	if (has(l, "fill") || has(l, "len")) {
		fill = num(l, "fill", 0);
		n = num(l, "len", 0);
		if (n > REC_PAYLOAD_MAX + (1u << 20))
			die("len %" PRIu64 " too large", n);
		p = buf_reserve(out, (size_t)n);
		memset(p, (int)fill, (size_t)n);
		out->len += (size_t)n;
	}
}

static void
rec_data(struct line *l, struct mrec *r)
{
	uint8_t f[8];

	put_le64(f, num(l, "off", 0));
	buf_add(&r->payload, f, sizeof(f));
	content(l, &r->payload);
}

static void
rec_hole(struct line *l, struct mrec *r)
{
	uint8_t f[16];

	put_le64(f, num(l, "off", 0));
	put_le64(f + 8, num(l, "len", 0));
	buf_add(&r->payload, f, sizeof(f));
}

static void
rec_end(struct line *l, struct mrec *r)
{
	static const char *keys[] = { "nrecords", "nentries", "bytes",
	    "target" };
	size_t i;

	r->end_auto = 1;
	for (i = 0; i < 4; i++)
		if (has(l, keys[i])) {
			r->end_set[i] = 1;
			r->end_val[i] = num(l, keys[i], 0);
		}
}

static long long
index_of(long long i, size_t n, const char *what)
{
	if (i < 0)
		i += (long long)n;
	if (i < 0 || (size_t)i >= n)
		die("%s index %lld out of range (%zu records)", what, i, n);
	return i;
}

static void
parse_pair(const char *s, long long *a, long long *b, const char *what)
{
	char *end;

	errno = 0;
	*a = strtoll(s, &end, 0);
	if (errno != 0 || *end != ':')
		die("bad %s argument '%s'", what, s);
	*b = strtoll(end + 1, &end, 0);
	if (errno != 0 || *end != '\0')
		die("bad %s argument '%s'", what, s);
}

static struct mut *
mut_add(enum mut_kind kind)
{
	struct mut *m;

	muts = xreallocarray(muts, nmuts + 1, sizeof(*muts));
	m = &muts[nmuts++];
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	return m;
}

static void usage(void) __attribute__((noreturn));

/* One option with its argument (NULL when none); returns args taken. */
static int
option(const char *opt, const char *arg)
{
	struct mut *m;
	char *c, *d;

	if (strcmp(opt, "--no-rechain") == 0) {
		rechain = 0;
		return 0;
	}
	if (strcmp(opt, "--rechain") == 0) {
		rechain = 1;
		return 0;
	}
	if (strcmp(opt, "--list") == 0) {
		list_only = 1;
		return 0;
	}
	if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0)
		usage();
	if (arg == NULL)
		die("option %s needs an argument (or is unknown)", opt);
	if (strcmp(opt, "--seed") == 0) {
		if (strcmp(arg, "stream") == 0)
			seed = REC_SEED_STREAM;
		else if (strcmp(arg, "catalog") == 0)
			seed = REC_SEED_CATALOG;
		else
			seed = parse_num("--seed", arg);
	} else if (strcmp(opt, "--in") == 0) {
		in_file = arg;
	} else if (strcmp(opt, "--dup") == 0) {
		mut_add(M_DUP)->a = (long long)parse_num(opt, arg);
	} else if (strcmp(opt, "--drop") == 0) {
		mut_add(M_DROP)->a = (long long)parse_num(opt, arg);
	} else if (strcmp(opt, "--swap") == 0) {
		m = mut_add(M_SWAP);
		parse_pair(arg, &m->a, &m->b, opt);
	} else if (strcmp(opt, "--set-len") == 0) {
		m = mut_add(M_SETLEN);
		parse_pair(arg, &m->a, &m->b, opt);
	} else if (strcmp(opt, "--truncate") == 0) {
		mut_add(M_TRUNCATE)->a = (long long)parse_num(opt, arg);
	} else if (strcmp(opt, "--flip") == 0) {
		m = mut_add(M_FLIP);
		parse_pair(arg, &m->a, &m->b, opt);
		if (m->b < 0 || m->b > 7)
			die("--flip bit must be 0..7");
	} else if (strcmp(opt, "--append") == 0) {
		parse_bytes(arg, &mut_add(M_APPEND)->bytes);
	} else if (strcmp(opt, "--splice") == 0 ||
	    strcmp(opt, "--insert") == 0) {
		m = mut_add(strcmp(opt, "--splice") == 0 ? M_SPLICE : M_INSERT);
		m->file = xstrdup(arg);
		/* FILE:I or FILE:I:J; the file name may itself hold ':' */
		if ((c = strrchr(m->file, ':')) == NULL)
			die("%s needs FILE:I[:J]", opt);
		*c = '\0';
		m->a = m->b = (long long)parse_num(opt, c + 1);
		if ((d = strrchr(m->file, ':')) != NULL &&
		    strspn(d + 1, "-0123456789") == strlen(d + 1) &&
		    d[1] != '\0') {
			*d = '\0';
			m->a = (long long)parse_num(opt, d + 1);
		}
	} else
		die("unknown option %s", opt);
	return 1;
}

static void
parse_line(char *s, struct mlist *ml)
{
	struct line l;
	struct mrec *r;
	char *tok, *save, *eq;

	memset(&l, 0, sizeof(l));
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0' || *s == '#')
		return;
	if (s[0] == '-' && s[1] == '-') {
		tok = strtok_r(s, " \t", &save);
		eq = strtok_r(NULL, " \t", &save);
		if (option(tok, eq) == 0 && eq != NULL)
			die("option %s takes no argument", tok);
		if (strtok_r(NULL, " \t", &save) != NULL)
			die("extra words after %s", tok);
		return;
	}
	l.cmd = strtok_r(s, " \t", &save);
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
		if (l.n == sizeof(l.kv) / sizeof(l.kv[0]))
			die("too many fields");
		if (strncmp(tok, "hex:", 4) == 0) {
			l.kv[l.n].key = "hex";
			l.kv[l.n++].val = tok + 4;
			continue;
		}
		if ((eq = strchr(tok, '=')) == NULL)
			die("field '%s' is not key=value", tok);
		*eq = '\0';
		if (has(&l, tok))
			die("field '%s' given twice", tok);
		l.kv[l.n].key = tok;
		l.kv[l.n++].val = eq + 1;
	}
	if (strcmp(l.cmd, "begin") == 0)
		rec_begin(&l, r = list_add(ml, AS_REC_BEGIN));
	else if (strcmp(l.cmd, "entry") == 0)
		rec_entry(&l, r = list_add(ml, AS_REC_ENTRY));
	else if (strcmp(l.cmd, "xattr") == 0)
		rec_xattr(&l, r = list_add(ml, AS_REC_XATTR));
	else if (strcmp(l.cmd, "data") == 0)
		rec_data(&l, r = list_add(ml, AS_REC_DATA));
	else if (strcmp(l.cmd, "hole") == 0)
		rec_hole(&l, r = list_add(ml, AS_REC_HOLE));
	else if (strcmp(l.cmd, "end") == 0)
		rec_end(&l, r = list_add(ml, AS_REC_END));
	else if (strcmp(l.cmd, "raw") == 0) {
		if (!has(&l, "type"))
			die("raw needs type=");
		r = list_add(ml, (uint16_t)num(&l, "type", 0));
		content(&l, &r->payload);
	} else
		die("unknown record '%s'", l.cmd);
	if (has(&l, "rtype"))
		r->type = (uint16_t)num(&l, "rtype", 0);
	if (has(&l, "setlen")) {
		r->has_setlen = 1;
		r->setlen = (uint32_t)num(&l, "setlen", 0);
	}
	if (r->payload.len > REC_PAYLOAD_MAX)
		die("payload of %zu bytes exceeds %u", r->payload.len,
		    REC_PAYLOAD_MAX);
	check_all_used(&l);
}

static void
read_script(FILE *fp, struct mlist *ml)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	lineno = 0;
	while ((n = getline(&line, &cap, fp)) != -1) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		parse_line(line, ml);
	}
	lineno = 0;
	free(line);
}

static void
read_file(const char *path, struct buf *out)
{
	FILE *fp;
	uint8_t tmp[65536];
	size_t n;

	if ((fp = fopen(path, "rb")) == NULL)
		die("open '%s': %s", path, strerror(errno));
	while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
		buf_add(out, tmp, n);
	if (ferror(fp))
		die("read '%s': %s", path, strerror(errno));
	fclose(fp);
}

/* Split a framed file into records, keeping their checks as they are. */
static void
read_stream(const char *path, struct mlist *ml)
{
	struct buf b = BUF_INIT;
	struct mrec *r;
	size_t off = 0;
	uint32_t len;

	read_file(path, &b);
	while (off < b.len) {
		if (b.len - off < REC_HDR_LEN)
			die("'%s': partial header at offset %zu", path, off);
		len = le32(b.data + off + 4);
		if (b.len - off - REC_HDR_LEN < (uint64_t)len + REC_TRAILER_LEN)
			die("'%s': partial record at offset %zu", path, off);
		r = list_add(ml, le16(b.data + off));
		r->line = 0;
		/* a forger that re-chains recounts END as well */
		r->end_auto = r->type == AS_REC_END && len == 32;
		buf_add(&r->payload, b.data + off + REC_HDR_LEN, len);
		r->stale_hcheck = le16(b.data + off + 2);
		r->stale_check = le64(b.data + off + REC_HDR_LEN + len);
		off += REC_HDR_LEN + len + REC_TRAILER_LEN;
	}
	buf_release(&b);
}

/* Fill the END records' computed counts from the records before them. */
static void
compute_ends(struct mlist *ml)
{
	uint64_t nent = 0, bytes_ = 0, target = 0, v[4];
	size_t i, k;
	struct mrec *r;

	for (i = 0; i < ml->n; i++) {
		r = &ml->v[i];
		if (r->type == AS_REC_BEGIN && r->payload.len >= 48)
			target = le64(r->payload.data + 40);
		else if (r->type == AS_REC_ENTRY)
			nent++;
		else if (r->type == AS_REC_DATA && r->payload.len > 8)
			bytes_ += r->payload.len - 8;
		if (!r->end_auto)
			continue;
		v[0] = i;
		v[1] = nent;
		v[2] = bytes_;
		v[3] = target;
		for (k = 0; k < 4; k++)
			if (r->end_set[k])
				v[k] = r->end_val[k];
		buf_reset(&r->payload);
		for (k = 0; k < 4; k++)
			buf_add_u64(&r->payload, v[k]);
	}
}

static uint16_t
hcheck_of(const uint8_t *hdr, uint64_t chain)
{
	return (uint16_t)XXH3_64bits_withSeed(hdr, 2, chain ^
	    XXH3_64bits(hdr + 4, 4));
}

/*
 * Frame every record into out.  With fresh, checks are chained anew
 * (rec_encode) and remembered as the stale ones; otherwise the
 * remembered checks are written.
 */
static void
encode(struct mlist *ml, struct buf *out, int fresh, uint64_t *offs)
{
	uint64_t chain = seed, prev;
	size_t i, start;
	struct mrec *r;
	uint8_t *h;

	buf_reset(out);
	for (i = 0; i < ml->n; i++) {
		r = &ml->v[i];
		start = out->len;
		if (offs != NULL)
			offs[i] = start;
		prev = chain;
		rec_encode(out, &chain, r->type, r->payload.data,
		    r->payload.len, NULL, 0);
		h = out->data + start;
		if (r->has_setlen) {
			/* a consistent header, so that the length is judged */
			put_le32(h + 4, r->setlen);
			put_le16(h + 2, hcheck_of(h, prev));
		}
		if (fresh) {
			r->stale_hcheck = le16(h + 2);
			r->stale_check = le64(h + REC_HDR_LEN + r->payload.len);
		} else {
			put_le16(h + 2, r->stale_hcheck);
			put_le64(h + REC_HDR_LEN + r->payload.len,
			    r->stale_check);
		}
		/* a forger re-chains from what it wrote */
		chain = le64(h + REC_HDR_LEN + r->payload.len);
	}
}

static void
copy_rec(struct mrec *dst, const struct mrec *src)
{
	*dst = *src;
	buf_init(&dst->payload);
	buf_add(&dst->payload, src->payload.data, src->payload.len);
}

static void
record_mutations(struct mlist *ml)
{
	struct mlist other;
	struct mrec tmp;
	size_t i, k;
	long long a, b;

	for (i = 0; i < nmuts; i++) {
		switch (muts[i].kind) {
		case M_DUP:
			a = index_of(muts[i].a, ml->n, "--dup");
			list_add(ml, 0);
			memmove(&ml->v[a + 2], &ml->v[a + 1],
			    (ml->n - 2 - (size_t)a) * sizeof(*ml->v));
			copy_rec(&ml->v[a + 1], &ml->v[a]);
			break;
		case M_DROP:
			a = index_of(muts[i].a, ml->n, "--drop");
			buf_release(&ml->v[a].payload);
			memmove(&ml->v[a], &ml->v[a + 1],
			    (ml->n - 1 - (size_t)a) * sizeof(*ml->v));
			ml->n--;
			break;
		case M_SWAP:
			a = index_of(muts[i].a, ml->n, "--swap");
			b = index_of(muts[i].b, ml->n, "--swap");
			tmp = ml->v[a];
			ml->v[a] = ml->v[b];
			ml->v[b] = tmp;
			break;
		case M_SPLICE:
			memset(&other, 0, sizeof(other));
			read_stream(muts[i].file, &other);
			a = index_of(muts[i].a, ml->n, "--splice");
			b = index_of(muts[i].b, other.n, "--splice");
			buf_release(&ml->v[a].payload);
			copy_rec(&ml->v[a], &other.v[b]);
			ml->v[a].end_auto = 0;
			for (k = 0; k < other.n; k++)
				buf_release(&other.v[k].payload);
			free(other.v);
			break;
		case M_INSERT:
			memset(&other, 0, sizeof(other));
			read_stream(muts[i].file, &other);
			a = muts[i].a == (long long)ml->n ? (long long)ml->n :
			    index_of(muts[i].a, ml->n, "--insert");
			b = index_of(muts[i].b, other.n, "--insert");
			list_add(ml, 0);
			memmove(&ml->v[a + 1], &ml->v[a],
			    (ml->n - 1 - (size_t)a) * sizeof(*ml->v));
			copy_rec(&ml->v[a], &other.v[b]);
			ml->v[a].end_auto = 0;
			for (k = 0; k < other.n; k++)
				buf_release(&other.v[k].payload);
			free(other.v);
			break;
		case M_SETLEN:
			a = index_of(muts[i].a, ml->n, "--set-len");
			ml->v[a].has_setlen = 1;
			ml->v[a].setlen = (uint32_t)muts[i].b;
			break;
		default:
			break;
		}
	}
}

static void
byte_mutations(struct buf *out)
{
	long long off;
	size_t i;

	for (i = 0; i < nmuts; i++) {
		switch (muts[i].kind) {
		case M_TRUNCATE:
			off = muts[i].a;
			if (off < 0)
				off += (long long)out->len;
			if (off < 0 || (size_t)off > out->len)
				die("--truncate %lld outside 0..%zu", muts[i].a,
				    out->len);
			out->len = (size_t)off;
			break;
		case M_FLIP:
			off = muts[i].a;
			if (off < 0)
				off += (long long)out->len;
			if (off < 0 || (size_t)off >= out->len)
				die("--flip offset %lld outside the stream",
				    muts[i].a);
			out->data[off] ^= (uint8_t)(1u << muts[i].b);
			break;
		case M_APPEND:
			buf_add(out, muts[i].bytes.data, muts[i].bytes.len);
			break;
		default:
			break;
		}
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: mkstream [--no-rechain] [--seed S] "
	    "[--dup I] [--drop I] [--swap I:J]\n"
	    "                [--splice FILE:I[:J]] [--insert FILE:I:J] "
	    "[--set-len I:V]\n"
	    "                "
	    "[--truncate N] [--flip OFF:BIT]\n"
	    "                [--append BYTES] [--list] "
	    "[--in STREAM | SCRIPT]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct mlist ml;
	struct buf out = BUF_INIT;
	uint64_t *offs;
	FILE *fp;
	int i;
	size_t k;

	memset(&ml, 0, sizeof(ml));
	for (i = 1; i < argc; i++) {
		if (argv[i][0] != '-' || argv[i][1] == '\0')
			break;
		i += option(argv[i], i + 1 < argc ? argv[i + 1] : NULL);
	}
	if (i < argc - 1)
		usage();
	if (in_file != NULL) {
		if (i < argc)
			usage();
		read_stream(in_file, &ml);
	} else {
		script_name = i < argc ? argv[i] : "-";
		if (strcmp(script_name, "-") == 0)
			fp = stdin;
		else if ((fp = fopen(script_name, "r")) == NULL)
			die("open '%s': %s", script_name, strerror(errno));
		read_script(fp, &ml);
		if (fp != stdin)
			fclose(fp);
		/* script order: the honest chain, remembered for --no-rechain */
		compute_ends(&ml);
		encode(&ml, &out, 1, NULL);
	}
	record_mutations(&ml);
	offs = xcalloc(ml.n + 1, sizeof(*offs));
	if (rechain) {
		compute_ends(&ml);
		encode(&ml, &out, 1, offs);
	} else
		encode(&ml, &out, 0, offs);
	if (list_only) {
		for (k = 0; k < ml.n; k++)
			printf("%zu %" PRIu64 " %s %zu\n", k, offs[k],
			    ml.v[k].type >= AS_REC_BEGIN &&
			    ml.v[k].type <= AS_REC_HOLE ?
			    as_rec_type_name(ml.v[k].type) : "other",
			    ml.v[k].payload.len);
		printf("total %zu\n", out.len);
		if (fflush(stdout) != 0 || ferror(stdout))
			die("write: %s", strerror(errno));
	} else {
		byte_mutations(&out);
		if (io_write_full(STDOUT_FILENO, out.data, out.len) == -1)
			die("write: %s", strerror(errno));
	}
	for (k = 0; k < ml.n; k++)
		buf_release(&ml.v[k].payload);
	free(ml.v);
	free(offs);
	buf_release(&out);
	for (k = 0; k < nmuts; k++) {
		free(muts[k].file);
		buf_release(&muts[k].bytes);
	}
	free(muts);
	return 0;
}
