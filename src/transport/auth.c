/* auth.c - the tcp:// PSK handshake; see auth.h for the protocol. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/buf.h"
#include "transport/auth.h"
#include "base/banned.h"

#define MAGIC_LEN	10
#define MAC_LEN		32
#define KEY_MIN		16
#define LABEL_SERVER	"autosync-auth-v1 server"
#define LABEL_CLIENT	"autosync-auth-v1 client"
#define LABEL_SESSION	"autosync-auth-v1 session"
#define RESULT_OK	0
#define RESULT_FAIL	1

/* One handshake: the conn, its deadline, the transcript so far. */
struct hs {
	struct conn	*c;
	uint64_t	 deadline;	/* conn_now_ms() */
	int		 saved_idle;
	uint8_t		 tr[2 * AUTH_MSG_MAX];
	size_t		 trlen;
};

static int
hs_left(struct hs *h, struct as_err *err)
{
	uint64_t now = conn_now_ms();

	if (now >= h->deadline)
		return as_err_set(err, AS_E_TIMEOUT, ETIMEDOUT, "connection "
		    "to '%s' timed out during authentication", h->c->peer);
	h->c->idle_ms = (int)(h->deadline - now);
	return 0;
}

static int
hs_read(struct hs *h, void *p, size_t n, struct as_err *err)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		if (hs_left(h, err) == -1)
			return -1;
		r = conn_read_some(h->c, (uint8_t *)p + got, n - got, err);
		if (r == -1)
			return -1;
		if (r == 0)
			return as_err_set(err, AS_E_TRUNCATED, 0, "connection "
			    "to '%s': peer closed the connection",
			    h->c->peer);
		got += (size_t)r;
	}
	return 0;
}

/* Receive one handshake message; len checked against AUTH_MSG_MAX first. */
static int
hs_recv(struct hs *h, uint8_t *type, uint8_t *msg, size_t *len,
    struct as_err *err)
{
	uint8_t hdr[5];
	uint32_t l;

	if (hs_read(h, hdr, sizeof(hdr), err) == -1)
		return -1;
	l = le32(hdr);
	if (l == 0 || l - 1 > AUTH_MSG_MAX)
		return as_err_set(err, AS_E_LIMIT, 0, "handshake message of "
		    "%u bytes", l);
	*type = hdr[4];
	*len = l - 1;
	return hs_read(h, msg, *len, err);
}

static int
hs_send(struct hs *h, uint8_t type, const void *msg, size_t len,
    struct as_err *err)
{
	uint8_t frame[5 + AUTH_MSG_MAX];

	if (len > AUTH_MSG_MAX)
		return as_err_set(err, AS_E_INTERNAL, 0, "handshake message "
		    "too large");
	put_le32(frame, (uint32_t)(len + 1));
	frame[4] = type;
	if (len > 0)
		memcpy(frame + 5, msg, len);
	if (hs_left(h, err) == -1)
		return -1;
	return conn_write_full(h->c, frame, 5 + len, err);
}

static void
hs_add(struct hs *h, const void *p, size_t n)
{
	/* Both messages are <= AUTH_MSG_MAX: this always fits. */
	if (n > sizeof(h->tr) - h->trlen)
		n = sizeof(h->tr) - h->trlen;
	memcpy(h->tr + h->trlen, p, n);
	h->trlen += n;
}

/* HMAC-SHA256(key, label | transcript | extra). */
static int
hs_mac(const struct hs *h, const struct psk *k, const char *label,
    const uint8_t *extra, size_t extralen, uint8_t out[MAC_LEN])
{
	uint8_t in[64 + sizeof(h->tr) + MAC_LEN];
	size_t n = strlen(label);
	unsigned int outlen = MAC_LEN;

	memcpy(in, label, n);
	memcpy(in + n, h->tr, h->trlen);
	n += h->trlen;
	if (extralen > 0) {
		memcpy(in + n, extra, extralen);
		n += extralen;
	}
	if (HMAC(EVP_sha256(), k->key, (int)k->len, in, n, out,
	    &outlen) == NULL || outlen != MAC_LEN)
		return -1;
	return 0;
}

static void
hs_init(struct hs *h, struct conn *c, const struct auth_opts *o)
{
	int ms = o != NULL && o->timeout_ms > 0 ? o->timeout_ms :
	    AUTH_TIMEOUT_MS;

	memset(h, 0, sizeof(*h));
	h->c = c;
	h->saved_idle = c->idle_ms;
	h->deadline = conn_now_ms() + (uint64_t)ms;
}

static void
hs_done(struct hs *h)
{
	h->c->idle_ms = h->saved_idle;
	OPENSSL_cleanse(h->tr, sizeof(h->tr));
}

static int
fail(struct hs *h, struct auth_result *res, const char *reason,
    struct as_err *err)
{
	if (res != NULL)
		res->reason = reason;
	hs_done(h);
	return as_err_set(err, AS_E_AUTH, 0, AUTH_FAILED);
}

/* Client: a transient problem keeps its class, the rest is AUTH. */
static int
client_fail(struct hs *h, struct auth_result *res, const char *reason,
    struct as_err *err)
{
	if (err != NULL && (err->code == AS_E_TIMEOUT ||
	    (err->code == AS_E_IO && err->sys_errno != 0))) {
		if (res != NULL)
			res->reason = reason;
		hs_done(h);
		return -1;
	}
	return fail(h, res, reason, err);
}

int
auth_client(struct conn *c, const struct psk *key,
    const struct auth_opts *opts, struct auth_result *res,
    struct as_err *err)
{
	struct hs h;
	uint8_t hello[AUTH_MSG_MAX], msg[AUTH_MSG_MAX], type;
	uint8_t nonce[AUTH_NONCE_LEN], mac[MAC_LEN], proof[MAC_LEN];
	size_t n = 0, idlen, len, plen, off;
	uint32_t flags = 0, required = 0, acc;
	uint16_t ver;

	hs_init(&h, c, opts);
	if (res != NULL)
		memset(res, 0, sizeof(*res));
	if (opts != NULL) {
		flags = opts->flags;
		required = opts->required;
	}
	if (key == NULL || key->len < KEY_MIN || key->len > KEY_LEN ||
	    (idlen = strlen(key->id)) == 0 || idlen > KEY_ID_MAX)
		return fail(&h, res, "no usable key", err);
	if (opts != NULL && opts->paramslen > AUTH_PARAMS_MAX)
		return fail(&h, res, "parameters too long", err);
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return fail(&h, res, "no random bytes", err);
	memcpy(hello, AUTH_MAGIC, MAGIC_LEN);
	n = MAGIC_LEN;
	put_le16(hello + n, AUTH_VERSION);
	n += 2;
	put_le32(hello + n, flags);
	n += 4;
	hello[n++] = (uint8_t)idlen;
	memcpy(hello + n, key->id, idlen);
	n += idlen;
	memcpy(hello + n, nonce, sizeof(nonce));
	n += sizeof(nonce);
	plen = opts != NULL ? opts->paramslen : 0;
	put_le16(hello + n, (uint16_t)plen);
	n += 2;
	if (plen > 0)
		memcpy(hello + n, opts->params, plen);
	n += plen;
	hs_add(&h, hello, n);
	if (hs_send(&h, AUTH_T_HELLO, hello, n, err) == -1)
		return client_fail(&h, res, "send hello", err);

	if (hs_recv(&h, &type, msg, &len, err) == -1)
		return client_fail(&h, res, "receive challenge", err);
	if (type == AUTH_T_BUSY) {
		if (res != NULL)
			res->reason = "server busy";
		hs_done(&h);
		return as_err_set(err, AS_E_IO, EAGAIN, "server '%s' is busy; "
		    "try again later", c->peer);
	}
	if (type != AUTH_T_CHALLENGE || len < 2 + 4 + AUTH_NONCE_LEN + 2 +
	    MAC_LEN)
		return fail(&h, res, "bad challenge", err);
	ver = le16(msg);
	acc = le32(msg + 2);
	off = 2 + 4 + AUTH_NONCE_LEN;
	plen = le16(msg + off);
	off += 2;
	if (plen > AUTH_PARAMS_MAX || len != off + plen + MAC_LEN)
		return fail(&h, res, "bad challenge length", err);
	if (ver != AUTH_VERSION)
		return fail(&h, res, "bad version", err);
	hs_add(&h, msg, len - MAC_LEN);
	if (hs_mac(&h, key, LABEL_SERVER, NULL, 0, mac) == -1)
		return fail(&h, res, "hmac", err);
	if (CRYPTO_memcmp(mac, msg + len - MAC_LEN, MAC_LEN) != 0)
		return fail(&h, res, "bad server proof", err);
	/* Proven server: now judge what it accepted. */
	if ((acc & ~flags) != 0)
		return fail(&h, res, "server accepted unrequested flags", err);
	if ((acc & required) != required)
		return fail(&h, res, "downgrade: server lacks a required "
		    "capability", err);
	if (res != NULL) {
		res->flags = acc;
		memcpy(res->peer_params, msg + off, plen);
		res->peer_paramslen = plen;
		memcpy(res->key_id, key->id, idlen + 1);
	}
	if (hs_mac(&h, key, LABEL_CLIENT, msg + len - MAC_LEN, MAC_LEN,
	    proof) == -1)
		return fail(&h, res, "hmac", err);
	if (res != NULL && hs_mac(&h, key, LABEL_SESSION, msg + len - MAC_LEN,
	    MAC_LEN, res->session) == -1)
		return fail(&h, res, "hmac", err);
	if (hs_send(&h, AUTH_T_PROOF, proof, sizeof(proof), err) == -1)
		return client_fail(&h, res, "send proof", err);
	if (hs_recv(&h, &type, msg, &len, err) == -1)
		return client_fail(&h, res, "receive result", err);
	if (type != AUTH_T_RESULT || len != 1 || msg[0] != RESULT_OK)
		return fail(&h, res, "refused by server", err);
	hs_done(&h);
	OPENSSL_cleanse(proof, sizeof(proof));
	return 0;
}

static void
server_refuse(struct hs *h)
{
	uint8_t st = RESULT_FAIL;

	/* Best effort, so the client reports AUTH rather than EOF. */
	if (conn_now_ms() < h->deadline)
		(void)hs_send(h, AUTH_T_RESULT, &st, 1, NULL);
}

int
auth_server(struct conn *c, const struct psk *keys, size_t nkeys,
    size_t *matched, const struct auth_opts *opts, struct auth_result *res,
    struct as_err *err)
{
	struct hs h;
	struct psk dummy;
	const struct psk *k = NULL;
	uint8_t msg[AUTH_MSG_MAX], chal[AUTH_MSG_MAX], type;
	uint8_t mac[MAC_LEN], proof_s[MAC_LEN];
	char id[KEY_ID_MAX + 1];
	size_t len, off, idlen, plen, i, n, kidx = 0;
	uint32_t cflags, offered = 0, required = 0, acc;
	const char *bad = NULL;

	hs_init(&h, c, opts);
	if (res != NULL)
		memset(res, 0, sizeof(*res));
	if (opts != NULL) {
		offered = opts->flags;
		required = opts->required;
		if (opts->paramslen > AUTH_PARAMS_MAX)
			return fail(&h, res, "parameters too long", err);
	}
	if (hs_recv(&h, &type, msg, &len, err) == -1)
		return fail(&h, res, err != NULL && err->code ==
		    AS_E_TIMEOUT ? "timeout waiting for hello" :
		    "bad or missing hello", err);
	/* Bounds first: magic, version, flags, id length. */
	if (type != AUTH_T_HELLO || len < MAGIC_LEN + 2 + 4 + 1)
		return fail(&h, res, "not a hello", err);
	if (memcmp(msg, AUTH_MAGIC, MAGIC_LEN) != 0)
		return fail(&h, res, "bad magic", err);
	off = MAGIC_LEN;
	if (le16(msg + off) != AUTH_VERSION)
		return fail(&h, res, "unsupported version", err);
	off += 2;
	cflags = le32(msg + off);
	off += 4;
	idlen = msg[off++];
	if (idlen == 0 || idlen > KEY_ID_MAX ||
	    len < off + idlen + AUTH_NONCE_LEN + 2)
		return fail(&h, res, "bad key id length", err);
	memcpy(id, msg + off, idlen);
	id[idlen] = '\0';
	off += idlen + AUTH_NONCE_LEN;
	plen = le16(msg + off);
	off += 2;
	if (plen > AUTH_PARAMS_MAX || len != off + plen)
		return fail(&h, res, "bad hello length", err);
	if (!key_id_valid(id))
		return fail(&h, res, "bad key id", err);
	hs_add(&h, msg, len);

	for (i = 0; i < nkeys; i++)
		if (keys[i].len >= KEY_MIN && keys[i].len <= KEY_LEN &&
		    strcmp(keys[i].id, id) == 0) {
			k = &keys[i];
			kidx = i;
			break;
		}
	if (k == NULL) {
		/* Answer as if we knew it: no oracle for valid ids. */
		memset(&dummy, 0, sizeof(dummy));
		dummy.len = KEY_LEN;
		if (RAND_bytes(dummy.key, KEY_LEN) != 1)
			return fail(&h, res, "no random bytes", err);
		k = &dummy;
		bad = "unknown key id";
	}
	if ((cflags & required) != required) {
		server_refuse(&h);
		return fail(&h, res, "downgrade: client lacks a required "
		    "capability", err);
	}
	acc = cflags & offered & AUTH_F_KNOWN;

	n = 0;
	put_le16(chal, AUTH_VERSION);
	n += 2;
	put_le32(chal + n, acc);
	n += 4;
	if (RAND_bytes(chal + n, AUTH_NONCE_LEN) != 1)
		return fail(&h, res, "no random bytes", err);
	n += AUTH_NONCE_LEN;
	plen = opts != NULL ? opts->paramslen : 0;
	put_le16(chal + n, (uint16_t)plen);
	n += 2;
	if (plen > 0)
		memcpy(chal + n, opts->params, plen);
	n += plen;
	hs_add(&h, chal, n);
	if (hs_mac(&h, k, LABEL_SERVER, NULL, 0, proof_s) == -1)
		return fail(&h, res, "hmac", err);
	memcpy(chal + n, proof_s, MAC_LEN);
	if (hs_send(&h, AUTH_T_CHALLENGE, chal, n + MAC_LEN, err) == -1)
		return fail(&h, res, "send challenge", err);

	if (hs_recv(&h, &type, msg, &len, err) == -1) {
		/*
		 * An autosync client with a wrong key finds our proof wrong
		 * and closes here; a slow one times out, which is no guess.
		 */
		if (res != NULL && err != NULL && err->code != AS_E_TIMEOUT)
			res->guess = 1;
		return fail(&h, res, "bad or missing proof", err);
	}
	if (type != AUTH_T_PROOF || len != MAC_LEN) {
		server_refuse(&h);
		return fail(&h, res, "not a proof", err);
	}
	if (hs_mac(&h, k, LABEL_CLIENT, proof_s, MAC_LEN, mac) == -1)
		return fail(&h, res, "hmac", err);
	if (CRYPTO_memcmp(mac, msg, MAC_LEN) != 0 || bad != NULL) {
		server_refuse(&h);
		OPENSSL_cleanse(&dummy, sizeof(dummy));
		if (res != NULL)
			res->guess = 1;
		return fail(&h, res, bad != NULL ? bad : "bad client proof",
		    err);
	}
	if (res != NULL) {
		res->flags = acc;
		memcpy(res->key_id, id, idlen + 1);
		/* The client's params sit just before its nonce's end. */
		off = MAGIC_LEN + 2 + 4 + 1 + idlen + AUTH_NONCE_LEN;
		plen = le16(h.tr + off);
		memcpy(res->peer_params, h.tr + off + 2, plen);
		res->peer_paramslen = plen;
		if (hs_mac(&h, k, LABEL_SESSION, proof_s, MAC_LEN,
		    res->session) == -1)
			return fail(&h, res, "hmac", err);
	}
	type = RESULT_OK;
	if (hs_send(&h, AUTH_T_RESULT, &type, 1, err) == -1)
		return fail(&h, res, "send result", err);
	if (matched != NULL)
		*matched = kidx;
	hs_done(&h);
	return 0;
}

void
auth_server_busy(struct conn *c)
{
	struct hs h;
	struct auth_opts o;

	memset(&o, 0, sizeof(o));
	o.timeout_ms = 1000;
	hs_init(&h, c, &o);
	(void)hs_send(&h, AUTH_T_BUSY, NULL, 0, NULL);
	(void)conn_shutdown_write(c, NULL);
	hs_done(&h);
}
