/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SA database: rte_hash (lock-free readers) from identity to an SA record
 * holding the rte_ipsec SA, its crypto session and per-worker counters.
 */
#define ALLOW_EXPERIMENTAL_API 1 /* rte_rcu_qsbr_dq_* is experimental in 22.11 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_malloc.h>

#include "aesgcm512.h"
#include "crypto.h"
#include "sad.h"

#define IPPROTO_ESP_NUM	 50
#define AEAD_SALT_LEN	 4 /* RFC 4106/7634: the key material ends in the salt */
#define CTR_NONCE_LEN	 4 /* RFC 3686: likewise the nonce */
#define AEAD_IV_LEN	 12
#define AEAD_AAD_LEN	 8 /* SPI + 32-bit sequence number */
#define AEAD_AAD_ESN_LEN 12
#define CBC_IV_LEN	 16
#define CTR_IV_LEN	 16 /* counter block rte_ipsec builds: nonce | IV | counter */
#define TUNNEL_TTL	 64
/* Raise a soft expiry this many sequence numbers before they run out. */
#define SEQ_SOFT_MARGIN (1ULL << 24)

struct sad_defer {
	struct sa *sa;
	int64_t pos; /* hash key slot to release, or -1 when the key stays (replace) */
};

static struct rte_hash *sad_hash;
static struct rte_rcu_qsbr_dq *sad_dq;
static struct rte_rcu_qsbr *sad_qs;
unsigned sad_workers;

static const char *const drop_names[SA_DROP_MAX] = {
    [SA_DROP_AUTH] = "auth",	   [SA_DROP_REPLAY] = "replay", [SA_DROP_LATE] = "late",
    [SA_DROP_TRAILER] = "trailer", [SA_DROP_POLICY] = "policy", [SA_DROP_EXPIRED] = "expired",
    [SA_DROP_LEASE] = "lease",	   [SA_DROP_OTHER] = "other",
};

static int addr_family(size_t len);
static void sum_counters(const struct sa *sa, struct sa_counters *t);
static sad_rebind_fn sad_rebind;
/* sad_update: what the replacing record inherits, set before it is published. */
struct sad_carry {
	struct sa_counters t;
	uint64_t add_tsc;
	bool expired_soft;
};
static const struct sad_carry *sad_carry;

void sad_set_rebind(sad_rebind_fn fn)
{
	sad_rebind = fn;
}

struct sa *sad_find_spi(bool inbound, uint32_t spi, const uint8_t *dst, size_t len)
{
	const void *key;
	void *data;
	uint32_t next = 0;

	if (sad_hash == NULL)
		return NULL;
	while (rte_hash_iterate(sad_hash, &key, &data, &next) >= 0) {
		struct sa *sa = data;

		if (sa->inbound != inbound || ntohl(sa->key.spi) != spi)
			continue;
		if (len != 0 && (addr_family(len) != sa->family || memcmp(sa->dst, dst, len) != 0))
			continue;
		return sa;
	}
	return NULL;
}

static void sa_free(struct sa *sa)
{
	if (sa->params != NULL) {
		explicit_bzero(sa->params, sa->params_len);
		free(sa->params);
	}
	crypto_session_destroy(&sa->ss);
	ipsecmb_sa_wipe(&sa->mb);
	explicit_bzero(&sa->gcm, sizeof(sa->gcm));
	explicit_bzero(&sa->gcm_h, sizeof(sa->gcm_h));
	if (sa->ss.sa != NULL) /* set once rte_ipsec_sa_init() succeeded */
		rte_ipsec_sa_fini(sa->ss.sa);
	rte_free(sa);
}

static void defer_free(void *p, void *e, unsigned n)
{
	struct sad_defer *d = e;

	RTE_SET_USED(p);
	for (unsigned i = 0; i < n; i++) {
		if (d[i].pos >= 0)
			rte_hash_free_key_with_position(sad_hash, (int32_t)d[i].pos);
		sa_free(d[i].sa);
	}
}

/* Hand a record (and its key slot) to the grace-period queue. */
uint64_t sad_natt_ports[65536 / 64];
static uint32_t natt_refs[65536]; /* inbound NAT-T SAs per local port */
uint32_t sad_natt_inbound;

static void natt_port_set(uint16_t port, bool on)
{
	uint64_t bit = 1ull << (port % 64), v = sad_natt_ports[port / 64];

	__atomic_store_n(&sad_natt_ports[port / 64], on ? v | bit : v & ~bit, __ATOMIC_RELAXED);
}

/* An inbound NAT-T SA comes into (+1) or leaves (-1) the table: its port follows. */
static void natt_ref(const struct sa *sa, int d)
{
	if (!sa->inbound || !sa->natt)
		return;
	__atomic_store_n(&sad_natt_inbound, sad_natt_inbound + (uint32_t)d, __ATOMIC_RELAXED);
	if (sa->dport == SAD_NATT_PORT)
		return;
	natt_refs[sa->dport] += (uint32_t)d;
	natt_port_set(sa->dport, natt_refs[sa->dport] != 0);
}

static void retire(struct sa *sa, int32_t pos)
{
	struct sad_defer d = {.sa = sa, .pos = pos};

	natt_ref(sa, -1);
	if (sad_dq == NULL || rte_rcu_qsbr_dq_enqueue(sad_dq, &d) != 0) {
		/* No readers registered (or queue full): wait them out here. */
		if (sad_qs != NULL)
			rte_rcu_qsbr_synchronize(sad_qs, RTE_QSBR_THRID_INVALID);
		defer_free(NULL, &d, 1);
	}
}

/* Where this CPU lets short AES-GCM payloads go, for every SA (sad_init). */
static enum sa_gcm_short gcm_short_isa;

int sad_init(struct rte_rcu_qsbr *qs, unsigned n_workers, char *err, size_t errlen)
{
	struct rte_hash_parameters hp = {
	    .name = "dpsec_sad",
	    .entries = SAD_ENTRIES_MAX,
	    .key_len = sizeof(struct sa_key),
	    .hash_func = rte_hash_crc,
	    .socket_id = SOCKET_ID_ANY,
	    .extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};

	/* what sad_prefetch counts on: every burst needs one line of struct sa */
	RTE_BUILD_BUG_ON(offsetof(struct sa, hard_bytes) + sizeof(uint64_t) > RTE_CACHE_LINE_SIZE);
	memset(natt_refs, 0, sizeof(natt_refs));
	memset(sad_natt_ports, 0, sizeof(sad_natt_ports));
	sad_natt_inbound = 0;
	natt_port_set(SAD_NATT_PORT, true);

	if (n_workers == 0) {
		snprintf(err, errlen, "sad: no workers");
		return -EINVAL;
	}
	sad_hash = rte_hash_create(&hp);
	if (sad_hash == NULL) {
		snprintf(err, errlen, "sad: rte_hash_create: %s", rte_strerror(rte_errno));
		return -ENOMEM;
	}
	sad_qs = qs;
	sad_workers = n_workers;
	gcm_short_isa = aesgcm512_usable() ? SA_GCM_AVX512
			: aesgcm_usable()  ? SA_GCM_AESNI
					   : SA_GCM_LONG;
	RTE_LOG(INFO, USER1, "dpsec: short AES-GCM payloads: %s\n",
		gcm_short_isa == SA_GCM_AVX512	? "AES-NI up to 64 bytes, AVX-512 VAES up to 48"
		: gcm_short_isa == SA_GCM_AESNI ? "AES-NI up to 64 bytes"
						: "intel-ipsec-mb");
	if (qs != NULL) {
		struct rte_rcu_qsbr_dq_parameters dp = {
		    .name = "dpsec_sad_dq",
		    .size = SAD_ENTRIES_MAX,
		    .esize = sizeof(struct sad_defer),
		    .trigger_reclaim_limit = 64,
		    .max_reclaim_size = 256,
		    .free_fn = defer_free,
		    .v = qs,
		};

		sad_dq = rte_rcu_qsbr_dq_create(&dp);
		if (sad_dq == NULL) {
			snprintf(err, errlen, "sad: defer queue: %s", rte_strerror(rte_errno));
			rte_hash_free(sad_hash);
			sad_hash = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

void sad_fini(void)
{
	if (sad_hash == NULL)
		return;
	sad_flush(NULL);
	if (sad_dq != NULL) {
		/* Only at shutdown: every worker has stopped reading by now. */
		while (rte_rcu_qsbr_dq_delete(sad_dq) != 0)
			rte_rcu_qsbr_synchronize(sad_qs, RTE_QSBR_THRID_INVALID);
		sad_dq = NULL;
	}
	rte_hash_free(sad_hash);
	sad_hash = NULL;
}

unsigned sad_reclaim(void)
{
	unsigned freed = 0, pending = 0, avail = 0;

	if (sad_dq != NULL)
		rte_rcu_qsbr_dq_reclaim(sad_dq, SAD_ENTRIES_MAX, &freed, &pending, &avail);
	return pending;
}

static int addr_family(size_t len)
{
	return len == 4 ? AF_INET : len == 16 ? AF_INET6 : -1;
}

static void key_fill(struct sa_key *k, uint32_t spi_be, const void *dst, int family, uint8_t proto)
{
	memset(k, 0, sizeof(*k));
	k->spi = spi_be;
	k->family = (uint8_t)family;
	k->proto = proto;
	memcpy(k->dst, dst, family == AF_INET ? 4 : 16);
}

static const char *id_fmt(const ProtobufCBinaryData *dst, uint32_t spi, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";
	int af = addr_family(dst->len);

	if (af > 0)
		inet_ntop(af, dst->data, a, sizeof(a));
	snprintf(buf, len, "dst %s proto esp spi 0x%08x", a, spi);
	return buf;
}

struct sa *sad_find(const Dpsec__SaId *id)
{
	struct sa_key k;
	void *data;
	int af = addr_family(id->dst.len);

	if (af < 0 || sad_hash == NULL)
		return NULL;
	key_fill(&k, htonl(id->spi), id->dst.data, af, (uint8_t)id->proto);
	return rte_hash_lookup_data(sad_hash, &k, &data) >= 0 ? data : NULL;
}

/* Algorithm tables: key lengths (AEAD/CTR including salt) and ICV lengths. */
static int aead_params(Dpsec__Aead a, enum rte_crypto_aead_algorithm *algo, size_t *keylen)
{
	switch (a) {
	case DPSEC__AEAD__AES_GCM_128:
		*algo = RTE_CRYPTO_AEAD_AES_GCM;
		*keylen = 16;
		return 0;
	case DPSEC__AEAD__AES_GCM_256:
		*algo = RTE_CRYPTO_AEAD_AES_GCM;
		*keylen = 32;
		return 0;
	case DPSEC__AEAD__CHACHA20_POLY1305:
		*algo = RTE_CRYPTO_AEAD_CHACHA20_POLY1305;
		*keylen = 32;
		return 0;
	default:
		return -1;
	}
}

static int cipher_params(Dpsec__Cipher c, enum rte_crypto_cipher_algorithm *algo, size_t *keylen,
			 uint16_t *ivlen)
{
	switch (c) {
	case DPSEC__CIPHER__AES_CBC_128:
	case DPSEC__CIPHER__AES_CBC_256:
		*algo = RTE_CRYPTO_CIPHER_AES_CBC;
		*keylen = c == DPSEC__CIPHER__AES_CBC_128 ? 16 : 32;
		*ivlen = CBC_IV_LEN;
		return 0;
	case DPSEC__CIPHER__AES_CTR_128:
		*algo = RTE_CRYPTO_CIPHER_AES_CTR;
		*keylen = 16;
		*ivlen = CTR_IV_LEN;
		return 0;
	case DPSEC__CIPHER__CIPHER_NULL:
		*algo = RTE_CRYPTO_CIPHER_NULL;
		*keylen = 0;
		*ivlen = 0;
		return 0;
	default:
		return -1;
	}
}

static int integ_params(Dpsec__Integ i, enum rte_crypto_auth_algorithm *algo, size_t *keylen,
			uint16_t *icv)
{
	static const struct {
		enum rte_crypto_auth_algorithm algo;
		uint8_t key, icv;
	} t[] = {
	    [DPSEC__INTEG__HMAC_SHA1_96] = {RTE_CRYPTO_AUTH_SHA1_HMAC, 20, 12},
	    [DPSEC__INTEG__HMAC_SHA256_128] = {RTE_CRYPTO_AUTH_SHA256_HMAC, 32, 16},
	    [DPSEC__INTEG__HMAC_SHA384_192] = {RTE_CRYPTO_AUTH_SHA384_HMAC, 48, 24},
	    [DPSEC__INTEG__HMAC_SHA512_256] = {RTE_CRYPTO_AUTH_SHA512_HMAC, 64, 32},
	    [DPSEC__INTEG__HMAC_MD5_96] = {RTE_CRYPTO_AUTH_MD5_HMAC, 16, 12},
	};

	if ((unsigned)i >= RTE_DIM(t) || t[i].key == 0)
		return -1;
	*algo = t[i].algo;
	*keylen = t[i].key;
	*icv = t[i].icv;
	return 0;
}

/* Everything sad_add builds before it touches the table. */
struct sa_build {
	struct rte_crypto_sym_xform xf[2];
	struct rte_ipsec_sa_prm prm;
	union {
		struct rte_ipv4_hdr v4;
		struct rte_ipv6_hdr v6;
	} hdr;
};

static int build_xforms(const Dpsec__SaAdd *m, bool inbound, struct sa_build *b, char *err,
			size_t errlen)
{
	const ProtobufCBinaryData *ek = &m->enc_key, *ak = &m->auth_key;
	struct rte_crypto_sym_xform *c = &b->xf[0], *a = &b->xf[1];
	size_t klen;

	if (m->has_aead && m->aead != DPSEC__AEAD__AEAD_NONE) {
		enum rte_crypto_aead_algorithm algo;

		if ((m->has_cipher && m->cipher != DPSEC__CIPHER__CIPHER_NONE) ||
		    (m->has_integ && m->integ != DPSEC__INTEG__INTEG_NONE)) {
			snprintf(err, errlen, "aead excludes enc and auth");
			return -EINVAL;
		}
		if (aead_params(m->aead, &algo, &klen) != 0) {
			snprintf(err, errlen, "unknown aead algorithm %d", m->aead);
			return -EINVAL;
		}
		if (!m->has_enc_key || ek->len != klen + AEAD_SALT_LEN) {
			snprintf(err, errlen,
				 "aead key must be %zu bytes (key + 4-byte salt), got %zu",
				 klen + AEAD_SALT_LEN, m->has_enc_key ? ek->len : 0);
			return -EINVAL;
		}
		c->type = RTE_CRYPTO_SYM_XFORM_AEAD;
		c->aead.algo = algo;
		c->aead.op = inbound ? RTE_CRYPTO_AEAD_OP_DECRYPT : RTE_CRYPTO_AEAD_OP_ENCRYPT;
		c->aead.key.data = ek->data;
		c->aead.key.length = (uint16_t)klen;
		c->aead.iv.offset = CRYPTO_IV_OFFSET;
		c->aead.iv.length = AEAD_IV_LEN;
		c->aead.digest_length = 16;
		c->aead.aad_length = m->esn ? AEAD_AAD_ESN_LEN : AEAD_AAD_LEN;
		memcpy(&b->prm.ipsec_xform.salt, ek->data + klen, AEAD_SALT_LEN);
		b->prm.crypto_xform = c;
		return 0;
	}

	enum rte_crypto_cipher_algorithm calgo;
	enum rte_crypto_auth_algorithm aalgo;
	size_t aklen;
	uint16_t ivlen, icv;

	if (!m->has_cipher || cipher_params(m->cipher, &calgo, &klen, &ivlen) != 0) {
		snprintf(err, errlen, "no or unknown enc algorithm");
		return -EINVAL;
	}
	if (!m->has_integ || integ_params(m->integ, &aalgo, &aklen, &icv) != 0) {
		/* ESP without integrity is open to cut-and-paste attacks: refuse it */
		snprintf(err, errlen, "enc needs an auth algorithm");
		return -EINVAL;
	}
	size_t want = klen + (calgo == RTE_CRYPTO_CIPHER_AES_CTR ? CTR_NONCE_LEN : 0);
	if ((want > 0 && !m->has_enc_key) || (m->has_enc_key ? ek->len : 0) != want) {
		snprintf(err, errlen, "enc key must be %zu bytes, got %zu", want,
			 m->has_enc_key ? ek->len : 0);
		return -EINVAL;
	}
	if (!m->has_auth_key || ak->len != aklen) {
		snprintf(err, errlen, "auth key must be %zu bytes, got %zu", aklen,
			 m->has_auth_key ? ak->len : 0);
		return -EINVAL;
	}
	c->type = RTE_CRYPTO_SYM_XFORM_CIPHER;
	c->cipher.algo = calgo;
	c->cipher.op = inbound ? RTE_CRYPTO_CIPHER_OP_DECRYPT : RTE_CRYPTO_CIPHER_OP_ENCRYPT;
	c->cipher.key.data = ek->data;
	c->cipher.key.length = (uint16_t)klen;
	c->cipher.iv.offset = CRYPTO_IV_OFFSET;
	c->cipher.iv.length = ivlen;
	if (calgo == RTE_CRYPTO_CIPHER_AES_CTR)
		memcpy(&b->prm.ipsec_xform.salt, ek->data + klen, CTR_NONCE_LEN);
	a->type = RTE_CRYPTO_SYM_XFORM_AUTH;
	a->auth.algo = aalgo;
	a->auth.op = inbound ? RTE_CRYPTO_AUTH_OP_VERIFY : RTE_CRYPTO_AUTH_OP_GENERATE;
	a->auth.key.data = ak->data;
	a->auth.key.length = (uint16_t)aklen;
	a->auth.digest_length = icv;
	/* rte_ipsec wants encrypt-then-MAC order outbound and verify-then-decrypt inbound */
	if (inbound) {
		a->next = c;
		b->prm.crypto_xform = a;
	} else {
		c->next = a;
		b->prm.crypto_xform = c;
	}
	return 0;
}

static void build_tunnel_hdr(const Dpsec__SaAdd *m, int af, struct sa_build *b)
{
	uint8_t proto = m->encap != NULL ? IPPROTO_UDP : IPPROTO_ESP_NUM;

	if (af == AF_INET) {
		struct rte_ipv4_hdr *h = &b->hdr.v4;

		h->version_ihl = RTE_IPV4_VHL_DEF;
		h->time_to_live = TUNNEL_TTL;
		h->next_proto_id = proto;
		memcpy(&h->src_addr, m->src.data, 4);
		memcpy(&h->dst_addr, m->dst.data, 4);
		b->prm.tun.hdr_len = sizeof(*h);
		b->prm.ipsec_xform.tunnel.type = RTE_SECURITY_IPSEC_TUNNEL_IPV4;
	} else {
		struct rte_ipv6_hdr *h = &b->hdr.v6;

		h->vtc_flow = htonl(6u << 28);
		h->proto = proto;
		h->hop_limits = TUNNEL_TTL;
		memcpy(h->src_addr, m->src.data, 16);
		memcpy(h->dst_addr, m->dst.data, 16);
		b->prm.tun.hdr_len = sizeof(*h);
		b->prm.ipsec_xform.tunnel.type = RTE_SECURITY_IPSEC_TUNNEL_IPV6;
	}
	b->prm.tun.hdr = &b->hdr;
	b->prm.tun.hdr_l3_off = 0;
	/*
	 * rte_ipsec fixes the inner family per SA (it writes/checks the ESP
	 * next-header with it); dpsec tunnels carry IPv4 inside.
	 */
	b->prm.tun.next_proto = IPPROTO_IPIP;
}

/* Buckets of gcm.c's replay window of @w numbers: a power of two, one more than it spans. */
static uint32_t gcm_buckets(uint32_t w)
{
	return w ? rte_align32pow2(w / 64 + 2) : 0;
}

/*
 * gcm.c builds and checks this SA's packets: outbound from the header
 * rte_ipsec would copy, with its UDP; inbound with the window at @bits,
 * starting where rte_ipsec's would.
 */
static void gcm_setup(struct sa *sa, const struct sa_build *b, uint64_t *bits)
{
	struct sa_gcm *g = &sa->gcm;
	uint8_t hl = b->prm.tun.hdr_len;

	RTE_BUILD_BUG_ON(sizeof(struct sa_gcm) > RTE_CACHE_LINE_SIZE);
	sa->own_esp = true;
	sa->gcm_short = (uint8_t)gcm_short_isa;
	if (sa->gcm_short != SA_GCM_LONG)
		aesgcm_h_init(&sa->gcm_h, sa->mb.k.gcm.expanded_keys,
			      aesgcm_rounds(sa->mb.key_len));
	if (sa->inbound) {
		memcpy(g->in.salt, &b->prm.ipsec_xform.salt, sizeof(g->in.salt));
		g->in.size = sa->replay_window;
		g->in.mask = gcm_buckets(sa->replay_window) - 1;
		g->in.top = sa->win_top;
		g->in.bits = bits;
		/* without a window the top still moves (ESN's high half): one worker at a time */
		sa->window_lock = sad_workers > 1 && (sa->replay_window || sa->esn);
		return;
	}
	memcpy(g->out.salt, &b->prm.ipsec_xform.salt, sizeof(g->out.salt));
	memcpy(g->out.hdr, &b->hdr, hl);
	if (sa->natt) {
		struct rte_udp_hdr *u = (struct rte_udp_hdr *)(g->out.hdr + hl);

		u->src_port = rte_cpu_to_be_16(sa->sport);
		u->dst_port = rte_cpu_to_be_16(sa->dport);
		u->dgram_len = u->dgram_cksum = 0;
	}
	g->out.spi = sa->key.spi;
	g->out.seq_first = sa->seq_first;
}

static int validate(const Dpsec__SaAdd *m, int *af, char *err, size_t errlen)
{
	*af = addr_family(m->dst.len);
	if (*af < 0 || m->src.len != m->dst.len) {
		snprintf(err, errlen, "src and dst must both be IPv4 or both IPv6");
		return -EINVAL;
	}
	if (m->proto != IPPROTO_ESP_NUM) {
		snprintf(err, errlen, "proto %u not supported (only esp)", m->proto);
		return -ENOTSUP;
	}
	if (m->mode != DPSEC__MODE__MODE_TUNNEL) {
		snprintf(err, errlen, "only tunnel mode is supported");
		return -ENOTSUP;
	}
	if (m->spi < 256) {
		/* RFC 4303: SPIs 1-255 are reserved by IANA, 0 is never sent */
		snprintf(err, errlen, "spi 0x%x is reserved", m->spi);
		return -EINVAL;
	}
	if (m->has_replay_window && m->replay_window > SAD_REPLAY_WIN_MAX) {
		snprintf(err, errlen, "replay-window %u exceeds %u", m->replay_window,
			 SAD_REPLAY_WIN_MAX);
		return -EINVAL;
	}
	if (m->encap != NULL && (m->encap->sport == 0 || m->encap->sport > UINT16_MAX ||
				 m->encap->dport == 0 || m->encap->dport > UINT16_MAX)) {
		snprintf(err, errlen, "encap udp ports must be 1-65535");
		return -EINVAL;
	}
	if (m->owner != NULL && strlen(m->owner) >= SAD_OWNER_MAX) {
		snprintf(err, errlen, "owner longer than %d characters", SAD_OWNER_MAX - 1);
		return -EINVAL;
	}
	if (m->has_seq_limit && m->dir != DPSEC__DIR__DIR_OUT) {
		snprintf(err, errlen, "seq-limit is only for outbound SAs");
		return -EINVAL;
	}
	if (m->has_seq_out && !m->esn && m->seq_out >= UINT32_MAX) {
		snprintf(err, errlen, "seq_out %llu leaves no 32-bit sequence numbers",
			 (unsigned long long)m->seq_out);
		return -EINVAL;
	}
	return 0;
}

/* What esp.c needs to tell a malformed packet from a replayed one (mirrors rte_ipsec). */
static void sa_geometry(struct sa *sa, const struct rte_crypto_sym_xform *xf)
{
	const struct rte_crypto_sym_xform *c = xf, *a = xf;

	if (xf->type == RTE_CRYPTO_SYM_XFORM_AEAD) {
		sa->iv_len = 8;
		sa->icv_len = xf->aead.digest_length;
		sa->pad_align = 4;
		return;
	}
	if (xf->type == RTE_CRYPTO_SYM_XFORM_AUTH)
		c = xf->next;
	else
		a = xf->next;
	sa->icv_len = a->auth.digest_length;
	switch (c->cipher.algo) {
	case RTE_CRYPTO_CIPHER_AES_CBC:
		sa->iv_len = 16;
		sa->pad_align = 16;
		break;
	case RTE_CRYPTO_CIPHER_AES_CTR:
		sa->iv_len = 8;
		sa->pad_align = 4;
		break;
	default:
		sa->iv_len = 0;
		sa->pad_align = 4;
	}
}

/* How many sequence numbers from seq_first on the lease up to @limit allows. */
static uint64_t lease_count(const struct sa *sa, bool has_limit, uint64_t limit)
{
	if (!has_limit || sa->inbound)
		return SAD_NO_LEASE;
	return limit >= sa->seq_first ? limit - sa->seq_first + 1 : 0;
}

static void lifetime_copy(const Dpsec__Lifetime *l, struct sa *sa)
{
	if (l == NULL)
		return;
	sa->soft.bytes = l->has_soft_bytes ? l->soft_bytes : 0;
	sa->soft.packets = l->has_soft_packets ? l->soft_packets : 0;
	sa->soft.seconds = l->has_soft_seconds ? l->soft_seconds : 0;
	sa->hard_bytes = l->has_hard_bytes ? l->hard_bytes : 0;
	sa->hard_packets = l->has_hard_packets ? l->hard_packets : 0;
	sa->hard_seconds = l->has_hard_seconds ? l->hard_seconds : 0;
}

int sad_add(const Dpsec__SaAdd *m, char *err, size_t errlen)
{
	struct sa_build b;
	struct sa_key key;
	struct sa *sa = NULL, *old = NULL;
	bool inbound = m->dir == DPSEC__DIR__DIR_IN;
	char idbuf[96];
	size_t hdr_sz, cnt_sz, win_sz;
	int af, rc, sz;

	if (sad_hash == NULL) {
		snprintf(err, errlen, "sad not initialised");
		return -EINVAL;
	}
	rc = validate(m, &af, err, errlen);
	if (rc != 0)
		return rc;
	key_fill(&key, htonl(m->spi), m->dst.data, af, (uint8_t)m->proto);
	if (rte_hash_lookup_data(sad_hash, &key, (void **)&old) < 0)
		old = NULL;
	if (old != NULL && !(m->has_replace && m->replace)) {
		snprintf(err, errlen, "SA %s exists",
			 id_fmt(&m->dst, m->spi, idbuf, sizeof(idbuf)));
		return -EEXIST;
	}

	memset(&b, 0, sizeof(b));
	rc = build_xforms(m, inbound, &b, err, errlen);
	if (rc != 0)
		return rc;
	b.prm.ipsec_xform.spi = m->spi;
	b.prm.ipsec_xform.direction =
	    inbound ? RTE_SECURITY_IPSEC_SA_DIR_INGRESS : RTE_SECURITY_IPSEC_SA_DIR_EGRESS;
	b.prm.ipsec_xform.proto = RTE_SECURITY_IPSEC_SA_PROTO_ESP;
	b.prm.ipsec_xform.mode = RTE_SECURITY_IPSEC_SA_MODE_TUNNEL;
	b.prm.ipsec_xform.options.esn = m->has_esn && m->esn;
	b.prm.ipsec_xform.replay_win_sz = inbound && m->has_replay_window ? m->replay_window : 0;
	/*
	 * Only outbound SAs tell rte_ipsec about UDP: 22.11's inbound setup has no
	 * case for NAT-T SAs and would leave the SA unconfigured. Inbound, esp.c
	 * counts the UDP header into l3_len, so it goes with the outer IP header.
	 */
	if (m->encap != NULL && !inbound) {
		b.prm.ipsec_xform.options.udp_encap = 1;
		b.prm.ipsec_xform.udp.sport = (uint16_t)m->encap->sport;
		b.prm.ipsec_xform.udp.dport = (uint16_t)m->encap->dport;
	}
	/* rte_ipsec takes the next sequence number to send; seq_out is the last one sent */
	if (!inbound)
		b.prm.ipsec_xform.esn.value = (m->has_seq_out ? m->seq_out : 0) + 1;
	/*
	 * Inbound, it takes the right edge of the replay window. One window above
	 * seq_in, everything up to seq_in is outside it: a resynced SA refuses
	 * what it (or its predecessor) may already have accepted.
	 */
	if (inbound && m->has_seq_in)
		b.prm.ipsec_xform.esn.value =
		    m->seq_in +
		    (b.prm.ipsec_xform.replay_win_sz ? b.prm.ipsec_xform.replay_win_sz + 1 : 0);
	/*
	 * Several workers may send on one outbound SA (RSS spreads the inner
	 * flows), so outbound sequence numbers are taken atomically. Inbound,
	 * one peer's packets usually hash to one queue, but not always (a full
	 * af_packet ring rolls over to the next socket, RSS may hash the UDP
	 * ports of NAT-T): the window's reader copy keeps prepare consistent
	 * while another worker updates it, and window_lock orders the updates.
	 */
	if (sad_workers > 1)
		b.prm.flags = RTE_IPSEC_SAFLAG_SQN_ATOM;
	build_tunnel_hdr(m, af, &b);

	sz = rte_ipsec_sa_size(&b.prm);
	if (sz < 0) {
		snprintf(err, errlen, "rte_ipsec_sa_size: %s", strerror(-sz));
		rc = sz;
		goto out;
	}
	hdr_sz = SAD_HDR_SIZE;
	cnt_sz = sizeof(struct sa_counters) * sad_workers;
	win_sz = inbound ? gcm_buckets(b.prm.ipsec_xform.replay_win_sz) * sizeof(uint64_t) : 0;
	sa = rte_zmalloc("dpsec_sa",
			 hdr_sz + cnt_sz + RTE_ALIGN_CEIL(sz, RTE_CACHE_LINE_SIZE) + win_sz,
			 RTE_CACHE_LINE_SIZE);
	if (sa == NULL) {
		snprintf(err, errlen, "out of memory for SA");
		rc = -ENOMEM;
		goto out;
	}
	rc = rte_ipsec_sa_init((struct rte_ipsec_sa *)(uintptr_t)sad_ipsa_at(sa), &b.prm, sz);
	if (rc < 0) {
		snprintf(err, errlen, "rte_ipsec_sa_init: %s", strerror(-rc));
		goto out;
	}
	sa->ss.sa = (struct rte_ipsec_sa *)(uintptr_t)sad_ipsa_at(sa); /* sa_free() fini's it */
	rc =
	    crypto_session_create(b.prm.crypto_xform, &sa->ss, &sa->mb, &sa->dev_name, err, errlen);
	if (rc != 0)
		goto out;

	sa_geometry(sa, b.prm.crypto_xform);
	/* an algorithm added beyond these must raise them (the workers rely on them) */
	RTE_VERIFY(sa->iv_len <= SAD_IV_MAX && sa->icv_len <= SAD_ICV_MAX &&
		   sa->pad_align <= SAD_PAD_ALIGN_MAX);
	sa->key_lines = ipsecmb_sa_lines(&sa->mb);
	sa->inbound = inbound;
	sa->reqid = m->has_reqid ? m->reqid : 0;
	snprintf(sa->owner, sizeof(sa->owner), "%s", m->owner ? m->owner : "");
	sa->natt = m->encap != NULL;
	sa->family = (uint8_t)af;
	if (sa->natt) {
		sa->sport = (uint16_t)m->encap->sport;
		sa->dport = (uint16_t)m->encap->dport;
	}
	sa->key = key;
	memcpy(sa->src, m->src.data, m->src.len);
	memcpy(sa->dst, m->dst.data, m->dst.len);
	sa->mode = m->mode;
	sa->aead = m->has_aead ? m->aead : DPSEC__AEAD__AEAD_NONE;
	sa->cipher = m->has_cipher ? m->cipher : DPSEC__CIPHER__CIPHER_NONE;
	sa->integ = m->has_integ ? m->integ : DPSEC__INTEG__INTEG_NONE;
	sa->replay_window = b.prm.ipsec_xform.replay_win_sz;
	sa->window_lock = inbound && sa->replay_window && sad_workers > 1;
	rte_spinlock_init(&sa->in_lock);
	/* rte_ipsec starts an inbound window at the esn value it was given */
	sa->win_top = inbound ? b.prm.ipsec_xform.esn.value : 0;
	sa->esn = b.prm.ipsec_xform.options.esn;
	sa->seq_first = b.prm.ipsec_xform.esn.value;
	if (af == AF_INET) {
		/* rte_ipsec copies this header and sets only total_length and packet_id */
		b.hdr.v4.total_length = b.hdr.v4.packet_id = b.hdr.v4.hdr_checksum = 0;
		sa->outer_sum = rte_raw_cksum(&b.hdr.v4, sizeof(b.hdr.v4));
	}
	sa->seq_in_base = inbound && m->has_seq_in ? m->seq_in : 0;
	if (sa->mb.kind == IPSECMB_GCM)
		gcm_setup(sa, &b,
			  win_sz ? (uint64_t *)((uint8_t *)sad_ipsa_at(sa) +
						RTE_ALIGN_CEIL(sz, RTE_CACHE_LINE_SIZE))
				 : NULL);
	sa->seq_max = lease_count(sa, m->has_seq_limit, m->seq_limit);
	lifetime_copy(m->lifetime, sa);
	sa->add_tsc = rte_get_timer_cycles();
	sa->params_len = dpsec__sa_add__get_packed_size(m);
	sa->params = malloc(sa->params_len);
	if (sa->params == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	dpsec__sa_add__pack(m, sa->params);
	if (sad_carry != NULL) {
		/* not published yet: no worker writes these */
		struct sa_counters *c = sad_cnt(sa);

		c->bytes = sad_carry->t.bytes;
		c->packets = sad_carry->t.packets;
		c->last_tsc = sad_carry->t.last_tsc;
		memcpy(c->drops, sad_carry->t.drops, sizeof(c->drops));
		sa->add_tsc = sad_carry->add_tsc;
		sa->expired_soft = sad_carry->expired_soft;
	}

	/* On replace the LF hash swaps the data pointer atomically for readers. */
	rc = rte_hash_add_key_data(sad_hash, &key, sa);
	if (rc != 0) {
		snprintf(err, errlen, "SAD full (%d entries)", SAD_ENTRIES_MAX);
		rc = -ENOSPC;
		goto out;
	}
	natt_ref(sa, +1);
	if (sad_rebind != NULL)
		sad_rebind(old, sa);
	if (old != NULL)
		retire(old, -1);
	sa = NULL;
	rc = 0;
out:
	if (sa != NULL)
		sa_free(sa);
	/* the key bytes live in the request; the stack copy of the xforms is all we hold */
	explicit_bzero(&b, sizeof(b));
	return rc;
}

int sad_del(const Dpsec__SaId *id, char *err, size_t errlen)
{
	struct sa_key k;
	struct sa *sa;
	char idbuf[96];
	int32_t pos;
	int af = addr_family(id->dst.len);

	sa = sad_find(id);
	if (sa == NULL) {
		snprintf(err, errlen, "no SA %s", id_fmt(&id->dst, id->spi, idbuf, sizeof(idbuf)));
		return -ENOENT;
	}
	key_fill(&k, htonl(id->spi), id->dst.data, af, (uint8_t)id->proto);
	pos = rte_hash_del_key(sad_hash, &k);
	if (sad_rebind != NULL)
		sad_rebind(sa, NULL);
	retire(sa, pos);
	return 0;
}

int sad_update(const Dpsec__SaUpdate *u, char *err, size_t errlen)
{
	Dpsec__SaAdd *m;
	Dpsec__Encap encap = DPSEC__ENCAP__INIT;
	struct sa *old, *sa;
	struct sad_carry carry;
	Dpsec__SaId new_id = DPSEC__SA_ID__INIT;
	char idbuf[96];
	bool moved;
	int rc;

	if (u->id == NULL || (old = sad_find(u->id)) == NULL) {
		snprintf(err, errlen, "no SA %s",
			 u->id ? id_fmt(&u->id->dst, u->id->spi, idbuf, sizeof(idbuf)) : "given");
		return -ENOENT;
	}
	if (old->expired_hard) {
		/* its EXPIRE went out; the IKE daemon deletes it, nothing may revive it */
		snprintf(err, errlen, "SA %s has reached its hard lifetime",
			 id_fmt(&u->id->dst, u->id->spi, idbuf, sizeof(idbuf)));
		return -EINVAL;
	}
	if ((u->has_new_src && u->new_src.len != (old->family == AF_INET ? 4u : 16u)) ||
	    (u->has_new_dst && u->new_dst.len != (old->family == AF_INET ? 4u : 16u))) {
		snprintf(err, errlen, "sa update: new addresses must keep the SA's address family");
		return -EINVAL;
	}
	m = dpsec__sa_add__unpack(NULL, old->params_len, old->params);
	if (m == NULL) {
		snprintf(err, errlen, "sa update: stored parameters unreadable");
		return -EINVAL;
	}
	/* Borrowed fields go in below; the originals come back before the free. */
	ProtobufCBinaryData orig_src = m->src, orig_dst = m->dst;
	Dpsec__Encap *orig_encap = m->encap;

	if (u->has_new_src)
		m->src = u->new_src;
	if (u->has_new_dst)
		m->dst = u->new_dst;
	if (u->new_encap != NULL) {
		encap = *u->new_encap;
		m->encap = &encap;
	}
	sum_counters(old, &carry.t);
	carry.add_tsc = old->add_tsc;
	carry.expired_soft = old->expired_soft;
	if (!old->inbound) {
		m->has_seq_out = true;
		m->seq_out = old->seq_first - 1 + carry.t.seq_used;
		/* the lease as it stands now, not as it was at install */
		m->has_seq_limit = old->seq_max != SAD_NO_LEASE;
		if (m->has_seq_limit)
			m->seq_limit = old->seq_first - 1 + old->seq_max;
		if (m->has_seq_limit && m->seq_limit < m->seq_out)
			m->seq_limit = m->seq_out; /* used up: the new record stays stopped */
	} else {
		/* the new window starts above what the old one accepted: no replays */
		m->has_seq_in = true;
		m->seq_in = RTE_MAX(old->seq_in_base, carry.t.seq_in);
	}
	moved = u->has_new_dst && memcmp(u->new_dst.data, old->dst, u->new_dst.len) != 0;
	m->has_replace = true;
	m->replace = !moved;
	/* the same SA: byte/packet lifetimes and counters go on from where they were */
	sad_carry = &carry;
	rc = sad_add(m, err, errlen);
	sad_carry = NULL;
	if (rc == 0) {
		new_id.dst = m->dst;
		new_id.proto = m->proto;
		new_id.spi = m->spi;
		sa = sad_find(&new_id);
		/* A new destination is a new identity: the old one goes. It is the
		 * same SA, so the policies using it follow it first (sad_del would
		 * leave them without an SA, dropping the flow). */
		if (moved && sa != NULL && sad_rebind != NULL)
			sad_rebind(old, sa);
		if (moved)
			rc = sad_del(u->id, err, errlen);
	}
	/* The unpacked copy holds the keys too. */
	m->src = orig_src;
	m->dst = orig_dst;
	m->encap = orig_encap;
	if (m->has_enc_key)
		explicit_bzero(m->enc_key.data, m->enc_key.len);
	if (m->has_auth_key)
		explicit_bzero(m->auth_key.data, m->auth_key.len);
	dpsec__sa_add__free_unpacked(m, NULL);
	return rc;
}

void sad_flush(const char *owner)
{
	const void *key;
	void *data;
	uint32_t next = 0, n = 0;
	struct sa **all;
	bool some = owner != NULL && owner[0] != '\0';

	if (sad_hash == NULL || rte_hash_count(sad_hash) == 0)
		return;
	/* Collect first: deleting can compact bucket chains under a running iterator. */
	all = malloc(sizeof(*all) * (size_t)rte_hash_count(sad_hash));
	if (all == NULL)
		return;
	while (rte_hash_iterate(sad_hash, &key, &data, &next) >= 0)
		if (!some || strcmp(((struct sa *)data)->owner, owner) == 0)
			all[n++] = data;
	for (uint32_t i = 0; i < n; i++) {
		int32_t pos = rte_hash_del_key(sad_hash, &all[i]->key);

		if (sad_rebind != NULL)
			sad_rebind(all[i], NULL);
		retire(all[i], pos);
	}
	free(all);
}

static void sum_counters(const struct sa *sa, struct sa_counters *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned w = 0; w < sad_workers; w++) {
		const struct sa_counters *c = &sad_cnt(sa)[w];

		t->bytes += c->bytes;
		t->packets += c->packets;
		t->seq_used += c->seq_used;
		t->seq_in = RTE_MAX(t->seq_in, c->seq_in);
		t->last_tsc = RTE_MAX(t->last_tsc, c->last_tsc);
		t->seq_exhausted |= c->seq_exhausted;
		for (unsigned r = 0; r < SA_DROP_MAX; r++)
			t->drops[r] += c->drops[r];
	}
}

/* One malloc per SaInfo so the caller frees each with a single free(). */
struct info_blob {
	Dpsec__SaInfo info;
	Dpsec__SaAdd add;
	Dpsec__Encap encap;
	Dpsec__Lifetime life;
	Dpsec__Counter drops[SA_DROP_MAX];
	Dpsec__Counter *dropp[SA_DROP_MAX];
	uint8_t src[16], dst[16];
	char owner[SAD_OWNER_MAX];
};

static Dpsec__SaInfo *info_make(const struct sa *sa, uint64_t now_tsc, time_t now)
{
	struct info_blob *b = calloc(1, sizeof(*b));
	struct sa_counters t;
	size_t alen = sa->family == AF_INET ? 4 : 16;

	if (b == NULL)
		return NULL;
	sum_counters(sa, &t);
	dpsec__sa_info__init(&b->info);
	dpsec__sa_add__init(&b->add);
	memcpy(b->src, sa->src, alen);
	memcpy(b->dst, sa->dst, alen);
	b->add.src = (ProtobufCBinaryData){alen, b->src};
	b->add.dst = (ProtobufCBinaryData){alen, b->dst};
	b->add.proto = sa->key.proto;
	b->add.spi = ntohl(sa->key.spi);
	b->add.dir = sa->inbound ? DPSEC__DIR__DIR_IN : DPSEC__DIR__DIR_OUT;
	b->add.mode = sa->mode;
	if (sa->aead != DPSEC__AEAD__AEAD_NONE) {
		b->add.has_aead = true;
		b->add.aead = sa->aead;
	} else {
		b->add.has_cipher = b->add.has_integ = true;
		b->add.cipher = sa->cipher;
		b->add.integ = sa->integ;
	}
	b->add.has_replay_window = sa->inbound;
	b->add.replay_window = sa->replay_window;
	b->add.has_esn = true;
	b->add.esn = sa->esn;
	b->add.has_reqid = sa->reqid != 0;
	b->add.reqid = sa->reqid;
	if (sa->owner[0] != '\0') {
		memcpy(b->owner, sa->owner, sizeof(b->owner));
		b->add.owner = b->owner;
	}
	b->add.has_seq_limit = !sa->inbound && sa->seq_max != SAD_NO_LEASE;
	b->add.seq_limit = sa->seq_first - 1 + sa->seq_max;
	if (sa->natt) {
		dpsec__encap__init(&b->encap);
		b->encap.sport = sa->sport;
		b->encap.dport = sa->dport;
		b->add.encap = &b->encap;
	}
	dpsec__lifetime__init(&b->life);
	b->life.has_soft_bytes = b->life.has_soft_packets = b->life.has_soft_seconds = true;
	b->life.has_hard_bytes = b->life.has_hard_packets = b->life.has_hard_seconds = true;
	b->life.soft_bytes = sa->soft.bytes;
	b->life.soft_packets = sa->soft.packets;
	b->life.soft_seconds = sa->soft.seconds;
	b->life.hard_bytes = sa->hard_bytes;
	b->life.hard_packets = sa->hard_packets;
	b->life.hard_seconds = sa->hard_seconds;
	b->add.lifetime = &b->life;

	b->info.sa = &b->add;
	b->info.has_bytes = b->info.has_packets = b->info.has_last_use = true;
	b->info.bytes = t.bytes;
	b->info.packets = t.packets;
	if (t.last_tsc != 0)
		b->info.last_use = (uint64_t)now - (now_tsc - t.last_tsc) / rte_get_timer_hz();
	for (unsigned r = 0; r < SA_DROP_MAX; r++) {
		dpsec__counter__init(&b->drops[r]);
		b->drops[r].name = (char *)drop_names[r];
		b->drops[r].value = t.drops[r];
		b->dropp[r] = &b->drops[r];
	}
	b->info.n_drops = SA_DROP_MAX;
	b->info.drops = b->dropp;
	if (!sa->inbound) {
		b->info.has_seq_out = true;
		b->info.seq_out = sa->seq_first - 1 + t.seq_used;
	}
	if (sa->inbound) {
		b->info.has_seq_in = true;
		b->info.seq_in = RTE_MAX(sa->seq_in_base, t.seq_in);
	}
	b->info.has_expired_soft = b->info.has_expired_hard = true;
	b->info.expired_soft = sa->expired_soft;
	b->info.expired_hard = sa->expired_hard;
	return &b->info;
}

int sad_query(const Dpsec__SaId *id, Dpsec__SaInfo **out, char *err, size_t errlen)
{
	struct sa *sa = sad_find(id);
	char idbuf[96];

	if (sa == NULL) {
		snprintf(err, errlen, "no SA %s", id_fmt(&id->dst, id->spi, idbuf, sizeof(idbuf)));
		return -ENOENT;
	}
	*out = info_make(sa, rte_get_timer_cycles(), time(NULL));
	if (*out == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

size_t sad_dump(Dpsec__SaInfo ***out)
{
	const void *key;
	void *data;
	uint32_t next = 0;
	size_t n = 0, cap;
	uint64_t now_tsc = rte_get_timer_cycles();
	time_t now = time(NULL);

	*out = NULL;
	if (sad_hash == NULL)
		return 0;
	cap = rte_hash_count(sad_hash);
	if (cap == 0)
		return 0;
	*out = calloc(cap, sizeof(**out));
	if (*out == NULL)
		return 0;
	while (n < cap && rte_hash_iterate(sad_hash, &key, &data, &next) >= 0) {
		Dpsec__SaInfo *i = info_make(data, now_tsc, now);

		if (i != NULL)
			(*out)[n++] = i;
	}
	return n;
}

void sad_dump_free(Dpsec__SaInfo **infos, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(infos[i]); /* the SaInfo is the first member of its blob */
	free(infos);
}

static bool limits_hit(const struct sa_lifetime *l, const struct sa_counters *t, uint64_t secs)
{
	return (l->bytes != 0 && t->bytes >= l->bytes) ||
	       (l->packets != 0 && t->packets >= l->packets) ||
	       (l->seconds != 0 && secs >= l->seconds);
}

/*
 * Ask for more sequence numbers once half of the current lease is used, so
 * dpsec-ike extends it long before packets would be dropped for want of one.
 */
static void check_lease(struct sa *sa, sad_lease_cb cb, void *arg)
{
	uint64_t max = __atomic_load_n(&sa->seq_max, __ATOMIC_RELAXED);
	uint64_t taken = __atomic_load_n(&sa->seq_taken, __ATOMIC_RELAXED);
	struct sa_counters t;

	if (sa->inbound || max == SAD_NO_LEASE || sa->lease_asked)
		return;
	if (taken < max && max - taken > (max - RTE_MIN(sa->lease_base, max)) / 2)
		return;
	sa->lease_asked = true;
	sum_counters(sa, &t);
	if (cb != NULL)
		cb(sa, sa->seq_first - 1 + t.seq_used, sa->seq_first - 1 + max, arg);
}

int sad_lease(const Dpsec__SaLease *l, char *err, size_t errlen)
{
	char idbuf[96];
	struct sa *sa;
	uint64_t max;

	if (l->id == NULL || (sa = sad_find(l->id)) == NULL) {
		snprintf(err, errlen, "no SA %s",
			 l->id ? id_fmt(&l->id->dst, l->id->spi, idbuf, sizeof(idbuf)) : "given");
		return -ENOENT;
	}
	if (sa->inbound) {
		snprintf(err, errlen, "SA %s is inbound: leases are for outbound sequence numbers",
			 id_fmt(&l->id->dst, l->id->spi, idbuf, sizeof(idbuf)));
		return -EINVAL;
	}
	max = lease_count(sa, true, l->seq_limit);
	/* a late grant (resync raced it) must not take back numbers a newer one gave */
	if (sa->seq_max != SAD_NO_LEASE && max <= sa->seq_max)
		return 0;
	sa->lease_base = __atomic_load_n(&sa->seq_taken, __ATOMIC_RELAXED);
	sa->lease_asked = false;
	__atomic_store_n(&sa->seq_max, max, __ATOMIC_RELEASE);
	return 0;
}

void sad_check_lifetimes(uint64_t now_tsc, sad_expire_cb cb, sad_lease_cb lease, void *arg)
{
	const void *key;
	void *data;
	uint32_t next = 0;
	uint64_t hz = rte_get_timer_hz();

	if (sad_hash == NULL)
		return;
	while (rte_hash_iterate(sad_hash, &key, &data, &next) >= 0) {
		struct sa *sa = data;
		struct sa_counters t;
		uint64_t secs, seq_max, seq_last;

		if (sa->expired_hard)
			continue;
		sum_counters(sa, &t);
		secs = (now_tsc - sa->add_tsc) / hz;
		seq_max = sa->esn ? UINT64_MAX : UINT32_MAX;
		seq_last = sa->seq_first - 1 + t.seq_used;
		if (t.seq_exhausted ||
		    limits_hit(&(struct sa_lifetime){.packets = sa->hard_packets,
						     .bytes = sa->hard_bytes,
						     .seconds = sa->hard_seconds},
			       &t, secs)) {
			/* workers see the flag on their next burst; no ordering needed beyond that
			 */
			__atomic_store_n(&sa->expired_hard, true, __ATOMIC_RELEASE);
			/* both limits passed within one tick: the rekey signal still comes first */
			if (!sa->expired_soft && cb != NULL)
				cb(sa, false, arg);
			sa->expired_soft = true;
			if (cb != NULL)
				cb(sa, true, arg);
			continue;
		}
		if (!sa->expired_soft &&
		    (limits_hit(&sa->soft, &t, secs) ||
		     (!sa->inbound && seq_last >= seq_max - SEQ_SOFT_MARGIN))) {
			sa->expired_soft = true;
			if (cb != NULL)
				cb(sa, false, arg);
		}
		check_lease(sa, lease, arg);
	}
}

struct sa *sad_lookup(uint32_t spi_be, const void *dst, int family)
{
	struct sa_key k;
	void *data;

	key_fill(&k, spi_be, dst, family, IPPROTO_ESP_NUM);
	return rte_hash_lookup_data(sad_hash, &k, &data) >= 0 ? data : NULL;
}

/* Fixed-size compares: memcmp() with a run-time length is a libc call per packet. */
static inline bool same_dst(const void *a, const void *b, int family)
{
	uint32_t x, y;

	if (family != AF_INET)
		return memcmp(a, b, 16) == 0;
	memcpy(&x, a, 4);
	memcpy(&y, b, 4);
	return x == y;
}

unsigned sad_lookup_bulk(const uint32_t spi_be[], const void *const dst[], const int family[],
			 unsigned n, struct sa *out[])
{
	struct sa_key keys[SAD_LOOKUP_BULK_MAX];
	const void *kp[SAD_LOOKUP_BULK_MAX];
	struct sa *found[SAD_LOOKUP_BULK_MAX];
	uint8_t slot[SAD_LOOKUP_BULK_MAX];
	uint64_t hits = 0;
	unsigned nk = 0, got = 0;

	n = RTE_MIN(n, (unsigned)SAD_LOOKUP_BULK_MAX);
	/* Bursts mostly come in runs of one SA (a flow, a tunnel): look each run up once. */
	for (unsigned i = 0; i < n; i++) {
		if (nk == 0 || spi_be[i] != spi_be[i - 1] || family[i] != family[i - 1] ||
		    !same_dst(dst[i], dst[i - 1], family[i])) {
			key_fill(&keys[nk], spi_be[i], dst[i], family[i], IPPROTO_ESP_NUM);
			kp[nk] = &keys[nk];
			nk++;
		}
		slot[i] = (uint8_t)(nk - 1);
	}
	if (nk == 0)
		return 0;
	/* one run, as a burst of one tunnel is: the bulk call's stages cost ~3x a single
	 * lookup (callgrind, 1 SA) */
	if (nk == 1)
		hits = rte_hash_lookup_data(sad_hash, kp[0], (void **)&found[0]) >= 0;
	else if (rte_hash_lookup_bulk_data(sad_hash, kp, nk, &hits, (void **)found) < 0)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		out[i] = (hits >> slot[i]) & 1 ? found[slot[i]] : NULL;
		got += out[i] != NULL;
	}
	return got;
}
