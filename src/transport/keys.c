/* keys.c - PSK files and "autosync keygen"; see keys.h. */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/io.h"
#include "transport/keys.h"
#include "base/banned.h"

#define KEYFILE_MAX	4096
#define CERT_DAYS	3650

int
key_id_valid(const char *id)
{
	size_t n;

	if (id == NULL || (n = strlen(id)) == 0 || n > KEY_ID_MAX)
		return 0;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._@-") == n;
}

void
key_clear(struct psk *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
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

/* Parse one key line (no newline) into k. */
static int
parse_line(const char *l, size_t n, const char *what, struct psk *k,
    struct as_err *err)
{
	const char *p, *e = l + n, *id;
	size_t ml = strlen(KEY_MAGIC), idl, i;
	int hi, lo;

	if (n < ml + 1 || memcmp(l, KEY_MAGIC, ml) != 0 || l[ml] != ' ')
		return as_err_set(err, AS_E_MALFORMED, 0, "key file '%s': "
		    "expected '%s <id> <64 hex digits>'", what, KEY_MAGIC);
	id = l + ml + 1;
	for (p = id; p < e && *p != ' '; p++)
		;
	idl = (size_t)(p - id);
	if (idl == 0 || idl > KEY_ID_MAX || p == e)
		return as_err_set(err, AS_E_MALFORMED, 0, "key file '%s': "
		    "missing or bad key id", what);
	memcpy(k->id, id, idl);
	k->id[idl] = '\0';
	if (!key_id_valid(k->id))
		return as_err_set(err, AS_E_MALFORMED, 0, "key file '%s': "
		    "bad key id (letters, digits and ._@- only)", what);
	p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	if ((size_t)(e - p) != 2 * KEY_LEN)
		return as_err_set(err, AS_E_MALFORMED, 0, "key file '%s': "
		    "the key must be %d hex digits", what, 2 * KEY_LEN);
	for (i = 0; i < KEY_LEN; i++) {
		hi = hexval((unsigned char)p[2 * i]);
		lo = hexval((unsigned char)p[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			OPENSSL_cleanse(k->key, sizeof(k->key));
			return as_err_set(err, AS_E_MALFORMED, 0, "key file "
			    "'%s': the key must be %d hex digits", what,
			    2 * KEY_LEN);
		}
		k->key[i] = (uint8_t)(hi << 4 | lo);
	}
	k->len = KEY_LEN;
	return 0;
}

int
key_parse(const char *text, size_t len, const char *what, struct psk *k,
    struct as_err *err)
{
	const char *l = text, *e = text + len, *nl;
	size_t n;
	int found = 0;

	memset(k, 0, sizeof(*k));
	while (l < e) {
		nl = memchr(l, '\n', (size_t)(e - l));
		n = nl != NULL ? (size_t)(nl - l) : (size_t)(e - l);
		if (memchr(l, '\0', n) != NULL)
			return as_err_set(err, AS_E_MALFORMED, 0, "key file "
			    "'%s': binary data", what);
		if (n > 0 && l[0] != '#' && strspn(l, " \t\r") < n) {
			if (found++ > 0) {
				key_clear(k);
				return as_err_set(err, AS_E_MALFORMED, 0,
				    "key file '%s': more than one key", what);
			}
			if (parse_line(l, n, what, k, err) == -1) {
				key_clear(k);
				return -1;
			}
		}
		l += n + (nl != NULL);
	}
	if (!found)
		return as_err_set(err, AS_E_MALFORMED, 0, "key file '%s' "
		    "holds no key", what);
	return 0;
}

int
key_load(const char *path, struct psk *k, struct as_err *err)
{
	char text[KEYFILE_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd, r;

	memset(k, 0, sizeof(*k));
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return as_err_sys(err, errno, "key file '%s'", path);
	if (fstat(fd, &st) == -1) {
		r = errno;
		close(fd);
		return as_err_sys(err, r, "key file '%s'", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return as_err_set(err, AS_E_MALFORMED, 0, "key file '%s' is "
		    "not a regular file", path);
	}
	if ((st.st_mode & 077) != 0) {
		close(fd);
		return as_err_set(err, AS_E_AUTH, 0, "key file '%s' is "
		    "readable by others; chmod 600 it", path);
	}
	if (st.st_size > KEYFILE_MAX) {
		close(fd);
		return as_err_set(err, AS_E_MALFORMED, 0, "key file '%s' is "
		    "too large", path);
	}
	n = io_read_full(fd, text, sizeof(text));
	r = errno;
	close(fd);
	if (n < 0)
		return as_err_sys(err, r, "read key file '%s'", path);
	if (n > KEYFILE_MAX) {
		OPENSSL_cleanse(text, sizeof(text));
		return as_err_set(err, AS_E_MALFORMED, 0, "key file '%s' is "
		    "too large", path);
	}
	r = key_parse(text, (size_t)n, path, k, err);
	OPENSSL_cleanse(text, sizeof(text));
	return r;
}

int
key_generate(struct psk *k, const char *id, struct as_err *err)
{
	memset(k, 0, sizeof(*k));
	if (!key_id_valid(id))
		return as_err_set(err, AS_E_USAGE, 0, "bad key id '%s' "
		    "(1-%d of letters, digits and ._@-)", id != NULL ? id : "",
		    KEY_ID_MAX);
	if (RAND_bytes(k->key, KEY_LEN) != 1)
		return as_err_set(err, AS_E_INTERNAL, 0, "no random bytes");
	memcpy(k->id, id, strlen(id) + 1);
	k->len = KEY_LEN;
	return 0;
}

/* Create path 0600 (or mode) with O_EXCL; -1 with err set. */
static int
create_file(const char *path, mode_t mode, struct as_err *err)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd == -1)
		return as_err_sys(err, errno, "create '%s'", path);
	if (fchmod(fd, mode) == -1) {
		int e = errno;

		close(fd);
		unlink(path);
		return as_err_sys(err, e, "chmod '%s'", path);
	}
	return fd;
}

static int
finish_file(int fd, const char *path, int ok, struct as_err *err)
{
	if (ok && io_fsync(fd, path, err) == -1)
		ok = -1;
	if (close(fd) == -1 && ok == 1) {
		as_err_sys(err, errno, "close '%s'", path);
		ok = -1;
	}
	if (ok != 1) {
		if (ok == 0)
			as_err_set(err, AS_E_IO, 0, "write '%s' failed", path);
		unlink(path);
		return -1;
	}
	return 0;
}

int
key_write(const char *path, const struct psk *k, struct as_err *err)
{
	char line[KEY_ID_MAX + 2 * KEY_LEN + 32];
	size_t i, n;
	int fd, ok;

	if (k->len != KEY_LEN || !key_id_valid(k->id))
		return as_err_set(err, AS_E_INTERNAL, 0, "key_write: bad key");
	n = (size_t)snprintf(line, sizeof(line), "%s %s ", KEY_MAGIC, k->id);
	for (i = 0; i < KEY_LEN; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%02x",
		    k->key[i]);
	line[n++] = '\n';
	if ((fd = create_file(path, 0600, err)) == -1) {
		OPENSSL_cleanse(line, sizeof(line));
		return -1;
	}
	ok = io_write_full(fd, line, n) == 0;
	OPENSSL_cleanse(line, sizeof(line));
	return finish_file(fd, path, ok, err);
}

/* keygen ---------------------------------------------------------------- */

static int
ossl_err(struct as_err *err, const char *what)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return as_err_set(err, AS_E_INTERNAL, 0, "%s: %s", what,
	    e != 0 ? buf : "failed");
}

static EVP_PKEY *
gen_key(struct as_err *err)
{
	EVP_PKEY *pk;

	if ((pk = EVP_EC_gen("P-256")) == NULL)
		ossl_err(err, "generate key");
	return pk;
}

static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	if ((ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	if (X509_add_ext(cert, ex, -1) != 1) {
		X509_EXTENSION_free(ex);
		return -1;
	}
	X509_EXTENSION_free(ex);
	return 0;
}

/*
 * A certificate for key with subject CN=cn, signed by ca/cakey (or self
 * signed when ca is NULL).  kind: 0 CA, 1 server, 2 client.
 */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *ca, EVP_PKEY *cakey,
    int kind, struct as_err *err)
{
	X509 *c;
	X509_NAME *name = NULL;
	BIGNUM *bn = NULL;
	char san[300];

	if ((c = X509_new()) == NULL)
		goto fail;
	if (X509_set_version(c, 2) != 1)
		goto fail;
	if ((bn = BN_new()) == NULL || BN_rand(bn, 127, BN_RAND_TOP_ONE,
	    BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) == NULL)
		goto fail;
	if (X509_gmtime_adj(X509_getm_notBefore(c), -86400) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(c),
	    (long)CERT_DAYS * 86400) == NULL)
		goto fail;
	if ((name = X509_NAME_new()) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"autosync", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1)
		goto fail;
	if (X509_set_subject_name(c, name) != 1 ||
	    X509_set_issuer_name(c, ca != NULL ?
	    X509_get_subject_name(ca) : name) != 1)
		goto fail;
	if (X509_set_pubkey(c, key) != 1)
		goto fail;
	if (add_ext(c, ca != NULL ? ca : c, NID_subject_key_identifier,
	    "hash") == -1)
		goto fail;
	if (kind == 0) {
		if (add_ext(c, c, NID_basic_constraints,
		    "critical,CA:TRUE,pathlen:0") == -1 ||
		    add_ext(c, c, NID_key_usage,
		    "critical,keyCertSign,cRLSign") == -1)
			goto fail;
	} else {
		if (add_ext(c, ca, NID_authority_key_identifier,
		    "keyid:always") == -1 ||
		    add_ext(c, ca, NID_basic_constraints,
		    "critical,CA:FALSE") == -1 ||
		    add_ext(c, ca, NID_key_usage,
		    "critical,digitalSignature") == -1 ||
		    add_ext(c, ca, NID_ext_key_usage, kind == 1 ?
		    "serverAuth" : "clientAuth") == -1)
			goto fail;
		if (kind == 1) {
			snprintf(san, sizeof(san), "DNS:%s", cn);
			if (add_ext(c, ca, NID_subject_alt_name, san) == -1)
				goto fail;
		}
	}
	if (X509_sign(c, cakey != NULL ? cakey : key, EVP_sha256()) == 0)
		goto fail;
	X509_NAME_free(name);
	BN_free(bn);
	return c;
fail:
	ossl_err(err, "make certificate");
	X509_NAME_free(name);
	BN_free(bn);
	X509_free(c);
	return NULL;
}

static int
write_pem(const char *dir, const char *file, X509 *cert, EVP_PKEY *key,
    struct as_err *err)
{
	char path[4096];
	BIO *bio;
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((fd = create_file(path, key != NULL ? 0600 : 0644, err)) == -1)
		return -1;
	if ((bio = BIO_new_fd(fd, BIO_NOCLOSE)) == NULL) {
		close(fd);
		unlink(path);
		return ossl_err(err, "BIO_new_fd");
	}
	if (key != NULL)
		ok = PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
		    NULL) == 1;
	else
		ok = PEM_write_bio_X509(bio, cert) == 1;
	ok = ok && BIO_flush(bio) == 1;
	BIO_free(bio);
	return finish_file(fd, path, ok, err);
}

int
keygen_dir(const char *dir, const char *client_id, const char *server_name,
    struct as_err *err)
{
	EVP_PKEY *cakey = NULL, *skey = NULL, *ckey = NULL;
	X509 *ca = NULL, *scert = NULL, *ccert = NULL;
	struct psk k;
	char path[4096];
	int rc = -1;

	if (client_id == NULL)
		client_id = "client";
	if (server_name == NULL)
		server_name = "autosync-server";
	if (!key_id_valid(client_id) || !key_id_valid(server_name))
		return as_err_set(err, AS_E_USAGE, 0, "bad client or server "
		    "name (letters, digits and ._@- only)");
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return as_err_sys(err, errno, "create directory '%s'", dir);
	if (key_generate(&k, client_id, err) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/psk.key", dir);
	if (key_write(path, &k, err) == -1) {
		key_clear(&k);
		return -1;
	}
	key_clear(&k);
	if ((cakey = gen_key(err)) == NULL || (skey = gen_key(err)) == NULL ||
	    (ckey = gen_key(err)) == NULL)
		goto out;
	if ((ca = make_cert(cakey, "autosync CA", NULL, NULL, 0,
	    err)) == NULL ||
	    (scert = make_cert(skey, server_name, ca, cakey, 1,
	    err)) == NULL ||
	    (ccert = make_cert(ckey, client_id, ca, cakey, 2, err)) == NULL)
		goto out;
	if (write_pem(dir, "ca.key", NULL, cakey, err) == -1 ||
	    write_pem(dir, "ca.crt", ca, NULL, err) == -1 ||
	    write_pem(dir, "server.key", NULL, skey, err) == -1 ||
	    write_pem(dir, "server.crt", scert, NULL, err) == -1 ||
	    write_pem(dir, "client.key", NULL, ckey, err) == -1 ||
	    write_pem(dir, "client.crt", ccert, NULL, err) == -1)
		goto out;
	rc = 0;
out:
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(skey);
	EVP_PKEY_free(ckey);
	X509_free(ca);
	X509_free(scert);
	X509_free(ccert);
	return rc;
}
