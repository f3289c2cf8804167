/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sa add | sa del | sa update | sa get | sa flush: Security Associations
 * (RFC 4301 4.4.2), and spi alloc, which reserves an SA identity.
 */
#include <stdlib.h>
#include <string.h>

#include "grammar_priv.h"

enum {
	K_SRC,
	K_DST,
	K_PROTO,
	K_SPI,
	K_DIR,
	K_MODE,
	K_AEAD,
	K_ENC,
	K_AUTH,
	K_REPLAY,
	K_ESN,
	K_ENCAP,
	K_LIFETIME,
	K_SEQ,
	K_REPLACE,
	K_REQID,
	K_SEQ_LIMIT,
	K_OWNER,
	K_SEQ_IN,
	K_MAX
};

static const char *const kw_names[K_MAX] = {
    [K_SRC] = "src",
    [K_DST] = "dst",
    [K_PROTO] = "proto",
    [K_SPI] = "spi",
    [K_DIR] = "dir",
    [K_MODE] = "mode",
    [K_AEAD] = "aead",
    [K_ENC] = "enc",
    [K_AUTH] = "auth",
    [K_REPLAY] = "replay-window",
    [K_ESN] = "esn",
    [K_ENCAP] = "encap",
    [K_LIFETIME] = "lifetime",
    [K_SEQ] = "seq-out",
    [K_REPLACE] = "replace",
    [K_REQID] = "reqid",
    [K_SEQ_LIMIT] = "seq-limit",
    [K_OWNER] = "owner",
    [K_SEQ_IN] = "seq-in",
};

static int keyword(const char *w)
{
	int k;

	for (k = 0; k < K_MAX; k++)
		if (!strcmp(w, kw_names[k]))
			return k;
	return -1;
}

static int parse_proto(struct gram_cur *c, const char *v, uint32_t *proto)
{
	if (strcmp(v, "esp"))
		return gram_err(c, "unsupported proto \"%s\" (only esp)", GW(v));
	*proto = GRAM_PROTO_ESP;
	return 0;
}

/* The key word after an algorithm, checked against the algorithm's length. */
static int alg_key(struct gram_cur *c, const char *alg, size_t need, ProtobufCBinaryData *key)
{
	const char *v = gram_take(c);

	if (!v)
		return gram_err(c, "missing key after \"%s\"", alg);
	if (gram_hexkey(c, v, key))
		return -1;
	if (key->len != need)
		return gram_err(c, "key for %s must be %zu bytes%s, got %zu", alg, need,
				gram_key_note(alg), key->len);
	return 0;
}

static int parse_aead(struct gram_cur *c, Dpsec__SaAdd *m)
{
	const char *alg = gram_value(c, "aead");

	if (!alg)
		return -1;
	if (gram_lookup_aead(alg, &m->aead))
		return gram_err(c,
				"unknown algorithm \"%s\" (aes-gcm-128, aes-gcm-256, "
				"chacha20-poly1305)",
				GW(alg));
	m->has_aead = 1;
	m->has_enc_key = 1;
	return alg_key(c, alg, gram_aead_key_len(m->aead), &m->enc_key);
}

static int parse_enc(struct gram_cur *c, Dpsec__SaAdd *m)
{
	const char *alg = gram_value(c, "enc"), *v;

	if (!alg)
		return -1;
	if (gram_lookup_cipher(alg, &m->cipher))
		return gram_err(c,
				"unknown algorithm \"%s\" (aes-cbc-128, aes-cbc-256, "
				"aes-ctr-128, null)",
				GW(alg));
	m->has_cipher = 1;
	if (m->cipher == DPSEC__CIPHER__CIPHER_NULL) {
		/* null has no key: "0x" may stand in for it, as ip xfrm writes it */
		v = gram_peek(c);
		if (v && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
			if (alg_key(c, alg, 0, &m->enc_key))
				return -1;
			free(m->enc_key.data);
			m->enc_key.data = NULL;
		}
		return 0;
	}
	m->has_enc_key = 1;
	return alg_key(c, alg, gram_cipher_key_len(m->cipher), &m->enc_key);
}

static int parse_auth(struct gram_cur *c, Dpsec__SaAdd *m)
{
	const char *alg = gram_value(c, "auth");

	if (!alg)
		return -1;
	if (gram_lookup_integ(alg, &m->integ))
		return gram_err(c,
				"unknown algorithm \"%s\" (hmac-sha1-96, hmac-sha256-128, "
				"hmac-sha384-192, hmac-sha512-256, hmac-md5-96)",
				GW(alg));
	m->has_integ = 1;
	m->has_auth_key = 1;
	return alg_key(c, alg, gram_integ_key_len(m->integ), &m->auth_key);
}

/* "encap udp sport P dport P", shared by sa add and sa update. */
static int parse_encap(struct gram_cur *c, Dpsec__Encap **out)
{
	static const char *const names[2] = {"sport", "dport"};
	uint32_t *ports[2];
	const char *w = gram_value(c, "encap");
	int i;

	if (!w)
		return -1;
	if (strcmp(w, "udp"))
		return gram_err(c, "unsupported encap \"%s\" (only udp)", GW(w));
	*out = malloc(sizeof(**out));
	if (!*out)
		return gram_err(c, "out of memory");
	dpsec__encap__init(*out);
	ports[0] = &(*out)->sport;
	ports[1] = &(*out)->dport;
	for (i = 0; i < 2; i++) {
		w = gram_take(c);
		if (!w || strcmp(w, names[i]))
			return gram_err(c, "missing \"%s\" in \"encap udp sport P dport P\"",
					names[i]);
		w = gram_value(c, names[i]);
		if (!w || gram_u32(c, names[i], w, 1, UINT16_MAX, ports[i]))
			return -1;
	}
	return 0;
}

static int parse_lifetime(struct gram_cur *c, Dpsec__SaAdd *m)
{
	static const char *const units[3] = {"bytes", "packets", "seconds"};
	static const char *const slot_names[6] = {"soft bytes", "soft packets", "soft seconds",
						  "hard bytes", "hard packets", "hard seconds"};
	Dpsec__Lifetime *lt = malloc(sizeof(*lt));
	protobuf_c_boolean *has[6];
	uint64_t *val[6];
	uint32_t seen = 0;
	const char *w, *v;
	int groups = 0, i;

	if (!lt)
		return gram_err(c, "out of memory");
	dpsec__lifetime__init(lt);
	m->lifetime = lt;
	has[0] = &lt->has_soft_bytes, val[0] = &lt->soft_bytes;
	has[1] = &lt->has_soft_packets, val[1] = &lt->soft_packets;
	has[2] = &lt->has_soft_seconds, val[2] = &lt->soft_seconds;
	has[3] = &lt->has_hard_bytes, val[3] = &lt->hard_bytes;
	has[4] = &lt->has_hard_packets, val[4] = &lt->hard_packets;
	has[5] = &lt->has_hard_seconds, val[5] = &lt->hard_seconds;

	while ((w = gram_peek(c)) && (!strcmp(w, "soft") || !strcmp(w, "hard"))) {
		int base = w[0] == 'h' ? 3 : 0, n = 0;

		gram_take(c);
		while ((v = gram_peek(c))) {
			for (i = 0; i < 3 && strcmp(v, units[i]); i++)
				;
			if (i == 3)
				break;
			gram_take(c);
			if (gram_once(c, &seen, base + i, slot_names[base + i]) ||
			    !(v = gram_value(c, units[i])))
				return -1;
			/* 0 would expire at once; leave the unit out for "no limit" */
			if (gram_u64(c, slot_names[base + i], v, 1, UINT64_MAX, val[base + i]))
				return -1;
			*has[base + i] = 1;
			n++;
		}
		if (!n)
			return gram_err(c, "\"%s\" needs bytes, packets or seconds", w);
		groups++;
	}
	if (!groups)
		return gram_err(c, "\"lifetime\" needs \"soft\" or \"hard\"");
	for (i = 0; i < 3; i++)
		if (*has[i] && *has[i + 3] && *val[i] > *val[i + 3])
			return gram_err(c, "lifetime: soft %s %llu exceeds hard %s %llu", units[i],
					(unsigned long long)*val[i], units[i],
					(unsigned long long)*val[i + 3]);
	return 0;
}

static int parse_mode(struct gram_cur *c, const char *v, Dpsec__Mode *mode)
{
	if (!strcmp(v, "tunnel"))
		*mode = DPSEC__MODE__MODE_TUNNEL;
	else if (!strcmp(v, "transport"))
		*mode = DPSEC__MODE__MODE_TRANSPORT;
	else
		return gram_err(c, "bad mode \"%s\" (tunnel or transport)", GW(v));
	return 0;
}

/* Keywords followed by exactly one value word. */
static int parse_value(struct gram_cur *c, Dpsec__SaAdd *m, int k, const char *v)
{
	switch (k) {
	case K_SRC:
		return gram_addr_bin(c, "src", v, &m->src);
	case K_DST:
		return gram_addr_bin(c, "dst", v, &m->dst);
	case K_PROTO:
		return parse_proto(c, v, &m->proto);
	case K_SPI:
		return gram_spi(c, v, &m->spi);
	case K_DIR:
		return gram_dir(c, v, &m->dir);
	case K_MODE:
		return parse_mode(c, v, &m->mode);
	case K_REPLAY:
		m->has_replay_window = 1;
		return gram_u32(c, "replay-window", v, 0, GRAM_REPLAY_MAX, &m->replay_window);
	case K_SEQ:
		m->has_seq_out = 1;
		return gram_u64(c, "seq-out", v, 0, UINT64_MAX, &m->seq_out);
	case K_REQID:
		m->has_reqid = 1;
		return gram_u32(c, "reqid", v, 1, UINT32_MAX, &m->reqid);
	case K_SEQ_LIMIT:
		m->has_seq_limit = 1;
		return gram_u64(c, "seq-limit", v, 0, UINT64_MAX, &m->seq_limit);
	case K_OWNER:
		return gram_name(c, "owner", v, &m->owner);
	case K_SEQ_IN:
		m->has_seq_in = 1;
		return gram_u64(c, "seq-in", v, 0, UINT64_MAX, &m->seq_in);
	}
	return gram_err(c, "internal: keyword %d", k);
}

static int check_add(struct gram_cur *c, const Dpsec__SaAdd *m, uint32_t seen)
{
	static const int required[] = {K_SRC, K_DST, K_PROTO, K_SPI, K_DIR, K_MODE};
	size_t i;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!(seen & (1u << required[i])))
			return gram_err(c, "missing \"%s\"", kw_names[required[i]]);
	if (m->src.len != m->dst.len)
		return gram_err(c, "src and dst address families differ");
	if (m->has_integ && !m->has_cipher && !m->has_aead)
		return gram_err(c, "\"auth\" needs \"enc\"");
	if (!m->has_aead && !m->has_cipher)
		return gram_err(c, "missing \"aead\" or \"enc\"");
	if (m->has_aead && m->has_cipher)
		return gram_err(c, "\"aead\" and \"enc\" are exclusive");
	if (m->has_aead && m->has_integ)
		return gram_err(c, "\"auth\" cannot be used with \"aead\" (it authenticates)");
	if (m->has_cipher && !m->has_integ)
		return gram_err(c, "\"enc\" needs \"auth\" (ESP without integrity is refused)");
	if (m->has_seq_limit && m->dir != DPSEC__DIR__DIR_OUT)
		return gram_err(c, "\"seq-limit\" is only for dir out");
	if (m->has_seq_in && m->dir != DPSEC__DIR__DIR_IN)
		return gram_err(c, "\"seq-in\" is only for dir in");
	if (m->has_seq_out && m->dir != DPSEC__DIR__DIR_OUT)
		return gram_err(c, "\"seq-out\" is only for dir out");
	if (m->has_seq_limit && m->has_seq_out && m->seq_limit < m->seq_out)
		return gram_err(c, "seq-limit %llu is below seq-out %llu",
				(unsigned long long)m->seq_limit, (unsigned long long)m->seq_out);
	return 0;
}

static int parse_add(struct gram_cur *c, Dpsec__Request *req)
{
	Dpsec__SaAdd *m = malloc(sizeof(*m));
	const char *w, *v;
	uint32_t seen = 0;
	int k, rc;

	c->cmd = "sa add";
	if (!m)
		return gram_err(c, "out of memory");
	dpsec__sa_add__init(m);
	req->sa_add = m;
	req->body_case = DPSEC__REQUEST__BODY_SA_ADD;
	while ((w = gram_take(c))) {
		k = keyword(w);
		if (k < 0)
			return gram_unknown(c, w);
		if (gram_once(c, &seen, k, w))
			return -1;
		switch (k) {
		case K_AEAD:
			rc = parse_aead(c, m);
			break;
		case K_ENC:
			rc = parse_enc(c, m);
			break;
		case K_AUTH:
			rc = parse_auth(c, m);
			break;
		case K_ENCAP:
			rc = parse_encap(c, &m->encap);
			break;
		case K_LIFETIME:
			rc = parse_lifetime(c, m);
			break;
		case K_ESN:
			m->has_esn = m->esn = 1;
			rc = 0;
			break;
		case K_REPLACE:
			m->has_replace = m->replace = 1;
			rc = 0;
			break;
		default:
			v = gram_value(c, w);
			rc = v ? parse_value(c, m, k, v) : -1;
			break;
		}
		if (rc)
			return -1;
	}
	return check_add(c, m, seen);
}

/* dst, proto or spi of an SA identity; other keywords are the caller's. */
static int parse_id_word(struct gram_cur *c, Dpsec__SaId *m, uint32_t *seen, int k, const char *w)
{
	const char *v;

	if (gram_once(c, seen, k, w) || !(v = gram_value(c, w)))
		return -1;
	if (k == K_DST)
		return gram_addr_bin(c, w, v, &m->dst);
	if (k == K_PROTO)
		return parse_proto(c, v, &m->proto);
	return gram_spi(c, v, &m->spi);
}

static int check_id(struct gram_cur *c, uint32_t seen)
{
	int k;

	for (k = K_DST; k <= K_SPI; k++)
		if (!(seen & (1u << k)))
			return gram_err(c, "missing \"%s\"", kw_names[k]);
	return 0;
}

static Dpsec__SaId *new_id(struct gram_cur *c)
{
	Dpsec__SaId *m = malloc(sizeof(*m));

	if (!m) {
		gram_err(c, "out of memory");
		return NULL;
	}
	dpsec__sa_id__init(m);
	return m;
}

/* sa del and sa get: nothing but the identity (dst, proto, spi). */
static int parse_id_only(struct gram_cur *c, Dpsec__SaId *m)
{
	const char *w;
	uint32_t seen = 0;
	int k;

	while ((w = gram_take(c))) {
		k = keyword(w);
		if (k != K_DST && k != K_PROTO && k != K_SPI)
			return gram_unknown(c, w);
		if (parse_id_word(c, m, &seen, k, w))
			return -1;
	}
	return check_id(c, seen);
}

static int parse_del(struct gram_cur *c, Dpsec__Request *req)
{
	c->cmd = "sa del";
	req->sa_del = new_id(c);
	if (!req->sa_del)
		return -1;
	req->body_case = DPSEC__REQUEST__BODY_SA_DEL;
	return parse_id_only(c, req->sa_del);
}

static int parse_get(struct gram_cur *c, Dpsec__Request *req)
{
	c->cmd = "sa get";
	req->sa_query = new_id(c);
	if (!req->sa_query)
		return -1;
	req->body_case = DPSEC__REQUEST__BODY_SA_QUERY;
	return parse_id_only(c, req->sa_query);
}

/* Keywords only sa update takes, numbered after the shared ones. */
enum { U_NEW_SRC = K_MAX, U_NEW_DST };

static int update_keyword(const char *w)
{
	int k = keyword(w);

	if (k == K_DST || k == K_PROTO || k == K_SPI || k == K_ENCAP)
		return k;
	if (!strcmp(w, "new-src"))
		return U_NEW_SRC;
	if (!strcmp(w, "new-dst"))
		return U_NEW_DST;
	return -1;
}

static int check_update(struct gram_cur *c, const Dpsec__SaUpdate *m, uint32_t seen)
{
	if (check_id(c, seen))
		return -1;
	if (!m->has_new_src && !m->has_new_dst && !m->new_encap)
		return gram_err(c, "nothing to change: give \"new-src\", \"new-dst\" or \"encap\"");
	/* An SA keeps its family: the id's dst is in it, so every new address must be too. */
	if (m->has_new_src && m->new_src.len != m->id->dst.len)
		return gram_err(c, "new-src and dst address families differ");
	if (m->has_new_dst && m->new_dst.len != m->id->dst.len)
		return gram_err(c, "new-dst and dst address families differ");
	return 0;
}

static int parse_update(struct gram_cur *c, Dpsec__Request *req)
{
	Dpsec__SaUpdate *m = malloc(sizeof(*m));
	const char *w, *v;
	uint32_t seen = 0;
	int k, rc;

	c->cmd = "sa update";
	if (!m)
		return gram_err(c, "out of memory");
	dpsec__sa_update__init(m);
	req->sa_update = m;
	req->body_case = DPSEC__REQUEST__BODY_SA_UPDATE;
	m->id = new_id(c);
	if (!m->id)
		return -1;
	while ((w = gram_take(c))) {
		k = update_keyword(w);
		if (k < 0)
			return gram_unknown(c, w);
		if (k == K_DST || k == K_PROTO || k == K_SPI) {
			rc = parse_id_word(c, m->id, &seen, k, w);
		} else if (gram_once(c, &seen, k, w)) {
			rc = -1;
		} else if (k == K_ENCAP) {
			rc = parse_encap(c, &m->new_encap);
		} else if (!(v = gram_value(c, w))) {
			rc = -1;
		} else if (k == U_NEW_SRC) {
			m->has_new_src = 1;
			rc = gram_addr_bin(c, w, v, &m->new_src);
		} else {
			m->has_new_dst = 1;
			rc = gram_addr_bin(c, w, v, &m->new_dst);
		}
		if (rc)
			return -1;
	}
	return check_update(c, m, seen);
}

/* sa lease dst A proto esp spi N seq-limit N */
static int parse_lease(struct gram_cur *c, Dpsec__Request *req)
{
	Dpsec__SaLease *m = malloc(sizeof(*m));
	const char *w, *v;
	uint32_t seen = 0;
	bool limit = false;
	int k;

	c->cmd = "sa lease";
	if (!m)
		return gram_err(c, "out of memory");
	dpsec__sa_lease__init(m);
	req->sa_lease = m;
	req->body_case = DPSEC__REQUEST__BODY_SA_LEASE;
	m->id = new_id(c);
	if (!m->id)
		return -1;
	while ((w = gram_take(c))) {
		k = keyword(w);
		if (k == K_DST || k == K_PROTO || k == K_SPI) {
			if (parse_id_word(c, m->id, &seen, k, w))
				return -1;
			continue;
		}
		if (k != K_SEQ_LIMIT)
			return gram_unknown(c, w);
		if (gram_once(c, &seen, k, w) || !(v = gram_value(c, w)) ||
		    gram_u64(c, "seq-limit", v, 0, UINT64_MAX, &m->seq_limit))
			return -1;
		limit = true;
	}
	if (check_id(c, seen))
		return -1;
	if (!limit)
		return gram_err(c, "missing \"seq-limit\"");
	return 0;
}

#define SA_VERBS "\"add\", \"del\", \"update\", \"lease\", \"get\" or \"flush\""

int gram_parse_sa(struct gram_cur *c, Dpsec__Request *req)
{
	const char *w = gram_take(c);

	c->cmd = "sa";
	if (w && !strcmp(w, "add"))
		return parse_add(c, req);
	if (w && !strcmp(w, "del"))
		return parse_del(c, req);
	if (w && !strcmp(w, "update"))
		return parse_update(c, req);
	if (w && !strcmp(w, "lease"))
		return parse_lease(c, req);
	if (w && !strcmp(w, "get"))
		return parse_get(c, req);
	if (w && !strcmp(w, "flush")) {
		c->cmd = "sa flush";
		return gram_parse_flush(c, req, DPSEC__FLUSH__WHAT__SA);
	}
	if (!w)
		return gram_err(c, "expected " SA_VERBS);
	return gram_err(c, "expected " SA_VERBS ", got \"%s\"", GW(w));
}

/* spi alloc dst A proto esp [min N] [max N]: an SPI no SA to A uses yet. */
static int parse_spi_alloc(struct gram_cur *c, Dpsec__Request *req)
{
	enum { A_DST, A_PROTO, A_MIN, A_MAX, A_N };
	static const char *const names[A_N] = {"dst", "proto", "min", "max"};
	Dpsec__SpiAlloc *m = malloc(sizeof(*m));
	const char *w, *v;
	uint32_t seen = 0;
	int k, rc;

	c->cmd = "spi alloc";
	if (!m)
		return gram_err(c, "out of memory");
	dpsec__spi_alloc__init(m);
	req->spi_alloc = m;
	req->body_case = DPSEC__REQUEST__BODY_SPI_ALLOC;
	while ((w = gram_take(c))) {
		for (k = 0; k < A_N && strcmp(w, names[k]); k++)
			;
		if (k == A_N)
			return gram_unknown(c, w);
		if (gram_once(c, &seen, k, w) || !(v = gram_value(c, w)))
			return -1;
		switch (k) {
		case A_DST:
			rc = gram_addr_bin(c, w, v, &m->dst);
			break;
		case A_PROTO:
			rc = parse_proto(c, v, &m->proto);
			break;
		case A_MIN:
			m->has_min = 1;
			rc = gram_u32(c, w, v, GRAM_SPI_MIN, UINT32_MAX, &m->min);
			break;
		default:
			m->has_max = 1;
			rc = gram_u32(c, w, v, GRAM_SPI_MIN, UINT32_MAX, &m->max);
			break;
		}
		if (rc)
			return -1;
	}
	for (k = A_DST; k <= A_PROTO; k++)
		if (!(seen & (1u << k)))
			return gram_err(c, "missing \"%s\"", names[k]);
	if (m->has_min && m->has_max && m->min > m->max)
		return gram_err(c, "min 0x%08x exceeds max 0x%08x", m->min, m->max);
	return 0;
}

int gram_parse_spi(struct gram_cur *c, Dpsec__Request *req)
{
	const char *w = gram_take(c);

	c->cmd = "spi";
	if (w && !strcmp(w, "alloc"))
		return parse_spi_alloc(c, req);
	if (!w)
		return gram_err(c, "expected \"alloc\"");
	return gram_err(c, "expected \"alloc\", got \"%s\"", GW(w));
}
