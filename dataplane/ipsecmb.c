/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_lcore.h>

#include "crypto.h"
#include "ipsecmb.h"

#define HMAC_IPAD 0x36
#define HMAC_OPAD 0x5c
#define TAG_MAX	  32 /* HMAC-SHA512-256 */

/* [0..n_workers) for the workers, the last one for the control thread's key setup. */
static IMB_MGR **mgrs;
static unsigned n_mgrs;
static IMB_MGR *ctl_mgr;

/*
 * Per worker: where the job manager writes the tag it computed on decrypt. The
 * manager holds at most IMB_MAX_JOBS jobs, so a slot is free again by the time
 * the rotation comes back to it.
 */
struct scratch {
	uint8_t tag[IMB_MAX_JOBS][TAG_MAX] __rte_aligned(16);
	unsigned next;
} __rte_cache_aligned;
static struct scratch *scratch;

static uint32_t hkey_lo, hkey_hi; /* H^1..H^8 in struct ipsecmb_sa, set by ipsecmb_init() */
uint16_t ipsecmb_ghash_lines;

/* Where the library's GHASH code reads H^1..H^8 (its gcm_keys_*.asm layouts). */
static void hkey_layout(const IMB_MGR *m)
{
	const uint64_t vaes = IMB_FEATURE_VAES | IMB_FEATURE_VPCLMULQDQ;
	uint32_t base = offsetof(struct ipsecmb_sa, k.gcm.ghash_keys);
	size_t rk_end = offsetof(struct ipsecmb_sa, k.gcm.expanded_keys) + 16 * 15;

	/* the library's own test for its VAES GCM code (init_mb_mgr_avx512) */
	if (m->used_arch == IMB_ARCH_AVX512 && (m->features & vaes) == vaes) {
		/* H^48 first: H^8..H^1 are the table's last 8 entries */
		hkey_lo = base + (48 - 8) * 16;
		hkey_hi = base + 48 * 16;
	} else {
		/* AVX2/AVX-512 keep H^8..H^1, SSE/AVX H^1..H^8: both the first 8 */
		hkey_lo = base;
		hkey_hi = base + 8 * 16;
	}
	hkey_lo = RTE_ALIGN_FLOOR(hkey_lo, RTE_CACHE_LINE_SIZE);
	/* less any line shared with the header or (AES-256) round keys */
	ipsecmb_ghash_lines = 0;
	for (uint32_t off = RTE_MAX(hkey_lo, (uint32_t)RTE_ALIGN_CEIL(rk_end, RTE_CACHE_LINE_SIZE));
	     off < hkey_hi; off += RTE_CACHE_LINE_SIZE)
		ipsecmb_ghash_lines |= (uint16_t)(1u << (off / RTE_CACHE_LINE_SIZE));
}

int ipsecmb_init(unsigned n_workers, char *err, size_t errlen)
{
	mgrs = calloc(n_workers + 1, sizeof(*mgrs));
	scratch = aligned_alloc(RTE_CACHE_LINE_SIZE, sizeof(*scratch) * n_workers);
	if (mgrs == NULL || scratch == NULL)
		goto nomem;
	memset(scratch, 0, sizeof(*scratch) * n_workers);
	n_mgrs = n_workers + 1;
	for (unsigned i = 0; i < n_mgrs; i++) {
		mgrs[i] = alloc_mb_mgr(0);
		if (mgrs[i] == NULL)
			goto nomem;
		init_mb_mgr_auto(mgrs[i], NULL);
		if (imb_get_errno(mgrs[i]) != 0) {
			snprintf(err, errlen, "intel-ipsec-mb: %s",
				 imb_get_strerror(imb_get_errno(mgrs[i])));
			ipsecmb_fini();
			return -ENOTSUP;
		}
	}
	ctl_mgr = mgrs[n_workers];
	hkey_layout(ctl_mgr);
	return 0;
nomem:
	snprintf(err, errlen, "intel-ipsec-mb: out of memory for job managers");
	ipsecmb_fini();
	return -ENOMEM;
}

void ipsecmb_fini(void)
{
	for (unsigned i = 0; mgrs != NULL && i < n_mgrs; i++)
		free_mb_mgr(mgrs[i]);
	free(mgrs);
	free(scratch);
	mgrs = NULL;
	scratch = NULL;
	ctl_mgr = NULL;
	n_mgrs = 0;
}

const char *ipsecmb_arch(void)
{
	if (ctl_mgr == NULL)
		return NULL;
	switch (ctl_mgr->used_arch) {
	case IMB_ARCH_AVX512:
		return "avx512";
	case IMB_ARCH_AVX2:
		return "avx2";
	case IMB_ARCH_AVX:
		return "avx";
	case IMB_ARCH_SSE:
		return "sse";
	default:
		return "noaesni";
	}
}

/* ---- control thread: keys ---- */

/* HMAC's two precomputed states: H(key ^ ipad) and H(key ^ opad), one block each. */
static bool hmac_pads(struct ipsecmb_sa *k, const struct rte_crypto_auth_xform *a)
{
	uint8_t ipad[128], opad[128];
	unsigned block = 64;
	hash_one_block_t one_block;

	switch (a->algo) {
	case RTE_CRYPTO_AUTH_SHA1_HMAC:
		k->hash = IMB_AUTH_HMAC_SHA_1;
		one_block = ctl_mgr->sha1_one_block;
		break;
	case RTE_CRYPTO_AUTH_SHA256_HMAC:
		k->hash = IMB_AUTH_HMAC_SHA_256;
		one_block = ctl_mgr->sha256_one_block;
		break;
	case RTE_CRYPTO_AUTH_SHA384_HMAC:
		k->hash = IMB_AUTH_HMAC_SHA_384;
		one_block = ctl_mgr->sha384_one_block;
		block = 128;
		break;
	case RTE_CRYPTO_AUTH_SHA512_HMAC:
		k->hash = IMB_AUTH_HMAC_SHA_512;
		one_block = ctl_mgr->sha512_one_block;
		block = 128;
		break;
	case RTE_CRYPTO_AUTH_MD5_HMAC:
		k->hash = IMB_AUTH_MD5;
		one_block = ctl_mgr->md5_one_block;
		break;
	default:
		return false;
	}
	/* Keys longer than a block would need hashing first; ESP's never are. */
	if (a->key.length > block || a->digest_length > TAG_MAX)
		return false;
	memset(ipad, HMAC_IPAD, block);
	memset(opad, HMAC_OPAD, block);
	for (unsigned i = 0; i < a->key.length; i++) {
		ipad[i] ^= a->key.data[i];
		opad[i] ^= a->key.data[i];
	}
	one_block(ipad, k->k.cbc.ipad);
	one_block(opad, k->k.cbc.opad);
	explicit_bzero(ipad, sizeof(ipad));
	explicit_bzero(opad, sizeof(opad));
	k->tag_len = (uint8_t)a->digest_length;
	return true;
}

static bool cipher_keys(struct ipsecmb_sa *k, const struct rte_crypto_cipher_xform *c)
{
	switch (c->algo) {
	case RTE_CRYPTO_CIPHER_AES_CBC:
		k->cipher = IMB_CIPHER_CBC;
		break;
	case RTE_CRYPTO_CIPHER_AES_CTR:
		k->cipher = IMB_CIPHER_CNTR;
		break;
	case RTE_CRYPTO_CIPHER_NULL:
		k->cipher = IMB_CIPHER_NULL;
		k->iv_len = 0;
		return true;
	default:
		return false;
	}
	k->key_len = (uint8_t)c->key.length;
	k->iv_len = (uint8_t)c->iv.length;
	if (c->key.length == 16)
		IMB_AES_KEYEXP_128(ctl_mgr, c->key.data, k->k.cbc.enc, k->k.cbc.dec);
	else if (c->key.length == 32)
		IMB_AES_KEYEXP_256(ctl_mgr, c->key.data, k->k.cbc.enc, k->k.cbc.dec);
	else
		return false;
	return true;
}

static bool aead_keys(struct ipsecmb_sa *k, const struct rte_crypto_aead_xform *a)
{
	k->tag_len = (uint8_t)a->digest_length;
	k->aad_len = (uint8_t)a->aad_length;
	k->key_len = (uint8_t)a->key.length;
	k->decrypt = a->op == RTE_CRYPTO_AEAD_OP_DECRYPT;
	if (a->digest_length > TAG_MAX)
		return false;
	switch (a->algo) {
	case RTE_CRYPTO_AEAD_AES_GCM:
		if (a->iv.length != 12)
			return false;
		if (a->key.length == 16)
			IMB_AES128_GCM_PRE(ctl_mgr, a->key.data, &k->k.gcm);
		else if (a->key.length == 32)
			IMB_AES256_GCM_PRE(ctl_mgr, a->key.data, &k->k.gcm);
		else
			return false;
		k->kind = IPSECMB_GCM;
		return true;
	case RTE_CRYPTO_AEAD_CHACHA20_POLY1305:
		if (a->key.length != sizeof(k->k.chacha) || a->iv.length != 12)
			return false;
		memcpy(k->k.chacha, a->key.data, sizeof(k->k.chacha));
		k->cipher = IMB_CIPHER_CHACHA20_POLY1305;
		k->hash = IMB_AUTH_CHACHA20_POLY1305;
		k->iv_len = 12;
		k->kind = IPSECMB_JOB;
		return true;
	default:
		return false;
	}
}

bool ipsecmb_sa_init(struct ipsecmb_sa *k, const struct rte_crypto_sym_xform *xf)
{
	const uint16_t iv_offset = CRYPTO_IV_OFFSET;
	const struct rte_crypto_sym_xform *c = NULL, *a = NULL;
	bool ok;

	memset(k, 0, sizeof(*k));
	if (ctl_mgr == NULL)
		return false;
	if (xf->type == RTE_CRYPTO_SYM_XFORM_AEAD) {
		ok = xf->next == NULL && xf->aead.iv.offset == iv_offset && aead_keys(k, &xf->aead);
	} else {
		/* outbound cipher -> auth, inbound auth -> cipher (rte_ipsec's order) */
		for (; xf != NULL; xf = xf->next) {
			if (xf->type == RTE_CRYPTO_SYM_XFORM_CIPHER)
				c = xf;
			else if (xf->type == RTE_CRYPTO_SYM_XFORM_AUTH)
				a = xf;
		}
		ok = c != NULL && a != NULL &&
		     (c->cipher.algo == RTE_CRYPTO_CIPHER_NULL ||
		      c->cipher.iv.offset == iv_offset) &&
		     cipher_keys(k, &c->cipher) && hmac_pads(k, &a->auth);
		if (ok) {
			k->decrypt = c->cipher.op == RTE_CRYPTO_CIPHER_OP_DECRYPT;
			k->kind = IPSECMB_JOB;
		}
	}
	if (!ok)
		ipsecmb_sa_wipe(k);
	return ok;
}

void ipsecmb_sa_wipe(struct ipsecmb_sa *k)
{
	explicit_bzero(k, sizeof(*k));
}

/* Bit i for each line i of @k that [@p, @p + @len) touches. */
static uint16_t lines_of(const struct ipsecmb_sa *k, const void *p, size_t len)
{
	size_t off = (size_t)((const uint8_t *)p - (const uint8_t *)k);
	uint16_t bits = 0;

	for (size_t i = off / RTE_CACHE_LINE_SIZE; i <= (off + len - 1) / RTE_CACHE_LINE_SIZE; i++)
		bits |= (uint16_t)(1u << i);
	return bits;
}

uint16_t ipsecmb_sa_lines(const struct ipsecmb_sa *k)
{
	/* round keys: one per round and the initial one, 16 bytes each */
	size_t rk = 16 * (k->key_len == 32 ? 15 : 11);
	uint16_t bits = lines_of(k, k, offsetof(struct ipsecmb_sa, k));

	RTE_BUILD_BUG_ON(sizeof(struct ipsecmb_sa) > 16 * RTE_CACHE_LINE_SIZE);
	switch (k->kind) {
	case IPSECMB_GCM:
		bits |= lines_of(k, k->k.gcm.expanded_keys, rk);
		if (hkey_hi > hkey_lo)
			bits |= lines_of(k, (const uint8_t *)k + hkey_lo, hkey_hi - hkey_lo);
		break;
	case IPSECMB_JOB:
		if (k->cipher == IMB_CIPHER_CHACHA20_POLY1305) {
			bits |= lines_of(k, k->k.chacha, sizeof(k->k.chacha));
			break;
		}
		if (k->cipher != IMB_CIPHER_NULL)
			bits |= lines_of(k,
					 k->decrypt && k->cipher == IMB_CIPHER_CBC ? k->k.cbc.dec
										   : k->k.cbc.enc,
					 rk);
		bits |= lines_of(k, k->k.cbc.ipad, sizeof(k->k.cbc.ipad) + sizeof(k->k.cbc.opad));
		break;
	}
	return bits;
}

/* ---- workers ---- */

static inline void fail(struct rte_mbuf *m)
{
	m->ol_flags |= RTE_MBUF_F_RX_SEC_OFFLOAD_FAILED;
}

/* A job the manager handed back (of any SA): its status and, on decrypt, the ICV. */
static inline void job_done(const IMB_JOB *j)
{
	struct rte_crypto_op *op = j->user_data;

	if (unlikely(j->status != IMB_STATUS_COMPLETED))
		fail(op->sym->m_src);
	else if (j->cipher_direction == IMB_DIR_DECRYPT &&
		 !ipsecmb_tag_equal(j->auth_tag_output, j->user_data2,
				    (unsigned)j->auth_tag_output_len_in_bytes))
		fail(op->sym->m_src);
}

static void fill_job(IMB_JOB *j, const struct ipsecmb_sa *k, struct rte_crypto_op *op,
		     uint16_t iv_offset, uint8_t *tag_out)
{
	struct rte_crypto_sym_op *s = op->sym;
	struct rte_mbuf *m = s->m_src;
	uint8_t *base = rte_pktmbuf_mtod(m, uint8_t *);
	bool aead = k->cipher == IMB_CIPHER_CHACHA20_POLY1305;
	uint8_t *digest = aead ? s->aead.digest.data : s->auth.digest.data;

	j->cipher_mode = k->cipher;
	j->hash_alg = k->hash;
	j->cipher_direction = k->decrypt ? IMB_DIR_DECRYPT : IMB_DIR_ENCRYPT;
	/* encrypt-then-MAC out, verify-then-decrypt in (the MAC covers the ciphertext) */
	j->chain_order = k->decrypt ? IMB_ORDER_HASH_CIPHER : IMB_ORDER_CIPHER_HASH;
	j->src = base;
	j->dst = base + (aead ? s->aead.data.offset : s->cipher.data.offset);
	j->iv = rte_crypto_op_ctod_offset(op, uint8_t *, iv_offset);
	j->iv_len_in_bytes = k->iv_len;
	j->auth_tag_output = k->decrypt ? tag_out : digest;
	j->auth_tag_output_len_in_bytes = k->tag_len;
	j->user_data = op;
	j->user_data2 = digest;
	if (aead) {
		j->enc_keys = j->dec_keys = k->k.chacha;
		j->key_len_in_bytes = sizeof(k->k.chacha);
		j->cipher_start_src_offset_in_bytes = s->aead.data.offset;
		j->msg_len_to_cipher_in_bytes = s->aead.data.length;
		j->hash_start_src_offset_in_bytes = s->aead.data.offset;
		j->msg_len_to_hash_in_bytes = s->aead.data.length;
		j->u.CHACHA20_POLY1305.aad = s->aead.aad.data;
		j->u.CHACHA20_POLY1305.aad_len_in_bytes = k->aad_len;
		return;
	}
	j->enc_keys = k->k.cbc.enc;
	j->dec_keys = k->cipher == IMB_CIPHER_CNTR ? k->k.cbc.enc : k->k.cbc.dec;
	j->key_len_in_bytes = k->key_len;
	j->cipher_start_src_offset_in_bytes = s->cipher.data.offset;
	j->msg_len_to_cipher_in_bytes = s->cipher.data.length;
	j->hash_start_src_offset_in_bytes = s->auth.data.offset;
	j->msg_len_to_hash_in_bytes = s->auth.data.length;
	j->u.HMAC._hashed_auth_key_xor_ipad = k->k.cbc.ipad;
	j->u.HMAC._hashed_auth_key_xor_opad = k->k.cbc.opad;
}

static void submit_jobs(IMB_MGR *mgr, struct scratch *sc, const struct ipsecmb_sa *k,
			struct rte_crypto_op *cop[], uint16_t n, uint16_t iv_offset)
{
	IMB_JOB *j;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = cop[i]->sym->m_src;
		const struct rte_crypto_sym_op *s = cop[i]->sym;
		uint32_t end = k->cipher == IMB_CIPHER_CHACHA20_POLY1305
				   ? s->aead.data.offset + s->aead.data.length
				   : RTE_MAX(s->cipher.data.offset + s->cipher.data.length,
					     s->auth.data.offset + s->auth.data.length);

		if (unlikely(m->nb_segs != 1 || end > m->data_len)) {
			fail(m);
			continue;
		}
		j = IMB_GET_NEXT_JOB(mgr);
		fill_job(j, k, cop[i], iv_offset, sc->tag[sc->next++ % IMB_MAX_JOBS]);
		for (j = IMB_SUBMIT_JOB(mgr); j != NULL; j = IMB_GET_COMPLETED_JOB(mgr))
			job_done(j);
	}
}

void ipsecmb_submit(unsigned worker, const struct ipsecmb_sa *k, struct rte_crypto_op *cop[],
		    uint16_t n)
{
	/* the IV rte_ipsec wrote, where the SA's xforms told it to (sad.c) */
	const uint16_t iv_offset = CRYPTO_IV_OFFSET;

	if (unlikely(k->kind != IPSECMB_JOB)) { /* GCM goes through gcm.c, never an op */
		for (uint16_t i = 0; i < n; i++)
			fail(cop[i]->sym->m_src);
		return;
	}
	submit_jobs(mgrs[worker], &scratch[worker], k, cop, n, iv_offset);
}

IMB_MGR *ipsecmb_mgr(unsigned worker)
{
	return mgrs[worker];
}

void ipsecmb_flush(unsigned worker)
{
	IMB_JOB *j;

	while ((j = IMB_FLUSH_JOB(mgrs[worker])) != NULL)
		job_done(j);
}

void ipsecmb_process(unsigned worker, const struct ipsecmb_sa *k, struct rte_crypto_op *cop[],
		     uint16_t n)
{
	ipsecmb_submit(worker, k, cop, n);
	ipsecmb_flush(worker);
}
